// libFuzzer target: `cogqat inspect --json` on arbitrary bytes. A file the GGUF reader refuses is fine; for
// one it accepts, the JSON document must be produced without an exception, whatever bytes its names and
// values hold, and must parse back as JSON (so it is valid UTF-8). Built and run by scripts/fuzz.sh;
// replayed over the GGUF corpus by the test command.

#include <cogqat/io/gguf.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "../../tools/cogqat/inspect_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace cogqat;
    std::optional<gguf::reader> in;
    try {
        in.emplace(gguf::reader::parse(std::as_bytes(std::span(data, size))));
    } catch (const cogqat::error&) {
        return 0;  // refused: the expected outcome for most inputs
    }
    const auto text = cli::json_text(cli::inspect_json(*in, "fuzz\xff.gguf"));
    const auto back = nlohmann::json::parse(text);  // throws (a finding) if the text is not valid JSON or UTF-8
    if (back["tensors"].size() != in->tensors().size() || back["metadata"].size() > in->metadata().size()) __builtin_trap();
    return 0;
}
