// lowbit::ref::gemm (core/gemm.hpp), the integer GEMM spec, against independent values:
//   - int32 and dequantized f32 outputs against numpy golden data
//     (tests/golden/data/gemm_ref.txt, written by tests/golden/generate_gemm.py, read with
//     tests/golden_reader.hpp), exactly
//     (integers equal, floats bit for bit, so -0 and +0 differ);
//   - the requantizing outputs (fixed-point and float multipliers) against lowbit::ref::requantize
//     (core/requantize.hpp, golden-tested against TFLite's formulas) applied to the golden
//     int32 matrix;
//   - hand-computed values: the worked example of gemm.hpp's comment, gemm_max_k, the exact
//     extreme accumulators at K = gemm_max_k, and K = gemm_max_k + 1 refused;
//   - every argument check, naming the argument and its value, with nothing written.
// Outputs go to C buffers of exactly (M - 1) * ldc + N elements pre-filled with a sentinel:
// the gaps between rows (ldc > N) must keep it, and ASan sees any write past the end.
#include "golden_reader.hpp"
#include "lowbit_catch.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <lowbit/core/gemm.hpp>

namespace {

using lowbit::errc;
using lowbit::gemm_a;
using lowbit::gemm_b;
using lowbit::gemm_dims;
using lowbit::span;
using lowbit::weight_layout;

constexpr std::int32_t i32_min = std::numeric_limits<std::int32_t>::min();
constexpr std::int32_t i32_max = std::numeric_limits<std::int32_t>::max();

using golden::show;

float float_of_bits(std::uint32_t u) {
    float f = 0;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// ---------------------------------------------------------------------------------------
// the golden file

/// golden::row::i32 with a range check: a value outside int32 makes the file malformed.
std::int32_t read_i32(golden::row& r) {
    const long long v = r.integer();
    if (v < i32_min || v > i32_max) throw std::runtime_error(r.where() + ": not an int32");
    return static_cast<std::int32_t>(v);
}

std::vector<std::int32_t> read_i32s(golden::row& r, std::size_t n) {
    std::vector<std::int32_t> v(n);
    for (std::int32_t& x : v) x = read_i32(r);
    return v;
}

struct dequant_variant {
    std::vector<float> scales, bias, y;  // y: M x N compact
};

/// One GEMM of the golden file (columns: see the file's header).
struct golden_case {
    std::string where, name;
    bool a_signed = false;
    std::size_t m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
    weight_layout layout = weight_layout::n_by_k;
    std::int32_t za = 0;
    std::vector<std::int32_t> zb, a, b, acc;  // a / b: whole buffers; acc: M x N compact
    std::vector<dequant_variant> dq;
};

std::vector<golden_case> load_cases() {
    std::vector<golden_case> cases;
    for (golden::row& r : golden::load("gemm_ref.txt", "generate_gemm.py")) {
        INFO(r.where());
        golden_case g;
        g.where = r.where();
        g.name = r.word();
        const std::string ta = r.word();
        REQUIRE((ta == "u8" || ta == "s8"));
        g.a_signed = ta == "s8";
        g.m = r.count();
        g.n = r.count();
        g.k = r.count();
        const std::string layout = r.word();
        REQUIRE((layout == "k_by_n" || layout == "n_by_k"));
        g.layout = layout == "k_by_n" ? weight_layout::k_by_n : weight_layout::n_by_k;
        g.lda = r.count();
        g.ldb = r.count();
        g.ldc = r.count();
        g.za = read_i32(r);
        g.zb = read_i32s(r, r.count());
        g.a = read_i32s(r, r.count());
        g.b = read_i32s(r, r.count());
        g.acc = read_i32s(r, g.m * g.n);
        const std::size_t ndq = r.count();
        for (std::size_t i = 0; i < ndq; ++i) {
            dequant_variant v;
            v.scales = r.reals(r.count());
            v.bias = r.reals(r.count());
            v.y = r.reals(g.m * g.n);
            g.dq.push_back(std::move(v));
        }
        REQUIRE(r.done());
        // the buffers are exactly the minimum sizes the contract asks for
        REQUIRE(g.m >= 1);
        REQUIRE(g.n >= 1);
        REQUIRE(g.a.size() == (g.m - 1) * g.lda + g.k);
        const bool kn = g.layout == weight_layout::k_by_n;
        REQUIRE(g.b.size() == (g.k == 0 ? 0 : ((kn ? g.k : g.n) - 1) * g.ldb + (kn ? g.n : g.k)));
        cases.push_back(std::move(g));
    }
    return cases;
}

const std::vector<golden_case>& cases() {
    static const std::vector<golden_case> c = load_cases();
    return c;
}

/// A case's operands, typed, in buffers of exactly the file's sizes.
template <class TA>
struct operands {
    std::vector<TA> a;
    std::vector<std::int8_t> b;
    gemm_dims d;
    gemm_a<TA> ga;
    gemm_b gb;
    explicit operands(const golden_case& g) : a(g.a.size()), b(g.b.size()) {
        for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<TA>(g.a[i]);
        for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::int8_t>(g.b[i]);
        d = gemm_dims{g.m, g.n, g.k};
        ga = gemm_a<TA>{a, g.lda, g.za};
        gb = gemm_b{b, g.ldb, g.layout, g.zb};
    }
};

/// Counts comparisons; every mismatch fails the test case (the first 30 are shown).
class report {
public:
    void same_int(const std::string& ctx, long long expected, long long got) {
        ++m_compared;
        if (expected != got) fail(ctx, std::to_string(expected), std::to_string(got));
    }
    void same_float(const std::string& ctx, float expected, float got) {
        ++m_compared;
        if (golden::bits(expected) != golden::bits(got)) fail(ctx, show(expected), show(got));
    }
    /// C (at ldc) against the compact M x N `expected`; the gaps must hold `sentinel`.
    template <class T, class E>
    void matrix(const std::string& ctx, const golden_case& g, const std::vector<E>& expected, const std::vector<T>& c,
                T sentinel) {
        REQUIRE(c.size() == (g.m - 1) * g.ldc + g.n);
        for (std::size_t m = 0; m < g.m; ++m)
            for (std::size_t j = 0; j < g.ldc && m * g.ldc + j < c.size(); ++j) {
                const std::string at = ctx + " [" + std::to_string(m) + "][" + std::to_string(j) + "]";
                const T got = c[m * g.ldc + j];
                if (j < g.n)
                    compare(at, expected[m * g.n + j], got);
                else
                    compare(at + " (gap, must be untouched)", sentinel, got);
            }
    }
    std::size_t compared() const { return m_compared; }
    void finish(std::size_t min_compared) const {
        INFO(m_mismatches << " mismatch(es) in " << m_compared << " comparisons");
        CHECK(m_mismatches == 0);
        REQUIRE(m_compared >= min_compared);
    }

private:
    void compare(const std::string& ctx, float e, float g) { same_float(ctx, e, g); }
    template <class E, class G>
    void compare(const std::string& ctx, E e, G g) {
        same_int(ctx, static_cast<long long>(e), static_cast<long long>(g));
    }
    void fail(const std::string& ctx, const std::string& e, const std::string& g) {
        ++m_mismatches;
        if (m_mismatches <= 30) FAIL_CHECK(ctx << "\n    expected " << e << ", got (ref::gemm) " << g);
    }
    std::size_t m_compared = 0;
    std::size_t m_mismatches = 0;
};

constexpr std::int32_t sentinel_s32 = 0x5A5A5A5A;
const float sentinel_f32 = float_of_bits(0x7FC0BEEFu);  // a NaN payload no computation produces

// ---------------------------------------------------------------------------------------
// small deterministic generator for the requantize parameters (splitmix64)

class rng {
public:
    explicit rng(std::uint64_t seed) : m_s(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (m_s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    /// uniform in [lo, hi]
    std::int64_t between(std::int64_t lo, std::int64_t hi) {
        return lo + static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(hi - lo + 1));
    }
    double unit() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }

private:
    std::uint64_t m_s;
};

std::int64_t abs64(std::int64_t v) { return v < 0 ? -v : v; }

/// Largest |acc| of column n (0 for K = 0).
std::int64_t column_max(const golden_case& g, std::size_t n) {
    std::int64_t mx = 0;
    for (std::size_t m = 0; m < g.m; ++m) {
        const std::int64_t v = abs64(g.acc[m * g.n + n]);
        if (v > mx) mx = v;
    }
    return mx;
}

}  // namespace

// =======================================================================================
// golden: int32 and f32

namespace {
template <class TA>
void check_s32(const golden_case& g, report& rep) {
    const operands<TA> op(g);
    std::vector<std::int32_t> c((g.m - 1) * g.ldc + g.n, sentinel_s32);
    REQUIRE(lowbit::ref::gemm(op.d, op.ga, op.gb, span<std::int32_t>(c), g.ldc).ok());
    rep.matrix(g.where + " " + g.name + " int32", g, g.acc, c, sentinel_s32);
}

template <class TA>
void check_f32(const golden_case& g, report& rep) {
    const operands<TA> op(g);
    for (std::size_t i = 0; i < g.dq.size(); ++i) {
        const dequant_variant& v = g.dq[i];
        std::vector<float> c((g.m - 1) * g.ldc + g.n, sentinel_f32);
        lowbit::gemm_dequantize_params p;
        p.scales = v.scales;
        p.bias = v.bias;
        REQUIRE(lowbit::ref::gemm(op.d, op.ga, op.gb, p, span<float>(c), g.ldc).ok());
        rep.matrix(g.where + " " + g.name + " dequantize #" + std::to_string(i) + " (scales " +
                       std::to_string(v.scales.size()) + ", bias " + std::to_string(v.bias.size()) + ")",
                   g, v.y, c, sentinel_f32);
    }
}
}  // namespace

TEST_CASE("golden: ref::gemm int32 output equals numpy's exact sum", "[gemm][ref][golden]") {
    const std::vector<golden_case>& all = cases();
    REQUIRE(all.size() >= 60);
    report rep;
    // what the file covers (the generator's docstring promises these)
    std::size_t s8 = 0, u8 = 0, kn = 0, nk = 0, pad_a = 0, pad_b = 0, pad_c = 0, zb_n[3] = {}, k0 = 0, extreme = 0,
                zb_ends = 0, big = 0;
    for (const golden_case& g : all) {
        if (g.a_signed) {
            ++s8;
            check_s32<std::int8_t>(g, rep);
        } else {
            ++u8;
            check_s32<std::uint8_t>(g, rep);
        }
        ++(g.layout == weight_layout::k_by_n ? kn : nk);
        pad_a += g.lda > g.k;
        pad_b += g.ldb > (g.layout == weight_layout::k_by_n ? g.n : g.k) && g.k > 0;
        pad_c += g.ldc > g.n;
        ++zb_n[g.zb.empty() ? 0 : g.zb.size() == 1 ? 1 : 2];
        k0 += g.k == 0;
        extreme += g.name.find("extreme") != std::string::npos;
        for (std::int32_t z : g.zb) zb_ends += z == -128 || z == 127;
        for (std::int32_t v : g.acc) big += abs64(v) > (std::int64_t(1) << 24);
    }
    CHECK(s8 >= 30);
    CHECK(u8 >= 30);
    CHECK(kn >= 20);
    CHECK(nk >= 20);
    CHECK(pad_a >= 10);
    CHECK(pad_b >= 10);
    CHECK(pad_c >= 10);
    CHECK(zb_n[0] >= 10);
    CHECK(zb_n[1] >= 10);
    CHECK(zb_n[2] >= 10);
    CHECK(k0 >= 8);
    CHECK(extreme >= 12);
    CHECK(zb_ends >= 20);
    CHECK(big >= 50);
    rep.finish(1500);
}

TEST_CASE("golden: ref::gemm dequantize output equals the exact fma rounded once", "[gemm][ref][golden]") {
    report rep;
    std::size_t variants = 0, per_channel_scales = 0, with_bias = 0, neg_zero = 0;
    for (const golden_case& g : cases()) {
        if (g.a_signed)
            check_f32<std::int8_t>(g, rep);
        else
            check_f32<std::uint8_t>(g, rep);
        for (const dequant_variant& v : g.dq) {
            ++variants;
            per_channel_scales += v.scales.size() == g.n && g.n > 1;
            with_bias += !v.bias.empty();
            for (float y : v.y) neg_zero += y == 0.0f && std::signbit(y);
        }
    }
    CHECK(variants >= 150);
    CHECK(per_channel_scales >= 50);
    CHECK(with_bias >= 80);
    CHECK(neg_zero >= 5);
    rep.finish(4500);
}

// =======================================================================================
// requantizing outputs against ref::requantize of the golden int32 matrix

namespace {

/// gemm's requantize parameters, and the same expanded to N multipliers / biases for
/// ref::requantize with a per_channel(1) scheme over the M x N accumulator.
template <class Multiplier, class Params>
struct requant_setup {
    std::vector<Multiplier> m, m_full;
    std::vector<std::int32_t> bias, bias_full;
    Params p, p_full;
    void finish(std::size_t n) {
        for (std::size_t j = 0; j < n; ++j) {
            m_full.push_back(m.size() == 1 ? m[0] : m[j]);
            if (!bias.empty()) bias_full.push_back(bias.size() == 1 ? bias[0] : bias[j]);
        }
        p.multipliers = m;
        p.bias = bias;
        p_full = p;
        p_full.multipliers = m_full;
        p_full.bias = bias_full;
    }
};

/// The exponent e of the power-of-two multiplier M = 2^-e for column j: 2^e about range / 64,
/// at least 2 (so the shift 1 - e is negative and a right shift rounds).
int pow2_exponent(const golden_case& g, std::size_t j) {
    int e = 2;
    while ((std::int64_t(1) << e) * 64 < column_max(g, j) + 1 && e < 30) ++e;
    return e;
}

/// Bias: 0 none, 1 per tensor, 2 per channel, 3 per channel near the int32 ends (the
/// biased sum saturates), 4 per channel making acc[j % M][j] + bias[j] a negative tie
/// -(2t + 1) * 2^(e - 1) of M = 2^-e (pow2_exponent), one per column at least.
void make_bias(rng& r, const golden_case& g, int mode, std::vector<std::int32_t>& bias) {
    if (mode == 0) return;
    if (mode == 4) {
        for (std::size_t j = 0; j < g.n; ++j) {
            const std::int64_t t = static_cast<std::int64_t>(j % 20);
            const std::int64_t v = -(2 * t + 1) * (std::int64_t(1) << (pow2_exponent(g, j) - 1));
            const std::int64_t b = v - g.acc[(j % g.m) * g.n + j];
            REQUIRE((b >= i32_min && b <= i32_max));
            bias.push_back(static_cast<std::int32_t>(b));
        }
        return;
    }
    const std::size_t count = mode == 1 ? 1 : g.n;
    for (std::size_t j = 0; j < count; ++j) {
        if (mode == 3) {
            const std::int32_t ends[4] = {i32_max, i32_min, i32_max - 7, i32_min + 3};
            bias.push_back(ends[j % 4]);
        } else {
            const std::int64_t mx = column_max(g, mode == 1 ? 0 : j) + 3;
            bias.push_back(static_cast<std::int32_t>(r.between(-mx, mx)));
        }
    }
}

/// Real multiplier for channel j: about `target` output steps over the channel's range.
double real_multiplier(const golden_case& g, std::size_t j, double target, const std::vector<std::int32_t>& bias) {
    const std::int64_t b = bias.empty() ? 0 : abs64(bias.size() == 1 ? bias[0] : bias[j]);
    const double range = static_cast<double>(column_max(g, j) + (b > (std::int64_t(1) << 31) / 2 ? 0 : b) + 1);
    return target / range;
}

struct requant_stats {
    std::size_t outputs = 0, at_lo = 0, at_hi = 0, rounding_differs = 0, configs = 0;
};

struct fixed_config {
    bool per_channel;
    int bias_mode;
    // 0: exact powers of two 2^-e, 2^e ~ range / 64; < 0: M = 1/4 (a tie for every acc = 2 mod 4;
    // the roundings differ on the negative ones: -2998 -> -750 double, -749 single)
    double target;
    std::int32_t zp_offset;
    int clamp;  // 0 none, 1 ReLU (clamp_min = zp), 2 [zp, zp + 40], 3 outside the format
};

template <class TA, class Scheme>
void check_fixed(const golden_case& g, const Scheme& s, const fixed_config& cfg, rng& r, report& rep,
                 requant_stats& st) {
    using out_t = typename Scheme::storage_type;
    const operands<TA> op(g);
    requant_setup<lowbit::quantized_multiplier, lowbit::requantize_params> q;
    make_bias(r, g, cfg.bias_mode, q.bias);
    const std::size_t count = cfg.per_channel ? g.n : 1;
    for (std::size_t j = 0; j < count; ++j) {
        if (cfg.target < 0) {
            q.m.push_back(lowbit::quantized_multiplier{std::int32_t(1) << 30, -1});
        } else if (cfg.target == 0) {
            // M = 2^-e: multiplier 2^30, shift 1 - e (M = 2^30 * 2^(shift - 31))
            q.m.push_back(lowbit::quantized_multiplier{std::int32_t(1) << 30, 1 - pow2_exponent(g, j)});
        } else {
            const double target = cfg.target * (0.75 + 0.5 * r.unit());
            q.m.push_back(*lowbit::quantize_multiplier(real_multiplier(g, j, target, q.bias)));
        }
    }
    q.p.zero_point = (s.qmin() + s.qmax() + 1) / 2 + cfg.zp_offset;
    if (cfg.clamp == 1) q.p.clamp_min = q.p.zero_point;
    if (cfg.clamp == 2) {
        q.p.clamp_min = q.p.zero_point;
        q.p.clamp_max = q.p.zero_point + 40;
    }
    if (cfg.clamp == 3) {
        q.p.clamp_min = -1000;
        q.p.clamp_max = 1000;
    }
    q.finish(g.n);
    const auto ref_scheme = s.per_channel(1);
    const lowbit::shape shp{g.m, g.n};
    std::vector<out_t> expect[2];
    for (int rounding = 0; rounding < 2; ++rounding) {
        q.p.rounding = q.p_full.rounding =
            rounding == 0 ? lowbit::requant_rounding::double_rounding : lowbit::requant_rounding::single_rounding;
        expect[rounding].assign(g.m * g.n, out_t{});
        REQUIRE(lowbit::ref::requantize(ref_scheme, shp, q.p_full, span<const std::int32_t>(g.acc),
                                        span<out_t>(expect[rounding]))
                    .ok());
        const out_t sentinel = static_cast<out_t>(0x5A);
        std::vector<out_t> c((g.m - 1) * g.ldc + g.n, sentinel);
        REQUIRE(lowbit::ref::gemm(op.d, op.ga, op.gb, s, q.p, span<out_t>(c), g.ldc).ok());
        rep.matrix(g.where + " " + g.name + " requantize " + lowbit::to_string(q.p.rounding) + " (multipliers " +
                       std::to_string(q.m.size()) + ", bias " + std::to_string(q.bias.size()) + ", zp " +
                       std::to_string(q.p.zero_point) + ", clamp " + std::to_string(q.p.clamp_min) + ".." +
                       std::to_string(q.p.clamp_max) + ", range " + std::to_string(s.qmin()) + ".." +
                       std::to_string(s.qmax()) + ")",
                   g, expect[rounding], c, sentinel);
    }
    const std::int32_t lo = lowbit::detail::clamp_bound(s, q.p.clamp_min), hi = lowbit::detail::clamp_bound(s, q.p.clamp_max);
    for (std::size_t i = 0; i < expect[0].size(); ++i) {
        ++st.outputs;
        st.at_lo += expect[0][i] == lo;
        st.at_hi += expect[0][i] == hi;
        st.rounding_differs += expect[0][i] != expect[1][i];
    }
    ++st.configs;
}

struct float_config {
    bool per_channel;
    int bias_mode;
    double target;  // < 0: one channel gets 0 and one a multiplier overflowing float to +-Inf
    std::int32_t zp_offset;
    int clamp;
};

template <class TA, class Scheme>
void check_float(const golden_case& g, const Scheme& s, const float_config& cfg, rng& r, report& rep,
                 requant_stats& st) {
    using out_t = typename Scheme::storage_type;
    const operands<TA> op(g);
    requant_setup<float, lowbit::requantize_float_params> q;
    make_bias(r, g, cfg.bias_mode, q.bias);
    const std::size_t count = cfg.per_channel ? g.n : 1;
    for (std::size_t j = 0; j < count; ++j) {
        const double target = (cfg.target < 0 ? -cfg.target : cfg.target) * (0.75 + 0.5 * r.unit());
        float m = static_cast<float>(real_multiplier(g, j, target, q.bias));
        if (cfg.target < 0 && j % 3 == 1) m = 0.0f;
        if (cfg.target < 0 && j % 3 == 2) m = 3.0e38f;  // |v| >= 2 overflows float: saturates to lo / hi
        q.m.push_back(m);
    }
    q.p.zero_point = (s.qmin() + s.qmax() + 1) / 2 + cfg.zp_offset;
    if (cfg.clamp == 1) q.p.clamp_min = q.p.zero_point;
    if (cfg.clamp == 2) {
        q.p.clamp_min = q.p.zero_point - 30;
        q.p.clamp_max = q.p.zero_point + 30;
    }
    if (cfg.clamp == 3) {
        q.p.clamp_min = i32_min;
        q.p.clamp_max = -1000;  // below the format: every output is qmin
    }
    q.finish(g.n);
    std::vector<out_t> expect(g.m * g.n);
    REQUIRE(lowbit::ref::requantize(s.per_channel(1), lowbit::shape{g.m, g.n}, q.p_full, span<const std::int32_t>(g.acc),
                                    span<out_t>(expect))
                .ok());
    const out_t sentinel = static_cast<out_t>(0x5A);
    std::vector<out_t> c((g.m - 1) * g.ldc + g.n, sentinel);
    REQUIRE(lowbit::ref::gemm(op.d, op.ga, op.gb, s, q.p, span<out_t>(c), g.ldc).ok());
    rep.matrix(g.where + " " + g.name + " requantize float (multipliers " + std::to_string(q.m.size()) + ", bias " +
                   std::to_string(q.bias.size()) + ", zp " + std::to_string(q.p.zero_point) + ", clamp " +
                   std::to_string(q.p.clamp_min) + ".." + std::to_string(q.p.clamp_max) + ")",
               g, expect, c, sentinel);
    const std::int32_t lo = lowbit::detail::clamp_bound(s, q.p.clamp_min), hi = lowbit::detail::clamp_bound(s, q.p.clamp_max);
    for (out_t v : expect) {
        ++st.outputs;
        st.at_lo += v == lo;
        st.at_hi += v == hi;
    }
    ++st.configs;
}

const fixed_config fixed_configs[] = {
    {false, 0, 100.0, 0, 0},  {false, 1, 60.0, -5, 0}, {true, 2, 120.0, 3, 1},  {true, 0, 0.0, 0, 0},
    {true, 3, 100.0, 0, 0},   {false, 2, 300.0, 0, 2}, {true, 1, 0.0, -20, 3},  {true, 2, 50.0, 10, 0},
    {false, 0, -1.0, 0, 0},   {true, 4, 0.0, 0, 0},
};
const float_config float_configs[] = {
    {false, 0, 100.0, 0, 0}, {true, 2, 120.0, 3, 1}, {true, 1, -80.0, -7, 0}, {false, 2, 300.0, 0, 2},
    {true, 3, 100.0, 0, 0},  {false, 0, 100.0, 0, 3},
};

template <class TA>
void check_requant_case(const golden_case& g, rng& r, report& rep, requant_stats& fixed, requant_stats& flt) {
    const auto s8 = lowbit::scheme<lowbit::s8>{};
    const auto u8 = lowbit::scheme<lowbit::u8>{};
    const auto s8_narrow = lowbit::scheme<lowbit::s8>{}.with_range(-127, 127);
    const auto u8_half = lowbit::scheme<lowbit::u8>{}.with_range(0, 127);
    for (std::size_t i = 0; i < sizeof fixed_configs / sizeof fixed_configs[0]; ++i) {
        check_fixed<TA>(g, s8, fixed_configs[i], r, rep, fixed);
        check_fixed<TA>(g, u8, fixed_configs[i], r, rep, fixed);
        if (i % 3 == 0) {
            check_fixed<TA>(g, s8_narrow, fixed_configs[i], r, rep, fixed);
            check_fixed<TA>(g, u8_half, fixed_configs[i], r, rep, fixed);
        }
    }
    for (std::size_t i = 0; i < sizeof float_configs / sizeof float_configs[0]; ++i) {
        check_float<TA>(g, s8, float_configs[i], r, rep, flt);
        check_float<TA>(g, u8, float_configs[i], r, rep, flt);
        if (i % 2 == 0) check_float<TA>(g, s8_narrow, float_configs[i], r, rep, flt);
    }
}

}  // namespace

TEST_CASE("ref::gemm requantize outputs equal ref::requantize of the golden int32", "[gemm][ref][requantize]") {
    rng r(42);
    report rep;
    requant_stats fixed, flt;
    for (const golden_case& g : cases()) {
        if (g.a_signed)
            check_requant_case<std::int8_t>(g, r, rep, fixed, flt);
        else
            check_requant_case<std::uint8_t>(g, r, rep, fixed, flt);
    }
    // the parameters exercise what they should: both clamp ends, and outputs where the two
    // roundings disagree (negative ties)
    INFO("fixed: " << fixed.outputs << " outputs, " << fixed.at_lo << " at lo, " << fixed.at_hi << " at hi, "
                   << fixed.rounding_differs << " differing roundings; float: " << flt.outputs << " outputs, "
                   << flt.at_lo << " at lo, " << flt.at_hi << " at hi");
    CHECK(fixed.at_lo * 200 > fixed.outputs);  // more than 0.5% at each end
    CHECK(fixed.at_hi * 200 > fixed.outputs);
    CHECK(fixed.rounding_differs >= 50);
    CHECK(flt.at_lo * 200 > flt.outputs);
    CHECK(flt.at_hi * 200 > flt.outputs);
    rep.finish(100000);
}

// =======================================================================================
// hand-computed values

TEST_CASE("ref::gemm: the worked example of gemm.hpp (K = 2, A = [-3, 5], B = [7, -2] -> -31)", "[gemm][ref]") {
    // s8 A, za = 0: (-3)(7) + (5)(-2) = -21 - 10 = -31
    const std::int8_t a[2] = {-3, 5};
    const std::int8_t b[2] = {7, -2};  // one column: k_by_n with ldb = N = 1, or n_by_k with ldb = K = 2
    std::int32_t c[1] = {sentinel_s32};
    REQUIRE(lowbit::ref::gemm(gemm_dims{1, 1, 2}, gemm_a<std::int8_t>{a, 2, 0}, gemm_b{b, 1, weight_layout::k_by_n, {}},
                              span<std::int32_t>(c), 1)
                .ok());
    CHECK(c[0] == -31);
    c[0] = sentinel_s32;
    REQUIRE(lowbit::ref::gemm(gemm_dims{1, 1, 2}, gemm_a<std::int8_t>{a, 2, 0}, gemm_b{b, 2, weight_layout::n_by_k, {}},
                              span<std::int32_t>(c), 1)
                .ok());
    CHECK(c[0] == -31);
    // the u8 trick: A' = A + 128 = [125, 133] as u8 with za' = 128 is the same product
    // (125 - 128)(7) + (133 - 128)(-2) = -21 - 10 = -31 (= 609 - 128 * colsum 5)
    const std::uint8_t a2[2] = {125, 133};
    c[0] = sentinel_s32;
    REQUIRE(lowbit::ref::gemm(gemm_dims{1, 1, 2}, gemm_a<std::uint8_t>{a2, 2, 128},
                              gemm_b{b, 2, weight_layout::n_by_k, {}}, span<std::int32_t>(c), 1)
                .ok());
    CHECK(c[0] == -31);
    // the sum without the zero point: 125 * 7 + 133 * (-2) = 875 - 266 = 609
    c[0] = sentinel_s32;
    REQUIRE(lowbit::ref::gemm(gemm_dims{1, 1, 2}, gemm_a<std::uint8_t>{a2, 2, 0},
                              gemm_b{b, 2, weight_layout::n_by_k, {}}, span<std::int32_t>(c), 1)
                .ok());
    CHECK(c[0] == 609);
}

TEST_CASE("ref::gemm: a hand-computed 1 x 2 x 2 with per-channel zero points and every output", "[gemm][ref]") {
    // A (u8) = [10, 200], za = 100 -> A - za = [-90, 100]
    // B (k_by_n, K = 2, N = 2) = [[3, 127], [-4, -128]], zb = {3, -128}
    //   column 0: B - zb = [0, -7]   -> (-90)(0) + (100)(-7)  = -700
    //   column 1: B - zb = [255, 0]  -> (-90)(255) + (100)(0) = -22950
    const std::uint8_t a[2] = {10, 200};
    const std::int8_t b[4] = {3, 127, -4, -128};
    const std::int32_t zb[2] = {3, -128};
    const gemm_dims d{1, 2, 2};
    const gemm_a<std::uint8_t> ga{a, 2, 100};
    const gemm_b gb{b, 2, weight_layout::k_by_n, zb};
    std::int32_t c[2] = {0, 0};
    REQUIRE(lowbit::ref::gemm(d, ga, gb, span<std::int32_t>(c), 2).ok());
    CHECK(c[0] == -700);
    CHECK(c[1] == -22950);
    // dequantize: scales {0.5, 2^-10}, bias {0.25, -1}: -700 * 0.5 + 0.25 = -349.75;
    // -22950 * 2^-10 - 1 = -22.412109375 - 1 = -23.412109375 (all exact in float)
    const float scales[2] = {0.5f, 0.0009765625f};
    const float bias[2] = {0.25f, -1.0f};
    float y[2] = {0, 0};
    lowbit::gemm_dequantize_params dp;
    dp.scales = scales;
    dp.bias = bias;
    REQUIRE(lowbit::ref::gemm(d, ga, gb, dp, span<float>(y), 2).ok());
    CHECK(y[0] == -349.75f);
    CHECK(y[1] == -23.412109375f);
    dp.bias = {};
    REQUIRE(lowbit::ref::gemm(d, ga, gb, dp, span<float>(y), 2).ok());
    CHECK(y[0] == -350.0f);
    CHECK(y[1] == -22.412109375f);
    // requantize to s8, M = 2^-8 (multiplier 2^30, shift -7), zp = 10, per tensor:
    //   -700 / 256 = -2.734375 -> -3 + 10 = 7 ; -22950 / 256 = -89.6484375 -> -90 + 10 = -80
    const lowbit::quantized_multiplier m[1] = {{std::int32_t(1) << 30, -7}};
    lowbit::requantize_params rp;
    rp.multipliers = m;
    rp.zero_point = 10;
    std::int8_t q[2] = {0, 0};
    REQUIRE(lowbit::ref::gemm(d, ga, gb, lowbit::scheme<lowbit::s8>{}, rp, span<std::int8_t>(q), 2).ok());
    CHECK(q[0] == 7);
    CHECK(q[1] == -80);
    // bias {-4, 0} and ReLU (clamp_min = zp = 10): -704 / 256 = -2.75 -> -3 + 10 = 7 -> 10;
    // -80 -> 10
    const std::int32_t qb[2] = {-4, 0};
    rp.bias = qb;
    rp.clamp_min = 10;
    REQUIRE(lowbit::ref::gemm(d, ga, gb, lowbit::scheme<lowbit::s8>{}, rp, span<std::int8_t>(q), 2).ok());
    CHECK(q[0] == 10);
    CHECK(q[1] == 10);
    // float multipliers {0.01, 0.001} to u8, zp = 128: -700 * 0.01 = -7 -> 121; -22950 * 0.001 = -22.95 -> -23 -> 105
    const float fm[2] = {0.01f, 0.001f};
    lowbit::requantize_float_params fp;
    fp.multipliers = fm;
    fp.zero_point = 128;
    std::uint8_t u[2] = {0, 0};
    REQUIRE(lowbit::ref::gemm(d, ga, gb, lowbit::scheme<lowbit::u8>{}, fp, span<std::uint8_t>(u), 2).ok());
    CHECK(u[0] == 121);
    CHECK(u[1] == 105);
}

// gemm_max_k = floor((2^31 - 1) / P), P = max|A - za| * max|B - zb| over the formats' ranges
// (B in [-128, 127]; zb = 0 when there are no B zero points, else the worst listed one).
namespace {
constexpr std::int32_t zb_0[1] = {0};
constexpr std::int32_t zb_m128[1] = {-128}, zb_127[1] = {127}, zb_3[1] = {3};
constexpr std::int32_t zb_mixed[3] = {0, 5, -128};
constexpr span<const std::int32_t> none{};
constexpr span<const std::int32_t> one(const std::int32_t (&z)[1]) { return span<const std::int32_t>(z, 1); }
}  // namespace

TEST_CASE("gemm_max_k: hand-computed bounds", "[gemm][ref]") {
    // u8, za = 128, zb = 0: |A - za| <= max(255 - 128, 128 - 0) = 128, |B| <= 128, P = 16384;
    // 2^31 - 1 = 2147483647 = 131071 * 16384 + 16383 -> 131071
    static_assert(lowbit::gemm_max_k<std::uint8_t>(128, none) == 131071, "u8 za=128");
    // u8, za = 0, zb = 0: P = 255 * 128 = 32640; 2147483647 = 65793 * 32640 + 127 -> 65793
    static_assert(lowbit::gemm_max_k<std::uint8_t>(0, none) == 65793, "u8 za=0");
    // the worst case, u8 za = 0, zb = -128: |B - zb| <= 127 + 128 = 255, P = 255 * 255 = 65025;
    // 2147483647 = 33025 * 65025 + 33022 -> 33025
    static_assert(lowbit::gemm_max_k<std::uint8_t>(0, one(zb_m128)) == 33025, "u8 za=0 zb=-128");
    // u8 za = 255, zb = 127: |A - za| <= 255, |B - zb| <= 255: the same 33025
    static_assert(lowbit::gemm_max_k<std::uint8_t>(255, one(zb_127)) == 33025, "u8 za=255 zb=127");
    // u8 za = 127: max(128, 127) = 128, same as za = 128
    static_assert(lowbit::gemm_max_k<std::uint8_t>(127, none) == 131071, "u8 za=127");
    // s8 za = 0: |A| <= 128, P = 128 * 128 -> 131071; za = -128: |A - za| <= 255, zb = 127: 255 -> 33025
    static_assert(lowbit::gemm_max_k<std::int8_t>(0, none) == 131071, "s8 za=0");
    static_assert(lowbit::gemm_max_k<std::int8_t>(-128, one(zb_127)) == 33025, "s8 za=-128 zb=127");
    // s8 za = 1: |A - za| <= max(127 - 1, 1 + 128) = 129, P = 129 * 128 = 16512;
    // 2147483647 = 130055 * 16512 + 15487 -> 130055
    static_assert(lowbit::gemm_max_k<std::int8_t>(1, none) == 130055, "s8 za=1");
    // s8 za = -1: max(128, 127) = 128 -> 131071
    static_assert(lowbit::gemm_max_k<std::int8_t>(-1, none) == 131071, "s8 za=-1");
    // u8 za = 128, zb = 3: |B - zb| <= max(127 - 3, 3 + 128) = 131, P = 128 * 131 = 16768;
    // 2147483647 = 128070 * 16768 + 5887 -> 128070
    static_assert(lowbit::gemm_max_k<std::uint8_t>(128, one(zb_3)) == 128070, "u8 za=128 zb=3");
    // per channel: the worst channel decides (zb = -128: 255); u8 za = 128: P = 128 * 255 = 32640 -> 65793
    static_assert(lowbit::gemm_max_k<std::uint8_t>(128, span<const std::int32_t>(zb_mixed, 3)) == 65793, "per channel");
    // zb = {0} listed is the same as none
    static_assert(lowbit::gemm_max_k<std::uint8_t>(128, one(zb_0)) == 131071, "zb {0}");
    // and at run time
    CHECK(lowbit::gemm_max_k<std::uint8_t>(128, none) == 131071u);
    CHECK(lowbit::gemm_max_k<std::uint8_t>(0, none) == 65793u);
    CHECK(lowbit::gemm_max_k<std::uint8_t>(0, one(zb_m128)) == 33025u);
    CHECK(lowbit::gemm_max_k<std::int8_t>(1, none) == 130055u);
}

namespace {
lowbit::status error_of_call(const std::function<lowbit::status()>& f) {
    try {
        return f();
    } catch (const lowbit::error& e) {
        return e.status();
    }
}
}  // namespace

// calls returning status: with exceptions the failed check throws lowbit::error, whose
// status() is the same status the no-exceptions build returns
#define LOWBIT_TEST_ERROR_OF(expr) error_of_call([&]() -> lowbit::status { return (expr); })

#define CHECK_GEMM_ERROR(expr, code_, arg_, value_)                 \
    do {                                                            \
        const lowbit::status st_ = LOWBIT_TEST_ERROR_OF(expr);      \
        CHECK(st_.code == (code_));                                 \
        CHECK(std::string(st_.argument) == std::string(arg_));      \
        CHECK(st_.value == static_cast<double>(value_));            \
    } while (0)

namespace {
/// K = gemm_max_k with constant A = av, B = bv (one row, one column, both layouts): the exact
/// extreme accumulator, then K + 1 refused with nothing written.
template <class TA>
void check_k_bound(TA av, std::int8_t bv, std::int32_t za, std::int32_t zb, std::size_t expected_k,
                   std::int32_t expected_acc) {
    const std::int32_t zbs[1] = {zb};
    const span<const std::int32_t> zspan(zbs, 1);
    const std::size_t kmax = lowbit::gemm_max_k<TA>(za, zspan);
    REQUIRE(kmax == expected_k);
    const std::vector<TA> a(kmax + 1, av);
    const std::vector<std::int8_t> b(kmax + 1, bv);
    for (weight_layout layout : {weight_layout::k_by_n, weight_layout::n_by_k}) {
        const std::size_t ldb = layout == weight_layout::k_by_n ? 1 : kmax + 1;
        std::int32_t c[1] = {sentinel_s32};
        REQUIRE(lowbit::ref::gemm(gemm_dims{1, 1, kmax}, gemm_a<TA>{a, kmax, za}, gemm_b{b, ldb, layout, zspan},
                                  span<std::int32_t>(c), 1)
                    .ok());
        CHECK(c[0] == expected_acc);
        c[0] = sentinel_s32;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(gemm_dims{1, 1, kmax + 1}, gemm_a<TA>{a, kmax + 1, za},
                                           gemm_b{b, ldb, layout, zspan}, span<std::int32_t>(c), 1),
                         errc::overflow, "k", kmax + 1);
        CHECK(c[0] == sentinel_s32);
        // every output kind refuses it the same way
        const float one_f[1] = {1.0f};
        lowbit::gemm_dequantize_params dp;
        dp.scales = one_f;
        float y[1] = {sentinel_f32};
        CHECK_GEMM_ERROR(lowbit::ref::gemm(gemm_dims{1, 1, kmax + 1}, gemm_a<TA>{a, kmax + 1, za},
                                           gemm_b{b, ldb, layout, zspan}, dp, span<float>(y), 1),
                         errc::overflow, "k", kmax + 1);
        CHECK(golden::bits(y[0]) == golden::bits(sentinel_f32));
        const lowbit::quantized_multiplier m[1] = {{std::int32_t(1) << 30, 0}};
        lowbit::requantize_params rp;
        rp.multipliers = m;
        std::int8_t q[1] = {0x5A};
        CHECK_GEMM_ERROR(lowbit::ref::gemm(gemm_dims{1, 1, kmax + 1}, gemm_a<TA>{a, kmax + 1, za},
                                           gemm_b{b, ldb, layout, zspan}, lowbit::scheme<lowbit::s8>{}, rp,
                                           span<std::int8_t>(q), 1),
                         errc::overflow, "k", kmax + 1);
        lowbit::requantize_float_params fp;
        fp.multipliers = one_f;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(gemm_dims{1, 1, kmax + 1}, gemm_a<TA>{a, kmax + 1, za},
                                           gemm_b{b, ldb, layout, zspan}, lowbit::scheme<lowbit::s8>{}, fp,
                                           span<std::int8_t>(q), 1),
                         errc::overflow, "k", kmax + 1);
        CHECK(q[0] == 0x5A);
    }
}
}  // namespace

TEST_CASE("ref::gemm at K = gemm_max_k: exact extreme accumulators, K + 1 is refused", "[gemm][ref][overflow]") {
    // s8 A = 127, za = -128 (A - za = 255); B = -128, zb = 127 (B - zb = -255): each term -65025,
    // K = 33025: -65025 * 33025 = -2147450625 = -2^31 + 33023
    check_k_bound<std::int8_t>(127, -128, -128, 127, 33025, i32_min + 33023);
    // s8 A = -128, za = 127 (-255); B = -128, zb = 127 (-255): +65025 each, 2147450625 = 2^31 - 1 - 33022
    check_k_bound<std::int8_t>(-128, -128, 127, 127, 33025, i32_max - 33022);
    // u8 A = 0, za = 255 (-255); B = 127, zb = -128 (255): -2^31 + 33023
    check_k_bound<std::uint8_t>(0, 127, 255, -128, 33025, i32_min + 33023);
    // u8 A = 0, za = 128 (-128); B = -128, zb = 0 (-128): +16384 each, K = 131071:
    // 16384 * 131071 = 2^31 - 2^14 = 2147467264
    check_k_bound<std::uint8_t>(0, -128, 128, 0, 131071, 2147467264);
    // u8 A = 255, za = 128 (127); B = -128, zb = 0: -16256 each, K = 131071:
    // -16256 * 131071 = -16256 * 2^17 + 16256 = -2130706432 + 16256 = -2130690176
    check_k_bound<std::uint8_t>(255, -128, 128, 0, 131071, -2130690176);
    // u8 A = 255, za = 0; B = -128, zb = 0: -32640 each, K = 65793: -32640 * 65793 = -2147483520 = -2^31 + 128
    check_k_bound<std::uint8_t>(255, -128, 0, 0, 65793, i32_min + 128);
}

// =======================================================================================
// errors

TEST_CASE("ref::gemm: every argument check names the argument and its value, nothing written", "[gemm][ref][errors]") {
    // M = 2, N = 3, K = 4; A u8 (lda 4, 8 elements), B n_by_k (ldb 4, 12 elements), C ldc 3 (6)
    const std::vector<std::uint8_t> a(8, 1);
    const std::vector<std::int8_t> b(12, 1);
    const std::vector<std::int8_t> as8(8, 1);
    std::vector<std::int32_t> c(6, sentinel_s32);
    const gemm_dims d{2, 3, 4};
    const gemm_a<std::uint8_t> ga{a, 4, 0};
    const gemm_b gb{b, 4, weight_layout::n_by_k, {}};
    const span<std::int32_t> cs(c);
    REQUIRE(lowbit::ref::gemm(d, ga, gb, cs, 3).ok());  // the valid call
    CHECK(c == std::vector<std::int32_t>(6, 4));
    std::fill(c.begin(), c.end(), sentinel_s32);

    // zero points
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, gemm_a<std::uint8_t>{a, 4, -1}, gb, cs, 3), errc::invalid_argument,
                     "a.zero_point", -1);
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, gemm_a<std::uint8_t>{a, 4, 256}, gb, cs, 3), errc::invalid_argument,
                     "a.zero_point", 256);
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, gemm_a<std::int8_t>{as8, 4, -129}, gb, cs, 3), errc::invalid_argument,
                     "a.zero_point", -129);
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, gemm_a<std::int8_t>{as8, 4, 128}, gb, cs, 3), errc::invalid_argument,
                     "a.zero_point", 128);
    const std::int32_t zb2[2] = {0, 0}, zb_hi[3] = {0, 128, 0}, zb_lo[1] = {-129};
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gemm_b{b, 4, weight_layout::n_by_k, zb2}, cs, 3), errc::size_mismatch,
                     "b.zero_points.size()", 2);
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gemm_b{b, 4, weight_layout::n_by_k, zb_hi}, cs, 3),
                     errc::invalid_argument, "b.zero_points[i]", 128);
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gemm_b{b, 4, weight_layout::n_by_k, zb_lo}, cs, 3),
                     errc::invalid_argument, "b.zero_points[i]", -129);
    // A: leading dimension, size, overflow of (M - 1) * lda + K
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, gemm_a<std::uint8_t>{a, 3, 0}, gb, cs, 3), errc::invalid_argument, "a.ld", 3);
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, gemm_a<std::uint8_t>{span<const std::uint8_t>(a.data(), 7), 4, 0}, gb, cs, 3),
                     errc::size_mismatch, "a.data.size()", 7);
    const std::size_t huge = std::size_t(1) << (sizeof(std::size_t) * 8 - 1);  // 2^63
    CHECK_GEMM_ERROR(lowbit::ref::gemm(gemm_dims{3, 3, 4}, gemm_a<std::uint8_t>{a, huge, 0}, gb, cs, 3),
                     errc::overflow, "a.ld", huge);
    // C
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, cs, 2), errc::invalid_argument, "ldc", 2);
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, span<std::int32_t>(c.data(), 5), 3), errc::size_mismatch, "c.size()",
                     5);
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, span<std::int32_t>(c.data(), 6), 4), errc::size_mismatch, "c.size()",
                     6);  // ldc 4 needs (2 - 1) * 4 + 3 = 7
    const std::vector<std::uint8_t> a3(12, 1);
    CHECK_GEMM_ERROR(lowbit::ref::gemm(gemm_dims{3, 3, 4}, gemm_a<std::uint8_t>{a3, 4, 0}, gb, cs, huge),
                     errc::overflow, "ldc", huge);
    // B: leading dimension (per layout), size, overflow of (rows - 1) * ldb + cols
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gemm_b{b, 3, weight_layout::n_by_k, {}}, cs, 3), errc::invalid_argument,
                     "b.ld", 3);  // n_by_k: >= K = 4
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gemm_b{b, 2, weight_layout::k_by_n, {}}, cs, 3), errc::invalid_argument,
                     "b.ld", 2);  // k_by_n: >= N = 3
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gemm_b{span<const std::int8_t>(b.data(), 11), 4, weight_layout::n_by_k, {}},
                                       cs, 3),
                     errc::size_mismatch, "b.data.size()", 11);  // (3 - 1) * 4 + 4 = 12
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gemm_b{b, 4, weight_layout::k_by_n, {}}, cs, 3), errc::size_mismatch,
                     "b.data.size()", 12);  // k_by_n, ldb 4: (4 - 1) * 4 + 3 = 15
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gemm_b{b, huge, weight_layout::n_by_k, {}}, cs, 3), errc::overflow, "b.ld",
                     huge);
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gemm_b{b, huge, weight_layout::k_by_n, {}}, cs, 3), errc::overflow, "b.ld",
                     huge);
    CHECK(c == std::vector<std::int32_t>(6, sentinel_s32));

    // the message names argument and value too
    CHECK_THROWS_WITH(lowbit::ref::gemm(d, ga, gb, cs, 2), Catch::Contains("'ldc' = 2"));
    CHECK_THROWS_WITH(lowbit::ref::gemm(d, gemm_a<std::uint8_t>{a, 4, 300}, gb, cs, 3),
                      Catch::Contains("'a.zero_point' = 300"));

    // K = 0 reads no B (an empty buffer is fine), and gives zeros; M = 0 or N = 0 write nothing
    REQUIRE(lowbit::ref::gemm(gemm_dims{2, 3, 0}, gemm_a<std::uint8_t>{a, 0, 7}, gemm_b{{}, 0, weight_layout::n_by_k, {}},
                              cs, 3)
                .ok());
    CHECK(c == std::vector<std::int32_t>(6, 0));
    std::fill(c.begin(), c.end(), sentinel_s32);
    // ... but K = 0 still checks A and C
    const gemm_dims d0{2, 3, 0};
    const gemm_b b0{{}, 0, weight_layout::n_by_k, {}};
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d0, ga, b0, span<std::int32_t>(c.data(), 5), 3), errc::size_mismatch,
                     "c.size()", 5);
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d0, ga, b0, cs, 2), errc::invalid_argument, "ldc", 2);
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d0, gemm_a<std::uint8_t>{span<const std::uint8_t>(a.data(), 1), 2, 0}, b0, cs, 3),
                     errc::size_mismatch, "a.data.size()", 1);  // (2 - 1) * 2 + 0 = 2
    CHECK_GEMM_ERROR(lowbit::ref::gemm(d0, gemm_a<std::uint8_t>{a, 0, 256}, b0, cs, 3), errc::invalid_argument,
                     "a.zero_point", 256);
    CHECK(c == std::vector<std::int32_t>(6, sentinel_s32));
    REQUIRE(lowbit::ref::gemm(gemm_dims{0, 3, 4}, ga, gb, span<std::int32_t>(), 3).ok());
    REQUIRE(lowbit::ref::gemm(gemm_dims{2, 0, 4}, ga, gb, span<std::int32_t>(), 0).ok());
}

TEST_CASE("ref::gemm output parameters: every check names the argument and its value, nothing written",
          "[gemm][ref][errors]") {
    const std::vector<std::uint8_t> a(8, 1);
    const std::vector<std::int8_t> b(12, 1);
    const gemm_dims d{2, 3, 4};
    const gemm_a<std::uint8_t> ga{a, 4, 0};
    const gemm_b gb{b, 4, weight_layout::n_by_k, {}};
    const auto s8 = lowbit::scheme<lowbit::s8>{};
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();

    SECTION("fixed-point requantize") {
        std::vector<std::int8_t> q(6, 0x5A);
        const span<std::int8_t> qs(q);
        // M = 2^30 * 2^(shift - 31) = 2^-2
        const lowbit::quantized_multiplier m1[1] = {{std::int32_t(1) << 30, -1}};
        const lowbit::quantized_multiplier m2[2] = {{std::int32_t(1) << 30, -1}, {std::int32_t(1) << 30, -1}};
        const lowbit::quantized_multiplier m_bad[3] = {{std::int32_t(1) << 30, 0}, {5, 0}, {std::int32_t(1) << 30, 0}};
        const lowbit::quantized_multiplier m_neg[1] = {{-(std::int32_t(1) << 30), 0}};
        const lowbit::quantized_multiplier m_shift_hi[1] = {{std::int32_t(1) << 30, 31}};
        const lowbit::quantized_multiplier m_shift_lo[1] = {{std::int32_t(1) << 30, -32}};
        const std::int32_t bias2[2] = {0, 0};
        lowbit::requantize_params p;
        p.multipliers = m1;
        REQUIRE(lowbit::ref::gemm(d, ga, gb, s8, p, qs, 3).ok());  // 4 * 2^-2 = 1
        CHECK(q == std::vector<std::int8_t>(6, 1));
        std::fill(q.begin(), q.end(), std::int8_t(0x5A));
        // the GEMM checks come first
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p, qs, 2), errc::invalid_argument, "ldc", 2);
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p, span<std::int8_t>(q.data(), 5), 3), errc::size_mismatch,
                         "c.size()", 5);
        // scheme
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8.with_range(5, 100), p, qs, 3), errc::invalid_argument,
                         "quant_min", 5);
        // counts
        lowbit::requantize_params p2 = p;
        p2.multipliers = {};
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p2, qs, 3), errc::size_mismatch, "multipliers.size()", 0);
        p2.multipliers = m2;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p2, qs, 3), errc::size_mismatch, "multipliers.size()", 2);
        p2 = p;
        p2.bias = bias2;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p2, qs, 3), errc::size_mismatch, "bias.size()", 2);
        // zero point, clamp
        p2 = p;
        p2.zero_point = 128;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p2, qs, 3), errc::invalid_argument, "zero_point", 128);
        p2.zero_point = -128;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8.with_range(-127, 127), p2, qs, 3), errc::invalid_argument,
                         "zero_point", -128);
        p2 = p;
        p2.clamp_min = 5;
        p2.clamp_max = 4;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p2, qs, 3), errc::invalid_argument, "clamp_min", 5);
        // multipliers
        p2 = p;
        p2.multipliers = m_bad;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p2, qs, 3), errc::invalid_argument,
                         "multipliers[i].multiplier", 5);
        p2.multipliers = m_neg;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p2, qs, 3), errc::invalid_argument,
                         "multipliers[i].multiplier", -(std::int32_t(1) << 30));
        p2.multipliers = m_shift_hi;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p2, qs, 3), errc::invalid_argument, "multipliers[i].shift",
                         31);
        p2.multipliers = m_shift_lo;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p2, qs, 3), errc::invalid_argument, "multipliers[i].shift",
                         -32);
        CHECK(q == std::vector<std::int8_t>(6, 0x5A));
        // u8 output: zero point outside [0, 255]
        std::vector<std::uint8_t> u(6, 0x5A);
        p2 = p;
        p2.zero_point = -1;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, lowbit::scheme<lowbit::u8>{}, p2, span<std::uint8_t>(u), 3),
                         errc::invalid_argument, "zero_point", -1);
        CHECK(u == std::vector<std::uint8_t>(6, 0x5A));
    }

    SECTION("float requantize") {
        std::vector<std::int8_t> q(6, 0x5A);
        const span<std::int8_t> qs(q);
        const float m1[1] = {0.25f}, m2[2] = {0.25f, 0.25f}, m_neg[3] = {0.25f, -1.0f, 0.25f}, m_nan[1] = {nan},
                    m_inf[1] = {inf};
        lowbit::requantize_float_params p;
        p.multipliers = m1;
        REQUIRE(lowbit::ref::gemm(d, ga, gb, s8, p, qs, 3).ok());
        CHECK(q == std::vector<std::int8_t>(6, 1));
        std::fill(q.begin(), q.end(), std::int8_t(0x5A));
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, gemm_a<std::uint8_t>{a, 3, 0}, gb, s8, p, qs, 3), errc::invalid_argument,
                         "a.ld", 3);
        lowbit::requantize_float_params p2 = p;
        p2.multipliers = m2;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p2, qs, 3), errc::size_mismatch, "multipliers.size()", 2);
        const std::int32_t bias4[4] = {};
        p2 = p;
        p2.bias = span<const std::int32_t>(bias4, 4);
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p2, qs, 3), errc::size_mismatch, "bias.size()", 4);
        p2 = p;
        p2.multipliers = m_neg;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p2, qs, 3), errc::invalid_argument, "multipliers[i]", -1);
        p2.multipliers = m_inf;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p2, qs, 3), errc::invalid_argument, "multipliers[i]", inf);
        p2.multipliers = m_nan;
        const lowbit::status st = LOWBIT_TEST_ERROR_OF(lowbit::ref::gemm(d, ga, gb, s8, p2, qs, 3));
        CHECK(st.code == errc::invalid_argument);
        CHECK(std::string(st.argument) == "multipliers[i]");
        CHECK(std::isnan(st.value));
        p2 = p;
        p2.zero_point = 200;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p2, qs, 3), errc::invalid_argument, "zero_point", 200);
        p2 = p;
        p2.clamp_min = 0;
        p2.clamp_max = -1;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8, p2, qs, 3), errc::invalid_argument, "clamp_min", 0);
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, s8.with_range(-128, -1), p, qs, 3), errc::invalid_argument,
                         "quant_max", -1);
        CHECK(q == std::vector<std::int8_t>(6, 0x5A));
    }

    SECTION("dequantize") {
        std::vector<float> y(6, sentinel_f32);
        const span<float> ys(y);
        const float s1[1] = {0.5f}, s2[2] = {0.5f, 0.5f}, s_inf[3] = {0.5f, inf, 0.5f}, s_nan[1] = {nan};
        const float b2[2] = {0, 0}, b_inf[1] = {-inf}, b_nan[3] = {0, 0, nan};
        lowbit::gemm_dequantize_params p;
        p.scales = s1;
        REQUIRE(lowbit::ref::gemm(d, ga, gb, p, ys, 3).ok());
        CHECK(y == std::vector<float>(6, 2.0f));
        std::fill(y.begin(), y.end(), sentinel_f32);
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gemm_b{b, 3, weight_layout::n_by_k, {}}, p, ys, 3),
                         errc::invalid_argument, "b.ld", 3);
        lowbit::gemm_dequantize_params p2;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, p2, ys, 3), errc::size_mismatch, "scales.size()", 0);
        p2.scales = s2;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, p2, ys, 3), errc::size_mismatch, "scales.size()", 2);
        p2 = p;
        p2.bias = b2;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, p2, ys, 3), errc::size_mismatch, "bias.size()", 2);
        p2 = p;
        p2.scales = s_inf;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, p2, ys, 3), errc::invalid_argument, "scales[i]", inf);
        p2.scales = s_nan;
        lowbit::status st = LOWBIT_TEST_ERROR_OF(lowbit::ref::gemm(d, ga, gb, p2, ys, 3));
        CHECK(st.code == errc::invalid_argument);
        CHECK(std::string(st.argument) == "scales[i]");
        CHECK(std::isnan(st.value));
        p2 = p;
        p2.bias = b_inf;
        CHECK_GEMM_ERROR(lowbit::ref::gemm(d, ga, gb, p2, ys, 3), errc::invalid_argument, "bias[i]", -inf);
        p2.bias = b_nan;
        st = LOWBIT_TEST_ERROR_OF(lowbit::ref::gemm(d, ga, gb, p2, ys, 3));
        CHECK(st.code == errc::invalid_argument);
        CHECK(std::string(st.argument) == "bias[i]");
        CHECK(std::isnan(st.value));
        for (float v : y) CHECK(golden::bits(v) == golden::bits(sentinel_f32));
        // finite zero / negative scales are valid: 4 * -0.5 = -2, 4 * 0 = +0
        const float s_odd[3] = {0.5f, -0.5f, 0.0f};
        p2 = lowbit::gemm_dequantize_params{};
        p2.scales = s_odd;
        REQUIRE(lowbit::ref::gemm(d, ga, gb, p2, ys, 3).ok());
        CHECK(y == std::vector<float>{2.0f, -2.0f, 0.0f, 2.0f, -2.0f, 0.0f});
        CHECK(!std::signbit(y[2]));
    }
}
