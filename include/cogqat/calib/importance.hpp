#pragma once
// The importance matrix of a model without text: for every matrix, the sum of x² over each input column and
// the number of input rows summed, gathered while the full-precision model reads calibration input it made
// itself (calibration_set.hpp). This is what llama.cpp's imatrix tool collects from a text file, and what the
// importance-weighted quantizers take as one weight per column (the sum divided by the count).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/calib/calibration_set.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/model/llama_model.hpp"

namespace cogqat {

/// One matrix's statistics, as an imatrix file stores them: `sums` holds Σx² of each input column for each
/// of `counts.size()` matrices (a dense matrix has one; a stack of experts one per expert), expert-major, and
/// `counts` the rows of x summed into each.
struct importance_entry {
    std::vector<float> sums;
    std::vector<float> counts;

    /// Input columns per matrix (0 for an empty entry).
    [[nodiscard]] std::size_t columns() const noexcept { return counts.empty() ? 0 : sums.size() / counts.size(); }
};

/// A whole importance matrix with the metadata of llama.cpp's imatrix GGUF (`imatrix.datasets`,
/// `imatrix.chunk_count`, `imatrix.chunk_size`). `legacy` marks one read from the old binary `.dat` format,
/// whose sums are already scaled so that dividing by the single stored count gives the weights.
struct importance_matrix {
    std::map<std::string, importance_entry, std::less<>> entries;
    std::vector<std::string> datasets;
    std::uint32_t chunk_count = 0;
    std::uint32_t chunk_size = 0;
    bool legacy = false;

    /// The entry of tensor `name`, or nullptr.
    [[nodiscard]] const importance_entry* find(std::string_view name) const {
        const auto it = entries.find(name);
        return it == entries.end() ? nullptr : &it->second;
    }
};

/// The per-column weights llama.cpp's quantize hands to ggml_quantize_chunk for one entry: each sum divided
/// by its matrix's count in float, and 1 for a matrix that never saw input (count 0). A legacy entry
/// divides by its single count where that is positive and keeps the stored values otherwise, as
/// llama.cpp's legacy reader does.
[[nodiscard]] inline std::vector<float> importance_weights(const importance_entry& e, bool legacy) {
    std::vector<float> w(e.sums.size());
    const std::size_t n = e.columns();
    if (n == 0) return w;
    for (std::size_t m = 0; m < e.counts.size(); ++m) {
        const float count = e.counts[m];
        for (std::size_t i = m * n; i < (m + 1) * n; ++i) {
            if (legacy)
                w[i] = count > 0.0f ? e.sums[i] / count : e.sums[i];
            else
                w[i] = count > 0.0f ? e.sums[i] / count : 1.0f;
        }
    }
    return w;
}

/// Sums x² per input column of every matrix while `model` runs over `set` in float (threads over
/// sequences, partial sums added in sequence order so that the result does not depend on the thread count).
/// Each matrix the forward multiplies by gets an entry named as in its GGUF file (the tied classifier as
/// token_embd.weight; an untied token embedding, only looked up, gets none); its count is the number of
/// positions run. chunk_size is the longest sequence and
/// chunk_count the number of sequences; `dataset` is recorded in `datasets`.
[[nodiscard]] inline importance_matrix compute_importance(const llama_model& model, const calibration_set& set, std::string dataset,
                                                          unsigned threads = 0) {
    const auto names = named_matrices(model);
    const std::size_t count = set.sequences.size();
    // Per sequence, per matrix: the column sums in double, merged afterwards in sequence order.
    std::vector<std::map<const weight_matrix*, std::vector<double>>> partial(count);
    parallel_for(count, threads, [&](std::size_t begin, std::size_t end) {
        for (std::size_t s = begin; s < end; ++s) {
            const auto& seq = set.sequences[s];
            auto& local = partial[s];
            llama_session session(model, seq.length, activation_mode::float32, 1);
            session.observe_inputs([&](const weight_matrix& w, std::span<const float> x) {
                auto& sums = local[&w];
                const std::size_t n = w.cols;
                if (sums.empty()) sums.assign(n, 0.0);
                for (std::size_t r = 0; r + n <= x.size(); r += n)
                    for (std::size_t j = 0; j < n; ++j) sums[j] += static_cast<double>(x[r + j]) * static_cast<double>(x[r + j]);
            });
            run_sequence(session, seq, model.config.dim, [](std::size_t, std::span<const float>) {});
        }
    });

    importance_matrix result;
    result.datasets.push_back(std::move(dataset));
    result.chunk_count = static_cast<std::uint32_t>(count);
    for (const auto& seq : set.sequences) result.chunk_size = std::max(result.chunk_size, static_cast<std::uint32_t>(seq.length));
    const double positions = static_cast<double>(set.positions());
    for (const auto& [name, matrix] : names) {
        std::vector<double> total(matrix->cols, 0.0);
        bool multiplied = false;
        for (const auto& local : partial) {
            const auto it = local.find(matrix);
            if (it == local.end()) continue;
            multiplied = true;
            for (std::size_t j = 0; j < total.size(); ++j) total[j] += it->second[j];
        }
        // The token embedding of an untied model is looked up, never multiplied: no entry, as in llama.cpp's files.
        if (!multiplied) continue;
        importance_entry e;
        e.sums.resize(total.size());
        for (std::size_t j = 0; j < total.size(); ++j) {
            e.sums[j] = static_cast<float>(total[j]);
            if (!std::isfinite(e.sums[j]))
                throw value_error(
                        "importance of '" + name + "': the sum of squares of input column " + std::to_string(j) + " overflows float", j);
        }
        e.counts.assign(1, static_cast<float>(positions));
        result.entries.emplace(name, std::move(e));
    }
    return result;
}

/// As above, making the calibration set from `model` alone with `options` (source self, random or stats;
/// docs/datafree.md); the dataset is recorded as "cogqat data-free calibration: SOURCE, N positions, seed S".
[[nodiscard]] inline importance_matrix compute_importance(const llama_model& model, const calibration_options& options,
                                                          unsigned threads = 0) {
    auto opts = options;
    opts.threads = threads;
    const auto set = make_calibration_set(model, opts);
    return compute_importance(model, set,
                              "cogqat data-free calibration: " + std::string(name_of(options.source)) + ", " +
                                      std::to_string(set.positions()) + " positions, seed " + std::to_string(options.seed),
                              threads);
}

}  // namespace cogqat
