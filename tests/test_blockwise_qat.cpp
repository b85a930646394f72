// Block-wise QAT: the single-layer pass computes the whole-model pass's bits layer by layer, training lowers
// every layer's output error and the file's KL below the initial rounding's, a stopped run resumes to the same
// bytes, the bytes depend on neither the thread count nor the number of processes, and settings that cannot
// run are refused. The optional end-to-end phase: its scales' gradient against finite differences, what it holds
// per layer, the held-out KL it lowers, and its bytes on any number of threads or processes.

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cogqat/core/process_group.hpp"
#include "cogqat/core/random.hpp"
#include "cogqat/io/gguf.hpp"
#include "cogqat/io/llama_gguf.hpp"
#include "cogqat/model/llama_backward.hpp"
#include "cogqat/model/synthetic.hpp"
#include "cogqat/qat/blockwise_qat.hpp"
#include "cogqat/qat/end_to_end_scales.hpp"
#include "scratch_dir.hpp"
#include "thread_processes.hpp"

using namespace cogqat;
namespace fs = std::filesystem;
using test::scratch_dir;
using test::thread_process;
using test::thread_processes;

namespace blockwise_test {

std::string file_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

llama_config layered_shape(model_architecture a = model_architecture::llama, std::uint32_t ffn = 96) {
    llama_config c{64, ffn, 2, 4, 2, 259, 64};
    c.architecture = a;
    return c;
}

fs::path layered_model(const scratch_dir& dir, model_architecture a = model_architecture::llama, std::uint32_t ffn = 96) {
    const auto path = dir.path / "teacher.gguf";
    io::write_llama_gguf(make_synthetic_llama(3, layered_shape(a, ffn)), path);
    return path;
}

blockwise_qat_config layered_config() {
    blockwise_qat_config c;
    c.steps_per_layer = 12;
    c.batch = 4;
    c.gradient_groups = 4;
    c.sequence_length = 16;
    c.samples = 8;
    c.validation_samples = 4;
    c.threads = 2;
    return c;
}

/// A synthetic model stored as block-wise QAT leaves it (the attention in q4_0, the feed-forward in q4_1 for its
/// min, the norms in f32, the embedding and the classifier in q8_0), and the teacher's answers on random sequences.
struct stored_model {
    llama_config shape;
    std::vector<std::vector<std::vector<std::byte>>> layers;  ///< per layer, per tensor in the schema's order
    std::vector<std::pair<llama_parameter, ggml_type>> tensors;
    std::vector<std::byte> embedding, classifier;
    std::vector<float> output_norm, rope_freqs;
    std::vector<std::int32_t> tokens;
    teacher_outputs answers;

    [[nodiscard]] end_to_end_student student() const {
        end_to_end_student s;
        s.shape = shape;
        s.layer = [this](std::size_t l) {
            std::vector<frozen_tensor> out;
            for (std::size_t i = 0; i < tensors.size(); ++i) out.push_back({tensors[i].first, tensors[i].second, layers[l][i]});
            return out;
        };
        s.embedding = {llama_parameter::token_embedding, ggml_type::q8_0, embedding};
        s.classifier = {llama_parameter::output, ggml_type::q8_0, classifier};
        s.output_norm = output_norm;
        s.rope_freqs = rope_freqs;
        return s;
    }
};

stored_model stored(std::uint32_t n_layers, std::size_t sequences, std::size_t length, std::size_t top_k) {
    stored_model m;
    auto shape = layered_shape();
    shape.n_layers = n_layers;
    const auto teacher = llama_model::from_weights(make_synthetic_llama(3, shape));
    const auto p = llama_parameters::from_model(teacher);
    m.shape = p.config;
    detail::layerwise::for_each_layer_tensor(m.shape, [&](const tensor_schema& t) {
        const bool matrix = !t.is_vector();
        const bool ffn = t.parameter == llama_parameter::gate || t.parameter == llama_parameter::up || t.parameter == llama_parameter::down;
        m.tensors.emplace_back(t.parameter, !matrix ? ggml_type::f32 : ffn ? ggml_type::q4_1 : ggml_type::q4_0);
    });
    for (std::size_t l = 0; l < n_layers; ++l) {
        m.layers.emplace_back();
        for (const auto& [parameter, type] : m.tensors) m.layers.back().push_back(quantize(type, p.values(parameter, l)));
    }
    m.embedding = quantize(ggml_type::q8_0, p.token_embedding);
    m.classifier = quantize(ggml_type::q8_0, p.output);
    m.output_norm = p.output_norm;
    m.rope_freqs = p.rope_freqs;
    xoshiro256 r(11);
    calibration_set set;
    for (std::size_t s = 0; s < sequences; ++s) {
        calibration_sequence q;
        for (std::size_t i = 0; i < length; ++i) q.tokens.push_back(static_cast<std::int32_t>(r.next() % shape.vocab_size));
        q.length = length;
        m.tokens.insert(m.tokens.end(), q.tokens.begin(), q.tokens.end());
        set.sequences.push_back(std::move(q));
    }
    m.answers = run_teacher(teacher, set, 1, nullptr, top_k);
    return m;
}

end_to_end_settings small_steps(std::size_t length) {
    end_to_end_settings s;
    s.batch = 2;
    s.gradient_groups = 2;
    s.sequence_length = length;
    s.threads = 2;
    return s;
}

/// A progress callback's record: each phase once, in the order the run went through them.
struct phase_record {
    std::vector<std::string> phases;
    [[nodiscard]] auto callback() {
        return [this](const blockwise_progress& p) {
            if (phases.empty() || phases.back() != p.phase) phases.emplace_back(p.phase);
            return true;
        };
    }
};

/// Block-wise QAT on every rank of `group`, each a thread with one thread of work, all writing `out`; each
/// rank's report.
std::vector<blockwise_qat_report> run_on_ranks(thread_processes& group, const gguf::reader& in, const fs::path& out,
                                               const blockwise_qat_config& c) {
    std::vector<blockwise_qat_report> reports(group.shares.size());
    std::vector<std::thread> ranks;
    for (std::size_t r = 0; r < reports.size(); ++r)
        ranks.emplace_back([&, r] {
            thread_process me(group, r);
            auto mine = c;
            mine.threads = 1;
            reports[r] = blockwise_quantization_aware_training(in, out, mine, {}, me);
        });
    for (auto& t : ranks) t.join();
    return reports;
}

}  // namespace blockwise_test

using namespace blockwise_test;

TEST_CASE("llama_layer_pass: layer by layer, the whole-model pass's logits and gradients, bit for bit") {
    for (auto a : {model_architecture::llama, model_architecture::qwen2, model_architecture::qwen3}) {
        CAPTURE(architecture_name(a));
        auto shape = layered_shape(a);
        if (a == model_architecture::qwen3) shape.head_dim = 24;
        const auto p = llama_parameters::from_model(llama_model::from_weights(make_synthetic_llama(5, shape)));
        const auto& c = p.config;
        xoshiro256 r(9);
        std::vector<std::int32_t> tokens(11);
        for (auto& t : tokens) t = static_cast<std::int32_t>(r.next() % c.vocab_size);
        const std::size_t T = tokens.size(), dim = c.dim;

        llama_sequence_pass whole(c);
        const auto logits = whole.forward(p, tokens);
        const std::vector<float> expected(logits.begin(), logits.end());
        std::vector<float> dlogits(expected.size());
        for (auto& v : dlogits) v = static_cast<float>(r.uniform() - 0.5);
        auto grads = llama_parameters::zeros_like(p);
        whole.backward(p, dlogits, grads);

        // The same model as the embedding, a layer pass per layer, the final norm and the classifier.
        namespace bw = detail::backward;
        std::vector<std::vector<float>> stream(c.n_layers + 1, std::vector<float>(T * dim));
        bw::embedding_gather<float>(p.token_embedding, dim, tokens, stream[0]);
        std::vector<llama_layer_pass> passes;
        for (std::size_t l = 0; l < c.n_layers; ++l) {
            passes.emplace_back(c);
            const auto y = passes[l].forward(p.layers[l], p.rope_freqs, stream[l]);
            stream[l + 1].assign(y.begin(), y.end());
        }
        std::vector<float> normed(T * dim), rms(T), out(T * c.vocab_size);
        bw::rms_norm_forward<float>(stream.back(), p.output_norm, c.rms_norm_eps, normed, rms, T);
        bw::matmul<float>(normed, p.output, out, T, dim, c.vocab_size);
        CHECK(out == expected);

        std::vector<float> dnormed(T * dim, 0.0f), dx(T * dim, 0.0f), dnorm(dim, 0.0f);
        bw::matmul_backward_input<float>(dlogits, p.output, dnormed, T, dim, c.vocab_size);
        bw::rms_norm_backward<float>(dnormed, stream.back(), p.output_norm, rms, dx, dnorm, T);
        for (std::size_t l = c.n_layers; l-- > 0;) {
            auto layer_grads = llama_parameters::zeros_like(p).layers[l];
            const auto down = passes[l].backward(p.layers[l], dx, layer_grads);
            dx.assign(down.begin(), down.end());
            CHECK(layer_grads.wq == grads.layers[l].wq);
            CHECK(layer_grads.down == grads.layers[l].down);
            CHECK(layer_grads.attn_norm == grads.layers[l].attn_norm);
            CHECK(layer_grads.bq == grads.layers[l].bq);
            CHECK(layer_grads.q_norm == grads.layers[l].q_norm);
        }
        CHECK(passes[0].matrix_input(llama_parameter::down).size() == T * c.hidden_dim);
        CHECK_THROWS_AS((void)passes[0].matrix_input(llama_parameter::attn_norm), invalid_argument_error);
    }
}

TEST_CASE("llama_layer_pass refuses inputs and layers of other shapes") {
    const auto p = llama_parameters::from_model(llama_model::from_weights(make_synthetic_llama(5, layered_shape())));
    llama_layer_pass pass(p.config);
    CHECK_THROWS_AS((void)pass.backward(p.layers[0], std::vector<float>(64), llama_parameters::zeros_like(p).layers[0]),
                    invalid_argument_error);
    CHECK_THROWS_AS((void)pass.forward(p.layers[0], p.rope_freqs, std::vector<float>(63)), shape_error);
    CHECK_THROWS_AS((void)pass.forward(p.layers[0], p.rope_freqs, std::vector<float>{}), shape_error);
    auto broken = p.layers[0];
    broken.wk.pop_back();
    CHECK_THROWS_AS((void)pass.forward(broken, p.rope_freqs, std::vector<float>(64 * 3)), shape_error);
    (void)pass.forward(p.layers[0], p.rope_freqs, std::vector<float>(64 * 3));
    CHECK_THROWS_AS((void)pass.backward(p.layers[0], std::vector<float>(64 * 2), broken), shape_error);
}

TEST_CASE("block-wise QAT lowers every layer's output error and the file's KL below the initial rounding's") {
    scratch_dir dir;
    // A feed-forward of 80 units is padded to 96 with zero units, so that q4_0's blocks fit the down projection.
    const auto in = gguf::reader::open(layered_model(dir, model_architecture::llama, 80));
    auto c = layered_config();
    c.init = qat_init::reference;
    c.steps_per_layer = 0;
    const auto plain = blockwise_quantization_aware_training(in, dir.path / "plain.gguf", c);
    c.steps_per_layer = 30;
    phase_record record;
    const auto trained = blockwise_quantization_aware_training(in, dir.path / "trained.gguf", c, record.callback());
    REQUIRE(trained.completed);
    CHECK(record.phases == std::vector<std::string>{"data", "generate", "data", "round", "layer", "round", "layer", "output", "export"});
    REQUIRE(trained.layers.size() == 2);
    for (const auto& l : trained.layers) {
        MESSAGE("layer ", l.layer, ": error ", l.error_before, " -> ", l.error_after, ", loss ", l.first_loss, " -> ", l.last_loss);
        CHECK(l.error_after < 0.8 * l.error_before);
    }
    MESSAGE("file KL: initial rounding ", plain.after.kl, ", trained ", trained.after.kl);
    CHECK(trained.after.kl < 0.9 * plain.after.kl);
    CHECK(trained.validation_positions == 4 * 16);
    CHECK(trained.training_positions == 8 * 16);
    CHECK(trained.feed_forward_from == 80);
    CHECK(trained.feed_forward_to == 96);

    const auto out = gguf::reader::open(dir.path / "trained.gguf");
    CHECK(out.find_tensor("blk.1.ffn_down.weight")->type == ggml_type::q4_0);
    CHECK(out.find_tensor("blk.0.attn_norm.weight")->type == ggml_type::f32);
    CHECK(out.find_tensor("token_embd.weight")->type == plain.tensors.front().type);
    CHECK(out.tensors().size() == in.tensors().size());
    CHECK(out.find_tensor("blk.1.ffn_down.weight")->shape == std::vector<std::uint64_t>{96, 64});
    // With no training the block-wise file is the plain rounding of every tensor (ggml's, the reference init).
    const auto plain_file = gguf::reader::open(dir.path / "plain.gguf");
    const auto* t = plain_file.find_tensor("blk.0.attn_q.weight");
    const auto* source = in.find_tensor("blk.0.attn_q.weight");
    const auto values = dequantize(source->type, in.tensor_data(*source));
    const auto expected = quantize(ggml_type::q4_0, values);
    const auto got = plain_file.tensor_data(*t);
    CHECK(std::vector<std::byte>(got.begin(), got.end()) == expected);
}

TEST_CASE("block-wise QAT stores a classifier that equals the embedding once, tied") {
    scratch_dir dir;
    auto w = make_synthetic_llama(3, layered_shape());
    const auto embedding = *find_tensor_named(w, "token_embd.weight");
    find_tensor_named(w, "output.weight")->values = embedding.values;
    io::write_llama_gguf(w, dir.path / "duplicate.gguf");
    const auto in = gguf::reader::open(dir.path / "duplicate.gguf");
    auto c = layered_config();
    c.steps_per_layer = 1;
    const auto tied = blockwise_quantization_aware_training(in, dir.path / "tied.gguf", c);
    CHECK(tied.classifier_tied);
    CHECK_FALSE(gguf::reader::open(dir.path / "tied.gguf").find_tensor("output.weight"));
    c.drop_duplicate_classifier = false;
    const auto kept = blockwise_quantization_aware_training(in, dir.path / "kept.gguf", c);
    CHECK_FALSE(kept.classifier_tied);
    CHECK(gguf::reader::open(dir.path / "kept.gguf").find_tensor("output.weight"));
    CHECK(kept.file_bytes > tied.file_bytes);
}

TEST_CASE("block-wise QAT trains qwen2 and qwen3 layers (biases and head norms in float)") {
    for (auto a : {model_architecture::qwen2, model_architecture::qwen3}) {
        CAPTURE(architecture_name(a));
        scratch_dir dir;
        const auto in = gguf::reader::open(layered_model(dir, a));
        auto c = layered_config();
        c.steps_per_layer = 10;
        const auto report = blockwise_quantization_aware_training(in, dir.path / "out.gguf", c);
        REQUIRE(report.completed);
        for (const auto& l : report.layers) CHECK(l.error_after < l.error_before);
        const auto out = gguf::reader::open(dir.path / "out.gguf");
        const char* vector = a == model_architecture::qwen2 ? "blk.0.attn_q.bias" : "blk.0.attn_q_norm.weight";
        REQUIRE(out.find_tensor(vector));
        CHECK(out.find_tensor(vector)->type == ggml_type::f32);
    }
}

TEST_CASE("block-wise QAT: a stopped run resumes to the same bytes; threads and processes change no byte") {
    scratch_dir dir;
    const auto in = gguf::reader::open(layered_model(dir));
    auto c = layered_config();
    c.steps_per_layer = 6;
    const auto whole = blockwise_quantization_aware_training(in, dir.path / "whole.gguf", c);
    REQUIRE(whole.completed);
    const auto expected = file_bytes(dir.path / "whole.gguf");

    SUBCASE("stopped after the first layer, then resumed") {
        c.checkpoint = dir.path / "ckpt";
        const auto stopped = blockwise_quantization_aware_training(
                in, dir.path / "resumed.gguf", c, [](const blockwise_progress& p) { return p.phase != "layer" || p.layer != 0; });
        CHECK_FALSE(stopped.completed);
        CHECK_FALSE(fs::exists(dir.path / "resumed.gguf"));
        CHECK(fs::exists(c.checkpoint / "blk.0.gguf"));
        const auto resumed = blockwise_quantization_aware_training(in, dir.path / "resumed.gguf", c);
        CHECK(resumed.completed);
        CHECK(resumed.resumed_from_layer == 1);
        CHECK(resumed.layers[0].error_after == whole.layers[0].error_after);
        CHECK(file_bytes(dir.path / "resumed.gguf") == expected);
        CHECK_FALSE(fs::exists(c.checkpoint));

        // A checkpoint that lost a layer's file is refused, naming the file, and so is one of other settings.
        (void)blockwise_quantization_aware_training(in, dir.path / "other.gguf", c,
                                                    [](const blockwise_progress& p) { return p.phase != "layer" || p.layer != 0; });
        fs::remove(c.checkpoint / "blk.0.gguf");
        CHECK_THROWS_WITH_AS((void)blockwise_quantization_aware_training(in, dir.path / "other.gguf", c), doctest::Contains("blk.0.gguf"),
                             cogqat::error);
        CHECK_FALSE(fs::exists(dir.path / "other.gguf"));
        fs::remove_all(c.checkpoint);
        (void)blockwise_quantization_aware_training(in, dir.path / "other.gguf", c,
                                                    [](const blockwise_progress& p) { return p.phase != "layer" || p.layer != 0; });
        c.seed = 7;
        CHECK_THROWS_WITH_AS((void)blockwise_quantization_aware_training(in, dir.path / "other.gguf", c),
                             doctest::Contains("is of another run"), invalid_argument_error);
    }
    SUBCASE("one thread") {
        c.threads = 1;
        (void)blockwise_quantization_aware_training(in, dir.path / "one.gguf", c);
        CHECK(file_bytes(dir.path / "one.gguf") == expected);
    }
    SUBCASE("two and three processes") {
        for (std::size_t n : {2u, 3u}) {
            CAPTURE(n);
            thread_processes group(n);
            const auto reports = run_on_ranks(group, in, dir.path / "ranks.gguf", c);
            CHECK(reports[0].processes == n);
            CHECK(reports[0].after.kl == whole.after.kl);
            CHECK(file_bytes(dir.path / "ranks.gguf") == expected);
        }
    }
}

TEST_CASE("process_group: all_gather in rank order; a receiving buffer of another size is refused") {
    const single_process alone;
    std::vector<float> all(3);
    alone.all_gather(std::vector<float>{1, 2, 3}, all);
    CHECK(all == std::vector<float>{1, 2, 3});
    CHECK_THROWS_AS(alone.all_gather(std::vector<float>{1, 2}, all), shape_error);
    thread_processes group(2);
    std::vector<std::vector<float>> received(2, std::vector<float>(4));
    std::vector<std::thread> ranks;
    for (std::size_t r = 0; r < 2; ++r)
        ranks.emplace_back([&, r] {
            const thread_process me(group, r);
            me.all_gather(std::vector<float>{float(r), float(10 + r)}, received[r]);
        });
    for (auto& t : ranks) t.join();
    CHECK(received[0] == std::vector<float>{0, 10, 1, 11});
    CHECK(received[1] == received[0]);
}

TEST_CASE("process_group: broadcast gives every process the root's bytes, of any length; a root past the ranks is refused") {
    const single_process alone;
    std::vector<std::byte> bytes{std::byte{1}, std::byte{2}};
    broadcast_bytes(alone, bytes, 0);
    CHECK(bytes == std::vector<std::byte>{std::byte{1}, std::byte{2}});
    CHECK_THROWS_AS(alone.broadcast(bytes, 1), invalid_argument_error);
    thread_processes group(3);
    std::vector<std::vector<std::byte>> received(3);
    std::vector<double> values(3);
    std::vector<std::thread> ranks;
    for (std::size_t r = 0; r < 3; ++r)
        ranks.emplace_back([&, r] {
            const thread_process me(group, r);
            // Only the root's length counts: the others start with none, or with more.
            received[r].assign(r == 1 ? 5 : 2 * r, std::byte{static_cast<unsigned char>(r == 1 ? 7 : 0)});
            broadcast_bytes(me, received[r], 1);
            values[r] = r == 2 ? 0.25 : -1.0;
            broadcast_value(me, values[r], 2);
        });
    for (auto& t : ranks) t.join();
    for (std::size_t r = 0; r < 3; ++r) {
        CHECK(received[r] == std::vector<std::byte>(5, std::byte{7}));
        CHECK(values[r] == 0.25);
    }
}

TEST_CASE("block-wise QAT refuses settings that cannot run") {
    scratch_dir dir;
    const auto in = gguf::reader::open(layered_model(dir));
    auto refused = [&](auto change, const char* what) {
        auto c = layered_config();
        change(c);
        CHECK_THROWS_WITH_AS(blockwise_qat_pipeline(in, c), doctest::Contains(what), invalid_argument_error);
    };
    refused([](blockwise_qat_config& c) { c.batch = 0; }, "at least 1");
    refused([](blockwise_qat_config& c) { c.gradient_groups = 5; }, "5 gradient groups for a batch of 4");
    refused([](blockwise_qat_config& c) { c.samples = 0; }, "samples");
    refused([](blockwise_qat_config& c) { c.sequence_length = 1; }, "at least 2 positions");
    refused([](blockwise_qat_config& c) { c.sequence_length = 65; }, "exceed the model's context of 64");
    refused([](blockwise_qat_config& c) { c.optimizer.learning_rate = -1.0f; }, "learning rates");
    refused([](blockwise_qat_config& c) { c.accuracy_threshold = 2.0; }, "accuracy threshold");
    refused([](blockwise_qat_config& c) { c.end_to_end_lr = -1.0f; }, "end-to-end learning rate");
    refused([](blockwise_qat_config& c) { c.end_to_end_lr = NAN; }, "end-to-end learning rate");
}

TEST_CASE("end-to-end scales: the gradient of the block scales and mins against finite differences; the forward decodes the export") {
    for (std::size_t top_k : {16u, 0u}) {
        CAPTURE(top_k);
        const auto m = stored(2, 3, 12, top_k);
        const single_process alone;
        end_to_end_scales e(m.student(), m.answers, m.tokens, small_steps(12), alone);
        const std::vector<std::size_t> picked{2, 0};
        (void)e.gradient(picked);
        // Along the gradient's signs, the scales (ρ) and the mins (μ) apart: each moves by h, some fp16 steps.
        std::vector<std::vector<float>> start, gradient;
        for (std::size_t l = 0; l < e.layers(); ++l) {
            start.emplace_back(e.parameters(l).begin(), e.parameters(l).end());
            gradient.emplace_back(e.gradients(l).begin(), e.gradients(l).end());
        }
        for (const bool mins : {false, true}) {
            CAPTURE(mins);
            const float h = mins ? 0.05f : 0.02f;
            double predicted = 0.0;
            auto move = [&](float by) {
                for (std::size_t l = 0; l < e.layers(); ++l) {
                    std::size_t at = 0;
                    for (std::size_t i = 0; i < m.tensors.size(); ++i) {
                        const std::size_t n = e.tensor_parameters(l, i).size();
                        const bool with_min = m.tensors[i].second == ggml_type::q4_1;
                        for (std::size_t j = 0; j < n; ++j) {
                            const bool is_min = with_min && j % 2 == 1;
                            const float g = gradient[l][at + j];
                            const float step = is_min == mins && g != 0.0f ? (g > 0.0f ? by : -by) : 0.0f;
                            e.parameters(l)[at + j] = start[l][at + j] + step;
                            if (by > 0.0f && step != 0.0f) predicted += std::fabs(g) * h;
                        }
                        at += n;
                    }
                }
            };
            move(h);
            const double up = e.gradient(picked);
            move(-h);
            const double down = e.gradient(picked);
            const double measured = (up - down) / 2.0;
            MESSAGE("mins ", mins, ": predicted ", predicted, ", measured ", measured);
            CHECK(predicted > 0.0);
            CHECK(measured == doctest::Approx(predicted).epsilon(0.02));
        }
        // Moved away from 1 and 0, the forward is still what the exported blocks decode to.
        const auto student = m.student();
        for (std::size_t l = 0; l < e.layers(); ++l) {
            const auto& decoded = e.decode(l);
            const auto tensors = student.layer(l);
            for (std::size_t i = 0; i < tensors.size(); ++i) {
                std::vector<std::byte> bytes(tensors[i].bytes.size());
                e.exported(l, i, tensors[i], bytes);
                CHECK(dequantize(tensors[i].type, bytes) == decoded.values(tensors[i].parameter, 0));
            }
        }
        CHECK_THROWS_AS((void)e.gradient(std::vector<std::size_t>{0}), invalid_argument_error);
        CHECK_THROWS_AS((void)e.gradient(std::vector<std::size_t>{0, 3}), invalid_argument_error);
    }
}

TEST_CASE("end-to-end scales: a layer holds a step's stream and its scales' state; nothing else grows with the depth") {
    std::vector<end_to_end_memory> held;
    std::size_t layer_weights = 0, per_layer_parameters = 0;
    for (std::uint32_t depth : {2u, 4u}) {
        const auto m = stored(depth, 2, 12, 16);
        const single_process alone;
        end_to_end_scales e(m.student(), m.answers, m.tokens, small_steps(12), alone);
        (void)e.gradient(std::vector<std::size_t>{0, 1});
        (void)e.update(1e-3f);
        held.push_back(e.memory());
        per_layer_parameters = e.parameters(0).size();
        layer_weights = 0;
        for (const auto& t : m.student().layer(0)) layer_weights += t.elements();
    }
    CHECK(held[0].per_layer == held[1].per_layer);
    CHECK(held[0].once == held[1].once);
    CHECK(held[1].total - held[0].total == 2 * held[0].per_layer);
    // A step's stream (2 sequences of 12 positions of 64) and the learned values, their gradients and two moments.
    CHECK(held[0].per_layer == (2 * 12 * 64 + 4 * per_layer_parameters) * sizeof(float));
    CHECK(4 * held[0].per_layer < layer_weights * sizeof(float));
}

TEST_CASE("block-wise QAT's end-to-end phase lowers the held-out KL, moving the block scales alone") {
    scratch_dir dir;
    const auto in = gguf::reader::open(layered_model(dir));
    auto c = layered_config();
    c.steps_per_layer = 6;
    c.samples = 16;  // with 8, 24 steps are 12 passes over them: the held-out KL gains less
    const auto plain = blockwise_quantization_aware_training(in, dir.path / "plain.gguf", c);
    c.end_to_end_steps = 24;
    phase_record record;
    const auto tuned = blockwise_quantization_aware_training(in, dir.path / "tuned.gguf", c, record.callback());
    REQUIRE(tuned.completed);
    CHECK(record.phases == std::vector<std::string>{"data", "generate", "data", "round", "layer", "round", "layer", "output", "teacher",
                                                    "end-to-end", "export"});
    MESSAGE("held-out KL: block-wise ", plain.after.kl, ", end-to-end ", tuned.after.kl, "; step loss ", tuned.end_to_end.first_loss,
            " -> ", tuned.end_to_end.last_loss);
    CHECK(tuned.after.kl < 0.95 * plain.after.kl);
    CHECK(tuned.end_to_end.steps == 24);
    CHECK(tuned.end_to_end.parameters == 2 * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 96) / 32);
    CHECK(tuned.layers[1].error_after == plain.layers[1].error_after);
    // The levels are the block-wise phase's: a q4_0 block differs in its fp16 scale alone.
    const auto a = gguf::reader::open(dir.path / "plain.gguf"), b = gguf::reader::open(dir.path / "tuned.gguf");
    const auto x = a.tensor_data(*a.find_tensor("blk.1.ffn_down.weight")), y = b.tensor_data(*b.find_tensor("blk.1.ffn_down.weight"));
    REQUIRE(x.size() == y.size());
    std::size_t scales_moved = 0;
    for (std::size_t block = 0; block < x.size(); block += 18) {
        CHECK(std::equal(x.begin() + block + 2, x.begin() + block + 18, y.begin() + block + 2));
        if (!std::equal(x.begin() + block, x.begin() + block + 2, y.begin() + block)) ++scales_moved;
    }
    CHECK(scales_moved > 0);
}

TEST_CASE("block-wise QAT's end-to-end phase: the same bytes on 1 and 2 threads and 2 processes; a run stopped in it starts it again") {
    scratch_dir dir;
    const auto in = gguf::reader::open(layered_model(dir));
    auto c = layered_config();
    c.steps_per_layer = 2;
    c.end_to_end_steps = 3;
    const auto whole = blockwise_quantization_aware_training(in, dir.path / "whole.gguf", c);
    REQUIRE(whole.completed);
    const auto expected = file_bytes(dir.path / "whole.gguf");

    SUBCASE("one thread") {
        c.threads = 1;
        (void)blockwise_quantization_aware_training(in, dir.path / "one.gguf", c);
        CHECK(file_bytes(dir.path / "one.gguf") == expected);
    }
    SUBCASE("two processes, the layers in memory and in checkpoint files") {
        for (const bool files : {false, true}) {
            CAPTURE(files);
            c.checkpoint = files ? dir.path / "ranks.ckpt" : fs::path{};
            thread_processes group(2);
            const auto reports = run_on_ranks(group, in, dir.path / "ranks.gguf", c);
            CHECK(reports[0].end_to_end.last_loss == reports[1].end_to_end.last_loss);
            CHECK(file_bytes(dir.path / "ranks.gguf") == expected);
        }
    }
    SUBCASE("stopped after its first step, then run again") {
        c.checkpoint = dir.path / "ckpt";
        const auto stopped = blockwise_quantization_aware_training(
                in, dir.path / "resumed.gguf", c, [](const blockwise_progress& p) { return p.phase != "end-to-end" || p.done < 1; });
        CHECK_FALSE(stopped.completed);
        CHECK(stopped.end_to_end.steps == 1);
        CHECK_FALSE(fs::exists(dir.path / "resumed.gguf"));
        const auto resumed = blockwise_quantization_aware_training(in, dir.path / "resumed.gguf", c);
        CHECK(resumed.completed);
        CHECK(resumed.resumed_from_layer == 2);
        CHECK(resumed.end_to_end.steps == 3);
        CHECK(file_bytes(dir.path / "resumed.gguf") == expected);
    }
}
