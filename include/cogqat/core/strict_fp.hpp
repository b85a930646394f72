#pragma once
// Reference algorithms must produce the same bits whatever flags the user compiles with. ggml's reference
// quantizers are plain IEEE binary32 arithmetic with no fused multiply-add, and GCC fuses `a*b + c` by default
// in GNU mode (-ffp-contract=fast), more so with -march=native. These markers switch contraction off for the
// code between them and restore the user's setting afterwards, so it never leaks into the including file.
//
// Limits: GCC honours this under any -ffp-contract; clang honours it under its default (-ffp-contract=on) but
// ignores pragmas under an explicit -ffp-contract=fast; -ffast-math changes rounding and is never supported
// for the reference paths. Macros are unavoidable here: pragmas cannot be produced by templates.

#if defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#define COGQAT_STRICT_FP_BEGIN _Pragma("float_control(push)") _Pragma("clang fp contract(off)")
#define COGQAT_STRICT_FP_END _Pragma("float_control(pop)")
#elif defined(__clang__)
// clang 14 has float_control(push/pop) on x86 only; elsewhere the region ends at clang's default, "on".
#define COGQAT_STRICT_FP_BEGIN _Pragma("clang fp contract(off)")
#define COGQAT_STRICT_FP_END _Pragma("clang fp contract(on)")
#elif defined(__GNUC__)
#define COGQAT_STRICT_FP_BEGIN _Pragma("GCC push_options") _Pragma("GCC optimize(\"fp-contract=off\")")
#define COGQAT_STRICT_FP_END _Pragma("GCC pop_options")
#elif defined(_MSC_VER)
#define COGQAT_STRICT_FP_BEGIN __pragma(fp_contract(off))
#define COGQAT_STRICT_FP_END __pragma(fp_contract(on))
#else
#define COGQAT_STRICT_FP_BEGIN
#define COGQAT_STRICT_FP_END
#endif
