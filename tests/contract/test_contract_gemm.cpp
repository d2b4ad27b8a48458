// tests/contract/test_contract_gemm.cpp: the rows of docs/contract.md for the int8 GEMM
// (ref::gemm, kernels::pack_weights / gemm / gemm_parallel) and the int4 weight-only GEMM
// (pack_int4, gemm_int4_f32, quantize_q8, gemm_int4_q8). kernels run with gemm_isa::best
// and gemm_isa::scalar; the int4 kernels at this file's architecture.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <lowbit/kernels/gemm.hpp>
#include <lowbit/kernels/gemm_int4.hpp>
#include <lowbit/kernels/gemm_parallel.hpp>
#include <lowbit/lowbit.hpp>

#include "contract/contract_util.hpp"

using namespace contract;
using lowbit::errc;
using lowbit::span;

namespace {
constexpr std::size_t size_max = static_cast<std::size_t>(-1);

// C (1 x 1, int32) of A [1, K] and B [1, K] (n_by_k) through ref::gemm and kernels::gemm on
// `isa`; both must agree with `expected`.
template <class TA>
void require_dot(const std::vector<TA>& a, std::int32_t za, const std::vector<std::int8_t>& b, std::int32_t zb,
                 std::int32_t expected) {
    const std::size_t k = a.size();
    const std::vector<std::int32_t> zbs{zb};
    const lowbit::gemm_a<TA> ga{cs(a), k, za};
    const lowbit::gemm_b gb{cs(b), k, lowbit::weight_layout::n_by_k, cs(zbs)};
    std::vector<std::int32_t> c(1, 0);
    REQUIRE(lowbit::ref::gemm(lowbit::gemm_dims{1, 1, k}, ga, gb, ms(c), 1).ok());
    REQUIRE(c[0] == expected);
    std::vector<std::uint8_t> buf(lowbit::kernels::packed_size(1, k));
    const lowbit::kernels::packed_weights pw = *lowbit::kernels::pack_weights(gb, 1, k, ms(buf));
    for (const auto isa : {lowbit::kernels::gemm_isa::best, lowbit::kernels::gemm_isa::scalar}) {
        c[0] = 0;
        lowbit::kernels::gemm_options opt;
        opt.isa = isa;
        REQUIRE(lowbit::kernels::gemm(lowbit::gemm_dims{1, 1, k}, ga, pw, ms(c), 1, opt).ok());
        REQUIRE(c[0] == expected);
    }
}
}  // namespace

// ----------------------------------------------------------------------------------------
// int8 GEMM: K overflow of the int32 accumulator
// ----------------------------------------------------------------------------------------

TEST_CASE("contract: gemm: gemm_max_k is the documented bound", "[contract][gemm]") {
    // (2^31 - 1) / (max|A - za| * max|B - zb|)
    REQUIRE(lowbit::gemm_max_k<std::uint8_t>(128, {}) == 131071u);  // 128 * 128
    const std::vector<std::int32_t> zb{-128};
    REQUIRE(lowbit::gemm_max_k<std::uint8_t>(0, cs(zb)) == 33025u);  // 255 * 255
    REQUIRE(lowbit::gemm_max_k<std::int8_t>(0, {}) == 131071u);      // 128 * 128
    const std::vector<std::int32_t> zb2{0, 127};                     // the worst channel counts
    REQUIRE(lowbit::gemm_max_k<std::int8_t>(-128, cs(zb2)) == 2147483647u / (255u * 255u));
}

TEST_CASE("contract: gemm: K above gemm_max_k is errc::overflow naming k, nothing written", "[contract][gemm]") {
    const std::size_t k = 131072;  // gemm_max_k(128, {}) + 1
    const std::vector<std::uint8_t> a(k, 0);
    const std::vector<std::int8_t> b(k, 0);
    const lowbit::gemm_a<std::uint8_t> ga{cs(a), k, 128};
    const lowbit::gemm_b gb{cs(b), k, lowbit::weight_layout::n_by_k, {}};
    std::vector<std::int32_t> c(1, -7);
    require_error([&] { return lowbit::ref::gemm(lowbit::gemm_dims{1, 1, k}, ga, gb, ms(c), 1); }, errc::overflow, "k");
    // kernels: packing such a K is fine (the bound depends on A's zero point), the call is not
    std::vector<std::uint8_t> buf(lowbit::kernels::packed_size(1, k));
    const lowbit::kernels::packed_weights pw = *lowbit::kernels::pack_weights(gb, 1, k, ms(buf));
    require_error([&] { return lowbit::kernels::gemm(lowbit::gemm_dims{1, 1, k}, ga, pw, ms(c), 1); }, errc::overflow, "k");
    std::vector<std::uint8_t> cu(1, 0xEE);
    const std::vector<lowbit::quantized_multiplier> mult{{1 << 30, 0}};
    lowbit::requantize_params p;
    p.multipliers = cs(mult);
    require_error([&] { return lowbit::kernels::gemm(lowbit::gemm_dims{1, 1, k}, ga, pw, lowbit::scheme<lowbit::u8>{}, p,
                                                     ms(cu), 1); },
                  errc::overflow, "k");
    REQUIRE(c[0] == -7);
    REQUIRE(cu[0] == 0xEE);
    // s8 x s8 with per-channel weight zero points: the worst channel sets the bound
    const std::vector<std::int8_t> a8(33026, 0);
    const std::vector<std::int8_t> b8(2 * 33026, 0);
    const std::vector<std::int32_t> zbs{0, -128};
    const lowbit::gemm_a<std::int8_t> ga8{cs(a8), 33026, 127};  // max|A - za| = 255
    const lowbit::gemm_b gb8{cs(b8), 33026, lowbit::weight_layout::n_by_k, cs(zbs)};
    std::vector<std::int32_t> c2(2, -7);
    require_error([&] { return lowbit::ref::gemm(lowbit::gemm_dims{1, 2, 33026}, ga8, gb8, ms(c2), 2); }, errc::overflow, "k");
    REQUIRE(c2 == std::vector<std::int32_t>(2, -7));
}

TEST_CASE("contract: gemm: K = gemm_max_k with extreme values gives the exact int32 result", "[contract][gemm]") {
    {
        // u8 A = 0, za = 128 (A - za = -128); B = -128, zb = 0: K * 16384 = 2147467264
        const std::size_t k = 131071;
        require_dot<std::uint8_t>(std::vector<std::uint8_t>(k, 0), 128, std::vector<std::int8_t>(k, -128), 0, 2147467264);
        // A = 255 (A - za = 127), B = -128: -K * 16256 = -2130690176
        require_dot<std::uint8_t>(std::vector<std::uint8_t>(k, 255), 128, std::vector<std::int8_t>(k, -128), 0,
                                  -2130690176);
    }
    {
        // the worst zero points: u8 A = 255, za = 0; B = 127, zb = -128: K * 65025 = 2147450625
        const std::size_t k = 33025;
        require_dot<std::uint8_t>(std::vector<std::uint8_t>(k, 255), 0, std::vector<std::int8_t>(k, 127), -128,
                                  2147450625);
        // s8 A = -128, za = 127 (A - za = -255); B = 127, zb = -128 (255): -2147450625
        require_dot<std::int8_t>(std::vector<std::int8_t>(k, -128), 127, std::vector<std::int8_t>(k, 127), -128,
                                 -2147450625);
    }
}

// ----------------------------------------------------------------------------------------
// int8 GEMM: size overflow, empty, zero points, scales, alignment
// ----------------------------------------------------------------------------------------

TEST_CASE("contract: gemm: leading dimensions whose products overflow size_t are errors before any access",
          "[contract][gemm]") {
    const std::vector<std::uint8_t> a(8, 1);
    const std::vector<std::int8_t> b(8, 1);
    std::vector<std::int32_t> c(8, -7);
    const std::size_t huge_ld = size_max / 2 + 1;  // (M - 1) * ld overflows for M = 3
    {
        const lowbit::gemm_a<std::uint8_t> ga{cs(a), huge_ld, 0};
        const lowbit::gemm_b gb{cs(b), 2, lowbit::weight_layout::n_by_k, {}};
        require_error([&] { return lowbit::ref::gemm(lowbit::gemm_dims{3, 1, 2}, ga, gb, ms(c), 1); }, errc::overflow, "a.ld");
    }
    {
        const lowbit::gemm_a<std::uint8_t> ga{cs(a), 2, 0};
        const lowbit::gemm_b gb{cs(b), 2, lowbit::weight_layout::n_by_k, {}};
        require_error([&] { return lowbit::ref::gemm(lowbit::gemm_dims{3, 1, 2}, ga, gb, ms(c), huge_ld); }, errc::overflow,
                      "ldc");
        const lowbit::gemm_b gbh{cs(b), huge_ld, lowbit::weight_layout::n_by_k, {}};
        require_error([&] { return lowbit::ref::gemm(lowbit::gemm_dims{1, 3, 2}, ga, gbh, ms(c), 3); }, errc::overflow,
                      "b.ld");
    }
    REQUIRE(c == std::vector<std::int32_t>(8, -7));
    // pack_weights: N x K that does not fit size_t; packed_size says so with SIZE_MAX
    REQUIRE(lowbit::kernels::packed_size(size_max / 4, 1024) == size_max);
    std::vector<std::uint8_t> buf(256, 0xEE);
    const lowbit::gemm_b gb{cs(b), 1024, lowbit::weight_layout::n_by_k, {}};
    require_error([&] { return lowbit::kernels::pack_weights(gb, size_max / 4, 1024, ms(buf)); }, errc::overflow, "n");
    REQUIRE(buf == std::vector<std::uint8_t>(256, 0xEE));
}

TEST_CASE("contract: gemm: M, N or K = 0 is valid", "[contract][gemm]") {
    std::vector<std::int32_t> c(4, -7);
    const lowbit::gemm_a<std::uint8_t> ga{{}, 0, 0};
    const lowbit::gemm_b gb{{}, 0, lowbit::weight_layout::n_by_k, {}};
    REQUIRE(lowbit::ref::gemm(lowbit::gemm_dims{0, 0, 0}, ga, gb, ms(c), 0).ok());
    REQUIRE(c == std::vector<std::int32_t>(4, -7));  // M = 0: nothing written
    // K = 0: C = 0 (the empty sum)
    const lowbit::gemm_a<std::uint8_t> ga2{{}, 0, 3};
    REQUIRE(lowbit::ref::gemm(lowbit::gemm_dims{2, 2, 0}, ga2, gb, ms(c), 2).ok());
    REQUIRE(c == std::vector<std::int32_t>(4, 0));
    std::vector<std::uint8_t> buf(lowbit::kernels::packed_size(2, 0));
    const lowbit::kernels::packed_weights pw = *lowbit::kernels::pack_weights(gb, 2, 0, ms(buf));
    std::fill(c.begin(), c.end(), -7);
    REQUIRE(lowbit::kernels::gemm(lowbit::gemm_dims{2, 2, 0}, ga2, pw, ms(c), 2).ok());
    REQUIRE(c == std::vector<std::int32_t>(4, 0));
    // N = 0 packs and multiplies to nothing
    std::vector<std::uint8_t> buf0(lowbit::kernels::packed_size(0, 5));
    const std::vector<std::int32_t> zb{3};
    const lowbit::gemm_b gb0{{}, 5, lowbit::weight_layout::n_by_k, cs(zb)};
    const lowbit::kernels::packed_weights pw0 = *lowbit::kernels::pack_weights(gb0, 0, 5, ms(buf0));
    const std::vector<std::uint8_t> a(10, 1);
    const lowbit::gemm_a<std::uint8_t> ga3{cs(a), 5, 0};
    REQUIRE(lowbit::kernels::gemm(lowbit::gemm_dims{2, 0, 5}, ga3, pw0, span<std::int32_t>{}, 0).ok());
}

TEST_CASE("contract: gemm: zero points out of range are errors naming them", "[contract][gemm]") {
    const std::vector<std::uint8_t> a(4, 1);
    const std::vector<std::int8_t> b(4, 1);
    std::vector<std::int32_t> c(1, -7);
    for (const std::int32_t za : {-1, 256}) {
        const lowbit::gemm_a<std::uint8_t> ga{cs(a), 4, za};
        const lowbit::gemm_b gb{cs(b), 4, lowbit::weight_layout::n_by_k, {}};
        require_error([&] { return lowbit::ref::gemm(lowbit::gemm_dims{1, 1, 4}, ga, gb, ms(c), 1); },
                      errc::invalid_argument, "a.zero_point");
    }
    const std::vector<std::int32_t> zb{128};
    const lowbit::gemm_a<std::uint8_t> ga{cs(a), 4, 0};
    const lowbit::gemm_b gb{cs(b), 4, lowbit::weight_layout::n_by_k, cs(zb)};
    require_error([&] { return lowbit::ref::gemm(lowbit::gemm_dims{1, 1, 4}, ga, gb, ms(c), 1); }, errc::invalid_argument,
                  "b.zero_points[i]");
    std::vector<std::uint8_t> buf(lowbit::kernels::packed_size(1, 4), 0xEE);
    require_error([&] { return lowbit::kernels::pack_weights(gb, 1, 4, ms(buf)); }, errc::invalid_argument,
                  "b.zero_points[i]");
    // the requantized output's zero point
    const lowbit::gemm_b gb_ok{cs(b), 4, lowbit::weight_layout::n_by_k, {}};
    const std::vector<lowbit::quantized_multiplier> mult{{1 << 30, 0}};
    lowbit::requantize_params p;
    p.multipliers = cs(mult);
    p.zero_point = 300;
    std::vector<std::uint8_t> cu(1, 0xEE);
    require_error([&] { return lowbit::ref::gemm(lowbit::gemm_dims{1, 1, 4}, ga, gb_ok, lowbit::scheme<lowbit::u8>{}, p,
                                                 ms(cu), 1); },
                  errc::invalid_argument, "zero_point");
    REQUIRE(c[0] == -7);
    REQUIRE(cu[0] == 0xEE);
}

TEST_CASE("contract: gemm: dequantize scales and bias NaN or Inf are errors, zero and negative scales are applied",
          "[contract][gemm]") {
    const std::vector<std::uint8_t> a{1, 2};
    const std::vector<std::int8_t> b{3, 4};  // acc = 11
    const lowbit::gemm_a<std::uint8_t> ga{cs(a), 2, 0};
    const lowbit::gemm_b gb{cs(b), 2, lowbit::weight_layout::n_by_k, {}};
    std::vector<float> y(1, -7.0f);
    for (const float bad : {nan_f, inf_f, -inf_f}) {
        const std::vector<float> sc{bad}, ok{1.0f};
        require_error([&] { return lowbit::ref::gemm(lowbit::gemm_dims{1, 1, 2}, ga, gb,
                                                     lowbit::gemm_dequantize_params{cs(sc), {}}, ms(y), 1); },
                      errc::invalid_argument, "scales[i]");
        require_error([&] { return lowbit::ref::gemm(lowbit::gemm_dims{1, 1, 2}, ga, gb,
                                                     lowbit::gemm_dequantize_params{cs(ok), cs(sc)}, ms(y), 1); },
                      errc::invalid_argument, "bias[i]");
    }
    REQUIRE(y[0] == -7.0f);
    const std::vector<float> neg{-0.5f}, zero{0.0f};
    REQUIRE(lowbit::ref::gemm(lowbit::gemm_dims{1, 1, 2}, ga, gb, lowbit::gemm_dequantize_params{cs(neg), {}}, ms(y), 1).ok());
    REQUIRE(y[0] == -5.5f);
    REQUIRE(lowbit::ref::gemm(lowbit::gemm_dims{1, 1, 2}, ga, gb, lowbit::gemm_dequantize_params{cs(zero), {}}, ms(y), 1).ok());
    REQUIRE(bits(y[0]) == 0u);
    // float requantize multipliers: NaN refused as in ref::requantize
    const std::vector<float> fm{nan_f};
    lowbit::requantize_float_params fp;
    fp.multipliers = cs(fm);
    std::vector<std::int8_t> c8(1, 9);
    require_error([&] { return lowbit::ref::gemm(lowbit::gemm_dims{1, 1, 2}, ga, gb, lowbit::scheme<lowbit::s8>{}, fp,
                                                 ms(c8), 1); },
                  errc::invalid_argument, "multipliers[i]");
    REQUIRE(c8[0] == 9);
}

TEST_CASE("contract: gemm: misaligned A, C and packed buffers give the aligned results", "[contract][gemm]") {
    const std::size_t m = 5, n = 19, k = 67;
    std::vector<std::uint8_t> av(m * k);
    std::vector<std::int8_t> bv(n * k);
    for (std::size_t i = 0; i < av.size(); ++i) av[i] = static_cast<std::uint8_t>(i * 37u % 256u);
    for (std::size_t i = 0; i < bv.size(); ++i) bv[i] = static_cast<std::int8_t>(static_cast<int>(i * 53u % 256u) - 128);
    const lowbit::gemm_b gb{cs(bv), k, lowbit::weight_layout::n_by_k, {}};
    std::vector<std::int32_t> expect(m * n);
    REQUIRE(lowbit::ref::gemm(lowbit::gemm_dims{m, n, k}, lowbit::gemm_a<std::uint8_t>{cs(av), k, 77}, gb, ms(expect), n).ok());
    arena ar(lowbit::kernels::packed_size(n, k) + 4096);
    std::uint8_t* a = ar.at<std::uint8_t>(1);
    std::memcpy(a, av.data(), av.size());
    std::int32_t* c = ar.at<std::int32_t>(1024 + 4);
    std::uint8_t* pb = ar.at<std::uint8_t>(2048 + 3);  // pack_weights aligns inside the buffer
    const lowbit::kernels::packed_weights pw =
        *lowbit::kernels::pack_weights(gb, n, k, span<std::uint8_t>(pb, lowbit::kernels::packed_size(n, k)));
    const lowbit::gemm_a<std::uint8_t> ga{span<const std::uint8_t>(a, m * k), k, 77};
    REQUIRE(lowbit::ref::gemm(lowbit::gemm_dims{m, n, k}, ga, gb, span<std::int32_t>(c, m * n), n).ok());
    REQUIRE(std::memcmp(c, expect.data(), m * n * 4) == 0);
    std::memset(c, 0, m * n * 4);
    REQUIRE(lowbit::kernels::gemm(lowbit::gemm_dims{m, n, k}, ga, pw, span<std::int32_t>(c, m * n), n).ok());
    REQUIRE(std::memcmp(c, expect.data(), m * n * 4) == 0);
    // gemm_parallel over the same call: same bits
    std::memset(c, 0, m * n * 4);
    REQUIRE(lowbit::kernels::gemm_parallel(2, m, n, [&](lowbit::kernels::gemm_range r) {
                lowbit::kernels::gemm_options opt;
                opt.range = r;
                return lowbit::kernels::gemm(lowbit::gemm_dims{m, n, k}, ga, pw, span<std::int32_t>(c, m * n), n, opt);
            }).ok());
    REQUIRE(std::memcmp(c, expect.data(), m * n * 4) == 0);
}

TEST_CASE("contract: gemm: packed weights moved to another offset from 64 bytes are refused, not misread",
          "[contract][gemm]") {
    const std::size_t n = 3, k = 40;
    const std::vector<std::int8_t> b(n * k, 5);
    const lowbit::gemm_b gb{cs(b), k, lowbit::weight_layout::n_by_k, {}};
    const std::size_t size = lowbit::kernels::packed_size(n, k);
    arena ar(2 * size + 256);
    std::uint8_t* p = ar.at<std::uint8_t>(1);
    REQUIRE(lowbit::kernels::pack_weights(gb, n, k, span<std::uint8_t>(p, size)).ok());
    // the same offset: re-attached
    REQUIRE(lowbit::kernels::view_packed_weights(span<const std::uint8_t>(p, size)).ok());
    // a copy at offset 2 instead of 1: the header is not where the view looks
    std::uint8_t* q = ar.at<std::uint8_t>((size + 63) / 64 * 64 + 64 + 2);
    std::memcpy(q, p, size);
    REQUIRE_FALSE(status_of([&] { return lowbit::kernels::view_packed_weights(span<const std::uint8_t>(q, size)); }).ok());
    // a default (empty) view is accepted by no gemm call
    const std::vector<std::uint8_t> a(k, 1);
    std::vector<std::int32_t> c(n, -7);
    REQUIRE_FALSE(status_of([&] { return lowbit::kernels::gemm(lowbit::gemm_dims{1, n, k},
                                                                lowbit::gemm_a<std::uint8_t>{cs(a), k, 0},
                                                                lowbit::kernels::packed_weights{}, ms(c), n); }).ok());
    REQUIRE(c == std::vector<std::int32_t>(n, -7));
}

TEST_CASE("contract: gemm_parallel: a failed check in a part is reported (rethrown) after every thread joined",
          "[contract][gemm]") {
    const std::vector<std::uint8_t> a(4, 1);
    const lowbit::gemm_a<std::uint8_t> ga{cs(a), 4, 300};  // bad zero point
    const std::vector<std::int8_t> b(4, 1);
    const lowbit::gemm_b gb{cs(b), 4, lowbit::weight_layout::n_by_k, {}};
    std::vector<std::int32_t> c(1, -7);
    require_error([&] {
        return lowbit::kernels::gemm_parallel(2, 1, 1, [&](lowbit::kernels::gemm_range) {
            return lowbit::ref::gemm(lowbit::gemm_dims{1, 1, 4}, ga, gb, ms(c), 1);
        });
    }, errc::invalid_argument, "a.zero_point");
    REQUIRE(c[0] == -7);
}

// ----------------------------------------------------------------------------------------
// int4 weight-only GEMM
// ----------------------------------------------------------------------------------------

namespace {
// s4 weights [2, 32], G = 32: row 0 all 1, row 1 all -8; scales 0.5 and 0.25.
struct w4 {
    std::vector<std::uint8_t> data = std::vector<std::uint8_t>(32, 0);
    std::vector<float> scales{0.5f, 0.25f};
    w4() {
        for (std::size_t i = 0; i < 16; ++i) data[i] = 0x11;
        for (std::size_t i = 16; i < 32; ++i) data[i] = 0x88;
    }
    lowbit::int4_weights view() const { return {lowbit::format_id::s4, 2, 32, 32, cs(data), cs(scales), {}, {}}; }
};
}  // namespace

TEST_CASE("contract: int4 gemm: NaN or Inf scales and bias are errors naming them, nothing written", "[contract][int4_gemm]") {
    w4 w;
    const std::vector<float> a(32, 1.0f);
    std::vector<float> y(2, -7.0f);
    for (const float bad : {nan_f, inf_f}) {
        w.scales[1] = bad;
        require_error([&] { return lowbit::ref::gemm_int4_f32(w.view(), cs(a), 1, 32, {}, ms(y), 2); },
                      errc::invalid_argument, "w.scales[i]");
        std::vector<std::uint8_t> p(lowbit::kernels::packed_int4_size(w.view()), 0xEE);
        require_error([&] { return lowbit::kernels::pack_int4(w.view(), ms(p)); }, errc::invalid_argument, "w.scales[i]");
        REQUIRE(p == std::vector<std::uint8_t>(p.size(), 0xEE));
    }
    w.scales[1] = 0.25f;
    const std::vector<float> bias{0.0f, nan_f};
    require_error([&] { return lowbit::ref::gemm_int4_f32(w.view(), cs(a), 1, 32, cs(bias), ms(y), 2); },
                  errc::invalid_argument, "bias[i]");
    REQUIRE(y == std::vector<float>(2, -7.0f));
    // zero and negative scales are applied as given: row 0 = 32 * 1 * 0 = 0, row 1 = 32 * -8 * -0.25 = 64
    w.scales = {0.0f, -0.25f};
    REQUIRE(lowbit::ref::gemm_int4_f32(w.view(), cs(a), 1, 32, {}, ms(y), 2).ok());
    REQUIRE(y == std::vector<float>{0.0f, 64.0f});
}

TEST_CASE("contract: int4 gemm: NaN and Inf f32 activations propagate, kernels equal to ref", "[contract][int4_gemm]") {
    const w4 w;
    std::vector<float> a(32, 1.0f);
    a[5] = nan_f;
    std::vector<float> a2(32, 1.0f);
    a2[7] = inf_f;
    std::vector<float> y(2), yk(2);
    REQUIRE(lowbit::ref::gemm_int4_f32(w.view(), cs(a), 1, 32, {}, ms(y), 2).ok());
    REQUIRE(y[0] != y[0]);
    REQUIRE(y[1] != y[1]);
    std::vector<std::uint8_t> p(lowbit::kernels::packed_int4_size(w.view()));
    REQUIRE(lowbit::kernels::pack_int4(w.view(), ms(p)).ok());
    REQUIRE(lowbit::kernels::gemm_int4_f32(cs(p), cs(a), 1, 32, {}, ms(yk), 2).ok());
    REQUIRE(yk[0] != yk[0]);
    REQUIRE(yk[1] != yk[1]);
    // +Inf * 1 * 0.5 = +Inf in row 0; +Inf * -8 * 0.25 = -Inf in row 1
    REQUIRE(lowbit::ref::gemm_int4_f32(w.view(), cs(a2), 1, 32, {}, ms(y), 2).ok());
    REQUIRE(y == std::vector<float>{inf_f, -inf_f});
    REQUIRE(lowbit::kernels::gemm_int4_f32(cs(p), cs(a2), 1, 32, {}, ms(yk), 2).ok());
    REQUIRE(yk == std::vector<float>{inf_f, -inf_f});
}

TEST_CASE("contract: quantize_q8: NaN or Inf activations are errors naming x[i], denormal blocks give d = 0",
          "[contract][int4_gemm]") {
    std::vector<float> x(64, 1.0f);
    std::vector<std::int8_t> q(64, 9);
    std::vector<float> d(2, -7.0f);
    std::vector<std::int32_t> sums(2, -7);
    const lowbit::q8_activations_buffer out{1, 64, ms(q), ms(d), ms(sums)};
    for (const float bad : {nan_f, inf_f, -inf_f}) {
        x[40] = bad;
        require_error([&] { return lowbit::ref::quantize_q8(cs(x), 1, 64, 64, out); }, errc::invalid_argument, "x[i]");
        require_error([&] { return lowbit::kernels::quantize_q8(cs(x), 1, 64, 64, out); }, errc::invalid_argument, "x[i]");
    }
    REQUIRE(q == std::vector<std::int8_t>(64, 9));
    REQUIRE(d == std::vector<float>(2, -7.0f));
    // block 0 denormal (amax < 127 / FLT_MAX): d = 0, q = 0; block 1 all zero: d = 0, q = 0
    std::fill(x.begin(), x.end(), 0.0f);
    for (std::size_t i = 0; i < 32; ++i) x[i] = std::numeric_limits<float>::denorm_min();
    for (const bool kernels : {false, true}) {
        REQUIRE((kernels ? lowbit::kernels::quantize_q8(cs(x), 1, 64, 64, out)
                         : lowbit::ref::quantize_q8(cs(x), 1, 64, 64, out)).ok());
        REQUIRE(q == std::vector<std::int8_t>(64, 0));
        REQUIRE(bits(d[0]) == 0u);
        REQUIRE(bits(d[1]) == 0u);
        REQUIRE(sums == std::vector<std::int32_t>(2, 0));
    }
    // FLT_MAX: id = 127 / FLT_MAX (normal), q = 127, d = FLT_MAX / 127
    x[0] = std::numeric_limits<float>::max();
    REQUIRE(lowbit::ref::quantize_q8(cs(x), 1, 64, 64, out).ok());
    REQUIRE(q[0] == 127);
    REQUIRE(d[0] == std::numeric_limits<float>::max() / 127.0f);
}

TEST_CASE("contract: int4 gemm: N * K overflowing size_t is errc::overflow before any access", "[contract][int4_gemm]") {
    const lowbit::int4_weights w{lowbit::format_id::s4, size_max / 16, 64, 32, {}, {}, {}, {}};
    REQUIRE(lowbit::kernels::packed_int4_size(w) == 0u);
    std::vector<float> y(1, -7.0f);
    require_error([&] { return lowbit::ref::gemm_int4_f32(w, {}, 1, 64, {}, ms(y), 1); }, errc::overflow, "w.n");
    std::vector<std::uint8_t> p(64, 0xEE);
    require_error([&] { return lowbit::kernels::pack_int4(w, ms(p)); }, errc::overflow, "w.n");
    REQUIRE(p == std::vector<std::uint8_t>(64, 0xEE));
    REQUIRE(y[0] == -7.0f);
    // q8 activations: M * K overflowing
    const lowbit::q8_activations_buffer out{size_max / 16, 64, {}, {}, {}};
    require_error([&] { return lowbit::ref::quantize_q8({}, size_max / 16, 64, 64, out); }, errc::overflow, "lda");
}

TEST_CASE("contract: int4 gemm: q8 block dots cannot overflow, extreme values exact", "[contract][int4_gemm]") {
    // K = 4096 (128 blocks), q = -127 (not -128: quantize_q8 never writes it; any int8 is
    // accepted), w = -8: every block dot = 32 * 1016 = 32512; d_a = 1, s = 1 -> y = 128 * 32512
    const std::size_t k = 4096;
    std::vector<std::uint8_t> data(k / 2, 0x88);
    const std::vector<float> scales(k / 32, 1.0f);
    const lowbit::int4_weights w{lowbit::format_id::s4, 1, k, 32, cs(data), cs(scales), {}, {}};
    const std::vector<std::int8_t> q(k, -128);
    const std::vector<float> d(k / 32, 1.0f);
    const std::vector<std::int32_t> sums(k / 32, -128 * 32);
    const lowbit::q8_activations a{1, k, cs(q), cs(d), cs(sums)};
    std::vector<float> y(1);
    REQUIRE(lowbit::ref::gemm_int4_q8(w, a, {}, ms(y), 1).ok());
    REQUIRE(y[0] == 128.0f * 32768.0f);  // 32 * (-128) * (-8) = 32768 per block, exact
    std::vector<std::uint8_t> p(lowbit::kernels::packed_int4_size(w));
    REQUIRE(lowbit::kernels::pack_int4(w, ms(p)).ok());
    std::vector<float> yk(1);
    REQUIRE(lowbit::kernels::gemm_int4_q8(cs(p), a, {}, ms(yk), 1).ok());
    REQUIRE(yk[0] == y[0]);
    // a block sum that does not match its q is refused
    std::vector<std::int32_t> bad = sums;
    bad[3] += 1;
    const lowbit::q8_activations ab{1, k, cs(q), cs(d), cs(bad)};
    REQUIRE_FALSE(status_of([&] { return lowbit::ref::gemm_int4_q8(w, ab, {}, ms(y), 1); }).ok());
}

TEST_CASE("contract: int4 gemm: misaligned activations, packed weights and outputs give the aligned results",
          "[contract][int4_gemm]") {
    const std::size_t n = 3, k = 64;
    std::vector<std::uint8_t> data(n * k / 2);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 29u);
    const std::vector<float> scales{0.5f, 0.25f, 2.0f, 1.0f, 0.125f, 4.0f};
    const lowbit::int4_weights w{lowbit::format_id::s4, n, k, 32, cs(data), cs(scales), {}, {}};
    std::vector<float> av(2 * k);
    for (std::size_t i = 0; i < av.size(); ++i) av[i] = static_cast<float>(i % 7) - 3.25f;
    std::vector<float> expect(2 * n);
    REQUIRE(lowbit::ref::gemm_int4_f32(w, cs(av), 2, k, {}, ms(expect), n).ok());
    const std::size_t psize = lowbit::kernels::packed_int4_size(w);
    arena ar(psize + 4096);
    float* a = ar.at<float>(4);
    std::memcpy(a, av.data(), av.size() * 4);
    std::uint8_t* p = ar.at<std::uint8_t>(1024 + 1);
    REQUIRE(lowbit::kernels::pack_int4(w, span<std::uint8_t>(p, psize)).ok());
    float* y = ar.at<float>(1024 + psize + 64 + 12);
    REQUIRE(lowbit::kernels::gemm_int4_f32(span<const std::uint8_t>(p, psize), span<const float>(a, 2 * k), 2, k, {},
                                           span<float>(y, 2 * n), n).ok());
    REQUIRE(std::memcmp(y, expect.data(), 2 * n * 4) == 0);
}
