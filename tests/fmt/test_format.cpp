// The fmt adapter (lowbit/format.hpp): every formatter's exact text, and lowbit::report's
// numbers against values worked out by hand in the comments (inputs are chosen so that
// every fake-quantize error is a small dyadic number, exact in float and in double).
#include "lowbit_catch.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <lowbit/format.hpp>
#include <lowbit/lowbit.hpp>

namespace {
std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}
}  // namespace

TEST_CASE("enums format as their to_string names", "[fmt][enum]") {
    CHECK(fmt::format("{}", lowbit::format_id::s8) == "s8");
    CHECK(fmt::format("{}", lowbit::format_id::u8) == "u8");
    CHECK(fmt::format("{}", lowbit::format_id::s4) == "s4");
    CHECK(fmt::format("{}", lowbit::format_id::u4) == "u4");
    CHECK(fmt::format("{}", lowbit::format_id::s32) == "s32");
    CHECK(fmt::format("{}", lowbit::symmetry::affine) == "affine");
    CHECK(fmt::format("{}", lowbit::symmetry::symmetric) == "symmetric");
    CHECK(fmt::format("{}", lowbit::symmetry::symmetric_narrow) == "symmetric_narrow");
    CHECK(fmt::format("{}", lowbit::granularity::per_tensor) == "per_tensor");
    CHECK(fmt::format("{}", lowbit::granularity::per_channel) == "per_channel");
    CHECK(fmt::format("{}", lowbit::granularity::per_group) == "per_group");
    CHECK(fmt::format("{}", lowbit::profile::torch) == "torch");
    CHECK(fmt::format("{}", lowbit::profile::torch_fused) == "torch_fused");
    CHECK(fmt::format("{}", lowbit::profile::tflite) == "tflite");
    CHECK(fmt::format("{}", lowbit::rounding::half_even) == "half_even");
    CHECK(fmt::format("{}", lowbit::rounding::half_away) == "half_away");
    CHECK(fmt::format("{}", lowbit::rounding::stochastic) == "stochastic");
    CHECK(fmt::format("{}", lowbit::requant_rounding::double_rounding) == "double_rounding");
    CHECK(fmt::format("{}", lowbit::requant_rounding::single_rounding) == "single_rounding");
    CHECK(fmt::format("{}", lowbit::errc::ok) == "ok");
    CHECK(fmt::format("{}", lowbit::errc::invalid_argument) == "invalid argument");
    CHECK(fmt::format("{}", lowbit::errc::size_mismatch) == "size mismatch");
    CHECK(fmt::format("{}", lowbit::errc::out_of_range) == "out of range");
    CHECK(fmt::format("{}", lowbit::errc::overflow) == "overflow");
}

TEST_CASE("formatters take fill, align and width", "[fmt][spec]") {
    CHECK(fmt::format("[{:>5}]", lowbit::format_id::s8) == "[   s8]");
    CHECK(fmt::format("[{:<11}]", lowbit::rounding::half_even) == "[half_even  ]");
    CHECK(fmt::format("[{:*^10}]", lowbit::profile::torch) == "[**torch***]");
    CHECK(fmt::format("[{:>30}]", lowbit::qparams{0.5f, 3}) == "[        scale=0.5 zero_point=3]");
}

TEST_CASE("status: ok, or code, argument, value and expectation", "[fmt][status]") {
    CHECK(fmt::format("{}", lowbit::status{}) == "ok");
    const lowbit::status s{lowbit::errc::invalid_argument, "scale", -1.0, "must be finite and > 0"};
    CHECK(fmt::format("{}", s) == "invalid argument: 'scale' = -1: must be finite and > 0");
    const lowbit::status sz{lowbit::errc::size_mismatch, "q.size()", 3.0, "must be Format::storage_size(x.size())"};
    CHECK(fmt::format("{}", sz) == "size mismatch: 'q.size()' = 3: must be Format::storage_size(x.size())");
    // The value keeps 9 significant digits, like lowbit::error::message.
    const lowbit::status v{lowbit::errc::invalid_argument, "eps", 1.0 / 3.0, "x"};
    CHECK(fmt::format("{}", v) == "invalid argument: 'eps' = 0.333333333: x");

    // A status produced by a real check (thrown, since this test builds with exceptions).
    try {
        (void)lowbit::check_qparams(lowbit::scheme<lowbit::s8>{}, lowbit::qparams{-1.0f, 0});
        FAIL("check_qparams accepted a negative scale");
    } catch (const lowbit::error& e) {
        CHECK(fmt::format("{}", e.status()) ==
              "invalid argument: 'scale' = -1: must be finite and > 0 with a finite reciprocal (not denormal)");
        // Same text as the exception's message, minus its "lowbit: " and "argument " words.
        CHECK(std::string(e.what()) ==
              "lowbit: invalid argument: argument 'scale' = -1: must be finite and > 0 with a finite reciprocal "
              "(not denormal)");
    }
}

TEST_CASE("qparams: scale with 9 significant digits", "[fmt][qparams]") {
    CHECK(fmt::format("{}", lowbit::qparams{}) == "scale=1 zero_point=0");
    CHECK(fmt::format("{}", lowbit::qparams{3.0f / 255.0f, -43}) == "scale=0.0117647061 zero_point=-43");
    // s8 affine over [-1, 2]: scale = 3 / 255, zero_point = -128 - round(-1 / scale) = -43.
    const auto qp = lowbit::choose_qparams(lowbit::scheme<lowbit::s8>{}, -1.0f, 2.0f).value();
    CHECK(fmt::format("{}", qp) == "scale=0.0117647061 zero_point=-43");
    // 9 digits read back as the same float.
    const float back = std::stof(fmt::format("{:.9g}", qp.scale));
    CHECK(back == qp.scale);
    CHECK(fmt::format("{}", lowbit::qparams{1.1920929e-07f, 128}) == "scale=1.1920929e-07 zero_point=128");
}

TEST_CASE("quantized_multiplier: integers and the real value", "[fmt][fixed_point]") {
    CHECK(fmt::format("{}", lowbit::quantize_multiplier(0.1).value()) == "multiplier=1717986918 shift=-3 (~0.1)");
    CHECK(fmt::format("{}", lowbit::quantize_multiplier(0.5).value()) == "multiplier=1073741824 shift=0 (~0.5)");
    CHECK(fmt::format("{}", lowbit::quantize_multiplier(1.5).value()) == "multiplier=1610612736 shift=1 (~1.5)");
    CHECK(fmt::format("{}", lowbit::quantized_multiplier{}) == "multiplier=0 shift=0 (~0)");
    // 1717986918 * 2^(-30 - 31) = 0.1 * 2^-27 (to 1e-10 relative): 7.45058e-10 to 6 digits.
    CHECK(fmt::format("{}", lowbit::quantized_multiplier{1717986918, -30}) ==
          "multiplier=1717986918 shift=-30 (~7.45058e-10)");
}

TEST_CASE("scheme: format, symmetry, granularity, range, profile, rounding", "[fmt][scheme]") {
    using lowbit::scheme;
    using lowbit::symmetry;
    CHECK(fmt::format("{}", scheme<lowbit::s8>{}) == "s8 affine per_tensor [-128, 127] torch half_even");
    CHECK(fmt::format("{}", scheme<lowbit::s8, symmetry::symmetric>{}.per_channel(0)) ==
          "s8 symmetric per_channel(axis=0) [-128, 127] torch half_even");
    CHECK(fmt::format("{}", scheme<lowbit::s4, symmetry::symmetric>{}.per_group(1, 32)) ==
          "s4 symmetric per_group(axis=1, group=32) [-8, 7] torch half_even");
    CHECK(fmt::format("{}", scheme<lowbit::s8, symmetry::symmetric_narrow>{}.per_channel(3).with_profile(
                                lowbit::profile::tflite)) ==
          "s8 symmetric_narrow per_channel(axis=3) [-127, 127] tflite half_away");
    // reduce_range: the effective range, then the flag.
    CHECK(fmt::format("{}", scheme<lowbit::u8>{}.with_reduce_range()) ==
          "u8 affine per_tensor [0, 127] reduce_range torch half_even");
    CHECK(fmt::format("{}", scheme<lowbit::s8>{}.with_reduce_range().with_profile(lowbit::profile::torch_fused)) ==
          "s8 affine per_tensor [-64, 63] reduce_range torch_fused half_even");
    // A custom eps is shown (shortest float form); the default is not.
    CHECK(fmt::format("{}", scheme<lowbit::u8>{}.with_eps(1e-3f)) == "u8 affine per_tensor [0, 255] torch half_even eps=0.001");
    CHECK(fmt::format("{}", scheme<lowbit::u8>{}.with_eps(lowbit::default_eps)) ==
          "u8 affine per_tensor [0, 255] torch half_even");
    CHECK(fmt::format("{}", scheme<lowbit::s8>{}.with_range(-100, 100)) ==
          "s8 affine per_tensor [-100, 100] torch half_even");
    CHECK(fmt::format("{}", scheme<lowbit::u4>{}.with_rounding(lowbit::rounding::stochastic, 7)) ==
          "u4 affine per_tensor [0, 15] torch stochastic(seed=7)");
    CHECK(fmt::format("{}", scheme<lowbit::u8, symmetry::symmetric>{}.with_rounding(lowbit::rounding::half_away)) ==
          "u8 symmetric per_tensor [0, 255] torch half_away");
}

// s32 is left out: lowbit::s32::qmin (core/format.hpp) does not compile yet, -(1 << 31)
// overflows int32 in a constant expression.
TEMPLATE_TEST_CASE("scheme: every format prints its name and natural range", "[fmt][scheme]", lowbit::s8,
                   lowbit::u8, lowbit::s4, lowbit::u4) {
    const std::string expected = fmt::format("{} affine per_tensor [{}, {}] torch half_even", TestType::id,
                                             TestType::qmin, TestType::qmax);
    CHECK(fmt::format("{}", lowbit::scheme<TestType>{}) == expected);
}

TEST_CASE("fmt_view: per-channel parameters, long lists elided", "[fmt][qparams_view]") {
    const float scales[6] = {0.5f, 0.25f, 0.125f, 1.0f, 2.0f, 0.0123f};
    const std::int32_t zps[6] = {0, 1, 2, 3, 4, -5};
    const lowbit::qparams_view six{scales, zps};
    CHECK(fmt::format("{}", lowbit::fmt_view(six)) ==
          "6 channels: scale=[0.5, 0.25, 0.125, ... 0.0123] zero_point=[0, 1, 2, ... -5]");
    // Up to 5 entries are all listed.
    const lowbit::qparams_view five{{scales, 5}, {zps, 5}};
    CHECK(fmt::format("{}", lowbit::fmt_view(five)) ==
          "5 channels: scale=[0.5, 0.25, 0.125, 1, 2] zero_point=[0, 1, 2, 3, 4]");
    // Symmetric schemes may leave zero_points empty; a custom noun, singular for one.
    const lowbit::qparams_view one{{scales, 1}, {}};
    CHECK(fmt::format("{}", lowbit::fmt_view(one, "group")) == "1 group: scale=[0.5] zero_point=implicit");
    CHECK(fmt::format("{}", lowbit::fmt_view(lowbit::qparams_view{})) == "0 channels: scale=[] zero_point=implicit");
    // 64 channels, as the doc example.
    std::vector<float> s64(64, 0.0456f);
    std::vector<std::int32_t> z64(64, 0);
    s64.front() = 0.0123f;
    s64.back() = 0.0789f;
    CHECK(fmt::format("{}", lowbit::fmt_view({s64, z64})) ==
          "64 channels: scale=[0.0123, 0.0456, 0.0456, ... 0.0789] zero_point=[0, 0, 0, ... 0]");
}

// s4 affine, torch profile, scale 0.5 (1 / scale = 2 exactly), zero_point 0: the
// representable range is [-8, 7] * 0.5 = [-4, 3.5].
//   x       x / s   round (half even)  clamp  fq(x)  x - fq   mask
//   0.25    0.5     0                  0      0       0.25    1
//   0.75    1.5     2                  2      1      -0.25    1
//  -1      -2      -2                 -2     -1       0       1
//  -4.25   -8.5    -8 (tie, to even)  -8     -4      -0.25    1   (ties into range: kept)
//   3.75    7.5     8 (tie, to even)   7      3.5     0.25    0   (8 > 7 before clamping)
//   5      10      10                  7      3.5     1.5     0
//  -6     -12     -12                 -8     -4      -2       0
//   0       0       0                  0      0       0       1
// sum x^2 = 0.0625 + 0.5625 + 1 + 18.0625 + 14.0625 + 25 + 36 + 0 = 94.75
// sum e^2 = 0.0625 * 4 + 2.25 + 4 = 6.5
// SQNR = 10 log10(94.75 / 6.5) = 11.6366586... dB; clipped = 3 / 8 = 0.375.
const std::vector<float> x_s4 = {0.25f, 0.75f, -1.0f, -4.25f, 3.75f, 5.0f, -6.0f, 0.0f};
const auto scheme_s4 = lowbit::scheme<lowbit::s4>{};

// s8 symmetric per_channel(axis=0), shape {2, 3}, scales {0.5, 0.25}, zero_points implicit (0).
//   channel 0 (s = 0.5):   1 -> 2 -> 1 (e 0);  64 -> 128 -> 127 -> 63.5 (e 0.5, mask 0);
//                          -0.25 -> -0.5 -> -0 -> 0 (e -0.25)
//   channel 1 (s = 0.25):  0.125 -> 0.5 -> 0 -> 0 (e 0.125);  40 -> 160 -> 127 -> 31.75
//                          (e 8.25, mask 0);  -1 -> -4 -> -1 (e 0)
// sum x^2 = 1 + 4096 + 0.0625 + 0.015625 + 1600 + 1 = 5698.078125
// sum e^2 = 0.25 + 0.0625 + 0.015625 + 68.0625 = 68.390625
// SQNR = 10 log10(5698.078125 / 68.390625) = 19.2073182... dB; clipped = 2 / 6.
const std::vector<float> x_c8 = {1.0f, 64.0f, -0.25f, 0.125f, 40.0f, -1.0f};
const float scales_c8[2] = {0.5f, 0.25f};
const auto scheme_c8 = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>{}.per_channel(0);

TEST_CASE("report: per-tensor row, worked by hand", "[fmt][report]") {
    lowbit::report r;
    CHECK(r.add("w4", scheme_s4, lowbit::qparams{0.5f, 0}, x_s4).ok());
    REQUIRE(r.rows().size() == 1);
    const lowbit::report_row& row = r.rows()[0];
    CHECK(row.name == "w4");
    CHECK(row.scheme == "s4 affine per_tensor [-8, 7] torch half_even");
    CHECK(row.param_count == 1);
    CHECK(row.scale_min == 0.5f);
    CHECK(row.scale_max == 0.5f);
    CHECK(row.zero_point_min == 0);
    CHECK(row.zero_point_max == 0);
    CHECK(row.x_min == -6.0f);
    CHECK(row.x_max == 5.0f);
    CHECK(row.size == 8);
    CHECK(row.clipped == 3);
    CHECK(row.clipped_fraction == 0.375);
    // Both sums are exact in double, so the result is the same double as this expression.
    CHECK(row.sqnr_db == 10.0 * std::log10(94.75 / 6.5));
    CHECK(row.sqnr_db == Approx(11.6366586).epsilon(1e-8));
}

TEST_CASE("report: per-channel and per-group rows, worked by hand", "[fmt][report]") {
    lowbit::report r;
    CHECK(r.add("w8c", scheme_c8, lowbit::shape{2, 3}, lowbit::qparams_view{scales_c8, {}}, x_c8).ok());
    REQUIRE(r.rows().size() == 1);
    const lowbit::report_row& row = r.rows()[0];
    CHECK(row.scheme == "s8 symmetric per_channel(axis=0) [-128, 127] torch half_even");
    CHECK(row.param_count == 2);
    CHECK(row.scale_min == 0.25f);
    CHECK(row.scale_max == 0.5f);
    CHECK(row.zero_point_min == 0);  // implicit: the symmetric scheme's zero-point
    CHECK(row.zero_point_max == 0);
    CHECK(row.x_min == -1.0f);
    CHECK(row.x_max == 64.0f);
    CHECK(row.size == 6);
    CHECK(row.clipped == 2);
    CHECK(row.clipped_fraction == 2.0 / 6.0);
    CHECK(row.sqnr_db == 10.0 * std::log10(5698.078125 / 68.390625));
    CHECK(row.sqnr_db == Approx(19.2073182).epsilon(1e-8));

    // s4 symmetric per_group(axis=1, group=2) on shape {1, 4}: groups {1, -1} (s 0.5) and
    // {3, 10} (s 1). Only 10 -> 10 -> 7 errs (by 3, mask 0).
    // SQNR = 10 log10((1 + 1 + 9 + 100) / 9); clipped = 1 / 4.
    const float scales_g[2] = {0.5f, 1.0f};
    const std::int32_t zps_g[2] = {0, 0};
    const float x_g[4] = {1.0f, -1.0f, 3.0f, 10.0f};
    const auto sg = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>{}.per_group(1, 2);
    CHECK(r.add("w4g", sg, lowbit::shape{1, 4}, lowbit::qparams_view{scales_g, zps_g}, x_g).ok());
    REQUIRE(r.rows().size() == 2);
    const lowbit::report_row& g = r.rows()[1];
    CHECK(g.scheme == "s4 symmetric per_group(axis=1, group=2) [-8, 7] torch half_even");
    CHECK(g.param_count == 2);
    CHECK(g.scale_min == 0.5f);
    CHECK(g.scale_max == 1.0f);
    CHECK(g.clipped == 1);
    CHECK(g.clipped_fraction == 0.25);
    CHECK(g.sqnr_db == 10.0 * std::log10(111.0 / 9.0));

    // Affine per-channel zero-points: min..max across channels.
    const float sc[3] = {0.1f, 0.2f, 0.3f};
    const std::int32_t zc[3] = {-3, 5, 0};
    const float xc[3] = {0.0f, 0.0f, 0.0f};
    CHECK(r.add("a", lowbit::scheme<lowbit::s8>{}.per_channel(0), lowbit::shape{3}, lowbit::qparams_view{sc, zc}, xc)
              .ok());
    CHECK(r.rows()[2].zero_point_min == -3);
    CHECK(r.rows()[2].zero_point_max == 5);
    CHECK(r.rows()[2].scale_min == 0.1f);
    CHECK(r.rows()[2].scale_max == 0.3f);
}

TEST_CASE("report: all-zero, empty and non-finite inputs", "[fmt][report]") {
    const auto s = lowbit::scheme<lowbit::s8>{};
    lowbit::report r;

    // All zeros: torch affine qparams are {eps, -128}; 0 is always representable, so the
    // error is 0 and SQNR is +inf (0 / 0 is defined as exact reproduction), nothing clipped.
    const std::vector<float> zeros(4, 0.0f);
    const lowbit::qparams qz = lowbit::choose_qparams(s, 0.0f, 0.0f).value();
    CHECK(qz == lowbit::qparams{lowbit::default_eps, -128});
    CHECK(r.add("zeros", s, qz, zeros).ok());
    CHECK(r.rows()[0].sqnr_db == std::numeric_limits<double>::infinity());
    CHECK(r.rows()[0].clipped == 0);
    CHECK(r.rows()[0].clipped_fraction == 0.0);
    CHECK(r.rows()[0].x_min == 0.0f);
    CHECK(r.rows()[0].x_max == 0.0f);

    // Exactly representable non-zero data: also +inf.
    const float exact[3] = {0.5f, -1.0f, 2.0f};
    CHECK(r.add("exact", s, lowbit::qparams{0.5f, 0}, exact).ok());
    CHECK(r.rows()[1].sqnr_db == std::numeric_limits<double>::infinity());

    // Empty: no elements, fraction 0, SQNR +inf, no observed range (NaN).
    CHECK(r.add("empty", s, lowbit::qparams{}, lowbit::span<const float>{}).ok());
    const lowbit::report_row& e = r.rows()[2];
    CHECK(e.size == 0);
    CHECK(e.clipped_fraction == 0.0);
    CHECK(e.sqnr_db == std::numeric_limits<double>::infinity());
    CHECK(std::isnan(e.x_min));
    CHECK(std::isnan(e.x_max));

    // NaN and Inf: counted as clipped (mask 0), NaN skipped by the range, SQNR NaN.
    const float bad[4] = {1.0f, std::numeric_limits<float>::quiet_NaN(), -2.0f,
                          std::numeric_limits<float>::infinity()};
    CHECK(r.add("bad", s, lowbit::qparams{0.5f, 0}, bad).ok());
    const lowbit::report_row& b = r.rows()[3];
    CHECK(b.clipped == 2);
    CHECK(b.x_min == -2.0f);
    CHECK(b.x_max == std::numeric_limits<float>::infinity());
    CHECK(std::isnan(b.sqnr_db));
}

TEST_CASE("report: invalid arguments add no row", "[fmt][report]") {
    lowbit::report r;
    const float x[2] = {1.0f, 2.0f};
    CHECK_THROWS_AS(r.add("neg", lowbit::scheme<lowbit::s8>{}, lowbit::qparams{-1.0f, 0}, x), lowbit::error);
    // One qparams with a per-channel scheme: refused, the shape overload is needed.
    CHECK_THROWS_AS(r.add("pc", lowbit::scheme<lowbit::s8>{}.per_channel(0), lowbit::qparams{}, x), lowbit::error);
    // Parameter count does not match the shape.
    const float sc[1] = {1.0f};
    const std::int32_t zp[1] = {0};
    CHECK_THROWS_AS(r.add("n", lowbit::scheme<lowbit::s8>{}.per_channel(0), lowbit::shape{2},
                          lowbit::qparams_view{sc, zp}, x),
                    lowbit::error);
    CHECK(r.rows().empty());
}

TEST_CASE("report: the table", "[fmt][report]") {
    lowbit::report r;
    CHECK(lines_of(r.str()) == std::vector<std::string>{"name  scheme  scale  zero_point  range  clipped  SQNR dB"});

    r.add("w4", scheme_s4, lowbit::qparams{0.5f, 0}, x_s4);
    r.add("w8c", scheme_c8, lowbit::shape{2, 3}, lowbit::qparams_view{scales_c8, {}}, x_c8);
    const std::string table = r.str();
    // Text columns left-aligned, numbers right-aligned, two spaces between columns, no
    // trailing blanks; numbers as worked out above (SQNR 11.64 and 19.21 dB).
    CHECK(table ==
          "name  scheme                                                            scale  zero_point  range     clipped  SQNR dB\n"
          "w4    s4 affine per_tensor [-8, 7] torch half_even                        0.5           0  [-6, 5]    37.50%    11.64\n"
          "w8c   s8 symmetric per_channel(axis=0) [-128, 127] torch half_even  0.25..0.5           0  [-1, 64]   33.33%    19.21\n");

    // A header line, then one line per row, in order, all the same width.
    const std::vector<std::string> lines = lines_of(table);
    REQUIRE(lines.size() == 1 + r.rows().size());
    CHECK(lines[0].rfind("name", 0) == 0);
    for (std::size_t i = 0; i < r.rows().size(); ++i) {
        CHECK(lines[i + 1].rfind(r.rows()[i].name, 0) == 0);
        CHECK(lines[i + 1].size() == lines[0].size());
        // The scheme column starts where its header does.
        CHECK(lines[i + 1].find(r.rows()[i].scheme) == lines[0].find("scheme"));
    }

    // inf for exact reproduction, and the fmt formatter gives the same text.
    const std::vector<float> zeros(3, 0.0f);
    r.add("zeros", lowbit::scheme<lowbit::u8>{}, lowbit::qparams{}, zeros);
    CHECK(lines_of(r.str()).back().substr(lines_of(r.str()).back().size() - 3) == "inf");
    CHECK(fmt::format("{}", r) == r.str());

    // print() writes str().
    std::FILE* f = std::tmpfile();
    REQUIRE(f != nullptr);
    r.print(f);
    std::rewind(f);
    std::string printed;
    for (int c = std::fgetc(f); c != EOF; c = std::fgetc(f)) printed += static_cast<char>(c);
    std::fclose(f);
    CHECK(printed == r.str());

    r.clear();
    CHECK(r.rows().empty());
}
