#pragma once
// The llama ("SentencePiece BPE") tokenizer: text -> token ids by greedy merging of the adjacent pair whose
// merged piece scores highest, with byte fallback for characters the vocabulary lacks; ids -> text back.
// Vocabularies come from a GGUF (tokenizer.ggml.*) or from a llama2.c tokenizer file (via vocabulary).

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/io/gguf.hpp"
#include "cogqat/model/llama_weights.hpp"

namespace cogqat {

class tokenizer {
public:
    using token = std::int32_t;
    static constexpr std::string_view space_marker = "\xE2\x96\x81";  // U+2581, SentencePiece's space

    /// From a vocabulary whose pieces use U+2581 for spaces (GGUF's convention; see io/llama2c.hpp).
    explicit tokenizer(vocabulary vocab) : vocab_(std::move(vocab)) {
        if (vocab_.pieces.size() != vocab_.scores.size() || vocab_.pieces.size() != vocab_.kinds.size())
            throw invalid_argument_error("tokenizer: pieces, scores and kinds differ in length");
        if (vocab_.pieces.size() > static_cast<std::size_t>(std::numeric_limits<token>::max()))
            throw invalid_argument_error("tokenizer: vocabulary too large");
        for (std::size_t id = 0; id < vocab_.pieces.size(); ++id) {
            const auto kind = vocab_.kinds[id];
            if (kind == token_kind::byte) {
                if (const int b = byte_value(vocab_.pieces[id]); b >= 0) byte_tokens_[static_cast<std::size_t>(b)] = static_cast<token>(id);
            } else if (kind == token_kind::normal || kind == token_kind::user_defined || kind == token_kind::unknown) {
                ids_.emplace(vocab_.pieces[id], static_cast<token>(id));
            }
        }
        for (std::size_t b = 0; b < 256; ++b)
            if (byte_tokens_[b] < 0) byte_tokens_[b] = static_cast<token>(vocab_.unknown_id);
    }

    /// From a GGUF's tokenizer.ggml.* keys (model "llama").
    [[nodiscard]] static tokenizer from_gguf(const gguf::reader& in) {
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

    [[nodiscard]] std::size_t size() const noexcept { return vocab_.pieces.size(); }
    [[nodiscard]] token bos() const noexcept { return static_cast<token>(vocab_.bos_id); }
    [[nodiscard]] token eos() const noexcept { return static_cast<token>(vocab_.eos_id); }
    [[nodiscard]] const vocabulary& vocab() const noexcept { return vocab_; }

    /// Encodes `text` as llama.cpp does for a llama SentencePiece vocabulary: spaces become U+2581, one is
    /// prefixed when `add_space_prefix` and the text is not empty, then pieces are merged best score first
    /// (leftmost on ties). BOS is prepended when `add_bos`.
    [[nodiscard]] std::vector<token> encode(std::string_view text, bool add_bos = false, bool add_space_prefix = true) const {
        std::vector<token> out;
        if (add_bos) out.push_back(bos());
        if (text.empty()) return out;
        std::string normalized;
        if (add_space_prefix) normalized += space_marker;
        for (char c : text) {
            if (c == ' ') normalized += space_marker;
            else normalized += c;
        }
        // Start from UTF-8 characters.
        std::vector<std::string> symbols;
        for (std::size_t i = 0; i < normalized.size();) {
            const std::size_t n = utf8_length(static_cast<unsigned char>(normalized[i]));
            const std::size_t take = std::min(n, normalized.size() - i);
            symbols.push_back(normalized.substr(i, take));
            i += take;
        }
        // Greedy merging; the best pair is searched afresh after each merge (vocabularies here are small and
        // texts are split by the caller into lines, so the quadratic cost does not matter).
        while (symbols.size() > 1) {
            float best_score = -std::numeric_limits<float>::infinity();
            std::size_t best = symbols.size();
            for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
                const auto it = ids_.find(symbols[i] + symbols[i + 1]);
                if (it != ids_.end() && (best == symbols.size() || vocab_.scores[static_cast<std::size_t>(it->second)] > best_score)) {
                    best_score = vocab_.scores[static_cast<std::size_t>(it->second)];
                    best = i;
                }
            }
            if (best == symbols.size()) break;
            symbols[best] += symbols[best + 1];
            symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
        }
        for (const auto& s : symbols) {
            if (const auto it = ids_.find(s); it != ids_.end()) {
                out.push_back(it->second);
            } else {
                for (unsigned char b : s) out.push_back(byte_tokens_[b]);
            }
        }
        return out;
    }

    /// The text of one token: U+2581 back to spaces, byte tokens to their byte, control tokens to nothing.
    [[nodiscard]] std::string piece(token id) const {
        if (id < 0 || static_cast<std::size_t>(id) >= size()) throw invalid_argument_error("token id " + std::to_string(id) + " is out of range");
        const auto kind = vocab_.kinds[static_cast<std::size_t>(id)];
        const auto& p = vocab_.pieces[static_cast<std::size_t>(id)];
        if (kind == token_kind::control || kind == token_kind::unused) return {};
        if (kind == token_kind::byte) {
            const int b = byte_value(p);
            return b >= 0 ? std::string(1, static_cast<char>(b)) : std::string();
        }
        std::string text;
        for (std::size_t i = 0; i < p.size();) {
            if (p.compare(i, space_marker.size(), space_marker) == 0) {
                text += ' ';
                i += space_marker.size();
            } else {
                text += p[i++];
            }
        }
        return text;
    }

    /// Decodes ids to text; a leading space from the space prefix is dropped when `strip_space_prefix`.
    [[nodiscard]] std::string decode(const std::vector<token>& ids, bool strip_space_prefix = true) const {
        std::string text;
        for (auto id : ids) text += piece(id);
        if (strip_space_prefix && !text.empty() && text.front() == ' ') text.erase(text.begin());
        return text;
    }

private:
    /// The byte a "<0xHH>" piece stands for, or -1 when the piece is not of that form.
    static int byte_value(std::string_view p) noexcept {
        auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
        if (p.size() != 6 || !p.starts_with("<0x") || p.back() != '>' || hex(p[3]) < 0 || hex(p[4]) < 0) return -1;
        return hex(p[3]) * 16 + hex(p[4]);
    }

    static std::size_t utf8_length(unsigned char lead) noexcept {
        if (lead < 0x80) return 1;
        if ((lead >> 5) == 0x6) return 2;
        if ((lead >> 4) == 0xE) return 3;
        if ((lead >> 3) == 0x1E) return 4;
        return 1;  // a stray continuation byte: on its own, it will fall back to a byte token
    }

    vocabulary vocab_;
    std::unordered_map<std::string, token> ids_;
    std::array<token, 256> byte_tokens_ = filled(-1);

    static constexpr std::array<token, 256> filled(token v) {
        std::array<token, 256> a{};
        a.fill(v);
        return a;
    }
};

} // namespace cogqat
