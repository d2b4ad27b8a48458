// SIMD fake-quantize forward / backward against lowbit::ref (core/fake_quantize.hpp): every
// ISA the CPU runs, every format, both profiles, every rounding mode, every tail size,
// unaligned buffers, in place (y = x, dx = dy), canaries around every output, and the
// same errors with nothing written.
#include "lowbit_catch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <vector>

#include <lowbit/kernels/fake_quantize.hpp>

#include "inputs.hpp"
#include "isa.hpp"

namespace {

constexpr float canary = -1234.5f;
constexpr std::uint8_t canary_byte = 0x5A;

// Gradients with the edges the multiply by the mask must keep: NaN, +-Inf, -0.0, negatives.
std::vector<float> gradients(std::size_t n, std::uint32_t seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> g(0.0f, 2.0f);
    const float specials[] = {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                              std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                              0.0f, -0.0f, -1e-40f, 3e38f};
    std::vector<float> dy(n);
    for (float& v : dy) v = gen() % 6 == 0 ? specials[gen() % 8] : g(gen);
    return dy;
}

template <class T>
void require_same(const std::vector<T>& want, const std::vector<T>& got, const char* what, const char* arch,
                  std::size_t n, std::size_t offset) {
    const long d = lowbit_test::first_difference(want.data(), got.data(), want.size());
    INFO(what << ": arch " << arch << " n " << n << " offset " << offset << " first difference at " << d);
    REQUIRE(d == -1);
}

template <class A, class Scheme>
void check_fake_quantize(const Scheme& s, lowbit::qparams qp) {
    using lowbit::span;
    for (std::size_t n : tail_sizes()) {
        for (std::size_t offset : {std::size_t(0), std::size_t(1), std::size_t(3)}) {  // misalign every buffer
            const auto seed = static_cast<std::uint32_t>(n * 3 + offset);
            const std::vector<float> src = lowbit_test::hard_inputs(n + offset, qp.scale, seed);
            const span<const float> x(src.data() + offset, n);
            const std::size_t size = n + offset + 4;

            // forward, no mask
            std::vector<float> y_want(size, canary), y_got(size, canary);
            REQUIRE(lowbit::ref::fake_quantize(s, qp, x, span<float>(y_want.data() + offset, n)).ok());
            REQUIRE(lowbit::kernels::fake_quantize<A>(s, qp, x, span<float>(y_got.data() + offset, n)).ok());
            require_same(y_want, y_got, "y", A::name(), n, offset);

            // forward with mask
            std::vector<std::uint8_t> m_want(size, canary_byte), m_got(size, canary_byte);
            std::fill(y_got.begin(), y_got.end(), canary);
            REQUIRE(lowbit::ref::fake_quantize(s, qp, x, span<float>(y_want.data() + offset, n),
                                               span<std::uint8_t>(m_want.data() + offset, n))
                        .ok());
            REQUIRE(lowbit::kernels::fake_quantize<A>(s, qp, x, span<float>(y_got.data() + offset, n),
                                                      span<std::uint8_t>(m_got.data() + offset, n))
                        .ok());
            require_same(y_want, y_got, "y (with mask)", A::name(), n, offset);
            require_same(m_want, m_got, "mask", A::name(), n, offset);

            // forward in place, with and without mask
            for (bool with_mask : {false, true}) {
                std::vector<float> inplace(size, canary);
                std::copy(x.begin(), x.end(), inplace.begin() + static_cast<long>(offset));
                std::vector<std::uint8_t> m2(size, canary_byte);
                const span<float> io(inplace.data() + offset, n);
                REQUIRE(lowbit::kernels::fake_quantize<A>(s, qp, io, io,
                                                          with_mask ? span<std::uint8_t>(m2.data() + offset, n)
                                                                    : span<std::uint8_t>())
                            .ok());
                require_same(y_want, inplace, "y in place", A::name(), n, offset);
                if (with_mask) require_same(m_want, m2, "mask (in place)", A::name(), n, offset);
            }

            // backward from x, and from the saved mask; then both in place (dx = dy)
            const std::vector<float> dsrc = gradients(n + offset, seed + 1);
            const span<const float> dy(dsrc.data() + offset, n);
            std::vector<float> dx_want(size, canary), dx_got(size, canary);
            REQUIRE(lowbit::ref::fake_quantize_backward(s, qp, x, dy, span<float>(dx_want.data() + offset, n)).ok());
            REQUIRE(
                lowbit::kernels::fake_quantize_backward<A>(s, qp, x, dy, span<float>(dx_got.data() + offset, n)).ok());
            require_same(dx_want, dx_got, "dx", A::name(), n, offset);

            std::vector<float> dx_inplace(size, canary);
            std::copy(dy.begin(), dy.end(), dx_inplace.begin() + static_cast<long>(offset));
            const span<float> dio(dx_inplace.data() + offset, n);
            REQUIRE(lowbit::kernels::fake_quantize_backward<A>(s, qp, x, dio, dio).ok());
            require_same(dx_want, dx_inplace, "dx in place", A::name(), n, offset);

            const span<const std::uint8_t> mask(m_want.data() + offset, n);
            std::fill(dx_got.begin(), dx_got.end(), canary);
            REQUIRE(lowbit::kernels::fake_quantize_backward_masked<A>(mask, dy, span<float>(dx_got.data() + offset, n))
                        .ok());
            require_same(dx_want, dx_got, "dx from mask", A::name(), n, offset);
        }
    }
}

}  // namespace

TEMPLATE_TEST_CASE("kernels::fake_quantize equals ref", "[kernels][fake_quantize]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    using lowbit::rounding;
    using lowbit::symmetry;
    for (lowbit::profile p : {lowbit::profile::torch, lowbit::profile::tflite}) {
        for (rounding r : {rounding::half_even, rounding::half_away}) {
            INFO("profile " << lowbit::to_string(p) << " rounding " << lowbit::to_string(r));
            check_fake_quantize<TestType>(lowbit::scheme<lowbit::s8>{}.with_profile(p).with_rounding(r), {0.05f, 3});
            check_fake_quantize<TestType>(lowbit::scheme<lowbit::u8>{}.with_profile(p).with_rounding(r), {0.1f, 128});
            check_fake_quantize<TestType>(lowbit::scheme<lowbit::s4>{}.with_profile(p).with_rounding(r), {0.5f, -1});
            check_fake_quantize<TestType>(lowbit::scheme<lowbit::u4>{}.with_profile(p).with_rounding(r),
                                          {1.0f / 3.0f, 8});
            check_fake_quantize<TestType>(
                lowbit::scheme<lowbit::s8, symmetry::symmetric_narrow>{}.with_profile(p).with_rounding(r), {0.02f, 0});
            check_fake_quantize<TestType>(
                lowbit::scheme<lowbit::u8>{}.with_profile(p).with_rounding(r).with_reduce_range(), {0.25f, 7});
            check_fake_quantize<TestType>(
                lowbit::scheme<lowbit::u4>{}.with_profile(p).with_rounding(r).with_range(0, 9), {0.7f, 0});
        }
    }
    check_fake_quantize<TestType>(lowbit::scheme<lowbit::s8>{}, {1e-30f, -128});  // huge products, +-Inf
    check_fake_quantize<TestType>(lowbit::scheme<lowbit::u8>{}, {3e38f, 255});    // y overflows to -Inf
    check_fake_quantize<TestType>(lowbit::scheme<lowbit::s4>{}.with_rounding(rounding::stochastic, 9),
                                  {0.5f, 0});                                      // ref path
    check_fake_quantize<TestType>(lowbit::scheme<lowbit::s32>{}, {0.01f, -5});     // ref path
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
void check_fake_quantize_near_ties(const Scheme& s, lowbit::qparams qp) {
    using lowbit::span;
    const std::vector<float> x = near_tie_inputs(qp.scale, static_cast<std::uint32_t>(qp.zero_point + 2000));
    const std::vector<float> dy = gradients(x.size(), 5);
    const std::size_t n = x.size();
    std::vector<float> y_want(n), y_got(n), y_nomask(n), dx_want(n), dx_got(n);
    std::vector<std::uint8_t> m_want(n), m_got(n);
    REQUIRE(lowbit::ref::fake_quantize(s, qp, span<const float>(x), span<float>(y_want), span<std::uint8_t>(m_want))
                .ok());
    REQUIRE(lowbit::kernels::fake_quantize<A>(s, qp, span<const float>(x), span<float>(y_got),
                                              span<std::uint8_t>(m_got))
                .ok());
    REQUIRE(lowbit::kernels::fake_quantize<A>(s, qp, span<const float>(x), span<float>(y_nomask)).ok());
    REQUIRE(lowbit::ref::fake_quantize_backward(s, qp, span<const float>(x), span<const float>(dy), span<float>(dx_want))
                .ok());
    REQUIRE(lowbit::kernels::fake_quantize_backward<A>(s, qp, span<const float>(x), span<const float>(dy),
                                                       span<float>(dx_got))
                .ok());
    INFO("scale " << qp.scale << " zp " << qp.zero_point);
    require_same(y_want, y_got, "y (with mask)", A::name(), n, 0);
    require_same(y_want, y_nomask, "y", A::name(), n, 0);
    require_same(m_want, m_got, "mask", A::name(), n, 0);
    require_same(dx_want, dx_got, "dx", A::name(), n, 0);
}

}  // namespace

TEMPLATE_TEST_CASE("kernels::fake_quantize equals ref next to rounding boundaries", "[kernels][fake_quantize]",
                   LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    using lowbit::profile;
    using lowbit::rounding;
    for (float scale : near_tie_scales()) {
        for (profile p : {profile::torch, profile::tflite}) {
            for (rounding r : {rounding::half_even, rounding::half_away}) {
                INFO("profile " << lowbit::to_string(p) << " rounding " << lowbit::to_string(r));
                const auto s8 = lowbit::scheme<lowbit::s8>{}.with_profile(p).with_rounding(r);
                for (int zp : {0, 3, -128, 127}) check_fake_quantize_near_ties<TestType>(s8, {scale, zp});
                for (int zp : {0, 131, 255})
                    check_fake_quantize_near_ties<TestType>(
                        lowbit::scheme<lowbit::u8>{}.with_profile(p).with_rounding(r), {scale, zp});
                check_fake_quantize_near_ties<TestType>(
                    lowbit::scheme<lowbit::u4>{}.with_profile(p).with_rounding(r).with_range(0, 9), {scale, 4});
            }
        }
    }
}

TEMPLATE_TEST_CASE("kernels::fake_quantize_backward_masked: any nonzero byte is a 1", "[kernels][fake_quantize]",
                   LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    for (std::size_t n : tail_sizes()) {
        std::mt19937 gen(static_cast<std::uint32_t>(n));
        std::vector<std::uint8_t> mask(n);
        for (auto& b : mask) b = gen() % 2 == 0 ? 0 : static_cast<std::uint8_t>(gen() & 0xFF);
        const std::vector<float> dy = gradients(n, static_cast<std::uint32_t>(n) + 5);
        std::vector<float> want(n + 2, canary), got(n + 2, canary);
        REQUIRE(lowbit::ref::fake_quantize_backward_masked(mask, dy, lowbit::span<float>(want.data() + 1, n)).ok());
        REQUIRE(lowbit::kernels::fake_quantize_backward_masked<TestType>(mask, dy, lowbit::span<float>(got.data() + 1, n))
                    .ok());
        require_same(want, got, "dx from byte mask", TestType::name(), n, 1);
        std::vector<float> io(n + 2, canary);  // in place
        std::copy(dy.begin(), dy.end(), io.begin() + 1);
        const lowbit::span<float> d(io.data() + 1, n);
        REQUIRE(lowbit::kernels::fake_quantize_backward_masked<TestType>(mask, d, d).ok());
        require_same(want, io, "dx from byte mask in place", TestType::name(), n, 1);
    }
}

TEMPLATE_TEST_CASE("kernels::fake_quantize checks like ref", "[kernels][fake_quantize][errors]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    namespace k = lowbit::kernels;
    const auto s = lowbit::scheme<lowbit::s8>{};
    const lowbit::qparams qp{0.1f, 0};
    const std::vector<float> x(40, 1.0f), x39(39, 1.0f);
    std::vector<float> y(40, 7.0f), y39(39, 7.0f);
    std::vector<std::uint8_t> mask(40, 9), mask39(39, 9);
    CHECK_THROWS_WITH((k::fake_quantize<TestType>(s, lowbit::qparams{-1.0f, 0}, x, y)),
                      Catch::Contains("'scale' = -1"));
    CHECK_THROWS_WITH((k::fake_quantize<TestType>(s, lowbit::qparams{1.0f, 128}, x, y)),
                      Catch::Contains("'zero_point' = 128"));
    CHECK_THROWS_WITH((k::fake_quantize<TestType>(s.per_channel(1), qp, x, y)), Catch::Contains("'granularity'"));
    CHECK_THROWS_WITH((k::fake_quantize<TestType>(s.with_range(0, 300), qp, x, y)),
                      Catch::Contains("'quant_max' = 300"));
    CHECK_THROWS_WITH((k::fake_quantize<TestType>(s, qp, x, y39)), Catch::Contains("'y.size()' = 39"));
    CHECK_THROWS_WITH((k::fake_quantize<TestType>(s, qp, x, y, mask39)), Catch::Contains("'mask.size()' = 39"));
    CHECK_THROWS_WITH((k::fake_quantize_backward<TestType>(s, qp, x, x39, y)), Catch::Contains("'dy.size()' = 39"));
    CHECK_THROWS_WITH((k::fake_quantize_backward<TestType>(s, qp, x, x, y39)), Catch::Contains("'dx.size()' = 39"));
    CHECK_THROWS_WITH((k::fake_quantize_backward<TestType>(s, lowbit::qparams{0.0f, 0}, x, x, y)),
                      Catch::Contains("'scale' = 0"));
    CHECK_THROWS_WITH((k::fake_quantize_backward_masked<TestType>(mask, x39, y)), Catch::Contains("'dy.size()' = 39"));
    CHECK_THROWS_WITH((k::fake_quantize_backward_masked<TestType>(mask, x, y39)), Catch::Contains("'dx.size()' = 39"));
    CHECK(y == std::vector<float>(40, 7.0f));
    CHECK(y39 == std::vector<float>(39, 7.0f));
    CHECK(mask == std::vector<std::uint8_t>(40, 9));
}
