#pragma once
// Where the tests find ../shared (models and ggml's vectors): $COGQAT_SHARED_DIR, else the directory the
// build was configured with. Tests that need it skip with a message when it is absent.

#include <cstdlib>
#include <filesystem>

namespace cogqat::test {

inline std::filesystem::path shared_dir() {
    if (const char* env = std::getenv("COGQAT_SHARED_DIR"); env && *env) return env;
    return COGQAT_DEFAULT_SHARED_DIR;
}

inline std::filesystem::path ggml_vectors_dir() { return shared_dir() / "testdata" / "ggml"; }

}  // namespace cogqat::test
