// Every kernel loop compiled for xsimd::sse4_1 (flags set in CMakeLists.txt).
#include <lowbit/kernels/dispatch.hpp>

LOWBIT_KERNELS_INSTANTIATE(xsimd::sse4_1)
