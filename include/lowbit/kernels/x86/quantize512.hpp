// lowbit/kernels/x86/quantize512.hpp: AVX-512 per-register quantize / fake-quantize / STE
// mask, with fewer instructions than simd.hpp's portable spec and the same bits.
// Used by kernels/quantize.hpp and kernels/fake_quantize.hpp for A = xsimd::avx512bw when
// fast512_usable(c) holds (|qmin - zp|, |qmax - zp| <= 256 and 1/scale a normal float: true
// for every 8- and 4-bit format unless the scale is above 2^125).
//
// Notation: L = qmin - zp, H = qmax - zp (integers, L <= 0 <= H, |L|, |H| <= 256);
// round = the scheme's rounding (half_even or half_away); v = fl(x * inv) (torch profile) or
// v_t = fl(x / scale) (tflite profile). ref gives q = NaN(x) ? zp : clamp(zp + round(v), qmin, qmax).
//
// 1. Clamp before rounding. round is monotone and fixes the integers L and H, so
//    round(clamp(v, L, H)) = clamp(round(v), L, H); the zero-point is added afterwards as an
//    integer (exact), so zp + round(clamp(v, L, H)) = clamp(zp + round(v), qmin, qmax).
//    The clamped value is in [-256, 256], so one vcvtps2dq with embedded rounding (round to
//    nearest even) converts it. A block with a NaN goes to the exact block (NaN -> zp).
// 2. half_away for |c| <= 2^9: round_half_away(c) = trunc(fl(c + copysign(0.5 - 2^-25, c))).
//    Proof (a = |c|, k = 0.5 - 2^-25, n = floor(a + 0.5), rounding is symmetric so take a >= 0):
//    lower: a = n - 0.5 (tie): a + k = n - 2^-25 is at most half an ulp below n (ulp below n
//      >= 2^-24) and n's mantissa is even at n = 1, within a quarter ulp for n >= 2: -> n.
//      a > n - 0.5: a >= n - 0.5 + 2^-24 (a >= 0.5 has ulp >= 2^-24), a + k > n: -> >= n.
//    upper: a <= n + 0.5 - ulp(a) (n + 0.5 is on a's grid), so a + k <= n + 1 - ulp(a) - 2^-25.
//      n = 0, a in [0.25, 0.5): a + k <= 1 - 2^-24 exactly representable; a < 0.25: < 0.75.
//      n >= 1: a >= n - 0.5 >= (n + 1) / 4, and for n >= 2 a >= (n + 1) / 2, so ulp(a) >= half
//      the ulp below n + 1 (n = 1: ulp(a) >= 2^-24 = half of 2^-23), so a + k is more than half
//      an ulp below n + 1: -> <= pred(n + 1). Truncation then gives n.
// 3. tflite (x / scale) without dividing. s = scale, q = x / s (real), inv = fl(1 / s) =
//    (1 / s)(1 + a), |a| <= 2^-24 (inv normal). w = fma(x, inv, K + C), K = 1536, C = 0.5 + d,
//    d = 2^-12 (K + C exact), one rounding: w = q(1 + a) + K + C + r1; v_t = q + r2. Where
//    |q| <= 2^9, w is in [1024, 2048) (ulp 2^-13): |r1| <= 2^-14, |q a| <= 2^-15,
//    |r2| <= 2^-15, so e := w - (v_t + K + C) has |e| <= E = 2^-13, and
//    w - (K + v_t + 0.5) = d + e lies in [2^-13, 3 * 2^-13].
//    wc = clamp(w, K + L + 0.5, K + H + 0.5), a float of [1024, 2048) whose fraction is its
//    mantissa bits 0..12 (bit i weighs 2^(i-13)). "Safe" lane: frac(wc) >= 2^-11 (bits 2..12
//    not all zero, one vptestnmd); since frac(wc) is a multiple of 2^-13, safe means
//    frac(wc) > 3 * 2^-13 >= d + E. Result floor(wc) - K (vcvtps2dq rounding down; the -K is
//    folded into the 16-bit zero-point add).
//    A. w in [K + L + 0.5, K + H + 0.5] (so |q| <= 257): m = floor(w), w - m > d + E >=
//       w - (K + v_t + 0.5) gives K + v_t + 0.5 > m, and K + v_t + 0.5 <= w - (d - E) < m + 1,
//       so v_t lies in the open interval (m - K - 0.5, m - K + 0.5): round(v_t) = m - K in every
//       tie rule, and m - K is in [L, H].
//    B. w > K + H + 0.5 (result H; frac 0.5, safe): |q| <= 2^9 gives v_t > H - 3 * 2^-13, so
//       round(v_t) >= H; q < -2^9 would make w < K - 511 < K + H; q > 2^9 gives v_t > H.
//    C. w < K + L + 0.5 (result L): |q| <= 2^9 gives v_t + 0.5 < L + 0.5 - 2^-13, v_t < L,
//       round(v_t) <= L; q > 2^9 would make w > K + 512 > K + L + 0.5; q < -2^9: v_t < L.
//    +-Inf x: w = +-Inf, cases B / C. A block holding a NaN x, or a lane that is not safe
//    (about 1 lane in 2048 on smooth data), is redone by the caller with simd.hpp's exact
//    division; the torch-profile fast blocks likewise leave NaN to the exact block.
// 4. STE mask, torch: qmin <= zp + round(v) <= qmax  <=>  lo <= v <= hi with lo the least
//    float with round(lo) >= L (L - 0.5 or the float above it, by the tie rule) and hi the
//    greatest with round(hi) <= H (round is monotone). NaN and +-Inf compare false.
//    tflite: the same bounds on v = fl(x * inv) instead of v_t, once with margin m = 2^-12
//    inwards ("in") and once outwards ("out"). Where |q| <= 2^9, |v - v_t| <= 2^9 (2^-24 + 2^-24
//    + 2^-48) + 2^-15 < 2^-13 < m - 2^-16 (2^-16: the rounding of the bounds lo +- m,
//    |lo|, |hi| < 256), so in => mask(v_t) => out; outside |q| <= 2^9 both are 0 (|v| > 256).
//    Lanes where in != out are unsafe (redone exactly); elsewhere mask(v_t) = in.
// 5. Fake-quant value: (clamp(round(v), L, H)) * scale in float: the rounded clamped value
//    (vrndscaleps) times scale with fma(r, scale, +0) so that a -0.0 from
//    rounding (-0.4 -> -0) becomes +0 as ref's float(q - zp) * scale; one rounding as ref.
#ifndef LOWBIT_KERNELS_X86_QUANTIZE512_HPP
#define LOWBIT_KERNELS_X86_QUANTIZE512_HPP

#include <cstdint>
#include <cstring>

#include "../../core/rounding.hpp"
#include "../simd.hpp"

#if LOWBIT_KERNELS_X86  // x86 only: compiles away elsewhere
#include <immintrin.h>

namespace lowbit {
namespace kernels {
namespace detail {

// _mm512_roundscale_ps with rounding Imm, all lanes. Without optimisation GCC's intrinsic is a
// macro passing the all-ones __mmask16 to a builtin taking a signed short, which
// -Wsign-conversion reports in the including code; the warning is off for this one line.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion"
#endif
template <int Imm>
LOWBIT_FORCE_INLINE __m512 roundscale512(__m512 v) noexcept {
    return _mm512_roundscale_ps(v, Imm);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

template <class A>
inline float next_float_toward(float v, bool up) noexcept {  // v != 0
    std::uint32_t b;
    std::memcpy(&b, &v, sizeof b);
    b = ((v > 0.0f) == up) ? b + 1 : b - 1;
    std::memcpy(&v, &b, sizeof v);
    return v;
}

/// Whether the AVX-512 fast paths apply to these constants (see the file comment).
template <class A>
inline bool fast512_usable(const quant_consts& c) noexcept {
    return c.qmin - c.zero_point >= -256.0f && c.qmax - c.zero_point <= 256.0f &&
           c.inv_scale >= 1.17549435e-38f && c.inv_scale < 3.0e38f;
}

/// Broadcast constants of the AVX-512 fast paths.
template <class A>
struct q512 {
    __m512 inv, scale;
    __m512 lo, hi;            ///< clamp bounds: [L, H] (torch) or 1536 + [L + 0.5, H + 0.5] (divide)
    __m512 add;               ///< 0.5 - 2^-25 (half_away) or 1536.5 + 2^-12 (divide)
    __m512 off;               ///< 1536 (divide)
    __m512 m_lo, m_hi;        ///< STE mask bounds on v (torch)
    __m512 m_lo_in, m_hi_in, m_lo_out, m_hi_out;  ///< STE mask bounds with margins (divide)
    __m512i zp16;             ///< zero-point (divide: zero-point - 1536) in every 16-bit lane

    q512(const quant_consts& c, bool divide, bool half_away) noexcept {
        const float L = c.qmin - c.zero_point, H = c.qmax - c.zero_point;
        inv = _mm512_set1_ps(c.inv_scale);
        scale = _mm512_set1_ps(c.scale);
        lo = _mm512_set1_ps(divide ? 1536.0f + L + 0.5f : L);
        hi = _mm512_set1_ps(divide ? 1536.0f + H + 0.5f : H);
        add = _mm512_set1_ps(divide ? 1536.5f + 0.000244140625f : 0.49999997f);
        off = _mm512_set1_ps(1536.0f);
        const lowbit::rounding mode = half_away ? lowbit::rounding::half_away : lowbit::rounding::half_even;
        float ml = L - 0.5f, mh = H + 0.5f;
        if (!(lowbit::round(ml, mode) >= L)) ml = next_float_toward<A>(ml, true);
        if (!(lowbit::round(mh, mode) <= H)) mh = next_float_toward<A>(mh, false);
        m_lo = _mm512_set1_ps(ml);
        m_hi = _mm512_set1_ps(mh);
        const float margin = 0.000244140625f;  // 2^-12
        m_lo_in = _mm512_set1_ps(ml + margin);
        m_hi_in = _mm512_set1_ps(mh - margin);
        m_lo_out = _mm512_set1_ps(ml - margin);
        m_hi_out = _mm512_set1_ps(mh + margin);
        zp16 = _mm512_set1_epi16(static_cast<short>(divide ? c.zero_point - 1536.0f : c.zero_point));
    }
};

// c + copysign(0.5 - 2^-25, c), to be truncated (comment point 2).
template <class A>
LOWBIT_FORCE_INLINE __m512 add_half_away(const q512<A>& k, __m512 c) noexcept {
    const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
    const __m512i h = _mm512_ternarylogic_epi32(_mm512_castps_si512(c), sign, _mm512_castps_si512(k.add), 0xEA);
    return _mm512_add_ps(c, _mm512_castsi512_ps(h));  // 0xEA: (c & sign) | add
}

/// Any NaN among 4 registers (the fast blocks leave NaN to the exact path).
template <class A>
LOWBIT_FORCE_INLINE __mmask16 any_nan512(__m512 x0, __m512 x1, __m512 x2, __m512 x3) noexcept {
    return static_cast<__mmask16>(_mm512_cmp_ps_mask(x0, x1, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(x2, x3, _CMP_UNORD_Q));
}

/// round(clamp(v, L, H)) as int32 (torch profile: v = x * inv); x must not be NaN.
template <class A, bool HalfAway>
LOWBIT_FORCE_INLINE __m512i quantize512_mul(const q512<A>& k, __m512 x) noexcept {
    const __m512 c = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x, k.inv), k.lo), k.hi);
    if constexpr (HalfAway)
        return _mm512_cvtt_roundps_epi32(add_half_away<A>(k, c), _MM_FROUND_NO_EXC);
    else
        return _mm512_cvt_roundps_epi32(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/// Divide profile: clamp(fma(x, inv, 1536.5 + 2^-12), 1536 + L + 0.5, 1536 + H + 0.5), whose
/// floor is 1536 + round(x / scale) unless the lane is or-ed into `unsafe` (file comment,
/// point 3); x must not be NaN.
template <class A>
LOWBIT_FORCE_INLINE __m512 divide512_clamped(const q512<A>& k, __m512 x, __mmask16& unsafe) noexcept {
    const __m512 w = _mm512_fmadd_ps(x, k.inv, k.add);
    const __m512 wc = _mm512_min_ps(_mm512_max_ps(w, k.lo), k.hi);
    // wc in [1024, 2048): mantissa bits 2..12 weigh 2^-11 .. 2^-1; all zero <=> frac(wc) < 2^-11
    const __m512i frac_bits = _mm512_set1_epi32(0x1FFC);
    unsafe = static_cast<__mmask16>(unsafe | _mm512_testn_epi32_mask(_mm512_castps_si512(wc), frac_bits));
    return wc;
}

/// 1536 + round(clamp(x / scale, L, H)) as int32, or `unsafe` set (comment point 3).
template <class A>
LOWBIT_FORCE_INLINE __m512i quantize512_div(const q512<A>& k, __m512 x, __mmask16& unsafe) noexcept {
    return _mm512_cvt_roundps_epi32(divide512_clamped<A>(k, x, unsafe), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
}

/// Fake-quant value, torch profile (comment point 5); x must not be NaN.
template <class A, bool HalfAway>
LOWBIT_FORCE_INLINE __m512 fake_quantize512_mul(const q512<A>& k, __m512 v) noexcept {
    const __m512 c = _mm512_min_ps(_mm512_max_ps(v, k.lo), k.hi);
    __m512 r;
    if constexpr (HalfAway)
        r = roundscale512<_MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC>(add_half_away<A>(k, c));
    else
        r = roundscale512<_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC>(c);
    return _mm512_fmadd_ps(r, k.scale, _mm512_setzero_ps());
}

/// Fake-quant value, divide profile, or `unsafe` set: (floor(wc) - 1536) * scale, the
/// subtraction exact (Sterbenz) and +0 when zero.
template <class A>
LOWBIT_FORCE_INLINE __m512 fake_quantize512_div(const q512<A>& k, __m512 x, __mmask16& unsafe) noexcept {
    const __m512 wc = divide512_clamped<A>(k, x, unsafe);
    const __m512 r = roundscale512<_MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC>(wc);
    return _mm512_mul_ps(_mm512_sub_ps(r, k.off), k.scale);
}

/// STE mask, torch profile: lo <= v <= hi (v = x * inv).
template <class A>
LOWBIT_FORCE_INLINE __mmask16 mask512_mul(const q512<A>& k, __m512 v) noexcept {
    return _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(v, k.m_lo, _CMP_GE_OQ), v, k.m_hi, _CMP_LE_OQ);
}

/// STE mask, divide profile, from v = x * inv; lanes in doubt or-ed into `unsafe`.
template <class A>
LOWBIT_FORCE_INLINE __mmask16 mask512_div(const q512<A>& k, __m512 v, __mmask16& unsafe) noexcept {
    const __mmask16 in = _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(v, k.m_lo_in, _CMP_GE_OQ), v, k.m_hi_in, _CMP_LE_OQ);
    const __mmask16 out =
        _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(v, k.m_lo_out, _CMP_GE_OQ), v, k.m_hi_out, _CMP_LE_OQ);
    unsafe = static_cast<__mmask16>(unsafe | (in ^ out));
    return in;
}

/// mask ? dy : dy * 0.0f, as ref's pass_gradient (a NaN dy stays NaN, -0.0 for negative dy).
template <class A>
LOWBIT_FORCE_INLINE __m512 apply_mask512(__mmask16 m, __m512 dy) noexcept {
    return _mm512_mask_mov_ps(_mm512_mul_ps(dy, _mm512_setzero_ps()), m, dy);
}

}  // namespace detail
}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_X86
#endif  // LOWBIT_KERNELS_X86_QUANTIZE512_HPP
