// lowbit/core/quantize.hpp: quantize and dequantize, element by element (the spec every
// SIMD kernel is tested against) and as lowbit::ref kernels over whole tensors.
//
// profile torch / torch_fused (same as torch.quantize_per_tensor / _per_channel):
//     inv = 1.0f / scale;  q = clamp(zero_point + round(x * inv), qmin, qmax)
//   x is multiplied by the float reciprocal, never divided (with scale 0.1 dozens of values
//   differ from x / scale), and the zero-point is added after rounding.
// profile tflite (same as TFLite's reference Quantize):
//     q = clamp(zero_point + round(x / scale), qmin, qmax), rounding half away from zero.
// dequantize (torch and TFLite): x = float(q - zero_point) * scale, one float rounding.
//
// Non-finite input (lowbit's definition; torch 1.13 lands every one on quant_min through an
// undefined float->int conversion): +Inf and values above the range saturate to qmax,
// -Inf and values below to qmin, NaN quantizes to the zero-point (it dequantizes to 0).
#ifndef LOWBIT_CORE_QUANTIZE_HPP
#define LOWBIT_CORE_QUANTIZE_HPP

#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "format.hpp"
#include "int4.hpp"
#include "layout.hpp"
#include "qparams.hpp"
#include "rounding.hpp"
#include "scheme.hpp"
#include "span.hpp"
#include "status.hpp"

namespace lowbit {

/// Everything needed to quantize one element, precomputed once per (scale, zero-point).
struct element_quantizer {
    float scale = 1.0f;
    float inv_scale = 1.0f;  ///< 1.0f / scale, rounded to float as torch does
    std::int32_t zero_point = 0;
    std::int32_t qmin = 0, qmax = 0;
    bool divide = false;  ///< tflite: x / scale instead of x * inv_scale
    lowbit::rounding rounding = lowbit::rounding::half_even;
    std::uint64_t seed = 0;

    template <class Scheme>
    static constexpr element_quantizer make(const Scheme& s, qparams qp) noexcept {
        element_quantizer e;
        e.scale = qp.scale;
        e.inv_scale = 1.0f / qp.scale;
        e.zero_point = qp.zero_point;
        e.qmin = s.qmin();
        e.qmax = s.qmax();
        e.divide = s.profile() == profile::tflite;
        e.rounding = s.rounding();
        e.seed = s.seed();
        return e;
    }

    /// round(x / scale) before the zero-point is added (NaN/Inf pass through).
    constexpr float rounded(float x, std::size_t index) const noexcept {
        const float v = divide ? x / scale : x * inv_scale;
        return lowbit::round(v, rounding, seed, index);
    }
    /// zero_point + rounded, exact in double (the unclamped quantized value).
    constexpr double unclamped(float x, std::size_t index) const noexcept {
        return static_cast<double>(rounded(x, index)) + zero_point;
    }
    /// The quantized value of element `index` (index matters only for stochastic rounding).
    constexpr std::int32_t quantize(float x, std::size_t index = 0) const noexcept {
        if (detail::is_nan(x)) return zero_point;
        const double v = unclamped(x, index);
        return v <= qmin ? qmin : v >= qmax ? qmax : static_cast<std::int32_t>(v);
    }
    /// float(q - zero_point) * scale.
    constexpr float dequantize(std::int32_t q) const noexcept {
        return static_cast<float>(std::int64_t(q) - zero_point) * scale;
    }
    /// Straight-through mask: qmin <= zero_point + round(x / scale) <= qmax (closed, on the
    /// unclamped value, as torch); false for NaN and +-Inf.
    constexpr bool in_range(float x, std::size_t index = 0) const noexcept {
        if (!detail::is_finite(x)) return false;
        const double v = unclamped(x, index);
        return v >= qmin && v <= qmax;
    }
};

namespace detail {

// Writes value v of element k into a buffer of Format's storage.
template <class Format>
constexpr void store(typename Format::storage_type* out, std::size_t k, std::int32_t v) noexcept {
    if constexpr (Format::is_packed) {
        std::uint8_t& byte = out[k / 2];
        byte = k % 2 == 0 ? static_cast<std::uint8_t>(v & 0x0F)  // also clears the padding nibble
                          : static_cast<std::uint8_t>((byte & 0x0F) | ((v & 0x0F) << 4));
    } else {
        out[k] = static_cast<typename Format::storage_type>(v);
    }
}

// Reads element k from a buffer of Format's storage.
template <class Format>
constexpr std::int32_t load(const typename Format::storage_type* in, std::size_t k) noexcept {
    if constexpr (Format::is_packed) {
        const std::uint8_t n = get_nibble(in, k);
        return Format::is_signed ? sign_extend_s4(n) : n;
    } else {
        return static_cast<std::int32_t>(in[k]);
    }
}

// Parameter i of a view; symmetric schemes may leave zero_points empty.
template <class Scheme>
constexpr qparams param(const Scheme& s, const qparams_view& qp, std::size_t i) noexcept {
    return {qp.scales[i], qp.zero_points.empty() ? s.symmetric_zero_point() : qp.zero_points[i]};
}

// Validates every (scale, zero-point) of a per-channel / per-group view.
template <class Scheme>
constexpr status check_qparams_view(const Scheme& s, const quant_layout& l, const qparams_view& qp) {
    LOWBIT_DETAIL_CHECK(qp.scales.size() == l.param_count, errc::size_mismatch, "scales.size()", qp.scales.size(),
                        "must equal the number of channels / groups of the shape");
    const bool implicit_zp = Scheme::sym != symmetry::affine && qp.zero_points.empty();
    LOWBIT_DETAIL_CHECK(implicit_zp || qp.zero_points.size() == l.param_count, errc::size_mismatch,
                        "zero_points.size()", qp.zero_points.size(),
                        "must equal scales.size() (or be empty for a symmetric scheme)");
    for (std::size_t i = 0; i < l.param_count; ++i)
        LOWBIT_DETAIL_TRY(check_qparams(s, param(s, qp, i)));
    return {};
}

// Shared checks of the tensor-shaped ref kernels: scheme, layout, qparams.
template <class Scheme>
constexpr result<quant_layout> prepare(const Scheme& s, const shape& shp, const qparams_view& qp) {
    LOWBIT_DETAIL_TRY(s.validate());
    const result<quant_layout> l = make_layout(s, shp);
    LOWBIT_DETAIL_TRY(l.status());
    LOWBIT_DETAIL_TRY(check_qparams_view(s, *l, qp));
    return l;
}

// prepare() plus the buffer checks of quantize / dequantize: x holds the shape's elements,
// q their Format storage.
template <class Scheme>
constexpr result<quant_layout> prepare(const Scheme& s, const shape& shp, const qparams_view& qp, std::size_t x_size,
                                       std::size_t q_size) {
    const result<quant_layout> l = prepare(s, shp, qp);
    LOWBIT_DETAIL_TRY(l.status());
    LOWBIT_DETAIL_CHECK(x_size == l->numel, errc::size_mismatch, "x.size()", x_size, "must equal shape's numel");
    LOWBIT_DETAIL_CHECK(q_size == Scheme::format::storage_size(x_size), errc::size_mismatch, "q.size()", q_size,
                        "must be Format::storage_size(x.size())");
    return l;
}

}  // namespace detail

namespace ref {

/// Per-tensor quantize: q[k] = quantize(x[k]) (see the file comment). q holds
/// Format::storage_size(x.size()) elements (4-bit formats packed; the padding nibble of an
/// odd count is 0). Errors: invalid scheme or qparams (check_qparams); a per-channel or
/// per-group scheme (use the shape overload); q.size() wrong;
/// rounding::stochastic uses element index k. x and q must not overlap.
template <class Scheme>
constexpr status quantize(const Scheme& s, qparams qp, span<const float> x, span<typename Scheme::storage_type> q) {
    LOWBIT_DETAIL_TRY(s.validate());
    LOWBIT_DETAIL_TRY(detail::check_per_tensor(s));
    LOWBIT_DETAIL_TRY(check_qparams(s, qp));
    using F = typename Scheme::format;
    LOWBIT_DETAIL_CHECK(q.size() == F::storage_size(x.size()), errc::size_mismatch, "q.size()", q.size(),
                        "must be Format::storage_size(x.size())");
    const element_quantizer e = element_quantizer::make(s, qp);
    for (std::size_t k = 0; k < x.size(); ++k) detail::store<F>(q.data(), k, e.quantize(x[k], k));
    return {};
}

/// Quantize a tensor of `shp` with one (scale, zero-point) per channel or group as the
/// scheme's granularity says (layout.hpp); per_tensor takes one-entry spans. For symmetric
/// schemes zero_points may be empty. Errors: as above, plus layout errors and parameter
/// counts that do not match the shape.
template <class Scheme>
constexpr status quantize(const Scheme& s, const shape& shp, qparams_view qp, span<const float> x,
                          span<typename Scheme::storage_type> q) {
    const result<quant_layout> l = detail::prepare(s, shp, qp, x.size(), q.size());
    LOWBIT_DETAIL_TRY(l.status());
    using F = typename Scheme::format;
    for (std::size_t k = 0; k < x.size(); ++k) {
        const element_quantizer e = element_quantizer::make(s, detail::param(s, qp, l->param_index(k)));
        detail::store<F>(q.data(), k, e.quantize(x[k], k));
    }
    return {};
}

/// Per-tensor dequantize: x[k] = float(q[k] - zero_point) * scale. x.size() is the element
/// count; q must hold Format::storage_size(x.size()). Errors: invalid scheme/qparams, sizes.
template <class Scheme>
constexpr status dequantize(const Scheme& s, qparams qp, span<const typename Scheme::storage_type> q, span<float> x) {
    LOWBIT_DETAIL_TRY(s.validate());
    LOWBIT_DETAIL_TRY(detail::check_per_tensor(s));
    LOWBIT_DETAIL_TRY(check_qparams(s, qp));
    using F = typename Scheme::format;
    LOWBIT_DETAIL_CHECK(q.size() == F::storage_size(x.size()), errc::size_mismatch, "q.size()", q.size(),
                        "must be Format::storage_size(x.size())");
    const element_quantizer e = element_quantizer::make(s, qp);
    for (std::size_t k = 0; k < x.size(); ++k) x[k] = e.dequantize(detail::load<F>(q.data(), k));
    return {};
}

/// Per-channel / per-group dequantize; same contract as quantize with a shape.
template <class Scheme>
constexpr status dequantize(const Scheme& s, const shape& shp, qparams_view qp,
                            span<const typename Scheme::storage_type> q, span<float> x) {
    const result<quant_layout> l = detail::prepare(s, shp, qp, x.size(), q.size());
    LOWBIT_DETAIL_TRY(l.status());
    using F = typename Scheme::format;
    for (std::size_t k = 0; k < x.size(); ++k) {
        const element_quantizer e = element_quantizer::make(s, detail::param(s, qp, l->param_index(k)));
        x[k] = e.dequantize(detail::load<F>(q.data(), k));
    }
    return {};
}

}  // namespace ref
}  // namespace lowbit

#endif  // LOWBIT_CORE_QUANTIZE_HPP
