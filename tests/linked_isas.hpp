#pragma once
// The instruction sets the SIMD tests run, and which the build meant to link: every set of the processor, unless the build named
// fewer (COGQAT_KERNEL_ISAS, as the sanitized pass does). The SIMD tests require those tables to be there, so
// that a build that lost one does not pass every comparison vacuously.

#include <string_view>
#include <vector>

#include <cogqat/dispatch/kernel_table.hpp>

namespace cogqat::test {

/// The SIMD instruction sets this machine runs that the build linked, the scalar reference left out: the SIMD
/// tests force each in turn.
[[nodiscard]] inline std::vector<std::string_view> simd_isas() {
    std::vector<std::string_view> names;
    for (const auto name : dispatch::linked_isas(true))
        if (name != dispatch::scalar_isa) names.push_back(name);
    return names;
}

[[nodiscard]] inline bool meant_to_link(std::string_view isa) {
#if defined(COGQAT_KERNEL_ISAS)
    std::string_view list = COGQAT_KERNEL_ISAS;
    while (!list.empty()) {
        const auto comma = list.find(',');
        if (list.substr(0, comma) == isa) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
#else
    static_cast<void>(isa);
    return true;
#endif
}

}  // namespace cogqat::test
