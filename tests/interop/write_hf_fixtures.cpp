// Writes the Hugging Face fixture folders of tests/hf_fixture.hpp (llama, mistral, qwen2, qwen3, llama-spm) under a directory, for
// run_interop.sh to convert with `cogqat convert hf` and load in llama.cpp; or one folder of a given shape,
// for timing a conversion (docs/PERFORMANCE.md).
//   cogqat_hf_fixtures DIR
//   cogqat_hf_fixtures DIR ARCH HIDDEN FFN LAYERS HEADS KV_HEADS HEAD_DIM VOCAB

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>

#include "../hf_fixture.hpp"

int main(int argc, char** argv) {
    if (argc != 2 && argc != 10) {
        std::fprintf(stderr, "usage: cogqat_hf_fixtures DIR [ARCH HIDDEN FFN LAYERS HEADS KV_HEADS HEAD_DIM VOCAB]\n");
        return 2;
    }
    try {
        if (argc == 10) {
            const auto n = [&](int i) { return static_cast<std::uint32_t>(std::strtoul(argv[i], nullptr, 10)); };
            const cogqat::architecture_config shape{n(3), n(4), n(5), n(6), n(7), n(8), n(9), 4096};
            static_cast<void>(cogqat::test::write_hf_fixture(argv[1], argv[2], 1, &shape));
            return 0;
        }
        for (const char* arch : {"llama", "mistral", "qwen2", "qwen3", "llama-spm"})
            static_cast<void>(cogqat::test::write_hf_fixture(std::filesystem::path(argv[1]) / arch, arch));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cogqat_hf_fixtures: %s\n", e.what());
        return 1;
    }
    return 0;
}
