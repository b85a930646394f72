#pragma once
// Dot products of grid i-quant rows with activations quantized to q8_K, as llama.cpp's CPU backend computes
// them (ggml's generic vec_dot_iq*_q8_K): per scale group an exact integer sum of signed grid values times the
// int8 activations, weighted by the group's odd scale code, then one float product per super-block. The iq1
// types add their ±1/8 shift through the activations' group sums.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "cogqat/core/float16.hpp"
#include "cogqat/core/little_endian.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/format/iq_formats.hpp"
#include "cogqat/format/iq_grids.hpp"
#include "cogqat/format/k_formats.hpp"

COGQAT_STRICT_FP_BEGIN

namespace cogqat::formats::iq {

/// A lattice format's block as integers: each value's signed grid value and each scale group's multiplier
/// (2*code + 1), in groups of `group` values.
struct integer_block {
    std::array<std::int32_t, 256> value{};
    std::array<std::int32_t, 16> multiplier{};
    std::size_t group = 32;
};

[[nodiscard]] inline std::int32_t signed_value(const grid_spec& g, std::size_t point, unsigned j, unsigned signs) noexcept {
    const std::int32_t v = static_cast<std::uint8_t>(g.decoded(point, j));
    return (signs >> j) & 1u ? -v : v;
}

[[nodiscard]] inline integer_block integers_iq2_xxs(const std::byte* block) noexcept {
    const auto g = spec(grid_kind::iq2xxs);
    integer_block r;
    for (std::size_t ib = 0; ib < 8; ++ib) {
        const std::byte* q = block + 2 + 8 * ib;
        const auto aux = load_le<std::uint32_t>(q + 4);
        r.multiplier[ib] = static_cast<std::int32_t>(2 * (aux >> 28) + 1);
        for (unsigned l = 0; l < 4; ++l)
            for (unsigned j = 0; j < 8; ++j) r.value[32 * ib + 8 * l + j] = signed_value(g, byte_at(q, l), j, even_signs(aux >> (7 * l)));
    }
    return r;
}

[[nodiscard]] inline integer_block integers_iq2_xs(const std::byte* block) noexcept {
    const auto g = spec(grid_kind::iq2xs);
    integer_block r;
    r.group = 16;
    for (std::size_t ib = 0; ib < 8; ++ib) {
        const unsigned sc = byte_at(block, 66 + ib);
        r.multiplier[2 * ib] = static_cast<std::int32_t>(2 * (sc & 0xf) + 1);
        r.multiplier[2 * ib + 1] = static_cast<std::int32_t>(2 * (sc >> 4) + 1);
        for (unsigned l = 0; l < 4; ++l) {
            const unsigned q = load_le<std::uint16_t>(block + 2 + 2 * (4 * ib + l));
            for (unsigned j = 0; j < 8; ++j) r.value[32 * ib + 8 * l + j] = signed_value(g, q & 511, j, even_signs(q >> 9));
        }
    }
    return r;
}

[[nodiscard]] inline integer_block integers_iq2_s(const std::byte* block) noexcept {
    const auto g = spec(grid_kind::iq2s);
    integer_block r;
    r.group = 16;
    for (std::size_t ib = 0; ib < 8; ++ib) {
        const unsigned sc = byte_at(block, iq2_s::scales_at + ib), qh = byte_at(block, iq2_s::qh_at + ib);
        r.multiplier[2 * ib] = static_cast<std::int32_t>(2 * (sc & 0xf) + 1);
        r.multiplier[2 * ib + 1] = static_cast<std::int32_t>(2 * (sc >> 4) + 1);
        for (unsigned l = 0; l < 4; ++l) {
            const std::size_t point = byte_at(block, iq2_s::qs_at + 4 * ib + l) | ((qh << (8 - 2 * l)) & 0x300);
            const unsigned signs = byte_at(block, iq2_s::signs_at + 4 * ib + l);
            for (unsigned j = 0; j < 8; ++j) r.value[32 * ib + 8 * l + j] = signed_value(g, point, j, signs);
        }
    }
    return r;
}

[[nodiscard]] inline integer_block integers_iq3_xxs(const std::byte* block) noexcept {
    const auto g = spec(grid_kind::iq3xxs);
    integer_block r;
    for (std::size_t ib = 0; ib < 8; ++ib) {
        const auto aux = load_le<std::uint32_t>(block + 66 + 4 * ib);
        r.multiplier[ib] = static_cast<std::int32_t>(2 * (aux >> 28) + 1);
        for (unsigned l = 0; l < 4; ++l) {
            const unsigned signs = even_signs(aux >> (7 * l));
            const std::size_t p1 = byte_at(block, 2 + 8 * ib + 2 * l), p2 = byte_at(block, 2 + 8 * ib + 2 * l + 1);
            for (unsigned j = 0; j < 4; ++j) {
                r.value[32 * ib + 8 * l + j] = signed_value(g, p1, j, signs);
                r.value[32 * ib + 8 * l + j + 4] = signed_value(g, p2, j, signs >> 4);
            }
        }
    }
    return r;
}

[[nodiscard]] inline integer_block integers_iq3_s(const std::byte* block) noexcept {
    const auto g = spec(grid_kind::iq3s);
    integer_block r;
    for (std::size_t ib = 0; ib < 8; ++ib) {
        const unsigned sc = byte_at(block, iq3_s::scales_at + ib / 2), qh = byte_at(block, iq3_s::qh_at + ib);
        r.multiplier[ib] = static_cast<std::int32_t>(2 * (ib % 2 ? sc >> 4 : sc & 0xf) + 1);
        for (unsigned l = 0; l < 4; ++l) {
            const std::size_t p1 = byte_at(block, iq3_s::qs_at + 8 * ib + 2 * l) | ((qh << (8 - 2 * l)) & 256);
            const std::size_t p2 = byte_at(block, iq3_s::qs_at + 8 * ib + 2 * l + 1) | ((qh << (7 - 2 * l)) & 256);
            const unsigned signs = byte_at(block, iq3_s::signs_at + 4 * ib + l);
            for (unsigned j = 0; j < 4; ++j) {
                r.value[32 * ib + 8 * l + j] = signed_value(g, p1, j, signs);
                r.value[32 * ib + 8 * l + j + 4] = signed_value(g, p2, j, signs >> 4);
            }
        }
    }
    return r;
}

/// d_w * d_a * Σ_groups multiplier * Σ value * q8 over one lattice block and its q8_K block.
[[nodiscard]] inline float lattice_block_dot(const integer_block& w, float d_w, const std::byte* a) noexcept {
    std::int32_t sum = 0;
    for (std::size_t g = 0; g < 256 / w.group; ++g) {
        std::int32_t s = 0;
        for (std::size_t i = g * w.group; i < (g + 1) * w.group; ++i)
            s += w.value[i] * static_cast<std::int8_t>(std::to_integer<std::uint8_t>(a[q8_K::quants_at + i]));
        sum += s * w.multiplier[g];
    }
    const float d = d_w * load_le<float>(a + q8_K::d_at);
    return d * static_cast<float>(sum);
}

[[nodiscard]] inline std::int32_t q8_at(const std::byte* a, std::size_t i) noexcept {
    return static_cast<std::int8_t>(std::to_integer<std::uint8_t>(a[q8_K::quants_at + i]));
}

/// One iq1_s block against its q8_K block: (d_w * d_a) * (Σ scale * grid·q8 + 1/8 Σ scale * shift * Σq8).
[[nodiscard]] inline float iq1_s_block_dot(const std::byte* w, const std::byte* a) noexcept {
    const auto g = spec(grid_kind::iq1s);
    std::int32_t sumi = 0, sumi1 = 0;
    for (std::size_t ib = 0; ib < 8; ++ib) {
        const unsigned qh = load_le<std::uint16_t>(w + 34 + 2 * ib);
        const auto ls = static_cast<std::int32_t>(2 * ((qh >> 12) & 7) + 1);
        const std::int32_t delta = qh & 0x8000 ? -1 : 1;
        std::int32_t lsum = 0;
        for (unsigned l = 0; l < 4; ++l) {
            const std::size_t point = byte_at(w, 2 + 4 * ib + l) | (((qh >> (3 * l)) & 7) << 8);
            for (unsigned j = 0; j < 8; ++j) lsum += q8_at(a, 32 * ib + 8 * l + j) * g.decoded(point, j);
        }
        sumi += ls * lsum;
        const std::int32_t bsums =
                load_le<std::int16_t>(a + q8_K::sums_at + 4 * ib) + load_le<std::int16_t>(a + q8_K::sums_at + 4 * ib + 2);
        sumi1 += ls * delta * bsums;
    }
    return load_half(w) * load_le<float>(a + q8_K::d_at) * (static_cast<float>(sumi) + iq1_delta * static_cast<float>(sumi1));
}

/// One iq1_m block against its q8_K block: each 8 values have their own shift sign, each 16 their own scale.
[[nodiscard]] inline float iq1_m_block_dot(const std::byte* w, const std::byte* a) noexcept {
    const auto g = spec(grid_kind::iq1s);
    std::array<unsigned, 4> sc{};
    for (std::size_t i = 0; i < 4; ++i) sc[i] = load_le<std::uint16_t>(w + iq1_m::scales_at + 2 * i);
    const auto bits = static_cast<std::uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
    std::int32_t sumi1 = 0, sumi2 = 0;
    for (std::size_t ib = 0; ib < 8; ++ib) {
        const std::array<unsigned, 2> qh{byte_at(w, iq1_m::qh_at + 2 * ib), byte_at(w, iq1_m::qh_at + 2 * ib + 1)};
        std::array<std::int32_t, 2> sum1{}, sum2{};
        for (unsigned l = 0; l < 4; ++l) {
            const unsigned h = qh[l / 2];
            const std::int32_t delta = h & (l % 2 ? 0x80u : 0x08u) ? -1 : 1;
            const std::size_t point = byte_at(w, iq1_m::qs_at + 4 * ib + l) | ((h << (8 - 4 * (l % 2))) & 0x700);
            std::int32_t lsum1 = 0, lsum2 = 0;
            for (unsigned j = 0; j < 8; ++j) {
                const std::int32_t q = q8_at(a, 32 * ib + 8 * l + j);
                lsum1 += q * g.decoded(point, j);
                lsum2 += q;
            }
            sum1[l / 2] += lsum1;
            sum2[l / 2] += lsum2 * delta;
        }
        const auto ls1 = static_cast<std::int32_t>(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 0)) & 0x7) + 1);
        const auto ls2 = static_cast<std::int32_t>(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 0x7) + 1);
        sumi1 += sum1[0] * ls1 + sum1[1] * ls2;
        sumi2 += sum2[0] * ls1 + sum2[1] * ls2;
    }
    return fp16_bits_to_fp32(bits) * load_le<float>(a + q8_K::d_at) * (static_cast<float>(sumi1) + iq1_delta * static_cast<float>(sumi2));
}

}  // namespace cogqat::formats::iq

namespace cogqat {

/// Dot product of `n` weights stored as grid i-quant W with activations stored as q8_K, as ggml's generic
/// vec_dot_<W>_q8_K computes it (the iq2 types scale the row's sum by 1/8 and iq3_xxs by 1/4 at the end).
template <GridFormat W>
[[nodiscard]] float vec_dot_iq_q8_K(std::span<const std::byte> weights, std::span<const std::byte> activations, std::size_t n) noexcept {
    namespace iq = formats::iq;
    float sum = 0.0f;
    for (std::size_t b = 0; b < n / W::block_size; ++b) {
        const std::byte* w = weights.data() + b * W::type_size;
        const std::byte* a = activations.data() + b * formats::q8_K::type_size;
        if constexpr (W::type == ggml_type::iq1_s) {
            sum += iq::iq1_s_block_dot(w, a);
        } else if constexpr (W::type == ggml_type::iq1_m) {
            sum += iq::iq1_m_block_dot(w, a);
        } else if constexpr (W::type == ggml_type::iq2_xxs) {
            sum += iq::lattice_block_dot(iq::integers_iq2_xxs(w), iq::load_half(w), a);
        } else if constexpr (W::type == ggml_type::iq2_xs) {
            sum += iq::lattice_block_dot(iq::integers_iq2_xs(w), iq::load_half(w), a);
        } else if constexpr (W::type == ggml_type::iq2_s) {
            sum += iq::lattice_block_dot(iq::integers_iq2_s(w), iq::load_half(w), a);
        } else if constexpr (W::type == ggml_type::iq3_xxs) {
            sum += iq::lattice_block_dot(iq::integers_iq3_xxs(w), iq::load_half(w), a);
        } else {
            static_assert(W::type == ggml_type::iq3_s);
            sum += iq::lattice_block_dot(iq::integers_iq3_s(w), iq::load_half(w), a);
        }
    }
    if constexpr (W::type == ggml_type::iq2_xxs || W::type == ggml_type::iq2_xs || W::type == ggml_type::iq2_s) return 0.125f * sum;
    if constexpr (W::type == ggml_type::iq3_xxs) return 0.25f * sum;
    return sum;
}

}  // namespace cogqat

COGQAT_STRICT_FP_END
