#pragma once
// The float -> integer conversions the GGUF reference quantizers rely on, defined for every input so that
// results are the same bits on every ISA and free of undefined behaviour.

#include <bit>
#include <cmath>
#include <cstdint>

namespace cogqat::detail {

/// Round to nearest, ties to even, by letting the FPU round x + 1.5*2^23 to an integer-valued float and
/// reading the low mantissa bits. Exact for |x| < 2^22; beyond that (and for NaN/Inf, which overflowing
/// scales produce) the result is still deterministic, and the GGUF reference outputs depend on that value.
[[nodiscard]] constexpr int nearest_int(float x) noexcept {
    const float shifted = x + 12582912.0f;
    return static_cast<int>(std::bit_cast<std::uint32_t>(shifted) & 0x7fffffu) - 0x400000;
}

/// float -> int32 by truncation, as x86-64's cvttss2si does it: NaN and out-of-range values give INT32_MIN.
/// C++ leaves those undefined; the GGUF reference files record the x86 result (e.g. when a block scale is
/// subnormal and its inverse overflows), so it is the definition here on every ISA.
[[nodiscard]] constexpr std::int32_t truncate_to_int32(float x) noexcept {
    if (x >= -2147483648.0f && x < 2147483648.0f) return static_cast<std::int32_t>(x);
    return INT32_MIN;
}

/// float -> int8 the way `(int8_t)x` compiles on x86-64: truncate to int32, keep the low byte.
[[nodiscard]] constexpr std::int8_t truncate_to_int8(float x) noexcept {
    return static_cast<std::int8_t>(static_cast<std::uint8_t>(static_cast<std::uint32_t>(truncate_to_int32(x)) & 0xffu));
}

/// Round half away from zero (C's roundf), then convert as truncate_to_int8 does.
[[nodiscard]] inline std::int8_t round_to_int8(float x) noexcept { return truncate_to_int8(std::round(x)); }

}  // namespace cogqat::detail
