#pragma once
// The vertex set of MOSES programs. Boolean programs are built from and, or, not, true, false and the
// literals $i / !$i; continuous programs from +, *, /, exp, log, sin, constants and $i. Mixed programs are
// Boolean trees whose leaves are predicates over continuous inputs, greater_than($i c) and its negation: a
// predicate is one leaf holding its input and its threshold (not a subtree of continuous vertices), so
// evaluation and the reduct treat it like a literal, and the threshold is a constant knob of its own.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cogqat::cog::moses {

/// What a vertex is.
enum class vertex_kind : std::uint8_t {
    logical_true,
    logical_false,
    logical_and,
    logical_or,
    logical_not,
    argument,          ///< $i: input column i of the table, Boolean or continuous
    negated_argument,  ///< !$i: a literal of its own so that negation normal form needs no `not` vertices
    constant,
    plus,
    times,
    divide,
    exp,
    log,
    sin,
    greater_than,      ///< greater_than($i c): input i (continuous) above the threshold c, a Boolean leaf
    not_greater_than,  ///< !greater_than($i c): input i at or below c, the negation as a leaf of its own, as !$i
};

/// The two kinds of value a program computes.
enum class value_type : std::uint8_t { boolean, continuous };

/// Static facts about a vertex kind: its printed name, the type it returns and how many children it takes
/// (max_children < 0: any number).
struct vertex_info {
    std::string_view name;
    value_type type;
    int min_children;
    int max_children;
    bool commutative;
};

/// One row per vertex_kind, in enum order. An argument's type is whatever the table gives it; the table
/// lists it as Boolean only for want of a better entry, and the type checker treats it as either.
inline constexpr std::array<vertex_info, 16> vertex_table = {{
        {"true", value_type::boolean, 0, 0, false},
        {"false", value_type::boolean, 0, 0, false},
        {"and", value_type::boolean, 0, -1, true},
        {"or", value_type::boolean, 0, -1, true},
        {"not", value_type::boolean, 1, 1, false},
        {"$", value_type::boolean, 0, 0, false},
        {"!$", value_type::boolean, 0, 0, false},
        {"constant", value_type::continuous, 0, 0, false},
        {"+", value_type::continuous, 0, -1, true},
        {"*", value_type::continuous, 0, -1, true},
        {"/", value_type::continuous, 2, 2, false},
        {"exp", value_type::continuous, 1, 1, false},
        {"log", value_type::continuous, 1, 1, false},
        {"sin", value_type::continuous, 1, 1, false},
        {"greater_than", value_type::boolean, 0, 0, false},
        {"!greater_than", value_type::boolean, 0, 0, false},
}};

/// The row of vertex_table for `kind`.
[[nodiscard]] constexpr const vertex_info& info(vertex_kind kind) noexcept { return vertex_table[static_cast<std::size_t>(kind)]; }

/// A vertex: its kind, plus the argument number (0-based; printed 1-based as $1) or the constant's value; a
/// predicate has both (its input and its threshold).
struct vertex {
    vertex_kind kind = vertex_kind::logical_true;
    std::uint32_t index = 0;
    float value = 0.0f;

    friend constexpr bool operator==(const vertex&, const vertex&) = default;
};

/// True for $i and !$i.
[[nodiscard]] constexpr bool is_literal(vertex_kind k) noexcept { return k == vertex_kind::argument || k == vertex_kind::negated_argument; }

/// True for greater_than($i c) and !greater_than($i c).
[[nodiscard]] constexpr bool is_predicate(vertex_kind k) noexcept {
    return k == vertex_kind::greater_than || k == vertex_kind::not_greater_than;
}

/// True for the leaves of a Boolean tree that read an input: literals and predicates.
[[nodiscard]] constexpr bool is_atom(vertex_kind k) noexcept { return is_literal(k) || is_predicate(k); }

/// The negation of an atom as an atom ($i <-> !$i, greater_than <-> !greater_than); other kinds unchanged.
[[nodiscard]] constexpr vertex_kind negated(vertex_kind k) noexcept {
    switch (k) {
        case vertex_kind::argument:
            return vertex_kind::negated_argument;
        case vertex_kind::negated_argument:
            return vertex_kind::argument;
        case vertex_kind::greater_than:
            return vertex_kind::not_greater_than;
        case vertex_kind::not_greater_than:
            return vertex_kind::greater_than;
        default:
            return k;
    }
}

/// True for and / or, the two operators the Boolean reduct and knob building work on.
[[nodiscard]] constexpr bool is_junctor(vertex_kind k) noexcept { return k == vertex_kind::logical_and || k == vertex_kind::logical_or; }

/// and <-> or; other kinds are returned unchanged.
[[nodiscard]] constexpr vertex_kind dual(vertex_kind k) noexcept {
    if (k == vertex_kind::logical_and) return vertex_kind::logical_or;
    if (k == vertex_kind::logical_or) return vertex_kind::logical_and;
    return k;
}

}  // namespace cogqat::cog::moses
