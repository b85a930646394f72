// The training pass (model/llama_backward.hpp): one sequence of 128 tokens through forward and backward on a
// stories260K-shaped model (dim 64, FFN 192, 5 layers, 8/4 heads, vocab 512), for each member of the family:
// plain llama, llama with Llama 3's rope_freqs and linear scaling, qwen2 (biases), qwen3 (head norms, heads of
// 16 so that Q is 128 wide). Run: build/bench/cogqat_bench_training

#include <cogqat/model/llama_backward.hpp>
#include <cogqat/model/llama_model.hpp>
#include <cogqat/model/synthetic.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
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

}  // namespace

BENCHMARK_CAPTURE(sequence_pass, llama, member::llama)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(sequence_pass, llama_rope_scaled, member::llama_rope_scaled)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(sequence_pass, qwen2, member::qwen2)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(sequence_pass, qwen3, member::qwen3)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
