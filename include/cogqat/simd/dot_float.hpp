#pragma once
// Dot products of a stored row with float activations on the SIMD backend: each batch of weights is decoded
// in registers (the dequantizers' arithmetic) and multiplied into running sums, with no row of floats in
// memory. The sums run in another order than the reference's, and with fused multiply-adds: results agree
// with vec_dot_float within a float error bound, not bit for bit.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cogqat/format/block_format.hpp"
#include "cogqat/format/k_formats.hpp"
#include "cogqat/format/legacy_formats.hpp"
#include "cogqat/simd/convert.hpp"
#include "cogqat/simd/isa.hpp"
#include "cogqat/simd/kernel_table.hpp"
#include "cogqat/simd/unpack.hpp"

namespace cogqat::simd {

template <class Isa, block_format F>
float dot_float_row(const std::byte* w, const float* x, std::size_t n) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    alignas(64) std::uint8_t levels[F::block_size];
    fb sum(0.0f);
    for (std::size_t b = 0; b < n / F::block_size; ++b) {
        const std::byte* block = w + b * F::type_size;
        const float* xb = x + b * F::block_size;
        unpack_levels<Isa, F>(block, levels);
        for (std::size_t sub = 0; sub < F::block_size / F::sub_block_size; ++sub) {
            const affine_scale s = F::sub_block_scale(block, sub);
            // sum += scale * (level·x) - min * Σx over the sub-block: two multiplies per sub-block, not per value.
            fb products(0.0f), activations(0.0f);
            for (std::size_t j = 0; j < F::sub_block_size; j += lanes) {
                const std::size_t i = sub * F::sub_block_size + j;
                const fb xv = fb::load_unaligned(xb + i);
                products = xsimd::fma(levels_to_float<Isa, F::signed_levels>(levels + i, F::level_offset), xv, products);
                if constexpr (F::has_min) activations = activations + xv;
            }
            sum = xsimd::fma(fb(s.scale), products, sum);
            if constexpr (F::has_min) sum = xsimd::fnma(fb(s.min), activations, sum);
        }
    }
    return xsimd::hadd(sum);
}

/// f32, f16 and bf16 rows: four independent sums to hide the latency of the fused multiply-add.
template <class Isa, ggml_type Type>
float dot_float_elements(const std::byte* w, const float* x, std::size_t n) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    constexpr std::size_t element = Type == ggml_type::f32 ? 4 : 2;
    auto load = [&](std::size_t i) {
        if constexpr (Type == ggml_type::f32) return fb::load_unaligned(reinterpret_cast<const float*>(w + 4 * i));
        else if constexpr (Type == ggml_type::f16) return fp16_to_float<Isa>(w + 2 * i);
        else return bf16_to_float<Isa>(w + 2 * i);
    };
    fb s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
    std::size_t i = 0;
    for (; i + 4 * lanes <= n; i += 4 * lanes) {
        s0 = xsimd::fma(load(i), fb::load_unaligned(x + i), s0);
        s1 = xsimd::fma(load(i + lanes), fb::load_unaligned(x + i + lanes), s1);
        s2 = xsimd::fma(load(i + 2 * lanes), fb::load_unaligned(x + i + 2 * lanes), s2);
        s3 = xsimd::fma(load(i + 3 * lanes), fb::load_unaligned(x + i + 3 * lanes), s3);
    }
    for (; i + lanes <= n; i += lanes) s0 = xsimd::fma(load(i), fb::load_unaligned(x + i), s0);
    float sum = xsimd::hadd((s0 + s1) + (s2 + s3));
    for (; i < n; ++i) {
        float v;
        if constexpr (Type == ggml_type::f32) {
            std::memcpy(&v, w + 4 * i, 4);
        } else {
            std::uint16_t bits;
            std::memcpy(&bits, w + element * i, 2);
            v = Type == ggml_type::f16 ? fp16_bits_to_fp32(bits) : bf16_bits_to_fp32(bits);
        }
        sum += v * x[i];
    }
    return sum;
}

/// Fills the dot_float entries of every weight type.
template <class Isa>
void add_float_dot_kernels(kernel_table& t) {
    using namespace formats;
    t[ggml_type::f32].dot_float = &dot_float_elements<Isa, ggml_type::f32>;
    t[ggml_type::f16].dot_float = &dot_float_elements<Isa, ggml_type::f16>;
    t[ggml_type::bf16].dot_float = &dot_float_elements<Isa, ggml_type::bf16>;
    t[ggml_type::q4_0].dot_float = &dot_float_row<Isa, q4_0>;
    t[ggml_type::q4_1].dot_float = &dot_float_row<Isa, q4_1>;
    t[ggml_type::q5_0].dot_float = &dot_float_row<Isa, q5_0>;
    t[ggml_type::q5_1].dot_float = &dot_float_row<Isa, q5_1>;
    t[ggml_type::q8_0].dot_float = &dot_float_row<Isa, q8_0>;
    t[ggml_type::q2_K].dot_float = &dot_float_row<Isa, q2_K>;
    t[ggml_type::q3_K].dot_float = &dot_float_row<Isa, q3_K>;
    t[ggml_type::q4_K].dot_float = &dot_float_row<Isa, q4_K>;
    t[ggml_type::q5_K].dot_float = &dot_float_row<Isa, q5_K>;
    t[ggml_type::q6_K].dot_float = &dot_float_row<Isa, q6_K>;
}

} // namespace cogqat::simd
