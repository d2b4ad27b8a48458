// An add_subdirectory(lowbit) consumer linking lowbit::lowbit: checks a known answer of
// choose_qparams + ref::quantize and returns nonzero on a mismatch.
#include <lowbit/lowbit.hpp>

#include <cstdint>
#include <cstdio>

#if LOWBIT_CONSUMER_EXPECT_XSIMD && !defined(LOWBIT_HAS_XSIMD)
#error "lowbit found xsimd, but lowbit::lowbit does not define LOWBIT_HAS_XSIMD"
#endif
#if defined(LOWBIT_HAS_XSIMD)
#include <xsimd/xsimd.hpp>
#endif

int main() {
    // s8 symmetric over [-2, 1], profile torch: scale = max(|-2|, 1) / (255 / 2) = 2 / 127.5
    // = 0.015686275f, zero_point 0; q = rint(x * 63.75f): -1 -> -64 (-63.75), 0 -> 0,
    // 0.5 -> 32 (31.875), 1 -> 64 (63.75), 0.25 -> 16 (15.9375).
    const auto s = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>{};
    const lowbit::result<lowbit::qparams> qp = lowbit::choose_qparams(s, -2.0f, 1.0f);
    const float x[5] = {-1.0f, 0.0f, 0.5f, 1.0f, 0.25f};
    const std::int8_t expected[5] = {-64, 0, 32, 64, 16};
    std::int8_t q[5] = {};
    int failures = 0;
    if (!qp.ok() || qp.value().scale != 2.0f / 127.5f || qp.value().zero_point != 0) {
        std::fprintf(stderr, "FAILED: choose_qparams gave scale %.9g zero_point %d\n",
                     static_cast<double>(qp.value().scale), qp.value().zero_point);
        ++failures;
    }
    if (!lowbit::ref::quantize(s, qp.value(), lowbit::span<const float>(x), lowbit::span<std::int8_t>(q)).ok()) {
        std::fprintf(stderr, "FAILED: ref::quantize returned an error\n");
        ++failures;
    }
    for (int i = 0; i < 5; ++i) {
        if (q[i] != expected[i]) {
            std::fprintf(stderr, "FAILED: q[%d] = %d, expected %d\n", i, q[i], expected[i]);
            ++failures;
        }
    }
#if defined(LOWBIT_HAS_XSIMD)
    std::printf("lowbit::lowbit with xsimd, default arch %s\n", xsimd::default_arch::name());
#endif
    if (failures != 0) return 1;
    std::printf("lowbit add_subdirectory consumer: all checks passed\n");
    return 0;
}
