// lowbit/observers/all.hpp: every observer in one include (min/max and moving average, per
// channel, histogram, percentile, MSE, entropy, fixed qparams, diagnostics, state). Observers
// sit above the kernels (core <- kernels <- observers): they reduce batches with
// lowbit/kernels/reduce.hpp, SIMD with xsimd, the lowbit::ref loops without it. No heap, no
// exceptions required. (lowbit/calibrate.hpp, the hosted calibration driver, is separate.)
#ifndef LOWBIT_OBSERVERS_ALL_HPP
#define LOWBIT_OBSERVERS_ALL_HPP

#include "calibration_methods.hpp"
#include "diagnostics.hpp"
#include "entropy.hpp"
#include "fixed_qparams.hpp"
#include "histogram.hpp"
#include "minmax.hpp"
#include "mse.hpp"
#include "observer.hpp"
#include "per_channel_minmax.hpp"
#include "percentile.hpp"
#include "state.hpp"

#endif  // LOWBIT_OBSERVERS_ALL_HPP
