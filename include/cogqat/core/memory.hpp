#pragma once
// What a computation will hold in memory, checked against the machine before it starts: a setting that asks
// for more than there is gets a message with both amounts, not a std::bad_alloc (or the OOM killer) later.

#include <cstdint>
#include <optional>
#include <string>

#if __has_include(<unistd.h>)
#include <unistd.h>
#endif

#include "cogqat/core/error.hpp"

namespace cogqat {

/// The machine's physical memory in bytes; nullopt where the system does not say.
[[nodiscard]] inline std::optional<std::uint64_t> physical_memory_bytes() noexcept {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGE_SIZE)
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && page > 0) return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
#endif
    return std::nullopt;
}

/// "1.5 GiB", "12 MiB", "300 bytes": a size for a message.
[[nodiscard]] inline std::string human_bytes(double bytes) {
    const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 6) bytes /= 1024.0, ++u;
    if (u == 0) return std::to_string(static_cast<std::uint64_t>(bytes)) + " bytes";
    const std::string text = std::to_string(bytes);
    return text.substr(0, text.find('.') + 2) + " " + units[u];
}

/// invalid_argument_error when `bytes` (nullopt: more than 2^64) exceed the machine's physical memory.
/// `what` names the settings the amount comes from, e.g. "qat: 100000 samples x 512 positions x 32000 logits".
inline void require_memory(const std::string& what, std::optional<std::uint64_t> bytes) {
    const auto available = physical_memory_bytes();
    if (bytes && (!available || *bytes <= *available)) return;
    throw invalid_argument_error(
            what + " need " + (bytes ? human_bytes(static_cast<double>(*bytes)) : std::string("more than 2^64 bytes")) +
            (available ? ", more than this machine's " + human_bytes(static_cast<double>(*available)) + " of memory" : std::string()));
}

}  // namespace cogqat
