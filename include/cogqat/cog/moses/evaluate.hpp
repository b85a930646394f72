#pragma once
// Evaluation of a program over a whole table at once: each subtree yields its value on every row before
// its parent combines them, so the inner loops run over rows (64 per word for Boolean tables) rather than
// walking the tree once per row. Mixed programs run the same way over a labelled table: each predicate
// turns its column into bits, and the tree above works on words.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "cogqat/cog/moses/program.hpp"
#include "cogqat/cog/moses/table.hpp"
#include "cogqat/cog/moses/vertex.hpp"

namespace cogqat::cog::moses {

namespace detail {

/// Rows of a Boolean tree over a truth table (literals) or a labelled table (predicates).
template <class Table>
void evaluate_boolean(const program& p, const Table& t, std::span<std::uint64_t> out) {
    constexpr bool labelled = std::is_same_v<Table, labelled_table>;
    const std::size_t words = out.size();
    switch (p.head.kind) {
        case vertex_kind::logical_true:
            std::fill(out.begin(), out.end(), ~std::uint64_t{0});
            return;
        case vertex_kind::logical_false:
            std::fill(out.begin(), out.end(), std::uint64_t{0});
            return;
        case vertex_kind::argument:
        case vertex_kind::negated_argument:
            if constexpr (!labelled) {
                const auto col = t.column(p.head.index);
                const std::uint64_t flip = p.head.kind == vertex_kind::negated_argument ? ~std::uint64_t{0} : 0;
                for (std::size_t w = 0; w < words; ++w) out[w] = col[w] ^ flip;
            }
            return;
        case vertex_kind::greater_than:
        case vertex_kind::not_greater_than:
            if constexpr (labelled) {
                greater_than_bits(t.column(p.head.index), static_cast<double>(p.head.value), out);
                if (p.head.kind == vertex_kind::not_greater_than)
                    for (auto& w : out) w = ~w;
            }
            return;
        case vertex_kind::logical_not:
            evaluate_boolean(p.children[0], t, out);
            for (auto& w : out) w = ~w;
            return;
        case vertex_kind::logical_and:
        case vertex_kind::logical_or: {
            const bool is_and = p.head.kind == vertex_kind::logical_and;
            std::fill(out.begin(), out.end(), is_and ? ~std::uint64_t{0} : std::uint64_t{0});
            std::vector<std::uint64_t> tmp(words);
            for (const auto& c : p.children) {
                evaluate_boolean(c, t, std::span<std::uint64_t>(tmp));
                for (std::size_t w = 0; w < words; ++w) out[w] = is_and ? (out[w] & tmp[w]) : (out[w] | tmp[w]);
            }
            return;
        }
        default:
            return;  // validate() has ruled out continuous vertices
    }
}

/// Throws invalid_argument_error when `p` holds an atom of the kind the table cannot give a value: a predicate
/// over a truth table (Boolean inputs) or a literal over a labelled table (continuous inputs).
inline void require_atoms_fit(const program& p, bool continuous_inputs, std::size_t& position) {
    const bool wrong = continuous_inputs ? is_literal(p.head.kind) : is_predicate(p.head.kind);
    if (wrong) {
        throw invalid_argument_error(
                "program: type mismatch: '" + to_string(program(p.head)) + "' at vertex " + std::to_string(position) +
                (continuous_inputs ? " reads a Boolean input, but a labelled table's inputs are continuous (use greater_than($i c))"
                                   : " compares a continuous input, but a truth table's inputs are Boolean"));
    }
    for (const auto& c : p.children) require_atoms_fit(c, continuous_inputs, ++position);
}

inline void evaluate_continuous(const program& p, const data_table& t, std::span<double> out) {
    const std::size_t rows = out.size();
    switch (p.head.kind) {
        case vertex_kind::constant:
            std::fill(out.begin(), out.end(), static_cast<double>(p.head.value));
            return;
        case vertex_kind::argument:
            std::copy_n(t.column(p.head.index).begin(), rows, out.begin());
            return;
        case vertex_kind::plus:
        case vertex_kind::times: {
            const bool is_plus = p.head.kind == vertex_kind::plus;
            std::fill(out.begin(), out.end(), is_plus ? 0.0 : 1.0);
            std::vector<double> tmp(rows);
            for (const auto& c : p.children) {
                evaluate_continuous(c, t, tmp);
                if (is_plus) {
                    for (std::size_t r = 0; r < rows; ++r) out[r] += tmp[r];
                } else {
                    for (std::size_t r = 0; r < rows; ++r) out[r] *= tmp[r];
                }
            }
            return;
        }
        case vertex_kind::divide: {
            evaluate_continuous(p.children[0], t, out);
            std::vector<double> tmp(rows);
            evaluate_continuous(p.children[1], t, tmp);
            for (std::size_t r = 0; r < rows; ++r) out[r] /= tmp[r];
            return;
        }
        case vertex_kind::exp:
        case vertex_kind::log:
        case vertex_kind::sin: {
            evaluate_continuous(p.children[0], t, out);
            const vertex_kind f = p.head.kind;
            for (auto& x : out) x = f == vertex_kind::exp ? std::exp(x) : f == vertex_kind::log ? std::log(x) : std::sin(x);
            return;
        }
        default:
            return;  // validate() has ruled out Boolean vertices
    }
}

}  // namespace detail

/// Values of a Boolean program on every row of `t`. Throws what validate() throws when the program is not a
/// well-formed Boolean program over t's inputs (a continuous vertex, an argument past t.arity(), ...), and
/// invalid_argument_error for a predicate, which a truth table's Boolean inputs cannot feed.
[[nodiscard]] inline row_bits evaluate(const program& p, const truth_table& t) {
    validate(p, value_type::boolean, t.arity());
    std::size_t position = 0;
    detail::require_atoms_fit(p, false, position);
    row_bits out(t.rows());
    detail::evaluate_boolean(p, t, out.words());
    return out;
}

/// Values of a mixed program (a Boolean tree over greater_than predicates) on every row of `t`. Throws what
/// validate() throws, and invalid_argument_error for a literal $i, which a labelled table cannot give.
[[nodiscard]] inline row_bits evaluate(const program& p, const labelled_table& t) {
    validate(p, value_type::boolean, t.arity());
    std::size_t position = 0;
    detail::require_atoms_fit(p, true, position);
    row_bits out(t.rows());
    detail::evaluate_boolean(p, t, out.words());
    return out;
}

/// Values of a continuous program on every row of `t`, in double precision (constants are floats). Domain
/// errors follow IEEE arithmetic: log of a negative number is NaN, division by zero infinite; the scorer
/// treats such a program as the worst possible. Throws what validate() throws for a malformed program.
[[nodiscard]] inline std::vector<double> evaluate(const program& p, const data_table& t) {
    validate(p, value_type::continuous, t.arity());
    std::vector<double> out(t.rows());
    detail::evaluate_continuous(p, t, out);
    return out;
}

}  // namespace cogqat::cog::moses
