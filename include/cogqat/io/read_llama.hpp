#pragma once
// Reading a llama-architecture GGUF (the keys and tensors llama.cpp's llama architecture uses, and that
// io/llama_gguf.hpp writes): the model, viewing the file's tensors; its tokenizer; and every tensor decoded to
// float, for the pipelines that rewrite a model. A file that would make the forward meaningless is refused
// here, at load, with the key or the tensor named.

#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/gguf/reader.hpp"
#include "cogqat/model/llama_model.hpp"
#include "cogqat/model/llama_weights.hpp"
#include "cogqat/model/tokenizer.hpp"

namespace cogqat::io {

/// The model of a llama-architecture GGUF, viewing its tensors (`in` must outlive the model). format_error for
/// a missing key or tensor or a shape that does not fit, or a RoPE base or RMS epsilon that is not a positive
/// finite number; value_error naming the tensor, element and row for a weight that is NaN or infinite.
[[nodiscard]] inline llama_model read_llama_model(const gguf::reader& in) {
    if (const auto* arch = in.find("general.architecture"); !arch || arch->as_string() != "llama")
        throw invalid_argument_error("not a llama-architecture GGUF (general.architecture is " +
                                     (arch ? arch->as_string() : std::string("missing")) + ")");
    auto u32 = [&](const char* key) {
        const auto* v = in.find(key);
        if (!v) throw format_error(std::string("GGUF has no ") + key);
        return v->as<std::uint32_t>();
    };
    llama_model m;
    auto& c = m.config;
    c.dim = u32("llama.embedding_length");
    c.hidden_dim = u32("llama.feed_forward_length");
    c.n_layers = u32("llama.block_count");
    c.n_heads = u32("llama.attention.head_count");
    c.n_kv_heads = in.find("llama.attention.head_count_kv") ? u32("llama.attention.head_count_kv") : c.n_heads;
    c.context_length = u32("llama.context_length");
    // A forward with a non-finite or non-positive epsilon or RoPE base is NaN from the first layer on.
    auto positive = [&](const char* key, float& field) {
        const auto* v = in.find(key);
        if (!v) return;
        field = v->as<float>();
        if (!(std::isfinite(field) && field > 0.0f))
            throw format_error(std::string("GGUF key ") + key + " is " + v->to_string() + ": it must be a positive finite number");
    };
    positive("llama.attention.layer_norm_rms_epsilon", c.rms_norm_eps);
    positive("llama.rope.freq_base", c.rope_freq_base);
    if (c.n_heads == 0 || c.n_kv_heads == 0 || c.dim % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0)
        throw format_error("inconsistent attention shape: dim " + std::to_string(c.dim) + ", heads " + std::to_string(c.n_heads) +
                           ", kv heads " + std::to_string(c.n_kv_heads));
    if (c.dim == 0 || c.hidden_dim == 0 || c.n_layers == 0 || c.context_length == 0)
        throw format_error("GGUF declares an empty model: embedding " + std::to_string(c.dim) + ", feed-forward " +
                           std::to_string(c.hidden_dim) + ", " + std::to_string(c.n_layers) + " layers, context " +
                           std::to_string(c.context_length));

    auto matrix = [&](const std::string& name, std::size_t cols, std::optional<std::size_t> rows) {
        const auto* t = in.find_tensor(name);
        if (!t) throw format_error("GGUF has no tensor " + name);
        if (t->shape.size() != 2 || t->shape[0] != cols || (rows && t->shape[1] != *rows))
            throw format_error("tensor " + name + " has an unexpected shape");
        require_finite_weights(name, t->type, in.tensor_data(*t), cols);
        return weight_matrix{t->type, static_cast<std::size_t>(t->shape[1]), cols, in.tensor_data(*t), {}};
    };
    auto vector = [&](const std::string& name, std::size_t n) {
        const auto* t = in.find_tensor(name);
        if (!t || t->elements() != n) throw format_error("GGUF has no tensor " + name + " of " + std::to_string(n) + " values");
        std::vector<float> v(n);
        dequantize(t->type, in.tensor_data(*t), v);
        require_finite_weights(name, ggml_type::f32, std::as_bytes(std::span(v)), n);
        return v;
    };
    m.token_embedding = matrix("token_embd.weight", c.dim, std::nullopt);
    c.vocab_size = static_cast<std::uint32_t>(m.token_embedding.rows);
    m.output_norm = vector("output_norm.weight", c.dim);
    m.tied_output = in.find_tensor("output.weight") == nullptr;
    if (!m.tied_output) m.output = matrix("output.weight", c.dim, c.vocab_size);
    for (std::uint32_t l = 0; l < c.n_layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        m.layers.push_back({vector(p + "attn_norm.weight", c.dim), vector(p + "ffn_norm.weight", c.dim),
                            matrix(p + "attn_q.weight", c.dim, c.dim), matrix(p + "attn_k.weight", c.dim, c.kv_dim()),
                            matrix(p + "attn_v.weight", c.dim, c.kv_dim()), matrix(p + "attn_output.weight", c.dim, c.dim),
                            matrix(p + "ffn_gate.weight", c.dim, c.hidden_dim), matrix(p + "ffn_down.weight", c.hidden_dim, c.dim),
                            matrix(p + "ffn_up.weight", c.dim, c.hidden_dim)});
    }
    m.interleave();
    return m;
}

/// The tokenizer of a GGUF's tokenizer.ggml.* keys (model "llama").
[[nodiscard]] inline tokenizer read_tokenizer(const gguf::reader& in) {
    auto require = [&](std::string_view key) -> const gguf::value& {
        const gguf::value* v = in.find(key);
        if (!v) throw format_error("GGUF has no " + std::string(key) + ": cannot build its tokenizer");
        return *v;
    };
    if (const auto* model = in.find("tokenizer.ggml.model"); model && model->as_string() != "llama")
        throw invalid_argument_error("tokenizer model '" + model->as_string() + "' is not supported (only 'llama')");
    vocabulary v;
    v.pieces = require("tokenizer.ggml.tokens").as_array<std::string>();
    v.scores = require("tokenizer.ggml.scores").as_array<float>();
    for (auto k : require("tokenizer.ggml.token_type").as_array<std::int32_t>()) v.kinds.push_back(static_cast<token_kind>(k));
    auto id = [&](std::string_view key, std::uint32_t fallback) {
        const auto* value = in.find(key);
        return value ? value->as<std::uint32_t>() : fallback;
    };
    v.unknown_id = id("tokenizer.ggml.unknown_token_id", 0);
    v.bos_id = id("tokenizer.ggml.bos_token_id", 1);
    v.eos_id = id("tokenizer.ggml.eos_token_id", 2);
    return tokenizer(std::move(v));
}

/// Every tensor of a llama GGUF decoded to float, in file order, with the model's hyper-parameters. The
/// vocabulary is left empty: writers copy the tokenizer keys from the source file.
[[nodiscard]] inline llama_weights read_llama_weights(const gguf::reader& in) {
    llama_weights w;
    w.config = read_llama_model(in).config;  // validates the architecture, shapes and values
    if (const auto* name = in.find("general.name"); name && name->type() == gguf::value_type::string) w.name = name->as_string();
    for (const auto& t : in.tensors()) {
        if (!is_quantizable(t.type))
            throw invalid_argument_error("tensor '" + t.name + "' is " + std::string(info(t.type).name) + ", which cogqat cannot read");
        float_tensor f{t.name, t.shape, std::vector<float>(static_cast<std::size_t>(t.elements()))};
        dequantize(t.type, in.tensor_data(t), f.values);
        w.tensors.push_back(std::move(f));
    }
    return w;
}

}  // namespace cogqat::io
