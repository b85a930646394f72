#pragma once
// Progress of long steps as a person watching sees it: on a terminal one line redrawn in place (a bar, the
// steps done, the rate and the time left); in a log a whole line at least every interval (10 s by default)
// and one when the step ends, so a log never goes quiet for minutes. The library reports progress through
// callbacks; this turns them into text, written wherever the caller says (the tool: stderr, so that stdout
// stays parseable). The clock is injected, so the formatting is tested without sleeping.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace cogqat {

/// How a progress_meter shows itself.
struct progress_style {
    bool terminal = false;                      ///< one line redrawn in place with a bar; else whole lines
    std::chrono::milliseconds interval{10000};  ///< not a terminal: the longest gap between lines while a step runs
    std::chrono::milliseconds redraw{100};      ///< a terminal: the shortest gap between redraws
    std::size_t bar_width = 24;
    std::size_t item_width = 32;  ///< the item (a tensor's name, ...) is cut to this many bytes
};

/// A duration for people: "42s", "3m07s", "2h05m".
[[nodiscard]] inline std::string progress_duration(double seconds) {
    if (!(seconds >= 0.0) || seconds > 1e9) return "?";
    const auto s = static_cast<std::uint64_t>(seconds + 0.5);
    char text[48];
    if (s < 60)
        std::snprintf(text, sizeof text, "%llus", static_cast<unsigned long long>(s));
    else if (s < 3600)
        std::snprintf(text, sizeof text, "%llum%02llus", static_cast<unsigned long long>(s / 60), static_cast<unsigned long long>(s % 60));
    else
        std::snprintf(text, sizeof text, "%lluh%02llum", static_cast<unsigned long long>(s / 3600),
                      static_cast<unsigned long long>(s / 60 % 60));
    return text;
}

/// Shows the progress of one named step after another: start() a step of `total` units, update() as they
/// are done, finish() at the end (start() and the destructor finish the step before). Safe to call from
/// several threads. keep_alive() adds a thread that shows the step every interval even while no update
/// comes (a single unit that takes minutes).
class progress_meter {
public:
    using clock = std::chrono::steady_clock;
    /// Receives each piece of text: a whole line with its newline, or a terminal redraw starting with '\r'.
    using writer = std::function<void(std::string_view)>;
    using time_source = std::function<clock::time_point()>;

    /// A meter that writes to `out` in `style`, reading the time from `now`.
    explicit progress_meter(writer out, progress_style style = {}, time_source now = &clock::now)
            : out_(std::move(out)), style_(style), now_(std::move(now)) {}
    progress_meter(const progress_meter&) = delete;
    progress_meter& operator=(const progress_meter&) = delete;
    /// Finishes the step, unless an exception is unwinding the stack: a failed step gets no final line that
    /// reads as success (a terminal's bar only gets its line ended, so the error starts on a line of its own).
    ~progress_meter() {
        stop_keep_alive();
        std::lock_guard lock(mutex_);
        if (std::uncaught_exceptions() == 0) {
            end_step();
        } else {
            if (active_ && style_.terminal && drawn_ > 0) out_("\n");
            active_ = false;
        }
    }

    /// Starts the step `label` of `total` `unit` (the one before ends first).
    void start(std::string label, std::uint64_t total, std::string unit = "steps") {
        std::lock_guard lock(mutex_);
        end_step();
        label_ = std::move(label), unit_ = std::move(unit), total_ = total, done_ = 0, item_.clear();
        started_ = shown_ = now_();
        active_ = true;
    }

    /// `done` units of the current step are done, the last on `item`; shown when due. Ignored without a step.
    void update(std::uint64_t done, std::string_view item = {}) {
        std::lock_guard lock(mutex_);
        if (!active_) return;
        done_ = std::min(done, total_);
        item_.assign(item.substr(0, style_.item_width));
        const auto t = now_();
        // A log gets no line for the last unit: the step's final line follows.
        if (style_.terminal ? t - shown_ >= style_.redraw || done_ == total_ : done_ < total_ && t - shown_ >= style_.interval) show(t);
    }

    /// Shows the current step when nothing was shown for an interval (what keep_alive's thread calls).
    void tick() {
        std::lock_guard lock(mutex_);
        if (!active_) return;
        const auto t = now_();
        if (t - shown_ >= (style_.terminal ? std::chrono::milliseconds(1000) : style_.interval)) show(t);
    }

    /// Ends the current step with its final line: how much was done, in how long, at what rate.
    void finish() {
        std::lock_guard lock(mutex_);
        end_step();
    }

    /// The text of the current state, without '\r' or newline: "LABEL [####----] 12/40 tensors 30%, 2.50
    /// tensors/s, ETA 11s: ITEM" on a terminal, "LABEL: 12/40 tensors (30%), 2.50 tensors/s, 5s elapsed, ETA
    /// 11s: ITEM" otherwise.
    [[nodiscard]] std::string status() const {
        std::lock_guard lock(mutex_);
        return status_at(now_());
    }

    /// Starts a thread that calls tick() every `period` of real time until the meter is destroyed.
    void keep_alive(std::chrono::milliseconds period = std::chrono::milliseconds(1000)) {
        if (ticker_.joinable()) return;
        ticker_ = std::thread([this, period] {
            std::unique_lock lock(ticker_mutex_);
            while (!stopping_) {
                ticker_wake_.wait_for(lock, period, [this] { return stopping_; });
                if (!stopping_) tick();
            }
        });
    }

private:
    [[nodiscard]] std::string status_at(clock::time_point t) const {
        const double elapsed = std::chrono::duration<double>(t - started_).count();
        const double rate = elapsed > 0.0 ? static_cast<double>(done_) / elapsed : 0.0;
        const std::uint64_t percent = total_ ? done_ * 100 / total_ : 100;
        char numbers[160];
        std::string text = label_;
        if (style_.terminal) {
            const std::size_t filled = total_ ? static_cast<std::size_t>(done_ * style_.bar_width / total_) : style_.bar_width;
            text += " [" + std::string(filled, '#') + std::string(style_.bar_width - filled, '-') + "]";
            std::snprintf(numbers, sizeof numbers, " %llu/%llu %s %llu%%", static_cast<unsigned long long>(done_),
                          static_cast<unsigned long long>(total_), unit_.c_str(), static_cast<unsigned long long>(percent));
        } else {
            std::snprintf(numbers, sizeof numbers, ": %llu/%llu %s (%llu%%)", static_cast<unsigned long long>(done_),
                          static_cast<unsigned long long>(total_), unit_.c_str(), static_cast<unsigned long long>(percent));
        }
        text += numbers;
        text += ", " + rate_text(rate);
        if (!style_.terminal) text += ", " + progress_duration(elapsed) + " elapsed";
        if (done_ < total_) text += ", ETA " + (rate > 0.0 ? progress_duration(static_cast<double>(total_ - done_) / rate) : "?");
        if (!item_.empty()) text += ": " + item_;
        return text;
    }

    /// "2.50 tensors/s", or "4.2 s/step" when a unit takes longer than a second.
    [[nodiscard]] std::string rate_text(double rate) const {
        char text[96];
        if (rate <= 0.0) return "? " + unit_ + "/s";
        if (rate >= 1.0) {
            std::snprintf(text, sizeof text, "%.2f %s/s", rate, unit_.c_str());
        } else {
            // "steps" -> "s/step", "passes" -> "s/pass": a unit's name in the singular reads better per unit.
            const auto ends_with = [&](std::string_view tail) { return unit_.size() > tail.size() && unit_.ends_with(tail); };
            const std::string one = ends_with("sses") || ends_with("shes") || ends_with("ches") ? unit_.substr(0, unit_.size() - 2)
                                    : ends_with("s")                                            ? unit_.substr(0, unit_.size() - 1)
                                                                                                : unit_;
            std::snprintf(text, sizeof text, "%.1f s/%s", 1.0 / rate, one.c_str());
        }
        return text;
    }

    void show(clock::time_point t) {
        std::string text = status_at(t);
        if (style_.terminal) {
            const std::size_t width = text.size();
            // Spaces over what is left of a longer line drawn before.
            if (text.size() < drawn_) text += std::string(drawn_ - text.size(), ' ');
            drawn_ = width;
            out_("\r" + text);
        } else {
            out_(text + "\n");
        }
        shown_ = t;
    }

    void end_step() {
        if (!active_) return;
        active_ = false;
        const auto t = now_();
        const double elapsed = std::chrono::duration<double>(t - started_).count();
        item_.clear();
        char numbers[96];
        std::snprintf(numbers, sizeof numbers, ": %llu/%llu %s in ", static_cast<unsigned long long>(done_),
                      static_cast<unsigned long long>(total_), unit_.c_str());
        std::string text = label_ + numbers + progress_duration(elapsed);
        if (done_ > 0 && elapsed > 0.0) text += " (" + rate_text(static_cast<double>(done_) / elapsed) + ")";
        if (style_.terminal) {
            if (text.size() < drawn_) text += std::string(drawn_ - text.size(), ' ');
            drawn_ = 0;
            out_("\r" + text + "\n");
        } else {
            out_(text + "\n");
        }
    }

    void stop_keep_alive() {
        if (!ticker_.joinable()) return;
        {
            std::lock_guard lock(ticker_mutex_);
            stopping_ = true;
        }
        ticker_wake_.notify_all();
        ticker_.join();
    }

    writer out_;
    progress_style style_;
    time_source now_;
    mutable std::mutex mutex_;
    std::string label_, unit_, item_;
    std::uint64_t total_ = 0, done_ = 0;
    clock::time_point started_{}, shown_{};
    std::size_t drawn_ = 0;  // the width of the line a terminal shows now
    bool active_ = false;
    std::thread ticker_;
    std::mutex ticker_mutex_;
    std::condition_variable ticker_wake_;
    bool stopping_ = false;
};

}  // namespace cogqat
