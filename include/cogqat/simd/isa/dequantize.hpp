#pragma once
// Dequantization on the SIMD backend, one generic kernel for every block format: the block's levels are
// unpacked from its planes (simd/isa/unpack.hpp), then each sub-block is scale * (level - offset) - min, lane by
// lane. The arithmetic is the reference's (format/block_format.hpp dequantize_block) with the same two
// roundings, product then difference, so the floats are the reference's bit for bit.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cogqat/core/strict_fp.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/format/block_format.hpp"
#include "cogqat/format/k_formats.hpp"
#include "cogqat/format/legacy_formats.hpp"
#include "cogqat/format/table_formats.hpp"
#include "cogqat/simd/isa/baseline_call.hpp"
#include "cogqat/simd/isa/convert.hpp"
#include "cogqat/simd/isa/isa.hpp"
#include "cogqat/simd/isa/table_levels.hpp"
#include "cogqat/simd/isa/unpack.hpp"

namespace cogqat::simd {

COGQAT_STRICT_FP_BEGIN

/// Decodes one block of F into F::block_size floats at `out`.
template <class Isa, BlockFormat F>
inline void dequantize_block(const std::byte* block, float* out) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    alignas(64) std::uint8_t levels[F::block_size];
    unpack_levels<Isa, F>(block, levels);
    for (std::size_t sub = 0; sub < F::block_size / F::sub_block_size; ++sub) {
        const affine_scale s = sub_block_scale<Isa, F>(block, sub);
        const fb scale(s.scale), min(s.min);
        for (std::size_t j = 0; j < F::sub_block_size; j += lanes) {
            const std::size_t i = sub * F::sub_block_size + j;
            fb v = scale * levels_to_float<Isa, F::signed_levels>(levels + i, F::level_offset);
            if constexpr (F::has_min) v = v - min;
            v.store_unaligned(out + i);
        }
    }
}

template <class Isa, BlockFormat F>
void dequantize_row(const std::byte* in, float* y, std::size_t n) noexcept {
    static_assert(F::sub_block_size % float_lanes<Isa> == 0, "sub-blocks are whole batches");
    for (std::size_t b = 0; b < n / F::block_size; ++b) dequantize_block<Isa, F>(in + b * F::type_size, y + b * F::block_size);
}

/// A table format's rows: each sub-block's scale times its table entries, one rounding per value as in the
/// reference (format/table_format.hpp dequantize_table_block), so the same floats bit for bit.
template <class Isa, SimdTableFormat F>
void dequantize_table_row(const std::byte* in, float* y, std::size_t n) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    static_assert(F::sub_block_size % lanes == 0, "sub-blocks are whole batches");
    alignas(64) std::int8_t values[F::block_size];
    for (std::size_t b = 0; b < n / F::block_size; ++b) {
        const std::byte* block = in + b * F::type_size;
        float* out = y + b * F::block_size;
        unpack_table_values<Isa, F>(block, values);
        for (std::size_t sub = 0; sub < F::block_size / F::sub_block_size; ++sub) {
            const fb scale(table_scale<Isa, F>(block, sub, 1.0f));
            for (std::size_t j = 0; j < F::sub_block_size; j += lanes) {
                const std::size_t i = sub * F::sub_block_size + j;
                (scale * levels_to_float<Isa, true>(reinterpret_cast<const std::uint8_t*>(values + i), 0)).store_unaligned(out + i);
            }
        }
    }
}

COGQAT_STRICT_FP_END

/// fp16 and bf16 rows: whole batches converted in registers, the tail one value at a time.
template <class Isa, bool Bf16>
void dequantize_half_row(const std::byte* in, float* y, std::size_t n) noexcept {
    constexpr std::size_t lanes = float_lanes<Isa>;
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes) (Bf16 ? bf16_to_float<Isa>(in + 2 * i) : fp16_to_float<Isa>(in + 2 * i)).store_unaligned(y + i);
    for (; i < n; ++i) {
        std::uint16_t bits;
        std::memcpy(&bits, in + 2 * i, 2);
        y[i] = Bf16 ? bf16_bits_to_fp32(bits) : fp16_bits_to_fp32(bits);
    }
}

/// Fills the dequantize entries of every type cogqat converts.
template <class Isa>
void add_dequantize_kernels(dispatch::kernel_table& t) {
    using namespace formats;
    t[ggml_type::q4_0].dequantize = &dequantize_row<Isa, q4_0>;
    t[ggml_type::q4_1].dequantize = &dequantize_row<Isa, q4_1>;
    t[ggml_type::q5_0].dequantize = &dequantize_row<Isa, q5_0>;
    t[ggml_type::q5_1].dequantize = &dequantize_row<Isa, q5_1>;
    t[ggml_type::q8_0].dequantize = &dequantize_row<Isa, q8_0>;
    t[ggml_type::q8_1].dequantize = &dequantize_row<Isa, q8_1>;
    t[ggml_type::q2_K].dequantize = &dequantize_row<Isa, q2_K>;
    t[ggml_type::q3_K].dequantize = &dequantize_row<Isa, q3_K>;
    t[ggml_type::q4_K].dequantize = &dequantize_row<Isa, q4_K>;
    t[ggml_type::q5_K].dequantize = &dequantize_row<Isa, q5_K>;
    t[ggml_type::q6_K].dequantize = &dequantize_row<Isa, q6_K>;
    t[ggml_type::q8_K].dequantize = &dequantize_row<Isa, q8_K>;
    t[ggml_type::iq4_nl].dequantize = &dequantize_table_row<Isa, iq4_nl>;
    t[ggml_type::iq4_xs].dequantize = &dequantize_table_row<Isa, iq4_xs>;
    t[ggml_type::mxfp4].dequantize = &dequantize_table_row<Isa, mxfp4>;
    t[ggml_type::tq1_0].dequantize = &dequantize_table_row<Isa, tq1_0>;
    t[ggml_type::tq2_0].dequantize = &dequantize_table_row<Isa, tq2_0>;
    t[ggml_type::f16].dequantize = &dequantize_half_row<Isa, false>;
    t[ggml_type::bf16].dequantize = &dequantize_half_row<Isa, true>;
}

}  // namespace cogqat::simd
