#pragma once
// Scale searches of the GGUF reference quantizers. Each picks a scale (and for the affine kinds a min) for
// one group of values and the integer level of every value. The arithmetic is ggml's, step for step and in
// the same association, because the bytes of a GGUF file depend on every rounding; no fused multiply-add.

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cogqat/core/rounding.hpp"
#include "cogqat/core/strict_fp.hpp"

COGQAT_STRICT_FP_BEGIN

namespace cogqat::detail {

/// Below this magnitude a group counts as all zero.
inline constexpr float group_max_eps = 1e-15f;

/// Signed value of largest magnitude (the first one on ties) and that magnitude.
struct extreme {
    float value = 0.0f;
    float magnitude = 0.0f;
};
[[nodiscard]] inline extreme largest_magnitude(const float* x, int n) noexcept {
    extreme e;
    for (int i = 0; i < n; ++i) {
        const float a = std::fabs(x[i]);
        if (a > e.magnitude) e = {x[i], a};
    }
    return e;
}

/// Symmetric levels in [-nmax, nmax) with a least-squares scale, trying 19 candidate inverse scales around
/// nmax/max and keeping the best weighted fit. Weights are x^2 (`weights == nullptr`) or the given ones.
/// Levels are written offset by nmax. Returns the scale (q6_K, and q3_K's and q4_0's weighted variants).
[[nodiscard]] inline float symmetric_scale_search(int n, int nmax, const float* x, std::int8_t* levels, const float* weights) noexcept {
    const extreme e = largest_magnitude(x, n);
    if (e.magnitude < group_max_eps) {
        std::fill(levels, levels + n, std::int8_t{0});
        return 0.0f;
    }
    auto weight = [&](int i) { return weights ? weights[i] : x[i] * x[i]; };
    auto level_for = [&](float inverse_scale, int i) { return std::clamp(nearest_int(inverse_scale * x[i]), -nmax, nmax - 1); };

    float inverse_scale = static_cast<float>(-nmax) / e.value;
    float sum_lx = 0.0f;
    float sum_l2 = 0.0f;
    for (int i = 0; i < n; ++i) {
        const int l = level_for(inverse_scale, i);
        levels[i] = static_cast<std::int8_t>(l + nmax);
        const float w = weight(i), lf = static_cast<float>(l);
        sum_lx += w * x[i] * lf;
        sum_l2 += w * lf * lf;
    }
    float scale = sum_l2 != 0.0f ? sum_lx / sum_l2 : 0.0f;
    float best = scale * sum_lx;
    for (int step = -9; step <= 9; ++step) {
        if (step == 0) continue;
        inverse_scale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(step)) / e.value;
        sum_lx = sum_l2 = 0.0f;
        for (int i = 0; i < n; ++i) {
            const float w = weight(i), lf = static_cast<float>(level_for(inverse_scale, i));
            sum_lx += w * x[i] * lf;
            sum_l2 += w * lf * lf;
        }
        if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
            for (int i = 0; i < n; ++i) levels[i] = static_cast<std::int8_t>(nmax + level_for(inverse_scale, i));
            scale = sum_lx / sum_l2;
            best = scale * sum_lx;
        }
    }
    return scale;
}

/// Symmetric levels in [-nmax, nmax) refined coordinate by coordinate (up to 5 sweeps): a level moves when
/// that raises the x^2-weighted correlation. Levels are written offset by nmax. Returns the scale (q3_K).
[[nodiscard]] inline float symmetric_refined_search(int n, int nmax, const float* x, std::int8_t* levels) noexcept {
    const extreme e = largest_magnitude(x, n);
    if (e.magnitude < group_max_eps) {
        std::fill(levels, levels + n, std::int8_t{0});
        return 0.0f;
    }
    const float inverse_scale = static_cast<float>(-nmax) / e.value;
    float sum_lx = 0.0f;
    float sum_l2 = 0.0f;
    for (int i = 0; i < n; ++i) {
        const int l = std::clamp(nearest_int(inverse_scale * x[i]), -nmax, nmax - 1);
        levels[i] = static_cast<std::int8_t>(l);
        const float w = x[i] * x[i], lf = static_cast<float>(l);
        sum_lx += w * x[i] * lf;
        sum_l2 += w * lf * lf;
    }
    for (int sweep = 0; sweep < 5; ++sweep) {
        int changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            float slx = sum_lx - w * x[i] * levels[i];
            if (slx > 0) {
                float sl2 = sum_l2 - w * levels[i] * levels[i];
                const int candidate = std::clamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (candidate != levels[i]) {
                    const float cf = static_cast<float>(candidate);
                    slx += w * x[i] * cf;
                    sl2 += w * cf * cf;
                    if (sl2 > 0 && slx * slx * sum_l2 > sum_lx * sum_lx * sl2) {
                        levels[i] = static_cast<std::int8_t>(candidate);
                        sum_lx = slx;
                        sum_l2 = sl2;
                        ++changed;
                    }
                }
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; ++i) levels[i] = static_cast<std::int8_t>(levels[i] + nmax);
    return sum_l2 > 0.0f ? sum_lx / sum_l2 : 0.0f;
}

/// Options of the affine (scale and min) search.
struct affine_search_options {
    float first_offset;   ///< first candidate: (nmax + first_offset) levels over the range
    float offset_step;    ///< step between candidates
    int steps;            ///< candidates tried after the min-max start
    bool absolute_error;  ///< weigh |error| instead of error^2
};

/// Affine levels in [0, nmax] with x ~ scale*l - min_out, min never above 0: starts from the min-max fit,
/// then tries `steps + 1` inverse scales, each followed by a weighted least-squares solve for scale and
/// min, keeping the lowest weighted error. `scratch` holds n bytes. Returns the scale (q2_K, q4_K, q5_K; with
/// -0.9, 0.05 and 36 steps it is ggml's make_qkx3_quants, the importance-weighted K searches').
[[nodiscard]] inline float affine_scale_search(int n, int nmax, const float* x, const float* weights, std::uint8_t* levels, float* min_out,
                                               std::uint8_t* scratch, const affine_search_options& opt) noexcept {
    float min = x[0];
    float max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        min = std::min(min, x[i]);
        max = std::max(max, x[i]);
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        std::fill(levels, levels + n, std::uint8_t{0});
        *min_out = -min;
        return 0.0f;
    }
    auto error_of = [&](float diff) { return opt.absolute_error ? std::fabs(diff) : diff * diff; };

    float inverse_scale = static_cast<float>(nmax) / (max - min);
    float scale = 1 / inverse_scale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        levels[i] = static_cast<std::uint8_t>(std::clamp(nearest_int(inverse_scale * (x[i] - min)), 0, nmax));
        best_error += weights[i] * error_of(scale * levels[i] + min - x[i]);
    }
    if (opt.steps < 1) {
        *min_out = -min;
        return scale;
    }
    for (int step = 0; step <= opt.steps; ++step) {
        inverse_scale = (opt.first_offset + opt.offset_step * static_cast<float>(step) + static_cast<float>(nmax)) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const int l = std::clamp(nearest_int(inverse_scale * (x[i] - min)), 0, nmax);
            scratch[i] = static_cast<std::uint8_t>(l);
            const float w = weights[i], lf = static_cast<float>(l);
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (det > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float error = 0;
            for (int i = 0; i < n; ++i) error += weights[i] * error_of(this_scale * scratch[i] + this_min - x[i]);
            if (error < best_error) {
                std::copy(scratch, scratch + n, levels);
                best_error = error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *min_out = -min;
    return scale;
}

/// ggml's make_qp_quants: levels 0..nmax of non-negative x with a weighted least-squares scale, refined by
/// single-level moves. Levels are bytes as in ggml (a negative level wraps, and the refinement sees the wrapped
/// value), which is part of what the reference computes.
[[nodiscard]] inline float qp_scale(int n, int nmax, const float* x, std::uint8_t* levels, const float* weights) noexcept {
    float max = 0;
    for (int i = 0; i < n; ++i) max = std::max(max, x[i]);
    if (max < 1e-15f) {
        std::fill(levels, levels + n, std::uint8_t{0});
        return 0.0f;
    }
    float inverse = static_cast<float>(nmax) / max;
    for (int i = 0; i < n; ++i) levels[i] = static_cast<std::uint8_t>(nearest_int(inverse * x[i]));
    const float first_scale = 1 / inverse;
    float best_mse = 0;
    for (int i = 0; i < n; ++i) {
        const float diff = x[i] - first_scale * static_cast<float>(levels[i]);
        best_mse += weights[i] * diff * diff;
    }
    for (int is = -4; is <= 4; ++is) {
        if (is == 0) continue;
        const float candidate = (0.1f * static_cast<float>(is) + static_cast<float>(nmax)) / max;
        const float candidate_scale = 1 / candidate;
        float mse = 0;
        for (int i = 0; i < n; ++i) {
            const int l = std::min(nmax, nearest_int(candidate * x[i]));
            const float diff = x[i] - candidate_scale * static_cast<float>(l);
            mse += weights[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            inverse = candidate;
        }
    }
    float sum_lx = 0, sum_l2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = std::min(nmax, nearest_int(inverse * x[i]));
        levels[i] = static_cast<std::uint8_t>(l);
        const float lf = static_cast<float>(l);
        sum_lx += weights[i] * x[i] * lf;
        sum_l2 += weights[i] * lf * lf;
    }
    for (int pass = 0; pass < 5; ++pass) {
        int changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = weights[i], old = static_cast<float>(levels[i]);
            float slx = sum_lx - w * x[i] * old;
            float sl2 = sum_l2 - w * old * old;
            if (slx > 0 && sl2 > 0) {
                const int l = std::min(nmax, nearest_int(x[i] * sl2 / slx));
                if (l != levels[i]) {
                    const float lf = static_cast<float>(l);
                    slx += w * x[i] * lf;
                    sl2 += w * lf * lf;
                    if (slx * slx * sum_l2 > sum_lx * sum_lx * sl2) {
                        levels[i] = static_cast<std::uint8_t>(l);
                        sum_lx = slx;
                        sum_l2 = sl2;
                        ++changed;
                    }
                }
            }
        }
        if (!changed) break;
    }
    return sum_l2 > 0.0f ? sum_lx / sum_l2 : 0.0f;
}

}  // namespace cogqat::detail

COGQAT_STRICT_FP_END
