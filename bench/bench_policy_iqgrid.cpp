// The grid i-quants (iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s, iq1_s, iq1_m) against ggml's own functions in one
// process (bench/ggml_baseline.hpp): quantizing a 64 x 4096 matrix with an importance matrix (identical bytes,
// checked before timing), decoding it, and dot products of its rows with q8_K activations. Ours are the scalar
// references (no SIMD versions yet); ggml's are ggml_quantize_chunk, to_float and the best CPU variant's vec_dot.
//
//   cogqat_bench_policy --benchmark_filter=iqgrid
//
// Counters: vs_ggml is the median over iterations of ggml's batch time / ours (> 1: ours is faster);
// values_per_second is ours. ggml's quantizer needs its maps built first (ggml_quantize_init, seconds per type),
// done once before timing; ours are built on first use, also before timing.

#include <cogqat/format/activation_quantize.hpp>
#include <cogqat/format/iq_quantize.hpp>
#include <cogqat/format/vec_dot.hpp>

#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "ggml_baseline.hpp"
#include "timing.hpp"

namespace {

using cogqat::ggml_type;
using cogqat::bench::median;
using cogqat::bench::time_calls;

constexpr std::size_t row_length = 4096, rows = 64;

struct workload {
    std::vector<float> values, importance, activations_f32;
    std::vector<std::byte> activations;
};

const workload& data() {
    static const workload w = [] {
        workload d;
        std::mt19937_64 rng(20);
        std::normal_distribution<float> normal(0.0f, 0.02f);
        std::uniform_real_distribution<float> uniform(0.0f, 2.0f);
        d.values.resize(row_length * rows);
        for (auto& v : d.values) v = normal(rng);
        d.importance.resize(row_length);
        for (auto& v : d.importance) v = uniform(rng) * uniform(rng);
        d.activations_f32.resize(row_length);
        for (auto& v : d.activations_f32) v = normal(rng) * 50.0f;
        d.activations.resize(cogqat::storage_size(ggml_type::q8_K, row_length));
        cogqat::quantize_activations(ggml_type::q8_K, d.activations_f32, d.activations);
        return d;
    }();
    return w;
}

// ggml_quantize_chunk with an importance matrix (the baseline's own entry passes none).
using quantize_chunk_fn = std::size_t (*)(int, const float*, void*, std::int64_t, std::int64_t, std::int64_t, const float*);
quantize_chunk_fn ggml_quantize_with_importance(const cogqat::bench::ggml_baseline& g) {
    void* base = dlopen((g.folder() / "libggml-base.so").c_str(), RTLD_NOW | RTLD_NOLOAD);
    return base ? reinterpret_cast<quantize_chunk_fn>(dlsym(base, "ggml_quantize_chunk")) : nullptr;
}

/// Times ours and ggml's in alternating batches (about 2 ms of ours each) and sets the counters.
template <class Ours, class Theirs>
void run_pair(benchmark::State& state, double values_per_call, Ours ours, Theirs theirs) {
    const double one = std::max(time_calls(ours, 1), 1e-9);
    theirs();
    const auto calls = static_cast<std::size_t>(std::clamp(2e-3 / one, 1.0, 1e6));
    std::vector<double> ratios;
    double ours_total = 0.0;
    for (auto _ : state) {
        const double t_ours = time_calls(ours, calls);
        const double t_theirs = time_calls(theirs, calls);
        state.SetIterationTime(t_ours);
        ours_total += t_ours;
        ratios.push_back(t_theirs / t_ours);
    }
    state.counters["vs_ggml"] = median(ratios);
    state.counters["values_per_second"] = values_per_call * static_cast<double>(calls * ratios.size()) / ours_total;
}

void quantize(benchmark::State& state, ggml_type type) {
    const auto& g = cogqat::bench::ggml_baseline::instance();
    const auto ggml_quantize = g.available() ? ggml_quantize_with_importance(g) : nullptr;
    if (!ggml_quantize) {
        state.SkipWithError(("ggml baseline absent: " + g.reason()).c_str());
        return;
    }
    const auto& d = data();
    std::vector<std::byte> ours(cogqat::storage_size(type, d.values.size())), theirs(ours.size());
    auto run_ours = [&] { cogqat::quantize_iq(type, d.values, row_length, ours, d.importance); };
    auto run_theirs = [&] {
        ggml_quantize(static_cast<int>(type), d.values.data(), theirs.data(), 0, static_cast<std::int64_t>(rows),
                      static_cast<std::int64_t>(row_length), d.importance.data());
    };
    run_ours();
    run_theirs();  // builds ggml's maps, outside the timed batches
    if (ours != theirs) {
        state.SkipWithError("our bytes differ from ggml's");
        return;
    }
    run_pair(state, static_cast<double>(d.values.size()), run_ours, run_theirs);
}

void dequantize(benchmark::State& state, ggml_type type) {
    const auto& g = cogqat::bench::ggml_baseline::instance();
    if (!g.available() || !g.has_to_float(type)) {
        state.SkipWithError("ggml baseline absent");
        return;
    }
    const auto& d = data();
    const auto bytes = cogqat::quantize_iq(type, d.values, row_length, d.importance);
    std::vector<float> ours(d.values.size()), theirs(d.values.size());
    run_pair(
            state, static_cast<double>(d.values.size()), [&] { cogqat::dequantize_iq(type, bytes, ours); },
            [&] { g.to_float(type, bytes.data(), theirs.data(), theirs.size()); });
}

void dot(benchmark::State& state, ggml_type type) {
    const auto& g = cogqat::bench::ggml_baseline::instance();
    if (!g.available() || !g.has_vec_dot(type) || g.vec_dot_type(type) != static_cast<std::uint32_t>(ggml_type::q8_K)) {
        state.SkipWithError("ggml baseline absent");
        return;
    }
    const auto& d = data();
    const auto bytes = cogqat::quantize_iq(type, d.values, row_length, d.importance);
    const std::size_t row_bytes = cogqat::storage_size(type, row_length);
    const auto reference = cogqat::quantized_dot_for(type);
    float sink = 0;
    run_pair(
            state, static_cast<double>(d.values.size()),
            [&] {
                for (std::size_t r = 0; r < rows; ++r)
                    sink += reference(std::span<const std::byte>(bytes).subspan(r * row_bytes, row_bytes), d.activations, row_length);
                benchmark::DoNotOptimize(sink);
            },
            [&] {
                for (std::size_t r = 0; r < rows; ++r)
                    sink += g.vec_dot(type, bytes.data() + r * row_bytes, d.activations.data(), row_length);
                benchmark::DoNotOptimize(sink);
            });
}

const int registered = [] {
    for (const auto type : {ggml_type::iq2_xxs, ggml_type::iq2_xs, ggml_type::iq2_s, ggml_type::iq3_xxs, ggml_type::iq3_s, ggml_type::iq1_s,
                            ggml_type::iq1_m}) {
        const std::string name(cogqat::info(type).name);
        benchmark::RegisterBenchmark(("iqgrid_quantize/" + name).c_str(), quantize, type)->UseManualTime()->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("iqgrid_dequantize/" + name).c_str(), dequantize, type)
                ->UseManualTime()
                ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("iqgrid_vec_dot_q8_K/" + name).c_str(), dot, type)->UseManualTime()->Unit(benchmark::kMillisecond);
    }
    return 0;
}();

}  // namespace
