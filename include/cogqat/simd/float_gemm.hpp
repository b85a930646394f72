#pragma once
// Float matrix products, C = A·B or C += A·B, over strided views: the training step's products (X·Wᵀ, dY·W,
// dYᵀ·X) and any user's. The active SIMD table's kernel runs them (simd/isa/float_gemm.hpp), else the scalar
// reference here. The result is defined element by element, not by a blocking: C[i][j] takes A(i, p) B(p, j)
// for p = 0, 1, ... k - 1 in order, each a fused multiply-add on a set with FMA, so every kernel is the
// reference of its kind bit for bit, and a row's values do not depend on the other rows, the tiling, or how
// the caller splits the rows over threads.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>

#include "cogqat/core/error.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/core/tensor_view.hpp"
#include "cogqat/dispatch/kernel_table.hpp"

namespace cogqat {

/// Whether a product replaces C or adds to it.
enum class gemm_mode {
    overwrite,   ///< C = A·B
    accumulate,  ///< C += A·B
};

namespace simd {

COGQAT_STRICT_FP_BEGIN

/// The products' scalar reference: for each C[i][j], from 0 (or C[i][j] when accumulating), p = 0 .. k - 1 in
/// ascending order, c = fma(A(i, p), B(p, j), c) when `Fused`, else c = c + A(i, p) B(p, j) with the product
/// rounded first. Strides in elements, as dispatch::f32_product; any floating-point Real (the trainer's
/// gradient checks run it in double). B is read through a copied strip of reference_strip_width columns, so a
/// transposed B is read along its rows and the innermost loop runs over adjacent columns, which the compiler
/// may put on vector lanes (each lane is one element's own chain, in the same order): the fallback of a
/// program that links no kernels stays usable. The order of each element's terms is the loop's above either way.
inline constexpr std::size_t reference_strip_width = 64, reference_strip_depth = 128;

template <bool Fused, class Real>
void gemm_reference(std::size_t m, std::size_t n, std::size_t k, const Real* a, std::size_t a_row, std::size_t a_col, const Real* b,
                    std::size_t b_row, std::size_t b_col, Real* c, std::size_t c_row, bool accumulate) noexcept {
    if (!accumulate)
        for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = 0; j < n; ++j) c[i * c_row + j] = Real(0);
    Real strip[reference_strip_depth * reference_strip_width];
    for (std::size_t p0 = 0; p0 < k; p0 += reference_strip_depth) {
        const std::size_t depth = std::min(reference_strip_depth, k - p0);
        for (std::size_t j0 = 0; j0 < n; j0 += reference_strip_width) {
            const std::size_t cols = std::min(reference_strip_width, n - j0);
            for (std::size_t j = 0; j < cols; ++j)
                for (std::size_t p = 0; p < depth; ++p) strip[p * reference_strip_width + j] = b[(p0 + p) * b_row + (j0 + j) * b_col];
            for (std::size_t i = 0; i < m; ++i) {
                Real* ci = c + i * c_row + j0;
                for (std::size_t p = 0; p < depth; ++p) {
                    const Real aip = a[i * a_row + (p0 + p) * a_col];
                    const Real* bp = strip + p * reference_strip_width;
                    for (std::size_t j = 0; j < cols; ++j) {
                        if constexpr (Fused)
                            ci[j] = std::fma(aip, bp[j], ci[j]);
                        else
                            ci[j] = ci[j] + aip * bp[j];
                    }
                }
            }
        }
    }
}

COGQAT_STRICT_FP_END

/// The reference on the kernel's operands.
template <bool Fused>
void gemm_reference(const dispatch::f32_product& q) noexcept {
    gemm_reference<Fused>(q.m, q.n, q.k, q.a, q.a_row, q.a_col, q.b, q.b_row, q.b_col, q.c, q.c_row, q.accumulate);
}

/// The active SIMD table's float product, else the unfused reference.
[[nodiscard]] inline auto gemm_kernel() {
    const auto kernel = dispatch::active().matrix.gemm_f32;
    return kernel ? kernel : &gemm_reference<false>;
}

namespace detail {

/// One past the last element a view reaches, for the overlap check.
template <class T>
[[nodiscard]] const float* view_end(const matrix_view<T>& v) noexcept {
    return v.data() + (v.extent(0) - 1) * v.stride(0) + (v.extent(1) - 1) * v.stride(1) + 1;
}

template <class T>
[[nodiscard]] bool overlaps(const matrix_view<T>& v, const matrix_view<float>& c) noexcept {
    return v.data() < view_end(c) && c.data() < view_end(v);
}

}  // namespace detail

/// C = A·B (gemm_mode::overwrite) or C += A·B (accumulate): A is m x k, B k x n, C m x n, each any strided view
/// (a transpose is a view with its strides swapped: transposed()), C's columns adjacent. Runs on the calling
/// thread. Throws shape_error for extents that do not chain or a C whose columns are not adjacent, and
/// invalid_argument_error where C shares memory with A or B.
///
///     std::vector<float> x(rows * in), w(out * in), y(rows * out);
///     cogqat::simd::float_gemm(cogqat::make_matrix_view<const float>(x.data(), rows, in),
///                              cogqat::transposed(cogqat::make_matrix_view<const float>(w.data(), out, in)),
///                              cogqat::make_matrix_view(y.data(), rows, out));  // Y = X·Wᵀ
inline void float_gemm(matrix_view<const float> a, matrix_view<const float> b, matrix_view<float> c,
                       gemm_mode mode = gemm_mode::overwrite) {
    const auto shape = [](const auto& v) { return std::to_string(v.extent(0)) + " x " + std::to_string(v.extent(1)); };
    if (a.extent(1) != b.extent(0) || c.extent(0) != a.extent(0) || c.extent(1) != b.extent(1))
        throw shape_error("float_gemm: A (" + shape(a) + ") times B (" + shape(b) + ") does not give C (" + shape(c) + ")");
    if (c.extent(1) > 1 && c.stride(1) != 1)
        throw shape_error("float_gemm: C's columns are " + std::to_string(c.stride(1)) + " floats apart; they must be adjacent");
    if (c.empty()) return;
    if ((!a.empty() && detail::overlaps(a, c)) || (!b.empty() && detail::overlaps(b, c)))
        throw invalid_argument_error("float_gemm: C shares memory with " + std::string(detail::overlaps(a, c) ? "A" : "B"));
    const dispatch::f32_product q{a.extent(0), b.extent(1), a.extent(1), a.data(), a.stride(0), a.stride(1),
                                  b.data(),    b.stride(0), b.stride(1), c.data(), c.stride(0), mode == gemm_mode::accumulate};
    gemm_kernel()(q);
}

}  // namespace simd
}  // namespace cogqat
