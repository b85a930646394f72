// The calibrators (calib/calibrators.hpp) on backend::Simd against their scalar reference, in the same run,
// on 1024 x 4096 floats (Laplace, with outliers), per tensor and per group of 128 (docs/PERFORMANCE.md).
//
//   build/bench/cogqat_bench_policy --benchmark_filter=calib
//
// calib/<calibrator>/<mode>/<granularity>  C::calibrate<BitWidth<4>, Granularity, Mode, Backend>(matrix)
// calib_kernel/{squared_error,histogram}     one pass of a kernel over the matrix
//
// Each iteration runs both backends, the first alternating; the reported time is Simd's (manual time) and
// vs_scalar is the median over iterations of scalar time / Simd time, so that a neighbour's load hits both
// halves of a pair. The two backends' ranges are compared first: a difference ends the benchmark with an error.
// of_bandwidth (the one-pass kernels): bytes read per second / a streaming read of a 256 MiB array.

#include <cogqat/calib/calibrator_arithmetic.hpp>
#include <cogqat/calib/calibrators.hpp>
#include <cogqat/core/policy.hpp>
#include <cogqat/core/tensor_view.hpp>
#include <cogqat/dispatch/kernel_table.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace {

using namespace cogqat;

constexpr std::size_t rows = 1024, cols = 4096;

const std::vector<float>& matrix() {
    static const std::vector<float> x = [] {
        std::mt19937_64 gen(2024);
        std::exponential_distribution<float> magnitude(1.0f);
        std::vector<float> v(rows * cols);
        for (std::size_t i = 0; i < v.size(); ++i) {
            const float m = magnitude(gen) * (i % 997 == 0 ? 30.0f : 1.0f);
            v[i] = (gen() & 1) ? m : -0.6f * m;  // skewed, so the asymmetric searches have two sides
        }
        return v;
    }();
    return x;
}

double seconds_of(auto&& f) {
    const auto start = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Times `scalar` and `simd` alternately each iteration; Simd's time is the benchmark's, vs_scalar their median ratio.
template <class Scalar, class Simd>
void side_by_side(benchmark::State& state, Scalar&& scalar, Simd&& simd) {
    std::vector<double> ratios;
    bool simd_first = false;
    for (auto _ : state) {
        double t_scalar = 0.0, t_simd = 0.0;
        if (simd_first) t_simd = seconds_of(simd);
        t_scalar = seconds_of(scalar);
        if (!simd_first) t_simd = seconds_of(simd);
        simd_first = !simd_first;
        state.SetIterationTime(t_simd);
        ratios.push_back(t_scalar / t_simd);
    }
    std::sort(ratios.begin(), ratios.end());
    if (!ratios.empty()) state.counters["vs_scalar"] = ratios[ratios.size() / 2];
}

template <class C, class Mode, class G>
void calibrate(benchmark::State& state) {
    const auto view = make_matrix_view(matrix().data(), rows, cols);
    std::vector<clip_range> a, b;
    const auto scalar = [&] {
        a = C::template calibrate<BitWidth<4>, G, Mode, backend::Scalar>(view);
        benchmark::DoNotOptimize(a.data());
    };
    const auto simd = [&] {
        b = C::template calibrate<BitWidth<4>, G, Mode, backend::Simd>(view);
        benchmark::DoNotOptimize(b.data());
    };
    scalar();
    simd();
    if (a != b) {
        state.SkipWithError("backend::Simd chose other ranges than backend::Scalar");
        return;
    }
    state.SetLabel(std::string(dispatch::active().isa));
    side_by_side(state, scalar, simd);
    benchmark::DoNotOptimize(b.data());
}

/// Streaming read bandwidth of this machine, bytes per second, measured once.
double read_bandwidth() {
    static const double bandwidth = [] {
        std::vector<float> big(64u << 20, 1.0f);
        double best = 0.0;
        for (int r = 0; r < 3; ++r) {
            float sum = 0.0f;
            const double t = seconds_of([&] {
                for (const float v : big) sum += v;
            });
            benchmark::DoNotOptimize(sum);
            best = std::max(best, static_cast<double>(big.size() * sizeof(float)) / t);
        }
        return best;
    }();
    return bandwidth;
}

void kernel_squared_error(benchmark::State& state) {
    const std::span<const float> x = matrix();
    const affine_params p{0.4f, 7};
    const auto& table = dispatch::active();
    if (!table.calibrator.squared_error) {
        state.SkipWithError("no SIMD table");
        return;
    }
    double a = 0.0, b = 0.0;
    const auto scalar = [&] {
        a = detail::calib::squared_error_reference(x, p, 0, 15);
        benchmark::DoNotOptimize(a);
    };
    const auto simd = [&] {
        b = table.calibrator.squared_error(x.data(), x.size(), p.scale, p.zero_point, 0, 15);
        benchmark::DoNotOptimize(b);
    };
    scalar();
    simd();
    if (a != b) {
        state.SkipWithError("the kernel's sum differs from the reference's");
        return;
    }
    state.SetLabel(std::string(table.isa));
    side_by_side(state, scalar, simd);
    state.counters["of_bandwidth"] = benchmark::Counter(static_cast<double>(x.size() * sizeof(float)) / read_bandwidth(),
                                                        benchmark::Counter::kIsIterationInvariantRate);
}

void kernel_histogram(benchmark::State& state) {
    const std::span<const float> x = matrix();
    const detail::calib::histogram_layout layout{-20.0, 2048.0 / 60.0, detail::calib::histogram_kind::offset};
    const auto& table = dispatch::active();
    if (!table.calibrator.histogram) {
        state.SkipWithError("no SIMD table");
        return;
    }
    std::vector<std::uint64_t> a(2048), b(2048);
    const auto scalar = [&] {
        detail::calib::histogram_reference(x, layout, a);
        benchmark::DoNotOptimize(a.data());
    };
    const auto simd = [&] { table.calibrator.histogram(x.data(), x.size(), layout.origin, layout.scale, 0, b.data(), b.size()); };
    scalar();
    simd();
    if (a != b) {
        state.SkipWithError("the kernel's counts differ from the reference's");
        return;
    }
    state.SetLabel(std::string(table.isa));
    side_by_side(state, scalar, simd);
    state.counters["of_bandwidth"] = benchmark::Counter(static_cast<double>(x.size() * sizeof(float)) / read_bandwidth(),
                                                        benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(calibrate<mse_optimal, Symmetric, PerTensor>)->Name("calib/mse_optimal/symmetric/per_tensor")->UseManualTime()->Iterations(3);
BENCHMARK(calibrate<mse_optimal, Asymmetric, PerTensor>)->Name("calib/mse_optimal/asymmetric/per_tensor")->UseManualTime()->Iterations(3);
BENCHMARK(calibrate<mse_optimal, Symmetric, PerGroup<128>>)
        ->Name("calib/mse_optimal/symmetric/per_group_128")
        ->UseManualTime()
        ->Iterations(3);
BENCHMARK(calibrate<mse_optimal, Asymmetric, PerGroup<128>>)
        ->Name("calib/mse_optimal/asymmetric/per_group_128")
        ->UseManualTime()
        ->Iterations(3);
BENCHMARK(calibrate<entropy_kl, Symmetric, PerTensor>)->Name("calib/entropy_kl/symmetric/per_tensor")->UseManualTime()->Iterations(5);
BENCHMARK(calibrate<entropy_kl, Asymmetric, PerTensor>)->Name("calib/entropy_kl/asymmetric/per_tensor")->UseManualTime()->Iterations(5);
BENCHMARK(calibrate<min_max, Asymmetric, PerGroup<128>>)->Name("calib/min_max/asymmetric/per_group_128")->UseManualTime()->Iterations(5);
BENCHMARK(calibrate<percentile<999>, Asymmetric, PerGroup<128>>)
        ->Name("calib/percentile/asymmetric/per_group_128")
        ->UseManualTime()
        ->Iterations(5);
BENCHMARK(kernel_squared_error)->Name("calib_kernel/squared_error")->UseManualTime()->Iterations(20);
BENCHMARK(kernel_histogram)->Name("calib_kernel/histogram")->UseManualTime()->Iterations(20);
