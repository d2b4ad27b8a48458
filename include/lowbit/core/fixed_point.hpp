// lowbit/core/fixed_point.hpp: integer-only rescaling, bit-exact with TFLite / gemmlowp.
//
// A real multiplier M (e.g. s_in * s_w / s_out) becomes a Q0.31 integer and a power-of-two
// shift, M ~= multiplier * 2^(shift - 31), by quantize_multiplier (TFLite QuantizeMultiplier).
// An int32 accumulator is then rescaled with multiply_by_quantized_multiplier, either the
// classic two-step "double rounding" (gemmlowp SaturatingRoundingDoublingHighMul then
// RoundingDivideByPOT; TFLite's default) or TFLite's TFLITE_SINGLE_ROUNDING variant. They
// differ on negative ties: M = 0.25, x = -2998 gives -750 (double) and -749 (single).
//
// Everything is constexpr so firmware can build requantization tables at compile time.
#ifndef LOWBIT_CORE_FIXED_POINT_HPP
#define LOWBIT_CORE_FIXED_POINT_HPP

#include <cstdint>
#include <limits>

#include "../config.hpp"
#include "rounding.hpp"
#include "status.hpp"

namespace lowbit {

/// A multiplier in Q0.31 and a shift: value = multiplier * 2^(shift - 31).
/// multiplier is 0 or in [2^30, 2^31); shift in [-31, 30].
struct quantized_multiplier {
    std::int32_t multiplier = 0;
    int shift = 0;
    friend constexpr bool operator==(quantized_multiplier a, quantized_multiplier b) noexcept {
        return a.multiplier == b.multiplier && a.shift == b.shift;
    }
};

/// Which rescaling TFLite variant to reproduce.
enum class requant_rounding : std::uint8_t {
    double_rounding,  ///< SRDHM then rounding divide by 2^n (TFLite default, gemmlowp)
    single_rounding,  ///< one rounding of x * M (TFLITE_SINGLE_ROUNDING)
};

constexpr const char* to_string(requant_rounding r) noexcept {
    return r == requant_rounding::double_rounding ? "double_rounding" : "single_rounding";
}

namespace detail {
// frexp for finite m > 0: m = q * 2^e with q in [0.5, 1). Exact (scaling by 2 is exact).
constexpr double frexp_positive(double m, int& e) noexcept {
    e = 0;
    while (m >= 1.0) { m *= 0.5; ++e; }
    while (m < 0.5) { m *= 2.0; --e; }
    return m;
}
}  // namespace detail

/// TFLite QuantizeMultiplier: m == 0 -> {0, 0}; q = frexp(m, &shift);
/// qf = round_half_away(q * 2^31); qf == 2^31 -> {2^30, shift + 1}; shift < -31 -> {0, 0}.
/// Examples: 0.5 -> {2^30, 0}; 0.1 -> {1717986918, -3}; 1.5 -> {1610612736, 1}.
/// Errors: m NaN, negative, or >= 2^30 (shift would exceed 30).
constexpr result<quantized_multiplier> quantize_multiplier(double m) {
    LOWBIT_DETAIL_CHECK(m >= 0.0 && m < 1073741824.0, errc::invalid_argument, "multiplier", m,
                        "must be in [0, 2^30)");
    if (m == 0.0) return quantized_multiplier{};
    int shift = 0;
    const double q = detail::frexp_positive(m, shift);
    auto qf = static_cast<std::int64_t>(round_half_away(q * 2147483648.0));
    if (qf == (std::int64_t(1) << 31)) {
        qf /= 2;
        ++shift;
    }
    if (shift < -31) return quantized_multiplier{};
    return quantized_multiplier{static_cast<std::int32_t>(qf), shift};
}

/// gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31) with ties toward +Inf
/// (truncating division of a*b + 2^30, or of a*b + 1 - 2^30 when a*b < 0);
/// INT32_MIN * INT32_MIN saturates to INT32_MAX. Same as ARM's vqrdmulh.
constexpr std::int32_t saturating_rounding_doubling_high_mul(std::int32_t a, std::int32_t b) noexcept {
    if (a == b && a == std::numeric_limits<std::int32_t>::min()) return std::numeric_limits<std::int32_t>::max();
    const std::int64_t ab = std::int64_t(a) * std::int64_t(b);
    const std::int64_t nudge = ab >= 0 ? (std::int64_t(1) << 30) : (1 - (std::int64_t(1) << 30));
    return static_cast<std::int32_t>((ab + nudge) / (std::int64_t(1) << 31));
}

/// gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero.
/// exponent in [0, 31] (outside: clamped to it).
constexpr std::int32_t rounding_divide_by_pot(std::int32_t x, int exponent) noexcept {
    exponent = exponent < 0 ? 0 : exponent > 31 ? 31 : exponent;
    const std::int64_t mask = (std::int64_t(1) << exponent) - 1;
    const std::int64_t remainder = std::int64_t(x) & mask;
    const std::int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    const std::int64_t floor_div = x >= 0 ? std::int64_t(x) >> exponent : -((-std::int64_t(x) + mask) >> exponent);
    return static_cast<std::int32_t>(floor_div + (remainder > threshold ? 1 : 0));
}

namespace detail {
constexpr std::int32_t saturate_s32(std::int64_t v) noexcept {
    return v > std::numeric_limits<std::int32_t>::max()   ? std::numeric_limits<std::int32_t>::max()
           : v < std::numeric_limits<std::int32_t>::min() ? std::numeric_limits<std::int32_t>::min()
                                                           : static_cast<std::int32_t>(v);
}
}  // namespace detail

/// x * multiplier * 2^(shift - 31), rounded as `mode` says; bit-exact with TFLite
/// MultiplyByQuantizedMultiplier (both variants). Where TFLite's left shift x << shift
/// would overflow int32 (undefined there), the value saturates to int32 instead; the
/// single-rounding result also saturates. Preconditions: multiplier >= 0, shift in [-31, 30].
constexpr std::int32_t multiply_by_quantized_multiplier(std::int32_t x, quantized_multiplier m,
                                                        requant_rounding mode = requant_rounding::double_rounding) noexcept {
    if (mode == requant_rounding::single_rounding) {
        const int total_shift = 31 - m.shift;  // in [1, 62]
        const std::int64_t round = std::int64_t(1) << (total_shift - 1);
        const std::int64_t prod = std::int64_t(x) * m.multiplier + round;  // |.| < 2^62 + 2^61
        // arithmetic shift right == floor division by 2^total_shift
        const std::int64_t q = prod >= 0 ? prod >> total_shift
                                         : -((-prod + ((std::int64_t(1) << total_shift) - 1)) >> total_shift);
        return detail::saturate_s32(q);
    }
    const int left = m.shift > 0 ? m.shift : 0;
    const int right = m.shift > 0 ? 0 : -m.shift;
    const std::int32_t shifted = detail::saturate_s32(std::int64_t(x) * (std::int64_t(1) << left));
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, m.multiplier), right);
}

}  // namespace lowbit

#endif  // LOWBIT_CORE_FIXED_POINT_HPP
