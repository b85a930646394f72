#pragma once
// Training through the generic quantizer: the forward of a fake-quantized tensor under per-group parameters
// the optimizer moves, and its backward to the latent weights and to those parameters. The forward is
// exactly the quantizer's encode and decode (core/affine_levels.hpp) under the given parameters, so what is
// trained is what quantize_with_params() exports.
//
// Rounding has no useful derivative (zero almost everywhere), so the backward replaces it by an estimator,
// a policy type:
//  - straight_through: round() passes gradients as the identity; a value clamped to the outermost level
//    gets none (its output does not move with it). Scales are not trained.
//  - learned_step_size (LSQ, Esser et al. 2020): the same for the weights, and each group's scale learns
//    from d y / d s = round(x / s) - x / s inside the range and the outermost level outside it, the
//    sum over the group scaled by 1 / sqrt(group length * largest positive level) so that one learning rate
//    suits scales and weights.
// In a mode with a zero-point, the zero-point's gradient (as if it were continuous: -s for a clamped value,
// 0 inside, where the straight-through rounding cancels it) is returned too; the caller decides whether to
// move the integer zero-point with it.
//
// For a super-block granularity the parameters are the groups' effective float scales and zero-points; the
// super-block's coding of them (a ScaleBits code times a super-scale) is applied by quantize_with_params().

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/core/affine_levels.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/policy.hpp"
#include "cogqat/core/rounding.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/core/tensor_view.hpp"
#include "cogqat/quant/quantizer.hpp"

COGQAT_STRICT_FP_BEGIN

namespace cogqat {

/// Gradient estimator: round() as the identity inside the range, nothing outside; scales frozen.
struct straight_through {
    static constexpr std::string_view name = "straight_through";
    static constexpr bool learns_scale = false;
};

/// Gradient estimator: straight-through for the weights and LSQ's gradient for each group's scale.
struct learned_step_size {
    static constexpr std::string_view name = "learned_step_size";
    static constexpr bool learns_scale = true;

    /// LSQ's scale-gradient factor for a group of `length` values whose largest positive level is `top`.
    [[nodiscard]] static float gradient_scale(std::size_t length, int top) noexcept {
        return static_cast<float>(1.0 / std::sqrt(static_cast<double>(length) * static_cast<double>(top)));
    }
};

/// What fake_quantize_backward needs of an estimator: a name, whether scales learn, and for those that do
/// the factor applied to a group's summed scale gradient.
template <class E>
concept GradientEstimator = requires {
    { E::name } -> std::convertible_to<std::string_view>;
    { E::learns_scale } -> std::convertible_to<bool>;
}
&&(!E::learns_scale || requires(std::size_t n, int top) {
    { E::gradient_scale(n, top) } -> std::same_as<float>;
});

namespace detail::fake_quantize_impl {

/// Throws unless `params` holds one finite, non-negative scale and an in-range zero-point per group.
template <class Bits, class Granularity, class Mode>
void require_params(std::size_t rows, std::size_t cols, std::span<const affine_params> params, std::string_view context) {
    using traits = level_traits<Bits, Mode>;
    const std::size_t groups = Granularity::group_count(rows, cols);
    if (params.size() != groups) {
        throw shape_error(std::string(context) + ": " + std::to_string(params.size()) + " group parameters for a " + std::to_string(rows) +
                          " x " + std::to_string(cols) + " tensor, which has " + std::to_string(groups) + " groups");
    }
    for (std::size_t g = 0; g < groups; ++g) {
        const affine_params p = params[g];
        if (!std::isfinite(p.scale) || p.scale < 0.0f) {
            throw value_error(std::string(context) + ": group " + std::to_string(g) + " has scale " + std::to_string(p.scale) +
                                      ", not a finite non-negative number",
                              g);
        }
        if (p.zero_point < traits::min_level || p.zero_point > traits::max_level || (!Mode::has_zero_point && p.zero_point != 0)) {
            throw value_error(std::string(context) + ": group " + std::to_string(g) + " has zero-point " + std::to_string(p.zero_point) +
                                      " outside the level range [" + std::to_string(traits::min_level) + ", " +
                                      std::to_string(traits::max_level) + "]",
                              g);
        }
    }
}

template <class T>
void require_shape(matrix_view<T> v, std::size_t rows, std::size_t cols, std::string_view what, std::string_view context) {
    if (v.extent(0) != rows || v.extent(1) != cols) {
        throw shape_error(std::string(context) + ": " + std::string(what) + " is " + std::to_string(v.extent(0)) + " x " +
                          std::to_string(v.extent(1)) + ", expected " + std::to_string(rows) + " x " + std::to_string(cols));
    }
}

/// Row-major values of a view, checked finite: its memory when contiguous, else a copy. Throws value_error
/// naming `what`, the row-major index, row and column of the first NaN or Inf.
inline std::span<const float> finite_values(matrix_view<const float> v, std::vector<float>& buffer, std::string_view what,
                                            std::string_view context) {
    const std::span<const float> values = quantizer_impl::gather_row_major(v, buffer);
    const std::size_t cols = v.extent(1);
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (!std::isfinite(values[i])) {
            throw value_error(std::string(context) + ": " + std::string(what) + "[" + std::to_string(i) + "] (row " +
                                      std::to_string(i / cols) + ", column " + std::to_string(i % cols) + ") is " +
                                      (std::isnan(values[i]) ? "NaN" : "infinite"),
                              i);
        }
    }
    return values;
}

}  // namespace detail::fake_quantize_impl

/// The differentiable forward and backward of quantizer<Bits, Granularity, Mode> under trainable per-group
/// parameters (see the header comment). Stateless, like the quantizer.
template <BitWidthPolicy Bits, GranularityPolicy Granularity, ModePolicy Mode = Symmetric>
class fake_quantizer {
    using traits = level_traits<Bits, Mode>;

public:
    using quantizer_type = quantizer<Bits, Granularity, Mode>;
    using tensor_type = quantized_tensor<Bits, Granularity, Mode>;

    /// The parameters the quantizer itself would choose for `x` (its effective ones for a super-block): the
    /// usual starting point of training.
    [[nodiscard]] static std::vector<affine_params> initial_params(matrix_view<const float> x) {
        return effective_params_of(quantizer_type::quantize(x));
    }

    /// The parameters the quantizer chooses for `x` from given ranges, one per group (a calibrator's, e.g.
    /// mse_optimal::calibrate<Bits, Granularity, Mode>(x)): training then starts from the calibrated grid.
    /// Throws as quantizer::quantize(x, ranges) does.
    [[nodiscard]] static std::vector<affine_params> initial_params(matrix_view<const float> x, std::span<const clip_range> ranges) {
        return effective_params_of(quantizer_type::quantize(x, ranges));
    }

    /// y = decode(encode(x)) under `params`, one per group. `y` may be `x` itself. Throws shape_error on
    /// mismatched shapes or parameter count, value_error on a non-finite input (its row-major index) or a bad
    /// parameter (its group).
    static void fake_quantize(matrix_view<const float> x, std::span<const affine_params> params, matrix_view<float> y) {
        constexpr std::string_view context = "fake_quantize";
        const std::size_t rows = x.extent(0), cols = x.extent(1);
        check(x, params, context);
        detail::fake_quantize_impl::require_shape(y, rows, cols, "the output", context);
        std::vector<float> buffer;
        const std::span<const float> values = detail::fake_quantize_impl::finite_values(x, buffer, "input", context);
        std::vector<float> out(values.size());
        const std::size_t length = Granularity::group_length(rows, cols);
        for (std::size_t g = 0; g < params.size(); ++g) {
            for (std::size_t i = g * length; i < (g + 1) * length; ++i)
                out[i] = reference::decode<Bits, Mode>(reference::encode<Bits, Mode>(values[i], params[g]), params[g]);
        }
        detail::quantizer_impl::scatter_row_major(out, y);
    }

    /// Gradients of the fake-quantized forward: given dL/dy, writes dL/dx into `grad_x` and, for an estimator
    /// that learns scales, adds each group's dL/ds into `grad_scales` (one per group; empty otherwise). In a mode
    /// with a zero-point, `grad_zero_points` (one per group, or empty to skip) receives dL/dz added to it.
    /// Gradients accumulate into the scale and zero-point arrays, as an optimizer's buffers do across a batch;
    /// grad_x is overwritten. A group with scale 0 is frozen: it passes no gradient.
    template <GradientEstimator Estimator = straight_through>
    static void fake_quantize_backward(matrix_view<const float> x, std::span<const affine_params> params, matrix_view<const float> grad_y,
                                       matrix_view<float> grad_x, std::span<float> grad_scales = {},
                                       std::span<float> grad_zero_points = {}) {
        constexpr std::string_view context = "fake_quantize_backward";
        const std::size_t rows = x.extent(0), cols = x.extent(1);
        check(x, params, context);
        detail::fake_quantize_impl::require_shape(grad_y, rows, cols, "grad_y", context);
        detail::fake_quantize_impl::require_shape(grad_x, rows, cols, "grad_x", context);
        const std::size_t groups = params.size();
        if constexpr (Estimator::learns_scale) {
            if (grad_scales.size() != groups)
                throw shape_error(std::string(context) + ": " + std::to_string(grad_scales.size()) + " scale gradients for " +
                                  std::to_string(groups) + " groups (" + std::string(Estimator::name) + " learns every group's scale)");
        } else if (!grad_scales.empty()) {
            throw shape_error(std::string(context) + ": " + std::string(Estimator::name) + " learns no scales; pass no scale gradients");
        }
        if (!grad_zero_points.empty() && (!Mode::has_zero_point || grad_zero_points.size() != groups)) {
            throw shape_error(std::string(context) + ": " + std::to_string(grad_zero_points.size()) + " zero-point gradients for " +
                              std::to_string(groups) + " groups in " + std::string(Mode::name) + " mode" +
                              (Mode::has_zero_point ? "" : ", which has no zero-point"));
        }

        std::vector<float> x_buffer, g_buffer;
        const std::span<const float> values = detail::fake_quantize_impl::finite_values(x, x_buffer, "input", context);
        const std::span<const float> upstream = detail::fake_quantize_impl::finite_values(grad_y, g_buffer, "grad_y", context);
        std::vector<float> dx(values.size(), 0.0f);
        const std::size_t length = Granularity::group_length(rows, cols);
        for (std::size_t g = 0; g < groups; ++g) {
            const affine_params p = params[g];
            if (p.scale == 0.0f) continue;
            const float below = static_cast<float>(traits::min_level - p.zero_point);
            const float above = static_cast<float>(traits::max_level - p.zero_point);
            double scale_sum = 0.0, zero_sum = 0.0;
            for (std::size_t i = g * length; i < (g + 1) * length; ++i) {
                const float v = values[i] / p.scale;
                if (v < below || v > above) {
                    // Clamped: y = s * (outermost level - z) does not move with x.
                    scale_sum += static_cast<double>(upstream[i]) * static_cast<double>(v < below ? below : above);
                    zero_sum -= static_cast<double>(upstream[i]) * static_cast<double>(p.scale);
                } else {
                    dx[i] = upstream[i];
                    const float rounded = static_cast<float>(detail::nearest_int(v));
                    scale_sum += static_cast<double>(upstream[i]) * static_cast<double>(rounded - v);
                }
            }
            if constexpr (Estimator::learns_scale)
                grad_scales[g] += static_cast<float>(scale_sum) * Estimator::gradient_scale(length, Mode::max_level(Bits::bits));
            if (!grad_zero_points.empty()) grad_zero_points[g] += static_cast<float>(zero_sum);
        }
        detail::quantizer_impl::scatter_row_major(dx, grad_x);
    }

    /// The quantized tensor the trained parameters describe: codes of `x` under `params` (for a super-block,
    /// under the parameters its coding gives them: scales rounded up to ScaleBits codes of a super-scale,
    /// zero-points onto the code grid).
    [[nodiscard]] static tensor_type quantize_with_params(matrix_view<const float> x, std::span<const affine_params> params) {
        constexpr std::string_view context = "quantize_with_params";
        const std::size_t rows = x.extent(0), cols = x.extent(1);
        check(x, params, context);
        std::vector<float> buffer;
        const std::span<const float> values = detail::fake_quantize_impl::finite_values(x, buffer, "input", context);
        const std::size_t length = Granularity::group_length(rows, cols);
        std::vector<typename Bits::code_type> codes(values.size());
        auto encode_group = [&](std::size_t g, affine_params p) {
            for (std::size_t i = g * length; i < (g + 1) * length; ++i) codes[i] = reference::encode<Bits, Mode>(values[i], p);
        };
        if constexpr (SuperBlockGranularity<Granularity>) {
            using rules = reference::super_block_rules<Bits, Mode, Granularity::scale_bits>;
            constexpr std::size_t per_block = Granularity::super_block_size / Granularity::group_size;
            std::vector<sub_scale> groups(params.size());
            std::vector<float> super_scales(params.size() / per_block);
            for (std::size_t b = 0; b < super_scales.size(); ++b) {
                float largest = 0.0f;
                for (std::size_t k = 0; k < per_block; ++k) largest = std::max(largest, params[b * per_block + k].scale);
                super_scales[b] = rules::super_scale(largest);
                for (std::size_t k = 0; k < per_block; ++k) {
                    const std::size_t g = b * per_block + k;
                    const affine_params p = params[g];
                    // The zero-point's grid may move it; the scale then widens to keep the group's range.
                    const float lo = p.scale * static_cast<float>(traits::min_level - p.zero_point);
                    const float hi = p.scale * static_cast<float>(traits::max_level - p.zero_point);
                    const affine_params fitted = rules::fit_zero_point(p, lo, hi);
                    groups[g] = {rules::scale_code(fitted.scale, super_scales[b]), rules::zero_code(fitted.zero_point)};
                    encode_group(g, rules::params(super_scales[b], groups[g]));
                }
            }
            return tensor_type(rows, cols, std::move(codes), std::move(groups), std::move(super_scales));
        } else {
            for (std::size_t g = 0; g < params.size(); ++g) encode_group(g, params[g]);
            return tensor_type(rows, cols, std::move(codes), std::vector<affine_params>(params.begin(), params.end()));
        }
    }

private:
    static std::vector<affine_params> effective_params_of(const tensor_type& q) {
        std::vector<affine_params> params(q.group_count());
        for (std::size_t g = 0; g < params.size(); ++g) params[g] = q.effective_params(g);
        return params;
    }

    /// The shape fits the granularity and the parameters the shape; the values are checked where read.
    static void check(matrix_view<const float> x, std::span<const affine_params> params, std::string_view context) {
        Granularity::check_shape(x.extent(0), x.extent(1), context);
        detail::fake_quantize_impl::require_params<Bits, Granularity, Mode>(x.extent(0), x.extent(1), params, context);
    }
};

}  // namespace cogqat

COGQAT_STRICT_FP_END
