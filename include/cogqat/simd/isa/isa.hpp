#pragma once
// Instruction-set tags of the SIMD kernels. A tag names an xsimd architecture plus the extensions xsimd 8.1
// has no architecture for (AVX-512 VNNI). Kernels are templates on the tag, so each instruction set's
// instantiations are distinct symbols: two units built with different flags never share a kernel body.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <cstddef>
#include <string_view>

#include <xsimd/xsimd.hpp>

namespace cogqat::simd {

/// An instruction set: `Arch` is the xsimd architecture of full-width batches; `Vnni` says the AVX-512
/// VNNI dot-product instructions may be used.
template <class Arch, bool Vnni = false>
struct isa {
    using arch = Arch;
    static constexpr bool vnni = Vnni;
};

#if XSIMD_WITH_SSE4_2
using isa_sse4_2 = isa<xsimd::sse4_2>;
#endif
#if XSIMD_WITH_AVX2 && XSIMD_WITH_FMA3_AVX2
using isa_avx2 = isa<xsimd::fma3<xsimd::avx2>>;
#endif
#if XSIMD_WITH_AVX512BW
using isa_avx512 = isa<xsimd::avx512bw>;
#if defined(__AVX512VNNI__)
using isa_avx512_vnni = isa<xsimd::avx512bw, true>;
#endif
#endif
#if XSIMD_WITH_NEON64
using isa_neon = isa<xsimd::neon64>;
#endif

/// Name and rank of a tag, as dispatch::kernel_table records them.
template <class Isa>
struct isa_traits;

#if XSIMD_WITH_SSE4_2
template <>
struct isa_traits<isa<xsimd::sse4_2>> {
    static constexpr std::string_view name = "sse4.2";
    static constexpr int priority = 10;
};
#endif
#if XSIMD_WITH_AVX2 && XSIMD_WITH_FMA3_AVX2
template <>
struct isa_traits<isa<xsimd::fma3<xsimd::avx2>>> {
    static constexpr std::string_view name = "avx2";
    static constexpr int priority = 20;
};
#endif
#if XSIMD_WITH_AVX512BW
template <>
struct isa_traits<isa<xsimd::avx512bw>> {
    static constexpr std::string_view name = "avx512";
    static constexpr int priority = 30;
};
template <>
struct isa_traits<isa<xsimd::avx512bw, true>> {
    static constexpr std::string_view name = "avx512_vnni";
    static constexpr int priority = 40;
};
#endif
#if XSIMD_WITH_NEON64
template <>
struct isa_traits<isa<xsimd::neon64>> {
    static constexpr std::string_view name = "neon";
    static constexpr int priority = 10;
};
#endif

/// Full-width batches of an instruction set.
template <class T, class Isa>
using batch = xsimd::batch<T, typename Isa::arch>;

/// 16-byte batches on the same machine: for the layouts whose planes are 16 bytes wide (q4_0's nibbles).
#if XSIMD_WITH_SSE4_2
using narrow_arch = xsimd::sse4_2;
#elif XSIMD_WITH_NEON64
using narrow_arch = xsimd::neon64;
#elif XSIMD_WITH_NEON
using narrow_arch = xsimd::neon;
#else
using narrow_arch = xsimd::default_arch;
#endif

/// Bytes in a full-width register of the tag.
template <class Isa>
inline constexpr std::size_t register_bytes = xsimd::batch<std::uint8_t, typename Isa::arch>::size;

/// Rows of the tiled kernels' register tiles (rank_update.hpp, float_gemm.hpp, second_moments.hpp).
inline constexpr std::size_t tile_rows = 4;

/// Registers per row of a 4-row tile of accumulators that still leaves room for the row's operand segment and a
/// broadcast: 4 x 4 of AVX-512's 32 registers, 4 x 3 of AVX2's 16 (no spill); SSE's two-operand forms need
/// spares, so 4 x 2. The tiled kernels' shape (rank_update.hpp, float_gemm.hpp).
template <class Isa>
inline constexpr std::size_t tile_registers_per_row = register_bytes<Isa> >= 64   ? 4
                                                      : register_bytes<Isa> == 32 ? 3
                                                                                  : 2;

/// The instruction set of this unit's own flags: what a user who builds with -march=native alone gets.
#if XSIMD_WITH_AVX512BW && defined(__AVX512VNNI__)
using native_isa = isa<xsimd::avx512bw, true>;
#elif XSIMD_WITH_AVX512BW
using native_isa = isa<xsimd::avx512bw>;
#elif XSIMD_WITH_AVX2 && XSIMD_WITH_FMA3_AVX2
using native_isa = isa<xsimd::fma3<xsimd::avx2>>;
#elif XSIMD_WITH_SSE4_2
using native_isa = isa<xsimd::sse4_2>;
#elif XSIMD_WITH_NEON64
using native_isa = isa<xsimd::neon64>;
#endif

}  // namespace cogqat::simd
