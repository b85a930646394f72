#pragma once
// A Llama-family model as float tensors named and shaped the way GGUF's llama architecture names them,
// with the hyper-parameters and vocabulary llama.cpp needs. It is what importers produce and what the
// GGUF writer and the generators consume.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/matrix_shape.hpp"

namespace cogqat {

/// The transformer families the runtime runs, by their GGUF general.architecture. They differ in which
/// tensors a layer has (model/llama_schema.hpp) and how RoPE pairs a head's values (model/llama_model.hpp).
enum class model_architecture : std::uint8_t { llama, qwen2, qwen3 };

/// Hyper-parameters of a Llama-family transformer.
struct llama_config {
    std::uint32_t dim = 0;         ///< embedding width
    std::uint32_t hidden_dim = 0;  ///< feed-forward width
    std::uint32_t n_layers = 0;
    std::uint32_t n_heads = 0;
    std::uint32_t n_kv_heads = 0;  ///< < n_heads for grouped-query attention
    std::uint32_t vocab_size = 0;
    std::uint32_t context_length = 0;
    float rms_norm_eps = 1e-5f;
    float rope_freq_base = 10000.0f;
    // The members above are in the order existing code initializes them positionally; new ones go below.
    model_architecture architecture = model_architecture::llama;
    std::uint32_t head_dim = 0;    ///< width of one attention head; 0: dim / n_heads (Qwen3 sets its own)
    float rope_freq_scale = 1.0f;  ///< linear RoPE scaling: positions are multiplied by it (1 / rope.scaling.factor)
    bool rope_factors = false;     ///< the model has rope_freqs.weight (Llama 3's per-pair frequency divisors)

    [[nodiscard]] constexpr std::uint32_t head_size() const noexcept { return head_dim ? head_dim : (n_heads ? dim / n_heads : 0); }
    /// Width of all query heads together (dim unless the head size is explicit).
    [[nodiscard]] constexpr std::uint32_t q_dim() const noexcept { return head_size() * n_heads; }
    [[nodiscard]] constexpr std::uint32_t kv_dim() const noexcept { return head_size() * n_kv_heads; }
};

/// One float tensor; shape as GGUF's ne (shape[0] is the row length, the innermost dimension).
struct float_tensor {
    std::string name;
    std::vector<std::uint64_t> shape;
    std::vector<float> values;

    /// Its rows x cols (a vector is 1 x n); shape_error for more than two dimensions.
    [[nodiscard]] matrix_shape matrix() const { return matrix_shape::from_gguf(shape); }
    /// Its values as a rows x cols view; shape_error if they are not as many as the shape says.
    [[nodiscard]] matrix_view<float> view() { return matrix().view(std::span<float>(values)); }
    [[nodiscard]] matrix_view<const float> view() const { return matrix().view(std::span<const float>(values)); }
};

/// Token kinds as GGUF's tokenizer.ggml.token_type stores them.
enum class token_kind : std::int32_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

/// The ids that are not text: what data-free calibration never draws as a random token. By the vocabulary's
/// kinds where it has them for every id (control, unknown and unused tokens), else SentencePiece's fixed
/// 0..2 (<unk>, <s>, </s>); a BPE vocabulary without kinds names only its BOS and EOS, which are always in.
/// Sorted, each once.
[[nodiscard]] inline std::vector<std::int32_t> special_token_ids(std::span<const token_kind> kinds, std::uint32_t vocab_size,
                                                                 bool sentencepiece, std::uint32_t bos, std::uint32_t eos) {
    std::vector<std::int32_t> ids;
    if (kinds.size() == vocab_size) {
        for (std::size_t i = 0; i < kinds.size(); ++i)
            if (kinds[i] == token_kind::control || kinds[i] == token_kind::unknown || kinds[i] == token_kind::unused)
                ids.push_back(static_cast<std::int32_t>(i));
    } else if (sentencepiece) {
        for (std::int32_t i = 0; i < 3 && static_cast<std::uint32_t>(i) < vocab_size; ++i) ids.push_back(i);
    }
    for (auto id : {bos, eos})
        if (id < vocab_size) ids.push_back(static_cast<std::int32_t>(id));
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
}

/// A tokenizer's vocabulary, as GGUF's tokenizer.ggml.* keys hold it. Model "llama" (SentencePiece style):
/// pieces use U+2581 for spaces and carry scores. Model "gpt2" (byte-level BPE): pieces are written in GPT-2's
/// byte-to-unicode alphabet, merges ("left right", best first) and a pre-tokenizer name say how text becomes
/// them, and scores may be empty.
struct vocabulary {
    std::vector<std::string> pieces;
    std::vector<float> scores;
    std::vector<token_kind> kinds;
    std::uint32_t unknown_id = 0, bos_id = 1, eos_id = 2;
    std::string model = "llama";      ///< tokenizer.ggml.model: "llama" or "gpt2"
    std::string pre;                  ///< tokenizer.ggml.pre (gpt2): the pre-tokenizer's name, empty for "default"
    std::vector<std::string> merges;  ///< tokenizer.ggml.merges (gpt2)
    std::optional<bool> add_bos;      ///< tokenizer.ggml.add_bos_token, when the file says
    std::optional<bool> add_eos;      ///< tokenizer.ggml.add_eos_token, when the file says
};

/// Everything needed to write a llama-architecture GGUF.
struct llama_weights {
    llama_config config;
    std::vector<float_tensor> tensors;  ///< GGUF order: token_embd, output_norm, [output], then blk.N.*
    vocabulary vocab;
    std::string name = "llama";
};

}  // namespace cogqat
