#pragma once
// The grid i-quants as formats: iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s (groups of values fitted to points of a
// lattice grid, iq_search.hpp) and iq1_s, iq1_m (ternary groups with a shift, searched exhaustively). Each type
// is a small traits struct: its geometry, how one 256-value super-block is searched and packed, and how it
// decodes. Bytes and floats are ggml's reference ones (ggml_quantize_chunk, to_float), checked in the tests.

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>

#include "cogqat/core/float16.hpp"
#include "cogqat/core/little_endian.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/format/ggml_type.hpp"
#include "cogqat/format/iq_grids.hpp"
#include "cogqat/format/iq_search.hpp"

namespace cogqat {

/// The requirements on a grid i-quant traits type. quantize_block reads 256 values and, when the format is
/// given an importance matrix, their 256 importance weights (nullptr: none); it throws iq::search_failed where
/// ggml's reference aborts.
template <class F>
concept GridFormat = requires(const float* x, const float* importance, std::byte* block, const std::byte* stored, float* y) {
    { F::type } -> std::convertible_to<ggml_type>;
    { F::block_size } -> std::convertible_to<std::size_t>;
    { F::type_size } -> std::convertible_to<std::size_t>;
    { F::needs_importance } -> std::convertible_to<bool>;
    { F::quantize_block(x, importance, block) } -> std::same_as<void>;
    { F::dequantize_block(stored, y) } -> std::same_as<void>;
};

}  // namespace cogqat

COGQAT_STRICT_FP_BEGIN

namespace cogqat::formats {

namespace iq {

[[nodiscard]] inline float load_half(const std::byte* p) noexcept { return fp16_bits_to_fp32(load_le<std::uint16_t>(p)); }
inline void store_half(std::byte* p, float v) noexcept { store_le<std::uint16_t>(p, fp32_to_fp16_bits(v)); }
[[nodiscard]] inline unsigned byte_at(const std::byte* p, std::size_t i) noexcept { return std::to_integer<unsigned>(p[i]); }
[[nodiscard]] inline float sign_of(unsigned signs, unsigned j) noexcept { return (signs >> j) & 1u ? -1.f : 1.f; }

/// One group of a lattice format made ready to search: weights, their roots, |x| and the sign bytes.
struct prepared_group {
    std::array<float, 32> weight{}, root_weight{}, xval{};
    std::array<std::uint8_t, 4> signs{};
    float max = 0;
};

/// Weights for a group: importance * sqrt(sigma2 + x²) when there is an importance matrix, else `fallback`.
template <class Fallback>
[[nodiscard]] prepared_group prepare_group(const float* x, const float* importance, float sigma2, std::size_t n, bool even_parity,
                                           Fallback fallback) noexcept {
    prepared_group p;
    if (importance)
        importance_weights(x, importance, sigma2, n, p.weight.data());
    else
        for (std::size_t i = 0; i < n; ++i) p.weight[i] = fallback(x[i]);
    for (std::size_t i = 0; i < n; ++i) p.root_weight[i] = std::sqrt(p.weight[i]);
    for (std::size_t k = 0; k < n / 8; ++k) p.signs[k] = fold_signs(x + 8 * k, p.weight.data() + 8 * k, p.xval.data() + 8 * k, even_parity);
    p.max = p.xval[0];
    for (std::size_t i = 1; i < n; ++i) p.max = std::max(p.max, p.xval[i]);
    return p;
}

/// ggml's reference asserts a non-negative scale; a NaN one (from overflowing sums) has no defined bytes.
inline void require_scale(float scale) {
    if (!(scale >= 0)) throw search_failed{};
}

/// A flipped scale flips the stored signs (never reached with non-negative weights; kept as the reference has it).
inline float positive_scale(float scale, std::uint8_t* signs, std::size_t count, unsigned mask) noexcept {
    if (scale >= 0) return scale;
    for (std::size_t k = 0; k < count; ++k) signs[k] = static_cast<std::uint8_t>(~signs[k] & mask);
    return -scale;
}

}  // namespace iq

/// iq2_xxs (2.06 bpw): 8 groups of 32; each 8 values are a point of a 256-point grid and 7 sign bits; a 4-bit
/// group scale shares the group's 32-bit sign word. Needs importance weights (ggml refuses without).
struct iq2_xxs {
    static constexpr ggml_type type = ggml_type::iq2_xxs;
    static constexpr std::size_t block_size = 256, type_size = 66;
    static constexpr bool needs_importance = true;
    static constexpr iq::lattice_rule rule{6, 0.1f, true, true, iq::refit::always};

    static void quantize_block(const float* x, const float* importance, std::byte* block) {
        const auto& grid = iq::lattice_of(iq::grid_kind::iq2xxs);
        std::array<std::uint32_t, 16> q2{};
        std::array<float, 8> scales{};
        const float sigma2 = iq::sum_of_squares(x) / static_cast<float>(block_size);
        float max_scale = 0;
        for (std::size_t ib = 0; ib < 8; ++ib) {
            auto g = iq::prepare_group(x + 32 * ib, importance + 32 * ib, sigma2, 32, true, [](float) { return 0.0f; });
            if (g.max < 1e-15f) continue;
            const auto fit = iq::fit_to_lattice(grid, rule, 32, g.xval.data(), g.weight.data(), g.root_weight.data(), g.max);
            if (!fit) continue;
            const float scale = iq::positive_scale(fit->scale, g.signs.data(), 4, 127);
            for (unsigned k = 0; k < 4; ++k) {
                q2[2 * ib] |= static_cast<std::uint32_t>(fit->points[k]) << (8 * k);
                q2[2 * ib + 1] |= static_cast<std::uint32_t>(g.signs[k]) << (7 * k);
            }
            iq::require_scale(scale);
            scales[ib] = scale;
            max_scale = std::max(max_scale, scale);
        }
        std::memset(block, 0, type_size);
        if (max_scale == 0) return;
        const float d = max_scale / 31;
        iq::store_half(block, d);
        const float id = 1 / d;
        for (std::size_t ib = 0; ib < 8; ++ib) q2[2 * ib + 1] |= static_cast<std::uint32_t>(iq::odd_scale_code(id, scales[ib], 15)) << 28;
        for (std::size_t i = 0; i < 16; ++i) store_le<std::uint32_t>(block + 2 + 4 * i, q2[i]);
    }

    static void dequantize_block(const std::byte* block, float* y) noexcept {
        const std::int8_t* grid = iq::decoded_grid<iq::grid_kind::iq2xxs>().data();
        const float d = iq::load_half(block);
        for (std::size_t ib = 0; ib < 8; ++ib) {
            const std::byte* q = block + 2 + 8 * ib;
            const auto aux = load_le<std::uint32_t>(q + 4);
            const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.25f;
            for (unsigned l = 0; l < 4; ++l) {
                const std::size_t point = iq::byte_at(q, l);
                const unsigned signs = iq::even_signs(aux >> (7 * l));
                for (unsigned j = 0; j < 8; ++j) *y++ = db * static_cast<float>(grid[point * 8 + j]) * iq::sign_of(signs, j);
            }
        }
    }
};

/// iq2_xs (2.31 bpw): 16 groups of 16; each 8 values are a 9-bit point of a 512-point grid and 7 sign bits in
/// one 16-bit word; 4-bit group scales in 8 bytes. Needs importance weights.
struct iq2_xs {
    static constexpr ggml_type type = ggml_type::iq2_xs;
    static constexpr std::size_t block_size = 256, type_size = 74;
    static constexpr bool needs_importance = true;
    static constexpr iq::lattice_rule rule{9, 0.1f, false, true, iq::refit::off_grid};

    static void quantize_block(const float* x, const float* importance, std::byte* block) {
        const auto& grid = iq::lattice_of(iq::grid_kind::iq2xs);
        std::array<std::uint16_t, 32> q2{};
        std::array<float, 16> scales{};
        const float sigma2 = iq::sum_of_squares(x) / static_cast<float>(block_size);
        float max_scale = 0;
        for (std::size_t ib = 0; ib < 16; ++ib) {
            auto g = iq::prepare_group(x + 16 * ib, importance + 16 * ib, sigma2, 16, true, [](float) { return 0.0f; });
            if (g.max < 1e-15f) continue;
            const auto fit = iq::fit_to_lattice(grid, rule, 16, g.xval.data(), g.weight.data(), g.root_weight.data(), g.max);
            if (!fit) continue;  // only a make_qp_quants start (iq2_xxs) can find no scale
            const float scale = iq::positive_scale(fit->scale, g.signs.data(), 2, 127);
            for (unsigned k = 0; k < 2; ++k) q2[2 * ib + k] = static_cast<std::uint16_t>(fit->points[k] | (g.signs[k] << 9));
            iq::require_scale(scale);
            scales[ib] = scale;
            max_scale = std::max(max_scale, scale);
        }
        std::memset(block, 0, type_size);
        if (max_scale == 0) return;
        const float d = max_scale / 31;
        iq::store_half(block, d);
        const float id = 1 / d;
        for (std::size_t ib = 0; ib < 16; ++ib) {
            const unsigned code = iq::odd_scale_code(id, scales[ib], 15);
            block[66 + ib / 2] |= std::byte{static_cast<std::uint8_t>(ib % 2 ? code << 4 : code)};
        }
        for (std::size_t i = 0; i < 32; ++i) store_le<std::uint16_t>(block + 2 + 2 * i, q2[i]);
    }

    static void dequantize_block(const std::byte* block, float* y) noexcept {
        const std::int8_t* grid = iq::decoded_grid<iq::grid_kind::iq2xs>().data();
        const float d = iq::load_half(block);
        for (std::size_t ib = 0; ib < 8; ++ib) {
            const unsigned sc = iq::byte_at(block, 66 + ib);
            const std::array<float, 2> db{d * (0.5f + static_cast<float>(sc & 0xf)) * 0.25f,
                                          d * (0.5f + static_cast<float>(sc >> 4)) * 0.25f};
            for (unsigned l = 0; l < 4; ++l) {
                const unsigned q = load_le<std::uint16_t>(block + 2 + 2 * (4 * ib + l));
                const unsigned signs = iq::even_signs(q >> 9);
                for (unsigned j = 0; j < 8; ++j) *y++ = db[l / 2] * static_cast<float>(grid[(q & 511) * 8 + j]) * iq::sign_of(signs, j);
            }
        }
    }
};

/// iq2_s (2.56 bpw): 16 groups of 16; each 8 values are a 10-bit point of a 1024-point grid (low bytes, then
/// 2 high bits per point) and 8 free sign bits; 4-bit group scales. Importance weights optional.
struct iq2_s {
    static constexpr ggml_type type = ggml_type::iq2_s;
    static constexpr std::size_t block_size = 256, type_size = 82;
    static constexpr bool needs_importance = false;
    static constexpr std::size_t qs_at = 2, signs_at = 34, qh_at = 66, scales_at = 74;
    static constexpr iq::lattice_rule rule{9, 0.1f, false, true, iq::refit::off_grid};

    static void quantize_block(const float* x, const float* importance, std::byte* block) {
        const auto& grid = iq::lattice_of(iq::grid_kind::iq2s);
        std::memset(block, 0, type_size);
        std::array<float, 16> scales{};
        const float sigma2 = 2 * iq::sum_of_squares(x) / static_cast<float>(block_size);
        float max_scale = 0;
        for (std::size_t ib = 0; ib < 16; ++ib) {
            auto g = iq::prepare_group(x + 16 * ib, importance ? importance + 16 * ib : nullptr, sigma2, 16, false,
                                       [sigma2](float v) { return 0.25f * sigma2 + v * v; });
            if (g.max < 1e-8f) continue;
            const auto fit = iq::fit_to_lattice(grid, rule, 16, g.xval.data(), g.weight.data(), g.root_weight.data(), g.max);
            if (!fit) continue;  // only a make_qp_quants start (iq2_xxs) can find no scale
            const float scale = iq::positive_scale(fit->scale, g.signs.data(), 2, 255);
            for (unsigned k = 0; k < 2; ++k) {
                const std::size_t i8 = 2 * ib + k;
                block[qs_at + i8] = std::byte{static_cast<std::uint8_t>(fit->points[k] & 255)};
                block[qh_at + i8 / 4] |= std::byte{static_cast<std::uint8_t>((fit->points[k] >> 8) << (2 * (i8 % 4)))};
                block[signs_at + i8] = std::byte{g.signs[k]};
            }
            iq::require_scale(scale);
            scales[ib] = scale;
            max_scale = std::max(max_scale, scale);
        }
        if (max_scale == 0) return;
        const float d = max_scale / 31;
        iq::store_half(block, d * 0.9875f);
        const float id = 1 / d;
        for (std::size_t ib = 0; ib < 16; ++ib) {
            const unsigned code = iq::odd_scale_code(id, scales[ib], 15);
            block[scales_at + ib / 2] |= std::byte{static_cast<std::uint8_t>(ib % 2 ? code << 4 : code)};
        }
    }

    static void dequantize_block(const std::byte* block, float* y) noexcept {
        const std::int8_t* grid = iq::decoded_grid<iq::grid_kind::iq2s>().data();
        const float d = iq::load_half(block);
        for (std::size_t ib = 0; ib < 8; ++ib) {
            const unsigned sc = iq::byte_at(block, scales_at + ib), qh = iq::byte_at(block, qh_at + ib);
            const std::array<float, 2> db{d * (0.5f + static_cast<float>(sc & 0xf)) * 0.25f,
                                          d * (0.5f + static_cast<float>(sc >> 4)) * 0.25f};
            for (unsigned l = 0; l < 4; ++l) {
                const std::size_t point = iq::byte_at(block, qs_at + 4 * ib + l) | ((qh << (8 - 2 * l)) & 0x300);
                const unsigned signs = iq::byte_at(block, signs_at + 4 * ib + l);
                for (unsigned j = 0; j < 8; ++j) *y++ = db[l / 2] * static_cast<float>(grid[point * 8 + j]) * iq::sign_of(signs, j);
            }
        }
    }
};

/// iq3_xxs (3.06 bpw): 8 groups of 32; each 4 values are a point of a 256-point grid; per group a 32-bit word of
/// four 7-bit sign codes and a 4-bit scale. Importance weights optional.
struct iq3_xxs {
    static constexpr ggml_type type = ggml_type::iq3_xxs;
    static constexpr std::size_t block_size = 256, type_size = 98;
    static constexpr bool needs_importance = false;
    static constexpr iq::lattice_rule rule{15, 0.2f, false, true, iq::refit::off_grid};

    static void quantize_block(const float* x, const float* importance, std::byte* block) {
        const auto& grid = iq::lattice_of(iq::grid_kind::iq3xxs);
        std::memset(block, 0, type_size);
        std::array<std::uint32_t, 8> scales_and_signs{};
        std::array<float, 8> scales{};
        const float sigma2 = 2 * iq::sum_of_squares(x) / static_cast<float>(block_size);
        float max_scale = 0;
        for (std::size_t ib = 0; ib < 8; ++ib) {
            auto g = iq::prepare_group(x + 32 * ib, importance ? importance + 32 * ib : nullptr, sigma2, 32, true,
                                       [](float v) { return v * v; });
            if (g.max < 1e-8f) continue;
            const auto fit = iq::fit_to_lattice(grid, rule, 32, g.xval.data(), g.weight.data(), g.root_weight.data(), g.max);
            if (!fit) continue;  // only a make_qp_quants start (iq2_xxs) can find no scale
            const float scale = iq::positive_scale(fit->scale, g.signs.data(), 4, 127);
            for (unsigned k = 0; k < 8; ++k) block[2 + 8 * ib + k] = std::byte{static_cast<std::uint8_t>(fit->points[k])};
            for (unsigned k = 0; k < 4; ++k) scales_and_signs[ib] |= static_cast<std::uint32_t>(g.signs[k]) << (7 * k);
            iq::require_scale(scale);
            scales[ib] = scale;
            max_scale = std::max(max_scale, scale);
        }
        if (max_scale == 0) {
            std::memset(block, 0, type_size);
            return;
        }
        const float d = max_scale / 31;
        iq::store_half(block, d * 1.0125f);
        const float id = 1 / d;
        for (std::size_t ib = 0; ib < 8; ++ib) {
            scales_and_signs[ib] |= static_cast<std::uint32_t>(iq::odd_scale_code(id, scales[ib], 15)) << 28;
            store_le<std::uint32_t>(block + 66 + 4 * ib, scales_and_signs[ib]);
        }
    }

    static void dequantize_block(const std::byte* block, float* y) noexcept {
        const std::int8_t* grid = iq::decoded_grid<iq::grid_kind::iq3xxs>().data();
        const float d = iq::load_half(block);
        for (std::size_t ib = 0; ib < 8; ++ib) {
            const std::byte* qs = block + 2 + 8 * ib;
            const auto aux = load_le<std::uint32_t>(block + 66 + 4 * ib);
            const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.5f;
            for (unsigned l = 0; l < 4; ++l) {
                const unsigned signs = iq::even_signs(aux >> (7 * l));
                const std::size_t p1 = iq::byte_at(qs, 2 * l), p2 = iq::byte_at(qs, 2 * l + 1);
                for (unsigned j = 0; j < 4; ++j) {
                    y[j] = db * static_cast<float>(grid[p1 * 4 + j]) * iq::sign_of(signs, j);
                    y[j + 4] = db * static_cast<float>(grid[p2 * 4 + j]) * iq::sign_of(signs, j + 4);
                }
                y += 8;
            }
        }
    }
};

/// iq3_s (3.44 bpw): 8 groups of 32; each 4 values are a 9-bit point of a 512-point grid (low bytes, high bits
/// in qh) with 8 free sign bits per 8 values; 4-bit group scales d * (2*code + 1). Importance weights optional.
struct iq3_s {
    static constexpr ggml_type type = ggml_type::iq3_s;
    static constexpr std::size_t block_size = 256, type_size = 110;
    static constexpr bool needs_importance = false;
    static constexpr std::size_t qs_at = 2, qh_at = 66, signs_at = 74, scales_at = 106;
    static constexpr iq::lattice_rule rule{9, 0.2f, false, false, iq::refit::all_if_any_off_grid};

    static void quantize_block(const float* x, const float* importance, std::byte* block) {
        const auto& grid = iq::lattice_of(iq::grid_kind::iq3s);
        std::memset(block, 0, type_size);
        std::array<float, 8> scales{};
        const float sigma2 = 2 * iq::sum_of_squares(x) / static_cast<float>(block_size);
        float max_scale = 0;
        // ggml's reference advances its point and sign cursors only past groups it stores: after an all-zero
        // group the later groups land one slot early (and decode shifted). The bytes are the reference's.
        std::size_t qs = qs_at, signs = signs_at;
        for (std::size_t ib = 0; ib < 8; ++ib) {
            auto g = iq::prepare_group(x + 32 * ib, importance ? importance + 32 * ib : nullptr, sigma2, 32, false,
                                       [](float v) { return v * v; });
            if (!(g.max != 0)) continue;
            const auto fit = iq::fit_to_lattice(grid, rule, 32, g.xval.data(), g.weight.data(), g.root_weight.data(), g.max);
            if (!fit) continue;  // only a make_qp_quants start (iq2_xxs) can find no scale
            const float scale = iq::positive_scale(fit->scale, g.signs.data(), 4, 255);
            for (unsigned k = 0; k < 8; ++k) {
                const std::size_t slot = 8 * ib + k;
                block[qs + k] = std::byte{static_cast<std::uint8_t>(fit->points[k] & 255)};
                block[qh_at + slot / 8] |= std::byte{static_cast<std::uint8_t>((fit->points[k] >> 8) << (slot % 8))};
            }
            qs += 8;
            for (unsigned k = 0; k < 4; ++k) block[signs + k] = std::byte{g.signs[k]};
            signs += 4;
            iq::require_scale(scale);
            scales[ib] = scale;
            max_scale = std::max(max_scale, scale);
        }
        if (max_scale == 0) return;
        const float d = max_scale / 31;
        iq::store_half(block, d * 1.033f);
        const float id = 1 / d;
        for (std::size_t ib = 0; ib < 8; ib += 2) {
            const unsigned l1 = iq::odd_scale_code(id, scales[ib], 15), l2 = iq::odd_scale_code(id, scales[ib + 1], 15);
            block[scales_at + ib / 2] = std::byte{static_cast<std::uint8_t>(l1 | (l2 << 4))};
        }
    }

    static void dequantize_block(const std::byte* block, float* y) noexcept {
        const std::int8_t* grid = iq::decoded_grid<iq::grid_kind::iq3s>().data();
        const float d = iq::load_half(block);
        for (std::size_t ib = 0; ib < 8; ++ib) {
            const unsigned sc = iq::byte_at(block, scales_at + ib / 2);
            const float db = d * static_cast<float>(1 + 2 * (ib % 2 ? sc >> 4 : sc & 0xf));
            const unsigned qh = iq::byte_at(block, qh_at + ib);
            for (unsigned l = 0; l < 4; ++l) {
                const std::size_t p1 = iq::byte_at(block, qs_at + 8 * ib + 2 * l) | ((qh << (8 - 2 * l)) & 256);
                const std::size_t p2 = iq::byte_at(block, qs_at + 8 * ib + 2 * l + 1) | ((qh << (7 - 2 * l)) & 256);
                const unsigned signs = iq::byte_at(block, signs_at + 4 * ib + l);
                for (unsigned j = 0; j < 4; ++j) {
                    y[j] = db * static_cast<float>(grid[p1 * 4 + j]) * iq::sign_of(signs, j);
                    y[j + 4] = db * static_cast<float>(grid[p2 * 4 + j]) * iq::sign_of(signs, j + 4);
                }
                y += 8;
            }
        }
    }
};

namespace iq {

/// The offset of the iq1 levels: a ternary group decodes as d_group * (level - 1 ± delta).
inline constexpr float iq1_delta = 0.125f;
inline constexpr std::array<float, 3> iq1_plus{-1 + iq1_delta, iq1_delta, 1 + iq1_delta};
inline constexpr std::array<float, 3> iq1_minus{-1 - iq1_delta, -iq1_delta, 1 - iq1_delta};

/// Indices 0..n-1 ordered by x, equal values keeping their order (ggml sorts with the C library's qsort, a
/// stable merge sort in glibc).
template <std::size_t N>
[[nodiscard]] std::array<int, N> sorted_order(const float* x) {
    std::array<int, N> order{};
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [x](int a, int b) { return x[a] < x[b]; });
    return order;
}

/// The iq1 grid point nearest (weighted) to 8 signed values at `scale` with shifted levels `shifted`, among an
/// off-grid point's neighbours. Throws search_failed where the reference has no defined answer.
inline std::uint16_t nearest_ternary(const lattice& grid, std::span<const std::uint16_t> candidates, const float* x, const float* weight,
                                     float scale, const std::array<float, 3>& shifted) {
    const auto& g = grid.grid();
    float best = FLT_MAX;
    int found = -1;
    for (const std::uint16_t p : candidates) {
        float d2 = 0;
        for (unsigned i = 0; i < 8; ++i) {
            const float diff = scale * shifted[static_cast<std::size_t>(g.level(p, i))] - x[i];
            d2 += weight[i] * diff * diff;
        }
        if (d2 < best) {
            best = d2;
            found = p;
        }
    }
    if (found < 0) throw search_failed{};
    return static_cast<std::uint16_t>(found);
}

/// The ternary levels of a group as grid points: each 8 levels looked up, an off-grid one replaced by its nearest
/// neighbour and the scale refitted over the points when any was. `shift_of(k)` is the level set of chunk k.
template <class ShiftOf>
float ternary_points(const lattice& grid, std::size_t n, const std::int8_t* levels, const float* x, const float* weight, float scale,
                     ShiftOf shift_of, std::uint16_t* points) {
    bool all_on_grid = true;
    for (std::size_t k = 0; k < n / 8; ++k) {
        const std::uint32_t code = grid.code_of(levels + 8 * k);
        const int p = grid.point(code);
        if (p >= 0) {
            points[k] = static_cast<std::uint16_t>(p);
        } else {
            all_on_grid = false;
            points[k] = nearest_ternary(grid, grid.neighbours(code), x + 8 * k, weight + 8 * k, scale, shift_of(k));
        }
    }
    if (all_on_grid) return scale;
    const auto& g = grid.grid();
    float sum_qx = 0, sum_q2 = 0;
    for (std::size_t k = 0; k < n / 8; ++k) {
        const auto& shifted = shift_of(k);
        for (unsigned j = 0; j < 8; ++j) {
            const float w = weight[8 * k + j], q = shifted[static_cast<std::size_t>(g.level(points[k], j))];
            sum_qx += w * q * x[8 * k + j];
            sum_q2 += w * q * q;
        }
    }
    return sum_qx > 0 && sum_q2 > 0 ? sum_qx / sum_q2 : scale;
}

/// Ternary levels from the two split positions of the sorted order (below i1: 0, below i2: 1, else 2).
template <std::size_t N>
void split_levels(const std::array<int, N>& order, int i1, int i2, std::int8_t* levels) noexcept {
    for (int j = 0; j < static_cast<int>(N); ++j)
        levels[order[static_cast<std::size_t>(j)]] = static_cast<std::int8_t>(j < i1 ? 0 : j < i2 ? 1 : 2);
}

}  // namespace iq

/// iq1_s (1.56 bpw): 8 groups of 32; each 8 values are an 11-bit point of a 2048-point ternary grid; per group
/// a 3-bit scale and the sign of a ±1/8 shift of all levels. Needs importance weights.
struct iq1_s {
    static constexpr ggml_type type = ggml_type::iq1_s;
    static constexpr std::size_t block_size = 256, type_size = 50;
    static constexpr bool needs_importance = true;

    static void quantize_block(const float* x, const float* importance, std::byte* block) {
        const auto& grid = iq::lattice_of(iq::grid_kind::iq1s);
        std::memset(block, 0, type_size);
        std::array<float, 8> scales{};
        std::array<int, 8> shifts{};
        std::array<std::uint16_t, 8> qh{};
        const float sigma2 = 2 * iq::sum_of_squares(x) / static_cast<float>(block_size);
        float max_scale = 0;
        for (std::size_t ib = 0; ib < 8; ++ib) {
            const float* xb = x + 32 * ib;
            shifts[ib] = 1;
            std::array<float, 32> weight{};
            iq::importance_weights(xb, importance + 32 * ib, sigma2, 32, weight.data());
            float max = std::fabs(xb[0]);
            for (std::size_t i = 1; i < 32; ++i) max = std::max(max, std::fabs(xb[i]));
            if (max < 1e-12f) continue;
            // Exhaustive: with three levels the best split of the sorted values has two boundaries; prefix
            // sums give each split's least-squares scale at once.
            const auto order = iq::sorted_order<32>(xb);
            std::array<float, 33> sum_x{}, sum_w{};
            for (std::size_t j = 0; j < 32; ++j) {
                const auto i = static_cast<std::size_t>(order[j]);
                sum_x[j + 1] = sum_x[j] + weight[i] * xb[i];
                sum_w[j + 1] = sum_w[j] + weight[i];
            }
            float best = -FLT_MAX, scale = max;
            int best_i1 = -1, best_i2 = -1, shift = 0;
            for (std::size_t i1 = 0; i1 <= 32; ++i1) {
                for (std::size_t i2 = i1; i2 <= 32; ++i2) {
                    for (const int s : {1, -1}) {
                        const auto& q = s == 1 ? iq::iq1_plus : iq::iq1_minus;
                        const float sum_qx =
                                (sum_x[i1] - sum_x[0]) * q[0] + (sum_x[i2] - sum_x[i1]) * q[1] + (sum_x[32] - sum_x[i2]) * q[2];
                        const float sum_q2 = (sum_w[i1] - sum_w[0]) * q[0] * q[0] + (sum_w[i2] - sum_w[i1]) * q[1] * q[1] +
                                             (sum_w[32] - sum_w[i2]) * q[2] * q[2];
                        if (sum_q2 > 0 && sum_qx * sum_qx > best * sum_q2) {
                            scale = sum_qx / sum_q2;
                            best = scale * sum_qx;
                            best_i1 = static_cast<int>(i1);
                            best_i2 = static_cast<int>(i2);
                            shift = s;
                        }
                    }
                }
            }
            if (best_i1 < 0 || best_i2 < 0 || shift == 0) continue;
            std::array<std::int8_t, 32> levels{};
            iq::split_levels(order, best_i1, best_i2, levels.data());
            if (scale < 0) {
                for (auto& l : levels) l = static_cast<std::int8_t>(2 - l);
                scale = -scale;
                shift = -shift;
            }
            const auto& shifted = shift == 1 ? iq::iq1_plus : iq::iq1_minus;
            std::array<std::uint16_t, 4> points{};
            scale = iq::ternary_points(
                    grid, 32, levels.data(), xb, weight.data(), scale, [&](std::size_t) -> const auto& { return shifted; }, points.data());
            for (unsigned k = 0; k < 4; ++k) {
                block[2 + 4 * ib + k] = std::byte{static_cast<std::uint8_t>(points[k] & 255)};
                qh[ib] = static_cast<std::uint16_t>(qh[ib] | ((points[k] >> 8) << (3 * k)));
            }
            iq::require_scale(scale);
            scales[ib] = scale;
            shifts[ib] = shift;
            max_scale = std::max(max_scale, scale);
        }
        if (max_scale != 0) {
            const float d = max_scale / 15;
            iq::store_half(block, d * 1.125f);
            const float id = 1 / d;
            for (std::size_t ib = 0; ib < 8; ++ib) {
                unsigned l = iq::odd_scale_code(id, scales[ib], 7);
                if (shifts[ib] == -1) l |= 8;
                qh[ib] = static_cast<std::uint16_t>(qh[ib] | (l << 12));
            }
        }
        for (std::size_t ib = 0; ib < 8; ++ib) store_le<std::uint16_t>(block + 34 + 2 * ib, qh[ib]);
    }

    static void dequantize_block(const std::byte* block, float* y) noexcept {
        const std::int8_t* grid = iq::decoded_grid<iq::grid_kind::iq1s>().data();
        const float d = iq::load_half(block);
        for (std::size_t ib = 0; ib < 8; ++ib) {
            const unsigned qh = load_le<std::uint16_t>(block + 34 + 2 * ib);
            const float dl = d * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
            const float delta = qh & 0x8000 ? -iq::iq1_delta : iq::iq1_delta;
            for (unsigned l = 0; l < 4; ++l) {
                const std::size_t point = iq::byte_at(block, 2 + 4 * ib + l) | (((qh >> (3 * l)) & 7) << 8);
                for (unsigned j = 0; j < 8; ++j) *y++ = dl * (static_cast<float>(grid[point * 8 + j]) + delta);
            }
        }
    }
};

/// iq1_m (1.75 bpw): 16 groups of 16; each 8 values are an 11-bit point of the iq1 grid with its own shift sign;
/// 3-bit group scales; the fp16 super-scale is spread over the top nibbles of the scale words. Importance
/// weights optional.
struct iq1_m {
    static constexpr ggml_type type = ggml_type::iq1_m;
    static constexpr std::size_t block_size = 256, type_size = 56;
    static constexpr bool needs_importance = false;
    static constexpr std::size_t qs_at = 0, qh_at = 32, scales_at = 48;

    // Shift combination k of a group: bit 1 is the first 8 values' minus shift, bit 0 the second's.
    [[nodiscard]] static const std::array<float, 3>& shifted(int k, std::size_t chunk) noexcept {
        const bool minus = chunk == 0 ? k >= 2 : k % 2 != 0;
        return minus ? iq::iq1_minus : iq::iq1_plus;
    }

    static void group_weights(const float* xb, const float* importance, float sigma2, float* weight) noexcept {
        if (importance)
            iq::importance_weights(xb, importance, sigma2, 16, weight);
        else
            for (std::size_t i = 0; i < 16; ++i) weight[i] = xb[i] * xb[i];
    }

    static void quantize_block(const float* x, const float* importance, std::byte* block) {
        const auto& grid = iq::lattice_of(iq::grid_kind::iq1s);
        std::memset(block, 0, type_size);
        std::array<float, 16> scales{};
        std::array<int, 16> shifts{};
        const float sigma2 = 2 * iq::sum_of_squares(x) / static_cast<float>(block_size);
        float max_scale = 0;
        for (std::size_t ib = 0; ib < 16; ++ib) {
            const float* xb = x + 16 * ib;
            std::array<float, 16> weight{};
            group_weights(xb, importance ? importance + 16 * ib : nullptr, sigma2, weight.data());
            float max = std::fabs(xb[0]);
            for (std::size_t i = 1; i < 16; ++i) max = std::max(max, std::fabs(xb[i]));
            if (max < 1e-7f) continue;
            const auto order = iq::sorted_order<16>(xb);
            float best = -FLT_MAX, scale = max;
            int best_i1 = -1, best_i2 = -1, best_k = -1;
            // Exhaustive over the two split positions of the sorted values and the 4 shift combinations. Prefix
            // sums are kept per half (each half has its own shift); as the level steps of both shifted sets are 1,
            // a split's projection collapses to total*v[2] - prefix(i1) - prefix(i2), in ggml's arithmetic.
            std::array<std::array<float, 17>, 2> px{}, pw{};
            for (std::size_t j = 0; j < 16; ++j) {
                const auto i = static_cast<std::size_t>(order[j]);
                const std::size_t h = i < 8 ? 0 : 1;
                px[h][j + 1] = px[h][j] + weight[i] * xb[i];
                px[1 - h][j + 1] = px[1 - h][j];
                pw[h][j + 1] = pw[h][j] + weight[i];
                pw[1 - h][j + 1] = pw[1 - h][j];
            }
            const auto& p = iq::iq1_plus;
            const auto& m = iq::iq1_minus;
            const float cp1 = p[0] * p[0] - p[1] * p[1], cp2 = p[1] * p[1] - p[2] * p[2];
            const float cm1 = m[0] * m[0] - m[1] * m[1], cm2 = m[1] * m[1] - m[2] * m[2];
            for (std::size_t i1 = 0; i1 <= 16; ++i1) {
                for (std::size_t i2 = i1; i2 <= 16; ++i2) {
                    std::array<float, 2> qx_p{}, qx_m{}, q2_p{}, q2_m{};
                    for (std::size_t h = 0; h < 2; ++h) {
                        const float sx = px[h][i1] + px[h][i2];
                        qx_p[h] = px[h][16] * p[2] - sx;
                        qx_m[h] = px[h][16] * m[2] - sx;
                        q2_p[h] = pw[h][16] * p[2] * p[2] + pw[h][i1] * cp1 + pw[h][i2] * cp2;
                        q2_m[h] = pw[h][16] * m[2] * m[2] + pw[h][i1] * cm1 + pw[h][i2] * cm2;
                    }
                    const std::array<float, 4> sum_qx{qx_p[0] + qx_p[1], qx_p[0] + qx_m[1], qx_m[0] + qx_p[1], qx_m[0] + qx_m[1]};
                    const std::array<float, 4> sum_q2{q2_p[0] + q2_p[1], q2_p[0] + q2_m[1], q2_m[0] + q2_p[1], q2_m[0] + q2_m[1]};
                    for (std::size_t k = 0; k < 4; ++k) {
                        if (sum_q2[k] > 0 && sum_qx[k] * sum_qx[k] > best * sum_q2[k]) {
                            scale = sum_qx[k] / sum_q2[k];
                            best = scale * sum_qx[k];
                            best_i1 = static_cast<int>(i1);
                            best_i2 = static_cast<int>(i2);
                            best_k = static_cast<int>(k);
                        }
                    }
                }
            }
            if (best_i1 < 0 || best_i2 < 0 || best_k < 0) continue;
            std::array<std::int8_t, 16> levels{};
            iq::split_levels(order, best_i1, best_i2, levels.data());
            if (scale < 0) {
                for (auto& l : levels) l = static_cast<std::int8_t>(2 - l);
                scale = -scale;
                best_k = 3 - best_k;
            }
            std::array<std::uint16_t, 2> points{};
            scale = iq::ternary_points(
                    grid, 16, levels.data(), xb, weight.data(),
                    scale, [&](std::size_t chunk) -> const auto& { return shifted(best_k, chunk); }, points.data());
            block[qs_at + 2 * ib] = std::byte{static_cast<std::uint8_t>(points[0] & 255)};
            block[qs_at + 2 * ib + 1] = std::byte{static_cast<std::uint8_t>(points[1] & 255)};
            block[qh_at + ib] = std::byte{static_cast<std::uint8_t>((points[0] >> 8) | ((points[1] >> 8) << 4))};
            iq::require_scale(scale);
            scales[ib] = scale;
            shifts[ib] = best_k;
            max_scale = std::max(max_scale, scale);
        }
        if (max_scale == 0) return;
        finish_scales(x, importance, sigma2, max_scale, scales, shifts, block);
    }

    // The 3-bit group scales, then a super-scale refitted over the whole block as decoded, stored as fp16 bits
    // spread over the top nibbles of the four scale words.
    static void finish_scales(const float* x, const float* importance, float sigma2, float max_scale, const std::array<float, 16>& scales,
                              const std::array<int, 16>& shifts, std::byte* block) {
        constexpr std::array<std::uint8_t, 4> shift_bits{0x00, 0x80, 0x08, 0x88};
        const auto& g = iq::spec(iq::grid_kind::iq1s);
        std::array<std::uint16_t, 4> sc{};
        float d = max_scale / 15;
        const float id = 1 / d;
        float sum_qx = 0, sum_q2 = 0;
        for (std::size_t ib = 0; ib < 16; ++ib) {
            const unsigned l = iq::odd_scale_code(id, scales[ib], 7);
            sc[ib / 4] = static_cast<std::uint16_t>(sc[ib / 4] | (l << (3 * (ib % 4))));
            block[qh_at + ib] |= std::byte{shift_bits[static_cast<std::size_t>(shifts[ib])]};
            const float* xb = x + 16 * ib;
            std::array<float, 16> weight{};
            group_weights(xb, importance ? importance + 16 * ib : nullptr, sigma2, weight.data());
            const unsigned qh = iq::byte_at(block, qh_at + ib);
            for (std::size_t k = 0; k < 2; ++k) {
                const auto& shifted_levels = shifted(shifts[ib], k);
                const std::size_t point = iq::byte_at(block, qs_at + 2 * ib + k) + ((qh << (8 - 4 * k)) & 0x700);
                for (unsigned j = 0; j < 8; ++j) {
                    const float w = weight[8 * k + j];
                    const float q = shifted_levels[static_cast<std::size_t>(g.level(point, j))] * static_cast<float>(2 * l + 1);
                    sum_qx += w * q * xb[8 * k + j];
                    sum_q2 += w * q * q;
                }
            }
        }
        if (sum_q2 > 0) d = sum_qx / sum_q2;
        const unsigned bits = fp32_to_fp16_bits(d * 1.1125f);
        sc[0] = static_cast<std::uint16_t>(sc[0] | ((bits & 0x000f) << 12));
        sc[1] = static_cast<std::uint16_t>(sc[1] | ((bits & 0x00f0) << 8));
        sc[2] = static_cast<std::uint16_t>(sc[2] | ((bits & 0x0f00) << 4));
        sc[3] = static_cast<std::uint16_t>(sc[3] | (bits & 0xf000));
        for (std::size_t i = 0; i < 4; ++i) store_le<std::uint16_t>(block + scales_at + 2 * i, sc[i]);
    }

    static void dequantize_block(const std::byte* block, float* y) noexcept {
        const std::int8_t* grid = iq::decoded_grid<iq::grid_kind::iq1s>().data();
        std::array<unsigned, 4> sc{};
        for (std::size_t i = 0; i < 4; ++i) sc[i] = load_le<std::uint16_t>(block + scales_at + 2 * i);
        const auto bits = static_cast<std::uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
        const float d = fp16_bits_to_fp32(bits);
        // Per 32 values: two 3-bit scales, two qh bytes holding each 8 values' point high bits and shift sign.
        for (std::size_t ib = 0; ib < 8; ++ib) {
            const float dl1 = d * static_cast<float>(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 0)) & 0x7) + 1);
            const float dl2 = d * static_cast<float>(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 0x7) + 1);
            const unsigned qh0 = iq::byte_at(block, qh_at + 2 * ib), qh1 = iq::byte_at(block, qh_at + 2 * ib + 1);
            const std::array<std::size_t, 4> point{iq::byte_at(block, qs_at + 4 * ib) | ((qh0 << 8) & 0x700),
                                                   iq::byte_at(block, qs_at + 4 * ib + 1) | ((qh0 << 4) & 0x700),
                                                   iq::byte_at(block, qs_at + 4 * ib + 2) | ((qh1 << 8) & 0x700),
                                                   iq::byte_at(block, qs_at + 4 * ib + 3) | ((qh1 << 4) & 0x700)};
            const std::array<float, 4> delta{qh0 & 0x08 ? -iq::iq1_delta : iq::iq1_delta, qh0 & 0x80 ? -iq::iq1_delta : iq::iq1_delta,
                                             qh1 & 0x08 ? -iq::iq1_delta : iq::iq1_delta, qh1 & 0x80 ? -iq::iq1_delta : iq::iq1_delta};
            for (std::size_t l = 0; l < 4; ++l) {
                const float dl = l < 2 ? dl1 : dl2;
                for (unsigned j = 0; j < 8; ++j) *y++ = dl * (static_cast<float>(grid[point[l] * 8 + j]) + delta[l]);
            }
        }
    }
};

}  // namespace cogqat::formats

COGQAT_STRICT_FP_END
