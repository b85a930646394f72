// The tokenizer's merging (a heap of candidate pairs, O(n log n)) against the definition it must keep: search
// the whole text for the best-scoring adjacent pair after every merge, leftmost on ties. Random vocabularies
// full of ties and random texts, the real stories260K vocabulary on the real text, hostile scores, and the
// streaming tokenizer against the whole-text one.

#include <doctest/doctest.h>

#include <cogqat/io/llama2c.hpp>
#include <cogqat/model/evaluate.hpp>
#include <cogqat/model/tokenizer.hpp>

#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "sanitizer.hpp"
#include "shared_data.hpp"
#include "tokenizer_reference.hpp"

using namespace cogqat;

namespace {

/// Byte tokens, a small alphabet with a space and a two-byte letter, and pieces made by joining random pairs
/// of existing pieces, with scores from a handful of values (many ties).
vocabulary random_vocabulary(std::mt19937_64& rng, std::size_t merges, bool with_nan) {
    vocabulary v = test::byte_vocabulary();
    const std::vector<std::string> alphabet{"a", "b", "c", "d", "\xE2\x96\x81", "\xC3\xA9"};
    for (const auto& a : alphabet) test::add_piece(v, a, 0.0f);
    std::uniform_int_distribution<int> tie(0, 5);
    std::vector<std::string> pieces = alphabet;
    for (std::size_t m = 0; m < merges; ++m) {
        std::string piece = pieces[rng() % pieces.size()] + pieces[rng() % pieces.size()];
        if (piece.size() > 24) continue;
        pieces.push_back(piece);
        test::add_piece(v, piece, with_nan && m % 7 == 0 ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(-tie(rng)));
    }
    return v;
}

std::string random_text(std::mt19937_64& rng, std::size_t length) {
    static const std::vector<std::string> parts{"a", "b", "c", "d", " ", "\xC3\xA9", "x", "\xFF", "\xE2\x96"};
    std::string text;
    while (text.size() < length) text += parts[rng() % parts.size()];
    return text;
}

}  // namespace

TEST_CASE("tokenizer: the heap merges exactly as the full search after every merge, ties included") {
    std::mt19937_64 rng(17);
    for (int round = 0; round < 60; ++round) {
        CAPTURE(round);
        const bool with_nan = round % 3 == 0;
        const auto v = random_vocabulary(rng, 40 + rng() % 200, with_nan);
        const tokenizer tok(v);
        for (int t = 0; t < 8; ++t) {
            const auto text = random_text(rng, rng() % 300);
            CAPTURE(text);
            for (const bool prefix : {true, false}) CHECK(tok.encode(text, false, prefix) == test::reference_encode(v, text, prefix));
        }
    }
}

TEST_CASE("tokenizer: the stories260K vocabulary on the TinyStories text gives the full search's tokens") {
    const auto dir = test::shared_dir() / "models";
    if (!std::filesystem::exists(dir / "stories260K" / "tok512.bin") ||
        !std::filesystem::exists(dir / "tinystories-valid" / "tinystories_val_part.txt")) {
        MESSAGE("skipped: the stories260K tokenizer or the TinyStories text is not in " << dir.string());
        return;
    }
    const auto weights = io::read_llama2c(dir / "stories260K" / "stories260K.bin", dir / "stories260K" / "tok512.bin");
    const tokenizer tok(weights.vocab);
    const auto bytes = io::read_file(dir / "tinystories-valid" / "tinystories_val_part.txt");
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), 20000);
    std::size_t start = 0, lines = 0;
    while (start < text.size()) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        const auto line = text.substr(start, end - start);
        CHECK(tok.encode(line, false, lines == 0) == test::reference_encode(weights.vocab, line, lines == 0));
        start = end + 1, ++lines;
    }
    CHECK(lines > 50);
    // One long line: the case the full search made quadratic. The reference is quadratic too, so the
    // sanitized pass, which checks memory and not the merging again, takes a fifth of it.
    std::string long_line;
    const std::size_t long_length = COGQAT_TEST_ADDRESS_SANITIZER ? text.size() / 5 : text.size();
    for (std::size_t i = 0; i < long_length; ++i) long_line += text[i] == '\n' ? ' ' : text[i];
    CHECK(tok.encode(long_line, false, true) == test::reference_encode(weights.vocab, long_line, true));
}

TEST_CASE("tokenize_stream gives tokenize_text's tokens, cut at max_tokens, reading no further than needed") {
    std::mt19937_64 rng(3);
    const auto v = random_vocabulary(rng, 120, false);
    const tokenizer tok(v);
    for (const std::string& text : {std::string(), std::string("\n"), std::string("ab\n\ncd"), std::string("ab cd\n"),
                                    random_text(rng, 500) + "\n" + random_text(rng, 300)}) {
        CAPTURE(text);
        const auto whole = tokenize_text(tok, text);
        for (std::size_t max : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{7}, whole.size(), whole.size() + 5}) {
            CAPTURE(max);
            std::istringstream in(text);
            const auto streamed = tokenize_stream(tok, in, max);
            auto expected = whole;
            if (max && expected.size() > max) expected.resize(max);
            CHECK(streamed == expected);
        }
    }
    // An endless stream is read only as far as max_tokens needs.
    struct endless : std::streambuf {
        int_type underflow() override {
            static char line[] = "abcd abcd\n";
            setg(line, line, line + sizeof line - 1);
            return 'a';
        }
    } source;
    std::istream in(&source);
    CHECK(tokenize_stream(tok, in, 1000).size() == 1000);
}
