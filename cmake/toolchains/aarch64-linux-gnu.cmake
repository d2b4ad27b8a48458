# aarch64-linux-gnu.cmake: 64-bit ARM Linux (Cortex-A, Neoverse / Graviton, Apple M under
# Linux) with Debian's g++-aarch64-linux-gnu; tests run through qemu-user.
#
#   cmake -S . -B build/aarch64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
#   cmake --build build/aarch64 && ctest --test-dir build/aarch64            # QEMU_CPU=max
#   QEMU_CPU=cortex-a53 ctest --test-dir build/aarch64   # ARMv8.0: NEON, no dot product
#
# The code is compiled for the ARMv8.0 baseline (NEON is part of it); the int8 dot-product
# instructions (ARMv8.2 +dotprod, SDOT / UDOT) are used by the GEMM only where the CPU reports
# them at run time, so one build covers both kinds of core. ctest starts every test program
# through CMAKE_CROSSCOMPILING_EMULATOR (qemu-aarch64 with the cross sysroot); QEMU_CPU in the
# environment picks the emulated core. On a real ARM board, build natively without this file.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

find_program(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
find_program(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
if(NOT CMAKE_CXX_COMPILER)
  message(FATAL_ERROR "aarch64-linux-gnu-g++ not found (apt-get install g++-aarch64-linux-gnu)")
endif()

# Header-only dependencies (xsimd, Catch2's header) come from the host's /usr/include, which
# the Debian cross compiler searches last, after the aarch64 libc and libstdc++ headers.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

find_program(LOWBIT_QEMU_AARCH64 qemu-aarch64)
if(LOWBIT_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${LOWBIT_QEMU_AARCH64} -L /usr/aarch64-linux-gnu)
endif()
