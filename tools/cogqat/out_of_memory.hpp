#pragma once
// What std::bad_alloc does not say: how much memory was asked for. The tool replaces the global operator new
// (out_of_memory.cpp) to remember the size of the last request that failed, so that its message can say it.

#include <cstddef>

namespace cogqat::cli {

/// Bytes of the last allocation that failed in this process, 0 when none has.
[[nodiscard]] std::size_t failed_allocation_bytes() noexcept;

}  // namespace cogqat::cli
