#pragma once
// Reading a GGUF of the llama family (llama, qwen2, qwen3: the keys and tensors llama.cpp's runtime uses for
// them, and that io/llama_gguf.hpp writes): the model, viewing the file's tensors; its tokenizer; and every tensor decoded to
// float, for the pipelines that rewrite a model. A file that would make the forward meaningless is refused
// here, at load, with the key or the tensor named.

#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/gguf/reader.hpp"
#include "cogqat/model/llama_model.hpp"
#include "cogqat/model/llama_schema.hpp"
#include "cogqat/model/llama_weights.hpp"
#include "cogqat/model/tokenizer.hpp"

namespace cogqat::io {

namespace detail {

/// The hyper-parameters under the "<architecture>." keys, checked: format_error for a missing or inconsistent
/// key (attention shape, head size, RoPE dimensions, a scaling other than linear).
[[nodiscard]] inline llama_config read_llama_config(const gguf::reader& in, model_architecture architecture) {
    llama_config c;
    c.architecture = architecture;
    const std::string prefix = std::string(architecture_name(architecture)) + ".";
    for (const auto& key : llama_config_keys) {
        if (key.derived) continue;
        const std::string name = gguf_key(key, architecture);
        const auto* v = in.find(name);
        if (!v) {
            if (key.required) throw format_error("GGUF has no " + name);
            if (key.fallback) c.*key.integer = c.*key.fallback;
            continue;
        }
        if (key.integer) {
            const auto value = v->as<std::uint32_t>();
            // key_length and value_length share the head size: attention with keys and values of different
            // widths is not what this runtime computes.
            if (key.written_when_set && c.*key.integer != 0 && c.*key.integer != value)
                throw format_error("GGUF key " + name + " is " + std::to_string(value) + ", another key of the head size says " +
                                   std::to_string(c.*key.integer) + ": keys and values of different widths are not supported");
            c.*key.integer = value;
            continue;
        }
        // A forward with a non-finite or non-positive epsilon or RoPE base is NaN from the first layer on.
        const float real = v->as<float>();
        if (!(std::isfinite(real) && real > 0.0f))
            throw format_error("GGUF key " + name + " is " + v->to_string() + ": it must be a positive finite number");
        c.*key.real = real;
    }
    if (c.n_heads == 0 || c.n_kv_heads == 0 || c.n_heads % c.n_kv_heads != 0 || (c.head_dim == 0 && c.dim % c.n_heads != 0))
        throw format_error("inconsistent attention shape: dim " + std::to_string(c.dim) + ", heads " + std::to_string(c.n_heads) +
                           ", kv heads " + std::to_string(c.n_kv_heads) + (c.head_dim == 0 ? " (no explicit head size)" : ""));
    if (c.head_size() % 2 != 0)
        throw format_error("head size " + std::to_string(c.head_size()) + " is odd: RoPE rotates pairs of a head's values");
    if (c.dim == 0 || c.hidden_dim == 0 || c.n_layers == 0 || c.context_length == 0)
        throw format_error("GGUF declares an empty model: embedding " + std::to_string(c.dim) + ", feed-forward " +
                           std::to_string(c.hidden_dim) + ", " + std::to_string(c.n_layers) + " layers, context " +
                           std::to_string(c.context_length));
    for (const auto& key : llama_config_keys) {
        const auto* v = key.derived ? in.find(gguf_key(key, architecture)) : nullptr;
        if (v && v->as<std::uint32_t>() != key.derived(c))
            throw format_error("GGUF key " + gguf_key(key, architecture) + " is " + v->to_string() + ", the model's shape makes it " +
                               std::to_string(key.derived(c)) + " (partial rotary embeddings are not supported)");
    }
    if (const auto* type = in.find(prefix + std::string(rope_scaling_type_suffix))) {
        const std::string kind = type->as_string();
        if (kind == "linear") {
            const auto* factor = in.find(prefix + std::string(rope_scaling_factor_suffix));
            const float f = factor ? factor->as<float>() : 0.0f;
            if (!(std::isfinite(f) && f > 0.0f))
                throw format_error("GGUF scales RoPE linearly but " + prefix + std::string(rope_scaling_factor_suffix) + " is " +
                                   (factor ? factor->to_string() : std::string("missing")) + ": it must be a positive finite number");
            c.rope_freq_scale = 1.0f / f;
        } else if (kind != "none") {
            throw format_error("GGUF key " + prefix + std::string(rope_scaling_type_suffix) + " is \"" + kind +
                               "\"; cogqat runs unscaled, linear and Llama 3 (rope_freqs) RoPE");
        }
    }
    return c;
}

/// The token id under `key`, or `fallback` where the file is silent.
[[nodiscard]] inline std::uint32_t token_id(const gguf::reader& in, std::string_view key, std::uint32_t fallback) {
    const auto* value = in.find(key);
    return value ? value->as<std::uint32_t>() : fallback;
}

/// BOS and EOS, with llama.cpp's defaults where the file is silent: 1 and 2 for SentencePiece, 11 (GPT-2's) for BPE.
[[nodiscard]] inline std::pair<std::uint32_t, std::uint32_t> bos_and_eos(const gguf::reader& in) {
    const auto* model = in.find("tokenizer.ggml.model");
    const bool bpe = model && model->type() == gguf::value_type::string && model->as_string() == "gpt2";
    return {token_id(in, "tokenizer.ggml.bos_token_id", bpe ? 11 : 1), token_id(in, "tokenizer.ggml.eos_token_id", bpe ? 11 : 2)};
}

}  // namespace detail

/// The model of a GGUF of the llama family (general.architecture llama, qwen2 or qwen3; keys under that
/// prefix), viewing its tensors (`in` must outlive the model). invalid_argument_error for another
/// architecture; format_error for a missing key or tensor, a shape that does not fit (a bias or a Q/K norm of
/// the wrong length among them), an inconsistent head size, or a RoPE base or RMS epsilon that is not a
/// positive finite number; value_error naming the tensor, element and row for a weight that is NaN or infinite.
[[nodiscard]] inline llama_model read_llama_model(const gguf::reader& in) {
    const auto* arch = in.find("general.architecture");
    const std::optional<model_architecture> architecture =
            arch && arch->type() == gguf::value_type::string ? parse_model_architecture(arch->as_string()) : std::nullopt;
    if (!architecture)
        throw invalid_argument_error("not a GGUF of the llama family: general.architecture is " +
                                     (arch ? arch->to_string() : std::string("missing")) + " (cogqat runs llama, qwen2 and qwen3)");
    llama_model m;
    m.config = detail::read_llama_config(in, *architecture);
    auto& c = m.config;

    // The vocabulary's size is the embedding's row count: the schema's shapes need it.
    const tensor_schema& embedding = llama_tensor(llama_parameter::token_embedding);
    if (const auto* t = in.find_tensor(embedding.name); t && t->shape.size() == 2) c.vocab_size = static_cast<std::uint32_t>(t->shape[1]);
    m.tied_output = in.find_tensor(llama_tensor(llama_parameter::output).name) == nullptr;
    const tensor_schema& rope_freqs = llama_tensor(llama_parameter::rope_freqs);
    c.rope_factors = rope_freqs.applies_to(c.architecture) && in.find_tensor(rope_freqs.name) != nullptr;
    // Checked before the layers are allocated: a block count from a damaged file may be in the billions.
    std::uint64_t per_layer = 0;
    for (const auto& t : llama_tensors) per_layer += t.per_layer && t.present_in(c, m.tied_output) ? 1u : 0u;
    if (std::uint64_t{c.n_layers} * per_layer > in.tensors().size())
        throw format_error("GGUF declares " + std::to_string(c.n_layers) + " layers of " + std::to_string(per_layer) +
                           " tensors each, but holds " + std::to_string(in.tensors().size()) + " tensors");
    m.layers.resize(c.n_layers);
    for_each_llama_tensor(c, m.tied_output, [&](const tensor_schema& schema, std::size_t layer) {
        const std::string name = schema.gguf_name(layer);
        const std::size_t cols = extent_of(c, schema.row_length), rows = extent_of(c, schema.rows);
        const auto* t = in.find_tensor(name);
        visit_parameter(m, schema.parameter, layer, [&](auto& member) {
            if constexpr (std::is_same_v<std::remove_cvref_t<decltype(member)>, weight_matrix>) {
                if (!t) throw format_error("GGUF has no tensor " + name);
                if (t->shape.size() != 2 || t->shape[0] != cols || t->shape[1] != rows)
                    throw format_error("tensor " + name + " has an unexpected shape");
                require_finite_weights(name, t->type, in.tensor_data(*t), cols);
                member = weight_matrix{{rows, cols}, t->type, in.tensor_data(*t), {}};
            } else {
                if (!t || t->elements() != cols)
                    throw format_error("GGUF has no tensor " + name + " of " + std::to_string(cols) + " values" +
                                       (t ? " (it has " + std::to_string(t->elements()) + ")" : std::string()));
                member.resize(cols);
                dequantize(t->type, in.tensor_data(*t), member);
                require_finite_weights(name, ggml_type::f32, std::as_bytes(std::span(member)), cols);
            }
        });
    });
    if (c.rope_factors)
        for (std::size_t i = 0; i < m.rope_freqs.size(); ++i)
            if (!(m.rope_freqs[i] > 0.0f))
                throw value_error("tensor " + std::string(rope_freqs.name) + ": factor " + std::to_string(i) + " is " +
                                          std::to_string(m.rope_freqs[i]) + "; RoPE divides by it, so it must be positive",
                                  i);
    const auto [bos, eos] = detail::bos_and_eos(in);
    for (const auto& [id, key] : {std::pair{bos, "tokenizer.ggml.bos_token_id"}, std::pair{eos, "tokenizer.ggml.eos_token_id"}})
        if (id >= c.vocab_size)
            throw format_error("GGUF's " + std::string(key) + " (or its default) is " + std::to_string(id) + ", beyond the vocabulary of " +
                               std::to_string(c.vocab_size) + " tokens");
    m.bos_id = static_cast<std::int32_t>(bos);
    m.eos_id = static_cast<std::int32_t>(eos);
    if (in.find("tokenizer.ggml.tokens")) {
        std::vector<token_kind> kinds;
        if (const auto* types = in.find("tokenizer.ggml.token_type"))
            for (auto k : types->as_array<std::int32_t>()) kinds.push_back(static_cast<token_kind>(k));
        const auto* model = in.find("tokenizer.ggml.model");
        m.special_tokens = special_token_ids(kinds, c.vocab_size, !model || model->as_string() == "llama", bos, eos);
    }
    m.interleave();
    return m;
}

/// The vocabulary of a GGUF's tokenizer.ggml.* keys, model "llama" (SentencePiece) or "gpt2" (byte-level BPE:
/// merges, pre-tokenizer; scores and token types optional, as llama.cpp reads them). format_error for a missing
/// key the model needs, invalid_argument_error for another model.
[[nodiscard]] inline vocabulary read_vocabulary(const gguf::reader& in) {
    auto require = [&](std::string_view key) -> const gguf::value& {
        const gguf::value* v = in.find(key);
        if (!v) throw format_error("GGUF has no " + std::string(key) + ": cannot build its tokenizer");
        return *v;
    };
    vocabulary v;
    if (const auto* model = in.find("tokenizer.ggml.model")) v.model = model->as_string();
    if (v.model != "llama" && v.model != "gpt2")
        throw invalid_argument_error("tokenizer model '" + v.model + "' is not supported (only 'llama' and 'gpt2')");
    const bool bpe = v.model == "gpt2";
    v.pieces = require("tokenizer.ggml.tokens").as_array<std::string>();
    if (const auto* scores = in.find("tokenizer.ggml.scores"); scores || !bpe)
        v.scores = require("tokenizer.ggml.scores").as_array<float>();
    if (const auto* types = in.find("tokenizer.ggml.token_type"); types || !bpe) {
        for (auto k : require("tokenizer.ggml.token_type").as_array<std::int32_t>()) v.kinds.push_back(static_cast<token_kind>(k));
    } else {
        v.kinds.assign(v.pieces.size(), token_kind::normal);
    }
    v.unknown_id = detail::token_id(in, "tokenizer.ggml.unknown_token_id", 0);
    std::tie(v.bos_id, v.eos_id) = detail::bos_and_eos(in);
    if (const auto* add = in.find("tokenizer.ggml.add_bos_token")) v.add_bos = add->as<bool>();
    if (const auto* add = in.find("tokenizer.ggml.add_eos_token")) v.add_eos = add->as<bool>();
    if (bpe) {
        v.merges = require("tokenizer.ggml.merges").as_array<std::string>();
        if (const auto* pre = in.find("tokenizer.ggml.pre")) v.pre = pre->as_string();
    }
    return v;
}

/// The tokenizer of a GGUF's tokenizer.ggml.* keys: read_vocabulary's, and what the tokenizer refuses in it
/// (an unknown pre-tokenizer, a merge naming a missing token, a BOS or EOS id out of range, ...).
[[nodiscard]] inline tokenizer read_tokenizer(const gguf::reader& in) { return tokenizer(read_vocabulary(in)); }

/// Every tensor of a llama GGUF decoded to float, in file order, with the model's hyper-parameters. Of the
/// vocabulary only BOS and EOS are read (calibration needs them); writers copy the tokenizer keys from the
/// source file.
[[nodiscard]] inline llama_weights read_llama_weights(const gguf::reader& in) {
    llama_weights w;
    const auto model = read_llama_model(in);  // validates the architecture, shapes and values
    w.config = model.config;
    w.vocab.bos_id = static_cast<std::uint32_t>(model.bos_id);  // for the model built from these weights
    w.vocab.eos_id = static_cast<std::uint32_t>(model.eos_id);
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
