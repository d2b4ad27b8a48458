// lowbit/kernels.hpp: every SIMD kernel (needs xsimd for SIMD; falls back to lowbit::ref).
#ifndef LOWBIT_KERNELS_HPP
#define LOWBIT_KERNELS_HPP

#include "kernels/arch.hpp"
#include "kernels/cpu.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/fake_quantize.hpp"
#include "kernels/gemm.hpp"
#include "kernels/int4.hpp"
#include "kernels/per_channel.hpp"
#include "kernels/quantize.hpp"
#include "kernels/reduce.hpp"
#include "kernels/requantize.hpp"
#include "kernels/gemm_int4.hpp"

#endif  // LOWBIT_KERNELS_HPP
