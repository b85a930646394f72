#pragma once
// Code points for the byte-level BPE pre-tokenizers: each one's general category folded to the classes their
// patterns test (\p{L}, \p{N}, \s, ...), and UTF-8 read and written the way llama.cpp's tokenizer does, so that
// text splits where llama.cpp splits it, malformed bytes included.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/core/unicode_data.hpp"

namespace cogqat {

/// A code point's general category, folded: letter is \p{L}, number \p{N}, and so on; undefined is unassigned.
enum class unicode_category : std::uint8_t { undefined, number, letter, separator, mark, punctuation, symbol, control };

/// The folded category of `cpt` (undefined beyond U+10FFFF), from the generated range table.
[[nodiscard]] constexpr unicode_category category_of(char32_t cpt) noexcept {
    if (cpt >= 0x110000) return unicode_category::undefined;
    const auto& table = detail::unicode_category_ranges;
    // The last entry whose code point is at most cpt: the first greater than (cpt, any class), minus one.
    const auto it = std::upper_bound(table.begin(), table.end(), static_cast<std::uint32_t>(cpt) << 4 | 0xFu);
    return static_cast<unicode_category>(*(it - 1) & 0xFu);
}

/// Whether `cpt` is Unicode White_Space (PropList.txt), which is what \s means to the pre-tokenizers.
[[nodiscard]] constexpr bool is_unicode_whitespace(char32_t cpt) noexcept {
    return (cpt >= 0x09 && cpt <= 0x0D) || cpt == 0x20 || cpt == 0x85 || cpt == 0xA0 || cpt == 0x1680 || (cpt >= 0x2000 && cpt <= 0x200A) ||
           cpt == 0x2028 || cpt == 0x2029 || cpt == 0x202F || cpt == 0x205F || cpt == 0x3000;
}

/// The code points of `text` as llama.cpp's tokenizer reads them: a lead byte and the continuation bytes its
/// high bits call for make one code point, without the overlong or surrogate checks of strict UTF-8; a byte that
/// starts no such sequence becomes U+FFFD and reading goes on at the next byte. A sequence that would decode
/// beyond U+10FFFF (lead bytes F5..F7), which makes llama.cpp's tokenizer throw, is malformed here too.
[[nodiscard]] inline std::vector<char32_t> lenient_code_points(std::string_view text) {
    std::vector<char32_t> out;
    out.reserve(text.size());
    const auto byte = [&](std::size_t i) { return static_cast<char32_t>(static_cast<unsigned char>(text[i])); };
    const auto continues = [&](std::size_t i) { return i < text.size() && (byte(i) & 0xC0) == 0x80; };
    for (std::size_t i = 0; i < text.size();) {
        const char32_t lead = byte(i);
        std::size_t length = 0;
        if (lead < 0x80)
            length = 1;
        else if ((lead & 0xE0) == 0xC0)
            length = 2;
        else if ((lead & 0xF0) == 0xE0)
            length = 3;
        else if ((lead & 0xF8) == 0xF0)
            length = 4;
        bool ok = length > 0;
        for (std::size_t k = 1; ok && k < length; ++k) ok = continues(i + k);
        char32_t cpt = 0;
        if (ok) {
            cpt = length == 1 ? lead : lead & (0x7Fu >> length);
            for (std::size_t k = 1; k < length; ++k) cpt = cpt << 6 | (byte(i + k) & 0x3F);
            ok = cpt < 0x110000;
        }
        out.push_back(ok ? cpt : char32_t{0xFFFD});
        i += ok ? length : 1;
    }
    return out;
}

/// Appends `cpt` (at most U+10FFFF; surrogates are written as they come, as llama.cpp does) as UTF-8.
inline void append_utf8(std::string& out, char32_t cpt) {
    const auto put = [&](char32_t v) { out.push_back(static_cast<char>(static_cast<unsigned char>(v))); };
    if (cpt < 0x80) {
        put(cpt);
    } else if (cpt < 0x800) {
        put(0xC0 | cpt >> 6), put(0x80 | (cpt & 0x3F));
    } else if (cpt < 0x10000) {
        put(0xE0 | cpt >> 12), put(0x80 | (cpt >> 6 & 0x3F)), put(0x80 | (cpt & 0x3F));
    } else {
        put(0xF0 | cpt >> 18), put(0x80 | (cpt >> 12 & 0x3F)), put(0x80 | (cpt >> 6 & 0x3F)), put(0x80 | (cpt & 0x3F));
    }
}

}  // namespace cogqat
