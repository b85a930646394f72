#pragma once
// Where the benchmarks find llama.cpp's prebuilt shared libraries (ggml, libllama) to dlopen, and the two
// dlopen helpers they share. Nothing links against them: the folder is $COGQAT_GGML_DIR, else node-llama-cpp's
// bins folder (scripts/deps.sh installs it), given at compile time as COGQAT_DEFAULT_GGML_DIR.

#include <dlfcn.h>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace cogqat::bench::prebuilt {

/// The folder of the prebuilt libraries; empty when neither the environment nor the build names one.
[[nodiscard]] inline std::filesystem::path folder() {
    if (const char* env = std::getenv("COGQAT_GGML_DIR"); env && *env) return env;
#ifdef COGQAT_DEFAULT_GGML_DIR
    return COGQAT_DEFAULT_GGML_DIR;
#else
    return {};
#endif
}

/// The last dlopen/dlsym failure, as the loader words it.
[[nodiscard]] inline std::string dl_error() {
    const char* e = dlerror();
    return e ? e : "unknown dlopen error";
}

/// `name` in `library` (or in what it loaded) as a function pointer of type F; null when absent.
template <class F>
[[nodiscard]] F symbol(void* library, const char* name) {
    return reinterpret_cast<F>(dlsym(library, name));
}

}  // namespace cogqat::bench::prebuilt
