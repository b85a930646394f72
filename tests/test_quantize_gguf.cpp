// The quantize pipeline end to end on generated models: the file holds the planned types, bytes equal to
// the reference quantizer's, llama.cpp's bookkeeping keys, and a report whose totals add up.

#include <doctest/doctest.h>

#include <cogqat/cogqat.hpp>
#include <cogqat/io/gguf.hpp>
#include <cogqat/io/llama_gguf.hpp>
#include <cogqat/model/synthetic.hpp>
#include <cogqat/quant/gguf_quantize.hpp>

#include <unistd.h>
#include <filesystem>
#include <limits>
#include <string>

#include "scratch_dir.hpp"

using namespace cogqat;
namespace fs = std::filesystem;

using test::scratch_dir;

namespace {

quantize_options options_for(std::string_view preset, std::vector<std::string> rules = {}, unsigned threads = 2) {
    quantize_options o;
    o.policy.preset = find_preset(preset);
    for (const auto& r : rules) o.policy.overrides.push_back(parse_override(r));
    o.threads = threads;
    return o;
}

}  // namespace

TEST_CASE("quantize_gguf writes the planned types with the reference bytes and reports them") {
    scratch_dir dir;
    const auto model = make_synthetic_llama(5);
    io::write_llama_gguf(model, dir.path / "f32.gguf");
    const auto source = gguf::reader::open(dir.path / "f32.gguf");

    std::vector<std::string> seen;
    auto options = options_for("default");
    options.on_progress = [&](const quantize_progress& p) {
        if (p.done) seen.push_back(p.tensor.name);
    };
    const auto report = quantize_gguf(source, dir.path / "q.gguf", options);
    const auto out = gguf::reader::open(dir.path / "q.gguf");

    REQUIRE(out.tensors().size() == model.tensors.size());
    CHECK(seen.size() == model.tensors.size());
    CHECK(out.find("general.quantization_version")->as<std::uint32_t>() == 2);
    CHECK(out.find("general.file_type")->as<std::uint32_t>() == static_cast<std::uint32_t>(llama_file_type::mostly_q6_K));
    CHECK(out.find("general.architecture")->as_string() == "llama");
    CHECK(out.find("tokenizer.ggml.tokens")->array_size() == model.config.vocab_size);

    std::uint64_t bytes = 0, elements = 0;
    for (std::size_t i = 0; i < model.tensors.size(); ++i) {
        const auto& t = out.tensors()[i];
        const auto& r = report.tensors[i];
        CAPTURE(t.name);
        CHECK(t.name == model.tensors[i].name);
        CHECK(t.type == r.plan.type);
        const auto expected = quantize(t.type, model.tensors[i].values);
        const auto written = out.tensor_data(t);
        CHECK(std::equal(written.begin(), written.end(), expected.begin(), expected.end()));
        CHECK(r.bytes == expected.size());
        CHECK(r.error.rmse == doctest::Approx(measure_error(model.tensors[i].values, dequantize(t.type, expected)).rmse));
        bytes += r.bytes;
        elements += r.elements;
    }
    CHECK(out.find_tensor("token_embd.weight")->type == ggml_type::q8_0);
    CHECK(out.find_tensor("blk.1.attn_k.weight")->type == ggml_type::q4_K);
    CHECK(out.find_tensor("blk.1.ffn_down.weight")->type == ggml_type::q6_K);
    CHECK(out.find_tensor("blk.1.ffn_norm.weight")->type == ggml_type::f32);
    CHECK(report.tensor_bytes == bytes);
    CHECK(report.elements == elements);
    CHECK(report.file_bytes == fs::file_size(dir.path / "q.gguf"));
    CHECK(report.bits_per_weight == doctest::Approx(8.0 * static_cast<double>(bytes) / static_cast<double>(elements)));
    CHECK(report.reduction_vs_f16 == doctest::Approx(1.0 - static_cast<double>(bytes) / (2.0 * static_cast<double>(elements))));
    CHECK(report.reduction_vs_f32 > 0.75);
}

TEST_CASE("the result does not depend on the thread count") {
    scratch_dir dir;
    io::write_llama_gguf(make_synthetic_llama(6), dir.path / "f32.gguf");
    const auto source = gguf::reader::open(dir.path / "f32.gguf");
    (void)quantize_gguf(source, dir.path / "one.gguf", options_for("q4_k_m", {}, 1));
    (void)quantize_gguf(source, dir.path / "four.gguf", options_for("q4_k_m", {}, 4));
    CHECK(io::read_file(dir.path / "one.gguf") == io::read_file(dir.path / "four.gguf"));
}

TEST_CASE("rows that fit no block fall back, overrides apply, and requantizing a quantized file works") {
    scratch_dir dir;
    // stories260K's shape: rows of 64 and 172.
    io::write_llama_gguf(make_synthetic_llama(7, {64, 172, 2, 8, 4, 259, 128}), dir.path / "f32.gguf");
    const auto source = gguf::reader::open(dir.path / "f32.gguf");
    const auto report = quantize_gguf(source, dir.path / "q.gguf", options_for("default", {"blk\\.1\\.attn_v=q8_0"}));
    const auto out = gguf::reader::open(dir.path / "q.gguf");
    CHECK(out.find_tensor("blk.0.attn_q.weight")->type == ggml_type::q5_0);   // q4_K refused (64)
    CHECK(out.find_tensor("blk.0.ffn_up.weight")->type == ggml_type::q8_0);   // q6_K refused (64)
    CHECK(out.find_tensor("blk.0.ffn_down.weight")->type == ggml_type::f16);  // q6_K and q8_0 refused (172)
    CHECK(out.find_tensor("blk.1.attn_v.weight")->type == ggml_type::q8_0);   // the override
    for (const auto& t : report.tensors) {
        if (t.name == "blk.0.ffn_down.weight") CHECK(t.plan.refused == std::vector{ggml_type::q6_K, ggml_type::q8_0});
        if (t.name == "blk.1.attn_v.weight") CHECK(t.plan.rule == "override 'blk\\.1\\.attn_v'");
    }
    // A quantized file can be the input: its tensors are dequantized, then quantized again.
    const auto again = quantize_gguf(out, dir.path / "q8.gguf", options_for("q8_0"));
    CHECK(gguf::reader::open(dir.path / "q8.gguf").find_tensor("blk.0.attn_q.weight")->type == ggml_type::q8_0);
    CHECK(again.tensors.size() == report.tensors.size());
}

TEST_CASE("a weight that is NaN aborts with its tensor and position, and leaves no output") {
    scratch_dir dir;
    auto model = make_synthetic_llama(8);
    model.tensors[3].values[300] = std::numeric_limits<float>::quiet_NaN();
    {
        // Our converters refuse NaN, so the broken file is written tensor by tensor, as raw bytes.
        gguf::writer w(dir.path / "f32-nan.gguf");
        io::set_llama_metadata(w, model);
        for (const auto& t : model.tensors) {
            std::vector<std::byte> raw(t.values.size() * 4);
            for (std::size_t i = 0; i < t.values.size(); ++i) store_le<float>(raw.data() + 4 * i, t.values[i]);
            w.add_tensor(t.name, t.shape, ggml_type::f32, std::span<const std::byte>(raw));
        }
        w.finish();
    }
    const auto source = gguf::reader::open(dir.path / "f32-nan.gguf");
    try {
        (void)quantize_gguf(source, dir.path / "q.gguf", options_for("default"));
        FAIL("no exception");
    } catch (const value_error& e) {
        CHECK(std::string(e.what()).find("tensor '" + model.tensors[3].name + "': element 300 (row 1)") != std::string::npos);
        CHECK(e.index() == 300);
    }
    CHECK_FALSE(fs::exists(dir.path / "q.gguf"));
    CHECK(io::no_partial_output_of(dir.path / "q.gguf"));
}

TEST_CASE("a tensor's quantization error is the same on any thread count, and the error of the whole tensor") {
    // 300 rows of 256: pieces of 256 rows and one of 44, over 1, 2 and 3 threads.
    std::vector<float> values(300 * 256);
    xoshiro256 random(4);
    for (auto& v : values) v = static_cast<float>(random.uniform() - 0.5);
    const auto bytes = quantize(ggml_type::q4_K, values);
    const auto one = detail::quantization_error(ggml_type::q4_K, values, 256, bytes, 1);
    const auto whole = measure_error(values, dequantize(ggml_type::q4_K, bytes));
    CHECK(one.rmse == doctest::Approx(whole.rmse).epsilon(1e-12));
    CHECK(one.relative_rmse == doctest::Approx(whole.relative_rmse).epsilon(1e-12));
    CHECK(one.max_abs_error == whole.max_abs_error);
    for (unsigned threads : {2u, 3u}) {
        const auto more = detail::quantization_error(ggml_type::q4_K, values, 256, bytes, threads);
        CHECK(more.rmse == one.rmse);
        CHECK(more.relative_rmse == one.relative_rmse);
        CHECK(more.max_abs_error == one.max_abs_error);
    }
}
