#pragma once
// What a GGUF block format is to the rest of the library, and the algorithms shared by all of them.
//
// A format is a small traits type: its geometry, the planes its levels live in (level_layout.hpp), how to
// read a sub-block's scale and min back from a block, and how to search the scales for one block. From that
// alone, dequantization, the final re-quantization of levels and the bit packing are written once here.

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>

#include "cogqat/core/rounding.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/format/ggml_type.hpp"
#include "cogqat/format/level_layout.hpp"

namespace cogqat {

/// How one sub-block decodes: value = scale * (level - level_offset) - min.
struct affine_scale {
    float scale = 0.0f;
    float min = 0.0f;
};

/// The requirements on a GGUF block format traits type.
template <class F>
concept BlockFormat = requires(const float* x, std::byte* block, const std::byte* stored, std::size_t sub_block) {
    { F::type } -> std::convertible_to<ggml_type>;
    { F::block_size } -> std::convertible_to<std::size_t>;
    { F::type_size } -> std::convertible_to<std::size_t>;
    { F::sub_block_size } -> std::convertible_to<std::size_t>;
    { F::level_offset } -> std::convertible_to<int>;
    { F::signed_levels } -> std::convertible_to<bool>;  // levels are two's complement (q8_*)
    { F::has_min } -> std::convertible_to<bool>;
    { F::planes.size() } -> std::convertible_to<std::size_t>;
    { F::sub_block_scale(stored, sub_block) } -> std::same_as<affine_scale>;
    { F::quantize_block(x, block) } -> std::same_as<void>;
};

/// Checks a format's declared geometry against the type table and its planes, at compile time.
template <BlockFormat F>
consteval bool geometry_is_consistent() {
    const auto& t = info(F::type);
    if (t.block_size != F::block_size || t.type_size != F::type_size) return false;
    if (F::block_size % F::sub_block_size != 0) return false;
    for (const auto& plane : F::planes)
        if (plane.offset + plane.size_for(F::block_size) > F::type_size) return false;
    return true;
}

/// Largest level code a format stores (unsigned, before any sign interpretation).
template <BlockFormat F>
inline constexpr int max_level = (1 << level_bits(F::planes)) - 1;

/// Range of the integers stored_level() returns: [0, max_level], or two's complement for signed levels.
struct level_range {
    int lowest, highest;
};
template <BlockFormat F>
inline constexpr level_range stored_level_range =
        F::signed_levels ? level_range{-(max_level<F> + 1) / 2, max_level<F> / 2} : level_range{0, max_level<F>};

/// The signed integer a stored level stands for, before the format's offset.
template <BlockFormat F>
[[nodiscard]] constexpr int stored_level(const std::byte* block, std::size_t i) noexcept {
    const unsigned level = unpack_level(F::planes, block, i);
    if constexpr (F::signed_levels) return static_cast<std::int8_t>(static_cast<std::uint8_t>(level));
    return static_cast<int>(level);
}

COGQAT_STRICT_FP_BEGIN

/// Decodes one block into F::block_size floats (the reference dequantizer, bit-exact with ggml's).
template <BlockFormat F>
inline void dequantize_block(const std::byte* block, float* out) noexcept {
    for (std::size_t sub = 0; sub < F::block_size / F::sub_block_size; ++sub) {
        const affine_scale s = F::sub_block_scale(block, sub);
        for (std::size_t j = 0; j < F::sub_block_size; ++j) {
            const std::size_t i = sub * F::sub_block_size + j;
            const float v = s.scale * static_cast<float>(stored_level<F>(block, i) - F::level_offset);
            out[i] = F::has_min ? v - s.min : v;
        }
    }
}

/// Final pass of the K-quant references: once the sub-block scales are stored, every level is recomputed
/// from the scale and min that dequantization will see. A sub-block whose stored scale is 0 keeps the levels
/// its search found, exactly as ggml does.
template <BlockFormat F>
inline void requantize_levels(const float* x, const std::byte* block, std::uint8_t* levels) noexcept {
    for (std::size_t sub = 0; sub < F::block_size / F::sub_block_size; ++sub) {
        const affine_scale s = F::sub_block_scale(block, sub);
        if (s.scale == 0.0f) continue;
        for (std::size_t j = 0; j < F::sub_block_size; ++j) {
            const std::size_t i = sub * F::sub_block_size + j;
            const int l = detail::nearest_int((x[i] + s.min) / s.scale) + F::level_offset;
            levels[i] = static_cast<std::uint8_t>(std::clamp(l, 0, max_level<F>));
        }
    }
}

COGQAT_STRICT_FP_END

/// Writes all F::block_size levels of a block into its planes.
template <BlockFormat F>
inline void store_levels(const std::uint8_t* levels, std::byte* block) noexcept {
    pack_levels(F::planes, levels, F::block_size, block);
}

}  // namespace cogqat
