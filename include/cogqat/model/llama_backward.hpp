#pragma once
// Training the reference Llama: float parameters in GGUF's names and layout, one sequence's forward keeping
// the activations the backward needs, the backward, and a batch's gradients summed over threads. The forward
// is llama_session's float path on f32 weights operation for operation; its matrix products run on the SIMD
// table's float product (simd/float_gemm.hpp), whose sums run in another order than the session's, so the two
// agree to float rounding (tested), and the gradient is that of the model the runtime evaluates. Every
// architecture the runtime runs is trained: qwen2's biases and qwen3's per-head Q/K norms are parameters like
// the norms; Llama 3's rope_freqs is read, not trained. Each operation's forward and backward are free functions in
// detail::backward, templated on the scalar so that tests can differentiate them in double.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/matrix_shape.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/model/llama_model.hpp"
#include "cogqat/model/llama_schema.hpp"
#include "cogqat/model/llama_weights.hpp"
#include "cogqat/simd/float_gemm.hpp"

namespace cogqat {

struct llama_parameters;

namespace detail::backward {

/// Calls f(layer, tensor, rows, cols, values...) for every tensor in the schema's order (model/llama_schema.hpp),
/// `values` taken from each of `ps` in turn (one parameter set, or several of the same structure walked in
/// step). `layer` is no_layer for the model-wide tensors. Shapes come from the first set's config. Names are
/// not built here (tensor.gguf_name builds one), so checks on the training path allocate nothing.
template <class F, class First, class... Rest>
void for_each_slot(F&& f, First& first, Rest&... rest) {
    const auto& c = first.config;
    for_each_llama_tensor(c, first.tied_output, [&](const tensor_schema& t, std::size_t layer) {
        const matrix_shape shape = t.shape(c);
        visit_parameters(
                t.parameter, layer, [&](auto&... values) { f(layer, t, shape.rows, shape.cols, values...); }, first, rest...);
    });
}

/// Throws shape_error unless `p` has exactly the tensors `c`'s shape describes. `where` names the caller.
inline void require_parameters(const llama_parameters& p, const llama_config& c, std::string_view where);

/// Empty when `a` and `b` have the same tensors of the same shapes, else what differs.
[[nodiscard]] inline std::string shape_mismatch(const llama_parameters& a, const llama_parameters& b);

}  // namespace detail::backward

/// Float tensors of a llama-family model (llama, qwen2, qwen3) for training, in GGUF's names and layout: a
/// matrix is rows x cols row-major, rows = outputs, cols = GGUF ne[0] (the input width), exactly like
/// weight_matrix in llama_model.hpp. The members of rows an architecture lacks stay empty.
struct llama_parameters {
    llama_config config;
    bool tied_output = false;            ///< classifier = token_embedding
    std::vector<float> token_embedding;  ///< vocab_size x dim
    std::vector<float> output_norm;      ///< dim
    std::vector<float> output;           ///< vocab_size x dim; empty when tied
    /// Llama 3's per-pair RoPE frequency divisors, head_size / 2 (empty: none). Part of the positional
    /// encoding, not a learned weight: the backward gives it no gradient (see is_trained).
    std::vector<float> rope_freqs;
    struct layer {
        std::vector<float> attn_norm, ffn_norm, wq, wk, wv, wo, gate, down, up;
        std::vector<float> bq, bk, bv;      ///< qwen2's projection biases: q_dim, kv_dim, kv_dim
        std::vector<float> q_norm, k_norm;  ///< qwen3's per-head RMSNorm weights, head_size each
    };
    std::vector<layer> layers;

    /// Whether training changes `parameter`: every tensor but rope_freqs.
    [[nodiscard]] static constexpr bool is_trained(llama_parameter parameter) noexcept { return parameter != llama_parameter::rope_freqs; }

    /// Decodes every tensor of the model (any ggml type, via dequantize from format/codec.hpp) to float.
    [[nodiscard]] static llama_parameters from_model(const llama_model& m) {
        auto decode = [](const weight_matrix& w) {
            std::vector<float> values(w.rows * w.cols);
            dequantize(w.type, w.bytes(), values);
            return values;
        };
        llama_parameters p;
        p.config = m.config;
        p.tied_output = m.tied_output;
        p.layers.resize(m.layers.size());
        for_each_llama_tensor(m.config, m.tied_output, [&](const tensor_schema& t, std::size_t layer) {
            std::vector<float>& out = p.values(t.parameter, layer);
            visit_parameter(m, t.parameter, layer, [&](const auto& member) {
                if constexpr (std::is_same_v<std::remove_cvref_t<decltype(member)>, weight_matrix>)
                    out = decode(member);
                else
                    out = member;
            });
        });
        detail::backward::require_parameters(p, p.config, "llama_parameters::from_model");
        return p;
    }

    /// The values of `parameter` of layer `layer_index` (no_layer for a model-wide one).
    [[nodiscard]] std::vector<float>& values(llama_parameter parameter, std::size_t layer_index) {
        std::vector<float>* out = nullptr;
        visit_parameter(*this, parameter, layer_index, [&](std::vector<float>& v) { out = &v; });
        return *out;
    }
    [[nodiscard]] const std::vector<float>& values(llama_parameter parameter, std::size_t layer_index) const {
        return const_cast<llama_parameters&>(*this).values(parameter, layer_index);
    }

    /// The values of `parameter` of layer `layer_index` as a rows x cols view, in the schema's shape for this config;
    /// shape_error if they do not have it.
    [[nodiscard]] matrix_view<float> matrix(llama_parameter parameter, std::size_t layer_index) {
        return llama_tensor(parameter).shape(config).view(std::span<float>(values(parameter, layer_index)));
    }
    [[nodiscard]] matrix_view<const float> matrix(llama_parameter parameter, std::size_t layer_index) const {
        return llama_tensor(parameter).shape(config).view(std::span<const float>(values(parameter, layer_index)));
    }

    /// Same shapes, all zero.
    [[nodiscard]] static llama_parameters zeros_like(const llama_parameters& p) {
        llama_parameters z;
        z.config = p.config;
        z.tied_output = p.tied_output;
        z.layers.resize(p.layers.size());
        auto zero = [](std::size_t, const tensor_schema&, std::size_t, std::size_t, std::vector<float>& out, const std::vector<float>& in) {
            out.assign(in.size(), 0.0f);
        };
        detail::backward::for_each_slot(zero, z, p);
        return z;
    }

    /// Visits every tensor in the schema's order (llama_tensors in model/llama_schema.hpp; output.weight only when
    /// not tied): f(std::string_view gguf_name, std::vector<float>& values, std::size_t rows, std::size_t cols).
    /// Norm vectors have rows = 1, cols = dim.
    template <class F>
    void for_each_tensor(F&& f) {
        visit_named(*this, f);
    }
    /// As above, values passed as const std::vector<float>&.
    template <class F>
    void for_each_tensor(F&& f) const {
        visit_named(*this, f);
    }

    void set_zero() {
        auto zero = [](std::size_t, const tensor_schema&, std::size_t, std::size_t, std::vector<float>& v) {
            std::fill(v.begin(), v.end(), 0.0f);
        };
        detail::backward::for_each_slot(zero, *this);
    }

    /// Elementwise +=, each tensor's elements split over `threads` threads; shape_error if the shapes differ.
    void add(const llama_parameters& other, unsigned threads = 1) {
        if (const auto why = detail::backward::shape_mismatch(*this, other); !why.empty())
            throw shape_error("llama_parameters::add: " + why);
        auto accumulate = [threads](std::size_t, const tensor_schema&, std::size_t, std::size_t, std::vector<float>& a,
                                    const std::vector<float>& b) {
            parallel_for(
                    a.size(), threads,
                    [&](std::size_t begin, std::size_t end) {
                        for (std::size_t i = begin; i < end; ++i) a[i] += b[i];
                    },
                    std::size_t{1} << 16);
        };
        detail::backward::for_each_slot(accumulate, *this, other);
    }

private:
    template <class Self, class F>
    static void visit_named(Self& self, F& f) {
        std::string name;
        auto named = [&](std::size_t layer, const tensor_schema& slot, std::size_t rows, std::size_t cols, auto& values) {
            slot.gguf_name(name, layer);
            f(std::string_view(name), values, rows, cols);
        };
        detail::backward::for_each_slot(named, self);
    }
};

namespace detail::backward {

inline void require_parameters(const llama_parameters& p, const llama_config& c, std::string_view where) {
    const auto& q = p.config;
    if (q.architecture != c.architecture || q.rope_factors != c.rope_factors)
        throw shape_error(std::string(where) + ": parameters of a " + std::string(architecture_name(q.architecture)) +
                          (q.rope_factors ? " model with" : " model without") + " rope_freqs; expected " +
                          std::string(architecture_name(c.architecture)) + (c.rope_factors ? " with" : " without"));
    if (q.dim != c.dim || q.hidden_dim != c.hidden_dim || q.n_layers != c.n_layers || q.n_heads != c.n_heads ||
        q.n_kv_heads != c.n_kv_heads || q.vocab_size != c.vocab_size || q.head_size() != c.head_size())
        throw shape_error(std::string(where) + ": parameters of a model of dim " + std::to_string(q.dim) + ", hidden " +
                          std::to_string(q.hidden_dim) + ", " + std::to_string(q.n_layers) + " layers, " + std::to_string(q.n_heads) + "/" +
                          std::to_string(q.n_kv_heads) + " heads of " + std::to_string(q.head_size()) + ", vocab " +
                          std::to_string(q.vocab_size) + "; expected dim " + std::to_string(c.dim) + ", hidden " +
                          std::to_string(c.hidden_dim) + ", " + std::to_string(c.n_layers) + " layers, " + std::to_string(c.n_heads) + "/" +
                          std::to_string(c.n_kv_heads) + " heads of " + std::to_string(c.head_size()) + ", vocab " +
                          std::to_string(c.vocab_size));
    if (p.layers.size() != c.n_layers)
        throw shape_error(std::string(where) + ": " + std::to_string(p.layers.size()) + " layers for a model of " +
                          std::to_string(c.n_layers));
    auto check = [&](std::size_t layer, const tensor_schema& slot, std::size_t rows, std::size_t cols, const std::vector<float>& values) {
        if (values.size() == rows * cols) return;
        std::string name;
        slot.gguf_name(name, layer);
        throw shape_error(std::string(where) + ": " + name + " has " + std::to_string(values.size()) + " values, expected " +
                          std::to_string(rows) + " x " + std::to_string(cols));
    };
    for_each_slot(check, p);
}

inline std::string shape_mismatch(const llama_parameters& a, const llama_parameters& b) {
    const auto &x = a.config, &y = b.config;
    if (x.dim != y.dim || x.hidden_dim != y.hidden_dim || x.n_heads != y.n_heads || x.n_kv_heads != y.n_kv_heads ||
        x.vocab_size != y.vocab_size || x.head_size() != y.head_size())
        return "the models have different shapes";
    if (x.architecture != y.architecture || x.rope_factors != y.rope_factors) return "the models are of different architectures";
    if (a.tied_output != b.tied_output) return "one classifier is tied to the embedding, the other is not";
    if (a.layers.size() != b.layers.size()) return std::to_string(a.layers.size()) + " layers against " + std::to_string(b.layers.size());
    std::string why;
    auto compare = [&](std::size_t layer, const tensor_schema& slot, std::size_t, std::size_t, const std::vector<float>& u,
                       const std::vector<float>& v) {
        if (!why.empty() || u.size() == v.size()) return;
        slot.gguf_name(why, layer);
        why += " has " + std::to_string(u.size()) + " values against " + std::to_string(v.size());
    };
    for_each_slot(compare, a, b);
    return why;
}

inline void require_size(std::size_t actual, std::size_t expected, const char* op, const char* name) {
    if (actual != expected)
        throw shape_error(std::string(op) + ": " + name + " has " + std::to_string(actual) + " values, expected " +
                          std::to_string(expected));
}

}  // namespace detail::backward

COGQAT_STRICT_FP_BEGIN

namespace detail::backward {

#if defined(__GNUC__)
// GCC and clang: the eight running sums of a float dot8 as two 4-float generic vectors (lanes 0-3, 4-7).
// As a scalar array GCC keeps them in memory (and, over four rows at once, shuffles them), as one 8-float
// vector without AVX too; 16-byte vectors stay in registers, 2-3x faster. Lane arithmetic is IEEE per lane,
// so the results have the scalar code's bits.
using float4 [[gnu::vector_size(16)]] = float;

// By memcpy: unaligned, no aliasing questions. Into a reference, not returned: GCC warns that the ABI of a
// call passing a vector by value depends on -mavx.
inline void load(float4& to, const float* from) noexcept { std::memcpy(&to, from, sizeof to); }

inline float dot8_float4(const float* a, const float* b, std::size_t n) noexcept {
    float4 lo = {}, hi = {}, a_lo, a_hi, b_lo, b_hi;
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        load(a_lo, a + i), load(a_hi, a + i + 4), load(b_lo, b + i), load(b_hi, b + i + 4);
        lo += b_lo * a_lo;
        hi += b_hi * a_hi;
    }
    for (; i < n; ++i) lo[0] += b[i] * a[i];
    const float4 q = lo + hi;  // the first pairwise step: lane k += lane k + 4
    return (q[0] + q[2]) + (q[1] + q[3]);
}

#endif

/// Dot product with eight running sums added pairwise at the end (vec_dot_f32's order), attention's: one that
/// vectorizes without reassociating.
template <class Real>
[[nodiscard]] inline Real dot8(const Real* a, const Real* b, std::size_t n) noexcept {
#if defined(__GNUC__)
    if constexpr (std::is_same_v<Real, float>) return dot8_float4(a, b, n);
#endif
    constexpr std::size_t lanes = 8;
    Real partial[lanes] = {};
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes)
        for (std::size_t k = 0; k < lanes; ++k) partial[k] += b[i + k] * a[i + k];
    for (; i < n; ++i) partial[0] += b[i] * a[i];
    for (std::size_t width = lanes / 2; width > 0; width /= 2)
        for (std::size_t k = 0; k < width; ++k) partial[k] += partial[k + width];
    return partial[0];
}

/// C (m x n) = A·B, or += with `accumulate`, A(i, p) at a[i a_row + p a_col] and B(p, j) at b[p b_row + j b_col]:
/// simd::float_gemm's arithmetic, on the SIMD table for float and by its reference for the gradient checks'
/// double. Every element sums its terms in ascending p, so a row's values do not depend on the other rows.
template <class Real>
void product(std::size_t m, std::size_t n, std::size_t k, const Real* a, std::size_t a_row, std::size_t a_col, const Real* b,
             std::size_t b_row, std::size_t b_col, Real* c, std::size_t c_row, bool accumulate) {
    if constexpr (std::is_same_v<Real, float>)
        simd::gemm_kernel()(dispatch::f32_product{m, n, k, a, a_row, a_col, b, b_row, b_col, c, c_row, accumulate});
    else
        simd::gemm_reference<false>(m, n, k, a, a_row, a_col, b, b_row, b_col, c, c_row, accumulate);
}

/// Y (rows x out) = X (rows x in) · Wᵀ, W out x in.
template <class Real>
void matmul(std::span<const Real> x, std::span<const Real> w, std::span<Real> y, std::size_t rows, std::size_t in, std::size_t out) {
    require_size(x.size(), rows * in, "matmul", "x");
    require_size(w.size(), out * in, "matmul", "w");
    require_size(y.size(), rows * out, "matmul", "y");
    product<Real>(rows, out, in, x.data(), in, 1, w.data(), 1, in, y.data(), out, false);
}

/// dX (rows x in) += dY (rows x out) · W.
template <class Real>
void matmul_backward_input(std::span<const Real> dy, std::span<const Real> w, std::span<Real> dx, std::size_t rows, std::size_t in,
                           std::size_t out) {
    require_size(dy.size(), rows * out, "matmul_backward_input", "dy");
    require_size(w.size(), out * in, "matmul_backward_input", "w");
    require_size(dx.size(), rows * in, "matmul_backward_input", "dx");
    product<Real>(rows, in, out, dy.data(), out, 1, w.data(), in, 1, dx.data(), in, true);
}

/// dW (out x in) += dYᵀ · X.
template <class Real>
void matmul_backward_weight(std::span<const Real> dy, std::span<const Real> x, std::span<Real> dw, std::size_t rows, std::size_t in,
                            std::size_t out) {
    require_size(dy.size(), rows * out, "matmul_backward_weight", "dy");
    require_size(x.size(), rows * in, "matmul_backward_weight", "x");
    require_size(dw.size(), out * in, "matmul_backward_weight", "dw");
    product<Real>(out, in, rows, dy.data(), 1, out, x.data(), in, 1, dw.data(), in, true);
}

inline void require_token(std::int32_t token, std::size_t index, std::size_t vocab, const char* op) {
    if (token < 0 || static_cast<std::size_t>(token) >= vocab)
        throw invalid_argument_error(std::string(op) + ": token " + std::to_string(token) + " at index " + std::to_string(index) +
                                     " is out of range [0, " + std::to_string(vocab) + ")");
}

/// out (tokens x width) = the table's rows (width values each) for the tokens.
template <class Real>
void embedding_gather(std::span<const Real> table, std::size_t width, std::span<const std::int32_t> tokens, std::span<Real> out) {
    if (width == 0 || table.size() % width != 0)
        throw shape_error("embedding_gather: a table of " + std::to_string(table.size()) + " values has no rows of " +
                          std::to_string(width));
    require_size(out.size(), tokens.size() * width, "embedding_gather", "out");
    for (std::size_t t = 0; t < tokens.size(); ++t) {
        require_token(tokens[t], t, table.size() / width, "embedding_gather");
        const Real* row = table.data() + static_cast<std::size_t>(tokens[t]) * width;
        std::copy(row, row + width, out.data() + t * width);
    }
}

/// dtable's rows for the tokens += dout's rows (a token seen twice gets both).
template <class Real>
void embedding_scatter_add(std::span<const Real> dout, std::size_t width, std::span<const std::int32_t> tokens, std::span<Real> dtable) {
    if (width == 0 || dtable.size() % width != 0)
        throw shape_error("embedding_scatter_add: a table of " + std::to_string(dtable.size()) + " values has no rows of " +
                          std::to_string(width));
    require_size(dout.size(), tokens.size() * width, "embedding_scatter_add", "dout");
    for (std::size_t t = 0; t < tokens.size(); ++t) {
        require_token(tokens[t], t, dtable.size() / width, "embedding_scatter_add");
        Real* row = dtable.data() + static_cast<std::size_t>(tokens[t]) * width;
        const Real* g = dout.data() + t * width;
        for (std::size_t i = 0; i < width; ++i) row[i] += g[i];
    }
}

/// Per row of x (rows x weight.size()): out = x * r * weight, r = 1/sqrt(mean(x^2) + eps) with the mean
/// accumulated in double, as detail::rms_norm. r is kept per row for the backward.
template <class Real>
void rms_norm_forward(std::span<const Real> x, std::span<const Real> weight, Real eps, std::span<Real> out, std::span<Real> inv_rms,
                      std::size_t rows) {
    const std::size_t n = weight.size();
    require_size(x.size(), rows * n, "rms_norm_forward", "x");
    require_size(out.size(), rows * n, "rms_norm_forward", "out");
    require_size(inv_rms.size(), rows, "rms_norm_forward", "inv_rms");
    for (std::size_t t = 0; t < rows; ++t) {
        const Real* xr = x.data() + t * n;
        Real* o = out.data() + t * n;
        double squares = 0.0;
        for (std::size_t i = 0; i < n; ++i) squares += static_cast<double>(xr[i]) * xr[i];
        const Real scale = Real(1) / std::sqrt(static_cast<Real>(squares / static_cast<double>(n)) + eps);
        inv_rms[t] = scale;
        for (std::size_t i = 0; i < n; ++i) o[i] = xr[i] * scale * weight[i];
    }
}

/// dx += dL/dx and dweight += dL/dweight of rms_norm_forward, given dout and the forward's x and r:
/// dx_j = r w_j dy_j - x_j r^3/n Σ_i dy_i w_i x_i, dweight_j = Σ_rows dy_j x_j r.
template <class Real>
void rms_norm_backward(std::span<const Real> dout, std::span<const Real> x, std::span<const Real> weight, std::span<const Real> inv_rms,
                       std::span<Real> dx, std::span<Real> dweight, std::size_t rows) {
    const std::size_t n = weight.size();
    require_size(dout.size(), rows * n, "rms_norm_backward", "dout");
    require_size(x.size(), rows * n, "rms_norm_backward", "x");
    require_size(inv_rms.size(), rows, "rms_norm_backward", "inv_rms");
    require_size(dx.size(), rows * n, "rms_norm_backward", "dx");
    require_size(dweight.size(), n, "rms_norm_backward", "dweight");
    for (std::size_t t = 0; t < rows; ++t) {
        const Real *g = dout.data() + t * n, *xr = x.data() + t * n;
        Real* d = dx.data() + t * n;
        const Real r = inv_rms[t];
        double projection = 0.0;
        for (std::size_t i = 0; i < n; ++i) projection += static_cast<double>(g[i]) * weight[i] * xr[i];
        const double rd = r;
        const Real coef = static_cast<Real>(projection * rd * rd * rd / static_cast<double>(n));
        for (std::size_t i = 0; i < n; ++i) {
            d[i] += r * weight[i] * g[i] - coef * xr[i];
            dweight[i] += g[i] * (xr[i] * r);
        }
    }
}

/// cos and sin of every (position, pair) angle, positions x head/2, built as detail::rope builds them:
/// pair i at position pos turns by freq_scale * (theta_i / factors[i]), theta_i = pos times the running product
/// of base^(-2/head), in float; `factors` (Llama 3's rope_freqs) empty means 1, and neither a factor nor a
/// scale of 1 changes a bit of the unscaled angle.
inline void rope_table(std::size_t positions, std::size_t head, float base, std::span<float> cos, std::span<float> sin,
                       float freq_scale = 1.0f, std::span<const float> factors = {}) {
    if (head == 0 || head % 2 != 0)
        throw invalid_argument_error("rope_table: head size " + std::to_string(head) + " is not a positive even number");
    const std::size_t pairs = head / 2;
    require_size(cos.size(), positions * pairs, "rope_table", "cos");
    require_size(sin.size(), positions * pairs, "rope_table", "sin");
    if (!factors.empty()) require_size(factors.size(), pairs, "rope_table", "factors");
    for (std::size_t i = 0; i < factors.size(); ++i)
        if (!(factors[i] > 0.0f) || !std::isfinite(factors[i]))
            throw invalid_argument_error("rope_table: frequency factor " + std::to_string(i) + " is " + std::to_string(factors[i]) +
                                         ", not a positive finite number");
    if (!(freq_scale > 0.0f) || !std::isfinite(freq_scale))
        throw invalid_argument_error("rope_table: frequency scale " + std::to_string(freq_scale) + " is not a positive finite number");
    const float theta_scale = std::pow(base, -2.0f / static_cast<float>(head));
    for (std::size_t pos = 0; pos < positions; ++pos) {
        float theta = static_cast<float>(pos);
        for (std::size_t i = 0; i < pairs; ++i) {
            const float angle = freq_scale * (factors.empty() ? theta : theta / factors[i]);
            cos[pos * pairs + i] = std::cos(angle);
            sin[pos * pairs + i] = std::sin(angle);
            theta *= theta_scale;
        }
    }
}

inline void require_rope(std::size_t size, std::size_t rows, std::size_t head, std::size_t table, const char* op) {
    if (head == 0 || head % 2 != 0)
        throw invalid_argument_error(std::string(op) + ": head size " + std::to_string(head) + " is not a positive even number");
    if (rows == 0 ? size != 0 : size % (rows * head) != 0)
        throw shape_error(std::string(op) + ": " + std::to_string(size) + " values are not " + std::to_string(rows) +
                          " rows of whole heads of " + std::to_string(head));
    if (table < rows * (head / 2))
        throw shape_error(std::string(op) + ": the table covers fewer than " + std::to_string(rows) + " positions");
}

/// Calls turn(a, b, cos, sin) for pair i of every head of row t of x (rows x width) with the table's angle of
/// (t, i): the pair's values are (2i, 2i+1), adjacent, or (i, i + head/2), the halves. The layout's stride is a
/// compile-time constant in either case, so that the loop over pairs vectorizes as a fixed-stride one would.
template <class Real, class Turn>
void for_each_rope_pair(std::span<Real> x, std::size_t rows, std::size_t head, std::span<const float> cos, std::span<const float> sin,
                        detail::rope_pairing pairing, Turn&& turn) {
    if (rows == 0) return;
    const std::size_t width = x.size() / rows, pairs = head / 2;
    auto run = [&](auto step, auto offset) {
        for (std::size_t t = 0; t < rows; ++t)
            for (std::size_t h = 0; h < width; h += head) {
                Real* v = x.data() + t * width + h;
                for (std::size_t i = 0; i < pairs; ++i) turn(v[i * step], v[i * step + offset], cos[t * pairs + i], sin[t * pairs + i]);
            }
    };
    if (pairing == detail::rope_pairing::adjacent)
        run(std::integral_constant<std::size_t, 2>{}, std::integral_constant<std::size_t, 1>{});
    else
        run(std::integral_constant<std::size_t, 1>{}, pairs);
}

/// Rotates, in place, the pairs of every head of row t (at position t) of x by the table's angles: adjacent
/// pairs (llama) or the two halves (qwen2, qwen3), as detail::rope pairs them.
template <class Real>
void rope_forward(std::span<Real> x, std::size_t rows, std::size_t head, std::span<const float> cos, std::span<const float> sin,
                  detail::rope_pairing pairing = detail::rope_pairing::adjacent) {
    require_rope(x.size(), rows, head, std::min(cos.size(), sin.size()), "rope_forward");
    for_each_rope_pair<Real>(x, rows, head, cos, sin, pairing, [](Real& a, Real& b, float c, float s) {
        const Real x0 = a, x1 = b;
        a = x0 * c - x1 * s;
        b = x0 * s + x1 * c;
    });
}

/// The backward of rope_forward, in place: a rotation's gradient is the gradient rotated back.
template <class Real>
void rope_backward(std::span<Real> dx, std::size_t rows, std::size_t head, std::span<const float> cos, std::span<const float> sin,
                   detail::rope_pairing pairing = detail::rope_pairing::adjacent) {
    require_rope(dx.size(), rows, head, std::min(cos.size(), sin.size()), "rope_backward");
    for_each_rope_pair<Real>(dx, rows, head, cos, sin, pairing, [](Real& a, Real& b, float c, float s) {
        const Real g0 = a, g1 = b;
        a = g0 * c + g1 * s;
        b = g1 * c - g0 * s;
    });
}

/// Each row of x (rows x bias.size()) += bias: qwen2's projection biases.
template <class Real>
void bias_forward(std::span<Real> x, std::span<const Real> bias, std::size_t rows) {
    const std::size_t n = bias.size();
    require_size(x.size(), rows * n, "bias_forward", "x");
    for (std::size_t t = 0; t < rows; ++t)
        for (std::size_t i = 0; i < n; ++i) x[t * n + i] += bias[i];
}

/// dbias += the sum of dout's rows: the backward of bias_forward (dx is dout itself).
template <class Real>
void bias_backward(std::span<const Real> dout, std::span<Real> dbias, std::size_t rows) {
    const std::size_t n = dbias.size();
    require_size(dout.size(), rows * n, "bias_backward", "dout");
    for (std::size_t t = 0; t < rows; ++t)
        for (std::size_t i = 0; i < n; ++i) dbias[i] += dout[t * n + i];
}

inline std::size_t heads_of(std::size_t size, std::size_t rows, std::size_t head, const char* op) {
    if (head == 0 || (rows == 0 ? size != 0 : size % (rows * head) != 0))
        throw shape_error(std::string(op) + ": " + std::to_string(size) + " values are not " + std::to_string(rows) +
                          " rows of whole heads of " + std::to_string(head));
    return rows == 0 ? 0 : size / (rows * head);
}

/// qwen3's per-head RMSNorm: every head (weight.size() values) of every row of x is normalized on its own
/// and scaled by the one head-wide weight, as rms_norm_forward on rows x heads rows. inv_rms: one per head
/// and row, kept for the backward.
template <class Real>
void head_rms_norm_forward(std::span<const Real> x, std::span<const Real> weight, Real eps, std::span<Real> out, std::span<Real> inv_rms,
                           std::size_t rows) {
    const std::size_t heads = heads_of(x.size(), rows, weight.size(), "head_rms_norm_forward");
    rms_norm_forward<Real>(x, weight, eps, out, inv_rms, rows * heads);
}

/// dx += dL/dx and dweight += dL/dweight of head_rms_norm_forward: the shared weight's gradient summed over
/// heads and rows.
template <class Real>
void head_rms_norm_backward(std::span<const Real> dout, std::span<const Real> x, std::span<const Real> weight,
                            std::span<const Real> inv_rms, std::span<Real> dx, std::span<Real> dweight, std::size_t rows) {
    const std::size_t heads = heads_of(x.size(), rows, weight.size(), "head_rms_norm_backward");
    rms_norm_backward<Real>(dout, x, weight, inv_rms, dx, dweight, rows * heads);
}

/// Values of the attention probabilities of `heads` heads over `rows` rows: a lower triangle per head.
[[nodiscard]] constexpr std::size_t attention_probs_size(std::size_t rows, std::size_t heads) noexcept {
    return heads * (rows * (rows + 1) / 2);
}

/// Scratch of the attention kernels, grown on first use of a length and reused after: one head's rows x rows
/// scores (or their gradients) and probabilities, full squares whose entries above the diagonal are zero, so
/// that the head's products run on the float product (product()) as whole matrices.
template <class Real>
struct attention_workspace {
    std::vector<Real> scores, probs;
};

inline void require_attention(std::size_t q, std::size_t k, std::size_t v, std::size_t probs, std::size_t out, std::size_t rows,
                              std::size_t heads, std::size_t kv_heads, std::size_t head, const char* op) {
    if (heads == 0 || kv_heads == 0 || heads % kv_heads != 0 || head == 0)
        throw invalid_argument_error(std::string(op) + ": " + std::to_string(heads) + " query heads do not share " +
                                     std::to_string(kv_heads) + " kv heads of " + std::to_string(head) + " evenly");
    require_size(q, rows * heads * head, op, "q");
    require_size(k, rows * kv_heads * head, op, "k");
    require_size(v, rows * kv_heads * head, op, "v");
    require_size(probs, attention_probs_size(rows, heads), op, "probs");
    require_size(out, rows * heads * head, op, "out");
}

/// Grows v to at least n values.
template <class Real>
void at_least(std::vector<Real>& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
}

/// p[s] = exp((x[s] - max x) scale) / Σ, s < n (scale > 0): one row of attention's softmax. For float on the
/// SIMD table's exp kernels (loss_kernels: xsimd's exp, about 1 ulp, the normalizer summed in blocks and in
/// double), else in the scalar loop, the normalizer in double.
template <class Real>
void softmax_row(const Real* x, std::size_t n, Real scale, Real* p) {
    Real max = x[0];
    for (std::size_t s = 1; s < n; ++s) max = std::max(max, x[s]);
    if constexpr (std::is_same_v<Real, float>) {
        const auto& k = dispatch::active().loss;
        if (k.exp_sum && k.scaled_exp) {
            const double sum = k.exp_sum(x, n, max, scale);
            k.scaled_exp(x, n, max, scale, static_cast<float>(1.0 / sum), p);
            return;
        }
    }
    double sum = 0.0;
    for (std::size_t s = 0; s < n; ++s) {
        p[s] = std::exp((x[s] - max) * scale);
        sum += p[s];
    }
    for (std::size_t s = 0; s < n; ++s) p[s] = static_cast<Real>(p[s] / sum);
}

/// Causal grouped-query attention, row t at position t: query head h attends over rows 0..t with kv head
/// h / (heads / kv_heads), scores scaled by 1/sqrt(head), softmax. Per head, the scores Q·Kᵀ and the output P·V
/// are float products over the whole square (P zero above the diagonal, where a zero term leaves a sum as it
/// was). q, out: rows x heads*head; k, v: rows x kv_heads*head. The probabilities are kept for the backward:
/// per head, row t's t+1 values from offset t(t+1)/2.
template <class Real>
void attention_forward(std::span<const Real> q, std::span<const Real> k, std::span<const Real> v, std::span<Real> probs,
                       std::span<Real> out, attention_workspace<Real>& ws, std::size_t rows, std::size_t heads, std::size_t kv_heads,
                       std::size_t head) {
    require_attention(q.size(), k.size(), v.size(), probs.size(), out.size(), rows, heads, kv_heads, head, "attention_forward");
    const std::size_t dim = heads * head, kv_dim = kv_heads * head, group = heads / kv_heads, triangle = rows * (rows + 1) / 2;
    const Real scale = Real(1) / std::sqrt(static_cast<Real>(head));
    at_least(ws.scores, rows * rows);
    at_least(ws.probs, rows * rows);
    Real *scores = ws.scores.data(), *full = ws.probs.data();
    for (std::size_t h = 0; h < heads; ++h) {
        const std::size_t kv_offset = (h / group) * head;
        // scores[t][s] = Σ_i Q[t][h, i] K[s][kv, i]: B(i, s) is K's row s read down its head.
        product<Real>(rows, rows, head, q.data() + h * head, dim, 1, k.data() + kv_offset, 1, kv_dim, scores, rows, false);
        for (std::size_t t = 0; t < rows; ++t) {
            Real* p = probs.data() + h * triangle + t * (t + 1) / 2;
            softmax_row(scores + t * rows, t + 1, scale, p);
            Real* ft = full + t * rows;
            for (std::size_t s = 0; s <= t; ++s) ft[s] = p[s];
            for (std::size_t s = t + 1; s < rows; ++s) ft[s] = Real(0);
        }
        product<Real>(rows, head, rows, full, rows, 1, v.data() + kv_offset, kv_dim, 1, out.data() + h * head, dim, false);
    }
}

/// dq, dk, dv += the gradients of attention_forward given dout and the forward's q, k, v and probabilities.
/// With P a row's probabilities and dP = dout·v, the scores' gradient is P ⊙ (dP - Σ P dP), scaled by
/// 1/sqrt(head) on its way to q and k. Per head, dP = dO·Vᵀ, dQ += dS·K, dK += dSᵀ·Q and dV += Pᵀ·dO are float
/// products over the whole square (dS and P zero above the diagonal); the heads that share a kv head add to
/// its dK and dV in ascending order.
template <class Real>
void attention_backward(std::span<const Real> dout, std::span<const Real> q, std::span<const Real> k, std::span<const Real> v,
                        std::span<const Real> probs, std::span<Real> dq, std::span<Real> dk, std::span<Real> dv,
                        attention_workspace<Real>& ws, std::size_t rows, std::size_t heads, std::size_t kv_heads, std::size_t head) {
    require_attention(q.size(), k.size(), v.size(), probs.size(), dout.size(), rows, heads, kv_heads, head, "attention_backward");
    require_size(dq.size(), q.size(), "attention_backward", "dq");
    require_size(dk.size(), k.size(), "attention_backward", "dk");
    require_size(dv.size(), v.size(), "attention_backward", "dv");
    const std::size_t dim = heads * head, kv_dim = kv_heads * head, group = heads / kv_heads, triangle = rows * (rows + 1) / 2;
    const Real scale = Real(1) / std::sqrt(static_cast<Real>(head));
    at_least(ws.scores, rows * rows);
    at_least(ws.probs, rows * rows);
    Real *ds = ws.scores.data(), *full = ws.probs.data();
    for (std::size_t h = 0; h < heads; ++h) {
        const std::size_t kv_offset = (h / group) * head;
        const Real* g = dout.data() + h * head;
        // dP[t][s] = Σ_i dO[t][h, i] V[s][kv, i], in ds until the scores' gradient replaces it row by row.
        product<Real>(rows, rows, head, g, dim, 1, v.data() + kv_offset, 1, kv_dim, ds, rows, false);
        for (std::size_t t = 0; t < rows; ++t) {
            const Real* p = probs.data() + h * triangle + t * (t + 1) / 2;
            Real *dst = ds + t * rows, *ft = full + t * rows;
            const std::size_t n = t + 1;
            const Real expected = dot8(p, dst, n);
            for (std::size_t s = 0; s < n; ++s) {
                dst[s] = p[s] * (dst[s] - expected) * scale;
                ft[s] = p[s];
            }
            for (std::size_t s = n; s < rows; ++s) dst[s] = ft[s] = Real(0);
        }
        product<Real>(rows, head, rows, ds, rows, 1, k.data() + kv_offset, kv_dim, 1, dq.data() + h * head, dim, true);
        product<Real>(rows, head, rows, ds, 1, rows, q.data() + h * head, dim, 1, dk.data() + kv_offset, kv_dim, true);
        product<Real>(rows, head, rows, full, 1, rows, g, dim, 1, dv.data() + kv_offset, kv_dim, true);
    }
}

/// out = silu(gate) * up = gate / (1 + exp(-gate)) * up, as detail::swiglu.
template <class Real>
void swiglu_forward(std::span<const Real> gate, std::span<const Real> up, std::span<Real> out) {
    require_size(up.size(), gate.size(), "swiglu_forward", "up");
    require_size(out.size(), gate.size(), "swiglu_forward", "out");
    for (std::size_t i = 0; i < gate.size(); ++i) out[i] = gate[i] / (Real(1) + std::exp(-gate[i])) * up[i];
}

/// dgate, dup += the gradients of swiglu_forward: silu'(g) = σ(g) (1 + g (1 - σ(g))).
template <class Real>
void swiglu_backward(std::span<const Real> dout, std::span<const Real> gate, std::span<const Real> up, std::span<Real> dgate,
                     std::span<Real> dup) {
    const std::size_t n = gate.size();
    require_size(dout.size(), n, "swiglu_backward", "dout");
    require_size(up.size(), n, "swiglu_backward", "up");
    require_size(dgate.size(), n, "swiglu_backward", "dgate");
    require_size(dup.size(), n, "swiglu_backward", "dup");
    for (std::size_t i = 0; i < n; ++i) {
        const Real g = gate[i], denominator = Real(1) + std::exp(-g);
        const Real sigmoid = Real(1) / denominator, silu = g / denominator;
        dgate[i] += dout[i] * up[i] * (sigmoid * (Real(1) + g * (Real(1) - sigmoid)));
        dup[i] += dout[i] * silu;
    }
}

/// What a layer's backward needs of its forward, each T rows: the input x and its norm xn1 (with the per-row
/// 1/rms r1), q and k after RoPE, v, the attention probabilities and output, the residual after attention and
/// its norm, and the feed-forward's gate, up and their product. With head norms (qwen3) also the projections
/// q_in, k_in (biases added) they normalize and their per-head 1/rms.
struct layer_activations {
    std::vector<float> x, xn1, r1, q, k, v, probs, att, xmid, xn2, r2, gate, up, act;
    std::vector<float> q_in, k_in, q_inv_rms, k_inv_rms;
};

/// A layer's scratch: the projection back to the residual width, and the gradients on the way down.
struct layer_scratch {
    std::vector<float> tmp, dxn, dq, dk, dv, datt, dact, dgate, dup, dq_in, dk_in;
    attention_workspace<float> attention;
};

/// Throws invalid_argument_error unless `c` is a shape the training passes run. `where` names the caller.
inline void require_trainable_shape(const llama_config& c, std::string_view where) {
    if (c.dim == 0 || c.hidden_dim == 0 || c.vocab_size == 0 || c.n_heads == 0 || c.n_kv_heads == 0 ||
        (c.head_dim == 0 && c.dim % c.n_heads != 0) || c.n_heads % c.n_kv_heads != 0 || c.head_size() == 0 || c.head_size() % 2 != 0)
        throw invalid_argument_error(std::string(where) + ": inconsistent shape: dim " + std::to_string(c.dim) + ", hidden " +
                                     std::to_string(c.hidden_dim) + ", vocab " + std::to_string(c.vocab_size) + ", heads " +
                                     std::to_string(c.n_heads) + ", kv heads " + std::to_string(c.n_kv_heads) + ", head size " +
                                     std::to_string(c.head_size()) +
                                     " (heads of an even size, dim / heads unless set, kv heads dividing heads)");
}

/// The RoPE angles' cos and sin for a number of positions with a set of frequency factors, rebuilt only
/// when either changes (a run's factors do not: they are not trained).
class rope_cache {
public:
    void build(const llama_config& c, std::size_t positions, const std::vector<float>& factors) {
        if (positions_ == positions && factors == factors_) return;
        factors_ = factors;
        cos_.resize(positions * c.head_size() / 2), sin_.resize(positions * c.head_size() / 2);
        rope_table(positions, c.head_size(), c.rope_freq_base, cos_, sin_, c.rope_freq_scale, factors_);
        positions_ = positions;
    }
    /// The angles of positions 0..T-1.
    [[nodiscard]] std::span<const float> cos(std::size_t T, std::size_t head) const noexcept { return {cos_.data(), T * head / 2}; }
    [[nodiscard]] std::span<const float> sin(std::size_t T, std::size_t head) const noexcept { return {sin_.data(), T * head / 2}; }

private:
    std::size_t positions_ = 0;
    std::vector<float> cos_, sin_, factors_;
};

/// One decoder layer's arithmetic over the T rows of a sequence at positions 0..T-1, in llama_session's order.
/// The whole-model pass and the single-layer pass both run it, so a layer computes the same bits in either.
class decoder_layer {
public:
    explicit decoder_layer(const llama_config& c)
            : c_(c),
              biases_(llama_tensor(llama_parameter::bq).applies_to(c.architecture)),
              head_norms_(llama_tensor(llama_parameter::q_norm).applies_to(c.architecture)) {}

    [[nodiscard]] const llama_config& config() const noexcept { return c_; }
    [[nodiscard]] bool biases() const noexcept { return biases_; }
    [[nodiscard]] bool head_norms() const noexcept { return head_norms_; }

    // Buffers only grow, so passes over sequences no longer than one already seen allocate nothing.
    void reserve(layer_activations& A, std::size_t T) const {
        const std::size_t dim = c_.dim, hidden = c_.hidden_dim, q_dim = c_.q_dim(), kv = c_.kv_dim();
        for (auto* v : {&A.x, &A.xn1, &A.xmid, &A.xn2}) grow(*v, T * dim);
        for (auto* v : {&A.q, &A.att}) grow(*v, T * q_dim);
        for (auto* v : {&A.k, &A.v}) grow(*v, T * kv);
        for (auto* v : {&A.gate, &A.up, &A.act}) grow(*v, T * hidden);
        grow(A.r1, T), grow(A.r2, T);
        grow(A.probs, attention_probs_size(T, c_.n_heads));
        if (head_norms_) {
            grow(A.q_in, T * q_dim), grow(A.k_in, T * kv);
            grow(A.q_inv_rms, T * c_.n_heads), grow(A.k_inv_rms, T * c_.n_kv_heads);
        }
    }
    void reserve(layer_scratch& s, std::size_t T) const {
        const std::size_t dim = c_.dim, hidden = c_.hidden_dim, q_dim = c_.q_dim(), kv = c_.kv_dim();
        for (auto* v : {&s.tmp, &s.dxn}) grow(*v, T * dim);
        for (auto* v : {&s.dq, &s.datt}) grow(*v, T * q_dim);
        for (auto* v : {&s.dk, &s.dv}) grow(*v, T * kv);
        for (auto* v : {&s.dact, &s.dgate, &s.dup}) grow(*v, T * hidden);
        if (head_norms_) grow(s.dq_in, T * q_dim), grow(s.dk_in, T * kv);
    }

    /// next (T x dim) = the layer's output for the input in A.x, keeping in A what the backward needs.
    void forward(const llama_parameters::layer& W, layer_activations& A, std::span<float> next, std::size_t T, const rope_cache& rope,
                 layer_scratch& s) const {
        const std::size_t dim = c_.dim, hidden = c_.hidden_dim, q_dim = c_.q_dim(), kv = c_.kv_dim(), head = c_.head_size(),
                          heads = c_.n_heads, kv_heads = c_.n_kv_heads;
        const float eps = c_.rms_norm_eps;
        const auto cos = rope.cos(T, head), sin = rope.sin(T, head);
        const auto pairing = detail::rope_pairing_of(c_.architecture);
        const auto tmp = rows(s.tmp, T, dim);
        const auto x = rows(A.x, T, dim), xn1 = rows(A.xn1, T, dim), q = rows(A.q, T, q_dim), k = rows(A.k, T, kv), v = rows(A.v, T, kv),
                   att = rows(A.att, T, q_dim);
        const auto xmid = rows(A.xmid, T, dim), xn2 = rows(A.xn2, T, dim), gate = rows(A.gate, T, hidden), up = rows(A.up, T, hidden),
                   act = rows(A.act, T, hidden);
        rms_norm_forward<float>(x, W.attn_norm, eps, xn1, rows(A.r1, T, 1), T);
        // llama_session's order: projection, bias, per-head norm, RoPE. With head norms the projections
        // (and biases) are kept as the norms' inputs; without, they are rotated in place.
        const auto q_in = head_norms_ ? rows(A.q_in, T, q_dim) : q, k_in = head_norms_ ? rows(A.k_in, T, kv) : k;
        matmul<float>(xn1, W.wq, q_in, T, dim, q_dim);
        matmul<float>(xn1, W.wk, k_in, T, dim, kv);
        matmul<float>(xn1, W.wv, v, T, dim, kv);
        if (biases_) {
            bias_forward<float>(q_in, W.bq, T);
            bias_forward<float>(k_in, W.bk, T);
            bias_forward<float>(v, W.bv, T);
        }
        if (head_norms_) {
            head_rms_norm_forward<float>(q_in, W.q_norm, eps, q, rows(A.q_inv_rms, T, heads), T);
            head_rms_norm_forward<float>(k_in, W.k_norm, eps, k, rows(A.k_inv_rms, T, kv_heads), T);
        }
        rope_forward<float>(q, T, head, cos, sin, pairing);
        rope_forward<float>(k, T, head, cos, sin, pairing);
        attention_forward<float>(q, k, v, std::span<float>(A.probs).first(attention_probs_size(T, heads)), att, s.attention, T, heads,
                                 kv_heads, head);
        matmul<float>(att, W.wo, tmp, T, q_dim, dim);
        for (std::size_t i = 0; i < T * dim; ++i) xmid[i] = x[i] + tmp[i];
        rms_norm_forward<float>(xmid, W.ffn_norm, eps, xn2, rows(A.r2, T, 1), T);
        matmul<float>(xn2, W.gate, gate, T, dim, hidden);
        matmul<float>(xn2, W.up, up, T, dim, hidden);
        swiglu_forward<float>(gate, up, act);
        matmul<float>(act, W.down, tmp, T, hidden, dim);
        for (std::size_t i = 0; i < T * dim; ++i) next[i] = xmid[i] + tmp[i];
    }

    /// dx holds dL/d(the layer's output) on entry and dL/d(its input) on return; ADDS dL/dW into G. A and W
    /// must be those of the last forward.
    void backward(const llama_parameters::layer& W, const layer_activations& A, llama_parameters::layer& G, std::span<float> dx,
                  std::size_t T, const rope_cache& rope, layer_scratch& s) const {
        const std::size_t dim = c_.dim, hidden = c_.hidden_dim, q_dim = c_.q_dim(), kv = c_.kv_dim(), head = c_.head_size(),
                          heads = c_.n_heads, kv_heads = c_.n_kv_heads;
        const auto cos = rope.cos(T, head), sin = rope.sin(T, head);
        const auto pairing = detail::rope_pairing_of(c_.architecture);
        // Feed-forward: next = xmid + down(silu(gate(xn2)) * up(xn2)), xn2 = rms_norm(xmid).
        const auto dact = zeroed(s.dact, T, hidden), dgate = zeroed(s.dgate, T, hidden), dup = zeroed(s.dup, T, hidden),
                   dxn = zeroed(s.dxn, T, dim);
        matmul_backward_weight<float>(dx, rows(A.act, T, hidden), G.down, T, hidden, dim);
        matmul_backward_input<float>(dx, W.down, dact, T, hidden, dim);
        swiglu_backward<float>(dact, rows(A.gate, T, hidden), rows(A.up, T, hidden), dgate, dup);
        matmul_backward_weight<float>(dgate, rows(A.xn2, T, dim), G.gate, T, dim, hidden);
        matmul_backward_weight<float>(dup, rows(A.xn2, T, dim), G.up, T, dim, hidden);
        matmul_backward_input<float>(dgate, W.gate, dxn, T, dim, hidden);
        matmul_backward_input<float>(dup, W.up, dxn, T, dim, hidden);
        rms_norm_backward<float>(dxn, rows(A.xmid, T, dim), W.ffn_norm, rows(A.r2, T, 1), dx, G.ffn_norm, T);
        // Attention: xmid = x + wo(attention(q, k, v)), q = rope(head_norm(wq xn1 + bq)) (k alike),
        // v = wv xn1 + bv, xn1 = rms_norm(x); the bias and the head norm where the architecture has them.
        const auto datt = zeroed(s.datt, T, q_dim), dq = zeroed(s.dq, T, q_dim), dk = zeroed(s.dk, T, kv), dv = zeroed(s.dv, T, kv);
        matmul_backward_weight<float>(dx, rows(A.att, T, q_dim), G.wo, T, q_dim, dim);
        matmul_backward_input<float>(dx, W.wo, datt, T, q_dim, dim);
        attention_backward<float>(datt, rows(A.q, T, q_dim), rows(A.k, T, kv), rows(A.v, T, kv),
                                  std::span<const float>(A.probs).first(attention_probs_size(T, heads)), dq, dk, dv, s.attention, T, heads,
                                  kv_heads, head);
        rope_backward<float>(dq, T, head, cos, sin, pairing);
        rope_backward<float>(dk, T, head, cos, sin, pairing);
        // The gradients with respect to the projections' outputs (the head norms' inputs when there are any).
        std::span<const float> dq_in = dq, dk_in = dk;
        if (head_norms_) {
            const auto dqn = zeroed(s.dq_in, T, q_dim), dkn = zeroed(s.dk_in, T, kv);
            head_rms_norm_backward<float>(dq, rows(A.q_in, T, q_dim), W.q_norm, rows(A.q_inv_rms, T, heads), dqn, G.q_norm, T);
            head_rms_norm_backward<float>(dk, rows(A.k_in, T, kv), W.k_norm, rows(A.k_inv_rms, T, kv_heads), dkn, G.k_norm, T);
            dq_in = dqn, dk_in = dkn;
        }
        if (biases_) {
            bias_backward<float>(dq_in, G.bq, T);
            bias_backward<float>(dk_in, G.bk, T);
            bias_backward<float>(dv, G.bv, T);
        }
        const auto xn1 = rows(A.xn1, T, dim);
        matmul_backward_weight<float>(dq_in, xn1, G.wq, T, dim, q_dim);
        matmul_backward_weight<float>(dk_in, xn1, G.wk, T, dim, kv);
        matmul_backward_weight<float>(dv, xn1, G.wv, T, dim, kv);
        std::fill(dxn.begin(), dxn.end(), 0.0f);
        matmul_backward_input<float>(dq_in, W.wq, dxn, T, dim, q_dim);
        matmul_backward_input<float>(dk_in, W.wk, dxn, T, dim, kv);
        matmul_backward_input<float>(dv, W.wv, dxn, T, dim, kv);
        rms_norm_backward<float>(dxn, rows(A.x, T, dim), W.attn_norm, rows(A.r1, T, 1), dx, G.attn_norm, T);
    }

    /// Throws shape_error unless every tensor of W has this config's size. `where` names the caller.
    void require_layer(const llama_parameters::layer& W, std::string_view where) const {
        const std::size_t dim = c_.dim, hidden = c_.hidden_dim, q_dim = c_.q_dim(), kv = c_.kv_dim(), head = c_.head_size();
        const std::size_t none = 0;
        const struct {
            const char* name;
            const std::vector<float>& values;
            std::size_t size;
        } expected[] = {{"attn_norm", W.attn_norm, dim},
                        {"ffn_norm", W.ffn_norm, dim},
                        {"attn_q", W.wq, q_dim * dim},
                        {"attn_k", W.wk, kv * dim},
                        {"attn_v", W.wv, kv * dim},
                        {"attn_output", W.wo, dim * q_dim},
                        {"ffn_gate", W.gate, hidden * dim},
                        {"ffn_up", W.up, hidden * dim},
                        {"ffn_down", W.down, dim * hidden},
                        {"attn_q.bias", W.bq, biases_ ? q_dim : none},
                        {"attn_k.bias", W.bk, biases_ ? kv : none},
                        {"attn_v.bias", W.bv, biases_ ? kv : none},
                        {"attn_q_norm", W.q_norm, head_norms_ ? head : none},
                        {"attn_k_norm", W.k_norm, head_norms_ ? head : none}};
        for (const auto& e : expected)
            if (e.values.size() != e.size)
                throw shape_error(std::string(where) + ": the layer's " + e.name + " has " + std::to_string(e.values.size()) +
                                  " values, expected " + std::to_string(e.size));
    }

private:
    static void grow(std::vector<float>& v, std::size_t n) {
        if (v.size() < n) v.resize(n);
    }
    [[nodiscard]] static std::span<float> rows(std::vector<float>& v, std::size_t T, std::size_t width) noexcept {
        return {v.data(), T * width};
    }
    [[nodiscard]] static std::span<const float> rows(const std::vector<float>& v, std::size_t T, std::size_t width) noexcept {
        return {v.data(), T * width};
    }
    [[nodiscard]] static std::span<float> zeroed(std::vector<float>& v, std::size_t T, std::size_t width) noexcept {
        const auto s = rows(v, T, width);
        std::fill(s.begin(), s.end(), 0.0f);
        return s;
    }

    llama_config c_;
    bool biases_, head_norms_;  // the architecture's attention has Q/K/V biases, per-head Q/K norms
};

}  // namespace detail::backward

/// One sequence's forward and backward: the workspace and the activations the backward needs. One per thread.
/// Runs every architecture of the family as llama_session does: projection, bias (qwen2), per-head norm
/// (qwen3), RoPE (adjacent pairs or halves, with rope_freqs and linear scaling), heads of any size.
class llama_sequence_pass {
public:
    explicit llama_sequence_pass(const llama_config& config) : c_(config), layer_(config) {
        detail::backward::require_trainable_shape(c_, "llama_sequence_pass");
        layers_.resize(c_.n_layers);
    }

    /// Runs tokens[0..T) at positions 0..T-1 (T >= 1, T <= config.context_length if that is nonzero; else any T)
    /// and returns the logits, T x vocab_size row-major (row t predicts the token after tokens[0..t]).
    /// Throws invalid_argument_error for an empty sequence or a token out of range (say which index).
    std::span<const float> forward(const llama_parameters& p, std::span<const std::int32_t> tokens) {
        namespace bw = detail::backward;
        const std::size_t T = tokens.size();
        if (T == 0) throw invalid_argument_error("llama_sequence_pass::forward: empty sequence");
        if (c_.context_length != 0 && T > c_.context_length)
            throw invalid_argument_error("llama_sequence_pass::forward: " + std::to_string(T) + " tokens exceed the context length " +
                                         std::to_string(c_.context_length));
        for (std::size_t t = 0; t < T; ++t) bw::require_token(tokens[t], t, c_.vocab_size, "llama_sequence_pass::forward");
        bw::require_parameters(p, c_, "llama_sequence_pass::forward");
        // The pass's config supplies epsilon and RoPE: parameters trained with others are another model.
        if (p.config.rms_norm_eps != c_.rms_norm_eps || p.config.rope_freq_base != c_.rope_freq_base ||
            p.config.rope_freq_scale != c_.rope_freq_scale)
            throw invalid_argument_error("llama_sequence_pass::forward: parameters with norm epsilon " +
                                         std::to_string(p.config.rms_norm_eps) + ", RoPE base " + std::to_string(p.config.rope_freq_base) +
                                         " and scale " + std::to_string(p.config.rope_freq_scale) + " for a pass configured with " +
                                         std::to_string(c_.rms_norm_eps) + ", " + std::to_string(c_.rope_freq_base) + " and " +
                                         std::to_string(c_.rope_freq_scale));
        T_ = 0;  // until this forward completes, there is nothing to differentiate
        reserve(T);
        rope_.build(c_, capacity_, p.rope_freqs);
        tokens_.assign(tokens.begin(), tokens.end());

        const std::size_t dim = c_.dim;
        bw::embedding_gather<float>(p.token_embedding, dim, tokens, layers_.empty() ? rows(x_final_, dim) : rows(layers_[0].x, dim));
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const auto next = l + 1 < layers_.size() ? rows(layers_[l + 1].x, dim) : rows(x_final_, dim);
            layer_.forward(p.layers[l], layers_[l], next, T, rope_, scratch_);
        }
        bw::rms_norm_forward<float>(rows(x_final_, dim), p.output_norm, c_.rms_norm_eps, rows(xnf_, dim), rows(rf_, 1), T);
        const auto logits = rows(logits_, c_.vocab_size);
        bw::matmul<float>(rows(xnf_, dim), p.tied_output ? p.token_embedding : p.output, logits, T, dim, c_.vocab_size);
        T_ = T;
        return logits;
    }

    /// Given dL/dlogits (T x vocab, for the last forward), ADDS dL/dparameters into grads (same shapes as p).
    /// p must be the parameters of that forward: the backward reuses its activations.
    void backward(const llama_parameters& p, std::span<const float> dlogits, llama_parameters& grads) {
        namespace bw = detail::backward;
        const std::size_t T = T_;
        if (T == 0) throw invalid_argument_error("llama_sequence_pass::backward: no forward to differentiate");
        if (dlogits.size() != T * c_.vocab_size)
            throw shape_error("llama_sequence_pass::backward: dlogits has " + std::to_string(dlogits.size()) +
                              " values, the last forward gave " + std::to_string(T) + " x " + std::to_string(c_.vocab_size));
        bw::require_parameters(p, c_, "llama_sequence_pass::backward (parameters)");
        bw::require_parameters(grads, c_, "llama_sequence_pass::backward (gradients)");
        if (grads.tied_output != p.tied_output)
            throw shape_error(std::string("llama_sequence_pass::backward: gradients of a ") + (grads.tied_output ? "tied" : "separate") +
                              " classifier for parameters with a " + (p.tied_output ? "tied" : "separate") + " one");

        const std::size_t dim = c_.dim, vocab = c_.vocab_size;
        const auto dx = zeroed(dx_, dim);  // dL/d(residual stream), carried down through the layers
        {
            const auto dxnf = zeroed(scratch_.dxn, dim);
            const auto& classifier = p.tied_output ? p.token_embedding : p.output;
            bw::matmul_backward_input<float>(dlogits, classifier, dxnf, T, dim, vocab);
            bw::matmul_backward_weight<float>(dlogits, rows(xnf_, dim), p.tied_output ? grads.token_embedding : grads.output, T, dim,
                                              vocab);
            bw::rms_norm_backward<float>(dxnf, rows(x_final_, dim), p.output_norm, rows(rf_, 1), dx, grads.output_norm, T);
        }
        for (std::size_t l = layers_.size(); l-- > 0;) layer_.backward(p.layers[l], layers_[l], grads.layers[l], dx, T, rope_, scratch_);
        bw::embedding_scatter_add<float>(dx, dim, tokens_, grads.token_embedding);
    }

private:
    void reserve(std::size_t T) {
        if (T <= capacity_) return;
        for (auto& A : layers_) layer_.reserve(A, T);
        layer_.reserve(scratch_, T);
        for (auto* v : {&x_final_, &xnf_, &dx_}) v->resize(T * c_.dim);
        rf_.resize(T);
        logits_.resize(T * c_.vocab_size);
        tokens_.reserve(T);
        capacity_ = T;
    }

    // The first sequence_length() rows (of `width` values) of a buffer.
    [[nodiscard]] std::span<float> rows(std::vector<float>& v, std::size_t width) const noexcept {
        return {v.data(), sequence_length() * width};
    }
    [[nodiscard]] std::span<float> zeroed(std::vector<float>& v, std::size_t width) const noexcept {
        const auto s = rows(v, width);
        std::fill(s.begin(), s.end(), 0.0f);
        return s;
    }
    // The length buffers are cut to: that of the sequence being run, or of the last one run.
    [[nodiscard]] std::size_t sequence_length() const noexcept { return tokens_.size(); }

    llama_config c_;
    detail::backward::decoder_layer layer_;
    std::size_t T_ = 0, capacity_ = 0;
    std::vector<std::int32_t> tokens_;
    std::vector<detail::backward::layer_activations> layers_;
    detail::backward::layer_scratch scratch_;
    detail::backward::rope_cache rope_;
    std::vector<float> x_final_, xnf_, rf_, logits_, dx_;
};

/// One decoder layer on its own: its output for the residual stream of a sequence (T rows at positions
/// 0..T-1) and the backward of a loss on that output. The arithmetic is llama_sequence_pass's for that layer,
/// bit for bit, so a model trained layer by layer is the model the runtime evaluates. Block-wise QAT
/// (qat/blockwise_qat.hpp) runs it. One per thread.
class llama_layer_pass {
public:
    explicit llama_layer_pass(const llama_config& config) : layer_(config) {
        detail::backward::require_trainable_shape(config, "llama_layer_pass");
    }

    /// The output (T x dim) of the layer W for input x (T x dim, T >= 1 rows; at most the context length when that
    /// is set). rope_freqs: the model's frequency divisors (empty: none). Throws shape_error for sizes that do
    /// not fit the config.
    std::span<const float> forward(const llama_parameters::layer& W, const std::vector<float>& rope_freqs, std::span<const float> x) {
        const auto& c = layer_.config();
        const std::size_t dim = c.dim;
        if (x.empty() || x.size() % dim != 0)
            throw shape_error("llama_layer_pass::forward: " + std::to_string(x.size()) + " input values are not whole rows of " +
                              std::to_string(dim));
        const std::size_t T = x.size() / dim;
        if (c.context_length != 0 && T > c.context_length)
            throw invalid_argument_error("llama_layer_pass::forward: " + std::to_string(T) + " rows exceed the context length " +
                                         std::to_string(c.context_length));
        layer_.require_layer(W, "llama_layer_pass::forward");
        T_ = 0;
        if (T > capacity_) {
            layer_.reserve(activations_, T);
            layer_.reserve(scratch_, T);
            out_.resize(T * dim), dx_.resize(T * dim);
            capacity_ = T;
        }
        rope_.build(c, capacity_, rope_freqs);
        std::copy(x.begin(), x.end(), activations_.x.begin());
        const std::span<float> out(out_.data(), T * dim);
        layer_.forward(W, activations_, out, T, rope_, scratch_);
        T_ = T;
        return out;
    }

    /// Given dL/d(output) of the last forward (T x dim), ADDS dL/dW into grads and returns dL/d(input). W must be
    /// that forward's layer.
    std::span<const float> backward(const llama_parameters::layer& W, std::span<const float> dout, llama_parameters::layer& grads) {
        const std::size_t dim = layer_.config().dim;
        if (T_ == 0) throw invalid_argument_error("llama_layer_pass::backward: no forward to differentiate");
        if (dout.size() != T_ * dim)
            throw shape_error("llama_layer_pass::backward: " + std::to_string(dout.size()) + " output gradients, the last forward gave " +
                              std::to_string(T_) + " x " + std::to_string(dim));
        layer_.require_layer(W, "llama_layer_pass::backward (parameters)");
        layer_.require_layer(grads, "llama_layer_pass::backward (gradients)");
        const std::span<float> dx(dx_.data(), T_ * dim);
        std::copy(dout.begin(), dout.end(), dx.begin());
        layer_.backward(W, activations_, grads, dx, T_, rope_, scratch_);
        return dx;
    }

    /// The rows the last forward fed to matrix `parameter` of the layer, T x its row length: the attention
    /// norm's output for wq, wk and wv; the attention's output for wo; the feed-forward norm's output for gate
    /// and up; SwiGLU's output for down. Throws invalid_argument_error for a parameter that is not a layer's
    /// matrix or before any forward.
    [[nodiscard]] std::span<const float> matrix_input(llama_parameter parameter) const {
        if (T_ == 0) throw invalid_argument_error("llama_layer_pass::matrix_input: no forward has run");
        const auto& c = layer_.config();
        const auto& A = activations_;
        switch (parameter) {
            case llama_parameter::wq:
            case llama_parameter::wk:
            case llama_parameter::wv:
                return {A.xn1.data(), T_ * c.dim};
            case llama_parameter::wo:
                return {A.att.data(), T_ * c.q_dim()};
            case llama_parameter::gate:
            case llama_parameter::up:
                return {A.xn2.data(), T_ * c.dim};
            case llama_parameter::down:
                return {A.act.data(), T_ * c.hidden_dim};
            default:
                throw invalid_argument_error("llama_layer_pass::matrix_input: " + std::string(llama_tensor(parameter).name) +
                                             " is not a matrix of a decoder layer");
        }
    }

private:
    detail::backward::decoder_layer layer_;
    std::size_t T_ = 0, capacity_ = 0;
    detail::backward::layer_activations activations_;
    detail::backward::layer_scratch scratch_;
    detail::backward::rope_cache rope_;
    std::vector<float> out_, dx_;
};
COGQAT_STRICT_FP_END

/// Runs the sequences in parallel over `threads` (0 = hardware threads), each worker with its own pass and its own
/// gradient buffer; loss(std::size_t index, std::span<const float> logits, std::span<float> dlogits) -> double returns that
/// sequence's loss and writes dL/dlogits. grads (any prior contents discarded) receives the sum over all sequences. The partition
/// of sequences over workers and the reduction order are fixed by (sequence count, thread count) only, so the result is
/// bit-identical run to run for the same thread count. Returns the summed loss.
/// `loss` is called from several threads at once (each call with its own buffers); dlogits arrives zeroed.
template <class Loss>
double batch_gradients(const llama_parameters& p, std::span<const std::vector<std::int32_t>> sequences, Loss&& loss,
                       llama_parameters& grads, unsigned threads) {
    const auto& c = p.config;
    detail::backward::require_parameters(p, c, "batch_gradients");
    // Bad input is refused before any worker starts, naming the sequence.
    for (std::size_t i = 0; i < sequences.size(); ++i) {
        const auto& s = sequences[i];
        const std::string where = "batch_gradients: sequence " + std::to_string(i);
        if (s.empty()) throw invalid_argument_error(where + " is empty");
        if (c.context_length != 0 && s.size() > c.context_length)
            throw invalid_argument_error(where + ": " + std::to_string(s.size()) + " tokens exceed the context length " +
                                         std::to_string(c.context_length));
        for (std::size_t t = 0; t < s.size(); ++t) detail::backward::require_token(s[t], t, c.vocab_size, where.c_str());
    }
    if (detail::backward::shape_mismatch(grads, p).empty()) {
        grads.set_zero();
        grads.config = p.config;
    } else {
        grads = llama_parameters::zeros_like(p);
    }
    const std::size_t n = sequences.size();
    if (n == 0) return 0.0;

    // Worker w takes sequences [w * chunk, (w + 1) * chunk) in order; worker 0 accumulates into grads itself,
    // the others into buffers added to it in worker order afterwards.
    const std::size_t workers = std::min<std::size_t>(resolve_threads(threads), n), chunk = (n + workers - 1) / workers;
    const std::size_t used = (n + chunk - 1) / chunk;
    std::vector<llama_parameters> partial;
    partial.reserve(used - 1);
    for (std::size_t w = 1; w < used; ++w) partial.push_back(llama_parameters::zeros_like(p));
    std::vector<double> losses(n, 0.0);
    parallel_for(used, static_cast<unsigned>(used), [&](std::size_t first, std::size_t last) {
        for (std::size_t w = first; w < last; ++w) {
            llama_sequence_pass pass(c);
            std::vector<float> dlogits;
            llama_parameters& g = w == 0 ? grads : partial[w - 1];
            for (std::size_t i = w * chunk; i < std::min(n, (w + 1) * chunk); ++i) {
                const auto logits = pass.forward(p, sequences[i]);
                dlogits.assign(logits.size(), 0.0f);
                losses[i] = loss(i, logits, std::span<float>(dlogits));
                pass.backward(p, dlogits, g);
            }
        }
    });
    for (const auto& g : partial) grads.add(g);
    double total = 0.0;
    for (double v : losses) total += v;
    return total;
}

}  // namespace cogqat
