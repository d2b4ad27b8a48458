// ptq/adaround.hpp: hand-computed objective, finite-difference gradient check, the
// improvement over round-to-nearest on held-out activations (4-bit, per channel), the integer
// grid of the result, determinism, and the edge / error behaviour.
#include "lowbit_catch.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include <lowbit/core/fake_quantize.hpp>
#include <lowbit/core/quantize.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>
#include <lowbit/ptq/adaround.hpp>
#include <lowbit/ptq/linalg.hpp>

namespace {

using ar_s4sym = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>;

// Uniform in [0, 1) and standard normals from mt19937's raw 32-bit output (no <random>
// distributions: the same numbers with every standard library).
struct ar_rng {
    std::mt19937 eng;
    explicit ar_rng(std::uint32_t seed) : eng(seed) {}
    double uniform() { return (static_cast<double>(eng()) + 0.5) / 4294967296.0; }
    float normal() {
        const double u1 = uniform(), u2 = uniform();
        return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
    }
};

// A synthetic linear layer: weights N x K gaussian (std 0.1) with 2 outlier rows and 2
// outlier columns (x3); activations rows x K correlated (each input mixes its own noise, its
// neighbour's and 4 shared factors) with 3 outlier input channels (x6). The first `calib`
// rows calibrate, the rest are held out.
struct ar_layer {
    std::size_t n = 0, k = 0, rows = 0;
    std::vector<float> w, x;
};

ar_layer ar_make_layer(std::uint32_t seed, std::size_t n, std::size_t k, std::size_t rows) {
    ar_rng r(seed);
    ar_layer l;
    l.n = n;
    l.k = k;
    l.rows = rows;
    l.w.resize(n * k);
    for (float& v : l.w) v = 0.1f * r.normal();
    for (std::size_t j : {std::size_t(1), n / 2})
        for (std::size_t t = 0; t < k; ++t) l.w[j * k + t] *= 3.0f;
    for (std::size_t t : {std::size_t(2), k / 3})
        for (std::size_t j = 0; j < n; ++j) l.w[j * k + t] *= 3.0f;
    std::vector<float> mix(4 * k);
    for (float& v : mix) v = r.normal();
    l.x.resize(rows * k);
    std::vector<float> z(k);
    for (std::size_t i = 0; i < rows; ++i) {
        float f[4];
        for (float& v : f) v = r.normal();
        for (float& v : z) v = r.normal();
        for (std::size_t t = 0; t < k; ++t) {
            float v = z[t] + 0.5f * z[(t + 1) % k];
            for (std::size_t c = 0; c < 4; ++c) v += 0.4f * mix[c * k + t] * f[c];
            if (t == 5 || t == k / 2 || t == k - 3) v *= 6.0f;
            l.x[i * k + t] = v;
        }
    }
    return l;
}

// Output MSE of weights wq against w on rows [r0, r1) of x.
double ar_output_mse(const ar_layer& l, const std::vector<float>& wq, std::size_t r0, std::size_t r1) {
    const std::size_t m = r1 - r0;
    lowbit::span<const float> xs(l.x.data() + r0 * l.k, m * l.k);
    std::vector<float> y(m * l.n), yq(m * l.n);
    REQUIRE(lowbit::ptq::linear_forward(m, l.n, l.k, xs, l.w, {}, y).ok());
    REQUIRE(lowbit::ptq::linear_forward(m, l.n, l.k, xs, wq, {}, yq).ok());
    return *lowbit::ptq::mse(y, yq);
}

// Round-to-nearest with lowbit's per-channel min/max observer and fake-quantize.
template <class Scheme>
std::vector<float> ar_rtn(const Scheme& s, const ar_layer& l, std::vector<float>& scales,
                          std::vector<std::int32_t>& zps) {
    std::vector<float> state(2 * l.n);
    lowbit::per_channel_minmax_observer<Scheme> obs(s, l.n, state);
    REQUIRE(obs.observe(lowbit::shape{l.n, l.k}, l.w).ok());
    scales.assign(l.n, 0.0f);
    zps.assign(l.n, 0);
    REQUIRE(obs.qparams(scales, zps).ok());
    std::vector<float> wq(l.w.size());
    REQUIRE(lowbit::ref::fake_quantize(s, lowbit::shape{l.n, l.k}, {scales, zps}, l.w, wq).ok());
    return wq;
}

struct ar_run {
    lowbit::ptq::adaround_report rep;
    std::vector<float> scales, w_hat;
    std::vector<std::int32_t> zps;
    std::vector<std::uint8_t> q;
};

template <class Scheme>
ar_run ar_adaround(const Scheme& s, const ar_layer& l, std::size_t calib_rows, const lowbit::ptq::adaround_options& o,
                   std::size_t params) {
    ar_run r;
    r.scales.assign(params, 0.0f);
    r.zps.assign(params, 0);
    r.q.assign(Scheme::format::storage_size(l.n * l.k), 0);
    r.w_hat.assign(l.n * l.k, 0.0f);
    lowbit::span<const float> xs(l.x.data(), calib_rows * l.k);
    r.rep = *lowbit::ptq::adaround(s, l.n, l.k, l.w, calib_rows, xs, r.scales, r.zps, r.q, r.w_hat, o);
    return r;
}

std::int32_t ar_code(const std::vector<std::uint8_t>& q, std::size_t i) {
    return lowbit::detail::load<lowbit::s4>(q.data(), i);
}

lowbit::ptq::adaround_options ar_test_options() {
    lowbit::ptq::adaround_options o;
    // The paper's 10000 steps at lr 1e-3 are too slow for the -O0 sanitizer run; 2000 steps at
    // lr 1e-2 travel as far (seeds 1..12, held-out MSE / RTN's: 2000 x 1e-2 gave 0.70..0.89,
    // 10000 x 1e-3 gave 0.71..0.90, 2000 x 1e-3 gave 0.76..0.96).
    o.iterations = 2000;
    o.learning_rate = 1e-2f;
    o.keep_better_rows = false;  // judge the learned rounding itself
    return o;
}

}  // namespace

TEST_CASE("adaround_objective: hand-computed 1 x 2 layer", "[ptq][adaround]") {
    // w = [0.3, 0.1], symmetric s4 per channel: scale = 0.3 / 7.5 = 0.04, v = [7.5, 2.5],
    // base = [7, 2]. V = 0: sigmoid 0.5, h = 0.5 * 1.2 - 0.1 = 0.5, dh/dV = 1.2 * 0.25 = 0.3.
    // q = [clamp(7.5) = 7, 2.5] -> w~ = [0.28, 0.1], delta = [-0.02, 0]; x = [1, 2]:
    // d = -0.02, recon = d^2 = 0.0004; dL/dw~ = 2 d x = [-0.04, -0.08];
    // dL/dV = [0 (clamped), -0.08 * 0.04 * 0.3 = -0.00096]. Regulariser (beta 2, lambda 0.01):
    // 0.01 * (1 - |0|^2) per weight = 0.02, gradient 0 at h = 0.5.
    const ar_s4sym s = ar_s4sym{}.per_channel(0);
    const std::vector<float> w = {0.3f, 0.1f}, x = {1.0f, 2.0f}, v = {0.0f, 0.0f};
    const std::vector<float> scales = {0.3f / 7.5f};
    const std::vector<std::int32_t> zps = {0};
    std::vector<float> g(2);
    const double loss = *lowbit::ptq::adaround_objective(s, 1, 2, w, 1, x, scales, zps, v, 0.01f, 0.0f, g);
    CHECK(loss == Approx(0.0004).epsilon(1e-4));
    CHECK(g[0] == 0.0f);
    CHECK(g[1] == Approx(-0.00096).epsilon(1e-4));
    const double loss_reg = *lowbit::ptq::adaround_objective(s, 1, 2, w, 1, x, scales, zps, v, 0.01f, 2.0f, g);
    CHECK(loss_reg == Approx(0.0204).epsilon(1e-4));
    CHECK(g[1] == Approx(-0.00096).epsilon(1e-4));
}

TEST_CASE("adaround_objective: gradient matches central finite differences", "[ptq][adaround]") {
    // N = 3, K = 5, batch 4; V in [-1.5, 1.5] keeps h(V) off its clip points (|V| < log 11)
    const ar_layer l = ar_make_layer(7, 3, 5, 4);
    ar_rng r(99);
    std::vector<float> v(15);
    for (float& e : v) e = static_cast<float>(3.0 * r.uniform() - 1.5);
    std::vector<float> scales;
    std::vector<std::int32_t> zps;
    for (const auto& s : {ar_s4sym{}.per_channel(0), ar_s4sym{}.per_group(1, 5)}) {
        (void)ar_rtn(ar_s4sym{}.per_channel(0), l, scales, zps);  // per-row grid (per_group(1, 5) = per row too)
        for (float beta : {0.0f, 3.0f, 20.0f}) {
            std::vector<float> g(15), gd(15);
            REQUIRE(lowbit::ptq::adaround_objective(s, 3, 5, l.w, 4, l.x, scales, zps, v, 0.05f, beta, g).ok());
            for (std::size_t i = 0; i < v.size(); ++i) {
                const float step = 1e-2f;
                std::vector<float> vp = v, vm = v;
                vp[i] += step;
                vm[i] -= step;
                const double lp = *lowbit::ptq::adaround_objective(s, 3, 5, l.w, 4, l.x, scales, zps, vp, 0.05f, beta, gd);
                const double lm = *lowbit::ptq::adaround_objective(s, 3, 5, l.w, 4, l.x, scales, zps, vm, 0.05f, beta, gd);
                const double fd = (lp - lm) / (2.0 * step);
                INFO("beta " << beta << " weight " << i << " analytic " << g[i] << " fd " << fd);
                CHECK(static_cast<double>(g[i]) == Approx(fd).margin(1e-5).epsilon(2e-3));
            }
        }
    }
}

TEST_CASE("adaround: beats round-to-nearest on held-out data, s4 per channel, on the same grid", "[ptq][adaround]") {
    // K = 128, N = 64, 512 calibration + 512 held-out rows. Margin chosen from the sweep test
    // below ("[.adaround_sweep]", seeds 1..12): see the assertion.
    const ar_layer l = ar_make_layer(1, 64, 128, 1024);
    const ar_s4sym s = ar_s4sym{}.per_channel(0);
    std::vector<float> scales;
    std::vector<std::int32_t> zps;
    const std::vector<float> w_rtn = ar_rtn(s, l, scales, zps);
    const ar_run r = ar_adaround(s, l, 512, ar_test_options(), l.n);
    CHECK(r.scales == scales);  // the RTN grid of lowbit's observer
    CHECK(r.zps == zps);
    // every code is floor or ceil of w / s + z (clamped), and w_hat is its dequantized value
    for (std::size_t j = 0; j < l.n; ++j)
        for (std::size_t t = 0; t < l.k; ++t) {
            const std::size_t i = j * l.k + t;
            const float v = l.w[i] * (1.0f / scales[j]);
            const std::int32_t lo = static_cast<std::int32_t>(std::floor(v)) + zps[j];
            const auto clamp = [](std::int32_t c) { return c < -8 ? -8 : c > 7 ? 7 : c; };
            const std::int32_t c = ar_code(r.q, i);
            REQUIRE((c == clamp(lo) || c == clamp(lo + 1)));
            REQUIRE(r.w_hat[i] == static_cast<float>(c - zps[j]) * scales[j]);
        }
    const double rtn_held = ar_output_mse(l, w_rtn, 512, 1024);
    const double ada_held = ar_output_mse(l, r.w_hat, 512, 1024);
    const double ratio = ada_held / rtn_held;
    INFO("held-out MSE: RTN " << rtn_held << ", AdaRound " << ada_held << " (ratio " << ratio << "); calibration "
                              << r.rep.mse_rtn << " -> " << r.rep.mse << ", codes changed " << r.rep.codes_changed
                              << ", soft " << r.rep.soft_weights);
    CHECK(r.rep.iterations == 2000);
    CHECK(r.rep.codes_changed > 0);
    CHECK(r.rep.soft_weights < l.n * l.k / 20);  // the regulariser drove h to 0 / 1
    CHECK(r.rep.mse_rtn == Approx(ar_output_mse(l, w_rtn, 0, 512)).epsilon(1e-3));
    CHECK(ratio <= 0.9);  // seeds 1..12 gave 0.696..0.886 (see the sweep); seed 1: 0.746
}

TEST_CASE("adaround: keep_better_rows never loses to RTN on calibration data", "[ptq][adaround]") {
    const ar_layer l = ar_make_layer(3, 16, 64, 256);
    const ar_s4sym s = ar_s4sym{}.per_channel(0);
    lowbit::ptq::adaround_options o;
    o.iterations = 300;
    o.batch_rows = 16;
    const ar_run r = ar_adaround(s, l, 256, o, l.n);
    CHECK(r.rep.mse <= r.rep.mse_rtn);
    CHECK(r.rep.mse <= r.rep.mse_learned);
    std::vector<float> scales;
    std::vector<std::int32_t> zps;
    const std::vector<float> w_rtn = ar_rtn(s, l, scales, zps);
    CHECK(r.rep.mse == Approx(ar_output_mse(l, r.w_hat, 0, 256)).epsilon(1e-3));
    // rows kept at RTN have exactly RTN's weights
    std::size_t same_rows = 0;
    for (std::size_t j = 0; j < l.n; ++j) {
        bool same = true;
        for (std::size_t t = 0; t < l.k; ++t) same = same && r.w_hat[j * l.k + t] == w_rtn[j * l.k + t];
        same_rows += same ? 1 : 0;
    }
    CHECK(same_rows >= r.rep.rows_kept_rtn);
}

TEST_CASE("adaround: u4 affine per group (32), packed codes read back by ref::dequantize", "[ptq][adaround]") {
    using u4a = lowbit::scheme<lowbit::u4>;
    const u4a s = u4a{}.per_group(1, 32);
    const ar_layer l = ar_make_layer(5, 16, 64, 512);
    lowbit::ptq::adaround_options o = ar_test_options();
    o.iterations = 500;
    const std::size_t params = 16 * 64 / 32;
    ar_run r;
    r.scales.assign(params, 0.0f);
    r.zps.assign(params, 0);
    r.q.assign(16 * 64 / 2, 0);
    r.w_hat.assign(16 * 64, 0.0f);
    r.rep = *lowbit::ptq::adaround(s, 16, 64, l.w, 256, lowbit::span<const float>(l.x.data(), 256 * 64), r.scales,
                                   r.zps, r.q, r.w_hat, o);
    std::vector<float> back(16 * 64);
    REQUIRE(lowbit::ref::dequantize(s, lowbit::shape{16, 64}, {r.scales, r.zps}, r.q, back).ok());
    CHECK(back == r.w_hat);
    // the grid: lowbit's per-group RTN
    std::vector<float> w_rtn(16 * 64);
    REQUIRE(lowbit::ref::fake_quantize(s, lowbit::shape{16, 64}, {r.scales, r.zps}, l.w, w_rtn).ok());
    CHECK(r.rep.mse_learned < r.rep.mse_rtn);
    CHECK(ar_output_mse(l, r.w_hat, 256, 512) < ar_output_mse(l, w_rtn, 256, 512));
}

TEST_CASE("adaround: same seed, same codes, and the seed picks the batches", "[ptq][adaround]") {
    const ar_layer l = ar_make_layer(11, 8, 32, 128);
    const ar_s4sym s = ar_s4sym{}.per_channel(0);
    lowbit::ptq::adaround_options o;
    o.iterations = 200;
    o.batch_rows = 8;
    o.keep_better_rows = false;
    o.seed = 42;
    const ar_run a = ar_adaround(s, l, 128, o, l.n);
    const ar_run b = ar_adaround(s, l, 128, o, l.n);
    CHECK(a.q == b.q);
    CHECK(a.w_hat == b.w_hat);
    CHECK(a.rep.last_batch_loss == b.rep.last_batch_loss);
    o.seed = 43;
    const ar_run c = ar_adaround(s, l, 128, o, l.n);
    CHECK(c.rep.last_batch_loss != a.rep.last_batch_loss);
}

TEST_CASE("adaround: all-zero activations return RTN", "[ptq][adaround]") {
    ar_layer l = ar_make_layer(2, 8, 16, 32);
    for (float& v : l.x) v = 0.0f;
    const ar_s4sym s = ar_s4sym{}.per_channel(0);
    std::vector<float> scales;
    std::vector<std::int32_t> zps;
    const std::vector<float> w_rtn = ar_rtn(s, l, scales, zps);
    const ar_run r = ar_adaround(s, l, 32, ar_test_options(), l.n);
    CHECK(r.rep.zero_activations);
    CHECK(r.rep.iterations == 0);
    CHECK(r.rep.codes_changed == 0);
    CHECK(r.rep.mse == 0.0);
    CHECK(r.w_hat == w_rtn);
    std::vector<std::uint8_t> q_rtn(8 * 16 / 2);
    REQUIRE(lowbit::ref::quantize(s, lowbit::shape{8, 16}, {scales, zps}, l.w, q_rtn).ok());
    CHECK(r.q == q_rtn);
}

TEST_CASE("adaround: constant and zero input channels, zero-range weight rows", "[ptq][adaround]") {
    ar_layer l = ar_make_layer(4, 8, 16, 64);
    for (std::size_t i = 0; i < l.rows; ++i) {
        l.x[i * 16 + 3] = 2.5f;  // constant input channel
        l.x[i * 16 + 7] = 0.0f;  // dead input channel
    }
    for (std::size_t t = 0; t < 16; ++t) {
        l.w[2 * 16 + t] = 0.0f;    // all-zero weight row (scale = eps)
        l.w[5 * 16 + t] = 0.25f;   // constant weight row
    }
    const ar_s4sym s = ar_s4sym{}.per_channel(0);
    std::vector<float> scales;
    std::vector<std::int32_t> zps;
    const std::vector<float> w_rtn = ar_rtn(s, l, scales, zps);
    lowbit::ptq::adaround_options o = ar_test_options();
    o.iterations = 400;
    o.batch_rows = 16;
    const ar_run r = ar_adaround(s, l, 64, o, l.n);
    for (float v : r.w_hat) REQUIRE(std::isfinite(v));
    CHECK(std::isfinite(r.rep.mse));
    for (std::size_t t = 0; t < 16; ++t) {
        CHECK(ar_code(r.q, 2 * 16 + t) == 0);
        CHECK(r.w_hat[2 * 16 + t] == 0.0f);
        CHECK(r.w_hat[5 * 16 + t] == w_rtn[5 * 16 + t]);
    }
    // weights meeting the dead input get only the regulariser: they end at the nearest point
    for (std::size_t j = 0; j < 8; ++j) CHECK(r.w_hat[j * 16 + 7] == w_rtn[j * 16 + 7]);
}

TEST_CASE("adaround: empty layers and errors", "[ptq][adaround]") {
    const ar_s4sym s = ar_s4sym{}.per_channel(0);
    const ar_layer l = ar_make_layer(6, 4, 8, 16);
    std::vector<float> sc(4), wh(32);
    std::vector<std::int32_t> zp(4);
    std::vector<std::uint8_t> q(16);
    lowbit::ptq::adaround_options o;
    o.iterations = 10;
    // N = 0: nothing to do
    {
        std::vector<float> none;
        std::vector<std::int32_t> nz;
        std::vector<std::uint8_t> nq;
        const auto rep = lowbit::ptq::adaround(s, 0, 8, none, 16, l.x, none, nz, nq, none, o);
        CHECK(rep->codes_changed == 0);
    }
    CHECK_THROWS_WITH(lowbit::ptq::adaround(s, 4, 8, l.w, 0, lowbit::span<const float>(), sc, zp, q, wh, o),
                      Catch::Contains("'rows' = 0"));
    CHECK_THROWS_WITH(lowbit::ptq::adaround(s, 4, 8, l.w, 15, l.x, sc, zp, q, wh, o), Catch::Contains("'x.size()'"));
    CHECK_THROWS_WITH(lowbit::ptq::adaround(s, 4, 7, l.w, 16, l.x, sc, zp, q, wh, o), Catch::Contains("'w.size()'"));
    std::vector<float> bad = l.w;
    bad[9] = std::nanf("");
    CHECK_THROWS_WITH(lowbit::ptq::adaround(s, 4, 8, bad, 16, l.x, sc, zp, q, wh, o), Catch::Contains("'w' = 9"));
    std::vector<float> badx = l.x;
    badx[17] = INFINITY;
    CHECK_THROWS_WITH(lowbit::ptq::adaround(s, 4, 8, l.w, 16, badx, sc, zp, q, wh, o), Catch::Contains("'x' = 17"));
    std::vector<float> sc3(3);
    CHECK_THROWS_WITH(lowbit::ptq::adaround(s, 4, 8, l.w, 16, l.x, sc3, zp, q, wh, o),
                      Catch::Contains("'scales.size()' = 3"));
    std::vector<std::uint8_t> q32(32);
    CHECK_THROWS_WITH(lowbit::ptq::adaround(s, 4, 8, l.w, 16, l.x, sc, zp, q32, wh, o), Catch::Contains("'q.size()'"));
    CHECK_THROWS_WITH(lowbit::ptq::adaround(ar_s4sym{}.per_group(1, 3), 4, 8, l.w, 16, l.x, sc, zp, q, wh, o),
                      Catch::Contains("'group_size' = 3"));
    const auto bad_option = [&](void (*set)(lowbit::ptq::adaround_options&), const char* what) {
        lowbit::ptq::adaround_options b = o;
        set(b);
        CHECK_THROWS_WITH(lowbit::ptq::adaround(s, 4, 8, l.w, 16, l.x, sc, zp, q, wh, b), Catch::Contains(what));
    };
    bad_option([](lowbit::ptq::adaround_options& b) { b.batch_rows = 0; }, "'batch_rows' = 0");
    bad_option([](lowbit::ptq::adaround_options& b) { b.batch_rows = 257; }, "'batch_rows' = 257");
    bad_option([](lowbit::ptq::adaround_options& b) { b.beta_end = 0.5f; }, "'beta_end' = 0.5");
    bad_option([](lowbit::ptq::adaround_options& b) { b.beta_start = 1.5f; }, "'beta_start' = 1.5");
    bad_option([](lowbit::ptq::adaround_options& b) { b.learning_rate = 0.0f; }, "'learning_rate' = 0");
    bad_option([](lowbit::ptq::adaround_options& b) { b.warm_start = 1.5f; }, "'warm_start' = 1.5");
    bad_option([](lowbit::ptq::adaround_options& b) { b.reg_param = -1.0f; }, "'reg_param' = -1");
    bad_option([](lowbit::ptq::adaround_options& b) { b.adam_beta2 = 1.0f; }, "'adam_beta2' = 1");
    // nothing written on error
    CHECK(sc == std::vector<float>(4, 0.0f));
    CHECK(q == std::vector<std::uint8_t>(16, 0));
    std::vector<float> g(32), v(32, 0.0f), ones(4, 1.0f);
    CHECK_THROWS_WITH(lowbit::ptq::adaround_objective(s, 4, 8, l.w, 2, lowbit::span<const float>(l.x.data(), 16),
                                                      ones, zp, v, 0.01f, 0.5f, g),
                      Catch::Contains("'beta' = 0.5"));
}

// Not run by default: the seed sweep behind the evidence test's margin (ptq_tests "[.adaround_sweep]";
// AR_LR, AR_IT, AR_REG in the environment override learning rate, steps, lambda).
TEST_CASE("adaround: held-out improvement over seeds 1..12", "[.adaround_sweep]") {
    const ar_s4sym s = ar_s4sym{}.per_channel(0);
    for (std::uint32_t seed = 1; seed <= 12; ++seed) {
        const ar_layer l = ar_make_layer(seed, 64, 128, 1024);
        std::vector<float> scales;
        std::vector<std::int32_t> zps;
        const std::vector<float> w_rtn = ar_rtn(s, l, scales, zps);
        lowbit::ptq::adaround_options o = ar_test_options();
        if (const char* e = std::getenv("AR_LR")) o.learning_rate = std::strtof(e, nullptr);
        if (const char* e = std::getenv("AR_IT")) o.iterations = std::strtoul(e, nullptr, 10);
        if (const char* e = std::getenv("AR_REG")) o.reg_param = std::strtof(e, nullptr);
        const ar_run r = ar_adaround(s, l, 512, o, l.n);
        const double a = ar_output_mse(l, w_rtn, 512, 1024), b = ar_output_mse(l, r.w_hat, 512, 1024);
        std::printf("seed %2u  held-out MSE RTN %.6g  AdaRound %.6g  ratio %.4f  calib %.6g -> %.6g  changed %zu  soft %zu\n",
                    seed, a, b, b / a, r.rep.mse_rtn, r.rep.mse_learned, r.rep.codes_changed, r.rep.soft_weights);
    }
}
