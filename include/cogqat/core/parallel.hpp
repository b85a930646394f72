#pragma once
// Splitting work over threads. No global pool: each call starts at most `threads` workers over contiguous
// ranges and joins them, so the caller chooses the parallelism and nothing outlives the call.

#include <algorithm>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace cogqat {

/// A thread count: 0 means one per hardware thread.
[[nodiscard]] inline unsigned resolve_threads(unsigned requested) noexcept {
    if (requested != 0) return requested;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw ? hw : 1;
}

/// Calls body(begin, end) over a partition of [0, n) into at most `threads` contiguous ranges (of at
/// least `grain` items each), on separate threads. Rethrows the first exception a range raised.
template <class Body>
void parallel_for(std::size_t n, unsigned threads, Body&& body, std::size_t grain = 1) {
    if (n == 0) return;
    grain = std::max<std::size_t>(grain, 1);
    const std::size_t workers = std::min<std::size_t>(resolve_threads(threads), (n + grain - 1) / grain);
    if (workers <= 1) {
        body(std::size_t{0}, n);
        return;
    }
    std::exception_ptr failure;
    std::mutex failure_mutex;
    std::vector<std::thread> pool;
    pool.reserve(workers - 1);
    auto run = [&](std::size_t begin, std::size_t end) {
        try {
            body(begin, end);
        } catch (...) {
            std::lock_guard lock(failure_mutex);
            if (!failure) failure = std::current_exception();
        }
    };
    const std::size_t chunk = (n + workers - 1) / workers;
    for (std::size_t w = 1; w < workers; ++w) {
        const std::size_t begin = w * chunk, end = std::min(n, begin + chunk);
        if (begin < end) pool.emplace_back(run, begin, end);
    }
    run(0, std::min(n, chunk));
    for (auto& t : pool) t.join();
    if (failure) std::rethrow_exception(failure);
}

} // namespace cogqat
