// lowbit/ptq/bias_correction.hpp: bias correction, Nagel et al. 2019, "Data-Free Quantization
// Through Weight Equalization and Bias Correction" (ICCV), section 4.2, as AIMET's
// empirical and analytic bias correction.
//
// Why: quantizing weights W to W~ adds an error eps = W~ - W whose output effect eps x has,
// over the data, a non-zero mean E[eps x] = eps E[x] whenever the inputs have a non-zero mean
// (after a ReLU they always do). That mean shift biases every output channel; subtracting it
// from the bias removes it:
//   b_j -= sum_k (W~[j][k] - W[j][k]) E[x_k]
// (paper eq. 13-14). It does not change the error's variance, so it helps most at low bits,
// per-channel or not, and costs nothing at inference.
//
//   empirical  E[x] from calibration rows (any input distribution). With the quantized
//              model's own inputs x~ (the activations the previous, already quantized layers
//              produce), the correction is E[W x] - E[W~ x~], AIMET's empirical form, which
//              also removes the mean shift coming from upstream quantization.
//   analytic   E[x] from the input's BN statistics: x = ReLU(z), z ~ N(beta, gamma^2)
//              (the BN before the ReLU that feeds this layer): E[x] = mu Phi(mu / sigma) +
//              sigma phi(mu / sigma) with mu = beta, sigma = |gamma| (paper section 4.2,
//              clipped normal without the upper clip); without a ReLU E[x] = beta.
//
// Convolutions: the empirical form takes im2col rows (K = in * kh * kw, weight [out][in][kh][kw]
// is already [out][K] row-major); the analytic form takes weight [out][in][kernel] and
// channel statistics [in] (zero padding's zeros are not modelled).
//
// W~ comes from any weight quantizer (round-to-nearest with lowbit's schemes, GPTQ,
// AdaRound...) as dequantized f32 values.
#ifndef LOWBIT_PTQ_BIAS_CORRECTION_HPP
#define LOWBIT_PTQ_BIAS_CORRECTION_HPP

#include <cmath>
#include <cstddef>
#include <vector>

#include "../core/span.hpp"
#include "../core/status.hpp"

namespace lowbit {
namespace ptq {

/// What feeds the corrected layer, for correct_bias_analytic.
enum class input_activation {
    none,  ///< x = z: E[x] = mean
    relu,  ///< x = max(z, 0): E[x] = mu Phi(mu / sigma) + sigma phi(mu / sigma)
};

/// E[max(z, 0)] for z ~ N(mu, sigma^2): mu Phi(mu / sigma) + sigma phi(mu / sigma), Phi / phi
/// the standard normal CDF / density (Phi through std::erfc, accurate in both tails). sigma
/// is used as |sigma|; sigma == 0 gives max(mu, 0). Non-finite input gives NaN (callers check).
inline double expected_relu_gaussian(double mu, double sigma) noexcept {
    sigma = std::fabs(sigma);
    if (sigma == 0.0) return mu > 0.0 ? mu : 0.0;
    const double a = mu / sigma;
    const double inv_sqrt2 = 0.70710678118654752440;
    const double inv_sqrt2pi = 0.39894228040143267794;
    const double cdf = 0.5 * std::erfc(-a * inv_sqrt2);
    const double pdf = inv_sqrt2pi * std::exp(-0.5 * a * a);
    const double e = mu * cdf + sigma * pdf;
    return e > 0.0 ? e : 0.0;  // cancellation far in the left tail may leave a tiny negative
}

namespace detail {

inline status bc_check_weights(std::size_t n, std::size_t k, span<const float> w, span<const float> w_q,
                               span<float> bias, span<float> correction) {
    LOWBIT_DETAIL_CHECK(k == 0 || n <= static_cast<std::size_t>(-1) / k, errc::overflow, "n", n,
                        "n * k overflows size_t");
    LOWBIT_DETAIL_CHECK(w.size() == n * k, errc::size_mismatch, "w.size()", w.size(), "must be n * k");
    LOWBIT_DETAIL_CHECK(w_q.size() == n * k, errc::size_mismatch, "w_q.size()", w_q.size(), "must be n * k");
    LOWBIT_DETAIL_CHECK(bias.size() == n, errc::size_mismatch, "bias.size()", bias.size(),
                        "must equal n (pass zeros for a layer without bias)");
    LOWBIT_DETAIL_CHECK(correction.empty() || correction.size() == n, errc::size_mismatch, "correction.size()",
                        correction.size(), "must be 0 or n");
    for (std::size_t i = 0; i < w.size(); ++i)
        LOWBIT_DETAIL_CHECK(std::isfinite(w[i]) && std::isfinite(w_q[i]), errc::invalid_argument, "w / w_q index", i,
                            "weights must be finite");
    for (std::size_t j = 0; j < n; ++j)
        LOWBIT_DETAIL_CHECK(std::isfinite(bias[j]), errc::invalid_argument, "bias index", j, "must be finite");
    return {};
}

// Column means of x [rows][k] in double (increasing row order).
inline void bc_column_means(std::size_t rows, std::size_t k, const float* x, double* mean) {
    for (std::size_t t = 0; t < k; ++t) mean[t] = 0.0;
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t t = 0; t < k; ++t) mean[t] += static_cast<double>(x[r * k + t]);
    for (std::size_t t = 0; t < k; ++t) mean[t] /= static_cast<double>(rows);
}

// bias_j += c_j, c_j = sum_t (w[j][t] * mw[t] - w_q[j][t] * mq[t]), each in double,
// kernel elements per mean entry. Checks c before writing.
inline status bc_apply(std::size_t n, std::size_t k, std::size_t kernel, span<const float> w, span<const float> w_q,
                       const double* mw, const double* mq, span<float> bias, span<float> correction) {
    std::vector<float> c(n);
    for (std::size_t j = 0; j < n; ++j) {
        double s = 0.0;
        for (std::size_t t = 0; t < k; ++t) {
            const std::size_t ch = t / kernel;
            s += static_cast<double>(w[j * k + t]) * mw[ch] - static_cast<double>(w_q[j * k + t]) * mq[ch];
        }
        c[j] = static_cast<float>(s);
        LOWBIT_DETAIL_CHECK(std::isfinite(c[j]) && std::isfinite(bias[j] + c[j]), errc::invalid_argument,
                            "correction index", j, "overflows float");
    }
    for (std::size_t j = 0; j < n; ++j) {
        bias[j] += c[j];
        if (!correction.empty()) correction[j] = c[j];
    }
    return {};
}

}  // namespace detail

/// Empirical bias correction of a linear layer, in place on `bias`:
///   bias_j += mean_rows(W x)_j - mean_rows(W~ x~)_j = sum_k W[j][k] E[x_k] - W~[j][k] E[x~_k]
/// w, w_q [n][k] the f32 and the quantized (dequantized) weights; x [rows][k] the float
/// model's calibration inputs of this layer; x_q [rows_q][k] the quantized model's inputs of
/// this layer (empty: x~ = x, the plain weight-only correction b -= E[(W~ - W) x]); bias [n]
/// (pass zeros for a layer without bias). `correction` (n or empty) receives the added
/// amounts. Means and sums in double, one rounding per output. All-zero activations give a
/// zero correction. Errors, before anything is written: rows 0 (no calibration data; also
/// x_q non-empty with rows_q 0), sizes, non-finite weights, bias, x or x_q (named by the
/// input channel whose mean is not finite), a correction that overflows float.
inline status correct_bias_empirical(std::size_t n, std::size_t k, std::size_t rows, span<const float> w,
                                     span<const float> w_q, span<const float> x, span<float> bias,
                                     span<float> correction = {}, std::size_t rows_q = 0,
                                     span<const float> x_q = {}) {
    LOWBIT_DETAIL_TRY(detail::bc_check_weights(n, k, w, w_q, bias, correction));
    LOWBIT_DETAIL_CHECK(rows > 0, errc::size_mismatch, "rows", rows, "must be > 0 (no calibration data)");
    LOWBIT_DETAIL_CHECK(k == 0 || rows <= static_cast<std::size_t>(-1) / k, errc::overflow, "rows", rows,
                        "rows * k overflows size_t");
    LOWBIT_DETAIL_CHECK(x.size() == rows * k, errc::size_mismatch, "x.size()", x.size(), "must be rows * k");
    const bool own_q = !x_q.empty() || rows_q != 0;
    if (own_q) {
        LOWBIT_DETAIL_CHECK(rows_q > 0, errc::size_mismatch, "rows_q", rows_q, "must be > 0 when x_q is given");
        LOWBIT_DETAIL_CHECK(k == 0 || rows_q <= static_cast<std::size_t>(-1) / k, errc::overflow, "rows_q", rows_q,
                            "rows_q * k overflows size_t");
        LOWBIT_DETAIL_CHECK(x_q.size() == rows_q * k, errc::size_mismatch, "x_q.size()", x_q.size(),
                            "must be rows_q * k");
    }
    std::vector<double> mx(k), mq;
    detail::bc_column_means(rows, k, x.data(), mx.data());
    for (std::size_t t = 0; t < k; ++t)
        LOWBIT_DETAIL_CHECK(std::isfinite(mx[t]), errc::invalid_argument, "x column", t,
                            "the mean is not finite (NaN / Inf in x)");
    if (own_q) {
        mq.resize(k);
        detail::bc_column_means(rows_q, k, x_q.data(), mq.data());
        for (std::size_t t = 0; t < k; ++t)
            LOWBIT_DETAIL_CHECK(std::isfinite(mq[t]), errc::invalid_argument, "x_q column", t,
                                "the mean is not finite (NaN / Inf in x_q)");
    }
    return detail::bc_apply(n, k, 1, w, w_q, mx.data(), own_q ? mq.data() : mx.data(), bias, correction);
}

/// Analytic bias correction (data-free), in place on `bias`:
///   bias_j += -sum_c sum_kernel (W~ - W)[j][c][:] E[x_c]
/// w, w_q [n][in][kernel] (kernel 1 for linear); input_mean / input_std (in entries each): the
/// mean and standard deviation of the pre-activation z that feeds this layer through
/// `activation` (the preceding BN's beta and gamma; gamma's sign is ignored), so E[x_c] is
/// expected_relu_gaussian(mean_c, std_c) for relu and mean_c for none. `correction` (n or
/// empty) receives the added amounts. Errors, before anything is written: sizes (w / w_q !=
/// n * in * kernel), kernel 0, non-finite weights, bias or statistics, a correction that
/// overflows float.
inline status correct_bias_analytic(std::size_t n, std::size_t in, std::size_t kernel, span<const float> w,
                                    span<const float> w_q, span<const float> input_mean,
                                    span<const float> input_std, input_activation activation, span<float> bias,
                                    span<float> correction = {}) {
    LOWBIT_DETAIL_CHECK(kernel > 0, errc::invalid_argument, "kernel", kernel, "must be > 0");
    LOWBIT_DETAIL_CHECK(in <= static_cast<std::size_t>(-1) / kernel, errc::overflow, "in", in,
                        "in * kernel overflows size_t");
    const std::size_t k = in * kernel;
    LOWBIT_DETAIL_TRY(detail::bc_check_weights(n, k, w, w_q, bias, correction));
    LOWBIT_DETAIL_CHECK(input_mean.size() == in, errc::size_mismatch, "input_mean.size()", input_mean.size(),
                        "must equal in");
    LOWBIT_DETAIL_CHECK(input_std.size() == in, errc::size_mismatch, "input_std.size()", input_std.size(),
                        "must equal in");
    std::vector<double> ex(in);
    for (std::size_t c = 0; c < in; ++c) {
        LOWBIT_DETAIL_CHECK(std::isfinite(input_mean[c]), errc::invalid_argument, "input_mean index", c,
                            "must be finite");
        LOWBIT_DETAIL_CHECK(std::isfinite(input_std[c]), errc::invalid_argument, "input_std index", c,
                            "must be finite");
        ex[c] = activation == input_activation::relu ? expected_relu_gaussian(input_mean[c], input_std[c])
                                                      : static_cast<double>(input_mean[c]);
    }
    return detail::bc_apply(n, k, kernel, w, w_q, ex.data(), ex.data(), bias, correction);
}

}  // namespace ptq
}  // namespace lowbit

#endif  // LOWBIT_PTQ_BIAS_CORRECTION_HPP
