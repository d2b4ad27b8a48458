// lowbit/lowbit.hpp: the whole freestanding core in one include. Adapters
// (lowbit/xtensor.hpp, lowbit/format.hpp) are included separately, as they need xtensor / fmt;
// so are the SIMD kernels (lowbit/kernels.hpp, xsimd) and the observers
// (lowbit/observers/all.hpp), which sit above the kernels (core <- kernels <- observers).
#ifndef LOWBIT_LOWBIT_HPP
#define LOWBIT_LOWBIT_HPP

#include "config.hpp"
#include "core/fake_quantize.hpp"
#include "core/fixed_point.hpp"
#include "core/format.hpp"
#include "core/gemm.hpp"
#include "core/int4.hpp"
#include "core/layout.hpp"
#include "core/qparams.hpp"
#include "core/quantize.hpp"
#include "core/reduce.hpp"
#include "core/requantize.hpp"
#include "core/rounding.hpp"
#include "core/scheme.hpp"
#include "core/span.hpp"
#include "core/status.hpp"
#include "core/strided.hpp"
#include "core/f16.hpp"
#include "core/gemm_int4.hpp"

#endif  // LOWBIT_LOWBIT_HPP
