#pragma once
// The prebuilt ggml that ships with node-llama-cpp (libggml-base), loaded at run time: its quantizer, its
// decoders and its gguf reader, bound once for every interop test that compares bytes or floats with ggml's.
#include <doctest/doctest.h>

#include <cogqat/format/ggml_type.hpp>

#include <dlfcn.h>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace cogqat::test::ggml {

using quantize_chunk_fn = std::size_t (*)(int type, const float* src, void* dst, std::int64_t start, std::int64_t nrows,
                                          std::int64_t n_per_row, const float* imatrix);
using quantize_init_fn = void (*)(int type);
using to_float_fn = void (*)(const void* x, float* y, std::int64_t k);
/// The head of ggml's struct ggml_type_traits (ggml.h), as far as to_float: the fields read here. The name and
/// size are checked against ours before to_float is called.
struct type_traits_head {
    const char* type_name;
    std::int64_t blck_size;
    std::int64_t blck_size_interleave;
    std::size_t type_size;
    bool is_quantized;
    to_float_fn to_float;
};
using type_traits_fn = const type_traits_head* (*)(int type);

// ggml's gguf reader, as llama.cpp's quantize calls it (gguf.h, ggml.h). Ids are read as int: the low half of
// the int64_t the current ggml returns.
struct gguf_init_params_abi {
    bool no_alloc;
    void** ctx;
};
struct gguf_api {
    void* (*init_from_file)(const char*, gguf_init_params_abi) = nullptr;
    int (*find_key)(const void*, const char*) = nullptr;
    void (*free_gguf)(void*) = nullptr;
    void (*free_ggml)(void*) = nullptr;
    void* (*first_tensor)(const void*) = nullptr;
    void* (*next_tensor)(const void*, const void*) = nullptr;
    const char* (*name)(const void*) = nullptr;
    float* (*data_f32)(const void*) = nullptr;
    std::int64_t (*nelements)(const void*) = nullptr;
};

struct library {
    quantize_chunk_fn quantize_chunk = nullptr;
    quantize_init_fn quantize_init = nullptr;
    type_traits_fn type_traits = nullptr;
    gguf_api gguf;
    std::string version = "(unknown version)";
};

/// The bound library (empty until load() succeeds).
inline library& bound() {
    static library l;
    return l;
}

/// Where libggml-base is: $COGQAT_GGML_BASE, else the node-llama-cpp copy scripts/test.sh installs.
inline std::filesystem::path base_path() {
    if (const char* env = std::getenv("COGQAT_GGML_BASE"); env && *env) return env;
    return COGQAT_DEFAULT_GGML_BASE;
}

/// The grid i-quant test's options (interop_main.cpp): `--all-types` compares the bytes of every type, also
/// those whose ggml neighbour maps take seconds to build; `--write-vectors FILE` records ggml's digests there.
struct iq_test_options {
    bool all_types = false;
    const char* vectors_out = nullptr;
};
inline iq_test_options& iq_options() {
    static iq_test_options o;
    return o;
}

enum class load_result { loaded, absent, incomplete };

/// Opens libggml-base and binds every function the tests call. `absent`: not installed (the tests skip);
/// `incomplete`: installed without a function they need (the tests fail), named in `missing`.
inline load_result load(std::string& missing) {
    const auto path = base_path();
    void* handle = std::filesystem::exists(path) ? dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL) : nullptr;
    if (!handle) return load_result::absent;
    library& l = bound();
    const auto bind = [&](auto& fn, const char* symbol) {
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(handle, symbol));
        if (!fn) missing += std::string(missing.empty() ? "" : ", ") + symbol;
    };
    bind(l.quantize_chunk, "ggml_quantize_chunk");
    bind(l.quantize_init, "ggml_quantize_init");
    bind(l.type_traits, "ggml_get_type_traits");
    bind(l.gguf.init_from_file, "gguf_init_from_file");
    bind(l.gguf.find_key, "gguf_find_key");
    bind(l.gguf.free_gguf, "gguf_free");
    bind(l.gguf.free_ggml, "ggml_free");
    bind(l.gguf.first_tensor, "ggml_get_first_tensor");
    bind(l.gguf.next_tensor, "ggml_get_next_tensor");
    bind(l.gguf.name, "ggml_get_name");
    bind(l.gguf.data_f32, "ggml_get_data_f32");
    bind(l.gguf.nelements, "ggml_nelements");
    if (auto* version = reinterpret_cast<const char* (*)()>(dlsym(handle, "ggml_version"))) l.version = version();
    if (auto* commit = reinterpret_cast<const char* (*)()>(dlsym(handle, "ggml_commit"))) l.version += std::string(" ") + commit();
    return missing.empty() ? load_result::loaded : load_result::incomplete;
}

/// ggml_quantize_chunk on rows of `row_length` values, with its per-column importance or none.
inline std::vector<std::byte> quantize(ggml_type type, std::span<const float> values, std::size_t row_length,
                                       const float* importance = nullptr) {
    const library& l = bound();
    std::vector<std::byte> out(storage_size(type, values.size()));
    l.quantize_init(static_cast<int>(type));
    const std::size_t written =
            l.quantize_chunk(static_cast<int>(type), values.data(), out.data(), 0, static_cast<std::int64_t>(values.size() / row_length),
                             static_cast<std::int64_t>(row_length), importance);
    REQUIRE(written == out.size());
    return out;
}

/// ggml's to_float of whole blocks, once its type traits name our type and size.
inline std::vector<float> to_float(ggml_type type, std::span<const std::byte> bytes) {
    const auto& ours = info(type);
    const auto* traits = bound().type_traits(static_cast<int>(type));
    REQUIRE(traits != nullptr);
    REQUIRE(std::string(traits->type_name) == ours.name);
    REQUIRE(traits->type_size == ours.type_size);
    REQUIRE(static_cast<bool>(traits->to_float));
    std::vector<float> out(bytes.size() / ours.type_size * ours.block_size);
    traits->to_float(bytes.data(), out.data(), static_cast<std::int64_t>(out.size()));
    return out;
}

}  // namespace cogqat::test::ggml
