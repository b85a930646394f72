#pragma once
// `cogqat quantize IN OUT --auto ...`: the data-free pipeline of qat/auto_quantize.hpp, its report printed,
// and optionally written as JSON and as an HTML page.

#include <cogqat/qat/auto_quantize.hpp>

#include <fmt/format.h>

#include <cstdio>
#include <optional>
#include <string>
#include <unistd.h>

#include "html_report.hpp"
#include "json_output.hpp"
#include "model_commands.hpp"

namespace cogqat::cli {

struct auto_arguments {
    std::optional<double> target_bpw, memory_reduction;
    std::optional<std::uint64_t> target_bytes;
    std::string calib = "self";
    std::size_t calib_tokens = 2048;
    std::uint64_t seed = 1;
    double max_kl = -1.0;  // unset
    double accuracy_threshold = 0.98;
    bool no_pad = false, no_tie = false, no_gptq = false;
    std::string html_file;
    std::vector<std::string> candidates;
};

inline json score_json(const calibration_score& s) {
    return {{"kl", s.kl}, {"top1", s.top1}, {"nll", s.nll}, {"delta_nll", s.delta_nll}, {"retention", s.retention()}};
}

inline json auto_report_json(const auto_report& r, const std::string& input, const std::string& output) {
    json tensors = json::array();
    for (const auto& t : r.tensors) {
        json candidates = json::array();
        for (const auto& c : t.candidates)
            candidates.push_back({{"type", type_name(c.type)}, {"bytes", c.bytes}, {"kl", c.kl}, {"relative_rmse", c.relative_rmse}});
        tensors.push_back({{"name", t.name}, {"shape", t.shape}, {"elements", t.elements}, {"type", type_name(t.type)}, {"bytes", t.bytes},
                           {"bits_per_weight", t.elements ? 8.0 * static_cast<double>(t.bytes) / static_cast<double>(t.elements) : 0.0},
                           {"predicted_kl", t.predicted_kl}, {"relative_rmse", t.relative_rmse}, {"sensitivity", candidates}});
    }
    json steps = json::array();
    for (const auto& s : r.steps) {
        json step = score_json(s.score);
        step["tensor"] = s.tensor, step["type"] = type_name(s.type), step["undone"] = s.undone, step["reason"] = s.reason;
        steps.push_back(step);
    }
    return {{"input", input},
            {"output", output},
            {"mode", "auto"},
            {"calibration", {{"source", std::string(name_of(r.source))}, {"positions", r.calibration_positions}, {"teacher_nll", r.teacher_nll}}},
            {"reshape", {{"classifier_tied", r.classifier_tied}, {"feed_forward_from", r.feed_forward_from}, {"feed_forward_to", r.feed_forward_to}}},
            {"parameters", r.parameters},
            {"stored_elements", r.stored_elements},
            {"budget_bytes", r.budget_bytes},
            {"budget_is_file_size", r.budget_is_file_size},
            {"tensor_bytes", r.tensor_bytes},
            {"file_bytes", r.file_bytes},
            {"bits_per_weight", r.bits_per_weight},
            {"compression_vs_f16", r.compression_vs_f16},
            {"memory_reduction_vs_f16", r.memory_reduction_vs_f16},
            {"predicted_kl", r.predicted_kl},
            {"progressive", score_json(r.progressive)},
            {"validation", score_json(r.validation)},
            {"accuracy_threshold", r.accuracy_threshold},
            {"meets_accuracy_threshold", r.meets_accuracy_threshold},
            {"error_histogram", r.error_histogram},
            {"seconds", r.seconds},
            {"tensors", tensors},
            {"steps", steps}};
}

inline void print_auto_report(const auto_report& r, const std::string& output) {
    fmt::print("calibration: {} positions from '{}' (no text read); teacher NLL {:.4f}\n", r.calibration_positions, name_of(r.source), r.teacher_nll);
    if (r.classifier_tied) fmt::print("reshape: output.weight equals token_embd.weight, stored once (tied classifier)\n");
    if (r.feed_forward_to != r.feed_forward_from)
        fmt::print("reshape: feed-forward width {} padded to {} with zero units (exact), so ffn_down fits 32-value blocks\n", r.feed_forward_from,
                   r.feed_forward_to);
    fmt::print("\n{:<26} {:>6} {:>9} {:>6} {:>11}  sensitivity: KL with only this tensor quantized\n", "tensor", "type", "bytes", "bpw", "pred. KL");
    for (const auto& t : r.tensors) {
        if (t.candidates.empty()) continue;
        std::string sens;
        for (const auto& c : t.candidates) sens += fmt::format(" {}={:.2e}", type_name(c.type), c.kl);
        fmt::print("{:<26} {:>6} {:>9} {:>6.2f} {:>11.3e} {}\n", t.name, type_name(t.type), t.bytes, 8.0 * static_cast<double>(t.bytes) / static_cast<double>(t.elements),
                   t.predicted_kl, sens);
    }
    fmt::print("\nprogressive quantization, least sensitive first (KL and retention on the calibration set):\n");
    for (std::size_t i = 0; i < r.steps.size(); ++i) {
        const auto& s = r.steps[i];
        fmt::print("  {:>2}. {:<26} {:<6} KL {:.5f} top-1 {:.2f}% retention {:.4f}{}\n", i + 1, s.tensor, type_name(s.type), s.score.kl, 100.0 * s.score.top1,
                   s.score.retention(), s.reason.empty() ? "" : "  (" + s.reason + ")");
    }
    fmt::print("\n{}: {} bytes ({} bytes of tensors, budget {} {}), {:.3f} bits per weight over {} weights, {:.2f}x smaller than F16 "
               "(memory reduction {:.1f}%)\n",
               output, r.file_bytes, r.tensor_bytes, r.budget_bytes, r.budget_is_file_size ? "for the file" : "for the tensors", r.bits_per_weight, r.parameters,
               r.compression_vs_f16, 100.0 * r.memory_reduction_vs_f16);
    fmt::print("validation of the written file (activations quantized as llama.cpp does): KL {:.5f}, top-1 {:.2f}%, retention exp(-dNLL) {:.4f} "
               "(threshold {:.2f}: {}); predicted KL {:.5f}; {:.1f} s\n",
               r.validation.kl, 100.0 * r.validation.top1, r.validation.retention(), r.accuracy_threshold, r.meets_accuracy_threshold ? "met" : "NOT met",
               r.predicted_kl, r.seconds);
}

inline int auto_quantize_command(const std::string& input, const std::string& output, unsigned threads, bool quiet, const std::string& json_file,
                                 const auto_arguments& a) {
    auto_quantize_options o;
    const int targets = (a.target_bpw ? 1 : 0) + (a.memory_reduction ? 1 : 0) + (a.target_bytes ? 1 : 0);
    if (targets > 1) throw invalid_argument_error("give one of --target-bpw, --memory-reduction and --target-bytes");
    if (a.target_bpw) o.target = size_target::bits(*a.target_bpw);
    if (a.memory_reduction) o.target = size_target::reduction(*a.memory_reduction);
    if (a.target_bytes) o.target = size_target::file(*a.target_bytes);
    if (targets == 0) o.target = size_target::reduction(0.75);
    o.calibration.source = parse_calibration_source(a.calib);
    o.calibration.tokens = a.calib_tokens;
    if (!a.candidates.empty()) {
        o.candidates.clear();
        for (const auto& name : a.candidates) {
            const ggml_type t = parse_type(name);
            if (!is_weight_type(t)) throw invalid_argument_error("--candidates: " + name + " is not a weight type");
            o.candidates.push_back(t);
        }
    }
    o.calibration.seed = a.seed;
    if (a.max_kl >= 0) o.max_kl = a.max_kl;
    o.accuracy_threshold = a.accuracy_threshold;
    o.pad_feed_forward = !a.no_pad;
    o.drop_duplicate_classifier = !a.no_tie;
    o.hessian_aware = !a.no_gptq;
    o.threads = threads;
    const bool terminal = ::isatty(STDERR_FILENO) == 1;
    o.on_progress = [&](const auto_progress& p) {
        if (quiet || p.total == 0) return;
        if (terminal) {
            fmt::print(stderr, "\r{:<12} {:>4}/{:<4} {:<30.30}", p.phase, p.done, p.total, p.item);
            if (p.done == p.total) fmt::print(stderr, "\n");
        } else if (p.done == p.total) {
            fmt::print(stderr, "{}: {} done\n", p.phase, p.total);
        }
        std::fflush(stderr);
    };
    const auto in = gguf::reader::open(input);
    const auto report = auto_quantize(in, output, o);
    print_auto_report(report, output);
    if (!json_file.empty()) write_json_file(json_file, auto_report_json(report, input, output));
    if (!a.html_file.empty()) write_html_report(a.html_file, report, input, output);
    return 0;
}

inline int default_auto_job(const std::filesystem::path& out_dir, const std::string& name, const std::filesystem::path& f32,
                            const std::filesystem::path& same_size_as, unsigned threads, bool small_budget) {
    const auto size = std::filesystem::file_size(same_size_as);
    fmt::print("\nthe data-free path at the same size ({} bytes): synthetic calibration, sensitivity, allocation\n\n", size);
    std::fflush(stdout);
    auto_arguments a;
    a.target_bytes = size;
    // The generated stand-in model is ten times larger and random: a short calibration and four types keep
    // the job to seconds; stories260K gets the full treatment.
    a.calib_tokens = small_budget ? 128 : 1024;
    if (small_budget) a.candidates = {"q4_0", "q8_0", "q4_K", "q6_K"};
    a.html_file = (out_dir / (name + "-auto.html")).string();
    const auto out = out_dir / (name + "-auto.gguf");
    const int status = auto_quantize_command(f32.string(), out.string(), threads, false, (out_dir / (name + "-auto.json")).string(), a);
    if (status == 0) fmt::print("report: {}\n", a.html_file);
    return status;
}

} // namespace cogqat::cli
