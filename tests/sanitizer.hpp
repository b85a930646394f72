#pragma once
// COGQAT_TEST_ADDRESS_SANITIZER: 1 when the tests are built with AddressSanitizer (GCC defines
// __SANITIZE_ADDRESS__, Clang has a feature test), else 0. The sanitized pass checks memory, not arithmetic
// the Release pass already checks, so a test may run a smaller workload there to keep CI within its time.

#if defined(__SANITIZE_ADDRESS__)
#define COGQAT_TEST_ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COGQAT_TEST_ADDRESS_SANITIZER 1
#endif
#endif
#ifndef COGQAT_TEST_ADDRESS_SANITIZER
#define COGQAT_TEST_ADDRESS_SANITIZER 0
#endif
