#pragma once
// Program trees: a vertex and its children, held by value so that programs copy, compare and sort like
// strings. Factories build well-formed nodes; validate() checks a tree built any other way before it is
// evaluated, so that a malformed tree is an exception rather than undefined behaviour.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "cogqat/cog/moses/vertex.hpp"
#include "cogqat/core/error.hpp"

namespace cogqat::cog::moses {

/// Deepest tree validate() and the parser accept; evaluation and the reduct recurse once per level, so this
/// bounds their stack use.
inline constexpr std::size_t max_program_depth = 512;

/// A program tree.
struct program {
    vertex head;
    std::vector<program> children;

    program() = default;
    explicit program(vertex v, std::vector<program> kids = {}) : head(v), children(std::move(kids)) {}

    [[nodiscard]] vertex_kind kind() const noexcept { return head.kind; }
};

// ------------------------------------------------------------------------------------------------ factories

/// $n, the n-th input (1-based, as printed). Throws invalid_argument_error for n == 0.
[[nodiscard]] inline program make_argument(std::size_t n) {
    if (n == 0 || n > UINT32_MAX) throw invalid_argument_error("make_argument: arguments are numbered from $1, got $" + std::to_string(n));
    return program(vertex{vertex_kind::argument, static_cast<std::uint32_t>(n - 1), 0.0f});
}
/// !$n, the negation of the n-th input (1-based).
[[nodiscard]] inline program make_negated_argument(std::size_t n) {
    program p = make_argument(n);
    p.head.kind = vertex_kind::negated_argument;
    return p;
}
/// A constant. Throws value_error on NaN or Inf: a program never carries a non-finite constant.
[[nodiscard]] inline program make_constant(float v) {
    if (!std::isfinite(v)) throw value_error("make_constant: the constant is not finite", 0);
    return program(vertex{vertex_kind::constant, 0, v == 0.0f ? 0.0f : v});  // -0 and +0 print and compare alike
}
/// greater_than($n threshold): the n-th input (1-based) above `threshold`. Throws invalid_argument_error for
/// n == 0 and value_error on a threshold that is NaN or Inf.
[[nodiscard]] inline program make_greater_than(std::size_t n, float threshold) {
    if (n == 0 || n > UINT32_MAX)
        throw invalid_argument_error("make_greater_than: arguments are numbered from $1, got $" + std::to_string(n));
    if (!std::isfinite(threshold)) throw value_error("make_greater_than: the threshold is not finite", 0);
    return program(vertex{vertex_kind::greater_than, static_cast<std::uint32_t>(n - 1), threshold == 0.0f ? 0.0f : threshold});
}
/// true or false.
[[nodiscard]] inline program make_bool(bool b) {
    return program(vertex{b ? vertex_kind::logical_true : vertex_kind::logical_false, 0, 0.0f});
}
[[nodiscard]] inline program make_and(std::vector<program> c) { return program(vertex{vertex_kind::logical_and, 0, 0.0f}, std::move(c)); }
[[nodiscard]] inline program make_or(std::vector<program> c) { return program(vertex{vertex_kind::logical_or, 0, 0.0f}, std::move(c)); }
[[nodiscard]] inline program make_not(program c) {
    std::vector<program> kids;
    kids.push_back(std::move(c));
    return program(vertex{vertex_kind::logical_not, 0, 0.0f}, std::move(kids));
}
[[nodiscard]] inline program make_plus(std::vector<program> c) { return program(vertex{vertex_kind::plus, 0, 0.0f}, std::move(c)); }
[[nodiscard]] inline program make_times(std::vector<program> c) { return program(vertex{vertex_kind::times, 0, 0.0f}, std::move(c)); }
[[nodiscard]] inline program make_divide(program num, program den) {
    std::vector<program> kids;
    kids.push_back(std::move(num));
    kids.push_back(std::move(den));
    return program(vertex{vertex_kind::divide, 0, 0.0f}, std::move(kids));
}
/// exp, log or sin of `c`; any other kind is an invalid_argument_error.
[[nodiscard]] inline program make_function(vertex_kind f, program c) {
    if (f != vertex_kind::exp && f != vertex_kind::log && f != vertex_kind::sin) {
        throw invalid_argument_error("make_function: '" + std::string(info(f).name) + "' is not one of exp, log, sin");
    }
    std::vector<program> kids;
    kids.push_back(std::move(c));
    return program(vertex{f, 0, 0.0f}, std::move(kids));
}

// ------------------------------------------------------------------------------------------ order, printing

/// A total order on programs: by kind, then argument number or constant value, then children
/// lexicographically. The reduct sorts commutative operands with it, which is what makes `or($2 $1)` and
/// `or($1 $2)` the same program.
[[nodiscard]] inline std::strong_ordering compare(const program& a, const program& b) noexcept {
    if (a.head.kind != b.head.kind) return a.head.kind <=> b.head.kind;
    if (a.head.index != b.head.index) return a.head.index <=> b.head.index;
    // Constants are finite (make_constant and the reduct see to it), so < and > decide every pair.
    if (a.head.value < b.head.value) return std::strong_ordering::less;
    if (a.head.value > b.head.value) return std::strong_ordering::greater;
    const std::size_t n = std::min(a.children.size(), b.children.size());
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = compare(a.children[i], b.children[i]);
        if (c != 0) return c;
    }
    return a.children.size() <=> b.children.size();
}
[[nodiscard]] inline bool operator==(const program& a, const program& b) noexcept { return compare(a, b) == 0; }
[[nodiscard]] inline bool operator<(const program& a, const program& b) noexcept { return compare(a, b) < 0; }

/// A hash consistent with ==, for unordered containers of programs.
[[nodiscard]] inline std::size_t hash_value(const program& p) noexcept {
    std::uint64_t h = 0x9e3779b97f4a7c15ull ^ (static_cast<std::uint64_t>(p.head.kind) << 32 | p.head.index);
    std::uint32_t bits = 0;
    const float v = p.head.value == 0.0f ? 0.0f : p.head.value;  // -0 == +0
    std::memcpy(&bits, &v, sizeof bits);
    h = (h ^ bits) * 0xff51afd7ed558ccdull;
    for (const auto& c : p.children) h = (h ^ hash_value(c)) * 0xc4ceb9fe1a85ec53ull + 0x632be59bd9b4e019ull;
    return static_cast<std::size_t>(h ^ (h >> 29));
}

/// Hash functor for std::unordered_set<program, program_hash>.
struct program_hash {
    [[nodiscard]] std::size_t operator()(const program& p) const noexcept { return hash_value(p); }
};

/// Shortest text that reads back as the same float.
[[nodiscard]] inline std::string format_constant(float v) {
    char buffer[32];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
    return std::string(buffer, result.ptr);
}

namespace detail {
inline void append_program(std::string& out, const program& p) {
    const vertex& v = p.head;
    switch (v.kind) {
        case vertex_kind::argument:
            out += '$' + std::to_string(v.index + 1);
            return;
        case vertex_kind::negated_argument:
            out += "!$" + std::to_string(v.index + 1);
            return;
        case vertex_kind::constant:
            out += format_constant(v.value);
            return;
        case vertex_kind::logical_true:
        case vertex_kind::logical_false:
            out += info(v.kind).name;
            return;
        case vertex_kind::greater_than:
        case vertex_kind::not_greater_than:
            out += info(v.kind).name;
            out += "($" + std::to_string(v.index + 1) + ' ' + format_constant(v.value) + ')';
            return;
        default:
            break;
    }
    out += info(v.kind).name;
    out += '(';
    for (std::size_t i = 0; i < p.children.size(); ++i) {
        if (i) out += ' ';
        append_program(out, p.children[i]);
    }
    out += ')';
}
}  // namespace detail

/// The program in MOSES's combo syntax: `and($1 or(!$2 $3))`, `+($1 *($1 $1))`, `or(greater_than($1 0.5)
/// !greater_than($2 0.25))`. parse_program reads it back.
[[nodiscard]] inline std::string to_string(const program& p) {
    std::string out;
    detail::append_program(out, p);
    return out;
}

// ------------------------------------------------------------------------------------------------ measures

/// Number of vertices.
[[nodiscard]] inline std::size_t size(const program& p) noexcept {
    std::size_t n = 1;
    for (const auto& c : p.children) n += size(c);
    return n;
}

/// MOSES's complexity: one per literal (argument, negated argument or constant), plus one per divide, exp,
/// log and sin. and, or, not, +, * and true/false are free: a Boolean formula costs its literal count. A
/// predicate costs 2, its input and its threshold, as $i > c would written out.
[[nodiscard]] inline int complexity(const program& p) noexcept {
    int c = 0;
    switch (p.head.kind) {
        case vertex_kind::greater_than:
        case vertex_kind::not_greater_than:
            return 2;
        case vertex_kind::argument:
        case vertex_kind::negated_argument:
        case vertex_kind::constant:
            return 1;
        case vertex_kind::divide:
        case vertex_kind::exp:
        case vertex_kind::log:
        case vertex_kind::sin:
            c = 1;
            break;
        default:
            break;
    }
    for (const auto& child : p.children) c += complexity(child);
    return c;
}

/// Largest argument number used (1-based) by a literal or predicate, 0 when none.
[[nodiscard]] inline std::size_t arity(const program& p) noexcept {
    std::size_t a = is_atom(p.head.kind) ? p.head.index + 1 : 0;
    for (const auto& c : p.children) a = std::max(a, arity(c));
    return a;
}

// --------------------------------------------------------------------------------------------- validation

namespace detail {

/// Checks children counts, depth and type agreement below `p`, which sits at pre-order position `position`
/// and must return `expected`. Returns the number of vertices visited.
inline std::size_t validate_node(const program& p, value_type expected, std::size_t position, std::size_t depth, std::size_t table_arity) {
    const vertex_info& vi = info(p.head.kind);
    auto where = [&] { return " at vertex " + std::to_string(position) + " ('" + to_string(program(p.head)) + "')"; };
    if (depth > max_program_depth) {
        throw invalid_argument_error("program: deeper than " + std::to_string(max_program_depth) + " levels" + where());
    }
    if (static_cast<std::size_t>(p.head.kind) >= vertex_table.size())
        throw invalid_argument_error("program: unknown vertex kind" + where());
    const int n = static_cast<int>(std::min<std::size_t>(p.children.size(), INT32_MAX));
    if (n < vi.min_children || (vi.max_children >= 0 && n > vi.max_children)) {
        const std::string count = std::to_string(vi.min_children) + (vi.min_children == 1 ? " child" : " children");
        const std::string want = vi.min_children == vi.max_children ? count : "at least " + count;
        throw invalid_argument_error("program: arity mismatch: '" + std::string(vi.name) + "' takes " + want + ", got " +
                                     std::to_string(p.children.size()) + where());
    }
    if (is_atom(p.head.kind)) {
        if ((p.head.kind == vertex_kind::negated_argument || is_predicate(p.head.kind)) && expected != value_type::boolean) {
            throw invalid_argument_error(std::string("program: type mismatch: ") +
                                         (is_predicate(p.head.kind) ? "a predicate" : "a negated argument") +
                                         " in a continuous expression" + where());
        }
        if (p.head.index >= table_arity) {
            throw shape_error("program: arity mismatch: the program reads $" + std::to_string(p.head.index + 1) + " but the table has " +
                              std::to_string(table_arity) + " input" + (table_arity == 1 ? "" : "s") + where());
        }
    } else if (vi.type != expected) {
        throw invalid_argument_error(std::string("program: type mismatch: a ") +
                                     (vi.type == value_type::boolean ? "Boolean" : "continuous") + " vertex where a " +
                                     (expected == value_type::boolean ? "Boolean" : "continuous") + " value is needed" + where());
    }
    if ((p.head.kind == vertex_kind::constant || is_predicate(p.head.kind)) && !std::isfinite(p.head.value))
        throw value_error(std::string("program: a non-finite ") + (is_predicate(p.head.kind) ? "threshold" : "constant") + where(),
                          position);
    std::size_t visited = 1;
    for (const auto& c : p.children) visited += validate_node(c, expected, position + visited, depth + 1, table_arity);
    return visited;
}

}  // namespace detail

/// The type a program returns: Boolean unless its root is a continuous vertex (a bare $i counts as Boolean).
[[nodiscard]] inline value_type type_of(const program& p) noexcept {
    return is_literal(p.head.kind) ? value_type::boolean : info(p.head.kind).type;
}

/// Checks that `p` is a well-formed program of type `expected` over a table with `table_arity` inputs:
/// children counts (invalid_argument_error, "arity mismatch"), arguments within the table (shape_error,
/// "arity mismatch"), one type throughout (invalid_argument_error) and depth. Messages name the vertex by
/// its pre-order position.
inline void validate(const program& p, value_type expected, std::size_t table_arity) {
    detail::validate_node(p, expected, 0, 0, table_arity);
}

}  // namespace cogqat::cog::moses
