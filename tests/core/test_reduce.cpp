// Reference reductions (min / max, per-channel min / max, histogram) and the float-multiplier
// requantization: hand-computed cases, each worked out in the comment next to it.
#include "lowbit_catch.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <lowbit/core/reduce.hpp>
#include <lowbit/core/requantize.hpp>

namespace {
constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float qnan = std::numeric_limits<float>::quiet_NaN();
constexpr std::int32_t i32_min = std::numeric_limits<std::int32_t>::min();
constexpr std::int32_t i32_max = std::numeric_limits<std::int32_t>::max();

bool is_pos_zero(float v) { return v == 0.0f && !std::signbit(v); }
}  // namespace

// ---------------------------------------------------------------- min / max

TEST_CASE("min_max: ordinary values, infinities, empty", "[reduce]") {
    const std::array<float, 5> x = {3.0f, -1.0f, 2.0f, 7.5f, -0.5f};
    const lowbit::min_max_range r = *lowbit::ref::min_max(x);
    CHECK(r.min == -1.0f);
    CHECK(r.max == 7.5f);

    const std::array<float, 3> infs = {inf, 1.0f, -inf};
    CHECK(lowbit::ref::min_max(infs)->min == -inf);
    CHECK(lowbit::ref::min_max(infs)->max == inf);

    // no elements: torch's uninitialised observer {+Inf, -Inf}
    const lowbit::result<lowbit::min_max_range> e = lowbit::ref::min_max(lowbit::span<const float>{});
    REQUIRE(e.ok());
    CHECK(e->min == inf);
    CHECK(e->max == -inf);
}

TEST_CASE("min_max: NaN propagates to both ends", "[reduce]") {
    const std::array<float, 3> x = {1.0f, qnan, 2.0f};
    const lowbit::min_max_range r = *lowbit::ref::min_max(x);
    CHECK(std::isnan(r.min));
    CHECK(std::isnan(r.max));
    const std::array<float, 2> neg_nan = {-qnan, 0.0f};  // a NaN of either sign
    CHECK(std::isnan(lowbit::ref::min_max(neg_nan)->min));
}

TEST_CASE("min_max: a zero result is +0.0 whichever zero came first", "[reduce]") {
    const std::array<float, 1> negzero = {-0.0f};
    CHECK(is_pos_zero(lowbit::ref::min_max(negzero)->min));
    CHECK(is_pos_zero(lowbit::ref::min_max(negzero)->max));
    const std::array<float, 3> zeros = {0.0f, -0.0f, 5.0f};  // min is a zero -> +0.0
    CHECK(is_pos_zero(lowbit::ref::min_max(zeros)->min));
    CHECK(lowbit::ref::min_max(zeros)->max == 5.0f);
    const std::array<float, 3> zeros2 = {-3.0f, -0.0f, 0.0f};  // max is a zero -> +0.0
    CHECK(is_pos_zero(lowbit::ref::min_max(zeros2)->max));
}

TEST_CASE("min_max per channel: both axes of a [2, 3] tensor", "[reduce]") {
    // x = [[1, -2, 3], [4, 5, -6]]
    const std::array<float, 6> x = {1, -2, 3, 4, 5, -6};
    std::array<float, 3> mn3{}, mx3{};
    REQUIRE(lowbit::ref::min_max(lowbit::shape{2, 3}, 1, x, mn3, mx3).ok());
    // columns {1, 4}, {-2, 5}, {3, -6}
    CHECK(mn3 == std::array<float, 3>{1, -2, -6});
    CHECK(mx3 == std::array<float, 3>{4, 5, 3});
    std::array<float, 2> mn2{}, mx2{};
    REQUIRE(lowbit::ref::min_max(lowbit::shape{2, 3}, 0, x, mn2, mx2).ok());
    // rows {1, -2, 3}, {4, 5, -6}
    CHECK(mn2 == std::array<float, 2>{-2, -6});
    CHECK(mx2 == std::array<float, 2>{3, 5});
}

TEST_CASE("min_max per channel: middle axis, NaN in one channel, -0.0", "[reduce]") {
    // shape [2, 2, 2], axis 1: channel c holds x[o][c][i] for o, i in {0, 1}
    // channel 0: x[0..1] and x[4..5]; channel 1: x[2..3] and x[6..7]
    const std::array<float, 8> x = {-0.0f, 2.0f, 9.0f, 1.0f, 0.5f, 0.0f, qnan, 3.0f};
    std::array<float, 2> mn{}, mx{};
    REQUIRE(lowbit::ref::min_max(lowbit::shape{2, 2, 2}, 1, x, mn, mx).ok());
    CHECK(is_pos_zero(mn[0]));  // {-0, 2, 0.5, 0}: min is a zero -> +0.0
    CHECK(mx[0] == 2.0f);
    CHECK(std::isnan(mn[1]));  // {9, 1, NaN, 3}
    CHECK(std::isnan(mx[1]));
}

TEST_CASE("min_max per channel: empty channels and errors", "[reduce][errors]") {
    std::array<float, 2> mn = {5, 5}, mx = {5, 5};
    REQUIRE(lowbit::ref::min_max(lowbit::shape{0, 2}, 1, lowbit::span<const float>{}, mn, mx).ok());
    CHECK(mn == std::array<float, 2>{inf, inf});
    CHECK(mx == std::array<float, 2>{-inf, -inf});

    const std::vector<float> x(6, 1.0f);
    std::array<float, 2> a = {5, 5}, b = {5, 5};
    CHECK_THROWS_WITH((lowbit::ref::min_max(lowbit::shape{2, 3}, 2, x, a, b)), Catch::Contains("'axis' = 2"));
    CHECK_THROWS_WITH((lowbit::ref::min_max(lowbit::shape{2, 3}, 1, x, a, b)), Catch::Contains("'mins.size()' = 2"));
    std::array<float, 3> a3 = {5, 5, 5};
    CHECK_THROWS_WITH((lowbit::ref::min_max(lowbit::shape{2, 3}, 1, x, a3, b)), Catch::Contains("'maxs.size()' = 2"));
    CHECK_THROWS_WITH((lowbit::ref::min_max(lowbit::shape{2, 4}, 0, x, a, b)), Catch::Contains("'x.size()' = 6"));
    CHECK(a == std::array<float, 2>{5, 5});
    CHECK(b == std::array<float, 2>{5, 5});
    CHECK(a3 == std::array<float, 3>{5, 5, 5});
}

// ---------------------------------------------------------------- histogram

TEST_CASE("histogram: bins as torch.histc, hi in the last bin, outside and NaN dropped", "[reduce]") {
    // [0, 1], 4 bins: bin = trunc((x - 0) * 4 / 1)
    //   0 -> 0; 0.25 -> 1; 0.5 -> 2; 0.999 -> 3.996 -> 3; 1 -> 4 -> last bin 3;
    //   0.24999999 (float 0.249999985) -> 0.99999994 -> 0; -0.1, 1.1, NaN, -Inf dropped
    const std::array<float, 10> x = {0.0f, 0.25f, 0.5f, 0.999f, 1.0f, 0.24999999f, -0.1f, 1.1f, qnan, -inf};
    std::array<std::uint64_t, 4> counts{};
    REQUIRE(lowbit::ref::histogram(x, 0.0f, 1.0f, counts).ok());
    CHECK(counts == std::array<std::uint64_t, 4>{2, 1, 1, 2});
    // counts accumulate across calls
    REQUIRE(lowbit::ref::histogram(x, 0.0f, 1.0f, counts).ok());
    CHECK(counts == std::array<std::uint64_t, 4>{4, 2, 2, 4});
}

TEST_CASE("histogram: the float32 formula multiplies by bins, then divides by the width", "[reduce]") {
    // [-1, 2], 3 bins, w = 3: x = 0 -> (0 + 1) * 3 / 3 = 1 -> bin 1; x = -0.0 the same;
    // x = 1.99999988 (largest float below 2): x + 1 = 3 - 2^-23 is a tie between 3 - 2^-22 and
    //   3, rounded to even: 3 -> 9 / 3 = 3 = bins -> the last bin, 2, although x < hi
    // x = -1 -> 0; x = 1 -> 2 * 3 / 3 = 2 -> bin 2
    const std::array<float, 5> x = {0.0f, -0.0f, 1.99999988f, -1.0f, 1.0f};
    std::array<std::uint64_t, 3> counts{};
    REQUIRE(lowbit::ref::histogram(x, -1.0f, 2.0f, counts).ok());
    CHECK(counts == std::array<std::uint64_t, 3>{1, 2, 2});
    // 0.1f in [0, 0.3f] with 3 bins: f32(0.1f * 3) = 0.300000012 = w -> exactly 1 -> bin 1
    // (the real value 0.1f / 0.3f * 3 is just below 1; histc's float arithmetic says bin 1).
    const std::array<float, 1> tenth = {0.1f};
    std::array<std::uint64_t, 3> c3{};
    REQUIRE(lowbit::ref::histogram(tenth, 0.0f, 0.3f, c3).ok());
    CHECK(c3 == std::array<std::uint64_t, 3>{0, 1, 0});
}

TEST_CASE("histogram: errors", "[reduce][errors]") {
    const std::array<float, 2> x = {0.5f, 1.5f};
    std::array<std::uint64_t, 2> c = {7, 7};
    CHECK_THROWS_WITH((lowbit::ref::histogram(x, qnan, 1.0f, c)), Catch::Contains("'lo'"));
    CHECK_THROWS_WITH((lowbit::ref::histogram(x, 1.0f, 1.0f, c)), Catch::Contains("'hi' = 1"));
    CHECK_THROWS_WITH((lowbit::ref::histogram(x, 0.0f, inf, c)), Catch::Contains("'hi' = inf"));
    CHECK_THROWS_WITH((lowbit::ref::histogram(x, 0.0f, 1.0f, lowbit::span<std::uint64_t>{})),
                      Catch::Contains("'counts.size()' = 0"));
    // (1e38 - -1e38) * 2 overflows float32
    CHECK_THROWS_WITH((lowbit::ref::histogram(x, -1e38f, 1e38f, c)), Catch::Contains("(hi - lo) * bins"));
    CHECK(c == std::array<std::uint64_t, 2>{7, 7});
}

// ---------------------------------------------------------------- float-multiplier requantize

TEST_CASE("requantize (float multiplier): per tensor, ties to even, bias", "[requantize]") {
    const auto out = lowbit::scheme<lowbit::s8>{};
    const std::array<float, 1> m = {0.25f};
    const std::array<std::int32_t, 1> bias = {2};
    lowbit::requantize_float_params p;
    p.multipliers = m;
    p.bias = bias;
    p.zero_point = -5;
    const std::array<std::int32_t, 7> acc = {-3000, 100, 10, 0, 4, 14, -4};
    std::array<std::int8_t, 7> q{};
    REQUIRE(lowbit::ref::requantize(out, lowbit::shape{7}, p, acc, q).ok());
    // (acc + 2) * 0.25, rounded half to even, - 5:
    // -2998 -> -749.5 -> -750 -> -755 -> -128 ; 102 -> 25.5 -> 26 -> 21 ; 12 -> 3 -> -2
    // 2 -> 0.5 -> 0 -> -5 ; 6 -> 1.5 -> 2 -> -3 ; 16 -> 4 -> -1 ; -2 -> -0.5 -> -0 -> -5
    CHECK(q == std::array<std::int8_t, 7>{-128, 21, -2, -5, -3, -1, -5});
}

TEST_CASE("requantize (float multiplier): accumulators above 2^24 round when converted", "[requantize]") {
    const auto out = lowbit::scheme<lowbit::s8>{};
    const std::array<float, 1> m = {9.5367431640625e-07f};  // 2^-20, exact
    lowbit::requantize_float_params p;
    p.multipliers = m;
    // 2^26 + 3 * 2^19 - 1 = 68681727: exactly 65.4999990 * 2^20, but float(68681727) rounds
    // to the multiple of 8 above, 2^26 + 3 * 2^19 -> 65.5 -> ties to even -> 66.
    // 2^26 + 2^19 = 67633152 -> 64.5 -> 64 (even).
    const std::array<std::int32_t, 2> acc = {68681727, 67633152};
    std::array<std::int8_t, 2> q{};
    REQUIRE(lowbit::ref::requantize(out, lowbit::shape{2}, p, acc, q).ok());
    CHECK(q == std::array<std::int8_t, 2>{66, 64});
}

TEST_CASE("requantize (float multiplier): per channel, custom clamp, u8", "[requantize]") {
    const auto out = lowbit::scheme<lowbit::u8>{}.per_channel(0);
    // acc [2, 3]; channel 0: m = 0.5, bias -1; channel 1: m = 0.1f (0.100000001490116), bias 1000
    const std::array<float, 2> m = {0.5f, 0.1f};
    const std::array<std::int32_t, 2> bias = {-1, 1000};
    lowbit::requantize_float_params p;
    p.multipliers = m;
    p.bias = bias;
    p.zero_point = 128;
    p.clamp_min = 100;
    p.clamp_max = 200;
    const std::array<std::int32_t, 6> acc = {1, 4, 256, -1000, -1700, 5};
    std::array<std::uint8_t, 6> q{};
    REQUIRE(lowbit::ref::requantize(out, lowbit::shape{2, 3}, p, acc, q).ok());
    // channel 0: 0 -> 0 -> 128 ; 3 * 0.5 = 1.5 -> 2 -> 130 ; 255 * 0.5 = 127.5 -> 128 -> 256 -> 200
    // channel 1: 0 -> 128 ; -700 * 0.1f = -70.000001 -> f32 -70 -> 58 -> 100 ;
    //            1005 * 0.1f = 100.5000015 -> f32 100.5 (half an ulp is 3.8e-6) -> 100 (even) -> 228 -> 200
    CHECK(q == std::array<std::uint8_t, 6>{128, 130, 200, 128, 100, 200});
}

TEST_CASE("requantize (float multiplier): saturation of bias and of the product", "[requantize]") {
    const auto out = lowbit::scheme<lowbit::s8>{};
    const std::array<std::int32_t, 1> bias = {10};
    const std::array<float, 1> one = {1.0f};
    lowbit::requantize_float_params p;
    p.multipliers = one;
    p.bias = bias;
    // INT32_MAX + 10 saturates to INT32_MAX -> 2^31 -> 127 ; INT32_MIN + 10 -> -128
    const std::array<std::int32_t, 2> acc = {i32_max, i32_min};
    std::array<std::int8_t, 2> q{};
    REQUIRE(lowbit::ref::requantize(out, lowbit::shape{2}, p, acc, q).ok());
    CHECK(q == std::array<std::int8_t, 2>{127, -128});
    // a product overflowing to +-Inf saturates; 0 * huge = 0 -> the zero-point
    const std::array<float, 1> huge = {3e38f};
    p.multipliers = huge;
    p.bias = {};
    p.zero_point = 3;
    const std::array<std::int32_t, 3> acc2 = {2, -2, 0};
    std::array<std::int8_t, 3> q2{};
    REQUIRE(lowbit::ref::requantize(out, lowbit::shape{3}, p, acc2, q2).ok());
    CHECK(q2 == std::array<std::int8_t, 3>{127, -128, 3});
}

TEST_CASE("requantize: a clamp reaching outside the format clamps to the format's range", "[requantize]") {
    // s8, clamp [200, 300]: lo = hi = 127 for every input (before, lo = 200 was stored and wrapped to -56)
    const auto out = lowbit::scheme<lowbit::s8>{};
    const std::array<std::int32_t, 3> acc = {-1000, 0, 1000};
    std::array<std::int8_t, 3> q{};
    const std::array<float, 1> fm = {0.5f};
    lowbit::requantize_float_params fp;
    fp.multipliers = fm;
    fp.clamp_min = 200;
    fp.clamp_max = 300;
    REQUIRE(lowbit::ref::requantize(out, lowbit::shape{3}, fp, acc, q).ok());
    CHECK(q == std::array<std::int8_t, 3>{127, 127, 127});
    const std::array<lowbit::quantized_multiplier, 1> qm = {*lowbit::quantize_multiplier(0.5)};
    lowbit::requantize_params p;
    p.multipliers = qm;
    p.clamp_min = -300;
    p.clamp_max = -200;  // lo = hi = -128
    REQUIRE(lowbit::ref::requantize(out, lowbit::shape{3}, p, acc, q).ok());
    CHECK(q == std::array<std::int8_t, 3>{-128, -128, -128});
}

TEST_CASE("requantize (float multiplier): s4 packs, errors write nothing", "[requantize][errors]") {
    const auto out = lowbit::scheme<lowbit::s4>{};
    const std::array<float, 1> half = {0.5f};
    lowbit::requantize_float_params p;
    p.multipliers = half;
    // 3 * 0.5 = 1.5 -> 2 ; -1.5 -> -2 (0xE) ; 50 -> 7
    const std::array<std::int32_t, 3> acc = {3, -3, 100};
    std::array<std::uint8_t, 2> q{};
    REQUIRE(lowbit::ref::requantize(out, lowbit::shape{3}, p, acc, q).ok());
    CHECK(q == std::array<std::uint8_t, 2>{0xE2, 0x07});

    q = {9, 9};
    const std::array<float, 1> bad_nan = {qnan}, bad_neg = {-0.5f}, bad_inf = {inf};
    p.multipliers = bad_nan;
    CHECK_THROWS_WITH((lowbit::ref::requantize(out, lowbit::shape{3}, p, acc, q)), Catch::Contains("'multipliers[i]'"));
    p.multipliers = bad_neg;
    CHECK_THROWS_WITH((lowbit::ref::requantize(out, lowbit::shape{3}, p, acc, q)),
                      Catch::Contains("'multipliers[i]' = -0.5"));
    p.multipliers = bad_inf;
    CHECK_THROWS_WITH((lowbit::ref::requantize(out, lowbit::shape{3}, p, acc, q)),
                      Catch::Contains("'multipliers[i]' = inf"));
    p.multipliers = half;
    p.zero_point = 8;
    CHECK_THROWS_WITH((lowbit::ref::requantize(out, lowbit::shape{3}, p, acc, q)), Catch::Contains("'zero_point' = 8"));
    p.zero_point = 0;
    p.clamp_min = 3;
    p.clamp_max = 2;
    CHECK_THROWS_WITH((lowbit::ref::requantize(out, lowbit::shape{3}, p, acc, q)), Catch::Contains("'clamp_min' = 3"));
    p.clamp_min = i32_min;
    p.clamp_max = i32_max;
    const std::array<std::int32_t, 2> two_bias = {1, 2};
    p.bias = two_bias;
    CHECK_THROWS_WITH((lowbit::ref::requantize(out, lowbit::shape{3}, p, acc, q)), Catch::Contains("'bias.size()' = 2"));
    p.bias = {};
    CHECK_THROWS_WITH((lowbit::ref::requantize(out.per_channel(0), lowbit::shape{3}, p, acc, q)),
                      Catch::Contains("'multipliers.size()' = 1"));
    CHECK(q == std::array<std::uint8_t, 2>{9, 9});
}
