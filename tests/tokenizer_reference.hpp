#pragma once
// The tokenizer's definition, quadratic and obviously right: after every merge the whole text is searched again
// for the adjacent pair whose merged piece scores highest (leftmost on ties; a NaN score reads as -inf). The
// tokenizer's heap must give exactly these tokens (tests/test_tokenizer.cpp, tests/fuzz/fuzz_tokenizer.cpp).

#include <cogqat/model/llama_weights.hpp>
#include <cogqat/model/tokenizer.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cogqat::test {

/// The definition, quadratic: after every merge the whole text is searched again for the best pair.
inline std::vector<tokenizer::token> reference_encode(const vocabulary& v, std::string_view text, bool add_space_prefix) {
    if (text.empty()) return {};  // llama.cpp: no text, no fragment to prefix a space to
    std::unordered_map<std::string, tokenizer::token> ids;
    std::array<tokenizer::token, 256> bytes{};
    bytes.fill(static_cast<tokenizer::token>(v.unknown_id));
    for (std::size_t id = 0; id < v.pieces.size(); ++id) {
        const auto kind = v.kinds[id];
        if (kind == token_kind::byte && v.pieces[id].size() == 6)
            bytes[static_cast<unsigned char>(std::stoi(v.pieces[id].substr(3, 2), nullptr, 16))] = static_cast<tokenizer::token>(id);
        else if (kind == token_kind::normal || kind == token_kind::user_defined || kind == token_kind::unknown)
            ids.emplace(v.pieces[id], static_cast<tokenizer::token>(id));
    }
    std::string normalized = add_space_prefix ? "\xE2\x96\x81" : "";
    for (char c : text) normalized += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
    std::vector<std::string> symbols;
    for (std::size_t i = 0; i < normalized.size();) {
        const auto lead = static_cast<unsigned char>(normalized[i]);
        const std::size_t n = lead < 0x80 ? 1 : (lead >> 5) == 6 ? 2 : (lead >> 4) == 14 ? 3 : (lead >> 3) == 30 ? 4 : 1;
        symbols.push_back(normalized.substr(i, std::min(n, normalized.size() - i)));
        i += symbols.back().size();
    }
    const auto score = [&](tokenizer::token id) {
        const float s = v.scores[static_cast<std::size_t>(id)];
        return std::isnan(s) ? -std::numeric_limits<float>::infinity() : s;
    };
    for (;;) {
        std::size_t best = symbols.size();
        float best_score = 0.0f;
        for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
            const auto it = ids.find(symbols[i] + symbols[i + 1]);
            if (it != ids.end() && (best == symbols.size() || score(it->second) > best_score)) best = i, best_score = score(it->second);
        }
        if (best == symbols.size()) break;
        symbols[best] += symbols[best + 1];
        symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    std::vector<tokenizer::token> out;
    for (const auto& s : symbols) {
        if (const auto it = ids.find(s); it != ids.end())
            out.push_back(it->second);
        else
            for (unsigned char b : s) out.push_back(bytes[b]);
    }
    return out;
}

/// <unk>, <s>, </s> and the 256 byte tokens: a vocabulary that can encode any text, to add pieces to.
inline vocabulary byte_vocabulary() {
    vocabulary v;
    auto add = [&](std::string piece, token_kind kind) {
        v.pieces.push_back(std::move(piece)), v.scores.push_back(0.0f), v.kinds.push_back(kind);
    };
    add("<unk>", token_kind::unknown), add("<s>", token_kind::control), add("</s>", token_kind::control);
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        add(name, token_kind::byte);
    }
    return v;
}

/// Appends a piece to `v`.
inline void add_piece(vocabulary& v, std::string piece, float score, token_kind kind = token_kind::normal) {
    v.pieces.push_back(std::move(piece)), v.scores.push_back(score), v.kinds.push_back(kind);
}

}  // namespace cogqat::test
