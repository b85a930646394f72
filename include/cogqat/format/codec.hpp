#pragma once
// Quantize float arrays into GGUF tensor types and back, checked: sizes that fit the blocks, an output of
// the right size, no NaN or Inf. Compile-time entry points take a format type and run the scalar reference;
// run-time ones take a ggml_type and run the active SIMD table's kernel (the same bytes and floats, checked in
// the tests), or the reference where the table has none.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/float16.hpp"
#include "cogqat/core/little_endian.hpp"
#include "cogqat/core/tensor_view.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/format/block_format.hpp"
#include "cogqat/format/ggml_type.hpp"
#include "cogqat/format/iq_quantize.hpp"
#include "cogqat/format/k_formats.hpp"
#include "cogqat/format/legacy_formats.hpp"
#include "cogqat/format/table_format.hpp"
#include "cogqat/format/table_formats.hpp"

namespace cogqat {

namespace detail {

inline void require_finite(std::span<const float> values, std::string_view context) {
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (!std::isfinite(values[i])) {
            const char* what = std::isnan(values[i]) ? "NaN" : (values[i] > 0 ? "+Inf" : "-Inf");
            throw value_error(std::string(context) + ": input[" + std::to_string(i) + "] is " + what, i);
        }
    }
}

inline void require_sizes(ggml_type type, std::size_t values, std::size_t bytes, std::string_view context) {
    require_whole_blocks(type, values, context);
    const auto& t = info(type);
    const std::size_t expected = values / t.block_size * t.type_size;
    if (bytes != expected) {
        throw shape_error(std::string(context) + ": " + std::to_string(values) + " values of " + std::string(t.name) + " take " +
                          std::to_string(expected) + " bytes, the buffer has " + std::to_string(bytes));
    }
}

/// The unchecked row kernels of one type, as ggml's type-traits table keeps them. `quantize_weighted`
/// takes one importance weight per value (aligned with x) and writes what ggml_quantize_chunk writes with
/// an importance matrix; it is null where ggml's weighted search is not reproduced here.
struct codec_entry {
    ggml_type type;
    void (*quantize)(const float* x, std::byte* out, std::size_t n);
    void (*dequantize)(const std::byte* in, float* y, std::size_t n);
    void (*quantize_weighted)(const float* x, std::byte* out, std::size_t n, const float* importance);
    bool uses_importance;  ///< quantize_weighted's bytes depend on the importance
};

template <BlockFormat F>
void quantize_unchecked(const float* x, std::byte* out, std::size_t n) {
    for (std::size_t b = 0; b < n / F::block_size; ++b) F::quantize_block(x + b * F::block_size, out + b * F::type_size);
}
template <BlockFormat F>
void dequantize_unchecked(const std::byte* in, float* y, std::size_t n) {
    for (std::size_t b = 0; b < n / F::block_size; ++b) dequantize_block<F>(in + b * F::type_size, y + b * F::block_size);
}
template <BlockFormat F>
void quantize_ignoring_importance(const float* x, std::byte* out, std::size_t n, const float*) {
    quantize_unchecked<F>(x, out, n);
}
template <BlockFormat F>
void quantize_weighted_blocks(const float* x, std::byte* out, std::size_t n, const float* importance) {
    for (std::size_t b = 0; b < n / F::block_size; ++b)
        F::quantize_block_weighted(x + b * F::block_size, importance + b * F::block_size, out + b * F::type_size);
}
/// ggml's 8-bit quantizers (the signed-level formats) take no importance; its 2- to 6-bit ones search with it:
/// the K types block by block (quantize_block_weighted), q4_0 to q5_1 by rows (quantize_row_weighted: their
/// weights use the whole row's mean square).
template <BlockFormat F>
void quantize_weighted_row(const float* x, std::byte* out, std::size_t n, const float* importance) {
    F::quantize_row_weighted(x, importance, n, out);
}
template <BlockFormat F>
constexpr codec_entry block_entry() {
    if constexpr (requires(const float* x, std::byte* b) { F::quantize_block_weighted(x, x, b); })
        return {F::type, &quantize_unchecked<F>, &dequantize_unchecked<F>, &quantize_weighted_blocks<F>, true};
    else if constexpr (requires(const float* x, std::byte* b, std::size_t n) { F::quantize_row_weighted(x, x, n, b); })
        return {F::type, &quantize_unchecked<F>, &dequantize_unchecked<F>, &quantize_weighted_row<F>, true};
    else
        return {F::type, &quantize_unchecked<F>, &dequantize_unchecked<F>, F::signed_levels ? &quantize_ignoring_importance<F> : nullptr,
                false};
}

template <TableFormat F>
void quantize_table_weighted(const float* x, std::byte* out, std::size_t n, const float* importance) {
    for (std::size_t b = 0; b < n / F::block_size; ++b) {
        const float* w = F::uses_importance && importance ? importance + b * F::block_size : nullptr;
        F::quantize_block(x + b * F::block_size, w, out + b * F::type_size);
    }
}
template <TableFormat F>
void quantize_table(const float* x, std::byte* out, std::size_t n) {
    quantize_table_weighted<F>(x, out, n, nullptr);
}
template <TableFormat F>
void dequantize_table(const std::byte* in, float* y, std::size_t n) {
    for (std::size_t b = 0; b < n / F::block_size; ++b) dequantize_table_block<F>(in + b * F::type_size, y + b * F::block_size);
}
template <TableFormat F>
constexpr codec_entry table_entry() {
    return {F::type, &quantize_table<F>, &dequantize_table<F>, &quantize_table_weighted<F>, F::uses_importance};
}

template <class Bits, Bits (*Encode)(float), float (*Decode)(Bits)>
constexpr codec_entry element_entry(ggml_type type) {
    return {type,
            [](const float* x, std::byte* out, std::size_t n) {
                for (std::size_t i = 0; i < n; ++i) store_le<Bits>(out + i * sizeof(Bits), Encode(x[i]));
            },
            [](const std::byte* in, float* y, std::size_t n) {
                for (std::size_t i = 0; i < n; ++i) y[i] = Decode(load_le<Bits>(in + i * sizeof(Bits)));
            },
            [](const float* x, std::byte* out, std::size_t n, const float*) {  // ggml rounds each value alone
                for (std::size_t i = 0; i < n; ++i) store_le<Bits>(out + i * sizeof(Bits), Encode(x[i]));
            },
            false};
}
inline float identity_float(float v) { return v; }
inline std::uint16_t encode_fp16(float v) { return fp32_to_fp16_bits(v); }
inline float decode_fp16(std::uint16_t v) { return fp16_bits_to_fp32(v); }
inline std::uint16_t encode_bf16(float v) { return fp32_to_bf16_bits(v); }
inline float decode_bf16(std::uint16_t v) { return bf16_bits_to_fp32(v); }

/// A grid i-quant's row kernels: quantization without importance weights (the types that need them throw
/// invalid_argument_error, naming the type and why) and dequantization.
template <GridFormat F>
constexpr codec_entry grid_iquant_codec_entry() {
    return {F::type,
            [](const float* x, std::byte* out, std::size_t n) {
                quantize_iq(F::type, std::span<const float>(x, n), formats::iq::super_block,
                            std::span<std::byte>(out, n / F::block_size * F::type_size));
            },
            [](const std::byte* in, float* y, std::size_t n) {
                for (std::size_t b = 0; b < n / F::block_size; ++b) F::dequantize_block(in + b * F::type_size, y + b * F::block_size);
            },
            [](const float* x, std::byte* out, std::size_t n, const float* importance) {
                quantize_iq(F::type, std::span<const float>(x, n), n, std::span<std::byte>(out, n / F::block_size * F::type_size),
                            importance ? std::span<const float>(importance, n) : std::span<const float>());
            },
            true};
}

inline constexpr std::array codec_table{
        element_entry<float, identity_float, identity_float>(ggml_type::f32),
        element_entry<std::uint16_t, encode_fp16, decode_fp16>(ggml_type::f16),
        element_entry<std::uint16_t, encode_bf16, decode_bf16>(ggml_type::bf16),
        block_entry<formats::q4_0>(),
        block_entry<formats::q4_1>(),
        block_entry<formats::q5_0>(),
        block_entry<formats::q5_1>(),
        block_entry<formats::q8_0>(),
        block_entry<formats::q8_1>(),
        block_entry<formats::q2_K>(),
        block_entry<formats::q3_K>(),
        block_entry<formats::q4_K>(),
        block_entry<formats::q5_K>(),
        block_entry<formats::q6_K>(),
        block_entry<formats::q8_K>(),
        table_entry<formats::iq4_nl>(),
        table_entry<formats::iq4_xs>(),
        table_entry<formats::mxfp4>(),
        table_entry<formats::tq1_0>(),
        table_entry<formats::tq2_0>(),
        grid_iquant_codec_entry<formats::iq2_xxs>(),
        grid_iquant_codec_entry<formats::iq2_xs>(),
        grid_iquant_codec_entry<formats::iq2_s>(),
        grid_iquant_codec_entry<formats::iq3_xxs>(),
        grid_iquant_codec_entry<formats::iq3_s>(),
        grid_iquant_codec_entry<formats::iq1_s>(),
        grid_iquant_codec_entry<formats::iq1_m>(),
};

inline const codec_entry& codec_for(ggml_type type, std::string_view operation) {
    for (const auto& e : codec_table)
        if (e.type == type) return e;
    throw invalid_argument_error(std::string(operation) + ": cogqat cannot convert " + std::string(info(type).name) + " (not implemented)");
}

/// The row quantizer and dequantizer to run: the active SIMD table's, else the reference's.
inline auto row_quantizer(const codec_entry& codec) {
    const auto simd_kernel = dispatch::kernels(codec.type).quantize;
    return simd_kernel ? simd_kernel : codec.quantize;
}
inline auto row_dequantizer(const codec_entry& codec) {
    const auto simd_kernel = dispatch::kernels(codec.type).dequantize;
    return simd_kernel ? simd_kernel : codec.dequantize;
}

}  // namespace detail

/// The GGUF types `quantize` and `dequantize` accept: f32, f16, bf16, the 12 affine block formats, the
/// table-decoded iq4_nl, iq4_xs, mxfp4, tq1_0 and tq2_0, and the grid i-quants (iq2_xxs, iq2_xs and iq1_s only
/// with importance weights, which ggml requires for them).
[[nodiscard]] inline bool is_quantizable(ggml_type type) noexcept {
    for (const auto& e : detail::codec_table)
        if (e.type == type) return true;
    return false;
}

/// Encodes `values` as `type` into `out` (exactly storage_size(type, values.size()) bytes), bit-exact with
/// ggml's reference quantizer. Throws shape_error for sizes that do not fit and value_error for NaN/Inf.
inline void quantize(ggml_type type, std::span<const float> values, std::span<std::byte> out) {
    const std::string context = "quantize " + std::string(info(type).name);
    const auto& codec = detail::codec_for(type, context);
    detail::require_sizes(type, values.size(), out.size(), context);
    detail::require_finite(values, context);
    detail::row_quantizer(codec)(values.data(), out.data(), values.size());
}

/// As above, returning a new buffer.
[[nodiscard]] inline std::vector<std::byte> quantize(ggml_type type, std::span<const float> values) {
    detail::require_whole_blocks(type, values.size(), "quantize " + std::string(info(type).name));
    std::vector<std::byte> out(storage_size(type, values.size()));
    quantize(type, values, out);
    return out;
}

/// Quantizes each row of a (possibly strided) matrix into consecutive rows of `out`, as GGUF stores a
/// 2-D tensor. The row length must be a multiple of the block size.
inline void quantize(ggml_type type, matrix_view<const float> matrix, std::span<std::byte> out) {
    const std::string context = "quantize " + std::string(info(type).name);
    detail::require_whole_blocks(type, matrix.row_length(), context + " (row length)");
    const std::size_t row_bytes = storage_size(type, matrix.row_length());
    detail::require_sizes(type, matrix.size(), out.size(), context);
    for (std::size_t r = 0; r < matrix.rows(); ++r) {
        try {
            quantize(type, matrix.row(r), out.subspan(r * row_bytes, row_bytes));
        } catch (const value_error& e) {
            const std::size_t index = r * matrix.row_length() + e.index();
            throw value_error(context + ": row " + std::to_string(r) + ", column " + std::to_string(e.index()) + " is not finite", index);
        }
    }
}

/// Whether importance weights change what quantize(type, values, row_length, importance) writes: true for
/// q4_0 to q5_1, q2_K to q6_K, iq4_nl, iq4_xs and the grid i-quants, whose ggml searches weigh each value's error by them; false for the types that accept
/// and ignore them and for those that refuse them. For callers that hold an importance matrix (e.g. the
/// diagonal of the input second moments) and want to know where passing it matters.
[[nodiscard]] inline bool uses_importance(ggml_type type) noexcept {
    for (const auto& e : detail::codec_table)
        if (e.type == type) return e.uses_importance;
    return false;
}

/// Encodes `values`, rows of `row_length` values, as `type` into `out`, with the squared error of column c
/// weighted by `importance[c]`: what ggml_quantize_chunk writes given that importance matrix (llama.cpp's
/// imatrix, Σx² of each input column), bit for bit. An empty `importance` is no importance matrix, as the
/// plain quantize(). Types whose ggml quantizer ignores it (f32, f16, bf16, the 8-bit ones, mxfp4, tq1_0,
/// tq2_0) accept and ignore it. Throws shape_error for sizes that do not fit (row length not a positive
/// multiple of the block, values not whole rows, importance not one per column, output of the wrong size),
/// value_error for a NaN or Inf value or an importance that is not finite and >= 0, and
/// invalid_argument_error for a type without a weighted path (none of the weight types).
inline void quantize(ggml_type type, std::span<const float> values, std::size_t row_length, std::span<const float> importance,
                     std::span<std::byte> out) {
    const std::string context = "quantize " + std::string(info(type).name) + " with importance";
    const auto& codec = detail::codec_for(type, context);
    if (row_length == 0) throw shape_error(context + ": the row length is 0");
    detail::require_whole_blocks(type, row_length, context + " (row length)");
    if (values.size() % row_length != 0)
        throw shape_error(context + ": " + std::to_string(values.size()) + " values is not a whole number of rows of " +
                          std::to_string(row_length));
    detail::require_sizes(type, values.size(), out.size(), context);
    if (importance.empty()) {
        quantize(type, values, out);
        return;
    }
    if (importance.size() != row_length)
        throw shape_error(context + ": " + std::to_string(importance.size()) + " importance weights for rows of " +
                          std::to_string(row_length) + " values (one per column)");
    for (std::size_t c = 0; c < importance.size(); ++c)
        if (!std::isfinite(importance[c]) || importance[c] < 0.0f)
            throw value_error(context + ": importance[" + std::to_string(c) + "] is not a finite value >= 0", c);
    if (!codec.quantize_weighted)
        throw invalid_argument_error(context + ": ggml's importance-weighted search for " + std::string(info(type).name) +
                                     " is not implemented in cogqat (quantize without importance, or use another type)");
    detail::require_finite(values, context);
    const std::size_t row_bytes = storage_size(type, row_length);
    for (std::size_t r = 0; r < values.size() / row_length; ++r)
        codec.quantize_weighted(values.data() + r * row_length, out.data() + r * row_bytes, row_length, importance.data());
}

/// As above, returning a new buffer.
[[nodiscard]] inline std::vector<std::byte> quantize(ggml_type type, std::span<const float> values, std::size_t row_length,
                                                     std::span<const float> importance) {
    detail::require_whole_blocks(type, values.size(), "quantize " + std::string(info(type).name) + " with importance");
    std::vector<std::byte> out(storage_size(type, values.size()));
    quantize(type, values, row_length, importance, out);
    return out;
}

/// Decodes `bytes` (a whole number of blocks of `type`) into `out` (block_size values per block),
/// bit-exact with ggml's dequantizer.
inline void dequantize(ggml_type type, std::span<const std::byte> bytes, std::span<float> out) {
    const std::string context = "dequantize " + std::string(info(type).name);
    const auto& codec = detail::codec_for(type, context);
    const auto& t = info(type);
    if (bytes.size() % t.type_size != 0) {
        throw shape_error(context + ": " + std::to_string(bytes.size()) + " bytes is not a whole number of " + std::to_string(t.type_size) +
                          "-byte blocks");
    }
    detail::require_sizes(type, out.size(), bytes.size(), context);
    detail::row_dequantizer(codec)(bytes.data(), out.data(), out.size());
}

/// As above, returning a new buffer.
[[nodiscard]] inline std::vector<float> dequantize(ggml_type type, std::span<const std::byte> bytes) {
    const auto& t = info(type);
    std::vector<float> out(bytes.size() % t.type_size == 0 ? bytes.size() / t.type_size * t.block_size : 0);
    dequantize(type, bytes, out);
    return out;
}

/// Compile-time entry points: quantize/dequantize with a format known statically (no table lookup).
template <BlockFormat F>
void quantize(std::span<const float> values, std::span<std::byte> out) {
    const std::string context = "quantize " + std::string(info(F::type).name);
    detail::require_sizes(F::type, values.size(), out.size(), context);
    detail::require_finite(values, context);
    detail::quantize_unchecked<F>(values.data(), out.data(), values.size());
}
template <BlockFormat F>
void dequantize(std::span<const std::byte> bytes, std::span<float> out) {
    detail::require_sizes(F::type, out.size(), bytes.size(), "dequantize " + std::string(info(F::type).name));
    detail::dequantize_unchecked<F>(bytes.data(), out.data(), out.size());
}

}  // namespace cogqat
