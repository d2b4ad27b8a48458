// lowbit/core/gemm.hpp: the integer GEMM spec, as lowbit::ref kernels. Every GEMM / GEMV path
// in kernels/ (AVX2, AVX-512 VNNI, AVX-VNNI, AMX, NEON dot product) is bit-identical to these.
//
//   A: M x K, row-major, u8 or s8, leading dimension lda >= K, zero point za (per tensor)
//   B: the weights, s8, either k_by_n (B[k][n] at b[k * ldb + n], ldb >= N) or n_by_k
//      (B[k][n] at b[n * ldb + k], ldb >= K: torch.nn.Linear's weight [out, in]), zero points
//      zb: none (0), one (per tensor) or N (per output channel)
//   C: M x N, row-major, leading dimension ldc >= N
//
//   acc[m][n] = sum_k (A[m][k] - za) * (B[k][n] - zb[n])                        (exact)
//
// Zero-point algebra (how the kernels compute it): expanding the product,
//   acc = sum_k A*B  -  za * colsum_B[n]  -  zb[n] * rowsum_A[m]  +  K * za * zb[n]
// where colsum_B[n] = sum_k B[k][n] is computed once when the weights are packed and
// rowsum_A[m] once per row of A (only needed when zb != 0). The u8 x s8 trick: the x86 dot
// products (vpmaddubsw, vpdpbusd) multiply an UNSIGNED byte by a signed byte, so an s8 A is
// fed as u8 A' = A + 128 (flip the top bit) and the extra 128 * colsum_B[n] is subtracted:
// that is exactly the formula above with za' = za + 128. Worked number: K = 2, A = [-3, 5],
// B column = [7, -2], za = 0: sum A*B = -21 - 10 = -31; with A' = [125, 133]:
// 125*7 + 133*(-2) = 875 - 266 = 609, colsum = 5, 609 - 128*5 = -31.
//
// Accumulator safety. Every term is at most P = max|A - za| * max|B - zb| in magnitude (over
// the formats' ranges), so acc fits int32 for every input when K * P <= 2^31 - 1. The
// functions here check that bound (gemm_max_k) and refuse a larger K with errc::overflow
// naming "k". Under it, a kernel may add in wrapping 32-bit arithmetic in any order (the
// dot-product instructions wrap, and sum A*B alone can exceed int32 when the compensation
// terms are large): the result is exact modulo 2^32 and, since the true value fits, exact.
// For u8 x s8 with za = 128, zb = 0: P = 128 * 128, K <= 131071; the worst case over all zero
// points, u8 x s8: P = 255 * 255, K <= 33025.
//
// Outputs (the epilogue, applied per element to acc[m][n]; channel = n):
//   - int32: acc itself.
//   - requantize (requantize_params, core/requantize.hpp): TFLite fixed-point, either rounding;
//     multipliers / bias per tensor (1) or per output channel (N), s8 or u8 output scheme
//     (its quant range, custom ranges included), fused clamp.
//   - requantize_float_params: XNNPACK / ONNX Runtime fp32 requantization.
//   - dequantize (gemm_dequantize_params): y = fma(f32(acc), scale[n], bias[n]) in float (one
//     rounding after the conversion; without bias y = f32(acc) * scale[n]); scale = s_a * s_b.
// No heap, no exceptions; every function validates its arguments and writes nothing on error.
#ifndef LOWBIT_CORE_GEMM_HPP
#define LOWBIT_CORE_GEMM_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../config.hpp"
#include "fixed_point.hpp"
#include "format.hpp"
#include "quantize.hpp"
#include "requantize.hpp"
#include "span.hpp"
#include "status.hpp"

namespace lowbit {

/// The GEMM sizes: C (M x N) = A (M x K) * B (K x N).
struct gemm_dims {
    std::size_t m = 0, n = 0, k = 0;
};

/// How the weights B are stored.
enum class weight_layout : std::uint8_t {
    k_by_n,  ///< B[k][n] at b[k * ldb + n] (row-major K x N)
    n_by_k,  ///< B[k][n] at b[n * ldb + k] (row-major N x K: torch.nn.Linear's weight)
};

/// The activations A (M x K, row-major): u8 or s8 (TA), zero point za.
template <class TA>
struct gemm_a {
    static_assert(std::is_same<TA, std::uint8_t>::value || std::is_same<TA, std::int8_t>::value,
                  "A is u8 or s8");
    span<const TA> data;
    std::size_t ld = 0;  ///< elements between rows, >= K
    std::int32_t zero_point = 0;
};

/// The weights B (s8): layout, leading dimension, zero points (empty: 0; 1; or N).
struct gemm_b {
    span<const std::int8_t> data;
    std::size_t ld = 0;  ///< >= N for k_by_n, >= K for n_by_k
    weight_layout layout = weight_layout::n_by_k;
    span<const std::int32_t> zero_points;
    constexpr std::int32_t zero_point(std::size_t n) const noexcept {
        return zero_points.empty() ? 0 : zero_points.size() == 1 ? zero_points[0] : zero_points[n];
    }
    constexpr std::int8_t at(std::size_t k, std::size_t n) const noexcept {
        return layout == weight_layout::k_by_n ? data[k * ld + n] : data[n * ld + k];
    }
};

/// The f32 output: y = fma(f32(acc), scales[n], bias[n]), or f32(acc) * scales[n] without
/// bias; scales / bias have 1 (per tensor) or N entries (bias may be empty).
struct gemm_dequantize_params {
    span<const float> scales;
    span<const float> bias;
};

/// The largest K for which acc cannot overflow int32 for any A, B in their formats' ranges
/// with these zero points (file comment). TA is the type of A.
template <class TA>
constexpr std::size_t gemm_max_k(std::int32_t a_zero_point, span<const std::int32_t> b_zero_points) noexcept {
    constexpr std::int64_t a_lo = std::is_signed<TA>::value ? -128 : 0, a_hi = std::is_signed<TA>::value ? 127 : 255;
    const std::int64_t za = a_zero_point;
    const std::int64_t pa = (a_hi - za) > (za - a_lo) ? (a_hi - za) : (za - a_lo);
    std::int64_t pb = 128;  // zb = 0
    for (std::size_t i = 0; i < b_zero_points.size(); ++i) {
        const std::int64_t zb = b_zero_points[i];
        const std::int64_t m = (127 - zb) > (zb + 128) ? (127 - zb) : (zb + 128);
        if (m > pb) pb = m;
    }
    const std::int64_t p = pa * pb;
    return p == 0 ? static_cast<std::size_t>(-1) : static_cast<std::size_t>(((std::int64_t(1) << 31) - 1) / p);
}

namespace detail {

// Checks shared by every GEMM entry (reference and kernels): sizes, leading dimensions, zero
// points, the K bound. out_ld / out_size describe C (elements).
template <class TA>
constexpr status check_gemm(const gemm_dims& d, const gemm_a<TA>& a, const gemm_b& b, std::size_t out_ld,
                            std::size_t out_size) {
    constexpr std::int32_t a_lo = std::is_signed<TA>::value ? -128 : 0, a_hi = std::is_signed<TA>::value ? 127 : 255;
    LOWBIT_DETAIL_CHECK(a.zero_point >= a_lo && a.zero_point <= a_hi, errc::invalid_argument, "a.zero_point",
                        a.zero_point, "must be in A's format range");
    LOWBIT_DETAIL_CHECK(b.zero_points.size() <= 1 || b.zero_points.size() == d.n, errc::size_mismatch,
                        "b.zero_points.size()", b.zero_points.size(), "must be 0, 1 or N");
    for (std::size_t i = 0; i < b.zero_points.size(); ++i)
        LOWBIT_DETAIL_CHECK(b.zero_points[i] >= -128 && b.zero_points[i] <= 127, errc::invalid_argument,
                            "b.zero_points[i]", b.zero_points[i], "must be in [-128, 127]");
    if (d.m == 0 || d.n == 0) return {};
    LOWBIT_DETAIL_CHECK(a.ld >= d.k, errc::invalid_argument, "a.ld", a.ld, "must be >= K");
    LOWBIT_DETAIL_CHECK(out_ld >= d.n, errc::invalid_argument, "ldc", out_ld, "must be >= N");
    // sizes: (rows - 1) * ld + cols, overflow-checked
    LOWBIT_DETAIL_CHECK(d.m - 1 <= (static_cast<std::size_t>(-1) - d.k) / (a.ld == 0 ? 1 : a.ld), errc::overflow,
                        "a.ld", a.ld, "(M - 1) * lda + K must fit size_t");
    LOWBIT_DETAIL_CHECK(a.data.size() >= (d.m - 1) * a.ld + d.k, errc::size_mismatch, "a.data.size()",
                        a.data.size(), "must be >= (M - 1) * lda + K");
    LOWBIT_DETAIL_CHECK(d.m - 1 <= (static_cast<std::size_t>(-1) - d.n) / out_ld, errc::overflow, "ldc", out_ld,
                        "(M - 1) * ldc + N must fit size_t");
    LOWBIT_DETAIL_CHECK(out_size >= (d.m - 1) * out_ld + d.n, errc::size_mismatch, "c.size()", out_size,
                        "must be >= (M - 1) * ldc + N");
    if (d.k != 0) {
        const bool kn = b.layout == weight_layout::k_by_n;
        const std::size_t rows = kn ? d.k : d.n, cols = kn ? d.n : d.k;
        LOWBIT_DETAIL_CHECK(b.ld >= cols, errc::invalid_argument, "b.ld", b.ld,
                            kn ? "must be >= N (k_by_n)" : "must be >= K (n_by_k)");
        LOWBIT_DETAIL_CHECK(rows - 1 <= (static_cast<std::size_t>(-1) - cols) / b.ld, errc::overflow, "b.ld", b.ld,
                            "(rows - 1) * ldb + cols must fit size_t");
        LOWBIT_DETAIL_CHECK(b.data.size() >= (rows - 1) * b.ld + cols, errc::size_mismatch, "b.data.size()",
                            b.data.size(), "must be >= (rows - 1) * ldb + cols");
    }
    LOWBIT_DETAIL_CHECK(d.k <= gemm_max_k<TA>(a.zero_point, b.zero_points), errc::overflow, "k", d.k,
                        "must be <= gemm_max_k(zero points): larger K can overflow the int32 accumulator");
    return {};
}

// Per-channel parameter spans: 1 or N entries (optional: also 0).
constexpr status check_channel_count(const char* what, std::size_t count, std::size_t n, bool optional) {
    LOWBIT_DETAIL_CHECK((optional && count == 0) || count == 1 || count == n, errc::size_mismatch, what, count,
                        optional ? "must be 0, 1 or N" : "must be 1 or N");
    return {};
}

template <class T>
constexpr const T& channel(span<const T> v, std::size_t n) noexcept {
    return v.size() == 1 ? v[0] : v[n];
}

// Checks of the requantizing outputs (fixed-point or float multipliers).
template <class Scheme, class Params>
constexpr status check_gemm_requantize(const Scheme& s, const Params& p, std::size_t n) {
    static_assert(Scheme::format::bits == 8, "GEMM requantizes to 8-bit outputs (s8 / u8)");
    LOWBIT_DETAIL_TRY(s.validate());
    LOWBIT_DETAIL_TRY(check_channel_count("multipliers.size()", p.multipliers.size(), n, false));
    LOWBIT_DETAIL_TRY(check_channel_count("bias.size()", p.bias.size(), n, true));
    return check_requantize_output(s, p);
}

// The exact accumulator of one output, in wrapping 32-bit arithmetic (see the file comment:
// exact under gemm_max_k).
template <class TA>
constexpr std::int32_t gemm_acc(const gemm_a<TA>& a, const gemm_b& b, std::size_t k_count, std::size_t m,
                                std::size_t n) noexcept {
    const std::int32_t za = a.zero_point, zb = b.zero_point(n);
    std::uint32_t acc = 0;
    for (std::size_t k = 0; k < k_count; ++k) {
        const std::int32_t av = std::int32_t(a.data[m * a.ld + k]) - za;
        const std::int32_t bv = std::int32_t(b.at(k, n)) - zb;
        acc += static_cast<std::uint32_t>(av * bv);  // |av * bv| <= 65025
    }
    return static_cast<std::int32_t>(acc);  // two's complement (C++20 defined, every C++17 compiler)
}

// One requantized output (the same formulas as ref::requantize in core/requantize.hpp).
constexpr std::int32_t requantize_value(std::int32_t acc, std::int32_t bias, quantized_multiplier m,
                                        const requantize_params& p, std::int64_t lo, std::int64_t hi) noexcept {
    const std::int64_t v =
        std::int64_t(multiply_by_quantized_multiplier(saturate_s32(std::int64_t(acc) + bias), m, p.rounding)) +
        p.zero_point;
    return static_cast<std::int32_t>(v < lo ? lo : v > hi ? hi : v);
}
constexpr std::int32_t requantize_value(std::int32_t acc, std::int32_t bias, float m, const requantize_float_params& p,
                                        double lo, double hi) noexcept {
    const double u = requantize_float_unclamped(saturate_s32(std::int64_t(acc) + bias), m, p.zero_point);
    return static_cast<std::int32_t>(u < lo ? lo : u > hi ? hi : u);
}

}  // namespace detail

namespace ref {

/// C = acc (int32), see the file comment. Errors: a.zero_point outside A's range; B zero
/// points not in [-128, 127] or not 0 / 1 / N of them; a leading dimension too small; a
/// buffer too small for its (rows - 1) * ld + cols; K > gemm_max_k (errc::overflow, "k").
template <class TA>
status gemm(const gemm_dims& d, const gemm_a<TA>& a, const gemm_b& b, span<std::int32_t> c, std::size_t ldc) {
    LOWBIT_DETAIL_TRY(detail::check_gemm(d, a, b, ldc, c.size()));
    for (std::size_t m = 0; m < d.m; ++m)
        for (std::size_t n = 0; n < d.n; ++n) c[m * ldc + n] = detail::gemm_acc(a, b, d.k, m, n);
    return {};
}

/// C = requantize(acc) into the 8-bit output scheme `s` (s8 / u8, its quant range):
/// out = clamp(zp + multiply_by_quantized_multiplier(sat32(acc + bias[n]), M[n]), lo, hi),
/// exactly ref::requantize over the int32 result with channel n. Errors: as the int32
/// gemm; those of ref::requantize; multipliers not 1 or N, bias not 0, 1 or N.
template <class TA, class Scheme>
status gemm(const gemm_dims& d, const gemm_a<TA>& a, const gemm_b& b, const Scheme& s, const requantize_params& p,
            span<typename Scheme::storage_type> c, std::size_t ldc) {
    LOWBIT_DETAIL_TRY(detail::check_gemm(d, a, b, ldc, c.size()));
    LOWBIT_DETAIL_TRY(detail::check_gemm_requantize(s, p, d.n));
    LOWBIT_DETAIL_TRY(detail::check_quantized_multipliers(p.multipliers));
    const std::int64_t lo = detail::clamp_bound(s, p.clamp_min), hi = detail::clamp_bound(s, p.clamp_max);
    for (std::size_t m = 0; m < d.m; ++m)
        for (std::size_t n = 0; n < d.n; ++n) {
            const std::int32_t bias = p.bias.empty() ? 0 : detail::channel(p.bias, n);
            const std::int32_t v =
                detail::requantize_value(detail::gemm_acc(a, b, d.k, m, n), bias, detail::channel(p.multipliers, n), p, lo, hi);
            c[m * ldc + n] = static_cast<typename Scheme::storage_type>(v);
        }
    return {};
}

/// C = float-multiplier requantize(acc) (requantize_float_params, core/requantize.hpp).
template <class TA, class Scheme>
status gemm(const gemm_dims& d, const gemm_a<TA>& a, const gemm_b& b, const Scheme& s,
            const requantize_float_params& p, span<typename Scheme::storage_type> c, std::size_t ldc) {
    LOWBIT_DETAIL_TRY(detail::check_gemm(d, a, b, ldc, c.size()));
    LOWBIT_DETAIL_TRY(detail::check_gemm_requantize(s, p, d.n));
    LOWBIT_DETAIL_TRY(detail::check_float_multipliers(p.multipliers));
    const double lo = detail::clamp_bound(s, p.clamp_min), hi = detail::clamp_bound(s, p.clamp_max);
    for (std::size_t m = 0; m < d.m; ++m)
        for (std::size_t n = 0; n < d.n; ++n) {
            const std::int32_t bias = p.bias.empty() ? 0 : detail::channel(p.bias, n);
            const std::int32_t v =
                detail::requantize_value(detail::gemm_acc(a, b, d.k, m, n), bias, detail::channel(p.multipliers, n), p, lo, hi);
            c[m * ldc + n] = static_cast<typename Scheme::storage_type>(v);
        }
    return {};
}

/// C = dequantize(acc) in f32: fma(f32(acc), scales[n], bias[n]) (f32(acc) * scales[n]
/// without bias). Errors: as the int32 gemm; scales not 1 or N entries or not finite; bias
/// not 0, 1 or N entries or not finite.
template <class TA>
status gemm(const gemm_dims& d, const gemm_a<TA>& a, const gemm_b& b, const gemm_dequantize_params& p,
            span<float> c, std::size_t ldc) {
    LOWBIT_DETAIL_TRY(detail::check_gemm(d, a, b, ldc, c.size()));
    LOWBIT_DETAIL_TRY(detail::check_channel_count("scales.size()", p.scales.size(), d.n, false));
    LOWBIT_DETAIL_TRY(detail::check_channel_count("bias.size()", p.bias.size(), d.n, true));
    for (std::size_t i = 0; i < p.scales.size(); ++i)
        LOWBIT_DETAIL_CHECK(detail::is_finite(p.scales[i]), errc::invalid_argument, "scales[i]", p.scales[i], "must be finite");
    for (std::size_t i = 0; i < p.bias.size(); ++i)
        LOWBIT_DETAIL_CHECK(detail::is_finite(p.bias[i]), errc::invalid_argument, "bias[i]", p.bias[i], "must be finite");
    for (std::size_t m = 0; m < d.m; ++m)
        for (std::size_t n = 0; n < d.n; ++n) {
            const float acc = static_cast<float>(detail::gemm_acc(a, b, d.k, m, n));
            const float sc = detail::channel(p.scales, n);
            c[m * ldc + n] = p.bias.empty() ? acc * sc : LOWBIT_FMAF(acc, sc, detail::channel(p.bias, n));
        }
    return {};
}

}  // namespace ref
}  // namespace lowbit

#endif  // LOWBIT_CORE_GEMM_HPP
