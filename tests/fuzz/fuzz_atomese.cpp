// libFuzzer target: the Atomese reader, writer and query compiler on arbitrary text. The text is read into an
// AtomSpace with an AttentionBank, once with float values and once with 8-bit quantized ones. Anything it
// refuses must be refused with a cogqat::error (and leave the space empty); anything it accepts must write and
// read back to the same text, and every BindLink/GetLink in it must compile and run or be refused with a
// cogqat::error. A crash, a sanitizer report, another exception or a mismatch is a finding. Built and run by
// scripts/fuzz.sh; replayed over its corpus by the test command.

#include <cogqat/cog/atomese.hpp>
#include <cogqat/cog/atomese_query.hpp>
#include <cogqat/core/error.hpp>
#include <cogqat/core/policy.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace cogqat;
using namespace cogqat::cog;

template <TruthValue TV, AttentionValue AV>
void round_trip(std::string_view text, bool run_queries) {
    AtomSpace<TV> space;
    AttentionBank<AV, TV> bank(space);
    std::vector<handle> top;
    try {
        top = read_atomese(bank, text, {"fuzz.scm"});
    } catch (const cogqat::error&) {
        if (!space.empty()) __builtin_trap();  // checked whole before any change
        return;
    }
    const std::string written = to_atomese(bank);
    AtomSpace<TV> again;
    AttentionBank<AV, TV> again_bank(again);
    static_cast<void>(read_atomese(again_bank, written, {"written.scm"}));  // throws (a finding) if it cannot
    if (to_atomese(again_bank) != written || again.size() != space.size()) __builtin_trap();
    if (!run_queries) return;
    for (const handle q : top) {
        const type_id t = space.type(q);
        if (t != types::bind_link && t != types::get_link) continue;
        try {
            static_cast<void>(execute_atomese_query(space, q, space));
        } catch (const cogqat::error&) {}
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    // Queries only on short inputs: a long one can ask for a join whose size is exponential in the text.
    const bool run_queries = size <= 512;
    round_trip<float_truth_value, float_attention_value>(text, run_queries);
    round_trip<quantized_truth_value<BitWidth<8>>, quantized_attention_value<BitWidth<8>>>(text, false);
    return 0;
}
