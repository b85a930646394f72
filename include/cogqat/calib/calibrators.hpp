#pragma once
// Scale calibrators: the rules that choose the range [lo, hi] a quantizer maps onto its levels. Taking the
// full range of the values (min_max) wastes most of the levels on a few outliers when the distribution has
// long tails; the others clip, trading a large error on the few clipped values for a finer step on all the
// rest. Each calibrator is a small policy type with one static member function, and the concept Calibrator
// below names exactly what a user of a calibrator may call, so a new one is checked where it is used.
//
// Every calibrator takes the values of one group (a tensor, a row, a block of activations) and the bit width
// of the quantizer, and returns a clip_range. The symmetric ones (percentile, mse_optimal, entropy_kl) look
// at |x| only and return lo = -hi, meant for the Symmetric mode; min_max returns the smallest and largest
// value, meant for the Asymmetric mode (or, through max(|lo|, |hi|), for the Symmetric one).
//
// Input checks, shared by all: bits outside [2, 16] -> invalid_argument_error; no values -> shape_error; a
// NaN or an infinity -> value_error carrying its index. An all-zero input gives {0, 0}.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/policy.hpp"
#include "cogqat/core/rounding.hpp"
#include "cogqat/core/strict_fp.hpp"

namespace cogqat {

/// The range a quantizer should map onto its 2^bits levels; values outside it are clamped.
struct clip_range {
    float lo = 0.0f;
    float hi = 0.0f;

    friend bool operator==(const clip_range&, const clip_range&) = default;
};

/// What a calibrator must provide: a static `calibrate(values, bits)` returning the clip range for `values`
/// quantized with `bits` bits. It must be deterministic and return lo <= hi for valid input.
template <class C>
concept Calibrator = requires(std::span<const float> values, int bits) {
    { C::calibrate(values, bits) } -> std::same_as<clip_range>;
};

namespace detail::calib {

inline void require_bits(int bits, std::string_view context) {
    if (bits < 2 || bits > 16) {
        throw invalid_argument_error(std::string(context) + ": bits must be in [2, 16], got " + std::to_string(bits));
    }
}

/// The checks every calibrator runs first: bit width, at least one value, every value finite.
inline void require_input(std::span<const float> values, int bits, std::string_view context) {
    require_bits(bits, context);
    if (values.empty()) throw shape_error(std::string(context) + ": no values to calibrate on");
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (!std::isfinite(values[i])) {
            const char* what = std::isnan(values[i]) ? "NaN" : (values[i] > 0 ? "+Inf" : "-Inf");
            throw value_error(std::string(context) + ": input[" + std::to_string(i) + "] is " + what, i);
        }
    }
}

/// Largest |x| of finite values.
[[nodiscard]] inline float max_abs(std::span<const float> values) noexcept {
    float m = 0.0f;
    for (const float v : values) m = std::max(m, std::fabs(v));
    return m;
}

/// {-c, c}, with +0 rather than -0 for c = 0.
[[nodiscard]] inline clip_range symmetric_range(float c) noexcept {
    if (c == 0.0f) return {0.0f, 0.0f};
    return {-c, c};
}

COGQAT_STRICT_FP_BEGIN

/// Sum of squared errors of quantizing `values` with the parameters `p` on the level range [min_level,
/// max_level], exactly as the library's quantizer encodes and decodes (quantizer.hpp: clamp(x / scale) in
/// float, round to nearest with ties to even, decode scale * (level - zero_point)). Accumulated in double.
[[nodiscard]] inline double squared_error(std::span<const float> values, affine_params p, int min_level, int max_level) noexcept {
    double sum = 0.0;
    if (p.scale == 0.0f) {
        for (const float v : values) sum += static_cast<double>(v) * static_cast<double>(v);
        return sum;
    }
    const float low = static_cast<float>(min_level - p.zero_point);
    const float high = static_cast<float>(max_level - p.zero_point);
    for (const float v : values) {
        const float steps = std::clamp(v / p.scale, low, high);
        const float decoded = p.scale * static_cast<float>(detail::nearest_int(steps));
        const double diff = static_cast<double>(v) - static_cast<double>(decoded);
        sum += diff * diff;
    }
    return sum;
}

/// Mean squared error of symmetric quantization at clip c (2^(bits-1)-1 levels each side, 0 exact).
[[nodiscard]] inline double symmetric_mse(std::span<const float> values, float c, int bits) noexcept {
    const affine_params p = Symmetric::choose_params(-c, c, bits);
    return squared_error(values, p, Symmetric::min_level(bits), Symmetric::max_level(bits)) / static_cast<double>(values.size());
}

COGQAT_STRICT_FP_END

}  // namespace detail::calib

/// Mean squared error of quantizing `values` into the range `r` with `bits` bits, on the grid the library's
/// quantizer uses for that range, rounding to nearest and clamping what lies outside:
///  - a symmetric range (r.lo == -r.hi) uses the Symmetric mode: 2^(bits-1)-1 levels each side of an exact 0,
///    step r.hi / (2^(bits-1)-1) -- the grid of the symmetric calibrators and of mse_optimal's search;
///  - any other range uses the Asymmetric mode: 2^bits levels with an integer zero-point, the range first
///    widened to include 0 (Asymmetric::choose_params).
/// Throws as the calibrators do (bits, empty input, non-finite values), and invalid_argument_error when r is
/// not a finite range with lo <= hi.
[[nodiscard]] inline float quantization_mse(std::span<const float> values, clip_range r, int bits) {
    constexpr std::string_view context = "quantization_mse";
    detail::calib::require_input(values, bits, context);
    if (!std::isfinite(r.lo) || !std::isfinite(r.hi) || r.lo > r.hi) {
        throw invalid_argument_error(std::string(context) + ": the range [" + std::to_string(r.lo) + ", " + std::to_string(r.hi) +
                                     "] is not a finite range with lo <= hi");
    }
    if (r.lo == -r.hi) return static_cast<float>(detail::calib::symmetric_mse(values, r.hi, bits));
    const affine_params p = Asymmetric::choose_params(r.lo, r.hi, bits);
    const double sse = detail::calib::squared_error(values, p, Asymmetric::min_level(bits), Asymmetric::max_level(bits));
    return static_cast<float>(sse / static_cast<double>(values.size()));
}

// -------------------------------------------------------------------------------------------------- min_max

/// The full range: {min(x), max(x)}. Nothing is clipped; every outlier widens the step.
struct min_max {
    static constexpr std::string_view name = "min_max";
    static constexpr bool symmetric = false;

    [[nodiscard]] static clip_range calibrate(std::span<const float> values, int bits) {
        detail::calib::require_input(values, bits, "min_max::calibrate");
        const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
        // +0 for an all-zero (or -0) input, like the other calibrators.
        return {*lo == 0.0f ? 0.0f : *lo, *hi == 0.0f ? 0.0f : *hi};
    }
};

// ----------------------------------------------------------------------------------------------- percentile

/// Symmetric clip at the P-per-mille quantile of |x| (percentile<999> clips at the 99.9th percentile).
///
/// The quantile is an exact order statistic by the nearest-rank definition: with n values, the k-th smallest
/// |x| (1-based) for k = ceil(P * n / 1000), at least 1. So percentile<990> of |x| = 1, 2, ..., 1000 is 990,
/// and percentile<1000> is max|x|. Found with std::nth_element on a copy of |x|: O(n) time, n floats of memory.
template <int P>
struct percentile {
    static_assert(P >= 1 && P <= 1000, "percentile<P> takes P in per-mille, 1 <= P <= 1000");
    static constexpr int per_mille = P;
    static constexpr std::string_view name = "percentile";
    static constexpr bool symmetric = true;

    /// The 1-based rank ceil(P * n / 1000) (at least 1), computed without overflow for any n.
    [[nodiscard]] static constexpr std::size_t rank(std::size_t n) noexcept {
        const std::size_t p = static_cast<std::size_t>(P);
        const std::size_t k = n / 1000 * p + ((n % 1000) * p + 999) / 1000;
        return std::max<std::size_t>(k, 1);
    }

    [[nodiscard]] static clip_range calibrate(std::span<const float> values, int bits) {
        detail::calib::require_input(values, bits, "percentile::calibrate");
        std::vector<float> magnitudes(values.size());
        std::transform(values.begin(), values.end(), magnitudes.begin(), [](float v) { return std::fabs(v); });
        const auto nth = magnitudes.begin() + static_cast<std::ptrdiff_t>(rank(values.size()) - 1);
        std::nth_element(magnitudes.begin(), nth, magnitudes.end());
        return detail::calib::symmetric_range(*nth);
    }
};

// ---------------------------------------------------------------------------------------------- mse_optimal

/// Symmetric clip c minimizing the mean squared error of symmetric quantization at c (the grid of
/// quantization_mse for {-c, c}: 2^(bits-1)-1 levels each side, round to nearest, clamp).
///
/// Search: the coarse grid c = max|x| * k / 100 for k = 1..100, then 40 evenly spaced candidates between the
/// coarse neighbours of the best one (steps of max|x| / 2000). The smallest c reaching the lowest error wins.
/// Every candidate costs one pass over the values: about 140 passes in all. max|x| itself is a candidate, so
/// the result is never worse than the symmetric full range.
struct mse_optimal {
    static constexpr std::string_view name = "mse_optimal";
    static constexpr bool symmetric = true;
    static constexpr int coarse_steps = 100;
    static constexpr int fine_steps = 40;

    [[nodiscard]] static clip_range calibrate(std::span<const float> values, int bits) {
        detail::calib::require_input(values, bits, "mse_optimal::calibrate");
        const float largest = detail::calib::max_abs(values);
        if (largest == 0.0f) return {0.0f, 0.0f};
        const double top = static_cast<double>(largest);

        float best_clip = largest;
        double best_mse = std::numeric_limits<double>::infinity();
        int best_k = coarse_steps;
        for (int k = 1; k <= coarse_steps; ++k) {
            const float c = k == coarse_steps ? largest : static_cast<float>(top * k / coarse_steps);
            if (c <= 0.0f) continue;  // max|x| so small that the candidate underflows
            const double mse = detail::calib::symmetric_mse(values, c, bits);
            if (mse < best_mse) {
                best_mse = mse;
                best_clip = c;
                best_k = k;
            }
        }
        // Refine between the coarse neighbours k-1 and k+1 (clipped to (0, max|x|]).
        const double from = top * (best_k - 1) / coarse_steps;
        const double to = top * std::min(best_k + 1, coarse_steps) / coarse_steps;
        for (int j = 1; j < fine_steps; ++j) {
            const float c = static_cast<float>(from + (to - from) * j / fine_steps);
            if (c <= 0.0f || c > largest) continue;
            const double mse = detail::calib::symmetric_mse(values, c, bits);
            if (mse < best_mse || (mse == best_mse && c < best_clip)) {
                best_mse = mse;
                best_clip = c;
            }
        }
        return detail::calib::symmetric_range(best_clip);
    }
};

// ----------------------------------------------------------------------------------------------- entropy_kl

/// TensorRT's entropy calibration: the symmetric clip whose quantized distribution of |x| loses the least
/// information, measured as KL(P || Q).
///
///  1. Histogram |x| into 2048 bins of width w = max|x| / 2048 (max|x| falls in the last bin).
///  2. For every candidate i from L = 2^(bits-1) to 2048 (just 2048 when L >= 2048):
///     P = bins 0..i-1, with the count of every bin >= i (the clipped outliers) added to bin i-1;
///     Q = bins 0..i-1 without the outliers, merged into L levels (source bin k goes to level k*L/i), each
///         level's total then spread evenly over its non-empty source bins; empty bins stay empty in Q.
///     Both are normalized to sum 1 and KL(P || Q) = sum P log(P / Q) over the bins where P > 0. Where P > 0
///     but Q = 0 (bin i-1 empty but outliers folded into it) the divergence is infinite: the candidate loses.
///  3. The i of the smallest divergence (the smallest such i on ties) gives the threshold (i + 0.5) * w,
///     TensorRT's convention, capped at max|x| (which only matters for i = 2048).
/// i = 2048 always has a finite divergence (no outliers), so a threshold is always found. Cost: one pass
/// over the values, then O(2048^2) arithmetic on the histogram.
struct entropy_kl {
    static constexpr std::string_view name = "entropy_kl";
    static constexpr bool symmetric = true;
    static constexpr std::size_t bin_count = 2048;

    [[nodiscard]] static clip_range calibrate(std::span<const float> values, int bits) {
        detail::calib::require_input(values, bits, "entropy_kl::calibrate");
        const float largest = detail::calib::max_abs(values);
        if (largest == 0.0f) return {0.0f, 0.0f};
        const double top = static_cast<double>(largest);

        std::vector<double> histogram(bin_count, 0.0);
        for (const float v : values) {
            const double position = static_cast<double>(std::fabs(v)) / top * static_cast<double>(bin_count);
            histogram[std::min(static_cast<std::size_t>(position), bin_count - 1)] += 1.0;
        }

        const std::size_t levels = std::size_t{1} << (bits - 1);
        const std::size_t first = std::min(levels, bin_count);
        std::vector<double> outliers_from(bin_count + 1, 0.0);  // outliers_from[i] = sum of bins i..2047
        for (std::size_t b = bin_count; b-- > 0;) outliers_from[b] = outliers_from[b + 1] + histogram[b];

        std::vector<double> level_total(std::min(levels, bin_count));
        std::vector<std::size_t> level_used(level_total.size());
        std::size_t best_i = bin_count;
        double best_kl = std::numeric_limits<double>::infinity();
        for (std::size_t i = first; i <= bin_count; ++i) {
            const std::size_t used_levels = std::min(levels, i);
            std::fill(level_total.begin(), level_total.end(), 0.0);
            std::fill(level_used.begin(), level_used.end(), std::size_t{0});
            double q_sum = 0.0;
            for (std::size_t k = 0; k < i; ++k) {
                if (histogram[k] == 0.0) continue;
                const std::size_t level = k * used_levels / i;
                level_total[level] += histogram[k];
                ++level_used[level];
                q_sum += histogram[k];
            }
            const double p_sum = outliers_from[0];  // every value is in P, the outliers in bin i-1
            double kl = 0.0;
            for (std::size_t k = 0; k < i; ++k) {
                const double p = histogram[k] + (k + 1 == i ? outliers_from[i] : 0.0);
                if (p == 0.0) continue;
                if (histogram[k] == 0.0) {  // Q is empty here, P is not
                    kl = std::numeric_limits<double>::infinity();
                    break;
                }
                const std::size_t level = k * used_levels / i;
                const double q = level_total[level] / static_cast<double>(level_used[level]);
                const double pn = p / p_sum;
                kl += pn * std::log(pn / (q / q_sum));
            }
            if (kl < best_kl) {
                best_kl = kl;
                best_i = i;
            }
        }
        const double threshold = std::min((static_cast<double>(best_i) + 0.5) * top / static_cast<double>(bin_count), top);
        return detail::calib::symmetric_range(static_cast<float>(threshold));
    }
};

}  // namespace cogqat
