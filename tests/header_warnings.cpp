// Compiled with the warnings a strict user turns on (-Wconversion -Wsign-conversion -Wshadow, as errors): the
// library's headers must not warn in a user's build. The templates a program instantiates are checked by
// the tests' own units, with the project's flags.
#include <cogqat/cogqat.hpp>
