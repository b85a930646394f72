#pragma once
// The generic quantizer's per-element arithmetic (quant/quantizer.hpp, namespace reference) on SIMD lanes:
// a division, a clamp, the rounding trick of nearest_int and an integer offset, each the same IEEE
// operation as the reference's, so codes and decoded floats are the reference's bit for bit.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <cstddef>
#include <cstdint>

#include "cogqat/core/rounding.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/simd/isa/convert.hpp"
#include "cogqat/simd/isa/isa.hpp"

namespace cogqat::simd {

COGQAT_STRICT_FP_BEGIN

namespace detail {

/// nearest_int on every lane: x + 1.5 * 2^23 rounded by the FPU, the level read from the low mantissa bits.
template <class Isa>
inline batch<std::int32_t, Isa> nearest_int(float_batch<Isa> x) noexcept {
    using ib = batch<std::int32_t, Isa>;
    const float_batch<Isa> shifted = x + float_batch<Isa>(12582912.0f);
    return (xsimd::bitwise_cast<ib>(shifted) & ib(0x7fffff)) - ib(0x400000);
}

template <class Isa, class Code>
void encode(const float* x, std::size_t n, float scale, int zero, int lo, int hi, Code* codes) noexcept {
    using fb = float_batch<Isa>;
    using ib = batch<std::int32_t, Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    const fb s(scale), below(static_cast<float>(lo - zero)), above(static_cast<float>(hi - zero));
    const ib offset(zero - lo);
    alignas(64) std::int32_t out[lanes];
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        // std::clamp(v, a, b) is v < a ? a : (b < v ? b : v): min/max give the same for finite lanes.
        const fb steps = xsimd::min(xsimd::max(fb::load_unaligned(x + i) / s, below), above);
        (nearest_int<Isa>(steps) + offset).store_aligned(out);
        for (std::size_t k = 0; k < lanes; ++k) codes[i + k] = static_cast<Code>(out[k]);
    }
    const float below_1 = static_cast<float>(lo - zero), above_1 = static_cast<float>(hi - zero);
    for (; i < n; ++i) {
        const float v = x[i] / scale;
        const float steps = v < below_1 ? below_1 : (above_1 < v ? above_1 : v);
        codes[i] = static_cast<Code>(cogqat::detail::nearest_int(steps) + zero - lo);
    }
}

template <class Isa, class Code>
void decode(const Code* codes, std::size_t n, float scale, int lo_minus_zero, float* out) noexcept {
    using fb = float_batch<Isa>;
    using ib = batch<std::int32_t, Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    const fb s(scale);
    const ib offset(lo_minus_zero);
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        const ib levels = xsimd::load_as<std::int32_t, typename Isa::arch>(codes + i, xsimd::unaligned_mode{}) + offset;
        (s * xsimd::to_float(levels)).store_unaligned(out + i);
    }
    for (; i < n; ++i) out[i] = scale * static_cast<float>(static_cast<int>(codes[i]) + lo_minus_zero);
}

}  // namespace detail

COGQAT_STRICT_FP_END

/// Fills the generic quantizer's kernels.
template <class Isa>
void add_quantizer_kernels(dispatch::kernel_table& t) {
    t.quantizer.encode_u8 = &detail::encode<Isa, std::uint8_t>;
    t.quantizer.encode_u16 = &detail::encode<Isa, std::uint16_t>;
    t.quantizer.decode_u8 = &detail::decode<Isa, std::uint8_t>;
    t.quantizer.decode_u16 = &detail::decode<Isa, std::uint16_t>;
}

}  // namespace cogqat::simd
