// libFuzzer target: io::safetensors_file::parse on arbitrary bytes (the 8-byte header length, the JSON header,
// the offsets). Refusing them with a cogqat::error is fine; a crash, a sanitizer report, a leak, a hang or a
// huge allocation is a finding. What the parser accepts is then read in full, so a view that points outside
// the input shows up under AddressSanitizer, and its promises are checked: tensors tile the data in order,
// each holds exactly its shape's bytes. Built and run by scripts/fuzz.sh; replayed over its corpus by the
// test command.

#include <cogqat/io/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace {

volatile float sink;  // keeps the reads below from being optimized away

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace cogqat::io;
    try {
        const auto bytes = std::as_bytes(std::span(data, size));
        const auto file = safetensors_file::parse(bytes, "fuzz");
        const std::byte* next = nullptr;
        float acc = 0;
        for (const auto& t : file.tensors()) {
            if (t.data.size() != t.elements() * element_size(t.dtype)) __builtin_trap();
            if (t.data.data() < bytes.data() || t.data.data() + t.data.size() > bytes.data() + bytes.size()) __builtin_trap();
            if (next != nullptr && t.data.data() != next) __builtin_trap();
            next = t.data.data() + t.data.size();
            if (file.find(t.name) != &t) __builtin_trap();
            if (t.elements() > (1u << 20)) continue;  // bounded by the input's size anyway; keep each run quick
            std::vector<float> values(static_cast<std::size_t>(t.elements()));
            decode_to_f32(t, values);
            for (const float v : values) acc += v;
        }
        if (!file.tensors().empty() && next != bytes.data() + bytes.size()) __builtin_trap();
        sink = acc;
    } catch (const cogqat::error&) {
        // Refused: the expected outcome for most inputs.
    }
    return 0;
}
