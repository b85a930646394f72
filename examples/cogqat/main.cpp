// cogqat: the command-line face of the library. A thin layer: every step below is a library call.
//
//   cogqat raw quantize   --type TYPE IN.f32 OUT.bin [--json]
//   cogqat raw dequantize --type TYPE IN.bin OUT.f32 [--reference IN.f32] [--json]
//   cogqat raw survey     [IN.f32] [--json]

#include <cogqat/cogqat.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace {

using json = nlohmann::ordered_json;

void print_json(const json& line) { std::cout << line.dump() << '\n'; }

json metrics_json(const cogqat::error_metrics& m) {
    return {{"rmse", m.rmse}, {"max_abs_error", m.max_abs_error}, {"relative_rmse", m.relative_rmse}};
}

int raw_quantize(const std::string& type_name, const std::string& input, const std::string& output, bool as_json) {
    const auto type = cogqat::parse_type(type_name);
    const auto values = cogqat::io::read_f32_file(input);
    if (values.empty()) throw cogqat::format_error("'" + input + "' is empty: nothing to quantize");
    const auto bytes = cogqat::quantize(type, values);
    const auto restored = cogqat::dequantize(type, bytes);
    const auto error = cogqat::measure_error(values, restored);
    cogqat::io::write_file_atomically(output, bytes);

    const auto& t = cogqat::info(type);
    if (as_json) {
        json line{{"command", "quantize"}, {"type", t.name}, {"values", values.size()}, {"input_bytes", values.size() * 4},
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

int raw_dequantize(const std::string& type_name, const std::string& input, const std::string& output, const std::string& reference,
                   bool as_json) {
    const auto type = cogqat::parse_type(type_name);
    const auto& t = cogqat::info(type);
    const auto bytes = cogqat::io::read_file(input);
    if (bytes.empty()) throw cogqat::format_error("'" + input + "' is empty: nothing to dequantize");
    if (bytes.size() % t.type_size != 0) {
        throw cogqat::format_error(fmt::format("'{}' has {} bytes, not a whole number of {}-byte {} blocks (truncated?)", input, bytes.size(),
                                               t.type_size, t.name));
    }
    const auto values = cogqat::dequantize(type, bytes);
    std::optional<cogqat::error_metrics> error;
    if (!reference.empty()) error = cogqat::measure_error(cogqat::io::read_f32_file(reference), values);
    cogqat::io::write_f32_file(output, values);

    if (as_json) {
        json line{{"command", "dequantize"}, {"type", t.name}, {"values", values.size()}, {"input_bytes", bytes.size()},
                  {"output_bytes", values.size() * 4}, {"bits_per_weight", t.bits_per_weight()}};
        if (error) line.update(metrics_json(*error));
        print_json(line);
    } else {
        fmt::print("{}: {} bytes -> {} values ({:.4g} bits per weight)\n", t.name, bytes.size(), values.size(), t.bits_per_weight());
        if (error) fmt::print("RMSE {:.6g}  max error {:.6g}  relative RMSE {:.4f}%\n", error->rmse, error->max_abs_error, 100.0 * error->relative_rmse);
    }
    return 0;
}

/// The default survey input: the trained weights of stories260K when the shared models are present (the
/// llama2.c file is a 28-byte header followed by float32 tensors), else a reproducible Laplace sample.
std::pair<std::vector<float>, std::string> survey_default_input() {
    const char* env = std::getenv("COGQAT_SHARED_DIR");
    const std::filesystem::path shared = env ? env : COGQAT_DEFAULT_SHARED_DIR;
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

int raw_survey(const std::string& input, bool as_json) {
    auto [values, source] = input.empty() ? survey_default_input() : std::pair{cogqat::io::read_f32_file(input), input};
    if (values.empty()) throw cogqat::format_error("'" + source + "' is empty: nothing to quantize");
    if (!as_json) fmt::print("{} values from {}\n{:<6} {:>10} {:>7} {:>12} {:>12} {:>10}\n", values.size(), source, "type", "bytes", "bpw", "RMSE", "max error", "rel RMSE");
    for (const auto& t : cogqat::type_table) {
        if (!t.quantizable || t.block_size == 1 || values.size() % t.block_size != 0) continue;
        const auto bytes = cogqat::quantize(t.type, values);
        const auto error = cogqat::measure_error(values, cogqat::dequantize(t.type, bytes));
        if (as_json) {
            json line{{"command", "survey"}, {"type", t.name}, {"values", values.size()}, {"bytes", bytes.size()}, {"bits_per_weight", t.bits_per_weight()}};
            line.update(metrics_json(error));
            print_json(line);
        } else {
            fmt::print("{:<6} {:>10} {:>7.4g} {:>12.6g} {:>12.6g} {:>9.4f}%\n", t.name, bytes.size(), t.bits_per_weight(), error.rmse,
                       error.max_abs_error, 100.0 * error.relative_rmse);
        }
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"cogqat: data-free quantization into GGUF's block formats"};
    app.require_subcommand(1);
    auto* raw = app.add_subcommand("raw", "Quantize and dequantize raw little-endian float32 arrays");
    raw->require_subcommand(1);

    std::string type_name, input, output, reference;
    bool as_json = false;

    auto* quantize = raw->add_subcommand("quantize", "Quantize IN.f32 into OUT.bin (blocks as GGUF stores them)");
    quantize->add_option("--type,-t", type_name, "Target type as ggml spells it, e.g. q4_K (case-insensitive)")->required();
    quantize->add_option("input", input, "Raw little-endian float32 input")->required();
    quantize->add_option("output", output, "Where to write the blocks")->required();
    quantize->add_flag("--json", as_json, "Print one machine-readable JSON line");

    auto* dequantize = raw->add_subcommand("dequantize", "Dequantize IN.bin (blocks of TYPE) into OUT.f32");
    dequantize->add_option("--type,-t", type_name, "Type of the blocks, e.g. q4_K (case-insensitive)")->required();
    dequantize->add_option("input", input, "Blocks as GGUF stores them")->required();
    dequantize->add_option("output", output, "Where to write raw little-endian float32 values")->required();
    dequantize->add_option("--reference", reference, "Original float32 values: also report RMSE and max error against them");
    dequantize->add_flag("--json", as_json, "Print one machine-readable JSON line");

    auto* survey = raw->add_subcommand("survey", "Quantize one float32 array into every block format and compare the errors");
    survey->add_option("input", input, "Raw little-endian float32 input (default: the stories260K weights, or a generated sample)");
    survey->add_flag("--json", as_json, "Print one JSON line per format");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        if (quantize->parsed()) return raw_quantize(type_name, input, output, as_json);
        if (dequantize->parsed()) return raw_dequantize(type_name, input, output, reference, as_json);
        if (survey->parsed()) return raw_survey(input, as_json);
    } catch (const cogqat::error& e) {
        std::cerr << "cogqat: error: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
