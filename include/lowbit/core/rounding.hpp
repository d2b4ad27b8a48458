// lowbit/core/rounding.hpp: exact, constexpr float rounding, independent of the FPU mode.
//
// torch rounds with std::nearbyint in the default mode (half to even); TFLite's reference
// quantize uses std::round (half away from zero); stochastic rounding is for QAT and
// low-bit training. These are written with integer arithmetic on the float's value so they
// are constexpr, give the same bits under any -ffp-contract / rounding-mode setting, and
// need no <cmath>.
#ifndef LOWBIT_CORE_ROUNDING_HPP
#define LOWBIT_CORE_ROUNDING_HPP

#include <cstdint>
#include <limits>

#include "../config.hpp"

namespace lowbit {

/// How a real value becomes an integer.
enum class rounding : std::uint8_t {
    half_even,   ///< ties to even, as std::nearbyint (torch); the default
    half_away,   ///< ties away from zero, as std::round (TFLite reference kernels)
    stochastic,  ///< floor(x) + (u < frac(x)), u a hash of (seed, element index)
};

constexpr const char* to_string(rounding r) noexcept {
    return r == rounding::half_even ? "half_even" : r == rounding::half_away ? "half_away" : "stochastic";
}

namespace detail {
constexpr float two_pow_23 = 8388608.0f;
constexpr float inf_f = std::numeric_limits<float>::infinity();
constexpr bool is_nan(float x) noexcept { return x != x; }
constexpr bool is_nan(double x) noexcept { return x != x; }
constexpr bool is_finite(float x) noexcept { return x - x == 0.0f; }
constexpr bool is_finite(double x) noexcept { return x - x == 0.0; }
constexpr float abs(float x) noexcept { return x < 0.0f ? -x : x; }
constexpr double abs(double x) noexcept { return x < 0.0 ? -x : x; }
}  // namespace detail

/// Round to nearest, ties to even, as std::nearbyint in the default mode. NaN and +-Inf
/// are returned unchanged; |x| >= 2^23 is already integral and returned unchanged.
constexpr float round_half_even(float x) noexcept {
    if (!(detail::abs(x) < detail::two_pow_23) || x == 0.0f) return x;  // NaN, Inf, integral, +-0
    const auto t = static_cast<std::int32_t>(x);            // truncation, exact
    const float frac = x - static_cast<float>(t);           // exact: same binade or smaller
    const float af = detail::abs(frac);
    std::int32_t r = t;
    if (af > 0.5f || (af == 0.5f && (t & 1) != 0)) r += (x < 0.0f ? -1 : 1);
    const float out = static_cast<float>(r);
    return out == 0.0f && x < 0.0f ? -0.0f : out;  // keep the sign of zero like nearbyint
}

/// Round to nearest, ties away from zero, as std::round. NaN/Inf unchanged.
constexpr float round_half_away(float x) noexcept {
    if (!(detail::abs(x) < detail::two_pow_23) || x == 0.0f) return x;
    const auto t = static_cast<std::int32_t>(x);
    const float af = detail::abs(x - static_cast<float>(t));
    const std::int32_t r = af >= 0.5f ? t + (x < 0.0f ? -1 : 1) : t;
    const float out = static_cast<float>(r);
    return out == 0.0f && x < 0.0f ? -0.0f : out;
}

/// Double-precision ties-to-even (std::nearbyint on double), for the fbgemm qparams path.
constexpr double round_half_even(double x) noexcept {
    if (!(detail::abs(x) < 4503599627370496.0)) return x;  // 2^52
    const auto t = static_cast<std::int64_t>(x);
    const double af = detail::abs(x - static_cast<double>(t));
    std::int64_t r = t;
    if (af > 0.5 || (af == 0.5 && (t & 1) != 0)) r += (x < 0.0 ? -1 : 1);
    return static_cast<double>(r);
}

/// Double-precision ties away from zero (std::round on double), for quantize_multiplier.
constexpr double round_half_away(double x) noexcept {
    if (!(detail::abs(x) < 4503599627370496.0)) return x;
    const auto t = static_cast<std::int64_t>(x);
    const double af = detail::abs(x - static_cast<double>(t));
    return static_cast<double>(af >= 0.5 ? t + (x < 0.0 ? -1 : 1) : t);
}

/// Largest integer <= x (NaN/Inf unchanged).
constexpr float floor(float x) noexcept {
    if (!(detail::abs(x) < detail::two_pow_23) || x == 0.0f) return x;
    const auto t = static_cast<std::int32_t>(x);
    const float ft = static_cast<float>(t);
    return ft > x ? ft - 1.0f : ft;
}

/// The random bits behind stochastic rounding: a counter-based hash (SplitMix64's
/// finalizer) of (seed, element index), so the result for an element does not depend on
/// the order elements are visited, on SIMD width or on threads. Returns 24 uniform bits.
constexpr std::uint32_t stochastic_bits(std::uint64_t seed, std::uint64_t index) noexcept {
    std::uint64_t z = seed + (index + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return static_cast<std::uint32_t>((z ^ (z >> 31)) >> 40);
}

/// Stochastic rounding of element `index` under `seed`: floor(x) + 1 with probability
/// ceil(frac(x) * 2^24) / 2^24, else floor(x). Integral x, NaN and Inf are unchanged.
/// Same (x, seed, index), same result, on every platform.
constexpr float round_stochastic(float x, std::uint64_t seed, std::uint64_t index) noexcept {
    if (!(detail::abs(x) < detail::two_pow_23)) return x;
    const float f = lowbit::floor(x);
    const float frac = x - f;  // exact, in [0, 1)
    if (frac == 0.0f) return x;
    const auto u = static_cast<float>(stochastic_bits(seed, index));  // exact: < 2^24
    return u < frac * 16777216.0f ? f + 1.0f : f;
}

/// Round with a run-time choice; seed and index matter only for rounding::stochastic.
constexpr float round(float x, rounding mode, std::uint64_t seed = 0, std::uint64_t index = 0) noexcept {
    return mode == rounding::half_even   ? round_half_even(x)
           : mode == rounding::half_away ? round_half_away(x)
                                         : round_stochastic(x, seed, index);
}

}  // namespace lowbit

#endif  // LOWBIT_CORE_ROUNDING_HPP
