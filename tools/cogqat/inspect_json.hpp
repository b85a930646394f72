#pragma once
// `cogqat inspect --json`: a GGUF's header, metadata and tensor table as one JSON document. A header of its
// own so that the fuzz target (tests/fuzz/fuzz_inspect_json.cpp) runs exactly what the command prints.

#include <cogqat/io/gguf.hpp>

#include <string>

#include "json_output.hpp"
#include "text_output.hpp"

namespace cogqat::cli {

inline json value_json(const gguf::value& v) {
    if (v.type() == gguf::value_type::array) {
        json j{{"array_of", static_cast<std::uint32_t>(v.array_type())}, {"length", v.array_size()}};
        j["preview"] = v.to_string();
        return j;
    }
    if (v.type() == gguf::value_type::string) return v.as_string();
    if (v.type() == gguf::value_type::boolean) return v.as<bool>();
    if (v.type() == gguf::value_type::float32) return v.as<float>();
    if (v.type() == gguf::value_type::float64) return v.as<double>();
    return v.to_string();
}

inline json inspect_json(const gguf::reader& in, const std::string& path) {
    json metadata = json::object();
    for (const auto& [key, value] : in.metadata()) metadata[key] = value_json(value);
    json tensors = json::array();
    for (const auto& t : in.tensors())
        tensors.push_back({{"name", t.name}, {"shape", t.shape}, {"type", type_name(t.type)}, {"offset", t.offset}, {"bytes", t.bytes()}});
    // A split model: file_bytes counts every shard, and "shards" lists them (offsets are within each shard).
    json shards = json::array();
    for (const auto& p : in.paths()) shards.push_back(p.string());
    return {{"file", path},     {"version", in.version()}, {"alignment", in.alignment()}, {"file_bytes", in.total_size()},
            {"shards", shards}, {"metadata", metadata},    {"tensors", tensors}};
}

}  // namespace cogqat::cli
