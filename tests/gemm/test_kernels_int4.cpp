// tests/gemm/test_kernels_int4.cpp: every ISA path of kernels/gemm_int4.hpp against the spec
// (ref::gemm_int4_f32 / ref::gemm_int4_q8) bit for bit, at sizes that hit every tail (N not a
// multiple of 16 or of the 4-tile block, M not a multiple of the 2-row block, each group size),
// output-row ranges, leading dimensions, extreme values, the packed layout, errors; and the
// binary16 conversions against the F16C instructions (AArch64: fcvtl / fcvtn, which the NEON
// int4 kernels use for binary16 scales). Compiled with -march=native on x86, the ARMv8.0
// baseline on AArch64; an ISA this machine lacks is skipped with a WARN.
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

#include <lowbit/kernels/gemm_int4.hpp>

#include "int4_test_util.hpp"
#include "lowbit_catch.hpp"

namespace lowbit_test_int4 {

using lowbit::format_id;
using lowbit::kernels::int4_isa;

using int4_test::bits_of;
using weights = int4_test::weights_store;
using q8 = int4_test::q8_store;

static bool same(float a, float b) { return bits_of(a) == bits_of(b) || (std::isnan(a) && std::isnan(b)); }

// Random weights with scales in [-0.3, 0.3) (int4_test::random_weights).
static weights make_weights(std::mt19937& rng, format_id fmt, std::size_t n, std::size_t k, std::size_t g, bool f16) {
    return int4_test::random_weights(rng, fmt, n, k, g, f16, 0.3f);
}

static std::vector<std::uint8_t> pack(const weights& w) {
    std::vector<std::uint8_t> p(lowbit::kernels::packed_int4_size(w.view()));
    REQUIRE(lowbit::kernels::pack_int4(w.view(), p).ok());
    return p;
}

static const std::array<int4_isa, 6> all_isas = {int4_isa::scalar,      int4_isa::avx2, int4_isa::avx512bw,
                                                 int4_isa::avx512_vnni, int4_isa::neon, int4_isa::neon_dotprod};

static bool skip(int4_isa isa) {
    if (lowbit::kernels::int4_isa_available(isa)) return false;
    WARN("skipped: this build / CPU cannot run int4 isa " << lowbit::kernels::to_string(isa));
    return true;
}

// Runs both paths of every ISA against the spec for one shape; returns the number of outputs
// compared.
static std::size_t compare_all(const weights& w, const std::vector<float>& a, std::size_t m, std::size_t lda,
                               const std::vector<float>& bias, std::size_t ldy) {
    const std::vector<std::uint8_t> packed = pack(w);
    const std::size_t ysize = m == 0 ? 0 : (m - 1) * ldy + w.n;
    std::vector<float> want(ysize, -3.0f), want_q(ysize, -3.0f);
    REQUIRE(lowbit::ref::gemm_int4_f32(w.view(), a, m, lda, bias, want, ldy).ok());
    q8 qa(m, w.k);
    std::vector<float> dense(m * w.k);
    bool finite = true;
    for (std::size_t r = 0; r < m; ++r)
        for (std::size_t c = 0; c < w.k; ++c) {
            dense[r * w.k + c] = a[r * lda + c];
            finite = finite && std::isfinite(a[r * lda + c]);
        }
    if (finite) {  // (quantize_q8 refuses non-finite activations: the q8 path then compares zeros)
        REQUIRE(lowbit::ref::quantize_q8(dense, m, w.k, w.k, qa.buffer()).ok());
        REQUIRE(lowbit::ref::gemm_int4_q8(w.view(), qa.view(), bias, want_q, ldy).ok());
    } else {
        REQUIRE(lowbit::ref::gemm_int4_q8(w.view(), qa.view(), bias, want_q, ldy).ok());
    }
    std::size_t compared = 0;
    for (int4_isa isa : all_isas) {
        if (!lowbit::kernels::int4_isa_available(isa)) continue;
        std::vector<float> y(ysize, -3.0f), yq(ysize, -3.0f);
        REQUIRE(lowbit::kernels::gemm_int4_f32(packed, a, m, lda, bias, y, ldy, 0, w.n, isa).ok());
        REQUIRE(lowbit::kernels::gemm_int4_q8(packed, qa.view(), bias, yq, ldy, 0, w.n, isa).ok());
        for (std::size_t i = 0; i < ysize; ++i) {
            INFO("isa " << lowbit::kernels::to_string(isa) << " fmt " << int(w.format) << " f16 " << w.f16 << " N " << w.n
                        << " K " << w.k << " G " << w.g << " M " << m << " index " << i << ": f32 path " << y[i]
                        << " vs spec " << want[i] << "; q8 path " << yq[i] << " vs spec " << want_q[i]);
            REQUIRE(same(y[i], want[i]));
            REQUIRE(same(yq[i], want_q[i]));
        }
        compared += 2 * ysize;
    }
    return compared;
}

}  // namespace lowbit_test_int4

using namespace lowbit_test_int4;

TEST_CASE("int4 kernels: ISA names and availability", "[int4][kernels]") {
    namespace kn = lowbit::kernels;
    CHECK(std::string(kn::to_string(int4_isa::neon)) == "neon");
    CHECK(std::string(kn::to_string(int4_isa::neon_dotprod)) == "neon_dotprod");
    const kn::cpu_features& f = kn::cpu();
    const int4_isa best = kn::int4_best_isa();
    CHECK(kn::int4_isa_available(best));
#if defined(__aarch64__)
    CHECK(kn::int4_isa_available(int4_isa::neon));
    CHECK(kn::int4_isa_available(int4_isa::neon_dotprod) == f.dotprod);
    CHECK(best == (f.dotprod ? int4_isa::neon_dotprod : int4_isa::neon));
    CHECK_FALSE(kn::int4_isa_available(int4_isa::avx2));
#else
    CHECK_FALSE(kn::int4_isa_available(int4_isa::neon));
    CHECK_FALSE(kn::int4_isa_available(int4_isa::neon_dotprod));
    (void)f;
#endif
}

TEST_CASE("int4 kernels: every ISA equals the spec at tail sizes, s4/u4, f32/f16 scales, each group size",
          "[int4][kernels]") {
    for (int4_isa isa : all_isas) (void)skip(isa);
    std::mt19937 rng(12345);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    struct shape {
        std::size_t n, k, g;
    };
    const std::vector<shape> shapes = {{1, 32, 32},   {15, 64, 32},  {16, 64, 64},  {17, 96, 32},  {31, 128, 128},
                                       {33, 128, 64}, {47, 256, 32}, {64, 160, 32}, {65, 256, 256}, {2, 384, 128},
                                       {80, 64, 32},  {3, 32, 32}};
    std::size_t compared = 0;
    for (format_id fmt : {format_id::s4, format_id::u4})
        for (bool f16 : {false, true})
            for (const shape& s : shapes)
                for (std::size_t m : {1u, 2u, 3u, 5u}) {
                    const weights w = make_weights(rng, fmt, s.n, s.k, s.g, f16);
                    std::vector<float> a(m * s.k);
                    for (auto& v : a) v = nd(rng) * 4.0f;
                    std::vector<float> bias;
                    if (m % 2 == 1) {
                        bias.resize(s.n);
                        for (auto& v : bias) v = nd(rng);
                    }
                    compared += compare_all(w, a, m, s.k, bias, s.n);
                }
    CHECK(compared > 0);
}

TEST_CASE("int4 kernels: small-M GEMM up to M = 16, leading dimensions, untouched gaps", "[int4][kernels]") {
    std::mt19937 rng(777);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (std::size_t m : {4u, 7u, 16u}) {
        const weights w = make_weights(rng, format_id::u4, 50, 192, 64, m == 7);
        const std::size_t lda = 200, ldy = 57;
        std::vector<float> a((m - 1) * lda + 192);
        for (auto& v : a) v = nd(rng);
        compare_all(w, a, m, lda, {}, ldy);
        // gaps between output rows stay untouched
        const std::vector<std::uint8_t> packed = pack(w);
        for (int4_isa isa : all_isas) {
            if (!lowbit::kernels::int4_isa_available(isa)) continue;
            std::vector<float> y((m - 1) * ldy + 50, 99.0f);
            REQUIRE(lowbit::kernels::gemm_int4_f32(packed, a, m, lda, {}, y, ldy, 0, 50, isa).ok());
            for (std::size_t r = 0; r + 1 < m; ++r)
                for (std::size_t n = 50; n < ldy; ++n) REQUIRE(y[r * ldy + n] == 99.0f);
        }
    }
}

TEST_CASE("int4 kernels: output-row ranges write exactly rows n0 .. n1 - 1", "[int4][kernels]") {
    std::mt19937 rng(31);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const weights w = make_weights(rng, format_id::s4, 100, 128, 32, true);
    const std::vector<std::uint8_t> packed = pack(w);
    const std::size_t m = 3;
    std::vector<float> a(m * 128);
    for (auto& v : a) v = nd(rng);
    std::vector<float> want(m * 100);
    REQUIRE(lowbit::ref::gemm_int4_f32(w.view(), a, m, 128, {}, want, 100).ok());
    q8 qa(m, 128);
    REQUIRE(lowbit::kernels::quantize_q8(a, m, 128, 128, qa.buffer()).ok());
    std::vector<float> want_q(m * 100);
    REQUIRE(lowbit::ref::gemm_int4_q8(w.view(), qa.view(), {}, want_q, 100).ok());
    const std::vector<std::pair<std::size_t, std::size_t>> ranges = {{0, 100}, {0, 16}, {16, 64}, {5, 37},
                                                                     {63, 65}, {99, 100}, {40, 40}, {64, 100}};
    for (int4_isa isa : all_isas) {
        if (!lowbit::kernels::int4_isa_available(isa)) continue;
        for (const auto& rg : ranges) {
            std::vector<float> y(m * 100, 55.0f), yq(m * 100, 55.0f);
            REQUIRE(lowbit::kernels::gemm_int4_f32(packed, a, m, 128, {}, y, 100, rg.first, rg.second, isa).ok());
            REQUIRE(lowbit::kernels::gemm_int4_q8(packed, qa.view(), {}, yq, 100, rg.first, rg.second, isa).ok());
            for (std::size_t r = 0; r < m; ++r)
                for (std::size_t n = 0; n < 100; ++n) {
                    const bool in = n >= rg.first && n < rg.second;
                    INFO("isa " << lowbit::kernels::to_string(isa) << " range " << rg.first << ".." << rg.second << " n " << n);
                    REQUIRE(same(y[r * 100 + n], in ? want[r * 100 + n] : 55.0f));
                    REQUIRE(same(yq[r * 100 + n], in ? want_q[r * 100 + n] : 55.0f));
                }
        }
    }
}

TEST_CASE("int4 kernels: extreme values, K = 4096, NaN / Inf activations", "[int4][kernels]") {
    std::mt19937 rng(8);
    for (format_id fmt : {format_id::s4, format_id::u4}) {
        // every weight at its extreme: s4 -8 / 7 alternating rows; u4 nibble 15 with zero point 0 or 0 with 15
        weights w = make_weights(rng, fmt, 40, 4096, 128, false);
        for (std::size_t r = 0; r < w.n; ++r)
            for (std::size_t i = 0; i < w.k / 2; ++i) w.data[r * w.k / 2 + i] = (r % 2) ? 0x77 : (fmt == format_id::s4 ? 0x88 : 0xFF);
        for (auto& z : w.zps) z = (z % 2) ? 15 : 0;
        std::vector<float> a(2 * 4096);
        for (std::size_t i = 0; i < a.size(); ++i) a[i] = (i % 3 == 0) ? -1000.0f : 1000.0f;
        compare_all(w, a, 2, 4096, {}, 40);
        // q8 with hand-made extreme activations: -128 (allowed in a q8_activations) and 127
        const std::vector<std::uint8_t> packed = pack(w);
        q8 qa(2, 4096);
        for (std::size_t i = 0; i < qa.q.size(); ++i) qa.q[i] = (i / 4096 == 0) ? std::int8_t(-128) : std::int8_t(127);
        for (std::size_t b = 0; b < qa.d.size(); ++b) {
            qa.d[b] = 0.5f;
            qa.sums[b] = b < 128 ? -128 * 32 : 127 * 32;
        }
        std::vector<float> want(80), y(80);
        REQUIRE(lowbit::ref::gemm_int4_q8(w.view(), qa.view(), {}, want, 40).ok());
        for (int4_isa isa : all_isas) {
            if (!lowbit::kernels::int4_isa_available(isa)) continue;
            REQUIRE(lowbit::kernels::gemm_int4_q8(packed, qa.view(), {}, y, 40, 0, 40, isa).ok());
            for (std::size_t i = 0; i < 80; ++i) REQUIRE(same(y[i], want[i]));
        }
    }
    // non-finite activations (f32 path): NaN-ness and Infs agree with the spec
    const weights w = make_weights(rng, format_id::s4, 20, 64, 32, true);
    std::vector<float> a(3 * 64, 1.0f);
    a[5] = INFINITY;
    a[64 + 7] = NAN;
    a[128 + 1] = -INFINITY;
    a[128 + 40] = 3e38f;
    a[128 + 41] = 3e38f;
    compare_all(w, a, 3, 64, {}, 20);
}

TEST_CASE("int4 kernels: quantize_q8 equals the reference on every ISA", "[int4][kernels]") {
    std::mt19937 rng(99);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const std::size_t m = 5, k = 256, ldx = 260;
    std::vector<float> x((m - 1) * ldx + k);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = nd(rng) * std::ldexp(1.0f, static_cast<int>(i % 40) - 20);
    for (std::size_t c = 0; c < 32; ++c) x[c] = 0.0f;                                   // zero block
    for (std::size_t c = 32; c < 64; ++c) x[c] = (c % 2 ? 1e-37f : -2e-38f);            // 127 / amax overflows
    for (std::size_t c = 64; c < 96; ++c) x[c] = 0.5f * static_cast<float>(c) - 40.0f;   // a 0.5 grid
    x[ldx + 0] = 127.0f;                                                                  // id = 1: ties below
    for (std::size_t c = 1; c < 32; ++c) x[ldx + c] = 0.5f * static_cast<float>(c) - 8.0f;
    q8 want(m, k);
    REQUIRE(lowbit::ref::quantize_q8(x, m, k, ldx, want.buffer()).ok());
    for (int4_isa isa : all_isas) {
        if (!lowbit::kernels::int4_isa_available(isa)) continue;
        q8 got(m, k);
        REQUIRE(lowbit::kernels::quantize_q8(x, m, k, ldx, got.buffer(), isa).ok());
        CHECK(got.q == want.q);
        CHECK(got.sums == want.sums);
        for (std::size_t i = 0; i < want.d.size(); ++i) REQUIRE(bits_of(got.d[i]) == bits_of(want.d[i]));
        // errors as the reference, nothing written
        std::vector<float> bad = x;
        bad[3 * ldx + 100] = NAN;
        q8 untouched(m, k);
        CHECK_THROWS_WITH(lowbit::kernels::quantize_q8(bad, m, k, ldx, untouched.buffer(), isa),
                          Catch::Contains("'x[i]' = nan"));
        CHECK(untouched.q == std::vector<std::int8_t>(m * k, 0));
        CHECK_THROWS_WITH(lowbit::kernels::quantize_q8(x, m, k, k - 1, untouched.buffer(), isa),
                          Catch::Contains("'lda'"));
    }
}

TEST_CASE("int4 kernels: empty shapes (N = 0, K = 0, M = 0)", "[int4][kernels]") {
    std::mt19937 rng(6);
    const weights k0 = make_weights(rng, format_id::u4, 20, 0, 32, false);
    const std::vector<std::uint8_t> p0 = pack(k0);
    CHECK(p0.size() == 64);
    std::vector<float> bias(20), y(40, 5.0f);
    for (std::size_t i = 0; i < 20; ++i) bias[i] = static_cast<float>(i) - 3.5f;
    const std::vector<float> none;
    q8 qa(2, 0);
    for (int4_isa isa : all_isas) {
        if (!lowbit::kernels::int4_isa_available(isa)) continue;
        REQUIRE(lowbit::kernels::gemm_int4_f32(p0, none, 2, 0, bias, y, 20, 0, 20, isa).ok());
        for (std::size_t i = 0; i < 40; ++i) REQUIRE(y[i] == bias[i % 20]);  // K = 0: y = bias
        std::fill(y.begin(), y.end(), 5.0f);
        REQUIRE(lowbit::kernels::gemm_int4_q8(p0, qa.view(), {}, y, 20, 0, 20, isa).ok());
        for (std::size_t i = 0; i < 40; ++i) REQUIRE(bits_of(y[i]) == 0u);  // +0.0
    }
    const weights n0 = make_weights(rng, format_id::s4, 0, 64, 32, true);
    const std::vector<std::uint8_t> pn = pack(n0);
    std::vector<float> a(64, 1.0f), y0;
    REQUIRE(lowbit::kernels::gemm_int4_f32(pn, a, 1, 64, {}, y0, 0).ok());
    const std::vector<std::uint8_t> p3 = pack(make_weights(rng, format_id::s4, 3, 64, 32, false));
    REQUIRE(lowbit::kernels::gemm_int4_f32(p3, none, 0, 64, {}, y0, 3).ok());
}

TEST_CASE("int4 kernels: the packed layout, byte by byte", "[int4][kernels][layout]") {
    // s4 [N = 2, K = 32], G = 32: row 0 element k = (k % 16) - 8, row 1 element k = 7 - (k % 16)
    weights w;
    w.format = format_id::s4;
    w.n = 2;
    w.k = 32;
    w.g = 32;
    w.data.assign(32, 0);
    for (std::size_t k = 0; k < 32; ++k) {
        lowbit::detail::set_nibble(w.data.data(), k, static_cast<int>(k % 16) - 8);
        lowbit::detail::set_nibble(w.data.data(), 32 + k, 7 - static_cast<int>(k % 16));
    }
    w.scales = {0.5f, -2.0f};
    const std::vector<std::uint8_t> p = pack(w);
    // header 64 + one tile: weights 4 chunks * 64 = 256, scales 16 * 4 = 64 -> 320 bytes
    REQUIRE(p.size() == 64 + 320);
    CHECK(p[0] == 'L');
    CHECK(p[1] == 'B');
    CHECK(p[2] == '4');
    CHECK(p[3] == 'W');
    const std::uint8_t* tile = p.data() + 64;
    for (std::size_t c = 0; c < 4; ++c)
        for (std::size_t i = 0; i < 4; ++i) {
            const std::size_t k0 = 8 * c + i, k1 = k0 + 4;
            // stored u = q + 8: row 0 u = k % 16, row 1 u = 15 - k % 16
            CHECK(tile[c * 64 + 0 + i] == ((k0 % 16) | ((k1 % 16) << 4)));
            CHECK(tile[c * 64 + 4 + i] == ((15 - k0 % 16) | ((15 - k1 % 16) << 4)));
            CHECK(tile[c * 64 + 8 + i] == 0x88);  // padding row 2: weight 0
        }
    float s0 = 0, s1 = 0, s2 = 1;
    std::memcpy(&s0, tile + 256, 4);
    std::memcpy(&s1, tile + 260, 4);
    std::memcpy(&s2, tile + 264, 4);
    CHECK(s0 == 0.5f);
    CHECK(s1 == -2.0f);
    CHECK(s2 == 0.0f);
}

TEST_CASE("int4 kernels: errors name the argument and write nothing", "[int4][kernels][errors]") {
    std::mt19937 rng(2);
    const weights w = make_weights(rng, format_id::u4, 20, 64, 32, false);
    std::vector<std::uint8_t> packed = pack(w);
    std::vector<float> a(64, 1.0f), y(20, 7.0f);
    std::vector<std::uint8_t> small(packed.size() - 1);
    CHECK_THROWS_WITH(lowbit::kernels::pack_int4(w.view(), small), Catch::Contains("'packed.size()'"));
    weights bad = w;
    bad.zps[3] = 16;
    CHECK_THROWS_WITH(lowbit::kernels::pack_int4(bad.view(), packed), Catch::Contains("'w.zero_points[i]' = 16"));
    REQUIRE(lowbit::kernels::gemm_int4_f32(packed, a, 1, 64, {}, y, 20).ok());
    std::fill(y.begin(), y.end(), 7.0f);
    const std::vector<float> y0 = y;
    std::vector<std::uint8_t> corrupt = packed;
    corrupt[0] ^= 1;
    CHECK_THROWS_WITH(lowbit::kernels::gemm_int4_f32(corrupt, a, 1, 64, {}, y, 20), Catch::Contains("'packed'"));
    CHECK_THROWS_WITH(lowbit::kernels::gemm_int4_f32(lowbit::span<const std::uint8_t>(packed.data(), packed.size() - 64), a,
                                                     1, 64, {}, y, 20),
                      Catch::Contains("'packed.size()'"));
    CHECK_THROWS_WITH(lowbit::kernels::gemm_int4_f32(packed, a, 1, 64, {}, y, 20, 0, 21), Catch::Contains("'n1' = 21"));
    CHECK_THROWS_WITH(lowbit::kernels::gemm_int4_f32(packed, a, 1, 64, {}, y, 20, 10, 5), Catch::Contains("'n0' = 10"));
    CHECK_THROWS_WITH(lowbit::kernels::gemm_int4_f32(packed, a, 1, 63, {}, y, 20), Catch::Contains("'lda' = 63"));
    CHECK_THROWS_WITH(lowbit::kernels::gemm_int4_f32(packed, a, 1, 64, {}, y, 19), Catch::Contains("'ldy' = 19"));
    q8 qa(1, 64);
    REQUIRE(lowbit::kernels::quantize_q8(a, 1, 64, 64, qa.buffer()).ok());
    qa.sums[0] += 1;
    CHECK_THROWS_WITH(lowbit::kernels::gemm_int4_q8(packed, qa.view(), {}, y, 20), Catch::Contains("'a.sums[i]'"));
    CHECK(y == y0);
}

TEST_CASE("binary16 conversions give the F16C instructions' bits", "[int4][f16][kernels]") {
#if defined(__F16C__)
    for (std::uint32_t h = 0; h < 65536; h += 8) {
        alignas(16) std::uint16_t in[8];
        for (std::uint32_t i = 0; i < 8; ++i) in[i] = static_cast<std::uint16_t>(h + i);
        alignas(32) float out[8];
        _mm256_store_ps(out, _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(in))));
        for (std::uint32_t i = 0; i < 8; ++i) REQUIRE(bits_of(lowbit::f16_to_f32(in[i])) == bits_of(out[i]));
    }
    // f32 -> f16 on every float whose low 13 bits are one of the rounding-relevant patterns,
    // and on random floats
    const std::uint32_t lows[] = {0x0000, 0x0001, 0x0FFF, 0x1000, 0x1001, 0x1FFF};
    std::mt19937 rng(1);
    for (std::uint32_t hi = 0; hi < (1u << 19); ++hi)
        for (std::uint32_t lo : lows) {
            const std::uint32_t u = (hi << 13) | lo | (rng() & 0u);
            float f = 0;
            std::memcpy(&f, &u, 4);
            const auto want = static_cast<std::uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
            if (lowbit::f32_to_f16(f) != want) {
                INFO("f32 bits " << u);
                REQUIRE(lowbit::f32_to_f16(f) == want);
            }
        }
    for (int i = 0; i < 1000000; ++i) {
        const std::uint32_t u = static_cast<std::uint32_t>(rng());
        float f = 0;
        std::memcpy(&f, &u, 4);
        if (lowbit::f32_to_f16(f) != static_cast<std::uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT))) {
            INFO("f32 bits " << u);
            REQUIRE(lowbit::f32_to_f16(f) == static_cast<std::uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)));
        }
    }
#elif defined(__aarch64__)
    // f16 -> f32 (fcvtl, what arm/gemm_int4_neon.hpp loads binary16 scales with): every value;
    // signaling NaNs come out quiet from the instruction, so NaNs only need to stay NaNs
    for (std::uint32_t h = 0; h < 65536; h += 4) {
        std::uint16_t in[4];
        for (std::uint32_t i = 0; i < 4; ++i) in[i] = static_cast<std::uint16_t>(h + i);
        float out[4];
        vst1q_f32(out, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(in))));
        for (std::uint32_t i = 0; i < 4; ++i) {
            const float want = lowbit::f16_to_f32(in[i]);
            if (std::isnan(want)) {
                REQUIRE(std::isnan(out[i]));
                continue;
            }
            if (bits_of(want) != bits_of(out[i])) {
                INFO("f16 bits " << in[i]);
                REQUIRE(bits_of(want) == bits_of(out[i]));
            }
        }
    }
    // f32 -> f16 (fcvtn, round to nearest even) on random non-NaN floats
    std::mt19937 rng(1);
    for (int i = 0; i < 200000; ++i) {
        const std::uint32_t u = static_cast<std::uint32_t>(rng());
        float f = 0;
        std::memcpy(&f, &u, 4);
        if (std::isnan(f)) continue;
        const auto want = vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(f))), 0);
        if (lowbit::f32_to_f16(f) != want) {
            INFO("f32 bits " << u);
            REQUIRE(lowbit::f32_to_f16(f) == want);
        }
    }
#else
    WARN("skipped: no F16C in this build");
#endif
}
