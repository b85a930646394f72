#pragma once
// The x86 kernels of interleaved matrices (simd/interleaved.hpp): one group of 16 rows times a few
// activation vectors, the arithmetic of dot_interleaved_reference() bit for bit.
//
// A 512-bit register holds four levels of each of the 16 rows; four activation bytes broadcast to every
// lane multiply it (dpbusd, or maddubs + madd without VNNI). On 256-bit registers the 16 rows are two
// halves of 8. Each group's levels are unpacked once for all of the call's vectors.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/format/legacy_formats.hpp"
#include "cogqat/simd/interleaved.hpp"
#include "cogqat/simd/isa/int8_dot.hpp"
#include "cogqat/simd/isa/isa.hpp"
#include "cogqat/simd/prefetch.hpp"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace cogqat::simd {

namespace interleaved {

#if defined(__AVX2__)

/// Registers of 16 (512-bit) or 8 (256-bit) int32 lanes, one row per lane: int8_dot.hpp's registers and
/// what the interleaved kernels add to them.
template <class Isa, std::size_t Bytes>
struct lanes;

template <class Isa>
struct lanes<Isa, 32> : int8::r256<Isa> {
    using ireg = __m256i;
    using freg = __m256;
    static ireg broadcast4(const std::int8_t* p) noexcept {
        std::int32_t v = 0;
        std::memcpy(&v, p, 4);
        return _mm256_set1_epi32(v);
    }
    static ireg broadcast(std::int32_t v) noexcept { return _mm256_set1_epi32(v); }
    static ireg low_nibbles(ireg a) noexcept { return _mm256_and_si256(a, _mm256_set1_epi8(0x0F)); }
    static ireg high_nibbles_in_place(ireg a) noexcept { return _mm256_and_si256(a, _mm256_set1_epi8(static_cast<char>(0xF0))); }
    static ireg high_nibbles(ireg a) noexcept { return low_nibbles(_mm256_srli_epi16(a, 4)); }
    static ireg divide_by_16(ireg a) noexcept { return _mm256_srai_epi32(a, 4); }
    static ireg add32(ireg a, ireg b) noexcept { return _mm256_add_epi32(a, b); }
    static ireg sub32(ireg a, ireg b) noexcept { return _mm256_sub_epi32(a, b); }
    /// acc + sums of four u8 x s8 products per lane; without VNNI exact while u < 128.
    static ireg dot4_acc(ireg acc, ireg u, ireg s) noexcept {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
        if constexpr (int8::r256<Isa>::vnni) return _mm256_dpbusd_epi32(acc, u, s);
#endif
        return _mm256_add_epi32(acc, int8::r256<Isa>::dot4(u, s));
    }
    /// 8 fp16 scales times a broadcast float.
    static freg scales(const std::byte* p, float d) noexcept {
        return _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), _mm256_set1_ps(d));
    }
    static void store_sum(float* out, freg a, freg b) noexcept { _mm256_storeu_ps(out, _mm256_add_ps(a, b)); }
};

#if defined(__AVX512BW__)
template <class Isa>
struct lanes<Isa, 64> : int8::r512<Isa> {
    using ireg = __m512i;
    using freg = __m512;
    static ireg broadcast4(const std::int8_t* p) noexcept {
        std::int32_t v = 0;
        std::memcpy(&v, p, 4);
        return _mm512_set1_epi32(v);
    }
    static ireg broadcast(std::int32_t v) noexcept { return _mm512_set1_epi32(v); }
    static ireg low_nibbles(ireg a) noexcept { return _mm512_and_si512(a, _mm512_set1_epi8(0x0F)); }
    static ireg high_nibbles_in_place(ireg a) noexcept { return _mm512_and_si512(a, _mm512_set1_epi8(static_cast<char>(0xF0))); }
    static ireg high_nibbles(ireg a) noexcept { return low_nibbles(_mm512_srli_epi16(a, 4)); }
    static ireg divide_by_16(ireg a) noexcept { return _mm512_srai_epi32(a, 4); }
    static ireg add32(ireg a, ireg b) noexcept { return _mm512_add_epi32(a, b); }
    static ireg sub32(ireg a, ireg b) noexcept { return _mm512_sub_epi32(a, b); }
    static ireg dot4_acc(ireg acc, ireg u, ireg s) noexcept {
#if defined(__AVX512VNNI__)
        if constexpr (int8::r512<Isa>::vnni) return _mm512_dpbusd_epi32(acc, u, s);
#endif
        return _mm512_add_epi32(acc, int8::r512<Isa>::dot4(u, s));
    }
    static freg scales(const std::byte* p, float d) noexcept {
        return _mm512_mul_ps(_mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(p))), _mm512_set1_ps(d));
    }
    static void store_sum(float* out, freg a, freg b) noexcept { _mm512_storeu_ps(out, _mm512_add_ps(a, b)); }
};
#endif

/// Width of the registers for a tag: 512 bits where AVX-512 BW is, else 256.
template <class Isa>
inline constexpr std::size_t width =
#if defined(__AVX512BW__)
        std::is_same_v<typename Isa::arch, xsimd::avx512bw> ? 64 :
#endif
                                                            32;

/// One half (or, on 512 bits, the whole) of a group: `Vectors` vectors at once. Half h covers rows
/// 8h..8h+7 in bytes 32h..32h+31 of each 64-byte chunk.
template <class Isa, unsigned Bits, int Offset, std::size_t Vectors>
void group_part(const std::byte* group, std::size_t blocks, const dispatch::interleaved_activations* a, float* out,
                std::size_t half) noexcept {
    using L = lanes<Isa, width<Isa>>;
    constexpr interleaved_layout layout{Bits, Offset};
    const std::byte* scales = group + blocks * layout.level_bytes();
    const std::size_t lane_bytes = width<Isa> * half;
    typename L::freg acc[Vectors][2];
    for (std::size_t v = 0; v < Vectors; ++v) acc[v][0] = acc[v][1] = L::fzero();
    for (std::size_t b = 0; b < blocks; ++b) {
        const std::byte* levels = group + b * layout.level_bytes();
        typename L::ireg sum[Vectors][2];
        for (std::size_t v = 0; v < Vectors; ++v) sum[v][0] = sum[v][1] = L::zero();
        if constexpr (Bits == 8) {
            static_assert(L::vnni, "byte levels reach 255: exact products need VNNI");
            for (std::size_t k = 0; k < 8; ++k) {
                if (half == 0) prefetch_ahead(levels + 64 * k);
                const auto u = L::load(levels + 64 * k + lane_bytes);
                for (std::size_t v = 0; v < Vectors; ++v)
                    sum[v][k % 2] = L::dot4_acc(sum[v][k % 2], u, L::broadcast4(a[v].q + 32 * b + 4 * k));
            }
        } else {
            for (std::size_t c = 0; c < 4; ++c) {
                if (half == 0) prefetch_ahead(levels + 64 * c);
                const auto packed = L::load(levels + 64 * c + lane_bytes);
                const auto low = L::low_nibbles(packed);
                // With VNNI the high nibbles stay in place (16 x level, exact in dpbusd) and the sum is
                // divided by 16 once per block; maddubs would saturate on them, so without VNNI they shift.
                const auto high = L::vnni ? L::high_nibbles_in_place(packed) : L::high_nibbles(packed);
                for (std::size_t v = 0; v < Vectors; ++v) {
                    sum[v][0] = L::dot4_acc(sum[v][0], low, L::broadcast4(a[v].q + 32 * b + 4 * c));
                    sum[v][1] = L::dot4_acc(sum[v][1], high, L::broadcast4(a[v].q + 32 * b + 16 + 4 * c));
                }
            }
        }
        for (std::size_t v = 0; v < Vectors; ++v) {
            auto high = sum[v][1];
            if constexpr (Bits == 4 && L::vnni) high = L::divide_by_16(high);
            const auto total = L::sub32(L::add32(sum[v][0], high), L::broadcast(Offset * a[v].sums[b]));
            acc[v][b % 2] = L::fmadd(L::to_float(total),
                                     L::scales(scales + b * layout.scale_bytes() + 2 * (width<Isa> / 4) * half, a[v].d[b]), acc[v][b % 2]);
        }
    }
    for (std::size_t v = 0; v < Vectors; ++v) L::store_sum(out + v * interleave_rows + (width<Isa> / 4) * half, acc[v][0], acc[v][1]);
}

template <class Isa, unsigned Bits, int Offset>
void dot_group(const std::byte* group, std::size_t blocks, const dispatch::interleaved_activations* a, std::size_t vectors,
               float* out) noexcept {
    constexpr std::size_t halves = 64 / width<Isa>;
    for (std::size_t h = 0; h < halves; ++h) {
        std::size_t v = 0;
        for (; v + 4 <= vectors; v += 4) group_part<Isa, Bits, Offset, 4>(group, blocks, a + v, out + v * interleave_rows, h);
        switch (vectors - v) {
            case 3:
                group_part<Isa, Bits, Offset, 3>(group, blocks, a + v, out + v * interleave_rows, h);
                break;
            case 2:
                group_part<Isa, Bits, Offset, 2>(group, blocks, a + v, out + v * interleave_rows, h);
                break;
            case 1:
                group_part<Isa, Bits, Offset, 1>(group, blocks, a + v, out + v * interleave_rows, h);
                break;
            default:
                break;
        }
    }
}

#endif  // __AVX2__

}  // namespace interleaved

/// Fills dot_interleaved for q4_0 (every x86 tag with AVX2) and q8_0 (VNNI tags: its byte levels need
/// dpbusd to be exact).
template <class Isa>
void add_interleaved_kernels([[maybe_unused]] dispatch::kernel_table& t) {
#if defined(__AVX2__)
    if constexpr (std::is_same_v<typename Isa::arch, xsimd::fma3<xsimd::avx2>>
#if defined(__AVX512BW__)
                  || std::is_same_v<typename Isa::arch, xsimd::avx512bw>
#endif
    ) {
        constexpr interleaved_layout q4 = interleaved_layout_of<formats::q4_0>(), q8 = interleaved_layout_of<formats::q8_0>();
        t[ggml_type::q4_0].dot_interleaved = &interleaved::dot_group<Isa, q4.bits, q4.offset>;
        if constexpr (interleaved::lanes<Isa, interleaved::width<Isa>>::vnni)
            t[ggml_type::q8_0].dot_interleaved = &interleaved::dot_group<Isa, q8.bits, q8.offset>;
    }
#endif
}

}  // namespace cogqat::simd
