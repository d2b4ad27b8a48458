// Rounding against the C library (an independent implementation): lowbit's constexpr
// integer-based rounding must equal std::nearbyint / std::round / std::floor bit for bit.
#include "lowbit_catch.hpp"

#include <cfenv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <lowbit/core/rounding.hpp>

namespace {
std::uint32_t bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
float from_bits(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
// Values that stress rounding: midpoints, their neighbours, powers of two, the 2^23 edge.
std::vector<float> hard_values() {
    std::vector<float> v = {0.0f, -0.0f, 0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 0.49999997f, -0.49999997f,
                            8388607.5f, -8388607.5f, 8388608.0f, 8388609.0f, 16777216.0f, 1e30f, -1e30f,
                            std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::denorm_min(),
                            std::numeric_limits<float>::min(), std::numeric_limits<float>::max(),
                            std::numeric_limits<float>::lowest(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity()};
    for (int k = -300; k <= 300; ++k) {
        const float m = static_cast<float>(k) + 0.5f;
        v.push_back(m);
        v.push_back(std::nextafter(m, 1e9f));
        v.push_back(std::nextafter(m, -1e9f));
    }
    std::mt19937 gen(42);
    for (int i = 0; i < 200000; ++i) v.push_back(from_bits(static_cast<std::uint32_t>(gen())));  // every binade
    return v;
}
}  // namespace

TEST_CASE("round_half_even equals std::nearbyint", "[rounding]") {
    REQUIRE(std::fegetround() == FE_TONEAREST);
    for (float x : hard_values()) {
        if (std::isnan(x)) {
            CHECK(std::isnan(lowbit::round_half_even(x)));
            continue;
        }
        INFO("x = " << x);
        CHECK(bits(lowbit::round_half_even(x)) == bits(std::nearbyint(x)));
    }
}

TEST_CASE("round_half_away equals std::round", "[rounding]") {
    for (float x : hard_values()) {
        if (std::isnan(x)) continue;
        INFO("x = " << x);
        CHECK(bits(lowbit::round_half_away(x)) == bits(std::round(x)));
    }
}

TEST_CASE("floor equals std::floor", "[rounding]") {
    for (float x : hard_values()) {
        if (std::isnan(x)) continue;
        INFO("x = " << x);
        CHECK(lowbit::floor(x) == std::floor(x));
    }
}

TEST_CASE("double rounding helpers equal the C library", "[rounding]") {
    std::mt19937_64 gen(7);
    std::uniform_real_distribution<double> d(-1e6, 1e6);
    for (int i = 0; i < 100000; ++i) {
        double x = d(gen);
        if (i % 3 == 0) x = std::floor(x) + 0.5;  // exact midpoints
        CHECK(lowbit::round_half_even(x) == std::nearbyint(x));
        CHECK(lowbit::round_half_away(x) == std::round(x));
    }
}

TEST_CASE("stochastic rounding: floor or ceil, unbiased, deterministic", "[rounding]") {
    const float x = 2.3f;
    int ups = 0;
    const int n = 200000;
    for (int i = 0; i < n; ++i) {
        const float r = lowbit::round_stochastic(x, 1234, static_cast<std::uint64_t>(i));
        REQUIRE((r == 2.0f || r == 3.0f));
        ups += r == 3.0f;
        // same seed and index, same answer
        REQUIRE(r == lowbit::round_stochastic(x, 1234, static_cast<std::uint64_t>(i)));
    }
    // P(up) = frac(2.3f) = 0.29999995; binomial sd = sqrt(n p (1-p)) ~ 205; allow 5 sd.
    const double expected = n * (static_cast<double>(x) - 2.0);
    CHECK(std::abs(ups - expected) < 5 * 205.0);
    // negative values round toward -inf or +inf the same way
    int downs = 0;
    for (int i = 0; i < n; ++i) downs += lowbit::round_stochastic(-2.25f, 99, static_cast<std::uint64_t>(i)) == -3.0f;
    CHECK(std::abs(downs - n * 0.25) < 5 * 194.0);
    // integral values, NaN and Inf are unchanged
    CHECK(lowbit::round_stochastic(5.0f, 1, 1) == 5.0f);
    CHECK(std::isnan(lowbit::round_stochastic(std::nanf(""), 1, 1)));
    CHECK(lowbit::round_stochastic(std::numeric_limits<float>::infinity(), 1, 1) ==
          std::numeric_limits<float>::infinity());
    // a different seed gives a different stream
    int differ = 0;
    for (int i = 0; i < 1000; ++i)
        differ += lowbit::round_stochastic(0.5f, 1, static_cast<std::uint64_t>(i)) !=
                  lowbit::round_stochastic(0.5f, 2, static_cast<std::uint64_t>(i));
    CHECK(differ > 300);
}

TEST_CASE("rounding is constexpr", "[rounding][constexpr]") {
    static_assert(lowbit::round_half_even(2.5f) == 2.0f, "");
    static_assert(lowbit::round_half_even(3.5f) == 4.0f, "");
    static_assert(lowbit::round_half_even(-2.5f) == -2.0f, "");
    static_assert(lowbit::round_half_away(2.5f) == 3.0f, "");
    static_assert(lowbit::round_half_away(-2.5f) == -3.0f, "");
    static_assert(lowbit::floor(-0.5f) == -1.0f, "");
    static_assert(lowbit::round_stochastic(1.0f, 3, 4) == 1.0f, "");
    SUCCEED();
}
