// Every installed header, through the umbrella, compiles in a consumer's build (find_package mode: the
// headers are the installed copies, not the source tree the project's own programs compile).
#include <cogqat/cogqat.hpp>
