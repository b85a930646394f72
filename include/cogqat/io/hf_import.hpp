#pragma once
// Converting a Hugging Face model folder (config.json, tokenizer.json, tokenizer_config.json, one or more
// safetensors files) into the GGUF llama.cpp's convert_hf_to_gguf.py writes for it: the same tensor names and
// shapes, llama's Q/K row interleaving and Llama 3's rope_freqs, the same metadata keys and tokenizer arrays
// (docs/models.md, "Importing Hugging Face models"). Tensors are decoded and written one at a time from the
// memory-mapped files; the output appears only when complete.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/format/ggml_type.hpp"
#include "cogqat/gguf/writer.hpp"
#include "cogqat/io/hf_config.hpp"
#include "cogqat/io/hf_tokenizer.hpp"
#include "cogqat/io/safetensors.hpp"
#include "cogqat/model/architecture_schema.hpp"

namespace cogqat::io {

/// One tensor of the output: the GGUF name, the safetensors tensor it comes from (nullptr for rope_freqs,
/// whose values are computed), its schema entry and the type it is written in.
struct hf_planned_tensor {
    std::string name;
    const safetensors_tensor* source = nullptr;
    const hf_tensor_schema* schema = nullptr;
    std::vector<std::uint64_t> gguf_shape;
    ggml_type type = ggml_type::f32;
};

/// What convert_hf wrote.
struct hf_conversion {
    hf_model_config config;
    std::size_t tokens = 0, merges = 0;
    std::string pre;
    std::vector<hf_planned_tensor> tensors;
    std::vector<std::filesystem::path> files;
};

/// The types `convert hf --type` writes its matrices in: f32, f16, bf16, or a format the codec quantizes
/// without importance weights. invalid_argument_error otherwise, saying what to use instead.
inline void check_conversion_type(ggml_type type) {
    if (type == ggml_type::f32 || type == ggml_type::f16 || type == ggml_type::bf16) return;
    const std::string name(info(type).name);
    if (!is_quantizable(type)) throw invalid_argument_error("convert hf cannot write " + name + " (cogqat does not quantize it)");
    std::vector<float> block(info(type).block_size, 0.5f);
    std::vector<std::byte> out(storage_size(type, block.size()));
    try {
        quantize(type, block, out);
    } catch (const error&) {
        throw invalid_argument_error("convert hf cannot write " + name +
                                     " without importance weights; convert to f16 and use `cogqat quantize`");
    }
}

namespace detail {

/// The type a tensor is written in: vectors in f32 (llama.cpp's rule), matrices in `type`, and in f16 where
/// their rows do not hold whole blocks of `type` (llama.cpp's converter's fallback).
[[nodiscard]] inline ggml_type tensor_type_for(const hf_tensor_schema& t, std::uint64_t row_length, ggml_type type) {
    if (t.is_vector()) return ggml_type::f32;
    if (row_length % info(type).block_size != 0) return ggml_type::f16;
    return type;
}

[[nodiscard]] inline std::string shape_string(std::span<const std::uint64_t> shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

/// Matches the folder's tensors to the architecture's table: every required tensor present with the shape
/// config.json gives, no tensor the architecture does not have.
[[nodiscard]] inline std::vector<hf_planned_tensor> plan_tensors(const std::filesystem::path& dir, const hf_model_config& c,
                                                                 const safetensors_model& weights, ggml_type type) {
    std::vector<hf_planned_tensor> plan;
    std::set<std::string, std::less<>> used;
    const std::string folder = dir.string();
    const auto add = [&](const hf_tensor_schema& t, std::size_t layer) {
        const std::string hf_name = t.hf_tensor_name(layer);
        const safetensors_tensor* source = weights.find(hf_name);
        if (source == nullptr) {
            if (t.optional) return;
            throw format_error("'" + folder + "': the " + std::string(c.architecture->name) + " model has no tensor '" + hf_name + "'");
        }
        const auto expected = t.hf_shape(c.sizes);
        if (source->shape != expected)
            throw shape_error("'" + folder + "': tensor '" + hf_name + "' is " + shape_string(source->shape) + ", config.json makes it " +
                              shape_string(expected));
        used.insert(hf_name);
        const auto gguf_shape = t.gguf_shape(c.sizes);
        plan.push_back({t.gguf_tensor_name(layer), source, &t, gguf_shape, tensor_type_for(t, gguf_shape[0], type)});
    };
    for (const auto& t : c.architecture->tensors)
        if (!t.per_layer) add(t, 0);
    for (std::size_t l = 0; l < c.sizes.layers; ++l)
        for (const auto& t : c.architecture->tensors)
            if (t.per_layer) add(t, l);
    for (const auto& [name, tensor] : weights.tensors()) {
        // The rotary tables some checkpoints carry are recomputed from the config (llama.cpp skips them too).
        if (used.contains(name) || name.ends_with(".rotary_emb.inv_freq")) continue;
        throw format_error("'" + folder + "': tensor '" + name + "' is not part of the " + std::string(c.architecture->name) +
                           " architecture with " + std::to_string(c.sizes.layers) + " layers");
    }
    const bool has_output = weights.find("lm_head.weight") != nullptr;
    if (!has_output && !c.tie_word_embeddings)
        throw format_error("'" + folder + "': there is no lm_head.weight, and config.json does not tie the word embeddings");
    return plan;
}

/// Decodes `t`'s values in GGUF's row order.
[[nodiscard]] inline std::vector<float> gguf_values(const hf_planned_tensor& t, const architecture_config& sizes) {
    std::vector<float> values(t.source->elements());
    decode_to_f32(*t.source, values);
    if (t.schema->order == row_order::as_stored) return values;
    const std::size_t rows = static_cast<std::size_t>(extent_of(sizes, t.schema->rows));
    const std::size_t cols = static_cast<std::size_t>(extent_of(sizes, t.schema->row_length));
    const std::size_t heads = t.schema->order == row_order::interleave_query_heads ? sizes.heads : sizes.kv_heads;
    check_row_order(t.name, rows, heads);
    std::vector<float> out(values.size());
    for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t to = gguf_row_of(r, rows, heads);
        std::copy_n(values.begin() + static_cast<std::ptrdiff_t>(r * cols), cols, out.begin() + static_cast<std::ptrdiff_t>(to * cols));
    }
    return out;
}

/// The architecture's keys, in the order llama.cpp's converter sets them.
inline void set_architecture_keys(gguf::writer& out, const hf_model_config& c, ggml_type type) {
    const std::string a(c.architecture->name);
    const auto& s = c.sizes;
    out.set(a + ".block_count", gguf::value(s.layers));
    if (s.context_length != 0) out.set(a + ".context_length", gguf::value(s.context_length));
    out.set(a + ".embedding_length", gguf::value(s.hidden));
    out.set(a + ".feed_forward_length", gguf::value(s.feed_forward));
    out.set(a + ".attention.head_count", gguf::value(s.heads));
    out.set(a + ".attention.head_count_kv", gguf::value(s.kv_heads));
    if (c.rope_theta) out.set(a + ".rope.freq_base", gguf::value(*c.rope_theta));
    if (c.rms_norm_eps) out.set(a + ".attention.layer_norm_rms_epsilon", gguf::value(*c.rms_norm_eps));
    if (c.has_head_dim) {
        out.set(a + ".attention.key_length", gguf::value(s.head_dim));
        out.set(a + ".attention.value_length", gguf::value(s.head_dim));
    }
    out.set("general.file_type", gguf::value(static_cast<std::uint32_t>(file_type_for(type))));
    if (a == "llama") {
        out.set(a + ".vocab_size", gguf::value(s.vocab));
        out.set(a + ".rope.dimension_count", gguf::value(s.head_dim));
        if (c.scaling.kind == rope_scaling_kind::linear) {
            out.set(a + ".rope.scaling.type", gguf::value(std::string("linear")));
            out.set(a + ".rope.scaling.factor", gguf::value(c.scaling.factor));
        }
    }
    out.set("general.quantization_version", gguf::value(std::uint32_t{2}));
}

inline void set_tokenizer_keys(gguf::writer& out, const hf_tokenizer& t) {
    out.set("tokenizer.ggml.model", gguf::value(t.model));
    out.set("tokenizer.ggml.pre", gguf::value(t.pre));
    out.set("tokenizer.ggml.tokens", gguf::value(t.tokens));
    if (!t.scores.empty()) out.set("tokenizer.ggml.scores", gguf::value(t.scores));
    out.set("tokenizer.ggml.token_type", gguf::value(t.types));
    if (!t.merges.empty()) out.set("tokenizer.ggml.merges", gguf::value(t.merges));
    if (t.bos_id) out.set("tokenizer.ggml.bos_token_id", gguf::value(*t.bos_id));
    if (t.eos_id) out.set("tokenizer.ggml.eos_token_id", gguf::value(*t.eos_id));
    if (t.unknown_id) out.set("tokenizer.ggml.unknown_token_id", gguf::value(*t.unknown_id));
    if (t.padding_id) out.set("tokenizer.ggml.padding_token_id", gguf::value(*t.padding_id));
    if (t.add_bos) out.set("tokenizer.ggml.add_bos_token", gguf::value(*t.add_bos));
    if (t.add_eos) out.set("tokenizer.ggml.add_eos_token", gguf::value(*t.add_eos));
    if (t.chat_template) out.set("tokenizer.chat_template", gguf::value(*t.chat_template));
}

}  // namespace detail

/// The rope_freqs tensor's schema entry (Llama 3's rotary scaling factors, one per rotary pair).
inline constexpr hf_tensor_schema rope_freqs_schema{"", "rope_freqs.weight", false, arch_extent::rope_pairs, arch_extent::one};

/// Converts the Hugging Face folder `dir` into the GGUF `out` (or a split set under `split`), its matrices in
/// `type` (see check_conversion_type), vectors in f32. Everything is checked before anything is written:
/// io_error for a file that cannot be read; format_error naming the file and the reason for what
/// read_hf_config, read_hf_tokenizer and safetensors_model refuse, a missing tensor, a tensor the
/// architecture does not have, a missing classifier the config does not tie; shape_error for a tensor whose
/// shape disagrees with config.json. All or nothing: no output file is changed on any error.
inline hf_conversion convert_hf(const std::filesystem::path& dir, const std::filesystem::path& out, ggml_type type = ggml_type::f32,
                                gguf::split_limits split = {}) {
    check_conversion_type(type);
    hf_conversion result;
    result.config = read_hf_config(dir);
    const hf_model_config& c = result.config;
    // The weights first: their shapes bound config.json's sizes (vocab_size among them) by the files' bytes
    // before the tokenizer allocates a token per id.
    const safetensors_model weights = safetensors_model::open_folder(dir);
    result.tensors = detail::plan_tensors(dir, c, weights, type);
    const hf_tokenizer tokenizer = read_hf_tokenizer(dir, c);
    if (c.scaling.kind == rope_scaling_kind::llama3 && c.architecture->name == "llama")
        result.tensors.insert(result.tensors.begin(),
                              hf_planned_tensor{std::string(rope_freqs_schema.gguf_name), nullptr, &rope_freqs_schema,
                                                rope_freqs_schema.gguf_shape(c.sizes), ggml_type::f32});

    gguf::writer w(out);
    w.set_split(split);
    w.set("general.architecture", gguf::value(std::string(c.architecture->name)));
    w.set("general.type", gguf::value(std::string("model")));
    auto folder = std::filesystem::absolute(dir).lexically_normal();
    if (folder.filename().empty()) folder = folder.parent_path();  // "dir/" names dir
    w.set("general.name", gguf::value(folder.filename().string()));
    detail::set_architecture_keys(w, c, type);
    detail::set_tokenizer_keys(w, tokenizer);
    for (const auto& t : result.tensors) {
        w.add_tensor(t.name, t.gguf_shape, t.type, [&t, &c](std::span<std::byte> bytes) {
            const std::vector<float> values = t.source == nullptr ? llama3_rope_factors(c) : detail::gguf_values(t, c.sizes);
            try {
                quantize(t.type, values, bytes);
            } catch (const value_error& e) {
                throw value_error("tensor '" + t.name + "': " + e.what(), e.index());
            }
        });
    }
    w.finish();
    result.tokens = tokenizer.tokens.size();
    result.merges = tokenizer.merges.size();
    result.pre = tokenizer.pre;
    result.files = w.output_paths();
    return result;
}

}  // namespace cogqat::io
