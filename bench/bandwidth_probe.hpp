#pragma once
// The memory probe the bandwidth-bound benchmarks divide by (their `of_bandwidth` counter): a streaming read,
// or a copy, of large arrays on N threads, with the stores our kernels make. Shared by cogqat_bench_simd and
// cogqat_bench_policy so that both programs' ratios mean the same thing.

#include <cogqat/core/parallel.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace cogqat::bench {

enum class stream_kind { read, copy };

/// The size of the probe's arrays: 256 MiB by default, well past the last-level cache (the read bandwidth
/// stops falling between 64 and 128 MiB on the machines measured); COGQAT_BENCH_STREAM_MB overrides it.
inline std::size_t stream_bytes() {
    static const std::size_t bytes = [] {
        std::size_t mb = 256;
        if (const char* env = std::getenv("COGQAT_BENCH_STREAM_MB"); env && *env)
            mb = std::max<std::size_t>(8, std::strtoull(env, nullptr, 10));
        return mb << 20;
    }();
    return bytes;
}

/// One pass over `bytes` bytes on `threads` threads: a read of `src`, or a copy of it into `dst` (stored with
/// ordinary stores, as our kernels store: each written line is read for ownership). Words go through memcpy,
/// which compiles to plain 8-byte loads and stores and keeps the arrays' types.
inline std::uint64_t stream_pass(stream_kind kind, const std::byte* src, std::byte* dst, std::size_t bytes, unsigned threads) {
    const std::size_t words = bytes / sizeof(std::uint64_t);
    std::atomic<std::uint64_t> sum{0};
    cogqat::parallel_for(
            words, threads,
            [&](std::size_t begin, std::size_t end) {
                std::uint64_t s[4] = {0, 0, 0, 0};
                if (kind == stream_kind::read) {
                    std::size_t i = begin;
                    for (; i + 4 <= end; i += 4)
                        for (std::size_t k = 0; k < 4; ++k) {
                            std::uint64_t v;
                            std::memcpy(&v, src + 8 * (i + k), 8);
                            s[k] += v;
                        }
                    for (; i < end; ++i) {
                        std::uint64_t v;
                        std::memcpy(&v, src + 8 * i, 8);
                        s[0] += v;
                    }
                } else {
                    for (std::size_t i = begin; i < end; ++i) {
                        std::uint64_t v;
                        std::memcpy(&v, src + 8 * i, 8);
                        v ^= 0x9e3779b97f4a7c15ull;  // not a plain copy, so it does not become memcpy (non-temporal stores)
                        std::memcpy(dst + 8 * i, &v, 8);
                    }
                }
                sum += s[0] + s[1] + s[2] + s[3];
            },
            words / std::max(threads, 1u));
    return sum.load();
}

/// Bytes one pass moves: read once, or read and written.
[[nodiscard]] inline double stream_pass_bytes(stream_kind kind, std::size_t bytes) {
    return kind == stream_kind::read ? static_cast<double>(bytes) : 2.0 * static_cast<double>(bytes);
}

/// The best of `passes` passes, in bytes/s.
inline double probe_bandwidth(stream_kind kind, const std::byte* src, std::byte* dst, std::size_t bytes, unsigned threads, int passes) {
    using steady = std::chrono::steady_clock;
    double best = 1e30;
    for (int pass = 0; pass < passes; ++pass) {
        const auto start = steady::now();
        benchmark::DoNotOptimize(stream_pass(kind, src, dst, bytes, threads));
        best = std::min(best, std::chrono::duration<double>(steady::now() - start).count());
    }
    return stream_pass_bytes(kind, bytes) / best;
}

/// The ceiling of_bandwidth divides by, measured again by every bandwidth-bound benchmark just before it
/// runs: on a shared machine the bandwidth left to us changes from minute to minute, and a ceiling taken at
/// the start of the run would make later ratios say more about the neighbours than about the kernel.
inline double adjacent_bandwidth(stream_kind kind, const std::byte* src, std::byte* dst, std::size_t bytes, unsigned threads) {
    return probe_bandwidth(kind, src, dst, bytes, threads, 3);
}

}  // namespace cogqat::bench
