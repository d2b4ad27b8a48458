// lowbit/core/requantize.hpp: int32 accumulators -> s8 / u8 (or s4 / u4) outputs, the
// epilogue of every integer GEMM / conv, as a lowbit::ref kernel.
//
//     out = clamp(zero_point + multiply_by_quantized_multiplier(acc + bias, M), lo, hi)
// with lo = clamp(clamp_min, qmin, qmax) and hi = clamp(clamp_max, qmin, qmax) (fused ReLU /
// ReLU6 / any clamp), bit-exact with TFLite's per-tensor / per-channel requantization in either
// rounding variant. Where TFLite's int32 additions would overflow (undefined there),
// lowbit saturates to int32.
//
// The float-multiplier variant (requantize_float_params), the "fp32" requantization of
// XNNPACK and ONNX Runtime, rescales in float32 instead:
//
//     v   = saturate_s32(acc + bias)                 (exact, in int64)
//     out = clamp(zero_point + round_half_even(f32(float(v) * m)), lo, hi)
// float(v) is exact for |v| <= 2^24 and rounds to nearest (ties to even, the default
// floating-point environment) above, so accumulators beyond 2^24 lose their low bits before
// the multiply. One multiply, one rounding: no FMA is possible, so the result does not
// depend on -ffp-contract.
#ifndef LOWBIT_CORE_REQUANTIZE_HPP
#define LOWBIT_CORE_REQUANTIZE_HPP

#include <cstddef>
#include <cstdint>
#include <limits>

#include "../config.hpp"
#include "fixed_point.hpp"
#include "quantize.hpp"

namespace lowbit {

/// Output parameters of a requantization. `multipliers` has one entry per channel/group
/// of the output scheme's layout (one for per_tensor); `bias`, if non-empty, has the same
/// count and is added before rescaling.
struct requantize_params {
    span<const quantized_multiplier> multipliers;
    span<const std::int32_t> bias;
    std::int32_t zero_point = 0;
    std::int32_t clamp_min = std::numeric_limits<std::int32_t>::min();  ///< e.g. zero_point for ReLU
    std::int32_t clamp_max = std::numeric_limits<std::int32_t>::max();
    requant_rounding rounding = requant_rounding::double_rounding;
};

/// Output parameters of the float-multiplier requantization (see the file comment).
/// `multipliers` (finite, >= 0; typically s_in * s_w / s_out) has one entry per channel /
/// group of the output scheme's layout (one for per_tensor); `bias`, if non-empty, has the
/// same count and is added (saturating to int32) before rescaling.
struct requantize_float_params {
    span<const float> multipliers;
    span<const std::int32_t> bias;
    std::int32_t zero_point = 0;
    std::int32_t clamp_min = std::numeric_limits<std::int32_t>::min();  ///< e.g. zero_point for ReLU
    std::int32_t clamp_max = std::numeric_limits<std::int32_t>::max();
};

namespace detail {
// Checks shared by both requantize variants, after the multipliers' own checks: scheme,
// layout, sizes, zero-point, clamp. Returns the layout.
template <class Scheme, class Params>
constexpr result<quant_layout> prepare_requantize(const Scheme& s, const shape& shp, const Params& p,
                                                  std::size_t acc_size, std::size_t out_size) {
    LOWBIT_DETAIL_TRY(s.validate());
    const result<quant_layout> l = make_layout(s, shp);
    LOWBIT_DETAIL_TRY(l.status());
    using F = typename Scheme::format;
    LOWBIT_DETAIL_CHECK(acc_size == l->numel, errc::size_mismatch, "acc.size()", acc_size, "must equal shape's numel");
    LOWBIT_DETAIL_CHECK(out_size == F::storage_size(acc_size), errc::size_mismatch, "out.size()", out_size,
                        "must be Format::storage_size(acc.size())");
    LOWBIT_DETAIL_CHECK(p.multipliers.size() == l->param_count, errc::size_mismatch, "multipliers.size()",
                        p.multipliers.size(), "must equal the number of channels / groups (1 per tensor)");
    LOWBIT_DETAIL_CHECK(p.bias.empty() || p.bias.size() == l->param_count, errc::size_mismatch, "bias.size()",
                        p.bias.size(), "must be 0 or equal multipliers.size()");
    return l;
}

template <class Scheme, class Params>
constexpr status check_requantize_output(const Scheme& s, const Params& p) {
    LOWBIT_DETAIL_CHECK(p.zero_point >= s.qmin() && p.zero_point <= s.qmax(), errc::invalid_argument, "zero_point",
                        p.zero_point, "must be in [quant_min, quant_max]");
    LOWBIT_DETAIL_CHECK(p.clamp_min <= p.clamp_max, errc::invalid_argument, "clamp_min", p.clamp_min,
                        "must be <= clamp_max");
    return {};
}

// The output bounds: lo = clamp(clamp_min, qmin, qmax), hi = clamp(clamp_max, qmin, qmax), so a
// clamp reaching outside the format (clamp_min > qmax...) still gives in-range outputs.
template <class Scheme>
constexpr std::int32_t clamp_bound(const Scheme& s, std::int32_t v) noexcept {
    return v < s.qmin() ? s.qmin() : v > s.qmax() ? s.qmax() : v;
}

// Every quantized multiplier valid: multiplier 0 or in [2^30, 2^31), shift in [-31, 30].
constexpr status check_quantized_multipliers(span<const quantized_multiplier> m) {
    for (std::size_t i = 0; i < m.size(); ++i) {
        LOWBIT_DETAIL_CHECK(m[i].multiplier == 0 || m[i].multiplier >= (std::int32_t(1) << 30), errc::invalid_argument,
                            "multipliers[i].multiplier", m[i].multiplier, "must be 0 or in [2^30, 2^31)");
        LOWBIT_DETAIL_CHECK(m[i].shift >= -31 && m[i].shift <= 30, errc::invalid_argument, "multipliers[i].shift",
                            m[i].shift, "must be in [-31, 30]");
    }
    return {};
}

// Every float multiplier finite and >= 0.
constexpr status check_float_multipliers(span<const float> m) {
    for (std::size_t i = 0; i < m.size(); ++i)
        LOWBIT_DETAIL_CHECK(m[i] >= 0.0f && is_finite(m[i]), errc::invalid_argument, "multipliers[i]", m[i],
                            "must be finite and >= 0");
    return {};
}

// The float-multiplier rescale of one (already biased, saturated) value, unclamped:
// zero_point + round_half_even(f32(float(v) * m)), exact in double (may be +-Inf).
constexpr double requantize_float_unclamped(std::int32_t v, float m, std::int32_t zero_point) noexcept {
    return static_cast<double>(round_half_even(static_cast<float>(v) * m)) + zero_point;
}
}  // namespace detail

namespace ref {

/// Requantizes `acc` (a tensor of `shp`) into `out` (Format storage, 4-bit packed) under
/// the output scheme `s` (its granularity picks the multiplier of each element).
/// Errors: invalid scheme; layout; multipliers / bias counts; multiplier outside
/// {0} U [2^30, 2^31) or shift outside [-31, 30]; zero_point outside [qmin, qmax];
/// clamp_min > clamp_max; sizes. Nothing is written on error.
template <class Scheme>
constexpr status requantize(const Scheme& s, const shape& shp, const requantize_params& p, span<const std::int32_t> acc,
                            span<typename Scheme::storage_type> out) {
    const result<quant_layout> l = detail::prepare_requantize(s, shp, p, acc.size(), out.size());
    LOWBIT_DETAIL_TRY(l.status());
    LOWBIT_DETAIL_TRY(detail::check_quantized_multipliers(p.multipliers));
    LOWBIT_DETAIL_TRY(detail::check_requantize_output(s, p));
    using F = typename Scheme::format;
    const std::int64_t lo = detail::clamp_bound(s, p.clamp_min), hi = detail::clamp_bound(s, p.clamp_max);
    for (std::size_t k = 0; k < acc.size(); ++k) {
        const std::size_t c = l->param_index(k);
        const std::int64_t biased = std::int64_t(acc[k]) + (p.bias.empty() ? 0 : p.bias[c]);
        const std::int64_t v =
            std::int64_t(multiply_by_quantized_multiplier(detail::saturate_s32(biased), p.multipliers[c], p.rounding)) +
            p.zero_point;
        detail::store<F>(out.data(), k, static_cast<std::int32_t>(v < lo ? lo : v > hi ? hi : v));
    }
    return {};
}

/// Float-multiplier requantization of `acc` (a tensor of `shp`) into `out` (Format storage,
/// 4-bit packed) under the output scheme `s`:
/// out = clamp(zero_point + round_half_even(f32(float(sat32(acc + bias)) * m)), lo, hi),
/// lo / hi = clamp_min / clamp_max clamped to [qmin, qmax]; a product overflowing to +-Inf
/// saturates to hi / lo. Same as XNNPACK's / ONNX Runtime's fp32 requantization where their
/// int32 bias addition does not overflow. Errors: invalid scheme; layout; multipliers / bias
/// counts; a multiplier NaN, Inf or < 0; zero_point outside [qmin, qmax];
/// clamp_min > clamp_max; sizes. Nothing is written on error.
template <class Scheme>
constexpr status requantize(const Scheme& s, const shape& shp, const requantize_float_params& p,
                            span<const std::int32_t> acc, span<typename Scheme::storage_type> out) {
    const result<quant_layout> l = detail::prepare_requantize(s, shp, p, acc.size(), out.size());
    LOWBIT_DETAIL_TRY(l.status());
    LOWBIT_DETAIL_TRY(detail::check_float_multipliers(p.multipliers));
    LOWBIT_DETAIL_TRY(detail::check_requantize_output(s, p));
    using F = typename Scheme::format;
    const double lo = detail::clamp_bound(s, p.clamp_min), hi = detail::clamp_bound(s, p.clamp_max);
    for (std::size_t k = 0; k < acc.size(); ++k) {
        const std::size_t c = l->param_index(k);
        const std::int32_t v = detail::saturate_s32(std::int64_t(acc[k]) + (p.bias.empty() ? 0 : p.bias[c]));
        const double u = detail::requantize_float_unclamped(v, p.multipliers[c], p.zero_point);
        detail::store<F>(out.data(), k, static_cast<std::int32_t>(u < lo ? lo : u > hi ? hi : u));
    }
    return {};
}

}  // namespace ref
}  // namespace lowbit

#endif  // LOWBIT_CORE_REQUANTIZE_HPP
