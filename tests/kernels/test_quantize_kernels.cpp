// SIMD quantize against lowbit::ref::quantize: every ISA the CPU runs, every format,
// profile and rounding mode, every tail size, unaligned source and destination.
#include "lowbit_catch.hpp"

#include <cstdint>
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
