// `cogqat quantize IN OUT`: a mixed-precision policy (quant/gguf_quantize.hpp), or with --auto the data-free
// pipeline of qat/auto_quantize.hpp; the report printed, and written as JSON (and HTML for --auto).

#include "quantize.hpp"

#include <cogqat/io/gguf.hpp>
#include <cogqat/io/imatrix_file.hpp>
#include <cogqat/qat/auto_quantize.hpp>
#include <cogqat/quant/gguf_quantize.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "commands.hpp"
#include "html_report.hpp"
#include "json_output.hpp"
#include "options.hpp"
#include "processes.hpp"
#include "terminal.hpp"
#include "text_output.hpp"
#include "transforms_output.hpp"

namespace cogqat::cli {

namespace {

/// "q6_K -> q8_0 -> f16 (rows of 172)" when the requested type did not fit, else the type alone.
std::string type_path(const tensor_report& t) {
    std::string s;
    for (auto refused : t.plan.refused) s += type_name(refused) + " -> ";
    s += type_name(t.plan.type);
    if (!t.plan.refused.empty()) s += " (rows of " + std::to_string(t.shape[0]) + ")";
    return s;
}

/// Progress on stderr: a bar on a terminal; otherwise a line per tensor with its types, and the meter's line
/// at least every 10 s (a large tensor) and at the end.
class progress_printer {
public:
    explicit progress_printer(bool quiet) : quiet_(quiet), meter_(quiet) {}

    void operator()(const quantize_progress& p) const {
        if (quiet_) return;
        if (p.done && !stderr_is_terminal())
            fmt::print(stderr, "[{}/{}] {} {} {} -> {}\n", p.index + 1, p.count, p.tensor.name, shape_text(p.tensor.shape),
                       type_name(p.tensor.source_type), type_path(p.tensor));
        meter_("quantize", p.index + (p.done ? 1 : 0), p.count, p.tensor.name, "tensors");
    }
    void finish() const { meter_.finish(); }

private:
    bool quiet_;
    phase_progress meter_;
};

/// The unit each phase of --auto counts.
std::string_view auto_unit(std::string_view phase) {
    if (phase == "sensitivity") return "candidates";
    if (phase == "progressive" || phase == "write") return "tensors";
    if (phase == "generate") return "tokens";
    if (phase == "checks") return "checks";
    return "steps";
}

void print_report(const quantize_report& r, const std::string& output) {
    fmt::print("{:<28} {:>12} {:<6} {:>9} {:>6} {:>9}  {}\n", "tensor", "shape", "type", "bytes", "bpw", "rel RMSE", "rule");
    for (const auto& t : r.tensors) {
        fmt::print("{:<28} {:>12} {:<6} {:>9} {:>6.3f} {:>8.4f}%  {}{}{}\n", t.name, shape_text(t.shape), type_name(t.plan.type), t.bytes,
                   t.bits_per_weight, 100.0 * t.error.relative_rmse, t.plan.rule,
                   t.plan.refused.empty() ? std::string() : ", fallback " + type_path(t),
                   t.importance == importance_origin::none ? std::string() : ", importance " + std::string(name_of(t.importance)));
    }
    std::size_t from_file = 0, data_free = 0;
    for (const auto& t : r.tensors) {
        from_file += t.importance == importance_origin::file;
        data_free += t.importance == importance_origin::data_free;
    }
    if (from_file) fmt::print("\nimportance matrix used for {} tensors\n", from_file);
    if (data_free)
        fmt::print(
                "\ndata-free importance for {} tensors whose types llama.cpp refuses without an imatrix (iq1_s, iq1_m, iq2_xxs, "
                "iq2_xs, iq2_s): computed from {} positions the model wrote itself (no text read; give --imatrix FILE to use another)\n",
                data_free, r.data_free_positions);
    fmt::print("\n{}: {} tensors, {} weights, {} bytes of tensors ({} bytes on disk)\n", r.files.empty() ? output : written_files(r.files),
               r.tensors.size(), r.elements, r.tensor_bytes, r.file_bytes);
    fmt::print("average {:.3f} bits per weight; memory reduction {:.1f}% against F16, {:.1f}% against F32; {} threads, {:.2f} s\n",
               r.bits_per_weight, 100.0 * r.reduction_vs_f16, 100.0 * r.reduction_vs_f32, r.threads, r.seconds);
}

json report_json(const quantize_report& r, const std::string& input, const std::string& output, const mix_policy& policy) {
    json tensors = json::array();
    for (const auto& t : r.tensors) {
        json fallbacks = json::array();
        for (auto f : t.plan.refused) fallbacks.push_back(type_name(f));
        json entry{{"name", t.name},
                   {"shape", t.shape},
                   {"source_type", type_name(t.source_type)},
                   {"requested_type", type_name(t.plan.requested)},
                   {"type", type_name(t.plan.type)},
                   {"refused_types", fallbacks},
                   {"rule", t.plan.rule},
                   {"importance", std::string(name_of(t.importance))},
                   {"elements", t.elements},
                   {"bytes", t.bytes},
                   {"bits_per_weight", t.bits_per_weight}};
        entry.update(metrics_json(t.error));
        tensors.push_back(entry);
    }
    return {{"input", input},
            {"output", output},
            {"files", files_json(r.files)},
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

json auto_report_json(const auto_report& r, const std::string& input, const std::string& output) {
    json tensors = json::array();
    for (const auto& t : r.tensors) {
        json candidates = json::array();
        for (const auto& c : t.candidates)
            candidates.push_back({{"type", type_name(c.type)},
                                  {"bytes", c.bytes},
                                  {"kl", c.kl},
                                  {"relative_rmse", c.relative_rmse},
                                  {"output_error", c.output_error},
                                  {"activation_error", c.activation_error}});
        tensors.push_back({{"name", t.name},
                           {"shape", t.shape},
                           {"elements", t.elements},
                           {"type", type_name(t.type)},
                           {"bytes", t.bytes},
                           {"bits_per_weight", t.elements ? 8.0 * static_cast<double>(t.bytes) / static_cast<double>(t.elements) : 0.0},
                           {"predicted_kl", t.predicted_kl},
                           {"relative_rmse", t.relative_rmse},
                           {"sensitivity", candidates}});
    }
    json steps = json::array();
    for (const auto& s : r.steps) {
        json step = score_json(s.score);
        step["tensor"] = s.tensor, step["type"] = type_name(s.type), step["undone"] = s.undone, step["reason"] = s.reason;
        steps.push_back(step);
    }
    json checks = json::array();
    for (const auto& c : r.sensitivity_checks)
        checks.push_back({{"tensor", c.tensor},
                          {"kind", c.kind},
                          {"layer", c.layer},
                          {"type", c.type},
                          {"output_error", c.output_error},
                          {"activation_error", c.activation_error},
                          {"kl", c.kl}});
    return {{"input", input},
            {"output", output},
            {"files", files_json(r.files)},
            {"mode", "auto"},
            {"sensitivity",
             {{"method", std::string(sensitivity_method_name(r.sensitivity))},
              {"checks", checks},
              {"layer_streamed", r.layer_streamed},
              {"processes", r.processes}}},
            {"progressive_note", r.progressive_note},
            {"calibration",
             {{"source", std::string(name_of(r.source))}, {"positions", r.calibration_positions}, {"teacher_nll", r.teacher_nll}}},
            {"reshape",
             {{"classifier_tied", r.classifier_tied}, {"feed_forward_from", r.feed_forward_from}, {"feed_forward_to", r.feed_forward_to}}},
            {"transforms", transforms_json(r.transforms)},
            {"parameters", r.parameters},
            {"stored_elements", r.stored_elements},
            {"budget_bytes", r.budget_bytes},
            {"budget_is_file_size", r.budget_is_file_size},
            {"budget_raised", r.budget_raised},
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

void print_auto_report(const auto_report& r, const std::string& output) {
    fmt::print("calibration: {} positions from '{}' (no text read); teacher NLL {:.4f}\n", r.calibration_positions, name_of(r.source),
               r.teacher_nll);
    if (r.classifier_tied) fmt::print("reshape: output.weight equals token_embd.weight, stored once (tied classifier)\n");
    if (r.feed_forward_to != r.feed_forward_from)
        fmt::print("reshape: feed-forward width {} padded to {} with zero units (exact), so ffn_down fits 32-value blocks\n",
                   r.feed_forward_from, r.feed_forward_to);
    print_transforms(r.transforms);
    if (r.budget_raised)
        fmt::print("size: the default target (75% smaller than F16) is out of reach for this model; the smallest possible size is taken\n");
    const bool blockwise = r.sensitivity == sensitivity_method::blockwise;
    fmt::print("\n{:<26} {:>6} {:>9} {:>6} {:>11}  sensitivity: {}\n", "tensor", "type", "bytes", "bpw", "pred. KL",
               blockwise ? fmt::format("KL predicted block-wise, tr(D H D^T) scaled by {} exact checks", r.sensitivity_checks.size())
                         : std::string("KL with only this tensor quantized"));
    for (const auto& t : r.tensors) {
        if (t.candidates.empty()) continue;
        std::string sens;
        for (const auto& c : t.candidates) sens += fmt::format(" {}={:.2e}", type_name(c.type), c.kl);
        fmt::print("{:<26} {:>6} {:>9} {:>6.2f} {:>11.3e} {}\n", t.name, type_name(t.type), t.bytes,
                   8.0 * static_cast<double>(t.bytes) / static_cast<double>(t.elements), t.predicted_kl, sens);
    }
    if (r.layer_streamed)
        fmt::print("measured one layer at a time (the model mapped, one layer's floats and inputs held; candidates in a scratch file)\n");
    if (r.processes > 1) fmt::print("measured by {} processes, each a share of the candidates and checks\n", r.processes);
    fmt::print("\nprogressive quantization, least sensitive first (KL and retention on the calibration set):{}\n",
               r.progressive_note.empty() ? "" : " " + r.progressive_note);
    for (std::size_t i = 0; i < r.steps.size(); ++i) {
        const auto& s = r.steps[i];
        fmt::print("  {:>2}. {:<26} {:<6} KL {:.5f} top-1 {:.2f}% retention {:.4f}{}\n", i + 1, s.tensor, type_name(s.type), s.score.kl,
                   100.0 * s.score.top1, s.score.retention(), s.reason.empty() ? "" : "  (" + s.reason + ")");
    }
    fmt::print(
            "\n{}: {} bytes ({} bytes of tensors, budget {} {}), {:.3f} bits per weight over {} weights, {:.2f}x smaller than F16 "
            "(memory reduction {:.1f}%)\n",
            r.files.empty() ? output : written_files(r.files), r.file_bytes, r.tensor_bytes, r.budget_bytes,
            r.budget_is_file_size ? "for the file" : "for the tensors", r.bits_per_weight, r.parameters, r.compression_vs_f16,
            100.0 * r.memory_reduction_vs_f16);
    fmt::print(
            "validation of the written file (activations quantized as llama.cpp does): KL {:.5f}, top-1 {:.2f}%, retention exp(-dNLL) "
            "{:.4f} "
            "(threshold {:.2f}: {}); predicted KL {:.5f}; {:.1f} s\n",
            r.validation.kl, 100.0 * r.validation.top1, r.validation.retention(), r.accuracy_threshold,
            r.meets_accuracy_threshold ? "met" : "NOT met", r.predicted_kl, r.seconds);
}

/// --auto's options as the library takes them; every value is checked here, before the model is read.
auto_quantize_options auto_options(const quantize_arguments& q, const auto_arguments& a, const phase_progress& progress) {
    auto_quantize_options o;
    if (a.target_bpw)
        o.target = size_target::bits(*a.target_bpw);
    else if (a.memory_reduction)
        o.target = size_target::reduction(*a.memory_reduction);
    else if (a.target_bytes)
        o.target = size_target::file(*a.target_bytes);
    else
        o.target = size_target::default_target();
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
    if (a.max_kl) o.max_kl = *a.max_kl;
    o.accuracy_threshold = a.accuracy_threshold;
    o.pad_feed_forward = !a.no_pad;
    o.drop_duplicate_classifier = !a.no_tie;
    o.hessian_aware = !a.no_gptq;
    o.sensitivity = parse_sensitivity_method(a.sensitivity);
    o.streaming = a.stream_layers == "on"    ? layer_streaming::one_layer
                  : a.stream_layers == "off" ? layer_streaming::whole_model
                                             : layer_streaming::automatic;
    o.check_tokens = a.check_tokens;
    o.transforms = transform_arguments(a.rotate, a.smooth, a.seed);
    o.threads = usable_threads(q.threads);
    o.split = q.split;
    o.on_progress = [progress](const auto_progress& p) { progress(p.phase, p.done, p.total, p.item, auto_unit(p.phase)); };
    return o;
}

}  // namespace

int run_quantize(const quantize_arguments& a) {
    quantize_options options;
    options.policy.preset = find_preset(a.preset);
    for (const auto& rule : a.tensor_types) options.policy.overrides.push_back(parse_override(rule));
    options.threads = usable_threads(a.threads);
    options.split = a.split;
    check_files({{"INPUT", a.input}, {"--imatrix", a.imatrix_file}}, {{"OUTPUT", a.output}, {"--json", a.json_file}});
    std::optional<importance_matrix> imatrix;
    if (!a.imatrix_file.empty()) {
        imatrix = io::read_imatrix(a.imatrix_file);
        options.importance = &*imatrix;
        options.importance_file = a.imatrix_file;
    }
    options.data_free_importance = calibration_options{};
    options.data_free_importance->source = parse_calibration_source(a.importance_calib);
    options.data_free_importance->tokens = a.importance_tokens;
    options.data_free_importance->seed = a.importance_seed;
    const progress_printer progress(a.quiet);
    options.on_progress = std::ref(progress);
    const auto in = gguf::reader::open(a.input);
    check_model_output(in.paths(), a.output, a.split);
    const auto report = quantize_gguf(in, a.output, options);
    progress.finish();
    print_report(report, a.output);
    if (!a.json_file.empty()) write_json_file(a.json_file, report_json(report, a.input, a.output, options.policy));
    return exit_success;
}

int run_auto_quantize(const quantize_arguments& q, const auto_arguments& a) {
    const auto& group = processes();
    const phase_progress progress(q.quiet || !group.leads());
    const auto options = auto_options(q, a, progress);
    check_files({{"INPUT", q.input}}, {{"OUTPUT", q.output}, {"--json", q.json_file}, {"--html", a.html_file}});
    const auto in = gguf::reader::open(q.input);
    check_model_output(in.paths(), q.output, q.split);
    const auto report = auto_quantize(in, q.output, options, group);
    progress.finish();
    if (!report.written) return exit_success;  // a rank that does not lead: the leading one reports
    print_auto_report(report, q.output);
    if (!q.json_file.empty()) write_json_file(q.json_file, auto_report_json(report, q.input, q.output));
    if (!a.html_file.empty()) write_html_report(a.html_file, report, q.input, q.output);
    return exit_success;
}

void add_quantize_command(command_line& app, command_list& commands) {
    auto q = std::make_shared<quantize_arguments>();
    auto a = std::make_shared<auto_arguments>();
    auto automatic = std::make_shared<bool>(false);
    auto quantize = app.subcommand("quantize", "Quantize a GGUF with a mixed-precision policy, or by measured sensitivity (--auto)");
    quantize.text("input", q->input, "GGUF to read (f32, f16, bf16 or already quantized tensors)").required();
    quantize.text("output", q->output, "GGUF to write").required();
    const auto preset = quantize.text("--preset", q->preset,
                                      "default, q2_k, q3_k_m, q4_k_s, q4_k_m, q5_k_s, q5_k_m, iq1_s, iq1_m, iq2_xxs, iq2_xs, iq2_s, "
                                      "iq2_m, iq3_xxs, iq3_xs, iq3_s, iq3_m, iq4_nl, iq4_xs, tq1_0, tq2_0, mxfp4_moe, or a type (q4_0, "
                                      "q6_K, mxfp4, iq2_xxs, f16, ...)");
    const auto rules =
            quantize.texts("--tensor-type", q->tensor_types, "REGEX=TYPE for the tensors whose name matches; first matching rule wins")
                    .take_all();
    const auto imatrix =
            quantize.text("--imatrix", q->imatrix_file,
                          "Importance matrix for the types that use it: llama.cpp's imatrix GGUF (as `cogqat imatrix` writes) or "
                          "its legacy .dat (default: none; the types llama.cpp refuses without one get a data-free one)");
    quantize.threads(q->threads);
    quantize.split(q->split);
    quantize.text("--json", q->json_file, "Also write the report as JSON to this file");
    quantize.flag("--quiet,-q", q->quiet, "No progress output");

    auto auto_flag =
            quantize.flag("--auto", *automatic, "Data-free: choose a type per tensor from measured sensitivity under a size target");
    auto_flag.excludes(preset).excludes(rules).excludes(imatrix);
    auto bpw = quantize.real("--target-bpw", a->target_bpw, {0.0, 32.0, true}, "--auto: average bits per weight of the tensors")
                       .needs(auto_flag);
    auto reduction = quantize.real("--memory-reduction", a->memory_reduction, {0.0, 0.999},
                                   "--auto: fraction saved against F16, e.g. 0.75 (default: 0.75, or the smallest possible size where that "
                                   "is out of reach)")
                             .needs(auto_flag);
    const auto bytes = quantize.whole("--target-bytes", a->target_bytes, 1, UINT64_MAX, "--auto: the written file's size at most, in bytes")
                               .needs(auto_flag);
    bpw.excludes(reduction).excludes(bytes);
    reduction.excludes(bytes);
    quantize.text("--calib", a->calib,
                  "--auto, and the data-free importance of the types that need one without --imatrix: calibration inputs: self "
                  "(text the model writes itself), random (tokens) or stats (hidden states)")
            .one_of({"self", "random", "stats"});
    quantize.whole("--calib-tokens", a->calib_tokens, 2, 1u << 20, "--auto and the data-free importance: calibration positions (2048)");
    quantize.texts("--candidates", a->candidates,
                   "--auto: the types to consider besides f16 (default: every 32- and 256-value weight type)")
            .list(',')
            .needs(auto_flag);
    quantize.whole("--seed", a->seed, 0, UINT64_MAX, "--auto and the data-free importance: calibration seed");
    quantize.real("--max-kl", a->max_kl, {0.0, 1e9}, "--auto: undo a progressive step whose KL exceeds this").needs(auto_flag);
    quantize.real("--accuracy-threshold", a->accuracy_threshold, {0.0, 1.0},
                  "--auto: undo a step whose retention exp(-dNLL) falls below this (default 0.98)")
            .needs(auto_flag);
    quantize.flag("--no-pad", a->no_pad, "--auto: do not pad the feed-forward width to whole blocks").needs(auto_flag);
    quantize.flag("--no-tie", a->no_tie, "--auto: keep an output.weight equal to token_embd.weight").needs(auto_flag);
    quantize.flag("--no-gptq", a->no_gptq, "--auto: ggml's reference rounding instead of the Hessian-aware one").needs(auto_flag);
    quantize.text("--sensitivity", a->sensitivity,
                  "--auto: how each candidate's KL is measured: exact (a whole-model forward per tensor and type), blockwise "
                  "(its Hessian-weighted output error, scaled to KL by a few exact checks; time linear in the model) or auto "
                  "(default: exact while parameters x calibration positions x candidates <= 1e12, else blockwise)")
            .one_of({"auto", "exact", "blockwise"})
            .needs(auto_flag);
    quantize.text("--stream-layers", a->stream_layers,
                  "--auto: measure one decoder layer at a time, the model mapped and never held whole (on), the whole model in "
                  "memory (off), or auto (default: on from 100M weights when blockwise, with no transform and no padding needed)")
            .one_of({"auto", "on", "off"})
            .needs(auto_flag);
    quantize.whole("--check-tokens", a->check_tokens, 1, 1u << 20,
                   "--auto one layer at a time: calibration positions blockwise's exact checks score on (default 512)")
            .needs(auto_flag);
    quantize.text("--rotate", a->rotate,
                  "--auto: rotate the residual stream exactly (norms folded first): none (default), hadamard (randomized Hadamard "
                  "where the width allows), random (random orthogonal) or heads (the value heads alone)")
            .one_of({"none", "hadamard", "random", "heads"})
            .needs(auto_flag);
    quantize.flag("--smooth", a->smooth,
                  "--auto: move per-channel scales exactly across the norms and through SwiGLU (chosen from calibration)")
            .needs(auto_flag);
    quantize.text("--html", a->html_file, "--auto: also write the report as a self-contained HTML page with charts").needs(auto_flag);
    commands.push_back({quantize,
                        [q, a, automatic] {
                            if (*automatic) return run_auto_quantize(*q, *a);
                            require_one_process();
                            q->importance_calib = a->calib, q->importance_tokens = a->calib_tokens, q->importance_seed = a->seed;
                            return run_quantize(*q);
                        },
                        true});
}

}  // namespace cogqat::cli
