#pragma once
// A Hugging Face folder's tokenizer, read into the GGUF tokenizer keys llama.cpp's converter writes for it: one
// token per id up to config.json's vocab_size, their types, the special token ids and whether BOS/EOS are added;
// and either
// - a SentencePiece model (tokenizer.model; Llama 2, TinyLlama, Mistral v0.1-v0.3): tokenizer.ggml.model "llama"
//   with the pieces' scores, as the converter's first choice when the file is there; or
// - a byte-level BPE (tokenizer.json): tokenizer.ggml.model "gpt2", the merges and the pre-tokenizer's name.
// Inconsistent files are refused with the file and the reason.

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/io/hf_config.hpp"
#include "cogqat/io/json.hpp"
#include "cogqat/io/sentencepiece_model.hpp"

namespace cogqat::io {

/// GGUF's token types (llama.cpp's llama_token_type).
enum class hf_token_type : std::int32_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

/// The tokenizer keys of a converted model.
struct hf_tokenizer {
    std::string model = "gpt2";       ///< tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece)
    std::vector<std::string> tokens;  ///< tokenizer.ggml.tokens, config.json's vocab_size of them
    std::vector<std::int32_t> types;  ///< tokenizer.ggml.token_type
    std::vector<float> scores;        ///< tokenizer.ggml.scores (SentencePiece only)
    std::vector<std::string> merges;  ///< tokenizer.ggml.merges, "left right" (BPE only)
    std::string pre;                  ///< tokenizer.ggml.pre
    std::optional<std::uint32_t> bos_id, eos_id, unknown_id, padding_id;
    std::optional<bool> add_bos, add_eos;
    std::optional<std::string> chat_template;
};

/// The largest vocab_size read (the largest vocabularies in use have about 256K tokens): a token is
/// allocated per id, so a hostile config.json must not ask for billions.
inline constexpr std::uint32_t max_hf_vocabulary = 1u << 24;

/// Llama 3's pre-tokenizer split pattern, which tokenizer.json carries in its "Split" pre-tokenizer.
inline constexpr std::string_view llama3_split_pattern =
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
        "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

namespace detail {

/// Whether tokenizer.json's pre_tokenizer (or one in its Sequence) splits with `pattern`.
[[nodiscard]] inline bool splits_with(const json_value* pre, std::string_view pattern) {
    if (pre == nullptr || !pre->is_object()) return false;
    if (const json_value* list = pre->find("pretokenizers"))
        for (const auto& p : list->elements())
            if (splits_with(&p, pattern)) return true;
    const json_value* type = pre->find("type");
    if (type == nullptr || type->as_string() == nullptr || *type->as_string() != "Split") return false;
    const json_value* p = pre->find("pattern");
    const json_value* regex = p == nullptr ? nullptr : p->find("Regex");
    return regex != nullptr && regex->as_string() != nullptr && *regex->as_string() == pattern;
}

/// llama.cpp's converter names the pre-tokenizer from a hash of a test text's tokenization; cogqat names it
/// from what that hash stands for: qwen2 and qwen3 models are "qwen2"; a llama model whose tokenizer.json
/// splits with Llama 3's pattern is "llama-bpe"; any other is "default".
[[nodiscard]] inline std::string pre_tokenizer_name(const architecture_schema& arch, const json_value& tokenizer) {
    if (arch.name == "qwen2" || arch.name == "qwen3") return "qwen2";
    if (splits_with(tokenizer.find("pre_tokenizer"), llama3_split_pattern)) return "llama-bpe";
    return "default";
}

/// llama.cpp's converter types an added token CONTROL when it is special or looks special ("<|...|>").
[[nodiscard]] inline bool looks_special(std::string_view t) {
    return t == "<pad>" || t == "<mask>" || (t.starts_with("<|") && t.ends_with("|>")) ||
           (t.starts_with("<\xEF\xBD\x9C") && t.ends_with("\xEF\xBD\x9C>")) || (t.starts_with("<unused") && t.ends_with(">"));
}

/// A merge in the "left right" form GGUF stores. The pair form ["a b", "c"] (transformers 4.45 and later)
/// may hold spaces, which llama.cpp's converter writes as U+0120 so that the one space still separates.
[[nodiscard]] inline std::string merge_string(const json_value& m, const std::string& file, std::size_t index) {
    if (const std::string* s = m.as_string()) return *s;
    const auto& e = m.elements();
    if (!m.is_array() || e.size() != 2 || e[0].as_string() == nullptr || e[1].as_string() == nullptr)
        throw format_error("'" + file + "': merge " + std::to_string(index) + " is neither \"a b\" nor [\"a\", \"b\"]");
    std::string out;
    for (std::size_t part = 0; part < 2; ++part) {
        if (part == 1) out += ' ';
        for (const char c : *e[part].as_string()) {
            if (c == ' ')
                out += "\xC4\xA0";  // U+0120
            else
                out += c;
        }
    }
    return out;
}

/// A special token of tokenizer_config.json: a string or {"content": string}; nullptr when absent or null.
[[nodiscard]] inline const std::string* special_content(const json_value* entry) {
    if (entry == nullptr) return nullptr;
    if (const std::string* s = entry->as_string()) return s;
    const json_value* content = entry->is_object() ? entry->find("content") : nullptr;
    return content == nullptr ? nullptr : content->as_string();
}

}  // namespace detail

/// The special tokens: tokenizer.json's post-processor template says whether BOS and EOS are added;
/// tokenizer_config.json names the tokens (their ids found among the added tokens) and may say so too; config.json's
/// ids fill what is still unset. As llama.cpp's converter (its SpecialVocab) does.
inline void read_special_tokens(const std::filesystem::path& dir, const json_value& tokenizer, const hf_model_config& c, hf_tokenizer& t) {
    const json_value* added = tokenizer.find("added_tokens");
    const auto added_id = [&](const std::string& content) -> std::optional<std::uint32_t> {
        if (added == nullptr) return std::nullopt;
        for (const auto& a : added->elements())
            if (const std::string* s = detail::special_content(&a); s != nullptr && *s == content)
                return static_cast<std::uint32_t>(*a.find("id")->as_uint());
        return std::nullopt;
    };

    std::optional<std::string> template_first, template_last;
    if (const json_value* post = tokenizer.find("post_processor"); post != nullptr && post->is_object()) {
        std::vector<const json_value*> processors{post};
        if (const json_value* list = post->find("processors"); list != nullptr && list->is_array()) {
            processors.clear();
            for (const auto& p : list->elements()) processors.push_back(&p);
        }
        for (const json_value* p : processors) {
            const json_value* type = p->find("type");
            if (type == nullptr || type->as_string() == nullptr || *type->as_string() != "TemplateProcessing") continue;
            const json_value* single = p->find("single");
            if (single == nullptr || single->elements().size() < 2) continue;
            const auto special_id = [](const json_value& piece) -> std::optional<std::string> {
                const json_value* s = piece.find("SpecialToken");
                const json_value* id = s == nullptr ? nullptr : s->find("id");
                if (id == nullptr || id->as_string() == nullptr) return std::nullopt;
                return *id->as_string();
            };
            template_first = special_id(single->elements().front());
            template_last = special_id(single->elements().back());
        }
    }

    const auto config_path = dir / "tokenizer_config.json";
    std::error_code ec;
    std::optional<std::string> bos_text, eos_text;
    if (std::filesystem::exists(config_path, ec)) {
        const json_value root = read_json_file(config_path);
        if (!root.is_object()) throw format_error("'" + config_path.string() + "': not a JSON object");
        const json_fields f(root, config_path.string());
        const auto special = [&](std::string_view key, std::optional<std::uint32_t>& id) -> std::optional<std::string> {
            const std::string* content = detail::special_content(f.get(key));
            if (content == nullptr) return std::nullopt;
            id = added_id(*content);
            // llama.cpp's converter takes the id from tokenizer.json's added tokens alone: a vocabulary token
            // leaves it to config.json's; a token in neither is an inconsistent folder.
            if (!id && std::find(t.tokens.begin(), t.tokens.end(), *content) == t.tokens.end())
                f.fail(key, "names '" + *content + "', which is no token of the vocabulary");
            return *content;
        };
        bos_text = special("bos_token", t.bos_id);
        eos_text = special("eos_token", t.eos_id);
        static_cast<void>(special("unk_token", t.unknown_id));
        static_cast<void>(special("pad_token", t.padding_id));
        if (template_first) t.add_bos = template_first == bos_text;
        if (template_last) t.add_eos = template_last == eos_text;
        if (const auto b = f.boolean("add_bos_token")) t.add_bos = b;
        if (const auto e = f.boolean("add_eos_token")) t.add_eos = e;
        if (const std::string* chat = f.string("chat_template")) t.chat_template = *chat;
    } else {
        // Without tokenizer_config.json the template's own tokens are BOS and EOS.
        if (template_first) {
            t.bos_id = added_id(*template_first);
            t.add_bos = true;
        }
        if (template_last) {
            t.eos_id = added_id(*template_last);
            t.add_eos = true;
        }
    }
    if (!t.bos_id) t.bos_id = c.bos_token_id;
    if (!t.eos_id) t.eos_id = c.eos_token_id;
    if (!t.padding_id) t.padding_id = c.pad_token_id;
    for (const auto* id : {&t.bos_id, &t.eos_id, &t.unknown_id, &t.padding_id})
        if (*id && **id >= c.sizes.vocab)
            throw format_error("'" + (dir / "config.json").string() + "': a special token id " + std::to_string(**id) +
                               " is beyond vocab_size " + std::to_string(c.sizes.vocab));
}

namespace detail {

/// config.json's vocab_size, checked against the limit before a token is allocated per id.
[[nodiscard]] inline std::uint32_t vocabulary_size(const std::filesystem::path& dir, const hf_model_config& c) {
    if (c.sizes.vocab > max_hf_vocabulary)
        throw format_error("'" + (dir / "config.json").string() + "': vocab_size " + std::to_string(c.sizes.vocab) +
                           " is above the limit of " + std::to_string(max_hf_vocabulary));
    return c.sizes.vocab;
}

/// llama.cpp's tokenizer takes user-defined tokens as pre-normalized, so the converter writes SentencePiece's
/// U+2581 in them as the space it stands for.
[[nodiscard]] inline std::string user_defined_text(std::string text) {
    for (std::size_t at = text.find("\xE2\x96\x81"); at != std::string::npos; at = text.find("\xE2\x96\x81", at + 1))
        text.replace(at, 3, " ");
    return text;
}

}  // namespace detail

/// The SentencePiece vocabulary of `dir` (tokenizer.model, then added_tokens.json and tokenizer_config.json's
/// added_tokens_decoder over it), as llama.cpp's converter builds it: ids without a piece are "[PADi]", unused,
/// score -10000; a piece's type is SentencePiece's, a user-defined piece written normal; an added token scores
/// -1000 and is control when special or looking special (else user-defined); added ids at or above vocab_size are
/// skipped as the converter skips them. The special tokens as read_special_tokens reads them, with tokenizer.json
/// (when there is one) for its added tokens and post-processor. format_error naming the file for what
/// parse_sentencepiece_model refuses, more pieces than vocab_size, and malformed added-token entries.
[[nodiscard]] inline hf_tokenizer read_sentencepiece_tokenizer(const std::filesystem::path& dir, const hf_model_config& c) {
    const auto model_path = dir / "tokenizer.model";
    const std::vector<sentencepiece_piece> pieces = read_sentencepiece_model(model_path);
    const std::uint32_t n = detail::vocabulary_size(dir, c);
    if (pieces.size() > n)
        throw format_error("'" + model_path.string() + "': " + std::to_string(pieces.size()) +
                           " pieces, more than config.json's vocab_size " + std::to_string(n));
    hf_tokenizer t;
    t.model = "llama";
    t.pre = "default";
    t.tokens.resize(n);
    t.scores.assign(n, -10000.0f);
    t.types.assign(n, static_cast<std::int32_t>(hf_token_type::unused));
    for (std::uint32_t i = 0; i < n; ++i) t.tokens[i] = "[PAD" + std::to_string(i) + "]";
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        const auto type = pieces[i].type;
        t.tokens[i] = pieces[i].piece;
        t.scores[i] = pieces[i].score;
        t.types[i] = static_cast<std::int32_t>(type == sentencepiece_type::user_defined ? sentencepiece_type::normal : type);
    }
    const auto added = [&](std::uint64_t id, std::string text, hf_token_type type) {
        if (id >= n) return;  // the converter warns and skips
        t.tokens[id] = std::move(text);
        t.scores[id] = -1000.0f;
        t.types[id] = static_cast<std::int32_t>(type);
    };
    std::error_code ec;
    if (const auto path = dir / "added_tokens.json"; std::filesystem::exists(path, ec)) {
        const json_value root = read_json_file(path);
        if (!root.is_object()) throw format_error("'" + path.string() + "': not a JSON object of token: id");
        for (const auto& [text, id] : root.members()) {
            if (!id.as_uint()) throw format_error("'" + path.string() + "': token '" + text + "' has no integer id");
            added(*id.as_uint(), text, hf_token_type::user_defined);
        }
    }
    if (const auto path = dir / "tokenizer_config.json"; std::filesystem::exists(path, ec)) {
        const json_value root = read_json_file(path);
        const json_value* decoder = root.find("added_tokens_decoder");
        if (decoder != nullptr && !decoder->is_null()) {
            if (!decoder->is_object()) throw format_error("'" + path.string() + "': added_tokens_decoder is not an object of id: token");
            for (const auto& [key, entry] : decoder->members()) {
                std::uint64_t id = 0;
                const auto [end, error] = std::from_chars(key.data(), key.data() + key.size(), id);
                const std::string* content = detail::special_content(&entry);
                if (error != std::errc{} || end != key.data() + key.size() || content == nullptr)
                    throw format_error("'" + path.string() + "': added_tokens_decoder entry '" + key +
                                       "' is not an integer id with a \"content\" string");
                const json_value* special = entry.find("special");
                const bool control = (special != nullptr && special->as_bool().value_or(false)) || detail::looks_special(*content);
                added(id, control ? *content : detail::user_defined_text(*content),
                      control ? hf_token_type::control : hf_token_type::user_defined);
            }
        }
    }
    const auto tokenizer_json = dir / "tokenizer.json";
    read_special_tokens(dir, std::filesystem::exists(tokenizer_json, ec) ? read_json_file(tokenizer_json) : json_value{}, c, t);
    return t;
}

/// The tokenizer of `dir` for a model of config `c`: its SentencePiece model when the folder has tokenizer.model
/// (read_sentencepiece_tokenizer; llama.cpp's converter tries it first), else its byte-level BPE: tokenizer.json
/// and, when present, tokenizer_config.json. format_error naming the file for: no "model", a model that is not
/// byte-level BPE (a byte_fallback BPE without tokenizer.model is a SentencePiece vocabulary cogqat cannot
/// score), ids at or above config.json's vocab_size or given to two tokens, malformed merges or added tokens, a
/// special token tokenizer_config.json names that no token is.
[[nodiscard]] inline hf_tokenizer read_hf_tokenizer(const std::filesystem::path& dir, const hf_model_config& c) {
    std::error_code ec;
    if (std::filesystem::exists(dir / "tokenizer.model", ec)) return read_sentencepiece_tokenizer(dir, c);
    const auto path = dir / "tokenizer.json";
    const std::string file = path.string();
    const json_value root = read_json_file(path);
    const json_value* model = root.find("model");
    if (model == nullptr || !model->is_object()) throw format_error("'" + file + "': no \"model\" object (the tokenizer itself)");
    const json_fields m(*model, file + "' model '");
    const std::string* type = m.string("type");
    if (type == nullptr || *type != "BPE")
        throw format_error("'" + file + "': the model is " + (type == nullptr ? std::string("of no type") : *type) +
                           "; cogqat converts byte-level BPE, and SentencePiece from tokenizer.model");
    if (m.boolean("byte_fallback").value_or(false))
        throw format_error(
                "'" + file +
                "': a BPE with byte_fallback is a SentencePiece vocabulary, and the folder has no tokenizer.model to read it from");
    const json_value* vocab = m.get("vocab");
    if (vocab == nullptr || !vocab->is_object()) throw format_error("'" + file + "': the model has no \"vocab\" object");

    const std::uint32_t n = detail::vocabulary_size(dir, c);
    hf_tokenizer t;
    t.tokens.assign(n, {});
    t.types.assign(n, 0);
    std::vector<bool> set(n, false);
    const auto assign = [&](std::uint64_t id, const std::string& token, hf_token_type kind, bool may_replace) {
        if (id >= n)
            throw format_error("'" + file + "': token '" + token + "' has id " + std::to_string(id) + ", beyond config.json's vocab_size " +
                               std::to_string(n));
        if (set[id] && !(may_replace && t.tokens[id] == token))
            throw format_error("'" + file + "': id " + std::to_string(id) + " is given to '" + t.tokens[id] + "' and to '" + token + "'");
        t.tokens[id] = token;
        t.types[id] = static_cast<std::int32_t>(kind);
        set[id] = true;
    };
    for (const auto& [token, id] : vocab->members()) {
        const auto i = id.as_uint();
        if (!i) throw format_error("'" + file + "': vocab token '" + token + "' has no integer id");
        assign(*i, token, hf_token_type::normal, false);
    }
    if (const json_value* added = root.find("added_tokens"); added != nullptr && !added->is_null()) {
        if (!added->is_array()) throw format_error("'" + file + "': \"added_tokens\" is not a list");
        for (const auto& a : added->elements()) {
            const json_value* id = a.find("id");
            const std::string* content = detail::special_content(&a);
            if (id == nullptr || !id->as_uint() || content == nullptr)
                throw format_error("'" + file + "': an added token without an integer \"id\" and a \"content\" string");
            const json_value* special = a.find("special");
            const bool control = (special != nullptr && special->as_bool().value_or(false)) || detail::looks_special(*content);
            // An added token may repeat a vocab entry (GPT-2's <|endoftext|>): the added one's type stands.
            assign(*id->as_uint(), control ? *content : detail::user_defined_text(*content),
                   control ? hf_token_type::control : hf_token_type::user_defined, true);
        }
    }
    for (std::uint32_t i = 0; i < n; ++i) {
        if (set[i]) continue;
        t.tokens[i] = "[PAD" + std::to_string(i) + "]";
        t.types[i] = static_cast<std::int32_t>(hf_token_type::unused);
    }

    if (const json_value* merges = m.get("merges")) {
        if (!merges->is_array()) throw format_error("'" + file + "': \"merges\" is not a list");
        t.merges.reserve(merges->elements().size());
        for (std::size_t i = 0; i < merges->elements().size(); ++i)
            t.merges.push_back(detail::merge_string(merges->elements()[i], file, i));
    }
    t.pre = detail::pre_tokenizer_name(*c.architecture, root);
    read_special_tokens(dir, root, c, t);
    return t;
}

}  // namespace cogqat::io
