// llama2.c import: the real stories260K checkpoint and tokenizer when ../shared has them, and hand-made
// files for shared/unshared classifiers and every malformed header or truncation.

#include <doctest/doctest.h>

#include <cogqat/io/llama2c.hpp>
#include <cogqat/model/synthetic.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "shared_data.hpp"

using namespace cogqat;

namespace {

/// A tiny llama2.c checkpoint: header then consecutive floats 0, 1, 2, ... (so every tensor is identifiable).
std::vector<std::byte> tiny_checkpoint(std::int32_t dim, std::int32_t hidden, std::int32_t layers, std::int32_t heads,
                                       std::int32_t kv_heads, std::int32_t vocab, std::int32_t seq_len) {
    std::vector<std::byte> bytes(28);
    const std::int32_t header[7] = {dim, hidden, layers, heads, kv_heads, vocab, seq_len};
    for (int i = 0; i < 7; ++i) store_le<std::int32_t>(bytes.data() + 4 * i, header[i]);
    const std::uint64_t v = static_cast<std::uint64_t>(vocab < 0 ? -vocab : vocab), d = static_cast<std::uint64_t>(dim),
                        h = static_cast<std::uint64_t>(hidden), l = static_cast<std::uint64_t>(layers);
    const std::uint64_t kv = d / static_cast<std::uint64_t>(heads) * static_cast<std::uint64_t>(kv_heads);
    const std::uint64_t floats = v * d + l * (d + d * d + 2 * kv * d + d * d + d + 3 * h * d) + d +
                                 static_cast<std::uint64_t>(seq_len) * d / static_cast<std::uint64_t>(heads) + (vocab < 0 ? v * d : 0);
    for (std::uint64_t i = 0; i < floats; ++i) {
        bytes.resize(bytes.size() + 4);
        store_le<float>(bytes.data() + bytes.size() - 4, static_cast<float>(i));
    }
    return bytes;
}

std::vector<std::byte> tokenizer_file(const std::vector<std::string>& pieces) {
    std::vector<std::byte> bytes(4);
    store_le<std::int32_t>(bytes.data(), 8);
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        const std::size_t at = bytes.size();
        bytes.resize(at + 8 + pieces[i].size());
        store_le<float>(bytes.data() + at, -static_cast<float>(i));
        store_le<std::int32_t>(bytes.data() + at + 4, static_cast<std::int32_t>(pieces[i].size()));
        std::memcpy(bytes.data() + at + 8, pieces[i].data(), pieces[i].size());
    }
    return bytes;
}

const float_tensor& find(const llama_weights& w, const std::string& name) {
    for (const auto& t : w.tensors)
        if (t.name == name) return t;
    FAIL("no tensor " << name);
    throw;
}

}  // namespace

TEST_CASE("llama2.c checkpoints: tensors named, shaped and ordered as GGUF's llama") {
    for (const bool shared : {true, false}) {
        CAPTURE(shared);
        const auto bytes = tiny_checkpoint(8, 12, 2, 2, 1, shared ? 5 : -5, 4);
        const auto w = io::parse_llama2c_checkpoint(bytes);
        CHECK(w.config.dim == 8);
        CHECK(w.config.kv_dim() == 4);
        CHECK(w.config.vocab_size == 5);
        CHECK(w.tensors.size() == (shared ? 2u : 3u) + 2 * 9);
        CHECK(w.tensors[0].name == "token_embd.weight");
        CHECK(w.tensors[0].shape == std::vector<std::uint64_t>{8, 5});
        CHECK(w.tensors[0].values.front() == 0.0f);
        CHECK(find(w, "blk.0.attn_k.weight").shape == std::vector<std::uint64_t>{8, 4});
        CHECK(find(w, "blk.1.ffn_down.weight").shape == std::vector<std::uint64_t>{12, 8});
        CHECK(find(w, "blk.1.ffn_gate.weight").shape == std::vector<std::uint64_t>{8, 12});
        // The first layer's attention norm follows the embedding; the second layer's follows the first's.
        CHECK(find(w, "blk.0.attn_norm.weight").values.front() == 40.0f);
        CHECK(find(w, "blk.1.attn_norm.weight").values.front() == 48.0f);
        CHECK(find(w, "blk.0.attn_q.weight").values.front() == 56.0f);
        if (!shared) {
            // The separate classifier is the last block of the file, after the RoPE tables.
            CHECK(find(w, "output.weight").values.size() == 40);
            CHECK(find(w, "output.weight").values.back() == static_cast<float>(bytes.size() / 4 - 7 - 1));
        }
    }
}

TEST_CASE("malformed llama2.c checkpoints are refused with the reason") {
    auto expect = [](std::vector<std::byte> bytes, const char* phrase) {
        CHECK_THROWS_WITH_AS((void)io::parse_llama2c_checkpoint(bytes, "model.bin"), doctest::Contains(phrase), format_error);
    };
    const auto good = tiny_checkpoint(8, 12, 2, 2, 1, 5, 4);
    expect({}, "truncated at byte 0 while reading dim");
    expect(std::vector<std::byte>(good.begin(), good.begin() + 20), "truncated at byte 20 while reading vocab_size");
    expect(std::vector<std::byte>(good.begin(), good.end() - 4), "(truncated)");
    auto longer = good;
    longer.resize(longer.size() + 8);
    expect(longer, "(trailing data");
    expect(tiny_checkpoint(8, 12, 2, 3, 1, 5, 4), "is not n_heads 3 times an even head size");
    expect(tiny_checkpoint(8, 12, 2, 2, 3, 5, 4), "n_heads 2 is not a multiple of n_kv_heads 3");
    auto negative = good;
    store_le<std::int32_t>(negative.data(), -8);
    expect(negative, "dim = -8 is out of range");
    auto huge = good;
    store_le<std::int32_t>(huge.data() + 8, 2000000000);
    expect(huge, "n_layers = 2000000000 is out of range");
    auto v1 = good;
    store_le<std::uint32_t>(v1.data(), 0x616b3432u);
    expect(v1, "version 1/2 export");
}

TEST_CASE("llama2.c tokenizers become SentencePiece vocabularies") {
    const auto v = io::parse_llama2c_tokenizer(tokenizer_file({"<unk>", "\n<s>\n", "\n</s>\n", "<0x0A>", " the", "cat"}), 6);
    CHECK(v.pieces == std::vector<std::string>{"<unk>", "<s>", "</s>", "<0x0A>", "\xE2\x96\x81the", "cat"});
    CHECK(v.kinds == std::vector<token_kind>{token_kind::unknown, token_kind::control, token_kind::control, token_kind::byte,
                                             token_kind::normal, token_kind::normal});
    CHECK(v.scores[4] == -4.0f);
    CHECK(v.bos_id == 1);
    CHECK(v.eos_id == 2);
    CHECK_THROWS_WITH_AS((void)io::parse_llama2c_tokenizer(tokenizer_file({"a", "b"}), 3, "tok.bin"),
                         doctest::Contains("truncated at byte 22 while reading token 2 score"), format_error);
    CHECK_THROWS_WITH_AS((void)io::parse_llama2c_tokenizer(tokenizer_file({"a", "b", "c"}), 2, "tok.bin"),
                         doctest::Contains("9 bytes left after 2 tokens"), format_error);
    auto bad_length = tokenizer_file({"a"});
    store_le<std::int32_t>(bad_length.data() + 8, 1 << 30);
    CHECK_THROWS_WITH_AS((void)io::parse_llama2c_tokenizer(bad_length, 1, "tok.bin"), doctest::Contains("token 0 has length 1073741824"),
                         format_error);
}

TEST_CASE("the shared stories260K checkpoint and tokenizer import as documented") {
    const auto dir = test::shared_dir() / "models" / "stories260K";
    if (!std::filesystem::exists(dir / "stories260K.bin")) {
        MESSAGE("skipped: " << dir.string() << " not found (set COGQAT_SHARED_DIR)");
        return;
    }
    const auto w = io::read_llama2c(dir / "stories260K.bin", dir / "tok512.bin");
    const auto& c = w.config;
    CHECK(c.dim == 64);
    CHECK(c.hidden_dim == 172);
    CHECK(c.n_layers == 5);
    CHECK(c.n_heads == 8);
    CHECK(c.n_kv_heads == 4);
    CHECK(c.vocab_size == 512);
    CHECK(c.context_length == 512);
    CHECK(w.tensors.size() == 2 + 5 * 9);  // shared classifier: no output.weight
    std::uint64_t parameters = 0;
    for (const auto& t : w.tensors) parameters += t.values.size();
    CHECK(parameters == 260032);
    CHECK(w.vocab.pieces[403] == "\xE2\x96\x81Once");
    CHECK(w.vocab.pieces[13] == "<0x0A>");
    CHECK(w.vocab.kinds[13] == token_kind::byte);
    CHECK(w.vocab.pieces[1] == "<s>");
}

TEST_CASE("the synthetic model has the documented shape and a byte vocabulary") {
    const auto w = make_synthetic_llama(3);
    CHECK(w.tensors.size() == 3 + 2 * 9);
    CHECK(w.vocab.pieces.size() == w.config.vocab_size);
    CHECK(w.vocab.pieces[3 + 'A'] == "<0x41>");
    CHECK(make_synthetic_llama(3).tensors[5].values == w.tensors[5].values);
    CHECK(make_synthetic_llama(4).tensors[5].values != w.tensors[5].values);
}
