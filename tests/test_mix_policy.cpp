// The per-tensor type decisions: presets by role, overrides in order, the fallback chain, refusals.

#include <doctest/doctest.h>

#include <cogqat/quant/mix_policy.hpp>

#include <string>
#include <string_view>
#include <vector>

using namespace cogqat;

namespace {
mix_policy policy(std::string_view preset, std::vector<std::string> rules = {}) {
    mix_policy p{find_preset(preset), {}};
    for (const auto& r : rules) p.overrides.push_back(parse_override(r));
    return p;
}
}  // namespace

TEST_CASE("roles are read from GGUF llama tensor names") {
    CHECK(role_of("token_embd.weight") == tensor_role::token_embedding);
    CHECK(role_of("output.weight") == tensor_role::output);
    CHECK(role_of("output_norm.weight") == tensor_role::norm);
    CHECK(role_of("blk.3.attn_norm.weight") == tensor_role::norm);
    CHECK(role_of("blk.3.attn_q.weight") == tensor_role::attention_qk);
    CHECK(role_of("blk.3.attn_k.weight") == tensor_role::attention_qk);
    CHECK(role_of("blk.3.attn_v.weight") == tensor_role::attention_v);
    CHECK(role_of("blk.3.attn_output.weight") == tensor_role::attention_output);
    CHECK(role_of("blk.3.ffn_gate.weight") == tensor_role::feed_forward);
    CHECK(role_of("blk.3.ffn_up.weight") == tensor_role::feed_forward);
    CHECK(role_of("blk.3.ffn_down.weight") == tensor_role::feed_forward_down);
    CHECK(role_of("blk.3.ffn_norm.weight") == tensor_role::norm);
    // The vectors of qwen2, qwen3 and Llama 3 are kept f32 as norms are.
    CHECK(role_of("rope_freqs.weight") == tensor_role::norm);
    CHECK(role_of("blk.3.attn_q.bias") == tensor_role::norm);
    CHECK(role_of("blk.3.attn_k_norm.weight") == tensor_role::norm);
    // Names the family's schema does not have, or has only model-wide or only per layer.
    CHECK(role_of("blk.3.attn_output.bias") == tensor_role::other);
    CHECK(role_of("blk.3.rope_freqs.weight") == tensor_role::other);
    CHECK(role_of("blk.x.attn_q.weight") == tensor_role::other);
    CHECK(role_of("blk.3attn_q.weight") == tensor_role::other);
    CHECK(role_of("blk.0.token_embd.weight") == tensor_role::other);
    CHECK(role_of("attn_q.weight") == tensor_role::other);
}

TEST_CASE("the default preset: embeddings and output q8_0, attention q4_K, feed-forward q6_K, norms f32") {
    const auto p = policy("default");
    CHECK(plan_tensor("token_embd.weight", 4096, 2, p).type == ggml_type::q8_0);
    CHECK(plan_tensor("output.weight", 4096, 2, p).type == ggml_type::q8_0);
    CHECK(plan_tensor("blk.0.attn_q.weight", 4096, 2, p).type == ggml_type::q4_K);
    CHECK(plan_tensor("blk.0.attn_v.weight", 4096, 2, p).type == ggml_type::q4_K);
    CHECK(plan_tensor("blk.0.attn_output.weight", 4096, 2, p).type == ggml_type::q4_K);
    CHECK(plan_tensor("blk.0.ffn_up.weight", 4096, 2, p).type == ggml_type::q6_K);
    CHECK(plan_tensor("blk.0.ffn_down.weight", 11008, 2, p).type == ggml_type::q6_K);
    const auto norm = plan_tensor("blk.0.attn_norm.weight", 4096, 1, p);
    CHECK(norm.type == ggml_type::f32);
    CHECK(norm.rule.find("1-D") != std::string::npos);
}

TEST_CASE("rows that do not fit the block fall back along the chain and say so") {
    const auto p = policy("default");
    const auto attn = plan_tensor("blk.0.attn_q.weight", 64, 2, p);  // q4_K needs 256
    CHECK(attn.requested == ggml_type::q4_K);
    CHECK(attn.type == ggml_type::q5_0);
    CHECK(attn.refused == std::vector{ggml_type::q4_K});
    const auto down = plan_tensor("blk.0.ffn_down.weight", 172, 2, p);  // neither 256 nor 32
    CHECK(down.type == ggml_type::f16);
    CHECK(down.refused == std::vector{ggml_type::q6_K, ggml_type::q8_0});
    CHECK(plan_tensor("blk.0.ffn_up.weight", 64, 2, policy("q2_k")).type == ggml_type::q4_0);
    CHECK(plan_tensor("blk.0.ffn_up.weight", 64, 2, policy("q5_k_s")).type == ggml_type::q5_1);
    CHECK(plan_tensor("blk.0.ffn_up.weight", 7, 2, policy("q4_0")).type == ggml_type::f16);
}

TEST_CASE("--preset TYPE applies one type to every 2-D tensor; names are case-insensitive") {
    const auto p = policy("Q4_0");
    CHECK(plan_tensor("token_embd.weight", 64, 2, p).type == ggml_type::q4_0);
    CHECK(plan_tensor("output.weight", 64, 2, p).type == ggml_type::q4_0);
    CHECK(plan_tensor("blk.1.ffn_down.weight", 64, 2, p).type == ggml_type::q4_0);
    CHECK(p.preset.file_type == llama_file_type::mostly_q4_0);
    CHECK(policy("Q4_K_M").preset.name == "q4_k_m");
}

TEST_CASE("llama.cpp's iq4, ternary and mxfp4 file types: their mixes, file types and fallbacks") {
    struct expected {
        const char* preset;
        ggml_type body, embedding, output;
        llama_file_type file_type;
    };
    for (const auto& e : {expected{"IQ4_NL", ggml_type::iq4_nl, ggml_type::iq4_nl, ggml_type::q6_K, llama_file_type::mostly_iq4_nl},
                          expected{"IQ4_XS", ggml_type::iq4_xs, ggml_type::iq4_xs, ggml_type::q6_K, llama_file_type::mostly_iq4_xs},
                          expected{"TQ1_0", ggml_type::tq1_0, ggml_type::q4_K, ggml_type::q6_K, llama_file_type::mostly_tq1_0},
                          expected{"TQ2_0", ggml_type::tq2_0, ggml_type::q4_K, ggml_type::q6_K, llama_file_type::mostly_tq2_0},
                          expected{"MXFP4_MOE", ggml_type::q8_0, ggml_type::q8_0, ggml_type::q8_0, llama_file_type::mostly_mxfp4_moe}}) {
        CAPTURE(e.preset);
        const auto p = policy(e.preset);
        CHECK(p.preset.file_type == e.file_type);
        for (const char* name :
             {"blk.0.attn_q.weight", "blk.1.attn_v.weight", "blk.0.attn_output.weight", "blk.1.ffn_up.weight", "blk.0.ffn_down.weight"})
            CHECK(plan_tensor(name, 256, 2, p).type == e.body);
        CHECK(plan_tensor("token_embd.weight", 256, 2, p).type == e.embedding);
        CHECK(plan_tensor("output.weight", 256, 2, p).type == e.output);
    }
    // The llama.cpp ids of general.file_type.
    CHECK(static_cast<int>(llama_file_type::mostly_iq4_nl) == 25);
    CHECK(static_cast<int>(llama_file_type::mostly_iq4_xs) == 30);
    CHECK(static_cast<int>(llama_file_type::mostly_tq1_0) == 36);
    CHECK(static_cast<int>(llama_file_type::mostly_tq2_0) == 37);
    CHECK(static_cast<int>(llama_file_type::mostly_mxfp4_moe) == 38);
    // Each type alone, and llama.cpp's fallbacks: iq4_xs -> iq4_nl, ternary -> q4_0, then f16.
    const auto mx = policy("mxfp4");
    CHECK(plan_tensor("output.weight", 64, 2, mx).type == ggml_type::mxfp4);
    CHECK(mx.preset.file_type == llama_file_type::mostly_mxfp4_moe);
    CHECK(plan_tensor("blk.0.ffn_up.weight", 64, 2, policy("iq4_xs", {".*=iq4_xs"})).type == ggml_type::iq4_nl);
    CHECK(plan_tensor("blk.0.ffn_up.weight", 64, 2, policy("tq1_0")).type == ggml_type::q4_0);
    CHECK(plan_tensor("blk.0.ffn_down.weight", 172, 2, policy("tq2_0")).refused == std::vector{ggml_type::tq2_0, ggml_type::q4_0});
    CHECK(plan_tensor("blk.0.ffn_down.weight", 172, 2, policy("iq4_nl")).type == ggml_type::f16);
    CHECK(parse_override("attn=IQ4_NL").type == ggml_type::iq4_nl);
}

TEST_CASE("overrides are evaluated in order; the first matching rule wins") {
    const auto p = policy("default", {"blk\\.[0-3]\\.ffn_.*=q8_0", "ffn=q4_0", "attn_v=Q5_1"});
    CHECK(plan_tensor("blk.2.ffn_up.weight", 256, 2, p).type == ggml_type::q8_0);
    CHECK(plan_tensor("blk.2.ffn_up.weight", 256, 2, p).rule == "override 'blk\\.[0-3]\\.ffn_.*'");
    CHECK(plan_tensor("blk.7.ffn_up.weight", 256, 2, p).type == ggml_type::q4_0);
    CHECK(plan_tensor("blk.7.attn_v.weight", 256, 2, p).type == ggml_type::q5_1);
    CHECK(plan_tensor("blk.7.attn_q.weight", 256, 2, p).type == ggml_type::q4_K);
    CHECK(plan_tensor("blk.7.attn_q.weight", 256, 2, p).rule == "preset default");
}

TEST_CASE("bad presets and rules are refused with clear messages") {
    CHECK_THROWS_WITH_AS((void)find_preset("q4_k_xl"), doctest::Contains("unknown preset 'q4_k_xl'"), invalid_argument_error);
    CHECK_THROWS_WITH_AS((void)find_preset("q8_K"), doctest::Contains("q8_K is not a weight type"), invalid_argument_error);
    CHECK_THROWS_WITH_AS((void)parse_override("attn"), doctest::Contains("not of the form REGEX=TYPE"), invalid_argument_error);
    CHECK_THROWS_WITH_AS((void)parse_override("attn=q9_9"), doctest::Contains("unknown type name 'q9_9'"), invalid_argument_error);
    CHECK_THROWS_WITH_AS((void)parse_override("blk.[0-=q4_0"), doctest::Contains("invalid regular expression"), invalid_argument_error);
    CHECK_THROWS_WITH_AS((void)parse_override("attn=q8_1"), doctest::Contains("not a weight type"), invalid_argument_error);
}

TEST_CASE("llama.cpp's grid i-quant file types: per-role choices, the layer, grouped-query and importance rules") {
    using enum ggml_type;
    // llama_tensor_get_type for a dense llama of 16 layers, grouped-query factor 2, without an importance matrix:
    // token_embd, output, attn_q/attn_k, attn_v, attn_output, ffn_gate/ffn_up (layer 8), ffn_down (layer 8).
    struct expected {
        const char* preset;
        llama_file_type file_type;
        int id;
        ggml_type embedding, output, qk, v, attn_output, gate_up, down;
        ggml_type down_first;   // ffn_down in layers below 16 / 8 = 2
        ggml_type v_gqa;        // attn_v with 4 query heads per key/value head
        ggml_type gate_up_end;  // ffn_gate/ffn_up in layers from 7 * 16 / 8 = 14 on
    };
    for (const auto& e : {
                 expected{"IQ1_S", llama_file_type::mostly_iq1_s, 24, q2_K, q5_K, iq1_s, q2_K, iq2_xxs, iq1_s, iq1_s, q2_K, q4_K, iq1_s},
                 expected{"IQ1_M", llama_file_type::mostly_iq1_m, 31, q2_K, q5_K, iq1_m, q2_K, iq2_xxs, iq1_m, iq1_m, q2_K, q4_K, iq1_m},
                 expected{"IQ2_XXS", llama_file_type::mostly_iq2_xxs, 19, q2_K, q5_K, iq2_xxs, q2_K, iq2_xxs, iq2_xxs, iq2_xxs, q2_K, q4_K,
                          iq2_xxs},
                 expected{"IQ2_XS", llama_file_type::mostly_iq2_xs, 20, q2_K, q5_K, iq2_xs, q2_K, iq2_xs, iq2_xs, iq2_xs, q2_K, q4_K,
                          iq2_xs},
                 expected{"IQ2_S", llama_file_type::mostly_iq2_s, 28, iq3_s, q5_K, iq2_xs, iq3_s, iq3_s, iq2_xs, iq2_xs, iq3_s, q4_K,
                          iq2_xs},
                 expected{"IQ2_M", llama_file_type::mostly_iq2_m, 29, iq3_s, q5_K, iq2_s, iq3_s, iq3_s, iq2_s, iq2_s, iq3_s, q4_K, iq2_s},
                 expected{"IQ3_XXS", llama_file_type::mostly_iq3_xxs, 23, iq3_s, q5_K, iq2_s, iq3_s, iq3_s, iq3_xxs, q3_K, q4_K, q4_K,
                          iq3_xxs},
                 expected{"IQ3_XS", llama_file_type::mostly_iq3_xs, 22, iq3_s, q6_K, iq3_xxs, iq3_s, iq3_s, iq3_xxs, iq3_s, iq3_s, q4_K,
                          iq3_s},
                 expected{"IQ3_S", llama_file_type::mostly_iq3_s, 26, iq3_s, q6_K, iq3_s, iq3_s, iq3_s, iq3_s, iq3_s, iq3_s, q4_K, iq3_s},
                 expected{"IQ3_M", llama_file_type::mostly_iq3_m, 27, iq3_s, q6_K, iq3_s, q4_K, q4_K, iq3_s, iq3_s, q4_K, q4_K, iq3_s},
         }) {
        CAPTURE(e.preset);
        auto p = policy(e.preset);
        p.context = {16, 2, false};
        REQUIRE(p.preset.file_type == e.file_type);
        CHECK(static_cast<int>(e.file_type) == e.id);
        CHECK(plan_tensor("token_embd.weight", 256, 2, p).type == e.embedding);
        CHECK(plan_tensor("output.weight", 256, 2, p).type == e.output);
        CHECK(plan_tensor("blk.8.attn_q.weight", 256, 2, p).type == e.qk);
        CHECK(plan_tensor("blk.8.attn_k.weight", 256, 2, p).type == e.qk);
        CHECK(plan_tensor("blk.8.attn_v.weight", 256, 2, p).type == e.v);
        CHECK(plan_tensor("blk.8.attn_output.weight", 256, 2, p).type == e.attn_output);
        CHECK(plan_tensor("blk.8.ffn_gate.weight", 256, 2, p).type == e.gate_up);
        CHECK(plan_tensor("blk.8.ffn_up.weight", 256, 2, p).type == e.gate_up);
        CHECK(plan_tensor("blk.8.ffn_down.weight", 256, 2, p).type == e.down);
        CHECK(plan_tensor("blk.1.ffn_down.weight", 256, 2, p).type == e.down_first);
        CHECK(plan_tensor("blk.2.ffn_down.weight", 256, 2, p).type == e.down);
        CHECK(plan_tensor("blk.14.ffn_up.weight", 256, 2, p).type == e.gate_up_end);
        CHECK(plan_tensor("blk.0.ffn_gate.weight", 256, 2, p).type == e.gate_up_end);
        // Fewer than 8 layers: no layer is in the first eighth (llama.cpp's n / 8 is 0).
        p.context = {5, 2, false};
        CHECK(plan_tensor("blk.0.ffn_down.weight", 256, 2, p).type == e.down);
        p.context = {16, 4, false};
        CHECK(plan_tensor("blk.8.attn_v.weight", 256, 2, p).type == e.v_gqa);
        // Rows of 64 fall back as llama.cpp's tensor_type_fallback: every grid type to iq4_nl.
        const auto narrow = plan_tensor("blk.8.ffn_gate.weight", 64, 2, p);
        CHECK(narrow.type == (info(e.gate_up).block_size == 256 ? iq4_nl : e.gate_up));
    }
    // IQ3_XXS is the one mix that changes with an importance matrix (llama.cpp's has_imatrix).
    auto p = policy("iq3_xxs");
    p.context = {16, 2, true};
    CHECK(plan_tensor("blk.8.attn_v.weight", 256, 2, p).type == iq3_xxs);
    CHECK(plan_tensor("blk.8.ffn_down.weight", 256, 2, p).type == iq3_xxs);
    CHECK(plan_tensor("blk.0.ffn_down.weight", 256, 2, p).type == iq3_xxs);
    p.context.gqa = 8;
    CHECK(plan_tensor("blk.8.attn_v.weight", 256, 2, p).type == q4_K);
    // The iq4 mixes gain llama.cpp's rules too: q5_K attn_v at a grouped-query factor of 4, q5_K in the first
    // eighth of ffn_down without an importance matrix.
    auto iq4 = policy("iq4_xs");
    iq4.context = {16, 4, false};
    CHECK(plan_tensor("blk.8.attn_v.weight", 256, 2, iq4).type == q5_K);
    CHECK(plan_tensor("blk.0.ffn_down.weight", 256, 2, iq4).type == q5_K);
    iq4.context.importance = true;
    CHECK(plan_tensor("blk.0.ffn_down.weight", 256, 2, iq4).type == iq4_xs);
}

TEST_CASE("every grid i-quant is a weight type: its name picks llama.cpp's mix, and it falls back to iq4_nl then f16") {
    using enum ggml_type;
    for (const auto t : {iq1_s, iq1_m, iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s}) {
        CAPTURE(t);
        CHECK(is_weight_type(t));
        CHECK(fallback_of(t) == iq4_nl);
        // The type's name is llama.cpp's file type of that name (a named mix wins over the type alone).
        CHECK(policy(info(t).name).preset.file_type == file_type_for(t));
        const auto forced = policy("q8_0", {"ffn_down=" + std::string(info(t).name)});
        const auto chain = plan_tensor("blk.0.ffn_down.weight", 48, 2, forced);
        CHECK(chain.refused == std::vector{t, iq4_nl});
        CHECK(chain.type == f16);
    }
    const auto p = policy("q8_0", {"ffn_down=IQ2_XXS", "attn_.*=iq3_s"});
    CHECK(plan_tensor("blk.3.ffn_down.weight", 512, 2, p).type == iq2_xxs);
    CHECK(plan_tensor("blk.3.attn_k.weight", 512, 2, p).type == iq3_s);
    CHECK(plan_tensor("blk.3.ffn_up.weight", 512, 2, p).type == q8_0);
}
