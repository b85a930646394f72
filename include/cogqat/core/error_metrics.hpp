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

/// error_metrics over values that arrive in pieces, in order: the same sums, in the same order, as one call of
/// measure_error over the whole, so a tensor can be checked a slice at a time.
class error_accumulator {
public:
    /// Adds a piece (same length on both sides). Throws shape_error when the lengths differ.
    void add(std::span<const float> reference, std::span<const float> approximation) {
        if (reference.size() != approximation.size()) {
            throw shape_error("measure_error: reference has " + std::to_string(reference.size()) + " values, approximation " +
                              std::to_string(approximation.size()));
        }
        for (std::size_t i = 0; i < reference.size(); ++i) {
            const double diff = static_cast<double>(reference[i]) - static_cast<double>(approximation[i]);
            squared_error_ += diff * diff;
            squared_reference_ += static_cast<double>(reference[i]) * static_cast<double>(reference[i]);
            max_abs_error_ = std::max(max_abs_error_, std::fabs(diff));
        }
        count_ += reference.size();
    }

    /// Adds what `other` accumulated: pieces accumulated apart (on threads) and merged in a fixed order give
    /// the same result whatever ran them.
    void merge(const error_accumulator& other) noexcept {
        squared_error_ += other.squared_error_;
        squared_reference_ += other.squared_reference_;
        max_abs_error_ = std::max(max_abs_error_, other.max_abs_error_);
        count_ += other.count_;
    }

    [[nodiscard]] error_metrics result() const noexcept {
        error_metrics m;
        if (count_ == 0) return m;
        const double n = static_cast<double>(count_);
        m.max_abs_error = max_abs_error_;
        m.rmse = std::sqrt(squared_error_ / n);
        m.relative_rmse = squared_reference_ > 0.0 ? m.rmse / std::sqrt(squared_reference_ / n) : 0.0;
        return m;
    }

private:
    double squared_error_ = 0.0, squared_reference_ = 0.0, max_abs_error_ = 0.0;
    std::size_t count_ = 0;
};

/// Error of `approximation` against `reference` (same length; accumulated in double).
[[nodiscard]] inline error_metrics measure_error(std::span<const float> reference, std::span<const float> approximation) {
    error_accumulator sums;
    sums.add(reference, approximation);
    return sums.result();
}

}  // namespace cogqat
