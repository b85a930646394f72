#pragma once
// Loads and stores of little-endian scalars at any byte address. GGUF and every block format are
// little-endian; going through memcpy keeps unaligned access defined, and the swap keeps big-endian hosts right.

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

namespace cogqat {

namespace detail {
template <class T>
[[nodiscard]] constexpr T byte_swapped(T value) noexcept {
    auto bytes = std::bit_cast<std::array<std::byte, sizeof(T)>>(value);
    for (std::size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(bytes[i], bytes[sizeof(T) - 1 - i]);
    return std::bit_cast<T>(bytes);
}
}  // namespace detail

template <class T>
concept LittleEndianScalar = std::is_trivially_copyable_v<T> &&(std::integral<T> || std::floating_point<T>);

/// Reads a T stored little-endian at `p` (any alignment).
template <LittleEndianScalar T>
[[nodiscard]] inline T load_le(const std::byte* p) noexcept {
    T value;
    std::memcpy(&value, p, sizeof(T));
    if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) value = detail::byte_swapped(value);
    return value;
}

/// Writes `value` little-endian at `p` (any alignment).
template <LittleEndianScalar T>
inline void store_le(std::byte* p, T value) noexcept {
    if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) value = detail::byte_swapped(value);
    std::memcpy(p, &value, sizeof(T));
}

}  // namespace cogqat
