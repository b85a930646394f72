#pragma once
// The main job: read a GGUF, decide a type per tensor (mix_policy.hpp), quantize each tensor over several
// threads while streaming the new file, and report sizes and errors per tensor and in total.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/error_metrics.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/io/gguf.hpp"
#include "cogqat/quant/mix_policy.hpp"

namespace cogqat {

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
};

namespace detail {

/// Decodes any tensor cogqat can read into floats (f32 is copied; f16, bf16 and block formats dequantized).
inline std::vector<float> source_values(const gguf::reader& in, const gguf::tensor_info& t) {
    if (!is_quantizable(t.type)) {
        throw invalid_argument_error("tensor '" + t.name + "' is " + std::string(info(t.type).name) + ", which cogqat cannot read");
    }
    std::vector<float> values(static_cast<std::size_t>(t.elements()));
    dequantize(t.type, in.tensor_data(t), values);
    return values;
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
    report.tensors.resize(tensors.size());
    std::map<ggml_type, std::uint64_t> elements_by_type;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const auto& t = tensors[i];
        auto& r = report.tensors[i];
        r.name = t.name;
        r.shape = t.shape;
        r.source_type = t.type;
        r.elements = t.elements();
        r.plan = plan_tensor(t.name, t.shape.empty() ? 0 : t.shape[0], t.shape.size(), options.policy);
        r.bytes = storage_size(r.plan.type, static_cast<std::size_t>(r.elements));
        r.bits_per_weight = r.elements ? 8.0 * static_cast<double>(r.bytes) / static_cast<double>(r.elements) : 0.0;
        if (t.shape.size() >= 2) elements_by_type[r.plan.type] += r.elements;
        report.elements += r.elements;
        report.tensor_bytes += r.bytes;

        writer.add_tensor(t.name, t.shape, r.plan.type, [&, i](std::span<std::byte> bytes) {
            auto& tr = report.tensors[i];
            if (options.on_progress) options.on_progress({i, tensors.size(), tr, false});
            const auto values = detail::source_values(in, tensors[i]);
            if (values.empty()) return;
            detail::quantize_rows(tr.plan.type, values, tr.shape[0], bytes, report.threads, tr.name);
            std::vector<float> restored(values.size());
            parallel_for(values.size() / tr.shape[0], report.threads, [&](std::size_t begin, std::size_t end) {
                const std::size_t row = tr.shape[0], row_bytes = storage_size(tr.plan.type, row);
                dequantize(tr.plan.type, std::span<const std::byte>(bytes).subspan(begin * row_bytes, (end - begin) * row_bytes),
                           std::span<float>(restored).subspan(begin * row, (end - begin) * row));
            });
            tr.error = measure_error(values, restored);
            if (options.on_progress) options.on_progress({i, tensors.size(), tr, true});
        });
    }

    if (options.policy.preset.file_type) {
        report.file_type = *options.policy.preset.file_type;
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
