# cogqat_compile_check(TARGET): a twin of an executable that only compiles its sources through the front end
# (-fsyntax-only: every template instantiated, every front-end error and warning reported, no code generated).
# The test command builds the benchmarks and examples this way, about a tenth of an optimized build's CPU,
# so that a change that breaks them fails the tests; building the targets themselves compiles them in full.
# The twins join the target cogqat_compile_checks. GCC and Clang only (elsewhere nothing is added).
function(cogqat_compile_check target)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    return()
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
  _cogqat_compile_check_add(${check})
endfunction()

function(_cogqat_compile_check_add check)
  if(NOT TARGET cogqat_compile_checks)
    add_custom_target(cogqat_compile_checks)
  endif()
  set_target_properties(${check} PROPERTIES CXX_COMPILER_LAUNCHER ${PROJECT_SOURCE_DIR}/cmake/cogqat_syntax_only.sh)
  add_dependencies(cogqat_compile_checks ${check})
endfunction()

# cogqat_compile_check_directory(): the compile check of every executable the calling directory defined, so
# that a program added later is checked without being listed. Their C++ sources compile as one unit
# (cmake/cogqatCompileCheckUnit.cmake writes it at build time: each source inside a namespace of its own, under
# its own target's definitions), which parses the headers they share once instead of once per source. A target
# with compile options or sources of its own kind, or whose property COGQAT_COMPILE_CHECK_ALONE is true (a
# program that must declare at file scope, e.g. replace the global operator new), is checked alone by
# cogqat_compile_check(). The one check the unit cannot make: a source that forgets an include an earlier
# source in the unit made.
function(cogqat_compile_check_directory)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    return()
  endif()
  get_property(targets DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(directory_definitions DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR} PROPERTY COMPILE_DEFINITIONS)
  get_property(directory_options DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR} PROPERTY COMPILE_OPTIONS)
  set(manifest "")
  set(count 0)
  set(link_libraries "")
  set(include_directories "")
  foreach(target IN LISTS targets)
    get_target_property(type ${target} TYPE)
    if(NOT type STREQUAL "EXECUTABLE")
      continue()
    endif()
    get_target_property(sources ${target} SOURCES)
    get_target_property(options ${target} COMPILE_OPTIONS)
    if(NOT options)
      set(options "")
    endif()
    get_target_property(alone ${target} COGQAT_COMPILE_CHECK_ALONE)
    set(joinable TRUE)
    if(alone OR NOT "${options}" STREQUAL "${directory_options}")
      set(joinable FALSE)
    endif()
    foreach(source IN LISTS sources)
      if(NOT source MATCHES "\\.(cpp|cc|cxx)$")
        set(joinable FALSE)
      endif()
    endforeach()
    if(NOT joinable)
      cogqat_compile_check(${target})
      continue()
    endif()

    get_target_property(source_dir ${target} SOURCE_DIR)
    get_target_property(definitions ${target} COMPILE_DEFINITIONS)
    if(NOT definitions)
      set(definitions "")
    endif()
    # The unit's own (the directory's) hold for every source already.
    if(directory_definitions)
      list(REMOVE_ITEM definitions ${directory_definitions})
    endif()
    set(definition_arguments "")
    foreach(definition IN LISTS definitions)
      string(APPEND definition_arguments " [==[${definition}]==]")
    endforeach()
    foreach(source IN LISTS sources)
      cmake_path(ABSOLUTE_PATH source BASE_DIRECTORY ${source_dir})
      string(APPEND manifest "set(cogqat_check_source_${count} [==[${source}]==])\n"
                             "set(cogqat_check_program_${count} ${target})\n"
                             "set(cogqat_check_definitions_${count}${definition_arguments})\n")
      list(APPEND unit_sources ${source})
      math(EXPR count "${count} + 1")
    endforeach()
    get_target_property(libraries ${target} LINK_LIBRARIES)
    if(libraries)
      list(APPEND link_libraries ${libraries})
    endif()
    get_target_property(directories ${target} INCLUDE_DIRECTORIES)
    if(directories)
      list(APPEND include_directories ${directories})
    endif()
  endforeach()
  if(count EQUAL 0)
    return()
  endif()

  cmake_path(GET CMAKE_CURRENT_SOURCE_DIR FILENAME directory_name)
  set(check cogqat_${directory_name}_compile_check)
  set(manifest_file ${CMAKE_CURRENT_BINARY_DIR}/${check}_manifest.cmake)
  set(unit ${CMAKE_CURRENT_BINARY_DIR}/${check}.cpp)
  # file(GENERATE) rewrites the manifest only when it changes, and evaluates generator expressions.
  file(GENERATE OUTPUT ${manifest_file} CONTENT "set(cogqat_check_count ${count})\n${manifest}")
  add_custom_command(OUTPUT ${unit}
    COMMAND ${CMAKE_COMMAND} -DMANIFEST=${manifest_file} -DOUTPUT=${unit} -P ${PROJECT_SOURCE_DIR}/cmake/cogqatCompileCheckUnit.cmake
    DEPENDS ${manifest_file} ${unit_sources} ${PROJECT_SOURCE_DIR}/cmake/cogqatCompileCheckUnit.cmake
    COMMENT "Writing the compile-check unit of ${directory_name}/ (${count} sources)"
    VERBATIM)
  add_library(${check} OBJECT EXCLUDE_FROM_ALL ${unit})
  list(REMOVE_DUPLICATES link_libraries)
  list(REMOVE_DUPLICATES include_directories)
  target_link_libraries(${check} PRIVATE ${link_libraries})
  if(include_directories)
    set_property(TARGET ${check} APPEND PROPERTY INCLUDE_DIRECTORIES ${include_directories})
  endif()
  _cogqat_compile_check_add(${check})
endfunction()
