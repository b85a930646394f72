#pragma once
// Exact rotations of a llama model (computational invariance, as in SliceGPT and QuaRot): the function is
// unchanged in exact arithmetic, the file is still a plain GGUF of its architecture (llama, qwen2, qwen3), and
// the weights are easier to round.
//  - fold_norms: every RMSNorm weight g is folded into the matrices that read the norm's output
//    (W <- W·diag(g)), and becomes 1. A tied classifier that must take output_norm's weight is untied first.
//  - rotate_residual: with the norms at 1, RMSNorm commutes with any orthogonal Q (it only divides by the
//    length, which Q keeps), so the residual stream can be carried as x·Q: token_embd <- E·Q, every reader
//    W <- W·Q, every writer (attn_output, ffn_down) W <- Qᵀ·W, the classifier <- output·Q.
//  - rotate_value_heads: attention mixes values of one head across positions linearly, so a rotation of
//    each value head (wv's rows of the head <- Qₕᵀ·rows) is undone by attn_output's columns of every query
//    head that reads it (<- columns·Qₕ).
// Rotations spread a few large channels over all of them (outliers are what cost 4-bit blocks their range).
// The transforms compute in double and round once to the tensors' type.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/matrix_shape.hpp"
#include "cogqat/model/llama_schema.hpp"
#include "cogqat/model/orthogonal.hpp"
#include "cogqat/model/tensor_set.hpp"

namespace cogqat {

namespace detail {

/// Every row w of the rows x q.n row-major `values` becomes w·Q.
template <class T>
void multiply_rows_by(std::vector<T>& values, const orthogonal_matrix& q) {
    const std::size_t n = q.n, rows = values.size() / n;
    std::vector<double> row(n), out(n);
    for (std::size_t r = 0; r < rows; ++r) {
        T* w = values.data() + r * n;
        std::copy_n(w, n, row.begin());
        std::fill(out.begin(), out.end(), 0.0);
        for (std::size_t i = 0; i < n; ++i) {
            const double wi = row[i];
            const double* qi = q.values.data() + i * n;
            for (std::size_t j = 0; j < n; ++j) out[j] += wi * qi[j];
        }
        for (std::size_t j = 0; j < n; ++j) w[j] = static_cast<T>(out[j]);
    }
}

/// The q.n x cols row-major `values` become Qᵀ·values.
template <class T>
void multiply_transposed_by(std::vector<T>& values, const orthogonal_matrix& q) {
    const std::size_t n = q.n, cols = values.size() / n;
    std::vector<double> column(n), out(n);
    for (std::size_t c = 0; c < cols; ++c) {
        for (std::size_t k = 0; k < n; ++k) column[k] = values[k * cols + c];
        std::fill(out.begin(), out.end(), 0.0);
        for (std::size_t k = 0; k < n; ++k) {
            const double v = column[k];
            const double* qk = q.values.data() + k * n;
            for (std::size_t i = 0; i < n; ++i) out[i] += qk[i] * v;
        }
        for (std::size_t i = 0; i < n; ++i) values[i * cols + c] = static_cast<T>(out[i]);
    }
}

/// value_error naming the tensor and element when one of `values` is NaN or infinite: a rotation would spread
/// it over every value of its row or column.
template <class T>
void require_finite(const std::vector<T>& values, const std::string& name, std::string_view who) {
    for (std::size_t i = 0; i < values.size(); ++i)
        if (!std::isfinite(values[i]))
            throw value_error(std::string(who) + ": " + name + " element " + std::to_string(i) + " is not finite", i);
}

}  // namespace detail

/// What fold_norms did.
struct norm_folding {
    std::size_t norms = 0;  ///< norm vectors folded (and set to 1)
    bool untied = false;    ///< the classifier was the token embedding and now has its own output.weight
};

/// Folds every norm's weight into the matrices that read the norm's output (their columns scaled by it) and
/// sets the weight to 1. The model's function is unchanged. A tied classifier is untied (output.weight, a copy
/// of token_embd, inserted after output_norm) when output_norm is not already all ones: folding it into the
/// token embedding would change the embedding too. format_error for a missing or misshapen tensor,
/// value_error (with the index) for a non-finite norm weight.
template <LlamaTensorSet W>
norm_folding fold_norms(W& w) {
    using T = tensor_value_t<W>;
    constexpr std::string_view who = "fold_norms";
    norm_folding done;
    auto& output_norm = require_tensor(w, llama_parameter::output_norm, no_layer, who);
    const bool unit_output_norm = std::all_of(output_norm.values.begin(), output_norm.values.end(), [](T v) { return v == T(1); });
    if (!has_own_classifier(w) && !unit_output_norm) {
        auto classifier = require_tensor(w, llama_parameter::token_embedding, no_layer, who);  // a copy
        classifier.name = std::string(llama_tensor(llama_parameter::output).name);
        const auto at = std::find_if(w.tensors.begin(), w.tensors.end(),
                                     [&](const auto& t) { return t.name == llama_tensor(llama_parameter::output_norm).name; });
        w.tensors.insert(std::next(at), std::move(classifier));
        done.untied = true;
    }
    for (std::size_t layer = 0; layer <= w.config.n_layers; ++layer) {
        for (const auto& group : llama_norm_readers) {
            const bool per_layer = llama_tensor(group.norm).per_layer;
            if (per_layer == (layer == w.config.n_layers)) continue;  // the last pass is the model-wide norm's
            if (!per_layer && !has_own_classifier(w)) continue;       // all ones (checked above): nothing to fold
            auto& norm = require_tensor(w, group.norm, layer, who);
            detail::require_finite(norm.values, norm.name, who);
            for (const auto parameter : group.matrices()) {
                auto& m = require_tensor(w, parameter, layer, who);
                const std::size_t cols = norm.values.size();
                for (std::size_t i = 0; i < m.values.size(); ++i) m.values[i] *= norm.values[i % cols];
            }
            std::fill(norm.values.begin(), norm.values.end(), T(1));
            ++done.norms;
        }
    }
    return done;
}

/// Rotates the residual stream by `q` (see the file comment): token_embd <- E·Q, the readers of every norm
/// <- W·Q, attn_output and ffn_down <- Qᵀ·W, output <- output·Q (nothing more when the classifier is tied: it
/// is E·Q already). The norms must be 1 (fold_norms first): value_error with the index of the first that is
/// not. shape_error when q is not of the model's width; format_error for a missing or misshapen tensor;
/// value_error for a non-finite weight.
template <LlamaTensorSet W>
void rotate_residual(W& w, const orthogonal_matrix& q) {
    using T = tensor_value_t<W>;
    constexpr std::string_view who = "rotate_residual";
    if (q.n != w.config.dim)
        throw shape_error("rotate_residual: a rotation of size " + std::to_string(q.n) + " for a model of width " +
                          std::to_string(w.config.dim));
    for (std::size_t layer = 0; layer <= w.config.n_layers; ++layer)
        for (const auto& group : llama_norm_readers) {
            if (llama_tensor(group.norm).per_layer == (layer == w.config.n_layers)) continue;
            const auto& norm = require_tensor(w, group.norm, layer, who);
            for (std::size_t i = 0; i < norm.values.size(); ++i)
                if (norm.values[i] != T(1))
                    throw value_error("rotate_residual: " + norm.name + " element " + std::to_string(i) +
                                              " is not 1; fold the norms into their readers first (fold_norms)",
                                      i);
        }
    auto rotate = [&](llama_parameter parameter, std::size_t layer, bool writer) {
        auto& t = require_tensor(w, parameter, layer, who);
        detail::require_finite(t.values, t.name, who);
        if (writer)
            detail::multiply_transposed_by(t.values, q);
        else
            detail::multiply_rows_by(t.values, q);
    };
    rotate(llama_parameter::token_embedding, no_layer, false);
    if (has_own_classifier(w)) rotate(llama_parameter::output, no_layer, false);
    for (std::size_t layer = 0; layer < w.config.n_layers; ++layer) {
        for (const auto& group : llama_norm_readers)
            if (llama_tensor(group.norm).per_layer)
                for (const auto parameter : group.matrices()) rotate(parameter, layer, false);
        for (const auto parameter : llama_residual_writers) rotate(parameter, layer, true);
    }
}

/// Rotates every value head of `layer` by `q` (of the head size): wv's rows of kv head h <- Qᵀ·rows (and
/// qwen2's value bias of head h <- Qᵀ·bias), and attn_output's columns of each query head that reads kv head h
/// <- columns·Q. The function is unchanged.
/// shape_error when q is not of the head size; format_error for a missing or misshapen tensor; value_error
/// for a non-finite weight; invalid_argument_error for a layer past the last.
template <LlamaTensorSet W>
void rotate_value_heads(W& w, std::size_t layer, const orthogonal_matrix& q) {
    using T = tensor_value_t<W>;
    constexpr std::string_view who = "rotate_value_heads";
    const llama_config& c = w.config;
    if (layer >= c.n_layers)
        throw invalid_argument_error("rotate_value_heads: layer " + std::to_string(layer) + " of a model of " + std::to_string(c.n_layers) +
                                     " layers");
    // Heads may be wider than dim / heads (qwen3): attn_output's rows are q_dim() long.
    const std::size_t head = c.head_size(), dim = c.dim, q_dim = c.q_dim();
    if (q.n != head || head == 0)
        throw shape_error("rotate_value_heads: a rotation of size " + std::to_string(q.n) + " for heads of " + std::to_string(head));
    auto& wv = require_tensor(w, llama_parameter::wv, layer, who);
    auto& wo = require_tensor(w, llama_parameter::wo, layer, who);
    detail::require_finite(wv.values, wv.name, who);
    detail::require_finite(wo.values, wo.name, who);
    for (std::size_t h = 0; h < c.n_kv_heads; ++h) {
        std::vector<T> rows(wv.values.begin() + static_cast<std::ptrdiff_t>(h * head * dim),
                            wv.values.begin() + static_cast<std::ptrdiff_t>((h + 1) * head * dim));
        detail::multiply_transposed_by(rows, q);
        std::copy(rows.begin(), rows.end(), wv.values.begin() + static_cast<std::ptrdiff_t>(h * head * dim));
    }
    if (llama_tensor(llama_parameter::bv).applies_to(c.architecture)) {
        auto& bv = require_tensor(w, llama_parameter::bv, layer, who);
        detail::require_finite(bv.values, bv.name, who);
        for (std::size_t h = 0; h < c.n_kv_heads; ++h) {
            std::vector<T> bias(bv.values.begin() + static_cast<std::ptrdiff_t>(h * head),
                                bv.values.begin() + static_cast<std::ptrdiff_t>((h + 1) * head));
            detail::multiply_transposed_by(bias, q);
            std::copy(bias.begin(), bias.end(), bv.values.begin() + static_cast<std::ptrdiff_t>(h * head));
        }
    }
    std::vector<T> block(head);
    for (std::size_t r = 0; r < dim; ++r)
        for (std::size_t h = 0; h < c.n_heads; ++h) {
            // Query head h reads kv head h / group; every kv head turns by the same Q, so every block does too.
            T* columns = wo.values.data() + r * q_dim + h * head;
            std::copy_n(columns, head, block.begin());
            detail::multiply_rows_by(block, q);
            std::copy_n(block.begin(), head, columns);
        }
}

/// How rotate_model rotates.
struct rotation_options {
    std::uint64_t seed = 0x5eed;
    bool hadamard = true;     ///< randomized_hadamard where the width has a power-of-two factor; else random_orthogonal
    bool value_heads = true;  ///< also rotate every layer's value heads (rotate_value_heads), each layer its own Q
    bool residual = true;     ///< fold the norms and rotate the residual stream; false: the value heads alone (no untying)
};

/// What rotate_model did.
struct rotation_summary {
    norm_folding folding;
    std::string residual;  ///< the residual rotation's kind ("hadamard 64"), empty when not rotated
    std::string heads;     ///< the value heads' kind, empty when they were not rotated
};

/// fold_norms, then rotate_residual and (optionally) rotate_value_heads by seeded matrices: the whole exact
/// rotation of a model, as `quantize --auto --rotate hadamard` applies it (`--rotate heads`: the value heads
/// alone, which needs neither folded norms nor an untied classifier).
template <LlamaTensorSet W>
rotation_summary rotate_model(W& w, const rotation_options& o = {}) {
    rotation_summary s;
    std::uint64_t seed = o.seed;
    auto make = [&](std::size_t n) {
        const std::uint64_t one = xoshiro256::splitmix64(seed);
        return o.hadamard ? randomized_hadamard(n, one) : random_orthogonal(n, one);
    };
    if (o.residual) {
        s.folding = fold_norms(w);
        const orthogonal_matrix q = make(w.config.dim);
        rotate_residual(w, q);
        s.residual = q.kind;
    }
    if (o.value_heads)
        for (std::size_t layer = 0; layer < w.config.n_layers; ++layer) {
            const orthogonal_matrix h = make(w.config.head_size());
            rotate_value_heads(w, layer, h);
            s.heads = h.kind;
        }
    return s;
}

}  // namespace cogqat
