// The training pass: every operation's backward against central differences (in double), the whole model's
// gradient against central differences of its float forward, the forward against llama_session's float
// path (llama, qwen2 with its biases, qwen3 with its head norms and wide heads, Llama 3 RoPE scaling), batch
// gradients against per-sequence backwards, and the refusals.

#include <doctest/doctest.h>

#include <cogqat/core/random.hpp>
#include <cogqat/dispatch/kernel_table.hpp>
#include <cogqat/format/codec.hpp>
#include <cogqat/model/llama_backward.hpp>
#include <cogqat/model/llama_model.hpp>
#include <cogqat/model/synthetic.hpp>
#include <cogqat/simd/float_gemm.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

using namespace cogqat;
namespace bw = cogqat::detail::backward;

namespace {

std::vector<double> gaussian(std::size_t n, xoshiro256& r, double scale = 1.0) {
    std::vector<double> v(n);
    for (auto& x : v) x = scale * r.gaussian();
    return v;
}

std::vector<float> to_float(const std::vector<double>& v) { return {v.begin(), v.end()}; }

double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

// Checks every element of `analytic`, the gradient of loss() with respect to x, against central differences.
// In double with h = 1e-5 the difference is within ~1e-9 of the derivative for these smooth functions, so
// 1e-6 relative catches any wrong sign, factor or index and no rounding noise.
template <class Loss>
void check_gradient(std::vector<double>& x, const std::vector<double>& analytic, Loss&& loss, const char* what) {
    REQUIRE(analytic.size() == x.size());
    const double h = 1e-5;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double saved = x[i];
        x[i] = saved + h;
        const double up = loss();
        x[i] = saved - h;
        const double down = loss();
        x[i] = saved;
        const double numeric = (up - down) / (2 * h);
        CHECK_MESSAGE(std::fabs(analytic[i] - numeric) <= 1e-6 * (1.0 + std::fabs(numeric)),
                      what << "[" << i << "]: analytic " << analytic[i] << ", numeric " << numeric);
    }
}

// A model with O(1) activations and logits: matrices N(0, 1/cols), norm weights around 1.
llama_parameters random_parameters(bool tied, std::uint64_t seed, llama_config c = {16, 24, 2, 4, 2, 20, 16}) {
    auto p = llama_parameters::from_model(llama_model::from_weights(make_synthetic_llama(seed, c)));
    if (tied) {
        p.tied_output = true;
        p.output.clear();
    }
    xoshiro256 r(seed);
    p.for_each_tensor([&](std::string_view, std::vector<float>& v, std::size_t rows, std::size_t cols) {
        for (auto& x : v)
            x = static_cast<float>(rows == 1 ? 1.0 + 0.2 * r.gaussian() : r.gaussian() / std::sqrt(static_cast<double>(cols)));
    });
    return p;
}

// make_synthetic_llama's weights rescaled to N(0, 1/cols) so that logits are O(1), optionally tied.
llama_weights scaled_weights(std::uint64_t seed, llama_config c, bool tied) {
    auto w = make_synthetic_llama(seed, c);
    if (tied) std::erase_if(w.tensors, [](const float_tensor& t) { return t.name == "output.weight"; });
    for (auto& t : w.tensors)
        if (t.shape.size() == 2)
            for (auto& v : t.values) v = static_cast<float>(v / (0.02 * std::sqrt(static_cast<double>(t.shape[0]))));
    return w;
}

// The family's other members at random_parameters' size: qwen2 (biases), qwen3 (head norms; heads of 6, so Q is
// 24 wide for a model of 16) and llama with Llama 3's rope_freqs and linear RoPE scaling.
llama_config architecture_config(model_architecture a) {
    llama_config c{16, 24, 2, 4, 2, 20, 16};
    c.architecture = a;
    if (a == model_architecture::qwen3) c.head_dim = 6;
    if (a == model_architecture::llama) c.rope_factors = true, c.rope_freq_scale = 0.5f;
    return c;
}

// scaled_weights for the family's members, every vector (norms, biases, head norms) random around 1 and the RoPE
// factors from 1 to 4.
llama_weights architecture_weights(std::uint64_t seed, llama_config c, bool tied) {
    auto w = scaled_weights(seed, c, tied);
    xoshiro256 r(seed);
    for (auto& t : w.tensors) {
        if (t.shape.size() != 1) continue;
        for (std::size_t i = 0; i < t.values.size(); ++i)
            t.values[i] = t.name == "rope_freqs.weight" ? 1.0f + static_cast<float>(i) : static_cast<float>(1.0 + 0.3 * r.gaussian());
    }
    return w;
}

std::vector<std::int32_t> random_tokens(std::size_t n, std::uint32_t vocab, xoshiro256& r) {
    std::vector<std::int32_t> t(n);
    for (auto& v : t) v = static_cast<std::int32_t>(r.below(vocab));
    return t;
}

double weighted_sum(std::span<const float> logits, const std::vector<float>& c) {
    double s = 0.0;
    for (std::size_t i = 0; i < logits.size(); ++i) s += static_cast<double>(c[i]) * logits[i];
    return s;
}

bool same_bits(const llama_parameters& a, const llama_parameters& b) {
    std::vector<const std::vector<float>*> values;
    b.for_each_tensor([&](std::string_view, const std::vector<float>& v, std::size_t, std::size_t) { values.push_back(&v); });
    std::size_t i = 0;
    bool same = true;
    a.for_each_tensor([&](std::string_view, const std::vector<float>& v, std::size_t, std::size_t) {
        same = same && i < values.size() && v == *values[i++];
    });
    return same && i == values.size();
}

// max |a - b| over every tensor, and max |b|.
std::pair<double, double> max_difference(const llama_parameters& a, const llama_parameters& b) {
    std::vector<const std::vector<float>*> values;
    b.for_each_tensor([&](std::string_view, const std::vector<float>& v, std::size_t, std::size_t) { values.push_back(&v); });
    double diff = 0.0, magnitude = 0.0;
    std::size_t i = 0;
    a.for_each_tensor([&](std::string_view, const std::vector<float>& v, std::size_t, std::size_t) {
        const auto& w = *values[i++];
        for (std::size_t j = 0; j < v.size(); ++j) {
            diff = std::max(diff, std::fabs(static_cast<double>(v[j]) - w[j]));
            magnitude = std::max(magnitude, std::fabs(static_cast<double>(w[j])));
        }
    });
    return {diff, magnitude};
}

}  // namespace

TEST_CASE("matmul: each product is simd::float_gemm's; both gradients match central differences") {
    // Widths that are not multiples of 8 or 4 take every tail of the kernels.
    const std::size_t rows = 5, in = 19, out = 7;
    xoshiro256 r(1);
    auto x = gaussian(rows * in, r), w = gaussian(out * in, r);
    const auto c = gaussian(rows * out, r);
    std::vector<double> y(rows * out);
    auto loss = [&] {
        bw::matmul<double>(x, w, y, rows, in, out);
        return dot(c, y);
    };
    std::vector<double> dx(x.size(), 0.0), dw(w.size(), 0.0);
    bw::matmul_backward_input<double>(c, w, dx, rows, in, out);
    bw::matmul_backward_weight<double>(c, x, dw, rows, in, out);
    check_gradient(x, dx, loss, "dX");
    check_gradient(w, dw, loss, "dW");
    // The backward adds to what is there.
    auto dx2 = dx;
    bw::matmul_backward_input<double>(c, w, dx2, rows, in, out);
    for (std::size_t i = 0; i < dx.size(); ++i) CHECK(dx2[i] == doctest::Approx(2 * dx[i]));

    const auto xf = to_float(x), wf = to_float(w);
    std::vector<float> yf(rows * out);
    bw::matmul<float>(xf, wf, yf, rows, in, out);
    // The float product is simd::float_gemm's: the reference of the active table's kind, bit for bit.
    std::vector<float> want(rows * out);
    const dispatch::f32_product q{rows, out, in, xf.data(), in, 1, wf.data(), 1, in, want.data(), out, false};
    if (dispatch::active().matrix.gemm_f32_fused)
        simd::gemm_reference<true>(q);
    else
        simd::gemm_reference<false>(q);
    CHECK(std::memcmp(yf.data(), want.data(), want.size() * sizeof(float)) == 0);
    CHECK_THROWS_AS(bw::matmul<float>(xf, wf, yf, rows, in + 1, out), shape_error);
}

TEST_CASE("embedding: gather copies the tokens' rows, scatter-add is its adjoint") {
    const std::size_t vocab = 6, width = 5;
    const std::vector<std::int32_t> tokens{3, 1, 3, 0, 5};  // token 3 twice: its gradient sums both rows
    xoshiro256 r(2);
    auto table = gaussian(vocab * width, r);
    const auto c = gaussian(tokens.size() * width, r);
    std::vector<double> out(tokens.size() * width);
    auto loss = [&] {
        bw::embedding_gather<double>(table, width, tokens, out);
        return dot(c, out);
    };
    loss();
    for (std::size_t i = 0; i < width; ++i) CHECK(out[2 * width + i] == table[3 * width + i]);
    std::vector<double> dtable(table.size(), 0.0);
    bw::embedding_scatter_add<double>(c, width, tokens, dtable);
    check_gradient(table, dtable, loss, "dtable");
    const std::vector<std::int32_t> bad{0, 6};
    CHECK_THROWS_WITH_AS(bw::embedding_gather<double>(table, width, bad, std::span<double>(out).first(2 * width)),
                         doctest::Contains("token 6 at index 1"), invalid_argument_error);
}

TEST_CASE("rms_norm: the backward matches central differences; the forward is detail::rms_norm's") {
    const std::size_t rows = 3, width = 10;
    xoshiro256 r(3);
    auto x = gaussian(rows * width, r), weight = gaussian(width, r, 0.3);
    for (auto& v : weight) v += 1.0;
    const auto c = gaussian(rows * width, r);
    std::vector<double> out(rows * width), inv_rms(rows);
    auto loss = [&] {
        bw::rms_norm_forward<double>(x, weight, 1e-5, out, inv_rms, rows);
        return dot(c, out);
    };
    loss();
    std::vector<double> dx(x.size(), 0.0), dweight(width, 0.0);
    bw::rms_norm_backward<double>(c, x, weight, inv_rms, dx, dweight, rows);
    check_gradient(x, dx, loss, "dx");
    check_gradient(weight, dweight, loss, "dweight");

    const auto xf = to_float(x), wf = to_float(weight);
    std::vector<float> outf(rows * width), rf(rows);
    bw::rms_norm_forward<float>(xf, wf, 1e-5f, outf, rf, rows);
    for (std::size_t t = 0; t < rows; ++t) {
        const std::vector<float> row(xf.begin() + static_cast<std::ptrdiff_t>(t * width),
                                     xf.begin() + static_cast<std::ptrdiff_t>((t + 1) * width));
        std::vector<float> expected(width);
        detail::rms_norm(expected, row, wf, 1e-5f);
        for (std::size_t i = 0; i < width; ++i) CHECK(outf[t * width + i] == expected[i]);
    }
}

TEST_CASE("RoPE: the backward rotates back; the forward is detail::rope_adjacent_pairs's at position t") {
    const std::size_t rows = 6, head = 6, width = 12;
    std::vector<float> cos(rows * head / 2), sin(rows * head / 2);
    bw::rope_table(rows, head, 10000.0f, cos, sin);
    xoshiro256 r(4);
    auto x = gaussian(rows * width, r);
    const auto c = gaussian(rows * width, r);
    auto loss = [&] {
        auto y = x;
        bw::rope_forward<double>(y, rows, head, cos, sin);
        return dot(c, y);
    };
    auto dx = c;
    bw::rope_backward<double>(dx, rows, head, cos, sin);
    check_gradient(x, dx, loss, "dx");

    auto xf = to_float(x);
    const auto original = xf;
    bw::rope_forward<float>(xf, rows, head, cos, sin);
    for (std::size_t t = 0; t < rows; ++t) {
        std::vector<float> row(original.begin() + static_cast<std::ptrdiff_t>(t * width),
                               original.begin() + static_cast<std::ptrdiff_t>((t + 1) * width));
        detail::rope_adjacent_pairs(row, t, head, 10000.0f);
        for (std::size_t i = 0; i < width; ++i) CHECK(xf[t * width + i] == row[i]);
    }
    CHECK_THROWS_AS(bw::rope_forward<float>(xf, rows + 1, head, cos, sin), shape_error);
}

TEST_CASE("RoPE in halves, with frequency factors and linear scaling: the backward rotates back; the forward is detail::rope's") {
    const std::size_t rows = 5, head = 8, width = 16;
    const std::vector<float> factors{1.0f, 2.0f, 4.0f, 8.0f};
    for (auto pairing : {detail::rope_pairing::adjacent, detail::rope_pairing::halves})
        for (bool scaled : {false, true}) {
            CAPTURE(static_cast<int>(pairing));
            CAPTURE(scaled);
            const float freq_scale = scaled ? 0.25f : 1.0f;
            const std::span<const float> used = scaled ? std::span<const float>(factors) : std::span<const float>{};
            std::vector<float> cos(rows * head / 2), sin(rows * head / 2);
            bw::rope_table(rows, head, 10000.0f, cos, sin, freq_scale, used);
            xoshiro256 r(40);
            auto x = gaussian(rows * width, r);
            const auto c = gaussian(rows * width, r);
            auto loss = [&] {
                auto y = x;
                bw::rope_forward<double>(y, rows, head, cos, sin, pairing);
                return dot(c, y);
            };
            auto dx = c;
            bw::rope_backward<double>(dx, rows, head, cos, sin, pairing);
            check_gradient(x, dx, loss, "dx");

            auto xf = to_float(x);
            const auto original = xf;
            bw::rope_forward<float>(xf, rows, head, cos, sin, pairing);
            for (std::size_t t = 0; t < rows; ++t) {
                std::vector<float> row(original.begin() + static_cast<std::ptrdiff_t>(t * width),
                                       original.begin() + static_cast<std::ptrdiff_t>((t + 1) * width));
                detail::rope(row, t, head, 10000.0f, freq_scale, used, pairing);
                for (std::size_t i = 0; i < width; ++i) CHECK(xf[t * width + i] == row[i]);
            }
        }
    std::vector<float> cos(4), sin(4);
    const std::vector<float> zero{1.0f, 0.0f};
    CHECK_THROWS_WITH_AS(bw::rope_table(2, 4, 10000.0f, cos, sin, 1.0f, zero), doctest::Contains("frequency factor 1 is 0"),
                         invalid_argument_error);
    CHECK_THROWS_AS(bw::rope_table(2, 4, 10000.0f, cos, sin, 1.0f, std::span<const float>(factors)), shape_error);
}

TEST_CASE("bias and per-head RMSNorm: the backwards match central differences; the head norm is the runtime's per head") {
    const std::size_t rows = 3, heads = 3, head = 6, width = heads * head;
    xoshiro256 r(41);
    auto x = gaussian(rows * width, r), bias = gaussian(width, r), weight = gaussian(head, r, 0.3);
    for (auto& v : weight) v += 1.0;
    const auto c = gaussian(rows * width, r);

    auto bias_loss = [&] {
        auto y = x;
        bw::bias_forward<double>(y, bias, rows);
        return dot(c, y);
    };
    std::vector<double> dbias(width, 0.0);
    bw::bias_backward<double>(c, dbias, rows);
    check_gradient(bias, dbias, bias_loss, "dbias");

    std::vector<double> out(rows * width), inv_rms(rows * heads);
    auto norm_loss = [&] {
        bw::head_rms_norm_forward<double>(x, weight, 1e-6, out, inv_rms, rows);
        return dot(c, out);
    };
    norm_loss();
    std::vector<double> dx(x.size(), 0.0), dweight(head, 0.0);
    bw::head_rms_norm_backward<double>(c, x, weight, inv_rms, dx, dweight, rows);
    check_gradient(x, dx, norm_loss, "dx");
    check_gradient(weight, dweight, norm_loss, "dweight");  // summed over heads and rows

    const auto xf = to_float(x), wf = to_float(weight);
    std::vector<float> outf(rows * width), rf(rows * heads);
    bw::head_rms_norm_forward<float>(xf, wf, 1e-6f, outf, rf, rows);
    for (std::size_t h = 0; h < rows * heads; ++h) {
        std::vector<float> expected(xf.begin() + static_cast<std::ptrdiff_t>(h * head),
                                    xf.begin() + static_cast<std::ptrdiff_t>((h + 1) * head));
        detail::rms_norm(expected, expected, wf, 1e-6f);
        for (std::size_t i = 0; i < head; ++i) CHECK(outf[h * head + i] == expected[i]);
    }
    CHECK_THROWS_WITH_AS(bw::head_rms_norm_forward<float>(std::span<const float>(xf).first(width - 1), wf, 1e-6f,
                                                          std::span<float>(outf).first(width - 1), std::span<float>(rf).first(3), 1),
                         doctest::Contains("not 1 rows of whole heads of 6"), shape_error);
    CHECK_THROWS_AS(bw::bias_forward<float>(outf, std::span<const float>(wf), rows), shape_error);
}

TEST_CASE("attention: the backward matches central differences for grouped, multi- and single-kv-head attention") {
    const std::size_t rows = 6, heads = 4, head = 4, dim = heads * head;
    for (std::size_t kv_heads : {std::size_t{1}, std::size_t{2}, std::size_t{4}}) {
        CAPTURE(kv_heads);
        const std::size_t kv_dim = kv_heads * head;
        xoshiro256 r(5 + kv_heads);
        auto q = gaussian(rows * dim, r), k = gaussian(rows * kv_dim, r), v = gaussian(rows * kv_dim, r);
        const auto c = gaussian(rows * dim, r);
        std::vector<double> probs(bw::attention_probs_size(rows, heads)), out(rows * dim);
        bw::attention_workspace<double> ws;
        auto loss = [&] {
            bw::attention_forward<double>(q, k, v, probs, out, ws, rows, heads, kv_heads, head);
            return dot(c, out);
        };
        loss();
        for (std::size_t h = 0; h < heads; ++h)
            for (std::size_t t = 0; t < rows; ++t) {
                double sum = 0.0;
                for (std::size_t s = 0; s <= t; ++s) sum += probs[h * rows * (rows + 1) / 2 + t * (t + 1) / 2 + s];
                CHECK(sum == doctest::Approx(1.0));
            }
        std::vector<double> dq(q.size(), 0.0), dk(k.size(), 0.0), dv(v.size(), 0.0);
        bw::attention_backward<double>(c, q, k, v, probs, dq, dk, dv, ws, rows, heads, kv_heads, head);
        check_gradient(q, dq, loss, "dq");
        check_gradient(k, dk, loss, "dk");
        check_gradient(v, dv, loss, "dv");

        const auto qf = to_float(q), kf = to_float(k), vf = to_float(v);
        std::vector<float> probsf(probs.size()), outf(out.size()), scores(rows), expected(head);
        bw::attention_workspace<float> wsf;
        bw::attention_forward<float>(qf, kf, vf, probsf, outf, wsf, rows, heads, kv_heads, head);
        for (std::size_t t = 0; t < rows; ++t)
            for (std::size_t h = 0; h < heads; ++h) {
                const std::size_t offset = h / (heads / kv_heads) * head;
                detail::attention_head(qf.data() + t * dim + h * head, kf.data() + offset, vf.data() + offset, kv_dim, head, t + 1,
                                       scores.data(), expected.data());
                // The runtime's head sums in another order, unfused: equal within float rounding. The output is a
                // convex combination of v's rows (|v| < 5 here), the scores' relative error a few ulps.
                for (std::size_t i = 0; i < head; ++i) CHECK(std::fabs(outf[t * dim + h * head + i] - expected[i]) <= 1e-5f);
            }
    }
}

TEST_CASE("SwiGLU: the backward matches central differences, saturated gates included; the forward is detail::swiglu's") {
    xoshiro256 r(6);
    auto gate = gaussian(20, r, 2.0), up = gaussian(20, r);
    gate[0] = 30.0, gate[1] = -30.0, gate[2] = 0.0;
    const auto c = gaussian(20, r);
    std::vector<double> out(20);
    auto loss = [&] {
        bw::swiglu_forward<double>(gate, up, out);
        return dot(c, out);
    };
    std::vector<double> dgate(20, 0.0), dup(20, 0.0);
    bw::swiglu_backward<double>(c, gate, up, dgate, dup);
    check_gradient(gate, dgate, loss, "dgate");
    check_gradient(up, dup, loss, "dup");

    auto gf = to_float(gate);
    const auto uf = to_float(up);
    std::vector<float> outf(20);
    bw::swiglu_forward<float>(gf, uf, outf);
    detail::swiglu(gf, uf);
    CHECK(outf == gf);
}

TEST_CASE("llama_parameters: tensors in the schema's order with their shapes; zeros_like, set_zero and add") {
    for (bool tied : {false, true}) {
        CAPTURE(tied);
        auto p = random_parameters(tied, 7);
        std::vector<std::string> names;
        p.for_each_tensor([&](std::string_view name, const std::vector<float>& v, std::size_t rows, std::size_t cols) {
            names.emplace_back(name);
            CHECK(v.size() == rows * cols);
        });
        std::vector<std::string> expected{"token_embd.weight", "output_norm.weight"};
        if (!tied) expected.emplace_back("output.weight");
        for (const char* n : {"0", "1"})
            for (const char* t : {"attn_q", "attn_k", "attn_v", "attn_output", "attn_norm", "ffn_gate", "ffn_down", "ffn_up", "ffn_norm"})
                expected.push_back(std::string("blk.") + n + "." + t + ".weight");
        CHECK(names == expected);
        std::size_t q_rows = 0, down_cols = 0;
        p.for_each_tensor([&](std::string_view name, std::vector<float>&, std::size_t rows, std::size_t cols) {
            if (name == "blk.1.attn_k.weight") q_rows = rows;
            if (name == "blk.0.ffn_down.weight") down_cols = cols;
        });
        CHECK(q_rows == 8);      // kv_dim: 2 kv heads of 4
        CHECK(down_cols == 24);  // hidden

        auto z = llama_parameters::zeros_like(p);
        z.add(p);
        z.add(p);
        CHECK(z.layers[1].up[5] == 2 * p.layers[1].up[5]);
        CHECK(z.token_embedding[7] == 2 * p.token_embedding[7]);
        z.set_zero();
        CHECK(same_bits(z, llama_parameters::zeros_like(p)));
        CHECK_THROWS_WITH_AS(z.add(random_parameters(!tied, 7)), doctest::Contains("tied"), shape_error);
    }
    auto names_of = [](const llama_parameters& q) {
        std::vector<std::string> names;
        q.for_each_tensor([&](std::string_view name, const std::vector<float>& v, std::size_t rows, std::size_t cols) {
            CHECK(v.size() == rows * cols);
            names.emplace_back(name);
        });
        return names;
    };
    const auto qwen2 = names_of(random_parameters(false, 7, architecture_config(model_architecture::qwen2)));
    CHECK(std::vector<std::string>(qwen2.begin() + 12, qwen2.begin() + 15) ==
          std::vector<std::string>{"blk.0.attn_q.bias", "blk.0.attn_k.bias", "blk.0.attn_v.bias"});
    const auto qwen3 = names_of(random_parameters(false, 7, architecture_config(model_architecture::qwen3)));
    CHECK(std::vector<std::string>(qwen3.begin() + 12, qwen3.begin() + 14) ==
          std::vector<std::string>{"blk.0.attn_q_norm.weight", "blk.0.attn_k_norm.weight"});
    CHECK(names_of(random_parameters(false, 7, architecture_config(model_architecture::llama))).front() == "rope_freqs.weight");
    CHECK_FALSE(llama_parameters::is_trained(llama_parameter::rope_freqs));
    CHECK(llama_parameters::is_trained(llama_parameter::bq));

    auto p = random_parameters(false, 7);
    auto other = p;
    other.layers[1].gate.pop_back();
    CHECK_THROWS_WITH_AS(p.add(other), doctest::Contains("blk.1.ffn_gate.weight has 384 values against 383"), shape_error);
}

TEST_CASE("the forward equals llama_session's float path at every position, for f32 and decoded q8_0 weights") {
    for (llama_config c : {llama_config{16, 24, 2, 4, 2, 20, 16}, llama_config{64, 96, 2, 8, 4, 50, 32}})
        for (bool tied : {false, true}) {
            CAPTURE(c.dim);
            CAPTURE(tied);
            auto model = llama_model::from_weights(scaled_weights(9, c, tied));
            if (c.dim % 32 == 0) {
                // A quantized matrix: from_model decodes it, and the session's float path decodes it too.
                auto& wq = model.layers[1].wq;
                const auto values = dequantize(wq.type, wq.bytes());
                wq = weight_matrix{wq.shape(), ggml_type::q8_0, {}, quantize(ggml_type::q8_0, values)};
            }
            const auto p = llama_parameters::from_model(model);
            CHECK(p.tied_output == tied);
            if (c.dim % 32 == 0) CHECK(p.layers[1].wq == dequantize(ggml_type::q8_0, model.layers[1].wq.bytes()));
            xoshiro256 r(10);
            const auto tokens = random_tokens(c.context_length, c.vocab_size, r);
            llama_sequence_pass pass(p.config);
            const auto logits = pass.forward(p, tokens);
            REQUIRE(logits.size() == tokens.size() * c.vocab_size);
            llama_session session(model, tokens.size(), activation_mode::float32);
            double diff = 0.0, magnitude = 0.0;
            for (std::size_t t = 0; t < tokens.size(); ++t) {
                const auto expected = session.forward(tokens[t], t);
                for (std::size_t i = 0; i < c.vocab_size; ++i) {
                    diff = std::max(diff, std::fabs(static_cast<double>(logits[t * c.vocab_size + i]) - expected[i]));
                    magnitude = std::max(magnitude, std::fabs(static_cast<double>(expected[i])));
                }
            }
            CHECK(magnitude > 0.5);
            CHECK(diff <= 1e-5 * magnitude);
        }
}

TEST_CASE("the forward equals llama_session's float path for qwen2, qwen3 and llama with Llama 3 RoPE scaling") {
    for (auto a : {model_architecture::qwen2, model_architecture::qwen3, model_architecture::llama}) {
        const bool tied = a == model_architecture::qwen2;
        CAPTURE(architecture_name(a));
        const auto c = architecture_config(a);
        const auto model = llama_model::from_weights(architecture_weights(21, c, tied));
        const auto p = llama_parameters::from_model(model);
        CHECK(p.config.architecture == a);
        CHECK(p.rope_freqs == model.rope_freqs);
        CHECK(p.layers[1].bk == model.layers[1].bk);
        CHECK(p.layers[1].q_norm == model.layers[1].q_norm);
        xoshiro256 r(22);
        const auto tokens = random_tokens(c.context_length, c.vocab_size, r);
        llama_sequence_pass pass(p.config);
        const auto logits = pass.forward(p, tokens);
        REQUIRE(logits.size() == tokens.size() * c.vocab_size);
        llama_session session(model, tokens.size(), activation_mode::float32);
        const auto expected = session.forward_batch(tokens, 0, true);
        double diff = 0.0, magnitude = 0.0;
        for (std::size_t i = 0; i < expected.size(); ++i) {
            diff = std::max(diff, std::fabs(static_cast<double>(logits[i]) - expected[i]));
            magnitude = std::max(magnitude, std::fabs(static_cast<double>(expected[i])));
        }
        CHECK(magnitude > 0.5);
        CHECK(diff <= 1e-5 * magnitude);
        // The distinctive part is used: other factors (llama) or a zero bias / unit head norm give other logits.
        auto changed = p;
        if (a == model_architecture::llama) std::fill(changed.rope_freqs.begin(), changed.rope_freqs.end(), 1.0f);
        if (a == model_architecture::qwen2) std::fill(changed.layers[0].bk.begin(), changed.layers[0].bk.end(), 0.0f);
        if (a == model_architecture::qwen3) std::fill(changed.layers[0].k_norm.begin(), changed.layers[0].k_norm.end(), 1.0f);
        const std::vector<float> before(logits.begin(), logits.end());
        const auto after = pass.forward(changed, tokens);
        CHECK_FALSE(std::equal(before.begin(), before.end(), after.begin()));
    }
}

TEST_CASE("a pass reused over sequences of different lengths gives a fresh pass's logits and gradients") {
    const auto p = random_parameters(false, 12);
    xoshiro256 r(13);
    const auto long_seq = random_tokens(9, 20, r), short_seq = random_tokens(4, 20, r);
    llama_sequence_pass reused(p.config), fresh(p.config);
    (void)reused.forward(p, long_seq);
    const auto a = reused.forward(p, short_seq);
    const std::vector<float> reused_logits(a.begin(), a.end());
    const auto b = fresh.forward(p, short_seq);
    CHECK(reused_logits == std::vector<float>(b.begin(), b.end()));
    const auto d = to_float(gaussian(short_seq.size() * 20, r));
    auto g1 = llama_parameters::zeros_like(p), g2 = llama_parameters::zeros_like(p);
    reused.backward(p, d, g1);
    fresh.backward(p, d, g2);
    CHECK(same_bits(g1, g2));
}

TEST_CASE("the whole model: every tensor's gradient matches central differences of the float forward") {
    struct variant {
        bool tied;
        llama_config config;
    };
    const variant variants[] = {{false, {16, 24, 2, 4, 2, 20, 16}},
                                {true, {16, 24, 2, 4, 2, 20, 16}},
                                {false, architecture_config(model_architecture::qwen2)},
                                {true, architecture_config(model_architecture::qwen3)},
                                {false, architecture_config(model_architecture::llama)}};
    for (const auto& v : variants) {
        const bool tied = v.tied;
        const llama_config& config = v.config;
        CAPTURE(tied);
        CAPTURE(architecture_name(config.architecture));
        CAPTURE(config.rope_factors);
        auto p = random_parameters(tied, 14, config);
        const std::uint32_t vocab = p.config.vocab_size;
        xoshiro256 r(15);
        const auto tokens = random_tokens(7, vocab, r);
        const auto coefficients = to_float(gaussian(tokens.size() * vocab, r));
        llama_sequence_pass pass(p.config);
        auto loss = [&] { return weighted_sum(pass.forward(p, tokens), coefficients); };
        (void)loss();
        auto grads = llama_parameters::zeros_like(p);
        pass.backward(p, coefficients, grads);

        std::vector<std::vector<float>*> grad_values;
        grads.for_each_tensor([&](std::string_view, std::vector<float>& v, std::size_t, std::size_t) { grad_values.push_back(&v); });
        std::size_t index = 0, checked = 0;
        p.for_each_tensor([&](std::string_view name, std::vector<float>& values, std::size_t rows, std::size_t cols) {
            const auto& g = *grad_values[index++];
            if (name == "rope_freqs.weight") {  // read, not trained: no gradient
                CHECK(std::all_of(g.begin(), g.end(), [](float v) { return v == 0.0f; }));
                return;
            }
            std::vector<std::size_t> elements;
            if (rows == 1) {
                for (std::size_t i = 0; i < cols; ++i) elements.push_back(i);
            } else {
                for (int i = 0; i < 4; ++i) elements.push_back(static_cast<std::size_t>(r.below(values.size())));
                if (name == "token_embd.weight")  // rows the sequence looks up, not only classifier rows
                    for (std::size_t t : {0, 3}) elements.push_back(static_cast<std::size_t>(tokens[t]) * cols + r.below(cols));
            }
            for (std::size_t i : elements) {
                // Float forward: h large enough that rounding (~1e-6 in the loss) stays below 1e-4 in the
                // quotient, small enough that the h^2 term of these O(1) functions stays near 1e-4 too.
                const float saved = values[i], h = 1e-2f;
                values[i] = saved + h;
                const double up = loss();
                values[i] = saved - h;
                const double down = loss();
                values[i] = saved;
                const double numeric = (up - down) / (static_cast<double>(saved + h) - static_cast<double>(saved - h));
                CHECK_MESSAGE(std::fabs(g[i] - numeric) <= 2e-3 + 1e-2 * std::fabs(numeric),
                              name << "[" << i << "]: analytic " << g[i] << ", numeric " << numeric);
                ++checked;
            }
        });
        CHECK(checked > 100);
    }
}

TEST_CASE("batch_gradients: the sum of per-sequence backwards, bit-identical run to run, losses summed") {
    const auto p = random_parameters(false, 16);
    const std::uint32_t vocab = p.config.vocab_size;
    xoshiro256 r(17);
    std::vector<std::vector<std::int32_t>> sequences;
    std::vector<std::vector<float>> coefficients;
    for (std::size_t n : {7, 3, 9, 1, 5}) {
        sequences.push_back(random_tokens(n, vocab, r));
        coefficients.push_back(to_float(gaussian(n * vocab, r)));
    }
    auto loss = [&](std::size_t i, std::span<const float> logits, std::span<float> dlogits) {
        REQUIRE(dlogits.size() == coefficients[i].size());
        std::copy(coefficients[i].begin(), coefficients[i].end(), dlogits.begin());
        return weighted_sum(logits, coefficients[i]);
    };

    auto reference = llama_parameters::zeros_like(p);
    double reference_loss = 0.0;
    llama_sequence_pass pass(p.config);
    for (std::size_t i = 0; i < sequences.size(); ++i) {
        reference_loss += weighted_sum(pass.forward(p, sequences[i]), coefficients[i]);
        pass.backward(p, coefficients[i], reference);
    }

    // Each sequence's logits have the same bits in any worker, and the losses are summed in sequence order.
    llama_parameters one, two_a, two_b, many;
    CHECK(batch_gradients(p, sequences, loss, one, 1) == reference_loss);
    CHECK(same_bits(one, reference));  // one worker sums in sequence order, as the loop above
    const double loss_a = batch_gradients(p, sequences, loss, two_a, 2);
    two_b = random_parameters(false, 18);  // prior contents are discarded
    const double loss_b = batch_gradients(p, sequences, loss, two_b, 2);
    CHECK(loss_a == reference_loss);
    CHECK(loss_b == reference_loss);
    CHECK(same_bits(two_a, two_b));
    CHECK(batch_gradients(p, sequences, loss, many, 8) == reference_loss);  // more threads than sequences
    for (const auto* g : {&two_a, &many}) {
        const auto [diff, magnitude] = max_difference(*g, reference);
        CHECK(magnitude > 0.1);
        CHECK(diff <= 1e-5 * magnitude);
    }

    llama_parameters none = random_parameters(false, 19);
    CHECK(batch_gradients(p, std::span<const std::vector<std::int32_t>>{}, loss, none, 2) == 0.0);
    CHECK(same_bits(none, llama_parameters::zeros_like(p)));
    auto failing = [](std::size_t i, std::span<const float>, std::span<float>) -> double {
        if (i == 3) throw invalid_argument_error("loss refused sequence 3");
        return 0.0;
    };
    CHECK_THROWS_WITH_AS(batch_gradients(p, sequences, failing, none, 2), "loss refused sequence 3", invalid_argument_error);
    sequences[1].clear();
    CHECK_THROWS_WITH_AS(batch_gradients(p, sequences, loss, none, 2), doctest::Contains("sequence 1 is empty"), invalid_argument_error);
    sequences[1] = {0, static_cast<std::int32_t>(vocab)};
    CHECK_THROWS_WITH_AS(batch_gradients(p, sequences, loss, none, 2), doctest::Contains("sequence 1: token 20 at index 1 is out of range"),
                         invalid_argument_error);
}

TEST_CASE("the training pass refuses what it cannot run") {
    const auto p = random_parameters(false, 20);
    llama_sequence_pass pass(p.config);
    auto grads = llama_parameters::zeros_like(p);
    const std::vector<std::int32_t> none, bad{1, 2, 20, 3}, negative{-1}, good{1, 2, 3, 4};
    CHECK_THROWS_WITH_AS(pass.backward(p, std::vector<float>(80), grads), doctest::Contains("no forward"), invalid_argument_error);
    CHECK_THROWS_WITH_AS((void)pass.forward(p, none), doctest::Contains("empty sequence"), invalid_argument_error);
    CHECK_THROWS_WITH_AS((void)pass.forward(p, bad), doctest::Contains("token 20 at index 2 is out of range [0, 20)"),
                         invalid_argument_error);
    CHECK_THROWS_WITH_AS((void)pass.forward(p, negative), doctest::Contains("token -1 at index 0"), invalid_argument_error);
    CHECK_THROWS_WITH_AS((void)pass.forward(p, std::vector<std::int32_t>(17, 1)),
                         doctest::Contains("17 tokens exceed the context length 16"), invalid_argument_error);
    (void)pass.forward(p, good);
    CHECK_THROWS_WITH_AS(pass.backward(p, std::vector<float>(4 * 20 - 1), grads),
                         doctest::Contains("dlogits has 79 values, the last forward gave 4 x 20"), shape_error);
    auto tied_grads = llama_parameters::zeros_like(random_parameters(true, 20));
    CHECK_THROWS_WITH_AS(pass.backward(p, std::vector<float>(80), tied_grads), doctest::Contains("tied"), shape_error);
    auto short_grads = grads;
    short_grads.layers[0].wk.resize(3);
    CHECK_THROWS_WITH_AS(pass.backward(p, std::vector<float>(80), short_grads),
                         doctest::Contains("blk.0.attn_k.weight has 3 values, expected 8 x 16"), shape_error);
    pass.backward(p, std::vector<float>(80), grads);  // the forward is still there to differentiate

    const auto wider = random_parameters(false, 20, {32, 24, 2, 4, 2, 20, 16});
    CHECK_THROWS_WITH_AS((void)pass.forward(wider, good), doctest::Contains("expected dim 16"), shape_error);
    auto other_eps = p;
    other_eps.config.rms_norm_eps = 1e-6f;
    CHECK_THROWS_AS((void)pass.forward(other_eps, good), invalid_argument_error);
    CHECK_THROWS_AS(llama_sequence_pass(llama_config{18, 24, 1, 4, 2, 20, 16}), invalid_argument_error);  // 18 / 4 heads
    CHECK_THROWS_AS(llama_sequence_pass(llama_config{16, 24, 1, 4, 3, 20, 16}), invalid_argument_error);  // 3 kv heads for 4
    CHECK_THROWS_AS(llama_sequence_pass(llama_config{12, 24, 1, 4, 2, 20, 16}), invalid_argument_error);  // odd head size 3
    auto odd_head = architecture_config(model_architecture::qwen3);
    odd_head.head_dim = 5;
    CHECK_THROWS_WITH_AS(llama_sequence_pass{odd_head}, doctest::Contains("head size 5"), invalid_argument_error);

    // Parameters of another member of the family, or with RoPE factors that are not positive.
    const auto qwen2 = random_parameters(false, 20, architecture_config(model_architecture::qwen2));
    CHECK_THROWS_WITH_AS((void)pass.forward(qwen2, good),
                         doctest::Contains("parameters of a qwen2 model without rope_freqs; expected llama"), shape_error);
    auto rope_scaled = random_parameters(false, 20, architecture_config(model_architecture::llama));
    llama_sequence_pass scaled_pass(rope_scaled.config);
    rope_scaled.rope_freqs[1] = -1.0f;
    CHECK_THROWS_WITH_AS((void)scaled_pass.forward(rope_scaled, good), doctest::Contains("frequency factor 1 is -1"),
                         invalid_argument_error);
}
