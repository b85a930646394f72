#pragma once
// cogqat: header-only, data-free quantization of language models into GGUF's formats.
// Including this header brings in the whole public API.

#include "cogqat/core/error.hpp"
#include "cogqat/core/error_metrics.hpp"
#include "cogqat/core/float16.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/core/policy.hpp"
#include "cogqat/core/little_endian.hpp"
#include "cogqat/core/tensor_view.hpp"
#include "cogqat/format/block_format.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/format/ggml_type.hpp"
#include "cogqat/format/k_formats.hpp"
#include "cogqat/format/legacy_formats.hpp"
#include "cogqat/io/file.hpp"
#include "cogqat/quant/quantizer.hpp"
