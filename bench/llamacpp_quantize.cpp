// llama.cpp's own quantizer on a GGUF file, the peer that bench/scale.py times beside `cogqat quantize`:
// llama_model_quantize(), what llama-quantize runs, from node-llama-cpp's prebuilt libllama (dlopen'ed from
// the folder bench/prebuilt_library.hpp names; nothing links against it).
//
//   cogqat_llamacpp_quantize IN.gguf OUT.gguf [q4_k_m|q4_0|q8_0] [--threads N]
//
// Exit status: 0 written, 1 llama.cpp failed or its library is not the one this program mirrors, 2 bad usage,
// 77 no libllama in the folder (a skip, as ctest and the scale script read it).

#include "prebuilt_library.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

namespace fs = std::filesystem;

// struct llama_model_quantize_params of llama.h at the llama.cpp release node-llama-cpp 3.22.1 ships
// (llama/llama.cpp.info.json: tag v0.5.0, ggml-org/llama.cpp). The defaults come from the library itself
// (llama_model_quantize_default_params); this program writes only nthread and ftype, and checks the defaults
// it reads back before trusting the mirror (load_llama).
struct quantize_params {
    std::int32_t nthread;               // <= 0: std::thread::hardware_concurrency()
    std::int32_t ftype;                 // enum llama_ftype
    std::int32_t output_tensor_type;    // enum ggml_type
    std::int32_t token_embedding_type;  // enum ggml_type
    bool allow_requantize;
    bool quantize_output_tensor;
    bool only_copy;
    bool pure;
    bool keep_split;
    bool dry_run;
    const void* imatrix;       // const struct llama_model_imatrix_data*
    const void* kv_overrides;  // const struct llama_model_kv_override*
    const void* tt_overrides;  // const struct llama_model_tensor_override*
    const std::int32_t* prune_layers;
    std::size_t max_buf_size;  // 0: llama.cpp's default (8 GiB)
};
// The x86-64 SysV layout of that header (the library's llama_model_quantize_default_params writes exactly
// these 64 bytes).
static_assert(offsetof(quantize_params, ftype) == 4 && offsetof(quantize_params, allow_requantize) == 16 &&
              offsetof(quantize_params, imatrix) == 24 && offsetof(quantize_params, max_buf_size) == 56 && sizeof(quantize_params) == 64);

using default_params_fn = quantize_params (*)();
using quantize_fn = std::uint32_t (*)(const char* input, const char* output, const quantize_params* params);
using backend_init_fn = void (*)();
using string_fn = const char* (*)();

// enum llama_ftype values of that llama.h.
struct named_ftype {
    std::string_view name;
    std::int32_t ftype;
};
constexpr named_ftype ftypes[] = {{"q4_k_m", 15}, {"q4_0", 2}, {"q8_0", 7}};
constexpr std::int32_t default_ftype_q8_0 = 7;
constexpr std::int32_t ggml_type_count = 43;  // GGML_TYPE_COUNT: "no override" for the two tensor types
constexpr std::size_t default_max_buf_size = std::size_t{8} << 30;

constexpr int exit_failed = 1;
constexpr int exit_usage = 2;
constexpr int exit_skip = 77;

struct llama_library {
    default_params_fn default_params = nullptr;
    quantize_fn quantize = nullptr;
    backend_init_fn backend_init = nullptr;
    std::string version;
    fs::path path;
};

/// libllama in `folder`: libllama.so, else the versioned name node-llama-cpp ships (libllama.v0.5.0.so).
std::optional<fs::path> find_libllama(const fs::path& folder) {
    if (folder.empty()) return std::nullopt;
    std::error_code ec;
    if (fs::exists(folder / "libllama.so", ec)) return folder / "libllama.so";
    std::vector<fs::path> versioned;
    for (const auto& entry : fs::directory_iterator(folder, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.starts_with("libllama.") && name.ends_with(".so")) versioned.push_back(entry.path());
    }
    if (versioned.empty()) return std::nullopt;
    std::sort(versioned.begin(), versioned.end());
    return versioned.back();
}

/// The defaults this program's mirror expects of that release; a library whose struct moved fails here.
bool defaults_match(const quantize_params& p) {
    return p.nthread == 0 && p.ftype == default_ftype_q8_0 && p.output_tensor_type == ggml_type_count &&
           p.token_embedding_type == ggml_type_count && !p.allow_requantize && p.quantize_output_tensor && !p.only_copy && !p.pure &&
           !p.keep_split && !p.dry_run && !p.imatrix && !p.kv_overrides && !p.tt_overrides && !p.prune_layers &&
           p.max_buf_size == default_max_buf_size;
}

int usage(const char* message) {
    std::fprintf(stderr, "%s\nusage: cogqat_llamacpp_quantize IN.gguf OUT.gguf [q4_k_m|q4_0|q8_0] [--threads N]\n", message);
    return exit_usage;
}

int run(int argc, char** argv) {
    std::vector<std::string> positional;
    std::int32_t threads = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--threads" || arg == "-j") {
            if (i + 1 >= argc) return usage("--threads needs a value");
            const std::string value = argv[++i];
            std::size_t used = 0;
            long n = -1;
            try {
                n = std::stol(value, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used != value.size() || n < 1 || n > 1024)
                return usage(("--threads '" + value + "' is not a whole number from 1 to 1024").c_str());
            threads = static_cast<std::int32_t>(n);
        } else {
            positional.emplace_back(arg);
        }
    }
    if (positional.size() < 2 || positional.size() > 3) return usage("expected IN.gguf OUT.gguf and at most one type");
    const std::string type_name = positional.size() == 3 ? positional[2] : "q4_k_m";
    const auto type = std::find_if(std::begin(ftypes), std::end(ftypes), [&](const named_ftype& f) { return f.name == type_name; });
    if (type == std::end(ftypes)) return usage(("unknown type '" + type_name + "'").c_str());
    const fs::path input = positional[0], output = positional[1];
    std::error_code ec;
    if (!fs::is_regular_file(input, ec)) {
        std::fprintf(stderr, "cogqat_llamacpp_quantize: cannot read '%s': not a file\n", input.c_str());
        return exit_failed;
    }
    if (fs::equivalent(input, output, ec)) {
        std::fprintf(stderr, "cogqat_llamacpp_quantize: OUT.gguf '%s' is IN.gguf\n", output.c_str());
        return exit_failed;
    }

    const fs::path folder = cogqat::bench::prebuilt::folder();
    const auto path = find_libllama(folder);
    if (!path) {
        std::fprintf(stderr,
                     "cogqat_llamacpp_quantize: skipped: no libllama*.so in '%s' (scripts/deps.sh installs node-llama-cpp; or set "
                     "COGQAT_GGML_DIR)\n",
                     folder.c_str());
        return exit_skip;
    }
    // By path: its RUNPATH ($ORIGIN) then finds the libggml beside it. Never closed (ggml's state lives until exit).
    void* library = dlopen(path->c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        std::fprintf(stderr, "cogqat_llamacpp_quantize: dlopen %s: %s\n", path->c_str(), cogqat::bench::prebuilt::dl_error().c_str());
        return exit_failed;
    }
    using cogqat::bench::prebuilt::symbol;
    llama_library llama;
    llama.path = *path;
    llama.default_params = symbol<default_params_fn>(library, "llama_model_quantize_default_params");
    llama.quantize = symbol<quantize_fn>(library, "llama_model_quantize");
    llama.backend_init = symbol<backend_init_fn>(library, "llama_backend_init");
    if (!llama.default_params || !llama.quantize || !llama.backend_init) {
        std::fprintf(stderr, "cogqat_llamacpp_quantize: %s lacks llama_model_quantize, its default parameters or llama_backend_init\n",
                     path->c_str());
        return exit_failed;
    }
    // dlsym on the handle searches what it loaded too: ggml-base's version.
    if (const auto version = symbol<string_fn>(library, "ggml_version")) llama.version = version();
    if (const auto commit = symbol<string_fn>(library, "ggml_commit")) llama.version += std::string(" ") + commit();

    llama.backend_init();
    quantize_params params = llama.default_params();
    if (!defaults_match(params)) {
        std::fprintf(stderr,
                     "cogqat_llamacpp_quantize: %s's default quantize parameters are not those of the llama.h this program mirrors "
                     "(llama.cpp v0.5.0 of node-llama-cpp 3.22.1): a different struct llama_model_quantize_params\n",
                     path->c_str());
        return exit_failed;
    }
    params.ftype = type->ftype;
    params.nthread = threads;

    const bool output_existed = fs::exists(output, ec);
    const auto start = std::chrono::steady_clock::now();
    const std::uint32_t status = llama.quantize(input.c_str(), output.c_str(), &params);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (status != 0) {
        std::fprintf(stderr, "cogqat_llamacpp_quantize: llama_model_quantize(%s -> %s, %s) failed (status %u)\n", input.c_str(),
                     output.c_str(), std::string(type->name).c_str(), status);
        // llama.cpp writes OUT in place: a half-written file of ours is not left behind.
        if (!output_existed) fs::remove(output, ec);
        return exit_failed;
    }
    std::printf("llama.cpp (ggml %s, %s): %s -> %s as %s, %d threads (0: all), %.3f s\n", llama.version.c_str(), path->filename().c_str(),
                input.c_str(), output.c_str(), std::string(type->name).c_str(), threads, seconds);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cogqat_llamacpp_quantize: %s\n", e.what());
        return exit_failed;
    }
}
