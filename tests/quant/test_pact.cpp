// PACT (quant/pact.hpp). torch has no PACT op, so: hand-computed values, the identity with
// lowbit's torch-exact fake-quantize, and finite differences of the clip the paper's
// straight-through gradients differentiate (L = sum w * clamp(x, 0, alpha)).
#include "lowbit_catch.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <lowbit/core/fake_quantize.hpp>
#include <lowbit/quant/pact.hpp>

namespace {

std::uint32_t fbits(float f) {
    std::uint32_t u = 0;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

double clip_loss(const std::vector<float>& x, const std::vector<float>& w, double alpha) {
    double L = 0.0;
    for (std::size_t k = 0; k < x.size(); ++k) {
        const double v = x[k] < 0.0f ? 0.0 : (static_cast<double>(x[k]) > alpha ? alpha : static_cast<double>(x[k]));
        L += static_cast<double>(w[k]) * v;
    }
    return L;
}

}  // namespace

TEST_CASE("PACT forward and backward, hand-computed (u4, alpha = 2)", "[quant][pact]") {
    const auto s = lowbit::scheme<lowbit::u4>{};
    const float alpha = 2.0f;
    const float step = 2.0f / 15.0f;  // f32(alpha / 15)
    CHECK(lowbit::pact_scale(s, alpha) == step);
    const float x[7] = {-1.0f, 0.0f, 0.5f, 2.0f, 3.0f, 1.99f, 0.0666f};
    const float dy[7] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f};
    float y[7], dx[7];
    std::uint8_t mask[7];
    REQUIRE(lowbit::pact_forward(s, alpha, x, y, mask).ok());
    const float inv = 1.0f / step;  // 7.5 after rounding
    CHECK(y[0] == 0.0f);
    CHECK(y[1] == 0.0f);
    CHECK(y[2] == 4.0f * step);  // 0.5 * 7.5 = 3.75 -> 4
    CHECK(y[3] == 15.0f * step);
    CHECK(y[4] == 15.0f * step);
    CHECK(y[5] == lowbit::round_half_even(1.99f * inv) * step);  // 14.925 -> 15
    CHECK(y[6] == 0.0f);  // 0.0666 * 7.5 = 0.4995 -> 0
    const std::uint8_t want_mask[7] = {0, 1, 1, 0, 0, 1, 1};
    CHECK(std::memcmp(mask, want_mask, 7) == 0);
    const float da = *lowbit::pact_backward(s, alpha, x, dy, dx);
    CHECK(da == 4.0f + 5.0f);  // x == alpha and x > alpha go to alpha
    const float want_dx[7] = {0.0f, 2.0f, 3.0f, 0.0f, 0.0f, 6.0f, 7.0f};
    for (int k = 0; k < 7; ++k) CHECK(dx[k] == want_dx[k]);
}

TEST_CASE("PACT forward is torch's fake-quantize of the clip, scale alpha / qmax", "[quant][pact]") {
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(1.0f, 3.0f);
    std::vector<float> x(997), xc(997), y(997), want(997);
    for (float& v : x) v = nd(rng);
    const auto check = [&](auto s, float alpha) {
        for (std::size_t k = 0; k < x.size(); ++k) xc[k] = x[k] < 0.0f ? 0.0f : x[k] > alpha ? alpha : x[k];
        REQUIRE(lowbit::pact_forward(s, alpha, x, y).ok());
        REQUIRE(lowbit::ref::fake_quantize(s, lowbit::qparams{alpha / static_cast<float>(s.qmax()), 0}, xc, want).ok());
        std::size_t mismatches = 0;
        for (std::size_t k = 0; k < x.size(); ++k) mismatches += fbits(y[k]) != fbits(want[k]);
        CHECK(mismatches == 0);
    };
    check(lowbit::scheme<lowbit::u8>{}, 6.0f);
    check(lowbit::scheme<lowbit::u8>{}, 0.7f);
    check(lowbit::scheme<lowbit::u4>{}, 6.0f);
    check(lowbit::scheme<lowbit::u4>{}, 3.3333333f);
    check(lowbit::scheme<lowbit::u8>{}.with_range(0, 100), 1.1f);
}

TEST_CASE("PACT gradients equal finite differences of the clip", "[quant][pact][fd]") {
    // The paper's STE treats the rounding as identity, so its gradients are those of
    // L(x, alpha) = sum_k w_k * clamp(x_k, 0, alpha), which is piecewise linear: central
    // differences with a step smaller than the distance from alpha (and 0) to every x_k are
    // exact up to double rounding.
    const auto s = lowbit::scheme<lowbit::u4>{};
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(1.5f, 2.0f);
    const float alpha = 2.5f;
    std::vector<float> x, w;
    while (x.size() < 300) {
        const float v = nd(rng);
        if (std::fabs(v - alpha) < 1e-3f || std::fabs(v) < 1e-3f) continue;
        x.push_back(v);
        w.push_back(nd(rng));
    }
    std::vector<float> dx(x.size());
    const float da = *lowbit::pact_backward(s, alpha, x, w, dx);
    double abs_w = 0.0, abs_L = 0.0;
    std::size_t above = 0, inside = 0;
    for (std::size_t k = 0; k < x.size(); ++k) {
        abs_w += std::fabs(static_cast<double>(w[k]));
        abs_L += std::fabs(static_cast<double>(w[k]) * 3.0);
        above += x[k] > alpha;
        inside += x[k] > 0.0f && x[k] < alpha;
    }
    REQUIRE(above > 20);
    REQUIRE(inside > 100);
    const double h = 1e-4;
    const double fd = (clip_loss(x, w, alpha + h) - clip_loss(x, w, alpha - h)) / (2 * h);
    // lowbit: exact double sum of floats, one final rounding; FD: double rounding / h
    const double tol = 0x1p-24 * std::fabs(fd) + 4 * static_cast<double>(x.size()) * 0x1p-52 * abs_L / h;
    INFO("dalpha " << da << " fd " << fd << " tol " << tol);
    CHECK(std::fabs(static_cast<double>(da) - fd) <= tol);
    CHECK(std::fabs(fd) > 1.0);  // not vacuous
    for (std::size_t k = 0; k < x.size(); k += 7) {
        std::vector<float> xp = x, xm = x;
        const float hx = 1e-4f;
        xp[k] += hx;
        xm[k] -= hx;
        const double step = (static_cast<double>(xp[k]) - static_cast<double>(xm[k]));  // the float steps taken
        const double fdx = (clip_loss(xp, w, alpha) - clip_loss(xm, w, alpha)) / step;
        CHECK(std::fabs(static_cast<double>(dx[k]) - fdx) <= 1e-6 * std::fabs(static_cast<double>(w[k])) + 1e-9);
    }
    (void)abs_w;
}

TEST_CASE("PACT non-finite inputs and the quantizer struct", "[quant][pact]") {
    const auto s = lowbit::scheme<lowbit::u8>{};
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    const float x[3] = {inf, -inf, 1.0f};
    const float dy[3] = {2.0f, 3.0f, 5.0f};
    float y[3], dx[3];
    REQUIRE(lowbit::pact_forward(s, 4.0f, x, y).ok());
    CHECK(y[0] == 255.0f * (4.0f / 255.0f));
    CHECK(y[1] == 0.0f);
    CHECK(*lowbit::pact_backward(s, 4.0f, x, dy, dx) == 2.0f);
    CHECK(dx[0] == 0.0f);
    CHECK(dx[1] == 0.0f);
    CHECK(dx[2] == 5.0f);
    const float xn[1] = {nan};
    const float dyn[1] = {1.0f};
    float dxn[1];
    CHECK(std::isnan(*lowbit::pact_backward(s, 4.0f, xn, dyn, dxn)));
    CHECK(dxn[0] == 0.0f);

    lowbit::pact_quantizer<lowbit::scheme<lowbit::u8>> q(s, -1.0f);
    REQUIRE(q.forward(x, y).ok());
    CHECK(q.alpha == lowbit::default_eps);  // clamped positive
    q.alpha = 4.0f;
    REQUIRE(q.backward(x, dy, dx).ok());
    REQUIRE(q.backward(x, dy, dx).ok());
    CHECK(q.dalpha == 4.0f);
    CHECK(q.export_qparams().scale == 4.0f / 255.0f);
    CHECK(q.export_qparams().zero_point == 0);
    q.zero_grad();
    CHECK(q.dalpha == 0.0f);
}

TEST_CASE("PACT argument checks", "[quant][pact]") {
    const auto s = lowbit::scheme<lowbit::u8>{};
    std::vector<float> x{1.0f, 2.0f}, y{7.0f, 7.0f}, dx{7.0f, 7.0f}, shorter(1);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (float bad : {0.0f, -1.0f, nan, std::numeric_limits<float>::infinity(), 1e-40f})
        CHECK_THROWS_WITH(lowbit::pact_forward(s, bad, x, y), Catch::Contains("'alpha'"));
    CHECK_THROWS_WITH(lowbit::pact_forward(s.with_range(1, 255), 1.0f, x, y), Catch::Contains("'quant_min'"));
    CHECK_THROWS_WITH(lowbit::pact_forward(s.per_channel(0), 1.0f, x, y), Catch::Contains("'granularity'"));
    CHECK_THROWS_WITH(lowbit::pact_forward(s, 1.0f, x, shorter), Catch::Contains("'y.size()'"));
    CHECK_THROWS_WITH(lowbit::pact_backward(s, 1.0f, x, shorter, dx), Catch::Contains("'dy.size()'"));
    CHECK(y[0] == 7.0f);
    CHECK(dx[0] == 7.0f);
}
