// lowbit/ptq/awq.hpp: AWQ, activation-aware weight quantization (Lin et al., "AWQ:
// Activation-aware Weight Quantization for LLM Compression and Acceleration", MLSys 2024),
// for weight-only low-bit (int4) weights, per group (g = 128 by default in AWQ; 32, 64 too)
// or per output channel.
//
// A few input channels carry large activations; their weights matter most. AWQ scales weight
// column j up by s_j before quantizing (so it gets relatively finer steps) and divides the
// input channel by s_j (folded into the previous op, channel_scale.hpp). s comes from a grid
// search over one exponent (auto_scale.py, _search_module_scale):
//
//   for a = i / n_grid, i = 0 .. n_grid - 1 (n_grid 20):
//     s_j = max(mean_r |X_rj|^a, 1e-4);  s = s / sqrt(max(s) * min(s))
//     error(a) = mean over rows and outputs of (X W^T - (X / s) Q(W * s)^T)^2
//   keep the a with the smallest error (the first on ties; a = 0 is s = 1, i.e. RTN)
//
// Q is round-to-nearest with per-group min/max qparams (clip_search.hpp's
// weight_minmax_qparams: lowbit's choose_qparams and fake-quantize for the given scheme).
// Then the clipping search (clip_search.hpp, AWQ's auto_clip) picks per-group ranges of W * s
// on the scaled activations X / s. The result: input scales s (K), and per group a clip ratio
// and the qparams of W * s; the deployed layer computes (X / s) Q(W * s)^T.
//
// The error is computed exactly as written, in double: error(a) = ||X D^T||^2 / (rows N) with
// D = W - Q(W * s) / s (float arithmetic), X D^T from exact float products summed in double
// in a fixed order (8 interleaved partial sums per dot product, k-blocks of 256, then in
// order), squares added with std::fma: the same value on every machine and -O.
//
// Edges: channels with mean |X_j| = 0 (dead in calibration) get AWQ's floor 1e-4 before the
// normalisation (their weights are the least salient; reported as dead_channels). All-zero
// activations make every error 0, so a = 0: s = 1 and, the clip search's errors being 0 too,
// ratio 1: exactly RTN. A grid point whose W * s or X / s overflows float is skipped (error
// +inf, counted). A constant weight group c gets choose_qparams' range [min(c, 0), max(c, 0)]
// (affine: c lands on qmin or qmax exactly; symmetric: torch's scale |c| / ((qmax - qmin) / 2)
// saturates a positive c at qmax, e.g. s4: 7 / 7.5 of c); an all-zero group stays zero.
#ifndef LOWBIT_PTQ_AWQ_HPP
#define LOWBIT_PTQ_AWQ_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "../core/fake_quantize.hpp"
#include "../core/span.hpp"
#include "../core/status.hpp"
#include "channel_scale.hpp"
#include "clip_search.hpp"

namespace lowbit {
namespace ptq {

namespace detail_awq {

constexpr std::size_t kblock = 256;  // k-block (multiple of 8)
constexpr std::size_t nblock = 64;   // output block (multiple of 4)

#if defined(__GNUC__)
typedef double v8d __attribute__((vector_size(64)));
#endif

// The 4 x 4 dot products of rows x[0..3] and d[0..3] (stride ld, len a multiple of 8): out[a * 4
// + b] = sum over lanes l (in order) of the lane sum of x[a][t] * d[b][t] over t = l mod 8 (in
// t order). Products of floats are exact in double, so contraction into fma changes nothing.
inline void dot_4x4(const double* x, const double* d, std::size_t ld, std::size_t len, double* out) noexcept {
#if defined(__GNUC__)
    // sixteen named accumulators (an array would live in memory at -O2)
    v8d c00{}, c01{}, c02{}, c03{}, c10{}, c11{}, c12{}, c13{}, c20{}, c21{}, c22{}, c23{}, c30{}, c31{}, c32{}, c33{};
    for (std::size_t t = 0; t < len; t += 8) {
        v8d x0, x1, x2, x3, d0, d1, d2, d3;
        std::memcpy(&x0, x + t, sizeof(v8d));
        std::memcpy(&x1, x + ld + t, sizeof(v8d));
        std::memcpy(&x2, x + 2 * ld + t, sizeof(v8d));
        std::memcpy(&x3, x + 3 * ld + t, sizeof(v8d));
        std::memcpy(&d0, d + t, sizeof(v8d));
        std::memcpy(&d1, d + ld + t, sizeof(v8d));
        std::memcpy(&d2, d + 2 * ld + t, sizeof(v8d));
        std::memcpy(&d3, d + 3 * ld + t, sizeof(v8d));
        c00 += x0 * d0, c01 += x0 * d1, c02 += x0 * d2, c03 += x0 * d3;
        c10 += x1 * d0, c11 += x1 * d1, c12 += x1 * d2, c13 += x1 * d3;
        c20 += x2 * d0, c21 += x2 * d1, c22 += x2 * d2, c23 += x2 * d3;
        c30 += x3 * d0, c31 += x3 * d1, c32 += x3 * d2, c33 += x3 * d3;
    }
    const v8d acc[16] = {c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33};
    for (std::size_t i = 0; i < 16; ++i) {
        double s = 0.0;
        for (int l = 0; l < 8; ++l) s += acc[i][l];
        out[i] = s;
    }
#else
    double acc[16][8] = {};
    for (std::size_t t = 0; t < len; t += 8)
        for (std::size_t a = 0; a < 4; ++a)
            for (std::size_t b = 0; b < 4; ++b)
                for (std::size_t l = 0; l < 8; ++l) acc[a * 4 + b][l] += x[a * ld + t + l] * d[b * ld + t + l];
    for (std::size_t i = 0; i < 16; ++i) {
        double s = 0.0;
        for (std::size_t l = 0; l < 8; ++l) s += acc[i][l];
        out[i] = s;
    }
#endif
}

// Scratch of output_sq_error, reused across calls.
struct error_scratch {
    std::vector<double> c, xb, db;
};

// sum over r < rows, o < n of (sum_k x[r][k] d[o][k])^2 (x rows x K, d n x K, f32), in double.
inline double output_sq_error(std::size_t rows, std::size_t n, std::size_t k, const float* x, const float* d,
                              error_scratch& sc) {
    const std::size_t rp = (rows + 3) / 4 * 4, np = (n + 3) / 4 * 4;
    sc.c.assign(rp * np, 0.0);
    sc.xb.resize(rp * kblock);
    sc.db.resize(nblock * kblock);
    for (std::size_t k0 = 0; k0 < k; k0 += kblock) {
        const std::size_t kl = k - k0 < kblock ? k - k0 : kblock;
        const std::size_t kp = (kl + 7) / 8 * 8;
        for (std::size_t r = 0; r < rp; ++r)  // X block as double, zero padded
            for (std::size_t t = 0; t < kp; ++t)
                sc.xb[r * kp + t] = r < rows && t < kl ? static_cast<double>(x[r * k + k0 + t]) : 0.0;
        for (std::size_t o0 = 0; o0 < np; o0 += nblock) {
            const std::size_t ol = np - o0 < nblock ? np - o0 : nblock;
            for (std::size_t o = 0; o < ol; ++o)
                for (std::size_t t = 0; t < kp; ++t)
                    sc.db[o * kp + t] = o0 + o < n && t < kl ? static_cast<double>(d[(o0 + o) * k + k0 + t]) : 0.0;
            for (std::size_t r = 0; r < rp; r += 4)
                for (std::size_t o = 0; o < ol; o += 4) {
                    double out[16];
                    dot_4x4(sc.xb.data() + r * kp, sc.db.data() + o * kp, kp, kp, out);
                    for (std::size_t a = 0; a < 4; ++a)
                        for (std::size_t b = 0; b < 4; ++b) sc.c[(r + a) * np + o0 + o + b] += out[a * 4 + b];
                }
        }
    }
    double e = 0.0;
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t o = 0; o < n; ++o) e = std::fma(sc.c[r * np + o], sc.c[r * np + o], e);
    return e;
}

// AWQ's scales for exponent a from the channel means (double), rounded once to float.
inline void grid_scales(span<const float> mean, double a, float min_scale, std::vector<float>& s) {
    const std::size_t k = mean.size();
    std::vector<double> v(k);
    double mx = 0.0, mn = std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < k; ++j) {
        double t = std::pow(static_cast<double>(mean[j]), a);  // pow(0, 0) = 1
        t = t > static_cast<double>(min_scale) ? t : static_cast<double>(min_scale);
        v[j] = t;
        mx = t > mx ? t : mx;
        mn = t < mn ? t : mn;
    }
    const double norm = std::sqrt(mx * mn);
    for (std::size_t j = 0; j < k; ++j) s[j] = static_cast<float>(v[j] / norm);
}

inline bool all_finite(const std::vector<float>& a) {
    for (const float v : a)
        if (!std::isfinite(v)) return false;
    return true;
}

// D = W - Q(W * s) / s, ws = W * s (finite) with the given per-group qparams.
template <class Scheme>
void error_matrix(const Scheme& s, std::size_t n, std::size_t k, span<const float> w, const std::vector<float>& sc,
                  span<const float> qs, span<const std::int32_t> qz, const std::vector<float>& ws,
                  std::vector<float>& dm) {
    const weight_groups g = *make_weight_groups(s, n, k);
    detail_clip::fake_quantize_all(s, g, k, ws.data(), qs.data(), qz.data(), dm.data());
    for (std::size_t o = 0; o < n; ++o)
        for (std::size_t j = 0; j < k; ++j) dm[o * k + j] = w[o * k + j] - dm[o * k + j] / sc[j];
}

}  // namespace detail_awq

/// AWQ parameters; defaults are AWQ's (auto_scale n_grid 20, scales.clamp(min=1e-4),
/// apply_clip after the scales, auto_clip's defaults in clip_search_options).
struct awq_options {
    std::size_t n_grid = 20;       ///< exponents a = i / n_grid, i < n_grid; >= 1
    float min_scale = 1e-4f;       ///< floor of mean|X_j|^a before normalisation; finite, > 0
    bool clip = true;              ///< run clip_search on W * s, X / s after the scale search
    clip_search_options clip_options{};
    span<double> grid_errors{};    ///< optional out: n_grid entries, error(a_i) (+inf if skipped)
};

/// What awq_search found. Errors are calibration output MSEs (per output element, mean over
/// rows x N) of the whole layer, against the f32 layer X W^T.
struct awq_report {
    float ratio = 0.0f;                   ///< chosen exponent a
    std::size_t ratio_index = 0;          ///< its grid index
    double error_rtn = 0.0;               ///< min/max RTN of W (a = 0, s = 1)
    double error_scaled = 0.0;            ///< with the chosen scales, min/max ranges
    double error_final = 0.0;             ///< with the chosen scales and clip ranges
    std::size_t dead_channels = 0;        ///< input channels with mean |X_j| = 0
    std::size_t skipped_grid_points = 0;  ///< grid points whose W * s or X / s overflow
    clip_search_report clip{};            ///< of the clip search (zeros if clip is off)
};

/// AWQ scale search + clip search for W (N x K, finite) on calibration activations x (rows x
/// K, finite, rows > 0) under the weight scheme `s` (per_group(1, g) or per_channel(0), see
/// clip_search.hpp). Writes input_scales (K: multiply weight column j, divide input channel
/// j), clip ratios, scales and zero_points (one per group of W * s). awq_effective_weights
/// turns them into the f32 weights the quantized layer computes with.
/// Cost per grid point: one RTN of N K weights and rows N K multiply-adds; then the clip
/// search's. Allocates 2 N K + rows K floats and about rows (N + 256) doubles.
/// Errors (nothing written): scheme / groups; sizes; rows == 0 ("rows"); non-finite w or x;
/// n_grid == 0; min_scale not finite and > 0; grid_errors neither empty nor n_grid long;
/// clip options as clip_search.
template <class Scheme>
result<awq_report> awq_search(const Scheme& s, std::size_t n, std::size_t k, std::size_t rows, span<const float> w,
                              span<const float> x, span<float> input_scales, span<float> ratios,
                              span<float> scales, span<std::int32_t> zero_points, const awq_options& opt = {}) {
    const result<weight_groups> gr = make_weight_groups(s, n, k);
    LOWBIT_DETAIL_TRY(gr.status());
    const weight_groups g = *gr;
    LOWBIT_DETAIL_CHECK(rows > 0, errc::invalid_argument, "rows", rows, "must be > 0 (no calibration data)");
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_matrix(n, k, w.size(), "w.size()"));
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_matrix(rows, k, x.size(), "x.size()"));
    LOWBIT_DETAIL_CHECK(input_scales.size() == k, errc::size_mismatch, "input_scales.size()", input_scales.size(),
                        "must equal K");
    LOWBIT_DETAIL_CHECK(ratios.size() == g.count, errc::size_mismatch, "ratios.size()", ratios.size(),
                        "must be the number of weight groups (N * K / g)");
    LOWBIT_DETAIL_TRY(detail_clip::check_qparams_out<Scheme>(g, scales, zero_points));
    LOWBIT_DETAIL_CHECK(opt.n_grid > 0, errc::invalid_argument, "n_grid", opt.n_grid, "must be > 0");
    LOWBIT_DETAIL_CHECK(std::isfinite(opt.min_scale) && opt.min_scale > 0.0f, errc::invalid_argument, "min_scale",
                        opt.min_scale, "must be finite and > 0");
    LOWBIT_DETAIL_CHECK(opt.grid_errors.empty() || opt.grid_errors.size() == opt.n_grid, errc::size_mismatch,
                        "grid_errors.size()", opt.grid_errors.size(), "must be 0 or n_grid");
    const clip_search_options& co = opt.clip_options;
    LOWBIT_DETAIL_CHECK(co.n_grid > 0, errc::invalid_argument, "n_grid", co.n_grid, "clip n_grid must be > 0");
    LOWBIT_DETAIL_CHECK(co.max_shrink >= 0.0f && co.max_shrink < 1.0f, errc::invalid_argument, "max_shrink",
                        co.max_shrink, "must be in [0, 1)");
    LOWBIT_DETAIL_CHECK(co.max_rows > 0, errc::invalid_argument, "max_rows", co.max_rows, "must be > 0");
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_finite(w, "w"));
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_finite(x, "x"));

    awq_report rep;
    std::vector<float> mean(k), amax(k, 0.0f);
    (void)column_absmean(rows, k, x, mean);
    (void)column_absmax(rows, k, x, amax);
    for (const float m : mean) rep.dead_channels += m == 0.0f ? 1 : 0;

    const double denom = static_cast<double>(rows) * static_cast<double>(n);
    std::vector<float> sc(k), best_s(k, 1.0f), ws(n * k), dm(n * k), qs(g.count);
    std::vector<std::int32_t> qz(g.count);
    detail_awq::error_scratch scratch;
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < opt.n_grid; ++i) {
        const double a = static_cast<double>(i) / static_cast<double>(opt.n_grid);
        detail_awq::grid_scales(mean, a, opt.min_scale, sc);
        bool ok = detail_awq::all_finite(sc);
        for (std::size_t j = 0; ok && j < k; ++j) ok = std::isfinite(amax[j] / sc[j]);  // X / s fits float
        double e = std::numeric_limits<double>::infinity();
        if (ok) {
            for (std::size_t o = 0; o < n; ++o)
                for (std::size_t j = 0; j < k; ++j) ws[o * k + j] = w[o * k + j] * sc[j];
            ok = detail_awq::all_finite(ws) && weight_minmax_qparams(s, n, k, ws, qs, qz).ok();
        }
        if (ok) {
            detail_awq::error_matrix(s, n, k, w, sc, qs, qz, ws, dm);
            e = detail_awq::output_sq_error(rows, n, k, x.data(), dm.data(), scratch) / denom;
        } else {
            ++rep.skipped_grid_points;
        }
        if (!opt.grid_errors.empty()) opt.grid_errors[i] = e;
        if (i == 0) rep.error_rtn = e;
        if (e < best) {
            best = e;
            rep.ratio = static_cast<float>(a);
            rep.ratio_index = i;
            best_s = sc;
        }
    }
    rep.error_scaled = best;  // finite: grid point 0 (s = 1) cannot overflow

    // clip search on W * s and X / s
    for (std::size_t o = 0; o < n; ++o)
        for (std::size_t j = 0; j < k; ++j) ws[o * k + j] = w[o * k + j] * best_s[j];
    std::vector<float> rat(g.count, 1.0f);
    if (opt.clip) {
        std::vector<float> xs(rows * k);
        (void)unscale_activation_columns(rows, k, x, best_s, xs);
        const std::size_t xrows = co.objective == clip_objective::output ? rows : 0;
        const result<clip_search_report> cr =
            clip_search(s, n, k, xrows, ws, span<const float>(xs.data(), xrows * k), rat, qs, qz, co);
        LOWBIT_DETAIL_TRY(cr.status());
        rep.clip = *cr;
    } else {
        LOWBIT_DETAIL_TRY(weight_minmax_qparams(s, n, k, ws, qs, qz));
    }
    detail_awq::error_matrix(s, n, k, w, best_s, qs, qz, ws, dm);
    rep.error_final = detail_awq::output_sq_error(rows, n, k, x.data(), dm.data(), scratch) / denom;

    for (std::size_t j = 0; j < k; ++j) input_scales[j] = best_s[j];
    for (std::size_t i = 0; i < g.count; ++i) {
        ratios[i] = rat[i];
        scales[i] = qs[i];
        zero_points[i] = qz[i];
    }
    return rep;
}

/// The f32 weights the AWQ-quantized layer computes with: out = fake_quantize(W * s) / s
/// (per column j), with the per-group qparams of W * s from awq_search (or any). The layer
/// (X / s) Q(W * s)^T equals X out^T up to float rounding. out may alias w.
/// Errors: scheme / groups; sizes; bad input scales (not finite and > 0); invalid qparams.
template <class Scheme>
status awq_effective_weights(const Scheme& s, std::size_t n, std::size_t k, span<const float> w,
                             span<const float> input_scales, span<const float> scales,
                             span<const std::int32_t> zero_points, span<float> out) {
    const result<weight_groups> g = make_weight_groups(s, n, k);
    LOWBIT_DETAIL_TRY(g.status());
    LOWBIT_DETAIL_CHECK(out.size() == w.size(), errc::size_mismatch, "out.size()", out.size(), "must equal w.size()");
    std::vector<float> ws(w.size());
    LOWBIT_DETAIL_TRY(scale_weight_columns(n, k, w, input_scales, ws));
    LOWBIT_DETAIL_TRY(ref::fake_quantize(s, shape{n, k}, qparams_view{scales, zero_points}, ws, ws));
    for (std::size_t o = 0; o < n; ++o)
        for (std::size_t j = 0; j < k; ++j) out[o * k + j] = ws[o * k + j] / input_scales[j];
    return {};
}

}  // namespace ptq
}  // namespace lowbit

#endif  // LOWBIT_PTQ_AWQ_HPP
