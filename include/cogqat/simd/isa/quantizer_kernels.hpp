#pragma once
// The generic quantizer's loops (quant/quantizer.hpp) on SIMD lanes, over many groups per call: the range
// scan with the finiteness check, encode and decode. Each lane does the same IEEE operations as the
// reference (core/affine_levels.hpp): a division, a clamp, the rounding trick of nearest_int and an integer
// offset, so codes, ranges and decoded floats are the reference's bit for bit.
//
// A call covers whole groups of one length with their parameters in an array, so the quantizer reaches the
// table once per chunk of a tensor rather than once per group, and a group of 32 costs two vectors plus a
// broadcast instead of an indirect call.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE4_1__) || defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "cogqat/core/affine_levels.hpp"
#include "cogqat/core/policy.hpp"
#include "cogqat/core/rounding.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/simd/isa/convert.hpp"
#include "cogqat/simd/isa/isa.hpp"
#include "cogqat/simd/isa/quantize_blocks.hpp"

namespace cogqat::simd {

COGQAT_STRICT_FP_BEGIN

namespace quantizer_detail {

/// A value that is +0 for a finite x and NaN for NaN or Inf: summed over a run, one NaN says "look closer"
/// at the cost of a subtraction and an addition per vector.
template <class Isa>
inline float_batch<Isa> non_finite_probe(float_batch<Isa> x) noexcept {
    return x - x;
}

/// Index of the first NaN or Inf among x[0, n), or n.
inline std::size_t first_non_finite(const float* x, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i)
        if (!(x[i] - x[i] == 0.0f)) return i;
    return n;
}

/// The first zero of a group (its sign bit included): reference::value_range keeps the earliest of equal
/// values, which SIMD minima and maxima do not, and only zeros of two signs compare equal with other bits.
inline float first_zero(const float* x, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i)
        if (x[i] == 0.0f) return x[i];
    return 0.0f;
}

/// reference::value_range of one group, exact when its values are finite; NaN and Inf are added to `probe`
/// (non_finite_probe) and `tail_probe`, for the caller to look at once per run of groups.
template <class Isa>
inline void group_range(const float* x, std::size_t n, float& lo, float& hi, float_batch<Isa>& probe, float& tail_probe) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    std::size_t i = 0;
    float l = x[0], h = x[0];
    if (n >= lanes) {
        fb vl = fb::load_unaligned(x), vh = vl;
        probe = probe + non_finite_probe<Isa>(vl);
        for (i = lanes; i + lanes <= n; i += lanes) {
            const fb v = fb::load_unaligned(x + i);
            vl = xsimd::min(vl, v);
            vh = xsimd::max(vh, v);
            probe = probe + non_finite_probe<Isa>(v);
        }
        l = quantize_detail::reduce_min<typename Isa::arch>(vl);
        h = quantize_detail::reduce_max<typename Isa::arch>(vh);
    }
    for (; i < n; ++i) {
        l = x[i] < l ? x[i] : l;
        h = h < x[i] ? x[i] : h;
        tail_probe = tail_probe + (x[i] - x[i]);
    }
    if (l == 0.0f) l = first_zero(x, n);
    if (h == 0.0f) h = first_zero(x, n);
    lo = l;
    hi = h;
}

template <class Isa>
std::size_t group_ranges(const float* x, std::size_t length, std::size_t groups, float* lo, float* hi) noexcept {
    const std::size_t n = length * groups;
    if (length == 0) return n;
    float_batch<Isa> probe(0.0f);
    float tail_probe = 0.0f;
    for (std::size_t g = 0; g < groups; ++g) group_range<Isa>(x + g * length, length, lo[g], hi[g], probe, tail_probe);
    // The ranges of a run with a NaN or Inf are meaningless; the caller only needs where the first one is.
    if (xsimd::any(xsimd::isnan(probe)) || !(tail_probe == 0.0f)) return first_non_finite(x, n);
    return n;
}

/// Writes lanes of scales and zero-points as affine_params.
template <class Isa>
inline void store_params(float_batch<Isa> scale, batch<std::int32_t, Isa> zero, affine_params* out) noexcept {
    constexpr std::size_t lanes = float_lanes<Isa>;
    alignas(64) float s[lanes];
    alignas(64) std::int32_t z[lanes];
    scale.store_aligned(s);
    zero.store_aligned(z);
    for (std::size_t l = 0; l < lanes; ++l) out[l] = {s[l], z[l]};
}

template <class Isa>
void symmetric_params(const float* lo, const float* hi, std::size_t groups, int max_level, affine_params* params) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    const fb top(static_cast<float>(max_level));
    std::size_t g = 0;
    for (; g + lanes <= groups; g += lanes) {
        const fb a = xsimd::abs(fb::load_unaligned(lo + g)), b = xsimd::abs(fb::load_unaligned(hi + g));
        // std::max(a, b) is a < b ? b : a; written so, whatever the instruction does with equal zeros.
        store_params<Isa>(xsimd::select(a < b, b, a) / top, batch<std::int32_t, Isa>(0), params + g);
    }
    for (; g < groups; ++g) {
        const float a = std::fabs(lo[g]), b = std::fabs(hi[g]);
        params[g] = {(a < b ? b : a) / static_cast<float>(max_level), 0};
    }
}

template <class Isa>
void asymmetric_params(const float* lo, const float* hi, std::size_t groups, int max_level, affine_params* params) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    const float top_1 = static_cast<float>(max_level);
    const fb top(top_1), zero(0.0f), largest(FLT_MAX);
    std::size_t g = 0;
    for (; g + lanes <= groups; g += lanes) {
        // The reference's steps, each std::min / std::max / std::clamp written as its comparison.
        const fb l0 = fb::load_unaligned(lo + g), h0 = fb::load_unaligned(hi + g);
        const fb l = xsimd::select(zero < l0, zero, l0), h = xsimd::select(h0 < zero, zero, h0);
        fb scale = (h - l) / top;
        scale = xsimd::select(xsimd::abs(scale) <= largest, scale, h / top - l / top);
        const auto degenerate = scale == zero;
        const fb v = -l / scale;
        // A degenerate group's lanes divided by zero; it gets {0, 0}, the rounding of 0 is 0.
        const fb clamped = xsimd::select(degenerate, zero, xsimd::select(v < zero, zero, xsimd::select(top < v, top, v)));
        store_params<Isa>(xsimd::select(degenerate, zero, scale), quantize_detail::nearest_int<typename Isa::arch>(clamped), params + g);
    }
    for (; g < groups; ++g) {
        const float l = 0.0f < lo[g] ? 0.0f : lo[g], h = hi[g] < 0.0f ? 0.0f : hi[g];
        float scale = (h - l) / top_1;
        if (!(std::fabs(scale) <= FLT_MAX)) scale = h / top_1 - l / top_1;
        if (scale == 0.0f) {
            params[g] = {0.0f, 0};
            continue;
        }
        const float v = -l / scale;
        params[g] = {scale, cogqat::detail::nearest_int(v < 0.0f ? 0.0f : (top_1 < v ? top_1 : v))};
    }
}

/// reference::super_block_rules' super_scale, scale_code, zero_code and params for zero_step 1, each operation the
/// reference's: the division and the ceil on lanes (baseline code has no SSE4.1 ceil, so there it is a call).
template <class Isa>
void super_block_codes(affine_params* params, std::size_t groups, std::size_t per_block, int max_scale_code, int min_level,
                       bool zero_points, sub_scale* stored, float* super_scales) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    const float top = static_cast<float>(max_scale_code);
    for (std::size_t b = 0; b * per_block < groups; ++b) {
        float largest = 0.0f;
        for (std::size_t k = b * per_block; k < (b + 1) * per_block; ++k) largest = largest < params[k].scale ? params[k].scale : largest;
        super_scales[b] = largest / top;
    }
    auto finish = [&](std::size_t g, float code) {
        const int zero = params[g].zero_point;
        stored[g] = {static_cast<std::uint16_t>(code), static_cast<std::uint16_t>(zero_points ? zero - min_level : 0)};
        params[g] = {super_scales[g / per_block] * code, zero_points ? zero : 0};
    };
    alignas(64) float scale[lanes], super[lanes], code[lanes];
    const fb zero(0.0f), largest_code(top);
    std::size_t g = 0;
    for (; g + lanes <= groups; g += lanes) {
        for (std::size_t l = 0; l < lanes; ++l) scale[l] = params[g + l].scale, super[l] = super_scales[(g + l) / per_block];
        const fb s = fb::load_aligned(scale), u = fb::load_aligned(super);
        const fb steps = xsimd::ceil(s / u);
        // std::min(steps, top) is top < steps ? top : steps; a zero super-scale (its lanes divided by 0) gives 0.
        xsimd::select(u == zero, zero, xsimd::select(largest_code < steps, largest_code, steps)).store_aligned(code);
        for (std::size_t l = 0; l < lanes; ++l) finish(g + l, code[l]);
    }
    for (; g < groups; ++g) {
        const float u = super_scales[g / per_block];
        const float steps = u == 0.0f ? 0.0f : std::ceil(params[g].scale / u);
        finish(g, top < steps ? top : steps);
    }
}

/// Stores int32 lanes holding codes below 2^16 as 16-bit words.
template <class Isa>
inline void store_words(batch<std::int32_t, Isa> v, std::uint16_t* out) noexcept {
    constexpr std::size_t lanes = float_lanes<Isa>;
#if defined(__AVX512F__)
    if constexpr (lanes == 16) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(v));
        return;
    }
#endif
#if defined(__AVX2__)
    if constexpr (lanes == 8) {
        // packus works within 128-bit halves; the permute joins the two halves' words.
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(v, v), 0x08);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(packed));
        return;
    }
#endif
#if defined(__SSE4_1__)
    if constexpr (lanes == 4) {
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi32(v, v));
        return;
    }
#endif
    alignas(64) std::int32_t lane[lanes];
    v.store_aligned(lane);
    for (std::size_t l = 0; l < lanes; ++l) out[l] = static_cast<std::uint16_t>(lane[l]);
}

template <class Isa>
inline void store_codes(batch<std::int32_t, Isa> v, std::uint8_t* out) noexcept {
    quantize_detail::store_low_bytes<typename Isa::arch>(v, out);
}
template <class Isa>
inline void store_codes(batch<std::int32_t, Isa> v, std::uint16_t* out) noexcept {
    store_words<Isa>(v, out);
}

/// float_lanes<Isa> 16-bit codes minus `offset`, as floats (exact: both are below 2^17).
template <class Isa>
inline float_batch<Isa> words_to_float(const std::uint16_t* p, int offset) noexcept {
    constexpr std::size_t lanes = float_lanes<Isa>;
#if defined(__AVX512F__)
    if constexpr (lanes == 16) {
        const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
        return _mm512_cvtepi32_ps(_mm512_sub_epi32(wide, _mm512_set1_epi32(offset)));
    }
#endif
#if defined(__AVX2__)
    if constexpr (lanes == 8) {
        const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return _mm256_cvtepi32_ps(_mm256_sub_epi32(wide, _mm256_set1_epi32(offset)));
    }
#endif
#if defined(__SSE4_1__)
    if constexpr (lanes == 4) {
        const __m128i wide = _mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
        return _mm_cvtepi32_ps(_mm_sub_epi32(wide, _mm_set1_epi32(offset)));
    }
#endif
    alignas(64) float values[lanes];
    for (std::size_t l = 0; l < lanes; ++l) values[l] = static_cast<float>(static_cast<int>(p[l]) - offset);
    return float_batch<Isa>::load_aligned(values);
}

template <class Isa>
inline float_batch<Isa> codes_to_float(const std::uint8_t* p, int offset) noexcept {
    return levels_to_float<Isa, false>(p, offset);
}
template <class Isa>
inline float_batch<Isa> codes_to_float(const std::uint16_t* p, int offset) noexcept {
    return words_to_float<Isa>(p, offset);
}

template <class Isa, class Code>
void encode_groups(const float* x, std::size_t length, std::size_t groups, const affine_params* params, int min_level, int max_level,
                   Code* codes) noexcept {
    using fb = float_batch<Isa>;
    using ib = batch<std::int32_t, Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    for (std::size_t g = 0; g < groups; ++g, x += length, codes += length) {
        const affine_params p = params[g];
        if (p.scale == 0.0f) {
            // No division to do: every code is the zero-point's, as the reference gives.
            const auto code = static_cast<Code>(p.zero_point - min_level);
            for (std::size_t i = 0; i < length; ++i) codes[i] = code;
            continue;
        }
        const float below = static_cast<float>(min_level - p.zero_point), above = static_cast<float>(max_level - p.zero_point);
        const fb s(p.scale), vbelow(below), vabove(above);
        const ib offset(p.zero_point - min_level);
        std::size_t i = 0;
        for (; i + lanes <= length; i += lanes) {
            // std::clamp(v, a, b) is v < a ? a : (b < v ? b : v): min/max give the same for lanes that are not
            // NaN (a finite x over a non-zero scale never is), up to the sign of a zero, which rounds away.
            const fb steps = xsimd::min(xsimd::max(fb::load_unaligned(x + i) / s, vbelow), vabove);
            store_codes<Isa>(quantize_detail::nearest_int<typename Isa::arch>(steps) + offset, codes + i);
        }
        for (; i < length; ++i) {
            const float v = x[i] / p.scale;
            const float steps = v < below ? below : (above < v ? above : v);
            codes[i] = static_cast<Code>(cogqat::detail::nearest_int(steps) + p.zero_point - min_level);
        }
    }
}

template <class Isa, class Code>
void decode_groups(const Code* codes, std::size_t length, std::size_t groups, const affine_params* params, int min_level,
                   float* out) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    for (std::size_t g = 0; g < groups; ++g, codes += length, out += length) {
        const affine_params p = params[g];
        // scale * (level - zero_point) with level = code + min_level: the integer part is exact.
        const int offset = p.zero_point - min_level;
        const fb s(p.scale);
        std::size_t i = 0;
        for (; i + lanes <= length; i += lanes) (s * codes_to_float<Isa>(codes + i, offset)).store_unaligned(out + i);
        for (; i < length; ++i) out[i] = p.scale * static_cast<float>(static_cast<int>(codes[i]) - offset);
    }
}

}  // namespace quantizer_detail

COGQAT_STRICT_FP_END

/// Fills the generic quantizer's kernels.
template <class Isa>
void add_quantizer_kernels(dispatch::kernel_table& t) {
    t.quantizer.group_ranges = &quantizer_detail::group_ranges<Isa>;
    t.quantizer.symmetric_params = &quantizer_detail::symmetric_params<Isa>;
    t.quantizer.asymmetric_params = &quantizer_detail::asymmetric_params<Isa>;
    t.quantizer.super_block_codes = &quantizer_detail::super_block_codes<Isa>;
    t.quantizer.encode_u8 = &quantizer_detail::encode_groups<Isa, std::uint8_t>;
    t.quantizer.encode_u16 = &quantizer_detail::encode_groups<Isa, std::uint16_t>;
    t.quantizer.decode_u8 = &quantizer_detail::decode_groups<Isa, std::uint8_t>;
    t.quantizer.decode_u16 = &quantizer_detail::decode_groups<Isa, std::uint16_t>;
}

}  // namespace cogqat::simd
