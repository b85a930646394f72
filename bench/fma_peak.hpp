#pragma once
// The machine's measured float FMA peak on one thread, for the training benchmarks' "share of peak": twelve
// independent chains of fused multiply-adds on the widest registers the active SIMD table uses (AVX-512 or
// AVX2), enough chains to cover the FMA latency on both pipes, nothing loaded from memory. Each function is
// compiled for its instruction set alone (a target attribute), and only called where the CPU runs it.

#include <chrono>
#include <cstddef>
#include <string_view>

#include <cogqat/dispatch/kernel_table.hpp>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace cogqat::bench {

#if defined(__x86_64__) && defined(__GNUC__)
namespace detail {

inline constexpr int peak_chains = 12;

/// `rounds` rounds of peak_chains FMAs on 16-float registers; returns a value that depends on every one.
__attribute__((target("avx512f"))) inline float fma_rounds_avx512(std::size_t rounds) {
    __m512 acc[peak_chains];
    for (int c = 0; c < peak_chains; ++c) acc[c] = _mm512_set1_ps(0.001f * static_cast<float>(c));
    const __m512 m = _mm512_set1_ps(0.9999f), a = _mm512_set1_ps(1e-4f);
    for (std::size_t r = 0; r < rounds; ++r)
        for (int c = 0; c < peak_chains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], m, a);
    __m512 sum = acc[0];
    for (int c = 1; c < peak_chains; ++c) sum = _mm512_add_ps(sum, acc[c]);
    // Stored, not _mm512_reduce_add_ps: GCC 12 reports the undefined registers inside that intrinsic (bug 105593).
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, sum);
    float total = 0.0f;
    for (float v : lanes) total += v;
    return total;
}

/// The same on 8-float registers.
__attribute__((target("avx2,fma"))) inline float fma_rounds_avx2(std::size_t rounds) {
    __m256 acc[peak_chains];
    for (int c = 0; c < peak_chains; ++c) acc[c] = _mm256_set1_ps(0.001f * static_cast<float>(c));
    const __m256 m = _mm256_set1_ps(0.9999f), a = _mm256_set1_ps(1e-4f);
    for (std::size_t r = 0; r < rounds; ++r)
        for (int c = 0; c < peak_chains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], m, a);
    __m256 sum = acc[0];
    for (int c = 1; c < peak_chains; ++c) sum = _mm256_add_ps(sum, acc[c]);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, sum);
    float total = 0.0f;
    for (float v : lanes) total += v;
    return total;
}

}  // namespace detail
#endif

/// Float GFLOP/s (an FMA counted as two) of one thread on the active table's registers, the best of five
/// measurements of about 50 ms; 0 where the table has no FMA (SSE, the scalar reference) or off x86.
inline double fma_peak_gflops() {
#if defined(__x86_64__) && defined(__GNUC__)
    const std::string_view isa = dispatch::active().isa;
    const bool wide = isa.starts_with("avx512");
    if (!wide && isa != "avx2") return 0.0;
    const std::size_t rounds = 20'000'000, lanes = wide ? 16 : 8;
    volatile float sink = 0.0f;
    double best = 0.0;
    for (int trial = 0; trial < 5; ++trial) {
        const auto start = std::chrono::steady_clock::now();
        sink = sink + (wide ? detail::fma_rounds_avx512(rounds) : detail::fma_rounds_avx2(rounds));
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double flops = 2.0 * static_cast<double>(rounds * detail::peak_chains * lanes);
        if (seconds > 0 && flops / seconds / 1e9 > best) best = flops / seconds / 1e9;
    }
    return best;
#else
    return 0.0;
#endif
}

}  // namespace cogqat::bench
