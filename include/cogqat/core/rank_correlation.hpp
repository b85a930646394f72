#pragma once
// Spearman's rank correlation: how well one measure orders items as another does, whatever their scales.
// It judges a cheap sensitivity estimate against an exact one, where only the order matters to an allocator
// that trades cost between items of one kind.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"

namespace cogqat {

/// The rank of each value, 1-based; tied values share the mean of the ranks they span (so ties add no order).
[[nodiscard]] inline std::vector<double> fractional_ranks(std::span<const double> values) {
    std::vector<std::size_t> order(values.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
    std::vector<double> ranks(values.size());
    for (std::size_t first = 0; first < order.size();) {
        std::size_t last = first + 1;
        while (last < order.size() && values[order[last]] == values[order[first]]) ++last;
        const double mean = 0.5 * static_cast<double>(first + last - 1) + 1.0;
        for (std::size_t k = first; k < last; ++k) ranks[order[k]] = mean;
        first = last;
    }
    return ranks;
}

/// Spearman's rho of x and y: the Pearson correlation of their fractional ranks, in [-1, 1]. Throws
/// shape_error when the lengths differ, invalid_argument_error for fewer than two pairs or when either series
/// is constant (no order to compare), value_error with the index for a NaN.
[[nodiscard]] inline double spearman_rank_correlation(std::span<const double> x, std::span<const double> y) {
    if (x.size() != y.size())
        throw shape_error("spearman_rank_correlation: " + std::to_string(x.size()) + " values against " + std::to_string(y.size()));
    if (x.size() < 2) throw invalid_argument_error("spearman_rank_correlation: needs at least two pairs, got " + std::to_string(x.size()));
    for (std::size_t i = 0; i < x.size(); ++i)
        if (std::isnan(x[i]) || std::isnan(y[i])) throw value_error("spearman_rank_correlation: NaN at index " + std::to_string(i), i);
    const auto rx = fractional_ranks(x), ry = fractional_ranks(y);
    const double mean = 0.5 * static_cast<double>(x.size() + 1);  // of 1..n, whatever the ties
    double sxy = 0.0, sxx = 0.0, syy = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double dx = rx[i] - mean, dy = ry[i] - mean;
        sxy += dx * dy, sxx += dx * dx, syy += dy * dy;
    }
    if (!(sxx > 0.0 && syy > 0.0)) throw invalid_argument_error("spearman_rank_correlation: a constant series has no order to compare");
    return sxy / std::sqrt(sxx * syy);
}

}  // namespace cogqat
