// Reference quantize and dequantize throughput per GGUF format, in MB/s of float32 data (Google Benchmark's
// bytes_per_second counts the float side in both directions). Run: build/bench/cogqat_bench_formats

#include <cogqat/cogqat.hpp>

#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

namespace {

std::vector<float> gaussian(std::size_t n) {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = normal(rng);
    return v;
}

constexpr std::size_t values_per_run = 64 * 1024;

void quantize_reference(benchmark::State& state, cogqat::ggml_type type) {
    const auto x = gaussian(values_per_run);
    std::vector<std::byte> out(cogqat::storage_size(type, x.size()));
    for (auto _ : state) {
        cogqat::quantize(type, x, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * x.size() * sizeof(float)));
}

void dequantize_reference(benchmark::State& state, cogqat::ggml_type type) {
    const auto x = gaussian(values_per_run);
    const auto blocks = cogqat::quantize(type, x);
    std::vector<float> y(x.size());
    for (auto _ : state) {
        cogqat::dequantize(type, blocks, y);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * y.size() * sizeof(float)));
}

int register_all() {
    for (const auto& t : cogqat::type_table) {
        if (!t.quantizable || t.block_size == 1) continue;
        benchmark::RegisterBenchmark(("quantize_ref/" + std::string(t.name)).c_str(), quantize_reference, t.type);
        benchmark::RegisterBenchmark(("dequantize_ref/" + std::string(t.name)).c_str(), dequantize_reference, t.type);
    }
    return 0;
}
const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
