// Fixed-point requantization against TFLite / gemmlowp's published definitions, with
// hand-computed values (each worked out in the comment next to it).
#include "lowbit_catch.hpp"

#include <cstdint>
#include <limits>

#include <lowbit/core/fixed_point.hpp>

using lowbit::quantized_multiplier;
using lowbit::requant_rounding;

namespace {
constexpr std::int32_t i32_min = std::numeric_limits<std::int32_t>::min();
constexpr std::int32_t i32_max = std::numeric_limits<std::int32_t>::max();
}  // namespace

TEST_CASE("quantize_multiplier: published examples", "[fixed_point]") {
    // 0.5 = 0.5 * 2^0 -> q * 2^31 = 2^30
    CHECK(*lowbit::quantize_multiplier(0.5) == quantized_multiplier{1 << 30, 0});
    // 0.1 = 0.8 * 2^-3 -> round(0.8 * 2^31) = round(1717986918.4) = 1717986918
    CHECK(*lowbit::quantize_multiplier(0.1) == quantized_multiplier{1717986918, -3});
    // 0.75 * 2^31 = 1610612736
    CHECK(*lowbit::quantize_multiplier(0.75) == quantized_multiplier{1610612736, 0});
    // 1.5 = 0.75 * 2^1
    CHECK(*lowbit::quantize_multiplier(1.5) == quantized_multiplier{1610612736, 1});
    // 0.25 = 0.5 * 2^-1
    CHECK(*lowbit::quantize_multiplier(0.25) == quantized_multiplier{1 << 30, -1});
    CHECK(*lowbit::quantize_multiplier(0.0) == quantized_multiplier{0, 0});
}

TEST_CASE("quantize_multiplier: q rounding up to 2^31 renormalises", "[fixed_point]") {
    // m = 1 - 2^-40: frexp gives q = m, shift 0; q * 2^31 = 2^31 - 2^-9 rounds to 2^31,
    // so TFLite halves it to 2^30 and increments the shift.
    const double m = 1.0 - 1.0 / 1099511627776.0;
    CHECK(*lowbit::quantize_multiplier(m) == quantized_multiplier{1 << 30, 1});
}

TEST_CASE("quantize_multiplier: tiny multipliers flush to zero", "[fixed_point]") {
    // 2^-32 = 0.5 * 2^-31: shift -31 is still representable
    CHECK(*lowbit::quantize_multiplier(1.0 / 4294967296.0) == quantized_multiplier{1 << 30, -31});
    // 2^-33 = 0.5 * 2^-32: shift < -31 -> {0, 0}
    CHECK(*lowbit::quantize_multiplier(1.0 / 8589934592.0) == quantized_multiplier{0, 0});
    CHECK(*lowbit::quantize_multiplier(4.9406564584124654e-324) == quantized_multiplier{0, 0});
}

TEST_CASE("quantize_multiplier: rounding of q * 2^31 is half away from zero", "[fixed_point]") {
    // m = (2^30 + 0.5) / 2^31: q = m (in [0.5, 1)), q * 2^31 = 2^30 + 0.5 -> 2^30 + 1
    const double m = (1073741824.0 + 0.5) / 2147483648.0;
    CHECK(*lowbit::quantize_multiplier(m) == quantized_multiplier{(1 << 30) + 1, 0});
}

TEST_CASE("quantize_multiplier: invalid multipliers", "[fixed_point][errors]") {
    CHECK_THROWS_AS(lowbit::quantize_multiplier(-0.5), lowbit::error);
    CHECK_THROWS_AS(lowbit::quantize_multiplier(std::numeric_limits<double>::quiet_NaN()), lowbit::error);
    CHECK_THROWS_AS(lowbit::quantize_multiplier(std::numeric_limits<double>::infinity()), lowbit::error);
    CHECK_THROWS_WITH((lowbit::quantize_multiplier(2e9)), Catch::Contains("'multiplier'") && Catch::Contains("2e+09"));
}

TEST_CASE("saturating_rounding_doubling_high_mul", "[fixed_point]") {
    using lowbit::saturating_rounding_doubling_high_mul;
    CHECK(saturating_rounding_doubling_high_mul(i32_min, i32_min) == i32_max);  // the one overflow
    CHECK(saturating_rounding_doubling_high_mul(i32_max, i32_max) == 2147483646);  // (2^31-1)^2/2^31 = 2^31-2+2^-31
    CHECK(saturating_rounding_doubling_high_mul(i32_min, i32_max) == -2147483647);
    CHECK(saturating_rounding_doubling_high_mul(0, 12345) == 0);
    // a*b = 2^30 -> 2^30/2^31 = 0.5 -> ties toward +inf: 1
    CHECK(saturating_rounding_doubling_high_mul(1 << 15, 1 << 15) == 1);
    // a*b = -2^30 -> -0.5: (-2^30 + 1 - 2^30) / 2^31 truncates to 0
    CHECK(saturating_rounding_doubling_high_mul(-(1 << 15), 1 << 15) == 0);
    // a*b = -3*2^30 -> -1.5 -> (-3*2^30 + 1 - 2^30)/2^31 = (-2^32+1)/2^31 = -1.99.. -> -1
    CHECK(saturating_rounding_doubling_high_mul(-3 * (1 << 15), 1 << 15) == -1);
    // 1.5 -> 2 (ties toward +inf)
    CHECK(saturating_rounding_doubling_high_mul(3 * (1 << 15), 1 << 15) == 2);
    // 1000 * 0.5 in Q31: 1000 * 2^30 / 2^31 = 500
    CHECK(saturating_rounding_doubling_high_mul(1000, 1 << 30) == 500);
}

TEST_CASE("rounding_divide_by_pot: ties away from zero", "[fixed_point]") {
    using lowbit::rounding_divide_by_pot;
    CHECK(rounding_divide_by_pot(5, 1) == 3);    // 2.5 -> 3
    CHECK(rounding_divide_by_pot(-5, 1) == -3);  // -2.5 -> -3
    CHECK(rounding_divide_by_pot(7, 2) == 2);    // 1.75 -> 2
    CHECK(rounding_divide_by_pot(-7, 2) == -2);
    CHECK(rounding_divide_by_pot(6, 2) == 2);    // 1.5 -> 2
    CHECK(rounding_divide_by_pot(-6, 2) == -2);  // -1.5 -> -2
    CHECK(rounding_divide_by_pot(-5, 2) == -1);  // -1.25 -> -1
    CHECK(rounding_divide_by_pot(123, 0) == 123);
    CHECK(rounding_divide_by_pot(i32_min, 31) == -1);  // -1.0 exactly
    CHECK(rounding_divide_by_pot(i32_max, 31) == 1);   // 0.99999 -> 1
    CHECK(rounding_divide_by_pot(-(1 << 30), 31) == -1);  // -0.5 -> -1 (away)
    CHECK(rounding_divide_by_pot(1 << 30, 31) == 1);      // 0.5 -> 1
}

TEST_CASE("multiply_by_quantized_multiplier: double vs single rounding", "[fixed_point]") {
    const quantized_multiplier quarter = *lowbit::quantize_multiplier(0.25);  // {2^30, -1}
    // -2998 * 0.25 = -749.5.
    // double: SRDHM(-2998, 2^30) = -1499 exactly, then RDBPOT(-1499, 1) = -749.5 -> -750 (away)
    CHECK(lowbit::multiply_by_quantized_multiplier(-2998, quarter, requant_rounding::double_rounding) == -750);
    // single: (-2998 * 2^30 + 2^31) >> 32 = floor(-749.5 + 0.5) = -749
    CHECK(lowbit::multiply_by_quantized_multiplier(-2998, quarter, requant_rounding::single_rounding) == -749);
    // positive ties agree: 2998 * 0.25 = 749.5 -> 750 both
    CHECK(lowbit::multiply_by_quantized_multiplier(2998, quarter, requant_rounding::double_rounding) == 750);
    CHECK(lowbit::multiply_by_quantized_multiplier(2998, quarter, requant_rounding::single_rounding) == 750);
    // 0.1 * 1000: M = 1717986918 * 2^-34 = 0.09999999997; 1000 * M = 99.99999997 -> 100
    const quantized_multiplier tenth = *lowbit::quantize_multiplier(0.1);
    CHECK(lowbit::multiply_by_quantized_multiplier(1000, tenth) == 100);
    CHECK(lowbit::multiply_by_quantized_multiplier(1000, tenth, requant_rounding::single_rounding) == 100);
    CHECK(lowbit::multiply_by_quantized_multiplier(-15, tenth) == -2);  // -1.5 -> -2 (away)
    CHECK(lowbit::multiply_by_quantized_multiplier(-15, tenth, requant_rounding::single_rounding) == -1);  // -1.4999999 -> -1
    // 1.5 with left shift: 100 * 1.5 = 150
    const quantized_multiplier m15 = *lowbit::quantize_multiplier(1.5);
    CHECK(lowbit::multiply_by_quantized_multiplier(100, m15) == 150);
    CHECK(lowbit::multiply_by_quantized_multiplier(100, m15, requant_rounding::single_rounding) == 150);
}

TEST_CASE("multiply_by_quantized_multiplier: saturation where TFLite overflows", "[fixed_point]") {
    const quantized_multiplier big = *lowbit::quantize_multiplier(1024.0);  // {2^30, 11}
    CHECK(big == quantized_multiplier{1 << 30, 11});
    // 2^30 << 11 overflows int32 in TFLite (UB); lowbit saturates the shifted value to
    // 2^31-1, then * 0.5 = 2^30 - 0.5 -> ties toward +inf -> 2^30
    CHECK(lowbit::multiply_by_quantized_multiplier(1 << 30, big) == 1073741824);
    CHECK(lowbit::multiply_by_quantized_multiplier(1 << 30, big, requant_rounding::single_rounding) == i32_max);
    CHECK(lowbit::multiply_by_quantized_multiplier(i32_min, big, requant_rounding::single_rounding) == i32_min);
}

TEST_CASE("fixed point is constexpr", "[fixed_point][constexpr]") {
    static_assert(lowbit::quantize_multiplier(0.1)->multiplier == 1717986918, "");
    static_assert(lowbit::quantize_multiplier(0.1)->shift == -3, "");
    static_assert(lowbit::multiply_by_quantized_multiplier(-2998, {1 << 30, -1}) == -750, "");
    static_assert(lowbit::multiply_by_quantized_multiplier(-2998, {1 << 30, -1}, requant_rounding::single_rounding) ==
                      -749,
                  "");
    SUCCEED();
}
