// lowbit/ptq/clip_search.hpp: round-to-nearest weight quantization with min/max ranges (the
// baseline every PTQ algorithm is measured against) and the MSE-optimal clipping-range search
// that shrinks those ranges.
//
// Weights W are N x K row-major (torch.nn.Linear's weight: one row per output). The weight
// scheme is lowbit's: per_group(1, g) (g consecutive inputs of one output row share a
// (scale, zero-point); g divides K; group index o * (K / g) + j / g, layout.hpp) or
// per_channel(0) (one per output row: a "group" of K). Symmetric or affine, any format.
//
// RTN: each group's qparams are choose_qparams(scheme, min, max) of its values (torch's
// MinMaxObserver arithmetic), then ref::fake_quantize. Clipping with ratio r in (0, 1] uses
// the range [r * min, r * max] instead (values outside saturate at the ends). The search
// tries r = 1 - i / n_grid for i = 0 .. floor(max_shrink * n_grid) - 1 (AWQ's auto_clip:
// n_grid 20, max_shrink 0.5, so r = 1.00, 0.95, ..., 0.55; GPTQ's quantizer MSE search uses
// grid 100, maxshrink 0.8) and keeps, per group, the r with the smallest error, the first
// (largest r) on ties, so the result is never worse than RTN on the searched objective:
//   - clip_objective::weights: sum over the group of (w - Q(w))^2 (the plain MSE clip
//     search; GPTQ uses |.|^2.4, lowbit the square);
//   - clip_objective::output: the group's share of the layer output error on calibration
//     activations X (rows x K), sum_r (sum_{j in group} x_rj (w_j - Q(w_j)))^2 (AWQ's
//     auto_clip; groups are searched independently, cross-group terms ignored, as there).
//     It is computed as d^T H_g d with H_g = X_g^T X_g over the group's columns (same value,
//     rows-independent cost). As AWQ (n_sample_token 512), at most max_rows rows are used:
//     every (rows / max_rows)-th row from row 0 when rows > max_rows.
// Numerics: single thread, fixed order; sums in double from exact float products or explicit
// std::fma, so the result does not depend on the compiler's FMA contraction.
#ifndef LOWBIT_PTQ_CLIP_SEARCH_HPP
#define LOWBIT_PTQ_CLIP_SEARCH_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../core/fake_quantize.hpp"
#include "../core/layout.hpp"
#include "../core/qparams.hpp"
#include "../core/quantize.hpp"
#include "../core/scheme.hpp"
#include "../core/span.hpp"
#include "../core/status.hpp"
#include "../kernels/fake_quantize.hpp"
#include "channel_scale.hpp"

namespace lowbit {
namespace ptq {

/// The weight groups of an N x K weight under a scheme.
struct weight_groups {
    std::size_t group_size = 0;  ///< g (K for per_channel)
    std::size_t per_row = 0;     ///< K / g
    std::size_t count = 0;       ///< N * K / g: the size of the qparams arrays
};

/// The groups of W (N x K) under `s`: per_group(1, g) with g dividing K, or per_channel(0).
/// Errors: invalid scheme; per_tensor, another axis ("axis"), g not dividing K
/// ("group_size"); N * K overflowing.
template <class Scheme>
result<weight_groups> make_weight_groups(const Scheme& s, std::size_t n, std::size_t k) {
    LOWBIT_DETAIL_TRY(s.validate());
    const result<quant_layout> l = make_layout(s, shape{n, k});
    LOWBIT_DETAIL_TRY(l.status());
    weight_groups g;
    if (s.granularity() == granularity::per_group) {
        LOWBIT_DETAIL_CHECK(s.axis() == 1, errc::invalid_argument, "axis", s.axis(),
                            "weights N x K are grouped along K: use per_group(1, g)");
        g.group_size = s.group_size();
    } else {
        LOWBIT_DETAIL_CHECK(s.granularity() == granularity::per_channel, errc::invalid_argument, "granularity",
                            static_cast<int>(s.granularity()), "must be per_group(1, g) or per_channel(0)");
        LOWBIT_DETAIL_CHECK(s.axis() == 0, errc::invalid_argument, "axis", s.axis(),
                            "per-channel weights N x K have one channel per output: use per_channel(0)");
        g.group_size = k;
    }
    g.per_row = g.group_size == 0 ? 0 : k / g.group_size;
    g.count = n * g.per_row;
    return g;
}

namespace detail_clip {

template <class Scheme>
status check_qparams_out(const weight_groups& g, span<float> scales, span<std::int32_t> zero_points) {
    LOWBIT_DETAIL_CHECK(scales.size() == g.count, errc::size_mismatch, "scales.size()", scales.size(),
                        "must be the number of weight groups (N * K / g)");
    LOWBIT_DETAIL_CHECK(zero_points.size() == g.count, errc::size_mismatch, "zero_points.size()",
                        zero_points.size(), "must be the number of weight groups (N * K / g)");
    return {};
}

// min / max of group gi's values (o = gi / per_row, columns [j0, j0 + g)).
inline void group_range(const weight_groups& g, std::size_t k, const float* w, std::size_t gi, float& mn, float& mx) {
    const float* p = w + (gi / g.per_row) * k + (gi % g.per_row) * g.group_size;
    mn = p[0];
    mx = p[0];
    for (std::size_t t = 1; t < g.group_size; ++t) {
        mn = p[t] < mn ? p[t] : mn;
        mx = p[t] > mx ? p[t] : mx;
    }
}

// The qparams of range [r * mn, r * mx] (mn <= 0 <= mx not required: choose_qparams extends).
template <class Scheme>
qparams clipped_qparams(const Scheme& s, float mn, float mx, float r) {
    return choose_qparams(s, mn * r, mx * r).value();  // finite, ordered: cannot fail
}

// Fake-quantize group gi of w into q (g values), bit-identical to ref::fake_quantize of the
// whole tensor: the SIMD per-tensor kernel on the group's contiguous values, or, for
// stochastic rounding (which reads the element's flat index), the element loop.
template <class Scheme>
void fake_quantize_group(const Scheme& s, const weight_groups& g, std::size_t k, const float* w, std::size_t gi,
                         qparams qp, float* q) {
    const std::size_t base = (gi / g.per_row) * k + (gi % g.per_row) * g.group_size;
    if (s.rounding() != rounding::stochastic) {
        (void)kernels::fake_quantize(s.per_tensor(), qp, span<const float>(w + base, g.group_size),
                                     span<float>(q, g.group_size));
        return;
    }
    const element_quantizer e = element_quantizer::make(s, qp);
    for (std::size_t t = 0; t < g.group_size; ++t) q[t] = e.dequantize(e.quantize(w[base + t], base + t));
}

// Fake-quantize all of W (N x K) with per-group qparams (checked by the caller).
template <class Scheme>
void fake_quantize_all(const Scheme& s, const weight_groups& g, std::size_t k, const float* w, const float* scales,
                       const std::int32_t* zero_points, float* out) {
    for (std::size_t gi = 0; gi < g.count; ++gi)
        fake_quantize_group(s, g, k, w, gi, qparams{scales[gi], zero_points[gi]},
                            out + (gi / g.per_row) * k + (gi % g.per_row) * g.group_size);
}

// The 8-lane loops below use fixed-size local arrays, which compilers vectorize at -O2 (no
// aliasing, constant trip count); the sums are the same at every -O.
constexpr std::size_t pad8(std::size_t v) noexcept { return (v + 7) / 8 * 8; }

// t[j] = fma(a, h[j], t[j]) for j < n (n a multiple of 8).
inline void axpy_fma(double a, const double* h, double* t, std::size_t n) noexcept {
    for (std::size_t j = 0; j < n; j += 8) {
        double hv[8], tv[8];
        std::memcpy(hv, h + j, sizeof hv);
        std::memcpy(tv, t + j, sizeof tv);
        for (std::size_t l = 0; l < 8; ++l) tv[l] = std::fma(a, hv[l], tv[l]);
        std::memcpy(t + j, tv, sizeof tv);
    }
}

// sum_j a[j] b[j] (n a multiple of 8): lane l accumulates j = l mod 8 with fma in j order, then
// the lanes are added in order.
inline double dot_fma(const double* a, const double* b, std::size_t n) noexcept {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (std::size_t j = 0; j < n; j += 8) {
        double av[8], bv[8];
        std::memcpy(av, a + j, sizeof av);
        std::memcpy(bv, b + j, sizeof bv);
        for (std::size_t l = 0; l < 8; ++l) acc[l] = std::fma(av[l], bv[l], acc[l]);
    }
    double s = 0.0;
    for (std::size_t l = 0; l < 8; ++l) s += acc[l];
    return s;
}

// h[j] += x_i * x[j] for j < n (n a multiple of 8): exact products of floats, double adds.
inline void add_outer_row(double xi, const double* x, double* h, std::size_t n) noexcept {
    for (std::size_t j = 0; j < n; j += 8) {
        double xv[8], hv[8];
        std::memcpy(xv, x + j, sizeof xv);
        std::memcpy(hv, h + j, sizeof hv);
        for (std::size_t l = 0; l < 8; ++l) hv[l] += xi * xv[l];
        std::memcpy(h + j, hv, sizeof hv);
    }
}

}  // namespace detail_clip

/// Per-group min/max qparams of W (N x K, finite) under `s` (see the file comment), the range
/// of group i multiplied by ratios[i] when ratios is non-empty (ratios in (0, 1]; 1 = RTN).
/// scales / zero_points receive make_weight_groups(s, n, k)->count entries (zero_points
/// too for symmetric schemes: the scheme's zero-point). A constant group c gets the range
/// [min(c, 0), max(c, 0)] (exact for affine schemes; a symmetric scheme's torch scale
/// |c| / ((qmax - qmin) / 2) saturates a positive c at qmax); an all-zero group {eps, zp}.
/// Errors (nothing written): scheme / groups; sizes; a non-finite weight ("w", its index); a
/// ratio outside (0, 1] ("ratios", its index).
template <class Scheme>
status weight_minmax_qparams(const Scheme& s, std::size_t n, std::size_t k, span<const float> w,
                             span<float> scales, span<std::int32_t> zero_points, span<const float> ratios = {}) {
    const result<weight_groups> g = make_weight_groups(s, n, k);
    LOWBIT_DETAIL_TRY(g.status());
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_matrix(n, k, w.size(), "w.size()"));
    LOWBIT_DETAIL_TRY(detail_clip::check_qparams_out<Scheme>(*g, scales, zero_points));
    LOWBIT_DETAIL_CHECK(ratios.empty() || ratios.size() == g->count, errc::size_mismatch, "ratios.size()",
                        ratios.size(), "must be 0 or the number of weight groups");
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_finite(w, "w"));
    for (std::size_t i = 0; i < ratios.size(); ++i)
        LOWBIT_DETAIL_CHECK(ratios[i] > 0.0f && ratios[i] <= 1.0f, errc::invalid_argument, "ratios", i,
                            "every ratio must be in (0, 1] (value is the index of the first bad one)");
    for (std::size_t gi = 0; gi < g->count; ++gi) {
        float mn = 0.0f, mx = 0.0f;
        detail_clip::group_range(*g, k, w.data(), gi, mn, mx);
        const qparams qp = detail_clip::clipped_qparams(s, mn, mx, ratios.empty() ? 1.0f : ratios[gi]);
        scales[gi] = qp.scale;
        zero_points[gi] = qp.zero_point;
    }
    return {};
}

/// Round-to-nearest weights: out = ref::fake_quantize(s, {N, K}, min/max qparams, w) (clipped
/// by ratios when given, as weight_minmax_qparams), bit for bit (computed group by group with
/// kernels::fake_quantize). out may alias w. Errors: those of
/// weight_minmax_qparams; out.size() != w.size(). Allocates the qparams (2 * groups).
template <class Scheme>
status fake_quantize_weights_minmax(const Scheme& s, std::size_t n, std::size_t k, span<const float> w,
                                   span<float> out, span<const float> ratios = {}) {
    const result<weight_groups> g = make_weight_groups(s, n, k);
    LOWBIT_DETAIL_TRY(g.status());
    LOWBIT_DETAIL_CHECK(out.size() == w.size(), errc::size_mismatch, "out.size()", out.size(), "must equal w.size()");
    std::vector<float> sc(g->count);
    std::vector<std::int32_t> zp(g->count);
    LOWBIT_DETAIL_TRY(weight_minmax_qparams(s, n, k, w, sc, zp, ratios));
    detail_clip::fake_quantize_all(s, *g, k, w.data(), sc.data(), zp.data(), out.data());
    return {};
}

/// What the clip search optimises (see the file comment).
enum class clip_objective : std::uint8_t {
    weights,  ///< squared weight error of each group
    output,   ///< the group's output error on calibration activations (AWQ auto_clip)
};

/// Clip search parameters; defaults are AWQ's auto_clip_layer (n_grid 20, max_shrink 0.5,
/// n_sample_token 512).
struct clip_search_options {
    clip_objective objective = clip_objective::output;
    std::size_t n_grid = 20;       ///< ratio step 1 / n_grid; >= 1
    float max_shrink = 0.5f;       ///< candidates floor(max_shrink * n_grid) (at least 1); in [0, 1)
    std::size_t max_rows = 512;    ///< output objective: rows used at most (subsampled by a stride); >= 1
};

/// What clip_search found. Errors are per weight element (divide by N * K); for the output
/// objective, per output element of the used rows (divide by rows_used * N) summed over groups.
struct clip_search_report {
    std::size_t candidates = 0;      ///< ratios tried per group
    std::size_t rows_used = 0;       ///< calibration rows used (output objective)
    std::size_t clipped_groups = 0;  ///< groups whose best ratio is < 1
    double error_rtn = 0.0;          ///< objective at ratio 1 (min/max RTN)
    double error_clipped = 0.0;      ///< objective at the chosen ratios (<= error_rtn)
};

/// MSE-optimal clipping range per weight group (see the file comment): writes, for each
/// group i, the chosen ratios[i] and the qparams of the clipped range (scales[i],
/// zero_points[i]; quantize with ref::quantize / ref::fake_quantize and shape {N, K}).
/// w: N x K finite weights. x: rows x K finite calibration activations, the layer's actual
/// input (for AWQ, the scaled X / s); for the weights objective rows may be 0 and x empty.
/// Zero activations (or columns of a group all zero) make every candidate's output error 0:
/// ratio 1, i.e. RTN. Cost: weights objective N K C, output objective K rows g +
/// N K g C multiply-adds (C candidates) and g^2 doubles of scratch.
/// Errors (nothing written): scheme / groups; sizes; non-finite w or x; rows == 0 with the
/// output objective ("rows"); n_grid == 0, max_shrink outside [0, 1), max_rows == 0.
template <class Scheme>
result<clip_search_report> clip_search(const Scheme& s, std::size_t n, std::size_t k, std::size_t rows,
                                       span<const float> w, span<const float> x, span<float> ratios,
                                       span<float> scales, span<std::int32_t> zero_points,
                                       const clip_search_options& opt = {}) {
    const result<weight_groups> gr = make_weight_groups(s, n, k);
    LOWBIT_DETAIL_TRY(gr.status());
    const weight_groups g = *gr;
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_matrix(n, k, w.size(), "w.size()"));
    const bool out_obj = opt.objective == clip_objective::output;
    LOWBIT_DETAIL_CHECK(!out_obj || rows > 0, errc::invalid_argument, "rows", rows,
                        "must be > 0 for the output objective (no calibration data)");
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_matrix(rows, k, x.size(), "x.size()"));
    LOWBIT_DETAIL_CHECK(ratios.size() == g.count, errc::size_mismatch, "ratios.size()", ratios.size(),
                        "must be the number of weight groups (N * K / g)");
    LOWBIT_DETAIL_TRY(detail_clip::check_qparams_out<Scheme>(g, scales, zero_points));
    LOWBIT_DETAIL_CHECK(opt.n_grid > 0, errc::invalid_argument, "n_grid", opt.n_grid, "must be > 0");
    LOWBIT_DETAIL_CHECK(opt.max_shrink >= 0.0f && opt.max_shrink < 1.0f, errc::invalid_argument, "max_shrink",
                        opt.max_shrink, "must be in [0, 1)");
    LOWBIT_DETAIL_CHECK(opt.max_rows > 0, errc::invalid_argument, "max_rows", opt.max_rows, "must be > 0");
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_finite(w, "w"));
    if (out_obj) LOWBIT_DETAIL_TRY(detail_channel_scale::check_finite(x, "x"));

    clip_search_report rep;
    std::size_t cand = static_cast<std::size_t>(std::floor(static_cast<double>(opt.max_shrink) *
                                                           static_cast<double>(opt.n_grid)));
    cand = cand == 0 ? 1 : cand;
    rep.candidates = cand;
    std::vector<float> rs(cand);
    for (std::size_t i = 0; i < cand; ++i)
        rs[i] = static_cast<float>(1.0 - static_cast<double>(i) / static_cast<double>(opt.n_grid));

    // sampled rows (output objective): every stride-th from 0
    const std::size_t stride = out_obj && rows > opt.max_rows ? rows / opt.max_rows : 1;
    const std::size_t used = out_obj ? (rows + stride - 1) / stride : 0;
    rep.rows_used = used;

    const std::size_t gs = g.group_size, gp = detail_clip::pad8(gs);  // rows of H, d, t padded with 0
    std::vector<double> h(out_obj ? gs * gp : 0), xrow(gp, 0.0);
    std::vector<float> q(cand * gs);
    std::vector<double> d(cand * gp, 0.0), t(cand * gp), err(cand);
    double sum_rtn = 0.0, sum_best = 0.0;
    for (std::size_t gc = 0; gc < g.per_row; ++gc) {  // group column: same columns for every output row
        const std::size_t j0 = gc * gs;
        if (out_obj) {  // H_g = X_g^T X_g over the used rows: exact products, double sums in r order
            for (double& v : h) v = 0.0;
            for (std::size_t u = 0; u < used; ++u) {
                const float* xr = x.data() + u * stride * k + j0;
                for (std::size_t i = 0; i < gs; ++i) xrow[i] = xr[i];
                for (std::size_t i = 0; i < gs; ++i)
                    if (xrow[i] != 0.0) detail_clip::add_outer_row(xrow[i], xrow.data(), h.data() + i * gp, gp);
            }
        }
        for (std::size_t o = 0; o < n; ++o) {
            const std::size_t gi = o * g.per_row + gc;
            const float* wp = w.data() + o * k + j0;
            float mn = 0.0f, mx = 0.0f;
            detail_clip::group_range(g, k, w.data(), gi, mn, mx);
            for (std::size_t c = 0; c < cand; ++c) {
                detail_clip::fake_quantize_group(s, g, k, w.data(), gi, detail_clip::clipped_qparams(s, mn, mx, rs[c]),
                                                 q.data() + c * gs);
                for (std::size_t i = 0; i < gs; ++i)
                    d[c * gp + i] = static_cast<double>(wp[i]) - static_cast<double>(q[c * gs + i]);
            }
            if (!out_obj) {
                for (std::size_t c = 0; c < cand; ++c)
                    err[c] = detail_clip::dot_fma(d.data() + c * gp, d.data() + c * gp, gp);
            } else {  // e_c = d_c^T H d_c: t_c = sum_i d_ci H_i (rows of H in i order), then d_c . t_c
                for (double& v : t) v = 0.0;
                for (std::size_t i = 0; i < gs; ++i) {
                    const double* hr = h.data() + i * gp;
                    for (std::size_t c = 0; c < cand; ++c)
                        detail_clip::axpy_fma(d[c * gp + i], hr, t.data() + c * gp, gp);
                }
                for (std::size_t c = 0; c < cand; ++c)
                    err[c] = detail_clip::dot_fma(d.data() + c * gp, t.data() + c * gp, gp);
            }
            std::size_t best = 0;
            for (std::size_t c = 1; c < cand; ++c)
                if (err[c] < err[best]) best = c;
            const qparams qp = detail_clip::clipped_qparams(s, mn, mx, rs[best]);
            ratios[gi] = rs[best];
            scales[gi] = qp.scale;
            zero_points[gi] = qp.zero_point;
            rep.clipped_groups += best != 0 ? 1 : 0;
            sum_rtn += err[0];
            sum_best += err[best];
        }
    }
    const double denom = out_obj ? static_cast<double>(used) * static_cast<double>(n) :
                                   static_cast<double>(n) * static_cast<double>(k);
    rep.error_rtn = denom > 0.0 ? sum_rtn / denom : 0.0;
    rep.error_clipped = denom > 0.0 ? sum_best / denom : 0.0;
    return rep;
}

}  // namespace ptq
}  // namespace lowbit

#endif  // LOWBIT_PTQ_CLIP_SEARCH_HPP
