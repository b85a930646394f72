// The progress meter with an injected clock: a line at least every interval in a log, a bar redrawn in
// place on a terminal, the rate and the time left, a final line per step; no sleeping.

#include <doctest/doctest.h>

#include <cogqat/core/progress.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace cogqat;
using namespace std::chrono_literals;

namespace {

/// A clock the test moves by hand, and everything the meter wrote.
struct harness {
    progress_meter::clock::time_point t{};
    std::vector<std::string> written;

    progress_meter meter(progress_style style) {
        return progress_meter([this](std::string_view s) { written.emplace_back(s); }, style, [this] { return t; });
    }
};

}  // namespace

TEST_CASE("progress_duration reads as seconds, minutes or hours") {
    CHECK(progress_duration(0.2) == "0s");
    CHECK(progress_duration(42.4) == "42s");
    CHECK(progress_duration(187) == "3m07s");
    CHECK(progress_duration(7500) == "2h05m");
    CHECK(progress_duration(-1) == "?");
}

TEST_CASE("a slow unit's rate is seconds per unit, the unit named in the singular") {
    progress_style style;
    style.terminal = false;
    for (const auto& names : {std::pair{"passes", "pass"}, std::pair{"steps", "step"}, std::pair{"batches", "batch"},
                              std::pair{"tokens", "token"}, std::pair{"s", "s"}}) {
        const std::string unit = names.first, one = names.second;
        CAPTURE(unit);
        harness h;
        auto m = h.meter(style);
        m.start("eval", 2, unit);
        h.t += 10s;
        m.update(1);
        REQUIRE(h.written.size() == 1);
        CHECK(h.written[0].find(std::string("10.0 s/") + one + ",") != std::string::npos);
    }
}

TEST_CASE("in a log, a line at least every interval, with rate and ETA, and one at the end") {
    harness h;
    progress_style style;
    style.terminal = false;
    auto m = h.meter(style);
    m.start("sensitivity", 40, "tensors");
    h.t += 4s;
    m.update(2, "blk.0.attn_q.weight");
    CHECK(h.written.empty());  // within the interval: nothing yet
    h.t += 6s;
    m.update(4, "blk.1.attn_q.weight");
    REQUIRE(h.written.size() == 1);
    CHECK(h.written[0] == "sensitivity: 4/40 tensors (10%), 2.5 s/tensor, 10s elapsed, ETA 1m30s: blk.1.attn_q.weight\n");

    // A unit that takes long: no update comes, the tick still shows the step once an interval has passed.
    h.t += 9s;
    m.tick();
    CHECK(h.written.size() == 1);
    h.t += 1s;
    m.tick();
    REQUIRE(h.written.size() == 2);
    CHECK(h.written[1] == "sensitivity: 4/40 tensors (10%), 5.0 s/tensor, 20s elapsed, ETA 3m00s: blk.1.attn_q.weight\n");

    h.t += 10s;
    m.update(30, "blk.7.ffn_up.weight");
    REQUIRE(h.written.size() == 3);
    CHECK(h.written[2] == "sensitivity: 30/40 tensors (75%), 1.00 tensors/s, 30s elapsed, ETA 10s: blk.7.ffn_up.weight\n");
    h.t += 10s;
    m.update(40, "output.weight");  // the last unit: the final line says it
    CHECK(h.written.size() == 3);
    m.finish();
    REQUIRE(h.written.size() == 4);
    CHECK(h.written[3] == "sensitivity: 40/40 tensors in 40s (1.00 tensors/s)\n");
    m.update(41);  // no step: ignored
    m.finish();
    CHECK(h.written.size() == 4);
}

TEST_CASE("on a terminal, a bar redrawn in place, at most every redraw gap, cleared by a shorter line") {
    harness h;
    progress_style style;
    style.terminal = true;
    style.bar_width = 10;
    auto m = h.meter(style);
    m.start("train", 200);
    h.t += 50ms;
    m.update(1);
    CHECK(h.written.empty());
    h.t += 50ms;
    m.update(2, "a-rather-long-item-name");
    REQUIRE(h.written.size() == 1);
    CHECK(h.written[0] == "\rtrain [----------] 2/200 steps 1%, 20.00 steps/s, ETA 10s: a-rather-long-item-name");
    h.t += 9900ms;
    m.update(100);
    REQUIRE(h.written.size() == 2);
    const std::string line = "\rtrain [#####-----] 100/200 steps 50%, 10.00 steps/s, ETA 10s";
    CHECK(h.written[1].substr(0, line.size()) == line);
    CHECK(h.written[1].size() == h.written[0].size());  // padded over the longer line before
    CHECK(h.written[1].find_first_not_of(' ', line.size()) == std::string::npos);

    // The next step ends this one: a final line, then the new bar.
    h.t += 10s;
    m.start("export", 1, "files");
    REQUIRE(h.written.size() == 3);
    CHECK(h.written[2].rfind("\rtrain: 100/200 steps in 20s (5.00 steps/s)", 0) == 0);
    CHECK(h.written[2].back() == '\n');
    m.update(1);
    CHECK(h.written.size() == 4);  // the last unit is always drawn
    CHECK(m.status().rfind("export [##########] 1/1 files 100%", 0) == 0);
}

TEST_CASE("a step of nothing, and one that shows no rate yet") {
    harness h;
    auto m = h.meter({});
    m.start("calibration", 1, "passes");
    h.t += 12s;
    m.tick();
    REQUIRE(h.written.size() == 1);
    CHECK(h.written[0] == "calibration: 0/1 passes (0%), ? passes/s, 12s elapsed, ETA ?\n");
    m.start("empty", 0);
    CHECK(h.written.size() == 2);
    CHECK(h.written[1] == "calibration: 0/1 passes in 12s\n");
    m.finish();
    CHECK(h.written[2] == "empty: 0/0 steps in 0s\n");
}

TEST_CASE("a step that an exception ends gets no final line; a terminal's bar gets its line ended") {
    for (const bool terminal : {false, true}) {
        CAPTURE(terminal);
        harness h;
        try {
            progress_style style;
            style.terminal = terminal;
            auto m = h.meter(style);
            m.start("quantize", 4, "tensors");
            h.t += 1s;
            m.update(1);
            throw std::runtime_error("disk full");
        } catch (const std::runtime_error&) {}
        REQUIRE(h.written.size() == (terminal ? 2u : 0u));
        if (terminal) CHECK(h.written[1] == "\n");
    }
}

TEST_CASE("keep_alive's thread stops with the meter") {
    std::vector<std::string> written;
    {
        progress_meter m([&](std::string_view s) { written.emplace_back(s); });
        m.start("x", 2);
        m.keep_alive(1ms);
    }
    REQUIRE(written.size() == 1);  // the final line; a 10 s interval never passed
    CHECK(written[0].rfind("x: 0/2 steps in", 0) == 0);
}
