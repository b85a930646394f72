// libFuzzer target: io::parse_sentencepiece_model on arbitrary bytes (a Hugging Face folder's tokenizer.model:
// protobuf's varints, keys and lengths, nested piece messages). Refusing them with a cogqat::error is fine; a
// crash, a sanitizer report, a leak, a hang or a huge allocation is a finding. What the parser accepts keeps its
// promises: at least one piece, each with text, a SentencePiece type, and no more text than the input holds.
// Built and run by scripts/fuzz.sh; replayed over its corpus by the test command.

#include <cogqat/core/error.hpp>
#include <cogqat/io/sentencepiece_model.hpp>

#include <cstddef>
#include <cstdint>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace cogqat::io;
    try {
        const auto pieces = parse_sentencepiece_model(std::as_bytes(std::span(data, size)), "fuzz");
        if (pieces.empty()) __builtin_trap();
        std::size_t text = 0;
        for (const auto& p : pieces) {
            const auto type = static_cast<int>(p.type);
            if (p.piece.empty() || type < 1 || type > 6) __builtin_trap();
            text += p.piece.size();
        }
        if (text > size) __builtin_trap();
    } catch (const cogqat::error&) {}
    return 0;
}
