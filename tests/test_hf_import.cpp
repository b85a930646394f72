// Importing Hugging Face folders: the JSON reader, the safetensors reader (hostile headers, shards), the
// architecture tables, and `convert_hf` on the fixture folders of tests/hf_fixture.hpp against what
// llama.cpp's converter writes (names, shapes, keys, llama's Q/K interleaving, bf16 values, Llama 3's
// rope_freqs), and every inconsistent folder refused with the file and the reason.

#include <doctest/doctest.h>

#include <cogqat/core/float16.hpp>
#include <cogqat/gguf/reader.hpp>
#include <cogqat/io/hf_import.hpp>
#include <cogqat/io/json.hpp>
#include <cogqat/io/output_file.hpp>
#include <cogqat/io/read_llama.hpp>
#include <cogqat/io/safetensors.hpp>
#include <cogqat/io/sentencepiece_model.hpp>
#include <cogqat/model/architecture_schema.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "hf_fixture.hpp"
#include "scratch_dir.hpp"

using namespace cogqat;
using cogqat::test::raw_tensor;

namespace {

std::span<const std::byte> as_bytes_of(const std::vector<std::byte>& v) { return {v.data(), v.size()}; }

/// A safetensors file whose header is `header` (JSON text, unpadded) followed by `data_bytes` zero bytes.
std::vector<std::byte> with_header(const std::string& header, std::size_t data_bytes) {
    std::vector<std::byte> out(8);
    store_le<std::uint64_t>(out.data(), header.size());
    for (const char c : header) out.push_back(static_cast<std::byte>(c));
    out.resize(out.size() + data_bytes);
    return out;
}

std::string refusal(const std::vector<std::byte>& bytes) {
    try {
        static_cast<void>(io::safetensors_file::parse(as_bytes_of(bytes), "x.safetensors"));
    } catch (const format_error& e) {
        return e.what();
    }
    return "accepted";
}

std::string convert_refusal(const std::filesystem::path& dir, const std::filesystem::path& out) {
    try {
        static_cast<void>(io::convert_hf(dir, out));
    } catch (const error& e) {
        return e.what();
    }
    return "accepted";
}

std::string read_all(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void replace_in(const std::filesystem::path& p, const std::string& from, const std::string& to) {
    std::string s = read_all(p);
    const auto at = s.find(from);
    REQUIRE(at != std::string::npos);
    s.replace(at, from.size(), to);
    test::write_text(p, s);
}

std::vector<float> f32_values(const gguf::reader& r, const gguf::tensor_info& t) {
    REQUIRE(t.type == ggml_type::f32);
    const auto bytes = r.tensor_data(t);
    std::vector<float> v(bytes.size() / 4);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = load_le<float>(bytes.data() + 4 * i);
    return v;
}

std::vector<float> bf16_values(const raw_tensor& t) {
    std::vector<float> v(t.bytes.size() / 2);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = bf16_bits_to_fp32(load_le<std::uint16_t>(t.bytes.data() + 2 * i));
    return v;
}

}  // namespace

TEST_CASE("json: values, escapes and refusals") {
    const auto v = io::parse_json(R"( {"a": [1, -2.5e1, true, null], "s": "x\u00e9\ud83d\ude00\n", "n": {}} )", "t");
    REQUIRE(v.is_object());
    CHECK(v.find("a")->elements().size() == 4);
    CHECK(v.find("a")->elements()[0].as_uint() == 1u);
    CHECK(v.find("a")->elements()[1].as_double() == -25.0);
    CHECK_FALSE(v.find("a")->elements()[1].as_uint());
    CHECK(*v.find("s")->as_string() == "x\xC3\xA9\xF0\x9F\x98\x80\n");
    CHECK(v.find("n")->is_object());
    const auto refuses = [](const std::string& text, const std::string& reason) {
        try {
            static_cast<void>(io::parse_json(text, "'file.json'"));
            FAIL("accepted " << text);
        } catch (const format_error& e) {
            CHECK(std::string(e.what()).find("'file.json'") != std::string::npos);
            CHECK_MESSAGE(std::string(e.what()).find(reason) != std::string::npos, e.what());
        }
    };
    refuses(R"({"a": 1, "a": 2})", "an object has the key \"a\" twice");
    refuses(std::string(200, '[') + std::string(200, ']'), "nested deeper");
    refuses(R"(["\ud800"])", "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF");
    refuses(R"(["\udc00"])", "surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF");
    refuses("[\"a\tb\"]", "control character");
    refuses("[1] x", "expected end of input");
    refuses("[\"\xC3\"]", "ill-formed UTF-8 byte");
    refuses("[01]", "expected ']'");
    refuses("{\"a\" 1}", "expected ':'");
    refuses("", "unexpected end of input");
    refuses("[1e999]", "number overflow");
}

TEST_CASE("safetensors: tensors, metadata and bf16/f16/f32 values") {
    std::map<std::string, raw_tensor> tensors;
    tensors["b"] = {"BF16", {2, 2}, test::bf16_bytes({0x3F80, 0xBF80, 0x4000, 0x0000})};  // 1, -1, 2, 0
    raw_tensor f16{"F16", {2}, std::vector<std::byte>(4)};
    store_le<std::uint16_t>(f16.bytes.data(), 0x3C00);      // 1
    store_le<std::uint16_t>(f16.bytes.data() + 2, 0xC000);  // -2
    tensors["a"] = f16;
    raw_tensor f32{"F32", {1}, std::vector<std::byte>(4)};
    store_le<float>(f32.bytes.data(), 0.25f);
    tensors["c"] = f32;
    const auto bytes = test::safetensors_bytes(tensors, R"({"format":"pt"})");
    const auto file = io::safetensors_file::parse(as_bytes_of(bytes), "m.safetensors");
    REQUIRE(file.tensors().size() == 3);
    CHECK(file.tensors()[0].name == "a");  // data order
    REQUIRE(file.metadata().size() == 1);
    CHECK(file.metadata()[0] == std::pair<std::string, std::string>{"format", "pt"});
    std::vector<float> v(4);
    io::decode_to_f32(*file.find("b"), v);
    CHECK(v == std::vector<float>{1, -1, 2, 0});
    CHECK(file.find("b")->shape == std::vector<std::uint64_t>{2, 2});
    std::vector<float> h(2);
    io::decode_to_f32(*file.find("a"), h);
    CHECK(h == std::vector<float>{1, -2});
    std::vector<float> s(1);
    io::decode_to_f32(*file.find("c"), s);
    CHECK(s[0] == 0.25f);
    CHECK(file.find("d") == nullptr);
    CHECK_THROWS_AS(io::decode_to_f32(*file.find("c"), v), shape_error);
}

TEST_CASE("safetensors: hostile headers are refused with the file and the reason") {
    const auto has = [](const std::string& message, const std::string& part) {
        CHECK_MESSAGE(message.find("'x.safetensors'") != std::string::npos, message);
        CHECK_MESSAGE(message.find(part) != std::string::npos, message);
    };
    has(refusal(std::vector<std::byte>(5)), "shorter than the 8-byte header length");
    auto longer = with_header("{}", 0);
    store_le<std::uint64_t>(longer.data(), 1000);
    has(refusal(longer), "the header length 1000 is larger than the 2 bytes after it");
    store_le<std::uint64_t>(longer.data(), 200'000'000);
    has(refusal(longer), "the header length 200000000 is above the limit of 100000000");
    has(refusal(with_header("{\"a\": {", 0)), "header: not valid JSON: syntax error while parsing object key");
    has(refusal(with_header("[1]", 0)), "the header is an array, not an object");
    has(refusal(with_header(
                R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)),
        "header: not valid JSON: an object has the key \"a\" twice");
    has(refusal(with_header(
                R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12)),
        "overlaps the tensor before it");
    has(refusal(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4)), "out of range: the data has 4 bytes");
    has(refusal(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)),
        "bytes [0, 4) of the data belong to no tensor");
    has(refusal(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8)),
        "bytes [4, 8) of the data belong to no tensor");
    has(refusal(with_header(R"({"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}})", 4)),
        "is BF16 of 3 elements, which is not its 4 bytes");
    has(refusal(with_header(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4)),
        "element count overflows");
    has(refusal(with_header(R"({"a":{"dtype":"F32","shape":[4294967296,2],"data_offsets":[0,4]}})", 4)), "not its 4 bytes");
    has(refusal(with_header(R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8)),
        "has dtype I64; cogqat reads F32, F16 and BF16");
    has(refusal(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8)), "end before they begin");
    has(refusal(with_header(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)), "not a non-negative integer");
    has(refusal(with_header(R"({"a":{"dtype":"F32","shape":[1]}})", 4)), "no data_offsets pair");
    has(refusal(with_header(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4)), "has no dtype string");
    has(refusal(with_header(R"({"__metadata__":{"k":1}})", 0)), "__metadata__ \"k\" is a number, not a string");
    // Empty tensors may share an offset; a file of them alone has no data.
    CHECK(refusal(with_header(
                  R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4)) ==
          "accepted");
}

TEST_CASE("safetensors: sharded models find every tensor; a missing shard or tensor is refused") {
    const test::scratch_dir dir;
    std::map<std::string, raw_tensor> one, two;
    one["x"] = {"BF16", {2}, test::bf16_bytes({0x3F80, 0x4000})};
    two["y"] = {"BF16", {1}, test::bf16_bytes({0x4040})};
    test::write_bytes(dir.path / "s1.safetensors", test::safetensors_bytes(one));
    test::write_bytes(dir.path / "s2.safetensors", test::safetensors_bytes(two));
    const auto index = dir.path / "model.safetensors.index.json";
    test::write_text(index, R"({"metadata": {}, "weight_map": {"x": "s1.safetensors", "y": "s2.safetensors"}})");
    {
        const auto m = io::safetensors_model::open_folder(dir.path);
        REQUIRE(m.find("y") != nullptr);
        std::vector<float> y(1);
        io::decode_to_f32(*m.find("y"), y);
        CHECK(y[0] == 3.0f);
        CHECK(m.tensors().size() == 2);
        CHECK(m.files().size() == 2);
    }
    const auto refused = [&](const std::string& index_text, const std::string& part) {
        test::write_text(index, index_text);
        try {
            static_cast<void>(io::safetensors_model::open_folder(dir.path));
            FAIL("accepted " << index_text);
        } catch (const error& e) {
            CHECK_MESSAGE(std::string(e.what()).find(part) != std::string::npos, e.what());
        }
    };
    refused(R"({"weight_map": {"x": "s1.safetensors", "y": "s3.safetensors"}})", "names the shard 's3.safetensors', which is missing");
    refused(R"({"weight_map": {"x": "s1.safetensors", "z": "s2.safetensors"}})",
            "places tensor 'z' in 's2.safetensors', which does not hold it");
    refused(R"({"weight_map": {"x": "../s1.safetensors"}})", "not a file in the folder");
    refused(R"({"metadata": {}})", "no \"weight_map\" object");
    test::write_bytes(dir.path / "s2.safetensors", test::safetensors_bytes(one));
    refused(R"({"weight_map": {"x": "s1.safetensors", "y": "s2.safetensors"}})", "'x' is also in another shard");
    std::filesystem::remove(index);
    CHECK_THROWS_AS(static_cast<void>(io::safetensors_model::open_folder(dir.path)), io_error);
}

TEST_CASE("architecture tables: llama.cpp's names, shapes and Q/K interleaving") {
    CHECK(find_architecture("MistralForCausalLM")->name == "llama");
    CHECK(find_architecture("qwen3")->name == "qwen3");
    CHECK(find_architecture("GPT2LMHeadModel") == nullptr);
    CHECK(known_architectures().find("Qwen2ForCausalLM (qwen2)") != std::string::npos);
    // One head of 8 rows: halves [0..3] and [4..7] become the pairs (0,4), (1,5), (2,6), (3,7).
    std::vector<std::size_t> rows;
    for (std::size_t r = 0; r < 8; ++r) rows.push_back(gguf_row_of(r, 8, 1));
    CHECK(rows == std::vector<std::size_t>{0, 2, 4, 6, 1, 3, 5, 7});
    CHECK(gguf_row_of(9, 16, 2) == 8 + 2);
    CHECK_THROWS_AS(check_row_order("q", 10, 2), shape_error);
}

TEST_CASE("convert hf: the three fixtures become llama.cpp's GGUF") {
    const test::scratch_dir dir;
    for (const std::string arch : {"llama", "qwen2", "qwen3"}) {
        CAPTURE(arch);
        const auto f = test::write_hf_fixture(dir.path / arch, arch);
        const auto out = dir.path / (arch + ".gguf");
        const auto result = io::convert_hf(f.dir, out);
        CHECK(result.tokens == f.sizes.vocab);
        const auto r = gguf::reader::open(out);
        CHECK(r.find("general.architecture")->as_string() == arch);
        CHECK(r.find(arch + ".block_count")->as<std::uint32_t>() == 2);
        CHECK(r.find(arch + ".embedding_length")->as<std::uint32_t>() == 64);
        CHECK(r.find(arch + ".feed_forward_length")->as<std::uint32_t>() == 128);
        CHECK(r.find(arch + ".attention.head_count")->as<std::uint32_t>() == 4);
        CHECK(r.find(arch + ".attention.head_count_kv")->as<std::uint32_t>() == 2);
        CHECK(r.find(arch + ".context_length")->as<std::uint32_t>() == 256);
        CHECK(r.find(arch + ".attention.layer_norm_rms_epsilon")->as<float>() == 1e-6f);
        CHECK(r.find("general.file_type")->as<std::uint32_t>() == 0);
        CHECK(r.find("tokenizer.ggml.model")->as_string() == "gpt2");
        const auto tokens = r.find("tokenizer.ggml.tokens")->as_array<std::string>();
        const auto types = r.find("tokenizer.ggml.token_type")->as_array<std::int32_t>();
        REQUIRE(tokens.size() == f.sizes.vocab);
        const std::size_t first_added = f.token_count - f.added.size();
        CHECK(tokens[0] == "\xC4\x80");  // byte 0 is U+0100
        CHECK(tokens[33] == "!");
        CHECK(tokens[32] == "\xC4\xA0");  // the space byte is Ġ
        CHECK(types[0] == 1);
        CHECK(tokens[first_added] == f.added[0]);
        CHECK(types[first_added] == 3);                                                  // special: control
        CHECK(types[f.token_count - 1] == 4);                                            // <think>, not special: user-defined
        CHECK(tokens[f.token_count - 1] == (arch == "llama" ? "<think>" : " <think>"));  // U+2581 as a space
        const auto merges = r.find("tokenizer.ggml.merges")->as_array<std::string>();
        CHECK(merges.size() == 362);
        CHECK(merges[0] == "\xC4\xA0 a");
        CHECK(r.find("tokenizer.chat_template")->as_string() == "{{ messages }}");
        if (f.token_count < f.sizes.vocab) {
            CHECK(tokens.back() == "[PAD" + std::to_string(f.sizes.vocab - 1) + "]");
            CHECK(types.back() == 5);
        }

        // Every tensor: its name, its shape, and its bf16 values exactly (llama's Q and K interleaved).
        std::size_t expected_tensors = 0;
        for (const auto& [hf_name, raw] : f.tensors) {
            ++expected_tensors;
            std::string name = hf_name;
            const hf_tensor_schema* schema = nullptr;
            std::size_t layer = 0;
            for (const auto& t : find_architecture(arch)->tensors)
                for (std::size_t l = 0; l < 2; ++l)
                    if (t.hf_tensor_name(l) == hf_name) schema = &t, layer = l;
            REQUIRE(schema != nullptr);
            const auto* info = r.find_tensor(schema->gguf_tensor_name(layer));
            REQUIRE_MESSAGE(info != nullptr, schema->gguf_tensor_name(layer));
            CHECK(info->shape == schema->gguf_shape(f.sizes));
            const auto got = f32_values(r, *info);
            const auto in = bf16_values(raw);
            if (schema->order == row_order::as_stored) {
                CHECK(got == in);
                continue;
            }
            CHECK(arch == "llama");
            const std::size_t heads = schema->order == row_order::interleave_query_heads ? 4 : 2, half = 8, cols = 64;
            for (std::size_t h = 0; h < heads; ++h)
                for (std::size_t i = 0; i < half; ++i)
                    for (std::size_t j = 0; j < 2; ++j)
                        for (std::size_t c = 0; c < cols; ++c)
                            REQUIRE(got[((h * half + i) * 2 + j) * cols + c] == in[((h * 2 + j) * half + i) * cols + c]);
        }
        const bool llama = arch == "llama";
        CHECK(r.tensors().size() == expected_tensors + (llama ? 1 : 0));
        CHECK((r.find_tensor("output.weight") != nullptr) == !f.tied);
        if (llama) {
            CHECK(r.find("tokenizer.ggml.pre")->as_string() == "llama-bpe");
            CHECK(r.find("llama.vocab_size")->as<std::uint32_t>() == f.sizes.vocab);
            CHECK(r.find("llama.rope.dimension_count")->as<std::uint32_t>() == 16);
            CHECK(r.find("llama.rope.freq_base")->as<float>() == 500000.0f);
            CHECK(r.find("tokenizer.ggml.bos_token_id")->as<std::uint32_t>() == first_added);
            CHECK(r.find("tokenizer.ggml.eos_token_id")->as<std::uint32_t>() == first_added + 1);
            CHECK(r.find("tokenizer.ggml.add_bos_token")->as<bool>());
            CHECK(r.find("tokenizer.ggml.add_eos_token") == nullptr);
            // Llama 3's factors for head size 16, base 500000, original context 64: wavelengths 6.3 (below
            // 64/4: 1), 32.4 (between: blended), then above 64 (the factor, 8).
            const auto* freqs = r.find_tensor("rope_freqs.weight");
            REQUIRE(freqs != nullptr);
            CHECK(freqs->shape == std::vector<std::uint64_t>{8});
            const auto factors = f32_values(r, *freqs);
            CHECK(factors[0] == 1.0f);
            const float wavelen = 2.0f * 3.14159265f * std::pow(500000.0f, 2.0f / 16.0f);
            const float smooth = (64.0f / wavelen - 1.0f) / 3.0f;
            CHECK(factors[1] == doctest::Approx(1.0f / ((1.0f - smooth) / 8.0f + smooth)).epsilon(1e-6));
            for (std::size_t i = 2; i < 8; ++i) CHECK(factors[i] == 8.0f);
            CHECK(r.find("llama.attention.key_length") == nullptr);
        } else {
            CHECK(r.find("tokenizer.ggml.pre")->as_string() == "qwen2");
            CHECK(r.find(arch + ".vocab_size") == nullptr);
            CHECK(r.find("tokenizer.ggml.bos_token_id")->as<std::uint32_t>() == first_added);  // config.json's
            CHECK(r.find("tokenizer.ggml.eos_token_id")->as<std::uint32_t>() == first_added + 2);
            CHECK(r.find("tokenizer.ggml.padding_token_id")->as<std::uint32_t>() == first_added);
            CHECK_FALSE(r.find("tokenizer.ggml.add_bos_token")->as<bool>());
        }
        if (arch == "qwen3") {
            CHECK(r.find("qwen3.attention.key_length")->as<std::uint32_t>() == 32);
            CHECK(r.find_tensor("blk.1.attn_q.weight")->shape == std::vector<std::uint64_t>{64, 128});
            CHECK(r.find_tensor("blk.0.attn_k_norm.weight")->shape == std::vector<std::uint64_t>{32});
        }
        if (arch == "qwen2") CHECK(r.find_tensor("blk.1.attn_v.bias")->shape == std::vector<std::uint64_t>{32});
    }
}

TEST_CASE(
        "convert hf: MistralForCausalLM is llama; without rope scaling no rope_freqs, without Llama 3's pattern the default "
        "pre-tokenizer") {
    const test::scratch_dir dir;
    const auto f = test::write_hf_fixture(dir.path / "m", "mistral");
    const auto out = dir.path / "m.gguf";
    static_cast<void>(io::convert_hf(f.dir, out));
    const auto r = gguf::reader::open(out);
    CHECK(r.find("general.architecture")->as_string() == "llama");
    CHECK(r.find("tokenizer.ggml.pre")->as_string() == "default");
    CHECK(r.find("llama.rope.freq_base")->as<float>() == 1000000.0f);
    CHECK(r.find_tensor("rope_freqs.weight") == nullptr);
    CHECK(r.find_tensor("output.weight") != nullptr);
    CHECK(r.tensors().size() == f.tensors.size());
}

TEST_CASE("sentencepiece: a model's pieces, scores and types; damaged encodings are refused at their byte") {
    const auto pieces = test::make_sentencepiece_pieces();
    const auto bytes = test::sentencepiece_model_bytes(pieces);
    const auto parsed = io::parse_sentencepiece_model(bytes, "m.model");
    REQUIRE(parsed.size() == pieces.size());
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        CAPTURE(i);
        CHECK(parsed[i].piece == pieces[i].piece);
        CHECK(parsed[i].score == pieces[i].score);
        CHECK(parsed[i].type == pieces[i].type);
    }
    const auto refusal = [](std::vector<std::uint8_t> raw) -> std::string {
        std::vector<std::byte> b;
        for (auto v : raw) b.push_back(static_cast<std::byte>(v));
        try {
            static_cast<void>(io::parse_sentencepiece_model(b, "m.model"));
        } catch (const format_error& e) {
            return e.what();
        }
        return "accepted";
    };
    auto truncated = bytes;
    truncated.resize(truncated.size() - 3);
    std::vector<std::uint8_t> cut;
    for (auto b : truncated) cut.push_back(std::to_integer<std::uint8_t>(b));
    CHECK(refusal(cut).find("runs past the end") != std::string::npos);
    CHECK(refusal({}).find("'m.model': not a SentencePiece model: it has no pieces") != std::string::npos);
    CHECK(refusal({0x0a, 0x7f, 0x0a}).find("a field of 127 bytes runs past the end (1 remain) (at byte 2)") != std::string::npos);
    CHECK(refusal({0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}).find("longer than 10 bytes") !=
          std::string::npos);
    CHECK(refusal({0x0b}).find("a group (wire type 3)") != std::string::npos);
    CHECK(refusal({0x0f}).find("wire type 7") != std::string::npos);
    CHECK(refusal({0x02, 0x00}).find("field number 0") != std::string::npos);
    CHECK(refusal({0x08, 0x01}).find("a piece (field 1) has wire type 0, not 2") != std::string::npos);
    CHECK(refusal({0x0a, 0x05, 0x15, 0x00, 0x00, 0x00, 0x00}).find("piece 0 has no text (at byte 2)") != std::string::npos);
    CHECK(refusal({0x0a, 0x05, 0x0a, 0x01, 'a', 0x18, 0x09}).find("piece 0 has type 9") != std::string::npos);
    CHECK(refusal({0x0a, 0x05, 0x0a, 0x01, 'a', 0x10, 0x01}).find("a piece's score (field 2) has wire type 0, not 5") != std::string::npos);
}

TEST_CASE("convert hf: a SentencePiece folder (tokenizer.model) becomes llama.cpp's \"llama\" vocabulary") {
    const test::scratch_dir dir;
    const auto f = test::write_hf_fixture(dir.path / "s", "llama-spm");
    const auto pieces = test::make_sentencepiece_pieces();
    const auto out = dir.path / "s.gguf";
    const auto result = io::convert_hf(f.dir, out);
    CHECK(result.tokens == f.sizes.vocab);
    CHECK(result.merges == 0);
    const auto r = gguf::reader::open(out);
    CHECK(r.find("general.architecture")->as_string() == "llama");
    CHECK(r.find("tokenizer.ggml.model")->as_string() == "llama");
    CHECK(r.find("tokenizer.ggml.pre")->as_string() == "default");
    CHECK(r.find("tokenizer.ggml.merges") == nullptr);
    const auto tokens = r.find("tokenizer.ggml.tokens")->as_array<std::string>();
    const auto scores = r.find("tokenizer.ggml.scores")->as_array<float>();
    const auto types = r.find("tokenizer.ggml.token_type")->as_array<std::int32_t>();
    REQUIRE(tokens.size() == f.sizes.vocab);
    REQUIRE(scores.size() == f.sizes.vocab);
    REQUIRE(types.size() == f.sizes.vocab);
    // What the converter writes: the pieces, tokenizer_config.json's added tokens over them (score -1000: <unk>,
    // <s> and </s> become control), the user-defined piece as normal, and "[PADi]" for ids without a piece.
    for (std::size_t i = 0; i < f.sizes.vocab; ++i) {
        CAPTURE(i);
        const std::size_t n = pieces.size();
        std::string token = i < n ? pieces[i].piece : "[PAD" + std::to_string(i) + "]";
        float score = i < n ? pieces[i].score : -10000.0f;
        int type = i < n ? static_cast<int>(pieces[i].type) : 5;
        if (type == 4) type = 1;
        if (i < 3 || i == n) type = 3, score = -1000.0f;
        if (i == n) token = "<|extra|>";
        if (i == n + 1) token = " <think>", type = 4, score = -1000.0f;
        CHECK(tokens[i] == token);
        CHECK(scores[i] == score);
        CHECK(types[i] == type);
    }
    CHECK(tokens[259] == "<|user|>");
    CHECK(r.find("tokenizer.ggml.bos_token_id")->as<std::uint32_t>() == 1);
    CHECK(r.find("tokenizer.ggml.eos_token_id")->as<std::uint32_t>() == 2);
    CHECK(r.find("tokenizer.ggml.add_bos_token")->as<bool>());
    CHECK_FALSE(r.find("tokenizer.ggml.add_eos_token")->as<bool>());
    const auto tok = io::read_tokenizer(r);
    const auto ids = tok.encode("the quick brown fox", true);
    REQUIRE(ids.size() > 2);
    CHECK(ids[0] == 1);
    CHECK(tok.decode(std::vector<tokenizer::token>(ids.begin() + 1, ids.end())) == "the quick brown fox");

    // added_tokens.json over the pieces; an id beyond vocab_size is skipped, as the converter skips it.
    test::write_text(f.dir / "added_tokens.json", "{\"<extra2>\": " + std::to_string(f.sizes.vocab - 1) + ", \"<far>\": 100000}");
    static_cast<void>(io::convert_hf(f.dir, out));
    const auto again = gguf::reader::open(out);
    CHECK(again.find("tokenizer.ggml.tokens")->as_array<std::string>().back() == "<extra2>");
    CHECK(again.find("tokenizer.ggml.token_type")->as_array<std::int32_t>().back() == 4);

    // Refusals name the file: a damaged tokenizer.model, more pieces than vocab_size, a bad decoder entry.
    auto c = io::read_hf_config(f.dir);
    c.sizes.vocab = 300;
    CHECK_THROWS_WITH_AS(static_cast<void>(io::read_hf_tokenizer(f.dir, c)),
                         doctest::Contains("tokenizer.model': 558 pieces, more than config.json's vocab_size 300"), format_error);
    replace_in(f.dir / "tokenizer_config.json", "\"0\": {", "\"zero\": {");
    CHECK(convert_refusal(f.dir, out).find("added_tokens_decoder entry 'zero' is not an integer id") != std::string::npos);
    auto model = test::sentencepiece_model_bytes(pieces);
    model.resize(model.size() / 2);
    test::write_bytes(f.dir / "tokenizer.model", model);
    CHECK(convert_refusal(f.dir, out).find("tokenizer.model': not a SentencePiece model") != std::string::npos);
}

TEST_CASE("read_hf_tokenizer: ids beyond vocab_size, and a vocab_size above the limit, are refused") {
    const test::scratch_dir dir;
    const auto f = test::write_hf_fixture(dir.path / "m", "llama");
    auto c = io::read_hf_config(f.dir);
    c.sizes.vocab = 600;
    try {
        static_cast<void>(io::read_hf_tokenizer(f.dir, c));
        FAIL("accepted");
    } catch (const format_error& e) {
        CHECK(std::string(e.what()).find("tokenizer.json': token '") != std::string::npos);
        CHECK(std::string(e.what()).find("beyond config.json's vocab_size 600") != std::string::npos);
    }
    // A special token that is a vocabulary token, not an added one: config.json's id stands, as in llama.cpp.
    c.sizes.vocab = 622;
    replace_in(f.dir / "tokenizer_config.json", "\"eos_token\": \"<|end_of_text|>\"", "\"eos_token\": \"et\"");
    const auto t = io::read_hf_tokenizer(f.dir, c);
    CHECK(t.eos_id == c.eos_token_id);
    c.sizes.vocab = 4'000'000'000u;
    try {
        static_cast<void>(io::read_hf_tokenizer(f.dir, c));
        FAIL("accepted");
    } catch (const format_error& e) {
        CHECK(std::string(e.what()).find("vocab_size 4000000000 is above the limit of 16777216") != std::string::npos);
    }
}

TEST_CASE("convert hf: --type f16, bf16 and q8_0; vectors stay f32") {
    const test::scratch_dir dir;
    const auto f = test::write_hf_fixture(dir.path / "m", "qwen2");
    for (const ggml_type type : {ggml_type::f16, ggml_type::bf16, ggml_type::q8_0}) {
        CAPTURE(info(type).name);
        const auto out = dir.path / "m.gguf";
        static_cast<void>(io::convert_hf(f.dir, out, type));
        const auto r = gguf::reader::open(out);
        CHECK(r.find_tensor("token_embd.weight")->type == type);
        CHECK(r.find_tensor("blk.0.attn_norm.weight")->type == ggml_type::f32);
        CHECK(r.find_tensor("blk.0.attn_q.bias")->type == ggml_type::f32);
        CHECK(r.find("general.file_type")->as<std::uint32_t>() == static_cast<std::uint32_t>(file_type_for(type)));
        if (type == ggml_type::bf16) {
            // bf16 in, bf16 out: the same bits.
            const auto bytes = r.tensor_data(*r.find_tensor("blk.0.ffn_up.weight"));
            const auto& raw = f.tensors.at("model.layers.0.mlp.up_proj.weight").bytes;
            CHECK(std::equal(bytes.begin(), bytes.end(), raw.begin(), raw.end()));
        }
    }
    CHECK_THROWS_AS(io::check_conversion_type(ggml_type::iq2_xxs), invalid_argument_error);
}

TEST_CASE("convert hf: inconsistent folders are refused with the file and the reason, and nothing is written") {
    const test::scratch_dir dir;
    const auto out = dir.path / "out.gguf";
    const auto check = [&](const std::string& arch, auto&& spoil, const std::string& file, const std::string& reason) {
        CAPTURE(reason);
        const auto folder = dir.path / "f";
        std::filesystem::remove_all(folder);
        std::filesystem::remove(out);
        static_cast<void>(test::write_hf_fixture(folder, arch));
        spoil(folder);
        const std::string message = convert_refusal(folder, out);
        CHECK_MESSAGE(message.find(file) != std::string::npos, message);
        CHECK_MESSAGE(message.find(reason) != std::string::npos, message);
        CHECK_FALSE(std::filesystem::exists(out));
        CHECK(io::no_partial_output_of(out));
    };
    check(
            "llama", [](const auto& d) { replace_in(d / "config.json", "\"hidden_size\": 64", "\"hidden_size\": 128"); },
            "model.embed_tokens.weight", "is [622, 64], config.json makes it [622, 128]");
    check(
            "qwen2", [](const auto& d) { replace_in(d / "config.json", "\"intermediate_size\": 128", "\"intermediate_size\": 96"); },
            "mlp.gate_proj.weight", "config.json makes it [96, 64]");
    check(
            "qwen3", [](const auto& d) { replace_in(d / "config.json", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"); }, "f'",
            "has no tensor 'model.layers.2.input_layernorm.weight'");
    check(
            "qwen3", [](const auto& d) { replace_in(d / "config.json", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1"); }, "f'",
            "is not part of the qwen3 architecture with 1 layers");
    check(
            "qwen2", [](const auto& d) { replace_in(d / "config.json", "Qwen2ForCausalLM", "GPT2LMHeadModel"); }, "config.json",
            "unknown architecture GPT2LMHeadModel");
    check(
            "qwen2",
            [](const auto& d) {
                replace_in(d / "config.json", "\"architectures\": [\"Qwen2ForCausalLM\"],\n  \"model_type\": \"qwen2\"",
                           "\"model_type\": \"gpt2\"");
            },
            "config.json", "LlamaForCausalLM (llama), MistralForCausalLM (llama), Qwen2ForCausalLM (qwen2), Qwen3ForCausalLM (qwen3)");
    check(
            "qwen2",
            [](const auto& d) { replace_in(d / "config.json", "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false"); }, "f'",
            "no lm_head.weight");
    check(
            "llama", [](const auto& d) { replace_in(d / "config.json", "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3"); },
            "config.json", "\"num_key_value_heads\" (3) does not divide num_attention_heads 4");
    check(
            "llama", [](const auto& d) { replace_in(d / "config.json", "\"rope_type\": \"llama3\"", "\"rope_type\": \"yarn\""); },
            "config.json", "rope_type \"yarn\"");
    check(
            "qwen2",
            [](const auto& d) {
                replace_in(d / "config.json", "\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}");
            },
            "config.json", "rope scaling of llama models only");
    check(
            "llama", [](const auto& d) { replace_in(d / "config.json", "\"vocab_size\": 622", "\"vocab_size\": \"622\""); }, "config.json",
            "\"vocab_size\" is not an integer");
    check(
            "llama", [](const auto& d) { replace_in(d / "tokenizer.json", "\"model\": {", "\"not_model\": {"); }, "tokenizer.json",
            "no \"model\" object");
    check(
            "llama", [](const auto& d) { replace_in(d / "tokenizer.json", "\"type\": \"BPE\"", "\"type\": \"WordPiece\""); },
            "tokenizer.json", "the model is WordPiece");
    check(
            "llama", [](const auto& d) { replace_in(d / "tokenizer.json", "\"byte_fallback\": false", "\"byte_fallback\": true"); },
            "tokenizer.json", "byte_fallback");
    check(
            "llama", [](const auto& d) { replace_in(d / "config.json", "\"vocab_size\": 622", "\"vocab_size\": 4000000000"); }, "f'",
            "config.json makes it [4000000000, 64]");
    check(
            "llama", [](const auto& d) { replace_in(d / "tokenizer.json", "\"merges\": [\"", "\"merges\": [7, \""); }, "tokenizer.json",
            "merge 0 is neither");
    check(
            "llama", [](const auto& d) { replace_in(d / "tokenizer_config.json", "<|end_of_text|>", "<|nope|>"); }, "tokenizer_config.json",
            "names '<|nope|>', which is no token of the vocabulary");
    check(
            "llama", [](const auto& d) { std::filesystem::remove(d / "model.safetensors"); }, "f'", "holds neither model.safetensors");
    check(
            "qwen3", [](const auto& d) { std::filesystem::remove(d / "model-00002-of-00002.safetensors"); }, "model.safetensors.index.json",
            "'model-00002-of-00002.safetensors', which is missing");
    check(
            "llama",
            [](const auto& d) {
                std::string s = read_all(d / "model.safetensors");
                s.resize(s.size() - 2);  // truncated
                test::write_text(d / "model.safetensors", s);
            },
            "model.safetensors", "out of range");
}
