#pragma once
// The exact transforms (--rotate, --smooth) as `quantize --auto` and `qat` print them and write them to JSON:
// what was applied, and per matrix the kurtosis of weights and inputs and the proxy type's rounding error,
// before and after.

#include <cogqat/format/ggml_type.hpp>
#include <cogqat/qat/transforms.hpp>

#include <fmt/core.h>

#include <cmath>
#include <string>

#include "json_output.hpp"

namespace cogqat::cli {

/// The transforms' options from --rotate and --smooth.
inline transform_options transform_arguments(const std::string& rotate, bool smooth, std::uint64_t seed) {
    transform_options o;
    o.rotate = parse_rotation_mode(rotate);
    o.smooth = smooth;
    o.seed = seed;
    return o;
}

inline json transforms_json(const transform_report& r) {
    auto number = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
    json tensors = json::array();
    for (const auto& t : r.tensors)
        tensors.push_back({{"name", t.name},
                           {"weight_kurtosis", {number(t.weight_kurtosis_before), number(t.weight_kurtosis_after)}},
                           {"input_kurtosis", {number(t.input_kurtosis_before), number(t.input_kurtosis_after)}},
                           {"proxy_error", {number(t.error_before), number(t.error_after)}}});
    return {{"rotate", std::string(rotation_mode_name(r.rotate))},
            {"smooth", r.smooth},
            {"summary", r.summary()},
            {"residual_rotation", r.rotation.residual},
            {"value_head_rotation", r.rotation.heads},
            {"norms_folded", r.rotation.folding.norms},
            {"classifier_untied", r.rotation.folding.untied},
            {"smoothings", r.smoothings},
            {"proxy_type", std::string(info(r.proxy_type).name)},
            {"positions", r.positions},
            {"tensors", tensors}};
}

/// The transforms' lines of a report; nothing when none was applied.
inline void print_transforms(const transform_report& r) {
    if (!r.applied()) return;
    fmt::print("transforms (exact; measured on {} positions the model wrote itself): {}\n", r.positions, r.summary());
    for (const auto& line : r.smoothings) fmt::print("  smoothing {}\n", line);
    fmt::print("  {:<26} {:>17} {:>17} {:>21}\n", "matrix", "weight kurtosis", "input kurtosis",
               std::string(info(r.proxy_type).name) + " output error");
    for (const auto& t : r.tensors)
        fmt::print("  {:<26} {:>7.2f} -> {:<7.2f} {:>7.2f} -> {:<7.2f} {:>9.3e} -> {:<9.3e}\n", t.name, t.weight_kurtosis_before,
                   t.weight_kurtosis_after, t.input_kurtosis_before, t.input_kurtosis_after, t.error_before, t.error_after);
    fmt::print("\n");
}

}  // namespace cogqat::cli
