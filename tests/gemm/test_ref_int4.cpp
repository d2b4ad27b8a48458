// tests/gemm/test_ref_int4.cpp: the int4 weight-only GEMV / GEMM spec (core/gemm_int4.hpp) and
// the binary16 conversions (core/f16.hpp) against hand-computed values, numpy golden data
// (tests/golden/generate_int4.py, exact rational fma), exhaustive rules, round trips through
// ggml's Q4_0 and ONNX's blocked int4 layouts, and every argument check.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <lowbit/core/gemm_int4.hpp>
#include <lowbit/core/quantize.hpp>

#include "int4_test_util.hpp"
#include "lowbit_catch.hpp"

#ifndef LOWBIT_TEST_DATA_DIR
#error "LOWBIT_TEST_DATA_DIR must name the directory holding the golden data files"
#endif

namespace {

using lowbit::format_id;

using int4_test::bits_of;
using int4_test::q8_store;
using int4_test::sized;
using int4_test::weights_store;

float float_of(std::uint32_t u) {
    float f = 0;
    std::memcpy(&f, &u, 4);
    return f;
}

// Random weights with scales in [-0.2, 0.2) (int4_test::random_weights).
weights_store random_weights(std::mt19937& rng, format_id fmt, std::size_t n, std::size_t k, std::size_t g, bool f16) {
    return int4_test::random_weights(rng, fmt, n, k, g, f16, 0.2f);
}

std::vector<std::string> tokens(const std::string& line) {
    std::istringstream is(line);
    std::vector<std::string> out;
    std::string t;
    while (is >> t) out.push_back(t);
    return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// binary16

TEST_CASE("f16 -> f32: all 65536 halves by the IEEE formula, NaNs quiet, payload kept", "[int4][f16]") {
    for (std::uint32_t h = 0; h < 65536; ++h) {
        const float f = lowbit::f16_to_f32(static_cast<std::uint16_t>(h));
        const int e = static_cast<int>((h >> 10) & 0x1F), m = static_cast<int>(h & 0x3FF);
        const double sign = (h & 0x8000) ? -1.0 : 1.0;
        if (e == 31 && m != 0) {
            INFO("h = " << h);
            CHECK(bits_of(f) == (((h & 0x8000u) << 16) | 0x7FC00000u | (std::uint32_t(m) << 13)));
            continue;
        }
        const double want = e == 31  ? sign * HUGE_VAL
                            : e == 0 ? sign * std::ldexp(static_cast<double>(m), -24)
                                     : sign * std::ldexp(1.0 + m / 1024.0, e - 15);
        INFO("h = " << h);
        REQUIRE(bits_of(f) == bits_of(static_cast<float>(want)));  // -0.0 too: the cast keeps the sign
        // and back: every non-NaN half round-trips exactly
        REQUIRE(lowbit::f32_to_f16(f) == h);
    }
    // a signalling NaN is made quiet both ways (as F16C)
    CHECK(lowbit::f32_to_f16(lowbit::f16_to_f32(0x7C01)) == 0x7E01);
    CHECK(bits_of(lowbit::f16_to_f32(0xFD55)) == 0xFFC00000u + (0x155u << 13) + 0x00000000u);
}

TEST_CASE("f32 -> f16: every tie between neighbouring halves goes to even, its neighbours do not", "[int4][f16]") {
    // For every pair of adjacent non-negative halves (h, h + 1) below Inf, the f32 midpoint is
    // exact (12 significant bits) and must round to the even one; one f32 ulp either side
    // rounds to the nearer half. Negative values mirror.
    for (std::uint32_t h = 0; h < 0x7BFF + 1; ++h) {
        const float lo = lowbit::f16_to_f32(static_cast<std::uint16_t>(h));
        const float hi = lowbit::f16_to_f32(static_cast<std::uint16_t>(h + 1));  // h + 1 = 0x7C00 is Inf
        const double mid_d = (static_cast<double>(lo) + (h + 1 == 0x7C00 ? 65536.0 : static_cast<double>(hi))) / 2;
        const float mid = static_cast<float>(mid_d);
        REQUIRE(static_cast<double>(mid) == mid_d);
        const std::uint16_t even = (h & 1) == 0 ? static_cast<std::uint16_t>(h) : static_cast<std::uint16_t>(h + 1);
        INFO("h = " << h);
        REQUIRE(lowbit::f32_to_f16(mid) == even);
        REQUIRE(lowbit::f32_to_f16(-mid) == (even | 0x8000));
        REQUIRE(lowbit::f32_to_f16(float_of(bits_of(mid) - 1)) == h);
        REQUIRE(lowbit::f32_to_f16(float_of(bits_of(mid) + 1)) == h + 1);
    }
    // hand-worked numbers from core/f16.hpp
    CHECK(lowbit::f32_to_f16(float_of(0x3F801000u)) == 0x3C00);  // 1 + 2^-11 -> 1
    CHECK(lowbit::f32_to_f16(1.0f + 3.0f / 2048.0f) == 0x3C02);
    CHECK(lowbit::f32_to_f16(65504.0f) == 0x7BFF);
    CHECK(lowbit::f32_to_f16(65519.99f) == 0x7BFF);
    CHECK(lowbit::f32_to_f16(65520.0f) == 0x7C00);
    CHECK(lowbit::f32_to_f16(-1e30f) == 0xFC00);
    CHECK(lowbit::f32_to_f16(std::ldexp(1.0f, -25)) == 0x0000);     // tie with 0 -> 0 (even)
    CHECK(lowbit::f32_to_f16(std::ldexp(1.5f, -25)) == 0x0001);
    CHECK(lowbit::f32_to_f16(std::ldexp(1.0f, -140)) == 0x0000);    // f32 subnormal
    CHECK(lowbit::f32_to_f16(float_of(0x7F800001u)) == 0x7E00);     // sNaN -> qNaN
    CHECK(lowbit::f32_to_f16(float_of(0xFFFFFFFFu)) == 0xFFFF);
    static_assert(lowbit::f32_to_f16(0.5f) == 0x3800, "constexpr");
    static_assert(lowbit::f16_to_f32(0xC000) == -2.0f, "constexpr");
}

TEST_CASE("f32 -> f16 against numpy float16 (golden)", "[int4][f16][golden]") {
    const std::string path = std::string(LOWBIT_TEST_DATA_DIR) + "/f16_from_f32.txt";
    std::ifstream in(path);
    REQUIRE(in.good());
    std::string line;
    std::size_t count = 0;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream is(line);
        unsigned long f = 0, h = 0;
        is >> f >> h;
        INFO(path << ": f32 bits " << f);
        REQUIRE(lowbit::f32_to_f16(float_of(static_cast<std::uint32_t>(f))) == h);
        ++count;
    }
    CHECK(count > 8000);
}

// ---------------------------------------------------------------------------------------------
// the GEMM spec, hand-computed

TEST_CASE("gemm_int4_f32 and gemm_int4_q8: hand-computed values, s4 and u4, bias", "[int4][ref]") {
    for (format_id fmt : {format_id::s4, format_id::u4}) {
        weights_store w = sized(fmt, 2, 32, 32, false);
        // row 0: every weight 1; row 1: w[0] = -8, w[1] = 7, the rest 0
        std::vector<std::int32_t> v(64, 0);
        for (int c = 0; c < 32; ++c) v[static_cast<std::size_t>(c)] = 1;
        v[32] = -8;
        v[33] = 7;
        const int z = fmt == format_id::u4 ? 8 : 0;  // u4 stores w + 8 with zero point 8
        for (std::size_t i = 0; i < 64; ++i) lowbit::detail::set_nibble(w.data.data(), i, v[i] + z);
        if (fmt == format_id::u4) w.zps = {8, 8};
        w.scales = {0.5f, 0.25f};
        std::vector<float> a(32);
        for (std::size_t c = 0; c < 32; ++c) a[c] = static_cast<float>(c + 1);
        std::vector<float> y(2, -1.0f);
        REQUIRE(lowbit::ref::gemm_int4_f32(w.view(), a, 1, 32, {}, y, 2).ok());
        CHECK(y[0] == 264.0f);  // 0.5 * (1 + ... + 32) = 0.5 * 528
        CHECK(y[1] == 1.5f);    // 0.25 * (-8 * 1 + 7 * 2)
        const std::vector<float> bias = {1.0f, -1.0f};
        REQUIRE(lowbit::ref::gemm_int4_f32(w.view(), a, 1, 32, bias, y, 2).ok());
        CHECK(y[0] == 265.0f);
        CHECK(y[1] == 0.5f);

        // q8: amax = 127 -> id = 1, d = 1; 2.5 -> 2 and 3.5 -> 4 (ties to even), -2.5 -> -2
        std::vector<float> x(32, 0.0f);
        x[0] = 127.0f;
        x[1] = 2.5f;
        x[2] = 3.5f;
        x[3] = -2.5f;
        q8_store q(1, 32);
        REQUIRE(lowbit::ref::quantize_q8(x, 1, 32, 32, q.buffer()).ok());
        CHECK(q.q[0] == 127);
        CHECK(q.q[1] == 2);
        CHECK(q.q[2] == 4);
        CHECK(q.q[3] == -2);
        CHECK(q.d[0] == 1.0f);
        CHECK(q.sums[0] == 131);
        REQUIRE(lowbit::ref::gemm_int4_q8(w.view(), q.view(), {}, y, 2).ok());
        CHECK(y[0] == 65.5f);    // 131 * (1 * 0.5)
        CHECK(y[1] == -250.5f);  // (-8 * 127 + 7 * 2) * 0.25 = -1002 * 0.25
    }
}

TEST_CASE("gemm_int4_f32: the order is sequential over k and the multiply-add is fused", "[int4][ref]") {
    weights_store w = sized(format_id::s4, 3, 32, 32, false);
    w.scales = {1.0f, 1.0f, 1.0f};
    // row 0: weights 1, 1, 1 then 0; a = 1e8, 1, -1e8: t = 1e8, fl(1e8 + 1) = 1e8, then 0.
    // Any other association (1e8 - 1e8 first) would give 1.
    // row 1: weights 3, 3 then 0; a = -1, 1 + 2^-23: t = -3, then fma(1 + 2^-23, 3, -3) = 3 * 2^-23
    // exactly (an unfused a * w rounds 3 + 3 * 2^-23 to 3 + 2^-21 and gives 2^-21).
    // row 2: all weights 0. t starts at +0.0, so t = fma(-1e8, 0, +0) = +0 and with bias -0.0
    // y = fma(+0, 1, -0) = +0 (a t that started as the product -1e8 * 0 = -0 would give -0).
    for (std::size_t i = 0; i < 3; ++i) lowbit::detail::set_nibble(w.data.data(), i, 1);
    lowbit::detail::set_nibble(w.data.data(), 32, 3);
    lowbit::detail::set_nibble(w.data.data(), 33, 3);
    std::vector<float> a(64, 0.0f);
    a[0] = 1e8f;
    a[1] = 1.0f;
    a[2] = -1e8f;
    a[32] = -1.0f;
    a[33] = 1.0f + std::ldexp(1.0f, -23);
    const std::vector<float> bias = {0.0f, 0.0f, -0.0f};
    std::vector<float> y(6);
    REQUIRE(lowbit::ref::gemm_int4_f32(w.view(), a, 2, 32, bias, y, 3).ok());
    CHECK(y[0] == 0.0f);
    CHECK(y[4] == std::ldexp(3.0f, -23));
    CHECK(bits_of(y[2]) == 0u);
    CHECK(bits_of(y[5]) == 0u);
}

TEST_CASE("quantize_q8: zero and tiny blocks give d = 0 and q = 0, |q| <= 127", "[int4][ref]") {
    std::vector<float> x(96, 0.0f);
    for (std::size_t i = 32; i < 64; ++i) x[i] = (i % 2 ? 1.0f : -1.0f) * 1e-37f;  // 127 / 1e-37 overflows
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    for (std::size_t i = 64; i < 96; ++i) x[i] = nd(rng);
    q8_store q(1, 96);
    REQUIRE(lowbit::ref::quantize_q8(x, 1, 96, 96, q.buffer()).ok());
    CHECK(q.d[0] == 0.0f);
    CHECK(q.d[1] == 0.0f);
    for (std::size_t i = 0; i < 64; ++i) CHECK(q.q[i] == 0);
    int mx = 0;
    for (std::size_t i = 64; i < 96; ++i) mx = std::max(mx, std::abs(int(q.q[i])));
    CHECK(mx == 127);
    // 1e-36 is above the threshold: a normal block
    std::vector<float> x2(32, 1e-36f);
    q8_store q2(1, 32);
    REQUIRE(lowbit::ref::quantize_q8(x2, 1, 32, 32, q2.buffer()).ok());
    CHECK(q2.q[5] == 127);
    CHECK(q2.d[0] == 1e-36f / 127.0f);
}

// ---------------------------------------------------------------------------------------------
// the GEMM spec against numpy (exact rational fma)

TEST_CASE("gemm_int4_f32, quantize_q8, gemm_int4_q8 against the numpy golden data", "[int4][ref][golden]") {
    const std::string path = std::string(LOWBIT_TEST_DATA_DIR) + "/int4_gemm.txt";
    std::ifstream in(path);
    REQUIRE(in.good());
    std::string line;
    int cases = 0, lineno = 0;
    while (std::getline(in, line)) {
        ++lineno;
        if (line.empty() || line[0] == '#') continue;
        const auto t = tokens(line);
        std::size_t p = 0;
        auto next = [&]() -> const std::string& {
            REQUIRE(p < t.size());
            return t[p++];
        };
        auto next_u = [&]() { return static_cast<std::size_t>(std::stoul(next())); };
        auto next_f = [&]() { return std::strtof(next().c_str(), nullptr); };
        const format_id fmt = next() == "s4" ? format_id::s4 : format_id::u4;
        const std::size_t g = next_u();
        const bool f16 = next() == "f16";
        const std::size_t m = next_u(), n = next_u(), k = next_u();
        const bool has_bias = next_u() == 1;
        weights_store w = sized(fmt, n, k, g, f16);
        for (auto& b : w.data) b = static_cast<std::uint8_t>(next_u());
        for (auto& s : w.scales) s = next_f();
        for (auto& s : w.scales_f16) s = static_cast<std::uint16_t>(next_u());
        for (auto& z : w.zps) z = static_cast<std::uint8_t>(next_u());
        std::vector<float> a(m * k), bias(has_bias ? n : 0), y32(m * n), yq(m * n), d(m * k / 32);
        std::vector<int> qa(m * k);
        for (auto& v : a) v = next_f();
        for (auto& v : bias) v = next_f();
        for (auto& v : y32) v = next_f();
        for (auto& v : qa) v = std::stoi(next());
        for (auto& v : d) v = next_f();
        for (auto& v : yq) v = next_f();
        REQUIRE(p == t.size());
        INFO(path << ":" << lineno);

        std::vector<float> y(m * n, -7.0f);
        REQUIRE(lowbit::ref::gemm_int4_f32(w.view(), a, m, k, bias, y, n).ok());
        for (std::size_t i = 0; i < y.size(); ++i) {
            INFO("f32 path output " << i << ": lowbit " << y[i] << " numpy " << y32[i]);
            CHECK(bits_of(y[i]) == bits_of(y32[i]));
        }
        q8_store q(m, k);
        REQUIRE(lowbit::ref::quantize_q8(a, m, k, k, q.buffer()).ok());
        for (std::size_t i = 0; i < qa.size(); ++i) REQUIRE(int(q.q[i]) == qa[i]);
        for (std::size_t i = 0; i < d.size(); ++i) {
            REQUIRE(bits_of(q.d[i]) == bits_of(d[i]));
            int s = 0;
            for (std::size_t j = 0; j < 32; ++j) s += qa[i * 32 + j];
            REQUIRE(q.sums[i] == s);
        }
        REQUIRE(lowbit::ref::gemm_int4_q8(w.view(), q.view(), bias, y, n).ok());
        for (std::size_t i = 0; i < y.size(); ++i) {
            INFO("q8 path output " << i << ": lowbit " << y[i] << " numpy " << yq[i]);
            CHECK(bits_of(y[i]) == bits_of(yq[i]));
        }
        ++cases;
    }
    CHECK(cases == 10);
}

TEST_CASE("gemm_int4: leading dimensions, M rows independent, Inf / NaN activations propagate", "[int4][ref]") {
    std::mt19937 rng(3);
    const weights_store w = random_weights(rng, format_id::u4, 5, 64, 32, true);
    std::normal_distribution<float> nd;
    const std::size_t m = 3, lda = 70, ldy = 9;
    std::vector<float> a((m - 1) * lda + 64);
    for (auto& v : a) v = nd(rng);
    std::vector<float> y((m - 1) * ldy + 5, 42.0f);
    REQUIRE(lowbit::ref::gemm_int4_f32(w.view(), a, m, lda, {}, y, ldy).ok());
    for (std::size_t r = 0; r < m; ++r) {
        std::vector<float> y1(5);
        REQUIRE(lowbit::ref::gemm_int4_f32(w.view(), lowbit::span<const float>(a.data() + r * lda, 64), 1, 64, {}, y1, 5)
                    .ok());
        for (std::size_t n = 0; n < 5; ++n) CHECK(bits_of(y[r * ldy + n]) == bits_of(y1[n]));
        for (std::size_t n = 5; n < ldy && r + 1 < m; ++n) CHECK(y[r * ldy + n] == 42.0f);  // gaps untouched
    }
    a[3] = INFINITY;
    a[lda + 4] = NAN;
    REQUIRE(lowbit::ref::gemm_int4_f32(w.view(), a, m, lda, {}, y, ldy).ok());
    for (std::size_t n = 0; n < 5; ++n) {
        CHECK(!std::isfinite(y[n]));  // +-Inf, or NaN where a weight is 0 or signs meet
        CHECK(std::isnan(y[ldy + n]));
    }
}

TEST_CASE("gemm_int4 takes weights quantized by lowbit's per-group scheme (one-hot rows = dequantize)",
          "[int4][ref]") {
    // ref::quantize with scheme<s4, symmetric>.per_group(1, 32) writes exactly int4_weights'
    // data and scale order; with a one-hot activation row e_k the GEMV returns
    // fma(fma(1, q, 0), s, 0) = q * s, which is ref::dequantize's float(q - 0) * s.
    constexpr auto w4 = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>{}.per_group(1, 32);
    const std::size_t n = 5, k = 64;
    std::mt19937 rng(21);
    std::normal_distribution<float> nd(0.0f, 0.1f);
    std::vector<float> w(n * k), scales(n * k / 32), deq(n * k);
    for (auto& v : w) v = nd(rng);
    for (std::size_t g = 0; g < scales.size(); ++g) {
        float amax = 0.0f;
        for (std::size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(w[g * 32 + j]));
        scales[g] = amax / 7.0f;
    }
    weights_store ws = sized(format_id::s4, n, k, 32, false);
    ws.scales = scales;
    REQUIRE(lowbit::ref::quantize(w4, lowbit::shape{n, k}, {scales, {}}, w, ws.data).ok());
    REQUIRE(lowbit::ref::dequantize(w4, lowbit::shape{n, k}, {scales, {}}, ws.data, deq).ok());
    std::vector<float> eye(k * k, 0.0f), y(k * n);
    for (std::size_t c = 0; c < k; ++c) eye[c * k + c] = 1.0f;
    REQUIRE(lowbit::ref::gemm_int4_f32(ws.view(), eye, k, k, {}, y, n).ok());
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < k; ++c) REQUIRE(bits_of(y[c * n + r]) == bits_of(deq[r * k + c]));
}

// ---------------------------------------------------------------------------------------------
// ggml Q4_0 / Q8_0

TEST_CASE("Q4_0: a hand-built block, and lowbit <-> Q4_0 round trips bit for bit", "[int4][q4_0]") {
    weights_store w = sized(format_id::s4, 1, 32, 32, true);
    // element j = j - 8 (j < 16), element 16 + j = 7 - j: nibbles j and 15 - j
    for (std::size_t j = 0; j < 16; ++j) {
        lowbit::detail::set_nibble(w.data.data(), j, static_cast<int>(j) - 8);
        lowbit::detail::set_nibble(w.data.data(), 16 + j, 7 - static_cast<int>(j));
    }
    w.scales_f16 = {0x3C00};  // 1.0
    std::vector<std::uint8_t> blk(18);
    REQUIRE(lowbit::ref::to_q4_0(w.view(), blk).ok());
    CHECK(blk[0] == 0x00);
    CHECK(blk[1] == 0x3C);
    for (std::size_t j = 0; j < 16; ++j) CHECK(blk[2 + j] == (j | ((15 - j) << 4)));

    std::mt19937 rng(9);
    for (bool f16 : {true, false}) {
        weights_store src = random_weights(rng, format_id::s4, 7, 160, 32, f16);
        if (!f16)
            for (auto& s : src.scales) s = lowbit::f16_to_f32(lowbit::f32_to_f16(s));  // exactly halves
        std::vector<std::uint8_t> q(lowbit::ref::q4_0_size(7, 160));
        REQUIRE(lowbit::ref::to_q4_0(src.view(), q).ok());
        weights_store back = sized(format_id::s4, 7, 160, 32, f16);
        REQUIRE(lowbit::ref::from_q4_0(q, 7, 160, back.buffer()).ok());
        CHECK(back.data == src.data);
        CHECK(back.scales == src.scales);
        CHECK(back.scales_f16 == src.scales_f16);
        // and the dequantized values agree: d * (nibble - 8) == s * q
        for (std::size_t r = 0; r < 7; ++r)
            for (std::size_t c = 0; c < 160; ++c) {
                const std::uint8_t* b = q.data() + (r * 5 + c / 32) * 18;
                const std::size_t e = c % 32;
                const int nib = (e < 16 ? b[2 + e] : b[2 + e - 16] >> 4) & 0xF;
                REQUIRE(nib - 8 == src.view().value(r, c));
            }
    }
    // every Q4_0 byte string is valid: Q4_0 -> lowbit -> Q4_0 is the identity
    std::vector<std::uint8_t> raw(lowbit::ref::q4_0_size(3, 64));
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& b : raw) b = static_cast<std::uint8_t>(byte(rng));
    weights_store mid = sized(format_id::s4, 3, 64, 32, true);
    REQUIRE(lowbit::ref::from_q4_0(raw, 3, 64, mid.buffer()).ok());
    std::vector<std::uint8_t> again(raw.size());
    mid.scales_f16.assign(mid.scales_f16.size(), 0x3C00);  // (non-finite d would be refused by the weights check)
    std::vector<std::uint8_t> raw2 = raw;
    for (std::size_t i = 0; i < 6; ++i) raw2[i * 18] = 0, raw2[i * 18 + 1] = 0x3C;
    REQUIRE(lowbit::ref::to_q4_0(mid.view(), again).ok());
    CHECK(again == raw2);
}

TEST_CASE("Q4_0 errors", "[int4][q4_0][errors]") {
    std::mt19937 rng(1);
    weights_store w = random_weights(rng, format_id::s4, 2, 64, 32, false);
    for (auto& s : w.scales) s = lowbit::f16_to_f32(lowbit::f32_to_f16(s));
    w.scales[1] = 0.1f;  // not a binary16
    std::vector<std::uint8_t> q(lowbit::ref::q4_0_size(2, 64), 0xAB);
    CHECK_THROWS_WITH(lowbit::ref::to_q4_0(w.view(), q), Catch::Contains("'w.scales[i]' = 0.1"));
    w.scales[1] = 0.5f;
    std::vector<std::uint8_t> small(q.size() - 1);
    CHECK_THROWS_WITH(lowbit::ref::to_q4_0(w.view(), small), Catch::Contains("'blocks.size()' = 71"));
    weights_store g64 = random_weights(rng, format_id::s4, 2, 64, 64, true);
    CHECK_THROWS_WITH(lowbit::ref::to_q4_0(g64.view(), q), Catch::Contains("'w.group_size' = 64"));
    weights_store u = random_weights(rng, format_id::u4, 2, 64, 32, true);
    CHECK_THROWS_WITH(lowbit::ref::to_q4_0(u.view(), q), Catch::Contains("'w.format'"));
    CHECK(q == std::vector<std::uint8_t>(q.size(), 0xAB));
    weights_store out = sized(format_id::s4, 2, 64, 32, true);
    CHECK_THROWS_WITH(lowbit::ref::from_q4_0(q, 2, 48, out.buffer()), Catch::Contains("'k' = 48"));
    CHECK_THROWS_WITH(lowbit::ref::from_q4_0(q, 3, 64, out.buffer()), Catch::Contains("'out.n' = 2"));
    CHECK_THROWS_WITH(lowbit::ref::from_q4_0(small, 2, 64, out.buffer()), Catch::Contains("'blocks.size()' = 71"));
    CHECK(out.data == std::vector<std::uint8_t>(64, 0));
}

TEST_CASE("Q8_0 blocks: binary16 d, the q of quantize_q8", "[int4][q8_0]") {
    std::vector<float> x(64, 0.0f);
    x[0] = 127.0f;
    x[1] = 2.5f;
    x[2] = -3.5f;
    for (std::size_t i = 32; i < 64; ++i) x[i] = 0.001f * static_cast<float>(i);
    std::vector<std::uint8_t> blk(68);
    REQUIRE(lowbit::ref::quantize_q8_0(x, blk).ok());
    CHECK(blk[0] == 0x00);
    CHECK(blk[1] == 0x3C);  // d = 1
    CHECK(blk[2] == 127);
    CHECK(blk[3] == 2);
    CHECK(static_cast<std::int8_t>(blk[4]) == -4);
    q8_store q(1, 64);
    REQUIRE(lowbit::ref::quantize_q8(x, 1, 64, 64, q.buffer()).ok());
    const std::uint16_t d1 = static_cast<std::uint16_t>(blk[34] | (blk[35] << 8));
    CHECK(d1 == lowbit::f32_to_f16(q.d[1]));
    CHECK(d1 == lowbit::f32_to_f16(0.063f / 127.0f));
    for (std::size_t j = 0; j < 32; ++j) CHECK(static_cast<std::int8_t>(blk[36 + j]) == q.q[32 + j]);
    x[40] = NAN;
    CHECK_THROWS_WITH(lowbit::ref::quantize_q8_0(x, blk), Catch::Contains("'x[i]' = nan"));
    CHECK_THROWS_WITH(lowbit::ref::quantize_q8_0(lowbit::span<const float>(x.data(), 33), blk),
                      Catch::Contains("'x.size()' = 33"));
}

// ---------------------------------------------------------------------------------------------
// ONNX

TEST_CASE("ONNX: axis 0 transposes data, scales and zero points (hand-checked)", "[int4][onnx]") {
    // u4 [N = 2, K = 32], G = 32: row 0 nibbles c % 16, row 1 nibbles 15 - c % 16; zp 3, 12
    weights_store w = sized(format_id::u4, 2, 32, 32, false);
    for (std::size_t c = 0; c < 32; ++c) {
        lowbit::detail::set_nibble(w.data.data(), c, static_cast<int>(c % 16));
        lowbit::detail::set_nibble(w.data.data(), 32 + c, 15 - static_cast<int>(c % 16));
    }
    w.scales = {0.5f, 2.0f};
    w.zps = {3, 12};
    std::vector<std::uint8_t> data(32), zp(1);
    std::vector<float> sc(2);
    lowbit::onnx_int4_buffer o;
    o.data = data;
    o.scales = sc;
    o.zero_points = zp;
    REQUIRE(lowbit::ref::to_onnx(w.view(), 0, o).ok());
    CHECK(!o.is_signed);
    CHECK(o.rows == 32);
    CHECK(o.cols == 2);
    CHECK(o.axis == 0);
    CHECK(o.block_size == 32);
    // x[k][n] at k * 2 + n: byte k = (row 0's nibble) | (row 1's nibble << 4)
    for (std::size_t c = 0; c < 32; ++c) CHECK(data[c] == ((c % 16) | ((15 - c % 16) << 4)));
    CHECK(sc == std::vector<float>{0.5f, 2.0f});  // [K/G = 1, N = 2]
    CHECK(zp[0] == 0xC3);
    // axis 1: the same bytes as lowbit
    REQUIRE(lowbit::ref::to_onnx(w.view(), 1, o).ok());
    CHECK(data == w.data);
}

TEST_CASE("ONNX: lowbit -> ONNX -> lowbit round trips, both axes, s4 / u4, f32 / f16", "[int4][onnx]") {
    std::mt19937 rng(17);
    for (format_id fmt : {format_id::s4, format_id::u4})
        for (bool f16 : {false, true})
            for (std::size_t axis : {0u, 1u})
                for (std::size_t g : {32u, 64u, 128u}) {
                    const std::size_t n = 5, k = 256;  // N * K / G odd for G = 128 (10 groups: even); use n = 5
                    const weights_store src = random_weights(rng, fmt, n, k, g, f16);
                    const std::size_t params = n * (k / g);
                    std::vector<std::uint8_t> data(n * k / 2), zp(fmt == format_id::u4 ? (params + 1) / 2 : 0);
                    std::vector<float> sc(f16 ? 0 : params);
                    std::vector<std::uint16_t> sc16(f16 ? params : 0);
                    lowbit::onnx_int4_buffer o;
                    o.data = data;
                    o.scales = sc;
                    o.scales_f16 = sc16;
                    o.zero_points = zp;
                    REQUIRE(lowbit::ref::to_onnx(src.view(), axis, o).ok());
                    CHECK(o.is_signed == (fmt == format_id::s4));
                    weights_store back = sized(fmt, n, k, g, f16);
                    REQUIRE(lowbit::ref::from_onnx(o.view(), back.buffer()).ok());
                    INFO("fmt " << int(fmt) << " f16 " << f16 << " axis " << axis << " g " << g);
                    CHECK(back.data == src.data);
                    CHECK(back.scales == src.scales);
                    CHECK(back.scales_f16 == src.scales_f16);
                    CHECK(back.zps == src.zps);
                    // ONNX's dequantization (x - zp) * scale element by element equals lowbit's
                    const auto ov = o.view();
                    for (std::size_t r = 0; r < n; ++r)
                        for (std::size_t c = 0; c < k; ++c) {
                            const std::size_t xi = axis == 0 ? c * n + r : r * k + c;
                            const std::size_t si = axis == 0 ? (c / g) * n + r : r * (k / g) + c / g;
                            int x = lowbit::get_nibble(ov.data.data(), xi);
                            if (ov.is_signed) x = lowbit::sign_extend_s4(static_cast<std::uint8_t>(x));
                            const int z = ov.zero_points.empty() ? 0 : lowbit::get_nibble(ov.zero_points.data(), si);
                            REQUIRE(x - z == src.view().value(r, c));
                        }
                }
}

TEST_CASE("ONNX: INT4 with zero points becomes u4 (shifted by 8), same values", "[int4][onnx]") {
    // INT4 [2, 32], axis 1, zero points -3 and 5
    std::mt19937 rng(2);
    std::uniform_int_distribution<int> byte(0, 255);
    std::vector<std::uint8_t> data(32);
    for (auto& b : data) b = static_cast<std::uint8_t>(byte(rng));
    const std::vector<std::uint8_t> zp = {static_cast<std::uint8_t>(lowbit::pack_nibbles(-3, 5))};
    const std::vector<float> sc = {0.25f, 4.0f};
    lowbit::onnx_int4 in;
    in.is_signed = true;
    in.rows = 2;
    in.cols = 32;
    in.axis = 1;
    in.block_size = 32;
    in.data = data;
    in.scales = sc;
    in.zero_points = zp;
    weights_store u = sized(format_id::u4, 2, 32, 32, false);
    REQUIRE(lowbit::ref::from_onnx(in, u.buffer()).ok());
    CHECK(u.zps == std::vector<std::uint8_t>{5, 13});
    for (std::size_t r = 0; r < 2; ++r)
        for (std::size_t c = 0; c < 32; ++c) {
            const int x = lowbit::sign_extend_s4(lowbit::get_nibble(data.data(), r * 32 + c));
            REQUIRE(u.view().value(r, c) == x - (r == 0 ? -3 : 5));
        }
    // into s4: refused (nonzero zero point), nothing written
    weights_store s = sized(format_id::s4, 2, 32, 32, false);
    CHECK_THROWS_WITH(lowbit::ref::from_onnx(in, s.buffer()), Catch::Contains("'in.zero_points[i]' = -3"));
    CHECK(s.data == std::vector<std::uint8_t>(32, 0));
    // zero points all 0: s4 accepted
    const std::vector<std::uint8_t> zp0 = {0};
    in.zero_points = zp0;
    REQUIRE(lowbit::ref::from_onnx(in, s.buffer()).ok());
    CHECK(s.data == data);
    // UINT4 -> s4 refused; block size not dividing / not a multiple of 32
    in.is_signed = false;
    CHECK_THROWS_WITH(lowbit::ref::from_onnx(in, s.buffer()), Catch::Contains("'out.format'"));
    in.block_size = 16;
    CHECK_THROWS_WITH(lowbit::ref::from_onnx(in, u.buffer()), Catch::Contains("'in.block_size' = 16"));
    in.block_size = 32;
    in.axis = 2;
    CHECK_THROWS_WITH(lowbit::ref::from_onnx(in, u.buffer()), Catch::Contains("'in.axis' = 2"));
}

// ---------------------------------------------------------------------------------------------
// argument checks

TEST_CASE("gemm_int4 errors name the argument and write nothing", "[int4][ref][errors]") {
    std::mt19937 rng(4);
    const weights_store good = random_weights(rng, format_id::u4, 3, 64, 32, false);
    std::vector<float> a(64, 1.0f), y(3, 9.0f);
    const std::vector<float> y0 = y;
    auto f32_call = [&](const weights_store& w) { return lowbit::ref::gemm_int4_f32(w.view(), a, 1, 64, {}, y, 3); };
    REQUIRE(f32_call(good).ok());
    y = y0;

    weights_store w = good;
    w.g = 48;
    CHECK_THROWS_WITH(f32_call(w), Catch::Contains("'w.group_size' = 48"));
    w = good;
    w.g = 0;
    CHECK_THROWS_WITH(f32_call(w), Catch::Contains("'w.group_size' = 0"));
    w = good;
    w.k = 96;
    w.g = 64;
    CHECK_THROWS_WITH(f32_call(w), Catch::Contains("'w.k' = 96"));
    w = good;
    w.data.pop_back();
    CHECK_THROWS_WITH(f32_call(w), Catch::Contains("'w.data.size()' = 95"));
    w = good;
    w.scales.pop_back();
    CHECK_THROWS_WITH(f32_call(w), Catch::Contains("'w.scales.size()' = 5"));
    w = good;
    w.scales[2] = INFINITY;
    CHECK_THROWS_WITH(f32_call(w), Catch::Contains("'w.scales[i]' = inf"));
    w = good;
    w.zps[4] = 16;
    CHECK_THROWS_WITH(f32_call(w), Catch::Contains("'w.zero_points[i]' = 16"));
    w = good;
    w.zps.clear();
    CHECK_THROWS_WITH(f32_call(w), Catch::Contains("'w.zero_points.size()' = 0"));
    w = good;
    w.format = format_id::s8;
    CHECK_THROWS_WITH(f32_call(w), Catch::Contains("'w.format'"));
    w = good;
    w.f16 = true;
    w.scales_f16.assign(6, 0x7C00);  // Inf
    CHECK_THROWS_WITH(f32_call(w), Catch::Contains("'w.scales_f16[i]' = 31744"));
    {
        lowbit::int4_weights both = good.view();
        const std::vector<std::uint16_t> h(6, 0x3C00);
        both.scales_f16 = h;
        CHECK_THROWS_WITH(lowbit::ref::gemm_int4_f32(both, a, 1, 64, {}, y, 3), Catch::Contains("'w.scales.size()' = 6"));
    }
    const std::vector<float> bias2(2, 0.0f), bias_nan = {0.0f, NAN, 0.0f};
    CHECK_THROWS_WITH(lowbit::ref::gemm_int4_f32(good.view(), a, 1, 64, bias2, y, 3), Catch::Contains("'bias.size()' = 2"));
    CHECK_THROWS_WITH(lowbit::ref::gemm_int4_f32(good.view(), a, 1, 64, bias_nan, y, 3),
                      Catch::Contains("'bias[i]' = nan"));
    CHECK_THROWS_WITH(lowbit::ref::gemm_int4_f32(good.view(), a, 2, 63, {}, y, 3), Catch::Contains("'lda' = 63"));
    CHECK_THROWS_WITH(lowbit::ref::gemm_int4_f32(good.view(), a, 2, 64, {}, y, 3), Catch::Contains("'a.size()' = 64"));
    CHECK_THROWS_WITH(lowbit::ref::gemm_int4_f32(good.view(), a, 1, 64, {}, y, 2), Catch::Contains("'ldy' = 2"));
    std::vector<float> a2(128, 1.0f);
    CHECK_THROWS_WITH(lowbit::ref::gemm_int4_f32(good.view(), a2, 2, 64, {}, y, 3), Catch::Contains("'y.size()' = 3"));
    CHECK(y == y0);

    // q8
    q8_store q(1, 64);
    REQUIRE(lowbit::ref::quantize_q8(a, 1, 64, 64, q.buffer()).ok());
    q.sums[1] += 1;
    CHECK_THROWS_WITH(lowbit::ref::gemm_int4_q8(good.view(), q.view(), {}, y, 3), Catch::Contains("'a.sums[i]'"));
    q.sums[1] -= 1;
    q.d[0] = NAN;
    CHECK_THROWS_WITH(lowbit::ref::gemm_int4_q8(good.view(), q.view(), {}, y, 3), Catch::Contains("'a.scales[i]' = nan"));
    q8_store q96(1, 96);
    CHECK_THROWS_WITH(lowbit::ref::gemm_int4_q8(good.view(), q96.view(), {}, y, 3), Catch::Contains("'a.k' = 96"));
    lowbit::q8_activations bad = q.view();
    bad.sums = lowbit::span<const std::int32_t>(q.sums.data(), 1);
    q.d[0] = 1.0f;
    CHECK_THROWS_WITH(lowbit::ref::gemm_int4_q8(good.view(), bad, {}, y, 3), Catch::Contains("'a.sums.size()' = 1"));
    CHECK(y == y0);
    const std::vector<std::int8_t> q_before = q.q;
    a[7] = -INFINITY;
    CHECK_THROWS_WITH(lowbit::ref::quantize_q8(a, 1, 64, 64, q.buffer()), Catch::Contains("'x[i]' = -inf"));
    CHECK_THROWS_WITH(lowbit::ref::quantize_q8(a, 1, 48, 64, q.buffer()), Catch::Contains("'k' = 48"));
    CHECK_THROWS_WITH(lowbit::ref::quantize_q8(a, 2, 64, 64, q.buffer()), Catch::Contains("'out.m' = 1"));
    CHECK(q.q == q_before);

    // empty shapes are fine
    const weights_store none = random_weights(rng, format_id::s4, 0, 64, 32, false);
    REQUIRE(lowbit::ref::gemm_int4_f32(none.view(), a, 1, 64, {}, y, 3).ok());
    const weights_store k0 = random_weights(rng, format_id::s4, 3, 0, 32, false);
    const std::vector<float> bias3 = {1.0f, 2.0f, 3.0f};
    REQUIRE(lowbit::ref::gemm_int4_f32(k0.view(), a, 1, 0, bias3, y, 3).ok());
    CHECK(y == bias3);
}
