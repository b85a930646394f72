#pragma once
// What the per-ISA units contain: the kernels instantiated for one instruction set, reached from outside only
// through a function that builds that set's table. cmake/cogqatSimd.cmake writes these units (compiled with
// the set's flags) and one more, compiled without them, that registers every set at start-up:
//
//   #include <cogqat/simd/isa/register.hpp>
//   COGQAT_SIMD_DEFINE_KERNELS(isa_avx2, cogqat_simd_kernels_avx2)
//
// A program compiled entirely with -march=native (every unit with the same flags) may instead register the
// set of its flags in one of its units:
//
//   #include <cogqat/simd/isa/register.hpp>
//   COGQAT_SIMD_REGISTER(native_isa)
//
// Include only in a unit compiled for the tag's instruction set, before anything that includes the x86
// intrinsics headers: this header instantiates every kernel.

// GCC 12 reports the deliberately undefined registers of its own AVX-512 intrinsics (_mm512_undefined_*) as
// (maybe-)uninitialized wherever the kernels inline them (GCC bug 105593): 615 warnings under -Wall -Wextra
// with -march=native. The warnings are located in the intrinsics headers, so they are off for the headers
// first included here and back on for the including unit's own code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/simd/isa/isa.hpp"
#include "cogqat/simd/isa/kernels.hpp"

namespace cogqat::simd {

/// The tag's name and rank are the ones the registry gives the name (dispatch::isa_priority).
template <class Isa>
inline constexpr bool registrable = isa_traits<Isa>::priority == dispatch::isa_priority(isa_traits<Isa>::name);

}  // namespace cogqat::simd

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// Defines `const cogqat::dispatch::kernel_table& function()` (global namespace, external linkage) returning
/// the tag's table. A function rather than a registration because building the table runs code compiled
/// for the set: the registry calls it only on a CPU that runs the set.
#define COGQAT_SIMD_DEFINE_KERNELS(tag, function)                                                                      \
    static_assert(::cogqat::simd::registrable<::cogqat::simd::tag>, "isa_traits and dispatch::isa_priority disagree"); \
    const ::cogqat::dispatch::kernel_table& function();                                                                \
    const ::cogqat::dispatch::kernel_table& function() { return ::cogqat::simd::kernel_table_of<::cogqat::simd::tag>(); }

/// Registers the tag's table before main runs, built at once: only for a unit compiled with the flags the
/// whole program is compiled with (otherwise use cogqat_add_simd_kernels()). The registration is a
/// namespace-scope object with a dynamic initializer, hence a macro; the tag names one of simd/isa/isa.hpp's
/// aliases.
#define COGQAT_SIMD_REGISTER(tag)                                                                                 \
    namespace {                                                                                                   \
    [[maybe_unused]] const bool cogqat_simd_registered_##tag =                                                    \
            (::cogqat::dispatch::register_kernels(::cogqat::simd::kernel_table_of<::cogqat::simd::tag>()), true); \
    }
