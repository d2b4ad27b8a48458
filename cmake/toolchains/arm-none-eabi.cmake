# arm-none-eabi.cmake: bare-metal Cortex-M with Debian's gcc-arm-none-eabi and
# libstdc++-arm-none-eabi-newlib.
#
#   cmake -S examples/firmware/cortex_m -B build/m4 -G Ninja \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm-none-eabi.cmake -DLOWBIT_ARM_CPU=cortex-m4
#
# LOWBIT_ARM_CPU (cache variable) picks the core and its floating-point ABI:
#   cortex-m4   -mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16   (ARMv7E-M, single-precision FPU)
#   cortex-m55  -mcpu=cortex-m55 -mfloat-abi=hard                    (ARMv8.1-M, MVE / Helium, FPU)
# Both compile Thumb-2 code; executables link with newlib's nosys specs (no OS: system calls
# are stubs) and the project's own startup code and linker script.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(LOWBIT_ARM_CPU "cortex-m4" CACHE STRING "Cortex-M core to build for: cortex-m4 or cortex-m55")
set_property(CACHE LOWBIT_ARM_CPU PROPERTY STRINGS cortex-m4 cortex-m55)
# try_compile projects see the same choice
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES LOWBIT_ARM_CPU)

if(LOWBIT_ARM_CPU STREQUAL "cortex-m4")
  set(LOWBIT_ARM_FLAGS "-mthumb -mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16")
elseif(LOWBIT_ARM_CPU STREQUAL "cortex-m55")
  set(LOWBIT_ARM_FLAGS "-mthumb -mcpu=cortex-m55 -mfloat-abi=hard")
else()
  message(FATAL_ERROR "arm-none-eabi.cmake: LOWBIT_ARM_CPU = '${LOWBIT_ARM_CPU}': must be cortex-m4 or cortex-m55")
endif()

find_program(CMAKE_C_COMPILER arm-none-eabi-gcc)
find_program(CMAKE_CXX_COMPILER arm-none-eabi-g++)
if(NOT CMAKE_CXX_COMPILER)
  message(FATAL_ERROR "arm-none-eabi-g++ not found (apt-get install gcc-arm-none-eabi libstdc++-arm-none-eabi-newlib)")
endif()
find_program(CMAKE_SIZE arm-none-eabi-size)
find_program(CMAKE_NM arm-none-eabi-nm)

set(CMAKE_C_FLAGS_INIT "${LOWBIT_ARM_FLAGS}")
set(CMAKE_CXX_FLAGS_INIT "${LOWBIT_ARM_FLAGS}")
set(CMAKE_ASM_FLAGS_INIT "${LOWBIT_ARM_FLAGS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "--specs=nosys.specs")
# no OS to run a test program on: compiler checks build a static library instead
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
