#pragma once
// Widening conversions the dequantizers and float dot products share: one batch of floats from unpacked
// levels, from fp16 or from bf16 bits. x86 has single instructions for each (vpmovzxbd + vcvtdq2ps,
// vcvtph2ps); elsewhere xsimd's converting load does the same work lane by lane.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "cogqat/core/float16.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/simd/isa/isa.hpp"

namespace cogqat::simd {

template <class Isa>
using float_batch = batch<float, Isa>;

/// Float lanes per batch of the tag.
template <class Isa>
inline constexpr std::size_t float_lanes = float_batch<Isa>::size;

/// float_lanes<Isa> levels at `p` (bytes; two's complement when `Signed`) minus `offset`, as floats. Exact:
/// a level and its offset are small integers.
template <class Isa, bool Signed>
inline float_batch<Isa> levels_to_float(const std::uint8_t* p, int offset) noexcept {
    constexpr std::size_t lanes = float_lanes<Isa>;
#if defined(__AVX512F__)
    if constexpr (lanes == 16) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m512i wide = Signed ? _mm512_cvtepi8_epi32(bytes) : _mm512_cvtepu8_epi32(bytes);
        return _mm512_cvtepi32_ps(_mm512_sub_epi32(wide, _mm512_set1_epi32(offset)));
    }
#endif
#if defined(__AVX2__)
    if constexpr (lanes == 8) {
        const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
        const __m256i wide = Signed ? _mm256_cvtepi8_epi32(bytes) : _mm256_cvtepu8_epi32(bytes);
        return _mm256_cvtepi32_ps(_mm256_sub_epi32(wide, _mm256_set1_epi32(offset)));
    }
#endif
#if defined(__SSE4_1__)
    if constexpr (lanes == 4) {
        std::int32_t word;
        std::memcpy(&word, p, 4);
        const __m128i bytes = _mm_cvtsi32_si128(word);
        const __m128i wide = Signed ? _mm_cvtepi8_epi32(bytes) : _mm_cvtepu8_epi32(bytes);
        return _mm_cvtepi32_ps(_mm_sub_epi32(wide, _mm_set1_epi32(offset)));
    }
#endif
    alignas(64) float values[lanes];
    for (std::size_t i = 0; i < lanes; ++i) {
        const int level = Signed ? static_cast<int>(static_cast<std::int8_t>(p[i])) : static_cast<int>(p[i]);
        values[i] = static_cast<float>(level - offset);
    }
    return float_batch<Isa>::load_aligned(values);
}

/// float_lanes<Isa> fp16 values at `p` (little-endian bits), exactly as fp16_bits_to_fp32 decodes them
/// (F16C quiets a NaN the same way).
template <class Isa>
inline float_batch<Isa> fp16_to_float(const std::byte* p) noexcept {
    constexpr std::size_t lanes = float_lanes<Isa>;
#if defined(__AVX512F__)
    if constexpr (lanes == 16) return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#endif
#if defined(__F16C__)
    if constexpr (lanes == 8) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#endif
    alignas(64) float values[lanes];
    for (std::size_t i = 0; i < lanes; ++i) {
        std::uint16_t bits;
        std::memcpy(&bits, p + 2 * i, 2);
        values[i] = fp16_bits_to_fp32(bits);
    }
    return float_batch<Isa>::load_aligned(values);
}

/// float_lanes<Isa> bf16 values at `p`: the bits moved to the top half of a float, which is exact.
template <class Isa>
inline float_batch<Isa> bf16_to_float(const std::byte* p) noexcept {
    constexpr std::size_t lanes = float_lanes<Isa>;
#if defined(__AVX512F__)
    if constexpr (lanes == 16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
#endif
#if defined(__AVX2__)
    if constexpr (lanes == 8)
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
#endif
    alignas(64) float values[lanes];
    for (std::size_t i = 0; i < lanes; ++i) {
        std::uint16_t bits;
        std::memcpy(&bits, p + 2 * i, 2);
        values[i] = bf16_bits_to_fp32(bits);
    }
    return float_batch<Isa>::load_aligned(values);
}

// In a strict region as its callers are (the calibrator and scale-search kernels): GCC inlines a function only
// into callers compiled under the same optimization options.
COGQAT_STRICT_FP_BEGIN

/// The low and high halves of a float batch, widened to double (exact). x86 converts each half in one
/// instruction; elsewhere lane by lane through memory.
template <class Isa>
inline std::pair<batch<double, Isa>, batch<double, Isa>> widen_to_double(const float_batch<Isa>& x) noexcept {
    using double_batch = batch<double, Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
#if defined(__AVX512F__)
    if constexpr (lanes == 16) {
        const __m512 v = x;
        const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
        return {_mm512_cvtps_pd(_mm512_castps512_ps256(v)), _mm512_cvtps_pd(high)};
    }
#endif
#if defined(__AVX__)
    if constexpr (lanes == 8) {
        const __m256 v = x;
        return {_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))};
    }
#endif
#if defined(__SSE2__)
    if constexpr (lanes == 4) {
        const __m128 v = x;
        return {_mm_cvtps_pd(v), _mm_cvtps_pd(_mm_movehl_ps(v, v))};
    }
#endif
    constexpr std::size_t half = lanes / 2;
    alignas(64) float f[lanes];
    alignas(64) double d[lanes];
    x.store_aligned(f);
    for (std::size_t i = 0; i < lanes; ++i) d[i] = static_cast<double>(f[i]);
    return {double_batch::load_aligned(d), double_batch::load_aligned(d + half)};
}

COGQAT_STRICT_FP_END

}  // namespace cogqat::simd
