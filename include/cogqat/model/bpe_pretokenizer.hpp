#pragma once
// The pre-tokenizers of byte-level BPE vocabularies (GGUF's tokenizer.ggml.model "gpt2"): text split into words
// that merges never cross, each word then written in GPT-2's byte-to-unicode alphabet. They split exactly as
// llama.cpp does (src/unicode.cpp): its hand-written matchers of the GPT-2, Llama 3 and Qwen2 patterns, not a
// regex engine, with their quirks kept, and its reading of malformed UTF-8 (core/unicode.hpp).

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/unicode.hpp"

namespace cogqat {

/// The splitting patterns llama.cpp knows these vocabularies by.
enum class bpe_pre_tokenizer {
    gpt2,    ///< "default": GPT-2's pattern, after punctuation runs and digit runs are cut out, digits in threes
    llama3,  ///< "llama-bpe": Llama 3's pattern, digits in groups of up to three
    qwen2,   ///< "qwen2": Llama 3's pattern with single digits
};

/// What a tokenizer.ggml.pre name means to llama.cpp: the pattern, and the settings it implies.
struct bpe_pre_settings {
    bpe_pre_tokenizer pattern = bpe_pre_tokenizer::gpt2;
    bool ignore_merges = false;  ///< a word that is a token as a whole is that token, unmerged (Llama 3)
    bool add_bos = false;        ///< BOS is added unless tokenizer.ggml.add_bos_token says otherwise
    bool clean_spaces = true;    ///< llama.cpp's detokenizer drops some spaces before punctuation (not Qwen2's)
};

/// The settings of the pre-tokenizer llama.cpp names `name` (empty: "default"). invalid_argument_error for a
/// name whose pattern cogqat does not implement.
[[nodiscard]] inline bpe_pre_settings bpe_pre_settings_named(std::string_view name) {
    if (name.empty() || name == "default") return {bpe_pre_tokenizer::gpt2, false, false, true};
    if (name == "llama-bpe" || name == "llama3" || name == "llama-v3") return {bpe_pre_tokenizer::llama3, true, true, true};
    if (name == "qwen2" || name == "deepseek-r1-qwen") return {bpe_pre_tokenizer::qwen2, false, false, false};
    throw invalid_argument_error("pre-tokenizer '" + std::string(name) + "' is not supported (default, llama-bpe, qwen2)");
}

namespace detail {

/// GPT-2's byte-to-unicode alphabet: printable bytes stand for themselves, the other 68 for U+0100 onwards.
constexpr std::array<char32_t, 256> gpt2_byte_alphabet() {
    std::array<char32_t, 256> map{};
    char32_t next = 256;
    for (unsigned b = 0; b < 256; ++b) {
        const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        map[b] = printable ? char32_t{b} : next++;
    }
    return map;
}
inline constexpr std::array<char32_t, 256> gpt2_bytes = gpt2_byte_alphabet();

/// The byte a code point of GPT-2's alphabet stands for, or -1.
constexpr int gpt2_byte_of(char32_t cpt) noexcept {
    if (cpt < 256) return gpt2_bytes[cpt] == cpt ? static_cast<int>(cpt) : -1;
    for (unsigned b = 0; b < 256; ++b)
        if (gpt2_bytes[b] == cpt) return static_cast<int>(b);
    return -1;
}

/// One code point's classes as the matchers test them; `present` is false beyond the segment's ends.
struct cpt_class {
    bool present = false, letter = false, number = false, whitespace = false;
};

/// A segment [begin, end) of the text's code points, read the way llama.cpp's matchers read it: outside it there
/// is nothing (a code point no character equals, no class).
struct segment {
    static constexpr char32_t none = 0xFFFFFFFF;
    const std::vector<char32_t>& cpts;
    std::size_t begin, end;

    [[nodiscard]] char32_t at(std::size_t pos) const { return pos >= begin && pos < end ? cpts[pos] : none; }
    [[nodiscard]] cpt_class classes(std::size_t pos) const {
        if (pos < begin || pos >= end) return {};
        const char32_t c = cpts[pos];
        const unicode_category k = category_of(c);
        return {true, k == unicode_category::letter, k == unicode_category::number, is_unicode_whitespace(c)};
    }
};

/// Appends to `out` the lengths of the words a matcher cuts from each segment of `lengths`.
template <class Matcher>
std::vector<std::size_t> split_segments(const std::vector<char32_t>& cpts, const std::vector<std::size_t>& lengths, Matcher match) {
    std::vector<std::size_t> out;
    out.reserve(lengths.size());
    std::size_t begin = 0;
    for (const std::size_t length : lengths) {
        match(segment{cpts, begin, begin + length}, out);
        begin += length;
    }
    return out;
}

/// Cuts each segment into maximal runs of code points that `in_run` accepts and the stretches between them: what
/// llama.cpp's std::regex pass over a pattern "[class]+" gives.
template <class Predicate>
std::vector<std::size_t> split_runs(const std::vector<char32_t>& cpts, const std::vector<std::size_t>& lengths, Predicate in_run) {
    return split_segments(cpts, lengths, [&](const segment& s, std::vector<std::size_t>& out) {
        for (std::size_t pos = s.begin; pos < s.end;) {
            const bool run = in_run(s.cpts[pos]);
            const std::size_t start = pos;
            while (pos < s.end && in_run(s.cpts[pos]) == run) ++pos;
            out.push_back(pos - start);
        }
    });
}

/// The contraction at `pos` ('s 't 'm 'd 're 've 'll, ASCII case folded when `any_case`): its length, or 0.
inline std::size_t contraction(const segment& s, std::size_t pos, bool any_case) {
    if (s.at(pos) != U'\'' || pos + 1 >= s.end) return 0;
    const auto fold = [&](char32_t c) { return any_case && c >= U'A' && c <= U'Z' ? c + 32 : c; };
    const char32_t a = fold(s.at(pos + 1));
    if (a == U's' || a == U't' || a == U'm' || a == U'd') return 2;
    if (pos + 2 >= s.end) return 0;
    const char32_t b = fold(s.at(pos + 2));
    return (a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l') ? 3 : 0;
}

/// GPT-2's pattern 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) as llama.cpp matches
/// it (a whitespace run that nothing else takes is a word too).
inline void match_gpt2(const segment& s, std::vector<std::size_t>& out) {
    std::size_t last = s.begin;
    const auto cut = [&](std::size_t end) {
        if (end > last) out.push_back(end - last);
        last = end;
    };
    for (std::size_t pos = s.begin; pos < s.end;) {
        const char32_t cpt = s.at(pos);
        if (const std::size_t n = contraction(s, pos, false)) {
            cut(pos += n);
            continue;
        }
        const bool space = cpt == U' ';
        cpt_class next = space ? s.classes(pos + 1) : s.classes(pos);
        const auto run = [&](auto in_run) {
            pos += space ? 1 : 0;
            while (in_run(next)) next = s.classes(++pos);
            cut(pos);
        };
        if (next.letter) {
            run([](const cpt_class& c) { return c.letter; });
            continue;
        }
        if (next.number) {
            run([](const cpt_class& c) { return c.number; });
            continue;
        }
        const auto other = [](const cpt_class& c) { return c.present && !(c.whitespace || c.letter || c.number); };
        if (other(next)) {
            run(other);
            continue;
        }
        std::size_t spaces = 0;
        while (s.classes(pos + spaces).whitespace) ++spaces;
        if (spaces > 1 && s.at(pos + spaces) != segment::none) {
            cut(pos += spaces - 1);  // \s+(?!\S): the run but its last, which goes with what follows
        } else if (spaces > 0) {
            cut(pos += spaces);
        } else {
            cut(++pos);
        }
    }
}

/// Llama 3's pattern (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,G}| ?[^\s\p{L}\p{N}]+[\r\n]*|
/// \s*[\r\n]+|\s+(?!\S)|\s+ as llama.cpp matches it, with digits in groups of up to `group` (3: Llama 3, 1: Qwen2).
inline void match_llama3(const segment& s, std::vector<std::size_t>& out, std::size_t group) {
    std::size_t last = s.begin;
    const auto cut = [&](std::size_t end) {
        if (end > last) out.push_back(end - last);
        last = end;
    };
    const auto newline = [](char32_t c) { return c == U'\r' || c == U'\n'; };
    for (std::size_t pos = s.begin; pos < s.end;) {
        const char32_t cpt = s.at(pos);
        const cpt_class here = s.classes(pos);
        if (const std::size_t n = contraction(s, pos, true)) {
            cut(pos += n);
            continue;
        }
        if (!(newline(cpt) || here.number) && (here.letter || s.classes(pos + 1).letter)) {
            ++pos;  // the optional lead, or the first letter
            while (s.classes(pos).letter) ++pos;
            cut(pos);
            continue;
        }
        if (here.number) {
            for (std::size_t start = pos; s.classes(pos).number;) {
                if (++pos - start >= group) cut(start = pos);
            }
            cut(pos);
            continue;
        }
        cpt_class next = cpt == U' ' ? s.classes(pos + 1) : here;
        // llama.cpp tests the class of the code point at pos here, not the one after the space: a lone space at
        // the segment's end is taken as this case (with the same result as the whitespace cases).
        if (!(next.whitespace || next.letter || next.number) && here.present) {
            pos += cpt == U' ' ? 1 : 0;
            while (!(next.whitespace || next.letter || next.number) && next.present) next = s.classes(++pos);
            while (newline(s.at(pos))) ++pos;
            cut(pos);
            continue;
        }
        std::size_t spaces = 0, after_newline = 0;
        for (; s.classes(pos + spaces).whitespace; ++spaces)
            if (newline(s.at(pos + spaces))) after_newline = pos + spaces + 1;
        if (after_newline > 0) {
            cut(pos = after_newline);  // \s*[\r\n]+
        } else if (spaces > 1 && s.at(pos + spaces) != segment::none) {
            cut(pos += spaces - 1);  // \s+(?!\S)
        } else if (spaces > 0) {
            cut(pos += spaces);
        } else {
            cut(++pos);
        }
    }
}

/// Cuts three ASCII digits in a row, leftmost first, from each segment: llama.cpp's std::wregex pass over
/// "[0-9][0-9][0-9]".
inline void match_digit_triples(const segment& s, std::vector<std::size_t>& out) {
    const auto digit = [&](std::size_t pos) { return pos < s.end && s.cpts[pos] >= U'0' && s.cpts[pos] <= U'9'; };
    std::size_t last = s.begin;
    for (std::size_t pos = s.begin; pos + 3 <= s.end;) {
        if (digit(pos) && digit(pos + 1) && digit(pos + 2)) {
            if (pos > last) out.push_back(pos - last);
            out.push_back(3);
            last = pos += 3;
        } else {
            ++pos;
        }
    }
    if (s.end > last) out.push_back(s.end - last);
}

/// \p{P} and the ASCII symbols $+<=>^~| of the default pre-tokenizer's first pass. llama.cpp matches it over a
/// copy of the text in which each non-ASCII code point stands for its class, so that only a non-ASCII
/// punctuation mark (and no non-ASCII whitespace) is in the set.
constexpr bool default_punctuation(char32_t c) noexcept {
    if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x5F) || (c >= 0x7B && c <= 0x7E);
    return !is_unicode_whitespace(c) && category_of(c) == unicode_category::punctuation;
}

/// \p{N}: the default pre-tokenizer's third pass, over the same stand-in copy.
constexpr bool default_number(char32_t c) noexcept {
    if (c < 0x80) return c >= U'0' && c <= U'9';
    return !is_unicode_whitespace(c) && category_of(c) == unicode_category::number;
}

}  // namespace detail

/// The words of `text` under `pattern`, each in GPT-2's byte alphabet (the form of the vocabulary's pieces).
/// Malformed UTF-8 reads as llama.cpp reads it: each byte that starts no sequence is U+FFFD.
[[nodiscard]] inline std::vector<std::string> bpe_words(std::string_view text, bpe_pre_tokenizer pattern) {
    const std::vector<char32_t> cpts = lenient_code_points(text);
    std::vector<std::size_t> lengths{cpts.size()};
    switch (pattern) {
        case bpe_pre_tokenizer::gpt2:
            lengths = detail::split_runs(cpts, lengths, detail::default_punctuation);
            lengths = detail::split_segments(cpts, lengths, detail::match_gpt2);
            lengths = detail::split_runs(cpts, lengths, detail::default_number);
            lengths = detail::split_segments(cpts, lengths, detail::match_digit_triples);
            break;
        case bpe_pre_tokenizer::llama3:
        case bpe_pre_tokenizer::qwen2: {
            const std::size_t group = pattern == bpe_pre_tokenizer::llama3 ? 3 : 1;
            lengths = detail::split_segments(cpts, lengths, [group](const detail::segment& s, std::vector<std::size_t>& out) {
                detail::match_llama3(s, out, group);
            });
            break;
        }
    }
    std::vector<std::string> words;
    words.reserve(lengths.size());
    std::string utf8;
    std::size_t begin = 0;
    for (const std::size_t length : lengths) {
        if (length == 0) continue;
        utf8.clear();
        for (std::size_t i = begin; i < begin + length; ++i) append_utf8(utf8, cpts[i]);
        std::string word;
        for (const char byte : utf8) append_utf8(word, detail::gpt2_bytes[static_cast<unsigned char>(byte)]);
        words.push_back(std::move(word));
        begin += length;
    }
    return words;
}

/// The bytes a piece in GPT-2's alphabet stands for. A code point outside the alphabet is written as llama.cpp
/// writes it: "[UNK_BYTE_0x" its UTF-8 bytes in hex, then the whole piece, "]".
[[nodiscard]] inline std::string bpe_piece_bytes(std::string_view piece) {
    std::string out;
    for (const char32_t cpt : lenient_code_points(piece)) {
        if (const int b = detail::gpt2_byte_of(cpt); b >= 0) {
            out.push_back(static_cast<char>(static_cast<unsigned char>(b)));
            continue;
        }
        std::string utf8;
        append_utf8(utf8, cpt);
        static constexpr char hex[] = "0123456789abcdef";
        out += "[UNK_BYTE_0x";
        for (const char c : utf8) out += {hex[static_cast<unsigned char>(c) >> 4], hex[static_cast<unsigned char>(c) & 0xF]};
        out += piece;
        out += ']';
    }
    return out;
}

}  // namespace cogqat
