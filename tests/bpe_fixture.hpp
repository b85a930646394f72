#pragma once
// Byte-level BPE vocabularies built by the tests: a small deterministic trainer (the most frequent adjacent pair
// of the words' symbols merges first, ties to the smaller pair), GPT-2's 256 byte tokens first, the merged tokens
// in merge order, then special tokens. Also the tokenizer's definition, quadratic and obviously right, that the
// heap-based merging must match: after every merge the whole word is searched again for its best pair.

#include <cogqat/model/bpe_pretokenizer.hpp>
#include <cogqat/model/llama_weights.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace cogqat::test {

/// The special tokens every test vocabulary ends with (control, control, user-defined).
inline const std::vector<std::pair<std::string, token_kind>> bpe_specials{
        {"<|endoftext|>", token_kind::control}, {"<|im_start|>", token_kind::control}, {"<tag>", token_kind::user_defined}};

/// GPT-2's piece for one byte.
inline std::string byte_piece(unsigned char b) {
    std::string s;
    append_utf8(s, detail::gpt2_bytes[b]);
    return s;
}

/// The 256 byte tokens, then `merges` merges learned from `text` split by `pre` (fewer when no pair is left),
/// then bpe_specials; BOS and EOS are <|endoftext|>. With `across_words`, the merges are learned from whole lines
/// instead: they then join across the pre-tokenizer's word boundaries, so that a tokenizer splitting a word
/// where llama.cpp does not gives other tokens (with merges learned inside words, splitting too finely goes
/// unseen).
inline vocabulary train_bpe(std::string_view text, std::size_t merges, const std::string& pre, bool across_words = false) {
    vocabulary v;
    v.model = "gpt2";
    v.pre = pre;
    for (unsigned b = 0; b < 256; ++b) {
        v.pieces.push_back(byte_piece(static_cast<unsigned char>(b)));
        v.kinds.push_back(token_kind::normal);
    }
    std::unordered_map<std::string, std::int32_t> ids;
    for (std::size_t i = 0; i < v.pieces.size(); ++i) ids.emplace(v.pieces[i], static_cast<std::int32_t>(i));
    // Each distinct word once, as its symbols' ids, with its count; the counts of adjacent pairs, kept up to date.
    std::map<std::string, std::size_t> counts;
    if (across_words) {
        for (std::size_t begin = 0; begin < text.size();) {
            const std::size_t end = std::min(text.find('\n', begin), text.size() - 1) + 1;
            std::string line;
            for (const char b : text.substr(begin, end - begin)) line += byte_piece(static_cast<unsigned char>(b));
            ++counts[line];
            begin = end;
        }
    } else {
        for (auto& w : bpe_words(text, bpe_pre_settings_named(pre).pattern)) ++counts[w];
    }
    std::vector<std::pair<std::vector<std::int32_t>, std::size_t>> words;
    for (const auto& [w, n] : counts) {
        std::vector<std::int32_t> symbols;
        for (std::size_t i = 0; i < w.size();) {
            const auto lead = static_cast<unsigned char>(w[i]);
            const std::size_t len = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
            symbols.push_back(ids.at(w.substr(i, len)));
            i += len;
        }
        words.emplace_back(std::move(symbols), n);
    }
    const auto key = [](std::int32_t a, std::int32_t b) { return static_cast<std::uint64_t>(a) << 32 | static_cast<std::uint32_t>(b); };
    std::unordered_map<std::uint64_t, std::size_t> pairs;
    const auto count_pairs = [&](const std::vector<std::int32_t>& symbols, std::size_t n, bool add) {
        for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
            auto& c = pairs[key(symbols[i], symbols[i + 1])];
            c = add ? c + n : c - n;
        }
    };
    for (const auto& [symbols, n] : words) count_pairs(symbols, n, true);
    for (std::size_t m = 0; m < merges; ++m) {
        std::uint64_t best = 0;
        std::size_t best_count = 0;
        for (const auto& [p, n] : pairs)
            if (n > best_count || (n == best_count && n > 0 && p < best)) best = p, best_count = n;
        if (best_count == 0) break;
        const auto left = static_cast<std::int32_t>(best >> 32), right = static_cast<std::int32_t>(best & 0xFFFFFFFFu);
        const std::string l = v.pieces[static_cast<std::size_t>(left)], r = v.pieces[static_cast<std::size_t>(right)];
        v.merges.push_back(l + " " + r);
        // Two merges may make the same piece ("a bc", "ab c"): it is one token.
        const auto [it, added] = ids.emplace(l + r, static_cast<std::int32_t>(v.pieces.size()));
        const std::int32_t merged_id = it->second;
        if (added) {
            v.pieces.push_back(l + r);
            v.kinds.push_back(token_kind::normal);
        }
        for (auto& [symbols, n] : words) {
            bool has = false;
            for (std::size_t i = 0; i + 1 < symbols.size() && !has; ++i) has = symbols[i] == left && symbols[i + 1] == right;
            if (!has) continue;
            count_pairs(symbols, n, false);
            std::vector<std::int32_t> merged;
            for (std::size_t i = 0; i < symbols.size(); ++i) {
                if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
                    merged.push_back(merged_id);
                    ++i;
                } else {
                    merged.push_back(symbols[i]);
                }
            }
            symbols = std::move(merged);
            count_pairs(symbols, n, true);
        }
    }
    // A special token's text may have been learned as a piece: that piece becomes the special token.
    for (const auto& [piece, kind] : bpe_specials) {
        const auto [it, added] = ids.emplace(piece, static_cast<std::int32_t>(v.pieces.size()));
        if (added) v.pieces.push_back(piece), v.kinds.push_back(kind);
        v.kinds[static_cast<std::size_t>(it->second)] = kind;
    }
    v.bos_id = v.eos_id = static_cast<std::uint32_t>(ids.at(bpe_specials.front().first));
    return v;
}

/// The tokenizer's definition for one word: merge the adjacent pair of lowest rank (leftmost on ties) until none
/// has a rank; a symbol that is no token becomes its bytes' one-byte tokens, where there are some.
class reference_bpe {
public:
    explicit reference_bpe(const vocabulary& v) {
        for (std::size_t r = 0; r < v.merges.size(); ++r) rank_.emplace(v.merges[r], r);
        for (std::size_t i = 0; i < v.pieces.size(); ++i) id_.emplace(v.pieces[i], static_cast<std::int32_t>(i));
    }

    [[nodiscard]] std::vector<std::int32_t> merge(const std::string& word) const {
        std::vector<std::string> symbols;
        for (std::size_t i = 0; i < word.size();) {
            const auto lead = static_cast<unsigned char>(word[i]);
            const std::size_t len = std::min<std::size_t>(lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4, word.size() - i);
            symbols.push_back(word.substr(i, len));
            i += len;
        }
        for (;;) {
            std::size_t best = symbols.size(), best_rank = 0;
            for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
                const auto it = rank_.find(symbols[i] + " " + symbols[i + 1]);
                if (it != rank_.end() && (best == symbols.size() || it->second < best_rank)) best = i, best_rank = it->second;
            }
            if (best == symbols.size()) break;
            symbols[best] += symbols[best + 1];
            symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
        }
        std::vector<std::int32_t> out;
        for (const auto& s : symbols) {
            if (const auto it = id_.find(s); it != id_.end()) {
                out.push_back(it->second);
                continue;
            }
            for (const char b : s)
                if (const auto it = id_.find(std::string(1, b)); it != id_.end()) out.push_back(it->second);
        }
        return out;
    }

    /// The id of `piece`, or -1.
    [[nodiscard]] std::int32_t id(const std::string& piece) const {
        const auto it = id_.find(piece);
        return it == id_.end() ? -1 : it->second;
    }

private:
    std::unordered_map<std::string, std::size_t> rank_;
    std::unordered_map<std::string, std::int32_t> id_;
};

}  // namespace cogqat::test
