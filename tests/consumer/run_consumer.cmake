# tests/consumer/run_consumer.cmake: the driver of the consumer tests, run with cmake -P.
#
#   cmake -DMODE=install -DBUILD_DIR=<lowbit build> -DPREFIX=<dir> [-DCONFIG=<cfg>]
#         -DSOURCE_INCLUDE_DIR=<lowbit>/include -DINCLUDEDIR=include -DDATADIR=share -P run_consumer.cmake
#     Wipes PREFIX, runs cmake --install BUILD_DIR --prefix PREFIX, then checks the tree: every
#     header of SOURCE_INCLUDE_DIR is there, the three package files are in DATADIR/cmake/lowbit,
#     nothing else was installed, and the package files hold no path into the source or build tree.
#
#   cmake -DMODE=version_file -DVERSION_FILE=<prefix>/share/cmake/lowbit/lowbitConfigVersion.cmake
#         -P run_consumer.cmake
#     Asks the version file the questions find_package would (versions, ranges, 32-bit) and
#     checks its answers are those of SameMajorVersion + ARCH_INDEPENDENT.
#
#   cmake -DMODE=project|configure_fails -DSOURCE_DIR=<project> -DBINARY_DIR=<dir>
#         -DGENERATOR=... [-DGENERATOR_PLATFORM=... -DGENERATOR_TOOLSET=... -DMAKE_PROGRAM=...]
#         -DCXX_COMPILER=... [-DCXX_FLAGS=...] [-DCONFIG=<cfg>] -DCTEST=<ctest>
#         [-DEXPECT_ERROR=<regex>] -P run_consumer.cmake -- <-Dcache options of the project...>
#     Wipes BINARY_DIR and configures SOURCE_DIR there with the given toolchain. project: the
#     configure must succeed, then the project is built and its tests run (at least one).
#     configure_fails: the configure must fail with output matching every regex of
#     EXPECT_ERROR (regexes separated by '@@', matched with every whitespace run of the output
#     turned into one space, so CMake's line wrapping does not matter).
cmake_minimum_required(VERSION 3.16)

function(fail)
  string(CONCAT _text ${ARGV})
  message(FATAL_ERROR "${_text}")
endfunction()

# Everything after "--" goes to the project's configure step, one argument each.
set(_project_args)
set(_after_dashes OFF)
math(EXPR _last "${CMAKE_ARGC} - 1")
foreach(_i RANGE ${_last})
  if(_after_dashes)
    list(APPEND _project_args "${CMAKE_ARGV${_i}}")
  elseif(CMAKE_ARGV${_i} STREQUAL "--")
    set(_after_dashes ON)
  endif()
endforeach()

if(MODE STREQUAL "install")
  foreach(_var BUILD_DIR PREFIX SOURCE_INCLUDE_DIR INCLUDEDIR DATADIR)
    if(NOT ${_var})
      fail("run_consumer.cmake: MODE=install needs -D${_var}=...")
    endif()
  endforeach()
  file(REMOVE_RECURSE "${PREFIX}")
  set(_config_args)
  if(CONFIG)
    set(_config_args --config "${CONFIG}")
  endif()
  execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}" ${_config_args}
                  RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    fail("cmake --install ${BUILD_DIR} --prefix ${PREFIX} failed: ${_rc}")
  endif()

  set(_cmake_dir "${DATADIR}/cmake/lowbit")
  set(_expected "${_cmake_dir}/lowbitConfig.cmake" "${_cmake_dir}/lowbitConfigVersion.cmake"
                "${_cmake_dir}/lowbitRuntimeDispatch.cmake"
                "${_cmake_dir}/lowbitTargets.cmake")
  file(GLOB_RECURSE _headers RELATIVE "${SOURCE_INCLUDE_DIR}" "${SOURCE_INCLUDE_DIR}/*")
  if(NOT _headers)
    fail("no header found in ${SOURCE_INCLUDE_DIR}")
  endif()
  foreach(_header IN LISTS _headers)
    list(APPEND _expected "${INCLUDEDIR}/${_header}")
  endforeach()
  foreach(_file IN LISTS _expected)
    if(NOT EXISTS "${PREFIX}/${_file}")
      fail("not installed: ${PREFIX}/${_file}")
    endif()
  endforeach()

  # Nothing else: no test binary, no stray file. lowbitTargets-<config>.cmake is allowed
  # (CMake writes one per configuration for targets with files; INTERFACE targets have none).
  file(GLOB_RECURSE _installed RELATIVE "${PREFIX}" "${PREFIX}/*")
  foreach(_file IN LISTS _installed)
    list(FIND _expected "${_file}" _found)
    if(_found EQUAL -1 AND NOT _file MATCHES "^${_cmake_dir}/lowbitTargets-[^/]*\\.cmake$")
      fail("unexpected file installed: ${PREFIX}/${_file}")
    endif()
  endforeach()

  # The package must be relocatable: no absolute path into the source or build tree.
  get_filename_component(_source_root "${SOURCE_INCLUDE_DIR}" DIRECTORY)
  file(GLOB _package_files "${PREFIX}/${_cmake_dir}/*.cmake")
  foreach(_file IN LISTS _package_files)
    file(READ "${_file}" _text)
    foreach(_path "${_source_root}/include" "${_source_root}/cmake" "${BUILD_DIR}" "${PREFIX}")
      string(FIND "${_text}" "${_path}" _pos)
      if(NOT _pos EQUAL -1)
        fail("${_file} holds the absolute path ${_path}: the package is not relocatable")
      endif()
    endforeach()
  endforeach()
  list(LENGTH _installed _count)
  message(STATUS "install tree ${PREFIX}: ${_count} files, all expected")
  return()
endif()

if(MODE STREQUAL "version_file")
  # check_version(<request> <compatible?> [<sizeof void*>]): include the version file as
  # find_package(lowbit <request>) would, and compare its answer. <request> is a version
  # or a range "<min>...<max>" / "<min>...<<max>".
  # split_version(<prefix> <version>): <prefix>_MAJOR / _MINOR / _PATCH / _TWEAK as
  # find_package sets them (0 when absent), in the caller's scope.
  macro(split_version prefix version)
    string(REPLACE "." ";" _parts "${version}.0.0.0.0")
    list(GET _parts 0 ${prefix}_MAJOR)
    list(GET _parts 1 ${prefix}_MINOR)
    list(GET _parts 2 ${prefix}_PATCH)
    list(GET _parts 3 ${prefix}_TWEAK)
  endmacro()
  function(check_version request expected)
    set(CMAKE_SIZEOF_VOID_P 8)
    if(ARGC GREATER 2)
      set(CMAKE_SIZEOF_VOID_P ${ARGV2})
    endif()
    if(request MATCHES "^([0-9.]+)\\.\\.\\.(<?)([0-9.]+)$")
      set(PACKAGE_FIND_VERSION_RANGE "${request}")
      set(PACKAGE_FIND_VERSION_RANGE_MIN INCLUDE)
      set(PACKAGE_FIND_VERSION_MIN "${CMAKE_MATCH_1}")
      set(PACKAGE_FIND_VERSION_MAX "${CMAKE_MATCH_3}")
      if(CMAKE_MATCH_2)
        set(PACKAGE_FIND_VERSION_RANGE_MAX EXCLUDE)
      else()
        set(PACKAGE_FIND_VERSION_RANGE_MAX INCLUDE)
      endif()
      set(PACKAGE_FIND_VERSION "${PACKAGE_FIND_VERSION_MIN}")
      split_version(PACKAGE_FIND_VERSION_MIN "${PACKAGE_FIND_VERSION_MIN}")
      split_version(PACKAGE_FIND_VERSION_MAX "${PACKAGE_FIND_VERSION_MAX}")
    else()
      set(PACKAGE_FIND_VERSION "${request}")
    endif()
    split_version(PACKAGE_FIND_VERSION "${PACKAGE_FIND_VERSION}")
    string(REGEX MATCHALL "[0-9]+" _components "${PACKAGE_FIND_VERSION}")
    list(LENGTH _components PACKAGE_FIND_VERSION_COUNT)
    set(PACKAGE_FIND_NAME lowbit)
    include("${VERSION_FILE}")
    if(PACKAGE_VERSION_UNSUITABLE)
      set(PACKAGE_VERSION_COMPATIBLE FALSE)
    endif()
    if((PACKAGE_VERSION_COMPATIBLE AND NOT expected) OR (expected AND NOT PACKAGE_VERSION_COMPATIBLE))
      fail("lowbit ${PACKAGE_VERSION} for find_package(lowbit ${request}) with sizeof(void*) "
           "${CMAKE_SIZEOF_VOID_P}: compatible = '${PACKAGE_VERSION_COMPATIBLE}', expected ${expected}")
    endif()
    message(STATUS "find_package(lowbit ${request}), ${CMAKE_SIZEOF_VOID_P}-byte pointers: "
                   "compatible = ${expected}, as expected")
  endfunction()
  if(NOT EXISTS "${VERSION_FILE}")
    fail("run_consumer.cmake: MODE=version_file needs -DVERSION_FILE=<lowbitConfigVersion.cmake>")
  endif()
  # lowbit is 0.1.x: SameMajorVersion accepts requests for 0.0 .. 0.1.x, refuses newer
  # ones and other majors, and refuses a range reaching into 1.x (AnyNewerVersion would
  # accept 0.1...1.0; SameMinorVersion / ExactVersion would refuse 0.0).
  check_version(0.1 TRUE)
  check_version(0.1.0 TRUE)
  check_version(0 TRUE)
  check_version(0.0.1 TRUE)
  check_version(0.1.1 FALSE)
  check_version(0.2 FALSE)
  check_version(1.0 FALSE)
  check_version(0.1...<1.0 TRUE)
  check_version(0.1...1.0 FALSE)
  check_version(0.1 TRUE 4)  # ARCH_INDEPENDENT: a 32-bit consumer can use the headers
  return()
endif()

if(NOT MODE STREQUAL "project" AND NOT MODE STREQUAL "configure_fails")
  fail("run_consumer.cmake: MODE must be install, version_file, project or configure_fails (got '${MODE}')")
endif()
foreach(_var SOURCE_DIR BINARY_DIR GENERATOR CXX_COMPILER CTEST)
  if(NOT ${_var})
    fail("run_consumer.cmake: MODE=${MODE} needs -D${_var}=...")
  endif()
endforeach()

file(REMOVE_RECURSE "${BINARY_DIR}")  # a fresh configure every run: no stale cache
file(MAKE_DIRECTORY "${BINARY_DIR}")
set(_configure "${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${BINARY_DIR}" -G "${GENERATOR}"
               "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
if(GENERATOR_PLATFORM)
  list(APPEND _configure -A "${GENERATOR_PLATFORM}")
endif()
if(GENERATOR_TOOLSET)
  list(APPEND _configure -T "${GENERATOR_TOOLSET}")
endif()
if(MAKE_PROGRAM)
  list(APPEND _configure "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
set(_config_args)
if(CONFIG)
  list(APPEND _configure "-DCMAKE_BUILD_TYPE=${CONFIG}")
  set(_config_args --config "${CONFIG}")
endif()
list(APPEND _configure ${_project_args})

message(STATUS "configure: ${_configure}")
execute_process(COMMAND ${_configure} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
if(MODE STREQUAL "configure_fails")
  if(_rc EQUAL 0)
    message("${_out}${_err}")
    fail("configuring ${SOURCE_DIR} succeeded, but it must fail")
  endif()
  string(REGEX REPLACE "[ \t\r\n]+" " " _flat "${_out}${_err}")
  string(REPLACE "@@" ";" _regexes "${EXPECT_ERROR}")
  foreach(_regex IN LISTS _regexes)
    if(NOT _flat MATCHES "${_regex}")
      message("${_out}${_err}")
      fail("configuring ${SOURCE_DIR} failed, but not with a message matching: ${_regex}")
    endif()
  endforeach()
  message(STATUS "configure failed as expected: ${_err}")
  return()
endif()
message("${_out}${_err}")
if(NOT _rc EQUAL 0)
  fail("configuring ${SOURCE_DIR} failed: ${_rc}")
endif()

execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BINARY_DIR}" ${_config_args} RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  fail("building ${SOURCE_DIR} failed: ${_rc}")
endif()

set(_ctest_config)
if(CONFIG)
  set(_ctest_config -C "${CONFIG}")
endif()
execute_process(COMMAND "${CTEST}" ${_ctest_config} --output-on-failure --no-tests=error
                WORKING_DIRECTORY "${BINARY_DIR}" RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  fail("the tests of ${SOURCE_DIR} failed: ${_rc}")
endif()
