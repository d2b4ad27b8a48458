// Every kernel loop compiled for xsimd::avx512bw (flags set in CMakeLists.txt).
#include <lowbit/kernels/dispatch.hpp>

LOWBIT_KERNELS_INSTANTIATE(xsimd::avx512bw)
