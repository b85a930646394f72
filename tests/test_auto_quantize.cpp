// The data-free pipeline and its parts: the exact bit allocator, the exact reshapes, the synthetic
// calibration set, and auto_quantize end to end on generated models (size targets met, steps undone when
// they break the limits, the written file what the report says).

#include <doctest/doctest.h>

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "cogqat/calib/calibration_set.hpp"
#include "cogqat/core/random.hpp"
#include "cogqat/io/file.hpp"
#include "cogqat/io/gguf.hpp"
#include "cogqat/io/llama_gguf.hpp"
#include "cogqat/model/llama_model.hpp"
#include "cogqat/model/reshape.hpp"
#include "cogqat/model/synthetic.hpp"
#include "cogqat/qat/auto_quantize.hpp"
#include "cogqat/qat/bit_allocator.hpp"
#include "random_data.hpp"
#include "sanitizer.hpp"
#include "scratch_dir.hpp"
#include "thread_processes.hpp"

using namespace cogqat;
namespace fs = std::filesystem;

using test::scratch_dir;

namespace {

/// A small model whose FFN width (80) fits no 32-value block, with a classifier equal to the embedding.
llama_weights small_model(std::uint64_t seed, bool duplicate_classifier = true) {
    auto w = make_synthetic_llama(seed, {64, 80, 2, 4, 2, 259, 64});
    if (duplicate_classifier) {
        const auto embedding = w.tensors[0].values;
        for (auto& t : w.tensors)
            if (t.name == "output.weight") t.values = embedding;
    }
    return w;
}

auto_quantize_options fast_options(size_target target) {
    auto_quantize_options o;
    o.target = target;
    // Sanitized, one sequence instead of three: the same code paths, a third of the forward passes (these
    // cases were 14-17 s each at -O0 under ASan); nothing below depends on the calibration's length.
    o.calibration.tokens = COGQAT_TEST_ADDRESS_SANITIZER ? 32 : 96;
    o.calibration.sequence_length = 32;
    o.threads = 2;
    o.candidates = {ggml_type::q4_0, ggml_type::q5_1, ggml_type::q8_0};
    return o;
}

}  // namespace

TEST_CASE("bit allocator: the exact optimum, never over budget, ties to the smaller file") {
    test::rng r(3);
    for (int trial = 0; trial < 40; ++trial) {
        std::vector<std::vector<allocation_option>> options(4);
        for (auto& o : options) {
            const int n = 1 + static_cast<int>(r.next() % 4);
            for (int k = 0; k < n; ++k) o.push_back({ggml_type::q4_0, 32 * (1 + r.next() % 10), r.uniform()});
        }
        std::uint64_t least = 0;
        for (const auto& o : options) {
            std::uint64_t m = UINT64_MAX;
            for (const auto& x : o) m = std::min(m, x.bytes);
            least += m;
        }
        const std::uint64_t budget = least + r.next() % 200;
        const auto a = allocate_bits(options, budget);
        // Brute force over every combination.
        double best = INFINITY;
        for (std::size_t i0 = 0; i0 < options[0].size(); ++i0)
            for (std::size_t i1 = 0; i1 < options[1].size(); ++i1)
                for (std::size_t i2 = 0; i2 < options[2].size(); ++i2)
                    for (std::size_t i3 = 0; i3 < options[3].size(); ++i3) {
                        const std::uint64_t bytes =
                                options[0][i0].bytes + options[1][i1].bytes + options[2][i2].bytes + options[3][i3].bytes;
                        if (bytes <= budget)
                            best = std::min(best, options[0][i0].cost + options[1][i1].cost + options[2][i2].cost + options[3][i3].cost);
                    }
        CHECK(a.bytes <= budget);
        CHECK(a.cost == doctest::Approx(best).epsilon(1e-12));
        std::uint64_t bytes = 0;
        for (std::size_t t = 0; t < 4; ++t) bytes += options[t][a.choice[t]].bytes;
        CHECK(bytes == a.bytes);
    }
    // Equal cost: the smaller option.
    const auto tie = allocate_bits({{{ggml_type::f16, 64, 0.5}, {ggml_type::q8_0, 32, 0.5}}}, 100);
    CHECK(tie.choice[0] == 1);
    CHECK_THROWS_WITH_AS(static_cast<void>(allocate_bits({{{ggml_type::q4_0, 64, 0.1}}}, 63)),
                         doctest::Contains("below the smallest possible size, 64"), invalid_argument_error);
    CHECK_THROWS_AS(static_cast<void>(allocate_bits({{}}, 100)), invalid_argument_error);
    CHECK_THROWS_AS(static_cast<void>(allocate_bits({{{ggml_type::q4_0, 8, NAN}}}, 100)), invalid_argument_error);
}

TEST_CASE("reshape: padding the FFN and tying an identical classifier leave the function unchanged") {
    const auto original = small_model(4);
    auto reshaped = original;
    CHECK(drop_duplicate_classifier(reshaped));
    CHECK(pad_feed_forward(reshaped, 32) == 96);
    CHECK(reshaped.config.hidden_dim == 96);
    for (const auto& t : reshaped.tensors) {
        CHECK(t.name != "output.weight");
        if (t.name.find("ffn_down") != std::string::npos) CHECK(t.shape == std::vector<std::uint64_t>{96, 64});
        if (t.name.find("ffn_gate") != std::string::npos) CHECK(t.shape == std::vector<std::uint64_t>{64, 96});
    }
    const auto a = llama_model::from_weights(original), b = llama_model::from_weights(reshaped);
    CHECK_FALSE(a.tied_output);
    CHECK(b.tied_output);
    llama_session sa(a, 16, activation_mode::float32), sb(b, 16, activation_mode::float32);
    double worst = 0.0;
    for (std::size_t p = 0; p < 16; ++p) {
        const std::int32_t token = static_cast<std::int32_t>(3 + 17 * p % 250);
        const auto la = sa.forward(token, p);
        const std::vector<float> copy(la.begin(), la.end());
        const auto lb = sb.forward(token, p);
        for (std::size_t v = 0; v < copy.size(); ++v) worst = std::max(worst, std::fabs(static_cast<double>(copy[v]) - lb[v]));
    }
    // Only the order of float additions differs (zeros land in other partial sums).
    CHECK(worst < 1e-5);

    auto different = small_model(4, false);
    CHECK_FALSE(drop_duplicate_classifier(different));
    CHECK(pad_feed_forward(different, 16) == 80);  // already a multiple
    CHECK_THROWS_AS(static_cast<void>(pad_feed_forward(different, 0)), invalid_argument_error);
    different.tensors.back().shape = {1, 2};
    auto broken = small_model(5);
    for (auto& t : broken.tensors)
        if (t.name == "blk.1.ffn_down.weight") t.shape = {64, 80};
    CHECK_THROWS_WITH_AS(static_cast<void>(pad_feed_forward(broken, 32)), doctest::Contains("blk.1.ffn_down.weight"), format_error);
}

TEST_CASE("llama_model::viewing: the weights' own floats, not a copy, and the same logits as from_weights") {
    const auto weights = small_model(6);
    const auto owning = llama_model::from_weights(weights);
    const auto viewing = llama_model::viewing(weights);
    const auto found = std::find_if(weights.tensors.begin(), weights.tensors.end(),
                                    [](const float_tensor& t) { return t.name == "blk.0.attn_q.weight"; });
    REQUIRE(found != weights.tensors.end());
    const auto& q = *found;
    CHECK(viewing.layers[0].wq.owned.empty());
    CHECK(viewing.layers[0].wq.bytes().data() == reinterpret_cast<const std::byte*>(q.values.data()));
    CHECK(viewing.layers[0].wq.bytes().size() == q.values.size() * sizeof(float));
    for (auto mode : {activation_mode::float32, activation_mode::quantized}) {
        llama_session a(owning, 8, mode), b(viewing, 8, mode);
        for (std::size_t p = 0; p < 8; ++p) {
            const auto token = static_cast<std::int32_t>((p * 7 + 1) % owning.config.vocab_size);
            const auto x = a.forward(token, p);
            const std::vector<float> first(x.begin(), x.end());
            const auto y = b.forward(token, p);
            CHECK(std::equal(first.begin(), first.end(), y.begin(), y.end()));
        }
    }
    auto broken = small_model(6);
    broken.tensors[static_cast<std::size_t>(found - weights.tensors.begin())].values.pop_back();
    CHECK_THROWS_WITH_AS(static_cast<void>(llama_model::viewing(broken)), doctest::Contains("blk.0.attn_q.weight"), shape_error);
}

TEST_CASE("calibration: self-generated, random and statistics-matched inputs; the teacher scores itself perfectly") {
    const auto model = llama_model::from_weights(small_model(6));
    for (auto source : {calibration_source::self_generated, calibration_source::random_tokens, calibration_source::hidden_states}) {
        CAPTURE(name_of(source));
        calibration_options o;
        o.source = source;
        o.tokens = 64;
        o.sequence_length = 16;
        const auto set = make_calibration_set(model, o);
        REQUIRE(set.sequences.size() == 4);
        CHECK(set.positions() == 64);
        for (const auto& s : set.sequences) {
            if (source == calibration_source::hidden_states) {
                CHECK(s.inputs.size() == 16 * 64);
                CHECK(s.tokens.empty());
            } else {
                REQUIRE(s.tokens.size() == 16);
                CHECK(s.tokens[0] == 1);
                for (auto t : s.tokens) CHECK((t >= 0 && t < 259));
            }
        }
        // The model's writing is told token by token (the step's progress on a large model), one call at a time,
        // and telling it changes nothing.
        std::vector<std::size_t> told;
        o.threads = 2;
        o.on_tokens = [&](std::size_t done, std::size_t total) {
            CHECK(total == 64);
            told.push_back(done);
        };
        const auto again = make_calibration_set(model, o);
        o.on_tokens = nullptr;
        if (source == calibration_source::self_generated) {
            // After each step of the four sequences written together: 4 BOS and 4 tokens, then 4 more a step.
            REQUIRE(told.size() == 15);
            for (std::size_t k = 0; k < told.size(); ++k) CHECK(told[k] == 8 + 4 * k);
            // Each sequence is the one a session of its own writes: greedy after BOS, then sampled with its seed.
            for (std::size_t q = 0; q < set.sequences.size(); ++q) {
                llama_session alone(model, 16, activation_mode::float32, 1);
                xoshiro256 random(o.seed * 1000003u + q);
                std::vector<std::int32_t> expected{model.bos_id};
                std::size_t since_start = 0;
                while (expected.size() < 16) {
                    const auto logits = alone.forward(expected.back(), expected.size() - 1);
                    auto next = since_start < o.greedy_tokens ? static_cast<std::int32_t>(detail::argmax(logits))
                                                              : detail::sample_token(logits, o.temperature, random);
                    ++since_start;
                    if (next == model.eos_id) next = model.bos_id, since_start = 0;
                    expected.push_back(next);
                }
                CHECK(set.sequences[q].tokens == expected);
            }
        } else {
            CHECK(told.empty());
        }
        CHECK(again.sequences[2].tokens == set.sequences[2].tokens);
        CHECK(again.sequences[2].inputs == set.sequences[2].inputs);
        o.seed = 2;
        const auto other = make_calibration_set(model, o);
        CHECK((other.sequences[1].tokens != set.sequences[1].tokens || other.sequences[1].inputs != set.sequences[1].inputs));

        input_moments moments;
        const auto answers = run_teacher(model, set, 2, &moments);
        CHECK(moments.samples == 64);
        const auto* h = moments.find("blk.0.ffn_down.weight");
        REQUIRE(h != nullptr);
        REQUIRE(h->size() == 80 * 80);
        for (std::size_t i = 0; i < 80; ++i) {
            CHECK((*h)[i * 80 + i] >= 0.0);
            CHECK((*h)[i * 80 + 3] == doctest::Approx((*h)[3 * 80 + i]));
        }
        CHECK(moments.find("token_embd.weight") == nullptr);  // untied: only looked up, never multiplied
        // Q, K and V read one input, as do gate and up: they share one H, which is that input's own sums.
        for (const char* reader : {"blk.1.attn_k.weight", "blk.1.attn_v.weight"})
            CHECK(moments.find(reader) == moments.find("blk.1.attn_q.weight"));
        CHECK(moments.find("blk.1.ffn_up.weight") == moments.find("blk.1.ffn_gate.weight"));
        CHECK(moments.find("blk.1.attn_output.weight") != moments.find("blk.1.attn_q.weight"));
        {
            const weight_matrix& wv = model.layers[1].wv;
            std::vector<double> direct(wv.cols * wv.cols, 0.0);
            for (const auto& seq : set.sequences) {
                llama_session session(model, seq.length, activation_mode::float32, 1);
                session.observe_inputs([&](const weight_matrix& w, std::span<const float> x) {
                    if (&w != &wv) return;
                    for (std::size_t i = 0; i < x.size(); ++i)
                        for (std::size_t j = 0; j < x.size(); ++j) direct[i * x.size() + j] += static_cast<double>(x[i]) * x[j];
                });
                run_sequence(session, seq, model.config.dim, [](std::size_t, std::span<const float>) {});
            }
            const auto* shared = moments.find("blk.1.attn_v.weight");
            REQUIRE(shared != nullptr);
            REQUIRE(shared->size() == direct.size());
            for (std::size_t i = 0; i < direct.size(); ++i) CHECK((*shared)[i] == doctest::Approx(direct[i]).epsilon(1e-9));
        }
        const auto self = score_against_teacher(model, set, answers, activation_mode::float32, 2);
        CHECK(self.kl == doctest::Approx(0.0).epsilon(1e-9));
        CHECK(self.top1 == 1.0);
        CHECK(self.retention() == 1.0);
    }
    calibration_options bad;
    bad.tokens = 1;
    CHECK_THROWS_WITH_AS(static_cast<void>(make_calibration_set(model, bad)), doctest::Contains("at least 2 positions"),
                         invalid_argument_error);
    bad.tokens = 40;
    bad.sequence_length = 1;
    CHECK_THROWS_AS(static_cast<void>(make_calibration_set(model, bad)), invalid_argument_error);
    bad.sequence_length = 128;  // longer than the positions asked for: one sequence of 40
    CHECK(make_calibration_set(model, bad).sequences.size() == 1);
    CHECK_THROWS_WITH_AS(static_cast<void>(parse_calibration_source("text")), doctest::Contains("self, random or stats"),
                         invalid_argument_error);
}

TEST_CASE("calibration: text starts at the vocabulary's BOS and starts again after its EOS, whatever their ids") {
    auto weights = small_model(6);
    weights.vocab.bos_id = 5;
    weights.vocab.eos_id = 258;
    const auto model = llama_model::from_weights(weights);
    CHECK(model.bos_id == 5);
    CHECK(model.eos_id == 258);
    calibration_options o;
    o.tokens = 64;
    o.sequence_length = 32;
    const auto before = make_calibration_set(model, o);
    // The token the model writes most, made its EOS: each sequence must start again at its first occurrence.
    std::map<std::int32_t, int> written;
    for (const auto& s : before.sequences)
        for (std::size_t p = 1; p < s.tokens.size(); ++p) ++written[s.tokens[p]];
    std::int32_t frequent = -1;
    for (const auto& [token, count] : written)
        if (token != 5 && token != 258 && (frequent < 0 || count > written[frequent])) frequent = token;
    REQUIRE(frequent >= 0);
    weights.vocab.eos_id = static_cast<std::uint32_t>(frequent);
    const auto restarted = make_calibration_set(llama_model::from_weights(weights), o);
    bool restarts = false;
    for (std::size_t s = 0; s < before.sequences.size(); ++s) {
        const auto& a = before.sequences[s].tokens;
        const auto& b = restarted.sequences[s].tokens;
        REQUIRE(b.size() == a.size());
        CHECK(b[0] == 5);
        const auto first = std::find(a.begin() + 1, a.end(), frequent);
        CHECK(std::equal(a.begin(), first, b.begin()));
        if (first != a.end()) {
            restarts = true;
            CHECK(b[static_cast<std::size_t>(first - a.begin())] == 5);
        }
        CHECK(std::find(b.begin(), b.end(), frequent) == b.end());
    }
    CHECK(restarts);
    o.source = calibration_source::random_tokens;
    for (const auto& s : make_calibration_set(model, o).sequences) CHECK(s.tokens[0] == 5);

    weights.vocab.bos_id = 259;  // the vocabulary has 259 tokens
    CHECK_THROWS_WITH_AS(static_cast<void>(llama_model::from_weights(weights)), doctest::Contains("BOS id 259"), invalid_argument_error);
    auto unknown_eos = llama_model::from_weights(small_model(6));
    unknown_eos.eos_id = -1;
    o.source = calibration_source::self_generated;
    CHECK_THROWS_WITH_AS(static_cast<void>(make_calibration_set(unknown_eos, o)), doctest::Contains("EOS id -1"), invalid_argument_error);
}

TEST_CASE("auto_quantize: the file meets the size target exactly as reported, and holds what the report says") {
    scratch_dir dir;
    io::write_llama_gguf(small_model(7), dir.path / "f32.gguf");
    const auto in = gguf::reader::open(dir.path / "f32.gguf");
    const auto analysis = sensitivity_analysis::measure(in, fast_options(size_target::bits(6.0)));

    for (const auto target : {size_target::bits(6.0), size_target::reduction(0.6), size_target::file(60000)}) {
        auto o = fast_options(target);
        o.accuracy_threshold = 0.0;
        const auto out = dir.path / "auto.gguf";
        const auto r = analysis.quantize_to(out, o);
        CHECK(r.classifier_tied);
        CHECK(r.feed_forward_from == 80);
        CHECK(r.feed_forward_to == 96);
        // Embedding, final norm, and per layer q, o (64x64), k, v (32x64), gate, up, down (80x64, padding not
        // counted) and two norms; the classifier is the embedding.
        CHECK(r.parameters == 64 * 259 + 64 + 2 * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 80 * 64 + 2 * 64));
        CHECK(r.file_bytes == fs::file_size(out));
        if (target.what == size_target::kind::file_bytes) {
            CHECK(r.file_bytes <= 60000);
            CHECK(r.budget_is_file_size);
        } else {
            CHECK(r.tensor_bytes <= r.budget_bytes);
        }
        if (target.what == size_target::kind::bits_per_weight) CHECK(r.bits_per_weight <= 6.0);
        if (target.what == size_target::kind::memory_reduction) CHECK(r.memory_reduction_vs_f16 >= 0.6);
        // The file holds the reported types, and the padded, tied model.
        const auto written = gguf::reader::open(out);
        CHECK(written.find_tensor("output.weight") == nullptr);
        CHECK(written.find("llama.feed_forward_length")->as<std::uint32_t>() == 96);
        std::uint64_t bytes = 0;
        for (const auto& t : r.tensors) {
            const auto* info = written.find_tensor(t.name);
            REQUIRE(info != nullptr);
            CHECK(info->type == t.type);
            bytes += info->bytes();
        }
        CHECK(bytes == r.tensor_bytes);
        CHECK(r.steps.size() == 2 * 7 + 1);
        CHECK(std::isfinite(r.validation.kl));
        CHECK(r.validation.kl >= 0.0);
        std::uint64_t histogram = 0;
        for (auto n : r.error_histogram) histogram += n;
        CHECK(histogram == r.stored_elements - 5 * 64);  // every matrix weight, no norm
    }
    auto o = fast_options(size_target::file(1000));
    CHECK_THROWS_AS(static_cast<void>(analysis.quantize_to(dir.path / "tiny.gguf", o)), invalid_argument_error);
    CHECK_FALSE(fs::exists(dir.path / "tiny.gguf"));
}

TEST_CASE("auto_quantize: a step that breaks the accuracy threshold or max_kl is undone, within the size target") {
    scratch_dir dir;
    io::write_llama_gguf(small_model(8), dir.path / "f32.gguf");
    const auto in = gguf::reader::open(dir.path / "f32.gguf");
    auto o = fast_options(size_target::bits(8.0));
    const auto analysis = sensitivity_analysis::measure(in, o);
    o.accuracy_threshold = 0.0;
    o.max_kl = 0.0;  // every step that quantizes below f16 adds KL: each is undone while the budget allows
    const auto r = analysis.quantize_to(dir.path / "undo.gguf", o);
    std::size_t undone = 0;
    for (const auto& s : r.steps) {
        if (!s.undone) continue;
        ++undone;
        CHECK(s.type == ggml_type::f16);
        CHECK(s.reason.find("KL past max_kl") != std::string::npos);
        for (const auto& t : r.tensors)
            if (t.name == s.tensor) CHECK(t.type == ggml_type::f16);
    }
    CHECK(undone > 0);
    CHECK(r.tensor_bytes <= r.budget_bytes);
    const auto without = analysis.quantize_to(dir.path / "plain.gguf", [&] {
        auto p = o;
        p.max_kl = std::numeric_limits<double>::infinity();
        return p;
    }());
    for (const auto& s : without.steps) CHECK_FALSE(s.undone);

    o.accuracy_threshold = 1.5;
    CHECK_THROWS_AS(static_cast<void>(analysis.quantize_to(dir.path / "x.gguf", o)), invalid_argument_error);
    o.accuracy_threshold = 0.98;
    o.target = size_target::bits(-1);
    CHECK_THROWS_AS(static_cast<void>(analysis.quantize_to(dir.path / "x.gguf", o)), invalid_argument_error);
    o.target = size_target::reduction(1.0);
    CHECK_THROWS_AS(static_cast<void>(analysis.quantize_to(dir.path / "x.gguf", o)), invalid_argument_error);
}

TEST_CASE("auto_quantize: a target below the smallest size is refused in its own unit, or raised to it when it is the default") {
    scratch_dir dir;
    io::write_llama_gguf(small_model(8), dir.path / "f32.gguf");
    const auto in = gguf::reader::open(dir.path / "f32.gguf");
    auto o = fast_options(size_target::bits(8.0));
    o.candidates = {ggml_type::q8_0};  // 8.5 bits per weight: 4 (75% smaller than F16) is out of reach
    const auto analysis = sensitivity_analysis::measure(in, o);
    o.target = size_target::reduction(0.75);
    CHECK_THROWS_WITH_AS(static_cast<void>(analysis.quantize_to(dir.path / "x.gguf", o)),
                         doctest::Contains("a memory reduction of 0.750 against F16 is beyond the largest this model allows"),
                         invalid_argument_error);
    o.target = size_target::bits(4.0);
    CHECK_THROWS_WITH_AS(static_cast<void>(analysis.quantize_to(dir.path / "x.gguf", o)),
                         doctest::Contains("a target of 4.000 bits per weight is below the smallest this model allows"),
                         invalid_argument_error);
    o.target = size_target::file(1);
    CHECK_THROWS_WITH_AS(static_cast<void>(analysis.quantize_to(dir.path / "x.gguf", o)),
                         doctest::Contains("a file of 1 bytes is below the smallest this model allows"), invalid_argument_error);
    CHECK_FALSE(std::filesystem::exists(dir.path / "x.gguf"));
    o.target = size_target::default_target();
    const auto r = analysis.quantize_to(dir.path / "default.gguf", o);
    CHECK(r.budget_raised);
    for (const auto& t : r.tensors)
        if (!t.candidates.empty()) CHECK(t.type == ggml_type::q8_0);
    CHECK(r.tensor_bytes <= r.budget_bytes);

    // The whole pipeline refuses before it calibrates: the smallest size is known from the shapes alone.
    std::vector<std::string> phases;
    o.target = size_target::bits(4.0);
    o.on_progress = [&](const auto_progress& p) { phases.emplace_back(p.phase); };
    CHECK_THROWS_WITH_AS(static_cast<void>(auto_quantize(in, dir.path / "x.gguf", o)),
                         doctest::Contains("a target of 4.000 bits per weight is below the smallest this model allows"),
                         invalid_argument_error);
    CHECK(phases.empty());
    CHECK_FALSE(std::filesystem::exists(dir.path / "x.gguf"));
}

TEST_CASE("auto_quantize with rotation and smoothing: the teacher keeps its function, the report says what changed") {
    scratch_dir dir;
    auto w = small_model(3);
    xoshiro256 rng(4);
    for (auto& t : w.tensors)
        if (t.shape.size() == 1)
            for (auto& v : t.values) v = static_cast<float>(1.0 + 0.3 * rng.gaussian());
    io::write_llama_gguf(w, dir.path / "f32.gguf");
    const auto in = gguf::reader::open(dir.path / "f32.gguf");
    auto o = fast_options(size_target::bits(6.0));
    o.transforms.rotate = rotation_mode::hadamard;
    o.transforms.smooth = true;
    // Sanitized, one smoothing exponent besides none: the same search, a third of its rounding (11 s at -O0).
    if (COGQAT_TEST_ADDRESS_SANITIZER) o.transforms.alphas = {0.5};
    o.accuracy_threshold = 0.0;
    const auto analysis = sensitivity_analysis::measure(in, o);
    const auto r = analysis.quantize_to(dir.path / "auto.gguf", o);
    CHECK(r.transforms.applied());
    CHECK(r.transforms.rotation.residual == "hadamard 64");
    CHECK(r.transforms.rotation.heads == "hadamard 16");
    CHECK(r.transforms.rotation.folding.norms == 5);
    CHECK(r.transforms.rotation.folding.untied);  // the classifier takes output_norm's weight, the embedding must not
    CHECK_FALSE(r.classifier_tied);
    CHECK(r.transforms.tensors.size() == 2 + 2 * 7);
    for (const auto& t : r.transforms.tensors) {
        CAPTURE(t.name);
        CHECK(t.weight_kurtosis_before > 0.0);
        if (t.name == "token_embd.weight") continue;  // a lookup once untied: no inputs
        CHECK(std::isfinite(t.error_after));
        CHECK(std::isfinite(t.input_kurtosis_after));
    }

    // The reshaped, rotated and smoothed teacher computes what the original model does (float rounding apart).
    const auto original = llama_model::from_weights(w);
    const std::vector<std::int32_t> tokens{1, 40, 7, 200, 13, 99};
    llama_session a(original, tokens.size(), activation_mode::float32), b(analysis.teacher(), tokens.size(), activation_mode::float32);
    const auto la = a.forward_batch(tokens, 0, true);
    const std::vector<float> expected(la.begin(), la.end());
    const auto lb = b.forward_batch(tokens, 0, true);
    double worst = 0.0, largest = 0.0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        worst = std::max(worst, std::fabs(static_cast<double>(expected[i]) - lb[i]));
        largest = std::max(largest, std::fabs(static_cast<double>(expected[i])));
    }
    CHECK(worst <= 1e-5 * largest);
    // The file is a plain llama: it reads back with its own classifier and runs.
    const auto written = gguf::reader::open(dir.path / "auto.gguf");
    CHECK(written.find_tensor("output.weight") != nullptr);
    CHECK(std::isfinite(r.validation.kl));
}

TEST_CASE("run_teacher: a token sequence runs as one batch with the logits of one position at a time; top-k answers") {
    const auto model = llama_model::from_weights(small_model(21, false));
    calibration_options o;
    o.tokens = 64;
    o.sequence_length = 32;
    o.threads = 2;
    const auto set = make_calibration_set(model, o);
    const auto& seq = set.sequences[1];
    std::vector<float> batched, alone;
    {
        llama_session session(model, seq.length, activation_mode::float32, 1);
        run_sequence(session, seq, model.config.dim,
                     [&](std::size_t, std::span<const float> l) { batched.insert(batched.end(), l.begin(), l.end()); });
    }
    {
        llama_session session(model, seq.length, activation_mode::float32, 1);
        for (std::size_t p = 0; p < seq.length; ++p) {
            const auto l = session.forward(seq.tokens[p], p);
            alone.insert(alone.end(), l.begin(), l.end());
        }
    }
    CHECK(batched == alone);

    const auto dense = run_teacher(model, set, 2);
    const auto top = run_teacher(model, set, 2, nullptr, 8);
    const std::size_t vocab = model.config.vocab_size;
    REQUIRE(top.top_k == 8);
    CHECK(top.nll == dense.nll);
    CHECK(top.argmax == dense.argmax);
    for (std::size_t at = 0; at < set.positions(); ++at) {
        double kept = 0.0;
        for (std::size_t j = 0; j < 8; ++j) {
            const auto token = static_cast<std::size_t>(top.top_tokens[at * 8 + j]);
            CHECK(top.log_probs[at * 8 + j] == dense.log_probs[at * vocab + token]);
            if (j) CHECK(top.log_probs[at * 8 + j] <= top.log_probs[at * 8 + j - 1]);
            kept += std::exp(static_cast<double>(top.log_probs[at * 8 + j]));
        }
        CHECK(top.top_tokens[at * 8] == top.argmax[at]);
        CHECK(kept + top.rest[at] == doctest::Approx(1.0).epsilon(1e-5));
    }
    // The teacher scores nothing against itself either way; a changed model scores a KL no larger than the
    // whole rows' (merging outcomes never raises a KL), and the same NLL and top-1.
    CHECK(score_against_teacher(model, set, top, activation_mode::float32, 2).kl == doctest::Approx(0.0).epsilon(1e-9));
    auto weights = small_model(21, false);
    for (auto& t : weights.tensors)
        if (t.name == "blk.0.ffn_down.weight")
            for (auto& v : t.values) v *= 1.5f;
    const auto changed = llama_model::from_weights(weights);
    const auto whole = score_against_teacher(changed, set, dense, activation_mode::float32, 2);
    const auto merged = score_against_teacher(changed, set, top, activation_mode::float32, 2);
    CHECK(whole.kl > 0.0);
    CHECK(merged.kl > 0.0);
    CHECK(merged.kl <= whole.kl * (1.0 + 1e-9));
    CHECK(merged.nll == whole.nll);
    CHECK(merged.top1 == whole.top1);
}

TEST_CASE("auto_quantize one layer at a time: the model mapped, blockwise's measures, a file as the report says") {
    scratch_dir dir;
    // FFN 96: no padding needed; an output of its own.
    io::write_llama_gguf(make_synthetic_llama(23, {64, 96, 3, 4, 2, 259, 64}), dir.path / "f32.gguf");
    const auto in = gguf::reader::open(dir.path / "f32.gguf");
    auto o = fast_options(size_target::bits(6.0));
    o.sensitivity = sensitivity_method::blockwise;
    o.candidates = {ggml_type::q4_0, ggml_type::q8_0};
    o.streaming = layer_streaming::whole_model;
    const auto whole = sensitivity_analysis::measure(in, o);
    o.streaming = layer_streaming::one_layer;
    o.measure_rows = 0;
    o.scratch_directory = dir.path;
    const auto streamed = sensitivity_analysis::measure(in, o);
    CHECK_FALSE(whole.layer_streamed());
    REQUIRE(streamed.layer_streamed());
    CHECK(streamed.method() == sensitivity_method::blockwise);
    CHECK(streamed.checks().size() == whole.checks().size());
    REQUIRE(streamed.weights().tensors.size() == whole.weights().tensors.size());
    for (std::size_t i = 0; i < whole.weights().tensors.size(); ++i) {
        const auto& t = whole.weights().tensors[i];
        const auto& s = streamed.weights().tensors[i];
        CAPTURE(t.name);
        CHECK(s.name == t.name);
        CHECK(s.shape == t.shape);
        const auto& a = whole.candidates(i);
        const auto& b = streamed.candidates(i);
        CHECK((s.values.empty() == !a.empty()));  // matrices stay in the mapping; norms are copied
        REQUIRE(a.size() == b.size());
        for (std::size_t k = 0; k < a.size(); ++k) {
            CHECK(a[k].type == b[k].type);
            CHECK(a[k].bytes == b[k].bytes);
            // The same inputs through the training forward instead of the runtime's: H agrees to rounding.
            CHECK(b[k].output_error == doctest::Approx(a[k].output_error).epsilon(1e-3));
            CHECK(b[k].activation_error == doctest::Approx(a[k].activation_error).epsilon(1e-3));
        }
    }
    auto to = o;
    to.accuracy_threshold = 0.0;
    const auto r = streamed.quantize_to(dir.path / "streamed.gguf", to);
    CHECK(r.layer_streamed);
    CHECK(r.steps.empty());
    CHECK_FALSE(r.progressive_note.empty());
    CHECK(r.file_bytes == fs::file_size(dir.path / "streamed.gguf"));
    CHECK(r.bits_per_weight <= 6.0);
    CHECK(r.validation.kl >= 0.0);
    CHECK(r.validation.top1 > 0.5);
    const auto written = gguf::reader::open(dir.path / "streamed.gguf");
    for (const auto& t : r.tensors) {
        const auto* info = written.find_tensor(t.name);
        REQUIRE(info != nullptr);
        CHECK(info->type == (t.candidates.empty() ? ggml_type::f32 : t.type));
    }
    // Nothing of the scratch file is left behind.
    for (const auto& entry : fs::directory_iterator(dir.path)) CHECK(entry.path().filename().string().find("scratch") == std::string::npos);

    // Measured on 8 rows of each matrix: the sizes are the whole matrices', the errors estimates of the whole
    // rows' (scaled sums over a third to a tenth of the rows), and the chosen types are rounded in full from the
    // kept GPTQ factors as the file is written: the smallest file (every matrix at q4_0) is the one the
    // whole rows give, byte for byte.
    o.measure_rows = 8;
    const auto sampled = sensitivity_analysis::measure(in, o);
    for (std::size_t i = 0; i < whole.weights().tensors.size(); ++i)
        for (std::size_t k = 0; k < sampled.candidates(i).size(); ++k) {
            const auto& x = sampled.candidates(i)[k];
            const auto& y = streamed.candidates(i)[k];
            CHECK(x.bytes == y.bytes);
            if (x.type == ggml_type::f16) continue;
            CHECK(x.output_error > 0.2 * y.output_error);
            CHECK(x.output_error < 5.0 * y.output_error);
        }
    auto smallest = o;
    smallest.accuracy_threshold = 0.0;
    smallest.target = size_target{size_target::kind::bits_per_weight, 0.1, true};
    const auto from_sampled = sampled.quantize_to(dir.path / "sampled-smallest.gguf", smallest);
    const auto from_whole = streamed.quantize_to(dir.path / "whole-smallest.gguf", smallest);
    CHECK(from_sampled.budget_raised);
    CHECK(io::read_file(dir.path / "sampled-smallest.gguf") == io::read_file(dir.path / "whole-smallest.gguf"));

    // What one layer at a time cannot do is refused when asked for, and left to the whole model when automatic.
    auto exact = o;
    exact.sensitivity = sensitivity_method::exact;
    CHECK_THROWS_WITH_AS(static_cast<void>(sensitivity_analysis::reshaped(in, exact)), doctest::Contains("blockwise"),
                         invalid_argument_error);
    auto rotated = o;
    rotated.transforms.rotate = rotation_mode::hadamard;
    CHECK_THROWS_WITH_AS(static_cast<void>(sensitivity_analysis::reshaped(in, rotated)), doctest::Contains("whole model"),
                         invalid_argument_error);
    auto automatic = o;
    automatic.streaming = layer_streaming::automatic;
    CHECK_FALSE(sensitivity_analysis::reshaped(in, automatic).layer_streamed());  // far below layer_streaming_parameters
    auto nowhere = o;
    nowhere.scratch_directory = dir.path / "missing";
    CHECK_THROWS_WITH_AS(static_cast<void>(sensitivity_analysis::measure(in, nowhere)), doctest::Contains("scratch file"), io_error);
}

TEST_CASE("auto_quantize over several processes: each measures a share, all allocate alike, the leader writes one process's bytes") {
    scratch_dir dir;
    io::write_llama_gguf(make_synthetic_llama(29, {64, 96, 2, 4, 2, 259, 64}), dir.path / "f32.gguf");
    const auto in = gguf::reader::open(dir.path / "f32.gguf");
    struct setting {
        const char* name;
        sensitivity_method method;
        layer_streaming streaming;
        std::size_t processes;
    };
    // One layer at a time on 8 sampled rows: the checks' whole GPTQ bytes wait in the owner's scratch file
    // and must reach the leader's. Sanitized, that setting alone (the Release pass runs all three: under
    // ASan they were 28 s).
    std::vector<setting> settings{{"one layer at a time", sensitivity_method::blockwise, layer_streaming::one_layer, 3}};
    if (!COGQAT_TEST_ADDRESS_SANITIZER) {
        settings.push_back({"whole model, blockwise", sensitivity_method::blockwise, layer_streaming::whole_model, 3});
        settings.push_back({"whole model, exact", sensitivity_method::exact, layer_streaming::whole_model, 2});
    }
    for (const setting& s : settings) {
        CAPTURE(s.name);
        auto o = fast_options(size_target::bits(5.5));
        o.sensitivity = s.method;
        o.streaming = s.streaming;
        o.measure_rows = 8;
        o.scratch_directory = dir.path;
        o.accuracy_threshold = 0.0;
        const auto alone = auto_quantize(in, dir.path / "alone.gguf", o);
        CHECK(alone.processes == 1);
        CHECK(alone.written);
        test::thread_processes group(s.processes);
        std::vector<auto_report> reports(s.processes);
        std::vector<std::thread> ranks;
        auto shared = o;
        shared.threads = 1;
        for (std::size_t r = 0; r < s.processes; ++r)
            ranks.emplace_back([&, r] {
                const test::thread_process me(group, r);
                reports[r] = auto_quantize(in, dir.path / (r == 0 ? "shared.gguf" : "not-written.gguf"), shared, me);
            });
        for (auto& t : ranks) t.join();
        CHECK(reports[0].written);
        CHECK(reports[0].processes == s.processes);
        CHECK(reports[0].validation.kl == alone.validation.kl);
        for (std::size_t r = 1; r < s.processes; ++r) CHECK_FALSE(reports[r].written);
        CHECK_FALSE(fs::exists(dir.path / "not-written.gguf"));
        CHECK(io::read_file(dir.path / "shared.gguf") == io::read_file(dir.path / "alone.gguf"));
    }
}

TEST_CASE("scratch_file: bytes back as appended, from any thread; a directory that is not there refused") {
    scratch_dir dir;
    io::scratch_file file(dir.path);
    std::vector<std::byte> a(1000), b(3);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<std::byte>(i * 7);
    b = {std::byte{1}, std::byte{2}, std::byte{3}};
    const auto ea = file.append(a);
    const auto eb = file.append(b);
    CHECK(ea.offset == 0);
    CHECK(eb.offset == 1000);
    CHECK(file.size() == 1003);
    CHECK(file.read(eb) == b);
    CHECK(file.read(ea) == a);
    CHECK(file.read({0, 0}).empty());
    CHECK_THROWS_WITH_AS(static_cast<void>(file.read({1000, 10})), doctest::Contains("past its end"), io_error);
    CHECK(fs::is_empty(dir.path));  // unlinked at once
    CHECK_THROWS_WITH_AS(io::scratch_file(dir.path / "missing"), doctest::Contains("cannot create a scratch file"), io_error);
}
