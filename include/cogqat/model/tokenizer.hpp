#pragma once
// The tokenizer users hold, whatever the model: a SentencePiece-style vocabulary (GGUF's tokenizer.ggml.model
// "llama", model/spm_tokenizer.hpp) or a byte-level BPE one ("gpt2": GPT-2, Llama 3, Qwen2; model/bpe_tokenizer.hpp),
// chosen from the vocabulary. The two are a closed set, held by value: a std::variant, not a class hierarchy.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/model/bpe_tokenizer.hpp"
#include "cogqat/model/llama_weights.hpp"
#include "cogqat/model/spm_tokenizer.hpp"

namespace cogqat {

/// Encodes and decodes with a GGUF's vocabulary, SentencePiece or byte-level BPE, as llama.cpp does.
class tokenizer {
public:
    using token = std::int32_t;
    static constexpr std::string_view space_marker = spm_tokenizer::space_marker;

    /// The tokenizer of `vocab.model`: "llama" or "gpt2"; invalid_argument_error for another model, and for
    /// whatever the chosen tokenizer refuses in the vocabulary.
    explicit tokenizer(vocabulary vocab) : impl_(make(std::move(vocab))) {}

    /// The number of tokens.
    [[nodiscard]] std::size_t size() const noexcept {
        return std::visit([](const auto& t) { return t.size(); }, impl_);
    }
    /// The BOS and EOS ids.
    [[nodiscard]] token bos() const noexcept {
        return std::visit([](const auto& t) { return t.bos(); }, impl_);
    }
    [[nodiscard]] token eos() const noexcept {
        return std::visit([](const auto& t) { return t.eos(); }, impl_);
    }
    /// The vocabulary, as given.
    [[nodiscard]] const vocabulary& vocab() const noexcept {
        return std::visit([](const auto& t) -> const vocabulary& { return t.vocab(); }, impl_);
    }
    /// A token covers at most this many bytes of text, so a text of n bytes has at least n / max_piece_bytes() tokens.
    [[nodiscard]] std::size_t max_piece_bytes() const noexcept {
        return std::visit([](const auto& t) { return t.max_piece_bytes(); }, impl_);
    }
    /// The byte-level BPE tokenizer, or null for a SentencePiece vocabulary.
    [[nodiscard]] const bpe_tokenizer* bpe() const noexcept { return std::get_if<bpe_tokenizer>(&impl_); }

    /// Whether encoding with special tokens starts with BOS: tokenizer.ggml.add_bos_token when the file says,
    /// else llama.cpp's default (SentencePiece and Llama 3: yes; GPT-2 and Qwen2: no).
    [[nodiscard]] bool adds_bos() const noexcept {
        if (const auto* b = bpe()) return b->adds_bos();
        return vocab().add_bos.value_or(true);
    }

    /// Encodes `text` as llama.cpp's llama_tokenize does with add_special = `add_special` and no special-token
    /// parsing. SentencePiece: a space prefix when `add_space_prefix`, BOS first when `add_special` and
    /// adds_bos(). BPE: BOS / EOS as the vocabulary says when `add_special`; `add_space_prefix` does not apply.
    [[nodiscard]] std::vector<token> encode(std::string_view text, bool add_special = false, bool add_space_prefix = true) const {
        if (const auto* b = bpe()) return b->encode(text, add_special);
        return std::get<spm_tokenizer>(impl_).encode(text, add_special && adds_bos(), add_space_prefix);
    }

    /// The text of one token (control tokens give nothing); invalid_argument_error for an id out of range.
    [[nodiscard]] std::string piece(token id) const {
        return std::visit([id](const auto& t) { return t.piece(id); }, impl_);
    }

    /// Decodes ids to text. SentencePiece: the space prefix's leading space is dropped when `strip_space_prefix`.
    [[nodiscard]] std::string decode(const std::vector<token>& ids, bool strip_space_prefix = true) const {
        if (const auto* b = bpe()) return b->decode(ids);
        return std::get<spm_tokenizer>(impl_).decode(ids, strip_space_prefix);
    }

private:
    using variant = std::variant<spm_tokenizer, bpe_tokenizer>;

    static variant make(vocabulary vocab) {
        if (vocab.model == "llama") return spm_tokenizer(std::move(vocab));
        if (vocab.model == "gpt2") return bpe_tokenizer(std::move(vocab));
        throw invalid_argument_error("tokenizer model '" + vocab.model + "' is not supported (llama, gpt2)");
    }

    variant impl_;
};

}  // namespace cogqat
