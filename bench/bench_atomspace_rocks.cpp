// The persistent AtomSpace on RocksDB (cog/rocks_storage.hpp): atoms stored and loaded per second, and bytes on
// disk per atom, on the AtomSpace benchmarks' random graph (bench/atomspace_graph.hpp) of 2^16 atoms, for float
// and 8-bit truth values. The database lives in the temporary directory ($TMPDIR), on whatever disk that is.
//   store_all        the whole graph in one call (one synced write); disk_bytes_per_atom counts every file of
//                    the directory after compaction (the data, RocksDB's logs, manifest and options files)
//   store_each       one atom per call, each call durable: synced (fsync per call) and process_crash
//   load             the whole database into an empty space
//   fetch_incoming   one atom's stored incoming set (with the links' outgoing atoms) into an empty space
//   fetch_type       every stored atom of one node type into an empty space
// Run: build/bench/cogqat_bench_atomspace_rocks

#include <cogqat/cog/atomspace.hpp>
#include <cogqat/cog/rocks_storage.hpp>
#include <cogqat/cog/truth_value.hpp>
#include <cogqat/core/policy.hpp>

#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "atomspace_graph.hpp"

namespace {

using namespace cogqat::cog;
using q8_tv = quantized_truth_value<cogqat::BitWidth<8>>;

constexpr std::size_t graph_atoms = std::size_t{1} << 16;

/// A fresh database directory, removed afterwards.
struct bench_dir {
    std::filesystem::path path;
    bench_dir() {
        static int count = 0;
        path = std::filesystem::temp_directory_path() /
               ("cogqat-bench-rocks-" + std::to_string(::getpid()) + "-" + std::to_string(count++));
        std::filesystem::remove_all(path);
    }
    bench_dir(const bench_dir&) = delete;
    bench_dir& operator=(const bench_dir&) = delete;
    ~bench_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
};

template <class TV>
const AtomSpace<TV>& graph() {
    static const AtomSpace<TV> space = [] {
        AtomSpace<TV> s;
        cogqat::bench::build_graph(s, graph_atoms, cogqat::bench::graph_seed);
        // Distinct truth values, so that the files hold what real values cost.
        std::mt19937 rng(7);
        std::uniform_real_distribution<float> unit(0.0f, 1.0f);
        s.for_each_atom([&](handle h) { s.set_truth_value(h, TV(unit(rng), unit(rng))); });
        return s;
    }();
    return space;
}

/// A database directory holding the whole graph, compacted; made once per truth-value type.
template <class TV>
const std::filesystem::path& stored_graph() {
    static const bench_dir dir;
    static const bool made = [] {
        rocks_storage<TV> storage(dir.path);
        storage.store_all(graph<TV>());
        storage.compact();
        return true;
    }();
    (void)made;
    return dir.path;
}

std::uintmax_t directory_bytes(const std::filesystem::path& dir) {
    std::uintmax_t bytes = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.is_regular_file()) bytes += e.file_size();
    return bytes;
}

template <class TV>
void store_all(benchmark::State& state) {
    const AtomSpace<TV>& space = graph<TV>();
    double disk_per_atom = 0.0;
    for (auto _ : state) {
        state.PauseTiming();
        const bench_dir dir;
        rocks_storage<TV> storage(dir.path);
        state.ResumeTiming();
        benchmark::DoNotOptimize(storage.store_all(space));
        state.PauseTiming();
        storage.compact();
        disk_per_atom = static_cast<double>(directory_bytes(dir.path)) / static_cast<double>(space.size());
        state.ResumeTiming();
    }
    state.counters["disk_bytes_per_atom"] = disk_per_atom;
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(space.size()));
}

template <class TV>
void store_each(benchmark::State& state, durability sync) {
    const AtomSpace<TV>& space = graph<TV>();
    std::vector<handle> atoms;
    space.for_each_atom([&](handle h) { atoms.push_back(h); });
    const bench_dir dir;
    rocks_storage<TV> storage(dir.path, {open_mode::create_if_missing, sync});
    std::size_t i = 0;
    for (auto _ : state) {
        // In index order, so that each call stores one new atom (its outgoing atoms came before it, mostly).
        if (i == atoms.size()) {
            state.PauseTiming();
            for (const handle h : atoms) storage.remove(space, h, AtomSpace<TV>::removal::recursive);
            i = 0;
            state.ResumeTiming();
        }
        benchmark::DoNotOptimize(storage.store(space, atoms[i++]));
    }
    state.SetItemsProcessed(state.iterations());
}

template <class TV>
void store_each_synced(benchmark::State& state) {
    store_each<TV>(state, durability::synced);
}
template <class TV>
void store_each_process_crash(benchmark::State& state) {
    store_each<TV>(state, durability::process_crash);
}

template <class TV>
void load(benchmark::State& state) {
    const std::filesystem::path& dir = stored_graph<TV>();
    rocks_storage<TV> storage(dir, {open_mode::open_existing});
    for (auto _ : state) {
        AtomSpace<TV> space;
        benchmark::DoNotOptimize(storage.load(space));
        state.PauseTiming();
        { const AtomSpace<TV> done = std::move(space); }
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(storage.size()));
}

template <class TV>
void fetch_incoming(benchmark::State& state) {
    const AtomSpace<TV>& source = graph<TV>();
    rocks_storage<TV> storage(stored_graph<TV>(), {open_mode::open_existing});
    std::vector<handle> nodes;
    source.for_each_of_type(types::node, true, [&](handle h) { nodes.push_back(h); });
    std::mt19937_64 rng(5);
    std::size_t links = 0;
    for (auto _ : state) {
        state.PauseTiming();
        AtomSpace<TV> space;
        const handle h = nodes[rng() % nodes.size()];
        const handle mine = space.add_node(source.type(h), source.name(h));
        state.ResumeTiming();
        links += storage.fetch_incoming(space, mine).size();
    }
    state.counters["links_per_call"] = static_cast<double>(links) / static_cast<double>(state.iterations());
    state.SetItemsProcessed(state.iterations());
}

template <class TV>
void fetch_type(benchmark::State& state) {
    rocks_storage<TV> storage(stored_graph<TV>(), {open_mode::open_existing});
    std::size_t atoms = 0;
    for (auto _ : state) {
        AtomSpace<TV> space;
        atoms += storage.fetch_type(space, types::concept_node).size();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(atoms));
}

}  // namespace

BENCHMARK(store_all<float_truth_value>)->Name("store_all/float_tv")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(store_all<q8_tv>)->Name("store_all/q8_tv")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(store_each_synced<float_truth_value>)->Name("store_each_synced/float_tv")->UseRealTime();
BENCHMARK(store_each_synced<q8_tv>)->Name("store_each_synced/q8_tv")->UseRealTime();
BENCHMARK(store_each_process_crash<float_truth_value>)->Name("store_each_process_crash/float_tv")->UseRealTime();
BENCHMARK(store_each_process_crash<q8_tv>)->Name("store_each_process_crash/q8_tv")->UseRealTime();
BENCHMARK(load<float_truth_value>)->Name("load/float_tv")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(load<q8_tv>)->Name("load/q8_tv")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(fetch_incoming<float_truth_value>)->Name("fetch_incoming/float_tv")->UseRealTime();
BENCHMARK(fetch_incoming<q8_tv>)->Name("fetch_incoming/q8_tv")->UseRealTime();
BENCHMARK(fetch_type<float_truth_value>)->Name("fetch_type/float_tv")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(fetch_type<q8_tv>)->Name("fetch_type/q8_tv")->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
