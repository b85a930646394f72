# cogqat's SIMD kernels in a CMake project: compiled once per instruction set, each set in its own unit built
# with that set's flags, chosen at run time (the best set the CPU runs, or the one COGQAT_SIMD names), so that
# nothing assumes an instruction set at compile time.
#
# cogqat_add_simd_kernels(<name> [ARCHS <isa>...])
#   Creates <name>, a static library of the kernels that any number of targets link with
#   target_link_libraries(): executables, SHARED, MODULE, STATIC and OBJECT libraries alike. The sets are
#   compiled once, however many targets link it.
#
# cogqat_simd_dispatch(<target> [ARCHS <isa>...])
#   The same for one target: creates <target>_cogqat_simd_kernels and links it into <target>.
#
# ISAs: sse4.2 avx2 avx512 avx512_vnni (x86-64), neon (AArch64). Default: all of the target processor's. A set
# the compiler cannot build for is skipped with a message.
#
# Why a static library with a forced reference: the kernels register themselves from a static initializer
# that nothing in the program calls. A linker copies an archive member only when it defines a symbol
# something needs, so a plain static library (or an OBJECT library archived into the user's STATIC library)
# would be dropped and the program would run scalar code without a word. The library therefore names one
# symbol of its registration unit in its INTERFACE_LINK_OPTIONS (-u / /INCLUDE:): every link that uses it,
# directly or through a STATIC or OBJECT library's usage requirements, pulls in the registration and, through
# it, every set's kernels. This works from CMake 3.21 (whole-archive linking, $<LINK_LIBRARY:WHOLE_ARCHIVE>,
# needs 3.24) and survives install(EXPORT), unlike object files propagated by path.
#
# The per-ISA units define only templates on their instruction set and one function that builds their
# table; the registration unit is compiled without ISA flags and builds a set's table only on a CPU that
# runs it. No function compiled with ISA flags is reachable from baseline code except through the table
# (scripts/check_isa_symbols.sh checks the objects).

include_guard(GLOBAL)
include(CheckCXXSourceCompiles)

function(_cogqat_simd_flags isa out)
  if(MSVC)
    set(flags_sse4.2 "/arch:AVX")
    set(flags_avx2 "/arch:AVX2")
    set(flags_avx512 "/arch:AVX512")
    set(flags_avx512_vnni "/arch:AVX512")
    set(flags_neon "")
  else()
    set(flags_sse4.2 "-msse4.2;-mpopcnt")
    set(flags_avx2 "-mavx2;-mfma;-mf16c")
    set(flags_avx512 "-mavx512f;-mavx512bw;-mavx512dq;-mavx512vl;-mavx2;-mfma;-mf16c")
    set(flags_avx512_vnni "-mavx512f;-mavx512bw;-mavx512dq;-mavx512vl;-mavx512vnni;-mavx2;-mfma;-mf16c")
    set(flags_neon "")
  endif()
  set(${out} "${flags_${isa}}" PARENT_SCOPE)
endfunction()

# The sets the compiler can build for, among those asked for (default: the processor's).
function(_cogqat_simd_buildable_isas caller out)
  set(isas ${ARGN})
  if(NOT isas)
    if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i[3-6]86)$")
      set(isas sse4.2 avx2 avx512 avx512_vnni)
    elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
      set(isas neon)
    endif()
  endif()
  set(probe_sse4.2 "#include <nmmintrin.h>\nint main(){return _mm_popcnt_u32(3u)==2?0:1;}")
  set(probe_avx2 "#include <immintrin.h>\nint main(){__m256i v=_mm256_set1_epi8(1);return _mm256_movemask_epi8(v)==-1?0:1;}")
  set(probe_avx512 "#include <immintrin.h>\nint main(){__m512i v=_mm512_set1_epi8(1);return (int)_mm512_reduce_add_epi32(_mm512_maddubs_epi16(v,v))==64?0:1;}")
  set(probe_avx512_vnni "#include <immintrin.h>\nint main(){__m512i v=_mm512_set1_epi8(1);return (int)_mm512_reduce_add_epi32(_mm512_dpbusd_epi32(v,v,v))==80?0:1;}")
  set(probe_neon "#include <arm_neon.h>\nint main(){int8x16_t v=vdupq_n_s8(1);return vaddvq_s8(v)==16?0:1;}")
  set(buildable "")
  foreach(isa IN LISTS isas)
    if(NOT DEFINED probe_${isa})
      message(FATAL_ERROR "${caller}: unknown instruction set '${isa}' (known: sse4.2 avx2 avx512 avx512_vnni neon)")
    endif()
    _cogqat_simd_flags(${isa} flags)
    # Whether the compiler can build for the set at all (an old compiler, another processor).
    string(MAKE_C_IDENTIFIER "COGQAT_CAN_BUILD_${isa}" probe)
    list(JOIN flags " " CMAKE_REQUIRED_FLAGS)
    check_cxx_source_compiles("${probe_${isa}}" ${probe})
    if(${probe})
      list(APPEND buildable ${isa})
    else()
      message(STATUS "${caller}: the compiler cannot build for ${isa}; skipped")
    endif()
  endforeach()
  set(${out} ${buildable} PARENT_SCOPE)
endfunction()

# Writes `text` to `file` unless it holds it already (an unchanged unit is not recompiled).
function(_cogqat_simd_write file text)
  if(EXISTS ${file})
    file(READ ${file} old)
  else()
    set(old "")
  endif()
  if(NOT old STREQUAL text)
    file(WRITE ${file} "${text}")
  endif()
endfunction()

function(cogqat_add_simd_kernels name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "ARCHS")
  if(TARGET ${name})
    message(FATAL_ERROR "cogqat_add_simd_kernels: a target '${name}' exists already")
  endif()
  find_package(xsimd CONFIG REQUIRED)
  _cogqat_simd_buildable_isas(cogqat_add_simd_kernels isas ${ARG_ARCHS})
  string(MAKE_C_IDENTIFIER "${name}" id)
  set(tag_sse4.2 isa_sse4_2)
  set(tag_avx2 isa_avx2)
  set(tag_avx512 isa_avx512)
  set(tag_avx512_vnni isa_avx512_vnni)
  set(tag_neon isa_neon)
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/cogqat_simd)
  set(anchor cogqat_simd_linked_${id})
  set(declarations "")
  set(registrations "")
  set(units "")
  foreach(isa IN LISTS isas)
    set(function cogqat_simd_${id}_${tag_${isa}})
    set(unit ${dir}/${name}_${tag_${isa}}.cpp)
    _cogqat_simd_write(${unit} "// Generated by cogqat_add_simd_kernels(${name}): cogqat's ${isa} kernels, compiled for ${isa}.\n#include <cogqat/simd/isa/register.hpp>\nCOGQAT_SIMD_DEFINE_KERNELS(${tag_${isa}}, ${function})\n")
    list(APPEND units ${unit})
    string(APPEND declarations "const cogqat::dispatch::kernel_table& ${function}();\n")
    string(APPEND registrations "    cogqat::dispatch::register_kernels(\"${isa}\", &${function});\n")
  endforeach()
  set(register ${dir}/${name}_register.cpp)
  list(JOIN isas ", " isa_names)
  _cogqat_simd_write(${register} "// Generated by cogqat_add_simd_kernels(${name}): registers the kernels of ${isa_names} before main runs.
// Compiled without instruction-set flags: a set's table is built only once the CPU is known to run it.
#include <cogqat/dispatch/kernel_table.hpp>

${declarations}
// What the library's INTERFACE_LINK_OPTIONS make every link reference, so that a static link keeps this unit.
extern \"C\" const int ${anchor};
extern \"C\" const int ${anchor} = 1;

namespace {
[[maybe_unused]] const bool registered = [] {
${registrations}    return true;
}();
}  // namespace
")
  add_library(${name} STATIC ${register} ${units})
  foreach(isa IN LISTS isas)
    _cogqat_simd_flags(${isa} flags)
    set_source_files_properties(${dir}/${name}_${tag_${isa}}.cpp TARGET_DIRECTORY ${name} PROPERTIES COMPILE_OPTIONS "${flags}")
  endforeach()
  target_link_libraries(${name} PUBLIC cogqat::cogqat)
  # xsimd's headers only: Debian's xsimd target also names xtl as a link library, which has no library file.
  target_include_directories(${name} PRIVATE $<TARGET_PROPERTY:xsimd,INTERFACE_INCLUDE_DIRECTORIES>)
  # Linkable into shared libraries as well as programs.
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  if(MSVC)
    target_link_options(${name} INTERFACE "/INCLUDE:${anchor}")
  elseif(APPLE)
    target_link_options(${name} INTERFACE "LINKER:-u,_${anchor}")
  else()
    target_link_options(${name} INTERFACE "LINKER:-u,${anchor}")
  endif()
endfunction()

function(cogqat_simd_dispatch target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "ARCHS")
  if(NOT TARGET ${target})
    message(FATAL_ERROR "cogqat_simd_dispatch: '${target}' is not a target")
  endif()
  get_target_property(type ${target} TYPE)
  if(NOT type MATCHES "^(EXECUTABLE|SHARED_LIBRARY|MODULE_LIBRARY|STATIC_LIBRARY|OBJECT_LIBRARY)$")
    message(FATAL_ERROR "cogqat_simd_dispatch: '${target}' is a ${type}, which links nothing; call "
                        "cogqat_add_simd_kernels(<name>) and link <name> where the program is linked")
  endif()
  cogqat_add_simd_kernels(${target}_cogqat_simd_kernels ARCHS ${ARG_ARCHS})
  # As target_link_libraries(PRIVATE) does, without mixing with the target's own (keyword or plain) calls:
  # a STATIC or OBJECT target passes the kernels on to whatever links it ($<LINK_ONLY>), the forced
  # reference with them.
  set_property(TARGET ${target} APPEND PROPERTY LINK_LIBRARIES ${target}_cogqat_simd_kernels)
  if(type MATCHES "^(STATIC_LIBRARY|OBJECT_LIBRARY)$")
    set_property(TARGET ${target} APPEND PROPERTY INTERFACE_LINK_LIBRARIES $<LINK_ONLY:${target}_cogqat_simd_kernels>)
  endif()
endfunction()
