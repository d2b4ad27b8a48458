// lowbit/core/fake_quantize.hpp: fake-quantize forward and its straight-through backward,
// as lowbit::ref kernels (the spec for the SIMD kernels and for QAT).
//
// Forward (same as torch.fake_quantize_per_tensor_affine / _per_channel_affine):
//     y = float(clamp(zero_point + round(x / scale), qmin, qmax) - zero_point) * scale
// i.e. dequantize(quantize(x)) exactly, with x / scale computed as the profile says.
// Backward (straight-through estimator with torch's clip mask):
//     mask = qmin <= zero_point + round(x / scale) <= qmax   (closed, on the unclamped value)
//     dx = dy * (mask ? 1 : 0)          (so a NaN dy stays NaN, as in torch)
// Non-finite x: y is as quantize.hpp defines (NaN -> 0, +-Inf -> the range ends), mask 0.
#ifndef LOWBIT_CORE_FAKE_QUANTIZE_HPP
#define LOWBIT_CORE_FAKE_QUANTIZE_HPP

#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "quantize.hpp"

namespace lowbit {
namespace ref {

namespace detail_fq {
// One loop for every variant: forward value, mask, and gradient outputs are optional.
// The straight-through gradient of one element: dy itself (every bit, a signalling NaN
// included) where the mask is 1, dy * 0.0f (+-0, or NaN for a NaN / Inf dy) where it is 0.
// A select, not dy * 1.0f: compilers may fold that multiply to dy at -O2 but not at -O0,
// which changes a signalling NaN's bits with the optimisation level.
constexpr float pass_gradient(bool m, float dy) noexcept { return m ? dy : dy * 0.0f; }

template <class Scheme, class ParamOf>
constexpr void run(const Scheme& s, ParamOf param_of, span<const float> x, span<float> y, span<std::uint8_t> mask,
                   span<const float> dy, span<float> dx) noexcept {
    for (std::size_t k = 0; k < x.size(); ++k) {
        const element_quantizer e = element_quantizer::make(s, param_of(k));
        const float xk = x[k];  // read before y[k] is written: y may alias x
        if (!y.empty()) y[k] = e.dequantize(e.quantize(xk, k));
        if (!mask.empty() || !dx.empty()) {
            const bool m = e.in_range(xk, k);
            if (!mask.empty()) mask[k] = m ? 1 : 0;
            if (!dx.empty()) dx[k] = pass_gradient(m, dy[k]);
        }
    }
}

template <class Scheme>
constexpr status check_sizes(span<const float> x, span<float> y, span<std::uint8_t> mask) {
    LOWBIT_DETAIL_CHECK(y.size() == x.size(), errc::size_mismatch, "y.size()", y.size(), "must equal x.size()");
    LOWBIT_DETAIL_CHECK(mask.empty() || mask.size() == x.size(), errc::size_mismatch, "mask.size()", mask.size(),
                        "must be 0 (no mask) or x.size()");
    return {};
}
template <class Scheme>
constexpr status check_grad_sizes(span<const float> x, span<const float> dy, span<float> dx) {
    LOWBIT_DETAIL_CHECK(dy.size() == x.size(), errc::size_mismatch, "dy.size()", dy.size(), "must equal x.size()");
    LOWBIT_DETAIL_CHECK(dx.size() == x.size(), errc::size_mismatch, "dx.size()", dx.size(), "must equal x.size()");
    return {};
}
}  // namespace detail_fq

/// Per-tensor fake-quantize forward: y = dequantize(quantize(x)). If `mask` is non-empty
/// (x.size() bytes) it also receives the straight-through mask (1/0), so the backward can
/// reuse it. y may alias x exactly (in place); other overlaps are not allowed.
/// Errors: invalid scheme/qparams; y.size() or mask.size() wrong.
template <class Scheme>
constexpr status fake_quantize(const Scheme& s, qparams qp, span<const float> x, span<float> y,
                               span<std::uint8_t> mask = {}) {
    LOWBIT_DETAIL_TRY(s.validate());
    LOWBIT_DETAIL_TRY(detail::check_per_tensor(s));
    LOWBIT_DETAIL_TRY(check_qparams(s, qp));
    LOWBIT_DETAIL_TRY(detail_fq::check_sizes<Scheme>(x, y, mask));
    detail_fq::run(s, [qp](std::size_t) { return qp; }, x, y, mask, {}, {});
    return {};
}

/// Per-channel / per-group fake-quantize forward over a tensor of `shp` (see layout.hpp).
template <class Scheme>
constexpr status fake_quantize(const Scheme& s, const shape& shp, qparams_view qp, span<const float> x, span<float> y,
                               span<std::uint8_t> mask = {}) {
    const result<quant_layout> l = detail::prepare(s, shp, qp);
    LOWBIT_DETAIL_TRY(l.status());
    LOWBIT_DETAIL_CHECK(x.size() == l->numel, errc::size_mismatch, "x.size()", x.size(), "must equal shape's numel");
    LOWBIT_DETAIL_TRY(detail_fq::check_sizes<Scheme>(x, y, mask));
    const quant_layout lay = *l;
    detail_fq::run(s, [&](std::size_t k) { return detail::param(s, qp, lay.param_index(k)); }, x, y, mask, {}, {});
    return {};
}

/// Per-tensor straight-through backward: dx = dy * mask(x). Same as the x gradient of
/// torch.fake_quantize_per_tensor_affine. dx may alias dy exactly.
template <class Scheme>
constexpr status fake_quantize_backward(const Scheme& s, qparams qp, span<const float> x, span<const float> dy,
                                        span<float> dx) {
    LOWBIT_DETAIL_TRY(s.validate());
    LOWBIT_DETAIL_TRY(detail::check_per_tensor(s));
    LOWBIT_DETAIL_TRY(check_qparams(s, qp));
    LOWBIT_DETAIL_TRY(detail_fq::check_grad_sizes<Scheme>(x, dy, dx));
    detail_fq::run(s, [qp](std::size_t) { return qp; }, x, {}, {}, dy, dx);
    return {};
}

/// Per-channel / per-group straight-through backward.
template <class Scheme>
constexpr status fake_quantize_backward(const Scheme& s, const shape& shp, qparams_view qp, span<const float> x,
                                        span<const float> dy, span<float> dx) {
    const result<quant_layout> l = detail::prepare(s, shp, qp);
    LOWBIT_DETAIL_TRY(l.status());
    LOWBIT_DETAIL_CHECK(x.size() == l->numel, errc::size_mismatch, "x.size()", x.size(), "must equal shape's numel");
    LOWBIT_DETAIL_TRY(detail_fq::check_grad_sizes<Scheme>(x, dy, dx));
    const quant_layout lay = *l;
    detail_fq::run(s, [&](std::size_t k) { return detail::param(s, qp, lay.param_index(k)); }, x, {}, {}, dy, dx);
    return {};
}

/// Straight-through backward from a mask saved by the forward: dx = mask ? dy : dy * 0.0f.
/// Errors: sizes differ.
inline status fake_quantize_backward_masked(span<const std::uint8_t> mask, span<const float> dy, span<float> dx) {
    LOWBIT_DETAIL_CHECK(dy.size() == mask.size(), errc::size_mismatch, "dy.size()", dy.size(), "must equal mask.size()");
    LOWBIT_DETAIL_CHECK(dx.size() == mask.size(), errc::size_mismatch, "dx.size()", dx.size(), "must equal mask.size()");
    for (std::size_t k = 0; k < mask.size(); ++k) dx[k] = detail_fq::pass_gradient(mask[k] != 0, dy[k]);
    return {};
}

}  // namespace ref
}  // namespace lowbit

#endif  // LOWBIT_CORE_FAKE_QUANTIZE_HPP
