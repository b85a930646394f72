# The compile checks' joint unit (cmake/cogqatCompileCheckUnit.cmake): two programs with the same names in their
# anonymous namespaces and a main each compile together under their own definitions; an error in one is
# reported against its own file and line; an include inside #if and a malformed definition are refused with
# the place named.
#   cmake -DCOMPILER=<c++> -DWORK=<scratch dir> -DGENERATOR=<cogqatCompileCheckUnit.cmake> -P compile_check_unit.cmake
cmake_minimum_required(VERSION 3.21)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/first ${WORK}/second)

# Writes the manifest of SOURCES (path=definition pairs: "path" or "path|DEF|DEF...") and runs the generator;
# sets result and output in the caller.
function(generate name)
  set(manifest "")
  set(i 0)
  foreach(entry IN LISTS ARGN)
    string(REPLACE "|" ";" parts "${entry}")
    list(POP_FRONT parts source)
    set(definitions "")
    foreach(definition IN LISTS parts)
      string(APPEND definitions " [==[${definition}]==]")
    endforeach()
    string(APPEND manifest "set(cogqat_check_source_${i} [==[${source}]==])\nset(cogqat_check_program_${i} program_${i})\n"
                           "set(cogqat_check_definitions_${i}${definitions})\n")
    math(EXPR i "${i} + 1")
  endforeach()
  file(WRITE ${WORK}/${name}.cmake "set(cogqat_check_count ${i})\n${manifest}")
  execute_process(COMMAND ${CMAKE_COMMAND} -DMANIFEST=${WORK}/${name}.cmake -DOUTPUT=${WORK}/${name}.cpp -P ${GENERATOR}
                  RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE out)
  # CMake wraps a message's lines.
  string(REGEX REPLACE "[ \n]+" " " out "${out}")
  set(result ${code} PARENT_SCOPE)
  set(output "${out}" PARENT_SCOPE)
endfunction()

function(compile name)
  execute_process(COMMAND ${COMPILER} -std=c++20 -fsyntax-only -Wall -Wextra -Werror ${WORK}/${name}.cpp
                  RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE out)
  set(result ${code} PARENT_SCOPE)
  set(output "${out}" PARENT_SCOPE)
endfunction()

# Two programs alike in their names; the second includes a header of its directory by a quoted name, and
# each needs its own definition (the other's is undefined by then: #ifdef would show a leak).
file(WRITE ${WORK}/first/main.cpp [=[
#include <cstddef>

namespace {
std::size_t helper() { return FIRST_VALUE; }
}  // namespace

int main() {
#ifdef SECOND_NAME
    static_assert(false, "the second program's definition leaked into the first");
#endif
    return static_cast<int>(helper());
}
]=])
file(WRITE ${WORK}/second/local.hpp [=[
#pragma once
inline int local_value() { return 2; }
]=])
file(WRITE ${WORK}/second/main.cpp [=[
#include "local.hpp"

namespace {
int helper() { return local_value(); }
}  // namespace

int main(int argc, char**) {
#ifdef FIRST_VALUE
    static_assert(false, "the first program's definition leaked into the second");
#endif
    const char* name = SECOND_NAME;
    return argc + helper() + name[0];
}
]=])
generate(good "${WORK}/first/main.cpp|FIRST_VALUE=7" "${WORK}/second/main.cpp|SECOND_NAME=\"second\"")
if(NOT result EQUAL 0)
  message(FATAL_ERROR "the generator failed on two good programs:\n${output}")
endif()
compile(good)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "two good programs do not compile as one unit:\n${output}")
endif()

# An error on line 5 of the second program is reported there, not in the unit.
file(READ ${WORK}/second/main.cpp text)
string(REPLACE "int helper() { return local_value(); }" "int helper() { return local_value(); }\nint planted = \"not an int\";" text "${text}")
file(WRITE ${WORK}/second/main.cpp "${text}")
compile(good)
if(result EQUAL 0 OR NOT output MATCHES "second/main.cpp:5:[0-9]+: error")
  message(FATAL_ERROR "an error on second/main.cpp:5 is not reported there:\n${output}")
endif()

# Refused: an include inside a conditional (it would be made inside the namespace), a definition that is no
# definition.
file(WRITE ${WORK}/first/conditional.cpp "#include <cstddef>\n#ifdef X\n#include <cstdint>\n#endif\nint main() { return 0; }\n")
generate(conditional "${WORK}/first/conditional.cpp")
if(result EQUAL 0 OR NOT output MATCHES "conditional.cpp:3: an #include inside #if")
  message(FATAL_ERROR "an include inside #if was not refused with its place:\n${output}")
endif()
generate(definition "${WORK}/first/main.cpp|1BAD=2")
if(result EQUAL 0 OR NOT output MATCHES "compile definition '1BAD=2' of program_0 is not NAME")
  message(FATAL_ERROR "a malformed definition was not refused:\n${output}")
endif()
message(STATUS "compile_check_unit: joint unit, error places and refusals as expected")
