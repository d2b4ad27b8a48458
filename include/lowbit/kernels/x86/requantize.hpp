// lowbit/kernels/x86/requantize.hpp: the integer steps of requantization that xsimd 8.1 has
// no portable operation for: 32x32->64-bit products, per-lane shifts, and the final
// int32 -> 8-bit narrowing with the zero-point and the clamp folded in.
//
// mulhi31(s, q, r): floor((s * q + r) / 2^31) per lane, for int32 s, q in [0, 2^31),
//   r in [0, 2^30]. With r = 2^30 it is gemmlowp's SaturatingRoundingDoublingHighMul for a
//   non-negative multiplier (its truncating division of s*q + 2^30 or s*q + 1 - 2^30 is the
//   floor of (s*q + 2^30) / 2^31 in both cases, and it cannot saturate when q >= 0). Even
//   lanes: pmuldq, 64-bit add, >> 31 keeps bits 31..62 in the low dword; odd lanes: the same
//   after moving them down, << 1 puts bits 31..62 in the high dword; one blend. SSE2 has only
//   the unsigned pmuludq: for s < 0 it computes (s + 2^32) * q, whose quotient is 2q too big
//   (q * 2^32 / 2^31), so 2q is subtracted where s < 0 (mod 2^32; the result fits int32).
// sra_lanes / srl_lanes / sll_lanes(x, count, pow): per-lane shifts. AVX2 / AVX-512 use
//   vpsravd / vpsrlvd / vpsllvd with `count`; SSE has no per-lane shift, so `pow` carries
//   2^(31 - count) (right: u >> n = floor(u * 2^(31-n) / 2^31) by pmuludq for unsigned u, and
//   x >> n = ~(~x >> n) for x < 0) or 2^count (left: the low half of x * 2^n).
// abs_s32(x), apply_sign(u, h): |x| and (h < 0 ? -u : u) (pabsd / psignd from SSSE3 on; the
//   AVX-512 sign is a masked subtraction under vpmovd2m). For gemmlowp's RoundingDivideByPOT,
//   round half away from zero: sign(h) * ((|h| + 2^(e-1)) >> e), |h| + 2^(e-1) < 2^32 as
//   long as h > INT32_MIN.
// narrow4_clamp<Signed>(a, b, c, d, zp, lo, hi, out): out = clamp(r + zp, lo, hi) as bytes for
//   four int32 registers r, via int16: packssdw saturates r to int16, paddsw adds zp
//   saturating, pmaxsw / pminsw clamp, packsswb / packuswb narrow. Exact for lo, hi, zp in
//   [-128, 255]: saturating r beyond +-32767 keeps it beyond the clamp on the same side.
#ifndef LOWBIT_KERNELS_X86_REQUANTIZE_HPP
#define LOWBIT_KERNELS_X86_REQUANTIZE_HPP

#include <cstdint>

#include "../arch.hpp"

#if LOWBIT_KERNELS_X86  // x86 only: compiles away elsewhere
#include <immintrin.h>

namespace lowbit {
namespace kernels {
namespace detail {

// ---------------------------------------------------------------- SSE2 / SSE4.1 (128-bit)

// The count operand of the uniform shifts below, the same for every x86 ISA (hence any tag:
// fma3<avx2> converts to sse2 ambiguously): the count in the low 64 bits.
template <class A, class Tag>
LOWBIT_FORCE_INLINE __m128i uniform_count(int n, Tag) noexcept {
    return _mm_cvtsi32_si128(n);
}

// floor((s * q + r) / 2^31), SSE2: unsigned products corrected for s < 0.
template <class A>
LOWBIT_FORCE_INLINE __m128i mulhi31(__m128i s, __m128i q, __m128i r, xsimd::sse2) noexcept {
    const __m128i low = _mm_set_epi32(0, -1, 0, -1);
    const __m128i r_even = _mm_and_si128(r, low);
    const __m128i r_odd = _mm_srli_epi64(r, 32);
    const __m128i even = _mm_srli_epi64(_mm_add_epi64(_mm_mul_epu32(s, q), r_even), 31);
    const __m128i odd =
        _mm_slli_epi64(_mm_add_epi64(_mm_mul_epu32(_mm_srli_epi64(s, 32), _mm_srli_epi64(q, 32)), r_odd), 1);
    const __m128i u = _mm_or_si128(_mm_and_si128(even, low), _mm_andnot_si128(low, odd));
    return _mm_sub_epi32(u, _mm_and_si128(_mm_add_epi32(q, q), _mm_srai_epi32(s, 31)));
}
// SSE4.1: signed products.
template <class A>
LOWBIT_FORCE_INLINE __m128i mulhi31(__m128i s, __m128i q, __m128i r, xsimd::sse4_1) noexcept {
    const __m128i r_even = _mm_blend_epi16(r, _mm_setzero_si128(), 0xCC);
    const __m128i r_odd = _mm_srli_epi64(r, 32);
    const __m128i even = _mm_srli_epi64(_mm_add_epi64(_mm_mul_epi32(s, q), r_even), 31);
    const __m128i odd =
        _mm_slli_epi64(_mm_add_epi64(_mm_mul_epi32(_mm_srli_epi64(s, 32), _mm_srli_epi64(q, 32)), r_odd), 1);
    return _mm_blend_epi16(even, odd, 0xCC);
}

// Per-lane arithmetic x >> n, n in [0, 31]; pow = 2^(31 - n) (as uint32).
template <class A>
LOWBIT_FORCE_INLINE __m128i sra_lanes(__m128i x, __m128i, __m128i pow, xsimd::sse2) noexcept {
    const __m128i low = _mm_set_epi32(0, -1, 0, -1);
    const __m128i sign = _mm_srai_epi32(x, 31);
    const __m128i u = _mm_xor_si128(x, sign);  // in [0, 2^31)
    const __m128i even = _mm_srli_epi64(_mm_mul_epu32(u, pow), 31);
    const __m128i odd = _mm_slli_epi64(_mm_mul_epu32(_mm_srli_epi64(u, 32), _mm_srli_epi64(pow, 32)), 1);
    return _mm_xor_si128(_mm_or_si128(_mm_and_si128(even, low), _mm_andnot_si128(low, odd)), sign);
}
// Per-lane x << n, n in [0, 30]; pow = 2^n.
template <class A>
LOWBIT_FORCE_INLINE __m128i sll_lanes(__m128i x, __m128i, __m128i pow, xsimd::sse2) noexcept {
    const __m128i low = _mm_set_epi32(0, -1, 0, -1);
    const __m128i even = _mm_mul_epu32(x, pow);
    const __m128i odd = _mm_slli_epi64(_mm_mul_epu32(_mm_srli_epi64(x, 32), _mm_srli_epi64(pow, 32)), 32);
    return _mm_or_si128(_mm_and_si128(even, low), odd);
}
template <class A>
LOWBIT_FORCE_INLINE __m128i sll_lanes(__m128i x, __m128i, __m128i pow, xsimd::sse4_1) noexcept {
    return _mm_mullo_epi32(x, pow);
}

// Uniform shifts by a run-time count held in the low 64 bits of `n`.
template <class A>
LOWBIT_FORCE_INLINE __m128i sra_uniform(__m128i x, __m128i n, xsimd::sse2) noexcept {
    return _mm_sra_epi32(x, n);
}
template <class A>
LOWBIT_FORCE_INLINE __m128i sll_uniform(__m128i x, __m128i n, xsimd::sse2) noexcept {
    return _mm_sll_epi32(x, n);
}

// Per-lane logical x >> n, n in [0, 31]; pow = 2^(31 - n) (as uint32).
template <class A>
LOWBIT_FORCE_INLINE __m128i srl_lanes(__m128i x, __m128i, __m128i pow, xsimd::sse2) noexcept {
    const __m128i low = _mm_set_epi32(0, -1, 0, -1);
    const __m128i even = _mm_srli_epi64(_mm_mul_epu32(x, pow), 31);
    const __m128i odd = _mm_slli_epi64(_mm_mul_epu32(_mm_srli_epi64(x, 32), _mm_srli_epi64(pow, 32)), 1);
    return _mm_or_si128(_mm_and_si128(even, low), _mm_andnot_si128(low, odd));
}
template <class A>
LOWBIT_FORCE_INLINE __m128i srl_uniform(__m128i x, __m128i n, xsimd::sse2) noexcept {
    return _mm_srl_epi32(x, n);
}
template <class A>
LOWBIT_FORCE_INLINE __m128i abs_s32(__m128i x, xsimd::sse2) noexcept {
    const __m128i s = _mm_srai_epi32(x, 31);
    return _mm_sub_epi32(_mm_xor_si128(x, s), s);
}
template <class A>
LOWBIT_FORCE_INLINE __m128i abs_s32(__m128i x, xsimd::sse4_1) noexcept {
    return _mm_abs_epi32(x);
}
template <class A>
LOWBIT_FORCE_INLINE __m128i apply_sign(__m128i u, __m128i h, xsimd::sse2) noexcept {
    const __m128i s = _mm_srai_epi32(h, 31);
    return _mm_sub_epi32(_mm_xor_si128(u, s), s);
}
// psignd also zeroes where h == 0; callers only pass u == 0 there.
template <class A>
LOWBIT_FORCE_INLINE __m128i apply_sign(__m128i u, __m128i h, xsimd::sse4_1) noexcept {
    return _mm_sign_epi32(u, h);
}

template <bool Signed, class A>
LOWBIT_FORCE_INLINE void narrow4_clamp(__m128i a, __m128i b, __m128i c, __m128i d, std::int16_t zp, std::int16_t lo,
                                       std::int16_t hi, std::uint8_t* out, xsimd::sse2) noexcept {
    const __m128i vzp = _mm_set1_epi16(zp), vlo = _mm_set1_epi16(lo), vhi = _mm_set1_epi16(hi);
    const __m128i ab = _mm_min_epi16(_mm_max_epi16(_mm_adds_epi16(_mm_packs_epi32(a, b), vzp), vlo), vhi);
    const __m128i cd = _mm_min_epi16(_mm_max_epi16(_mm_adds_epi16(_mm_packs_epi32(c, d), vzp), vlo), vhi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), Signed ? _mm_packs_epi16(ab, cd) : _mm_packus_epi16(ab, cd));
}

// ---------------------------------------------------------------- AVX2 (256-bit)

template <class A>
LOWBIT_FORCE_INLINE __m256i mulhi31(__m256i s, __m256i q, __m256i r, xsimd::avx2) noexcept {
    const __m256i r_even = _mm256_blend_epi32(r, _mm256_setzero_si256(), 0xAA);
    const __m256i r_odd = _mm256_srli_epi64(r, 32);
    const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(s, q), r_even), 31);
    const __m256i odd = _mm256_slli_epi64(
        _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(s, 32), _mm256_srli_epi64(q, 32)), r_odd), 1);
    return _mm256_blend_epi32(even, odd, 0xAA);
}
template <class A>
LOWBIT_FORCE_INLINE __m256i sra_lanes(__m256i x, __m256i n, __m256i, xsimd::avx2) noexcept {
    return _mm256_srav_epi32(x, n);
}
template <class A>
LOWBIT_FORCE_INLINE __m256i sll_lanes(__m256i x, __m256i n, __m256i, xsimd::avx2) noexcept {
    return _mm256_sllv_epi32(x, n);
}
template <class A>
LOWBIT_FORCE_INLINE __m256i sra_uniform(__m256i x, __m128i n, xsimd::avx2) noexcept {
    return _mm256_sra_epi32(x, n);
}
template <class A>
LOWBIT_FORCE_INLINE __m256i sll_uniform(__m256i x, __m128i n, xsimd::avx2) noexcept {
    return _mm256_sll_epi32(x, n);
}

template <class A>
LOWBIT_FORCE_INLINE __m256i srl_lanes(__m256i x, __m256i n, __m256i, xsimd::avx2) noexcept {
    return _mm256_srlv_epi32(x, n);
}
template <class A>
LOWBIT_FORCE_INLINE __m256i srl_uniform(__m256i x, __m128i n, xsimd::avx2) noexcept {
    return _mm256_srl_epi32(x, n);
}
template <class A>
LOWBIT_FORCE_INLINE __m256i abs_s32(__m256i x, xsimd::avx2) noexcept {
    return _mm256_abs_epi32(x);
}
template <class A>
LOWBIT_FORCE_INLINE __m256i apply_sign(__m256i u, __m256i h, xsimd::avx2) noexcept {
    return _mm256_sign_epi32(u, h);
}

template <bool Signed, class A>
LOWBIT_FORCE_INLINE void narrow4_clamp(__m256i a, __m256i b, __m256i c, __m256i d, std::int16_t zp, std::int16_t lo,
                                       std::int16_t hi, std::uint8_t* out, xsimd::avx2) noexcept {
    const __m256i vzp = _mm256_set1_epi16(zp), vlo = _mm256_set1_epi16(lo), vhi = _mm256_set1_epi16(hi);
    const __m256i ab =
        _mm256_min_epi16(_mm256_max_epi16(_mm256_adds_epi16(_mm256_packs_epi32(a, b), vzp), vlo), vhi);
    const __m256i cd =
        _mm256_min_epi16(_mm256_max_epi16(_mm256_adds_epi16(_mm256_packs_epi32(c, d), vzp), vlo), vhi);
    const __m256i r = Signed ? _mm256_packs_epi16(ab, cd) : _mm256_packus_epi16(ab, cd);
    // dwords a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7 -> a0-3 a4-7 b0-3 b4-7 ... (as narrow4)
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permutevar8x32_epi32(r, order));
}

// ---------------------------------------------------------------- AVX-512BW (512-bit)

template <class A>
LOWBIT_FORCE_INLINE __m512i mulhi31(__m512i s, __m512i q, __m512i r, xsimd::avx512bw) noexcept {
    const __m512i r_even = _mm512_maskz_mov_epi32(0x5555, r);
    const __m512i r_odd = _mm512_srli_epi64(r, 32);
    const __m512i even = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(s, q), r_even), 31);
    const __m512i odd = _mm512_slli_epi64(
        _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(s, 32), _mm512_srli_epi64(q, 32)), r_odd), 1);
    return _mm512_mask_blend_epi32(0xAAAA, even, odd);
}
template <class A>
LOWBIT_FORCE_INLINE __m512i sra_lanes(__m512i x, __m512i n, __m512i, xsimd::avx512bw) noexcept {
    return _mm512_srav_epi32(x, n);
}
template <class A>
LOWBIT_FORCE_INLINE __m512i sll_lanes(__m512i x, __m512i n, __m512i, xsimd::avx512bw) noexcept {
    return _mm512_sllv_epi32(x, n);
}
template <class A>
LOWBIT_FORCE_INLINE __m512i sra_uniform(__m512i x, __m128i n, xsimd::avx512bw) noexcept {
    return _mm512_sra_epi32(x, n);
}
template <class A>
LOWBIT_FORCE_INLINE __m512i sll_uniform(__m512i x, __m128i n, xsimd::avx512bw) noexcept {
    return _mm512_sll_epi32(x, n);
}

template <class A>
LOWBIT_FORCE_INLINE __m512i srl_lanes(__m512i x, __m512i n, __m512i, xsimd::avx512bw) noexcept {
    return _mm512_srlv_epi32(x, n);
}
template <class A>
LOWBIT_FORCE_INLINE __m512i srl_uniform(__m512i x, __m128i n, xsimd::avx512bw) noexcept {
    return _mm512_srl_epi32(x, n);
}
template <class A>
LOWBIT_FORCE_INLINE __m512i abs_s32(__m512i x, xsimd::avx512bw) noexcept {
    return _mm512_abs_epi32(x);
}
template <class A>
LOWBIT_FORCE_INLINE __m512i apply_sign(__m512i u, __m512i h, xsimd::avx512bw) noexcept {
    return _mm512_mask_sub_epi32(u, _mm512_movepi32_mask(h), _mm512_setzero_si512(), u);
}

template <bool Signed, class A>
LOWBIT_FORCE_INLINE void narrow4_clamp(__m512i a, __m512i b, __m512i c, __m512i d, std::int16_t zp, std::int16_t lo,
                                       std::int16_t hi, std::uint8_t* out, xsimd::avx512bw) noexcept {
    const __m512i vzp = _mm512_set1_epi16(zp), vlo = _mm512_set1_epi16(lo), vhi = _mm512_set1_epi16(hi);
    const __m512i ab =
        _mm512_min_epi16(_mm512_max_epi16(_mm512_adds_epi16(_mm512_packs_epi32(a, b), vzp), vlo), vhi);
    const __m512i cd =
        _mm512_min_epi16(_mm512_max_epi16(_mm512_adds_epi16(_mm512_packs_epi32(c, d), vzp), vlo), vhi);
    const __m512i r = Signed ? _mm512_packs_epi16(ab, cd) : _mm512_packus_epi16(ab, cd);
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_storeu_si512(out, _mm512_permutexvar_epi32(order, r));
}

}  // namespace detail
}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_X86
#endif  // LOWBIT_KERNELS_X86_REQUANTIZE_HPP
