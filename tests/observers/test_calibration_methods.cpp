// Calibration methods as pure functions on a histogram: the logarithm against std::log,
// percentile / MSE / entropy on hand-computable histograms, MSE against closed-form optima
// and an independent numerical integration, and entropy / percentile against the Python
// reference of the published algorithms (tests/golden/generate_entropy.py).
#include "lowbit_catch.hpp"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <lowbit/observers/calibration_methods.hpp>
#include <lowbit/observers/entropy.hpp>

namespace {

namespace cal = lowbit::calibration;
using lowbit::clip_range;
using lowbit::histogram_view;

std::uint64_t dbits(double d) {
    std::uint64_t u;
    std::memcpy(&u, &d, 8);
    return u;
}
double from_dbits(std::uint64_t u) {
    double d;
    std::memcpy(&d, &u, 8);
    return d;
}
std::uint32_t fbits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

// Distance in units in the last place between two finite doubles.
std::uint64_t ulps(double a, double b) {
    const auto key = [](double d) {
        std::int64_t i;
        std::memcpy(&i, &d, 8);
        return i < 0 ? std::numeric_limits<std::int64_t>::min() - i : i;  // monotone in d
    };
    const std::int64_t ka = key(a), kb = key(b);
    return ka > kb ? static_cast<std::uint64_t>(ka) - static_cast<std::uint64_t>(kb)
                   : static_cast<std::uint64_t>(kb) - static_cast<std::uint64_t>(ka);
}

template <class Range>
histogram_view view_of(const Range& counts, double lo, double hi) {
    return histogram_view{lowbit::span<const std::uint64_t>(counts.data(), counts.size()), lo, hi};
}

}  // namespace

// ---------------------------------------------------------------------------------------
// log
// ---------------------------------------------------------------------------------------

TEST_CASE("calibration log: within 1 ulp of std::log, edges as std::log", "[calibration][log]") {
    static_assert(cal::detail::log(1.0) == 0.0, "log is constexpr and exact at 1");
    std::mt19937_64 rng(12345);
    std::vector<double> xs;
    // random bit patterns over every binade, including subnormals
    for (int i = 0; i < 400000; ++i) {
        const std::uint64_t u = rng() & 0x7FEFFFFFFFFFFFFFull;
        const double d = from_dbits(u);
        if (d > 0.0) xs.push_back(d);
    }
    // around 1, where the result is small and relative accuracy is hardest
    for (int i = 1; i < 20000; ++i) {
        xs.push_back(1.0 + i * std::ldexp(1.0, -52));
        xs.push_back(1.0 - i * std::ldexp(1.0, -53));
        std::uniform_real_distribution<double> u(0.7, 1.45);
        xs.push_back(u(rng));
    }
    // powers of two, the reduction boundary sqrt(2), extremes
    for (int e = -1074; e <= 1023; ++e) xs.push_back(std::ldexp(1.0, e));
    for (double d : {1.4142135623730950, 1.4142135623730951, 1.4142135623730954, 0.7071067811865475,
                     0.7071067811865476, std::numeric_limits<double>::min(), std::numeric_limits<double>::max(),
                     std::numeric_limits<double>::denorm_min(), 2.0, 0.5, 10.0, 1e-300, 1e300})
        xs.push_back(d);
    std::uint64_t worst = 0;
    std::size_t differ = 0;
    for (double x : xs) {
        const double got = cal::detail::log(x), want = std::log(x);
        const std::uint64_t d = ulps(got, want);
        worst = d > worst ? d : worst;
        differ += d != 0;
    }
    INFO("values " << xs.size() << ", differing from std::log " << differ << ", worst " << worst << " ulp");
    CHECK(worst <= 1);
    CHECK(differ * 100 < xs.size());  // rarely differs at all (0.3% of these values)
    CHECK(cal::detail::log(0.0) == -std::numeric_limits<double>::infinity());
    CHECK(cal::detail::log(-0.0) == -std::numeric_limits<double>::infinity());
    CHECK(std::isnan(cal::detail::log(-1.0)));
    CHECK(std::isnan(cal::detail::log(std::numeric_limits<double>::quiet_NaN())));
    CHECK(cal::detail::log(std::numeric_limits<double>::infinity()) == std::numeric_limits<double>::infinity());
}

// ---------------------------------------------------------------------------------------
// percentile
// ---------------------------------------------------------------------------------------

TEST_CASE("percentile: hand-computed cumulative fractions and edges", "[calibration][percentile]") {
    // cdf = 0.1, 0.1 + 0.2 = 0.30000000000000004, 0.6000000000000001, 1.0000000000000002
    const std::vector<std::uint64_t> h{10, 20, 30, 40};
    const lowbit::span<const std::uint64_t> c(h.data(), h.size());
    CHECK(*cal::percentile_index(c, 0.0) == 0);
    CHECK(*cal::percentile_index(c, 0.1) == 0);
    CHECK(*cal::percentile_index(c, 0.3) == 1);  // 0.30000000000000004 >= 0.3
    CHECK(*cal::percentile_index(c, 0.6) == 2);
    CHECK(*cal::percentile_index(c, 0.61) == 3);
    CHECK(*cal::percentile_index(c, 1.0) == 3);
    // The symmetric threshold is the LEFT edge of the bin where the cdf reaches p / 100.
    const histogram_view v = view_of(h, 0.0, 4.0);
    CHECK(*cal::percentile_symmetric(v, 99.999) == clip_range{-3.0f, 3.0f});
    CHECK(*cal::percentile_symmetric(v, 30.0) == clip_range{-1.0f, 1.0f});
    CHECK(*cal::percentile_symmetric(v, 0.0) == clip_range{-0.0f, 0.0f});
    histogram_view vm = v;
    vm.max = 2.5f;  // a known max clamps the threshold
    CHECK(*cal::percentile_symmetric(vm, 99.999) == clip_range{-2.5f, 2.5f});

    // cdf reaching p exactly with dyadic fractions: 1/64, 32/64, 63/64, 1
    const std::vector<std::uint64_t> a{1, 31, 31, 1};
    const histogram_view va = view_of(a, -2.0, 2.0);
    // p = 96.875: cut = 1/64 per side; left index 0 (cdf[0] = 1/64), right index 2 (63/64);
    // edges -2, -1, 0, 1, 2
    CHECK(*cal::percentile_asymmetric(va, 96.875) == clip_range{-2.0f, 0.0f});
    CHECK(*cal::percentile_asymmetric(va, 100.0) == clip_range{-2.0f, 1.0f});  // left edge of the last bin
    histogram_view vb = va;
    vb.min = -1.9f;
    vb.max = 1.95f;
    CHECK(*cal::percentile_asymmetric(vb, 96.875) == clip_range{-1.9f, 0.0f});
    // all data in one bin: the clamp crosses and the zero-extended range is returned
    const std::vector<std::uint64_t> one{0, 0, 0, 5};
    histogram_view vo = view_of(one, 0.0, 4.0);
    vo.min = 3.3f;
    vo.max = 3.4f;
    CHECK(*cal::percentile_asymmetric(vo, 99.0) == clip_range{0.0f, 3.0f});
    CHECK(cal::clamp_to_data({-3.5f, -3.5f}, -3.3f, -3.2f) == clip_range{-3.3f, 0.0f});
}

TEST_CASE("percentile: invalid arguments are refused", "[calibration][percentile]") {
    const std::vector<std::uint64_t> h{1, 2, 3};
    const std::vector<std::uint64_t> zero{0, 0};
    const histogram_view v = view_of(h, 0.0, 1.0);
    CHECK_THROWS_AS(cal::percentile_symmetric(v, -0.5), lowbit::error);
    CHECK_THROWS_AS(cal::percentile_symmetric(v, 100.5), lowbit::error);
    CHECK_THROWS_AS(cal::percentile_asymmetric(v, std::nan("")), lowbit::error);
    CHECK_THROWS_AS(cal::percentile_symmetric(view_of(zero, 0.0, 1.0), 99.0), lowbit::error);
    CHECK_THROWS_AS(cal::percentile_symmetric(view_of(std::vector<std::uint64_t>{}, 0.0, 1.0), 99.0), lowbit::error);
    CHECK_THROWS_AS(cal::percentile_symmetric(view_of(h, 1.0, 1.0), 99.0), lowbit::error);
    CHECK_THROWS_AS(cal::percentile_symmetric(view_of(h, 0.0, std::numeric_limits<double>::infinity()), 99.0),
                    lowbit::error);
    histogram_view bad = v;
    bad.min = 2.0f;  // outside [lo, hi]
    CHECK_THROWS_AS(cal::percentile_asymmetric(bad, 99.0), lowbit::error);
    const std::vector<std::uint64_t> huge{~std::uint64_t{0}, 1};
    CHECK_THROWS_AS(cal::percentile_symmetric(view_of(huge, 0.0, 1.0), 99.0), lowbit::error);
    CHECK_THROWS_AS(cal::percentile_index(lowbit::span<const std::uint64_t>(h.data(), h.size()), 1.5), lowbit::error);
}

// ---------------------------------------------------------------------------------------
// golden data: entropy and percentile against the Python reference
// ---------------------------------------------------------------------------------------

namespace {

struct entropy_golden {
    std::string name;
    std::size_t nb = 0, start = 0, stride = 1;
    bool first = true;
    std::vector<std::uint64_t> counts;
    std::size_t best = 0, runner = 0;
    double best_div = 0, runner_div = 0;
    std::vector<std::pair<std::size_t, double>> samples;
};
struct percentile_golden {
    double lo = 0, hi = 0, p = 0;
    std::vector<std::uint64_t> counts;
    std::size_t idx = 0, il = 0, ir = 0;
    float e = 0, el = 0, er = 0;
};

double hexd(const std::string& s) { return std::strtod(s.c_str(), nullptr); }

void load_golden(std::vector<entropy_golden>& ent, std::vector<percentile_golden>& pct) {
    std::ifstream in(std::string(LOWBIT_TEST_DATA_DIR) + "/entropy_calibration.txt");
    REQUIRE(in.good());
    std::string line, tok;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream f(line);
        f >> tok;
        if (tok == "entropy") {
            entropy_golden g;
            std::size_t n = 0, m = 0;
            int first = 0;
            f >> g.name >> n >> g.nb >> g.start >> g.stride >> first;
            g.first = first != 0;
            g.counts.resize(n);
            for (auto& c : g.counts) f >> c;
            f >> g.best >> tok;
            g.best_div = hexd(tok);
            f >> g.runner >> tok;
            g.runner_div = hexd(tok);
            f >> m;
            for (std::size_t k = 0; k < m; ++k) {
                std::size_t i = 0;
                f >> i >> tok;
                g.samples.emplace_back(i, hexd(tok));
            }
            REQUIRE(f);
            ent.push_back(g);
        } else if (tok == "percentile") {
            percentile_golden g;
            std::size_t n = 0;
            f >> n >> tok;
            g.lo = hexd(tok);
            f >> tok;
            g.hi = hexd(tok);
            f >> tok;
            g.p = hexd(tok);
            g.counts.resize(n);
            for (auto& c : g.counts) f >> c;
            f >> g.idx >> g.il >> g.ir >> tok;
            g.e = std::strtof(tok.c_str(), nullptr);
            f >> tok;
            g.el = std::strtof(tok.c_str(), nullptr);
            f >> tok;
            g.er = std::strtof(tok.c_str(), nullptr);
            REQUIRE(f);
            pct.push_back(g);
        }
    }
}

bool same_div(double a, double b, double& worst_rel) {
    if (std::isinf(a) || std::isinf(b)) return a == b;
    const double rel = a == b ? 0.0 : std::fabs(a - b) / std::fmax(std::fabs(b), 1e-300);
    worst_rel = rel > worst_rel ? rel : worst_rel;
    // The reference's log is libm's, ours is within 1 ulp of it: each term can differ by
    // ~2^-52 relative, and a sum of up to 2048 such terms by ~2048 * 2^-52 ~ 5e-13 relative.
    return rel <= 1e-12 || std::fabs(a - b) <= 1e-18;
}

}  // namespace

TEST_CASE("entropy and percentile: the Python reference's answers", "[calibration][entropy][percentile][golden]") {
    std::vector<entropy_golden> ent;
    std::vector<percentile_golden> pct;
    load_golden(ent, pct);
    REQUIRE(ent.size() >= 15);
    REQUIRE(pct.size() >= 150);
    double worst_rel = 0.0;
    std::size_t bitwise = 0, compared = 0;
    for (const auto& g : ent) {
        INFO("case " << g.name);
        cal::entropy_options o;
        o.num_quantized_bins = g.nb;
        o.start_bin = g.start;
        o.stride = g.stride;
        o.first_bin_as_second = g.first;
        const lowbit::span<const std::uint64_t> c(g.counts.data(), g.counts.size());
        const auto r = cal::entropy_threshold(c, o);
        REQUIRE(r.ok());
        CHECK(r->index == g.best);  // the argmin must match exactly
        CHECK(same_div(r->divergence, g.best_div, worst_rel));
        // every sampled candidate's divergence, computed alone
        for (const auto& s : g.samples) {
            cal::entropy_options one = o;
            one.start_bin = s.first;
            one.stride = g.counts.size() + 1;
            const auto d = cal::entropy_threshold(c, one);
            REQUIRE(d.ok());
            REQUIRE(d->index == s.first);
            CHECK(same_div(d->divergence, s.second, worst_rel));
            ++compared;
            bitwise += dbits(d->divergence) == dbits(s.second);
        }
        // and the threshold as an edge of the histogram [0, n]
        const auto t = cal::entropy(view_of(g.counts, 0.0, static_cast<double>(g.counts.size())), o);
        CHECK(t->max == static_cast<float>(g.best));
        CHECK(t->min == -static_cast<float>(g.best));
    }
    INFO("divergences compared " << compared << ", bitwise equal " << bitwise << ", worst relative difference "
                                 << worst_rel);
    CHECK(bitwise * 10 >= compared * 9);  // nearly all are bit-identical to the reference

    for (const auto& g : pct) {
        const lowbit::span<const std::uint64_t> c(g.counts.data(), g.counts.size());
        INFO("percentile " << g.p << " n " << g.counts.size());
        CHECK(*cal::percentile_index(c, g.p / 100.0) == g.idx);
        const double cut = (100.0 - g.p) / 200.0;
        CHECK(*cal::percentile_index(c, cut) == g.il);
        CHECK(*cal::percentile_index(c, 1.0 - cut) == g.ir);
        const histogram_view v{c, g.lo, g.hi};
        if (g.lo >= 0.0) {
            const clip_range s = *cal::percentile_symmetric(v, g.p);
            CHECK(fbits(s.max) == fbits(g.e));
            CHECK(fbits(s.min) == fbits(-g.e));
        } else {
            CHECK_THROWS_AS(cal::percentile_symmetric(v, g.p), lowbit::error);  // not a histogram of |x|
        }
        const clip_range a = *cal::percentile_asymmetric(v, g.p);
        CHECK(fbits(a.min) == fbits(g.el));
        CHECK(fbits(a.max) == fbits(g.er));
    }
}

// ---------------------------------------------------------------------------------------
// entropy: known answers
// ---------------------------------------------------------------------------------------

TEST_CASE("entropy: all mass in the first 128 bins gives the mass edge", "[calibration][entropy]") {
    std::mt19937 rng(5);
    std::vector<std::uint64_t> h(2048, 0);
    for (std::size_t j = 0; j < 128; ++j) h[j] = 1 + rng() % 1000;
    cal::entropy_options o;
    o.first_bin_as_second = false;
    // i = 128: each bin is its own quantized bin, Q == P, KL = 0; every larger i merges bins
    // of unequal counts (KL > 0).
    const auto r = cal::entropy_threshold(lowbit::span<const std::uint64_t>(h.data(), h.size()), o);
    CHECK(r->index == 128);
    CHECK(r->divergence == 0.0);
    CHECK(*cal::entropy(view_of(h, 0.0, 4.0), o) == clip_range{-0.25f, 0.25f});
    // pytorch-quantization's bins[0] = bins[1] makes bins 0 and 1 equal, so i = 129 (which
    // merges exactly those two) also has KL = 0, and the last argmin wins.
    o.first_bin_as_second = true;
    CHECK(cal::entropy_threshold(lowbit::span<const std::uint64_t>(h.data(), h.size()), o)->index == 129);
}

TEST_CASE("entropy: a long thin tail is clipped, a compact distribution is not", "[calibration][entropy]") {
    // bulk: a discretised half-Gaussian over ~300 bins; tail: a count of 1 in every 16th bin to 2047
    std::vector<std::uint64_t> h(2048, 0);
    for (std::size_t j = 0; j < 400; ++j) {
        const double x = static_cast<double>(j) / 100.0;
        h[j] = static_cast<std::uint64_t>(100000.0 * std::exp(-0.5 * x * x));
    }
    for (std::size_t j = 400; j < 2048; j += 16) h[j] += 1;
    const auto r = cal::entropy_threshold(lowbit::span<const std::uint64_t>(h.data(), h.size()));
    CHECK(r->index >= 128);
    CHECK(r->index < 500);  // far below the tail's end at 2048
    // without the tail, the threshold covers the bulk up to where the counts vanish
    std::vector<std::uint64_t> bulk(h.begin(), h.begin() + 400);
    const auto b = cal::entropy_threshold(lowbit::span<const std::uint64_t>(bulk.data(), bulk.size()));
    CHECK(b->index > 300);
}

TEST_CASE("entropy: small histograms, strides and errors", "[calibration][entropy]") {
    const std::vector<std::uint64_t> h{5, 3, 2, 1};
    const lowbit::span<const std::uint64_t> c(h.data(), h.size());
    // fewer bins than num_quantized_bins: the only candidate is the whole histogram
    CHECK(cal::entropy_threshold(c)->index == 4);
    cal::entropy_options o;
    o.num_quantized_bins = 2;
    o.stride = 2;  // candidates 2, 4
    const auto r = cal::entropy_threshold(c, o);
    CHECK((r->index == 2 || r->index == 4));
    o.stride = 0;
    CHECK_THROWS_AS(cal::entropy_threshold(c, o), lowbit::error);
    const std::vector<std::uint64_t> zero(8, 0);
    CHECK_THROWS_AS(cal::entropy_threshold(lowbit::span<const std::uint64_t>(zero.data(), zero.size())), lowbit::error);
    CHECK_THROWS_AS(cal::entropy_threshold(lowbit::span<const std::uint64_t>()), lowbit::error);
    // only bin 0 is non-empty and it is replaced by bin 1 (0): nothing left
    const std::vector<std::uint64_t> only0{7, 0, 0};
    CHECK_THROWS_AS(cal::entropy_threshold(lowbit::span<const std::uint64_t>(only0.data(), only0.size())), lowbit::error);
    o = {};
    o.first_bin_as_second = false;
    CHECK(cal::entropy_threshold(lowbit::span<const std::uint64_t>(only0.data(), only0.size()), o)->index == 3);
    // candidates whose bins[:i] are empty get +inf (the reference's NaN)
    std::vector<std::uint64_t> late(300, 0);
    late[250] = 10;
    late[260] = 3;
    o.num_quantized_bins = 8;
    o.start_bin = 8;
    const auto l = cal::entropy_threshold(lowbit::span<const std::uint64_t>(late.data(), late.size()), o);
    CHECK(l->index > 250);
    CHECK(std::isfinite(l->divergence));
}

// ---------------------------------------------------------------------------------------
// MSE
// ---------------------------------------------------------------------------------------

namespace {

// Expected error of dequantize(quantize(x)) for x spread as the histogram says, by the
// midpoint rule with `sub` samples per bin: an independent check of detail::mse_model.
template <class Scheme>
double sampled_error(const Scheme& s, const histogram_view& h, lowbit::qparams qp, int sub) {
    const std::size_t n = h.counts.size();
    const double w = (h.hi - h.lo) / static_cast<double>(n);
    double e = 0.0;
    for (std::size_t j = 0; j < n; ++j) {
        if (h.counts[j] == 0) continue;
        double acc = 0.0;
        for (int k = 0; k < sub; ++k) {
            const double x = h.lo + (static_cast<double>(j) + (k + 0.5) / sub) * w;
            double q = std::nearbyint(x / qp.scale) + qp.zero_point;
            q = std::fmin(std::fmax(q, s.qmin()), s.qmax());
            const double d = x - (q - qp.zero_point) * qp.scale;
            acc += d * d;
        }
        e += static_cast<double>(h.counts[j]) * acc / sub;
    }
    return e;
}

template <class Scheme>
clip_range run_mse(const Scheme& s, const histogram_view& h, cal::mse_options o = {}) {
    std::vector<double> ws(cal::mse_workspace_size(h.counts.size()));
    return *cal::mse(s, h, lowbit::span<double>(ws.data(), ws.size()), o);
}

// E(t) for uniform data on [-1, 1] (density 1), torch symmetric scheme with range
// [qmin, qmax]: scale S = t / ((qmax - qmin) / 2); granular error over qmax - qmin - 1
// whole cells, plus the two clamp cells' integrals (valid for t <= 1).
double uniform_symmetric_error(double t, int qmin, int qmax) {
    const double S = t / ((qmax - qmin) / 2.0);
    return (qmax - qmin - 1) * S * S * S / 12.0 + (std::pow(1.0 - qmax * S, 3) + S * S * S / 8.0) / 3.0 +
           (std::pow(1.0 + qmin * S, 3) + S * S * S / 8.0) / 3.0;
}

}  // namespace

TEST_CASE("mse: uniform data, closed-form optimum for the scheme's real levels", "[calibration][mse]") {
    // Uniform on [0, 1], affine, range [0, c]: in-range error c * S^2 / 12 with S = c / (L - 1),
    // clipped error (1 - c)^3 / 3. dE/dc = 0 at c = 2(L-1) / (2(L-1) + 1): 510/511 for u8
    // (bin 2043.996 of 2048 -> edge 2044), 30/31 for u4 (1981.94 -> 1982).
    std::vector<std::uint64_t> h(2048, 1000);
    histogram_view v = view_of(h, 0.0, 1.0);
    v.min = 0.0f;
    v.max = 1.0f;
    CHECK(run_mse(lowbit::scheme<lowbit::u8>{}, v) == clip_range{0.0f, 2044.0f / 2048.0f});
    CHECK(run_mse(lowbit::scheme<lowbit::u4>{}, v) == clip_range{0.0f, 1982.0f / 2048.0f});
    CHECK(run_mse(lowbit::scheme<lowbit::u8>{}, v, cal::mse_options{0}) == clip_range{0.0f, 2044.0f / 2048.0f});

    // Uniform on [-1, 1], torch symmetric (divisor (qmax - qmin) / 2 = 127.5 / 7.5): the
    // closed form's argmin over the candidates k / 1024.
    const histogram_view u = view_of(h, -1.0, 1.0);
    for (const auto& q : {std::pair<int, int>{-128, 127}, std::pair<int, int>{-8, 7}}) {
        std::size_t best = 0;
        double be = 1e300;
        for (std::size_t k = 1; k <= 1024; ++k) {
            const double e = uniform_symmetric_error(static_cast<double>(k) / 1024.0, q.first, q.second);
            if (e < be) be = e, best = k;
        }
        const float t = static_cast<float>(best) / 1024.0f;
        if (q.first == -128) {
            CHECK(best == 1024);  // no clipping pays at 8 bits
            CHECK(run_mse(lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>{}, u) == clip_range{-t, t});
        } else {
            CHECK(best == 1015);
            CHECK(run_mse(lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>{}, u) == clip_range{-t, t});
        }
    }
}

TEST_CASE("mse: a two-point distribution keeps the exact top point", "[calibration][mse]") {
    // Values {0, 1}: bins of width 2^-9; 0 is spread over [0, 2^-9], 1 is a point mass (the
    // data max cuts its bin to one point). [0, 1] represents 1 exactly and puts [0, 2^-9]
    // inside level 0's cell (S / 2 = 1/510 > 2^-9): error w^2/6 per unit mass; any smaller
    // top costs (1 - b)^2 >= w^2 at the point. So [0, 1], as min/max calibration.
    lowbit::exact_histogram<2048> hist;
    std::vector<float> x(1000, 0.0f);
    for (std::size_t i = 0; i < x.size(); i += 2) x[i] = 1.0f;
    REQUIRE(hist.add(x).ok());
    CHECK(hist.exponent() == -9);
    std::vector<double> ws(cal::mse_workspace_size(2048));
    const lowbit::scheme<lowbit::u8> s;
    const auto r = cal::mse(s, hist.view(), lowbit::span<double>(ws.data(), ws.size()));
    CHECK(*r == clip_range{0.0f, 1.0f});
    // the symmetric search also ends exactly at the data's max
    const auto rs = cal::mse(lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>{}, hist.view(),
                             lowbit::span<double>(ws.data(), ws.size()));
    CHECK(rs->max <= 1.0f);
    // data only at 0: [0, 0], torch's all-zero answer
    lowbit::exact_histogram<2048> zeros;
    const std::vector<float> z(10, 0.0f);
    REQUIRE(zeros.add(z).ok());
    CHECK(*cal::mse(s, zeros.view(), lowbit::span<double>(ws.data(), ws.size())) == clip_range{0.0f, 0.0f});
}

TEST_CASE("mse: the error model equals a numerical integration", "[calibration][mse]") {
    std::mt19937 rng(77);
    const lowbit::scheme<lowbit::s4> s4;
    const lowbit::scheme<lowbit::u8> u8;
    for (int trial = 0; trial < 40; ++trial) {
        const std::size_t n = 8 + rng() % 40;
        std::vector<std::uint64_t> h(n);
        for (auto& c : h) c = rng() % 4 == 0 ? 0 : rng() % 100;
        h[rng() % n] += 1;
        const double lo = -1.0 - static_cast<double>(rng() % 100) / 50.0;
        const double hi = 0.5 + static_cast<double>(rng() % 100) / 40.0;
        const histogram_view v = view_of(h, lo, hi);
        std::vector<double> ws(cal::mse_workspace_size(n));
        std::size_t f = 0, l = n - 1;
        while (h[f] == 0) ++f;
        while (h[l] == 0) --l;
        const double w = (hi - lo) / static_cast<double>(n);
        const cal::detail::mse_model m(v, lo + static_cast<double>(f) * w, lo + static_cast<double>(l + 1) * w,
                                       lowbit::span<double>(ws.data(), ws.size()));
        std::uniform_real_distribution<float> a(-3.0f, 0.0f), b(0.0f, 3.0f);
        for (int k = 0; k < 5; ++k) {
            const float mn = a(rng), mx = b(rng);
            const lowbit::qparams q4 = *lowbit::choose_qparams(s4, mn, mx);
            const lowbit::qparams q8 = *lowbit::choose_qparams(u8, mn, mx);
            const double e4 = m.error(s4, q4), r4 = sampled_error(s4, v, q4, 4000);
            const double e8 = m.error(u8, q8), r8 = sampled_error(u8, v, q8, 4000);
            CHECK(std::fabs(e4 - r4) <= 1e-4 * r4 + 1e-9);
            CHECK(std::fabs(e8 - r8) <= 2e-3 * r8 + 1e-9);  // 255 cells: the midpoint rule's own error dominates
        }
    }
}

TEST_CASE("mse: the coarse-to-fine affine search finds the exhaustive optimum's error", "[calibration][mse]") {
    // A skewed distribution on 512 bins: exhaustive search is affordable, compare.
    std::vector<std::uint64_t> h(512, 0);
    for (std::size_t j = 0; j < 512; ++j) {
        const double x = (static_cast<double>(j) - 150.0) / 60.0;
        h[j] = static_cast<std::uint64_t>(1e5 * std::exp(-0.5 * x * x) + (j % 7 == 0 ? 2 : 0));
    }
    const histogram_view v = view_of(h, -2.0, 6.0);
    const lowbit::scheme<lowbit::u4> s;
    const clip_range coarse = run_mse(s, v), full = run_mse(s, v, cal::mse_options{0});
    std::vector<double> ws(cal::mse_workspace_size(512));
    const cal::detail::mse_model m(v, -2.0, 6.0, lowbit::span<double>(ws.data(), ws.size()));
    const double ec = m.error(s, *lowbit::choose_qparams(s, coarse.min, coarse.max));
    const double ef = m.error(s, *lowbit::choose_qparams(s, full.min, full.max));
    CHECK(ef <= ec);
    CHECK(ec <= ef * 1.001);
    // and both clip the thin tail that min/max calibration keeps
    CHECK(full.max < 5.0f);
}

TEST_CASE("mse: invalid arguments are refused", "[calibration][mse]") {
    std::vector<std::uint64_t> h{1, 2, 3, 4};
    std::vector<double> ws(cal::mse_workspace_size(4));
    const lowbit::span<double> w(ws.data(), ws.size());
    CHECK_THROWS_AS(cal::mse(lowbit::scheme<lowbit::s32>{}, view_of(h, 0.0, 1.0), w), lowbit::error);
    CHECK_THROWS_AS(cal::mse(lowbit::scheme<lowbit::s8>{}.per_channel(0), view_of(h, 0.0, 1.0), w), lowbit::error);
    CHECK_THROWS_AS(cal::mse(lowbit::scheme<lowbit::s8>{}, view_of(h, 0.0, 1.0), w.subspan(0, 3)), lowbit::error);
    CHECK_THROWS_AS(cal::mse(lowbit::scheme<lowbit::s8>{}.with_eps(-1.0f), view_of(h, 0.0, 1.0), w), lowbit::error);
    const std::vector<std::uint64_t> zero(4, 0);
    CHECK_THROWS_AS(cal::mse(lowbit::scheme<lowbit::s8>{}, view_of(zero, 0.0, 1.0), w), lowbit::error);
}
