#pragma once
// The generic quantizer's codes in packed storage: packed_quantized_tensor keeps a quantized_tensor's codes at
// exactly Bits::bits bits each (format/packed_codes.hpp) with the group parameters alongside, and
// quantize_packed / dequantize_packed write to and read from it through any quantizer<Bits, Granularity, Mode,
// Backend> with Bits::bits <= 8. Quantizing goes a block of rows at a time where groups lie within rows, so the
// byte codes of the whole tensor never exist. Dequantizing from packed codes gives the floats of the unpacked
// path bit for bit: the codes are unpacked a chunk at a time and decoded by the same backend arithmetic.

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cogqat/core/affine_levels.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/policy.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/core/tensor_view.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/format/packed_codes.hpp"
#include "cogqat/quant/quantizer.hpp"

COGQAT_STRICT_FP_BEGIN

namespace cogqat {

/// A quantized tensor whose codes are packed at Bits::bits bits each: rows x cols codes in row-major order, then
/// the parameters of every group as quantized_tensor stores them. Made from a quantized_tensor (whose checks it
/// keeps) and turned back into one without loss.
template <BitWidthPolicy Bits, GranularityPolicy Granularity, ModePolicy Mode>
requires(Bits::bits <= max_packed_bits) class packed_quantized_tensor {
public:
    using unpacked_type = quantized_tensor<Bits, Granularity, Mode>;
    using group_type = typename unpacked_type::group_type;
    static constexpr bool has_super_blocks = unpacked_type::has_super_blocks;
    static constexpr int min_level = unpacked_type::min_level;
    static constexpr int max_level = unpacked_type::max_level;

    /// An empty 0 x 0 tensor.
    packed_quantized_tensor() = default;
    /// Packs the codes of `q` and copies its parameters.
    explicit packed_quantized_tensor(const unpacked_type& q)
            : rows_(q.rows()), cols_(q.cols()), codes_(q.codes()), groups_(q.groups().begin(), q.groups().end()) {
        if constexpr (has_super_blocks) super_scales_.assign(q.super_scales().begin(), q.super_scales().end());
    }

    [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
    [[nodiscard]] std::size_t cols() const noexcept { return cols_; }
    /// Number of values.
    [[nodiscard]] std::size_t size() const noexcept { return codes_.size(); }
    [[nodiscard]] bool empty() const noexcept { return codes_.empty(); }

    /// The packed codes, row-major: code = level - min_level.
    [[nodiscard]] const_packed_view<Bits::bits> codes() const noexcept { return codes_.view(); }
    /// Signed level of value `i` (row-major), unchecked.
    [[nodiscard]] int level(std::size_t i) const noexcept { return static_cast<int>(codes_[i]) + min_level; }
    /// Stored parameters of every group, in row-major order of the groups.
    [[nodiscard]] std::span<const group_type> groups() const noexcept { return groups_; }
    /// One float super-scale per super-block.
    [[nodiscard]] std::span<const float> super_scales() const noexcept requires(has_super_blocks) { return super_scales_; }
    /// Values per group; group g holds values [g * group_length(), (g + 1) * group_length()).
    [[nodiscard]] std::size_t group_length() const noexcept { return Granularity::group_length(rows_, cols_); }
    [[nodiscard]] std::size_t group_count() const noexcept { return groups_.size(); }

    /// The scale and zero-point group `g` decodes with (for a super-block, read back from the codes).
    [[nodiscard]] affine_params effective_params(std::size_t g) const noexcept {
        return unpacked_type::effective_params(groups_, super_scales_, g);
    }

    /// What this tensor takes in memory: the packed codes (ceil(size * Bits::bits / 8) bytes), every group's
    /// parameters as stored (sizeof(group_type) each) and the float super-scales. quantized_tensor::storage_bits()
    /// is the smaller size of a serialized format, which stores a zero-point in Bits::bits bits.
    [[nodiscard]] std::size_t storage_bytes() const noexcept {
        return codes_.storage_bytes() + groups_.size() * sizeof(group_type) + super_scales_.size() * sizeof(float);
    }

    /// Size in bits of a serialized packed format, exactly quantized_tensor::storage_bits() of the same tensor
    /// (zero-points in Bits::bits bits, sub-scales in ScaleBits bits): what a file would take, where
    /// storage_bytes() is what this object holds.
    [[nodiscard]] std::size_t storage_bits() const noexcept {
        return unpacked_type::storage_bits(size(), groups_.size(), super_scales_.size());
    }

    /// Quantizes `x` with Q (a quantizer of this tensor's policies, either backend) straight into packed codes:
    /// where every group lies within a row (PerRow, PerGroup, SuperBlock), a block of rows of about 64 Ki
    /// values at a time goes through Q::quantize and is packed, so the byte codes never exist for the whole
    /// tensor; otherwise (PerTensor) the whole tensor does. The result equals packing Q::quantize(x); errors are
    /// Q::quantize's, a NaN's or Inf's index counted in the whole matrix.
    template <class Q>
    [[nodiscard]] static packed_quantized_tensor quantize_rows(matrix_view<const float> x) {
        static_assert(std::same_as<typename Q::bit_width, Bits> && std::same_as<typename Q::granularity, Granularity> &&
                              std::same_as<typename Q::mode, Mode>,
                      "quantize_rows: Q quantizes with other policies");
        const std::size_t rows = x.extent(0), cols = x.extent(1);
        const std::size_t block = rows_per_block(rows, cols);
        if (block >= rows) return packed_quantized_tensor(Q::quantize(x));
        packed_quantized_tensor out;
        out.rows_ = rows;
        out.cols_ = cols;
        out.codes_ = packed_codes<Bits::bits>(rows * cols);
        out.groups_.reserve(Granularity::group_count(rows, cols));
        for (std::size_t r = 0; r < rows; r += block) {
            const std::size_t n = std::min(block, rows - r);
            const unpacked_type q = quantize_block<Q>(matrix_view<const float>(x.data() + r * x.stride(0), {n, cols}, x.strides()), r);
            out.codes_.view(r * cols, n * cols).pack_from(q.codes());
            out.groups_.insert(out.groups_.end(), q.groups().begin(), q.groups().end());
            if constexpr (has_super_blocks)
                out.super_scales_.insert(out.super_scales_.end(), q.super_scales().begin(), q.super_scales().end());
        }
        return out;
    }

    /// The same tensor with one byte per code.
    [[nodiscard]] unpacked_type unpack() const {
        if constexpr (has_super_blocks)
            return unpacked_type(rows_, cols_, codes_.unpack(), groups_, super_scales_);
        else
            return unpacked_type(rows_, cols_, codes_.unpack(), groups_);
    }

    friend bool operator==(const packed_quantized_tensor&, const packed_quantized_tensor&) = default;

private:
    /// Values quantized per block of rows: enough to amortize a call, small enough to stay in L2 as bytes.
    static constexpr std::size_t block_values = std::size_t{1} << 16;

    /// Rows per block when every group (and super-block) lies within one row, so that a block of rows
    /// quantizes exactly as it would inside the whole matrix; `rows` (one block) otherwise.
    [[nodiscard]] static std::size_t rows_per_block(std::size_t rows, std::size_t cols) noexcept {
        if (rows < 2 || cols == 0) return rows;
        const std::size_t length = Granularity::group_length(1, cols);
        bool row_local = length > 0 && cols % length == 0 && Granularity::group_length(rows, cols) == length &&
                         Granularity::group_count(rows, cols) == rows * (cols / length);
        if constexpr (has_super_blocks) row_local = row_local && cols % Granularity::super_block_size == 0;
        return row_local ? std::max<std::size_t>(1, block_values / cols) : rows;
    }

    /// Q::quantize of the rows from `first_row` on, a NaN or Inf reported at its index in the whole matrix.
    template <class Q>
    static unpacked_type quantize_block(matrix_view<const float> part, std::size_t first_row) {
        try {
            return Q::quantize(part);
        } catch (const value_error& e) {
            const std::size_t cols = part.extent(1);
            throw detail::quantizer_impl::non_finite_error(part(e.index() / cols, e.index() % cols), first_row * cols + e.index(), cols,
                                                           "quantize");
        }
    }

    std::size_t rows_ = 0;
    std::size_t cols_ = 0;
    packed_codes<Bits::bits> codes_;
    std::vector<group_type> groups_;
    std::vector<float> super_scales_;
};

/// The packed tensor type of a quantizer<Bits, Granularity, Mode, Backend>.
template <class Q>
using packed_tensor_of = packed_quantized_tensor<typename Q::bit_width, typename Q::granularity, typename Q::mode>;

namespace detail::packed_quantizer {

/// Decodes n codes of one group as Q's backend does (quantizer::dequantize), so the floats are the same bits.
template <class Q>
void decode_codes(const std::uint8_t* codes, std::size_t n, affine_params p, float* out) {
    using Bits = typename Q::bit_width;
    using Mode = typename Q::mode;
    if constexpr (std::same_as<typename Q::backend_type, backend::Simd>) {
        // A piece of one group: n values under one set of parameters.
        if (const auto k = dispatch::active().quantizer.decode_u8) return k(codes, n, 1, &p, level_traits<Bits, Mode>::min_level, out);
    }
    for (std::size_t i = 0; i < n; ++i) out[i] = reference::decode<Bits, Mode>(codes[i], p);
}

/// Decodes every value of `q` in row-major order into `out` (q.size() floats), unpacking a bounded chunk of
/// codes at a time so that no byte-per-code copy of the tensor is made.
template <class Q>
void decode_flat(const packed_tensor_of<Q>& q, std::span<float> out) {
    constexpr std::size_t chunk = 2048;
    std::array<std::uint8_t, chunk> buffer;  // written by each unpack before it is read: no zeroing per call
    const std::size_t n = q.size(), length = q.group_length();
    for (std::size_t pos = 0; pos < n;) {
        const std::size_t c = std::min(chunk, n - pos);
        q.codes().subview(pos, c).unpack_to(std::span<std::uint8_t>(buffer.data(), c));
        for (std::size_t i = 0; i < c;) {
            const std::size_t g = (pos + i) / length;
            const std::size_t piece = std::min(c - i, (g + 1) * length - (pos + i));
            decode_codes<Q>(buffer.data() + i, piece, q.effective_params(g), out.data() + pos + i);
            i += piece;
        }
        pos += c;
    }
}

}  // namespace detail::packed_quantizer

/// Quantizes a (possibly strided) matrix with quantizer Q into packed codes: Q::quantize's codes and parameters,
/// packed, a block of rows at a time where the granularity allows (packed_quantized_tensor::quantize_rows).
/// Throws what Q::quantize throws (shape_error, value_error with the index of a NaN or Inf).
template <class Q>
[[nodiscard]] packed_tensor_of<Q> quantize_packed(matrix_view<const float> x) {
    return packed_tensor_of<Q>::template quantize_rows<Q>(x);
}
/// A 1-D array, quantized as one row.
template <class Q>
[[nodiscard]] packed_tensor_of<Q> quantize_packed(std::span<const float> x) {
    return packed_tensor_of<Q>(Q::quantize(x));
}

/// Decodes packed `q` in row-major order into `out`, which must hold q.size() values (shape_error otherwise):
/// the floats Q::dequantize gives for q.unpack(), bit for bit.
template <class Q>
void dequantize_packed(const packed_tensor_of<Q>& q, std::span<float> out) {
    if (out.size() != q.size()) {
        throw shape_error("dequantize_packed: the output holds " + std::to_string(out.size()) + " values, the " +
                          detail::quantizer_impl::shape_text(q.rows(), q.cols()) + " tensor has " + std::to_string(q.size()));
    }
    detail::packed_quantizer::decode_flat<Q>(q, out);
}
/// Decodes into `out`, which must have q's shape (any strides; shape_error otherwise).
template <class Q>
void dequantize_packed(const packed_tensor_of<Q>& q, matrix_view<float> out) {
    if (out.extent(0) != q.rows() || out.extent(1) != q.cols()) {
        using detail::quantizer_impl::shape_text;
        throw shape_error("dequantize_packed: the output is " + shape_text(out.extent(0), out.extent(1)) + ", expected " +
                          shape_text(q.rows(), q.cols()));
    }
    if (out.is_contiguous()) return detail::packed_quantizer::decode_flat<Q>(q, out.flat());
    std::vector<float> values(q.size());
    detail::packed_quantizer::decode_flat<Q>(q, values);
    detail::quantizer_impl::scatter_row_major(values, out);
}
/// Decodes into a new row-major array.
template <class Q>
[[nodiscard]] std::vector<float> dequantize_packed(const packed_tensor_of<Q>& q) {
    std::vector<float> out(q.size());
    detail::packed_quantizer::decode_flat<Q>(q, out);
    return out;
}

}  // namespace cogqat

COGQAT_STRICT_FP_END
