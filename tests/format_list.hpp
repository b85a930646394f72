#pragma once
// The block formats every typed test runs over.

#include <cogqat/format/k_formats.hpp>
#include <cogqat/format/legacy_formats.hpp>

#define COGQAT_VECTOR_FORMATS                                                                                                  \
    cogqat::formats::q8_0, cogqat::formats::q4_0, cogqat::formats::q4_1, cogqat::formats::q5_0, cogqat::formats::q5_1,         \
            cogqat::formats::q2_K, cogqat::formats::q3_K, cogqat::formats::q4_K, cogqat::formats::q5_K, cogqat::formats::q6_K, \
            cogqat::formats::q8_K

#define COGQAT_ALL_FORMATS COGQAT_VECTOR_FORMATS, cogqat::formats::q8_1
