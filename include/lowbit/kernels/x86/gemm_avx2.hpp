// lowbit/kernels/x86/gemm_avx2.hpp: int8 GEMM micro-kernels for x86 without a dot-product
// instruction: AVX2 (ymm) and AVX-512BW (zmm), both on vpmaddwd.
//
// Why not vpmaddubsw (the classic u8 x s8 -> int16 pair sum)? It SATURATES: 255 * 127 +
// 255 * 127 = 64770 > 32767, so for u8 A above 128 next to large B the int16 sum clips and
// the GEMM is wrong (e.g. A = [255, 255], B = [127, 127]: 32767 instead of 64770). It is exact
// only when |a0 b0 + a1 b1| <= 32767 always, e.g. A restricted to 7 bits, which lowbit cannot
// assume. Instead both operands are widened to int16 and multiplied with vpmaddwd, which
// adds two int16 x int16 products into an int32 lane: |a b| <= 255 * 128 = 32640, so the pair
// sum (<= 65280) is exact, and the only overflowing case of vpmaddwd (-32768 * -32768 twice)
// cannot occur. s8 A is sign-extended, so it needs no +128 shift either.
// The cost: vpmaddwd does 2 multiply-adds per int32 lane where vpmaddubsw + vpmaddwd did 4,
// each needs a vpaddd, and every k-quad of B is widened on the fly (vpmovsxbw from memory):
// about 4x the instructions of vpdpbusd per multiply-add. Measured on a Zen 4 core: ~130
// GOPS for both widths on 128 x 1024 x 1024, against ~430 for vpdpbusd (gemm_vnni.hpp).
//
// Layout. A packed k-quad holds column c's 4 bytes together (gemm_common.hpp); widened, 16
// bytes (4 columns) become a ymm of int16 [c0k0 c0k1 c0k2 c0k3 c1k0 ...], i.e. int32 lanes
// (c0: k0,k1) (c0: k2,k3) (c1: k0,k1) ... A's 4 values of the quad, widened once into a stack
// copy of the rows, are broadcast as one 64-bit pattern [a0 a1 a2 a3] repeated, so vpmaddwd
// gives each lane a0 b0 + a1 b1 or a2 b2 + a3 b3 of its column: two partial sums per column,
// added pairwise once per tile (hadd + permute on AVX2, two vpermt2d on AVX-512).
// Tiles: AVX2 4 rows x 8 columns (8 accumulators); AVX-512BW 6 rows x 32 columns (24).
// K is cut in chunks as in gemm_vnni.hpp; A is always copied (widened, zero padded).
#ifndef LOWBIT_KERNELS_X86_GEMM_AVX2_HPP
#define LOWBIT_KERNELS_X86_GEMM_AVX2_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "gemm_common.hpp"

#if LOWBIT_KERNELS_GEMM_X86

#define LOWBIT_DETAIL_TARGET_AVX2 __attribute__((target("avx2")))
#define LOWBIT_DETAIL_TARGET_AVX512BW __attribute__((target("avx2,avx512f,avx512bw,avx512vl")))

namespace lowbit {
namespace kernels {
namespace x86 {

constexpr std::size_t widen_kc = 256;    ///< K values per chunk (multiple of 64)
constexpr std::size_t widen_rows = 24;   ///< A rows widened at once (multiple of both MRs)
constexpr std::size_t avx2_mr = 4;       ///< rows of an AVX2 tile (x 8 columns)
constexpr std::size_t avx512bw_mr = 6;   ///< rows of an AVX-512BW tile
constexpr std::size_t avx512bw_np = 2;   ///< panels of an AVX-512BW tile
constexpr std::size_t widen_scratch = widen_rows * widen_kc;  ///< int16 values of the A copy

namespace widen_detail {

template <class Tag>
inline std::int64_t load_s64(const std::int16_t* p) noexcept {
    std::int64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

// ---------------------------------------------------------------- AVX2

// MR rows x 8 columns (half h of the panel at b): a = widened A (int16, stride lda values).
template <class Tag, std::size_t MR>
LOWBIT_DETAIL_TARGET_AVX2 inline void tile_avx2(const std::int16_t* a, std::size_t lda, std::size_t quads,
                                                const std::int8_t* b, std::int32_t* acc, std::size_t ld_acc,
                                                bool first) noexcept {
    __m256i c[MR][2];
#pragma GCC unroll 8
    for (std::size_t i = 0; i < MR; ++i) c[i][0] = c[i][1] = _mm256_setzero_si256();
    for (std::size_t q = 0; q < quads; ++q) {
        const __m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + q * 64)));
        const __m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + q * 64 + 16)));
#pragma GCC unroll 8
        for (std::size_t i = 0; i < MR; ++i) {
            const __m256i av = _mm256_set1_epi64x(load_s64<Tag>(a + std::size_t(i) * lda + q * 4));
            c[i][0] = _mm256_add_epi32(c[i][0], _mm256_madd_epi16(av, b0));
            c[i][1] = _mm256_add_epi32(c[i][1], _mm256_madd_epi16(av, b1));
        }
    }
#pragma GCC unroll 8
    for (std::size_t i = 0; i < MR; ++i) {
        // [c0 c1 c4 c5 | c2 c3 c6 c7] -> [c0 .. c7]
        __m256i v = _mm256_permute4x64_epi64(_mm256_hadd_epi32(c[i][0], c[i][1]), 0xD8);
        std::int32_t* p = acc + std::size_t(i) * ld_acc;
        if (!first) v = _mm256_add_epi32(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
    }
}

template <class Tag>
struct tiles_avx2 {
    static constexpr std::size_t mr = avx2_mr, np = 1;
    // mr rows x one panel (two 8-column halves).
    LOWBIT_DETAIL_TARGET_AVX2 static void run(std::size_t m, std::size_t, const std::int16_t* a, std::size_t lda,
                                              std::size_t quads, const std::int8_t* b, std::size_t,
                                              std::int32_t* acc, std::size_t ld_acc, bool first) noexcept {
        static_assert(avx2_mr == 4, "tiles_avx2 covers 4-row tiles");
        for (std::size_t h = 0; h < 2; ++h) {
            const std::int8_t* bh = b + h * 32;
            std::int32_t* ah = acc + h * 8;
            switch (m) {
                case 1: tile_avx2<Tag, 1>(a, lda, quads, bh, ah, ld_acc, first); break;
                case 2: tile_avx2<Tag, 2>(a, lda, quads, bh, ah, ld_acc, first); break;
                case 3: tile_avx2<Tag, 3>(a, lda, quads, bh, ah, ld_acc, first); break;
                default: tile_avx2<Tag, 4>(a, lda, quads, bh, ah, ld_acc, first); break;
            }
        }
    }
};

// ---------------------------------------------------------------- AVX-512BW

template <class Tag, std::size_t MR, std::size_t NP>
LOWBIT_DETAIL_TARGET_AVX512BW inline void tile_avx512bw(const std::int16_t* a, std::size_t lda, std::size_t quads,
                                                        const std::int8_t* b, std::size_t pstride, std::int32_t* acc,
                                                        std::size_t ld_acc, bool first) noexcept {
    __m512i c[MR][2 * NP];
#pragma GCC unroll 8
    for (std::size_t i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (std::size_t j = 0; j < 2 * NP; ++j) c[i][j] = _mm512_setzero_si512();
    for (std::size_t q = 0; q < quads; ++q) {
        __m512i bv[2 * NP];
#pragma GCC unroll 8
        for (std::size_t j = 0; j < 2 * NP; ++j)
            bv[j] = _mm512_cvtepi8_epi16(_mm256_loadu_si256(
                reinterpret_cast<const __m256i*>(b + std::size_t(j / 2) * pstride + q * 64 + std::size_t(j % 2) * 32)));
#pragma GCC unroll 8
        for (std::size_t i = 0; i < MR; ++i) {
            const __m512i av = _mm512_set1_epi64(load_s64<Tag>(a + std::size_t(i) * lda + q * 4));
#pragma GCC unroll 8
            for (std::size_t j = 0; j < 2 * NP; ++j) c[i][j] = _mm512_add_epi32(c[i][j], _mm512_madd_epi16(av, bv[j]));
        }
    }
    // lanes (c, k0k1) (c, k2k3) for c = 0..7 | 8..15: add the pairs (even + odd lanes).
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
#pragma GCC unroll 8
    for (std::size_t i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (std::size_t j = 0; j < NP; ++j) {
            const __m512i x = c[i][2 * j], y = c[i][2 * j + 1];
            __m512i v = _mm512_add_epi32(_mm512_permutex2var_epi32(x, even, y), _mm512_permutex2var_epi32(x, odd, y));
            std::int32_t* p = acc + std::size_t(i) * ld_acc + std::size_t(j) * 16;
            if (!first) v = _mm512_add_epi32(v, _mm512_loadu_si512(p));
            _mm512_storeu_si512(p, v);
        }
}

template <class Tag, std::size_t MR>
LOWBIT_DETAIL_TARGET_AVX512BW inline void tile_avx512bw_np(std::size_t np, const std::int16_t* a, std::size_t lda,
                                                           std::size_t quads, const std::int8_t* b, std::size_t pstride,
                                                           std::int32_t* acc, std::size_t ld_acc, bool first) noexcept {
    if (np == 1)
        tile_avx512bw<Tag, MR, 1>(a, lda, quads, b, pstride, acc, ld_acc, first);
    else
        tile_avx512bw<Tag, MR, 2>(a, lda, quads, b, pstride, acc, ld_acc, first);
}

template <class Tag>
struct tiles_avx512bw {
    static constexpr std::size_t mr = avx512bw_mr, np = avx512bw_np;
    LOWBIT_DETAIL_TARGET_AVX512BW static void run(std::size_t m, std::size_t n, const std::int16_t* a, std::size_t lda,
                                                  std::size_t quads, const std::int8_t* b, std::size_t pstride,
                                                  std::int32_t* acc, std::size_t ld_acc, bool first) noexcept {
        static_assert(avx512bw_mr == 6 && avx512bw_np == 2, "tiles_avx512bw covers 6 x 2 tiles");
        switch (m) {
            case 1: tile_avx512bw_np<Tag, 1>(n, a, lda, quads, b, pstride, acc, ld_acc, first); break;
            case 2: tile_avx512bw_np<Tag, 2>(n, a, lda, quads, b, pstride, acc, ld_acc, first); break;
            case 3: tile_avx512bw_np<Tag, 3>(n, a, lda, quads, b, pstride, acc, ld_acc, first); break;
            case 4: tile_avx512bw_np<Tag, 4>(n, a, lda, quads, b, pstride, acc, ld_acc, first); break;
            case 5: tile_avx512bw_np<Tag, 5>(n, a, lda, quads, b, pstride, acc, ld_acc, first); break;
            default: tile_avx512bw_np<Tag, 6>(n, a, lda, quads, b, pstride, acc, ld_acc, first); break;
        }
    }
};

// ---------------------------------------------------------------- the block loop

template <class Tag, class TA, class Tiles>
inline void widen_block(const TA* a, std::size_t lda, std::size_t k, std::size_t m_count, const std::int8_t* panel0,
                        std::size_t kp, std::size_t p_count, std::int32_t* acc, std::size_t ld_acc) noexcept {
    constexpr std::size_t mr = Tiles::mr, np = Tiles::np;
    const std::size_t pstride = kp * gemm_panel_cols;
    if (k == 0) {
        gemm_zero_acc<Tag>(acc, ld_acc, m_count, p_count * gemm_panel_cols);
        return;
    }
    alignas(64) std::int16_t scratch[widen_scratch];
    for (std::size_t m0 = 0; m0 < m_count; m0 += widen_rows) {
        const std::size_t mc = m_count - m0 < widen_rows ? m_count - m0 : widen_rows;
        const std::size_t kc = mc <= mr ? widen_scratch / mc / 64 * 64 : widen_kc;
        for (std::size_t k0 = 0; k0 < k; k0 += kc) {
            const std::size_t kn = k - k0 < kc ? k - k0 : kc;
            const std::size_t quads = (kn + 3) / 4;
            gemm_copy_a_s16<Tag>(a + m0 * lda + k0, lda, mc, kn, quads * 4, scratch, kc);
            for (std::size_t p = 0; p < p_count; p += np) {
                const std::size_t pn = p_count - p < np ? p_count - p : np;
                const std::int8_t* bp = panel0 + p * pstride + k0 / 4 * gemm_quad_bytes;
                for (std::size_t i = 0; i < mc; i += mr)
                    Tiles::run(mc - i < mr ? mc - i : mr, pn, scratch + i * kc, kc, quads, bp, pstride,
                               acc + (m0 + i) * ld_acc + p * gemm_panel_cols, ld_acc, k0 == 0);
            }
        }
    }
}

}  // namespace widen_detail

/// AVX2 raw dot block (gemm_common.hpp contract; s8 A needs no column sums here). Needs AVX2
/// at run time. Any m_count, p_count.
template <class Tag, class TA>
inline void avx2_dot_block(const TA* a, std::size_t lda, std::size_t k, std::size_t m_count, const std::int8_t* panel0,
                           std::size_t kp, std::size_t p_count, std::int32_t* acc, std::size_t ld_acc) noexcept {
    widen_detail::widen_block<Tag, TA, widen_detail::tiles_avx2<Tag>>(a, lda, k, m_count, panel0, kp, p_count, acc,
                                                                      ld_acc);
}

/// AVX-512BW raw dot block (no VNNI). Needs AVX-512 F/BW/VL at run time.
template <class Tag, class TA>
inline void avx512bw_dot_block(const TA* a, std::size_t lda, std::size_t k, std::size_t m_count,
                               const std::int8_t* panel0, std::size_t kp, std::size_t p_count, std::int32_t* acc,
                               std::size_t ld_acc) noexcept {
    widen_detail::widen_block<Tag, TA, widen_detail::tiles_avx512bw<Tag>>(a, lda, k, m_count, panel0, kp, p_count,
                                                                          acc, ld_acc);
}

}  // namespace x86
}  // namespace kernels
}  // namespace lowbit

#undef LOWBIT_DETAIL_TARGET_AVX2
#undef LOWBIT_DETAIL_TARGET_AVX512BW

#endif  // LOWBIT_KERNELS_GEMM_X86
#endif  // LOWBIT_KERNELS_X86_GEMM_AVX2_HPP
