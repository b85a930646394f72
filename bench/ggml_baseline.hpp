#pragma once
// ggml's own quantize, dequantize and dot-product functions, loaded at run time so that the benchmarks can
// time them next to ours in one process. Nothing links against ggml: libggml-base (ggml_quantize_chunk,
// ggml_get_type_traits) and one CPU variant (ggml_get_type_traits_cpu) are dlopen'ed from the folder of
// prebuilt binaries that prebuilt_library.hpp names (node-llama-cpp's, or $COGQAT_GGML_DIR).
//
// The CPU variant is chosen as ggml_backend_load_best() chooses it: every libggml-cpu-*.so in the folder is
// opened and the one whose ggml_backend_score() is highest wins (0 means "this CPU cannot run it").
// $COGQAT_GGML_CPU=<variant> (e.g. haswell) forces one, to compare like with like against one of our ISAs.
//
// The two structs below mirror ggml's public headers (ggml.h `struct ggml_type_traits`, ggml-cpu.h
// `struct ggml_type_traits_cpu`, llama.cpp master of the ggml 0.25 series that node-llama-cpp 3.22 ships).
// A wrong mirror would read garbage, so load() cross-checks every type it serves against our own type
// table (name, block size, block bytes) and refuses the library when one differs.

#include <cogqat/format/ggml_type.hpp>

#include "prebuilt_library.hpp"

#include <dlfcn.h>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace cogqat::bench {

namespace ggml_abi {

using to_float_fn = void (*)(const void* x, float* y, std::int64_t k);
using from_float_fn = void (*)(const float* x, void* y, std::int64_t k);
// bs, bx, by are strides between the nrc outputs, rows and activation rows; with nrc == 1 only one dot
// product is computed and they are not read.
using vec_dot_fn = void (*)(int n, float* s, std::size_t bs, const void* x, std::size_t bx, const void* y, std::size_t by, int nrc);

struct type_traits {
    const char* type_name;
    std::int64_t blck_size;
    std::int64_t blck_size_interleave;
    std::size_t type_size;
    bool is_quantized;
    to_float_fn to_float;
    from_float_fn from_float_ref;
};

struct type_traits_cpu {
    from_float_fn from_float;
    vec_dot_fn vec_dot;
    int vec_dot_type;  // enum ggml_type: a C enum of small values, int-sized on every ABI ggml supports
    std::int64_t nrows;
};

// The x86-64 SysV layout the headers give; a change of ggml's struct that kept the size would still be
// caught by the run-time cross-check in load().
static_assert(offsetof(type_traits, type_size) == 24 && offsetof(type_traits, to_float) == 40 && sizeof(type_traits) == 56);
static_assert(offsetof(type_traits_cpu, vec_dot_type) == 16 && offsetof(type_traits_cpu, nrows) == 24 && sizeof(type_traits_cpu) == 32);

using quantize_chunk_fn = std::size_t (*)(int type, const float* src, void* dst, std::int64_t start, std::int64_t nrows,
                                          std::int64_t n_per_row, const float* imatrix);
using get_type_traits_fn = const type_traits* (*)(int type);
using get_type_traits_cpu_fn = const type_traits_cpu* (*)(int type);
using cpu_init_fn = void (*)();
using score_fn = int (*)();
using string_fn = const char* (*)();

}  // namespace ggml_abi

/// ggml's functions for the GGUF types, or the reason they are not there.
class ggml_baseline {
public:
    /// The library of this process, loaded on first use.
    static const ggml_baseline& instance() {
        static const ggml_baseline loaded = load();
        return loaded;
    }

    [[nodiscard]] bool available() const noexcept { return reason_.empty(); }
    /// Why available() is false (empty when it is true).
    [[nodiscard]] const std::string& reason() const noexcept { return reason_; }
    /// The CPU variant in use ("sapphirerapids", "haswell", ...) and ggml's version and commit.
    [[nodiscard]] const std::string& variant() const noexcept { return variant_; }
    [[nodiscard]] const std::string& version() const noexcept { return version_; }
    [[nodiscard]] const std::filesystem::path& folder() const noexcept { return folder_; }

    /// Which of ggml's functions exist for `type` (ggml leaves the entries of a type without them null).
    [[nodiscard]] bool has_to_float(ggml_type type) const noexcept { return traits(type) && traits(type)->to_float; }
    [[nodiscard]] bool has_from_float(ggml_type type) const noexcept { return cpu_traits(type) && cpu_traits(type)->from_float; }
    [[nodiscard]] bool has_vec_dot(ggml_type weights) const noexcept { return cpu_traits(weights) && cpu_traits(weights)->vec_dot; }

    /// ggml_quantize_chunk over `rows` rows of `row_length` values (no importance matrix): ggml's reference
    /// quantizer, the one llama-quantize runs. Returns the bytes written.
    std::size_t quantize_chunk(ggml_type type, const float* x, std::byte* out, std::size_t rows, std::size_t row_length) const {
        return quantize_chunk_(static_cast<int>(type), x, out, 0, static_cast<std::int64_t>(rows), static_cast<std::int64_t>(row_length),
                               nullptr);
    }

    /// Blocks to floats, ggml-base's to_float (what get_rows and the f32 conversions run).
    void to_float(ggml_type type, const std::byte* in, float* y, std::size_t n) const {
        traits(type)->to_float(in, y, static_cast<std::int64_t>(n));
    }

    /// The CPU backend's from_float: for q8_0/q8_1/q8_K what it quantizes activations with before a dot.
    void from_float(ggml_type type, const float* x, std::byte* out, std::size_t n) const {
        cpu_traits(type)->from_float(x, out, static_cast<std::int64_t>(n));
    }

    /// The CPU backend's dot product of one row of `weights` with activations of vec_dot_type(weights).
    [[nodiscard]] float vec_dot(ggml_type weights, const std::byte* w, const std::byte* a, std::size_t n) const {
        float s = 0.0f;
        cpu_traits(weights)->vec_dot(static_cast<int>(n), &s, 0, w, 0, a, 0, 1);
        return s;
    }

    /// The activation type ggml's vec_dot expects for `weights` (as a GGUF id; it may be one we do not know).
    [[nodiscard]] std::uint32_t vec_dot_type(ggml_type weights) const {
        return static_cast<std::uint32_t>(cpu_traits(weights)->vec_dot_type);
    }

private:
    std::string reason_ = "not loaded";
    std::string variant_, version_;
    std::filesystem::path folder_;
    ggml_abi::quantize_chunk_fn quantize_chunk_ = nullptr;
    ggml_abi::get_type_traits_fn get_traits_ = nullptr;
    ggml_abi::get_type_traits_cpu_fn get_cpu_traits_ = nullptr;

    [[nodiscard]] const ggml_abi::type_traits* traits(ggml_type type) const noexcept {
        return get_traits_ ? get_traits_(static_cast<int>(type)) : nullptr;
    }
    [[nodiscard]] const ggml_abi::type_traits_cpu* cpu_traits(ggml_type type) const noexcept {
        return get_cpu_traits_ ? get_cpu_traits_(static_cast<int>(type)) : nullptr;
    }

    /// Opens the best CPU variant of `folder`; empty variant name and a reason on failure.
    static void* open_cpu_variant(const std::filesystem::path& folder, std::string& variant, std::string& reason) {
        const char* forced = std::getenv("COGQAT_GGML_CPU");
        const std::string prefix = "libggml-cpu-";
        std::vector<std::filesystem::path> candidates;
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
            const std::string name = entry.path().filename().string();
            if (name.starts_with(prefix) && name.ends_with(".so")) candidates.push_back(entry.path());
        }
        // Directory order is arbitrary; sorted, a tie between variants is settled the same way every run.
        std::sort(candidates.begin(), candidates.end());
        void* best = nullptr;
        int best_score = 0;
        std::string tried;
        for (const auto& path : candidates) {
            const std::string name = path.filename().string();
            const std::string this_variant = name.substr(prefix.size(), name.size() - prefix.size() - 3);
            if (forced && *forced && this_variant != forced) continue;
            void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
            if (!library) {
                tried += " " + this_variant + " (" + prebuilt::dl_error() + ")";
                continue;
            }
            const auto score = prebuilt::symbol<ggml_abi::score_fn>(library, "ggml_backend_score");
            const int s = score ? score() : 0;
            if (s > best_score) {
                if (best) dlclose(best);
                best = library;
                best_score = s;
                variant = this_variant;
            } else {
                dlclose(library);
                tried += " " + this_variant + "(score " + std::to_string(s) + ")";
            }
        }
        if (!best) {
            // A build without variants has one libggml-cpu.so and no score: ggml then loads it unconditionally.
            const auto plain = folder / "libggml-cpu.so";
            if (!(forced && *forced) && std::filesystem::exists(plain)) {
                if ((best = dlopen(plain.c_str(), RTLD_NOW | RTLD_LOCAL))) {
                    variant = "cpu";
                    return best;
                }
                tried += " cpu (" + prebuilt::dl_error() + ")";
            }
            reason = "no CPU variant of ggml in " + folder.string() + " runs here" +
                     (forced && *forced ? " (COGQAT_GGML_CPU=" + std::string(forced) + ")" : "") + (tried.empty() ? "" : ":" + tried);
        }
        return best;
    }

    static ggml_baseline load() {
        ggml_baseline g;
        g.folder_ = prebuilt::folder();
        if (g.folder_.empty()) {
            g.reason_ = "no ggml folder: set COGQAT_GGML_DIR";
            return g;
        }
        const auto base_path = g.folder_ / "libggml-base.so";
        if (!std::filesystem::exists(base_path)) {
            g.reason_ =
                    "no libggml-base.so in " + g.folder_.string() + " (scripts/deps.sh installs node-llama-cpp; or set COGQAT_GGML_DIR)";
            return g;
        }
        // Opened first, by path: the CPU variant's DT_NEEDED libggml-base.so then resolves to this copy
        // (same soname), whatever the system's library path holds. Never closed: ggml registers state
        // (its CPU feature tables, the quantization tables) that lives until exit.
        void* base = dlopen(base_path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!base) {
            g.reason_ = "dlopen " + base_path.string() + ": " + prebuilt::dl_error();
            return g;
        }
        g.quantize_chunk_ = prebuilt::symbol<ggml_abi::quantize_chunk_fn>(base, "ggml_quantize_chunk");
        g.get_traits_ = prebuilt::symbol<ggml_abi::get_type_traits_fn>(base, "ggml_get_type_traits");
        if (!g.quantize_chunk_ || !g.get_traits_) {
            g.reason_ = base_path.string() + " lacks ggml_quantize_chunk or ggml_get_type_traits";
            return g;
        }
        if (const auto version = prebuilt::symbol<ggml_abi::string_fn>(base, "ggml_version")) g.version_ = version();
        if (const auto commit = prebuilt::symbol<ggml_abi::string_fn>(base, "ggml_commit"))
            g.version_ += std::string(g.version_.empty() ? "" : " ") + commit();

        std::string reason;
        void* cpu = open_cpu_variant(g.folder_, g.variant_, reason);
        if (!cpu) {
            g.reason_ = reason;
            return g;
        }
        const auto cpu_init = prebuilt::symbol<ggml_abi::cpu_init_fn>(cpu, "ggml_cpu_init");
        g.get_cpu_traits_ = prebuilt::symbol<ggml_abi::get_type_traits_cpu_fn>(cpu, "ggml_get_type_traits_cpu");
        if (!cpu_init || !g.get_cpu_traits_) {
            g.reason_ = "libggml-cpu-" + g.variant_ + ".so lacks ggml_cpu_init or ggml_get_type_traits_cpu";
            return g;
        }
        // Fills the CPU backend's f16 tables and feature flags, which vec_dot and from_float read.
        cpu_init();

        for (ggml_type t : {ggml_type::q4_0, ggml_type::q4_1, ggml_type::q5_0, ggml_type::q5_1, ggml_type::q8_0, ggml_type::q8_1,
                            ggml_type::q2_K, ggml_type::q3_K, ggml_type::q4_K, ggml_type::q5_K, ggml_type::q6_K, ggml_type::q8_K}) {
            const auto* theirs = g.traits(t);
            const auto& ours = info(t);
            if (!theirs || !theirs->type_name || std::string_view(theirs->type_name) != ours.name ||
                theirs->blck_size != static_cast<std::int64_t>(ours.block_size) || theirs->type_size != ours.type_size) {
                g.reason_ = "ggml_get_type_traits(" + std::string(ours.name) + ") does not describe " + std::string(ours.name) +
                            " as we do: a ggml whose struct ggml_type_traits differs from the one this program mirrors";
                return g;
            }
        }
        g.reason_.clear();
        return g;
    }
};

}  // namespace cogqat::bench
