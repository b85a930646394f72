#pragma once
// Splitting work over threads. No global pool: parallel_for starts at most `threads` workers over contiguous
// ranges and joins them, so the caller chooses the parallelism and nothing outlives the call; a thread_pool
// is the same split over workers its owner keeps, for many short loops in a row.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

namespace cogqat {

/// A thread count: 0 means one per hardware thread.
[[nodiscard]] inline unsigned resolve_threads(unsigned requested) noexcept {
    if (requested != 0) return requested;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw ? hw : 1;
}

namespace detail {

/// How [0, n) is cut for `threads` workers: `ranges` contiguous ranges of `chunk` items (the last shorter),
/// each of at least `grain` items. parallel_for and thread_pool cut the same way, so a result that depends
/// on the partition is the same through either.
struct partition {
    std::size_t ranges, chunk;
    partition(std::size_t n, unsigned threads, std::size_t grain) {
        grain = std::max<std::size_t>(grain, 1);
        ranges = n == 0 ? 0 : std::min<std::size_t>(resolve_threads(threads), (n + grain - 1) / grain);
        chunk = ranges ? (n + ranges - 1) / ranges : 0;
    }
};

}  // namespace detail

/// Calls body(begin, end) over a partition of [0, n) into at most `threads` contiguous ranges (of at
/// least `grain` items each), on separate threads. Rethrows the first exception a range raised.
template <class Body>
void parallel_for(std::size_t n, unsigned threads, Body&& body, std::size_t grain = 1) {
    if (n == 0) return;
    const detail::partition cut(n, threads, grain);
    const std::size_t workers = cut.ranges;
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
    const std::size_t chunk = cut.chunk;
    for (std::size_t w = 1; w < workers; ++w) {
        const std::size_t begin = w * chunk, end = std::min(n, begin + chunk);
        if (begin < end) pool.emplace_back(run, begin, end);
    }
    run(0, std::min(n, chunk));
    for (auto& t : pool) t.join();
    if (failure) std::rethrow_exception(failure);
}

/// Calls fn(i) for every i in [0, n), items handed out one at a time to at most `threads` threads in the
/// order of `order` (a permutation of [0, n); empty: ascending): for a few items of very different cost, put
/// the costly first. Which thread runs an item does not change what it computes. Rethrows the first exception.
template <class Fn>
void parallel_for_each(std::size_t n, unsigned threads, Fn&& fn, std::span<const std::size_t> order = {}) {
    std::atomic<std::size_t> next{0};
    const auto workers = static_cast<unsigned>(std::min<std::size_t>(resolve_threads(threads), n));
    parallel_for(workers, workers, [&](std::size_t, std::size_t) {
        for (std::size_t k = next++; k < n; k = next++) fn(order.empty() ? k : order[k]);
    });
}

/// `threads` - 1 workers kept between calls (the caller is the last one): parallel_for without starting
/// and joining threads on every call, which costs tens of microseconds, as much as a small matrix-vector
/// product. Same partition as the free parallel_for. One loop at a time; not for nesting.
class thread_pool {
public:
    explicit thread_pool(unsigned threads) : size_(resolve_threads(threads)) {
        workers_.reserve(size_ - 1);
        for (unsigned w = 1; w < size_; ++w) workers_.emplace_back([this, w] { work(w); });
    }
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;
    ~thread_pool() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        for (auto& t : workers_) t.join();
    }

    /// Threads a loop runs on, the caller's included.
    [[nodiscard]] unsigned size() const noexcept { return size_; }

    /// As the free parallel_for with this pool's size; rethrows the first exception a range raised.
    template <class Body>
    void parallel_for(std::size_t n, Body&& body, std::size_t grain = 1) {
        if (n == 0) return;
        const detail::partition cut(n, size_, grain);
        if (cut.ranges <= 1) {
            body(std::size_t{0}, n);
            return;
        }
        {
            std::lock_guard lock(mutex_);
            job_ = [&body](std::size_t begin, std::size_t end) { body(begin, end); };
            n_ = n;
            cut_ = cut;
            failure_ = nullptr;
            pending_.store(cut.ranges - 1, std::memory_order_relaxed);
            generation_.fetch_add(1, std::memory_order_release);
        }
        wake_.notify_all();
        run_range(0);
        for (int i = 0; i < spin_rounds && pending_.load(std::memory_order_acquire) != 0; ++i) pause();
        if (pending_.load(std::memory_order_acquire) != 0) {
            std::unique_lock lock(mutex_);
            done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
        }
        job_ = nullptr;
        if (failure_) std::rethrow_exception(failure_);
    }

private:
    // A short spin before sleeping, on both sides: a model's products come microseconds apart, less than a
    // wake-up through the condition variable costs. Bounded, so that idle workers do sleep.
    static constexpr int spin_rounds = 1000;
    static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#else
        std::this_thread::yield();
#endif
    }

    void run_range(std::size_t r) {
        const std::size_t begin = r * cut_.chunk, end = std::min(n_, begin + cut_.chunk);
        if (begin >= end) return;
        try {
            job_(begin, end);
        } catch (...) {
            std::lock_guard lock(mutex_);
            if (!failure_) failure_ = std::current_exception();
        }
    }

    void work(unsigned w) {
        std::uint64_t seen = 0;
        for (;;) {
            for (int i = 0;
                 i < spin_rounds && generation_.load(std::memory_order_acquire) == seen && !stopping_.load(std::memory_order_acquire); ++i)
                pause();
            {
                std::unique_lock lock(mutex_);
                wake_.wait(lock, [&] { return stopping_.load() || generation_.load() != seen; });
                if (stopping_.load()) return;
                seen = generation_.load();
                if (w >= cut_.ranges) continue;  // fewer ranges than workers this time
            }
            run_range(w);
            if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                std::lock_guard lock(mutex_);  // the caller checks pending_ under the mutex: no lost wake-up
                done_.notify_one();
            }
        }
    }

    unsigned size_;
    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    std::function<void(std::size_t, std::size_t)> job_;
    std::size_t n_ = 0;
    detail::partition cut_{0, 1, 1};
    std::exception_ptr failure_;
    std::atomic<std::size_t> pending_{0};
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<bool> stopping_{false};
};

}  // namespace cogqat
