// lowbit/kernels/x86/gemm_vnni.hpp: the int8 GEMM micro-kernels on vpdpbusd, the x86 dot
// product of 4 unsigned bytes by 4 signed bytes into an int32 lane:
//   vnni512_dot_block  AVX-512 VNNI, zmm: the main x86 path;
//   vnni256_dot_block  AVX-VNNI, ymm with the {vex} encoding (Alder Lake and later). The same
//                      code with the EVEX encoding (AVX-512 VNNI + VL) is instantiated too, so
//                      machines without AVX-VNNI test its logic.
// Both implement the raw-dot contract of gemm_common.hpp, plus one argument, colsum0: the
// int32 column sums of B (packed buffer) for the block's 16 * p_count columns, used by s8 A.
//
// Numerics. vpdpbusd adds u8(a0) * s8(b0) + ... + u8(a3) * s8(b3) to the lane, wrapping
// (the non-saturating form). Each product fits int16 ((255 * 127) < 2^15, 255 * -128 too), the
// sum of four fits int32, and the accumulation is modulo 2^32 as the contract asks. u8 A goes
// in as is. s8 A is fed as A' = A xor 0x80 = A + 128 (u8), and 128 * colsum[n] is subtracted
// by starting the accumulator at -128 * colsum[n] (mod 2^32):
//   sum_k A'[k] B[k][n] - 128 colsum[n] = sum_k (A[k] + 128) B[k][n] - 128 sum_k B[k][n]
//                                       = sum_k A[k] B[k][n].
// Worked number (core/gemm.hpp): A = [-3, 5], B = [7, -2]: A' = [125, 133], 875 - 266 = 609,
// colsum = 5, 609 - 640 = -31. The intermediate sums may leave int32 (s8 x s8 at K = 131071,
// A = B = 127: A' B sums to 255 * 127 * 131071 ~ 4.2e9 > 2^32); they wrap, and the final value
// is exact mod 2^32, which is all the contract promises (kernels/gemm.hpp's compensation is exact mod
// 2^32 too, and the true result fits int32 under gemm_max_k).
//
// Blocking (vnni512): a tile is MR = 6 rows x NP = 4 panels (64 columns) of zmm accumulators
// (24 of the 32 registers), 4 B loads and 6 broadcasts of 4 A bytes (vpbroadcastd from memory)
// per k-quad for 24 vpdpbusd. K is cut in chunks of vnni_kc bytes so the B slab of a tile group
// (kc x 64 bytes = 16 KiB) stays in L1 while every 6-row group of the block streams past it;
// chunks after the first add to acc. A is read in place when it is u8 (full k-quads), and
// copied to a stack buffer for s8 (the +128 flip, 32 bytes per step) and for the last partial
// k-quad (zero padded, so no byte past a row is read). A block of at most 6 rows (GEMV) takes
// K in one chunk (s8: as much as the 12 KiB copy buffer holds). vnni256 tiles hold at most 12
// ymm accumulators: 4..6 rows x 16 columns, 2..3 rows x 32, 1 row x 64 (a GEMV row keeps 8
// independent vpdpbusd chains). Measured on a Zen 4 core (vpdpbusd zmm peak ~470 GOPS): ~90%
// of peak for u8 and ~85% for s8 on 128 x 1024 x 1024; GEMV runs at the weight-read rate.
#ifndef LOWBIT_KERNELS_X86_GEMM_VNNI_HPP
#define LOWBIT_KERNELS_X86_GEMM_VNNI_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "gemm_common.hpp"

#if LOWBIT_KERNELS_GEMM_X86

#define LOWBIT_DETAIL_TARGET_VNNI512 __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")))
#define LOWBIT_DETAIL_TARGET_VNNI256 __attribute__((target("avx2")))

namespace lowbit {
namespace kernels {
namespace x86 {

constexpr std::size_t vnni512_mr = 6;      ///< rows of a vnni512 tile
constexpr std::size_t vnni512_np = 4;      ///< panels (16 columns each) of a vnni512 tile
constexpr std::size_t vnni_kc = 256;       ///< K bytes per chunk (multiple of 64)
constexpr std::size_t vnni_rows = 48;      ///< A rows copied at once (multiple of both MRs)
constexpr std::size_t vnni256_mr = 6;      ///< rows of a vnni256 tile (x 16 to 64 columns)
constexpr std::size_t vnni_scratch = vnni_rows * vnni_kc;  ///< bytes of the A copy buffer

namespace vnni_detail {

// ---------------------------------------------------------------- zmm (AVX-512 VNNI)

template <class Tag>
LOWBIT_DETAIL_TARGET_VNNI512 LOWBIT_FORCE_INLINE __m512i bcast4_512(const std::uint8_t* p) noexcept {
    std::int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

// One MR x NP tile over `quads` k-quads: a (u8, row stride lda) x panels b, b + pstride, ...
// first: acc = dot (minus 128 * colsum when colsum is given); else acc += dot.
template <class Tag, std::size_t MR, std::size_t NP>
LOWBIT_DETAIL_TARGET_VNNI512 inline void tile512(const std::uint8_t* a, std::size_t lda, std::size_t quads,
                                                 const std::int8_t* b, std::size_t pstride, std::int32_t* acc,
                                                 std::size_t ld_acc, bool first, const std::int32_t* colsum) noexcept {
    __m512i c[MR][NP];
#pragma GCC unroll 8
    for (std::size_t i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (std::size_t j = 0; j < NP; ++j) c[i][j] = _mm512_setzero_si512();
    for (std::size_t q = 0; q < quads; ++q) {
        __m512i bv[NP];
#pragma GCC unroll 8
        for (std::size_t j = 0; j < NP; ++j) bv[j] = _mm512_loadu_si512(b + std::size_t(j) * pstride + q * 64);
#pragma GCC unroll 8
        for (std::size_t i = 0; i < MR; ++i) {
            const __m512i av = bcast4_512<Tag>(a + std::size_t(i) * lda + q * 4);
#pragma GCC unroll 8
            for (std::size_t j = 0; j < NP; ++j) c[i][j] = _mm512_dpbusd_epi32(c[i][j], av, bv[j]);
        }
    }
#pragma GCC unroll 8
    for (std::size_t i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (std::size_t j = 0; j < NP; ++j) {
            std::int32_t* p = acc + std::size_t(i) * ld_acc + std::size_t(j) * 16;
            __m512i v = c[i][j];
            if (!first)
                v = _mm512_add_epi32(v, _mm512_loadu_si512(p));
            else if (colsum)  // + colsum * -128, wrapping (vpmulld: no undefined-register intrinsics)
                v = _mm512_add_epi32(v, _mm512_mullo_epi32(_mm512_loadu_si512(colsum + j * 16), _mm512_set1_epi32(-128)));
            _mm512_storeu_si512(p, v);
        }
}

template <class Tag, std::size_t MR>
LOWBIT_DETAIL_TARGET_VNNI512 inline void tile512_np(std::size_t np, const std::uint8_t* a, std::size_t lda,
                                                    std::size_t quads, const std::int8_t* b, std::size_t pstride,
                                                    std::int32_t* acc, std::size_t ld_acc, bool first,
                                                    const std::int32_t* colsum) noexcept {
    switch (np) {
        case 1: tile512<Tag, MR, 1>(a, lda, quads, b, pstride, acc, ld_acc, first, colsum); break;
        case 2: tile512<Tag, MR, 2>(a, lda, quads, b, pstride, acc, ld_acc, first, colsum); break;
        case 3: tile512<Tag, MR, 3>(a, lda, quads, b, pstride, acc, ld_acc, first, colsum); break;
        default: tile512<Tag, MR, 4>(a, lda, quads, b, pstride, acc, ld_acc, first, colsum); break;
    }
}

template <class Tag>
LOWBIT_DETAIL_TARGET_VNNI512 inline void tile512_any(std::size_t mr, std::size_t np, const std::uint8_t* a,
                                                     std::size_t lda, std::size_t quads, const std::int8_t* b,
                                                     std::size_t pstride, std::int32_t* acc, std::size_t ld_acc,
                                                     bool first, const std::int32_t* colsum) noexcept {
    static_assert(vnni512_mr == 6 && vnni512_np == 4, "tile512_any covers 6 x 4 tiles");
    switch (mr) {
        case 1: tile512_np<Tag, 1>(np, a, lda, quads, b, pstride, acc, ld_acc, first, colsum); break;
        case 2: tile512_np<Tag, 2>(np, a, lda, quads, b, pstride, acc, ld_acc, first, colsum); break;
        case 3: tile512_np<Tag, 3>(np, a, lda, quads, b, pstride, acc, ld_acc, first, colsum); break;
        case 4: tile512_np<Tag, 4>(np, a, lda, quads, b, pstride, acc, ld_acc, first, colsum); break;
        case 5: tile512_np<Tag, 5>(np, a, lda, quads, b, pstride, acc, ld_acc, first, colsum); break;
        default: tile512_np<Tag, 6>(np, a, lda, quads, b, pstride, acc, ld_acc, first, colsum); break;
    }
}

// ---------------------------------------------------------------- ymm (AVX-VNNI)

// vpdpbusd ymm in the VEX (AVX-VNNI) or EVEX (AVX-512 VNNI + VL) encoding. Inline assembly:
// the intrinsics would need the avxvnni / avx512vnni target on the whole function, and the
// two encodings share this one function body. acc += u8(a) . s8(b) per int32 lane.
template <bool Evex>
LOWBIT_DETAIL_TARGET_VNNI256 LOWBIT_FORCE_INLINE __m256i dpbusd256(__m256i acc, __m256i a, __m256i b) noexcept {
    if constexpr (Evex)
        __asm__("%{evex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b));
    else
        __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b));
    return acc;
}

template <class Tag>
LOWBIT_DETAIL_TARGET_VNNI256 LOWBIT_FORCE_INLINE __m256i bcast4_256(const std::uint8_t* p) noexcept {
    std::int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// One MR x (16 NP) tile: NP panels, two ymm per row and panel.
template <class Tag, bool Evex, std::size_t MR, std::size_t NP>
LOWBIT_DETAIL_TARGET_VNNI256 inline void tile256(const std::uint8_t* a, std::size_t lda, std::size_t quads,
                                                 const std::int8_t* b, std::size_t pstride, std::int32_t* acc,
                                                 std::size_t ld_acc, bool first, const std::int32_t* colsum) noexcept {
    __m256i c[MR][2 * NP];
#pragma GCC unroll 8
    for (std::size_t i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (std::size_t j = 0; j < 2 * NP; ++j) c[i][j] = _mm256_setzero_si256();
    for (std::size_t q = 0; q < quads; ++q) {
        __m256i bv[2 * NP];
#pragma GCC unroll 8
        for (std::size_t j = 0; j < 2 * NP; ++j)
            bv[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + j / 2 * pstride + q * 64 + j % 2 * 32));
#pragma GCC unroll 8
        for (std::size_t i = 0; i < MR; ++i) {
            const __m256i av = bcast4_256<Tag>(a + i * lda + q * 4);
#pragma GCC unroll 8
            for (std::size_t j = 0; j < 2 * NP; ++j) c[i][j] = dpbusd256<Evex>(c[i][j], av, bv[j]);
        }
    }
#pragma GCC unroll 8
    for (std::size_t i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (std::size_t j = 0; j < 2 * NP; ++j) {
            std::int32_t* p = acc + i * ld_acc + j * 8;
            __m256i v = c[i][j];
            if (!first)
                v = _mm256_add_epi32(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
            else if (colsum)  // + colsum * -128, wrapping
                v = _mm256_add_epi32(v, _mm256_mullo_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(colsum + j * 8)),
                                                           _mm256_set1_epi32(-128)));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
        }
}

// Tiles of 16 ymm at most: 4..6 rows x 1 panel, 2..3 rows x 2 panels, 1 row x 4 panels (so a
// GEMV row still has 8 independent accumulators to hide vpdpbusd's latency).
template <class Tag, bool Evex>
LOWBIT_DETAIL_TARGET_VNNI256 inline void tile256_any(std::size_t mr, std::size_t np, const std::uint8_t* a,
                                                     std::size_t lda, std::size_t quads, const std::int8_t* b,
                                                     std::size_t pstride, std::int32_t* acc, std::size_t ld_acc,
                                                     bool first, const std::int32_t* colsum) noexcept {
    static_assert(vnni256_mr == 6, "tile256_any covers 6-row tiles");
    for (std::size_t p = 0; p < np;) {
        const std::int8_t* bp = b + p * pstride;
        std::int32_t* ap = acc + p * 16;
        const std::int32_t* cp = colsum ? colsum + p * 16 : nullptr;
        const std::size_t left = np - p;
        if (mr == 1 && left >= 4) {
            tile256<Tag, Evex, 1, 4>(a, lda, quads, bp, pstride, ap, ld_acc, first, cp);
            p += 4;
        } else if (mr <= 3 && left >= 2) {
            if (mr == 1) tile256<Tag, Evex, 1, 2>(a, lda, quads, bp, pstride, ap, ld_acc, first, cp);
            if (mr == 2) tile256<Tag, Evex, 2, 2>(a, lda, quads, bp, pstride, ap, ld_acc, first, cp);
            if (mr == 3) tile256<Tag, Evex, 3, 2>(a, lda, quads, bp, pstride, ap, ld_acc, first, cp);
            p += 2;
        } else {
            switch (mr) {
                case 1: tile256<Tag, Evex, 1, 1>(a, lda, quads, bp, pstride, ap, ld_acc, first, cp); break;
                case 2: tile256<Tag, Evex, 2, 1>(a, lda, quads, bp, pstride, ap, ld_acc, first, cp); break;
                case 3: tile256<Tag, Evex, 3, 1>(a, lda, quads, bp, pstride, ap, ld_acc, first, cp); break;
                case 4: tile256<Tag, Evex, 4, 1>(a, lda, quads, bp, pstride, ap, ld_acc, first, cp); break;
                case 5: tile256<Tag, Evex, 5, 1>(a, lda, quads, bp, pstride, ap, ld_acc, first, cp); break;
                default: tile256<Tag, Evex, 6, 1>(a, lda, quads, bp, pstride, ap, ld_acc, first, cp); break;
            }
            p += 1;
        }
    }
}

// ---------------------------------------------------------------- the block loop

// gemm_copy_a_u8 (gemm_common.hpp) with 32-byte steps: the s8 copy runs once per K chunk of
// every block, so at one byte per step it cost ~6% of the s8 GEMM.
template <class Tag, class TA>
LOWBIT_DETAIL_TARGET_VNNI256 inline void copy_a_u8_avx2(const TA* a, std::size_t lda, std::size_t rows, std::size_t kn,
                                                       std::size_t width, std::uint8_t* dst, std::size_t ld_dst) noexcept {
    const __m256i flip = _mm256_set1_epi8(std::is_signed<TA>::value ? char(0x80) : char(0));
    for (std::size_t r = 0; r < rows; ++r) {
        const TA* s = a + r * lda;
        std::uint8_t* d = dst + r * ld_dst;
        std::size_t j = 0;
        for (; j + 32 <= kn; j += 32)
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + j),
                                _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + j)), flip));
        gemm_copy_a_u8<Tag>(s + j, lda, 1, kn - j, width - j, d + j, ld_dst);
    }
}

// Calls Tiles::run(mr, np, a, lda, quads, b, pstride, acc, ld_acc, first, colsum) over the
// tiles of an m_count x p_count block, K in chunks (file comment). Shared by both widths.
template <class Tag, class TA, class Tiles>
inline void vnni_block(const TA* a, std::size_t lda, std::size_t k, std::size_t m_count, const std::int8_t* panel0,
                       std::size_t kp, std::size_t p_count, std::int32_t* acc, std::size_t ld_acc,
                       const std::int32_t* colsum0) noexcept {
    constexpr bool sa = std::is_signed<TA>::value;
    constexpr std::size_t mr = Tiles::mr, np = Tiles::np;
    const std::size_t pstride = kp * gemm_panel_cols;
    if (k == 0) {
        gemm_zero_acc<Tag>(acc, ld_acc, m_count, p_count * gemm_panel_cols);
        return;
    }
    alignas(64) std::uint8_t scratch[vnni_scratch];
    const std::int32_t* shift = sa ? colsum0 : nullptr;
    for (std::size_t m0 = 0; m0 < m_count; m0 += vnni_rows) {
        const std::size_t mc = m_count - m0 < vnni_rows ? m_count - m0 : vnni_rows;
        const TA* ab = a + m0 * lda;
        std::int32_t* accb = acc + m0 * ld_acc;
        // K chunk: kc for blocks of several tiles; one chunk (as far as the copy buffer
        // allows, for s8) for a single row tile.
        const std::size_t kmain = sa ? k : k / 4 * 4;  // u8: full quads in place, the rest copied
        std::size_t kc = vnni_kc;
        if (mc <= mr) kc = sa ? vnni_scratch / mc / 64 * 64 : kmain;
        if (kc == 0) kc = vnni_kc;
        for (std::size_t k0 = 0; k0 < kmain; k0 += kc) {
            const std::size_t kn = kmain - k0 < kc ? kmain - k0 : kc;
            const std::size_t quads = (kn + 3) / 4;
            const std::uint8_t* ap;
            std::size_t ldp;
            if (sa) {
                copy_a_u8_avx2<Tag>(ab + k0, lda, mc, kn, quads * 4, scratch, kc);
                ap = scratch;
                ldp = kc;
            } else {
                ap = reinterpret_cast<const std::uint8_t*>(ab) + k0;
                ldp = lda;
            }
            for (std::size_t p = 0; p < p_count; p += np) {
                const std::size_t pn = p_count - p < np ? p_count - p : np;
                const std::int8_t* bp = panel0 + p * pstride + k0 / 4 * gemm_quad_bytes;
                for (std::size_t i = 0; i < mc; i += mr)
                    Tiles::run(mc - i < mr ? mc - i : mr, pn, ap + i * ldp, ldp, quads, bp, pstride,
                               accb + i * ld_acc + p * gemm_panel_cols, ld_acc, k0 == 0,
                               shift ? shift + p * gemm_panel_cols : nullptr);
            }
        }
        if (kmain < k) {  // u8: the last 1..3 k of each row, zero padded to one quad
            const std::size_t kn = k - kmain;
            gemm_copy_a_u8<Tag>(ab + kmain, lda, mc, kn, 4, scratch, 4);
            for (std::size_t p = 0; p < p_count; p += np) {
                const std::size_t pn = p_count - p < np ? p_count - p : np;
                const std::int8_t* bp = panel0 + p * pstride + kmain / 4 * gemm_quad_bytes;
                for (std::size_t i = 0; i < mc; i += mr)
                    Tiles::run(mc - i < mr ? mc - i : mr, pn, scratch + i * 4, 4, 1, bp, pstride,
                               accb + i * ld_acc + p * gemm_panel_cols, ld_acc, kmain == 0, nullptr);
            }
        }
    }
}

template <class Tag>
struct tiles512 {
    static constexpr std::size_t mr = vnni512_mr, np = vnni512_np;
    LOWBIT_DETAIL_TARGET_VNNI512 static void run(std::size_t m, std::size_t n, const std::uint8_t* a, std::size_t lda,
                                                 std::size_t quads, const std::int8_t* b, std::size_t pstride,
                                                 std::int32_t* acc, std::size_t ld_acc, bool first,
                                                 const std::int32_t* colsum) noexcept {
        tile512_any<Tag>(m, n, a, lda, quads, b, pstride, acc, ld_acc, first, colsum);
    }
};

template <class Tag, bool Evex>
struct tiles256 {
    static constexpr std::size_t mr = vnni256_mr, np = 4;  // np: panels per run call
    LOWBIT_DETAIL_TARGET_VNNI256 static void run(std::size_t m, std::size_t n, const std::uint8_t* a, std::size_t lda,
                                                 std::size_t quads, const std::int8_t* b, std::size_t pstride,
                                                 std::int32_t* acc, std::size_t ld_acc, bool first,
                                                 const std::int32_t* colsum) noexcept {
        tile256_any<Tag, Evex>(m, n, a, lda, quads, b, pstride, acc, ld_acc, first, colsum);
    }
};

}  // namespace vnni_detail

/// AVX-512 VNNI raw dot block (gemm_common.hpp contract). colsum0: B's column sums for the
/// block's 16 * p_count columns (read only when TA is s8). Needs AVX-512 F/BW/VL/VNNI at run
/// time (kernels::cpu()). Any m_count, p_count; k <= the packed kp.
template <class Tag, class TA>
inline void vnni512_dot_block(const TA* a, std::size_t lda, std::size_t k, std::size_t m_count,
                              const std::int8_t* panel0, std::size_t kp, std::size_t p_count, std::int32_t* acc,
                              std::size_t ld_acc, const std::int32_t* colsum0) noexcept {
    vnni_detail::vnni_block<Tag, TA, vnni_detail::tiles512<Tag>>(a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc,
                                                                 colsum0);
}

/// AVX-VNNI raw dot block (ymm, VEX encoding; Evex = true: the same code in the EVEX encoding,
/// which needs AVX-512 VNNI + VL instead). Same contract as vnni512_dot_block.
template <class Tag, class TA, bool Evex = false>
inline void vnni256_dot_block(const TA* a, std::size_t lda, std::size_t k, std::size_t m_count,
                              const std::int8_t* panel0, std::size_t kp, std::size_t p_count, std::int32_t* acc,
                              std::size_t ld_acc, const std::int32_t* colsum0) noexcept {
    vnni_detail::vnni_block<Tag, TA, vnni_detail::tiles256<Tag, Evex>>(a, lda, k, m_count, panel0, kp, p_count, acc,
                                                                       ld_acc, colsum0);
}

}  // namespace x86
}  // namespace kernels
}  // namespace lowbit

#undef LOWBIT_DETAIL_TARGET_VNNI512
#undef LOWBIT_DETAIL_TARGET_VNNI256

#endif  // LOWBIT_KERNELS_GEMM_X86
#endif  // LOWBIT_KERNELS_X86_GEMM_VNNI_HPP
