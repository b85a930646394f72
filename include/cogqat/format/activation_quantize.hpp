#pragma once
// Activations quantized the way ggml's CPU backend quantizes them before a dot product (its SIMD
// `from_float` of the partner type), which is not the reference quantizer: for q8_0 and q8_1 it multiplies
// by 127/amax and rounds half to even, where the reference divides by d and rounds half away from zero.
// Matching it is what makes our logits agree with llama.cpp's token for token on quantized files.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "cogqat/core/error.hpp"
#include "cogqat/core/float16.hpp"
#include "cogqat/core/little_endian.hpp"
#include "cogqat/core/rounding.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/format/codec.hpp"

namespace cogqat {

COGQAT_STRICT_FP_BEGIN

namespace detail {
/// One q8_0 (with_sum = false) or q8_1 block as ggml's x86 CPU code writes it.
inline void quantize_activation_block_q8(const float* x, std::byte* block, bool with_sum) noexcept {
    float amax = 0.0f;
    for (std::size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float inverse = amax != 0.0f ? 127.0f / amax : 0.0f;
    store_le<std::uint16_t>(block, fp32_to_fp16_bits(d));
    const std::size_t quants = with_sum ? 4 : 2;
    int sum = 0;
    for (std::size_t i = 0; i < 32; ++i) {
        const int q = nearest_int(x[i] * inverse);  // |x * 127/amax| <= 127: exact, ties to even
        block[quants + i] = static_cast<std::byte>(static_cast<std::int8_t>(q));
        sum += q;
    }
    if (with_sum) store_le<std::uint16_t>(block + 2, fp32_to_fp16_bits(d * static_cast<float>(sum)));
}
}  // namespace detail

COGQAT_STRICT_FP_END

/// Quantizes activations `x` to `type` (q8_0, q8_1: ggml's CPU rounding; q8_K, f16, bf16, f32: as the
/// reference does, which is also what ggml's x86 CPU code does for them). Sizes as for quantize().
inline void quantize_activations(ggml_type type, std::span<const float> x, std::span<std::byte> out) {
    const auto simd_kernel = dispatch::kernels(type).quantize_activations;
    if (type != ggml_type::q8_0 && type != ggml_type::q8_1 && !simd_kernel) {
        quantize(type, x, out);
        return;
    }
    const std::string context = "quantize_activations " + std::string(info(type).name);
    detail::require_sizes(type, x.size(), out.size(), context);
    detail::require_finite(x, context);
    if (simd_kernel) {
        simd_kernel(x.data(), out.data(), x.size());
        return;
    }
    const std::size_t type_size = info(type).type_size;
    for (std::size_t b = 0; b < x.size() / 32; ++b)
        detail::quantize_activation_block_q8(x.data() + 32 * b, out.data() + b * type_size, type == ggml_type::q8_1);
}

}  // namespace cogqat
