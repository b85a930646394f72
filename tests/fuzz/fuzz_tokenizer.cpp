// libFuzzer target: the tokenizer on arbitrary vocabularies and texts. The input's first part, up to a zero
// byte, lists pieces separated by '|' (scores cycle through a few values, ties and a NaN included, so that the
// merge order is exercised); the rest is the text. The tokens must be exactly the quadratic definition's
// (tests/tokenizer_reference.hpp), every id must be in range, and decoding must not fail. A crash, a
// sanitizer report or a mismatch is a finding. Built and run by scripts/fuzz.sh; replayed over its corpus by
// the test command.

#include <cogqat/model/evaluate.hpp>
#include <cogqat/model/tokenizer.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>

#include "../tokenizer_reference.hpp"

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
    return 0;
}
