// The training pass (model/llama_backward.hpp): one sequence of 128 tokens through forward and backward on a
// stories260K-shaped model (dim 64, FFN 192, 5 layers, 8/4 heads, vocab 512), for each member of the family:
// plain llama, llama with Llama 3's rope_freqs and linear scaling, qwen2 (biases), qwen3 (head norms, heads of
// 16 so that Q is 128 wide). Also one layer of a 1.1B model, and its largest product blocked and not.
// Run: build/bench/cogqat_bench_training

#include <cogqat/model/llama_backward.hpp>
#include <cogqat/model/llama_model.hpp>
#include <cogqat/model/synthetic.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

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

/// The gate projection's product (128 x 2048 times 5632 x 2048 transposed) as the training pass computes it,
/// W's rows blocked in cache, beside the same dot products taken one position at a time (each position reads
/// all of W from memory): what the blocking buys at this size.
void gate_product(benchmark::State& state) {
    const std::size_t rows = 128, in = static_cast<std::size_t>(state.range(1)), out = static_cast<std::size_t>(state.range(2));
    std::vector<float> x(rows * in), w(out * in), y(rows * out);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 97) / 97.0f;
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 89) / 890.0f;
    const bool blocked = state.range(0) != 0;
    for (auto _ : state) {
        if (blocked) {
            cogqat::detail::backward::matmul<float>(x, w, y, rows, in, out);
        } else {
            for (std::size_t t = 0; t < rows; ++t)
                cogqat::detail::backward::matmul<float>(std::span<const float>(x).subspan(t * in, in), w,
                                                        std::span<float>(y).subspan(t * out, out), 1, in, out);
        }
        benchmark::DoNotOptimize(y.data());
    }
}

}  // namespace

BENCHMARK(layer_pass_1b)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(gate_product)
        ->ArgNames({"blocked", "in", "out"})
        ->Args({0, 2048, 5632})
        ->Args({1, 2048, 5632})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
BENCHMARK_CAPTURE(sequence_pass, llama, member::llama)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(sequence_pass, llama_rope_scaled, member::llama_rope_scaled)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(sequence_pass, qwen2, member::qwen2)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(sequence_pass, qwen3, member::qwen3)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
