// The tool probed as a hostile or careless user would: each case is a defect once found in it (racing and
// killed writers, planted links, device outputs, options out of range, non-finite models, bytes that are not
// UTF-8, signals), and what it must do instead: a complete file or none, a message, exit status 1 or 2.

#include <doctest/doctest.h>

#include <cogqat/core/utf8.hpp>
#include <cogqat/gguf/reader.hpp>
#include <cogqat/io/gguf.hpp>
#include <cogqat/io/llama_gguf.hpp>
#include <cogqat/model/synthetic.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "cli_helpers.hpp"

using namespace cogqat::test;
namespace fs = std::filesystem;

namespace {

/// A small synthetic model (dim 64, 2 layers, context 256, 259 tokens): what most cases need, and cheap under
/// the sanitizers.
const cogqat::llama_config small{64, 128, 2, 4, 2, 259, 256};

/// `dir/base.gguf`: the small model, F32.
std::string base_model(const temp_dir& dir) {
    const auto path = dir.file("base.gguf");
    if (!fs::exists(path)) cogqat::io::write_llama_gguf(cogqat::make_synthetic_llama(7, small), path);
    return path;
}

/// `dir/large.gguf`: the default synthetic model (6.8 MB), whose quantization lasts long enough for a second
/// writer, or a signal, to arrive while its temporary file exists.
std::string large_model(const temp_dir& dir) {
    const auto path = dir.file("large.gguf");
    if (!fs::exists(path)) cogqat::io::write_llama_gguf(cogqat::make_synthetic_llama(7), path);
    return path;
}

/// The synthetic model written with `edit` applied to its hyper-parameters first.
std::string edited_model(const temp_dir& dir, const std::string& name, const std::function<void(cogqat::llama_config&)>& edit) {
    auto weights = cogqat::make_synthetic_llama(7, small);
    edit(weights.config);
    const auto path = dir.file(name);
    cogqat::io::write_llama_gguf(weights, path);
    return path;
}

/// The synthetic model with one float of one (f32) tensor overwritten in the file: the writer itself refuses
/// to write a non-finite weight.
std::string patched_model(const temp_dir& dir, const std::string& name, const std::string& tensor, std::size_t element, float value) {
    const auto path = dir.file(name);
    cogqat::io::write_llama_gguf(cogqat::make_synthetic_llama(7, small), path);
    std::uint64_t offset = 0;
    {
        const auto in = cogqat::gguf::reader::open(path);
        const auto* t = in.find_tensor(tensor);
        REQUIRE(t != nullptr);
        offset = in.data_offset() + t->offset + 4 * element;
    }
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(offset));
    file.write(reinterpret_cast<const char*>(&value), sizeof value);  // little-endian, as GGUF stores floats
    return path;
}

std::string q(const std::string& path) { return "'" + path + "'"; }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// No temporary file of an output is left in the directory.
bool no_partials(const temp_dir& dir) {
    for (const auto& name : dir.listing())
        if (contains(name, ".cogqat-")) return false;
    return true;
}

}  // namespace

TEST_CASE("two writers of one output end with one complete file, either's; a killed one leaves the other's") {
    temp_dir dir;
    const auto in = large_model(dir);
    const auto out = dir.file("s.gguf");
    REQUIRE(run_cli("quantize -q -j1 " + q(in) + " " + q(dir.file("a.gguf")) + " --preset q4_k_m").status == 0);
    REQUIRE(run_cli("quantize -q -j1 " + q(in) + " " + q(dir.file("b.gguf")) + " --preset q8_0").status == 0);
    const auto a = cogqat::io::read_file(dir.file("a.gguf")), b = cogqat::io::read_file(dir.file("b.gguf"));
    const std::string cli = cli_path();
    for (int round = 0; round < 2; ++round) {
        CAPTURE(round);
        const auto r = run_shell(cli + " quantize -q -j1 " + q(in) + " " + q(out) + " --preset q4_k_m & " + cli + " quantize -q -j1 " +
                                 q(in) + " " + q(out) + " --preset q8_0; s2=$?; wait $!; s1=$?; echo \"status $s1 $s2\"");
        CHECK(contains(r.output, "status 0 0"));
        const auto written = cogqat::io::read_file(out);
        CHECK((written == a || written == b));
    }
    // A second writer killed while both write: the first still ends with its complete file. Quantization runs
    // inside the write, so both temporary files exist for most of a run; the kill waits for the second one. On a
    // loaded machine the second may finish before the kill reaches it: then the file is either writer's, whole.
    REQUIRE(run_cli("quantize -q -j1 " + q(in) + " " + q(dir.file("c.gguf")) + " --preset q5_k_m").status == 0);
    const auto c = cogqat::io::read_file(dir.file("c.gguf"));
    const auto r =
            run_shell(cli + " quantize -q -j1 " + q(in) + " " + q(out) + " --preset q4_k_m & first=$!; " + cli + " quantize -q -j1 " +
                      q(in) + " " + q(out) + " --preset q5_k_m & second=$!; for i in $(seq 2000); do [ $(ls -A " + q(dir.path.string()) +
                      " | grep -c cogqat-) -ge 2 ] && break; kill -0 $second 2>/dev/null || break; sleep 0.002; done; kill -9 $second; "
                      "wait $first; f=$?; wait $second; "
                      "echo \"first $f second $?\"");
    CHECK(contains(r.output, "first 0"));
    const auto written = cogqat::io::read_file(out);
    if (contains(r.output, "second 137"))
        CHECK(written == a);
    else
        CHECK((written == a || written == c));
    // SIGKILL cannot be caught: the killed writer's temporary file may stay, under a name no writer reuses.
    for (const auto& name : dir.listing())
        if (contains(name, ".cogqat-")) fs::remove(dir.path / name);
    CHECK(no_partials(dir));
}

TEST_CASE("a planted link is never followed, and an output that is a link, a device, a FIFO or a directory is refused") {
    temp_dir dir;
    const auto in = base_model(dir);
    write_bytes(dir.file("victim.txt"), "victim");
    // The temporary name of old was predictable; a link planted there must not be written through.
    fs::create_symlink(dir.file("victim.txt"), dir.file("out.gguf.cogqat-partial"));
    auto r = run_cli("quantize -q " + q(in) + " " + q(dir.file("out.gguf")));
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(read_text(dir.file("victim.txt")) == "victim");
    CHECK(fs::is_regular_file(fs::symlink_status(dir.file("out.gguf"))));
    fs::remove(dir.file("out.gguf.cogqat-partial"));

    fs::create_symlink(dir.file("victim.txt"), dir.file("link.gguf"));
    REQUIRE(::mkfifo(dir.file("fifo.gguf").c_str(), 0600) == 0);
    fs::create_directory(dir.file("dir.gguf"));
    for (const auto& [name, kind] : std::vector<std::pair<std::string, std::string>>{
                 {"link.gguf", "a symbolic link"}, {"fifo.gguf", "a FIFO"}, {"dir.gguf", "a directory"}}) {
        const std::string& target = name;  // a lambda cannot capture a structured binding in C++20 before clang 16
        CAPTURE(target);
        r = run_cli("quantize -q " + q(in) + " " + q(dir.file(name)));
        CHECK(r.status == 1);
        CHECK(contains(r.output, "cannot write '" + dir.file(name) + "': it is " + kind));
        r = run_cli("convert synthetic " + q(dir.file(name)));
        CHECK(r.status == 1);
        r = run_cli("raw quantize --type q8_0 " + q(dir.file("x.f32")) + " " + q(dir.file(name)));
        CHECK(r.status != 0);
    }
    CHECK(read_text(dir.file("victim.txt")) == "victim");
    CHECK(fs::is_symlink(dir.file("link.gguf")));
    CHECK(fs::is_fifo(dir.file("fifo.gguf")));
    CHECK(fs::is_directory(dir.file("dir.gguf")));
    // A device: a node of its own in the test's directory (a copy of /dev/null), so that a regression could
    // only ever replace that node, never the system's.
    if (::mknod(dir.file("null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) {
        r = run_cli("quantize -q " + q(in) + " " + q(dir.file("null")));
        CHECK(r.status == 1);
        CHECK(contains(r.output, "cannot write '" + dir.file("null") + "': it is a device"));
        CHECK(fs::is_character_file(dir.file("null")));
    } else {
        MESSAGE("the device case is skipped: this user cannot create a device node (mknod)");
    }
    CHECK(no_partials(dir));
}

TEST_CASE("an output that is an input, or another output, is refused before any work") {
    temp_dir dir;
    const auto in = base_model(dir);
    REQUIRE(run_cli("quantize -q " + q(in) + " " + q(dir.file("q4.gguf")) + " --preset q4_0").status == 0);
    const auto q4 = cogqat::io::read_file(dir.file("q4.gguf"));
    auto r = run_cli("quantize -q " + q(dir.file("q4.gguf")) + " " + q(dir.file("o.gguf")) + " --json " + q(dir.file("o.gguf")));
    CHECK(r.status == 2);
    CHECK(contains(r.output, "--json '" + dir.file("o.gguf") + "' is also the OUTPUT"));
    CHECK_FALSE(fs::exists(dir.file("o.gguf")));
    r = run_cli("quantize -q " + q(dir.file("q4.gguf")) + " " + q(dir.file("o.gguf")) + " --json " + q(dir.file("q4.gguf")));
    CHECK(r.status == 2);
    CHECK(contains(r.output, "is the INPUT"));
    r = run_cli("quantize -q " + q(dir.file("q4.gguf")) + " " + q(dir.file("./q4.gguf")));
    CHECK(r.status == 2);
    // The same file under another name.
    fs::create_hard_link(dir.file("q4.gguf"), dir.file("alias.gguf"));
    r = run_cli("quantize -q " + q(dir.file("alias.gguf")) + " " + q(dir.file("q4.gguf")));
    CHECK(r.status == 2);
    r = run_cli("quantize -q " + q(in) + " " + q(dir.file("o.gguf")) + " --auto --html " + q(dir.file("o.gguf")));
    CHECK(r.status == 2);
    r = run_cli("qat -q " + q(in) + " " + q(dir.file("o.gguf")) + " --checkpoint " + q(in));
    CHECK(r.status == 2);
    r = run_cli("raw dequantize --type q8_0 " + q(dir.file("q4.gguf")) + " " + q(dir.file("q4.gguf")));
    CHECK(r.status == 2);
    CHECK(cogqat::io::read_file(dir.file("q4.gguf")) == q4);
}

TEST_CASE("every output is checked before the work: a JSON or checkpoint that cannot be written fails at once") {
    temp_dir dir;
    const auto in = base_model(dir);
    auto r = run_cli("quantize -q " + q(in) + " " + q(dir.file("o.gguf")) + " --json " + q(dir.file("no/such/dir/r.json")));
    CHECK(r.status == 1);
    CHECK(contains(r.output, "cannot write '" + dir.file("no/such/dir/r.json") + "'"));
    CHECK_FALSE(fs::exists(dir.file("o.gguf")));
    r = run_cli("qat " + q(in) + " " + q(dir.file("no/such/dir/o.gguf")) + " --steps 1");
    CHECK(r.status == 1);
    CHECK_FALSE(contains(r.output, "done"));  // no phase started
    fs::create_directory(dir.file("ckpt"));
    r = run_cli("qat " + q(in) + " " + q(dir.file("o.gguf")) + " --checkpoint " + q(dir.file("ckpt")));
    CHECK(r.status == 1);
    CHECK(contains(r.output, "it is a directory"));
    r = run_cli("--out-dir " + q(in));
    CHECK(r.status == 2);
    CHECK(contains(r.output, "exists and is not a directory"));
}

TEST_CASE("a rewritten output keeps the mode of the file it replaces; a long output name works") {
    temp_dir dir;
    const auto in = base_model(dir);
    write_bytes(dir.file("p.gguf"), "old");
    fs::permissions(dir.file("p.gguf"), fs::perms::owner_read | fs::perms::owner_write);
    REQUIRE(run_cli("quantize -q " + q(in) + " " + q(dir.file("p.gguf")) + " --preset q8_0").status == 0);
    CHECK(fs::status(dir.file("p.gguf")).permissions() == (fs::perms::owner_read | fs::perms::owner_write));
    const std::string long_name = std::string(250, 'n') + ".gguf";
    const auto r = run_cli("quantize -q " + q(in) + " " + q(dir.file(long_name)) + " --preset q8_0");
    CHECK_MESSAGE(r.status == 0, r.output);
    CHECK(fs::exists(dir.file(long_name)));
}

TEST_CASE("a signal removes the temporary file and ends the process as the signal would") {
    temp_dir dir;
    const auto in = large_model(dir);
    const std::string cli = cli_path();
    // SIGINT goes the same way, but a shell starts background jobs with it ignored, which the tool respects.
    for (const auto& [signal, status] : std::vector<std::pair<std::string, int>>{{"TERM", 143}, {"HUP", 129}}) {
        const std::string& signal_name = signal;  // as above: CAPTURE is a lambda
        CAPTURE(signal_name);
        // A run of the case before that finished before it could be signalled wrote the file.
        fs::remove(dir.file("o.gguf"));
        // Quantization runs inside the write (each tensor is quantized as it is written): the temporary file
        // exists for as long as the work does. The loop waits for it, then signals; it stops waiting once the
        // run has ended (on a loaded machine 2,000 polls of ls would take a minute).
        const auto r =
                run_shell(cli + " quantize -q -j1 " + q(in) + " " + q(dir.file("o.gguf")) +
                          " --preset q4_k_m & pid=$!; seen=no; for i in $(seq 2000); do if ls -A " + q(dir.path.string()) +
                          " | grep -q cogqat-; then seen=yes; break; fi; kill -0 $pid 2>/dev/null || break; sleep 0.002; done; kill -" +
                          signal + " $pid; wait $pid; echo \"status $? seen $seen\"");
        if (!contains(r.output, "seen yes")) {
            MESSAGE("the run finished before its temporary file was seen: nothing to signal");
            continue;
        }
        CHECK(contains(r.output, "status " + std::to_string(status)));
        CHECK(no_partials(dir));
        if (fs::exists(dir.file("o.gguf"))) {
            // The signal came between the rename and the exit: the output is the finished file, whole.
            MESSAGE("the signal arrived after the output was complete");
            CHECK_NOTHROW((void)cogqat::gguf::reader::open(dir.file("o.gguf")));
        }
    }
}

TEST_CASE("numbers out of range are bad arguments (exit status 2), found before any work") {
    temp_dir dir;
    const auto in = base_model(dir);
    write_bytes(dir.file("t.txt"), "hello world\n");
    const std::string model = q(in), text = " --text " + q(dir.file("t.txt")), out = " " + q(dir.file("o.gguf"));
    const std::vector<std::pair<std::string, std::string>> cases{
            {"eval " + model + text + " --ctx 1000000000", "--ctx 1000000000 exceeds the model's context of 256 tokens"},
            {"eval " + model + text + " --ctx -1", "--ctx: '-1' is not a whole number from 2"},
            {"eval " + model + text + " --ctx 1", "--ctx: '1' is not a whole number from 2"},
            {"eval " + model + text + " -j 4294967295", "--threads: '4294967295' is not a whole number from 0 to 1024"},
            {"eval " + model + text + " --max-tokens 0x10", "--max-tokens: '0x10' is not a whole number"},
            {"qat " + model + out + " --steps -1", "--steps: '-1' is not a whole number"},
            {"qat " + model + out + " --steps 18446744073709551615", "--steps: '18446744073709551615' is not a whole number"},
            {"qat " + model + out + " --samples 1000000000", "--samples: '1000000000' is not a whole number"},
            {"qat " + model + out + " --seq-len 257 --steps 1", "qat: sequences of 257 positions exceed the model's context of 256"},
            {"qat " + model + out + " --samples 16777216 --seq-len 256", "qat: the teacher's log-probabilities"},
            {"qat " + model + out + " --lr nan", "--lr: 'nan' is not a finite number"},
            {"qat " + model + out + " --temperature 0", "--temperature: '0' is not a finite number from 0 (exclusive)"},
            {"generate " + model + " -n -1", "-n: '-1' is not a whole number"},
            {"generate " + model + " -n 300", "exceed the model's context of 256 tokens"},
            {"generate " + model + " --temp nan", "--temp: 'nan' is not 0, or a finite number from 0.01 to 100"},
            {"generate " + model + " --temp 1e-30", "--temp: '1e-30' is not 0, or a finite number"},
            {"generate " + model + " --temp -1", "--temp: '-1' is not 0, or a finite number"},
            {"quantize " + model + out + " --auto --calib-tokens 1", "--calib-tokens: '1' is not a whole number from 2"},
            {"quantize " + model + out + " --auto --target-bpw inf", "--target-bpw: 'inf' is not a finite number"},
            {"quantize " + model + out + " --auto --memory-reduction 1", "--memory-reduction: '1' is not a finite number"},
            {"quantize " + model + out + " -j -2", "--threads: '-2' is not a whole number"},
            {"quantize " + model + out + " --no-such-option", "The following argument was not expected: --no-such-option"},
    };
    for (const auto& [arguments, message] : cases) {
        const std::string& command = arguments;  // as above: CAPTURE is a lambda
        CAPTURE(command);
        const auto r = run_cli(arguments);
        CHECK(r.status == 2);
        CHECK_MESSAGE(contains(r.output, message), r.output);
    }
    CHECK_FALSE(fs::exists(dir.file("o.gguf")));
}

TEST_CASE("an allocation that fails says how much it asked for") {
#if COGQAT_TEST_ADDRESS_SANITIZER
    MESSAGE("skipped under AddressSanitizer, which reserves more address space than the limit this test sets");
#else
    temp_dir dir;
    {
        std::ofstream big(dir.file("big.bin"), std::ios::binary);
        big.seekp((1ll << 30) - 1);
        big.put('\0');  // a sparse file of 1 GiB of zero q8_0 blocks
    }
    const auto r = run_cli("raw dequantize --type q8_0 " + q(dir.file("big.bin")) + " " + q(dir.file("out.f32")), "ulimit -v 600000; ");
    CHECK(r.status == 1);
    CHECK_MESSAGE(contains(r.output, "out of memory: the command asked for"), r.output);
    CHECK_FALSE(fs::exists(dir.file("out.f32")));
#endif
}

TEST_CASE("a model whose metadata or weights make the forward meaningless is refused, naming the key or tensor") {
    temp_dir dir;
    write_bytes(dir.file("t.txt"), "hello world\n");
    const std::string text = " --text " + q(dir.file("t.txt"));
    struct bad {
        std::string path, message;
    };
    const std::vector<bad> cases{
            {edited_model(dir, "base0.gguf", [](auto& c) { c.rope_freq_base = 0.0f; }), "llama.rope.freq_base is 0"},
            {edited_model(dir, "basenan.gguf", [](auto& c) { c.rope_freq_base = NAN; }), "llama.rope.freq_base is nan"},
            {edited_model(dir, "baseneg.gguf", [](auto& c) { c.rope_freq_base = -1.0f; }), "llama.rope.freq_base is -1"},
            {edited_model(dir, "epsnan.gguf", [](auto& c) { c.rms_norm_eps = NAN; }), "llama.attention.layer_norm_rms_epsilon is nan"},
            {patched_model(dir, "weightnan.gguf", "blk.0.attn_q.weight", 5, NAN), "tensor blk.0.attn_q.weight: element 5 (row 0) is NaN"},
            {patched_model(dir, "weightinf.gguf", "output_norm.weight", 3, INFINITY),
             "tensor output_norm.weight: element 3 (row 0) is infinite"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.path);
        for (const std::string& command : {"eval " + q(c.path) + text, "generate -n 2 " + q(c.path)}) {
            const auto r = run_cli(command);
            CHECK(r.status == 1);
            CHECK_MESSAGE(contains(r.output, c.message), r.output);
        }
    }
}

TEST_CASE("bytes that are not UTF-8 in names, values and paths are written as U+FFFD, never an abort") {
    temp_dir dir;
    const auto in = base_model(dir);
    const std::string bad = "na\xffme\xc3";
    {
        cogqat::gguf::writer w(dir.file("names.gguf"));
        w.set("general.architecture", cogqat::gguf::value("llama"));
        w.set("key" + bad, cogqat::gguf::value("value" + bad));
        w.add_tensor("tensor" + bad, {4}, cogqat::ggml_type::f32, std::vector<std::byte>(16));
        w.finish();
    }
    auto r = run_cli("inspect --json " + q(dir.file("names.gguf")));
    REQUIRE_MESSAGE(r.status == 0, r.output);
    const auto j = nlohmann::json::parse(r.output);
    CHECK(j["metadata"]["key" + cogqat::valid_utf8(bad)] == "value" + cogqat::valid_utf8(bad));
    CHECK(j["tensors"][0]["name"] == "tensorna\xef\xbf\xbdme\xef\xbf\xbd");
    CHECK(j["tensors"][0]["name"] == "tensor" + cogqat::valid_utf8(bad));

    // A report whose output path is not UTF-8, as JSON and as HTML.
    const auto out = dir.file("o\xff.gguf");
    r = run_cli("quantize -q " + q(in) + " " + q(out) + " --auto --no-gptq --calib random --calib-tokens 16 --candidates q8_0 --json " +
                q(dir.file("r.json")) + " --html " + q(dir.file("r.html")));
    REQUIRE_MESSAGE(r.status == 0, r.output);
    const auto report = nlohmann::json::parse(read_text(dir.file("r.json")));
    CHECK(report["output"] == cogqat::valid_utf8(out));
    CHECK(contains(read_text(dir.file("r.html")), cogqat::valid_utf8(out)));
}

TEST_CASE("text: standard input works, --max-tokens bounds what is read, and a long prompt is refused before it is encoded") {
    temp_dir dir;
    const auto in = base_model(dir);
    std::string story;
    for (int i = 0; i < 40; ++i) story += "the cat sat on the mat and looked at the dog. ";
    write_bytes(dir.file("t.txt"), story + "\n" + story + "\n");
    // stdout alone is the JSON line (the progress goes to stderr).
    const auto from_file = run_cli("eval --json --ctx 64 " + q(in) + " --text " + q(dir.file("t.txt")) + " 2>/dev/null");
    const auto from_stdin = run_cli("eval --json --ctx 64 " + q(in) + " --text - < " + q(dir.file("t.txt")) + " 2>/dev/null");
    REQUIRE_MESSAGE(from_file.status == 0, from_file.output);
    REQUIRE_MESSAGE(from_stdin.status == 0, from_stdin.output);
    CHECK(nlohmann::json::parse(from_file.output)["nll"] == nlohmann::json::parse(from_stdin.output)["nll"]);
    // One long line, only its first tokens scored.
    const auto few = run_cli("eval --json --ctx 64 --max-tokens 10 " + q(in) + " --text " + q(dir.file("t.txt")) + " 2>/dev/null");
    REQUIRE_MESSAGE(few.status == 0, few.output);
    CHECK(nlohmann::json::parse(few.output)["tokens"] == 9);
    // A prompt far beyond the context: refused from its length alone.
    const auto r = run_cli("generate -n 1 " + q(in) + " -p \"$(head -c 24000 " + q(dir.file("t.txt")) + ")\"");
    CHECK(r.status == 2);
    CHECK(contains(r.output, "is longer than the model's context of 256 tokens"));
    // More threads than the machine has: cut to what it has, with a note.
    const auto threads = run_cli("eval --ctx 64 --max-tokens 20 -j 1000 " + q(in) + " --text " + q(dir.file("t.txt")));
    CHECK(threads.status == 0);
    CHECK(contains(threads.output, "-j 1000: this machine has"));
}

TEST_CASE("--auto without a target works where 75% smaller than F16 is out of reach; a target that cannot be met says the smallest") {
    temp_dir dir;
    const auto in = base_model(dir);
    // With q8_0 alone (8.5 bits per weight), a 75% reduction (4 bits) cannot be met.
    auto r = run_cli("quantize -q " + q(in) + " " + q(dir.file("a.gguf")) +
                     " --auto --no-gptq --calib random --calib-tokens 16 --candidates q8_0");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(contains(r.output, "the default target (75% smaller than F16) is out of reach"));
    r = run_cli("quantize -q " + q(in) + " " + q(dir.file("b.gguf")) +
                " --auto --no-gptq --calib random --calib-tokens 16 --candidates q8_0 --memory-reduction 0.75");
    CHECK(r.status == 2);
    CHECK(contains(r.output, "a memory reduction of 0.750 against F16 is beyond the largest this model allows"));
    r = run_cli("quantize -q " + q(in) + " " + q(dir.file("b.gguf")) +
                " --auto --no-gptq --calib random --calib-tokens 16 --candidates q8_0 --target-bytes 1");
    CHECK(r.status == 2);
    CHECK(contains(r.output, "a file of 1 bytes is below the smallest this model allows"));
    CHECK_FALSE(fs::exists(dir.file("b.gguf")));
}

TEST_CASE("--help lists the exit statuses") {
    const auto r = run_cli("--help");
    CHECK(r.status == 0);
    CHECK(contains(r.output, "Exit status: 0 when the command succeeded, 1 when it failed"));
    CHECK(contains(r.output, "2 for bad arguments"));
}

TEST_CASE("valid_utf8 replaces what nlohmann::json replaces, the same way") {
    for (const std::string& s :
         {std::string("plain"), std::string("caf\xc3\xa9"), std::string("\xff"), std::string("a\xc3"), std::string("\xe2\x96"),
          std::string("\xe2\x96x"), std::string("\xe0\x80\x80"), std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"),
          std::string("\xf0\x9f\x98\x80"), std::string("\xf0\x9f\x98"), std::string("\xc0\xaf"), std::string("\x80\x80x")}) {
        CAPTURE(s);
        const std::string via_json =
                nlohmann::json::parse(nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)).get<std::string>();
        CHECK(cogqat::valid_utf8(s) == via_json);
        CHECK(cogqat::is_valid_utf8(cogqat::valid_utf8(s)));
        CHECK(cogqat::is_valid_utf8(s) == (cogqat::valid_utf8(s) == s));
    }
}
