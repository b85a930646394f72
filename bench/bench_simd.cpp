// Our SIMD kernels timed side by side with ggml's own functions in the same process (docs/PERFORMANCE.md).
//
//   build/bench/cogqat_bench_simd [--benchmark_filter=REGEX] [--benchmark_format=json --benchmark_out=FILE]
//
// Families (one benchmark per weight format, or per activation type):
//   bandwidth/{read,copy}/tN   the memory probe: streaming read / read+write of the large arrays on N threads
//   quantize/T                 floats -> blocks, ours vs ggml_quantize_chunk (cache-resident)
//   dequantize/T/tN            blocks -> floats, ours vs ggml-base's to_float (large arrays, memory-bound),
//                              the arrays cut into whole blocks over N threads
//   quantize_act/T/tN          activations -> q8_0/q8_1/q8_K, ours vs the CPU backend's from_float (large)
//   dot/T                      one 4096-value row x quantized activations, ours vs the CPU backend's vec_dot
//   gemv/T/tN                  a matrix larger than the last-level cache x one vector on N threads
//   gemv_interleaved/T/tN      the same matrix as a simd::interleaved_matrix (q4_0, q8_0), against the same ggml vec_dot rows
//
// How a ratio is made stable: every benchmark with a ggml twin runs both in the same benchmark function,
// alternately, in batches of the same number of calls (enough calls for a batch to last about a
// millisecond); the side that goes first alternates with the iteration. The benchmark's time is ours
// (manual time); vs_ggml is the median over iterations of (ggml's batch time / our batch time), so that an
// interruption, a frequency change or a neighbour's load hits both halves of one pair and drops out.
//
// Every twin is checked once on the same input before it is timed: identical bytes for quantize and for
// activations, identical values for dequantize, dot products within 1e-3 of sum|w*x|. A mismatch ends that
// benchmark with an error, so no ratio is ever reported against a ggml that computes something else.

#include "bandwidth_probe.hpp"
#include "ggml_baseline.hpp"

#include <cogqat/core/parallel.hpp>
#include <cogqat/dispatch/kernel_table.hpp>
#include <cogqat/format/activation_quantize.hpp>
#include <cogqat/format/codec.hpp>
#include <cogqat/format/ggml_type.hpp>
#include <cogqat/format/vec_dot.hpp>
#include <cogqat/simd/gemv.hpp>
#include <cogqat/simd/interleaved.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>
#include "timing.hpp"

namespace {

using cogqat::ggml_type;
namespace simd = cogqat::simd;
namespace dispatch = cogqat::dispatch;

const cogqat::bench::ggml_baseline& ggml() { return cogqat::bench::ggml_baseline::instance(); }

constexpr ggml_type weight_types[] = {ggml_type::q4_0, ggml_type::q4_1, ggml_type::q5_0, ggml_type::q5_1, ggml_type::q8_0,
                                      ggml_type::q2_K, ggml_type::q3_K, ggml_type::q4_K, ggml_type::q5_K, ggml_type::q6_K};
/// The table-decoded formats with SIMD kernels: dequantize and dot rows only (their quantizers are the
/// scalar reference; their gemv is the dot's).
constexpr ggml_type table_types[] = {ggml_type::iq4_nl, ggml_type::iq4_xs, ggml_type::mxfp4, ggml_type::tq1_0, ggml_type::tq2_0};
constexpr ggml_type activation_types[] = {ggml_type::q8_0, ggml_type::q8_1, ggml_type::q8_K};

// Test data is one tile of Gaussian values quantized once with the reference; the large arrays repeat it.
// Quantizing hundreds of MB with the scalar K-quant search would take minutes, and repeating whole blocks
// keeps every block valid.
constexpr std::size_t tile_values = std::size_t{1} << 20;
constexpr std::size_t row_values = 4096;                  // dot row length and GEMV column count (a 4096-wide model)
constexpr std::size_t quantize_values = 64 * row_values;  // 1 MiB of floats: stays in L2, quantization is compute-bound
constexpr double batch_seconds = 1e-3;

std::string_view name(ggml_type t) { return cogqat::info(t).name; }
std::string type_name(ggml_type t) { return std::string(name(t)); }

using cogqat::bench::stream_bytes;

unsigned hardware_threads() { return cogqat::resolve_threads(0); }

const std::vector<float>& gaussian_tile() {
    static const std::vector<float> tile = [] {
        std::mt19937 rng(20240607);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<float> v(tile_values);
        for (auto& x : v) x = normal(rng);
        return v;
    }();
    return tile;
}

/// The tile in `type`, by the scalar reference (whose bytes ggml's reference quantizer also writes).
const std::vector<std::byte>& tile_blocks(ggml_type type) {
    static std::map<ggml_type, std::vector<std::byte>> cache;
    auto [it, fresh] = cache.try_emplace(type);
    if (fresh) {
        it->second.resize(cogqat::storage_size(type, tile_values));
        cogqat::detail::codec_for(type, "bench").quantize(gaussian_tile().data(), it->second.data(), tile_values);
    }
    return it->second;
}

// ------------------------------------------------------------------------------------------- large arrays

/// The large arrays, allocated once: what they hold is remembered so that the trial runs Google Benchmark
/// makes of one benchmark do not refill them.
class arena {
public:
    static arena& get() {
        static arena a;
        return a;
    }
    [[nodiscard]] std::size_t float_count() const noexcept { return float_count_; }
    [[nodiscard]] std::size_t byte_count() const noexcept { return byte_count_; }
    float* floats() { return floats_.get(); }
    std::byte* bytes() { return bytes_.get(); }

    /// The float array filled with the Gaussian tile, repeated.
    const float* gaussian() {
        if (floats_hold_ != holds::gaussian) {
            for (std::size_t i = 0; i < float_count_; i += tile_values)
                std::memcpy(floats_.get() + i, gaussian_tile().data(), tile_values * sizeof(float));
            floats_hold_ = holds::gaussian;
        }
        return floats_.get();
    }
    /// The byte array filled with the tile's blocks of `type`, repeated as far as they fit.
    const std::byte* blocks(ggml_type type) {
        if (bytes_hold_ != holds::blocks || bytes_type_ != type) {
            const auto& tile = tile_blocks(type);
            for (std::size_t at = 0; at + tile.size() <= byte_count_; at += tile.size())
                std::memcpy(bytes_.get() + at, tile.data(), tile.size());
            bytes_hold_ = holds::blocks;
            bytes_type_ = type;
        }
        return bytes_.get();
    }
    /// Called before a benchmark writes over one of the arrays.
    void floats_overwritten() noexcept { floats_hold_ = holds::other; }
    void bytes_overwritten() noexcept { bytes_hold_ = holds::other; }

private:
    enum class holds { other, gaussian, blocks };
    std::size_t float_count_, byte_count_;
    std::unique_ptr<float[]> floats_;
    std::unique_ptr<std::byte[]> bytes_;
    holds floats_hold_ = holds::other, bytes_hold_ = holds::other;
    ggml_type bytes_type_ = ggml_type::f32;

    // Room for the largest user: a GEMV matrix of stream_bytes() rounded up to whole tiles (rows repeat
    // per tile), or q8_0 blocks of the whole float array.
    arena()
            : float_count_(std::max(tile_values, stream_bytes() / sizeof(float) / tile_values * tile_values)),
              byte_count_(stream_bytes() + 2 * cogqat::storage_size(ggml_type::q8_0, tile_values)),
              floats_(new float[float_count_]),
              bytes_(new std::byte[byte_count_]) {
        // Touched now, so that no benchmark times the page faults of first use.
        std::memset(floats_.get(), 0, float_count_ * sizeof(float));
        std::memset(bytes_.get(), 0, byte_count_);
    }
};

// ------------------------------------------------------------------------------------------------ timing

using cogqat::bench::median;
using cogqat::bench::steady;
using cogqat::bench::time_calls;

/// What one call moves and computes, for the counters.
struct work {
    double bytes = 0;      ///< read + written
    double flops = 0;      ///< 2 per multiply-add of a dot product; 0 where there is none
    double bandwidth = 0;  ///< bytes/s of the matching probe for a bandwidth-bound benchmark, else 0
};

/// Times `ours` (and, when `with_ggml`, `theirs` alternately with it) and sets every counter.
template <class Ours, class Theirs>
void run_twins(benchmark::State& state, const work& w, Ours ours, Theirs theirs, bool with_ggml) {
    // The warm-up call of ours also sizes the batch: a cold first call only makes the batch smaller, and a
    // separate calibration call would cost seconds per benchmark where ours is the scalar reference.
    const double one = std::max(time_calls(ours, 1), 1e-9);
    if (with_ggml) theirs();
    const auto calls = static_cast<std::size_t>(std::clamp(std::ceil(batch_seconds / one), 1.0, 1e6));

    std::vector<double> ratios;
    double ours_total = 0.0, ggml_total = 0.0;
    std::size_t iteration = 0;
    for (auto _ : state) {
        const bool ggml_first = with_ggml && (iteration++ % 2 == 1);
        double t_ggml = ggml_first ? time_calls(theirs, calls) : 0.0;
        const double t_ours = time_calls(ours, calls);
        if (with_ggml && !ggml_first) t_ggml = time_calls(theirs, calls);
        state.SetIterationTime(t_ours);
        ours_total += t_ours;
        if (with_ggml) {
            ggml_total += t_ggml;
            ratios.push_back(t_ggml / t_ours);
        }
    }
    const double total_calls = static_cast<double>(state.iterations()) * static_cast<double>(calls);
    state.SetBytesProcessed(static_cast<std::int64_t>(total_calls * w.bytes));
    state.counters["calls"] = static_cast<double>(calls);
    if (w.flops > 0) state.counters["GFLOP/s"] = total_calls * w.flops / ours_total * 1e-9;
    if (w.bandwidth > 0) {
        state.counters["of_bandwidth"] = total_calls * w.bytes / ours_total / w.bandwidth;
        state.counters["bandwidth"] = w.bandwidth;
    }
    if (with_ggml && ggml_total > 0) {
        state.counters["vs_ggml"] = median(ratios);
        state.counters["ggml_bytes_per_second"] = total_calls * w.bytes / ggml_total;
        if (w.flops > 0) state.counters["ggml_GFLOP/s"] = total_calls * w.flops / ggml_total * 1e-9;
    }
}

std::string label(bool simd_kernel, bool with_ggml) {
    std::string s = "ours:" + std::string(simd_kernel ? dispatch::active().isa : std::string_view("reference"));
    if (with_ggml) s += " ggml:" + ggml().variant();
    return s;
}

std::map<std::string, std::string>& check_results() {
    static std::map<std::string, std::string> results;
    return results;
}

/// One check per benchmark and type, done on its first run: empty when the twins agree, else the error.
template <class Check>
const std::string& checked(const std::string& key, Check check) {
    auto [it, fresh] = check_results().try_emplace(key);
    if (fresh) it->second = check();
    return it->second;
}

std::string first_byte_difference(std::span<const std::byte> ours, std::span<const std::byte> theirs, std::size_t type_size) {
    const auto [a, b] = std::mismatch(ours.begin(), ours.end(), theirs.begin(), theirs.end());
    if (a == ours.end() && b == theirs.end()) return {};
    const auto at = static_cast<std::size_t>(a - ours.begin());
    return "bytes differ from ggml's, first at byte " + std::to_string(at) + " (block " + std::to_string(at / type_size) + ")";
}

// ----------------------------------------------------------------------------------------- memory probe

using cogqat::bench::stream_kind;

/// One probe pass over the large arrays (bandwidth_probe.hpp): a read of the byte array, or a copy of it
/// into the float array.
std::uint64_t stream_pass(stream_kind kind, unsigned threads) {
    arena& a = arena::get();
    const std::size_t bytes = a.float_count() * sizeof(float);
    const std::uint64_t sum = cogqat::bench::stream_pass(kind, a.bytes(), reinterpret_cast<std::byte*>(a.floats()), bytes, threads);
    if (kind == stream_kind::copy) a.floats_overwritten();
    return sum;
}

double stream_pass_bytes(stream_kind kind) { return cogqat::bench::stream_pass_bytes(kind, arena::get().float_count() * sizeof(float)); }

/// The best of `passes` passes, in bytes/s.
double probe_bandwidth(stream_kind kind, unsigned threads, int passes) {
    arena& a = arena::get();
    const double best = cogqat::bench::probe_bandwidth(kind, a.bytes(), reinterpret_cast<std::byte*>(a.floats()),
                                                       a.float_count() * sizeof(float), threads, passes);
    if (kind == stream_kind::copy) a.floats_overwritten();
    return best;
}

/// The shared probe's adjacent_bandwidth on this program's arrays. A copy probe overwrites the float array,
/// so callers take it before they fill that array.
double adjacent_bandwidth(stream_kind kind, unsigned threads) { return probe_bandwidth(kind, threads, 3); }

void bench_bandwidth(benchmark::State& state, stream_kind kind, unsigned threads) {
    benchmark::DoNotOptimize(stream_pass(kind, threads));
    const double ceiling = probe_bandwidth(kind, threads, 5);
    for (auto _ : state) benchmark::DoNotOptimize(stream_pass(kind, threads));
    state.SetBytesProcessed(static_cast<std::int64_t>(static_cast<double>(state.iterations()) * stream_pass_bytes(kind)));
    state.counters["best_bytes_per_second"] = ceiling;
    state.counters["threads"] = threads;
}

// ------------------------------------------------------------------------------------------- benchmarks

void bench_quantize(benchmark::State& state, ggml_type type) {
    const auto& g = ggml();
    const float* x = gaussian_tile().data();
    const std::size_t bytes = cogqat::storage_size(type, quantize_values);
    std::vector<std::byte> ours_out(bytes), ggml_out(bytes);
    const auto kernel = dispatch::active()[type].quantize;
    const auto quantize = kernel ? kernel : cogqat::detail::codec_for(type, "bench").quantize;
    const bool with_ggml = g.available();
    if (with_ggml) {
        const std::string& error = checked("quantize/" + type_name(type), [&] {
            quantize(x, ours_out.data(), quantize_values);
            const std::size_t written = g.quantize_chunk(type, x, ggml_out.data(), quantize_values / row_values, row_values);
            if (written != bytes)
                return "ggml_quantize_chunk wrote " + std::to_string(written) + " bytes, expected " + std::to_string(bytes);
            return first_byte_difference(ours_out, ggml_out, cogqat::info(type).type_size);
        });
        if (!error.empty()) return state.SkipWithError(("quantize " + type_name(type) + ": " + error).c_str());
    }
    state.SetLabel(label(kernel != nullptr, with_ggml));
    run_twins(
            state, {static_cast<double>(quantize_values * sizeof(float) + bytes), 0, 0},
            [&] {
                quantize(x, ours_out.data(), quantize_values);
                benchmark::ClobberMemory();
            },
            [&] {
                benchmark::DoNotOptimize(g.quantize_chunk(type, x, ggml_out.data(), quantize_values / row_values, row_values));
                benchmark::ClobberMemory();
            },
            with_ggml);
}

/// Runs `row(first, count)` over the n values of a large array cut into whole blocks, on `threads` threads:
/// how both twins of a bandwidth-bound benchmark use all cores.
template <class Row>
void over_blocks(std::size_t n, std::size_t block, unsigned threads, Row&& row) {
    cogqat::parallel_for(n / block, threads, [&](std::size_t begin, std::size_t end) { row(begin * block, (end - begin) * block); });
}

void bench_dequantize(benchmark::State& state, ggml_type type, unsigned threads) {
    const auto& g = ggml();
    arena& a = arena::get();
    const std::size_t n = a.float_count();
    const auto kernel = dispatch::active()[type].dequantize;
    const auto dequantize = kernel ? kernel : cogqat::detail::codec_for(type, "bench").dequantize;
    const bool with_ggml = g.available() && g.has_to_float(type);
    if (with_ggml) {
        const std::string& error = checked("dequantize/" + type_name(type), [&] {
            const auto& tile = tile_blocks(type);
            std::vector<float> ours_y(tile_values), ggml_y(tile_values);
            dequantize(tile.data(), ours_y.data(), tile_values);
            g.to_float(type, tile.data(), ggml_y.data(), tile_values);
            const auto [p, q] = std::mismatch(ours_y.begin(), ours_y.end(), ggml_y.begin());
            if (p == ours_y.end()) return std::string();
            return "value " + std::to_string(p - ours_y.begin()) + " is " + std::to_string(*p) + ", ggml's to_float gives " +
                   std::to_string(*q);
        });
        if (!error.empty()) return state.SkipWithError(("dequantize " + type_name(type) + ": " + error).c_str());
    }
    const double ceiling = adjacent_bandwidth(stream_kind::copy, threads);
    const std::byte* blocks = a.blocks(type);
    float* y = a.floats();
    a.floats_overwritten();
    state.SetLabel(label(kernel != nullptr, with_ggml));
    const std::size_t block = cogqat::info(type).block_size, type_size = cogqat::info(type).type_size;
    run_twins(
            state, {static_cast<double>(cogqat::storage_size(type, n) + n * sizeof(float)), 0, ceiling},
            [&] {
                over_blocks(n, block, threads, [&](std::size_t first, std::size_t count) {
                    dequantize(blocks + first / block * type_size, y + first, count);
                });
                benchmark::ClobberMemory();
            },
            [&] {
                over_blocks(n, block, threads, [&](std::size_t first, std::size_t count) {
                    g.to_float(type, blocks + first / block * type_size, y + first, count);
                });
                benchmark::ClobberMemory();
            },
            with_ggml);
    state.counters["threads"] = threads;
}

/// Our activation quantizer for q8_0/q8_1/q8_K: the table's kernel, else the scalar one without the
/// API's argument checks (which would read the input a second time).
using row_fn = void (*)(const float*, std::byte*, std::size_t);
row_fn reference_activation_quantizer(ggml_type type) {
    switch (type) {
        case ggml_type::q8_0:
            return [](const float* x, std::byte* out, std::size_t n) {
                for (std::size_t b = 0; b < n / 32; ++b) cogqat::detail::quantize_activation_block_q8(x + 32 * b, out + 34 * b, false);
            };
        case ggml_type::q8_1:
            return [](const float* x, std::byte* out, std::size_t n) {
                for (std::size_t b = 0; b < n / 32; ++b) cogqat::detail::quantize_activation_block_q8(x + 32 * b, out + 36 * b, true);
            };
        default:
            return cogqat::detail::codec_for(type, "bench").quantize;
    }
}

void bench_quantize_activations(benchmark::State& state, ggml_type type, unsigned threads) {
    const auto& g = ggml();
    arena& a = arena::get();
    const std::size_t n = a.float_count();
    const auto kernel = dispatch::active()[type].quantize_activations;
    const row_fn quantize = kernel ? kernel : reference_activation_quantizer(type);
    const bool with_ggml = g.available() && g.has_from_float(type);
    if (with_ggml) {
        const std::string& error = checked("quantize_act/" + type_name(type), [&] {
            std::vector<std::byte> ours_out(cogqat::storage_size(type, tile_values)), ggml_out(ours_out.size());
            quantize(gaussian_tile().data(), ours_out.data(), tile_values);
            g.from_float(type, gaussian_tile().data(), ggml_out.data(), tile_values);
            return first_byte_difference(ours_out, ggml_out, cogqat::info(type).type_size);
        });
        if (!error.empty()) return state.SkipWithError(("quantize activations " + type_name(type) + ": " + error).c_str());
    }
    const double ceiling = adjacent_bandwidth(stream_kind::copy, threads);
    const float* x = a.gaussian();
    std::byte* out = a.bytes();
    a.bytes_overwritten();
    state.SetLabel(label(kernel != nullptr, with_ggml));
    const std::size_t block = cogqat::info(type).block_size, type_size = cogqat::info(type).type_size;
    run_twins(
            state, {static_cast<double>(n * sizeof(float) + cogqat::storage_size(type, n)), 0, ceiling},
            [&] {
                over_blocks(n, block, threads,
                            [&](std::size_t first, std::size_t count) { quantize(x + first, out + first / block * type_size, count); });
                benchmark::ClobberMemory();
            },
            [&] {
                over_blocks(n, block, threads, [&](std::size_t first, std::size_t count) {
                    g.from_float(type, x + first, out + first / block * type_size, count);
                });
                benchmark::ClobberMemory();
            },
            with_ggml);
    state.counters["threads"] = threads;
}

/// Whether ggml's vec_dot for `type` takes the activations we quantize for it; empty when it does.
std::string activation_type_mismatch(ggml_type type) {
    const auto& g = ggml();
    if (!g.has_vec_dot(type)) return "ggml has no CPU vec_dot for " + type_name(type);
    const std::uint32_t theirs = g.vec_dot_type(type), ours = static_cast<std::uint32_t>(cogqat::activation_type_for(type));
    if (theirs == ours) return {};
    const auto t = cogqat::find_type(theirs);
    return "ggml's vec_dot for " + type_name(type) + " takes " + (t ? std::string(t->name) : "type " + std::to_string(theirs)) +
           " activations, ours " + type_name(cogqat::activation_type_for(type));
}

/// Σ|w_i·x_i| over a row: the scale a dot product's rounding error is measured against.
double magnitude(ggml_type type, const std::byte* row, const float* x, std::size_t n) {
    std::vector<float> w(n);
    cogqat::detail::codec_for(type, "bench").dequantize(row, w.data(), n);
    double sum = 0.0;
    for (std::size_t i = 0; i < n; ++i) sum += std::fabs(static_cast<double>(w[i]) * x[i]);
    return sum;
}

constexpr double dot_tolerance = 1e-3;

void bench_dot(benchmark::State& state, ggml_type type) {
    const auto& g = ggml();
    const ggml_type act = cogqat::activation_type_for(type);
    const std::byte* w = tile_blocks(type).data();
    const float* x = gaussian_tile().data() + row_values;
    std::vector<std::byte> a(cogqat::storage_size(act, row_values));
    cogqat::quantize_activations(act, std::span(x, row_values), a);
    const auto kernel = dispatch::active()[type].dot_quantized;
    const auto reference = cogqat::quantized_dot_for(type);
    const std::span<const std::byte> w_span(w, cogqat::storage_size(type, row_values));
    auto dot = [&] { return kernel ? kernel(w, a.data(), row_values) : reference(w_span, a, row_values); };
    const bool with_ggml = g.available();
    if (with_ggml) {
        const std::string& error = checked("dot/" + type_name(type), [&]() -> std::string {
            if (auto e = activation_type_mismatch(type); !e.empty()) return e;
            const double ours = dot(), theirs = g.vec_dot(type, w, a.data(), row_values);
            const double bound = dot_tolerance * magnitude(type, w, x, row_values);
            if (std::fabs(ours - theirs) <= bound) return {};
            return "our dot product " + std::to_string(ours) + ", ggml's vec_dot " + std::to_string(theirs) + " (allowed difference " +
                   std::to_string(bound) + ")";
        });
        if (!error.empty()) return state.SkipWithError(("dot " + type_name(type) + ": " + error).c_str());
    }
    state.SetLabel(label(kernel != nullptr, with_ggml));
    run_twins(
            state, {static_cast<double>(w_span.size() + a.size()), 2.0 * row_values, 0}, [&] { benchmark::DoNotOptimize(dot()); },
            [&] { benchmark::DoNotOptimize(g.vec_dot(type, w, a.data(), row_values)); }, with_ggml);
}

/// Rows of the memory-bound GEMV: a 4096-column matrix of at least stream_bytes(), in whole tiles (the
/// rows repeat every tile). At 4096 columns that is an output-embedding shape: 4096 x 200k-460k.
std::size_t gemv_rows(ggml_type type) {
    const std::size_t row_bytes = cogqat::storage_size(type, row_values), tile_rows = tile_values / row_values;
    const std::size_t rows = (stream_bytes() + row_bytes - 1) / row_bytes;
    return (rows + tile_rows - 1) / tile_rows * tile_rows;
}

/// `interleaved`: the same matrix as a simd::interleaved_matrix (q4_0, q8_0), rearranged before timing.
void bench_gemv(benchmark::State& state, ggml_type type, unsigned threads, bool interleaved) {
    const auto& g = ggml();
    arena& a = arena::get();
    const ggml_type act = cogqat::activation_type_for(type);
    const std::size_t rows = gemv_rows(type), cols = row_values, row_bytes = cogqat::storage_size(type, cols);
    const std::byte* weights = a.blocks(type);
    const std::span<const std::byte> matrix(weights, rows * row_bytes);
    const std::span<const float> x(gaussian_tile().data() + row_values, cols);
    std::vector<float> y(rows), y_ggml(rows);
    std::vector<std::byte> x_ggml(cogqat::storage_size(act, cols));
    const std::unique_ptr<simd::interleaved_matrix> rearranged =
            interleaved ? std::make_unique<simd::interleaved_matrix>(type, matrix, rows, cols) : nullptr;
    auto ours = [&] {
        if (rearranged)
            simd::gemm(*rearranged, x, 1, y, threads);
        else
            simd::gemv(type, matrix, rows, cols, x, y, threads);
        benchmark::ClobberMemory();
    };
    // ggml's vec_dot per row with the partition gemv uses (contiguous ranges, at least 64 rows each), after
    // the activations are quantized once as ggml's mul_mat does.
    auto theirs = [&] {
        g.from_float(act, x.data(), x_ggml.data(), cols);
        cogqat::parallel_for(
                rows, threads,
                [&](std::size_t begin, std::size_t end) {
                    for (std::size_t r = begin; r < end; ++r) y_ggml[r] = g.vec_dot(type, weights + r * row_bytes, x_ggml.data(), cols);
                },
                64);
        benchmark::ClobberMemory();
    };
    const bool with_ggml = g.available() && g.has_from_float(act);
    if (with_ggml) {
        const std::string& error = checked((interleaved ? "gemv_interleaved/" : "gemv/") + type_name(type), [&]() -> std::string {
            if (auto e = activation_type_mismatch(type); !e.empty()) return e;
            ours();
            theirs();
            for (std::size_t r = 0; r < tile_values / row_values; ++r) {
                const double bound = dot_tolerance * magnitude(type, weights + r * row_bytes, x.data(), cols);
                if (std::fabs(static_cast<double>(y[r]) - y_ggml[r]) > bound)
                    return "row " + std::to_string(r) + ": ours " + std::to_string(y[r]) + ", ggml " + std::to_string(y_ggml[r]) +
                           " (allowed difference " + std::to_string(bound) + ")";
            }
            return {};
        });
        if (!error.empty()) return state.SkipWithError(("gemv " + type_name(type) + ": " + error).c_str());
    }
    state.SetLabel(
            label(interleaved ? dispatch::active()[type].dot_interleaved != nullptr : dispatch::active()[type].dot_quantized != nullptr,
                  with_ggml));
    const double bytes = static_cast<double>(matrix.size() + (cols + rows) * sizeof(float));
    run_twins(state, {bytes, 2.0 * static_cast<double>(rows * cols), adjacent_bandwidth(stream_kind::read, threads)}, ours, theirs,
              with_ggml);
    state.counters["threads"] = threads;
}

void register_all() {
    std::vector<unsigned> thread_counts{1};
    if (hardware_threads() > 1) thread_counts.push_back(hardware_threads());
    for (unsigned t : thread_counts) {
        const std::string suffix = "/t" + std::to_string(t);
        benchmark::RegisterBenchmark(("bandwidth/read" + suffix).c_str(), bench_bandwidth, stream_kind::read, t)
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("bandwidth/copy" + suffix).c_str(), bench_bandwidth, stream_kind::copy, t)
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
    }
    for (auto t : weight_types)
        benchmark::RegisterBenchmark(("quantize/" + type_name(t)).c_str(), bench_quantize, t)
                ->UseManualTime()
                ->Unit(benchmark::kMicrosecond);
    for (unsigned threads : thread_counts) {
        const std::string suffix = "/t" + std::to_string(threads);
        for (auto t : weight_types)
            benchmark::RegisterBenchmark(("dequantize/" + type_name(t) + suffix).c_str(), bench_dequantize, t, threads)
                    ->UseManualTime()
                    ->Unit(benchmark::kMillisecond);
        for (auto t : table_types)
            benchmark::RegisterBenchmark(("dequantize/" + type_name(t) + suffix).c_str(), bench_dequantize, t, threads)
                    ->UseManualTime()
                    ->Unit(benchmark::kMillisecond);
        for (auto t : activation_types)
            benchmark::RegisterBenchmark(("quantize_act/" + type_name(t) + suffix).c_str(), bench_quantize_activations, t, threads)
                    ->UseManualTime()
                    ->Unit(benchmark::kMillisecond);
    }
    for (auto t : weight_types)
        benchmark::RegisterBenchmark(("dot/" + type_name(t)).c_str(), bench_dot, t)->UseManualTime()->Unit(benchmark::kMicrosecond);
    for (auto t : table_types)
        benchmark::RegisterBenchmark(("dot/" + type_name(t)).c_str(), bench_dot, t)->UseManualTime()->Unit(benchmark::kMicrosecond);
    for (unsigned threads : thread_counts)
        for (auto t : weight_types)
            benchmark::RegisterBenchmark(("gemv/" + type_name(t) + "/t" + std::to_string(threads)).c_str(), bench_gemv, t, threads, false)
                    ->UseManualTime()
                    ->Unit(benchmark::kMillisecond);
    for (unsigned threads : thread_counts)
        for (auto t : weight_types)
            if (simd::interleaved_layout_for(t))
                benchmark::RegisterBenchmark(("gemv_interleaved/" + type_name(t) + "/t" + std::to_string(threads)).c_str(), bench_gemv, t,
                                             threads, true)
                        ->UseManualTime()
                        ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    const auto& g = ggml();
    // On stderr: stdout may be the JSON report.
    if (g.available())
        std::cerr << "ggml baseline: libggml-cpu-" << g.variant() << ".so, ggml " << g.version() << ", from " << g.folder().string()
                  << "\n";
    else
        std::cerr << "ggml baseline absent (" << g.reason() << "): timing our kernels alone, without vs_ggml\n";
    benchmark::AddCustomContext("cogqat_simd_isa", std::string(dispatch::active().isa));
    benchmark::AddCustomContext("ggml_cpu_variant", g.available() ? g.variant() : "absent: " + g.reason());
    benchmark::AddCustomContext("ggml_version", g.version());
    benchmark::AddCustomContext("stream_bytes", std::to_string(stream_bytes()));
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
