// The `cogqat raw` command line: results written, figures printed, and every bad input refused with a
// message and a non-zero exit status.

#include <doctest/doctest.h>

#include <cogqat/cogqat.hpp>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "cli_helpers.hpp"
#include "hf_fixture.hpp"
#include "random_data.hpp"

namespace fs = std::filesystem;
using namespace cogqat::test;

TEST_CASE("cogqat raw quantize and dequantize round-trip every format") {
    temp_dir dir;
    const auto x = cogqat::test::gaussian_values(1024, 21);
    cogqat::io::write_f32_file(dir.file("in.f32"), x);
    for (const char* type : {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q8_1", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "q8_K"}) {
        CAPTURE(type);
        const auto q =
                run_cli(std::string("raw quantize --type ") + type + " '" + dir.file("in.f32") + "' '" + dir.file("out.bin") + "' --json");
        REQUIRE_MESSAGE(q.status == 0, q.output);
        const auto report = nlohmann::json::parse(q.output);
        const auto t = cogqat::parse_type(type);
        CHECK(report["type"] == type);
        CHECK(report["values"] == 1024);
        CHECK(report["output_bytes"] == cogqat::storage_size(t, 1024));
        CHECK(report["bits_per_weight"].get<double>() == doctest::Approx(cogqat::info(t).bits_per_weight()));
        const auto written = cogqat::io::read_file(dir.file("out.bin"));
        CHECK(written == cogqat::quantize(t, x));
        const auto expected_error = cogqat::measure_error(x, cogqat::dequantize(t, written));
        CHECK(report["rmse"].get<double>() == doctest::Approx(expected_error.rmse));
        CHECK(report["max_abs_error"].get<double>() == doctest::Approx(expected_error.max_abs_error));

        const auto d = run_cli(std::string("raw dequantize --type ") + type + " '" + dir.file("out.bin") + "' '" + dir.file("back.f32") +
                               "' --reference '" + dir.file("in.f32") + "' --json");
        REQUIRE_MESSAGE(d.status == 0, d.output);
        CHECK(cogqat::io::read_f32_file(dir.file("back.f32")) == cogqat::dequantize(t, written));
        CHECK(nlohmann::json::parse(d.output)["rmse"].get<double>() == doctest::Approx(expected_error.rmse));
    }
}

TEST_CASE("cogqat raw quantize prints a human-readable summary; type names are case-insensitive") {
    temp_dir dir;
    cogqat::io::write_f32_file(dir.file("in.f32"), cogqat::test::gaussian_values(512, 22));
    const auto r = run_cli("raw quantize -t Q4_k '" + dir.file("in.f32") + "' '" + dir.file("out.bin") + "'");
    CHECK(r.status == 0);
    CHECK(r.output.find("q4_K: 512 values -> 288 bytes (4.5 bits per weight") != std::string::npos);
    CHECK(r.output.find("RMSE") != std::string::npos);
    CHECK(r.output.find("max error") != std::string::npos);
}

TEST_CASE("cogqat raw refuses bad input with a message and a non-zero status") {
    temp_dir dir;
    cogqat::io::write_f32_file(dir.file("in.f32"), cogqat::test::gaussian_values(100, 23));
    cogqat::io::write_f32_file(dir.file("ok.f32"), cogqat::test::gaussian_values(256, 24));

    SUBCASE("length not a multiple of the block") {
        const auto r = run_cli("raw quantize --type q4_K '" + dir.file("in.f32") + "' '" + dir.file("out.bin") + "'");
        CHECK(r.status == 1);
        CHECK(r.output.find("100 values is not a multiple of the q4_K block size 256") != std::string::npos);
        CHECK_FALSE(fs::exists(dir.file("out.bin")));
    }
    SUBCASE("unknown type name") {
        const auto r = run_cli("raw quantize --type q9_X '" + dir.file("ok.f32") + "' '" + dir.file("out.bin") + "'");
        CHECK(r.status == 2);
        CHECK(r.output.find("unknown type name 'q9_X'") != std::string::npos);
    }
    SUBCASE("truncated float input") {
        write_bytes(dir.file("odd.f32"), std::string(10, '\0'));
        const auto r = run_cli("raw quantize --type q8_0 '" + dir.file("odd.f32") + "' '" + dir.file("out.bin") + "'");
        CHECK(r.status == 1);
        CHECK(r.output.find("has 10 bytes, not a whole number of float32 values") != std::string::npos);
    }
    SUBCASE("truncated block input") {
        write_bytes(dir.file("cut.bin"), std::string(143, '\0'));
        const auto r = run_cli("raw dequantize --type q4_K '" + dir.file("cut.bin") + "' '" + dir.file("out.f32") + "'");
        CHECK(r.status == 1);
        CHECK(r.output.find("has 143 bytes, not a whole number of 144-byte q4_K blocks") != std::string::npos);
    }
    SUBCASE("NaN or Inf in the input, with its index") {
        auto x = cogqat::test::gaussian_values(64, 25);
        x[41] = std::numeric_limits<float>::quiet_NaN();
        cogqat::io::write_f32_file(dir.file("nan.f32"), x);
        auto r = run_cli("raw quantize --type q8_0 '" + dir.file("nan.f32") + "' '" + dir.file("out.bin") + "'");
        CHECK(r.status == 1);
        CHECK(r.output.find("input[41] is NaN") != std::string::npos);
        x[41] = 1.0f;
        x[7] = -std::numeric_limits<float>::infinity();
        cogqat::io::write_f32_file(dir.file("inf.f32"), x);
        r = run_cli("raw quantize --type q8_0 '" + dir.file("inf.f32") + "' '" + dir.file("out.bin") + "'");
        CHECK(r.status == 1);
        CHECK(r.output.find("input[7] is -Inf") != std::string::npos);
    }
    SUBCASE("missing input file") {
        const auto r = run_cli("raw quantize --type q8_0 '" + dir.file("missing.f32") + "' '" + dir.file("out.bin") + "'");
        CHECK(r.status == 1);
        CHECK(r.output.find("cannot open '" + dir.file("missing.f32") + "' for reading") != std::string::npos);
    }
    SUBCASE("empty input file") {
        write_bytes(dir.file("empty.f32"), "");
        const auto r = run_cli("raw quantize --type q8_0 '" + dir.file("empty.f32") + "' '" + dir.file("out.bin") + "'");
        CHECK(r.status == 1);
        CHECK(r.output.find("is empty") != std::string::npos);
    }
    SUBCASE("output path that cannot be written") {
        const auto r = run_cli("raw quantize --type q8_0 '" + dir.file("ok.f32") + "' '" + dir.file("no/such/dir/out.bin") + "'");
        CHECK(r.status == 1);
        CHECK(r.output.find("cannot write '" + dir.file("no/such/dir/out.bin") + "'") != std::string::npos);
    }
    SUBCASE("missing arguments") {
        const auto r = run_cli("raw quantize '" + dir.file("ok.f32") + "'");
        CHECK(r.status == 2);
        CHECK(r.output.find("--type is required") != std::string::npos);
    }
}

TEST_CASE("cogqat raw survey compares every block format on one array") {
    temp_dir dir;
    cogqat::io::write_f32_file(dir.file("in.f32"), cogqat::test::gaussian_values(1024, 26));
    const auto r = run_cli("raw survey '" + dir.file("in.f32") + "' --json");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    int lines = 0;
    double previous_q4_rmse = 0;
    std::istringstream in(r.output);
    for (std::string line; std::getline(in, line);) {
        const auto j = nlohmann::json::parse(line);
        ++lines;
        if (j["type"] == "q4_0") previous_q4_rmse = j["rmse"].get<double>();
        if (j["type"] == "q8_0") CHECK(j["rmse"].get<double>() < previous_q4_rmse);
    }
    // One line per quantizable block format (f32, f16 and bf16 are not block formats).
    const auto formats = std::count_if(cogqat::type_table.begin(), cogqat::type_table.end(), [](const cogqat::type_info& t) {
        return t.quantizable && t.block_size > 1 && 1024 % t.block_size == 0;
    });
    CHECK(formats >= 21);  // 12 affine, 5 table-decoded, 4 grid i-quants that need no importance
    CHECK(lines == formats);
}

TEST_CASE("cogqat convert, quantize and inspect a model") {
    temp_dir dir;
    auto r = run_cli("convert synthetic '" + dir.file("f32.gguf") + "' --seed 3");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("vocab 259") != std::string::npos);

    // A shape of one's own; shapes the runtime cannot take are refused per option.
    r = run_cli("convert synthetic '" + dir.file("shaped.gguf") + "' --dim 64 --ffn 96 --layers 3 --heads 4 --kv-heads 2 --vocab 300");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("dim 64, hidden 96, 3 layers, 4 heads (2 kv), vocab 300") != std::string::npos);
    r = run_cli("convert synthetic '" + dir.file("bad.gguf") + "' --dim 64 --heads 5");
    CHECK(r.status == 2);
    CHECK(r.output.find("--dim 64 is not a multiple of --heads 5") != std::string::npos);
    r = run_cli("convert synthetic '" + dir.file("bad.gguf") + "' --heads 4 --kv-heads 3");
    CHECK(r.status == 2);
    CHECK(r.output.find("--heads 4 is not a multiple of --kv-heads 3") != std::string::npos);
    CHECK(run_cli("convert synthetic '" + dir.file("bad.gguf") + "' --dim 36 --heads 4").status == 2);  // odd head size
    CHECK(run_cli("convert synthetic '" + dir.file("bad.gguf") + "' --vocab 100").status == 2);

    r = run_cli("quantize '" + dir.file("f32.gguf") + "' '" + dir.file("q.gguf") +
                "' --preset q4_k_m --tensor-type 'blk\\.0\\.ffn_.*=q8_0' --threads 2 --json '" + dir.file("report.json") + "'");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("[1/21] token_embd.weight [256, 259] f32 -> q4_K") != std::string::npos);  // not a terminal: a line per tensor
    CHECK(r.output.find("memory reduction") != std::string::npos);
    std::ifstream report_file(dir.file("report.json"));
    const auto report = nlohmann::json::parse(report_file);
    CHECK(report["preset"] == "q4_k_m");
    CHECK(report["tensor_count"] == 21);
    CHECK(report["threads"] == 2);
    CHECK(report["file_bytes"] == fs::file_size(dir.file("q.gguf")));
    CHECK(report["reduction_vs_f16"].get<double>() > 0.6);
    bool saw_override = false;
    for (const auto& t : report["tensors"]) {
        if (t["name"] == "blk.0.ffn_up.weight") {
            saw_override = true;
            CHECK(t["type"] == "q8_0");
            CHECK(t["rule"] == "override 'blk\\.0\\.ffn_.*'");
        }
        if (t["name"] == "blk.1.attn_v.weight") CHECK(t["type"] == "q6_K");
    }
    CHECK(saw_override);

    r = run_cli("inspect '" + dir.file("q.gguf") + "' --json");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    const auto inspected = nlohmann::json::parse(r.output);
    CHECK(inspected["version"] == 3);
    CHECK(inspected["tensors"].size() == 21);
    CHECK(inspected["metadata"]["general.architecture"] == "llama");
    CHECK(inspected["metadata"]["general.quantization_version"] == "2");
    r = run_cli("inspect '" + dir.file("q.gguf") + "'");
    CHECK(r.output.find("GGUF v3") != std::string::npos);
    CHECK(r.output.find("blk.1.attn_v.weight") != std::string::npos);
}

TEST_CASE("cogqat quantize and convert refuse bad input with a message") {
    temp_dir dir;
    REQUIRE(run_cli("convert synthetic '" + dir.file("f32.gguf") + "'").status == 0);
    auto r = run_cli("quantize '" + dir.file("f32.gguf") + "' '" + dir.file("q.gguf") + "' --preset q4_k_xl");
    CHECK(r.status == 2);
    CHECK(r.output.find("unknown preset 'q4_k_xl'") != std::string::npos);
    r = run_cli("quantize '" + dir.file("f32.gguf") + "' '" + dir.file("q.gguf") + "' --tensor-type 'blk.[0-=q4_0'");
    CHECK(r.status == 2);
    CHECK(r.output.find("invalid regular expression") != std::string::npos);
    r = run_cli("quantize '" + dir.file("missing.gguf") + "' '" + dir.file("q.gguf") + "'");
    CHECK(r.status == 1);
    CHECK(r.output.find("missing.gguf") != std::string::npos);

    const auto bytes = cogqat::io::read_file(dir.file("f32.gguf"));
    cogqat::io::write_file_atomically(dir.file("cut.gguf"), std::span(bytes).first(bytes.size() / 2));
    r = run_cli("quantize '" + dir.file("cut.gguf") + "' '" + dir.file("q.gguf") + "'");
    CHECK(r.status == 1);
    CHECK(r.output.find("GGUF") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.file("q.gguf")));

    write_bytes(dir.file("model.bin"), std::string(20, '\1'));
    r = run_cli("convert llama2c '" + dir.file("model.bin") + "' '" + dir.file("tok.bin") + "' '" + dir.file("out.gguf") + "'");
    CHECK(r.status == 1);
    CHECK(r.output.find("truncated at byte 20 while reading vocab_size") != std::string::npos);
}

TEST_CASE("cogqat writes split GGUF with --split-max-size and --split-max-tensors and reads it by its first shard") {
    temp_dir dir;
    auto r = run_cli("convert synthetic '" + dir.file("f32.gguf") + "' --split-max-tensors 8");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("f32-00001-of-00003.gguf (3 shards") != std::string::npos);  // 21 tensors, 8 a shard
    CHECK_FALSE(fs::exists(dir.file("f32.gguf")));

    r = run_cli("quantize -q '" + dir.file("f32-00001-of-00003.gguf") + "' '" + dir.file("q.gguf") +
                "' --preset q8_0 --split-max-size 150K --json '" + dir.file("q.json") + "'");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    const auto report = nlohmann::json::parse(read_text(dir.file("q.json")));
    CHECK(report["tensor_count"] == 21);
    const auto files = report["files"];
    REQUIRE(files.size() >= 2);
    std::uint64_t bytes = 0;
    for (const auto& f : files) bytes += fs::file_size(f.get<std::string>());
    CHECK(report["file_bytes"] == bytes);
    CHECK(files[0].get<std::string>() == cogqat::gguf::split_path(dir.path / "q", 0, static_cast<std::uint32_t>(files.size())).string());

    // Read as one model: the same tensors and the same perplexity as the file written whole.
    REQUIRE(run_cli("quantize -q '" + dir.file("f32-00001-of-00003.gguf") + "' '" + dir.file("whole.gguf") + "' --preset q8_0").status ==
            0);
    r = run_cli("inspect '" + files[0].get<std::string>() + "' --json");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    const auto inspected = nlohmann::json::parse(r.output);
    CHECK(inspected["tensors"].size() == 21);
    CHECK(inspected["shards"] == files);
    CHECK(inspected["file_bytes"] == bytes);
    write_bytes(dir.file("text.txt"), "The quick brown fox jumps over the lazy dog.\n");
    const auto split_eval = run_cli("eval -q '" + files[0].get<std::string>() + "' --text '" + dir.file("text.txt") + "' --json");
    const auto whole_eval = run_cli("eval -q '" + dir.file("whole.gguf") + "' --text '" + dir.file("text.txt") + "' --json");
    REQUIRE_MESSAGE(split_eval.status == 0, split_eval.output);
    CHECK(nlohmann::json::parse(split_eval.output)["nll"] == nlohmann::json::parse(whole_eval.output)["nll"]);

    // Outputs that would replace the input's shards: refused before any work (bad arguments).
    r = run_cli("quantize -q '" + dir.file("f32-00001-of-00003.gguf") + "' '" + dir.file("f32-00002-of-00003.gguf") + "'");
    CHECK(r.status == 2);
    CHECK(r.output.find("is a shard of the INPUT") != std::string::npos);
    r = run_cli("quantize -q '" + dir.file("f32-00001-of-00003.gguf") + "' '" + dir.file("f32.gguf") + "' --split-max-tensors 4");
    CHECK(r.status == 2);
    CHECK(r.output.find("could replace the INPUT's") != std::string::npos);
    CHECK(fs::file_size(dir.file("f32-00001-of-00003.gguf")) > 0);

    // A shard missing, a later shard given: refused with the file named.
    fs::remove(dir.file("f32-00002-of-00003.gguf"));
    r = run_cli("quantize -q '" + dir.file("f32-00001-of-00003.gguf") + "' '" + dir.file("x.gguf") + "'");
    CHECK(r.status == 1);
    CHECK(r.output.find("f32-00002-of-00003.gguf': missing") != std::string::npos);
    r = run_cli("inspect '" + dir.file("f32-00003-of-00003.gguf") + "'");
    CHECK(r.status == 1);
    CHECK(r.output.find("open the first shard") != std::string::npos);

    for (const char* bad :
         {"--split-max-size 0", "--split-max-size 12X", "--split-max-size -5", "--split-max-size 99999999999G", "--split-max-tensors 0"}) {
        CAPTURE(bad);
        r = run_cli("convert synthetic '" + dir.file("bad.gguf") + "' " + bad);
        CHECK(r.status == 2);
        CHECK(r.output.find("--split-max-") != std::string::npos);
    }
}

TEST_CASE("cogqat with no arguments runs the default job") {
    temp_dir dir;
    // Without ../shared it generates its model; the import of stories260K is exercised by the interop test.
    const auto r = run_cli("--out-dir '" + dir.file("out") + "'", "COGQAT_SHARED_DIR='" + dir.file("no-shared") + "' ");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("generating a small llama-shaped model") != std::string::npos);
    CHECK(r.output.find("average") != std::string::npos);
    CHECK(fs::exists(dir.file("out/synthetic-llama-F32.gguf")));
    CHECK(fs::exists(dir.file("out/synthetic-llama-default.gguf")));
    CHECK(fs::exists(dir.file("out/synthetic-llama-default.json")));
    // Then the data-free path at the same size.
    REQUIRE(fs::exists(dir.file("out/synthetic-llama-auto.gguf")));
    CHECK(fs::file_size(dir.file("out/synthetic-llama-auto.gguf")) <= fs::file_size(dir.file("out/synthetic-llama-default.gguf")));
    CHECK(fs::exists(dir.file("out/synthetic-llama-auto.html")));
    CHECK(r.output.find("the data-free path at the same size") != std::string::npos);
}

TEST_CASE("cogqat eval and generate") {
    temp_dir dir;
    REQUIRE(run_cli("convert synthetic '" + dir.file("f32.gguf") + "'").status == 0);
    REQUIRE(run_cli("quantize -q '" + dir.file("f32.gguf") + "' '" + dir.file("q.gguf") + "' --preset q4_0").status == 0);
    write_bytes(dir.file("text.txt"), "The quick brown fox jumps over the lazy dog.\nAnd then it ran away.\n");
    // stdout holds the JSON line alone; the progress goes to stderr.
    auto r = run_cli("eval '" + dir.file("q.gguf") + "' --text '" + dir.file("text.txt") + "' --ctx 32 --kl-against '" +
                     dir.file("f32.gguf") + "' --json 2>'" + dir.file("progress.txt") + "'");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    const auto j = nlohmann::json::parse(r.output);
    CHECK(read_text(dir.file("progress.txt")).starts_with("eval: "));
    CHECK(read_text(dir.file("progress.txt")).find(" tokens in ") != std::string::npos);
    for (const char* key : {"ppl", "nll", "tokens", "tokens_per_second", "kl", "top1"}) CHECK(j.contains(key));
    CHECK(j["ppl"].get<double>() == doctest::Approx(std::exp(j["nll"].get<double>())));
    CHECK(j["kl"].get<double>() >= 0.0);
    CHECK(j["top1"].get<double>() <= 1.0);
    r = run_cli("eval '" + dir.file("q.gguf") + "' --text '" + dir.file("missing.txt") + "'");
    CHECK(r.status == 1);
    CHECK(r.output.find("missing.txt") != std::string::npos);

    // No text: against the reference on tokens it writes itself; the reference against itself loses nothing.
    r = run_cli("eval '" + dir.file("q.gguf") + "' --self-generated 64 --ctx 32 --seed 3 --kl-against '" + dir.file("f32.gguf") +
                "' --json -q");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    const auto held_out = nlohmann::json::parse(r.output);
    CHECK(held_out["tokens"].get<std::size_t>() == 64);
    CHECK(held_out["kl"].get<double>() > 0.0);
    CHECK(held_out["ppl"].get<double>() == doctest::Approx(std::exp(held_out["nll"].get<double>())));
    r = run_cli("eval '" + dir.file("f32.gguf") + "' --self-generated 64 --ctx 32 --float-activations --kl-against '" +
                dir.file("f32.gguf") + "' --json -q");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(nlohmann::json::parse(r.output)["kl"].get<double>() == doctest::Approx(0.0).epsilon(1e-9));
    r = run_cli("eval '" + dir.file("q.gguf") + "' --self-generated 64");
    CHECK(r.status == 2);
    CHECK(r.output.find("--kl-against") != std::string::npos);
    r = run_cli("eval '" + dir.file("q.gguf") + "' --self-generated 64 --text '" + dir.file("text.txt") + "' --kl-against '" +
                dir.file("f32.gguf") + "'");
    CHECK(r.status == 2);
    CHECK(r.output.find("no --text") != std::string::npos);
    r = run_cli("eval '" + dir.file("q.gguf") + "'");
    CHECK(r.status == 2);
    CHECK(r.output.find("--self-generated") != std::string::npos);

    const auto stories = fs::path(std::getenv("COGQAT_SHARED_DIR") ? std::getenv("COGQAT_SHARED_DIR") : COGQAT_DEFAULT_SHARED_DIR) /
                         "models" / "stories260K";
    if (!fs::exists(stories / "stories260K.bin")) {
        MESSAGE("skipped the stories260K part: " << stories.string() << " not found");
        return;
    }
    REQUIRE(run_cli("convert llama2c '" + (stories / "stories260K.bin").string() + "' '" + (stories / "tok512.bin").string() + "' '" +
                    dir.file("stories.gguf") + "'")
                    .status == 0);
    r = run_cli("generate '" + dir.file("stories.gguf") + "' -n 40");
    CHECK(r.status == 0);
    CHECK(r.output.starts_with("Once upon a time, there was a little girl named Lily."));
    r = run_cli("generate '" + dir.file("stories.gguf") + "' --prompt 'Once upon a time' -n 8 --temp 0.8 --seed 3");
    CHECK(r.status == 0);
    CHECK(r.output.starts_with("Once upon a time"));
}

TEST_CASE("cogqat quantize --auto: data-free, under the size target, JSON and HTML reports, bad options refused") {
    temp_dir dir;
    REQUIRE(run_cli("convert synthetic '" + dir.file("f32.gguf") + "' --seed 4 --ffn 256").status == 0);
    const std::string in = "'" + dir.file("f32.gguf") + "' '" + dir.file("auto.gguf") + "'";
    const auto r = run_cli("quantize " + in +
                           " --auto --target-bpw 5.5 --calib random --calib-tokens 64 --candidates q4_0,q5_1,q4_K -j 2 -q --json '" +
                           dir.file("auto.json") + "' --html '" + dir.file("auto.html") + "'");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("calibration: 64 positions from 'random' (no text read)") != std::string::npos);
    CHECK(r.output.find("validation of the written file") != std::string::npos);
    const auto report = nlohmann::json::parse(read_text(dir.file("auto.json")));
    CHECK(report["mode"] == "auto");
    CHECK(report["bits_per_weight"].get<double>() <= 5.5);
    CHECK(report["tensor_bytes"].get<std::uint64_t>() <= report["budget_bytes"].get<std::uint64_t>());
    CHECK(report["file_bytes"].get<std::uint64_t>() == fs::file_size(dir.file("auto.gguf")));
    CHECK(report["calibration"]["source"] == "random");
    CHECK(report["sensitivity"]["method"] == "exact");  // auto: this small model's forwards are cheap
    CHECK(report["tensors"].size() == 21);
    CHECK(report["tensors"][0]["sensitivity"].size() == 4);  // f16 and the three candidates, all fitting rows of 256
    CHECK(report["steps"].size() == 16);                     // token_embd, output and 7 matrices in each of 2 layers
    const auto html = read_text(dir.file("auto.html"));
    CHECK(html.find("<svg") != std::string::npos);
    CHECK(html.find("blk.1.ffn_down.weight") != std::string::npos);

    const auto sized = run_cli("quantize " + in + " --auto --target-bytes 600000 --calib stats --calib-tokens 64 --candidates q4_0,q8_0" +
                               " --sensitivity blockwise -q --json '" + dir.file("blockwise.json") + "'");
    REQUIRE_MESSAGE(sized.status == 0, sized.output);
    CHECK(fs::file_size(dir.file("auto.gguf")) <= 600000);
    const auto blockwise = nlohmann::json::parse(read_text(dir.file("blockwise.json")));
    CHECK(blockwise["sensitivity"]["method"] == "blockwise");
    // 7 kinds in 2 layers (both checked) and the embedding and classifier, at q4_0 and q8_0.
    CHECK(blockwise["sensitivity"]["checks"].size() == 2 * (7 * 2 + 2));
    const auto bad_method = run_cli("quantize " + in + " --auto --sensitivity fisher -q");
    CHECK(bad_method.status == 2);
    CHECK(bad_method.output.find("--sensitivity: fisher not in {auto,exact,blockwise}") != std::string::npos);

    const auto too_small = run_cli("quantize " + in + " --auto --target-bytes 1000 --calib-tokens 64 --candidates q4_0 -q");
    CHECK(too_small.status == 2);
    CHECK(too_small.output.find("a file of 1000 bytes is below the smallest this model allows") != std::string::npos);
    CHECK(run_cli("quantize " + in + " --auto --target-bpw 4 --memory-reduction 0.7").status == 2);
    CHECK(run_cli("quantize " + in + " --target-bpw 4").status == 2);  // needs --auto
    const auto bad_type = run_cli("quantize " + in + " --auto --candidates q8_K -q");
    CHECK(bad_type.status == 2);
    CHECK(bad_type.output.find("q8_K is not a weight type") != std::string::npos);
    const auto bad_source = run_cli("quantize " + in + " --auto --calib text -q");
    CHECK(bad_source.status == 2);
    CHECK(bad_source.output.find("--calib: text not in {self,random,stats}") != std::string::npos);
    const auto preset = run_cli("quantize " + in + " --auto --preset q4_0");
    CHECK(preset.status == 2);
    CHECK(preset.output.find("--preset excludes --auto") != std::string::npos);
}

TEST_CASE("cogqat quantize --auto --rotate --smooth: the report says what was applied and what it changed; bad values refused") {
    temp_dir dir;
    REQUIRE(run_cli("convert synthetic '" + dir.file("f32.gguf") + "' --seed 4 --ffn 256").status == 0);
    const std::string in = "'" + dir.file("f32.gguf") + "' '" + dir.file("rotated.gguf") + "'";
    const auto r = run_cli("quantize " + in + " --auto --target-bpw 6 --calib random --calib-tokens 64 --candidates q4_0,q8_0" +
                           " --rotate hadamard --smooth --no-gptq -j 2 -q --json '" + dir.file("rotated.json") + "'");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("transforms (exact; measured on 64 positions the model wrote itself): rotation hadamard 256 (value heads "
                        "hadamard 64), 5 norms folded") != std::string::npos);
    CHECK(r.output.find("q4_0 output error") != std::string::npos);
    const auto report = nlohmann::json::parse(read_text(dir.file("rotated.json")));
    const auto& t = report["transforms"];
    CHECK(t["rotate"] == "hadamard");
    CHECK(t["smooth"] == true);
    CHECK(t["norms_folded"] == 5);
    CHECK(t["classifier_untied"] == false);  // the synthetic model has its own classifier
    CHECK(t["tensors"].size() == 16);        // every matrix: embedding, classifier, 7 per layer
    CHECK(t["tensors"][2]["proxy_error"].size() == 2);
    const auto bad = run_cli("quantize " + in + " --auto --rotate magic -q");
    CHECK(bad.status == 2);
    CHECK(bad.output.find("--rotate: magic not in {none,hadamard,random,heads}") != std::string::npos);
    CHECK(run_cli("quantize " + in + " --smooth").status == 2);  // needs --auto
    const auto bad_qat = run_cli("qat '" + dir.file("f32.gguf") + "' '" + dir.file("q.gguf") + "' --rotate magic");
    CHECK(bad_qat.status == 2);
    CHECK(bad_qat.output.find("--rotate: magic not in {none,hadamard,random,heads}") != std::string::npos);
}

TEST_CASE("cogqat qat: trains, resumes a stopped run to the same file, reports; bad options refused") {
    temp_dir dir;
    REQUIRE(run_cli("convert synthetic '" + dir.file("f32.gguf") + "' --seed 5 --ffn 256").status == 0);
    const std::string f32 = "qat '" + dir.file("f32.gguf") + "' ";
    const std::string common = " --steps 4 --steps-per-unit 1 --samples 4 --batch 2 --seq-len 16 -j 2 -q ";
    const auto whole = run_cli(f32 + "'" + dir.file("whole.gguf") + "'" + common + "--json '" + dir.file("whole.json") + "' --html '" +
                               dir.file("whole.html") + "'");
    REQUIRE_MESSAGE(whole.status == 0, whole.output);
    CHECK(whole.output.find("no text read") != std::string::npos);
    CHECK(whole.output.find("held-out KL") != std::string::npos);
    const auto report = nlohmann::json::parse(read_text(dir.file("whole.json")));
    CHECK(report["mode"] == "qat");
    CHECK(report["completed"] == true);
    CHECK(report["steps_total"] == 4 + 4);  // token_embd, output, blk.0 and blk.1 one step each, then 4
    CHECK(report["curve"].size() == 8);
    CHECK(report["file_bytes"].get<std::uint64_t>() == fs::file_size(dir.file("whole.gguf")));
    CHECK(report["tensors"][0]["type"] == "q4_0");
    CHECK_FALSE(fs::exists(dir.file("whole.gguf.ckpt")));  // removed once the run is complete
    const auto html = read_text(dir.file("whole.html"));
    CHECK(html.find("Loss curve") != std::string::npos);
    CHECK(html.find("<polyline") != std::string::npos);

    const std::string split = f32 + "'" + dir.file("split.gguf") + "'" + common;
    const auto first = run_cli(split + "--stop-after 5 --checkpoint-every 2");
    REQUIRE_MESSAGE(first.status == 0, first.output);
    CHECK(first.output.find("stopped after step 5 of 8") != std::string::npos);
    CHECK(fs::exists(dir.file("split.gguf.ckpt")));
    CHECK_FALSE(fs::exists(dir.file("split.gguf")));
    const auto second = run_cli(split + "--checkpoint-every 2");
    REQUIRE_MESSAGE(second.status == 0, second.output);
    CHECK(second.output.find("resumed from") != std::string::npos);
    CHECK(cogqat::io::read_file(dir.file("split.gguf")) == cogqat::io::read_file(dir.file("whole.gguf")));

    const auto bad_init = run_cli(f32 + "'" + dir.file("x.gguf") + "' --init magic");
    CHECK(bad_init.status == 2);
    CHECK(bad_init.output.find("--init: magic not in {gptq,reference}") != std::string::npos);
    const auto bad_weight = run_cli(f32 + "'" + dir.file("x.gguf") + "' --kl-weight 2");
    CHECK(bad_weight.status == 2);
    CHECK(bad_weight.output.find("--kl-weight: '2' is not a finite number from 0 to 1") != std::string::npos);
    CHECK(run_cli(f32 + "'" + dir.file("x.gguf") + "' --target-bpw 4").status == 2);  // needs --auto
    CHECK(run_cli(f32 + "'" + dir.file("x.gguf") + "' --auto --preset q4_0").status == 2);
    const auto missing = run_cli("qat '" + dir.file("none.gguf") + "' '" + dir.file("x.gguf") + "'");
    CHECK(missing.status == 1);
}

TEST_CASE("cogqat qat --blockwise: layer by layer, resumes a stopped run to the same file, reports; bad options refused") {
    temp_dir dir;
    REQUIRE(run_cli("convert synthetic '" + dir.file("f32.gguf") + "' --seed 5 --dim 64 --ffn 96 --layers 2 --heads 4 --kv-heads 2")
                    .status == 0);
    const std::string f32 = "qat '" + dir.file("f32.gguf") + "' ";
    const std::string common = " --blockwise --steps-per-layer 3 --samples 4 --batch 2 --seq-len 16 -j 2 -q ";
    const auto whole = run_cli(f32 + "'" + dir.file("whole.gguf") + "'" + common + "--json '" + dir.file("whole.json") + "'");
    REQUIRE_MESSAGE(whole.status == 0, whole.output);
    CHECK(whole.output.find("error before") != std::string::npos);
    CHECK(whole.output.find("held-out KL") != std::string::npos);
    const auto report = nlohmann::json::parse(read_text(dir.file("whole.json")));
    CHECK(report["mode"] == "qat-blockwise");
    CHECK(report["completed"] == true);
    CHECK(report["processes"] == 1);
    CHECK(report["layers"].size() == 2);
    CHECK(report["settings"]["batch"] == 2);
    CHECK(report["settings"]["gradient_groups"] == 2);  // the default 4, cut to the batch
    CHECK(report["file_bytes"].get<std::uint64_t>() == fs::file_size(dir.file("whole.gguf")));
    CHECK_FALSE(fs::exists(dir.file("whole.gguf.ckpt")));

    const std::string split = f32 + "'" + dir.file("split.gguf") + "'" + common;
    // Without -q the steps show, the teacher's writing counted in tokens (4 sequences of 16).
    const auto first = run_cli(f32 + "'" + dir.file("split.gguf") +
                               "' --blockwise --steps-per-layer 3 --samples 4 --batch 2 --seq-len 16 -j 2 --stop-after 1");
    REQUIRE_MESSAGE(first.status == 0, first.output);
    CHECK(first.output.find("stopped") != std::string::npos);
    CHECK_MESSAGE(first.output.find("generate: 64/64 tokens") != std::string::npos, first.output);
    CHECK(first.output.find("blk.0 rounding: 7/7 tensors") != std::string::npos);
    // The table lists the finished layer only.
    CHECK(first.output.find("blk.0  ") != std::string::npos);
    CHECK(first.output.find("blk.1  ") == std::string::npos);
    CHECK(fs::exists(dir.file("split.gguf.ckpt/blk.0.gguf")));
    CHECK_FALSE(fs::exists(dir.file("split.gguf")));
    const auto second = run_cli(split);
    REQUIRE_MESSAGE(second.status == 0, second.output);
    CHECK(second.output.find("resumed from") != std::string::npos);
    CHECK(cogqat::io::read_file(dir.file("split.gguf")) == cogqat::io::read_file(dir.file("whole.gguf")));

    for (const char* bad : {" --blockwise --auto", " --blockwise --steps 3", " --blockwise --rotate hadamard", " --blockwise --html x.html",
                            " --steps-per-layer 3", " --groups 2", " --blockwise --groups 0", " --e2e-steps 2", " --e2e-lr 0.001",
                            " --blockwise --e2e-lr 2"}) {
        CAPTURE(bad);
        CHECK(run_cli(f32 + "'" + dir.file("x.gguf") + "'" + bad).status == 2);
    }
    const auto needs = run_cli(f32 + "'" + dir.file("x.gguf") + "' --e2e-steps 2");
    CHECK_MESSAGE(needs.output.find("--e2e-steps requires --blockwise") != std::string::npos, needs.output);
    const auto negative = run_cli(f32 + "'" + dir.file("x.gguf") + "' --blockwise --e2e-steps -1");
    CHECK(negative.status == 2);
    CHECK_MESSAGE(negative.output.find("--e2e-steps: '-1' is not a whole number from 0 to 1000000") != std::string::npos, negative.output);

    // The end-to-end phase after the layers: in the table and the report.
    const auto e2e = run_cli(f32 + "'" + dir.file("e2e.gguf") + "'" + common + "--e2e-steps 2 --json '" + dir.file("e2e.json") + "'");
    REQUIRE_MESSAGE(e2e.status == 0, e2e.output);
    CHECK(e2e.output.find("end-to-end: 2 steps") != std::string::npos);
    const auto tuned = nlohmann::json::parse(read_text(dir.file("e2e.json")));
    CHECK(tuned["end_to_end"]["steps"] == 2);
    CHECK(tuned["settings"]["end_to_end_steps"] == 2);
    CHECK(tuned["end_to_end"]["memory_per_layer"].get<std::uint64_t>() > 0);
    CHECK(report["end_to_end"]["steps"] == 0);
    const auto groups =
            run_cli(f32 + "'" + dir.file("x.gguf") + "' --blockwise --batch 2 --groups 3 --samples 2 --seq-len 8 --steps-per-layer 1 -q");
    CHECK(groups.status == 0);  // more groups than sequences: one group per sequence
    write_bytes(dir.file("file.ckpt"), "not a directory");
    const auto checkpoint = run_cli(f32 + "'" + dir.file("x.gguf") + "' --blockwise --checkpoint '" + dir.file("file.ckpt") + "'");
    CHECK(checkpoint.status == 2);
    CHECK(checkpoint.output.find("is not a directory") != std::string::npos);
    const auto context = run_cli(f32 + "'" + dir.file("x.gguf") + "' --blockwise --seq-len 4096");
    CHECK(context.status == 2);
    CHECK(context.output.find("exceed the model's context") != std::string::npos);
}

TEST_CASE("cogqat convert hf: a Hugging Face folder into GGUF; bad types, outputs and folders refused") {
    temp_dir dir;
    const auto folder = dir.path / "Llama-tiny";
    static_cast<void>(write_hf_fixture(folder, "llama"));
    const std::string in = "'" + folder.string() + "'";
    auto r = run_cli("convert hf " + in + " '" + dir.file("m.gguf") + "'");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK_MESSAGE(r.output.find("llama, dim 64, hidden 128, 2 layers, 4 heads (2 kv, size 16), vocab 622 (362 merges, pre-tokenizer "
                                "llama-bpe), 22 tensors") != std::string::npos,
                  r.output);
    r = run_cli("inspect '" + dir.file("m.gguf") + "' --json");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    const auto inspected = nlohmann::json::parse(r.output);
    CHECK(inspected["metadata"]["general.name"] == "Llama-tiny");
    CHECK(inspected["metadata"]["tokenizer.ggml.pre"] == "llama-bpe");

    r = run_cli("convert hf " + in + " '" + dir.file("q.gguf") + "' --type q8_0");
    CHECK_MESSAGE(r.status == 0, r.output);
    r = run_cli("convert hf " + in + " '" + dir.file("bad.gguf") + "' --type iq2_xxs");
    CHECK(r.status == 2);
    CHECK(r.output.find("without importance weights") != std::string::npos);
    CHECK(run_cli("convert hf " + in + " '" + dir.file("bad.gguf") + "' --type q9").status == 2);
    r = run_cli("convert hf " + in + " " + in + "/model.safetensors");
    CHECK(r.status == 2);  // the output would replace an input
    CHECK(fs::file_size(folder / "model.safetensors") > 0);
    r = run_cli("convert hf '" + dir.file("m.gguf") + "' '" + dir.file("bad.gguf") + "'");
    CHECK(r.status == 1);
    CHECK(r.output.find("not a directory") != std::string::npos);
    write_bytes((folder / "tokenizer.json").string(), "{\"version\": \"1.0\"}");
    r = run_cli("convert hf " + in + " '" + dir.file("bad.gguf") + "'");
    CHECK(r.status == 1);
    CHECK(r.output.find("tokenizer.json': no \"model\" object") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.file("bad.gguf")));
}

TEST_CASE("cogqat eval and generate run converted qwen2 and qwen3 models with their BPE tokenizer") {
    temp_dir dir;
    write_bytes(dir.file("text.txt"), "Once upon a time, there was a little dog. He liked to run and play in the sun.\n");
    for (const std::string arch : {"qwen2", "qwen3"}) {
        CAPTURE(arch);
        static_cast<void>(write_hf_fixture(dir.path / arch, arch));
        const std::string model = "'" + dir.file(arch + ".gguf") + "'";
        auto r = run_cli("convert hf '" + (dir.path / arch).string() + "' " + model);
        REQUIRE_MESSAGE(r.status == 0, r.output);
        r = run_cli("eval " + model + " --text '" + dir.file("text.txt") + "' --ctx 64");
        CHECK_MESSAGE(r.status == 0, r.output);
        CHECK_MESSAGE(r.output.find("perplexity") != std::string::npos, r.output);
        r = run_cli("generate " + model + " -p 'Once upon a time' -n 4");
        CHECK_MESSAGE(r.status == 0, r.output);
        CHECK_MESSAGE(r.output.starts_with("Once upon a time"), r.output);
        r = run_cli("generate " + model + " -n 4");  // the Qwens add no BOS: an empty prompt starts from it
        CHECK_MESSAGE(r.status == 0, r.output);
    }
}

TEST_CASE("cogqat qat: converted llama (Llama 3 RoPE scaling), qwen2 and qwen3 models train and reload") {
    temp_dir dir;
    for (const std::string arch : {"llama", "qwen2", "qwen3"}) {
        CAPTURE(arch);
        static_cast<void>(write_hf_fixture(dir.path / arch, arch));
        const std::string model = "'" + dir.file(arch + ".gguf") + "'", out = dir.file(arch + "-qat.gguf");
        auto r = run_cli("convert hf '" + (dir.path / arch).string() + "' " + model);
        REQUIRE_MESSAGE(r.status == 0, r.output);
        // Every unit quantized at once, then two fine-tuning steps at the full learning rate: the whole pipeline,
        // briefly (measured: the held-out KL 1-3% below the initial rounding's).
        r = run_cli("qat " + model + " '" + out + "' --steps 2 --steps-per-unit 0 --warmup 0 --samples 2 --batch 2 --seq-len 12 -j 2 -q " +
                    "--json '" + dir.file(arch + ".json") + "'");
        REQUIRE_MESSAGE(r.status == 0, r.output);
        const auto report = nlohmann::json::parse(read_text(dir.file(arch + ".json")));
        CHECK(report["completed"] == true);
        CHECK(report["steps_total"] == 2);
        const double before = report["before"]["kl"].get<double>(), after = report["after"]["kl"].get<double>();
        CHECK(std::isfinite(after));
        CHECK(after > 0.0);
        CHECK_MESSAGE(after <= before, "KL " << after << " after training, " << before << " from the initial rounding");

        const auto written = cogqat::gguf::reader::open(out);
        const auto m = cogqat::io::read_llama_model(written);
        CHECK(cogqat::architecture_name(m.config.architecture) == arch);
        CHECK(m.layers[1].wq.type == cogqat::ggml_type::q4_0);
        CHECK(m.layers[1].bk.size() == (arch == "qwen2" ? m.config.kv_dim() : 0));
        CHECK(m.layers[1].q_norm.size() == (arch == "qwen3" ? m.config.head_size() : 0));
        CHECK(m.rope_freqs.size() == (arch == "llama" ? m.config.head_size() / 2 : 0));
        for (const auto& t : report["tensors"])
            if (t["shape"].size() == 1) CHECK_MESSAGE(t["type"] == "f32", t["name"]);  // norms, biases, head norms, RoPE factors
        // rope_freqs is the teacher's, bit for bit: it is read, not trained.
        if (arch == "llama") {
            const auto teacher_file = cogqat::gguf::reader::open(dir.file(arch + ".gguf"));
            CHECK(m.rope_freqs == cogqat::io::read_llama_model(teacher_file).rope_freqs);
        }
    }
}

TEST_CASE("cogqat imatrix writes llama.cpp's imatrix files; quantize --imatrix reads them; the grid presets run") {
    temp_dir dir;
    REQUIRE(run_cli("convert synthetic '" + dir.file("f32.gguf") + "' --seed 6").status == 0);
    const std::string in = "'" + dir.file("f32.gguf") + "' ";
    auto r = run_cli("imatrix " + in + "'" + dir.file("m.gguf") + "' --calib random --tokens 64 -j 2");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("blk.1.ffn_down.weight") != std::string::npos);
    CHECK(r.output.find("importance matrix of 15 matrices from 1 chunks of 64 positions") != std::string::npos);
    CHECK(r.output.find("llama.cpp imatrix GGUF") != std::string::npos);
    const auto m = cogqat::io::read_imatrix(dir.file("m.gguf"));
    CHECK(m.entries.size() == 15);  // 7 per layer and output.weight; the token embedding is only looked up
    CHECK(m.find("output.weight") != nullptr);
    CHECK(m.datasets.front().find("random") != std::string::npos);
    r = run_cli("imatrix " + in + "'" + dir.file("m.dat") + "' --tokens 32 -q");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("legacy .dat") != std::string::npos);
    CHECK(cogqat::io::read_imatrix(dir.file("m.dat")).legacy);

    // The imatrix: used by the grid types, q2_K and q5_K; token_embd is only looked up, so it has no entry.
    r = run_cli("quantize " + in + "'" + dir.file("iq2.gguf") + "' --preset IQ2_XXS --imatrix '" + dir.file("m.gguf") + "' -j 2 --json '" +
                dir.file("iq2.json") + "'");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("importance matrix used for 15 tensors") != std::string::npos);
    std::ifstream report_file(dir.file("iq2.json"));
    const auto report = nlohmann::json::parse(report_file);
    CHECK(report["file_type"] == 19);
    for (const auto& t : report["tensors"]) {
        CAPTURE(t["name"].get<std::string>());
        if (t["name"] == "blk.0.attn_q.weight") CHECK((t["type"] == "iq2_xxs" && t["importance"] == "imatrix"));
        if (t["name"] == "blk.0.attn_v.weight") CHECK((t["type"] == "q2_K" && t["importance"] == "imatrix"));
        if (t["name"] == "token_embd.weight") CHECK((t["type"] == "q2_K" && t["importance"] == "none"));
    }
    // The legacy file reads to the same choices.
    r = run_cli("quantize " + in + "'" + dir.file("iq2-dat.gguf") + "' --preset iq2_xxs --imatrix '" + dir.file("m.dat") + "' -q -j 2");
    REQUIRE_MESSAGE(r.status == 0, r.output);

    // Without --imatrix the types llama.cpp refuses without one get the data-free importance, and say so.
    r = run_cli("quantize " + in + "'" + dir.file("free.gguf") +
                "' --tensor-type 'ffn_down=iq1_s' --tensor-type 'attn_q=iq3_xxs' --preset q8_0 "
                "--calib-tokens 32 -j 2");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("blk.0.ffn_down.weight") != std::string::npos);
    CHECK(r.output.find("data-free importance for 2 tensors") != std::string::npos);
    CHECK(r.output.find("from 32 positions") != std::string::npos);
    for (const char* preset : {"iq3_m", "iq2_m"}) {
        r = run_cli("quantize " + in + "'" + dir.file(std::string(preset) + ".gguf") + "' --preset " + preset +
                    " --calib-tokens 32 -q -j 2");
        CHECK_MESSAGE(r.status == 0, r.output);
    }

    // --auto takes the grid types as candidates, weighed by the diagonal of each matrix's input moments.
    r = run_cli("quantize " + in + "'" + dir.file("auto.gguf") + "' --auto --target-bpw 4 --calib random --calib-tokens 32 --candidates " +
                "iq2_xxs,iq3_s,q8_0 --no-gptq -q -j 2 --json '" + dir.file("auto.json") + "'");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    std::ifstream auto_file(dir.file("auto.json"));
    const auto auto_report = nlohmann::json::parse(auto_file);
    std::size_t grid = 0;
    for (const auto& t : auto_report["tensors"]) grid += t["type"] == "iq2_xxs" || t["type"] == "iq3_s";
    CHECK(grid > 0);
    CHECK(auto_report["bits_per_weight"].get<double>() <= 4.0);

    // Bad imatrix files: missing, truncated, of another model.
    r = run_cli("quantize " + in + "'" + dir.file("x.gguf") + "' --preset iq2_xxs --imatrix '" + dir.file("absent.gguf") + "'");
    CHECK(r.status != 0);
    CHECK(r.output.find("absent.gguf") != std::string::npos);
    const auto dat = read_text(dir.file("m.dat"));
    write_bytes(dir.file("cut.dat"), dat.substr(0, dat.size() / 2));
    r = run_cli("quantize " + in + "'" + dir.file("x.gguf") + "' --preset iq2_xxs --imatrix '" + dir.file("cut.dat") + "'");
    CHECK(r.status == 1);
    CHECK(r.output.find("cut.dat': truncated at byte") != std::string::npos);
    REQUIRE(run_cli("convert synthetic '" + dir.file("small.gguf") + "' --dim 64 --ffn 96 --layers 2 --heads 4 --kv-heads 2").status == 0);
    // Rows of 64 (as stories260K's) fit no 256-value type: the grid types fall back to iq4_nl, as in llama.cpp.
    r = run_cli("quantize '" + dir.file("small.gguf") + "' '" + dir.file("small-iq2.gguf") + "' --preset iq2_xxs");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("iq2_xxs -> iq4_nl (rows of 64)") != std::string::npos);
    CHECK(r.output.find("data-free importance") == std::string::npos);
    r = run_cli("quantize '" + dir.file("small.gguf") + "' '" + dir.file("x.gguf") + "' --imatrix '" + dir.file("m.gguf") + "'");
    CHECK(r.status == 2);
    CHECK(r.output.find("m.gguf': tensor 'blk.0.attn_k.weight' has 256 values, the model's tensor needs 64") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.file("x.gguf")));
    CHECK(run_cli("quantize " + in + "'" + dir.file("x.gguf") + "' --auto --imatrix '" + dir.file("m.gguf") + "'").status == 2);
    CHECK(run_cli("imatrix " + in + "'" + dir.file("x.gguf") + "' --calib text").status == 2);
    CHECK(run_cli("imatrix " + in + "'" + dir.file("x.gguf") + "' --tokens 1").status == 2);
}
