#pragma once
// The metapopulation: every distinct (reduced) program the demes have produced that is still worth
// expanding, ranked by penalized score. The next exemplar is drawn from it by Boltzmann selection,
// p ~ exp((score - best) * 100 / temperature), among programs not yet used as exemplars: with MOSES's
// temperature of 6, a program one literal more complex than the best is picked ~1% as often, so the search
// is nearly greedy yet still tries the runners-up once the best have been expanded.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cogqat/cog/moses/program.hpp"
#include "cogqat/cog/moses/random.hpp"
#include "cogqat/cog/moses/scoring.hpp"
#include "cogqat/core/error.hpp"

namespace cogqat::cog::moses {

/// A program of the metapopulation and its score.
struct candidate {
    program prog;
    composite_score score;
};

/// Parameters of the metapopulation; the defaults are MOSES's where it has one.
struct metapopulation_params {
    /// Boltzmann temperature of exemplar selection, in hundredths of a score unit (MOSES: 6).
    double complexity_temperature = 6.0;
    /// Most programs kept; the worst go first.
    std::size_t max_size = 2000;
    /// When every program has been an exemplar, pick among all of them again (a new representation draws
    /// new random pairs) instead of stopping, as MOSES does.
    bool revisit_when_exhausted = true;
};

/// The set of candidate exemplars.
class metapopulation {
public:
    /// Throws invalid_argument_error for a temperature that is not positive or a max_size of 0.
    explicit metapopulation(const metapopulation_params& params = {}) : params_(params) {
        if (!(params.complexity_temperature > 0.0) || !std::isfinite(params.complexity_temperature)) {
            throw invalid_argument_error("metapopulation: complexity_temperature must be a positive number");
        }
        if (params.max_size == 0) throw invalid_argument_error("metapopulation: max_size must be positive");
    }

    /// Programs whose penalized score is this far below the best have a selection weight below e^-30 and are
    /// dropped.
    [[nodiscard]] double useful_score_range() const noexcept { return params_.complexity_temperature * 30.0 / 100.0; }

    /// Adds the candidates not already present (programs are compared after reduction, so pass reduced
    /// ones), then drops those out of the useful range and the worst beyond max_size. Returns how many
    /// were new.
    std::size_t merge(std::vector<candidate> candidates) {
        std::size_t added = 0;
        for (auto& c : candidates) {
            if (!best_fit_ || better_fit(c.score, best_fit_->score)) best_fit_ = c;
            if (!members_.insert(c.prog).second) continue;
            const bool seen = visited_.count(c.prog) != 0;
            items_.push_back(entry{std::move(c), next_order_++, seen});
            ++added;
        }
        std::sort(items_.begin(), items_.end(), [](const entry& a, const entry& b) {
            if (better(a.c.score, b.c.score)) return true;
            if (better(b.c.score, a.c.score)) return false;
            return a.order < b.order;
        });
        if (!items_.empty()) {
            const double floor = items_.front().c.score.penalized - useful_score_range();
            std::size_t keep = items_.size();
            while (keep > 1 && (items_[keep - 1].c.score.penalized < floor || keep > params_.max_size)) --keep;
            for (std::size_t i = keep; i < items_.size(); ++i) members_.erase(items_[i].c.prog);
            items_.resize(keep);
        }
        return added;
    }

    /// Draws the next exemplar and marks it visited; nothing when the metapopulation is empty, or when all
    /// have been visited and revisiting is off.
    std::optional<program> select(rng& gen) {
        auto pick = [&](bool unvisited_only) -> std::optional<std::size_t> {
            double high = -std::numeric_limits<double>::infinity();
            for (const auto& e : items_)
                if ((!unvisited_only || !e.visited) && std::isfinite(e.c.score.penalized)) high = std::max(high, e.c.score.penalized);
            if (!std::isfinite(high)) return std::nullopt;
            const double inverse_temperature = 100.0 / params_.complexity_temperature;
            std::vector<double> weight(items_.size(), 0.0);
            double sum = 0.0;
            for (std::size_t i = 0; i < items_.size(); ++i) {
                const auto& e = items_[i];
                if ((unvisited_only && e.visited) || !std::isfinite(e.c.score.penalized)) continue;
                weight[i] = std::exp((e.c.score.penalized - high) * inverse_temperature);
                sum += weight[i];
            }
            double r = gen.uniform() * sum;
            std::size_t last = 0;
            for (std::size_t i = 0; i < weight.size(); ++i) {
                if (weight[i] <= 0.0) continue;
                last = i;
                if (r < weight[i]) return i;
                r -= weight[i];
            }
            return last;  // rounding left r just above the last weight
        };
        std::optional<std::size_t> i = pick(true);
        if (!i && params_.revisit_when_exhausted) i = pick(false);
        if (!i) return std::nullopt;
        items_[*i].visited = true;
        visited_.insert(items_[*i].c.prog);
        return items_[*i].c.prog;
    }

    [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
    [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
    /// Number of distinct programs used as exemplars so far.
    [[nodiscard]] std::size_t visited() const noexcept { return visited_.size(); }
    /// The program with the best penalized score; the metapopulation must not be empty.
    [[nodiscard]] const candidate& best() const noexcept { return items_.front().c; }
    /// The best fit ever merged (perfect first, then table score, then complexity), even if since dropped.
    [[nodiscard]] const std::optional<candidate>& best_fit() const noexcept { return best_fit_; }
    /// Candidate i in rank order (0 is the best).
    [[nodiscard]] const candidate& operator[](std::size_t i) const noexcept { return items_[i].c; }

private:
    struct entry {
        candidate c;
        std::uint64_t order;
        bool visited;
    };
    metapopulation_params params_;
    std::vector<entry> items_;
    std::unordered_set<program, program_hash> members_;
    // Every exemplar ever used, so that a program dropped and found again is not expanded again.
    std::unordered_set<program, program_hash> visited_;
    std::optional<candidate> best_fit_;
    std::uint64_t next_order_ = 0;
};

}  // namespace cogqat::cog::moses
