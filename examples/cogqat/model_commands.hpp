#pragma once
// `cogqat convert`, `cogqat quantize`, `cogqat inspect` and the default job (no arguments).

#include <cogqat/cogqat.hpp>
#include <cogqat/io/gguf.hpp>
#include <cogqat/io/llama2c.hpp>
#include <cogqat/io/llama_gguf.hpp>
#include <cogqat/model/synthetic.hpp>
#include <cogqat/quant/gguf_quantize.hpp>

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

#include "json_output.hpp"

namespace cogqat::cli {

inline std::string shape_string(const std::vector<std::uint64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

inline std::string type_name(ggml_type t) { return std::string(info(t).name); }

/// "q6_K -> q8_0 -> f16 (rows of 172)" when the requested type did not fit, else the type alone.
inline std::string type_path(const tensor_report& t) {
    std::string s;
    for (auto refused : t.plan.refused) s += type_name(refused) + " -> ";
    s += type_name(t.plan.type);
    if (!t.plan.refused.empty()) s += " (rows of " + std::to_string(t.shape[0]) + ")";
    return s;
}

/// A progress bar on a terminal, one line per tensor otherwise; both on stderr.
class progress_printer {
public:
    explicit progress_printer(bool quiet) : quiet_(quiet), terminal_(::isatty(STDERR_FILENO) == 1) {}

    void operator()(const quantize_progress& p) const {
        if (quiet_) return;
        if (terminal_) {
            const std::size_t done = p.index + (p.done ? 1 : 0), width = 30;
            const std::size_t filled = p.count ? done * width / p.count : width;
            fmt::print(stderr, "\r[{}{}] {}/{} {:<40.40}", std::string(filled, '#'), std::string(width - filled, '.'), done, p.count, p.tensor.name);
            if (p.done && done == p.count) fmt::print(stderr, "\n");
            std::fflush(stderr);
        } else if (p.done) {
            fmt::print(stderr, "[{}/{}] {} {} {} -> {}\n", p.index + 1, p.count, p.tensor.name, shape_string(p.tensor.shape),
                       type_name(p.tensor.source_type), type_path(p.tensor));
        }
    }

private:
    bool quiet_;
    bool terminal_;
};

inline void print_report(const quantize_report& r, const std::string& output) {
    fmt::print("{:<28} {:>12} {:<6} {:>9} {:>6} {:>9}  {}\n", "tensor", "shape", "type", "bytes", "bpw", "rel RMSE", "rule");
    for (const auto& t : r.tensors) {
        fmt::print("{:<28} {:>12} {:<6} {:>9} {:>6.3f} {:>8.4f}%  {}{}\n", t.name, shape_string(t.shape), type_name(t.plan.type), t.bytes,
                   t.bits_per_weight, 100.0 * t.error.relative_rmse, t.plan.rule,
                   t.plan.refused.empty() ? std::string() : ", fallback " + type_path(t));
    }
    fmt::print("\n{}: {} tensors, {} weights, {} bytes of tensors ({} bytes on disk)\n", output, r.tensors.size(), r.elements, r.tensor_bytes,
               r.file_bytes);
    fmt::print("average {:.3f} bits per weight; memory reduction {:.1f}% against F16, {:.1f}% against F32; {} threads, {:.2f} s\n",
               r.bits_per_weight, 100.0 * r.reduction_vs_f16, 100.0 * r.reduction_vs_f32, r.threads, r.seconds);
}

inline json report_json(const quantize_report& r, const std::string& input, const std::string& output, const mix_policy& policy) {
    json tensors = json::array();
    for (const auto& t : r.tensors) {
        json fallbacks = json::array();
        for (auto f : t.plan.refused) fallbacks.push_back(type_name(f));
        json entry{{"name", t.name}, {"shape", t.shape}, {"source_type", type_name(t.source_type)}, {"requested_type", type_name(t.plan.requested)},
                   {"type", type_name(t.plan.type)}, {"refused_types", fallbacks}, {"rule", t.plan.rule}, {"elements", t.elements},
                   {"bytes", t.bytes}, {"bits_per_weight", t.bits_per_weight}};
        entry.update(metrics_json(t.error));
        tensors.push_back(entry);
    }
    return {{"input", input},
            {"output", output},
            {"preset", policy.preset.name},
            {"file_type", static_cast<std::uint32_t>(r.file_type)},
            {"threads", r.threads},
            {"seconds", r.seconds},
            {"tensor_count", r.tensors.size()},
            {"elements", r.elements},
            {"tensor_bytes", r.tensor_bytes},
            {"file_bytes", r.file_bytes},
            {"bits_per_weight", r.bits_per_weight},
            {"reduction_vs_f16", r.reduction_vs_f16},
            {"reduction_vs_f32", r.reduction_vs_f32},
            {"tensors", tensors}};
}

struct quantize_arguments {
    std::string input, output, preset = "default", json_file;
    std::vector<std::string> tensor_types;
    unsigned threads = 0;
    bool quiet = false;
};

inline int quantize_command(const quantize_arguments& a) {
    quantize_options options;
    options.policy.preset = find_preset(a.preset);
    for (const auto& rule : a.tensor_types) options.policy.overrides.push_back(parse_override(rule));
    options.threads = a.threads;
    const progress_printer progress(a.quiet);
    options.on_progress = std::ref(progress);
    const auto in = gguf::reader::open(a.input);
    const auto report = quantize_gguf(in, a.output, options);
    print_report(report, a.output);
    if (!a.json_file.empty()) write_json_file(a.json_file, report_json(report, a.input, a.output, options.policy));
    return 0;
}

inline int write_converted(const llama_weights& weights, const std::string& output, const std::string& type) {
    const ggml_type t = parse_type(type);
    if (t != ggml_type::f32 && t != ggml_type::f16 && t != ggml_type::bf16)
        throw invalid_argument_error("convert writes f32, f16 or bf16; use `cogqat quantize` for " + type);
    io::write_llama_gguf(weights, output, t);
    const auto& c = weights.config;
    fmt::print("{}: llama, dim {}, hidden {}, {} layers, {} heads ({} kv), vocab {}, context {}, {} tensors, {} bytes\n", output, c.dim, c.hidden_dim,
               c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.context_length, weights.tensors.size(), std::filesystem::file_size(output));
    return 0;
}

inline int convert_llama2c_command(const std::string& model, const std::string& tokenizer, const std::string& output, const std::string& type) {
    return write_converted(io::read_llama2c(model, tokenizer), output, type);
}

inline int convert_synthetic_command(std::uint64_t seed, const std::string& output, const std::string& type) {
    return write_converted(make_synthetic_llama(seed), output, type);
}

inline json value_json(const gguf::value& v) {
    if (v.type() == gguf::value_type::array) {
        const std::size_t n = v.array_size();
        json j{{"array_of", static_cast<std::uint32_t>(v.array_type())}, {"length", n}};
        j["preview"] = v.to_string();
        return j;
    }
    if (v.type() == gguf::value_type::string) return v.as_string();
    if (v.type() == gguf::value_type::boolean) return v.as<bool>();
    if (v.type() == gguf::value_type::float32) return v.as<float>();
    if (v.type() == gguf::value_type::float64) return v.as<double>();
    return v.to_string();
}

inline int inspect_command(const std::string& path, bool as_json) {
    const auto in = gguf::reader::open(path);
    if (as_json) {
        json metadata = json::object();
        for (const auto& [key, value] : in.metadata()) metadata[key] = value_json(value);
        json tensors = json::array();
        for (const auto& t : in.tensors())
            tensors.push_back({{"name", t.name}, {"shape", t.shape}, {"type", type_name(t.type)}, {"offset", t.offset}, {"bytes", t.bytes()}});
        print_json({{"file", path}, {"version", in.version()}, {"alignment", in.alignment()}, {"file_bytes", in.file_size()},
                    {"metadata", metadata}, {"tensors", tensors}});
        return 0;
    }
    fmt::print("{}: GGUF v{}, {} bytes, alignment {}, {} metadata keys, {} tensors\n\n", path, in.version(), in.file_size(), in.alignment(),
               in.metadata().size(), in.tensors().size());
    for (const auto& [key, value] : in.metadata()) fmt::print("{} = {}\n", key, value.to_string());
    fmt::print("\n{:<28} {:>14} {:<6} {:>10} {:>10}\n", "tensor", "shape", "type", "bytes", "offset");
    std::uint64_t total = 0;
    for (const auto& t : in.tensors()) {
        fmt::print("{:<28} {:>14} {:<6} {:>10} {:>10}\n", t.name, shape_string(t.shape), type_name(t.type), t.bytes(), t.offset);
        total += t.bytes();
    }
    fmt::print("\n{} bytes of tensor data\n", total);
    return 0;
}

/// The second half of the default job: the data-free path at the default policy's file size, so that the two
/// files compare at equal size (its own report says how close each stays to the F32 model).
inline int default_auto_job(const std::filesystem::path& out_dir, const std::string& name, const std::filesystem::path& f32,
                            const std::filesystem::path& same_size_as, unsigned threads, bool small_budget);

/// The default job: import stories260K from ../shared when it is there, else generate a small llama-shaped
/// model, write it as an F32 GGUF, and quantize that with the default policy into `out_dir`.
inline int default_job(const std::filesystem::path& out_dir, unsigned threads) {
    const auto model_dir = shared_dir() / "models" / "stories260K";
    llama_weights weights;
    std::error_code ec;
    bool generated = false;
    if (std::filesystem::exists(model_dir / "stories260K.bin", ec) && std::filesystem::exists(model_dir / "tok512.bin", ec)) {
        fmt::print("importing {}\n", (model_dir / "stories260K.bin").string());
        weights = io::read_llama2c(model_dir / "stories260K.bin", model_dir / "tok512.bin");
    } else {
        fmt::print("no shared models at {}: generating a small llama-shaped model\n", shared_dir().string());
        weights = make_synthetic_llama();
        generated = true;
    }
    std::filesystem::create_directories(out_dir);
    const auto f32 = out_dir / (weights.name + "-F32.gguf");
    const auto quantized = out_dir / (weights.name + "-default.gguf");
    io::write_llama_gguf(weights, f32);
    fmt::print("wrote {} ({} bytes)\nquantizing with the default policy: {}\n\n", f32.string(), std::filesystem::file_size(f32),
               find_preset("default").description);
    std::fflush(stdout);  // keep our lines ahead of the progress lines on stderr when both go to one file
    quantize_arguments a;
    a.input = f32.string();
    a.output = quantized.string();
    a.threads = threads;
    a.json_file = (out_dir / (weights.name + "-default.json")).string();
    if (const int status = quantize_command(a); status != 0) return status;
    return default_auto_job(out_dir, weights.name, f32, quantized, threads, generated);
}

} // namespace cogqat::cli
