#pragma once
// A SentencePiece model file (tokenizer.model, the serialized ModelProto of sentencepiece_model.proto): its
// pieces, scores and types, which is all llama.cpp's converter reads from it. Only the protobuf wire format's
// four live encodings are understood (varint, 64-bit, length-delimited, 32-bit); every other field is skipped by
// its encoding, as protobuf readers do, so files from any sentencepiece version read alike.
//
// Why not libprotobuf or libsentencepiece: both are compiled libraries that a header-only library would make
// every user link, for three fields of one message. The reader below checks every length against the bytes
// that remain, so a damaged file is refused and never read past.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/io/file.hpp"

namespace cogqat::io {

/// sentencepiece_model.proto's SentencePiece.Type; the numbers are GGUF's token types too.
enum class sentencepiece_type : std::int32_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

/// One entry of ModelProto.pieces.
struct sentencepiece_piece {
    std::string piece;
    float score = 0.0f;
    sentencepiece_type type = sentencepiece_type::normal;  ///< proto2's default when the field is absent
};

namespace detail {

/// Protobuf's wire format over a byte span, every read bounds-checked. `where` names the file in errors.
class protobuf_cursor {
public:
    enum class wire : std::uint32_t { varint = 0, fixed64 = 1, bytes = 2, fixed32 = 5 };
    struct field {
        std::uint32_t number;
        wire type;
    };

    /// `base`: where `bytes` start in the file, so that errors inside a nested message name the file's byte.
    protobuf_cursor(std::span<const std::byte> bytes, std::string_view where, std::size_t base = 0)
            : bytes_(bytes), where_(where), base_(base) {}

    [[nodiscard]] bool done() const noexcept { return at_ == bytes_.size(); }
    [[nodiscard]] std::size_t offset() const noexcept { return at_; }

    [[nodiscard]] std::uint64_t varint() {
        std::uint64_t value = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
            if (at_ == bytes_.size()) fail("a varint runs past the end");
            const auto b = std::to_integer<std::uint64_t>(bytes_[at_++]);
            value |= (b & 0x7f) << shift;
            if ((b & 0x80) == 0) return value;
        }
        fail("a varint is longer than 10 bytes");
    }

    [[nodiscard]] field key() {
        const std::size_t start = at_;
        const std::uint64_t k = varint();
        const auto type = static_cast<std::uint32_t>(k & 7);
        if (type == 3 || type == 4) fail_at(start, "a group (wire type " + std::to_string(type) + "), which no SentencePiece model has");
        if (type > 5) fail_at(start, "wire type " + std::to_string(type) + ", which protobuf does not define");
        if ((k >> 3) == 0 || (k >> 3) > 0x1fffffff) fail_at(start, "field number " + std::to_string(k >> 3));
        return {static_cast<std::uint32_t>(k >> 3), static_cast<wire>(type)};
    }

    /// The next `n` bytes, or format_error when fewer remain.
    [[nodiscard]] std::span<const std::byte> take(std::uint64_t n) {
        if (n > bytes_.size() - at_)
            fail("a field of " + std::to_string(n) + " bytes runs past the end (" + std::to_string(bytes_.size() - at_) + " remain)");
        const auto out = bytes_.subspan(at_, static_cast<std::size_t>(n));
        at_ += static_cast<std::size_t>(n);
        return out;
    }
    [[nodiscard]] std::span<const std::byte> length_delimited() { return take(varint()); }
    [[nodiscard]] float fixed32_float() {
        const auto b = take(4);
        std::uint32_t bits = 0;
        for (int i = 3; i >= 0; --i) bits = (bits << 8) | std::to_integer<std::uint32_t>(b[static_cast<std::size_t>(i)]);
        return std::bit_cast<float>(bits);
    }

    /// Steps over a field of encoding `type` that is not read.
    void skip(wire type) {
        switch (type) {
            case wire::varint:
                static_cast<void>(varint());
                return;
            case wire::fixed64:
                static_cast<void>(take(8));
                return;
            case wire::bytes:
                static_cast<void>(length_delimited());
                return;
            case wire::fixed32:
                static_cast<void>(take(4));
                return;
        }
    }

    /// format_error unless field `f` has encoding `expected`.
    void expect(field f, wire expected, std::string_view what) const {
        if (f.type != expected)
            fail(std::string(what) + " (field " + std::to_string(f.number) + ") has wire type " +
                 std::to_string(static_cast<std::uint32_t>(f.type)) + ", not " + std::to_string(static_cast<std::uint32_t>(expected)));
    }

    [[noreturn]] void fail(const std::string& why) const { fail_at(at_, why); }
    [[noreturn]] void fail_at(std::size_t at, const std::string& why) const {
        throw format_error("'" + std::string(where_) + "': not a SentencePiece model: " + why + " (at byte " + std::to_string(base_ + at) +
                           ")");
    }

private:
    std::span<const std::byte> bytes_;
    std::string_view where_;
    std::size_t base_ = 0;
    std::size_t at_ = 0;
};

[[nodiscard]] inline sentencepiece_piece read_sentencepiece_piece(std::span<const std::byte> bytes, std::size_t base,
                                                                  std::string_view where, std::size_t index) {
    protobuf_cursor in(bytes, where, base);
    sentencepiece_piece p;
    bool has_piece = false;
    while (!in.done()) {
        const auto f = in.key();
        switch (f.number) {
            case 1: {
                in.expect(f, protobuf_cursor::wire::bytes, "a piece's text");
                const auto text = in.length_delimited();
                p.piece.assign(reinterpret_cast<const char*>(text.data()), text.size());
                has_piece = true;
                break;
            }
            case 2:
                in.expect(f, protobuf_cursor::wire::fixed32, "a piece's score");
                p.score = in.fixed32_float();
                break;
            case 3: {
                in.expect(f, protobuf_cursor::wire::varint, "a piece's type");
                const std::uint64_t type = in.varint();
                if (type < 1 || type > 6)
                    in.fail_at(0, "piece " + std::to_string(index) + " has type " + std::to_string(type) + " (SentencePiece's are 1 to 6)");
                p.type = static_cast<sentencepiece_type>(type);
                break;
            }
            default:
                in.skip(f.type);
        }
    }
    if (!has_piece || p.piece.empty()) in.fail_at(0, "piece " + std::to_string(index) + " has no text");
    return p;
}

}  // namespace detail

/// The pieces of a serialized SentencePiece ModelProto, in id order. format_error naming `where` and the byte
/// for a truncated or malformed encoding, a piece without text or of an unknown type, and a model without pieces.
[[nodiscard]] inline std::vector<sentencepiece_piece> parse_sentencepiece_model(std::span<const std::byte> bytes, std::string_view where) {
    detail::protobuf_cursor in(bytes, where);
    std::vector<sentencepiece_piece> pieces;
    while (!in.done()) {
        const auto f = in.key();
        if (f.number == 1) {
            in.expect(f, detail::protobuf_cursor::wire::bytes, "a piece");
            const auto body = in.length_delimited();
            pieces.push_back(detail::read_sentencepiece_piece(body, in.offset() - body.size(), where, pieces.size()));
        } else {
            in.skip(f.type);
        }
    }
    if (pieces.empty()) in.fail("it has no pieces");
    return pieces;
}

/// parse_sentencepiece_model over the file at `path`; io_error when it cannot be read.
[[nodiscard]] inline std::vector<sentencepiece_piece> read_sentencepiece_model(const std::filesystem::path& path) {
    const auto bytes = read_file(path);
    return parse_sentencepiece_model(std::span<const std::byte>(bytes), path.string());
}

}  // namespace cogqat::io
