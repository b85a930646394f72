#pragma once
// The AtomSpace benchmarks' random graph, after OpenCog's atomspace_bm: nodes of three types named n<k>, 20%
// links of five types whose arity is Poisson(2) and whose targets are uniform over the atoms made so far.
// Shared by bench_atomspace.cpp (in memory) and bench_atomspace_rocks.cpp (on disk), so both measure one graph.

#include <cogqat/cog/atom_types.hpp>
#include <cogqat/cog/atomspace.hpp>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace cogqat::bench {

inline constexpr std::uint64_t graph_seed = 20240817;
inline constexpr cog::type_id graph_node_types[] = {cog::types::concept_node, cog::types::predicate_node, cog::types::number_node};
inline constexpr cog::type_id graph_link_types[] = {cog::types::list_link, cog::types::inheritance_link, cog::types::evaluation_link,
                                                    cog::types::member_link, cog::types::similarity_link};

/// "n123456": the benchmark's node names.
inline std::string node_name(std::uint64_t id) {
    char buf[24] = {'n'};
    const auto end = std::to_chars(buf + 1, buf + sizeof(buf), id).ptr;
    return {buf, end};
}

/// Adds atoms to `space` until it holds `atoms`.
template <class TV>
void build_graph(cog::AtomSpace<TV>& space, std::size_t atoms, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::poisson_distribution<int> arity(2.0);
    std::vector<cog::handle> made;
    made.reserve(atoms);
    std::vector<cog::handle> out;
    std::uint64_t next_name = 0;
    while (space.size() < atoms) {
        if (made.size() > 16 && rng() % 5 == 0) {
            out.clear();
            for (int k = arity(rng); k > 0; --k) out.push_back(made[rng() % made.size()]);
            const std::size_t before = space.size();
            const cog::handle h = space.add_link(graph_link_types[rng() % std::size(graph_link_types)], out);
            if (space.size() > before) made.push_back(h);
        } else {
            made.push_back(space.add_node(graph_node_types[rng() % std::size(graph_node_types)], node_name(next_name++)));
        }
    }
}

}  // namespace cogqat::bench
