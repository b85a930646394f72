#pragma once
// Writing a float model of the llama family (llama, qwen2, qwen3) as a GGUF with the metadata and tokenizer
// keys llama.cpp reads (for llama, the same keys llama.cpp's own llama2.c converter writes).

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/format/ggml_type.hpp"
#include "cogqat/io/gguf.hpp"
#include "cogqat/model/bpe_tokenizer.hpp"
#include "cogqat/model/llama_schema.hpp"
#include "cogqat/model/llama_weights.hpp"

namespace cogqat::io {

/// Sets the tokenizer.ggml.* keys of `v` on a GGUF writer, as llama.cpp's converters write them: a "llama"
/// vocabulary with scores and an unknown id; a "gpt2" one with its merges, pre-tokenizer (when named) and scores
/// (when it has them). add_bos_token / add_eos_token when the vocabulary says. invalid_argument_error when its
/// arrays do not all have the model's `vocab_size` tokens, or for a "gpt2" vocabulary bpe_tokenizer refuses.
inline void set_tokenizer_metadata(gguf::writer& out, const vocabulary& v, std::uint32_t vocab_size) {
    const bool bpe = v.model == "gpt2";
    if (v.model != "llama" && !bpe) throw invalid_argument_error("tokenizer model '" + v.model + "' cannot be written (llama, gpt2)");
    const bool scored = !bpe || !v.scores.empty();
    if (v.pieces.size() != vocab_size || (scored && v.scores.size() != vocab_size) || v.kinds.size() != vocab_size) {
        throw invalid_argument_error("vocabulary has " + std::to_string(v.pieces.size()) + " tokens, " + std::to_string(v.scores.size()) +
                                     " scores and " + std::to_string(v.kinds.size()) + " token types; the model " +
                                     std::to_string(vocab_size));
    }
    // What the tokenizer refuses (a duplicated piece, a merge naming a missing one, ...) llama.cpp would refuse or
    // abort on: such a vocabulary is not written.
    if (bpe) static_cast<void>(bpe_tokenizer(v));
    std::vector<std::int32_t> kinds;
    for (auto k : v.kinds) kinds.push_back(static_cast<std::int32_t>(k));
    out.set("tokenizer.ggml.model", gguf::value(v.model));
    if (bpe && !v.pre.empty()) out.set("tokenizer.ggml.pre", gguf::value(v.pre));
    out.set("tokenizer.ggml.tokens", gguf::value(v.pieces));
    if (scored) out.set("tokenizer.ggml.scores", gguf::value(v.scores));
    out.set("tokenizer.ggml.token_type", gguf::value(kinds));
    if (bpe) out.set("tokenizer.ggml.merges", gguf::value(v.merges));
    if (!bpe) out.set("tokenizer.ggml.unknown_token_id", gguf::value(v.unknown_id));
    out.set("tokenizer.ggml.bos_token_id", gguf::value(v.bos_id));
    out.set("tokenizer.ggml.eos_token_id", gguf::value(v.eos_id));
    if (v.add_bos) out.set("tokenizer.ggml.add_bos_token", gguf::value(*v.add_bos));
    if (v.add_eos) out.set("tokenizer.ggml.add_eos_token", gguf::value(*v.add_eos));
}

/// Sets the architecture (general.architecture and its keys, e.g. qwen3.attention.key_length when the head
/// size is explicit, linear RoPE scaling when set) and tokenizer keys of `w` on a GGUF writer.
inline void set_llama_metadata(gguf::writer& out, const llama_weights& w) {
    const auto& c = w.config;
    const std::string arch(architecture_name(c.architecture));
    out.set("general.architecture", gguf::value(arch));
    out.set("general.name", gguf::value(w.name));
    for (const auto& key : llama_config_keys) {
        if (key.real)
            out.set(gguf_key(key, c.architecture), gguf::value(c.*key.real));
        else if (key.derived)
            out.set(gguf_key(key, c.architecture), gguf::value(key.derived(c)));
        else if (!key.written_when_set || c.*key.integer != 0)
            out.set(gguf_key(key, c.architecture), gguf::value(c.*key.integer));
    }
    if (c.rope_freq_scale != 1.0f) {
        out.set(arch + "." + std::string(rope_scaling_type_suffix), gguf::value(std::string("linear")));
        out.set(arch + "." + std::string(rope_scaling_factor_suffix), gguf::value(1.0f / c.rope_freq_scale));
    }

    set_tokenizer_metadata(out, w.vocab, c.vocab_size);
}

/// Writes `w` as a GGUF whose weights are `type` (f32 by default; f16/bf16 also make sense here), norms
/// always f32; a split set when `split` is active. All or nothing: the files appear only once complete.
/// Returns the files written.
inline std::vector<std::filesystem::path> write_llama_gguf(const llama_weights& w, const std::filesystem::path& path,
                                                           ggml_type type = ggml_type::f32, gguf::split_limits split = {}) {
    gguf::writer out(path);
    out.set_split(split);
    set_llama_metadata(out, w);
    out.set("general.file_type", gguf::value(static_cast<std::uint32_t>(file_type_for(type))));
    for (const auto& t : w.tensors) {
        const ggml_type tensor_type = t.shape.size() < 2 ? ggml_type::f32 : type;
        out.add_tensor(t.name, t.shape, tensor_type,
                       [&t, tensor_type](std::span<std::byte> bytes) { quantize(tensor_type, t.values, bytes); });
    }
    out.finish();
    return out.output_paths();
}

}  // namespace cogqat::io
