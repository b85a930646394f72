#pragma once
// The exact transforms as the data-free pipelines apply them (quantize --auto and qat, --rotate and --smooth):
// fold the norms and rotate (model/rotate.hpp), then smooth channels (model/smooth.hpp) with scales chosen
// from the rotated model's own calibration moments, and report what changed: for every matrix the kurtosis of
// its weights and of its inputs, and the output error of rounding it to the proxy type, before and after.
// Only the model's own outputs are read (calibration from the model itself), so the path stays data-free.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/calib/calibration_set.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/format/ggml_type.hpp"
#include "cogqat/model/llama_model.hpp"
#include "cogqat/model/llama_schema.hpp"
#include "cogqat/model/llama_weights.hpp"
#include "cogqat/model/rotate.hpp"
#include "cogqat/model/smooth.hpp"
#include "cogqat/quant/gptq.hpp"

namespace cogqat {

/// How the residual stream is rotated.
enum class rotation_mode : std::uint8_t {
    none,
    hadamard,  ///< randomized Hadamard where the width has a power-of-two factor (model/orthogonal.hpp)
    random,    ///< a random orthogonal matrix
    heads,     ///< the value heads alone (randomized Hadamard): no norm folding, no untied classifier
};

/// rotation_mode from its command-line name (none, hadamard, random, heads); invalid_argument_error otherwise.
[[nodiscard]] inline rotation_mode parse_rotation_mode(std::string_view name) {
    if (name == "none") return rotation_mode::none;
    if (name == "hadamard") return rotation_mode::hadamard;
    if (name == "random") return rotation_mode::random;
    if (name == "heads") return rotation_mode::heads;
    throw invalid_argument_error("rotation must be none, hadamard, random or heads, not '" + std::string(name) + "'");
}

[[nodiscard]] inline std::string_view rotation_mode_name(rotation_mode m) noexcept {
    switch (m) {
        case rotation_mode::none:
            return "none";
        case rotation_mode::hadamard:
            return "hadamard";
        case rotation_mode::random:
            return "random";
        case rotation_mode::heads:
            return "heads";
    }
    return "none";
}

struct transform_options {
    rotation_mode rotate = rotation_mode::none;
    bool value_heads = true;  ///< with a rotation, also rotate every layer's value heads
    bool smooth = false;      ///< smooth channels after the norms and through SwiGLU
    std::uint64_t seed = 0x5eed;
    ggml_type proxy_type = ggml_type::q4_0;                     ///< the type whose rounding error smoothing minimizes and the report shows
    std::vector<double> alphas{0.125, 0.25, 0.375, 0.5, 0.75};  ///< smoothing exponents tried (0, no change, always)
    std::size_t calibration_positions = 2048;                   ///< positions the transforms measure on (at most)
    bool gptq = true;  ///< smoothing's choice rounds with GPTQ (as the pipelines do), else ggml's reference

    [[nodiscard]] bool any() const noexcept { return rotate != rotation_mode::none || smooth; }
};

/// One matrix, before and after the transforms. Kurtosis is E[v⁴]/E[v²]² (3 for a Gaussian; large when a
/// few values dominate); the error is tr(Δ H Δᵀ) / tr(W H Wᵀ) for Δ the proxy type's round-to-nearest error
/// and H its inputs' second moments: the relative output error, the same measure in either basis.
struct transform_effect {
    std::string name;
    double weight_kurtosis_before = 0.0, weight_kurtosis_after = 0.0;
    double input_kurtosis_before = 0.0, input_kurtosis_after = 0.0;
    double error_before = 0.0, error_after = 0.0;  ///< NaN where the proxy type does not fit the rows
};

/// What apply_transforms did.
struct transform_report {
    rotation_mode rotate = rotation_mode::none;
    bool smooth = false;
    rotation_summary rotation;            ///< when rotated: the folding (and untying) and the matrices' kinds
    std::vector<std::string> smoothings;  ///< one line per smoothed group: where, alpha, predicted error before -> after
    std::vector<transform_effect> tensors;
    ggml_type proxy_type = ggml_type::q4_0;
    std::size_t positions = 0;  ///< calibration positions measured on

    [[nodiscard]] bool applied() const noexcept { return rotate != rotation_mode::none || smooth; }
    /// One line for reports: "rotation hadamard 64 (value heads hadamard 8), 11 norms folded; smoothing 15 groups".
    [[nodiscard]] std::string summary() const {
        if (!applied()) return "none";
        std::string s;
        if (rotate != rotation_mode::none) {
            s = rotation.residual.empty() ? "rotation of the value heads " + rotation.heads : "rotation " + rotation.residual;
            if (!rotation.residual.empty() && !rotation.heads.empty()) s += " (value heads " + rotation.heads + ")";
            if (rotation.folding.norms) s += ", " + std::to_string(rotation.folding.norms) + " norms folded";
            if (rotation.folding.untied) s += ", classifier untied";
        }
        if (smooth) s += std::string(s.empty() ? "" : "; ") + "smoothing " + std::to_string(smoothings.size()) + " groups";
        return s;
    }
};

namespace detail {

/// E[v⁴] / E[v²]² of `values`; 0 for all zeros.
inline double kurtosis(std::span<const float> values) {
    double m2 = 0.0, m4 = 0.0;
    for (float v : values) {
        const double s = static_cast<double>(v) * v;
        m2 += s, m4 += s * s;
    }
    return m2 > 0.0 ? static_cast<double>(values.size()) * m4 / (m2 * m2) : 0.0;
}

/// Per matrix (by GGUF name): the kurtosis of its inputs over `set`, and their second moments.
struct input_statistics {
    std::map<std::string, double, std::less<>> kurtosis;
    input_moments moments;
};

inline input_statistics measure_inputs(const llama_model& model, const calibration_set& set, unsigned threads) {
    input_statistics out;
    (void)run_teacher(model, set, threads, &out.moments);
    struct sums {
        double m2 = 0.0, m4 = 0.0, count = 0.0;
    };
    std::map<const weight_matrix*, sums> totals;
    std::mutex merge;
    parallel_for(set.sequences.size(), threads, [&](std::size_t begin, std::size_t end) {
        std::map<const weight_matrix*, sums> local;
        for (std::size_t s = begin; s < end; ++s) {
            llama_session session(model, set.sequences[s].length, activation_mode::float32, 1);
            session.observe_inputs([&](const weight_matrix& w, std::span<const float> x) {
                auto& t = local[&w];
                for (float v : x) {
                    const double q = static_cast<double>(v) * v;
                    t.m2 += q, t.m4 += q * q;
                }
                t.count += static_cast<double>(x.size());
            });
            run_sequence(session, set.sequences[s], model.config.dim, [](std::size_t, std::span<const float>) {});
        }
        std::lock_guard lock(merge);
        for (const auto& [w, t] : local) {
            auto& total = totals[w];
            total.m2 += t.m2, total.m4 += t.m4, total.count += t.count;
        }
    });
    for (const auto& [name, matrix] : named_matrices(model)) {
        const auto it = totals.find(matrix);
        if (it != totals.end() && it->second.m2 > 0.0)
            out.kurtosis[name] = it->second.count * it->second.m4 / (it->second.m2 * it->second.m2);
    }
    return out;
}

/// tr(Δ H Δᵀ) / tr(W H Wᵀ) of rounding `w` (rows of `cols`) to `type` by ggml's reference; NaN when the type
/// does not fit the rows or h is missing.
inline double relative_output_error(std::span<const float> w, std::size_t cols, const std::vector<double>* h, ggml_type type) {
    if (!h || cols == 0 || cols % info(type).block_size != 0 || h->size() != cols * cols) return std::nan("");
    const auto decoded = dequantize(type, quantize(type, w));
    auto quadratic = [&](auto&& row_value) {
        double total = 0.0;
        std::vector<double> e(cols);
        for (std::size_t r = 0; r < w.size() / cols; ++r) {
            for (std::size_t j = 0; j < cols; ++j) e[j] = row_value(r * cols + j);
            for (std::size_t i = 0; i < cols; ++i) {
                double hi = 0.0;
                for (std::size_t j = 0; j < cols; ++j) hi += (*h)[i * cols + j] * e[j];
                total += e[i] * hi;
            }
        }
        return total;
    };
    const double error = quadratic([&](std::size_t k) { return static_cast<double>(w[k]) - decoded[k]; });
    const double signal = quadratic([&](std::size_t k) { return static_cast<double>(w[k]); });
    return signal > 0.0 ? error / signal : std::nan("");
}

/// Every matrix of `w` (by GGUF name) with its kurtosis and proxy error, the inputs' statistics from `stats`.
/// A tied classifier's inputs are under token_embd.weight (named_matrices' convention).
inline std::map<std::string, transform_effect, std::less<>> effects_of(const llama_weights& w, const input_statistics& stats,
                                                                       ggml_type proxy, bool after) {
    std::map<std::string, transform_effect, std::less<>> out;
    for (const auto& t : w.tensors) {
        if (t.shape.size() < 2) continue;
        const std::size_t cols = static_cast<std::size_t>(t.shape[0]);
        const auto* h = stats.moments.find(t.name);
        const auto k = stats.kurtosis.find(t.name);
        const double weight_kurtosis = kurtosis(t.values), input_kurtosis = k == stats.kurtosis.end() ? std::nan("") : k->second;
        const double error = relative_output_error(t.values, cols, h, proxy);
        auto& e = out[t.name];
        e.name = t.name;
        (after ? e.weight_kurtosis_after : e.weight_kurtosis_before) = weight_kurtosis;
        (after ? e.input_kurtosis_after : e.input_kurtosis_before) = input_kurtosis;
        (after ? e.error_after : e.error_before) = error;
    }
    return out;
}

/// The calibration the transforms measure on: token sequences are the same for any version of the model;
/// hidden-state inputs are drawn from the version's own embedding statistics.
inline calibration_set transform_calibration(const llama_model& model, const calibration_set& previous, const calibration_options& o) {
    if (!previous.sequences.empty() && previous.source != calibration_source::hidden_states) return previous;
    return make_calibration_set(model, o);
}

/// Chooses and applies the smoothing of every group of `w` from `stats`; one line per group into `lines`.
inline void smooth_model(llama_weights& w, const input_statistics& stats, const transform_options& o, std::vector<std::string>& lines) {
    const auto& c = w.config;
    // Rounded as the pipelines round (GPTQ with the inputs' moments, where the type allows), so that the
    // choice predicts what smoothing does to the file and not to a rounding the file never sees.
    const smoothing_rounder rounder = [&](std::span<const float> weights, std::size_t cols, std::span<const double> h) {
        if (!o.gptq || !gptq_supports(o.proxy_type)) return dequantize(o.proxy_type, quantize(o.proxy_type, weights));
        return dequantize(o.proxy_type, gptq_quantize(o.proxy_type, weights, weights.size() / cols, cols, h));
    };
    auto values = [&](llama_parameter p, std::size_t layer) -> std::span<const float> {
        return require_tensor(w, p, layer, "smooth_model").values;
    };
    auto choose = [&](std::span<const llama_parameter> readers, std::size_t layer, std::size_t cols) -> std::optional<smoothing_choice> {
        const auto* h =
                stats.moments.find(llama_tensor(readers.front()).gguf_name(llama_tensor(readers.front()).per_layer ? layer : no_layer));
        if (!h || cols % info(o.proxy_type).block_size != 0) return std::nullopt;
        std::vector<std::span<const float>> spans;
        for (const auto p : readers) spans.push_back(values(p, layer));
        return choose_smoothing(spans, cols, *h, o.proxy_type, o.alphas, rounder);
    };
    auto note = [&](const std::string& where, const smoothing_choice& s) {
        char text[160];
        std::snprintf(text, sizeof text, "%s: alpha %.3f, %s output error %.4g -> %.4g", where.c_str(), s.alpha,
                      std::string(info(o.proxy_type).name).c_str(), s.error_before, s.error_after);
        lines.emplace_back(text);
    };
    for (const auto& group : llama_norm_readers) {
        const bool per_layer = llama_tensor(group.norm).per_layer;
        if (!per_layer && !has_own_classifier(w)) continue;  // a tied classifier's norm feeds the embedding too
        for (std::size_t layer = 0; layer < (per_layer ? c.n_layers : 1); ++layer) {
            const std::size_t at = per_layer ? layer : no_layer;
            const auto choice = choose(group.matrices(), at, c.dim);
            if (!choice || choice->alpha == 0.0) continue;
            smooth_norm(w, group.norm, at, choice->scales);
            note(llama_tensor(group.norm).gguf_name(at), *choice);
        }
    }
    const llama_parameter down[] = {llama_parameter::down};
    for (std::size_t layer = 0; layer < c.n_layers; ++layer) {
        const auto choice = choose(down, layer, c.hidden_dim);
        if (!choice || choice->alpha == 0.0) continue;
        smooth_feed_forward(w, layer, choice->scales);
        note("blk." + std::to_string(layer) + ".ffn_up/ffn_down", *choice);
    }
}

}  // namespace detail

/// Applies the transforms `o` asks for to `w` (a reshaped llama model; see the file comment), measuring on
/// calibration `calibration` makes from the model itself (at most o.calibration_positions positions).
/// Errors as the transforms' (model/rotate.hpp, model/smooth.hpp) and the calibration's.
[[nodiscard]] inline transform_report apply_transforms(llama_weights& w, const transform_options& o, calibration_options calibration,
                                                       unsigned threads = 0) {
    transform_report report;
    report.rotate = o.rotate, report.smooth = o.smooth, report.proxy_type = o.proxy_type;
    if (!o.any()) return report;
    threads = resolve_threads(threads);
    calibration.tokens = std::min(calibration.tokens, o.calibration_positions);
    calibration.threads = threads;

    const auto before_model = llama_model::from_weights(w);
    const auto before_set = make_calibration_set(before_model, calibration);
    report.positions = before_set.positions();
    const auto before = detail::measure_inputs(before_model, before_set, threads);
    auto effects = detail::effects_of(w, before, o.proxy_type, false);
    const bool was_tied = !has_own_classifier(w);

    if (o.rotate != rotation_mode::none)
        report.rotation = rotate_model(w, {o.seed, o.rotate != rotation_mode::random, o.value_heads || o.rotate == rotation_mode::heads,
                                           o.rotate != rotation_mode::heads});
    auto after_model = llama_model::from_weights(w);
    auto set = detail::transform_calibration(after_model, before_set, calibration);
    auto after = detail::measure_inputs(after_model, set, threads);
    if (o.smooth) {
        detail::smooth_model(w, after, o, report.smoothings);
        after_model = llama_model::from_weights(w);
        set = detail::transform_calibration(after_model, set, calibration);
        after = detail::measure_inputs(after_model, set, threads);
    }
    const auto after_effects = detail::effects_of(w, after, o.proxy_type, true);
    for (const auto& t : w.tensors) {
        const auto found = after_effects.find(t.name);
        if (found == after_effects.end()) continue;
        // An untied classifier was the embedding before: its "before" is the embedding's, read as classifier.
        const std::string_view was = was_tied && t.name == llama_tensor(llama_parameter::output).name
                                             ? llama_tensor(llama_parameter::token_embedding).name
                                             : std::string_view(t.name);
        const auto it = effects.find(was);
        auto& out = report.tensors.emplace_back(found->second);
        if (it == effects.end()) continue;
        out.weight_kurtosis_before = it->second.weight_kurtosis_before;
        out.input_kurtosis_before = it->second.input_kurtosis_before;
        out.error_before = it->second.error_before;
    }
    return report;
}

}  // namespace cogqat
