// lowbit/ptq/gptq.hpp: GPTQ weight quantization (Frantar, Ashkboos, Hoefler, Alistarh,
// "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers",
// ICLR 2023, arXiv:2210.17323), so a C++ program can re-quantize a linear layer to 4 or 8
// bits from calibration activations, without Python.
//
// Round-to-nearest (RTN) quantizes every weight on its own. GPTQ quantizes the columns
// (input channels) of W one after the other and, after each, moves the rounding error onto
// the columns not yet quantized, weighted by the inverse Hessian of the layer's output error
// H = X^T X (the Optimal Brain Surgeon update). For the column q in quantization order and
// the upper Cholesky factor U of (H + damp I)^-1:
//     err = (w[:, q] - dequant(quant(w[:, q]))) / U[q][q]
//     w[:, j] -= err * U[q][j]        for every later column j
// which is the OBS update -(w_q - q) / [H_F^-1]_qq * [H_F^-1]_q,: written with U (the paper's
// Lemma / eq. 3 and Algorithm 1). Updates to columns beyond the current block of
// `block_size` columns are batched into one product per block ("lazy batch updates").
//
// Semantics follow the reference implementation (github.com/IST-DASLab/gptq, gptq.py
// fasterquant, also AutoGPTQ's):
//   - H: the caller's Hessian, or X^T X accumulated from calibration rows (the reference's
//     2 / nsamples factor cancels: GPTQ's result does not depend on H's scale);
//   - dead inputs (H[i][i] == 0, an input channel that was zero on every row): H[i][i] = 1 and
//     W[:, i] = 0 before quantization (their codes are the zero-point);
//   - dampening: damp = percdamp * mean(diag(H)) added to the diagonal (percdamp 0.01);
//   - act_order: columns quantized in order of decreasing H[i][i] (a stable sort: ties keep
//     their index order, torch.argsort is unstable), results returned in the original order;
//   - per-channel / per-tensor qparams come from the original weights (the reference's
//     find_params(W) before anything else); per-group qparams come from the current, already
//     updated weights of the group when its first column is reached; static_groups computes
//     them up front from the (dead-zeroed) original weights, in the original column order.
//     One deliberate difference: the reference reads a group's weights from the outer W, which
//     misses the updates made inside the current lazy block when a group does not start at a
//     block boundary (e.g. groups of 32 with blocks of 128); here a group always sees the
//     fully updated weights, the same as the column-by-column algorithm of the paper.
// Quantization itself is lowbit's: qparams = choose_qparams(scheme, min, max) of the row (or
// row-group) range, as the per-channel min/max observer gives them, and each weight is
// element_quantizer's quantize / dequantize, i.e. exactly ref::fake_quantize's numerics
// (torch profile by default). RTN with the same scheme is the baseline GPTQ improves on.
//
// Numerics: everything after the f32 inputs is double. Every multiply-add is an explicit
// fused multiply-add in a fixed order per element, so the result is the same bits on every
// machine, ISA path (AVX-512, AVX2+FMA, scalar std::fma, chosen at run time) and -O level,
// and independent of block_size. The Cholesky factor of the damped Hessian is computed with
// the index order reversed, which gives the upper factor of the inverse directly:
//     P (H + damp I) P = L L^T  =>  (H + damp I)^-1 = U^T U  with  U = P L^-1 P
// (P reverses the indices), the same U as the reference's cholesky -> cholesky_inverse ->
// cholesky(upper) in half the work.
//
// Failure behaviour (never NaN out):
//   - invalid arguments (sizes, scheme, non-finite W / X / H, negative H[i][i], bad options):
//     a lowbit status error naming the argument, nothing written;
//   - H + damp I not numerically positive definite, or its factor not finite: retried with
//     the dampening multiplied by 10, `damp_retries` times (schedule percdamp * 10^t,
//     t = 0..damp_retries; by default 0.01, 0.1, 1, 10 times the mean diagonal); the report
//     says which was used. A real X^T X is positive semi-definite, so the first attempt works
//     unless H is far from that (not from a Gram matrix, or rounding on a huge condition);
//   - all attempts failed, or an update produced a non-finite weight: the result is plain
//     round-to-nearest of the original W with the same scheme (report.fell_back_to_rtn, with
//     the reason), bit-identical to ref::fake_quantize with min/max qparams;
//   - all-zero calibration activations: every input is dead, so W becomes 0 (as the
//     reference does; the layer's output on such data is 0 either way); report.dead_inputs.
#ifndef LOWBIT_PTQ_GPTQ_HPP
#define LOWBIT_PTQ_GPTQ_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

#include "../core/format.hpp"
#include "../core/layout.hpp"
#include "../core/qparams.hpp"
#include "../core/quantize.hpp"
#include "../core/scheme.hpp"
#include "../core/span.hpp"
#include "../core/status.hpp"
#include "../kernels/cpu.hpp"
#include "linalg.hpp"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
#define LOWBIT_DETAIL_GPTQ_X86 1
#define LOWBIT_DETAIL_GPTQ_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define LOWBIT_DETAIL_GPTQ_TARGET_AVX512 __attribute__((target("avx2,fma,avx512f")))
#else
#define LOWBIT_DETAIL_GPTQ_X86 0
#endif

namespace lowbit {
namespace ptq {

/// GPTQ's parameters; defaults are the reference implementation's (gptq.py fasterquant,
/// llama.py / opt.py command lines).
struct gptq_options {
    /// Dampening as a fraction of mean(diag(H)) (reference --percdamp, 0.01). Finite, > 0.
    double percdamp = 0.01;
    /// Columns per lazy batch update (reference blocksize 128). >= 1; changes speed, not bits.
    std::size_t block_size = 128;
    /// Quantize columns by decreasing H[i][i] (reference --act-order, off).
    bool act_order = false;
    /// Per-group qparams from the original weights, in the original column order (reference
    /// --static-groups, off). Only meaningful for per_group schemes.
    bool static_groups = false;
    /// Retries with 10x more dampening when the Cholesky factorization fails, 0..16 (lowbit's
    /// addition; the reference raises an error instead).
    unsigned damp_retries = 3;
};

/// What happened: the dampening used, dead inputs, and whether GPTQ fell back to RTN.
struct gptq_report {
    bool fell_back_to_rtn = false;
    const char* fallback_reason = "";  ///< static text; "" when GPTQ ran
    unsigned attempts = 0;             ///< Cholesky attempts made (1 = percdamp worked)
    double damp_fraction = 0.0;        ///< percdamp * 10^(attempts - 1) when GPTQ ran
    double damp = 0.0;                 ///< damp_fraction * mean_diagonal, added to diag(H)
    double mean_diagonal = 0.0;        ///< mean of diag(H) after dead inputs were set to 1
    /// (max / min Cholesky pivot)^2 of the damped Hessian: a lower bound of its 2-norm
    /// condition number (0 when GPTQ did not factor it).
    double condition_estimate = 0.0;
    std::size_t dead_inputs = 0;  ///< input channels with H[i][i] == 0 (their weights set to 0)
    /// The reference's Losses.sum(): sum over weights of (w - q)^2 / U[q][q]^2 / 2, where w is
    /// the updated weight when quantized (0 when fell back to RTN).
    double loss = 0.0;
};

/// The quantized layer: dequantized weights, integer codes and qparams, in W's original
/// [N][K] order, ready for lowbit's integer path (ref::dequantize, gemm_int4, ...) with the
/// same scheme: ref::dequantize(s, shape{N, K}, {scales, zero_points}, codes, w) == weights
/// whenever every group_index[k] == k / group_size (always, except act_order with dynamic
/// groups, whose groups are runs of the quantization order: then weight (n, k) uses entry
/// n * (K / group_size) + group_index[k], the reference's g_idx).
template <class Scheme>
struct gptq_result {
    std::vector<float> weights;                     ///< N * K dequantized weights (f32)
    std::vector<typename Scheme::storage_type> codes;  ///< Format::storage_size(N * K): 4-bit packed (int4.hpp)
    std::vector<float> scales;  ///< per_tensor 1, per_channel N, per_group N * (K / group_size) ([N][K / g])
    std::vector<std::int32_t> zero_points;  ///< same size as scales (symmetric schemes: the fixed zero-point)
    std::vector<std::size_t> group_index;   ///< per_group: K entries (group of column k); else empty
    std::vector<std::size_t> order;         ///< K entries: order[p] = column quantized p-th
    gptq_report report;
};

namespace detail {
namespace gptq {

// ---- C -= A B with one fma per (element, t), t increasing: the only kernel of GPTQ ----------
//
// c[i*ldc + j] = fma(-a[i*lda + t], b[t*ldb + j], c[i*ldc + j]) for t = 0 .. depth-1 in order,
// i < m, j < nc. Every path below performs exactly this sequence of correctly rounded fmas per
// element, so they agree bit for bit.

inline void fms_scalar(std::size_t m, std::size_t nc, std::size_t depth, const double* a, std::size_t lda,
                       const double* b, std::size_t ldb, double* c, std::size_t ldc) noexcept {
    for (std::size_t i = 0; i < m; ++i) {
        double* cr = c + i * ldc;
        for (std::size_t t = 0; t < depth; ++t) {
            const double s = -a[i * lda + t];
            const double* br = b + t * ldb;
            for (std::size_t j = 0; j < nc; ++j) cr[j] = std::fma(s, br[j], cr[j]);
        }
    }
}

#if LOWBIT_DETAIL_GPTQ_X86
// AVX2 + FMA: 4 rows x 8 columns in registers (8 ymm accumulators), scalar fma tail.
LOWBIT_DETAIL_GPTQ_TARGET_AVX2 inline void fms_avx2(std::size_t m, std::size_t nc, std::size_t depth, const double* a,
                                                    std::size_t lda, const double* b, std::size_t ldb, double* c,
                                                    std::size_t ldc) noexcept {
    std::size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        const double* a0 = a + i * lda;
        double* c0 = c + i * ldc;
        std::size_t j = 0;
        for (; j + 8 <= nc; j += 8) {
            __m256d r[4][2];
            for (int u = 0; u < 4; ++u) {
                r[u][0] = _mm256_loadu_pd(c0 + static_cast<std::size_t>(u) * ldc + j);
                r[u][1] = _mm256_loadu_pd(c0 + static_cast<std::size_t>(u) * ldc + j + 4);
            }
            for (std::size_t t = 0; t < depth; ++t) {
                const __m256d b0 = _mm256_loadu_pd(b + t * ldb + j), b1 = _mm256_loadu_pd(b + t * ldb + j + 4);
                for (int u = 0; u < 4; ++u) {
                    const __m256d av = _mm256_set1_pd(a0[static_cast<std::size_t>(u) * lda + t]);
                    r[u][0] = _mm256_fnmadd_pd(av, b0, r[u][0]);
                    r[u][1] = _mm256_fnmadd_pd(av, b1, r[u][1]);
                }
            }
            for (int u = 0; u < 4; ++u) {
                _mm256_storeu_pd(c0 + static_cast<std::size_t>(u) * ldc + j, r[u][0]);
                _mm256_storeu_pd(c0 + static_cast<std::size_t>(u) * ldc + j + 4, r[u][1]);
            }
        }
        if (j < nc) fms_scalar(4, nc - j, depth, a0, lda, b + j, ldb, c0 + j, ldc);
    }
    for (; i < m; ++i) {
        const double* ar = a + i * lda;
        double* cr = c + i * ldc;
        std::size_t j = 0;
        for (; j + 4 <= nc; j += 4) {
            __m256d r = _mm256_loadu_pd(cr + j);
            for (std::size_t t = 0; t < depth; ++t)
                r = _mm256_fnmadd_pd(_mm256_set1_pd(ar[t]), _mm256_loadu_pd(b + t * ldb + j), r);
            _mm256_storeu_pd(cr + j, r);
        }
        if (j < nc) fms_scalar(1, nc - j, depth, ar, lda, b + j, ldb, cr + j, ldc);
    }
}

// AVX-512F register block: C[0..3][0..15] (rows ldc apart) -= A[0..3][0..depth-1] (rows lda
// apart) B[0..depth-1][0..15] (rows ldb apart: B's stride, or 16 in a packed tile), 8 zmm
// accumulators, t increasing.
LOWBIT_DETAIL_GPTQ_TARGET_AVX512 __attribute__((always_inline)) inline void fms_avx512_4x16(
    std::size_t depth, const double* a0, std::size_t lda, const double* b, std::size_t ldb, double* c0,
    std::size_t ldc) noexcept {
    __m512d r[4][2];
    for (int u = 0; u < 4; ++u) {
        r[u][0] = _mm512_loadu_pd(c0 + static_cast<std::size_t>(u) * ldc);
        r[u][1] = _mm512_loadu_pd(c0 + static_cast<std::size_t>(u) * ldc + 8);
    }
    for (std::size_t t = 0; t < depth; ++t) {
        const __m512d b0 = _mm512_loadu_pd(b + t * ldb), b1 = _mm512_loadu_pd(b + t * ldb + 8);
        for (int u = 0; u < 4; ++u) {
            const __m512d av = _mm512_set1_pd(a0[static_cast<std::size_t>(u) * lda + t]);
            r[u][0] = _mm512_fnmadd_pd(av, b0, r[u][0]);
            r[u][1] = _mm512_fnmadd_pd(av, b1, r[u][1]);
        }
    }
    for (int u = 0; u < 4; ++u) {
        _mm512_storeu_pd(c0 + static_cast<std::size_t>(u) * ldc, r[u][0]);
        _mm512_storeu_pd(c0 + static_cast<std::size_t>(u) * ldc + 8, r[u][1]);
    }
}

// AVX-512F: 4 rows x 16 columns in registers (8 zmm accumulators), 8-column and scalar tails.
LOWBIT_DETAIL_GPTQ_TARGET_AVX512 inline void fms_avx512(std::size_t m, std::size_t nc, std::size_t depth,
                                                        const double* a, std::size_t lda, const double* b,
                                                        std::size_t ldb, double* c, std::size_t ldc) noexcept {
    std::size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        const double* a0 = a + i * lda;
        double* c0 = c + i * ldc;
        std::size_t j = 0;
        for (; j + 16 <= nc; j += 16) fms_avx512_4x16(depth, a0, lda, b + j, ldb, c0 + j, ldc);
        if (j < nc) fms_avx2(4, nc - j, depth, a0, lda, b + j, ldb, c0 + j, ldc);
    }
    for (; i < m; ++i) {
        const double* ar = a + i * lda;
        double* cr = c + i * ldc;
        std::size_t j = 0;
        for (; j + 8 <= nc; j += 8) {
            __m512d r = _mm512_loadu_pd(cr + j);
            for (std::size_t t = 0; t < depth; ++t)
                r = _mm512_fnmadd_pd(_mm512_set1_pd(ar[t]), _mm512_loadu_pd(b + t * ldb + j), r);
            _mm512_storeu_pd(cr + j, r);
        }
        if (j < nc) fms_avx2(1, nc - j, depth, ar, lda, b + j, ldb, cr + j, ldc);
    }
}

// AVX-512F on a packed B: `tiles` tiles of 16 columns, tile j holding rows t = 0..depth-1 of
// its 16 columns contiguously (bp[(j * depth + t) * 16 + l]), so the kernel reads B as one
// stream instead of rows a power-of-two stride apart (which alias in L1). Same fmas.
LOWBIT_DETAIL_GPTQ_TARGET_AVX512 inline void fms_avx512_packed(std::size_t m, std::size_t tiles, std::size_t depth,
                                                               const double* a, std::size_t lda, const double* bp,
                                                               double* c, std::size_t ldc) noexcept {
    std::size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        const double* a0 = a + i * lda;
        double* c0 = c + i * ldc;
        for (std::size_t jt = 0; jt < tiles; ++jt)
            fms_avx512_4x16(depth, a0, lda, bp + jt * depth * 16, 16, c0 + jt * 16, ldc);
    }
    if (i < m) {
        for (std::size_t jt = 0; jt < tiles; ++jt) {
            const double* bt = bp + jt * depth * 16;
            for (std::size_t ii = i; ii < m; ++ii) {
                const double* ar = a + ii * lda;
                double* cr = c + ii * ldc + jt * 16;
                __m512d r0 = _mm512_loadu_pd(cr), r1 = _mm512_loadu_pd(cr + 8);
                for (std::size_t t = 0; t < depth; ++t) {
                    const __m512d av = _mm512_set1_pd(ar[t]);
                    r0 = _mm512_fnmadd_pd(av, _mm512_loadu_pd(bt + t * 16), r0);
                    r1 = _mm512_fnmadd_pd(av, _mm512_loadu_pd(bt + t * 16 + 8), r1);
                }
                _mm512_storeu_pd(cr, r0);
                _mm512_storeu_pd(cr + 8, r1);
            }
        }
    }
}
#endif

/// Which path fms() takes; `best` picks the widest the CPU and OS allow.
enum class fms_isa { best, scalar, avx2, avx512 };

/// True when this process can run `isa`.
inline bool fms_available(fms_isa isa) noexcept {
#if LOWBIT_DETAIL_GPTQ_X86
    const kernels::cpu_features& f = kernels::cpu();
    switch (isa) {
        case fms_isa::best:
        case fms_isa::scalar: return true;
        case fms_isa::avx2: return f.avx2 && f.fma;
        case fms_isa::avx512: return f.avx512f && f.avx2 && f.fma;
    }
    return false;
#else
    return isa == fms_isa::best || isa == fms_isa::scalar;
#endif
}

/// Doubles of the scratch buffer that lets fms() pack B (depth <= pack_depth).
constexpr std::size_t pack_depth = 256, pack_cols = 256, pack_size = pack_depth * pack_cols;

/// C -= A B (see above), cache-blocked in panels of 256 columns x 64 rows (the order of the
/// fmas of one element does not depend on the blocking). `isa` must be available. With a
/// `pack` buffer of pack_size doubles, the AVX-512 path copies each 256-column panel of B
/// into 16-column tiles first (when m >= 8 and depth <= pack_depth): the same fmas, faster.
inline void fms(std::size_t m, std::size_t nc, std::size_t depth, const double* a, std::size_t lda, const double* b,
                std::size_t ldb, double* c, std::size_t ldc, fms_isa isa = fms_isa::best,
                double* pack = nullptr) noexcept {
    if (m == 0 || nc == 0 || depth == 0) return;
    using kernel = void (*)(std::size_t, std::size_t, std::size_t, const double*, std::size_t, const double*,
                            std::size_t, double*, std::size_t) noexcept;
    kernel k = fms_scalar;
#if LOWBIT_DETAIL_GPTQ_X86
    if (isa == fms_isa::best) isa = fms_available(fms_isa::avx512) ? fms_isa::avx512
                                    : fms_available(fms_isa::avx2) ? fms_isa::avx2
                                                                   : fms_isa::scalar;
    if (isa == fms_isa::avx512) k = fms_avx512;
    if (isa == fms_isa::avx2) k = fms_avx2;
    const bool packed = isa == fms_isa::avx512 && pack != nullptr && m >= 8 && depth <= pack_depth;
#else
    (void)isa;
    (void)pack;
#endif
    constexpr std::size_t col_panel = pack_cols, row_panel = 64;
    for (std::size_t j0 = 0; j0 < nc; j0 += col_panel) {
        const std::size_t nj = std::min(col_panel, nc - j0);
        std::size_t tiles = 0;
#if LOWBIT_DETAIL_GPTQ_X86
        if (packed) {
            tiles = nj / 16;
            for (std::size_t jt = 0; jt < tiles; ++jt)
                for (std::size_t t = 0; t < depth; ++t)
                    std::copy(b + t * ldb + j0 + jt * 16, b + t * ldb + j0 + jt * 16 + 16, pack + (jt * depth + t) * 16);
        }
#endif
        for (std::size_t i0 = 0; i0 < m; i0 += row_panel) {
            const std::size_t mi = std::min(row_panel, m - i0);
#if LOWBIT_DETAIL_GPTQ_X86
            if (tiles > 0) fms_avx512_packed(mi, tiles, depth, a + i0 * lda, lda, pack, c + i0 * ldc + j0, ldc);
#endif
            if (tiles * 16 < nj)
                k(mi, nj - tiles * 16, depth, a + i0 * lda, lda, b + j0 + tiles * 16, ldb, c + i0 * ldc + j0 + tiles * 16,
                  ldc);
        }
    }
}

// ---- factorization: U = upper Cholesky factor of (H + damp I)^-1 ---------------------------

constexpr std::size_t panel = 64;  // block width of the Cholesky and the triangular inverse

// In place: a (n x n, row-major, lower triangle read) becomes L (lower) with a = L L^T; the
// strict upper triangle is left as scratch. Right-looking in panels of 64 columns; pt is
// scratch of panel * n doubles. Returns false on a pivot that is not finite and > 0. Records
// the smallest and largest pivot L[j][j].
inline bool cholesky_lower(std::size_t n, double* a, double* pt, double* pack, double& min_pivot,
                           double& max_pivot) noexcept {
    min_pivot = std::numeric_limits<double>::infinity();
    max_pivot = 0.0;
    for (std::size_t j0 = 0; j0 < n; j0 += panel) {
        const std::size_t j1 = std::min(j0 + panel, n);
        for (std::size_t j = j0; j < j1; ++j) {
            const double d = a[j * n + j];
            if (!(d > 0.0) || !std::isfinite(d)) return false;
            const double l = std::sqrt(d);
            min_pivot = std::min(min_pivot, l);
            max_pivot = std::max(max_pivot, l);
            a[j * n + j] = l;
            double* ptr = pt + (j - j0) * n;  // row t of the transposed panel: L[c][j] at ptr[c]
            ptr[j] = l;
            for (std::size_t i = j + 1; i < n; ++i) {
                a[i * n + j] /= l;
                ptr[i] = a[i * n + j];
            }
            // the rest of the panel: a[i][c] -= L[i][j] L[c][j] for i > j, j < c < j1
            // (entries with c > i land in the unused upper triangle)
            fms(n - j - 1, j1 - j - 1, 1, a + (j + 1) * n + j, n, ptr + j + 1, n, a + (j + 1) * n + j + 1, n);
        }
        // trailing matrix: a[i][c] -= sum_{t in panel} L[i][t] L[c][t], rows i >= j1, columns
        // j1 <= c <= i, in row blocks of 64 (their diagonal blocks spill into the upper triangle)
        for (std::size_t i0 = j1; i0 < n; i0 += panel) {
            const std::size_t rows = std::min(panel, n - i0);
            const std::size_t cols = std::min(i0 + panel, n) - j1;
            fms(rows, cols, j1 - j0, a + i0 * n + j0, n, pt + j1, n, a + i0 * n + j1, n, fms_isa::best, pack);
        }
    }
    return true;
}

// m (n x n) = L^-1 for the lower L in l (upper triangle ignored); m's upper triangle is 0.
// Forward substitution by rows in panels of 64: row i of L^-1 is
// (e_i - sum_{t < i} L[i][t] (L^-1)[t]) / L[i][i], accumulated in increasing t.
inline void lower_inverse(std::size_t n, const double* l, double* m, double* pack) noexcept {
    std::fill(m, m + n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i) m[i * n + i] = 1.0;
    for (std::size_t t0 = 0; t0 < n; t0 += panel) {
        const std::size_t t1 = std::min(t0 + panel, n);
        for (std::size_t i = t0; i < t1; ++i) {
            fms(1, i + 1, i - t0, l + i * n + t0, n, m + t0 * n, n, m + i * n, n);
            const double d = l[i * n + i];
            for (std::size_t c = 0; c <= i; ++c) m[i * n + c] /= d;
        }
        if (t1 < n) fms(n - t1, t1, t1 - t0, l + t1 * n + t0, n, m + t0 * n, n, m + t1 * n, n, fms_isa::best, pack);
    }
}

// ---- helpers ---------------------------------------------------------------------------------

template <class Scheme>
struct layer_layout {
    std::size_t n = 0, k = 0;
    std::size_t groups_per_row = 1;  // K / g for per_group, 1 otherwise
    std::size_t group_size = 0;      // per_group only
    std::size_t params = 1;          // scales.size()
};

template <class Scheme>
status check_scheme(const Scheme& s, std::size_t n, std::size_t k, layer_layout<Scheme>& lay) {
    LOWBIT_DETAIL_TRY(s.validate());
    lay.n = n;
    lay.k = k;
    switch (s.granularity()) {
        case granularity::per_tensor: lay.params = 1; break;
        case granularity::per_channel:
            LOWBIT_DETAIL_CHECK(s.axis() == 0, errc::invalid_argument, "axis", s.axis(),
                                "GPTQ's per_channel scheme is per output channel: axis 0 of W [N][K]");
            lay.params = n;
            break;
        case granularity::per_group:
            LOWBIT_DETAIL_CHECK(s.axis() == 1, errc::invalid_argument, "axis", s.axis(),
                                "GPTQ's per_group scheme groups the inputs: axis 1 of W [N][K]");
            LOWBIT_DETAIL_CHECK(k % s.group_size() == 0, errc::invalid_argument, "group_size", s.group_size(),
                                "must divide K");
            lay.group_size = s.group_size();
            lay.groups_per_row = k / s.group_size();
            lay.params = n * lay.groups_per_row;
            break;
    }
    return {};
}

inline status check_options(const gptq_options& o) {
    LOWBIT_DETAIL_CHECK(std::isfinite(o.percdamp) && o.percdamp > 0.0, errc::invalid_argument, "percdamp", o.percdamp,
                        "must be finite and > 0");
    LOWBIT_DETAIL_CHECK(o.block_size > 0, errc::invalid_argument, "block_size", o.block_size, "must be >= 1");
    LOWBIT_DETAIL_CHECK(o.damp_retries <= 16, errc::invalid_argument, "damp_retries", o.damp_retries, "must be <= 16");
    return {};
}

// qparams of the range of `count` values (min/max extended to 0 by choose_qparams).
template <class Scheme, class Get>
qparams range_qparams(const Scheme& s, std::size_t count, Get get) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (std::size_t i = 0; i < count; ++i) {
        const float v = get(i);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    return choose_qparams(s, lo, hi).value();  // finite range, validated scheme: cannot fail
}

// qparams of the original weights as RTN chooses them (per-tensor / channel / static groups).
template <class Scheme>
void initial_qparams(const Scheme& s, const layer_layout<Scheme>& lay, const float* w, std::vector<float>& scales,
                     std::vector<std::int32_t>& zps) {
    scales.assign(lay.params, 1.0f);
    zps.assign(lay.params, 0);
    const std::size_t n = lay.n, k = lay.k;
    for (std::size_t p = 0; p < lay.params; ++p) {
        qparams qp;
        switch (s.granularity()) {
            case granularity::per_tensor: qp = range_qparams(s, n * k, [&](std::size_t i) { return w[i]; }); break;
            case granularity::per_channel:
                qp = range_qparams(s, k, [&](std::size_t i) { return w[p * k + i]; });
                break;
            case granularity::per_group: {
                const std::size_t row = p / lay.groups_per_row, g0 = (p % lay.groups_per_row) * lay.group_size;
                qp = range_qparams(s, lay.group_size, [&](std::size_t i) { return w[row * k + g0 + i]; });
                break;
            }
        }
        scales[p] = qp.scale;
        zps[p] = qp.zero_point;
    }
}

// Index of the qparams of weight (row, column) in the canonical layout.
template <class Scheme>
std::size_t param_of(const Scheme& s, const layer_layout<Scheme>& lay, std::size_t row, std::size_t col) noexcept {
    switch (s.granularity()) {
        case granularity::per_tensor: return 0;
        case granularity::per_channel: return row;
        case granularity::per_group: return row * lay.groups_per_row + col / lay.group_size;
    }
    return 0;
}

// codes (int32, [N][K]) -> out.codes (Format storage, in order) and out.weights.
template <class Scheme>
void finish(const Scheme& s, const layer_layout<Scheme>& lay, const std::vector<std::int32_t>& q,
            gptq_result<Scheme>& out) {
    using F = typename Scheme::format;
    const std::size_t n = lay.n, k = lay.k;
    out.codes.assign(F::storage_size(n * k), typename Scheme::storage_type{});
    out.weights.assign(n * k, 0.0f);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < k; ++c) {
            const std::size_t idx = r * k + c;
            const std::size_t p = s.granularity() == granularity::per_group
                                      ? r * lay.groups_per_row + out.group_index[c]
                                      : param_of(s, lay, r, c);
            const element_quantizer e = element_quantizer::make(s, qparams{out.scales[p], out.zero_points[p]});
            lowbit::detail::store<F>(out.codes.data(), idx, q[idx]);
            out.weights[idx] = e.dequantize(q[idx]);
        }
}

// Plain round-to-nearest of the original weights (ref::fake_quantize's numerics).
template <class Scheme>
void round_to_nearest(const Scheme& s, const layer_layout<Scheme>& lay, const float* w, gptq_result<Scheme>& out) {
    const std::size_t n = lay.n, k = lay.k;
    initial_qparams(s, lay, w, out.scales, out.zero_points);
    out.order.resize(k);
    std::iota(out.order.begin(), out.order.end(), std::size_t{0});
    out.group_index.clear();
    if (s.granularity() == granularity::per_group)
        for (std::size_t c = 0; c < k; ++c) out.group_index.push_back(c / lay.group_size);
    std::vector<std::int32_t> q(n * k);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < k; ++c) {
            const std::size_t p = param_of(s, lay, r, c);
            const element_quantizer e = element_quantizer::make(s, qparams{out.scales[p], out.zero_points[p]});
            q[r * k + c] = e.quantize(w[r * k + c], r * k + c);
        }
    finish(s, lay, q, out);
}

}  // namespace gptq
}  // namespace detail

/// H += X^T X for calibration activations X (rows x K, f32) into H (K x K, double, both
/// triangles written): the same bits as ptq::gram (exact f32 products, one rounding per
/// addition, rows in order), blocked and vectorized (4.4x faster at K = 4096, 64 rows, Zen 4). Call once
/// per calibration batch, starting from zeros. Errors: sizes; a non-finite x (named by index).
inline status gptq_accumulate_hessian(std::size_t rows, std::size_t k, span<const float> x, span<double> h) {
    LOWBIT_DETAIL_CHECK(x.size() == rows * k, errc::size_mismatch, "x.size()", x.size(), "must be rows * K");
    LOWBIT_DETAIL_CHECK(h.size() == k * k, errc::size_mismatch, "h.size()", h.size(), "must be K * K");
    for (std::size_t i = 0; i < x.size(); ++i)
        LOWBIT_DETAIL_CHECK(std::isfinite(x[i]), errc::invalid_argument, "x", i, "must be finite (index given)");
    constexpr std::size_t chunk = 256;  // rows converted to double at a time
    std::vector<double> neg_xt(k * chunk), xd(chunk * k), pack(detail::gptq::pack_size);
    for (std::size_t r0 = 0; r0 < rows; r0 += chunk) {
        const std::size_t nr = std::min(chunk, rows - r0);
        for (std::size_t r = 0; r < nr; ++r)
            for (std::size_t i = 0; i < k; ++i) {
                const double v = x[(r0 + r) * k + i];
                xd[r * k + i] = v;
                neg_xt[i * nr + r] = -v;  // h - (-x_i) x_j == h + x_i x_j, one rounding
            }
        // lower triangle by row blocks (diagonal blocks spill into the upper triangle, which
        // is overwritten by the mirror below)
        for (std::size_t i0 = 0; i0 < k; i0 += detail::gptq::panel) {
            const std::size_t m = std::min(detail::gptq::panel, k - i0);
            detail::gptq::fms(m, std::min(i0 + m, k), nr, neg_xt.data() + i0 * nr, nr, xd.data(), k,
                              h.data() + i0 * k, k, detail::gptq::fms_isa::best, pack.data());
        }
    }
    for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = i + 1; j < k; ++j) h[i * k + j] = h[j * k + i];
    return {};
}

/// GPTQ of a linear layer from its Hessian H (K x K, double; only the lower triangle i >= j
/// is read, e.g. from ptq::gram or gptq_accumulate_hessian; its scale does not matter).
/// W is f32 row-major [N][K] (torch.nn.Linear's weight). Scheme: s8 / u8 / s4 / u4, any
/// symmetry and profile; per_tensor, per_channel(0) (one grid per output) or per_group(1, g)
/// (g divides K). See the file comment for the algorithm, options and fallbacks; `out` is
/// overwritten (see gptq_result). Errors (nothing written): scheme invalid or of another
/// axis / grouping; N or K zero; w.size() != N * K; h.size() != K * K; a non-finite w or h,
/// or a negative h[i][i] (named by index); options out of range.
template <class Scheme>
status gptq_from_hessian(const Scheme& s, std::size_t n, std::size_t k, span<const float> w, span<const double> h,
                         gptq_result<Scheme>& out, const gptq_options& opt = {}) {
    namespace g = detail::gptq;
    static_assert(Scheme::format::bits <= 8, "lowbit::ptq::gptq quantizes weights to s8, u8, s4 or u4");
    LOWBIT_DETAIL_CHECK(n > 0, errc::size_mismatch, "n", n, "must be > 0 (output channels)");
    LOWBIT_DETAIL_CHECK(k > 0, errc::size_mismatch, "k", k, "must be > 0 (input channels)");
    g::layer_layout<Scheme> lay;
    LOWBIT_DETAIL_TRY(g::check_scheme(s, n, k, lay));
    LOWBIT_DETAIL_TRY(g::check_options(opt));
    LOWBIT_DETAIL_CHECK(w.size() == n * k, errc::size_mismatch, "w.size()", w.size(), "must be N * K");
    LOWBIT_DETAIL_CHECK(h.size() == k * k, errc::size_mismatch, "h.size()", h.size(), "must be K * K");
    for (std::size_t i = 0; i < w.size(); ++i)
        LOWBIT_DETAIL_CHECK(std::isfinite(w[i]), errc::invalid_argument, "w", i, "must be finite (index given)");
    for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = 0; j <= i; ++j)
            LOWBIT_DETAIL_CHECK(std::isfinite(h[i * k + j]), errc::invalid_argument, "h", i * k + j,
                                "must be finite (index given)");
    for (std::size_t i = 0; i < k; ++i)
        LOWBIT_DETAIL_CHECK(h[i * k + i] >= 0.0, errc::invalid_argument, "h", i * k + i,
                            "diagonal entries must be >= 0 (index given)");

    out = gptq_result<Scheme>{};
    gptq_report& rep = out.report;
    const bool grouped = s.granularity() == granularity::per_group;
    const bool dynamic_groups = grouped && !opt.static_groups;

    // dead inputs, then the quantization order (act_order: decreasing diagonal, stable)
    std::vector<double> diag(k);
    std::vector<unsigned char> dead(k, 0);
    for (std::size_t i = 0; i < k; ++i) {
        diag[i] = h[i * k + i];
        if (diag[i] == 0.0) {
            dead[i] = 1;
            diag[i] = 1.0;
            ++rep.dead_inputs;
        }
    }
    std::vector<std::size_t>& order = out.order;
    order.resize(k);
    std::iota(order.begin(), order.end(), std::size_t{0});
    if (opt.act_order)
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return diag[a] > diag[b]; });
    double mean = 0.0;
    for (std::size_t i = 0; i < k; ++i) mean += diag[i];
    mean /= static_cast<double>(k);
    rep.mean_diagonal = mean;

    // U = upper Cholesky factor of (H_perm + damp I)^-1, with growing dampening
    std::vector<double> u(k * k), work(k * k), pt(g::panel * k), pack(g::pack_size);
    bool factored = false;
    double fraction = opt.percdamp;
    for (unsigned t = 0; t <= opt.damp_retries && !factored; ++t, fraction *= 10.0) {
        rep.attempts = t + 1;
        const double damp = fraction * mean;
        // work = P H_perm P + damp I (index reversal: work[i][j] = H_perm[k-1-i][k-1-j]), lower
        for (std::size_t i = 0; i < k; ++i)
            for (std::size_t j = 0; j <= i; ++j) {
                const std::size_t a = order[k - 1 - i], b = order[k - 1 - j];
                double v = a >= b ? h[a * k + b] : h[b * k + a];
                if (i == j) v = (dead[a] ? 1.0 : v) + damp;
                work[i * k + j] = v;
            }
        double lo = 0.0, hi = 0.0;
        if (!g::cholesky_lower(k, work.data(), pt.data(), pack.data(), lo, hi)) continue;
        g::lower_inverse(k, work.data(), u.data(), pack.data());
        std::reverse(u.begin(), u.end());  // U[i][j] = L^-1[k-1-i][k-1-j]: flat reversal
        bool ok = true;
        for (std::size_t i = 0; i < k && ok; ++i) {
            ok = u[i * k + i] > 0.0;
            for (std::size_t j = i; j < k && ok; ++j) ok = std::isfinite(u[i * k + j]);
        }
        if (!ok) continue;
        factored = true;
        rep.damp_fraction = fraction;
        rep.damp = damp;
        rep.condition_estimate = (hi / lo) * (hi / lo);
    }
    std::vector<double>().swap(work);
    std::vector<double>().swap(pt);
    if (!factored) {
        g::round_to_nearest(s, lay, w.data(), out);
        out.report.fell_back_to_rtn = true;
        out.report.fallback_reason = "H + damp I is not positive definite at any dampening of the schedule";
        return {};
    }

    // qparams: per-tensor / per-channel from the original W; static groups from dead-zeroed W
    if (grouped && opt.static_groups) {
        std::vector<float> wz(w.begin(), w.end());
        for (std::size_t r = 0; r < n; ++r)
            for (std::size_t c = 0; c < k; ++c)
                if (dead[c]) wz[r * k + c] = 0.0f;
        g::initial_qparams(s, lay, wz.data(), out.scales, out.zero_points);
    } else if (grouped) {
        out.scales.assign(lay.params, 1.0f);
        out.zero_points.assign(lay.params, 0);
    } else {
        g::initial_qparams(s, lay, w.data(), out.scales, out.zero_points);
    }
    if (grouped) {
        out.group_index.resize(k);
        for (std::size_t p = 0; p < k; ++p)
            out.group_index[order[p]] = dynamic_groups ? p / lay.group_size : order[p] / lay.group_size;
    }

    // working weights in quantization order, dead inputs zeroed
    std::vector<double> wd(n * k);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t p = 0; p < k; ++p) wd[r * k + p] = dead[order[p]] ? 0.0 : static_cast<double>(w[r * k + order[p]]);

    const std::size_t bs = std::min(opt.block_size, k);
    std::vector<double> err(n * bs);
    std::vector<std::int32_t> q(n * k);
    std::vector<double> row_loss(n, 0.0);  // summed per row in column order: independent of block_size
    bool finite = true;
    for (std::size_t i1 = 0; i1 < k && finite; i1 += bs) {
        const std::size_t i2 = std::min(i1 + bs, k), cnt = i2 - i1;
        for (std::size_t r = 0; r < n && finite; ++r) {
            double* wr = wd.data() + r * k;
            double* er = err.data() + r * bs;
            element_quantizer e{};
            if (!grouped) e = element_quantizer::make(s, qparams{out.scales[g::param_of(s, lay, r, 0)],
                                                                out.zero_points[g::param_of(s, lay, r, 0)]});
            for (std::size_t i = 0; i < cnt; ++i) {
                const std::size_t p = i1 + i, col = order[p];
                if (grouped) {
                    const std::size_t gi = r * lay.groups_per_row + (dynamic_groups ? p : col) / lay.group_size;
                    const bool group_start = dynamic_groups && p % lay.group_size == 0;
                    if (group_start) {
                        // the group's current weights; columns past this block get the pending
                        // block updates applied here (the same fmas, in the same order, as later)
                        const qparams qp = g::range_qparams(s, lay.group_size, [&](std::size_t c) {
                            const std::size_t pc = p + c;
                            double v = wr[pc];
                            if (pc >= i2)
                                for (std::size_t t = 0; t < i; ++t) v = std::fma(-er[t], u[(i1 + t) * k + pc], v);
                            if (!std::isfinite(v)) finite = false;
                            return static_cast<float>(v);
                        });
                        if (!finite) break;
                        out.scales[gi] = qp.scale;
                        out.zero_points[gi] = qp.zero_point;
                    }
                    if (!dynamic_groups || group_start || i == 0)
                        e = element_quantizer::make(s, qparams{out.scales[gi], out.zero_points[gi]});
                }
                const double wv = wr[p];
                const float wf = static_cast<float>(wv);
                if (!std::isfinite(wf)) {
                    finite = false;
                    break;
                }
                const std::int32_t code = e.quantize(wf, r * k + col);
                const double dq = static_cast<double>(e.dequantize(code));
                const double d = u[p * k + p];
                const double ev = (wv - dq) / d;
                row_loss[r] += ev * ev / 2.0;  // (w - q)^2 / d^2 / 2
                er[i] = ev;
                q[r * k + col] = code;
                // inside the block: w[:, p+1 .. i2) -= err * U[p][p+1 .. i2)
                g::fms(1, i2 - p - 1, 1, er + i, 1, u.data() + p * k + p + 1, 0, wr + p + 1, k);
            }
        }
        // lazy batch update of the columns after the block: W[:, i2:] -= Err U[i1:i2, i2:]
        if (finite && i2 < k)
            g::fms(n, k - i2, cnt, err.data(), bs, u.data() + i1 * k + i2, k, wd.data() + i2, k, g::fms_isa::best,
                   pack.data());
    }
    if (!finite) {
        const std::size_t dead_count = rep.dead_inputs;
        out = gptq_result<Scheme>{};
        g::round_to_nearest(s, lay, w.data(), out);
        out.report.fell_back_to_rtn = true;
        out.report.fallback_reason = "an update produced a non-finite weight";
        out.report.dead_inputs = dead_count;
        return {};
    }
    for (std::size_t r = 0; r < n; ++r) rep.loss += row_loss[r];
    g::finish(s, lay, q, out);
    return {};
}

/// GPTQ of a linear layer from calibration activations X (rows x K, f32 row-major, the
/// layer's inputs): H = X^T X (gptq_accumulate_hessian), then gptq_from_hessian. To use more
/// rows than fit in memory, accumulate H batch by batch and call gptq_from_hessian.
/// Errors: those of gptq_from_hessian, and rows == 0; x.size() != rows * K; a non-finite x.
template <class Scheme>
status gptq(const Scheme& s, std::size_t n, std::size_t k, span<const float> w, std::size_t rows, span<const float> x,
            gptq_result<Scheme>& out, const gptq_options& opt = {}) {
    LOWBIT_DETAIL_CHECK(rows > 0, errc::size_mismatch, "rows", rows, "must be > 0 (calibration rows)");
    LOWBIT_DETAIL_CHECK(n > 0, errc::size_mismatch, "n", n, "must be > 0 (output channels)");
    LOWBIT_DETAIL_CHECK(k > 0, errc::size_mismatch, "k", k, "must be > 0 (input channels)");
    detail::gptq::layer_layout<Scheme> lay;
    LOWBIT_DETAIL_TRY(detail::gptq::check_scheme(s, n, k, lay));  // cheap checks before the Hessian
    LOWBIT_DETAIL_TRY(detail::gptq::check_options(opt));
    LOWBIT_DETAIL_CHECK(w.size() == n * k, errc::size_mismatch, "w.size()", w.size(), "must be N * K");
    std::vector<double> h(k * k, 0.0);
    LOWBIT_DETAIL_TRY(gptq_accumulate_hessian(rows, k, x, h));
    return gptq_from_hessian(s, n, k, w, span<const double>(h.data(), h.size()), out, opt);
}

}  // namespace ptq
}  // namespace lowbit

#if LOWBIT_DETAIL_GPTQ_X86
#undef LOWBIT_DETAIL_GPTQ_TARGET_AVX2
#undef LOWBIT_DETAIL_GPTQ_TARGET_AVX512
#endif
#undef LOWBIT_DETAIL_GPTQ_X86

#endif  // LOWBIT_PTQ_GPTQ_HPP
