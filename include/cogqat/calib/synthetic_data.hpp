#pragma once
// Data-free calibration inputs: token sequences and hidden states made up from a seed and from the model's
// own weights, so that activation ranges can be calibrated without any text. Nothing here reads a file.
//
// Reproducibility: the generator (xoshiro256** seeded through splitmix64) and the conversions to uniform,
// Gaussian (Box-Muller) and Laplace (inverse distribution function) values are written out below rather than
// taken from <random>, whose distributions use different algorithms in different standard libraries. A seed
// gives the same integers everywhere; the real-valued samples are the same up to the last-ulp accuracy of
// the platform's std::log, std::cos and std::sqrt.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/random.hpp"

namespace cogqat {

/// The random numbers of data-free calibration.
using calibration_rng = xoshiro256;

// ------------------------------------------------------------------------------------------ random tokens

/// `count` sequences of `length` tokens each (BOS included): BOS, then ids drawn uniformly from
/// [0, vocab_size) less `never` (sorted: the vocabulary's special tokens, special_token_ids); with `never`
/// empty, less SentencePiece's control tokens 0..2 (<unk>, <s>, </s>).
///
/// Sequence s is drawn from its own generator, seeded from (seed, s), so it does not depend on `count`, and
/// a longer `length` extends each sequence: a smaller call gives a prefix of a larger one.
/// Throws invalid_argument_error when no id is left to draw, when length is 0 (no room for BOS), or when bos
/// is not an id of the vocabulary.
[[nodiscard]] inline std::vector<std::vector<std::int32_t>> random_token_sequences(std::size_t count, std::size_t length,
                                                                                   std::uint32_t vocab_size, std::uint64_t seed,
                                                                                   std::int32_t bos = 1,
                                                                                   std::span<const std::int32_t> never = {}) {
    constexpr const char* context = "random_token_sequences";
    if (never.empty() && vocab_size <= 3) {
        throw invalid_argument_error(std::string(context) + ": the vocabulary needs more than the 3 control tokens, got vocab_size " +
                                     std::to_string(vocab_size));
    }
    if (vocab_size > static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max())) {
        throw invalid_argument_error(std::string(context) + ": vocab_size " + std::to_string(vocab_size) + " does not fit a token id");
    }
    if (length == 0) throw invalid_argument_error(std::string(context) + ": length must be at least 1 (the BOS token)");
    if (bos < 0 || static_cast<std::uint32_t>(bos) >= vocab_size) {
        throw invalid_argument_error(std::string(context) + ": bos " + std::to_string(bos) + " is not in [0, " +
                                     std::to_string(vocab_size) + ")");
    }
    if (!std::is_sorted(never.begin(), never.end()))
        throw invalid_argument_error(std::string(context) + ": the ids never drawn must be sorted ascending");
    // The ids drawn from, ascending: with SentencePiece's 0..2 skipped this is 3 + below(vocab_size - 3), the
    // draws of every release before `never`.
    std::vector<std::int32_t> text;
    text.reserve(vocab_size);
    for (std::uint32_t id = 0; id < vocab_size; ++id)
        if (never.empty() ? id >= 3 : !std::binary_search(never.begin(), never.end(), static_cast<std::int32_t>(id)))
            text.push_back(static_cast<std::int32_t>(id));
    if (text.empty() && length > 1)
        throw invalid_argument_error(std::string(context) + ": every one of the " + std::to_string(vocab_size) +
                                     " ids is a special token: none is left to draw");
    std::vector<std::vector<std::int32_t>> sequences(count);
    for (std::size_t s = 0; s < count; ++s) {
        std::uint64_t mix = seed ^ (0xd1b54a32d192ed03ull * (static_cast<std::uint64_t>(s) + 1));
        calibration_rng random(calibration_rng::splitmix64(mix));
        auto& tokens = sequences[s];
        tokens.reserve(length);
        tokens.push_back(bos);
        for (std::size_t t = 1; t < length; ++t) tokens.push_back(text[random.below(text.size())]);
    }
    return sequences;
}

// ------------------------------------------------------------------------------- embedding statistics

/// Per-channel moments: mean[c] and variance[c] for channel c.
struct channel_statistics {
    std::vector<double> mean;
    std::vector<double> variance;
};

/// Mean and population variance (divided by rows, not rows - 1: the moments of the table itself) of every
/// channel of a row-major (rows x dim) embedding table, one row per token (GGUF's token_embd, ne = {dim,
/// vocab}). Two passes in double.
/// Throws shape_error when rows or dim is 0 or table does not hold rows * dim values, value_error (with the
/// index) on a NaN or an infinity.
[[nodiscard]] inline channel_statistics embedding_statistics(std::span<const float> table, std::size_t rows, std::size_t dim) {
    constexpr const char* context = "embedding_statistics";
    if (rows == 0 || dim == 0) {
        throw shape_error(std::string(context) + ": the table needs at least one row and one channel, got " + std::to_string(rows) + " x " +
                          std::to_string(dim));
    }
    if (rows > std::numeric_limits<std::size_t>::max() / dim || table.size() != rows * dim) {
        throw shape_error(std::string(context) + ": a " + std::to_string(rows) + " x " + std::to_string(dim) + " table cannot hold " +
                          std::to_string(table.size()) + " values");
    }
    for (std::size_t i = 0; i < table.size(); ++i) {
        if (!std::isfinite(table[i])) {
            throw value_error(std::string(context) + ": table[" + std::to_string(i) + "] (row " + std::to_string(i / dim) + ", channel " +
                                      std::to_string(i % dim) + ") is not finite",
                              i);
        }
    }
    channel_statistics stats{std::vector<double>(dim, 0.0), std::vector<double>(dim, 0.0)};
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < dim; ++c) stats.mean[c] += static_cast<double>(table[r * dim + c]);
    for (auto& m : stats.mean) m /= static_cast<double>(rows);
    for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t c = 0; c < dim; ++c) {
            const double d = static_cast<double>(table[r * dim + c]) - stats.mean[c];
            stats.variance[c] += d * d;
        }
    }
    for (auto& v : stats.variance) v /= static_cast<double>(rows);
    return stats;
}

// ------------------------------------------------------------------------------------ hidden states

/// The shape of the synthetic hidden-state distribution of each channel.
enum class hidden_distribution {
    gaussian,  ///< normal: excess kurtosis 0
    laplace,   ///< double exponential with scale b = sqrt(variance / 2): excess kurtosis 3, heavier tails
};

/// `count` synthetic hidden states of dim = stats.mean.size() channels, row-major (count x dim): value c of
/// every row is mean[c] + sqrt(variance[c]) * z for a standard Gaussian z, or mean[c] + b * l with
/// b = sqrt(variance[c] / 2) and l a standard Laplace value, so each channel has the requested mean and
/// variance. Drawn row by row from one generator: a smaller count gives a prefix of a larger one.
/// Throws shape_error when mean and variance differ in length or are empty (or count * dim overflows),
/// value_error (with the channel) when a mean is not finite or a variance is negative or not finite.
[[nodiscard]] inline std::vector<float> sample_hidden_states(const channel_statistics& stats, std::size_t count,
                                                             hidden_distribution distribution, std::uint64_t seed) {
    constexpr const char* context = "sample_hidden_states";
    const std::size_t dim = stats.mean.size();
    if (stats.variance.size() != dim) {
        throw shape_error(std::string(context) + ": " + std::to_string(dim) + " means but " + std::to_string(stats.variance.size()) +
                          " variances");
    }
    if (dim == 0) throw shape_error(std::string(context) + ": the statistics have no channels");
    if (count > std::numeric_limits<std::size_t>::max() / dim) {
        throw shape_error(std::string(context) + ": " + std::to_string(count) + " x " + std::to_string(dim) + " values overflow");
    }
    std::vector<double> spread(dim);
    for (std::size_t c = 0; c < dim; ++c) {
        if (!std::isfinite(stats.mean[c])) {
            throw value_error(std::string(context) + ": mean[" + std::to_string(c) + "] is not finite", c);
        }
        if (!std::isfinite(stats.variance[c]) || stats.variance[c] < 0.0) {
            throw value_error(std::string(context) + ": variance[" + std::to_string(c) + "] is not a finite non-negative number", c);
        }
        spread[c] = distribution == hidden_distribution::laplace ? std::sqrt(stats.variance[c] / 2.0) : std::sqrt(stats.variance[c]);
    }
    calibration_rng random(seed);
    std::vector<float> states(count * dim);
    for (std::size_t r = 0; r < count; ++r) {
        for (std::size_t c = 0; c < dim; ++c) {
            const double z = distribution == hidden_distribution::laplace ? random.laplace() : random.gaussian();
            states[r * dim + c] = static_cast<float>(stats.mean[c] + spread[c] * z);
        }
    }
    return states;
}

}  // namespace cogqat
