#pragma once
// Packing and unpacking of N-bit codes (core/bit_packing.hpp, N = 2..8) on x86 registers, bit for bit the
// reference's stream. Every 128-bit lane handles 16 codes, which are exactly 2N stream bytes, so the lanes of a
// wider register work side by side with in-lane instructions only (byte shuffles, 16-bit multiplies, packs),
// which SSE4.1, AVX2 and AVX-512 BW all have; no per-width code beyond a few shuffle tables made at compile time.
//
//  - unpack: each code's 16-bit window (its byte and the next) is shuffled into a 16-bit lane, multiplied by
//    2^(16 - shift - N) so that the code lands in the top N bits (the bits above fall off), shifted down by
//    16 - N and the words packed to bytes.
//  - pack: two multiply-adds join codes pairwise (c0 + c1 2^N, then p01 + p23 2^2N: four codes in 4N <= 28 bits of
//    a 32-bit lane), a 64-bit shift joins those to eight codes = N bytes per 64-bit half, and a shuffle puts the
//    two halves' N bytes side by side: the lane's 2N stream bytes.
// N = 8 is a copy. Codes before the first whole byte of a range and after the last whole register are the
// reference's (the caller's and the tail loop's), so the kernels never read or write past the range's bytes.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "cogqat/core/bit_packing.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/simd/isa/isa.hpp"

#if defined(__SSE4_1__)
#include <immintrin.h>
#endif

namespace cogqat::simd {

namespace detail::packing {

/// Unpack's byte shuffle for codes [first, first + 8) of a lane: the two bytes of each code's 16-bit window
/// (0x80, a zero, for a byte past the lane's 2N).
template <int N>
consteval std::array<std::uint8_t, 16> window_shuffle(int first) {
    std::array<std::uint8_t, 16> t{};
    for (int k = 0; k < 8; ++k) {
        const int byte = (first + k) * N / 8;
        t[static_cast<std::size_t>(2 * k)] = static_cast<std::uint8_t>(byte);
        t[static_cast<std::size_t>(2 * k + 1)] = static_cast<std::uint8_t>(byte + 1 < 2 * N ? byte + 1 : 0x80);
    }
    return t;
}

/// Unpack's multipliers: 2^(16 - shift - N) lifts a code at `shift` in its window to the top N bits. Codes k and
/// k + 8 share a shift (8 codes are N whole bytes), so one table serves both halves of a lane.
template <int N>
consteval std::array<std::uint16_t, 8> lift_multipliers() {
    std::array<std::uint16_t, 8> t{};
    for (int k = 0; k < 8; ++k) t[static_cast<std::size_t>(k)] = static_cast<std::uint16_t>(1u << (16 - (k * N) % 8 - N));
    return t;
}

/// Pack's final shuffle: the N low bytes of each 64-bit half, side by side.
template <int N>
consteval std::array<std::uint8_t, 16> join_halves() {
    std::array<std::uint8_t, 16> t{};
    for (int j = 0; j < 16; ++j) t[static_cast<std::size_t>(j)] = static_cast<std::uint8_t>(j < N ? j : (j < 2 * N ? 8 + j - N : 0x80));
    return t;
}

/// The in-lane operations of one register width. Members of a template on the instruction-set tag, so that units
/// built with different flags never share a body.
template <class Isa, std::size_t Bytes = register_bytes<Isa>>
struct lanes;

#if defined(__SSE4_1__)
template <class Isa>
struct lanes<Isa, 16> {
    using reg = __m128i;
    static constexpr std::size_t count = 1;
    static reg load(const void* p) noexcept { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
    static void store(void* p, reg v) noexcept { _mm_storeu_si128(static_cast<__m128i*>(p), v); }
    /// Lane k from p + k * stride.
    static reg load_lanes(const std::byte* p, std::size_t /*stride*/) noexcept { return load(p); }
    /// Lane k to p + k * stride, in increasing k.
    static void store_lanes(std::byte* p, std::size_t /*stride*/, reg v) noexcept { store(p, v); }
    /// 16 bytes repeated in every lane.
    static reg lane_constant(const void* p) noexcept { return load(p); }
    static reg zero() noexcept { return _mm_setzero_si128(); }
    static reg set1_8(std::uint8_t x) noexcept { return _mm_set1_epi8(static_cast<char>(x)); }
    static reg set1_32(int x) noexcept { return _mm_set1_epi32(x); }
    static reg set1_64(long long x) noexcept { return _mm_set1_epi64x(x); }
    static reg shuffle(reg a, reg idx) noexcept { return _mm_shuffle_epi8(a, idx); }
    static reg unpacklo8(reg a, reg b) noexcept { return _mm_unpacklo_epi8(a, b); }
    static reg unpackhi8(reg a, reg b) noexcept { return _mm_unpackhi_epi8(a, b); }
    static reg madd16(reg a, reg b) noexcept { return _mm_madd_epi16(a, b); }
    static reg packus32(reg a, reg b) noexcept { return _mm_packus_epi32(a, b); }
    static reg packus16(reg a, reg b) noexcept { return _mm_packus_epi16(a, b); }
    static reg mullo16(reg a, reg b) noexcept { return _mm_mullo_epi16(a, b); }
    static reg max8(reg a, reg b) noexcept { return _mm_max_epu8(a, b); }
    template <int S>
    static reg srli16(reg a) noexcept {
        return _mm_srli_epi16(a, S);
    }
    template <int S>
    static reg srli64(reg a) noexcept {
        return _mm_srli_epi64(a, S);
    }
    template <int S>
    static reg slli64(reg a) noexcept {
        return _mm_slli_epi64(a, S);
    }
    static reg and_(reg a, reg b) noexcept { return _mm_and_si128(a, b); }
    static reg or_(reg a, reg b) noexcept { return _mm_or_si128(a, b); }
    /// Whether any unsigned byte of v is above the byte of m.
    static bool any_above(reg v, reg m) noexcept { return _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(v, m), m)) != 0xffff; }
};
#endif

#if defined(__AVX2__)
template <class Isa>
struct lanes<Isa, 32> {
    using reg = __m256i;
    static constexpr std::size_t count = 2;
    static reg load(const void* p) noexcept { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
    static void store(void* p, reg v) noexcept { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
    static reg load_lanes(const std::byte* p, std::size_t stride) noexcept {
        const __m128i l0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i l1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + stride));
        return _mm256_inserti128_si256(_mm256_castsi128_si256(l0), l1, 1);
    }
    static void store_lanes(std::byte* p, std::size_t stride, reg v) noexcept {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(v));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p + stride), _mm256_extracti128_si256(v, 1));
    }
    static reg lane_constant(const void* p) noexcept {
        return _mm256_broadcastsi128_si256(_mm_loadu_si128(static_cast<const __m128i*>(p)));
    }
    static reg zero() noexcept { return _mm256_setzero_si256(); }
    static reg set1_8(std::uint8_t x) noexcept { return _mm256_set1_epi8(static_cast<char>(x)); }
    static reg set1_32(int x) noexcept { return _mm256_set1_epi32(x); }
    static reg set1_64(long long x) noexcept { return _mm256_set1_epi64x(x); }
    static reg shuffle(reg a, reg idx) noexcept { return _mm256_shuffle_epi8(a, idx); }
    static reg unpacklo8(reg a, reg b) noexcept { return _mm256_unpacklo_epi8(a, b); }
    static reg unpackhi8(reg a, reg b) noexcept { return _mm256_unpackhi_epi8(a, b); }
    static reg madd16(reg a, reg b) noexcept { return _mm256_madd_epi16(a, b); }
    static reg packus32(reg a, reg b) noexcept { return _mm256_packus_epi32(a, b); }
    static reg packus16(reg a, reg b) noexcept { return _mm256_packus_epi16(a, b); }
    static reg mullo16(reg a, reg b) noexcept { return _mm256_mullo_epi16(a, b); }
    static reg max8(reg a, reg b) noexcept { return _mm256_max_epu8(a, b); }
    template <int S>
    static reg srli16(reg a) noexcept {
        return _mm256_srli_epi16(a, S);
    }
    template <int S>
    static reg srli64(reg a) noexcept {
        return _mm256_srli_epi64(a, S);
    }
    template <int S>
    static reg slli64(reg a) noexcept {
        return _mm256_slli_epi64(a, S);
    }
    static reg and_(reg a, reg b) noexcept { return _mm256_and_si256(a, b); }
    static reg or_(reg a, reg b) noexcept { return _mm256_or_si256(a, b); }
    static bool any_above(reg v, reg m) noexcept { return _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_max_epu8(v, m), m)) != -1; }
};
#endif

#if defined(__AVX512BW__)
template <class Isa>
struct lanes<Isa, 64> {
    using reg = __m512i;
    static constexpr std::size_t count = 4;
    static reg load(const void* p) noexcept { return _mm512_loadu_si512(p); }
    static void store(void* p, reg v) noexcept { _mm512_storeu_si512(p, v); }
    static reg load_lanes(const std::byte* p, std::size_t stride) noexcept {
        reg r = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        r = _mm512_inserti32x4(r, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + stride)), 1);
        r = _mm512_inserti32x4(r, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * stride)), 2);
        return _mm512_inserti32x4(r, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 3 * stride)), 3);
    }
    static void store_lanes(std::byte* p, std::size_t stride, reg v) noexcept {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_castsi512_si128(v));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p + stride), _mm512_extracti32x4_epi32(v, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p + 2 * stride), _mm512_extracti32x4_epi32(v, 2));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p + 3 * stride), _mm512_extracti32x4_epi32(v, 3));
    }
    static reg lane_constant(const void* p) noexcept { return _mm512_broadcast_i32x4(_mm_loadu_si128(static_cast<const __m128i*>(p))); }
    static reg zero() noexcept { return _mm512_setzero_si512(); }
    static reg set1_8(std::uint8_t x) noexcept { return _mm512_set1_epi8(static_cast<char>(x)); }
    static reg set1_32(int x) noexcept { return _mm512_set1_epi32(x); }
    static reg set1_64(long long x) noexcept { return _mm512_set1_epi64(x); }
    static reg shuffle(reg a, reg idx) noexcept { return _mm512_shuffle_epi8(a, idx); }
    static reg unpacklo8(reg a, reg b) noexcept { return _mm512_unpacklo_epi8(a, b); }
    static reg unpackhi8(reg a, reg b) noexcept { return _mm512_unpackhi_epi8(a, b); }
    static reg madd16(reg a, reg b) noexcept { return _mm512_madd_epi16(a, b); }
    static reg packus32(reg a, reg b) noexcept { return _mm512_packus_epi32(a, b); }
    static reg packus16(reg a, reg b) noexcept { return _mm512_packus_epi16(a, b); }
    static reg mullo16(reg a, reg b) noexcept { return _mm512_mullo_epi16(a, b); }
    static reg max8(reg a, reg b) noexcept { return _mm512_max_epu8(a, b); }
    template <int S>
    static reg srli16(reg a) noexcept {
        return _mm512_srli_epi16(a, S);
    }
    template <int S>
    static reg srli64(reg a) noexcept {
        return _mm512_srli_epi64(a, S);
    }
    template <int S>
    static reg slli64(reg a) noexcept {
        return _mm512_slli_epi64(a, S);
    }
    static reg and_(reg a, reg b) noexcept { return _mm512_and_si512(a, b); }
    static reg or_(reg a, reg b) noexcept { return _mm512_or_si512(a, b); }
    static bool any_above(reg v, reg m) noexcept { return _mm512_cmpgt_epu8_mask(v, m) != 0; }
};
#endif

#if defined(__SSE4_1__)

/// Packs codes[0, n) into bits [0, n N) of the byte-aligned `stream` (dispatch::packing_kernels::pack).
template <class Isa, int N>
void pack(const std::uint8_t* codes, std::size_t n, std::byte* stream) noexcept {
    if constexpr (N == 8) {
        if (n != 0) std::memcpy(stream, codes, n);
    } else {
        using L = lanes<Isa>;
        using reg = typename L::reg;
        constexpr std::size_t lane_bytes = 2 * N, step = 16 * L::count;
        static constexpr auto halves = join_halves<N>();
        // A lane stores 16 bytes of which 2N are its own: the rest lands on bytes the next lane, the next
        // register or the tail writes again, so the loop stays within the bytes the range fills whole.
        const std::size_t whole_bytes = n * static_cast<std::size_t>(N) / 8;
        const reg pairs = L::set1_32(1 | (1 << (16 + N)));      // 16-bit multipliers (1, 2^N)
        const reg quads = L::set1_32(1 | (1 << (16 + 2 * N)));  // (1, 2^2N)
        const reg low_dword = L::set1_64(0xffffffffLL);
        const reg join = L::lane_constant(halves.data());
        const reg z = L::zero();
        std::size_t i = 0, byte = 0;
        for (; i + step <= n && byte + lane_bytes * (L::count - 1) + 16 <= whole_bytes; i += step, byte += lane_bytes * L::count) {
            const reg v = L::load(codes + i);
            const reg two = L::packus32(L::madd16(L::unpacklo8(v, z), pairs), L::madd16(L::unpackhi8(v, z), pairs));
            const reg four = L::madd16(two, quads);
            const reg eight = L::or_(L::and_(four, low_dword), L::template slli64<4 * N>(L::template srli64<32>(four)));
            L::store_lanes(stream + byte, lane_bytes, L::shuffle(eight, join));
        }
        reference::pack_codes(codes + i, n - i, N, stream + byte, 0);
    }
}

/// Unpacks the n codes of bits [0, n N) of the byte-aligned `stream` (dispatch::packing_kernels::unpack).
template <class Isa, int N>
void unpack(const std::byte* stream, std::size_t n, std::uint8_t* codes) noexcept {
    if constexpr (N == 8) {
        if (n != 0) std::memcpy(codes, stream, n);
    } else {
        using L = lanes<Isa>;
        using reg = typename L::reg;
        constexpr std::size_t lane_bytes = 2 * N, step = 16 * L::count;
        static constexpr auto first_half = window_shuffle<N>(0), second_half = window_shuffle<N>(8);
        static constexpr auto lift = lift_multipliers<N>();
        // Each lane reads 16 bytes from its start; the loop stops before any read would pass the stream's end.
        const std::size_t total_bytes = packed_byte_count(n, N);
        const reg lo_idx = L::lane_constant(first_half.data()), hi_idx = L::lane_constant(second_half.data());
        const reg mul = L::lane_constant(lift.data());
        std::size_t i = 0, byte = 0;
        for (; i + step <= n && byte + lane_bytes * (L::count - 1) + 16 <= total_bytes; i += step, byte += lane_bytes * L::count) {
            const reg in = L::load_lanes(stream + byte, lane_bytes);
            const reg lo = L::template srli16<16 - N>(L::mullo16(L::shuffle(in, lo_idx), mul));
            const reg hi = L::template srli16<16 - N>(L::mullo16(L::shuffle(in, hi_idx), mul));
            L::store(codes + i, L::packus16(lo, hi));
        }
        reference::unpack_codes(stream + byte, 0, n - i, N, codes + i);
    }
}

/// Index of the first code above max_code, or n (dispatch::packing_kernels::first_code_above).
template <class Isa>
std::size_t first_code_above(const std::uint8_t* codes, std::size_t n, std::uint8_t max_code) noexcept {
    using L = lanes<Isa>;
    using reg = typename L::reg;
    constexpr std::size_t width = 16 * L::count;
    const reg m = L::set1_8(max_code);
    std::size_t i = 0;
    // Four registers per test: the check runs at the speed of the loads, and only a failing block is rescanned.
    for (; i + 4 * width <= n; i += 4 * width) {
        const reg a = L::max8(L::load(codes + i), L::load(codes + i + width));
        const reg b = L::max8(L::load(codes + i + 2 * width), L::load(codes + i + 3 * width));
        if (L::any_above(L::max8(a, b), m)) return i + reference::first_code_above(codes + i, 4 * width, max_code);
    }
    for (; i + width <= n; i += width)
        if (L::any_above(L::load(codes + i), m)) return i + reference::first_code_above(codes + i, width, max_code);
    return i + reference::first_code_above(codes + i, n - i, max_code);
}

template <class Isa, int... N>
void add_widths(dispatch::packing_kernels& k, std::integer_sequence<int, N...>) {
    ((k.pack[static_cast<std::size_t>(N)] = &pack<Isa, N>, k.unpack[static_cast<std::size_t>(N)] = &unpack<Isa, N>), ...);
}

#endif

}  // namespace detail::packing

/// Fills the packing kernels (x86 with SSE4.1 and up; elsewhere the reference runs).
template <class Isa>
void add_pack_kernels([[maybe_unused]] dispatch::kernel_table& t) {
#if defined(__SSE4_1__)
    detail::packing::add_widths<Isa>(t.packing, std::integer_sequence<int, 2, 3, 4, 5, 6, 7, 8>{});
    t.packing.first_code_above = &detail::packing::first_code_above<Isa>;
#endif
}

}  // namespace cogqat::simd
