#pragma once
// How far a reconstruction is from the original: the figures every quantization report prints.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>

#include "cogqat/core/error.hpp"

namespace cogqat {

struct error_metrics {
    double rmse = 0.0;           ///< sqrt(mean((a - b)^2))
    double max_abs_error = 0.0;  ///< max |a - b|
    double relative_rmse = 0.0;  ///< rmse / sqrt(mean(a^2)), 0 when a is all zero
};

/// Error of `approximation` against `reference` (same length; accumulated in double).
[[nodiscard]] inline error_metrics measure_error(std::span<const float> reference, std::span<const float> approximation) {
    if (reference.size() != approximation.size()) {
        throw shape_error("measure_error: reference has " + std::to_string(reference.size()) + " values, approximation " +
                          std::to_string(approximation.size()));
    }
    error_metrics m;
    if (reference.empty()) return m;
    double squared_error = 0.0, squared_reference = 0.0;
    for (std::size_t i = 0; i < reference.size(); ++i) {
        const double diff = static_cast<double>(reference[i]) - static_cast<double>(approximation[i]);
        squared_error += diff * diff;
        squared_reference += static_cast<double>(reference[i]) * static_cast<double>(reference[i]);
        m.max_abs_error = std::max(m.max_abs_error, std::fabs(diff));
    }
    const double n = static_cast<double>(reference.size());
    m.rmse = std::sqrt(squared_error / n);
    m.relative_rmse = squared_reference > 0.0 ? m.rmse / std::sqrt(squared_reference / n) : 0.0;
    return m;
}

}  // namespace cogqat
