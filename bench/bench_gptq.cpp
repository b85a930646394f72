// GPTQ's costly parts at the widths of a 1.1B model (TinyLlama's shape: 2,048 wide, FFN 5,632): the second
// moments H = XᵀX of 4,096 input rows, the factor of H (gptq_factor: blocked Cholesky and triangular inverse),
// and the rows of a 2,048-row matrix through the lazy-batch column feedback, on two threads. Beside them, at
// 1,024 columns, the textbook factor (unblocked Cholesky, inverse, product, Cholesky again) that gptq_factor
// replaced. The rows' deferred updates and block-scale searches run on the active SIMD table's kernels
// (COGQAT_SIMD=scalar: the scalar loops, the same bytes). scale_search<format>/kernel:0 and /kernel:1 time one
// block's weighted scale search (search_block_scale), the reference and the active table's kernel, in
// ns_per_block. Run: build/bench/cogqat_bench_gptq

#include <cogqat/calib/second_moments.hpp>
#include <cogqat/core/random.hpp>
#include <cogqat/dispatch/kernel_table.hpp>
#include <cogqat/format/legacy_formats.hpp>
#include <cogqat/format/weighted_block_search.hpp>
#include <cogqat/quant/gptq.hpp>

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

constexpr unsigned threads = 2;

std::vector<float> gaussian(std::size_t n, std::uint64_t seed, float scale) {
    cogqat::xoshiro256 r(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = scale * static_cast<float>(r.gaussian());
    return v;
}

std::vector<double> hessian_of(std::size_t cols) { return cogqat::second_moments(gaussian(4096 * cols, 1, 1.0f), cols, threads); }

void second_moments(benchmark::State& state) {
    const auto cols = static_cast<std::size_t>(state.range(0));
    const auto x = gaussian(4096 * cols, 1, 1.0f);
    for (auto _ : state) benchmark::DoNotOptimize(cogqat::second_moments(x, cols, threads).data());
}

void factor(benchmark::State& state) {
    const auto cols = static_cast<std::size_t>(state.range(0));
    const auto h = hessian_of(cols);
    for (auto _ : state) benchmark::DoNotOptimize(cogqat::gptq_factor(h, cols, {0.01, threads}).upper().data());
}

/// The factor as it was computed before: four unblocked cubic passes with column-strided loops, one thread.
void textbook_factor(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto h = hessian_of(n);
    auto cholesky = [n](std::vector<double>& a) {
        for (std::size_t j = 0; j < n; ++j) {
            double d = a[j * n + j];
            for (std::size_t k = 0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
            d = std::sqrt(d);
            a[j * n + j] = d;
            for (std::size_t i = j + 1; i < n; ++i) {
                double s = a[i * n + j];
                for (std::size_t k = 0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
                a[i * n + j] = s / d;
            }
        }
    };
    for (auto _ : state) {
        auto l = h;
        for (std::size_t i = 0; i < n; ++i) l[i * n + i] *= 1.01;
        cholesky(l);
        std::vector<double> inverse_l(n * n, 0.0), inverse(n * n, 0.0);
        for (std::size_t j = 0; j < n; ++j) {
            inverse_l[j * n + j] = 1.0 / l[j * n + j];
            for (std::size_t i = j + 1; i < n; ++i) {
                double s = 0.0;
                for (std::size_t k = j; k < i; ++k) s -= l[i * n + k] * inverse_l[k * n + j];
                inverse_l[i * n + j] = s / l[i * n + i];
            }
        }
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j <= i; ++j) {
                double s = 0.0;
                for (std::size_t k = i; k < n; ++k) s += inverse_l[k * n + i] * inverse_l[k * n + j];
                inverse[i * n + j] = inverse[j * n + i] = s;
            }
        cholesky(inverse);
        benchmark::DoNotOptimize(inverse.data());
    }
}

void rows(benchmark::State& state) {
    const auto cols = static_cast<std::size_t>(state.range(0)), rows = std::size_t{2048};
    const cogqat::gptq_factor f(hessian_of(cols), cols, {0.01, threads});
    const auto w = gaussian(rows * cols, 2, 0.02f);
    for (auto _ : state) benchmark::DoNotOptimize(cogqat::gptq_quantize(cogqat::ggml_type::q4_0, w, rows, cols, f, {0.01, threads}).data());
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * rows));
}

/// One block's weighted scale search over 4,096 blocks of N(0, 0.02) weights under importances in [0.5, 1.5):
/// the reference (kernel:0) or the active table's kernel (kernel:1).
template <class F>
void scale_search(benchmark::State& state) {
    constexpr std::size_t blocks = 4096;
    const auto x = gaussian(blocks * F::block_size, 3, 0.02f);
    cogqat::xoshiro256 r(4);
    std::vector<float> importance(x.size());
    for (auto& w : importance) w = 0.5f + static_cast<float>(r.uniform());
    using search_fn = cogqat::affine_scale (*)(const float*, const float*);
    const search_fn search = state.range(0) ? cogqat::dispatch::kernels(F::type).search_block_scale : &cogqat::search_block_scale<F>;
    if (!search) {
        state.SkipWithError("the active SIMD table has no scale search kernel");
        return;
    }
    for (auto _ : state)
        for (std::size_t b = 0; b < blocks; ++b) {
            const cogqat::affine_scale s = search(x.data() + b * F::block_size, importance.data() + b * F::block_size);
            benchmark::DoNotOptimize(s);
        }
    state.counters["ns_per_block"] = benchmark::Counter(static_cast<double>(blocks) * 1e-9,
                                                        benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

}  // namespace

BENCHMARK_TEMPLATE(scale_search, cogqat::formats::q4_0)->ArgName("kernel")->Arg(0)->Arg(1);
BENCHMARK_TEMPLATE(scale_search, cogqat::formats::q4_1)->ArgName("kernel")->Arg(0)->Arg(1);
BENCHMARK_TEMPLATE(scale_search, cogqat::formats::q5_0)->ArgName("kernel")->Arg(0)->Arg(1);
BENCHMARK_TEMPLATE(scale_search, cogqat::formats::q5_1)->ArgName("kernel")->Arg(0)->Arg(1);
BENCHMARK_TEMPLATE(scale_search, cogqat::formats::q8_0)->ArgName("kernel")->Arg(0)->Arg(1);
BENCHMARK(second_moments)->Arg(2048)->Arg(5632)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();
BENCHMARK(factor)->Arg(1024)->Arg(2048)->Arg(5632)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();
BENCHMARK(textbook_factor)->Arg(1024)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();
BENCHMARK(rows)->Arg(2048)->Arg(5632)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

BENCHMARK_MAIN();
