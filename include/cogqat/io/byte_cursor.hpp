#pragma once
// Reading consecutive little-endian fields of a binary file (llama2.c checkpoints and tokenizers, llama.cpp's
// legacy imatrix), with a bounds check before every field that names what was being read when the bytes ran out.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "cogqat/core/error.hpp"
#include "cogqat/core/little_endian.hpp"

namespace cogqat::io {

/// A read position in `bytes`; every read throws format_error ("SOURCE: truncated at byte N while reading
/// WHAT (n bytes needed, m left)") rather than run past the end.
class byte_cursor {
public:
    byte_cursor(std::span<const std::byte> bytes, std::string source) : bytes_(bytes), source_(std::move(source)) {}

    template <LittleEndianScalar T>
    T read(std::string_view what) {
        require(sizeof(T), what);
        const T v = load_le<T>(bytes_.data() + offset_);
        offset_ += sizeof(T);
        return v;
    }
    std::span<const std::byte> take(std::size_t n, std::string_view what) {
        require(n, what);
        const auto s = bytes_.subspan(offset_, n);
        offset_ += n;
        return s;
    }
    std::string read_string(std::size_t n, std::string_view what) {
        const auto s = take(n, what);
        return {reinterpret_cast<const char*>(s.data()), s.size()};
    }
    [[nodiscard]] std::size_t offset() const noexcept { return offset_; }
    [[nodiscard]] std::size_t remaining() const noexcept { return bytes_.size() - offset_; }
    [[nodiscard]] bool at_end() const noexcept { return offset_ == bytes_.size(); }

    /// format_error unless `n` more bytes follow (checked before allocating for them).
    void require(std::size_t n, std::string_view what) const {
        if (n > remaining()) {
            throw format_error(source_ + ": truncated at byte " + std::to_string(offset_) + " while reading " + std::string(what) + " (" +
                               std::to_string(n) + " bytes needed, " + std::to_string(remaining()) + " left)");
        }
    }

private:
    std::span<const std::byte> bytes_;
    std::string source_;
    std::size_t offset_ = 0;
};

}  // namespace cogqat::io
