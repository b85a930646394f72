// qwen2, qwen3 and Llama 3 (rope_freqs, linear scaling, explicit head size) in the runtime: the schema rows
// each architecture selects, the GGUF keys and tensors written and read back, the forward against the
// definition in double (tests/exact_forward.hpp), Hugging Face fixtures converted and run with their BPE
// tokenizer, each bad input refused, and the later stages that cannot handle them yet refusing by name.
#include <doctest/doctest.h>

#include <cogqat/core/error.hpp>
#include <cogqat/gguf/reader.hpp>
#include <cogqat/gguf/writer.hpp>
#include <cogqat/io/hf_import.hpp>
#include <cogqat/io/llama_gguf.hpp>
#include <cogqat/io/read_llama.hpp>
#include <cogqat/model/llama_backward.hpp>
#include <cogqat/model/llama_model.hpp>
#include <cogqat/model/llama_schema.hpp>
#include <cogqat/model/rotate.hpp>
#include <cogqat/model/smooth.hpp>
#include <cogqat/model/synthetic.hpp>
#include <cogqat/model/tokenizer.hpp>
#include <cogqat/qat/auto_quantize.hpp>
#include <cogqat/qat/qat_pipeline.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "exact_forward.hpp"
#include "hf_fixture.hpp"
#include "scratch_dir.hpp"

using namespace cogqat;

// A named namespace: the unity build puts every test source of cogqat_tests into one unit, where anonymous
// namespaces merge.
namespace architectures_test {

llama_config config_of(model_architecture a) {
    llama_config c{64, 96, 2, 4, 2, 260, 16};
    c.architecture = a;
    if (a == model_architecture::qwen3) {
        c.dim = 48;  // heads of 16 make Q 64 wide: head_dim is not dim / heads
        c.head_dim = 16;
    }
    if (a == model_architecture::llama) {
        c.rope_factors = true;
        c.rope_freq_scale = 0.25f;
    }
    return c;
}

/// A synthetic model of `a` with every vector (norms, biases, Q/K norms) random, RoPE factors from 1 to 8.
llama_weights model_of(model_architecture a, bool tied) {
    auto w = test::with_random_norms(make_synthetic_llama(5, config_of(a)), 6, tied);
    for (auto& t : w.tensors)
        if (t.name == "rope_freqs.weight")
            for (std::size_t i = 0; i < t.values.size(); ++i) t.values[i] = 1.0f + static_cast<float>(i);
    return w;
}

std::vector<std::string> names_of(const llama_config& c, bool tied) {
    std::vector<std::string> names;
    for_each_llama_tensor(c, tied, [&](const tensor_schema& t, std::size_t layer) { names.push_back(t.gguf_name(layer)); });
    return names;
}

/// Writes `w` as write_llama_gguf does (f32), with `edit` applied to the metadata and `keep` choosing tensors.
void write_edited(const llama_weights& w, const std::filesystem::path& path, const std::function<void(gguf::writer&)>& edit,
                  const std::function<bool(const float_tensor&)>& keep = {}) {
    gguf::writer out(path);
    io::set_llama_metadata(out, w);
    edit(out);
    for (const auto& t : w.tensors)
        if (!keep || keep(t))
            out.add_tensor(t.name, t.shape, ggml_type::f32,
                           [&t](std::span<std::byte> bytes) { quantize(ggml_type::f32, t.values, bytes); });
    out.finish();
}

std::vector<double> runtime_logits(const llama_model& model, const std::vector<std::int32_t>& tokens) {
    llama_session session(model, tokens.size(), activation_mode::float32);
    const auto logits = session.forward_batch(tokens, 0, true);
    return {logits.begin(), logits.end()};
}

/// A qwen2 model with zero biases, and its llama twin: the same weights without the biases, so that the two
/// differ in their RoPE pairing alone (halves against adjacent pairs).
std::pair<llama_weights, llama_weights> qwen2_and_llama_twin() {
    auto halves = model_of(model_architecture::qwen2, false);
    for (auto& t : halves.tensors)
        if (t.name.ends_with(".bias")) std::fill(t.values.begin(), t.values.end(), 0.0f);
    auto adjacent = halves;
    adjacent.config.architecture = model_architecture::llama;
    std::erase_if(adjacent.tensors, [](const float_tensor& t) { return t.name.ends_with(".bias"); });
    return {std::move(halves), std::move(adjacent)};
}

}  // namespace architectures_test

using namespace architectures_test;

TEST_CASE("architectures: each selects its rows of the one table") {
    const auto qwen2 = config_of(model_architecture::qwen2);
    const std::vector<std::string> qwen2_layer{"blk.0.attn_q.weight",      "blk.0.attn_k.weight",    "blk.0.attn_v.weight",
                                               "blk.0.attn_output.weight", "blk.0.attn_norm.weight", "blk.0.ffn_gate.weight",
                                               "blk.0.ffn_down.weight",    "blk.0.ffn_up.weight",    "blk.0.ffn_norm.weight",
                                               "blk.0.attn_q.bias",        "blk.0.attn_k.bias",      "blk.0.attn_v.bias"};
    auto names = names_of(qwen2, true);
    CHECK(names.size() == 2 + 2 * 12);
    CHECK(std::vector<std::string>(names.begin() + 2, names.begin() + 14) == qwen2_layer);

    const auto qwen3 = config_of(model_architecture::qwen3);
    names = names_of(qwen3, false);
    CHECK(names.size() == 3 + 2 * 11);
    CHECK(std::find(names.begin(), names.end(), "blk.1.attn_k_norm.weight") != names.end());
    CHECK(std::find(names.begin(), names.end(), "blk.1.attn_k.bias") == names.end());
    using v = std::vector<std::uint64_t>;
    CHECK(llama_tensor(llama_parameter::wq).gguf_shape(qwen3) == v{48, 64});
    CHECK(llama_tensor(llama_parameter::wk).gguf_shape(qwen3) == v{48, 32});
    CHECK(llama_tensor(llama_parameter::wo).gguf_shape(qwen3) == v{64, 48});
    CHECK(llama_tensor(llama_parameter::q_norm).gguf_shape(qwen3) == v{16});
    CHECK(llama_tensor(llama_parameter::bk).gguf_shape(qwen2) == v{32});

    auto llama = config_of(model_architecture::llama);
    CHECK(names_of(llama, false).front() == "rope_freqs.weight");
    CHECK(llama_tensor(llama_parameter::rope_freqs).gguf_shape(llama) == v{8});
    llama.rope_factors = false;
    CHECK(names_of(llama, false).front() == "token_embd.weight");
    CHECK(names_of(llama, false).size() == 3 + 2 * 9);

    CHECK(parse_model_architecture("qwen3") == model_architecture::qwen3);
    CHECK_FALSE(parse_model_architecture("gpt2"));
    CHECK(architecture_name(model_architecture::qwen2) == "qwen2");
}

TEST_CASE("architectures: the GGUF keys and tensors round-trip, and the forward equals the definition") {
    test::scratch_dir dir;
    const std::vector<std::int32_t> tokens{1, 40, 7, 200, 33, 5, 259, 90, 12, 3, 64, 17};
    for (auto a : {model_architecture::llama, model_architecture::qwen2, model_architecture::qwen3}) {
        const bool tied = a == model_architecture::qwen2;
        const auto w = model_of(a, tied);
        const std::string name(architecture_name(a));
        CAPTURE(name);
        const auto path = dir.path / (name + ".gguf");
        io::write_llama_gguf(w, path);
        const auto file = gguf::reader::open(path);
        REQUIRE(file.find("general.architecture"));
        CHECK(file.find("general.architecture")->as_string() == name);
        CHECK(file.find(name + ".block_count") != nullptr);
        CHECK((file.find(name + ".attention.key_length") != nullptr) == (a == model_architecture::qwen3));
        CHECK((file.find(name + ".rope.scaling.type") != nullptr) == (a == model_architecture::llama));

        const auto model = io::read_llama_model(file);
        const auto& c = model.config;
        CHECK(c.architecture == a);
        CHECK(c.head_size() == w.config.head_size());
        CHECK(c.q_dim() == w.config.q_dim());
        CHECK(c.rope_factors == w.config.rope_factors);
        CHECK(c.rope_freq_scale == w.config.rope_freq_scale);
        CHECK(model.tied_output == tied);
        const auto read_back = io::read_llama_weights(file);
        REQUIRE(read_back.tensors.size() == w.tensors.size());
        for (std::size_t i = 0; i < w.tensors.size(); ++i) {
            CHECK(read_back.tensors[i].name == w.tensors[i].name);
            CHECK(read_back.tensors[i].values == w.tensors[i].values);
        }

        // Biases, Q/K norms, NEOX or adjacent pairs, RoPE factors and scaling, wide heads: float products
        // round each sum once per element, so the float forward stays within a few thousand ulps of the
        // exact one at these sizes.
        const auto exact = test::exact_logits(test::to_double(w), tokens);
        const auto from_file = runtime_logits(model, tokens);
        CHECK(test::max_difference(from_file, exact) < 1e-4 * test::max_magnitude(exact));
        CHECK(runtime_logits(llama_model::from_weights(w), tokens) == from_file);
    }
}

TEST_CASE("architectures: each architecture's distinctive part changes the logits (none is ignored)") {
    const std::vector<std::int32_t> tokens{1, 40, 7, 200, 33};
    auto logits_of = [&](const llama_weights& w) { return runtime_logits(llama_model::from_weights(w), tokens); };
    for (auto a : {model_architecture::llama, model_architecture::qwen2, model_architecture::qwen3}) {
        const auto w = model_of(a, false);
        const auto base = logits_of(w);
        for (const char* distinctive : {"rope_freqs.weight", "blk.1.attn_k.bias", "blk.1.attn_q_norm.weight"}) {
            auto changed = w;
            bool found = false;
            for (auto& t : changed.tensors)
                if (t.name == distinctive) {
                    found = true;
                    for (auto& value : t.values) value *= 1.5f;
                }
            if (!found) continue;
            CAPTURE(distinctive);
            CHECK(logits_of(changed) != base);
        }
    }
    // The pairing: one model's weights run with adjacent pairs (llama) and with halves (qwen2, zero biases) give
    // the same logits at position 0, where nothing turns, and other logits after it.
    const auto [halves_weights, adjacent_weights] = qwen2_and_llama_twin();
    const auto halves = logits_of(halves_weights), adjacent = logits_of(adjacent_weights);
    const auto vocab = static_cast<std::ptrdiff_t>(halves_weights.config.vocab_size);
    CHECK(std::equal(halves.begin(), halves.begin() + vocab, adjacent.begin()));
    CHECK_FALSE(std::equal(halves.begin() + vocab, halves.end(), adjacent.begin() + vocab));
}

TEST_CASE("architectures: halves (NEOX) on Q/K rows equal adjacent pairs on the rows the llama converter interleaves") {
    // What ties the two RoPE conventions together: llama.cpp's llama converter moves Hugging Face's row
    // (head, half j, i) to (head, 2i + j) so that adjacent pairs rotate what the halves did. The same
    // permutation of a qwen2 model's Q and K rows (its biases zero) must give the same logits with llama's
    // pairing, up to the order of the q.k sums.
    auto [halves, adjacent] = qwen2_and_llama_twin();
    const auto& c = halves.config;
    for (auto& t : adjacent.tensors) {
        const bool q = t.name.ends_with("attn_q.weight"), k = t.name.ends_with("attn_k.weight");
        if (!q && !k) continue;
        const std::size_t rows = static_cast<std::size_t>(t.shape[1]), cols = static_cast<std::size_t>(t.shape[0]);
        const std::size_t heads = q ? c.n_heads : c.n_kv_heads;
        std::vector<float> permuted(t.values.size());
        for (std::size_t r = 0; r < rows; ++r)
            std::copy_n(t.values.begin() + static_cast<std::ptrdiff_t>(r * cols), cols,
                        permuted.begin() + static_cast<std::ptrdiff_t>(gguf_row_of(r, rows, heads) * cols));
        t.values = std::move(permuted);
    }
    const std::vector<std::int32_t> tokens{1, 40, 7, 200, 33, 5, 259, 90};
    const auto a = runtime_logits(llama_model::from_weights(halves), tokens);
    const auto b = runtime_logits(llama_model::from_weights(adjacent), tokens);
    CHECK(test::max_difference(a, b) < 1e-5 * test::max_magnitude(a));
}

TEST_CASE("architectures: the exact transforms run on each architecture and leave the logits unchanged in double") {
    const std::vector<std::int32_t> tokens{1, 7, 3, 39, 12, 0, 25, 8};
    for (auto a : {model_architecture::qwen2, model_architecture::qwen3, model_architecture::llama}) {
        for (const bool tied : {false, true}) {
            const std::string name(architecture_name(a));
            CAPTURE(name);
            CAPTURE(tied);
            // Random biases (qwen2: the value bias turns with its head), heads wider than dim / heads (qwen3:
            // attn_output's rows are q_dim long), rope_freqs and scaled positions (llama).
            auto exact = test::to_double(model_of(a, tied));
            const auto before = test::exact_logits(exact, tokens);
            const auto summary = rotate_model(exact, {});
            CHECK_FALSE(summary.residual.empty());
            CHECK_FALSE(summary.heads.empty());
            const auto& c = exact.config;
            std::vector<double> channels(c.dim), units(c.hidden_dim);
            for (std::size_t i = 0; i < channels.size(); ++i) channels[i] = 0.5 + static_cast<double>((i * 7) % 13) / 8.0;
            for (std::size_t i = 0; i < units.size(); ++i) units[i] = 0.5 + static_cast<double>((i * 5) % 11) / 7.0;
            smooth_norm(exact, llama_parameter::attn_norm, 0, channels);
            smooth_norm(exact, llama_parameter::ffn_norm, 1, channels);
            smooth_feed_forward(exact, 0, units);
            CHECK(test::max_difference(test::exact_logits(exact, tokens), before) < 1e-12 * test::max_magnitude(before));
        }
    }
}

TEST_CASE("architectures: converted Hugging Face fixtures run with their tokenizers") {
    test::scratch_dir dir;
    for (const std::string architecture : {"llama", "mistral", "qwen2", "qwen3", "llama-spm"}) {
        CAPTURE(architecture);
        const auto fixture = test::write_hf_fixture(dir.path / architecture, architecture);
        const auto path = dir.path / (architecture + ".gguf");
        static_cast<void>(io::convert_hf(fixture.dir, path));
        const auto file = gguf::reader::open(path);
        const auto model = io::read_llama_model(file);
        CHECK(model.config.head_size() == fixture.sizes.head_dim);
        CHECK(model.config.rope_factors == (architecture == "llama"));
        CHECK(model.tied_output == fixture.tied);
        const auto tok = io::read_tokenizer(file);
        CHECK(model.bos_id == tok.bos());  // calibration starts its text there
        CHECK(model.eos_id == tok.eos());
        const auto tokens = tok.encode("the quick brown fox", false);
        REQUIRE(tokens.size() > 1);
        const auto exact = test::exact_logits(test::to_double(io::read_llama_weights(file)), tokens);
        const auto logits = runtime_logits(model, tokens);
        CHECK(test::max_difference(logits, exact) < 1e-4 * test::max_magnitude(exact));
    }
}

TEST_CASE("architectures: bad input is refused with the key or tensor named") {
    test::scratch_dir dir;
    const auto qwen2 = model_of(model_architecture::qwen2, false), qwen3 = model_of(model_architecture::qwen3, false),
               llama = model_of(model_architecture::llama, false);
    int n = 0;
    auto refused = [&](const llama_weights& w, const std::function<void(gguf::writer&)>& edit,
                       const std::function<bool(const float_tensor&)>& keep = {}) -> std::string {
        const auto path = dir.path / ("bad" + std::to_string(n++) + ".gguf");
        write_edited(w, path, edit, keep);
        const auto file = gguf::reader::open(path);
        try {
            static_cast<void>(io::read_llama_model(file));
        } catch (const error& e) {
            return e.what();
        }
        return "accepted";
    };
    auto no_edit = [](gguf::writer&) {};
    CHECK(refused(qwen2, no_edit, [](const float_tensor& t) { return t.name != "blk.1.attn_v.bias"; }).find("blk.1.attn_v.bias") !=
          std::string::npos);
    auto short_bias = qwen2;
    for (auto& t : short_bias.tensors)
        if (t.name == "blk.0.attn_k.bias") t.values.resize(31), t.shape = {31};
    CHECK(refused(short_bias, no_edit).find("blk.0.attn_k.bias of 32 values (it has 31)") != std::string::npos);
    CHECK(refused(qwen3, no_edit, [](const float_tensor& t) { return t.name != "blk.0.attn_q_norm.weight"; }).find("attn_q_norm") !=
          std::string::npos);
    // A head size the shapes do not follow, an odd one, keys and values of different widths.
    CHECK(refused(qwen3, [](gguf::writer& o) { o.set("qwen3.attention.key_length", gguf::value(std::uint32_t{15})); }).find("key") !=
          std::string::npos);
    CHECK(refused(qwen3, [](gguf::writer& o) {
              o.set("qwen3.attention.key_length", gguf::value(std::uint32_t{14}));
              o.set("qwen3.attention.value_length", gguf::value(std::uint32_t{14}));
              o.set("qwen3.rope.dimension_count", gguf::value(std::uint32_t{14}));
          }).find("unexpected shape") != std::string::npos);
    CHECK(refused(qwen3, [](gguf::writer& o) {
              o.set("qwen3.attention.key_length", gguf::value(std::uint32_t{15}));
          }).find("different widths") != std::string::npos);
    CHECK(refused(qwen2, [](gguf::writer& o) {
              o.set("qwen2.embedding_length", gguf::value(std::uint32_t{62}));
          }).find("inconsistent attention shape") != std::string::npos);
    CHECK(refused(qwen2, [](gguf::writer& o) {
              o.set("qwen2.rope.dimension_count", gguf::value(std::uint32_t{8}));
          }).find("partial rotary") != std::string::npos);
    CHECK(refused(llama, [](gguf::writer& o) { o.set("llama.rope.scaling.type", gguf::value(std::string("yarn"))); }).find("yarn") !=
          std::string::npos);
    CHECK(refused(llama, [](gguf::writer& o) { o.set("llama.rope.scaling.factor", gguf::value(0.0f)); }).find("rope.scaling.factor") !=
          std::string::npos);
    auto zero_factor = llama;
    for (auto& t : zero_factor.tensors)
        if (t.name == "rope_freqs.weight") t.values[3] = 0.0f;
    CHECK(refused(zero_factor, no_edit).find("rope_freqs.weight: factor 3") != std::string::npos);
    CHECK(refused(qwen2, [](gguf::writer& o) { o.set("general.architecture", gguf::value(std::string("phi3"))); }).find("phi3") !=
          std::string::npos);
    // The keys are read under the file's own architecture: a qwen2 file with llama.* keys has none.
    CHECK(refused(qwen2, [](gguf::writer& o) {
              o.set("general.architecture", gguf::value(std::string("qwen3")));
          }).find("qwen3.context_length") != std::string::npos);
    CHECK(refused(qwen2, [](gguf::writer& o) {
              o.set("tokenizer.ggml.eos_token_id", gguf::value(std::uint32_t{1u << 20}));
          }).find("tokenizer.ggml.eos_token_id (or its default) is 1048576") != std::string::npos);
}

TEST_CASE("architectures: imported weights whose vectors do not fit the config are refused, not read past") {
    auto w = model_of(model_architecture::qwen2, false);
    for (auto& t : w.tensors)
        if (t.name == "blk.1.attn_q.bias") t.values.resize(63), t.shape = {63};
    CHECK_THROWS_WITH_AS(static_cast<void>(llama_model::from_weights(w)),
                         doctest::Contains("blk.1.attn_q.bias has 63 values of shape [63]"), shape_error);
    auto q3 = model_of(model_architecture::qwen3, false);
    std::erase_if(q3.tensors, [](const float_tensor& t) { return t.name == "blk.0.attn_k_norm.weight"; });
    CHECK_THROWS_WITH_AS(static_cast<void>(llama_model::from_weights(q3)), doctest::Contains("blk.0.attn_k_norm.weight"),
                         invalid_argument_error);
}

TEST_CASE("architectures: quantize --auto and qat run a qwen3 model, with and without the exact transforms") {
    test::scratch_dir dir;
    const auto fixture = test::write_hf_fixture(dir.path / "qwen3", "qwen3");
    const auto path = dir.path / "qwen3.gguf";
    static_cast<void>(io::convert_hf(fixture.dir, path));
    const auto in = gguf::reader::open(path);
    auto_quantize_options o;
    // The forward with capture hooks over a few sequences and two candidate types: enough to run every stage,
    // cheap under the sanitizers.
    o.calibration.tokens = 32;
    o.calibration.sequence_length = 16;
    o.candidates = {ggml_type::q4_0, ggml_type::q8_0};
    o.threads = 1;
    const auto report = auto_quantize(in, dir.path / "auto.gguf", o);
    CHECK(report.bits_per_weight < 8.0);
    const auto written = gguf::reader::open(dir.path / "auto.gguf");
    const auto model = io::read_llama_model(written);
    CHECK(model.config.architecture == model_architecture::qwen3);
    CHECK(model.config.head_size() == 32);
    CHECK(std::all_of(model.layers.begin(), model.layers.end(), [](const auto& l) { return l.q_norm.size() == 32; }));

    // The pipeline's set-up (data, teacher, initial rounding) on a few short sequences: the defaults (256 of 128
    // positions) took 30 s under the sanitizers; training itself runs in tests/test_qat.cpp and the CLI test.
    qat_config brief;
    brief.samples = 2;
    brief.validation_samples = 1;
    brief.sequence_length = 16;
    CHECK(qat_pipeline(in, brief).teacher().config.architecture == model_architecture::qwen3);
    // The transforms measure on a few positions with one smoothing exponent: cheap under the sanitizers.
    transform_options transforms;
    transforms.rotate = rotation_mode::hadamard;
    transforms.smooth = true;
    transforms.calibration_positions = 32;
    transforms.alphas = {0.5};
    qat_config rotated_qat = brief;
    rotated_qat.transforms = transforms;
    CHECK(qat_pipeline(in, rotated_qat).teacher().config.architecture == model_architecture::qwen3);
    auto_quantize_options rotated = o;
    rotated.transforms = transforms;
    const auto rotated_report = auto_quantize(in, dir.path / "rotated.gguf", rotated);
    CHECK_FALSE(rotated_report.transforms.rotation.residual.empty());
    const auto rotated_file = gguf::reader::open(dir.path / "rotated.gguf");
    CHECK(io::read_llama_model(rotated_file).config.architecture == model_architecture::qwen3);
}
