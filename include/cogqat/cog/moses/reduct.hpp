#pragma once
// The reduct: rewrites a program into a simpler equivalent one, and into one normal form, so that programs
// differing only by trivial rewrites compare equal. MOSES relies on this twice: the metapopulation keeps one
// copy of each program, and the complexity penalty must measure what a program does, not how verbosely an
// instance of the representation happens to spell it.
//
// Boolean programs go to negation normal form (not only on literals, as !$i), with and/or flattened,
// constants propagated, children sorted and de-duplicated (idempotence), complementary children collapsed
// (x and !x), literals propagated into their siblings' subtrees (and($1 or(!$1 $2)) -> and($1 $2)) and
// predicates on one input merged (and(greater_than($1 0.2) greater_than($1 0.5)) -> greater_than($1 0.5)),
// subsumed children dropped (absorption: and(or($1 $2) or($1 $2 $3)) -> or($1 $2)) and, as in Holman's
// elegant normal form that MOSES uses, what every child shares factored out (or(and($1 $2) and($1 $3)) ->
// and($1 or($2 $3))).
//
// Continuous programs get constant folding, flattening of + and *, the identities x+0, x*1, x*0, x/1,
// log(exp(x)), collection of like terms (x + 2x -> 3x) and sorted operands. Rules that change the value on
// some row (x/x -> 1 where x may be 0, exp(log(x)) where x may be negative) are not applied.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "cogqat/cog/moses/program.hpp"
#include "cogqat/cog/moses/vertex.hpp"

namespace cogqat::cog::moses {

namespace detail::reduct {

// ------------------------------------------------------------------------------------------------- Boolean

/// Negation normal form of p (of not(p) when `negate`): not is pushed onto the literals by De Morgan's laws.
/// Works in place on the moved-in tree, since reduction is on the hot path of every deme.
inline program to_nnf(program p, bool negate) {
    switch (p.head.kind) {
        case vertex_kind::logical_true:
        case vertex_kind::logical_false:
            if (negate) p.head.kind = p.head.kind == vertex_kind::logical_true ? vertex_kind::logical_false : vertex_kind::logical_true;
            return p;
        case vertex_kind::argument:
        case vertex_kind::negated_argument:
        case vertex_kind::greater_than:
        case vertex_kind::not_greater_than:
            if (negate) p.head.kind = negated(p.head.kind);
            return p;
        case vertex_kind::logical_not:
            return to_nnf(std::move(p.children[0]), !negate);
        case vertex_kind::logical_and:
        case vertex_kind::logical_or:
            if (negate) p.head.kind = dual(p.head.kind);
            for (auto& c : p.children) c = to_nnf(std::move(c), negate);
            return p;
        default:
            return p;
    }
}

/// Truth assignment of some variables: -1 unknown, 0 false, 1 true.
using assignment = std::vector<std::int8_t>;

inline void sort_unique(std::vector<program>& v) {
    std::sort(v.begin(), v.end());  // a total order, so the result does not depend on the sort algorithm
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

inline program simplify_junctor(vertex_kind op, std::vector<program> kids);

/// p with the assigned literals replaced by constants, simplified again; nothing when no literal of p is
/// assigned (the common case, which then costs no copy).
inline std::optional<program> assume(const program& p, const assignment& a) {
    if (is_literal(p.head.kind)) {
        if (p.head.index >= a.size() || a[p.head.index] < 0) return std::nullopt;
        return make_bool((a[p.head.index] == 1) == (p.head.kind == vertex_kind::argument));
    }
    if (!is_junctor(p.head.kind)) return std::nullopt;
    std::vector<std::optional<program>> changed(p.children.size());
    bool any = false;
    for (std::size_t i = 0; i < p.children.size(); ++i) {
        changed[i] = assume(p.children[i], a);
        any = any || changed[i].has_value();
    }
    if (!any) return std::nullopt;
    std::vector<program> kids;
    kids.reserve(p.children.size());
    for (std::size_t i = 0; i < p.children.size(); ++i) kids.push_back(changed[i] ? std::move(*changed[i]) : p.children[i]);
    return simplify_junctor(p.head.kind, std::move(kids));
}

/// What a child of a junctor contributes to subsumption tests: the children of a dual junctor, or itself.
inline std::span<const program> elements(const program& c) {
    if (is_junctor(c.head.kind)) return c.children;
    return {&c, 1};
}

/// Predicates on one input among the children of op: and keeps the highest greater_than and the lowest
/// !greater_than, or the lowest and the highest, as only they matter. Returns true when the two kinds then
/// exclude each other (and: x > a and x <= b with b <= a) or cover every value (or: x > a or x <= b with
/// b >= a), which makes op its absorbing constant. `flat` is sorted, so each input's predicates of each
/// kind are adjacent, by threshold.
inline bool merge_predicates(vertex_kind op, std::vector<program>& flat) {
    const bool is_and = op == vertex_kind::logical_and;
    bool any = false;
    for (const auto& c : flat) any = any || is_predicate(c.head.kind);
    if (!any) return false;
    // Per input: the one greater_than and the one !greater_than kept (their positions in flat).
    struct kept {
        std::uint32_t index;
        std::size_t above = SIZE_MAX, at_most = SIZE_MAX;
    };
    std::vector<kept> per_input;
    std::vector<bool> drop(flat.size(), false);
    for (std::size_t i = 0; i < flat.size(); ++i) {
        const vertex& v = flat[i].head;
        if (!is_predicate(v.kind)) continue;
        auto it = std::find_if(per_input.begin(), per_input.end(), [&](const kept& k) { return k.index == v.index; });
        if (it == per_input.end()) it = per_input.insert(per_input.end(), kept{v.index});
        std::size_t& slot = v.kind == vertex_kind::greater_than ? it->above : it->at_most;
        if (slot == SIZE_MAX) {
            slot = i;
            continue;
        }
        // Sorted by threshold: i has the higher one. and wants the highest bound from below and the lowest
        // from above; or the reverse.
        const bool keep_higher = (v.kind == vertex_kind::greater_than) == is_and;
        if (keep_higher) {
            drop[slot] = true;
            slot = i;
        } else {
            drop[i] = true;
        }
    }
    for (const kept& k : per_input) {
        if (k.above == SIZE_MAX || k.at_most == SIZE_MAX) continue;
        const float a = flat[k.above].head.value, b = flat[k.at_most].head.value;
        if (is_and ? b <= a : b >= a) return true;
    }
    std::size_t out = 0;
    for (std::size_t i = 0; i < flat.size(); ++i) {
        if (drop[i]) continue;
        if (out != i) flat[out] = std::move(flat[i]);  // never onto itself: a self-moved vector may be emptied
        ++out;
    }
    flat.resize(out);
    return false;
}

/// The factoring step of Holman's elegant normal form, as MOSES's reduct applies it: the elements common to
/// every child of op move out, or(and(a b) and(a c)) -> and(a or(b c)) and dually, which removes
/// (children - 1) literals per common element. `flat` holds two or more simplified, sorted children of which
/// none includes another's elements (absorption has run). Nothing when no element is common to all.
inline std::optional<program> factor(vertex_kind op, const std::vector<program>& flat) {
    const std::span<const program> first = elements(flat.front());
    std::vector<program> common(first.begin(), first.end());
    for (std::size_t i = 1; i < flat.size() && !common.empty(); ++i) {
        const std::span<const program> e = elements(flat[i]);
        std::vector<program> both;
        std::set_intersection(common.begin(), common.end(), e.begin(), e.end(), std::back_inserter(both));
        common = std::move(both);
    }
    if (common.empty()) return std::nullopt;
    const vertex_kind inner_op = dual(op);
    std::vector<program> rests;
    rests.reserve(flat.size());
    for (const auto& c : flat) {
        const std::span<const program> e = elements(c);
        std::vector<program> rest;
        std::set_difference(e.begin(), e.end(), common.begin(), common.end(), std::back_inserter(rest));
        if (rest.empty())
            rests.push_back(make_bool(inner_op == vertex_kind::logical_and));  // an empty inner junctor is its identity
        else if (rest.size() == 1)
            rests.push_back(std::move(rest.front()));
        else
            rests.push_back(program(vertex{inner_op, 0, 0.0f}, std::move(rest)));
    }
    std::vector<program> outer = std::move(common);
    outer.push_back(simplify_junctor(op, std::move(rests)));
    return simplify_junctor(inner_op, std::move(outer));
}

/// Simplifies op(kids) where every kid is already simplified and in negation normal form.
inline program simplify_junctor(vertex_kind op, std::vector<program> kids) {
    const bool absorbing = op == vertex_kind::logical_or;  // or(..., true) = true; and(..., false) = false
    const vertex_kind absorbing_kind = absorbing ? vertex_kind::logical_true : vertex_kind::logical_false;
    const vertex_kind identity_kind = absorbing ? vertex_kind::logical_false : vertex_kind::logical_true;

    // Each round either stops or removes at least one literal, so the loop ends; the bound is a backstop.
    for (int round = 0; round < 1024; ++round) {
        std::vector<program> flat;
        flat.reserve(kids.size());
        for (auto& c : kids) {
            if (c.head.kind == op) {
                for (auto& g : c.children) flat.push_back(std::move(g));
            } else if (c.head.kind == absorbing_kind) {
                return make_bool(absorbing);
            } else if (c.head.kind != identity_kind) {
                flat.push_back(std::move(c));
            }
        }
        sort_unique(flat);
        if (merge_predicates(op, flat)) return make_bool(absorbing);

        // x with !x: the absorbing constant.
        std::size_t max_var = 0;
        bool any_literal = false, any_composite = false;
        for (const auto& c : flat) {
            if (is_literal(c.head.kind)) {
                any_literal = true;
                max_var = std::max<std::size_t>(max_var, c.head.index + 1);
            } else {
                any_composite = true;
            }
        }
        assignment context(max_var, -1);
        for (const auto& c : flat) {
            if (!is_literal(c.head.kind)) continue;
            // In and(x, ...) the other children may assume x true; in or(x, ...) they may assume x false.
            const std::int8_t value = static_cast<std::int8_t>((c.head.kind == vertex_kind::argument) == (op == vertex_kind::logical_and));
            if (context[c.head.index] >= 0 && context[c.head.index] != value) return make_bool(absorbing);
            context[c.head.index] = value;
        }
        // (A composite child and its negation cannot both be here: after flattening every composite child is
        // a dual junctor, and the negation of one is a junctor like this one, which would have been flattened.)

        // Propagate the literal children into the composite ones.
        bool changed = false;
        if (any_literal && any_composite) {
            for (auto& c : flat) {
                if (is_literal(c.head.kind)) continue;
                std::optional<program> d = assume(c, context);
                if (d) {
                    c = std::move(*d);
                    changed = true;
                }
            }
        }
        if (changed) {
            kids = std::move(flat);
            continue;
        }

        // Absorption: a child whose elements include all of another child's is implied by it (in and) or
        // implies it (in or), and can go.
        if (flat.size() > 1) {
            std::vector<std::span<const program>> sets;
            sets.reserve(flat.size());
            for (const auto& c : flat) sets.push_back(elements(c));
            std::vector<bool> drop(flat.size(), false);
            for (std::size_t i = 0; i < flat.size(); ++i) {
                for (std::size_t j = 0; j < flat.size() && !drop[i]; ++j) {
                    if (i == j || drop[j] || sets[j].size() >= sets[i].size()) continue;
                    if (std::includes(sets[i].begin(), sets[i].end(), sets[j].begin(), sets[j].end())) drop[i] = true;
                }
            }
            std::vector<program> kept;
            kept.reserve(flat.size());
            for (std::size_t i = 0; i < flat.size(); ++i)
                if (!drop[i]) kept.push_back(std::move(flat[i]));
            flat = std::move(kept);
        }

        if (flat.empty()) return make_bool(!absorbing);
        if (flat.size() == 1) return std::move(flat.front());
        if (std::optional<program> f = factor(op, flat)) return std::move(*f);
        return program(vertex{op, 0, 0.0f}, std::move(flat));
    }
    return program(vertex{op, 0, 0.0f}, std::move(kids));
}

/// Simplifies a Boolean program in negation normal form, bottom-up.
inline program simplify_boolean(program p) {
    if (!is_junctor(p.head.kind)) return p;
    for (auto& c : p.children) c = simplify_boolean(std::move(c));
    return simplify_junctor(p.head.kind, std::move(p.children));
}

// ----------------------------------------------------------------------------------------------- continuous

[[nodiscard]] inline bool is_constant(const program& p, float v) noexcept {
    return p.head.kind == vertex_kind::constant && p.head.value == v;
}

/// A constant if `v` is finite, else nothing: folding never creates non-finite constants.
[[nodiscard]] inline bool finite_float(double v) noexcept {
    return std::isfinite(v) && std::fabs(v) <= static_cast<double>(std::numeric_limits<float>::max());
}

inline program simplify_times(std::vector<program> kids);

/// Splits a term into coefficient and base: *(c x y) -> (c, *(x y)); x -> (1, x).
inline std::pair<double, program> split_term(const program& t) {
    if (t.head.kind != vertex_kind::times) return {1.0, t};
    double coef = 1.0;
    std::vector<program> rest;
    for (const auto& c : t.children) {
        if (c.head.kind == vertex_kind::constant)
            coef *= c.head.value;
        else
            rest.push_back(c);
    }
    if (rest.size() == 1) return {coef, std::move(rest.front())};
    return {coef, make_times(std::move(rest))};
}

inline program simplify_plus(std::vector<program> kids) {
    std::vector<program> flat;
    for (auto& c : kids) {
        if (c.head.kind == vertex_kind::plus) {
            for (auto& g : c.children) flat.push_back(std::move(g));
        } else {
            flat.push_back(std::move(c));
        }
    }
    double sum = 0.0;
    std::vector<program> constants;
    std::vector<std::pair<program, double>> terms;  // base, coefficient
    for (auto& c : flat) {
        if (c.head.kind == vertex_kind::constant) {
            sum += c.head.value;
            constants.push_back(std::move(c));
        } else {
            auto [coef, base] = split_term(c);
            terms.emplace_back(std::move(base), coef);
        }
    }
    std::stable_sort(terms.begin(), terms.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<program> out;
    for (std::size_t i = 0; i < terms.size();) {
        std::size_t j = i;
        double coef = 0.0;
        for (; j < terms.size() && terms[j].first == terms[i].first; ++j) coef += terms[j].second;
        const auto fc = static_cast<float>(coef);
        if (!finite_float(coef)) {
            // Cannot merge without overflow: keep the terms as they were.
            for (std::size_t k = i; k < j; ++k)
                out.push_back(simplify_times({make_constant(static_cast<float>(terms[k].second)), terms[k].first}));
        } else if (fc != 0.0f) {
            out.push_back(fc == 1.0f ? std::move(terms[i].first) : simplify_times({make_constant(fc), std::move(terms[i].first)}));
        }
        i = j;
    }
    if (finite_float(sum)) {
        if (static_cast<float>(sum) != 0.0f) out.push_back(make_constant(static_cast<float>(sum)));
    } else {
        for (auto& c : constants) out.push_back(std::move(c));
    }
    std::sort(out.begin(), out.end());
    if (out.empty()) return make_constant(0.0f);
    if (out.size() == 1) return std::move(out.front());
    return make_plus(std::move(out));
}

inline program simplify_times(std::vector<program> kids) {
    std::vector<program> flat;
    for (auto& c : kids) {
        if (c.head.kind == vertex_kind::times) {
            for (auto& g : c.children) flat.push_back(std::move(g));
        } else {
            flat.push_back(std::move(c));
        }
    }
    double product = 1.0;
    std::vector<program> constants, out;
    for (auto& c : flat) {
        if (c.head.kind == vertex_kind::constant) {
            product *= c.head.value;
            constants.push_back(std::move(c));
        } else {
            out.push_back(std::move(c));
        }
    }
    if (finite_float(product)) {
        if (static_cast<float>(product) == 0.0f) return make_constant(0.0f);  // x * 0 = 0
        if (static_cast<float>(product) != 1.0f) out.push_back(make_constant(static_cast<float>(product)));
    } else {
        for (auto& c : constants) out.push_back(std::move(c));
    }
    std::sort(out.begin(), out.end());
    if (out.empty()) return make_constant(1.0f);
    if (out.size() == 1) return std::move(out.front());
    return make_times(std::move(out));
}

inline program simplify_continuous(const program& p) {
    std::vector<program> kids;
    kids.reserve(p.children.size());
    for (const auto& c : p.children) kids.push_back(simplify_continuous(c));
    switch (p.head.kind) {
        case vertex_kind::plus:
            return simplify_plus(std::move(kids));
        case vertex_kind::times:
            return simplify_times(std::move(kids));
        case vertex_kind::divide: {
            if (is_constant(kids[1], 1.0f)) return std::move(kids[0]);
            if (kids[0].head.kind == vertex_kind::constant && kids[1].head.kind == vertex_kind::constant) {
                const double q = static_cast<double>(kids[0].head.value) / static_cast<double>(kids[1].head.value);
                if (finite_float(q)) return make_constant(static_cast<float>(q));
            }
            return make_divide(std::move(kids[0]), std::move(kids[1]));
        }
        case vertex_kind::exp:
        case vertex_kind::log:
        case vertex_kind::sin: {
            const vertex_kind f = p.head.kind;
            if (f == vertex_kind::log && kids[0].head.kind == vertex_kind::exp) return std::move(kids[0].children[0]);
            if (kids[0].head.kind == vertex_kind::constant) {
                const double x = kids[0].head.value;
                const double y = f == vertex_kind::exp ? std::exp(x) : f == vertex_kind::log ? std::log(x) : std::sin(x);
                if (finite_float(y)) return make_constant(static_cast<float>(y));
            }
            return make_function(f, std::move(kids[0]));
        }
        default:
            return program(p.head, std::move(kids));
    }
}

}  // namespace detail::reduct

/// The reduced form of `p`, read as a program of `type`: equivalent on every row, never more complex, and the
/// same program for inputs that differ only by the rewrites listed at the top of this header. Reducing a
/// reduced program returns it unchanged. Throws what validate() throws for a malformed program. The type
/// matters only for a bare argument, which both kinds of program may be.
[[nodiscard]] inline program reduce(program p, value_type type) {
    validate(p, type, std::numeric_limits<std::size_t>::max());
    // One bottom-up pass nearly always reaches the fixed point; a rewrite high in the tree can expose
    // another below it, hence the check and the loop.
    const bool boolean = type == value_type::boolean;
    program current = boolean ? detail::reduct::simplify_boolean(detail::reduct::to_nnf(std::move(p), false))
                              : detail::reduct::simplify_continuous(p);
    for (int pass = 0; pass < 16; ++pass) {
        program next = boolean ? detail::reduct::simplify_boolean(current) : detail::reduct::simplify_continuous(current);
        if (next == current) break;
        current = std::move(next);
    }
    return current;
}

/// reduce(p, type_of(p)).
[[nodiscard]] inline program reduce(program p) {
    const value_type type = type_of(p);
    return reduce(std::move(p), type);
}

}  // namespace cogqat::cog::moses
