// The persistent AtomSpace's header, which the umbrella leaves out (it needs RocksDB), compiled with the
// warnings a strict user turns on (as errors), its templates instantiated for both truth-value kinds so that
// their bodies are checked too.
#include <cogqat/cog/rocks_storage.hpp>
#include <cogqat/core/policy.hpp>

template class cogqat::cog::rocks_storage<cogqat::cog::float_truth_value>;
template class cogqat::cog::rocks_storage<cogqat::cog::quantized_truth_value<cogqat::BitWidth<8>>>;
