#pragma once
// A Hugging Face model folder's config.json, read for import: the architecture it names (one of
// model/architecture_schema.hpp's), the sizes, the norm epsilon, the rotary base and scaling, and the tied
// classifier. Missing or ill-typed fields are refused with the file and the field.

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <numbers>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/io/file.hpp"
#include "cogqat/io/json.hpp"
#include "cogqat/model/architecture_schema.hpp"

namespace cogqat::io {

/// Reads and parses the JSON file `path`. io_error when it cannot be read; format_error naming it when it is
/// not JSON.
[[nodiscard]] inline json_value read_json_file(const std::filesystem::path& path) {
    const auto bytes = read_file(path);
    return parse_json(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), "'" + path.string() + "'");
}

/// Typed access to the members of a JSON object, refusing a member of the wrong type with the file's name.
/// A member that is null counts as absent (Hugging Face writes "rope_scaling": null).
class json_fields {
public:
    json_fields(const json_value& object, std::string file) : object_(object), file_(std::move(file)) {}

    [[nodiscard]] const json_value* get(std::string_view key) const noexcept {
        const json_value* v = object_.find(key);
        return v == nullptr || v->is_null() ? nullptr : v;
    }
    [[nodiscard]] std::optional<std::uint32_t> uint32(std::string_view key) const {
        const json_value* v = get(key);
        if (v == nullptr) return std::nullopt;
        const auto n = v->as_uint();
        if (!n || *n > std::numeric_limits<std::uint32_t>::max()) fail(key, "is not an integer from 0 to 4294967295");
        return static_cast<std::uint32_t>(*n);
    }
    [[nodiscard]] std::uint32_t positive_uint32(std::string_view key) const {
        const auto n = uint32(key);
        if (!n) fail(key, "is missing");
        if (*n == 0) fail(key, "is 0");
        return *n;
    }
    [[nodiscard]] std::optional<double> number(std::string_view key) const {
        const json_value* v = get(key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_number()) fail(key, "is not a number");
        return v->as_double();
    }
    /// A number that must be positive and finite as a float32 (an epsilon, a rotary base, a factor).
    [[nodiscard]] std::optional<float> positive_float(std::string_view key) const {
        const auto d = number(key);
        if (!d) return std::nullopt;
        const auto f = static_cast<float>(*d);
        if (!(f > 0) || !std::isfinite(f)) fail(key, "is not a positive finite number");
        return f;
    }
    [[nodiscard]] std::optional<bool> boolean(std::string_view key) const {
        const json_value* v = get(key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_bool()) fail(key, "is not true or false");
        return v->as_bool();
    }
    [[nodiscard]] const std::string* string(std::string_view key) const {
        const json_value* v = get(key);
        if (v == nullptr) return nullptr;
        if (!v->is_string()) fail(key, "is not a string");
        return v->as_string();
    }
    [[noreturn]] void fail(std::string_view key, std::string_view reason) const {
        throw format_error("'" + file_ + "': \"" + std::string(key) + "\" " + std::string(reason));
    }
    [[nodiscard]] const std::string& file() const noexcept { return file_; }

private:
    const json_value& object_;
    std::string file_;
};

/// How the rotary frequencies are scaled: not at all, linearly (rope.scaling.* keys), or Llama 3's way
/// (the rope_freqs tensor of per-frequency factors).
enum class rope_scaling_kind : std::uint8_t { none, linear, llama3 };

/// The rotary scaling of config.json's "rope_scaling".
struct rope_scaling {
    rope_scaling_kind kind = rope_scaling_kind::none;
    float factor = 1;
    float low_freq_factor = 1, high_freq_factor = 4;  ///< llama3
    std::uint32_t original_context = 8192;            ///< llama3
};

/// What cogqat reads of a config.json.
struct hf_model_config {
    const architecture_schema* architecture = nullptr;
    architecture_config sizes;
    bool has_head_dim = false;  ///< config.json names head_dim (llama.cpp then writes key_length and value_length)
    std::optional<float> rms_norm_eps, rope_theta;
    rope_scaling scaling;
    bool tie_word_embeddings = false;
    std::optional<std::uint32_t> bos_token_id, eos_token_id, pad_token_id;  ///< fallbacks for tokenizer_config.json
};

/// The Llama 3 per-frequency factors that llama.cpp's converter writes as rope_freqs.weight (head_dim / 2
/// values): 1 for wavelengths below original_context / high_freq_factor, the factor above
/// original_context / low_freq_factor, and a smooth blend between. In float32, as the converter computes.
[[nodiscard]] inline std::vector<float> llama3_rope_factors(const hf_model_config& c) {
    const float base = c.rope_theta.value_or(10000.0f);
    const std::uint32_t dim = c.sizes.head_dim;
    const rope_scaling& s = c.scaling;
    const float old_context = static_cast<float>(s.original_context);
    const float low_wavelen = old_context / s.low_freq_factor, high_wavelen = old_context / s.high_freq_factor;
    std::vector<float> factors;
    for (std::uint32_t i = 0; i < dim; i += 2) {
        const float freq = 1.0f / std::pow(base, static_cast<float>(i) / static_cast<float>(dim));
        const float wavelen = 2.0f * std::numbers::pi_v<float> / freq;
        if (wavelen < high_wavelen) {
            factors.push_back(1.0f);
        } else if (wavelen > low_wavelen) {
            factors.push_back(s.factor);
        } else {
            const float smooth = (old_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
            factors.push_back(1.0f / ((1.0f - smooth) / s.factor + smooth));
        }
    }
    return factors;
}

namespace detail {

/// The architecture config.json names: the first of its "architectures" (the class llama.cpp's converter
/// goes by), or its model_type when it lists none.
[[nodiscard]] inline const architecture_schema& architecture_named(const json_fields& f) {
    std::string named;
    if (const json_value* list = f.get("architectures"); list != nullptr && !list->elements().empty()) {
        const std::string* name = list->is_array() ? list->elements().front().as_string() : nullptr;
        if (name == nullptr) f.fail("architectures", "is not a list of class names");
        if (const auto* arch = find_architecture(*name)) return *arch;
        named = *name;
    } else if (const std::string* type = f.string("model_type")) {
        if (const auto* arch = find_architecture(*type)) return *arch;
        named = "model_type " + *type;
    }
    throw format_error("'" + f.file() + "': unknown architecture " + (named.empty() ? std::string("(none named)") : named) +
                       "; cogqat converts " + known_architectures());
}

[[nodiscard]] inline rope_scaling read_rope_scaling(const json_fields& config) {
    rope_scaling s;
    const json_value* r = config.get("rope_scaling");
    if (r == nullptr) return s;
    if (!r->is_object()) config.fail("rope_scaling", "is not an object");
    const json_fields f(*r, config.file() + "' rope_scaling '");
    const std::string* type = f.string("rope_type");
    if (type == nullptr) type = f.string("type");
    const std::string kind = type == nullptr ? std::string() : *type;
    if (kind.empty() || kind == "default") return s;
    if (kind == "linear") {
        s.kind = rope_scaling_kind::linear;
        s.factor = f.positive_float("factor").value_or(1.0f);
        return s;
    }
    if (kind == "llama3") {
        s.kind = rope_scaling_kind::llama3;
        s.factor = f.positive_float("factor").value_or(8.0f);
        s.low_freq_factor = f.positive_float("low_freq_factor").value_or(1.0f);
        s.high_freq_factor = f.positive_float("high_freq_factor").value_or(4.0f);
        // The model's own value; llama.cpp's converter reads a top-level one (absent from Llama 3's configs,
        // so it takes 8192, which is what every Llama 3.x config says here too).
        s.original_context =
                f.uint32("original_max_position_embeddings").value_or(config.uint32("original_max_position_embeddings").value_or(8192));
        if (s.high_freq_factor <= s.low_freq_factor) f.fail("high_freq_factor", "is not above low_freq_factor");
        if (s.original_context == 0) f.fail("original_max_position_embeddings", "is 0");
        return s;
    }
    config.fail("rope_scaling", "has rope_type \"" + kind + "\"; cogqat converts linear and llama3 scaling");
}

}  // namespace detail

/// Reads `dir`/config.json. format_error naming the file and the field for an unknown architecture (the
/// message names the known ones), a missing or ill-typed size, sizes that do not fit together (heads that do
/// not divide the width or are not a multiple of the key/value heads, an odd head size), or a rope_scaling
/// cogqat does not convert.
[[nodiscard]] inline hf_model_config read_hf_config(const std::filesystem::path& dir) {
    const auto path = dir / "config.json";
    const json_value root = read_json_file(path);
    if (!root.is_object()) throw format_error("'" + path.string() + "': not a JSON object");
    const json_fields f(root, path.string());
    hf_model_config c;
    c.architecture = &detail::architecture_named(f);
    auto& s = c.sizes;
    s.hidden = f.positive_uint32("hidden_size");
    s.feed_forward = f.positive_uint32("intermediate_size");
    s.layers = f.positive_uint32("num_hidden_layers");
    s.heads = f.positive_uint32("num_attention_heads");
    s.kv_heads = f.uint32("num_key_value_heads").value_or(s.heads);
    s.vocab = f.positive_uint32("vocab_size");
    s.context_length = f.uint32("max_position_embeddings").value_or(0);
    c.has_head_dim = f.uint32("head_dim").has_value();
    if (c.has_head_dim) {
        s.head_dim = f.positive_uint32("head_dim");
    } else {
        if (s.hidden % s.heads != 0)
            f.fail("num_attention_heads", "(" + std::to_string(s.heads) + ") does not divide hidden_size " + std::to_string(s.hidden));
        s.head_dim = s.hidden / s.heads;
    }
    if (s.kv_heads == 0 || s.heads % s.kv_heads != 0)
        f.fail("num_key_value_heads",
               "(" + std::to_string(s.kv_heads) + ") does not divide num_attention_heads " + std::to_string(s.heads));
    if (s.head_dim % 2 != 0) f.fail("head_dim", "(" + std::to_string(s.head_dim) + ") is odd: rotary pairs need an even head size");
    c.rms_norm_eps = f.positive_float("rms_norm_eps");
    c.rope_theta = f.positive_float("rope_theta");
    c.scaling = detail::read_rope_scaling(f);
    if (c.scaling.kind != rope_scaling_kind::none && c.architecture->name != "llama")
        f.fail("rope_scaling",
               "scales a " + std::string(c.architecture->name) + " model; cogqat converts rope scaling of llama models only");
    c.tie_word_embeddings = f.boolean("tie_word_embeddings").value_or(false);
    // A list of ids (Llama 3.1 Instruct's eos_token_id) is not one id: like llama.cpp's converter, skip it.
    const auto id_of = [&](std::string_view key) -> std::optional<std::uint32_t> {
        const json_value* v = f.get(key);
        return v != nullptr && v->is_number() ? f.uint32(key) : std::nullopt;
    };
    c.bos_token_id = id_of("bos_token_id");
    c.eos_token_id = id_of("eos_token_id");
    c.pad_token_id = id_of("pad_token_id");
    return c;
}

}  // namespace cogqat::io
