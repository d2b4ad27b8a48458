// Schemes, layouts and choose_qparams edge cases that can be worked out by hand. The broad
// comparison with torch lives in tests/golden.
#include "lowbit_catch.hpp"

#include <array>
#include <cstdint>
#include <limits>

#include <lowbit/core/layout.hpp>
#include <lowbit/core/qparams.hpp>
#include <lowbit/core/scheme.hpp>

using lowbit::symmetry;

TEST_CASE("scheme ranges: formats, narrow, reduce_range, custom", "[scheme]") {
    CHECK(lowbit::scheme<lowbit::s8>{}.qmin() == -128);
    CHECK(lowbit::scheme<lowbit::s8>{}.qmax() == 127);
    CHECK(lowbit::scheme<lowbit::u8>{}.qmax() == 255);
    CHECK(lowbit::scheme<lowbit::s4>{}.qmin() == -8);
    CHECK(lowbit::scheme<lowbit::u4>{}.qmax() == 15);
    CHECK(lowbit::scheme<lowbit::s8, symmetry::symmetric_narrow>{}.qmin() == -127);
    CHECK(lowbit::scheme<lowbit::s4, symmetry::symmetric_narrow>{}.qmin() == -7);
    // reduce_range halves by floor division (torch)
    const auto r8 = lowbit::scheme<lowbit::s8>{}.with_reduce_range();
    CHECK(r8.qmin() == -64);
    CHECK(r8.qmax() == 63);
    CHECK(lowbit::scheme<lowbit::u8>{}.with_reduce_range().qmax() == 127);
    const auto c = lowbit::scheme<lowbit::s8>{}.with_range(-127, 127).with_reduce_range();
    CHECK(c.qmin() == -64);
    CHECK(c.qmax() == 63);
    CHECK(lowbit::scheme<lowbit::u8>{}.with_range(0, 15).with_reduce_range().qmax() == 7);
    CHECK(lowbit::scheme<lowbit::s8>{}.with_range(-8, 7).with_reduce_range().qmin() == -4);
    CHECK(lowbit::scheme<lowbit::s8>{}.with_range(-8, 7).with_reduce_range().qmax() == 3);
}

TEST_CASE("symmetric zero-points follow torch", "[scheme]") {
    CHECK(lowbit::scheme<lowbit::s8, symmetry::symmetric>{}.symmetric_zero_point() == 0);
    CHECK(lowbit::scheme<lowbit::u8, symmetry::symmetric>{}.symmetric_zero_point() == 128);
    CHECK(lowbit::scheme<lowbit::u8, symmetry::symmetric>{}.with_range(0, 15).symmetric_zero_point() == 7);
    CHECK(lowbit::scheme<lowbit::u8, symmetry::symmetric>{}.with_range(0, 255).symmetric_zero_point() == 127);
    CHECK(lowbit::scheme<lowbit::u4, symmetry::symmetric>{}.symmetric_zero_point() == 7);
}

TEST_CASE("scheme validation names the argument", "[scheme][errors]") {
    CHECK_THROWS_WITH((lowbit::scheme<lowbit::s8>{}.with_range(-129, 127).validate()), Catch::Contains("'quant_min' = -129"));
    CHECK_THROWS_WITH((lowbit::scheme<lowbit::s4>{}.with_range(-8, 8).validate()), Catch::Contains("'quant_max' = 8"));
    CHECK_THROWS_WITH((lowbit::scheme<lowbit::s8>{}.with_range(1, 127).validate()), Catch::Contains("contain 0"));
    CHECK_THROWS_WITH((lowbit::scheme<lowbit::s8>{}.with_range(0, 0).validate()), Catch::Contains("'quant_max'"));
    CHECK_THROWS_WITH((lowbit::scheme<lowbit::u8, symmetry::symmetric>{}.with_reduce_range().validate()),
                      Catch::Contains("'reduce_range'"));
    CHECK_THROWS_WITH((lowbit::scheme<lowbit::s8>{}.with_eps(0.0f).validate()), Catch::Contains("'eps' = 0"));
    CHECK_THROWS_WITH((lowbit::scheme<lowbit::s8>{}.with_eps(std::numeric_limits<float>::quiet_NaN()).validate()),
                      Catch::Contains("'eps' = nan"));
    CHECK_THROWS_WITH((lowbit::scheme<lowbit::s4>{}.per_group(1, 0).validate()), Catch::Contains("'group_size' = 0"));
    CHECK_THROWS_WITH((lowbit::scheme<lowbit::s8, symmetry::symmetric_narrow>{}.with_range(-128, 127).validate()),
                      Catch::Contains("'quant_min' = -128"));
    CHECK(lowbit::scheme<lowbit::s8>{}.validate().ok());
}

TEST_CASE("choose_qparams: hand-computed torch cases", "[qparams]") {
    const auto u8 = lowbit::scheme<lowbit::u8>{};
    // [-2.5, 252.5]: scale = 255 / 255 = 1; round(-2.5) = -2 (ties to even) -> zp = 0 + 2
    CHECK(*lowbit::choose_qparams(u8, -2.5f, 252.5f) == lowbit::qparams{1.0f, 2});
    // all-zero data: scale = max(0, eps) = eps; zp = qmin - round(0 / eps) = qmin
    CHECK(*lowbit::choose_qparams(lowbit::scheme<lowbit::s8>{}, 0.0f, 0.0f) ==
          lowbit::qparams{lowbit::default_eps, -128});
    // an observer that saw nothing
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(*lowbit::choose_qparams(u8, inf, -inf) == lowbit::qparams{1.0f, 0});
    // symmetric s8: [-1, 0.5] -> scale = 1 / 127.5
    CHECK(*lowbit::choose_qparams(lowbit::scheme<lowbit::s8, symmetry::symmetric>{}, -1.0f, 0.5f) ==
          lowbit::qparams{1.0f / 127.5f, 0});
    // symmetric narrow s8 (TFLite weights): [-0.5, 2] -> scale = 2 / 127
    CHECK(*lowbit::choose_qparams(lowbit::scheme<lowbit::s8, symmetry::symmetric_narrow>{}, -0.5f, 2.0f) ==
          lowbit::qparams{2.0f / 127.0f, 0});
    // all positive data still includes 0: [1, 3] -> [0, 3], scale 3/255, zp 0
    CHECK(*lowbit::choose_qparams(u8, 1.0f, 3.0f) == lowbit::qparams{3.0f / 255.0f, 0});
    // all negative: [-3, -1] -> [-3, 0]: scale 3/255, zp = 0 - round(-255) = 255
    CHECK(*lowbit::choose_qparams(u8, -3.0f, -1.0f) == lowbit::qparams{3.0f / 255.0f, 255});
}

TEST_CASE("choose_qparams: fused (FBGEMM) path special cases", "[qparams]") {
    const auto s8 = lowbit::scheme<lowbit::s8>{}.with_profile(lowbit::profile::torch_fused);
    // all-zero: scale 0 -> 0.1; zp from max end (error 127 < 128) -> 127
    CHECK(*lowbit::choose_qparams(s8, 0.0f, 0.0f) == lowbit::qparams{0.1f, 127});
    // symmetric, mixed sign: scale = max(1/128, 0.5/127) = 1/128, zp = (qmin+qmax)/2 = -0.5 -> rint -> -0 = 0
    const auto sym = lowbit::scheme<lowbit::s8, symmetry::symmetric>{}.with_profile(lowbit::profile::torch_fused);
    CHECK(*lowbit::choose_qparams(sym, -1.0f, 0.5f) == lowbit::qparams{1.0f / 128.0f, 0});
}

TEST_CASE("choose_qparams errors", "[qparams][errors]") {
    const auto s = lowbit::scheme<lowbit::s8>{};
    CHECK_THROWS_WITH((lowbit::choose_qparams(s, 1.0f, -1.0f)), Catch::Contains("'min' = 1") && Catch::Contains("<= max"));
    CHECK_THROWS_WITH((lowbit::choose_qparams(s, std::numeric_limits<float>::quiet_NaN(), 1.0f)),
                      Catch::Contains("'min' = nan"));
    CHECK_THROWS_WITH((lowbit::choose_qparams(s, 0.0f, std::numeric_limits<float>::infinity())),
                      Catch::Contains("'max' = inf"));
    std::array<float, 2> mins = {0, 0}, maxs = {1, 2}, scales = {-1, -1};
    std::array<std::int32_t, 1> zps = {7};
    CHECK_THROWS_WITH((lowbit::choose_qparams(s, mins, maxs, scales, zps)), Catch::Contains("'zero_points.size()' = 1"));
    CHECK(scales[0] == -1.0f);  // nothing written
    std::array<std::int32_t, 2> zps2 = {7, 7};
    REQUIRE(lowbit::choose_qparams(s, mins, maxs, scales, zps2).ok());
    CHECK(scales[1] == 2.0f / 255.0f);
    CHECK(zps2[1] == -128);
}

TEST_CASE("layout: per-channel and per-group parameter index", "[layout]") {
    // shape [2, 4, 3], per-channel on axis 1: element (o, c, i) uses c
    const auto pc = lowbit::scheme<lowbit::s8>{}.per_channel(1);
    const lowbit::quant_layout l = *lowbit::make_layout(pc, lowbit::shape{2, 4, 3});
    CHECK(l.param_count == 4);
    CHECK(l.outer == 2);
    CHECK(l.inner == 3);
    CHECK(l.param_index(0) == 0);
    CHECK(l.param_index(3) == 1);   // (0, 1, 0)
    CHECK(l.param_index(14) == 0);  // 14 = (1, 0, 2)
    CHECK(l.param_index(23) == 3);
    // per-group on axis 1 with g = 2: params shape [2, 2, 3]; element (o, c, i) -> (o*2 + c/2)*3 + i
    const auto pg = lowbit::scheme<lowbit::s4>{}.per_group(1, 2);
    const lowbit::quant_layout g = *lowbit::make_layout(pg, lowbit::shape{2, 4, 3});
    CHECK(g.param_count == 12);
    CHECK(g.param_index(0) == 0);
    CHECK(g.param_index(4) == 1);    // (0, 1, 1) -> (0 + 0)*3 + 1
    CHECK(g.param_index(7) == 4);    // (0, 2, 1) -> (0 + 1)*3 + 1
    CHECK(g.param_index(23) == 11);  // (1, 3, 2) -> (2 + 1)*3 + 2
    // weights [N=2, K=64] grouped along K by 32 -> [2, 2]
    const lowbit::quant_layout w = *lowbit::make_layout(lowbit::scheme<lowbit::s4>{}.per_group(1, 32),
                                                        lowbit::shape{2, 64});
    CHECK(w.param_count == 4);
    CHECK(w.param_index(31) == 0);
    CHECK(w.param_index(32) == 1);
    CHECK(w.param_index(64) == 2);
    CHECK(w.param_index(127) == 3);
}

TEST_CASE("layout errors", "[layout][errors]") {
    CHECK_THROWS_WITH((lowbit::make_layout(lowbit::scheme<lowbit::s8>{}.per_channel(2), lowbit::shape{2, 3})),
                      Catch::Contains("'axis' = 2"));
    CHECK_THROWS_WITH((lowbit::make_layout(lowbit::scheme<lowbit::s4>{}.per_group(1, 5), lowbit::shape{2, 64})),
                      Catch::Contains("'group_size' = 5"));
    CHECK_THROWS_WITH((lowbit::make_layout(lowbit::scheme<lowbit::s8>{}, lowbit::shape{1, 2, 3, 4, 5, 6, 7, 8, 9})),
                      Catch::Contains("'shape.rank()' = 9"));
    const std::size_t huge = std::size_t(1) << 40;
    CHECK_THROWS_WITH((lowbit::make_layout(lowbit::scheme<lowbit::s8>{}, lowbit::shape{huge, huge})),
                      Catch::Contains("overflow"));
}

TEST_CASE("format traits (compile-time)", "[format][constexpr]") {
    static_assert(lowbit::s8::qmin == -128 && lowbit::s8::qmax == 127, "");
    static_assert(lowbit::u8::qmin == 0 && lowbit::u8::qmax == 255, "");
    static_assert(lowbit::s4::qmin == -8 && lowbit::s4::qmax == 7 && lowbit::s4::is_packed, "");
    static_assert(lowbit::u4::qmin == 0 && lowbit::u4::qmax == 15, "");
    static_assert(lowbit::s32::qmin == -2147483647 - 1 && lowbit::s32::qmax == 2147483647, "");
    static_assert(lowbit::s4::storage_size(7) == 4 && lowbit::s8::storage_size(7) == 7, "");
    static_assert(lowbit::scheme<lowbit::s32>{}.qmin() == lowbit::s32::qmin, "");
    static_assert(lowbit::scheme<lowbit::s8, symmetry::symmetric>{}.per_group(1, 32).group_size() == 32, "");
    SUCCEED();
}

TEST_CASE("choose_qparams: tflite profile (gemmlowp-style nudged zero-point)", "[qparams]") {
    const auto u8 = lowbit::scheme<lowbit::u8>{}.with_profile(lowbit::profile::tflite);
    // [-1, 3]: scale = 4/255; zero-point from min = 0 + 1/scale = 63.75 (error 63.75 beats
    // 255 + 191.25 from the max end) -> 64
    CHECK(*lowbit::choose_qparams(u8, -1.0f, 3.0f) == lowbit::qparams{4.0f / 255.0f, 64});
    // [-2.5, 252.5]: scale 1, zero-point 2.5 rounds half away from zero -> 3 (torch: 2)
    CHECK(*lowbit::choose_qparams(u8, -2.5f, 252.5f) == lowbit::qparams{1.0f, 3});
    // a point range: TFLite returns scale 0; lowbit keeps a usable scale (eps) and zp 0
    CHECK(*lowbit::choose_qparams(u8, 0.0f, 0.0f) == lowbit::qparams{lowbit::default_eps, 0});
    // symmetric narrow s8 weights: max|w| / 127
    const auto w = lowbit::scheme<lowbit::s8, symmetry::symmetric_narrow>{}.with_profile(lowbit::profile::tflite);
    CHECK(*lowbit::choose_qparams(w, -3.0f, 1.0f) == lowbit::qparams{3.0f / 127.0f, 0});
}
