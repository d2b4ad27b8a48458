// lowbit/kernels/arm/gemm_neon.hpp: the int8 GEMM micro-kernels of AArch64, over the packed
// panels of kernels/gemm.hpp (the same bytes as on x86: no layout of their own):
//   neon_dot_block     ARMv8.0 Advanced SIMD: smull / smull2 (s8 x s8 -> s16) and sadalp
//                      (pairs of s16 added into s32 lanes);
//   dotprod_dot_block  ARMv8.2 dot product (SDOT by element, vdotq_laneq_s32).
// Both implement the raw-dot contract of x86/gemm_common.hpp, plus colsum0 as the VNNI
// kernels: the int32 column sums of B for the block's 16 * p_count columns, used by u8 A.
//
// Run-time dispatch: the dotprod kernel carries a GCC / Clang target attribute (GCC 12 accepts
// "arch=armv8.2-a+dotprod" for the <arm_neon.h> intrinsics, not "+dotprod"; Clang gets
// "dotprod" and one inline-assembly sdot, see sdot_lane), so it exists in
// every translation unit whatever its -march, and kernels::gemm calls it only where
// kernels::cpu().dotprod (HWCAP_ASIMDDP on Linux). A translation unit built with dotprod
// (__ARM_FEATURE_DOTPROD) needs no attribute. Templates on Tag as the x86 kernels.
//
// Numerics. Both instructions multiply signed bytes by signed bytes. s8 A goes in as is. u8 A
// is fed as A' = A xor 0x80 = A - 128 (s8), and 128 * colsum[n] is added back at the store
// (mod 2^32):  sum_k A'[k] B[k][n] + 128 colsum[n] = sum_k (A[k] - 128 + 128) B[k][n].
// Worked number: A = [200, 3], B = [2, -1]: A' = [72, -125], 144 + 125 = 269, colsum = 1,
// 269 + 128 = 397 = 400 - 3. SDOT adds 4 products (each |.| <= 2^14) into an int32 lane;
// smull's s16 products are exact (|-128 * -128| = 2^14 < 2^15) and sadalp adds two of them
// (exact) into an s32 lane; the lanes wrap mod 2^32 (vector adds), which is all the contract
// asks (the true result fits int32 under gemm_max_k, kernels/gemm.hpp).
//
// Operands. A panel's k-quad (64 bytes) is 4 q registers: register v holds columns 4v .. 4v+3,
// 4 consecutive k each (byte 4c + j = B[4q + j][col c]). A is read 16 bytes (4 k-quads) at a
// time: SDOT by element lane l multiplies every column's 4 bytes by A's bytes 4l .. 4l + 3; the
// NEON kernel broadcasts the same 4 bytes (dup by lane) and smull pairs 8 bytes (2 columns x
// 4 k), so each s32 lane holds half a column's sum and one addp per 4 columns at the store
// finishes it. The last partial 16 bytes of an A row come from a zero-padded stack copy (no
// byte past the row is read); the B bytes there are the zero K padding of the panel (kp is a
// multiple of 64), so whatever A' holds there (0x80 for u8) adds 0.
//
// Blocking: a tile is MR rows x NP panels of accumulators. dotprod: 4 rows x 1 panel (16
// registers), leftover rows 2 x 2 or 1 x 4 panels (a GEMV row keeps 16 independent SDOT
// chains); NEON: 2 rows x 1 panel (16 registers, two per 4 columns), a leftover row 1 x 2.
// Panels are the outer loop, so a panel's K x 16 bytes is reused by every row group of the
// block while it is in cache.
#ifndef LOWBIT_KERNELS_ARM_GEMM_NEON_HPP
#define LOWBIT_KERNELS_ARM_GEMM_NEON_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../../config.hpp"
#include "../x86/gemm_common.hpp"

/// 1 when this compiler builds lowbit's AArch64 GEMM kernels (GCC / Clang on AArch64).
#ifndef LOWBIT_KERNELS_GEMM_ARM
#if (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
#define LOWBIT_KERNELS_GEMM_ARM 1
#else
#define LOWBIT_KERNELS_GEMM_ARM 0
#endif
#endif

#if LOWBIT_KERNELS_GEMM_ARM
#include <arm_neon.h>

#if defined(__ARM_FEATURE_DOTPROD)
#define LOWBIT_DETAIL_TARGET_DOTPROD
#elif defined(__clang__)
#define LOWBIT_DETAIL_TARGET_DOTPROD __attribute__((target("dotprod")))
#else
#define LOWBIT_DETAIL_TARGET_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

// Loops over register arrays have compile-time trip counts and must be unrolled.
#if defined(__clang__)
#define LOWBIT_ARM_UNROLL _Pragma("unroll")
#else
#define LOWBIT_ARM_UNROLL _Pragma("GCC unroll 16")
#endif

namespace lowbit {
namespace kernels {
namespace arm {

constexpr std::size_t dotprod_mr = 4;  ///< rows of a full dotprod tile (x 1 panel)
constexpr std::size_t neon_mr = 2;     ///< rows of a full NEON tile (x 1 panel)

/// acc + SDOT(b, lane L of a): each int32 lane j of acc gets the 4 products of b's bytes
/// 4j .. 4j + 3 with a's bytes 4L .. 4L + 3 (vdotq_laneq_s32). Clang (14) declares that
/// intrinsic only when the whole file has dotprod, so there it is one instruction of inline
/// assembly instead.
template <int L>
LOWBIT_DETAIL_TARGET_DOTPROD LOWBIT_FORCE_INLINE int32x4_t sdot_lane(int32x4_t acc, int8x16_t b, int8x16_t a) noexcept {
    static_assert(L >= 0 && L < 4, "lane 0..3");
#if defined(__clang__) && !defined(__ARM_FEATURE_DOTPROD)
#define LOWBIT_DETAIL_SDOT_ASM(LANE) \
    __asm__(".arch armv8.2-a+dotprod\n\tsdot %0.4s, %1.16b, %2.4b[" #LANE "]" : "+w"(acc) : "w"(b), "w"(a))
    if constexpr (L == 0) LOWBIT_DETAIL_SDOT_ASM(0);
    if constexpr (L == 1) LOWBIT_DETAIL_SDOT_ASM(1);
    if constexpr (L == 2) LOWBIT_DETAIL_SDOT_ASM(2);
    if constexpr (L == 3) LOWBIT_DETAIL_SDOT_ASM(3);
#undef LOWBIT_DETAIL_SDOT_ASM
    return acc;
#else
    return vdotq_laneq_s32(acc, b, a, L);
#endif
}

namespace gemm_detail {

/// 16 bytes of A as s8: as is for s8, xor 0x80 (A - 128) for u8.
template <class TA>
LOWBIT_FORCE_INLINE int8x16_t load_a(const TA* p) noexcept {
    if constexpr (std::is_signed<TA>::value) {
        return vld1q_s8(reinterpret_cast<const std::int8_t*>(p));
    } else {
        return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(reinterpret_cast<const std::uint8_t*>(p)), vdupq_n_u8(0x80)));
    }
}

/// The row's 16 bytes at chunk `c` (k = 16c ..): in place when whole, else (rem < 16 bytes
/// left) from a zero-padded copy.
template <class TA>
LOWBIT_FORCE_INLINE int8x16_t load_a_chunk(const TA* row, std::size_t c, std::size_t rem) noexcept {
    if (rem == 0) return load_a(row + 16 * c);
    TA buf[16] = {};
    std::memcpy(buf, row + 16 * c, rem * sizeof(TA));
    return load_a(buf);
}

/// acc (+ 128 * colsum for u8 A) stored to p.
template <class TA>
LOWBIT_FORCE_INLINE void store_acc(std::int32_t* p, int32x4_t v, const std::int32_t* colsum) noexcept {
    if constexpr (!std::is_signed<TA>::value) v = vaddq_s32(v, vshlq_n_s32(vld1q_s32(colsum), 7));
    vst1q_s32(p, v);
}

// ---------------------------------------------------------------- dot product (SDOT)

// c[i][j][v] += SDOT(B quad L of chunk, A[i] lane L) for the chunk's k-quad L.
template <class Tag, std::size_t MR, std::size_t NP, int L>
LOWBIT_DETAIL_TARGET_DOTPROD LOWBIT_FORCE_INLINE void dotprod_quad(const int8x16_t (&av)[MR], const std::int8_t* b,
                                                                   std::size_t pstride, int32x4_t (&c)[MR][NP][4]) noexcept {
    LOWBIT_ARM_UNROLL
    for (std::size_t j = 0; j < NP; ++j) {
        const std::int8_t* bq = b + j * pstride + L * 64;
        const int8x16_t b0 = vld1q_s8(bq), b1 = vld1q_s8(bq + 16), b2 = vld1q_s8(bq + 32), b3 = vld1q_s8(bq + 48);
        LOWBIT_ARM_UNROLL
        for (std::size_t i = 0; i < MR; ++i) {
            c[i][j][0] = sdot_lane<L>(c[i][j][0], b0, av[i]);
            c[i][j][1] = sdot_lane<L>(c[i][j][1], b1, av[i]);
            c[i][j][2] = sdot_lane<L>(c[i][j][2], b2, av[i]);
            c[i][j][3] = sdot_lane<L>(c[i][j][3], b3, av[i]);
        }
    }
}

// One MR x NP tile over the whole K: acc (row stride ld_acc) = raw dots of rows a .. and
// panels b, b + pstride, ... (colsum: the tile's 16 NP column sums).
template <class Tag, class TA, std::size_t MR, std::size_t NP>
LOWBIT_DETAIL_TARGET_DOTPROD inline void dotprod_tile(const TA* a, std::size_t lda, std::size_t k, const std::int8_t* b,
                                                      std::size_t pstride, std::int32_t* acc, std::size_t ld_acc,
                                                      const std::int32_t* colsum) noexcept {
    int32x4_t c[MR][NP][4];
    LOWBIT_ARM_UNROLL
    for (std::size_t i = 0; i < MR; ++i)
        LOWBIT_ARM_UNROLL
        for (std::size_t j = 0; j < NP; ++j)
            LOWBIT_ARM_UNROLL
            for (std::size_t v = 0; v < 4; ++v) c[i][j][v] = vdupq_n_s32(0);
    const std::size_t chunks = (k + 15) / 16, rem = k % 16;
    for (std::size_t ch = 0; ch < chunks; ++ch) {
        const std::size_t r = ch + 1 == chunks ? rem : 0;
        int8x16_t av[MR];
        LOWBIT_ARM_UNROLL
        for (std::size_t i = 0; i < MR; ++i) av[i] = load_a_chunk(a + i * lda, ch, r);
        const std::int8_t* bc = b + ch * 4 * x86::gemm_quad_bytes;
        dotprod_quad<Tag, MR, NP, 0>(av, bc, pstride, c);
        dotprod_quad<Tag, MR, NP, 1>(av, bc, pstride, c);
        dotprod_quad<Tag, MR, NP, 2>(av, bc, pstride, c);
        dotprod_quad<Tag, MR, NP, 3>(av, bc, pstride, c);
    }
    LOWBIT_ARM_UNROLL
    for (std::size_t i = 0; i < MR; ++i)
        LOWBIT_ARM_UNROLL
        for (std::size_t j = 0; j < NP; ++j)
            LOWBIT_ARM_UNROLL
            for (std::size_t v = 0; v < 4; ++v)
                store_acc<TA>(acc + i * ld_acc + j * 16 + v * 4, c[i][j][v], colsum + j * 16 + v * 4);
}

// ---------------------------------------------------------------- ARMv8.0 (smull + sadalp)

// c[i][j][2v + h] += pairwise(s16 products of B's half h of register v and A[i]'s lane L, twice).
template <class Tag, std::size_t MR, std::size_t NP, int L>
LOWBIT_FORCE_INLINE void neon_quad(const int8x16_t (&av)[MR], const std::int8_t* b, std::size_t pstride,
                                   int32x4_t (&c)[MR][NP][8]) noexcept {
    int8x16_t ad[MR];
    LOWBIT_ARM_UNROLL
    for (std::size_t i = 0; i < MR; ++i) ad[i] = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(av[i]), L));
    LOWBIT_ARM_UNROLL
    for (std::size_t j = 0; j < NP; ++j) {
        const std::int8_t* bq = b + j * pstride + L * 64;
        int8x16_t bv[4];
        LOWBIT_ARM_UNROLL
        for (std::size_t v = 0; v < 4; ++v) bv[v] = vld1q_s8(bq + 16 * v);
        LOWBIT_ARM_UNROLL
        for (std::size_t i = 0; i < MR; ++i)
            LOWBIT_ARM_UNROLL
            for (std::size_t v = 0; v < 4; ++v) {
                c[i][j][2 * v] = vpadalq_s16(c[i][j][2 * v], vmull_s8(vget_low_s8(bv[v]), vget_low_s8(ad[i])));
                c[i][j][2 * v + 1] = vpadalq_s16(c[i][j][2 * v + 1], vmull_high_s8(bv[v], ad[i]));
            }
    }
}

// As dotprod_tile, without the dot-product instructions.
template <class Tag, class TA, std::size_t MR, std::size_t NP>
inline void neon_tile(const TA* a, std::size_t lda, std::size_t k, const std::int8_t* b, std::size_t pstride,
                      std::int32_t* acc, std::size_t ld_acc, const std::int32_t* colsum) noexcept {
    int32x4_t c[MR][NP][8];
    LOWBIT_ARM_UNROLL
    for (std::size_t i = 0; i < MR; ++i)
        LOWBIT_ARM_UNROLL
        for (std::size_t j = 0; j < NP; ++j)
            LOWBIT_ARM_UNROLL
            for (std::size_t v = 0; v < 8; ++v) c[i][j][v] = vdupq_n_s32(0);
    const std::size_t chunks = (k + 15) / 16, rem = k % 16;
    for (std::size_t ch = 0; ch < chunks; ++ch) {
        const std::size_t r = ch + 1 == chunks ? rem : 0;
        int8x16_t av[MR];
        LOWBIT_ARM_UNROLL
        for (std::size_t i = 0; i < MR; ++i) av[i] = load_a_chunk(a + i * lda, ch, r);
        const std::int8_t* bc = b + ch * 4 * x86::gemm_quad_bytes;
        neon_quad<Tag, MR, NP, 0>(av, bc, pstride, c);
        neon_quad<Tag, MR, NP, 1>(av, bc, pstride, c);
        neon_quad<Tag, MR, NP, 2>(av, bc, pstride, c);
        neon_quad<Tag, MR, NP, 3>(av, bc, pstride, c);
    }
    LOWBIT_ARM_UNROLL
    for (std::size_t i = 0; i < MR; ++i)
        LOWBIT_ARM_UNROLL
        for (std::size_t j = 0; j < NP; ++j)
            LOWBIT_ARM_UNROLL
            for (std::size_t v = 0; v < 4; ++v)  // lanes (col 4v: 2 halves, col 4v+1: 2), (4v+2, 4v+3)
                store_acc<TA>(acc + i * ld_acc + j * 16 + v * 4, vpaddq_s32(c[i][j][2 * v], c[i][j][2 * v + 1]),
                              colsum + j * 16 + v * 4);
}

// One MR x NP tile of either kind.
template <class Tag, class TA, bool Dot, std::size_t MR, std::size_t NP>
inline void tile(const TA* a, std::size_t lda, std::size_t k, const std::int8_t* b, std::size_t pstride,
                 std::int32_t* acc, std::size_t ld_acc, const std::int32_t* colsum) noexcept {
    if constexpr (Dot)
        dotprod_tile<Tag, TA, MR, NP>(a, lda, k, b, pstride, acc, ld_acc, colsum);
    else
        neon_tile<Tag, TA, MR, NP>(a, lda, k, b, pstride, acc, ld_acc, colsum);
}

// The tile of `rows` (< the full MR) rows x `np` panels, np at most what that row count allows
// (dotprod: 3 x 1, 2 x 2, 1 x 4; NEON: 1 x 2).
template <class Tag, class TA, bool Dot>
inline void tile_small(std::size_t rows, std::size_t np, const TA* a, std::size_t lda, std::size_t k,
                       const std::int8_t* b, std::size_t pstride, std::int32_t* acc, std::size_t ld_acc,
                       const std::int32_t* colsum) noexcept {
    if constexpr (Dot) {
        if (rows == 3) return tile<Tag, TA, Dot, 3, 1>(a, lda, k, b, pstride, acc, ld_acc, colsum);
        if (rows == 2 && np >= 2) return tile<Tag, TA, Dot, 2, 2>(a, lda, k, b, pstride, acc, ld_acc, colsum);
        if (rows == 2) return tile<Tag, TA, Dot, 2, 1>(a, lda, k, b, pstride, acc, ld_acc, colsum);
        if (np >= 4) return tile<Tag, TA, Dot, 1, 4>(a, lda, k, b, pstride, acc, ld_acc, colsum);
        if (np == 3) return tile<Tag, TA, Dot, 1, 3>(a, lda, k, b, pstride, acc, ld_acc, colsum);
    }
    if (np >= 2) return tile<Tag, TA, Dot, 1, 2>(a, lda, k, b, pstride, acc, ld_acc, colsum);
    tile<Tag, TA, Dot, 1, 1>(a, lda, k, b, pstride, acc, ld_acc, colsum);
}

// The block driver of both kernels (Dot: SDOT tiles, else NEON tiles).
template <class Tag, class TA, bool Dot>
inline void dot_block(const TA* a, std::size_t lda, std::size_t k, std::size_t m_count, const std::int8_t* panel0,
                      std::size_t kp, std::size_t p_count, std::int32_t* acc, std::size_t ld_acc,
                      const std::int32_t* colsum0) noexcept {
    constexpr std::size_t pc = x86::gemm_panel_cols;
    if (k == 0) {
        x86::gemm_zero_acc<Tag>(acc, ld_acc, m_count, p_count * pc);
        return;
    }
    constexpr std::size_t mr = Dot ? dotprod_mr : neon_mr;
    const std::size_t pstride = kp * pc, full = m_count / mr * mr, left = m_count - full;
    for (std::size_t p = 0; p < p_count; ++p)
        for (std::size_t i = 0; i < full; i += mr) {
            tile<Tag, TA, Dot, mr, 1>(a + i * lda, lda, k, panel0 + p * pstride, pstride, acc + i * ld_acc + p * pc,
                                      ld_acc, colsum0 + p * pc);
        }
    if (left == 0) return;
    const std::size_t np_max = Dot ? (left == 1 ? 4 : left == 2 ? 2 : 1) : (left == 1 ? 2 : 1);
    for (std::size_t p = 0; p < p_count;) {
        const std::size_t np = p_count - p < np_max ? p_count - p : np_max;
        tile_small<Tag, TA, Dot>(left, np, a + full * lda, lda, k, panel0 + p * pstride, pstride,
                                 acc + full * ld_acc + p * pc, ld_acc, colsum0 + p * pc);
        p += np;
    }
}

}  // namespace gemm_detail

/// Raw dot block (x86/gemm_common.hpp contract) with ARMv8.0 NEON; colsum0: the block's
/// column sums (read for u8 A only).
template <class Tag, class TA>
inline void neon_dot_block(const TA* a, std::size_t lda, std::size_t k, std::size_t m_count, const std::int8_t* panel0,
                           std::size_t kp, std::size_t p_count, std::int32_t* acc, std::size_t ld_acc,
                           const std::int32_t* colsum0) noexcept {
    gemm_detail::dot_block<Tag, TA, false>(a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc, colsum0);
}

/// The same with the ARMv8.2 dot-product instructions: only where cpu().dotprod.
template <class Tag, class TA>
inline void dotprod_dot_block(const TA* a, std::size_t lda, std::size_t k, std::size_t m_count,
                              const std::int8_t* panel0, std::size_t kp, std::size_t p_count, std::int32_t* acc,
                              std::size_t ld_acc, const std::int32_t* colsum0) noexcept {
    gemm_detail::dot_block<Tag, TA, true>(a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc, colsum0);
}

}  // namespace arm
}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_GEMM_ARM
#endif  // LOWBIT_KERNELS_ARM_GEMM_NEON_HPP
