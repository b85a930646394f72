// The float product kernels (dispatch::matrix_kernels::gemm_f32) of every instruction set this machine runs
// against the scalar reference (simd/float_gemm.hpp), bit for bit: the fused reference for the sets with FMA,
// the unfused one for SSE, over row counts across the tiles of four, column counts with tails of every
// register width, depths up to and past the strips of 128, A and B stored either way round, C overwritten and
// accumulated, strides wider than the extents. The inputs tell a fused multiply-add from an unfused one, so a
// kernel of the wrong kind (or one GCC contracted) fails here. Then simd::float_gemm's own contract: the
// reference's accuracy against long double, its shape and overlap errors, and a row's values independent of
// the rows around it.

#include <cogqat/core/error.hpp>
#include <cogqat/core/tensor_view.hpp>
#include <cogqat/dispatch/kernel_table.hpp>
#include <cogqat/simd/float_gemm.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "linked_isas.hpp"
#include "random_data.hpp"
#include "same_bits.hpp"

using namespace cogqat;

namespace float_gemm_tests {

using kernel_fn = decltype(dispatch::matrix_kernels::gemm_f32);

/// Values over several orders of magnitude, of both signs.
std::vector<float> spread_values(std::size_t n, std::uint64_t seed) { return test::spread_values<float>(n, seed, -6, 13); }

/// One product: A stored m x k (or k x m, transposed), B k x n (or n x k), C m x n in rows c_row >= n apart.
struct problem {
    std::size_t m, n, k;
    bool a_transposed, b_transposed, accumulate;
    std::size_t a_stride = (a_transposed ? m : k) + 3, b_stride = (b_transposed ? k : n) + 5, c_row = n + 7;
    std::vector<float> a, b, c;

    problem(std::size_t m_, std::size_t n_, std::size_t k_, bool at, bool bt, bool acc, std::uint64_t seed)
            : m(m_),
              n(n_),
              k(k_),
              a_transposed(at),
              b_transposed(bt),
              accumulate(acc),
              a(spread_values((a_transposed ? k : m) * a_stride + 1, seed)),
              b(spread_values((b_transposed ? n : k) * b_stride + 1, seed + 1)),
              c(spread_values(m * c_row + 1, seed + 2)) {}

    [[nodiscard]] dispatch::f32_product operands(float* out) const {
        return {m,
                n,
                k,
                a.data(),
                a_transposed ? 1 : a_stride,
                a_transposed ? a_stride : 1,
                b.data(),
                b_transposed ? 1 : b_stride,
                b_transposed ? b_stride : 1,
                out,
                c_row,
                accumulate};
    }

    /// C after `kernel`, padding included: what lies past each row's n columns must come back untouched.
    [[nodiscard]] std::vector<float> run(kernel_fn kernel) const {
        std::vector<float> out = c;
        kernel(operands(out.data()));
        return out;
    }
};

struct isa_kernel {
    std::string_view isa;
    kernel_fn kernel;
    bool fused;
};

void check_kernels(const std::vector<isa_kernel>& kernels, const problem& p) {
    const std::string what = std::to_string(p.m) + " x " + std::to_string(p.n) + " x " + std::to_string(p.k) +
                             (p.a_transposed ? ", Aᵀ" : "") + (p.b_transposed ? ", Bᵀ" : "") + (p.accumulate ? ", +=" : "");
    CAPTURE(what);
    const auto fused = p.run(&simd::gemm_reference<true>), unfused = p.run(&simd::gemm_reference<false>);
    for (const auto& entry : kernels) {
        CAPTURE(std::string(entry.isa));
        const auto& want = entry.fused ? fused : unfused;
        const auto got = p.run(entry.kernel);
        INFO("first difference at " << test::first_difference<float>(want, got));
        CHECK(test::same_bits<float>(want, got));
    }
}

constexpr std::size_t row_counts[] = {1, 2, 3, 4, 5, 7, 8, 9};
constexpr std::size_t column_counts[] = {1, 3, 8, 15, 16, 17, 31, 33, 48, 63, 64, 65, 97, 129};
constexpr std::size_t depths[] = {0, 1, 2, 7, 64, 127, 128, 129, 300};

}  // namespace float_gemm_tests

TEST_CASE("float gemm: every instruction set's kernel is the reference of its kind, bit for bit") {
    using namespace float_gemm_tests;
#if defined(__x86_64__)
    // A build that lost the kernel would otherwise pass every comparison below vacuously.
    for (const std::string_view name : {"sse4.2", "avx2", "avx512", "avx512_vnni"})
        if (dispatch::cpu_supports(name) && test::meant_to_link(name)) {
            CAPTURE(std::string(name));
            CHECK(static_cast<bool>(dispatch::table_for(name).matrix.gemm_f32));
            CHECK(dispatch::table_for(name).matrix.gemm_f32_fused == (name != "sse4.2"));
        }
#endif
    // The inputs tell the fused reference from the unfused one.
    const problem sensitive(5, 17, 70, false, false, true, 7);
    CHECK_FALSE(test::same_bits<float>(sensitive.run(&simd::gemm_reference<true>), sensitive.run(&simd::gemm_reference<false>)));

    std::vector<isa_kernel> kernels;
    for (const auto isa : test::simd_isas()) {
        const auto& table = dispatch::table_for(isa);
        if (table.matrix.gemm_f32) kernels.push_back({isa, table.matrix.gemm_f32, table.matrix.gemm_f32_fused});
    }
    std::uint64_t seed = 100;
    for (const std::size_t m : row_counts)
        for (const std::size_t n : column_counts) check_kernels(kernels, problem(m, n, 19, false, true, false, seed++));
    for (const std::size_t k : depths)
        for (const bool at : {false, true})
            for (const bool bt : {false, true})
                for (const bool acc : {false, true}) check_kernels(kernels, problem(5, 33, k, at, bt, acc, seed++));
    for (const std::size_t n : {std::size_t{1}, std::size_t{17}, std::size_t{65}})
        for (const std::size_t k : {std::size_t{1}, std::size_t{129}}) check_kernels(kernels, problem(9, n, k, true, false, true, seed++));
}

TEST_CASE("float gemm: the reference is within the bound of k products' rounding; a transposed view is read in place") {
    using namespace float_gemm_tests;
    const std::size_t m = 6, n = 21, k = 150;
    const auto a = spread_values(m * k, 1), b = spread_values(n * k, 2);  // B stored n x k: used as its transpose
    std::vector<float> c(m * n);
    simd::float_gemm(make_matrix_view(a.data(), m, k), transposed(make_matrix_view(b.data(), n, k)), make_matrix_view(c.data(), m, n));
    // |computed - exact| <= γ_k Σ|a||b|, γ_k = k u / (1 - k u): Higham's bound for any order of k roundings.
    const double u = std::numeric_limits<float>::epsilon() / 2, gamma = k * u / (1 - k * u);
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            long double exact = 0, magnitude = 0;
            for (std::size_t p = 0; p < k; ++p) {
                exact += static_cast<long double>(a[i * k + p]) * b[j * k + p];
                magnitude += std::fabs(static_cast<long double>(a[i * k + p]) * b[j * k + p]);
            }
            CHECK(std::fabs(static_cast<long double>(c[i * n + j]) - exact) <= gamma * magnitude);
        }
}

TEST_CASE("float gemm: a row's values are the same whatever rows are multiplied with it") {
    using namespace float_gemm_tests;
    const std::size_t m = 11, n = 70, k = 200;
    const auto a = spread_values(m * k, 3), b = spread_values(k * n, 4);
    std::vector<float> all(m * n), one(n);
    simd::float_gemm(make_matrix_view(a.data(), m, k), make_matrix_view(b.data(), k, n), make_matrix_view(all.data(), m, n));
    for (std::size_t i = 0; i < m; ++i) {
        CAPTURE(i);
        simd::float_gemm(make_matrix_view(a.data() + i * k, 1, k), make_matrix_view(b.data(), k, n), make_matrix_view(one.data(), 1, n));
        CHECK(std::memcmp(one.data(), all.data() + i * n, n * sizeof(float)) == 0);
    }
}

TEST_CASE("float gemm: extents that do not chain, C's columns apart, and C over A or B are refused") {
    std::vector<float> a(12, 1.0f), b(12, 1.0f), c(16, 0.0f);
    const auto a34 = make_matrix_view<const float>(a.data(), 3, 4), b43 = make_matrix_view<const float>(b.data(), 4, 3);
    CHECK_THROWS_WITH_AS(simd::float_gemm(a34, transposed(b43), make_matrix_view(c.data(), 3, 4)),
                         doctest::Contains("A (3 x 4) times B (3 x 4) does not give C (3 x 4)"), shape_error);
    CHECK_THROWS_WITH_AS(simd::float_gemm(a34, b43, make_matrix_view(c.data(), 3, 4)), doctest::Contains("does not give C (3 x 4)"),
                         shape_error);
    CHECK_THROWS_WITH_AS(simd::float_gemm(a34, b43, transposed(make_matrix_view(c.data(), 3, 3))),
                         doctest::Contains("C's columns are 3 floats apart"), shape_error);
    CHECK_THROWS_WITH_AS(simd::float_gemm(make_matrix_view<const float>(c.data(), 3, 4), b43, make_matrix_view(c.data() + 4, 3, 3)),
                         doctest::Contains("C shares memory with A"), invalid_argument_error);
    CHECK_THROWS_WITH_AS(simd::float_gemm(a34, make_matrix_view<const float>(c.data() + 4, 4, 2), make_matrix_view(c.data(), 3, 2)),
                         doctest::Contains("C shares memory with B"), invalid_argument_error);
    // Empty extents are products too: k = 0 overwrites C with zeros, accumulating leaves it.
    std::vector<float> d(6, 5.0f);
    simd::float_gemm(make_matrix_view<const float>(a.data(), 2, 0), make_matrix_view<const float>(b.data(), 0, 3),
                     make_matrix_view(d.data(), 2, 3), gemm_mode::accumulate);
    CHECK(d == std::vector<float>(6, 5.0f));
    simd::float_gemm(make_matrix_view<const float>(a.data(), 2, 0), make_matrix_view<const float>(b.data(), 0, 3),
                     make_matrix_view(d.data(), 2, 3));
    CHECK(d == std::vector<float>(6, 0.0f));
}
