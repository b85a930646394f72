#pragma once
// Where the default job and `raw survey` find the shared models.

#include <cstdlib>
#include <filesystem>

namespace cogqat::cli {

/// ../shared beside the checkout, as configured at build time, unless $COGQAT_SHARED_DIR says otherwise.
inline std::filesystem::path shared_dir() {
    if (const char* env = std::getenv("COGQAT_SHARED_DIR"); env && *env) return env;
    return COGQAT_DEFAULT_SHARED_DIR;
}

}  // namespace cogqat::cli
