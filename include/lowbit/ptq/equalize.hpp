// lowbit/ptq/equalize.hpp: cross-layer equalization (CLE) and high-bias absorption, the
// data-free steps of Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization
// and Bias Correction" (ICCV), sections 4.1 and 4.2, as AIMET applies them.
//
// Why: per-tensor weight quantization of a layer whose output channels have very different
// ranges wastes most of the grid on the small channels. For two layers with a positively
// homogeneous activation between them (ReLU, LeakyReLU, PReLU, identity: f(s x) = s f(x) for
// s > 0), scaling output channel i of layer 1 by 1 / s_i and input channel i of layer 2 by
// s_i leaves the network's function unchanged:
//   W1 row i /= s_i,  b1_i /= s_i,  W2 column i *= s_i,   s_i = sqrt(r1_i * r2_i) / r2_i
// where r1_i = max |W1[i][:]| (row i of layer 1) and r2_i = max |W2[:][i]| (column i of
// layer 2), AIMET's symmetric ranges; afterwards both ranges equal sqrt(r1_i * r2_i) (paper
// eq. 10-11), which maximises the product of the per-channel precisions. A chain of layers is
// equalized pair by pair, sweeping until the scales stop moving (paper section 4.1: "iterate
// this process ... until convergence").
//
// Conv layers use the same code: a layer's weight is [out][in][kernel] row-major with
// `kernel` the product of its spatial kernel sizes (1 for linear). Grouped and depthwise
// convolutions are not handled here (their channel coupling differs).
//
// High-bias absorption (paper 4.2): if layer 1's pre-activation channel i is (about) gaussian
// with mean beta_i and standard deviation gamma_i (the folded BN's bias and weight, or
// measured, see preactivation_stats), then c_i = max(0, beta_i - 3 |gamma_i|) is almost
// always below the pre-activation, so ReLU(x - c) = ReLU(x) - c and
//   b1 -= c,   b2 += W2 c
// keeps the function while shrinking the range of layer 1's output (the activation that gets
// quantized next). Exact only for inputs where every pre-activation x_i >= c_i (for a
// gaussian at 3 sigma, 99.87 % of them); a ReLU is required (not identity / LeakyReLU). For
// convolutions it is exact only without zero padding (padded positions are 0, not c).
//
// Order in a PTQ pipeline: fold BN (fold.hpp), equalize, absorb high biases (the BN
// statistics scaled by the CLE scales: beta_i / s_i, gamma_i / s_i), quantize, then bias
// correction (bias_correction.hpp).
#ifndef LOWBIT_PTQ_EQUALIZE_HPP
#define LOWBIT_PTQ_EQUALIZE_HPP

#include <cmath>
#include <cstddef>
#include <vector>

#include "../core/span.hpp"
#include "../core/status.hpp"

namespace lowbit {
namespace ptq {

/// One layer of a CLE chain, viewed in place: weight [out][in][kernel] row-major (torch's
/// nn.Linear weight for kernel 1, nn.Conv2d's [out][in][kh][kw] with kernel = kh * kw) and
/// bias [out] or empty (no bias).
struct cle_layer {
    std::size_t out = 0;
    std::size_t in = 0;
    std::size_t kernel = 1;
    span<float> weight;
    span<float> bias;
};

/// Stopping rule of equalize() on a chain. A pair of layers converges in one step; longer
/// chains need sweeps because equalizing (l, l+1) changes layer l+1's row ranges.
struct equalize_options {
    std::size_t max_sweeps = 100;  ///< >= 1
    double tolerance = 1e-4;       ///< converged when every scale of a sweep is within [1 - tol, 1 + tol]; > 0
};

/// What equalize() did.
struct equalize_report {
    std::size_t sweeps = 0;           ///< sweeps run (each visits every adjacent pair once)
    bool converged = false;           ///< the last sweep's scales were all within the tolerance
    std::size_t skipped_channels = 0; ///< (boundary, channel) pairs left unscaled: r1 or r2 is 0
    /// scales[l][i]: product of the s_i applied between layer l and l + 1 (layer l's output
    /// channel i was divided by it); size layers - 1, each layers[l].out entries.
    std::vector<std::vector<float>> scales;
};

namespace detail {

inline status cle_check_layer(const cle_layer& l) {
    LOWBIT_DETAIL_CHECK(l.kernel > 0, errc::invalid_argument, "layer.kernel", l.kernel, "must be > 0");
    const std::size_t max = static_cast<std::size_t>(-1);
    LOWBIT_DETAIL_CHECK(l.in == 0 || l.out <= max / l.in / l.kernel, errc::overflow, "layer.out", l.out,
                        "out * in * kernel overflows size_t");
    LOWBIT_DETAIL_CHECK(l.weight.size() == l.out * l.in * l.kernel, errc::size_mismatch, "layer.weight.size()",
                        l.weight.size(), "must be out * in * kernel");
    LOWBIT_DETAIL_CHECK(l.bias.empty() || l.bias.size() == l.out, errc::size_mismatch, "layer.bias.size()",
                        l.bias.size(), "must be 0 (no bias) or out");
    for (std::size_t k = 0; k < l.weight.size(); ++k)
        LOWBIT_DETAIL_CHECK(std::isfinite(l.weight[k]), errc::invalid_argument, "layer.weight index", k,
                            "weights must be finite");
    for (std::size_t k = 0; k < l.bias.size(); ++k)
        LOWBIT_DETAIL_CHECK(std::isfinite(l.bias[k]), errc::invalid_argument, "layer.bias index", k,
                            "biases must be finite");
    return {};
}

inline status cle_check_pair(const cle_layer& a, const cle_layer& b) {
    LOWBIT_DETAIL_TRY(cle_check_layer(a));
    LOWBIT_DETAIL_TRY(cle_check_layer(b));
    LOWBIT_DETAIL_CHECK(b.in == a.out, errc::size_mismatch, "second.in", b.in, "must equal first.out");
    return {};
}

// One CLE step on checked layers: writes the applied scales (1 for skipped channels), returns
// the largest |s - 1| and counts the zero-range channels. Every pass walks the weights in
// memory order (a column walk of W2 would touch one cache line per element).
inline double cle_apply(const cle_layer& a, const cle_layer& b, float* scales, std::size_t& skipped) {
    const std::size_t row = a.in * a.kernel;
    std::vector<float> r2(a.out, 0.0f);
    for (std::size_t j = 0; j < b.out; ++j)
        for (std::size_t i = 0; i < b.in; ++i)
            for (std::size_t t = 0; t < b.kernel; ++t) {
                const float v = std::fabs(b.weight[(j * b.in + i) * b.kernel + t]);
                r2[i] = v > r2[i] ? v : r2[i];
            }
    double worst = 0.0;
    for (std::size_t i = 0; i < a.out; ++i) {
        float r1 = 0.0f;
        for (std::size_t t = 0; t < row; ++t) {
            const float v = std::fabs(a.weight[i * row + t]);
            r1 = v > r1 ? v : r1;
        }
        scales[i] = 1.0f;
        if (r1 == 0.0f || r2[i] == 0.0f) {  // a dead channel or one layer 2 ignores: leave it
            ++skipped;
            continue;
        }
        const double s = std::sqrt(static_cast<double>(r1) * static_cast<double>(r2[i])) / static_cast<double>(r2[i]);
        const float sf = static_cast<float>(s);
        scales[i] = sf;
        const double d = std::fabs(static_cast<double>(sf) - 1.0);
        worst = d > worst ? d : worst;
        if (sf == 1.0f) continue;
        for (std::size_t t = 0; t < row; ++t) a.weight[i * row + t] /= sf;
        if (!a.bias.empty()) a.bias[i] /= sf;
    }
    for (std::size_t j = 0; j < b.out; ++j)
        for (std::size_t i = 0; i < b.in; ++i) {
            const float sf = scales[i];
            if (sf == 1.0f) continue;
            for (std::size_t t = 0; t < b.kernel; ++t) b.weight[(j * b.in + i) * b.kernel + t] *= sf;
        }
    return worst;
}

}  // namespace detail

/// One CLE step on two consecutive layers joined by a positively homogeneous activation
/// (file comment), in place: first's output channel i (weights and bias) is divided by s_i,
/// second's input channel i is multiplied by it. `scales` (first.out entries, or empty)
/// receives the s_i. A channel with r1_i == 0 or r2_i == 0 (all-zero row of W1 or column of
/// W2) is left alone (s_i = 1): no division by zero. The network's f32 function changes only
/// by float rounding (each weight is rounded once). Errors, before anything is written:
/// sizes (weight != out * in * kernel, bias not 0 or out, second.in != first.out, scales not 0
/// or first.out), kernel 0, non-finite weights or biases.
inline status equalize_pair(const cle_layer& first, const cle_layer& second, span<float> scales = {}) {
    LOWBIT_DETAIL_TRY(detail::cle_check_pair(first, second));
    LOWBIT_DETAIL_CHECK(scales.empty() || scales.size() == first.out, errc::size_mismatch, "scales.size()",
                        scales.size(), "must be 0 or first.out");
    std::vector<float> s(first.out);
    std::size_t skipped = 0;
    (void)detail::cle_apply(first, second, s.data(), skipped);
    for (std::size_t i = 0; i < scales.size(); ++i) scales[i] = s[i];
    return {};
}

/// CLE over a chain of layers (layers[l + 1].in == layers[l].out, a positively homogeneous
/// activation after every layer but the last), in place: sweeps l = 0 .. L-2 applying
/// equalize_pair, until a sweep's scales are all within options.tolerance of 1 or
/// options.max_sweeps sweeps ran (not converging is reported, not an error). A single pair
/// converges after one scaling sweep plus one checking sweep. Errors, before anything is
/// written: fewer than 2 layers, each layer's and each pair's size errors (as equalize_pair),
/// non-finite weights, max_sweeps 0, tolerance not finite or <= 0.
inline result<equalize_report> equalize(span<const cle_layer> layers, const equalize_options& options = {}) {
    LOWBIT_DETAIL_CHECK(layers.size() >= 2, errc::size_mismatch, "layers.size()", layers.size(), "must be >= 2");
    LOWBIT_DETAIL_CHECK(options.max_sweeps > 0, errc::invalid_argument, "options.max_sweeps", options.max_sweeps,
                        "must be > 0");
    LOWBIT_DETAIL_CHECK(options.tolerance > 0.0 && std::isfinite(options.tolerance), errc::invalid_argument,
                        "options.tolerance", options.tolerance, "must be finite and > 0");
    for (std::size_t l = 0; l + 1 < layers.size(); ++l) LOWBIT_DETAIL_TRY(detail::cle_check_pair(layers[l], layers[l + 1]));
    equalize_report rep;
    rep.scales.resize(layers.size() - 1);
    for (std::size_t l = 0; l + 1 < layers.size(); ++l) rep.scales[l].assign(layers[l].out, 1.0f);
    std::vector<float> s;
    while (rep.sweeps < options.max_sweeps) {
        double worst = 0.0;
        std::size_t skipped = 0;
        for (std::size_t l = 0; l + 1 < layers.size(); ++l) {
            s.assign(layers[l].out, 1.0f);
            const double w = detail::cle_apply(layers[l], layers[l + 1], s.data(), skipped);
            worst = w > worst ? w : worst;
            for (std::size_t i = 0; i < s.size(); ++i) rep.scales[l][i] *= s[i];
        }
        ++rep.sweeps;
        rep.skipped_channels = skipped;  // the same every sweep: scaling keeps zero ranges zero
        if (worst <= options.tolerance) {
            rep.converged = true;
            break;
        }
    }
    return rep;
}

/// High-bias absorption between `first` (whose output goes through a ReLU) and `second`
/// (file comment), in place: c_i = max(0, mean_i - num_std * |std_dev_i|), first.bias_i -= c_i,
/// second.bias_j += sum_i sum_kernel W2[j][i][:] * c_i (in double, rounded once per j).
/// mean / std_dev (first.out entries) describe first's pre-activation channel i: the folded
/// BN's beta / gamma (divided by the CLE scales if equalize ran after folding), or
/// preactivation_stats(). |gamma| is used since BN's gamma may be negative (the paper writes
/// gamma assuming it positive). num_std: 3 as the paper and AIMET. `absorbed` (first.out or
/// empty) receives c. A channel with c_i = 0 is unchanged; all-zero statistics change
/// nothing. Errors, before anything is written: first.bias or second.bias empty (give a zero
/// bias to absorb into), sizes, second.in != first.out, non-finite weights / statistics,
/// num_std negative or not finite.
inline status absorb_high_bias(const cle_layer& first, const cle_layer& second, span<const float> mean,
                               span<const float> std_dev, float num_std = 3.0f, span<float> absorbed = {}) {
    LOWBIT_DETAIL_TRY(detail::cle_check_pair(first, second));
    LOWBIT_DETAIL_CHECK(first.bias.size() == first.out, errc::size_mismatch, "first.bias.size()", first.bias.size(),
                        "must equal first.out (absorption changes it)");
    LOWBIT_DETAIL_CHECK(second.bias.size() == second.out, errc::size_mismatch, "second.bias.size()",
                        second.bias.size(), "must equal second.out (pass zeros for a layer without bias)");
    LOWBIT_DETAIL_CHECK(mean.size() == first.out, errc::size_mismatch, "mean.size()", mean.size(),
                        "must equal first.out");
    LOWBIT_DETAIL_CHECK(std_dev.size() == first.out, errc::size_mismatch, "std_dev.size()", std_dev.size(),
                        "must equal first.out");
    LOWBIT_DETAIL_CHECK(absorbed.empty() || absorbed.size() == first.out, errc::size_mismatch, "absorbed.size()",
                        absorbed.size(), "must be 0 or first.out");
    LOWBIT_DETAIL_CHECK(num_std >= 0.0f && std::isfinite(num_std), errc::invalid_argument, "num_std", num_std,
                        "must be finite and >= 0");
    for (std::size_t i = 0; i < first.out; ++i) {
        LOWBIT_DETAIL_CHECK(std::isfinite(mean[i]), errc::invalid_argument, "mean index", i, "must be finite");
        LOWBIT_DETAIL_CHECK(std::isfinite(std_dev[i]), errc::invalid_argument, "std_dev index", i, "must be finite");
    }
    std::vector<float> c(first.out);
    for (std::size_t i = 0; i < first.out; ++i) {
        const double v = static_cast<double>(mean[i]) - static_cast<double>(num_std) * std::fabs(static_cast<double>(std_dev[i]));
        c[i] = v > 0.0 ? static_cast<float>(v) : 0.0f;
    }
    for (std::size_t j = 0; j < second.out; ++j) {
        double add = 0.0;
        for (std::size_t i = 0; i < second.in; ++i) {
            if (c[i] == 0.0f) continue;
            double wsum = 0.0;
            for (std::size_t t = 0; t < second.kernel; ++t)
                wsum += static_cast<double>(second.weight[(j * second.in + i) * second.kernel + t]);
            add += wsum * static_cast<double>(c[i]);
        }
        second.bias[j] = static_cast<float>(static_cast<double>(second.bias[j]) + add);
    }
    for (std::size_t i = 0; i < first.out; ++i) first.bias[i] -= c[i];
    for (std::size_t i = 0; i < absorbed.size(); ++i) absorbed[i] = c[i];
    return {};
}

/// Empirical pre-activation statistics of a linear layer (the inputs to absorb_high_bias when
/// there is no BN): y = x W^T + b for `rows` calibration rows x [rows][in], w [out][in], b
/// [out] or empty; mean[i] and std_dev[i] (population standard deviation) of y's column i, in
/// double. Errors: rows 0 (no data), sizes, non-finite x or w (a non-finite mean / std is
/// reported naming the channel).
inline status preactivation_stats(std::size_t rows, std::size_t out, std::size_t in, span<const float> x,
                                  span<const float> w, span<const float> b, span<float> mean, span<float> std_dev) {
    LOWBIT_DETAIL_CHECK(rows > 0, errc::size_mismatch, "rows", rows, "must be > 0 (no calibration data)");
    LOWBIT_DETAIL_CHECK(in == 0 || rows <= static_cast<std::size_t>(-1) / in, errc::overflow, "rows", rows,
                        "rows * in overflows size_t");
    LOWBIT_DETAIL_CHECK(x.size() == rows * in, errc::size_mismatch, "x.size()", x.size(), "must be rows * in");
    LOWBIT_DETAIL_CHECK(in == 0 || out <= static_cast<std::size_t>(-1) / in, errc::overflow, "out", out,
                        "out * in overflows size_t");
    LOWBIT_DETAIL_CHECK(w.size() == out * in, errc::size_mismatch, "w.size()", w.size(), "must be out * in");
    LOWBIT_DETAIL_CHECK(b.empty() || b.size() == out, errc::size_mismatch, "b.size()", b.size(), "must be 0 or out");
    LOWBIT_DETAIL_CHECK(mean.size() == out, errc::size_mismatch, "mean.size()", mean.size(), "must equal out");
    LOWBIT_DETAIL_CHECK(std_dev.size() == out, errc::size_mismatch, "std_dev.size()", std_dev.size(),
                        "must equal out");
    std::vector<double> sum(out, 0.0), sq(out, 0.0);
    std::vector<double> shift(out, 0.0);  // first row's values: sums of (y - shift) cancel less
    for (std::size_t r = 0; r < rows; ++r) {
        const float* xr = x.data() + r * in;
        for (std::size_t i = 0; i < out; ++i) {
            double s = b.empty() ? 0.0 : static_cast<double>(b[i]);
            const float* wr = w.data() + i * in;
            for (std::size_t t = 0; t < in; ++t) s += static_cast<double>(xr[t]) * static_cast<double>(wr[t]);
            if (r == 0) shift[i] = s;
            const double d = s - shift[i];
            sum[i] += d;
            sq[i] += d * d;
        }
    }
    const double n = static_cast<double>(rows);
    std::vector<float> m(out), sd(out);
    for (std::size_t i = 0; i < out; ++i) {
        const double mu = sum[i] / n;
        const double var = sq[i] / n - mu * mu;
        m[i] = static_cast<float>(shift[i] + mu);
        sd[i] = static_cast<float>(std::sqrt(var > 0.0 ? var : 0.0));
        LOWBIT_DETAIL_CHECK(std::isfinite(m[i]) && std::isfinite(sd[i]), errc::invalid_argument,
                            "preactivation channel", i, "non-finite statistics: x or w holds NaN / Inf or overflows");
    }
    for (std::size_t i = 0; i < out; ++i) {
        mean[i] = m[i];
        std_dev[i] = sd[i];
    }
    return {};
}

}  // namespace ptq
}  // namespace lowbit

#endif  // LOWBIT_PTQ_EQUALIZE_HPP
