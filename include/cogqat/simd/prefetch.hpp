#pragma once
// Software prefetch for the products that stream a matrix once per token (simd/gemv.hpp on rows,
// simd/isa/interleaved_dot.hpp on interleaved groups) or once per batch (simd::gemm). Needs no SIMD flags.

#include <cstddef>

namespace cogqat::simd {

/// How far ahead of the bytes being read the products ask for the next ones, into L2. From L3 or memory,
/// a single core's hardware prefetchers alone left it at about a third of a plain read (measured on the
/// 2-vCPU Xeon of docs/PERFORMANCE.md: 8 GB/s against 25 over 77 MB of q4_0; 11-15 GB/s with this distance,
/// 4 and 8 KB being slower, 32 and 64 KB no better).
inline constexpr std::size_t prefetch_bytes = 16384;

/// Asks for the cache lines `prefetch_bytes` past [p, p + size) to come into L2.
inline void prefetch_ahead(const std::byte* p, std::size_t size = 1) noexcept {
#if defined(__GNUC__)
    for (std::size_t at = 0; at < size; at += 64) __builtin_prefetch(p + at + prefetch_bytes, 0, 2);
#else
    (void)p, (void)size;
#endif
}

/// The products that pass a whole batch over one L2-sized block of a matrix before the next (simd::gemm)
/// read each block from memory during the block's first vector group only, which then waits on memory.
/// Group g of `groups` asks for its share of the `size` bytes of the next block instead, so the next
/// block arrives while this one is computed.
inline void prefetch_share(const std::byte* next, std::size_t size, std::size_t g, std::size_t groups) noexcept {
#if defined(__GNUC__)
    const std::size_t share = (size / groups + 64) / 64 * 64, begin = g * share;
    for (std::size_t at = begin; at < begin + share && at < size; at += 64) __builtin_prefetch(next + at, 0, 2);
#else
    (void)next, (void)size, (void)g, (void)groups;
#endif
}

}  // namespace cogqat::simd
