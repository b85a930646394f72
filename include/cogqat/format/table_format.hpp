#pragma once
// What a table-decoded GGUF format is to the rest of the library, and the algorithms its formats share.
//
// iq4_nl, iq4_xs, mxfp4, tq1_0 and tq2_0 store, per value, an index into a small table of integers
// (format/value_tables.hpp), and per sub-block a scale: value = scale * table[index]. Their levels are not
// affine in the code, so they are not BlockFormats. A format says where a value's index lives, how a
// sub-block's scale decodes and how it searches a block; decoding and the dot products are written once.

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>

#include "cogqat/core/strict_fp.hpp"
#include "cogqat/format/ggml_type.hpp"

namespace cogqat {

/// The requirements on a table-decoded format traits type. `scale(block, sub, factor)` is the sub-block's
/// scale multiplied by `factor` in the order ggml's dot product multiplies them (factor 1 for decoding);
/// `quantize_block` takes one importance weight per value, or nullptr for ggml's default weighting.
template <class F>
concept TableFormat = requires(const float* x, const float* importance, std::byte* block, const std::byte* stored, std::size_t i,
                               float factor) {
    { F::type } -> std::convertible_to<ggml_type>;
    { F::block_size } -> std::convertible_to<std::size_t>;
    { F::type_size } -> std::convertible_to<std::size_t>;
    { F::sub_block_size } -> std::convertible_to<std::size_t>;
    { F::values.size() } -> std::convertible_to<std::size_t>;
    { F::values[i] } -> std::convertible_to<std::int8_t>;
    { F::uses_importance } -> std::convertible_to<bool>;  // false: ggml ignores the importance matrix
    { F::index_at(stored, i) } -> std::same_as<unsigned>;
    { F::scale(stored, i, factor) } -> std::same_as<float>;
    { F::quantize_block(x, importance, block) } -> std::same_as<void>;
};

/// Checks a table format's declared geometry against the type table, at compile time.
template <TableFormat F>
consteval bool table_geometry_is_consistent() {
    const auto& t = info(F::type);
    return t.block_size == F::block_size && t.type_size == F::type_size && F::block_size % F::sub_block_size == 0;
}

/// The index of the table entry nearest to `x` in an ascending table; on a tie, the lower one when x is
/// nearer by the float subtraction ggml makes (its best_index_int8, bisection and all).
template <std::size_t N>
[[nodiscard]] constexpr std::uint8_t nearest_table_index(const std::array<std::int8_t, N>& values, float x) noexcept {
    if (x <= static_cast<float>(values[0])) return 0;
    if (x >= static_cast<float>(values[N - 1])) return static_cast<std::uint8_t>(N - 1);
    std::size_t low = 0, high = N - 1;
    while (high - low > 1) {
        const std::size_t middle = (low + high) / 2;
        if (x < static_cast<float>(values[middle]))
            high = middle;
        else
            low = middle;
    }
    return static_cast<std::uint8_t>(x - static_cast<float>(values[high - 1]) < static_cast<float>(values[high]) - x ? high - 1 : high);
}

COGQAT_STRICT_FP_BEGIN

/// Decodes one block into F::block_size floats (the reference dequantizer, bit-exact with ggml's).
template <TableFormat F>
inline void dequantize_table_block(const std::byte* block, float* out) noexcept {
    for (std::size_t sub = 0; sub < F::block_size / F::sub_block_size; ++sub) {
        const float s = F::scale(block, sub, 1.0f);
        for (std::size_t j = 0; j < F::sub_block_size; ++j) {
            const std::size_t i = sub * F::sub_block_size + j;
            out[i] = s * static_cast<float>(F::values[F::index_at(block, i)]);
        }
    }
}

COGQAT_STRICT_FP_END

}  // namespace cogqat
