// Writes the Hugging Face fixture folders of tests/hf_fixture.hpp (llama, qwen2, qwen3) under a directory, for
// run_interop.sh to convert with `cogqat convert hf` and load in llama.cpp.
//   cogqat_hf_fixtures DIR

#include <cstdio>
#include <exception>
#include <filesystem>

#include "../hf_fixture.hpp"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: cogqat_hf_fixtures DIR\n");
        return 2;
    }
    try {
        for (const char* arch : {"llama", "qwen2", "qwen3"})
            static_cast<void>(cogqat::test::write_hf_fixture(std::filesystem::path(argv[1]) / arch, arch));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cogqat_hf_fixtures: %s\n", e.what());
        return 1;
    }
    return 0;
}
