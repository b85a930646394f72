#pragma once
// The SIMD backend's run-time side: tables of row kernels, one per instruction set, and the choice of the
// table in use. This header needs no SIMD flags and no xsimd: the kernels themselves are compiled in
// translation units built for their instruction set (simd/isa/register.hpp; cogqat_add_simd_kernels() in
// CMake), which register their set here before main runs; a set's table is built the first time it is
// needed, on a CPU that runs it. Nothing here assumes an instruction set at compile time; which tables may
// run is decided from the CPU at run time. A program that links no kernels runs the scalar reference and
// says so once on stderr (kernels_linked(), describe()).
//
// The table is the seam between the layers (docs/architecture.md): the formats below the kernels dispatch
// through it, and the kernels above them fill it. So it needs nothing of the formats but their type ids.
//
// A null kernel means "no SIMD version": callers fall back to the scalar reference, which is always there.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
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
/// A super-block's stored codes of one group (core/affine_levels.hpp defines it).
struct sub_scale;
/// A 32-value block's scale and min (format/block_format.hpp defines it).
struct affine_scale;
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
    /// For f32, f16 and bf16: `rows` rows, `row_bytes` apart, against `vectors` float vectors;
    /// y[v * y_stride + r] equal to dot_float(w + r * row_bytes, x[v], n) bit for bit, with each register
    /// load feeding a tile of rows × vectors.
    void (*dot_float_block)(const std::byte* w, std::size_t row_bytes, std::size_t rows, const float* const* x, std::size_t vectors,
                            std::size_t n, float* y, std::size_t y_stride) = nullptr;
    /// For the types with an interleaved layout (simd/interleaved.hpp): one group of 16 rows, `blocks`
    /// blocks long, times `vectors` activation vectors; out[v * 16 + r] for row r and vector v.
    void (*dot_interleaved)(const std::byte* group, std::size_t blocks, const interleaved_activations* a, std::size_t vectors,
                            float* out) = nullptr;
    /// For q4_0, q4_1, q5_0, q5_1 and q8_0: the stored scale (and min) of one block of 32 values x under the
    /// weights importance (>= 0), the bits of format/weighted_block_search.hpp's search_block_scale.
    affine_scale (*search_block_scale)(const float* x, const float* importance) = nullptr;
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
    /// The super-block step of quantizer<..., SuperBlock<S, G, ScaleBits>> where every zero-point fits its
    /// ScaleBits code (reference::super_block_rules with zero_step 1): for each run of `per_block` groups,
    /// super_scales[b] = largest scale / max_scale_code; for each group, stored[g] = {ceil(scale / super) at most
    /// max_scale_code (0 when super is 0), zero_point - min_level when `zero_points` else 0}, and params[g]
    /// rewritten to what those codes decode to. `groups` is a multiple of `per_block`.
    void (*super_block_codes)(affine_params* params, std::size_t groups, std::size_t per_block, int max_scale_code, int min_level,
                              bool zero_points, sub_scale* stored, float* super_scales) = nullptr;
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

/// One row's sums for the KL losses (loss/kl_loss.hpp), with a = (teacher - teacher_max) / T,
/// b = (student - student_max) / T and c = student - student_max (the hard term's T = 1).
struct kl_row_sums {
    double teacher_sum = 0.0;   ///< Σ e^a
    double student_sum = 0.0;   ///< Σ e^b
    double weighted_gap = 0.0;  ///< Σ e^a (a - b)
    double hard_sum = 0.0;      ///< Σ e^c, when asked for, else 0
};

/// What the KL gradient pass writes: grad[i] = student_scale e^b - teacher_scale e^a + hard_scale e^c.
struct kl_gradient_args {
    float teacher_max = 0.0f;
    float student_max = 0.0f;
    float inv_temperature = 1.0f;
    float teacher_scale = 0.0f;
    float student_scale = 0.0f;
    float hard_scale = 0.0f;  ///< 0 leaves the hard term (and its exp) out
};

/// The passes of the KL losses over one row of n >= 1 finite logits, in float lanes with blocked sums. The
/// caller keeps every shifted argument finite in float (loss/kl_loss.hpp falls back to the reference where
/// a row's range over T would not be).
struct loss_kernels {
    /// Smallest and largest of x[0, n).
    void (*range)(const float* x, std::size_t n, float* lo, float* hi) = nullptr;
    /// The sums of one row; hard_sum only when `hard`.
    kl_row_sums (*kl_sums)(const float* teacher, const float* student, std::size_t n, float teacher_max, float student_max,
                           float inv_temperature, bool hard) = nullptr;
    /// The gradient of one row into grad[0, n).
    void (*kl_gradient)(const float* teacher, const float* student, std::size_t n, const kl_gradient_args& args, float* grad) = nullptr;
    /// Σ exp((x - shift) * inv_temperature): one distribution's normalizer.
    double (*exp_sum)(const float* x, std::size_t n, float shift, float inv_temperature) = nullptr;
    /// out[i] = scale * exp((x[i] - shift) * inv_temperature).
    void (*scaled_exp)(const float* x, std::size_t n, float shift, float inv_temperature, float scale, float* out) = nullptr;
};

/// Packing of N-bit codes (core/bit_packing.hpp's little-endian bit stream) for N = 2..8, indexed by N (entries
/// 0 and 1 stay null). The stream passed in starts at a byte boundary: the caller packs the codes before the
/// first whole byte with the reference.
struct packing_kernels {
    /// Packs codes[0, n), each below 2^N, into bits [0, n N) of `stream`; the bits after them keep their values.
    std::array<void (*)(const std::uint8_t* codes, std::size_t n, std::byte* stream), 9> pack{};
    /// Unpacks the n codes of bits [0, n N) of `stream`, one byte each; reads no byte past ceil(n N / 8).
    std::array<void (*)(const std::byte* stream, std::size_t n, std::uint8_t* codes), 9> unpack{};
    /// Index of the first code above `max_code`, or n: the check that comes before packing.
    std::size_t (*first_code_above)(const std::uint8_t* codes, std::size_t n, std::uint8_t max_code) = nullptr;
};

/// The calibrators' heavy loops (calib/calibrator_arithmetic.hpp), each the same bits as its scalar reference.
struct calibrator_kernels {
    /// The smallest (*lo) and largest (*hi) of x[0..n) and the index of the first value that is not finite (n
    /// when all are; lo and hi then cover the values before it). A zero extreme may come back as -0 or +0.
    std::size_t (*scan)(const float* x, std::size_t n, float* lo, float* hi) = nullptr;
    /// Sum of squared quantization errors of x[0..n) with scale != 0, zero-point `zero` and levels [lo, hi], in
    /// squared_error_reference's order (16 double partial sums, value i in partial i mod 16, combined pairwise).
    double (*squared_error)(const float* x, std::size_t n, float scale, int zero, int lo, int hi) = nullptr;
    /// The k1-th and k2-th smallest (1-based, 1 <= k <= n) of x[0..n) (of |x| when `magnitude`): the largest
    /// value with fewer than k smaller ones, counted for every value; O(n^2), meant for small groups (n < 2^24).
    /// A zero may come back as -0 or +0.
    void (*select)(const float* x, std::size_t n, std::size_t k1, std::size_t k2, bool magnitude, float* out1, float* out2) = nullptr;
    /// ++counts[bin of x[i]] for every value (bins < 2^31), bins placed as detail::calib::histogram_layout says for the
    /// histogram_kind `kind` (0 offset, 1 magnitude, 2 two-sided).
    void (*histogram)(const float* x, std::size_t n, double origin, double scale, int kind, std::uint64_t* counts,
                      std::size_t bins) = nullptr;
};

/// Operands of a float matrix product C (m x n) = A (m x k) · B (k x n), or C += A · B with `accumulate`:
/// element (i, j) of A at a[i * a_row + j * a_col], of B at b[i * b_row + j * b_col], of C at c[i * c_row + j].
/// Either of A and B may be a transpose in place (its strides swapped); C's columns are adjacent.
struct f32_product {
    std::size_t m = 0, n = 0, k = 0;
    const float* a = nullptr;
    std::size_t a_row = 0, a_col = 0;
    const float* b = nullptr;
    std::size_t b_row = 0, b_col = 0;
    float* c = nullptr;
    std::size_t c_row = 0;
    bool accumulate = false;
};

/// Dense products, each the same bits as its scalar reference.
struct matrix_kernels {
    /// Float products (simd/float_gemm.hpp): every C[i][j] starts at 0 (or at itself, accumulating) and takes
    /// A(i, p) B(p, j) for p = 0 .. k - 1 in ascending order, each as one fused multiply-add where
    /// `gemm_f32_fused` says so, else as a rounded product and a rounded sum: simd::gemm_reference's bits.
    void (*gemm_f32)(const f32_product& product) = nullptr;
    bool gemm_f32_fused = false;
    /// GPTQ's deferred column updates (quant/gptq.hpp): for r < rows and k in [k0, k1), for j = j0 .. j1 - 1 in
    /// ascending order, w[r w_stride + k] -= e[r e_stride + j - j0] * u[j u_stride + k], the product rounded
    /// and then the difference (no fused multiply-add), as quant/gptq.hpp's rank_update_reference does.
    void (*rank_update_f64)(double* w, std::size_t w_stride, std::size_t rows, const double* e, std::size_t e_stride, const double* u,
                            std::size_t u_stride, std::size_t j0, std::size_t j1, std::size_t k0, std::size_t k1) = nullptr;
    /// The inputs' second moments (calib/second_moments.hpp): for i in [i0, i1) and j in [j0, j1), for r = 0 ..
    /// rows - 1 in ascending order, h[i h_stride + j] += double(x[r x_stride + i]) * double(x[r x_stride + j]),
    /// as detail::second_moment_tiles::add_tile does.
    void (*second_moments_f64)(double* h, std::size_t h_stride, const float* x, std::size_t x_stride, std::size_t rows, std::size_t i0,
                               std::size_t i1, std::size_t j0, std::size_t j1) = nullptr;
};

/// GGUF type ids are small (bf16 = 30, the largest cogqat converts); the table is indexed by them.
inline constexpr std::size_t kernel_type_slots = 40;

/// Every kernel of one instruction set.
struct kernel_table {
    std::string_view isa;  ///< "sse4.2", "avx2", "avx512", "avx512_vnni", "neon"
    int priority = 0;      ///< among the tables the CPU can run, the highest is the default
    std::array<type_kernels, kernel_type_slots> types{};
    quantizer_kernels quantizer{};
    loss_kernels loss{};
    packing_kernels packing{};
    calibrator_kernels calibrator{};
    matrix_kernels matrix{};

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

/// The rank of an instruction set among those the CPU runs: the highest is the default (scalar 0, a set of
/// unknown name 1). One list, so that the generated registration units (which name a set but are built
/// without its flags) and simd/isa/isa.hpp agree.
[[nodiscard]] constexpr int isa_priority(std::string_view isa) noexcept {
    if (isa == scalar_isa) return 0;
    if (isa == "sse4.2" || isa == "neon") return 10;
    if (isa == "avx2") return 20;
    if (isa == "avx512") return 30;
    if (isa == "avx512_vnni") return 40;
    return 1;
}

/// Builds one instruction set's table. It runs code compiled for that set, so the registry calls it only
/// once the CPU is known to run the set, never at start-up.
using table_maker = const kernel_table& (*)();

namespace detail {

/// One linked instruction set: its table once built (always, for a table registered ready-made).
struct linked_table {
    std::string_view isa;
    int priority = 0;
    table_maker make = nullptr;
    const kernel_table* table = nullptr;
};

struct registry_state {
    std::mutex mutex;
    std::vector<linked_table> tables;  // every set linked in, runnable here or not
    std::atomic<const kernel_table*> active{nullptr};
    bool warned = false;  // the missing-kernels warning is printed once per process
};
inline registry_state& registry() {
    static registry_state state;
    return state;
}

inline std::string isa_list(const std::vector<linked_table>& tables) {
    std::string names(scalar_isa);
    for (const auto& t : tables) names += std::string(", ") + std::string(t.isa) + (cpu_supports(t.isa) ? "" : " (not on this CPU)");
    return names;
}

inline linked_table* find_entry(std::vector<linked_table>& tables, std::string_view isa) {
    for (auto& t : tables)
        if (t.isa == isa) return &t;
    return nullptr;
}

/// The entry's table, built on first use; null when the CPU cannot run it.
inline const kernel_table* built(linked_table& entry) {
    if (!cpu_supports(entry.isa)) return nullptr;
    if (!entry.table) entry.table = &entry.make();
    return entry.table;
}

inline const kernel_table* find_table(std::vector<linked_table>& tables, std::string_view isa) {
    if (isa == scalar_isa) return &scalar_table();
    linked_table* entry = find_entry(tables, isa);
    return entry ? built(*entry) : nullptr;
}

/// What a program that links no kernels is told, once, when the SIMD backend first runs.
inline constexpr std::string_view missing_kernels_warning =
        "cogqat: no SIMD kernels are linked into this program; backend::Simd and the GGUF entry points run the scalar "
        "reference. Link a kernel library (cogqat_add_simd_kernels() or cogqat_simd_dispatch() in CMake, docs/simd.md), "
        "or set COGQAT_SIMD=scalar (or call dispatch::use_isa(\"scalar\")) to choose the reference and silence this.\n";

/// The table a fresh process uses: COGQAT_SIMD names one, else the best the CPU runs. With no SIMD table
/// linked and no choice made, the scalar reference, with a warning on stderr the first time.
inline const kernel_table* default_table(registry_state& r) {
    if (const char* forced = std::getenv("COGQAT_SIMD"); forced && *forced) {
        const kernel_table* t = find_table(r.tables, forced);
        if (!t) {
            throw invalid_argument_error(std::string("COGQAT_SIMD=") + forced +
                                         ": no such instruction set linked in or runnable here; linked: " + isa_list(r.tables));
        }
        return t;
    }
    if (r.tables.empty() && !r.warned) {
        r.warned = true;
        std::fwrite(missing_kernels_warning.data(), 1, missing_kernels_warning.size(), stderr);
    }
    linked_table* best = nullptr;
    for (auto& t : r.tables)
        if (cpu_supports(t.isa) && (!best || t.priority > best->priority)) best = &t;
    return best ? built(*best) : &scalar_table();
}

inline void add_table(linked_table entry) {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    if (find_entry(r.tables, entry.isa)) return;
    r.tables.push_back(entry);
    r.active.store(nullptr);  // the default is chosen again, now with this table
}

}  // namespace detail

/// Adds an instruction set whose table `make` builds when first needed (what the units generated by
/// cogqat_add_simd_kernels() call at start-up: `make` is compiled for the set, the caller is not). A second
/// registration of the same set is ignored, so that linking one set's kernels twice is harmless.
inline void register_kernels(std::string_view isa, table_maker make) { detail::add_table({isa, isa_priority(isa), make, nullptr}); }

/// Adds a table already built (COGQAT_SIMD_REGISTER in a unit that is compiled for its set as the whole
/// program is, e.g. with -march=native). A second table of the same set is ignored.
inline void register_kernels(const kernel_table& table) { detail::add_table({table.isa, table.priority, nullptr, &table}); }

/// Whether any SIMD kernel table is linked into this program (runnable on this CPU or not). False means
/// every entry point runs the scalar reference, and the first to run warns once on stderr unless the
/// reference was chosen (COGQAT_SIMD=scalar, use_isa("scalar")).
[[nodiscard]] inline bool kernels_linked() {
    auto& r = detail::registry();
    std::lock_guard lock(r.mutex);
    return !r.tables.empty();
}

/// The ISAs linked into this program, scalar first; `runnable_only` keeps those this CPU can run.
[[nodiscard]] inline std::vector<std::string_view> linked_isas(bool runnable_only = false) {
    auto& r = detail::registry();
    std::lock_guard lock(r.mutex);
    std::vector<std::string_view> names{scalar_isa};
    for (const auto& t : r.tables)
        if (!runnable_only || cpu_supports(t.isa)) names.push_back(t.isa);
    return names;
}

/// The table in use (COGQAT_SIMD, else the best runnable one, until use_isa() picks another).
[[nodiscard]] inline const kernel_table& active() {
    auto& r = detail::registry();
    if (const kernel_table* t = r.active.load(std::memory_order_acquire)) return *t;
    std::lock_guard lock(r.mutex);
    if (!r.active.load()) r.active.store(detail::default_table(r));
    return *r.active.load();
}

/// One line on what this program runs: the active set and every set linked in, e.g.
/// "cogqat SIMD: active avx2; linked scalar, sse4.2, avx2, avx512 (not on this CPU)", or
/// "cogqat SIMD: active scalar; no SIMD kernels linked" for a program built without them.
[[nodiscard]] inline std::string describe() {
    const std::string in_use(active().isa);
    auto& r = detail::registry();
    std::lock_guard lock(r.mutex);
    if (r.tables.empty()) return "cogqat SIMD: active " + in_use + "; no SIMD kernels linked";
    return "cogqat SIMD: active " + in_use + "; linked " + detail::isa_list(r.tables);
}

/// The table of one ISA; throws invalid_argument_error when it is not linked in or the CPU cannot run it.
[[nodiscard]] inline const kernel_table& table_for(std::string_view isa) {
    auto& r = detail::registry();
    std::lock_guard lock(r.mutex);
    if (isa == scalar_isa) return scalar_table();
    detail::linked_table* entry = detail::find_entry(r.tables, isa);
    if (!entry)
        throw invalid_argument_error("SIMD instruction set '" + std::string(isa) +
                                     "' is not linked in; linked: " + detail::isa_list(r.tables));
    const kernel_table* t = detail::built(*entry);
    if (!t) throw invalid_argument_error("SIMD instruction set '" + std::string(isa) + "' cannot run on this CPU");
    return *t;
}

/// Makes every later call use `isa` ("scalar" for the reference, which also silences the missing-kernels
/// warning); returns the name in use before.
inline std::string_view use_isa(std::string_view isa) {
    const kernel_table& t = table_for(isa);
    auto& r = detail::registry();
    const kernel_table* before = r.active.load(std::memory_order_acquire);
    if (!before) {
        // Nothing was in use yet: the default is what was "before", chosen without its warning (a program
        // that names a table has made its choice).
        std::lock_guard lock(r.mutex);
        r.warned = true;
        before = detail::default_table(r);
    }
    r.active.store(&t, std::memory_order_release);
    return before->isa;
}

/// The kernels of `type` in the active table (members null where the reference is to be used).
[[nodiscard]] inline const type_kernels& kernels(ggml_type type) { return active()[type]; }

}  // namespace cogqat::dispatch
