// ptq/gptq.hpp: against an independent column-by-column transcription of GPTQ (OBS updates
// with the full inverse Hessian from Gauss-Jordan, no Cholesky, no lazy blocks), against
// hand-computed values, against round-to-nearest on a synthetic layer (held-out output MSE),
// and every failure behaviour.
#include "lowbit_catch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <lowbit/core/fake_quantize.hpp>
#include <lowbit/core/quantize.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>
#include <lowbit/ptq/gptq.hpp>
#include <lowbit/ptq/linalg.hpp>

namespace {

using lowbit::ptq::gptq_options;
using gptq_s4 = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>;
using gptq_u4 = lowbit::scheme<lowbit::u4, lowbit::symmetry::affine>;
using gptq_s8 = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>;

// ---- deterministic data: std::mt19937 bits only (its output is fixed by the standard) ----
struct gptq_rng {
    std::mt19937 engine;
    explicit gptq_rng(std::uint32_t seed) : engine(seed) {}
    double uniform() { return static_cast<double>(engine() >> 8) * (1.0 / 16777216.0); }  // [0, 1), 24 bits
    double normal() {  // Irwin-Hall: sum of 12 uniforms - 6 (mean 0, variance 1), no libm
        double s = 0.0;
        for (int i = 0; i < 12; ++i) s += uniform();
        return s - 6.0;
    }
};

// A linear layer with correlated activations (16 latent factors + noise), a few outlier
// input channels, gaussian weights with a few outlier rows and columns.
struct gptq_layer {
    std::size_t n = 0, k = 0, rows = 0;
    std::vector<float> w, x_cal, x_held;
};

inline gptq_layer gptq_make_layer(std::size_t n, std::size_t k, std::size_t rows, std::uint32_t seed) {
    gptq_rng rng(seed);
    gptq_layer l;
    l.n = n;
    l.k = k;
    l.rows = rows;
    constexpr std::size_t latent = 16;
    std::vector<double> mix(latent * k), channel_scale(k, 1.0);
    for (double& v : mix) v = rng.normal();
    for (std::size_t c = 0; c < 4 && c < k; ++c) channel_scale[(c * 37 + 5) % k] = 8.0;  // outlier inputs
    const auto make_x = [&](std::vector<float>& x) {
        x.resize(rows * k);
        std::vector<double> z(latent);
        for (std::size_t r = 0; r < rows; ++r) {
            for (double& v : z) v = rng.normal();
            for (std::size_t c = 0; c < k; ++c) {
                double v = 0.3 * rng.normal();
                for (std::size_t t = 0; t < latent; ++t) v += 0.25 * z[t] * mix[t * k + c];
                x[r * k + c] = static_cast<float>(v * channel_scale[c]);
            }
        }
    };
    make_x(l.x_cal);
    make_x(l.x_held);
    l.w.resize(n * k);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < k; ++c) {
            double v = 0.05 * rng.normal();
            if (r % 17 == 3) v *= 4.0;  // outlier rows
            if (c % 41 == 7) v *= 4.0;  // outlier columns
            l.w[r * k + c] = static_cast<float>(v);
        }
    return l;
}

// ---- round-to-nearest baseline, from lowbit's observer / choose_qparams + ref::fake_quantize ----
template <class Scheme>
std::vector<float> gptq_rtn(const Scheme& s, std::size_t n, std::size_t k, const std::vector<float>& w) {
    std::vector<float> scales, out(w.size());
    std::vector<std::int32_t> zps;
    if (s.granularity() == lowbit::granularity::per_channel) {
        std::vector<float> state(2 * n);
        lowbit::per_channel_minmax_observer<Scheme> obs(s, n, state);
        REQUIRE(obs.observe(lowbit::shape{n, k}, w).ok());
        scales.resize(n);
        zps.resize(n);
        REQUIRE(obs.qparams(scales, zps).ok());
    } else {  // per_group along axis 1: min/max of each run of group_size weights
        const std::size_t g = s.group_size();
        std::vector<float> mins, maxs;
        for (std::size_t i = 0; i < w.size(); i += g) {
            mins.push_back(*std::min_element(w.begin() + static_cast<std::ptrdiff_t>(i),
                                             w.begin() + static_cast<std::ptrdiff_t>(i + g)));
            maxs.push_back(*std::max_element(w.begin() + static_cast<std::ptrdiff_t>(i),
                                             w.begin() + static_cast<std::ptrdiff_t>(i + g)));
        }
        scales.resize(mins.size());
        zps.resize(mins.size());
        REQUIRE(lowbit::choose_qparams(s, mins, maxs, scales, zps).ok());
    }
    REQUIRE(lowbit::ref::fake_quantize(s, lowbit::shape{n, k}, {scales, zps}, w, out).ok());
    return out;
}

inline double gptq_output_mse(const gptq_layer& l, const std::vector<float>& wq, const std::vector<float>& x) {
    const std::size_t m = x.size() / l.k;
    std::vector<float> y(m * l.n), yq(m * l.n);
    REQUIRE(lowbit::ptq::linear_forward(m, l.n, l.k, x, l.w, {}, y).ok());
    REQUIRE(lowbit::ptq::linear_forward(m, l.n, l.k, x, wq, {}, yq).ok());
    return *lowbit::ptq::mse(y, yq);
}

// ---- the independent transcription ----------------------------------------------------------
// Column by column in quantization order; after quantizing column q (in place of the paper's
// Cholesky rows) the remaining columns get the OBS update -(w_q - Q(w_q)) / Hinv[q][q] *
// Hinv[q][:], and Hinv loses q: Hinv -= Hinv[:, q] Hinv[q, :] / Hinv[q][q]. Hinv comes from
// Gauss-Jordan elimination with partial pivoting of the damped Hessian.
inline std::vector<double> gptq_gauss_jordan_inverse(std::size_t k, std::vector<double> a) {
    std::vector<double> inv(k * k, 0.0);
    for (std::size_t i = 0; i < k; ++i) inv[i * k + i] = 1.0;
    for (std::size_t c = 0; c < k; ++c) {
        std::size_t piv = c;
        for (std::size_t r = c + 1; r < k; ++r)
            if (std::fabs(a[r * k + c]) > std::fabs(a[piv * k + c])) piv = r;
        for (std::size_t j = 0; j < k; ++j) {
            std::swap(a[c * k + j], a[piv * k + j]);
            std::swap(inv[c * k + j], inv[piv * k + j]);
        }
        const double d = a[c * k + c];
        for (std::size_t j = 0; j < k; ++j) {
            a[c * k + j] /= d;
            inv[c * k + j] /= d;
        }
        for (std::size_t r = 0; r < k; ++r) {
            if (r == c) continue;
            const double f = a[r * k + c];
            for (std::size_t j = 0; j < k; ++j) {
                a[r * k + j] -= f * a[c * k + j];
                inv[r * k + j] -= f * inv[c * k + j];
            }
        }
    }
    return inv;
}

struct gptq_naive_out {
    std::vector<std::int32_t> codes;    // [N][K], original order
    std::vector<float> scales;          // [N][groups] in the result's layout
    std::vector<std::int32_t> zero_points;
    std::vector<float> weights;
};

template <class Scheme>
gptq_naive_out gptq_naive(const Scheme& s, std::size_t n, std::size_t k, const std::vector<float>& w,
                          const std::vector<double>& h_in, double percdamp, bool act_order, bool static_groups) {
    const bool grouped = s.granularity() == lowbit::granularity::per_group;
    const std::size_t g = grouped ? s.group_size() : k;
    const std::size_t groups = k / g;
    std::vector<double> h = h_in;
    std::vector<bool> dead(k, false);
    for (std::size_t i = 0; i < k; ++i)
        if (h[i * k + i] == 0.0) {
            dead[i] = true;
            h[i * k + i] = 1.0;
        }
    const auto qp_of = [&](const std::vector<float>& vals) {
        return *lowbit::choose_qparams(s, *std::min_element(vals.begin(), vals.end()),
                                       *std::max_element(vals.begin(), vals.end()));
    };
    const bool per_tensor = s.granularity() == lowbit::granularity::per_tensor;
    const auto slot = [&](std::size_t r, std::size_t gi) { return per_tensor ? std::size_t{0} : r * groups + gi; };
    gptq_naive_out o;
    o.scales.assign(per_tensor ? 1 : n * groups, 0.0f);
    o.zero_points.assign(o.scales.size(), 0);
    o.codes.assign(n * k, 0);
    std::vector<float> wz = w;  // dead-zeroed weights
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < k; ++c)
            if (dead[c]) wz[r * k + c] = 0.0f;
    std::vector<lowbit::qparams> row_qp(n * groups);  // current qparams of (row, group)
    if (per_tensor) {
        for (std::size_t r = 0; r < n; ++r) row_qp[r] = qp_of(w);
    } else if (!grouped) {
        for (std::size_t r = 0; r < n; ++r)
            row_qp[r] = qp_of(std::vector<float>(w.begin() + static_cast<std::ptrdiff_t>(r * k),
                                                 w.begin() + static_cast<std::ptrdiff_t>(r * k + k)));
    } else if (static_groups) {
        for (std::size_t r = 0; r < n; ++r)
            for (std::size_t gi = 0; gi < groups; ++gi)
                row_qp[r * groups + gi] = qp_of(std::vector<float>(wz.begin() + static_cast<std::ptrdiff_t>(r * k + gi * g),
                                                                   wz.begin() + static_cast<std::ptrdiff_t>(r * k + gi * g + g)));
    }
    std::vector<std::size_t> order(k);
    std::iota(order.begin(), order.end(), std::size_t{0});
    if (act_order)
        std::stable_sort(order.begin(), order.end(),
                         [&](std::size_t a, std::size_t b) { return h[a * k + a] > h[b * k + b]; });
    double mean = 0.0;
    for (std::size_t i = 0; i < k; ++i) mean += h[i * k + i];
    mean /= static_cast<double>(k);
    std::vector<double> hp(k * k), wp(n * k);
    for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = 0; j < k; ++j) hp[i * k + j] = h[order[i] * k + order[j]];
    for (std::size_t i = 0; i < k; ++i) hp[i * k + i] += percdamp * mean;
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t p = 0; p < k; ++p) wp[r * k + p] = wz[r * k + order[p]];
    std::vector<double> hinv = gptq_gauss_jordan_inverse(k, hp);
    for (std::size_t p = 0; p < k; ++p) {
        const std::size_t col = order[p];
        for (std::size_t r = 0; r < n; ++r) {
            std::size_t gi = 0;
            if (grouped && !static_groups) {
                gi = p / g;
                if (p % g == 0) {
                    std::vector<float> vals;
                    for (std::size_t c = p; c < p + g; ++c) vals.push_back(static_cast<float>(wp[r * k + c]));
                    row_qp[r * groups + gi] = qp_of(vals);
                }
            } else if (grouped) {
                gi = col / g;
            }
            const lowbit::qparams qp = row_qp[r * groups + gi];
            o.scales[slot(r, gi)] = qp.scale;
            o.zero_points[slot(r, gi)] = qp.zero_point;
            const lowbit::element_quantizer e = lowbit::element_quantizer::make(s, qp);
            const std::int32_t q = e.quantize(static_cast<float>(wp[r * k + p]), r * k + col);
            o.codes[r * k + col] = q;
            const double err = (wp[r * k + p] - static_cast<double>(e.dequantize(q))) / hinv[p * k + p];
            for (std::size_t c = p + 1; c < k; ++c) wp[r * k + c] -= err * hinv[p * k + c];
        }
        for (std::size_t a = p + 1; a < k; ++a)
            for (std::size_t b = p + 1; b < k; ++b) hinv[a * k + b] -= hinv[a * k + p] * hinv[p * k + b] / hinv[p * k + p];
    }
    o.weights.resize(n * k);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < k; ++c) {
            std::size_t gi = 0;
            if (grouped) {
                const std::size_t p = static_cast<std::size_t>(std::find(order.begin(), order.end(), c) - order.begin());
                gi = static_groups ? c / g : p / g;
            }
            const lowbit::element_quantizer e = lowbit::element_quantizer::make(
                s, lowbit::qparams{o.scales[slot(r, gi)], o.zero_points[slot(r, gi)]});
            o.weights[r * k + c] = e.dequantize(o.codes[r * k + c]);
        }
    return o;
}

// Unpacks result codes (any format) to int32.
template <class Scheme>
std::vector<std::int32_t> gptq_codes(const lowbit::ptq::gptq_result<Scheme>& r, std::size_t count) {
    std::vector<std::int32_t> q(count);
    for (std::size_t i = 0; i < count; ++i) q[i] = lowbit::detail::load<typename Scheme::format>(r.codes.data(), i);
    return q;
}

inline std::vector<double> gptq_hessian_of(std::size_t rows, std::size_t k, const std::vector<float>& x) {
    std::vector<double> h(k * k, 0.0);
    REQUIRE(lowbit::ptq::gram(rows, k, x, h).ok());
    return h;
}

template <class Scheme>
void gptq_check_against_naive(const Scheme& s, const gptq_layer& l, bool act_order, bool static_groups,
                              std::size_t block_size) {
    const std::vector<double> h = gptq_hessian_of(l.rows, l.k, l.x_cal);
    gptq_options opt;
    opt.act_order = act_order;
    opt.static_groups = static_groups;
    opt.block_size = block_size;
    lowbit::ptq::gptq_result<Scheme> r;
    REQUIRE(lowbit::ptq::gptq_from_hessian(s, l.n, l.k, l.w, h, r, opt).ok());
    REQUIRE_FALSE(r.report.fell_back_to_rtn);
    CHECK(r.report.attempts == 1);
    const gptq_naive_out want = gptq_naive(s, l.n, l.k, l.w, h, opt.percdamp, act_order, static_groups);
    CHECK(gptq_codes(r, l.n * l.k) == want.codes);
    REQUIRE(r.scales.size() == want.scales.size());
    for (std::size_t i = 0; i < want.scales.size(); ++i) {
        CHECK(r.scales[i] == Approx(want.scales[i]).epsilon(1e-6));
        CHECK(r.zero_points[i] == want.zero_points[i]);
    }
    for (std::size_t i = 0; i < want.weights.size(); ++i) CHECK(r.weights[i] == Approx(want.weights[i]).epsilon(1e-6));
}

}  // namespace

TEST_CASE("gptq: C -= A B kernel, every ISA path gives the scalar bits at tail sizes", "[ptq][gptq]") {
    namespace g = lowbit::ptq::detail::gptq;
    gptq_rng rng(7);
    for (const std::size_t m : {1u, 3u, 4u, 5u, 9u, 70u})
        for (const std::size_t nc : {1u, 7u, 8u, 15u, 16u, 17u, 33u, 300u})
            for (const std::size_t depth : {1u, 2u, 5u}) {
                std::vector<double> a(m * depth + 3), b(depth * (nc + 2)), c0(m * (nc + 1));
                for (double& v : a) v = rng.normal();
                for (double& v : b) v = rng.normal();
                for (double& v : c0) v = rng.normal();
                std::vector<double> want = c0;
                g::fms(m, nc, depth, a.data(), depth, b.data(), nc + 2, want.data(), nc + 1, g::fms_isa::scalar);
                // the definition: one fma per (element, t), t increasing
                for (std::size_t i = 0; i < m; ++i)
                    for (std::size_t j = 0; j < nc; ++j) {
                        double v = c0[i * (nc + 1) + j];
                        for (std::size_t t = 0; t < depth; ++t)
                            v = std::fma(-a[i * depth + t], b[t * (nc + 2) + j], v);
                        REQUIRE(want[i * (nc + 1) + j] == v);
                    }
                for (std::size_t i = 0; i < m; ++i) REQUIRE(want[i * (nc + 1) + nc] == c0[i * (nc + 1) + nc]);
                std::vector<double> pack(g::pack_size);
                for (const g::fms_isa isa : {g::fms_isa::avx2, g::fms_isa::avx512, g::fms_isa::best})
                    for (double* pk : {static_cast<double*>(nullptr), pack.data()}) {  // packed B (AVX-512, m >= 8)
                        if (!g::fms_available(isa)) continue;
                        std::vector<double> got = c0;
                        g::fms(m, nc, depth, a.data(), depth, b.data(), nc + 2, got.data(), nc + 1, isa, pk);
                        INFO("m " << m << " nc " << nc << " depth " << depth << " isa " << static_cast<int>(isa)
                                  << " packed " << (pk != nullptr));
                        REQUIRE(got == want);
                    }
            }
    if (!g::fms_available(g::fms_isa::avx512)) WARN("AVX-512F path not run: this CPU lacks it");
    if (!g::fms_available(g::fms_isa::avx2)) WARN("AVX2+FMA path not run: this CPU lacks it");
}

TEST_CASE("gptq: gptq_accumulate_hessian has ptq::gram's bits, over two batches", "[ptq][gptq]") {
    const gptq_layer l = gptq_make_layer(2, 70, 300, 11);
    std::vector<double> want(70 * 70, 0.0), got(70 * 70, 0.0);
    const std::vector<float> a(l.x_cal.begin(), l.x_cal.begin() + 123 * 70), b(l.x_cal.begin() + 123 * 70, l.x_cal.end());
    REQUIRE(lowbit::ptq::gram(123, 70, a, want).ok());
    REQUIRE(lowbit::ptq::gram(177, 70, b, want).ok());
    REQUIRE(lowbit::ptq::gptq_accumulate_hessian(123, 70, a, got).ok());
    REQUIRE(lowbit::ptq::gptq_accumulate_hessian(177, 70, b, got).ok());
    CHECK(got == want);
    CHECK_THROWS_WITH(lowbit::ptq::gptq_accumulate_hessian(124, 70, a, got), Catch::Contains("'x.size()'"));
    std::vector<float> bad = a;
    bad[75] = std::nanf("");
    CHECK_THROWS_WITH(lowbit::ptq::gptq_accumulate_hessian(123, 70, bad, got), Catch::Contains("'x' = 75"));
}

TEST_CASE("gptq: hand-computed 1 x 2 layer", "[ptq][gptq]") {
    // H = [[1, 0.5], [0.5, 1]]: H^-1 = [[4/3, -2/3], [-2/3, 4/3]], so quantizing w0 moves
    // -(w0 - q0) / (4/3) * (-2/3) = +0.5 (w0 - q0) onto w1. s4 symmetric per channel:
    // w = [-0.75, 0.13] has scale 0.75 / 7.5 = 0.1f; w0 -> -7.5 -> -8 (half even), q0 = -0.8f;
    // w1 -> 0.13 + 0.5 * 0.05 = 0.155 -> 1.55 -> 2 (RTN: 1.3 -> 1).
    const auto s = gptq_s4{}.per_channel(0);
    const std::vector<float> w = {-0.75f, 0.13f};
    const std::vector<double> h = {1.0, 0.5, 0.5, 1.0};
    gptq_options opt;
    opt.percdamp = 1e-9;
    lowbit::ptq::gptq_result<gptq_s4> r;
    REQUIRE(lowbit::ptq::gptq_from_hessian(s, 1, 2, w, h, r, opt).ok());
    CHECK(gptq_codes(r, 2) == std::vector<std::int32_t>{-8, 2});
    CHECK(r.scales == std::vector<float>{0.75f / 7.5f});
    CHECK(r.weights == std::vector<float>{-8 * (0.75f / 7.5f), 2 * (0.75f / 7.5f)});
    CHECK(r.report.attempts == 1);
    CHECK(r.report.damp == Approx(1e-9));
    CHECK(r.report.mean_diagonal == 1.0);
    CHECK(r.report.dead_inputs == 0);
    // loss: column 0 error 0.05 / U00 with U00^2 = [H^-1]_00 = 4/3; column 1: w1' = 0.155,
    // q1 = 0.2, U11^2 = 1 / H11 = 1 (what is left of H^-1 after removing column 0)
    const double e0 = static_cast<double>(-0.75f) + 0.8, e1 = 0.13 + 0.5 * e0 - 0.2;
    CHECK(r.report.loss == Approx(e0 * e0 / (4.0 / 3.0) / 2 + e1 * e1 / 2).epsilon(1e-6));
    // condition estimate: pivots of reversed H: sqrt(1), sqrt(1 - 0.25) -> (1 / sqrt(0.75))^2
    CHECK(r.report.condition_estimate == Approx(1.0 / 0.75).epsilon(1e-6));
    // act_order keeps the order on a tie (equal diagonals)
    opt.act_order = true;
    REQUIRE(lowbit::ptq::gptq_from_hessian(s, 1, 2, w, h, r, opt).ok());
    CHECK(r.order == std::vector<std::size_t>{0, 1});
    CHECK(gptq_codes(r, 2) == std::vector<std::int32_t>{-8, 2});
    // with H[1][1] larger, column 1 goes first: H = [[1, .5], [.5, 2]], H^-1 = [[2, -.5],
    // [-.5, 1]] / 1.75; w1 = 0.13 -> 1.3 -> 1 (q1 = 0.1), error 0.03 moves
    // -0.03 / H^-1_11 * H^-1_10 = +0.015 onto w0: -0.735 -> -7.35 -> -7
    const std::vector<double> h2 = {1.0, 0.5, 0.5, 2.0};
    REQUIRE(lowbit::ptq::gptq_from_hessian(s, 1, 2, w, h2, r, opt).ok());
    CHECK(r.order == std::vector<std::size_t>{1, 0});
    CHECK(gptq_codes(r, 2) == std::vector<std::int32_t>{-7, 1});
}

TEST_CASE("gptq: equals the column-by-column transcription (codes exactly) on small layers", "[ptq][gptq]") {
    const gptq_layer l = gptq_make_layer(12, 48, 200, 3);
    SECTION("s4 symmetric per channel") {
        for (const std::size_t bs : {1u, 5u, 16u, 128u}) gptq_check_against_naive(gptq_s4{}.per_channel(0), l, false, false, bs);
        gptq_check_against_naive(gptq_s4{}.per_channel(0), l, true, false, 7);
    }
    SECTION("u4 affine per group, dynamic groups crossing lazy blocks") {
        for (const std::size_t bs : {1u, 5u, 16u, 128u}) gptq_check_against_naive(gptq_u4{}.per_group(1, 12), l, false, false, bs);
        gptq_check_against_naive(gptq_u4{}.per_group(1, 12), l, true, false, 5);
    }
    SECTION("s4 per group, static groups, act order") {
        gptq_check_against_naive(gptq_s4{}.per_group(1, 8), l, true, true, 16);
        gptq_check_against_naive(gptq_s4{}.per_group(1, 8), l, false, true, 16);
    }
    SECTION("s8 per tensor and per channel") {
        gptq_check_against_naive(gptq_s8{}, l, false, false, 16);
        gptq_check_against_naive(gptq_s8{}.per_channel(0), l, true, false, 16);
    }
}

TEST_CASE("gptq: the result does not depend on block_size (same bits)", "[ptq][gptq]") {
    const gptq_layer l = gptq_make_layer(9, 40, 120, 5);
    const auto s = gptq_u4{}.per_group(1, 8);
    for (const bool act : {false, true}) {
        gptq_options opt;
        opt.act_order = act;
        opt.block_size = 40;
        lowbit::ptq::gptq_result<gptq_u4> ref;
        REQUIRE(lowbit::ptq::gptq(s, l.n, l.k, l.w, l.rows, l.x_cal, ref, opt).ok());
        for (const std::size_t bs : {1u, 3u, 8u, 13u, 1000u}) {
            opt.block_size = bs;
            lowbit::ptq::gptq_result<gptq_u4> r;
            REQUIRE(lowbit::ptq::gptq(s, l.n, l.k, l.w, l.rows, l.x_cal, r, opt).ok());
            CHECK(r.weights == ref.weights);
            CHECK(r.codes == ref.codes);
            CHECK(r.scales == ref.scales);
            CHECK(r.report.loss == ref.report.loss);
        }
    }
}

TEST_CASE("gptq: codes and qparams feed lowbit's integer path (ref::dequantize gives the weights)", "[ptq][gptq]") {
    const gptq_layer l = gptq_make_layer(10, 64, 150, 9);
    const auto check = [&](const auto& s, bool act, bool static_groups) {
        using S = std::decay_t<decltype(s)>;
        gptq_options opt;
        opt.act_order = act;
        opt.static_groups = static_groups;
        lowbit::ptq::gptq_result<S> r;
        REQUIRE(lowbit::ptq::gptq(s, l.n, l.k, l.w, l.rows, l.x_cal, r, opt).ok());
        REQUIRE(r.codes.size() == S::format::storage_size(l.n * l.k));
        std::vector<float> deq(l.n * l.k);
        REQUIRE(lowbit::ref::dequantize(s, lowbit::shape{l.n, l.k}, {r.scales, r.zero_points}, r.codes, deq).ok());
        CHECK(deq == r.weights);
    };
    check(gptq_s4{}.per_channel(0), true, false);
    check(gptq_u4{}.per_group(1, 16), false, false);
    check(gptq_s4{}.per_group(1, 16), true, true);
    check(gptq_s8{}.per_channel(0), false, false);
    // act order with dynamic groups: groups are runs of the quantization order (g_idx)
    const auto s = gptq_s4{}.per_group(1, 16);
    gptq_options opt;
    opt.act_order = true;
    lowbit::ptq::gptq_result<gptq_s4> r;
    REQUIRE(lowbit::ptq::gptq(s, l.n, l.k, l.w, l.rows, l.x_cal, r, opt).ok());
    const std::vector<std::int32_t> q = gptq_codes(r, l.n * l.k);
    bool canonical = true;
    for (std::size_t c = 0; c < l.k; ++c) {
        CHECK(r.group_index[r.order[c]] == c / 16);
        canonical = canonical && r.group_index[c] == c / 16;
    }
    CHECK_FALSE(canonical);  // the outlier channels moved to the front
    for (std::size_t n = 0; n < l.n; ++n)
        for (std::size_t c = 0; c < l.k; ++c) {
            const std::size_t p = n * 4 + r.group_index[c];
            CHECK(r.weights[n * l.k + c] == static_cast<float>(q[n * l.k + c]) * r.scales[p]);
        }
}

namespace {
struct gptq_ratios {
    double per_channel, per_channel_act, group, group_act;
};

inline gptq_ratios gptq_improvement(std::uint32_t seed, std::size_t k, std::size_t n, std::size_t rows) {
    const gptq_layer l = gptq_make_layer(n, k, rows, seed);
    const auto run = [&](const auto& s, bool act) {
        using S = std::decay_t<decltype(s)>;
        gptq_options opt;
        opt.act_order = act;
        lowbit::ptq::gptq_result<S> r;
        REQUIRE(lowbit::ptq::gptq(s, l.n, l.k, l.w, l.rows, l.x_cal, r, opt).ok());
        REQUIRE_FALSE(r.report.fell_back_to_rtn);
        const double rtn = gptq_output_mse(l, gptq_rtn(s, l.n, l.k, l.w), l.x_held);
        return gptq_output_mse(l, r.weights, l.x_held) / rtn;
    };
    const auto pc = gptq_s4{}.per_channel(0);
    const auto pg = gptq_s4{}.per_group(1, 32);
    return {run(pc, false), run(pc, true), run(pg, false), run(pg, true)};
}
}  // namespace

TEST_CASE("gptq: held-out output MSE beats round-to-nearest at 4 bits (K 128, N 64, 512 + 512 rows)", "[ptq][gptq]") {
    // s4 symmetric, torch numerics, default options. Seeds 1..16 (the [.gptq-sweep] case
    // below prints them) gave GPTQ / RTN held-out MSE of 0.146-0.259 per channel (0.099-0.152
    // with act order) and 0.108-0.199 per group of 32 (0.064-0.166 with act order); seed 1
    // gives 0.220, 0.129, 0.181, 0.117. Asserted: at most 0.35x RTN without act order and at
    // most 0.25x with it.
    const gptq_ratios r = gptq_improvement(1, 128, 64, 512);
    INFO("per channel " << r.per_channel << ", act order " << r.per_channel_act << "; group 32 " << r.group
                        << ", act order " << r.group_act);
    CHECK(r.per_channel <= 0.35);
    CHECK(r.per_channel_act <= 0.25);
    CHECK(r.group <= 0.35);
    CHECK(r.group_act <= 0.25);
}

TEST_CASE("gptq: seed sweep of the improvement ratios (prints, run by hand)", "[.][gptq-sweep]") {
    for (std::uint32_t seed = 1; seed <= 16; ++seed) {
        const gptq_ratios r = gptq_improvement(seed, 128, 64, 512);
        std::printf("seed %2u  per-channel %.3f  +act %.3f  group32 %.3f  +act %.3f\n", seed, r.per_channel,
                    r.per_channel_act, r.group, r.group_act);
    }
}

TEST_CASE("gptq: rank-deficient calibration data (rows < K, duplicated columns)", "[ptq][gptq]") {
    const auto s = gptq_s4{}.per_channel(0);
    SECTION("rows < K") {
        const gptq_layer l = gptq_make_layer(16, 64, 20, 21);
        lowbit::ptq::gptq_result<gptq_s4> r;
        REQUIRE(lowbit::ptq::gptq(s, l.n, l.k, l.w, l.rows, l.x_cal, r).ok());
        CHECK_FALSE(r.report.fell_back_to_rtn);
        CHECK(r.report.attempts == 1);
        CHECK(r.report.condition_estimate > 100.0);  // rank 20 of 64: only the dampening holds it up
        for (const float v : r.weights) REQUIRE(std::isfinite(v));
        // on the calibration rows themselves GPTQ still beats RTN
        CHECK(gptq_output_mse(l, r.weights, l.x_cal) < gptq_output_mse(l, gptq_rtn(s, l.n, l.k, l.w), l.x_cal));
    }
    SECTION("duplicated input columns") {
        gptq_layer l = gptq_make_layer(16, 64, 256, 22);
        for (std::size_t row = 0; row < l.rows; ++row)
            for (std::size_t c = 32; c < 64; ++c) l.x_cal[row * 64 + c] = l.x_cal[row * 64 + c - 32];
        lowbit::ptq::gptq_result<gptq_s4> r;
        REQUIRE(lowbit::ptq::gptq(s, l.n, l.k, l.w, l.rows, l.x_cal, r).ok());
        CHECK_FALSE(r.report.fell_back_to_rtn);
        for (const float v : r.weights) REQUIRE(std::isfinite(v));
        CHECK(gptq_output_mse(l, r.weights, l.x_cal) < gptq_output_mse(l, gptq_rtn(s, l.n, l.k, l.w), l.x_cal));
    }
}

TEST_CASE("gptq: dead (all-zero) input channels and all-zero activations", "[ptq][gptq]") {
    const auto s = gptq_u4{}.per_channel(0);
    gptq_layer l = gptq_make_layer(8, 32, 64, 23);
    for (std::size_t row = 0; row < l.rows; ++row) l.x_cal[row * 32 + 5] = l.x_cal[row * 32 + 17] = 0.0f;
    lowbit::ptq::gptq_result<gptq_u4> r;
    REQUIRE(lowbit::ptq::gptq(s, l.n, l.k, l.w, l.rows, l.x_cal, r).ok());
    CHECK(r.report.dead_inputs == 2);
    const std::vector<std::int32_t> q = gptq_codes(r, l.n * l.k);
    for (std::size_t n = 0; n < l.n; ++n) {
        CHECK(r.weights[n * 32 + 5] == 0.0f);  // W[:, dead] = 0, as the reference
        CHECK(r.weights[n * 32 + 17] == 0.0f);
        CHECK(q[n * 32 + 5] == r.zero_points[n]);
    }
    // every activation zero: every input dead, W = 0, mean diagonal 1 (the dead diagonal)
    std::fill(l.x_cal.begin(), l.x_cal.end(), 0.0f);
    REQUIRE(lowbit::ptq::gptq(s, l.n, l.k, l.w, l.rows, l.x_cal, r).ok());
    CHECK(r.report.dead_inputs == 32);
    CHECK(r.report.mean_diagonal == 1.0);
    CHECK_FALSE(r.report.fell_back_to_rtn);
    for (const float v : r.weights) CHECK(v == 0.0f);
}

TEST_CASE("gptq: constant channels (zero and constant weight rows, a constant input)", "[ptq][gptq]") {
    const auto s = gptq_s4{}.per_channel(0);
    gptq_layer l = gptq_make_layer(8, 32, 128, 24);
    for (std::size_t c = 0; c < 32; ++c) {
        l.w[2 * 32 + c] = 0.0f;   // a zero output channel: scale eps, stays exactly 0
        l.w[3 * 32 + c] = 0.25f;  // a constant output channel
    }
    for (std::size_t row = 0; row < l.rows; ++row) l.x_cal[row * 32 + 9] = 1.5f;  // a constant input (bias-like)
    lowbit::ptq::gptq_result<gptq_s4> r;
    REQUIRE(lowbit::ptq::gptq(s, l.n, l.k, l.w, l.rows, l.x_cal, r).ok());
    CHECK_FALSE(r.report.fell_back_to_rtn);
    for (const float v : r.weights) REQUIRE(std::isfinite(v));
    const std::vector<std::int32_t> q = gptq_codes(r, l.n * l.k);
    for (std::size_t c = 0; c < 32; ++c) {
        CHECK(r.weights[2 * 32 + c] == 0.0f);
        CHECK(q[2 * 32 + c] == 0);
    }
    CHECK(r.scales[2] == lowbit::default_eps);                             // as RTN: scale eps
    CHECK(r.scales[3] == lowbit::choose_qparams(s, 0.25f, 0.25f)->scale);  // the row's own grid
    CHECK(gptq_output_mse(l, r.weights, l.x_held) <= gptq_output_mse(l, gptq_rtn(s, l.n, l.k, l.w), l.x_held));
}

TEST_CASE("gptq: huge condition number (input scales 1e-6 .. 1e6)", "[ptq][gptq]") {
    const auto s = gptq_s4{}.per_group(1, 16);
    gptq_layer l = gptq_make_layer(8, 64, 256, 25);
    for (std::size_t row = 0; row < l.rows; ++row)
        for (std::size_t c = 0; c < 64; ++c)
            l.x_cal[row * 64 + c] *= static_cast<float>(std::pow(10.0, -6.0 + 12.0 * static_cast<double>(c) / 63.0));
    for (const bool act : {false, true}) {
        gptq_options opt;
        opt.act_order = act;
        lowbit::ptq::gptq_result<gptq_s4> r;
        REQUIRE(lowbit::ptq::gptq(s, l.n, l.k, l.w, l.rows, l.x_cal, r, opt).ok());
        CHECK_FALSE(r.report.fell_back_to_rtn);
        CHECK(r.report.attempts == 1);
        CHECK(r.report.condition_estimate > 1e3);
        for (const float v : r.weights) REQUIRE(std::isfinite(v));
        // The output error is all in the few 1e6-scale inputs. Act order quantizes them first
        // and wins clearly (0.62x RTN on the calibration rows); in index order they come last
        // and GPTQ is on a par with RTN (1.007x: the compensation of the many small-scale
        // columns widens the last groups' ranges), as the paper's act-order remarks suggest.
        const double ratio = gptq_output_mse(l, r.weights, l.x_cal) / gptq_output_mse(l, gptq_rtn(s, l.n, l.k, l.w), l.x_cal);
        INFO("act order " << act << ": GPTQ / RTN calibration MSE " << ratio);
        CHECK(ratio <= (act ? 0.7 : 1.05));
    }
}

TEST_CASE("gptq: Cholesky failure: more dampening, then round-to-nearest", "[ptq][gptq]") {
    const auto s = gptq_s4{}.per_channel(0);
    const std::vector<float> w = {-0.75f, 0.13f, 0.3f, -0.2f};
    lowbit::ptq::gptq_result<gptq_s4> r;
    // indefinite H = [[1, 1.05], [1.05, 1]] (eigenvalues 2.05, -0.05): damp 0.01 leaves it
    // indefinite (1.01^2 < 1.05^2), damp 0.1 makes it positive definite (1.1^2 > 1.05^2)
    const std::vector<double> h = {1.0, 1.05, 1.05, 1.0};
    REQUIRE(lowbit::ptq::gptq_from_hessian(s, 2, 2, w, h, r).ok());
    CHECK_FALSE(r.report.fell_back_to_rtn);
    CHECK(r.report.attempts == 2);
    CHECK(r.report.damp_fraction == Approx(0.1));
    CHECK(r.report.damp == Approx(0.1));
    // without retries it falls back to RTN, bit-identical to ref::fake_quantize
    gptq_options opt;
    opt.damp_retries = 0;
    REQUIRE(lowbit::ptq::gptq_from_hessian(s, 2, 2, w, h, r, opt).ok());
    CHECK(r.report.fell_back_to_rtn);
    CHECK(std::string(r.report.fallback_reason).find("positive definite") != std::string::npos);
    CHECK(r.weights == gptq_rtn(s, 2, 2, w));
    // [[1, 100], [100, 1]] stays indefinite up to damp 10 (the default schedule's last)
    const std::vector<double> h2 = {1.0, 100.0, 100.0, 1.0};
    REQUIRE(lowbit::ptq::gptq_from_hessian(s, 2, 2, w, h2, r).ok());
    CHECK(r.report.fell_back_to_rtn);
    CHECK(r.report.attempts == 4);
    CHECK(r.weights == gptq_rtn(s, 2, 2, w));
    std::vector<float> deq(4);
    REQUIRE(lowbit::ref::dequantize(s, lowbit::shape{2, 2}, {r.scales, r.zero_points}, r.codes, deq).ok());
    CHECK(deq == r.weights);
    const auto pg = gptq_u4{}.per_group(1, 2);
    lowbit::ptq::gptq_result<gptq_u4> rg;
    REQUIRE(lowbit::ptq::gptq_from_hessian(pg, 2, 2, w, h2, rg).ok());
    CHECK(rg.report.fell_back_to_rtn);
    CHECK(rg.weights == gptq_rtn(pg, 2, 2, w));
}

TEST_CASE("gptq: invalid arguments name the argument", "[ptq][gptq]") {
    const auto s = gptq_s4{}.per_channel(0);
    const gptq_layer l = gptq_make_layer(4, 16, 32, 26);
    lowbit::ptq::gptq_result<gptq_s4> r;
    const auto call = [&](std::size_t n, std::size_t k, const std::vector<float>& w, std::size_t rows,
                          const std::vector<float>& x, const gptq_options& o) {
        return lowbit::ptq::gptq(s, n, k, w, rows, x, r, o);
    };
    const gptq_options def;
    CHECK_THROWS_WITH(call(4, 16, l.w, 0, {}, def), Catch::Contains("'rows' = 0"));
    CHECK_THROWS_WITH(call(0, 16, {}, 32, l.x_cal, def), Catch::Contains("'n' = 0"));
    CHECK_THROWS_WITH(call(4, 0, {}, 32, {}, def), Catch::Contains("'k' = 0"));
    CHECK_THROWS_WITH(call(4, 16, l.w, 31, l.x_cal, def), Catch::Contains("'x.size()'"));
    CHECK_THROWS_WITH(call(3, 16, l.w, 32, l.x_cal, def), Catch::Contains("'w.size()'"));
    std::vector<float> bad = l.w;
    bad[7] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(call(4, 16, bad, 32, l.x_cal, def), Catch::Contains("'w' = 7"));
    bad = l.x_cal;
    bad[40] = std::nanf("");
    CHECK_THROWS_WITH(call(4, 16, l.w, 32, bad, def), Catch::Contains("'x' = 40"));
    gptq_options o;
    o.percdamp = 0.0;
    CHECK_THROWS_WITH(call(4, 16, l.w, 32, l.x_cal, o), Catch::Contains("'percdamp'"));
    o = {};
    o.block_size = 0;
    CHECK_THROWS_WITH(call(4, 16, l.w, 32, l.x_cal, o), Catch::Contains("'block_size' = 0"));
    o = {};
    o.damp_retries = 17;
    CHECK_THROWS_WITH(call(4, 16, l.w, 32, l.x_cal, o), Catch::Contains("'damp_retries' = 17"));
    CHECK_THROWS_WITH(lowbit::ptq::gptq(gptq_s4{}.per_channel(1), 4, 16, l.w, 32, l.x_cal, r), Catch::Contains("'axis' = 1"));
    CHECK_THROWS_WITH(lowbit::ptq::gptq(gptq_s4{}.per_group(1, 5), 4, 16, l.w, 32, l.x_cal, r),
                      Catch::Contains("'group_size' = 5"));
    CHECK_THROWS_WITH(lowbit::ptq::gptq(gptq_s4{}.per_group(0, 2), 4, 16, l.w, 32, l.x_cal, r), Catch::Contains("'axis' = 0"));
    CHECK_THROWS_WITH(lowbit::ptq::gptq(gptq_s4{}.with_range(1, 7).per_channel(0), 4, 16, l.w, 32, l.x_cal, r),
                      Catch::Contains("'quant_min'"));
    std::vector<double> h(16 * 16, 0.0);
    const std::vector<double> h15(15);
    CHECK_THROWS_WITH(lowbit::ptq::gptq_from_hessian(s, 4, 16, l.w, h15, r), Catch::Contains("'h.size()'"));
    h[3 * 16 + 3] = -1.0;
    CHECK_THROWS_WITH(lowbit::ptq::gptq_from_hessian(s, 4, 16, l.w, h, r), Catch::Contains("'h' = 51"));
    h[3 * 16 + 3] = 1.0;
    h[5 * 16 + 2] = std::nan("");
    CHECK_THROWS_WITH(lowbit::ptq::gptq_from_hessian(s, 4, 16, l.w, h, r), Catch::Contains("'h' = 82"));
}
