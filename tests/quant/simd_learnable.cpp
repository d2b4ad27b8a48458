// The SIMD paths of the LSQ and PACT backwards (quant/learnable.hpp, quant/pact.hpp) against their scalar specs: this file
// is compiled with -march=native (tests/quant/CMakeLists.txt), so kernels::default_arch is the
// machine's best ISA; the SIMD loop is used there when that ISA has a fused multiply-add
// (AVX2 + FMA3, AVX-512). dx must equal lsq_element::grad bit for bit and dscale / dzero_point
// the lane-blocked double sums of its terms, at every tail size, per tensor and per channel.
// On a machine without FMA the SIMD path is not taken and the test checks the scalar path.
#include "lowbit_catch.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <lowbit/quant/learnable.hpp>
#include <lowbit/quant/pact.hpp>

namespace {

std::uint32_t bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

// Same NaN-ness, else the same bits (NaN payloads of the sums are not specified).
bool same(float a, float b) { return (std::isnan(a) && std::isnan(b)) || bits(a) == bits(b); }

struct spec_result {
    std::vector<float> dx;
    float ds = 0.0f, dz = 0.0f;
};

spec_result spec(const lowbit::lsq_element& e, const std::vector<float>& x, const std::vector<float>& dy) {
    spec_result r;
    r.dx.resize(x.size());
    double p[16] = {}, q[16] = {};
    for (std::size_t k = 0; k < x.size(); ++k) {
        const lowbit::lsq_grad g = e.grad(x[k], dy[k]);
        r.dx[k] = g.dx;
        p[k % 16] += static_cast<double>(g.dscale);
        q[k % 16] += static_cast<double>(g.dzero_point);
    }
    double a = 0.0, b = 0.0;
    for (int j = 0; j < 16; ++j) {
        a += p[j];
        b += q[j];
    }
    r.ds = static_cast<float>(a);
    r.dz = static_cast<float>(b);
    return r;
}

std::vector<float> data(std::mt19937& g, std::size_t n, float spread) {
    std::normal_distribution<float> d(0.0f, spread);
    std::vector<float> v(n);
    for (float& f : v) f = d(g);
    // ties of x * inv + zb, range ends, signed zeros, infinities
    const float special[] = {0.0f, -0.0f, 0.015f, -0.015f, 0.045f, 3.93f, -3.93f, 100.0f, -100.0f,
                             std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
    for (std::size_t k = 0; k < n; k += 7) v[k] = special[(k / 7) % (sizeof special / sizeof special[0])];
    return v;
}

}  // namespace

TEST_CASE("LSQ backward SIMD path equals the scalar spec at tail sizes", "[quant][lsq][simd]") {
    INFO("default_arch: " << lowbit::kernels::default_arch::name());
    std::mt19937 g(5);
    const lowbit::scheme<lowbit::u8> s{};
    const float scale = 0.03f, zp = 131.3f, gf = 0.01f;
    const lowbit::lsq_element e = lowbit::lsq_element::make(scale, zp, s.qmin(), s.qmax(), gf, false);
    for (std::size_t n : {0u, 1u, 2u, 7u, 15u, 16u, 17u, 31u, 33u, 1023u, 4103u}) {
        INFO("n = " << n);
        const std::vector<float> x = data(g, n, 2.0f), dy = data(g, n, 1.0f);
        const spec_result want = spec(e, x, dy);
        std::vector<float> dx(n);
        const auto r = lowbit::lsq_backward(s, scale, zp, gf, x, dy, dx);
        REQUIRE(r.ok());
        for (std::size_t k = 0; k < n; ++k) {
            INFO("k = " << k << " x = " << x[k]);
            REQUIRE(bits(dx[k]) == bits(want.dx[k]));
        }
        CHECK(same(r->dscale, want.ds));
        CHECK(same(r->dzero_point, want.dz));
        // in place (dx aliasing dy)
        std::vector<float> io = dy;
        const auto r2 = lowbit::lsq_backward(s, scale, zp, gf, x, io, io);
        REQUIRE(r2.ok());
        for (std::size_t k = 0; k < n; ++k) REQUIRE(bits(io[k]) == bits(dx[k]));
        CHECK(same(r2->dscale, want.ds));
        // a NaN makes the sums NaN and dx = dy * 0
        if (n > 3) {
            std::vector<float> xn = x;
            xn[3] = std::numeric_limits<float>::quiet_NaN();
            const auto r3 = lowbit::lsq_backward(s, scale, zp, gf, xn, dy, dx);
            REQUIRE(r3.ok());
            CHECK(std::isnan(r3->dscale));
            CHECK(bits(dx[3]) == bits(dy[3] * 0.0f));
        }
    }
}

TEST_CASE("LSQ per-channel backward SIMD path equals the scalar spec", "[quant][lsq][simd]") {
    std::mt19937 g(9);
    using S = lowbit::scheme<lowbit::s8>;
    // inner sizes: multiples of 16 (SIMD every run), others (runs after the first start
    // mid-lane: scalar there), and one channel run (outer 1)
    const std::size_t shapes[][3] = {{1, 3, 4103}, {2, 3, 17}, {3, 4, 16}, {5, 2, 1023}, {4, 3, 1}, {2, 2, 0}};
    for (const auto& sh : shapes) {
        const std::size_t outer = sh[0], C = sh[1], inner = sh[2], n = outer * C * inner;
        INFO("outer " << outer << " C " << C << " inner " << inner);
        const S s = S{}.per_channel(1);
        const lowbit::shape shp{outer, C, inner};
        std::vector<float> scales(C), zps(C), ds(C), dz(C);
        for (std::size_t c = 0; c < C; ++c) {
            scales[c] = 0.02f + 0.003f * static_cast<float>(c);
            zps[c] = -3.4f + 2.2f * static_cast<float>(c);
        }
        const std::vector<float> x = data(g, n, 2.0f), dy = data(g, n, 1.0f);
        std::vector<float> dx(n);
        REQUIRE(lowbit::lsq_backward(s, shp, scales, zps, 0.5f, x, dy, dx, ds, dz).ok());
        for (std::size_t c = 0; c < C; ++c) {
            const lowbit::lsq_element e = lowbit::lsq_element::make(scales[c], zps[c], s.qmin(), s.qmax(), 0.5f, true);
            std::vector<float> xc, dyc;
            for (std::size_t o = 0; o < outer; ++o)
                for (std::size_t i = 0; i < inner; ++i) {
                    xc.push_back(x[(o * C + c) * inner + i]);
                    dyc.push_back(dy[(o * C + c) * inner + i]);
                }
            const spec_result want = spec(e, xc, dyc);
            std::size_t k = 0;
            for (std::size_t o = 0; o < outer; ++o)
                for (std::size_t i = 0; i < inner; ++i, ++k) REQUIRE(bits(dx[(o * C + c) * inner + i]) == bits(want.dx[k]));
            CHECK(same(ds[c], want.ds));
            CHECK(same(dz[c], want.dz));
        }
    }
}

namespace {

// backward_run_simd<A> on one run against the spec, for an arch this build can run.
template <class A>
void check_arch(std::mt19937& g) {
    INFO("arch: " << A::name());
    const lowbit::scheme<lowbit::u8> s{};
    const lowbit::lsq_element e = lowbit::lsq_element::make(0.03f, 131.3f, s.qmin(), s.qmax(), 0.01f, false);
    for (std::size_t n : {1u, 2u, 15u, 16u, 17u, 33u, 1023u}) {
        INFO("n = " << n);
        const std::vector<float> x = data(g, n, 2.0f), dy = data(g, n, 1.0f);
        const spec_result want = spec(e, x, dy);
        std::vector<float> dx(n);
        lowbit::detail::lsq::partial_sums p;
        const std::size_t lane = lowbit::detail::lsq::backward_run_simd<A>(e, x.data(), dy.data(), dx.data(), n, p);
        CHECK(lane == n % 16);
        for (std::size_t k = 0; k < n; ++k) {
            INFO("k = " << k << " x = " << x[k]);
            REQUIRE(bits(dx[k]) == bits(want.dx[k]));
        }
        CHECK(same(static_cast<float>(p.total_ds()), want.ds));
        CHECK(same(static_cast<float>(p.total_dz()), want.dz));
    }
}

}  // namespace

// Each fused-multiply-add arch explicitly (this file is built with -march=native and
// -ffp-contract=off, at -O0 in Debug: xsimd 8.1's AVX-512 fma is an unfused a * b + c that
// only contraction fused, which is how the AVX-512 loop once disagreed with the spec at -O0).
TEST_CASE("LSQ backward SIMD loop equals the spec on every FMA arch of this build", "[quant][lsq][simd]") {
    std::mt19937 g(13);
    int archs = 0;
#if defined(__AVX2__) && defined(__FMA__)
    check_arch<xsimd::fma3<xsimd::avx2>>(g);
    ++archs;
#endif
#if defined(__AVX512BW__)
    check_arch<xsimd::avx512bw>(g);
    ++archs;
#endif
    if (archs == 0) WARN("no FMA arch in this build: only the scalar path was tested");
}

// ---- PACT backward (quant/pact.hpp): the SIMD loop against the spec loop ----

namespace {

template <class A>
void check_pact_arch(std::mt19937& g) {
    INFO("arch: " << A::name());
    const float alpha = 2.5f;
    for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 31u, 32u, 33u, 1023u, 4103u}) {
        INFO("n = " << n);
        std::vector<float> x = data(g, n, 2.0f), dy = data(g, n, 1.0f);
        // on alpha, on 0, -0, just below alpha, NaN
        const float edge[] = {alpha, 0.0f, -0.0f, std::nextafter(alpha, 0.0f), std::numeric_limits<float>::quiet_NaN()};
        for (std::size_t k = 3; k < n; k += 11) x[k] = edge[(k / 11) % 5];
        std::vector<float> want_dx(n), dx(n);
        lowbit::detail::lane_partials want, got;
        (void)lowbit::detail::pact::backward_scalar(alpha, x.data(), dy.data(), want_dx.data(), n, want, 0);
        lowbit::detail::pact::backward_simd<A>(alpha, x.data(), dy.data(), dx.data(), n, got);
        for (std::size_t k = 0; k < n; ++k) {
            INFO("k = " << k << " x = " << x[k]);
            REQUIRE(bits(dx[k]) == bits(want_dx[k]));
        }
        CHECK(bits(static_cast<float>(got.total())) == bits(static_cast<float>(want.total())));
        // without NaN the total is a number, equal too
        for (float& v : x)
            if (std::isnan(v)) v = 1.0f;
        lowbit::detail::lane_partials w2, g2;
        (void)lowbit::detail::pact::backward_scalar(alpha, x.data(), dy.data(), want_dx.data(), n, w2, 0);
        lowbit::detail::pact::backward_simd<A>(alpha, x.data(), dy.data(), dx.data(), n, g2);
        CHECK(bits(static_cast<float>(g2.total())) == bits(static_cast<float>(w2.total())));
        CHECK(!std::isnan(g2.total()));
    }
}

}  // namespace

TEST_CASE("PACT backward SIMD loop equals the spec on every AVX2+ arch of this build", "[quant][pact][simd]") {
    std::mt19937 g(21);
    int archs = 0;
#if defined(__AVX2__)
    check_pact_arch<xsimd::avx2>(g);
    ++archs;
#endif
#if defined(__AVX512BW__)
    check_pact_arch<xsimd::avx512bw>(g);
    ++archs;
#endif
    if (archs == 0) WARN("no AVX2 in this build: only the scalar path was tested");
    // the public entry (default_arch of this -march=native build) against the spec
    const lowbit::scheme<lowbit::u8> s{};
    std::vector<float> x = data(g, 1000, 3.0f), dy = data(g, 1000, 1.0f), dx(1000), want_dx(1000);
    lowbit::detail::lane_partials want;
    (void)lowbit::detail::pact::backward_scalar(2.5f, x.data(), dy.data(), want_dx.data(), x.size(), want, 0);
    const float da = *lowbit::pact_backward(s, 2.5f, x, dy, dx);
    CHECK(bits(da) == bits(static_cast<float>(want.total())));
    for (std::size_t k = 0; k < x.size(); ++k) REQUIRE(bits(dx[k]) == bits(want_dx[k]));
}
