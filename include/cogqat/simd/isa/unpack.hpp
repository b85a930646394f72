#pragma once
// Levels out of a block's planes, vectorized from the layout data alone (format/level_layout.hpp): the one
// unpacking routine behind every SIMD dequantizer and dot product, whatever the format.
//
// A strided plane is, per stripe and per bit position, `lanes` consecutive levels taken from the same
// `lanes` bytes by one shift and one mask: a vector operation as wide as the plane. A 1-bit sequential
// plane (q5_0's qh word) spreads each byte's bits over eight levels through a 256-entry table.
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

namespace cogqat::simd {

namespace detail {

/// Byte b's eight bits as eight bytes of 0 or 1, in little-endian order (bit k in byte k). A constant of each
/// instruction set's own: a per-ISA unit defines nothing that another unit shares (check_isa_symbols.sh).
template <class Isa>
inline constexpr std::array<std::uint64_t, 256> bit_spread = [] {
    std::array<std::uint64_t, 256> t{};
    for (unsigned b = 0; b < 256; ++b)
        for (unsigned k = 0; k < 8; ++k) t[b] |= static_cast<std::uint64_t>((b >> k) & 1u) << (8 * k);
    return t;
}();

/// The widest architecture whose byte batches tile `lanes` bytes exactly: the tag's own, else 32 bytes where
/// the unit has AVX2 (q4_K's 32-byte stripes under AVX-512), else 16 bytes.
template <class Isa, std::size_t Lanes>
struct plane_arch {
    template <class A>
    static constexpr bool tiles = Lanes % xsimd::batch<std::uint8_t, A>::size == 0;
#if XSIMD_WITH_AVX2
    using half = xsimd::avx2;
#else
    using half = narrow_arch;
#endif
    using type = std::conditional_t<tiles<typename Isa::arch>, typename Isa::arch, std::conditional_t<tiles<half>, half, narrow_arch>>;
};

template <class Isa, level_plane Plane, bool First>
inline void unpack_plane(const std::byte* block, std::uint8_t* levels, std::size_t n) noexcept {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(block) + Plane.offset;
    if constexpr (Plane.order == plane_order::sequential) {
        static_assert(Plane.bits == 1, "sequential planes of more than one bit have no SIMD unpacking");
        for (std::size_t b = 0; b < n / 8; ++b) {
            const std::uint64_t bits = bit_spread<Isa>[bytes[b]] << Plane.level_shift;
            std::uint64_t out = bits;
            if constexpr (!First) {
                std::memcpy(&out, levels + 8 * b, 8);
                out |= bits;
            }
            std::memcpy(levels + 8 * b, &out, 8);
        }
    } else {
        constexpr std::size_t positions = 8 / Plane.bits, stripe_bytes = Plane.stripe * Plane.bits / 8;
        static_assert(stripe_bytes == Plane.lanes, "a strided plane's stripe fills its lanes' bytes");
        constexpr std::uint8_t mask = static_cast<std::uint8_t>((1u << Plane.bits) - 1u);
        using arch = typename plane_arch<Isa, Plane.lanes>::type;
        using bytes_batch = xsimd::batch<std::uint8_t, arch>;
        constexpr std::size_t width = bytes_batch::size;
        static_assert(Plane.lanes % width == 0, "plane lanes must be a multiple of 16 bytes");
        for (std::size_t s = 0; s < n / Plane.stripe; ++s) {
            const std::uint8_t* src = bytes + s * stripe_bytes;
            std::uint8_t* dst = levels + s * Plane.stripe;
            for (std::size_t j = 0; j < Plane.lanes; j += width) {
                const bytes_batch v = bytes_batch::load_unaligned(src + j);
                for (std::size_t k = 0; k < positions; ++k) {
                    bytes_batch part = v;
                    if constexpr (Plane.bits < 8) part = (v >> static_cast<int>(k * Plane.bits)) & bytes_batch(mask);
                    if constexpr (Plane.level_shift != 0) part = part << static_cast<int>(Plane.level_shift);
                    std::uint8_t* out = dst + k * Plane.lanes + j;
                    if constexpr (!First) part = part | bytes_batch::load_unaligned(out);
                    part.store_unaligned(out);
                }
            }
        }
    }
}

}  // namespace detail

/// Writes the F::block_size raw levels of one block (the bytes stored_level() reads; two's complement for
/// signed formats; a table format's indices) to `levels`.
template <class Isa, PlanedLayout F>
inline void unpack_levels(const std::byte* block, std::uint8_t* levels) noexcept {
    [&]<std::size_t... P>(std::index_sequence<P...>) {
        (detail::unpack_plane<Isa, F::planes[P], P == 0>(block, levels, F::block_size), ...);
    }
    (std::make_index_sequence<F::planes.size()>{});
}

}  // namespace cogqat::simd
