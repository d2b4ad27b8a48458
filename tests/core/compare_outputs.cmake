# cmake -DA=<exe> -DB=<exe> [-DEMU=<emulator;args>] [-DEMU_B=...] [-DARGS=<args>]
#       -P compare_outputs.cmake
# Runs both programs (with ARGS), fails unless they print the same thing. EMU (a cross
# build's CMAKE_CROSSCOMPILING_EMULATOR, e.g. qemu-aarch64) starts both when set; EMU_B
# starts B only (a native program against a cross-built one).
cmake_minimum_required(VERSION 3.16)
if(NOT DEFINED EMU_B)
  set(EMU_B ${EMU})
endif()
execute_process(COMMAND ${EMU} ${A} ${ARGS} OUTPUT_VARIABLE out_a RESULT_VARIABLE rc_a)
execute_process(COMMAND ${EMU_B} ${B} ${ARGS} OUTPUT_VARIABLE out_b RESULT_VARIABLE rc_b)
if(NOT rc_a EQUAL 0 OR NOT rc_b EQUAL 0)
  message(FATAL_ERROR "probe failed: ${rc_a} ${rc_b}")
endif()
if(NOT out_a STREQUAL out_b)
  message(FATAL_ERROR "results depend on compiler flags:\n  ${A}: ${out_a}  ${B}: ${out_b}")
endif()
message(STATUS "same results: ${out_a}")
