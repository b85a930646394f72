#pragma once
// Block-wise QAT's optional end-to-end phase, in the spirit of EfficientQAT's E2E-QP: once every layer is
// trained and rounded, its integer levels stay frozen and only the blocks' step sizes train (each block's scale,
// and its min where the format has one), against the teacher's next-token distribution through the whole model:
// KL(teacher || student) on the training positions, the teacher's answers kept as its top-k log-probabilities and
// the rest's mass.
//
// Memory stays bounded by one layer. A step runs the layers one at a time over its sequences and keeps only each
// layer's input stream; the backward takes the layers in reverse and runs each layer's forward again from its
// stored input (activation checkpointing). A layer's weights are decoded from its frozen blocks under the current
// scales for its own forward and backward, then dropped. What is held per layer is a step's input stream and the
// scales' parameters, gradients and moments: a few floats per 32-value block.
//
// The learned values are those of fake_quant.hpp: a block's scale is base · ρ and its min base_min + base · μ
// (ρ = 1, μ = 0 at the start), base being the block-wise phase's stored scale and min. The forward decodes exactly
// the blocks export writes: the frozen levels under the trained scales, stored as fp16. The K formats, f16 and
// the other types have no such scale and stay as they are.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cogqat/calib/calibration_set.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/process_group.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/model/layer_stream.hpp"
#include "cogqat/model/llama_backward.hpp"
#include "cogqat/qat/optimizer.hpp"
#include "cogqat/quant/gptq.hpp"

namespace cogqat {

/// One stored tensor of the student as the end-to-end phase reads it: blocks of `type`.
struct frozen_tensor {
    llama_parameter parameter = llama_parameter::wq;
    ggml_type type = ggml_type::f32;
    std::span<const std::byte> bytes;
    [[nodiscard]] std::size_t elements() const { return bytes.size() / info(type).type_size * info(type).block_size; }
};

namespace detail::scale_tuning {

/// Learned values per block: 1 (the scale) or 2 (the scale and the min) for the directly scaled formats (q4_0,
/// q4_1, q5_0, q5_1, q8_0), 0 for the others.
[[nodiscard]] inline std::size_t parameters_per_block(ggml_type type) {
    if (!gptq_supports(type)) return 0;
    std::size_t n = 0;
    visit_directly_scaled(type, [&]<class F>() { n = F::has_min ? 2 : 1; });
    return n;
}

[[nodiscard]] inline std::size_t parameter_count(const frozen_tensor& t) {
    const std::size_t per = parameters_per_block(t.type);
    return per ? t.bytes.size() / info(t.type).type_size * per : 0;
}

/// ρ = 1 and μ = 0 for every block: the blocks as stored.
[[nodiscard]] inline std::vector<float> initial_parameters(const frozen_tensor& t) {
    std::vector<float> p(parameter_count(t), 0.0f);
    const std::size_t per = parameters_per_block(t.type);
    for (std::size_t i = 0; i < p.size(); i += per) p[i] = 1.0f;
    return p;
}

inline void require_parameters(const frozen_tensor& t, std::span<const float> parameters, const char* where) {
    if (parameters.size() != parameter_count(t))
        throw shape_error(std::string(where) + ": " + std::to_string(parameters.size()) + " block parameters for a " +
                          std::string(info(t.type).name) + " tensor that takes " + std::to_string(parameter_count(t)));
}

/// out = t's blocks with each block's scale (and min) replaced by base · ρ (base_min + base · μ), rounded to fp16
/// as the block stores them: what export writes. Empty parameters: the blocks as they are.
inline void apply(const frozen_tensor& t, std::span<const float> parameters, std::span<std::byte> out) {
    if (out.size() != t.bytes.size())
        throw shape_error("scale_tuning::apply: " + std::to_string(out.size()) + " bytes for " + std::to_string(t.bytes.size()));
    std::copy(t.bytes.begin(), t.bytes.end(), out.begin());
    if (parameters.empty() && parameter_count(t) == 0) return;
    require_parameters(t, parameters, "scale_tuning::apply");
    visit_directly_scaled(t.type, [&]<class F>() {
        constexpr std::size_t per = F::has_min ? 2 : 1;
        constexpr float fp16_max = 65504.0f;  // as fake_quantized_tensor clamps
        for (std::size_t b = 0; b < t.bytes.size() / F::type_size; ++b) {
            const affine_scale base = F::sub_block_scale(t.bytes.data() + b * F::type_size, 0);
            affine_scale s{base.scale * parameters[b * per], base.min};
            if constexpr (F::has_min) s.min = base.min + base.scale * parameters[b * per + 1];
            s.scale = std::clamp(s.scale, -fp16_max, fp16_max);
            s.min = std::clamp(s.min, -fp16_max, fp16_max);
            F::store_scale(out.data() + b * F::type_size, s);
        }
    });
}

/// dL/d(parameters) of t's blocks given dL/d(decoded weights), straight through the fp16 rounding: the levels do
/// not move, so the scale's is base · Σ g · (level - offset) and the min's -base · Σ g.
inline void gradient(const frozen_tensor& t, std::span<const float> grad_weights, std::span<float> out) {
    require_parameters(t, out, "scale_tuning::gradient");
    if (out.empty()) return;
    if (grad_weights.size() != t.elements())
        throw shape_error("scale_tuning::gradient: " + std::to_string(grad_weights.size()) + " weight gradients for " +
                          std::to_string(t.elements()) + " weights");
    visit_directly_scaled(t.type, [&]<class F>() {
        constexpr std::size_t per = F::has_min ? 2 : 1;
        for (std::size_t b = 0; b < t.bytes.size() / F::type_size; ++b) {
            const std::byte* block = t.bytes.data() + b * F::type_size;
            const affine_scale base = F::sub_block_scale(block, 0);
            double d_scale = 0.0, d_min = 0.0;
            for (std::size_t i = 0; i < F::block_size; ++i) {
                const double g = grad_weights[b * F::block_size + i];
                d_scale += g * static_cast<double>(stored_level<F>(block, i) - F::level_offset);
                d_min -= g;
            }
            out[b * per] = static_cast<float>(d_scale * base.scale);
            if constexpr (F::has_min) out[b * per + 1] = static_cast<float>(d_min * base.scale);
        }
    });
}

/// KL(teacher || student) at position `at` from the student's logits, times `weight`, and its gradient with
/// respect to the logits (times `weight`) into `grad`. A top-k teacher's other tokens are one outcome, as
/// score_against_teacher counts them: Σ_top p (log p - log q) + p_rest (log p_rest - log q_rest).
/// `logq` and `outside` are scratch of vocab entries (outside all true on entry and on return).
inline double kl_and_gradient(const teacher_outputs& teacher, std::size_t at, std::span<const float> logits, double weight,
                              std::span<float> grad, std::vector<double>& logq, std::vector<char>& outside) {
    const std::size_t vocab = teacher.vocab;
    logq.resize(vocab);
    detail::log_softmax(logits, logq.data());
    double kl = 0.0;
    if (teacher.top_k == 0) {
        const float* ref = teacher.log_probs.data() + at * vocab;
        for (std::size_t v = 0; v < vocab; ++v) {
            const double p = std::exp(static_cast<double>(ref[v]));
            kl += p * (static_cast<double>(ref[v]) - logq[v]);
            grad[v] = static_cast<float>(weight * (std::exp(logq[v]) - p));
        }
        return kl * weight;
    }
    const std::size_t k = teacher.top_k;
    const std::int32_t* tokens = teacher.top_tokens.data() + at * k;
    for (std::size_t j = 0; j < k; ++j) outside[static_cast<std::size_t>(tokens[j])] = 0;
    // log q_rest by its own sum, not as log(1 - kept): the rest may hold little of the student's mass.
    double max = -INFINITY;
    for (std::size_t v = 0; v < vocab; ++v)
        if (outside[v]) max = std::max(max, logq[v]);
    double sum = 0.0;
    for (std::size_t v = 0; v < vocab; ++v)
        if (outside[v]) sum += std::exp(logq[v] - max);
    const double log_q_rest = sum > 0.0 ? max + std::log(sum) : -INFINITY;
    const double p_rest = teacher.rest[at];
    double kept = 0.0;
    for (std::size_t j = 0; j < k; ++j) {
        const double lp = teacher.log_probs[at * k + j], p = std::exp(lp);
        kl += p * (lp - logq[static_cast<std::size_t>(tokens[j])]);
        kept += p;
    }
    const bool rest = p_rest > 0.0 && std::isfinite(log_q_rest);
    if (rest) kl += p_rest * (std::log(p_rest) - log_q_rest);
    // d/dz_v: q_v (kept + p_rest) - p_v inside the top k, q_v (kept + p_rest) - p_rest q_v / q_rest outside.
    const double total = kept + p_rest;
    for (std::size_t v = 0; v < vocab; ++v) {
        const double q = std::exp(logq[v]);
        const double rest_part = outside[v] && rest ? p_rest * std::exp(logq[v] - log_q_rest) : 0.0;
        grad[v] = static_cast<float>(weight * (q * total - rest_part));
    }
    for (std::size_t j = 0; j < k; ++j) {
        const auto v = static_cast<std::size_t>(tokens[j]);
        grad[v] = static_cast<float>(weight * (std::exp(logq[v]) * total - std::exp(static_cast<double>(teacher.log_probs[at * k + j]))));
        outside[v] = 1;
    }
    return kl * weight;
}

}  // namespace detail::scale_tuning

/// The end-to-end phase's settings (block-wise QAT fills them from its own).
struct end_to_end_settings {
    std::size_t batch = 4;            ///< sequences per step
    std::size_t gradient_groups = 4;  ///< a step's sequences in this many groups, summed in order
    std::size_t sequence_length = 128;
    float beta1 = 0.9f, beta2 = 0.999f;
    float gradient_clip = 1.0f;  ///< on the global norm of the scales' gradients (0: none)
    unsigned threads = 1;
};

/// What the phase holds, measured on its own buffers after a step.
struct end_to_end_memory {
    std::size_t per_layer =
            0;  ///< bytes held for each layer (the largest): its input stream of a step, its scales' parameters, gradients and moments
    std::size_t once =
            0;  ///< bytes held once whatever the depth: one layer decoded, the gradients of the groups in flight, the classifier, the head
    std::size_t total = 0;  ///< all of it
};

/// The student as stored, whose block scales the phase trains.
struct end_to_end_student {
    llama_config shape;  ///< the student's (a padded feed-forward width included)
    /// Layer l's tensors in the schema's order (layerwise::for_each_layer_tensor); their bytes must stay valid
    /// while the phase runs. Called from one thread at a time.
    std::function<std::vector<frozen_tensor>(std::size_t layer)> layer;
    frozen_tensor embedding, classifier;  ///< the classifier is the embedding when tied
    std::vector<float> output_norm, rope_freqs;
};

/// Trains the block scales of a stored student against a teacher's answers on token sequences, one layer in
/// memory at a time. Every process of `processes` constructs it alike and calls the same steps: each computes its
/// groups of a step's sequences, and the scales' gradient is the groups' added in group order, the same bits on
/// any number of threads or processes.
class end_to_end_scales {
public:
    /// `teacher`'s answers are at the positions of `tokens` (sequences of settings.sequence_length one after
    /// another); both must outlive the object. Throws invalid_argument_error or shape_error when they do not fit.
    end_to_end_scales(end_to_end_student student, const teacher_outputs& teacher, std::span<const std::int32_t> tokens,
                      end_to_end_settings settings, const process_group& processes)
            : student_(std::move(student)),
              teacher_(&teacher),
              tokens_(tokens),
              settings_(settings),
              processes_(&processes),
              optimizer_(adamw_options{settings.beta1, settings.beta2, 1e-8f}) {
        const auto& s = settings_;
        const auto& c = student_.shape;
        if (s.batch == 0 || s.gradient_groups == 0 || s.gradient_groups > s.batch || s.sequence_length == 0)
            throw invalid_argument_error("end_to_end_scales: " + std::to_string(s.gradient_groups) + " groups of a batch of " +
                                         std::to_string(s.batch) + " sequences of " + std::to_string(s.sequence_length));
        if (tokens_.empty() || tokens_.size() % s.sequence_length != 0)
            throw shape_error("end_to_end_scales: " + std::to_string(tokens_.size()) + " tokens are not sequences of " +
                              std::to_string(s.sequence_length));
        if (teacher.argmax.size() != tokens_.size() || teacher.vocab != c.vocab_size)
            throw invalid_argument_error("end_to_end_scales: the teacher's answers are not of these tokens and vocabulary");
        const std::size_t table = static_cast<std::size_t>(c.vocab_size) * c.dim;
        if (student_.embedding.elements() != table || student_.classifier.elements() != table || student_.output_norm.size() != c.dim)
            throw shape_error("end_to_end_scales: an embedding, classifier or output norm of another shape than " +
                              std::to_string(c.vocab_size) + " x " + std::to_string(c.dim));
        classifier_.resize(table);
        dequantize(student_.classifier.type, student_.classifier.bytes, classifier_);
        parameters_.resize(c.n_layers), gradients_.resize(c.n_layers), offsets_.resize(c.n_layers), x_.resize(c.n_layers + 1);
        for (std::size_t l = 0; l < c.n_layers; ++l) {
            for (const auto& t : student_.layer(l)) {
                offsets_[l].push_back(parameters_[l].size());
                const auto initial = detail::scale_tuning::initial_parameters(t);
                parameters_[l].insert(parameters_[l].end(), initial.begin(), initial.end());
            }
            offsets_[l].push_back(parameters_[l].size());
            gradients_[l].assign(parameters_[l].size(), 0.0f);
        }
        layer_ = detail::layerwise::one_layer(c);
        layer_.rope_freqs = student_.rope_freqs;
    }

    [[nodiscard]] std::size_t layers() const noexcept { return parameters_.size(); }
    /// Every layer's learned values: per tensor of the layer in the schema's order, per block ρ (and μ).
    [[nodiscard]] std::size_t parameter_count() const noexcept {
        std::size_t n = 0;
        for (const auto& p : parameters_) n += p.size();
        return n;
    }
    [[nodiscard]] std::span<float> parameters(std::size_t layer) { return parameters_.at(layer); }
    [[nodiscard]] std::span<const float> gradients(std::size_t layer) const { return gradients_.at(layer); }
    /// The learned values of tensor i (the schema's order) of `layer`.
    [[nodiscard]] std::span<const float> tensor_parameters(std::size_t layer, std::size_t i) const {
        const auto& o = offsets_.at(layer);
        return std::span<const float>(parameters_[layer]).subspan(o.at(i), o.at(i + 1) - o[i]);
    }

    /// The mean KL per position over the picked sequences (indices into the token sequences), and its gradient
    /// with respect to every learned value into gradients().
    double gradient(std::span<const std::size_t> picked) {
        const auto& c = student_.shape;
        const std::size_t T = settings_.sequence_length, dim = c.dim, groups = settings_.gradient_groups, L = layers();
        if (picked.size() != settings_.batch)
            throw invalid_argument_error("end_to_end_scales::gradient: " + std::to_string(picked.size()) + " sequences, the batch is " +
                                         std::to_string(settings_.batch));
        for (auto s : picked)
            if (s >= tokens_.size() / T) throw invalid_argument_error("end_to_end_scales::gradient: no sequence " + std::to_string(s));
        const unsigned threads = std::max(1u, settings_.threads);
        const std::size_t slots = group_wave(groups, threads, *processes_);
        while (passes_.size() < slots) passes_.push_back(std::make_unique<llama_layer_pass>(c));
        slot_gradients_.resize(slots), heads_.resize(slots);
        for (auto& x : x_) x.resize(picked.size() * T * dim);
        dx_.resize(picked.size() * T * dim);

        // The student's embedding rows for this process's sequences.
        const std::size_t row_bytes = storage_size(student_.embedding.type, dim);
        for (auto g : own_groups(groups, *processes_))
            for (std::size_t b = first_of(g); b < first_of(g + 1); ++b)
                for (std::size_t p = 0; p < T; ++p) {
                    const auto token = static_cast<std::size_t>(tokens_[picked[b] * T + p]);
                    if (token >= c.vocab_size) throw invalid_argument_error("end_to_end_scales: token " + std::to_string(token));
                    dequantize(student_.embedding.type, student_.embedding.bytes.subspan(token * row_bytes, row_bytes),
                               sequence(x_[0], b).subspan(p * dim, dim));
                }
        for (std::size_t l = 0; l < L; ++l) {
            (void)decode(l);
            for_own_groups(
                    groups, threads, *processes_,
                    [&](std::size_t g, std::size_t k) {
                        for (std::size_t b = first_of(g); b < first_of(g + 1); ++b) {
                            const auto y = passes_[k]->forward(layer_.layers[0], layer_.rope_freqs, sequence(x_[l], b));
                            std::copy(y.begin(), y.end(), sequence(x_[l + 1], b).begin());
                        }
                    },
                    [](std::size_t, std::size_t) {});
        }
        const double weight = 1.0 / static_cast<double>(picked.size() * T);
        const double loss = sum_groups_in_order(
                groups, 0, threads, *processes_, [&](std::size_t g, std::size_t k) { return head(g, heads_[k], picked, weight); },
                [](std::size_t) {}, [](std::size_t, std::span<float>) {}, [](std::span<const float>) {});
        for (std::size_t l = L; l-- > 0;) {
            (void)decode(l);
            if (partial_.size() < slots) partial_.resize(slots, llama_parameters::zeros_like(layer_));
            auto& total = gradients_[l];
            std::fill(total.begin(), total.end(), 0.0f);
            (void)sum_groups_in_order(
                    groups, total.size(), threads, *processes_,
                    [&](std::size_t g, std::size_t k) {
                        auto& into = partial_[k];
                        into.set_zero();
                        for (std::size_t b = first_of(g); b < first_of(g + 1); ++b) {
                            (void)passes_[k]->forward(layer_.layers[0], layer_.rope_freqs, sequence(x_[l], b));
                            const auto down = passes_[k]->backward(layer_.layers[0], sequence(dx_, b), into.layers[0]);
                            std::copy(down.begin(), down.end(), sequence(dx_, b).begin());
                        }
                        auto& out = slot_gradients_[k];
                        out.resize(total.size());
                        for (std::size_t i = 0; i < current_.size(); ++i)
                            detail::scale_tuning::gradient(
                                    current_[i], into.values(current_[i].parameter, 0),
                                    std::span<float>(out).subspan(offsets_[l][i], offsets_[l][i + 1] - offsets_[l][i]));
                        return 0.0;
                    },
                    [&](std::size_t k) { add(total, slot_gradients_[k]); },
                    [&](std::size_t k, std::span<float> to) {
                        std::copy(slot_gradients_[k].begin(), slot_gradients_[k].end(), to.begin());
                    },
                    [&](std::span<const float> from) { add(total, from); });
        }
        return loss;
    }

    /// One AdamW update of every learned value from gradients() at learning rate `lr`, the gradients clipped by
    /// their global norm. Returns that norm before clipping.
    double update(float lr) {
        std::vector<parameter_group> groups;
        for (std::size_t l = 0; l < layers(); ++l) groups.push_back({parameters_[l], gradients_[l], 1.0f, 0.0f});
        const double norm = global_gradient_norm(groups);
        const float clip = settings_.gradient_clip > 0.0f && norm > settings_.gradient_clip
                                   ? static_cast<float>(settings_.gradient_clip / norm)
                                   : 1.0f;
        optimizer_.step(groups, lr, clip, std::max(1u, settings_.threads));
        return norm;
    }

    /// Layer l as the forward sees it: its blocks decoded under the current scales.
    [[nodiscard]] const llama_parameters& decode(std::size_t l) {
        current_ = student_.layer(l);
        if (current_.size() + 1 != offsets_.at(l).size())
            throw shape_error("end_to_end_scales: layer " + std::to_string(l) + " now has " + std::to_string(current_.size()) + " tensors");
        for (std::size_t i = 0; i < current_.size(); ++i) {
            const auto& t = current_[i];
            auto& values = layer_.values(t.parameter, 0);
            values.resize(t.elements());
            scratch_.resize(t.bytes.size());
            detail::scale_tuning::apply(t, tensor_parameters(l, i), scratch_);
            dequantize(t.type, scratch_, values);
        }
        return layer_;
    }

    /// Tensor i (the schema's order) of layer l as export writes it: its frozen blocks under the trained scales.
    void exported(std::size_t l, std::size_t i, const frozen_tensor& t, std::span<std::byte> out) const {
        detail::scale_tuning::apply(t, tensor_parameters(l, i), out);
    }

    /// What the phase holds now (after a step, its largest).
    [[nodiscard]] end_to_end_memory memory() const {
        auto floats = [](const std::vector<float>& v) { return v.capacity() * sizeof(float); };
        end_to_end_memory m;
        for (std::size_t l = 0; l < layers(); ++l) {
            std::size_t bytes = floats(x_[l]) + floats(parameters_[l]) + floats(gradients_[l]);
            if (l < optimizer_.first_moments().size())
                bytes += floats(optimizer_.first_moments()[l]) + floats(optimizer_.second_moments()[l]);
            m.per_layer = std::max(m.per_layer, bytes);
            m.total += bytes;
        }
        auto parameters_bytes = [&](const llama_parameters& p) {
            std::size_t bytes = 0;
            detail::layerwise::for_each_layer_tensor(student_.shape,
                                                     [&](const tensor_schema& t) { bytes += floats(p.values(t.parameter, 0)); });
            return bytes;
        };
        m.once = floats(x_.back()) + floats(dx_) + floats(classifier_) + parameters_bytes(layer_) + scratch_.capacity();
        for (const auto& p : partial_) m.once += parameters_bytes(p);
        for (const auto& g : slot_gradients_) m.once += floats(g);
        for (const auto& h : heads_)
            m.once += floats(h.normed) + floats(h.inv_rms) + floats(h.logits) + floats(h.dnormed) + floats(h.dnorm) +
                      h.logq.capacity() * sizeof(double) + h.outside.capacity();
        m.total += m.once;
        return m;
    }

private:
    /// A group in flight's buffers for the classifier's end of the model.
    struct head_buffers {
        std::vector<float> normed, inv_rms, logits, dnormed, dnorm;
        std::vector<double> logq;
        std::vector<char> outside;
    };

    [[nodiscard]] std::size_t first_of(std::size_t g) const noexcept { return g * settings_.batch / settings_.gradient_groups; }
    [[nodiscard]] std::span<float> sequence(std::vector<float>& stream, std::size_t b) const noexcept {
        const std::size_t n = settings_.sequence_length * student_.shape.dim;
        return {stream.data() + b * n, n};
    }
    static void add(std::vector<float>& total, std::span<const float> part) {
        for (std::size_t i = 0; i < total.size(); ++i) total[i] += part[i];
    }

    /// Group g's loss through the output norm and the classifier, and dL/d(final stream) into dx_.
    double head(std::size_t g, head_buffers& h, std::span<const std::size_t> picked, double weight) {
        namespace bw = detail::backward;
        const auto& c = student_.shape;
        const std::size_t T = settings_.sequence_length, dim = c.dim, vocab = c.vocab_size;
        h.normed.resize(T * dim), h.inv_rms.resize(T), h.logits.resize(T * vocab), h.dnormed.resize(T * dim), h.dnorm.resize(dim);
        h.outside.resize(vocab, 1);
        double loss = 0.0;
        for (std::size_t b = first_of(g); b < first_of(g + 1); ++b) {
            const std::span<const float> x = sequence(x_.back(), b);
            bw::rms_norm_forward<float>(x, student_.output_norm, c.rms_norm_eps, h.normed, h.inv_rms, T);
            bw::matmul<float>(h.normed, classifier_, h.logits, T, dim, vocab);
            for (std::size_t p = 0; p < T; ++p) {
                const auto row = std::span<float>(h.logits).subspan(p * vocab, vocab);
                // The gradient replaces the logits it is computed from (log-probabilities are taken first).
                loss += detail::scale_tuning::kl_and_gradient(*teacher_, picked[b] * T + p, row, weight, row, h.logq, h.outside);
            }
            std::fill(h.dnormed.begin(), h.dnormed.end(), 0.0f);
            bw::matmul_backward_input<float>(h.logits, classifier_, h.dnormed, T, dim, vocab);
            const auto dx = sequence(dx_, b);
            std::fill(dx.begin(), dx.end(), 0.0f);
            bw::rms_norm_backward<float>(h.dnormed, x, student_.output_norm, h.inv_rms, dx, h.dnorm, T);
        }
        return loss;
    }

    end_to_end_student student_;
    const teacher_outputs* teacher_;
    std::span<const std::int32_t> tokens_;
    end_to_end_settings settings_;
    const process_group* processes_;
    adamw optimizer_;
    std::vector<float> classifier_;                           ///< decoded once: the head's weights
    std::vector<std::vector<float>> parameters_, gradients_;  ///< per layer, its tensors' one after another
    std::vector<std::vector<std::size_t>> offsets_;           ///< per layer, where each tensor's start (and the end)
    std::vector<std::vector<float>> x_;                       ///< per layer, its input stream of a step's sequences; then the final one
    std::vector<float> dx_;                                   ///< dL/d(stream) of a step's sequences, moving down the layers
    llama_parameters layer_;                                  ///< the layer being run, decoded
    std::vector<frozen_tensor> current_;                      ///< its stored tensors
    std::vector<std::byte> scratch_;                          ///< a tensor's blocks under the current scales
    std::vector<std::unique_ptr<llama_layer_pass>> passes_;   ///< per group in flight
    std::vector<llama_parameters> partial_;                   ///< per group in flight: its weights' gradient
    std::vector<std::vector<float>> slot_gradients_;          ///< per group in flight: its scales' gradient
    std::vector<head_buffers> heads_;                         ///< per group in flight
};

}  // namespace cogqat
