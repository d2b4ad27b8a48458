// lowbit/core/scheme.hpp: what a quantization scheme is made of.
//
// The format (s8, u8, s4, u4) and the symmetry change the code, so they are template
// parameters; granularity (per-tensor / per-channel / per-group), axis, group size, a custom
// quant range, reduce_range, eps, rounding and the numerics profile are values, set with
// the chained with_* / per_* calls:
//
//   constexpr auto w = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>{}.per_group(1, 32);
//   constexpr auto a = lowbit::scheme<lowbit::u8>{}.with_reduce_range(true);
//
// A scheme is checked (validate()) by every function that uses it, not when built, so it
// stays a constexpr literal type in firmware builds without exceptions.
#ifndef LOWBIT_CORE_SCHEME_HPP
#define LOWBIT_CORE_SCHEME_HPP

#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "format.hpp"
#include "rounding.hpp"
#include "status.hpp"

namespace lowbit {

/// How the real range maps onto the integer range.
enum class symmetry : std::uint8_t {
    affine,            ///< zero-point chosen so [min, max] (extended to 0) fills the range
    symmetric,         ///< zero-point fixed (0 for signed, mid-range for unsigned), as torch
    symmetric_narrow,  ///< signed only, range [-qmax, qmax] e.g. [-127, 127] (TFLite weights)
};

/// How many (scale, zero-point) pairs a tensor has.
enum class granularity : std::uint8_t {
    per_tensor,   ///< one pair
    per_channel,  ///< one per index along `axis`
    per_group,    ///< one per `group_size` consecutive indices along `axis` (block quantization)
};

/// Named numerics profiles (see the README's Numerics section).
enum class profile : std::uint8_t {
    torch,        ///< torch.ao.quantization observers: float32 calculate_qparams; q = rint(x * (1/s)) + z
    torch_fused,  ///< torch.fused_moving_avg_obs_fake_quant / FBGEMM ChooseQuantizationParams (double, nudged zp)
    tflite,       ///< TFLite: q = round_half_away(x / s) + z; gemmlowp-style nudged zero-point in float
};

constexpr const char* to_string(symmetry s) noexcept {
    return s == symmetry::affine ? "affine" : s == symmetry::symmetric ? "symmetric" : "symmetric_narrow";
}
constexpr const char* to_string(granularity g) noexcept {
    return g == granularity::per_tensor ? "per_tensor" : g == granularity::per_channel ? "per_channel" : "per_group";
}
constexpr const char* to_string(profile p) noexcept {
    return p == profile::torch ? "torch" : p == profile::torch_fused ? "torch_fused" : "tflite";
}

/// float32 machine epsilon, torch's default observer eps (2^-23 = 1.1920929e-07).
constexpr float default_eps = 1.1920928955078125e-07f;

template <class Format, symmetry Sym = symmetry::affine>
class scheme {
    static_assert(is_format<Format>::value, "lowbit::scheme: Format must be s8, u8, s4, u4 or s32");
    static_assert(Sym != symmetry::symmetric_narrow || Format::is_signed,
                  "lowbit::scheme: symmetric_narrow needs a signed format");

public:
    using format = Format;
    using value_type = typename Format::value_type;
    using storage_type = typename Format::storage_type;
    static constexpr symmetry sym = Sym;

    constexpr scheme() noexcept = default;

    // ---- builders (return a modified copy) ----
    /// Custom quant range, as torch's quant_min / quant_max. Must lie within the format's
    /// natural range, contain 0, and have quant_min < quant_max (checked by validate()).
    constexpr scheme with_range(std::int32_t quant_min, std::int32_t quant_max) const noexcept {
        scheme s = *this;
        s.m_quant_min = quant_min;
        s.m_quant_max = quant_max;
        s.m_custom_range = true;
        return s;
    }
    /// torch's reduce_range: halves the range by floor division ([-128,127] -> [-64,63]).
    constexpr scheme with_reduce_range(bool on = true) const noexcept {
        scheme s = *this;
        s.m_reduce_range = on;
        return s;
    }
    /// Smallest scale choose_qparams returns (torch observers' eps). Must be finite, > 0.
    constexpr scheme with_eps(float eps) const noexcept {
        scheme s = *this;
        s.m_eps = eps;
        return s;
    }
    /// Rounding of x / scale. For rounding::stochastic, `seed` selects the random stream
    /// (change it every training step); other modes ignore it.
    constexpr scheme with_rounding(lowbit::rounding r, std::uint64_t seed = 0) const noexcept {
        scheme s = *this;
        s.m_rounding = r;
        s.m_seed = seed;
        return s;
    }
    /// Numerics profile; tflite also switches rounding to half_away.
    constexpr scheme with_profile(lowbit::profile p) const noexcept {
        scheme s = *this;
        s.m_profile = p;
        if (p == lowbit::profile::tflite) s.m_rounding = lowbit::rounding::half_away;
        return s;
    }
    constexpr scheme per_tensor() const noexcept {
        scheme s = *this;
        s.m_granularity = lowbit::granularity::per_tensor;
        s.m_axis = 0;
        s.m_group_size = 0;
        return s;
    }
    /// One (scale, zero-point) per index along `axis` (0 = outermost).
    constexpr scheme per_channel(std::size_t axis) const noexcept {
        scheme s = *this;
        s.m_granularity = lowbit::granularity::per_channel;
        s.m_axis = axis;
        s.m_group_size = 0;
        return s;
    }
    /// One (scale, zero-point) per `group_size` consecutive indices along `axis`.
    constexpr scheme per_group(std::size_t axis, std::size_t group_size) const noexcept {
        scheme s = *this;
        s.m_granularity = lowbit::granularity::per_group;
        s.m_axis = axis;
        s.m_group_size = group_size;
        return s;
    }

    // ---- accessors ----
    /// Effective quant range, after reduce_range: what quantize clamps to.
    constexpr std::int32_t qmin() const noexcept { return m_reduce_range ? floor_half(m_quant_min) : m_quant_min; }
    constexpr std::int32_t qmax() const noexcept { return m_reduce_range ? floor_half(m_quant_max) : m_quant_max; }
    constexpr std::int32_t quant_min() const noexcept { return m_quant_min; }  ///< as configured
    constexpr std::int32_t quant_max() const noexcept { return m_quant_max; }
    constexpr bool custom_range() const noexcept { return m_custom_range; }
    constexpr bool reduce_range() const noexcept { return m_reduce_range; }
    constexpr float eps() const noexcept { return m_eps; }
    constexpr lowbit::rounding rounding() const noexcept { return m_rounding; }
    constexpr std::uint64_t seed() const noexcept { return m_seed; }
    constexpr lowbit::profile profile() const noexcept { return m_profile; }
    constexpr lowbit::granularity granularity() const noexcept { return m_granularity; }
    constexpr std::size_t axis() const noexcept { return m_axis; }
    constexpr std::size_t group_size() const noexcept { return m_group_size; }

    /// Zero-point of a symmetric scheme: 0 for signed formats; for unsigned, 128 for u8's
    /// default range and floor((qmin + qmax) / 2) for any other range (torch).
    constexpr std::int32_t symmetric_zero_point() const noexcept {
        if (Format::is_signed) return 0;
        if (!m_custom_range && Format::id == format_id::u8) return 128;
        return floor_half(qmin() + qmax());
    }

    /// Checks the configuration: range inside the format and containing 0, eps, group size,
    /// and torch's refusal of reduce_range with unsigned symmetric schemes.
    constexpr status validate() const {
        LOWBIT_DETAIL_CHECK(m_quant_min >= Format::qmin, errc::invalid_argument, "quant_min", m_quant_min,
                            "must be >= the format's smallest value");
        LOWBIT_DETAIL_CHECK(m_quant_max <= Format::qmax, errc::invalid_argument, "quant_max", m_quant_max,
                            "must be <= the format's largest value");
        LOWBIT_DETAIL_CHECK(m_quant_min <= 0, errc::invalid_argument, "quant_min", m_quant_min,
                            "the quant range must contain 0 (quant_min <= 0)");
        LOWBIT_DETAIL_CHECK(m_quant_max >= 0, errc::invalid_argument, "quant_max", m_quant_max,
                            "the quant range must contain 0 (quant_max >= 0)");
        LOWBIT_DETAIL_CHECK(qmin() < qmax(), errc::invalid_argument, "quant_max", qmax(),
                            "must be > quant_min after reduce_range");
        LOWBIT_DETAIL_CHECK(Sym != symmetry::symmetric_narrow || qmin() == -qmax(), errc::invalid_argument,
                            "quant_min", qmin(), "symmetric_narrow needs quant_min == -quant_max");
        LOWBIT_DETAIL_CHECK(Format::is_signed || Sym == symmetry::affine || !m_reduce_range,
                            errc::invalid_argument, "reduce_range", 1,
                            "cannot be used with an unsigned symmetric scheme (torch refuses it too)");
        LOWBIT_DETAIL_CHECK(m_eps > 0.0f && detail::is_finite(m_eps), errc::invalid_argument, "eps", m_eps,
                            "must be finite and > 0");
        LOWBIT_DETAIL_CHECK(m_granularity != lowbit::granularity::per_group || m_group_size > 0,
                            errc::invalid_argument, "group_size", m_group_size, "must be > 0 for per_group");
        LOWBIT_DETAIL_CHECK(m_axis < 8, errc::out_of_range, "axis", m_axis, "must be < the tensor's rank (<= 8)");
        return {};
    }

private:
    static constexpr std::int32_t floor_half(std::int32_t v) noexcept { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

    std::int32_t m_quant_min = Sym == symmetry::symmetric_narrow ? -Format::qmax : Format::qmin;
    std::int32_t m_quant_max = Format::qmax;
    bool m_custom_range = false;
    bool m_reduce_range = false;
    float m_eps = default_eps;
    lowbit::rounding m_rounding = lowbit::rounding::half_even;
    std::uint64_t m_seed = 0;
    lowbit::profile m_profile = lowbit::profile::torch;
    lowbit::granularity m_granularity = lowbit::granularity::per_tensor;
    std::size_t m_axis = 0;
    std::size_t m_group_size = 0;
};

/// Shorthands for the schemes people use most.
template <class Format>
using affine_scheme = scheme<Format, symmetry::affine>;
template <class Format>
using symmetric_scheme = scheme<Format, symmetry::symmetric>;

}  // namespace lowbit

#endif  // LOWBIT_CORE_SCHEME_HPP
