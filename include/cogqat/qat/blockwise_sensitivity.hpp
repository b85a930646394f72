#pragma once
// Block-wise sensitivity: what quantizing one tensor costs, predicted from that tensor's own output error
// under the teacher's inputs, with no whole-model forward per tensor and type.
//
// For a matrix W read by inputs x, rounding it to Q changes its outputs by (W - Q) x; summed over the
// calibration positions that is tr(D H Dᵀ) with D = W - Q and H = Σ x xᵀ, the second moments calibration
// already gathers. The KL a small change adds is quadratic in it to first order, so KL ≈ f · tr(D H Dᵀ) with
// a factor f that depends on where the tensor sits (how much of its output error reaches the logits). f is
// fitted from a few exact whole-model measurements: per tensor kind (attn_q, ffn_down, ...), at the first,
// middle and last layer that has it, interpolated in log between them. The number of exact checks depends
// on the kinds, not on the layers, so the whole analysis grows linearly with the model.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cogqat/calib/calibration_set.hpp"
#include "cogqat/core/error.hpp"

namespace cogqat {

/// How sensitivity_analysis measures each candidate's cost.
enum class sensitivity_method {
    automatic,  ///< exact where that is cheap (auto_exact_work_limit), blockwise otherwise
    exact,      ///< the KL of a whole-model forward with only that tensor quantized, per tensor and type
    blockwise,  ///< tr(D H Dᵀ) per tensor and type, scaled to KL by a few exact checks
};

/// automatic takes the exact method when parameters x calibration positions x candidates, the multiply-adds
/// of its forwards, is at most this (stories260K at 2,048 positions: about 2e11; a 58M-weight model: 7e13).
inline constexpr double auto_exact_work_limit = 1e12;

[[nodiscard]] inline std::string_view sensitivity_method_name(sensitivity_method m) noexcept {
    switch (m) {
        case sensitivity_method::automatic:
            return "auto";
        case sensitivity_method::exact:
            return "exact";
        case sensitivity_method::blockwise:
            return "blockwise";
    }
    return "?";
}

/// "auto", "exact" or "blockwise"; anything else is an invalid_argument_error naming it.
[[nodiscard]] inline sensitivity_method parse_sensitivity_method(std::string_view name) {
    for (auto m : {sensitivity_method::automatic, sensitivity_method::exact, sensitivity_method::blockwise})
        if (sensitivity_method_name(m) == name) return m;
    throw invalid_argument_error("unknown sensitivity method '" + std::string(name) + "' (auto, exact or blockwise)");
}

/// The method automatic stands for with this much work (see auto_exact_work_limit); others are returned as given.
[[nodiscard]] inline sensitivity_method resolve_sensitivity(sensitivity_method requested, std::uint64_t parameters, std::size_t positions,
                                                            std::size_t candidates) noexcept {
    if (requested != sensitivity_method::automatic) return requested;
    const double work = static_cast<double>(parameters) * static_cast<double>(positions) * static_cast<double>(candidates);
    return work <= auto_exact_work_limit ? sensitivity_method::exact : sensitivity_method::blockwise;
}

namespace detail {

/// The sizes an error measure needs: as many decoded values as originals, whole rows of `cols`, and `weights`
/// values of what weighs them (cols x cols for H, one per row for row weights; none allowed where `optional`).
inline void check_error_shapes(std::string_view what, std::size_t original, std::size_t decoded, std::size_t cols, std::size_t weights,
                               bool per_row, bool optional) {
    if (original != decoded)
        throw shape_error(std::string(what) + ": " + std::to_string(original) + " values against " + std::to_string(decoded) + " decoded");
    if (cols == 0 || original % cols != 0)
        throw shape_error(std::string(what) + ": " + std::to_string(original) + " values are not rows of " + std::to_string(cols));
    const std::size_t expected = per_row ? original / cols : cols * cols;
    if (weights != expected && !(optional && weights == 0))
        throw shape_error(std::string(what) + ": " + std::to_string(weights) + (per_row ? " row weights for " : " values of H for ") +
                          std::to_string(original / cols) + " rows of " + std::to_string(cols) + " (needs " + std::to_string(expected) +
                          ")");
}

}  // namespace detail

/// tr(D H Dᵀ), D = original - decoded: the summed squared output error of a matrix (rows of `cols` values,
/// row-major) over the inputs whose second moments are H (cols x cols). shape_error on mismatched sizes.
[[nodiscard]] inline double hessian_weighted_error(std::span<const float> original, std::span<const float> decoded, std::size_t cols,
                                                   std::span<const double> h) {
    detail::check_error_shapes("hessian_weighted_error", original.size(), decoded.size(), cols, h.size(), false, false);
    std::vector<double> d(cols);
    double total = 0.0;
    for (std::size_t r = 0; r < original.size() / cols; ++r) {
        for (std::size_t j = 0; j < cols; ++j) d[j] = static_cast<double>(original[r * cols + j]) - decoded[r * cols + j];
        // H is symmetric: d H d = Σ_i d_i (H_ii d_i + 2 Σ_{j>i} H_ij d_j), half the products.
        for (std::size_t i = 0; i < cols; ++i) {
            if (d[i] == 0.0) continue;
            const double* row = h.data() + i * cols;
            double upper = 0.0;
            for (std::size_t j = i + 1; j < cols; ++j) upper += row[j] * d[j];
            total += d[i] * (row[i] * d[i] + 2.0 * upper);
        }
    }
    return total;
}

/// Σ_r weight[r] · |D_r|²: the output error of a table read by row (an embedding looked up `weight[r]`
/// times); with no weights every row counts once. shape_error on mismatched sizes.
[[nodiscard]] inline double lookup_weighted_error(std::span<const float> original, std::span<const float> decoded, std::size_t cols,
                                                  std::span<const double> row_weights = {}) {
    detail::check_error_shapes("lookup_weighted_error", original.size(), decoded.size(), cols, row_weights.size(), true, true);
    double total = 0.0;
    for (std::size_t r = 0; r < original.size() / cols; ++r) {
        double squares = 0.0;
        for (std::size_t j = 0; j < cols; ++j) {
            const double d = static_cast<double>(original[r * cols + j]) - decoded[r * cols + j];
            squares += d * d;
        }
        total += (row_weights.empty() ? 1.0 : row_weights[r]) * squares;
    }
    return total;
}

/// How often each of `vocab` tokens is looked up as an input in `set` (hidden-state sequences look up none).
/// value_error with the position for a token outside the vocabulary.
[[nodiscard]] inline std::vector<double> token_counts(const calibration_set& set, std::size_t vocab) {
    std::vector<double> counts(vocab, 0.0);
    std::size_t at = 0;
    for (const auto& s : set.sequences) {
        for (std::size_t p = 0; p < s.tokens.size() && p < s.length; ++p, ++at) {
            const auto t = s.tokens[p];
            if (t < 0 || static_cast<std::size_t>(t) >= vocab)
                throw value_error("token_counts: token " + std::to_string(t) + " outside the vocabulary of " + std::to_string(vocab), at);
            counts[static_cast<std::size_t>(t)] += 1.0;
        }
    }
    return counts;
}

/// One exact whole-model measurement of one tensor at one candidate type: what the factors are fitted from.
struct sensitivity_check {
    std::string tensor;       ///< its GGUF name
    std::string kind;         ///< the tensor's name without its layer ("ffn_down.weight"): one factor curve per kind
    std::size_t layer = 0;    ///< 0 for tensors outside the layers
    std::string type;         ///< the candidate type measured
    double output_error = 0;  ///< tr(D H Dᵀ) (or the lookup error)
    double kl = 0;            ///< the exact KL with only this tensor quantized
};

/// The fitted factors KL / output error: per kind, a curve over the layers (piecewise linear in log between
/// the checked layers, constant beyond them). A kind without a usable check (output error or KL zero) takes
/// the geometric mean of all usable checks; with none at all the factor is 1, so costs still rank by error.
class kl_scale {
public:
    [[nodiscard]] static kl_scale fit(std::span<const sensitivity_check> checks) {
        kl_scale s;
        double logs = 0.0;
        std::size_t usable = 0;
        for (const auto& c : checks) {
            if (!(c.output_error > 0.0 && c.kl > 0.0 && std::isfinite(c.kl) && std::isfinite(c.output_error))) continue;
            const double l = std::log(c.kl / c.output_error);
            s.curves_[c.kind].emplace_back(c.layer, l);
            logs += l, ++usable;
        }
        s.fallback_ = usable ? logs / static_cast<double>(usable) : 0.0;
        for (auto& [kind, points] : s.curves_) {
            std::sort(points.begin(), points.end());
            // Several checks of one layer (one per candidate type, say) count as their mean.
            std::vector<std::pair<std::size_t, double>> merged;
            for (std::size_t i = 0; i < points.size();) {
                std::size_t j = i;
                double sum = 0.0;
                for (; j < points.size() && points[j].first == points[i].first; ++j) sum += points[j].second;
                merged.emplace_back(points[i].first, sum / static_cast<double>(j - i));
                i = j;
            }
            points = std::move(merged);
        }
        return s;
    }

    /// The factor for a tensor of `kind` at `layer`.
    [[nodiscard]] double factor(std::string_view kind, std::size_t layer) const {
        const auto it = curves_.find(kind);
        if (it == curves_.end()) return std::exp(fallback_);
        const auto& p = it->second;
        if (layer <= p.front().first) return std::exp(p.front().second);
        if (layer >= p.back().first) return std::exp(p.back().second);
        std::size_t k = 1;
        while (p[k].first < layer) ++k;
        const double t = static_cast<double>(layer - p[k - 1].first) / static_cast<double>(p[k].first - p[k - 1].first);
        return std::exp(p[k - 1].second + t * (p[k].second - p[k - 1].second));
    }

private:
    std::map<std::string, std::vector<std::pair<std::size_t, double>>, std::less<>> curves_;
    double fallback_ = 0.0;
};

/// Of `count` layers holding a kind (in order), the positions checked: the first, the middle and the last.
[[nodiscard]] inline std::vector<std::size_t> checked_positions(std::size_t count) {
    std::vector<std::size_t> p;
    for (std::size_t k : {std::size_t{0}, count / 2, count - 1})
        if (count && (p.empty() || p.back() != k)) p.push_back(k);
    return p;
}

}  // namespace cogqat
