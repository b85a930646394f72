// The data-free importance matrix: what it sums, llama.cpp's imatrix files (GGUF and legacy .dat) written and
// read back, every malformed file refused with its file and tensor, and the quantize job handing the
// weights to the types that use them (from a file, or computed where llama.cpp would refuse without).

#include <doctest/doctest.h>

#include <cogqat/calib/importance.hpp>
#include <cogqat/io/gguf.hpp>
#include <cogqat/io/imatrix_file.hpp>
#include <cogqat/io/llama_gguf.hpp>
#include <cogqat/io/read_llama.hpp>
#include <cogqat/model/synthetic.hpp>
#include <cogqat/quant/gguf_quantize.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "iq_vector_inputs.hpp"
#include "scratch_dir.hpp"

using namespace cogqat;
namespace fs = std::filesystem;
using test::scratch_dir;

namespace {

// Small enough for the sanitizer build: two sequences of 16 positions.
calibration_options small_calibration(calibration_source source = calibration_source::self_generated) {
    calibration_options o;
    o.source = source;
    o.tokens = 32;
    o.sequence_length = 16;
    return o;
}

importance_matrix two_entries() {
    importance_matrix m;
    m.datasets = {"test"};
    m.chunk_count = 3;
    m.chunk_size = 16;
    m.entries["blk.0.attn_q.weight"] = {{1.0f, 2.0f, 0.0f, 4.5f}, {48.0f}};
    m.entries["blk.0.ffn_down.weight"] = {{3.0f, 0.5f, 6.0f, 1.0f, 2.0f, 8.0f}, {16.0f, 0.0f}};  // two matrices, one unused
    return m;
}

void write_bytes(const fs::path& p, const std::vector<char>& bytes) {
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<char> read_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST_CASE("compute_importance sums x^2 per input column of every matrix over every position") {
    const auto weights = make_synthetic_llama(3);
    const auto model = llama_model::from_weights(weights);
    const auto set = make_calibration_set(model, small_calibration());
    const auto m = compute_importance(model, set, "unit test", 2);
    const auto names = named_matrices(model);
    CHECK(m.datasets == std::vector<std::string>{"unit test"});
    CHECK(m.chunk_count == 2);
    CHECK(m.chunk_size == 16);

    // The same sums, gathered here one sequence after another.
    std::map<const weight_matrix*, std::vector<double>> expected;
    for (const auto& seq : set.sequences) {
        llama_session session(model, seq.length, activation_mode::float32, 1);
        session.observe_inputs([&](const weight_matrix& w, std::span<const float> x) {
            auto& s = expected[&w];
            s.resize(w.cols);
            for (std::size_t j = 0; j < w.cols; ++j) s[j] += static_cast<double>(x[j]) * x[j];
        });
        run_sequence(session, seq, model.config.dim, [](std::size_t, std::span<const float>) {});
    }
    REQUIRE(m.entries.size() == expected.size());
    CHECK(m.entries.size() == names.size() - (model.tied_output ? 0 : 1));  // all but the untied embedding, only looked up
    CHECK((m.find("token_embd.weight") != nullptr) == model.tied_output);
    for (const auto& named : names) {
        const auto& name = named.first;  // not a structured binding: Clang 14's CAPTURE lambda cannot capture one
        const auto& w = named.second;
        CAPTURE(name);
        if (!expected.contains(w)) continue;
        const auto* e = m.find(name);
        REQUIRE(e);
        CHECK(e->counts == std::vector<float>{32.0f});
        REQUIRE(e->sums.size() == w->cols);
        for (std::size_t j = 0; j < w->cols; ++j) CHECK(e->sums[j] == doctest::Approx(expected[w][j]).epsilon(1e-6));
    }
    // q, k and v read the same normalised input, as do gate and up.
    CHECK(m.find("blk.1.attn_q.weight")->sums == m.find("blk.1.attn_v.weight")->sums);
    CHECK(m.find("blk.1.ffn_gate.weight")->sums == m.find("blk.1.ffn_up.weight")->sums);
    // Bits that do not depend on the thread count.
    CHECK(compute_importance(model, set, "unit test", 1).find("blk.0.ffn_down.weight")->sums == m.find("blk.0.ffn_down.weight")->sums);
    // Every source gives an importance matrix for every matrix.
    for (auto source : {calibration_source::random_tokens, calibration_source::hidden_states}) {
        const auto other = compute_importance(model, small_calibration(source), 2);
        CHECK(other.entries.size() == m.entries.size());
        CHECK(other.datasets.front().find(std::string(name_of(source))) != std::string::npos);
    }
}

TEST_CASE("importance_weights divide by the count as llama.cpp's quantize does") {
    const auto m = two_entries();
    CHECK(importance_weights(*m.find("blk.0.attn_q.weight"), false) == std::vector<float>{1.0f / 48, 2.0f / 48, 0.0f, 4.5f / 48});
    // A matrix that saw no input weighs every column 1.
    CHECK(importance_weights(*m.find("blk.0.ffn_down.weight"), false) == std::vector<float>{3.0f / 16, 0.5f / 16, 6.0f / 16, 1, 1, 1});
    // Legacy: the values over the call count, or as stored when the count is not positive.
    CHECK(importance_weights({{2.0f, 4.0f}, {4.0f}}, true) == std::vector<float>{0.5f, 1.0f});
    CHECK(importance_weights({{2.0f, 4.0f}, {0.0f}}, true) == std::vector<float>{2.0f, 4.0f});
}

TEST_CASE("the imatrix GGUF is llama.cpp's: keys, tensor names, shapes and values, read back unchanged") {
    scratch_dir dir;
    const auto m = two_entries();
    io::write_imatrix(dir.path / "m.gguf", m);
    const auto in = gguf::reader::open(dir.path / "m.gguf");
    CHECK(in.find("general.type")->as_string() == "imatrix");
    CHECK(in.find("imatrix.datasets")->as_array<std::string>() == std::vector<std::string>{"test"});
    CHECK(in.find("imatrix.chunk_count")->as<std::uint32_t>() == 3);
    CHECK(in.find("imatrix.chunk_size")->as<std::uint32_t>() == 16);
    REQUIRE(in.tensors().size() == 4);
    // Sorted by name, in_sum2 before counts.
    CHECK(in.tensors()[0].name == "blk.0.attn_q.weight.in_sum2");
    CHECK(in.tensors()[0].shape == std::vector<std::uint64_t>{4, 1});
    CHECK(in.tensors()[1].name == "blk.0.attn_q.weight.counts");
    CHECK(in.tensors()[1].shape == std::vector<std::uint64_t>{1, 1});
    CHECK(in.tensors()[2].shape == std::vector<std::uint64_t>{3, 2});
    CHECK(in.tensors()[3].shape == std::vector<std::uint64_t>{1, 2});
    for (const auto& t : in.tensors()) CHECK(t.type == ggml_type::f32);

    const auto back = io::read_imatrix(dir.path / "m.gguf");
    CHECK_FALSE(back.legacy);
    CHECK(back.datasets == m.datasets);
    CHECK(back.chunk_count == 3);
    CHECK(back.chunk_size == 16);
    REQUIRE(back.entries.size() == 2);
    for (const auto& [name, e] : m.entries) {
        CHECK(back.find(name)->sums == e.sums);
        CHECK(back.find(name)->counts == e.counts);
    }
}

TEST_CASE("the legacy .dat format is written and read as llama.cpp does") {
    scratch_dir dir;
    const auto m = two_entries();
    io::write_imatrix_legacy(dir.path / "m.dat", m);
    const auto back = io::read_imatrix(dir.path / "m.dat");
    CHECK(back.legacy);
    CHECK(back.chunk_count == 3);
    CHECK(back.datasets == std::vector<std::string>{"test"});
    // ncall = ceil(48 / 16) = 3 for attn_q, ceil(16 / 16) = 1 for ffn_down; the weights come back.
    CHECK(back.find("blk.0.attn_q.weight")->counts == std::vector<float>{3.0f});
    const auto w = importance_weights(*back.find("blk.0.attn_q.weight"), true);
    const auto expected = importance_weights(*m.find("blk.0.attn_q.weight"), false);
    for (std::size_t i = 0; i < w.size(); ++i) CHECK(w[i] == doctest::Approx(expected[i]));
    CHECK(importance_weights(*back.find("blk.0.ffn_down.weight"), true) == std::vector<float>{3.0f / 16, 0.5f / 16, 6.0f / 16, 1, 1, 1});
    // The oldest legacy files stop after the entries.
    auto bytes = read_bytes(dir.path / "m.dat");
    bytes.resize(bytes.size() - (4 + 4 + 4));  // chunk count, dataset length, "test"
    write_bytes(dir.path / "old.dat", bytes);
    const auto old = io::read_imatrix(dir.path / "old.dat");
    CHECK(old.entries.size() == 2);
    CHECK(old.datasets.empty());
}

TEST_CASE("malformed imatrix files are refused with the file, the tensor and what is wrong") {
    scratch_dir dir;
    const auto m = two_entries();
    io::write_imatrix_legacy(dir.path / "m.dat", m);
    const auto whole = read_bytes(dir.path / "m.dat");

    SUBCASE("a truncated legacy file, cut anywhere") {
        for (std::size_t cut = 0; cut + 4 < whole.size(); cut += 3) {
            if (cut == whole.size() - 12) continue;  // the entries alone: the oldest legacy files, valid
            CAPTURE(cut);
            write_bytes(dir.path / "cut.dat", std::vector<char>(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(cut)));
            CHECK_THROWS_AS((void)io::read_imatrix(dir.path / "cut.dat"), format_error);
        }
        write_bytes(dir.path / "cut.dat", std::vector<char>(whole.begin(), whole.begin() + 20));
        CHECK_THROWS_WITH((void)io::read_imatrix(dir.path / "cut.dat"), doctest::Contains("cut.dat': truncated at byte"));
    }
    SUBCASE("no entries, bad counts and trailing bytes") {
        write_bytes(dir.path / "empty.dat", {0, 0, 0, 0});
        CHECK_THROWS_WITH_AS((void)io::read_imatrix(dir.path / "empty.dat"), doctest::Contains("no data in file"), format_error);
        auto extra = whole;
        extra.push_back(0);
        write_bytes(dir.path / "extra.dat", extra);
        CHECK_THROWS_WITH_AS((void)io::read_imatrix(dir.path / "extra.dat"), doctest::Contains("after the dataset name"), format_error);
        // A value count far beyond the file is refused before anything is allocated for it.
        auto huge = whole;
        const std::int32_t count = 0x7fffffff;
        std::memcpy(huge.data() + 4 + 4 + std::strlen("blk.0.attn_q.weight") + 4, &count, 4);
        write_bytes(dir.path / "huge.dat", huge);
        CHECK_THROWS_WITH_AS((void)io::read_imatrix(dir.path / "huge.dat"), doctest::Contains("huge.dat': truncated at byte"),
                             format_error);
        auto negative = whole;
        const std::int32_t minus = -5;
        std::memcpy(negative.data() + 4 + 4 + std::strlen("blk.0.attn_q.weight") + 4, &minus, 4);
        write_bytes(dir.path / "negative.dat", negative);
        CHECK_THROWS_WITH_AS((void)io::read_imatrix(dir.path / "negative.dat"), doctest::Contains("has -5 values"), format_error);
    }
    SUBCASE("non-finite and negative values, in either format") {
        for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), -1.0f}) {
            auto n = m;
            n.entries["blk.0.attn_q.weight"].sums[2] = bad;
            io::write_imatrix(dir.path / "bad.gguf", n);
            CHECK_THROWS_WITH_AS((void)io::read_imatrix(dir.path / "bad.gguf"), doctest::Contains("blk.0.attn_q.weight.in_sum2[2]"),
                                 value_error);
            auto bytes = whole;  // attn_q's third value: after the entry count, name length, name, ncall and nval
            const std::size_t at = 4 + 4 + std::strlen("blk.0.attn_q.weight") + 4 + 4 + 2 * 4;
            std::memcpy(bytes.data() + at, &bad, 4);
            write_bytes(dir.path / "bad.dat", bytes);
            CHECK_THROWS_WITH_AS((void)io::read_imatrix(dir.path / "bad.dat"), doctest::Contains("blk.0.attn_q.weight[2]"), value_error);
        }
        auto n = m;
        n.entries["blk.0.attn_q.weight"].counts[0] = -2.0f;
        io::write_imatrix(dir.path / "bad.gguf", n);
        CHECK_THROWS_WITH_AS((void)io::read_imatrix(dir.path / "bad.gguf"), doctest::Contains("blk.0.attn_q.weight.counts[0]"),
                             value_error);
    }
    SUBCASE("a GGUF that is not an imatrix, or whose tensors do not pair") {
        gguf::writer w(dir.path / "plain.gguf");
        w.set("general.type", gguf::value("imatrix"));
        w.add_tensor("x.in_sum2", {4, 1}, ggml_type::f32, std::vector<std::byte>(16));
        w.finish();
        CHECK_THROWS_WITH_AS((void)io::read_imatrix(dir.path / "plain.gguf"), doctest::Contains("imatrix.datasets is missing"),
                             format_error);

        const auto with_keys = [&](const fs::path& p, auto&& add) {
            gguf::writer k(p);
            k.set("imatrix.datasets", gguf::value(std::vector<std::string>{"d"}));
            k.set("imatrix.chunk_count", gguf::value(std::uint32_t{1}));
            k.set("imatrix.chunk_size", gguf::value(std::uint32_t{4}));
            add(k);
            k.finish();
        };
        with_keys(dir.path / "unpaired.gguf", [](gguf::writer& k) {
            k.add_tensor("blk.0.attn_q.weight.in_sum2", {4, 1}, ggml_type::f32, std::vector<std::byte>(16));
        });
        CHECK_THROWS_WITH_AS((void)io::read_imatrix(dir.path / "unpaired.gguf"),
                             doctest::Contains("'blk.0.attn_q.weight' has in_sum2 but no counts"), format_error);
        with_keys(dir.path / "shapes.gguf", [](gguf::writer& k) {
            k.add_tensor("a.in_sum2", {4, 2}, ggml_type::f32, std::vector<std::byte>(32));
            k.add_tensor("a.counts", {1, 1}, ggml_type::f32, std::vector<std::byte>(4));
        });
        CHECK_THROWS_WITH_AS((void)io::read_imatrix(dir.path / "shapes.gguf"), doctest::Contains("shapes do not agree"), format_error);
        with_keys(dir.path / "f16.gguf", [](gguf::writer& k) {
            k.add_tensor("a.in_sum2", {4, 1}, ggml_type::f16, std::vector<std::byte>(8));
            k.add_tensor("a.counts", {1, 1}, ggml_type::f32, std::vector<std::byte>(4));
        });
        CHECK_THROWS_WITH_AS((void)io::read_imatrix(dir.path / "f16.gguf"), doctest::Contains("'a.in_sum2' is f16, not f32"), format_error);
        with_keys(dir.path / "none.gguf", [](gguf::writer& k) { k.add_tensor("a", {4, 1}, ggml_type::f32, std::vector<std::byte>(16)); });
        CHECK_THROWS_WITH_AS((void)io::read_imatrix(dir.path / "none.gguf"), doctest::Contains("no data in file"), format_error);
    }
    SUBCASE("a missing file") { CHECK_THROWS_AS((void)io::read_imatrix(dir.path / "absent.gguf"), io_error); }
}

TEST_CASE("an imatrix is checked against the model: tensors it does not have, and wrong lengths") {
    const std::vector<gguf::tensor_info> tensors{{"blk.0.attn_q.weight", {4, 8}, ggml_type::f32, 0},
                                                 {"blk.0.ffn_down.weight", {3, 5, 2}, ggml_type::f32, 0}};
    CHECK_NOTHROW(io::check_imatrix_against(two_entries(), tensors, "m.gguf"));
    auto m = two_entries();
    m.entries["blk.9.attn_q.weight"] = {{1.0f}, {1.0f}};
    CHECK_THROWS_WITH_AS(io::check_imatrix_against(m, tensors, "m.gguf"),
                         doctest::Contains("imatrix 'm.gguf': tensor 'blk.9.attn_q.weight' is not in the model"), invalid_argument_error);
    m = two_entries();
    m.entries["blk.0.attn_q.weight"].sums.push_back(1.0f);
    m.entries["blk.0.attn_q.weight"].sums.resize(5);
    CHECK_THROWS_WITH_AS(io::check_imatrix_against(m, tensors, "m.gguf"),
                         doctest::Contains("tensor 'blk.0.attn_q.weight' has 5 values, the model's tensor needs 4"),
                         invalid_argument_error);
}

TEST_CASE("quantize_gguf hands importance weights to the types that use them, from a file or computed data-free") {
    scratch_dir dir;
    io::write_llama_gguf(make_synthetic_llama(4), dir.path / "f32.gguf");
    const auto source = gguf::reader::open(dir.path / "f32.gguf");
    const auto model = io::read_llama_model(source);
    // The model facts the presets' rules read: 2 layers, 4 query heads over 2 key/value heads.
    const auto context = mix_context_of(source, true);
    CHECK(context.layers == 2);
    CHECK(context.gqa == 2);
    CHECK(context.importance);
    quantize_options o;
    o.policy.preset = find_preset("q8_0");
    o.policy.overrides = {parse_override("blk\\.0\\.attn_q=iq3_s"), parse_override("blk\\.1\\.attn_v=iq2_xxs"),
                          parse_override("blk\\.1\\.attn_k=q5_0"), parse_override("blk\\.0\\.ffn_down=q4_K")};
    o.threads = 2;
    const auto bytes_of = [](const gguf::reader& in, std::string_view name) {
        const auto s = in.tensor_data(*in.find_tensor(name));
        return std::vector<std::byte>(s.begin(), s.end());
    };
    const auto expected = [&](std::string_view name, ggml_type type, const std::vector<float>& w) {
        const auto* t = source.find_tensor(name);
        std::vector<float> values(static_cast<std::size_t>(t->elements()));
        dequantize(t->type, source.tensor_data(*t), values);
        return quantize(type, values, static_cast<std::size_t>(t->shape[0]), w);
    };

    SUBCASE("from an imatrix file") {
        const auto m = compute_importance(model, small_calibration(), 2);
        io::write_imatrix(dir.path / "m.gguf", m);
        const auto read = io::read_imatrix(dir.path / "m.gguf");
        o.importance = &read;
        const auto r = quantize_gguf(source, dir.path / "out.gguf", o);
        const auto out = gguf::reader::open(dir.path / "out.gguf");
        CHECK(bytes_of(out, "blk.0.attn_q.weight") ==
              expected("blk.0.attn_q.weight", ggml_type::iq3_s, importance_weights(*read.find("blk.0.attn_q.weight"), false)));
        CHECK(bytes_of(out, "blk.1.attn_v.weight") ==
              expected("blk.1.attn_v.weight", ggml_type::iq2_xxs, importance_weights(*read.find("blk.1.attn_v.weight"), false)));
        CHECK(bytes_of(out, "blk.0.ffn_down.weight") ==
              expected("blk.0.ffn_down.weight", ggml_type::q4_K, importance_weights(*read.find("blk.0.ffn_down.weight"), false)));
        CHECK(bytes_of(out, "blk.1.attn_k.weight") ==
              expected("blk.1.attn_k.weight", ggml_type::q5_0, importance_weights(*read.find("blk.1.attn_k.weight"), false)));
        // Importance changes the bytes of a type that uses it.
        CHECK(bytes_of(out, "blk.0.attn_q.weight") != expected("blk.0.attn_q.weight", ggml_type::iq3_s, {}));
        for (const auto& t : r.tensors) {
            CAPTURE(t.name);
            if (t.name == "blk.0.attn_q.weight" || t.name == "blk.1.attn_v.weight" || t.name == "blk.0.ffn_down.weight")
                CHECK(t.importance == importance_origin::file);
            if (t.name == "blk.1.attn_k.weight") CHECK(t.importance == importance_origin::file);  // q5_0
            if (t.name == "blk.0.ffn_up.weight") CHECK(t.importance == importance_origin::none);  // q8_0 ignores it, as ggml
        }
        CHECK(r.data_free_positions == 0);

        // A required type whose tensor the file lacks is refused, naming both.
        auto partial = read;
        partial.entries.erase("blk.1.attn_v.weight");
        o.importance = &partial;
        o.importance_file = "partial.gguf";
        CHECK_THROWS_WITH_AS((void)quantize_gguf(source, dir.path / "out2.gguf", o),
                             doctest::Contains("tensor 'blk.1.attn_v.weight': iq2_xxs needs an importance matrix"), invalid_argument_error);
        // An entry of another shape, or of a tensor the model does not have.
        auto wrong = read;
        wrong.entries["blk.0.attn_q.weight"].sums.resize(128);
        o.importance = &wrong;
        CHECK_THROWS_WITH_AS((void)quantize_gguf(source, dir.path / "out2.gguf", o),
                             doctest::Contains("imatrix 'partial.gguf': tensor 'blk.0.attn_q.weight' has 128 values"),
                             invalid_argument_error);
        CHECK_FALSE(fs::exists(dir.path / "out2.gguf"));
    }
    SUBCASE("without a file: data-free for the types llama.cpp refuses without, none for the others") {
        CHECK_THROWS_WITH_AS((void)quantize_gguf(source, dir.path / "out.gguf", o),
                             doctest::Contains("iq2_xxs needs an importance matrix (llama.cpp refuses it without one) and none was given"),
                             invalid_argument_error);
        o.data_free_importance = small_calibration();
        const auto r = quantize_gguf(source, dir.path / "out.gguf", o);
        CHECK(r.data_free_positions == 32);
        const auto computed = compute_importance(model, small_calibration(), 2);
        const auto out = gguf::reader::open(dir.path / "out.gguf");
        CHECK(bytes_of(out, "blk.1.attn_v.weight") ==
              expected("blk.1.attn_v.weight", ggml_type::iq2_xxs, importance_weights(*computed.find("blk.1.attn_v.weight"), false)));
        CHECK(bytes_of(out, "blk.0.attn_q.weight") == expected("blk.0.attn_q.weight", ggml_type::iq3_s, {}));
        for (const auto& t : r.tensors)
            CHECK(t.importance == (t.name == "blk.1.attn_v.weight" ? importance_origin::data_free : importance_origin::none));
        CHECK(bytes_of(out, "blk.0.ffn_down.weight") == expected("blk.0.ffn_down.weight", ggml_type::q4_K, {}));
    }
}

TEST_CASE("the K and 32-value affine types with importance weights write ggml's bytes") {
    // FNV-1a digests of what ggml_quantize_chunk (node-llama-cpp 3.22.1's prebuilt ggml) writes for the grid
    // i-quants' vector inputs (tests/iq_vector_inputs.hpp) with their importance weights; the interop test
    // compares live against that ggml too.
    struct recorded {
        ggml_type type;
        std::string_view input;
        std::uint64_t digest;
    };
    namespace vectors = test::iq_vectors;
    for (const auto& r : {recorded{ggml_type::q4_K, "uniform", 0xd479d8d40cdffbc5ull},
                          recorded{ggml_type::q4_K, "gaussian", 0x9973733d901b57bfull},
                          recorded{ggml_type::q4_K, "heavy-tailed", 0x397935288fdbec5aull},
                          recorded{ggml_type::q4_K, "all-zero", 0xb9d0059d61083025ull},
                          recorded{ggml_type::q4_K, "plus-minus max", 0xfcf5b65a1998e29cull},
                          recorded{ggml_type::q5_K, "uniform", 0xc17d93fef70d2f8eull},
                          recorded{ggml_type::q5_K, "gaussian", 0xb87d4e0bfbe26ef5ull},
                          recorded{ggml_type::q5_K, "heavy-tailed", 0x86d7018bde6c2cc1ull},
                          recorded{ggml_type::q5_K, "all-zero", 0xcf58746c2dfcfa25ull},
                          recorded{ggml_type::q5_K, "plus-minus max", 0x34429057bec96be8ull},
                          recorded{ggml_type::q2_K, "uniform", 0x04c723e871e726efull},
                          recorded{ggml_type::q2_K, "gaussian", 0x8736ae51a8c3085bull},
                          recorded{ggml_type::q2_K, "heavy-tailed", 0x03774e8bdc816206ull},
                          recorded{ggml_type::q2_K, "all-zero", 0x51795983e22e1d65ull},
                          recorded{ggml_type::q2_K, "plus-minus max", 0xdae4eb101429e500ull},
                          recorded{ggml_type::q3_K, "uniform", 0x68561dbb1176e8a9ull},
                          recorded{ggml_type::q3_K, "gaussian", 0x5b6f557316c4b2eaull},
                          recorded{ggml_type::q3_K, "heavy-tailed", 0xd473b5cadfa09234ull},
                          recorded{ggml_type::q3_K, "all-zero", 0x08fd0a89c6878385ull},
                          recorded{ggml_type::q3_K, "plus-minus max", 0xcec299f0b01cc230ull},
                          recorded{ggml_type::q6_K, "uniform", 0x78828125e4810147ull},
                          recorded{ggml_type::q6_K, "gaussian", 0x16aaa4844128d1fdull},
                          recorded{ggml_type::q6_K, "heavy-tailed", 0xe30e19bc87b94c7aull},
                          recorded{ggml_type::q6_K, "all-zero", 0xdb696f78397bfac5ull},
                          recorded{ggml_type::q6_K, "plus-minus max", 0x973e6b40daf84da0ull},
                          recorded{ggml_type::q4_0, "uniform", 0x9e1ed4dec4cdfda2ull},
                          recorded{ggml_type::q4_0, "gaussian", 0x9fb97ce6e658305aull},
                          recorded{ggml_type::q4_0, "heavy-tailed", 0x31f2502f51640ab4ull},
                          recorded{ggml_type::q4_0, "all-zero", 0xb9d0059d61083025ull},
                          recorded{ggml_type::q4_0, "plus-minus max", 0x8f3f9640d6140373ull},
                          recorded{ggml_type::q4_1, "uniform", 0x89a168877d67725cull},
                          recorded{ggml_type::q4_1, "gaussian", 0x924c306b66e56756ull},
                          recorded{ggml_type::q4_1, "heavy-tailed", 0xd164891b85ca320aull},
                          recorded{ggml_type::q4_1, "all-zero", 0x96554ce2cfb01525ull},
                          recorded{ggml_type::q4_1, "plus-minus max", 0x154958ee854d67e2ull},
                          recorded{ggml_type::q5_0, "uniform", 0x693fb898e6855133ull},
                          recorded{ggml_type::q5_0, "gaussian", 0x1f7117adb51914c5ull},
                          recorded{ggml_type::q5_0, "heavy-tailed", 0x521a59e44914840full},
                          recorded{ggml_type::q5_0, "all-zero", 0xcf58746c2dfcfa25ull},
                          recorded{ggml_type::q5_0, "plus-minus max", 0xcccf5605ef207e00ull},
                          recorded{ggml_type::q5_1, "uniform", 0x80758a646741e8c7ull},
                          recorded{ggml_type::q5_1, "gaussian", 0x6b4b2a47757699edull},
                          recorded{ggml_type::q5_1, "heavy-tailed", 0x889fafa0ba1aa1f1ull},
                          recorded{ggml_type::q5_1, "all-zero", 0x9fa9e040e0eedf25ull},
                          recorded{ggml_type::q5_1, "plus-minus max", 0x2dff510d98005d8dull}}) {
        CAPTURE(info(r.type).name);
        CAPTURE(r.input);
        const auto bytes = quantize(r.type, vectors::values(r.input), vectors::row_length, vectors::importance());
        CHECK(vectors::digest(bytes) == r.digest);
        CHECK(uses_importance(r.type));
    }
    // The weights matter: uniform ones are not the unweighted reference (ggml's weighted search is another one).
    const auto x = vectors::values("gaussian");
    CHECK(quantize(ggml_type::q4_K, x, vectors::row_length, std::vector<float>(vectors::row_length, 1.0f)) != quantize(ggml_type::q4_K, x));
}
