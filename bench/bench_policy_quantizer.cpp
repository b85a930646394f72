// The generic quantizer<Bits, Granularity, Mode, Backend> on a 1024 x 4096 float matrix: backend::Scalar and
// backend::Simd side by side in one run, for bit widths 2 to 8, five granularities and both modes
// (docs/PERFORMANCE.md, "Generic quantizer").
//
//   build/bench/cogqat_bench_policy --benchmark_filter=quantizer [--benchmark_format=json --benchmark_out=FILE]
//
// Families:
//   quantizer/quantize/<bits>/<granularity>/<mode>        quantize(), one thread
//   quantizer/dequantize/<bits>/<granularity>/<mode>/tN   dequantize() into a row-major array on N threads
//
// Each iteration times one Scalar call and one Simd call, alternately first, so that a neighbour's load or
// a frequency change hits both halves of a pair. The benchmark's time is the Simd call's (manual time);
// counters:
//   vs_scalar     median over iterations of Scalar time / Simd time
//   scalar_ms     mean Scalar time of one call;  simd_ms: mean Simd time
//   of_bandwidth  (floats + codes moved) / Simd time / the copy probe's bandwidth on as many threads
//                 (bandwidth_probe.hpp, measured just before the benchmark)
// Before timing, Simd's codes, parameters and floats are checked against Scalar's; a difference ends that
// benchmark with an error.

#include "bandwidth_probe.hpp"

#include <cogqat/core/policy.hpp>
#include <cogqat/core/tensor_view.hpp>
#include <cogqat/dispatch/kernel_table.hpp>
#include <cogqat/quant/quantizer.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#include "timing.hpp"

namespace {

using namespace cogqat;

constexpr std::size_t rows = 1024, cols = 4096;

/// Weight-like values: Laplace with a few outliers, from splitmix64 so that every run quantizes the same
/// numbers.
const std::vector<float>& weights() {
    static const std::vector<float> w = [] {
        std::vector<float> v(rows * cols);
        std::uint64_t state = 20261206;
        auto uniform = [&] {
            std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            z ^= z >> 31;
            return (static_cast<double>(z >> 11) + 0.5) * 0x1p-53;
        };
        for (std::size_t i = 0; i < v.size(); ++i) {
            const double u = uniform() - 0.5;
            const double laplace = (u < 0 ? 1.0 : -1.0) * std::log(1.0 - 2.0 * std::fabs(u));
            v[i] = static_cast<float>(0.02 * laplace * (i % 509 == 7 ? 30.0 : 1.0));
        }
        return v;
    }();
    return w;
}

/// The copy probe's arrays, allocated and touched once.
struct probe_arrays {
    std::size_t bytes = bench::stream_bytes();
    std::unique_ptr<std::byte[]> src{new std::byte[bytes]}, dst{new std::byte[bytes]};
    probe_arrays() {
        std::memset(src.get(), 1, bytes);
        std::memset(dst.get(), 0, bytes);
    }
    static probe_arrays& get() {
        static probe_arrays a;
        return a;
    }
};

double copy_bandwidth(unsigned threads) {
    auto& a = probe_arrays::get();
    return bench::adjacent_bandwidth(bench::stream_kind::copy, a.src.get(), a.dst.get(), a.bytes, threads);
}

using steady = std::chrono::steady_clock;

template <class F>
double seconds(F&& f) {
    const auto start = steady::now();
    f();
    benchmark::ClobberMemory();
    return std::chrono::duration<double>(steady::now() - start).count();
}

using cogqat::bench::median;

/// Times `scalar` and `simd` alternately and sets the counters; `bytes` is what one call reads and writes.
template <class Scalar, class Simd>
void run_pair(benchmark::State& state, Scalar&& scalar, Simd&& simd, double bytes, double bandwidth) {
    scalar();  // warm-up: first-touch page faults and the dispatch table's choice
    simd();
    std::vector<double> ratios;
    double scalar_total = 0.0, simd_total = 0.0;
    std::size_t iteration = 0;
    for (auto _ : state) {
        double t_scalar = 0.0, t_simd = 0.0;
        if (iteration++ % 2 == 0) {
            t_scalar = seconds(scalar);
            t_simd = seconds(simd);
        } else {
            t_simd = seconds(simd);
            t_scalar = seconds(scalar);
        }
        state.SetIterationTime(t_simd);
        scalar_total += t_scalar;
        simd_total += t_simd;
        ratios.push_back(t_scalar / t_simd);
    }
    const auto n = static_cast<double>(state.iterations());
    state.SetBytesProcessed(static_cast<std::int64_t>(n * bytes));
    state.counters["vs_scalar"] = median(ratios);
    state.counters["scalar_ms"] = scalar_total / n * 1e3;
    state.counters["simd_ms"] = simd_total / n * 1e3;
    state.counters["of_bandwidth"] = bytes * n / simd_total / bandwidth;
    state.counters["bandwidth"] = bandwidth;
    state.SetLabel(std::string(dispatch::active().isa));
}

template <int N, class G, class Mode, class B>
using quantizer_of = quantizer<BitWidth<N>, G, Mode, B>;

template <int N, class G, class Mode>
constexpr double bytes_per_call() {
    return static_cast<double>(rows * cols) * (sizeof(float) + sizeof(typename BitWidth<N>::code_type));
}

template <int N, class G, class Mode>
void bench_quantize(benchmark::State& state) {
    using scalar = quantizer_of<N, G, Mode, backend::Scalar>;
    using simd = quantizer_of<N, G, Mode, backend::Simd>;
    const auto x = make_matrix_view(weights().data(), rows, cols);
    if (!(scalar::quantize(x) == simd::quantize(x))) return state.SkipWithError("Simd's tensor differs from Scalar's");
    const double bandwidth = copy_bandwidth(1);
    run_pair(
            state, [&] { benchmark::DoNotOptimize(scalar::quantize(x)); }, [&] { benchmark::DoNotOptimize(simd::quantize(x)); },
            bytes_per_call<N, G, Mode>(), bandwidth);
}

template <int N, class G, class Mode>
void bench_dequantize(benchmark::State& state, unsigned threads) {
    using scalar = quantizer_of<N, G, Mode, backend::Scalar>;
    using simd = quantizer_of<N, G, Mode, backend::Simd>;
    const auto q = scalar::quantize(make_matrix_view(weights().data(), rows, cols));
    std::vector<float> out(q.size()), expected = scalar::dequantize(q);
    simd::dequantize(q, std::span<float>(out), threads);
    if (std::memcmp(out.data(), expected.data(), out.size() * sizeof(float)) != 0)
        return state.SkipWithError("Simd's floats differ from Scalar's");
    const double bandwidth = copy_bandwidth(threads);
    run_pair(
            state, [&] { scalar::dequantize(q, std::span<float>(out), threads); },
            [&] { simd::dequantize(q, std::span<float>(out), threads); }, bytes_per_call<N, G, Mode>(), bandwidth);
    state.counters["threads"] = threads;
}

template <int N, class G, class Mode>
void register_combination(std::string_view granularity) {
    const std::string name = std::to_string(N) + "/" + std::string(granularity) + "/" + std::string(Mode::name);
    benchmark::RegisterBenchmark(("quantizer/quantize/" + name).c_str(), bench_quantize<N, G, Mode>)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond)
            ->MinTime(0.1);
    for (const unsigned threads : {1u, 2u})
        benchmark::RegisterBenchmark(("quantizer/dequantize/" + name + "/t" + std::to_string(threads)).c_str(),
                                     bench_dequantize<N, G, Mode>, threads)
                ->UseManualTime()
                ->Unit(benchmark::kMillisecond)
                ->MinTime(0.1);
}

template <class G, int... N>
void register_widths(std::string_view granularity, std::integer_sequence<int, N...>) {
    (register_combination<N, G, Symmetric>(granularity), ...);
    (register_combination<N, G, Asymmetric>(granularity), ...);
}

const bool registered = [] {
    using widths = std::integer_sequence<int, 2, 3, 4, 5, 6, 7, 8>;
    register_widths<PerTensor>("per_tensor", widths{});
    register_widths<PerRow>("per_row", widths{});
    register_widths<PerGroup<32>>("group32", widths{});
    register_widths<PerGroup<128>>("group128", widths{});
    register_widths<SuperBlock<256, 32>>("super256_32", widths{});
    return true;
}();

}  // namespace
