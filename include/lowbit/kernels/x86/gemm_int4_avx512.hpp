// lowbit/kernels/x86/gemm_int4_avx512.hpp: AVX-512 micro-kernels of the int4 weight-only GEMV /
// small-M GEMM (kernels/gemm_int4.hpp), bit-identical to ref::gemm_int4_f32 / gemm_int4_q8.
//
// Each kernel computes R tiles of 16 outputs (one zmm lane per output row) for MB activation
// rows, over the whole K, from the packed layout of kernels/gemm_int4.hpp: per tile, K / 8
// chunks of 64 bytes whose dword j holds row j's 8 weights k = 8c .. 8c + 7 as stored nibbles
// u (s4: q + 8, u4: q), byte i = u[8c + i] | u[8c + 4 + i] << 4.
//
// f32 activations: weight k + i of every lane is the nibble at bit 8i (i < 4) or 8(i - 4) + 4
// of its dword. vpermps uses only the low 4 bits of each index lane, so one shift and one
// vpermps against a 16-float table ({-8..7} for s4, {0..15} for u4, then minus the zero point,
// exact) turn 16 nibbles into 16 floats; then t = fma(a[k], w, t) per lane, k increasing, and
// y = fma(t, s, y) per group: exactly the spec's operations, lane by lane. R * MB independent
// accumulators hide the fma latency (the spec's order forbids splitting one lane's chain).
//
// q8 activations: lo = dword & 0x0F0F0F0F holds the 4 bytes u[k..k+3], hi = (dword >> 4) &
// 0x0F0F0F0F holds u[k+4..k+7], exactly the 4 consecutive activation bytes broadcast from
// a[k..k+3] and a[k+4..k+7]. vpdpbusd multiplies unsigned bytes (the weights, 0..15) by
// signed bytes (the activations) and adds 4 products into each int32 lane, so
//   sum_k u * a = sum_k (w + z) * a = dot + z * asum,    z = 8 (s4) or zp[n][g] (u4),
// and the accumulator starts at -z * asum (asum = the block's sum of q, from quantize_q8):
// worked number: w = -3, a = 5 (one product): u = 5, u * a = 25, minus 8 * 5 = -15 = w * a.
// Everything is exact int32 (|u * a| <= 15 * 128, 32 products, |z * asum| <= 15 * 32 * 128),
// so the order of the products does not matter. With VNNI the high nibbles are not shifted
// down: x & 0xF0 is the byte 16 * u (<= 240, still unsigned), that accumulator sums
// 16 * u * a (|16 products of it| <= 16 * 16 * 15 * 128 < 2^31, exact) and an arithmetic shift
// right by 4 of it per block is exact (a multiple of 16): one instruction instead of two per
// 64 bytes. Without VNNI, vpmaddubsw (u8 x s8 -> pairs
// summed into s16, saturating) cannot saturate here: |pair| <= 2 * 15 * 128 = 3840; then
// vpmaddwd with ones widens to int32. Per block: y = fma(f32(dot), f32(d_a * s), y).
#ifndef LOWBIT_KERNELS_X86_GEMM_INT4_AVX512_HPP
#define LOWBIT_KERNELS_X86_GEMM_INT4_AVX512_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../../config.hpp"

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>
#define LOWBIT_INT4_AVX512 1
#else
#define LOWBIT_INT4_AVX512 0
#endif
#if LOWBIT_INT4_AVX512 && defined(__AVX512VNNI__)
#define LOWBIT_INT4_AVX512_VNNI 1
#else
#define LOWBIT_INT4_AVX512_VNNI 0
#endif

// The loops over register arrays (tiles, rows) have compile-time trip counts and must be
// unrolled, or GCC keeps the arrays in memory and every fma waits on a store.
#if defined(__clang__)
#define LOWBIT_INT4_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define LOWBIT_INT4_UNROLL _Pragma("GCC unroll 16")
#else
#define LOWBIT_INT4_UNROLL
#endif

namespace lowbit {
namespace kernels {
namespace x86 {

/// Where one tile's sections are, relative to the tile (kernels/gemm_int4.hpp).
struct int4_tile_geometry {
    std::size_t tile_bytes = 0;  ///< bytes between consecutive tiles
    std::size_t k = 0, group_size = 0;
    std::size_t scale_offset = 0, zp_offset = 0;
    bool f16 = false;
};

#if LOWBIT_INT4_AVX512

// GCC 12 at -O0 expands several AVX-512 intrinsics to macros whose all-ones masks trip
// -Wsign-conversion in the including file; register-array indices are small non-negative ints
// mixed with size_t offsets; and GCC 12 reports its own _mm512_undefined_* as maybe
// uninitialized. These warnings are silenced for the kernels only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wconversion"
#if defined(__GNUC__) && !defined(__clang__)  // GCC 12's _mm512_undefined_* false positives
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace detail512 {

LOWBIT_FORCE_INLINE __m512 load_scales(const std::uint8_t* p, bool f16) noexcept {
    return f16 ? _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))
               : _mm512_loadu_ps(reinterpret_cast<const float*>(p));
}
LOWBIT_FORCE_INLINE __m512i load_zp(const std::uint8_t* p) noexcept {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
LOWBIT_FORCE_INLINE __m512i bcast4(const std::int8_t* p) noexcept {
    std::int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}
template <int Shift>
LOWBIT_FORCE_INLINE __m512i shift_right(__m512i x) noexcept {
    if constexpr (Shift == 0)
        return x;
    else
        return _mm512_srli_epi32(x, Shift);
}

// One k of the f32 path: the nibble at bit Shift of every lane of x[r], times a[m][k].
template <int R, int MB, bool U4, int Shift>
LOWBIT_FORCE_INLINE void f32_step(const __m512i (&x)[R], const __m512 (&zf)[R], __m512 table, const float* ak,
                                  std::size_t lda, __m512 (&t)[MB][R]) noexcept {
    LOWBIT_INT4_UNROLL
    for (int r = 0; r < R; ++r) {
        __m512 w = _mm512_permutexvar_ps(shift_right<Shift>(x[r]), table);
        if constexpr (U4) w = _mm512_sub_ps(w, zf[r]);
        LOWBIT_INT4_UNROLL
        for (int m = 0; m < MB; ++m) t[m][r] = _mm512_fmadd_ps(_mm512_set1_ps(ak[m * lda]), w, t[m][r]);
    }
}

}  // namespace detail512

/// f32 activations: res[m * 16R + 16r + j] = output row 16r + j (of the R tiles at tile0) for
/// activation row m < MB (a + m * lda), starting from init[16r + j]. See the file comment.
template <int R, int MB, bool U4>
void int4_f32_avx512(const std::uint8_t* tile0, const int4_tile_geometry& geo, const float* a, std::size_t lda,
                     const float* init, float* res) noexcept {
    const __m512 table = U4 ? _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
                            : _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
    __m512 y[MB][R];
    LOWBIT_INT4_UNROLL
    for (int m = 0; m < MB; ++m)
        LOWBIT_INT4_UNROLL
        for (int r = 0; r < R; ++r) y[m][r] = _mm512_loadu_ps(init + 16 * r);
    const std::size_t groups = geo.k / geo.group_size, chunks = geo.group_size / 8;
    const std::size_t sstride = geo.f16 ? 32 : 64;
    for (std::size_t g = 0; g < groups; ++g) {
        __m512 s[R], zf[R];
        LOWBIT_INT4_UNROLL
        for (int r = 0; r < R; ++r) {
            const std::uint8_t* tile = tile0 + static_cast<std::size_t>(r) * geo.tile_bytes;
            s[r] = detail512::load_scales(tile + geo.scale_offset + g * sstride, geo.f16);
            zf[r] = U4 ? _mm512_cvtepi32_ps(detail512::load_zp(tile + geo.zp_offset + g * 16)) : _mm512_setzero_ps();
        }
        __m512 t[MB][R];
        LOWBIT_INT4_UNROLL
        for (int m = 0; m < MB; ++m)
            LOWBIT_INT4_UNROLL
            for (int r = 0; r < R; ++r) t[m][r] = _mm512_setzero_ps();
        const std::uint8_t* wp = tile0 + g * chunks * 64;
        const float* ag = a + g * geo.group_size;
        for (std::size_t c = 0; c < chunks; ++c) {
            __m512i x[R];
            LOWBIT_INT4_UNROLL
            for (int r = 0; r < R; ++r)
                x[r] = _mm512_loadu_si512(wp + static_cast<std::size_t>(r) * geo.tile_bytes + c * 64);
            const float* ak = ag + c * 8;
            detail512::f32_step<R, MB, U4, 0>(x, zf, table, ak + 0, lda, t);
            detail512::f32_step<R, MB, U4, 8>(x, zf, table, ak + 1, lda, t);
            detail512::f32_step<R, MB, U4, 16>(x, zf, table, ak + 2, lda, t);
            detail512::f32_step<R, MB, U4, 24>(x, zf, table, ak + 3, lda, t);
            detail512::f32_step<R, MB, U4, 4>(x, zf, table, ak + 4, lda, t);
            detail512::f32_step<R, MB, U4, 12>(x, zf, table, ak + 5, lda, t);
            detail512::f32_step<R, MB, U4, 20>(x, zf, table, ak + 6, lda, t);
            detail512::f32_step<R, MB, U4, 28>(x, zf, table, ak + 7, lda, t);
        }
        LOWBIT_INT4_UNROLL
        for (int m = 0; m < MB; ++m)
            LOWBIT_INT4_UNROLL
            for (int r = 0; r < R; ++r) y[m][r] = _mm512_fmadd_ps(t[m][r], s[r], y[m][r]);
    }
    LOWBIT_INT4_UNROLL
    for (int m = 0; m < MB; ++m)
        LOWBIT_INT4_UNROLL
        for (int r = 0; r < R; ++r) _mm512_storeu_ps(res + m * 16 * R + 16 * r, y[m][r]);
}

/// q8 activations: as int4_f32_avx512, with MB rows of q8 blocks (q + m * K, d + m * K/32,
/// sums + m * K/32). Vnni: vpdpbusd, else vpmaddubsw + vpmaddwd (file comment).
template <int R, int MB, bool U4, bool Vnni>
void int4_q8_avx512(const std::uint8_t* tile0, const int4_tile_geometry& geo, const std::int8_t* q, const float* d,
                    const std::int32_t* sums, const float* init, float* res) noexcept {
    __m512 y[MB][R];
    LOWBIT_INT4_UNROLL
    for (int m = 0; m < MB; ++m)
        LOWBIT_INT4_UNROLL
        for (int r = 0; r < R; ++r) y[m][r] = _mm512_loadu_ps(init + 16 * r);
    const std::size_t k = geo.k, blocks = k / 32, per_group = geo.group_size / 32;
    const std::size_t sstride = geo.f16 ? 32 : 64;
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    const __m512i ones16 = _mm512_set1_epi16(1);
    __m512 s[R];
    __m512i zi[R];
    LOWBIT_INT4_UNROLL
    for (int r = 0; r < R; ++r) {
        s[r] = _mm512_setzero_ps();
        zi[r] = _mm512_setzero_si512();
    }
    for (std::size_t b = 0; b < blocks; ++b) {
        if (b % per_group == 0) {
            const std::size_t g = b / per_group;
            LOWBIT_INT4_UNROLL
            for (int r = 0; r < R; ++r) {
                const std::uint8_t* tile = tile0 + static_cast<std::size_t>(r) * geo.tile_bytes;
                s[r] = detail512::load_scales(tile + geo.scale_offset + g * sstride, geo.f16);
                if constexpr (U4) zi[r] = detail512::load_zp(tile + geo.zp_offset + g * 16);
            }
        }
        __m512i acc0[MB][R], acc1[MB][R];
        LOWBIT_INT4_UNROLL
        for (int m = 0; m < MB; ++m) {
            const std::int32_t sm = sums[static_cast<std::size_t>(m) * blocks + b];
            LOWBIT_INT4_UNROLL
            for (int r = 0; r < R; ++r) {
                acc0[m][r] = U4 ? _mm512_mullo_epi32(zi[r], _mm512_set1_epi32(-sm)) : _mm512_set1_epi32(-8 * sm);
                acc1[m][r] = _mm512_setzero_si512();
            }
        }
        const std::uint8_t* wp = tile0 + b * 4 * 64;
        for (std::size_t c = 0; c < 4; ++c) {
            __m512i lo[R], hi[R];
            LOWBIT_INT4_UNROLL
            for (int r = 0; r < R; ++r) {
                const __m512i x = _mm512_loadu_si512(wp + static_cast<std::size_t>(r) * geo.tile_bytes + c * 64);
                lo[r] = _mm512_and_si512(x, low4);
                // VNNI: the high nibbles stay in place (16 * u, still an unsigned byte), one op
                // fewer; the accumulator holds 16 * dot and is shifted back (exact) per block
                hi[r] = Vnni ? _mm512_andnot_si512(low4, x) : _mm512_and_si512(_mm512_srli_epi16(x, 4), low4);
            }
            LOWBIT_INT4_UNROLL
            for (int m = 0; m < MB; ++m) {
                const std::int8_t* ap = q + static_cast<std::size_t>(m) * k + b * 32 + c * 8;
                const __m512i a0 = detail512::bcast4(ap), a1 = detail512::bcast4(ap + 4);
                LOWBIT_INT4_UNROLL
                for (int r = 0; r < R; ++r) {
#if LOWBIT_INT4_AVX512_VNNI
                    if constexpr (Vnni) {
                        acc0[m][r] = _mm512_dpbusd_epi32(acc0[m][r], lo[r], a0);
                        acc1[m][r] = _mm512_dpbusd_epi32(acc1[m][r], hi[r], a1);
                        continue;
                    }
#endif
                    acc0[m][r] = _mm512_add_epi32(acc0[m][r], _mm512_madd_epi16(_mm512_maddubs_epi16(lo[r], a0), ones16));
                    acc1[m][r] = _mm512_add_epi32(acc1[m][r], _mm512_madd_epi16(_mm512_maddubs_epi16(hi[r], a1), ones16));
                }
            }
        }
        LOWBIT_INT4_UNROLL
        for (int m = 0; m < MB; ++m) {
            const __m512 da = _mm512_set1_ps(d[static_cast<std::size_t>(m) * blocks + b]);
            LOWBIT_INT4_UNROLL
            for (int r = 0; r < R; ++r) {
                const __m512i hi_dot = Vnni ? _mm512_srai_epi32(acc1[m][r], 4) : acc1[m][r];
                const __m512 dot = _mm512_cvtepi32_ps(_mm512_add_epi32(acc0[m][r], hi_dot));
                y[m][r] = _mm512_fmadd_ps(dot, _mm512_mul_ps(s[r], da), y[m][r]);
            }
        }
    }
    LOWBIT_INT4_UNROLL
    for (int m = 0; m < MB; ++m)
        LOWBIT_INT4_UNROLL
        for (int r = 0; r < R; ++r) _mm512_storeu_ps(res + m * 16 * R + 16 * r, y[m][r]);
}

/// True if the M x K activations (row r at x + r * ldx) are all finite.
inline bool int4_all_finite_avx512(const float* x, std::size_t m, std::size_t k, std::size_t ldx) noexcept {
    const __m512 inf = _mm512_set1_ps(__builtin_inff());
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
    __mmask16 ok = 0xFFFF;
    for (std::size_t r = 0; r < m; ++r)
        for (std::size_t c = 0; c < k; c += 16) {
            const __m512 v = _mm512_castsi512_ps(
                _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + r * ldx + c)), abs_mask));
            ok = static_cast<__mmask16>(ok & _mm512_cmp_ps_mask(v, inf, _CMP_LT_OQ));  // NaN compares false
        }
    return ok == 0xFFFF;
}

/// ref::quantize_q8 on finite activations (K a multiple of 32), bit for bit: amax by vmaxps
/// (exact), id = 127 / amax and d = amax / 127 as the same scalar IEEE divisions, x * id by
/// vmulps, rounding half to even by an explicit-rounding conversion (independent of MXCSR;
/// |x * id| <= 127.0000076, so the int32 is exact), narrowing by vpmovdb (values in range).
inline void int4_quantize_q8_avx512(const float* x, std::size_t m, std::size_t k, std::size_t ldx, std::int8_t* q,
                                    float* d, std::int32_t* sums) noexcept {
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
    const std::size_t blocks = k / 32;
    for (std::size_t r = 0; r < m; ++r)
        for (std::size_t b = 0; b < blocks; ++b) {
            const float* xb = x + r * ldx + b * 32;
            std::int8_t* qb = q + r * k + b * 32;
            const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
            const __m512 a0 = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v0), abs_mask));
            const __m512 a1 = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v1), abs_mask));
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
            const float id = 127.0f / amax;
            const std::size_t i = r * blocks + b;
            if (!(id - id == 0.0f)) {  // not finite: amax == 0 or below 127 / FLT_MAX
                std::memset(qb, 0, 32);
                d[i] = 0.0f;
                sums[i] = 0;
                continue;
            }
            const __m512 vid = _mm512_set1_ps(id);
            const __m512i q0 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v0, vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            const __m512i q1 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm_storeu_si128(reinterpret_cast<__m128i*>(qb), _mm512_cvtepi32_epi8(q0));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(qb + 16), _mm512_cvtepi32_epi8(q1));
            sums[i] = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
            d[i] = amax / 127.0f;
        }
}

#pragma GCC diagnostic pop

#endif  // LOWBIT_INT4_AVX512

}  // namespace x86
}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_X86_GEMM_INT4_AVX512_HPP
