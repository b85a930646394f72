#pragma once
// Error-minimizing scales for the 32-value GGUF formats (q4_0, q4_1, q5_0, q5_1, q8_0) under per-weight
// importance. ggml's reference maps the block's extreme onto the outermost level; that is optimal for no
// weighting at all. Given how much each weight matters (from activation statistics of synthetic data, no
// text), a scale that sacrifices an unimportant outlier usually lowers the output error. The blocks written
// are ordinary GGUF blocks: only the choice of scale (and min) differs, so llama.cpp reads them unchanged.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>

#include "cogqat/core/float16.hpp"
#include "cogqat/core/rounding.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/format/block_format.hpp"

namespace cogqat {

/// A block format whose block is one sub-block with a scale (and min) stored as plain fp16, so that any
/// chosen scale can be written: the 32-value weight formats.
template <class F>
concept DirectlyScaledFormat = BlockFormat<F> && F::sub_block_size == F::block_size&& requires(std::byte* block, affine_scale s) {
    { F::store_scale(block, s) } -> std::same_as<void>;
};

/// Levels a weight may take. Signed formats leave out -128: ggml's SIMD dot products take |level| in a byte.
template <DirectlyScaledFormat F>
inline constexpr level_range weight_levels = F::signed_levels ? level_range{-127, 127} : level_range{0, max_level<F>};

/// The scale and min as the block will store them (fp16 both), so every error is the one the file carries.
[[nodiscard]] inline affine_scale as_stored(affine_scale s) noexcept {
    return {fp16_bits_to_fp32(fp32_to_fp16_bits(s.scale)), fp16_bits_to_fp32(fp32_to_fp16_bits(s.min))};
}

COGQAT_STRICT_FP_BEGIN

/// The value a level decodes to: the same float operations as dequantize_block.
template <DirectlyScaledFormat F>
[[nodiscard]] inline float decode_level(affine_scale s, int level) noexcept {
    const float v = s.scale * static_cast<float>(level - F::level_offset);
    return F::has_min ? v - s.min : v;
}

/// The nearest level to `x` under `s` (clamped); a zero scale leaves every weight at the level of value -min.
template <DirectlyScaledFormat F>
[[nodiscard]] inline int nearest_level(float x, affine_scale s) noexcept {
    constexpr auto range = weight_levels<F>;
    if (s.scale == 0.0f) return std::clamp(F::level_offset, range.lowest, range.highest);
    return std::clamp(detail::nearest_int((x + s.min) / s.scale) + F::level_offset, range.lowest, range.highest);
}

namespace detail {

/// Weighted squared error of the block under `s`, levels rounded to nearest.
template <DirectlyScaledFormat F>
[[nodiscard]] inline double weighted_block_error(const float* x, const float* importance, affine_scale s) noexcept {
    double error = 0.0;
    for (std::size_t i = 0; i < F::block_size; ++i) {
        const double d = static_cast<double>(x[i]) - decode_level<F>(s, nearest_level<F>(x[i], s));
        error += static_cast<double>(importance[i]) * d * d;
    }
    return error;
}

/// The weighted least-squares scale (and min) from the sums over the block of w, w*l, w*l*l, w*x and w*l*x
/// (l: a weight's level less the offset); false when the system is singular or the fit is not finite.
template <DirectlyScaledFormat F>
[[nodiscard]] inline bool refit_from_sums(double sw, double sl, double sll, double sx, double slx, affine_scale& s) noexcept {
    if constexpr (F::has_min) {
        // value = d*l + m with m = -min: solve the 2x2 normal equations.
        const double det = sw * sll - sl * sl;
        if (!(det > 1e-30 * sw * sll)) return false;
        const double d = (sw * slx - sl * sx) / det, m = (sll * sx - sl * slx) / det;
        s = {static_cast<float>(d), static_cast<float>(-m)};
    } else {
        if (!(sll > 0)) return false;
        s = {static_cast<float>(slx / sll), 0.0f};
    }
    return std::isfinite(s.scale) && std::isfinite(s.min);
}

/// Least-squares refit of the scale (and min) to the levels `s` gives, weighted; false when the system is
/// singular or the fit is not finite (the search then keeps the best it has).
template <DirectlyScaledFormat F>
[[nodiscard]] inline bool refit(const float* x, const float* importance, affine_scale& s) noexcept {
    double sw = 0, sl = 0, sll = 0, sx = 0, slx = 0;
    for (std::size_t i = 0; i < F::block_size; ++i) {
        const double w = importance[i], l = nearest_level<F>(x[i], s) - F::level_offset;
        sw += w, sl += w * l, sll += w * l * l, sx += w * x[i], slx += w * l * x[i];
    }
    return refit_from_sums<F>(sw, sl, sll, sx, slx, s);
}

}  // namespace detail

/// How many candidates block_scale_candidates writes at most.
template <DirectlyScaledFormat F>
inline constexpr std::size_t max_block_scale_candidates = F::has_min ? 21 * 5 + 1 : 21 * 2;

/// The candidate scales (and mins) of search_block_scale for block `x`, in the order it tries them, into
/// `out` (room for max_block_scale_candidates<F>); their count, 0 for an all-zero block (its answer is a zero
/// scale). The SIMD kernels try the same list side by side.
template <DirectlyScaledFormat F>
[[nodiscard]] inline std::size_t block_scale_candidates(const float* x, affine_scale* out) noexcept {
    constexpr auto range = weight_levels<F>;
    float lo = x[0], hi = x[0], extreme = x[0];
    for (std::size_t i = 1; i < F::block_size; ++i) {
        lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
        if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
    }
    if (lo == hi && lo == 0.0f) return 0;

    std::size_t count = 0;
    constexpr int steps = 20;
    if constexpr (F::has_min) {
        // The range [lo, hi] mapped onto [0, max], then ends pulled in or pushed out by up to 1 level.
        const float levels = static_cast<float>(range.highest);
        for (int a = -steps / 2; a <= steps / 2; ++a) {
            const float d = (hi - lo) / (levels + 0.1f * static_cast<float>(a));
            if (!(d > 0)) continue;
            for (int b = -2; b <= 2; ++b) out[count++] = {d, -(lo + 0.25f * static_cast<float>(b) * d)};
        }
        out[count++] = {(hi - lo) / levels, -lo};
    } else {
        // The extreme mapped onto the outermost level of its own sign (ggml's choice) or of the other sign,
        // with the level count nudged by tenths as ggml's make_qx_quants does.
        const float negative_end = static_cast<float>(range.lowest - F::level_offset);
        const float positive_end = static_cast<float>(range.highest - F::level_offset);
        for (int a = -steps / 2; a <= steps / 2; ++a) {
            const float nudge = 0.1f * static_cast<float>(a);
            out[count++] = {extreme / (negative_end - nudge), 0.0f};
            out[count++] = {extreme / (positive_end + nudge), 0.0f};
        }
    }
    return count;
}

/// The stored scale (and min) minimizing sum_i importance[i] * (x[i] - decoded[i])^2 over a grid of
/// candidate ranges, each refined by weighted least squares on its levels. ggml's own choice is among the
/// candidates, so the result is never worse than it under the same importance. Importance must be >= 0.
template <DirectlyScaledFormat F>
[[nodiscard]] inline affine_scale search_block_scale(const float* x, const float* importance) noexcept {
    affine_scale candidates[max_block_scale_candidates<F>];
    const std::size_t count = block_scale_candidates<F>(x, candidates);
    affine_scale best{};
    double best_error = INFINITY;
    for (std::size_t c = 0; c < count; ++c) {
        affine_scale s = candidates[c];
        for (int pass = 0; pass < 3; ++pass) {
            s = as_stored(s);
            if (!std::isfinite(s.scale) || !std::isfinite(s.min)) break;
            const double e = detail::weighted_block_error<F>(x, importance, s);
            if (e < best_error) best_error = e, best = s;
            if (pass == 2 || !detail::refit<F>(x, importance, s)) break;
        }
    }
    return best;
}

/// Writes one block with scale `s` (as search_block_scale returns it) and the nearest levels of `x`;
/// `decoded` (may be null) receives what dequantization will read back.
template <DirectlyScaledFormat F>
inline void encode_block(const float* x, affine_scale s, std::byte* block, float* decoded = nullptr) noexcept {
    std::uint8_t levels[F::block_size];
    F::store_scale(block, s);
    for (std::size_t i = 0; i < F::block_size; ++i) {
        const int l = nearest_level<F>(x[i], s);
        levels[i] = static_cast<std::uint8_t>(l);
        if (decoded) decoded[i] = decode_level<F>(s, l);
    }
    store_levels<F>(levels, block);
}

COGQAT_STRICT_FP_END

}  // namespace cogqat
