// GPTQ's deferred-update kernel (dispatch::matrix_kernels::rank_update_f64) of every instruction set this
// machine runs against its scalar reference (quant/gptq.hpp), bit for bit: row counts across the kernels'
// tiles of four, column ranges with tails of every register width, j ranges up to and past the kernels'
// strips of 128, strides wider than the ranges. The inputs are ones where a fused multiply-subtract gives
// other bits, so a kernel that GCC contracted into FMAs fails here.

#include <cogqat/dispatch/kernel_table.hpp>
#include <cogqat/quant/gptq.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "linked_isas.hpp"
#include "random_data.hpp"
#include "same_bits.hpp"

using namespace cogqat;

namespace rank_update_tests {

using kernel_fn = decltype(dispatch::matrix_kernels::rank_update_f64);

/// Values over several orders of magnitude, of both signs.
std::vector<double> spread_values(std::size_t n, std::uint64_t seed) { return test::spread_values<double>(n, seed, -10, 21); }

/// One problem: w is rows x w_stride, e rows x e_stride, u (j1 + 2) x u_stride, every stride past its range.
struct problem {
    std::size_t rows, j0, j1, k0, k1;
    std::size_t w_stride = k1 + 5, e_stride = j1 - j0 + 3, u_stride = k1 + 7;
    std::vector<double> w, e, u;

    problem(std::size_t rows_, std::size_t j0_, std::size_t j1_, std::size_t k0_, std::size_t k1_, std::uint64_t seed)
            : rows(rows_),
              j0(j0_),
              j1(j1_),
              k0(k0_),
              k1(k1_),
              w(spread_values(rows * w_stride, seed)),
              e(spread_values(rows * e_stride, seed + 1)),
              u(spread_values((j1 + 2) * u_stride, seed + 2)) {}

    /// w after `update`, padding included: what lies outside the rows and [k0, k1) must come back untouched.
    [[nodiscard]] std::vector<double> run(kernel_fn update) const {
        std::vector<double> out = w;
        update(out.data(), w_stride, rows, e.data(), e_stride, u.data(), u_stride, j0, j1, k0, k1);
        return out;
    }

    /// The reference's loop with each multiply-subtract fused: differs from it on these inputs.
    [[nodiscard]] std::vector<double> fused() const {
        std::vector<double> out = w;
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t k = k0; k < k1; ++k)
                for (std::size_t j = j0; j < j1; ++j)
                    out[r * w_stride + k] = std::fma(-e[r * e_stride + j - j0], u[j * u_stride + k], out[r * w_stride + k]);
        return out;
    }
};

/// The problem's result from every kernel in `kernels` (one per instruction set), against the reference.
void check_kernels(const std::vector<std::pair<std::string_view, kernel_fn>>& kernels, const problem& p) {
    CAPTURE(p.rows);
    CAPTURE(p.j0);
    CAPTURE(p.j1);
    CAPTURE(p.k0);
    CAPTURE(p.k1);
    const auto want = p.run(&detail::rank_update_reference);
    for (const auto& entry : kernels) {
        CAPTURE(std::string(entry.first));
        const auto got = p.run(entry.second);
        INFO("first difference at " << test::first_difference<double>(want, got));
        CHECK(test::same_bits<double>(want, got));
    }
}

constexpr std::size_t column_counts[] = {0, 1, 2, 3, 5, 7, 8, 9, 12, 15, 16, 17, 23, 24, 31, 32, 33, 47, 63, 64, 65, 97, 129, 256, 261};
constexpr std::size_t depths[] = {1, 2, 3, 4, 7, 31, 64, 127, 128, 129, 130};

}  // namespace rank_update_tests

TEST_CASE("rank update: every instruction set's kernel is the scalar reference, bit for bit") {
    using namespace rank_update_tests;
    const auto isas = test::simd_isas();
#if defined(__x86_64__)
    // A build that lost the kernel would otherwise pass every comparison below vacuously.
    for (const std::string_view name : {"sse4.2", "avx2", "avx512", "avx512_vnni"})
        if (dispatch::cpu_supports(name) && test::meant_to_link(name)) {
            CAPTURE(std::string(name));
            CHECK(static_cast<bool>(dispatch::table_for(name).matrix.rank_update_f64));
        }
#endif
    // The inputs tell a fused multiply-subtract from the reference's two roundings.
    const problem sensitive(5, 3, 70, 2, 40, 7);
    CHECK_FALSE(test::same_bits<double>(sensitive.run(&detail::rank_update_reference), sensitive.fused()));

    std::vector<std::pair<std::string_view, kernel_fn>> kernels;
    for (const auto isa : isas) {
        CAPTURE(std::string(isa));
        const kernel_fn kernel = dispatch::table_for(isa).matrix.rank_update_f64;
        REQUIRE(static_cast<bool>(kernel));
        kernels.emplace_back(isa, kernel);
    }
    // Every row count from 1 to 33 (whole tiles of four and each remainder), each with its own column and j
    // ranges.
    for (std::size_t rows = 1; rows <= 33; ++rows) {
        const std::size_t columns = column_counts[(rows * 7) % std::size(column_counts)];
        const std::size_t depth = depths[(rows * 5) % std::size(depths)];
        const std::size_t k0 = rows % 4, j0 = rows % 3;
        check_kernels(kernels, problem(rows, j0, j0 + depth, k0, k0 + columns, 100 + rows));
    }
    // Every column count (each register width's tails) against every depth, on a tile and a remainder.
    for (const std::size_t rows : {3u, 4u})
        for (const std::size_t columns : column_counts)
            for (const std::size_t depth : depths)
                check_kernels(kernels, problem(rows, 1, 1 + depth, 3, 3 + columns, 1000 * rows + 10 * columns + depth));
    // GPTQ's own shape: a panel of 32 rows, a block of 128 j, the columns past it.
    check_kernels(kernels, problem(32, 128, 256, 256, 1000, 5));
}
