// ptq/smoothquant.hpp and ptq/channel_scale.hpp: hand-computed factors, alpha = 0 / 1 edges,
// zero and constant channels, errors, and the W8A8 improvement on held-out activations of a
// synthetic layer with 100x outlier input channels.
#include "lowbit_catch.hpp"
#include "outlier_layer_test_util.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <vector>

#include <lowbit/core/fake_quantize.hpp>
#include <lowbit/observers/minmax.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>
#include <lowbit/ptq/channel_scale.hpp>
#include <lowbit/ptq/linalg.hpp>
#include <lowbit/ptq/smoothquant.hpp>

namespace {

using sq_tl_s8 = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>;  // SmoothQuant's int8 (absmax)

// Layer N x K, calibration and held-out activations rows x K: the shared outlier layer
// (outlier_layer_test_util.hpp) with 4 outlier input channels 100x larger, as the LLM.int8 /
// SmoothQuant papers observe.
using sq_tl_layer = ptq_test::outlier_layer;

sq_tl_layer sq_tl_make(std::uint32_t seed, std::size_t n = 64, std::size_t k = 128, std::size_t rows = 512) {
    return ptq_test::make_outlier_layer(seed, 100.0, n, k, rows);
}

enum class sq_tl_act { per_tensor, per_token };

// W8A8 output MSE on the held-out rows against the f32 layer X W^T, after smoothing with s
// (s empty: no smoothing). Weights: s8 symmetric per output channel, min/max (lowbit's
// per-channel observer). Activations: s8 symmetric, per tensor with the calibration rows'
// min/max (static), or per token with each held-out row's own min/max (dynamic).
double sq_tl_w8a8_mse(const sq_tl_layer& l, const std::vector<float>& s, sq_tl_act act) {
    std::vector<float> w = l.w, xcal = l.xcal, x = l.xtest;
    if (!s.empty()) {
        REQUIRE(lowbit::ptq::scale_weight_columns(l.n, l.k, w, s, w).ok());
        REQUIRE(lowbit::ptq::unscale_activation_columns(l.rows, l.k, xcal, s, xcal).ok());
        REQUIRE(lowbit::ptq::unscale_activation_columns(l.rows, l.k, x, s, x).ok());
    }
    const auto ws = sq_tl_s8{}.per_channel(0);
    std::vector<float> wstate(2 * l.n), wsc(l.n), wq(w.size());
    std::vector<std::int32_t> wzp(l.n);
    lowbit::per_channel_minmax_observer<decltype(ws)> wobs(ws, l.n, wstate);
    REQUIRE(wobs.observe(lowbit::shape{l.n, l.k}, w).ok());
    REQUIRE(wobs.qparams(wsc, wzp).ok());
    REQUIRE(lowbit::ref::fake_quantize(ws, lowbit::shape{l.n, l.k}, {wsc, wzp}, w, wq).ok());
    std::vector<float> xq(x.size());
    if (act == sq_tl_act::per_tensor) {
        lowbit::minmax_observer<sq_tl_s8> obs;
        REQUIRE(obs.observe(xcal).ok());
        REQUIRE(lowbit::ref::fake_quantize(sq_tl_s8{}, *obs.qparams(), x, xq).ok());
    } else {
        for (std::size_t r = 0; r < l.rows; ++r) {
            lowbit::minmax_observer<sq_tl_s8> obs;
            const lowbit::span<const float> row(x.data() + r * l.k, l.k);
            REQUIRE(obs.observe(row).ok());
            REQUIRE(lowbit::ref::fake_quantize(sq_tl_s8{}, *obs.qparams(), row,
                                               lowbit::span<float>(xq.data() + r * l.k, l.k))
                        .ok());
        }
    }
    std::vector<float> y(l.rows * l.n), yq(l.rows * l.n);
    REQUIRE(lowbit::ptq::linear_forward(l.rows, l.n, l.k, l.xtest, l.w, {}, y).ok());
    REQUIRE(lowbit::ptq::linear_forward(l.rows, l.n, l.k, xq, wq, {}, yq).ok());
    return *lowbit::ptq::mse(y, yq);
}

std::vector<float> sq_tl_scales(const sq_tl_layer& l, float alpha) {
    std::vector<float> s(l.k);
    REQUIRE(lowbit::ptq::smoothquant_scales(l.rows, l.n, l.k, l.xcal, l.w, s, alpha).ok());
    return s;
}

}  // namespace

TEST_CASE("smoothquant_scales: hand-computed factors", "[smoothquant]") {
    // s = a^alpha / w^(1 - alpha): alpha 0.5: sqrt(4 / 1) = 2, sqrt(9 / 4) = 1.5; a = 0 or
    // w = 0: 1 (neutral)
    const std::vector<float> a = {4.0f, 9.0f, 0.0f, 1.0f}, w = {1.0f, 4.0f, 2.0f, 0.0f};
    std::vector<float> s(4);
    auto rep = *lowbit::ptq::smoothquant_scales(a, w, s);
    CHECK(s == std::vector<float>{2.0f, 1.5f, 1.0f, 1.0f});
    CHECK(rep.neutral_channels == 2);
    CHECK(rep.clamped_channels == 0);
    // alpha = 1: s = a (all difficulty to the weights); alpha = 0: s = 1 / w
    REQUIRE(lowbit::ptq::smoothquant_scales(a, w, s, 1.0f).ok());
    CHECK(s == std::vector<float>{4.0f, 9.0f, 1.0f, 1.0f});
    REQUIRE(lowbit::ptq::smoothquant_scales(a, w, s, 0.0f).ok());
    CHECK(s == std::vector<float>{1.0f, 0.25f, 1.0f, 1.0f});
    // alpha = 0.75: 4^0.75 / 1^0.25 = 2.828..., 9^0.75 / 4^0.25 = 5.196... / 1.414... = 3.674...
    REQUIRE(lowbit::ptq::smoothquant_scales(a, w, s, 0.75f).ok());
    CHECK(s[0] == static_cast<float>(std::pow(4.0, 0.75)));
    CHECK(s[1] == static_cast<float>(std::pow(9.0, 0.75) / std::pow(4.0, 0.25)));
    // the reference's floors: max|W| >= 1e-5 (1 / sqrt(1e-5) = 316.2277...), s >= 1e-5
    const std::vector<float> a2 = {1.0f, 1e-12f}, w2 = {1e-7f, 1.0f};
    std::vector<float> s2(2);
    rep = *lowbit::ptq::smoothquant_scales(a2, w2, s2);
    CHECK(s2[0] == static_cast<float>(1.0 / std::sqrt(1e-5)));
    CHECK(s2[1] == static_cast<float>(1e-5));  // sqrt(1e-12) = 1e-6 raised to 1e-5
    CHECK(rep.clamped_channels == 1);
    CHECK(rep.neutral_channels == 0);
}

TEST_CASE("smoothquant: alpha = 1 and alpha = 0 edges, output preserved", "[smoothquant]") {
    const sq_tl_layer l = sq_tl_make(2, 16, 32, 64);
    std::vector<float> am(l.k, 0.0f), wm(l.k, 0.0f);
    REQUIRE(lowbit::ptq::column_absmax(l.rows, l.k, l.xcal, am).ok());
    REQUIRE(lowbit::ptq::column_absmax(l.n, l.k, l.w, wm).ok());
    // alpha = 1: every smoothed calibration channel has max |x'| = 1 exactly (x / x)
    std::vector<float> s = sq_tl_scales(l, 1.0f), xs(l.xcal.size()), ws(l.w.size());
    REQUIRE(lowbit::ptq::unscale_activation_columns(l.rows, l.k, l.xcal, s, xs).ok());
    std::vector<float> am1(l.k, 0.0f);
    REQUIRE(lowbit::ptq::column_absmax(l.rows, l.k, xs, am1).ok());
    for (std::size_t j = 0; j < l.k; ++j) CHECK(am1[j] == 1.0f);
    // alpha = 0: every weight column has max |w'| = max|w| * fl(1 / max|w|), within an ulp of 1
    s = sq_tl_scales(l, 0.0f);
    REQUIRE(lowbit::ptq::scale_weight_columns(l.n, l.k, l.w, s, ws).ok());
    std::vector<float> wm0(l.k, 0.0f);
    REQUIRE(lowbit::ptq::column_absmax(l.n, l.k, ws, wm0).ok());
    for (std::size_t j = 0; j < l.k; ++j) CHECK(std::fabs(wm0[j] - 1.0f) <= 1.2e-7f);
    // alpha = 0.5: max|x'| = max|w'| = sqrt(max|x| max|w|) per channel (up to rounding)
    s = sq_tl_scales(l, 0.5f);
    REQUIRE(lowbit::ptq::unscale_activation_columns(l.rows, l.k, l.xcal, s, xs).ok());
    REQUIRE(lowbit::ptq::scale_weight_columns(l.n, l.k, l.w, s, ws).ok());
    std::vector<float> ax(l.k, 0.0f), aw(l.k, 0.0f);
    REQUIRE(lowbit::ptq::column_absmax(l.rows, l.k, xs, ax).ok());
    REQUIRE(lowbit::ptq::column_absmax(l.n, l.k, ws, aw).ok());
    for (std::size_t j = 0; j < l.k; ++j) {
        CHECK(ax[j] == Approx(std::sqrt(double(am[j]) * wm[j])).epsilon(1e-6));
        CHECK(aw[j] == Approx(ax[j]).epsilon(1e-6));
    }
    // the f32 layer output is unchanged up to rounding: X' W'^T = X W^T
    std::vector<float> y(l.rows * l.n), y2(l.rows * l.n);
    REQUIRE(lowbit::ptq::linear_forward(l.rows, l.n, l.k, l.xcal, l.w, {}, y).ok());
    REQUIRE(lowbit::ptq::linear_forward(l.rows, l.n, l.k, xs, ws, {}, y2).ok());
    double ref = 0.0;
    for (const float v : y) ref += double(v) * v;
    CHECK(*lowbit::ptq::mse(y, y2) <= 1e-12 * ref / double(y.size()));
}

TEST_CASE("SmoothQuant W8A8 beats plain W8A8 on held-out activations (100x outlier channels)", "[smoothquant]") {
    // K = 128, N = 64, 512 calibration + 512 held-out rows. Margins from seeds 1..12 (hidden
    // test "[.smoothquant-seeds]"): smoothed / plain held-out output MSE at alpha 0.5 is
    // 0.034..0.32 per tensor except seed 7 (0.82), 0.031..0.12 per token; seed 1: 0.068, 0.076.
    // The margins below hold for all 12 seeds.
    const sq_tl_layer l = sq_tl_make(1);
    const double plain_t = sq_tl_w8a8_mse(l, {}, sq_tl_act::per_tensor);
    const double plain_k = sq_tl_w8a8_mse(l, {}, sq_tl_act::per_token);
    const std::vector<float> s = sq_tl_scales(l, 0.5f);
    const double smooth_t = sq_tl_w8a8_mse(l, s, sq_tl_act::per_tensor);
    const double smooth_k = sq_tl_w8a8_mse(l, s, sq_tl_act::per_token);
    CAPTURE(plain_t, smooth_t, plain_k, smooth_k);
    CHECK(smooth_t <= 0.85 * plain_t);
    CHECK(smooth_k <= 0.15 * plain_k);
    // s = 1 everywhere is exactly plain W8A8
    CHECK(sq_tl_w8a8_mse(l, std::vector<float>(l.k, 1.0f), sq_tl_act::per_tensor) == plain_t);
}

TEST_CASE("SmoothQuant seed table (run on demand)", "[.smoothquant-seeds]") {
    for (std::uint32_t seed = 1; seed <= 12; ++seed) {
        const sq_tl_layer l = sq_tl_make(seed);
        const double pt = sq_tl_w8a8_mse(l, {}, sq_tl_act::per_tensor);
        const double pk = sq_tl_w8a8_mse(l, {}, sq_tl_act::per_token);
        std::printf("seed %2u plain per-tensor %.4e per-token %.4e |", seed, pt, pk);
        for (const float alpha : {0.25f, 0.5f, 0.75f, 1.0f}) {
            const std::vector<float> s = sq_tl_scales(l, alpha);
            std::printf(" a=%.2f %.3f %.3f", double(alpha), sq_tl_w8a8_mse(l, s, sq_tl_act::per_tensor) / pt,
                        sq_tl_w8a8_mse(l, s, sq_tl_act::per_token) / pk);
        }
        std::printf("\n");
    }
}

TEST_CASE("smoothquant: zero and constant channels", "[smoothquant]") {
    sq_tl_layer l = sq_tl_make(4, 8, 16, 32);
    for (std::size_t r = 0; r < l.rows; ++r) l.xcal[r * l.k + 3] = 0.0f, l.xcal[r * l.k + 4] = -2.0f;
    for (std::size_t o = 0; o < l.n; ++o) l.w[o * l.k + 7] = 0.0f;
    std::vector<float> s(l.k);
    std::vector<float> wm(l.k, 0.0f);
    REQUIRE(lowbit::ptq::column_absmax(l.n, l.k, l.w, wm).ok());
    const auto rep = *lowbit::ptq::smoothquant_scales(l.rows, l.n, l.k, l.xcal, l.w, s);
    CHECK(rep.neutral_channels == 2);  // dead activation channel 3, zero weight column 7
    CHECK(s[3] == 1.0f);
    CHECK(s[7] == 1.0f);
    CHECK(s[4] == static_cast<float>(std::sqrt(2.0) / std::sqrt(double(wm[4]))));  // constant |x| = 2
    for (const float v : s) CHECK((std::isfinite(v) && v > 0.0f));
    // all-zero calibration activations: every channel neutral, s = 1
    const std::vector<float> zeros(l.rows * l.k, 0.0f);
    const auto rz = *lowbit::ptq::smoothquant_scales(l.rows, l.n, l.k, zeros, l.w, s);
    CHECK(rz.neutral_channels == l.k);
    for (const float v : s) CHECK(v == 1.0f);
}

TEST_CASE("smoothquant / channel_scale: argument errors", "[smoothquant]") {
    const std::vector<float> a = {1.0f, 2.0f}, w = {1.0f, 1.0f};
    std::vector<float> s(2), s3(3);
    using lowbit::ptq::smoothquant_scales;
    CHECK_THROWS_WITH(smoothquant_scales(a, w, s, -0.1f), Catch::Contains("'alpha'"));
    CHECK_THROWS_WITH(smoothquant_scales(a, w, s, 1.5f), Catch::Contains("'alpha' = 1.5"));
    CHECK_THROWS_WITH(smoothquant_scales(a, w, s, std::numeric_limits<float>::quiet_NaN()),
                      Catch::Contains("'alpha' = nan"));
    CHECK_THROWS_WITH(smoothquant_scales(a, w, s3), Catch::Contains("'s.size()' = 3"));
    const std::vector<float> neg = {1.0f, -1.0f}, inf = {std::numeric_limits<float>::infinity(), 1.0f};
    CHECK_THROWS_WITH(smoothquant_scales(neg, w, s), Catch::Contains("'act_absmax' = 1"));
    CHECK_THROWS_WITH(smoothquant_scales(a, inf, s), Catch::Contains("'weight_absmax' = 0"));
    const std::vector<float> s0 = s;
    CHECK_THROWS(smoothquant_scales(a, inf, s));
    CHECK(s == s0);  // nothing written
    const std::vector<float> x = {1, 2, 3, 4}, wt = {1, 1, 1, 1};
    CHECK_THROWS_WITH(smoothquant_scales(0, 2, 2, {}, wt, s), Catch::Contains("'rows' = 0"));
    CHECK_THROWS_WITH(smoothquant_scales(3, 2, 2, x, wt, s), Catch::Contains("'x.size()' = 4"));
    std::vector<float> xn = x;
    xn[2] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(smoothquant_scales(2, 2, 2, xn, wt, s), Catch::Contains("'x' = 2"));
    std::vector<float> out(4);
    const std::vector<float> bad = {1.0f, 0.0f};
    CHECK_THROWS_WITH(lowbit::ptq::scale_weight_columns(2, 2, wt, bad, out), Catch::Contains("'s' = 1"));
    CHECK_THROWS_WITH(lowbit::ptq::unscale_activation_columns(2, 2, x, s3, out), Catch::Contains("'s.size()' = 3"));
    CHECK_THROWS_WITH(lowbit::ptq::column_absmean(0, 2, {}, s), Catch::Contains("'rows' = 0"));
    std::vector<float> am(3);
    CHECK_THROWS_WITH(lowbit::ptq::column_absmax(2, 2, x, am), Catch::Contains("'absmax.size()' = 3"));
}
