// Writes a mutated copy of a file, for scripts/mutate.sh: `cogqat_mutate SEED IN OUT`. One to eight mutations,
// chosen by the seed: bit flips, bytes and little-endian integers set to boundary values (lengths, counts,
// types and offsets of a GGUF live there), chunks inserted, deleted or duplicated, and truncation. Mutations
// favour the first 4 KiB, where a GGUF keeps its header, metadata and tensor table.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: cogqat_mutate SEED IN OUT\n";
        return 2;
    }
    std::mt19937_64 rng(std::strtoull(argv[1], nullptr, 10));
    std::ifstream in(argv[2], std::ios::binary);
    std::vector<unsigned char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (!in.eof() && in.fail()) {
        std::cerr << "cogqat_mutate: cannot read " << argv[2] << "\n";
        return 1;
    }
    auto position = [&] {
        if (bytes.empty()) return std::size_t{0};
        const std::size_t hot = std::min<std::size_t>(bytes.size(), 4096);
        return static_cast<std::size_t>(rng() % (rng() % 4 ? hot : bytes.size()));
    };
    static constexpr std::uint64_t boundaries[] = {0,
                                                   1,
                                                   2,
                                                   3,
                                                   7,
                                                   8,
                                                   31,
                                                   32,
                                                   63,
                                                   64,
                                                   255,
                                                   256,
                                                   0x7f,
                                                   0x80,
                                                   0xff,
                                                   0x7fff,
                                                   0x8000,
                                                   0xffff,
                                                   0x7fffffff,
                                                   0x80000000,
                                                   0xffffffff,
                                                   0x100000000,
                                                   0x7fffffffffffffff,
                                                   0x8000000000000000,
                                                   0xffffffffffffffff,
                                                   30,
                                                   40,
                                                   41,
                                                   100000,
                                                   1u << 20};
    const int count = 1 + static_cast<int>(rng() % 8);
    for (int m = 0; m < count; ++m) {
        const std::size_t at = position();
        switch (rng() % 7) {
            case 0:
                if (!bytes.empty()) bytes[at] ^= static_cast<unsigned char>(1u << (rng() % 8));
                break;
            case 1:
                if (!bytes.empty()) bytes[at] = static_cast<unsigned char>(boundaries[rng() % std::size(boundaries)]);
                break;
            case 2: {  // a little-endian integer of 2, 4 or 8 bytes
                const std::size_t width = std::size_t{2} << (rng() % 3);
                const std::uint64_t v = boundaries[rng() % std::size(boundaries)];
                for (std::size_t i = 0; i < width && at + i < bytes.size(); ++i) bytes[at + i] = static_cast<unsigned char>(v >> (8 * i));
                break;
            }
            case 3: {
                const std::size_t n = 1 + rng() % 64;
                std::vector<unsigned char> chunk(n);
                for (auto& c : chunk) c = static_cast<unsigned char>(rng());
                bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(std::min(at, bytes.size())), chunk.begin(), chunk.end());
                break;
            }
            case 4: {
                const std::size_t n = std::min<std::size_t>(1 + rng() % 64, bytes.size() - std::min(at, bytes.size()));
                bytes.erase(bytes.begin() + static_cast<std::ptrdiff_t>(at), bytes.begin() + static_cast<std::ptrdiff_t>(at + n));
                break;
            }
            case 5: {
                if (bytes.empty()) break;
                const std::size_t n = std::min<std::size_t>(1 + rng() % 256, bytes.size() - at);
                const std::vector<unsigned char> chunk(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                                                       bytes.begin() + static_cast<std::ptrdiff_t>(at + n));
                bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(position()), chunk.begin(), chunk.end());
                break;
            }
            default:
                if (rng() % 4 == 0) bytes.resize(at);
                break;
        }
    }
    std::ofstream out(argv[3], std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
        std::cerr << "cogqat_mutate: cannot write " << argv[3] << "\n";
        return 1;
    }
    return 0;
}
