// core_checks.cpp (tests/firmware): instantiates the freestanding core (include/lowbit/core)
// the way firmware uses it and checks each function on a case whose answer is worked out in
// the comments (from the formulas in NUMERICS.md and the headers). Runs on the emulated
// Cortex-M4 / M55 and on the host; both must print the same counts.
#include <lowbit/core/fake_quantize.hpp>
#include <lowbit/core/fixed_point.hpp>
#include <lowbit/core/gemm.hpp>
#include <lowbit/core/gemm_int4.hpp>
#include <lowbit/core/int4.hpp>
#include <lowbit/core/qparams.hpp>
#include <lowbit/core/quantize.hpp>
#include <lowbit/core/reduce.hpp>
#include <lowbit/core/requantize.hpp>

#include "checks.hpp"

namespace fwcheck {
namespace {

// Keeps the compiler from folding the inputs: the checks run the code, not constants.
template <class T>
T opaque(T v) {
    __asm__ volatile("" : "+m"(v));
    return v;
}

void quantize_checks(counter& c) {
    using u8s = lowbit::scheme<lowbit::u8>;
    const lowbit::qparams qp{opaque(0.5f), 10};
    // q = clamp(10 + rint(x * 2)): 0.25 * 2 = 0.5 -> 0 and 0.75 * 2 = 1.5 -> 2 (ties to even)
    const float x[8] = {0.0f, 0.5f, 1.0f, -1.0f, 0.25f, 0.75f, 1000.0f, -1000.0f};
    const std::uint8_t want[8] = {10, 11, 12, 8, 10, 12, 255, 0};
    std::uint8_t q[8] = {};
    expect(c, lowbit::ref::quantize(u8s{}, qp, x, q).ok() && equal(q, want, 8), "ref::quantize u8 per tensor");
    float back[8] = {};
    const float want_back[8] = {0.0f, 0.5f, 1.0f, -1.0f, 0.0f, 1.0f, 122.5f, -5.0f};
    expect(c, lowbit::ref::dequantize(u8s{}, qp, lowbit::span<const std::uint8_t>(q), back).ok() && equal(back, want_back, 8),
           "ref::dequantize u8 per tensor");
    // fake-quant: 0.3 * 2 = 0.6 -> 1 -> 0.5 (mask 1); 1000 saturates at 255 -> 122.5 (mask 0)
    const float fx[2] = {0.3f, 1000.0f};
    float fy[2] = {};
    std::uint8_t mask[2] = {};
    const float want_fy[2] = {0.5f, 122.5f};
    const std::uint8_t want_mask[2] = {1, 0};
    expect(c, lowbit::ref::fake_quantize(u8s{}, qp, fx, fy, mask).ok() && equal(fy, want_fy, 2) && equal(mask, want_mask, 2),
           "ref::fake_quantize forward and STE mask");
    // per channel, s8 symmetric along axis 0: rows scaled by 0.5 and 0.25
    using s8c = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>;
    const float scales[2] = {opaque(0.5f), 0.25f};
    const std::int32_t zps[2] = {0, 0};
    const float w[4] = {1.0f, -1.0f, 1.0f, -40.0f};
    std::int8_t wq[4] = {};
    const std::int8_t want_wq[4] = {2, -2, 4, -128};
    expect(c, lowbit::ref::quantize(s8c{}.per_channel(0), lowbit::shape{2, 2}, {scales, zps}, w, wq).ok() &&
                  equal(wq, want_wq, 4),
           "ref::quantize s8 per channel");
    // a bad scale is refused and nothing is written
    std::uint8_t untouched[1] = {7};
    const float one[1] = {1.0f};
    const lowbit::status st = lowbit::ref::quantize(u8s{}, lowbit::qparams{opaque(-1.0f), 0}, one, untouched);
    expect(c, !st.ok() && st.code == lowbit::errc::invalid_argument && untouched[0] == 7, "bad scale refused");
}

void fixed_point_checks(counter& c) {
    // NUMERICS.md: 0.1 -> (1717986918, -3); 0.75 -> (2^30 * 1.5, 0); 1.5 -> (1610612736, 1)
    const auto m01 = lowbit::quantize_multiplier(opaque(0.1));
    const auto m075 = lowbit::quantize_multiplier(opaque(0.75));
    const auto m15 = lowbit::quantize_multiplier(opaque(1.5));
    expect(c, m01.ok() && m01->multiplier == 1717986918 && m01->shift == -3, "quantize_multiplier(0.1)");
    expect(c, m075.ok() && m075->multiplier == 1610612736 && m075->shift == 0, "quantize_multiplier(0.75)");
    expect(c, m15.ok() && m15->multiplier == 1610612736 && m15->shift == 1, "quantize_multiplier(1.5)");
    // M = 0.25, x = -2998: double rounding -750, single rounding -749 (NUMERICS.md)
    const lowbit::quantized_multiplier q25{1 << 30, -1};
    expect(c, lowbit::multiply_by_quantized_multiplier(opaque(-2998), q25, lowbit::requant_rounding::double_rounding) == -750,
           "multiply_by_quantized_multiplier double rounding");
    expect(c, lowbit::multiply_by_quantized_multiplier(opaque(-2998), q25, lowbit::requant_rounding::single_rounding) == -749,
           "multiply_by_quantized_multiplier single rounding");
    // requantize s8: (acc + 1) * 0.25 = -1.25, 1.75, 0.75, -0.25 -> -1, 2, 1, 0 (+ zp 5)
    const std::int32_t acc[4] = {opaque(-6), 6, 2, -2};
    const std::int32_t bias[1] = {1};
    const lowbit::quantized_multiplier mult[1] = {q25};
    lowbit::requantize_params p;
    p.multipliers = mult;
    p.bias = bias;
    p.zero_point = 5;
    std::int8_t out[4] = {};
    const std::int8_t want[4] = {4, 7, 6, 5};
    expect(c, lowbit::ref::requantize(lowbit::scheme<lowbit::s8>{}, lowbit::shape{4}, p, acc, out).ok() && equal(out, want, 4),
           "ref::requantize s8 fixed point");
    // float multiplier: rint((acc + 1) * 0.25) = -1 (-1.25), 2 (1.75), 1 (0.75), -0 -> +5
    const float fm[1] = {opaque(0.25f)};
    lowbit::requantize_float_params fp;
    fp.multipliers = fm;
    fp.bias = bias;
    fp.zero_point = 5;
    expect(c, lowbit::ref::requantize(lowbit::scheme<lowbit::s8>{}, lowbit::shape{4}, fp, acc, out).ok() && equal(out, want, 4),
           "ref::requantize s8 float multiplier");
}

void int4_checks(counter& c) {
    // element 2i in the low nibble of byte i: (-8, 7) -> 0x78, (-1, 0) -> 0x0f, (3, pad) -> 0x03
    const std::int8_t v[5] = {opaque<std::int8_t>(-8), 7, -1, 0, 3};
    std::uint8_t packed[3] = {};
    const std::uint8_t want[3] = {0x78, 0x0f, 0x03};
    expect(c, lowbit::ref::pack_s4(v, packed).ok() && equal(packed, want, 3), "ref::pack_s4");
    std::int8_t back[5] = {};
    expect(c, lowbit::ref::unpack_s4(packed, back).ok() && equal(back, v, 5), "ref::unpack_s4");
    // 32 weights of 1 (nibbles 0x11), scale 0.5, bias 1: y = fma(32 * 1, 0.5, 1) = 17
    std::uint8_t wbytes[16];
    for (std::uint8_t& b : wbytes) b = opaque<std::uint8_t>(0x11);
    const float wscale[1] = {0.5f}, wbias[1] = {1.0f};
    lowbit::int4_weights w;
    w.format = lowbit::format_id::s4;
    w.n = 1;
    w.k = 32;
    w.group_size = 32;
    w.data = wbytes;
    w.scales = wscale;
    float a[32];
    for (float& x : a) x = opaque(1.0f);
    float y[1] = {};
    expect(c, lowbit::ref::gemm_int4_f32(w, a, 1, 32, wbias, y, 1).ok() && y[0] == 17.0f, "ref::gemm_int4_f32");
    // q8: amax 1 -> q = 127 each, d = 1/127; y = 1 + 4064 * f32(d * 0.5) = 17 within rounding
    std::int8_t q[32];
    float d[1];
    std::int32_t sums[1];
    lowbit::q8_activations_buffer qa{1, 32, q, d, sums};
    const bool qok = lowbit::ref::quantize_q8(a, 1, 32, 32, qa).ok();
    expect(c, qok && q[0] == 127 && q[31] == 127 && sums[0] == 32 * 127, "ref::quantize_q8");
    expect(c, qok && lowbit::ref::gemm_int4_q8(w, qa.view(), wbias, y, 1).ok() && y[0] > 16.999f && y[0] < 17.001f,
           "ref::gemm_int4_q8");
}

void gemm_checks(counter& c) {
    // A (u8, za = 1) = [[1 2 3] [4 5 6]], B as [out][in] = [[1 0 -1] [2 2 2]]:
    // acc = [[0*1 + 1*0 + 2*-1, 0*2 + 1*2 + 2*2] [3 - 5, 6 + 8 + 10]] = [[-2 6] [-2 24]]
    const std::uint8_t av[6] = {opaque<std::uint8_t>(1), 2, 3, 4, 5, 6};
    const std::int8_t bv[6] = {opaque<std::int8_t>(1), 0, -1, 2, 2, 2};
    const lowbit::gemm_dims dims{2, 2, 3};
    const lowbit::gemm_a<std::uint8_t> a{av, 3, 1};
    const lowbit::gemm_b b{bv, 3, lowbit::weight_layout::n_by_k, {}};
    std::int32_t acc[4] = {};
    const std::int32_t want[4] = {-2, 6, -2, 24};
    expect(c, lowbit::ref::gemm(dims, a, b, lowbit::span<std::int32_t>(acc), 2).ok() && equal(acc, want, 4), "ref::gemm int32");
    // requantize to u8 with M = 0.5 (2^30, 0), zero point 10: [[9 13] [9 22]]
    const lowbit::quantized_multiplier half[1] = {{1 << 30, 0}};
    lowbit::requantize_params p;
    p.multipliers = half;
    p.zero_point = 10;
    std::uint8_t out[4] = {};
    const std::uint8_t want_u8[4] = {9, 13, 9, 22};
    expect(c, lowbit::ref::gemm(dims, a, b, lowbit::scheme<lowbit::u8>{}, p, lowbit::span<std::uint8_t>(out), 2).ok() &&
                  equal(out, want_u8, 4),
           "ref::gemm requantize u8");
    const float halff[1] = {opaque(0.5f)};
    lowbit::requantize_float_params fp;
    fp.multipliers = halff;
    fp.zero_point = 10;
    std::uint8_t outf[4] = {};
    expect(c, lowbit::ref::gemm(dims, a, b, lowbit::scheme<lowbit::u8>{}, fp, lowbit::span<std::uint8_t>(outf), 2).ok() &&
                  equal(outf, want_u8, 4),
           "ref::gemm float requantize u8");
    // dequantize: fma(acc, 0.5, 1) = [[0 4] [0 13]]
    const float one[1] = {1.0f};
    float y[4] = {};
    const float want_y[4] = {0.0f, 4.0f, 0.0f, 13.0f};
    expect(c, lowbit::ref::gemm(dims, a, b, lowbit::gemm_dequantize_params{halff, one}, lowbit::span<float>(y), 2).ok() &&
                  equal(y, want_y, 4),
           "ref::gemm dequantize");
    // C too small: refused, nothing written
    std::int32_t small[3] = {7, 7, 7};
    const lowbit::status st = lowbit::ref::gemm(dims, a, b, lowbit::span<std::int32_t>(small), 2);
    expect(c, !st.ok() && st.code == lowbit::errc::size_mismatch && small[0] == 7 && small[2] == 7, "ref::gemm short C refused");
}

void qparams_checks(counter& c) {
    // NUMERICS.md: u8 affine over [-2.5, 252.5]: scale 255 / 255 = 1, zp = rint(2.5) = 2 (even)
    const auto q1 = lowbit::choose_qparams(lowbit::scheme<lowbit::u8>{}, opaque(-2.5f), 252.5f);
    expect(c, q1.ok() && q1->scale == 1.0f && q1->zero_point == 2, "choose_qparams u8 affine, tie to even");
    // s8 symmetric over [-1, 0.5]: scale = 1 / 127.5, zp 0
    const auto q2 = lowbit::choose_qparams(lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>{}, opaque(-1.0f), 0.5f);
    expect(c, q2.ok() && q2->scale == 1.0f / 127.5f && q2->zero_point == 0, "choose_qparams s8 symmetric");
    // per channel
    const float mins[2] = {opaque(-2.5f), 0.0f}, maxs[2] = {252.5f, 0.0f};
    float sc[2] = {};
    std::int32_t zp[2] = {};
    const bool ok = lowbit::choose_qparams(lowbit::scheme<lowbit::u8>{}, mins, maxs, sc, zp).ok();
    // all-zero channel: scale = eps (2^-23), zp = qmin
    expect(c, ok && sc[0] == 1.0f && zp[0] == 2 && sc[1] == 1.1920929e-07f && zp[1] == 0, "choose_qparams per channel");
}

void reduce_checks(counter& c) {
    const float x[4] = {opaque(0.1f), 0.5f, 0.9f, 1.0f};
    const auto r = lowbit::ref::min_max(x);
    expect(c, r.ok() && r->min == 0.1f && r->max == 1.0f, "ref::min_max");
    // [0, 1] in 2 bins: 0.1 -> 0; 0.5, 0.9 -> 1; 1.0 (= hi) -> the last bin
    std::uint64_t counts[2] = {};
    expect(c, lowbit::ref::histogram(x, 0.0f, 1.0f, counts).ok() && counts[0] == 1 && counts[1] == 3, "ref::histogram");
}

}  // namespace

void core_checks(counter& c) {
    quantize_checks(c);
    fixed_point_checks(c);
    int4_checks(c);
    gemm_checks(c);
    qparams_checks(c);
    reduce_checks(c);
}

}  // namespace fwcheck
