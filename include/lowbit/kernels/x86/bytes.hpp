// lowbit/kernels/x86/bytes.hpp: one register's worth of 8-bit values in and out, and nibble
// unpacking: the steps of the per-channel kernels (per_channel.hpp) that xsimd 8.1 has no
// portable operation for.
//
// narrow_one<Signed>: one int32 register (lanes L) whose values are already clamped to
//   [-128, 127] or [0, 255] -> its L bytes, in order (SSE: 4, AVX2: 8, AVX-512: 16 bytes).
// widen_one<Signed>:  L bytes -> one int32 register, sign- or zero-extended.
// unpack_nibbles<Signed>: R packed bytes (R = register bytes: 16 / 32 / 64) -> 2R bytes,
//   element 2i = low nibble of byte i (core/int4.hpp), sign-extended from 4 bits when Signed
//   ((b ^ 8) - 8: 0x8..0xF become -8..-1).
#ifndef LOWBIT_KERNELS_X86_BYTES_HPP
#define LOWBIT_KERNELS_X86_BYTES_HPP

#include <cstdint>
#include <cstring>

#include "../arch.hpp"

#if LOWBIT_KERNELS_X86  // x86 only: compiles away elsewhere
#include <immintrin.h>

namespace lowbit {
namespace kernels {
namespace detail {

// ---- SSE2 family: 4 lanes ----
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void narrow_one(xsimd::batch<std::int32_t, A> a, std::uint8_t* out, xsimd::sse2) noexcept {
    const __m128i p = _mm_packs_epi32(a, a);
    const __m128i r = Signed ? _mm_packs_epi16(p, p) : _mm_packus_epi16(p, p);
    const int v = _mm_cvtsi128_si32(r);
    std::memcpy(out, &v, 4);
}

template <bool Signed, class A>
LOWBIT_FORCE_INLINE xsimd::batch<std::int32_t, A> widen_one(const std::uint8_t* in, xsimd::sse2) noexcept {
    int v;
    std::memcpy(&v, in, 4);
    const __m128i b = _mm_cvtsi32_si128(v);
    if (Signed) {
        const __m128i w = _mm_unpacklo_epi8(b, b);
        return _mm_srai_epi32(_mm_unpacklo_epi16(w, w), 24);
    } else {
        const __m128i z = _mm_setzero_si128();
        return _mm_unpacklo_epi16(_mm_unpacklo_epi8(b, z), z);
    }
}

template <bool Signed, class A>
LOWBIT_FORCE_INLINE xsimd::batch<std::int32_t, A> widen_one(const std::uint8_t* in, xsimd::sse4_1) noexcept {
    int v;
    std::memcpy(&v, in, 4);
    const __m128i b = _mm_cvtsi32_si128(v);
    return Signed ? _mm_cvtepi8_epi32(b) : _mm_cvtepu8_epi32(b);
}

// 16 packed bytes -> 32 bytes.
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void unpack_nibbles(const std::uint8_t* in, std::uint8_t* out, xsimd::sse2) noexcept {
    const __m128i m = _mm_set1_epi8(0x0F);
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));
    const __m128i lo = _mm_and_si128(v, m);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
    __m128i o0 = _mm_unpacklo_epi8(lo, hi);
    __m128i o1 = _mm_unpackhi_epi8(lo, hi);
    if (Signed) {
        const __m128i e = _mm_set1_epi8(8);
        o0 = _mm_sub_epi8(_mm_xor_si128(o0, e), e);
        o1 = _mm_sub_epi8(_mm_xor_si128(o1, e), e);
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), o0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), o1);
}

// ---- AVX2: 8 lanes ----
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void narrow_one(xsimd::batch<std::int32_t, A> a, std::uint8_t* out, xsimd::avx2) noexcept {
    const __m256i r = a;
    const __m128i p = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    const __m128i b = Signed ? _mm_packs_epi16(p, p) : _mm_packus_epi16(p, p);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), b);
}

template <bool Signed, class A>
LOWBIT_FORCE_INLINE xsimd::batch<std::int32_t, A> widen_one(const std::uint8_t* in, xsimd::avx2) noexcept {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(in));
    return Signed ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
}

// 32 packed bytes -> 64 bytes (the in-lane unpacks are put back in order by permute2x128).
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void unpack_nibbles(const std::uint8_t* in, std::uint8_t* out, xsimd::avx2) noexcept {
    const __m256i m = _mm256_set1_epi8(0x0F);
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in));
    const __m256i lo = _mm256_and_si256(v, m);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
    const __m256i ul = _mm256_unpacklo_epi8(lo, hi);  // packed bytes 0-7 | 16-23
    const __m256i uh = _mm256_unpackhi_epi8(lo, hi);  // packed bytes 8-15 | 24-31
    __m256i o0 = _mm256_permute2x128_si256(ul, uh, 0x20);
    __m256i o1 = _mm256_permute2x128_si256(ul, uh, 0x31);
    if (Signed) {
        const __m256i e = _mm256_set1_epi8(8);
        o0 = _mm256_sub_epi8(_mm256_xor_si256(o0, e), e);
        o1 = _mm256_sub_epi8(_mm256_xor_si256(o1, e), e);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), o0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32), o1);
}

// ---- AVX-512BW: 16 lanes ----
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void narrow_one(xsimd::batch<std::int32_t, A> a, std::uint8_t* out, xsimd::avx512bw) noexcept {
    // vpmovdb truncates; the values are already in range, so their low byte is the answer.
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(a));
}

template <bool Signed, class A>
LOWBIT_FORCE_INLINE xsimd::batch<std::int32_t, A> widen_one(const std::uint8_t* in, xsimd::avx512bw) noexcept {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));
    return Signed ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
}

// 64 packed bytes -> 128 bytes.
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void unpack_nibbles(const std::uint8_t* in, std::uint8_t* out, xsimd::avx512bw) noexcept {
    const __m512i m = _mm512_set1_epi8(0x0F);
    const __m512i v = _mm512_loadu_si512(in);
    const __m512i lo = _mm512_and_si512(v, m);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
    const __m512i ul = _mm512_unpacklo_epi8(lo, hi);  // per 128-bit lane l: packed bytes 16l + 0..7
    const __m512i uh = _mm512_unpackhi_epi8(lo, hi);  // per lane l: packed bytes 16l + 8..15
    __m512i o0 = _mm512_permutex2var_epi64(ul, _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), uh);
    __m512i o1 = _mm512_permutex2var_epi64(ul, _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15), uh);
    if (Signed) {
        const __m512i e = _mm512_set1_epi8(8);
        o0 = _mm512_sub_epi8(_mm512_xor_si512(o0, e), e);
        o1 = _mm512_sub_epi8(_mm512_xor_si512(o1, e), e);
    }
    _mm512_storeu_si512(out, o0);
    _mm512_storeu_si512(out + 64, o1);
}

}  // namespace detail
}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_X86
#endif  // LOWBIT_KERNELS_X86_BYTES_HPP
