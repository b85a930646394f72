#pragma once
// The 256-value "K" super-block formats: q2_K, q3_K, q4_K, q5_K, q6_K and q8_K (the activation type of
// their dot products). A super-block holds 8 or 16 sub-blocks whose scales (and mins) are themselves
// quantized against one fp16 super-scale. Each format below says how its sub-scales are searched and
// stored; level placement, the final re-quantization and dequantization are the shared ones.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "cogqat/core/float16.hpp"
#include "cogqat/core/little_endian.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/format/block_format.hpp"
#include "cogqat/format/legacy_formats.hpp"
#include "cogqat/format/scale_search.hpp"

namespace cogqat::formats {

namespace detail {

/// The 12-byte scale field of q4_K and q5_K: eight 6-bit scales and eight 6-bit mins. Sub-blocks 0-3 keep
/// both in the low 6 bits of bytes 0-7; sub-blocks 4-7 keep their low 4 bits in bytes 8-11 and their top
/// 2 bits in the top bits of bytes 0-7.
inline void store_scale_min_6bit(std::byte* field, const std::array<std::uint8_t, 8>& scales,
                                 const std::array<std::uint8_t, 8>& mins) noexcept {
    std::array<std::uint8_t, 12> out{};
    for (std::size_t j = 0; j < 8; ++j) {
        if (j < 4) {
            out[j] = scales[j];
            out[j + 4] = mins[j];
        } else {
            out[j + 4] = static_cast<std::uint8_t>((scales[j] & 0xF) | ((mins[j] & 0xF) << 4));
            out[j - 4] |= static_cast<std::uint8_t>((scales[j] >> 4) << 6);
            out[j] |= static_cast<std::uint8_t>((mins[j] >> 4) << 6);
        }
    }
    for (std::size_t i = 0; i < 12; ++i) field[i] = std::byte{out[i]};
}

struct scale_min_6bit {
    std::uint8_t scale, min;
};
[[nodiscard]] inline scale_min_6bit load_scale_min_6bit(const std::byte* field, std::size_t j) noexcept {
    auto at = [&](std::size_t i) { return std::to_integer<unsigned>(field[i]); };
    if (j < 4) return {static_cast<std::uint8_t>(at(j) & 63), static_cast<std::uint8_t>(at(j + 4) & 63)};
    return {static_cast<std::uint8_t>((at(j + 4) & 0xF) | ((at(j - 4) >> 6) << 4)),
            static_cast<std::uint8_t>((at(j + 4) >> 4) | ((at(j) >> 6) << 4))};
}

/// The 12-byte field of q3_K: sixteen 6-bit scales stored with a +32 bias. Low 4 bits as nibbles of bytes
/// 0-7 (sub-blocks 0-7 low nibble, 8-15 high nibble), top 2 bits in bytes 8-11 (2 bits per sub-block).
[[nodiscard]] inline int load_scale_6bit_signed(const std::byte* field, std::size_t j) noexcept {
    auto at = [&](std::size_t i) { return std::to_integer<int>(field[i]); };
    const int low = j < 8 ? at(j) & 0xF : at(j - 8) >> 4;
    const int high = (at(8 + j % 4) >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
}
inline void store_scale_6bit_signed(std::byte* field, const std::array<std::uint8_t, 16>& biased) noexcept {
    std::array<std::uint8_t, 12> out{};
    for (std::size_t j = 0; j < 16; ++j) {
        const unsigned l = biased[j];
        if (j < 8)
            out[j] = static_cast<std::uint8_t>(l & 0xF);
        else
            out[j - 8] |= static_cast<std::uint8_t>((l & 0xF) << 4);
        out[8 + j % 4] |= static_cast<std::uint8_t>((l >> 4) << (2 * (j / 4)));
    }
    for (std::size_t i = 0; i < 12; ++i) field[i] = std::byte{out[i]};
}

}  // namespace detail

COGQAT_STRICT_FP_BEGIN

/// q2_K: 16 sub-blocks of 16, levels 0..3, x = d*s_j*level - dmin*m_j with 4-bit s_j and m_j.
struct q2_K {
    static constexpr ggml_type type = ggml_type::q2_K;
    static constexpr std::size_t block_size = 256, type_size = 84, sub_block_size = 16;
    static constexpr int level_offset = 0;
    static constexpr bool signed_levels = false, has_min = true;
    static constexpr std::size_t scales_at = 0, d_at = 80, dmin_at = 82;
    static constexpr std::array planes{level_plane{16, 2, 0, 128, 32}};

    static affine_scale sub_block_scale(const std::byte* block, std::size_t j) noexcept {
        const unsigned packed = std::to_integer<unsigned>(block[scales_at + j]);
        return {detail::load_fp16(block + d_at) * static_cast<float>(packed & 0xF),
                detail::load_fp16(block + dmin_at) * static_cast<float>(packed >> 4)};
    }

    /// Stores the super-block's sub-block scales and mins (4-bit codes against fp16 d and dmin) as the
    /// reference does after its searches; the SIMD quantizer shares this step.
    static bool store_sub_scales(const float* scales, const float* mins, std::byte* block) noexcept {
        constexpr float q4scale = 15.0f;
        float max_scale = 0, max_min = 0;
        for (std::size_t j = 0; j < 16; ++j) {
            max_scale = std::max(max_scale, scales[j]);
            max_min = std::max(max_min, mins[j]);
        }
        std::array<std::uint8_t, 16> packed{};
        if (max_scale > 0) {
            const float inverse = q4scale / max_scale;
            for (std::size_t j = 0; j < 16; ++j) packed[j] = static_cast<std::uint8_t>(cogqat::detail::nearest_int(inverse * scales[j]));
            detail::store_fp16(block + d_at, max_scale / q4scale);
        } else {
            detail::store_fp16(block + d_at, 0.0f);
        }
        if (max_min > 0) {
            const float inverse = q4scale / max_min;
            for (std::size_t j = 0; j < 16; ++j)
                packed[j] |= static_cast<std::uint8_t>(cogqat::detail::nearest_int(inverse * mins[j]) << 4);
            detail::store_fp16(block + dmin_at, max_min / q4scale);
        } else {
            detail::store_fp16(block + dmin_at, 0.0f);
        }
        for (std::size_t j = 0; j < 16; ++j) block[scales_at + j] = std::byte{packed[j]};
        return true;
    }

    static void quantize_block(const float* x, std::byte* block) noexcept {
        std::array<std::uint8_t, 256> levels{};
        std::array<std::uint8_t, 16> scratch{};
        std::array<float, 16> weights{}, scales{}, mins{};
        for (std::size_t j = 0; j < 16; ++j) {
            for (std::size_t l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
            scales[j] = cogqat::detail::affine_scale_search(16, 3, x + 16 * j, weights.data(), levels.data() + 16 * j, &mins[j],
                                                            scratch.data(), {-0.5f, 0.1f, 15, true});
        }
        store_sub_scales(scales.data(), mins.data(), block);
        requantize_levels<q2_K>(x, block, levels.data());
        store_levels<q2_K>(levels.data(), block);
    }

    /// ggml's quantize_row_q2_K_impl (what ggml_quantize_chunk writes given importance weights `qw`, one per
    /// value): make_qkx3_quants per sub-block under qw·sqrt(σ² + x²), σ² the block's mean square, then the
    /// 4-bit scales and mins fitted by make_qp_quants weighed by each sub-block's total weight.
    static void quantize_block_weighted(const float* x, const float* qw, std::byte* block) noexcept {
        constexpr cogqat::detail::affine_search_options weighted_search{-0.9f, 0.05f, 36, false};
        std::array<std::uint8_t, 256> levels{};
        std::array<std::uint8_t, 16> scratch{}, ls{}, lm{};
        std::array<float, 16> weights{}, scales{}, mins{}, sub_weight{};
        float sum_x2 = 0;
        for (std::size_t l = 0; l < 256; ++l) sum_x2 += x[l] * x[l];
        const float sigma2 = sum_x2 / 256;
        for (std::size_t j = 0; j < 16; ++j) {
            for (std::size_t l = 0; l < 16; ++l) weights[l] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
            for (std::size_t l = 0; l < 16; ++l) sub_weight[j] += weights[l];
            scales[j] = cogqat::detail::affine_scale_search(16, 3, x + 16 * j, weights.data(), levels.data() + 16 * j, &mins[j],
                                                            scratch.data(), weighted_search);
        }
        detail::store_fp16(block + d_at, cogqat::detail::qp_scale(16, 15, scales.data(), ls.data(), sub_weight.data()));
        detail::store_fp16(block + dmin_at, cogqat::detail::qp_scale(16, 15, mins.data(), lm.data(), sub_weight.data()));
        for (std::size_t j = 0; j < 16; ++j) block[scales_at + j] = std::byte{static_cast<std::uint8_t>(ls[j] | (lm[j] << 4))};
        requantize_levels<q2_K>(x, block, levels.data());
        store_levels<q2_K>(levels.data(), block);
    }
};

/// q3_K: 16 sub-blocks of 16, levels -4..3 (2 low bits + a high-bit mask), signed 6-bit sub-scales.
struct q3_K {
    static constexpr ggml_type type = ggml_type::q3_K;
    static constexpr std::size_t block_size = 256, type_size = 110, sub_block_size = 16;
    static constexpr int level_offset = 4;
    static constexpr bool signed_levels = false, has_min = false;
    static constexpr std::size_t scales_at = 96, d_at = 108;
    static constexpr std::array planes{level_plane{32, 2, 0, 128, 32}, level_plane{0, 1, 2, 256, 32}};

    static affine_scale sub_block_scale(const std::byte* block, std::size_t j) noexcept {
        return {detail::load_fp16(block + d_at) * static_cast<float>(detail::load_scale_6bit_signed(block + scales_at, j)), 0.0f};
    }

    /// Stores the signed 6-bit sub-block scales against an fp16 d (no mins: `mins` is unused).
    static bool store_sub_scales(const float* scales, const float* /*mins*/, std::byte* block) noexcept {
        const float max_scale = cogqat::detail::largest_magnitude(scales, 16).value;
        std::array<std::uint8_t, 16> biased{};
        if (max_scale != 0.0f) {
            const float inverse = -32.0f / max_scale;
            for (std::size_t j = 0; j < 16; ++j) {
                const auto l = static_cast<std::int8_t>(cogqat::detail::nearest_int(inverse * scales[j]));
                biased[j] = static_cast<std::uint8_t>(std::clamp<int>(l, -32, 31) + 32);
            }
            detail::store_fp16(block + d_at, 1 / inverse);
        } else {
            detail::store_fp16(block + d_at, 0.0f);
        }
        detail::store_scale_6bit_signed(block + scales_at, biased);
        return true;
    }

    static void quantize_block(const float* x, std::byte* block) noexcept {
        std::array<std::int8_t, 256> found{};
        std::array<float, 16> scales{};
        for (std::size_t j = 0; j < 16; ++j) scales[j] = cogqat::detail::symmetric_refined_search(16, 4, x + 16 * j, found.data() + 16 * j);
        store_sub_scales(scales.data(), nullptr, block);
        std::array<std::uint8_t, 256> levels{};
        std::copy(found.begin(), found.end(), levels.begin());
        requantize_levels<q3_K>(x, block, levels.data());
        store_levels<q3_K>(levels.data(), block);
    }

    /// ggml's quantize_row_q3_K_impl given importance weights `qw`: make_qx_quants per sub-block under
    /// qw·sqrt(σ² + x²), σ² twice the block's mean square, then the 6-bit scales fitted by make_qx_quants
    /// weighed by each sub-block's total weight.
    static void quantize_block_weighted(const float* x, const float* qw, std::byte* block) noexcept {
        std::array<std::int8_t, 256> found{};
        std::array<std::int8_t, 16> scale_levels{};
        std::array<float, 16> weights{}, scales{}, sub_weight{};
        float sum_x2 = 0;
        for (std::size_t l = 0; l < 256; ++l) sum_x2 += x[l] * x[l];
        const float sigma2 = 2 * sum_x2 / 256;
        for (std::size_t j = 0; j < 16; ++j) {
            for (std::size_t l = 0; l < 16; ++l) weights[l] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
            float sum_w = 0;
            for (std::size_t l = 0; l < 16; ++l) sum_w += weights[l];
            sub_weight[j] = sum_w;
            scales[j] = cogqat::detail::symmetric_scale_search(16, 4, x + 16 * j, found.data() + 16 * j, weights.data());
        }
        const float d = cogqat::detail::symmetric_scale_search(16, 32, scales.data(), scale_levels.data(), sub_weight.data());
        std::array<std::uint8_t, 16> biased{};
        for (std::size_t j = 0; j < 16; ++j) biased[j] = static_cast<std::uint8_t>(scale_levels[j]);
        detail::store_scale_6bit_signed(block + scales_at, biased);
        detail::store_fp16(block + d_at, d);
        std::array<std::uint8_t, 256> levels{};
        std::copy(found.begin(), found.end(), levels.begin());
        requantize_levels<q3_K>(x, block, levels.data());
        store_levels<q3_K>(levels.data(), block);
    }
};

/// q4_K (Bits = 4) and q5_K (Bits = 5): 8 sub-blocks of 32, levels 0..2^Bits-1, x = d*s_j*level - dmin*m_j
/// with 6-bit s_j and m_j.
template <unsigned Bits>
struct affine_k {
    static constexpr ggml_type type = Bits == 4 ? ggml_type::q4_K : ggml_type::q5_K;
    static constexpr std::size_t block_size = 256, type_size = Bits == 4 ? 144 : 176, sub_block_size = 32;
    static constexpr int level_offset = 0;
    static constexpr bool signed_levels = false, has_min = true;
    static constexpr std::size_t d_at = 0, dmin_at = 2, scales_at = 4;
    static constexpr auto planes = [] {
        if constexpr (Bits == 4)
            return std::array{level_plane{16, 4, 0, 64, 32}};
        else
            return std::array{level_plane{48, 4, 0, 64, 32}, level_plane{16, 1, 4, 256, 32}};
    }();
    // ggml's search settings: first candidate, step and count of the scale search.
    static constexpr cogqat::detail::affine_search_options search = Bits == 4
                                                                            ? cogqat::detail::affine_search_options{-1.0f, 0.1f, 20, false}
                                                                            : cogqat::detail::affine_search_options{-0.5f, 0.1f, 15, false};

    static affine_scale sub_block_scale(const std::byte* block, std::size_t j) noexcept {
        const auto sm = detail::load_scale_min_6bit(block + scales_at, j);
        return {detail::load_fp16(block + d_at) * static_cast<float>(sm.scale),
                detail::load_fp16(block + dmin_at) * static_cast<float>(sm.min)};
    }

    /// Stores the eight 6-bit scales and mins against fp16 d and dmin, as the reference does after its searches.
    static bool store_sub_scales(const float* scales, const float* mins, std::byte* block) noexcept {
        float max_scale = 0, max_min = 0;
        for (std::size_t j = 0; j < 8; ++j) {
            max_scale = std::max(max_scale, scales[j]);
            max_min = std::max(max_min, mins[j]);
        }
        const float inverse_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
        const float inverse_min = max_min > 0 ? 63.0f / max_min : 0.0f;
        std::array<std::uint8_t, 8> ls{}, lm{};
        for (std::size_t j = 0; j < 8; ++j) {
            ls[j] = std::min<std::uint8_t>(63, static_cast<std::uint8_t>(cogqat::detail::nearest_int(inverse_scale * scales[j])));
            lm[j] = std::min<std::uint8_t>(63, static_cast<std::uint8_t>(cogqat::detail::nearest_int(inverse_min * mins[j])));
        }
        detail::store_scale_min_6bit(block + scales_at, ls, lm);
        detail::store_fp16(block + d_at, max_scale / 63.0f);
        detail::store_fp16(block + dmin_at, max_min / 63.0f);
        return true;
    }

    static void quantize_block(const float* x, std::byte* block) noexcept {
        constexpr int nmax = (1 << Bits) - 1;
        std::array<std::uint8_t, 256> levels{};
        std::array<std::uint8_t, 32> scratch{};
        std::array<float, 32> weights{};
        std::array<float, 8> scales{}, mins{};
        for (std::size_t j = 0; j < 8; ++j) {
            const float* xs = x + 32 * j;
            float sum_x2 = 0;
            for (std::size_t l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
            const float av_x = std::sqrt(sum_x2 / 32);
            for (std::size_t l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
            scales[j] = cogqat::detail::affine_scale_search(32, nmax, xs, weights.data(), levels.data() + 32 * j, &mins[j], scratch.data(),
                                                            search);
        }
        store_sub_scales(scales.data(), mins.data(), block);
        requantize_levels<affine_k>(x, block, levels.data());
        store_levels<affine_k>(levels.data(), block);
    }

    /// What ggml_quantize_chunk writes given importance weights `qw` (one per value of the block): each
    /// value's error weighed by qw·sqrt(σ² + x²), σ² twice the block's mean square; make_qkx3_quants per
    /// sub-block, then the 6-bit scales and mins fitted by make_qp_quants, weighed by each sub-block's
    /// total weight (ggml's quantize_row_q4_K_impl / q5_K_impl).
    static void quantize_block_weighted(const float* x, const float* qw, std::byte* block) noexcept {
        constexpr int nmax = (1 << Bits) - 1;
        constexpr cogqat::detail::affine_search_options weighted_search{-0.9f, 0.05f, 36, false};
        std::array<std::uint8_t, 256> levels{};
        std::array<std::uint8_t, 32> scratch{};
        std::array<float, 32> weights{};
        std::array<float, 8> scales{}, mins{}, sub_weight{};
        float sum_x2 = 0;
        for (std::size_t l = 0; l < 256; ++l) sum_x2 += x[l] * x[l];
        const float sigma2 = 2 * sum_x2 / 256;
        for (std::size_t j = 0; j < 8; ++j) {
            const float* xs = x + 32 * j;
            for (std::size_t l = 0; l < 32; ++l) weights[l] = qw[32 * j + l] * std::sqrt(sigma2 + xs[l] * xs[l]);
            float sum_w = 0;
            for (std::size_t l = 0; l < 32; ++l) sum_w += weights[l];
            sub_weight[j] = sum_w;
            scales[j] = cogqat::detail::affine_scale_search(32, nmax, xs, weights.data(), levels.data() + 32 * j, &mins[j], scratch.data(),
                                                            weighted_search);
        }
        std::array<std::uint8_t, 8> ls{}, lm{};
        const float d = cogqat::detail::qp_scale(8, 63, scales.data(), ls.data(), sub_weight.data());
        const float dmin = cogqat::detail::qp_scale(8, 63, mins.data(), lm.data(), sub_weight.data());
        if constexpr (Bits == 5)  // q5_K's clamps what q4_K's stores as is
            for (std::size_t j = 0; j < 8; ++j) ls[j] = std::min<std::uint8_t>(63, ls[j]), lm[j] = std::min<std::uint8_t>(63, lm[j]);
        detail::store_scale_min_6bit(block + scales_at, ls, lm);
        detail::store_fp16(block + d_at, d);
        detail::store_fp16(block + dmin_at, dmin);
        requantize_levels<affine_k>(x, block, levels.data());
        store_levels<affine_k>(levels.data(), block);
    }
};
using q4_K = affine_k<4>;
using q5_K = affine_k<5>;

/// q6_K: 16 sub-blocks of 16, levels -32..31 (4 low bits + 2 high bits), int8 sub-scales.
struct q6_K {
    static constexpr ggml_type type = ggml_type::q6_K;
    static constexpr std::size_t block_size = 256, type_size = 210, sub_block_size = 16;
    static constexpr int level_offset = 32;
    static constexpr bool signed_levels = false, has_min = false;
    static constexpr std::size_t scales_at = 192, d_at = 208;
    static constexpr std::array planes{level_plane{0, 4, 0, 128, 64}, level_plane{128, 2, 4, 128, 32}};

    static affine_scale sub_block_scale(const std::byte* block, std::size_t j) noexcept {
        const auto s = static_cast<std::int8_t>(std::to_integer<std::uint8_t>(block[scales_at + j]));
        return {detail::load_fp16(block + d_at) * static_cast<float>(s), 0.0f};
    }

    /// Stores the int8 sub-block scales against an fp32-from-fp16 d. Returns false for an all-zero
    /// super-block, which it has then written whole as zero bytes.
    static bool store_sub_scales(const float* scales, const float* /*mins*/, std::byte* block) noexcept {
        const auto [max_scale, max_abs_scale] = cogqat::detail::largest_magnitude(scales, 16);
        if (max_abs_scale < cogqat::detail::group_max_eps) {  // an all-zero super-block is stored as zero bytes
            std::fill(block, block + type_size, std::byte{0});
            return false;
        }
        const float inverse = -128.0f / max_scale;
        detail::store_fp16(block + d_at, 1 / inverse);
        for (std::size_t j = 0; j < 16; ++j)
            block[scales_at + j] =
                    static_cast<std::byte>(static_cast<std::int8_t>(std::min(127, cogqat::detail::nearest_int(inverse * scales[j]))));
        return true;
    }

    static void quantize_block(const float* x, std::byte* block) noexcept {
        std::array<std::int8_t, 256> found{};
        std::array<float, 16> scales{};
        for (std::size_t j = 0; j < 16; ++j)
            scales[j] = cogqat::detail::symmetric_scale_search(16, 32, x + 16 * j, found.data() + 16 * j, nullptr);
        if (!store_sub_scales(scales.data(), nullptr, block)) return;
        std::array<std::uint8_t, 256> levels{};
        std::copy(found.begin(), found.end(), levels.begin());
        requantize_levels<q6_K>(x, block, levels.data());
        store_levels<q6_K>(levels.data(), block);
    }

    /// ggml's quantize_row_q6_K_impl given importance weights `qw`: the reference with each sub-block's
    /// make_qx_quants weighing its errors by qw itself (not by x²).
    static void quantize_block_weighted(const float* x, const float* qw, std::byte* block) noexcept {
        std::array<std::int8_t, 256> found{};
        std::array<float, 16> scales{};
        for (std::size_t j = 0; j < 16; ++j)
            scales[j] = cogqat::detail::symmetric_scale_search(16, 32, x + 16 * j, found.data() + 16 * j, qw + 16 * j);
        if (!store_sub_scales(scales.data(), nullptr, block)) return;
        std::array<std::uint8_t, 256> levels{};
        std::copy(found.begin(), found.end(), levels.begin());
        requantize_levels<q6_K>(x, block, levels.data());
        store_levels<q6_K>(levels.data(), block);
    }
};

/// q8_K: 256 int8 levels with an fp32 scale and the int16 sums of each group of 16 (used by dot products).
struct q8_K {
    static constexpr ggml_type type = ggml_type::q8_K;
    static constexpr std::size_t block_size = 256, type_size = 292, sub_block_size = 256;
    static constexpr int level_offset = 0;
    static constexpr bool signed_levels = true, has_min = false;
    static constexpr std::size_t d_at = 0, quants_at = 4, sums_at = 260;
    static constexpr std::array planes{level_plane{quants_at, 8, 0, 256, 256}};

    static affine_scale sub_block_scale(const std::byte* block, std::size_t) noexcept { return {load_le<float>(block + d_at), 0.0f}; }

    static void quantize_block(const float* x, std::byte* block) noexcept {
        const auto e = cogqat::detail::largest_magnitude(x, 256);
        if (e.magnitude == 0.0f) {
            std::fill(block, block + type_size, std::byte{0});
            return;
        }
        const float inverse = -127.0f / e.value;
        for (std::size_t i = 0; i < 256; ++i)
            block[quants_at + i] =
                    static_cast<std::byte>(static_cast<std::int8_t>(std::min(127, cogqat::detail::nearest_int(inverse * x[i]))));
        for (std::size_t g = 0; g < 16; ++g) {
            int sum = 0;
            for (std::size_t i = 0; i < 16; ++i)
                sum += static_cast<std::int8_t>(std::to_integer<std::uint8_t>(block[quants_at + 16 * g + i]));
            store_le<std::int16_t>(block + sums_at + 2 * g, static_cast<std::int16_t>(sum));
        }
        store_le<float>(block + d_at, 1 / inverse);
    }
};

COGQAT_STRICT_FP_END

static_assert(BlockFormat<q2_K> && geometry_is_consistent<q2_K>());
static_assert(BlockFormat<q3_K> && geometry_is_consistent<q3_K>());
static_assert(BlockFormat<q4_K> && geometry_is_consistent<q4_K>());
static_assert(BlockFormat<q5_K> && geometry_is_consistent<q5_K>());
static_assert(BlockFormat<q6_K> && geometry_is_consistent<q6_K>());
static_assert(BlockFormat<q8_K> && geometry_is_consistent<q8_K>());

}  // namespace cogqat::formats
