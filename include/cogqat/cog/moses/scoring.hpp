#pragma once
// Scores. The table score says how well a program fits its table (minus the number of wrong rows for a
// truth or labelled table, minus the sum of squared errors for a data table); the penalized score subtracts
// complexity / complexity_ratio, MOSES's Occam pressure, so that among programs that fit equally well the
// simpler one wins and bloat does not pay.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

#include "cogqat/cog/moses/table.hpp"

namespace cogqat::cog::moses {

/// MOSES's default complexity ratio: one literal costs 1/3.5 of a wrong row.
inline constexpr double default_complexity_ratio = 3.5;

/// How well a program's output fits a table.
struct table_score {
    /// Higher is better, 0 is the best possible; -infinity for an output with NaN or Inf in it.
    double raw = -std::numeric_limits<double>::infinity();
    /// Every row right (a truth table) or within the tolerance (a data table).
    bool perfect = false;
};

/// A scored program or instance: the table score, the complexity, and the penalized score the search
/// ranks by.
struct composite_score {
    double raw = -std::numeric_limits<double>::infinity();
    int complexity = 0;
    double penalized = -std::numeric_limits<double>::infinity();
    bool perfect = false;
};

/// raw - complexity / ratio.
[[nodiscard]] inline double penalize(double raw, int complexity, double ratio) noexcept {
    return raw - static_cast<double>(complexity) / ratio;
}

/// The composite score of a table score and a complexity.
[[nodiscard]] inline composite_score make_score(table_score t, int complexity, double ratio) noexcept {
    return {t.raw, complexity, penalize(t.raw, complexity, ratio), t.perfect};
}

/// Ranking of the search: higher penalized score first, then lower complexity.
[[nodiscard]] inline bool better(const composite_score& a, const composite_score& b) noexcept {
    if (a.penalized != b.penalized) return a.penalized > b.penalized;
    return a.complexity < b.complexity;
}

/// Ranking of the answer: perfect first, then higher table score, then lower complexity.
[[nodiscard]] inline bool better_fit(const composite_score& a, const composite_score& b) noexcept {
    if (a.perfect != b.perfect) return a.perfect;
    if (a.raw != b.raw) return a.raw > b.raw;
    return a.complexity < b.complexity;
}

/// Score of a Boolean output (packed as the table's target is) against a truth table: minus the number of
/// rows that differ.
[[nodiscard]] inline table_score score_output(std::span<const std::uint64_t> output, const truth_table& t) noexcept {
    const std::size_t wrong = mismatches(output, t.target().words(), t.rows());
    return {wrong == 0 ? 0.0 : -static_cast<double>(wrong), wrong == 0};  // +0, not -0, for a perfect score
}

/// Score of a Boolean output against a labelled table: minus the number of rows whose label it misses;
/// perfect when at most `allowed_errors` rows are missed (a problem with label noise allows the rows its
/// noise flipped, which the rule that made the labels misses too).
[[nodiscard]] inline table_score score_output(std::span<const std::uint64_t> output, const labelled_table& t,
                                              std::size_t allowed_errors) noexcept {
    const std::size_t wrong = mismatches(output, t.target().words(), t.rows());
    return {wrong == 0 ? 0.0 : -static_cast<double>(wrong), wrong <= allowed_errors};
}

/// Score of a continuous output against a data table: minus the sum of squared errors; perfect when no row
/// is off by more than `tolerance`. Any NaN or Inf in the output gives -infinity.
[[nodiscard]] inline table_score score_output(std::span<const double> output, const data_table& t, double tolerance) noexcept {
    const auto y = t.targets();
    double sse = 0.0;
    bool within = true;
    for (std::size_t r = 0; r < y.size(); ++r) {
        const double e = output[r] - y[r];
        if (!std::isfinite(e)) return {};
        sse += e * e;
        within = within && std::fabs(e) <= tolerance;
    }
    if (!std::isfinite(sse)) return {};
    return {sse == 0.0 ? 0.0 : -sse, within};
}

}  // namespace cogqat::cog::moses
