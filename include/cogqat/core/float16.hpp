#pragma once
// IEEE binary16 and bfloat16 storage types with conversions bit-exact with ggml's software conversions:
// round to nearest, ties to even; fp16 turns every NaN into the quiet NaN 0x7E00 with the NaN's sign, and
// bf16 keeps the NaN's upper bits and forces the quiet bit. Subnormals are kept (no flush to zero).

#include <bit>
#include <cstdint>

namespace cogqat {

/// fp32 -> IEEE binary16 bits, round to nearest even.
[[nodiscard]] constexpr std::uint16_t fp32_to_fp16_bits(float value) noexcept {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
    const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
    const std::uint32_t magnitude = bits & 0x7fffffffu;
    if (magnitude > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u);   // NaN
    if (magnitude >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to Inf
    if (magnitude >= 0x38800000u) {                                                   // normal half (>= 2^-14)
        const std::uint32_t round = 0xfffu + ((magnitude >> 13) & 1u);
        return static_cast<std::uint16_t>(sign | ((magnitude - 0x38000000u + round) >> 13));
    }
    const std::uint32_t exponent = magnitude >> 23;
    if (exponent < 102) return sign;  // below 2^-25: rounds to zero
    // Subnormal half: the value in units of 2^-24 is mantissa >> shift, rounded to nearest even.
    const std::uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126 - exponent;
    std::uint32_t result = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (result & 1u))) ++result;
    return static_cast<std::uint16_t>(sign | result);
}

/// IEEE binary16 bits -> fp32 (exact; a signalling NaN comes back quiet, as ggml's conversion does).
[[nodiscard]] constexpr float fp16_bits_to_fp32(std::uint16_t half) noexcept {
    const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
    const std::uint32_t exponent = (half >> 10) & 0x1fu;
    const std::uint32_t mantissa = half & 0x3ffu;
    if (exponent == 0x1f) {
        return std::bit_cast<float>(sign | 0x7f800000u | (mantissa ? 0x400000u : 0u) | (mantissa << 13));
    }
    if (exponent == 0) {
        const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;  // exact: at most 10 significant bits
        return std::bit_cast<float>(sign | std::bit_cast<std::uint32_t>(magnitude));
    }
    return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

/// fp32 -> bfloat16 bits, round to nearest even; NaN keeps its sign and upper payload and becomes quiet.
[[nodiscard]] constexpr std::uint16_t fp32_to_bf16_bits(float value) noexcept {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
    return static_cast<std::uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

/// bfloat16 bits -> fp32 (exact).
[[nodiscard]] constexpr float bf16_bits_to_fp32(std::uint16_t bf) noexcept {
    return std::bit_cast<float>(static_cast<std::uint32_t>(bf) << 16);
}

/// Storage for one IEEE binary16 value, as found in GGUF blocks. Trivially copyable, 2 bytes.
struct fp16 {
    std::uint16_t bits = 0;
    [[nodiscard]] static constexpr fp16 from_float(float v) noexcept { return {fp32_to_fp16_bits(v)}; }
    [[nodiscard]] constexpr float to_float() const noexcept { return fp16_bits_to_fp32(bits); }
    friend constexpr bool operator==(fp16, fp16) = default;
};

/// Storage for one bfloat16 value. Trivially copyable, 2 bytes.
struct bf16 {
    std::uint16_t bits = 0;
    [[nodiscard]] static constexpr bf16 from_float(float v) noexcept { return {fp32_to_bf16_bits(v)}; }
    [[nodiscard]] constexpr float to_float() const noexcept { return bf16_bits_to_fp32(bits); }
    friend constexpr bool operator==(bf16, bf16) = default;
};

static_assert(sizeof(fp16) == 2 && sizeof(bf16) == 2);

}  // namespace cogqat
