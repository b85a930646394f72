#pragma once
// Progress on stderr, so that stdout stays parseable: on a terminal a line redrawn in place, in a file or pipe
// a line at least every 10 s and one per finished step (core/progress.hpp's progress_meter).

#include <cogqat/core/progress.hpp>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include <unistd.h>

namespace cogqat::cli {

[[nodiscard]] inline bool stderr_is_terminal() noexcept {
    static const bool terminal = ::isatty(STDERR_FILENO) == 1;
    return terminal;
}

/// A command's progress: the named phases of a pipeline shown one after another on one progress_meter on
/// stderr (a new phase name starts a new step), nothing at all when `quiet`. Copies share the meter, so a
/// copy can go into a library callback.
class phase_progress {
public:
    explicit phase_progress(bool quiet, std::size_t item_width = 32) {
        if (quiet) return;
        progress_style style;
        style.terminal = stderr_is_terminal();
        style.item_width = item_width;
        state_ = std::make_shared<state>(style);
        state_->meter.keep_alive();
    }

    /// `done` of `total` `unit` of `phase` are done, the last on `item`.
    void operator()(std::string_view phase, std::uint64_t done, std::uint64_t total, std::string_view item = {},
                    std::string_view unit = "steps") const {
        if (!state_) return;
        if (phase != state_->phase) {
            state_->phase.assign(phase);
            state_->meter.start(std::string(phase), total, std::string(unit));
        }
        state_->meter.update(done, item);
    }

    /// Ends the phase shown with its final line (before a command prints its report).
    void finish() const {
        if (!state_) return;
        state_->meter.finish();
        state_->phase.clear();
    }

private:
    struct state {
        explicit state(progress_style style)
                : meter(
                          [](std::string_view text) {
                              std::fwrite(text.data(), 1, text.size(), stderr);
                              std::fflush(stderr);
                          },
                          style) {}
        progress_meter meter;
        std::string phase;
    };
    std::shared_ptr<state> state_;
};

}  // namespace cogqat::cli
