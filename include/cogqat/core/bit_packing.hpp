#pragma once
// The bit stream of packed N-bit codes (N = 2..8) and its scalar reference: the one definition of where a code's
// bits lie, which the container (format/packed_codes.hpp) and every SIMD kernel (simd/isa/pack_kernels.hpp) are
// checked against bit for bit.
//
// Bit order: a little-endian bit stream. Code i occupies bits [i N, i N + N) of the stream, bit b of the stream
// being bit (b mod 8) of byte b / 8, and a code's least significant bit comes first. Why this order:
//  - it is defined for every N alike, with no per-width layout table, and needs no padding: n codes take
//    exactly ceil(n N / 8) bytes;
//  - for N = 2, 4 and 8 it is the natural order (code 0 in the low nibble, as ggml's q4 nibbles);
//  - every 8 codes fill exactly N whole bytes, so a SIMD kernel can treat each group of 8 (or 16) codes
//    independently, and a code never spans more than two bytes (N <= 8), so one 16-bit read finds it;
//  - a sub-range of whole codes is a byte pointer plus a bit offset (0..7), so views need no copy.

#include <cstddef>
#include <cstdint>
#include <limits>

namespace cogqat {

/// Narrowest code width that packed storage holds.
inline constexpr int min_packed_bits = 2;
/// Widest code width that packed storage holds (wider codes are the quantizer's 16-bit words).
inline constexpr int max_packed_bits = 8;

/// Whether `count` codes of any supported width have a bit position that fits in std::size_t.
[[nodiscard]] constexpr bool packed_count_fits(std::size_t count) noexcept {
    return count <= std::numeric_limits<std::size_t>::max() / static_cast<std::size_t>(max_packed_bits);
}

/// Bytes that hold `count` codes of `bits` bits from bit 0 of a stream: ceil(count * bits / 8).
/// `count` must satisfy packed_count_fits.
[[nodiscard]] constexpr std::size_t packed_byte_count(std::size_t count, int bits) noexcept {
    return (count * static_cast<std::size_t>(bits) + 7) / 8;
}

namespace reference {

/// The code of `bits` bits at bit position `bit` of `stream`. Reads the second byte only when the code
/// reaches into it, so a stream's last code never reads past its last byte.
[[nodiscard]] inline std::uint8_t get_code(const std::byte* stream, std::size_t bit, int bits) noexcept {
    const std::size_t byte = bit / 8;
    const unsigned shift = static_cast<unsigned>(bit % 8);
    unsigned window = static_cast<unsigned>(stream[byte]);
    if (shift + static_cast<unsigned>(bits) > 8) window |= static_cast<unsigned>(stream[byte + 1]) << 8;
    return static_cast<std::uint8_t>((window >> shift) & ((1u << bits) - 1u));
}

/// Writes `code` (below 2^bits) into bits [bit, bit + bits) of `stream` and leaves every other bit as it was,
/// so that neighbouring codes, and the padding after the last code, survive.
inline void put_code(std::byte* stream, std::size_t bit, int bits, std::uint8_t code) noexcept {
    const std::size_t byte = bit / 8;
    const unsigned shift = static_cast<unsigned>(bit % 8);
    const unsigned mask = (1u << bits) - 1u;
    const unsigned low_mask = (mask << shift) & 0xffu;
    stream[byte] =
            static_cast<std::byte>((static_cast<unsigned>(stream[byte]) & ~low_mask) | ((static_cast<unsigned>(code) << shift) & 0xffu));
    if (shift + static_cast<unsigned>(bits) > 8) {
        const unsigned high_mask = mask >> (8 - shift);
        stream[byte + 1] = static_cast<std::byte>((static_cast<unsigned>(stream[byte + 1]) & ~high_mask) |
                                                  (static_cast<unsigned>(code) >> (8 - shift)));
    }
}

/// Packs codes[0, n) (each below 2^bits) into the stream from bit `first_bit` on; bits outside
/// [first_bit, first_bit + n bits) are left as they were.
inline void pack_codes(const std::uint8_t* codes, std::size_t n, int bits, std::byte* stream, std::size_t first_bit) noexcept {
    const auto width = static_cast<std::size_t>(bits);
    for (std::size_t i = 0; i < n; ++i) put_code(stream, first_bit + i * width, bits, codes[i]);
}

/// Unpacks n codes from the stream, the first at bit `first_bit`, one byte per code.
inline void unpack_codes(const std::byte* stream, std::size_t first_bit, std::size_t n, int bits, std::uint8_t* codes) noexcept {
    const auto width = static_cast<std::size_t>(bits);
    for (std::size_t i = 0; i < n; ++i) codes[i] = get_code(stream, first_bit + i * width, bits);
}

/// Index of the first code above `max_code`, or n when every code fits.
[[nodiscard]] inline std::size_t first_code_above(const std::uint8_t* codes, std::size_t n, std::uint8_t max_code) noexcept {
    for (std::size_t i = 0; i < n; ++i)
        if (codes[i] > max_code) return i;
    return n;
}

}  // namespace reference

}  // namespace cogqat
