#pragma once
// A reference Llama-family transformer (llama, qwen2, qwen3) over weights of any mix of GGUF types: RMSNorm,
// RoPE (adjacent pairs for llama, as llama.cpp's llama architecture and llama2.c rotate; the two halves of a
// head for qwen2 and qwen3, llama.cpp's NEOX style; Llama 3's per-pair factors and linear scaling), qwen2's
// Q/K/V biases, qwen3's per-head Q/K RMSNorm, heads of any size, grouped-query attention with a KV cache,
// SwiGLU feed-forward, tied or separate output. Matrix-vector products either quantize the
// activations to the weight type's ggml partner (q8_0, q8_1, q8_K, f16) and use integer dot products, as
// llama.cpp's CPU backend does, or keep float activations. Multi-threaded over output rows.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/matrix_shape.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/format/activation_quantize.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/format/vec_dot.hpp"
#include "cogqat/model/llama_schema.hpp"
#include "cogqat/model/llama_weights.hpp"
#include "cogqat/simd/gemv.hpp"
#include "cogqat/simd/interleaved.hpp"

namespace cogqat {

/// A rows x cols matrix (core/matrix_shape.hpp) of `type`, viewing bytes it may also own.
struct weight_matrix : matrix_shape {
    ggml_type type = ggml_type::f32;
    std::span<const std::byte> view;  ///< bytes in a mapped file
    std::vector<std::byte> owned;     ///< or bytes of its own (built from floats); copies stay valid
    /// The same matrix interleaved for the quantized products (simd/interleaved.hpp), for the types that
    /// have the layout; set by llama_model::interleave(). Whoever changes type or bytes must reset it.
    std::shared_ptr<const simd::interleaved_matrix> interleaved{};

    [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return owned.empty() ? view : std::span<const std::byte>(owned); }
    [[nodiscard]] std::size_t row_bytes() const { return storage_size(type, cols); }
    [[nodiscard]] std::span<const std::byte> row(std::size_t r) const { return bytes().subspan(r * row_bytes(), row_bytes()); }
};

/// value_error naming the tensor and the element when `bytes` (rows of `cols` values of `type`) decode to a
/// NaN or an infinity: a forward through it is NaN (or garbage) from there on, so a model is refused at load.
inline void require_finite_weights(const std::string& name, ggml_type type, std::span<const std::byte> bytes, std::size_t cols) {
    const std::size_t row_bytes = storage_size(type, cols);
    if (row_bytes == 0) return;
    const std::size_t rows = bytes.size() / row_bytes, rows_per_chunk = std::max<std::size_t>(1, 16384 / cols);
    std::vector<float> values;
    for (std::size_t r = 0; r < rows; r += rows_per_chunk) {
        const std::size_t n = std::min(rows_per_chunk, rows - r);
        values.resize(n * cols);
        dequantize(type, bytes.subspan(r * row_bytes, n * row_bytes), values);
        for (std::size_t i = 0; i < values.size(); ++i)
            if (!std::isfinite(values[i]))
                throw value_error("tensor " + name + ": element " + std::to_string(r * cols + i) + " (row " + std::to_string(r + i / cols) +
                                          ") is " + (std::isnan(values[i]) ? "NaN" : "infinite") +
                                          "; a model with non-finite weights cannot run",
                                  r * cols + i);
    }
}

class llama_model {
public:
    struct layer {
        std::vector<float> attn_norm, ffn_norm;
        weight_matrix wq, wk, wv, wo, gate, down, up;
        std::vector<float> bq, bk, bv;      ///< qwen2's projection biases (empty for the others)
        std::vector<float> q_norm, k_norm;  ///< qwen3's per-head RMSNorm weights, head_size values (empty for the others)
    };

    llama_config config;
    weight_matrix token_embedding;
    std::vector<float> output_norm;
    weight_matrix output;  ///< unused (empty) when the classifier is tied
    std::vector<layer> layers;
    std::vector<float> rope_freqs;  ///< Llama 3's per-pair frequency divisors, head_size / 2 (empty: none)
    bool tied_output = false;       ///< the classifier is token_embedding (the GGUF has no output.weight)
    /// The vocabulary's BOS and EOS ids: text the model writes itself (data-free calibration) starts at BOS
    /// and starts again after EOS. A SentencePiece vocabulary's are 1 and 2; a BPE one's are where its file says
    /// (Qwen2's <|endoftext|> is 151643).
    std::int32_t bos_id = 1, eos_id = 2;
    /// The ids that are not text (special_token_ids): random-token calibration never draws them. Empty: the
    /// model was built without a vocabulary, and SentencePiece's 0..2 are assumed.
    std::vector<std::int32_t> special_tokens;

    /// The matrix that turns the final hidden state into logits.
    [[nodiscard]] const weight_matrix& classifier() const noexcept { return tied_output ? token_embedding : output; }

    /// Interleaves every matrix whose type has the layout and a kernel on the active instruction set
    /// (q4_0 everywhere on x86 with AVX2, q8_0 with AVX-512 VNNI): products with quantized activations then
    /// read it instead of the rows. Costs one copy of those matrices; the rows stay for everything else.
    void interleave() {
        auto one = [](weight_matrix& w) {
            if (!w.interleaved && simd::interleaved_layout_for(w.type) && dispatch::kernels(w.type).dot_interleaved)
                w.interleaved = std::make_shared<const simd::interleaved_matrix>(w.type, w.bytes(), w.rows, w.cols);
        };
        for_each_llama_tensor(config, tied_output, [&](const tensor_schema& t, std::size_t index) {
            if (t.per_layer) visit_parameter_as<weight_matrix>(*this, t.parameter, index, one);
        });
        one(tied_output ? token_embedding : output);
    }

    /// Owns f32 copies of imported weights (e.g. straight from a llama2.c checkpoint). invalid_argument_error
    /// for a tensor of the config's architecture that is missing, shape_error for one whose shape or value
    /// count is not what the config makes it (the forward would read past it).
    [[nodiscard]] static llama_model from_weights(const llama_weights& w) { return build(w, false); }

    /// As from_weights, but the matrices view `w`'s float values instead of copying them (4 bytes per weight
    /// saved, the same products bit for bit): `w` must outlive the model and its values must not be resized
    /// (a moved llama_weights keeps them where they are).
    [[nodiscard]] static llama_model viewing(const llama_weights& w) { return build(w, true); }

private:
    [[nodiscard]] static llama_model build(const llama_weights& w, bool view) {
        llama_model m;
        m.config = w.config;
        auto find = [&](const std::string& name) -> const float_tensor& {
            for (const auto& t : w.tensors)
                if (t.name == name) return t;
            throw invalid_argument_error("model has no tensor " + name);
        };
        const std::string_view classifier = llama_tensor(llama_parameter::output).name;
        m.tied_output = std::none_of(w.tensors.begin(), w.tensors.end(), [&](const float_tensor& t) { return t.name == classifier; });
        for (const auto& [id, role] : {std::pair{w.vocab.bos_id, "BOS"}, std::pair{w.vocab.eos_id, "EOS"}})
            if (id >= w.config.vocab_size)
                throw invalid_argument_error(std::string("the vocabulary's ") + role + " id " + std::to_string(id) +
                                             " is not a token of the model's " + std::to_string(w.config.vocab_size));
        m.bos_id = static_cast<std::int32_t>(w.vocab.bos_id);
        m.eos_id = static_cast<std::int32_t>(w.vocab.eos_id);
        if (!w.vocab.pieces.empty())
            m.special_tokens =
                    special_token_ids(w.vocab.kinds, w.config.vocab_size, w.vocab.model == "llama", w.vocab.bos_id, w.vocab.eos_id);
        m.layers.resize(w.config.n_layers);
        for_each_llama_tensor(m.config, m.tied_output, [&](const tensor_schema& schema, std::size_t layer) {
            const float_tensor& t = find(schema.gguf_name(layer));
            const auto expected = schema.gguf_shape(m.config);
            if (t.shape != expected || t.values.size() != schema.elements(m.config))
                throw shape_error("tensor " + t.name + " has " + std::to_string(t.values.size()) + " values of shape " +
                                  shape_text(t.shape) + "; the " + std::string(architecture_name(m.config.architecture)) +
                                  " config makes it " + shape_text(expected));
            visit_parameter(m, schema.parameter, layer, [&](auto& member) {
                if constexpr (std::is_same_v<std::remove_cvref_t<decltype(member)>, weight_matrix>) {
                    if (view)
                        member = weight_matrix{matrix_shape::from_gguf(t.shape), ggml_type::f32, std::as_bytes(std::span(t.values)), {}};
                    else
                        member = weight_matrix{matrix_shape::from_gguf(t.shape), ggml_type::f32, {}, quantize(ggml_type::f32, t.values)};
                } else {
                    member = t.values;
                }
            });
        });
        return m;
    }
};

COGQAT_STRICT_FP_BEGIN

namespace detail {

/// out = x / sqrt(mean(x^2) + eps) * weight, the mean accumulated in double as ggml does.
inline void rms_norm(std::span<float> out, std::span<const float> x, std::span<const float> weight, float eps) {
    double squares = 0.0;
    for (float v : x) squares += static_cast<double>(v) * v;
    const float scale = 1.0f / std::sqrt(static_cast<float>(squares / static_cast<double>(x.size())) + eps);
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = x[i] * scale * weight[i];
}

/// How a head's values pair up for RoPE: adjacent (2i, 2i+1), or the two halves (i, i + head/2), ggml's NEOX
/// mode that llama.cpp uses for qwen2 and qwen3.
enum class rope_pairing : std::uint8_t { adjacent, halves };

/// RoPE as ggml's rope_ext computes it without YaRN: pair i of every head turns by
/// freq_scale * (theta_i / factor_i), theta_i = pos * base^(-2i/head) built as a running product, factor_i
/// from `factors` (head / 2 of them; empty: 1).
inline void rope(std::span<float> v, std::size_t pos, std::size_t head, float base, float freq_scale, std::span<const float> factors,
                 rope_pairing pairing) {
    const float theta_scale = std::pow(base, -2.0f / static_cast<float>(head));
    const std::size_t half = head / 2;
    for (std::size_t h = 0; h < v.size() / head; ++h) {
        float theta = static_cast<float>(pos);
        float* x = v.data() + h * head;
        for (std::size_t i = 0; i < half; ++i) {
            const float angle = freq_scale * (factors.empty() ? theta : theta / factors[i]);
            const float cos_t = std::cos(angle), sin_t = std::sin(angle);
            const std::size_t a = pairing == rope_pairing::adjacent ? 2 * i : i,
                              b = pairing == rope_pairing::adjacent ? 2 * i + 1 : i + half;
            const float x0 = x[a], x1 = x[b];
            x[a] = x0 * cos_t - x1 * sin_t;
            x[b] = x0 * sin_t + x1 * cos_t;
            theta *= theta_scale;
        }
    }
}

/// Rotates adjacent pairs (2i, 2i+1) of every head by pos * base^(-2i/head): rope without factors or scaling,
/// the rotation of llama.cpp's llama architecture and of llama2.c (the trainer's backward inverts it).
inline void rope_adjacent_pairs(std::span<float> v, std::size_t pos, std::size_t head, float base) {
    rope(v, pos, head, base, 1.0f, {}, rope_pairing::adjacent);
}

/// The RoPE pairing llama.cpp uses for architecture `a` (llama_model_rope_type: NORM for llama, NEOX for qwen2
/// and qwen3).
[[nodiscard]] constexpr rope_pairing rope_pairing_of(model_architecture a) noexcept {
    return a == model_architecture::llama ? rope_pairing::adjacent : rope_pairing::halves;
}

/// Causal attention of one query head over `count` cached positions (rows `stride` apart): softmax of the
/// scaled scores, weighted sum of the values into `out`.
inline void attention_head(const float* q, const float* keys, const float* values, std::size_t stride, std::size_t head, std::size_t count,
                           float* scores, float* out) {
    const float scale = 1.0f / std::sqrt(static_cast<float>(head));
    float max = -INFINITY;
    for (std::size_t t = 0; t < count; ++t) {
        const float* k = keys + t * stride;
        float s = 0.0f;
        for (std::size_t i = 0; i < head; ++i) s += q[i] * k[i];
        scores[t] = s * scale;
        max = std::max(max, scores[t]);
    }
    double sum = 0.0;
    for (std::size_t t = 0; t < count; ++t) {
        scores[t] = std::exp(scores[t] - max);
        sum += scores[t];
    }
    std::fill(out, out + head, 0.0f);
    for (std::size_t t = 0; t < count; ++t) {
        const float weight = static_cast<float>(scores[t] / sum);
        const float* v = values + t * stride;
        for (std::size_t i = 0; i < head; ++i) out[i] += weight * v[i];
    }
}

/// silu(gate) * up, in place in `gate`.
inline void swiglu(std::span<float> gate, std::span<const float> up) {
    for (std::size_t i = 0; i < gate.size(); ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace detail

COGQAT_STRICT_FP_END

/// One sequence being evaluated: its KV cache and scratch buffers. Feed tokens at increasing positions.
class llama_session {
public:
    /// A session of `lanes` independent sequences (forward_lanes), each with its own cache of
    /// `context_length` positions; forward and forward_batch run lane 0.
    llama_session(const llama_model& model, std::size_t context_length, activation_mode mode = activation_mode::quantized,
                  unsigned threads = 1, std::size_t lanes = 1)
            : m_(model), mode_(mode), context_(context_length), lanes_(lanes) {
        const auto& c = m_.config;
        if (context_length == 0) throw invalid_argument_error("llama_session: context length must be positive");
        if (lanes == 0) throw invalid_argument_error("llama_session: at least one lane");
        key_cache_.assign(lanes * c.n_layers * context_length * c.kv_dim(), 0.0f);
        value_cache_.assign(key_cache_.size(), 0.0f);
        x_.resize(c.dim), xb_.resize(c.dim), xb2_.resize(c.dim), q_.resize(c.q_dim()), att_.resize(c.q_dim()), k_.resize(c.kv_dim()),
                v_.resize(c.kv_dim());
        hb_.resize(c.hidden_dim), hb2_.resize(c.hidden_dim), scores_.resize(c.n_heads * context_length), logits_.resize(c.vocab_size);
        // Workers kept for the session: a token makes several products per layer, each too short to pay for
        // starting threads.
        if (resolve_threads(threads) > 1) pool_ = std::make_unique<thread_pool>(threads);
    }

    [[nodiscard]] std::size_t context_length() const noexcept { return context_; }
    [[nodiscard]] std::size_t lanes() const noexcept { return lanes_; }

    /// Stores keys and values rounded to `type` (f32, the default, or f16 as llama.cpp's default cache does).
    void set_kv_cache_type(ggml_type type) {
        if (type != ggml_type::f32 && type != ggml_type::f16) throw invalid_argument_error("KV cache type must be f32 or f16");
        kv_type_ = type;
    }

    /// Called with every matrix-vector product's weights and float input, before the input is quantized:
    /// how calibration gathers input statistics. Empty (the default) costs nothing.
    using input_observer = std::function<void(const weight_matrix&, std::span<const float>)>;
    void observe_inputs(input_observer observer) { observer_ = std::move(observer); }

    /// Runs token `token` at position `pos` (0-based, < context length) and returns the next-token logits.
    std::span<const float> forward(std::int32_t token, std::size_t pos) {
        return forward_batch(std::span<const std::int32_t>(&token, 1), pos);
    }

    /// Runs `tokens` at positions pos, pos + 1, ... as one batch, as llama.cpp processes a prompt: every
    /// matrix product reads each weight row once for all of them. Returns the last token's logits, or with
    /// `all_logits` every token's (tokens.size() rows of vocab_size). The logits are those of feeding the
    /// tokens one at a time through forward(), bit for bit.
    std::span<const float> forward_batch(std::span<const std::int32_t> tokens, std::size_t pos, bool all_logits = false) {
        if (tokens.empty()) throw invalid_argument_error("forward_batch: no tokens");
        check_positions(pos, tokens.size());
        embed(tokens);
        return run_batch(tokens.size(), pos, all_logits, false);
    }

    /// Runs token l of `tokens` in lane l, every lane at position `pos`, as one batch: each weight row is read
    /// once for all the lanes, as in forward_batch. Returns tokens.size() rows of logits, those of running
    /// each lane as a session of its own, bit for bit. Several sequences written at once (calibration's
    /// self-generated ones) read a large model once per step instead of once per sequence and step.
    std::span<const float> forward_lanes(std::span<const std::int32_t> tokens, std::size_t pos) {
        if (tokens.empty() || tokens.size() > lanes_)
            throw invalid_argument_error("forward_lanes: " + std::to_string(tokens.size()) + " tokens for " + std::to_string(lanes_) +
                                         " lanes");
        check_positions(pos, 1);
        embed(tokens);
        return run_batch(tokens.size(), pos, true, true);
    }

    /// Runs the network on an input vector in place of a token's embedding (synthetic hidden states).
    std::span<const float> forward_embedding(std::span<const float> embedding, std::size_t pos) {
        const auto& c = m_.config;
        if (embedding.size() != c.dim)
            throw shape_error("forward_embedding: " + std::to_string(embedding.size()) + " values for a model of width " +
                              std::to_string(c.dim));
        check_positions(pos, 1);
        resize_batch(1);
        std::copy(embedding.begin(), embedding.end(), x_.begin());
        return run_batch(1, pos, false, false);
    }

private:
    void check_positions(std::size_t pos, std::size_t count) const {
        if (pos + count > context_)
            throw invalid_argument_error("position " + std::to_string(pos + count - 1) + " is past the context length " +
                                         std::to_string(context_));
    }

    template <class T>
    static std::span<T> row(std::vector<T>& v, std::size_t t, std::size_t width) {
        return std::span<T>(v.data() + t * width, width);
    }

    void embed(std::span<const std::int32_t> tokens) {
        const auto& c = m_.config;
        for (const auto token : tokens)
            if (token < 0 || static_cast<std::size_t>(token) >= c.vocab_size)
                throw invalid_argument_error("token " + std::to_string(token) + " is out of range");
        resize_batch(tokens.size());
        for (std::size_t t = 0; t < tokens.size(); ++t)
            dequantize(m_.token_embedding.type, m_.token_embedding.row(static_cast<std::size_t>(tokens[t])), row(x_, t, c.dim));
    }

    void resize_batch(std::size_t count) {
        const auto& c = m_.config;
        x_.resize(count * c.dim), xb_.resize(count * c.dim), xb2_.resize(count * c.dim), q_.resize(count * c.q_dim());
        att_.resize(count * c.q_dim());
        k_.resize(count * c.kv_dim()), v_.resize(count * c.kv_dim());
        hb_.resize(count * c.hidden_dim), hb2_.resize(count * c.hidden_dim);
    }

    /// The layers over a batch whose embeddings are in x_ (one row per token): row t at position pos + t of
    /// lane 0, or (`across_lanes`) at position pos of lane t.
    std::span<const float> run_batch(std::size_t count, std::size_t pos, bool all_logits, bool across_lanes) {
        const auto& c = m_.config;
        const auto lane_of = [&](std::size_t t) { return across_lanes ? t : 0; };
        const auto position_of = [&](std::size_t t) { return across_lanes ? pos : pos + t; };
        const std::size_t head = c.head_size(), kv_dim = c.kv_dim(), group = c.n_heads / c.n_kv_heads, dim = c.dim, q_dim = c.q_dim();
        std::size_t positions = 0;  // attention's work in every layer: the positions the batch's tokens see
        for (std::size_t t = 0; t < count; ++t) positions += position_of(t) + 1;
        // Residual additions below are single operations per element: no contraction to worry about.
        for (std::size_t l = 0; l < m_.layers.size(); ++l) {
            const auto& L = m_.layers[l];
            for (std::size_t t = 0; t < count; ++t) rms_norm(row(xb_, t, dim), row(x_, t, dim), L.attn_norm);
            matmul(L.wq, xb_, q_, count);
            matmul(L.wk, xb_, k_, count);
            matmul(L.wv, xb_, v_, count);
            for (std::size_t t = 0; t < count; ++t) {
                // llama.cpp's order: projection, bias (qwen2), per-head norm (qwen3), then RoPE.
                add_bias(row(q_, t, q_dim), L.bq);
                add_bias(row(k_, t, kv_dim), L.bk);
                add_bias(row(v_, t, kv_dim), L.bv);
                head_norm(row(q_, t, q_dim), L.q_norm);
                head_norm(row(k_, t, kv_dim), L.k_norm);
                rope(row(q_, t, q_dim), position_of(t));
                rope(row(k_, t, kv_dim), position_of(t));
                const std::size_t at = cache_offset(lane_of(t), l) + position_of(t) * kv_dim;
                float* key_row = key_cache_.data() + at;
                float* value_row = value_cache_.data() + at;
                std::copy_n(k_.begin() + static_cast<std::ptrdiff_t>(t * kv_dim), kv_dim, key_row);
                std::copy_n(v_.begin() + static_cast<std::ptrdiff_t>(t * kv_dim), kv_dim, value_row);
                if (kv_type_ == ggml_type::f16) {
                    for (std::size_t i = 0; i < kv_dim; ++i) key_row[i] = fp16_bits_to_fp32(fp32_to_fp16_bits(key_row[i]));
                    for (std::size_t i = 0; i < kv_dim; ++i) value_row[i] = fp16_bits_to_fp32(fp32_to_fp16_bits(value_row[i]));
                }
            }
            // Token t sees the cache up to its own position only: the causal mask. Heads cost the same and
            // share nothing, so a batch long enough to pay for it splits them over the pool.
            const auto heads = [&](std::size_t first, std::size_t last) {
                for (std::size_t h = first; h < last; ++h)
                    for (std::size_t t = 0; t < count; ++t)
                        attend(cache_offset(lane_of(t), l), position_of(t), head, group, h, q_.data() + t * q_dim, att_.data() + t * q_dim);
            };
            if (pool_ && positions * q_dim >= attention_split_work)
                pool_->parallel_for(c.n_heads, heads, 1);
            else
                heads(0, c.n_heads);
            matmul(L.wo, att_, xb2_, count);
            for (std::size_t i = 0; i < count * dim; ++i) x_[i] += xb2_[i];
            for (std::size_t t = 0; t < count; ++t) rms_norm(row(xb_, t, dim), row(x_, t, dim), L.ffn_norm);
            matmul(L.gate, xb_, hb_, count);
            matmul(L.up, xb_, hb2_, count);
            detail::swiglu(hb_, hb2_);
            matmul(L.down, hb_, xb_, count);
            for (std::size_t i = 0; i < count * dim; ++i) x_[i] += xb_[i];
        }
        // Only the rows whose logits are wanted go through the classifier, the largest product of all.
        const std::size_t first = all_logits ? 0 : count - 1, rows = count - first;
        xb_.resize(count * dim);
        for (std::size_t t = first; t < count; ++t) rms_norm(row(xb_, t - first, dim), row(x_, t, dim), m_.output_norm);
        xb_.resize(rows * dim);
        logits_.resize(rows * c.vocab_size);
        matmul(m_.classifier(), xb_, logits_, rows);
        return logits_;
    }

    void rms_norm(std::span<float> out, std::span<const float> x, const std::vector<float>& weight) const {
        detail::rms_norm(out, x, weight, m_.config.rms_norm_eps);
    }
    void rope(std::span<float> v, std::size_t pos) const {
        const auto& c = m_.config;
        detail::rope(v, pos, c.head_size(), c.rope_freq_base, c.rope_freq_scale, m_.rope_freqs, detail::rope_pairing_of(c.architecture));
    }
    /// v += bias, when the layer has one (an empty bias is none).
    static void add_bias(std::span<float> v, const std::vector<float>& bias) {
        if (bias.empty()) return;
        for (std::size_t i = 0; i < v.size(); ++i) v[i] += bias[i];
    }
    /// RMSNorm of each head of `v` with the same head-wide weight, when the layer has one.
    void head_norm(std::span<float> v, const std::vector<float>& weight) const {
        if (weight.empty()) return;
        const std::size_t head = weight.size();
        for (std::size_t h = 0; h < v.size() / head; ++h) {
            const auto one = v.subspan(h * head, head);
            detail::rms_norm(one, one, weight, m_.config.rms_norm_eps);
        }
    }

    /// Where layer l's cache of `lane` starts in key_cache_ and value_cache_.
    [[nodiscard]] std::size_t cache_offset(std::size_t lane, std::size_t l) const {
        return (lane * m_.config.n_layers + l) * context_ * m_.config.kv_dim();
    }

    /// Multiply-adds of attention in one batch (positions seen × query width) from which its heads are
    /// split over the pool: below it, waking the workers costs more than they save.
    static constexpr std::size_t attention_split_work = std::size_t{1} << 16;

    /// Head h of the token at `pos` whose queries are `q`, into `out`; each head has a row of scores_.
    void attend(std::size_t cache, std::size_t pos, std::size_t head, std::size_t group, std::size_t h, const float* q, float* out) {
        const std::size_t kv_dim = m_.config.kv_dim(), offset = (h / group) * head;
        detail::attention_head(q + h * head, key_cache_.data() + cache + offset, value_cache_.data() + cache + offset, kv_dim, head,
                               pos + 1, scores_.data() + h * context_, out + h * head);
    }

    /// out (count rows of w.rows) = in (count rows of w.cols) times w, through simd::gemm: one product per
    /// row and token, so a batch gives the values of its tokens run one at a time.
    void matmul(const weight_matrix& w, const std::vector<float>& in, std::vector<float>& out, std::size_t count) {
        const std::span<const float> x(in.data(), count * w.cols);
        if (observer_)
            for (std::size_t t = 0; t < count; ++t) observer_(w, x.subspan(t * w.cols, w.cols));
        const std::span<float> y(out.data(), count * w.rows);
        if (w.interleaved && mode_ == activation_mode::quantized) {
            if (pool_)
                simd::gemm(*w.interleaved, x, count, y, *pool_);
            else
                simd::gemm(*w.interleaved, x, count, y, 1);
        } else if (pool_) {
            simd::gemm(w.type, w.bytes(), w.rows, w.cols, x, count, y, *pool_, mode_);
        } else {
            simd::gemm(w.type, w.bytes(), w.rows, w.cols, x, count, y, 1, mode_);
        }
    }

    const llama_model& m_;
    activation_mode mode_;
    std::size_t context_;
    std::size_t lanes_;
    ggml_type kv_type_ = ggml_type::f32;
    std::vector<float> key_cache_, value_cache_;
    std::vector<float> x_, xb_, xb2_, q_, att_, k_, v_, hb_, hb2_, scores_, logits_;
    input_observer observer_;
    std::unique_ptr<thread_pool> pool_;
};

}  // namespace cogqat
