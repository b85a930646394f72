#pragma once
// Deme optimization: hill climbing over the knob settings of one representation, as MOSES's default
// optimizer does it. From the centre instance (first the exemplar), the whole neighbourhood at Hamming
// distance 1 is scored (sampled when larger than max_nn_evals); the best neighbour becomes the centre when it
// beats the centre by more than min_score_improvement. When the neighbourhood is large, the step after a
// scan instead crosses the best instances of that scan over each other (the best with each of the next,
// then pairs, then triples of the top ones), which combines independent improvements at a fraction of the
// cost of a new scan. A climb with no improvement gets one such crossover as a last chance, then stops.
//
// A discrete knob's neighbours are its other settings; a constant knob's are its value plus or minus
// step, step/2, ..., and one more kind of neighbour rounds every constant at once to a multiple of one of
// those steps. An instance already scored in the deme is not scored (nor counted) again.
//
// Instances are proposed one at a time but scored a chunk at a time, on a thread pool when one is given;
// they are recorded in the order proposed, so the climb is the same at any thread count.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cogqat/cog/moses/random.hpp"
#include "cogqat/cog/moses/representation.hpp"
#include "cogqat/cog/moses/scoring.hpp"
#include "cogqat/cog/moses/value_policy.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/parallel.hpp"

namespace cogqat::cog::moses {

/// Parameters of the hill climber; the defaults are MOSES's.
struct hill_climbing_params {
    /// Cross the top instances of a scan over each other when the neighbourhood is large.
    bool crossover = true;
    /// Instances one crossover step makes: a third each from the top one, two and three.
    std::size_t crossover_pop_size = 120;
    /// Neighbourhoods at least this large use crossover after the first full scan.
    std::size_t crossover_min_neighbors = 400;
    /// Most instances scored in one step; a larger neighbourhood is sampled.
    std::size_t max_nn_evals = 20000;
    /// The centre moves only for a penalized-score gain above this (MOSES: 0.5, half a wrong row).
    double min_score_improvement = 0.5;
    /// Keep searching at growing distances instead of stopping on a hilltop.
    bool widen_search = false;
    /// Largest distance a widening search reaches.
    std::size_t max_distance = 4;
};

/// One point of a representation's search space: a setting per discrete knob and the constant values,
/// stored by the value policy (values holds them decoded, which is what evaluation sees).
template <ValuePolicy V>
struct instance {
    std::vector<std::uint8_t> settings;
    typename V::storage_type stored;
    std::vector<float> values;
};

/// An instance with its score; `order` is when it was scored, the tie-break that keeps runs reproducible.
template <ValuePolicy V>
struct scored_instance {
    instance<V> inst;
    composite_score score;
    std::uint64_t order = 0;
};

/// What a deme leaves behind.
template <ValuePolicy V>
struct deme_result {
    /// The best instances by penalized score, best first (at most the `keep` asked for).
    std::vector<scored_instance<V>> best;
    /// The instance with the best table score (perfect first), which `best` may lack when it is complex.
    std::optional<scored_instance<V>> best_fit;
    std::size_t evaluations = 0;
    std::size_t steps = 0;
    bool perfect = false;
};

namespace detail::hc {

/// FNV-1a over 8-byte words (then the tail bytes): instances are hashed a million times in a long run.
inline std::uint64_t mix(std::uint64_t h, const void* data, std::size_t n) noexcept {
    const auto* p = static_cast<const unsigned char*>(data);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w = 0;
        std::memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 32;
    }
    for (; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/// Identity of an instance: its settings and the constant values evaluation sees. Two instances with the
/// same hash are taken to be the same, and the second is not scored; with 64 bits a collision in a deme of
/// a million instances has a probability below 1e-7, and costs one instance.
template <ValuePolicy V>
std::uint64_t fingerprint(const instance<V>& x) noexcept {
    std::uint64_t h = mix(0xcbf29ce484222325ull, x.settings.data(), x.settings.size());
    return mix(h, x.values.data(), x.values.size() * sizeof(float));
}

/// Largest magnitude a constant knob may reach; beyond it a move is not made, so values stay finite.
inline constexpr float max_constant = 1.0e6f;

template <ValuePolicy V>
bool set_values(instance<V>& x) {
    for (const float v : x.values)
        if (!(std::fabs(v) <= max_constant)) return false;
    x.stored = V::store(x.values);
    V::load(x.stored, x.values);
    return true;
}

/// x with every knob where `reference` differs from `base` set as in `reference`.
template <ValuePolicy V>
void merge_into(instance<V>& x, const instance<V>& base, const instance<V>& reference) {
    for (std::size_t k = 0; k < x.settings.size(); ++k)
        if (reference.settings[k] != base.settings[k]) x.settings[k] = reference.settings[k];
    for (std::size_t j = 0; j < x.values.size(); ++j)
        if (reference.values[j] != base.values[j]) x.values[j] = reference.values[j];
}

/// A scorer that takes the index of the worker calling it (0 .. threads - 1) before the instance, so that
/// each worker can use buffers of its own.
template <class F>
concept worker_scorer = requires(F& f, std::size_t worker, std::span<const std::uint8_t> settings, std::span<const float> values) {
    { f(worker, settings, values) } -> std::convertible_to<composite_score>;
};

/// A scorer called with the instance alone, from one thread.
template <class F>
concept serial_scorer = requires(F& f, std::span<const std::uint8_t> settings, std::span<const float> values) {
    { f(settings, values) } -> std::convertible_to<composite_score>;
};

/// Instances proposed before they are scored together: enough to keep two or more workers busy for far
/// longer than handing out a loop costs, few enough that little is scored past a perfect instance. Fixed,
/// so that where a chunk ends does not depend on the thread count.
inline constexpr std::size_t score_chunk = 256;

}  // namespace detail::hc

/// Threads a pool gives a deme: 1 without a pool.
[[nodiscard]] inline unsigned threads_of(const thread_pool* pool) noexcept { return pool ? pool->size() : 1u; }

/// Climbs one deme. `score(settings, values)` scores an instance; at most `budget` instances are scored;
/// the run stops early on a perfect instance. `keep` is how many of the best instances to return. With a
/// `pool` of two or more threads, instances are scored on its threads and `score` must take the worker index
/// first, `score(worker, settings, values)`, and be safe to call from several threads with different
/// workers (invalid_argument_error otherwise); the result is the same for every thread count.
template <ValuePolicy V, class ScoreFn>
requires detail::hc::worker_scorer<ScoreFn> || detail::hc::serial_scorer<ScoreFn> deme_result<V> hill_climb(
        const representation& rep, ScoreFn&& score, std::size_t budget, rng& gen, const hill_climbing_params& params, std::size_t keep,
        thread_pool* pool = nullptr) {
    using inst_t = instance<V>;
    using scored_t = scored_instance<V>;
    if (params.max_nn_evals == 0) throw invalid_argument_error("hill_climb: max_nn_evals must be positive");
    if (threads_of(pool) > 1 && !detail::hc::worker_scorer<ScoreFn>) {
        throw invalid_argument_error("hill_climb: a pool of " + std::to_string(threads_of(pool)) +
                                     " threads needs a scorer that takes the worker index, score(worker, settings, values)");
    }

    deme_result<V> result;
    const std::size_t n_knobs = rep.discrete_knobs().size();
    const std::size_t n_constants = rep.constant_count();
    const std::vector<float> moves = rep.constant_moves();
    // Snap moves round every constant at once to a multiple of one of the step sizes: single moves cannot
    // reach 1 from 1.03 when the constants of a quantization group are tied to a shared scale, and exact
    // simple constants are what the reduct can fold away.
    std::vector<float> snaps;
    if (n_constants > 0)
        for (std::size_t i = 0; i < moves.size(); i += 2) snaps.push_back(moves[i]);
    const std::size_t constant_neighbours = n_constants * moves.size();
    const std::size_t neighbours = [&] {
        std::size_t n = constant_neighbours + snaps.size();
        for (const auto& k : rep.discrete_knobs()) n += k.count - 1u;
        return n;
    }();
    const std::size_t max_distance = std::min(params.max_distance, n_knobs + n_constants);
    // Crossover reads at most the top 1 + third instances of a step (cross_top_one), fewer for pairs and
    // triples; only those are kept whole.
    const std::size_t batch_keep = std::max<std::size_t>(3, params.crossover_pop_size / 3 + 1);

    std::unordered_set<std::uint64_t> seen;
    std::uint64_t order = 0;
    auto better_scored = [](const scored_t& a, const scored_t& b) {
        if (better(a.score, b.score)) return true;
        if (better(b.score, a.score)) return false;
        return a.order < b.order;
    };
    auto ranks_in = [&](const std::vector<scored_t>& list, std::size_t cap, const composite_score& cs) {
        if (cap == 0) return false;
        if (list.size() < cap) return true;
        return better(cs, list.back().score);  // a tie loses to the earlier instance
    };
    auto insert_into = [&](std::vector<scored_t>& list, std::size_t cap, const scored_t& s) {
        list.insert(std::upper_bound(list.begin(), list.end(), s, better_scored), s);
        if (list.size() > cap) list.pop_back();
    };

    // The best instances of the current step, best first.
    std::vector<scored_t> batch;
    // Records a scored instance; copies it only where it is kept.
    auto record = [&](const inst_t& x, const composite_score& cs) {
        ++result.evaluations;
        result.perfect = result.perfect || cs.perfect;
        const bool fit = !result.best_fit || better_fit(cs, result.best_fit->score);
        const bool best = ranks_in(result.best, keep, cs);
        const bool top = ranks_in(batch, batch_keep, cs);
        if (!fit && !best && !top) return;
        const scored_t s{x, cs, order++};
        if (fit) result.best_fit = s;
        if (best) insert_into(result.best, keep, s);
        if (top) insert_into(batch, batch_keep, s);
    };
    // Instances wait in `pending` and are scored a chunk at a time (on the pool's threads when there is one),
    // then recorded in the order they were proposed. Proposal, which draws the random numbers, and recording,
    // which decides everything that follows, are serial, so the run does not depend on the thread count.
    std::vector<inst_t> pending;
    std::vector<composite_score> pending_scores;
    auto flush = [&] {
        const std::size_t n = pending.size();
        if (n == 0) return;
        pending_scores.resize(n);
        auto score_range = [&](std::size_t worker, std::size_t begin, std::size_t end) {
            for (std::size_t i = begin; i < end; ++i) {
                const auto settings = std::span<const std::uint8_t>(pending[i].settings);
                const auto values = std::span<const float>(pending[i].values);
                if constexpr (detail::hc::worker_scorer<ScoreFn>)
                    pending_scores[i] = score(worker, settings, values);
                else
                    pending_scores[i] = score(settings, values);
            }
        };
        const std::size_t workers = threads_of(pool) > 1 ? std::min<std::size_t>(threads_of(pool), n) : 1;
        if (workers > 1) {
            // One range per worker: range w is scored with worker w's buffers.
            pool->parallel_for(workers, [&](std::size_t begin, std::size_t end) {
                for (std::size_t w = begin; w < end; ++w) score_range(w, n * w / workers, n * (w + 1) / workers);
            });
        } else {
            score_range(0, 0, n);
        }
        // A perfect instance ends the deme: those proposed after it are neither recorded nor counted, as a
        // serial scan would not have scored them.
        for (std::size_t i = 0; i < n && !result.perfect; ++i) record(pending[i], pending_scores[i]);
        pending.clear();
    };
    // Proposes x unless it was seen before or the budget is spent.
    auto consider = [&](const inst_t& x) {
        if (result.evaluations + pending.size() >= budget || result.perfect) return;
        if (!seen.insert(detail::hc::fingerprint(x)).second) return;
        pending.push_back(x);
        if (pending.size() >= detail::hc::score_chunk) flush();
    };

    // The centre: the exemplar.
    inst_t centre;
    centre.settings.assign(n_knobs, 0);
    centre.values.assign(rep.initial_constants().begin(), rep.initial_constants().end());
    if (!detail::hc::set_values(centre)) {
        throw invalid_argument_error("hill_climb: an exemplar constant exceeds " + std::to_string(detail::hc::max_constant) +
                                     " in magnitude");
    }
    consider(centre);
    flush();
    if (batch.empty()) return result;
    double best_score = batch.front().score.penalized;
    std::vector<scored_t> previous = std::move(batch);
    inst_t previous_centre = centre;

    // Scores neighbour i of the distance-1 neighbourhood of `centre`, changing `work` (a copy of the
    // centre) and restoring it afterwards.
    inst_t work = centre;
    auto consider_neighbour = [&](std::size_t i) {
        std::size_t changed = n_knobs;
        std::uint8_t old = 0;
        bool values_changed = false;
        for (std::size_t k = 0; k < n_knobs && changed == n_knobs; ++k) {
            const std::size_t alternatives = rep.discrete_knobs()[k].count - 1u;
            if (i < alternatives) {
                old = work.settings[k];
                work.settings[k] = static_cast<std::uint8_t>((old + 1 + i) % rep.discrete_knobs()[k].count);
                changed = k;
            } else {
                i -= alternatives;
            }
        }
        if (changed == n_knobs) {
            if (i < constant_neighbours) {
                work.values[i / moves.size()] += moves[i % moves.size()];
            } else {
                const float unit = snaps[i - constant_neighbours];
                for (float& v : work.values) v = unit * std::round(v / unit);
            }
            values_changed = true;
            if (detail::hc::set_values(work)) consider(work);
        } else {
            consider(work);
        }
        if (changed < n_knobs) work.settings[changed] = old;
        if (values_changed) {
            work.values = centre.values;
            work.stored = centre.stored;
        }
    };

    // One neighbour of `from` at the given Hamming distance, drawn at random.
    auto random_neighbour = [&](const inst_t& from, std::size_t distance) {
        inst_t x = from;
        const std::size_t positions = n_knobs + n_constants;
        std::vector<std::size_t> picked;
        while (picked.size() < std::min(distance, positions)) {
            const std::size_t p = static_cast<std::size_t>(gen.below(positions));
            if (std::find(picked.begin(), picked.end(), p) != picked.end()) continue;
            picked.push_back(p);
            if (p < n_knobs) {
                const std::uint8_t count = rep.discrete_knobs()[p].count;
                const auto step = static_cast<std::uint8_t>(1 + gen.below(count - 1u));
                x.settings[p] = static_cast<std::uint8_t>((x.settings[p] + step) % count);
            } else {
                x.values[p - n_knobs] += moves[static_cast<std::size_t>(gen.below(moves.size()))];
            }
        }
        return x;
    };

    // Crosses the top instances of the previous step over each other: the best with each of the next, then
    // pairs, then triples (walking the simplex of the top ones), each carrying its changes from `base`.
    auto crossover = [&](const std::vector<scored_t>& sample, const inst_t& base) {
        const std::size_t n = sample.size();
        const std::size_t third = params.crossover_pop_size / 3;
        auto emit = [&](inst_t x) {
            if (detail::hc::set_values(x)) consider(x);
        };
        for (std::size_t i = 1; i < n && i <= third; ++i) {
            inst_t x = sample[i].inst;
            detail::hc::merge_into(x, base, sample[0].inst);
            emit(std::move(x));
        }
        std::size_t made = 0;
        for (std::size_t i = 1; i < n && made < third; ++i) {
            for (std::size_t j = 0; j < i && made < third; ++j, ++made) {
                inst_t x = sample[j].inst;
                detail::hc::merge_into(x, base, sample[i].inst);
                emit(std::move(x));
            }
        }
        made = 0;
        for (std::size_t i = 2; i < n && made < third; ++i) {
            for (std::size_t j = 1; j < i && made < third; ++j) {
                for (std::size_t k = 0; k < j && made < third; ++k, ++made) {
                    inst_t x = sample[k].inst;
                    detail::hc::merge_into(x, base, sample[i].inst);
                    detail::hc::merge_into(x, base, sample[j].inst);
                    emit(std::move(x));
                }
            }
        }
    };

    std::size_t distance = 1;
    std::size_t iteration = 1;
    bool already_crossed = false;
    bool last_chance = false;
    while (result.evaluations < budget && !result.perfect) {
        ++iteration;
        const std::size_t left = budget - result.evaluations;
        const bool crossing = params.crossover && iteration > 2 && !already_crossed && previous.size() >= 3 &&
                              (neighbours >= params.crossover_min_neighbors || last_chance);
        batch.clear();
        if (crossing) {
            crossover(previous, previous_centre);
            already_crossed = true;
        } else if (distance == 1 && neighbours <= std::min(params.max_nn_evals, left)) {
            for (std::size_t i = 0; i < neighbours; ++i) consider_neighbour(i);
        } else if (distance == 1) {
            // Too many to score them all: a random subset, without repeats.
            const std::size_t n = std::min(params.max_nn_evals, left);
            std::vector<std::size_t> index(neighbours);
            for (std::size_t i = 0; i < neighbours; ++i) index[i] = i;
            for (std::size_t i = 0; i < n; ++i) {
                std::swap(index[i], index[i + static_cast<std::size_t>(gen.below(neighbours - i))]);
                consider_neighbour(index[i]);
            }
        } else {
            const std::size_t n = std::min({params.max_nn_evals, left, std::max<std::size_t>(100, neighbours * distance)});
            for (std::size_t i = 0; i < n; ++i) {
                inst_t x = random_neighbour(centre, distance);
                if (detail::hc::set_values(x)) consider(x);
            }
        }
        flush();
        ++result.steps;

        const double previous_high = best_score;
        previous_centre = centre;
        bool improved = false;
        if (!batch.empty()) {
            if (batch.front().score.penalized > best_score) best_score = batch.front().score.penalized;
            improved = best_score > previous_high + params.min_score_improvement;
            if (improved) {
                centre = batch.front().inst;
                work = centre;
            }
            previous = std::move(batch);
        }
        if (improved) {
            distance = 1;
            already_crossed = false;
        } else if (!crossing) {
            ++distance;
        }
        if (result.evaluations >= budget || result.perfect) break;

        if (params.crossover) {
            if (!improved && !last_chance && !already_crossed && (!params.widen_search || max_distance < distance)) {
                last_chance = true;
                continue;
            }
            last_chance = false;
        }
        if (max_distance < distance) break;
        if (!improved && !params.widen_search) break;
    }
    return result;
}

}  // namespace cogqat::cog::moses
