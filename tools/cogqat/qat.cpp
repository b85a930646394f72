// `cogqat qat IN OUT ...`: data-free quantization-aware training (qat/qat_pipeline.hpp), with a progress
// bar, a checkpoint a rerun resumes from, and the report in the terminal, as JSON and as an HTML page.

#include <cogqat/io/gguf.hpp>
#include <cogqat/qat/blockwise_qat.hpp>
#include <cogqat/qat/qat_pipeline.hpp>

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

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

struct qat_arguments {
    std::string input, output;
    std::string preset = "q4_0";
    std::vector<std::string> tensor_types;
    bool automatic = false;
    std::optional<double> target_bpw, memory_reduction;
    std::optional<std::uint64_t> target_bytes;
    qat_config config;
    std::string init = "gptq";
    std::string rotate = "none";
    bool smooth = false;
    std::string checkpoint;      // default: OUT.ckpt
    std::size_t stop_after = 0;  // stop this invocation after N steps (0: run to the end)
    bool quiet = false;
    std::string json_file, html_file;
    bool blockwise = false;
    blockwise_qat_config layered;  // --blockwise: its own defaults where qat's would not suit
    std::optional<option> batch_option, samples_option, warmup_option;
};

/// What both QAT reports say alike: the files, the data, the reshaping, the sizes, the score and the tensors.
template <class Report>
json trained_model_json(const Report& r, const std::string& input, const std::string& output, std::string_view mode) {
    json tensors = json::array();
    for (const auto& t : r.tensors)
        tensors.push_back({{"name", t.name}, {"shape", t.shape}, {"type", type_name(t.type)}, {"bytes", t.bytes}, {"rule", t.rule}});
    return {{"input", input},
            {"output", output},
            {"files", files_json(r.files)},
            {"mode", mode},
            {"data",
             {{"source", "self"},
              {"training_positions", r.training_positions},
              {"validation_positions", r.validation_positions},
              {"teacher_nll", r.teacher_nll}}},
            {"reshape",
             {{"classifier_tied", r.classifier_tied}, {"feed_forward_from", r.feed_forward_from}, {"feed_forward_to", r.feed_forward_to}}},
            {"parameters", r.parameters},
            {"tensor_bytes", r.tensor_bytes},
            {"file_bytes", r.file_bytes},
            {"bits_per_weight", r.bits_per_weight},
            {"compression_vs_f16", r.compression_vs_f16},
            {"memory_reduction_vs_f16", r.memory_reduction_vs_f16},
            {"after", score_json(r.after)},
            {"accuracy_threshold", r.accuracy_threshold},
            {"meets_accuracy_threshold", r.meets_accuracy_threshold},
            {"completed", r.completed},
            {"seconds", r.seconds},
            {"tensors", tensors}};
}

json qat_report_json(const qat_report& r, const std::string& input, const std::string& output, const qat_config& c) {
    json order = json::array();
    for (const auto& u : r.order) order.push_back({{"unit", u.name}, {"kl", u.kl}});
    json curve = json::array();
    for (const auto& p : r.curve)
        curve.push_back({{"step", p.step},
                         {"loss", p.loss},
                         {"kl", p.kl},
                         {"learning_rate", p.learning_rate},
                         {"phase", p.progressive ? "progressive" : "fine-tune"}});
    json report = trained_model_json(r, input, output, "qat");
    report["settings"] = {{"steps", c.steps},
                          {"steps_per_unit", c.steps_per_unit},
                          {"batch", c.batch},
                          {"sequence_length", c.sequence_length},
                          {"samples", c.samples},
                          {"learning_rate", c.optimizer.learning_rate},
                          {"scale_learning_rate", c.optimizer.scale_learning_rate},
                          {"kl_weight", c.kl_weight},
                          {"temperature", c.temperature},
                          {"seed", c.seed},
                          {"init", c.init == qat_init::gptq ? "gptq" : "reference"}};
    report["transforms"] = transforms_json(r.transforms);
    report["before"] = score_json(r.before);
    report["steps_total"] = r.steps_total;
    report["steps_done"] = r.steps_done;
    report["resumed_from"] = r.resumed_from;
    report["order"] = order;
    report["curve"] = curve;
    return report;
}

/// Loss and KL along the steps (log scale), the progressive phase shaded.
std::string loss_chart(const qat_report& r) {
    using namespace html;
    if (r.curve.empty()) return note("No training step ran in this invocation.");
    double lo = INFINITY, hi = 0.0;
    std::size_t progressive_end = 0;
    for (const auto& p : r.curve) {
        for (double v : {p.loss, p.kl})
            if (v > 0.0) lo = std::min(lo, v), hi = std::max(hi, v);
        if (p.progressive) progressive_end = p.step + 1;
    }
    const axis steps = make_axis(static_cast<double>(r.curve.front().step), static_cast<double>(r.curve.back().step + 1), false, true);
    svg_chart c(chart_width, 320, 64, steps, make_axis(lo, hi, true));
    if (progressive_end > r.curve.front().step)
        c.add(R"(<rect class="stripe" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}"/>)", c.x(steps.lo), c.y(hi),
              c.x(static_cast<double>(progressive_end)) - c.x(steps.lo), c.y(lo) - c.y(hi));
    c.x_axis("step (shaded: progressive quantization, unit by unit; then global fine-tuning)");
    c.y_axis("nats per position (log)");
    auto series = [&](auto value, std::string_view colour) {
        std::string points;
        for (const auto& p : r.curve) points += fmt::format("{:.1f},{:.1f} ", c.x(static_cast<double>(p.step)), c.y(value(p)));
        c.add(R"(<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>)", colour, points);
    };
    series([](const qat_curve_point& p) { return p.loss; }, "#2563eb");
    series([](const qat_curve_point& p) { return p.kl; }, "#d62728");
    return c.str() + R"(<div class="legend"><span><i class="chip" style="background:#2563eb"></i>distillation loss</span>)"
                     R"(<span><i class="chip" style="background:#d62728"></i>KL(teacher ‖ student) at T = 1</span></div>)";
}

void write_qat_html(const std::filesystem::path& path, const qat_report& r, const std::string& input, const std::string& output) {
    using namespace html;
    std::string page = page_start("cogqat qat: " + output, "Data-free quantization-aware training",
                                  fmt::format("{} → {} ({} s, steps {}–{} of {})", esc(input), esc(output), num("{:.1f}", r.seconds),
                                              r.resumed_from, r.steps_done, r.steps_total));
    const bool met = r.meets_accuracy_threshold;
    page += R"(<div class="tiles">)" +
            tile("File", bytes_text(r.file_bytes), fmt::format("{} bytes; tensors {}", grouped(r.file_bytes), bytes_text(r.tensor_bytes))) +
            tile("Bits per weight", num("{:.3f}", r.bits_per_weight),
                 fmt::format("over {} weights; {}× smaller than F16", grouped(r.parameters), num("{:.2f}", r.compression_vs_f16))) +
            tile("KL before → after training", num("{:.5f}", r.before.kl) + " → " + num("{:.5f}", r.after.kl),
                 "held-out self-generated text, activations quantized as llama.cpp does") +
            tile("Top-1 agreement", num("{:.2f}%", 100.0 * r.before.top1) + " → " + num("{:.2f}%", 100.0 * r.after.top1),
                 "with the full-precision teacher") +
            tile("Retention exp(−ΔNLL)", num("{:.4f}", r.after.retention()),
                 fmt::format("threshold {}: {}", num("{:g}", r.accuracy_threshold), met ? "met" : "NOT met"), met ? "good" : "bad") +
            tile("Data", fmt::format("{} positions", grouped(r.training_positions)), "sequences the teacher wrote itself; no text read") +
            "</div>";
    page += section("Loss curve", "The distillation loss (kl_weight · T² · KL_T + (1 − kl_weight) · CE) and the plain KL at every step.",
                    loss_chart(r));
    std::string rows;
    for (std::size_t i = 0; i < r.order.size(); ++i)
        rows += fmt::format(R"(<tr><td>{}</td><td class="l">{}</td><td>{}</td></tr>)", i + 1, esc(r.order[i].name),
                            num("{:.3e}", r.order[i].kl));
    page += section("Quantization order", "Least sensitive first: the KL with only that unit rounded, before any training.",
                    table({"#", "<unit", "KL"}, rows));
    rows.clear();
    for (const auto& t : r.tensors) {
        rows += fmt::format(
                R"(<tr><td class="l">{}</td><td class="l">{}</td><td class="l"><i class="chip" style="background:{}"></i>{}</td><td>{}</td><td class="l">{}</td></tr>)",
                esc(t.name), shape_label(t.shape), type_colour(t.type), type_label(t.type), grouped(t.bytes), esc(t.rule));
    }
    page += section("Tensors", "", table({"<tensor", "<shape", "<type", "bytes", "<why"}, rows));
    page += "</main></body></html>\n";
    io::write_file_atomically(path, std::as_bytes(std::span(page.data(), page.size())));
}

void print_qat_report(const qat_report& r, const std::string& output) {
    fmt::print("data: {} training and {} held-out positions the teacher wrote itself (no text read); teacher NLL {:.4f}\n",
               r.training_positions, r.validation_positions, r.teacher_nll);
    if (r.classifier_tied) fmt::print("reshape: output.weight equals token_embd.weight, stored once (tied classifier)\n");
    if (r.feed_forward_to != r.feed_forward_from)
        fmt::print("reshape: feed-forward width {} padded to {} with zero units (exact)\n", r.feed_forward_from, r.feed_forward_to);
    print_transforms(r.transforms);
    fmt::print("order (least sensitive first):");
    for (const auto& u : r.order) fmt::print(" {} ({:.2e})", u.name, u.kl);
    fmt::print("\n\n{:<26} {:>6} {:>9}  why\n", "tensor", "type", "bytes");
    for (const auto& t : r.tensors)
        if (t.shape.size() >= 2) fmt::print("{:<26} {:>6} {:>9}  {}\n", t.name, type_name(t.type), t.bytes, t.rule);
    if (!r.curve.empty()) {
        double best = r.curve.front().kl;
        for (const auto& p : r.curve) best = std::min(best, p.kl);
        fmt::print("\ntraining: steps {}..{} of {}; KL on the batch {:.5f} at the first, {:.5f} at the last (lowest {:.5f})\n",
                   r.resumed_from + 1, r.steps_done, r.steps_total, r.curve.front().kl, r.curve.back().kl, best);
    }
    if (!r.completed) {
        fmt::print("stopped after step {} of {}: the checkpoint holds the run; rerun the same command to continue\n", r.steps_done,
                   r.steps_total);
        return;
    }
    fmt::print("\n{}: {} bytes ({} bytes of tensors), {:.3f} bits per weight over {} weights, {:.2f}x smaller than F16\n",
               r.files.empty() ? output : written_files(r.files), r.file_bytes, r.tensor_bytes, r.bits_per_weight, r.parameters,
               r.compression_vs_f16);
    fmt::print(
            "held-out KL {:.5f} -> {:.5f}, top-1 {:.2f}% -> {:.2f}%, retention exp(-dNLL) {:.4f} -> {:.4f} (threshold {:.2f}: {}); {:.1f} "
            "s\n",
            r.before.kl, r.after.kl, 100.0 * r.before.top1, 100.0 * r.after.top1, r.before.retention(), r.after.retention(),
            r.accuracy_threshold, r.meets_accuracy_threshold ? "met" : "NOT met", r.seconds);
}

json blockwise_report_json(const blockwise_qat_report& r, const std::string& input, const std::string& output,
                           const blockwise_qat_config& c) {
    json layers = json::array();
    for (const auto& l : r.layers)
        layers.push_back({{"layer", l.layer},
                          {"error_before", l.error_before},
                          {"error_after", l.error_after},
                          {"first_loss", l.first_loss},
                          {"last_loss", l.last_loss},
                          {"seconds", l.seconds}});
    json report = trained_model_json(r, input, output, "qat-blockwise");
    report["processes"] = r.processes;
    report["settings"] = {{"steps_per_layer", c.steps_per_layer},
                          {"batch", c.batch},
                          {"gradient_groups", c.gradient_groups},
                          {"sequence_length", c.sequence_length},
                          {"samples", c.samples},
                          {"learning_rate", c.optimizer.learning_rate},
                          {"scale_learning_rate", c.optimizer.scale_learning_rate},
                          {"warmup", c.optimizer.warmup_steps},
                          {"seed", c.seed},
                          {"init", c.init == qat_init::gptq ? "gptq" : "reference"},
                          {"end_to_end_steps", c.end_to_end_steps},
                          {"end_to_end_lr", c.end_to_end_lr}};
    report["resumed_from_layer"] = r.resumed_from_layer;
    const auto& e = r.end_to_end;
    report["end_to_end"] = {{"steps", e.steps},
                            {"parameters", e.parameters},
                            {"first_loss", e.first_loss},
                            {"last_loss", e.last_loss},
                            {"memory_per_layer", e.memory.per_layer},
                            {"memory_once", e.memory.once},
                            {"memory_total", e.memory.total},
                            {"seconds", e.seconds}};
    report["layers"] = layers;
    return report;
}

void print_blockwise_report(const blockwise_qat_report& r, const std::string& output) {
    fmt::print("data: {} training positions the teacher wrote itself (no text read); {} process{}\n", r.training_positions, r.processes,
               r.processes == 1 ? "" : "es");
    fmt::print("\n{:<8} {:>12} {:>12} {:>12} {:>12} {:>8}\n", "layer", "error before", "error after", "first loss", "last loss", "s");
    for (const auto& l : r.layers)
        fmt::print("blk.{:<4} {:>12.5f} {:>12.5f} {:>12.5f} {:>12.5f} {:>8.1f}\n", l.layer, l.error_before, l.error_after, l.first_loss,
                   l.last_loss, l.seconds);
    fmt::print("(error: the layer's output error on the training positions relative to what the layer adds to the stream)\n");
    if (const auto& e = r.end_to_end; e.steps)
        fmt::print(
                "end-to-end: {} steps over {} block scales and mins, KL of the step's batch {:.5f} -> {:.5f}; held {:.1f} KiB per layer "
                "+ {:.1f} MiB; {:.1f} s\n",
                e.steps, e.parameters, e.first_loss, e.last_loss, static_cast<double>(e.memory.per_layer) / 1024.0,
                static_cast<double>(e.memory.once) / (1024.0 * 1024.0), e.seconds);
    if (!r.completed) {
        fmt::print("stopped: the checkpoint holds the finished layers; rerun the same command to continue\n");
        return;
    }
    fmt::print("\n{:<26} {:>6} {:>9}  why\n", "tensor", "type", "bytes");
    for (const auto& t : r.tensors)
        if (t.shape.size() >= 2) fmt::print("{:<26} {:>6} {:>9}  {}\n", t.name, type_name(t.type), t.bytes, t.rule);
    fmt::print("\n{}: {} bytes ({} bytes of tensors), {:.3f} bits per weight over {} weights, {:.2f}x smaller than F16\n",
               r.files.empty() ? output : written_files(r.files), r.file_bytes, r.tensor_bytes, r.bits_per_weight, r.parameters,
               r.compression_vs_f16);
    fmt::print("held-out KL {:.5f}, top-1 {:.2f}%, retention exp(-dNLL) {:.4f} (threshold {:.2f}: {}); {:.1f} s\n", r.after.kl,
               100.0 * r.after.top1, r.after.retention(), r.accuracy_threshold, r.meets_accuracy_threshold ? "met" : "NOT met", r.seconds);
}

/// --blockwise: the shared options where given, the block-wise defaults otherwise.
blockwise_qat_config configure_blockwise(const qat_arguments& a) {
    const qat_config& q = a.config;
    blockwise_qat_config c = a.layered;
    c.types = mix_policy{find_preset(a.preset), {}};
    for (const auto& rule : a.tensor_types) c.types.overrides.push_back(parse_override(rule));
    if (a.batch_option && a.batch_option->given()) c.batch = q.batch;
    if (a.samples_option && a.samples_option->given()) c.samples = q.samples;
    if (a.warmup_option && a.warmup_option->given()) c.optimizer.warmup_steps = q.optimizer.warmup_steps;
    c.gradient_groups = std::min(c.gradient_groups, c.batch);
    c.sequence_length = q.sequence_length;
    c.optimizer.learning_rate = q.optimizer.learning_rate;
    c.optimizer.scale_learning_rate = q.optimizer.scale_learning_rate;
    c.optimizer.gradient_clip = q.optimizer.gradient_clip;
    c.accuracy_threshold = q.accuracy_threshold;
    c.seed = q.seed;
    c.init = a.init == "reference" ? qat_init::reference : qat_init::gptq;
    c.checkpoint = a.checkpoint.empty() ? std::filesystem::path(a.output + ".ckpt") : std::filesystem::path(a.checkpoint);
    c.keep_checkpoint = q.keep_checkpoint;
    c.split = q.split;
    c.threads = usable_threads(q.threads);
    return c;
}

int run_blockwise(const qat_arguments& a) {
    const blockwise_qat_config c = configure_blockwise(a);
    const auto& group = processes();
    const bool leads = group.leads();
    check_files({{"INPUT", a.input}}, {{"OUTPUT", a.output}, {"--json", a.json_file}});
    // The block-wise checkpoint is a directory of files, one per finished layer.
    if (std::error_code ec; std::filesystem::exists(c.checkpoint, ec) && !std::filesystem::is_directory(c.checkpoint, ec))
        throw invalid_argument_error("--checkpoint '" + c.checkpoint.string() +
                                     "' exists and is not a directory (a block-wise checkpoint is a directory, a file per layer)");
    const phase_progress meter(a.quiet || !leads, 72);
    std::size_t layers_run = 0;
    auto progress = [&](const blockwise_progress& p) {
        if (p.phase == "round") {
            meter(fmt::format("blk.{} rounding", p.layer), p.done, p.total, "", "tensors");
            return true;
        }
        if (p.phase == "layer") {
            meter(fmt::format("blk.{}", p.layer), p.done, p.total, fmt::format("loss {:.5f}", p.loss));
            if (p.done == p.total) ++layers_run;
            return a.stop_after == 0 || layers_run < a.stop_after;
        }
        if (p.phase == "end-to-end") {
            meter("end-to-end", p.done, p.total, fmt::format("KL {:.5f}", p.loss));
            return true;
        }
        meter(p.phase, p.done, p.total, "", p.phase == "generate" ? "tokens" : "steps");
        return true;
    };
    const auto in = gguf::reader::open(a.input);
    check_model_output(in.paths(), a.output, c.split);
    const auto report = blockwise_quantization_aware_training(in, a.output, c, progress, group);
    meter.finish();
    if (!leads) return exit_success;
    if (report.resumed_from_layer) fmt::print("resumed from {} after layer {}\n", c.checkpoint.string(), report.resumed_from_layer);
    print_blockwise_report(report, a.output);
    if (!report.checkpoint_note.empty()) fmt::print(stderr, "cogqat: note: {}\n", report.checkpoint_note);
    if (!a.json_file.empty()) write_json_file(a.json_file, blockwise_report_json(report, a.input, a.output, c));
    return exit_success;
}

/// The run's configuration from the arguments; every value is checked here, before the model is read.
qat_config configure(const qat_arguments& a) {
    qat_config c = a.config;
    c.automatic_types = a.automatic;
    if (a.target_bpw) c.target = size_target::bits(*a.target_bpw);
    if (a.memory_reduction) c.target = size_target::reduction(*a.memory_reduction);
    if (a.target_bytes) c.target = size_target::file(*a.target_bytes);
    c.types = mix_policy{find_preset(a.preset), {}};
    for (const auto& rule : a.tensor_types) c.types.overrides.push_back(parse_override(rule));
    c.init = a.init == "reference" ? qat_init::reference : qat_init::gptq;
    c.transforms = transform_arguments(a.rotate, a.smooth, c.seed);
    c.checkpoint = a.checkpoint.empty() ? std::filesystem::path(a.output + ".ckpt") : std::filesystem::path(a.checkpoint);
    c.threads = usable_threads(c.threads);
    return c;
}

int run_qat(const qat_arguments& a) {
    if (a.blockwise) return run_blockwise(a);
    if (processes().size() > 1)
        throw invalid_argument_error("qat over several MPI ranks runs block-wise only: add --blockwise, or run it as one process");
    const qat_config c = configure(a);
    check_files({{"INPUT", a.input}},
                {{"OUTPUT", a.output}, {"--checkpoint", c.checkpoint.string()}, {"--json", a.json_file}, {"--html", a.html_file}});
    const phase_progress meter(a.quiet, 72);
    std::size_t run_steps = 0;
    auto progress = [&](const qat_progress& p) {
        const bool training = p.phase == "progressive" || p.phase == "fine-tune";
        if (training) {
            ++run_steps;
            meter(p.phase, p.step, p.total, fmt::format("loss {:.5f} KL {:.5f} lr {:.2e} {}", p.loss, p.kl, p.learning_rate, p.item));
        } else {
            meter(p.phase, p.step, p.total, p.item, p.phase == "sensitivity" ? "units" : p.phase == "generate" ? "tokens" : "steps");
        }
        return a.stop_after == 0 || run_steps < a.stop_after;
    };
    const auto in = gguf::reader::open(a.input);
    check_model_output(in.paths(), a.output, c.split);
    const auto report = quantization_aware_training(in, a.output, c, progress);
    meter.finish();
    if (report.resumed_from) fmt::print("resumed from {} at step {}\n", c.checkpoint.string(), report.resumed_from);
    print_qat_report(report, a.output);
    if (!report.checkpoint_note.empty()) fmt::print(stderr, "cogqat: note: {}\n", report.checkpoint_note);
    if (!a.json_file.empty()) write_json_file(a.json_file, qat_report_json(report, a.input, a.output, c));
    if (!a.html_file.empty() && report.completed) write_qat_html(a.html_file, report, a.input, a.output);
    return exit_success;
}

}  // namespace

void add_qat_command(command_line& app, command_list& commands) {
    auto a = std::make_shared<qat_arguments>();
    auto& c = a->config;
    auto qat = app.subcommand("qat",
                              "Data-free quantization-aware training: distil the model into its quantized self on text it writes itself");
    qat.text("input", a->input, "Full-precision GGUF, llama, qwen2 or qwen3 architecture (the teacher)").required();
    qat.text("output", a->output, "GGUF to write").required();
    const auto preset = qat.text("--preset", a->preset, "Types: a preset (q4_k_m, ...) or one type for every matrix (default q4_0)");
    const auto rules =
            qat.texts("--tensor-type", a->tensor_types, "REGEX=TYPE for the tensors whose name matches; first matching rule wins")
                    .take_all();
    auto automatic = qat.flag("--auto", a->automatic, "Choose the types by measured sensitivity under a size target, then train");
    automatic.excludes(preset).excludes(rules);
    auto bpw = qat.real("--target-bpw", a->target_bpw, {0.0, 32.0, true}, "--auto: average bits per weight").needs(automatic);
    auto reduction = qat.real("--memory-reduction", a->memory_reduction, {0.0, 0.999},
                              "--auto: fraction saved against F16 (default 0.75, or the smallest possible size where that is out of reach)")
                             .needs(automatic);
    const auto bytes = qat.whole("--target-bytes", a->target_bytes, 1, UINT64_MAX, "--auto: the file's size at most").needs(automatic);
    bpw.excludes(reduction).excludes(bytes);
    reduction.excludes(bytes);
    auto blockwise = qat.flag("--blockwise", a->blockwise,
                              "Train layer by layer against the teacher's output of each layer: memory of one layer, time linear in the "
                              "depth; under mpirun the ranks share each step (defaults then: batch 4, 32 samples, warm-up 4)");
    blockwise.excludes(automatic);
    const auto steps = qat.whole("--steps", c.steps, 0, 1'000'000'000, "Global fine-tuning steps (phase 4)");
    const auto unit_steps = qat.whole("--steps-per-unit", c.steps_per_unit, 0, 1'000'000,
                                      "Training steps after each unit (embedding, layer) is quantized (phase 3)");
    blockwise.excludes(steps).excludes(unit_steps);
    qat.whole("--steps-per-layer", a->layered.steps_per_layer, 0, 1'000'000, "--blockwise: training steps per layer (default 40)")
            .needs(blockwise);
    qat.whole("--groups", a->layered.gradient_groups, 1, 1u << 16,
              "--blockwise: a step's sequences in this many groups, each a unit of work for a thread or rank, summed in order (default "
              "4, at most the batch); the bytes depend on it, not on threads or ranks")
            .needs(blockwise);
    qat.whole("--e2e-steps", a->layered.end_to_end_steps, 0, 1'000'000,
              "--blockwise: then train the block scales alone (levels frozen) on the model's KL to the teacher for N steps (default 0: "
              "none)")
            .needs(blockwise);
    qat.real("--e2e-lr", a->layered.end_to_end_lr, {0.0, 1.0}, "--blockwise: peak learning rate of that phase, relative (default 0.003)")
            .needs(blockwise);
    qat.whole("--seq-len", c.sequence_length, 2, 1u << 20, "Positions per training sequence (at most the model's context)");
    a->batch_option = qat.whole("--batch", c.batch, 1, 1u << 16, "Sequences per step");
    a->samples_option = qat.whole("--samples", c.samples, 1, 1u << 24, "Self-generated training sequences");
    qat.real("--lr", c.optimizer.learning_rate, {0.0, 1e3}, "Peak learning rate of the latent weights, in quantization steps per update");
    qat.real("--scale-lr", c.optimizer.scale_learning_rate, {0.0, 1.0}, "Peak learning rate of the block scales, relative");
    a->warmup_option = qat.whole("--warmup", c.optimizer.warmup_steps, 0, 1'000'000'000, "Warm-up steps");
    qat.real("--clip", c.optimizer.gradient_clip, {0.0, 1e9}, "Global gradient-norm clip (0: none)");
    blockwise.excludes(qat.real("--temperature", c.temperature, {0.0, 100.0, true}, "Distillation temperature T"));
    blockwise.excludes(
            qat.real("--kl-weight", c.kl_weight, {0.0, 1.0}, "Share of the KL term (the rest is cross-entropy on the teacher's tokens)"));
    qat.real("--accuracy-threshold", c.accuracy_threshold, {0.0, 1.0}, "Retention exp(-dNLL) the result is judged against");
    qat.text("--init", a->init, "Initial rounding: gptq (Hessian-aware, default) or reference (ggml's)").one_of({"gptq", "reference"});
    const auto rotate = qat.text("--rotate", a->rotate,
                                 "Rotate the residual stream exactly before training (norms folded first): none (default), hadamard, "
                                 "random or heads (the "
                                 "value heads alone)")
                                .one_of({"none", "hadamard", "random", "heads"});
    blockwise.excludes(rotate);
    blockwise.excludes(
            qat.flag("--smooth", a->smooth, "Move per-channel scales exactly across the norms and through SwiGLU before training"));
    qat.whole("--seed", c.seed, 0, UINT64_MAX, "Seed of the self-generated data and of the batches");
    qat.threads(c.threads);
    qat.split(c.split);
    qat.text("--checkpoint", a->checkpoint,
             "Checkpoint file (default OUT.ckpt; --blockwise: a directory); a rerun with the same settings resumes from it");
    blockwise.excludes(qat.whole("--checkpoint-every", c.checkpoint_every, 1, 1'000'000'000, "Steps between checkpoints"));
    qat.whole("--stop-after", a->stop_after, 0, UINT64_MAX,
              "Stop this invocation after N steps (--blockwise: N layers), keeping the checkpoint (to split a long run)");
    qat.flag("--keep-checkpoint", c.keep_checkpoint, "Keep the checkpoint after the run completes");
    qat.text("--json", a->json_file, "Also write the report, with the loss curve, as JSON to this file");
    blockwise.excludes(qat.text("--html", a->html_file, "Also write the report as a self-contained HTML page with the loss curve"));
    qat.flag("--quiet,-q", a->quiet, "No progress output");
    commands.push_back({qat, [a] { return run_qat(*a); }, true});
}

}  // namespace cogqat::cli
