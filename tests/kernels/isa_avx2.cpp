// Every kernel loop compiled for xsimd::fma3<xsimd::avx2> (flags set in CMakeLists.txt).
#include <lowbit/kernels/dispatch.hpp>

LOWBIT_KERNELS_INSTANTIATE(xsimd::fma3<xsimd::avx2>)
