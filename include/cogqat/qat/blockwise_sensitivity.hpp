#pragma once
// Block-wise sensitivity: what quantizing one tensor costs, predicted from that tensor's own output error
// under the teacher's inputs, with no whole-model forward per tensor and type.
//
// For a matrix W read by inputs x, rounding it to Q changes its outputs by (W - Q) x; summed over the
// calibration positions that is tr(D H Dᵀ) with D = W - Q and H = Σ x xᵀ, the second moments calibration
// already gathers. The KL a small change adds is quadratic in it to first order, so KL ≈ f · tr(D H Dᵀ) with
// a factor f that depends on where the tensor sits (how much of its output error reaches the logits). f is
// fitted from a few exact whole-model measurements: per tensor kind (attn_q, ffn_down, ...), at the first,
// middle and last layer that has it, interpolated in log between them. The number of exact checks depends
// on the kinds, not on the layers, so the whole analysis grows linearly with the model.
//
// The exact cost also holds the rounding of the matrix's inputs to the weight type's activation partner
// (q8_0, q8_1, q8_K), as llama.cpp computes: with rounding errors e of the inputs, the product's output moves
// by Q e more. Rounding errors of different channels are nearly independent, so Σ |Q e|² ≈ Σ_j a_j |Q_:j|² with
// a_j = Σ e_j² over the calibration positions: one more teacher pass gathers a per matrix and partner type.
// Without it the 8-bit candidates, whose cost is mostly that rounding, rank poorly.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cogqat/calib/calibration_set.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/format/activation_quantize.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/format/vec_dot.hpp"
#include "cogqat/model/llama_model.hpp"

namespace cogqat {

/// How sensitivity_analysis measures each candidate's cost.
enum class sensitivity_method {
    automatic,  ///< exact where that is cheap (auto_exact_work_limit), blockwise otherwise
    exact,      ///< the KL of a whole-model forward with only that tensor quantized, per tensor and type
    blockwise,  ///< tr(D H Dᵀ) per tensor and type, scaled to KL by a few exact checks
};

/// automatic takes the exact method when parameters x calibration positions x candidates, the multiply-adds
/// of its forwards, is at most this (stories260K at 2,048 positions: about 1.2e11; a 58M-weight model: 7e13).
inline constexpr double auto_exact_work_limit = 1e12;

[[nodiscard]] inline std::string_view sensitivity_method_name(sensitivity_method m) noexcept {
    switch (m) {
        case sensitivity_method::automatic:
            return "auto";
        case sensitivity_method::exact:
            return "exact";
        case sensitivity_method::blockwise:
            return "blockwise";
    }
    return "?";
}

/// "auto", "exact" or "blockwise"; anything else is an invalid_argument_error naming it.
[[nodiscard]] inline sensitivity_method parse_sensitivity_method(std::string_view name) {
    for (auto m : {sensitivity_method::automatic, sensitivity_method::exact, sensitivity_method::blockwise})
        if (sensitivity_method_name(m) == name) return m;
    throw invalid_argument_error("unknown sensitivity method '" + std::string(name) + "' (auto, exact or blockwise)");
}

/// The method automatic stands for with this much work (see auto_exact_work_limit); others are returned as given.
[[nodiscard]] inline sensitivity_method resolve_sensitivity(sensitivity_method requested, std::uint64_t parameters, std::size_t positions,
                                                            std::size_t candidates) noexcept {
    if (requested != sensitivity_method::automatic) return requested;
    const double work = static_cast<double>(parameters) * static_cast<double>(positions) * static_cast<double>(candidates);
    return work <= auto_exact_work_limit ? sensitivity_method::exact : sensitivity_method::blockwise;
}

namespace detail {

/// The sizes an error measure needs: as many decoded values as originals, whole rows of `cols`, and `weights`
/// values of what weighs them (cols x cols for H, one per row for row weights; none allowed where `optional`).
inline void check_error_shapes(std::string_view what, std::size_t original, std::size_t decoded, std::size_t cols, std::size_t weights,
                               bool per_row, bool optional) {
    if (original != decoded)
        throw shape_error(std::string(what) + ": " + std::to_string(original) + " values against " + std::to_string(decoded) + " decoded");
    if (cols == 0 || original % cols != 0)
        throw shape_error(std::string(what) + ": " + std::to_string(original) + " values are not rows of " + std::to_string(cols));
    const std::size_t expected = per_row ? original / cols : cols * cols;
    if (weights != expected && !(optional && weights == 0))
        throw shape_error(std::string(what) + ": " + std::to_string(weights) + (per_row ? " row weights for " : " values of H for ") +
                          std::to_string(original / cols) + " rows of " + std::to_string(cols) + " (needs " + std::to_string(expected) +
                          ")");
}

}  // namespace detail

/// tr(D H Dᵀ), D = original - decoded: the summed squared output error of a matrix (rows of `cols` values,
/// row-major) over the inputs whose second moments are H (cols x cols). shape_error on mismatched sizes.
[[nodiscard]] inline double hessian_weighted_error(std::span<const float> original, std::span<const float> decoded, std::size_t cols,
                                                   std::span<const double> h) {
    detail::check_error_shapes("hessian_weighted_error", original.size(), decoded.size(), cols, h.size(), false, false);
    // Rows go eight at a time: each entry of H is read once per eight rows (H of a wide matrix does not stay
    // in cache), and the eight sums are independent, so they pipeline. H is symmetric:
    // d H d = Σ_i d_i (H_ii d_i + 2 Σ_{j>i} H_ij d_j), half the products.
    constexpr std::size_t block = 8;
    const std::size_t rows = original.size() / cols;
    std::vector<double> d(block * cols);  // column-major within the block: d[j * block + b]
    double total = 0.0;
    for (std::size_t first = 0; first < rows; first += block) {
        const std::size_t n = std::min(block, rows - first);
        std::fill(d.begin(), d.end(), 0.0);
        for (std::size_t b = 0; b < n; ++b)
            for (std::size_t j = 0; j < cols; ++j)
                d[j * block + b] = static_cast<double>(original[(first + b) * cols + j]) - decoded[(first + b) * cols + j];
        for (std::size_t i = 0; i < cols; ++i) {
            const double* row = h.data() + i * cols;
            std::array<double, block> upper{};
            for (std::size_t j = i + 1; j < cols; ++j) {
                const double hij = row[j];
                for (std::size_t b = 0; b < block; ++b) upper[b] += hij * d[j * block + b];
            }
            for (std::size_t b = 0; b < n; ++b) total += d[i * block + b] * (row[i] * d[i * block + b] + 2.0 * upper[b]);
        }
    }
    return total;
}

/// Σ_rj D_rj² H_jj: tr(D H Dᵀ) without H's off-diagonal terms, in rows x cols instead of rows x cols²
/// multiply-adds. Where D's entries are independent and of mean zero (an f16 rounding of each weight) the
/// dropped terms average out. shape_error on mismatched sizes.
[[nodiscard]] inline double diagonal_weighted_error(std::span<const float> original, std::span<const float> decoded, std::size_t cols,
                                                    std::span<const double> h) {
    detail::check_error_shapes("diagonal_weighted_error", original.size(), decoded.size(), cols, h.size(), false, false);
    double total = 0.0;
    for (std::size_t r = 0; r < original.size() / cols; ++r)
        for (std::size_t j = 0; j < cols; ++j) {
            const double d = static_cast<double>(original[r * cols + j]) - decoded[r * cols + j];
            total += d * d * h[j * cols + j];
        }
    return total;
}

/// Σ_r weight[r] · |D_r|²: the output error of a table read by row (an embedding looked up `weight[r]`
/// times); with no weights every row counts once. shape_error on mismatched sizes.
[[nodiscard]] inline double lookup_weighted_error(std::span<const float> original, std::span<const float> decoded, std::size_t cols,
                                                  std::span<const double> row_weights = {}) {
    detail::check_error_shapes("lookup_weighted_error", original.size(), decoded.size(), cols, row_weights.size(), true, true);
    double total = 0.0;
    for (std::size_t r = 0; r < original.size() / cols; ++r) {
        double squares = 0.0;
        for (std::size_t j = 0; j < cols; ++j) {
            const double d = static_cast<double>(original[r * cols + j]) - decoded[r * cols + j];
            squares += d * d;
        }
        total += (row_weights.empty() ? 1.0 : row_weights[r]) * squares;
    }
    return total;
}

/// How often each of `vocab` tokens is looked up as an input in `set` (hidden-state sequences look up none).
/// value_error with the position for a token outside the vocabulary.
[[nodiscard]] inline std::vector<double> token_counts(const calibration_set& set, std::size_t vocab) {
    std::vector<double> counts(vocab, 0.0);
    std::size_t at = 0;
    for (const auto& s : set.sequences) {
        for (std::size_t p = 0; p < s.tokens.size() && p < s.length; ++p, ++at) {
            const auto t = s.tokens[p];
            if (t < 0 || static_cast<std::size_t>(t) >= vocab)
                throw value_error("token_counts: token " + std::to_string(t) + " outside the vocabulary of " + std::to_string(vocab), at);
            counts[static_cast<std::size_t>(t)] += 1.0;
        }
    }
    return counts;
}

/// a_j = Σ e_j² per matrix and activation partner type: the squared rounding errors of every input channel.
struct activation_rounding {
    std::map<std::string, std::map<ggml_type, std::vector<double>>, std::less<>> diagonal;  ///< by tensor name, then partner

    /// The sums for `matrix`'s inputs rounded to `activations`, or null where none were gathered.
    [[nodiscard]] const std::vector<double>* find(std::string_view matrix, ggml_type activations) const {
        const auto it = diagonal.find(matrix);
        if (it == diagonal.end()) return nullptr;
        const auto at = it->second.find(activations);
        return at == it->second.end() ? nullptr : &at->second;
    }
};

/// Adds to a_j the squared error of each value of the input vector `x` rounded to `partner` as llama.cpp's CPU
/// backend rounds it (format/activation_quantize.hpp); `a` starts empty or of x's size. `rounded` and
/// `decoded` are scratch.
inline void add_rounding_errors(ggml_type partner, std::span<const float> x, std::vector<double>& a, std::vector<std::byte>& rounded,
                                std::vector<float>& decoded) {
    rounded.resize(storage_size(partner, x.size()));
    decoded.resize(x.size());
    quantize_activations(partner, x, rounded);
    dequantize(partner, rounded, decoded);
    if (a.empty()) a.assign(x.size(), 0.0);
    for (std::size_t j = 0; j < x.size(); ++j) {
        const double e = static_cast<double>(x[j]) - decoded[j];
        a[j] += e * e;
    }
}

/// The partner types (q8_0, q8_1, q8_K) the inputs of the `weights` types are rounded to, each once.
[[nodiscard]] inline std::vector<ggml_type> activation_partners(std::span<const ggml_type> weights) {
    std::vector<ggml_type> partners;
    for (auto type : weights) {
        const ggml_type partner = activation_type_for(type);
        if (info(partner).block_size > 1 && std::find(partners.begin(), partners.end(), partner) == partners.end())
            partners.push_back(partner);
    }
    return partners;
}

/// Runs `teacher` over `set` (float activations, threads over sequences) and sums, per matrix, the squared
/// errors of its inputs rounded to each of `partners` whose block fits them, as llama.cpp's CPU backend rounds
/// (format/activation_quantize.hpp). Sums are added in sequence order: the same bits for any thread count.
[[nodiscard]] inline activation_rounding measure_activation_rounding(const llama_model& teacher, const calibration_set& set,
                                                                     std::span<const ggml_type> partners, unsigned threads = 0) {
    std::map<const weight_matrix*, std::string> names;
    for (const auto& [name, matrix] : named_matrices(teacher)) names.emplace(matrix, name);
    using sums = std::map<const weight_matrix*, std::map<ggml_type, std::vector<double>>>;
    std::vector<sums> per_sequence(set.sequences.size());
    parallel_for(set.sequences.size(), threads, [&](std::size_t begin, std::size_t end) {
        std::vector<std::byte> rounded;
        std::vector<float> decoded;
        for (std::size_t s = begin; s < end; ++s) {
            auto& local = per_sequence[s];
            llama_session session(teacher, set.sequences[s].length, activation_mode::float32, 1);
            session.observe_inputs([&](const weight_matrix& w, std::span<const float> x) {
                for (ggml_type partner : partners)
                    if (x.size() % info(partner).block_size == 0) add_rounding_errors(partner, x, local[&w][partner], rounded, decoded);
            });
            run_sequence(session, set.sequences[s], teacher.config.dim, [](std::size_t, std::span<const float>) {});
        }
    });
    activation_rounding out;
    for (const auto& local : per_sequence) {
        for (const auto& [w, by_partner] : local) {
            const auto name = names.find(w);
            if (name == names.end()) continue;
            for (const auto& [partner, a] : by_partner) {
                auto& total = out.diagonal[name->second][partner];
                if (total.empty()) total.assign(a.size(), 0.0);
                for (std::size_t j = 0; j < a.size(); ++j) total[j] += a[j];
            }
        }
    }
    return out;
}

/// Σ_j a_j |Q_:j|²: how much further the products of `decoded` (rows of `cols`) move when their inputs are
/// rounded with squared errors summing to `a` per channel. shape_error on mismatched sizes.
[[nodiscard]] inline double activation_rounding_error(std::span<const float> decoded, std::size_t cols, std::span<const double> a) {
    if (cols == 0 || decoded.size() % cols != 0 || a.size() != cols)
        throw shape_error("activation_rounding_error: " + std::to_string(decoded.size()) + " values in rows of " + std::to_string(cols) +
                          " with " + std::to_string(a.size()) + " channel sums");
    double total = 0.0;
    for (std::size_t r = 0; r < decoded.size() / cols; ++r)
        for (std::size_t j = 0; j < cols; ++j) total += a[j] * static_cast<double>(decoded[r * cols + j]) * decoded[r * cols + j];
    return total;
}

/// One exact whole-model measurement of one tensor at one candidate type: what the factors are fitted from.
struct sensitivity_check {
    std::string tensor;           ///< its GGUF name
    std::string kind;             ///< the tensor's name without its layer ("ffn_down.weight"): one factor curve per kind
    std::size_t layer = 0;        ///< 0 for tensors outside the layers
    std::string type;             ///< the candidate type measured
    double output_error = 0;      ///< tr(D H Dᵀ) (or the lookup error)
    double activation_error = 0;  ///< Σ_j a_j |Q_:j|²
    double kl = 0;                ///< the exact KL with only this tensor quantized
};

/// The fitted factors: KL ≈ f_w · output error + f_a · activation error. Weight and input rounding move a
/// product in different directions (the first along the inputs' main directions, the second as noise across
/// all channels), which what follows in the model amplifies differently, so each has its own factor. A
/// checked layer with two types of different mix (a 4-bit one, mostly weight error, and an 8-bit one, mostly
/// input rounding) solves for both; one type, or a solution that is not positive, gives one factor for both.
/// Per kind the factors form curves over the layers, piecewise linear in log between the checked layers and
/// constant beyond them. A kind without a usable check (errors or KL zero) takes the geometric mean of all
/// usable ones; with none at all the factors are 1, so costs still rank by error.
class kl_scale {
public:
    [[nodiscard]] static kl_scale fit(std::span<const sensitivity_check> checks) {
        kl_scale s;
        std::map<std::string, std::map<std::size_t, std::vector<const sensitivity_check*>>, std::less<>> groups;
        for (const auto& c : checks) {
            const double error = c.output_error + c.activation_error;
            if (!(error > 0.0 && c.kl > 0.0 && std::isfinite(c.kl) && std::isfinite(error) && c.output_error >= 0.0 &&
                  c.activation_error >= 0.0))
                continue;
            groups[c.kind][c.layer].push_back(&c);
        }
        std::array<double, 2> logs{};
        std::size_t usable = 0;
        for (const auto& [kind, layers] : groups) {
            auto& curve = s.curves_[kind];
            for (const auto& [layer, group] : layers) {
                const auto f = factors_of(group);
                curve.push_back({layer, {std::log(f[0]), std::log(f[1])}});
                logs[0] += std::log(f[0]), logs[1] += std::log(f[1]), ++usable;
            }
        }
        if (usable) s.fallback_ = {logs[0] / static_cast<double>(usable), logs[1] / static_cast<double>(usable)};
        return s;
    }

    /// f_w and f_a for a tensor of `kind` at `layer`.
    [[nodiscard]] std::array<double, 2> factors(std::string_view kind, std::size_t layer) const {
        const auto it = curves_.find(kind);
        if (it == curves_.end()) return {std::exp(fallback_[0]), std::exp(fallback_[1])};
        const auto& p = it->second;  // in layer order (fit walks a map)
        const auto at = [&](std::size_t k) { return std::array<double, 2>{std::exp(p[k].second[0]), std::exp(p[k].second[1])}; };
        if (layer <= p.front().first) return at(0);
        if (layer >= p.back().first) return at(p.size() - 1);
        std::size_t k = 1;
        while (p[k].first < layer) ++k;
        const double t = static_cast<double>(layer - p[k - 1].first) / static_cast<double>(p[k].first - p[k - 1].first);
        std::array<double, 2> f{};
        for (std::size_t i = 0; i < 2; ++i) f[i] = std::exp(p[k - 1].second[i] + t * (p[k].second[i] - p[k - 1].second[i]));
        return f;
    }

    /// The predicted KL of a tensor of `kind` at `layer` with these errors.
    [[nodiscard]] double cost(std::string_view kind, std::size_t layer, double output_error, double activation_error) const {
        const auto f = factors(kind, layer);
        return f[0] * output_error + f[1] * activation_error;
    }

private:
    /// The factors of one checked layer: both solved from the two checks of most different mix, each equation
    /// divided by its KL (relative errors count alike), where that gives two positive factors; else the
    /// geometric mean of KL / total error.
    [[nodiscard]] static std::array<double, 2> factors_of(const std::vector<const sensitivity_check*>& group) {
        double logs = 0.0;
        for (const auto* c : group) logs += std::log(c->kl / (c->output_error + c->activation_error));
        const double single = std::exp(logs / static_cast<double>(group.size()));
        const auto share = [](const sensitivity_check* c) { return c->output_error / (c->output_error + c->activation_error); };
        const auto [low, high] = std::minmax_element(group.begin(), group.end(), [&](auto* x, auto* y) { return share(x) < share(y); });
        if (share(*high) - share(*low) < 0.1) return {single, single};  // too alike to tell the two apart
        const auto* a = *high;
        const auto* b = *low;
        const double a0 = a->output_error / a->kl, a1 = a->activation_error / a->kl;
        const double b0 = b->output_error / b->kl, b1 = b->activation_error / b->kl;
        const double det = a0 * b1 - a1 * b0;
        const double fw = (b1 - a1) / det, fa = (a0 - b0) / det;
        if (!(fw > 0.0 && fa > 0.0 && std::isfinite(fw) && std::isfinite(fa))) return {single, single};
        return {fw, fa};
    }

    std::map<std::string, std::vector<std::pair<std::size_t, std::array<double, 2>>>, std::less<>> curves_;
    std::array<double, 2> fallback_{};
};

/// Of `count` layers holding a kind (in order), the positions checked: the first, the middle and the last.
[[nodiscard]] inline std::vector<std::size_t> checked_positions(std::size_t count) {
    std::vector<std::size_t> p;
    for (std::size_t k : {std::size_t{0}, count / 2, count - 1})
        if (count && (p.empty() || p.back() != k)) p.push_back(k);
    return p;
}

}  // namespace cogqat
