// Fake-quantization (the forward is what export writes, bit for bit; straight-through and LSQ gradients),
// the AdamW optimizer and its schedule, and the QAT checkpoint file.

#include <doctest/doctest.h>

#include <unistd.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cogqat/format/codec.hpp"
#include "cogqat/qat/fake_quant.hpp"
#include "cogqat/qat/optimizer.hpp"
#include "cogqat/qat/training_state.hpp"
#include "cogqat/quant/quantizer.hpp"
#include "random_data.hpp"

using namespace cogqat;
namespace fs = std::filesystem;

namespace {

constexpr ggml_type weight_types[] = {ggml_type::f32,  ggml_type::f16,  ggml_type::bf16, ggml_type::q4_0, ggml_type::q4_1,
                                      ggml_type::q5_0, ggml_type::q5_1, ggml_type::q8_0, ggml_type::q2_K, ggml_type::q3_K,
                                      ggml_type::q4_K, ggml_type::q5_K, ggml_type::q6_K};

bool same_bits(std::span<const float> a, std::span<const float> b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// Moves every learned parameter away from its start, as training would.
void perturb(fake_quantized_tensor& t, std::uint64_t seed) {
    test::rng r(seed);
    auto p = t.parameters();
    for (std::size_t i = 0; i < p.size(); ++i) p[i] += static_cast<float>(0.6 * (r.uniform() - 0.5));
    for (auto& x : t.latent()) x += static_cast<float>(0.01 * r.gaussian());
}

}  // namespace

TEST_CASE("fake-quant forward is, bit for bit, the decoding of what export writes") {
    const std::size_t rows = 3, cols = 512;
    auto values = test::laplace_with_outliers(rows * cols, 7);
    values[5] = 0.0f, values[600] = 1e-9f;
    for (auto type : weight_types) {
        CAPTURE(info(type).name);
        auto t = fake_quantized_tensor::from_values(type, rows, cols, values);
        for (int round = 0; round < 3; ++round) {
            std::vector<float> forward(rows * cols);
            t.forward(forward);
            const auto bytes = t.encode();
            CHECK(bytes.size() == storage_size(type, rows * cols));
            CHECK(same_bits(forward, dequantize(type, bytes)));
            perturb(t, 100 + static_cast<std::uint64_t>(round));
        }
    }
}

TEST_CASE("fake-quant from an encoded tensor reproduces it exactly") {
    const std::size_t rows = 4, cols = 256;
    const auto values = test::gaussian_values(rows * cols, 3, 0.05);
    for (auto type : weight_types) {
        CAPTURE(info(type).name);
        const auto bytes = quantize(type, values);
        std::vector<float> forward(rows * cols);
        const auto reference = dequantize(type, bytes);
        if (fake_quant_kind_of(type) != fake_quant_kind::rounded || type == ggml_type::f16 || type == ggml_type::bf16) {
            // The stored scales with the decoded values as latent: the same blocks.
            fake_quantized_tensor::from_encoded(type, rows, cols, bytes).forward(forward);
            CHECK(same_bits(forward, reference));
        }
        // The float weights as latent under ggml's stored scales: every weight at least as close as ggml's
        // (ggml rounds against the scale before it is rounded to fp16; this rounds against the stored one).
        fake_quantized_tensor::from_values(type, rows, cols, values).forward(forward);
        if (fake_quant_kind_of(type) == fake_quant_kind::learned_scale) {
            for (std::size_t i = 0; i < values.size(); ++i)
                CHECK(std::fabs(forward[i] - values[i]) <= std::fabs(reference[i] - values[i]) + 1e-7f);
        } else {
            CHECK(same_bits(forward, reference));
        }
    }
}

TEST_CASE("straight-through gradient: identity inside the range, zero where a weight is clamped") {
    // One q4_0 block of scale -0.1 (ggml's sign convention), so levels cover [-0.7, 0.8]; two weights lie outside.
    std::vector<float> x(32);
    for (std::size_t i = 0; i < 32; ++i) x[i] = -0.65f + 0.045f * static_cast<float>(i);
    x[30] = 2.0f, x[31] = -3.0f;
    std::vector<std::byte> block(storage_size(ggml_type::q4_0, 32));
    formats::q4_0::store_scale(block.data(), {-0.1f, 0.0f});
    auto t = fake_quantized_tensor::from_encoded(ggml_type::q4_0, 1, 32, block, x);
    std::vector<float> grad_out(32, 1.0f), grad_latent(32), grad_params(1);
    t.backward(grad_out, grad_latent, grad_params);
    for (std::size_t i = 0; i < 30; ++i) CHECK(grad_latent[i] == 1.0f);
    CHECK(grad_latent[30] == 0.0f);
    CHECK(grad_latent[31] == 0.0f);

    // LSQ: d(decoded)/d(scale) is level - x/scale inside, the clamped level outside; rho's is that times the
    // base scale. Recomputed here independently in double.
    const double s = fp16_bits_to_fp32(fp32_to_fp16_bits(-0.1f));
    double expected = 0.0;
    for (std::size_t i = 0; i < 32; ++i) {
        const double u = x[i] / s;
        const double level = std::clamp(std::nearbyint(u), -8.0, 7.0);
        expected += std::fabs(u - level) < 0.5000001 ? level - u : level;
    }
    CHECK(grad_params[0] == doctest::Approx(expected * s).epsilon(1e-5));
}

TEST_CASE("LSQ gradients learn a better scale than a bad start") {
    // Minimize |decoded - x|^2 over the block scales only, from scales 1.6x too large: the error must fall
    // to about that of ggml's own choice.
    const std::size_t cols = 256;
    const auto x = test::gaussian_values(cols, 11, 0.1);
    for (auto type : {ggml_type::q4_0, ggml_type::q4_1, ggml_type::q5_1, ggml_type::q8_0}) {
        CAPTURE(info(type).name);
        auto reference = fake_quantized_tensor::from_values(type, 1, cols, x);
        auto t = fake_quantized_tensor::from_values(type, 1, cols, x);
        for (std::size_t b = 0; b < t.parameters().size(); b += (t.parameters().size() / t.base_scales().size())) t.parameters()[b] = 1.6f;
        auto error = [&](const fake_quantized_tensor& q) {
            std::vector<float> y(cols);
            q.forward(y);
            double e = 0.0;
            for (std::size_t i = 0; i < cols; ++i) e += (y[i] - x[i]) * (y[i] - x[i]);
            return e;
        };
        const double start = error(t), target = error(reference);
        REQUIRE(start > 1.5 * target);
        adamw optimizer;
        std::vector<float> y(cols), grad(cols), grad_latent(cols), grad_params(t.parameters().size());
        for (int step = 0; step < 300; ++step) {
            t.forward(y);
            for (std::size_t i = 0; i < cols; ++i) grad[i] = 2.0f * (y[i] - x[i]);
            t.backward(grad, grad_latent, grad_params);
            const parameter_group groups[] = {{t.parameters(), grad_params, 1.0f, 0.0f}};
            optimizer.step(groups, 5e-3f);
        }
        CHECK(error(t) < 1.15 * target);
    }
}

TEST_CASE("fake-quant rejects what it cannot represent") {
    std::vector<float> x(64, 0.5f);
    CHECK_THROWS_AS(static_cast<void>(fake_quantized_tensor::from_values(ggml_type::q4_0, 1, 48, std::vector<float>(48))), shape_error);
    CHECK_THROWS_AS(static_cast<void>(fake_quantized_tensor::from_values(ggml_type::q4_0, 2, 32, std::vector<float>(63))), shape_error);
    CHECK_THROWS_AS(static_cast<void>(fake_quantized_tensor::from_encoded(ggml_type::q4_0, 2, 32, std::vector<std::byte>(35))),
                    shape_error);
    x[9] = NAN;
    CHECK_THROWS_AS(static_cast<void>(fake_quantized_tensor::from_values(ggml_type::f16, 1, 64, x)), value_error);
    x[9] = 0.5f;
    auto t = fake_quantized_tensor::from_values(ggml_type::q4_1, 1, 64, x);
    t.parameters()[1] = INFINITY;
    std::vector<float> out(64);
    CHECK_THROWS_WITH_AS(t.forward(out), doctest::Contains("block parameters"), value_error);
    CHECK_THROWS_AS(static_cast<void>(t.encode()), value_error);
    std::vector<float> short_out(10);
    t.parameters()[1] = 0.0f;
    CHECK_THROWS_AS(t.forward(short_out), shape_error);
    std::vector<float> g(64), gl(64), gp(3);
    CHECK_THROWS_AS(t.backward(g, gl, gp), shape_error);
}

TEST_CASE("AdamW: converges on a quadratic, clips, schedules, refuses non-finite gradients") {
    std::vector<float> v{3.0f, -2.0f, 0.5f}, g(3);
    adamw optimizer;
    for (int step = 0; step < 2000; ++step) {
        for (std::size_t i = 0; i < 3; ++i) g[i] = 2.0f * (v[i] - static_cast<float>(i));
        const parameter_group groups[] = {{v, g, 1.0f, 0.0f}};
        optimizer.step(groups, 0.01f);
    }
    for (std::size_t i = 0; i < 3; ++i) CHECK(v[i] == doctest::Approx(static_cast<double>(i)).epsilon(0.01));
    CHECK(optimizer.update_counts()[0] == 2000);

    std::vector<float> a{3.0f, 4.0f}, b{12.0f};
    const parameter_group both[] = {{a, a, 1.0f, 0.0f}, {b, b, 1.0f, 0.0f}};
    CHECK(global_gradient_norm(both) == doctest::Approx(13.0));

    learning_rate_schedule s{1.0f, 4, 104, 0.1f};
    CHECK(s.at(0) == doctest::Approx(0.2));
    CHECK(s.at(3) == doctest::Approx(0.8));
    CHECK(s.at(4) == doctest::Approx(1.0));
    CHECK(s.at(54) == doctest::Approx(0.55));
    CHECK(s.at(104) == doctest::Approx(0.1));
    CHECK(s.at(1000) == doctest::Approx(0.1));

    std::vector<float> bad{1.0f, NAN};
    const parameter_group broken[] = {{v, g, 1.0f, 0.0f}, {a, bad, 1.0f, 0.0f}};
    const auto before = v;
    CHECK_THROWS_WITH_AS(optimizer.step(broken, 0.01f), doctest::Contains("group 1"), value_error);
    CHECK(v == before);

    // A group that starts empty joins later with fresh moments; one that changes size is refused.
    adamw late;
    std::vector<float> x{1.0f}, gx{1.0f};
    const parameter_group empty_then[] = {{x, gx, 1.0f, 0.0f}, {{}, {}, 1.0f, 0.0f}};
    late.step(empty_then, 0.1f);
    std::vector<float> y{1.0f, 1.0f}, gy{1.0f, 1.0f};
    const parameter_group joined[] = {{x, gx, 1.0f, 0.0f}, {y, gy, 1.0f, 0.0f}};
    late.step(joined, 0.1f);
    CHECK(late.update_counts()[0] == 2);
    CHECK(late.update_counts()[1] == 1);
    CHECK(y[0] == doctest::Approx(0.9).epsilon(1e-4));  // a first Adam step moves by the learning rate
    std::vector<float> z{1.0f, 1.0f, 1.0f}, gz{1.0f, 1.0f, 1.0f};
    const parameter_group resized[] = {{x, gx, 1.0f, 0.0f}, {z, gz, 1.0f, 0.0f}};
    CHECK_THROWS_AS(late.step(resized, 0.1f), shape_error);
}

namespace {

training_state sample_state() {
    training_state state;
    state.fingerprint = "test run 1";
    state.order = {"blk.1", "token_embd"};
    state.step = 17;
    const auto w = test::gaussian_values(2 * 64, 5, 0.1);
    trainable_tensor a{{2, 64},
                       "blk.0.attn_q.weight",
                       ggml_type::q4_1,
                       true,
                       true,
                       {},
                       fake_quantized_tensor::from_values(ggml_type::q4_1, 2, 64, w),
                       0.01f,
                       {}};
    a.quantizer.parameters()[0] = 1.25f;
    trainable_tensor b{{1, 64}, "blk.0.attn_norm.weight", ggml_type::f32, false, false, std::vector<float>(64, 1.5f), {}, 1.0f, {}};
    state.tensors = {a, b};
    std::vector<float> g1(2 * 64, 0.5f), g2(8, 0.25f), g3(64, -1.0f);
    const parameter_group groups[] = {{state.tensors[0].latent(), g1, 1.0f, 0.0f},
                                      {state.tensors[0].quantizer.parameters(), g2, 1.0f, 0.0f},
                                      {state.tensors[1].latent(), g3, 1.0f, 0.0f},
                                      {{}, {}, 1.0f, 0.0f}};
    state.optimizer.step(groups, 0.01f);
    return state;
}

training_state empty_like(const training_state& s) {
    training_state fresh;
    fresh.fingerprint = s.fingerprint;
    for (const auto& t : s.tensors)
        fresh.tensors.push_back({t.shape(), t.name, t.type, t.matrix, false, std::vector<float>(t.elements()), {}, t.unit, {}});
    return fresh;
}

}  // namespace

TEST_CASE("a checkpoint restores the training state exactly and refuses another run's or a broken file") {
    const fs::path path = fs::temp_directory_path() / ("cogqat-checkpoint-test-" + std::to_string(::getpid()) + ".gguf");
    const auto state = sample_state();
    save_checkpoint(state, path);
    CHECK(cogqat::io::no_partial_output_of(path));

    auto restored = empty_like(state);
    load_checkpoint(restored, path);
    CHECK(restored.step == 17);
    CHECK(restored.order == state.order);
    REQUIRE(restored.tensors[0].quantized);
    CHECK_FALSE(restored.tensors[1].quantized);
    CHECK(same_bits(restored.tensors[0].latent(), state.tensors[0].latent()));
    CHECK(same_bits(restored.tensors[0].quantizer.parameters(), state.tensors[0].quantizer.parameters()));
    CHECK(restored.tensors[0].quantizer.encode() == state.tensors[0].quantizer.encode());
    CHECK(same_bits(restored.tensors[1].latent(), state.tensors[1].latent()));
    CHECK(restored.optimizer.first_moments() == state.optimizer.first_moments());
    CHECK(restored.optimizer.second_moments() == state.optimizer.second_moments());
    CHECK(restored.optimizer.update_counts() == state.optimizer.update_counts());

    auto other = empty_like(state);
    other.fingerprint = "another run";
    CHECK_THROWS_WITH_AS(load_checkpoint(other, path), doctest::Contains("another run"), invalid_argument_error);

    auto wrong_shape = empty_like(state);
    wrong_shape.tensors[1].cols = 32;
    CHECK_THROWS_AS(load_checkpoint(wrong_shape, path), format_error);

    // Truncated at every few bytes: always our error, never a crash.
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (std::size_t cut = 0; cut < bytes.size(); cut += 97) {
        std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(cut));
        auto broken = empty_like(state);
        CHECK_THROWS_AS(load_checkpoint(broken, path), error);
    }
    fs::remove(path);
}

TEST_CASE("generic quantizer policies: straight-through and LSQ gradients of fake_quantize") {
    using Q = quantizer<BitWidth<4>, PerGroup<32>, Symmetric>;
    const auto x = test::gaussian_values(64, 9, 0.3);
    const auto q = Q::quantize(std::span<const float>(x));
    const auto grad_out = test::gaussian_values(64, 10);
    std::vector<float> grad_x(64), grad_scale(2);
    fake_quantize_backward(x, q, grad_out, grad_x, grad_scale);
    CHECK(grad_x == grad_out);  // min-max parameters clamp nothing
    for (std::size_t g = 0; g < 2; ++g) {
        const auto p = q.effective_params(g);
        double expected = 0.0;
        for (std::size_t i = 32 * g; i < 32 * (g + 1); ++i)
            expected += grad_out[i] * (q.level(i) - (x[i] / static_cast<double>(p.scale) + p.zero_point));
        CHECK(grad_scale[g] == doctest::Approx(expected).epsilon(1e-5));
    }

    // A tensor whose scale is too small for one value: that value is clamped and passes no gradient.
    using T = Q::tensor_type;
    std::vector<float> y(32, 0.05f);
    y[3] = 5.0f;
    std::vector<T::code_type> codes(32);
    for (std::size_t i = 0; i < 32; ++i)
        codes[i] = static_cast<T::code_type>(std::clamp(static_cast<int>(std::lround(y[i] / 0.1f)), T::min_level, T::max_level) -
                                             T::min_level);
    const T clamped(1, 32, codes, {affine_params{0.1f, 0}});
    std::vector<float> ones(32, 1.0f), gy(32), gs(1);
    fake_quantize_backward(y, clamped, ones, gy, gs);
    CHECK(gy[3] == 0.0f);
    CHECK(gy[0] == 1.0f);
    CHECK(gs[0] == doctest::Approx(31 * (1 - 0.5) + T::max_level).epsilon(1e-5));  // 0.05 / 0.1 rounds to 1
    std::vector<float> wrong(31);
    CHECK_THROWS_AS(fake_quantize_backward(y, clamped, ones, wrong, gs), shape_error);
}
