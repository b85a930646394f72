# cogqat_compile_check(TARGET): a twin of an executable that only compiles its sources through the front end
# (-fsyntax-only: every template instantiated, every front-end error and warning reported, no code generated).
# The test command builds the benchmarks and examples this way, about a tenth of an optimized build's CPU,
# so that a change that breaks them fails the tests; building the targets themselves compiles them in full.
# The twins join the target cogqat_compile_checks. GCC and Clang only (elsewhere nothing is added).
function(cogqat_compile_check target)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    return()
  endif()
  if(NOT TARGET cogqat_compile_checks)
    add_custom_target(cogqat_compile_checks)
  endif()
  get_target_property(sources ${target} SOURCES)
  get_target_property(source_dir ${target} SOURCE_DIR)
  set(check ${target}_compile_check)
  add_library(${check} OBJECT EXCLUDE_FROM_ALL)
  foreach(source IN LISTS sources)
    cmake_path(ABSOLUTE_PATH source BASE_DIRECTORY ${source_dir})
    target_sources(${check} PRIVATE ${source})
  endforeach()
  # Usage requirements (include directories, definitions, options) come through the link libraries; an
  # OBJECT library links nothing itself.
  foreach(property LINK_LIBRARIES COMPILE_DEFINITIONS COMPILE_OPTIONS INCLUDE_DIRECTORIES)
    get_target_property(values ${target} ${property})
    if(values)
      set_property(TARGET ${check} PROPERTY ${property} ${values})
    endif()
  endforeach()
  set_target_properties(${check} PROPERTIES CXX_COMPILER_LAUNCHER ${PROJECT_SOURCE_DIR}/cmake/cogqat_syntax_only.sh)
  add_dependencies(cogqat_compile_checks ${check})
endfunction()

# cogqat_compile_check_directory(): cogqat_compile_check() for every executable the calling directory defined,
# so that a program added later is checked without being listed.
function(cogqat_compile_check_directory)
  get_property(targets DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target IN LISTS targets)
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "EXECUTABLE")
      cogqat_compile_check(${target})
    endif()
  endforeach()
endfunction()
