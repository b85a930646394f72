#pragma once
// Checked entry points of the grid i-quants (iq_formats.hpp): rows of values, with or without an importance
// matrix (one weight per column, as llama.cpp's imatrix holds it), into blocks and back. Bytes equal ggml's
// ggml_quantize_chunk with the same importance pointer; floats equal its to_float.

#include <array>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/format/ggml_type.hpp"
#include "cogqat/format/iq_formats.hpp"
#include "cogqat/format/iq_search.hpp"

namespace cogqat {

namespace detail {

/// The block functions of one grid i-quant.
struct grid_iquant_entry {
    ggml_type type;
    bool needs_importance;
    void (*quantize_block)(const float* x, const float* importance, std::byte* block);
    void (*dequantize_block)(const std::byte* block, float* y);
};

template <GridFormat F>
constexpr grid_iquant_entry grid_iquant_entry_of() {
    static_assert(info(F::type).block_size == F::block_size && info(F::type).type_size == F::type_size);
    return {F::type, F::needs_importance, &F::quantize_block, &F::dequantize_block};
}

inline constexpr std::array grid_iquant_table{
        grid_iquant_entry_of<formats::iq2_xxs>(), grid_iquant_entry_of<formats::iq2_xs>(), grid_iquant_entry_of<formats::iq2_s>(),
        grid_iquant_entry_of<formats::iq3_xxs>(), grid_iquant_entry_of<formats::iq3_s>(),  grid_iquant_entry_of<formats::iq1_s>(),
        grid_iquant_entry_of<formats::iq1_m>(),
};

[[nodiscard]] inline const grid_iquant_entry* find_grid_iquant(ggml_type type) noexcept {
    for (const auto& e : grid_iquant_table)
        if (e.type == type) return &e;
    return nullptr;
}

inline const grid_iquant_entry& grid_iquant_for(ggml_type type, std::string_view context) {
    if (const auto* e = find_grid_iquant(type)) return *e;
    throw invalid_argument_error(std::string(context) + ": " + std::string(info(type).name) + " is not a grid i-quant");
}

inline void require_finite_values(std::span<const float> values, std::string_view context, std::string_view what) {
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (!std::isfinite(values[i]))
            throw value_error(std::string(context) + ": " + std::string(what) + "[" + std::to_string(i) + "] is " +
                                      (std::isnan(values[i]) ? "NaN"
                                       : values[i] > 0       ? "+Inf"
                                                             : "-Inf"),
                              i);
    }
}

inline void require_iquant_rows(const grid_iquant_entry& e, std::size_t values, std::size_t row_length, std::size_t bytes,
                                std::span<const float> importance, std::string_view context) {
    if (row_length == 0 || row_length % formats::iq::super_block != 0)
        throw shape_error(std::string(context) + ": row length " + std::to_string(row_length) + " is not a positive multiple of 256");
    if (values % row_length != 0)
        throw shape_error(std::string(context) + ": " + std::to_string(values) + " values is not a whole number of rows of " +
                          std::to_string(row_length));
    const std::size_t expected = storage_size(e.type, values);
    if (bytes != expected)
        throw shape_error(std::string(context) + ": " + std::to_string(values) + " values take " + std::to_string(expected) +
                          " bytes, the buffer has " + std::to_string(bytes));
    if (importance.empty() && e.needs_importance)
        throw invalid_argument_error(std::string(context) +
                                     ": needs importance weights (an imatrix): without them its search has nothing to weigh the "
                                     "values by, and ggml refuses to quantize it too");
    if (!importance.empty() && importance.size() != row_length)
        throw shape_error(std::string(context) + ": " + std::to_string(importance.size()) + " importance weights for rows of " +
                          std::to_string(row_length) + " (one per column)");
    for (std::size_t i = 0; i < importance.size(); ++i) {
        if (!std::isfinite(importance[i]) || importance[i] < 0)
            throw value_error(std::string(context) + ": importance[" + std::to_string(i) + "] = " + std::to_string(importance[i]) +
                                      " is not a finite non-negative weight",
                              i);
    }
}

}  // namespace detail

/// True for the seven grid i-quants: iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s, iq1_s, iq1_m.
[[nodiscard]] inline bool is_grid_iquant(ggml_type type) noexcept { return detail::find_grid_iquant(type) != nullptr; }

/// True where quantizing `type` needs importance weights (iq2_xxs, iq2_xs, iq1_s), as ggml_quantize_requires_imatrix says.
[[nodiscard]] inline bool requires_importance(ggml_type type) noexcept {
    const auto* e = detail::find_grid_iquant(type);
    return e && e->needs_importance;
}

/// Quantizes rows of `row_length` values (a multiple of 256) into `out` (exactly storage_size(type, values.size())
/// bytes), bit-exact with ggml_quantize_chunk. `importance` is empty or holds one non-negative weight per column;
/// iq2_xxs, iq2_xs and iq1_s require it. Throws invalid_argument_error for other types or a missing importance
/// matrix, shape_error for sizes that do not fit, value_error for NaN/Inf values or bad weights, and value_error
/// (at the block's first value) where ggml's search would abort (sums overflowing float).
inline void quantize_iq(ggml_type type, std::span<const float> values, std::size_t row_length, std::span<std::byte> out,
                        std::span<const float> importance = {}) {
    const std::string context = "quantize " + std::string(info(type).name);
    const auto& e = detail::grid_iquant_for(type, context);
    detail::require_iquant_rows(e, values.size(), row_length, out.size(), importance, context);
    detail::require_finite_values(values, context, "input");
    const std::size_t blocks = values.size() / formats::iq::super_block, per_row = row_length / formats::iq::super_block;
    const std::size_t type_size = info(type).type_size;
    for (std::size_t b = 0; b < blocks; ++b) {
        const float* weights = importance.empty() ? nullptr : importance.data() + (b % per_row) * formats::iq::super_block;
        try {
            e.quantize_block(values.data() + b * formats::iq::super_block, weights, out.data() + b * type_size);
        } catch (const formats::iq::search_failed&) {
            const std::size_t at = b * formats::iq::super_block;
            throw value_error(context + ": the block at input[" + std::to_string(at) +
                                      "] overflows the search's float sums (ggml's reference aborts on it); scale the values down",
                              at);
        }
    }
}

/// As above, returning a new buffer.
[[nodiscard]] inline std::vector<std::byte> quantize_iq(ggml_type type, std::span<const float> values, std::size_t row_length,
                                                        std::span<const float> importance = {}) {
    const std::string context = "quantize " + std::string(info(type).name);
    detail::grid_iquant_for(type, context);
    detail::require_whole_blocks(type, values.size(), context);
    std::vector<std::byte> out(storage_size(type, values.size()));
    quantize_iq(type, values, row_length, out, importance);
    return out;
}

/// Decodes `bytes` (whole blocks of `type`) into `out` (256 values per block), bit-exact with ggml's to_float.
inline void dequantize_iq(ggml_type type, std::span<const std::byte> bytes, std::span<float> out) {
    const std::string context = "dequantize " + std::string(info(type).name);
    const auto& e = detail::grid_iquant_for(type, context);
    const auto& t = info(type);
    if (bytes.size() % t.type_size != 0 || out.size() != bytes.size() / t.type_size * t.block_size)
        throw shape_error(context + ": " + std::to_string(bytes.size()) + " bytes do not decode into " + std::to_string(out.size()) +
                          " values (" + std::to_string(t.type_size) + "-byte blocks of " + std::to_string(t.block_size) + ")");
    for (std::size_t b = 0; b < bytes.size() / t.type_size; ++b)
        e.dequantize_block(bytes.data() + b * t.type_size, out.data() + b * t.block_size);
}

/// As above, returning a new buffer.
[[nodiscard]] inline std::vector<float> dequantize_iq(ggml_type type, std::span<const std::byte> bytes) {
    const auto& t = info(type);
    std::vector<float> out(bytes.size() % t.type_size == 0 ? bytes.size() / t.type_size * t.block_size : 0);
    dequantize_iq(type, bytes, out);
    return out;
}

}  // namespace cogqat
