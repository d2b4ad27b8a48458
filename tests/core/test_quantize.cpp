// Reference quantize / dequantize / fake-quantize / requantize: hand-computed cases, the
// non-finite contract, errors (naming the argument, writing nothing), and per-group.
#include "lowbit_catch.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <lowbit/lowbit.hpp>

using lowbit::qparams;
using lowbit::symmetry;

namespace {
constexpr float inf = std::numeric_limits<float>::infinity();
const float qnan = std::numeric_limits<float>::quiet_NaN();
}  // namespace

TEST_CASE("quantize s8: rounding ties to even after x * (1/scale)", "[quantize]") {
    const auto s = lowbit::scheme<lowbit::s8>{};
    const qparams qp{0.5f, 3};
    // x / 0.5: 0.25 -> 0.5 -> 0 ; 0.75 -> 1.5 -> 2 ; -0.25 -> -0.5 -> -0 ; 1.25 -> 2.5 -> 2
    const std::array<float, 6> x = {0.25f, 0.75f, -0.25f, 1.25f, 100.0f, -100.0f};
    std::array<std::int8_t, 6> q{};
    REQUIRE(lowbit::ref::quantize(s, qp, x, q).ok());
    CHECK(q == std::array<std::int8_t, 6>{3, 5, 3, 5, 127, -128});
    std::array<float, 6> y{};
    REQUIRE(lowbit::ref::dequantize(s, qp, q, y).ok());
    CHECK(y == std::array<float, 6>{0.0f, 1.0f, 0.0f, 1.0f, 62.0f, -65.5f});
}

TEST_CASE("tflite profile divides and rounds half away from zero", "[quantize]") {
    const auto s = lowbit::scheme<lowbit::s8>{}.with_profile(lowbit::profile::tflite);
    CHECK(s.rounding() == lowbit::rounding::half_away);
    const std::array<float, 4> x = {0.25f, 0.75f, -0.25f, 1.25f};
    std::array<std::int8_t, 4> q{};
    REQUIRE(lowbit::ref::quantize(s, qparams{0.5f, 3}, x, q).ok());
    CHECK(q == std::array<std::int8_t, 4>{4, 5, 2, 6});
    // multiplying by the reciprocal and dividing differ: with scale 0.1f, 1/0.1f rounds to
    // 10.0f and -8.15f * 10.0f rounds to -81.5 (-> -82, even), while -8.15f / 0.1f =
    // -81.4999962 (-> -81). Found by searching midpoints k + 0.5 with std::nearbyint.
    std::array<float, 1> m = {-8.15f};
    std::array<std::int8_t, 1> t{}, h{};
    REQUIRE(lowbit::ref::quantize(lowbit::scheme<lowbit::s8>{}, qparams{0.1f, 0}, m, t).ok());
    REQUIRE(lowbit::ref::quantize(s, qparams{0.1f, 0}, m, h).ok());
    CHECK(static_cast<int>(t[0]) == -82);
    CHECK(static_cast<int>(h[0]) == -81);
}

TEST_CASE("non-finite inputs have a defined result", "[quantize][nonfinite]") {
    const auto s = lowbit::scheme<lowbit::u8>{};
    const qparams qp{0.1f, 10};
    const std::array<float, 4> x = {inf, -inf, qnan, 3e38f};
    std::array<std::uint8_t, 4> q{};
    REQUIRE(lowbit::ref::quantize(s, qp, x, q).ok());
    CHECK(q == std::array<std::uint8_t, 4>{255, 0, 10, 255});  // +inf -> qmax, -inf -> qmin, NaN -> zp
    std::array<float, 4> y{};
    std::array<std::uint8_t, 4> mask{};
    REQUIRE(lowbit::ref::fake_quantize(s, qp, x, y, mask).ok());
    CHECK(y[0] == (255 - 10) * 0.1f);
    CHECK(y[1] == (0 - 10) * 0.1f);
    CHECK(y[2] == 0.0f);
    CHECK(mask == std::array<std::uint8_t, 4>{0, 0, 0, 0});
    const std::array<float, 4> dy = {1, 1, 1, qnan};
    std::array<float, 4> dx{};
    REQUIRE(lowbit::ref::fake_quantize_backward(s, qp, x, dy, dx).ok());
    CHECK(dx[0] == 0.0f);
    CHECK(dx[2] == 0.0f);
    CHECK(std::isnan(dx[3]));  // dy * 0 keeps a NaN gradient visible, as torch does
}

TEST_CASE("fake-quant mask is closed at both ends", "[fake_quantize]") {
    const auto s = lowbit::scheme<lowbit::s4>{};  // [-8, 7]
    const qparams qp{1.0f, 0};
    // 7.5 rounds to 8 (even) -> outside; 7.49 -> 7 inside; -8.5 -> -8 (even) inside; -8.51 -> -9 outside
    const std::array<float, 4> x = {7.5f, 7.49f, -8.5f, -8.51f};
    std::array<float, 4> y{};
    std::array<std::uint8_t, 4> mask{};
    REQUIRE(lowbit::ref::fake_quantize(s, qp, x, y, mask).ok());
    CHECK(mask == std::array<std::uint8_t, 4>{0, 1, 1, 0});
    CHECK(y == std::array<float, 4>{7.0f, 7.0f, -8.0f, -8.0f});
    const std::array<float, 4> dy = {0.5f, 0.5f, 0.5f, 0.5f};
    std::array<float, 4> dx{}, dx2{};
    REQUIRE(lowbit::ref::fake_quantize_backward(s, qp, x, dy, dx).ok());
    REQUIRE(lowbit::ref::fake_quantize_backward_masked(mask, dy, dx2).ok());
    CHECK(dx == std::array<float, 4>{0.0f, 0.5f, 0.5f, 0.0f});
    CHECK(dx2 == dx);
}

TEST_CASE("s4 quantize writes packed nibbles", "[quantize][int4]") {
    const auto s = lowbit::scheme<lowbit::s4, symmetry::symmetric>{};
    const std::array<float, 3> x = {-1.0f, 0.25f, 5.0f};  // / 0.25 -> -4, 1, 20 -> 7
    std::array<std::uint8_t, 2> q = {0xFF, 0xFF};
    REQUIRE(lowbit::ref::quantize(s, qparams{0.25f, 0}, x, q).ok());
    CHECK(q == std::array<std::uint8_t, 2>{0x1C, 0x07});  // -4 = 0xC; padding nibble cleared
    std::array<float, 3> y{};
    REQUIRE(lowbit::ref::dequantize(s, qparams{0.25f, 0}, q, y).ok());
    CHECK(y == std::array<float, 3>{-1.0f, 0.25f, 1.75f});
}

TEST_CASE("per-group quantize uses the documented layout", "[quantize][layout]") {
    // [2, 4] grouped along axis 1 by 2: params [2, 2]
    const auto s = lowbit::scheme<lowbit::s8, symmetry::symmetric>{}.per_group(1, 2);
    const std::array<float, 4> scales = {1.0f, 0.5f, 0.25f, 2.0f};
    const std::array<float, 8> x = {1, 1, 1, 1, 1, 1, 1, 1};
    std::array<std::int8_t, 8> q{};
    REQUIRE(lowbit::ref::quantize(s, lowbit::shape{2, 4}, lowbit::qparams_view{scales, {}}, x, q).ok());
    CHECK(q == std::array<std::int8_t, 8>{1, 1, 2, 2, 4, 4, 0, 0});  // 1/2 = 0.5 -> 0 (even)
}

TEST_CASE("stochastic rounding in quantize is reproducible and unbiased", "[quantize][stochastic]") {
    const auto s = lowbit::scheme<lowbit::s8>{}.with_rounding(lowbit::rounding::stochastic, 77);
    std::vector<float> x(100000, 0.3f);
    std::vector<std::int8_t> q1(x.size()), q2(x.size());
    REQUIRE(lowbit::ref::quantize(s, qparams{1.0f, 0}, x, q1).ok());
    REQUIRE(lowbit::ref::quantize(s, qparams{1.0f, 0}, x, q2).ok());
    CHECK(q1 == q2);
    long ones = 0;
    for (auto v : q1) {
        REQUIRE((v == 0 || v == 1));
        ones += v;
    }
    CHECK(std::abs(static_cast<double>(ones) - 30000.0) < 5 * 145.0);  // sd = sqrt(n p (1 - p))
}

TEST_CASE("bad qparams: errors name the argument and nothing is written", "[quantize][errors]") {
    const auto s = lowbit::scheme<lowbit::s8>{};
    const std::array<float, 3> x = {1, 2, 3};
    std::array<std::int8_t, 3> q = {9, 9, 9};
    const float denorm = std::numeric_limits<float>::denorm_min();
    CHECK_THROWS_WITH((lowbit::ref::quantize(s, qparams{0.0f, 0}, x, q)), Catch::Contains("'scale' = 0"));
    CHECK_THROWS_WITH((lowbit::ref::quantize(s, qparams{-0.5f, 0}, x, q)), Catch::Contains("'scale' = -0.5"));
    CHECK_THROWS_WITH((lowbit::ref::quantize(s, qparams{qnan, 0}, x, q)), Catch::Contains("'scale' = nan"));
    CHECK_THROWS_WITH((lowbit::ref::quantize(s, qparams{inf, 0}, x, q)), Catch::Contains("'scale' = inf"));
    CHECK_THROWS_WITH((lowbit::ref::quantize(s, qparams{denorm, 0}, x, q)), Catch::Contains("'scale' = 1.4"));
    CHECK_THROWS_WITH((lowbit::ref::quantize(s, qparams{1.0f, 128}, x, q)), Catch::Contains("'zero_point' = 128"));
    CHECK_THROWS_WITH((lowbit::ref::quantize(s.with_reduce_range(), qparams{1.0f, 64}, x, q)),
                      Catch::Contains("'zero_point' = 64"));
    std::array<std::int8_t, 2> short_q = {9, 9};
    CHECK_THROWS_WITH((lowbit::ref::quantize(s, qparams{}, x, short_q)), Catch::Contains("'q.size()' = 2"));
    CHECK(q == std::array<std::int8_t, 3>{9, 9, 9});
    CHECK(short_q == std::array<std::int8_t, 2>{9, 9});
    std::array<float, 2> y = {5, 5};
    CHECK_THROWS_WITH((lowbit::ref::fake_quantize(s, qparams{}, x, y)), Catch::Contains("'y.size()' = 2"));
    CHECK(y == std::array<float, 2>{5, 5});
}

TEST_CASE("per-channel errors: counts, one bad channel, shape", "[quantize][errors]") {
    const auto s = lowbit::scheme<lowbit::s8>{}.per_channel(0);
    const std::array<float, 6> x = {1, 2, 3, 4, 5, 6};
    std::array<std::int8_t, 6> q = {9, 9, 9, 9, 9, 9};
    const std::array<float, 2> scales = {1.0f, -1.0f};
    const std::array<std::int32_t, 2> zps = {0, 0};
    CHECK_THROWS_WITH((lowbit::ref::quantize(s, lowbit::shape{2, 3}, {scales, zps}, x, q)),
                      Catch::Contains("'scale' = -1"));
    const std::array<float, 3> three = {1, 1, 1};
    CHECK_THROWS_WITH((lowbit::ref::quantize(s, lowbit::shape{2, 3}, {three, zps}, x, q)),
                      Catch::Contains("'scales.size()' = 3"));
    const std::array<float, 2> good = {1, 1};
    CHECK_THROWS_WITH((lowbit::ref::quantize(s, lowbit::shape{2, 3}, {good, {}}, x, q)),
                      Catch::Contains("'zero_points.size()' = 0"));  // affine needs zero-points
    CHECK_THROWS_WITH((lowbit::ref::quantize(s, lowbit::shape{3, 2}, {good, zps}, x, q)),
                      Catch::Contains("'scales.size()' = 2"));
    CHECK_THROWS_WITH((lowbit::ref::quantize(s, lowbit::shape{2, 4}, {good, zps}, x, q)), Catch::Contains("'x.size()' = 6"));
    CHECK(q == std::array<std::int8_t, 6>{9, 9, 9, 9, 9, 9});
}

TEST_CASE("requantize: TFLite-style epilogue with bias, per-channel and ReLU", "[requantize]") {
    const auto out = lowbit::scheme<lowbit::s8>{}.per_channel(1);
    // acc [2, 2]; channel 0: M = 0.25, bias 2 ; channel 1: M = 0.5, bias -3 ; zp = -5, ReLU clamp at zp
    const std::array<lowbit::quantized_multiplier, 2> m = {*lowbit::quantize_multiplier(0.25),
                                                           *lowbit::quantize_multiplier(0.5)};
    const std::array<std::int32_t, 2> bias = {2, -3};
    lowbit::requantize_params p;
    p.multipliers = m;
    p.bias = bias;
    p.zero_point = -5;
    p.clamp_min = -5;
    const std::array<std::int32_t, 4> acc = {-3000, 100, 1000, -40};
    std::array<std::int8_t, 4> q{};
    REQUIRE(lowbit::ref::requantize(out, lowbit::shape{2, 2}, p, acc, q).ok());
    // (-3000+2)*0.25 = -749.5 -> -750 - 5 -> clamp -5 ; (100-3)*0.5 = 48.5 -> 49 - 5 = 44
    // (1000+2)*0.25 = 250.5 -> 251 - 5 = 246 -> 127 ; (-40-3)*0.5 = -21.5 -> -21 (SRDHM ties up) - 5 -> -5
    CHECK(q == std::array<std::int8_t, 4>{-5, 44, 127, -5});
    p.clamp_min = std::numeric_limits<std::int32_t>::min();
    p.rounding = lowbit::requant_rounding::single_rounding;
    const std::array<std::int32_t, 4> acc2 = {-600, 7, 602, -9};
    REQUIRE(lowbit::ref::requantize(out, lowbit::shape{2, 2}, p, acc2, q).ok());
    // single rounding, ties up: (-598)*0.25 = -149.5 -> -149 - 5 = -154 -> -128 ; 4 * 0.5 = 2 -> -3
    // 604 * 0.25 = 151 -> 146 -> 127 ; -12 * 0.5 = -6 -> -11
    CHECK(q == std::array<std::int8_t, 4>{-128, -3, 127, -11});
}

TEST_CASE("requantize to u4 packs and validates", "[requantize][errors]") {
    const auto out = lowbit::scheme<lowbit::u4>{};
    const std::array<lowbit::quantized_multiplier, 1> m = {*lowbit::quantize_multiplier(0.5)};
    lowbit::requantize_params p;
    p.multipliers = m;
    p.zero_point = 8;
    const std::array<std::int32_t, 3> acc = {0, 5, -100};  // 8, 3 (2.5 -> 3) + 8 = 11, clamp 0
    std::array<std::uint8_t, 2> q{};
    REQUIRE(lowbit::ref::requantize(out, lowbit::shape{3}, p, acc, q).ok());
    CHECK(q == std::array<std::uint8_t, 2>{0xB8, 0x00});
    p.zero_point = 16;
    CHECK_THROWS_WITH((lowbit::ref::requantize(out, lowbit::shape{3}, p, acc, q)), Catch::Contains("'zero_point' = 16"));
    p.zero_point = 0;
    const std::array<lowbit::quantized_multiplier, 1> bad = {{12345, 0}};
    p.multipliers = bad;
    CHECK_THROWS_WITH((lowbit::ref::requantize(out, lowbit::shape{3}, p, acc, q)),
                      Catch::Contains("'multipliers[i].multiplier' = 12345"));
}

TEST_CASE("per-tensor overloads refuse per-channel and per-group schemes", "[quantize][errors]") {
    const auto pc = lowbit::scheme<lowbit::s8>{}.per_channel(0);
    const std::array<float, 2> x = {1, 2};
    std::array<std::int8_t, 2> q = {9, 9};
    std::array<float, 2> y = {5, 5};
    CHECK_THROWS_WITH((lowbit::ref::quantize(pc, qparams{}, x, q)), Catch::Contains("'granularity'"));
    CHECK_THROWS_WITH((lowbit::ref::dequantize(pc, qparams{}, q, y)), Catch::Contains("'granularity'"));
    CHECK_THROWS_WITH((lowbit::ref::fake_quantize(lowbit::scheme<lowbit::s4>{}.per_group(0, 2), qparams{}, x, y)),
                      Catch::Contains("'granularity'"));
    CHECK_THROWS_WITH((lowbit::ref::fake_quantize_backward(pc, qparams{}, x, x, y)), Catch::Contains("'granularity'"));
    CHECK(q == std::array<std::int8_t, 2>{9, 9});
    CHECK(y == std::array<float, 2>{5, 5});
}

TEST_CASE("in-place fake-quantize computes the mask from the original x", "[fake_quantize]") {
    // scale 0.1: NaN, 1e30 and 100 are all outside s8's range, in place or not
    std::array<float, 3> x = {qnan, 1e30f, 100.0f};
    std::array<std::uint8_t, 3> mask = {9, 9, 9};
    REQUIRE(lowbit::ref::fake_quantize(lowbit::scheme<lowbit::s8>{}, qparams{0.1f, 0}, x, x, mask).ok());
    CHECK(mask == std::array<std::uint8_t, 3>{0, 0, 0});
}
