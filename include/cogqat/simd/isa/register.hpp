#pragma once
// What one generated per-ISA unit contains (cmake/cogqatSimd.cmake writes it, compiled with that ISA's
// flags): the kernels instantiated for the ISA and a start-up registration of their table.
//
//   #include <cogqat/simd/isa/register.hpp>
//   COGQAT_SIMD_REGISTER(isa_avx2)
//
// A user who builds everything with -march=native alone can instead write COGQAT_SIMD_REGISTER(native_isa)
// in one of their units.
//
// Include only in a unit compiled for the tag's instruction set: this header instantiates every kernel.

#include "cogqat/simd/isa/kernels.hpp"

// A macro because the registration must be a namespace-scope object with a dynamic initializer in the
// unit that has the flags; the tag names one of simd/isa/isa.hpp's aliases.
#define COGQAT_SIMD_REGISTER(tag)                                                                                 \
    namespace {                                                                                                   \
    [[maybe_unused]] const bool cogqat_simd_registered_##tag =                                                    \
            (::cogqat::dispatch::register_kernels(::cogqat::simd::kernel_table_of<::cogqat::simd::tag>()), true); \
    }
