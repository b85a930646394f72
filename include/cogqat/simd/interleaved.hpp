#pragma once
// Matrices of single-scale 32-value blocks (q4_0, q8_0) rearranged sixteen rows at a time, for products
// with a few activation vectors (a model's generation and prompt processing).
//
// Why: a model's rows are short (a few dozen blocks), and a dot product per row ends in a horizontal sum and
// spends most of its instructions unpacking one row's levels and spreading one row's scales. Here one
// 32-bit lane holds four levels of one row, so a register holds four levels of each of 16 rows; multiplied
// by four activation bytes broadcast to every lane (VNNI dpbusd), it advances 16 dot products at once, with
// no reduction across lanes, and the 16 rows' fp16 scales convert in one instruction. This is the layout
// llama.cpp's CPU backend repacks q4_0 and q8_0 into for the same reason; ours is a layout of its own.
//
// Layout of one group of 16 rows (`blocks` blocks along the row), 64-byte aligned throughout: first the
// levels of every block, one block after another, as unsigned integers (value = level - offset):
//   bits 8: 8 chunks of 64 bytes per block; chunk k, byte 4r + j = level 4k + j of row r
//   bits 4: 4 chunks of 64 bytes per block; chunk c, byte 4r + j = level 4c + j of row r in the low nibble
//           and level 16 + 4c + j in the high nibble
// then the scales: per block, 16 fp16 values (row 0 first), and padding to the next 64 bytes. Rows past the matrix's last (its row count
// rounded up to 16) have scale 0 and levels equal to the offset.
//
// The arithmetic, which every kernel follows (dot_interleaved_reference() is its definition): per block
// and row the exact integer sum of (level - offset) * activation, converted to float and multiply-added with
// (row scale * activation scale) into one of two accumulators, even blocks in the first, odd in the
// second; the row's result is their sum. So a row's value does not depend on the vector count, the group
// or the thread that computes it.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/float16.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/format/activation_quantize.hpp"
#include "cogqat/format/block_format.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/format/ggml_type.hpp"
#include "cogqat/format/legacy_formats.hpp"
#include "cogqat/simd/gemv.hpp"
#include "cogqat/simd/prefetch.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace cogqat::simd {

/// Rows per interleaved group: one 32-bit lane per row in a 512-bit register.
inline constexpr std::size_t interleave_rows = 16;

/// How one format is stored interleaved: bits per level (4 or 8; 0 for a type without the layout) and
/// what is taken off the unsigned level to give the value the scale multiplies.
struct interleaved_layout {
    unsigned bits = 0;
    int offset = 0;

    [[nodiscard]] constexpr explicit operator bool() const noexcept { return bits != 0; }
    [[nodiscard]] constexpr std::size_t level_bytes() const noexcept { return interleave_rows * 32 * bits / 8; }
    [[nodiscard]] constexpr std::size_t scale_bytes() const noexcept { return interleave_rows * 2; }
    /// The unsigned level of value i (0..31) of row r in a block's level bytes.
    [[nodiscard]] constexpr unsigned level(const std::byte* levels, std::size_t r, std::size_t i) const noexcept {
        if (bits == 8) return std::to_integer<unsigned>(levels[(i / 4) * 64 + 4 * r + i % 4]);
        const std::size_t k = i / 4, at = (k % 4) * 64 + 4 * r + i % 4;
        const unsigned byte = std::to_integer<unsigned>(levels[at]);
        return k < 4 ? byte & 0x0Fu : byte >> 4;
    }
};

/// The layout of format W: single-scale 32-value blocks whose levels take 4 or 8 bits.
template <BlockFormat W>
consteval interleaved_layout interleaved_layout_of() {
    if constexpr (W::block_size != 32 || W::sub_block_size != 32 || W::has_min) {
        return {};
    } else {
        constexpr unsigned bits = level_bits(W::planes);
        if (bits != 4 && bits != 8) return {};
        return {bits, W::level_offset + (W::signed_levels ? 128 : 0)};
    }
}

/// The layout of `type`, empty for the types that have none (every type but q4_0 and q8_0).
[[nodiscard]] constexpr interleaved_layout interleaved_layout_for(ggml_type type) noexcept {
    switch (type) {
        case ggml_type::q4_0:
            return interleaved_layout_of<formats::q4_0>();
        case ggml_type::q8_0:
            return interleaved_layout_of<formats::q8_0>();
        default:
            return {};
    }
}

namespace detail {
/// Frees what `new (std::align_val_t{alignment}) std::byte[]` gave.
struct aligned_delete {
    std::size_t alignment = 64;
    void operator()(std::byte* p) const noexcept { ::operator delete[](p, std::align_val_t{alignment}); }
};
}  // namespace detail

/// A matrix of `rows` rows of `cols` values of q4_0 or q8_0, rearranged into groups of 16 rows (the layout
/// above). Holds its own copy: the source may go away.
class interleaved_matrix {
public:
    /// Rearranges `bytes`, `rows` rows of `cols` values of `type` one after another as GGUF stores them.
    /// Throws invalid_argument_error for a type without the layout and shape_error for sizes that do not fit.
    interleaved_matrix(ggml_type type, std::span<const std::byte> bytes, std::size_t rows, std::size_t cols)
            : type_(type), layout_(interleaved_layout_for(type)), rows_(rows), cols_(cols) {
        const std::string where = "interleaved_matrix " + std::string(info(type).name);
        if (!layout_) throw invalid_argument_error(where + ": the type has no interleaved layout (q4_0 and q8_0 have)");
        cogqat::detail::require_whole_blocks(type, cols, where + " (row length)");
        const std::size_t expected = rows * storage_size(type, cols);
        if (bytes.size() != expected)
            throw shape_error(where + ": " + std::to_string(rows) + " rows of " + std::to_string(cols) + " values take " +
                              std::to_string(expected) + " bytes, the matrix has " + std::to_string(bytes.size()));
        const std::size_t size = std::max<std::size_t>(1, groups() * group_bytes());
        // A matrix of megabytes on 2 MB pages: it is streamed once per token, and on 4 KB pages a core
        // spends part of that on page walks (q8_0 over 138 MB: 9.5 GB/s on 4 KB pages, 10-13 on 2 MB).
        const std::size_t alignment = size >= huge_page ? huge_page : 64;
        storage_ = std::unique_ptr<std::byte[], detail::aligned_delete>(new (std::align_val_t{alignment}) std::byte[size],
                                                                        detail::aligned_delete{alignment});
#if defined(__linux__)
        if (alignment == huge_page) ::madvise(storage_.get(), (size + huge_page - 1) / huge_page * huge_page, MADV_HUGEPAGE);
#endif
        std::memset(storage_.get(), 0, size);
        if (type == ggml_type::q4_0)
            pack<formats::q4_0>(bytes);
        else
            pack<formats::q8_0>(bytes);
    }

    [[nodiscard]] ggml_type type() const noexcept { return type_; }
    [[nodiscard]] const interleaved_layout& layout() const noexcept { return layout_; }
    [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
    [[nodiscard]] std::size_t cols() const noexcept { return cols_; }
    [[nodiscard]] std::size_t groups() const noexcept { return (rows_ + interleave_rows - 1) / interleave_rows; }
    [[nodiscard]] std::size_t blocks() const noexcept { return cols_ / 32; }
    /// Bytes from one group to the next: levels and scales, rounded up so that every group starts 64-byte aligned.
    [[nodiscard]] std::size_t group_bytes() const noexcept {
        return (blocks() * (layout_.level_bytes() + layout_.scale_bytes()) + 63) / 64 * 64;
    }
    /// Group g's bytes (64-byte aligned).
    [[nodiscard]] const std::byte* group(std::size_t g) const noexcept { return storage_.get() + g * group_bytes(); }

private:
    static constexpr std::size_t huge_page = std::size_t{2} << 20;

    /// Groups in parallel (they are disjoint); within one, each source block is read once.
    template <BlockFormat W>
    void pack(std::span<const std::byte> bytes) {
        const std::size_t row_bytes = storage_size(type_, cols_);
        const int bias = W::signed_levels ? 128 : 0;
        parallel_for(
                groups(), 0,
                [&](std::size_t first, std::size_t last) {
                    for (std::size_t g = first; g < last; ++g) {
                        std::byte* group = storage_.get() + g * group_bytes();
                        for (std::size_t r = 0; r < interleave_rows; ++r) {
                            const std::size_t row = g * interleave_rows + r;
                            for (std::size_t b = 0; b < blocks(); ++b) {
                                std::byte* levels = group + b * layout_.level_bytes();
                                std::byte* scales = group + blocks() * layout_.level_bytes() + b * layout_.scale_bytes();
                                unsigned u[32];
                                std::uint16_t scale = 0;
                                if (row < rows_) {
                                    const std::byte* block = bytes.data() + row * row_bytes + b * W::type_size;
                                    scale = fp32_to_fp16_bits(W::sub_block_scale(block, 0).scale);
                                    for (std::size_t i = 0; i < 32; ++i) u[i] = static_cast<unsigned>(stored_level<W>(block, i) + bias);
                                } else {
                                    std::fill(std::begin(u), std::end(u), static_cast<unsigned>(layout_.offset));
                                }
                                std::memcpy(scales + 2 * r, &scale, 2);
                                std::byte* lane = levels + 4 * r;
                                if (layout_.bits == 8) {
                                    for (std::size_t i = 0; i < 32; ++i) lane[(i / 4) * 64 + i % 4] = static_cast<std::byte>(u[i]);
                                } else {
                                    for (std::size_t i = 0; i < 16; ++i)
                                        lane[(i / 4) * 64 + i % 4] = static_cast<std::byte>(u[i] | (u[i + 16] << 4));
                                }
                            }
                        }
                    }
                },
                std::size_t{4});
    }

    ggml_type type_;
    interleaved_layout layout_;
    std::size_t rows_, cols_;
    std::unique_ptr<std::byte[], detail::aligned_delete> storage_;
};

/// The arithmetic every interleaved kernel follows (see the top of this header), for one group.
inline void dot_interleaved_reference(const interleaved_layout& layout, const std::byte* group, std::size_t blocks,
                                      const dispatch::interleaved_activations* a, std::size_t vectors, float* out) noexcept {
    for (std::size_t v = 0; v < vectors; ++v) {
        float acc[2][interleave_rows] = {};
        for (std::size_t b = 0; b < blocks; ++b) {
            const std::byte* levels = group + b * layout.level_bytes();
            const std::byte* scales = group + blocks * layout.level_bytes() + b * layout.scale_bytes();
            const std::int8_t* q = a[v].q + 32 * b;
            for (std::size_t r = 0; r < interleave_rows; ++r) {
                std::int32_t sum = 0;
                for (std::size_t i = 0; i < 32; ++i) sum += static_cast<std::int32_t>(layout.level(levels, r, i)) * q[i];
                sum -= layout.offset * a[v].sums[b];
                std::uint16_t half = 0;
                std::memcpy(&half, scales + 2 * r, 2);
                const float scale = fp16_bits_to_fp32(half) * a[v].d[b];
                acc[b % 2][r] = std::fma(static_cast<float>(sum), scale, acc[b % 2][r]);
            }
        }
        for (std::size_t r = 0; r < interleave_rows; ++r) out[v * interleave_rows + r] = acc[0][r] + acc[1][r];
    }
}

namespace detail {

/// Activation vectors quantized to q8_0 as llama.cpp's CPU backend does, then split into the arrays the
/// interleaved kernels read.
class interleaved_inputs {
public:
    void encode(std::span<const float> x, std::size_t vectors, std::size_t cols) {
        const std::size_t blocks = cols / 32;
        q_.resize(vectors * cols);
        d_.resize(vectors * blocks);
        sums_.resize(vectors * blocks);
        bytes_.resize(storage_size(ggml_type::q8_0, cols));
        views_.resize(vectors);
        for (std::size_t v = 0; v < vectors; ++v) {
            quantize_activations(ggml_type::q8_0, x.subspan(v * cols, cols), bytes_);
            for (std::size_t b = 0; b < blocks; ++b) {
                const std::byte* block = bytes_.data() + b * formats::q8_0::type_size;
                d_[v * blocks + b] = formats::q8_0::sub_block_scale(block, 0).scale;
                std::int8_t* q = q_.data() + v * cols + 32 * b;
                std::memcpy(q, block + formats::q8_0::planes[0].offset, 32);
                std::int32_t sum = 0;
                for (std::size_t i = 0; i < 32; ++i) sum += q[i];
                sums_[v * blocks + b] = sum;
            }
            views_[v] = {q_.data() + v * cols, d_.data() + v * blocks, sums_.data() + v * blocks};
        }
    }
    [[nodiscard]] const dispatch::interleaved_activations* data() const noexcept { return views_.data(); }

private:
    std::vector<std::int8_t> q_;
    std::vector<float> d_;
    std::vector<std::int32_t> sums_;
    std::vector<std::byte> bytes_;
    std::vector<dispatch::interleaved_activations> views_;
};

template <class Split>
void gemm_interleaved_over(const interleaved_matrix& w, std::span<const float> x, std::size_t vectors, std::span<float> y, Split&& split) {
    const std::size_t rows = w.rows(), cols = w.cols();
    check_vectors(rows, cols, x.size(), y.size(), vectors, "gemm " + std::string(info(w.type()).name) + " (interleaved)");
    if (vectors == 0 || rows == 0) return;
    interleaved_inputs inputs;
    inputs.encode(x, vectors, cols);
    const auto kernel = dispatch::kernels(w.type()).dot_interleaved;
    const interleaved_layout layout = w.layout();
    // A few vectors per call: each group's levels are unpacked once for all of them, and their
    // accumulators still fit in registers. A block of groups meets every vector while it is in L2, so
    // the matrix comes from memory once per batch.
    constexpr std::size_t vectors_per_call = 4;
    const std::size_t block = rows_per_block(w.group_bytes()), calls = (vectors + vectors_per_call - 1) / vectors_per_call;
    split(
            w.groups(),
            [&](std::size_t begin, std::size_t end) {
                float out[vectors_per_call * interleave_rows];
                for (std::size_t first = begin; first < end; first += block) {
                    const std::size_t last = std::min(end, first + block), next_last = std::min(end, last + block);
                    for (std::size_t call = 0, v0 = 0; v0 < vectors; ++call, v0 += vectors_per_call) {
                        const std::size_t count = std::min(vectors_per_call, vectors - v0);
                        if (calls > 1) prefetch_share(w.group(last), (next_last - last) * w.group_bytes(), call, calls);
                        for (std::size_t g = first; g < last; ++g) {
                            const std::size_t valid = std::min(interleave_rows, rows - g * interleave_rows);
                            if (kernel)
                                kernel(w.group(g), w.blocks(), inputs.data() + v0, count, out);
                            else
                                dot_interleaved_reference(layout, w.group(g), w.blocks(), inputs.data() + v0, count, out);
                            for (std::size_t v = 0; v < count; ++v)
                                std::copy_n(out + v * interleave_rows, valid, y.data() + (v0 + v) * rows + g * interleave_rows);
                        }
                    }
                }
            },
            std::size_t{4});
}

}  // namespace detail

/// Y = W·X with W interleaved: X holds `vectors` rows of w.cols() floats, Y `vectors` rows of w.rows().
/// Activations are quantized to q8_0 first, as llama.cpp's CPU backend does; the values are within the
/// float rounding of simd::gemm's on the original matrix (the same integer sums, another float order).
/// Groups of 16 rows are split over `threads` threads. Throws shape_error for sizes that do not fit and
/// value_error for a non-finite x.
inline void gemm(const interleaved_matrix& w, std::span<const float> x, std::size_t vectors, std::span<float> y, unsigned threads = 1) {
    detail::gemm_interleaved_over(w, x, vectors, y,
                                  [threads](std::size_t n, auto&& body, std::size_t grain) { parallel_for(n, threads, body, grain); });
}

/// As above, groups split over a pool's workers.
inline void gemm(const interleaved_matrix& w, std::span<const float> x, std::size_t vectors, std::span<float> y, thread_pool& pool) {
    detail::gemm_interleaved_over(w, x, vectors, y,
                                  [&pool](std::size_t n, auto&& body, std::size_t grain) { pool.parallel_for(n, body, grain); });
}

}  // namespace cogqat::simd
