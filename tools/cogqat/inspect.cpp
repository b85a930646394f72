// `cogqat inspect FILE.gguf [--json]`: a GGUF's metadata and tensors.

#include <cogqat/io/gguf.hpp>

#include <fmt/format.h>

#include <memory>
#include <string>

#include "commands.hpp"
#include "inspect_json.hpp"
#include "options.hpp"
#include "text_output.hpp"

namespace cogqat::cli {

namespace {

struct inspect_arguments {
    std::string file;
    bool as_json = false;
};

int run_inspect(const inspect_arguments& a) {
    const auto in = gguf::reader::open(a.file);
    if (a.as_json) {
        print_json(inspect_json(in, a.file));
        return exit_success;
    }
    const std::string shards = in.shard_count() > 1 ? fmt::format(" in {} shards", in.shard_count()) : std::string();
    fmt::print("{}: GGUF v{}, {} bytes{}, alignment {}, {} metadata keys, {} tensors\n\n", a.file, in.version(), in.total_size(), shards,
               in.alignment(), in.metadata().size(), in.tensors().size());
    for (const auto& [key, value] : in.metadata()) fmt::print("{} = {}\n", key, value.to_string());
    fmt::print("\n{:<28} {:>14} {:<6} {:>10} {:>10}\n", "tensor", "shape", "type", "bytes", "offset");
    std::uint64_t total = 0;
    for (const auto& t : in.tensors()) {
        fmt::print("{:<28} {:>14} {:<6} {:>10} {:>10}\n", t.name, shape_text(t.shape), type_name(t.type), t.bytes(), t.offset);
        total += t.bytes();
    }
    fmt::print("\n{} bytes of tensor data\n", total);
    return exit_success;
}

}  // namespace

void add_inspect_command(command_line& app, command_list& commands) {
    auto a = std::make_shared<inspect_arguments>();
    auto inspect = app.subcommand("inspect", "Show a GGUF's metadata and tensors");
    inspect.text("file", a->file, "GGUF to read").required();
    inspect.flag("--json", a->as_json, "Print one JSON document");
    commands.push_back({inspect, [a] { return run_inspect(*a); }});
}

}  // namespace cogqat::cli
