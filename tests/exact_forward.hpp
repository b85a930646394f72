#pragma once
// A llama-family forward in double, written from the definition (RMSNorm, qwen2's Q/K/V biases, qwen3's
// per-head Q/K RMSNorm, RoPE on adjacent pairs for llama or on a head's two halves for qwen2/qwen3 with
// Llama 3's per-pair factors and linear scaling, grouped-query causal attention, SwiGLU, tied or own
// classifier) over double copies of a model's weights: the oracle that shows an exact transform leaves the
// function unchanged, free of float rounding, and that the runtime computes each architecture.

#include <cogqat/core/random.hpp>
#include <cogqat/model/llama_schema.hpp>
#include <cogqat/model/llama_weights.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace cogqat::test {

struct double_tensor {
    std::string name;
    std::vector<std::uint64_t> shape;
    std::vector<double> values;
};

/// A LlamaTensorSet of doubles.
struct double_weights {
    llama_config config;
    std::vector<double_tensor> tensors;
};

inline double_weights to_double(const llama_weights& w) {
    double_weights d{w.config, {}};
    for (const auto& t : w.tensors) d.tensors.push_back({t.name, t.shape, std::vector<double>(t.values.begin(), t.values.end())});
    return d;
}

/// `w` with every norm weight drawn from 1 + N(0, 0.5) (so that folding them matters), and with the
/// classifier dropped (tied to the embedding) when `tied`.
inline llama_weights with_random_norms(llama_weights w, std::uint64_t seed, bool tied) {
    xoshiro256 rng(seed);
    for (auto& t : w.tensors)
        if (t.shape.size() == 1)
            for (auto& v : t.values) v = static_cast<float>(1.0 + 0.5 * rng.gaussian());
    if (tied) std::erase_if(w.tensors, [](const float_tensor& t) { return t.name == "output.weight"; });
    return w;
}

inline const std::vector<double>* find_values(const double_weights& w, const std::string& name) {
    for (const auto& t : w.tensors)
        if (t.name == name) return &t.values;
    return nullptr;
}

inline const std::vector<double>& tensor_values(const double_weights& w, const std::string& name) {
    for (const auto& t : w.tensors)
        if (t.name == name) return t.values;
    throw std::runtime_error("exact_forward: no tensor " + name);
}

/// y = W x for W of rows x x.size(), row-major.
inline std::vector<double> product(const std::vector<double>& w, const std::vector<double>& x) {
    std::vector<double> y(w.size() / x.size(), 0.0);
    for (std::size_t r = 0; r < y.size(); ++r)
        for (std::size_t i = 0; i < x.size(); ++i) y[r] += w[r * x.size() + i] * x[i];
    return y;
}

inline std::vector<double> rms_norm(const std::vector<double>& x, const std::vector<double>& g, double eps) {
    double squares = 0.0;
    for (double v : x) squares += v * v;
    const double scale = 1.0 / std::sqrt(squares / static_cast<double>(x.size()) + eps);
    std::vector<double> y(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * scale * g[i];
    return y;
}

/// Pair i of each head, (2i, 2i+1) or with `halves` (i, i + head/2), turns by
/// scale * pos * base^(-2i/head) / factor_i.
inline void rope(std::vector<double>& v, std::size_t pos, std::size_t head, double base, bool halves = false, double scale = 1.0,
                 const std::vector<double>* factors = nullptr) {
    for (std::size_t h = 0; h < v.size() / head; ++h)
        for (std::size_t i = 0; i < head / 2; ++i) {
            double theta = scale * static_cast<double>(pos) * std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(head));
            if (factors) theta /= (*factors)[i];
            const std::size_t a = h * head + (halves ? i : 2 * i), b = h * head + (halves ? i + head / 2 : 2 * i + 1);
            const double x0 = v[a], x1 = v[b];
            v[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
            v[b] = x0 * std::sin(theta) + x1 * std::cos(theta);
        }
}

inline void add(std::vector<double>& v, const std::vector<double>* bias) {
    if (bias)
        for (std::size_t i = 0; i < v.size(); ++i) v[i] += (*bias)[i];
}

inline void norm_heads(std::vector<double>& v, const std::vector<double>* g, double eps) {
    if (!g) return;
    const std::size_t head = g->size();
    for (std::size_t h = 0; h < v.size() / head; ++h) {
        const std::vector<double> one(v.begin() + static_cast<std::ptrdiff_t>(h * head),
                                      v.begin() + static_cast<std::ptrdiff_t>((h + 1) * head));
        const auto normed = rms_norm(one, *g, eps);
        std::copy(normed.begin(), normed.end(), v.begin() + static_cast<std::ptrdiff_t>(h * head));
    }
}

/// The logits of every position of `tokens` (tokens.size() rows of vocab_size).
inline std::vector<double> exact_logits(const double_weights& w, const std::vector<std::int32_t>& tokens) {
    const auto& c = w.config;
    const std::size_t dim = c.dim, head = c.head_size(), group = c.n_heads / c.n_kv_heads;
    const double eps = c.rms_norm_eps;
    const auto& embedding = tensor_values(w, "token_embd.weight");
    const bool tied = std::none_of(w.tensors.begin(), w.tensors.end(), [](const double_tensor& t) { return t.name == "output.weight"; });
    const auto& classifier = tied ? embedding : tensor_values(w, "output.weight");
    const bool halves = c.architecture != model_architecture::llama;
    const std::vector<double>* factors = find_values(w, "rope_freqs.weight");
    std::vector<std::vector<std::vector<double>>> keys(c.n_layers), values(c.n_layers);
    std::vector<double> out;
    for (std::size_t pos = 0; pos < tokens.size(); ++pos) {
        const auto token = static_cast<std::size_t>(tokens[pos]);
        std::vector<double> x(embedding.begin() + static_cast<std::ptrdiff_t>(token * dim),
                              embedding.begin() + static_cast<std::ptrdiff_t>((token + 1) * dim));
        for (std::size_t l = 0; l < c.n_layers; ++l) {
            auto name = [&](std::string_view n) { return "blk." + std::to_string(l) + "." + std::string(n); };
            const auto xn = rms_norm(x, tensor_values(w, name("attn_norm.weight")), eps);
            auto q = product(tensor_values(w, name("attn_q.weight")), xn);
            auto k = product(tensor_values(w, name("attn_k.weight")), xn);
            auto v = product(tensor_values(w, name("attn_v.weight")), xn);
            add(q, find_values(w, name("attn_q.bias")));
            add(k, find_values(w, name("attn_k.bias")));
            add(v, find_values(w, name("attn_v.bias")));
            norm_heads(q, find_values(w, name("attn_q_norm.weight")), eps);
            norm_heads(k, find_values(w, name("attn_k_norm.weight")), eps);
            rope(q, pos, head, c.rope_freq_base, halves, c.rope_freq_scale, factors);
            rope(k, pos, head, c.rope_freq_base, halves, c.rope_freq_scale, factors);
            keys[l].push_back(k);
            values[l].push_back(v);
            std::vector<double> attended(q.size(), 0.0);
            for (std::size_t h = 0; h < c.n_heads; ++h) {
                const std::size_t offset = (h / group) * head;
                std::vector<double> scores(pos + 1);
                double max = -INFINITY, sum = 0.0;
                for (std::size_t t = 0; t <= pos; ++t) {
                    double s = 0.0;
                    for (std::size_t i = 0; i < head; ++i) s += q[h * head + i] * keys[l][t][offset + i];
                    scores[t] = s / std::sqrt(static_cast<double>(head));
                    max = std::max(max, scores[t]);
                }
                for (auto& s : scores) sum += (s = std::exp(s - max));
                for (std::size_t t = 0; t <= pos; ++t)
                    for (std::size_t i = 0; i < head; ++i) attended[h * head + i] += scores[t] / sum * values[l][t][offset + i];
            }
            const auto o = product(tensor_values(w, name("attn_output.weight")), attended);
            for (std::size_t i = 0; i < dim; ++i) x[i] += o[i];
            const auto fn = rms_norm(x, tensor_values(w, name("ffn_norm.weight")), eps);
            auto gate = product(tensor_values(w, name("ffn_gate.weight")), fn);
            const auto up = product(tensor_values(w, name("ffn_up.weight")), fn);
            for (std::size_t i = 0; i < gate.size(); ++i) gate[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
            const auto d = product(tensor_values(w, name("ffn_down.weight")), gate);
            for (std::size_t i = 0; i < dim; ++i) x[i] += d[i];
        }
        const auto logits = product(classifier, rms_norm(x, tensor_values(w, "output_norm.weight"), eps));
        out.insert(out.end(), logits.begin(), logits.end());
    }
    return out;
}

inline double max_difference(const std::vector<double>& a, const std::vector<double>& b) {
    double worst = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
    return a.size() == b.size() ? worst : INFINITY;
}

inline double max_magnitude(const std::vector<double>& a) {
    double worst = 0.0;
    for (double v : a) worst = std::max(worst, std::fabs(v));
    return worst;
}

}  // namespace cogqat::test
