#pragma once
// Data-free calibration: inputs made from the model alone (no text is read), the full-precision model's
// own outputs on them, and the second moments of every matrix's inputs, which the Hessian-aware
// quantizer (quant/gptq.hpp) and the sensitivity analysis (qat/) consume.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cogqat/calib/second_moments.hpp"
#include "cogqat/calib/synthetic_data.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/core/random.hpp"
#include "cogqat/model/evaluate.hpp"
#include "cogqat/model/llama_model.hpp"
#include "cogqat/model/llama_schema.hpp"

namespace cogqat {

/// Where calibration inputs come from.
enum class calibration_source {
    self_generated,  ///< token sequences the full-precision model writes itself (greedy start, then sampled)
    random_tokens,   ///< uniformly random token ids after BOS
    hidden_states,   ///< input vectors drawn per channel from the embedding table's mean and variance
};

[[nodiscard]] inline calibration_source parse_calibration_source(std::string_view name) {
    if (name == "self") return calibration_source::self_generated;
    if (name == "random") return calibration_source::random_tokens;
    if (name == "stats") return calibration_source::hidden_states;
    throw invalid_argument_error("unknown calibration source '" + std::string(name) + "' (self, random or stats)");
}
[[nodiscard]] constexpr std::string_view name_of(calibration_source s) noexcept {
    switch (s) {
        case calibration_source::self_generated:
            return "self";
        case calibration_source::random_tokens:
            return "random";
        case calibration_source::hidden_states:
            return "stats";
    }
    return "?";
}

struct calibration_options {
    calibration_source source = calibration_source::self_generated;
    std::size_t tokens = 2048;          ///< positions in all
    std::size_t sequence_length = 128;  ///< positions per sequence (capped by the model's context)
    std::uint64_t seed = 1;
    std::size_t greedy_tokens = 1;                                     ///< self_generated: tokens picked greedily after BOS before sampling
    float temperature = 1.0f;                                          ///< self_generated: sampling temperature
    hidden_distribution distribution = hidden_distribution::gaussian;  ///< hidden_states
    unsigned threads = 0;
    /// self_generated: told (tokens written, tokens in all) as the model writes them, after each step of the
    /// sequences written together. A large model takes a while per step: this is the phase's progress.
    std::function<void(std::size_t, std::size_t)> on_tokens;
};

/// The options for `sequences` sequences of `length` positions that the model writes itself.
[[nodiscard]] inline calibration_options self_generated_sequences(std::size_t sequences, std::size_t length, std::uint64_t seed,
                                                                  unsigned threads) {
    calibration_options o;
    o.source = calibration_source::self_generated;
    o.sequence_length = length;
    o.tokens = sequences * length;
    o.seed = seed;
    o.threads = threads;
    return o;
}

/// One calibration sequence: token ids, or (hidden_states) length x dim input vectors.
struct calibration_sequence {
    std::vector<std::int32_t> tokens;
    std::vector<float> inputs;
    std::size_t length = 0;
};

struct calibration_set {
    calibration_source source = calibration_source::self_generated;
    std::vector<calibration_sequence> sequences;
    [[nodiscard]] std::size_t positions() const noexcept {
        std::size_t n = 0;
        for (const auto& s : sequences) n += s.length;
        return n;
    }
};

namespace detail {

/// Samples from softmax(logits / temperature) by inverting the CDF.
inline std::int32_t sample_token(std::span<const float> logits, float temperature, xoshiro256& random) {
    double max = -INFINITY;
    for (float v : logits) max = std::max(max, static_cast<double>(v));
    std::vector<double> p(logits.size());
    double sum = 0.0;
    for (std::size_t i = 0; i < logits.size(); ++i) sum += p[i] = std::exp((static_cast<double>(logits[i]) - max) / temperature);
    double u = random.uniform() * sum;
    for (std::size_t i = 0; i < p.size(); ++i)
        if ((u -= p[i]) <= 0.0) return static_cast<std::int32_t>(i);
    return static_cast<std::int32_t>(p.size() - 1);
}

/// The token sequences the model writes from its BOS, one per seed: `greedy` argmax tokens, then sampled
/// ones; an EOS starts a new text (BOS), as the model saw texts in training. The sequences are written
/// together, a lane each of one session, so that each step reads the model once for all of them; each is the
/// sequence a session of its own writes, token for token.
template <class OnStep>
std::vector<std::vector<std::int32_t>> self_generated_sequences(const llama_model& model, std::size_t length, std::size_t greedy,
                                                                float temperature, std::span<const std::uint64_t> seeds, unsigned threads,
                                                                OnStep&& on_step) {
    const std::size_t lanes = seeds.size();
    llama_session session(model, length, activation_mode::float32, threads, lanes);
    std::vector<xoshiro256> random;
    for (const auto seed : seeds) random.emplace_back(seed);
    std::vector<std::vector<std::int32_t>> sequences(lanes, std::vector<std::int32_t>{model.bos_id});
    std::vector<std::size_t> since_start(lanes, 0);
    std::vector<std::int32_t> last(lanes, model.bos_id);
    const std::size_t vocab = model.config.vocab_size;
    for (std::size_t pos = 0; pos + 1 < length; ++pos) {
        const auto logits = session.forward_lanes(last, pos);
        for (std::size_t l = 0; l < lanes; ++l) {
            const auto row = logits.subspan(l * vocab, vocab);
            std::int32_t next =
                    since_start[l] < greedy ? static_cast<std::int32_t>(argmax(row)) : sample_token(row, temperature, random[l]);
            ++since_start[l];
            if (next == model.eos_id) next = model.bos_id, since_start[l] = 0;  // EOS: a new text begins
            sequences[l].push_back(next);
            last[l] = next;
        }
        on_step();
    }
    return sequences;
}

}  // namespace detail

/// Builds `options.tokens` positions of calibration input from `model` alone.
[[nodiscard]] inline calibration_set make_calibration_set(const llama_model& model, const calibration_options& options) {
    const auto& c = model.config;
    // Sequences as long as asked, but no longer than the model's context or the whole budget of positions.
    const std::size_t length =
            std::min({options.sequence_length, c.context_length ? std::size_t{c.context_length} : options.sequence_length, options.tokens});
    if (length < 2)
        throw invalid_argument_error("calibration needs sequences of at least 2 positions (asked: " + std::to_string(options.tokens) +
                                     " positions, sequences of " + std::to_string(options.sequence_length) + ")");
    if (options.source == calibration_source::self_generated && !(options.temperature > 0.0f))
        throw invalid_argument_error("calibration sampling temperature must be positive");
    for (const auto& [id, role] : {std::pair{model.bos_id, "BOS"}, std::pair{model.eos_id, "EOS"}})
        if (options.source != calibration_source::hidden_states && (id < 0 || static_cast<std::uint32_t>(id) >= c.vocab_size))
            throw invalid_argument_error(std::string("calibration: the model's ") + role + " id " + std::to_string(id) +
                                         " is not one of its " + std::to_string(c.vocab_size) + " tokens");
    const std::size_t count = options.tokens / length;
    calibration_set set;
    set.source = options.source;
    set.sequences.resize(count);
    switch (options.source) {
        case calibration_source::self_generated: {
            // Lanes of a session: up to 32 sequences at a time share each read of the model (the caches grow with
            // the lanes: 185 MB for 32 lanes of 128 positions at TinyLlama's shape).
            constexpr std::size_t most_lanes = 32;
            std::size_t written = 0;
            for (std::size_t first = 0; first < count; first += most_lanes) {
                const std::size_t lanes = std::min(most_lanes, count - first);
                std::vector<std::uint64_t> seeds(lanes);
                for (std::size_t l = 0; l < lanes; ++l) seeds[l] = options.seed * 1000003u + first + l;
                // The first position (BOS) is not written by the model, but it is done.
                written += lanes;
                auto sequences = detail::self_generated_sequences(model, length, options.greedy_tokens, options.temperature, seeds,
                                                                  options.threads, [&] {
                                                                      written += lanes;
                                                                      if (options.on_tokens) options.on_tokens(written, count * length);
                                                                  });
                for (std::size_t l = 0; l < lanes; ++l) set.sequences[first + l] = {std::move(sequences[l]), {}, length};
            }
            break;
        }
        case calibration_source::random_tokens: {
            auto sequences = random_token_sequences(count, length, c.vocab_size, options.seed, model.bos_id, model.special_tokens);
            for (std::size_t s = 0; s < count; ++s) set.sequences[s] = {std::move(sequences[s]), {}, length};
            break;
        }
        case calibration_source::hidden_states: {
            const std::vector<float> table = dequantize(model.token_embedding.type, model.token_embedding.bytes());
            const auto stats = embedding_statistics(table, model.token_embedding.rows, c.dim);
            for (std::size_t s = 0; s < count; ++s)
                set.sequences[s] = {{}, sample_hidden_states(stats, length, options.distribution, options.seed * 1000003u + s), length};
            break;
        }
    }
    return set;
}

/// Runs `model` over one calibration sequence, calling visit(position, logits) at each position. A token
/// sequence goes through as one batch (each weight row read once for all its positions, the logits those of
/// one position at a time, bit for bit); hidden-state inputs go one position at a time.
template <class Visit>
void run_sequence(llama_session& session, const calibration_sequence& sequence, std::size_t dim, Visit&& visit) {
    if (!sequence.tokens.empty() && sequence.length > 0) {
        const auto logits = session.forward_batch(std::span<const std::int32_t>(sequence.tokens).first(sequence.length), 0, true);
        const std::size_t vocab = logits.size() / sequence.length;
        for (std::size_t p = 0; p < sequence.length; ++p) visit(p, logits.subspan(p * vocab, vocab));
        return;
    }
    for (std::size_t p = 0; p < sequence.length; ++p)
        visit(p, session.forward_embedding(std::span<const float>(sequence.inputs).subspan(p * dim, dim), p));
}

/// The full-precision model's answers on a calibration set: log-probabilities at every position, and the
/// token each position is scored on (the next token of a token sequence; the teacher's own argmax for
/// hidden-state inputs and at the last position).
/// With `top_k` set, each position keeps only its k most likely tokens and the probability of all the others
/// (a large vocabulary's rows at every position would dominate memory: 4,096 positions x 32,000 tokens is
/// 524 MB, their top 64 about 2 MB).
struct teacher_outputs {
    std::size_t vocab = 0;
    std::size_t top_k = 0;                 ///< 0: log_probs holds whole rows
    std::vector<float> log_probs;          ///< positions x vocab; with top_k, positions x top_k (most likely first)
    std::vector<std::int32_t> top_tokens;  ///< with top_k: positions x top_k, the tokens of log_probs
    std::vector<double> rest;              ///< with top_k: per position, the probability of the tokens not kept
    std::vector<std::int32_t> argmax;      ///< per position
    std::vector<std::int32_t> targets;     ///< per position
    double nll = 0.0;                      ///< the teacher's mean NLL of the targets
};

/// Second moments H = sum x x^T of the inputs of every matrix, by tensor name (cols x cols, row-major).
/// Matrices that read the same input (a layer's Q, K and V; its gate and up) share one H: the same sums.
struct input_moments {
    std::map<std::string, std::shared_ptr<const std::vector<double>>, std::less<>> second_moment;
    std::size_t samples = 0;
    [[nodiscard]] const std::vector<double>* find(std::string_view name) const {
        const auto it = second_moment.find(name);
        return it == second_moment.end() ? nullptr : it->second.get();
    }
};

/// For each matrix that reads the same input as another one before it in a layer (K and V read Q's, up reads
/// gate's), that other one: its input second moments are the first one's, bit for bit.
[[nodiscard]] inline std::map<const weight_matrix*, const weight_matrix*> same_input_matrices(const llama_model& m) {
    std::map<const weight_matrix*, const weight_matrix*> first_reader;
    for (const auto& layer : m.layers) {
        first_reader[&layer.wk] = first_reader[&layer.wv] = &layer.wq;
        first_reader[&layer.up] = &layer.gate;
    }
    return first_reader;
}

/// The model's matrices by GGUF tensor name (the classifier under token_embd.weight when tied).
[[nodiscard]] inline std::vector<std::pair<std::string, const weight_matrix*>> named_matrices(const llama_model& m) {
    std::vector<std::pair<std::string, const weight_matrix*>> out;
    for_each_llama_tensor(m.config, m.tied_output, [&](const tensor_schema& t, std::size_t layer) {
        visit_parameter_as<weight_matrix>(m, t.parameter, layer, [&](const weight_matrix& w) { out.emplace_back(t.gguf_name(layer), &w); });
    });
    return out;
}

namespace detail {

/// Keeps position `at`'s top_k most likely tokens of the full row `log_probs` (ties: the lower token first)
/// in t, and the probability of all the others.
inline void keep_top_k(std::span<const float> log_probs, std::vector<std::int32_t>& order, teacher_outputs& t, std::size_t at) {
    const std::size_t k = t.top_k;
    std::iota(order.begin(), order.end(), 0);
    const auto more_likely = [&](std::int32_t x, std::int32_t y) {
        const float a = log_probs[static_cast<std::size_t>(x)], b = log_probs[static_cast<std::size_t>(y)];
        return a > b || (a == b && x < y);
    };
    std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(), more_likely);
    std::sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), more_likely);
    double rest = 0.0;
    for (std::size_t v = k; v < order.size(); ++v) rest += std::exp(static_cast<double>(log_probs[static_cast<std::size_t>(order[v])]));
    for (std::size_t j = 0; j < k; ++j) {
        t.top_tokens[at * k + j] = order[j];
        t.log_probs[at * k + j] = log_probs[static_cast<std::size_t>(order[j])];
    }
    t.rest[at] = rest;
}

}  // namespace detail

/// Runs the full-precision `teacher` over `set` (float activations, threads over sequences): its outputs
/// (whole rows, or each position's `top_k` most likely tokens and the rest's mass), and, when `moments` is
/// given, the second moments of every matrix's inputs.
[[nodiscard]] inline teacher_outputs run_teacher(const llama_model& teacher, const calibration_set& set, unsigned threads = 0,
                                                 input_moments* moments = nullptr, std::size_t top_k = 0) {
    const auto& c = teacher.config;
    teacher_outputs t;
    t.vocab = c.vocab_size;
    t.top_k = top_k >= t.vocab ? 0 : top_k;
    const std::size_t positions = set.positions();
    t.log_probs.resize(positions * (t.top_k ? t.top_k : t.vocab));
    if (t.top_k) t.top_tokens.resize(positions * t.top_k), t.rest.resize(positions);
    std::vector<double> target_log_prob(positions);
    t.argmax.resize(positions), t.targets.resize(positions);
    std::vector<std::size_t> first(set.sequences.size());
    for (std::size_t s = 1; s < first.size(); ++s) first[s] = first[s - 1] + set.sequences[s - 1].length;

    const auto names = named_matrices(teacher);
    const auto first_reader = same_input_matrices(teacher);
    // Each range's sums are kept apart and added in range order afterwards, so H does not depend on which
    // thread finishes first (a rerun, or a resumed training run, sees the same bits).
    std::mutex merge;
    std::map<std::size_t, std::map<const weight_matrix*, std::vector<double>>> partial;
    parallel_for(set.sequences.size(), threads, [&](std::size_t begin, std::size_t end) {
        std::map<const weight_matrix*, std::vector<double>> local;
        // A matrix's inputs wait here until there are enough of them to add to H in cache-sized tiles (one
        // at a time, each would stream all of H through memory).
        std::map<const weight_matrix*, std::vector<float>> pending;
        constexpr std::size_t rows_per_add = 64;
        auto add_pending = [&](const weight_matrix* w, std::vector<float>& rows, std::size_t n) {
            auto& h = local[w];
            if (h.empty()) h.assign(n * n, 0.0);
            add_second_moments(h, rows, n, 1);
            rows.clear();
        };
        std::vector<float> row(t.top_k ? t.vocab : 0);
        std::vector<std::int32_t> order(row.size());
        for (std::size_t s = begin; s < end; ++s) {
            const auto& seq = set.sequences[s];
            llama_session session(teacher, seq.length, activation_mode::float32, 1);
            if (moments)
                session.observe_inputs([&](const weight_matrix& w, std::span<const float> x) {
                    if (first_reader.contains(&w)) return;  // the same input as a matrix already counted
                    auto& rows = pending[&w];
                    rows.insert(rows.end(), x.begin(), x.end());
                    if (rows.size() >= rows_per_add * x.size()) add_pending(&w, rows, x.size());
                });
            run_sequence(session, seq, c.dim, [&](std::size_t p, std::span<const float> logits) {
                const std::size_t at = first[s] + p;
                float* log_probs = t.top_k ? row.data() : t.log_probs.data() + at * t.vocab;
                detail::log_softmax(logits, log_probs);
                t.argmax[at] = static_cast<std::int32_t>(detail::argmax(logits));
                t.targets[at] = !seq.tokens.empty() && p + 1 < seq.length ? seq.tokens[p + 1] : t.argmax[at];
                target_log_prob[at] = log_probs[static_cast<std::size_t>(t.targets[at])];
                if (t.top_k) detail::keep_top_k(row, order, t, at);
            });
        }
        if (!moments) return;
        for (auto& [w, rows] : pending)
            if (!rows.empty()) add_pending(w, rows, w->cols);
        std::lock_guard lock(merge);
        partial[begin] = std::move(local);
    });
    if (moments) {
        // The first range's sums become the total (0 + h is h: a sum from +0 is never -0) and each later range's
        // are freed once added, so the merge holds no third copy.
        std::map<const weight_matrix*, std::vector<double>> totals;
        for (auto& [begin, local] : partial) {
            for (auto& [w, h] : local) {
                auto& total = totals[w];
                if (total.empty()) {
                    total = std::move(h);
                    continue;
                }
                for (std::size_t i = 0; i < h.size(); ++i) total[i] += h[i];
                h = {};
            }
        }
        std::map<const weight_matrix*, std::shared_ptr<const std::vector<double>>> shared;
        for (auto& [w, total] : totals) shared[w] = std::make_shared<const std::vector<double>>(std::move(total));
        for (const auto& [name, matrix] : names) {
            const auto reader = first_reader.find(matrix);
            const auto it = shared.find(reader == first_reader.end() ? matrix : reader->second);
            if (it != shared.end()) moments->second_moment[name] = it->second;
        }
    }
    double nll = 0.0;
    for (std::size_t at = 0; at < positions; ++at) nll -= target_log_prob[at];
    t.nll = positions ? nll / static_cast<double>(positions) : 0.0;
    if (moments) moments->samples = positions;
    return t;
}

/// How close a model stays to the teacher on the calibration set.
struct calibration_score {
    double kl = 0.0;         ///< mean KL(teacher || model) per position, nats
    double top1 = 0.0;       ///< fraction of positions where both argmax agree
    double nll = 0.0;        ///< the model's mean NLL of the teacher's targets
    double delta_nll = 0.0;  ///< nll - the teacher's
    /// exp(-max(0, delta_nll)): the teacher's perplexity over the model's on these targets (1 = no loss).
    [[nodiscard]] double retention() const noexcept { return std::exp(-std::max(0.0, delta_nll)); }
};

namespace detail {

/// KL(teacher || model) at position `at` from the teacher's whole row.
[[nodiscard]] inline double dense_kl(const teacher_outputs& teacher, std::size_t at, std::span<const float> logp) {
    const float* ref = teacher.log_probs.data() + at * teacher.vocab;
    double d = 0.0;
    for (std::size_t v = 0; v < teacher.vocab; ++v) d += std::exp(static_cast<double>(ref[v])) * (static_cast<double>(ref[v]) - logp[v]);
    return d;
}

/// The KL at position `at` between both distributions with every token outside the teacher's top k merged
/// into one outcome: Σ_top p (log p - log q) + p_rest (log p_rest - log q_rest). Merging outcomes never raises
/// a KL, and the tail a top 64 leaves holds little of it.
[[nodiscard]] inline double top_k_kl(const teacher_outputs& teacher, std::size_t at, std::span<const float> logp) {
    const std::size_t k = teacher.top_k;
    double d = 0.0, kept = 0.0;
    for (std::size_t j = 0; j < k; ++j) {
        const double ref = teacher.log_probs[at * k + j], mine = logp[static_cast<std::size_t>(teacher.top_tokens[at * k + j])];
        d += std::exp(ref) * (ref - mine);
        kept += std::exp(mine);
    }
    const double p_rest = teacher.rest[at], q_rest = std::max(1.0 - kept, 1e-300);
    if (p_rest > 0.0) d += p_rest * (std::log(p_rest) - std::log(q_rest));
    return d;
}

}  // namespace detail

/// Scores `model` against the teacher's outputs on the same calibration set (threads over sequences).
[[nodiscard]] inline calibration_score score_against_teacher(const llama_model& model, const calibration_set& set,
                                                             const teacher_outputs& teacher,
                                                             activation_mode mode = activation_mode::float32, unsigned threads = 0) {
    if (teacher.argmax.size() != set.positions() || teacher.vocab != model.config.vocab_size)
        throw invalid_argument_error("score_against_teacher: the teacher's outputs are not of this calibration set and vocabulary");
    std::vector<std::size_t> first(set.sequences.size());
    for (std::size_t s = 1; s < first.size(); ++s) first[s] = first[s - 1] + set.sequences[s - 1].length;
    std::vector<double> kl(set.sequences.size()), nll(set.sequences.size());
    std::vector<std::size_t> agree(set.sequences.size());
    parallel_for(set.sequences.size(), threads, [&](std::size_t begin, std::size_t end) {
        std::vector<float> logp(teacher.vocab);
        for (std::size_t s = begin; s < end; ++s) {
            llama_session session(model, set.sequences[s].length, mode, 1);
            run_sequence(session, set.sequences[s], model.config.dim, [&](std::size_t p, std::span<const float> logits) {
                const std::size_t at = first[s] + p;
                detail::log_softmax(logits, logp.data());
                kl[s] += teacher.top_k ? detail::top_k_kl(teacher, at, logp) : detail::dense_kl(teacher, at, logp);
                nll[s] -= logp[static_cast<std::size_t>(teacher.targets[at])];
                if (static_cast<std::int32_t>(detail::argmax(logits)) == teacher.argmax[at]) ++agree[s];
            });
        }
    });
    const double n = static_cast<double>(set.positions());
    calibration_score score;
    for (std::size_t s = 0; s < set.sequences.size(); ++s)
        score.kl += kl[s], score.nll += nll[s], score.top1 += static_cast<double>(agree[s]);
    score.kl /= n, score.nll /= n, score.top1 /= n;
    score.delta_nll = score.nll - teacher.nll;
    return score;
}

}  // namespace cogqat
