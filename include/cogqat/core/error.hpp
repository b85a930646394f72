#pragma once
// Exception types of cogqat. Every failure the library can detect in its input is reported with one of
// these, never with a crash or undefined behaviour; the message says what went wrong and where.

#include <cstddef>
#include <stdexcept>
#include <string>

namespace cogqat {

/// Base of every exception cogqat throws. Catch this to handle all of them.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A parameter is not one the operation accepts (unknown type name, bad option value, ...).
class invalid_argument_error : public error {
public:
    using error::error;
};

/// Sizes do not fit: a length that is not a multiple of the block, an output buffer of the wrong size, ...
class shape_error : public error {
public:
    using error::error;
};

/// The data holds a value the operation cannot represent (NaN or Inf), at a known position.
class value_error : public error {
public:
    value_error(const std::string& what, std::size_t index) : error(what), index_(index) {}
    /// Position of the offending element in the input.
    [[nodiscard]] std::size_t index() const noexcept { return index_; }

private:
    std::size_t index_;
};

/// A file or stream could not be opened, read or written.
class io_error : public error {
public:
    using error::error;
};

/// Bytes that do not form a valid encoding: truncated or malformed data, with the offset where it broke.
class format_error : public error {
public:
    using error::error;
};

}  // namespace cogqat
