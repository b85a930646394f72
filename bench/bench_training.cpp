// The training pass (model/llama_backward.hpp): one sequence of 128 tokens through forward and backward on a
// stories260K-shaped model (dim 64, FFN 192, 5 layers, 8/4 heads, vocab 512), for each member of the family:
// plain llama, llama with Llama 3's rope_freqs and linear scaling, qwen2 (biases), qwen3 (head norms, heads of
// 16 so that Q is 128 wide). Also one layer of a 1.1B model, and the step's three products at a 1.1B layer's
// and stories260K's widths in GFLOP/s, beside the machine's FMA peak measured in the same run.
// Run: build/bench/cogqat_bench_training

#include <cogqat/dispatch/kernel_table.hpp>
#include <cogqat/model/llama_backward.hpp>
#include <cogqat/model/llama_model.hpp>
#include <cogqat/model/synthetic.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fma_peak.hpp"

namespace {

using cogqat::model_architecture;

enum class member { llama, llama_rope_scaled, qwen2, qwen3 };

cogqat::llama_config config_of(member m) {
    cogqat::llama_config c{64, 192, 5, 8, 4, 512, 512};
    if (m == member::llama_rope_scaled) c.rope_factors = true, c.rope_freq_scale = 0.5f;
    if (m == member::qwen2) c.architecture = model_architecture::qwen2;
    if (m == member::qwen3) c.architecture = model_architecture::qwen3, c.head_dim = 16;
    return c;
}

void sequence_pass(benchmark::State& state, member m) {
    const auto c = config_of(m);
    auto weights = cogqat::make_synthetic_llama(3, c);
    for (auto& t : weights.tensors)
        if (t.name == "rope_freqs.weight")
            for (std::size_t i = 0; i < t.values.size(); ++i) t.values[i] = 1.0f + static_cast<float>(i);
    const auto p = cogqat::llama_parameters::from_model(cogqat::llama_model::from_weights(weights));
    std::vector<std::int32_t> tokens(128);
    for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<std::int32_t>((i * 37) % c.vocab_size);
    cogqat::llama_sequence_pass pass(c);
    auto grads = cogqat::llama_parameters::zeros_like(p);
    const std::vector<float> dlogits(tokens.size() * c.vocab_size, 1e-3f);
    for (auto _ : state) {
        benchmark::DoNotOptimize(pass.forward(p, tokens).data());
        pass.backward(p, dlogits, grads);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * tokens.size()));
}

/// One decoder layer of a 1.1B model (TinyLlama's shape: dim 2048, FFN 5632, 32 heads, 4 KV heads) through
/// forward and backward over 128 positions: block-wise QAT's step, per sequence.
void layer_pass_1b(benchmark::State& state) {
    const cogqat::llama_config c{2048, 5632, 1, 32, 4, 256, 128};
    const auto p = cogqat::llama_parameters::from_model(cogqat::llama_model::from_weights(cogqat::make_synthetic_llama(3, c)));
    auto grads = cogqat::llama_parameters::zeros_like(p);
    cogqat::llama_layer_pass pass(c);
    std::vector<float> x(128 * c.dim), dout(128 * c.dim, 1e-3f);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7919) % 101) / 50.0f - 1.0f;
    for (auto _ : state) {
        benchmark::DoNotOptimize(pass.forward(p.layers[0], p.rope_freqs, x).data());
        benchmark::DoNotOptimize(pass.backward(p.layers[0], dout, grads.layers[0]).data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * 128));
}

/// The machine's float FMA peak on one thread (bench/fma_peak.hpp), measured once per run.
double peak_gflops() {
    static const double peak = cogqat::bench::fma_peak_gflops();
    return peak;
}

void fma_peak(benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(peak_gflops());
    state.counters["GFLOP/s"] = peak_gflops();
}

enum class product { forward, input_gradient, weight_gradient };

/// One of the training step's three products over 128 positions, as the pass computes it on the SIMD table's
/// float product (simd/float_gemm.hpp): Y = X·Wᵀ (forward), dX += dY·W (input_gradient), dW += dYᵀ·X
/// (weight_gradient); GFLOP/s and the share of the FMA peak measured in the same run.
void training_product(benchmark::State& state) {
    namespace bw = cogqat::detail::backward;
    const auto kind = static_cast<product>(state.range(0));
    const std::size_t rows = 128, in = static_cast<std::size_t>(state.range(1)), out = static_cast<std::size_t>(state.range(2));
    std::vector<float> x(rows * in), w(out * in), y(rows * out);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 97) / 97.0f;
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 89) / 890.0f;
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<float>(i % 83) / 830.0f;
    const double peak = peak_gflops();
    for (auto _ : state) {
        switch (kind) {
            case product::forward:
                bw::matmul<float>(x, w, y, rows, in, out);
                break;
            case product::input_gradient:
                bw::matmul_backward_input<float>(y, w, x, rows, in, out);
                break;
            case product::weight_gradient:
                bw::matmul_backward_weight<float>(y, x, w, rows, in, out);
                break;
        }
        benchmark::ClobberMemory();
    }
    const double flops = 2.0 * static_cast<double>(rows * in * out) * static_cast<double>(state.iterations());
    state.counters["GFLOP/s"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
    if (peak > 0) state.counters["of_peak"] = benchmark::Counter(flops / 1e9 / peak, benchmark::Counter::kIsRate);
    state.SetLabel(std::string(cogqat::dispatch::active().isa));
}

}  // namespace

BENCHMARK(layer_pass_1b)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(fma_peak)->Iterations(1);
// The gate projection of a 1.1B layer (2048 in, 5632 out) and stories260K's (64 in, 192 out).
BENCHMARK(training_product)
        ->ArgNames({"product", "in", "out"})
        ->ArgsProduct({{0, 1, 2}, {2048}, {5632}})
        ->ArgsProduct({{0, 1, 2}, {64}, {192}})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();

BENCHMARK_CAPTURE(sequence_pass, llama, member::llama)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(sequence_pass, llama_rope_scaled, member::llama_rope_scaled)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(sequence_pass, qwen2, member::qwen2)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(sequence_pass, qwen3, member::qwen3)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
