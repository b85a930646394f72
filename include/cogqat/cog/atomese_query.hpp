#pragma once
// OpenCog's queries, BindLink and GetLink, run through our pattern matcher (cog/pattern.hpp). A query read
// from Atomese is compiled into a `pattern` over a data space (the same space, or another one whose type
// registry names the same types), then run and, for a BindLink, its rewrite instantiated.
//
//   (GetLink  [declaration] body)             groundings of the declared (or else the free) variables
//   (BindLink [declaration] body rewrite)     the rewrite, once per grounding
//
// (OpenCog's current names for them, MeetLink and QueryLink, are read the same way.)
//
// Supported: declarations by VariableNode, VariableList and TypedVariableLink with TypeNode (exact type),
// TypeInhNode (the type or a subtype) and TypeChoice of those; bodies that are one clause or an AndLink /
// PresentLink of clauses, AbsentLink clauses, unordered links (any order matches), QuoteLink / UnquoteLink /
// LocalQuoteLink, undeclared VariableNodes inside a declared query as constants, as in OpenCog, and
// IdenticalLink / EqualLink clauses comparing variables and constants. Anything else OpenCog's matcher does
// (globs, OrLink / ChoiceLink alternatives, NotLink, other virtual clauses such as GreaterThanLink, grounded
// or defined predicates, executable rewrites, nested scopes, type signatures) is refused with
// unsupported_query_error naming the construct, never answered wrongly.
//
// When the query lives in the data space itself, a variable never grounds to an atom holding one of the
// query's own variables (that would be the query matching its own clauses), and a clause without variables
// is dropped, as OpenCog drops it: the query itself holds it, so it is always there. Against another data
// space such a clause is checked like any other.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cogqat/cog/atom_types.hpp"
#include "cogqat/cog/atomspace.hpp"
#include "cogqat/cog/pattern.hpp"
#include "cogqat/cog/truth_value.hpp"
#include "cogqat/core/error.hpp"

namespace cogqat::cog {

/// A query uses a construct of OpenCog's pattern matcher that ours does not support; construct() names it
/// (an atom type, such as "GlobNode" or "OrLink").
class unsupported_query_error : public invalid_argument_error {
public:
    unsupported_query_error(std::string construct, const std::string& why)
            : invalid_argument_error("unsupported query construct " + construct + ": " + why), construct_(std::move(construct)) {}
    [[nodiscard]] const std::string& construct() const noexcept { return construct_; }

private:
    std::string construct_;
};

/// One side of an IdenticalLink or EqualLink clause: a variable, or else a data atom (null when the data
/// lacks it, so nothing is identical to it).
struct identity_term {
    std::optional<pattern_variable> variable;
    handle atom{};
};

/// A BindLink or GetLink (QueryLink, MeetLink) compiled against a data space.
struct atomese_query {
    /// The clauses, in the data space's terms; its variables have ids in declaration order, so a grounding's
    /// values are in that order too.
    pattern body;
    /// The query space's VariableNode of each variable, in declaration order.
    std::vector<handle> variable_nodes;
    /// A BindLink's rewrite (in the query space); null for a GetLink.
    handle rewrite{};
    /// False when a positive clause names an atom the data space lacks: nothing can match.
    bool satisfiable = true;
    /// IdenticalLink / EqualLink clauses: both sides must ground to the same atom.
    std::vector<std::array<identity_term, 2>> identical;
};

namespace detail::atomese_query_impl {

/// Deepest nesting of a query the compiler takes: it recurses over the query's atoms.
inline constexpr std::size_t max_query_depth = 512;

/// Whether the atoms under `root` nest deeper than `limit` links (a walk that stops at the limit).
template <TruthValue TV>
bool deeper_than(const AtomSpace<TV>& space, handle root, std::size_t limit) {
    std::vector<std::pair<handle, std::size_t>> stack{{root, 0}};
    std::unordered_map<handle, std::size_t> seen;  // the deepest level each atom was reached at
    while (!stack.empty()) {
        const auto [h, level] = stack.back();
        stack.pop_back();
        if (level > limit) return true;
        if (const auto it = seen.find(h); it != seen.end() && it->second >= level) continue;
        seen[h] = level;
        for (const handle c : space.outgoing(h)) stack.emplace_back(c, level + 1);
    }
    return false;
}

template <TruthValue TV>
class compiler {
public:
    compiler(const AtomSpace<TV>& query_space, const AtomSpace<TV>& data) : q_(query_space), d_(data) {}

    atomese_query compile(handle query) {
        const type_id t = q_.type(query);
        if (deeper_than(q_, query, max_query_depth)) {
            throw invalid_argument_error("atomese query: the query nests deeper than " + std::to_string(max_query_depth) + " links");
        }
        const bool bind = t == types::bind_link || t == types::query_link;
        if (!bind && t != types::get_link && t != types::meet_link) {
            if (q_.types().is_a(t, types::pattern_link)) unsupported(t, "only BindLink / QueryLink and GetLink / MeetLink queries are run");
            throw invalid_argument_error("atomese query: " + q_.to_string(query) + " is not a BindLink, QueryLink, GetLink or MeetLink");
        }
        const std::vector<handle> parts = children(query);
        const std::size_t plain = bind ? 2 : 1;
        if (parts.size() != plain && parts.size() != plain + 1) {
            throw invalid_argument_error("atomese query: a " + std::string(q_.types().name(t)) + " takes " + std::to_string(plain) +
                                         " or " + std::to_string(plain + 1) + " atoms, this one " + std::to_string(parts.size()));
        }
        const bool declared = parts.size() == plain + 1;
        const handle body = parts[declared ? 1 : 0];
        if (declared) {
            declare(parts[0]);
        } else {
            std::vector<handle> free;
            collect_free(body, false, free);
            for (const handle v : free) add_variable(v, {});
        }
        if (bind) {
            out_.rewrite = parts.back();
            check_rewrite(out_.rewrite, false);
        }
        add_body(body);
        return std::move(out_);
    }

private:
    [[noreturn]] void unsupported(type_id t, const std::string& why) const {
        throw unsupported_query_error(std::string(q_.types().name(t)), why);
    }

    std::vector<handle> children(handle h) const {
        const auto out = q_.outgoing(h);
        return {out.begin(), out.end()};
    }

    handle only_child(handle h) const {
        const std::vector<handle> c = children(h);
        if (c.size() != 1) {
            throw invalid_argument_error("atomese query: " + std::string(q_.types().name(q_.type(h))) + " takes one atom, this one " +
                                         std::to_string(c.size()));
        }
        return c[0];
    }

    type_id data_type(type_id t) const {
        const std::string_view name = q_.types().name(t);
        if (const auto d = d_.types().find(name)) return *d;
        throw invalid_argument_error("atomese query: the data space knows no type \"" + std::string(name) + "\"");
    }

    void collect_free(handle h, bool quoted, std::vector<handle>& free) const {
        const type_id t = q_.type(h);
        if (!quoted && t == types::glob_node) unsupported(t, "globs (matching a run of atoms) are not supported");
        if (!quoted && t == types::variable_node) {
            if (std::find(free.begin(), free.end(), h) == free.end()) free.push_back(h);
            return;
        }
        if (!q_.is_link(h)) return;
        if (!quoted && t == types::quote_link)
            quoted = true;
        else if (quoted && t == types::unquote_link)
            quoted = false;
        for (const handle c : children(h)) collect_free(c, quoted, free);
    }

    /// Refuses a rewrite OpenCog would execute while instantiating it (we only substitute).
    void check_rewrite(handle h, bool quoted) const {
        const type_id t = q_.type(h);
        if (!q_.is_link(h)) return;
        if (!quoted && (q_.types().is_a(t, types::function_link) || q_.types().is_a(t, types::put_link))) {
            unsupported(t, "executable rewrites are not supported");
        }
        if (!quoted && t == types::quote_link)
            quoted = true;
        else if (quoted && t == types::unquote_link)
            quoted = false;
        for (const handle c : children(h)) check_rewrite(c, quoted);
    }

    void declare(handle decl) {
        const type_id t = q_.type(decl);
        if (t == types::variable_list) {
            for (const handle c : children(decl)) declare(c);
        } else if (t == types::variable_node) {
            add_variable(decl, {});
        } else if (t == types::typed_variable_link) {
            const std::vector<handle> c = children(decl);
            if (c.size() != 2) throw invalid_argument_error("atomese query: a TypedVariableLink takes a variable and a type");
            if (q_.type(c[0]) == types::glob_node) unsupported(types::glob_node, "globs (matching a run of atoms) are not supported");
            if (q_.type(c[0]) != types::variable_node) {
                throw invalid_argument_error("atomese query: a TypedVariableLink's first atom must be a VariableNode, not " +
                                             q_.to_string(c[0]));
            }
            std::vector<type_restriction> allowed;
            type_spec(c[1], allowed);
            add_variable(c[0], allowed);
        } else if (t == types::glob_node) {
            unsupported(t, "globs (matching a run of atoms) are not supported");
        } else {
            throw invalid_argument_error(
                    "atomese query: a variable declaration is a VariableNode, TypedVariableLink or VariableList, not " +
                    q_.to_string(decl));
        }
    }

    void type_spec(handle spec, std::vector<type_restriction>& allowed) const {
        const type_id t = q_.type(spec);
        if (t == types::type_node || t == types::type_inh_node) {
            const std::string_view name = q_.name(spec);
            const auto id = d_.types().find(name);
            if (!id) throw invalid_argument_error("atomese query: the variable's type \"" + std::string(name) + "\" is not an atom type");
            allowed.push_back({*id, t == types::type_node ? type_match::exact : type_match::with_subtypes});
        } else if (t == types::type_choice) {
            for (const handle c : children(spec)) type_spec(c, allowed);
        } else {
            unsupported(t, "a variable's type is a TypeNode, a TypeInhNode or a TypeChoice of them");
        }
    }

    void add_variable(handle node, const std::vector<type_restriction>& allowed) {
        if (std::find(out_.variable_nodes.begin(), out_.variable_nodes.end(), node) != out_.variable_nodes.end()) {
            throw invalid_argument_error("atomese query: the variable " + q_.to_string(node) + " is declared twice");
        }
        const std::string name(q_.name(node));
        const pattern_variable v = allowed.empty() ? out_.body.variable(name) : out_.body.variable(name, allowed);
        vars_.emplace(node, v);
        out_.variable_nodes.push_back(node);
    }

    void add_body(handle b) {
        const type_id t = q_.type(b);
        if (t == types::and_link || t == types::present_link) {
            for (const handle c : children(b)) add_body(c);
        } else if (t == types::absent_link) {
            add_clause(only_child(b), true);
        } else {
            add_clause(b, false);
        }
    }

    void refuse_clause_type(handle c) const {
        const type_id t = q_.type(c);
        if (t == types::or_link || t == types::choice_link) unsupported(t, "alternative clauses are not supported");
        if (t == types::not_link) unsupported(t, "negated clauses are not supported (AbsentLink is)");
        if (t == types::sequential_and_link || t == types::sequential_or_link || t == types::true_link || t == types::false_link) {
            unsupported(t, "evaluated (behaviour-tree) clauses are not supported");
        }
        if (q_.types().is_a(t, types::virtual_link) && t != types::identical_link && t != types::equal_link) {
            unsupported(t, "virtual clauses, evaluated rather than matched, are not supported");
        }
        if (t == types::evaluation_link) {
            const std::vector<handle> parts = children(c);
            if (!parts.empty()) {
                const type_id p = q_.type(parts[0]);
                if (p == types::grounded_predicate_node || p == types::defined_predicate_node) {
                    unsupported(p, "evaluated predicates are not supported");
                }
            }
        }
    }

    void add_clause(handle c, bool absent) {
        handle literal = c;
        bool quoted = false;
        if (q_.type(c) == types::quote_link) {
            literal = only_child(c);
            quoted = true;
        } else if (q_.type(c) == types::local_quote_link) {
            literal = only_child(c);
        } else {
            refuse_clause_type(c);
            if (q_.type(c) == types::identical_link || q_.type(c) == types::equal_link) {
                add_identity(c, absent);
                return;
            }
        }
        if (!q_.is_link(literal)) {
            throw invalid_argument_error("atomese query: a clause must be a link, not " + q_.to_string(literal));
        }
        if (!quoted && q_.types().is_a(q_.type(literal), types::scope_link)) {
            unsupported(q_.type(literal), "nested scopes (a query or lambda inside a clause) are not supported");
        }
        std::vector<pattern::term> terms;
        const type_id type = data_type(q_.type(literal));
        // Beside the data a constant clause is there by construction (the query holds it), so, as
        // OpenCog does, it is dropped: it says nothing.
        if (&q_ == &d_ && !constant_of(literal, quoted).is_null()) return;
        // An atom the data lacks: a positive clause cannot match, an absent one always holds.
        bool missing = false;
        for (const handle k : children(literal)) {
            const std::optional<pattern::term> t = term(k, quoted);
            if (!t)
                missing = true;
            else
                terms.push_back(*t);
        }
        if (missing) {
            if (!absent) out_.satisfiable = false;
            return;
        }
        if (absent)
            out_.body.absent(type, terms);
        else
            out_.body.clause(type, terms);
    }

    /// An IdenticalLink or EqualLink of two sides, each a declared variable or an atom without variables (for
    /// which OpenCog's EqualLink, executing nothing, is the same test).
    void add_identity(handle c, bool absent) {
        const type_id t = q_.type(c);
        if (absent) unsupported(t, "an absent virtual clause is not supported");
        const std::vector<handle> sides = children(c);
        if (sides.size() != 2) {
            throw invalid_argument_error("atomese query: an " + std::string(q_.types().name(t)) + " clause compares two atoms, this one " +
                                         std::to_string(sides.size()));
        }
        if (sides[0] == sides[1]) return;  // the same atom: always identical
        std::array<identity_term, 2> pair;
        for (std::size_t k = 0; k < 2; ++k) {
            if (const auto v = vars_.find(sides[k]); v != vars_.end()) {
                pair[k].variable = v->second;
                continue;
            }
            std::vector<handle> inner;
            collect_free(sides[k], false, inner);
            for (const handle node : inner) {
                if (vars_.count(node) != 0) unsupported(t, "a side holding a variable inside a link is not supported");
            }
            check_rewrite(sides[k], false);  // an executable side (EqualLink would run it)
            pair[k].atom = constant_of(sides[k], false);
        }
        if (!pair[0].variable && !pair[1].variable) {  // two different constants
            out_.satisfiable = false;
            return;
        }
        out_.identical.push_back(pair);
    }

    /// The term for atom `h` of the query; nullopt when it is a constant the data space lacks.
    std::optional<pattern::term> term(handle h, bool quoted) {
        const type_id t = q_.type(h);
        if (!quoted && t == types::quote_link) return term(only_child(h), true);
        if (quoted && t == types::unquote_link) return term(only_child(h), false);
        if (!quoted && t == types::local_quote_link) return term(only_child(h), false);
        if (q_.is_node(h)) {
            if (!quoted) {
                if (const auto v = vars_.find(h); v != vars_.end()) return pattern::term(v->second);
                if (t == types::glob_node) unsupported(t, "globs (matching a run of atoms) are not supported");
            }
            const handle d = d_.get_node(data_type(t), q_.name(h));
            if (d.is_null()) return std::nullopt;
            return pattern::term(d);
        }
        if (!quoted && q_.types().is_a(t, types::scope_link))
            unsupported(t, "nested scopes (a query or lambda inside a clause) are not supported");
        std::vector<pattern::term> terms;
        std::vector<handle> constants;
        for (const handle c : children(h)) {
            const std::optional<pattern::term> sub = term(c, quoted);
            if (!sub) return std::nullopt;
            terms.push_back(*sub);
            if (const auto k = constant_of(c, quoted); !k.is_null()) constants.push_back(k);
        }
        const type_id type = data_type(t);
        if (constants.size() == terms.size()) {
            const handle d = d_.get_link(type, constants);
            if (d.is_null()) return std::nullopt;
            return pattern::term(d);
        }
        return out_.body.link(type, terms);
    }

    /// The data atom a query atom stands for when it holds no variable (null otherwise or when missing).
    handle constant_of(handle h, bool quoted) {
        const type_id t = q_.type(h);
        if (!quoted && (t == types::quote_link || t == types::local_quote_link)) return constant_of(only_child(h), true);
        if (quoted && t == types::unquote_link) return constant_of(only_child(h), false);
        if (q_.is_node(h)) {
            if (!quoted && vars_.count(h) != 0) return {};
            return d_.get_node(data_type(t), q_.name(h));
        }
        std::vector<handle> constants;
        for (const handle c : children(h)) {
            const handle k = constant_of(c, quoted);
            if (k.is_null()) return {};
            constants.push_back(k);
        }
        return d_.get_link(data_type(t), constants);
    }

    const AtomSpace<TV>& q_;
    const AtomSpace<TV>& d_;
    atomese_query out_;
    std::unordered_map<handle, pattern_variable> vars_;
};

/// Whether `h` is or holds one of `nodes`.
template <TruthValue TV>
bool holds_any(const AtomSpace<TV>& space, handle h, const std::vector<handle>& nodes) {
    std::vector<handle> stack{h};
    while (!stack.empty()) {
        const handle a = stack.back();
        stack.pop_back();
        if (std::find(nodes.begin(), nodes.end(), a) != nodes.end()) return true;
        for (const handle c : space.outgoing(a)) stack.push_back(c);
    }
    return false;
}

}  // namespace detail::atomese_query_impl

/// Compiles the BindLink, QueryLink, GetLink or MeetLink `query` of `query_space` into a pattern over `data`. Throws
/// unsupported_query_error for a construct the matcher does not support, invalid_argument_error for a
/// malformed query (wrong arity, a bad declaration, a type the data space does not know).
template <TruthValue TV>
[[nodiscard]] atomese_query compile_atomese_query(const AtomSpace<TV>& query_space, handle query, const AtomSpace<TV>& data) {
    return detail::atomese_query_impl::compiler<TV>(query_space, data).compile(query);
}

namespace detail::atomese_query_impl {

template <TruthValue TV>
std::vector<grounding> groundings(const atomese_query& q, const AtomSpace<TV>& query_space, const AtomSpace<TV>& data) {
    if (!q.satisfiable) return {};
    std::vector<grounding> found = find_groundings(data, q.body);
    auto value = [](const identity_term& t, const grounding& g) { return t.variable ? g[*t.variable] : t.atom; };
    std::erase_if(found, [&](const grounding& g) {
        return std::any_of(q.identical.begin(), q.identical.end(), [&](const std::array<identity_term, 2>& pair) {
            const handle a = value(pair[0], g);
            return a.is_null() || a != value(pair[1], g);
        });
    });
    if (&query_space == &data) {
        std::erase_if(found, [&](const grounding& g) {
            return std::any_of(g.values.begin(), g.values.end(),
                               [&](handle v) { return detail::atomese_query_impl::holds_any(data, v, q.variable_nodes); });
        });
    }
    return found;
}

/// Adds `h` of the query space to `data` with the variables replaced by their groundings.
template <TruthValue TV>
handle instantiate(AtomSpace<TV>& data, const AtomSpace<TV>& q, handle h, const atomese_query& query, const grounding& g, bool quoted) {
    const type_id t = q.type(h);
    if (!quoted && t == types::quote_link) return instantiate(data, q, *q.outgoing(h).begin(), query, g, true);
    if (quoted && t == types::unquote_link) return instantiate(data, q, *q.outgoing(h).begin(), query, g, false);
    const std::string_view name = q.types().name(t);
    const auto mapped = data.types().find(name);
    if (!mapped) throw invalid_argument_error("atomese query: the data space knows no type \"" + std::string(name) + "\"");
    if (q.is_node(h)) {
        if (!quoted) {
            const auto& nodes = query.variable_nodes;
            const auto v = std::find(nodes.begin(), nodes.end(), h);
            if (v != nodes.end()) return g.values[static_cast<std::size_t>(v - nodes.begin())];
        }
        return data.add_node(*mapped, std::string(q.name(h)));  // a copy: adding may move the name's bytes
    }
    if (!quoted && (q.types().is_a(t, types::function_link) || q.types().is_a(t, types::put_link))) {
        throw unsupported_query_error(std::string(name), "executable rewrites are not supported");
    }
    const auto out = q.outgoing(h);
    const std::vector<handle> parts(out.begin(), out.end());  // the outgoing range dies when data == q changes
    std::vector<handle> made;
    made.reserve(parts.size());
    for (const handle c : parts) made.push_back(instantiate(data, q, c, query, g, quoted));
    return data.add_link(*mapped, made);
}

}  // namespace detail::atomese_query_impl

/// The groundings of a query's variables in `data`, values in declaration order, sorted, each once.
template <TruthValue TV>
[[nodiscard]] std::vector<grounding> find_atomese_groundings(const AtomSpace<TV>& query_space, handle query, const AtomSpace<TV>& data) {
    return detail::atomese_query_impl::groundings(compile_atomese_query(query_space, query, data), query_space, data);
}

/// Runs a query as OpenCog's cog-execute! does and returns its results, sorted, each once: for a GetLink
/// each grounding (one atom, or a ListLink of the values in declaration order when there are several
/// variables), for a BindLink the rewrite with each grounding substituted. Results are added to `data`
/// (which may be `query_space` itself).
template <TruthValue TV>
std::vector<handle> execute_atomese_query(const AtomSpace<TV>& query_space, handle query, AtomSpace<TV>& data) {
    const atomese_query q = compile_atomese_query(query_space, query, data);
    const std::vector<grounding> found = detail::atomese_query_impl::groundings(q, query_space, data);
    std::vector<handle> results;
    for (const grounding& g : found) {
        if (!q.rewrite.is_null()) {
            results.push_back(detail::atomese_query_impl::instantiate(data, query_space, q.rewrite, q, g, false));
        } else if (g.values.size() == 1) {
            results.push_back(g.values[0]);
        } else {
            results.push_back(data.add_link(types::list_link, g.values));
        }
    }
    std::sort(results.begin(), results.end());
    results.erase(std::unique(results.begin(), results.end()), results.end());
    return results;
}

}  // namespace cogqat::cog
