// ptq/awq.hpp and ptq/clip_search.hpp: hand-computed clip cases, the scale and clip searches
// against naive transcriptions (direct X W^T products, AWQ's formulas written out), the
// held-out improvement over RTN on a synthetic layer with salient input channels, edges and
// errors.
#include "lowbit_catch.hpp"
#include "outlier_layer_test_util.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <vector>

#include <lowbit/core/fake_quantize.hpp>
#include <lowbit/ptq/awq.hpp>
#include <lowbit/ptq/clip_search.hpp>
#include <lowbit/ptq/linalg.hpp>

namespace {

using awq_u4 = lowbit::scheme<lowbit::u4>;                              // AWQ's default: zero-point
using awq_s4 = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>;  // symmetric variant

// A linear layer N x K with calibration and held-out activations (rows x K each): the shared
// outlier layer (outlier_layer_test_util.hpp) with 4 salient input channels 15x larger.
using awq_tl_layer = ptq_test::outlier_layer;

awq_tl_layer awq_tl_make(std::uint32_t seed, std::size_t n = 64, std::size_t k = 128, std::size_t rows = 512) {
    return ptq_test::make_outlier_layer(seed, 15.0, n, k, rows);
}

// Output MSE of X wq^T against X w^T (linalg's forward and mse).
double awq_tl_output_mse(const awq_tl_layer& l, const std::vector<float>& x, const std::vector<float>& wq) {
    std::vector<float> y(l.rows * l.n), yq(l.rows * l.n);
    REQUIRE(lowbit::ptq::linear_forward(l.rows, l.n, l.k, x, l.w, {}, y).ok());
    REQUIRE(lowbit::ptq::linear_forward(l.rows, l.n, l.k, x, wq, {}, yq).ok());
    return *lowbit::ptq::mse(y, yq);
}

template <class Scheme>
std::vector<float> awq_tl_rtn(const Scheme& s, const awq_tl_layer& l) {
    std::vector<float> wq(l.w.size());
    REQUIRE(lowbit::ptq::fake_quantize_weights_minmax(s, l.n, l.k, l.w, wq).ok());
    return wq;
}

struct awq_tl_outcome {
    double rtn = 0, awq = 0, clip_out = 0, clip_w = 0;  // held-out output MSEs
    double wmse_rtn = 0, wmse_clip = 0;                  // weight MSEs of the weights-objective search
    lowbit::ptq::awq_report rep;
};

template <class Scheme>
awq_tl_outcome awq_tl_run(const Scheme& s, const awq_tl_layer& l) {
    awq_tl_outcome r;
    r.rtn = awq_tl_output_mse(l, l.xtest, awq_tl_rtn(s, l));
    const std::size_t groups = lowbit::ptq::make_weight_groups(s, l.n, l.k)->count;
    std::vector<float> in_s(l.k), ratios(groups), scales(groups), weff(l.w.size());
    std::vector<std::int32_t> zps(groups);
    r.rep = *lowbit::ptq::awq_search(s, l.n, l.k, l.rows, l.w, l.xcal, in_s, ratios, scales, zps);
    REQUIRE(lowbit::ptq::awq_effective_weights(s, l.n, l.k, l.w, in_s, scales, zps, weff).ok());
    r.awq = awq_tl_output_mse(l, l.xtest, weff);
    for (const auto obj : {lowbit::ptq::clip_objective::output, lowbit::ptq::clip_objective::weights}) {
        lowbit::ptq::clip_search_options o;
        o.objective = obj;
        const auto cr = *lowbit::ptq::clip_search(s, l.n, l.k, l.rows, l.w, l.xcal, ratios, scales, zps, o);
        if (obj == lowbit::ptq::clip_objective::weights) r.wmse_rtn = cr.error_rtn, r.wmse_clip = cr.error_clipped;
        REQUIRE(lowbit::ref::fake_quantize(s, lowbit::shape{l.n, l.k}, {scales, zps}, l.w, weff).ok());
        (obj == lowbit::ptq::clip_objective::output ? r.clip_out : r.clip_w) = awq_tl_output_mse(l, l.xtest, weff);
    }
    return r;
}

}  // namespace

TEST_CASE("weight groups and min/max qparams: hand-computed", "[awq][clip]") {
    using lowbit::ptq::make_weight_groups;
    const auto g = make_weight_groups(awq_u4{}.per_group(1, 2), 3, 4);
    CHECK(g->group_size == 2);
    CHECK(g->per_row == 2);
    CHECK(g->count == 6);
    CHECK(make_weight_groups(awq_u4{}.per_channel(0), 3, 4)->count == 3);
    CHECK_THROWS_WITH(make_weight_groups(awq_u4{}.per_group(1, 3), 3, 4), Catch::Contains("'group_size' = 3"));
    CHECK_THROWS_WITH(make_weight_groups(awq_u4{}.per_group(0, 3), 3, 4), Catch::Contains("'axis' = 0"));
    CHECK_THROWS_WITH(make_weight_groups(awq_u4{}.per_channel(1), 3, 4), Catch::Contains("'axis' = 1"));
    CHECK_THROWS_WITH(make_weight_groups(awq_u4{}, 3, 4), Catch::Contains("'granularity'"));

    // u4 affine, groups of 2: [-1, 0.5] -> scale 1.5 / 15 = 0.1, zero-point 0 - round(-1 / 0.1) = 10;
    // [2, 3] -> range extended to [0, 3]: scale 0.2, zero-point 0. Ratio 0.5 halves the range.
    const std::vector<float> w = {-1.0f, 0.5f, 2.0f, 3.0f};
    std::vector<float> sc(2);
    std::vector<std::int32_t> zp(2);
    REQUIRE(lowbit::ptq::weight_minmax_qparams(awq_u4{}.per_group(1, 2), 1, 4, w, sc, zp).ok());
    CHECK(sc[0] == 1.5f / 15.0f);
    CHECK(zp[0] == 10);
    CHECK(sc[1] == 3.0f / 15.0f);
    CHECK(zp[1] == 0);
    const std::vector<float> half = {0.5f, 0.5f};
    REQUIRE(lowbit::ptq::weight_minmax_qparams(awq_u4{}.per_group(1, 2), 1, 4, w, sc, zp, half).ok());
    CHECK(sc[0] == 0.75f / 15.0f);
    CHECK(zp[0] == 10);
    CHECK(sc[1] == 1.5f / 15.0f);
    const std::vector<float> bad = {0.5f, 1.5f};
    CHECK_THROWS_WITH(lowbit::ptq::weight_minmax_qparams(awq_u4{}.per_group(1, 2), 1, 4, w, sc, zp, bad),
                      Catch::Contains("'ratios' = 1"));
    // constant and all-zero groups, no NaN: s4 symmetric maps 0.75 to 7.5 steps of 0.1, which
    // saturates at 7 (torch's symmetric scale amax / 7.5); u4 affine puts it at qmax exactly
    const std::vector<float> c = {0.75f, 0.75f, 0.0f, 0.0f};
    std::vector<float> q(4);
    REQUIRE(lowbit::ptq::fake_quantize_weights_minmax(awq_s4{}.per_group(1, 2), 1, 4, c, q).ok());
    CHECK(q == std::vector<float>{7.0f * (0.75f / 7.5f), 7.0f * (0.75f / 7.5f), 0.0f, 0.0f});
    REQUIRE(lowbit::ptq::fake_quantize_weights_minmax(awq_u4{}.per_group(1, 2), 1, 4, c, q).ok());
    CHECK(q == c);
}

TEST_CASE("clip_search: hand-computed weight and output objectives", "[awq][clip]") {
    // One row of 64: 7.5 then 63 x 0.5, s4 symmetric per channel (scale = amax / 7.5), ratios
    // 1, 0.75, 0.5 (n_grid 4, max_shrink 0.75; every scale dyadic, so the sums are exact).
    //   r = 1:    scale 1:    7.5 -> 7 (err 0.25), 0.5 -> 0 (half to even, 0.25 each): 16
    //   r = 0.75: scale 0.75: 7.5 -> 5.25 (5.0625), 0.5 -> 0.75 (0.0625 each):         9
    //   r = 0.5:  scale 0.5:  7.5 -> 3.5 (16), 0.5 exact:                               16
    const std::size_t k = 64;
    std::vector<float> w(k, 0.5f);
    w[0] = 7.5f;
    const auto s = awq_s4{}.per_channel(0);
    lowbit::ptq::clip_search_options o;
    o.n_grid = 4;
    o.max_shrink = 0.75f;
    o.objective = lowbit::ptq::clip_objective::weights;
    std::vector<float> ratio(1), sc(1);
    std::vector<std::int32_t> zp(1);
    auto rep = *lowbit::ptq::clip_search(s, 1, k, 0, w, {}, ratio, sc, zp, o);
    CHECK(rep.candidates == 3);
    CHECK(ratio[0] == 0.75f);
    CHECK(sc[0] == 0.75f);
    CHECK(zp[0] == 0);
    CHECK(rep.error_rtn == 16.0 / 64.0);
    CHECK(rep.error_clipped == 9.0 / 64.0);
    CHECK(rep.clipped_groups == 1);
    // Output objective, 3 rows that never read input 0 and read every other input with 1: the
    // outlier's error does not count, r = 0.5 reproduces the rest exactly (error 0); r = 1
    // misses 63 x 0.5 per row: 31.5^2 per row.
    std::vector<float> x(3 * k, 1.0f);
    for (std::size_t r = 0; r < 3; ++r) x[r * k] = 0.0f;
    o.objective = lowbit::ptq::clip_objective::output;
    rep = *lowbit::ptq::clip_search(s, 1, k, 3, w, x, ratio, sc, zp, o);
    CHECK(rep.rows_used == 3);
    CHECK(ratio[0] == 0.5f);
    CHECK(rep.error_rtn == 31.5 * 31.5);
    CHECK(rep.error_clipped == 0.0);
    // rows subsampled by a stride: 7 rows, at most 3 -> stride 2, rows 0, 2, 4, 6
    std::vector<float> x7(7 * k, 1.0f);
    o.max_rows = 3;
    rep = *lowbit::ptq::clip_search(s, 1, k, 7, w, x7, ratio, sc, zp, o);
    CHECK(rep.rows_used == 4);
    // AWQ defaults: 10 candidates 1.0 .. 0.55
    rep = *lowbit::ptq::clip_search(s, 1, k, 3, w, x, ratio, sc, zp);
    CHECK(rep.candidates == 10);
    CHECK(ratio[0] == 0.55f);  // the smallest range: the small values are what X reads
}

TEST_CASE("clip_search: output objective equals the direct per-group sum over rows", "[awq][clip]") {
    // naive transcription: for every group and ratio, fake-quantize the whole group with
    // ref::fake_quantize and sum (sum_j x_rj (w_j - q_j))^2 over the rows, in the plainest order
    const awq_tl_layer l = awq_tl_make(7, 6, 64, 40);
    const auto s = awq_u4{}.per_group(1, 16);
    const std::size_t groups = 6 * 4;
    std::vector<float> ratio(groups), sc(groups);
    std::vector<std::int32_t> zp(groups);
    const auto rep = *lowbit::ptq::clip_search(s, l.n, l.k, l.rows, l.w, l.xcal, ratio, sc, zp);
    double naive_total = 0.0;
    for (std::size_t gi = 0; gi < groups; ++gi) {
        const std::size_t o = gi / 4, j0 = (gi % 4) * 16;
        std::vector<float> wg(l.w.begin() + static_cast<std::ptrdiff_t>(o * l.k + j0),
                              l.w.begin() + static_cast<std::ptrdiff_t>(o * l.k + j0 + 16));
        float mn = wg[0], mx = wg[0];
        for (const float v : wg) mn = std::min(mn, v), mx = std::max(mx, v);
        double best = std::numeric_limits<double>::infinity();
        float best_r = 0.0f;
        std::vector<double> errs;
        for (int i = 0; i < 10; ++i) {
            const float r = static_cast<float>(1.0 - i / 20.0);
            const lowbit::qparams qp = *lowbit::choose_qparams(awq_u4{}, mn * r, mx * r);
            std::vector<float> q(16);
            REQUIRE(lowbit::ref::fake_quantize(awq_u4{}, qp, wg, q).ok());
            double e = 0.0;
            for (std::size_t row = 0; row < l.rows; ++row) {
                double dot = 0.0;
                for (std::size_t j = 0; j < 16; ++j)
                    dot += static_cast<double>(l.xcal[row * l.k + j0 + j]) * (double(wg[j]) - double(q[j]));
                e += dot * dot;
            }
            errs.push_back(e);
            if (e < best) best = e, best_r = r;
        }
        naive_total += best;
        // same choice, unless two candidates tie to rounding
        const double chosen = errs[static_cast<std::size_t>(std::lround((1.0 - ratio[gi]) * 20.0))];
        CAPTURE(gi, best_r, ratio[gi]);
        CHECK(chosen == Approx(best).epsilon(1e-9));
    }
    CHECK(rep.error_clipped == Approx(naive_total / (40.0 * 6.0)).epsilon(1e-9));
}

TEST_CASE("awq_search: grid errors equal AWQ's formulas written out", "[awq]") {
    // naive transcription of auto_scale's loop: s = mean|x|^a clamped to 1e-4, normalised by
    // sqrt(max * min); layer output of X W_eff^T with W_eff = Q(W * s) / s vs X W^T (linalg)
    const awq_tl_layer l = awq_tl_make(11, 8, 32, 24);
    const auto s = awq_u4{}.per_group(1, 8);
    const std::size_t groups = 8 * 4;
    std::vector<double> grid(20);
    lowbit::ptq::awq_options opt;
    opt.grid_errors = grid;
    opt.clip = false;
    std::vector<float> in_s(l.k), ratio(groups), sc(groups), weff(l.w.size());
    std::vector<std::int32_t> zp(groups);
    const auto rep = *lowbit::ptq::awq_search(s, l.n, l.k, l.rows, l.w, l.xcal, in_s, ratio, sc, zp, opt);
    std::vector<double> mean(l.k, 0.0);
    for (std::size_t r = 0; r < l.rows; ++r)
        for (std::size_t j = 0; j < l.k; ++j) mean[j] += std::fabs(double(l.xcal[r * l.k + j])) / double(l.rows);
    std::size_t best_i = 0;
    std::vector<double> naive(20);
    for (std::size_t i = 0; i < 20; ++i) {
        std::vector<double> v(l.k);
        for (std::size_t j = 0; j < l.k; ++j) v[j] = std::max(std::pow(mean[j], double(i) / 20.0), 1e-4);
        const double norm = std::sqrt(*std::max_element(v.begin(), v.end()) * *std::min_element(v.begin(), v.end()));
        std::vector<float> si(l.k), ws(l.w.size());
        for (std::size_t j = 0; j < l.k; ++j) si[j] = static_cast<float>(v[j] / norm);
        for (std::size_t o = 0; o < l.n; ++o)
            for (std::size_t j = 0; j < l.k; ++j) ws[o * l.k + j] = l.w[o * l.k + j] * si[j];
        std::vector<float> wq(ws.size());
        REQUIRE(lowbit::ptq::fake_quantize_weights_minmax(s, l.n, l.k, ws, wq).ok());
        for (std::size_t o = 0; o < l.n; ++o)
            for (std::size_t j = 0; j < l.k; ++j) wq[o * l.k + j] /= si[j];
        naive[i] = awq_tl_output_mse(l, l.xcal, wq);
        CHECK(grid[i] == Approx(naive[i]).epsilon(1e-5));  // linear_forward rounds outputs to float
        if (naive[i] < naive[best_i]) best_i = i;
    }
    CHECK(rep.error_rtn == grid[0]);
    CHECK(rep.error_scaled == *std::min_element(grid.begin(), grid.end()));
    CHECK(rep.error_final == rep.error_scaled);  // no clip: same qparams
    CHECK(naive[rep.ratio_index] == Approx(naive[best_i]).epsilon(1e-5));
    CHECK(rep.ratio == static_cast<float>(double(rep.ratio_index) / 20.0));
    // the effective weights reproduce the error of the chosen grid point
    REQUIRE(lowbit::ptq::awq_effective_weights(s, l.n, l.k, l.w, in_s, sc, zp, weff).ok());
    CHECK(awq_tl_output_mse(l, l.xcal, weff) == Approx(rep.error_scaled).epsilon(1e-5));
}

TEST_CASE("AWQ scale + clip beats RTN on held-out activations (int4, g = 128, 64, 32)", "[awq]") {
    // K = 128, N = 64, 512 calibration + 512 held-out rows (awq_tl_make). Margins from seeds
    // 1..12 (the hidden test "[.awq-seeds]" prints the table): AWQ / RTN held-out output MSE
    // 0.11..0.72 over u4 g128/64/32 and s4 g128; output-objective clip alone 0.15..0.86; the
    // weights-objective clip lowers the weight MSE always but the held-out output MSE only
    // in most cases (0.51..1.11), so only its weight MSE is asserted (0.77..0.98 of RTN's).
    const awq_tl_layer l = awq_tl_make(1);
    for (const std::size_t gsz : {std::size_t(128), std::size_t(64), std::size_t(32)}) {
        CAPTURE(gsz);
        const awq_tl_outcome u = awq_tl_run(awq_u4{}.per_group(1, gsz), l);
        CAPTURE(u.rtn, u.awq, u.clip_out, u.clip_w, u.rep.ratio);
        CHECK(u.awq <= 0.8 * u.rtn);
        CHECK(u.clip_out <= 0.9 * u.rtn);
        CHECK(u.wmse_clip <= 0.99 * u.wmse_rtn);
        CHECK(u.rep.error_final <= u.rep.error_scaled);
        CHECK(u.rep.error_scaled <= u.rep.error_rtn);
        CHECK(u.rep.ratio > 0.0f);
        CHECK(u.rep.dead_channels == 0);
        CHECK(u.rep.skipped_grid_points == 0);
    }
    const awq_tl_outcome v = awq_tl_run(awq_s4{}.per_group(1, 128), l);
    CAPTURE(v.rtn, v.awq);
    CHECK(v.awq <= 0.8 * v.rtn);
    CHECK(v.clip_out <= 0.9 * v.rtn);
}

TEST_CASE("AWQ seed table (run on demand)", "[.awq-seeds]") {
    for (std::uint32_t seed = 1; seed <= 12; ++seed) {
        const awq_tl_layer l = awq_tl_make(seed);
        for (const std::size_t gsz : {std::size_t(128), std::size_t(64), std::size_t(32)}) {
            const awq_tl_outcome u = awq_tl_run(awq_u4{}.per_group(1, gsz), l);
            std::printf("seed %2u u4 g%3zu rtn %.4e awq %.4e (%.3f, a=%.2f) clip_out %.3f clip_w %.3f (weights %.3f)\n",
                        seed, gsz, u.rtn, u.awq, u.awq / u.rtn, double(u.rep.ratio), u.clip_out / u.rtn,
                        u.clip_w / u.rtn, u.wmse_clip / u.wmse_rtn);
        }
        const awq_tl_outcome v = awq_tl_run(awq_s4{}.per_group(1, 128), l);
        std::printf("seed %2u s4 g128 rtn %.4e awq %.4e (%.3f, a=%.2f) clip_out %.3f clip_w %.3f (weights %.3f)\n",
                    seed, v.rtn, v.awq, v.awq / v.rtn, double(v.rep.ratio), v.clip_out / v.rtn, v.clip_w / v.rtn,
                    v.wmse_clip / v.wmse_rtn);
    }
}

TEST_CASE("awq_search: zero activations, dead and constant channels", "[awq]") {
    const awq_tl_layer l = awq_tl_make(3, 8, 32, 16);
    const auto s = awq_u4{}.per_group(1, 16);
    const std::size_t groups = 16;
    std::vector<float> in_s(l.k), ratio(groups), sc(groups), weff(l.w.size());
    std::vector<std::int32_t> zp(groups);
    // all-zero activations: s = 1, ratio 1, exactly RTN
    const std::vector<float> zeros(l.rows * l.k, 0.0f);
    auto rep = *lowbit::ptq::awq_search(s, l.n, l.k, l.rows, l.w, zeros, in_s, ratio, sc, zp);
    CHECK(rep.dead_channels == l.k);
    CHECK(rep.ratio_index == 0);
    CHECK(rep.error_rtn == 0.0);
    CHECK(rep.error_final == 0.0);
    for (const float v : in_s) CHECK(v == 1.0f);
    for (const float v : ratio) CHECK(v == 1.0f);
    REQUIRE(lowbit::ptq::awq_effective_weights(s, l.n, l.k, l.w, in_s, sc, zp, weff).ok());
    CHECK(weff == awq_tl_rtn(s, l));
    // one dead channel, one constant channel, one constant weight group: finite, counted
    std::vector<float> x = l.xcal, w = l.w;
    for (std::size_t r = 0; r < l.rows; ++r) x[r * l.k + 5] = 0.0f, x[r * l.k + 6] = 2.5f;
    for (std::size_t j = 0; j < 16; ++j) w[3 * l.k + j] = -0.125f;
    rep = *lowbit::ptq::awq_search(s, l.n, l.k, l.rows, w, x, in_s, ratio, sc, zp);
    CHECK(rep.dead_channels == 1);
    CHECK(std::isfinite(rep.error_final));
    CHECK(rep.error_final <= rep.error_rtn);
    for (const float v : in_s) CHECK((std::isfinite(v) && v > 0.0f));
    if (rep.ratio_index > 0) CHECK(in_s[5] < in_s[6]);  // the dead channel is the least salient
}

TEST_CASE("awq_search / clip_search: argument errors", "[awq][clip]") {
    const awq_tl_layer l = awq_tl_make(5, 4, 16, 8);
    const auto s = awq_u4{}.per_group(1, 8);
    std::vector<float> in_s(16), ratio(8), sc(8);
    std::vector<std::int32_t> zp(8);
    using lowbit::ptq::awq_search;
    using lowbit::ptq::clip_search;
    CHECK_THROWS_WITH(awq_search(s, 4, 16, 0, l.w, {}, in_s, ratio, sc, zp), Catch::Contains("'rows' = 0"));
    CHECK_THROWS_WITH(awq_search(s, 4, 16, 7, l.w, l.xcal, in_s, ratio, sc, zp), Catch::Contains("'x.size()'"));
    std::vector<std::int32_t> zp7(7);
    CHECK_THROWS_WITH(awq_search(s, 4, 16, 8, l.w, l.xcal, in_s, ratio, sc, zp7),
                      Catch::Contains("'zero_points.size()' = 7"));
    CHECK_THROWS_WITH(awq_search(awq_u4{}.per_group(1, 5), 4, 16, 8, l.w, l.xcal, in_s, ratio, sc, zp),
                      Catch::Contains("'group_size' = 5"));
    std::vector<float> xn = l.xcal;
    xn[17] = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> in_s0 = in_s;
    CHECK_THROWS_WITH(awq_search(s, 4, 16, 8, l.w, xn, in_s, ratio, sc, zp), Catch::Contains("'x' = 17"));
    CHECK(in_s == in_s0);  // nothing written
    std::vector<float> wn = l.w;
    wn[3] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(awq_search(s, 4, 16, 8, wn, l.xcal, in_s, ratio, sc, zp), Catch::Contains("'w' = 3"));
    lowbit::ptq::awq_options o;
    o.n_grid = 0;
    CHECK_THROWS_WITH(awq_search(s, 4, 16, 8, l.w, l.xcal, in_s, ratio, sc, zp, o), Catch::Contains("'n_grid' = 0"));
    o = {};
    o.min_scale = 0.0f;
    CHECK_THROWS_WITH(awq_search(s, 4, 16, 8, l.w, l.xcal, in_s, ratio, sc, zp, o), Catch::Contains("'min_scale'"));
    o = {};
    std::vector<double> g3(3);
    o.grid_errors = g3;
    CHECK_THROWS_WITH(awq_search(s, 4, 16, 8, l.w, l.xcal, in_s, ratio, sc, zp, o),
                      Catch::Contains("'grid_errors.size()' = 3"));
    o = {};
    o.clip_options.max_shrink = 1.0f;
    CHECK_THROWS_WITH(awq_search(s, 4, 16, 8, l.w, l.xcal, in_s, ratio, sc, zp, o), Catch::Contains("'max_shrink'"));
    CHECK_THROWS_WITH(clip_search(s, 4, 16, 0, l.w, {}, ratio, sc, zp), Catch::Contains("'rows' = 0"));
    lowbit::ptq::clip_search_options co;
    co.max_rows = 0;
    CHECK_THROWS_WITH(clip_search(s, 4, 16, 8, l.w, l.xcal, ratio, sc, zp, co), Catch::Contains("'max_rows' = 0"));
    std::vector<float> ratio9(9), zeros16(16, 0.0f), out64(64);
    CHECK_THROWS_WITH(clip_search(s, 4, 16, 8, l.w, l.xcal, ratio9, sc, zp),
                      Catch::Contains("'ratios.size()' = 9"));
    CHECK_THROWS_WITH(lowbit::ptq::awq_effective_weights(s, 4, 16, l.w, zeros16, sc, zp, out64),
                      Catch::Contains("'s' = 0"));
}
