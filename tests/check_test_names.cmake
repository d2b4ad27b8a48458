# Fails if a Catch2 test name would break catch_discover_tests: a name with an unbalanced '['
# or ']' (or a ';') makes CMake's discovery merge it with the following names into one ctest
# entry whose filter matches nothing, and Catch then exits 0: those tests silently never run.
# Usage: cmake -DBIN=<test binary> -P check_test_names.cmake
execute_process(COMMAND "${BIN}" --list-test-names-only OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 AND NOT rc GREATER 0)
  message(FATAL_ERROR "could not list the tests of ${BIN}")
endif()
string(REPLACE ";" "<semicolon>" out "${out}")
string(REPLACE "\n" ";" names "${out}")
set(bad 0)
foreach(name IN LISTS names)
  string(REGEX REPLACE "[^[]" "" opens "${name}")
  string(REGEX REPLACE "[^]]" "" closes "${name}")
  string(LENGTH "${opens}" n_open)
  string(LENGTH "${closes}" n_close)
  if(NOT n_open EQUAL n_close OR name MATCHES "<semicolon>")
    message(SEND_ERROR "test name breaks ctest discovery (unbalanced [ ] or ;): '${name}'")
    set(bad 1)
  endif()
endforeach()
if(bad)
  message(FATAL_ERROR "rename the test(s) above")
endif()
