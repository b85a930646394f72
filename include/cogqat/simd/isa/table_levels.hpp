#pragma once
// The signed table entries of a table-decoded format (iq4_nl, iq4_xs, mxfp4: format/table_formats.hpp) out of
// a block's index plane: the indices are unpacked as any level plane is (simd/isa/unpack.hpp, int8_dot.hpp's
// load_levels), then looked up in the 16-entry table with one byte shuffle. The one decoding step the
// dequantizer, the float dot product and the quantized dot products of these formats share.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <array>
#include <cstddef>
#include <cstdint>

#include "cogqat/format/table_format.hpp"
#include "cogqat/simd/isa/int8_dot.hpp"
#include "cogqat/simd/isa/isa.hpp"
#include "cogqat/simd/isa/unpack.hpp"

#if defined(__SSSE3__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace cogqat::simd {

/// A table format whose indices are codes of at most 4 bits in level planes (iq4_nl, iq4_xs and mxfp4's 16
/// entries, tq2_0's 4): what the byte-shuffle lookup serves.
template <class F>
concept ShuffleTableFormat = TableFormat<F> && PlanedLayout<F> && F::values.size() <= 16;

/// The 4-bit ones, whose codes the nibble loops of the x86 dots load directly.
template <class F>
concept NibbleTableFormat = ShuffleTableFormat<F> && F::values.size() == 16;

/// F's table as a constant of the instruction set's own (a per-ISA unit defines nothing another unit shares:
/// scripts/check_isa_symbols.sh), padded with zeros to the shuffle's 16 entries.
template <class Isa, ShuffleTableFormat F>
inline constexpr std::array<std::int8_t, 16> level_table = [] {
    std::array<std::int8_t, 16> table{};
    for (std::size_t i = 0; i < F::values.size(); ++i) table[i] = F::values[i];
    return table;
}();

/// The F::block_size table entries of one block, as signed bytes, to `values`.
template <class Isa, ShuffleTableFormat F>
inline void unpack_table_values(const std::byte* block, std::int8_t* values) noexcept {
    static_assert(F::block_size % 16 == 0);
#if defined(__SSSE3__)
    constexpr level_plane plane = F::planes[0];
    if constexpr (F::planes.size() == 1 && plane.order == plane_order::strided && plane.bits == 4 && plane.lanes == 16) {
        // The formats' own layout (values j and j + 16 of each 32 share byte j): both nibbles of 16 bytes
        // straight into the shuffle, without the indices going through memory.
        const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(level_table<Isa, F>.data()));
        const __m128i mask = _mm_set1_epi8(0x0f);
        for (std::size_t s = 0; s < F::block_size / 32; ++s) {
            const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + plane.offset + 16 * s));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(values + 32 * s), _mm_shuffle_epi8(table, _mm_and_si128(bytes, mask)));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(values + 32 * s + 16),
                             _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(bytes, 4), mask)));
        }
        return;
    }
#endif
    alignas(64) std::uint8_t indices[F::block_size];
    unpack_levels<Isa, F>(block, indices);
#if defined(__SSSE3__)
    const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(level_table<Isa, F>.data()));
    for (std::size_t i = 0; i < F::block_size; i += 16)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(values + i),
                         _mm_shuffle_epi8(table, _mm_load_si128(reinterpret_cast<const __m128i*>(indices + i))));
#elif defined(__aarch64__)
    const int8x16_t table = vld1q_s8(level_table<Isa, F>.data());
    for (std::size_t i = 0; i < F::block_size; i += 16) vst1q_s8(values + i, vqtbl1q_s8(table, vld1q_u8(indices + i)));
#else
    for (std::size_t i = 0; i < F::block_size; ++i) values[i] = level_table<Isa, F>[indices[i]];
#endif
}

#if defined(__AVX2__)

namespace int8 {

/// The table entries (signed bytes) of the V::bytes values of F from value `First` of the block at `p`.
template <class Isa, class V, NibbleTableFormat F, std::size_t First>
typename V::ireg load_table_values(const std::byte* p) noexcept {
    const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(level_table<Isa, F>.data()));
    return V::lookup16(table, load_levels<V, F, First>(p));
}

}  // namespace int8

#endif  // __AVX2__

}  // namespace cogqat::simd
