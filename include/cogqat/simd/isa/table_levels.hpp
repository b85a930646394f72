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
#include <cstring>

#include "cogqat/format/table_format.hpp"
#include "cogqat/format/table_formats.hpp"
#include "cogqat/simd/isa/int8_dot.hpp"
#include "cogqat/simd/isa/isa.hpp"
#include "cogqat/simd/isa/unpack.hpp"

#if defined(__SSE2__)
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

/// The table formats with SIMD decoding: the shuffled ones, and tq1_0, whose base-3 digits are computed.
template <class F>
concept SimdTableFormat = ShuffleTableFormat<F> ||(TableFormat<F>&& F::type == ggml_type::tq1_0);

#if defined(__SSE2__)
namespace ternary {

/// Each byte times 3, wrapping: two additions (a register of any width).
template <class Isa, class R>
inline R times3(R x) noexcept {
    if constexpr (sizeof(R) == 32)
        return _mm256_add_epi8(x, _mm256_add_epi8(x, x));
    else
        return _mm_add_epi8(x, _mm_add_epi8(x, x));
}

/// Each byte's top base-3 digit, (x * 3) >> 8: 1 from x = 86 on and 2 from x = 171 on, two signed
/// comparisons after flipping the top bit.
template <class Isa, class R>
inline R top_digit(R x) noexcept {
    if constexpr (sizeof(R) == 32) {
        const __m256i y = _mm256_xor_si256(x, _mm256_set1_epi8(static_cast<char>(0x80)));
        return _mm256_sub_epi8(_mm256_setzero_si256(),
                               _mm256_add_epi8(_mm256_cmpgt_epi8(y, _mm256_set1_epi8(static_cast<char>(85 ^ 0x80))),
                                               _mm256_cmpgt_epi8(y, _mm256_set1_epi8(static_cast<char>(170 ^ 0x80)))));
    } else {
        const __m128i y = _mm_xor_si128(x, _mm_set1_epi8(static_cast<char>(0x80)));
        return _mm_sub_epi8(_mm_setzero_si128(), _mm_add_epi8(_mm_cmpgt_epi8(y, _mm_set1_epi8(static_cast<char>(85 ^ 0x80))),
                                                              _mm_cmpgt_epi8(y, _mm_set1_epi8(static_cast<char>(170 ^ 0x80)))));
    }
}

/// tq1_0's digits of values 160-255 in registers, sixteen values each in value order: bytes 32-47's five
/// digits (values 160 + 16t + m), then the qh bytes' four (values 240 + 4t + m).
template <class Isa>
inline void last_digits(const std::byte* block, __m128i (&digits)[6]) noexcept {
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 32));
    for (unsigned t = 0; t < 5; ++t, x = times3<Isa>(x)) digits[t] = top_digit<Isa>(x);
    // Digit t of qh byte m is value 240 + 4t + m: the four bytes times 1, 3, 9 and 27, side by side.
    std::uint32_t qh = 0;
    std::memcpy(&qh, block + formats::tq1_0::qh_at, 4);
    const __m128i q1 = _mm_set1_epi32(static_cast<int>(qh)), q3 = times3<Isa>(q1), q9 = times3<Isa>(q3), q27 = times3<Isa>(q9);
    digits[5] = top_digit<Isa>(_mm_unpacklo_epi64(_mm_unpacklo_epi32(q1, q3), _mm_unpacklo_epi32(q9, q27)));
}

}  // namespace ternary
#endif

/// tq1_0's 256 base-3 digits (0, 1, 2 for -1, 0, +1) in value order: the five of each of bytes 0-31 (value
/// 32t + m), of bytes 32-47 (160 + 16t + m), and the four of each qh byte (240 + 4t + m). Digit t by ggml's
/// fixed-point trick (format/table_formats.hpp's ternary_digit): the byte times 3^t modulo 256, times 3, over
/// 256; on x86 sixteen bytes at a time, in bytes (ternary::times3, ternary::top_digit).
template <class Isa>
inline void unpack_ternary_digits(const std::byte* block, std::uint8_t* trits) noexcept {
    constexpr std::array<unsigned, 5> pow3{1, 3, 9, 27, 81};
    auto digit = [&](std::byte packed, unsigned t) {
        return static_cast<std::uint8_t>(
                (static_cast<unsigned>(static_cast<std::uint8_t>(std::to_integer<unsigned>(packed) * pow3[t])) * 3u) >> 8);
    };
#if defined(__SSE2__)
    static_cast<void>(digit);
    for (std::size_t half = 0; half < 2; ++half) {
        __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * half));
        for (unsigned t = 0; t < 5; ++t, x = ternary::times3<Isa>(x))
            _mm_storeu_si128(reinterpret_cast<__m128i*>(trits + 32 * t + 16 * half), ternary::top_digit<Isa>(x));
    }
    __m128i last[6];
    ternary::last_digits<Isa>(block, last);
    for (std::size_t k = 0; k < 6; ++k) _mm_storeu_si128(reinterpret_cast<__m128i*>(trits + 160 + 16 * k), last[k]);
#else
    for (unsigned t = 0; t < 5; ++t) {
        for (std::size_t m = 0; m < 32; ++m) trits[32 * t + m] = digit(block[m], t);
        for (std::size_t m = 0; m < 16; ++m) trits[160 + 16 * t + m] = digit(block[32 + m], t);
    }
    for (unsigned t = 0; t < 4; ++t)
        for (std::size_t m = 0; m < 4; ++m) trits[240 + 4 * t + m] = digit(block[formats::tq1_0::qh_at + m], t);
#endif
}

/// The F::block_size table entries of one block, as signed bytes, to `values`.
template <class Isa, SimdTableFormat F>
inline void unpack_table_values(const std::byte* block, std::int8_t* values) noexcept {
    static_assert(F::block_size % 16 == 0);
    if constexpr (F::type == ggml_type::tq1_0) {
        alignas(16) std::uint8_t trits[F::block_size];
        unpack_ternary_digits<Isa>(block, trits);
        for (std::size_t i = 0; i < F::block_size; ++i) values[i] = static_cast<std::int8_t>(trits[i] - 1);
        return;
    } else {
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
