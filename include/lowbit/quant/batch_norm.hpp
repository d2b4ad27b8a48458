// lowbit/quant/batch_norm.hpp: batch-norm folding for QAT and inference, on plain arrays so
// any framework's conv / linear layer can use it.
//
// Inference (after training): fold the BN statistics into the layer, as
// torch.nn.utils.fusion.fuse_conv_bn_weights / fuse_linear_bn_weights, bit for bit (float32,
// torch's operation order, no fused multiply-add whatever the compiler flags):
//   rsqrt = 1 / sqrt(running_var + eps)
//   conv:   w' = w * (gamma * rsqrt)   (per output channel)     b' = ((b - mean) * rsqrt) * gamma + beta
//   linear: s = gamma * rsqrt;  w' = w * s                      b' = (b - mean) * s + beta
// (the bias products are grouped differently in torch's two functions; lowbit follows each).
//
// Training (simulated folding, torch.nn.intrinsic.qat ConvBn{1,2,3}d._forward_approximate).
// One training step of a conv (or linear) + BN layer with weight fake-quant:
//   1. sf = batch_norm_scale_factor(gamma, running_var, eps)   sf = gamma / sqrt(running_var + eps)
//   2. scale_weight(sf, w, w_scaled)                            w_scaled = w * sf (per out channel)
//   3. weight fake-quant: fq_w.forward(shape, w_scaled, w_q, mask)   (quant/fake_quantize.hpp)
//   4. conv = your conv(x, w_q) WITHOUT bias
//   5. rescale_conv_output(sf, bias, conv, conv_orig)           conv_orig = conv / sf + bias (per channel, dim 1)
//   6. BN on conv_orig: in training mode your framework's BN normalizes with the batch
//      statistics, and update_batch_norm_stats(conv_orig, momentum, running_mean,
//      running_var) moves the running statistics as torch does; after freeze_bn_stats (torch's
//      switch: BN in eval mode) skip the update (pass frozen = true) and normalize with the
//      running statistics. Backward goes through 6, 5, 4, the STE of 3, and 2 (d w = d w_scaled * sf).
//   After training, fold_batch_norm_conv / _linear gives the inference weights; fake-quant
//   them with the frozen weight qparams.
// Step 1 reads the running variance *before* this step's update (torch computes the scale
// factor first), so call update_batch_norm_stats after it.
//
// Running statistics, as torch 1.13's CPU BatchNorm in training mode (nn.BatchNorm*d,
// momentum m, set_num_threads(1)), bit for bit. x is [N, C, *] (contiguous):
//   [N, C, S] with S > 1: sum in double, mean = f32(sum / count); var_sum = f32(sum in double
//     of f32((x - mean)^2));
//   [N, C] (S == 1, torch's channels-last kernel): sum in float, mean = f32(sum / f32(count));
//     var_sum = fma(d, d, var_sum) in float, d = f32(x - mean) (torch's AVX2 build fuses);
//   running_mean = f32(f32(m * mean) + f32(f32(1 - m) * running_mean))
//   running_var  = f32(m * f32(var_sum / f32(count - 1)) + f32(f32(1 - m) * running_var))
//     (the last sum in double, the product exact there), i.e. the unbiased batch variance.
// torch with several threads splits the [N, C] reduction per thread and gives other bits.
#ifndef LOWBIT_QUANT_BATCH_NORM_HPP
#define LOWBIT_QUANT_BATCH_NORM_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "../core/span.hpp"
#include "../core/status.hpp"

namespace lowbit {

/// A BatchNorm layer's parameters and statistics, C entries each. weight (gamma) empty means
/// ones and bias (beta) empty means zeros (torch's affine = False).
struct batch_norm_params {
    span<const float> running_mean;
    span<const float> running_var;
    span<const float> weight;
    span<const float> bias;
    float eps = 1e-5f;  ///< as torch: the float32 value of the module's eps
};

namespace detail {

/// v, with the rounding of the operation that produced it forced (no fused multiply-add
/// across this point, whatever -ffp-contract says).
inline float bn_rounded(float v) noexcept {
#if defined(__GNUC__) || defined(__clang__)
    __asm__("" : "+m"(v));
#else
    volatile float t = v;
    v = t;
#endif
    return v;
}

inline status bn_check(const batch_norm_params& bn, std::size_t C) {
    LOWBIT_DETAIL_CHECK(bn.running_mean.size() == C, errc::size_mismatch, "running_mean.size()",
                        bn.running_mean.size(), "must equal the channel count");
    LOWBIT_DETAIL_CHECK(bn.running_var.size() == C, errc::size_mismatch, "running_var.size()", bn.running_var.size(),
                        "must equal the channel count");
    LOWBIT_DETAIL_CHECK(bn.weight.empty() || bn.weight.size() == C, errc::size_mismatch, "weight.size()",
                        bn.weight.size(), "must be 0 (ones) or the channel count");
    LOWBIT_DETAIL_CHECK(bn.bias.empty() || bn.bias.size() == C, errc::size_mismatch, "bias.size()", bn.bias.size(),
                        "must be 0 (zeros) or the channel count");
    LOWBIT_DETAIL_CHECK(bn.eps >= 0.0f && bn.eps - bn.eps == 0.0f, errc::invalid_argument, "eps", bn.eps,
                        "must be finite and >= 0");
    return {};
}

/// numel of shape, channel count along `axis`, inner size (elements per channel per outer index).
inline status bn_layout(const shape& shp, std::size_t axis, std::size_t& numel, std::size_t& C, std::size_t& inner) {
    LOWBIT_DETAIL_CHECK(shp.valid_rank(), errc::out_of_range, "shape.rank()", shp.rank(), "must be <= 8");
    LOWBIT_DETAIL_CHECK(axis < shp.rank(), errc::out_of_range, "shape.rank()", shp.rank(),
                        "too small for the channel axis (conv / linear weights need rank >= 2 for transpose)");
    LOWBIT_DETAIL_CHECK(shp.product(0, shp.rank(), numel), errc::overflow, "shape", shp.rank(),
                        "the element count overflows size_t");
    C = shp[axis];
    (void)shp.product(axis + 1, shp.rank(), inner);
    return {};
}

// Mean and var_sum of channel ch of x [N, C, inner] (file comment: two torch kernels).
inline void channel_stats(const float* x, std::size_t N, std::size_t C, std::size_t inner, std::size_t ch, float& mean,
                          float& var_sum) noexcept {
    const std::size_t count = N * inner;
    if (inner == 1) {  // torch's channels-last kernel: float sums, fused multiply-add for the variance
        float s = 0.0f;
        for (std::size_t n = 0; n < N; ++n) s = bn_rounded(s + x[n * C + ch]);
        const float m = s / static_cast<float>(count);
        float v = 0.0f;
        for (std::size_t n = 0; n < N; ++n) {
            const float d = bn_rounded(x[n * C + ch] - m);
            v = std::fma(d, d, v);
        }
        mean = m;
        var_sum = v;
    } else {  // torch's contiguous kernel: double sums
        double s = 0.0;
        for (std::size_t n = 0; n < N; ++n)
            for (std::size_t i = 0; i < inner; ++i) s += static_cast<double>(x[(n * C + ch) * inner + i]);
        const float m = static_cast<float>(s / static_cast<double>(count));
        double v = 0.0;
        for (std::size_t n = 0; n < N; ++n)
            for (std::size_t i = 0; i < inner; ++i) {
                const float d = x[(n * C + ch) * inner + i] - m;
                v += static_cast<double>(bn_rounded(d * d));
            }
        mean = m;
        var_sum = static_cast<float>(v);
    }
}

// Both folds: w' = w * wscale[c]; bias by `conv_order`.
inline status fold(const batch_norm_params& bn, const shape& w_shape, span<const float> w, span<const float> b,
                   span<float> w_out, span<float> b_out, std::size_t axis, bool conv_order) {
    std::size_t numel = 0, C = 0, inner = 0;
    LOWBIT_DETAIL_TRY(bn_layout(w_shape, axis, numel, C, inner));
    LOWBIT_DETAIL_TRY(bn_check(bn, C));
    LOWBIT_DETAIL_CHECK(w.size() == numel, errc::size_mismatch, "w.size()", w.size(), "must equal w_shape's numel");
    LOWBIT_DETAIL_CHECK(w_out.size() == numel, errc::size_mismatch, "w_out.size()", w_out.size(),
                        "must equal w_shape's numel");
    LOWBIT_DETAIL_CHECK(b.empty() || b.size() == C, errc::size_mismatch, "b.size()", b.size(),
                        "must be 0 (no bias) or the channel count");
    LOWBIT_DETAIL_CHECK(b_out.size() == C, errc::size_mismatch, "b_out.size()", b_out.size(),
                        "must equal the channel count");
    for (std::size_t c = 0; c < C; ++c) {
        const float rsqrt = bn_rounded(1.0f / std::sqrt(bn.running_var[c] + bn.eps));
        const float gamma = bn.weight.empty() ? 1.0f : bn.weight[c];
        const float beta = bn.bias.empty() ? 0.0f : bn.bias[c];
        const float bc = b.empty() ? 0.0f : b[c];
        const float wscale = bn_rounded(gamma * rsqrt);
        const float centred = bn_rounded(bc - bn.running_mean[c]);
        const float t = conv_order ? bn_rounded(bn_rounded(centred * rsqrt) * gamma) : bn_rounded(centred * wscale);
        b_out[c] = t + beta;  // + 0.0f without beta, as torch adds zeros (-0.0 becomes +0.0)
        // weights of channel c: (outer, c, inner) blocks
        const std::size_t outer = numel / (C * inner == 0 ? 1 : C * inner);
        for (std::size_t o = 0; o < outer; ++o) {
            const std::size_t base = (o * C + c) * inner;
            for (std::size_t i = 0; i < inner; ++i) w_out[base + i] = w[base + i] * wscale;
        }
    }
    return {};
}

}  // namespace detail

/// Folds BN into a conv weight [C_out, C_in / groups, k...] (or, with transpose, a transposed
/// conv's [C_in, C_out / groups, k...]: channel axis 1) and its bias (empty: none, torch's
/// zeros), as torch.nn.utils.fusion.fuse_conv_bn_weights (file comment). w_out may be w;
/// b_out (C entries) may be b. running_var + eps == 0 gives Inf / NaN as torch does.
/// Errors: sizes, rank > 8 (or < 2 with transpose), eps negative or not finite.
inline status fold_batch_norm_conv(const batch_norm_params& bn, const shape& w_shape, span<const float> w,
                                   span<const float> b, span<float> w_out, span<float> b_out, bool transpose = false) {
    return detail::fold(bn, w_shape, w, b, w_out, b_out, transpose ? 1 : 0, true);
}

/// Folds BN into a linear weight [out, in] and bias, as torch.nn.utils.fusion.
/// fuse_linear_bn_weights (file comment; torch needs gamma and beta there, lowbit takes empty
/// ones as ones / zeros). Same contract as fold_batch_norm_conv.
inline status fold_batch_norm_linear(const batch_norm_params& bn, const shape& w_shape, span<const float> w,
                                     span<const float> b, span<float> w_out, span<float> b_out) {
    return detail::fold(bn, w_shape, w, b, w_out, b_out, 0, false);
}

/// Simulated folding, step 1: scale_factor[c] = gamma[c] / sqrt(running_var[c] + eps)
/// (torch: running_std = sqrt(var + eps); gamma / running_std). gamma empty = ones.
/// Errors: sizes; eps negative or not finite.
inline status batch_norm_scale_factor(span<const float> gamma, span<const float> running_var, float eps,
                                      span<float> scale_factor) {
    const std::size_t C = running_var.size();
    LOWBIT_DETAIL_CHECK(gamma.empty() || gamma.size() == C, errc::size_mismatch, "gamma.size()", gamma.size(),
                        "must be 0 (ones) or running_var.size()");
    LOWBIT_DETAIL_CHECK(scale_factor.size() == C, errc::size_mismatch, "scale_factor.size()", scale_factor.size(),
                        "must equal running_var.size()");
    LOWBIT_DETAIL_CHECK(eps >= 0.0f && eps - eps == 0.0f, errc::invalid_argument, "eps", eps, "must be finite and >= 0");
    for (std::size_t c = 0; c < C; ++c)
        scale_factor[c] = (gamma.empty() ? 1.0f : gamma[c]) / std::sqrt(running_var[c] + eps);
    return {};
}

/// Simulated folding, step 2: w_scaled = w * scale_factor[c], c the index along dim 0 of
/// w_shape (output channels; dim 0 must equal scale_factor.size()). w_scaled may be w.
/// Errors: sizes, rank 0 or > 8.
inline status scale_weight(span<const float> scale_factor, const shape& w_shape, span<const float> w,
                           span<float> w_scaled) {
    std::size_t numel = 0, C = 0, inner = 0;
    LOWBIT_DETAIL_TRY(detail::bn_layout(w_shape, 0, numel, C, inner));
    LOWBIT_DETAIL_CHECK(scale_factor.size() == C, errc::size_mismatch, "scale_factor.size()", scale_factor.size(),
                        "must equal w_shape[0]");
    LOWBIT_DETAIL_CHECK(w.size() == numel, errc::size_mismatch, "w.size()", w.size(), "must equal w_shape's numel");
    LOWBIT_DETAIL_CHECK(w_scaled.size() == numel, errc::size_mismatch, "w_scaled.size()", w_scaled.size(),
                        "must equal w_shape's numel");
    for (std::size_t k = 0; k < numel; ++k) w_scaled[k] = w[k] * scale_factor[inner == 0 ? 0 : k / inner];
    return {};
}

/// Simulated folding, step 5: out = conv / scale_factor[c] (+ bias[c] if bias is non-empty),
/// c the index along dim 1 of the conv output [N, C, *] (torch divides, it does not multiply
/// by a reciprocal). out may be conv. Errors: sizes, rank < 2 or > 8.
inline status rescale_conv_output(span<const float> scale_factor, span<const float> bias, const shape& out_shape,
                                  span<const float> conv, span<float> out) {
    std::size_t numel = 0, C = 0, inner = 0;
    LOWBIT_DETAIL_TRY(detail::bn_layout(out_shape, 1, numel, C, inner));
    LOWBIT_DETAIL_CHECK(scale_factor.size() == C, errc::size_mismatch, "scale_factor.size()", scale_factor.size(),
                        "must equal out_shape[1]");
    LOWBIT_DETAIL_CHECK(bias.empty() || bias.size() == C, errc::size_mismatch, "bias.size()", bias.size(),
                        "must be 0 (no bias) or out_shape[1]");
    LOWBIT_DETAIL_CHECK(conv.size() == numel, errc::size_mismatch, "conv.size()", conv.size(),
                        "must equal out_shape's numel");
    LOWBIT_DETAIL_CHECK(out.size() == numel, errc::size_mismatch, "out.size()", out.size(), "must equal conv.size()");
    for (std::size_t k = 0; k < numel; ++k) {
        const std::size_t c = inner == 0 ? 0 : (k / inner) % C;
        const float v = conv[k] / scale_factor[c];
        out[k] = bias.empty() ? v : v + bias[c];
    }
    return {};
}

/// Per-channel batch statistics of x [N, C, *] as torch's CPU BatchNorm computes them (file
/// comment): mean[c] and var_sum[c] = sum of (x - mean)^2 (divide by the count for the biased
/// variance BN normalizes with). Errors: sizes, rank < 2 or > 8. An empty channel gives NaN.
inline status batch_norm_batch_stats(const shape& x_shape, span<const float> x, span<float> mean,
                                     span<float> var_sum) {
    std::size_t numel = 0, C = 0, inner = 0;
    LOWBIT_DETAIL_TRY(detail::bn_layout(x_shape, 1, numel, C, inner));
    LOWBIT_DETAIL_CHECK(x.size() == numel, errc::size_mismatch, "x.size()", x.size(), "must equal x_shape's numel");
    LOWBIT_DETAIL_CHECK(mean.size() == C, errc::size_mismatch, "mean.size()", mean.size(), "must equal x_shape[1]");
    LOWBIT_DETAIL_CHECK(var_sum.size() == C, errc::size_mismatch, "var_sum.size()", var_sum.size(),
                        "must equal x_shape[1]");
    for (std::size_t c = 0; c < C; ++c) detail::channel_stats(x.data(), x_shape[0], C, inner, c, mean[c], var_sum[c]);
    return {};
}

/// Moves the running statistics by momentum m with a batch's mean and var_sum over `count`
/// elements per channel (file comment; running_var gets the unbiased variance
/// var_sum / (count - 1), Inf / NaN for count 1 as torch). Errors: sizes; momentum outside
/// [0, 1]; count 0.
inline status batch_norm_update_running_stats(std::size_t count, float momentum, span<const float> mean,
                                              span<const float> var_sum, span<float> running_mean,
                                              span<float> running_var) {
    const std::size_t C = mean.size();
    LOWBIT_DETAIL_CHECK(var_sum.size() == C, errc::size_mismatch, "var_sum.size()", var_sum.size(),
                        "must equal mean.size()");
    LOWBIT_DETAIL_CHECK(running_mean.size() == C, errc::size_mismatch, "running_mean.size()", running_mean.size(),
                        "must equal mean.size()");
    LOWBIT_DETAIL_CHECK(running_var.size() == C, errc::size_mismatch, "running_var.size()", running_var.size(),
                        "must equal mean.size()");
    LOWBIT_DETAIL_CHECK(momentum >= 0.0f && momentum <= 1.0f, errc::invalid_argument, "momentum", momentum,
                        "must be in [0, 1]");
    LOWBIT_DETAIL_CHECK(count > 0, errc::invalid_argument, "count", count, "must be > 0");
    const float keep = 1.0f - momentum;
    for (std::size_t c = 0; c < C; ++c) {
        running_mean[c] = detail::bn_rounded(momentum * mean[c]) + detail::bn_rounded(keep * running_mean[c]);
        const float unbiased = var_sum[c] / static_cast<float>(count - 1);
        running_var[c] = static_cast<float>(static_cast<double>(momentum) * static_cast<double>(unbiased) +
                                            static_cast<double>(detail::bn_rounded(keep * running_var[c])));
    }
    return {};
}

/// Training-mode BN statistics step of x [N, C, *]: batch_norm_batch_stats then
/// batch_norm_update_running_stats, unless `frozen` (torch's freeze_bn_stats: nothing
/// changes). Optional outputs: the batch mean and biased variance f32(var_sum / count) (what
/// BN normalizes with; C entries each, or empty). Channels up to 256 at a time use the stack;
/// no heap. Errors: those two functions'.
inline status update_batch_norm_stats(const shape& x_shape, span<const float> x, float momentum,
                                      span<float> running_mean, span<float> running_var, bool frozen = false,
                                      span<float> batch_mean = {}, span<float> batch_var = {}) {
    std::size_t numel = 0, C = 0, inner = 0;
    LOWBIT_DETAIL_TRY(detail::bn_layout(x_shape, 1, numel, C, inner));
    LOWBIT_DETAIL_CHECK(x.size() == numel, errc::size_mismatch, "x.size()", x.size(), "must equal x_shape's numel");
    LOWBIT_DETAIL_CHECK(running_mean.size() == C, errc::size_mismatch, "running_mean.size()", running_mean.size(),
                        "must equal x_shape[1]");
    LOWBIT_DETAIL_CHECK(running_var.size() == C, errc::size_mismatch, "running_var.size()", running_var.size(),
                        "must equal x_shape[1]");
    LOWBIT_DETAIL_CHECK(batch_mean.empty() || batch_mean.size() == C, errc::size_mismatch, "batch_mean.size()",
                        batch_mean.size(), "must be 0 or x_shape[1]");
    LOWBIT_DETAIL_CHECK(batch_var.empty() || batch_var.size() == C, errc::size_mismatch, "batch_var.size()",
                        batch_var.size(), "must be 0 or x_shape[1]");
    LOWBIT_DETAIL_CHECK(momentum >= 0.0f && momentum <= 1.0f, errc::invalid_argument, "momentum", momentum,
                        "must be in [0, 1]");
    const std::size_t count = x_shape[0] * inner;
    LOWBIT_DETAIL_CHECK(count > 0, errc::invalid_argument, "x_shape", 0, "must hold elements for every channel");
    if (frozen) return {};
    // channels in blocks of 256: the [N, c0:c1, *] slice's statistics through the same code
    constexpr std::size_t B = 256;
    float m[B], v[B];
    for (std::size_t c0 = 0; c0 < C; c0 += B) {
        const std::size_t nc = C - c0 < B ? C - c0 : B;
        for (std::size_t c = 0; c < nc; ++c) detail::channel_stats(x.data(), x_shape[0], C, inner, c0 + c, m[c], v[c]);
        for (std::size_t c = 0; c < nc; ++c) {
            if (!batch_mean.empty()) batch_mean[c0 + c] = m[c];
            if (!batch_var.empty()) batch_var[c0 + c] = v[c] / static_cast<float>(count);
        }
        (void)batch_norm_update_running_stats(count, momentum, span<const float>(m, nc), span<const float>(v, nc),
                                              span<float>(running_mean.data() + c0, nc),
                                              span<float>(running_var.data() + c0, nc));
    }
    return {};
}

}  // namespace lowbit

#endif  // LOWBIT_QUANT_BATCH_NORM_HPP
