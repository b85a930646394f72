#pragma once
// The consumer's run-time check that the SIMD kernels reached its program: on a CPU with AVX2 the table in
// use is a SIMD one and AVX2 is linked, and every runnable set gives the scalar reference's results.

#include <cogqat/core/policy.hpp>
#include <cogqat/dispatch/kernel_table.hpp>
#include <cogqat/format/codec.hpp>
#include <cogqat/format/ggml_type.hpp>
#include <cogqat/format/k_formats.hpp>
#include <cogqat/quant/quantizer.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

/// 0 when the kernels are linked and agree with the reference; prints what it found, prefixed by `who`.
inline int check_simd_kernels(const char* who) {
    using namespace cogqat;
    std::printf("%s: %s\n", who, dispatch::describe().c_str());
    const auto runnable = dispatch::linked_isas(true);
    if (!dispatch::kernels_linked()) {
        std::printf("%s: FAILED, no SIMD kernels linked\n", who);
        return 1;
    }
    if (dispatch::cpu_supports("avx2") &&
        (dispatch::active().isa == dispatch::scalar_isa || std::find(runnable.begin(), runnable.end(), "avx2") == runnable.end())) {
        std::printf("%s: FAILED, the CPU runs AVX2 but the active table is %s\n", who, std::string(dispatch::active().isa).c_str());
        return 1;
    }
    std::vector<float> values(8 * 256);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = std::sin(0.37f * static_cast<float>(i)) * 2.5f;
    std::vector<std::byte> reference(values.size() / formats::q4_K::block_size * formats::q4_K::type_size);
    quantize<formats::q4_K>(values, reference);
    const auto x = make_matrix_view(values.data(), 8, 256);
    using simd = quantizer<BitWidth<4>, PerGroup<32>, Asymmetric, backend::Simd>;
    using scalar = quantizer<BitWidth<4>, PerGroup<32>, Asymmetric, backend::Scalar>;
    const auto expected = scalar::quantize(x);
    const auto expected_values = scalar::dequantize(expected);
    bool same = true;
    for (const auto isa : runnable) {
        dispatch::use_isa(isa);
        const auto got = simd::quantize(x);
        same = same && cogqat::quantize(ggml_type::q4_K, values) == reference &&
               std::equal(got.codes().begin(), got.codes().end(), expected.codes().begin(), expected.codes().end()) &&
               simd::dequantize(got) == expected_values;
    }
    std::printf("%s: %zu instruction set(s) runnable, Simd %s Scalar\n", who, runnable.size(), same ? "==" : "!=");
    return same ? 0 : 1;
}
