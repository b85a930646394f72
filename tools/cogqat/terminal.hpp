#pragma once
// Whether progress goes to a terminal (a line redrawn in place) or to a file or pipe (a line per step).

#include <unistd.h>

namespace cogqat::cli {

[[nodiscard]] inline bool stderr_is_terminal() noexcept {
    static const bool terminal = ::isatty(STDERR_FILENO) == 1;
    return terminal;
}

}  // namespace cogqat::cli
