// The replaceable global allocation functions ([new.delete]), all of them, so that every form reaches the
// same malloc and free: a sanitizer runtime replaces them too, and a program that replaced only some would
// mix its allocator with the sanitizer's. Only a failure differs from the standard library's behaviour: its
// size is remembered before std::bad_alloc is thrown.

#include "out_of_memory.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

namespace cogqat::cli {

namespace {

std::atomic<std::size_t> last_failure{0};

void* allocate(std::size_t bytes) {
    for (;;) {
        if (void* p = std::malloc(bytes ? bytes : 1)) return p;
        if (const auto handler = std::get_new_handler()) {
            handler();
            continue;
        }
        last_failure.store(bytes, std::memory_order_relaxed);
        throw std::bad_alloc();
    }
}

void* allocate_aligned(std::size_t bytes, std::align_val_t alignment) {
    const auto align = std::max(static_cast<std::size_t>(alignment), sizeof(void*));
    for (;;) {
        void* p = nullptr;
        if (::posix_memalign(&p, align, bytes ? bytes : 1) == 0) return p;
        if (const auto handler = std::get_new_handler()) {
            handler();
            continue;
        }
        last_failure.store(bytes, std::memory_order_relaxed);
        throw std::bad_alloc();
    }
}

}  // namespace

std::size_t failed_allocation_bytes() noexcept { return last_failure.load(std::memory_order_relaxed); }

}  // namespace cogqat::cli

using cogqat::cli::allocate;
using cogqat::cli::allocate_aligned;

void* operator new(std::size_t n) { return allocate(n); }
void* operator new[](std::size_t n) { return allocate(n); }
void* operator new(std::size_t n, std::align_val_t a) { return allocate_aligned(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return allocate_aligned(n, a); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return allocate(n);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return allocate(n);
    } catch (...) {
        return nullptr;
    }
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    try {
        return allocate_aligned(n, a);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    try {
        return allocate_aligned(n, a);
    } catch (...) {
        return nullptr;
    }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
