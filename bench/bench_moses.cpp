// MOSES to solution, over many seeds: fraction solved, median evaluations and median seconds for even
// parity (3, 4, 5 inputs), the 6- and 11-multiplexer and regression of x + x^2 (+ x^3), with constant knobs
// stored as 6-bit codes (q6) and as floats. An unsolved seed counts as never finishing, so a median is
// infinite when half the seeds or more fail.
//
// Run: build/bench/cogqat_bench_moses (the default set takes a few minutes: 20 seeds everywhere except
// 5-parity, which gets 4). COGQAT_MOSES_SEEDS=N sets the seed count of every case (20 is the full set
// quoted in docs/COGNITIVE-moses.md; 5-parity then takes several minutes per value policy), and
// --benchmark_filter=parity-5 picks cases as usual.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "cogqat/cog/moses/moses.hpp"
#include "cogqat/cog/moses/problems.hpp"
#include "cogqat/cog/moses/value_policy.hpp"
#include "timing.hpp"

namespace {

using namespace cogqat::cog::moses;

struct bench_case {
    const char* problem;
    std::size_t k;
    std::size_t budget;
    std::size_t default_seeds;
};

constexpr bench_case cases[] = {
        {"parity", 3, 100000, 20}, {"parity", 4, 500000, 20}, {"parity", 5, 1500000, 4}, {"mux", 6, 100000, 20},
        {"mux", 11, 500000, 20},   {"sr", 2, 100000, 20},     {"sr", 3, 200000, 20},
};

std::size_t seed_count(const bench_case& c) {
    if (const char* env = std::getenv("COGQAT_MOSES_SEEDS"); env && *env) {
        const long n = std::strtol(env, nullptr, 10);
        if (n > 0) return static_cast<std::size_t>(n);
    }
    return c.default_seeds;
}

using cogqat::bench::median;

template <ValuePolicy V>
void moses_to_solution(benchmark::State& state, bench_case c) {
    const problem prob = make_problem(c.problem, c.k);
    const std::size_t seeds = seed_count(c);
    std::vector<double> evaluations, seconds;
    std::size_t solved = 0;
    for (auto _ : state) {
        evaluations.clear();
        seconds.clear();
        solved = 0;
        for (std::size_t s = 1; s <= seeds; ++s) {
            moses_params params;
            params.seed = s;
            params.max_evals = c.budget;
            const moses_result r = run_moses<V>(prob, params);
            benchmark::DoNotOptimize(r.evaluations);
            const double inf = std::numeric_limits<double>::infinity();
            evaluations.push_back(r.solved ? static_cast<double>(r.evaluations) : inf);
            seconds.push_back(r.solved ? r.seconds : inf);
            solved += r.solved ? 1 : 0;
        }
    }
    state.counters["seeds"] = static_cast<double>(seeds);
    state.counters["budget"] = static_cast<double>(c.budget);
    state.counters["solved"] = static_cast<double>(solved) / static_cast<double>(seeds);
    state.counters["median_evals"] = median(evaluations);
    state.counters["median_s"] = median(seconds);
}

int register_all() {
    for (const bench_case& c : cases) {
        const std::string name = "moses/" + std::string(c.problem) + "-" + std::to_string(c.k);
        benchmark::RegisterBenchmark((name + "/q6").c_str(), moses_to_solution<q6_values>, c)->Iterations(1)->Unit(benchmark::kSecond);
        benchmark::RegisterBenchmark((name + "/float").c_str(), moses_to_solution<float_values>, c)
                ->Iterations(1)
                ->Unit(benchmark::kSecond);
    }
    return 0;
}
const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
