#pragma once
// A llama forward in double, written from the definition (RMSNorm, RoPE on adjacent pairs, grouped-query
// causal attention, SwiGLU, tied or own classifier) over double copies of a model's weights: the oracle that
// shows an exact transform leaves the function unchanged, free of float rounding.

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

inline void rope(std::vector<double>& v, std::size_t pos, std::size_t head, double base) {
    for (std::size_t h = 0; h < v.size() / head; ++h)
        for (std::size_t i = 0; i < head; i += 2) {
            const double theta = static_cast<double>(pos) * std::pow(base, -static_cast<double>(i) / static_cast<double>(head));
            const double x0 = v[h * head + i], x1 = v[h * head + i + 1];
            v[h * head + i] = x0 * std::cos(theta) - x1 * std::sin(theta);
            v[h * head + i + 1] = x0 * std::sin(theta) + x1 * std::cos(theta);
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
            rope(q, pos, head, c.rope_freq_base);
            rope(k, pos, head, c.rope_freq_base);
            keys[l].push_back(k);
            values[l].push_back(product(tensor_values(w, name("attn_v.weight")), xn));
            std::vector<double> attended(dim, 0.0);
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
