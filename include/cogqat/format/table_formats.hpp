#pragma once
// The table-decoded GGUF formats (format/table_format.hpp): iq4_nl and iq4_xs (the non-linear 4-bit
// levels, one search shared by both), mxfp4 (E2M1 values with a power-of-two block scale), tq1_0 and tq2_0
// (ternary, BitNet b1.58 style). Each quantizer is ggml_quantize_chunk's, step for step: the rounding of
// every float decides the bytes.

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "cogqat/core/float16.hpp"
#include "cogqat/core/little_endian.hpp"
#include "cogqat/core/rounding.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/format/ggml_type.hpp"
#include "cogqat/format/level_layout.hpp"
#include "cogqat/format/scale_search.hpp"
#include "cogqat/format/table_format.hpp"
#include "cogqat/format/value_tables.hpp"

namespace cogqat::formats {

namespace detail {

[[nodiscard]] inline float load_half(const std::byte* p) noexcept { return fp16_bits_to_fp32(load_le<std::uint16_t>(p)); }
inline void store_half(std::byte* p, float v) noexcept { store_le<std::uint16_t>(p, fp32_to_fp16_bits(v)); }

/// Index planes of the 4-bit table formats: in each run of 32 values, value j and j + 16 share byte j.
inline constexpr std::array<level_plane, 1> nibble_index_plane(std::size_t offset) { return {level_plane{offset, 4, 0, 32, 16}}; }

/// How many candidate scales the iq4 search tries on each side of the first: ggml_quantize_chunk's 7 (its
/// quantize_row_iq4_nl_ref tries none, but no GGUF writer calls that).
inline constexpr int iq4_tries = 7;

COGQAT_STRICT_FP_BEGIN

/// The weight of each value's squared error in the iq4 search: x^2, or with importance w, w * sqrt(s2 + x^2)
/// where s2 is twice the mean square of the whole (super-)block, as ggml weighs an importance matrix.
inline void iq4_weights(const float* x, const float* importance, std::size_t n, float block_sigma2, float* weight) noexcept {
    for (std::size_t j = 0; j < n; ++j) weight[j] = importance ? importance[j] * std::sqrt(block_sigma2 + x[j] * x[j]) : x[j] * x[j];
}

/// The least-squares scale of 32 values on the iq4 table, the best of 2 * iq4_tries + 2 candidates, and
/// (from the first candidate) their indices. 0 for a group below group_max_eps, whose indices are left alone.
inline float iq4_sub_block_scale(const float* x, const float* weight, std::uint8_t* indices) noexcept {
    constexpr auto& values = iq4nl_values;
    float amax = 0, max = 0;
    for (std::size_t j = 0; j < 32; ++j) {
        const float ax = std::fabs(x[j]);
        if (ax > amax) amax = ax, max = x[j];
    }
    if (amax < cogqat::detail::group_max_eps) return 0.0f;
    const float first = static_cast<float>(values[0]);
    float d = -max / first;
    float inverse = 1 / d;
    float sum_qx = 0, sum_q2 = 0;
    for (std::size_t j = 0; j < 32; ++j) {
        const std::uint8_t l = nearest_table_index(values, inverse * x[j]);
        indices[j] = l;
        const float q = values[l], w = weight[j];
        sum_qx += w * q * x[j];
        sum_q2 += w * q * q;
    }
    d = sum_q2 > 0 ? sum_qx / sum_q2 : 0.0f;
    float best = d * sum_qx;
    for (int attempt = -iq4_tries; attempt <= iq4_tries; ++attempt) {
        inverse = static_cast<float>(attempt + values[0]) / max;
        sum_qx = sum_q2 = 0;
        for (std::size_t j = 0; j < 32; ++j) {
            const float q = values[nearest_table_index(values, inverse * x[j])], w = weight[j];
            sum_qx += w * q * x[j];
            sum_q2 += w * q * q;
        }
        if (sum_q2 > 0 && sum_qx * sum_qx > best * sum_q2) {
            d = sum_qx / sum_q2;
            best = d * sum_qx;
        }
    }
    return d;
}

/// One iq4 (super-)block of SubBlocks groups of 32: the scale of each group (searched), the indices against
/// the scale decoding will see, and for iq4_xs the 6-bit group scales against one fp16 super-scale.
template <std::size_t SubBlocks>
struct iq4_block {
    float d = 0.0f;                                       ///< stored as fp16: the scale (iq4_nl) or the super-scale (iq4_xs)
    std::array<std::uint8_t, SubBlocks> biased_scales{};  ///< iq4_xs: group scale / d + 32, in [0, 63]
    std::array<std::uint8_t, 32 * SubBlocks> indices{};
};

template <std::size_t SubBlocks>
[[nodiscard]] inline iq4_block<SubBlocks> iq4_search(const float* x, const float* importance) noexcept {
    constexpr std::size_t n = 32 * SubBlocks;
    constexpr auto& values = iq4nl_values;
    float sigma2 = 0;
    for (std::size_t j = 0; j < n; ++j) sigma2 += x[j] * x[j];
    sigma2 *= 2.0f / static_cast<float>(n);

    iq4_block<SubBlocks> out;
    std::array<float, SubBlocks> scales{};
    std::array<float, 32> weight{};
    float max_scale = 0, amax_scale = 0;
    for (std::size_t ib = 0; ib < SubBlocks; ++ib) {
        iq4_weights(x + 32 * ib, importance ? importance + 32 * ib : nullptr, 32, sigma2, weight.data());
        scales[ib] = iq4_sub_block_scale(x + 32 * ib, weight.data(), out.indices.data() + 32 * ib);
        if (std::fabs(scales[ib]) > amax_scale) amax_scale = std::fabs(scales[ib]), max_scale = scales[ib];
    }
    if constexpr (SubBlocks == 1) {
        out.d = scales[0];
        const float inverse = scales[0] != 0.0f ? 1 / scales[0] : 0.0f;
        for (std::size_t j = 0; j < n; ++j) out.indices[j] = nearest_table_index(values, inverse * x[j]);
    } else {
        // The indices are found again against each group's scale as stored (in float, before the fp16 d).
        out.d = -max_scale / 32;
        const float inverse = out.d != 0.0f ? 1 / out.d : 0.0f;
        for (std::size_t ib = 0; ib < SubBlocks; ++ib) {
            const int l = std::clamp(cogqat::detail::nearest_int(inverse * scales[ib]), -32, 31);
            const float dl = out.d * static_cast<float>(l);
            const float inverse_dl = dl != 0.0f ? 1 / dl : 0.0f;
            for (std::size_t j = 0; j < 32; ++j) out.indices[32 * ib + j] = nearest_table_index(values, inverse_dl * x[32 * ib + j]);
            out.biased_scales[ib] = static_cast<std::uint8_t>(l + 32);
        }
    }
    return out;
}

COGQAT_STRICT_FP_END

/// ggml's E8M0 scale halved (kvalues_mxfp4 are doubled): 2^(e - 128), subnormal for e < 2.
[[nodiscard]] inline float e8m0_half_to_float(std::uint8_t e) noexcept {
    const std::uint32_t bits = e < 2 ? std::uint32_t{0x00200000u} << e : static_cast<std::uint32_t>(e - 1) << 23;
    return std::bit_cast<float>(bits);
}

/// The t-th of the five base-3 digits packed in a tq1_0 byte (most significant first), by ggml's
/// fixed-point trick: the byte is ceil(digits * 256 / 243), so multiplying by 3^t shifts digit t to the top.
[[nodiscard]] constexpr unsigned ternary_digit(std::uint8_t packed, unsigned t) noexcept {
    constexpr std::array<unsigned, 5> pow3{1, 3, 9, 27, 81};
    const auto shifted = static_cast<std::uint8_t>(packed * pow3[t]);
    return (static_cast<unsigned>(shifted) * 3u) >> 8;
}

/// Packs five base-3 digits (most significant first; fewer are padded with 0 digits at the end).
[[nodiscard]] constexpr std::uint8_t pack_ternary_digits(const unsigned* digits, std::size_t count) noexcept {
    unsigned q = 0;
    for (std::size_t n = 0; n < 5; ++n) q = q * 3 + (n < count ? digits[n] : 0u);
    return static_cast<std::uint8_t>((q * 256 + 242) / 243);
}

}  // namespace detail

COGQAT_STRICT_FP_BEGIN

/// iq4_nl: 32 values, x = d * iq4nl_values[index], fp16 d @0, 4-bit indices @2 (j and j+16 share byte j).
struct iq4_nl {
    static constexpr ggml_type type = ggml_type::iq4_nl;
    static constexpr std::size_t block_size = 32, type_size = 18, sub_block_size = 32;
    static constexpr auto& values = iq4nl_values;
    static constexpr bool uses_importance = true;
    static constexpr auto planes = detail::nibble_index_plane(2);

    static unsigned index_at(const std::byte* block, std::size_t i) noexcept { return unpack_level(planes, block, i); }
    static float scale(const std::byte* block, std::size_t, float factor) noexcept { return detail::load_half(block) * factor; }

    static void quantize_block(const float* x, const float* importance, std::byte* block) noexcept {
        const auto found = detail::iq4_search<1>(x, importance);
        detail::store_half(block, found.d);
        pack_levels(planes, found.indices.data(), block_size, block);
    }
};

/// iq4_xs: 256 values in 8 groups of 32, x = d * (s_j - 32) * iq4nl_values[index]. fp16 d @0; the top 2
/// bits of the eight 6-bit s_j in u16 @2 (2 bits per group), their low 4 bits as nibbles @4; indices @8.
struct iq4_xs {
    static constexpr ggml_type type = ggml_type::iq4_xs;
    static constexpr std::size_t block_size = 256, type_size = 136, sub_block_size = 32;
    static constexpr auto& values = iq4nl_values;
    static constexpr bool uses_importance = true;
    static constexpr std::size_t d_at = 0, scales_high_at = 2, scales_low_at = 4;
    static constexpr auto planes = detail::nibble_index_plane(8);

    static unsigned index_at(const std::byte* block, std::size_t i) noexcept { return unpack_level(planes, block, i); }
    static int group_scale(const std::byte* block, std::size_t j) noexcept {
        const unsigned low = (std::to_integer<unsigned>(block[scales_low_at + j / 2]) >> (4 * (j % 2))) & 0xF;
        const unsigned high = (load_le<std::uint16_t>(block + scales_high_at) >> (2 * j)) & 3;
        return static_cast<int>(low | (high << 4)) - 32;
    }
    static float scale(const std::byte* block, std::size_t j, float factor) noexcept {
        return (detail::load_half(block + d_at) * factor) * static_cast<float>(group_scale(block, j));
    }

    static void quantize_block(const float* x, const float* importance, std::byte* block) noexcept {
        const auto found = detail::iq4_search<8>(x, importance);
        detail::store_half(block + d_at, found.d);
        std::uint16_t high = 0;
        for (std::size_t j = 0; j < 8; ++j) {
            const unsigned l = found.biased_scales[j];
            if (j % 2 == 0) block[scales_low_at + j / 2] = std::byte{0};
            block[scales_low_at + j / 2] |= static_cast<std::byte>((l & 0xF) << (4 * (j % 2)));
            high = static_cast<std::uint16_t>(high | ((l >> 4) << (2 * j)));
        }
        store_le<std::uint16_t>(block + scales_high_at, high);
        pack_levels(planes, found.indices.data(), block_size, block);
    }
};

/// mxfp4 (OCP microscaling FP4): 32 E2M1 values and a shared power-of-two scale, E8M0 @0, indices @1.
/// The scale is 2^(floor(log2 amax) - 2), mapping the largest magnitude into [4, 8) of E2M1's [0, 6].
struct mxfp4 {
    static constexpr ggml_type type = ggml_type::mxfp4;
    static constexpr std::size_t block_size = 32, type_size = 17, sub_block_size = 32;
    static constexpr auto& values = e2m1_doubled_values;
    static constexpr bool uses_importance = false;
    static constexpr auto planes = detail::nibble_index_plane(1);

    static unsigned index_at(const std::byte* block, std::size_t i) noexcept { return unpack_level(planes, block, i); }
    static float scale(const std::byte* block, std::size_t, float factor) noexcept {
        return factor * detail::e8m0_half_to_float(std::to_integer<std::uint8_t>(block[0]));
    }

    /// The first nearest entry (ggml's linear scan: +0 before -0, lower codes first on ties).
    static std::uint8_t nearest(float x, float d) noexcept {
        std::uint8_t best = 0;
        float best_error = std::fabs(static_cast<float>(values[0]) * d - x);
        for (std::uint8_t i = 1; i < 16; ++i) {
            const float error = std::fabs(static_cast<float>(values[i]) * d - x);
            if (error < best_error) best = i, best_error = error;
        }
        return best;
    }

    static void quantize_block(const float* x, const float*, std::byte* block) noexcept {
        float amax = 0.0f;
        for (std::size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
        // ggml converts the float exponent to uint8_t as x86 does (through int32), which wraps for amax < 2^-125.
        const auto e = amax > 0.0f ? static_cast<std::uint8_t>(cogqat::detail::truncate_to_int32(std::floor(std::log2(amax)) - 2 + 127))
                                   : std::uint8_t{0};
        const float d = detail::e8m0_half_to_float(e);
        block[0] = std::byte{e};
        std::array<std::uint8_t, 32> indices{};
        for (std::size_t j = 0; j < 32; ++j) indices[j] = nearest(x[j], d);
        pack_levels(planes, indices.data(), block_size, block);
    }
};

/// Both ternary formats: d = max |x| (fp16), trit = round-half-away(x / d) + 1, x = d * (trit - 1).
struct ternary_scale {
    float d, inverse;
    static ternary_scale of(const float* x) noexcept {
        float amax = 0.0f;
        for (std::size_t j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(x[j]));
        return {amax, amax != 0.0f ? 1.0f / amax : 0.0f};
    }
    [[nodiscard]] unsigned trit(float x) const noexcept { return static_cast<unsigned>(std::lround(x * inverse) + 1); }
};

/// tq1_0: 256 trits, 1.6875 bits each. qs[48] @0 packs five trits a byte: bytes 0-31 hold values m + 32t
/// (t = 0..4), bytes 32-47 values 160 + m + 16t; qh[4] @48 packs four (values 240 + m + 4t); fp16 d @52.
struct tq1_0 {
    static constexpr ggml_type type = ggml_type::tq1_0;
    static constexpr std::size_t block_size = 256, type_size = 54, sub_block_size = 256;
    static constexpr auto& values = ternary_values;
    static constexpr bool uses_importance = false;
    static constexpr std::size_t qh_at = 48, d_at = 52;

    /// Where value i's trit is: its byte, its digit, and the run of values the byte's digits stride over.
    struct trit_position {
        std::size_t byte;
        unsigned digit;
    };
    static constexpr trit_position locate(std::size_t i) noexcept {
        if (i < 160) return {i % 32, static_cast<unsigned>(i / 32)};
        if (i < 240) return {32 + (i - 160) % 16, static_cast<unsigned>((i - 160) / 16)};
        return {qh_at + (i - 240) % 4, static_cast<unsigned>((i - 240) / 4)};
    }

    static unsigned index_at(const std::byte* block, std::size_t i) noexcept {
        const auto p = locate(i);
        return detail::ternary_digit(std::to_integer<std::uint8_t>(block[p.byte]), p.digit);
    }
    static float scale(const std::byte* block, std::size_t, float factor) noexcept { return detail::load_half(block + d_at) * factor; }

    static void quantize_block(const float* x, const float*, std::byte* block) noexcept {
        const auto s = ternary_scale::of(x);
        detail::store_half(block + d_at, s.d);
        // Every byte holds the trits of the values that locate() maps to it, in digit order.
        std::array<std::array<unsigned, 5>, 52> digits{};
        std::array<std::size_t, 52> count{};
        for (std::size_t i = 0; i < 256; ++i) {
            const auto p = locate(i);
            digits[p.byte][p.digit] = s.trit(x[i]);
            count[p.byte] = std::max<std::size_t>(count[p.byte], p.digit + 1);
        }
        for (std::size_t b = 0; b < 52; ++b) block[b] = std::byte{detail::pack_ternary_digits(digits[b].data(), count[b])};
    }
};

/// tq2_0: 256 values, 2 bits each: qs[64] @0 as q2_K's (byte m of each 32 holds values m + 32l of its
/// 128, at bits 2l); fp16 d @64.
struct tq2_0 {
    static constexpr ggml_type type = ggml_type::tq2_0;
    static constexpr std::size_t block_size = 256, type_size = 66, sub_block_size = 256;
    static constexpr auto& values = ternary_2bit_values;
    static constexpr bool uses_importance = false;
    static constexpr std::size_t d_at = 64;
    static constexpr std::array planes{level_plane{0, 2, 0, 128, 32}};

    static unsigned index_at(const std::byte* block, std::size_t i) noexcept { return unpack_level(planes, block, i); }
    static float scale(const std::byte* block, std::size_t, float factor) noexcept { return detail::load_half(block + d_at) * factor; }

    static void quantize_block(const float* x, const float*, std::byte* block) noexcept {
        const auto s = ternary_scale::of(x);
        detail::store_half(block + d_at, s.d);
        std::array<std::uint8_t, 256> trits{};
        for (std::size_t i = 0; i < 256; ++i) trits[i] = static_cast<std::uint8_t>(s.trit(x[i]));
        pack_levels(planes, trits.data(), block_size, block);
    }
};

COGQAT_STRICT_FP_END

static_assert(TableFormat<iq4_nl> && table_geometry_is_consistent<iq4_nl>());
static_assert(TableFormat<iq4_xs> && table_geometry_is_consistent<iq4_xs>());
static_assert(TableFormat<mxfp4> && table_geometry_is_consistent<mxfp4>());
static_assert(TableFormat<tq1_0> && table_geometry_is_consistent<tq1_0>());
static_assert(TableFormat<tq2_0> && table_geometry_is_consistent<tq2_0>());

}  // namespace cogqat::formats
