// lowbit/kernels/x86/widen.hpp: 8-bit -> int32 widening and nibble unpacking, the inverse
// steps of narrow.hpp, which xsimd 8.1 has no portable operation for.
//
// widen4:         4 * lanes bytes (s8 sign-extended, u8 zero-extended) -> four int32
//                 registers in element order. SSE2: unpack with itself / zero + shifts;
//                 SSE4.1, AVX2, AVX-512: pmovsx/pmovzx straight from memory (one load+shuffle
//                 uop per register).
// widen4_nibbles: 2 * lanes packed bytes (4 * lanes nibbles, element 2i in the low nibble) ->
//                 four int32 registers; signed nibbles are sign-extended (0x8..0xF -> -8..-1).
// unpack_nibbles_block: 4 * lanes packed bytes -> 8 * lanes bytes (one nibble per byte,
//                 signed ones sign-extended to the byte).
// nibble_table / dequantize_nibbles_table (AVX-512): a 4-bit format has 16 values, so its
//                 dequantized floats fit one zmm; vpermps (which reads index bits 3:0) looks
//                 the low and the high nibble of each byte up directly.
// A signed nibble n becomes a byte as (n ^ 8) - 8: 0x7 -> 15 - 8 = 7, 0x8 -> 0 - 8 = -8,
// 0xF -> 7 - 8 = -1.
#ifndef LOWBIT_KERNELS_X86_WIDEN_HPP
#define LOWBIT_KERNELS_X86_WIDEN_HPP

#include <cstdint>

#include "../arch.hpp"

#if LOWBIT_KERNELS_X86  // x86 only: compiles away elsewhere
#include <immintrin.h>

namespace lowbit {
namespace kernels {
namespace detail {

// ---- 128-bit building blocks (every x86 ISA has them); templated on A so each ISA file
// gets its own copy ----

// 16 packed bytes -> elements 0..15 (lo) and 16..31 (hi), one per byte.
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void split_nibbles_128(__m128i v, __m128i& lo, __m128i& hi) noexcept {
    const __m128i m = _mm_set1_epi8(0x0F);
    __m128i l = _mm_and_si128(v, m);
    __m128i h = _mm_and_si128(_mm_srli_epi16(v, 4), m);
    if (Signed) {
        const __m128i eight = _mm_set1_epi8(8);
        l = _mm_sub_epi8(_mm_xor_si128(l, eight), eight);
        h = _mm_sub_epi8(_mm_xor_si128(h, eight), eight);
    }
    lo = _mm_unpacklo_epi8(l, h);
    hi = _mm_unpackhi_epi8(l, h);
}

// ---- SSE2 family: 16 bytes <-> 4 x 4 int32 ----

// 16 bytes in a register -> 4 x 4 int32 (SSE2: no pmovsx).
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void widen4_reg(__m128i v, xsimd::batch<std::int32_t, A>& a, xsimd::batch<std::int32_t, A>& b,
                                    xsimd::batch<std::int32_t, A>& c, xsimd::batch<std::int32_t, A>& d,
                                    xsimd::sse2) noexcept {
    if (Signed) {
        const __m128i lo16 = _mm_srai_epi16(_mm_unpacklo_epi8(v, v), 8);
        const __m128i hi16 = _mm_srai_epi16(_mm_unpackhi_epi8(v, v), 8);
        a = _mm_srai_epi32(_mm_unpacklo_epi16(lo16, lo16), 16);
        b = _mm_srai_epi32(_mm_unpackhi_epi16(lo16, lo16), 16);
        c = _mm_srai_epi32(_mm_unpacklo_epi16(hi16, hi16), 16);
        d = _mm_srai_epi32(_mm_unpackhi_epi16(hi16, hi16), 16);
    } else {
        const __m128i z = _mm_setzero_si128();
        const __m128i lo16 = _mm_unpacklo_epi8(v, z);
        const __m128i hi16 = _mm_unpackhi_epi8(v, z);
        a = _mm_unpacklo_epi16(lo16, z);
        b = _mm_unpackhi_epi16(lo16, z);
        c = _mm_unpacklo_epi16(hi16, z);
        d = _mm_unpackhi_epi16(hi16, z);
    }
}
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void widen4_reg(__m128i v, xsimd::batch<std::int32_t, A>& a, xsimd::batch<std::int32_t, A>& b,
                                    xsimd::batch<std::int32_t, A>& c, xsimd::batch<std::int32_t, A>& d,
                                    xsimd::sse4_1) noexcept {
    if (Signed) {
        a = _mm_cvtepi8_epi32(v);
        b = _mm_cvtepi8_epi32(_mm_srli_si128(v, 4));
        c = _mm_cvtepi8_epi32(_mm_srli_si128(v, 8));
        d = _mm_cvtepi8_epi32(_mm_srli_si128(v, 12));
    } else {
        a = _mm_cvtepu8_epi32(v);
        b = _mm_cvtepu8_epi32(_mm_srli_si128(v, 4));
        c = _mm_cvtepu8_epi32(_mm_srli_si128(v, 8));
        d = _mm_cvtepu8_epi32(_mm_srli_si128(v, 12));
    }
}

// 16 bytes -> 4 x 4 int32.
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void widen4(const std::uint8_t* p, xsimd::batch<std::int32_t, A>& a,
                                xsimd::batch<std::int32_t, A>& b, xsimd::batch<std::int32_t, A>& c,
                                xsimd::batch<std::int32_t, A>& d, xsimd::sse2) noexcept {
    widen4_reg<Signed, A>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), a, b, c, d, A{});
}

// 8 packed bytes (16 nibbles) -> 4 x 4 int32.
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void widen4_nibbles(const std::uint8_t* p, xsimd::batch<std::int32_t, A>& a,
                                        xsimd::batch<std::int32_t, A>& b, xsimd::batch<std::int32_t, A>& c,
                                        xsimd::batch<std::int32_t, A>& d, xsimd::sse2) noexcept {
    __m128i lo, hi;
    split_nibbles_128<Signed, A>(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)), lo, hi);
    widen4_reg<Signed, A>(lo, a, b, c, d, A{});
}

// 16 packed bytes -> 32 bytes.
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void unpack_nibbles_block(const std::uint8_t* in, std::uint8_t* out, xsimd::sse2) noexcept {
    __m128i lo, hi;
    split_nibbles_128<Signed, A>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in)), lo, hi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), lo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), hi);
}

// ---- AVX2: 32 bytes <-> 4 x 8 int32 ----

template <bool Signed, class A>
LOWBIT_FORCE_INLINE __m256i widen8_avx2(__m128i v) noexcept {  // low 8 bytes of v -> 8 int32
    return Signed ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v);
}

// 32 bytes -> 4 x 8 int32 (vpmovsxbd / vpmovzxbd ymm, m64).
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void widen4(const std::uint8_t* p, xsimd::batch<std::int32_t, A>& a,
                                xsimd::batch<std::int32_t, A>& b, xsimd::batch<std::int32_t, A>& c,
                                xsimd::batch<std::int32_t, A>& d, xsimd::avx2) noexcept {
    a = widen8_avx2<Signed, A>(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    b = widen8_avx2<Signed, A>(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8)));
    c = widen8_avx2<Signed, A>(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 16)));
    d = widen8_avx2<Signed, A>(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 24)));
}

// 16 packed bytes (32 nibbles) -> 4 x 8 int32.
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void widen4_nibbles(const std::uint8_t* p, xsimd::batch<std::int32_t, A>& a,
                                        xsimd::batch<std::int32_t, A>& b, xsimd::batch<std::int32_t, A>& c,
                                        xsimd::batch<std::int32_t, A>& d, xsimd::avx2) noexcept {
    __m128i lo, hi;
    split_nibbles_128<Signed, A>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), lo, hi);
    a = widen8_avx2<Signed, A>(lo);
    b = widen8_avx2<Signed, A>(_mm_srli_si128(lo, 8));
    c = widen8_avx2<Signed, A>(hi);
    d = widen8_avx2<Signed, A>(_mm_srli_si128(hi, 8));
}

// 32 packed bytes -> 64 bytes.
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void unpack_nibbles_block(const std::uint8_t* in, std::uint8_t* out, xsimd::avx2) noexcept {
    const __m256i m = _mm256_set1_epi8(0x0F);
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in));
    __m256i l = _mm256_and_si256(v, m);
    __m256i h = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
    if (Signed) {
        const __m256i eight = _mm256_set1_epi8(8);
        l = _mm256_sub_epi8(_mm256_xor_si256(l, eight), eight);
        h = _mm256_sub_epi8(_mm256_xor_si256(h, eight), eight);
    }
    const __m256i ulo = _mm256_unpacklo_epi8(l, h);  // bytes 0..7 | 16..23, as element pairs
    const __m256i uhi = _mm256_unpackhi_epi8(l, h);  // bytes 8..15 | 24..31
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permute2x128_si256(ulo, uhi, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32), _mm256_permute2x128_si256(ulo, uhi, 0x31));
}

// ---- AVX-512BW: 64 bytes <-> 4 x 16 int32 ----

template <bool Signed, class A>
LOWBIT_FORCE_INLINE __m512i widen16_avx512(__m128i v) noexcept {  // 16 bytes -> 16 int32
    return Signed ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v);
}

// 64 bytes -> 4 x 16 int32 (vpmovsxbd / vpmovzxbd zmm, m128).
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void widen4(const std::uint8_t* p, xsimd::batch<std::int32_t, A>& a,
                                xsimd::batch<std::int32_t, A>& b, xsimd::batch<std::int32_t, A>& c,
                                xsimd::batch<std::int32_t, A>& d, xsimd::avx512bw) noexcept {
    a = widen16_avx512<Signed, A>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    b = widen16_avx512<Signed, A>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
    c = widen16_avx512<Signed, A>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32)));
    d = widen16_avx512<Signed, A>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 48)));
}

// 32 packed bytes (64 nibbles) -> 4 x 16 int32.
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void widen4_nibbles(const std::uint8_t* p, xsimd::batch<std::int32_t, A>& a,
                                        xsimd::batch<std::int32_t, A>& b, xsimd::batch<std::int32_t, A>& c,
                                        xsimd::batch<std::int32_t, A>& d, xsimd::avx512bw) noexcept {
    __m128i lo0, hi0, lo1, hi1;
    split_nibbles_128<Signed, A>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), lo0, hi0);
    split_nibbles_128<Signed, A>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)), lo1, hi1);
    a = widen16_avx512<Signed, A>(lo0);
    b = widen16_avx512<Signed, A>(hi0);
    c = widen16_avx512<Signed, A>(lo1);
    d = widen16_avx512<Signed, A>(hi1);
}

// 64 packed bytes -> 128 bytes.
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void unpack_nibbles_block(const std::uint8_t* in, std::uint8_t* out, xsimd::avx512bw) noexcept {
    const __m512i m = _mm512_set1_epi8(0x0F);
    const __m512i v = _mm512_loadu_si512(in);
    __m512i l = _mm512_and_si512(v, m);
    __m512i h = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
    if (Signed) {
        const __m512i eight = _mm512_set1_epi8(8);
        l = _mm512_sub_epi8(_mm512_xor_si512(l, eight), eight);
        h = _mm512_sub_epi8(_mm512_xor_si512(h, eight), eight);
    }
    // per 128-bit lane j: ulo = bytes 16j..16j+7 as element pairs, uhi = bytes 16j+8..16j+15
    const __m512i ulo = _mm512_unpacklo_epi8(l, h);
    const __m512i uhi = _mm512_unpackhi_epi8(l, h);
    const __m512i first = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);  // lanes ulo0 uhi0 ulo1 uhi1
    const __m512i second = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
    _mm512_storeu_si512(out, _mm512_permutex2var_epi64(ulo, first, uhi));
    _mm512_storeu_si512(out + 64, _mm512_permutex2var_epi64(ulo, second, uhi));
}

// The 16 dequantized values of a 4-bit format: t[n] = (float(value(n)) - zp) * scale, value(n)
// = n, or n sign-extended (8..15 -> -8..-1). One rounding (the multiply): as ref's
// float(q - zp) * scale, since float(q) - zp is exact.
template <bool Signed, class A>
LOWBIT_FORCE_INLINE __m512 nibble_table(float zero_point, float scale, xsimd::avx512bw) noexcept {
    const __m512 v = Signed ? _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1)
                            : _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    return _mm512_mul_ps(_mm512_sub_ps(v, _mm512_set1_ps(zero_point)), _mm512_set1_ps(scale));
}

// 32 packed bytes (64 nibbles) -> 64 floats looked up in the table.
template <class A>
LOWBIT_FORCE_INLINE void dequantize_nibbles_table(const std::uint8_t* p, __m512 table, float* out,
                                                  xsimd::avx512bw) noexcept {
    const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (int h = 0; h < 2; ++h) {
        const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * h)));
        const __m512 even = _mm512_permutexvar_ps(b, table);  // low nibbles: elements 2j
        const __m512 odd = _mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), table);
        _mm512_storeu_ps(out + 32 * h, _mm512_permutex2var_ps(even, first, odd));
        _mm512_storeu_ps(out + 32 * h + 16, _mm512_permutex2var_ps(even, second, odd));
    }
}

}  // namespace detail
}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_X86
#endif  // LOWBIT_KERNELS_X86_WIDEN_HPP
