// Bit-exactness against ggml: for every case of ../shared/testdata/ggml and every format, our quantizer
// writes ggml's bytes and our dequantizer gives ggml's floats, bit for bit.

#include <doctest/doctest.h>

#include <cogqat/cogqat.hpp>

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "format_list.hpp"
#include "shared_data.hpp"

namespace {

std::vector<std::string> read_lines(const std::filesystem::path& p) {
    std::ifstream in(p);
    REQUIRE_MESSAGE(in, "cannot open " << p.string());
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.push_back(line);
    return lines;
}

/// (case, type) pairs of manifest.tsv, header skipped.
std::set<std::pair<std::string, std::string>> manifest_pairs() {
    std::set<std::pair<std::string, std::string>> pairs;
    const auto lines = read_lines(cogqat::test::ggml_vectors_dir() / "manifest.tsv");
    for (std::size_t i = 1; i < lines.size(); ++i) {
        std::istringstream fields(lines[i]);
        std::string name, type;
        fields >> name >> type;
        pairs.emplace(name, type);
    }
    return pairs;
}

std::vector<std::string> case_names() {
    std::vector<std::string> names;
    const auto lines = read_lines(cogqat::test::ggml_vectors_dir() / "inputs.tsv");
    for (std::size_t i = 1; i < lines.size(); ++i) names.push_back(lines[i].substr(0, lines[i].find('\t')));
    return names;
}

std::vector<float> as_floats(const std::vector<std::byte>& bytes) {
    std::vector<float> v(bytes.size() / 4);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = cogqat::load_le<float>(bytes.data() + 4 * i);
    return v;
}

}  // namespace

TEST_CASE("the vector set is the one documented: 9 cases x 11 formats") {
    CHECK(case_names().size() == 9);
    CHECK(manifest_pairs().size() == 99);
}

TEST_CASE_TEMPLATE("quantize and dequantize are bit-exact with ggml", F, COGQAT_VECTOR_FORMATS) {
    const auto dir = cogqat::test::ggml_vectors_dir();
    const std::string type_name(cogqat::info(F::type).name);
    const auto listed = manifest_pairs();
    for (const auto& name : case_names()) {
        CAPTURE(name);
        CAPTURE(type_name);
        REQUIRE(listed.count({name, type_name}) == 1);
        const auto input = as_floats(cogqat::io::read_file(dir / (name + ".f32")));
        const auto expected_bytes = cogqat::io::read_file(dir / (name + "." + type_name + ".bin"));
        const auto expected_floats = cogqat::io::read_file(dir / (name + "." + type_name + ".deq.f32"));

        std::vector<std::byte> bytes(cogqat::storage_size(F::type, input.size()));
        cogqat::quantize<F>(input, bytes);
        REQUIRE(bytes.size() == expected_bytes.size());
        std::size_t first_difference = 0;
        while (first_difference < bytes.size() && bytes[first_difference] == expected_bytes[first_difference]) ++first_difference;
        CHECK_MESSAGE(first_difference == bytes.size(),
                      "first differing byte at " << first_difference << " (block " << first_difference / F::type_size << ")");

        std::vector<float> restored(input.size());
        cogqat::dequantize<F>(expected_bytes, restored);
        CHECK(std::memcmp(restored.data(), expected_floats.data(), expected_floats.size()) == 0);

        // The run-time entry point takes the same path.
        CHECK(cogqat::quantize(F::type, input) == expected_bytes);
    }
}
