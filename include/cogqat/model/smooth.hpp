#pragma once
// Exact channel smoothing (SmoothQuant, AWQ): a per-channel scale s moved from a matrix's input to its
// columns. Where the input channel j is large, the column j grows and so gets more of its block's levels,
// while the input shrinks by as much; the product is unchanged. Two places in a llama model allow it exactly:
//  - after a norm: the norm's weight g_j <- g_j / s_j, every reader's column j <- column · s_j;
//  - through SwiGLU's linear half: silu(gate)·up is linear in up, so ffn_up's row i <- row / s_i and
//    ffn_down's column i <- column · s_i.
// The scales are chosen from the input second moments H = Σ x xᵀ that calibration gathers (data-free): among
// s = (diag H)^(α/2) for α on a grid, the one whose rounding to a block type costs the least output error
// Σ_rows (Δ/s) H (Δ/s)ᵀ, α = 0 (no change) included, so a choice never predicts worse than none.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/format/ggml_type.hpp"
#include "cogqat/model/llama_schema.hpp"
#include "cogqat/model/tensor_set.hpp"

namespace cogqat {

namespace detail {
/// value_error with the index of the first scale that is not positive and finite, shape_error for a count
/// other than `width`.
inline void require_scales(std::span<const double> s, std::size_t width, std::string_view who) {
    if (s.size() != width)
        throw shape_error(std::string(who) + ": " + std::to_string(s.size()) + " scales for " + std::to_string(width) + " channels");
    for (std::size_t i = 0; i < s.size(); ++i)
        if (!(s[i] > 0.0) || !std::isfinite(s[i]))
            throw value_error(std::string(who) + ": scale " + std::to_string(i) + " is " + std::to_string(s[i]) +
                                      "; scales must be positive and finite",
                              i);
}

template <class T>
void scale_columns(std::vector<T>& values, std::span<const double> s) {
    const std::size_t cols = s.size();
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<T>(static_cast<double>(values[i]) * s[i % cols]);
}
}  // namespace detail

/// Moves `s` across `norm` of `layer` (attn_norm, ffn_norm or output_norm; see llama_norm_readers): its weight
/// is divided by s, its readers' columns multiplied. invalid_argument_error for a parameter that is not a norm
/// with readers (or output_norm when the classifier is tied: the embedding would change too); shape_error
/// and value_error for bad scales; format_error for a missing or misshapen tensor.
template <LlamaTensorSet W>
void smooth_norm(W& w, llama_parameter norm, std::size_t layer, std::span<const double> s) {
    constexpr std::string_view who = "smooth_norm";
    const auto group = std::find_if(llama_norm_readers.begin(), llama_norm_readers.end(), [&](const auto& g) { return g.norm == norm; });
    if (group == llama_norm_readers.end()) throw invalid_argument_error("smooth_norm: the parameter is not a norm");
    if (norm == llama_parameter::output_norm && !has_own_classifier(w))
        throw invalid_argument_error("smooth_norm: output_norm of a tied classifier (its reader is the token embedding)");
    if (llama_tensor(norm).per_layer && layer >= w.config.n_layers)
        throw invalid_argument_error("smooth_norm: layer " + std::to_string(layer) + " of a model of " + std::to_string(w.config.n_layers) +
                                     " layers");
    detail::require_scales(s, w.config.dim, who);
    auto& g = require_tensor(w, norm, layer, who);
    for (const auto parameter : group->matrices()) detail::scale_columns(require_tensor(w, parameter, layer, who).values, s);
    for (std::size_t j = 0; j < g.values.size(); ++j) g.values[j] = static_cast<tensor_value_t<W>>(static_cast<double>(g.values[j]) / s[j]);
}

/// Moves `s` (one per feed-forward unit) through SwiGLU's linear half in `layer`: ffn_up's row i is divided
/// by s_i, ffn_down's column i multiplied. Errors as smooth_norm.
template <LlamaTensorSet W>
void smooth_feed_forward(W& w, std::size_t layer, std::span<const double> s) {
    constexpr std::string_view who = "smooth_feed_forward";
    if (layer >= w.config.n_layers)
        throw invalid_argument_error("smooth_feed_forward: layer " + std::to_string(layer) + " of a model of " +
                                     std::to_string(w.config.n_layers) + " layers");
    detail::require_scales(s, w.config.hidden_dim, who);
    auto& up = require_tensor(w, llama_parameter::up, layer, who);
    auto& down = require_tensor(w, llama_parameter::down, layer, who);
    const std::size_t dim = w.config.dim;
    for (std::size_t i = 0; i < s.size(); ++i)
        for (std::size_t j = 0; j < dim; ++j) {
            auto& v = up.values[i * dim + j];
            v = static_cast<tensor_value_t<W>>(static_cast<double>(v) / s[i]);
        }
    detail::scale_columns(down.values, s);
}

/// s_j = m_j^(alpha/2) for the mean squares m of the inputs, scaled to a geometric mean of 1 (so that the
/// weights keep their overall size). A channel that is never active (m_j below 1e-6 of the largest) keeps
/// the floor's scale rather than 0. value_error for a negative or non-finite mean square.
[[nodiscard]] inline std::vector<double> smoothing_scales(std::span<const double> mean_square, double alpha) {
    double largest = 0.0;
    for (std::size_t j = 0; j < mean_square.size(); ++j) {
        if (!(mean_square[j] >= 0.0) || !std::isfinite(mean_square[j]))
            throw value_error("smoothing_scales: mean square " + std::to_string(j) + " is negative or not finite", j);
        largest = std::max(largest, mean_square[j]);
    }
    std::vector<double> s(mean_square.size(), 1.0);
    if (largest == 0.0 || alpha == 0.0) return s;
    double log_sum = 0.0;
    for (std::size_t j = 0; j < s.size(); ++j) {
        s[j] = std::pow(std::max(mean_square[j], 1e-6 * largest), alpha / 2.0);
        log_sum += std::log(s[j]);
    }
    const double mean = std::exp(log_sum / static_cast<double>(s.size()));
    for (auto& v : s) v /= mean;
    return s;
}

/// What choose_smoothing found.
struct smoothing_choice {
    double alpha = 0.0;
    std::vector<double> scales;  ///< all ones when no alpha beat alpha = 0
    double error_before = 0.0;   ///< Σ over readers of tr(Δ H Δᵀ), rounded as they are (alpha = 0)
    double error_after = 0.0;    ///< the same, rounded after smoothing, measured in the original basis
};

/// Rounds a row-major matrix of `cols` columns whose inputs have second moments `h` (cols x cols), returning
/// the decoded values: how choose_smoothing rounds each candidate. The pipelines pass their own rounding
/// (GPTQ, which uses h); by default ggml's reference to a type (which does not).
using smoothing_rounder = std::function<std::vector<float>(std::span<const float> weights, std::size_t cols, std::span<const double> h)>;

/// ggml's reference rounding to `type`, as a smoothing_rounder.
[[nodiscard]] inline smoothing_rounder reference_rounder(ggml_type type) {
    return [type](std::span<const float> weights, std::size_t, std::span<const double>) {
        return dequantize(type, quantize(type, weights));
    };
}

/// The alpha among `alphas` (0 always tried) whose scales make rounding `readers` (matrices of `cols`
/// columns, row-major) to `type` cost the least output error under the second moments `h` (cols x cols);
/// `round` rounds (reference_rounder(type) when empty), given the smoothed inputs' moments S⁻¹HS⁻¹.
/// invalid_argument_error when `type` does not fit the rows; shape_error for a reader or h of the wrong size.
[[nodiscard]] inline smoothing_choice choose_smoothing(std::span<const std::span<const float>> readers, std::size_t cols,
                                                       std::span<const double> h, ggml_type type, std::span<const double> alphas,
                                                       smoothing_rounder round = {}) {
    if (!round) round = reference_rounder(type);
    if (cols == 0 || cols % info(type).block_size != 0)
        throw invalid_argument_error("choose_smoothing: rows of " + std::to_string(cols) + " do not fit blocks of " +
                                     std::string(info(type).name));
    if (h.size() != cols * cols) throw shape_error("choose_smoothing: second moments of " + std::to_string(h.size()) + " values");
    for (const auto& r : readers)
        if (r.size() % cols != 0) throw shape_error("choose_smoothing: a reader of " + std::to_string(r.size()) + " values");
    std::vector<double> mean_square(cols);
    for (std::size_t j = 0; j < cols; ++j) mean_square[j] = h[j * cols + j];
    auto error_of = [&](const std::vector<double>& s) {
        double total = 0.0;
        std::vector<float> scaled;
        std::vector<double> e(cols), scaled_h(h.size());
        for (std::size_t i = 0; i < cols; ++i)
            for (std::size_t j = 0; j < cols; ++j) scaled_h[i * cols + j] = h[i * cols + j] / (s[i] * s[j]);
        for (const auto& r : readers) {
            scaled.assign(r.begin(), r.end());
            for (std::size_t i = 0; i < scaled.size(); ++i) scaled[i] = static_cast<float>(scaled[i] * s[i % cols]);
            const auto decoded = round(scaled, cols, scaled_h);
            for (std::size_t row = 0; row < r.size() / cols; ++row) {
                for (std::size_t j = 0; j < cols; ++j)
                    e[j] = (static_cast<double>(scaled[row * cols + j]) - decoded[row * cols + j]) / s[j];
                for (std::size_t i = 0; i < cols; ++i) {
                    double hi = 0.0;
                    for (std::size_t j = 0; j < cols; ++j) hi += h[i * cols + j] * e[j];
                    total += e[i] * hi;
                }
            }
        }
        return total;
    };
    smoothing_choice best{0.0, std::vector<double>(cols, 1.0), 0.0, 0.0};
    best.error_before = best.error_after = error_of(best.scales);
    for (const double alpha : alphas) {
        if (alpha == 0.0) continue;
        auto s = smoothing_scales(mean_square, alpha);
        const double e = error_of(s);
        if (e < best.error_after) best.alpha = alpha, best.scales = std::move(s), best.error_after = e;
    }
    return best;
}

}  // namespace cogqat
