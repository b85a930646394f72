// The crash test's writer process (test_atomspace_rocks.cpp starts it and SIGKILLs it at a random point):
// stores the workload's steps one store call at a time and, after each call returns, appends the step's
// number to the report file and fdatasyncs it, so the test knows which stores returned.
//   cogqat_rocks_crash_writer <database dir> <report file> <run> <steps>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "cogqat/cog/rocks_storage.hpp"
#include "rocks_crash_workload.hpp"

int main(int argc, char** argv) {
    namespace crash = cogqat::test::rocks_crash;
    if (argc != 5) {
        std::fprintf(stderr, "usage: cogqat_rocks_crash_writer <database dir> <report file> <run> <steps>\n");
        return 2;
    }
    try {
        const int run = std::atoi(argv[3]);
        const int steps = std::atoi(argv[4]);
        const int report = ::open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (report < 0) {
            std::perror(argv[2]);
            return 1;
        }
        cogqat::cog::rocks_storage<crash::tv_type> storage(argv[1]);
        crash::space_type space;
        for (int step = 0; step < steps; ++step) {
            storage.store(space, crash::add_step(space, run, step));
            const std::string line = std::to_string(step) + "\n";
            if (::write(report, line.data(), line.size()) != static_cast<ssize_t>(line.size()) || ::fdatasync(report) != 0) {
                std::perror(argv[2]);
                return 1;
            }
        }
        ::close(report);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cogqat_rocks_crash_writer: %s\n", e.what());
        return 1;
    }
    return 0;
}
