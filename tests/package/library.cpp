// A user's library that calls cogqat: built as an OBJECT library and archived into a STATIC and a SHARED one,
// each of which links the SIMD kernel library; the programs that use it link only the user's library.
#include "simd_check.hpp"

int consumer_library_check(const char* who);
int consumer_library_check(const char* who) { return check_simd_kernels(who); }
