// The reference runtime: dot products against their float definition for every format, the activation
// quantizer, the tokenizer, greedy generation of stories260K from the llama2.c file and from our GGUF, and
// perplexity bookkeeping.

#include <doctest/doctest.h>

#include <cogqat/cogqat.hpp>
#include <cogqat/format/activation_quantize.hpp>
#include <cogqat/format/vec_dot.hpp>
#include <cogqat/model/evaluate.hpp>
#include <cogqat/model/llama_model.hpp>
#include <cogqat/model/tokenizer.hpp>

#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <limits>

#include "format_list.hpp"
#include "random_data.hpp"
#include "shared_data.hpp"

using namespace cogqat;

namespace {
const std::string documented_story =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. "
        "She "
        "wanted to play with it, but it was too high.";
}

TEST_CASE_TEMPLATE("quantized dot products equal the dot product of the decoded values", F, formats::q4_0, formats::q4_1, formats::q5_0,
                   formats::q5_1, formats::q8_0, formats::q2_K, formats::q3_K, formats::q4_K, formats::q5_K, formats::q6_K) {
    const std::size_t n = 1024;
    const auto w = test::gaussian_values(n, 41, 0.05);
    const auto x = test::laplace_with_outliers(n, 42);
    const auto weights = quantize(F::type, w);
    const auto a_type = activation_type_for(F::type);
    std::vector<std::byte> activations(storage_size(a_type, n));
    quantize_activations(a_type, x, activations);
    const auto wd = dequantize(F::type, weights), xd = dequantize(a_type, activations);
    double exact = 0.0, magnitude = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        exact += static_cast<double>(wd[i]) * xd[i];
        magnitude += std::fabs(static_cast<double>(wd[i]) * xd[i]);
    }
    const float dot = quantized_dot_for(F::type)(weights, activations, n);
    // Integer sums are exact; only the per-sub-block float scaling and accumulation round: n / sub-block
    // terms, each within a few ulps of the magnitude.
    CHECK(std::fabs(dot - exact) <= 1e-5 * magnitude + 1e-6);
    std::vector<float> scratch;
    CHECK(std::fabs(vec_dot_float(F::type, weights, x, scratch) - [&] {
              double s = 0.0;
              for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(wd[i]) * x[i];
              return s;
          }()) <= 1e-5 * magnitude + 1e-4);
}

TEST_CASE("activations are quantized as ggml's CPU backend does: times 127/amax, ties to even") {
    std::vector<float> x(32, 0.0f);
    x[0] = 127.0f;  // amax 127: the multiplier is exactly 1, so x[i] = k + 0.5 lands on a tie
    x[1] = 2.5f;
    x[2] = 3.5f;
    x[3] = -2.5f;
    std::vector<std::byte> q(34);
    quantize_activations(ggml_type::q8_0, x, q);
    CHECK(static_cast<std::int8_t>(q[3]) == 2);  // ties to even (the reference would give 3)
    CHECK(static_cast<std::int8_t>(q[4]) == 4);
    CHECK(static_cast<std::int8_t>(q[5]) == -2);
    CHECK(static_cast<std::int8_t>(quantize(ggml_type::q8_0, x)[3]) == 3);
    std::vector<std::byte> q1(36);
    quantize_activations(ggml_type::q8_1, x, q1);
    CHECK(load_le<std::uint16_t>(q1.data() + 2) == fp32_to_fp16_bits(1.0f * (127 + 2 + 4 - 2)));
    std::vector<float> bad(32, 1.0f);
    bad[7] = NAN;
    CHECK_THROWS_AS(quantize_activations(ggml_type::q8_0, bad, q), value_error);
}

TEST_CASE("tokenizer: SentencePiece merges, byte fallback and decoding") {
    const auto w = make_synthetic_llama(2);
    tokenizer tok(w.vocab);
    const auto ids = tok.encode("hi\n", true);
    // No merges in a byte vocabulary: BOS, then the space prefix and every byte as byte tokens.
    CHECK(ids == std::vector<tokenizer::token>{1, 3 + 0xE2, 3 + 0x96, 3 + 0x81, 3 + 'h', 3 + 'i', 3 + '\n'});
    CHECK(tok.decode({3 + 'h', 3 + 'i'}) == "hi");
    CHECK_THROWS_AS((void)tok.piece(100000), invalid_argument_error);
}

TEST_CASE("stories260K: greedy generation reproduces the documented story, from llama2.c and from our GGUF") {
    const auto dir = test::shared_dir() / "models" / "stories260K";
    if (!std::filesystem::exists(dir / "stories260K.bin")) {
        MESSAGE("skipped: " << dir.string() << " not found (set COGQAT_SHARED_DIR)");
        return;
    }
    const auto weights = io::read_llama2c(dir / "stories260K.bin", dir / "tok512.bin");
    const tokenizer tok(weights.vocab);
    const auto from_llama2c = llama_model::from_weights(weights);
    const auto story = generate(from_llama2c, {tok.bos()}, 80, 0.0f, 1, tok.eos());
    CHECK(tok.decode(story).starts_with(documented_story));
    CHECK(std::vector<tokenizer::token>(story.begin(), story.begin() + 10) ==
          std::vector<tokenizer::token>{403, 407, 261, 378, 432, 383, 286, 261, 376, 298});

    const auto path = std::filesystem::temp_directory_path() / ("cogqat-model-test-" + std::to_string(::getpid()) + ".gguf");
    io::write_llama_gguf(weights, path);
    {
        const auto file = gguf::reader::open(path);
        const auto from_gguf = io::read_llama_model(file);
        const auto gguf_tok = io::read_tokenizer(file);
        CHECK(gguf_tok.decode(generate(from_gguf, {gguf_tok.bos()}, 80, 0.0f, 1, gguf_tok.eos())).starts_with(documented_story));
        CHECK(gguf_tok.encode("Once upon a time", true) == std::vector<tokenizer::token>{1, 403, 407, 261, 378});
        // The same model both ways gives the same perplexity; against itself, KL 0 and full agreement.
        const auto tokens = tokenize_text(gguf_tok, documented_story);
        const auto a = evaluate_perplexity(from_gguf, tokens, 16, activation_mode::quantized, 1, &from_llama2c);
        const auto b = evaluate_perplexity(from_llama2c, tokens, 16);
        CHECK(a.perplexity == doctest::Approx(b.perplexity).epsilon(1e-6));
        CHECK(*a.kl == doctest::Approx(0.0).epsilon(1e-9));
        CHECK(*a.top1 == 1.0);
        CHECK(a.tokens == tokens.size() - 1 - (tokens.size() - 1) / 16);
    }
    std::filesystem::remove(path);
}

TEST_CASE("the runtime refuses what it cannot run") {
    const auto model = llama_model::from_weights(make_synthetic_llama(3, {64, 128, 1, 4, 2, 259, 16}));
    llama_session s(model, 8);
    CHECK_THROWS_WITH_AS((void)s.forward(300, 0), doctest::Contains("token 300 is out of range"), invalid_argument_error);
    CHECK_THROWS_WITH_AS((void)s.forward(5, 8), doctest::Contains("position 8 is past the context length 8"), invalid_argument_error);
    CHECK_THROWS_AS((void)evaluate_perplexity(model, {1}, 8), invalid_argument_error);
    const auto other_vocabulary = llama_model::from_weights(make_synthetic_llama(3, {64, 128, 1, 4, 2, 300, 16}));
    CHECK_THROWS_WITH_AS((void)evaluate_perplexity(model, {1, 5, 6}, 8, activation_mode::quantized, 1, &other_vocabulary),
                         doctest::Contains("the reference has 300 tokens, the model 259"), invalid_argument_error);
    CHECK_THROWS_AS((void)generate(model, {}, 4), invalid_argument_error);
    CHECK_THROWS_WITH_AS((void)evaluate_perplexity(model, {1, 5, 6}, 17),
                         doctest::Contains("window of 17 tokens exceeds the model's context of 16"), invalid_argument_error);
    for (float t : {-1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()})
        CHECK_THROWS_WITH_AS((void)generate(model, {1}, 4, t), doctest::Contains("is not 0 (greedy) or a positive finite number"),
                             invalid_argument_error);
    // A tiny temperature is greedy in effect, not a distribution whose every weight underflowed to zero.
    CHECK(generate(model, {1}, 6, 1e-30f, 5, -1) == generate(model, {1}, 6, 0.0f, 5, -1));
    CHECK(generate(model, {1}, std::numeric_limits<std::size_t>::max(), 0.0f, 5, -1).size() == 16);  // up to the context, no wrap-around
    const auto logits = s.forward(5, 0);
    for (float v : logits) CHECK(std::isfinite(v));
}

namespace {

/// The model with every matrix re-encoded as `type` (rows of 256, so every format fits).
llama_model with_matrices_as(llama_model model, ggml_type type) {
    auto encode = [&](weight_matrix& w) {
        const auto values = dequantize(w.type, w.bytes());
        w.owned = quantize(type, values);
        w.view = {};
        w.type = type;
        w.interleaved.reset();
    };
    encode(model.token_embedding);
    if (!model.tied_output) encode(model.output);
    for (auto& L : model.layers)
        for (auto* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.down, &L.up}) encode(*w);
    model.interleave();
    return model;
}

}  // namespace

TEST_CASE("interleaved q4_0 and q8_0 matrices give the rows' logits within float rounding, and the same next token everywhere") {
    const auto base = llama_model::from_weights(make_synthetic_llama(5, {256, 512, 2, 4, 2, 259, 40}));
    const std::vector<std::int32_t> tokens{1, 70, 80, 90, 100, 3, 250, 7, 8, 9, 10, 11, 12, 13};
    for (const ggml_type type : {ggml_type::q4_0, ggml_type::q8_0}) {
        CAPTURE(std::string(info(type).name));
        const auto model = with_matrices_as(base, type);
        // Interleaved wherever this machine has the kernel (q4_0 on x86 with AVX2, q8_0 with AVX-512 VNNI).
        CHECK(static_cast<bool>(model.layers[0].wq.interleaved) == static_cast<bool>(dispatch::kernels(type).dot_interleaved));
        CHECK(static_cast<bool>(model.classifier().interleaved) == static_cast<bool>(dispatch::kernels(type).dot_interleaved));
        auto rows = model;
        for (auto& L : rows.layers)
            for (auto* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.down, &L.up}) w->interleaved.reset();
        rows.token_embedding.interleaved.reset();
        rows.output.interleaved.reset();
        // The interleaved path forced through the reference arithmetic where this machine has no kernel.
        auto forced = rows;
        for (auto& L : forced.layers)
            for (auto* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.down, &L.up})
                w->interleaved = std::make_shared<const simd::interleaved_matrix>(w->type, w->bytes(), w->rows, w->cols);
        for (const llama_model* candidate : std::initializer_list<const llama_model*>{&model, &forced}) {
            llama_session a(*candidate, 40), b(rows, 40);
            double worst = 0.0;
            bool same_top = true;
            for (std::size_t i = 0; i < tokens.size(); ++i) {
                const auto la = a.forward(tokens[i], i);
                const std::vector<float> x(la.begin(), la.end());
                const auto lb = b.forward(tokens[i], i);
                double scale = 0.0;
                for (float v : lb) scale = std::max(scale, static_cast<double>(std::abs(v)));
                for (std::size_t j = 0; j < x.size(); ++j) worst = std::max(worst, std::abs(static_cast<double>(x[j]) - lb[j]) / scale);
                same_top =
                        same_top && std::max_element(x.begin(), x.end()) - x.begin() == std::max_element(lb.begin(), lb.end()) - lb.begin();
            }
            // Same integer sums, another float order: differences of float rounding, carried through 2 layers.
            CHECK(worst < 1e-4);
            CHECK(same_top);
        }
    }
}

TEST_CASE("a batch of tokens gives the logits of feeding them one at a time, bit for bit") {
    const auto base = llama_model::from_weights(make_synthetic_llama(4, {256, 512, 2, 4, 2, 259, 40}));
    // 30 tokens: past the batch length from which a session splits attention's heads over its threads,
    // and more rows than fit one of gemm's cache blocks.
    std::vector<std::int32_t> tokens{1};
    for (std::int32_t i = 1; i < 30; ++i) tokens.push_back(3 + 37 * i % 256);
    for (const ggml_type type : {ggml_type::f32, ggml_type::q8_0, ggml_type::q4_0, ggml_type::q4_K, ggml_type::f16}) {
        const auto model = type == ggml_type::f32 ? base : with_matrices_as(base, type);
        for (const auto mode : {activation_mode::quantized, activation_mode::float32}) {
            for (unsigned threads : {1u, 2u}) {
                CAPTURE(std::string(info(type).name));
                CAPTURE(threads);
                llama_session one(model, 40, mode, threads), batch(model, 40, mode, threads);
                one.set_kv_cache_type(ggml_type::f16);
                batch.set_kv_cache_type(ggml_type::f16);
                std::vector<float> expected;
                for (std::size_t i = 0; i < tokens.size(); ++i) {
                    const auto l = one.forward(tokens[i], i);
                    expected.insert(expected.end(), l.begin(), l.end());
                }
                // Two batches, the second continuing the first's cache.
                const std::span<const std::int32_t> all(tokens);
                const auto first = batch.forward_batch(all.first(5), 0, true);
                std::vector<float> got(first.begin(), first.end());
                const auto second = batch.forward_batch(all.subspan(5), 5, true);
                got.insert(got.end(), second.begin(), second.end());
                CHECK(got == expected);
                // Without all_logits only the last row comes back.
                llama_session last(model, 40, mode, threads);
                last.set_kv_cache_type(ggml_type::f16);
                const auto l = last.forward_batch(all, 0);
                CHECK(std::equal(l.begin(), l.end(), expected.end() - 259));
            }
        }
    }
    llama_session s(base, 8);
    CHECK_THROWS_AS((void)s.forward_batch(std::span<const std::int32_t>(), 0), invalid_argument_error);
    const std::vector<std::int32_t> nine(9, 5);
    CHECK_THROWS_WITH_AS((void)s.forward_batch(nine, 0), doctest::Contains("position 8 is past the context length 8"),
                         invalid_argument_error);
    CHECK_THROWS_WITH_AS((void)s.forward_batch(std::vector<std::int32_t>{5, 400}, 0), doctest::Contains("token 400 is out of range"),
                         invalid_argument_error);
}

TEST_CASE("lanes of a session give each sequence the logits of a session of its own, bit for bit") {
    const auto base = llama_model::from_weights(make_synthetic_llama(4, {256, 512, 2, 4, 2, 259, 40}));
    const std::vector<std::vector<std::int32_t>> sequences{{1, 70, 80, 90, 100, 3}, {1, 250, 7, 8, 9, 10}, {1, 11, 12, 13, 14, 15}};
    for (const ggml_type type : {ggml_type::f32, ggml_type::q4_K}) {
        const auto model = type == ggml_type::f32 ? base : with_matrices_as(base, type);
        for (const auto mode : {activation_mode::quantized, activation_mode::float32}) {
            for (unsigned threads : {1u, 2u}) {
                CAPTURE(std::string(info(type).name));
                CAPTURE(threads);
                // Four lanes, three of them run: a step may leave the last lanes out.
                llama_session lanes(model, 8, mode, threads, 4);
                lanes.set_kv_cache_type(ggml_type::f16);
                std::vector<llama_session> alone;
                alone.reserve(sequences.size());
                for (std::size_t q = 0; q < sequences.size(); ++q) {
                    alone.emplace_back(model, 8, mode, threads);
                    alone.back().set_kv_cache_type(ggml_type::f16);
                }
                for (std::size_t pos = 0; pos < sequences[0].size(); ++pos) {
                    std::vector<std::int32_t> step;
                    for (const auto& q : sequences) step.push_back(q[pos]);
                    const auto got = lanes.forward_lanes(step, pos);
                    REQUIRE(got.size() == sequences.size() * 259);
                    for (std::size_t q = 0; q < sequences.size(); ++q) {
                        const auto expected = alone[q].forward(sequences[q][pos], pos);
                        CHECK(std::equal(expected.begin(), expected.end(), got.begin() + static_cast<std::ptrdiff_t>(q * 259)));
                    }
                }
            }
        }
    }
    llama_session s(base, 4, activation_mode::quantized, 1, 2);
    CHECK(s.lanes() == 2);
    CHECK_THROWS_WITH_AS((void)s.forward_lanes(std::vector<std::int32_t>{1, 2, 3}, 0), doctest::Contains("3 tokens for 2 lanes"),
                         invalid_argument_error);
    CHECK_THROWS_AS((void)s.forward_lanes(std::span<const std::int32_t>(), 0), invalid_argument_error);
    CHECK_THROWS_WITH_AS((void)s.forward_lanes(std::vector<std::int32_t>{1, 2}, 4), doctest::Contains("past the context length 4"),
                         invalid_argument_error);
    CHECK_THROWS_WITH_AS((void)s.forward_lanes(std::vector<std::int32_t>{1, 400}, 0), doctest::Contains("token 400 is out of range"),
                         invalid_argument_error);
    CHECK_THROWS_AS((void)llama_session(base, 4, activation_mode::quantized, 1, 0), invalid_argument_error);
}
