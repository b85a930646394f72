#pragma once
// Block-wise data-free QAT: the model is trained one decoder layer at a time, each against the teacher's
// output of that layer, so that memory holds one layer's weights, gradients and optimizer state (plus the
// residual stream of the training sequences) whatever the depth, and time grows linearly with it. In the
// spirit of EfficientQAT's block-wise phase:
//   1. the teacher (the mapped input, never copied whole) writes its own training sequences;
//   2. the residual stream enters layer 0 twice: the teacher's (float embedding) and the student's (the
//      quantized embedding);
//   3. for each layer: the teacher's output on the teacher's stream is the target; the student layer starts
//      from GPTQ's rounding on the student's stream (or ggml's), and is trained on the student's stream to
//      reproduce the target (mean squared error relative to the layer's own contribution), its matrices
//      fake-quantized (qat/fake_quant.hpp), its norms (and biases) in float; then both streams move on;
//   4. the classifier is rounded by GPTQ on the student's final stream (a tied one, the embedding, on the
//      teacher's, in a pass before the layers train on its rows);
//   5. optionally (end_to_end_steps), the end-to-end phase (qat/end_to_end_scales.hpp): the levels frozen, the
//      blocks' scales train on the whole model's KL to the teacher, one layer in memory at a time;
//   6. the file is written and scored on held-out sequences against the teacher.
// Layers are checkpointed as they finish, and a rerun resumes after the last one. A step's gradient is the sum
// of a fixed number of sequence groups, added in group order, whichever thread or process computed each: a run
// over several processes (process_group, core/mpi_process_group.hpp) writes the bytes one process writes.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "cogqat/calib/calibration_set.hpp"
#include "cogqat/calib/second_moments.hpp"
#include "cogqat/core/checked.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/memory.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/core/process_group.hpp"
#include "cogqat/core/random.hpp"
#include "cogqat/io/gguf.hpp"
#include "cogqat/io/read_llama.hpp"
#include "cogqat/model/layer_stream.hpp"
#include "cogqat/model/llama_backward.hpp"
#include "cogqat/model/llama_model.hpp"
#include "cogqat/model/llama_schema.hpp"
#include "cogqat/model/reshape.hpp"
#include "cogqat/qat/auto_quantize.hpp"
#include "cogqat/qat/end_to_end_scales.hpp"
#include "cogqat/qat/fake_quant.hpp"
#include "cogqat/qat/optimizer.hpp"
#include "cogqat/qat/qat_settings.hpp"
#include "cogqat/qat/training_state.hpp"
#include "cogqat/quant/gptq.hpp"
#include "cogqat/quant/mix_policy.hpp"

namespace cogqat {

/// Everything a block-wise QAT run is told.
struct blockwise_qat_config {
    mix_policy types{find_preset("q4_0"), {}};  ///< types per layer kind and overrides (norms stay f32)
    std::size_t steps_per_layer = 40;
    std::size_t batch = 4;            ///< sequences per step
    std::size_t gradient_groups = 4;  ///< a step's sequences in this many groups, summed in order (at most batch)
    std::size_t sequence_length = 128;
    std::size_t samples = 32;  ///< self-generated training sequences
    std::size_t validation_samples = 8;
    qat_optimizer_settings optimizer{0.02f, 5e-4f, 4, 0.05f, 1.0f, 0.9f, 0.999f, 0.0f};
    qat_init init = qat_init::gptq;
    /// Pad the feed-forward width to a multiple of 32 with zero units (exact), so that 32-value blocks fit the
    /// down projection's rows, as qat_pipeline does.
    bool pad_feed_forward = true;
    /// Store a classifier that equals the embedding bit for bit once (tied), as qat_pipeline does.
    bool drop_duplicate_classifier = true;
    double accuracy_threshold = 0.98;
    std::uint64_t seed = 1;
    unsigned threads = 0;
    /// Steps of the end-to-end phase after the layers (0: none): the levels frozen, the block scales trained on
    /// the model's KL to the teacher. Its batches are `batch` sequences in `gradient_groups` groups.
    std::size_t end_to_end_steps = 0;
    /// Its peak learning rate, relative: 3e-3 moves a scale by 0.3% per step at most (about three fp16 steps).
    /// Warm-up, decay, clip and betas are the optimizer's.
    float end_to_end_lr = 3e-3f;
    std::filesystem::path checkpoint;  ///< a directory; empty: no checkpoint
    bool keep_checkpoint = false;      ///< keep it after the run completes
    gguf::split_limits split;
};

/// A layer's output error relative to its own contribution, ||student - teacher||² / ||teacher - input||²,
/// over every training position: with the initial rounding and after training.
struct blockwise_layer {
    std::size_t layer = 0;
    double error_before = 0.0, error_after = 0.0;
    double first_loss = 0.0, last_loss = 0.0;  ///< the training loss of the first and last step
    double seconds = 0.0;                      ///< of this invocation (0 for a layer a resumed run found done)
};

/// The end-to-end phase of a run.
struct blockwise_end_to_end {
    std::size_t steps = 0;                     ///< taken
    std::size_t parameters = 0;                ///< learned values: a block's scale (and min) of the directly scaled types
    double first_loss = 0.0, last_loss = 0.0;  ///< the mean KL per position of the first and the last step's batch
    end_to_end_memory memory;                  ///< what the phase held, after its first step
    double seconds = 0.0;
};

struct blockwise_qat_report : quantized_model_summary {
    std::vector<qat_tensor> tensors;
    std::vector<blockwise_layer> layers;  ///< every layer; a stopped run's, those finished
    calibration_score after;              ///< the written file on held-out sequences (llama.cpp's arithmetic); set by the leading process
    std::size_t training_positions = 0, validation_positions = 0;
    std::size_t resumed_from_layer = 0;  ///< layers a checkpoint held at the start
    std::size_t processes = 1;
    blockwise_end_to_end end_to_end;
    bool completed = false;  ///< false when the progress callback stopped the run (the checkpoint holds it)
    std::string checkpoint_note;
};

/// Where a run is: phase "data", "generate" (done = tokens the teacher has written), "round" (done = matrices
/// of layer `layer` at their first rounding), "layer" (done = steps of layer `layer`), "output", "end-to-end"
/// (done = its steps; "teacher" before them, while the teacher answers on the training sequences), "export".
struct blockwise_progress {
    std::string_view phase;
    std::size_t done = 0, total = 0;
    std::size_t layer = 0;
    double loss = 0.0;
};

namespace detail::blockwise {

inline constexpr std::string_view checkpoint_version = "cogqat-blockwise-checkpoint-1";

/// The teacher's answers the end-to-end phase keeps per training position: its most likely tokens.
inline constexpr std::size_t end_to_end_top_k = 64;

/// The values of every tensor of a one-layer parameter set, one after another in the schema's order.
[[nodiscard]] inline std::size_t flat_size(const llama_parameters& p) {
    std::size_t n = 0;
    layerwise::for_each_layer_tensor(p.config, [&](const tensor_schema& t) { n += p.values(t.parameter, 0).size(); });
    return n;
}
inline void flatten(const llama_parameters& p, std::span<float> out) {
    std::size_t at = 0;
    layerwise::for_each_layer_tensor(p.config, [&](const tensor_schema& t) {
        const auto& v = p.values(t.parameter, 0);
        std::copy(v.begin(), v.end(), out.begin() + static_cast<std::ptrdiff_t>(at));
        at += v.size();
    });
}
inline void add_flat(llama_parameters& p, std::span<const float> in) {
    std::size_t at = 0;
    layerwise::for_each_layer_tensor(p.config, [&](const tensor_schema& t) {
        auto& v = p.values(t.parameter, 0);
        for (std::size_t i = 0; i < v.size(); ++i) v[i] += in[at + i];
        at += v.size();
    });
}

/// ||a - b||² in double.
[[nodiscard]] inline double squared_distance(std::span<const float> a, std::span<const float> b) noexcept {
    double sum = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double d = static_cast<double>(a[i]) - b[i];
        sum += d * d;
    }
    return sum;
}

}  // namespace detail::blockwise

/// Trains and writes a model block by block. Construct with the input (a GGUF of the llama family: llama,
/// qwen2, qwen3), the settings and the processes it runs on; optionally set a progress callback; run().
/// Every process of the group runs the same pipeline with the same settings; the leading one writes the
/// files and scores the result.
class blockwise_qat_pipeline {
public:
    /// Returning false stops the run after the current layer (its checkpoint written), or the end-to-end phase
    /// after its current step (a rerun starts that phase again from the finished layers).
    using progress_callback = std::function<bool(const blockwise_progress&)>;

    /// Reads the model (mapped; `in` must outlive the pipeline). Throws invalid_argument_error for settings that
    /// cannot run.
    blockwise_qat_pipeline(const gguf::reader& in, blockwise_qat_config config, const process_group& processes = default_group())
            : config_(std::move(config)), in_(&in), processes_(&processes) {
        const auto& c = config_;
        if (c.batch == 0 || c.gradient_groups == 0)
            throw invalid_argument_error("qat --blockwise: batch and gradient groups must be at least 1");
        if (c.gradient_groups > c.batch)
            throw invalid_argument_error("qat --blockwise: " + std::to_string(c.gradient_groups) + " gradient groups for a batch of " +
                                         std::to_string(c.batch) + " sequences (at most one group per sequence)");
        if (c.samples == 0 || c.validation_samples == 0)
            throw invalid_argument_error("qat --blockwise: samples and validation samples must be at least 1");
        if (c.sequence_length < 2) throw invalid_argument_error("qat --blockwise: sequences need at least 2 positions");
        if (!(c.optimizer.learning_rate >= 0.0f) || !(c.optimizer.scale_learning_rate >= 0.0f))
            throw invalid_argument_error("qat --blockwise: learning rates must be >= 0");
        if (!(c.end_to_end_lr >= 0.0f && std::isfinite(c.end_to_end_lr)))
            throw invalid_argument_error("qat --blockwise: the end-to-end learning rate must be a finite number >= 0");
        if (!(c.accuracy_threshold >= 0.0 && c.accuracy_threshold <= 1.0))
            throw invalid_argument_error("qat --blockwise: accuracy threshold must lie in [0, 1]");
        teacher_ = std::make_unique<llama_model>(io::read_llama_model(in));
        const auto& m = teacher_->config;
        detail::backward::require_trainable_shape(m, "qat --blockwise");
        shape_ = m;
        if (c.pad_feed_forward) shape_.hidden_dim = (m.hidden_dim + 31) / 32 * 32;
        const auto &embedding = teacher_->token_embedding, &output = teacher_->output;
        tied_ = teacher_->tied_output || (c.drop_duplicate_classifier && output.type == embedding.type && output.rows == embedding.rows &&
                                          output.cols == embedding.cols && std::ranges::equal(output.bytes(), embedding.bytes()));
        if (m.context_length != 0 && c.sequence_length > m.context_length)
            throw invalid_argument_error("qat --blockwise: sequences of " + std::to_string(c.sequence_length) +
                                         " positions exceed the model's context of " + std::to_string(m.context_length));
        const auto positions = checked_mul(c.samples, c.sequence_length);
        const auto floats = positions ? checked_mul(*positions, std::uint64_t{3} * m.dim) : std::nullopt;
        require_memory("qat --blockwise: three residual streams of " + std::to_string(c.samples) + " sequences of " +
                               std::to_string(c.sequence_length) + " positions of width " + std::to_string(m.dim),
                       floats ? checked_mul(*floats, sizeof(float)) : std::nullopt);
    }

    void on_progress(progress_callback callback) { progress_ = std::move(callback); }

    [[nodiscard]] blockwise_qat_report run(const std::filesystem::path& out) {
        const auto start = std::chrono::steady_clock::now();
        const unsigned threads = resolve_threads(config_.threads);
        blockwise_qat_report report;
        report.accuracy_threshold = config_.accuracy_threshold;
        report.processes = processes_->size();
        report.classifier_tied = tied_;
        report.feed_forward_from = teacher_->config.hidden_dim;
        report.feed_forward_to = shape_.hidden_dim;
        plan_types(report);
        fingerprint_ = fingerprint(report);
        const std::size_t n_layers = teacher_->config.n_layers;
        report.layers.resize(n_layers);
        for (std::size_t l = 0; l < n_layers; ++l) report.layers[l].layer = l;

        std::size_t next_layer = resume(report);
        if (next_layer == 0 && !resumed_) make_data(threads);
        report.training_positions = tokens_.size();
        report.resumed_from_layer = next_layer;

        bool stopped = false;
        for (; next_layer < n_layers && !stopped; ++next_layer) {
            stopped = !train_layer(next_layer, report.layers[next_layer], threads);
            save_checkpoint(next_layer + 1, report);
            // A checkpointed layer is written from its file, and a process that writes nothing needs no bytes unless
            // the end-to-end phase reads them: the memory held does not grow with the depth.
            if (!config_.checkpoint.empty() || (!processes_->leads() && config_.end_to_end_steps == 0)) forget_layer(next_layer, report);
        }
        if (next_layer < n_layers || stopped) {
            report.completed = false;
            report.layers.resize(next_layer);  // the finished ones
            report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            return report;
        }
        quantize_classifier(threads);
        if (config_.end_to_end_steps > 0 && !end_to_end(report, threads)) {
            report.completed = false;
            report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            return report;
        }
        if (processes_->leads()) {
            notify({"export", 0, 1});
            write_gguf(out, report);
            score(report, threads);
            remove_checkpoint(report);
            notify({"export", 1, 1});
        }
        report.completed = true;
        report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return report;
    }

    [[nodiscard]] const llama_model& teacher() const noexcept { return *teacher_; }

private:
    static const process_group& default_group() {
        static const single_process alone;
        return alone;
    }

    bool notify(const blockwise_progress& p) const { return progress_ ? progress_(p) : true; }

    /// The type of every tensor of the model, from the policy.
    void plan_types(blockwise_qat_report& report) {
        const auto& m = *teacher_;
        report.parameters = 0;
        for_each_llama_tensor(shape_, tied_, [&](const tensor_schema& t, std::size_t layer) {
            const std::string name = t.gguf_name(layer);
            const auto shape = t.gguf_shape(shape_);
            const auto plan = plan_tensor(name, shape[0], shape.size(), config_.types);
            std::string rule = plan.rule;
            for (auto refused : plan.refused) rule += std::string(", ") + std::string(info(refused).name) + " does not fit the rows";
            std::uint64_t elements = 1;
            for (auto d : shape) elements *= d;
            report.tensors.push_back({name, shape, plan.type, storage_size(plan.type, elements), rule});
            types_[name] = plan.type;
            report.parameters += elements;
        });
        report.parameters -= 3ull * shape_.dim * (shape_.hidden_dim - m.config.hidden_dim) * shape_.n_layers;  // padding is no weight
    }

    [[nodiscard]] ggml_type type_of(const std::string& name) const { return types_.at(name); }

    [[nodiscard]] std::string fingerprint(const blockwise_qat_report& report) const {
        const auto& c = config_;
        std::uint64_t h = 1469598103934665603ull;
        for (const auto& t : in_->tensors()) h = detail::fnv1a(h, in_->tensor_data(t).data(), in_->tensor_data(t).size());
        std::string types;
        for (const auto& t : report.tensors) types += std::string(info(t.type).name) + ",";
        return "model " + std::to_string(h) + "; types " + types + " steps " + std::to_string(c.steps_per_layer) + "/layer; batch " +
               std::to_string(c.batch) + "x" + std::to_string(c.sequence_length) + " in " + std::to_string(c.gradient_groups) +
               " groups; samples " + std::to_string(c.samples) + "; seed " + std::to_string(c.seed) + "; lr " +
               std::to_string(c.optimizer.learning_rate) + "/" + std::to_string(c.optimizer.scale_learning_rate) + "; warmup " +
               std::to_string(c.optimizer.warmup_steps) + "; clip " + std::to_string(c.optimizer.gradient_clip) + "; init " +
               (c.init == qat_init::gptq ? "gptq" : "reference") + "; feed-forward " + std::to_string(shape_.hidden_dim) +
               (tied_ ? "; tied" : "");
    }

    [[nodiscard]] std::size_t width() const noexcept { return teacher_->config.dim; }
    [[nodiscard]] std::size_t positions() const noexcept { return tokens_.size(); }
    [[nodiscard]] std::span<const float> sequence(const std::vector<float>& stream, std::size_t s) const noexcept {
        const std::size_t n = config_.sequence_length * width();
        return {stream.data() + s * n, n};
    }
    [[nodiscard]] std::span<float> sequence(std::vector<float>& stream, std::size_t s) const noexcept {
        const std::size_t n = config_.sequence_length * width();
        return {stream.data() + s * n, n};
    }

    /// The training sequences and the two residual streams entering layer 0.
    void make_data(unsigned threads) {
        const auto& c = config_;
        notify({"data", 0, 1});
        auto generation = self_generated_sequences(c.samples, c.sequence_length, c.seed, threads);
        generation.on_tokens = [this](std::size_t done, std::size_t total) { notify({"generate", done, total}); };
        const auto set = make_calibration_set(*teacher_, generation);
        tokens_.clear();
        for (const auto& s : set.sequences) tokens_.insert(tokens_.end(), s.tokens.begin(), s.tokens.end());
        // The embedding's rows: the teacher's as stored, the student's as its quantized table decodes them.
        const auto& table = teacher_->token_embedding;
        const std::string name(llama_tensor(llama_parameter::token_embedding).gguf_name(no_layer));
        std::vector<float> values(table.rows * table.cols);
        dequantize(table.type, table.bytes(), values);
        const std::size_t dim = width();
        teacher_stream_.resize(positions() * dim), student_stream_.resize(positions() * dim);
        for (std::size_t p = 0; p < positions(); ++p)
            std::copy_n(values.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(tokens_[p]) * dim), dim,
                        teacher_stream_.begin() + static_cast<std::ptrdiff_t>(p * dim));
        encoded_[name] =
                tied_ ? classifier_bytes(type_of(name), values, teacher_final_stream(threads), threads) : quantize(type_of(name), values);
        const auto student_table = dequantize(type_of(name), encoded_[name]);
        for (std::size_t p = 0; p < positions(); ++p)
            std::copy_n(student_table.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(tokens_[p]) * dim), dim,
                        student_stream_.begin() + static_cast<std::ptrdiff_t>(p * dim));
        notify({"data", 1, 1});
    }

    /// The teacher's stream after its last layer, one layer decoded at a time: what a tied classifier (the
    /// embedding) is rounded for, before the layers train on its rows. Empty when that rounding takes no
    /// inputs.
    [[nodiscard]] std::vector<float> teacher_final_stream(unsigned threads) const {
        const auto type = type_of(std::string(llama_tensor(llama_parameter::token_embedding).gguf_name(no_layer)));
        if (config_.init != qat_init::gptq || !gptq_supports(type)) return {};
        std::vector<float> stream = teacher_stream_, next;
        for (std::size_t l = 0; l < shape_.n_layers; ++l) {
            notify({"data", l, shape_.n_layers});
            run_layer(detail::layerwise::decode_layer(*teacher_, l, shape_), stream, next, threads);
            stream.swap(next);
        }
        return stream;
    }

    /// A classifier's bytes: GPTQ on `stream` through the output norm where given and the type takes it, else
    /// ggml's rounding.
    [[nodiscard]] std::vector<std::byte> classifier_bytes(ggml_type type, std::span<const float> values, std::span<const float> stream,
                                                          unsigned threads) const {
        const auto& m = *teacher_;
        if (stream.empty() || config_.init != qat_init::gptq || !gptq_supports(type)) return quantize(type, values);
        const std::size_t dim = width();
        std::vector<float> normed(stream.size());
        for (std::size_t p = 0; p < stream.size() / dim; ++p)
            detail::rms_norm(std::span<float>(normed).subspan(p * dim, dim), stream.subspan(p * dim, dim), m.output_norm,
                             m.config.rms_norm_eps);
        gptq_options options;
        options.threads = threads;
        return gptq_quantize(type, values, values.size() / dim, dim, second_moments(normed, dim, threads), options);
    }

    /// out = layer W applied to every sequence of `in` (threads over sequences); when `inputs` is given, also
    /// the rows each matrix of the layer was fed (by the matrix that first reads them).
    void run_layer(const llama_parameters& W, const std::vector<float>& in, std::vector<float>& out, unsigned threads,
                   std::map<llama_parameter, std::vector<float>>* inputs = nullptr) const {
        detail::layerwise::forward_layer(shape_, W, in, out, config_.sequence_length, threads, inputs);
    }

    [[nodiscard]] std::size_t matrices_per_layer() const {
        std::size_t n = 0;
        detail::layerwise::for_each_layer_tensor(shape_, [&](const tensor_schema& t) {
            if (!t.is_vector()) ++n;
        });
        return n;
    }

    /// The student layer `l` at its first rounding: matrices by GPTQ on the rows they are fed on the student's
    /// stream (or ggml's rounding), vectors in float.
    [[nodiscard]] std::vector<trainable_tensor> initial_student(std::size_t l, const llama_parameters& teacher_layer, unsigned threads) {
        const auto& c = shape_;
        std::map<llama_parameter, std::vector<float>> inputs;
        std::vector<float> ignored;
        if (config_.init == qat_init::gptq) run_layer(teacher_layer, student_stream_, ignored, threads, &inputs);
        std::map<llama_parameter, gptq_factor> factors;  // by the matrix that reads the input first: K, V and up share
        std::vector<trainable_tensor> tensors;
        std::size_t rounded = 0;
        detail::layerwise::for_each_layer_tensor(c, [&](const tensor_schema& t) {
            trainable_tensor s;
            static_cast<matrix_shape&>(s) = t.shape(c);
            s.name = t.gguf_name(l);
            s.matrix = !t.is_vector();
            s.type = s.matrix ? type_of(s.name) : ggml_type::f32;
            const auto& values = teacher_layer.values(t.parameter, 0);
            if (!s.matrix) {
                s.values = values;
                s.unit = trainable_tensor::rms_unit(values);
                tensors.push_back(std::move(s));
                return;
            }
            std::vector<std::byte> bytes;
            const bool steered = config_.init == qat_init::gptq && gptq_supports(s.type);
            if (steered) {
                const auto fed = detail::layerwise::input_reader_of(t.parameter);
                gptq_options options;
                options.threads = threads;
                auto factor = factors.find(fed);
                if (factor == factors.end())
                    factor = factors.try_emplace(fed, second_moments(inputs.at(fed), s.cols, threads), s.cols, options).first;
                bytes = gptq_quantize(s.type, values, s.rows, s.cols, factor->second, options);
            } else {
                bytes = quantize(s.type, values);
            }
            s.quantizer = fake_quantized_tensor::from_encoded(s.type, s.rows, s.cols, bytes,
                                                              steered ? std::span<const float>{} : std::span<const float>(values));
            s.quantized = true;
            s.initial = std::move(bytes);
            (void)notify({"round", ++rounded, matrices_per_layer(), l});
            s.unit = trainable_tensor::rms_unit(values);
            s.use_step_as_unit();
            tensors.push_back(std::move(s));
        });
        return tensors;
    }

    /// Step `step` of layer `l`'s batch: sequence indices drawn from a generator seeded by both, so that a
    /// resumed run draws what an uninterrupted one would.
    [[nodiscard]] std::vector<std::size_t> draw_batch(std::size_t l, std::size_t step) const {
        xoshiro256 draw((config_.seed * 0x9e3779b97f4a7c15ull) ^ (0xb10c0000ull + l * 0x100000001b3ull + step));
        std::vector<std::size_t> picked(config_.batch);
        for (auto& p : picked) p = static_cast<std::size_t>(draw.next() % config_.samples);
        return picked;
    }

    /// What a step's gradient needs per group in flight, kept from step to step of a layer: a 1.1B layer's
    /// gradient is 176 MB, and allocated anew every step its pages were faulted in and zeroed every time.
    struct gradient_workspace {
        std::vector<llama_parameters> partial;
        std::vector<std::unique_ptr<llama_layer_pass>> passes;
        std::vector<std::vector<float>> dout;
        void reserve(std::size_t n, const llama_parameters& like, const llama_config& shape) {
            while (partial.size() < n) partial.push_back(llama_parameters::zeros_like(like));
            while (passes.size() < n) passes.push_back(std::make_unique<llama_layer_pass>(shape));
            dout.resize(std::max(dout.size(), n));
        }
    };

    /// The gradient of the relative squared error over the picked sequences with respect to the layer's
    /// effective weights, into `total` (zeroed first): group g's sequences summed in order, the groups added to
    /// zero in group order, whichever thread or process computed each. Returns the loss.
    double gradient(const llama_parameters& effective, const std::vector<float>& target, double scale, std::span<const std::size_t> picked,
                    llama_parameters& total, gradient_workspace& workspace, unsigned threads) const {
        const auto& c = shape_;
        const std::size_t groups = config_.gradient_groups;
        auto group_gradient = [&](std::size_t g, llama_layer_pass& pass, llama_parameters& into, std::vector<float>& dout) {
            into.set_zero();
            double loss = 0.0;
            for (std::size_t b = g * picked.size() / groups; b < (g + 1) * picked.size() / groups; ++b) {
                const auto y = pass.forward(effective.layers[0], effective.rope_freqs, sequence(student_stream_, picked[b]));
                const auto want = sequence(target, picked[b]);
                dout.resize(y.size());
                for (std::size_t i = 0; i < y.size(); ++i) {
                    const double d = static_cast<double>(y[i]) - want[i];
                    loss += d * d * scale;
                    dout[i] = static_cast<float>(2.0 * d * scale);
                }
                (void)pass.backward(effective.layers[0], dout, into.layers[0]);
            }
            return loss;
        };
        total.set_zero();
        auto& w = workspace;
        w.reserve(group_wave(groups, threads, *processes_), effective, c);
        // Over processes a group travels as its flattened gradient.
        const std::size_t n = processes_->size() > 1 ? detail::blockwise::flat_size(effective) : 0;
        return sum_groups_in_order(
                groups, n, threads, *processes_,
                [&](std::size_t g, std::size_t k) { return group_gradient(g, *w.passes[k], w.partial[k], w.dout[k]); },
                [&](std::size_t k) { total.add(w.partial[k], threads); },
                [&](std::size_t k, std::span<float> to) { detail::blockwise::flatten(w.partial[k], to); },
                [&](std::span<const float> from) { detail::blockwise::add_flat(total, from); });
    }

    /// Trains layer `l` and moves both streams past it. Returns false when the progress callback asks to stop.
    bool train_layer(std::size_t l, blockwise_layer& entry, unsigned threads) {
        const auto started = std::chrono::steady_clock::now();
        const auto& c = config_;
        // The layer's first rounding takes a while on a big model (a minute at 1.1B): it shows as its own phase.
        (void)notify({"round", 0, matrices_per_layer(), l});
        const auto teacher_layer = detail::layerwise::decode_layer(*teacher_, l, shape_);
        std::vector<float> target;
        run_layer(teacher_layer, teacher_stream_, target, threads);
        // The loss is relative to what the layer adds to the stream, so every layer weighs alike.
        const double contribution = detail::blockwise::squared_distance(target, teacher_stream_);
        const double per_sequence = contribution / static_cast<double>(c.samples);
        const double scale = 1.0 / (std::max(per_sequence, 1e-30) * static_cast<double>(c.batch));

        auto tensors = initial_student(l, teacher_layer, threads);
        auto effective = detail::layerwise::one_layer(shape_);
        effective.rope_freqs = teacher_layer.rope_freqs;
        std::vector<std::vector<float>*> slots, grad_slots;
        auto gradients = detail::layerwise::one_layer(shape_);
        std::vector<bool> trained(tensors.size(), true);
        {
            std::size_t i = 0;
            detail::layerwise::for_each_layer_tensor(shape_, [&](const tensor_schema& t) {
                auto& v = effective.values(t.parameter, 0);
                v.resize(tensors[i].rows * tensors[i].cols);
                gradients.values(t.parameter, 0).assign(v.size(), 0.0f);
                slots.push_back(&v);
                grad_slots.push_back(&gradients.values(t.parameter, 0));
                ++i;
            });
        }
        const auto order = largest_first(tensors);
        auto refresh = [&] {
            parallel_for_each(
                    tensors.size(), threads, [&](std::size_t i) { tensors[i].effective(*slots[i]); }, order);
        };
        refresh();
        std::vector<float> student_out;
        run_layer(effective, student_stream_, student_out, threads);
        entry.error_before = detail::blockwise::squared_distance(student_out, target) / std::max(contribution, 1e-30);

        if (c.steps_per_layer > 0) (void)notify({"layer", 0, c.steps_per_layer, l, 0.0});
        adamw optimizer(adamw_options{c.optimizer.beta1, c.optimizer.beta2, 1e-8f});
        const learning_rate_schedule schedule{c.optimizer.learning_rate, std::min(c.optimizer.warmup_steps, c.steps_per_layer / 4),
                                              c.steps_per_layer, c.optimizer.final_ratio};
        gradient_scratch scratch;
        gradient_workspace workspace;
        bool keep_going = true;
        for (std::size_t step = 0; step < c.steps_per_layer; ++step) {
            const auto picked = draw_batch(l, step);
            const double loss = gradient(effective, target, scale, picked, gradients, workspace, threads);
            apply_gradients(tensors, grad_slots, trained, optimizer, c.optimizer, schedule.at(step), scratch, threads);
            for (auto& t : tensors) t.initial.clear();
            refresh();
            if (step == 0) entry.first_loss = loss;
            entry.last_loss = loss;
            keep_going = notify({"layer", step + 1, c.steps_per_layer, l, loss}) && keep_going;
        }
        if (c.steps_per_layer == 0) keep_going = notify({"layer", 0, 0, l, 0.0});

        // The layer as it will be written, and the streams after it.
        for (auto& t : tensors) {
            if (!t.matrix) {
                encoded_[t.name] = quantize(ggml_type::f32, t.values);
                continue;
            }
            encoded_[t.name] = t.initial.empty() ? t.quantizer.encode() : t.initial;
        }
        run_layer(effective, student_stream_, student_out, threads);
        entry.error_after = detail::blockwise::squared_distance(student_out, target) / std::max(contribution, 1e-30);
        student_stream_ = std::move(student_out);
        teacher_stream_ = std::move(target);
        entry.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        return keep_going;
    }

    /// The classifier (when not tied): GPTQ on the student's final stream through the output norm.
    void quantize_classifier(unsigned threads) {
        const auto& m = *teacher_;
        notify({"output", 0, 1});
        const std::string norm_name(llama_tensor(llama_parameter::output_norm).gguf_name(no_layer));
        encoded_[norm_name] = quantize(ggml_type::f32, m.output_norm);
        if (m.config.rope_factors)
            encoded_[std::string(llama_tensor(llama_parameter::rope_freqs).gguf_name(no_layer))] = quantize(ggml_type::f32, m.rope_freqs);
        if (!tied_) {
            const std::string name(llama_tensor(llama_parameter::output).gguf_name(no_layer));
            std::vector<float> values(m.output.rows * m.output.cols);
            dequantize(m.output.type, m.output.bytes(), values);
            encoded_[name] = classifier_bytes(type_of(name), values, student_stream_, threads);
        }
        notify({"output", 1, 1});
    }

    /// The end-to-end phase: the block scales of every layer's stored tensors trained on the model's KL to the
    /// teacher (qat/end_to_end_scales.hpp), kept in tuned_ for export. Returns false when the progress callback
    /// asks to stop.
    bool end_to_end(blockwise_qat_report& report, unsigned threads) {
        const auto started = std::chrono::steady_clock::now();
        const auto& c = config_;
        // A checkpointed layer's file is written by the leading process: every process reads it once all are here.
        processes_->barrier();
        (void)notify({"teacher", 0, 1});
        const std::size_t T = c.sequence_length;
        calibration_set set;
        for (std::size_t s = 0; s < positions() / T; ++s) {
            calibration_sequence sequence;
            sequence.tokens.assign(tokens_.begin() + static_cast<std::ptrdiff_t>(s * T),
                                   tokens_.begin() + static_cast<std::ptrdiff_t>((s + 1) * T));
            sequence.length = T;
            set.sequences.push_back(std::move(sequence));
        }
        const auto answers = run_teacher(*teacher_, set, threads, nullptr, detail::blockwise::end_to_end_top_k);
        (void)notify({"teacher", 1, 1});

        std::map<std::string, const qat_tensor*, std::less<>> by_name;
        for (const auto& t : report.tensors) by_name[t.name] = &t;
        auto stored = [&](const std::string& name, llama_parameter parameter) {
            const auto& t = *by_name.at(name);
            return frozen_tensor{parameter, t.shape.size() >= 2 ? t.type : ggml_type::f32, tensor_bytes(t)};
        };
        end_to_end_student student;
        student.shape = shape_;
        student.layer = [&](std::size_t l) {
            std::vector<frozen_tensor> tensors;
            detail::layerwise::for_each_layer_tensor(
                    shape_, [&](const tensor_schema& t) { tensors.push_back(stored(t.gguf_name(l), t.parameter)); });
            return tensors;
        };
        student.embedding =
                stored(std::string(llama_tensor(llama_parameter::token_embedding).gguf_name(no_layer)), llama_parameter::token_embedding);
        student.classifier =
                tied_ ? student.embedding
                      : stored(std::string(llama_tensor(llama_parameter::output).gguf_name(no_layer)), llama_parameter::output);
        student.output_norm = teacher_->output_norm;
        student.rope_freqs = teacher_->rope_freqs;
        const end_to_end_settings settings{
                c.batch, c.gradient_groups, c.sequence_length, c.optimizer.beta1, c.optimizer.beta2, c.optimizer.gradient_clip, threads};
        end_to_end_scales phase(std::move(student), answers, tokens_, settings, *processes_);

        auto& e = report.end_to_end;
        e.parameters = phase.parameter_count();
        const std::size_t steps = c.end_to_end_steps;
        const learning_rate_schedule schedule{c.end_to_end_lr, std::min(c.optimizer.warmup_steps, steps / 4), steps,
                                              c.optimizer.final_ratio};
        bool keep_going = notify({"end-to-end", 0, steps});
        for (std::size_t step = 0; step < steps && keep_going; ++step) {
            // Its batches are drawn as those of a layer past the last.
            const double loss = phase.gradient(draw_batch(shape_.n_layers, step));
            (void)phase.update(schedule.at(step));
            if (step == 0) e.first_loss = loss, e.memory = phase.memory();
            e.last_loss = loss;
            e.steps = step + 1;
            keep_going = notify({"end-to-end", step + 1, steps, 0, loss});
        }
        e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        if (!keep_going) return false;
        for (std::size_t l = 0; l < shape_.n_layers; ++l) {
            std::size_t i = 0;
            detail::layerwise::for_each_layer_tensor(shape_, [&](const tensor_schema& t) {
                const auto values = phase.tensor_parameters(l, i++);
                if (!values.empty()) tuned_[t.gguf_name(l)].assign(values.begin(), values.end());
            });
        }
        return true;
    }

    void write_gguf(const std::filesystem::path& out, blockwise_qat_report& report) const {
        gguf::writer writer = detail::reshaped_model_writer(out, in_->metadata(), shape_);
        writer.set_split(config_.split);
        std::map<ggml_type, std::uint64_t> elements_by_type;
        report.tensor_bytes = 0;
        for (auto& t : report.tensors) {
            const auto bytes = tensor_bytes(t);
            if (bytes.size() != t.bytes)
                throw invalid_argument_error("qat --blockwise: " + t.name + " holds " + std::to_string(bytes.size()) + " bytes, its type " +
                                             std::to_string(t.bytes));
            if (t.shape.size() >= 2) elements_by_type[t.type] += t.shape[0] * t.shape[1];
            const ggml_type type = t.shape.size() >= 2 ? t.type : ggml_type::f32;
            // The writer asks for each tensor's bytes as it writes it: nothing is copied meanwhile. A tensor the
            // end-to-end phase trained is its frozen levels under the trained scales.
            if (const auto tuned = tuned_.find(t.name); tuned != tuned_.end())
                writer.add_tensor(t.name, t.shape, type,
                                  [stored = frozen_tensor{llama_parameter::wq, type, bytes},
                                   &values = tuned->second](std::span<std::byte> to) { detail::scale_tuning::apply(stored, values, to); });
            else
                writer.add_tensor(t.name, t.shape, type,
                                  [bytes](std::span<std::byte> to) { std::copy(bytes.begin(), bytes.end(), to.begin()); });
            report.tensor_bytes += bytes.size();
        }
        writer.set("general.file_type", gguf::value(static_cast<std::uint32_t>(file_type_for(detail::most_common_type(elements_by_type)))));
        writer.finish();
        report.file_bytes = writer.written_bytes();
        report.files = writer.output_paths();
        report.set_size_figures();
    }

    /// The bytes of a finished tensor: held in memory, or in its layer's checkpoint file (mapped).
    [[nodiscard]] std::span<const std::byte> tensor_bytes(const qat_tensor& t) const {
        if (const auto it = encoded_.find(t.name); it != encoded_.end()) return it->second;
        const std::size_t l = std::stoul(t.name.substr(4, t.name.find('.', 4) - 4));
        auto it = layer_files_.find(l);
        if (it == layer_files_.end()) it = layer_files_.emplace(l, gguf::reader::open(layer_file(l))).first;
        return checkpoint_tensor(it->second, layer_file(l), t);
    }

    /// Tensor t's bytes in a checkpoint file, which must hold it at its type and size (format_error otherwise).
    [[nodiscard]] static std::span<const std::byte> checkpoint_tensor(const gguf::reader& from, const std::filesystem::path& file,
                                                                      const qat_tensor& t) {
        const auto* info = from.find_tensor(t.name);
        const ggml_type type = t.shape.size() >= 2 ? t.type : ggml_type::f32;
        if (!info || info->type != type || from.tensor_data(*info).size() != t.bytes)
            throw format_error("checkpoint " + file.string() + ": no " + std::string(cogqat::info(type).name) + " tensor " + t.name +
                               " of " + std::to_string(t.bytes) + " bytes");
        return from.tensor_data(*info);
    }

    /// Drops layer l's bytes from memory (its checkpoint file holds them).
    void forget_layer(std::size_t l, const blockwise_qat_report& report) {
        const std::string prefix = "blk." + std::to_string(l) + ".";
        for (const auto& t : report.tensors)
            if (t.name.starts_with(prefix)) encoded_.erase(t.name);
    }

    /// The written file against the teacher on held-out sequences it writes with another seed.
    void score(blockwise_qat_report& report, unsigned threads) const {
        // The held-out sequences are those qat_pipeline scores on (its seed + 0x5eed).
        const auto set = make_calibration_set(
                *teacher_, self_generated_sequences(config_.validation_samples, config_.sequence_length, config_.seed + 0x5eed, threads));
        const auto answers = run_teacher(*teacher_, set, threads);
        report.teacher_nll = answers.nll;
        report.validation_positions = set.positions();
        const auto written = gguf::reader::open(report.files.front());
        report.after = score_against_teacher(io::read_llama_model(written), set, answers, activation_mode::quantized, threads);
        report.meets_accuracy_threshold = report.after.retention() >= config_.accuracy_threshold;
    }

    // The checkpoint: a directory with one GGUF per finished layer (its tensors as they will be written) and
    // state.gguf (the layers done, the training tokens, both streams, the layers' figures), written after the
    // layer's file, each all or nothing.
    [[nodiscard]] std::filesystem::path layer_file(std::size_t l) const {
        return config_.checkpoint / ("blk." + std::to_string(l) + ".gguf");
    }
    [[nodiscard]] std::filesystem::path state_file() const { return config_.checkpoint / "state.gguf"; }

    void save_checkpoint(std::size_t layers_done, const blockwise_qat_report& report) const {
        if (config_.checkpoint.empty() || !processes_->leads()) return;
        std::error_code ec;
        std::filesystem::create_directories(config_.checkpoint, ec);
        if (ec)
            throw io_error("qat --blockwise: cannot create the checkpoint directory " + config_.checkpoint.string() + ": " + ec.message());
        const std::size_t l = layers_done - 1;
        {
            gguf::writer w(layer_file(l));
            w.set("general.architecture", gguf::value("cogqat-checkpoint"));
            w.set("cogqat.checkpoint.version", gguf::value(detail::blockwise::checkpoint_version));
            for (const auto& t : report.tensors) {
                if (!t.name.starts_with("blk." + std::to_string(l) + ".")) continue;
                const auto& bytes = encoded_.at(t.name);
                w.add_tensor(t.name, t.shape, t.shape.size() >= 2 ? t.type : ggml_type::f32, std::span<const std::byte>(bytes));
            }
            w.finish();
        }
        gguf::writer w(state_file());
        w.set("general.architecture", gguf::value("cogqat-checkpoint"));
        w.set("cogqat.checkpoint.version", gguf::value(detail::blockwise::checkpoint_version));
        w.set("cogqat.checkpoint.fingerprint", gguf::value(fingerprint_));
        w.set("cogqat.checkpoint.layers_done", gguf::value(static_cast<std::uint64_t>(layers_done)));
        w.set("cogqat.checkpoint.tokens", gguf::value(tokens_));
        std::vector<double> figures;
        for (std::size_t k = 0; k < layers_done; ++k) {
            const auto& e = report.layers[k];
            figures.insert(figures.end(), {e.error_before, e.error_after, e.first_loss, e.last_loss});
        }
        w.set("cogqat.checkpoint.layer_figures", gguf::value(figures));
        const auto& embd = embedding_entry(report);
        w.add_tensor(embd.name, embd.shape, embd.type, std::span<const std::byte>(encoded_.at(embd.name)));
        detail::add_f32(w, "stream.teacher", teacher_stream_);
        detail::add_f32(w, "stream.student", student_stream_);
        w.finish();
    }

    /// Continues after the checkpoint's last layer; returns the next layer to train (0 without a checkpoint).
    std::size_t resume(blockwise_qat_report& report) {
        if (config_.checkpoint.empty() || !std::filesystem::exists(state_file())) return 0;
        const auto path = state_file();
        const auto in = gguf::reader::open(path);
        auto key = [&](const char* name) -> const gguf::value& {
            const auto* v = in.find(name);
            if (!v) throw format_error("checkpoint " + path.string() + ": no key " + name);
            return *v;
        };
        if (key("cogqat.checkpoint.version").as_string() != detail::blockwise::checkpoint_version)
            throw format_error("checkpoint " + path.string() + ": not a " + std::string(detail::blockwise::checkpoint_version) + " file");
        if (const auto& f = key("cogqat.checkpoint.fingerprint").as_string(); f != fingerprint_)
            throw invalid_argument_error("checkpoint " + path.string() + " is of another run (its settings: " + f +
                                         "; this run: " + fingerprint_ + "); delete it or rerun with the same settings");
        const auto done = key("cogqat.checkpoint.layers_done").as<std::uint64_t>();
        if (done == 0 || done > teacher_->config.n_layers)
            throw format_error("checkpoint " + path.string() + ": " + std::to_string(done) + " layers done of " +
                               std::to_string(teacher_->config.n_layers));
        tokens_ = key("cogqat.checkpoint.tokens").as_array<std::int32_t>();
        if (tokens_.size() != config_.samples * config_.sequence_length)
            throw format_error("checkpoint " + path.string() + ": " + std::to_string(tokens_.size()) + " training tokens, the run has " +
                               std::to_string(config_.samples * config_.sequence_length));
        const auto figures = key("cogqat.checkpoint.layer_figures").as_array<double>();
        if (figures.size() != 4 * done) throw format_error("checkpoint " + path.string() + ": layer figures of another length");
        for (std::size_t k = 0; k < done; ++k) {
            auto& e = report.layers[k];
            e.error_before = figures[4 * k], e.error_after = figures[4 * k + 1], e.first_loss = figures[4 * k + 2],
            e.last_loss = figures[4 * k + 3];
        }
        const std::size_t n = positions() * width();
        teacher_stream_ = detail::read_f32(in, "stream.teacher", n, path);
        student_stream_ = detail::read_f32(in, "stream.student", n, path);
        const auto& embedding = embedding_entry(report);
        const auto embedding_bytes = checkpoint_tensor(in, path, embedding);
        encoded_[embedding.name].assign(embedding_bytes.begin(), embedding_bytes.end());
        // The finished layers stay in their files, checked now and written from there.
        for (std::size_t l = 0; l < done; ++l)
            for (const auto& t : report.tensors)
                if (t.name.starts_with("blk." + std::to_string(l) + ".")) (void)tensor_bytes(t);
        resumed_ = true;
        return done;
    }

    [[nodiscard]] static const qat_tensor& embedding_entry(const blockwise_qat_report& report) {
        const auto name = llama_tensor(llama_parameter::token_embedding).gguf_name(no_layer);
        return *std::find_if(report.tensors.begin(), report.tensors.end(), [&](const qat_tensor& t) { return t.name == name; });
    }

    void remove_checkpoint(blockwise_qat_report& report) const {
        if (config_.checkpoint.empty() || config_.keep_checkpoint) return;
        std::error_code ec;
        std::filesystem::remove(state_file(), ec);
        for (std::size_t l = 0; l < teacher_->config.n_layers && !ec; ++l) std::filesystem::remove(layer_file(l), ec);
        if (!ec) std::filesystem::remove(config_.checkpoint, ec);  // only when empty: nothing of the user's is removed
        if (ec) report.checkpoint_note = "cannot remove the checkpoint '" + config_.checkpoint.string() + "': " + ec.message();
    }

    blockwise_qat_config config_;
    const gguf::reader* in_;
    const process_group* processes_;
    progress_callback progress_;
    std::unique_ptr<llama_model> teacher_;
    llama_config shape_;  ///< the teacher's, its feed-forward width padded
    bool tied_ = false;   ///< the classifier is the embedding (in the input, or dropped as its duplicate)
    std::map<std::string, ggml_type, std::less<>> types_;
    std::map<std::string, std::vector<std::byte>, std::less<>> encoded_;  ///< finished tensors not (yet) in a checkpoint file
    std::map<std::string, std::vector<float>, std::less<>> tuned_;        ///< the end-to-end phase's block parameters, by tensor
    mutable std::map<std::size_t, gguf::reader> layer_files_;             ///< checkpoint files opened to write from
    std::vector<std::int32_t> tokens_;                                    ///< the training sequences, one after another
    std::vector<float> teacher_stream_, student_stream_;                  ///< the residual streams entering the next layer
    std::string fingerprint_;
    bool resumed_ = false;
};

/// Runs the pipeline in one call.
[[nodiscard]] inline blockwise_qat_report blockwise_quantization_aware_training(const gguf::reader& in, const std::filesystem::path& out,
                                                                                const blockwise_qat_config& config,
                                                                                blockwise_qat_pipeline::progress_callback progress = {},
                                                                                const process_group& processes = single_process{}) {
    blockwise_qat_pipeline pipeline(in, config, processes);
    pipeline.on_progress(std::move(progress));
    return pipeline.run(out);
}

}  // namespace cogqat
