// AtomSpace and ECAN throughput, after OpenCog's atomspace_bm: a random graph of 2^18 atoms (20% links,
// Poisson arity with mean 2, fixed seed), then add node, add link, incoming set, truth value get/set,
// removal and get-by-type, each in items_per_second, for float and 8-bit truth values. bytes_per_atom is
// measured by counting every heap byte the space allocates (this file replaces operator new/delete).
// ECAN cycles per second run on the same graph. Run: build/bench/cogqat_bench_atomspace

#include <cogqat/cog/atomspace.hpp>
#include <cogqat/cog/ecan.hpp>

#include <benchmark/benchmark.h>

#include "atomspace_graph.hpp"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

// ------------------------------------------------------------------------------------ counting the heap

namespace {
// Bytes the C library handed out (malloc_usable_size, so allocator rounding counts too), minus what came back.
std::atomic<std::size_t> heap_bytes{0};

void* counted_alloc(std::size_t n) {
    void* p = std::malloc(n == 0 ? 1 : n);
    if (p == nullptr) throw std::bad_alloc();
    heap_bytes.fetch_add(malloc_usable_size(p), std::memory_order_relaxed);
    return p;
}
void counted_free(void* p) noexcept {
    if (p == nullptr) return;
    heap_bytes.fetch_sub(malloc_usable_size(p), std::memory_order_relaxed);
    std::free(p);
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(n);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }

namespace {

using namespace cogqat::cog;
using q8_tv = quantized_truth_value<cogqat::BitWidth<8>>;
using q8_av = quantized_attention_value<cogqat::BitWidth<8>>;

constexpr std::size_t graph_atoms = std::size_t{1} << 18;
using cogqat::bench::build_graph;
using cogqat::bench::graph_seed;
using cogqat::bench::node_name;

/// One shared graph per truth-value type, built on first use; benchmarks that add atoms remove them again.
template <class TV>
AtomSpace<TV>& shared_graph() {
    static AtomSpace<TV> space = [] {
        AtomSpace<TV> s;
        build_graph(s, graph_atoms, graph_seed);
        return s;
    }();
    return space;
}

template <class TV>
std::vector<handle> random_atoms(const AtomSpace<TV>& space, std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<handle> out;
    out.reserve(n);
    while (out.size() < n) {
        const handle h = space.handle_at(static_cast<std::uint32_t>(rng() % space.index_bound()));
        if (!h.is_null()) out.push_back(h);
    }
    return out;
}

constexpr std::int64_t batch = 4096;

// ----------------------------------------------------------------------------------------- benchmarks

template <class TV>
void memory(benchmark::State& state) {
    double per_atom = 0.0, per_atom_shrunk = 0.0;
    for (auto _ : state) {
        const std::size_t before = heap_bytes.load();
        auto* space = new AtomSpace<TV>();
        build_graph(*space, graph_atoms, graph_seed);
        per_atom = static_cast<double>(heap_bytes.load() - before - sizeof(AtomSpace<TV>)) / static_cast<double>(space->size());
        space->shrink_to_fit();
        per_atom_shrunk = static_cast<double>(heap_bytes.load() - before - sizeof(AtomSpace<TV>)) / static_cast<double>(space->size());
        delete space;
    }
    state.counters["bytes_per_atom"] = per_atom;
    state.counters["bytes_per_atom_shrunk"] = per_atom_shrunk;
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(graph_atoms));
}

template <class TV>
void add_node(benchmark::State& state) {
    AtomSpace<TV>& space = shared_graph<TV>();
    std::vector<std::string> names(batch);
    std::vector<handle> added(batch);
    std::uint64_t next = std::uint64_t{1} << 40;
    while (state.KeepRunningBatch(batch)) {
        state.PauseTiming();
        for (auto& n : names) n = node_name(next++);
        state.ResumeTiming();
        for (std::int64_t i = 0; i < batch; ++i) added[i] = space.add_node(types::concept_node, names[i]);
        state.PauseTiming();
        for (const handle h : added) space.remove(h);
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations());
}

template <class TV>
void add_link(benchmark::State& state) {
    AtomSpace<TV>& space = shared_graph<TV>();
    std::mt19937_64 rng(3);
    std::poisson_distribution<int> arity(2.0);
    std::vector<std::vector<handle>> outs(batch);
    std::vector<handle> added(batch);
    while (state.KeepRunningBatch(batch)) {
        state.PauseTiming();
        const auto targets = random_atoms(space, 3 * batch, rng());
        std::size_t t = 0;
        for (auto& o : outs) {
            do {  // only links the graph does not hold, so that removing them afterwards leaves it intact
                o.clear();
                for (int k = std::max(1, arity(rng)); k > 0; --k) o.push_back(targets[t++ % targets.size()]);
            } while (!space.get_link(types::list_link, o).is_null());
        }
        state.ResumeTiming();
        for (std::int64_t i = 0; i < batch; ++i) added[i] = space.add_link(types::list_link, outs[i]);
        state.PauseTiming();
        for (const handle h : added) space.remove(h);  // a duplicate within the batch is gone already: no-op
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations());
}

template <class TV>
void remove_atom(benchmark::State& state) {
    AtomSpace<TV>& space = shared_graph<TV>();
    const auto targets = random_atoms(space, 2 * batch, 11);
    std::vector<handle> added(batch);
    std::uint64_t next = std::uint64_t{1} << 41;
    while (state.KeepRunningBatch(batch)) {
        state.PauseTiming();
        // Half fresh nodes, half fresh links into the graph (their removal unthreads incoming lists).
        for (std::int64_t i = 0; i < batch; ++i) {
            added[i] = i % 2 == 0 ? space.add_node(types::concept_node, node_name(next++))
                                  : space.add_link(types::list_link, {targets[i], targets[i + batch], added[i - 1]});
        }
        state.ResumeTiming();
        for (std::int64_t i = batch - 1; i >= 0; --i) space.remove(added[i]);
    }
    state.SetItemsProcessed(state.iterations());
}

template <class TV>
void incoming_range(benchmark::State& state) {
    const AtomSpace<TV>& space = shared_graph<TV>();
    const auto atoms = random_atoms(space, 1 << 20, 5);
    std::size_t i = 0, links = 0;
    for (auto _ : state) {
        for (const handle l : space.incoming(atoms[i++ & (atoms.size() - 1)])) links += l.index;
        benchmark::DoNotOptimize(links);
    }
    state.SetItemsProcessed(state.iterations());
}

template <class TV>
void incoming_set(benchmark::State& state) {
    const AtomSpace<TV>& space = shared_graph<TV>();
    const auto atoms = random_atoms(space, 1 << 20, 5);
    std::size_t i = 0;
    for (auto _ : state) {
        auto set = space.incoming_set(atoms[i++ & (atoms.size() - 1)]);
        benchmark::DoNotOptimize(set.data());
    }
    state.SetItemsProcessed(state.iterations());
}

template <class TV>
void get_truth_value(benchmark::State& state) {
    const AtomSpace<TV>& space = shared_graph<TV>();
    const auto atoms = random_atoms(space, 1 << 20, 6);
    std::size_t i = 0;
    float sum = 0.0f;
    for (auto _ : state) {
        const TV tv = space.truth_value(atoms[i++ & (atoms.size() - 1)]);
        sum += tv.strength() + tv.confidence();
        benchmark::DoNotOptimize(sum);
    }
    state.SetItemsProcessed(state.iterations());
}

template <class TV>
void set_truth_value(benchmark::State& state) {
    AtomSpace<TV>& space = shared_graph<TV>();
    const auto atoms = random_atoms(space, 1 << 20, 7);
    std::size_t i = 0;
    for (auto _ : state) {
        const float x = static_cast<float>(i & 1023) / 1023.0f;
        space.set_truth_value(atoms[i++ & (atoms.size() - 1)], TV(x, 1.0f - x));
    }
    state.SetItemsProcessed(state.iterations());
}

template <class TV>
void get_by_type(benchmark::State& state, type_id t, bool subtypes) {
    const AtomSpace<TV>& space = shared_graph<TV>();
    std::size_t found = 0;
    for (auto _ : state) {
        const auto atoms = space.get_by_type(t, subtypes);
        found += atoms.size();
        benchmark::DoNotOptimize(atoms.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(found));
}

template <class AV, class TV>
void ecan_cycle(benchmark::State& state) {
    AtomSpace<TV> space;  // its own copy: Hebbian links are added
    build_graph(space, graph_atoms, graph_seed);
    ecan_parameters p;
    p.max_atoms = 1u << 22;  // no forgetting: the benchmark measures the steady cycle
    if constexpr (!std::is_same_v<AV, float_attention_value>) p.sti_range = 127.0 * 8;  // step 8 holds the wages
    AttentionBank<AV, TV> bank(space, p);
    const auto pool = random_atoms(space, 400, 9);
    std::size_t k = 0;
    for (auto _ : state) {
        for (int s = 0; s < 10; ++s) bank.stimulate(pool[k++ % pool.size()], 1.0);
        bank.cycle();
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["hebbian_links"] = static_cast<double>(space.get_by_type(types::asymmetric_hebbian_link).size());
}

int register_all() {
    auto both = [](const char* name, auto f_float, auto f_q8) {
        benchmark::RegisterBenchmark((std::string(name) + "/float").c_str(), f_float);
        benchmark::RegisterBenchmark((std::string(name) + "/q8").c_str(), f_q8);
    };
    benchmark::RegisterBenchmark("memory/float", memory<float_truth_value>)->Iterations(1)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("memory/q8", memory<q8_tv>)->Iterations(1)->Unit(benchmark::kMillisecond);
    both("add_node", add_node<float_truth_value>, add_node<q8_tv>);
    both("add_link", add_link<float_truth_value>, add_link<q8_tv>);
    both("remove_atom", remove_atom<float_truth_value>, remove_atom<q8_tv>);
    both("incoming_range", incoming_range<float_truth_value>, incoming_range<q8_tv>);
    both("incoming_set", incoming_set<float_truth_value>, incoming_set<q8_tv>);
    both("get_truth_value", get_truth_value<float_truth_value>, get_truth_value<q8_tv>);
    both("set_truth_value", set_truth_value<float_truth_value>, set_truth_value<q8_tv>);
    benchmark::RegisterBenchmark("get_by_type/ConceptNode/float", get_by_type<float_truth_value>, types::concept_node, false);
    benchmark::RegisterBenchmark("get_by_type/ConceptNode/q8", get_by_type<q8_tv>, types::concept_node, false);
    benchmark::RegisterBenchmark("get_by_type/Link+subtypes/q8", get_by_type<q8_tv>, types::link, true);
    benchmark::RegisterBenchmark("ecan_cycle/float", ecan_cycle<float_attention_value, float_truth_value>)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("ecan_cycle/q8", ecan_cycle<q8_av, q8_tv>)->Unit(benchmark::kMicrosecond);
    return 0;
}
const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
