// lowbit/kernels/x86/gemm_int4_avx2.hpp: AVX2 (+FMA, F16C) micro-kernels of the int4
// weight-only GEMV / small-M GEMM (kernels/gemm_int4.hpp), bit-identical to the spec.
//
// Same packed layout and the same arithmetic as x86/gemm_int4_avx512.hpp (read its comment),
// on 8 lanes: a tile of 16 rows is two halves, rows 0-7 in bytes 0-31 of each 64-byte chunk
// and rows 8-15 in bytes 32-63. f32 activations: AVX2 has no 16-entry float table lookup, so
// a weight becomes a float as ((dword >> shift) & 15) - z in int32 (z = 8 for s4, the zero
// point for u4), then vcvtdq2ps (exact). q8 activations: vpmaddubsw + vpmaddwd (no
// saturation: |pair| <= 3840, see the AVX-512 file), accumulator starting at -z * asum.
#ifndef LOWBIT_KERNELS_X86_GEMM_INT4_AVX2_HPP
#define LOWBIT_KERNELS_X86_GEMM_INT4_AVX2_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "gemm_int4_avx512.hpp"  // int4_tile_geometry

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define LOWBIT_INT4_AVX2 1
#else
#define LOWBIT_INT4_AVX2 0
#endif

namespace lowbit {
namespace kernels {
namespace x86 {

#if LOWBIT_INT4_AVX2

// Register-array indices and lane counts are small non-negative ints mixed with size_t offsets;
// as in the AVX-512 file, sign / width conversion warnings are silenced for the kernels only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wconversion"

namespace detail256 {

LOWBIT_FORCE_INLINE __m256 load_scales(const std::uint8_t* p, bool f16) noexcept {
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))
               : _mm256_loadu_ps(reinterpret_cast<const float*>(p));
}
LOWBIT_FORCE_INLINE __m256i load_zp(const std::uint8_t* p) noexcept {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
LOWBIT_FORCE_INLINE __m256i bcast4(const std::int8_t* p) noexcept {
    std::int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// One k of the f32 path over H half tiles.
template <int H, int MB, int Shift>
LOWBIT_FORCE_INLINE void f32_step(const __m256i (&x)[H], const __m256i (&z)[H], const float* ak, std::size_t lda,
                                  __m256 (&t)[MB][H]) noexcept {
    const __m256i low4 = _mm256_set1_epi32(15);
    LOWBIT_INT4_UNROLL
    for (int h = 0; h < H; ++h) {
        const __m256i u = _mm256_and_si256(Shift == 0 ? x[h] : _mm256_srli_epi32(x[h], Shift), low4);
        const __m256 w = _mm256_cvtepi32_ps(_mm256_sub_epi32(u, z[h]));
        LOWBIT_INT4_UNROLL
        for (int m = 0; m < MB; ++m) t[m][h] = _mm256_fmadd_ps(_mm256_set1_ps(ak[m * lda]), w, t[m][h]);
    }
}

}  // namespace detail256

/// f32 activations over R tiles (2R half tiles); same contract as int4_f32_avx512.
template <int R, int MB, bool U4>
void int4_f32_avx2(const std::uint8_t* tile0, const int4_tile_geometry& geo, const float* a, std::size_t lda,
                   const float* init, float* res) noexcept {
    constexpr int H = 2 * R;
    __m256 y[MB][H];
    LOWBIT_INT4_UNROLL
    for (int m = 0; m < MB; ++m)
        LOWBIT_INT4_UNROLL
        for (int h = 0; h < H; ++h) y[m][h] = _mm256_loadu_ps(init + 8 * h);
    const std::size_t groups = geo.k / geo.group_size, chunks = geo.group_size / 8;
    const std::size_t sstride = geo.f16 ? 32 : 64;
    for (std::size_t g = 0; g < groups; ++g) {
        __m256 s[H];
        __m256i z[H];
        LOWBIT_INT4_UNROLL
        for (int h = 0; h < H; ++h) {
            const std::uint8_t* tile = tile0 + static_cast<std::size_t>(h / 2) * geo.tile_bytes;
            const std::size_t half = static_cast<std::size_t>(h % 2);
            s[h] = detail256::load_scales(tile + geo.scale_offset + g * sstride + half * (sstride / 2), geo.f16);
            z[h] = U4 ? detail256::load_zp(tile + geo.zp_offset + g * 16 + half * 8) : _mm256_set1_epi32(8);
        }
        __m256 t[MB][H];
        LOWBIT_INT4_UNROLL
        for (int m = 0; m < MB; ++m)
            LOWBIT_INT4_UNROLL
            for (int h = 0; h < H; ++h) t[m][h] = _mm256_setzero_ps();
        const std::uint8_t* wp = tile0 + g * chunks * 64;
        const float* ag = a + g * geo.group_size;
        for (std::size_t c = 0; c < chunks; ++c) {
            __m256i x[H];
            LOWBIT_INT4_UNROLL
            for (int h = 0; h < H; ++h)
                x[h] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                    wp + static_cast<std::size_t>(h / 2) * geo.tile_bytes + c * 64 + static_cast<std::size_t>(h % 2) * 32));
            const float* ak = ag + c * 8;
            detail256::f32_step<H, MB, 0>(x, z, ak + 0, lda, t);
            detail256::f32_step<H, MB, 8>(x, z, ak + 1, lda, t);
            detail256::f32_step<H, MB, 16>(x, z, ak + 2, lda, t);
            detail256::f32_step<H, MB, 24>(x, z, ak + 3, lda, t);
            detail256::f32_step<H, MB, 4>(x, z, ak + 4, lda, t);
            detail256::f32_step<H, MB, 12>(x, z, ak + 5, lda, t);
            detail256::f32_step<H, MB, 20>(x, z, ak + 6, lda, t);
            detail256::f32_step<H, MB, 28>(x, z, ak + 7, lda, t);
        }
        LOWBIT_INT4_UNROLL
        for (int m = 0; m < MB; ++m)
            LOWBIT_INT4_UNROLL
            for (int h = 0; h < H; ++h) y[m][h] = _mm256_fmadd_ps(t[m][h], s[h], y[m][h]);
    }
    LOWBIT_INT4_UNROLL
    for (int m = 0; m < MB; ++m)
        LOWBIT_INT4_UNROLL
        for (int h = 0; h < H; ++h) _mm256_storeu_ps(res + m * 16 * R + 8 * h, y[m][h]);
}

/// q8 activations over R tiles; same contract as int4_q8_avx512.
template <int R, int MB, bool U4>
void int4_q8_avx2(const std::uint8_t* tile0, const int4_tile_geometry& geo, const std::int8_t* q, const float* d,
                  const std::int32_t* sums, const float* init, float* res) noexcept {
    constexpr int H = 2 * R;
    __m256 y[MB][H];
    LOWBIT_INT4_UNROLL
    for (int m = 0; m < MB; ++m)
        LOWBIT_INT4_UNROLL
        for (int h = 0; h < H; ++h) y[m][h] = _mm256_loadu_ps(init + 8 * h);
    const std::size_t k = geo.k, blocks = k / 32, per_group = geo.group_size / 32;
    const std::size_t sstride = geo.f16 ? 32 : 64;
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256 s[H];
    __m256i z[H];
    LOWBIT_INT4_UNROLL
    for (int h = 0; h < H; ++h) {
        s[h] = _mm256_setzero_ps();
        z[h] = _mm256_set1_epi32(8);
    }
    for (std::size_t b = 0; b < blocks; ++b) {
        if (b % per_group == 0) {
            const std::size_t g = b / per_group;
            LOWBIT_INT4_UNROLL
            for (int h = 0; h < H; ++h) {
                const std::uint8_t* tile = tile0 + static_cast<std::size_t>(h / 2) * geo.tile_bytes;
                const std::size_t half = static_cast<std::size_t>(h % 2);
                s[h] = detail256::load_scales(tile + geo.scale_offset + g * sstride + half * (sstride / 2), geo.f16);
                if constexpr (U4) z[h] = detail256::load_zp(tile + geo.zp_offset + g * 16 + half * 8);
            }
        }
        __m256i acc[MB][H];
        LOWBIT_INT4_UNROLL
        for (int m = 0; m < MB; ++m) {
            const __m256i ns = _mm256_set1_epi32(-sums[static_cast<std::size_t>(m) * blocks + b]);
            LOWBIT_INT4_UNROLL
            for (int h = 0; h < H; ++h) acc[m][h] = _mm256_mullo_epi32(z[h], ns);
        }
        const std::uint8_t* wp = tile0 + b * 4 * 64;
        for (std::size_t c = 0; c < 4; ++c) {
            __m256i lo[H], hi[H];
            LOWBIT_INT4_UNROLL
            for (int h = 0; h < H; ++h) {
                const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                    wp + static_cast<std::size_t>(h / 2) * geo.tile_bytes + c * 64 + static_cast<std::size_t>(h % 2) * 32));
                lo[h] = _mm256_and_si256(x, low4);
                hi[h] = _mm256_and_si256(_mm256_srli_epi16(x, 4), low4);
            }
            LOWBIT_INT4_UNROLL
            for (int m = 0; m < MB; ++m) {
                const std::int8_t* ap = q + static_cast<std::size_t>(m) * k + b * 32 + c * 8;
                const __m256i a0 = detail256::bcast4(ap), a1 = detail256::bcast4(ap + 4);
                LOWBIT_INT4_UNROLL
                for (int h = 0; h < H; ++h) {
                    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo[h], a0), _mm256_maddubs_epi16(hi[h], a1));
                    acc[m][h] = _mm256_add_epi32(acc[m][h], _mm256_madd_epi16(p, ones16));
                }
            }
        }
        LOWBIT_INT4_UNROLL
        for (int m = 0; m < MB; ++m) {
            const __m256 da = _mm256_set1_ps(d[static_cast<std::size_t>(m) * blocks + b]);
            LOWBIT_INT4_UNROLL
            for (int h = 0; h < H; ++h)
                y[m][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[m][h]), _mm256_mul_ps(s[h], da), y[m][h]);
        }
    }
    LOWBIT_INT4_UNROLL
    for (int m = 0; m < MB; ++m)
        LOWBIT_INT4_UNROLL
        for (int h = 0; h < H; ++h) _mm256_storeu_ps(res + m * 16 * R + 8 * h, y[m][h]);
}

#pragma GCC diagnostic pop

#endif  // LOWBIT_INT4_AVX2

}  // namespace x86
}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_X86_GEMM_INT4_AVX2_HPP
