// The crash test's writer process (test_atomspace_rocks.cpp starts it and SIGKILLs it at a random point):
// stores the workload's steps one store call at a time and, after each call returns, writes the step's
// number as a line to its standard output, a pipe the test reads, so the test knows which stores returned (a
// line in the pipe outlives the process that wrote it).
//   cogqat_rocks_crash_writer <database dir> <run> <steps>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "cogqat/cog/rocks_storage.hpp"
#include "rocks_crash_workload.hpp"

int main(int argc, char** argv) {
    namespace crash = cogqat::test::rocks_crash;
    if (argc != 4) {
        std::fprintf(stderr, "usage: cogqat_rocks_crash_writer <database dir> <run> <steps>\n");
        return 2;
    }
    try {
        const int run = std::atoi(argv[2]);
        const int steps = std::atoi(argv[3]);
        cogqat::cog::rocks_storage<crash::tv_type> storage(argv[1]);
        crash::space_type space;
        for (int step = 0; step < steps; ++step) {
            storage.store(space, crash::add_step(space, run, step));
            const std::string line = std::to_string(step) + "\n";
            if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
                std::perror("cogqat_rocks_crash_writer: the report pipe");
                return 1;
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cogqat_rocks_crash_writer: %s\n", e.what());
        return 1;
    }
    return 0;
}
