// lowbit/ptq/fold.hpp: batch-norm folding as the first PTQ step, under lowbit::ptq, for the
// two weight layouts the PTQ algorithms use. The arithmetic is quant/batch_norm.hpp's (bit
// for bit torch.nn.utils.fusion.fuse_linear_bn_weights / fuse_conv_bn_weights); these are
// thin wrappers that take the layer's sizes instead of a shape, so a PTQ pipeline reads
//   fold (this file) -> equalize.hpp (CLE, high-bias absorption) -> quantize the weights ->
//   bias_correction.hpp.
// Keep the BN's weight (gamma) and bias (beta) after folding: they are the pre-activation
// statistics (mean beta, standard deviation |gamma|) that high-bias absorption and analytic
// bias correction read.
#ifndef LOWBIT_PTQ_FOLD_HPP
#define LOWBIT_PTQ_FOLD_HPP

#include <cstddef>

#include "../core/span.hpp"
#include "../core/status.hpp"
#include "../quant/batch_norm.hpp"

namespace lowbit {
namespace ptq {

using lowbit::batch_norm_params;

/// Folds a BatchNorm1d that follows a linear layer into it: w [out][in] row-major (torch's
/// nn.Linear weight), b [out] or empty (no bias), into w_out [out * in] and b_out [out]
/// (w_out may be w, b_out may be b: in place). Same as lowbit::fold_batch_norm_linear (and
/// torch's fuse_linear_bn_weights), including running_var + eps == 0 giving Inf / NaN as
/// torch does. Errors: bn's sizes != out, w / w_out != out * in, b not 0 or out, b_out != out,
/// eps negative or not finite.
inline status fold_batch_norm_linear(const batch_norm_params& bn, std::size_t out, std::size_t in,
                                     span<const float> w, span<const float> b, span<float> w_out, span<float> b_out) {
    return lowbit::fold_batch_norm_linear(bn, shape{out, in}, w, b, w_out, b_out);
}

/// Folds a BatchNorm{1,2,3}d that follows a (non-transposed, any groups) convolution into it:
/// w [out][in / groups][kernel] row-major with `kernel` the product of the spatial kernel
/// sizes (kh * kw for a 2-d conv), b [out] or empty. Same arithmetic as
/// lowbit::fold_batch_norm_conv (torch's fuse_conv_bn_weights, whose bias grouping differs
/// from the linear one's). For transposed convolutions use lowbit::fold_batch_norm_conv with
/// transpose = true. Errors: as fold_batch_norm_linear with out * in_per_group * kernel
/// weights.
inline status fold_batch_norm_conv(const batch_norm_params& bn, std::size_t out, std::size_t in_per_group,
                                   std::size_t kernel, span<const float> w, span<const float> b, span<float> w_out,
                                   span<float> b_out) {
    return lowbit::fold_batch_norm_conv(bn, shape{out, in_per_group, kernel}, w, b, w_out, b_out);
}

}  // namespace ptq
}  // namespace lowbit

#endif  // LOWBIT_PTQ_FOLD_HPP
