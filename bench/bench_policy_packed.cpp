// Packing and unpacking N-bit codes (format/packed_codes.hpp): the public path on the active instruction set's
// kernels (Simd) against the scalar reference (Scalar), side by side in one benchmark function.
//
//   cogqat_bench_policy --benchmark_filter=packed
//
// Counters: bytes_per_second is the Simd side's bytes read + written (n code bytes and ceil(n N / 8) packed
// bytes per call); scalar_bytes_per_second the reference's; vs_scalar the median over iterations of the
// reference's batch time / the Simd side's (> 1: the kernels are faster); of_bandwidth the Simd side's bytes
// per second / a memcpy probe's over the same bytes, measured just before (large arrays only). Both sides
// include the fit check that packing does before it writes.

#include <cogqat/core/bit_packing.hpp>
#include <cogqat/dispatch/kernel_table.hpp>
#include <cogqat/format/packed_codes.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>
#include "timing.hpp"

namespace {

using cogqat::bench::median;
using cogqat::bench::steady;
using cogqat::bench::time_calls;

/// Bytes per second of memcpy over `bytes` bytes (counted read + write), best of three passes.
double copy_probe(std::size_t bytes) {
    std::vector<std::byte> a(bytes, std::byte{1}), b(bytes);
    double best = 0.0;
    for (int pass = 0; pass < 3; ++pass) {
        auto copy = [&] {
            std::memcpy(b.data(), a.data(), bytes);
            benchmark::DoNotOptimize(b.data());
        };
        const double t = time_calls(copy, 4);
        best = std::max(best, 8.0 * static_cast<double>(bytes) / t);
    }
    return best;
}

/// Times `simd` and `scalar` in alternating batches of the same number of calls (about 1 ms of the Simd side)
/// and sets the counters; the benchmark's time is the Simd side's.
template <class Simd, class Scalar>
void run_pair(benchmark::State& state, double bytes_per_call, Simd simd, Scalar scalar, double bandwidth) {
    const double one = std::max(time_calls(simd, 1), 1e-9);
    scalar();
    const auto calls = static_cast<std::size_t>(std::clamp(1e-3 / one, 1.0, 1e6));
    std::vector<double> ratios;
    double simd_total = 0.0, scalar_total = 0.0;
    std::size_t iteration = 0;
    for (auto _ : state) {
        const bool scalar_first = iteration++ % 2 == 1;
        double t_scalar = scalar_first ? time_calls(scalar, calls) : 0.0;
        const double t_simd = time_calls(simd, calls);
        if (!scalar_first) t_scalar = time_calls(scalar, calls);
        state.SetIterationTime(t_simd);
        simd_total += t_simd;
        scalar_total += t_scalar;
        ratios.push_back(t_scalar / t_simd);
    }
    const double total = static_cast<double>(state.iterations()) * static_cast<double>(calls) * bytes_per_call;
    state.SetBytesProcessed(static_cast<std::int64_t>(total));
    state.counters["calls"] = static_cast<double>(calls);
    state.counters["vs_scalar"] = median(ratios);
    state.counters["scalar_bytes_per_second"] = total / scalar_total;
    if (bandwidth > 0) {
        state.counters["of_bandwidth"] = total / simd_total / bandwidth;
        state.counters["bandwidth"] = bandwidth;
    }
    const bool kernel = static_cast<bool>(cogqat::dispatch::active().packing.pack[static_cast<std::size_t>(state.range(0))]);
    state.SetLabel("simd:" + std::string(kernel ? cogqat::dispatch::active().isa : std::string_view("reference")));
}

/// Arrays of at least this many codes (4 MiB of code bytes and up to 4 MiB packed) are past the core's L2;
/// of_bandwidth is reported for them.
constexpr std::size_t memory_bound_codes = std::size_t{1} << 22;

template <int Bits>
void bench_packed(benchmark::State& state, bool pack) {
    const auto n = static_cast<std::size_t>(state.range(1));
    std::mt19937 rng(7);
    std::vector<std::uint8_t> codes(n), back(n);
    for (auto& c : codes) c = static_cast<std::uint8_t>(rng() & ((1u << Bits) - 1u));
    cogqat::packed_codes<Bits> packed(codes);
    std::vector<std::byte> stream(packed.bytes().begin(), packed.bytes().end());
    // Same semantics on both sides: packing checks every code first.
    if (pack) {
        // Both sides must write the same bytes, or no ratio is worth reporting.
        auto view = packed.view();
        std::vector<std::byte> reference(stream.size());
        cogqat::reference::pack_codes(codes.data(), n, Bits, reference.data(), 0);
        if (!std::equal(reference.begin(), reference.end(), packed.bytes().begin()))
            return state.SkipWithError("pack differs from the reference");
        const double bytes = static_cast<double>(n + stream.size());
        run_pair(
                state, bytes,
                [&] {
                    view.pack_from(codes);
                    benchmark::DoNotOptimize(view.data());
                },
                [&] {
                    const std::size_t bad = cogqat::reference::first_code_above(codes.data(), n, packed.max_code);
                    benchmark::DoNotOptimize(bad);
                    cogqat::reference::pack_codes(codes.data(), n, Bits, stream.data(), 0);
                    benchmark::DoNotOptimize(stream.data());
                },
                n >= memory_bound_codes ? copy_probe((n + stream.size()) / 2) : 0.0);
    } else {
        packed.unpack_to(back);
        if (back != codes) return state.SkipWithError("unpack differs from the codes");
        const auto view = std::as_const(packed).view();
        const double bytes = static_cast<double>(n + stream.size());
        run_pair(
                state, bytes,
                [&] {
                    view.unpack_to(back);
                    benchmark::DoNotOptimize(back.data());
                },
                [&] {
                    cogqat::reference::unpack_codes(stream.data(), 0, n, Bits, back.data());
                    benchmark::DoNotOptimize(back.data());
                },
                n >= memory_bound_codes ? copy_probe((n + stream.size()) / 2) : 0.0);
    }
}

template <int Bits>
void register_width() {
    for (const bool pack : {true, false}) {
        const std::string name = std::string("packed/") + (pack ? "pack" : "unpack") + "/bits:" + std::to_string(Bits);
        benchmark::RegisterBenchmark(name.c_str(), [pack](benchmark::State& s) { bench_packed<Bits>(s, pack); })
                ->Args({Bits, 1 << 16})
                ->Args({Bits, 1 << 22})
                ->ArgNames({"bits", "codes"})
                ->UseManualTime()
                ->Iterations(40)  // the reference's side costs ~100 times the timed side: a fixed count bounds the run
                ->Unit(benchmark::kMicrosecond);
    }
}

template <int... Bits>
bool register_all(std::integer_sequence<int, Bits...>) {
    (register_width<Bits>(), ...);
    return true;
}

[[maybe_unused]] const bool registered = register_all(std::integer_sequence<int, 2, 3, 4, 5, 6, 7, 8>{});

}  // namespace
