// lowbit/core/gemm_int4.hpp: the int4 weight-only GEMV / small-M GEMM spec (lowbit::ref), the
// 8-bit activation blocks it multiplies with, and lossless conversions between lowbit's int4
// weights and ggml's Q4_0 blocks and ONNX's blocked INT4 / UINT4 tensors. Every kernel in
// kernels/gemm_int4.hpp is bit-identical to the functions here.
//
// WEIGHTS W [N, K]: one row per output, grouped along K in groups of G (G a multiple of 32
// dividing K: 32, 64, 128, ..., K itself for one scale per row). lowbit's int4 layout
// (core/int4.hpp): element (n, k) is nibble n * K + k. One scale s[n][g] per group, stored as
// f32 or as IEEE binary16 bits (converted exactly, core/f16.hpp). The integer weight is
//   s4 (symmetric):           w = q                 q in [-8, 7] (two's complement nibble)
//   u4 (scale + zero point):  w = q - zp[n][g]      q, zp in [0, 15], so w in [-15, 15]
// and the real weight it stands for is s[n][g] * w (ONNX DequantizeLinear, torch per-group).
//
// F32 ACTIVATIONS (ref::gemm_int4_f32), A [M, K] f32, Y [M, N] f32, optional bias[N]:
//   y = bias[n] (or +0.0f)
//   for g = 0, 1, ..., K/G - 1:                            groups in increasing order
//       t = +0.0f
//       for k = g*G, ..., g*G + G - 1:  t = fma(a[m][k], f32(w[n][k]), t)   increasing k
//       y = fma(t, s[n][g], y)
//   Y[m][n] = y
// fma is fused (one rounding, LOWBIT_FMAF); f32(w) is exact. Why this order is deterministic
// and fast: each output is a fixed sequence of correctly rounded IEEE operations that depends
// on nothing but its own row of W and row of A, so any kernel that gives every output n its own
// SIMD lane and walks k upwards inside the lane performs exactly these operations: no
// reassociation, no horizontal sum, no dependence on tile sizes, threads or the ISA.
//
// Q8 ACTIVATIONS (ref::quantize_q8 then ref::gemm_int4_q8), the llama.cpp Q4_0 x Q8_0 scheme:
// each row of A is quantized per block of 32 (ref::quantize_q8):
//   amax = max |x| over the block (x must be finite);  id = 127.0f / amax (f32 division)
//   if id is finite: d = amax / 127.0f,  q = round_half_even(x * id)     (|q| <= 127, below)
//   else (amax == 0, or amax < 127 / FLT_MAX ~ 3.7e-37): d = 0, q = 0
//   sum = sum of the block's q (int32; kernels use it, see below)
// |q| <= 127: x * id <= amax * (127 / amax) * (1 + 2^-24), which rounds to at most
// 127.0000076 < 127.5. This is llama.cpp's x86 (AVX2 / AVX-512) quantize_row_q8_0 (127 / amax,
// then round to nearest even); llama.cpp's portable reference quantize_row_q8_0_ref differs:
// q = roundf(x * (1 / d)), ties AWAY from zero and the reciprocal of the rounded d, so an
// occasional q differs by one (and for amax < 127 / FLT_MAX llama.cpp's 127 / amax overflows,
// where lowbit defines d = 0, q = 0). Then
//   y = bias[n] (or +0.0f)
//   for b = 0, 1, ..., K/32 - 1:                           blocks in increasing order
//       dot = sum over the block of qa[m][k] * w[n][k]      exact int32: |dot| <= 32*128*15
//       y = fma(f32(dot), f32(d_a[m][b] * s[n][b*32 / G]), y)
//   Y[m][n] = y
// (qa may be any int8; quantize_q8 writes [-127, 127].) f32(dot) is exact (|dot| < 2^24); the
// scale product is rounded once; the order is fixed as above, and the integer dot is exact in
// any order, so SIMD kernels (VNNI vpdpbusd, vpmaddubsw) are bit-identical however they split
// or reorder the 32 products. The float accumulation over blocks is lowbit's own: llama.cpp's
// ggml_vec_dot_q4_0_q8_0 keeps SIMD partial sums and adds them horizontally at the end, so its
// results are not bit-comparable with these (the integer dots are the same).
//
// NON-FINITE VALUES. Scales and bias must be finite (checked). f32 activations are not
// checked: Inf / NaN propagate through the IEEE operations above (and so may overflow to Inf);
// where an output is NaN, which NaN (sign, payload) is not specified. q8 activations come from
// finite inputs only (quantize_q8 checks). Results assume the default floating-point
// environment (round to nearest, no flush-to-zero).
//
// ggml Q4_0 (to_q4_0 / from_q4_0): a row of K weights is K/32 blocks of 18 bytes: the scale d
// as binary16 (little-endian), then 16 bytes qs where byte j holds element j in its low nibble
// and element j + 16 in its high nibble, and the weight is d * (nibble - 8). So lowbit s4,
// G = 32, f16 scales <-> Q4_0 is a bijection: nibble = q + 8, d = s. ggml Q8_0
// (quantize_q8_0): 34-byte blocks, binary16 d = f32_to_f16(amax / 127) then the 32 q of
// quantize_q8 (computed from the f32 amax, not from the rounded d, as llama.cpp's x86 code).
//
// ONNX (to_onnx / from_onnx): DequantizeLinear (opset 21+) with blocked quantization of a
// 2-D INT4 / UINT4 tensor: x packed two per byte in lowbit's nibble order, x_scale (float or
// float16) and x_zero_point (same type as x, packed likewise) of x's shape with the blocked
// dimension divided by block_size, y = (x - zero_point) * scale. axis = 1: x is lowbit's
// [N, K]; axis = 0: x is [K, N] (MatMul's B), scale / zero point [K/G, N].
//
// No heap, no exceptions needed; every function checks its arguments and writes nothing on
// error (the error names the argument and its value, see core/status.hpp).
#ifndef LOWBIT_CORE_GEMM_INT4_HPP
#define LOWBIT_CORE_GEMM_INT4_HPP

#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "f16.hpp"
#include "format.hpp"
#include "int4.hpp"
#include "rounding.hpp"
#include "span.hpp"
#include "status.hpp"

namespace lowbit {

/// Block length of the q8 activations, of ggml's Q4_0 / Q8_0 blocks, and the unit of the
/// weight group size.
constexpr std::size_t int4_block = 32;
/// Bytes of one ggml Q4_0 block (binary16 d + 16 bytes) and of one Q8_0 block (d + 32 q).
constexpr std::size_t q4_0_block_bytes = 18;
constexpr std::size_t q8_0_block_bytes = 34;

/// A read-only view of int4 weights [N, K] (file comment). Exactly one of scales /
/// scales_f16 holds the N * (K / G) group scales, [n][g] at n * (K / G) + g; zero_points
/// (u4 only) holds N * (K / G) values in [0, 15], one per byte, same order.
struct int4_weights {
    format_id format = format_id::s4;  ///< s4 (symmetric) or u4 (zero points)
    std::size_t n = 0, k = 0;          ///< rows (outputs) and columns (inputs)
    std::size_t group_size = 32;       ///< G: a multiple of 32 dividing K
    span<const std::uint8_t> data;     ///< N * K / 2 bytes, lowbit's int4 layout
    span<const float> scales;          ///< f32 scales, or empty
    span<const std::uint16_t> scales_f16;  ///< binary16 scales (bit patterns), or empty
    span<const std::uint8_t> zero_points;  ///< u4: N * (K / G); s4: empty

    constexpr std::size_t groups() const noexcept { return group_size == 0 ? 0 : k / group_size; }
    /// Scale of row r, group g, as f32 (binary16 converted exactly).
    constexpr float scale(std::size_t r, std::size_t g) const noexcept {
        const std::size_t i = r * groups() + g;
        return scales_f16.empty() ? scales[i] : f16_to_f32(scales_f16[i]);
    }
    /// The integer weight w[r][c]: q for s4, q - zp for u4.
    constexpr std::int32_t value(std::size_t r, std::size_t c) const noexcept {
        const std::uint8_t nib = get_nibble(data.data(), r * k + c);
        if (format == format_id::s4) return sign_extend_s4(nib);
        return std::int32_t(nib) - zero_points[r * groups() + c / group_size];
    }
};

/// Writable int4 weights (the output of from_q4_0 / from_onnx): the same fields as
/// int4_weights; the caller sets format, n, k, group_size and sizes the spans (the non-empty
/// scale span chooses f32 or binary16 scales).
struct int4_weights_buffer {
    format_id format = format_id::s4;
    std::size_t n = 0, k = 0, group_size = 32;
    span<std::uint8_t> data;
    span<float> scales;
    span<std::uint16_t> scales_f16;
    span<std::uint8_t> zero_points;

    constexpr int4_weights view() const noexcept {
        return {format, n, k, group_size, data, scales, scales_f16, zero_points};
    }
};

/// Activations quantized per block of 32 (ref::quantize_q8): M rows of K int8 (row m at
/// m * K), and per block b of row m (at m * (K / 32) + b) the scale d and the sum of its q.
struct q8_activations {
    std::size_t m = 0, k = 0;
    span<const std::int8_t> q;      ///< M * K
    span<const float> scales;       ///< M * K / 32
    span<const std::int32_t> sums;  ///< M * K / 32
};

/// Writable q8 activations (the output of quantize_q8); the caller sizes the spans.
struct q8_activations_buffer {
    std::size_t m = 0, k = 0;
    span<std::int8_t> q;
    span<float> scales;
    span<std::int32_t> sums;

    constexpr q8_activations view() const noexcept { return {m, k, q, scales, sums}; }
};

/// A read-only view of ONNX DequantizeLinear's inputs for a 2-D blocked int4 weight (file
/// comment): x [rows, cols] packed (rows * cols + 1) / 2 bytes; scales (or scales_f16) and
/// zero_points (packed nibbles, or empty for none) of x's shape with dimension `axis`
/// divided by block_size, row-major.
struct onnx_int4 {
    bool is_signed = true;  ///< INT4 (true) or UINT4
    std::size_t rows = 0, cols = 0;
    std::size_t axis = 1;  ///< the blocked dimension: 1 for [N, K], 0 for [K, N]
    std::size_t block_size = 32;
    span<const std::uint8_t> data;
    span<const float> scales;
    span<const std::uint16_t> scales_f16;
    span<const std::uint8_t> zero_points;
};

/// Writable ONNX tensors (the output of to_onnx): the caller sizes the spans; to_onnx fills
/// is_signed, rows, cols, axis and block_size.
struct onnx_int4_buffer {
    bool is_signed = true;
    std::size_t rows = 0, cols = 0, axis = 1, block_size = 32;
    span<std::uint8_t> data;
    span<float> scales;
    span<std::uint16_t> scales_f16;
    span<std::uint8_t> zero_points;

    constexpr onnx_int4 view() const noexcept {
        return {is_signed, rows, cols, axis, block_size, data, scales, scales_f16, zero_points};
    }
};

namespace detail {

constexpr bool mul_fits(std::size_t a, std::size_t b, std::size_t& out) noexcept {
    if (a != 0 && b > static_cast<std::size_t>(-1) / a) return false;
    out = a * b;
    return true;
}

constexpr bool f16_is_finite(std::uint16_t h) noexcept { return (h & 0x7C00u) != 0x7C00u; }

// Shape of int4 weights (input views and output buffers alike): format, group size, sizes of
// every span. `out` picks the argument names ("out.*" or "w.*").
template <class W>
constexpr status check_int4_shape(const W& w, bool out) {
    LOWBIT_DETAIL_CHECK(w.format == format_id::s4 || w.format == format_id::u4, errc::invalid_argument,
                        out ? "out.format" : "w.format", static_cast<int>(w.format), "must be s4 or u4");
    LOWBIT_DETAIL_CHECK(w.group_size > 0 && w.group_size % int4_block == 0, errc::invalid_argument,
                        out ? "out.group_size" : "w.group_size", w.group_size, "must be a positive multiple of 32");
    LOWBIT_DETAIL_CHECK(w.k % w.group_size == 0, errc::invalid_argument, out ? "out.k" : "w.k", w.k,
                        "must be a multiple of group_size");
    std::size_t numel = 0, params = 0;
    LOWBIT_DETAIL_CHECK(mul_fits(w.n, w.k, numel), errc::overflow, out ? "out.n" : "w.n", w.n, "N * K must fit size_t");
    params = w.n * (w.k / w.group_size);
    LOWBIT_DETAIL_CHECK(w.data.size() == numel / 2, errc::size_mismatch, out ? "out.data.size()" : "w.data.size()",
                        w.data.size(), "must be N * K / 2");
    if (!w.scales_f16.empty()) {
        LOWBIT_DETAIL_CHECK(w.scales.empty(), errc::size_mismatch, out ? "out.scales.size()" : "w.scales.size()",
                            w.scales.size(), "must be 0 when scales_f16 is given (one kind of scales)");
        LOWBIT_DETAIL_CHECK(w.scales_f16.size() == params, errc::size_mismatch,
                            out ? "out.scales_f16.size()" : "w.scales_f16.size()", w.scales_f16.size(),
                            "must be N * (K / group_size)");
    } else {
        LOWBIT_DETAIL_CHECK(w.scales.size() == params, errc::size_mismatch, out ? "out.scales.size()" : "w.scales.size()",
                            w.scales.size(), "must be N * (K / group_size) (or give scales_f16)");
    }
    const std::size_t zps = w.format == format_id::u4 ? params : 0;
    LOWBIT_DETAIL_CHECK(w.zero_points.size() == zps, errc::size_mismatch,
                        out ? "out.zero_points.size()" : "w.zero_points.size()", w.zero_points.size(),
                        "must be N * (K / group_size) for u4, 0 for s4");
    return {};
}

/// Shape and values of int4 weights: finite scales, zero points in [0, 15].
constexpr status check_int4_weights(const int4_weights& w) {
    LOWBIT_DETAIL_TRY(check_int4_shape(w, false));
    for (std::size_t i = 0; i < w.scales.size(); ++i)
        LOWBIT_DETAIL_CHECK(is_finite(w.scales[i]), errc::invalid_argument, "w.scales[i]", w.scales[i], "must be finite");
    for (std::size_t i = 0; i < w.scales_f16.size(); ++i)
        LOWBIT_DETAIL_CHECK(f16_is_finite(w.scales_f16[i]), errc::invalid_argument, "w.scales_f16[i]", w.scales_f16[i],
                            "must be a finite binary16 (exponent bits not all ones)");
    for (std::size_t i = 0; i < w.zero_points.size(); ++i)
        LOWBIT_DETAIL_CHECK(w.zero_points[i] <= 15, errc::invalid_argument, "w.zero_points[i]", w.zero_points[i],
                            "must be in [0, 15]");
    return {};
}

/// Bias (0 or N finite values) and the output Y [M, N] with leading dimension ldy.
constexpr status check_int4_output(std::size_t m, std::size_t n, span<const float> bias, std::size_t y_size,
                                   std::size_t ldy) {
    LOWBIT_DETAIL_CHECK(bias.empty() || bias.size() == n, errc::size_mismatch, "bias.size()", bias.size(),
                        "must be 0 or N");
    for (std::size_t i = 0; i < bias.size(); ++i)
        LOWBIT_DETAIL_CHECK(is_finite(bias[i]), errc::invalid_argument, "bias[i]", bias[i], "must be finite");
    if (m == 0 || n == 0) return {};
    LOWBIT_DETAIL_CHECK(ldy >= n, errc::invalid_argument, "ldy", ldy, "must be >= N");
    LOWBIT_DETAIL_CHECK(m - 1 <= (static_cast<std::size_t>(-1) - n) / ldy, errc::overflow, "ldy", ldy,
                        "(M - 1) * ldy + N must fit size_t");
    LOWBIT_DETAIL_CHECK(y_size >= (m - 1) * ldy + n, errc::size_mismatch, "y.size()", y_size,
                        "must be >= (M - 1) * ldy + N");
    return {};
}

/// f32 activations A [M, K] with leading dimension lda.
constexpr status check_int4_f32_activations(std::size_t m, std::size_t k, std::size_t a_size, std::size_t lda) {
    if (m == 0) return {};
    LOWBIT_DETAIL_CHECK(lda >= k, errc::invalid_argument, "lda", lda, "must be >= K");
    LOWBIT_DETAIL_CHECK(m - 1 <= (static_cast<std::size_t>(-1) - k) / (lda == 0 ? 1 : lda), errc::overflow, "lda",
                        lda, "(M - 1) * lda + K must fit size_t");
    LOWBIT_DETAIL_CHECK(a_size >= (m - 1) * lda + k, errc::size_mismatch, "a.size()", a_size,
                        "must be >= (M - 1) * lda + K");
    return {};
}

/// q8 activations for weights with K columns: sizes, finite scales, and every block sum equal
/// to the sum of its q (the kernels rely on the sums).
constexpr status check_q8_activations(const q8_activations& a, std::size_t k) {
    LOWBIT_DETAIL_CHECK(a.k == k, errc::size_mismatch, "a.k", a.k, "must equal the weights' K");
    std::size_t numel = 0;
    LOWBIT_DETAIL_CHECK(mul_fits(a.m, a.k, numel), errc::overflow, "a.m", a.m, "M * K must fit size_t");
    LOWBIT_DETAIL_CHECK(a.q.size() == numel, errc::size_mismatch, "a.q.size()", a.q.size(), "must be M * K");
    const std::size_t blocks = numel / int4_block;
    LOWBIT_DETAIL_CHECK(a.scales.size() == blocks, errc::size_mismatch, "a.scales.size()", a.scales.size(),
                        "must be M * K / 32");
    LOWBIT_DETAIL_CHECK(a.sums.size() == blocks, errc::size_mismatch, "a.sums.size()", a.sums.size(),
                        "must be M * K / 32");
    for (std::size_t b = 0; b < blocks; ++b) {
        LOWBIT_DETAIL_CHECK(is_finite(a.scales[b]), errc::invalid_argument, "a.scales[i]", a.scales[b], "must be finite");
        std::int32_t s = 0;
        for (std::size_t j = 0; j < int4_block; ++j) s += a.q[b * int4_block + j];
        LOWBIT_DETAIL_CHECK(a.sums[b] == s, errc::invalid_argument, "a.sums[i]", a.sums[b],
                            "must be the sum of the block's q (as quantize_q8 writes it)");
    }
    return {};
}

// One block of 32 values of quantize_q8 (x finite): writes q[0..31], returns d and the sum.
constexpr float quantize_q8_block(const float* x, std::int8_t* q, std::int32_t& sum) noexcept {
    float amax = 0.0f;
    for (std::size_t j = 0; j < int4_block; ++j) {
        const float v = abs(x[j]);
        if (v > amax) amax = v;
    }
    const float id = 127.0f / amax;
    sum = 0;
    if (!is_finite(id)) {
        for (std::size_t j = 0; j < int4_block; ++j) q[j] = 0;
        return 0.0f;
    }
    for (std::size_t j = 0; j < int4_block; ++j) {
        const auto v = static_cast<std::int32_t>(round_half_even(x[j] * id));  // |v| <= 127 (file comment)
        q[j] = static_cast<std::int8_t>(v);
        sum += v;
    }
    return amax / 127.0f;
}

}  // namespace detail

namespace ref {

/// Quantizes A [M, K] (row m at x[m * ldx], K a multiple of 32) into q8 blocks of 32 (file
/// comment: amax, id = 127 / amax, round half to even; d = amax / 127; all-zero or tiny blocks
/// give d = 0, q = 0). out.m and out.k must be M and K, out.q M * K, out.scales and out.sums
/// M * K / 32. Errors: K not a multiple of 32; ldx < K; x too small; an out size; a
/// non-finite x (x[i]). Nothing is written on error.
inline status quantize_q8(span<const float> x, std::size_t m, std::size_t k, std::size_t ldx,
                          const q8_activations_buffer& out) {
    LOWBIT_DETAIL_CHECK(k % int4_block == 0, errc::invalid_argument, "k", k, "must be a multiple of 32");
    LOWBIT_DETAIL_CHECK(out.m == m, errc::size_mismatch, "out.m", out.m, "must be M");
    LOWBIT_DETAIL_CHECK(out.k == k, errc::size_mismatch, "out.k", out.k, "must be K");
    LOWBIT_DETAIL_TRY(detail::check_int4_f32_activations(m, k, x.size(), ldx));
    std::size_t numel = 0;
    LOWBIT_DETAIL_CHECK(detail::mul_fits(m, k, numel), errc::overflow, "m", m, "M * K must fit size_t");
    LOWBIT_DETAIL_CHECK(out.q.size() == numel, errc::size_mismatch, "out.q.size()", out.q.size(), "must be M * K");
    LOWBIT_DETAIL_CHECK(out.scales.size() == numel / int4_block, errc::size_mismatch, "out.scales.size()",
                        out.scales.size(), "must be M * K / 32");
    LOWBIT_DETAIL_CHECK(out.sums.size() == numel / int4_block, errc::size_mismatch, "out.sums.size()",
                        out.sums.size(), "must be M * K / 32");
    for (std::size_t r = 0; r < m; ++r)
        for (std::size_t c = 0; c < k; ++c)
            LOWBIT_DETAIL_CHECK(detail::is_finite(x[r * ldx + c]), errc::invalid_argument, "x[i]", x[r * ldx + c],
                                "must be finite");
    for (std::size_t r = 0; r < m; ++r)
        for (std::size_t b = 0; b < k / int4_block; ++b) {
            const std::size_t i = r * (k / int4_block) + b;
            out.scales[i] = detail::quantize_q8_block(x.data() + r * ldx + b * int4_block,
                                                      out.q.data() + r * k + b * int4_block, out.sums[i]);
        }
    return {};
}

/// Y = A W^T with f32 activations A [M, K] (row m at a[m * lda]): Y[m][n] in the exact order of
/// the file comment, at y[m * ldy + n]; bias empty or N values (the starting value of each
/// output). Errors: the weights' shape (format, group size a multiple of 32 dividing K, span
/// sizes), a non-finite scale, a zero point above 15, bias size or value, lda < K, ldy < N, a
/// or y too small. Nothing is written on error.
inline status gemm_int4_f32(const int4_weights& w, span<const float> a, std::size_t m, std::size_t lda,
                            span<const float> bias, span<float> y, std::size_t ldy) {
    LOWBIT_DETAIL_TRY(detail::check_int4_weights(w));
    LOWBIT_DETAIL_TRY(detail::check_int4_f32_activations(m, w.k, a.size(), lda));
    LOWBIT_DETAIL_TRY(detail::check_int4_output(m, w.n, bias, y.size(), ldy));
    const std::size_t groups = w.groups();
    for (std::size_t r = 0; r < m; ++r)
        for (std::size_t n = 0; n < w.n; ++n) {
            float acc = bias.empty() ? 0.0f : bias[n];
            for (std::size_t g = 0; g < groups; ++g) {
                float t = 0.0f;
                for (std::size_t c = g * w.group_size; c < (g + 1) * w.group_size; ++c)
                    t = LOWBIT_FMAF(a[r * lda + c], static_cast<float>(w.value(n, c)), t);
                acc = LOWBIT_FMAF(t, w.scale(n, g), acc);
            }
            y[r * ldy + n] = acc;
        }
    return {};
}

/// Y = A W^T with q8 activations (quantize_q8 of A): Y[m][n] in the exact order of the file
/// comment, at y[m * ldy + n]; bias as in gemm_int4_f32. Errors: those of the weights, bias
/// and output as gemm_int4_f32; a.k != K; a's span sizes; a non-finite a.scales value; a block
/// sum that is not the sum of its q. Nothing is written on error.
inline status gemm_int4_q8(const int4_weights& w, const q8_activations& a, span<const float> bias, span<float> y,
                           std::size_t ldy) {
    LOWBIT_DETAIL_TRY(detail::check_int4_weights(w));
    LOWBIT_DETAIL_TRY(detail::check_q8_activations(a, w.k));
    LOWBIT_DETAIL_TRY(detail::check_int4_output(a.m, w.n, bias, y.size(), ldy));
    const std::size_t blocks = w.k / int4_block;
    for (std::size_t r = 0; r < a.m; ++r)
        for (std::size_t n = 0; n < w.n; ++n) {
            float acc = bias.empty() ? 0.0f : bias[n];
            for (std::size_t b = 0; b < blocks; ++b) {
                std::int32_t dot = 0;
                for (std::size_t c = b * int4_block; c < (b + 1) * int4_block; ++c)
                    dot += std::int32_t(a.q[r * w.k + c]) * w.value(n, c);
                const float s = a.scales[r * blocks + b] * w.scale(n, b * int4_block / w.group_size);
                acc = LOWBIT_FMAF(static_cast<float>(dot), s, acc);
            }
            y[r * ldy + n] = acc;
        }
    return {};
}

/// Bytes of ggml Q4_0 data for N rows of K weights (K a multiple of 32): N * K / 32 * 18.
constexpr std::size_t q4_0_size(std::size_t n, std::size_t k) noexcept { return n * (k / int4_block) * q4_0_block_bytes; }

/// lowbit s4 weights with G = 32 -> ggml Q4_0 blocks (row n's blocks at n * K / 32 * 18,
/// file comment), lossless. Scales may be binary16 (copied) or f32 values that are exactly a
/// binary16 (converted). Errors: the weights' checks; format not s4 or G != 32; an f32 scale
/// that is not exactly a binary16 (w.scales[i]); blocks.size() != q4_0_size(N, K).
inline status to_q4_0(const int4_weights& w, span<std::uint8_t> blocks) {
    LOWBIT_DETAIL_TRY(detail::check_int4_weights(w));
    LOWBIT_DETAIL_CHECK(w.format == format_id::s4, errc::invalid_argument, "w.format", static_cast<int>(w.format),
                        "must be s4 (Q4_0 is symmetric)");
    LOWBIT_DETAIL_CHECK(w.group_size == int4_block, errc::invalid_argument, "w.group_size", w.group_size,
                        "must be 32 (Q4_0 blocks)");
    for (std::size_t i = 0; i < w.scales.size(); ++i)
        LOWBIT_DETAIL_CHECK(detail::float_bits(f16_to_f32(f32_to_f16(w.scales[i]))) == detail::float_bits(w.scales[i]),
                            errc::invalid_argument, "w.scales[i]", w.scales[i],
                            "must be exactly representable as binary16 (Q4_0 stores d as fp16)");
    LOWBIT_DETAIL_CHECK(blocks.size() == q4_0_size(w.n, w.k), errc::size_mismatch, "blocks.size()", blocks.size(),
                        "must be N * K / 32 * 18");
    const std::size_t nb = w.k / int4_block;
    for (std::size_t r = 0; r < w.n; ++r)
        for (std::size_t b = 0; b < nb; ++b) {
            std::uint8_t* blk = blocks.data() + (r * nb + b) * q4_0_block_bytes;
            const std::size_t i = r * nb + b;
            const std::uint16_t d = w.scales_f16.empty() ? f32_to_f16(w.scales[i]) : w.scales_f16[i];
            blk[0] = static_cast<std::uint8_t>(d & 0xFFu);
            blk[1] = static_cast<std::uint8_t>(d >> 8);
            const std::size_t base = r * w.k + b * int4_block;
            for (std::size_t j = 0; j < 16; ++j) {
                const int lo = get_nibble(w.data.data(), base + j) ^ 8;  // q + 8 for a two's complement nibble
                const int hi = get_nibble(w.data.data(), base + j + 16) ^ 8;
                blk[2 + j] = pack_nibbles(lo, hi);
            }
        }
    return {};
}

/// ggml Q4_0 blocks (N rows of K weights) -> lowbit s4 weights with G = 32, lossless: out.format
/// s4, out.n = N, out.k = K, out.group_size 32, out.data N * K / 2 bytes, scales as binary16
/// (copied bit for bit) or f32 (converted exactly). Every block is valid input. Errors: K not
/// a multiple of 32; blocks.size() != q4_0_size(N, K); out's fields or sizes.
inline status from_q4_0(span<const std::uint8_t> blocks, std::size_t n, std::size_t k, const int4_weights_buffer& out) {
    LOWBIT_DETAIL_CHECK(k % int4_block == 0, errc::invalid_argument, "k", k, "must be a multiple of 32");
    LOWBIT_DETAIL_CHECK(out.n == n, errc::size_mismatch, "out.n", out.n, "must be N");
    LOWBIT_DETAIL_CHECK(out.k == k, errc::size_mismatch, "out.k", out.k, "must be K");
    LOWBIT_DETAIL_CHECK(out.format == format_id::s4, errc::invalid_argument, "out.format", static_cast<int>(out.format),
                        "must be s4");
    LOWBIT_DETAIL_CHECK(out.group_size == int4_block, errc::invalid_argument, "out.group_size", out.group_size,
                        "must be 32");
    LOWBIT_DETAIL_TRY(detail::check_int4_shape(out, true));
    LOWBIT_DETAIL_CHECK(blocks.size() == q4_0_size(n, k), errc::size_mismatch, "blocks.size()", blocks.size(),
                        "must be N * K / 32 * 18");
    const std::size_t nb = k / int4_block;
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t b = 0; b < nb; ++b) {
            const std::uint8_t* blk = blocks.data() + (r * nb + b) * q4_0_block_bytes;
            const std::size_t i = r * nb + b;
            const auto d = static_cast<std::uint16_t>(blk[0] | (blk[1] << 8));
            if (out.scales_f16.empty())
                out.scales[i] = f16_to_f32(d);
            else
                out.scales_f16[i] = d;
            // lowbit bytes of this block: elements 2j, 2j + 1 (j < 16) of the 32
            std::uint8_t* dst = out.data.data() + (r * k + b * int4_block) / 2;
            for (std::size_t j = 0; j < 16; ++j) {
                const std::size_t e0 = 2 * j, e1 = 2 * j + 1;  // element e is nibble (e % 16) of byte 2 + e % 16
                const int v0 = ((e0 < 16 ? blk[2 + e0] : blk[2 + e0 - 16] >> 4) & 0x0F) ^ 8;
                const int v1 = ((e1 < 16 ? blk[2 + e1] : blk[2 + e1 - 16] >> 4) & 0x0F) ^ 8;
                dst[j] = pack_nibbles(v0, v1);
            }
        }
    return {};
}

/// ggml Q8_0 blocks of a row x of K floats (K a multiple of 32): per block, binary16
/// f32_to_f16(d) (little-endian) then the 32 q of quantize_q8 (file comment). Errors: K not a
/// multiple of 32; blocks.size() != K / 32 * 34; a non-finite x (x[i]). Nothing written on error.
inline status quantize_q8_0(span<const float> x, span<std::uint8_t> blocks) {
    LOWBIT_DETAIL_CHECK(x.size() % int4_block == 0, errc::invalid_argument, "x.size()", x.size(),
                        "must be a multiple of 32");
    LOWBIT_DETAIL_CHECK(blocks.size() == x.size() / int4_block * q8_0_block_bytes, errc::size_mismatch,
                        "blocks.size()", blocks.size(), "must be x.size() / 32 * 34");
    for (std::size_t i = 0; i < x.size(); ++i)
        LOWBIT_DETAIL_CHECK(detail::is_finite(x[i]), errc::invalid_argument, "x[i]", x[i], "must be finite");
    for (std::size_t b = 0; b < x.size() / int4_block; ++b) {
        std::uint8_t* blk = blocks.data() + b * q8_0_block_bytes;
        std::int8_t q[int4_block] = {};
        std::int32_t sum = 0;
        const std::uint16_t d = f32_to_f16(detail::quantize_q8_block(x.data() + b * int4_block, q, sum));
        blk[0] = static_cast<std::uint8_t>(d & 0xFFu);
        blk[1] = static_cast<std::uint8_t>(d >> 8);
        for (std::size_t j = 0; j < int4_block; ++j) blk[2 + j] = static_cast<std::uint8_t>(q[j]);
    }
    return {};
}

}  // namespace ref

namespace detail {

// ONNX tensor shape checks (input view or output buffer; names "in.*" or "out.*").
template <class O>
constexpr status check_onnx_shape(const O& o, bool out, std::size_t& params) {
    LOWBIT_DETAIL_CHECK(o.axis <= 1, errc::out_of_range, out ? "axis" : "in.axis", o.axis, "must be 0 or 1 (2-D)");
    const std::size_t blocked = o.axis == 0 ? o.rows : o.cols, other = o.axis == 0 ? o.cols : o.rows;
    LOWBIT_DETAIL_CHECK(o.block_size > 0 && o.block_size % int4_block == 0 && blocked % o.block_size == 0,
                        errc::invalid_argument, out ? "out.block_size" : "in.block_size", o.block_size,
                        "must be a multiple of 32 dividing the blocked dimension (lowbit's group rule)");
    std::size_t numel = 0;
    LOWBIT_DETAIL_CHECK(mul_fits(o.rows, o.cols, numel), errc::overflow, out ? "out.rows" : "in.rows", o.rows,
                        "rows * cols must fit size_t");
    params = other * (blocked / o.block_size);
    LOWBIT_DETAIL_CHECK(o.data.size() == (numel + 1) / 2, errc::size_mismatch, out ? "out.data.size()" : "in.data.size()",
                        o.data.size(), "must be (rows * cols + 1) / 2");
    if (!o.scales_f16.empty()) {
        LOWBIT_DETAIL_CHECK(o.scales.empty(), errc::size_mismatch, out ? "out.scales.size()" : "in.scales.size()",
                            o.scales.size(), "must be 0 when scales_f16 is given (one kind of scales)");
        LOWBIT_DETAIL_CHECK(o.scales_f16.size() == params, errc::size_mismatch,
                            out ? "out.scales_f16.size()" : "in.scales_f16.size()", o.scales_f16.size(),
                            "must be the scale tensor's element count");
    } else {
        LOWBIT_DETAIL_CHECK(o.scales.size() == params, errc::size_mismatch, out ? "out.scales.size()" : "in.scales.size()",
                            o.scales.size(), "must be the scale tensor's element count");
    }
    LOWBIT_DETAIL_CHECK(o.zero_points.empty() || o.zero_points.size() == (params + 1) / 2, errc::size_mismatch,
                        out ? "out.zero_points.size()" : "in.zero_points.size()", o.zero_points.size(),
                        "must be 0 (none) or (scale count + 1) / 2 packed nibbles");
    return {};
}

constexpr void set_nibble(std::uint8_t* p, std::size_t i, int v) noexcept {
    const unsigned shift = (i % 2) * 4u;
    p[i / 2] = static_cast<std::uint8_t>((p[i / 2] & ~(0x0Fu << shift)) | ((unsigned(v) & 0x0Fu) << shift));
}

}  // namespace detail

namespace ref {

/// lowbit int4 weights -> ONNX DequantizeLinear tensors, lossless (file comment): s4 -> INT4
/// without zero point (out.zero_points must be empty), u4 -> UINT4 with packed zero points;
/// axis 1 writes x as [N, K] (the same bytes), axis 0 as [K, N] (transposed, scales [K/G, N]).
/// out's scale kind must be w's (f32 or binary16, copied). Sets out.is_signed, rows, cols,
/// axis, block_size; padding nibbles are 0. Errors: the weights' checks; axis > 1; out sizes.
inline status to_onnx(const int4_weights& w, std::size_t axis, onnx_int4_buffer& out) {
    LOWBIT_DETAIL_TRY(detail::check_int4_weights(w));
    onnx_int4_buffer o = out;
    o.is_signed = w.format == format_id::s4;
    o.axis = axis;
    o.rows = axis == 0 ? w.k : w.n;
    o.cols = axis == 0 ? w.n : w.k;
    o.block_size = w.group_size;
    std::size_t params = 0;
    LOWBIT_DETAIL_TRY(detail::check_onnx_shape(o, true, params));
    LOWBIT_DETAIL_CHECK(w.scales_f16.empty() == o.scales_f16.empty(), errc::size_mismatch, "out.scales_f16.size()",
                        o.scales_f16.size(), "must be empty exactly when w has f32 scales (same scale kind)");
    LOWBIT_DETAIL_CHECK(o.zero_points.size() == (o.is_signed ? 0 : (params + 1) / 2), errc::size_mismatch,
                        "out.zero_points.size()", o.zero_points.size(), "must be 0 for s4, (scale count + 1) / 2 for u4");
    const std::size_t groups = w.groups();
    if (o.data.size() != 0) o.data[o.data.size() - 1] = 0;  // the padding nibble of an odd count
    if (!o.zero_points.empty()) o.zero_points[o.zero_points.size() - 1] = 0;
    for (std::size_t r = 0; r < w.n; ++r) {
        for (std::size_t c = 0; c < w.k; ++c)
            detail::set_nibble(o.data.data(), axis == 0 ? c * w.n + r : r * w.k + c, get_nibble(w.data.data(), r * w.k + c));
        for (std::size_t g = 0; g < groups; ++g) {
            const std::size_t src = r * groups + g, dst = axis == 0 ? g * w.n + r : r * groups + g;
            if (o.scales_f16.empty())
                o.scales[dst] = w.scales[src];
            else
                o.scales_f16[dst] = w.scales_f16[src];
            if (!o.zero_points.empty()) detail::set_nibble(o.zero_points.data(), dst, w.zero_points[src]);
        }
    }
    out = o;
    return {};
}

/// ONNX DequantizeLinear tensors -> lowbit int4 weights, lossless in value (w - zp and the
/// scales are preserved exactly). out.format is the caller's choice: s4 takes INT4 whose zero
/// points are absent or all 0; u4 takes UINT4 (absent zero points are 0) or INT4 (nibbles and
/// zero points shifted by +8: (q + 8) - (zp + 8) = q - zp). out.n / k / group_size must be
/// the weight's [N, K] and block_size; out's scale kind must be in's. Errors: in's shape
/// (axis, block_size a multiple of 32 dividing the blocked dimension, sizes); the format
/// rule above (in.zero_points[i] for a nonzero INT4 zero point into s4); out's fields/sizes.
inline status from_onnx(const onnx_int4& in, const int4_weights_buffer& out) {
    std::size_t params = 0;
    LOWBIT_DETAIL_TRY(detail::check_onnx_shape(in, false, params));
    const std::size_t n = in.axis == 0 ? in.cols : in.rows, k = in.axis == 0 ? in.rows : in.cols;
    LOWBIT_DETAIL_CHECK(out.n == n, errc::size_mismatch, "out.n", out.n, "must be the weight's N (rows for axis 1)");
    LOWBIT_DETAIL_CHECK(out.k == k, errc::size_mismatch, "out.k", out.k, "must be the weight's K (cols for axis 1)");
    LOWBIT_DETAIL_CHECK(out.group_size == in.block_size, errc::size_mismatch, "out.group_size", out.group_size,
                        "must be in.block_size");
    LOWBIT_DETAIL_TRY(detail::check_int4_shape(out, true));
    LOWBIT_DETAIL_CHECK(in.scales_f16.empty() == out.scales_f16.empty(), errc::size_mismatch, "out.scales_f16.size()",
                        out.scales_f16.size(), "must be empty exactly when in has f32 scales (same scale kind)");
    if (out.format == format_id::s4) {
        LOWBIT_DETAIL_CHECK(in.is_signed, errc::invalid_argument, "out.format", static_cast<int>(out.format),
                            "s4 needs an INT4 tensor (UINT4 converts to u4)");
        for (std::size_t i = 0; i < params && !in.zero_points.empty(); ++i)
            LOWBIT_DETAIL_CHECK(get_nibble(in.zero_points.data(), i) == 0, errc::invalid_argument, "in.zero_points[i]",
                                sign_extend_s4(get_nibble(in.zero_points.data(), i)),
                                "must be 0 for an s4 output (use u4 for INT4 with zero points)");
    }
    const std::size_t groups = k / in.block_size;
    const int shift = in.is_signed && out.format == format_id::u4 ? 8 : 0;  // XOR 8 = +8 on a two's complement nibble
    for (std::size_t r = 0; r < n; ++r) {
        for (std::size_t c = 0; c < k; ++c) {
            const std::size_t src = in.axis == 0 ? c * n + r : r * k + c;
            detail::set_nibble(out.data.data(), r * k + c, get_nibble(in.data.data(), src) ^ shift);
        }
        for (std::size_t g = 0; g < groups; ++g) {
            const std::size_t dst = r * groups + g, src = in.axis == 0 ? g * n + r : r * groups + g;
            if (out.scales_f16.empty())
                out.scales[dst] = in.scales[src];
            else
                out.scales_f16[dst] = in.scales_f16[src];
            if (out.format == format_id::u4)
                out.zero_points[dst] = static_cast<std::uint8_t>(
                    (in.zero_points.empty() ? 0 : get_nibble(in.zero_points.data(), src)) ^ shift);
        }
    }
    return {};
}

}  // namespace ref
}  // namespace lowbit

#endif  // LOWBIT_CORE_GEMM_INT4_HPP
