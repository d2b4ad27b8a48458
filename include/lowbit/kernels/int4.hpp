// lowbit/kernels/int4.hpp: (being written)
#ifndef LOWBIT_KERNELS_INT4_HPP
#define LOWBIT_KERNELS_INT4_HPP

#include "arch.hpp"
#include "simd.hpp"

/// Explicit instantiations (X empty) or declarations (X = extern) of this header's loops for
/// architecture A; used by LOWBIT_KERNELS_INSTANTIATE / LOWBIT_KERNELS_EXTERN (dispatch.hpp).
#define LOWBIT_DETAIL_INT4_LOOPS(X, A)

#endif  // LOWBIT_KERNELS_INT4_HPP
