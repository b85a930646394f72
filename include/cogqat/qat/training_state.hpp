#pragma once
// What a QAT run holds between steps, and its checkpoint file. The state is every tensor's latent weights
// (inside its fake-quantizer once the tensor is quantized), the learned block parameters, the optimizer's
// moments and the step count. A checkpoint is a GGUF file of f32 tensors and a few keys: the format has a
// tested reader that rejects truncated and hostile files, and any GGUF tool can look inside.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/matrix_shape.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/io/gguf.hpp"
#include "cogqat/qat/fake_quant.hpp"
#include "cogqat/qat/optimizer.hpp"
#include "cogqat/qat/qat_settings.hpp"

namespace cogqat {

/// One trainable rows x cols tensor (core/matrix_shape.hpp; a vector is 1 x n): float until it is quantized,
/// then its fake-quantizer owns the latent weights.
struct trainable_tensor : matrix_shape {
    std::string name;
    ggml_type type = ggml_type::f32;  ///< the type it is trained towards and exported as
    bool matrix = false;              ///< 2-D (quantized in the end); 1-D tensors stay f32
    bool quantized = false;           ///< the fake-quantizer is active
    std::vector<float> values;        ///< latent weights while not quantized
    fake_quantized_tensor quantizer;  ///< valid when quantized
    float unit = 1.0f;                ///< the latent's learning-rate unit (a quantization step, or the tensor's RMS / 16)
    /// The blocks the quantizer started from, until the first update: an untrained tensor exports exactly
    /// these (ggml's or GPTQ's own bytes), so a run of zero steps is plain post-training quantization.
    std::vector<std::byte> initial;

    [[nodiscard]] std::span<float> latent() noexcept { return quantized ? quantizer.latent() : std::span<float>(values); }
    [[nodiscard]] std::span<const float> latent() const noexcept { return quantized ? quantizer.latent() : std::span<const float>(values); }
    /// The learning-rate unit of latents not yet quantized: their RMS / 16 (1e-3 when all are zero).
    [[nodiscard]] static float rms_unit(std::span<const float> values) noexcept {
        double squares = 0.0;
        for (float v : values) squares += static_cast<double>(v) * v;
        const double rms = values.empty() ? 0.0 : std::sqrt(squares / static_cast<double>(values.size()));
        return static_cast<float>(rms > 0.0 ? rms / 16.0 : 1e-3);
    }
    /// Once quantized with learned scales, the latent moves in units of its mean quantization step (the stored
    /// scales are the run's own, so a restored tensor gets the unit it was saved with); otherwise the unit stays.
    void use_step_as_unit() noexcept {
        if (!quantized || quantizer.kind() != fake_quant_kind::learned_scale) return;
        double sum = 0.0;
        for (const auto& s : quantizer.base_scales()) sum += std::fabs(s.scale);
        const double mean = quantizer.base_scales().empty() ? 0.0 : sum / static_cast<double>(quantizer.base_scales().size());
        if (mean > 0.0) unit = static_cast<float>(mean);
    }
    /// The weights the forward sees.
    void effective(std::span<float> out) const {
        if (quantized)
            quantizer.forward(out);
        else
            std::copy(values.begin(), values.end(), out.begin());
    }
};

struct training_state {
    std::vector<trainable_tensor> tensors;
    adamw optimizer;
    std::size_t step = 0;            ///< steps completed
    std::vector<std::string> order;  ///< units in the order they are quantized
    std::string fingerprint;         ///< what the run was started with; a resume must match it
};

/// The indices of `tensors`, the largest first: the order to hand them to threads one at a time.
[[nodiscard]] inline std::vector<std::size_t> largest_first(const std::vector<trainable_tensor>& tensors) {
    std::vector<std::size_t> order(tensors.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return tensors[a].elements() > tensors[b].elements(); });
    return order;
}

/// The gradient buffers of apply_gradients, kept from step to step so that a step allocates nothing.
struct gradient_scratch {
    std::vector<std::vector<float>> latent, parameters;
};

/// One AdamW update of `tensors` from the gradients of the weights their forward gave (gradients[i] for
/// tensors[i]): through each fake-quantizer to its latent weights and block parameters (straight-through and
/// LSQ), all of them clipped together by the global norm. A tensor with trained[i] false is read by the forward
/// and left as it is (rope_freqs). The optimizer's group index of tensor i is 2i (latent) and 2i + 1 (block
/// parameters). Returns the gradients' global norm before clipping. The tensors' backward passes and the
/// update's elements run on `threads` threads; the result is the same bits on any number.
inline double apply_gradients(std::vector<trainable_tensor>& tensors, std::span<std::vector<float>* const> gradients,
                              const std::vector<bool>& trained, adamw& optimizer, const qat_optimizer_settings& settings, float lr,
                              gradient_scratch& scratch, unsigned threads = 1) {
    if (gradients.size() != tensors.size() || trained.size() != tensors.size())
        throw shape_error("apply_gradients: " + std::to_string(gradients.size()) + " gradients and " + std::to_string(trained.size()) +
                          " flags for " + std::to_string(tensors.size()) + " tensors");
    const float peak = settings.learning_rate > 0.0f ? settings.learning_rate : 1.0f;
    const float scale_ratio = settings.scale_learning_rate / peak;
    scratch.latent.resize(tensors.size()), scratch.parameters.resize(tensors.size());
    parallel_for_each(
            tensors.size(), threads,
            [&](std::size_t i) {
                auto& t = tensors[i];
                const auto& g = *gradients[i];
                auto& latent = scratch.latent[i];
                auto& parameters = scratch.parameters[i];
                latent.resize(g.size());
                if (t.quantized) {
                    parameters.resize(t.quantizer.parameters().size());
                    t.quantizer.backward(g, latent, parameters);
                } else {
                    std::copy(g.begin(), g.end(), latent.begin());
                    parameters.clear();
                }
            },
            largest_first(tensors));
    std::vector<parameter_group> groups;
    groups.reserve(2 * tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        auto& t = tensors[i];
        auto& latent = scratch.latent[i];
        auto& parameters = scratch.parameters[i];
        if (!trained[i]) {
            groups.push_back({});
            groups.push_back({});
            continue;
        }
        groups.push_back({t.latent(), latent, t.unit, settings.weight_decay});
        groups.push_back({t.quantized ? t.quantizer.parameters() : std::span<float>{}, parameters, scale_ratio, 0.0f});
    }
    const double norm = global_gradient_norm(groups);
    const float clip =
            settings.gradient_clip > 0.0f && norm > settings.gradient_clip ? static_cast<float>(settings.gradient_clip / norm) : 1.0f;
    optimizer.step(groups, lr, clip, threads);
    return norm;
}

namespace detail {

inline constexpr std::string_view checkpoint_version = "cogqat-qat-checkpoint-1";

/// FNV-1a over bytes, continuing from h: what a checkpoint's fingerprint hashes the model with.
inline std::uint64_t fnv1a(std::uint64_t h, const void* data, std::size_t bytes) noexcept {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

inline void add_f32(gguf::writer& w, std::string name, std::span<const float> values) {
    std::vector<float> copy(values.begin(), values.end());
    const std::uint64_t n = copy.empty() ? 1 : copy.size();
    if (copy.empty()) copy.push_back(0.0f);  // GGUF has no empty tensors; the count is kept in the keys
    w.add_tensor(std::move(name), {n}, ggml_type::f32,
                 [copy = std::move(copy)](std::span<std::byte> out) { quantize(ggml_type::f32, copy, out); });
}

inline std::vector<float> read_f32(const gguf::reader& in, const std::string& name, std::size_t expected,
                                   const std::filesystem::path& path) {
    const auto* t = in.find_tensor(name);
    if (!t || t->type != ggml_type::f32) throw format_error("checkpoint " + path.string() + ": no f32 tensor " + name);
    const std::size_t stored = expected ? expected : 1;
    if (t->elements() != stored)
        throw format_error("checkpoint " + path.string() + ": tensor " + name + " holds " + std::to_string(t->elements()) +
                           " values, expected " + std::to_string(stored));
    auto values = dequantize(ggml_type::f32, in.tensor_data(*t));
    values.resize(expected);
    return values;
}

}  // namespace detail

/// Writes `state` to `path` all or nothing (gguf::writer), so an interrupted or failed write leaves the
/// previous checkpoint intact and no partial file behind.
inline void save_checkpoint(const training_state& state, const std::filesystem::path& path) {
    gguf::writer w(path);
    w.set("general.architecture", gguf::value("cogqat-checkpoint"));
    w.set("cogqat.checkpoint.version", gguf::value(detail::checkpoint_version));
    w.set("cogqat.checkpoint.fingerprint", gguf::value(state.fingerprint));
    w.set("cogqat.checkpoint.step", gguf::value(static_cast<std::uint64_t>(state.step)));
    w.set("cogqat.checkpoint.update_counts", gguf::value(state.optimizer.update_counts()));
    w.set("cogqat.checkpoint.order", gguf::value(state.order));
    std::vector<std::uint8_t> quantized;
    for (const auto& t : state.tensors) quantized.push_back(t.quantized ? 1 : 0);
    w.set("cogqat.checkpoint.quantized", gguf::value(quantized));
    std::vector<std::uint64_t> moment_sizes;
    for (const auto& m : state.optimizer.first_moments()) moment_sizes.push_back(m.size());
    w.set("cogqat.checkpoint.moment_sizes", gguf::value(moment_sizes));
    for (std::size_t i = 0; i < state.tensors.size(); ++i) {
        const auto& t = state.tensors[i];
        const std::string id = std::to_string(i);
        detail::add_f32(w, "latent." + id, t.latent());
        if (t.quantized) {
            std::vector<float> base;
            for (const auto& s : t.quantizer.base_scales()) base.push_back(s.scale), base.push_back(s.min);
            detail::add_f32(w, "base." + id, base);
            detail::add_f32(w, "param." + id, t.quantizer.parameters());
        }
    }
    for (std::size_t g = 0; g < state.optimizer.first_moments().size(); ++g) {
        detail::add_f32(w, "adam_m." + std::to_string(g), state.optimizer.first_moments()[g]);
        detail::add_f32(w, "adam_v." + std::to_string(g), state.optimizer.second_moments()[g]);
    }
    w.finish();
}

/// Restores a checkpoint into `state`, whose tensors must already have their names, shapes and types (the
/// run's plan). Throws invalid_argument_error when the checkpoint is of another run (fingerprint), and
/// format_error (through the GGUF reader) when the file is truncated or malformed.
inline void load_checkpoint(training_state& state, const std::filesystem::path& path) {
    const auto in = gguf::reader::open(path);
    auto key = [&](const char* name) -> const gguf::value& {
        const auto* v = in.find(name);
        if (!v) throw format_error("checkpoint " + path.string() + ": no key " + name);
        return *v;
    };
    if (key("cogqat.checkpoint.version").as_string() != detail::checkpoint_version)
        throw format_error("checkpoint " + path.string() + ": not a " + std::string(detail::checkpoint_version) + " file");
    if (const auto& f = key("cogqat.checkpoint.fingerprint").as_string(); f != state.fingerprint)
        throw invalid_argument_error("checkpoint " + path.string() + " is of another run (its settings: " + f +
                                     "; this run: " + state.fingerprint + "); delete it or rerun with the same settings");
    state.step = key("cogqat.checkpoint.step").as<std::uint64_t>();
    state.order = key("cogqat.checkpoint.order").as_array<std::string>();
    const auto quantized = key("cogqat.checkpoint.quantized").as_array<std::uint8_t>();
    const auto moment_sizes = key("cogqat.checkpoint.moment_sizes").as_array<std::uint64_t>();
    auto counts = key("cogqat.checkpoint.update_counts").as_array<std::uint64_t>();
    if (counts.size() != moment_sizes.size()) throw format_error("checkpoint " + path.string() + ": optimizer state of inconsistent sizes");
    if (quantized.size() != state.tensors.size())
        throw format_error("checkpoint " + path.string() + ": " + std::to_string(quantized.size()) + " tensors, the run has " +
                           std::to_string(state.tensors.size()));
    for (std::size_t i = 0; i < state.tensors.size(); ++i) {
        auto& t = state.tensors[i];
        const std::string id = std::to_string(i);
        auto latent = detail::read_f32(in, "latent." + id, t.rows * t.cols, path);
        t.quantized = quantized[i] != 0;
        if (!t.quantized) {
            t.values = std::move(latent);
            continue;
        }
        // A zero tensor of the right type gives the shapes; the saved state then replaces it.
        std::vector<float> zeros(t.rows * t.cols, 0.0f);
        t.quantizer = fake_quantized_tensor::from_values(t.type, t.rows, t.cols, zeros);
        const auto base_values = detail::read_f32(in, "base." + id, 2 * t.quantizer.base_scales().size(), path);
        std::vector<affine_scale> base(base_values.size() / 2);
        for (std::size_t b = 0; b < base.size(); ++b) base[b] = {base_values[2 * b], base_values[2 * b + 1]};
        const auto parameters = detail::read_f32(in, "param." + id, t.quantizer.parameters().size(), path);
        t.quantizer.restore(latent, base, parameters);
        t.values.clear();
    }
    auto& first = state.optimizer.first_moments();
    auto& second = state.optimizer.second_moments();
    first.assign(moment_sizes.size(), {});
    second.assign(moment_sizes.size(), {});
    for (std::size_t g = 0; g < moment_sizes.size(); ++g) {
        first[g] = detail::read_f32(in, "adam_m." + std::to_string(g), moment_sizes[g], path);
        second[g] = detail::read_f32(in, "adam_v." + std::to_string(g), moment_sizes[g], path);
    }
    state.optimizer.update_counts() = std::move(counts);
}

}  // namespace cogqat
