// LSQ / LSQ+ (quant/learnable.hpp): golden vectors from torch 1.13's learnable fake-quantize
// ops (tests/golden/generate_learnable.py), finite-difference checks of the gradients, the
// stateful quantizers, and the argument checks.
//
// Golden comparisons are exact (float bits) for y, dx and every per-element scale /
// zero-point gradient term. torch's reduced dscale / dzero_point come from a float32 cascade
// sum whose order lowbit does not reproduce (lowbit sums in double, lane-blocked, and rounds once); they are
// compared with the float32 summation error bound (n - 1) * 2^-24 * sum|terms| + 1 ulp, and
// lowbit's sum is also checked exactly against the double sum of torch's own terms.
#include "golden_reader.hpp"
#include "lowbit_catch.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <lowbit/quant/learnable.hpp>

namespace {

using lowbit::span;

using golden::bits;
using golden::row;
using golden::show;

// The data rows of a file written by tests/golden/generate_learnable.py (tests/golden_reader.hpp).
std::vector<row> load(const std::string& name) { return golden::load(name, "generate_learnable.py"); }

// Counts exact comparisons; reports the first mismatches.
struct tally {
    std::size_t compared = 0, mismatches = 0;
    void same(const std::string& ctx, float expected, float got) {
        ++compared;
        if (bits(expected) != bits(got)) {
            if (++mismatches <= 20) FAIL_CHECK(ctx << ": torch " << show(expected) << ", lowbit " << show(got));
        }
    }
    void close(const std::string& ctx, float torch_total, float lowbit_total, const std::vector<float>& terms) {
        ++compared;
        double abs_sum = 0.0;
        for (float t : terms) abs_sum += std::fabs(static_cast<double>(t));
        const double n = static_cast<double>(terms.size());
        const float big = std::fabs(torch_total) > std::fabs(lowbit_total) ? torch_total : lowbit_total;
        // one float ulp of the larger total (lowbit's own rounding is half of one)
        const double ulp = static_cast<double>(std::nextafter(std::fabs(big), 1e30f) - std::fabs(big));
        const double bound = (n > 1 ? n - 1 : 0) * 0x1p-24 * abs_sum + ulp;
        const double diff = std::fabs(static_cast<double>(torch_total) - static_cast<double>(lowbit_total));
        if (!(diff <= bound)) {
            if (++mismatches <= 20)
                FAIL_CHECK(ctx << ": torch " << show(torch_total) << ", lowbit " << show(lowbit_total) << ", |diff| "
                               << diff << " > bound " << bound);
        }
    }
    void finish(std::size_t min_compared) const {
        INFO(mismatches << " mismatch(es) in " << compared << " comparisons");
        CHECK(mismatches == 0);
        CHECK(compared > min_compared);
    }
};

// float(sum in double, lane-blocked) of some terms: what lowbit's reduction gives (file
// comment of learnable.hpp): term k into double partial k mod 16, partials added in order.
float double_sum(const std::vector<float>& t) {
    double p[16] = {};
    for (std::size_t k = 0; k < t.size(); ++k) p[k % 16] += static_cast<double>(t[k]);
    double s = 0.0;
    for (double v : p) s += v;
    return static_cast<float>(s);
}

template <class Fn>
void with_format(const std::string& fmt, Fn&& fn) {
    if (fmt == "s8") {
        fn(lowbit::scheme<lowbit::s8>{});
    } else if (fmt == "u8") {
        fn(lowbit::scheme<lowbit::u8>{});
    } else if (fmt == "s4") {
        fn(lowbit::scheme<lowbit::s4>{});
    } else if (fmt == "u4") {
        fn(lowbit::scheme<lowbit::u4>{});
    } else {
        throw std::runtime_error("unknown format " + fmt);
    }
}

}  // namespace

TEST_CASE("LSQ zero-point rounding: forward rint, per-tensor backward trunc(z + 0.5f)", "[quant][lsq]") {
    // torch: forward clamp(nearbyint(z)), backward static_cast<int64>(clamp(z + 0.5f)).
    CHECK(lowbit::lsq_forward_zero_point(-1.7f, -128, 127) == -2.0f);
    CHECK(lowbit::lsq_backward_zero_point(-1.7f, -128, 127) == -1.0f);
    CHECK(lowbit::lsq_forward_zero_point(2.5f, -128, 127) == 2.0f);
    CHECK(lowbit::lsq_backward_zero_point(2.5f, -128, 127) == 3.0f);
    CHECK(lowbit::lsq_forward_zero_point(0.49999997f, -128, 127) == 0.0f);
    CHECK(lowbit::lsq_backward_zero_point(0.49999997f, -128, 127) == 1.0f);  // 0.49999997f + 0.5f rounds to 1
    CHECK(lowbit::lsq_forward_zero_point(300.0f, 0, 255) == 255.0f);
    CHECK(lowbit::lsq_backward_zero_point(300.0f, 0, 255) == 255.0f);
    CHECK(lowbit::lsq_forward_zero_point(-5.0f, 0, 255) == 0.0f);
    CHECK(lowbit::lsq_backward_zero_point(-5.0f, 0, 255) == 0.0f);
    CHECK(lowbit::lsq_backward_zero_point(-8.6f, -8, 7) == -8.0f);  // -8.1 clamps to -8
    CHECK(lowbit::lsq_backward_zero_point(-8.4f, -8, 7) == -7.0f);  // -7.9 truncates toward zero
}

TEST_CASE("LSQ grad factor is float(1 / sqrt(numel * qmax)) in double", "[quant][lsq]") {
    CHECK(*lowbit::lsq_grad_factor(100, 127) == static_cast<float>(1.0 / std::sqrt(12700.0)));
    CHECK(*lowbit::lsq_grad_factor(1, 1) == 1.0f);
    CHECK_THROWS_WITH(lowbit::lsq_grad_factor(0, 127), Catch::Contains("'numel'"));
    CHECK_THROWS_WITH(lowbit::lsq_grad_factor(10, 0), Catch::Contains("'quant_max'"));
}

TEST_CASE("LSQ per tensor matches torch._fake_quantize_learnable_per_tensor_affine", "[quant][lsq][golden]") {
    tally t;
    std::size_t rows = 0, grad_scaled = 0, per_element = 0;
    for (row& r : load("learnable_per_tensor.txt")) {
        const std::string fmt = r.word();
        const auto qmin = static_cast<std::int32_t>(r.integer()), qmax = static_cast<std::int32_t>(r.integer());
        const float scale = r.real(), z = r.real();
        const bool gs = r.integer() != 0;
        const float gf = r.real();
        const std::size_t n = r.count();
        const auto x = r.reals(n), y = r.reals(n), dy = r.reals(n), dx = r.reals(n), ds = r.reals(n),
                   dz = r.reals(n);
        const float dscale = r.real(), dzp = r.real();
        REQUIRE(r.done());
        ++rows;
        const std::string ctx = r.where() + " " + fmt + " scale=" + show(scale) + " z=" + show(z);
        with_format(fmt, [&](auto s) {
            REQUIRE(s.qmin() == qmin);
            REQUIRE(s.qmax() == qmax);
            if (gs) {
                ++grad_scaled;
                t.same(ctx + " grad_factor", gf, *lowbit::lsq_grad_factor(n, qmax));
            }
            std::vector<float> got_y(n), got_dx(n);
            REQUIRE(lowbit::lsq_forward(s, scale, z, x, got_y).ok());
            const lowbit::lsq_param_grads g = *lowbit::lsq_backward(s, scale, z, gf, x, dy, got_dx);
            for (std::size_t k = 0; k < n; ++k) {
                const std::string e = ctx + " x[" + std::to_string(k) + "]=" + show(x[k]);
                t.same(e + " y", y[k], got_y[k]);
                t.same(e + " dx", dx[k], got_dx[k]);
                // the element alone: a one-term sum is the term, so this is the kernel's value
                float dx1 = 0.0f;
                const lowbit::lsq_param_grads g1 =
                    *lowbit::lsq_backward(s, scale, z, gf, span<const float>(&x[k], 1), span<const float>(&dy[k], 1),
                                          span<float>(&dx1, 1));
                t.same(e + " ds", ds[k], g1.dscale);
                t.same(e + " dz", dz[k], g1.dzero_point);
                ++per_element;
            }
            t.same(ctx + " dscale = double sum of torch's terms", double_sum(ds), g.dscale);
            t.same(ctx + " dzero_point = double sum of torch's terms", double_sum(dz), g.dzero_point);
            t.close(ctx + " dscale vs torch's float32 sum", dscale, g.dscale, ds);
            t.close(ctx + " dzero_point vs torch's float32 sum", dzp, g.dzero_point, dz);
        });
    }
    CHECK(rows >= 40);
    CHECK(grad_scaled >= 10);
    t.finish(4 * per_element);
}

TEST_CASE("LSQ per channel matches torch._fake_quantize_learnable_per_channel_affine", "[quant][lsq][golden]") {
    tally t;
    std::size_t rows = 0, per_element = 0;
    for (row& r : load("learnable_per_channel.txt")) {
        const std::string fmt = r.word();
        const auto qmin = static_cast<std::int32_t>(r.integer()), qmax = static_cast<std::int32_t>(r.integer());
        const std::size_t rank = r.count();
        std::vector<std::size_t> dims(rank);
        for (std::size_t& d : dims) d = r.count();
        const std::size_t axis = r.count(), C = r.count();
        const auto scales = r.reals(C), zps = r.reals(C);
        const bool gs = r.integer() != 0;
        const float gf = r.real();
        const std::size_t n = r.count();
        const auto x = r.reals(n), y = r.reals(n), dy = r.reals(n), dx = r.reals(n), ds = r.reals(n),
                   dz = r.reals(n), dscales = r.reals(C), dzps = r.reals(C);
        REQUIRE(r.done());
        ++rows;
        const lowbit::shape shp(dims.data(), rank);
        const std::string ctx = r.where() + " " + fmt + " axis=" + std::to_string(axis);
        with_format(fmt, [&](auto base) {
            const auto s = base.per_channel(axis);
            REQUIRE(s.qmin() == qmin);
            REQUIRE(s.qmax() == qmax);
            if (gs) t.same(ctx + " grad_factor", gf, *lowbit::lsq_grad_factor(n, qmax));
            std::vector<float> got_y(n), got_dx(n), got_ds(C), got_dz(C);
            REQUIRE(lowbit::lsq_forward(s, shp, scales, zps, x, got_y).ok());
            REQUIRE(lowbit::lsq_backward(s, shp, scales, zps, gf, x, dy, got_dx, got_ds, got_dz).ok());
            const lowbit::quant_layout lay = *lowbit::make_layout(s, shp);
            std::vector<std::vector<float>> ds_c(C), dz_c(C);
            for (std::size_t k = 0; k < n; ++k) {
                const std::size_t c = lay.param_index(k);
                const std::string e = ctx + " c=" + std::to_string(c) + " x[" + std::to_string(k) + "]=" + show(x[k]);
                t.same(e + " y", y[k], got_y[k]);
                t.same(e + " dx", dx[k], got_dx[k]);
                // the element alone, as a one-channel tensor of one element
                const auto s1 = base.per_channel(0);
                float dx1 = 0.0f, ds1 = 0.0f, dz1 = 0.0f;
                REQUIRE(lowbit::lsq_backward(s1, lowbit::shape{1}, span<const float>(&scales[c], 1),
                                             span<const float>(&zps[c], 1), gf, span<const float>(&x[k], 1),
                                             span<const float>(&dy[k], 1), span<float>(&dx1, 1), span<float>(&ds1, 1),
                                             span<float>(&dz1, 1))
                            .ok());
                t.same(e + " ds", ds[k], ds1);
                t.same(e + " dz", dz[k], dz1);
                ds_c[c].push_back(ds[k]);
                dz_c[c].push_back(dz[k]);
                ++per_element;
            }
            for (std::size_t c = 0; c < C; ++c) {
                const std::string e = ctx + " channel " + std::to_string(c);
                t.same(e + " dscale = double sum of torch's terms", double_sum(ds_c[c]), got_ds[c]);
                t.same(e + " dzero_point = double sum of torch's terms", double_sum(dz_c[c]), got_dz[c]);
                t.close(e + " dscale vs torch", dscales[c], got_ds[c], ds_c[c]);
                t.close(e + " dzero_point vs torch", dzps[c], got_dz[c], dz_c[c]);
            }
        });
    }
    CHECK(rows >= 10);
    t.finish(4 * per_element);
}

// ---------------------------------------------------------------------------------------
// Finite differences.
//
// LSQ's gradients are those of a straight-through surrogate, not of the piecewise-constant
// fake-quantize itself (whose derivative is 0 almost everywhere). What is checked: with
// d_k = r_k - (x_k / s + z) frozen at the base point (r_k the kernel's rounded value, z the
// backward's zero point), the surrogate
//     Y_k(x, s, z) = s * (clamp(x / s + z + d_k, qmin, qmax) - z)
// equals y at the base point, and lowbit's dx, dscale, dzero_point equal the derivatives of
// L = sum_k w_k Y_k, taken by central differences in double. Y is piecewise linear in s and z
// (and in x): the kinks are where x / s + z + d_k crosses qmin or qmax, i.e. only elements
// with r_k exactly qmin or qmax sit on one; those are excluded (the golden data covers them).
// The step keeps every other element on its piece, so the difference quotient is exact up
// to double rounding; the tolerance is lowbit's float rounding: a few ulps per term.

namespace {

struct fd_data {
    std::vector<float> x, w;
};

fd_data fd_inputs(std::uint32_t seed, std::size_t n, float scale, float zb, std::int32_t qmin, std::int32_t qmax) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    fd_data d;
    const float inv = 1.0f / scale;
    while (d.x.size() < n) {
        const float centre = 0.5f * static_cast<float>(qmin + qmax) - zb;  // mid-range, in steps
        const float v = (centre + nd(rng) * 0.45f * static_cast<float>(qmax - qmin)) * scale;
        const float r = lowbit::round_half_even(std::fma(v, inv, zb));
        if (r == static_cast<float>(qmin) || r == static_cast<float>(qmax)) continue;  // on a kink
        d.x.push_back(v);
        d.w.push_back(nd(rng));
    }
    return d;
}

// L(x, s, z) of the surrogate with frozen offsets d.
double surrogate(const std::vector<double>& x, const std::vector<float>& w, const std::vector<double>& d, double s,
                 double z, double qmin, double qmax) {
    double L = 0.0;
    for (std::size_t k = 0; k < x.size(); ++k) {
        double v = x[k] / s + z + d[k];
        v = v < qmin ? qmin : v > qmax ? qmax : v;
        L += static_cast<double>(w[k]) * s * (v - z);
    }
    return L;
}

template <class Scheme>
void fd_check_per_tensor(const Scheme& s, float scale, float z, std::uint32_t seed) {
    const auto qmin = static_cast<double>(s.qmin()), qmax = static_cast<double>(s.qmax());
    const float zb = lowbit::lsq_backward_zero_point(z, s.qmin(), s.qmax());
    const fd_data dat = fd_inputs(seed, 200, scale, zb, s.qmin(), s.qmax());
    const std::size_t n = dat.x.size();
    std::vector<float> dx(n);
    const lowbit::lsq_param_grads g = *lowbit::lsq_backward(s, scale, z, 1.0f, dat.x, dat.w, dx);

    std::vector<double> xd(dat.x.begin(), dat.x.end()), d(n);
    const float inv = 1.0f / scale;
    double abs_terms_s = 0.0, abs_terms_z = 0.0, abs_L = 0.0;
    std::size_t clipped = 0, inside = 0;
    for (std::size_t k = 0; k < n; ++k) {
        const double r = lowbit::round_half_even(std::fma(dat.x[k], inv, zb));
        d[k] = r - (xd[k] / scale + zb);
        const double rc = r < qmin ? qmin : r > qmax ? qmax : r;
        (r < qmin || r > qmax ? clipped : inside) += 1;
        abs_terms_s += std::fabs(dat.w[k] * (r < qmin || r > qmax ? rc - zb : r - zb - xd[k] / scale));
        abs_terms_z += std::fabs(dat.w[k] * scale);
        abs_L += std::fabs(dat.w[k] * scale * (rc - zb));
    }
    REQUIRE(clipped > 10);  // both regimes exercised
    REQUIRE(inside > 100);

    const double hs = scale * 0x1p-12, hz = 0x1p-10;
    const double fd_s = (surrogate(xd, dat.w, d, scale + hs, zb, qmin, qmax) -
                         surrogate(xd, dat.w, d, scale - hs, zb, qmin, qmax)) / (2 * hs);
    const double fd_z = (surrogate(xd, dat.w, d, scale, zb + hz, qmin, qmax) -
                         surrogate(xd, dat.w, d, scale, zb - hz, qmin, qmax)) / (2 * hz);
    const double roundoff_s = 8 * static_cast<double>(n) * 0x1p-52 * abs_L / hs;
    const double roundoff_z = 8 * static_cast<double>(n) * 0x1p-52 * abs_L / hz;
    // lowbit's per-term float error: inv (1 rounding), fma, two products: < 5 ulps relative
    const double tol_s = 5 * 0x1p-24 * abs_terms_s + roundoff_s;
    const double tol_z = 3 * 0x1p-24 * abs_terms_z + roundoff_z;
    INFO("scale " << scale << " z " << z << " dscale " << g.dscale << " fd " << fd_s << " tol " << tol_s);
    CHECK(std::fabs(static_cast<double>(g.dscale) - fd_s) <= tol_s);
    INFO("dzero_point " << g.dzero_point << " fd " << fd_z << " tol " << tol_z);
    CHECK(std::fabs(static_cast<double>(g.dzero_point) - fd_z) <= tol_z);

    // dx: perturb single elements (step s / 16 keeps them on their piece): dL/dx_k = w_k * mask
    for (std::size_t k = 0; k < n; k += 17) {
        std::vector<double> xp = xd, xm = xd;
        const double h = scale / 16.0;
        xp[k] += h;
        xm[k] -= h;
        const double fd = (surrogate(xp, dat.w, d, scale, zb, qmin, qmax) - surrogate(xm, dat.w, d, scale, zb, qmin, qmax)) /
                          (2 * h);
        CHECK(std::fabs(static_cast<double>(dx[k]) - fd) <= 1e-9 + 8 * static_cast<double>(n) * 0x1p-52 * abs_L / h);
    }
}

}  // namespace

TEST_CASE("LSQ gradients equal finite differences of the straight-through surrogate", "[quant][lsq][fd]") {
    fd_check_per_tensor(lowbit::scheme<lowbit::s8>{}, 0.05f, 0.0f, 1);
    fd_check_per_tensor(lowbit::scheme<lowbit::u8>{}, 0.0137f, 100.3f, 2);
    fd_check_per_tensor(lowbit::scheme<lowbit::s4>{}, 0.3f, -1.7f, 3);
    fd_check_per_tensor(lowbit::scheme<lowbit::u4>{}, 0.1f, 7.5f, 4);
    fd_check_per_tensor(lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>{}, 1.0f / 3.0f, 0.0f, 5);
}

TEST_CASE("LSQ per-channel sums are the per-tensor op applied channel by channel", "[quant][lsq]") {
    // [outer=3, C=4, inner=5] along axis 1: channel c's gradients equal the per-tensor op on the
    // gathered elements of c, with the per-channel zero point rint(z) (not trunc(z + 0.5)),
    // which the per-tensor op uses for an integer z.
    const auto s = lowbit::scheme<lowbit::u8>{}.per_channel(1);
    const float scales[4] = {0.02f, 0.1f, 0.05f, 0.3f};
    const float zps[4] = {3.0f, 128.0f, 250.0f, 0.0f};
    std::mt19937 rng(9);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    std::vector<float> x(60), dy(60), dx(60);
    for (float& v : x) v = nd(rng);
    for (float& v : dy) v = nd(rng);
    float ds[4], dz[4];
    REQUIRE(lowbit::lsq_backward(s, lowbit::shape{3, 4, 5}, scales, zps, 0.25f, x, dy, dx, ds, dz).ok());
    for (std::size_t c = 0; c < 4; ++c) {
        std::vector<float> xc, dyc, dxc;
        for (std::size_t o = 0; o < 3; ++o)
            for (std::size_t i = 0; i < 5; ++i) {
                xc.push_back(x[(o * 4 + c) * 5 + i]);
                dyc.push_back(dy[(o * 4 + c) * 5 + i]);
            }
        dxc.resize(xc.size());
        const auto g = *lowbit::lsq_backward(lowbit::scheme<lowbit::u8>{}, scales[c], zps[c], 0.25f, xc, dyc, dxc);
        CHECK(bits(g.dscale) == bits(ds[c]));
        CHECK(bits(g.dzero_point) == bits(dz[c]));
        for (std::size_t o = 0, j = 0; o < 3; ++o)
            for (std::size_t i = 0; i < 5; ++i, ++j) CHECK(bits(dxc[j]) == bits(dx[(o * 4 + c) * 5 + i]));
    }
}

TEST_CASE("LSQ non-finite inputs: Inf clipped, NaN poisons the parameter gradients", "[quant][lsq]") {
    const auto s = lowbit::scheme<lowbit::s8>{};
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    const float x[3] = {inf, -inf, 1.0f};
    const float dy[3] = {2.0f, 3.0f, 1.0f};
    float y[3], dx[3];
    REQUIRE(lowbit::lsq_forward(s, 0.5f, 1.0f, x, y).ok());
    CHECK(y[0] == 126.0f * 0.5f);    // (127 - 1) * 0.5
    CHECK(y[1] == -129.0f * 0.5f);   // (-128 - 1) * 0.5
    const auto g = *lowbit::lsq_backward(s, 0.5f, 1.0f, 1.0f, x, dy, dx);
    CHECK(dx[0] == 0.0f);
    CHECK(dx[1] == 0.0f);
    CHECK(dx[2] == 1.0f);
    // 2 * (127 - 1) + 3 * (-128 - 1) + 1 * ((3 - 1) * 0.5 - 1) / 0.5 = 252 - 387 + 0
    CHECK(g.dscale == -135.0f);
    CHECK(g.dzero_point == -(2.0f + 3.0f) * 0.5f);
    const float xn[2] = {nan, 1.0f};
    float yn[2], dxn[2];
    REQUIRE(lowbit::lsq_forward(s, 0.5f, 0.0f, xn, yn).ok());
    CHECK(yn[0] == 0.0f);
    const auto gn = *lowbit::lsq_backward(s, 0.5f, 0.0f, 1.0f, xn, span<const float>(dy, 2), dxn);
    CHECK(dxn[0] == 0.0f);
    CHECK(std::isnan(gn.dscale));
    CHECK(std::isnan(gn.dzero_point));
}

TEST_CASE("lsq_quantizer: clamp_eps, log parameterisation, accumulation, LSQ vs LSQ+", "[quant][lsq]") {
    using S = lowbit::scheme<lowbit::s8>;
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0.0f, 5.0f);  // some beyond the s8 range at scale 0.05
    std::vector<float> x(50), dy(50), y(50), dx(50), yr(50), dxr(50);
    for (float& v : x) v = nd(rng);
    for (float& v : dy) v = nd(rng);
    const float gf = *lowbit::lsq_grad_factor(50, 127);

    SECTION("LSQ: scale learned, zero point fixed, grads accumulate over calls") {
        lowbit::lsq_quantizer<S> q(S{}, 0.05f);
        q.zero_point = 2.4f;
        REQUIRE(q.forward(x, y).ok());
        REQUIRE(lowbit::lsq_forward(S{}, 0.05f, 2.4f, x, yr).ok());
        CHECK(std::memcmp(y.data(), yr.data(), 50 * sizeof(float)) == 0);
        REQUIRE(q.backward(x, dy, dx).ok());
        const auto g = *lowbit::lsq_backward(S{}, 0.05f, 2.4f, gf, x, dy, dxr);
        CHECK(bits(q.dscale) == bits(g.dscale));
        CHECK(q.dzero_point == 0.0f);  // not learned
        REQUIRE(g.dzero_point != 0.0f);
        REQUIRE(q.backward(x, dy, dx).ok());
        CHECK(bits(q.dscale) == bits(g.dscale + g.dscale));
        q.zero_grad();
        CHECK(q.dscale == 0.0f);
    }
    SECTION("LSQ+: the zero point is learned too; no grad scaling gives g = 1") {
        lowbit::lsq_quantizer<S> q(S{}, 0.05f, true);
        q.grad_scaling = false;
        q.zero_point = -3.2f;
        REQUIRE(q.forward(x, y).ok());
        REQUIRE(q.backward(x, dy, dx).ok());
        const auto g = *lowbit::lsq_backward(S{}, 0.05f, -3.2f, 1.0f, x, dy, dxr);
        CHECK(bits(q.dscale) == bits(g.dscale));
        CHECK(bits(q.dzero_point) == bits(g.dzero_point));
        CHECK(q.export_qparams()->zero_point == -3);
    }
    SECTION("clamp_eps: a non-positive scale becomes eps in forward (torch)") {
        lowbit::lsq_quantizer<S> q(S{}, -0.5f);
        REQUIRE(q.forward(x, y).ok());
        CHECK(q.scale == lowbit::default_eps);
        CHECK(q.export_qparams()->scale == lowbit::default_eps);
    }
    SECTION("log: scale = exp(log_scale), dlog_scale = dscale * scale, and it matches FD") {
        lowbit::lsq_quantizer<S> q(S{}, 0.05f, false, lowbit::scale_parameterization::log);
        CHECK(q.log_scale == std::log(0.05f));
        q.log_scale = -3.0f;
        REQUIRE(q.forward(x, y).ok());
        CHECK(q.scale == std::exp(-3.0f));
        REQUIRE(q.backward(x, dy, dx).ok());
        CHECK(bits(q.dlog_scale) == bits(q.dscale * q.scale));
        // d/dlog L(exp(log)) by central differences on the surrogate's scale gradient: since
        // L is piecewise linear in s, dL/dlog = dL/ds * s exactly on the piece.
        const float ds = q.dscale;
        CHECK(std::fabs(static_cast<double>(q.dlog_scale) - static_cast<double>(ds) * std::exp(-3.0)) <=
              4 * 0x1p-24 * std::fabs(static_cast<double>(q.dlog_scale)));
    }
    SECTION("symmetric schemes start at the scheme's zero point") {
        lowbit::lsq_quantizer<lowbit::scheme<lowbit::u8, lowbit::symmetry::symmetric>> q(
            lowbit::scheme<lowbit::u8, lowbit::symmetry::symmetric>{}, 0.1f);
        CHECK(q.zero_point == 128.0f);
        lowbit::lsq_quantizer<lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>> q4(
            lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>{}, 0.1f);
        CHECK(q4.zero_point == 0.0f);
    }
}

TEST_CASE("lsq_channel_quantizer accumulates into caller spans", "[quant][lsq]") {
    const auto s = lowbit::scheme<lowbit::s4>{}.per_channel(0);
    float scales[3] = {0.1f, -1.0f, 0.2f}, zps[3] = {0.0f, 1.0f, -2.0f}, dsc[3] = {1.0f, 1.0f, 1.0f},
          dzp[3] = {0.0f, 0.0f, 0.0f};
    lowbit::lsq_channel_quantizer<decltype(s)> q{s, scales, zps, dsc, dzp, true, true};
    std::vector<float> x(12), dy(12), y(12), dx(12), dxr(12);
    for (std::size_t k = 0; k < 12; ++k) {
        x[k] = 0.37f * static_cast<float>(k) - 2.0f;
        dy[k] = 1.0f - 0.1f * static_cast<float>(k);
    }
    REQUIRE(q.forward(lowbit::shape{3, 4}, x, y).ok());
    CHECK(scales[1] == lowbit::default_eps);  // clamped in place
    REQUIRE(q.backward(lowbit::shape{3, 4}, x, dy, dx).ok());
    float ds[3], dz[3];
    REQUIRE(lowbit::lsq_backward(s, lowbit::shape{3, 4}, scales, zps, *lowbit::lsq_grad_factor(12, 7), x, dy, dxr, ds,
                                 dz)
                .ok());
    for (std::size_t c = 0; c < 3; ++c) {
        CHECK(bits(dsc[c]) == bits(1.0f + ds[c]));
        CHECK(bits(dzp[c]) == bits(0.0f + dz[c]));
    }
    q.zero_grad();
    CHECK(dsc[0] == 0.0f);
    float log_scales[2] = {0.0f, -1.0f}, sc[2], dls[2];
    const float dsv[2] = {2.0f, 3.0f};
    REQUIRE(lowbit::lsq_scales_from_log(log_scales, sc).ok());
    CHECK(sc[0] == 1.0f);
    REQUIRE(lowbit::lsq_log_scale_grads(dsv, sc, dls).ok());
    CHECK(dls[1] == 3.0f * std::exp(-1.0f));
}

TEST_CASE("LSQ argument checks name the argument, nothing is written on error", "[quant][lsq]") {
    const auto s = lowbit::scheme<lowbit::s8>{};
    std::vector<float> x{1.0f, 2.0f}, dy{1.0f, 1.0f}, y{7.0f, 7.0f}, dx{7.0f, 7.0f};
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    for (float bad : {0.0f, -1.0f, nan, inf, 1e-45f}) {
        CHECK_THROWS_WITH(lowbit::lsq_forward(s, bad, 0.0f, x, y), Catch::Contains("'scale'"));
        CHECK_THROWS_WITH(lowbit::lsq_backward(s, bad, 0.0f, 1.0f, x, dy, dx), Catch::Contains("'scale'"));
    }
    CHECK_THROWS_WITH(lowbit::lsq_forward(s, 0.1f, nan, x, y), Catch::Contains("'zero_point'"));
    CHECK_THROWS_WITH(lowbit::lsq_backward(s, 0.1f, inf, 1.0f, x, dy, dx), Catch::Contains("'zero_point'"));
    CHECK_THROWS_WITH(lowbit::lsq_backward(s, 0.1f, 0.0f, nan, x, dy, dx), Catch::Contains("'grad_factor'"));
    std::vector<float> short_y(1);
    CHECK_THROWS_WITH(lowbit::lsq_forward(s, 0.1f, 0.0f, x, short_y), Catch::Contains("'y.size()'"));
    CHECK_THROWS_WITH(lowbit::lsq_backward(s, 0.1f, 0.0f, 1.0f, x, short_y, dx), Catch::Contains("'dy.size()'"));
    CHECK_THROWS_WITH(lowbit::lsq_forward(s.with_rounding(lowbit::rounding::stochastic), 0.1f, 0.0f, x, y),
                      Catch::Contains("'rounding'"));
    CHECK_THROWS_WITH(lowbit::lsq_forward(s.with_profile(lowbit::profile::tflite), 0.1f, 0.0f, x, y),
                      Catch::Contains("'profile'"));
    CHECK_THROWS_WITH(lowbit::lsq_forward(s.per_channel(0), 0.1f, 0.0f, x, y), Catch::Contains("'granularity'"));
    const float one[1] = {0.1f}, zero[1] = {0.0f};
    float d1[1];
    CHECK_THROWS_WITH(lowbit::lsq_forward(s.per_group(0, 2), lowbit::shape{2}, one, zero, x, y),
                      Catch::Contains("'granularity'"));
    CHECK_THROWS_WITH(lowbit::lsq_forward(s.per_channel(0), lowbit::shape{2}, one, zero, x, y),
                      Catch::Contains("'scales.size()'"));
    CHECK_THROWS_WITH(lowbit::lsq_forward(s.per_channel(1), lowbit::shape{2}, one, zero, x, y),
                      Catch::Contains("'axis'"));
    CHECK_THROWS_WITH(lowbit::lsq_backward(s.per_channel(0), lowbit::shape{1, 2}, one, zero, 1.0f, x, dy, dx, d1,
                                           span<float>()),
                      Catch::Contains("'dzero_points.size()'"));
    CHECK(y[0] == 7.0f);  // nothing written by any failed call
    CHECK(dx[0] == 7.0f);
    // an empty tensor is fine and gives zero gradients
    const auto g = *lowbit::lsq_backward(s, 0.1f, 0.0f, 1.0f, span<const float>(), span<const float>(), span<float>());
    CHECK(g.dscale == 0.0f);
}
