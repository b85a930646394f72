// The KL losses on backend::Scalar (the double reference) and backend::Simd (the active instruction set's
// loss kernels), side by side in one run: kl_loss forward and forward + gradient on a batch of rows, with a
// dense teacher and a top-64 sparse one, and the distillation mix.
//
// Each Simd benchmark times its Scalar twin in the same loop: every iteration runs one batch of rows on each
// backend, the order alternating, and `vs_scalar` is the median over iterations of scalar time / simd time,
// so that what hits both (frequency changes, caches) cancels. Times are the thread's CPU time (manual time),
// not wall time, so that other jobs on a shared machine do not count. The reported time is the Simd side's;
// the Scalar benchmarks report the reference alone.
//
//   build/bench/cogqat_bench_policy --benchmark_filter=loss
//   COGQAT_SIMD=avx2 build/bench/cogqat_bench_policy --benchmark_filter=loss    # another table

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <time.h>  // clock_gettime: POSIX, the thread CPU clock

#include "cogqat/core/policy.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/loss/kl_loss.hpp"
#include "cogqat/loss/top_k_teacher.hpp"

namespace {

using namespace cogqat;

/// Logits uniform in [-spread, spread] (splitmix64, the same numbers everywhere).
std::vector<float> logits(std::size_t n, std::uint64_t seed, float spread = 10.0f) {
    std::vector<float> v(n);
    for (auto& x : v) {
        std::uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        x = spread * (static_cast<float>(z >> 40) * 0x1p-23f - 1.0f);
    }
    return v;
}

/// One batch of rows: teachers dense and top-64, students, gradients.
struct loss_batch {
    std::size_t vocab, rows;
    std::vector<float> teacher, student, grad;
    top_k_logits top;
    std::vector<std::int32_t> targets;

    loss_batch(std::size_t v, std::size_t r)
            : vocab(v),
              rows(r),
              teacher(logits(v * r, 1)),
              student(logits(v * r, 2)),
              grad(v * r),
              top(top_k_of(teacher, v, 64)),
              targets(r) {
        for (std::size_t i = 0; i < r; ++i) targets[i] = static_cast<std::int32_t>((i * 7919) % v);
    }
};

enum class job { forward, forward_backward, top_k_forward_backward, distillation_forward_backward };

template <class B>
double run(job j, loss_batch& b) {
    const kl_loss<B> kl({2.0f});
    switch (j) {
        case job::forward:
            return kl.mean_forward(b.teacher, b.student, b.vocab);
        case job::forward_backward:
            return kl.mean_forward_backward(b.teacher, b.student, b.vocab, b.grad);
        case job::top_k_forward_backward:
            return kl.mean_forward_backward(b.top.view(), b.student, b.vocab, b.grad);
        case job::distillation_forward_backward: {
            const distillation<B> mix({0.5f, 2.0f});
            double total = 0.0;
            for (std::size_t r = 0; r < b.rows; ++r) {
                const std::size_t o = r * b.vocab;
                total += mix.forward_backward(std::span<const float>(b.teacher).subspan(o, b.vocab),
                                              std::span<const float>(b.student).subspan(o, b.vocab), b.targets[r],
                                              std::span<float>(b.grad).subspan(o, b.vocab));
            }
            return total;
        }
    }
    return 0.0;
}

/// CPU seconds of this thread: on a machine shared with other jobs, wall time would count their turns on
/// the core as ours.
double thread_seconds() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

template <class B>
double seconds_of(job j, loss_batch& b) {
    const double start = thread_seconds();
    benchmark::DoNotOptimize(run<B>(j, b));
    benchmark::ClobberMemory();
    return thread_seconds() - start;
}

void set_counters(benchmark::State& state, const loss_batch& b) {
    state.counters["rows"] = static_cast<double>(b.rows);
    state.counters["vocab"] = static_cast<double>(b.vocab);
    state.counters["logits_per_second"] = benchmark::Counter(
            static_cast<double>(b.rows * b.vocab) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void bm_scalar(benchmark::State& state, job j) {
    loss_batch b(static_cast<std::size_t>(state.range(0)), static_cast<std::size_t>(state.range(1)));
    for (auto _ : state) state.SetIterationTime(seconds_of<backend::Scalar>(j, b));
    set_counters(state, b);
    state.SetLabel("scalar");
}

void bm_simd(benchmark::State& state, job j) {
    loss_batch b(static_cast<std::size_t>(state.range(0)), static_cast<std::size_t>(state.range(1)));
    std::vector<double> ratios;
    bool simd_first = false;
    for (auto _ : state) {
        simd_first = !simd_first;
        double simd = 0.0, scalar = 0.0;
        if (simd_first) {
            simd = seconds_of<backend::Simd>(j, b);
            scalar = seconds_of<backend::Scalar>(j, b);
        } else {
            scalar = seconds_of<backend::Scalar>(j, b);
            simd = seconds_of<backend::Simd>(j, b);
        }
        state.SetIterationTime(simd);
        ratios.push_back(scalar / simd);
    }
    std::sort(ratios.begin(), ratios.end());
    if (!ratios.empty()) state.counters["vs_scalar"] = ratios[ratios.size() / 2];
    set_counters(state, b);
    state.SetLabel(std::string(dispatch::active().loss.kl_sums ? dispatch::active().isa : "reference"));
}

void shapes(benchmark::internal::Benchmark* b) {
    b->ArgNames({"vocab", "rows"})->Args({32000, 8})->Args({32000, 1})->Args({4096, 8})->UseManualTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK_CAPTURE(bm_scalar, loss_kl_forward_dense, job::forward)->Apply(shapes);
BENCHMARK_CAPTURE(bm_simd, loss_kl_forward_dense, job::forward)->Apply(shapes);
BENCHMARK_CAPTURE(bm_scalar, loss_kl_forward_backward_dense, job::forward_backward)->Apply(shapes);
BENCHMARK_CAPTURE(bm_simd, loss_kl_forward_backward_dense, job::forward_backward)->Apply(shapes);
BENCHMARK_CAPTURE(bm_scalar, loss_kl_forward_backward_top64, job::top_k_forward_backward)->Apply(shapes);
BENCHMARK_CAPTURE(bm_simd, loss_kl_forward_backward_top64, job::top_k_forward_backward)->Apply(shapes);
BENCHMARK_CAPTURE(bm_scalar, loss_distillation_forward_backward_dense, job::distillation_forward_backward)->Apply(shapes);
BENCHMARK_CAPTURE(bm_simd, loss_distillation_forward_backward_dense, job::distillation_forward_backward)->Apply(shapes);
