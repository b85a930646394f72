#pragma once
// The llama ("SentencePiece BPE") tokenizer: text -> token ids by greedy merging of the adjacent pair whose
// merged piece scores highest, with byte fallback for characters the vocabulary lacks; ids -> text back.
// Vocabularies come from a GGUF (io::read_tokenizer) or from a llama2.c tokenizer file (via vocabulary). Users
// hold it through model/tokenizer.hpp's tokenizer, which picks it for a "llama" vocabulary.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/model/llama_weights.hpp"

namespace cogqat {

/// Encodes and decodes with a SentencePiece-style ("llama") vocabulary as llama.cpp does.
class spm_tokenizer {
public:
    using token = std::int32_t;
    static constexpr std::string_view space_marker = "\xE2\x96\x81";  // U+2581, SentencePiece's space

    /// From a vocabulary whose pieces use U+2581 for spaces (GGUF's convention; see io/llama2c.hpp).
    explicit spm_tokenizer(vocabulary vocab) : vocab_(std::move(vocab)) {
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
        scores_.reserve(vocab_.scores.size());
        for (float score : vocab_.scores) scores_.push_back(std::isnan(score) ? -std::numeric_limits<float>::infinity() : score);
        for (const auto& p : vocab_.pieces) max_piece_bytes_ = std::max(max_piece_bytes_, p.size());
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
            if (c == ' ')
                normalized += space_marker;
            else
                normalized += c;
        }
        merge(normalized, out);
        return out;
    }

    /// The longest piece in bytes (U+2581 counted as its 3 bytes): a token covers at most this many bytes of
    /// text, so a text of n bytes has at least n / max_piece_bytes() tokens (a bound checked before encoding).
    [[nodiscard]] std::size_t max_piece_bytes() const noexcept { return max_piece_bytes_; }

    /// The text of one token: U+2581 back to spaces, byte tokens to their byte, control tokens to nothing.
    [[nodiscard]] std::string piece(token id) const {
        if (id < 0 || static_cast<std::size_t>(id) >= size())
            throw invalid_argument_error("token id " + std::to_string(id) + " is out of range");
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
    /// Greedy merging in O(n log n): the candidate pairs sit in a heap ordered by score, then by position
    /// (leftmost first), which is the order in which searching the whole text afresh after every merge takes
    /// them. Symbols form a linked list over `text`; a merge invalidates the pairs that touched it, which are
    /// recognised when popped (a symbol gone, or lengths that no longer add up) and skipped.
    void merge(std::string_view text, std::vector<token>& out) const {
        struct symbol {
            std::size_t begin, length;
            std::ptrdiff_t prev, next;
        };
        struct pair {
            float score;
            std::size_t left, right, length;
            // The top of a std::priority_queue is its largest element: higher score, then lower position.
            bool operator<(const pair& other) const noexcept { return score < other.score || (score == other.score && left > other.left); }
        };
        std::vector<symbol> symbols;
        for (std::size_t i = 0; i < text.size();) {
            const std::size_t take = std::min(utf8_length(static_cast<unsigned char>(text[i])), text.size() - i);
            const auto n = static_cast<std::ptrdiff_t>(symbols.size());
            symbols.push_back({i, take, n - 1, n + 1});
            i += take;
        }
        if (!symbols.empty()) symbols.back().next = -1;
        std::priority_queue<pair> pairs;
        auto consider = [&](std::ptrdiff_t left, std::ptrdiff_t right) {
            if (left < 0 || right < 0) return;
            const auto& a = symbols[static_cast<std::size_t>(left)];
            const auto& b = symbols[static_cast<std::size_t>(right)];
            const auto it = ids_.find(text.substr(a.begin, a.length + b.length));
            if (it == ids_.end()) return;
            pairs.push({scores_[static_cast<std::size_t>(it->second)], static_cast<std::size_t>(left), static_cast<std::size_t>(right),
                        a.length + b.length});
        };
        for (std::size_t i = 0; i + 1 < symbols.size(); ++i) consider(static_cast<std::ptrdiff_t>(i), static_cast<std::ptrdiff_t>(i + 1));
        while (!pairs.empty()) {
            const pair p = pairs.top();
            pairs.pop();
            auto& a = symbols[p.left];
            auto& b = symbols[p.right];
            if (a.length == 0 || b.length == 0 || a.next != static_cast<std::ptrdiff_t>(p.right) || a.length + b.length != p.length)
                continue;
            a.length += b.length;
            b.length = 0;
            a.next = b.next;
            if (b.next >= 0) symbols[static_cast<std::size_t>(b.next)].prev = static_cast<std::ptrdiff_t>(p.left);
            consider(a.prev, static_cast<std::ptrdiff_t>(p.left));
            consider(static_cast<std::ptrdiff_t>(p.left), a.next);
        }
        for (std::ptrdiff_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[static_cast<std::size_t>(i)].next) {
            const auto& sym = symbols[static_cast<std::size_t>(i)];
            const auto piece = text.substr(sym.begin, sym.length);
            if (const auto it = ids_.find(piece); it != ids_.end()) {
                out.push_back(it->second);
            } else {
                for (const char b : piece) out.push_back(byte_tokens_[static_cast<unsigned char>(b)]);
            }
        }
    }

    /// Hashes std::string and std::string_view alike, so that a piece is looked up without a copy.
    struct piece_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };

    /// The byte a "<0xHH>" piece stands for, or -1 when the piece is not of that form.
    static int byte_value(std::string_view p) noexcept {
        auto hex = [](char c) {
            return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        };
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
    std::vector<float> scores_;  ///< vocab_.scores with NaN read as -inf: a hostile file cannot break the heap's order
    std::unordered_map<std::string, token, piece_hash, std::equal_to<>> ids_;
    std::size_t max_piece_bytes_ = 1;
    std::array<token, 256> byte_tokens_ = filled(-1);

    static constexpr std::array<token, 256> filled(token v) {
        std::array<token, 256> a{};
        a.fill(v);
        return a;
    }
};

}  // namespace cogqat
