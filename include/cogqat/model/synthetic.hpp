#pragma once
// A small llama-shaped model with reproducible random weights and a byte-level vocabulary: the embedded
// default of the main job when no real model is at hand, and a fixture for tests.

#include <cmath>
#include <cstdint>
#include <string>

#include "cogqat/model/llama_schema.hpp"
#include "cogqat/model/llama_weights.hpp"

namespace cogqat {

/// Weights drawn from N(0, 0.02) (norm weights 1), seeded; vocabulary: <unk>, <s>, </s> and 256 byte tokens.
/// The default shape has rows of 256 and 768 values, so every block format fits every tensor.
[[nodiscard]] inline llama_weights make_synthetic_llama(std::uint64_t seed = 1, llama_config c = {256, 768, 2, 4, 2, 259, 256}) {
    std::uint64_t state = seed;
    auto uniform = [&] {  // splitmix64 -> (0, 1)
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return (static_cast<double>((z ^ (z >> 31)) >> 11) + 0.5) * 0x1p-53;
    };
    auto gaussian = [&] { return std::sqrt(-2.0 * std::log(uniform())) * std::cos(6.283185307179586 * uniform()); };
    auto tensor = [&](std::string name, std::vector<std::uint64_t> shape, bool is_norm) {
        std::uint64_t n = 1;
        for (auto d : shape) n *= d;
        float_tensor t{std::move(name), std::move(shape), std::vector<float>(n)};
        for (auto& v : t.values) v = is_norm ? 1.0f : static_cast<float>(0.02 * gaussian());
        return t;
    };

    llama_weights w;
    w.config = c;
    w.name = "synthetic-llama";
    for_each_llama_tensor(c, false, [&](const tensor_schema& t, std::size_t layer) {
        w.tensors.push_back(tensor(t.gguf_name(layer), t.gguf_shape(c), t.is_vector()));
    });
    const std::uint64_t vocab = c.vocab_size;

    auto& v = w.vocab;
    auto add = [&](std::string piece, token_kind kind) {
        v.pieces.push_back(std::move(piece));
        v.scores.push_back(0.0f);
        v.kinds.push_back(kind);
    };
    add("<unk>", token_kind::unknown);
    add("<s>", token_kind::control);
    add("</s>", token_kind::control);
    const char* hex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) add(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", token_kind::byte);
    while (v.pieces.size() < vocab) add("<unused" + std::to_string(v.pieces.size()) + ">", token_kind::unused);
    return w;
}

}  // namespace cogqat
