#pragma once
// The data-free main job: a type per tensor chosen from measured sensitivity under a size target.
//
//   read the model -> exact reshapes (model/reshape.hpp) -> synthetic calibration from the model itself
//   (calib/) -> every candidate type of every tensor quantized Hessian-aware (quant/gptq.hpp) and its KL
//   measured with only that tensor quantized (exact), or predicted from its Hessian-weighted output error
//   (blockwise, qat/blockwise_sensitivity.hpp) -> exact bit allocation under the size target
//   (qat/bit_allocator.hpp) -> progressive application, least sensitive first, each step re-measured and
//   undone if it breaks max_kl or the accuracy threshold -> GGUF written -> the written file validated.
//
// A large model is measured one decoder layer at a time (layer_streaming): the calibration positions'
// residual stream goes through each layer in turn, and only that layer's floats, inputs and second moments
// are held; the candidates' bytes wait in a scratch file until the allocation picks among them.
//
// Over several processes (process_group, e.g. MPI ranks) the measurement is shared: each process measures
// every size()-th candidate (and check) and hands the measures to the others, so all of them allocate as one
// process would; the leading process writes the file, byte for byte the one a single process writes.
//
// No text is read anywhere on this path: every input comes from the model's own weights and outputs.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "cogqat/calib/calibration_set.hpp"
#include "cogqat/calib/second_moments.hpp"
#include "cogqat/core/checked.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/error_metrics.hpp"
#include "cogqat/core/memory.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/core/process_group.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/io/gguf.hpp"
#include "cogqat/io/read_llama.hpp"
#include "cogqat/io/scratch_file.hpp"
#include "cogqat/model/layer_stream.hpp"
#include "cogqat/model/llama_model.hpp"
#include "cogqat/model/llama_schema.hpp"
#include "cogqat/model/reshape.hpp"
#include "cogqat/qat/bit_allocator.hpp"
#include "cogqat/qat/blockwise_sensitivity.hpp"
#include "cogqat/qat/transforms.hpp"
#include "cogqat/quant/gptq.hpp"
#include "cogqat/quant/mix_policy.hpp"

namespace cogqat {

/// How large the written model may be. Exactly one of the three is used. A target below the smallest size
/// the candidate types allow is refused, with that size in the target's own unit, unless `or_smallest`: then
/// the smallest size is taken instead (what a default needs, which must work for any model).
struct size_target {
    enum class kind { bits_per_weight, memory_reduction, file_bytes };
    kind what = kind::bits_per_weight;
    double value = 5.0;  ///< bits per weight; fraction saved against F16 (0.75 = a quarter of F16's size); bytes
    bool or_smallest = false;

    [[nodiscard]] static size_target bits(double bpw) { return {kind::bits_per_weight, bpw}; }
    [[nodiscard]] static size_target reduction(double r) { return {kind::memory_reduction, r}; }
    [[nodiscard]] static size_target file(std::uint64_t bytes) { return {kind::file_bytes, static_cast<double>(bytes)}; }
    /// The default: 75% smaller than F16, or the smallest possible size where that is out of reach.
    [[nodiscard]] static size_target default_target() { return {kind::memory_reduction, 0.75, true}; }
};

/// Where the pipeline is: phase name, items done out of total, the item at hand.
struct auto_progress {
    std::string_view phase;
    std::size_t done = 0, total = 0;
    std::string_view item;
};

/// How the analysis holds the model.
///   whole_model: every tensor as floats and every matrix's input second moments at once (what the exact
///     method and the transforms need): about 4 + 8·cols/rows bytes per weight.
///   one_layer: the input stays mapped; the calibration positions' residual stream goes through one decoder
///     layer at a time, whose floats, inputs and second moments are all that is held, and the measured
///     candidates wait in a scratch file. Sensitivity is blockwise; the teacher's answers are kept as their
///     top tokens; the progressive pass (a whole-model forward per tensor) is left out, and the feed-forward
///     width is taken as it is (not padded).
///   automatic: one_layer for a model of at least layer_streaming_parameters weights measured blockwise, with
///     no transform asked for and no padding needed; whole_model otherwise.
enum class layer_streaming { automatic, whole_model, one_layer };

/// From this many weights, automatic streams the layers (a 1.1B model held whole takes about 12 GB).
inline constexpr std::uint64_t layer_streaming_parameters = 100'000'000;

struct auto_quantize_options {
    size_target target;
    calibration_options calibration;
    /// Types tried for each matrix (those whose block fits its rows); f16 is always among them. The i-quants
    /// (iq4_nl, iq4_xs and the grid types, opt-in) are searched with the diagonal of the matrix's input second
    /// moments as importance weights; those that need them are not offered to an untied token embedding.
    std::vector<ggml_type> candidates{ggml_type::q4_0, ggml_type::q4_1, ggml_type::q5_0, ggml_type::q5_1, ggml_type::q8_0,
                                      ggml_type::q2_K, ggml_type::q3_K, ggml_type::q4_K, ggml_type::q5_K, ggml_type::q6_K};
    bool hessian_aware = true;  ///< GPTQ with the synthetic inputs' second moments; else ggml's reference
    sensitivity_method sensitivity = sensitivity_method::automatic;  ///< how each candidate's KL is measured
    layer_streaming streaming = layer_streaming::automatic;          ///< the whole model at once, or one layer at a time
    std::size_t check_tokens = 512;  ///< one_layer: the calibration positions (whole sequences) the exact checks score on
    /// one_layer: the teacher's most likely tokens kept per position for the validation, the rest as one mass
    /// (0: whole rows while they take at most 512 MiB, else 64; the exact checks always keep whole rows).
    std::size_t teacher_top_k = 0;
    std::filesystem::path scratch_directory;  ///< one_layer: where the measured candidates wait (empty: the system's temporary directory)
    /// one_layer: rows of each matrix every candidate is quantized and measured on, evenly spaced, the errors
    /// scaled to all rows (0: all). Rows are rounded independently (GPTQ's too, given the factor), so the
    /// chosen type is rounded in full as the file is written, from the input's GPTQ factor kept in the
    /// scratch file. Whole, a 1.1B layer costs 1.3e11 multiply-adds per 32-value type.
    std::size_t measure_rows = 256;
    bool pad_feed_forward = true;                             ///< pad the FFN width to a multiple of 32 (exact)
    bool drop_duplicate_classifier = true;                    ///< tie output.weight to token_embd.weight when they are equal (exact)
    transform_options transforms;                             ///< exact rotation and smoothing after the reshapes (qat/transforms.hpp)
    double max_kl = std::numeric_limits<double>::infinity();  ///< a progressive step past this KL is undone
    double accuracy_threshold = 0.98;                         ///< a step that takes retention below this is undone
    gptq_options gptq;
    unsigned threads = 0;
    std::function<void(const auto_progress&)> on_progress;
    gguf::split_limits split;  ///< active: write a split set (gguf/split.hpp)
};

/// One candidate type of one tensor: its size, its cost and its error.
struct candidate_measure {
    ggml_type type = ggml_type::f16;
    std::uint64_t bytes = 0;
    double kl = 0.0;  ///< exact: measured with only this tensor quantized; blockwise: (output_error + activation_error) x fitted factor
    double relative_rmse = 0.0;
    double output_error = 0.0;      ///< tr(D H Dᵀ) under the calibration inputs (an embedding: Σ lookups · |D_row|²)
    double activation_error = 0.0;  ///< blockwise: Σ_j a_j |Q_:j|², the inputs' rounding to the type's partner (q8_0, q8_1, q8_K)
};

struct tensor_decision {
    std::string name;
    std::vector<std::uint64_t> shape;
    std::uint64_t elements = 0;
    std::vector<candidate_measure> candidates;  ///< empty for 1-D tensors (kept f32)
    ggml_type type = ggml_type::f32;
    std::uint64_t bytes = 0;
    double predicted_kl = 0.0;
    double relative_rmse = 0.0;
};

struct progressive_step {
    std::string tensor;
    ggml_type type = ggml_type::f32;
    calibration_score score;  ///< of the model after the step (or after its undo)
    bool undone = false;
    std::string reason;
};

/// What every data-free job reports of the model it wrote: its size against F16, the exact reshapes, and how
/// close it stays to the full-precision teacher. auto_report and qat_report add their own.
struct quantized_model_summary {
    std::uint64_t parameters = 0;                    ///< weights of the model as written, zero padding not counted
    std::uint64_t tensor_bytes = 0, file_bytes = 0;  ///< file_bytes: of every shard of a split set
    std::vector<std::filesystem::path> files;        ///< the files written: the output, or the shards of a split set
    double bits_per_weight = 0.0;                    ///< 8 * tensor_bytes / parameters
    double compression_vs_f16 = 0.0;                 ///< 2 * parameters / tensor_bytes
    double memory_reduction_vs_f16 = 0.0;
    double accuracy_threshold = 0.98;  ///< retention exp(-dNLL) the result is judged against
    bool meets_accuracy_threshold = false;
    double teacher_nll = 0.0;
    bool classifier_tied = false;                              ///< output.weight equalled token_embd.weight and is stored once
    std::uint32_t feed_forward_from = 0, feed_forward_to = 0;  ///< the feed-forward width before and after padding
    transform_report transforms;                               ///< the exact rotation and smoothing applied, and what they changed
    double seconds = 0.0;

    /// bits_per_weight, compression_vs_f16 and memory_reduction_vs_f16, from parameters and tensor_bytes.
    void set_size_figures() noexcept {
        const double p = static_cast<double>(parameters), bytes = static_cast<double>(tensor_bytes);
        bits_per_weight = p != 0.0 ? 8.0 * bytes / p : 0.0;
        compression_vs_f16 = bytes != 0.0 ? 2.0 * p / bytes : 0.0;
        memory_reduction_vs_f16 = p != 0.0 ? 1.0 - bytes / (2.0 * p) : 0.0;
    }
};

struct auto_report : quantized_model_summary {
    std::vector<tensor_decision> tensors;
    std::vector<progressive_step> steps;
    std::uint64_t stored_elements = 0;  ///< values stored, padding included
    std::uint64_t budget_bytes = 0;
    bool budget_is_file_size = false;
    bool budget_raised = false;     ///< the target was below the smallest possible size, which was taken (or_smallest)
    double predicted_kl = 0.0;      ///< sum of the chosen candidates' KL
    calibration_score progressive;  ///< after the last step
    calibration_score validation;   ///< the written file, activations quantized as llama.cpp does
    calibration_source source = calibration_source::self_generated;
    std::size_t calibration_positions = 0;
    std::vector<std::uint64_t> error_histogram;                  ///< (w - q) / rms(w) over all quantized weights, 41 bins on [-2.05, 2.05]
    sensitivity_method sensitivity = sensitivity_method::exact;  ///< the method the candidates' KL came from (never automatic)
    std::vector<sensitivity_check> sensitivity_checks;           ///< blockwise: the exact measurements its factors were fitted on
    bool layer_streamed = false;                                 ///< measured one layer at a time (layer_streaming::one_layer)
    std::string progressive_note;                                ///< why there are no progressive steps, where they were left out
    std::size_t processes = 1;                                   ///< the processes the measurement was shared among
    bool written = true;  ///< false on the processes that do not lead: they measured, and the leading one wrote
};

namespace detail {

/// Why a size target cannot be met, in the target's own unit: the smallest size the candidates allow is
/// `smallest` budget bytes, against `budget` (`target_bytes` before rounding) for `parameters` weights.
inline std::string unreachable_target_message(const size_target& target, std::uint64_t smallest, std::uint64_t budget, double target_bytes,
                                              std::uint64_t parameters) {
    const double weights = static_cast<double>(std::max<std::uint64_t>(parameters, 1));
    const auto number = [](double v) {
        std::string text = std::to_string(v);
        return text.substr(0, text.find('.') + 4);
    };
    switch (target.what) {
        case size_target::kind::bits_per_weight:
            return "a target of " + number(target.value) +
                   " bits per weight is below the smallest this model allows with these candidate types, " +
                   number(8.0 * static_cast<double>(smallest) / weights) + " (" + std::to_string(smallest) + " bytes of tensors)";
        case size_target::kind::memory_reduction:
            return "a memory reduction of " + number(target.value) +
                   " against F16 is beyond the largest this model allows with these candidate types, " +
                   number(1.0 - static_cast<double>(smallest) / (2.0 * weights)) + " (" + std::to_string(smallest) + " bytes of tensors)";
        case size_target::kind::file_bytes:
            break;
    }
    const double header = target.value - target_bytes;
    return "a file of " + std::to_string(static_cast<std::uint64_t>(target.value)) +
           " bytes is below the smallest this model allows with these candidate types, " +
           std::to_string(static_cast<std::uint64_t>(header) + smallest) + " bytes (" + std::to_string(static_cast<std::uint64_t>(header)) +
           " of header and " + std::to_string(smallest) + " of tensors; the target leaves " + std::to_string(budget) + " for the tensors)";
}

/// Views every matrix of `m` (no weight bytes copied): a student that shares the teacher's weights.
inline llama_model view_of(const llama_model& m) {
    auto view = [](const weight_matrix& from) { return weight_matrix{from.shape(), from.type, from.bytes(), {}, from.interleaved}; };
    llama_model v;
    v.config = m.config;
    v.tied_output = m.tied_output;
    v.layers.resize(m.layers.size());
    for_each_llama_tensor(m.config, m.tied_output, [&](const tensor_schema& t, std::size_t layer) {
        auto share = [&](auto& to, const auto& from) {
            if constexpr (std::is_same_v<std::remove_cvref_t<decltype(to)>, weight_matrix>)
                to = view(from);
            else
                to = from;  // a norm vector: small, copied
        };
        visit_parameters(t.parameter, layer, share, v, m);
    });
    return v;
}

inline weight_matrix& matrix_named(llama_model& m, std::string_view name) {
    for (const auto& [n, w] : named_matrices(m))
        if (n == name) return const_cast<weight_matrix&>(*w);
    throw invalid_argument_error("model has no matrix " + std::string(name));
}

/// Points a matrix at quantized bytes (owned elsewhere): run with activation_mode::quantized, the product
/// is llama.cpp's, activation rounding included, while the f32 matrices around it stay exact.
inline void set_weights(weight_matrix& w, ggml_type type, std::span<const std::byte> bytes) {
    w.type = type;
    w.view = bytes;
    w.owned.clear();
    w.interleaved.reset();
}

inline std::uint64_t aligned(std::uint64_t bytes, std::uint64_t alignment) { return (bytes + alignment - 1) / alignment * alignment; }

/// A writer for a reshaped llama model: the source's metadata (tokenizer included), the possibly padded
/// feed-forward width, and llama.cpp's quantization keys (file type 0 until the types are known).
inline gguf::writer reshaped_model_writer(const std::filesystem::path& out,
                                          const std::vector<std::pair<std::string, gguf::value>>& metadata, const llama_config& config) {
    gguf::writer writer(out);
    for (const auto& [key, value] : metadata) {
        if (key == "general.file_type" || key == "general.quantization_version") continue;
        writer.set(key, value);
    }
    writer.set(gguf_key(&llama_config::hidden_dim, config.architecture), gguf::value(config.hidden_dim));
    writer.set("general.quantization_version", gguf::value(std::uint32_t{2}));
    writer.set("general.file_type", gguf::value(std::uint32_t{0}));
    return writer;
}

/// The type holding the most weights: what general.file_type is named after.
inline ggml_type most_common_type(const std::map<ggml_type, std::uint64_t>& elements_by_type) {
    ggml_type most = ggml_type::f32;
    std::uint64_t most_elements = 0;
    for (const auto& [type, count] : elements_by_type)
        if (count > most_elements) most_elements = count, most = type;
    return most;
}

/// Adds (w - q) / rms(w) of one tensor to a 41-bin histogram over [-2.05, 2.05] (outliers in the end bins).
inline void add_to_histogram(std::vector<std::uint64_t>& bins, std::span<const float> values, std::span<const float> decoded) {
    double squares = 0.0;
    for (float v : values) squares += static_cast<double>(v) * v;
    if (values.empty() || !(squares > 0.0)) return;
    const double rms = std::sqrt(squares / static_cast<double>(values.size()));
    const auto last = static_cast<std::ptrdiff_t>(bins.size()) - 1;
    for (std::size_t e = 0; e < values.size(); ++e) {
        const double z = (static_cast<double>(values[e]) - decoded[e]) / rms;
        bins[static_cast<std::size_t>(std::clamp<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(std::floor((z + 2.05) / 0.1)), 0, last))]++;
    }
}

}  // namespace detail

/// The expensive half of the pipeline, done once: the reshaped model, its calibration set and answers,
/// every candidate of every matrix quantized and measured. Any number of size targets can then be
/// written from it (quantize_to), each a cheap allocation, progressive pass and write.
class sensitivity_analysis {
public:
    /// Reads `in`, reshapes, calibrates and measures every candidate (options' size target is not used here).
    /// Over several `processes`, each measures its share of the candidates and hands the measures to the
    /// others: every process ends with the analysis one process makes.
    [[nodiscard]] static sensitivity_analysis measure(const gguf::reader& in, const auto_quantize_options& o,
                                                      const process_group& processes = single_process{}) {
        auto a = reshaped(in, o);
        a.calibrate_and_measure(o, processes);
        return a;
    }

    /// Reads `in`, reshapes it and lists each matrix's candidates: the cheap first half of measure, after
    /// which check_reachable can refuse a size target before the calibration and the measurement.
    /// Layer by layer (layer_streaming), the analysis views `in`'s mapping: `in` must outlive it.
    [[nodiscard]] static sensitivity_analysis reshaped(const gguf::reader& in, const auto_quantize_options& o) {
        sensitivity_analysis a;
        a.metadata_ = in.metadata();
        if (auto mapped = std::make_unique<llama_model>(io::read_llama_model(in)); streams(*mapped, o)) {
            a.stream_from(std::move(mapped), o);
            a.list_candidates(o);
            return a;
        }
        a.weights_ = io::read_llama_weights(in);
        const std::uint64_t vocab = a.weights_.config.vocab_size;
        const auto floats = checked_mul(o.calibration.tokens, vocab);
        require_memory("auto_quantize: the teacher's log-probabilities at " + std::to_string(o.calibration.tokens) +
                               " calibration positions over " + std::to_string(vocab) + " tokens",
                       floats ? checked_mul(*floats, sizeof(float)) : std::nullopt);
        a.feed_forward_from_ = a.weights_.config.hidden_dim;
        if (o.drop_duplicate_classifier) a.classifier_tied_ = drop_duplicate_classifier(a.weights_);
        if (o.pad_feed_forward) pad_feed_forward(a.weights_, 32);
        const unsigned threads = resolve_threads(o.threads);
        auto progress = [&](std::string_view phase, std::size_t done, std::size_t total, std::string_view item = {}) {
            if (o.on_progress) o.on_progress({phase, done, total, item});
        };
        if (o.transforms.any()) {
            progress("transforms", 0, 1);
            transform_options transforms = o.transforms;
            transforms.gptq = transforms.gptq && o.hessian_aware;  // smoothing predicts the rounding the file gets
            a.transforms_ = apply_transforms(a.weights_, transforms, o.calibration, threads);
            if (a.transforms_.rotation.folding.untied) a.classifier_tied_ = false;
            progress("transforms", 1, 1);
        }
        a.list_candidates(o);
        return a;
    }

    /// Refuses `o.target` (invalid_argument_error, in the target's own unit) when no choice of the candidates
    /// meets it and it may not be raised (size_target::or_smallest): what quantize_to would refuse after the
    /// measurement, known from the shapes alone.
    void check_reachable(const auto_quantize_options& o) const {
        if (o.target.or_smallest) return;
        auto_report report = new_report(o);
        allocation_plan plan;
        gguf::writer writer = lay_out({}, report, plan);  // laid out only: a writer creates its file at finish
        set_budget(o.target, writer, report, plan);
    }

    /// Calibrates the reshaped model and measures every candidate: the costly second half of measure, shared
    /// among `processes` as there.
    void calibrate_and_measure(const auto_quantize_options& o, const process_group& processes = single_process{}) {
        const unsigned threads = resolve_threads(o.threads);
        auto progress = [&](std::string_view phase, std::size_t done, std::size_t total, std::string_view item = {}) {
            if (o.on_progress) o.on_progress({phase, done, total, item});
        };
        if (streaming_) return measure_layer_by_layer(o, threads, progress, processes);
        teacher_ = std::make_unique<llama_model>(llama_model::viewing(weights_));  // no second copy of the weights

        // Calibration: inputs, the teacher's answers and every matrix's input second moments.
        progress("calibration", 0, 1);
        calibration_options calibration = o.calibration;
        calibration.threads = threads;
        if (!calibration.on_tokens) calibration.on_tokens = [&](std::size_t done, std::size_t total) { progress("generate", done, total); };
        set_ = make_calibration_set(*teacher_, calibration);
        input_moments moments;
        answers_ = run_teacher(*teacher_, set_, threads, &moments);
        progress("calibration", 1, 1);

        moments_ = std::move(moments);
        // A type that needs importance weights is a candidate only where the inputs were seen: an untied token
        // embedding is looked up, not multiplied, and has none (check_reachable, before this, counted it).
        for (std::size_t i = 0; i < candidates_.size(); ++i)
            std::erase_if(candidates_[i], [&](const candidate_measure& c) {
                return requires_importance(c.type) && moments_.find(weights_.tensors[i].name) == nullptr;
            });
        hessian_aware_ = o.hessian_aware;
        gptq_ = o.gptq;
        measure_candidates(o, threads, progress, processes);
    }

    /// Chooses the types for `o.target`, applies them progressively and writes `out`; validates the file.
    [[nodiscard]] auto_report quantize_to(const std::filesystem::path& out, const auto_quantize_options& o) const {
        const auto start = std::chrono::steady_clock::now();
        if (!(o.accuracy_threshold >= 0.0 && o.accuracy_threshold <= 1.0))
            throw invalid_argument_error("accuracy threshold must lie in [0, 1]");
        if (!(o.max_kl >= 0.0)) throw invalid_argument_error("max KL must be >= 0");
        const unsigned threads = resolve_threads(o.threads);
        auto_report report = new_report(o);
        allocation_plan plan;
        plan.gptq = gptq_factor_cache(gptq_options{gptq_.damping, threads});
        gguf::writer writer = lay_out(out, report, plan);
        writer.set_split(o.split);
        set_budget(o.target, writer, report, plan);
        allocate(report, plan);
        apply_progressively(o, report, plan, threads);
        settle_types(writer, report, plan);
        // Writing rounds each sampled matrix in full at its chosen type: minutes on a large model.
        std::size_t written = 0;
        plan.on_written = [&](std::string_view name) {
            if (o.on_progress) o.on_progress({"write", ++written, plan.matrices.size(), name});
        };
        writer.finish();
        report.file_bytes = writer.written_bytes();
        report.files = writer.output_paths();
        validate(report.files.front(), o, report, threads);
        report.set_size_figures();
        report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return report;
    }

    /// The model as quantized (reshaped: tied classifier, padded FFN) and its calibration.
    [[nodiscard]] const llama_weights& weights() const noexcept { return weights_; }
    [[nodiscard]] const llama_model& teacher() const noexcept { return *teacher_; }
    [[nodiscard]] const calibration_set& calibration() const noexcept { return set_; }
    [[nodiscard]] const teacher_outputs& answers() const noexcept { return answers_; }
    /// The measured candidates of tensor `i` (empty for 1-D tensors).
    [[nodiscard]] const std::vector<candidate_measure>& candidates(std::size_t i) const { return candidates_.at(i); }
    /// The method the candidates' KL came from (automatic resolved), and blockwise's exact checks.
    [[nodiscard]] sensitivity_method method() const noexcept { return method_; }
    [[nodiscard]] const std::vector<sensitivity_check>& checks() const noexcept { return checks_; }
    /// Whether the model was measured one layer at a time (its matrices' values are then not held:
    /// weights().tensors[i].values is empty for every tensor with candidates).
    [[nodiscard]] bool layer_streamed() const noexcept { return streaming_; }

private:
    /// One job of the analysis: a candidate of a tensor, and whether it is an exact check of the blockwise fit.
    struct candidate_job {
        std::size_t tensor, candidate;
        bool check = false;
    };

    /// The input second moments GPTQ steers tensor i's rounding by, or null (not seen, or not hessian-aware).
    [[nodiscard]] const std::vector<double>* gptq_hessian(std::size_t i) const {
        return hessian_aware_ ? moments_.find(weights_.tensors[i].name) : nullptr;
    }

    /// Tensor i quantized to `type` as the analysis does it, the same bytes every time (whatever `threads`):
    /// GPTQ with `factor`, the factor of gptq_hessian(i), where there is one and the type allows, else
    /// ggml's reference.
    [[nodiscard]] std::vector<std::byte> quantized(std::size_t i, ggml_type type, const gptq_factor* factor, unsigned threads = 1,
                                                   double* output_error = nullptr) const {
        const auto& t = weights_.tensors[i];
        return quantize_candidate(t.values, static_cast<std::size_t>(t.shape[0]), type, factor, moments_.find(t.name), moments_.samples,
                                  threads, output_error);
    }

    /// Whether `type`'s bytes depend on the calibration: GPTQ-rounded, or an i-quant searched by importance.
    [[nodiscard]] static bool calibrated(ggml_type type, const gptq_factor* factor, const std::vector<double>* moments,
                                         std::size_t samples) {
        const bool iquant = is_grid_iquant(type) || type == ggml_type::iq4_nl || type == ggml_type::iq4_xs;
        return (factor && gptq_rounds(type)) || (moments && iquant && samples);
    }

    /// `values` (rows of `cols`) quantized to `type`: GPTQ with `factor` where given and the type allows (and
    /// then, given `output_error`, its tr(D H Dᵀ) from GPTQ's own errors); an i-quant searched with the diagonal
    /// of the inputs' second moments `moments` (over `samples` positions) as importance; else ggml's reference.
    [[nodiscard]] std::vector<std::byte> quantize_candidate(std::span<const float> values, std::size_t cols, ggml_type type,
                                                            const gptq_factor* factor, const std::vector<double>* moments,
                                                            std::size_t samples, unsigned threads, double* output_error = nullptr) const {
        if (factor && gptq_rounds(type)) {
            gptq_options g = gptq_;
            g.threads = threads;
            return gptq_quantize(type, values, values.size() / cols, cols, *factor, g, output_error);
        }
        if (calibrated(type, nullptr, moments, samples)) {
            // H's diagonal over the positions: the data-free importance matrix (calib/importance.hpp), which the
            // i-quants' searches weigh each column's error by, as llama.cpp's imatrix. (The other types keep ggml's
            // reference rounding or GPTQ here, as their measured rows in docs/QUALITY.md were made.)
            std::vector<float> importance(cols);
            for (std::size_t c = 0; c < cols; ++c)
                importance[c] = static_cast<float>((*moments)[c * cols + c] / static_cast<double>(samples));
            return quantize(type, values, cols, importance);
        }
        return quantize(type, values);
    }

    /// Fills c's size and errors from its bytes: the relative RMSE, the output error (`known`, which GPTQ
    /// gives, else Hessian-weighted by `h` where the inputs were seen, else weighed by `lookups`, or plain
    /// squares without them) and, given the inputs' channel sums `a`, their rounding's error.
    static void measure(candidate_measure& c, std::span<const float> values, std::size_t cols, std::span<const std::byte> bytes,
                        const std::vector<double>* h, std::span<const double> lookups, const std::vector<double>* a,
                        std::optional<double> known = std::nullopt) {
        const auto decoded = dequantize(c.type, bytes);
        c.bytes = bytes.size();
        c.relative_rmse = measure_error(values, decoded).relative_rmse;
        // f16 rounds each weight on its own: its few-ulp errors are independent, and H's diagonal weighs them
        // as the whole H would (at a 1.1B model's widths the whole H costs as much as GPTQ does).
        c.output_error = known                           ? *known
                         : h && c.type == ggml_type::f16 ? diagonal_weighted_error(values, decoded, cols, *h)
                         : h                             ? hessian_weighted_error(values, decoded, cols, *h)
                                                         : lookup_weighted_error(values, decoded, cols, lookups);
        if (a) c.activation_error = activation_rounding_error(decoded, cols, *a);
    }

    [[nodiscard]] static bool is_embedding(std::string_view name) { return name == llama_tensor(llama_parameter::token_embedding).name; }

    /// The candidates of every matrix: the types whose block fits its rows, f16 first (1-D tensors have none).
    void list_candidates(const auto_quantize_options& o) {
        const auto& tensors = weights_.tensors;
        candidates_.assign(tensors.size(), {});
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            if (tensors[i].shape.size() < 2) continue;
            candidates_[i].push_back({ggml_type::f16});
            for (auto type : o.candidates)
                if (type != ggml_type::f16 && tensors[i].shape[0] % info(type).block_size == 0) candidates_[i].push_back({type});
        }
    }

    /// The jobs that measure every candidate; for blockwise, the exact checks: per tensor kind, its first,
    /// middle and last layer at one mid-range type.
    [[nodiscard]] std::vector<candidate_job> plan_jobs(const auto_quantize_options& o) {
        const auto& tensors = weights_.tensors;
        std::vector<candidate_job> jobs;
        std::map<std::string, std::vector<std::size_t>, std::less<>> kinds;  // kind -> its tensors in layer order
        std::uint64_t parameters = 0;
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            if (tensors[i].shape.size() < 2) continue;
            parameters += elements_of(i);
            for (std::size_t k = 0; k < candidates_[i].size(); ++k) jobs.push_back({i, k});
            kinds[kind_of(tensors[i].name)].push_back(i);
        }
        method_ =
                streaming_ ? sensitivity_method::blockwise : resolve_sensitivity(o.sensitivity, parameters, set_.positions(), jobs.size());
        if (method_ != sensitivity_method::blockwise) return jobs;
        // Two checks per checked layer: a type of mid-range error (mostly the weights' own: KL well above the
        // inputs' rounding and still quadratic) and an 8-bit one (mostly the inputs' rounding), the first of
        // each list the tensor has; together they fit both factors (kl_scale).
        constexpr ggml_type coarse[] = {ggml_type::q4_0, ggml_type::q4_K, ggml_type::q4_1, ggml_type::q5_0,
                                        ggml_type::q5_K, ggml_type::q3_K, ggml_type::q5_1, ggml_type::q2_K};
        constexpr ggml_type fine[] = {ggml_type::q8_0, ggml_type::q6_K};
        for (const auto& [kind, members] : kinds) {
            for (std::size_t p : checked_positions(members.size())) {
                const std::size_t i = members[p];
                for (std::span<const ggml_type> list : {std::span<const ggml_type>(coarse), std::span<const ggml_type>(fine)}) {
                    for (ggml_type type : list) {
                        const auto& c = candidates_[i];
                        const auto it = std::find_if(c.begin(), c.end(), [&](const candidate_measure& m) { return m.type == type; });
                        if (it == c.end()) continue;
                        for (auto& j : jobs)
                            if (j.tensor == i && j.candidate == static_cast<std::size_t>(it - c.begin())) j.check = true;
                        break;
                    }
                }
            }
        }
        return jobs;
    }

    /// A tensor's kind: its GGUF name without the layer ("blk.3.ffn_up.weight" -> "ffn_up.weight").
    [[nodiscard]] static std::string kind_of(std::string_view name) {
        const auto parsed = parse_llama_tensor_name(name);
        return parsed ? std::string(parsed->tensor->name) : std::string(name);
    }
    [[nodiscard]] static std::size_t layer_of(std::string_view name) {
        const auto parsed = parse_llama_tensor_name(name);
        return parsed && parsed->layer != no_layer ? parsed->layer : 0;
    }

    /// Quantizes every candidate, measures its error (and its exact KL where the method asks), and keeps
    /// only the measures: each candidate's bytes and decoded values live for its own job alone.
    template <class Progress>
    void measure_candidates(const auto_quantize_options& o, unsigned threads, const Progress& progress, const process_group& processes) {
        const auto& tensors = weights_.tensors;
        const auto jobs = plan_jobs(o);
        const auto lookups = token_counts(set_, weights_.config.vocab_size);
        activation_rounding rounding;
        if (method_ == sensitivity_method::blockwise) {
            progress("activation rounding", 0, 1);
            rounding = measure_activation_rounding(*teacher_, set_, activation_partners(o.candidates), threads);
            progress("activation rounding", 1, 1);
        }
        std::vector<sensitivity_check> checks;
        std::size_t finished = 0;
        std::mutex progress_mutex;
        // Jobs by the input their tensor reads (Q, K and V share one; so do gate and up): each input's GPTQ
        // factor is made once, on every thread, and dropped when its jobs are done.
        std::vector<std::pair<const std::vector<double>*, std::vector<candidate_job>>> by_input;
        for (const auto& job : jobs) {
            const auto* h = gptq_hessian(job.tensor);
            auto it = std::find_if(by_input.begin(), by_input.end(), [&](const auto& g) { return g.first == h; });
            if (it == by_input.end()) it = by_input.insert(by_input.end(), {h, {}});
            it->second.push_back(job);
        }
        for (const auto& entry : by_input) {
            const std::vector<double>* hessian = entry.first;
            const std::vector<candidate_job>& group = entry.second;  // not a structured binding: lambdas below capture it
            std::unique_ptr<const gptq_factor> factor;
            const bool steered = std::any_of(group.begin(), group.end(),
                                             [&](const candidate_job& j) { return gptq_rounds(candidates_[j.tensor][j.candidate].type); });
            if (hessian && steered)
                factor = std::make_unique<const gptq_factor>(*hessian, static_cast<std::size_t>(tensors[group.front().tensor].shape[0]),
                                                             gptq_options{gptq_.damping, threads});
            const auto record = [&](const candidate_job& job) {  // under progress_mutex
                const auto& t = tensors[job.tensor];
                const auto& c = candidates_[job.tensor][job.candidate];
                if (job.check)
                    checks.push_back({t.name, kind_of(t.name), layer_of(t.name), std::string(info(c.type).name), c.output_error,
                                      c.activation_error, c.kl});
                progress("sensitivity", ++finished, jobs.size(), t.name);
            };
            split_jobs(
                    processes, group.size(), threads,
                    [&](std::size_t j) {
                        const auto job = group[j];
                        const auto& t = tensors[job.tensor];
                        auto& c = candidates_[job.tensor][job.candidate];
                        double gptq_error = 0.0;
                        const auto bytes = quantized(job.tensor, c.type, factor.get(), 1, &gptq_error);
                        measure(c, t.values, static_cast<std::size_t>(t.shape[0]), bytes, moments_.find(t.name),
                                is_embedding(t.name) ? std::span<const double>(lookups) : std::span<const double>{},
                                rounding.find(t.name, activation_type_for(c.type)),
                                factor && gptq_rounds(c.type) ? std::optional<double>(gptq_error) : std::nullopt);
                        if (method_ == sensitivity_method::exact || job.check) {
                            llama_model student = detail::view_of(*teacher_);
                            detail::set_weights(detail::matrix_named(student, t.name), c.type, bytes);
                            c.kl = std::max(0.0, score_against_teacher(student, set_, answers_, activation_mode::quantized, 1).kl);
                        }
                        std::lock_guard lock(progress_mutex);
                        record(job);
                    },
                    [&](std::size_t j, std::size_t owner) {
                        broadcast_value(processes, candidates_[group[j].tensor][group[j].candidate], owner);
                        if (processes.rank() != owner) record(group[j]);
                    });
        }
        if (method_ == sensitivity_method::blockwise) cost_from_checks(std::move(checks));
    }

    /// `work(j)` for this process's share of `jobs` (every size()-th from its rank), over `threads`; then, on
    /// several processes, `share(j, owner)` for every job in order on every process, in which the owner of job
    /// j hands its result to the others (collective calls, made in the same order everywhere).
    template <class Work, class Share>
    static void split_jobs(const process_group& processes, std::size_t jobs, unsigned threads, const Work& work, const Share& share) {
        const std::size_t n = processes.size(), rank = processes.rank();
        const std::size_t mine = jobs > rank ? (jobs - rank + n - 1) / n : 0;
        parallel_for(mine, threads, [&](std::size_t begin, std::size_t end) {
            for (std::size_t k = begin; k < end; ++k) work(rank + k * n);
        });
        if (n > 1)
            for (std::size_t j = 0; j < jobs; ++j) share(j, j % n);
    }

    /// Blockwise: the checks kept in a fixed order (threads finish in any), then every candidate costed on the
    /// scale fitted to them.
    void cost_from_checks(std::vector<sensitivity_check> checks) {
        std::sort(checks.begin(), checks.end(),
                  [](const auto& x, const auto& y) { return std::tie(x.tensor, x.type) < std::tie(y.tensor, y.type); });
        checks_ = std::move(checks);
        const kl_scale scale = kl_scale::fit(checks_);
        for (std::size_t i = 0; i < weights_.tensors.size(); ++i)
            for (auto& c : candidates_[i])
                c.kl = scale.cost(kind_of(weights_.tensors[i].name), layer_of(weights_.tensors[i].name), c.output_error,
                                  c.activation_error);
    }

    // ---- one layer at a time (layer_streaming::one_layer) ----

    /// Whether `o` and the model `m` take the layer-by-layer analysis (see layer_streaming).
    [[nodiscard]] static bool streams(const llama_model& m, const auto_quantize_options& o) {
        if (o.streaming == layer_streaming::whole_model) return false;
        const bool forced = o.streaming == layer_streaming::one_layer;
        const auto refuse = [&](const std::string& why) {
            if (forced) throw invalid_argument_error("auto_quantize one layer at a time: " + why);
            return false;
        };
        if (o.transforms.any()) return refuse("the exact transforms (rotation, smoothing) need the whole model in memory");
        if (o.sensitivity == sensitivity_method::exact)
            return refuse("the exact sensitivity runs the whole model for every candidate; one layer at a time measures blockwise");
        if (forced) return true;
        if (o.pad_feed_forward && m.config.hidden_dim % 32 != 0) return false;
        std::uint64_t parameters = 0, matrices = 0;
        for (const auto& named : named_matrices(m)) parameters += std::uint64_t{named.second->rows} * named.second->cols, ++matrices;
        if (parameters < layer_streaming_parameters) return false;
        return resolve_sensitivity(o.sensitivity, parameters, o.calibration.tokens, matrices * (o.candidates.size() + 1)) ==
               sensitivity_method::blockwise;
    }

    /// Takes the mapped model as the teacher: the tensors' names and shapes are listed, the vectors (norms)
    /// copied, the matrices left where they are.
    void stream_from(std::unique_ptr<llama_model> mapped, const auto_quantize_options& o) {
        streaming_ = true;
        teacher_ = std::move(mapped);
        auto& m = *teacher_;
        feed_forward_from_ = m.config.hidden_dim;
        const auto &embedding = m.token_embedding, &output = m.output;
        if (o.drop_duplicate_classifier && !m.tied_output && output.type == embedding.type && output.rows == embedding.rows &&
            output.cols == embedding.cols && std::ranges::equal(output.bytes(), embedding.bytes())) {
            m.tied_output = true;
            m.output = {};
            classifier_tied_ = true;
        }
        weights_.config = m.config;
        for_each_llama_tensor(m.config, m.tied_output, [&](const tensor_schema& t, std::size_t layer) {
            float_tensor f{t.gguf_name(layer), t.gguf_shape(m.config), {}};
            visit_parameter(m, t.parameter, layer, [&](const auto& member) {
                if constexpr (std::is_same_v<std::remove_cvref_t<decltype(member)>, weight_matrix>)
                    mapped_[f.name] = &member;
                else
                    f.values.assign(member.begin(), member.end());
            });
            weights_.tensors.push_back(std::move(f));
        });
    }

    /// Tensor i's values: those held, or (one layer at a time) its matrix decoded from the mapping into `buffer`.
    [[nodiscard]] std::span<const float> values_of(std::size_t i, std::vector<float>& buffer) const {
        const auto& t = weights_.tensors[i];
        const auto it = streaming_ ? mapped_.find(t.name) : mapped_.end();
        if (it == mapped_.end()) return t.values;
        buffer.resize(it->second->rows * it->second->cols);
        dequantize(it->second->type, it->second->bytes(), buffer);
        return buffer;
    }

    [[nodiscard]] std::uint64_t elements_of(std::size_t i) const {
        std::uint64_t n = 1;
        for (auto d : weights_.tensors[i].shape) n *= d;
        return n;
    }

    /// The GPTQ factors brought back from the scratch file while a file is written: the last two inputs'
    /// (gate and up are written apart, with down between them).
    struct kept_factors {
        std::vector<std::pair<std::uint64_t, std::unique_ptr<const gptq_factor>>> recent;  // by offset, most recent first
    };

    /// Candidate k of tensor i in full: from the scratch file where it was measured whole; else GPTQ from its
    /// input's kept factor (read through `factors`) where it was measured on sampled rows; else ggml's
    /// reference rounding, which gives the same bytes again.
    [[nodiscard]] std::vector<std::byte> candidate_bytes(std::size_t i, std::size_t k, kept_factors* factors = nullptr,
                                                         unsigned threads = 1) const {
        if (stored_[i][k]) return scratch_->read(*stored_[i][k]);
        std::vector<float> buffer;
        const auto values = values_of(i, buffer);
        const std::size_t cols = static_cast<std::size_t>(weights_.tensors[i].shape[0]);
        const ggml_type type = candidates_[i][k].type;
        if (!factor_of_[i] || !gptq_rounds(type)) return quantize_candidate(values, cols, type, nullptr, nullptr, 0, threads);
        kept_factors local;
        auto& kept = factors ? *factors : local;
        const std::uint64_t offset = factor_of_[i]->offset;
        auto it = std::find_if(kept.recent.begin(), kept.recent.end(), [&](const auto& e) { return e.first == offset; });
        if (it == kept.recent.end()) {
            if (kept.recent.size() >= 2) kept.recent.pop_back();
            kept.recent.emplace(kept.recent.begin(), offset,
                                std::make_unique<const gptq_factor>(gptq_factor::from_bytes(scratch_->read(*factor_of_[i]))));
            it = kept.recent.begin();
        }
        return quantize_candidate(values, cols, type, it->second.get(), nullptr, 0, threads);
    }

    /// Σ e² per channel of the rows of `x` (rows of `cols`) rounded to each partner whose block fits them.
    [[nodiscard]] static std::map<ggml_type, std::vector<double>> channel_rounding(std::span<const float> x, std::size_t cols,
                                                                                   std::span<const ggml_type> partners) {
        std::map<ggml_type, std::vector<double>> sums;
        std::vector<std::byte> rounded;
        std::vector<float> decoded;
        for (ggml_type partner : partners) {
            if (cols % info(partner).block_size != 0) continue;
            auto& a = sums[partner];
            for (std::size_t r = 0; r < x.size() / cols; ++r) add_rounding_errors(partner, x.subspan(r * cols, cols), a, rounded, decoded);
        }
        return sums;
    }

    /// What measure_input_group is told besides the matrices: the inputs' second moments `h` over `samples`
    /// positions (null: an embedding, weighed by `lookups`) and their rounding's channel sums per partner.
    struct input_statistics {
        const std::vector<double>* h = nullptr;
        std::size_t samples = 0;
        std::map<ggml_type, std::vector<double>> rounding;
        std::span<const double> lookups;
    };

    /// Every candidate of the matrices `members` (tensor indices, with their values), which read one input:
    /// one GPTQ factor for all of them, the jobs over the threads. A matrix of more than measure_rows_ rows is
    /// measured on that many, evenly spaced (its checks whole: they run in the model), and the factor is kept
    /// in the scratch file for the chosen type's full rounding; bytes measured whole that depend on the
    /// calibration are kept there too.
    template <class Progress>
    void measure_input_group(std::span<const std::size_t> members, std::span<const std::span<const float>> values,
                             const input_statistics& inputs, unsigned threads, std::size_t& finished, std::size_t total,
                             const Progress& progress, const process_group& processes) {
        std::vector<std::pair<std::size_t, std::size_t>> jobs;  // (member, candidate)
        bool steered = false;
        for (std::size_t m = 0; m < members.size(); ++m)
            for (std::size_t k = 0; k < candidates_[members[m]].size(); ++k) {
                jobs.emplace_back(m, k);
                steered = steered || gptq_rounds(candidates_[members[m]][k].type);
            }
        const std::size_t cols = static_cast<std::size_t>(weights_.tensors[members.front()].shape[0]);
        std::unique_ptr<const gptq_factor> factor;
        if (inputs.h && hessian_aware_ && steered)
            factor = std::make_unique<const gptq_factor>(*inputs.h, cols, gptq_options{gptq_.damping, threads});
        // The sampled rows of each member that has more than measure_rows_.
        std::vector<std::vector<float>> sampled(members.size());
        std::vector<double> scale(members.size(), 1.0);
        std::optional<io::scratch_file::extent> kept;
        for (std::size_t m = 0; m < members.size(); ++m) {
            const std::size_t rows = values[m].size() / cols;
            // An embedding looked up is measured whole: its rounding is ggml's and its error a sum of squares, both cheap.
            if (measure_rows_ == 0 || rows <= measure_rows_ || !inputs.h) continue;
            sampled[m].resize(measure_rows_ * cols);
            for (std::size_t k = 0; k < measure_rows_; ++k)
                std::copy_n(values[m].begin() + static_cast<std::ptrdiff_t>(k * rows / measure_rows_ * cols), cols,
                            sampled[m].begin() + static_cast<std::ptrdiff_t>(k * cols));
            scale[m] = static_cast<double>(rows) / static_cast<double>(measure_rows_);
            if (factor && !kept) kept = scratch_->append(factor->to_bytes());
            factor_of_[members[m]] = kept;
        }
        std::mutex progress_mutex;
        split_jobs(
                processes, jobs.size(), threads,
                [&](std::size_t j) {
                    const std::size_t m = jobs[j].first, i = members[m], k = jobs[j].second;
                    auto& c = candidates_[i][k];
                    // An importance-searched i-quant has no kept factor to be rounded again from: measured whole.
                    const bool whole = sampled[m].empty() || is_check_[i][k] || calibrated(c.type, nullptr, inputs.h, inputs.samples);
                    const std::span<const float> rows = whole ? values[m] : std::span<const float>(sampled[m]);
                    double gptq_error = 0.0;
                    const auto bytes = quantize_candidate(rows, cols, c.type, factor.get(), inputs.h, inputs.samples, 1, &gptq_error);
                    const auto a = inputs.rounding.find(activation_type_for(c.type));
                    measure(c, rows, cols, bytes, inputs.h, inputs.lookups, a == inputs.rounding.end() ? nullptr : &a->second,
                            factor && gptq_rounds(c.type) ? std::optional<double>(gptq_error) : std::nullopt);
                    if (!whole) {
                        c.bytes = storage_size(c.type, values[m].size());
                        c.output_error *= scale[m];
                        c.activation_error *= scale[m];
                    } else if (calibrated(c.type, factor.get(), inputs.h, inputs.samples)) {
                        stored_[i][k] = scratch_->append(bytes);
                    }
                    std::lock_guard lock(progress_mutex);
                    progress("sensitivity", ++finished, total, weights_.tensors[i].name);
                },
                [&](std::size_t j, std::size_t owner) {
                    const std::size_t i = members[jobs[j].first], k = jobs[j].second;
                    broadcast_value(processes, candidates_[i][k], owner);
                    // Bytes the owner keeps in its scratch file are kept in every process's own.
                    bool stored = stored_[i][k].has_value();
                    broadcast_value(processes, stored, owner);
                    if (stored) {
                        std::vector<std::byte> bytes;
                        if (processes.rank() == owner) bytes = scratch_->read(*stored_[i][k]);
                        broadcast_bytes(processes, bytes, owner);
                        if (processes.rank() != owner) stored_[i][k] = scratch_->append(bytes);
                    }
                    if (processes.rank() != owner) progress("sensitivity", ++finished, total, weights_.tensors[i].name);
                });
    }

    /// The layer-by-layer analysis: calibration on the mapped teacher, then each layer's candidates measured
    /// under its inputs as the calibration stream passes it, then the classifier's and the embedding's, then
    /// blockwise's exact checks on a few sequences.
    template <class Progress>
    void measure_layer_by_layer(const auto_quantize_options& o, unsigned threads, const Progress& progress,
                                const process_group& processes) {
        const llama_model& m = *teacher_;
        const auto& c = m.config;
        const auto& tensors = weights_.tensors;
        progress("calibration", 0, 1);
        calibration_options calibration = o.calibration;
        calibration.threads = threads;
        if (!calibration.on_tokens) calibration.on_tokens = [&](std::size_t done, std::size_t total) { progress("generate", done, total); };
        set_ = make_calibration_set(m, calibration);
        // Whole rows where they fit: merging the tail into one outcome keeps most of a peaked distribution's KL,
        // and little of a flat one's (a randomly initialised model's).
        const bool rows_fit = static_cast<double>(set_.positions()) * c.vocab_size * sizeof(float) <= 512.0 * (1u << 20);
        answers_ = run_teacher(m, set_, threads, nullptr, o.teacher_top_k ? o.teacher_top_k : rows_fit ? 0 : 64);
        calibration_set check_set;
        check_set.source = set_.source;
        for (const auto& sequence : set_.sequences) {
            if (!check_set.sequences.empty() && check_set.positions() + sequence.length > o.check_tokens) break;
            check_set.sequences.push_back(sequence);
        }
        const auto check_answers = run_teacher(m, check_set, threads);
        progress("calibration", 1, 1);
        hessian_aware_ = o.hessian_aware;
        gptq_ = o.gptq;
        measure_rows_ = o.measure_rows;
        // Every matrix's inputs are seen here but an untied embedding's, which is looked up.
        for (std::size_t i = 0; i < candidates_.size(); ++i)
            if (is_embedding(tensors[i].name) && !m.tied_output)
                std::erase_if(candidates_[i], [](const candidate_measure& x) { return requires_importance(x.type); });
        const auto jobs = plan_jobs(o);
        const auto partners = activation_partners(o.candidates);
        scratch_ = std::make_unique<io::scratch_file>(o.scratch_directory.empty() ? std::filesystem::temp_directory_path()
                                                                                  : o.scratch_directory);
        stored_.assign(tensors.size(), {});
        std::map<std::string, std::size_t, std::less<>> index;
        factor_of_.assign(tensors.size(), std::nullopt);
        is_check_.assign(tensors.size(), {});
        for (std::size_t i = 0; i < tensors.size(); ++i)
            stored_[i].resize(candidates_[i].size()), is_check_[i].assign(candidates_[i].size(), false), index[tensors[i].name] = i;
        for (const auto& job : jobs) is_check_[job.tensor][job.candidate] = job.check;
        std::size_t finished = 0;

        // The stream entering layer 0: the embedding's rows of the tokens, or the hidden-state inputs.
        const std::size_t positions = set_.positions(), dim = c.dim, length = set_.sequences.front().length;
        std::vector<float> stream(positions * dim), next;
        std::size_t at = 0;
        for (const auto& sequence : set_.sequences)
            for (std::size_t p = 0; p < sequence.length; ++p, ++at) {
                const std::span<float> row(stream.data() + at * dim, dim);
                if (sequence.tokens.empty())
                    std::copy_n(sequence.inputs.begin() + static_cast<std::ptrdiff_t>(p * dim), dim, row.begin());
                else
                    dequantize(m.token_embedding.type, m.token_embedding.row(static_cast<std::size_t>(sequence.tokens[p])), row);
            }
        for (std::size_t l = 0; l < c.n_layers; ++l) {
            const auto layer = detail::layerwise::decode_layer(m, l, c);
            std::map<llama_parameter, std::vector<float>> inputs;
            detail::layerwise::forward_layer(c, layer, stream, next, length, threads, &inputs);
            for (auto reader : detail::layerwise::input_readers) {
                std::vector<std::size_t> members;
                std::vector<std::span<const float>> values;
                detail::layerwise::for_each_layer_tensor(c, [&](const tensor_schema& t) {
                    if (t.is_vector() || detail::layerwise::input_reader_of(t.parameter) != reader) return;
                    members.push_back(index.at(t.gguf_name(l)));
                    values.emplace_back(layer.values(t.parameter, 0));
                });
                auto& x = inputs.at(reader);
                const std::size_t cols = x.size() / positions;
                const auto h = second_moments(x, cols, threads);
                input_statistics statistics{&h, positions, channel_rounding(x, cols, partners), {}};
                x = {};
                measure_input_group(members, values, statistics, threads, finished, jobs.size(), progress, processes);
            }
            stream.swap(next);
        }
        // The classifier reads the final stream through the output norm.
        {
            std::vector<float> normed(stream.size());
            for (std::size_t p = 0; p < positions; ++p)
                detail::rms_norm(std::span<float>(normed).subspan(p * dim, dim), std::span<const float>(stream).subspan(p * dim, dim),
                                 m.output_norm, c.rms_norm_eps);
            stream = {};
            const auto h = second_moments(normed, dim, threads);
            input_statistics statistics{&h, positions, channel_rounding(normed, dim, partners), {}};
            normed = {};
            const std::size_t i =
                    index.find(llama_tensor(m.tied_output ? llama_parameter::token_embedding : llama_parameter::output).name)->second;
            std::vector<float> buffer;
            const std::span<const float> values = values_of(i, buffer);
            measure_input_group(std::span<const std::size_t>(&i, 1), std::span<const std::span<const float>>(&values, 1), statistics,
                                threads, finished, jobs.size(), progress, processes);
        }
        if (!m.tied_output) {
            const auto lookups = token_counts(set_, c.vocab_size);
            const std::size_t i = index.find(llama_tensor(llama_parameter::token_embedding).name)->second;
            std::vector<float> buffer;
            const std::span<const float> values = values_of(i, buffer);
            measure_input_group(std::span<const std::size_t>(&i, 1), std::span<const std::span<const float>>(&values, 1),
                                input_statistics{nullptr, 0, {}, lookups}, threads, finished, jobs.size(), progress, processes);
        }

        // Blockwise's exact checks, each a whole-model forward over the check sequences with one tensor quantized.
        std::vector<candidate_job> checked;
        for (const auto& job : jobs)
            if (job.check) checked.push_back(job);
        std::vector<sensitivity_check> checks(checked.size());
        std::size_t done = 0;
        std::mutex progress_mutex;
        progress("checks", 0, checked.size());
        const auto record = [&](std::size_t j) {  // under progress_mutex
            const auto& t = tensors[checked[j].tensor];
            const auto& candidate = candidates_[checked[j].tensor][checked[j].candidate];
            checks[j] = {t.name,
                         kind_of(t.name),
                         layer_of(t.name),
                         std::string(info(candidate.type).name),
                         candidate.output_error,
                         candidate.activation_error,
                         candidate.kl};
            progress("checks", ++done, checked.size(), t.name);
        };
        split_jobs(
                processes, checked.size(), threads,
                [&](std::size_t j) {
                    const auto job = checked[j];
                    auto& candidate = candidates_[job.tensor][job.candidate];
                    const auto bytes = candidate_bytes(job.tensor, job.candidate);
                    llama_model student = detail::view_of(m);
                    detail::set_weights(detail::matrix_named(student, tensors[job.tensor].name), candidate.type, bytes);
                    candidate.kl =
                            std::max(0.0, score_against_teacher(student, check_set, check_answers, activation_mode::quantized, 1).kl);
                    std::lock_guard lock(progress_mutex);
                    record(j);
                },
                [&](std::size_t j, std::size_t owner) {
                    broadcast_value(processes, candidates_[checked[j].tensor][checked[j].candidate].kl, owner);
                    if (processes.rank() != owner) record(j);
                });
        cost_from_checks(std::move(checks));
    }

    /// What quantize_to decides, step by step: the candidate chosen per tensor, and the budget's unit.
    struct allocation_plan {
        std::vector<std::size_t> choice;           ///< per tensor, an index into its candidates
        std::vector<std::size_t> matrices;         ///< the tensors with candidates, in file order
        std::uint64_t alignment = 32;              ///< of the file's tensor data
        std::uint64_t fixed = 0;                   ///< what the tensors without candidates (1-D, f32) cost
        bool file_budget = false;                  ///< the budget counts aligned tensors (a file-size target)
        std::vector<std::vector<std::byte>> held;  ///< per tensor, its bytes at held_type (one type at a time)
        std::vector<ggml_type> held_type;
        gptq_factor_cache gptq;                            ///< the last inputs' factors, and GPTQ's threads
        kept_factors factors;                              ///< one layer at a time: factors read back from the scratch file
        std::function<void(std::string_view)> on_written;  ///< told each tensor's name as the file takes it

        /// What `elements` values of `type` cost against the budget.
        [[nodiscard]] std::uint64_t cost(ggml_type type, std::uint64_t elements) const {
            const std::uint64_t bytes = storage_size(type, elements);
            return file_budget ? detail::aligned(bytes, alignment) : bytes;
        }
    };

    [[nodiscard]] auto_report new_report(const auto_quantize_options& o) const {
        auto_report report;
        report.accuracy_threshold = o.accuracy_threshold;
        report.classifier_tied = classifier_tied_;
        report.feed_forward_from = feed_forward_from_;
        report.feed_forward_to = weights_.config.hidden_dim;
        report.transforms = transforms_;
        report.teacher_nll = answers_.nll;
        report.source = set_.source;
        report.calibration_positions = set_.positions();
        report.sensitivity = method_;
        report.sensitivity_checks = checks_;
        report.layer_streamed = streaming_;
        return report;
    }

    /// The bytes of tensor i at `type`, quantized again when the plan does not hold them: the plan holds one
    /// type per tensor, so at most a file's worth of quantized bytes is kept.
    const std::vector<std::byte>& hold(allocation_plan& plan, std::size_t i, ggml_type type) const {
        if (streaming_ && (plan.held[i].empty() || plan.held_type[i] != type)) {
            const auto& c = candidates_[i];
            const auto k = static_cast<std::size_t>(
                    std::find_if(c.begin(), c.end(), [&](const candidate_measure& m) { return m.type == type; }) - c.begin());
            plan.held[i] = candidate_bytes(i, k, &plan.factors, plan.gptq.options().threads);
            plan.held_type[i] = type;
        }
        if (plan.held[i].empty() || plan.held_type[i] != type) {
            const auto* h = gptq_rounds(type) ? gptq_hessian(i) : nullptr;
            const std::size_t cols = static_cast<std::size_t>(weights_.tensors[i].shape[0]);
            plan.held[i] = quantized(i, type, h ? &plan.gptq.get(*h, cols) : nullptr, plan.gptq.options().threads);
            plan.held_type[i] = type;
        }
        return plan.held[i];
    }

    /// The writer, laid out first: its header size does not depend on the types, so a file-size target turns
    /// into an exact byte budget for the tensors. Each tensor is filled at finish, from the plan's choice.
    [[nodiscard]] gguf::writer lay_out(const std::filesystem::path& out, auto_report& report, allocation_plan& plan) const {
        const auto& tensors = weights_.tensors;
        plan.choice.assign(tensors.size(), 0);
        plan.held.assign(tensors.size(), {});
        plan.held_type.assign(tensors.size(), ggml_type::f32);
        gguf::writer writer = detail::reshaped_model_writer(out, metadata_, weights_.config);
        plan.alignment = writer.alignment();
        report.tensors.resize(tensors.size());
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            const auto& t = tensors[i];
            auto& d = report.tensors[i];
            d.name = t.name, d.shape = t.shape, d.elements = elements_of(i), d.candidates = candidates_[i];
            report.stored_elements += d.elements;
            if (d.candidates.empty())
                d.bytes = storage_size(ggml_type::f32, d.elements);
            else
                plan.matrices.push_back(i);
            // Filled as the file is written, when the types are settled: the bytes of each tensor made (or read
            // back) once, its share of the error histogram taken then.
            writer.add_tensor(t.name, t.shape, ggml_type::f32, [this, &plan, &report, i](std::span<std::byte> bytes) {
                if (candidates_[i].empty()) return quantize(ggml_type::f32, weights_.tensors[i].values, bytes);
                const ggml_type type = candidates_[i][plan.choice[i]].type;
                const auto& chosen = hold(plan, i, type);
                std::copy(chosen.begin(), chosen.end(), bytes.begin());
                std::vector<float> buffer;
                detail::add_to_histogram(report.error_histogram, values_of(i, buffer), dequantize(type, chosen));
                plan.held[i] = {};  // written: the file holds it now, and memory need not hold the whole file
                if (plan.on_written) plan.on_written(weights_.tensors[i].name);
            });
        }
        const std::uint64_t padding =
                3ull * weights_.config.dim * (report.feed_forward_to - report.feed_forward_from) * weights_.config.n_layers;
        report.parameters = report.stored_elements - padding;
        return writer;
    }

    /// The budget, in the unit the target speaks: file bytes (aligned tensors plus header) or tensor bytes;
    /// below the smallest size the candidates allow it is refused, or raised to it (size_target::or_smallest).
    void set_budget(const size_target& target, gguf::writer& writer, auto_report& report, allocation_plan& plan) const {
        report.budget_is_file_size = plan.file_budget = target.what == size_target::kind::file_bytes;
        for (const auto& d : report.tensors)
            if (d.candidates.empty()) plan.fixed += plan.cost(ggml_type::f32, d.elements);
        double target_bytes = 0.0;
        switch (target.what) {
            case size_target::kind::bits_per_weight:
                if (!(target.value > 0.0)) throw invalid_argument_error("target bits per weight must be positive");
                target_bytes = target.value * static_cast<double>(report.parameters) / 8.0;
                break;
            case size_target::kind::memory_reduction:
                if (!(target.value >= 0.0 && target.value < 1.0)) throw invalid_argument_error("memory reduction must lie in [0, 1)");
                target_bytes = (1.0 - target.value) * 2.0 * static_cast<double>(report.parameters);
                break;
            case size_target::kind::file_bytes: {
                std::uint64_t data_if_f32 = 0;
                for (const auto& d : report.tensors)
                    data_if_f32 += detail::aligned(storage_size(ggml_type::f32, d.elements), plan.alignment);
                target_bytes = target.value - static_cast<double>(writer.planned_file_size() - data_if_f32);
                break;
            }
        }
        report.budget_bytes = static_cast<std::uint64_t>(std::max(0.0, std::floor(target_bytes)));
        std::uint64_t smallest = plan.fixed;
        for (auto i : plan.matrices) {
            std::uint64_t least = std::numeric_limits<std::uint64_t>::max();
            for (const auto& option : options_of(i, report, plan)) least = std::min(least, option.bytes);
            smallest += least;
        }
        if (report.budget_bytes < smallest) {
            if (!target.or_smallest)
                throw invalid_argument_error(
                        detail::unreachable_target_message(target, smallest, report.budget_bytes, target_bytes, report.parameters));
            report.budget_bytes = smallest;
            report.budget_raised = true;
        }
    }

    /// Tensor i's candidates as the allocator takes them: type, cost against the budget, measured KL.
    [[nodiscard]] std::vector<allocation_option> options_of(std::size_t i, const auto_report& report, const allocation_plan& plan) const {
        std::vector<allocation_option> options;
        for (const auto& c : candidates_[i]) options.push_back({c.type, plan.cost(c.type, report.tensors[i].elements), c.kl});
        return options;
    }

    /// The exact allocation: least summed KL within the budget.
    void allocate(auto_report& report, allocation_plan& plan) const {
        std::vector<std::vector<allocation_option>> table;
        for (auto i : plan.matrices) table.push_back(options_of(i, report, plan));
        const allocation chosen = allocate_bits(table, report.budget_bytes - plan.fixed);
        for (std::size_t m = 0; m < plan.matrices.size(); ++m) plan.choice[plan.matrices[m]] = chosen.choice[m];
        for (auto i : plan.matrices) report.tensors[i].predicted_kl = candidates_[i][plan.choice[i]].kl;
    }

    /// Progressive: least sensitive first, re-measured after each step; a step that breaks the limits is
    /// undone (the tensor kept at f16) and the tensors still to come re-allocated within what is left.
    void apply_progressively(const auto_quantize_options& o, auto_report& report, allocation_plan& plan, unsigned threads) const {
        if (streaming_) {
            report.progressive_note =
                    "left out: measured one layer at a time, where each step would be a whole-model forward; the written file is "
                    "validated instead";
            return;
        }
        const auto& tensors = weights_.tensors;
        auto& choice = plan.choice;
        std::vector<std::size_t> order = plan.matrices;
        std::stable_sort(order.begin(), order.end(),
                         [&](std::size_t x, std::size_t y) { return report.tensors[x].predicted_kl < report.tensors[y].predicted_kl; });
        // In file order, which keeps a layer's matrices together: those that share an input share its factor.
        for (auto i : plan.matrices) static_cast<void>(hold(plan, i, candidates_[i][choice[i]].type));
        llama_model state = detail::view_of(*teacher_);
        for (std::size_t s = 0; s < order.size(); ++s) {
            const std::size_t i = order[s];
            auto& w = detail::matrix_named(state, tensors[i].name);
            detail::set_weights(w, candidates_[i][choice[i]].type, hold(plan, i, candidates_[i][choice[i]].type));
            progressive_step step{tensors[i].name, candidates_[i][choice[i]].type, {}, false, {}};
            step.score = score_against_teacher(state, set_, answers_, activation_mode::quantized, threads);
            const bool breaks = step.score.kl > o.max_kl || step.score.retention() < o.accuracy_threshold;
            const std::string limit = step.score.kl > o.max_kl ? "KL past max_kl" : "retention below the accuracy threshold";
            if (breaks && choice[i] != 0) {
                std::uint64_t committed = plan.fixed + plan.cost(ggml_type::f16, report.tensors[i].elements);
                for (std::size_t r = 0; r < s; ++r)
                    committed += plan.cost(candidates_[order[r]][choice[order[r]]].type, report.tensors[order[r]].elements);
                std::vector<std::vector<allocation_option>> rest;
                for (std::size_t r = s + 1; r < order.size(); ++r) rest.push_back(options_of(order[r], report, plan));
                std::optional<allocation> again;
                if (committed <= report.budget_bytes) {
                    try {
                        again = allocate_bits(rest, report.budget_bytes - committed);
                    } catch (const invalid_argument_error&) {}
                }
                if (again) {
                    for (std::size_t r = s + 1; r < order.size(); ++r) choice[order[r]] = again->choice[r - s - 1];
                    choice[i] = 0;
                    detail::set_weights(w, ggml_type::f16, hold(plan, i, ggml_type::f16));
                    step.undone = true;
                    step.type = ggml_type::f16;
                    step.reason = limit + ": undone, kept at f16; later tensors re-allocated";
                    step.score = score_against_teacher(state, set_, answers_, activation_mode::quantized, threads);
                } else {
                    step.reason = limit + ", kept: undoing it would break the size target";
                }
            } else if (breaks) {
                step.reason = limit + " (already f16)";
            }
            report.steps.push_back(std::move(step));
            if (o.on_progress) o.on_progress({"progressive", s + 1, order.size(), tensors[i].name});
        }
        report.progressive = report.steps.empty() ? calibration_score{} : report.steps.back().score;
    }

    /// The types settled: each tensor's type, bytes and error in the report and the writer, the file type; the
    /// quantization error histogram of what the file holds is taken as it is written (lay_out).
    void settle_types(gguf::writer& writer, auto_report& report, allocation_plan& plan) const {
        report.error_histogram.assign(41, 0);
        std::map<ggml_type, std::uint64_t> elements_by_type;
        for (auto i : plan.matrices) {
            auto& d = report.tensors[i];
            const auto& c = candidates_[i][plan.choice[i]];
            d.type = c.type, d.bytes = c.bytes, d.relative_rmse = c.relative_rmse, d.predicted_kl = c.kl;
            elements_by_type[c.type] += d.elements;
            writer.set_tensor_type(d.name, c.type);
        }
        writer.set("general.file_type", gguf::value(static_cast<std::uint32_t>(file_type_for(detail::most_common_type(elements_by_type)))));
        for (const auto& d : report.tensors) report.tensor_bytes += d.bytes, report.predicted_kl += d.predicted_kl;
    }

    /// The written file itself, with llama.cpp's arithmetic (activations quantized).
    void validate(const std::filesystem::path& out, const auto_quantize_options& o, auto_report& report, unsigned threads) const {
        if (o.on_progress) o.on_progress({"validation", 0, 1, {}});
        const auto written = gguf::reader::open(out);
        report.validation = score_against_teacher(io::read_llama_model(written), set_, answers_, activation_mode::quantized, threads);
        report.meets_accuracy_threshold = report.validation.retention() >= o.accuracy_threshold;
        if (o.on_progress) o.on_progress({"validation", 1, 1, {}});
    }

    std::vector<std::pair<std::string, gguf::value>> metadata_;
    llama_weights weights_;
    std::unique_ptr<llama_model> teacher_;  // views weights_, and students view its bytes: it must not move
    calibration_set set_;
    teacher_outputs answers_;
    std::vector<std::vector<candidate_measure>> candidates_;
    input_moments moments_;  // the matrices' input second moments: GPTQ's H when a chosen type is quantized again
    bool hessian_aware_ = true;
    gptq_options gptq_;
    sensitivity_method method_ = sensitivity_method::exact;
    std::vector<sensitivity_check> checks_;
    bool classifier_tied_ = false;
    std::uint32_t feed_forward_from_ = 0;
    transform_report transforms_;
    // One layer at a time: the teacher views the input's mapping, and the candidates wait in a scratch file.
    bool streaming_ = false;
    std::size_t measure_rows_ = 0;
    std::vector<std::optional<io::scratch_file::extent>> factor_of_;   ///< per tensor, its input's GPTQ factor in the scratch file
    std::vector<std::vector<bool>> is_check_;                          ///< per tensor and candidate, an exact check of blockwise's fit
    std::map<std::string, const weight_matrix*, std::less<>> mapped_;  ///< the teacher's matrices by tensor name
    std::unique_ptr<io::scratch_file> scratch_;
    std::vector<std::vector<std::optional<io::scratch_file::extent>>> stored_;  ///< per tensor and candidate, where its bytes are
};

/// The data-free pipeline on the llama GGUF `in`, written to `out` (see the file comment). Every one of
/// `processes` calls it; they share the measurement, and the leading one writes `out` (the others return a
/// report with `written` false and nothing but the run's figures).
inline auto_report auto_quantize(const gguf::reader& in, const std::filesystem::path& out, const auto_quantize_options& o,
                                 const process_group& processes = single_process{}) {
    const auto start = std::chrono::steady_clock::now();
    auto analysis = sensitivity_analysis::reshaped(in, o);
    analysis.check_reachable(o);
    analysis.calibrate_and_measure(o, processes);
    auto_report report;
    if (processes.leads())
        report = analysis.quantize_to(out, o);
    else
        report.written = false;
    report.processes = processes.size();
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
}

}  // namespace cogqat
