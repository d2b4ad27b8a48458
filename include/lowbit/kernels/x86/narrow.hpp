// lowbit/kernels/x86/narrow.hpp: int32 -> 8-bit narrowing and nibble packing, the steps
// xsimd 8.1 has no portable operation for.
//
// narrow4: four int32 registers holding values already clamped to [-128, 127] (signed) or
// [0, 255] (unsigned) become 4 * lanes bytes in order. SSE: packs_epi32 + packs/packus_epi16.
// AVX2 / AVX-512: the same in-lane packs, then one cross-lane permute to restore order
// (measured faster than vpmovsdb on this machine kind, see HARDWARE.md).
// pack_nibbles: 2n bytes (element 2i, 2i+1, values already masked or not) -> n bytes with
// element 2i in the low nibble.
// narrow_mask4: four float compare results (all-ones / all-zero lanes; AVX-512 mask registers)
// -> 4 * lanes bytes 1 / 0, in order.
// nibble_range_violation: nonzero if any of the 2n bytes pack_nibbles_block reads is outside
// [-8, 7] (signed: (v + 8) mod 256 > 15) or [0, 15] (unsigned: v > 15), i.e. has a bit set in
// 0xF0 after the +8 bias.
#ifndef LOWBIT_KERNELS_X86_NARROW_HPP
#define LOWBIT_KERNELS_X86_NARROW_HPP

#include <cstdint>

#include "../arch.hpp"

#if LOWBIT_KERNELS_X86  // x86 only: compiles away elsewhere
#include <immintrin.h>

namespace lowbit {
namespace kernels {
namespace detail {

// ---- SSE2 family: 4 x 4 int32 -> 16 bytes ----
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void narrow4(xsimd::batch<std::int32_t, A> a, xsimd::batch<std::int32_t, A> b,
                                 xsimd::batch<std::int32_t, A> c, xsimd::batch<std::int32_t, A> d, std::uint8_t* out,
                                 xsimd::sse2) noexcept {
    const __m128i ab = _mm_packs_epi32(a, b);
    const __m128i cd = _mm_packs_epi32(c, d);
    const __m128i r = Signed ? _mm_packs_epi16(ab, cd) : _mm_packus_epi16(ab, cd);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), r);
}

// 32 bytes (16 pairs) -> 16 packed bytes.
template <class A>
LOWBIT_FORCE_INLINE void pack_nibbles_block(const std::uint8_t* in, std::uint8_t* out, xsimd::sse2) noexcept {
    const __m128i m = _mm_set1_epi16(0x0F0F);
    const __m128i lo8 = _mm_set1_epi16(0x00FF);
    __m128i v0 = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in)), m);
    __m128i v1 = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16)), m);
    v0 = _mm_and_si128(_mm_or_si128(v0, _mm_srli_epi16(v0, 4)), lo8);
    v1 = _mm_and_si128(_mm_or_si128(v1, _mm_srli_epi16(v1, 4)), lo8);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(v0, v1));
}

// 4 x 4 compare results -> 16 bytes of 1 / 0 (-1 lanes pack to -1 bytes, then & 1).
template <class A>
LOWBIT_FORCE_INLINE void narrow_mask4(xsimd::batch_bool<float, A> a, xsimd::batch_bool<float, A> b,
                                      xsimd::batch_bool<float, A> c, xsimd::batch_bool<float, A> d,
                                      std::uint8_t* out, xsimd::sse2) noexcept {
    const __m128i ab = _mm_packs_epi32(_mm_castps_si128(a), _mm_castps_si128(b));
    const __m128i cd = _mm_packs_epi32(_mm_castps_si128(c), _mm_castps_si128(d));
    const __m128i r = _mm_and_si128(_mm_packs_epi16(ab, cd), _mm_set1_epi8(1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), r);
}

// Any of 32 bytes outside the nibble range? (SSE2: compare + movemask.)
template <bool Signed, class A>
LOWBIT_FORCE_INLINE bool nibble_range_violation(const std::uint8_t* in, xsimd::sse2) noexcept {
    __m128i v0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));
    __m128i v1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16));
    if (Signed) {
        v0 = _mm_add_epi8(v0, _mm_set1_epi8(8));
        v1 = _mm_add_epi8(v1, _mm_set1_epi8(8));
    }
    const __m128i high = _mm_and_si128(_mm_or_si128(v0, v1), _mm_set1_epi8(static_cast<char>(0xF0)));
    return _mm_movemask_epi8(_mm_cmpeq_epi8(high, _mm_setzero_si128())) != 0xFFFF;
}
template <bool Signed, class A>
LOWBIT_FORCE_INLINE bool nibble_range_violation(const std::uint8_t* in, xsimd::sse4_1) noexcept {
    __m128i v0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));
    __m128i v1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16));
    if (Signed) {
        v0 = _mm_add_epi8(v0, _mm_set1_epi8(8));
        v1 = _mm_add_epi8(v1, _mm_set1_epi8(8));
    }
    return !_mm_testz_si128(_mm_or_si128(v0, v1), _mm_set1_epi8(static_cast<char>(0xF0)));
}

// ---- AVX2: 4 x 8 int32 -> 32 bytes ----
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void narrow4(xsimd::batch<std::int32_t, A> a, xsimd::batch<std::int32_t, A> b,
                                 xsimd::batch<std::int32_t, A> c, xsimd::batch<std::int32_t, A> d, std::uint8_t* out,
                                 xsimd::avx2) noexcept {
    const __m256i ab = _mm256_packs_epi32(a, b);  // per 128-bit lane: a0..3 b0..3 | a4..7 b4..7
    const __m256i cd = _mm256_packs_epi32(c, d);
    const __m256i r = Signed ? _mm256_packs_epi16(ab, cd) : _mm256_packus_epi16(ab, cd);
    // r's dwords: a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7 -> a0-3 a4-7 b0-3 b4-7 ...
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permutevar8x32_epi32(r, order));
}

// 64 bytes -> 32 packed bytes.
template <class A>
LOWBIT_FORCE_INLINE void pack_nibbles_block(const std::uint8_t* in, std::uint8_t* out, xsimd::avx2) noexcept {
    const __m256i m = _mm256_set1_epi16(0x0F0F);
    const __m256i lo8 = _mm256_set1_epi16(0x00FF);
    __m256i v0 = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in)), m);
    __m256i v1 = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 32)), m);
    v0 = _mm256_and_si256(_mm256_or_si256(v0, _mm256_srli_epi16(v0, 4)), lo8);
    v1 = _mm256_and_si256(_mm256_or_si256(v1, _mm256_srli_epi16(v1, 4)), lo8);
    const __m256i p = _mm256_packus_epi16(v0, v1);  // in-lane: v0 lo, v1 lo | v0 hi, v1 hi
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permute4x64_epi64(p, 0xD8));
}

// 4 x 8 compare results -> 32 bytes of 1 / 0 (same order fix as narrow4).
template <class A>
LOWBIT_FORCE_INLINE void narrow_mask4(xsimd::batch_bool<float, A> a, xsimd::batch_bool<float, A> b,
                                      xsimd::batch_bool<float, A> c, xsimd::batch_bool<float, A> d,
                                      std::uint8_t* out, xsimd::avx2) noexcept {
    const __m256i ab = _mm256_packs_epi32(_mm256_castps_si256(a), _mm256_castps_si256(b));
    const __m256i cd = _mm256_packs_epi32(_mm256_castps_si256(c), _mm256_castps_si256(d));
    const __m256i r = _mm256_and_si256(_mm256_packs_epi16(ab, cd), _mm256_set1_epi8(1));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permutevar8x32_epi32(r, order));
}

// Any of 64 bytes outside the nibble range?
template <bool Signed, class A>
LOWBIT_FORCE_INLINE bool nibble_range_violation(const std::uint8_t* in, xsimd::avx2) noexcept {
    __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in));
    __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 32));
    if (Signed) {
        v0 = _mm256_add_epi8(v0, _mm256_set1_epi8(8));
        v1 = _mm256_add_epi8(v1, _mm256_set1_epi8(8));
    }
    return !_mm256_testz_si256(_mm256_or_si256(v0, v1), _mm256_set1_epi8(static_cast<char>(0xF0)));
}

// ---- AVX-512BW: 4 x 16 int32 -> 64 bytes ----
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void narrow4(xsimd::batch<std::int32_t, A> a, xsimd::batch<std::int32_t, A> b,
                                 xsimd::batch<std::int32_t, A> c, xsimd::batch<std::int32_t, A> d, std::uint8_t* out,
                                 xsimd::avx512bw) noexcept {
    const __m512i ab = _mm512_packs_epi32(a, b);
    const __m512i cd = _mm512_packs_epi32(c, d);
    const __m512i r = Signed ? _mm512_packs_epi16(ab, cd) : _mm512_packus_epi16(ab, cd);
    // per 128-bit lane l: a(4l..4l+3) b(..) c(..) d(..) -> all of a, then b, c, d
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_storeu_si512(out, _mm512_permutexvar_epi32(order, r));
}

// 128 bytes -> 64 packed bytes.
template <class A>
LOWBIT_FORCE_INLINE void pack_nibbles_block(const std::uint8_t* in, std::uint8_t* out, xsimd::avx512bw) noexcept {
    const __m512i m = _mm512_set1_epi16(0x0F0F);
    for (int h = 0; h < 2; ++h) {
        __m512i v = _mm512_and_si512(_mm512_loadu_si512(in + 64 * h), m);
        v = _mm512_or_si512(v, _mm512_srli_epi16(v, 4));  // low byte of each word is the packed byte
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * h), _mm512_cvtepi16_epi8(v));
    }
}

// 4 x 16 mask bits -> 64 bytes of 1 / 0: the four masks joined into one 64-bit mask, then one
// zero-masked byte move.
template <class A>
LOWBIT_FORCE_INLINE void narrow_mask4(xsimd::batch_bool<float, A> a, xsimd::batch_bool<float, A> b,
                                      xsimd::batch_bool<float, A> c, xsimd::batch_bool<float, A> d,
                                      std::uint8_t* out, xsimd::avx512bw) noexcept {
    const __mmask32 ab = _mm512_kunpackw(static_cast<__mmask16>(b), static_cast<__mmask16>(a));  // b high, a low
    const __mmask32 cd = _mm512_kunpackw(static_cast<__mmask16>(d), static_cast<__mmask16>(c));
    const __mmask64 m = _mm512_kunpackd(cd, ab);
    _mm512_storeu_si512(out, _mm512_maskz_mov_epi8(m, _mm512_set1_epi8(1)));
}

// narrow4 for values r in [L, H] (|r| <= 256) that still lack the zero-point: packed to 16
// bits (exact), zp added in 16 bits (r + zp is in [qmin, qmax], no overflow), then packed to
// bytes; saves two of the four 32-bit adds. Used by the AVX-512 fast path (x86/quantize512.hpp).
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void narrow4_add_zp(__m512i a, __m512i b, __m512i c, __m512i d, __m512i zp16, std::uint8_t* out,
                                        xsimd::avx512bw) noexcept {
    const __m512i ab = _mm512_add_epi16(_mm512_packs_epi32(a, b), zp16);
    const __m512i cd = _mm512_add_epi16(_mm512_packs_epi32(c, d), zp16);
    const __m512i r = Signed ? _mm512_packs_epi16(ab, cd) : _mm512_packus_epi16(ab, cd);
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_storeu_si512(out, _mm512_permutexvar_epi32(order, r));
}

// narrow_mask4 from raw AVX-512 mask registers.
template <class A>
LOWBIT_FORCE_INLINE void narrow_mask4(__mmask16 a, __mmask16 b, __mmask16 c, __mmask16 d, std::uint8_t* out,
                                      xsimd::avx512bw) noexcept {
    const __mmask32 ab = _mm512_kunpackw(b, a);  // b high, a low
    const __mmask32 cd = _mm512_kunpackw(d, c);
    const __mmask64 m = _mm512_kunpackd(cd, ab);
    _mm512_storeu_si512(out, _mm512_maskz_mov_epi8(m, _mm512_set1_epi8(1)));
}

// Any of 128 bytes outside the nibble range?
template <bool Signed, class A>
LOWBIT_FORCE_INLINE bool nibble_range_violation(const std::uint8_t* in, xsimd::avx512bw) noexcept {
    __m512i v0 = _mm512_loadu_si512(in);
    __m512i v1 = _mm512_loadu_si512(in + 64);
    if (Signed) {
        v0 = _mm512_add_epi8(v0, _mm512_set1_epi8(8));
        v1 = _mm512_add_epi8(v1, _mm512_set1_epi8(8));
    }
    return _mm512_test_epi8_mask(_mm512_or_si512(v0, v1), _mm512_set1_epi8(static_cast<char>(0xF0))) != 0;
}

}  // namespace detail
}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_X86
#endif  // LOWBIT_KERNELS_X86_NARROW_HPP
