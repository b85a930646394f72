#pragma once
// Small pieces of the human-readable output that several commands print.

#include <cogqat/format/ggml_type.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace cogqat::cli {

/// "[64, 172]".
inline std::string shape_string(const std::vector<std::uint64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

inline std::string type_name(ggml_type t) { return std::string(info(t).name); }

}  // namespace cogqat::cli
