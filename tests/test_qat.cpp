// The QAT pipeline end to end on a small generated model: training lowers the KL of the initial rounding,
// the file holds the planned types (for llama, Llama 3 RoPE scaling, qwen2 and qwen3), a stopped run resumes
// from its checkpoint to the very same bytes, and settings that cannot run are refused.

#include <doctest/doctest.h>

#include <unistd.h>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cogqat/io/gguf.hpp"
#include "cogqat/io/llama_gguf.hpp"
#include "cogqat/io/read_llama.hpp"
#include "cogqat/model/synthetic.hpp"
#include "cogqat/qat/qat_pipeline.hpp"
#include "scratch_dir.hpp"

using namespace cogqat;
namespace fs = std::filesystem;

using test::scratch_dir;

namespace {

std::string read_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// A small model (dim 64, FFN 80 so padding is exercised, 2 layers, GQA 4/2 heads, 259 tokens).
fs::path small_model(const scratch_dir& dir) {
    const auto path = dir.path / "teacher.gguf";
    io::write_llama_gguf(make_synthetic_llama(3, {64, 80, 2, 4, 2, 259, 64}), path);
    return path;
}

qat_config small_config() {
    qat_config c;
    c.steps = 8;
    c.steps_per_unit = 2;
    c.batch = 4;
    c.sequence_length = 24;
    c.samples = 8;
    c.validation_samples = 4;
    c.threads = 2;
    c.checkpoint_every = 3;
    return c;
}

}  // namespace

TEST_CASE("QAT lowers the KL of the initial rounding and writes the planned types") {
    scratch_dir dir;
    const auto in = gguf::reader::open(small_model(dir));
    auto c = small_config();
    c.init = qat_init::reference;
    c.steps = 40;
    // A random model's next-token distribution is nearly flat, so the cross-entropy on 8 sampled sequences
    // is mostly noise to memorize; the pure KL term is the signal this test looks for.
    c.kl_weight = 1.0f;
    std::vector<std::string> phases;
    const auto report = quantization_aware_training(in, dir.path / "student.gguf", c, [&](const qat_progress& p) {
        if (phases.empty() || phases.back() != p.phase) phases.emplace_back(p.phase);
        return true;
    });
    REQUIRE(report.completed);
    CHECK(report.steps_total == 40 + 2 * 4);  // four units (token_embd, output, blk.0, blk.1), two steps each
    CHECK(report.curve.size() == report.steps_total);
    CHECK(report.order.size() == 4);
    CHECK(phases == std::vector<std::string>{"data", "generate", "data", "sensitivity", "progressive", "fine-tune", "export"});
    MESSAGE("KL before ", report.before.kl, ", after ", report.after.kl);
    CHECK(report.before.kl > 0.0);
    CHECK(report.after.kl < 0.8 * report.before.kl);
    CHECK(report.feed_forward_to == 96);

    const auto out = gguf::reader::open(dir.path / "student.gguf");
    for (const auto& t : out.tensors()) {
        CAPTURE(t.name);
        CHECK(t.type == (t.shape.size() >= 2 ? ggml_type::q4_0 : ggml_type::f32));
    }
    CHECK(report.file_bytes == fs::file_size(dir.path / "student.gguf"));
    const auto student = io::read_llama_model(out);
    CHECK(student.config.hidden_dim == 96);
}

TEST_CASE("QAT trains qwen2's biases and qwen3's head norms in float and keeps Llama 3's rope_freqs as they are") {
    scratch_dir dir;
    for (auto a : {model_architecture::qwen2, model_architecture::qwen3, model_architecture::llama}) {
        CAPTURE(architecture_name(a));
        llama_config shape{64, 80, 2, 4, 2, 259, 64};
        shape.architecture = a;
        if (a == model_architecture::qwen3) shape.head_dim = 32;  // Q 128 wide for a model of 64
        if (a == model_architecture::llama) shape.rope_factors = true, shape.rope_freq_scale = 0.5f;
        auto w = make_synthetic_llama(3, shape);
        for (auto& t : w.tensors)
            if (t.name == "rope_freqs.weight")
                for (std::size_t i = 0; i < t.values.size(); ++i) t.values[i] = 1.0f + 0.25f * static_cast<float>(i);
        const auto path = dir.path / (std::string(architecture_name(a)) + ".gguf");
        io::write_llama_gguf(w, path);
        const auto in = gguf::reader::open(path);
        // Smaller still, and ggml's rounding instead of GPTQ: three models, which the sanitized pass runs at -O0
        // (about 10 s there, 26 s with GPTQ).
        auto c = small_config();
        c.init = qat_init::reference;
        c.samples = 4;
        c.batch = 2;
        c.sequence_length = 16;
        c.steps = 3;
        c.steps_per_unit = 0;
        c.checkpoint_every = 50;
        c.optimizer.warmup_steps = 0;
        c.optimizer.weight_decay = 0.1f;  // would shrink rope_freqs if it were trained
        const auto out_path = dir.path / (std::string(architecture_name(a)) + "-student.gguf");
        const auto report = quantization_aware_training(in, out_path, c);
        REQUIRE(report.completed);
        MESSAGE("KL before ", report.before.kl, ", after ", report.after.kl);
        CHECK(report.after.kl < report.before.kl);

        const auto out = gguf::reader::open(out_path);
        for (const auto& t : out.tensors()) {
            CAPTURE(t.name);
            CHECK(t.type == (t.shape.size() >= 2 ? ggml_type::q4_0 : ggml_type::f32));
        }
        const auto teacher = io::read_llama_model(in), student = io::read_llama_model(out);
        CHECK(student.config.architecture == a);
        CHECK(student.config.head_size() == teacher.config.head_size());
        CHECK(student.rope_freqs == teacher.rope_freqs);
        // The vectors the architecture adds were trained: they moved from the teacher's.
        if (a == model_architecture::qwen2) CHECK(student.layers[1].bq != teacher.layers[1].bq);
        if (a == model_architecture::qwen3) CHECK(student.layers[1].k_norm != teacher.layers[1].k_norm);
    }
}

TEST_CASE("a stopped QAT run resumes from its checkpoint to the same bytes") {
    scratch_dir dir;
    const auto in = gguf::reader::open(small_model(dir));
    auto c = small_config();
    const auto whole_seed = c.seed;
    const auto whole = quantization_aware_training(in, dir.path / "whole.gguf", c);
    REQUIRE(whole.completed);

    c.checkpoint = dir.path / "run.ckpt";
    std::size_t seen = 0;
    const auto first = quantization_aware_training(in, dir.path / "split.gguf", c, [&](const qat_progress& p) {
        if (p.phase == "progressive" || p.phase == "fine-tune") ++seen;
        return seen < 7;  // stop inside the fine-tuning, between two checkpoints
    });
    CHECK_FALSE(first.completed);
    CHECK(first.steps_done == 7);
    CHECK(fs::exists(c.checkpoint));
    CHECK_FALSE(fs::exists(dir.path / "split.gguf"));

    c.keep_checkpoint = true;
    const auto second = quantization_aware_training(in, dir.path / "split.gguf", c);
    REQUIRE(second.completed);
    CHECK(fs::exists(c.checkpoint));  // kept, as asked
    CHECK(second.resumed_from == 7);
    CHECK(second.curve.size() == whole.steps_total - 7);
    CHECK(second.curve.back().loss == whole.curve.back().loss);
    CHECK(read_bytes(dir.path / "split.gguf") == read_bytes(dir.path / "whole.gguf"));

    // Another run's checkpoint is refused rather than silently mixed in.
    c.seed = 2;
    CHECK_THROWS_WITH_AS(static_cast<void>(quantization_aware_training(in, dir.path / "other.gguf", c)), doctest::Contains("another run"),
                         invalid_argument_error);

    // By default a completed run leaves no checkpoint behind (here: resumed at its last step, then removed).
    c.seed = whole_seed;
    c.keep_checkpoint = false;
    const auto third = quantization_aware_training(in, dir.path / "split.gguf", c);
    CHECK(third.completed);
    CHECK(third.checkpoint_note.empty());
    CHECK_FALSE(fs::exists(c.checkpoint));
}

TEST_CASE("QAT refuses settings that cannot run") {
    scratch_dir dir;
    const auto in = gguf::reader::open(small_model(dir));
    auto refuse = [&](auto change, const char* what) {
        auto c = small_config();
        change(c);
        CHECK_THROWS_WITH_AS(qat_pipeline(in, c), doctest::Contains(what), invalid_argument_error);
    };
    refuse([](qat_config& c) { c.batch = 0; }, "batch");
    refuse([](qat_config& c) { c.kl_weight = 1.5f; }, "kl_weight");
    refuse([](qat_config& c) { c.temperature = 0.0f; }, "temperature");
    refuse([](qat_config& c) { c.sequence_length = 1; }, "2 positions");
    refuse([](qat_config& c) { c.optimizer.learning_rate = -1.0f; }, "learning rates");
    refuse([](qat_config& c) { c.checkpoint = "x.ckpt", c.checkpoint_every = 0; }, "checkpoint interval");
    // Against the model (context 64) and the machine, before any work.
    refuse([](qat_config& c) { c.sequence_length = 65; }, "sequences of 65 positions exceed the model's context of 64");
    refuse([](qat_config& c) { c.steps_per_unit = std::size_t{1} << 62; }, "overflow a step count");
    refuse([](qat_config& c) { c.steps = ~std::size_t{0}; }, "overflow a step count");
    refuse([](qat_config& c) { c.samples = std::size_t{1} << 40; }, "the teacher's log-probabilities on 1099511627776 + 4 sequences");
}
