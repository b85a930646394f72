#pragma once
// Data-free quantization-aware training. The teacher is the full-precision model; the student is the same
// model with fake-quantized weights (qat/fake_quant.hpp), whose forward is exactly what the exported GGUF
// decodes to. The only data are sequences the teacher writes itself. Phases:
//   1. the student starts as the teacher;
//   2. synthetic data: self-generated sequences, the teacher's log-probabilities on them and the second
//      moments of every matrix's inputs (for the Hessian-aware initial rounding);
//   3. progressive quantization: units (the embedding, then each layer) in order of measured sensitivity,
//      least sensitive first; each is initialized by GPTQ (or ggml's rounding) from the current latent
//      weights and followed by a few training steps, in which the still-float units adapt too;
//   4. global fine-tuning of everything, quantized.
// The loss is kl_weight * T^2 * KL(teacher_T || student_T) + (1 - kl_weight) * CE on the teacher's tokens,
// minimized by AdamW with warm-up, cosine decay and global-norm clipping. The run checkpoints every N steps
// and resumes from its checkpoint bit-for-bit (same settings and thread count).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cogqat/calib/calibration_set.hpp"
#include "cogqat/core/checked.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/memory.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/core/random.hpp"
#include "cogqat/io/gguf.hpp"
#include "cogqat/io/read_llama.hpp"
#include "cogqat/loss/kl_divergence.hpp"
#include "cogqat/model/llama_backward.hpp"
#include "cogqat/model/llama_model.hpp"
#include "cogqat/model/llama_schema.hpp"
#include "cogqat/model/reshape.hpp"
#include "cogqat/qat/auto_quantize.hpp"
#include "cogqat/qat/fake_quant.hpp"
#include "cogqat/qat/optimizer.hpp"
#include "cogqat/qat/qat_settings.hpp"
#include "cogqat/qat/training_state.hpp"
#include "cogqat/qat/transforms.hpp"
#include "cogqat/quant/gptq.hpp"
#include "cogqat/quant/mix_policy.hpp"

namespace cogqat {

/// Everything a QAT run is told. Defaults: a 75% memory reduction against F16 when types are chosen
/// automatically, an accuracy threshold of 0.98 on retention, and pure KL at T = 1 (kl_weight 1). The
/// classic distillation mix (kl_weight 0.5, T = 3) is one setting away, but measured worse here (docs/qat.md):
/// the teacher's tokens are its own samples, so the cross-entropy term is a noisy estimate of the same KL that
/// over-fits a finite sample, and T > 1 spends the effort on the tail that perplexity does not reward.
struct qat_config {
    /// Types per layer kind (embeddings, attention, feed-forward, output; norms stay f32) and overrides.
    mix_policy types{find_preset("q4_0"), {}};
    /// Choose the types instead by measured sensitivity under a size target (the auto_quantize allocation).
    bool automatic_types = false;
    double memory_reduction_target =
            0.75;  ///< the size target of automatic types, as a share saved against F16 (or the smallest size where out of reach)...
    std::optional<size_target> target;  ///< ...unless another target (bits per weight, file bytes) is given
    double accuracy_threshold = 0.98;   ///< retention exp(-dNLL) the result is judged against
    float kl_weight = 1.0f;
    float temperature = 1.0f;
    qat_optimizer_settings optimizer;
    std::size_t steps = 300;          ///< global fine-tuning steps (phase 4)
    std::size_t steps_per_unit = 10;  ///< training steps after each unit is quantized (phase 3)
    std::size_t batch = 16;           ///< sequences per step
    std::size_t sequence_length = 128;
    std::size_t samples = 256;            ///< self-generated training sequences
    std::size_t validation_samples = 16;  ///< held-out self-generated sequences (another seed) for the report
    std::uint64_t seed = 1;
    qat_init init = qat_init::gptq;
    bool pad_feed_forward = true;
    bool drop_duplicate_classifier = true;
    transform_options transforms;  ///< exact rotation and smoothing of the teacher before training (qat/transforms.hpp)
    unsigned threads = 0;
    std::filesystem::path checkpoint;  ///< empty: no checkpoint
    std::size_t checkpoint_every = 50;
    /// A completed run removes its checkpoint once `out` is written (a stopped one keeps it to resume from);
    /// true keeps it.
    bool keep_checkpoint = false;
    gguf::split_limits split;  ///< active: write the model as a split set (gguf/split.hpp)
};

/// Where the run is. `loss` and `kl` are the last step's (mean per position; kl at T = 1).
struct qat_progress {
    std::string_view
            phase;  ///< "data", "generate" (step = tokens the teacher has written), "sensitivity", "progressive", "fine-tune", "export"
    std::size_t step = 0, total = 0;
    double loss = 0.0, kl = 0.0;
    float learning_rate = 0.0f;
    std::string_view item;
};

struct qat_curve_point {
    std::size_t step = 0;
    double loss = 0.0, kl = 0.0;
    float learning_rate = 0.0f;
    bool progressive = false;  ///< phase 3 (else phase 4)
};

struct qat_unit {
    std::string name;  ///< "token_embd", "output", "blk.N"
    double kl = 0.0;   ///< with only this unit quantized by the initial rounding
};

struct qat_report : quantized_model_summary {
    std::vector<qat_tensor> tensors;
    std::vector<qat_unit> order;         ///< quantization order, least sensitive first
    std::vector<qat_curve_point> curve;  ///< every step of this invocation (a resumed run: from the resume on)
    calibration_score before;            ///< the initial rounding of every tensor, no training (held-out set)
    calibration_score after;             ///< the written file (held-out set); both with llama.cpp's arithmetic
    std::size_t steps_total = 0, steps_done = 0, resumed_from = 0;
    bool completed = false;  ///< false when the progress callback stopped the run (the checkpoint holds it)
    /// Empty, or why a completed run could not remove its checkpoint (the file is then left behind).
    std::string checkpoint_note;
    std::size_t training_positions = 0, validation_positions = 0;
};

namespace detail {

/// The unit a tensor belongs to in the progressive phase.
[[nodiscard]] inline std::string unit_of(std::string_view name) {
    if (name.starts_with("blk.")) return std::string(name.substr(0, name.find('.', 4)));
    return std::string(name.substr(0, name.find('.')));
}

}  // namespace detail

/// Runs data-free QAT on a GGUF of the llama family (llama, with or without Llama 3 RoPE scaling; qwen2; qwen3).
/// Matrices are fake-quantized; vectors (norms, qwen2's biases, qwen3's head norms) train in float and are
/// written f32; rope_freqs is kept as it is. Construct, optionally set a progress callback, then run().
class qat_pipeline {
public:
    /// Returning false from the callback stops the run after the current step (checkpoint written).
    using progress_callback = std::function<bool(const qat_progress&)>;

    /// Reads and reshapes the model; `in` must outlive the pipeline (automatic types measure on it). Throws invalid_argument_error for
    /// settings that cannot run (zero batch, kl_weight outside [0, 1], ...).
    qat_pipeline(const gguf::reader& in, qat_config config) : config_(std::move(config)) {
        const auto& c = config_;
        if (c.batch == 0) throw invalid_argument_error("qat: batch must be at least 1");
        if (c.samples == 0 || c.validation_samples == 0)
            throw invalid_argument_error("qat: samples and validation samples must be at least 1");
        if (c.sequence_length < 2) throw invalid_argument_error("qat: sequences need at least 2 positions");
        if (!(c.kl_weight >= 0.0f && c.kl_weight <= 1.0f)) throw invalid_argument_error("qat: kl_weight must lie in [0, 1]");
        if (!(c.temperature > 0.0f) || !std::isfinite(c.temperature)) throw invalid_argument_error("qat: temperature must be positive");
        if (!(c.optimizer.learning_rate >= 0.0f) || !(c.optimizer.scale_learning_rate >= 0.0f))
            throw invalid_argument_error("qat: learning rates must be >= 0");
        if (!(c.accuracy_threshold >= 0.0 && c.accuracy_threshold <= 1.0))
            throw invalid_argument_error("qat: accuracy threshold must lie in [0, 1]");
        if (!c.checkpoint.empty() && c.checkpoint_every == 0)
            throw invalid_argument_error("qat: checkpoint interval must be at least 1 step");
        metadata_ = in.metadata();
        source_ = &in;
        weights_ = io::read_llama_weights(in);
        check_sizes();
        feed_forward_from_ = weights_.config.hidden_dim;
        if (c.drop_duplicate_classifier) classifier_tied_ = drop_duplicate_classifier(weights_);
        if (c.pad_feed_forward) pad_feed_forward(weights_, 32);
        teacher_ = std::make_unique<llama_model>(llama_model::from_weights(weights_));
    }

    void on_progress(progress_callback callback) { progress_ = std::move(callback); }

private:
    /// The settings against the model and the machine, before any work: sequences within the context, a step
    /// count that does not wrap around, and the teacher's log-probabilities (a float per vocabulary entry at
    /// every position, training and held-out) within memory.
    void check_sizes() const {
        const auto& c = config_;
        const auto& m = weights_.config;
        if (c.sequence_length > m.context_length)
            throw invalid_argument_error("qat: sequences of " + std::to_string(c.sequence_length) +
                                         " positions exceed the model's context of " + std::to_string(m.context_length));
        const std::uint64_t units = std::uint64_t{m.n_layers} + 2;  // the embedding, each layer, the classifier
        const auto unit_steps = checked_mul(units, c.steps_per_unit);
        if (!unit_steps || !checked_add(*unit_steps, c.steps))
            throw invalid_argument_error("qat: " + std::to_string(c.steps_per_unit) + " steps per unit over " + std::to_string(units) +
                                         " units and " + std::to_string(c.steps) + " fine-tuning steps overflow a step count");
        const auto sequences = checked_add(c.samples, c.validation_samples);
        const auto positions = sequences ? checked_mul(*sequences, c.sequence_length) : std::nullopt;
        const auto floats = positions ? checked_mul(*positions, m.vocab_size) : std::nullopt;
        require_memory("qat: the teacher's log-probabilities on " + std::to_string(c.samples) + " + " +
                               std::to_string(c.validation_samples) + " sequences of " + std::to_string(c.sequence_length) +
                               " positions over " + std::to_string(m.vocab_size) + " tokens",
                       floats ? checked_mul(*floats, sizeof(float)) : std::nullopt);
    }

public:
    /// Trains and writes `out`; resumes from the checkpoint when config.checkpoint names an existing file.
    [[nodiscard]] qat_report run(const std::filesystem::path& out) {
        const auto start = std::chrono::steady_clock::now();
        const unsigned threads = resolve_threads(config_.threads);
        qat_report report = new_report();
        input_moments moments;
        make_data(report, moments, threads);
        plan_types(report, threads);
        training_state state = student_as_teacher(report);
        const auto initial = initial_blocks(state, moments);
        order_units(state, initial, report, threads);
        resume(state, report);
        train(state, moments, initial, report, threads);
        if (report.completed) {
            export_and_validate(state, moments, initial, out, report, threads);
            remove_checkpoint(report);
        }
        report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return report;
    }

    /// The reshaped full-precision model the student learns from.
    [[nodiscard]] const llama_model& teacher() const noexcept { return *teacher_; }
    [[nodiscard]] const qat_config& config() const noexcept { return config_; }

private:
    void remove_checkpoint(qat_report& report) const {
        if (config_.checkpoint.empty() || config_.keep_checkpoint) return;
        std::error_code ec;
        if (!std::filesystem::remove(config_.checkpoint, ec) && ec)
            report.checkpoint_note = "cannot remove the checkpoint '" + config_.checkpoint.string() + "': " + ec.message();
    }

    bool notify(const qat_progress& p) const { return progress_ ? progress_(p) : true; }
    bool notify_phase(std::string_view phase, std::size_t done, std::size_t total, std::string_view item = {}) const {
        return notify({phase, done, total, 0.0, 0.0, 0.0f, item});
    }

    [[nodiscard]] qat_report new_report() const {
        qat_report report;
        report.accuracy_threshold = config_.accuracy_threshold;
        report.classifier_tied = classifier_tied_;
        report.feed_forward_from = feed_forward_from_;
        report.feed_forward_to = weights_.config.hidden_dim;
        return report;
    }

    /// Phase 2: the synthetic data (training and held-out sequences the teacher writes), the teacher's answers
    /// on them, and the second moments of every matrix's inputs.
    void make_data(qat_report& report, input_moments& moments, unsigned threads) {
        const auto& c = config_;
        notify_phase("data", 0, 1);
        if (c.transforms.any()) {
            // The teacher itself is rotated and smoothed (exactly): the student starts from, trains and
            // exports the transformed weights, which llama.cpp runs as any llama.
            calibration_options calibration;
            calibration.sequence_length = c.sequence_length;
            calibration.seed = c.seed;
            transform_options transforms = c.transforms;
            transforms.gptq = transforms.gptq && c.init == qat_init::gptq;  // smoothing predicts the initial rounding
            report.transforms = apply_transforms(weights_, transforms, calibration, threads);
            if (report.transforms.rotation.folding.untied) classifier_tied_ = report.classifier_tied = false;
            teacher_ = std::make_unique<llama_model>(llama_model::from_weights(weights_));
        }
        // The tokens the teacher writes, training and held-out sequences together, are the step's progress.
        const std::size_t all_tokens = (c.samples + c.validation_samples) * c.sequence_length;
        auto generation = self_generated_sequences(c.samples, c.sequence_length, c.seed, threads);
        generation.on_tokens = [&](std::size_t done, std::size_t) { notify_phase("generate", done, all_tokens); };
        train_set_ = make_calibration_set(*teacher_, generation);
        train_answers_ = run_teacher(*teacher_, train_set_, threads, &moments);
        gptq_factors_ = gptq_factor_cache(gptq_options{gptq_options{}.damping, threads});  // factors of these moments only
        auto held_out = self_generated_sequences(c.validation_samples, c.sequence_length, c.seed + 0x5eed, threads);
        held_out.on_tokens = [&, before = train_set_.positions()](std::size_t done, std::size_t) {
            notify_phase("generate", before + done, all_tokens);
        };
        validation_set_ = make_calibration_set(*teacher_, held_out);
        validation_answers_ = run_teacher(*teacher_, validation_set_, threads);
        report.teacher_nll = validation_answers_.nll;
        report.training_positions = train_set_.positions();
        report.validation_positions = validation_set_.positions();
        notify_phase("data", 1, 1);
    }

    /// Phase 1: the student starts as the teacher, each tensor with the planned type.
    [[nodiscard]] training_state student_as_teacher(const qat_report& report) const {
        training_state state;
        for (std::size_t i = 0; i < weights_.tensors.size(); ++i) {
            const auto& t = weights_.tensors[i];
            trainable_tensor s;
            static_cast<matrix_shape&>(s) = t.matrix();
            s.name = t.name;
            s.type = report.tensors[i].type;
            s.values = t.values;
            s.matrix = t.shape.size() >= 2;
            s.unit = trainable_tensor::rms_unit(t.values);
            state.tensors.push_back(std::move(s));
        }
        state.fingerprint = fingerprint(report);
        return state;
    }

    /// Every matrix's initial rounding of the teacher's weights. Until the first update the latents are the
    /// teacher's, so these blocks serve the sensitivity order and whatever is quantized at step 0 (GPTQ is not
    /// run twice on the same weights).
    [[nodiscard]] std::vector<std::vector<std::byte>> initial_blocks(const training_state& state, const input_moments& moments) const {
        std::vector<std::vector<std::byte>> initial(state.tensors.size());
        for (std::size_t i = 0; i < state.tensors.size(); ++i)
            if (weights_.tensors[i].shape.size() >= 2) initial[i] = initial_bytes(state.tensors[i], moments);
        return initial;
    }

    /// The baseline without training, and the units (the embedding, each layer, the classifier) in order of
    /// their sensitivity to the initial rounding, least sensitive first.
    void order_units(training_state& state, const std::vector<std::vector<std::byte>>& initial, qat_report& report,
                     unsigned threads) const {
        report.before = score_model(student_model(state, initial), threads);
        std::vector<std::string> units;
        for (const auto& t : state.tensors)
            if (t.matrix && std::find(units.begin(), units.end(), detail::unit_of(t.name)) == units.end())
                units.push_back(detail::unit_of(t.name));
        std::vector<qat_unit> measured;
        for (std::size_t u = 0; u < units.size(); ++u) {
            notify_phase("sensitivity", u, units.size(), units[u]);
            std::vector<std::vector<std::byte>> only(state.tensors.size());
            for (std::size_t i = 0; i < state.tensors.size(); ++i)
                if (detail::unit_of(state.tensors[i].name) == units[u]) only[i] = initial[i];
            measured.push_back({units[u], score_model(student_model(state, only), threads, activation_mode::float32).kl});
        }
        std::stable_sort(measured.begin(), measured.end(), [](const qat_unit& a, const qat_unit& b) { return a.kl < b.kl; });
        report.order = measured;
        for (const auto& u : measured) state.order.push_back(u.name);
        notify_phase("sensitivity", units.size(), units.size());
        report.steps_total = units.size() * config_.steps_per_unit + config_.steps;
    }

    /// Continues from the checkpoint when there is one.
    void resume(training_state& state, qat_report& report) const {
        if (config_.checkpoint.empty() || !std::filesystem::exists(config_.checkpoint)) return;
        load_checkpoint(state, config_.checkpoint);
        for (auto& t : state.tensors)
            if (t.quantized) t.use_step_as_unit();
        report.resumed_from = state.step;
    }

    /// Quantizes every unit whose turn has come at step `s` (all at once when there are no progressive steps).
    void quantize_due_units(training_state& state, const input_moments& moments, const std::vector<std::vector<std::byte>>& initial,
                            std::size_t s) const {
        for (std::size_t u = 0; u < state.order.size(); ++u) {
            const bool due = config_.steps_per_unit == 0 ? true : s >= u * config_.steps_per_unit;
            if (!due) continue;
            for (std::size_t i = 0; i < state.tensors.size(); ++i) {
                auto& t = state.tensors[i];
                if (!t.quantized && t.matrix && detail::unit_of(t.name) == state.order[u])
                    quantize_tensor(t, moments, s == 0 ? &initial[i] : nullptr);
            }
        }
    }

    /// Step `s`'s batch: indices into the training pool drawn by a generator seeded from the step, so that a
    /// resumed run draws what the uninterrupted one would have.
    [[nodiscard]] std::vector<std::size_t> draw_batch(std::size_t s) const {
        xoshiro256 draw(config_.seed * 0x9e3779b97f4a7c15ull + s);
        std::vector<std::size_t> picked(config_.batch);
        for (auto& p : picked) p = static_cast<std::size_t>(draw.next() % train_set_.sequences.size());
        return picked;
    }

    struct step_loss {
        double loss = 0.0, kl = 0.0;
    };

    /// The distillation loss of the student (`effective` weights) on the picked sequences against the teacher's
    /// answers, and its gradients with respect to every weight, into `gradients`.
    step_loss distill(const llama_parameters& effective, const std::vector<std::size_t>& picked, llama_parameters& gradients,
                      unsigned threads) const {
        const auto& c = config_;
        std::vector<std::vector<std::int32_t>> batch(picked.size());
        for (std::size_t b = 0; b < picked.size(); ++b) batch[b] = train_set_.sequences[picked[b]].tokens;
        std::vector<double> kl_of(c.batch, 0.0);
        const double positions = static_cast<double>(c.batch * c.sequence_length);
        const distillation_loss_config loss_config{c.kl_weight, c.temperature};
        step_loss result;
        result.loss = batch_gradients(
                effective, batch,
                [&](std::size_t b, std::span<const float> logits, std::span<float> dlogits) {
                    const std::size_t vocab = train_answers_.vocab, first = picked[b] * c.sequence_length;
                    double total = 0.0;
                    for (std::size_t p = 0; p < batch[b].size(); ++p) {
                        const std::span<const float> teacher(train_answers_.log_probs.data() + (first + p) * vocab, vocab);
                        const auto student = logits.subspan(p * vocab, vocab);
                        const auto grad = dlogits.subspan(p * vocab, vocab);
                        total += distillation_loss(teacher, student, train_answers_.targets[first + p], loss_config, grad);
                        for (auto& g : grad) g = static_cast<float>(g / positions);
                        kl_of[b] += kl_divergence(teacher, student, 1.0f);
                    }
                    return total / positions;
                },
                gradients, threads);
        for (double k : kl_of) result.kl += k;
        result.kl /= positions;
        return result;
    }

    /// Phases 3 and 4: progressive quantization unit by unit with training steps after each, then global
    /// fine-tuning; checkpoints on the way. Stops early when the progress callback says so.
    void train(training_state& state, const input_moments& moments, const std::vector<std::vector<std::byte>>& initial, qat_report& report,
               unsigned threads) const {
        const auto& c = config_;
        const std::size_t units = state.order.size();
        const std::size_t progressive_steps = units * c.steps_per_unit;
        learning_rate_schedule schedule{c.optimizer.learning_rate, c.optimizer.warmup_steps, report.steps_total, c.optimizer.final_ratio};
        state.optimizer = resumed_optimizer(state);
        llama_parameters effective = llama_parameters::from_model(*teacher_);
        llama_parameters gradients = llama_parameters::zeros_like(effective);
        auto slots = tensor_slots(effective, state);
        const auto grad_slots = tensor_slots(gradients, state);
        gradient_scratch scratch;
        std::vector<bool> trained(state.tensors.size());
        for (std::size_t i = 0; i < state.tensors.size(); ++i) {
            const auto schema = parse_llama_tensor_name(state.tensors[i].name);
            trained[i] = !schema || llama_parameters::is_trained(schema->tensor->parameter);
        }

        const auto order = largest_first(state.tensors);
        bool stopped = false;
        while (state.step < report.steps_total && !stopped) {
            const std::size_t s = state.step;
            const bool progressive = s < progressive_steps;
            quantize_due_units(state, moments, initial, s);
            parallel_for_each(
                    state.tensors.size(), threads, [&](std::size_t i) { state.tensors[i].effective(*slots[i]); }, order);
            const step_loss loss = distill(effective, draw_batch(s), gradients, threads);

            // Through the fake-quantizers to the latent weights and block parameters, then one AdamW update.
            const float lr = schedule.at(s);
            apply_gradients(state.tensors, grad_slots, trained, state.optimizer, c.optimizer, lr, scratch, threads);
            for (auto& t : state.tensors) t.initial.clear();
            state.step = s + 1;
            report.curve.push_back({s, loss.loss, loss.kl, lr, progressive});

            const bool keep_going =
                    notify({progressive ? "progressive" : "fine-tune", state.step, report.steps_total, loss.loss, loss.kl, lr,
                            progressive ? std::string_view(state.order[std::min(units - 1, s / std::max<std::size_t>(c.steps_per_unit, 1))])
                                        : std::string_view{}});
            stopped = !keep_going;
            if (!c.checkpoint.empty() && (stopped || state.step % c.checkpoint_every == 0 || state.step == report.steps_total))
                save_checkpoint(state, c.checkpoint);
        }
        report.steps_done = state.step;
        report.completed = state.step >= report.steps_total;
    }

    /// The trained student written as GGUF, read back and scored on the held-out sequences.
    void export_and_validate(training_state& state, const input_moments& moments, const std::vector<std::vector<std::byte>>& initial,
                             const std::filesystem::path& out, qat_report& report, unsigned threads) const {
        // With no training steps at all nothing has been quantized yet.
        for (std::size_t i = 0; i < state.tensors.size(); ++i)
            if (!state.tensors[i].quantized && state.tensors[i].matrix)
                quantize_tensor(state.tensors[i], moments, state.step == 0 ? &initial[i] : nullptr);
        notify_phase("export", 0, 1);
        write_gguf(state, out, report);
        const auto written = gguf::reader::open(report.files.front());
        report.after = score_model(io::read_llama_model(written), threads);
        report.meets_accuracy_threshold = report.after.retention() >= config_.accuracy_threshold;
        notify_phase("export", 1, 1);
    }

    void plan_types(qat_report& report, unsigned threads) const {
        std::vector<ggml_type> chosen(weights_.tensors.size(), ggml_type::f32);
        std::vector<std::string> rules(weights_.tensors.size());
        if (config_.automatic_types) {
            // The sensitivity measurement and exact bit allocation of auto_quantize, written to a scratch file
            // whose types are then trained.
            auto_quantize_options o;
            o.target = config_.target.value_or(size_target{size_target::kind::memory_reduction, config_.memory_reduction_target, true});
            o.calibration.sequence_length = config_.sequence_length;
            o.calibration.seed = config_.seed;
            o.accuracy_threshold = 0.0;
            o.pad_feed_forward = config_.pad_feed_forward;
            o.drop_duplicate_classifier = config_.drop_duplicate_classifier;
            o.transforms = config_.transforms;
            o.threads = threads;
            o.on_progress = [&](const auto_progress& p) { notify_phase("types", p.done, p.total, p.item); };
            const auto scratch =
                    std::filesystem::temp_directory_path() / ("cogqat-qat-types-" + std::to_string(std::random_device{}()) + ".gguf");
            const auto auto_report = auto_quantize(*source_, scratch, o);
            std::filesystem::remove(scratch);
            for (std::size_t i = 0; i < weights_.tensors.size(); ++i)
                for (const auto& d : auto_report.tensors)
                    if (d.name == weights_.tensors[i].name) chosen[i] = d.type, rules[i] = "sensitivity and size target";
        } else {
            for (std::size_t i = 0; i < weights_.tensors.size(); ++i) {
                const auto& t = weights_.tensors[i];
                const auto plan = plan_tensor(t.name, t.shape[0], t.shape.size(), config_.types);
                chosen[i] = plan.type;
                rules[i] = plan.rule;
                for (auto refused : plan.refused)
                    rules[i] += std::string(", ") + std::string(info(refused).name) + " does not fit the rows";
            }
        }
        for (std::size_t i = 0; i < weights_.tensors.size(); ++i) {
            const auto& t = weights_.tensors[i];
            report.tensors.push_back({t.name, t.shape, chosen[i], storage_size(chosen[i], t.values.size()), rules[i]});
            report.parameters += t.values.size();
        }
        report.parameters -= 3ull * weights_.config.dim * (report.feed_forward_to - report.feed_forward_from) * weights_.config.n_layers;
    }

    std::string fingerprint(const qat_report& report) const {
        const auto& c = config_;
        std::uint64_t h = 1469598103934665603ull;
        for (const auto& t : weights_.tensors) h = detail::fnv1a(h, t.values.data(), t.values.size() * sizeof(float));
        std::string types;
        for (const auto& t : report.tensors)
            if (t.shape.size() >= 2) types += std::string(info(t.type).name) + ",";
        return "model " + std::to_string(h) + "; types " + types + " steps " + std::to_string(c.steps) + "+" +
               std::to_string(c.steps_per_unit) + "/unit; batch " + std::to_string(c.batch) + "x" + std::to_string(c.sequence_length) +
               "; samples " + std::to_string(c.samples) + "; seed " + std::to_string(c.seed) + "; lr " +
               std::to_string(c.optimizer.learning_rate) + "/" + std::to_string(c.optimizer.scale_learning_rate) + "; kl_weight " +
               std::to_string(c.kl_weight) + "; T " + std::to_string(c.temperature) + "; init " +
               (c.init == qat_init::gptq ? "gptq" : "reference") + "; threads " + std::to_string(resolve_threads(c.threads));
    }

    /// The tensor's first blocks, from its current latent weights.
    [[nodiscard]] std::vector<std::byte> initial_bytes(const trainable_tensor& t, const input_moments& moments) const {
        const auto latent = t.latent();
        if (config_.init == qat_init::gptq && gptq_supports(t.type))
            if (const auto* h = moments.find(t.name)) {
                // Tensors are rounded one after another, a layer's together: K and V reuse Q's factor, up gate's.
                return gptq_quantize(t.type, latent, t.rows, t.cols, gptq_factors_.get(*h, t.cols), gptq_factors_.options());
            }
        return quantize(t.type, latent);
    }

    /// Starts fake-quantizing `t` from its initial rounding: `computed` when given (made from these very
    /// latents), else computed now.
    void quantize_tensor(trainable_tensor& t, const input_moments& moments, const std::vector<std::byte>* computed) const {
        const auto bytes = computed && !computed->empty() ? *computed : initial_bytes(t, moments);
        // GPTQ's rounding is kept as the starting point (latent = its decoded values); ggml's rounding starts
        // from the float weights themselves.
        const bool keep_latent = config_.init == qat_init::reference || !gptq_supports(t.type);
        t.quantizer = fake_quantized_tensor::from_encoded(t.type, t.rows, t.cols, bytes,
                                                          keep_latent ? std::span<const float>(t.values) : std::span<const float>{});
        t.quantized = true;
        t.use_step_as_unit();
        t.initial = bytes;
        t.values.clear();
        t.values.shrink_to_fit();
    }

    /// The optimizer a (possibly restored) state continues with.
    [[nodiscard]] adamw resumed_optimizer(training_state& state) const {
        adamw fresh(adamw_options{config_.optimizer.beta1, config_.optimizer.beta2, 1e-8f});
        fresh.first_moments() = std::move(state.optimizer.first_moments());
        fresh.second_moments() = std::move(state.optimizer.second_moments());
        fresh.update_counts() = std::move(state.optimizer.update_counts());
        return fresh;
    }

    /// For each state tensor, the same-named vector of `p`.
    [[nodiscard]] static std::vector<std::vector<float>*> tensor_slots(llama_parameters& p, const training_state& state) {
        std::map<std::string, std::vector<float>*, std::less<>> by_name;
        p.for_each_tensor(
                [&](std::string_view name, std::vector<float>& values, std::size_t, std::size_t) { by_name[std::string(name)] = &values; });
        std::vector<std::vector<float>*> slots;
        for (const auto& t : state.tensors) {
            const auto it = by_name.find(t.name);
            if (it == by_name.end() || it->second->size() != t.rows * t.cols)
                throw invalid_argument_error("qat: the model's tensor " + t.name + " has no trainable counterpart");
            slots.push_back(it->second);
        }
        return slots;
    }

    /// The teacher with the matrices that have `bytes` (per tensor; empty = left in float) replaced by them.
    [[nodiscard]] llama_model student_model(const training_state& state, const std::vector<std::vector<std::byte>>& bytes) const {
        llama_model m = llama_model::from_weights(weights_);
        for (std::size_t i = 0; i < state.tensors.size(); ++i)
            if (state.tensors[i].matrix && !bytes[i].empty())
                detail::set_weights(detail::matrix_named(m, state.tensors[i].name), state.tensors[i].type, bytes[i]);
        return m;
    }

    [[nodiscard]] calibration_score score_model(const llama_model& m, unsigned threads,
                                                activation_mode mode = activation_mode::quantized) const {
        return score_against_teacher(m, validation_set_, validation_answers_, mode, threads);
    }

    void write_gguf(const training_state& state, const std::filesystem::path& out, qat_report& report) const {
        gguf::writer writer = detail::reshaped_model_writer(out, metadata_, weights_.config);
        writer.set_split(config_.split);
        std::map<ggml_type, std::uint64_t> elements_by_type;
        std::vector<std::vector<std::byte>> encoded(state.tensors.size());
        for (std::size_t i = 0; i < state.tensors.size(); ++i) {
            const auto& t = state.tensors[i];
            const auto& shape = weights_.tensors[i].shape;
            if (shape.size() < 2) {
                encoded[i] = quantize(ggml_type::f32, t.latent());
                writer.add_tensor(t.name, shape, ggml_type::f32,
                                  [&encoded, i](std::span<std::byte> b) { std::copy(encoded[i].begin(), encoded[i].end(), b.begin()); });
            } else {
                encoded[i] = t.initial.empty() ? t.quantizer.encode() : t.initial;
                elements_by_type[t.type] += t.rows * t.cols;
                writer.add_tensor(t.name, shape, t.type,
                                  [&encoded, i](std::span<std::byte> b) { std::copy(encoded[i].begin(), encoded[i].end(), b.begin()); });
            }
            report.tensors[i].bytes = encoded[i].size();
            report.tensor_bytes += encoded[i].size();
        }
        writer.set("general.file_type", gguf::value(static_cast<std::uint32_t>(file_type_for(detail::most_common_type(elements_by_type)))));
        writer.finish();
        report.file_bytes = writer.written_bytes();
        report.files = writer.output_paths();
        report.set_size_figures();
    }

    qat_config config_;
    progress_callback progress_;
    mutable gptq_factor_cache gptq_factors_;  // the factors of the last inputs GPTQ rounded a tensor for
    std::vector<std::pair<std::string, gguf::value>> metadata_;
    const gguf::reader* source_ = nullptr;
    llama_weights weights_;
    std::unique_ptr<llama_model> teacher_;
    calibration_set train_set_, validation_set_;
    teacher_outputs train_answers_, validation_answers_;
    bool classifier_tied_ = false;
    std::uint32_t feed_forward_from_ = 0;
};

/// Runs the pipeline in one call.
[[nodiscard]] inline qat_report quantization_aware_training(const gguf::reader& in, const std::filesystem::path& out,
                                                            const qat_config& config, qat_pipeline::progress_callback progress = {}) {
    qat_pipeline pipeline(in, config);
    pipeline.on_progress(std::move(progress));
    return pipeline.run(out);
}

}  // namespace cogqat
