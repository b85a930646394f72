#pragma once
// The GGUF tensor types: their ids as stored in a GGUF file, ggml's names, and their block geometry.
// One constexpr table holds it all; every size calculation in the library reads it.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cogqat/core/error.hpp"

namespace cogqat {

/// ggml's tensor type ids, exactly as GGUF stores them in a tensor-info record.
enum class ggml_type : std::uint32_t {
    f32 = 0,
    f16 = 1,
    q4_0 = 2,
    q4_1 = 3,
    q5_0 = 6,
    q5_1 = 7,
    q8_0 = 8,
    q8_1 = 9,
    q2_K = 10,
    q3_K = 11,
    q4_K = 12,
    q5_K = 13,
    q6_K = 14,
    q8_K = 15,
    iq2_xxs = 16,
    iq2_xs = 17,
    iq3_xxs = 18,
    iq1_s = 19,
    iq4_nl = 20,
    iq3_s = 21,
    iq2_s = 22,
    iq4_xs = 23,
    i8 = 24,
    i16 = 25,
    i32 = 26,
    i64 = 27,
    f64 = 28,
    iq1_m = 29,
    bf16 = 30,
    tq1_0 = 34,
    tq2_0 = 35,
    mxfp4 = 39,
};

/// Geometry of one type: `block_size` values are stored in `type_size` bytes.
struct type_info {
    ggml_type type;
    std::string_view name;  ///< ggml's spelling, e.g. "q4_K"
    std::size_t block_size;
    std::size_t type_size;
    bool quantizable;  ///< cogqat can quantize floats into it and back

    [[nodiscard]] constexpr double bits_per_weight() const noexcept {
        return 8.0 * static_cast<double>(type_size) / static_cast<double>(block_size);
    }
};

inline constexpr std::array type_table{
        type_info{ggml_type::f32, "f32", 1, 4, true},
        type_info{ggml_type::f16, "f16", 1, 2, true},
        type_info{ggml_type::q4_0, "q4_0", 32, 18, true},
        type_info{ggml_type::q4_1, "q4_1", 32, 20, true},
        type_info{ggml_type::q5_0, "q5_0", 32, 22, true},
        type_info{ggml_type::q5_1, "q5_1", 32, 24, true},
        type_info{ggml_type::q8_0, "q8_0", 32, 34, true},
        type_info{ggml_type::q8_1, "q8_1", 32, 36, true},
        type_info{ggml_type::q2_K, "q2_K", 256, 84, true},
        type_info{ggml_type::q3_K, "q3_K", 256, 110, true},
        type_info{ggml_type::q4_K, "q4_K", 256, 144, true},
        type_info{ggml_type::q5_K, "q5_K", 256, 176, true},
        type_info{ggml_type::q6_K, "q6_K", 256, 210, true},
        type_info{ggml_type::q8_K, "q8_K", 256, 292, true},
        type_info{ggml_type::iq2_xxs, "iq2_xxs", 256, 66, false},
        type_info{ggml_type::iq2_xs, "iq2_xs", 256, 74, false},
        type_info{ggml_type::iq3_xxs, "iq3_xxs", 256, 98, true},
        type_info{ggml_type::iq1_s, "iq1_s", 256, 50, false},
        type_info{ggml_type::iq4_nl, "iq4_nl", 32, 18, true},
        type_info{ggml_type::iq3_s, "iq3_s", 256, 110, true},
        type_info{ggml_type::iq2_s, "iq2_s", 256, 82, true},
        type_info{ggml_type::iq4_xs, "iq4_xs", 256, 136, true},
        type_info{ggml_type::i8, "i8", 1, 1, false},
        type_info{ggml_type::i16, "i16", 1, 2, false},
        type_info{ggml_type::i32, "i32", 1, 4, false},
        type_info{ggml_type::i64, "i64", 1, 8, false},
        type_info{ggml_type::f64, "f64", 1, 8, false},
        type_info{ggml_type::iq1_m, "iq1_m", 256, 56, true},
        type_info{ggml_type::bf16, "bf16", 1, 2, true},
        type_info{ggml_type::tq1_0, "tq1_0", 256, 54, true},
        type_info{ggml_type::tq2_0, "tq2_0", 256, 66, true},
        type_info{ggml_type::mxfp4, "mxfp4", 32, 17, true},
};

/// The table entry of a type id read from a file, or nothing when the id is unknown.
[[nodiscard]] constexpr std::optional<type_info> find_type(std::uint32_t id) noexcept {
    for (const auto& t : type_table)
        if (static_cast<std::uint32_t>(t.type) == id) return t;
    return std::nullopt;
}

/// The table entry of `type`.
[[nodiscard]] constexpr const type_info& info(ggml_type type) {
    for (const auto& t : type_table)
        if (t.type == type) return t;
    throw invalid_argument_error("unknown ggml type id " + std::to_string(static_cast<std::uint32_t>(type)));
}

namespace detail {
[[nodiscard]] constexpr char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
[[nodiscard]] constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}
}  // namespace detail

/// The type ggml spells `name` (case-insensitive: "q4_k", "Q4_K" and "q4_K" are all q4_K).
/// Throws invalid_argument_error naming the known quantizable types when there is none.
[[nodiscard]] inline ggml_type parse_type(std::string_view name) {
    for (const auto& t : type_table)
        if (detail::iequals(t.name, name)) return t.type;
    std::string known;
    for (const auto& t : type_table) {
        if (!t.quantizable) continue;
        if (!known.empty()) known += ", ";
        known += t.name;
    }
    throw invalid_argument_error("unknown type name '" + std::string(name) + "' (known: " + known + ")");
}

namespace detail {
/// Throws shape_error, prefixed by `context`, unless n values are a whole number of blocks of `type`.
inline void require_whole_blocks(ggml_type type, std::size_t n, std::string_view context) {
    const auto& t = info(type);
    if (n % t.block_size != 0) {
        throw shape_error(std::string(context) + ": " + std::to_string(n) + " values is not a multiple of the " + std::string(t.name) +
                          " block size " + std::to_string(t.block_size));
    }
}
}  // namespace detail

/// Bytes taken by `n` values of `type`. Throws shape_error when n is not a multiple of the block size.
[[nodiscard]] inline std::size_t storage_size(ggml_type type, std::size_t n) {
    detail::require_whole_blocks(type, n, "storage_size");
    const auto& t = info(type);
    return n / t.block_size * t.type_size;
}

/// llama.cpp's llama_ftype values, stored as general.file_type (display and bookkeeping in llama.cpp).
enum class llama_file_type : std::uint32_t {
    all_f32 = 0,
    mostly_f16 = 1,
    mostly_q4_0 = 2,
    mostly_q4_1 = 3,
    mostly_q8_0 = 7,
    mostly_q5_0 = 8,
    mostly_q5_1 = 9,
    mostly_q2_K = 10,
    mostly_q3_K_s = 11,
    mostly_q3_K_m = 12,
    mostly_q4_K_s = 14,
    mostly_q4_K_m = 15,
    mostly_q5_K_s = 16,
    mostly_q5_K_m = 17,
    mostly_q6_K = 18,
    mostly_iq2_xxs = 19,
    mostly_iq2_xs = 20,
    mostly_iq3_xs = 22,  ///< iq3_s, iq3_xxs attn_q/attn_k and middle ffn_gate/ffn_up
    mostly_iq3_xxs = 23,
    mostly_iq1_s = 24,
    mostly_iq4_nl = 25,
    mostly_iq3_s = 26,
    mostly_iq3_m = 27,  ///< iq3_s with q4_K attn_v and attn_output
    mostly_iq2_s = 28,  ///< iq2_xs with iq3_s where llama.cpp gives more bits
    mostly_iq2_m = 29,  ///< iq2_s with iq3_s where llama.cpp gives more bits
    mostly_iq4_xs = 30,
    mostly_iq1_m = 31,
    mostly_bf16 = 32,
    mostly_tq1_0 = 36,
    mostly_tq2_0 = 37,
    mostly_mxfp4_moe = 38,  ///< MoE experts mxfp4, every other matrix q8_0
};

/// The file type llama.cpp names a file whose weights are mostly `type`.
[[nodiscard]] inline llama_file_type file_type_for(ggml_type type) {
    switch (type) {
        case ggml_type::f32:
            return llama_file_type::all_f32;
        case ggml_type::f16:
            return llama_file_type::mostly_f16;
        case ggml_type::bf16:
            return llama_file_type::mostly_bf16;
        case ggml_type::q4_0:
            return llama_file_type::mostly_q4_0;
        case ggml_type::q4_1:
            return llama_file_type::mostly_q4_1;
        case ggml_type::q5_0:
            return llama_file_type::mostly_q5_0;
        case ggml_type::q5_1:
            return llama_file_type::mostly_q5_1;
        case ggml_type::q8_0:
            return llama_file_type::mostly_q8_0;
        case ggml_type::q2_K:
            return llama_file_type::mostly_q2_K;
        case ggml_type::q3_K:
            return llama_file_type::mostly_q3_K_s;
        case ggml_type::q4_K:
            return llama_file_type::mostly_q4_K_s;
        case ggml_type::q5_K:
            return llama_file_type::mostly_q5_K_s;
        case ggml_type::q6_K:
            return llama_file_type::mostly_q6_K;
        case ggml_type::iq4_nl:
            return llama_file_type::mostly_iq4_nl;
        case ggml_type::iq4_xs:
            return llama_file_type::mostly_iq4_xs;
        case ggml_type::tq1_0:
            return llama_file_type::mostly_tq1_0;
        case ggml_type::tq2_0:
            return llama_file_type::mostly_tq2_0;
        case ggml_type::mxfp4:
            return llama_file_type::mostly_mxfp4_moe;
        case ggml_type::iq2_xxs:
            return llama_file_type::mostly_iq2_xxs;
        case ggml_type::iq2_xs:
            return llama_file_type::mostly_iq2_xs;
        case ggml_type::iq2_s:
            return llama_file_type::mostly_iq2_s;
        case ggml_type::iq3_xxs:
            return llama_file_type::mostly_iq3_xxs;
        case ggml_type::iq3_s:
            return llama_file_type::mostly_iq3_s;
        case ggml_type::iq1_s:
            return llama_file_type::mostly_iq1_s;
        case ggml_type::iq1_m:
            return llama_file_type::mostly_iq1_m;
        default:
            throw invalid_argument_error("no llama.cpp file type for " + std::string(info(type).name));
    }
}

}  // namespace cogqat
