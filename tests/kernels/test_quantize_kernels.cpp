// SIMD quantize / dequantize against lowbit::ref::quantize / dequantize: every ISA the CPU
// runs, every format, profile and rounding mode, every tail size, unaligned source and
// destination, canaries around the output.
#include "lowbit_catch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <vector>

#include <lowbit/kernels/quantize.hpp>

#include "inputs.hpp"
#include "isa.hpp"

namespace {

template <class A, class Scheme>
void check_quantize(const Scheme& s, lowbit::qparams qp) {
    using T = typename Scheme::storage_type;
    for (std::size_t n : tail_sizes()) {
        for (std::size_t offset : {std::size_t(0), std::size_t(1), std::size_t(3)}) {  // misalign x and q by whole elements
            const std::vector<float> src = lowbit_test::hard_inputs(n + offset, qp.scale, static_cast<std::uint32_t>(n));
            const lowbit::span<const float> x(src.data() + offset, n);
            const std::size_t m = Scheme::format::storage_size(n);
            std::vector<T> want(m + offset + 4, T(0x5A)), got(m + offset + 4, T(0x5A));  // canaries
            REQUIRE(lowbit::ref::quantize(s, qp, x, lowbit::span<T>(want.data() + offset, m)).ok());
            REQUIRE(lowbit::kernels::quantize<A>(s, qp, x, lowbit::span<T>(got.data() + offset, m)).ok());
            INFO("arch " << A::name() << " n " << n << " offset " << offset << " first difference at "
                         << lowbit_test::first_difference(want.data(), got.data(), want.size()));
            REQUIRE(lowbit_test::first_difference(want.data(), got.data(), want.size()) == -1);
        }
    }
}

}  // namespace

TEMPLATE_TEST_CASE("kernels::quantize equals ref::quantize", "[kernels][quantize]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    using lowbit::symmetry;
    for (lowbit::profile p : {lowbit::profile::torch, lowbit::profile::tflite}) {
        check_quantize<TestType>(lowbit::scheme<lowbit::s8>{}.with_profile(p), {0.05f, 3});
        check_quantize<TestType>(lowbit::scheme<lowbit::u8>{}.with_profile(p), {0.1f, 128});
        check_quantize<TestType>(lowbit::scheme<lowbit::s4>{}.with_profile(p), {0.5f, -1});
        check_quantize<TestType>(lowbit::scheme<lowbit::u4>{}.with_profile(p), {1.0f / 3.0f, 8});
        check_quantize<TestType>(lowbit::scheme<lowbit::s8, symmetry::symmetric_narrow>{}.with_profile(p),
                                 {0.02f, 0});
        check_quantize<TestType>(lowbit::scheme<lowbit::u8>{}.with_profile(p).with_reduce_range(), {0.25f, 7});
    }
    check_quantize<TestType>(lowbit::scheme<lowbit::s8>{}.with_rounding(lowbit::rounding::half_away), {0.5f, 0});
    check_quantize<TestType>(lowbit::scheme<lowbit::s4>{}.with_rounding(lowbit::rounding::stochastic, 9), {0.5f, 0});
    check_quantize<TestType>(lowbit::scheme<lowbit::s8>{}, {1e-30f, -128});  // huge products
}

namespace {

// Inputs aimed at the AVX-512 fast paths (x86/quantize512.hpp): x / scale within a few ulps
// of every half-integer and integer of the 8-bit range, products computed in float and in
// double, the range ends, NaN, +-Inf and huge values; shuffled so every block mixes them.
std::vector<float> near_tie_inputs(float scale, std::uint32_t seed) {
    std::vector<float> x;
    auto nudge = [](float v, int ulps) {
        if (v == 0.0f) return v;
        std::uint32_t b;
        std::memcpy(&b, &v, sizeof b);
        b = static_cast<std::uint32_t>(static_cast<std::int64_t>(b) + ulps);
        std::memcpy(&v, &b, sizeof v);
        return v;
    };
    for (int k = -262; k <= 262; ++k) {
        for (double h : {0.0, 0.5}) {
            const float tf = static_cast<float>(k + h) * scale;
            const auto td = static_cast<float>((k + h) * static_cast<double>(scale));
            for (int d = -3; d <= 3; ++d) {
                x.push_back(nudge(tf, d));
                x.push_back(nudge(td, d));
            }
        }
    }
    const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), 3e38f, -3e38f, -0.0f, 1e-40f, -1e-40f,
                              0.49999997f * scale, -0.49999997f * scale};
    x.insert(x.end(), std::begin(specials), std::end(specials));
    std::mt19937 gen(seed);
    std::shuffle(x.begin(), x.end(), gen);
    return x;
}

// Scales for near_tie_inputs: not representable ones, tiny (products overflow), huge (1 / scale
// subnormal, no fast path), just below and above 2^125, and random ones over 9 decades.
std::vector<float> near_tie_scales() {
    std::vector<float> s = {0.1f, 1.0f / 3.0f, 0.0037f, 0.03f, 0.05f, 0.007843137f, 1.0f, 0.5f, 3.0f, 123.456f,
                            1e-30f, 1.2e-38f, 2e-38f, 1e30f, 4.2e37f, 4.3e37f, 3e38f};
    if (sanitized_build) return s;  // the random ones check exactness: the normal build's job
    std::mt19937 gen(7);
    std::uniform_real_distribution<float> mant(1.0f, 10.0f);
    for (int i = 0; i < 24; ++i) s.push_back(mant(gen) * std::pow(10.0f, static_cast<float>(i % 10) - 6.0f));
    return s;
}

template <class A, class Scheme>
void check_quantize_near_ties(const Scheme& s, lowbit::qparams qp) {
    using T = typename Scheme::storage_type;
    const std::vector<float> x = near_tie_inputs(qp.scale, static_cast<std::uint32_t>(qp.zero_point + 1000));
    const std::size_t m = Scheme::format::storage_size(x.size());
    std::vector<T> want(m), got(m);
    REQUIRE(lowbit::ref::quantize(s, qp, lowbit::span<const float>(x), lowbit::span<T>(want)).ok());
    REQUIRE(lowbit::kernels::quantize<A>(s, qp, lowbit::span<const float>(x), lowbit::span<T>(got)).ok());
    const long d = lowbit_test::first_difference(want.data(), got.data(), want.size());
    INFO("arch " << A::name() << " scale " << qp.scale << " zp " << qp.zero_point << " first difference at " << d
                 << (d >= 0 ? " x " : "") << (d >= 0 ? x[static_cast<std::size_t>(d)] : 0.0f));
    REQUIRE(d == -1);
}

}  // namespace

TEMPLATE_TEST_CASE("kernels::quantize equals ref next to rounding boundaries", "[kernels][quantize]",
                   LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    using lowbit::profile;
    using lowbit::rounding;
    for (float scale : near_tie_scales()) {
        for (profile p : {profile::torch, profile::tflite}) {
            for (rounding r : {rounding::half_even, rounding::half_away}) {
                INFO("profile " << lowbit::to_string(p) << " rounding " << lowbit::to_string(r));
                const auto s8 = lowbit::scheme<lowbit::s8>{}.with_profile(p).with_rounding(r);
                const auto u8 = lowbit::scheme<lowbit::u8>{}.with_profile(p).with_rounding(r);
                for (int zp : {0, 3, -128, 127}) check_quantize_near_ties<TestType>(s8, {scale, zp});
                for (int zp : {0, 131, 255}) check_quantize_near_ties<TestType>(u8, {scale, zp});
                check_quantize_near_ties<TestType>(lowbit::scheme<lowbit::s4>{}.with_profile(p).with_rounding(r),
                                                   {scale, -3});
                check_quantize_near_ties<TestType>(
                    lowbit::scheme<lowbit::s8>{}.with_profile(p).with_rounding(r).with_range(-127, 127), {scale, -127});
            }
        }
    }
}

TEMPLATE_TEST_CASE("kernels::quantize checks like ref", "[kernels][quantize][errors]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    const auto s = lowbit::scheme<lowbit::s8>{};
    std::vector<float> x(40, 1.0f);
    std::vector<std::int8_t> q(40, 9), small(39, 9);
    CHECK_THROWS_WITH((lowbit::kernels::quantize<TestType>(s, lowbit::qparams{0.0f, 0}, x, q)),
                      Catch::Contains("'scale' = 0"));
    CHECK_THROWS_WITH((lowbit::kernels::quantize<TestType>(s, lowbit::qparams{}, x, small)),
                      Catch::Contains("'q.size()' = 39"));
    CHECK_THROWS_WITH((lowbit::kernels::quantize<TestType>(s.per_channel(0), lowbit::qparams{}, x, q)),
                      Catch::Contains("'granularity'"));
    CHECK(q == std::vector<std::int8_t>(40, 9));
}

// ---- dequantize ----

namespace {

// Every stored value (also outside [qmin, qmax], and random padding nibbles), n elements.
template <class T>
std::vector<T> random_storage(std::size_t m, std::uint32_t seed) {
    std::mt19937 gen(seed);
    std::vector<T> q(m);
    for (T& v : q) v = static_cast<T>(gen() & 0xFF);
    return q;
}

template <class A, class Scheme>
void check_dequantize(const Scheme& s, lowbit::qparams qp) {
    using T = typename Scheme::storage_type;
    const float canary = -1234.5f;
    for (std::size_t n : tail_sizes()) {
        for (std::size_t offset : {std::size_t(0), std::size_t(1), std::size_t(3)}) {  // misalign q and x
            const std::size_t m = Scheme::format::storage_size(n);
            const std::vector<T> src = random_storage<T>(m + offset, static_cast<std::uint32_t>(n * 7 + offset));
            const lowbit::span<const T> q(src.data() + offset, m);
            std::vector<float> want(n + offset + 4, canary), got(n + offset + 4, canary);
            REQUIRE(lowbit::ref::dequantize(s, qp, q, lowbit::span<float>(want.data() + offset, n)).ok());
            REQUIRE(lowbit::kernels::dequantize<A>(s, qp, q, lowbit::span<float>(got.data() + offset, n)).ok());
            INFO("arch " << A::name() << " n " << n << " offset " << offset << " first difference at "
                         << lowbit_test::first_difference(want.data(), got.data(), want.size()));
            REQUIRE(lowbit_test::first_difference(want.data(), got.data(), want.size()) == -1);
        }
    }
}

}  // namespace

TEMPLATE_TEST_CASE("kernels::dequantize equals ref::dequantize", "[kernels][dequantize]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    using lowbit::symmetry;
    for (lowbit::profile p : {lowbit::profile::torch, lowbit::profile::tflite}) {
        check_dequantize<TestType>(lowbit::scheme<lowbit::s8>{}.with_profile(p), {0.05f, 3});
        check_dequantize<TestType>(lowbit::scheme<lowbit::u8>{}.with_profile(p), {0.1f, 128});
        check_dequantize<TestType>(lowbit::scheme<lowbit::s4>{}.with_profile(p), {0.5f, -1});
        check_dequantize<TestType>(lowbit::scheme<lowbit::u4>{}.with_profile(p), {1.0f / 3.0f, 8});
        check_dequantize<TestType>(lowbit::scheme<lowbit::s8, symmetry::symmetric_narrow>{}.with_profile(p),
                                   {0.02f, 0});
        check_dequantize<TestType>(lowbit::scheme<lowbit::u8>{}.with_profile(p).with_reduce_range(), {0.25f, 7});
    }
    check_dequantize<TestType>(lowbit::scheme<lowbit::s8>{}, {1.1754944e-38f, -128});  // smallest normal scale
    check_dequantize<TestType>(lowbit::scheme<lowbit::u8>{}, {3e38f, 255});            // products overflow to -Inf
    check_dequantize<TestType>(lowbit::scheme<lowbit::s4>{}, {3e38f, 7});
    check_dequantize<TestType>(lowbit::scheme<lowbit::u4>{}.with_range(0, 9), {0.7f, 9});
    check_dequantize<TestType>(lowbit::scheme<lowbit::s4>{}.with_rounding(lowbit::rounding::stochastic, 3), {0.3f, 2});
    check_dequantize<TestType>(lowbit::scheme<lowbit::s32>{}, {0.001f, 12345});  // ref path
}

TEMPLATE_TEST_CASE("kernels::dequantize checks like ref", "[kernels][dequantize][errors]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    const auto s = lowbit::scheme<lowbit::s8>{};
    const std::vector<std::int8_t> q(40, 9), small(39, 9);
    std::vector<float> x(40, 2.0f);
    CHECK_THROWS_WITH((lowbit::kernels::dequantize<TestType>(s, lowbit::qparams{0.0f, 0}, q, x)),
                      Catch::Contains("'scale' = 0"));
    CHECK_THROWS_WITH((lowbit::kernels::dequantize<TestType>(s, lowbit::qparams{1.0f, 200}, q, x)),
                      Catch::Contains("'zero_point' = 200"));
    CHECK_THROWS_WITH((lowbit::kernels::dequantize<TestType>(s, lowbit::qparams{}, small, x)),
                      Catch::Contains("'q.size()' = 39"));
    CHECK_THROWS_WITH((lowbit::kernels::dequantize<TestType>(s.per_channel(0), lowbit::qparams{}, q, x)),
                      Catch::Contains("'granularity'"));
    CHECK_THROWS_WITH((lowbit::kernels::dequantize<TestType>(s.with_range(1, 100), lowbit::qparams{}, q, x)),
                      Catch::Contains("'quant_min' = 1"));
    const auto s4 = lowbit::scheme<lowbit::s4>{};
    const std::vector<std::uint8_t> packed(20, 0x77);
    std::vector<float> x41(41, 2.0f);
    CHECK_THROWS_WITH((lowbit::kernels::dequantize<TestType>(s4, lowbit::qparams{}, packed, x41)),
                      Catch::Contains("'q.size()' = 20"));
    CHECK(x == std::vector<float>(40, 2.0f));
    CHECK(x41 == std::vector<float>(41, 2.0f));
}
