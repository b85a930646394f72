#pragma once
// Import of llama2.c checkpoints (the legacy "version 0" export, shared or separate classifier) and of
// llama2.c tokenizer files (tok*.bin) into llama_weights, named and shaped as GGUF's llama architecture.

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/little_endian.hpp"
#include "cogqat/io/byte_cursor.hpp"
#include "cogqat/io/file.hpp"
#include "cogqat/model/llama_schema.hpp"
#include "cogqat/model/llama_weights.hpp"

namespace cogqat::io {

namespace detail {

inline std::uint32_t positive_field(std::int32_t v, std::string_view name, std::uint32_t limit, const std::string& source) {
    if (v <= 0 || static_cast<std::uint32_t>(v) > limit) {
        throw format_error(source + ": header field " + std::string(name) + " = " + std::to_string(v) + " is out of range (1.." +
                           std::to_string(limit) + ")");
    }
    return static_cast<std::uint32_t>(v);
}

}  // namespace detail

/// Parses a llama2.c version-0 checkpoint: a header of seven int32 (dim, hidden_dim, n_layers, n_heads,
/// n_kv_heads, vocab_size, seq_len; a negative vocab_size means a separate classifier follows) and the
/// float32 tensors. The file must be exactly the size the header implies. The vocabulary is left empty.
[[nodiscard]] inline llama_weights parse_llama2c_checkpoint(std::span<const std::byte> bytes, const std::string& source = "checkpoint") {
    byte_cursor in(bytes, source);
    if (bytes.size() >= 4 && load_le<std::uint32_t>(bytes.data()) == 0x616b3432u) {
        throw format_error(source + ": a llama2.c version 1/2 export (magic \"ak42\"); only the legacy version-0 export is supported");
    }
    const std::int32_t raw_dim = in.read<std::int32_t>("dim");
    const std::int32_t raw_hidden = in.read<std::int32_t>("hidden_dim");
    const std::int32_t raw_layers = in.read<std::int32_t>("n_layers");
    const std::int32_t raw_heads = in.read<std::int32_t>("n_heads");
    const std::int32_t raw_kv_heads = in.read<std::int32_t>("n_kv_heads");
    const std::int32_t raw_vocab = in.read<std::int32_t>("vocab_size");
    const std::int32_t raw_seq_len = in.read<std::int32_t>("seq_len");

    llama_config c;
    c.dim = detail::positive_field(raw_dim, "dim", 1u << 16, source);
    c.hidden_dim = detail::positive_field(raw_hidden, "hidden_dim", 1u << 18, source);
    c.n_layers = detail::positive_field(raw_layers, "n_layers", 1024, source);
    c.n_heads = detail::positive_field(raw_heads, "n_heads", 1024, source);
    c.n_kv_heads = detail::positive_field(raw_kv_heads, "n_kv_heads", 1024, source);
    if (raw_vocab == std::numeric_limits<std::int32_t>::min()) throw format_error(source + ": vocab_size is out of range");
    const bool shared_classifier = raw_vocab > 0;
    c.vocab_size = detail::positive_field(raw_vocab < 0 ? -raw_vocab : raw_vocab, "vocab_size", 1u << 22, source);
    c.context_length = detail::positive_field(raw_seq_len, "seq_len", 1u << 22, source);
    if (c.dim % c.n_heads != 0 || c.head_size() % 2 != 0) {
        throw format_error(source + ": dim " + std::to_string(c.dim) + " is not n_heads " + std::to_string(c.n_heads) +
                           " times an even head size");
    }
    if (c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads != 0) {
        throw format_error(source + ": n_heads " + std::to_string(c.n_heads) + " is not a multiple of n_kv_heads " +
                           std::to_string(c.n_kv_heads));
    }

    // Every count below fits in 64 bits thanks to the limits above.
    const std::uint64_t layers = c.n_layers;
    const std::uint64_t rope_table = std::uint64_t{c.context_length} * c.head_size() / 2;
    std::uint64_t floats = 2 * rope_table;
    for (const auto& t : llama_tensors)
        if (t.present_in(c, shared_classifier)) floats += t.elements(c) * (t.per_layer ? layers : 1);
    const std::uint64_t expected = 28 + 4 * floats;
    if (bytes.size() != expected) {
        throw format_error(source + ": the header implies " + std::to_string(expected) + " bytes, the file has " +
                           std::to_string(bytes.size()) +
                           (bytes.size() < expected ? " (truncated)" : " (trailing data or a different format)"));
    }

    auto read_floats = [&](std::uint64_t n, std::string_view what) {
        const auto raw = in.take(static_cast<std::size_t>(n * 4), what);
        std::vector<float> v(static_cast<std::size_t>(n));
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = load_le<float>(raw.data() + 4 * i);
        return v;
    };
    // values[parameter][layer]; llama2.c stores each kind of weight for all layers together, in this order
    // and under these names, then the legacy RoPE tables, then the classifier.
    std::array<std::vector<std::vector<float>>, llama_tensors.size()> values;
    auto read = [&](llama_parameter parameter, std::string_view what) {
        const tensor_schema& t = llama_tensor(parameter);
        const std::uint64_t count = t.per_layer ? layers : 1, per = t.elements(c);
        const auto all = read_floats(per * count, what);
        auto& slots = values[static_cast<std::size_t>(parameter)];
        for (std::uint64_t l = 0; l < count; ++l)
            slots.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(l * per),
                               all.begin() + static_cast<std::ptrdiff_t>((l + 1) * per));
    };
    using enum llama_parameter;
    for (const auto& [parameter, what] : {std::pair{token_embedding, "token_embedding"},
                                          {attn_norm, "rms_att_weight"},
                                          {wq, "wq"},
                                          {wk, "wk"},
                                          {wv, "wv"},
                                          {wo, "wo"},
                                          {ffn_norm, "rms_ffn_weight"},
                                          {gate, "w1"},
                                          {down, "w2"},
                                          {up, "w3"},
                                          {output_norm, "rms_final_weight"}})
        read(parameter, what);
    (void)in.take(static_cast<std::size_t>(2 * rope_table * 4), "freq_cis tables");  // recomputed at run time
    if (!shared_classifier) read(output, "wcls");

    llama_weights w;
    w.config = c;
    for_each_llama_tensor(c, shared_classifier, [&](const tensor_schema& t, std::size_t layer) {
        auto& v = values[static_cast<std::size_t>(t.parameter)][layer == no_layer ? 0 : layer];
        w.tensors.push_back({t.gguf_name(layer), t.gguf_shape(c), std::move(v)});
    });
    return w;
}

/// Parses a llama2.c tokenizer (int32 max_token_length, then per token: float32 score, int32 length, bytes)
/// for `vocab_size` tokens, into GGUF's SentencePiece conventions: spaces become U+2581, "<0xHH>" pieces
/// are byte tokens, "<unk>" is the unknown token and "<s>"/"</s>" (stored as "\n<s>\n") are control tokens.
[[nodiscard]] inline vocabulary parse_llama2c_tokenizer(std::span<const std::byte> bytes, std::uint32_t vocab_size,
                                                        const std::string& source = "tokenizer") {
    byte_cursor in(bytes, source);
    const auto max_length = in.read<std::int32_t>("max_token_length");
    if (max_length <= 0 || max_length > 4096)
        throw format_error(source + ": max_token_length " + std::to_string(max_length) + " is out of range");
    vocabulary v;
    v.pieces.reserve(vocab_size);
    for (std::uint32_t id = 0; id < vocab_size; ++id) {
        const std::string which = "token " + std::to_string(id);
        const float score = in.read<float>(which + " score");
        const auto length = in.read<std::int32_t>(which + " length");
        if (length < 0 || length > max_length) {
            throw format_error(source + ": " + which + " has length " + std::to_string(length) + " (max_token_length " +
                               std::to_string(max_length) + ")");
        }
        const auto raw = in.take(static_cast<std::size_t>(length), which + " bytes");
        std::string piece(reinterpret_cast<const char*>(raw.data()), raw.size());
        token_kind kind = token_kind::normal;
        std::string trimmed = piece;
        while (!trimmed.empty() && trimmed.front() == '\n') trimmed.erase(trimmed.begin());
        while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
        if (trimmed == "<unk>") {
            kind = token_kind::unknown;
            piece = trimmed;
            v.unknown_id = id;
        } else if (trimmed == "<s>" || trimmed == "</s>") {
            kind = token_kind::control;
            piece = trimmed;
            (trimmed == "<s>" ? v.bos_id : v.eos_id) = id;
        } else if (piece.size() == 6 && piece.starts_with("<0x") && piece.back() == '>') {
            kind = token_kind::byte;
        } else {
            std::string spaced;
            for (char ch : piece) spaced += ch == ' ' ? std::string("\xE2\x96\x81") : std::string(1, ch);
            piece = std::move(spaced);
        }
        v.pieces.push_back(std::move(piece));
        v.scores.push_back(score);
        v.kinds.push_back(kind);
    }
    if (in.remaining() != 0) {
        throw format_error(source + ": " + std::to_string(in.remaining()) + " bytes left after " + std::to_string(vocab_size) +
                           " tokens (a tokenizer for a different vocabulary size?)");
    }
    return v;
}

/// Reads a checkpoint and its tokenizer from files.
[[nodiscard]] inline llama_weights read_llama2c(const std::filesystem::path& checkpoint, const std::filesystem::path& tokenizer) {
    auto w = parse_llama2c_checkpoint(read_file(checkpoint), checkpoint.string());
    w.vocab = parse_llama2c_tokenizer(read_file(tokenizer), w.config.vocab_size, tokenizer.string());
    w.name = checkpoint.stem().string();
    return w;
}

}  // namespace cogqat::io
