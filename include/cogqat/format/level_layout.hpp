#pragma once
// Where the bits of each quantized level live inside a GGUF block, as data.
//
// A block stores one small unsigned integer (a "level") per value. Its bits are split over one or more
// planes: a 5-bit level may keep its low 4 bits in a nibble plane and its 5th bit in a bit plane. Every
// GGUF layout is one of two orders:
//   strided    - the values are cut into stripes of `stripe` values; inside a stripe, value i goes to byte
//                i % lanes at bit position (i / lanes) * bits (q4_0 puts values j and j+16 in one byte).
//   sequential - value i takes bits [i*bits, (i+1)*bits) of the plane, little-endian (q5_0's qh word).
// pack_levels/unpack_level are the only code that knows about bit positions; formats only list planes.

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>

namespace cogqat {

enum class plane_order : std::uint8_t { strided, sequential };

/// One plane of a block layout: it holds bits [level_shift, level_shift + bits) of every level.
struct level_plane {
    std::size_t offset;    ///< first byte of the plane inside the block
    unsigned bits;         ///< bits per value held in this plane
    unsigned level_shift;  ///< which bits of the level this plane holds
    std::size_t stripe;    ///< values per stripe (strided order)
    std::size_t lanes;     ///< bytes a stripe is spread over before moving to the next bit position
    plane_order order = plane_order::strided;

    struct position {
        std::size_t byte;
        unsigned shift;
    };

    /// Byte (from the block start) and bit shift of value `i`'s bits in this plane.
    [[nodiscard]] constexpr position locate(std::size_t i) const noexcept {
        if (order == plane_order::sequential) {
            const std::size_t bit = i * bits;
            return {offset + bit / 8, static_cast<unsigned>(bit % 8)};
        }
        const std::size_t stripe_bytes = stripe * bits / 8;
        const std::size_t within = i % stripe;
        return {offset + (i / stripe) * stripe_bytes + within % lanes, static_cast<unsigned>((within / lanes) * bits)};
    }

    /// Bytes this plane occupies for `n` values.
    [[nodiscard]] constexpr std::size_t size_for(std::size_t n) const noexcept { return n * bits / 8; }
};

/// Total bits of a level over all planes.
template <std::size_t N>
[[nodiscard]] constexpr unsigned level_bits(const std::array<level_plane, N>& planes) noexcept {
    unsigned total = 0;
    for (const auto& p : planes) total += p.bits;
    return total;
}

/// Writes `n` levels into the planes of `block` (the planes' bytes are cleared first).
template <std::size_t N>
constexpr void pack_levels(const std::array<level_plane, N>& planes, const std::uint8_t* levels, std::size_t n, std::byte* block) noexcept {
    for (const auto& plane : planes) {
        for (std::size_t b = 0; b < plane.size_for(n); ++b) block[plane.offset + b] = std::byte{0};
        const unsigned mask = (1u << plane.bits) - 1u;
        for (std::size_t i = 0; i < n; ++i) {
            const auto [byte, shift] = plane.locate(i);
            block[byte] |= static_cast<std::byte>(((levels[i] >> plane.level_shift) & mask) << shift);
        }
    }
}

/// Reads level `i` back from the planes of `block`.
template <std::size_t N>
[[nodiscard]] constexpr unsigned unpack_level(const std::array<level_plane, N>& planes, const std::byte* block, std::size_t i) noexcept {
    unsigned level = 0;
    for (const auto& plane : planes) {
        const auto [byte, shift] = plane.locate(i);
        const unsigned mask = (1u << plane.bits) - 1u;
        level |= ((std::to_integer<unsigned>(block[byte]) >> shift) & mask) << plane.level_shift;
    }
    return level;
}

/// A block layout whose per-value codes (levels, or table indices) live in planes: what the SIMD unpackers
/// read. Every BlockFormat is one, and so are the table formats with a nibble plane (iq4_nl, iq4_xs, mxfp4).
template <class F>
concept PlanedLayout = requires {
    { F::planes.size() } -> std::convertible_to<std::size_t>;
    { F::planes[0] } -> std::convertible_to<level_plane>;
    { F::block_size } -> std::convertible_to<std::size_t>;
    { F::type_size } -> std::convertible_to<std::size_t>;
};

}  // namespace cogqat
