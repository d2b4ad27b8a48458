// tests/contract/test_contract_elementwise.cpp: the rows of docs/contract.md for
// choose_qparams, quantize, dequantize, fake_quantize (+ backward), requantize (fixed-point
// and float multipliers), quantize_multiplier, int4 pack / unpack and the min/max observers.
// Every call runs through lowbit::ref and through lowbit::kernels at this file's default
// architecture (the TEMPLATE_TEST_CASEs). Expected values are computed by hand from the
// documented rules (README "Numerics"), written next to each check.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <lowbit/kernels/fake_quantize.hpp>
#include <lowbit/kernels/int4.hpp>
#include <lowbit/kernels/per_channel.hpp>
#include <lowbit/kernels/quantize.hpp>
#include <lowbit/kernels/requantize.hpp>
#include <lowbit/lowbit.hpp>
#include <lowbit/observers/histogram.hpp>
#include <lowbit/observers/minmax.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>

#include "contract/contract_util.hpp"

using namespace contract;
using lowbit::errc;
using lowbit::span;

namespace {

// The two implementations every elementwise row is checked on.
struct use_ref {
    template <class... A>
    static lowbit::status quantize(const A&... a) { return lowbit::ref::quantize(a...); }
    template <class... A>
    static lowbit::status dequantize(const A&... a) { return lowbit::ref::dequantize(a...); }
    template <class... A>
    static lowbit::status fake_quantize(const A&... a) { return lowbit::ref::fake_quantize(a...); }
    template <class... A>
    static lowbit::status fake_quantize_backward(const A&... a) { return lowbit::ref::fake_quantize_backward(a...); }
    template <class... A>
    static lowbit::status backward_masked(const A&... a) { return lowbit::ref::fake_quantize_backward_masked(a...); }
    template <class... A>
    static lowbit::status requantize(const A&... a) { return lowbit::ref::requantize(a...); }
    template <class... A>
    static lowbit::status pack_s4(const A&... a) { return lowbit::ref::pack_s4(a...); }
    template <class... A>
    static lowbit::status pack_u4(const A&... a) { return lowbit::ref::pack_u4(a...); }
    template <class... A>
    static lowbit::status unpack_s4(const A&... a) { return lowbit::ref::unpack_s4(a...); }
};
struct use_kernels {
    template <class... A>
    static lowbit::status quantize(const A&... a) { return lowbit::kernels::quantize(a...); }
    template <class... A>
    static lowbit::status dequantize(const A&... a) { return lowbit::kernels::dequantize(a...); }
    template <class... A>
    static lowbit::status fake_quantize(const A&... a) { return lowbit::kernels::fake_quantize(a...); }
    template <class... A>
    static lowbit::status fake_quantize_backward(const A&... a) { return lowbit::kernels::fake_quantize_backward(a...); }
    template <class... A>
    static lowbit::status backward_masked(const A&... a) { return lowbit::kernels::fake_quantize_backward_masked(a...); }
    template <class... A>
    static lowbit::status requantize(const A&... a) { return lowbit::kernels::requantize(a...); }
    template <class... A>
    static lowbit::status pack_s4(const A&... a) { return lowbit::kernels::pack_s4(a...); }
    template <class... A>
    static lowbit::status pack_u4(const A&... a) { return lowbit::kernels::pack_u4(a...); }
    template <class... A>
    static lowbit::status unpack_s4(const A&... a) { return lowbit::kernels::unpack_s4(a...); }
};

constexpr auto u8a = lowbit::scheme<lowbit::u8>{};  // affine, 0..255
constexpr auto s8s = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>{};
constexpr auto s4s = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>{};
constexpr auto u4a = lowbit::scheme<lowbit::u4>{};
constexpr float flt_max = std::numeric_limits<float>::max();
constexpr float flt_min = std::numeric_limits<float>::min();    // 2^-126, smallest normal
constexpr float denorm_min = std::numeric_limits<float>::denorm_min();  // 2^-149
const float two_m127 = flt_min / 2;                               // 2^-127, denormal


}  // namespace

// ----------------------------------------------------------------------------------------
// choose_qparams
// ----------------------------------------------------------------------------------------

TEST_CASE("contract: choose_qparams: NaN min or max is an error naming it", "[contract][choose_qparams]") {
    require_error([&] { return lowbit::choose_qparams(u8a, nan_f, 1.0f); }, errc::invalid_argument, "min");
    require_error([&] { return lowbit::choose_qparams(u8a, -1.0f, nan_f); }, errc::invalid_argument, "max");
    const std::vector<float> mins{0.0f, nan_f}, maxs{1.0f, 1.0f};
    std::vector<float> scales(2, -7.0f);
    std::vector<std::int32_t> zps(2, -7);
    require_error([&] { return lowbit::choose_qparams(u8a, cs(mins), cs(maxs), ms(scales), ms(zps)); },
                  errc::invalid_argument, "mins[i]");
    REQUIRE(scales == std::vector<float>(2, -7.0f));  // nothing written, entry 0 included
    REQUIRE(zps == std::vector<std::int32_t>(2, -7));
}

TEST_CASE("contract: choose_qparams: +-Inf alone is an error, the empty range gives 1 and 0", "[contract][choose_qparams]") {
    require_error([&] { return lowbit::choose_qparams(u8a, -inf_f, 1.0f); }, errc::invalid_argument, "min");
    require_error([&] { return lowbit::choose_qparams(u8a, 0.0f, inf_f); }, errc::invalid_argument, "max");
    require_error([&] { return lowbit::choose_qparams(u8a, inf_f, inf_f); }, errc::invalid_argument, "min");
    // min = +Inf, max = -Inf: an observer that saw nothing -> {1.0, 0} (torch)
    const lowbit::qparams qp = *lowbit::choose_qparams(u8a, inf_f, -inf_f);
    REQUIRE(qp.scale == 1.0f);
    REQUIRE(qp.zero_point == 0);
}

TEST_CASE("contract: choose_qparams: denormal min and max give the eps scale", "[contract][choose_qparams]") {
    // affine u8: scale = max(f32((2^-149 - 0) / 255), eps) = eps; zp = 0 - rint(0 / eps) = 0
    lowbit::qparams qp = *lowbit::choose_qparams(u8a, denorm_min, denorm_min);
    REQUIRE(bits(qp.scale) == bits(eps_f));
    REQUIRE(qp.zero_point == 0);
    // min = -2^-149: min_neg / eps = -2^-126 -> rint -0 -> zp 0
    qp = *lowbit::choose_qparams(u8a, -denorm_min, 0.0f);
    REQUIRE(bits(qp.scale) == bits(eps_f));
    REQUIRE(qp.zero_point == 0);
}

TEST_CASE("contract: choose_qparams: zero range gives scale eps and zero point qmin (affine) or the symmetric one",
          "[contract][choose_qparams]") {
    lowbit::qparams qp = *lowbit::choose_qparams(lowbit::scheme<lowbit::s8>{}, 0.0f, 0.0f);
    REQUIRE(bits(qp.scale) == bits(eps_f));
    REQUIRE(qp.zero_point == -128);
    qp = *lowbit::choose_qparams(s8s, 0.0f, 0.0f);
    REQUIRE(bits(qp.scale) == bits(eps_f));
    REQUIRE(qp.zero_point == 0);
    // min == max == 3: the range is [0, 3] (0 always included): scale f32(3 / 255), zp 0
    qp = *lowbit::choose_qparams(u8a, 3.0f, 3.0f);
    REQUIRE(qp.scale == 3.0f / 255.0f);
    REQUIRE(qp.zero_point == 0);
    // the fused (FBGEMM) profile: all-zero on -128..127 -> (0.1, 127) (README)
    qp = *lowbit::choose_qparams(lowbit::scheme<lowbit::s8>{}.with_profile(lowbit::profile::torch_fused), 0.0f, 0.0f);
    REQUIRE(qp.scale == 0.1f);
    REQUIRE(qp.zero_point == 127);
}

TEST_CASE("contract: choose_qparams: a range whose width overflows float gives scale +Inf, refused by every kernel",
          "[contract][choose_qparams]") {
    // affine: f32(FLT_MAX - -FLT_MAX) = +Inf -> scale +Inf (torch gives the same, golden data);
    // zp = qmin - rint(-FLT_MAX / Inf) = qmin - (-0) = qmin
    const lowbit::qparams qp = *lowbit::choose_qparams(u8a, -flt_max, flt_max);
    REQUIRE(qp.scale == inf_f);
    REQUIRE(qp.zero_point == 0);
    const std::vector<float> x{1.0f};
    std::vector<std::uint8_t> q(1, 0xEE);
    require_error([&] { return lowbit::ref::quantize(u8a, qp, cs(x), ms(q)); }, errc::invalid_argument, "scale");
    require_error([&] { return lowbit::check_qparams(u8a, qp); }, errc::invalid_argument, "scale");
    REQUIRE(q[0] == 0xEE);
    // symmetric: amax / 127.5 is finite
    const lowbit::qparams qs = *lowbit::choose_qparams(s8s, -flt_max, flt_max);
    REQUIRE(qs.scale == flt_max / 127.5f);
    REQUIRE(qs.zero_point == 0);
    // a huge but representable width is fine: [0, FLT_MAX] -> scale f32(FLT_MAX / 255), zp 0
    const lowbit::qparams q2 = *lowbit::choose_qparams(u8a, 0.0f, flt_max);
    REQUIRE(q2.scale == flt_max / 255.0f);
    REQUIRE(q2.zero_point == 0);
}

TEST_CASE("contract: choose_qparams: tflite ranges too small for a usable scale get scale eps, the zero point in range",
          "[contract][choose_qparams]") {
    const auto u8t = u8a.with_profile(lowbit::profile::tflite);
    const auto s8t = lowbit::scheme<lowbit::s8>{}.with_profile(lowbit::profile::tflite);
    // [-2^-149, 0]: (max - min) / 255 underflows to 0; with eps: zp from min = 0 + 2^-149 / eps
    // (error ~0) beats zp from max = 255 -> rounds to 0. (Before: 0 / 0 = NaN -> INT32_MIN.)
    lowbit::qparams qp = *lowbit::choose_qparams(u8t, -denorm_min, 0.0f);
    REQUIRE(bits(qp.scale) == bits(eps_f));
    REQUIRE(qp.zero_point == 0);
    // s8: zp from min = -128 (error 128) loses to zp from max = 127 (error 127)
    qp = *lowbit::choose_qparams(s8t, -denorm_min, 0.0f);
    REQUIRE(bits(qp.scale) == bits(eps_f));
    REQUIRE(qp.zero_point == 127);
    // [0, 1e-40]: a denormal scale whose reciprocal is infinite -> eps, zp 0
    qp = *lowbit::choose_qparams(u8t, 0.0f, 1e-40f);
    REQUIRE(bits(qp.scale) == bits(eps_f));
    REQUIRE(qp.zero_point == 0);
    // [0, 1e-36]: f32(1e-36 / 255) is denormal but usable (reciprocal finite): kept
    qp = *lowbit::choose_qparams(u8t, 0.0f, 1e-36f);
    REQUIRE(qp.scale == 1e-36f / 255.0f);
    REQUIRE(qp.zero_point == 0);
    REQUIRE(lowbit::check_qparams(u8t, qp).ok());
}

TEST_CASE("contract: choose_qparams: empty spans are valid and write nothing", "[contract][choose_qparams]") {
    REQUIRE(lowbit::choose_qparams(u8a, span<const float>{}, span<const float>{}, span<float>{},
                                   span<std::int32_t>{}).ok());
}

// ----------------------------------------------------------------------------------------
// check_qparams: the scale and zero-point rows shared by quantize / dequantize /
// fake_quantize (+ backward), per tensor and per channel
// ----------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("contract: quantize family: scale zero, negative, NaN, Inf or denormal up to 2^-128 is an error naming scale",
                   "[contract][quantize]", use_ref, use_kernels) {
    const std::vector<float> x{1.0f, 2.0f, 3.0f};
    std::vector<std::uint8_t> q(3, 0xEE);
    std::vector<float> y(3, -7.0f), dx(3, -7.0f);
    for (const float bad : {0.0f, -0.0f, -0.5f, nan_f, inf_f, -inf_f, flt_min / 4, denorm_min, -flt_min}) {
        INFO("scale " << bad);
        const lowbit::qparams qp{bad, 128};
        require_error([&] { return TestType::quantize(u8a, qp, cs(x), ms(q)); }, errc::invalid_argument, "scale");
        require_error([&] { return TestType::dequantize(u8a, qp, cs(q), ms(y)); }, errc::invalid_argument, "scale");
        require_error([&] { return TestType::fake_quantize(u8a, qp, cs(x), ms(y), span<std::uint8_t>{}); },
                      errc::invalid_argument, "scale");
        require_error([&] { return TestType::fake_quantize_backward(u8a, qp, cs(x), cs(x), ms(dx)); },
                      errc::invalid_argument, "scale");
        // per channel: the bad scale in entry 1 of 3
        const std::vector<float> scales{1.0f, bad, 1.0f};
        const std::vector<std::int32_t> zps{0, 0, 0};
        const lowbit::qparams_view v{cs(scales), cs(zps)};
        require_error([&] { return TestType::quantize(u8a.per_channel(0), lowbit::shape{3}, v, cs(x), ms(q)); },
                      errc::invalid_argument, "scale");
    }
    REQUIRE(q == std::vector<std::uint8_t>(3, 0xEE));  // nothing written
    REQUIRE(y == std::vector<float>(3, -7.0f));
    REQUIRE(dx == std::vector<float>(3, -7.0f));
}

TEMPLATE_TEST_CASE("contract: quantize family: the smallest normal scale and FLT_MAX are accepted, exact",
                   "[contract][quantize]", use_ref, use_kernels) {
    // scale 2^-126, zp 10: q = 10 + rint(x * 2^126); x = 3 * 2^-127 (denormal) -> 1.5 -> 2 -> 12;
    // x = 2^-149 -> 2^-23 -> 0 -> 10; x = -3 * 2^-127 -> -1.5 -> -2 -> 8; x = 1 -> 2^126 -> 255
    const std::vector<float> x{3 * two_m127, denorm_min, -3 * two_m127, 1.0f};
    std::vector<std::uint8_t> q(4);
    REQUIRE(TestType::quantize(u8a, lowbit::qparams{flt_min, 10}, cs(x), ms(q)).ok());
    REQUIRE(q == std::vector<std::uint8_t>{12, 10, 8, 255});
    // scale FLT_MAX: inv = f32(1 / FLT_MAX) = 2^-128 (denormal); FLT_MAX * 2^-128 = 1 - 2^-24
    // -> rint 1; 1e38 * 2^-128 = 0.29 -> 0
    const std::vector<float> x2{flt_max, 1e38f, -flt_max, 0.0f};
    REQUIRE(TestType::quantize(u8a, lowbit::qparams{flt_max, 128}, cs(x2), ms(q)).ok());
    REQUIRE(q == std::vector<std::uint8_t>{129, 128, 127, 128});
    // dequantize with scale FLT_MAX: (q - zp) * FLT_MAX overflows to +-Inf for |q - zp| >= 2
    const std::vector<std::uint8_t> q2{129, 130, 126, 128};
    std::vector<float> y(4);
    REQUIRE(TestType::dequantize(u8a, lowbit::qparams{flt_max, 128}, cs(q2), ms(y)).ok());
    REQUIRE(y[0] == flt_max);
    REQUIRE(y[1] == inf_f);
    REQUIRE(y[2] == -inf_f);
    REQUIRE(bits(y[3]) == 0u);
}

TEMPLATE_TEST_CASE("contract: quantize family: a denormal scale above 2^-128 is accepted, exact",
                   "[contract][quantize]", use_ref, use_kernels) {
    // scale 2^-127: inv = 2^127 (finite); x = 3 * 2^-127 -> 3; x = 2^-149 -> 2^-22 -> 0;
    // x = 1e-37 -> 1e-37 * 2^127 = 17.01... -> 17; dequantize: q * 2^-127, exact denormals
    const std::vector<float> x{3 * two_m127, denorm_min, 1e-37f, -2 * two_m127};
    std::vector<std::int8_t> q(4);
    REQUIRE(TestType::quantize(s8s, lowbit::qparams{two_m127, 0}, cs(x), ms(q)).ok());
    REQUIRE(q == std::vector<std::int8_t>{3, 0, 17, -2});
    std::vector<float> y(4);
    REQUIRE(TestType::dequantize(s8s, lowbit::qparams{two_m127, 0}, cs(q), ms(y)).ok());
    REQUIRE(bits(y[0]) == bits(3 * two_m127));
    REQUIRE(bits(y[1]) == 0u);
    REQUIRE(bits(y[2]) == bits(17 * two_m127));
    REQUIRE(bits(y[3]) == bits(-2 * two_m127));
}

TEMPLATE_TEST_CASE("contract: quantize family: zero point out of range is an error naming zero_point",
                   "[contract][quantize]", use_ref, use_kernels) {
    const std::vector<float> x{1.0f, 2.0f};
    std::vector<std::uint8_t> q(2, 0xEE);
    std::vector<float> y(2, -7.0f);
    for (const std::int32_t zp : {-1, 256, std::numeric_limits<std::int32_t>::min()}) {
        require_error([&] { return TestType::quantize(u8a, lowbit::qparams{1.0f, zp}, cs(x), ms(q)); },
                      errc::invalid_argument, "zero_point");
        require_error([&] { return TestType::dequantize(u8a, lowbit::qparams{1.0f, zp}, cs(q), ms(y)); },
                      errc::invalid_argument, "zero_point");
        require_error([&] { return TestType::fake_quantize(u8a, lowbit::qparams{1.0f, zp}, cs(x), ms(y),
                                                           span<std::uint8_t>{}); },
                      errc::invalid_argument, "zero_point");
    }
    // s4: [-8, 7]; a reduce_range s8 scheme: [-64, 63]
    std::vector<std::uint8_t> p(1, 0xEE);
    require_error([&] { return TestType::quantize(s4s, lowbit::qparams{1.0f, 8}, cs(x), ms(p)); },
                  errc::invalid_argument, "zero_point");
    std::vector<std::int8_t> q8(2, 5);
    require_error([&] { return TestType::quantize(lowbit::scheme<lowbit::s8>{}.with_reduce_range(), lowbit::qparams{1.0f, 64},
                                                  cs(x), ms(q8)); },
                  errc::invalid_argument, "zero_point");
    REQUIRE(q == std::vector<std::uint8_t>(2, 0xEE));
    REQUIRE(p[0] == 0xEE);
    REQUIRE(q8 == std::vector<std::int8_t>(2, 5));
    REQUIRE(y == std::vector<float>(2, -7.0f));
}

// ----------------------------------------------------------------------------------------
// quantize
// ----------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("contract: quantize: NaN maps to the zero point, +Inf to qmax, -Inf to qmin",
                   "[contract][quantize]", use_ref, use_kernels) {
    // 20 elements so SIMD lanes and the tail both see each value
    std::vector<float> x;
    for (int i = 0; i < 5; ++i) x.insert(x.end(), {nan_f, inf_f, -inf_f, -nan_f});
    std::vector<std::uint8_t> qu(20);
    REQUIRE(TestType::quantize(u8a, lowbit::qparams{0.5f, 100}, cs(x), ms(qu)).ok());
    for (std::size_t k = 0; k < 20; k += 4) {
        REQUIRE(qu[k] == 100);
        REQUIRE(qu[k + 1] == 255);
        REQUIRE(qu[k + 2] == 0);
        REQUIRE(qu[k + 3] == 100);
    }
    std::vector<std::int8_t> qs(20);
    REQUIRE(TestType::quantize(s8s, lowbit::qparams{0.5f, 0}, cs(x), ms(qs)).ok());
    for (std::size_t k = 0; k < 20; k += 4) {
        REQUIRE(qs[k] == 0);
        REQUIRE(qs[k + 1] == 127);
        REQUIRE(qs[k + 2] == -128);
        REQUIRE(qs[k + 3] == 0);
    }
    // tflite profile (x / scale, half away): the same ends
    REQUIRE(TestType::quantize(u8a.with_profile(lowbit::profile::tflite), lowbit::qparams{0.5f, 100}, cs(x), ms(qu)).ok());
    REQUIRE(qu[0] == 100);
    REQUIRE(qu[1] == 255);
    REQUIRE(qu[2] == 0);
    // 4-bit, packed: s4 zp 0 -> nibbles 0, 7, 8 (-8), 0; u4 zp 3 -> 3, 15, 0, 3
    std::vector<std::uint8_t> p(10);
    REQUIRE(TestType::quantize(s4s, lowbit::qparams{1.0f, 0}, cs(x), ms(p)).ok());
    for (std::size_t b = 0; b < 10; b += 2) {
        REQUIRE(p[b] == 0x70);
        REQUIRE(p[b + 1] == 0x08);
    }
    REQUIRE(TestType::quantize(u4a, lowbit::qparams{1.0f, 3}, cs(x), ms(p)).ok());
    for (std::size_t b = 0; b < 10; b += 2) {
        REQUIRE(p[b] == 0xF3);
        REQUIRE(p[b + 1] == 0x30);
    }
}

TEMPLATE_TEST_CASE("contract: quantize: values beyond the range saturate, FLT_MAX included",
                   "[contract][quantize]", use_ref, use_kernels) {
    const std::vector<float> x{flt_max, -flt_max, 1e30f, -1e30f, 127.5f, -128.5f};
    std::vector<std::int8_t> q(6);
    // s8 scale 1: 127.5 -> rint 128 -> 127; -128.5 -> -128 (even) -> -128
    REQUIRE(TestType::quantize(s8s, lowbit::qparams{1.0f, 0}, cs(x), ms(q)).ok());
    REQUIRE(q == std::vector<std::int8_t>{127, -128, 127, -128, 127, -128});
}

TEMPLATE_TEST_CASE("contract: quantize: denormal inputs are not flushed", "[contract][quantize]", use_ref, use_kernels) {
    // scale 1: every denormal rounds to 0 -> the zero point; -0.0 too
    const std::vector<float> x{denorm_min, -denorm_min, two_m127, -0.0f};
    std::vector<std::uint8_t> q(4);
    REQUIRE(TestType::quantize(u8a, lowbit::qparams{1.0f, 7}, cs(x), ms(q)).ok());
    REQUIRE(q == std::vector<std::uint8_t>{7, 7, 7, 7});
    // (with scale 2^-126 they are distinguished exactly: see the smallest-normal-scale case)
}

TEMPLATE_TEST_CASE("contract: quantize family: empty input is valid and touches nothing",
                   "[contract][quantize]", use_ref, use_kernels) {
    const lowbit::qparams qp{1.0f, 0};
    REQUIRE(TestType::quantize(u8a, qp, span<const float>{}, span<std::uint8_t>{}).ok());
    REQUIRE(TestType::quantize(s4s, qp, span<const float>{}, span<std::uint8_t>{}).ok());
    REQUIRE(TestType::dequantize(u8a, qp, span<const std::uint8_t>{}, span<float>{}).ok());
    REQUIRE(TestType::fake_quantize(u8a, qp, span<const float>{}, span<float>{}, span<std::uint8_t>{}).ok());
    REQUIRE(TestType::fake_quantize_backward(u8a, qp, span<const float>{}, span<const float>{}, span<float>{}).ok());
    REQUIRE(TestType::backward_masked(span<const std::uint8_t>{}, span<const float>{}, span<float>{}).ok());
    const std::vector<lowbit::quantized_multiplier> m(1, lowbit::quantized_multiplier{1 << 30, 0});
    lowbit::requantize_params p;
    p.multipliers = cs(m);
    REQUIRE(TestType::requantize(lowbit::scheme<lowbit::s8>{}, lowbit::shape{0}, p, span<const std::int32_t>{},
                                 span<std::int8_t>{}).ok());
    const std::vector<float> fm(1, 0.5f);
    lowbit::requantize_float_params fp;
    fp.multipliers = cs(fm);
    REQUIRE(TestType::requantize(lowbit::scheme<lowbit::u4>{}, lowbit::shape{0}, fp, span<const std::int32_t>{},
                                 span<std::uint8_t>{}).ok());
    // per channel over a shape with a zero dimension: 0 elements, 4 channels
    const std::vector<float> scales(4, 1.0f);
    const std::vector<std::int32_t> zps(4, 0);
    REQUIRE(TestType::quantize(u8a.per_channel(1), lowbit::shape{0, 4}, lowbit::qparams_view{cs(scales), cs(zps)},
                               span<const float>{}, span<std::uint8_t>{}).ok());
    // but the scale is still checked on empty input
    require_error([&] { return TestType::quantize(u8a, lowbit::qparams{0.0f, 0}, span<const float>{}, span<std::uint8_t>{}); },
                  errc::invalid_argument, "scale");
}

TEMPLATE_TEST_CASE("contract: quantize family: a shape whose element count overflows size_t is an error before any access",
                   "[contract][quantize]", use_ref, use_kernels) {
    const std::size_t big = std::size_t(1) << (sizeof(std::size_t) * 4);  // big * big = 2^64 (2^32 on 32-bit)
    const lowbit::shape shp{big, big};
    const std::vector<float> scales(1, 1.0f);
    const std::vector<std::int32_t> zps(1, 0);
    const lowbit::qparams_view v{cs(scales), cs(zps)};
    // the spans claim nothing: the check fires before any size comparison or access
    require_error([&] { return TestType::quantize(u8a.per_channel(0), shp, v, span<const float>{}, span<std::uint8_t>{}); },
                  errc::overflow, "shape");
    require_error([&] { return TestType::dequantize(u8a.per_channel(0), shp, v, span<const std::uint8_t>{}, span<float>{}); },
                  errc::overflow, "shape");
    require_error([&] { return TestType::fake_quantize(u8a.per_channel(0), shp, v, span<const float>{}, span<float>{},
                                                       span<std::uint8_t>{}); },
                  errc::overflow, "shape");
    const std::vector<lowbit::quantized_multiplier> m(1, lowbit::quantized_multiplier{1 << 30, 0});
    lowbit::requantize_params p;
    p.multipliers = cs(m);
    require_error([&] { return TestType::requantize(lowbit::scheme<lowbit::s8>{}, shp, p, span<const std::int32_t>{},
                                                    span<std::int8_t>{}); },
                  errc::overflow, "shape");
}

TEMPLATE_TEST_CASE("contract: quantize family: misaligned buffers give the aligned results", "[contract][quantize]",
                   use_ref, use_kernels) {
    // 37 elements: x at 4 bytes past a 64-byte boundary (aligned for float, not for any
    // vector), q at 1 byte past one
    std::vector<float> xs(37);
    for (std::size_t k = 0; k < xs.size(); ++k) xs[k] = static_cast<float>(k) * 0.37f - 6.0f;
    xs[3] = nan_f;
    xs[9] = inf_f;
    const lowbit::qparams qp{0.05f, 120};
    std::vector<std::uint8_t> q_al(37);
    std::vector<float> y_al(37);
    std::vector<std::uint8_t> m_al(37);
    REQUIRE(TestType::quantize(u8a, qp, cs(xs), ms(q_al)).ok());
    REQUIRE(TestType::fake_quantize(u8a, qp, cs(xs), ms(y_al), ms(m_al)).ok());
    arena ar(4096);
    float* x = ar.at<float>(4);
    std::memcpy(x, xs.data(), 37 * 4);
    std::uint8_t* q = ar.at<std::uint8_t>(1024 + 1);
    float* y = ar.at<float>(2048 + 12);
    std::uint8_t* m = ar.at<std::uint8_t>(3072 + 3);
    REQUIRE(TestType::quantize(u8a, qp, span<const float>(x, 37), span<std::uint8_t>(q, 37)).ok());
    REQUIRE(std::memcmp(q, q_al.data(), 37) == 0);
    REQUIRE(q[37] == 0xA5);  // nothing written past the end
    REQUIRE(TestType::fake_quantize(u8a, qp, span<const float>(x, 37), span<float>(y, 37), span<std::uint8_t>(m, 37)).ok());
    REQUIRE(std::memcmp(y, y_al.data(), 37 * 4) == 0);
    REQUIRE(std::memcmp(m, m_al.data(), 37) == 0);
    REQUIRE(TestType::dequantize(u8a, qp, span<const std::uint8_t>(q, 37), span<float>(y, 37)).ok());
    for (std::size_t k = 0; k < 37; ++k) REQUIRE(bits(y[k]) == bits((float(q_al[k]) - 120.0f) * 0.05f));
    // packed s4 at an odd byte offset
    std::vector<std::uint8_t> p_al(19);
    REQUIRE(TestType::quantize(s4s, lowbit::qparams{0.5f, 0}, cs(xs), ms(p_al)).ok());
    std::uint8_t* p = ar.at<std::uint8_t>(3500 + 1);
    REQUIRE(TestType::quantize(s4s, lowbit::qparams{0.5f, 0}, span<const float>(x, 37), span<std::uint8_t>(p, 19)).ok());
    REQUIRE(std::memcmp(p, p_al.data(), 19) == 0);
}

TEMPLATE_TEST_CASE("contract: quantize: sizes that do not match are an error naming q.size()", "[contract][quantize]",
                   use_ref, use_kernels) {
    const std::vector<float> x(5, 1.0f);
    std::vector<std::uint8_t> q(4, 0xEE);
    require_error([&] { return TestType::quantize(u8a, lowbit::qparams{1.0f, 0}, cs(x), ms(q)); }, errc::size_mismatch,
                  "q.size()");
    // 5 s4 values take 3 bytes, not 2 or 5
    std::vector<std::uint8_t> p(2, 0xEE);
    require_error([&] { return TestType::quantize(s4s, lowbit::qparams{1.0f, 0}, cs(x), ms(p)); }, errc::size_mismatch,
                  "q.size()");
    REQUIRE(q == std::vector<std::uint8_t>(4, 0xEE));
    REQUIRE(p == std::vector<std::uint8_t>(2, 0xEE));
}

// ----------------------------------------------------------------------------------------
// dequantize
// ----------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("contract: dequantize: stored values outside a custom range are accepted, exact",
                   "[contract][dequantize]", use_ref, use_kernels) {
    // s8 with quant range [-100, 100]; stored -128 and 127 are dequantized as they are
    const auto s = lowbit::scheme<lowbit::s8>{}.with_range(-100, 100);
    const std::vector<std::int8_t> q{-128, 127, 0, -100};
    std::vector<float> x(4);
    REQUIRE(TestType::dequantize(s, lowbit::qparams{0.25f, 10}, cs(q), ms(x)).ok());
    REQUIRE(x == std::vector<float>{-34.5f, 29.25f, -2.5f, -27.5f});
}

// ----------------------------------------------------------------------------------------
// fake_quantize and backward
// ----------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("contract: fake_quantize: NaN gives +0 and mask 0, +-Inf the range ends and mask 0",
                   "[contract][fake_quantize]", use_ref, use_kernels) {
    std::vector<float> x;
    for (int i = 0; i < 5; ++i) x.insert(x.end(), {nan_f, inf_f, -inf_f, denorm_min});
    std::vector<float> y(20);
    std::vector<std::uint8_t> m(20);
    // u8 scale 0.5 zp 128: NaN -> q 128 -> +0.0; +Inf -> 255 -> 63.5; -Inf -> 0 -> -64;
    // 2^-149 -> q 128 -> +0.0, inside the range (mask 1)
    REQUIRE(TestType::fake_quantize(u8a, lowbit::qparams{0.5f, 128}, cs(x), ms(y), ms(m)).ok());
    for (std::size_t k = 0; k < 20; k += 4) {
        REQUIRE(bits(y[k]) == 0u);
        REQUIRE(y[k + 1] == 63.5f);
        REQUIRE(y[k + 2] == -64.0f);
        REQUIRE(bits(y[k + 3]) == 0u);
        REQUIRE(m[k] == 0);
        REQUIRE(m[k + 1] == 0);
        REQUIRE(m[k + 2] == 0);
        REQUIRE(m[k + 3] == 1);
    }
    // backward from x: dy = -1 everywhere: mask 0 gives -1 * 0 = -0.0, mask 1 gives -1
    const std::vector<float> dy(20, -1.0f);
    std::vector<float> dx(20);
    REQUIRE(TestType::fake_quantize_backward(u8a, lowbit::qparams{0.5f, 128}, cs(x), cs(dy), ms(dx)).ok());
    for (std::size_t k = 0; k < 20; ++k) REQUIRE(bits(dx[k]) == (k % 4 == 3 ? bits(-1.0f) : 0x80000000u));
}

TEMPLATE_TEST_CASE("contract: fake_quantize backward: a NaN gradient stays NaN, bit for bit where the mask is 1",
                   "[contract][fake_quantize]", use_ref, use_kernels) {
    const float snan = from_bits(0x7FA00001u), qnan_neg = from_bits(0xFFC01234u);
    std::vector<std::uint8_t> mask;
    std::vector<float> dy;
    for (int i = 0; i < 6; ++i) {
        mask.insert(mask.end(), {1, 1, 0, 1});
        dy.insert(dy.end(), {snan, qnan_neg, snan, inf_f});
    }
    std::vector<float> dx(24);
    REQUIRE(TestType::backward_masked(cs(mask), cs(dy), ms(dx)).ok());
    for (std::size_t k = 0; k < 24; k += 4) {
        REQUIRE(bits(dx[k]) == 0x7FA00001u);  // passed through: the signalling NaN is not quieted
        REQUIRE(bits(dx[k + 1]) == 0xFFC01234u);
        REQUIRE(dx[k + 2] != dx[k + 2]);  // NaN * 0 is a NaN (which NaN is not specified)
        REQUIRE(dx[k + 3] == inf_f);
    }
}

TEMPLATE_TEST_CASE("contract: fake_quantize: y may alias x, dx may alias dy (in place)", "[contract][fake_quantize]",
                   use_ref, use_kernels) {
    std::vector<float> x(41);
    for (std::size_t k = 0; k < x.size(); ++k) x[k] = static_cast<float>(k) * 0.77f - 15.0f;
    x[5] = nan_f;
    const lowbit::qparams qp{0.1f, 3};
    const auto s = lowbit::scheme<lowbit::s8>{};
    std::vector<float> y(41);
    std::vector<std::uint8_t> m(41), m2(41);
    REQUIRE(TestType::fake_quantize(s, qp, cs(x), ms(y), ms(m)).ok());
    std::vector<float> inplace = x;
    REQUIRE(TestType::fake_quantize(s, qp, span<const float>(inplace.data(), 41), ms(inplace), ms(m2)).ok());
    for (std::size_t k = 0; k < 41; ++k) REQUIRE(bits(inplace[k]) == bits(y[k]));
    REQUIRE(m2 == m);  // the mask of the input x, not of y
    // backward in place on dy
    std::vector<float> dy(41);
    for (std::size_t k = 0; k < dy.size(); ++k) dy[k] = static_cast<float>(k) - 20.5f;
    std::vector<float> dx(41);
    REQUIRE(TestType::fake_quantize_backward(s, qp, cs(x), cs(dy), ms(dx)).ok());
    std::vector<float> g = dy;
    REQUIRE(TestType::fake_quantize_backward(s, qp, cs(x), span<const float>(g.data(), 41), ms(g)).ok());
    for (std::size_t k = 0; k < 41; ++k) REQUIRE(bits(g[k]) == bits(dx[k]));
    std::vector<float> g2 = dy;
    REQUIRE(TestType::backward_masked(cs(m), span<const float>(g2.data(), 41), ms(g2)).ok());
    for (std::size_t k = 0; k < 41; ++k) REQUIRE(bits(g2[k]) == bits(dx[k]));
}

// ----------------------------------------------------------------------------------------
// quantize_multiplier and requantize
// ----------------------------------------------------------------------------------------

TEST_CASE("contract: quantize_multiplier: NaN, negative, Inf and >= 2^30 are errors naming multiplier",
          "[contract][requantize]") {
    for (const double bad : {double(nan_f), -0.5, double(inf_f), 1073741824.0, 1e300})
        require_error([&] { return lowbit::quantize_multiplier(bad); }, errc::invalid_argument, "multiplier");
    // zero and denormals: {0, 0} (shift < -31)
    for (const double tiny : {0.0, 4.9e-324, 1e-310, double(denorm_min)}) {
        const lowbit::quantized_multiplier m = *lowbit::quantize_multiplier(tiny);
        REQUIRE(m.multiplier == 0);
        REQUIRE(m.shift == 0);
    }
    // the largest accepted: just below 2^30 -> q * 2^31 rounds to 2^31 -> {2^30, 31}? no:
    // 2^30 - 2^-22 = (1 - 2^-52) * 2^30: q = 1 - 2^-52, shift 30, qf = round(2^31 - 2^-21) = 2^31
    // -> {2^30, 31}, which the requantize checks refuse (shift must be <= 30)
    const lowbit::quantized_multiplier top = *lowbit::quantize_multiplier(1073741824.0 - 1.0 / 4194304.0);
    REQUIRE(top.multiplier == (1 << 30));
    REQUIRE(top.shift == 31);
}

TEMPLATE_TEST_CASE("contract: requantize: extreme accumulators and bias saturate, exact", "[contract][requantize]",
                   use_ref, use_kernels) {
    constexpr std::int32_t imax = std::numeric_limits<std::int32_t>::max(), imin = std::numeric_limits<std::int32_t>::min();
    // M = 2^-25 = {2^30, -24}: MBQM(INT32_MAX) = RDBPOT(SRDHM(INT32_MAX, 2^30), 24) = RDBPOT(2^30, 24) = 64;
    // with bias +1 the sum saturates to INT32_MAX (not wrapping to INT32_MIN -> -64): still 64
    std::vector<std::int32_t> acc;
    for (int i = 0; i < 5; ++i) acc.insert(acc.end(), {imax, imin, imin + 1, 0});
    const std::vector<lowbit::quantized_multiplier> m{{1 << 30, -24}};
    for (const std::int32_t b : {0, 1}) {
        const std::vector<std::int32_t> bias{b};
        lowbit::requantize_params p;
        p.multipliers = cs(m);
        p.bias = cs(bias);
        std::vector<std::int8_t> out(20);
        REQUIRE(TestType::requantize(lowbit::scheme<lowbit::s8>{}, lowbit::shape{20}, p, cs(acc), ms(out)).ok());
        for (std::size_t k = 0; k < 20; k += 4) {
            REQUIRE(out[k] == 64);
            REQUIRE(out[k + 1] == (b == 0 ? -64 : -64));  // INT32_MIN + 1 -> SRDHM -2^30 -> -64
            REQUIRE(out[k + 3] == 0);
        }
    }
    // negative bias at INT32_MIN saturates low: MBQM(INT32_MIN, 2^-25) = -64
    {
        const std::vector<std::int32_t> bias{-1};
        lowbit::requantize_params p;
        p.multipliers = cs(m);
        p.bias = cs(bias);
        std::vector<std::int8_t> out(20);
        REQUIRE(TestType::requantize(lowbit::scheme<lowbit::s8>{}, lowbit::shape{20}, p, cs(acc), ms(out)).ok());
        REQUIRE(out[1] == -64);
        REQUIRE(out[0] == 64);  // INT32_MAX - 1 -> SRDHM = 2^30 - 0 (rounds up) -> 64
    }
    // M = 0.5 = {2^30, 0}: INT32_MAX -> 2^30 -> clamp 127; INT32_MIN -> -2^30 -> -128
    const std::vector<lowbit::quantized_multiplier> half{{1 << 30, 0}};
    lowbit::requantize_params p;
    p.multipliers = cs(half);
    std::vector<std::int8_t> out(20);
    REQUIRE(TestType::requantize(lowbit::scheme<lowbit::s8>{}, lowbit::shape{20}, p, cs(acc), ms(out)).ok());
    REQUIRE(out[0] == 127);
    REQUIRE(out[1] == -128);
}

TEMPLATE_TEST_CASE("contract: requantize: invalid multipliers, zero point and clamp are errors naming them",
                   "[contract][requantize]", use_ref, use_kernels) {
    const std::vector<std::int32_t> acc{1, 2, 3};
    std::vector<std::int8_t> out(3, 9);
    const auto s = lowbit::scheme<lowbit::s8>{};
    {
        const std::vector<lowbit::quantized_multiplier> m{{5, 0}};
        lowbit::requantize_params p;
        p.multipliers = cs(m);
        require_error([&] { return TestType::requantize(s, lowbit::shape{3}, p, cs(acc), ms(out)); },
                      errc::invalid_argument, "multipliers[i].multiplier");
    }
    {
        const std::vector<lowbit::quantized_multiplier> m{{1 << 30, 31}};
        lowbit::requantize_params p;
        p.multipliers = cs(m);
        require_error([&] { return TestType::requantize(s, lowbit::shape{3}, p, cs(acc), ms(out)); },
                      errc::invalid_argument, "multipliers[i].shift");
    }
    const std::vector<lowbit::quantized_multiplier> m{{1 << 30, 0}};
    for (const std::int32_t zp : {128, -129}) {
        lowbit::requantize_params p;
        p.multipliers = cs(m);
        p.zero_point = zp;
        require_error([&] { return TestType::requantize(s, lowbit::shape{3}, p, cs(acc), ms(out)); },
                      errc::invalid_argument, "zero_point");
    }
    {
        lowbit::requantize_params p;
        p.multipliers = cs(m);
        p.clamp_min = 5;
        p.clamp_max = 4;
        require_error([&] { return TestType::requantize(s, lowbit::shape{3}, p, cs(acc), ms(out)); },
                      errc::invalid_argument, "clamp_min");
    }
    for (const float bad : {nan_f, -1.0f, inf_f, -0.5f}) {
        const std::vector<float> fm{bad};
        lowbit::requantize_float_params p;
        p.multipliers = cs(fm);
        require_error([&] { return TestType::requantize(s, lowbit::shape{3}, p, cs(acc), ms(out)); },
                      errc::invalid_argument, "multipliers[i]");
    }
    REQUIRE(out == std::vector<std::int8_t>(3, 9));
}

TEMPLATE_TEST_CASE("contract: requantize: a clamp reaching outside the format is clamped into it",
                   "[contract][requantize]", use_ref, use_kernels) {
    // M = 0.5 = {2^30, 0}: acc 1000 -> 500, -1000 -> -500, 10 -> 5, -10 -> -5 (even values:
    // no rounding ties)
    const std::vector<std::int32_t> acc{1000, -1000, 10, -10};
    const std::vector<lowbit::quantized_multiplier> m{{1 << 30, 0}};
    const auto s = lowbit::scheme<lowbit::s8>{};
    std::vector<std::int8_t> out(4);
    lowbit::requantize_params p;
    p.multipliers = cs(m);
    // [-1000, 1000] acts as [-128, 127]
    p.clamp_min = -1000;
    p.clamp_max = 1000;
    REQUIRE(TestType::requantize(s, lowbit::shape{4}, p, cs(acc), ms(out)).ok());
    REQUIRE(out == std::vector<std::int8_t>{127, -128, 5, -5});
    // [200, 300] lies above the format: both bounds become 127
    p.clamp_min = 200;
    p.clamp_max = 300;
    REQUIRE(TestType::requantize(s, lowbit::shape{4}, p, cs(acc), ms(out)).ok());
    REQUIRE(out == std::vector<std::int8_t>{127, 127, 127, 127});
    // zero point 3 with ReLU (clamp_min = zero point)
    p.zero_point = 3;
    p.clamp_min = 3;
    p.clamp_max = std::numeric_limits<std::int32_t>::max();
    REQUIRE(TestType::requantize(s, lowbit::shape{4}, p, cs(acc), ms(out)).ok());
    REQUIRE(out == std::vector<std::int8_t>{127, 3, 8, 3});
}

TEMPLATE_TEST_CASE("contract: requantize float: zero, denormal and FLT_MAX multipliers are exact",
                   "[contract][requantize]", use_ref, use_kernels) {
    constexpr std::int32_t imax = std::numeric_limits<std::int32_t>::max(), imin = std::numeric_limits<std::int32_t>::min();
    std::vector<std::int32_t> acc;
    for (int i = 0; i < 5; ++i) acc.insert(acc.end(), {imax, imin, 1, -1, 0});
    const auto s = lowbit::scheme<lowbit::s8>{};
    std::vector<std::int8_t> out(25);
    struct row {
        float m;
        std::int8_t e[5];
    };
    // zp 3: m = 0 -> every value 3; m = 2^-149: 2^31 * 2^-149 rounds to 0 -> 3;
    // m = FLT_MAX: +-2^31 * FLT_MAX = +-Inf -> 127 / -128, +-1 -> +-FLT_MAX -> 127 / -128, 0 -> 3
    const row rows[] = {{0.0f, {3, 3, 3, 3, 3}}, {denorm_min, {3, 3, 3, 3, 3}}, {flt_max, {127, -128, 127, -128, 3}}};
    for (const row& r : rows) {
        INFO("multiplier " << r.m);
        const std::vector<float> fm{r.m};
        lowbit::requantize_float_params p;
        p.multipliers = cs(fm);
        p.zero_point = 3;
        REQUIRE(TestType::requantize(s, lowbit::shape{25}, p, cs(acc), ms(out)).ok());
        for (std::size_t k = 0; k < 25; ++k) REQUIRE(out[k] == r.e[k % 5]);
    }
}

TEMPLATE_TEST_CASE("contract: requantize: misaligned accumulators and outputs give the aligned results",
                   "[contract][requantize]", use_ref, use_kernels) {
    std::vector<std::int32_t> accs(53);
    for (std::size_t k = 0; k < accs.size(); ++k) accs[k] = static_cast<std::int32_t>(k * 7919u) - 200000;
    const std::vector<lowbit::quantized_multiplier> m{*lowbit::quantize_multiplier(0.0011)};
    lowbit::requantize_params p;
    p.multipliers = cs(m);
    p.zero_point = -5;
    const auto s = lowbit::scheme<lowbit::s8>{};
    std::vector<std::int8_t> al(53);
    REQUIRE(TestType::requantize(s, lowbit::shape{53}, p, cs(accs), ms(al)).ok());
    arena ar(1024);
    std::int32_t* acc = ar.at<std::int32_t>(4);
    std::memcpy(acc, accs.data(), 53 * 4);
    std::int8_t* out = ar.at<std::int8_t>(512 + 1);
    REQUIRE(TestType::requantize(s, lowbit::shape{53}, p, span<const std::int32_t>(acc, 53), span<std::int8_t>(out, 53)).ok());
    REQUIRE(std::memcmp(out, al.data(), 53) == 0);
    REQUIRE(static_cast<unsigned char>(out[53]) == 0xA5);
}

// ----------------------------------------------------------------------------------------
// int4 pack / unpack
// ----------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("contract: int4 pack: a value out of range is an error naming values[i], nothing written",
                   "[contract][int4]", use_ref, use_kernels) {
    std::vector<std::int8_t> v(33, 1);
    v[31] = 8;
    std::vector<std::uint8_t> p(17, 0xEE);
    require_error([&] { return TestType::pack_s4(cs(v), ms(p)); }, errc::invalid_argument, "values[i]");
    v[31] = -9;
    require_error([&] { return TestType::pack_s4(cs(v), ms(p)); }, errc::invalid_argument, "values[i]");
    std::vector<std::uint8_t> u(33, 1);
    u[32] = 16;
    require_error([&] { return TestType::pack_u4(cs(u), ms(p)); }, errc::invalid_argument, "values[i]");
    REQUIRE(p == std::vector<std::uint8_t>(17, 0xEE));
    // sizes: 33 values need 17 bytes
    std::vector<std::uint8_t> small(16, 0xEE);
    v[31] = 0;
    require_error([&] { return TestType::pack_s4(cs(v), ms(small)); }, errc::size_mismatch, "packed.size()");
    REQUIRE(small == std::vector<std::uint8_t>(16, 0xEE));
}

TEMPLATE_TEST_CASE("contract: int4 pack / unpack: empty input, odd count padding, misaligned buffers",
                   "[contract][int4]", use_ref, use_kernels) {
    REQUIRE(TestType::pack_s4(span<const std::int8_t>{}, span<std::uint8_t>{}).ok());
    REQUIRE(TestType::unpack_s4(span<const std::uint8_t>{}, span<std::int8_t>{}).ok());
    // 35 values -8..7 repeating at an odd offset; the 18th byte's high nibble is the 0 pad
    arena ar(512);
    std::int8_t* v = ar.at<std::int8_t>(1);
    for (std::size_t i = 0; i < 35; ++i) v[i] = static_cast<std::int8_t>(static_cast<int>(i % 16) - 8);
    std::uint8_t* p = ar.at<std::uint8_t>(128 + 3);
    REQUIRE(TestType::pack_s4(span<const std::int8_t>(v, 35), span<std::uint8_t>(p, 18)).ok());
    for (std::size_t b = 0; b < 17; ++b) {
        // element 2b in the low nibble (two's complement), 2b + 1 in the high nibble
        const int lo = static_cast<int>((2 * b) % 16) - 8, hi = static_cast<int>((2 * b + 1) % 16) - 8;
        REQUIRE(p[b] == static_cast<std::uint8_t>((lo & 0xF) | ((hi & 0xF) << 4)));
    }
    REQUIRE(p[17] == static_cast<std::uint8_t>((static_cast<int>(34 % 16) - 8) & 0xF));
    REQUIRE(p[18] == 0xA5);
    // unpack ignores the padding nibble
    p[17] = static_cast<std::uint8_t>(p[17] | 0xF0);
    std::int8_t* back = ar.at<std::int8_t>(256 + 5);
    REQUIRE(TestType::unpack_s4(span<const std::uint8_t>(p, 18), span<std::int8_t>(back, 35)).ok());
    REQUIRE(std::memcmp(back, v, 35) == 0);
    REQUIRE(static_cast<std::uint8_t>(back[35]) == 0xA5);
}

// ----------------------------------------------------------------------------------------
// observers (min/max; the other observers share observe()'s checks, see the contract)
// ----------------------------------------------------------------------------------------

TEST_CASE("contract: observers: NaN or Inf in a batch is an error naming its index, the state unchanged",
          "[contract][observers]") {
    lowbit::minmax_observer<lowbit::scheme<lowbit::u8>> obs;
    const std::vector<float> good{-1.0f, 2.0f};
    REQUIRE(obs.observe(cs(good)).ok());
    for (const float bad : {nan_f, inf_f, -inf_f}) {
        const std::vector<float> x{0.0f, 5.0f, bad, -9.0f};
        const lowbit::status st = status_of([&] { return obs.observe(cs(x)); });
        require_status(st, errc::invalid_argument, "x[i] (index)");
        REQUIRE(st.value == 2.0);
        REQUIRE(obs.stats().min == -1.0f);
        REQUIRE(obs.stats().max == 2.0f);
        REQUIRE(obs.stats().count == 2u);
    }
}

TEST_CASE("contract: observers: empty batch changes nothing, an empty observer gives 1 and 0", "[contract][observers]") {
    lowbit::minmax_observer<lowbit::scheme<lowbit::u8>> obs;
    REQUIRE(obs.observe(span<const float>{}).ok());
    REQUIRE(obs.stats().count == 0u);
    const lowbit::qparams qp = *obs.qparams();
    REQUIRE(qp.scale == 1.0f);
    REQUIRE(qp.zero_point == 0);
}

TEST_CASE("contract: observers: denormal, zero-range and float-overflowing ranges", "[contract][observers]") {
    lowbit::minmax_observer<lowbit::scheme<lowbit::u8>> obs;
    const std::vector<float> d{denorm_min, denorm_min};
    REQUIRE(obs.observe(cs(d)).ok());
    lowbit::qparams qp = *obs.qparams();
    REQUIRE(bits(qp.scale) == bits(eps_f));  // as choose_qparams(denormal, denormal)
    REQUIRE(qp.zero_point == 0);
    obs.reset();
    const std::vector<float> z(7, 0.0f);
    REQUIRE(obs.observe(cs(z)).ok());
    qp = *obs.qparams();
    REQUIRE(bits(qp.scale) == bits(eps_f));
    REQUIRE(qp.zero_point == 0);
    obs.reset();
    const std::vector<float> wide{-flt_max, flt_max};
    REQUIRE(obs.observe(cs(wide)).ok());  // observing is fine; the scale is +Inf (as choose_qparams)
    REQUIRE(obs.qparams()->scale == inf_f);
}

TEST_CASE("contract: observers: merge of another configuration and load of bad bytes are errors, state unchanged",
          "[contract][observers]") {
    lowbit::minmax_observer<lowbit::scheme<lowbit::u8>> a, b(lowbit::scheme<lowbit::u8>{}.with_reduce_range());
    const std::vector<float> x{-1.0f, 3.0f};
    REQUIRE(a.observe(cs(x)).ok());
    REQUIRE(b.observe(cs(x)).ok());
    require_error([&] { return a.merge(b); }, errc::invalid_argument, "other.config()");
    REQUIRE(a.stats().count == 2u);
    std::vector<std::uint8_t> st(a.state_size());
    REQUIRE(a.save(ms(st)).ok());
    lowbit::minmax_observer<lowbit::scheme<lowbit::u8>> c;
    const std::vector<float> y{5.0f};
    REQUIRE(c.observe(cs(y)).ok());
    // truncated, then one flipped payload byte (the CRC catches it)
    const lowbit::status s1 = status_of([&] { return c.load(span<const std::uint8_t>(st.data(), st.size() - 1)); });
    REQUIRE_FALSE(s1.ok());
    std::vector<std::uint8_t> bad = st;
    bad[bad.size() - 3] ^= 0x40;
    const lowbit::status s2 = status_of([&] { return c.load(cs(bad)); });
    REQUIRE_FALSE(s2.ok());
    REQUIRE(c.stats().min == 5.0f);
    REQUIRE(c.stats().count == 1u);
    // saving into a buffer too small
    std::vector<std::uint8_t> small(st.size() - 1, 0xEE);
    REQUIRE_FALSE(status_of([&] { return a.save(ms(small)); }).ok());
}

TEST_CASE("contract: observers: a histogram range whose width overflows float is errc::overflow, state unchanged",
          "[contract][observers]") {
    for (const auto mode : {lowbit::histogram_mode::corrected, lowbit::histogram_mode::torch_1_13}) {
        lowbit::histogram_observer<lowbit::scheme<lowbit::u8>> h(lowbit::scheme<lowbit::u8>{}, mode);
        // one batch spanning [-FLT_MAX, FLT_MAX]: the bin width would be +Inf
        const std::vector<float> wide{-flt_max, flt_max};
        require_error([&] { return h.observe(cs(wide)); }, errc::overflow, "x");
        REQUIRE(h.stats().count == 0u);
        // a second batch widening a finite state past FLT_MAX
        const std::vector<float> a{-1.0f, 1.0f}, b{-1e38f, 1e38f};
        REQUIRE(h.observe(cs(a)).ok());
        REQUIRE(h.observe(cs(b)).ok());  // width 2e38: finite
        // then FLT_MAX: [-1e38, FLT_MAX] is 4.4e38 wide
        const lowbit::qparams before = *h.qparams();
        const std::vector<float> c{flt_max};
        require_error([&] { return h.observe(cs(c)); }, errc::overflow, "x");
        REQUIRE(*h.qparams() == before);
        REQUIRE(h.stats().count == 4u);
        // merge: the same check, naming other
        lowbit::histogram_observer<lowbit::scheme<lowbit::u8>> o(lowbit::scheme<lowbit::u8>{}, mode);
        REQUIRE(o.observe(cs(c)).ok());
        require_error([&] { return h.merge(o); }, errc::overflow, "other");
        REQUIRE(h.stats().count == 4u);
        REQUIRE(*h.qparams() == before);
        // a batch of 2^32 elements (one float broadcast with stride 0): refused before any read
        const float one = 1.0f;
        const std::ptrdiff_t stride0[] = {0};
        const auto big = lowbit::strided_view<const float>::make(&one, lowbit::shape{std::size_t(1) << 32},
                                                                 span<const std::ptrdiff_t>(stride0, 1));
        REQUIRE(big.ok());
        require_error([&] { return h.observe(*big); }, errc::overflow, "x.size()");
        REQUIRE(h.stats().count == 4u);
    }
}

TEST_CASE("contract: observers: a moving average that overflows float leaves an infinite range, qparams refuses it",
          "[contract][observers]") {
    // c = 0.01: min = f32(3e38 + f32(0.01 * f32(-3e38 - 3e38))) = f32(0.01 * -Inf) = -Inf
    lowbit::moving_average_minmax_observer<lowbit::scheme<lowbit::u8>> m;
    const std::vector<float> a{3e38f}, b{-3e38f};
    REQUIRE(m.observe(cs(a)).ok());
    REQUIRE(m.observe(cs(b)).ok());
    REQUIRE(m.stats().min == -inf_f);
    require_error([&] { return m.qparams(); }, errc::invalid_argument, "min");
    m.reset();
    REQUIRE(m.qparams()->scale == 1.0f);
    // per channel (axis 0 of a [2, 1] tensor): channel 1 overflows, nothing is written
    std::vector<float> state(4);
    lowbit::per_channel_moving_average_minmax_observer<lowbit::scheme<lowbit::u8>> pc(
        lowbit::scheme<lowbit::u8>{}.per_channel(0), 2, ms(state));
    const std::vector<float> x1{1.0f, 3e38f}, x2{1.0f, -3e38f};
    REQUIRE(pc.observe(lowbit::shape{2, 1}, cs(x1)).ok());
    REQUIRE(pc.observe(lowbit::shape{2, 1}, cs(x2)).ok());
    REQUIRE(pc.mins()[1] == -inf_f);
    std::vector<float> scales(2, -7.0f);
    std::vector<std::int32_t> zps(2, -7);
    require_error([&] { return pc.qparams(ms(scales), ms(zps)); }, errc::invalid_argument, "mins[i]");
    REQUIRE(scales == std::vector<float>(2, -7.0f));
}
