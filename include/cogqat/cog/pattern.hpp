#pragma once
// Pattern queries over an AtomSpace: a conjunction of link patterns (clauses) whose terms are atoms,
// variables (untyped, or restricted to one or more types, each with or without its subtypes) or nested link
// patterns, and absent clauses (OpenCog's AbsentLink). A grounding maps every variable to an atom so that
// every clause names a link of the space and no absent clause does; find_groundings returns all of them. Links of unordered types match under any order of their outgoing set.
//
// The search is a backtracking join: at each step the next clause is the one anchored by a constant or an
// already grounded variable with the smallest incoming set (its candidates are that atom's incoming links),
// falling back to a scan of the clause's link type when no clause is anchored.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/cog/atom_types.hpp"
#include "cogqat/cog/atomspace.hpp"
#include "cogqat/cog/truth_value.hpp"
#include "cogqat/core/error.hpp"

namespace cogqat::cog {

/// Whether a type in a pattern matches only itself or also its subtypes.
enum class type_match : std::uint8_t { exact, with_subtypes };

template <TruthValue TV>
class pattern_matcher;

/// One type a variable may ground to: exactly `type`, or (with type_match::with_subtypes) it or a descendant.
struct type_restriction {
    type_id type = 0;
    type_match match = type_match::exact;
};

/// A variable of one pattern (made by pattern::variable).
struct pattern_variable {
    std::uint32_t id = 0;
    friend constexpr bool operator==(pattern_variable, pattern_variable) = default;
};

/// A conjunction of link patterns with variables.
class pattern {
public:
    /// Largest number of clauses; more than this is refused (the matcher keeps one bit per clause).
    static constexpr std::size_t max_clauses = 64;
    /// Largest arity of an unordered link pattern: it is tried under every permutation, so 8! at most.
    static constexpr std::size_t max_unordered_arity = 8;

    /// One position of a link pattern: an atom, a variable, or a nested link pattern (pattern::link).
    class term {
    public:
        /// A variable.
        term(pattern_variable v) noexcept : kind_(kind::variable), id_(v.id) {}  // NOLINT: implicit on purpose
        /// A constant atom.
        term(handle h) noexcept : kind_(kind::atom), atom_(h) {}  // NOLINT: implicit on purpose

    private:
        friend class pattern;
        template <TruthValue>
        friend class pattern_matcher;
        enum class kind : std::uint8_t { variable, atom, link };
        term(kind k, std::uint32_t id) noexcept : kind_(k), id_(id) {}
        kind kind_;
        std::uint32_t id_ = 0;  // variable id or link pattern id
        handle atom_{};
    };

    /// A new untyped variable called `name` (names must be unique within the pattern, and not empty).
    pattern_variable variable(std::string name) { return add_variable(std::move(name), {}); }
    /// A new variable that only grounds to atoms of `type` (or, with type_match::with_subtypes, its subtypes).
    pattern_variable variable(std::string name, type_id type, type_match match = type_match::exact) {
        const type_restriction only{type, match};
        return add_variable(std::move(name), std::span<const type_restriction>(&only, 1));
    }
    /// A new variable that grounds to atoms fitting any of `types` (OpenCog's TypeChoice); at least one.
    pattern_variable variable(std::string name, std::span<const type_restriction> types) {
        if (types.empty()) throw invalid_argument_error("pattern::variable: \"" + name + "\" is given an empty list of types");
        return add_variable(std::move(name), types);
    }

    /// A nested link pattern, for use as a term of a clause or of another nested pattern.
    term link(type_id type, std::initializer_list<term> outgoing, type_match match = type_match::exact) {
        return link(type, std::span<const term>(outgoing.begin(), outgoing.size()), match);
    }
    /// As above, with the terms in a span.
    term link(type_id type, std::span<const term> outgoing, type_match match = type_match::exact) {
        return {term::kind::link, add_link(type, outgoing, match, "pattern::link")};
    }

    /// Adds the clause "a link of `type` whose outgoing set matches `outgoing` exists".
    void clause(type_id type, std::initializer_list<term> outgoing, type_match match = type_match::exact) {
        clause(type, std::span<const term>(outgoing.begin(), outgoing.size()), match);
    }
    /// As above, with the terms in a span.
    void clause(type_id type, std::span<const term> outgoing, type_match match = type_match::exact) {
        if (clauses_.size() >= max_clauses) {
            throw invalid_argument_error("pattern::clause: a pattern holds at most " + std::to_string(max_clauses) + " clauses");
        }
        clauses_.push_back(add_link(type, outgoing, match, "pattern::clause"));
    }

    /// Adds the clause "no link of `type` matching `outgoing` exists" (OpenCog's AbsentLink), checked once the
    /// positive clauses have grounded every variable; so each variable it names must appear in one of those.
    void absent(type_id type, std::initializer_list<term> outgoing, type_match match = type_match::exact) {
        absent(type, std::span<const term>(outgoing.begin(), outgoing.size()), match);
    }
    /// As above, with the terms in a span.
    void absent(type_id type, std::span<const term> outgoing, type_match match = type_match::exact) {
        if (absent_.size() >= max_clauses) {
            throw invalid_argument_error("pattern::absent: a pattern holds at most " + std::to_string(max_clauses) + " absent clauses");
        }
        absent_.push_back(add_link(type, outgoing, match, "pattern::absent"));
    }

    [[nodiscard]] std::size_t variable_count() const noexcept { return variables_.size(); }
    [[nodiscard]] std::size_t clause_count() const noexcept { return clauses_.size(); }
    [[nodiscard]] std::size_t absent_count() const noexcept { return absent_.size(); }
    /// Name of a variable; invalid_argument_error when it is not one of this pattern's.
    [[nodiscard]] std::string_view variable_name(pattern_variable v) const { return var(v, "pattern::variable_name").name; }
    /// The variable called `name`, if any.
    [[nodiscard]] std::optional<pattern_variable> find_variable(std::string_view name) const {
        for (std::size_t i = 0; i < variables_.size(); ++i)
            if (variables_[i].name == name) return pattern_variable{static_cast<std::uint32_t>(i)};
        return std::nullopt;
    }

private:
    template <TruthValue>
    friend class pattern_matcher;

    struct variable_info {
        std::string name;
        std::vector<type_restriction> types;  // empty: any atom
    };
    struct link_info {
        type_id type;
        type_match match;
        std::vector<term> outgoing;
    };

    const variable_info& var(pattern_variable v, std::string_view context) const {
        if (v.id >= variables_.size()) {
            throw invalid_argument_error(std::string(context) + ": variable #" + std::to_string(v.id) + " does not belong to this pattern");
        }
        return variables_[v.id];
    }

    pattern_variable add_variable(std::string name, std::span<const type_restriction> types) {
        if (name.empty()) throw invalid_argument_error("pattern::variable: a variable name must not be empty");
        if (find_variable(name)) throw invalid_argument_error("pattern::variable: the pattern already has a variable \"" + name + "\"");
        variables_.push_back({std::move(name), std::vector<type_restriction>(types.begin(), types.end())});
        return {static_cast<std::uint32_t>(variables_.size() - 1)};
    }

    std::uint32_t add_link(type_id type, std::span<const term> outgoing, type_match match, std::string_view context) {
        for (std::size_t k = 0; k < outgoing.size(); ++k) {
            const term& t = outgoing[k];
            if (t.kind_ == term::kind::variable) var(pattern_variable{t.id_}, context);
            if (t.kind_ == term::kind::link && t.id_ >= links_.size()) {
                throw invalid_argument_error(std::string(context) + ": term " + std::to_string(k) +
                                             " is a link pattern of another pattern");
            }
            if (t.kind_ == term::kind::atom && t.atom_.is_null()) {
                throw invalid_argument_error(std::string(context) + ": term " + std::to_string(k) + " is the null handle");
            }
        }
        links_.push_back({type, match, std::vector<term>(outgoing.begin(), outgoing.end())});
        return static_cast<std::uint32_t>(links_.size() - 1);
    }

    std::vector<variable_info> variables_;
    std::vector<link_info> links_;
    std::vector<std::uint32_t> clauses_;
    std::vector<std::uint32_t> absent_;
};

/// One solution of a pattern: the atom each variable grounds to, indexed by variable id.
struct grounding {
    std::vector<handle> values;

    /// The atom `v` grounds to.
    [[nodiscard]] handle operator[](pattern_variable v) const { return values.at(v.id); }
    friend auto operator<=>(const grounding&, const grounding&) = default;
};

/// Runs one pattern against one space (use find_groundings()).
template <TruthValue TV>
class pattern_matcher {
public:
    pattern_matcher(const AtomSpace<TV>& space, const pattern& p) : space_(space), p_(p) { validate(); }

    /// Every grounding, sorted, each once.
    std::vector<grounding> run() {
        binding_.assign(p_.variables_.size(), handle{});
        done_.assign(p_.clauses_.size(), 0);
        results_.clear();
        solve(p_.clauses_.size());
        std::sort(results_.begin(), results_.end());
        results_.erase(std::unique(results_.begin(), results_.end()), results_.end());
        return std::move(results_);
    }

private:
    using term = pattern::term;

    /// A non-owning reference to a callable taking no arguments: the continuation of the search.
    class next_step {
    public:
        template <class F>
        explicit next_step(F& f) noexcept : object_(&f), call_([](void* o) { (*static_cast<F*>(o))(); }) {}
        void operator()() const { call_(object_); }

    private:
        void* object_;
        void (*call_)(void*);
    };

    void validate() const {
        const atom_type_registry& types = space_.types();
        if (p_.clauses_.empty()) throw invalid_argument_error("find_groundings: the pattern has no clauses");
        const std::vector<std::uint8_t> used = variables_under(p_.clauses_);
        const std::vector<std::uint8_t> in_absent = variables_under(p_.absent_);
        for (std::size_t l = 0; l < p_.links_.size(); ++l) {
            const auto& info = p_.links_[l];
            if (!types.is_link(info.type)) {
                throw invalid_argument_error("find_groundings: link pattern " + std::to_string(l) + " has type id " +
                                             std::to_string(info.type) + ", which is not a link type of this space");
            }
            if (types.is_unordered(info.type) && info.outgoing.size() > pattern::max_unordered_arity) {
                throw invalid_argument_error("find_groundings: unordered link pattern " + std::to_string(l) + " has arity " +
                                             std::to_string(info.outgoing.size()) + ", above the largest supported, " +
                                             std::to_string(pattern::max_unordered_arity));
            }
            for (const term& t : info.outgoing) {
                if (t.kind_ == term::kind::atom && !space_.contains(t.atom_)) {
                    throw invalid_argument_error("find_groundings: link pattern " + std::to_string(l) + " names " + to_string(t.atom_) +
                                                 ", which is not an atom of this space");
                }
            }
        }
        for (std::size_t v = 0; v < p_.variables_.size(); ++v) {
            const auto& info = p_.variables_[v];
            if (!used[v]) {
                throw invalid_argument_error("find_groundings: variable \"" + info.name + "\" appears in no clause" +
                                             (in_absent[v] ? " but absent ones (it would ground to nothing)" : ""));
            }
            for (const type_restriction& r : info.types) {
                if (!types.contains(r.type)) {
                    throw invalid_argument_error("find_groundings: variable \"" + info.name + "\" has unknown type id " +
                                                 std::to_string(r.type));
                }
            }
        }
    }

    /// One flag per variable: whether it occurs under the link patterns `roots`. Only what is reachable from
    /// a clause counts: a nested link pattern made with pattern::link but left out of every clause binds nothing.
    std::vector<std::uint8_t> variables_under(const std::vector<std::uint32_t>& roots) const {
        std::vector<std::uint8_t> used(p_.variables_.size(), 0);
        std::vector<std::uint32_t> pending(roots.begin(), roots.end());
        std::vector<std::uint8_t> reached(p_.links_.size(), 0);
        while (!pending.empty()) {
            const std::uint32_t l = pending.back();
            pending.pop_back();
            if (reached[l]) continue;
            reached[l] = 1;
            for (const term& t : p_.links_[l].outgoing) {
                if (t.kind_ == term::kind::variable) used[t.id_] = 1;
                if (t.kind_ == term::kind::link) pending.push_back(t.id_);
            }
        }
        return used;
    }

    bool variable_fits(const pattern::variable_info& info, type_id actual) const noexcept {
        if (info.types.empty()) return true;
        return std::any_of(info.types.begin(), info.types.end(),
                           [&](const type_restriction& r) { return type_fits(actual, r.type, r.match); });
    }

    bool type_fits(type_id actual, type_id wanted, type_match match) const noexcept {
        return match == type_match::exact ? actual == wanted : space_.types().is_a(actual, wanted);
    }

    /// The atom a top-level term pins down (a constant or a grounded variable), or null.
    handle anchor_of(const term& t) const noexcept {
        if (t.kind_ == term::kind::atom) return t.atom_;
        if (t.kind_ == term::kind::variable) return binding_[t.id_];
        return {};
    }

    void solve(std::size_t remaining) {
        if (remaining == 0) {
            for (const std::uint32_t a : p_.absent_)
                if (exists(a)) return;
            results_.push_back({binding_});
            return;
        }
        // Pick the anchored clause with the fewest candidates; else the first open clause.
        std::size_t best = p_.clauses_.size();
        handle best_anchor{};
        std::size_t best_cost = std::numeric_limits<std::size_t>::max();
        for (std::size_t c = 0; c < p_.clauses_.size(); ++c) {
            if (done_[c]) continue;
            if (best == p_.clauses_.size()) best = c;
            for (const term& t : p_.links_[p_.clauses_[c]].outgoing) {
                const handle a = anchor_of(t);
                if (a.is_null()) continue;
                // Counted only up to the best so far: a hub's incoming set can be huge.
                std::size_t cost = 0;
                for (auto it = space_.incoming(a).begin(); it != space_.incoming(a).end() && cost < best_cost; ++it) ++cost;
                if (cost < best_cost) {
                    best_cost = cost;
                    best = c;
                    best_anchor = a;
                }
            }
        }
        const std::uint32_t link_id = p_.clauses_[best];
        const auto& info = p_.links_[link_id];
        done_[best] = 1;
        auto try_candidate = [&](handle candidate) {
            if (!type_fits(space_.type(candidate), info.type, info.match)) return;
            auto rest = [&] { solve(remaining - 1); };
            match_link(link_id, candidate, next_step(rest));
        };
        // The search only reads the space, so walking its lists while recursing is safe.
        if (!best_anchor.is_null()) {
            for (const handle l : space_.incoming(best_anchor)) try_candidate(l);
        } else {
            space_.for_each_of_type(info.type, info.match == type_match::with_subtypes, try_candidate);
        }
        done_[best] = 0;
    }

    /// Whether some link matches link pattern `link_id` under the current bindings (its unbound variables
    /// are tried and released again).
    bool exists(std::uint32_t link_id) {
        const auto& info = p_.links_[link_id];
        handle anchor{};
        for (const term& t : info.outgoing) {
            anchor = anchor_of(t);
            if (!anchor.is_null()) break;
        }
        bool found = false;
        auto note = [&] { found = true; };
        auto try_candidate = [&](handle candidate) {
            if (found || !type_fits(space_.type(candidate), info.type, info.match)) return;
            match_link(link_id, candidate, next_step(note));
        };
        if (!anchor.is_null()) {
            for (const handle l : space_.incoming(anchor)) try_candidate(l);
        } else {
            space_.for_each_of_type(info.type, info.match == type_match::with_subtypes, try_candidate);
        }
        return found;
    }

    void match_term(const term& t, handle atom, next_step k) {
        switch (t.kind_) {
            case term::kind::atom:
                if (t.atom_ == atom) k();
                return;
            case term::kind::variable: {
                handle& slot = binding_[t.id_];
                if (!slot.is_null()) {
                    if (slot == atom) k();
                    return;
                }
                const auto& info = p_.variables_[t.id_];
                if (!variable_fits(info, space_.type(atom))) return;
                slot = atom;
                k();
                slot = handle{};
                return;
            }
            case term::kind::link: {
                const auto& info = p_.links_[t.id_];
                if (!type_fits(space_.type(atom), info.type, info.match)) return;
                match_link(t.id_, atom, k);
                return;
            }
        }
    }

    /// Matches link pattern `link_id` against the link `atom` (whose type has been checked).
    void match_link(std::uint32_t link_id, handle atom, next_step k) {
        const auto& info = p_.links_[link_id];
        const auto out = space_.outgoing(atom);
        if (!space_.is_link(atom) || out.size() != info.outgoing.size()) return;
        const std::vector<handle> targets(out.begin(), out.end());
        std::vector<std::uint32_t> order(targets.size());
        std::iota(order.begin(), order.end(), 0u);
        const bool unordered = space_.types().is_unordered(space_.type(atom));
        do {
            match_sequence(info.outgoing, targets, order, 0, k);
        } while (unordered && std::next_permutation(order.begin(), order.end()));
    }

    /// Matches terms[i..] against targets[order[i..]], then continues with k.
    void match_sequence(const std::vector<term>& terms, const std::vector<handle>& targets, const std::vector<std::uint32_t>& order,
                        std::size_t i, next_step k) {
        if (i == terms.size()) {
            k();
            return;
        }
        auto rest = [&] { match_sequence(terms, targets, order, i + 1, k); };
        match_term(terms[i], targets[order[i]], next_step(rest));
    }

    const AtomSpace<TV>& space_;
    const pattern& p_;
    std::vector<handle> binding_;
    std::vector<std::uint8_t> done_;
    std::vector<grounding> results_;
};

/// Every grounding of `p` in `space`, sorted by the handles of the variables in id order, each once.
/// Throws invalid_argument_error for a pattern that cannot be run against this space: no clauses, a
/// variable in no positive clause, a clause type that is not a link type here, a constant that is not an atom
/// here, an unordered link pattern with more than pattern::max_unordered_arity terms.
template <TruthValue TV>
[[nodiscard]] std::vector<grounding> find_groundings(const AtomSpace<TV>& space, const pattern& p) {
    return pattern_matcher<TV>(space, p).run();
}

}  // namespace cogqat::cog
