#pragma once
// The 32-value GGUF formats: q4_0, q5_0 (symmetric), q4_1, q5_1 (scale and min), q8_0 and q8_1 (8-bit,
// the activation types of ggml's dot products). One fp16 scale per block of 32; layouts as level planes.

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "cogqat/core/float16.hpp"
#include "cogqat/core/little_endian.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/format/block_format.hpp"
#include "cogqat/format/scale_search.hpp"

namespace cogqat::formats {

namespace detail {
[[nodiscard]] inline float load_fp16(const std::byte* p) noexcept { return fp16_bits_to_fp32(load_le<std::uint16_t>(p)); }
inline void store_fp16(std::byte* p, float v) noexcept { store_le<std::uint16_t>(p, fp32_to_fp16_bits(v)); }

/// Planes of the 32-value types: the low 4 bits as nibbles (values j and j+16 share a byte), an optional
/// 5th bit in a little-endian 32-bit word at `high_offset`.
template <unsigned Bits>
constexpr auto nibble_planes(std::size_t low_offset, std::size_t high_offset) {
    if constexpr (Bits == 4) {
        return std::array{level_plane{low_offset, 4, 0, 32, 16}};
    } else {
        static_assert(Bits == 5);
        return std::array{level_plane{low_offset, 4, 0, 32, 16}, level_plane{high_offset, 1, 4, 32, 32, plane_order::sequential}};
    }
}

/// ggml's search weights for the 32-value types with importance (quantize_row_q4_0_impl ... q5_1_impl): the
/// row's mean square σ², then per value qw·sqrt(σ² + x²) for block `b` of the row.
[[nodiscard]] inline float row_mean_square(const float* x, std::size_t n) noexcept {
    float sum_x2 = 0;
    for (std::size_t j = 0; j < n; ++j) sum_x2 += x[j] * x[j];
    return sum_x2 / static_cast<float>(n);
}
[[nodiscard]] inline std::array<float, 32> block_search_weights(const float* x, const float* qw, std::size_t b, float sigma2) noexcept {
    std::array<float, 32> weights{};
    for (std::size_t j = 0; j < 32; ++j) weights[j] = qw[32 * b + j] * std::sqrt(sigma2 + x[32 * b + j] * x[32 * b + j]);
    return weights;
}
}  // namespace detail

COGQAT_STRICT_FP_BEGIN

/// q4_0 / q5_0: x = d * (level - 2^(Bits-1)); d = (signed value of largest magnitude) / -2^(Bits-1).
template <ggml_type Type, unsigned Bits, std::size_t TypeSize>
struct symmetric_32 {
    static constexpr ggml_type type = Type;
    static constexpr std::size_t block_size = 32, type_size = TypeSize, sub_block_size = 32;
    static constexpr int level_offset = 1 << (Bits - 1);
    static constexpr bool signed_levels = false, has_min = false;
    static constexpr auto planes = detail::nibble_planes<Bits>(Bits == 4 ? 2 : 6, 2);

    static affine_scale sub_block_scale(const std::byte* block, std::size_t) noexcept { return {detail::load_fp16(block), 0.0f}; }
    /// Stores a scale chosen elsewhere (the error-minimizing searches); `s.scale` must be fp16-representable.
    static void store_scale(std::byte* block, affine_scale s) noexcept { detail::store_fp16(block, s.scale); }

    static void quantize_block(const float* x, std::byte* block) noexcept {
        const auto e = cogqat::detail::largest_magnitude(x, 32);
        const float d = e.value / -level_offset;
        const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
        detail::store_fp16(block, d);
        std::array<std::uint8_t, 32> levels{};
        for (std::size_t i = 0; i < 32; ++i) {
            const int raw = cogqat::detail::truncate_to_int8(x[i] * inverse + (level_offset + 0.5f));
            levels[i] = static_cast<std::uint8_t>(std::min((1 << Bits) - 1, raw));
        }
        store_levels<symmetric_32>(levels.data(), block);
    }

    /// ggml's quantize_row_q4_0_impl / q5_0_impl: what ggml_quantize_chunk writes for one row of `n` values
    /// given importance weights `qw` (one per value): per block make_qx_quants under qw·sqrt(σ² + x²), σ² the
    /// whole row's mean square; its levels are stored as found (no second rounding).
    static void quantize_row_weighted(const float* x, const float* qw, std::size_t n, std::byte* out) noexcept {
        const float sigma2 = detail::row_mean_square(x, n);
        for (std::size_t b = 0; b < n / 32; ++b) {
            const float* xb = x + 32 * b;
            const auto weights = detail::block_search_weights(x, qw, b, sigma2);
            std::array<std::int8_t, 32> found{};
            const float d = cogqat::detail::symmetric_scale_search(32, level_offset, xb, found.data(), weights.data());
            std::byte* block = out + b * type_size;
            detail::store_fp16(block, d);
            std::array<std::uint8_t, 32> levels{};
            std::copy(found.begin(), found.end(), levels.begin());
            store_levels<symmetric_32>(levels.data(), block);
        }
    }
};

/// q4_1 / q5_1: x = d * level + m with m the block minimum and d = (max - min) / (2^Bits - 1).
template <ggml_type Type, unsigned Bits, std::size_t TypeSize>
struct affine_32 {
    static constexpr ggml_type type = Type;
    static constexpr std::size_t block_size = 32, type_size = TypeSize, sub_block_size = 32;
    static constexpr int level_offset = 0;
    static constexpr bool signed_levels = false, has_min = true;
    static constexpr auto planes = detail::nibble_planes<Bits>(Bits == 4 ? 4 : 8, 4);

    static affine_scale sub_block_scale(const std::byte* block, std::size_t) noexcept {
        return {detail::load_fp16(block), -detail::load_fp16(block + 2)};
    }
    static void store_scale(std::byte* block, affine_scale s) noexcept {
        detail::store_fp16(block, s.scale);
        detail::store_fp16(block + 2, -s.min);
    }

    static void quantize_block(const float* x, std::byte* block) noexcept {
        float min = FLT_MAX;
        float max = -FLT_MAX;
        for (std::size_t i = 0; i < 32; ++i) {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
        }
        const float d = (max - min) / ((1 << Bits) - 1);
        const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
        detail::store_fp16(block, d);
        detail::store_fp16(block + 2, min);
        std::array<std::uint8_t, 32> levels{};
        for (std::size_t i = 0; i < 32; ++i) {
            const int raw = cogqat::detail::truncate_to_int8((x[i] - min) * inverse + 0.5f);
            // ggml clamps the 4-bit level; the 5-bit one is kept modulo 32 (the planes drop higher bits).
            levels[i] = Bits == 4 ? static_cast<std::uint8_t>(std::min(15, raw)) : static_cast<std::uint8_t>(raw);
        }
        store_levels<affine_32>(levels.data(), block);
    }

    /// ggml's quantize_row_q4_1_impl / q5_1_impl for one row of `n` values given importance weights `qw`:
    /// per block make_qkx3_quants under qw·sqrt(σ² + x²), σ² the whole row's mean square; the levels as found.
    static void quantize_row_weighted(const float* x, const float* qw, std::size_t n, std::byte* out) noexcept {
        constexpr cogqat::detail::affine_search_options weighted_search{-0.9f, 0.05f, 36, false};
        const float sigma2 = detail::row_mean_square(x, n);
        for (std::size_t b = 0; b < n / 32; ++b) {
            const float* xb = x + 32 * b;
            const auto weights = detail::block_search_weights(x, qw, b, sigma2);
            std::array<std::uint8_t, 32> levels{}, scratch{};
            float min = 0;
            const float d = cogqat::detail::affine_scale_search(32, (1 << Bits) - 1, xb, weights.data(), levels.data(), &min,
                                                                scratch.data(), weighted_search);
            std::byte* block = out + b * type_size;
            detail::store_fp16(block, d);
            detail::store_fp16(block + 2, -min);
            store_levels<affine_32>(levels.data(), block);
        }
    }
};

/// q8_0 / q8_1: x = d * q with q = round(x / d) in [-127, 127], d = max|x| / 127. q8_1 also stores
/// s = d * sum(q), which ggml's q4_1 and q5_1 dot products use for the min term.
template <ggml_type Type, bool WithSum>
struct int8_32 {
    static constexpr ggml_type type = Type;
    static constexpr std::size_t block_size = 32, type_size = WithSum ? 36 : 34, sub_block_size = 32;
    static constexpr int level_offset = 0;
    static constexpr bool signed_levels = true, has_min = false;
    static constexpr std::size_t quants_offset = WithSum ? 4 : 2;
    static constexpr std::array planes{level_plane{quants_offset, 8, 0, 32, 32}};

    static affine_scale sub_block_scale(const std::byte* block, std::size_t) noexcept { return {detail::load_fp16(block), 0.0f}; }
    /// Only the weight type (q8_0) takes a scale from outside: q8_1's stored sum depends on its levels.
    static void store_scale(std::byte* block, affine_scale s) noexcept requires(!WithSum) { detail::store_fp16(block, s.scale); }

    static void quantize_block(const float* x, std::byte* block) noexcept {
        float amax = 0.0f;
        for (std::size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
        const float d = amax / ((1 << 7) - 1);
        const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
        detail::store_fp16(block, d);
        int sum = 0;
        for (std::size_t i = 0; i < 32; ++i) {
            const std::int8_t q = cogqat::detail::round_to_int8(x[i] * inverse);
            block[quants_offset + i] = static_cast<std::byte>(q);
            sum += q;
        }
        if constexpr (WithSum) detail::store_fp16(block + 2, static_cast<float>(sum) * d);
    }
};

COGQAT_STRICT_FP_END

using q4_0 = symmetric_32<ggml_type::q4_0, 4, 18>;
using q5_0 = symmetric_32<ggml_type::q5_0, 5, 22>;
using q4_1 = affine_32<ggml_type::q4_1, 4, 20>;
using q5_1 = affine_32<ggml_type::q5_1, 5, 24>;
using q8_0 = int8_32<ggml_type::q8_0, false>;
using q8_1 = int8_32<ggml_type::q8_1, true>;

static_assert(BlockFormat<q4_0> && geometry_is_consistent<q4_0>());
static_assert(BlockFormat<q5_0> && geometry_is_consistent<q5_0>());
static_assert(BlockFormat<q4_1> && geometry_is_consistent<q4_1>());
static_assert(BlockFormat<q5_1> && geometry_is_consistent<q5_1>());
static_assert(BlockFormat<q8_0> && geometry_is_consistent<q8_0>());
static_assert(BlockFormat<q8_1> && geometry_is_consistent<q8_1>());

}  // namespace cogqat::formats
