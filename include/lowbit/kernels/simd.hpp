// lowbit/kernels/simd.hpp: the per-element spec of quantize.hpp (lowbit/core), in SIMD.
//
// Every helper here is a template on the architecture tag, so each instruction set gets its
// own instantiation (no inline function is shared between translation units compiled for
// different ISAs; see dispatch.hpp). Each is exact: the same bits as the scalar reference.
//
//   round_even(v)      ties to even: the hardware round (SSE4.1 / AVX / AVX-512, NEON's
//                      FRINTN) or, on SSE2,
//                      (|v| + 2^23) - 2^23 with the sign put back (exact under round-to-nearest);
//   round_half_away(v) t = trunc(|v|); t + (|v| - t >= 0.5), sign put back (never |v| + 0.5,
//                      which rounds 0.49999997 up);
//   fdiv(a, b)         IEEE a / b (on neon64 FDIV, not xsimd 8.1's reciprocal estimate);
//   quantize(x, c)     clamp(zp + round(x * inv or x / scale), qmin, qmax) in float, NaN -> zp.
//                      zp + r is exact whenever the result can land inside [qmin, qmax] (|r| <
//                      2^24); larger |r| saturates either way.
#ifndef LOWBIT_KERNELS_SIMD_HPP
#define LOWBIT_KERNELS_SIMD_HPP

#include <cstdint>
#include <type_traits>

#include "../core/qparams.hpp"
#include "../core/rounding.hpp"
#include "../core/scheme.hpp"
#include "arch.hpp"

namespace lowbit {
namespace kernels {
namespace detail {

/// One (scale, zero-point) and the scheme's range, as the floats the SIMD code uses.
struct quant_consts {
    float scale = 1.0f;
    float inv_scale = 1.0f;
    float zero_point = 0.0f;
    float qmin = 0.0f, qmax = 0.0f;
    bool divide = false;     ///< tflite profile: x / scale
    bool half_away = false;  ///< rounding::half_away (else half_even; stochastic never gets here)

    template <class Scheme>
    static constexpr quant_consts make(const Scheme& s, qparams qp) noexcept {
        quant_consts c;
        c.scale = qp.scale;
        c.inv_scale = 1.0f / qp.scale;
        c.zero_point = static_cast<float>(qp.zero_point);
        c.qmin = static_cast<float>(s.qmin());
        c.qmax = static_cast<float>(s.qmax());
        c.divide = s.profile() == profile::tflite;
        c.half_away = s.rounding() == rounding::half_away;
        return c;
    }
};

#if LOWBIT_HAS_XSIMD

template <class A>
using fbatch = xsimd::batch<float, A>;
template <class A>
using ibatch = xsimd::batch<std::int32_t, A>;

template <class A>
LOWBIT_FORCE_INLINE fbatch<A> sign_of(fbatch<A> v) noexcept {
    return xsimd::bitwise_and(v, fbatch<A>(-0.0f));
}

// SSE2 / SSE3 / SSSE3: no round instruction.
template <class A>
LOWBIT_FORCE_INLINE fbatch<A> round_even(fbatch<A> v, xsimd::generic) noexcept {
    const fbatch<A> a = xsimd::abs(v);
    const fbatch<A> magic(8388608.0f);
    const fbatch<A> r = xsimd::bitwise_or((a + magic) - magic, sign_of(v));
    return xsimd::select(a < magic, r, v);  // |v| >= 2^23, Inf and NaN unchanged
}
template <class A>
LOWBIT_FORCE_INLINE fbatch<A> round_even(fbatch<A> v, xsimd::sse4_1) noexcept {
    return xsimd::nearbyint(v);
}
template <class A>
LOWBIT_FORCE_INLINE fbatch<A> round_even(fbatch<A> v, xsimd::avx) noexcept {
    return xsimd::nearbyint(v);
}
template <class A>
LOWBIT_FORCE_INLINE fbatch<A> round_even(fbatch<A> v, xsimd::avx512f) noexcept {
    return xsimd::nearbyint(v);
}
#if LOWBIT_KERNELS_NEON64
// AArch64: FRINTN (round to nearest, ties to even, whatever FPCR's mode; +-0, +-Inf and NaN
// unchanged). xsimd 8.1 has no neon64 nearbyint: its generic one is the 2^23 trick above.
template <class A>
LOWBIT_FORCE_INLINE fbatch<A> round_even(fbatch<A> v, xsimd::neon64) noexcept {
    return vrndnq_f32(v);
}
#endif
template <class A>
LOWBIT_FORCE_INLINE fbatch<A> round_even(fbatch<A> v) noexcept {
    return round_even<A>(v, A{});
}

/// a / b, correctly rounded (IEEE division) on every architecture. Not xsimd's operator/ on
/// neon64: xsimd 8.1 divides float32 there by a reciprocal estimate and two Newton-Raphson
/// steps (its 32-bit ARM code), which is off by an ulp for many operands; FDIV is exact.
template <class A>
LOWBIT_FORCE_INLINE fbatch<A> fdiv(fbatch<A> a, fbatch<A> b) noexcept {
#if LOWBIT_KERNELS_NEON64
    if constexpr (std::is_base_of<xsimd::neon64, A>::value) return vdivq_f32(a, b);
#endif
    return a / b;
}

template <class A>
LOWBIT_FORCE_INLINE fbatch<A> round_half_away(fbatch<A> v) noexcept {
    const fbatch<A> a = xsimd::abs(v);
    fbatch<A> t = round_even<A>(a);
    t = xsimd::select(t > a, t - fbatch<A>(1.0f), t);  // trunc(|v|)
    const fbatch<A> r = xsimd::select((a - t) >= fbatch<A>(0.5f), t + fbatch<A>(1.0f), t);
    return xsimd::bitwise_or(r, sign_of(v));
}

/// zero_point + round(x / scale), unclamped (NaN stays NaN).
template <class A>
LOWBIT_FORCE_INLINE fbatch<A> unclamped(fbatch<A> x, const quant_consts& c) noexcept {
    const fbatch<A> v = c.divide ? fdiv<A>(x, fbatch<A>(c.scale)) : x * fbatch<A>(c.inv_scale);
    const fbatch<A> r = c.half_away ? round_half_away<A>(v) : round_even<A>(v);
    return r + fbatch<A>(c.zero_point);
}

/// The quantized value as a float in [qmin, qmax]; NaN -> zero_point.
template <class A>
LOWBIT_FORCE_INLINE fbatch<A> quantize(fbatch<A> x, const quant_consts& c) noexcept {
    const fbatch<A> u = unclamped<A>(x, c);
    const fbatch<A> clamped = xsimd::min(xsimd::max(u, fbatch<A>(c.qmin)), fbatch<A>(c.qmax));
    return xsimd::select(xsimd::isnan(x), fbatch<A>(c.zero_point), clamped);
}

/// Straight-through mask: qmin <= unclamped <= qmax. Non-finite x fails by itself: +-Inf
/// (or a product overflowing to +-Inf) is outside, and NaN compares false.
template <class A>
LOWBIT_FORCE_INLINE xsimd::batch_bool<float, A> in_range(fbatch<A> x, const quant_consts& c) noexcept {
    const fbatch<A> u = unclamped<A>(x, c);
    return (u >= fbatch<A>(c.qmin)) && (u <= fbatch<A>(c.qmax));
}

#endif  // LOWBIT_HAS_XSIMD

}  // namespace detail
}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_SIMD_HPP
