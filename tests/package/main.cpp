// Uses the public API end to end; exits non-zero if anything is off. The headers it needs, as a user who
// includes what they use would; umbrella.cpp (find_package mode) compiles the umbrella header as installed.
#include <cogqat/core/error.hpp>
#include <cogqat/core/error_metrics.hpp>
#include <cogqat/dispatch/kernel_table.hpp>
#include <cogqat/format/codec.hpp>
#include <cogqat/format/ggml_type.hpp>

#include "simd_check.hpp"

#include <cmath>
#include <cstdio>
#include <span>
#include <vector>

int main() {
    std::vector<float> weights(512);
    for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = std::sin(0.37f * static_cast<float>(i));

    const auto blocks = cogqat::quantize(cogqat::ggml_type::q4_K, weights);
    const auto restored = cogqat::dequantize(cogqat::ggml_type::q4_K, blocks);
    const auto error = cogqat::measure_error(weights, restored);
    std::printf("q4_K: %zu bytes, relative RMSE %.4f\n", blocks.size(), error.relative_rmse);

    bool refused = false;
    try {
        (void)cogqat::quantize(cogqat::ggml_type::q4_K, std::span<const float>(weights.data(), 100));
    } catch (const cogqat::shape_error&) {
        refused = true;
    }
    // The kernels are linked in: every instruction set this CPU runs writes the same bytes.
    const int simd = check_simd_kernels("cogqat_consumer");
    return blocks.size() == 288 && error.relative_rmse < 0.15 && refused && simd == 0 ? 0 : 1;
}
