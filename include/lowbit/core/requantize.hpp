// lowbit/core/requantize.hpp: int32 accumulators -> s8 / u8 (or s4 / u4) outputs, the
// epilogue of every integer GEMM / conv, as a lowbit::ref kernel.
//
//     out = clamp(zero_point + multiply_by_quantized_multiplier(acc + bias, M), lo, hi)
// with lo = max(qmin, clamp_min) and hi = min(qmax, clamp_max) (fused ReLU / ReLU6 / any
// clamp), bit-exact with TFLite's per-tensor / per-channel requantization in either
// rounding variant. Where TFLite's int32 additions would overflow (undefined there),
// lowbit saturates to int32.
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

namespace ref {

/// Requantizes `acc` (a tensor of `shp`) into `out` (Format storage, 4-bit packed) under
/// the output scheme `s` (its granularity picks the multiplier of each element).
/// Errors: invalid scheme; layout; multipliers / bias counts; multiplier outside
/// {0} U [2^30, 2^31) or shift outside [-31, 30]; zero_point outside [qmin, qmax];
/// clamp_min > clamp_max; sizes. Nothing is written on error.
template <class Scheme>
constexpr status requantize(const Scheme& s, const shape& shp, const requantize_params& p, span<const std::int32_t> acc,
                            span<typename Scheme::storage_type> out) {
    LOWBIT_DETAIL_TRY(s.validate());
    const result<quant_layout> l = make_layout(s, shp);
    LOWBIT_DETAIL_TRY(l.status());
    using F = typename Scheme::format;
    LOWBIT_DETAIL_CHECK(acc.size() == l->numel, errc::size_mismatch, "acc.size()", acc.size(), "must equal shape's numel");
    LOWBIT_DETAIL_CHECK(out.size() == F::storage_size(acc.size()), errc::size_mismatch, "out.size()", out.size(),
                        "must be Format::storage_size(acc.size())");
    LOWBIT_DETAIL_CHECK(p.multipliers.size() == l->param_count, errc::size_mismatch, "multipliers.size()",
                        p.multipliers.size(), "must equal the number of channels / groups (1 per tensor)");
    LOWBIT_DETAIL_CHECK(p.bias.empty() || p.bias.size() == l->param_count, errc::size_mismatch, "bias.size()",
                        p.bias.size(), "must be 0 or equal multipliers.size()");
    for (std::size_t i = 0; i < p.multipliers.size(); ++i) {
        const quantized_multiplier m = p.multipliers[i];
        LOWBIT_DETAIL_CHECK(m.multiplier == 0 || m.multiplier >= (std::int32_t(1) << 30), errc::invalid_argument,
                            "multipliers[i].multiplier", m.multiplier, "must be 0 or in [2^30, 2^31)");
        LOWBIT_DETAIL_CHECK(m.shift >= -31 && m.shift <= 30, errc::invalid_argument, "multipliers[i].shift", m.shift,
                            "must be in [-31, 30]");
    }
    LOWBIT_DETAIL_CHECK(p.zero_point >= s.qmin() && p.zero_point <= s.qmax(), errc::invalid_argument, "zero_point",
                        p.zero_point, "must be in [quant_min, quant_max]");
    LOWBIT_DETAIL_CHECK(p.clamp_min <= p.clamp_max, errc::invalid_argument, "clamp_min", p.clamp_min,
                        "must be <= clamp_max");
    const std::int64_t lo = p.clamp_min > s.qmin() ? p.clamp_min : s.qmin();
    const std::int64_t hi = p.clamp_max < s.qmax() ? p.clamp_max : s.qmax();
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

}  // namespace ref
}  // namespace lowbit

#endif  // LOWBIT_CORE_REQUANTIZE_HPP
