#pragma once
// Writing a float llama model as a llama-architecture GGUF with the metadata and tokenizer keys llama.cpp
// reads (the same keys llama.cpp's own llama2.c converter writes).

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/format/ggml_type.hpp"
#include "cogqat/io/gguf.hpp"
#include "cogqat/model/llama_schema.hpp"
#include "cogqat/model/llama_weights.hpp"

namespace cogqat::io {

/// Sets the llama architecture and tokenizer keys of `w` on a GGUF writer.
inline void set_llama_metadata(gguf::writer& out, const llama_weights& w) {
    const auto& c = w.config;
    out.set("general.architecture", gguf::value(std::string(llama_architecture)));
    out.set("general.name", gguf::value(w.name));
    for (const auto& key : llama_config_keys) {
        if (key.real)
            out.set(gguf_key(key), gguf::value(c.*key.real));
        else
            out.set(gguf_key(key), gguf::value(key.derived ? key.derived(c) : c.*key.integer));
    }

    const auto& v = w.vocab;
    if (v.pieces.size() != c.vocab_size || v.scores.size() != c.vocab_size || v.kinds.size() != c.vocab_size) {
        throw invalid_argument_error("vocabulary has " + std::to_string(v.pieces.size()) + " tokens, the model " +
                                     std::to_string(c.vocab_size));
    }
    std::vector<std::int32_t> kinds;
    for (auto k : v.kinds) kinds.push_back(static_cast<std::int32_t>(k));
    out.set("tokenizer.ggml.model", gguf::value(std::string("llama")));
    out.set("tokenizer.ggml.tokens", gguf::value(v.pieces));
    out.set("tokenizer.ggml.scores", gguf::value(v.scores));
    out.set("tokenizer.ggml.token_type", gguf::value(kinds));
    out.set("tokenizer.ggml.unknown_token_id", gguf::value(v.unknown_id));
    out.set("tokenizer.ggml.bos_token_id", gguf::value(v.bos_id));
    out.set("tokenizer.ggml.eos_token_id", gguf::value(v.eos_id));
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
