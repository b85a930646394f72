#pragma once
// Dot products of quantized weight rows with quantized activations, as llama.cpp's CPU backend computes a
// matmul (format/vec_dot.hpp has the scalar reference), and the activation quantizers they consume.
//
// The integer part is exact on every path: weight levels are unsigned bytes, activations signed bytes, and
// u8 x s8 products are summed without saturation (VNNI dpbusd, or maddubs while levels stay below 128; the
// two's complement levels of q8_0 take a sign-extending path without VNNI). A format's level offset is
// taken off afterwards through the activations' sums, sum((L - off) * a) = sum(L * a) - off * sum(a), and
// the K formats' sub-block scales multiply int16 pair sums (dpwssd / madd) in int32. What goes to float is
// always an exact integer sum of the reference's own terms: a super-block's whole total where a level offset
// must cancel first (q3_K, q6_K), else partial sums lane by lane (the products, and the min terms, of q2_K,
// q4_K and q5_K). Only the float accumulation order differs from the reference.
//
// The table formats (iq4_nl, mxfp4, iq4_xs) look their signed entries up by a byte shuffle and move each
// activation's sign onto them, so that u8 x s8 products stay exact for every activation byte; the 32-value
// ones run the legacy formats' loop, iq4_xs one of the K formats' shape. tq2_0's 2-bit codes (value c - 1) go
// into maddubs as they are, the activations' sums taken off.
//
// Widths: AVX-512 holds two 32-value blocks (or, for q3_K and q6_K, a quarter of a K super-block) per
// register; the other K formats, and everything on AVX2, use 256-bit registers. Other instruction sets get
// a generic path over simd::unpack_levels.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "cogqat/core/float16.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/format/activation_quantize.hpp"
#include "cogqat/format/block_format.hpp"
#include "cogqat/format/k_formats.hpp"
#include "cogqat/format/legacy_formats.hpp"
#include "cogqat/format/table_format.hpp"
#include "cogqat/format/table_formats.hpp"
#include "cogqat/simd/isa/baseline_call.hpp"
#include "cogqat/simd/isa/int8_dot.hpp"
#include "cogqat/simd/isa/isa.hpp"
#include "cogqat/simd/isa/table_levels.hpp"
#include "cogqat/simd/isa/unpack.hpp"
#include "cogqat/simd/unrolled.hpp"

namespace cogqat::simd {

namespace qdot {

/// Register width in bytes of the x86 paths for a tag, 0 where the generic path is used.
template <class Isa>
inline constexpr std::size_t x86_width =
#if defined(__AVX512BW__)
        std::is_same_v<typename Isa::arch, xsimd::avx512bw> ? 64 :
#endif
#if defined(__AVX2__)
        std::is_same_v<typename Isa::arch, xsimd::fma3<xsimd::avx2>> ? 32
                                                                     :
#endif
                                                                     0;

// ------------------------------------------------------------------------------------------ generic path

/// Any instruction set: levels unpacked per block by the plane-driven unpacker, integer sums per
/// sub-block, then the reference's float steps.
template <class Isa, BlockFormat W, BlockFormat A>
float dot_generic(const std::byte* w, const std::byte* a, std::size_t n) noexcept {
    constexpr std::size_t quants = A::planes[0].offset;
    alignas(64) std::uint8_t levels[W::block_size];
    float sum = 0.0f;
    for (std::size_t b = 0; b < n / W::block_size; ++b) {
        const std::byte* wb = w + b * W::type_size;
        const std::size_t first = b * W::block_size;
        const std::byte* ab = a + (first / A::block_size) * A::type_size;
        const auto* q = reinterpret_cast<const std::int8_t*>(ab + quants) + first % A::block_size;
        unpack_levels<Isa, W>(wb, levels);
        const float da = sub_block_scale<Isa, A>(ab, 0).scale;
        for (std::size_t sub = 0; sub < W::block_size / W::sub_block_size; ++sub) {
            int products = 0, activations = 0;
            for (std::size_t j = 0; j < W::sub_block_size; ++j) {
                const std::size_t i = sub * W::sub_block_size + j;
                const int level = W::signed_levels ? static_cast<std::int8_t>(levels[i]) : static_cast<int>(levels[i]);
                products += (level - W::level_offset) * q[i];
                activations += q[i];
            }
            const affine_scale sw = sub_block_scale<Isa, W>(wb, sub);
            sum += da * (sw.scale * static_cast<float>(products));
            if constexpr (W::has_min) sum -= da * (sw.min * static_cast<float>(activations));
        }
    }
    return sum;
}

#if defined(__AVX2__)

template <class Isa>
inline float half_to_float(const std::byte* p) noexcept {
    std::uint16_t h = 0;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}
template <class Isa>
inline std::uint16_t half_bits(const std::byte* p) noexcept {
    std::uint16_t h = 0;
    std::memcpy(&h, p, 2);
    return h;
}

// ------------------------------------------------------------------------------- 32-value block formats

/// One register of 32-value blocks: weights of W against activations of A (q8_0 / q8_1), `V::bytes / 32`
/// consecutive blocks. Their scales sit at byte 0 of every block (fp16; mxfp4's an E8M0 byte), q4_1's and
/// q5_1's min at byte 2. W is an affine format or a table format (iq4_nl, mxfp4), whose levels are its
/// table's signed entries.
template <class Isa, class V, PlanedLayout W, BlockFormat A>
struct legacy_step {
    using ireg = typename V::ireg;
    using freg = typename V::freg;
    static constexpr std::size_t blocks = V::bytes / 32;
    static constexpr bool table = NibbleTableFormat<W>;
    static constexpr bool has_min = [] {
        if constexpr (table)
            return false;
        else
            return W::has_min;
    }();
    static constexpr int offset = [] {
        if constexpr (table)
            return 0;
        else
            return int8::unsigned_offset<W>;
    }();
    /// mxfp4's scale is a power of two stored as its exponent byte; every other 32-value format's is fp16.
    static constexpr bool e8m0_scale = [] {
        if constexpr (table)
            return W::type == ggml_type::mxfp4;
        else
            return false;
    }();
    static constexpr std::size_t quants = A::planes[0].offset;
    static_assert(W::block_size == 32 && A::block_size == 32 && !A::has_min && A::signed_levels);

    static ireg activations(const std::byte* a) noexcept {
        if constexpr (blocks == 1) {
            return V::load(a + quants);
        } else {
            using half = typename V::half;
            return _mm512_inserti64x4(_mm512_zextsi256_si512(half::load(a + quants)), half::load(a + A::type_size + quants), 1);
        }
    }

    /// int32 lanes of sum((L - off) * a) over 4 values each; block j's lanes are the j-th 32 bytes.
    static ireg products(const std::byte* w, ireg act) noexcept {
        if constexpr (table) {
            // Signed table entries in [-127, 127] against any activation byte: the sign moves onto the entry,
            // so maddubs' int16 pairs stay within 2 * 128 * 127 and dot4 is exact without VNNI too.
            const ireg values = int8::load_table_values<Isa, V, W, 0>(w);
            return V::dot4(V::abs_bytes(act), V::with_sign_of(values, act));
        } else {
            return affine_products(w, act);
        }
    }
    static ireg affine_products(const std::byte* w, ireg act) noexcept {
        const ireg levels = int8::load_levels<V, W, 0>(w);
        if constexpr (V::vnni) {
            ireg p = V::dot4(levels, act);
            if constexpr (offset != 0) p = sub32(p, V::dot4(V::bytes_of(offset), act));
            return p;
        } else if constexpr (W::signed_levels) {
            // q8_0's biased bytes reach 255, too much for maddubs' int16 pairs: multiply sign-extended.
            return V::dot4_signed(levels ^ V::bytes_of(int8::level_bias<W>), act);
        } else {
            static_assert(max_level<W> + 1 <= 128, "maddubs pairs are exact for levels below 128 only");
            ireg pairs = V::maddubs(levels, act);
            if constexpr (offset != 0) pairs = sub16(pairs, V::maddubs(V::bytes_of(offset), act));
            return madd1(pairs);
        }
    }

    static ireg sub32(ireg x, ireg y) noexcept {
        if constexpr (blocks == 1)
            return _mm256_sub_epi32(x, y);
        else
            return _mm512_sub_epi32(x, y);
    }
    static ireg sub16(ireg x, ireg y) noexcept {
        if constexpr (blocks == 1)
            return _mm256_sub_epi16(x, y);
        else
            return _mm512_sub_epi16(x, y);
    }
    static ireg madd1(ireg pairs) noexcept {
        if constexpr (blocks == 1)
            return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
        else
            return _mm512_madd_epi16(pairs, _mm512_set1_epi16(1));
    }

    /// dw * da per lane (and min * da for the formats with a min), block j's in its 8 lanes.
    struct scales {
        freg d, m;
    };
    /// A block's weight scale as a float (the reference's: format/table_formats.hpp for mxfp4).
    static float weight_scale(const std::byte* w) noexcept {
        if constexpr (e8m0_scale)
            return table_scale<Isa, W>(w, 0, 1.0f);
        else
            return half_to_float<Isa>(w);
    }

    static scales load_scales(const std::byte* w, const std::byte* a) noexcept {
        if constexpr (blocks == 1) {
            const float da = half_to_float<Isa>(a);
            scales s{_mm256_set1_ps(weight_scale(w) * da), _mm256_setzero_ps()};
            if constexpr (has_min) s.m = _mm256_set1_ps(half_to_float<Isa>(w + 2) * da);
            return s;
        } else if constexpr (e8m0_scale) {
            const float d0 = weight_scale(w) * half_to_float<Isa>(a);
            const float d1 = weight_scale(w + W::type_size) * half_to_float<Isa>(a + A::type_size);
            // (AVX-512 F's 64-bit insert: the 32-bit one needs DQ.)
            const __m512d both = _mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(d0)), _mm256_castps_pd(_mm256_set1_ps(d1)), 1);
            return {_mm512_castpd_ps(both), _mm512_setzero_ps()};
        } else {
            // The four (or eight) halves in one register: one conversion and one product for both blocks.
            const std::uint16_t dw0 = half_bits<Isa>(w), dw1 = half_bits<Isa>(w + W::type_size);
            const std::uint16_t da0 = half_bits<Isa>(a), da1 = half_bits<Isa>(a + A::type_size);
            const __m512i first = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
            if constexpr (has_min) {
                const std::uint16_t m0 = half_bits<Isa>(w + 2), m1 = half_bits<Isa>(w + W::type_size + 2);
                const __m256 f = _mm256_cvtph_ps(_mm_set_epi16(static_cast<short>(da1), static_cast<short>(da0), static_cast<short>(da1),
                                                               static_cast<short>(da0), static_cast<short>(m1), static_cast<short>(m0),
                                                               static_cast<short>(dw1), static_cast<short>(dw0)));
                const __m512 p = _mm512_zextps128_ps512(_mm_mul_ps(_mm256_castps256_ps128(f), _mm256_extractf128_ps(f, 1)));
                const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(2));
                return {_mm512_permutexvar_ps(first, p), _mm512_permutexvar_ps(second, p)};
            } else {
                const __m128 f = _mm_cvtph_ps(_mm_set_epi16(0, 0, 0, 0, static_cast<short>(da1), static_cast<short>(da0),
                                                            static_cast<short>(dw1), static_cast<short>(dw0)));
                const __m512 p = _mm512_zextps128_ps512(_mm_mul_ps(f, _mm_movehl_ps(f, f)));
                return {_mm512_permutexvar_ps(first, p), _mm512_setzero_ps()};
            }
        }
    }

    /// acc + this register's blocks' share of the dot product, their scales given.
    static freg step(const std::byte* w, const std::byte* a, freg acc, const scales& s) noexcept {
        const ireg act = activations(a);
        acc = V::fmadd(V::to_float(products(w, act)), s.d, acc);
        if constexpr (has_min) acc = V::fmadd(V::to_float(V::dot4(V::bytes_of(1), act)), s.m, acc);
        return acc;
    }
    static freg step(const std::byte* w, const std::byte* a, freg acc) noexcept { return step(w, a, acc, load_scales(w, a)); }

    /// The fp16 values at p, p + stride, ..., p + 7 * stride as floats: gathered in general registers, so
    /// that the vector ports, which the products keep busy, convert eight scales at once.
    static __m256 halves8(const std::byte* p, std::size_t stride) noexcept {
        auto word = [&](std::size_t k) {
            std::uint64_t v = 0;
            for (std::size_t j = 0; j < 4; ++j) v |= static_cast<std::uint64_t>(half_bits<Isa>(p + (k + j) * stride)) << (16 * j);
            return static_cast<long long>(v);
        };
        return _mm256_cvtph_ps(_mm_unpacklo_epi64(_mm_cvtsi64_si128(word(0)), _mm_cvtsi64_si128(word(4))));
    }

    /// The weight scales of eight consecutive blocks as floats: one conversion of the fp16 values, or for
    /// mxfp4 the reference's 2^(e - 128) built in the exponent field (e < 2 gives the subnormals).
    static __m256 weight_scales8(const std::byte* w) noexcept {
        if constexpr (e8m0_scale) {
            const auto e = [w](std::size_t k) { return std::to_integer<int>(w[k * W::type_size]); };
            const __m256i exponent = _mm256_setr_epi32(e(0), e(1), e(2), e(3), e(4), e(5), e(6), e(7));
            const __m256i normal = _mm256_slli_epi32(_mm256_sub_epi32(exponent, _mm256_set1_epi32(1)), 23);
            const __m256i subnormal = _mm256_sllv_epi32(_mm256_set1_epi32(0x00200000), exponent);
            const __m256i small = _mm256_cmpgt_epi32(_mm256_set1_epi32(2), exponent);
            return _mm256_castsi256_ps(_mm256_blendv_epi8(normal, subnormal, small));
        } else {
            return halves8(w, W::type_size);
        }
    }

    /// Eight consecutive blocks: the scales of all eight in one conversion, then the registers.
    static void group(const std::byte* w, const std::byte* a, freg& acc0, freg& acc1) noexcept {
        const __m256 da = halves8(a, A::type_size);
        const __m256 d = _mm256_mul_ps(weight_scales8(w), da);
        __m256 m = _mm256_setzero_ps();
        if constexpr (has_min) m = _mm256_mul_ps(halves8(w + 2, W::type_size), da);
        auto one = [&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
            freg& acc = K % 2 == 0 ? acc0 : acc1;
            acc = step(w + K * blocks * W::type_size, a + K * blocks * A::type_size, acc, spread<K>(d, m));
        };
        [&]<std::size_t... K>(std::index_sequence<K...>) { (one(std::integral_constant<std::size_t, K>{}), ...); }
        (std::make_index_sequence<8 / blocks>{});
    }

    /// Register K's lanes of the eight blocks' scales: block (K * blocks + j) in the j-th 32 bytes.
    template <std::size_t K>
    static scales spread(__m256 d, __m256 m) noexcept {
        if constexpr (blocks == 1) {
            const __m256i lane = _mm256_set1_epi32(static_cast<int>(K));
            return {_mm256_permutevar8x32_ps(d, lane), has_min ? _mm256_permutevar8x32_ps(m, lane) : m};
        } else {
            const __m512i lanes = _mm512_set_epi32(2 * K + 1, 2 * K + 1, 2 * K + 1, 2 * K + 1, 2 * K + 1, 2 * K + 1, 2 * K + 1, 2 * K + 1,
                                                   2 * K, 2 * K, 2 * K, 2 * K, 2 * K, 2 * K, 2 * K, 2 * K);
            const __m512 dm = _mm512_permutexvar_ps(lanes, _mm512_zextps256_ps512(d));
            return {dm, has_min ? _mm512_permutexvar_ps(lanes, _mm512_zextps256_ps512(m)) : _mm512_setzero_ps()};
        }
    }
};

template <class Isa, PlanedLayout W, BlockFormat A>
float dot_legacy(const std::byte* w, const std::byte* a, std::size_t n) noexcept {
    using V = std::conditional_t<x86_width<Isa> == 64,
#if defined(__AVX512BW__)
                                 int8::r512<Isa>,
#else
                                 int8::r256<Isa>,
#endif
                                 int8::r256<Isa>>;
    using step = legacy_step<Isa, V, W, A>;
    constexpr std::size_t per = step::blocks;
    const std::size_t nb = n / 32;
    // Two accumulators: the fmadd latency of one would bound the loop.
    typename V::freg acc0 = V::fzero(), acc1 = acc0;
    std::size_t b = 0;
    for (; b + 8 <= nb; b += 8) step::group(w + b * W::type_size, a + b * A::type_size, acc0, acc1);
    for (; b + 2 * per <= nb; b += 2 * per) {
        acc0 = step::step(w + b * W::type_size, a + b * A::type_size, acc0);
        acc1 = step::step(w + (b + per) * W::type_size, a + (b + per) * A::type_size, acc1);
    }
    if (b + per <= nb) {
        acc0 = step::step(w + b * W::type_size, a + b * A::type_size, acc0);
        b += per;
    }
    float sum = V::sum(V::add(acc0, acc1));
    if constexpr (per > 1) {
        if (b < nb) {
            using tail = legacy_step<Isa, int8::r256<Isa>, W, A>;
            sum += int8::r256<Isa>::sum(tail::step(w + b * W::type_size, a + b * A::type_size, _mm256_setzero_ps()));
        }
    }
    return sum;
}

// ------------------------------------------------------------------------------------------- K formats
//
// 256-bit registers on every x86 tag, the AVX-512 ones included. The loop is bound by the number of vector
// instructions, not by their width: 512-bit multiplies (maddubs, dpwssd) and shifts issue on one port where
// 256-bit ones have two, and while any 512-bit instruction is in flight a third vector port stays shut. A
// 256-bit register also holds exactly one 32-value sub-block, so its scale is a broadcast load.

/// q3_K's sixteen signed 6-bit sub-block scales, bias removed: byte j for sub-block j. One decoder for the
/// 512-bit and the 256-bit paths (a template on the tag, as every x86 helper here).
template <class Isa>
struct q3_K_scale_field {
    static __m128i load(const std::byte* b) noexcept {
        using F = formats::q3_K;
        std::uint32_t w[3];
        std::memcpy(w, b + F::scales_at, sizeof w);
        // Sub-blocks 4g..4g+3: low nibbles of bytes 0-3 / 4-7 (g = 0, 1), high nibbles (g = 2, 3); the top
        // two bits are bits 2g, 2g+1 of bytes 8-11.
        const std::uint32_t low[4] = {w[0] & 0x0f0f0f0fu, w[1] & 0x0f0f0f0fu, (w[0] >> 4) & 0x0f0f0f0fu, (w[1] >> 4) & 0x0f0f0f0fu};
        std::uint32_t g[4];
        for (unsigned k = 0; k < 4; ++k) g[k] = low[k] | (((w[2] >> (2 * k)) & 0x03030303u) << 4);
        const __m128i biased =
                _mm_set_epi32(static_cast<int>(g[3]), static_cast<int>(g[2]), static_cast<int>(g[1]), static_cast<int>(g[0]));
        return _mm_sub_epi8(biased, _mm_set1_epi8(32));
    }
};

#if defined(__AVX512BW__)

// The formats with a level offset (q3_K, q6_K) keep 512-bit registers on the AVX-512 tags: their levels take
// several planes to assemble, work per register rather than per multiply, so the halved instruction count
// outweighs the port that 512-bit multiplies lose (measured: q6_K 190 against 225 ns per 4096 values).

/// A K super-block's scales in registers: the int8 scale of sub-block j in byte j of `sub`, and as the
/// int16 weight of activation group g (values 16g..16g+15, one q8_K bsum) in lane g of `sums`; the float
/// super-scale.
template <class Isa>
struct k512_scales {
    __m128i sub;
    __m256i sums;
    float d;
};

/// How each K format packs its sub-block scales (the field layouts of format/k_formats.hpp, in 32-bit words).
template <class Isa, BlockFormat W>
struct k512_decode;

template <class Isa>
struct k512_decode<Isa, formats::q6_K> {
    static k512_scales<Isa> load(const std::byte* b) noexcept {
        using F = formats::q6_K;
        const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + F::scales_at));
        return {s, _mm256_cvtepi8_epi16(s), half_to_float<Isa>(b + F::d_at)};
    }
};

template <class Isa>
struct k512_decode<Isa, formats::q3_K> {
    static k512_scales<Isa> load(const std::byte* b) noexcept {
        const __m128i s = q3_K_scale_field<Isa>::load(b);
        return {s, _mm256_cvtepi8_epi16(s), half_to_float<Isa>(b + formats::q3_K::d_at)};
    }
};

/// For the int16 lanes of a register whose first value is `First`: the sub-block of each lane's two values.
template <class T, std::size_t First, std::size_t Values, std::size_t SubBlock>
inline constexpr auto k512_lanes = [] {
    std::array<T, Values / 2> lanes{};
    for (std::size_t i = 0; i < lanes.size(); ++i) lanes[i] = static_cast<T>((First + 2 * i) / SubBlock);
    return lanes;
}();

template <class Isa, class V, BlockFormat W>
struct k512_step {
    static_assert(V::bytes == 64);
    using ireg = typename V::ireg;

    /// The sub-block scales as the int16 lanes `expand` permutes.
    static __m512i prepare(__m128i sub) noexcept { return _mm512_zextsi256_si512(_mm256_cvtepi8_epi16(sub)); }
    /// Each int16 lane of the register at `First` gets the scale of its sub-block.
    template <std::size_t First>
    static __m512i expand(__m512i scales) noexcept {
        static constexpr auto lanes = k512_lanes<std::int16_t, First, 64, W::sub_block_size>;
        return _mm512_permutexvar_epi16(_mm512_loadu_si512(lanes.data()), scales);
    }
};

/// `Vectors` activation vectors against one row: each vector's value is exactly what the row alone with it
/// gives (the same operations in the same order); the levels and scales are decoded once for all of them.
template <class Isa, BlockFormat W, std::size_t Vectors>
void dot_k512_vectors(const std::byte* w, const std::byte* const* a, std::size_t n, float* out) noexcept {
    using V = int8::r512<Isa>;
    using A = formats::q8_K;
    using step = k512_step<Isa, V, W>;
    static_assert(max_level<W> < 128, "maddubs pairs are exact for levels below 128 only");
    static_assert(!W::has_min && W::level_offset != 0);
    float sum[Vectors] = {};
    for (std::size_t b = 0; b < n / 256; ++b) {
        const std::byte* wb = w + b * W::type_size;
        const k512_scales<Isa> sc = k512_decode<Isa, W>::load(wb);
        const auto scales = step::prepare(sc.sub);
        // Scaled int16 pair sums accumulate in int32: |level| < 64, |a| <= 128, |scale| <= 128 keep a
        // super-block's total below 2^31.
        typename V::ireg acc[Vectors];
        unrolled<Vectors>([&](auto v) { acc[v] = V::zero(); });
        unrolled<256 / V::bytes>([&](auto r) {
            constexpr std::size_t R = decltype(r)::value;
            const auto levels = int8::load_levels<V, W, R * V::bytes>(wb);
            const auto expanded = step::template expand<R * V::bytes>(scales);
            unrolled<Vectors>([&](auto v) {
                const std::byte* ab = a[v] + b * A::type_size;
                acc[v] = V::dot_pairs_acc(acc[v], V::maddubs(levels, V::load(ab + A::quants_at + R * V::bytes)), expanded);
            });
        });
        unrolled<Vectors>([&](auto v) {
            const std::byte* ab = a[v] + b * A::type_size;
            const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab + A::sums_at));
            const __m128i totals = int8::r256<Isa>::sum2(V::fold(acc[v]), _mm256_madd_epi16(bsums, sc.sums));
            const int products = _mm_cvtsi128_si32(totals), weighted = _mm_extract_epi32(totals, 1);
            float da = 0.0f;
            std::memcpy(&da, ab + A::d_at, 4);
            sum[v] += (da * sc.d) * static_cast<float>(products - W::level_offset * weighted);
        });
    }
    for (std::size_t v = 0; v < Vectors; ++v) out[v] = sum[v];
}

#endif  // __AVX512BW__

/// The sum of the 8 int32 lanes.
template <class Isa>
inline int sum_lanes(__m256i v) noexcept {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/// A K super-block's sub-block scales as the loop consumes them: `scale<R>()`, the int16 multipliers of the
/// pair sums of register R (values 32R..32R+31); `sums`, the int16 weight of each activation group g (values
/// 16g..16g+15, one q8_K bsum): the min of its sub-block where the format has a min, else its scale.
template <class Isa, BlockFormat W>
struct k_scales;

/// 16-value sub-blocks: register R spans two, so its multipliers are scale 2R in the low 128 bits and 2R+1
/// in the high ones, spread from the int16 scales by one shuffle.
template <class Isa>
struct k_spread16 {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    __m256i s;
    explicit k_spread16(__m256i scales) noexcept : s(scales) {}
    template <std::size_t R>
    __m256i get() const noexcept {
        static constexpr auto lanes = [] {
            std::array<std::int16_t, 16> l{};
            for (std::size_t i = 0; i < 16; ++i) l[i] = static_cast<std::int16_t>(2 * R + i / 8);
            return l;
        }();
        return _mm256_permutexvar_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(lanes.data())), s);
    }
#else
    // AVX2 shuffles within 128-bit halves only: scales 0-7 and 8-15 each in both halves, then a byte shuffle.
    __m256i low, high;
    explicit k_spread16(__m256i scales) noexcept
            : low(_mm256_permute4x64_epi64(scales, 0x44)), high(_mm256_permute4x64_epi64(scales, 0xee)) {}
    template <std::size_t R>
    __m256i get() const noexcept {
        static constexpr auto bytes = [] {
            std::array<std::uint8_t, 32> l{};
            for (std::size_t i = 0; i < 32; ++i) l[i] = static_cast<std::uint8_t>(2 * ((2 * R + i / 16) % 8) + i % 2);
            return l;
        }();
        return _mm256_shuffle_epi8(R < 4 ? low : high, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes.data())));
    }
#endif
};

template <class Isa>
struct k_scales<Isa, formats::q6_K> {
    k_spread16<Isa> spread;
    __m256i sums;
    explicit k_scales(const std::byte* b) noexcept
            : k_scales(_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + formats::q6_K::scales_at)))) {}
    template <std::size_t R>
    __m256i scale() const noexcept {
        return spread.template get<R>();
    }

private:
    explicit k_scales(__m256i s) noexcept : spread(s), sums(s) {}
};

template <class Isa>
struct k_scales<Isa, formats::q3_K> {
    k_spread16<Isa> spread;
    __m256i sums;
    explicit k_scales(const std::byte* b) noexcept : k_scales(decode(b)) {}
    template <std::size_t R>
    __m256i scale() const noexcept {
        return spread.template get<R>();
    }

private:
    explicit k_scales(__m256i s) noexcept : spread(s), sums(s) {}
    static __m256i decode(const std::byte* b) noexcept { return _mm256_cvtepi8_epi16(q3_K_scale_field<Isa>::load(b)); }
};

template <class Isa>
struct k_scales<Isa, formats::q2_K> {
    using F = formats::q2_K;
    explicit k_scales(const std::byte* b) noexcept
            : k_scales(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + F::scales_at)))) {}
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    // Register R holds plane R % 4 of bytes 32 (R / 4)..: levels masked where they lie, so that only the top
    // plane needs a shift. Planes 0 and 3 then read L, plane 1 4L and plane 2 16L (at most 48, so maddubs
    // pairs stay exact); their scales are taken 16, 4 and 1 times, which makes every product 16 times the
    // reference's, and the mins are taken 16 times too (the high nibble in place). `unit` undoes it, exactly.
    static constexpr float unit = 1.0f / 16.0f;
    __m256i s1, s4, s16, sums;
    template <std::size_t R>
    static __m256i levels(const std::byte* b) noexcept {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + F::planes[0].offset + 32 * (R / 4)));
        if constexpr (R % 4 == 3)
            return _mm256_and_si256(_mm256_srli_epi16(v, 6), _mm256_set1_epi8(3));
        else
            return _mm256_and_si256(v, _mm256_set1_epi8(static_cast<char>(3 << (2 * (R % 4)))));
    }
    template <std::size_t R>
    __m256i scale() const noexcept {
        return k_spread16<Isa>(R % 4 == 2 ? s1 : R % 4 == 1 ? s4 : s16).template get<R>();
    }

private:
    explicit k_scales(__m256i packed) noexcept
            : s1(_mm256_and_si256(packed, _mm256_set1_epi16(0x0f))),
              s4(_mm256_slli_epi16(s1, 2)),
              s16(_mm256_slli_epi16(s1, 4)),
              sums(_mm256_and_si256(packed, _mm256_set1_epi16(0xf0))) {}
#else
    k_spread16<Isa> spread;
    __m256i sums;
    template <std::size_t R>
    __m256i scale() const noexcept {
        return spread.template get<R>();
    }

private:
    // Scale in the low nibble of each byte, min in the high one.
    explicit k_scales(__m256i packed) noexcept
            : spread(_mm256_and_si256(packed, _mm256_set1_epi16(0x0f))), sums(_mm256_srli_epi16(packed, 4)) {}
#endif
};

/// q4_K / q5_K: eight 32-value sub-blocks, one register each.
template <class Isa, unsigned Bits>
struct k_scales<Isa, formats::affine_k<Bits>> {
    alignas(32) std::int32_t pairs[8];
    __m256i sums;
    explicit k_scales(const std::byte* b) noexcept {
        using F = formats::affine_k<Bits>;
        std::uint64_t x = 0;
        std::uint32_t y = 0;
        std::memcpy(&x, b + F::scales_at, 8);
        std::memcpy(&y, b + F::scales_at + 8, 4);
        // Bytes 0-7 hold scales 0-3 and mins 0-3 in their low 6 bits and the top 2 bits of scales / mins 4-7
        // in their top 2; bytes 8-11 the low 4 bits of scales 4-7 (low nibbles) and mins 4-7 (high nibbles).
        // Worked in general registers, which the vector loop leaves idle: [s0-3 m0-3] and [s4-7 m4-7].
        const std::uint64_t first = x & 0x3f3f3f3f3f3f3f3full;
        const std::uint64_t nibbles = (y & 0x0f0f0f0fu) | (static_cast<std::uint64_t>((y >> 4) & 0x0f0f0f0fu) << 32);
        const std::uint64_t second = ((x >> 2) & 0x3030303030303030ull) | nibbles;
        const __m256i z = _mm256_cvtepu8_epi16(_mm_set_epi64x(static_cast<long long>(second), static_cast<long long>(first)));
        // Within each 128-bit half the scales are words 0-3 and the mins words 4-7: doubling every word puts
        // scale j in both halves of int32 j, and each min next to itself, weighing both bsums of its sub-block.
        _mm256_store_si256(reinterpret_cast<__m256i*>(pairs), _mm256_unpacklo_epi16(z, z));
        // Read back through memory: a broadcast load costs no vector instruction, where GCC would otherwise
        // forward the stored register through a shift and a broadcast per sub-block.
        __asm__("" : "+m"(pairs));
        sums = _mm256_unpackhi_epi16(z, z);
    }
    template <std::size_t R>
    __m256i scale() const noexcept {
        return _mm256_set1_epi32(pairs[R]);
    }
};

/// The levels of register R of a super-block: the format's own loader where it has one.
template <class Isa, BlockFormat W, std::size_t R>
__m256i k_levels(const std::byte* b) noexcept {
    if constexpr (requires { k_scales<Isa, W>::template levels<R>(b); })
        return k_scales<Isa, W>::template levels<R>(b);
    else
        return int8::load_levels<int8::r256<Isa>, W, 32 * R>(b);
}

/// `Vectors` activation vectors against one row, each vector's value exactly that of the row alone with it;
/// the levels and sub-block scales are decoded once for all of them.
template <class Isa, BlockFormat W, std::size_t Vectors>
void dot_k_vectors(const std::byte* w, const std::byte* const* a, std::size_t n, float* out) noexcept {
    using V = int8::r256<Isa>;
    using A = formats::q8_K;
    static_assert(max_level<W> < 128, "maddubs pairs are exact for levels below 128 only");
    static_assert(W::has_min == (W::level_offset == 0));
    static_assert(W::sub_block_size == 16 || W::sub_block_size == 32);
    using K = k_scales<Isa, W>;
    constexpr float unit = [] {
        if constexpr (requires { K::unit; })
            return K::unit;
        else
            return 1.0f;
    }();
    // For the formats with a min: [unit, -unit] against [d, dmin].
    const __m256 signs = _mm256_setr_ps(unit, -unit, unit, -unit, unit, -unit, unit, -unit);
    __m256 acc[Vectors];
    float sum[Vectors] = {};
    unrolled<Vectors>([&](auto v) { acc[v] = _mm256_setzero_ps(); });
    for (std::size_t b = 0; b < n / 256; ++b) {
        const std::byte* wb = w + b * W::type_size;
        const K sc(wb);
        // Scaled int16 pair sums accumulate in int32: |level| < 64, |a| <= 128, |scale| <= 128 keep a
        // super-block's total below 2^31. Int32 lane j sums values 4j..4j+3 of every 32-value register;
        // the sums are exact, so how they are grouped does not change a lane.
        __m256i products[Vectors];
#if defined(__AVX512BW__)
        if constexpr (x86_width<Isa> == 64 && W::sub_block_size == 32) {
            // Two sub-blocks per 512-bit register, each half under its own scale; folding the halves gives
            // the 256-bit lanes.
            using Z = int8::r512<Isa>;
            const __m512i pairs = _mm512_castsi256_si512(_mm256_load_si256(reinterpret_cast<const __m256i*>(sc.pairs)));
            typename Z::ireg p[Vectors];
            unrolled<Vectors>([&](auto v) { p[v] = Z::zero(); });
            unrolled<4>([&](auto r) {
                constexpr std::size_t R = decltype(r)::value;
                const auto levels = int8::load_levels<Z, W, 64 * R>(wb);
                constexpr int lo = static_cast<int>(2 * R), hi = lo + 1;
                const __m512i scale =
                        _mm512_permutexvar_epi32(_mm512_setr_epi32(lo, lo, lo, lo, lo, lo, lo, lo, hi, hi, hi, hi, hi, hi, hi, hi), pairs);
                unrolled<Vectors>([&](auto v) {
                    const std::byte* ab = a[v] + b * A::type_size;
                    p[v] = Z::dot_pairs_acc(p[v], Z::maddubs(levels, Z::load(ab + A::quants_at + 64 * R)), scale);
                });
            });
            unrolled<Vectors>([&](auto v) { products[v] = Z::fold(p[v]); });
        } else
#endif
        {
            // Two accumulators halve the multiply-add chain.
            __m256i p[Vectors][2];
            unrolled<Vectors>([&](auto v) { p[v][0] = p[v][1] = V::zero(); });
            unrolled<8>([&](auto r) {
                constexpr std::size_t R = decltype(r)::value;
                const auto levels = k_levels<Isa, W, R>(wb);
                const auto scale = sc.template scale<R>();
                unrolled<Vectors>([&](auto v) {
                    const std::byte* ab = a[v] + b * A::type_size;
                    p[v][R % 2] = V::dot_pairs_acc(p[v][R % 2], V::maddubs(levels, V::load(ab + A::quants_at + 32 * R)), scale);
                });
            });
            unrolled<Vectors>([&](auto v) { products[v] = _mm256_add_epi32(p[v][0], p[v][1]); });
        }
        unrolled<Vectors>([&](auto v) {
            const std::byte* ab = a[v] + b * A::type_size;
            const __m256i products_v = products[v];
            const __m256i weighted = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab + A::sums_at)), sc.sums);
            float da = 0.0f;
            std::memcpy(&da, ab + A::d_at, 4);
            if constexpr (W::has_min) {
                // Each lane is an exact partial sum of the reference's products or of its min terms (no offset to
                // cancel), so lanes may go to float as they are: products in the even lanes, min terms in the odd,
                // against [d * da, -dmin * da] pairs converted from the adjacent fp16 d and dmin in one step
                // (times `unit`, a power of two, which rounds nothing).
                static_assert(W::dmin_at == W::d_at + 2);
                const __m256i both =
                        _mm256_add_epi32(_mm256_unpacklo_epi32(products_v, weighted), _mm256_unpackhi_epi32(products_v, weighted));
                std::int32_t d_dmin = 0;
                std::memcpy(&d_dmin, wb + W::d_at, 4);
                const __m256 scales = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi32(d_dmin)), signs), _mm256_set1_ps(da));
                acc[v] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(both), scales, acc[v]);
            } else {
                // The offset term's lanes are not those of the products: only the super-block's total is a sum
                // of the reference's terms, so it goes to float whole.
                constexpr int shift = std::countr_zero(static_cast<unsigned>(W::level_offset));
                static_assert(W::level_offset == 1 << shift);
                const int total = sum_lanes<Isa>(_mm256_sub_epi32(products_v, _mm256_slli_epi32(weighted, shift)));
                sum[v] += (da * half_to_float<Isa>(wb + W::d_at)) * static_cast<float>(total);
            }
        });
    }
    for (std::size_t v = 0; v < Vectors; ++v) out[v] = W::has_min ? V::sum(acc[v]) : sum[v];
}

// ------------------------------------------------------------------------------------------ iq4_xs

/// iq4_xs's eight signed 6-bit group scales (format/table_formats.hpp group_scale), all at once: group j's in
/// both int16 halves of int32 lane j, ready to be broadcast against the group's int16 pair sums. (Decoded
/// here in registers: the scalar reference, a strict-FP wrapper, would not be inlined into this kernel.)
template <class Isa>
inline __m256i iq4_xs_group_scales(const std::byte* block) noexcept {
    using W = formats::iq4_xs;
    std::uint16_t high = 0;
    std::uint32_t low = 0;
    std::memcpy(&high, block + W::scales_high_at, 2);
    std::memcpy(&low, block + W::scales_low_at, 4);
    const __m256i low_bits =
            _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(low)), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
                             _mm256_set1_epi32(0xf));
    const __m256i high_bits = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(high), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)),
                                               _mm256_set1_epi32(3));
    const __m256i scales = _mm256_sub_epi32(_mm256_or_si256(low_bits, _mm256_slli_epi32(high_bits, 4)), _mm256_set1_epi32(32));
    return _mm256_or_si256(_mm256_and_si256(scales, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(scales, 16));
}

/// iq4_xs against q8_K, one 32-value group per 256-bit register as the K formats: the group's table entries
/// against its activations (the sign trick of the 32-value table formats, int16 pairs), times the group's
/// signed 6-bit scale in int32 (|pair| <= 2 * 128 * 127, |scale| <= 32: a super-block's lanes stay far below
/// 2^31). Each lane is an exact partial sum of the reference's terms; it goes to float with d * da.
template <class Isa>
float dot_iq4_xs(const std::byte* w, const std::byte* a, std::size_t n) noexcept {
    using V = int8::r256<Isa>;
    using W = formats::iq4_xs;
    using A = formats::q8_K;
    __m256 acc = _mm256_setzero_ps();
    for (std::size_t b = 0; b < n / W::block_size; ++b) {
        const std::byte* wb = w + b * W::type_size;
        const std::byte* ab = a + b * A::type_size;
        __m256i p[2] = {V::zero(), V::zero()};
        const __m256i scales = iq4_xs_group_scales<Isa>(wb);
        unrolled<8>([&](auto r) {
            constexpr std::size_t R = decltype(r)::value;
            const __m256i values = int8::load_table_values<Isa, V, W, 32 * R>(wb);
            const __m256i act = V::load(ab + A::quants_at + 32 * R);
            const __m256i scale = _mm256_permutevar8x32_epi32(scales, _mm256_set1_epi32(static_cast<int>(R)));
            p[R % 2] = V::dot_pairs_acc(p[R % 2], V::maddubs(V::abs_bytes(act), V::with_sign_of(values, act)), scale);
        });
        float da = 0.0f;
        std::memcpy(&da, ab + A::d_at, 4);
        const __m256 d = _mm256_set1_ps(half_to_float<Isa>(wb + W::d_at) * da);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(p[0], p[1])), d, acc);
    }
    return V::sum(acc);
}

// ------------------------------------------------------------------------------ tq1_0 and tq2_0

/// The ternary formats against q8_K, given `difference(wb, ab)`: a block's int32 lanes of Σ c q - Σ q, c the
/// unsigned code (value c - 1). The activations' sums come per 16 values (q8_K's bsums), not lane by lane as
/// the products, so only a whole block's total is a sum of the reference's terms: each block's lanes are summed
/// to one exact int32, which takes the reference's float step, scale times total. Four blocks are summed
/// together (a horizontal sum per block cost a fifth of tq2_0's dot), their terms added in four float lanes.
template <class Isa, class W, class Difference>
float ternary_dot(const std::byte* w, const std::byte* a, std::size_t n, Difference difference) noexcept {
    using A = formats::q8_K;
    const std::size_t blocks = n / W::block_size;
    auto scale_of = [&](std::size_t b) {
        float da = 0.0f;
        std::memcpy(&da, a + b * A::type_size + A::d_at, 4);
        return half_to_float<Isa>(w + b * W::type_size + W::d_at) * da;
    };
    auto total_of = [&](std::size_t b) { return difference(w + b * W::type_size, a + b * A::type_size); };
    __m128 acc = _mm_setzero_ps();
    std::size_t b = 0;
    for (; b + 4 <= blocks; b += 4) {
        const __m256i h =
                _mm256_hadd_epi32(_mm256_hadd_epi32(total_of(b), total_of(b + 1)), _mm256_hadd_epi32(total_of(b + 2), total_of(b + 3)));
        const __m128i totals = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        acc = _mm_add_ps(acc,
                         _mm_mul_ps(_mm_cvtepi32_ps(totals), _mm_setr_ps(scale_of(b), scale_of(b + 1), scale_of(b + 2), scale_of(b + 3))));
    }
    for (; b < blocks; ++b) {
        const __m256i lanes = total_of(b);
        __m128i total = _mm_add_epi32(_mm256_castsi256_si128(lanes), _mm256_extracti128_si256(lanes, 1));
        total = _mm_add_epi32(total, _mm_shuffle_epi32(total, 0x4e));
        total = _mm_add_epi32(total, _mm_shuffle_epi32(total, 0xb1));
        acc = _mm_add_ss(acc, _mm_set_ss(static_cast<float>(_mm_cvtsi128_si32(total)) * scale_of(b)));
    }
    alignas(16) float lanes[4];
    _mm_store_ps(lanes, acc);
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

/// q8_K's block sums of the activations, in the int32 lanes of a madd.
template <class Isa>
inline __m256i activation_block_sums(const std::byte* ab) noexcept {
    return _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab + formats::q8_K::sums_at)), _mm256_set1_epi16(1));
}

/// pairs + the products of unsigned codes or digits (at most 3) with activations: four at a time into int32
/// with VNNI, else in int16 pairs (exact for the ternary formats' eight chunks a block).
template <class Isa>
inline __m256i ternary_accumulate(__m256i pairs, __m256i codes, __m256i activations) noexcept {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    if constexpr (int8::r256<Isa>::vnni) return _mm256_dpbusd_epi32(pairs, codes, activations);
#endif
    return _mm256_add_epi16(pairs, _mm256_maddubs_epi16(codes, activations));
}

/// ternary_accumulate's sums as int32 lanes, less the activations' block sums: a block's lanes of Σ c q - Σ q.
template <class Isa>
inline __m256i ternary_difference(__m256i pairs, const std::byte* ab) noexcept {
    const __m256i products = int8::r256<Isa>::vnni ? pairs : _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
    return _mm256_sub_epi32(products, activation_block_sums<Isa>(ab));
}

/// tq2_0: the 2-bit codes go from the planes straight into the products (int16 pairs at most 2 * 3 * 128 a
/// chunk, 6,144 over the eight).
template <class Isa>
float dot_tq2_0(const std::byte* w, const std::byte* a, std::size_t n) noexcept {
    using V = int8::r256<Isa>;
    return ternary_dot<Isa, formats::tq2_0>(w, a, n, [](const std::byte* wb, const std::byte* ab) {
        const __m256i mask = _mm256_set1_epi8(3);
        __m256i pairs = V::zero();
        unrolled<2>([&](auto h) {
            constexpr std::size_t H = decltype(h)::value;
            const __m256i codes = V::load(wb + 32 * H);  // byte m: values 128H + 32l + m at bits 2l
            unrolled<4>([&](auto l) {
                constexpr int L = decltype(l)::value;
                const __m256i c = _mm256_and_si256(_mm256_srli_epi16(codes, 2 * L), mask);
                pairs = ternary_accumulate<Isa>(pairs, c, V::load(ab + formats::q8_K::quants_at + 128 * H + 32 * L));
            });
        });
        return ternary_difference<Isa>(pairs, ab);
    });
}

/// tq1_0: the digits computed in registers straight into maddubs (ternary::top_digit, ternary::last_digits),
/// then as tq2_0's codes (at most 2 * 2 * 128 a chunk, 4,096 over the eight).
template <class Isa>
float dot_tq1_0(const std::byte* w, const std::byte* a, std::size_t n) noexcept {
    using V = int8::r256<Isa>;
    using A = formats::q8_K;
    return ternary_dot<Isa, formats::tq1_0>(w, a, n, [](const std::byte* wb, const std::byte* ab) {
        __m256i pairs = V::zero();
        __m256i x = V::load(wb);
        unrolled<5>([&](auto t) {
            constexpr std::size_t T = decltype(t)::value;
            pairs = ternary_accumulate<Isa>(pairs, ternary::top_digit<Isa>(x), V::load(ab + A::quants_at + 32 * T));
            x = ternary::times3<Isa>(x);
        });
        // Values 160-255 sixteen at a time, two such runs per register against 32 adjacent activations.
        __m128i last[6];
        ternary::last_digits<Isa>(wb, last);
        unrolled<3>([&](auto c) {
            constexpr std::size_t C = decltype(c)::value;
            const __m256i digits = _mm256_set_m128i(last[2 * C + 1], last[2 * C]);
            pairs = ternary_accumulate<Isa>(pairs, digits, V::load(ab + A::quants_at + 160 + 32 * C));
        });
        return ternary_difference<Isa>(pairs, ab);
    });
}

// ------------------------------------------------------------------------------ activation quantizers

/// Keeps the compiler from fusing a product into the next addition: ggml's rounding is of the rounded
/// product, and a fused multiply-add would round once (GCC contracts vector intrinsics under -ffp-contract=fast).
template <class Isa, class T>
inline void rounded(T& v) noexcept {
    __asm__("" : "+v"(v));
}

/// nearest_int (core/rounding.hpp) on 8 lanes, bit for bit: the 1.5 * 2^23 trick, including what it gives
/// for infinities and NaNs.
template <class Isa>
inline __m256i nearest_int8(__m256 product) noexcept {
    const __m256 shifted = _mm256_add_ps(product, _mm256_set1_ps(12582912.0f));
    return _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x7fffff)), _mm256_set1_epi32(0x400000));
}

/// The low bytes of 16 int32 lanes in order (what a cast to int8 keeps).
template <class Isa>
inline __m128i low_bytes(__m256i lo, __m256i hi) noexcept {
    const __m256i byte = _mm256_set1_epi32(0xff);
    const __m256i words = _mm256_permute4x64_epi64(_mm256_packus_epi32(_mm256_and_si256(lo, byte), _mm256_and_si256(hi, byte)), 0xd8);
    return _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
}

template <class Isa>
inline float max_abs(const float* x, std::size_t n) noexcept {
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m = _mm256_setzero_ps();
    for (std::size_t i = 0; i < n; i += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + i), magnitude));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/// q8_0 / q8_1 as ggml's CPU backend writes them (activation_quantize.hpp), the same bytes.
template <class Isa, bool WithSum>
void quantize_q8(const float* x, std::byte* out, std::size_t n) noexcept {
    constexpr std::size_t type_size = WithSum ? 36 : 34, quants = WithSum ? 4 : 2;
    for (std::size_t b = 0; b < n / 32; ++b, x += 32, out += type_size) {
        const float amax = max_abs<Isa>(x, 32);
        const float d = amax / 127.0f;
        const float inverse = amax != 0.0f ? 127.0f / amax : 0.0f;
        const std::uint16_t d_bits = fp32_to_fp16_bits(d);
        std::memcpy(out, &d_bits, 2);
        __m256i q[4];
#if defined(__AVX512BW__)
        if constexpr (x86_width<Isa> == 64) {
            for (std::size_t h = 0; h < 2; ++h) {
                __m512 t = _mm512_mul_ps(_mm512_loadu_ps(x + 16 * h), _mm512_set1_ps(inverse));
                rounded<Isa>(t);
                const __m512 shifted = _mm512_add_ps(t, _mm512_set1_ps(12582912.0f));
                const __m512i v = _mm512_sub_epi32(_mm512_and_si512(_mm512_castps_si512(shifted), _mm512_set1_epi32(0x7fffff)),
                                                   _mm512_set1_epi32(0x400000));
                _mm_storeu_si128(reinterpret_cast<__m128i*>(out + quants + 16 * h), _mm512_cvtepi32_epi8(v));
                q[2 * h] = _mm512_castsi512_si256(v);
                q[2 * h + 1] = int8::r512<Isa>::upper(v);
            }
        } else
#endif
        {
            for (std::size_t k = 0; k < 4; ++k) {
                __m256 t = _mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), _mm256_set1_ps(inverse));
                rounded<Isa>(t);
                q[k] = nearest_int8<Isa>(t);
            }
            _mm_storeu_si128(reinterpret_cast<__m128i*>(out + quants), low_bytes<Isa>(q[0], q[1]));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(out + quants + 16), low_bytes<Isa>(q[2], q[3]));
        }
        if constexpr (WithSum) {
            const int sum = sum_lanes<Isa>(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
            const std::uint16_t s_bits = fp32_to_fp16_bits(d * static_cast<float>(sum));
            std::memcpy(out + 2, &s_bits, 2);
        }
    }
}

/// q8_K as the reference quantizer writes it (formats::q8_K::quantize_block), the same bytes.
template <class Isa>
void quantize_q8_K(const float* x, std::byte* out, std::size_t n) noexcept {
    using F = formats::q8_K;
    for (std::size_t b = 0; b < n / 256; ++b, x += 256, out += F::type_size) {
        const float amax = max_abs<Isa>(x, 256);
        if (amax == 0.0f) {
            std::memset(out, 0, F::type_size);
            continue;
        }
        // The reference keeps the first value of largest magnitude, with its sign.
        const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
        std::size_t first = 0;
        for (std::size_t i = 0; i < 256; i += 8) {
            const __m256 eq = _mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), magnitude), _mm256_set1_ps(amax), _CMP_EQ_OQ);
            if (const int mask = _mm256_movemask_ps(eq)) {
                first = i + static_cast<std::size_t>(std::countr_zero(static_cast<unsigned>(mask)));
                break;
            }
        }
        const float inverse = -127.0f / x[first];
        for (std::size_t g = 0; g < 16; ++g) {
            __m256i q[2];
            for (std::size_t h = 0; h < 2; ++h) {
                __m256 t = _mm256_mul_ps(_mm256_loadu_ps(x + 16 * g + 8 * h), _mm256_set1_ps(inverse));
                rounded<Isa>(t);
                q[h] = _mm256_min_epi32(nearest_int8<Isa>(t), _mm256_set1_epi32(127));
            }
            _mm_storeu_si128(reinterpret_cast<__m128i*>(out + F::quants_at + 16 * g), low_bytes<Isa>(q[0], q[1]));
            // The sums are of the stored bytes: sign-extend each lane's low byte.
            const __m256i stored = _mm256_add_epi32(_mm256_srai_epi32(_mm256_slli_epi32(q[0], 24), 24),
                                                    _mm256_srai_epi32(_mm256_slli_epi32(q[1], 24), 24));
            const auto sum = static_cast<std::int16_t>(sum_lanes<Isa>(stored));
            std::memcpy(out + F::sums_at + 2 * g, &sum, 2);
        }
        const float d = 1 / inverse;
        std::memcpy(out + F::d_at, &d, 4);
    }
}

#endif  // __AVX2__

// ----------------------------------------------------------------------------------------- entry points

/// A table format on any instruction set: the table entries decoded per block, integer sums per sub-block,
/// then the reference's float steps in its order.
template <class Isa, SimdTableFormat W, BlockFormat A>
float dot_table_generic(const std::byte* w, const std::byte* a, std::size_t n) noexcept {
    static_assert(A::block_size == W::block_size);
    alignas(64) std::int8_t values[W::block_size];
    float sum = 0.0f;
    for (std::size_t b = 0; b < n / W::block_size; ++b) {
        const std::byte* wb = w + b * W::type_size;
        const std::byte* ab = a + b * A::type_size;
        const auto* q = reinterpret_cast<const std::int8_t*>(ab + A::planes[0].offset);
        unpack_table_values<Isa, W>(wb, values);
        const float da = sub_block_scale<Isa, A>(ab, 0).scale;
        for (std::size_t sub = 0; sub < W::block_size / W::sub_block_size; ++sub) {
            int products = 0;
            for (std::size_t j = 0; j < W::sub_block_size; ++j)
                products += values[sub * W::sub_block_size + j] * q[sub * W::sub_block_size + j];
            sum += table_scale<Isa, W>(wb, sub, da) * static_cast<float>(products);
        }
    }
    return sum;
}

/// Dot product of `n` weights of table format W with activations of A: the widest x86 path, else generic.
template <class Isa, SimdTableFormat W, BlockFormat A>
float dot_table(const std::byte* w, const std::byte* a, std::size_t n) noexcept {
#if defined(__AVX2__)
    if constexpr (x86_width<Isa> != 0) {
        if constexpr (W::type == ggml_type::tq2_0)
            return dot_tq2_0<Isa>(w, a, n);
        else if constexpr (W::type == ggml_type::tq1_0)
            return dot_tq1_0<Isa>(w, a, n);
        else if constexpr (W::block_size == 32)
            return dot_legacy<Isa, W, A>(w, a, n);
        else
            return dot_iq4_xs<Isa>(w, a, n);
    } else
#endif
    {
        return dot_table_generic<Isa, W, A>(w, a, n);
    }
}

/// `Vectors` activation vectors against one K-format row, on the path dot() takes for the format.
template <class Isa, BlockFormat W, std::size_t Vectors>
void dot_k_any(const std::byte* w, const std::byte* const* a, std::size_t n, float* out) noexcept {
#if defined(__AVX512BW__)
    if constexpr (x86_width<Isa> == 64 && !W::has_min)
        return dot_k512_vectors<Isa, W, Vectors>(w, a, n, out);
    else
#endif
        return dot_k_vectors<Isa, W, Vectors>(w, a, n, out);
}

/// Dot product of `n` weights of W with activations of A: the widest x86 path the tag has, else generic.
template <class Isa, BlockFormat W, BlockFormat A>
float dot(const std::byte* w, const std::byte* a, std::size_t n) noexcept {
#if defined(__AVX2__)
    if constexpr (x86_width<Isa> != 0) {
        if constexpr (W::block_size == 32) {
            return dot_legacy<Isa, W, A>(w, a, n);
        } else {
            float out = 0.0f;
            dot_k_any<Isa, W, 1>(w, &a, n, &out);
            return out;
        }
    } else
#endif
    {
        return dot_generic<Isa, W, A>(w, a, n);
    }
}

/// One K-format row against up to 4 activation vectors (simd::gemm's prompts): out[v] is dot(w, a[v], n),
/// bit for bit, with the row's levels and scales decoded once.
template <class Isa, BlockFormat W>
void dot_batch(const std::byte* w, const std::byte* const* a, std::size_t vectors, std::size_t n, float* out) noexcept {
    switch (vectors) {
        case 4:
            dot_k_any<Isa, W, 4>(w, a, n, out);
            break;
        case 3:
            dot_k_any<Isa, W, 3>(w, a, n, out);
            break;
        case 2:
            dot_k_any<Isa, W, 2>(w, a, n, out);
            break;
        case 1:
            dot_k_any<Isa, W, 1>(w, a, n, out);
            break;
        default:
            break;
    }
}

/// Activations of `Type` (q8_0, q8_1, q8_K), bit-identical to cogqat::quantize_activations().
template <class Isa, ggml_type Type>
void quantize_activations(const float* x, std::byte* out, std::size_t n) noexcept {
#if defined(__AVX2__)
    if constexpr (x86_width<Isa> != 0) {
        if constexpr (Type == ggml_type::q8_K)
            quantize_q8_K<Isa>(x, out, n);
        else
            quantize_q8<Isa, Type == ggml_type::q8_1>(x, out, n);
        return;
    }
#endif
    constexpr std::size_t block = Type == ggml_type::q8_K ? 256 : 32, type_size = Type == ggml_type::q8_K   ? 292
                                                                                  : Type == ggml_type::q8_1 ? 36
                                                                                                            : 34;
    for (std::size_t b = 0; b < n / block; ++b) {
        if constexpr (Type == ggml_type::q8_K)
            quantize_block<Isa, formats::q8_K>(x + b * block, out + b * type_size);
        else
            quantize_activation_block_q8<Isa>(x + b * block, out + b * type_size, Type == ggml_type::q8_1);
    }
}

}  // namespace qdot

/// Fills the quantized dot products of every weight format with a partner activation type, and the
/// activation quantizers of q8_0, q8_1 and q8_K.
template <class Isa>
void add_quantized_dot_kernels(dispatch::kernel_table& t) {
    using namespace formats;
    t[ggml_type::q4_0].dot_quantized = &qdot::dot<Isa, q4_0, q8_0>;
    t[ggml_type::q5_0].dot_quantized = &qdot::dot<Isa, q5_0, q8_0>;
    t[ggml_type::q8_0].dot_quantized = &qdot::dot<Isa, q8_0, q8_0>;
    t[ggml_type::q4_1].dot_quantized = &qdot::dot<Isa, q4_1, q8_1>;
    t[ggml_type::q5_1].dot_quantized = &qdot::dot<Isa, q5_1, q8_1>;
    t[ggml_type::q2_K].dot_quantized = &qdot::dot<Isa, q2_K, q8_K>;
    t[ggml_type::q3_K].dot_quantized = &qdot::dot<Isa, q3_K, q8_K>;
    t[ggml_type::q4_K].dot_quantized = &qdot::dot<Isa, q4_K, q8_K>;
    t[ggml_type::q5_K].dot_quantized = &qdot::dot<Isa, q5_K, q8_K>;
    t[ggml_type::q6_K].dot_quantized = &qdot::dot<Isa, q6_K, q8_K>;
    t[ggml_type::iq4_nl].dot_quantized = &qdot::dot_table<Isa, iq4_nl, q8_0>;
    t[ggml_type::mxfp4].dot_quantized = &qdot::dot_table<Isa, mxfp4, q8_0>;
    t[ggml_type::iq4_xs].dot_quantized = &qdot::dot_table<Isa, iq4_xs, q8_K>;
    t[ggml_type::tq1_0].dot_quantized = &qdot::dot_table<Isa, tq1_0, q8_K>;
    t[ggml_type::tq2_0].dot_quantized = &qdot::dot_table<Isa, tq2_0, q8_K>;
#if defined(__AVX2__)
    if constexpr (qdot::x86_width<Isa> != 0) {
        t[ggml_type::q2_K].dot_quantized_batch = &qdot::dot_batch<Isa, q2_K>;
        t[ggml_type::q3_K].dot_quantized_batch = &qdot::dot_batch<Isa, q3_K>;
        t[ggml_type::q4_K].dot_quantized_batch = &qdot::dot_batch<Isa, q4_K>;
        t[ggml_type::q5_K].dot_quantized_batch = &qdot::dot_batch<Isa, q5_K>;
        t[ggml_type::q6_K].dot_quantized_batch = &qdot::dot_batch<Isa, q6_K>;
    }
#endif
    t[ggml_type::q8_0].quantize_activations = &qdot::quantize_activations<Isa, ggml_type::q8_0>;
    t[ggml_type::q8_1].quantize_activations = &qdot::quantize_activations<Isa, ggml_type::q8_1>;
    t[ggml_type::q8_K].quantize_activations = &qdot::quantize_activations<Isa, ggml_type::q8_K>;
}

}  // namespace cogqat::simd
