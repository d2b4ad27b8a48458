# cmake -DNM=<arm-none-eabi-nm> -DELF=<image> -DSYMBOLS="malloc;free;..." -P check_no_heap.cmake
# Fails if the linked image has any heap or exception-allocation symbol, defined or undefined:
# one of SYMBOLS (the --wrap list), its __wrap_ / __real_ name, or any operator new / delete
# (mangled _Znw*, _Zna*, _Zdl*, _Zda*). The --wrap flags already make a reference fail the
# link; this catches an allocator that came in without a reference from another object file.
cmake_minimum_required(VERSION 3.16)
execute_process(COMMAND ${NM} ${ELF} OUTPUT_VARIABLE out RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "no-heap check: ${NM} ${ELF} failed: ${err}")
endif()
string(REPLACE "\n" ";" lines "${out}")
set(bad "")
foreach(line IN LISTS lines)
  if(NOT line MATCHES "([^ ]+)$")
    continue()
  endif()
  set(sym "${CMAKE_MATCH_1}")
  string(REGEX REPLACE "^__(wrap|real)_" "" base "${sym}")
  if(base IN_LIST SYMBOLS OR base MATCHES "^_Z(nw|na|dl|da)")
    list(APPEND bad "${sym}")
  endif()
endforeach()
get_filename_component(name ${ELF} NAME)
if(bad)
  message(FATAL_ERROR "no-heap check: ${name} contains heap / exception allocation symbols: ${bad}")
endif()
message(STATUS "no-heap check: ${name} has no allocator symbol")
