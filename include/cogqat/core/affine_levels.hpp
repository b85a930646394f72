#pragma once
// The per-value arithmetic of affine quantization, for every bit width and mode of core/policy.hpp: the level
// range and its unsigned codes, and the reference encode and decode of one value. The generic quantizer, the
// calibrators that search its grid, the SIMD kernels checked against it and the cognitive containers'
// quantized values all use these, so there is one definition of what a code means.
//
// Compiled without FMA contraction, so that results do not depend on compiler flags.

#include <algorithm>
#include <cstdint>
#include <span>
#include <utility>

#include "cogqat/core/policy.hpp"
#include "cogqat/core/rounding.hpp"
#include "cogqat/core/strict_fp.hpp"

COGQAT_STRICT_FP_BEGIN

namespace cogqat {

/// A group's parameters as a super-block stores them: ScaleBits-bit codes for the scale (a multiple of the
/// super-scale) and, in a mode with a zero-point, for the zero-point (on a grid of zero_step levels).
struct sub_scale {
    std::uint16_t scale = 0;
    std::uint16_t zero = 0;

    friend bool operator==(const sub_scale&, const sub_scale&) = default;
};

/// Level range of a (bit width, mode) pair and how it maps to unsigned codes: code = level - min_level.
template <BitWidthPolicy Bits, ModePolicy Mode>
struct level_traits {
    using code_type = typename Bits::code_type;
    static constexpr int min_level = Mode::min_level(Bits::bits);
    static constexpr int max_level = Mode::max_level(Bits::bits);
    static constexpr int max_code = max_level - min_level;
    static_assert(min_level < max_level, "a mode needs at least two levels");
    // storage_bits() counts Bits::bits per value, so every code must fit in that many bits.
    static_assert(max_code < (1 << Bits::bits), "the mode's levels do not fit in the bit width");
};

namespace reference {

/// Smallest and largest of `values`; (0, 0) when there are none.
[[nodiscard]] inline std::pair<float, float> value_range(std::span<const float> values) noexcept {
    if (values.empty()) return {0.0f, 0.0f};
    float lo = values[0];
    float hi = values[0];
    for (const float v : values) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    return {lo, hi};
}

/// Code of a finite x in a group: level = clamp(round(x / scale) + zero_point, min_level, max_level), rounded
/// to nearest with ties to even, stored as level - min_level. Scale 0 (an all-zero group) gives the level of
/// the zero-point, which decodes to 0.
template <BitWidthPolicy Bits, ModePolicy Mode>
[[nodiscard]] inline typename Bits::code_type encode(float x, affine_params p) noexcept {
    using traits = level_traits<Bits, Mode>;
    int level = p.zero_point;
    if (p.scale != 0.0f) {
        // Clamping in float first keeps the conversion exact and defined when x / scale overflows.
        const float steps = std::clamp(x / p.scale, static_cast<float>(traits::min_level - p.zero_point),
                                       static_cast<float>(traits::max_level - p.zero_point));
        level = detail::nearest_int(steps) + p.zero_point;
    }
    return static_cast<typename Bits::code_type>(level - traits::min_level);
}

/// Value of a code: scale * (level - zero_point). The integer difference is exact in float (|d| < 2^17).
template <BitWidthPolicy Bits, ModePolicy Mode>
[[nodiscard]] inline float decode(typename Bits::code_type code, affine_params p) noexcept {
    const int level = static_cast<int>(code) + level_traits<Bits, Mode>::min_level;
    return p.scale * static_cast<float>(level - p.zero_point);
}

}  // namespace reference

}  // namespace cogqat

COGQAT_STRICT_FP_END
