#pragma once
// Text from files (tensor names, metadata strings) and from command lines is bytes, not always UTF-8. Where it
// must be UTF-8 (JSON, HTML), each ill-formed part becomes U+FFFD: one per maximal ill-formed subpart, as
// Unicode recommends (chapter 3, "U+FFFD Substitution of Maximal Subparts") and as nlohmann::json's
// error_handler_t::replace does, so a name reads the same in every report.

#include <cstddef>
#include <string>
#include <string_view>

namespace cogqat {

namespace detail {
/// The length of the well-formed UTF-8 sequence at the start of `s`, or 0 with `prefix` set to the length of
/// the longest start of a well-formed sequence there (at least 1: the byte that is replaced).
inline std::size_t utf8_sequence(std::string_view s, std::size_t& prefix) noexcept {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char lead = byte(0);
    prefix = 1;
    if (lead < 0x80) return 1;
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // the range of the second byte; later bytes are 80..BF
    if (lead >= 0xC2 && lead <= 0xDF)
        length = 2;
    else if (lead >= 0xE0 && lead <= 0xEF)
        length = 3, low = lead == 0xE0 ? 0xA0 : 0x80, high = lead == 0xED ? 0x9F : 0xBF;
    else if (lead >= 0xF0 && lead <= 0xF4)
        length = 4, low = lead == 0xF0 ? 0x90 : 0x80, high = lead == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    for (std::size_t i = 1; i < length; ++i) {
        if (i >= s.size()) return 0;
        const unsigned char b = byte(i);
        if (i == 1 ? (b < low || b > high) : (b < 0x80 || b > 0xBF)) return 0;
        prefix = i + 1;
    }
    return length;
}
}  // namespace detail

/// Whether `s` is well-formed UTF-8.
[[nodiscard]] inline bool is_valid_utf8(std::string_view s) noexcept {
    for (std::size_t i = 0, prefix = 0; i < s.size();) {
        const std::size_t n = detail::utf8_sequence(s.substr(i), prefix);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

/// `s` with each maximal ill-formed subpart replaced by U+FFFD; well-formed text is returned unchanged.
[[nodiscard]] inline std::string valid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0, prefix = 0; i < s.size();) {
        const std::size_t n = detail::utf8_sequence(s.substr(i), prefix);
        if (n)
            out.append(s.substr(i, n)), i += n;
        else
            out += "\xEF\xBF\xBD", i += prefix;
    }
    return out;
}

}  // namespace cogqat
