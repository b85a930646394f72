#pragma once
// `cogqat raw ...`: quantize and dequantize raw little-endian float32 arrays, and compare every format.

#include <cogqat/cogqat.hpp>

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "json_output.hpp"

namespace cogqat::cli {

inline int raw_quantize(const std::string& type_name, const std::string& input, const std::string& output, bool as_json) {
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

inline int raw_dequantize(const std::string& type_name, const std::string& input, const std::string& output, const std::string& reference,
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
inline std::pair<std::vector<float>, std::string> survey_default_input() {
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

inline int raw_survey(const std::string& input, bool as_json) {
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

} // namespace cogqat::cli
