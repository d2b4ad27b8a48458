// lowbit/core/qparams.hpp: quantization parameters (scale, zero-point), their checks, and
// choose_qparams, which turns an observed [min, max] into them.
//
// choose_qparams reproduces, bit for bit:
//   profile::torch       torch.ao.quantization observers' calculate_qparams (float32);
//   profile::torch_fused torch.fused_moving_avg_obs_fake_quant, i.e. FBGEMM's
//                        ChooseQuantizationParams (double, 0.1 fallback, 6.1e-5 floor,
//                        zero-point from the end with the smaller error);
//   profile::tflite      TFLite's GetAsymmetricQuantizationParams (float, nudged zero-point
//                        rounded half away) for affine schemes; symmetric schemes use
//                        max(|min|, |max|) / ((qmax - qmin) / 2), which for [-127, 127] is
//                        TFLite's symmetric weight scale max|w| / 127.
#ifndef LOWBIT_CORE_QPARAMS_HPP
#define LOWBIT_CORE_QPARAMS_HPP

#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "rounding.hpp"
#include "scheme.hpp"
#include "span.hpp"
#include "status.hpp"

namespace lowbit {

/// One scale and zero-point. Default {1.0f, 0} is torch's answer for an empty observer and
/// the fallback value of a failed result<qparams>.
struct qparams {
    float scale = 1.0f;
    std::int32_t zero_point = 0;

    friend constexpr bool operator==(const qparams& a, const qparams& b) noexcept {
        return a.scale == b.scale && a.zero_point == b.zero_point;
    }
    friend constexpr bool operator!=(const qparams& a, const qparams& b) noexcept { return !(a == b); }
};

/// Per-channel or per-group parameters: `scales[i]`, `zero_points[i]`, both of equal size.
/// For a symmetric scheme, zero_points may be empty (the scheme's zero-point is used).
struct qparams_view {
    span<const float> scales;
    span<const std::int32_t> zero_points;
};

/// Checks that `qp` can be used with scheme `s`: scale finite, > 0, with a finite float
/// reciprocal, and zero_point in [s.qmin(), s.qmax()] (torch's fake_quantize check). Every
/// normal scale passes; denormal scales pass only above 2^-128 (1 / scale < 2^128, e.g.
/// 2^-127), where quantize and dequantize stay exact; 2^-128 and below are refused.
template <class Scheme>
constexpr status check_qparams(const Scheme& s, qparams qp) {
    LOWBIT_DETAIL_CHECK(qp.scale > 0.0f && detail::is_finite(qp.scale) && detail::is_finite(1.0f / qp.scale),
                        errc::invalid_argument, "scale", qp.scale,
                        "must be finite and > 0 with a finite reciprocal (not denormal)");
    LOWBIT_DETAIL_CHECK(qp.zero_point >= s.qmin() && qp.zero_point <= s.qmax(), errc::invalid_argument,
                        "zero_point", qp.zero_point, "must be in [quant_min, quant_max]");
    return {};
}

namespace detail {
/// The single-qparams overloads apply one (scale, zero-point) to every element, so they
/// refuse a per-channel / per-group scheme instead of silently using it per tensor.
template <class Scheme>
constexpr status check_per_tensor(const Scheme& s) {
    LOWBIT_DETAIL_CHECK(s.granularity() == granularity::per_tensor, errc::invalid_argument, "granularity",
                        static_cast<int>(s.granularity()),
                        "a per-channel / per-group scheme needs the overload taking a shape and a qparams_view");
    return {};
}
}  // namespace detail

namespace detail {

// torch.ao.quantization UniformQuantizationObserverBase._calculate_qparams, float32.
template <class Scheme>
constexpr qparams choose_qparams_torch(const Scheme& s, float min, float max) noexcept {
    const std::int32_t qmin = s.qmin(), qmax = s.qmax();
    const float min_neg = min < 0.0f ? min : 0.0f;
    const float max_pos = max > 0.0f ? max : 0.0f;
    qparams qp;
    if (Scheme::sym != symmetry::affine) {
        const float amax = -min_neg > max_pos ? -min_neg : max_pos;
        const float divisor = static_cast<float>(qmax - qmin) / 2.0f;  // exact: half-integers
        const float scale = amax / divisor;
        qp.scale = scale > s.eps() ? scale : s.eps();
        qp.zero_point = s.symmetric_zero_point();
    } else {
        const float scale = (max_pos - min_neg) / static_cast<float>(qmax - qmin);
        qp.scale = scale > s.eps() ? scale : s.eps();
        const float r = round_half_even(min_neg / qp.scale);  // |r| <= qmax - qmin
        std::int64_t zp = std::int64_t(qmin) - static_cast<std::int64_t>(r);
        zp = zp < qmin ? qmin : zp > qmax ? qmax : zp;
        qp.zero_point = static_cast<std::int32_t>(zp);
    }
    return qp;
}

// FBGEMM / ATen QuantUtils ChooseQuantizationParams as called by
// fused_moving_avg_obs_fake_quant (preserve_sparsity = symmetric, reduce_range applied by
// the scheme's qmin()/qmax()).
template <class Scheme>
constexpr qparams choose_qparams_fbgemm(const Scheme& s, float min, float max) noexcept {
    const std::int32_t qmin = s.qmin(), qmax = s.qmax();
    const bool preserve_sparsity = Scheme::sym != symmetry::affine;
    if (min < 0.0f && max > 0.0f && preserve_sparsity) {
        const int sym_qmin = -((qmax - qmin) / 2 + 1);
        const int sym_qmax = (qmax - qmin) / 2;
        // FBGEMM divides in float: `fabs(min / symmetric_qmin)` is float / int. Dividing in
        // double gives a different scale for e.g. range -127..127, min -37.5156479,
        // max 63.6298561 (torch 0x1.018892p-1, double division 0x1.01889p-1); golden data
        // fused_obs_fake_quant.txt. Only max_scale itself is held in double.
        const double a = detail::abs(static_cast<double>(min / static_cast<float>(sym_qmin)));
        const double b = detail::abs(static_cast<double>(max / static_cast<float>(sym_qmax)));
        const double max_scale = a > b ? a : b;
        min = static_cast<float>(max_scale * sym_qmin);
        max = static_cast<float>(max_scale * sym_qmax);
    }
    min = min < 0.0f ? min : 0.0f;
    max = max > 0.0f ? max : 0.0f;
    double scale = (static_cast<double>(max) - min) / (qmax - qmin);
    if (static_cast<float>(scale) == 0.0f || !detail::is_finite(1.0f / static_cast<float>(scale))) scale = 0.1;
    constexpr float small_scale = 6.1e-5f;
    if (scale < small_scale) {
        const float org_scale = static_cast<float>(scale);
        scale = small_scale;
        if (min == 0.0f) {
            max = small_scale * static_cast<float>(qmax - qmin);
        } else if (max == 0.0f) {
            min = -small_scale * static_cast<float>(qmax - qmin);
        } else {
            const float amplifier = small_scale / org_scale;
            min *= amplifier;
            max *= amplifier;
        }
    }
    const double zp_from_min = qmin - min / scale;
    const double zp_from_max = qmax - max / scale;
    const double zp_from_min_error = detail::abs(double(qmin)) - detail::abs(min / scale);
    const double zp_from_max_error = detail::abs(double(qmax)) - detail::abs(max / scale);
    double initial = zp_from_min_error < zp_from_max_error ? zp_from_min : zp_from_max;
    if (min < 0.0f && max > 0.0f && preserve_sparsity) initial = static_cast<double>(qmin + qmax) / 2;
    std::int32_t zp = 0;
    if (initial < qmin)
        zp = qmin;
    else if (initial > qmax)
        zp = qmax;
    else
        zp = static_cast<std::int32_t>(round_half_even(initial));
    return {static_cast<float>(scale), zp};
}

// TFLite tools/optimize GetAsymmetricQuantizationParams (float arithmetic, std::round).
template <class Scheme>
constexpr qparams choose_qparams_tflite(const Scheme& s, float min, float max) noexcept {
    const float qmin = static_cast<float>(s.qmin()), qmax = static_cast<float>(s.qmax());
    min = min < 0.0f ? min : 0.0f;
    max = max > 0.0f ? max : 0.0f;
    if (min == max) return {s.eps(), 0};  // TFLite: scale 0, zp 0; lowbit keeps the scale valid (eps)
    float scale = (max - min) / (qmax - qmin);
    // A range so small that the scale underflows to 0 or to a denormal without a finite
    // reciprocal (below ~255 * 2^-128) would make min / scale 0 / 0 = NaN and the zero point
    // an undefined NaN -> int conversion: use eps there too, as for a point range.
    if (!is_finite(1.0f / scale)) scale = s.eps();
    const float zp_from_min = qmin - min / scale;
    const float zp_from_max = qmax - max / scale;
    const float err_min = detail::abs(qmin) + detail::abs(min / scale);
    const float err_max = detail::abs(qmax) + detail::abs(max / scale);
    const float zpd = err_min < err_max ? zp_from_min : zp_from_max;
    std::int32_t zp = 0;
    if (zpd < qmin)
        zp = s.qmin();
    else if (zpd > qmax)
        zp = s.qmax();
    else
        zp = static_cast<std::int32_t>(round_half_away(zpd));
    return {scale, zp};
}

}  // namespace detail

/// Quantization parameters for the observed range [min, max] under scheme `s`, by the
/// scheme's profile (see the file comment).
///
/// Edges (all profiles): min = +Inf and max = -Inf together (an observer that saw nothing)
/// give {1.0, 0} as torch does. min == max is not special (all-zero data gives
/// {eps, qmin} for torch affine). tflite affine: a point range, or one so small that
/// (max - min) / (qmax - qmin) has no finite reciprocal, uses scale eps (TFLite itself
/// gives 0, or NaN zero points). A range whose width overflows float32 (affine, e.g.
/// [-FLT_MAX, FLT_MAX]) gives scale +Inf as torch does (golden data); check_qparams, and so
/// every kernel, refuses that scale. Errors: the scheme is invalid; min or max NaN or
/// otherwise non-finite; min > max.
template <class Scheme>
constexpr result<qparams> choose_qparams(const Scheme& s, float min, float max) {
    LOWBIT_DETAIL_TRY(s.validate());
    if (min == detail::inf_f && max == -detail::inf_f) return qparams{};
    LOWBIT_DETAIL_CHECK(detail::is_finite(min), errc::invalid_argument, "min", min, "must be finite");
    LOWBIT_DETAIL_CHECK(detail::is_finite(max), errc::invalid_argument, "max", max, "must be finite");
    LOWBIT_DETAIL_CHECK(min <= max, errc::invalid_argument, "min", min, "must be <= max");
    switch (s.profile()) {
        case profile::torch_fused: return detail::choose_qparams_fbgemm(s, min, max);
        case profile::tflite:
            return Scheme::sym == symmetry::affine ? detail::choose_qparams_tflite(s, min, max)
                                                   : detail::choose_qparams_torch(s, min, max);
        case profile::torch: break;
    }
    return detail::choose_qparams_torch(s, min, max);
}

/// Per-channel / per-group choose_qparams: entry i of `mins`/`maxs` gives entry i of
/// `scales`/`zero_points`. All four spans must have equal size. Nothing is written on error.
template <class Scheme>
constexpr status choose_qparams(const Scheme& s, span<const float> mins, span<const float> maxs,
                                span<float> scales, span<std::int32_t> zero_points) {
    LOWBIT_DETAIL_TRY(s.validate());
    LOWBIT_DETAIL_CHECK(maxs.size() == mins.size(), errc::size_mismatch, "maxs.size()", maxs.size(),
                        "must equal mins.size()");
    LOWBIT_DETAIL_CHECK(scales.size() == mins.size(), errc::size_mismatch, "scales.size()", scales.size(),
                        "must equal mins.size()");
    LOWBIT_DETAIL_CHECK(zero_points.size() == mins.size(), errc::size_mismatch, "zero_points.size()",
                        zero_points.size(), "must equal mins.size()");
    for (std::size_t i = 0; i < mins.size(); ++i) {  // check everything before writing anything
        const bool empty = mins[i] == detail::inf_f && maxs[i] == -detail::inf_f;
        LOWBIT_DETAIL_CHECK(empty || (detail::is_finite(mins[i]) && detail::is_finite(maxs[i]) && mins[i] <= maxs[i]),
                            errc::invalid_argument, "mins[i]", mins[i], "must be finite and <= maxs[i]");
    }
    for (std::size_t i = 0; i < mins.size(); ++i) {
        const qparams qp = choose_qparams(s, mins[i], maxs[i]).value();
        scales[i] = qp.scale;
        zero_points[i] = qp.zero_point;
    }
    return {};
}

}  // namespace lowbit

#endif  // LOWBIT_CORE_QPARAMS_HPP
