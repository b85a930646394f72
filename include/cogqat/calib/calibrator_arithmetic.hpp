#pragma once
// The two loops the calibrators spend their time in, each with one scalar reference and a Backend choice:
// the squared error of quantizing a group with given parameters (every candidate of the MSE search is one
// pass) and the histogram of a group's values (entropy_kl, running calibrators). backend::Simd runs the
// active instruction set's kernel (dispatch::kernel_table::calibrator, simd/isa/calibrator_kernels.hpp)
// where there is one, and the kernels give the reference's bits.
//
// The reference fixes its summation order so that a SIMD kernel can reproduce it exactly: 16 partial sums in
// double, value i added to partial i mod 16, the partials then added pairwise ((0+1)+(2+3))+... Each term is
// computed exactly as the quantizer encodes and decodes (affine_levels.hpp), its square in double.
//
// Compiled without FMA contraction, so that results do not depend on compiler flags.

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

#include "cogqat/core/policy.hpp"
#include "cogqat/core/rounding.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/dispatch/kernel_table.hpp"

COGQAT_STRICT_FP_BEGIN

namespace cogqat::detail::calib {

/// What one pass over a group finds: its smallest and largest value and the index of the first value that is
/// not finite (the group's size when all are; lo and hi then cover the values before it).
struct scan_result {
    float lo = std::numeric_limits<float>::infinity();
    float hi = -std::numeric_limits<float>::infinity();
    std::size_t first_non_finite = 0;
};

/// Scalar reference of the pass.
[[nodiscard]] inline scan_result scan_reference(std::span<const float> values) noexcept {
    scan_result r;
    for (std::size_t i = 0; i < values.size(); ++i) {
        const float v = values[i];
        if (!std::isfinite(v)) {
            r.first_non_finite = i;
            return r;
        }
        r.lo = std::min(r.lo, v);
        r.hi = std::max(r.hi, v);
    }
    r.first_non_finite = values.size();
    return r;
}

/// scan_reference run by backend B. Equal to the reference but for the sign of a zero extreme (SIMD min and
/// max may pick either of -0 and +0), which every caller normalizes.
template <Backend B>
[[nodiscard]] inline scan_result scan(std::span<const float> values) {
    if constexpr (std::same_as<B, backend::Simd>) {
        if (const auto k = dispatch::active().calibrator.scan) {
            scan_result r;
            r.first_non_finite = k(values.data(), values.size(), &r.lo, &r.hi);
            return r;
        }
    }
    return scan_reference(values);
}

/// Partial sums of the squared error, the count the kernels' accumulators are laid out for.
inline constexpr std::size_t error_lanes = 16;

/// ((p0 + p1) + (p2 + p3)) + ... : the fixed order in which the partial sums are combined.
[[nodiscard]] inline double combine_partials(const std::array<double, error_lanes>& partial) noexcept {
    std::array<double, error_lanes> s = partial;
    for (std::size_t width = error_lanes; width > 1; width /= 2)
        for (std::size_t i = 0; i < width / 2; ++i) s[i] = s[2 * i] + s[2 * i + 1];
    return s[0];
}

/// Scalar reference: sum of (x - decode(encode(x)))^2 over `values` for the parameters `p` on the level range
/// [min_level, max_level], exactly as the quantizer encodes (clamp(x / scale) in float, round to nearest with
/// ties to even) and decodes (scale * level). Scale 0 decodes everything to 0.
[[nodiscard]] inline double squared_error_reference(std::span<const float> values, affine_params p, int min_level, int max_level) noexcept {
    std::array<double, error_lanes> partial{};
    const float low = static_cast<float>(min_level - p.zero_point);
    const float high = static_cast<float>(max_level - p.zero_point);
    for (std::size_t i = 0; i < values.size(); ++i) {
        const float v = values[i];
        float decoded = 0.0f;
        if (p.scale != 0.0f) decoded = p.scale * static_cast<float>(detail::nearest_int(std::clamp(v / p.scale, low, high)));
        const double diff = static_cast<double>(v) - static_cast<double>(decoded);
        partial[i % error_lanes] += diff * diff;
    }
    return combine_partials(partial);
}

/// squared_error_reference run by backend B: the active SIMD kernel for backend::Simd where there is one.
template <Backend B>
[[nodiscard]] inline double squared_error(std::span<const float> values, affine_params p, int min_level, int max_level) {
    if constexpr (std::same_as<B, backend::Simd>) {
        if (p.scale != 0.0f) {
            if (const auto k = dispatch::active().calibrator.squared_error)
                return k(values.data(), values.size(), p.scale, p.zero_point, min_level, max_level);
        }
    }
    return squared_error_reference(values, p, min_level, max_level);
}

/// How a histogram places a value t (the kernels take the kind as an int).
enum class histogram_kind : int {
    /// bin = floor((t - origin) * scale), 0 below origin.
    offset = 0,
    /// bin = floor((|t| - origin) * scale).
    magnitude = 1,
    /// Two halves split at 0, mirrored: with half = bins / 2 and p = min(floor(|t| * scale), half - 1), bin =
    /// half + p for t >= 0 (and -0) and half - 1 - p for t < 0. With a power-of-two scale no arithmetic rounds,
    /// so doubling the width is exactly merging bin pairs within each half (running_calibrator's rebinning).
    two_sided = 2,
};

/// Where a histogram puts its values: every bin index is clamped to [0, bins - 1]. `scale` is bins per unit.
struct histogram_layout {
    double origin = 0.0;
    double scale = 0.0;
    histogram_kind kind = histogram_kind::offset;

    [[nodiscard]] std::size_t bin(float v, std::size_t bins) const noexcept {
        const double t = static_cast<double>(v);
        if (kind == histogram_kind::two_sided) {
            const std::size_t half = bins / 2;
            const double p = std::min(std::fabs(t) * scale, static_cast<double>(half - 1));
            const auto k = static_cast<std::size_t>(p);
            return t < 0.0 ? half - 1 - k : half + k;
        }
        const double u = kind == histogram_kind::magnitude ? std::fabs(t) : t;
        const double position = std::clamp((u - origin) * scale, 0.0, static_cast<double>(bins - 1));
        return static_cast<std::size_t>(position);
    }
};

/// Scalar reference: adds one count per value of `values` to `counts`.
inline void histogram_reference(std::span<const float> values, histogram_layout layout, std::span<std::uint64_t> counts) noexcept {
    for (const float v : values) ++counts[layout.bin(v, counts.size())];
}

/// histogram_reference run by backend B.
template <Backend B>
inline void histogram(std::span<const float> values, histogram_layout layout, std::span<std::uint64_t> counts) {
    if constexpr (std::same_as<B, backend::Simd>) {
        if (const auto k = dispatch::active().calibrator.histogram)
            return k(values.data(), values.size(), layout.origin, layout.scale, static_cast<int>(layout.kind), counts.data(),
                     counts.size());
    }
    histogram_reference(values, layout, counts);
}

}  // namespace cogqat::detail::calib

COGQAT_STRICT_FP_END
