#pragma once
// The llama family (llama, qwen2, qwen3) as data: its tensors (GGUF name, the role the quantizer's mixes give
// it, which parameter of a model holds it, its shape from the config, the architectures that have it) and its
// metadata keys. Synthetic models, the llama2.c importer, the GGUF reader and writer, the runtime, the trainer,
// calibration and the quantizer's mixes all walk these two tables; an architecture selects rows of them, so
// another member of the family is a few rows (and its forward's differences), not an edit in each walker.

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/matrix_shape.hpp"
#include "cogqat/model/llama_weights.hpp"

namespace cogqat {

/// What a tensor does, as the quantizer's mixes group tensors (quant/mix_policy.hpp): one type per role.
/// Vectors (norms, biases, RoPE factors) have role norm: they stay f32.
enum class tensor_role : std::uint8_t {
    token_embedding,
    output,
    attention_qk,
    attention_v,
    attention_output,
    feed_forward,
    feed_forward_down,
    norm,
    other
};

/// Which parameter of a model a tensor is: the member of the same name in llama_model, llama_parameters and
/// their layers (see visit_parameter).
enum class llama_parameter : std::uint8_t {
    token_embedding,
    output_norm,
    output,
    wq,
    wk,
    wv,
    wo,
    attn_norm,
    gate,
    down,
    up,
    ffn_norm,
    bq,
    bk,
    bv,
    q_norm,
    k_norm,
    rope_freqs
};

/// The GGUF general.architecture of `a` (also the prefix of its metadata keys).
[[nodiscard]] constexpr std::string_view architecture_name(model_architecture a) noexcept {
    switch (a) {
        case model_architecture::llama:
            return "llama";
        case model_architecture::qwen2:
            return "qwen2";
        case model_architecture::qwen3:
            return "qwen3";
    }
    return "llama";
}

/// The architecture named `name` (general.architecture), or nothing for one the runtime does not run.
[[nodiscard]] constexpr std::optional<model_architecture> parse_model_architecture(std::string_view name) noexcept {
    for (auto a : {model_architecture::llama, model_architecture::qwen2, model_architecture::qwen3})
        if (architecture_name(a) == name) return a;
    return std::nullopt;
}

/// A dimension of a tensor, read from the config.
enum class config_extent : std::uint8_t { one, dim, q_dim, kv_dim, head_dim, hidden, vocab, rope_pairs };

[[nodiscard]] constexpr std::uint64_t extent_of(const llama_config& c, config_extent e) noexcept {
    switch (e) {
        case config_extent::one:
            return 1;
        case config_extent::dim:
            return c.dim;
        case config_extent::q_dim:
            return c.q_dim();
        case config_extent::kv_dim:
            return c.kv_dim();
        case config_extent::head_dim:
            return c.head_size();
        case config_extent::rope_pairs:
            return c.head_size() / 2;
        case config_extent::hidden:
            return c.hidden_dim;
        case config_extent::vocab:
            return c.vocab_size;
    }
    return 0;
}

/// The layer index of the model-wide tensors.
inline constexpr std::size_t no_layer = std::numeric_limits<std::size_t>::max();

/// When a tensor of an architecture that has it is present in a model.
enum class tensor_presence : std::uint8_t {
    always,
    untied_output,  ///< the classifier, absent when tied to the token embedding
    rope_factors    ///< Llama 3's rope_freqs, present when the config says (llama_config::rope_factors)
};

/// A set of architectures, one bit per model_architecture.
[[nodiscard]] constexpr std::uint8_t architecture_bit(model_architecture a) noexcept {
    return static_cast<std::uint8_t>(1u << static_cast<unsigned>(a));
}
inline constexpr std::uint8_t every_architecture = 0xff;

/// One tensor of an architecture. A matrix is rows x row_length, row-major, as GGUF stores it (ne[0] =
/// row_length, ne[1] = rows); a vector has rows one and is written 1-D.
struct tensor_schema {
    std::string_view name;  ///< GGUF name; a per-layer tensor's follows "blk.N."
    llama_parameter parameter;
    tensor_role role;
    bool per_layer = false;
    config_extent row_length = config_extent::dim;
    config_extent rows = config_extent::one;
    tensor_presence presence = tensor_presence::always;
    std::uint8_t architectures = every_architecture;  ///< architecture_bit of each architecture that has it

    [[nodiscard]] constexpr bool applies_to(model_architecture a) const noexcept { return (architectures & architecture_bit(a)) != 0; }
    /// Whether a model of config `c` (classifier tied or not) has this tensor.
    [[nodiscard]] constexpr bool present_in(const llama_config& c, bool tied_output) const noexcept {
        if (!applies_to(c.architecture)) return false;
        switch (presence) {
            case tensor_presence::always:
                return true;
            case tensor_presence::untied_output:
                return !tied_output;
            case tensor_presence::rope_factors:
                return c.rope_factors;
        }
        return true;
    }

    [[nodiscard]] constexpr bool is_vector() const noexcept { return rows == config_extent::one; }
    [[nodiscard]] constexpr std::uint64_t elements(const llama_config& c) const noexcept {
        return extent_of(c, row_length) * extent_of(c, rows);
    }
    /// Its rows x cols in a model of config `c` (a vector is 1 x n).
    [[nodiscard]] constexpr matrix_shape shape(const llama_config& c) const noexcept {
        return {static_cast<std::size_t>(extent_of(c, rows)), static_cast<std::size_t>(extent_of(c, row_length))};
    }
    /// GGUF's ne: {row_length} for a vector, {row_length, rows} for a matrix.
    [[nodiscard]] std::vector<std::uint64_t> gguf_shape(const llama_config& c) const {
        if (is_vector()) return {extent_of(c, row_length)};
        return {extent_of(c, row_length), extent_of(c, rows)};
    }
    /// The GGUF name of this tensor of `layer` (no_layer for a model-wide one), written into `out`, which is
    /// reused so that checks on the training path do not allocate.
    void gguf_name(std::string& out, std::size_t layer) const {
        out.clear();
        if (layer != no_layer) out.append("blk.").append(std::to_string(layer)).append(".");
        out.append(name);
    }
    [[nodiscard]] std::string gguf_name(std::size_t layer) const {
        std::string out;
        gguf_name(out, layer);
        return out;
    }
};

namespace detail::llama_rows {
using enum config_extent;
inline constexpr std::uint8_t llama_only = architecture_bit(model_architecture::llama);
inline constexpr std::uint8_t qwen2_only = architecture_bit(model_architecture::qwen2);
inline constexpr std::uint8_t qwen3_only = architecture_bit(model_architecture::qwen3);
}  // namespace detail::llama_rows

/// The family's tensors in the order cogqat's writers write them: the model-wide ones, then each layer's. The
/// llama rows come in the order llama.cpp's llama2.c converter writes them; qwen2's Q/K/V biases and qwen3's
/// per-head Q/K norms (RMSNorm of head_dim values) follow a layer's shared rows.
inline constexpr std::array<tensor_schema, 18> llama_tensors{{
        {"rope_freqs.weight", llama_parameter::rope_freqs, tensor_role::norm, false, config_extent::rope_pairs, config_extent::one,
         tensor_presence::rope_factors, detail::llama_rows::llama_only},
        {"token_embd.weight", llama_parameter::token_embedding, tensor_role::token_embedding, false, config_extent::dim,
         config_extent::vocab},
        {"output_norm.weight", llama_parameter::output_norm, tensor_role::norm, false, config_extent::dim, config_extent::one},
        {"output.weight", llama_parameter::output, tensor_role::output, false, config_extent::dim, config_extent::vocab,
         tensor_presence::untied_output},
        {"attn_q.weight", llama_parameter::wq, tensor_role::attention_qk, true, config_extent::dim, config_extent::q_dim},
        {"attn_k.weight", llama_parameter::wk, tensor_role::attention_qk, true, config_extent::dim, config_extent::kv_dim},
        {"attn_v.weight", llama_parameter::wv, tensor_role::attention_v, true, config_extent::dim, config_extent::kv_dim},
        {"attn_output.weight", llama_parameter::wo, tensor_role::attention_output, true, config_extent::q_dim, config_extent::dim},
        {"attn_norm.weight", llama_parameter::attn_norm, tensor_role::norm, true, config_extent::dim, config_extent::one},
        {"ffn_gate.weight", llama_parameter::gate, tensor_role::feed_forward, true, config_extent::dim, config_extent::hidden},
        {"ffn_down.weight", llama_parameter::down, tensor_role::feed_forward_down, true, config_extent::hidden, config_extent::dim},
        {"ffn_up.weight", llama_parameter::up, tensor_role::feed_forward, true, config_extent::dim, config_extent::hidden},
        {"ffn_norm.weight", llama_parameter::ffn_norm, tensor_role::norm, true, config_extent::dim, config_extent::one},
        {"attn_q.bias", llama_parameter::bq, tensor_role::norm, true, config_extent::q_dim, config_extent::one, tensor_presence::always,
         detail::llama_rows::qwen2_only},
        {"attn_k.bias", llama_parameter::bk, tensor_role::norm, true, config_extent::kv_dim, config_extent::one, tensor_presence::always,
         detail::llama_rows::qwen2_only},
        {"attn_v.bias", llama_parameter::bv, tensor_role::norm, true, config_extent::kv_dim, config_extent::one, tensor_presence::always,
         detail::llama_rows::qwen2_only},
        {"attn_q_norm.weight", llama_parameter::q_norm, tensor_role::norm, true, config_extent::head_dim, config_extent::one,
         tensor_presence::always, detail::llama_rows::qwen3_only},
        {"attn_k_norm.weight", llama_parameter::k_norm, tensor_role::norm, true, config_extent::head_dim, config_extent::one,
         tensor_presence::always, detail::llama_rows::qwen3_only},
}};

/// The schema entry of `parameter`.
[[nodiscard]] constexpr const tensor_schema& llama_tensor(llama_parameter parameter) noexcept {
    for (const auto& t : llama_tensors)
        if (t.parameter == parameter) return t;
    return llama_tensors.front();  // unreachable: every parameter has an entry (checked below)
}
static_assert([] {
    for (std::size_t p = 0; p < llama_tensors.size(); ++p)
        if (llama_tensor(static_cast<llama_parameter>(p)).parameter != static_cast<llama_parameter>(p)) return false;
    return true;
}());

/// Calls f(tensor, layer) for every tensor of a model of config `c` (its architecture, c.n_layers layers), in
/// the table's order: the model-wide tensors (layer no_layer), then layer by layer. `tied_output` skips the
/// classifier; rows of other architectures and rope_freqs without c.rope_factors are skipped too.
template <class F>
void for_each_llama_tensor(const llama_config& c, bool tied_output, F&& f) {
    for (const auto& t : llama_tensors)
        if (!t.per_layer && t.present_in(c, tied_output)) f(t, no_layer);
    for (std::size_t l = 0; l < c.n_layers; ++l)
        for (const auto& t : llama_tensors)
            if (t.per_layer && t.present_in(c, tied_output)) f(t, l);
}

/// A model type with the members of the rows beyond llama2.c's (rope_freqs; layers of bq, bk, bv, q_norm,
/// k_norm), as llama_model and llama_parameters have. Visiting those rows of a type without them throws.
template <class Model>
concept has_architecture_extras = requires(Model& m) {
    m.rope_freqs;
    m.layers[0].bq;
    m.layers[0].bk;
    m.layers[0].bv;
    m.layers[0].q_norm;
    m.layers[0].k_norm;
};

/// Calls f(member...) with the member of each of `models` that holds `parameter` of `layer`. A model is a
/// llama_model, llama_parameters or any type with their member names (token_embedding, output_norm, output,
/// and layers of attn_norm, ffn_norm, wq, wk, wv, wo, gate, down, up; for the qwen and Llama 3 rows, see
/// has_architecture_extras); members may differ in type (a model's matrices and norm vectors), hence a
/// visitor. Several models are walked in step. invalid_argument_error for a row one of the models lacks.
template <class F, class... Models>
void visit_parameters(llama_parameter parameter, std::size_t layer, F&& f, Models&... models) {
    if constexpr ((has_architecture_extras<Models> && ...)) {
        switch (parameter) {
            case llama_parameter::bq:
                f(models.layers[layer].bq...);
                return;
            case llama_parameter::bk:
                f(models.layers[layer].bk...);
                return;
            case llama_parameter::bv:
                f(models.layers[layer].bv...);
                return;
            case llama_parameter::q_norm:
                f(models.layers[layer].q_norm...);
                return;
            case llama_parameter::k_norm:
                f(models.layers[layer].k_norm...);
                return;
            case llama_parameter::rope_freqs:
                f(models.rope_freqs...);
                return;
            default:
                break;
        }
    }
    switch (parameter) {
        case llama_parameter::token_embedding:
            f(models.token_embedding...);
            return;
        case llama_parameter::output_norm:
            f(models.output_norm...);
            return;
        case llama_parameter::output:
            f(models.output...);
            return;
        case llama_parameter::wq:
            f(models.layers[layer].wq...);
            return;
        case llama_parameter::wk:
            f(models.layers[layer].wk...);
            return;
        case llama_parameter::wv:
            f(models.layers[layer].wv...);
            return;
        case llama_parameter::wo:
            f(models.layers[layer].wo...);
            return;
        case llama_parameter::attn_norm:
            f(models.layers[layer].attn_norm...);
            return;
        case llama_parameter::gate:
            f(models.layers[layer].gate...);
            return;
        case llama_parameter::down:
            f(models.layers[layer].down...);
            return;
        case llama_parameter::up:
            f(models.layers[layer].up...);
            return;
        case llama_parameter::ffn_norm:
            f(models.layers[layer].ffn_norm...);
            return;
        case llama_parameter::bq:
        case llama_parameter::bk:
        case llama_parameter::bv:
        case llama_parameter::q_norm:
        case llama_parameter::k_norm:
        case llama_parameter::rope_freqs:
            throw invalid_argument_error("tensor " + std::string(llama_tensor(parameter).name) +
                                         " (qwen2, qwen3 or Llama 3 rope scaling): this model type has no member for it");
    }
}

/// Calls f(member) with the member of `model` that holds `parameter` of `layer` (see visit_parameters).
template <class Model, class F>
void visit_parameter(Model& model, llama_parameter parameter, std::size_t layer, F&& f) {
    visit_parameters(parameter, layer, f, model);
}

/// As visit_parameter, calling f only when the member is a `Member` (a model's matrices, say, and not its
/// norm vectors).
template <class Member, class Model, class F>
void visit_parameter_as(Model& model, llama_parameter parameter, std::size_t layer, F&& f) {
    visit_parameter(model, parameter, layer, [&](auto& member) {
        if constexpr (std::is_same_v<std::remove_cvref_t<decltype(member)>, std::remove_cvref_t<Member>>) f(member);
    });
}

/// A GGUF tensor name read against the schema: its entry and layer.
struct llama_tensor_name {
    const tensor_schema* tensor;
    std::size_t layer;  ///< no_layer for a model-wide tensor
};

/// The schema entry a GGUF name belongs to ("blk.3.ffn_up.weight" -> ffn_up.weight of layer 3), or nothing
/// for a name the architecture does not have.
[[nodiscard]] inline std::optional<llama_tensor_name> parse_llama_tensor_name(std::string_view name) noexcept {
    std::size_t layer = no_layer;
    if (name.starts_with("blk.")) {
        const char* first = name.data() + 4;
        const char* last = name.data() + name.size();
        const auto [end, error] = std::from_chars(first, last, layer);
        if (error != std::errc{} || end == first || end == last || *end != '.') return std::nullopt;
        name.remove_prefix(static_cast<std::size_t>(end + 1 - name.data()));
    }
    for (const auto& t : llama_tensors)
        if (t.name == name && t.per_layer == (layer != no_layer)) return llama_tensor_name{&t, layer};
    return std::nullopt;
}

/// One metadata key of the architecture, "<architecture>." + suffix, and the config field it holds.
struct config_key {
    std::string_view suffix;
    std::uint32_t llama_config::*integer = nullptr;           ///< an integer field, or
    float llama_config::*real = nullptr;                      ///< a real one (positive and finite, or the forward is NaN), or
    std::uint32_t (*derived)(const llama_config&) = nullptr;  ///< written from the others; when read, must agree with them
    bool required = true;                                     ///< else the config's default stands when absent
    std::uint32_t llama_config::*fallback = nullptr;          ///< absent: the value of this field instead
    bool written_when_set = false;                            ///< an integer written only when not 0 (its default)
};

inline constexpr std::string_view llama_architecture = "llama";

/// The family's keys, in the order the writers set them (llama.cpp's llama2.c converter's, then the explicit
/// head size that llama.cpp's Hugging Face converter writes for Qwen3). key_length and value_length both
/// hold the head size: the runtime needs them equal.
inline constexpr std::array<config_key, 11> llama_config_keys{{
        {.suffix = "context_length", .integer = &llama_config::context_length},
        {.suffix = "embedding_length", .integer = &llama_config::dim},
        {.suffix = "feed_forward_length", .integer = &llama_config::hidden_dim},
        {.suffix = "block_count", .integer = &llama_config::n_layers},
        {.suffix = "attention.head_count", .integer = &llama_config::n_heads},
        {.suffix = "attention.head_count_kv", .integer = &llama_config::n_kv_heads, .required = false, .fallback = &llama_config::n_heads},
        {.suffix = "rope.dimension_count", .derived = [](const llama_config& c) { return c.head_size(); }, .required = false},
        {.suffix = "rope.freq_base", .real = &llama_config::rope_freq_base, .required = false},
        {.suffix = "attention.layer_norm_rms_epsilon", .real = &llama_config::rms_norm_eps, .required = false},
        {.suffix = "attention.key_length", .integer = &llama_config::head_dim, .required = false, .written_when_set = true},
        {.suffix = "attention.value_length", .integer = &llama_config::head_dim, .required = false, .written_when_set = true},
}};

/// The full GGUF key of `key` in architecture `a`, e.g. "qwen2.block_count".
[[nodiscard]] inline std::string gguf_key(const config_key& key, model_architecture a = model_architecture::llama) {
    return std::string(architecture_name(a)) + "." + std::string(key.suffix);
}

/// The full GGUF key that holds an integer field of the config.
[[nodiscard]] inline std::string gguf_key(std::uint32_t llama_config::*field, model_architecture a = model_architecture::llama) {
    for (const auto& k : llama_config_keys)
        if (k.integer == field) return gguf_key(k, a);
    throw invalid_argument_error("gguf_key: the config field has no key of its own in the llama architecture");
}

/// Linear RoPE scaling's keys (llama.cpp's rope.scaling.type "linear" and rope.scaling.factor = 1 / the
/// position multiplier); other scaling types are refused on read.
inline constexpr std::string_view rope_scaling_type_suffix = "rope.scaling.type", rope_scaling_factor_suffix = "rope.scaling.factor";

/// A norm and the matrices that read its output: what the exact transforms (model/rotate.hpp,
/// model/smooth.hpp) fold a norm's weight into, or move per-channel scales across.
struct norm_readers {
    llama_parameter norm;
    std::array<llama_parameter, 3> readers;
    std::size_t count;  ///< of readers
    [[nodiscard]] constexpr std::span<const llama_parameter> matrices() const noexcept { return {readers.data(), count}; }
};

/// The llama architecture's norms and their readers. With these, the token embedding (which writes the
/// residual stream first) and llama_residual_writers, every matrix that touches the residual stream is named.
inline constexpr std::array<norm_readers, 3> llama_norm_readers{{
        {llama_parameter::attn_norm, {llama_parameter::wq, llama_parameter::wk, llama_parameter::wv}, 3},
        {llama_parameter::ffn_norm, {llama_parameter::gate, llama_parameter::up, llama_parameter::up}, 2},
        {llama_parameter::output_norm, {llama_parameter::output, llama_parameter::output, llama_parameter::output}, 1},
}};

/// The matrices whose outputs are added to the residual stream.
inline constexpr std::array<llama_parameter, 2> llama_residual_writers{llama_parameter::wo, llama_parameter::down};

}  // namespace cogqat
