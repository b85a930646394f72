#pragma once
// SIMD quantizers of the 32-value formats (q4_0, q4_1, q5_0, q5_1, q8_0, q8_1), and the lane-level
// building blocks every SIMD quantizer shares (quantize_k.hpp uses them too).
//
// The output must be the reference's bytes (format/legacy_formats.hpp), so each lane repeats the scalar
// arithmetic step for step: the same IEEE operations in the same association, no fused multiply-add (the
// strict-FP region below stops GCC from contracting xsimd's operators), and the reference's exact integer
// conversions (truncation to int32 as x86 does it, the int8 wrap-around) rather than saturating SIMD ones.
// Reductions are only taken where their order cannot change the result: a maximum of magnitudes, a
// minimum of values whose only ambiguity (the sign of a zero) is resolved by looking for the first zero.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <bit>
#include <cfloat>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <immintrin.h>
#define COGQAT_QUANTIZE_X86 1
#else
#define COGQAT_QUANTIZE_X86 0
#endif

#include "cogqat/core/float16.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/format/block_format.hpp"
#include "cogqat/format/legacy_formats.hpp"
#include "cogqat/format/level_layout.hpp"
#include "cogqat/simd/isa/isa.hpp"
#include "cogqat/simd/isa/unpack.hpp"

namespace cogqat::simd::quantize_detail {

template <class A>
using floats = xsimd::batch<float, A>;
template <class A>
using ints = xsimd::batch<std::int32_t, A>;

// Which x86 intrinsics an architecture may use; false everywhere else, where the generic paths run.
template <class A>
inline constexpr bool is_avx512 = COGQAT_QUANTIZE_X86&& std::is_base_of_v<xsimd::avx512f, A>;
template <class A>
inline constexpr bool is_avx2 = COGQAT_QUANTIZE_X86 && !is_avx512<A> && std::is_base_of_v<xsimd::avx2, A>;
template <class A>
inline constexpr bool is_sse4 = COGQAT_QUANTIZE_X86 && !is_avx512<A> && !is_avx2<A> && std::is_base_of_v<xsimd::sse4_1, A>;

/// One bit per lane of a mask, lane 0 in bit 0.
template <class T, class A>
[[nodiscard]] inline std::uint64_t lane_bits(const xsimd::batch_bool<T, A>& m) noexcept {
#if COGQAT_QUANTIZE_X86
    if constexpr (is_avx512<A>) {
        return static_cast<std::uint64_t>(static_cast<typename xsimd::batch_bool<T, A>::register_type>(m));
    } else if constexpr (is_avx2<A> && std::is_same_v<T, float>) {
        return static_cast<std::uint32_t>(_mm256_movemask_ps(m));
    } else if constexpr (is_avx2<A> && sizeof(T) == 1) {
        return static_cast<std::uint32_t>(_mm256_movemask_epi8(m));
    } else if constexpr (is_sse4<A> && std::is_same_v<T, float>) {
        return static_cast<std::uint32_t>(_mm_movemask_ps(m));
    } else if constexpr (is_sse4<A> && sizeof(T) == 1) {
        return static_cast<std::uint32_t>(_mm_movemask_epi8(m));
    } else
#endif
    {
        constexpr std::size_t lanes = xsimd::batch_bool<T, A>::size;
        bool set[lanes];
        m.store_unaligned(set);
        std::uint64_t bits = 0;
        for (std::size_t l = 0; l < lanes; ++l) bits |= static_cast<std::uint64_t>(set[l]) << l;
        return bits;
    }
}

/// The low byte of every lane, written to `out` (as many bytes as lanes): the C++ conversion to uint8_t.
template <class A>
inline void store_low_bytes(const ints<A>& v, std::uint8_t* out) noexcept {
#if COGQAT_QUANTIZE_X86
    if constexpr (is_avx512<A>) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(v));
        return;
    } else if constexpr (is_avx2<A>) {
        // Gather each 128-bit half's four low bytes into its first dword, then the two dwords together.
        const __m256i low = _mm256_shuffle_epi8(v, _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8,
                                                                    12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
        const __m256i joined = _mm256_permutevar8x32_epi32(low, _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(joined));
        return;
    } else if constexpr (is_sse4<A>) {
        const __m128i low = _mm_shuffle_epi8(v, _mm_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
        const auto word = static_cast<std::uint32_t>(_mm_cvtsi128_si32(low));
        std::memcpy(out, &word, 4);
        return;
    }
#endif
    constexpr std::size_t lanes = ints<A>::size;
    alignas(64) std::int32_t lane[lanes];
    v.store_aligned(lane);
    for (std::size_t l = 0; l < lanes; ++l) out[l] = static_cast<std::uint8_t>(lane[l]);
}

/// Horizontal maximum of magnitudes or other NaN-free values where equal values have equal bits, so that
/// the order of the comparisons cannot matter.
template <class A>
[[nodiscard]] inline float reduce_max(const floats<A>& v) noexcept {
#if COGQAT_QUANTIZE_X86
    if constexpr (is_avx512<A>) {
        return _mm512_reduce_max_ps(v);
    } else if constexpr (is_avx2<A>) {
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
    } else if constexpr (is_sse4<A>) {
        __m128 m = _mm_max_ps(v, _mm_movehl_ps(v, v));
        return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
    }
#endif
    constexpr std::size_t lanes = floats<A>::size;
    alignas(64) float lane[lanes];
    v.store_aligned(lane);
    float m = lane[0];
    for (std::size_t l = 1; l < lanes; ++l) m = lane[l] > m ? lane[l] : m;
    return m;
}

/// As reduce_max, the minimum.
template <class A>
[[nodiscard]] inline float reduce_min(const floats<A>& v) noexcept {
    return -reduce_max<A>(-v);
}

COGQAT_STRICT_FP_BEGIN

/// cogqat::detail::nearest_int in every lane, the same integer for every input (inf and NaN included).
template <class A>
[[nodiscard]] inline ints<A> nearest_int(const floats<A>& x) noexcept {
    const auto shifted = xsimd::bitwise_cast<ints<A>>(x + floats<A>(12582912.0f));
    return (shifted & ints<A>(0x7fffff)) - ints<A>(0x400000);
}

/// cogqat::detail::truncate_to_int32 in every lane: NaN and out-of-range values give INT32_MIN.
template <class A>
[[nodiscard]] inline ints<A> truncate_to_int32(const floats<A>& x) noexcept {
    const ints<A> truncated = xsimd::batch_cast<std::int32_t>(x);
#if COGQAT_QUANTIZE_X86
    // cvttps2dq already answers INT32_MIN ("integer indefinite") for exactly those inputs.
    return truncated;
#else
    const auto in_range = (x >= floats<A>(-2147483648.0f)) & (x < floats<A>(2147483648.0f));
    return xsimd::select(xsimd::bool_cast(in_range), truncated, ints<A>(INT32_MIN));
#endif
}

/// The int32 lanes reinterpreted as their low byte, sign-extended: the (int8_t) cast of the reference.
template <class A>
[[nodiscard]] inline ints<A> wrap_to_int8(const ints<A>& v) noexcept {
    return (v << 24) >> 24;
}

/// std::round (halves away from zero) in every lane, exact for every float.
template <class A>
[[nodiscard]] inline floats<A> round_half_away(const floats<A>& x) noexcept {
    const floats<A> t = xsimd::trunc(x);
    const floats<A> rest = x - t;  // exact; NaN for infinities, which then keep t
    const floats<A> zero(0.0f);
    return t + xsimd::select(rest >= floats<A>(0.5f), floats<A>(1.0f), xsimd::select(rest <= floats<A>(-0.5f), floats<A>(-1.0f), zero));
}

/// Index of the first of the `n` values at `x` (a multiple of the batch size) equal to `target`, or `n`.
template <class A>
[[nodiscard]] inline std::size_t first_equal(const float* x, std::size_t n, float target) noexcept {
    for (std::size_t i = 0; i < n; i += floats<A>::size)
        if (const std::uint64_t bits = lane_bits(floats<A>::load_unaligned(x + i) == floats<A>(target)))
            return i + static_cast<std::size_t>(std::countr_zero(bits));
    return n;
}

/// The reference's largest_magnitude over the `n` values at `x` (a multiple of the batch size): the
/// maximum magnitude and the signed value of its first occurrence.
template <class A>
[[nodiscard]] inline cogqat::detail::extreme largest_magnitude(const float* x, std::size_t n) noexcept {
    floats<A> m(0.0f);
    for (std::size_t i = 0; i < n; i += floats<A>::size) m = xsimd::max(m, xsimd::abs(floats<A>::load_unaligned(x + i)));
    const float magnitude = reduce_max<A>(m);
    if (!(magnitude > 0.0f)) return {};
    const floats<A> target(magnitude);
    for (std::size_t i = 0;; i += floats<A>::size)
        if (const std::uint64_t bits = lane_bits(xsimd::abs(floats<A>::load_unaligned(x + i)) == target))
            return {x[i + static_cast<std::size_t>(std::countr_zero(bits))], magnitude};
}

COGQAT_STRICT_FP_END

// ------------------------------------------------------------------------------------------ level packing

template <class Isa, level_plane Plane>
inline void pack_plane(const std::uint8_t* levels, std::size_t n, std::byte* block) noexcept {
    auto* out = reinterpret_cast<std::uint8_t*>(block) + Plane.offset;
    constexpr auto mask = static_cast<std::uint8_t>((1u << Plane.bits) - 1u);
    if constexpr (Plane.order == plane_order::sequential) {
        static_assert(Plane.bits == 1, "sequential planes of more than one bit have no SIMD packing");
        using bytes = xsimd::batch<std::uint8_t, typename simd::detail::plane_arch<Isa, Plane.stripe>::type>;
        constexpr std::size_t width = bytes::size;
        static_assert(width % 8 == 0 && Plane.stripe % width == 0);
        for (std::size_t i = 0; i < n; i += width) {
            const bytes v = bytes::load_unaligned(levels + i);
            const std::uint64_t bits = lane_bits((v & bytes(static_cast<std::uint8_t>(1u << Plane.level_shift))) != bytes(0));
            for (std::size_t b = 0; b < width / 8; ++b) out[i / 8 + b] = static_cast<std::uint8_t>(bits >> (8 * b));
        }
    } else {
        constexpr std::size_t positions = 8 / Plane.bits, stripe_bytes = Plane.stripe * Plane.bits / 8;
        static_assert(stripe_bytes == Plane.lanes, "a strided plane's stripe fills its lanes' bytes");
        using arch = typename simd::detail::plane_arch<Isa, Plane.lanes>::type;
        using bytes = xsimd::batch<std::uint8_t, arch>;
        // Shifts run on 16-bit lanes (x86 has no byte shifts); masking first keeps bits inside their byte.
        using words = xsimd::batch<std::uint16_t, arch>;
        constexpr std::size_t width = bytes::size;
        static_assert(Plane.lanes % width == 0, "plane lanes must be a multiple of 16 bytes");
        const words word_mask(static_cast<std::uint16_t>(mask | (mask << 8)));
        for (std::size_t s = 0; s < n / Plane.stripe; ++s) {
            const std::uint8_t* src = levels + s * Plane.stripe;
            for (std::size_t j = 0; j < Plane.lanes; j += width) {
                words packed(static_cast<std::uint16_t>(0));
                for (std::size_t k = 0; k < positions; ++k) {
                    words part = xsimd::bitwise_cast<words>(bytes::load_unaligned(src + k * Plane.lanes + j));
                    if constexpr (Plane.level_shift != 0) part = part >> static_cast<int>(Plane.level_shift);
                    if constexpr (Plane.bits < 8) part = part & word_mask;
                    if (k != 0) part = part << static_cast<int>(k * Plane.bits);
                    packed = packed | part;
                }
                xsimd::bitwise_cast<bytes>(packed).store_unaligned(out + s * stripe_bytes + j);
            }
        }
    }
}

/// Writes the F::block_size levels of one block into its planes, as store_levels<F> does.
template <class Isa, BlockFormat F>
inline void pack_levels(const std::uint8_t* levels, std::byte* block) noexcept {
    [&]<std::size_t... P>(std::index_sequence<P...>) { (pack_plane<Isa, F::planes[P]>(levels, F::block_size, block), ...); }
    (std::make_index_sequence<F::planes.size()>{});
}

// ------------------------------------------------------------------------------------ the 32-value formats

COGQAT_STRICT_FP_BEGIN

/// q4_0 / q5_0 rows (formats::symmetric_32).
template <class Isa, BlockFormat F>
void quantize_symmetric_32(const float* x, std::byte* out, std::size_t n) noexcept {
    using A = typename Isa::arch;
    constexpr std::size_t width = floats<A>::size;
    for (std::size_t b = 0; b < n / 32; ++b, x += 32, out += F::type_size) {
        const float d = largest_magnitude<A>(x, 32).value / -F::level_offset;
        const float inverse = d ? 1.0f / d : 0.0f;
        formats::detail::store_fp16(out, d);
        const floats<A> scale(inverse), bias(F::level_offset + 0.5f);
        alignas(32) std::uint8_t levels[32];
        for (std::size_t i = 0; i < 32; i += width) {
            const ints<A> raw = wrap_to_int8<A>(truncate_to_int32<A>(floats<A>::load_unaligned(x + i) * scale + bias));
            store_low_bytes<A>(xsimd::min(raw, ints<A>(max_level<F>)), levels + i);
        }
        pack_levels<Isa, F>(levels, out);
    }
}

/// q4_1 / q5_1 rows (formats::affine_32).
template <class Isa, BlockFormat F>
void quantize_affine_32(const float* x, std::byte* out, std::size_t n) noexcept {
    using A = typename Isa::arch;
    constexpr std::size_t width = floats<A>::size;
    for (std::size_t b = 0; b < n / 32; ++b, x += 32, out += F::type_size) {
        floats<A> lo(FLT_MAX), hi(-FLT_MAX);
        for (std::size_t i = 0; i < 32; i += width) {
            const floats<A> v = floats<A>::load_unaligned(x + i);
            lo = xsimd::min(lo, v);
            hi = xsimd::max(hi, v);
        }
        float min = reduce_min<A>(lo);
        float max = reduce_max<A>(hi);
        // The reference keeps the first of equal extremes; only zeros of both signs are equal yet differ.
        if (min == 0.0f) min = x[first_equal<A>(x, 32, 0.0f)];
        if (max == 0.0f) max = x[first_equal<A>(x, 32, 0.0f)];
        const float d = (max - min) / max_level<F>;
        const float inverse = d ? 1.0f / d : 0.0f;
        formats::detail::store_fp16(out, d);
        formats::detail::store_fp16(out + 2, min);
        const floats<A> offset(min), scale(inverse), half(0.5f);
        alignas(32) std::uint8_t levels[32];
        for (std::size_t i = 0; i < 32; i += width) {
            ints<A> raw = wrap_to_int8<A>(truncate_to_int32<A>((floats<A>::load_unaligned(x + i) - offset) * scale + half));
            // The 4-bit level is clamped; the 5-bit one wraps (its planes keep the low 5 bits).
            if constexpr (max_level<F> == 15) raw = xsimd::min(raw, ints<A>(15));
            store_low_bytes<A>(raw, levels + i);
        }
        pack_levels<Isa, F>(levels, out);
    }
}

/// q8_0 / q8_1 rows (formats::int8_32); q8_1 also stores d times the sum of its levels.
template <class Isa, BlockFormat F>
void quantize_int8_32(const float* x, std::byte* out, std::size_t n) noexcept {
    using A = typename Isa::arch;
    constexpr std::size_t width = floats<A>::size;
    constexpr bool with_sum = F::type == ggml_type::q8_1;
    for (std::size_t b = 0; b < n / 32; ++b, x += 32, out += F::type_size) {
        floats<A> m(0.0f);
        for (std::size_t i = 0; i < 32; i += width) m = xsimd::max(m, xsimd::abs(floats<A>::load_unaligned(x + i)));
        const float d = reduce_max<A>(m) / ((1 << 7) - 1);
        const float inverse = d ? 1.0f / d : 0.0f;
        formats::detail::store_fp16(out, d);
        const floats<A> scale(inverse);
        ints<A> sum(0);
        auto* levels = reinterpret_cast<std::uint8_t*>(out) + F::quants_offset;
        for (std::size_t i = 0; i < 32; i += width) {
            const ints<A> q = truncate_to_int32<A>(round_half_away<A>(floats<A>::load_unaligned(x + i) * scale));
            store_low_bytes<A>(q, levels + i);
            if constexpr (with_sum) sum = sum + wrap_to_int8<A>(q);
        }
        if constexpr (with_sum) formats::detail::store_fp16(out + 2, static_cast<float>(xsimd::hadd(sum)) * d);
    }
}

COGQAT_STRICT_FP_END

}  // namespace cogqat::simd::quantize_detail

namespace cogqat::simd {

/// Fills the quantize kernels of q4_0, q4_1, q5_0, q5_1, q8_0 and q8_1 for `Isa`.
template <class Isa>
void add_block_quantize_kernels(dispatch::kernel_table& t) {
    namespace q = quantize_detail;
    t[ggml_type::q4_0].quantize = &q::quantize_symmetric_32<Isa, formats::q4_0>;
    t[ggml_type::q5_0].quantize = &q::quantize_symmetric_32<Isa, formats::q5_0>;
    t[ggml_type::q4_1].quantize = &q::quantize_affine_32<Isa, formats::q4_1>;
    t[ggml_type::q5_1].quantize = &q::quantize_affine_32<Isa, formats::q5_1>;
    t[ggml_type::q8_0].quantize = &q::quantize_int8_32<Isa, formats::q8_0>;
    t[ggml_type::q8_1].quantize = &q::quantize_int8_32<Isa, formats::q8_1>;
}

}  // namespace cogqat::simd
