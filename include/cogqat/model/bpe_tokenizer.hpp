#pragma once
// The byte-level BPE tokenizer (GGUF's tokenizer.ggml.model "gpt2": GPT-2, Llama 3, Qwen2): special tokens are cut
// out of the text whole, the rest is split into words by the vocabulary's pre-tokenizer (model/bpe_pretokenizer.hpp)
// and each word merged pair by pair, the best-ranked merge first, as llama.cpp does (src/llama-vocab.cpp); ids
// back to text through GPT-2's byte alphabet.

#include <algorithm>
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
#include "cogqat/model/bpe_pretokenizer.hpp"
#include "cogqat/model/llama_weights.hpp"

namespace cogqat {

/// Encodes and decodes with a byte-level BPE ("gpt2") vocabulary as llama.cpp does.
class bpe_tokenizer {
public:
    using token = std::int32_t;

    /// From a "gpt2" vocabulary. invalid_argument_error, naming the entry, for: token types or scores of another
    /// length than the pieces; two tokens with the same piece (llama.cpp aborts on it; an empty piece reads as
    /// "[EMPTY_<id>]", as llama.cpp reads it); an unknown pre-tokenizer; a BOS or EOS id out of range; a merge
    /// that is not "left right" or names a piece (left, right or the two joined) the vocabulary lacks.
    explicit bpe_tokenizer(vocabulary vocab) : vocab_(std::move(vocab)), pre_(bpe_pre_settings_named(vocab_.pre)) {
        const std::size_t n = vocab_.pieces.size();
        if (vocab_.kinds.size() != n || (!vocab_.scores.empty() && vocab_.scores.size() != n))
            throw invalid_argument_error("BPE vocabulary: " + std::to_string(n) + " pieces but " + std::to_string(vocab_.kinds.size()) +
                                         " token types and " + std::to_string(vocab_.scores.size()) + " scores");
        if (n > static_cast<std::size_t>(std::numeric_limits<token>::max()))
            throw invalid_argument_error("BPE vocabulary: too many tokens");
        for (const auto& [name, id] : {std::pair{"BOS", vocab_.bos_id}, std::pair{"EOS", vocab_.eos_id}})
            if (id >= n)
                throw invalid_argument_error(std::string("BPE vocabulary: the ") + name + " id " + std::to_string(id) +
                                             " is out of range (" + std::to_string(n) + " tokens)");
        index_pieces();
        index_merges();
        add_bos_ = vocab_.add_bos.value_or(pre_.add_bos);
        add_eos_ = vocab_.add_eos.value_or(false);
    }

    /// The number of tokens.
    [[nodiscard]] std::size_t size() const noexcept { return vocab_.pieces.size(); }
    /// The BOS and EOS ids.
    [[nodiscard]] token bos() const noexcept { return static_cast<token>(vocab_.bos_id); }
    [[nodiscard]] token eos() const noexcept { return static_cast<token>(vocab_.eos_id); }
    /// Whether encoding with special tokens adds BOS / EOS (the file's keys, else the pre-tokenizer's default).
    [[nodiscard]] bool adds_bos() const noexcept { return add_bos_; }
    [[nodiscard]] bool adds_eos() const noexcept { return add_eos_; }
    /// The vocabulary, as given.
    [[nodiscard]] const vocabulary& vocab() const noexcept { return vocab_; }
    /// The pattern tokenizer.ggml.pre names.
    [[nodiscard]] bpe_pre_tokenizer pre_tokenizer() const noexcept { return pre_.pattern; }
    /// The longest piece in bytes: no token stands for more bytes of text.
    [[nodiscard]] std::size_t max_piece_bytes() const noexcept { return max_piece_bytes_; }

    /// The ids llama.cpp's llama_tokenize gives: BOS and EOS as adds_bos() / adds_eos() say when `add_special`;
    /// user-defined tokens always, and control tokens too when `parse_special`, are matched whole in the text
    /// (longest first) before it is split into words.
    [[nodiscard]] std::vector<token> encode(std::string_view text, bool add_special = false, bool parse_special = false) const {
        std::vector<token> out;
        if (add_special && add_bos_) out.push_back(bos());
        for (const auto& f : special_fragments(text, parse_special)) {
            if (f.special >= 0) {
                out.push_back(f.special);
                continue;
            }
            for (const auto& word : bpe_words(text.substr(f.begin, f.length), pre_.pattern)) merge_word(word, out);
        }
        if (add_special && add_eos_) out.push_back(eos());
        return out;
    }

    /// The bytes of one token as llama.cpp's token_to_piece gives them without special tokens: a normal piece
    /// through GPT-2's byte alphabet, a user-defined one as written, a byte token "<0xHH>" as its byte, control,
    /// unknown and unused tokens as nothing. invalid_argument_error for an id out of range.
    [[nodiscard]] std::string piece(token id) const { return piece(id, false); }

    /// The bytes of one token as llama.cpp's token_to_piece gives them; with `special`, control and unknown tokens
    /// give their text too.
    [[nodiscard]] std::string piece(token id, bool special) const {
        if (id < 0 || static_cast<std::size_t>(id) >= size())
            throw invalid_argument_error("token id " + std::to_string(id) + " is out of range (" + std::to_string(size()) + " tokens)");
        const auto i = static_cast<std::size_t>(id);
        switch (vocab_.kinds[i]) {
            case token_kind::control:
            case token_kind::unknown:
                return special ? texts_[i] : std::string();
            case token_kind::normal:
                return bpe_piece_bytes(texts_[i]);
            case token_kind::user_defined:
                return texts_[i];
            case token_kind::byte: {
                const std::string& p = texts_[i];
                const auto hex = [](char c) {
                    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                };
                if (p.size() == 6 && p.starts_with("<0x") && p.back() == '>' && hex(p[3]) >= 0 && hex(p[4]) >= 0)
                    return std::string(1, static_cast<char>(hex(p[3]) * 16 + hex(p[4])));
                return {};
            }
            default:
                return {};
        }
    }

    /// The text of `ids`: their pieces joined. decode(encode(x)) == x for valid UTF-8 that holds no control
    /// token's text (llama.cpp's detokenizer may further drop spaces before punctuation; this does not).
    [[nodiscard]] std::string decode(const std::vector<token>& ids) const {
        std::string text;
        for (const token id : ids) text += piece(id);
        return text;
    }

    /// The text llama.cpp's llama_detokenize gives (remove_special false, unparse_special = `special`): the pieces
    /// joined, then, unless the pre-tokenizer is Qwen2's, its clean_spaces passes: the space before ? ! . , goes,
    /// so do those around a lone apostrophe, and the one before 's 'm 're 've.
    [[nodiscard]] std::string detokenize(const std::vector<token>& ids, bool special = false) const {
        std::string text;
        for (const token id : ids) text += piece(id, special);
        return pre_.clean_spaces ? clean_spaces(std::move(text)) : text;
    }

    /// The pieces of user-defined or control tokens that hold a newline: text is cut into lines safely only when
    /// there are none (model/evaluate.hpp).
    [[nodiscard]] bool special_text_spans_lines() const noexcept { return special_newline_; }

private:
    /// A stretch of the text that is a special token (special >= 0) or plain text [begin, begin + length).
    struct fragment {
        token special;
        std::size_t begin, length;
    };

    /// llama.cpp's three clean-up passes over detokenized text, each over the previous one's output.
    static std::string clean_spaces(std::string t) {
        if (t.empty()) return t;
        const auto pass = [](std::string& in, auto drop_before) {
            std::string out(1, in[0]);
            for (std::size_t i = 1; i < in.size(); ++i) {
                if (drop_before(in, i)) out.pop_back();  // the space at i - 1, the last character written
                out += in[i];
            }
            in = std::move(out);
        };
        pass(t, [](const std::string& s, std::size_t i) {
            return s[i - 1] == ' ' && (s[i] == '?' || s[i] == '!' || s[i] == '.' || s[i] == ',');
        });
        // " ' " loses both spaces: the one after is skipped, marked so that the next test does not see a space.
        std::string out(1, t[0]);
        for (std::size_t i = 1; i < t.size(); ++i) {
            const char x = t[i];
            if (x == '\'' && i + 1 < t.size() && t[i - 1] == ' ' && t[i + 1] == ' ') {
                out.pop_back();
                t[++i] = '\0';
            }
            out += x;
        }
        t = std::move(out);
        pass(t, [](const std::string& s, std::size_t i) {
            if (s[i - 1] != ' ' || s[i] != '\'' || i + 1 >= s.size()) return false;
            const char a = s[i + 1];
            if (a == 's' || a == 'm') return true;
            return i + 2 < s.size() && a != 't' && a != 'd' && ((a == 'r' && s[i + 2] == 'e') || (a == 'v' && s[i + 2] == 'e'));
        });
        return t;
    }

    /// Hashes std::string and std::string_view alike, so that a piece is looked up without a copy.
    struct text_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    using text_map = std::unordered_map<std::string, token, text_hash, std::equal_to<>>;

    /// The token of every piece (llama.cpp reads an empty piece as "[EMPTY_<id>]"), and the special tokens,
    /// longest first.
    void index_pieces() {
        const std::size_t n = vocab_.pieces.size();
        texts_.reserve(n);
        for (std::size_t id = 0; id < n; ++id) {
            texts_.push_back(vocab_.pieces[id].empty() ? "[EMPTY_" + std::to_string(id) + "]" : vocab_.pieces[id]);
            const auto [it, added] = ids_.emplace(texts_.back(), static_cast<token>(id));
            if (!added)
                throw invalid_argument_error("BPE vocabulary: tokens " + std::to_string(it->second) + " and " + std::to_string(id) +
                                             " are the same piece '" + texts_.back() + "'");
            max_piece_bytes_ = std::max(max_piece_bytes_, texts_.back().size());
            const token_kind kind = vocab_.kinds[id];
            if (kind == token_kind::control || kind == token_kind::user_defined || kind == token_kind::unknown) {
                specials_.push_back(static_cast<token>(id));
                special_newline_ = special_newline_ || texts_.back().find_first_of("\r\n") != std::string::npos;
            }
        }
        std::stable_sort(specials_.begin(), specials_.end(), [&](token a, token b) {
            return texts_[static_cast<std::size_t>(a)].size() > texts_[static_cast<std::size_t>(b)].size();
        });
    }

    /// Each merge's rank, by its text "left right" (cut at the first space after the first byte, as llama.cpp
    /// cuts it; the first of two equal merges keeps its rank).
    void index_merges() {
        ranks_.reserve(vocab_.merges.size());
        for (std::size_t rank = 0; rank < vocab_.merges.size(); ++rank) {
            const std::string& m = vocab_.merges[rank];
            const std::size_t space = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
            const auto refuse = [&](const std::string& why) {
                throw invalid_argument_error("BPE vocabulary: merge " + std::to_string(rank) + " '" + m + "' " + why);
            };
            if (space == std::string::npos || space + 1 == m.size()) refuse("is not two pieces separated by a space");
            const std::string left = m.substr(0, space), right = m.substr(space + 1);
            for (const std::string& p : {left, right, left + right})
                if (!ids_.contains(p)) refuse("names '" + p + "', which is not a token of the vocabulary");
            ranks_.emplace(m, static_cast<token>(rank));
        }
    }

    /// llama.cpp's tokenizer_st_partition: for each special token, longest first, every plain fragment is cut at
    /// each of its occurrences, left to right.
    [[nodiscard]] std::vector<fragment> special_fragments(std::string_view text, bool parse_special) const {
        std::vector<fragment> fragments;
        if (text.empty()) return fragments;
        fragments.push_back({-1, 0, text.size()});
        std::vector<fragment> next;
        for (const token id : specials_) {
            const auto kind = vocab_.kinds[static_cast<std::size_t>(id)];
            if (!parse_special && kind != token_kind::user_defined) continue;
            const std::string_view special = texts_[static_cast<std::size_t>(id)];
            next.clear();
            for (const fragment& f : fragments) {
                if (f.special >= 0) {
                    next.push_back(f);
                    continue;
                }
                std::size_t begin = f.begin;
                const std::size_t end = f.begin + f.length;
                for (std::size_t at; begin < end && (at = text.substr(0, end).find(special, begin)) != std::string_view::npos;) {
                    if (at > begin) next.push_back({-1, begin, at - begin});
                    next.push_back({id, at, special.size()});
                    begin = at + special.size();
                }
                if (end > begin) next.push_back({-1, begin, end - begin});
            }
            fragments.swap(next);
        }
        return fragments;
    }

    /// Merges one word's characters, the adjacent pair of lowest merge rank first (leftmost on ties), as
    /// llama.cpp's llm_tokenizer_bpe_session does; a pair made stale by an earlier merge is recognised when
    /// popped (a side gone or grown) and skipped. Each symbol left is its token, or failing that its bytes'
    /// one-byte tokens where the vocabulary has them.
    void merge_word(const std::string& word, std::vector<token>& out) const {
        if (pre_.ignore_merges) {
            if (const auto it = ids_.find(word); it != ids_.end()) {
                out.push_back(it->second);
                return;
            }
        }
        struct symbol {
            std::size_t begin, length;
            std::ptrdiff_t prev, next;
        };
        struct pair {
            token rank;
            std::size_t left, right, left_length, right_length;
            // The top of a std::priority_queue is its largest element: lower rank, then lower position.
            bool operator<(const pair& o) const noexcept { return rank > o.rank || (rank == o.rank && left > o.left); }
        };
        std::vector<symbol> symbols;
        for (std::size_t i = 0; i < word.size();) {
            const auto lead = static_cast<unsigned char>(word[i]);
            const std::size_t take = std::min<std::size_t>(lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4, word.size() - i);
            const auto n = static_cast<std::ptrdiff_t>(symbols.size());
            symbols.push_back({i, take, n - 1, i + take == word.size() ? -1 : n + 1});
            i += take;
        }
        std::priority_queue<pair> pairs;
        std::string key;
        const auto consider = [&](std::ptrdiff_t left, std::ptrdiff_t right) {
            if (left < 0 || right < 0) return;
            const symbol& a = symbols[static_cast<std::size_t>(left)];
            const symbol& b = symbols[static_cast<std::size_t>(right)];
            key.assign(word, a.begin, a.length);
            key += ' ';
            key.append(word, b.begin, b.length);
            if (const auto it = ranks_.find(key); it != ranks_.end())
                pairs.push({it->second, static_cast<std::size_t>(left), static_cast<std::size_t>(right), a.length, b.length});
        };
        for (std::size_t i = 1; i < symbols.size(); ++i) consider(static_cast<std::ptrdiff_t>(i - 1), static_cast<std::ptrdiff_t>(i));
        while (!pairs.empty()) {
            const pair p = pairs.top();
            pairs.pop();
            symbol& a = symbols[p.left];
            symbol& b = symbols[p.right];
            if (a.length != p.left_length || b.length != p.right_length) continue;
            a.length += b.length;
            b.length = 0;
            a.next = b.next;
            if (b.next >= 0) symbols[static_cast<std::size_t>(b.next)].prev = static_cast<std::ptrdiff_t>(p.left);
            consider(a.prev, static_cast<std::ptrdiff_t>(p.left));
            consider(static_cast<std::ptrdiff_t>(p.left), a.next);
        }
        for (const symbol& s : symbols) {
            if (s.length == 0) continue;
            const std::string_view text = std::string_view(word).substr(s.begin, s.length);
            if (const auto it = ids_.find(text); it != ids_.end()) {
                out.push_back(it->second);
                continue;
            }
            for (const char byte : text)
                if (const auto it = ids_.find(std::string_view(&byte, 1)); it != ids_.end()) out.push_back(it->second);
        }
    }

    vocabulary vocab_;
    bpe_pre_settings pre_;
    std::vector<std::string> texts_;  ///< the pieces, an empty one as llama.cpp names it
    text_map ids_;
    text_map ranks_;  ///< merge text "left right" -> rank
    std::vector<token> specials_;
    std::size_t max_piece_bytes_ = 1;
    bool add_bos_ = false, add_eos_ = false, special_newline_ = false;
};

}  // namespace cogqat
