#include "options.hpp"

#include <CLI/CLI.hpp>

#include <cogqat/core/error.hpp>
#include <cogqat/io/output_file.hpp>

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <system_error>
#include <thread>

#include <sys/stat.h>

namespace cogqat::cli {

namespace {

CLI::Validator whole_number(std::uint64_t min, std::uint64_t max) {
    const auto range = fmt::format("a whole number from {} to {}", min, max);
    return CLI::Validator(
            [=](std::string& text) -> std::string {
                std::uint64_t v = 0;
                const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
                const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), v);
                if (!digits || error != std::errc() || end != text.data() + text.size() || v < min || v > max)
                    return "'" + text + "' is not " + range;
                text = std::to_string(v);  // no leading zeros left for the parser to read as octal
                return {};
            },
            range);
}

CLI::Validator real_number(real_range r) {
    const auto range = fmt::format("{}a finite number from {}{} to {}", r.or_zero ? "0, or " : "", r.min,
                                   r.min_exclusive ? " (exclusive)" : "", r.max);
    return CLI::Validator(
            [=](std::string& text) -> std::string {
                double v = 0.0;
                const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), v);
                const bool parsed = !text.empty() && error == std::errc() && end == text.data() + text.size() && std::isfinite(v);
                const bool in_range = (r.min_exclusive ? v > r.min : v >= r.min) && v <= r.max;
                if (!parsed || !(in_range || (r.or_zero && v == 0.0))) return "'" + text + "' is not " + range;
                return {};
            },
            range);
}

CLI::Validator byte_size() {
    const std::string what = "a size in bytes: N, or N followed by K, M or G (powers of 1000), from 1 to 2^64 - 1";
    return CLI::Validator(
            [=](std::string& text) -> std::string {
                const auto bytes = parse_byte_size(text);
                if (!bytes) return "'" + text + "' is not " + what;
                text = std::to_string(*bytes);
                return {};
            },
            what);
}

}  // namespace

std::optional<std::uint64_t> parse_byte_size(const std::string& text) {
    if (text.empty()) return std::nullopt;
    std::uint64_t unit = 1;
    std::string digits = text;
    switch (text.back()) {
        case 'K':
            unit = 1000, digits.pop_back();
            break;
        case 'M':
            unit = 1000 * 1000, digits.pop_back();
            break;
        case 'G':
            unit = 1000 * 1000 * 1000, digits.pop_back();
            break;
        default:
            break;
    }
    std::uint64_t n = 0;
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (error != std::errc() || end != digits.data() + digits.size() || n == 0 || n > UINT64_MAX / unit) return std::nullopt;
    return n * unit;
}

std::string written_files(const std::vector<std::filesystem::path>& files) {
    if (files.empty()) return {};
    if (files.size() == 1) return files.front().string();
    return fmt::format("{} ({} shards: {} ... {})", files.front().string(), files.size(), files.front().filename().string(),
                       files.back().filename().string());
}

option& option::required() {
    option_->required();
    return *this;
}
option& option::needs(const option& other) {
    option_->needs(other.option_);
    return *this;
}
option& option::excludes(const option& other) {
    option_->excludes(other.option_);
    return *this;
}
bool option::given() const { return option_->count() > 0; }
option& option::take_all() {
    option_->take_all();
    return *this;
}
option& option::list(char separator) {
    option_->delimiter(separator);
    return *this;
}
option& option::one_of(const std::vector<std::string>& allowed) {
    option_->check(CLI::IsMember(allowed));
    return *this;
}

command_line command_line::subcommand(const std::string& name, const std::string& description) {
    return command_line(*app_->add_subcommand(name, description));
}
void command_line::require_subcommand() { app_->require_subcommand(1); }
bool command_line::parsed() const { return app_->parsed(); }

option command_line::text(const std::string& name, std::string& value, const std::string& description) {
    return option(app_->add_option(name, value, description));
}
option command_line::texts(const std::string& name, std::vector<std::string>& values, const std::string& description) {
    return option(app_->add_option(name, values, description));
}
option command_line::flag(const std::string& name, bool& value, const std::string& description) {
    return option(app_->add_flag(name, value, description));
}
option command_line::whole(const std::string& name, unsigned& value, std::uint64_t min, std::uint64_t max, const std::string& description) {
    return option(app_->add_option(name, value, description)->check(whole_number(min, max)));
}
option command_line::whole(const std::string& name, std::uint64_t& value, std::uint64_t min, std::uint64_t max,
                           const std::string& description) {
    return option(app_->add_option(name, value, description)->check(whole_number(min, max)));
}
option command_line::whole(const std::string& name, std::optional<std::uint64_t>& value, std::uint64_t min, std::uint64_t max,
                           const std::string& description) {
    return option(app_->add_option(name, value, description)->check(whole_number(min, max)));
}
option command_line::real(const std::string& name, float& value, real_range range, const std::string& description) {
    return option(app_->add_option(name, value, description)->check(real_number(range)));
}
option command_line::real(const std::string& name, double& value, real_range range, const std::string& description) {
    return option(app_->add_option(name, value, description)->check(real_number(range)));
}
option command_line::real(const std::string& name, std::optional<double>& value, real_range range, const std::string& description) {
    return option(app_->add_option(name, value, description)->check(real_number(range)));
}
option command_line::threads(unsigned& value, const std::string& description) {
    return whole("--threads,-j", value, 0, max_threads, description);
}

void command_line::split(gguf::split_limits& limits) {
    app_->add_option("--split-max-size", limits.max_bytes,
                     "Write a split set (PREFIX-00001-of-0000N.gguf, ...) whose files are at most N bytes each (K, M, G: powers of 1000); "
                     "a tensor larger than that gets a file of its own")
            ->transform(byte_size());
    app_->add_option("--split-max-tensors", limits.max_tensors, "Write a split set with at most N tensors per file")
            ->check(whole_number(1, UINT64_MAX));
}

unsigned usable_threads(unsigned requested) {
    const unsigned hardware = std::thread::hardware_concurrency();
    if (hardware == 0 || requested <= hardware) return requested;
    fmt::print(stderr, "cogqat: -j {}: this machine has {} hardware threads; using {}\n", requested, hardware, hardware);
    return hardware;
}

namespace {

/// The same file: the same path once made absolute and normal, or (both existing) the same inode.
bool same_file(const std::string& a, const std::string& b) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const auto normal_a = fs::absolute(a, ec).lexically_normal(), normal_b = fs::absolute(b, ec).lexically_normal();
    if (normal_a == normal_b) return true;
    struct stat sa {
    }, sb{};
    return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace

void check_files(const std::vector<named_path>& inputs, const std::vector<named_path>& outputs) {
    for (std::size_t o = 0; o < outputs.size(); ++o) {
        const auto& out = outputs[o];
        if (out.path.empty()) continue;
        for (const auto& in : inputs)
            if (!in.path.empty() && same_file(out.path, in.path))
                throw invalid_argument_error(out.name + " '" + out.path + "' is the " + in.name + " '" + in.path +
                                             "': writing it would destroy what is read; give it another path");
        for (std::size_t p = 0; p < o; ++p)
            if (!outputs[p].path.empty() && same_file(out.path, outputs[p].path))
                throw invalid_argument_error(out.name + " '" + out.path + "' is also the " + outputs[p].name + " '" + outputs[p].path +
                                             "': one would overwrite the other; give each its own path");
        io::check_writable(out.path);
    }
}

void check_model_output(const std::vector<std::filesystem::path>& inputs, const std::string& output, const gguf::split_limits& split) {
    // PREFIX-00002-of-00003.gguf: the prefix of a shard, whatever its place and count.
    static const std::regex shard_name(R"(^(.*)-[0-9]{5}-of-[0-9]{5}\.gguf$)");
    const std::string prefix = gguf::split_prefix_for(output).string();
    for (const auto& input : inputs) {
        const std::string in = input.string();
        if (!split.active()) {
            if (same_file(output, in))
                throw invalid_argument_error("OUTPUT '" + output + "' is a shard of the INPUT, '" + in +
                                             "': writing it would destroy what is read; give it another path");
            continue;
        }
        std::smatch m;
        if (std::regex_match(in, m, shard_name) && same_file(m[1].str(), prefix))
            throw invalid_argument_error("OUTPUT '" + output + "' is written as split files named '" + prefix +
                                         "-0000i-of-0000N.gguf', which could replace the INPUT's '" + in + "'; give it another name");
    }
}

}  // namespace cogqat::cli
