#pragma once
// The decoder architectures cogqat imports from Hugging Face folders, as data: for each, the Hugging Face
// class names and model_type that select it, and its tensors (the Hugging Face name, the GGUF name llama.cpp
// gives it, its shape from the config, whether it may be absent, and the row order llama.cpp stores). The
// importer (io/hf_import.hpp) walks these tables; the runtime still knows llama alone (model/llama_schema.hpp),
// and a runtime for qwen2 and qwen3 builds on the same tables.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/core/error.hpp"

namespace cogqat {

/// The sizes of a decoder as a Hugging Face config.json gives them.
struct architecture_config {
    std::uint32_t hidden = 0;          ///< hidden_size
    std::uint32_t feed_forward = 0;    ///< intermediate_size
    std::uint32_t layers = 0;          ///< num_hidden_layers
    std::uint32_t heads = 0;           ///< num_attention_heads
    std::uint32_t kv_heads = 0;        ///< num_key_value_heads (heads when absent)
    std::uint32_t head_dim = 0;        ///< head_dim (hidden / heads when absent)
    std::uint32_t vocab = 0;           ///< vocab_size
    std::uint32_t context_length = 0;  ///< max_position_embeddings
};

/// A dimension of a tensor, read from the config.
enum class arch_extent : std::uint8_t { one, hidden, q_dim, kv_dim, head_dim, feed_forward, vocab, rope_pairs };

[[nodiscard]] constexpr std::uint64_t extent_of(const architecture_config& c, arch_extent e) noexcept {
    switch (e) {
        case arch_extent::one:
            return 1;
        case arch_extent::hidden:
            return c.hidden;
        case arch_extent::q_dim:
            return std::uint64_t{c.heads} * c.head_dim;
        case arch_extent::kv_dim:
            return std::uint64_t{c.kv_heads} * c.head_dim;
        case arch_extent::head_dim:
            return c.head_dim;
        case arch_extent::feed_forward:
            return c.feed_forward;
        case arch_extent::vocab:
            return c.vocab;
        case arch_extent::rope_pairs:
            return c.head_dim / 2;
    }
    return 0;
}

/// The order in which GGUF holds a tensor's rows. llama.cpp's llama runtime rotates adjacent pairs of a head
/// (GPT-J style) where Hugging Face's Llama rotates its two halves, so the converter interleaves the halves
/// of each head of Q and K: row (head, pair i, half j) is Hugging Face's row (head, half j, i). The heads are
/// the query heads for Q and the key/value heads for K.
enum class row_order : std::uint8_t { as_stored, interleave_query_heads, interleave_kv_heads };

/// One tensor of an imported architecture. Row-major rows x row_length, as both formats store a matrix
/// (GGUF's ne = {row_length, rows}); a vector has rows one and is written 1-D, always in f32.
struct hf_tensor_schema {
    std::string_view hf_name;    ///< after "model.layers.N." for a per-layer tensor
    std::string_view gguf_name;  ///< after "blk.N." for a per-layer tensor
    bool per_layer = false;
    arch_extent row_length = arch_extent::hidden;
    arch_extent rows = arch_extent::one;
    bool optional = false;  ///< the classifier, absent when tied to the token embedding
    row_order order = row_order::as_stored;

    [[nodiscard]] constexpr bool is_vector() const noexcept { return rows == arch_extent::one; }
    /// Hugging Face's shape, outermost first: {rows, row_length}, or {row_length} for a vector.
    [[nodiscard]] std::vector<std::uint64_t> hf_shape(const architecture_config& c) const {
        if (is_vector()) return {extent_of(c, row_length)};
        return {extent_of(c, rows), extent_of(c, row_length)};
    }
    /// GGUF's ne: {row_length} for a vector, {row_length, rows} for a matrix.
    [[nodiscard]] std::vector<std::uint64_t> gguf_shape(const architecture_config& c) const {
        if (is_vector()) return {extent_of(c, row_length)};
        return {extent_of(c, row_length), extent_of(c, rows)};
    }
    [[nodiscard]] std::string hf_tensor_name(std::size_t layer) const {
        return per_layer ? "model.layers." + std::to_string(layer) + "." + std::string(hf_name) : std::string(hf_name);
    }
    [[nodiscard]] std::string gguf_tensor_name(std::size_t layer) const {
        return per_layer ? "blk." + std::to_string(layer) + "." + std::string(gguf_name) : std::string(gguf_name);
    }
};

/// An architecture: its GGUF name (the key prefix and general.architecture), the Hugging Face class names
/// and model_type values that select it, and its tensors in the order cogqat writes them (model-wide ones,
/// then each layer's).
struct architecture_schema {
    std::string_view name;
    std::span<const std::string_view> hf_classes;
    std::span<const std::string_view> model_types;
    std::span<const hf_tensor_schema> tensors;
};

namespace detail::hf_tables {

using enum arch_extent;

// Mistral-style models (MistralForCausalLM) and SmolLM are llama, as llama.cpp's converter treats them.
inline constexpr std::array<std::string_view, 2> llama_classes{"LlamaForCausalLM", "MistralForCausalLM"};
inline constexpr std::array<std::string_view, 2> llama_model_types{"llama", "mistral"};
inline constexpr std::array<std::string_view, 1> qwen2_classes{"Qwen2ForCausalLM"};
inline constexpr std::array<std::string_view, 1> qwen2_model_types{"qwen2"};
inline constexpr std::array<std::string_view, 1> qwen3_classes{"Qwen3ForCausalLM"};
inline constexpr std::array<std::string_view, 1> qwen3_model_types{"qwen3"};

inline constexpr hf_tensor_schema token_embedding{"model.embed_tokens.weight", "token_embd.weight", false, hidden, vocab};
inline constexpr hf_tensor_schema output_norm{"model.norm.weight", "output_norm.weight", false, hidden, one};
inline constexpr hf_tensor_schema output{"lm_head.weight", "output.weight", false, hidden, vocab, true};
inline constexpr hf_tensor_schema attn_norm{"input_layernorm.weight", "attn_norm.weight", true, hidden, one};
inline constexpr hf_tensor_schema wv{"self_attn.v_proj.weight", "attn_v.weight", true, hidden, kv_dim};
inline constexpr hf_tensor_schema wo{"self_attn.o_proj.weight", "attn_output.weight", true, q_dim, hidden};
inline constexpr hf_tensor_schema ffn_norm{"post_attention_layernorm.weight", "ffn_norm.weight", true, hidden, one};
inline constexpr hf_tensor_schema gate{"mlp.gate_proj.weight", "ffn_gate.weight", true, hidden, feed_forward};
inline constexpr hf_tensor_schema up{"mlp.up_proj.weight", "ffn_up.weight", true, hidden, feed_forward};
inline constexpr hf_tensor_schema down{"mlp.down_proj.weight", "ffn_down.weight", true, feed_forward, hidden};
inline constexpr hf_tensor_schema wq{"self_attn.q_proj.weight", "attn_q.weight", true, hidden, q_dim};
inline constexpr hf_tensor_schema wk{"self_attn.k_proj.weight", "attn_k.weight", true, hidden, kv_dim};

inline constexpr std::array<hf_tensor_schema, 12> llama_hf_tensors{{
        token_embedding,
        output_norm,
        output,
        attn_norm,
        {"self_attn.q_proj.weight", "attn_q.weight", true, hidden, q_dim, false, row_order::interleave_query_heads},
        {"self_attn.k_proj.weight", "attn_k.weight", true, hidden, kv_dim, false, row_order::interleave_kv_heads},
        wv,
        wo,
        ffn_norm,
        gate,
        up,
        down,
}};

inline constexpr std::array<hf_tensor_schema, 15> qwen2_hf_tensors{{
        token_embedding,
        output_norm,
        output,
        attn_norm,
        wq,
        {"self_attn.q_proj.bias", "attn_q.bias", true, q_dim, one},
        wk,
        {"self_attn.k_proj.bias", "attn_k.bias", true, kv_dim, one},
        wv,
        {"self_attn.v_proj.bias", "attn_v.bias", true, kv_dim, one},
        wo,
        ffn_norm,
        gate,
        up,
        down,
}};

inline constexpr std::array<hf_tensor_schema, 14> qwen3_hf_tensors{{
        token_embedding,
        output_norm,
        output,
        attn_norm,
        wq,
        {"self_attn.q_norm.weight", "attn_q_norm.weight", true, head_dim, one},
        wk,
        {"self_attn.k_norm.weight", "attn_k_norm.weight", true, head_dim, one},
        wv,
        wo,
        ffn_norm,
        gate,
        up,
        down,
}};

}  // namespace detail::hf_tables

/// The architectures `cogqat convert hf` imports.
inline constexpr std::array<architecture_schema, 3> architectures{{
        {"llama", detail::hf_tables::llama_classes, detail::hf_tables::llama_model_types, detail::hf_tables::llama_hf_tensors},
        {"qwen2", detail::hf_tables::qwen2_classes, detail::hf_tables::qwen2_model_types, detail::hf_tables::qwen2_hf_tensors},
        {"qwen3", detail::hf_tables::qwen3_classes, detail::hf_tables::qwen3_model_types, detail::hf_tables::qwen3_hf_tensors},
}};

/// The architecture a Hugging Face class name ("Qwen2ForCausalLM") or model_type ("qwen2") selects, or nullptr.
[[nodiscard]] constexpr const architecture_schema* find_architecture(std::string_view hf_class_or_model_type) noexcept {
    for (const auto& a : architectures) {
        for (auto c : a.hf_classes)
            if (c == hf_class_or_model_type) return &a;
        for (auto t : a.model_types)
            if (t == hf_class_or_model_type) return &a;
    }
    return nullptr;
}

/// The class names and model types known, for a message: "LlamaForCausalLM (llama), ...".
[[nodiscard]] inline std::string known_architectures() {
    std::string out;
    for (const auto& a : architectures) {
        for (auto c : a.hf_classes) {
            if (!out.empty()) out += ", ";
            out += std::string(c) + " (" + std::string(a.name) + ")";
        }
    }
    return out;
}

/// The GGUF row that row `row` of a tensor becomes under `order`, for `heads` heads of `rows / heads` rows.
/// Within a head of 2n rows, Hugging Face's row j*n + i (half j, pair i) becomes row 2i + j.
[[nodiscard]] constexpr std::size_t gguf_row_of(std::size_t row, std::size_t rows, std::size_t heads) noexcept {
    const std::size_t per_head = rows / heads, half = per_head / 2;
    const std::size_t head = row / per_head, within = row % per_head;
    const std::size_t j = within / half, i = within % half;
    return head * per_head + 2 * i + j;
}

/// Checks that `order` applies to a matrix of `rows` rows and `heads` heads: shape_error naming `tensor`
/// when the rows do not split into heads of an even number of rows.
inline void check_row_order(std::string_view tensor, std::size_t rows, std::size_t heads) {
    if (heads == 0 || rows % heads != 0 || (rows / heads) % 2 != 0)
        throw shape_error("'" + std::string(tensor) + "': " + std::to_string(rows) + " rows do not split into " + std::to_string(heads) +
                          " heads of an even number of rows (rotary pairs)");
}

}  // namespace cogqat
