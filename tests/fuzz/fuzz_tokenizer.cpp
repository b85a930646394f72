// libFuzzer target: the tokenizers on arbitrary vocabularies and texts. The input's first part, up to a zero
// byte, lists pieces separated by '|'; the rest is the text.
// SentencePiece: the pieces are scored (scores cycle through a few values, ties and a NaN included, so that the
// merge order is exercised); the tokens must be exactly the quadratic definition's (tests/tokenizer_reference.hpp).
// Byte-level BPE, under each pre-tokenizer: each piece is learned by merges joining its characters left to right
// (tests/bpe_fixture.hpp's vocabulary otherwise); the tokens must be the definition's word by word, and decode
// must give back a well-formed text. Both: every id in range, decoding does not fail, and the streaming
// tokenizer gives the whole text's tokens. A crash, a sanitizer report or a mismatch is a finding. Built and run
// by scripts/fuzz.sh; replayed over its corpus by the test command.

#include <cogqat/core/utf8.hpp>
#include <cogqat/model/bpe_pretokenizer.hpp>
#include <cogqat/model/evaluate.hpp>
#include <cogqat/model/tokenizer.hpp>

#include <algorithm>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_set>

#include "../bpe_fixture.hpp"
#include "../tokenizer_reference.hpp"

namespace {

/// A BPE vocabulary that learns each piece by merges joining its characters (in GPT-2's alphabet) left to right.
cogqat::vocabulary bpe_vocabulary(std::string_view pieces, const std::string& pre) {
    using namespace cogqat;
    vocabulary v = test::train_bpe("", 0, pre);
    std::unordered_set<std::string> known(v.pieces.begin(), v.pieces.end());
    for (std::size_t start = 0; start < pieces.size() && v.merges.size() < 4096;) {
        const std::size_t end = std::min(pieces.find('|', start), pieces.size());
        std::string joined;
        for (std::size_t i = start; i < end; ++i) {
            const std::string next = test::byte_piece(static_cast<unsigned char>(pieces[i]));
            if (!joined.empty() && known.insert(joined + next).second) {
                v.merges.push_back(joined + " " + next);
                v.pieces.insert(v.pieces.end() - static_cast<std::ptrdiff_t>(test::bpe_specials.size()), joined + next);
                v.kinds.insert(v.kinds.end() - static_cast<std::ptrdiff_t>(test::bpe_specials.size()), token_kind::normal);
            }
            joined += next;
        }
        start = end + 1;
    }
    v.bos_id = v.eos_id = static_cast<std::uint32_t>(v.pieces.size() - test::bpe_specials.size());
    return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace cogqat;
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::size_t split = std::min(input.find('\0'), input.size());
    const std::string_view pieces = input.substr(0, split), text = input.substr(std::min(split + 1, input.size()));

    vocabulary v = test::byte_vocabulary();
    static constexpr float scores[] = {0.0f, -1.0f, -1.0f, -2.5f, std::numeric_limits<float>::quiet_NaN(), -1e30f, 3.0f};
    std::size_t n = 0;
    for (std::size_t start = 0; start < pieces.size() && n < 4096;) {
        const std::size_t end = std::min(pieces.find('|', start), pieces.size());
        if (end > start) test::add_piece(v, std::string(pieces.substr(start, end - start)), scores[n++ % std::size(scores)]);
        start = end + 1;
    }
    const tokenizer tok(v);
    for (const bool prefix : {true, false}) {
        const auto ids = tok.encode(text, false, prefix);
        for (const auto id : ids)
            if (id < 0 || static_cast<std::size_t>(id) >= v.pieces.size()) __builtin_trap();
        if (text.size() <= 2048 && ids != test::reference_encode(v, text, prefix)) __builtin_trap();
        static_cast<void>(tok.decode(ids));
    }
    // The streaming tokenizer gives the whole text's tokens.
    std::istringstream stream{std::string(text)};
    if (tokenize_stream(tok, stream) != tokenize_text(tok, text)) __builtin_trap();

    for (const std::string pre : {"default", "llama-bpe", "qwen2"}) {
        const vocabulary bv = bpe_vocabulary(pieces, pre);
        const tokenizer bpe(bv);
        const auto ids = bpe.encode(text);
        for (const auto id : ids)
            if (id < 0 || static_cast<std::size_t>(id) >= bv.pieces.size()) __builtin_trap();
        if (text.size() <= 2048) {
            std::vector<tokenizer::token> expected;
            const test::reference_bpe reference(bv);
            for (const auto& word : bpe_words(text, bpe.bpe()->pre_tokenizer())) {
                const auto w = pre == "llama-bpe" && reference.id(word) >= 0 ? std::vector<tokenizer::token>{reference.id(word)}
                                                                             : reference.merge(word);
                expected.insert(expected.end(), w.begin(), w.end());
            }
            // Special tokens are cut out first: compare where the text holds none.
            if (text.find("<tag>") == std::string_view::npos && ids != expected) __builtin_trap();
        }
        if (is_valid_utf8(text) && bpe.decode(ids) != text) __builtin_trap();
        static_cast<void>(bpe.bpe()->detokenize(bpe.bpe()->encode(text, true, true), true));
        std::istringstream lines{std::string(text)};
        if (tokenize_stream(bpe, lines, 0, true, 1) != tokenize_text(bpe, text)) __builtin_trap();
    }
    return 0;
}
