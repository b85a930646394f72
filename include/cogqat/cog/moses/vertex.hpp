#pragma once
// The vertex set of MOSES programs. Boolean programs are built from and, or, not, true, false and the
// literals $i / !$i; continuous programs from +, *, /, exp, log, sin, constants and $i. A program is one or
// the other: there is no predicate (such as x > 0) joining the two worlds, which keeps evaluation and the
// reduct free of type dispatch inside a tree.

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
inline constexpr std::array<vertex_info, 14> vertex_table = {{
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
}};

/// The row of vertex_table for `kind`.
[[nodiscard]] constexpr const vertex_info& info(vertex_kind kind) noexcept { return vertex_table[static_cast<std::size_t>(kind)]; }

/// A vertex: its kind, plus the argument number (0-based; printed 1-based as $1) or the constant's value.
struct vertex {
    vertex_kind kind = vertex_kind::logical_true;
    std::uint32_t index = 0;
    float value = 0.0f;

    friend constexpr bool operator==(const vertex&, const vertex&) = default;
};

/// True for $i and !$i.
[[nodiscard]] constexpr bool is_literal(vertex_kind k) noexcept { return k == vertex_kind::argument || k == vertex_kind::negated_argument; }

/// True for and / or, the two operators the Boolean reduct and knob building work on.
[[nodiscard]] constexpr bool is_junctor(vertex_kind k) noexcept { return k == vertex_kind::logical_and || k == vertex_kind::logical_or; }

/// and <-> or; other kinds are returned unchanged.
[[nodiscard]] constexpr vertex_kind dual(vertex_kind k) noexcept {
    if (k == vertex_kind::logical_and) return vertex_kind::logical_or;
    if (k == vertex_kind::logical_or) return vertex_kind::logical_and;
    return k;
}

}  // namespace cogqat::cog::moses
