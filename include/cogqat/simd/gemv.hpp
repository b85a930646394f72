#pragma once
// Matrix-vector and small matrix-matrix products over whole quantized matrices, on the active SIMD table
// (dispatch/kernel_table.hpp) with the scalar reference wherever a kernel is missing. Rows are split over
// threads; each output is one row's dot product, so results do not depend on the thread count.

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/format/activation_quantize.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/format/ggml_type.hpp"
#include "cogqat/format/vec_dot.hpp"
#include "cogqat/simd/prefetch.hpp"

namespace cogqat {

/// How activations meet quantized weights.
enum class activation_mode {
    quantized,  ///< as llama.cpp's CPU backend: activations quantized to the weights' partner type
    float32,    ///< weights decoded to float, float activations
};

namespace simd {

namespace detail {

/// The activations of one product, encoded once for every row: quantized bytes, or floats (rounded to
/// f16/bf16 first for those weights, as ggml does).
struct encoded_activations {
    ggml_type type = ggml_type::f32;
    std::vector<std::byte> bytes;
    std::vector<float> floats;
};

inline void encode_activations(ggml_type weights, activation_mode mode, std::span<const float> x, encoded_activations& out) {
    out.type = mode == activation_mode::quantized ? activation_type_for(weights) : ggml_type::f32;
    if (out.type == ggml_type::f32 || out.type == ggml_type::f16 || out.type == ggml_type::bf16) {
        out.floats.assign(x.begin(), x.end());
        if (out.type != ggml_type::f32) {
            const auto rounded = quantize(out.type, x);
            dequantize(out.type, rounded, out.floats);
        }
        return;
    }
    out.bytes.resize(storage_size(out.type, x.size()));
    quantize_activations(out.type, x, out.bytes);
}

/// One row's dot product with encoded activations, through the table's kernel or the reference.
class row_dot {
public:
    row_dot(ggml_type weights, const encoded_activations& a, std::size_t cols) : weights_(weights), a_(a), cols_(cols) {
        const dispatch::type_kernels& k = dispatch::kernels(weights);
        if (a.type == ggml_type::f32 || a.type == ggml_type::f16 || a.type == ggml_type::bf16) {
            float_kernel_ = k.dot_float;
        } else {
            quantized_kernel_ = k.dot_quantized;
            if (!quantized_kernel_) reference_ = quantized_dot_for(weights);
        }
    }
    float operator()(std::span<const std::byte> row, std::vector<float>& scratch) const {
        if (quantized_kernel_) return quantized_kernel_(row.data(), a_.bytes.data(), cols_);
        if (reference_) return reference_(row, a_.bytes, cols_);
        if (float_kernel_) return float_kernel_(row.data(), a_.floats.data(), cols_);
        return vec_dot_float(weights_, row, a_.floats, scratch);
    }

private:
    ggml_type weights_;
    const encoded_activations& a_;
    std::size_t cols_;
    float (*quantized_kernel_)(const std::byte*, const std::byte*, std::size_t) = nullptr;
    float (*float_kernel_)(const std::byte*, const float*, std::size_t) = nullptr;
    quantized_dot_fn reference_ = nullptr;
};

/// `vectors` activation vectors of `cols` values in, as many outputs of `rows` values out.
inline void check_vectors(std::size_t rows, std::size_t cols, std::size_t x_size, std::size_t y_size, std::size_t vectors,
                          std::string_view where) {
    const std::string at(where);
    if (x_size != vectors * cols)
        throw shape_error(at + ": activations hold " + std::to_string(x_size) + " values, expected " + std::to_string(vectors * cols));
    if (y_size != vectors * rows)
        throw shape_error(at + ": output holds " + std::to_string(y_size) + " values, expected " + std::to_string(vectors * rows));
}

/// Rows of a matrix block that stays in L2 while a whole batch of vectors passes over it.
[[nodiscard]] inline std::size_t rows_per_block(std::size_t row_bytes) noexcept {
    constexpr std::size_t block_bytes = std::size_t{128} << 10;
    return std::max<std::size_t>(1, block_bytes / std::max<std::size_t>(row_bytes, 1));
}

inline void check_product(ggml_type type, std::size_t weight_bytes, std::size_t rows, std::size_t cols, std::size_t x_size,
                          std::size_t y_size, std::size_t vectors, std::string_view context) {
    const std::string where = std::string(context) + " " + std::string(info(type).name);
    cogqat::detail::require_whole_blocks(type, cols, where + " (row length)");
    const std::size_t expected = rows * storage_size(type, cols);
    if (weight_bytes != expected)
        throw shape_error(where + ": " + std::to_string(rows) + " rows of " + std::to_string(cols) + " values take " +
                          std::to_string(expected) + " bytes, the matrix has " + std::to_string(weight_bytes));
    check_vectors(rows, cols, x_size, y_size, vectors, where);
}

}  // namespace detail

namespace detail {

template <class Split>
void gemv_over(ggml_type type, std::span<const std::byte> weights, std::size_t rows, std::size_t cols, std::span<const float> x,
               std::span<float> y, activation_mode mode, Split&& split) {
    check_product(type, weights.size(), rows, cols, x.size(), y.size(), 1, "gemv");
    encoded_activations a;
    encode_activations(type, mode, x, a);
    const row_dot dot(type, a, cols);
    const std::size_t row_bytes = storage_size(type, cols);
    split(
            rows,
            [&](std::size_t begin, std::size_t end) {
                std::vector<float> scratch;
                for (std::size_t r = begin; r < end; ++r) {
                    prefetch_ahead(weights.data() + r * row_bytes, row_bytes);
                    y[r] = dot(weights.subspan(r * row_bytes, row_bytes), scratch);
                }
            },
            std::size_t{64});
}

template <class Split>
void gemm_over(ggml_type type, std::span<const std::byte> weights, std::size_t rows, std::size_t cols, std::span<const float> x,
               std::size_t vectors, std::span<float> y, activation_mode mode, Split&& split) {
    check_product(type, weights.size(), rows, cols, x.size(), y.size(), vectors, "gemm");
    std::vector<encoded_activations> a(vectors);
    // A prompt's vectors are encoded on the threads too (quantizing them is a few percent of its products).
    split(
            vectors,
            [&](std::size_t begin, std::size_t end) {
                for (std::size_t v = begin; v < end; ++v) encode_activations(type, mode, x.subspan(v * cols, cols), a[v]);
            },
            std::size_t{8});
    std::vector<row_dot> dots;
    dots.reserve(vectors);
    for (std::size_t v = 0; v < vectors; ++v) dots.emplace_back(type, a[v], cols);
    // Each block of rows meets every vector while it is in L2, so the matrix comes from memory once per
    // batch; K-format rows are decoded once for up to 4 vectors and float rows go through register tiles
    // of rows × vectors, both bit-identical to one dot per row and vector.
    const bool floats = vectors > 0 && (a[0].type == ggml_type::f32 || a[0].type == ggml_type::f16 || a[0].type == ggml_type::bf16);
    const auto batch = !floats ? dispatch::kernels(type).dot_quantized_batch : nullptr;
    const auto float_block = floats ? dispatch::kernels(type).dot_float_block : nullptr;
    std::vector<const std::byte*> inputs(vectors);
    std::vector<const float*> float_inputs(vectors);
    for (std::size_t v = 0; v < vectors; ++v) inputs[v] = a[v].bytes.data(), float_inputs[v] = a[v].floats.data();
    const std::size_t row_bytes = storage_size(type, cols);
    const std::size_t block = rows_per_block(row_bytes), groups = (vectors + 3) / 4;
    split(
            rows,
            [&](std::size_t begin, std::size_t end) {
                std::vector<float> scratch;
                float out[4];
                // Rows r..r+tile against vectors v0..v0+count: the float tile kernel, the K formats' batch
                // kernel, or one dot per row and vector.
                const auto product = [&](std::size_t r, std::size_t tile, std::size_t v0, std::size_t count) {
                    const std::byte* row = weights.data() + r * row_bytes;
                    if (float_block) {
                        float_block(row, row_bytes, tile, float_inputs.data() + v0, count, cols, y.data() + v0 * rows + r, rows);
                        return;
                    }
                    for (std::size_t t = 0; t < tile; ++t, row += row_bytes) {
                        if (batch) {
                            batch(row, inputs.data() + v0, count, cols, out);
                            for (std::size_t v = 0; v < count; ++v) y[(v0 + v) * rows + r + t] = out[v];
                        } else {
                            for (std::size_t v = 0; v < count; ++v) y[(v0 + v) * rows + r + t] = dots[v0 + v]({row, row_bytes}, scratch);
                        }
                    }
                };
                if (groups == 1) {
                    // A few vectors: the matrix streams once, each row prefetched ahead of its product.
                    for (std::size_t r = begin; r < end; ++r) {
                        prefetch_ahead(weights.data() + r * row_bytes, row_bytes);
                        product(r, 1, 0, vectors);
                    }
                    return;
                }
                for (std::size_t first = begin; first < end; first += block) {
                    const std::size_t last = std::min(end, first + block), next_last = std::min(end, last + block);
                    for (std::size_t g = 0, v0 = 0; v0 < vectors; ++g, v0 += 4) {
                        if (float_block) prefetch_share(weights.data() + last * row_bytes, (next_last - last) * row_bytes, g, groups);
                        for (std::size_t r = first; r < last; r += 4) {
                            const std::size_t tile = std::min<std::size_t>(4, last - r);
                            if (g == 0 && !float_block) prefetch_ahead(weights.data() + r * row_bytes, tile * row_bytes);
                            product(r, tile, v0, std::min<std::size_t>(4, vectors - v0));
                        }
                    }
                }
            },
            64 / std::max<std::size_t>(vectors, 1) + 1);
}

}  // namespace detail

/// y = W·x: `weights` holds `rows` rows of `cols` values of `type`, one after another as GGUF stores a
/// matrix. With activation_mode::quantized, x is first quantized to activation_type_for(type) as llama.cpp's
/// CPU backend does. Rows are split over `threads` threads started for the call. Throws shape_error for
/// sizes that do not fit and value_error for a non-finite x.
inline void gemv(ggml_type type, std::span<const std::byte> weights, std::size_t rows, std::size_t cols, std::span<const float> x,
                 std::span<float> y, unsigned threads = 1, activation_mode mode = activation_mode::quantized) {
    detail::gemv_over(type, weights, rows, cols, x, y, mode,
                      [threads](std::size_t n, auto&& body, std::size_t grain) { parallel_for(n, threads, body, grain); });
}

/// As above, rows split over a pool's workers: for many products in a row (a model's, token by token).
inline void gemv(ggml_type type, std::span<const std::byte> weights, std::size_t rows, std::size_t cols, std::span<const float> x,
                 std::span<float> y, thread_pool& pool, activation_mode mode = activation_mode::quantized) {
    detail::gemv_over(type, weights, rows, cols, x, y, mode,
                      [&pool](std::size_t n, auto&& body, std::size_t grain) { pool.parallel_for(n, body, grain); });
}

/// Y = W·X for a few activation vectors at once (X: `vectors` rows of `cols`, Y: `vectors` rows of `rows`).
/// Each weight row is read once for all vectors, which is what makes prompt processing cheaper per token
/// than one gemv per token.
inline void gemm(ggml_type type, std::span<const std::byte> weights, std::size_t rows, std::size_t cols, std::span<const float> x,
                 std::size_t vectors, std::span<float> y, unsigned threads = 1, activation_mode mode = activation_mode::quantized) {
    detail::gemm_over(type, weights, rows, cols, x, vectors, y, mode,
                      [threads](std::size_t n, auto&& body, std::size_t grain) { parallel_for(n, threads, body, grain); });
}

/// As above, rows split over a pool's workers.
inline void gemm(ggml_type type, std::span<const std::byte> weights, std::size_t rows, std::size_t cols, std::span<const float> x,
                 std::size_t vectors, std::span<float> y, thread_pool& pool, activation_mode mode = activation_mode::quantized) {
    detail::gemm_over(type, weights, rows, cols, x, vectors, y, mode,
                      [&pool](std::size_t n, auto&& body, std::size_t grain) { pool.parallel_for(n, body, grain); });
}

}  // namespace simd
}  // namespace cogqat
