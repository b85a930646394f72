#pragma once
// The x86 integer building blocks of the quantized dot products (simd/isa/dot_quantized.hpp): registers of
// unsigned weight levels and signed int8 activations, their exact products, and loading a register's levels
// straight out of a block's planes (format/level_layout.hpp) with the offsets and shifts worked out at
// compile time from the plane data, so that no format has an unpacking routine of its own.
//
// Two widths: r256 (AVX2; with AVX-512 VL/VNNI where the unit has them) and r512 (AVX-512 BW, optionally
// VNNI). Every function is a member of a class template on the instruction-set tag, so that units built
// with different flags never share a body (an inline non-template function would be merged by the linker
// and could hand AVX-512 code to an AVX2 machine).
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "cogqat/format/block_format.hpp"
#include "cogqat/format/level_layout.hpp"
#include "cogqat/simd/isa/isa.hpp"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace cogqat::simd::int8 {

/// Where one 16-value piece of a register comes from: its byte offset from the register's base pointer and
/// how far right its bits must move to land at their place in the level (negative: to the left).
struct piece {
    std::size_t byte = 0;
    int shift = 0;
};

/// The pieces of a register of `Values` levels of F that starts at value `first` of the block at the base
/// pointer, for plane `P`. A register may span several consecutive blocks (32-value formats in 512 bits).
template <PlanedLayout F, std::size_t P, std::size_t First, std::size_t Values>
consteval std::array<piece, Values / 16> plane_pieces() {
    constexpr level_plane plane = F::planes[P];
    std::array<piece, Values / 16> out{};
    for (std::size_t k = 0; k < out.size(); ++k) {
        const std::size_t value = First + 16 * k;
        const std::size_t block = value / F::block_size, i = value % F::block_size;
        const auto at = plane.locate(i);
        out[k] = {block * F::type_size + at.byte, static_cast<int>(at.shift) - static_cast<int>(plane.level_shift)};
    }
    return out;
}

/// Whether every 16-value piece of every plane of F is 16 levels from 16 consecutive bytes at one shift
/// (strided planes) or 16 consecutive bits (1-bit sequential planes): what the loaders below assume.
template <PlanedLayout F>
consteval bool planes_load_by_pieces() {
    for (const auto& plane : F::planes) {
        if (plane.order == plane_order::sequential) {
            if (plane.bits != 1) return false;
        } else if (plane.lanes % 16 != 0 || plane.stripe * plane.bits / 8 != plane.lanes) {
            return false;
        }
    }
    return F::block_size % 16 == 0;
}

/// The value a level is raised by so that it is an unsigned byte: 128 for two's complement levels (q8_0),
/// 0 for unsigned levels and for table indices.
template <PlanedLayout F>
inline constexpr int level_bias = [] {
    if constexpr (BlockFormat<F>)
        return F::signed_levels ? 128 : 0;
    else
        return 0;
}();

/// What must be taken off the unsigned byte levels: sum((L - off) * a) = sum(L * a) - off * sum(a).
template <BlockFormat F>
inline constexpr int unsigned_offset = F::level_offset + level_bias<F>;

#if defined(__AVX2__)

/// 256-bit registers: 32 levels, 8 int32 lanes of 4 products each.
template <class Isa>
struct r256 {
    using ireg = __m256i;
    using freg = __m256;
    static constexpr std::size_t bytes = 32;
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    static constexpr bool vnni = Isa::vnni;
#else
    static constexpr bool vnni = false;
#endif

    static ireg load(const std::byte* p) noexcept { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
    static __m128i load128(const std::byte* p) noexcept { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
    static ireg zero() noexcept { return _mm256_setzero_si256(); }
    static ireg bytes_of(int v) noexcept { return _mm256_set1_epi8(static_cast<char>(v)); }

    /// Two 16-byte pieces as one register, with as few loads as their offsets allow.
    template <piece P0, piece P1>
    static ireg gather2(const std::byte* p) noexcept {
        if constexpr (P1.byte == P0.byte + 16)
            return load(p + P0.byte);
        else if constexpr (P1.byte == P0.byte)
            return _mm256_broadcastsi128_si256(load128(p + P0.byte));
        else
            return _mm256_inserti128_si256(_mm256_castsi128_si256(load128(p + P0.byte)), load128(p + P1.byte), 1);
    }
    template <std::array<piece, 2> Pieces>
    static ireg gather(const std::byte* p) noexcept {
        return gather2<Pieces[0], Pieces[1]>(p);
    }

    /// Moves each piece's bits by its own shift (right for positive); whole 64-bit lanes move, the caller's
    /// mask drops what crossed a byte.
    template <std::array<piece, 2> Pieces>
    static ireg shift(ireg v) noexcept {
        constexpr int s0 = Pieces[0].shift, s1 = Pieces[1].shift;
        if constexpr (s0 == s1) {
            if constexpr (s0 > 0)
                return _mm256_srli_epi16(v, s0);
            else if constexpr (s0 < 0)
                return _mm256_slli_epi16(v, -s0);
            else
                return v;
        } else {
            constexpr long long r0 = s0 > 0 ? s0 : 0, r1 = s1 > 0 ? s1 : 0, l0 = s0 < 0 ? -s0 : 0, l1 = s1 < 0 ? -s1 : 0;
            if constexpr (r0 || r1) v = _mm256_srlv_epi64(v, _mm256_set_epi64x(r1, r1, r0, r0));
            if constexpr (l0 || l1) v = _mm256_sllv_epi64(v, _mm256_set_epi64x(l1, l1, l0, l0));
            return v;
        }
    }

    /// Adds `Value` to the levels whose bit is set in a 1-bit sequential plane (bit i = value i).
    template <std::array<piece, 2> Pieces, int Value>
    static ireg add_bits(ireg levels, const std::byte* p) noexcept {
        std::uint32_t bits = 0;
        if constexpr (Pieces[1].byte == Pieces[0].byte + 2) {
            std::memcpy(&bits, p + Pieces[0].byte, 4);
        } else {
            std::uint16_t lo = 0, hi = 0;
            std::memcpy(&lo, p + Pieces[0].byte, 2);
            std::memcpy(&hi, p + Pieces[1].byte, 2);
            bits = lo | (static_cast<std::uint32_t>(hi) << 16);
        }
#if defined(__AVX512BW__) && defined(__AVX512VL__)
        return _mm256_mask_add_epi8(levels, _cvtu32_mask32(bits), levels, bytes_of(Value));
#else
        // Byte j of the word goes to bytes 8j..8j+7; each then keeps its own bit.
        const ireg spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)),
                                                _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
        const ireg select = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
        const ireg set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select);
        return _mm256_add_epi8(levels, _mm256_and_si256(set, bytes_of(Value)));
#endif
    }

    /// int16 sums of adjacent u8 x s8 products; exact while 2 * max(u) * 128 <= 32767, so for levels up to 127.
    static ireg maddubs(ireg u, ireg s) noexcept { return _mm256_maddubs_epi16(u, s); }
    /// int32 sums of four adjacent u8 x s8 products, exact for every byte.
    static ireg dot4(ireg u, ireg s) noexcept {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
        if constexpr (vnni) return _mm256_dpbusd_epi32(zero(), u, s);
#endif
        // Without VNNI: int16 pairs (exact for u < 128, which the callers guarantee), then int32 quads.
        return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
    }
    /// acc + int32 sums of adjacent int16 x int16 products.
    static ireg dot_pairs_acc(ireg acc, ireg a, ireg b) noexcept {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
        if constexpr (vnni) return _mm256_dpwssd_epi32(acc, a, b);
#endif
        return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
    }
    /// int32 sums of four adjacent s8 x s8 products, exact for every byte (including -128 x -128).
    /// |s| as unsigned bytes (|-128| is 128) and x with the sign of s (negated where s < 0, 0 where s is 0):
    /// maddubs(abs_bytes(s), with_sign_of(x, s)) holds the products x * s, exact for every s while |x| <= 127.
    static ireg abs_bytes(ireg s) noexcept { return _mm256_abs_epi8(s); }
    static ireg with_sign_of(ireg x, ireg s) noexcept { return _mm256_sign_epi8(x, s); }
    /// Each byte's low 4 bits (the high bit clear) index a 16-byte table.
    static ireg lookup16(__m128i table, ireg indices) noexcept { return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(table), indices); }
    static ireg dot4_signed(ireg x, ireg y) noexcept {
        const ireg xl = _mm256_srai_epi16(_mm256_unpacklo_epi8(x, x), 8), xh = _mm256_srai_epi16(_mm256_unpackhi_epi8(x, x), 8);
        const ireg yl = _mm256_srai_epi16(_mm256_unpacklo_epi8(y, y), 8), yh = _mm256_srai_epi16(_mm256_unpackhi_epi8(y, y), 8);
        return _mm256_add_epi32(_mm256_madd_epi16(xl, yl), _mm256_madd_epi16(xh, yh));
    }

    static freg to_float(ireg v) noexcept { return _mm256_cvtepi32_ps(v); }
    static freg fzero() noexcept { return _mm256_setzero_ps(); }
    static freg add(freg a, freg b) noexcept { return _mm256_add_ps(a, b); }
    static freg fmadd(freg a, freg b, freg c) noexcept { return _mm256_fmadd_ps(a, b, c); }
    static float sum(freg v) noexcept {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }
    /// The 8-lane int32 sums of `v` and `w` (lanes 0 and 1 of the result hold sum(v), sum(w)).
    static __m128i sum2(ireg v, ireg w) noexcept {
        const ireg h = _mm256_hadd_epi32(v, w);  // v01 v23 w01 w23 | v45 v67 w45 w67
        const __m128i q = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        return _mm_hadd_epi32(q, q);
    }
    /// The register folded to 8 lanes (already 8 lanes wide).
    static __m256i fold(ireg v) noexcept { return v; }
};

#endif  // __AVX2__

#if defined(__AVX512BW__)

/// 512-bit registers: 64 levels, 16 int32 lanes of 4 products each.
template <class Isa>
struct r512 {
    using ireg = __m512i;
    using freg = __m512;
    using half = r256<Isa>;
    static constexpr std::size_t bytes = 64;
#if defined(__AVX512VNNI__)
    static constexpr bool vnni = Isa::vnni;
#else
    static constexpr bool vnni = false;
#endif

    static ireg load(const std::byte* p) noexcept { return _mm512_loadu_si512(p); }
    static ireg zero() noexcept { return _mm512_setzero_si512(); }
    static ireg bytes_of(int v) noexcept { return _mm512_set1_epi8(static_cast<char>(v)); }

    /// Four 16-byte pieces as one register: one 64-byte load, a broadcast, or two 32-byte halves.
    template <std::array<piece, 4> Pieces>
    static ireg gather(const std::byte* p) noexcept {
        constexpr piece a = Pieces[0], b = Pieces[1], c = Pieces[2], d = Pieces[3];
        if constexpr (b.byte == a.byte + 16 && c.byte == a.byte + 32 && d.byte == a.byte + 48) {
            return load(p + a.byte);
        } else if constexpr (a.byte == b.byte && a.byte == c.byte && a.byte == d.byte) {
            return _mm512_broadcast_i32x4(half::load128(p + a.byte));
        } else if constexpr (a.byte == c.byte && b.byte == d.byte) {
            return _mm512_broadcast_i64x4(half::template gather2<a, b>(p));
        } else {
            const __m256i low = half::template gather2<a, b>(p), high = half::template gather2<c, d>(p);
            return _mm512_inserti64x4(_mm512_zextsi256_si512(low), high, 1);
        }
    }

    template <std::array<piece, 4> Pieces>
    static ireg shift(ireg v) noexcept {
        constexpr int s0 = Pieces[0].shift, s1 = Pieces[1].shift, s2 = Pieces[2].shift, s3 = Pieces[3].shift;
        if constexpr (s0 == s1 && s0 == s2 && s0 == s3) {
            if constexpr (s0 > 0)
                return _mm512_srli_epi16(v, s0);
            else if constexpr (s0 < 0)
                return _mm512_slli_epi16(v, -s0);
            else
                return v;
        } else {
            constexpr auto right = [](int s) -> long long { return s > 0 ? s : 0; };
            constexpr auto left = [](int s) -> long long { return s < 0 ? -s : 0; };
            if constexpr (right(s0) || right(s1) || right(s2) || right(s3))
                v = _mm512_srlv_epi64(
                        v, _mm512_set_epi64(right(s3), right(s3), right(s2), right(s2), right(s1), right(s1), right(s0), right(s0)));
            if constexpr (left(s0) || left(s1) || left(s2) || left(s3))
                v = _mm512_sllv_epi64(v, _mm512_set_epi64(left(s3), left(s3), left(s2), left(s2), left(s1), left(s1), left(s0), left(s0)));
            return v;
        }
    }

    template <std::array<piece, 4> Pieces, int Value>
    static ireg add_bits(ireg levels, const std::byte* p) noexcept {
        auto word = [&](std::size_t k) {
            std::uint64_t bits = 0;
            if (Pieces[k + 1].byte == Pieces[k].byte + 2) {
                std::uint32_t w = 0;
                std::memcpy(&w, p + Pieces[k].byte, 4);
                bits = w;
            } else {
                std::uint16_t lo = 0, hi = 0;
                std::memcpy(&lo, p + Pieces[k].byte, 2);
                std::memcpy(&hi, p + Pieces[k + 1].byte, 2);
                bits = lo | (static_cast<std::uint64_t>(hi) << 16);
            }
            return bits;
        };
        const std::uint64_t bits = word(0) | (word(2) << 32);
        return _mm512_mask_add_epi8(levels, _cvtu64_mask64(bits), levels, bytes_of(Value));
    }

    static ireg maddubs(ireg u, ireg s) noexcept { return _mm512_maddubs_epi16(u, s); }
    static ireg dot4(ireg u, ireg s) noexcept {
#if defined(__AVX512VNNI__)
        if constexpr (vnni) return _mm512_dpbusd_epi32(zero(), u, s);
#endif
        return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
    }
    static ireg dot_pairs_acc(ireg acc, ireg a, ireg b) noexcept {
#if defined(__AVX512VNNI__)
        if constexpr (vnni) return _mm512_dpwssd_epi32(acc, a, b);
#endif
        return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
    }
    static ireg abs_bytes(ireg s) noexcept { return _mm512_abs_epi8(s); }
    /// (AVX-512 has no sign_epi8: x negated under the mask of the negative bytes of s; where s is 0 its
    /// abs_bytes partner is 0.)
    static ireg with_sign_of(ireg x, ireg s) noexcept { return _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(s), zero(), x); }
    static ireg lookup16(__m128i table, ireg indices) noexcept { return _mm512_shuffle_epi8(_mm512_broadcast_i32x4(table), indices); }
    static ireg dot4_signed(ireg x, ireg y) noexcept {
        const ireg xl = _mm512_srai_epi16(_mm512_unpacklo_epi8(x, x), 8), xh = _mm512_srai_epi16(_mm512_unpackhi_epi8(x, x), 8);
        const ireg yl = _mm512_srai_epi16(_mm512_unpacklo_epi8(y, y), 8), yh = _mm512_srai_epi16(_mm512_unpackhi_epi8(y, y), 8);
        return _mm512_add_epi32(_mm512_madd_epi16(xl, yl), _mm512_madd_epi16(xh, yh));
    }

    static freg to_float(ireg v) noexcept { return _mm512_cvtepi32_ps(v); }
    static freg fzero() noexcept { return _mm512_setzero_ps(); }
    static freg add(freg a, freg b) noexcept { return _mm512_add_ps(a, b); }
    static freg fmadd(freg a, freg b, freg c) noexcept { return _mm512_fmadd_ps(a, b, c); }
    static float sum(freg v) noexcept {
        return half::sum(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_castps512_ps256(_mm512_shuffle_f32x4(v, v, 0xee))));
    }
    /// The upper 256 bits (a shuffle: GCC 12's extract intrinsics trip -Wmaybe-uninitialized).
    static __m256i upper(ireg v) noexcept { return _mm512_castsi512_si256(_mm512_shuffle_i64x2(v, v, 0xee)); }
    static __m256i fold(ireg v) noexcept { return _mm256_add_epi32(_mm512_castsi512_si256(v), upper(v)); }
};

#endif  // __AVX512BW__

#if defined(__AVX2__)

/// The levels of F held by register type V whose first value is `First` of the block at `p` (all planes
/// combined, raised by level_bias<F> so that they are unsigned bytes).
template <class V, PlanedLayout F, std::size_t First>
typename V::ireg load_levels(const std::byte* p) noexcept {
    static_assert(planes_load_by_pieces<F>() && F::planes[0].order == plane_order::strided);
    using ireg = typename V::ireg;
    ireg levels{};
    [&]<std::size_t... P>(std::index_sequence<P...>) {
        (
                [&] {
                    constexpr level_plane plane = F::planes[P];
                    constexpr auto pieces = plane_pieces<F, P, First, V::bytes>();
                    if constexpr (plane.order == plane_order::sequential) {
                        levels = V::template add_bits<pieces, (1 << plane.level_shift)>(levels, p);
                    } else {
                        ireg v = V::template shift<pieces>(V::template gather<pieces>(p));
                        if constexpr (plane.bits < 8) v = v & V::bytes_of(static_cast<int>(((1u << plane.bits) - 1u) << plane.level_shift));
                        if constexpr (P == 0)
                            levels = v;
                        else
                            levels = levels | v;
                    }
                }(),
                ...);
    }
    (std::make_index_sequence<F::planes.size()>{});
    if constexpr (level_bias<F> != 0) levels = levels ^ V::bytes_of(level_bias<F>);
    return levels;
}

#endif  // __AVX2__

}  // namespace cogqat::simd::int8
