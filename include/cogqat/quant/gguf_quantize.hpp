#pragma once
// The main job: read a GGUF, decide a type per tensor (mix_policy.hpp), quantize each tensor over several
// threads while streaming the new file, and report sizes and errors per tensor and in total.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/calib/importance.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/error_metrics.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/io/gguf.hpp"
#include "cogqat/io/imatrix_file.hpp"
#include "cogqat/io/read_llama.hpp"
#include "cogqat/quant/mix_policy.hpp"

namespace cogqat {

/// Where a tensor's importance weights came from.
enum class importance_origin {
    none,       ///< quantized without
    file,       ///< the importance matrix given (quantize_options::importance)
    data_free,  ///< computed from the model itself, for a type llama.cpp refuses to write without
};

/// "none", "imatrix" or "data-free": for reports.
[[nodiscard]] constexpr std::string_view name_of(importance_origin o) noexcept {
    switch (o) {
        case importance_origin::file:
            return "imatrix";
        case importance_origin::data_free:
            return "data-free";
        case importance_origin::none:
            break;
    }
    return "none";
}

/// What happened to one tensor.
struct tensor_report {
    std::string name;
    std::vector<std::uint64_t> shape;
    ggml_type source_type = ggml_type::f32;
    tensor_plan plan;
    std::uint64_t elements = 0;
    std::uint64_t bytes = 0;
    double bits_per_weight = 0.0;
    error_metrics error;  ///< of the written tensor against the source values
    importance_origin importance = importance_origin::none;
};

/// What happened to the model.
struct quantize_report {
    std::vector<tensor_report> tensors;
    std::uint64_t elements = 0;
    std::uint64_t tensor_bytes = 0;            ///< sum of tensor data sizes
    std::uint64_t file_bytes = 0;              ///< size of the written file (of every shard of a split set)
    std::vector<std::filesystem::path> files;  ///< the files written: the output, or the shards of a split set
    double bits_per_weight = 0.0;              ///< 8 * tensor_bytes / elements
    double reduction_vs_f16 = 0.0;             ///< 1 - tensor_bytes / (2 * elements)
    double reduction_vs_f32 = 0.0;             ///< 1 - tensor_bytes / (4 * elements)
    llama_file_type file_type = llama_file_type::all_f32;
    unsigned threads = 1;
    double seconds = 0.0;
    std::size_t data_free_positions = 0;  ///< calibration positions run for a data-free importance (0: none computed)
};

/// Progress notifications: `done` is false when a tensor starts, true when it is written.
struct quantize_progress {
    std::size_t index;
    std::size_t count;
    const tensor_report& tensor;
    bool done;
};

struct quantize_options {
    mix_policy policy{find_preset("default"), {}};
    unsigned threads = 0;                                       ///< 0: one per hardware thread
    std::function<void(const quantize_progress&)> on_progress;  ///< may be empty
    gguf::split_limits split;                                   ///< active: write a split set (gguf/split.hpp)
    /// An importance matrix (io/imatrix_file.hpp) whose weights go to every type that uses them, as
    /// llama.cpp's quantize hands them to ggml_quantize_chunk; checked against the model first.
    const importance_matrix* importance = nullptr;
    std::string importance_file = "the importance matrix";  ///< its name in error messages
    /// For a tensor whose type llama.cpp refuses to write without an importance matrix (requires_importance_in_llama)
    /// and that has none: compute the data-free importance (calib/importance.hpp) with these options instead.
    /// Unset: refuse the types ggml itself cannot write without (iq2_xxs, iq2_xs, iq1_s; invalid_argument_error
    /// naming the tensor), and write iq2_s and iq1_m without, as ggml_quantize_chunk does.
    std::optional<calibration_options> data_free_importance;
};

/// The types llama.cpp's quantize refuses to write without an importance matrix: ggml's own three (iq2_xxs,
/// iq2_xs, iq1_s) and iq2_s, and iq1_m except for token_embd.weight and output.weight.
[[nodiscard]] inline bool requires_importance_in_llama(ggml_type type, std::string_view tensor) noexcept {
    using enum ggml_type;
    if (type == iq1_m) return tensor != "token_embd.weight" && tensor != "output.weight";
    return type == iq2_xxs || type == iq2_xs || type == iq2_s || type == iq1_s;
}

/// The model facts the presets' rules read (mix_context) from a llama GGUF's metadata: ARCH.block_count and
/// ARCH.attention.head_count / head_count_kv (1 where absent or not integers).
[[nodiscard]] inline mix_context mix_context_of(const gguf::reader& in, bool importance) {
    const auto* arch = in.find("general.architecture");
    const std::string prefix = arch && arch->type() == gguf::value_type::string ? arch->as_string() + "." : std::string("llama.");
    const auto integer = [&](const std::string& key) -> std::uint64_t {
        const auto* v = in.find(key);
        if (!v) return 0;
        switch (v->type()) {
            case gguf::value_type::uint32:
                return v->as<std::uint32_t>();
            case gguf::value_type::int32:
                return v->as<std::int32_t>() > 0 ? static_cast<std::uint64_t>(v->as<std::int32_t>()) : 0;
            case gguf::value_type::uint64:
                return v->as<std::uint64_t>();
            default:
                return 0;
        }
    };
    mix_context c;
    c.layers = static_cast<std::size_t>(integer(prefix + "block_count"));
    const std::uint64_t heads = integer(prefix + "attention.head_count"), kv = integer(prefix + "attention.head_count_kv");
    c.gqa = heads && kv ? static_cast<std::size_t>(heads / kv) : 1;
    c.importance = importance;
    return c;
}

namespace detail {

/// Floats that keep their pages from one tensor to the next, never zeroed: a fresh vector per tensor spent
/// as long zeroing and faulting in its pages as quantizing them.
struct float_buffer {
    std::unique_ptr<float[]> values;
    std::size_t size = 0;

    [[nodiscard]] std::span<float> first(std::size_t n) {
        if (n > size) values = std::make_unique_for_overwrite<float[]>(n), size = n;
        return {values.get(), n};
    }
};

/// Decodes any tensor cogqat can read into floats (f32 is copied; f16, bf16 and block formats dequantized),
/// rows over `threads`, into `buffer`.
inline std::span<const float> source_values(const gguf::reader& in, const gguf::tensor_info& t, float_buffer& buffer,
                                            unsigned threads = 1) {
    if (!is_quantizable(t.type)) {
        throw invalid_argument_error("tensor '" + t.name + "' is " + std::string(info(t.type).name) + ", which cogqat cannot read");
    }
    const auto elements = static_cast<std::size_t>(t.elements());
    const std::span<float> values = buffer.first(elements);
    const auto bytes = in.tensor_data(t);
    const std::size_t row = t.shape.empty() ? elements : static_cast<std::size_t>(t.shape[0]);
    const std::size_t rows = row ? elements / row : 0, row_bytes = storage_size(t.type, row);
    if (rows * row != elements || rows < 2) {
        dequantize(t.type, bytes, values);
        return values;
    }
    parallel_for(rows, threads, [&](std::size_t begin, std::size_t end) {
        dequantize(t.type, bytes.subspan(begin * row_bytes, (end - begin) * row_bytes), values.subspan(begin * row, (end - begin) * row));
    });
    return values;
}

/// The error of `bytes` (rows of `row` values at `type`) against `values`, decoded a piece of rows at a time
/// over `threads`: pieces of a fixed size, merged in order, so the figures do not depend on the threads.
inline error_metrics quantization_error(ggml_type type, std::span<const float> values, std::size_t row, std::span<const std::byte> bytes,
                                        unsigned threads) {
    const std::size_t rows = values.size() / row, row_bytes = storage_size(type, row);
    const std::size_t piece = std::max<std::size_t>(1, (std::size_t{1} << 16) / row);  // rows of about 64K values
    const std::size_t pieces = (rows + piece - 1) / piece;
    std::vector<error_accumulator> errors(pieces);
    parallel_for(pieces, threads, [&](std::size_t begin, std::size_t end) {
        std::vector<float> restored(piece * row);
        for (std::size_t p = begin; p < end; ++p) {
            const std::size_t first = p * piece, count = std::min(piece, rows - first);
            const std::span<float> decoded(restored.data(), count * row);
            dequantize(type, bytes.subspan(first * row_bytes, count * row_bytes), decoded);
            errors[p].add(values.subspan(first * row, count * row), decoded);
        }
    });
    error_accumulator all;
    for (const auto& e : errors) all.merge(e);
    return all.result();
}

inline void quantize_rows(ggml_type type, std::span<const float> values, std::uint64_t row_length, std::span<std::byte> out,
                          unsigned threads, const std::string& tensor_name) {
    const std::size_t rows = row_length ? values.size() / row_length : 0;
    const std::size_t row_bytes = storage_size(type, static_cast<std::size_t>(row_length));
    parallel_for(rows, threads, [&](std::size_t begin, std::size_t end) {
        const std::size_t first = begin * row_length;
        try {
            quantize(type, values.subspan(first, (end - begin) * row_length), out.subspan(begin * row_bytes, (end - begin) * row_bytes));
        } catch (const value_error& e) {
            const std::size_t at = first + e.index();
            throw value_error("tensor '" + tensor_name + "': element " + std::to_string(at) + " (row " + std::to_string(at / row_length) +
                                      ") is not finite",
                              at);
        }
    });
}

/// As above with importance weights: `weights` holds one per column of each matrix (ne[0] x ne[2], a
/// dense tensor being one matrix of `matrix_rows` rows).
inline void quantize_rows_weighted(ggml_type type, std::span<const float> values, std::uint64_t row_length, std::size_t matrix_rows,
                                   std::span<const float> weights, std::span<std::byte> out, unsigned threads,
                                   const std::string& tensor_name) {
    const std::size_t n = static_cast<std::size_t>(row_length);
    const std::size_t rows = n ? values.size() / n : 0;
    const std::size_t row_bytes = storage_size(type, n);
    const std::size_t matrices = n ? weights.size() / n : 0;
    parallel_for(rows, threads, [&](std::size_t begin, std::size_t end) {
        for (std::size_t r = begin; r < end;) {
            // Rows of one matrix at a time: they share its weights.
            const std::size_t matrix = r / matrix_rows, stop = std::min(end, (matrix + 1) * matrix_rows);
            try {
                quantize(type, values.subspan(r * n, (stop - r) * n), n, weights.subspan(matrix % matrices * n, n),
                         out.subspan(r * row_bytes, (stop - r) * row_bytes));
            } catch (const value_error& e) {
                throw value_error(
                        "tensor '" + tensor_name + "', rows " + std::to_string(r) + " to " + std::to_string(stop - 1) + ": " + e.what(),
                        r * n + e.index());
            }
            r = stop;
        }
    });
}

/// Plans every tensor (report.tensors[i].plan and its name, shape and sizes) and chooses its importance
/// weights: the given matrix's for the types that use them, else the data-free ones where llama.cpp would
/// refuse to quantize without (computed once, only when some tensor needs them). Empty where none.
inline std::vector<std::vector<float>> plan_importance(const gguf::reader& in, const quantize_options& options, const mix_policy& policy,
                                                       quantize_report& report) {
    const auto& tensors = in.tensors();
    std::vector<std::vector<float>> weights(tensors.size());
    std::vector<std::size_t> wanting;  // tensors that need data-free weights
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const auto& t = tensors[i];
        auto& r = report.tensors[i];
        r.name = t.name;
        r.shape = t.shape;
        r.source_type = t.type;
        r.elements = t.elements();
        r.plan = plan_tensor(t.name, t.shape.empty() ? 0 : t.shape[0], t.shape.size(), policy);
        const importance_entry* entry = options.importance ? options.importance->find(t.name) : nullptr;
        if (entry && uses_importance(r.plan.type)) {
            weights[i] = importance_weights(*entry, options.importance->legacy);
            r.importance = importance_origin::file;
        } else if (!entry && t.shape.size() >= 2 && requires_importance_in_llama(r.plan.type, t.name)) {
            if (options.data_free_importance)
                wanting.push_back(i);
            else if (requires_importance(r.plan.type))  // ggml's own three; iq2_s and iq1_m it writes without
                throw invalid_argument_error(
                        "tensor '" + t.name + "': " + std::string(info(r.plan.type).name) +
                        " needs an importance matrix (llama.cpp refuses it without one) and " +
                        (options.importance ? options.importance_file + " has no entry for it" : std::string("none was given")));
        }
    }
    if (wanting.empty()) return weights;
    const auto model = io::read_llama_model(in);
    const auto computed = compute_importance(model, *options.data_free_importance, options.threads);
    report.data_free_positions = static_cast<std::size_t>(computed.entries.empty() ? 0 : computed.entries.begin()->second.counts[0]);
    for (const std::size_t i : wanting) {
        auto& r = report.tensors[i];
        if (const auto* entry = computed.find(r.name)) {
            weights[i] = importance_weights(*entry, false);
            r.importance = importance_origin::data_free;
        } else if (requires_importance(r.plan.type)) {
            throw invalid_argument_error("tensor '" + r.name + "': " + std::string(info(r.plan.type).name) +
                                         " needs importance weights, and the tensor is not a matrix the model multiplies by (no data-free "
                                         "importance); choose another type for it");
        }
    }
    return weights;
}

}  // namespace detail

/// Quantizes the model in `in` into `out` with `options.policy`. Metadata is copied, general.file_type and
/// general.quantization_version are set as llama.cpp expects. The output appears only once complete.
inline quantize_report quantize_gguf(const gguf::reader& in, const std::filesystem::path& out, const quantize_options& options) {
    const auto start = std::chrono::steady_clock::now();
    quantize_report report;
    report.threads = resolve_threads(options.threads);

    gguf::writer writer(out);
    writer.set_split(options.split);
    for (const auto& [key, value] : in.metadata()) {
        if (key == "general.file_type" || key == "general.quantization_version") continue;
        writer.set(key, value);
    }

    const auto& tensors = in.tensors();
    if (options.importance) io::check_imatrix_against(*options.importance, tensors, options.importance_file);
    mix_policy policy = options.policy;
    policy.context = mix_context_of(in, options.importance != nullptr);
    report.tensors.resize(tensors.size());
    const auto weights = detail::plan_importance(in, options, policy, report);
    std::map<ggml_type, std::uint64_t> elements_by_type;
    detail::float_buffer buffer;  // each tensor's floats in turn
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const auto& t = tensors[i];
        auto& r = report.tensors[i];
        r.bytes = storage_size(r.plan.type, static_cast<std::size_t>(r.elements));
        r.bits_per_weight = r.elements ? 8.0 * static_cast<double>(r.bytes) / static_cast<double>(r.elements) : 0.0;
        if (t.shape.size() >= 2) elements_by_type[r.plan.type] += r.elements;
        report.elements += r.elements;
        report.tensor_bytes += r.bytes;

        writer.add_tensor(t.name, t.shape, r.plan.type, [&, i](std::span<std::byte> bytes) {
            auto& tr = report.tensors[i];
            if (options.on_progress) options.on_progress({i, tensors.size(), tr, false});
            const auto values = detail::source_values(in, tensors[i], buffer, report.threads);
            in.release_pages(tensors[i]);  // read once: its input pages need not stay resident (llama.cpp unmaps them too)
            if (values.empty()) return;
            if (weights[i].empty())
                detail::quantize_rows(tr.plan.type, values, tr.shape[0], bytes, report.threads, tr.name);
            else
                detail::quantize_rows_weighted(tr.plan.type, values, tr.shape[0],
                                               static_cast<std::size_t>(tr.shape.size() > 1 ? tr.shape[1] : 1), weights[i], bytes,
                                               report.threads, tr.name);
            // The error, decoded a piece of rows at a time: a second copy of the largest tensor in float would be
            // half the command's memory.
            tr.error = detail::quantization_error(tr.plan.type, values, static_cast<std::size_t>(tr.shape[0]), bytes, report.threads);
            if (options.on_progress) options.on_progress({i, tensors.size(), tr, true});
        });
    }

    if (policy.preset.file_type) {
        report.file_type = *policy.preset.file_type;
    } else {
        ggml_type most = ggml_type::f32;
        std::uint64_t best = 0;
        for (const auto& [type, count] : elements_by_type)
            if (count > best) best = count, most = type;
        report.file_type = file_type_for(most);
    }
    writer.set("general.quantization_version", gguf::value(std::uint32_t{2}));
    writer.set("general.file_type", gguf::value(static_cast<std::uint32_t>(report.file_type)));
    writer.finish();

    report.file_bytes = writer.written_bytes();
    report.files = writer.output_paths();
    if (report.elements) {
        const double n = static_cast<double>(report.elements), bytes = static_cast<double>(report.tensor_bytes);
        report.bits_per_weight = 8.0 * bytes / n;
        report.reduction_vs_f16 = 1.0 - bytes / (2.0 * n);
        report.reduction_vs_f32 = 1.0 - bytes / (4.0 * n);
    }
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
}

}  // namespace cogqat
