#pragma once
// The classic MOSES benchmark problems as tables: even n-parity, the k-multiplexer, majority, symbolic
// regression of x + x^2 + ... + x^k, and a mixed one: a threshold rule over continuous features with label
// noise. Each checks its size argument and says what it accepts.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "cogqat/cog/moses/random.hpp"
#include "cogqat/cog/moses/scoring.hpp"
#include "cogqat/cog/moses/table.hpp"
#include "cogqat/core/error.hpp"

namespace cogqat::cog::moses {

/// A problem: a name for reports, the table to fit, and (for regression) how close counts as perfect.
struct problem {
    std::string name;
    std::variant<truth_table, data_table, labelled_table> table;
    /// Largest |error| a perfect regression may leave on a row; for a labelled table, the number of rows a
    /// perfect program may miss (those its label noise flipped); unused for truth tables.
    double tolerance = 0.0;
    /// Default complexity ratio of runs on this problem (penalized score = table score - complexity / ratio).
    double complexity_ratio = default_complexity_ratio;
};

/// Complexity ratio of the Boolean demo problems. MOSES's 3.5 makes a literal cost 1/3.5 of a wrong row;
/// then on 5-parity a five-literal minterm that fixes one row scores worse than not adding it, every
/// function of fewer than five inputs is wrong on exactly half the rows, and the search has no step that
/// pays (0 of 4 seeds solved in 1.5M evaluations). At 20 the Occam pressure still keeps programs small and
/// 5-parity is solved on most seeds; 4-parity, the multiplexers and majority need fewer evaluations too. (40
/// let fewer searches sink into a local optimum, but with restarts it solved 17 of 20 5-parity seeds to 20's
/// 20: its searches that succeed take longer.)
inline constexpr double boolean_complexity_ratio = 20.0;

/// Complexity ratio of the mixed problem, the Boolean problems' one. With label noise a weaker Occam
/// pressure lets the search fit flipped rows with ever more predicates, a local optimum it does not leave (at
/// 40, 2 of 20 seeds stuck there within 200 K evaluations; at 20, none).
inline constexpr double labelled_complexity_ratio = 20.0;

/// Complexity ratio of the regression demo problem. The table score is a sum of squared errors, which has
/// no natural unit like one wrong row; at 3.5 a coefficient costs more than the fit it buys near the
/// answer and the search settles on approximations such as exp($1) - 1 + $1*$1/2.
inline constexpr double regression_complexity_ratio = 30.0;

namespace detail {
inline void require_range(std::string_view what, std::size_t k, std::size_t lo, std::size_t hi) {
    if (k < lo || k > hi) {
        throw invalid_argument_error(std::string(what) + ": k = " + std::to_string(k) + " is out of range " + std::to_string(lo) + ".." +
                                     std::to_string(hi));
    }
}
}  // namespace detail

/// Even n-parity: true when an even number of the n inputs are true. 2 <= n <= 16.
[[nodiscard]] inline problem even_parity(std::size_t n) {
    detail::require_range("even_parity", n, 2, 16);
    return {"even-" + std::to_string(n) + "-parity",
            truth_table::complete(n, [](std::uint32_t row) { return std::popcount(row) % 2 == 0; }), 0.0, boolean_complexity_ratio};
}

/// The k-multiplexer: the first a inputs ($1 the least significant bit) address one of the 2^a data inputs
/// that follow, k = a + 2^a. k must be 3, 6, 11 or 20.
[[nodiscard]] inline problem multiplexer(std::size_t k) {
    std::size_t a = 0;
    while (a < 5 && a + (std::size_t{1} << a) < k) ++a;
    if (a == 0 || a + (std::size_t{1} << a) != k) {
        throw invalid_argument_error("multiplexer: k = " + std::to_string(k) + " is not a + 2^a for a in 1..4 (k must be 3, 6, 11 or 20)");
    }
    return {std::to_string(k) + "-multiplexer",
            truth_table::complete(k,
                                  [a](std::uint32_t row) {
                                      const std::uint32_t address = row & ((1u << a) - 1u);
                                      return (row >> (a + address)) & 1u;
                                  }),
            0.0, boolean_complexity_ratio};
}

/// Majority of n inputs: true when more than half are true. n odd, 3 <= n <= 15.
[[nodiscard]] inline problem majority(std::size_t n) {
    detail::require_range("majority", n, 3, 15);
    if (n % 2 == 0) throw invalid_argument_error("majority: k = " + std::to_string(n) + " must be odd, so that there are no ties");
    return {std::to_string(n) + "-majority",
            truth_table::complete(n, [n](std::uint32_t row) { return static_cast<std::size_t>(std::popcount(row)) * 2 > n; }), 0.0,
            boolean_complexity_ratio};
}

/// Symbolic regression of x + x^2 + ... + x^k on `samples` evenly spaced points of [-1, 1]. 1 <= k <= 10,
/// 2 <= samples <= 100000. A program is perfect when no sample is off by more than 1e-4 * max(1, max|y|).
[[nodiscard]] inline problem polynomial_regression(std::size_t k, std::size_t samples = 20) {
    detail::require_range("polynomial_regression", k, 1, 10);
    if (samples < 2 || samples > 100000) {
        throw invalid_argument_error("polynomial_regression: samples = " + std::to_string(samples) + " is out of range 2..100000");
    }
    std::vector<std::vector<double>> x(samples);
    std::vector<double> y(samples);
    double largest = 1.0;
    for (std::size_t i = 0; i < samples; ++i) {
        const double xi = -1.0 + 2.0 * static_cast<double>(i) / static_cast<double>(samples - 1);
        double power = 1.0, sum = 0.0;
        for (std::size_t j = 1; j <= k; ++j) {
            power *= xi;
            sum += power;
        }
        x[i] = {xi};
        y[i] = sum;
        largest = std::max(largest, std::fabs(sum));
    }
    return {"regression-x^1..x^" + std::to_string(k), data_table(x, y), 1e-4 * largest, regression_complexity_ratio};
}

/// The rule threshold_rule() labels rows with: or(and($1 > 0.5, $2 > 0.3), $3 > 0.7).
[[nodiscard]] inline bool threshold_rule_label(double x1, double x2, double x3) noexcept { return (x1 > 0.5 && x2 > 0.3) || x3 > 0.7; }

/// A mixed problem: `features` inputs uniform in [0, 1), labels from threshold_rule_label over the first three
/// (the others are distractors), then exactly round(noise * rows) labels flipped, chosen at random. No value
/// of $1, $2, $3 lies within 0.03 of the rule's thresholds (such draws are redrawn), so that thresholds on a
/// 6-bit grid (steps of at most 1/31 for values up to 1) can split the rows exactly as the rule does. The
/// rule then misses exactly the flipped rows, the best accuracy a program can have without fitting the noise:
/// a program is perfect when it misses no more (tolerance = the flipped count). `seed` fixes the table.
/// 3 <= features <= 16, 16 <= rows <= 100000, 0 <= noise < 0.5.
[[nodiscard]] inline problem threshold_rule(std::size_t features = 4, std::size_t rows = 256, double noise = 0.1, std::uint64_t seed = 1) {
    detail::require_range("threshold_rule", features, 3, 16);
    if (rows < 16 || rows > 100000)
        throw invalid_argument_error("threshold_rule: rows = " + std::to_string(rows) + " is out of range 16..100000");
    if (!(noise >= 0.0 && noise < 0.5)) throw invalid_argument_error("threshold_rule: noise must be in [0, 0.5)");
    constexpr double thresholds[3] = {0.5, 0.3, 0.7};
    constexpr double margin = 0.03;
    rng gen(seed);
    std::vector<std::vector<double>> x(rows, std::vector<double>(features));
    std::vector<bool> y(rows);
    for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t i = 0; i < features; ++i) {
            double v = gen.uniform();
            while (i < 3 && std::fabs(v - thresholds[i]) < margin) v = gen.uniform();
            x[r][i] = v;
        }
        y[r] = threshold_rule_label(x[r][0], x[r][1], x[r][2]);
    }
    const auto flips = static_cast<std::size_t>(std::lround(noise * static_cast<double>(rows)));
    std::vector<std::size_t> order(rows);
    for (std::size_t r = 0; r < rows; ++r) order[r] = r;
    for (std::size_t i = 0; i < flips; ++i) {
        std::swap(order[i], order[i + static_cast<std::size_t>(gen.below(rows - i))]);
        y[order[i]] = !y[order[i]];
    }
    return {"threshold-rule-" + std::to_string(features), labelled_table(x, y), static_cast<double>(flips), labelled_complexity_ratio};
}

/// A problem by the demo's name: "parity" (k inputs), "mux" (k inputs), "maj" (k inputs), "sr" (degree k) or
/// "rule" (threshold_rule with k features). Throws invalid_argument_error for an unknown name or a k the
/// problem does not accept.
[[nodiscard]] inline problem make_problem(std::string_view name, std::size_t k) {
    if (name == "parity") return even_parity(k);
    if (name == "mux") return multiplexer(k);
    if (name == "maj") return majority(k);
    if (name == "sr") return polynomial_regression(k);
    if (name == "rule") return threshold_rule(k);
    throw invalid_argument_error("make_problem: unknown problem '" + std::string(name) + "' (expected parity, mux, maj, sr or rule)");
}

}  // namespace cogqat::cog::moses
