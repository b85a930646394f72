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

/// The unchecked row kernels of one type, as ggml's type-traits table keeps them.
struct codec_entry {
    ggml_type type;
    void (*quantize)(const float* x, std::byte* out, std::size_t n);
    void (*dequantize)(const std::byte* in, float* y, std::size_t n);
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
constexpr codec_entry block_entry() {
    return {F::type, &quantize_unchecked<F>, &dequantize_unchecked<F>};
}

template <class Bits, Bits (*Encode)(float), float (*Decode)(Bits)>
constexpr codec_entry element_entry(ggml_type type) {
    return {type,
            [](const float* x, std::byte* out, std::size_t n) {
                for (std::size_t i = 0; i < n; ++i) store_le<Bits>(out + i * sizeof(Bits), Encode(x[i]));
            },
            [](const std::byte* in, float* y, std::size_t n) {
                for (std::size_t i = 0; i < n; ++i) y[i] = Decode(load_le<Bits>(in + i * sizeof(Bits)));
            }};
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
            }};
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

/// The GGUF types `quantize` and `dequantize` accept: f32, f16, bf16, the 12 block formats and the grid i-quants
/// (iq2_xxs, iq2_xs and iq1_s only through quantize_iq, which takes their importance weights).
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
