// SIMD requantize against lowbit::ref::requantize: every ISA the CPU runs, s8 / u8 (and the
// reference path of s4 / u4), both rounding modes and the float multiplier, per tensor and per
// channel along every axis and layout case (uniform runs, periodic tables, column segments),
// every tail size, unaligned accumulators and outputs, canaries, and accumulators chosen to hit
// INT32_MIN / INT32_MAX, rounding ties of both modes, left-shift saturation, bias overflow and
// the clamp edges.
#include "lowbit_catch.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <lowbit/kernels/requantize.hpp>

#include "inputs.hpp"
#include "isa.hpp"

namespace {

constexpr std::int32_t i32_min = std::numeric_limits<std::int32_t>::min();
constexpr std::int32_t i32_max = std::numeric_limits<std::int32_t>::max();

using qm_t = lowbit::quantized_multiplier;

// Multipliers covering shifts -31..30, the extremes of the Q0.31 range, and zero.
std::vector<qm_t> multiplier_set() {
    std::vector<qm_t> m = {{1 << 30, -31}, {i32_max, -31},     {1717986918, -3}, {1 << 30, -1},
                           {1 << 30, 0},   {1610612736, 1},    {1 << 30, 30},    {i32_max, 30},
                           {0, 0},         {0, 5},             {1395864371, -9}, {1073741825, -20},
                           {i32_max, -8},  {1234567890, 7},    {1999999999, -15}, {1431655765, -30},
                           {1 << 30, -2},  {2000000000, -24}, {1 << 30, -5},    {1 << 30, -12}};
    return m;
}

// Accumulators for multiplier m: noise, extremes, exact ties of both rounding modes (odd
// multiples of 2^(e-1) with M = 2^-e and their neighbours), left-shift saturation edges, and
// values landing next to the 8-bit output range.
std::vector<std::int32_t> acc_inputs(std::size_t n, qm_t m, std::uint32_t seed) {
    std::mt19937 gen(seed);
    std::uniform_int_distribution<std::int32_t> any(i32_min, i32_max);
    std::uniform_int_distribution<std::int32_t> small(-70000, 70000);
    std::uniform_int_distribution<int> k(-300, 300);
    const std::int32_t specials[] = {i32_min, i32_min + 1, i32_max, i32_max - 1, 0, -1, 1, 2, -2, 1 << 30, -(1 << 30)};
    const int e = m.shift < 0 ? -m.shift : 0;
    const int left = m.shift > 0 ? m.shift : 0;
    const double real = m.multiplier * std::ldexp(1.0, m.shift - 31);
    std::vector<std::int32_t> acc(n);
    for (std::size_t i = 0; i < n; ++i) {
        std::int64_t v = 0;
        switch (gen() % 9) {
            case 0: v = specials[gen() % (sizeof specials / sizeof specials[0])]; break;
            case 1: v = any(gen); break;
            case 2: v = small(gen); break;
            case 3:
            case 4: {  // ties of either rounding for M = 2^30 * 2^(shift - 31): (2k + 1) * 2^j, j <= e + 1, (+-1)
                const int j = static_cast<int>(gen() % static_cast<unsigned>(e + 2));
                const std::int64_t t = (2 * std::int64_t(k(gen)) + 1) * (std::int64_t(1) << (j < 31 ? j : 30));
                v = t + static_cast<std::int64_t>(gen() % 3) - 1;
                break;
            }
            case 5: {  // the left shift's saturation threshold
                const std::int64_t lim = std::int64_t(1) << (31 - left);
                v = (gen() % 2 ? lim : -lim) + static_cast<std::int64_t>(gen() % 5) - 2;
                break;
            }
            case 6:
            case 7: {  // next to an output in [-300, 300]
                if (real > 0) v = std::llround(k(gen) / real) + static_cast<std::int64_t>(gen() % 5) - 2;
                break;
            }
            default: v = small(gen) * (gen() % 2 ? 1 : 37); break;
        }
        acc[i] = static_cast<std::int32_t>(v < i32_min ? i32_min : v > i32_max ? i32_max : v);
    }
    return acc;
}

// ref and kernel on the same inputs, accumulators and outputs misaligned by `offset`
// elements, canary bytes around the output.
template <class A, class Scheme, class Params>
void compare(const Scheme& s, const lowbit::shape& shp, const Params& p, const std::vector<std::int32_t>& src,
             std::size_t offset, const char* what) {
    using T = typename Scheme::storage_type;
    const std::size_t n = src.size() - offset;
    const lowbit::span<const std::int32_t> acc(src.data() + offset, n);
    const std::size_t m = Scheme::format::storage_size(n);
    std::vector<T> want(m + offset + 4, T(0x5A)), got(m + offset + 4, T(0x5A));
    REQUIRE(lowbit::ref::requantize(s, shp, p, acc, lowbit::span<T>(want.data() + offset, m)).ok());
    REQUIRE(lowbit::kernels::requantize<A>(s, shp, p, acc, lowbit::span<T>(got.data() + offset, m)).ok());
    const long d = lowbit_test::first_difference(want.data(), got.data(), want.size());
    INFO("arch " << A::name() << " " << what << " n " << n << " offset " << offset << " first difference at " << d);
    if (d >= 0 && static_cast<std::size_t>(d) >= offset && static_cast<std::size_t>(d) - offset < n)
        INFO("acc " << acc[static_cast<std::size_t>(d) - offset] << " want " << int(want[static_cast<std::size_t>(d)])
                    << " got " << int(got[static_cast<std::size_t>(d)]));
    REQUIRE(d == -1);
}

struct clamp_case {
    std::int32_t zp, lo, hi;
};

// zero-points and clamps for a format with range [qmin, qmax]: none, ReLU, ReLU6-like,
// custom, a clamp reaching outside the format.
std::vector<clamp_case> clamp_cases(std::int32_t qmin, std::int32_t qmax) {
    const std::int32_t mid = (qmin + qmax) / 2;
    return {{0 > qmin ? 0 : qmin, i32_min, i32_max},
            {mid, mid, i32_max},
            {qmin + 3, qmin + 3, qmin + 9},
            {qmax, qmin + 10, qmax - 20},
            {qmin, qmax + 50, qmax + 60}};
}

template <class A, class Scheme>
void per_tensor_fixed(const Scheme& s) {
    const auto mults = multiplier_set();
    const auto clamps = clamp_cases(s.qmin(), s.qmax());
    std::uint32_t seed = 1;
    for (lowbit::requant_rounding mode :
         {lowbit::requant_rounding::double_rounding, lowbit::requant_rounding::single_rounding}) {
        for (std::size_t mi = 0; mi < mults.size(); ++mi) {
            const qm_t m = mults[mi];
            {  // every accumulator in [-5000, 5000] (all the ties of small multipliers' shifts)
                std::vector<std::int32_t> dense(10001 + mi % 3);
                for (std::size_t i = 0; i < dense.size(); ++i) dense[i] = static_cast<std::int32_t>(i) - 5000;
                lowbit::requantize_params p;
                p.multipliers = lowbit::span<const qm_t>(&m, 1);
                p.rounding = mode;
                p.zero_point = s.qmin() < 0 ? 0 : 128;
                INFO("dense, multiplier " << m.multiplier << " shift " << m.shift << " " << lowbit::to_string(mode));
                compare<A>(s, lowbit::shape{10001}, p, dense, mi % 3, "dense");
            }
            const std::int32_t biases[] = {0, 7, -1000, i32_max, i32_min};
            for (std::size_t n : tail_sizes()) {
                const std::size_t offset = seed % 3 == 0 ? 0 : seed % 3 == 1 ? 1 : 3;
                const clamp_case cc = clamps[seed % clamps.size()];
                const std::int32_t bias = biases[seed % 5];
                lowbit::requantize_params p;
                p.multipliers = lowbit::span<const qm_t>(&m, 1);
                if (seed % 4 != 0) p.bias = lowbit::span<const std::int32_t>(&bias, 1);
                p.zero_point = cc.zp;
                p.clamp_min = cc.lo;
                p.clamp_max = cc.hi;
                p.rounding = mode;
                const auto src = acc_inputs(n + offset, m, seed++);
                INFO("multiplier " << m.multiplier << " shift " << m.shift << " " << lowbit::to_string(mode) << " bias "
                                   << bias << " zp " << cc.zp << " clamp " << cc.lo << ".." << cc.hi);
                compare<A>(s, lowbit::shape{n}, p, src, offset, "per-tensor");
            }
        }
    }
}

// Per-channel along `axis` of `shp`: random multipliers (every shift), random biases.
template <class A, class Scheme>
void per_channel_fixed(const Scheme& s, const lowbit::shape& shp, std::size_t axis, std::uint32_t seed) {
    std::mt19937 gen(seed);
    std::size_t numel = 1;
    for (std::size_t d = 0; d < shp.rank(); ++d) numel *= shp[d];
    const std::size_t channels = shp[axis];
    const auto mults = multiplier_set();
    std::vector<qm_t> m(channels);
    std::vector<std::int32_t> bias(channels);
    std::uniform_int_distribution<std::int32_t> qdist(1 << 30, i32_max);
    for (std::size_t c = 0; c < channels; ++c) {
        m[c] = gen() % 2 ? mults[gen() % mults.size()] : qm_t{qdist(gen), static_cast<int>(gen() % 62) - 31};
        const std::int32_t bs[] = {0, static_cast<std::int32_t>(gen() % 2001) - 1000, i32_max, i32_min,
                                   static_cast<std::int32_t>(gen())};
        bias[c] = bs[gen() % 5];
    }
    const auto clamps = clamp_cases(s.qmin(), s.qmax());
    for (lowbit::requant_rounding mode :
         {lowbit::requant_rounding::double_rounding, lowbit::requant_rounding::single_rounding}) {
        for (std::size_t offset : {std::size_t(0), std::size_t(1), std::size_t(3)}) {
            const clamp_case cc = clamps[(offset + static_cast<std::size_t>(mode)) % clamps.size()];
            lowbit::requantize_params p;
            p.multipliers = m;
            if (offset != 1) p.bias = bias;
            p.zero_point = cc.zp;
            p.clamp_min = cc.lo;
            p.clamp_max = cc.hi;
            p.rounding = mode;
            // accumulators made for the multiplier of their own channel
            std::vector<std::int32_t> src(numel + offset);
            const auto s0 = acc_inputs(numel + offset, m[0], seed + 1);
            const auto s1 = acc_inputs(numel + offset, m[channels - 1], seed + 2);
            const auto s2 = acc_inputs(numel + offset, m[channels / 2], seed + 3);
            for (std::size_t i = 0; i < src.size(); ++i) src[i] = i % 3 == 0 ? s0[i] : i % 3 == 1 ? s1[i] : s2[i];
            INFO("axis " << axis << " channels " << channels << " " << lowbit::to_string(mode));
            compare<A>(s.per_channel(axis), shp, p, src, offset, "per-channel");
        }
    }
}

// Shapes reaching every layout case for every ISA (blocks of 16, 32 or 64 elements):
// innermost channels (periodic table or column segments), short runs, long uniform runs.
template <class A, class Scheme>
void per_channel_shapes(const Scheme& s) {
    std::uint32_t seed = 100;
    per_channel_fixed<A>(s, lowbit::shape{5, 3}, 1, seed++);          // periodic, w = 3
    per_channel_fixed<A>(s, lowbit::shape{37, 17}, 1, seed++);        // periodic, w = 17
    per_channel_fixed<A>(s, lowbit::shape{9, 256}, 1, seed++);        // periodic, w = cap
    per_channel_fixed<A>(s, lowbit::shape{3, 300}, 1, seed++);        // segments, w = 300
    per_channel_fixed<A>(s, lowbit::shape{70, 1000}, 1, seed++);      // segments, > 32 rows
    per_channel_fixed<A>(s, lowbit::shape{1, 513}, 1, seed++);        // one row, segments
    per_channel_fixed<A>(s, lowbit::shape{4, 7, 3}, 1, seed++);       // short runs, periodic
    per_channel_fixed<A>(s, lowbit::shape{4, 100, 3}, 1, seed++);     // short runs, segments
    per_channel_fixed<A>(s, lowbit::shape{2, 3, 33}, 1, seed++);      // runs just over a block
    per_channel_fixed<A>(s, lowbit::shape{3, 5, 131}, 1, seed++);     // uniform runs (>= 2 blocks)
    per_channel_fixed<A>(s, lowbit::shape{6, 300}, 0, seed++);        // axis 0: runs of 300
    per_channel_fixed<A>(s, lowbit::shape{4, 2, 2, 65}, 2, seed++);   // rank 4
    per_channel_fixed<A>(s, lowbit::shape{1, 1}, 1, seed++);          // one element
    per_channel_fixed<A>(s, lowbit::shape{0, 4}, 1, seed++);          // empty
}

std::vector<float> float_multiplier_set() {
    return {0.25f, 0.1f, 1e-6f, 3e-10f, 1.0f, 100.0f, 3e38f, 0.0f, 9.5367431640625e-07f, 0.0078125f, 0.3333333f,
            2.5e-5f, 0.015625f};
}

// Accumulators for a float multiplier: the fixed-point generator's mix for the nearest
// power of two (ties), plus values just above 2^24 where the int -> float conversion rounds.
std::vector<std::int32_t> float_acc_inputs(std::size_t n, float m, std::uint32_t seed) {
    int shift = 0;
    if (m > 0.0f) (void)std::frexp(m, &shift);
    const int s = shift < -31 ? -31 : shift > 30 ? 30 : shift;
    std::vector<std::int32_t> acc = acc_inputs(n, qm_t{1 << 30, s}, seed);
    std::mt19937 gen(seed ^ 0x9E3779B9u);
    for (std::size_t i = 0; i < n; i += 5) acc[i] = (1 << 24) + static_cast<std::int32_t>(gen() % 4096) - 2048;
    return acc;
}

template <class A, class Scheme>
void float_variant(const Scheme& s) {
    const auto mults = float_multiplier_set();
    const auto clamps = clamp_cases(s.qmin(), s.qmax());
    std::uint32_t seed = 7;
    for (float m : mults) {
        for (std::size_t n : tail_sizes()) {
            const std::size_t offset = seed % 3 == 0 ? 0 : seed % 3 == 1 ? 1 : 3;
            const clamp_case cc = clamps[seed % clamps.size()];
            const std::int32_t biases[] = {0, 5, -77777, i32_max, i32_min};
            const std::int32_t bias = biases[seed % 5];
            lowbit::requantize_float_params p;
            p.multipliers = lowbit::span<const float>(&m, 1);
            if (seed % 3 != 0) p.bias = lowbit::span<const std::int32_t>(&bias, 1);
            p.zero_point = cc.zp;
            p.clamp_min = cc.lo;
            p.clamp_max = cc.hi;
            const auto src = float_acc_inputs(n + offset, m, seed++);
            INFO("float multiplier " << m << " bias " << bias << " zp " << cc.zp);
            compare<A>(s, lowbit::shape{n}, p, src, offset, "float per-tensor");
        }
    }
    // per channel, every layout case
    const lowbit::shape shapes[] = {{5, 3}, {9, 256}, {3, 300}, {70, 1000}, {4, 100, 3}, {3, 5, 131}, {6, 300}};
    const std::size_t axes[] = {1, 1, 1, 1, 1, 1, 0};
    std::mt19937 gen(99);
    for (std::size_t si = 0; si < sizeof axes / sizeof axes[0]; ++si) {
        const lowbit::shape& shp = shapes[si];
        std::size_t numel = 1;
        for (std::size_t d = 0; d < shp.rank(); ++d) numel *= shp[d];
        const std::size_t channels = shp[axes[si]];
        std::vector<float> m(channels);
        std::vector<std::int32_t> bias(channels);
        for (std::size_t c = 0; c < channels; ++c) {
            m[c] = mults[gen() % mults.size()];
            bias[c] = gen() % 4 == 0 ? (gen() % 2 ? i32_max : i32_min) : static_cast<std::int32_t>(gen() % 20001) - 10000;
        }
        for (std::size_t offset : {std::size_t(0), std::size_t(3)}) {
            lowbit::requantize_float_params p;
            p.multipliers = m;
            p.bias = bias;
            const clamp_case cc = clamps[(si + offset) % clamps.size()];
            p.zero_point = cc.zp;
            p.clamp_min = cc.lo;
            p.clamp_max = cc.hi;
            const auto src = float_acc_inputs(numel + offset, 1e-3f, static_cast<std::uint32_t>(si * 10 + offset));
            INFO("float per-channel shape #" << si);
            compare<A>(s.per_channel(axes[si]), shp, p, src, offset, "float per-channel");
        }
    }
}

}  // namespace

TEMPLATE_TEST_CASE("kernels::requantize (fixed point) equals ref, per tensor", "[kernels][requantize]",
                   LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    per_tensor_fixed<TestType>(lowbit::scheme<lowbit::s8>{});
    per_tensor_fixed<TestType>(lowbit::scheme<lowbit::u8>{});
}

TEMPLATE_TEST_CASE("kernels::requantize (fixed point) equals ref, per channel", "[kernels][requantize]",
                   LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    per_channel_shapes<TestType>(lowbit::scheme<lowbit::s8>{});
    per_channel_shapes<TestType>(lowbit::scheme<lowbit::u8>{});
    per_channel_shapes<TestType>(lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric_narrow>{});
}

TEMPLATE_TEST_CASE("kernels::requantize: reference-path formats and schemes", "[kernels][requantize]",
                   LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    const qm_t m = {1717986918, -3};
    lowbit::requantize_params p;
    p.multipliers = lowbit::span<const qm_t>(&m, 1);
    p.zero_point = 1;
    for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(7), std::size_t(64), std::size_t(131)}) {
        const auto src = acc_inputs(n + 1, m, static_cast<std::uint32_t>(n));
        compare<TestType>(lowbit::scheme<lowbit::s4>{}, lowbit::shape{n}, p, src, 1, "s4");
        compare<TestType>(lowbit::scheme<lowbit::u4>{}, lowbit::shape{n + 1}, p, src, 0, "u4");
    }
    const std::vector<qm_t> groups(8, m);
    p.multipliers = groups;
    const auto src = acc_inputs(32, m, 5);
    compare<TestType>(lowbit::scheme<lowbit::s8>{}.per_group(1, 4), lowbit::shape{2, 16}, p, src, 0, "per-group");
}

TEMPLATE_TEST_CASE("kernels::requantize (float multiplier) equals ref", "[kernels][requantize]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    float_variant<TestType>(lowbit::scheme<lowbit::s8>{});
    float_variant<TestType>(lowbit::scheme<lowbit::u8>{});
}

TEMPLATE_TEST_CASE("kernels::requantize checks like ref", "[kernels][requantize][errors]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    const auto s = lowbit::scheme<lowbit::s8>{};
    std::vector<std::int32_t> acc(40, 1000);
    std::vector<std::int8_t> q(40, 9), small(39, 9);
    const qm_t good = {1 << 30, -3}, bad_m = {12345, 0}, bad_shift = {1 << 30, 31};
    lowbit::requantize_params p;
    p.multipliers = lowbit::span<const qm_t>(&good, 1);
    CHECK_THROWS_WITH((lowbit::kernels::requantize<TestType>(s, lowbit::shape{40}, p, acc, small)),
                      Catch::Contains("'out.size()' = 39"));
    CHECK_THROWS_WITH((lowbit::kernels::requantize<TestType>(s, lowbit::shape{41}, p, acc, q)),
                      Catch::Contains("'acc.size()' = 40"));
    CHECK_THROWS_WITH((lowbit::kernels::requantize<TestType>(s.per_channel(0), lowbit::shape{40}, p, acc, q)),
                      Catch::Contains("'multipliers.size()' = 1"));
    p.multipliers = lowbit::span<const qm_t>(&bad_m, 1);
    CHECK_THROWS_WITH((lowbit::kernels::requantize<TestType>(s, lowbit::shape{40}, p, acc, q)),
                      Catch::Contains("'multipliers[i].multiplier' = 12345"));
    p.multipliers = lowbit::span<const qm_t>(&bad_shift, 1);
    CHECK_THROWS_WITH((lowbit::kernels::requantize<TestType>(s, lowbit::shape{40}, p, acc, q)),
                      Catch::Contains("'multipliers[i].shift' = 31"));
    p.multipliers = lowbit::span<const qm_t>(&good, 1);
    p.zero_point = 128;
    CHECK_THROWS_WITH((lowbit::kernels::requantize<TestType>(s, lowbit::shape{40}, p, acc, q)),
                      Catch::Contains("'zero_point' = 128"));
    p.zero_point = 0;
    p.clamp_min = 5;
    p.clamp_max = 4;
    CHECK_THROWS_WITH((lowbit::kernels::requantize<TestType>(s, lowbit::shape{40}, p, acc, q)),
                      Catch::Contains("'clamp_min' = 5"));
    p.clamp_min = i32_min;
    const std::vector<std::int32_t> bias2(2, 0);
    p.bias = bias2;
    CHECK_THROWS_WITH((lowbit::kernels::requantize<TestType>(s, lowbit::shape{40}, p, acc, q)),
                      Catch::Contains("'bias.size()' = 2"));
    CHECK_THROWS_WITH((lowbit::kernels::requantize<TestType>(s.per_channel(3), lowbit::shape{40}, p, acc, q)),
                      Catch::Contains("'axis' = 3"));

    lowbit::requantize_float_params fp;
    const float nanm = std::numeric_limits<float>::quiet_NaN(), negm = -1.0f;
    fp.multipliers = lowbit::span<const float>(&nanm, 1);
    CHECK_THROWS_WITH((lowbit::kernels::requantize<TestType>(s, lowbit::shape{40}, fp, acc, q)),
                      Catch::Contains("'multipliers[i]'"));
    fp.multipliers = lowbit::span<const float>(&negm, 1);
    CHECK_THROWS_WITH((lowbit::kernels::requantize<TestType>(s, lowbit::shape{40}, fp, acc, q)),
                      Catch::Contains("'multipliers[i]' = -1"));
    CHECK_THROWS_WITH((lowbit::kernels::requantize<TestType>(s, lowbit::shape{40}, fp, acc, small)),
                      Catch::Contains("'out.size()' = 39"));
    CHECK(q == std::vector<std::int8_t>(40, 9));
    CHECK(small == std::vector<std::int8_t>(39, 9));
}
