#pragma once
// Small pieces of the human-readable output that several commands print.

#include <cogqat/core/matrix_shape.hpp>
#include <cogqat/format/ggml_type.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace cogqat::cli {

inline std::string type_name(ggml_type t) { return std::string(info(t).name); }

}  // namespace cogqat::cli
