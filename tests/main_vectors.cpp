// The ggml vector tests need ../shared/testdata/ggml. Without it they are skipped (exit code 77, which
// CTest reports as "Skipped"), saying where they looked.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <filesystem>
#include <iostream>

#include "shared_data.hpp"

int main(int argc, char** argv) {
    const auto dir = cogqat::test::ggml_vectors_dir();
    if (!std::filesystem::exists(dir / "manifest.tsv")) {
        std::cout << "skipped: ggml test vectors not found at " << dir.string()
                  << " (set COGQAT_SHARED_DIR to the directory holding testdata/ggml)\n";
        return 77;
    }
    doctest::Context context(argc, argv);
    return context.run();
}
