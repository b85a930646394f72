// libFuzzer target: gguf::reader::parse on arbitrary bytes. Refusing them with a cogqat::error is fine; a
// crash, a sanitizer report, a leak, a hang or a huge allocation is a finding. Everything the reader accepted
// is then read in full, so a view that points outside the input shows up under AddressSanitizer.
// Built and run by scripts/fuzz.sh.

#include <cogqat/io/gguf.hpp>

#include <cstddef>
#include <cstdint>
#include <span>

namespace {

volatile std::uint64_t sink;  // keeps the reads below from being optimized away

void touch(const cogqat::gguf::value& v, std::uint64_t& acc) {
    acc += static_cast<std::uint64_t>(v.type()) + v.to_string().size();
    if (!(v == v)) __builtin_trap();  // equality is by bits, so even a NaN equals itself
    if (!v.is_array()) return;
    const auto elements = v.as_array<cogqat::gguf::value>();
    if (elements.size() != v.array_size()) __builtin_trap();
    for (const auto& e : elements) {
        if (e.type() != v.array_type()) __builtin_trap();
        touch(e, acc);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using cogqat::gguf::reader;
    try {
        const auto r = reader::parse(std::as_bytes(std::span(data, size)));
        // What the reader promises about anything it accepts.
        if (r.version() != 3 || r.data_offset() % r.alignment() != 0 || r.data_offset() > r.file_size()) __builtin_trap();
        std::uint64_t acc = r.alignment();
        for (const auto& [key, v] : r.metadata()) {
            if (r.find(key) != &v) __builtin_trap();
            acc += key.size();
            touch(v, acc);
        }
        for (const auto& t : r.tensors()) {
            const auto bytes = r.tensor_data(t);
            if (bytes.size() != t.bytes() || r.find_tensor(t.name) != &t || t.offset % r.alignment() != 0) __builtin_trap();
            for (const std::byte b : bytes) acc += std::to_integer<unsigned>(b);
            acc += t.elements();
        }
        sink = acc;
    } catch (const cogqat::error&) {
        // Refused: the expected outcome for most inputs.
    }
    return 0;
}
