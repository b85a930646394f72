#pragma once
// Small Hugging Face model folders written by the tests: config.json, tokenizer.json (a byte-level BPE of the
// 256 byte tokens, a few hundred merges built deterministically and the architecture's special tokens),
// tokenizer_config.json and random bf16 weights in safetensors, whole or in two shards. One per
// architecture: llama (Llama 3 rope scaling, untied classifier, GQA), qwen2 (q/k/v biases, tied
// embeddings), qwen3 (q/k norms, head_dim apart from the width, sharded).

#include <cogqat/core/float16.hpp>
#include <cogqat/core/little_endian.hpp>
#include <cogqat/io/hf_tokenizer.hpp>
#include <cogqat/io/sentencepiece_model.hpp>
#include <cogqat/model/architecture_schema.hpp>
#include <nlohmann/json.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cogqat::test {

/// A string as a JSON literal (nlohmann-json's escaping).
inline std::string json_quote(std::string_view s) { return nlohmann::json(std::string(s)).dump(); }

inline void write_text(const std::filesystem::path& path, std::string_view text) {
    std::ofstream(path, std::ios::binary).write(text.data(), static_cast<std::streamsize>(text.size()));
}

/// One tensor of a safetensors file the tests write: its raw element bytes.
struct raw_tensor {
    std::string dtype = "BF16";
    std::vector<std::uint64_t> shape;
    std::vector<std::byte> bytes;
};

/// A safetensors file's bytes: tensors in name order, offsets back to back, the header padded with spaces
/// to 8 bytes (as the safetensors library writes it).
inline std::vector<std::byte> safetensors_bytes(const std::map<std::string, raw_tensor>& tensors, std::string_view metadata = "") {
    std::string header = "{";
    if (!metadata.empty()) header += "\"__metadata__\":" + std::string(metadata) + ",";
    std::uint64_t offset = 0;
    bool first = true;
    for (const auto& [name, t] : tensors) {
        if (!first) header += ",";
        first = false;
        header += json_quote(name) + ":{\"dtype\":" + json_quote(t.dtype) + ",\"shape\":[";
        for (std::size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
        header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + t.bytes.size()) + "]}";
        offset += t.bytes.size();
    }
    header += "}";
    while (header.size() % 8 != 0) header += ' ';
    std::vector<std::byte> out(8);
    store_le<std::uint64_t>(out.data(), header.size());
    for (const char c : header) out.push_back(static_cast<std::byte>(c));
    for (const auto& [name, t] : tensors) out.insert(out.end(), t.bytes.begin(), t.bytes.end());
    return out;
}

inline void write_bytes(const std::filesystem::path& path, const std::vector<std::byte>& bytes) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

/// bf16 values as raw little-endian bytes.
inline std::vector<std::byte> bf16_bytes(const std::vector<std::uint16_t>& bits) {
    std::vector<std::byte> out(bits.size() * 2);
    for (std::size_t i = 0; i < bits.size(); ++i) store_le<std::uint16_t>(out.data() + 2 * i, bits[i]);
    return out;
}

/// GPT-2's byte-to-character map: printable bytes stand for themselves, the others for U+0100 onwards.
inline std::string byte_token(unsigned b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    unsigned cp = b;
    if (!printable) {
        unsigned n = 0;
        for (unsigned x = 0; x < b; ++x) {
            const bool p = (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
            if (!p) ++n;
        }
        cp = 256 + n;
    }
    std::string s;
    if (cp < 0x80) {
        s += static_cast<char>(cp);
    } else {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
}

/// A byte-level BPE: the 256 byte tokens (id = byte), then one token per merge, in merge order. The merges:
/// "Ġ" + each letter, each pair of 16 common letters, then each of those pairs + a vowel: 26 + 256 + 80.
struct bpe_vocabulary {
    std::vector<std::string> tokens;
    std::vector<std::pair<std::string, std::string>> merges;
};

inline bpe_vocabulary make_bpe_vocabulary() {
    bpe_vocabulary v;
    for (unsigned b = 0; b < 256; ++b) v.tokens.push_back(byte_token(b));
    const auto merge = [&](const std::string& a, const std::string& b) {
        v.merges.emplace_back(a, b);
        v.tokens.push_back(a + b);
    };
    const std::string space = byte_token(' ');
    for (char c = 'a'; c <= 'z'; ++c) merge(space, std::string(1, c));
    const std::string common = "etaoinshrdlucmfw";
    for (const char a : common)
        for (const char b : common) merge(std::string(1, a), std::string(1, b));
    const std::string vowels = "aeiou";
    for (std::size_t i = 0; i < 16; ++i)
        for (const char x : vowels) merge(std::string{common[i], common[(i * 7 + 3) % 16]}, std::string(1, x));
    return v;
}

/// A SentencePiece vocabulary in the shape of Llama 2's: <unk>, <s>, </s>, the 256 byte pieces, a user-defined
/// piece, then "▁" + each letter and each pair of 16 common letters, scored by rank.
inline std::vector<io::sentencepiece_piece> make_sentencepiece_pieces() {
    using type = io::sentencepiece_type;
    std::vector<io::sentencepiece_piece> p{{"<unk>", 0.0f, type::unknown}, {"<s>", 0.0f, type::control}, {"</s>", 0.0f, type::control}};
    const char* hex = "0123456789ABCDEF";
    for (unsigned b = 0; b < 256; ++b) p.push_back({std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", 0.0f, type::byte});
    p.push_back({"<|user|>", 0.0f, type::user_defined});
    const auto add = [&](std::string piece) { p.push_back({std::move(piece), -static_cast<float>(p.size()), type::normal}); };
    for (char c = 'a'; c <= 'z'; ++c) add("\xE2\x96\x81" + std::string(1, c));
    const std::string common = "etaoinshrdlucmfw";
    for (const char a : common)
        for (const char b : common) add(std::string{a, b});
    for (const char c : common) add(std::string(1, c));
    return p;
}

/// `pieces` as a serialized SentencePiece ModelProto, in protobuf's wire format: a trainer_spec (field 2) and a
/// normalizer_spec (field 3) around the pieces (field 1), which a reader must step over; a piece's type is
/// written only when it is not the default (normal).
inline std::vector<std::byte> sentencepiece_model_bytes(const std::vector<io::sentencepiece_piece>& pieces) {
    std::vector<std::byte> out;
    const auto varint = [](std::vector<std::byte>& to, std::uint64_t v) {
        for (; v >= 0x80; v >>= 7) to.push_back(static_cast<std::byte>((v & 0x7f) | 0x80));
        to.push_back(static_cast<std::byte>(v));
    };
    const auto bytes = [&](std::vector<std::byte>& to, std::uint32_t field, const std::vector<std::byte>& body) {
        varint(to, field << 3 | 2);
        varint(to, body.size());
        to.insert(to.end(), body.begin(), body.end());
    };
    const auto text = [](std::string_view s) {
        std::vector<std::byte> b;
        for (const char c : s) b.push_back(static_cast<std::byte>(c));
        return b;
    };
    std::vector<std::byte> trainer;  // model_type BPE (3: 2), vocab_size (4), model_prefix (2)
    varint(trainer, 3 << 3 | 0), varint(trainer, 2), varint(trainer, 4 << 3 | 0), varint(trainer, pieces.size());
    bytes(trainer, 2, text("fixture"));
    bytes(out, 2, trainer);
    for (const auto& p : pieces) {
        std::vector<std::byte> piece;
        bytes(piece, 1, text(p.piece));
        varint(piece, 2 << 3 | 5);
        const auto bits = std::bit_cast<std::uint32_t>(p.score);
        for (int i = 0; i < 4; ++i) piece.push_back(static_cast<std::byte>(bits >> (8 * i)));
        if (p.type != io::sentencepiece_type::normal) varint(piece, 3 << 3 | 0), varint(piece, static_cast<std::uint64_t>(p.type));
        bytes(out, 1, piece);
    }
    std::vector<std::byte> normalizer;  // name (1), add_dummy_prefix (3)
    bytes(normalizer, 1, text("identity"));
    varint(normalizer, 3 << 3 | 0), varint(normalizer, 1);
    bytes(out, 3, normalizer);
    return out;
}

/// Deterministic pseudo-random numbers in [-1, 1).
struct fixture_random {
    std::uint64_t state;
    float next() {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<float>(static_cast<double>(state >> 40) / static_cast<double>(1ULL << 23) - 1.0);
    }
};

/// What a fixture folder holds, for the checks.
struct hf_fixture {
    std::filesystem::path dir;
    std::string architecture;
    architecture_config sizes;
    bool tied = false;
    std::map<std::string, raw_tensor> tensors;  ///< by Hugging Face name
    std::vector<std::string> added;             ///< added tokens, from id tokens.size() - added.size()
    std::size_t token_count = 0;                ///< tokens in tokenizer.json (below vocab_size: padded)
};

/// Writes the fixture of `architecture` ("llama", "mistral", "qwen2", "qwen3", or "llama-spm": a Llama 2-style
/// llama with a SentencePiece tokenizer.model) into `dir` (created); `shape`, when
/// given, replaces the small default sizes (its vocab at least the tokenizer's 622 tokens), for timing
/// conversions of model-sized folders.
inline hf_fixture write_hf_fixture(const std::filesystem::path& dir, std::string_view architecture, std::uint64_t seed = 1,
                                   const architecture_config* shape = nullptr) {
    std::filesystem::create_directories(dir);
    hf_fixture f;
    f.dir = dir;
    f.architecture = architecture;
    // "mistral" is a llama without rope scaling, named MistralForCausalLM, whose pre-tokenizer is the default.
    const bool spm = architecture == "llama-spm";
    const bool mistral = architecture == "mistral", llama3 = architecture == "llama", llama = llama3 || mistral || spm;
    const bool qwen3 = architecture == "qwen3";
    const bpe_vocabulary bpe = make_bpe_vocabulary();
    const auto pieces = make_sentencepiece_pieces();
    f.added = spm     ? std::vector<std::string>{"<|extra|>", "\xE2\x96\x81<think>"}
              : llama ? std::vector<std::string>{"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<think>"}
                      : std::vector<std::string>{"<|endoftext|>", "<|im_start|>", "<|im_end|>", "\xE2\x96\x81<think>"};
    f.token_count = (spm ? pieces.size() : bpe.tokens.size()) + f.added.size();
    auto& s = f.sizes;
    s.hidden = 64;
    s.feed_forward = 128;
    s.layers = 2;
    s.heads = 4;
    s.kv_heads = 2;
    s.head_dim = qwen3 ? 32 : 16;
    s.vocab = spm     ? static_cast<std::uint32_t>(f.token_count + 3)  // three ids without a piece: "[PADi]"
              : llama ? static_cast<std::uint32_t>(f.token_count)
                      : static_cast<std::uint32_t>((f.token_count + 63) / 64 * 64);
    s.context_length = 256;
    if (shape != nullptr) s = *shape;
    f.tied = architecture == "qwen2";

    // config.json
    const std::string hf_class = mistral ? "MistralForCausalLM"
                                 : llama ? "LlamaForCausalLM"
                                 : qwen3 ? "Qwen3ForCausalLM"
                                         : "Qwen2ForCausalLM";
    const std::size_t first_added = spm ? 1 : bpe.tokens.size();  // SentencePiece's BOS and EOS are <s> and </s>
    std::string config =
            "{\n  \"architectures\": [" + json_quote(hf_class) + "],\n  \"model_type\": " + json_quote(spm ? "llama" : architecture) +
            ",\n  \"hidden_size\": " + std::to_string(s.hidden) + ",\n  \"intermediate_size\": " + std::to_string(s.feed_forward) +
            ",\n  \"num_hidden_layers\": " + std::to_string(s.layers) + ",\n  \"num_attention_heads\": " + std::to_string(s.heads) +
            ",\n  \"num_key_value_heads\": " + std::to_string(s.kv_heads) +
            ",\n  \"max_position_embeddings\": " + std::to_string(s.context_length) + ",\n  \"vocab_size\": " + std::to_string(s.vocab) +
            ",\n  \"rms_norm_eps\": 1e-06,\n  \"tie_word_embeddings\": " + (f.tied ? "true" : "false") +
            ",\n  \"torch_dtype\": \"bfloat16\",\n  \"bos_token_id\": " + std::to_string(first_added) +
            ",\n  \"eos_token_id\": " + std::to_string(first_added + (llama ? 1 : 2));
    if (llama3)
        config +=
                ",\n  \"rope_theta\": 500000.0,\n  \"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": "
                "4.0, "
                "\"original_max_position_embeddings\": 64, \"rope_type\": \"llama3\"}";
    else
        config += ",\n  \"rope_theta\": 1000000.0,\n  \"rope_scaling\": null";
    if (qwen3) config += ",\n  \"head_dim\": " + std::to_string(s.head_dim);
    write_text(dir / "config.json", config + "\n}\n");

    if (spm) {
        // tokenizer.model, and tokenizer_config.json's added tokens: <unk>, <s> and </s> again (special), one
        // special token past the pieces, and a user-defined one whose U+2581 the converter writes as a space.
        write_bytes(dir / "tokenizer.model", sentencepiece_model_bytes(pieces));
        std::string decoder;
        const auto entry = [&](std::size_t id, std::string_view content, bool special) {
            decoder += std::string(decoder.empty() ? "" : ",\n    ") + json_quote(std::to_string(id)) +
                       ": {\"content\": " + json_quote(content) +
                       ", \"lstrip\": false, \"normalized\": false, \"rstrip\": false, \"single_word\": false, " +
                       "\"special\": " + (special ? "true" : "false") + "}";
        };
        entry(0, "<unk>", true);
        entry(1, "<s>", true);
        entry(2, "</s>", true);
        entry(pieces.size(), f.added[0], true);
        entry(pieces.size() + 1, f.added[1], false);
        write_text(dir / "tokenizer_config.json",
                   "{\n  \"add_bos_token\": true,\n  \"add_eos_token\": false,\n  \"added_tokens_decoder\": {\n    " + decoder +
                           "\n  },\n  \"bos_token\": \"<s>\",\n  \"eos_token\": \"</s>\",\n  \"unk_token\": "
                           "\"<unk>\",\n  \"model_max_length\": 256\n}\n");
    } else {
        // tokenizer.json: llama's merges in the "a b" form, the Qwens' in the pair form.
        std::string tok = "{\n  \"version\": \"1.0\",\n  \"added_tokens\": [";
        for (std::size_t i = 0; i < f.added.size(); ++i) {
            const bool special = i < 3;  // the fourth is an ordinary added token
            tok += std::string(i ? "," : "") + "\n    {\"id\": " + std::to_string(first_added + i) +
                   ", \"content\": " + json_quote(f.added[i]) +
                   ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": " +
                   (special ? "true" : "false") + "}";
        }
        tok += "\n  ],\n  \"normalizer\": null,\n  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
               "\"pattern\": {\"Regex\": " +
               json_quote(llama3 ? io::llama3_split_pattern
                                 : "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                                   "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+") +
               "}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
               "\"trim_offsets\": "
               "true, "
               "\"use_regex\": false}]},\n";
        if (llama)
            tok += "  \"post_processor\": {\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\", \"add_prefix_space\": true, "
                   "\"trim_offsets\": false, \"use_regex\": true}, {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": "
                   "{\"id\": "
                   "\"<|begin_of_text|>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"pair\": [], "
                   "\"special_tokens\": {}}]},\n";
        tok += "  \"decoder\": {\"type\": \"ByteLevel\"},\n  \"model\": {\n    \"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, "
               "\"byte_fallback\": false, \"ignore_merges\": " +
               std::string(llama ? "true" : "false") + ",\n    \"vocab\": {";
        for (std::size_t i = 0; i < bpe.tokens.size(); ++i)
            tok += std::string(i ? ", " : "") + json_quote(bpe.tokens[i]) + ": " + std::to_string(i);
        tok += "},\n    \"merges\": [";
        for (std::size_t i = 0; i < bpe.merges.size(); ++i) {
            const auto& [a, b] = bpe.merges[i];
            tok += std::string(i ? ", " : "") + (llama ? json_quote(a + " " + b) : "[" + json_quote(a) + ", " + json_quote(b) + "]");
        }
        write_text(dir / "tokenizer.json", tok + "]\n  }\n}\n");

        std::string tc = "{\n  \"add_prefix_space\": false,\n";
        if (llama)
            tc += "  \"bos_token\": \"<|begin_of_text|>\",\n  \"eos_token\": \"<|end_of_text|>\",\n";
        else
            tc += "  \"add_bos_token\": false,\n  \"bos_token\": null,\n  \"eos_token\": {\"content\": \"<|im_end|>\", \"special\": "
                  "true},\n"
                  "  \"pad_token\": \"<|endoftext|>\",\n";
        write_text(dir / "tokenizer_config.json", tc + "  \"chat_template\": \"{{ messages }}\",\n  \"model_max_length\": 256\n}\n");
    }

    // Weights: matrices uniform in [-0.125, 0.125), norms near 1, as bf16.
    fixture_random random{seed};
    const auto* schema = find_architecture(spm ? "llama" : architecture);
    const auto add = [&](const hf_tensor_schema& t, std::size_t layer) {
        if (t.optional && f.tied) return;
        raw_tensor r;
        r.shape = t.hf_shape(s);
        std::uint64_t n = 1;
        for (auto d : r.shape) n *= d;
        std::vector<std::uint16_t> bits(n);
        const bool norm = t.gguf_name.find("norm") != std::string_view::npos;
        for (auto& b : bits) b = fp32_to_bf16_bits(norm ? 1.0f + 0.25f * random.next() : 0.125f * random.next());
        r.bytes = bf16_bytes(bits);
        f.tensors.emplace(t.hf_tensor_name(layer), std::move(r));
    };
    for (const auto& t : schema->tensors)
        if (!t.per_layer) add(t, 0);
    for (std::size_t l = 0; l < s.layers; ++l)
        for (const auto& t : schema->tensors)
            if (t.per_layer) add(t, l);
    if (!qwen3) {
        write_bytes(dir / "model.safetensors", safetensors_bytes(f.tensors, R"({"format":"pt"})"));
    } else {
        // Two shards: layer 1 in the second, everything else in the first.
        std::map<std::string, raw_tensor> one, two;
        std::string weight_map;
        for (const auto& [name, t] : f.tensors) {
            const bool second = name.starts_with("model.layers.1.");
            (second ? two : one).emplace(name, t);
            weight_map += std::string(weight_map.empty() ? "" : ",\n    ") + json_quote(name) + ": " +
                          json_quote(second ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors");
        }
        write_bytes(dir / "model-00001-of-00002.safetensors", safetensors_bytes(one, R"({"format":"pt"})"));
        write_bytes(dir / "model-00002-of-00002.safetensors", safetensors_bytes(two, R"({"format":"pt"})"));
        write_text(dir / "model.safetensors.index.json",
                   "{\n  \"metadata\": {\"total_size\": 0},\n  \"weight_map\": {\n    " + weight_map + "\n  }\n}\n");
    }
    return f;
}

}  // namespace cogqat::test
