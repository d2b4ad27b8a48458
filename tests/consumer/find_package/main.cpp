// A find_package(lowbit) consumer: compiled once per exported target (see CMakeLists.txt),
// with LOWBIT_CONSUMER_<TARGET> saying which one it links. Each build checks a known answer
// and returns nonzero on a mismatch, so "it compiled and linked" is not all that is proved.
#include <lowbit/lowbit.hpp>

#include <cstdint>
#include <cstdio>
#include <string>

#if defined(LOWBIT_CONSUMER_CORE) && defined(LOWBIT_HAS_XSIMD)
#error "lowbit::core must not bring xsimd in: it is the freestanding target"
#endif
#if defined(LOWBIT_CONSUMER_LOWBIT) && LOWBIT_CONSUMER_EXPECT_XSIMD && !defined(LOWBIT_HAS_XSIMD)
#error "lowbit was installed with xsimd, but lowbit::lowbit does not define LOWBIT_HAS_XSIMD"
#endif
#if defined(LOWBIT_CONSUMER_LOWBIT) && defined(LOWBIT_HAS_XSIMD)
#include <xsimd/xsimd.hpp>
#endif
#if defined(LOWBIT_CONSUMER_XTENSOR)
#include <xtensor/xtensor.hpp>
#if __has_include(<lowbit/xtensor.hpp>)
#include <lowbit/xtensor.hpp>
#endif
#endif
#if defined(LOWBIT_CONSUMER_FMT)
#include <fmt/format.h>
#if __has_include(<lowbit/format.hpp>)
#include <lowbit/format.hpp>
#endif
#endif

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "FAILED: %s\n", what);
        ++failures;
    }
}

// u8 affine over [-1, 1], profile torch: scale = 2 / 255 = 0.0078431377f,
// zero_point = 0 - round(-1 / scale) = 0 - round(-127.49999) = 127;
// q = clamp(127 + rint(x * 127.49999f)): -1 -> 0, 0 -> 127, 0.5 -> 191, 1 -> 254, 0.25 -> 159.
constexpr float input[5] = {-1.0f, 0.0f, 0.5f, 1.0f, 0.25f};
constexpr std::uint8_t expected[5] = {0, 127, 191, 254, 159};

template <class Container>
void check_quantize(Container& x, const char* what) {
    const auto s = lowbit::scheme<lowbit::u8>{};
    const lowbit::result<lowbit::qparams> qp = lowbit::choose_qparams(s, -1.0f, 1.0f);
    expect(qp.ok(), "choose_qparams succeeds");
    expect(qp.value().scale == 2.0f / 255.0f, "scale is 2/255");
    expect(qp.value().zero_point == 127, "zero_point is 127");
    std::uint8_t q[5] = {};
    expect(lowbit::ref::quantize(s, qp.value(), lowbit::span<const float>(x), lowbit::span<std::uint8_t>(q)).ok(),
           "ref::quantize succeeds");
    for (int i = 0; i < 5; ++i) {
        if (q[i] != expected[i]) std::fprintf(stderr, "q[%d] = %d, expected %d\n", i, q[i], expected[i]);
        expect(q[i] == expected[i], what);
    }
}

}  // namespace

int main() {
    static_assert(LOWBIT_VERSION_MAJOR == 0, "installed headers are lowbit 0.x");
    float x[5] = {input[0], input[1], input[2], input[3], input[4]};
    check_quantize(x, "ref::quantize of a C array gives the known answer");

#if defined(LOWBIT_CONSUMER_LOWBIT) && defined(LOWBIT_HAS_XSIMD)
    std::printf("lowbit::lowbit with xsimd, default arch %s\n", xsimd::default_arch::name());
#endif
#if defined(LOWBIT_CONSUMER_XTENSOR)
    xt::xtensor<float, 1> t = {input[0], input[1], input[2], input[3], input[4]};
    check_quantize(t, "ref::quantize of an xt::xtensor gives the known answer");
#if __has_include(<lowbit/xtensor.hpp>)
    std::printf("lowbit::xtensor: lowbit/xtensor.hpp included\n");
#endif
#endif
#if defined(LOWBIT_CONSUMER_FMT)
    const auto qp = lowbit::choose_qparams(lowbit::scheme<lowbit::u8>{}, -1.0f, 1.0f).value();
    const std::string text = fmt::format("{} {}", qp.scale, qp.zero_point);
    expect(text == "0.007843138 127", "fmt formats the qparams' fields");
#if __has_include(<lowbit/format.hpp>)
    // lowbit's formatter for qparams: only its zero-point digits are checked, the layout of
    // the text is the business of tests/fmt.
    const std::string lowbit_text = fmt::format("{}", qp);
    std::printf("lowbit::fmt: %s\n", lowbit_text.c_str());
    expect(lowbit_text.find("127") != std::string::npos, "lowbit's qparams formatter prints the zero-point");
#endif
#endif

    if (failures != 0) return 1;
    std::printf("lowbit consumer: all checks passed\n");
    return 0;
}
