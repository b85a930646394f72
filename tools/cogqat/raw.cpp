// `cogqat raw ...`: quantize and dequantize raw little-endian float32 arrays, and compare every format.

#include <cogqat/core/error_metrics.hpp>
#include <cogqat/core/little_endian.hpp>
#include <cogqat/format/codec.hpp>
#include <cogqat/format/ggml_type.hpp>
#include <cogqat/io/file.hpp>

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "commands.hpp"
#include "json_output.hpp"
#include "options.hpp"
#include "shared_dir.hpp"

namespace cogqat::cli {

namespace {

struct raw_arguments {
    std::string type_name, input, output, reference;
    bool as_json = false;
};

int run_raw_quantize(const raw_arguments& a) {
    const auto type = cogqat::parse_type(a.type_name);
    check_files({{"INPUT", a.input}}, {{"OUTPUT", a.output}});
    const auto& input = a.input;
    const auto& output = a.output;
    const bool as_json = a.as_json;
    const auto values = cogqat::io::read_f32_file(input);
    if (values.empty()) throw cogqat::format_error("'" + input + "' is empty: nothing to quantize");
    const auto bytes = cogqat::quantize(type, values);
    const auto restored = cogqat::dequantize(type, bytes);
    const auto error = cogqat::measure_error(values, restored);
    cogqat::io::write_file_atomically(output, bytes);

    const auto& t = cogqat::info(type);
    if (as_json) {
        json line{{"command", "quantize"},        {"type", t.name},
                  {"values", values.size()},      {"input_bytes", values.size() * 4},
                  {"output_bytes", bytes.size()}, {"bits_per_weight", t.bits_per_weight()}};
        line.update(metrics_json(error));
        print_json(line);
    } else {
        fmt::print("{}: {} values -> {} bytes ({:.4g} bits per weight, {:.2f}x smaller than f32)\n", t.name, values.size(), bytes.size(),
                   t.bits_per_weight(), 32.0 / t.bits_per_weight());
        fmt::print("RMSE {:.6g}  max error {:.6g}  relative RMSE {:.4f}%\n", error.rmse, error.max_abs_error, 100.0 * error.relative_rmse);
    }
    return 0;
}

int run_raw_dequantize(const raw_arguments& a) {
    const auto type = cogqat::parse_type(a.type_name);
    check_files({{"INPUT", a.input}, {"--reference", a.reference}}, {{"OUTPUT", a.output}});
    const auto& input = a.input;
    const auto& output = a.output;
    const auto& reference = a.reference;
    const bool as_json = a.as_json;
    const auto& t = cogqat::info(type);
    const auto bytes = cogqat::io::read_file(input);
    if (bytes.empty()) throw cogqat::format_error("'" + input + "' is empty: nothing to dequantize");
    if (bytes.size() % t.type_size != 0) {
        throw cogqat::format_error(fmt::format("'{}' has {} bytes, not a whole number of {}-byte {} blocks (truncated?)", input,
                                               bytes.size(), t.type_size, t.name));
    }
    const auto values = cogqat::dequantize(type, bytes);
    std::optional<cogqat::error_metrics> error;
    if (!reference.empty()) error = cogqat::measure_error(cogqat::io::read_f32_file(reference), values);
    cogqat::io::write_f32_file(output, values);

    if (as_json) {
        json line{{"command", "dequantize"},           {"type", t.name},
                  {"values", values.size()},           {"input_bytes", bytes.size()},
                  {"output_bytes", values.size() * 4}, {"bits_per_weight", t.bits_per_weight()}};
        if (error) line.update(metrics_json(*error));
        print_json(line);
    } else {
        fmt::print("{}: {} bytes -> {} values ({:.4g} bits per weight)\n", t.name, bytes.size(), values.size(), t.bits_per_weight());
        if (error)
            fmt::print("RMSE {:.6g}  max error {:.6g}  relative RMSE {:.4f}%\n", error->rmse, error->max_abs_error,
                       100.0 * error->relative_rmse);
    }
    return 0;
}

/// The default survey input: the trained weights of stories260K when the shared models are present (the
/// llama2.c file is a 28-byte header followed by float32 tensors), else a reproducible Laplace sample.
std::pair<std::vector<float>, std::string> survey_default_input() {
    const std::filesystem::path shared = shared_dir();
    const auto model = shared / "models" / "stories260K" / "stories260K.bin";
    std::error_code ec;
    if (std::filesystem::exists(model, ec)) {
        const auto bytes = cogqat::io::read_file(model);
        const std::size_t header = 28;
        std::size_t n = (bytes.size() - header) / 4;
        n -= n % 256;  // whole super-blocks, so every format takes the same values
        std::vector<float> values(n);
        for (std::size_t i = 0; i < n; ++i) values[i] = cogqat::load_le<float>(bytes.data() + header + 4 * i);
        return {values, model.string()};
    }
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> uniform(-0.5, 0.5);
    std::vector<float> values(65536);
    for (auto& v : values) {
        const double u = uniform(rng);
        v = static_cast<float>(-(u < 0 ? -1.0 : 1.0) * std::log(1.0 - 2.0 * std::fabs(u)) * 0.02);
    }
    return {values, "generated Laplace(0, 0.02), 65536 values, seed 42"};
}

int run_raw_survey(const raw_arguments& a) {
    const auto& input = a.input;
    const bool as_json = a.as_json;
    auto [values, source] = input.empty() ? survey_default_input() : std::pair{cogqat::io::read_f32_file(input), input};
    if (values.empty()) throw cogqat::format_error("'" + source + "' is empty: nothing to quantize");
    if (!as_json)
        fmt::print("{} values from {}\n{:<6} {:>10} {:>7} {:>12} {:>12} {:>10}\n", values.size(), source, "type", "bytes", "bpw", "RMSE",
                   "max error", "rel RMSE");
    for (const auto& t : cogqat::type_table) {
        if (!t.quantizable || t.block_size == 1 || values.size() % t.block_size != 0) continue;
        const auto bytes = cogqat::quantize(t.type, values);
        const auto error = cogqat::measure_error(values, cogqat::dequantize(t.type, bytes));
        if (as_json) {
            json line{{"command", "survey"},
                      {"type", t.name},
                      {"values", values.size()},
                      {"bytes", bytes.size()},
                      {"bits_per_weight", t.bits_per_weight()}};
            line.update(metrics_json(error));
            print_json(line);
        } else {
            fmt::print("{:<6} {:>10} {:>7.4g} {:>12.6g} {:>12.6g} {:>9.4f}%\n", t.name, bytes.size(), t.bits_per_weight(), error.rmse,
                       error.max_abs_error, 100.0 * error.relative_rmse);
        }
    }
    return 0;
}

}  // namespace

void add_raw_commands(command_line& app, command_list& commands) {
    auto raw = app.subcommand("raw", "Quantize and dequantize raw little-endian float32 arrays");
    raw.require_subcommand();
    auto q = std::make_shared<raw_arguments>();
    auto quantize = raw.subcommand("quantize", "Quantize IN.f32 into OUT.bin (blocks as GGUF stores them)");
    quantize.text("--type,-t", q->type_name, "Target type as ggml spells it, e.g. q4_K (case-insensitive)").required();
    quantize.text("input", q->input, "Raw little-endian float32 input").required();
    quantize.text("output", q->output, "Where to write the blocks").required();
    quantize.flag("--json", q->as_json, "Print one machine-readable JSON line");
    commands.push_back({quantize, [q] { return run_raw_quantize(*q); }});

    auto d = std::make_shared<raw_arguments>();
    auto dequantize = raw.subcommand("dequantize", "Dequantize IN.bin (blocks of TYPE) into OUT.f32");
    dequantize.text("--type,-t", d->type_name, "Type of the blocks, e.g. q4_K (case-insensitive)").required();
    dequantize.text("input", d->input, "Blocks as GGUF stores them").required();
    dequantize.text("output", d->output, "Where to write raw little-endian float32 values").required();
    dequantize.text("--reference", d->reference, "Original float32 values: also report RMSE and max error against them");
    dequantize.flag("--json", d->as_json, "Print one machine-readable JSON line");
    commands.push_back({dequantize, [d] { return run_raw_dequantize(*d); }});

    auto s = std::make_shared<raw_arguments>();
    auto survey = raw.subcommand("survey", "Quantize one float32 array into every block format and compare the errors");
    survey.text("input", s->input, "Raw little-endian float32 input (default: the stories260K weights, or a generated sample)");
    survey.flag("--json", s->as_json, "Print one JSON line per format");
    commands.push_back({survey, [s] { return run_raw_survey(*s); }});
}

}  // namespace cogqat::cli
