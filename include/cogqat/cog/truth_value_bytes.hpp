#pragma once
// Truth values as bytes, for storage: each truth-value type is written at its own width (two float32 for
// float_truth_value; the two N-bit codes packed into ceil(2N / 8) bytes for quantized_truth_value<BitWidth<N>>,
// so an 8-bit value takes 2 bytes and is never widened to floats). Little-endian whatever the host, so a file
// moves between machines. The encoding's description is stored beside the data, so that a store written with
// one type refuses to be read as another.

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "cogqat/cog/truth_value.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/policy.hpp"

namespace cogqat::cog {

/// How a truth-value type is written as bytes: `size` bytes per value, `description()` naming the encoding
/// (stored with the data and compared on opening), `write` and `read`. `read` throws format_error for bytes
/// that no value of the type writes. Specialize it for a truth-value type of your own.
template <class TV>
struct truth_value_bytes;

/// A truth value type the storage can write: a TruthValue with a truth_value_bytes specialization.
template <class TV>
concept StorableTruthValue = TruthValue<TV> && requires(const TV tv, std::span<std::byte> out, std::span<const std::byte> in) {
    { truth_value_bytes<TV>::size } -> std::convertible_to<std::size_t>;
    { truth_value_bytes<TV>::description() } -> std::convertible_to<std::string>;
    truth_value_bytes<TV>::write(tv, out);
    { truth_value_bytes<TV>::read(in) } -> std::same_as<TV>;
};

namespace detail::tv_bytes {

inline void put_le(std::uint64_t v, std::span<std::byte> out) noexcept {
    for (std::byte& b : out) {
        b = static_cast<std::byte>(v & 0xFFu);
        v >>= 8;
    }
}
[[nodiscard]] inline std::uint64_t get_le(std::span<const std::byte> in) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = in.size(); i-- > 0;) v = (v << 8) | std::to_integer<std::uint64_t>(in[i]);
    return v;
}
inline void require_size(std::size_t got, std::size_t want, std::string_view type) {
    if (got != want) {
        throw format_error("truth_value_bytes<" + std::string(type) + ">: " + std::to_string(got) + " bytes where a value takes " +
                           std::to_string(want));
    }
}

}  // namespace detail::tv_bytes

/// Two IEEE-754 float32, strength then confidence.
template <>
struct truth_value_bytes<float_truth_value> {
    static constexpr std::size_t size = 8;
    [[nodiscard]] static std::string description() { return "float32 strength and confidence (8 bytes)"; }
    static void write(const float_truth_value& tv, std::span<std::byte> out) {
        detail::tv_bytes::require_size(out.size(), size, "float");
        detail::tv_bytes::put_le(std::bit_cast<std::uint32_t>(tv.strength()), out.first(4));
        detail::tv_bytes::put_le(std::bit_cast<std::uint32_t>(tv.confidence()), out.subspan(4));
    }
    [[nodiscard]] static float_truth_value read(std::span<const std::byte> in) {
        detail::tv_bytes::require_size(in.size(), size, "float");
        const auto strength = std::bit_cast<float>(static_cast<std::uint32_t>(detail::tv_bytes::get_le(in.first(4))));
        const auto confidence = std::bit_cast<float>(static_cast<std::uint32_t>(detail::tv_bytes::get_le(in.subspan(4))));
        if (!(strength >= 0.0f && strength <= 1.0f && confidence >= 0.0f && confidence <= 1.0f)) {
            throw format_error("truth_value_bytes<float>: strength " + std::to_string(strength) + ", confidence " +
                               std::to_string(confidence) + " is not a truth value (each must be in [0, 1])");
        }
        return {strength, confidence};
    }
};

/// The strength code in the low N bits, the confidence code in the next N, in ceil(2N / 8) bytes.
template <BitWidthPolicy Bits>
struct truth_value_bytes<quantized_truth_value<Bits>> {
    static constexpr int bits = Bits::bits;
    static constexpr std::size_t size = (2 * static_cast<std::size_t>(bits) + 7) / 8;
    [[nodiscard]] static std::string description() {
        return "quantized " + std::to_string(bits) + "-bit strength and confidence codes (" + std::to_string(size) + " bytes)";
    }
    static void write(const quantized_truth_value<Bits>& tv, std::span<std::byte> out) {
        detail::tv_bytes::require_size(out.size(), size, "quantized");
        detail::tv_bytes::put_le(std::uint64_t{tv.strength_code()} | (std::uint64_t{tv.confidence_code()} << bits), out);
    }
    [[nodiscard]] static quantized_truth_value<Bits> read(std::span<const std::byte> in) {
        using code_type = typename quantized_truth_value<Bits>::code_type;
        detail::tv_bytes::require_size(in.size(), size, "quantized");
        const std::uint64_t packed = detail::tv_bytes::get_le(in);
        constexpr std::uint64_t mask = (std::uint64_t{1} << bits) - 1;
        if ((packed >> (2 * bits)) != 0) {
            throw format_error("truth_value_bytes<quantized " + std::to_string(bits) + "-bit>: bits set above the two codes");
        }
        return quantized_truth_value<Bits>::from_codes(static_cast<code_type>(packed & mask),
                                                       static_cast<code_type>((packed >> bits) & mask));
    }
};

}  // namespace cogqat::cog
