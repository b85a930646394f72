#pragma once
// Which GGUF type each tensor of a model gets: a preset assigns a type per layer role, regex overrides
// take precedence in the order given, and a tensor whose rows do not fit the block of its type falls back
// along a fixed chain that ends at f16. Pure decisions, no I/O: the quantize pipeline applies them.

#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/format/ggml_type.hpp"
#include "cogqat/model/llama_schema.hpp"

namespace cogqat {

/// What a tensor does in a Llama-family model, read from its GGUF name against the schema
/// (model/llama_schema.hpp); `other` for a name the architecture does not have.
[[nodiscard]] inline tensor_role role_of(std::string_view name) noexcept {
    const auto parsed = parse_llama_tensor_name(name);
    return parsed ? parsed->tensor->role : tensor_role::other;
}

/// What the model-dependent rules of llama.cpp's presets read: its layer count, its grouped-query factor and
/// whether an importance matrix is given (llama.cpp's has_imatrix).
struct mix_context {
    std::size_t layers = 0;   ///< llama.block_count
    std::size_t gqa = 1;      ///< attention heads per key/value head
    bool importance = false;  ///< quantizing with an importance matrix from a file (--imatrix)
};

/// The rules of llama_tensor_get_type for a dense llama that a type per role cannot say; unset rules leave
/// the role's type. For the grid i-quant presets, where these rules decide where the extra bits go.
struct mix_rules {
    std::optional<ggml_type> attention_v_gqa{};               ///< attn_v when the grouped-query factor is >= 4
    std::optional<ggml_type> attention_v_importance{};        ///< attn_v otherwise, with an importance matrix
    std::optional<ggml_type> feed_forward_down_first{};       ///< ffn_down of the layers below layers / 8
    std::optional<ggml_type> feed_forward_down_importance{};  ///< ffn_down of every layer, with an importance matrix (wins)
    std::optional<ggml_type> feed_forward_middle{};           ///< ffn_gate and ffn_up of layers in [layers / 8, 7 layers / 8)
};

/// A type per role. Norms (and every 1-D tensor) stay f32, as llama.cpp expects.
struct mix_preset {
    std::string_view name;
    std::string_view description;
    ggml_type token_embedding, output, attention_qk, attention_v, attention_output, feed_forward, feed_forward_down;
    std::optional<llama_file_type> file_type;  ///< unset: named after the type holding most weights
    mix_rules rules{};                         ///< the layer, grouped-query and importance rules (none for most)

    [[nodiscard]] constexpr ggml_type type_for(tensor_role role) const noexcept {
        switch (role) {
            case tensor_role::token_embedding:
                return token_embedding;
            case tensor_role::output:
                return output;
            case tensor_role::attention_qk:
                return attention_qk;
            case tensor_role::attention_v:
                return attention_v;
            case tensor_role::attention_output:
                return attention_output;
            case tensor_role::feed_forward:
                return feed_forward;
            case tensor_role::feed_forward_down:
                return feed_forward_down;
            case tensor_role::norm:
                return ggml_type::f32;
            case tensor_role::other:
                return feed_forward;
        }
        return ggml_type::f32;
    }

    /// The type of a tensor of `role` in layer `layer` (ignored for tensors outside the layers) of a model
    /// described by `context`: type_for(role), changed by the rules that apply.
    [[nodiscard]] constexpr ggml_type type_for(tensor_role role, std::size_t layer, const mix_context& context) const noexcept {
        const bool first_eighth = layer < context.layers / 8;
        const bool middle = layer >= context.layers / 8 && layer < 7 * context.layers / 8;
        switch (role) {
            case tensor_role::attention_v:
                if (rules.attention_v_gqa && context.gqa >= 4) return *rules.attention_v_gqa;
                if (rules.attention_v_importance && context.importance) return *rules.attention_v_importance;
                break;
            case tensor_role::feed_forward_down:
                if (rules.feed_forward_down_importance && context.importance) return *rules.feed_forward_down_importance;
                if (rules.feed_forward_down_first && first_eighth) return *rules.feed_forward_down_first;
                break;
            case tensor_role::feed_forward:
                if (rules.feed_forward_middle && middle) return *rules.feed_forward_middle;
                break;
            default:
                break;
        }
        return type_for(role);
    }
};

/// The named mixes. "default" is cogqat's layer-type policy; the K mixes follow the spirit of llama.cpp's
/// presets of the same names (more bits for attn_v, ffn_down and the output layer). The iq4, ternary and
/// mxfp4 mixes are llama_tensor_get_type's choices for a dense llama (docs/formats.md, "Presets"); a named
/// mix wins over the type of the same name.
inline const std::vector<mix_preset>& named_presets() {
    using enum ggml_type;
    static const std::vector<mix_preset> presets{
            {"default", "embeddings and output q8_0, attention q4_K, feed-forward q6_K, norms f32", q8_0, q8_0, q4_K, q4_K, q4_K, q6_K,
             q6_K, std::nullopt},
            {"q2_k", "q2_K, with q3_K for attn_v, attn_output and ffn_down, q6_K output", q2_K, q6_K, q2_K, q3_K, q3_K, q2_K, q3_K,
             llama_file_type::mostly_q2_K},
            {"q3_k_m", "q3_K, with q4_K for attn_v, attn_output and ffn_down, q6_K output", q3_K, q6_K, q3_K, q4_K, q4_K, q3_K, q4_K,
             llama_file_type::mostly_q3_K_m},
            {"q4_k_s", "q4_K, with q5_K for attn_v and ffn_down, q6_K output", q4_K, q6_K, q4_K, q5_K, q4_K, q4_K, q5_K,
             llama_file_type::mostly_q4_K_s},
            {"q4_k_m", "q4_K, with q6_K for attn_v and ffn_down, q6_K output", q4_K, q6_K, q4_K, q6_K, q4_K, q4_K, q6_K,
             llama_file_type::mostly_q4_K_m},
            {"q5_k_s", "q5_K everywhere, q6_K output", q5_K, q6_K, q5_K, q5_K, q5_K, q5_K, q5_K, llama_file_type::mostly_q5_K_s},
            {"q5_k_m", "q5_K, with q6_K for attn_v and ffn_down, q6_K output", q5_K, q6_K, q5_K, q6_K, q5_K, q5_K, q6_K,
             llama_file_type::mostly_q5_K_m},
            {"iq4_nl", "iq4_nl, q6_K output", iq4_nl, q6_K, iq4_nl, iq4_nl, iq4_nl, iq4_nl, iq4_nl, llama_file_type::mostly_iq4_nl,
             mix_rules{.attention_v_gqa = q5_K, .feed_forward_down_first = q5_K, .feed_forward_down_importance = iq4_nl}},
            {"iq4_xs", "iq4_xs, q6_K output", iq4_xs, q6_K, iq4_xs, iq4_xs, iq4_xs, iq4_xs, iq4_xs, llama_file_type::mostly_iq4_xs,
             mix_rules{.attention_v_gqa = q5_K, .feed_forward_down_first = q5_K, .feed_forward_down_importance = iq4_xs}},
            {"tq1_0", "tq1_0, q4_K token embedding, q6_K output", q4_K, q6_K, tq1_0, tq1_0, tq1_0, tq1_0, tq1_0,
             llama_file_type::mostly_tq1_0},
            {"tq2_0", "tq2_0, q4_K token embedding, q6_K output", q4_K, q6_K, tq2_0, tq2_0, tq2_0, tq2_0, tq2_0,
             llama_file_type::mostly_tq2_0},
            {"mxfp4_moe", "mxfp4 for MoE experts (a dense llama has none), q8_0 for every other matrix", q8_0, q8_0, q8_0, q8_0, q8_0, q8_0,
             q8_0, llama_file_type::mostly_mxfp4_moe},
            // The grid i-quants: llama_tensor_get_type's choices for a dense llama (docs/formats.md, "Presets").
            {"iq1_s", "iq1_s, q2_K token embedding and attn_v, iq2_xxs attn_output, q5_K output", q2_K, q5_K, iq1_s, q2_K, iq2_xxs, iq1_s,
             iq1_s, llama_file_type::mostly_iq1_s, mix_rules{.attention_v_gqa = q4_K, .feed_forward_down_first = q2_K}},
            {"iq1_m", "iq1_m, q2_K token embedding and attn_v, iq2_xxs attn_output, q5_K output", q2_K, q5_K, iq1_m, q2_K, iq2_xxs, iq1_m,
             iq1_m, llama_file_type::mostly_iq1_m, mix_rules{.attention_v_gqa = q4_K, .feed_forward_down_first = q2_K}},
            {"iq2_xxs", "iq2_xxs, q2_K token embedding and attn_v, q5_K output", q2_K, q5_K, iq2_xxs, q2_K, iq2_xxs, iq2_xxs, iq2_xxs,
             llama_file_type::mostly_iq2_xxs, mix_rules{.attention_v_gqa = q4_K, .feed_forward_down_first = q2_K}},
            {"iq2_xs", "iq2_xs, q2_K token embedding and attn_v, q5_K output", q2_K, q5_K, iq2_xs, q2_K, iq2_xs, iq2_xs, iq2_xs,
             llama_file_type::mostly_iq2_xs, mix_rules{.attention_v_gqa = q4_K, .feed_forward_down_first = q2_K}},
            {"iq2_s", "iq2_xs, iq3_s token embedding, attn_v and attn_output, q5_K output", iq3_s, q5_K, iq2_xs, iq3_s, iq3_s, iq2_xs,
             iq2_xs, llama_file_type::mostly_iq2_s, mix_rules{.attention_v_gqa = q4_K, .feed_forward_down_first = iq3_s}},
            {"iq2_m", "iq2_s, iq3_s token embedding, attn_v and attn_output, q5_K output", iq3_s, q5_K, iq2_s, iq3_s, iq3_s, iq2_s, iq2_s,
             llama_file_type::mostly_iq2_m, mix_rules{.attention_v_gqa = q4_K, .feed_forward_down_first = iq3_s}},
            {"iq3_xxs", "iq3_xxs, iq2_s attn_q/attn_k, iq3_s token embedding, attn_v and attn_output, q3_K ffn_down, q5_K output", iq3_s,
             q5_K, iq2_s, iq3_s, iq3_s, iq3_xxs, q3_K, llama_file_type::mostly_iq3_xxs,
             mix_rules{.attention_v_gqa = q4_K,
                       .attention_v_importance = iq3_xxs,
                       .feed_forward_down_first = q4_K,
                       .feed_forward_down_importance = iq3_xxs}},
            {"iq3_xs", "iq3_s, iq3_xxs attn_q/attn_k and middle ffn_gate/ffn_up, q6_K output", iq3_s, q6_K, iq3_xxs, iq3_s, iq3_s, iq3_s,
             iq3_s, llama_file_type::mostly_iq3_xs, mix_rules{.attention_v_gqa = q4_K, .feed_forward_middle = iq3_xxs}},
            {"iq3_s", "iq3_s, q6_K output", iq3_s, q6_K, iq3_s, iq3_s, iq3_s, iq3_s, iq3_s, llama_file_type::mostly_iq3_s,
             mix_rules{.attention_v_gqa = q4_K}},
            {"iq3_m", "iq3_s, q4_K attn_v and attn_output, q6_K output", iq3_s, q6_K, iq3_s, q4_K, q4_K, iq3_s, iq3_s,
             llama_file_type::mostly_iq3_m, mix_rules{.feed_forward_down_first = q4_K}},
    };
    return presets;
}

/// The next type to try when rows do not fit `type`'s block: K types go to the 32-value type of about the
/// same precision (the grid i-quants and iq4_xs to iq4_nl, the ternary types to q4_0, as llama.cpp's
/// tensor_type_fallback), those to f16, which fits everything.
[[nodiscard]] constexpr ggml_type fallback_of(ggml_type type) noexcept {
    using enum ggml_type;
    switch (type) {
        case iq1_s:
        case iq1_m:
        case iq2_xxs:
        case iq2_xs:
        case iq2_s:
        case iq3_xxs:
        case iq3_s:
        case iq4_xs:
            return iq4_nl;
        case q2_K:
        case q3_K:
        case tq1_0:
        case tq2_0:
            return q4_0;
        case q4_K:
            return q5_0;
        case q5_K:
            return q5_1;
        case q6_K:
            return q8_0;
        default:
            return f16;
    }
}

/// A weight type llama.cpp can compute with (q8_1 and q8_K exist only as activation types).
[[nodiscard]] constexpr bool is_weight_type(ggml_type type) noexcept {
    using enum ggml_type;
    switch (type) {
        case f32:
        case f16:
        case bf16:
        case q4_0:
        case q4_1:
        case q5_0:
        case q5_1:
        case q8_0:
        case q2_K:
        case q3_K:
        case q4_K:
        case q5_K:
        case q6_K:
        case iq4_nl:
        case iq4_xs:
        case mxfp4:
        case tq1_0:
        case tq2_0:
        case iq1_s:
        case iq1_m:
        case iq2_xxs:
        case iq2_xs:
        case iq2_s:
        case iq3_xxs:
        case iq3_s:
            return true;
        default:
            return false;
    }
}

/// One `--tensor-type REGEX=TYPE` rule.
struct type_override {
    std::string pattern;
    std::regex regex;
    ggml_type type;
};

/// Parses "REGEX=TYPE" (split at the last '='). Throws invalid_argument_error for a bad regex or type.
[[nodiscard]] inline type_override parse_override(std::string_view rule) {
    const auto eq = rule.rfind('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == rule.size())
        throw invalid_argument_error("tensor type rule '" + std::string(rule) + "' is not of the form REGEX=TYPE");
    type_override o{std::string(rule.substr(0, eq)), {}, parse_type(rule.substr(eq + 1))};
    try {
        o.regex = std::regex(o.pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        throw invalid_argument_error("tensor type rule '" + std::string(rule) + "': invalid regular expression (" + e.what() + ")");
    }
    if (!is_weight_type(o.type))
        throw invalid_argument_error("tensor type rule '" + std::string(rule) + "': " + std::string(info(o.type).name) +
                                     " is not a weight type");
    return o;
}

/// A complete policy: a preset (or one type everywhere) and overrides, first match wins.
struct mix_policy {
    mix_preset preset;
    std::vector<type_override> overrides;
    mix_context context{};  ///< the model, for the preset's layer, grouped-query and importance rules
};

/// `--preset NAME` (a named mix) or `--preset TYPE` (that type for every 2-D tensor).
[[nodiscard]] inline mix_preset find_preset(std::string_view name) {
    for (const auto& p : named_presets())
        if (detail::iequals(p.name, name)) return p;
    ggml_type t;
    try {
        t = parse_type(name);
    } catch (const invalid_argument_error&) {
        std::string known;
        for (const auto& p : named_presets()) known += std::string(known.empty() ? "" : ", ") + std::string(p.name);
        throw invalid_argument_error("unknown preset '" + std::string(name) + "' (presets: " + known +
                                     "; or a type such as q4_0, q6_K, f16)");
    }
    if (!is_weight_type(t))
        throw invalid_argument_error("preset " + std::string(name) + ": " + std::string(info(t).name) + " is not a weight type");
    return {info(t).name, "one type for every 2-D tensor", t, t, t, t, t, t, t, file_type_for(t)};
}

/// The decision for one tensor, with its reasons.
struct tensor_plan {
    ggml_type requested = ggml_type::f32;  ///< what the preset or an override asked for
    ggml_type type = ggml_type::f32;       ///< what the tensor gets after fallbacks
    std::vector<ggml_type> refused;        ///< types tried whose block did not fit the rows
    std::string rule;                      ///< "preset default", "override 'REGEX'", "1-D tensor"
};

/// Decides the type of tensor `name` with rows of `row_length` values and `dimensions` dimensions.
[[nodiscard]] inline tensor_plan plan_tensor(std::string_view name, std::uint64_t row_length, std::size_t dimensions,
                                             const mix_policy& policy) {
    tensor_plan plan;
    const std::string name_string(name);
    if (dimensions < 2) {
        plan.rule = "1-D tensor, kept f32";
        return plan;
    }
    const auto parsed = parse_llama_tensor_name(name);
    plan.requested = parsed ? policy.preset.type_for(parsed->tensor->role, parsed->layer, policy.context)
                            : policy.preset.type_for(tensor_role::other);
    plan.rule = "preset " + std::string(policy.preset.name);
    for (const auto& o : policy.overrides) {
        if (std::regex_search(name_string, o.regex)) {
            plan.requested = o.type;
            plan.rule = "override '" + o.pattern + "'";
            break;
        }
    }
    plan.type = plan.requested;
    while (row_length % info(plan.type).block_size != 0) {
        plan.refused.push_back(plan.type);
        plan.type = fallback_of(plan.type);
    }
    return plan;
}

}  // namespace cogqat
