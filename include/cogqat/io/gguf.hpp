#pragma once
// GGUF v3 files: values and tensor descriptions (gguf/value.hpp), the reader (gguf/reader.hpp), the
// writer (gguf/writer.hpp) and split sets (gguf/split.hpp), all in namespace cogqat::gguf. Include the one you
// need, or this for all.

#include "cogqat/gguf/reader.hpp"
#include "cogqat/gguf/split.hpp"
#include "cogqat/gguf/value.hpp"
#include "cogqat/gguf/writer.hpp"
