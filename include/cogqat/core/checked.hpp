#pragma once
// Sizes computed from untrusted numbers (a file's shape, a user's options) without wrapping around.

#include <cstdint>
#include <limits>
#include <optional>

namespace cogqat {

/// a * b, or nullopt when it does not fit 64 bits.
[[nodiscard]] inline constexpr std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) noexcept {
    if (b != 0 && a > std::numeric_limits<std::uint64_t>::max() / b) return std::nullopt;
    return a * b;
}

/// a + b, or nullopt when it does not fit 64 bits.
[[nodiscard]] inline constexpr std::optional<std::uint64_t> checked_add(std::uint64_t a, std::uint64_t b) noexcept {
    if (a > std::numeric_limits<std::uint64_t>::max() - b) return std::nullopt;
    return a + b;
}

}  // namespace cogqat
