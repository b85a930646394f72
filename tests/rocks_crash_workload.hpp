#pragma once
// The crash test's workload, shared by the writer process (rocks_crash_writer.cpp) and the test that kills it
// and checks the database (test_atomspace_rocks.cpp): step k of run r adds and stores, in one store call, a
// link of a user type over a predicate and a list of two concepts, so that every step is several records that
// must appear together or not at all.

#include <string>

#include "cogqat/cog/atomspace.hpp"
#include "cogqat/cog/truth_value.hpp"
#include "cogqat/core/policy.hpp"

namespace cogqat::test::rocks_crash {

using tv_type = cog::quantized_truth_value<BitWidth<8>>;
using space_type = cog::AtomSpace<tv_type>;

/// The user link type every step stores (so the type table is written by the first step's batch).
inline cog::type_id crash_link_type(space_type& space) { return space.types().add("CrashLink", {cog::types::ordered_link}); }

inline std::string concept_name(int run, int step) { return "c" + std::to_string(run) + "-" + std::to_string(step); }
inline std::string predicate_name(int run, int step) { return "p" + std::to_string(run) + "-" + std::to_string(step); }

/// Distinct codes per step, so that a value from the wrong record cannot pass.
inline tv_type concept_tv(int run, int step) {
    return tv_type::from_codes(static_cast<std::uint8_t>((run * 31 + step * 7) % 256), static_cast<std::uint8_t>((step * 13 + 5) % 256));
}
inline tv_type link_tv(int run, int step) {
    return tv_type::from_codes(static_cast<std::uint8_t>((run * 17 + step * 3 + 1) % 256),
                               static_cast<std::uint8_t>((run + step * 29) % 256));
}

/// Adds step (run, step)'s atoms to `space` and returns the link to store.
inline cog::handle add_step(space_type& space, int run, int step) {
    const cog::handle c = space.add_node(cog::types::concept_node, concept_name(run, step), concept_tv(run, step));
    const cog::handle earlier = space.add_node(cog::types::concept_node, concept_name(run, step / 2), concept_tv(run, step / 2));
    const cog::handle p = space.add_node(cog::types::predicate_node, predicate_name(run, step));
    const cog::handle list = space.add_link(cog::types::list_link, {c, earlier});
    return space.add_link(crash_link_type(space), {p, list}, link_tv(run, step));
}

}  // namespace cogqat::test::rocks_crash
