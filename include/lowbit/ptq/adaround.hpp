// lowbit/ptq/adaround.hpp: AdaRound (Nagel et al. 2020, "Up or Down? Adaptive Rounding for
// Post-Training Quantization", arXiv:2004.10568) for one linear layer: instead of rounding
// every weight to the nearest grid point, learn per weight whether to round down or up so the
// layer's output on calibration data changes least.
//
// Round-to-nearest (RTN) minimises each weight's own error; what matters is the layer's output
// error ||W X^T - W~ X^T||, where errors of weights that meet the same inputs can cancel.
// AdaRound keeps the grid of RTN (scale and zero-point from the weights' min/max, per output
// channel or per group, chosen by lowbit::choose_qparams) and only chooses floor or ceil:
//
//   v      = w / s  (w * (1/s) in float, as lowbit's quantize; w / s for profile::tflite)
//   base   = floor(v) + z
//   h(V)   = clip(sigmoid(V) * (zeta - gamma) + gamma, 0, 1),   zeta = 1.1, gamma = -0.1
//   w~(V)  = s * (clamp(base + h(V), qmin, qmax) - z)            (the soft-quantized weight)
//   loss   = sum_rows ||(W - W~) x||^2 / batch_rows              (AIMET's reconstruction loss:
//            + lambda * sum_weights (1 - |2 h(V) - 1|^beta)        squared L2 over outputs, mean
//                                                                 over the batch)
//
// V starts where h(V) equals the fractional part v - floor(v) (the paper's and AIMET's
// initialisation: the soft weight starts at the float weight, up to clamping). The
// regulariser is off during a warm start (the first warm_start * iterations steps) and then
// pushes every h(V) to 0 or 1 while beta is annealed from beta_start to beta_end (cosine as
// AIMET, or linear as the BRECQ / AdaRound reference code). The optimiser is Adam (torch's
// update rule, written here) on mini-batches of calibration rows drawn without replacement
// from a seeded shuffle (splitmix64, the same on every standard library). Finally every weight
// rounds up where h(V) >= 0.5: each code is clamp(floor(v) + z or floor(v) + 1 + z, qmin, qmax).
//
// Gradients are written by hand (no autodiff; checked against finite differences in
// tests/ptq/test_adaround.cpp):
//   dloss/dw~_jk = 2 / B * sum_b (sum_t (w~_jt - w_jt) x_bt) x_bk
//   dw~/dh       = s where qmin <= base + h <= qmax, else 0 (torch's clamp gradient)
//   dh/dV        = (zeta - gamma) sigmoid(V) (1 - sigmoid(V)) where 0 <= raw h <= 1, else 0
//   dreg/dh      = -2 lambda beta sign(2h - 1) |2h - 1|^(beta - 1)
//
// The loss is a sum over output rows, so rows are independent: the whole iteration (batch
// forward, gradient, Adam, new soft weights) runs row by row with one row of scratch.
//
// Cost per iteration: 4 N K B flops (B = batch rows) plus N K sigmoids (and N K powers after
// the warm start); state: 6 floats + 1 int16 per weight (Adam moments, V, h, dh/dV, W~ - W,
// floor codes), e.g. 440 MB for a 4096 x 4096 layer. Single thread.
#ifndef LOWBIT_PTQ_ADAROUND_HPP
#define LOWBIT_PTQ_ADAROUND_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "../core/layout.hpp"
#include "../core/qparams.hpp"
#include "../core/quantize.hpp"
#include "../core/scheme.hpp"
#include "../core/span.hpp"
#include "../core/status.hpp"

namespace lowbit {
namespace ptq {

/// How beta (the regulariser's exponent) goes from beta_start to beta_end after the warm start.
enum class adaround_beta_schedule : std::uint8_t {
    cosine,  ///< beta_end + (beta_start - beta_end) (1 + cos(pi t)) / 2, t in [0, 1) (AIMET)
    linear,  ///< beta_end + (beta_start - beta_end) (1 - t) (BRECQ's LinearTempDecay)
};

/// AdaRound's parameters. Defaults: AIMET's AdaroundParameters (num_iterations 10000, as the
/// paper; reg_param 0.01; beta_range (20, 2); warm_start 0.2) and its optimiser
/// (torch.optim.Adam, lr 1e-3, betas (0.9, 0.999), eps 1e-8). batch_rows 32 is lowbit's choice
/// (AIMET takes its data loader's batch; the paper's code uses 32 samples per step).
struct adaround_options {
    std::size_t iterations = 10000;  ///< Adam steps; 0 gives the initial rounding (h >= 0.5, i.e. RTN up to ties)
    std::size_t batch_rows = 32;     ///< calibration rows per step, in [1, 256]; min(batch_rows, rows) is used
    float reg_param = 0.01f;         ///< lambda, finite and >= 0
    float beta_start = 20.0f;        ///< finite, >= beta_end
    float beta_end = 2.0f;           ///< finite, >= 1 (|2h - 1|^(beta - 1) must stay finite)
    float warm_start = 0.2f;         ///< fraction of the iterations without regulariser, in [0, 1]
    adaround_beta_schedule schedule = adaround_beta_schedule::cosine;
    float learning_rate = 1e-3f;     ///< Adam lr, finite and > 0
    float adam_beta1 = 0.9f;         ///< in [0, 1)
    float adam_beta2 = 0.999f;       ///< in [0, 1)
    float adam_eps = 1e-8f;          ///< finite and > 0
    std::uint64_t seed = 0;          ///< selects the mini-batch order; same seed, same result
    /// After optimisation, compare each output row's error on ALL calibration rows with RTN's
    /// row and keep RTN's codes for rows where RTN is strictly better (AdaRound never makes
    /// the calibration error worse then). false returns the learned rounding everywhere.
    bool keep_better_rows = true;
};

/// What adaround did. Errors are mean squared output errors per element over all calibration
/// rows, sum_(rows, outputs) ((W^ - W) x)^2 / (rows * N) (the bias cancels), in double.
struct adaround_report {
    std::size_t iterations = 0;          ///< Adam steps run (0 when zero_activations)
    bool zero_activations = false;       ///< every calibration value is 0: RTN codes returned
    double mse_rtn = 0.0;                ///< calibration output MSE of round-to-nearest
    double mse_learned = 0.0;            ///< of the learned rounding (before keep_better_rows)
    double mse = 0.0;                    ///< of the returned codes
    std::size_t rows_kept_rtn = 0;       ///< output rows returned with RTN's codes (keep_better_rows)
    std::size_t codes_changed = 0;       ///< returned codes that differ from RTN's
    std::size_t soft_weights = 0;        ///< weights whose h(V) ended strictly inside (0, 1)
    double last_batch_loss = 0.0;        ///< reconstruction loss of the last step's batch (soft weights)
    double last_round_loss = 0.0;        ///< regulariser of the last step (0 in the warm start)
};

namespace detail {
namespace adaround_impl {

constexpr float zeta = 1.1f;
constexpr float gamma = -0.1f;
constexpr std::size_t max_batch = 256;

// The weights [N, K] and their grid: which (scale, zero-point) each element uses. A row is a
// sequence of segments of one parameter index (layout.hpp's param_index, without a division
// per element).
struct grid {
    std::size_t n = 0, k = 0;
    lowbit::granularity gran = lowbit::granularity::per_tensor;
    std::size_t axis = 0, group = 1;
    const float* scales = nullptr;
    const std::int32_t* zero_points = nullptr;
    std::int32_t qmin = 0, qmax = 0;
    bool divide = false;

    // f(param index, k0, k1) for the segments of row j
    template <class F>
    void for_each_segment(std::size_t j, F&& f) const {
        if (gran == lowbit::granularity::per_tensor) return f(std::size_t(0), std::size_t(0), k);
        if (gran == lowbit::granularity::per_channel) {
            if (axis == 0) return f(j, std::size_t(0), k);
            for (std::size_t t = 0; t < k; ++t) f(t, t, t + 1);
            return;
        }
        if (axis == 0) {
            const std::size_t first = (j / group) * k;
            for (std::size_t t = 0; t < k; ++t) f(first + t, t, t + 1);
            return;
        }
        const std::size_t per_row = k / group;
        for (std::size_t g = 0; g < per_row; ++g) f(j * per_row + g, g * group, (g + 1) * group);
    }
    float ratio(float w, std::size_t p) const { return divide ? w / scales[p] : w * (1.0f / scales[p]); }
    float dequantize(std::int32_t q, std::size_t p) const {
        return static_cast<float>(std::int64_t(q) - zero_points[p]) * scales[p];
    }
    std::int32_t clamp(std::int32_t q) const { return q < qmin ? qmin : q > qmax ? qmax : q; }
};

inline float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

// V with h(V) = r, r in [0, 1]: -log((zeta - gamma) / (r - gamma) - 1) (AIMET's init; finite,
// the log's argument is >= 1 / 11)
inline float initial_v(float r) { return -std::log((zeta - gamma) / (r - gamma) - 1.0f); }

// floor(w / s) + z, clamped to [qmin - 1, qmax] (base + h with h in [0, 1] then covers every
// value the clamp can see)
inline std::int16_t floor_code(const grid& g, float w, std::size_t p) {
    const float v = std::floor(g.ratio(w, p));
    const double b = static_cast<double>(v) + g.zero_points[p];
    const double lo = g.qmin - 1, hi = g.qmax;
    return static_cast<std::int16_t>(b < lo ? lo : b > hi ? hi : b);
}

// Soft weights of row j from V: h, dh/dV and delta = w~ - w.
inline void soft_row(const grid& g, std::size_t j, const float* w, const std::int16_t* base, const float* v, float* h,
                     float* dhdv, float* delta) {
    g.for_each_segment(j, [&](std::size_t p, std::size_t k0, std::size_t k1) {
        const float s = g.scales[p];
        const float z = static_cast<float>(g.zero_points[p]);
        const float lo = static_cast<float>(g.qmin), hi = static_cast<float>(g.qmax);
        for (std::size_t t = k0; t < k1; ++t) {
            const float sg = sigmoid(v[t]);
            const float raw = sg * (zeta - gamma) + gamma;
            const bool inside = raw >= 0.0f && raw <= 1.0f;
            const float ht = raw < 0.0f ? 0.0f : raw > 1.0f ? 1.0f : raw;
            h[t] = ht;
            dhdv[t] = inside ? (zeta - gamma) * sg * (1.0f - sg) : 0.0f;
            float q = static_cast<float>(base[t]) + ht;
            q = q < lo ? lo : q > hi ? hi : q;
            delta[t] = (q - z) * s - w[t];
        }
    });
}

// d[b] = sum_t delta[t] xt[t][b] for the batch (xt is K x B, row t holds input t of every
// batch row), accumulated in increasing t; returns sum_b d[b]^2 (double).
inline double row_outputs(std::size_t k, std::size_t b, const float* delta, const float* xt, float* d) {
    constexpr std::size_t lanes = 16;  // a fixed-width block of outputs stays in registers over t
    std::size_t i0 = 0;
    for (; i0 + lanes <= b; i0 += lanes) {
        float acc[lanes] = {};
        for (std::size_t t = 0; t < k; ++t) {
            const float c = delta[t];
            const float* xr = xt + t * b + i0;
            for (std::size_t i = 0; i < lanes; ++i) acc[i] += c * xr[i];
        }
        for (std::size_t i = 0; i < lanes; ++i) d[i0 + i] = acc[i];
    }
    for (std::size_t i = i0; i < b; ++i) d[i] = 0.0f;
    for (std::size_t t = 0; t < k && i0 < b; ++t) {  // the tail, same order (increasing t)
        const float c = delta[t];
        const float* xr = xt + t * b;
        for (std::size_t i = i0; i < b; ++i) d[i] += c * xr[i];
    }
    double e = 0.0;
    for (std::size_t i = 0; i < b; ++i) e += static_cast<double>(d[i]) * static_cast<double>(d[i]);
    return e;
}

// One row's loss on a batch and dloss/dV into gv (K floats). xt: K x B transposed batch;
// xrows[i]: batch row i. reg_on: regulariser active with (lambda, beta). Returns the row's
// reconstruction loss sum_b d_b^2 / B and adds the row's regulariser to *reg (if reg_on).
inline double row_gradient(const grid& g, std::size_t j, std::size_t b, const float* delta, const float* h,
                           const float* dhdv, const std::int16_t* base, const float* xt, const float* const* xrows,
                           bool reg_on, float lambda, float beta, float* gv, double* reg) {
    const std::size_t k = g.k;
    float d[max_batch];
    const double e = row_outputs(k, b, delta, xt, d);
    const float c = 2.0f / static_cast<float>(b);
    for (std::size_t t = 0; t < k; ++t) gv[t] = 0.0f;
    for (std::size_t i = 0; i < b; ++i) {  // dloss/dw~ = 2 / B sum_b d_b x_b, in increasing b
        const float ci = c * d[i];
        const float* xr = xrows[i];
        for (std::size_t t = 0; t < k; ++t) gv[t] += ci * xr[t];
    }
    double r = 0.0;
    g.for_each_segment(j, [&](std::size_t p, std::size_t k0, std::size_t k1) {
        const float s = g.scales[p];
        const float lo = static_cast<float>(g.qmin), hi = static_cast<float>(g.qmax);
        for (std::size_t t = k0; t < k1; ++t) {
            const float q = static_cast<float>(base[t]) + h[t];
            float dh = q >= lo && q <= hi ? gv[t] * s : 0.0f;
            if (reg_on) {
                const float u = 2.0f * h[t] - 1.0f;
                const float au = std::fabs(u);
                const float pw = std::pow(au, beta - 1.0f);  // beta >= 1: finite, pow(0, 0) = 1
                r += static_cast<double>(1.0f - pw * au);
                const float du = u > 0.0f ? 1.0f : u < 0.0f ? -1.0f : 0.0f;
                dh += -2.0f * lambda * beta * du * pw;
            }
            gv[t] = dh * dhdv[t];
        }
    });
    if (reg_on) *reg += static_cast<double>(lambda) * r;
    return e / static_cast<double>(b);
}

// splitmix64: the batch order's random numbers, identical on every platform.
struct splitmix64 {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
};

inline void shuffle(std::vector<std::size_t>& order, splitmix64& rng) {
    for (std::size_t i = order.size(); i > 1; --i) {
        const std::size_t r = static_cast<std::size_t>(rng.next() % i);
        const std::size_t tmp = order[i - 1];
        order[i - 1] = order[r];
        order[r] = tmp;
    }
}

// Transposes rows idx[0..b) of x (rows x K) into xt (K x b) and records the row pointers.
inline void gather(std::size_t k, const float* x, const std::size_t* idx, std::size_t b, float* xt,
                   const float** xrows) {
    for (std::size_t i = 0; i < b; ++i) {
        const float* xr = x + idx[i] * k;
        xrows[i] = xr;
        for (std::size_t t = 0; t < k; ++t) xt[t * b + i] = xr[t];
    }
}

inline float beta_at(const adaround_options& o, std::size_t it) {
    const double total = static_cast<double>(o.iterations);
    const double warm_end = static_cast<double>(o.warm_start) * total;
    const double rel = (static_cast<double>(it) - warm_end) / (total - warm_end);
    const double span_b = static_cast<double>(o.beta_start) - static_cast<double>(o.beta_end);
    const double pi = 3.14159265358979323846;
    const double b = o.schedule == adaround_beta_schedule::cosine
                         ? static_cast<double>(o.beta_end) + 0.5 * span_b * (1.0 + std::cos(rel * pi))
                         : static_cast<double>(o.beta_end) + span_b * (1.0 - rel > 0.0 ? 1.0 - rel : 0.0);
    return static_cast<float>(b);
}
inline bool regularised(const adaround_options& o, std::size_t it) {
    return static_cast<double>(it) >= static_cast<double>(o.warm_start) * static_cast<double>(o.iterations);
}

// Checks of the layer arguments shared by adaround and adaround_objective; fills the grid's
// shape and granularity.
template <class Scheme>
status check_layer(const Scheme& s, std::size_t n, std::size_t k, span<const float> w, std::size_t rows,
                   span<const float> x, grid& g, quant_layout& lay) {
    static_assert(Scheme::format::bits <= 8, "lowbit::ptq::adaround: weight formats of at most 8 bits");
    LOWBIT_DETAIL_TRY(s.validate());
    LOWBIT_DETAIL_CHECK(s.granularity() == lowbit::granularity::per_tensor || s.axis() < 2, errc::out_of_range,
                        "axis", s.axis(), "must be 0 or 1 for weights [N, K]");
    LOWBIT_DETAIL_CHECK(k == 0 || n <= std::numeric_limits<std::size_t>::max() / k, errc::overflow, "n", n,
                        "N * K overflows size_t");
    LOWBIT_DETAIL_CHECK(w.size() == n * k, errc::size_mismatch, "w.size()", w.size(), "must be N * K");
    LOWBIT_DETAIL_CHECK(rows > 0, errc::invalid_argument, "rows", rows, "must be > 0 (no calibration data)");
    LOWBIT_DETAIL_CHECK(k == 0 || rows <= std::numeric_limits<std::size_t>::max() / k, errc::overflow, "rows", rows,
                        "rows * K overflows size_t");
    LOWBIT_DETAIL_CHECK(x.size() == rows * k, errc::size_mismatch, "x.size()", x.size(), "must be rows * K");
    for (std::size_t i = 0; i < w.size(); ++i)
        LOWBIT_DETAIL_CHECK(std::isfinite(w[i]), errc::invalid_argument, "w", i, "must be finite (index of the first bad weight)");
    for (std::size_t i = 0; i < x.size(); ++i)
        LOWBIT_DETAIL_CHECK(std::isfinite(x[i]), errc::invalid_argument, "x", i, "must be finite (index of the first bad value)");
    const result<quant_layout> l = make_layout(s, shape{n, k});
    LOWBIT_DETAIL_TRY(l.status());
    lay = *l;
    g.n = n;
    g.k = k;
    g.gran = s.granularity();
    g.axis = s.axis();
    g.group = lay.group_size;
    g.qmin = s.qmin();
    g.qmax = s.qmax();
    g.divide = s.profile() == profile::tflite;
    return {};
}

inline status check_options(const adaround_options& o) {
    LOWBIT_DETAIL_CHECK(o.batch_rows >= 1 && o.batch_rows <= max_batch, errc::invalid_argument, "batch_rows",
                        o.batch_rows, "must be in [1, 256]");
    LOWBIT_DETAIL_CHECK(std::isfinite(o.reg_param) && o.reg_param >= 0.0f, errc::invalid_argument, "reg_param",
                        o.reg_param, "must be finite and >= 0");
    LOWBIT_DETAIL_CHECK(std::isfinite(o.beta_end) && o.beta_end >= 1.0f, errc::invalid_argument, "beta_end",
                        o.beta_end, "must be finite and >= 1");
    LOWBIT_DETAIL_CHECK(std::isfinite(o.beta_start) && o.beta_start >= o.beta_end, errc::invalid_argument,
                        "beta_start", o.beta_start, "must be finite and >= beta_end");
    LOWBIT_DETAIL_CHECK(o.warm_start >= 0.0f && o.warm_start <= 1.0f, errc::invalid_argument, "warm_start",
                        o.warm_start, "must be in [0, 1]");
    LOWBIT_DETAIL_CHECK(std::isfinite(o.learning_rate) && o.learning_rate > 0.0f, errc::invalid_argument,
                        "learning_rate", o.learning_rate, "must be finite and > 0");
    LOWBIT_DETAIL_CHECK(o.adam_beta1 >= 0.0f && o.adam_beta1 < 1.0f, errc::invalid_argument, "adam_beta1",
                        o.adam_beta1, "must be in [0, 1)");
    LOWBIT_DETAIL_CHECK(o.adam_beta2 >= 0.0f && o.adam_beta2 < 1.0f, errc::invalid_argument, "adam_beta2",
                        o.adam_beta2, "must be in [0, 1)");
    LOWBIT_DETAIL_CHECK(std::isfinite(o.adam_eps) && o.adam_eps > 0.0f, errc::invalid_argument, "adam_eps",
                        o.adam_eps, "must be finite and > 0");
    return {};
}

// Per-parameter min / max of the weights, then lowbit's choose_qparams (the RTN grid).
template <class Scheme>
status weight_qparams(const Scheme& s, const quant_layout& lay, span<const float> w, std::vector<float>& scales,
                      std::vector<std::int32_t>& zero_points) {
    std::vector<float> mins(lay.param_count, std::numeric_limits<float>::infinity());
    std::vector<float> maxs(lay.param_count, -std::numeric_limits<float>::infinity());
    for (std::size_t i = 0; i < w.size(); ++i) {
        const std::size_t p = lay.param_index(i);
        mins[p] = w[i] < mins[p] ? w[i] : mins[p];
        maxs[p] = w[i] > maxs[p] ? w[i] : maxs[p];
    }
    scales.assign(lay.param_count, 1.0f);
    zero_points.assign(lay.param_count, 0);
    return choose_qparams(s, span<const float>(mins), span<const float>(maxs), span<float>(scales),
                          span<std::int32_t>(zero_points));
}

}  // namespace adaround_impl
}  // namespace detail

/// The AdaRound objective on one batch (the loss of the file comment, with the regulariser
/// when beta > 0, without it when beta == 0) at V, and its gradient with respect to V: the
/// same row routines the optimiser uses, exposed for gradient checks and for callers with
/// their own optimiser. w: [N, K]; xb: batch_rows x K (1 to 256 rows); v, grad_v: N * K;
/// (scales, zero_points): the grid, e.g. from adaround() (zero_points required, one per
/// parameter). Errors: as adaround, plus sizes of v / grad_v / the grid, bad qparams, beta
/// in (0, 1) or non-finite, reg_param negative.
template <class Scheme>
result<double> adaround_objective(const Scheme& s, std::size_t n, std::size_t k, span<const float> w,
                                  std::size_t batch_rows, span<const float> xb, span<const float> scales,
                                  span<const std::int32_t> zero_points, span<const float> v, float reg_param,
                                  float beta, span<float> grad_v) {
    namespace ai = detail::adaround_impl;
    ai::grid g;
    quant_layout lay;
    LOWBIT_DETAIL_TRY(ai::check_layer(s, n, k, w, batch_rows, xb, g, lay));
    LOWBIT_DETAIL_CHECK(batch_rows <= ai::max_batch, errc::invalid_argument, "batch_rows", batch_rows,
                        "must be in [1, 256]");
    LOWBIT_DETAIL_TRY(lowbit::detail::check_qparams_view(s, lay, qparams_view{scales, zero_points}));
    LOWBIT_DETAIL_CHECK(zero_points.size() == scales.size(), errc::size_mismatch, "zero_points.size()",
                        zero_points.size(), "must equal scales.size()");
    LOWBIT_DETAIL_CHECK(v.size() == n * k, errc::size_mismatch, "v.size()", v.size(), "must be N * K");
    LOWBIT_DETAIL_CHECK(grad_v.size() == n * k, errc::size_mismatch, "grad_v.size()", grad_v.size(), "must be N * K");
    LOWBIT_DETAIL_CHECK(std::isfinite(reg_param) && reg_param >= 0.0f, errc::invalid_argument, "reg_param",
                        reg_param, "must be finite and >= 0");
    LOWBIT_DETAIL_CHECK(beta == 0.0f || (std::isfinite(beta) && beta >= 1.0f), errc::invalid_argument, "beta", beta,
                        "must be 0 (no regulariser) or finite and >= 1");
    g.scales = scales.data();
    g.zero_points = zero_points.data();
    std::vector<std::int16_t> base(k);
    std::vector<float> h(k), dhdv(k), delta(k), xt(k * batch_rows);
    std::vector<const float*> xrows(batch_rows);
    std::vector<std::size_t> idx(batch_rows);
    for (std::size_t i = 0; i < batch_rows; ++i) idx[i] = i;
    if (k > 0) ai::gather(k, xb.data(), idx.data(), batch_rows, xt.data(), xrows.data());
    double loss = 0.0, reg = 0.0;
    for (std::size_t j = 0; j < n; ++j) {
        const float* wr = w.data() + j * k;
        g.for_each_segment(j, [&](std::size_t p, std::size_t k0, std::size_t k1) {
            for (std::size_t t = k0; t < k1; ++t) base[t] = ai::floor_code(g, wr[t], p);
        });
        ai::soft_row(g, j, wr, base.data(), v.data() + j * k, h.data(), dhdv.data(), delta.data());
        loss += ai::row_gradient(g, j, batch_rows, delta.data(), h.data(), dhdv.data(), base.data(), xt.data(),
                                 xrows.data(), beta != 0.0f, reg_param, beta, grad_v.data() + j * k, &reg);
    }
    return loss + reg;
}

/// AdaRound of one linear layer's weights (see the file comment).
///
/// s: weight scheme, per_tensor, per_channel(0) (one grid per output row, the usual choice),
///    per_channel(1) or per_group(axis 0 or 1, group_size dividing that dimension); format of
///    at most 8 bits (s4 / u4 are the target). The grid is choose_qparams of each channel's /
///    group's weight min / max (the same grid as round-to-nearest with lowbit's observers).
/// w: N x K row-major (torch.nn.Linear.weight), finite. x: rows x K calibration inputs,
///    finite, rows > 0. (The bias does not enter: it cancels in the output error.)
/// scales, zero_points: out, one per parameter of the layout (layout.hpp: N for per_channel(0),
///    N * K / group_size for per_group(1, group_size)).
/// q: out, the codes in the format's storage (Format::storage_size(N * K); s4 / u4 packed two
///    per byte as ref::quantize), so ref::dequantize and the int4 GEMM take them directly.
/// w_hat: out, empty or N * K: the dequantized weights float(q - z) * s.
///
/// Returns a report (calibration output MSE of RTN and of the result, ...). Edge behaviour:
/// every calibration value 0 -> no optimisation, RTN codes (report.zero_activations); a
/// calibration input channel that is constant or 0 is not special (its weights get only the
/// regulariser's gradient if it is 0, i.e. round to nearest); a weight channel / group with
/// zero range keeps RTN's codes exactly (its soft weight equals the weight; the loss gradient
/// is 0 there); N = 0 or K = 0 returns at once. Nothing is NaN for finite input. Errors
/// (nothing written): invalid scheme or options (each named), axis > 1, sizes, rows == 0, a
/// non-finite w or x (named by index), group_size not dividing the axis.
template <class Scheme>
result<adaround_report> adaround(const Scheme& s, std::size_t n, std::size_t k, span<const float> w, std::size_t rows,
                                 span<const float> x, span<float> scales, span<std::int32_t> zero_points,
                                 span<typename Scheme::storage_type> q, span<float> w_hat,
                                 const adaround_options& opt = {}) {
    namespace ai = detail::adaround_impl;
    using Format = typename Scheme::format;
    ai::grid g;
    quant_layout lay;
    LOWBIT_DETAIL_TRY(ai::check_layer(s, n, k, w, rows, x, g, lay));
    LOWBIT_DETAIL_TRY(ai::check_options(opt));
    const std::size_t nk = n * k;
    LOWBIT_DETAIL_CHECK(scales.size() == lay.param_count, errc::size_mismatch, "scales.size()", scales.size(),
                        "must equal the layout's parameter count");
    LOWBIT_DETAIL_CHECK(zero_points.size() == lay.param_count, errc::size_mismatch, "zero_points.size()",
                        zero_points.size(), "must equal the layout's parameter count");
    LOWBIT_DETAIL_CHECK(q.size() == Format::storage_size(nk), errc::size_mismatch, "q.size()", q.size(),
                        "must be Format::storage_size(N * K)");
    LOWBIT_DETAIL_CHECK(w_hat.empty() || w_hat.size() == nk, errc::size_mismatch, "w_hat.size()", w_hat.size(),
                        "must be 0 or N * K");
    std::vector<float> sc;
    std::vector<std::int32_t> zp;
    LOWBIT_DETAIL_TRY(ai::weight_qparams(s, lay, w, sc, zp));
    g.scales = sc.data();
    g.zero_points = zp.data();

    adaround_report rep;
    // codes: RTN (the scheme's rounding) and the floor base
    std::vector<std::int16_t> rtn(nk), base(nk);
    for (std::size_t j = 0; j < n; ++j)
        g.for_each_segment(j, [&](std::size_t p, std::size_t k0, std::size_t k1) {
            const element_quantizer e = element_quantizer::make(s, qparams{sc[p], zp[p]});
            for (std::size_t t = k0; t < k1; ++t) {
                const std::size_t i = j * k + t;
                rtn[i] = static_cast<std::int16_t>(e.quantize(w[i], i));
                base[i] = ai::floor_code(g, w[i], p);
            }
        });
    bool any = false;
    for (std::size_t i = 0; i < x.size() && !any; ++i) any = x[i] != 0.0f;
    rep.zero_activations = !any;

    std::vector<std::int16_t> codes(rtn);
    std::vector<float> h;
    if (any && nk > 0) {
        std::vector<float> v(nk), m1(nk, 0.0f), m2(nk, 0.0f), dhdv(nk), delta(nk);
        h.resize(nk);
        for (std::size_t j = 0; j < n; ++j)
            g.for_each_segment(j, [&](std::size_t p, std::size_t k0, std::size_t k1) {
                for (std::size_t t = k0; t < k1; ++t) {
                    const std::size_t i = j * k + t;
                    const float r = g.ratio(w[i], p);
                    float frac = r - std::floor(r);  // in [0, 1]; 1 when r is just below an integer
                    frac = frac < 0.0f ? 0.0f : frac > 1.0f ? 1.0f : frac;
                    v[i] = ai::initial_v(frac);
                }
            });
        for (std::size_t j = 0; j < n; ++j)
            ai::soft_row(g, j, w.data() + j * k, base.data() + j * k, v.data() + j * k, h.data() + j * k,
                         dhdv.data() + j * k, delta.data() + j * k);
        const std::size_t b = opt.batch_rows < rows ? opt.batch_rows : rows;
        std::vector<std::size_t> order(rows);
        for (std::size_t i = 0; i < rows; ++i) order[i] = i;
        ai::splitmix64 rng{opt.seed};
        ai::shuffle(order, rng);
        std::size_t pos = 0;
        std::vector<float> xt(k * b), gv(k);
        std::vector<const float*> xrows(b);
        double pow1 = 1.0, pow2 = 1.0;
        const float b1 = opt.adam_beta1, b2 = opt.adam_beta2;
        for (std::size_t it = 0; it < opt.iterations; ++it) {
            if (pos + b > rows) {
                ai::shuffle(order, rng);
                pos = 0;
            }
            ai::gather(k, x.data(), order.data() + pos, b, xt.data(), xrows.data());
            pos += b;
            const bool reg_on = ai::regularised(opt, it) && opt.reg_param > 0.0f;
            const float beta = reg_on ? ai::beta_at(opt, it) : 0.0f;
            pow1 *= static_cast<double>(b1);
            pow2 *= static_cast<double>(b2);
            // torch.optim.Adam: V -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
            const float step = static_cast<float>(static_cast<double>(opt.learning_rate) / (1.0 - pow1));
            const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(1.0 - pow2));
            double loss = 0.0, reg = 0.0;
            for (std::size_t j = 0; j < n; ++j) {
                const std::size_t o = j * k;
                loss += ai::row_gradient(g, j, b, delta.data() + o, h.data() + o, dhdv.data() + o, base.data() + o,
                                         xt.data(), xrows.data(), reg_on, opt.reg_param, beta, gv.data(), &reg);
                for (std::size_t t = 0; t < k; ++t) {
                    const float gt = gv[t];
                    float& ma = m1[o + t];
                    float& va = m2[o + t];
                    ma = b1 * ma + (1.0f - b1) * gt;
                    va = b2 * va + (1.0f - b2) * gt * gt;
                    v[o + t] -= step * ma / (std::sqrt(va) * inv_sqrt_bc2 + opt.adam_eps);
                }
                ai::soft_row(g, j, w.data() + o, base.data() + o, v.data() + o, h.data() + o, dhdv.data() + o,
                             delta.data() + o);
            }
            rep.last_batch_loss = loss;
            rep.last_round_loss = reg;
        }
        rep.iterations = opt.iterations;
        for (std::size_t i = 0; i < nk; ++i) {
            codes[i] = static_cast<std::int16_t>(g.clamp(base[i] + (h[i] >= 0.5f ? 1 : 0)));
            rep.soft_weights += h[i] > 0.0f && h[i] < 1.0f ? 1u : 0u;
        }
    }

    // calibration output error per row, of RTN and of the learned codes, in chunks of rows
    std::vector<double> err_rtn(n, 0.0), err_learned(n, 0.0);
    if (nk > 0) {
        const std::size_t chunk = ai::max_batch;
        std::vector<float> xt(k * chunk), dr(k), dl(k);
        std::vector<const float*> xrows(chunk);
        std::vector<std::size_t> idx(chunk);
        float d[ai::max_batch];
        for (std::size_t r0 = 0; r0 < rows; r0 += chunk) {
            const std::size_t cb = rows - r0 < chunk ? rows - r0 : chunk;
            for (std::size_t i = 0; i < cb; ++i) idx[i] = r0 + i;
            ai::gather(k, x.data(), idx.data(), cb, xt.data(), xrows.data());
            for (std::size_t j = 0; j < n; ++j) {
                g.for_each_segment(j, [&](std::size_t p, std::size_t k0, std::size_t k1) {
                    for (std::size_t t = k0; t < k1; ++t) {
                        const std::size_t i = j * k + t;
                        dr[t] = g.dequantize(rtn[i], p) - w[i];
                        dl[t] = g.dequantize(codes[i], p) - w[i];
                    }
                });
                err_rtn[j] += ai::row_outputs(k, cb, dr.data(), xt.data(), d);
                err_learned[j] += ai::row_outputs(k, cb, dl.data(), xt.data(), d);
            }
        }
    }
    double sum_rtn = 0.0, sum_learned = 0.0, sum = 0.0;
    for (std::size_t j = 0; j < n; ++j) {
        sum_rtn += err_rtn[j];
        sum_learned += err_learned[j];
        if (opt.keep_better_rows && err_rtn[j] < err_learned[j]) {
            ++rep.rows_kept_rtn;
            for (std::size_t t = 0; t < k; ++t) codes[j * k + t] = rtn[j * k + t];
            sum += err_rtn[j];
        } else {
            sum += err_learned[j];
        }
    }
    const double count = static_cast<double>(rows) * static_cast<double>(n);
    if (n > 0) {
        rep.mse_rtn = sum_rtn / count;
        rep.mse_learned = sum_learned / count;
        rep.mse = sum / count;
    }
    for (std::size_t i = 0; i < nk; ++i) rep.codes_changed += codes[i] != rtn[i] ? 1u : 0u;

    // outputs
    for (std::size_t p = 0; p < lay.param_count; ++p) {
        scales[p] = sc[p];
        zero_points[p] = zp[p];
    }
    for (std::size_t j = 0; j < n; ++j)
        g.for_each_segment(j, [&](std::size_t p, std::size_t k0, std::size_t k1) {
            for (std::size_t t = k0; t < k1; ++t) {
                const std::size_t i = j * k + t;
                lowbit::detail::store<Format>(q.data(), i, codes[i]);
                if (!w_hat.empty()) w_hat[i] = g.dequantize(codes[i], p);
            }
        });
    return rep;
}

}  // namespace ptq
}  // namespace lowbit

#endif  // LOWBIT_PTQ_ADAROUND_HPP
