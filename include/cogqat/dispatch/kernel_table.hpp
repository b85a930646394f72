#pragma once
// The SIMD backend's run-time side: tables of row kernels, one per instruction set, and the choice of the
// table in use. This header needs no SIMD flags and no xsimd: the kernels themselves are compiled in
// translation units built for their instruction set (simd/isa/register.hpp, cogqat_simd_dispatch() in
// CMake) and register their table here before main runs. Nothing here assumes an instruction set at
// compile time; which tables may run is decided from the CPU at run time.
//
// The table is the seam between the layers (docs/architecture.md): the formats below the kernels dispatch
// through it, and the kernels above them fill it. So it needs nothing of the formats but their type ids.
//
// A null kernel means "no SIMD version": callers fall back to the scalar reference, which is always there.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#if defined(__GNUC__)
#include <cpuid.h>
#endif
#endif

#include "cogqat/core/error.hpp"

namespace cogqat {
/// A GGUF tensor type (format/ggml_type.hpp defines it): the table is indexed by the id alone.
enum class ggml_type : std::uint32_t;
/// A group's scale and zero-point (core/policy.hpp defines it): the quantizer's kernels take arrays of them.
struct affine_params;
}  // namespace cogqat

namespace cogqat::dispatch {

/// One activation vector as the interleaved kernels read it (simd/interleaved.hpp): its int8 values, and for
/// every 32-value block the block's scale and the sum of its values.
struct interleaved_activations {
    const std::int8_t* q = nullptr;
    const float* d = nullptr;
    const std::int32_t* sums = nullptr;
};

/// The row kernels of one GGUF type on one instruction set. `n` counts values and is a multiple of the
/// type's block size; pointers need no alignment.
struct type_kernels {
    /// Floats to blocks, the same bytes as the scalar reference (and so as ggml's reference quantizer).
    void (*quantize)(const float* x, std::byte* out, std::size_t n) = nullptr;
    /// Blocks to floats, the same values as the reference.
    void (*dequantize)(const std::byte* in, float* y, std::size_t n) = nullptr;
    /// For q8_0, q8_1 and q8_K only: activations quantized as ggml's CPU backend does (activation_quantize.hpp).
    void (*quantize_activations)(const float* x, std::byte* out, std::size_t n) = nullptr;
    /// Dot product of a row of this type with activations of activation_type_for(type).
    float (*dot_quantized)(const std::byte* w, const std::byte* a, std::size_t n) = nullptr;
    /// For the K formats: one row against `vectors` (1 to 4) activation vectors, out[v] equal to
    /// dot_quantized(w, a[v], n) bit for bit, the row decoded once.
    void (*dot_quantized_batch)(const std::byte* w, const std::byte* const* a, std::size_t vectors, std::size_t n, float* out) = nullptr;
    /// Dot product of a row of this type with float activations.
    float (*dot_float)(const std::byte* w, const float* x, std::size_t n) = nullptr;
    /// For f32, f16 and bf16: one row against `vectors` (1 to 4) float vectors, out[v] equal to
    /// dot_float(w, x[v], n) bit for bit, each row register converted once.
    void (*dot_float_batch)(const std::byte* w, const float* const* x, std::size_t vectors, std::size_t n, float* out) = nullptr;
    /// For the types with an interleaved layout (simd/interleaved.hpp): one group of 16 rows, `blocks`
    /// blocks long, times `vectors` activation vectors; out[v * 16 + r] for row r and vector v.
    void (*dot_interleaved)(const std::byte* group, std::size_t blocks, const interleaved_activations* a, std::size_t vectors,
                            float* out) = nullptr;
};

/// The loops of the generic quantizer<Bits, Granularity, Mode> (quant/quantizer.hpp) over `groups`
/// consecutive groups of `length` values each, with every group's parameters at run time, so that one
/// compiled kernel serves every policy combination and a call covers a whole chunk of a tensor. Codes are
/// level - min_level, in bytes (up to 8 bits) or 16-bit words. Each gives the reference's results
/// (core/affine_levels.hpp) bit for bit.
struct quantizer_kernels {
    /// lo[g], hi[g] = reference::value_range of group g. Returns the index of the first NaN or Inf among the
    /// length * groups values (the ranges are then unspecified), or length * groups when there is none.
    std::size_t (*group_ranges)(const float* x, std::size_t length, std::size_t groups, float* lo, float* hi) = nullptr;
    /// params[g] = Symmetric::choose_params(lo[g], hi[g], bits) for max_level = 2^(bits-1) - 1 (core/policy.hpp).
    void (*symmetric_params)(const float* lo, const float* hi, std::size_t groups, int max_level, affine_params* params) = nullptr;
    /// params[g] = Asymmetric::choose_params(lo[g], hi[g], bits) for max_level = 2^bits - 1.
    void (*asymmetric_params)(const float* lo, const float* hi, std::size_t groups, int max_level, affine_params* params) = nullptr;
    /// codes of group g = reference::encode of its values with params[g] (any scale, 0 included).
    void (*encode_u8)(const float* x, std::size_t length, std::size_t groups, const affine_params* params, int min_level, int max_level,
                      std::uint8_t* codes) = nullptr;
    void (*encode_u16)(const float* x, std::size_t length, std::size_t groups, const affine_params* params, int min_level, int max_level,
                       std::uint16_t* codes) = nullptr;
    /// out of group g = reference::decode of its codes with params[g].
    void (*decode_u8)(const std::uint8_t* codes, std::size_t length, std::size_t groups, const affine_params* params, int min_level,
                      float* out) = nullptr;
    void (*decode_u16)(const std::uint16_t* codes, std::size_t length, std::size_t groups, const affine_params* params, int min_level,
                       float* out) = nullptr;
};

/// GGUF type ids are small (bf16 = 30, the largest cogqat converts); the table is indexed by them.
inline constexpr std::size_t kernel_type_slots = 40;

/// Every kernel of one instruction set.
struct kernel_table {
    std::string_view isa;  ///< "sse4.2", "avx2", "avx512", "avx512_vnni", "neon"
    int priority = 0;      ///< among the tables the CPU can run, the highest is the default
    std::array<type_kernels, kernel_type_slots> types{};
    quantizer_kernels quantizer{};

    [[nodiscard]] const type_kernels& operator[](ggml_type t) const noexcept {
        static constexpr type_kernels none{};
        const auto i = static_cast<std::size_t>(t);
        return i < types.size() ? types[i] : none;
    }
    type_kernels& operator[](ggml_type t) { return types.at(static_cast<std::size_t>(t)); }
};

/// The scalar reference, as a table with no kernels: every caller's fallback.
inline constexpr std::string_view scalar_isa = "scalar";
inline const kernel_table& scalar_table() noexcept {
    static const kernel_table table{scalar_isa, 0, {}};
    return table;
}

// ------------------------------------------------------------------------------------------- CPU support

namespace detail {

struct x86_features {
    bool sse4_2 = false, avx2 = false, fma = false, f16c = false, avx512 = false, avx512_vnni = false;
};

/// What this CPU and its operating system can run: the instruction bits and, for the wide registers, that
/// the OS saves them (XCR0), without which an AVX instruction faults even on a CPU that has it.
inline x86_features detect_x86() noexcept {
    x86_features f;
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    f.sse4_2 = (c >> 20) & 1;
    f.fma = (c >> 12) & 1;
    f.f16c = (c >> 29) & 1;
    const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    unsigned long long xcr0 = 0;
    if (osxsave) {
        unsigned lo = 0, hi = 0;
        __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
    }
    const bool os_ymm = (xcr0 & 0x6) == 0x6, os_zmm = (xcr0 & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    f.avx2 = avx && os_ymm && ((b >> 5) & 1) && f.fma && f.f16c;
    const bool avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    f.avx512 = f.avx2 && os_zmm && avx512f && avx512dq && avx512bw && avx512vl;
    f.avx512_vnni = f.avx512 && ((c >> 11) & 1);
#endif
    return f;
}

}  // namespace detail

/// Whether this machine can run kernels built for `isa` (one of the names kernel_table::isa takes).
[[nodiscard]] inline bool cpu_supports(std::string_view isa) noexcept {
    if (isa == scalar_isa) return true;
#if defined(__aarch64__) || defined(_M_ARM64)
    return isa == "neon";
#else
    static const detail::x86_features f = detail::detect_x86();
    if (isa == "sse4.2") return f.sse4_2;
    if (isa == "avx2") return f.avx2;
    if (isa == "avx512") return f.avx512;
    if (isa == "avx512_vnni") return f.avx512_vnni;
    return false;
#endif
}

// ----------------------------------------------------------------------------------------------- registry

namespace detail {

struct registry_state {
    std::mutex mutex;
    std::vector<const kernel_table*> tables;  // every table linked in, runnable here or not
    std::atomic<const kernel_table*> active{nullptr};
};
inline registry_state& registry() {
    static registry_state state;
    return state;
}

inline std::string isa_list(const std::vector<const kernel_table*>& tables) {
    std::string names(scalar_isa);
    for (const auto* t : tables) names += std::string(", ") + std::string(t->isa) + (cpu_supports(t->isa) ? "" : " (not on this CPU)");
    return names;
}

inline const kernel_table* find_table(const std::vector<const kernel_table*>& tables, std::string_view isa) {
    if (isa == scalar_isa) return &scalar_table();
    for (const auto* t : tables)
        if (t->isa == isa) return t;
    return nullptr;
}

/// The table a fresh process uses: COGQAT_SIMD names one, else the best the CPU runs.
inline const kernel_table* default_table(const std::vector<const kernel_table*>& tables) {
    if (const char* forced = std::getenv("COGQAT_SIMD"); forced && *forced) {
        const kernel_table* t = find_table(tables, forced);
        if (!t || !cpu_supports(t->isa)) {
            throw invalid_argument_error(std::string("COGQAT_SIMD=") + forced +
                                         ": no such instruction set linked in or runnable here; linked: " + isa_list(tables));
        }
        return t;
    }
    const kernel_table* best = &scalar_table();
    for (const auto* t : tables)
        if (cpu_supports(t->isa) && t->priority > best->priority) best = t;
    return best;
}

}  // namespace detail

/// Adds a table (called by the per-ISA translation units at start-up). A second table of the same ISA
/// is ignored, so that linking one ISA unit twice is harmless.
inline void register_kernels(const kernel_table& table) {
    auto& r = detail::registry();
    std::lock_guard lock(r.mutex);
    if (detail::find_table(r.tables, table.isa)) return;
    r.tables.push_back(&table);
    r.active.store(nullptr);  // the default is chosen again, now with this table
}

/// The ISAs linked into this program, scalar first; `runnable_only` keeps those this CPU can run.
[[nodiscard]] inline std::vector<std::string_view> linked_isas(bool runnable_only = false) {
    auto& r = detail::registry();
    std::lock_guard lock(r.mutex);
    std::vector<std::string_view> names{scalar_isa};
    for (const auto* t : r.tables)
        if (!runnable_only || cpu_supports(t->isa)) names.push_back(t->isa);
    return names;
}

/// The table in use (COGQAT_SIMD, else the best runnable one, until use_isa() picks another).
[[nodiscard]] inline const kernel_table& active() {
    auto& r = detail::registry();
    if (const kernel_table* t = r.active.load(std::memory_order_acquire)) return *t;
    std::lock_guard lock(r.mutex);
    if (!r.active.load()) r.active.store(detail::default_table(r.tables));
    return *r.active.load();
}

/// The table of one ISA; throws invalid_argument_error when it is not linked in or the CPU cannot run it.
[[nodiscard]] inline const kernel_table& table_for(std::string_view isa) {
    auto& r = detail::registry();
    std::lock_guard lock(r.mutex);
    const kernel_table* t = detail::find_table(r.tables, isa);
    if (!t)
        throw invalid_argument_error("SIMD instruction set '" + std::string(isa) +
                                     "' is not linked in; linked: " + detail::isa_list(r.tables));
    if (!cpu_supports(t->isa)) throw invalid_argument_error("SIMD instruction set '" + std::string(isa) + "' cannot run on this CPU");
    return *t;
}

/// Makes every later call use `isa` ("scalar" for the reference); returns the name in use before.
inline std::string_view use_isa(std::string_view isa) {
    const kernel_table& t = table_for(isa);
    const std::string_view before = active().isa;
    detail::registry().active.store(&t, std::memory_order_release);
    return before;
}

/// The kernels of `type` in the active table (members null where the reference is to be used).
[[nodiscard]] inline const type_kernels& kernels(ggml_type type) { return active()[type]; }

}  // namespace cogqat::dispatch
