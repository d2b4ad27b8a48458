// lowbit/kernels/fake_quantize.hpp: SIMD per-tensor fake-quantize forward and its
// straight-through backward (the QAT hot loops), bit-identical to lowbit::ref's
// (core/fake_quantize.hpp), same signatures, same checks and errors, plus an architecture
// template parameter (see quantize.hpp and dispatch.hpp):
//
//   lowbit::kernels::fake_quantize(s, qp, x, y, mask);
//   lowbit::kernels::fake_quantize_backward_masked(mask, dy, dx);
//
// Per element, in float (simd.hpp's quantize / in_range are the SIMD spec of quantize.hpp):
//   y    = (clamp(zp + round(x / scale)) - zp) * scale   (subtraction exact: both small
//          integers, so the one rounding is the multiply's, as ref's float(q - zp) * scale)
//   mask = qmin <= zp + round(x / scale) <= qmax          (0 for NaN and +-Inf)
//   dx   = mask ? dy : dy * 0.0f                          (as ref's pass_gradient: a NaN dy
//          stays NaN, a negative dy with mask 0 gives -0.0)
// Stochastic rounding and the s32 format take the reference path. Loops work on blocks of 4
// registers, with the profile's divide / half_away choices made once per call, and run the
// tail through the same code on a zero-padded copy. Mask bytes come straight from the compare results (x86/narrow.hpp, arm/narrow.hpp).
#ifndef LOWBIT_KERNELS_FAKE_QUANTIZE_HPP
#define LOWBIT_KERNELS_FAKE_QUANTIZE_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../core/fake_quantize.hpp"
#include "arch.hpp"
#include "simd.hpp"
#include "arm/narrow.hpp"
#include "arm/widen.hpp"
#include "x86/narrow.hpp"
#include "x86/quantize512.hpp"
#include "x86/widen.hpp"

namespace lowbit {
namespace kernels {
namespace detail {

#if LOWBIT_HAS_XSIMD
// The straight-through gradient, as ref's pass_gradient: dy where the mask is set (every bit),
// dy * 0.0f elsewhere.
template <class A>
LOWBIT_FORCE_INLINE fbatch<A> pass_gradient(xsimd::batch_bool<float, A> m, fbatch<A> dy) noexcept {
    return xsimd::select(m, dy, dy * fbatch<A>(0.0f));
}

// One register of the forward: y (and the mask in m when Mask).
template <class A, bool Mask>
LOWBIT_FORCE_INLINE fbatch<A> fake_quantize_reg(const quant_consts& c, fbatch<A> x,
                                                xsimd::batch_bool<float, A>& m) noexcept {
    if constexpr (Mask) m = in_range<A>(x, c);
    return (quantize<A>(x, c) - fbatch<A>(c.zero_point)) * fbatch<A>(c.scale);
}

// 4 registers of x -> y (and 4 * lanes mask bytes). Every x register is read before the y
// register at the same place is written, so y may be x.
template <class A, bool Mask>
LOWBIT_FORCE_INLINE void fake_quantize_block(const quant_consts& c, const float* x, float* y,
                                             std::uint8_t* mask) noexcept {
    constexpr std::size_t L = fbatch<A>::size;
    xsimd::batch_bool<float, A> m0, m1, m2, m3;
    fake_quantize_reg<A, Mask>(c, fbatch<A>::load_unaligned(x), m0).store_unaligned(y);
    fake_quantize_reg<A, Mask>(c, fbatch<A>::load_unaligned(x + L), m1).store_unaligned(y + L);
    fake_quantize_reg<A, Mask>(c, fbatch<A>::load_unaligned(x + 2 * L), m2).store_unaligned(y + 2 * L);
    fake_quantize_reg<A, Mask>(c, fbatch<A>::load_unaligned(x + 3 * L), m3).store_unaligned(y + 3 * L);
    if constexpr (Mask) narrow_mask4<A>(m0, m1, m2, m3, mask, A{});
}

// 4 registers: dx = mask(x) ? dy : dy * 0.
template <class A>
LOWBIT_FORCE_INLINE void fake_quantize_backward_block(const quant_consts& c, const float* x, const float* dy,
                                                      float* dx) noexcept {
    constexpr std::size_t L = fbatch<A>::size;
    for (std::size_t k = 0; k < 4; ++k) {
        const auto m = in_range<A>(fbatch<A>::load_unaligned(x + k * L), c);
        pass_gradient<A>(m, fbatch<A>::load_unaligned(dy + k * L)).store_unaligned(dx + k * L);
    }
}

// 4 registers: dx = mask != 0 ? dy : dy * 0, mask bytes widened to int32 then to float
// (exact, 0..255), compared with 0 (no NaN possible).
template <class A>
LOWBIT_FORCE_INLINE void fake_quantize_backward_masked_block(const std::uint8_t* mask, const float* dy,
                                                             float* dx) noexcept {
    constexpr std::size_t L = fbatch<A>::size;
    ibatch<A> m[4];
    widen4<false, A>(mask, m[0], m[1], m[2], m[3], A{});
    for (std::size_t k = 0; k < 4; ++k) {
        const auto mk = xsimd::batch_cast<float>(m[k]) != fbatch<A>(0.0f);
        pass_gradient<A>(mk, fbatch<A>::load_unaligned(dy + k * L)).store_unaligned(dx + k * L);
    }
}

#if LOWBIT_KERNELS_X86
// AVX-512 fast blocks (x86/quantize512.hpp). The divide (tflite) profile multiplies by 1/scale
// and redoes the block with the exact division when a lane is too close to a boundary; all of
// x is read before y is written, so y may be x.
// One register of the fast forward: y, and the mask in m when Mask.
template <class A, bool Mask, bool Divide, bool HalfAway>
LOWBIT_FORCE_INLINE __m512 fake_quantize_reg512(const q512<A>& k, __m512 x, __mmask16& m, __mmask16& unsafe) noexcept {
    if constexpr (Divide) {
        if constexpr (Mask) m = mask512_div<A>(k, _mm512_mul_ps(x, k.inv), unsafe);
        return fake_quantize512_div<A>(k, x, unsafe);
    } else {
        const __m512 v = _mm512_mul_ps(x, k.inv);
        if constexpr (Mask) m = mask512_mul<A>(k, v);
        return fake_quantize512_mul<A, HalfAway>(k, v);
    }
}

template <class A, bool Mask, bool Divide, bool HalfAway>
LOWBIT_FORCE_INLINE void fake_quantize_block512(const quant_consts& c, const q512<A>& k, const float* x, float* y,
                                                std::uint8_t* mask) noexcept {
    const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
    const __m512 x2 = _mm512_loadu_ps(x + 32), x3 = _mm512_loadu_ps(x + 48);
    __mmask16 m0 = 0, m1 = 0, m2 = 0, m3 = 0;
    __mmask16 unsafe = any_nan512<A>(x0, x1, x2, x3);  // NaN (-> 0) is left to the exact block
    const __m512 y0 = fake_quantize_reg512<A, Mask, Divide, HalfAway>(k, x0, m0, unsafe);
    const __m512 y1 = fake_quantize_reg512<A, Mask, Divide, HalfAway>(k, x1, m1, unsafe);
    const __m512 y2 = fake_quantize_reg512<A, Mask, Divide, HalfAway>(k, x2, m2, unsafe);
    const __m512 y3 = fake_quantize_reg512<A, Mask, Divide, HalfAway>(k, x3, m3, unsafe);
    if (__builtin_expect(unsafe != 0, 0)) {
        fake_quantize_block<A, Mask>(c, x, y, mask);
        return;
    }
    _mm512_storeu_ps(y, y0);
    _mm512_storeu_ps(y + 16, y1);
    _mm512_storeu_ps(y + 32, y2);
    _mm512_storeu_ps(y + 48, y3);
    if constexpr (Mask) narrow_mask4<A>(m0, m1, m2, m3, mask, A{});
}

// One register of the fast backward: the mask.
template <class A, bool Divide>
LOWBIT_FORCE_INLINE __mmask16 backward_mask512(const q512<A>& k, const float* x, __mmask16& unsafe) noexcept {
    const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x), k.inv);
    if constexpr (Divide)
        return mask512_div<A>(k, v, unsafe);
    else
        return mask512_mul<A>(k, v);
}

template <class A, bool Divide>
LOWBIT_FORCE_INLINE void fake_quantize_backward_block512(const quant_consts& c, const q512<A>& k, const float* x,
                                                         const float* dy, float* dx) noexcept {
    __mmask16 unsafe = 0;
    const __mmask16 m0 = backward_mask512<A, Divide>(k, x, unsafe);
    const __mmask16 m1 = backward_mask512<A, Divide>(k, x + 16, unsafe);
    const __mmask16 m2 = backward_mask512<A, Divide>(k, x + 32, unsafe);
    const __mmask16 m3 = backward_mask512<A, Divide>(k, x + 48, unsafe);
    if constexpr (Divide) {
        if (__builtin_expect(unsafe != 0, 0)) {
            fake_quantize_backward_block<A>(c, x, dy, dx);
            return;
        }
    }
    _mm512_storeu_ps(dx, apply_mask512<A>(m0, _mm512_loadu_ps(dy)));
    _mm512_storeu_ps(dx + 16, apply_mask512<A>(m1, _mm512_loadu_ps(dy + 16)));
    _mm512_storeu_ps(dx + 32, apply_mask512<A>(m2, _mm512_loadu_ps(dy + 32)));
    _mm512_storeu_ps(dx + 48, apply_mask512<A>(m3, _mm512_loadu_ps(dy + 48)));
}

// The block kinds as function objects (always inlined, unlike a lambda).
template <class A, bool Mask, bool Divide, bool HalfAway>
struct fake_quantize_block512_fn {
    const quant_consts& c;
    const q512<A>& k;
    LOWBIT_FORCE_INLINE void operator()(const float* x, float* y, std::uint8_t* mask) const noexcept {
        fake_quantize_block512<A, Mask, Divide, HalfAway>(c, k, x, y, mask);
    }
};
#endif  // LOWBIT_KERNELS_X86
template <class A, bool Mask>
struct fake_quantize_block_fn {
    const quant_consts& c;
    LOWBIT_FORCE_INLINE void operator()(const float* x, float* y, std::uint8_t* mask) const noexcept {
        fake_quantize_block<A, Mask>(c, x, y, mask);
    }
};
#if LOWBIT_KERNELS_X86
template <class A, bool Divide>
struct fake_quantize_backward_block512_fn {
    const quant_consts& c;
    const q512<A>& k;
    LOWBIT_FORCE_INLINE void operator()(const float* x, const float* dy, float* dx) const noexcept {
        fake_quantize_backward_block512<A, Divide>(c, k, x, dy, dx);
    }
};
#endif
template <class A>
struct fake_quantize_backward_block_fn {
    const quant_consts& c;
    LOWBIT_FORCE_INLINE void operator()(const float* x, const float* dy, float* dx) const noexcept {
        fake_quantize_backward_block<A>(c, x, dy, dx);
    }
};

// Forward block walk: whole blocks in place, the tail through the same block on a padded copy.
template <class A, bool Mask, class Block>
LOWBIT_FORCE_INLINE void fake_quantize_blocks(const float* x, float* y, std::uint8_t* mask, std::size_t n,
                                              Block block) noexcept {
    constexpr std::size_t B = 4 * fbatch<A>::size;
    std::size_t i = 0;
    for (; i + B <= n; i += B) block(x + i, y + i, Mask ? mask + i : nullptr);
    if (i < n) {
        alignas(64) float xt[B] = {};
        alignas(64) float yt[B];
        alignas(64) std::uint8_t mt[B];
        std::memcpy(xt, x + i, (n - i) * sizeof(float));
        block(xt, yt, mt);
        std::memcpy(y + i, yt, (n - i) * sizeof(float));
        if constexpr (Mask) std::memcpy(mask + i, mt, n - i);
    }
}

// Backward block walk.
template <class A, class Block>
LOWBIT_FORCE_INLINE void fake_quantize_backward_blocks(const float* x, const float* dy, float* dx, std::size_t n,
                                                       Block block) noexcept {
    constexpr std::size_t B = 4 * fbatch<A>::size;
    std::size_t i = 0;
    for (; i + B <= n; i += B) block(x + i, dy + i, dx + i);
    if (i < n) {
        alignas(64) float xt[B] = {};
        alignas(64) float dyt[B] = {};
        alignas(64) float dxt[B];
        std::memcpy(xt, x + i, (n - i) * sizeof(float));
        std::memcpy(dyt, dy + i, (n - i) * sizeof(float));
        block(xt, dyt, dxt);
        std::memcpy(dx + i, dxt, (n - i) * sizeof(float));
    }
}

// The forward loop with the profile's choices as constants: c is a local copy whose flags
// are set from the template arguments, so simd.hpp's run-time tests fold away, and no store
// to y can alias it (the compiler would otherwise reload it after every store).
template <class A, bool Mask, bool Divide, bool HalfAway>
LOWBIT_FORCE_INLINE void fake_quantize_run(quant_consts c, const float* x, float* y, std::uint8_t* mask,
                                           std::size_t n) noexcept {
    c.divide = Divide;
    c.half_away = HalfAway;
#if LOWBIT_KERNELS_X86
    if constexpr (std::is_base_of<xsimd::avx512bw, A>::value) {
        if (fast512_usable<A>(c)) {
            const q512<A> k(c, Divide, HalfAway);
            fake_quantize_blocks<A, Mask>(x, y, mask, n, fake_quantize_block512_fn<A, Mask, Divide, HalfAway>{c, k});
            return;
        }
    }
#endif
    fake_quantize_blocks<A, Mask>(x, y, mask, n, fake_quantize_block_fn<A, Mask>{c});
}

// Same for the backward loop.
template <class A, bool Divide, bool HalfAway>
LOWBIT_FORCE_INLINE void fake_quantize_backward_run(quant_consts c, const float* x, const float* dy, float* dx,
                                                    std::size_t n) noexcept {
    c.divide = Divide;
    c.half_away = HalfAway;
#if LOWBIT_KERNELS_X86
    if constexpr (std::is_base_of<xsimd::avx512bw, A>::value) {
        if (fast512_usable<A>(c)) {
            const q512<A> k(c, Divide, HalfAway);
            fake_quantize_backward_blocks<A>(x, dy, dx, n, fake_quantize_backward_block512_fn<A, Divide>{c, k});
            return;
        }
    }
#endif
    fake_quantize_backward_blocks<A>(x, dy, dx, n, fake_quantize_backward_block_fn<A>{c});
}
#endif

/// Per-tensor fake-quantize forward loop: y[k] for k < n, and mask[k] if Mask. y may equal x.
/// No checks here.
template <class A, bool Mask>
void fake_quantize_loop(const quant_consts& c, const float* x, float* y, std::uint8_t* mask, std::size_t n) noexcept {
#if LOWBIT_HAS_XSIMD
    if (c.divide)
        c.half_away ? fake_quantize_run<A, Mask, true, true>(c, x, y, mask, n)
                    : fake_quantize_run<A, Mask, true, false>(c, x, y, mask, n);
    else
        c.half_away ? fake_quantize_run<A, Mask, false, true>(c, x, y, mask, n)
                    : fake_quantize_run<A, Mask, false, false>(c, x, y, mask, n);
#else
    (void)c, (void)x, (void)y, (void)mask, (void)n;
#endif
}

/// Per-tensor straight-through backward loop: dx[k] = dy[k] * mask(x[k]). dx may equal dy.
template <class A>
void fake_quantize_backward_loop(const quant_consts& c, const float* x, const float* dy, float* dx,
                                 std::size_t n) noexcept {
#if LOWBIT_HAS_XSIMD
    if (c.divide)
        c.half_away ? fake_quantize_backward_run<A, true, true>(c, x, dy, dx, n)
                    : fake_quantize_backward_run<A, true, false>(c, x, dy, dx, n);
    else
        c.half_away ? fake_quantize_backward_run<A, false, true>(c, x, dy, dx, n)
                    : fake_quantize_backward_run<A, false, false>(c, x, dy, dx, n);
#else
    (void)c, (void)x, (void)dy, (void)dx, (void)n;
#endif
}

/// Backward from a saved mask: dx[k] = dy[k] * (mask[k] != 0 ? 1 : 0). dx may equal dy.
template <class A>
void fake_quantize_backward_masked_loop(const std::uint8_t* mask, const float* dy, float* dx, std::size_t n) noexcept {
#if LOWBIT_HAS_XSIMD
    constexpr std::size_t B = 4 * fbatch<A>::size;
    std::size_t i = 0;
    for (; i + B <= n; i += B) fake_quantize_backward_masked_block<A>(mask + i, dy + i, dx + i);
    if (i < n) {
        alignas(64) std::uint8_t mt[B] = {};
        alignas(64) float dyt[B] = {};
        alignas(64) float dxt[B];
        std::memcpy(mt, mask + i, n - i);
        std::memcpy(dyt, dy + i, (n - i) * sizeof(float));
        fake_quantize_backward_masked_block<A>(mt, dyt, dxt);
        std::memcpy(dx + i, dxt, (n - i) * sizeof(float));
    }
#else
    (void)mask, (void)dy, (void)dx, (void)n;
#endif
}

}  // namespace detail

/// Per-tensor fake-quantize forward, y = dequantize(quantize(x)), plus the straight-through
/// mask (1/0 bytes, x.size() of them) when `mask` is non-empty; bit-identical to
/// lowbit::ref::fake_quantize (every format, profile and rounding; same contract and errors).
/// NaN x gives y = 0, +-Inf the range ends, both mask 0. y may alias x exactly (the mask is
/// always that of the input x).
template <class Arch = default_arch, class Scheme>
status fake_quantize(const Scheme& s, qparams qp, span<const float> x, span<float> y, span<std::uint8_t> mask = {}) {
    if constexpr (std::is_same<Arch, scalar_arch>::value || std::is_same<typename Scheme::format, s32>::value) {
        return ref::fake_quantize(s, qp, x, y, mask);  // s32: its range is not exact in float
    } else {
        if (s.rounding() == rounding::stochastic) return ref::fake_quantize(s, qp, x, y, mask);
        LOWBIT_DETAIL_TRY(s.validate());
        LOWBIT_DETAIL_TRY(lowbit::detail::check_per_tensor(s));
        LOWBIT_DETAIL_TRY(check_qparams(s, qp));
        LOWBIT_DETAIL_TRY(ref::detail_fq::check_sizes<Scheme>(x, y, mask));
        const detail::quant_consts c = detail::quant_consts::make(s, qp);
        if (mask.empty())
            detail::fake_quantize_loop<Arch, false>(c, x.data(), y.data(), nullptr, x.size());
        else
            detail::fake_quantize_loop<Arch, true>(c, x.data(), y.data(), mask.data(), x.size());
        return {};
    }
}

/// Per-tensor straight-through backward, dx = mask(x) ? dy : dy * 0 (a NaN dy stays NaN, a
/// masked-out negative dy gives -0.0); bit-identical to lowbit::ref::fake_quantize_backward
/// (same contract and errors). dx may alias dy exactly.
template <class Arch = default_arch, class Scheme>
status fake_quantize_backward(const Scheme& s, qparams qp, span<const float> x, span<const float> dy, span<float> dx) {
    if constexpr (std::is_same<Arch, scalar_arch>::value || std::is_same<typename Scheme::format, s32>::value) {
        return ref::fake_quantize_backward(s, qp, x, dy, dx);
    } else {
        if (s.rounding() == rounding::stochastic) return ref::fake_quantize_backward(s, qp, x, dy, dx);
        LOWBIT_DETAIL_TRY(s.validate());
        LOWBIT_DETAIL_TRY(lowbit::detail::check_per_tensor(s));
        LOWBIT_DETAIL_TRY(check_qparams(s, qp));
        LOWBIT_DETAIL_TRY(ref::detail_fq::check_grad_sizes<Scheme>(x, dy, dx));
        detail::fake_quantize_backward_loop<Arch>(detail::quant_consts::make(s, qp), x.data(), dy.data(), dx.data(),
                                                  x.size());
        return {};
    }
}

/// Straight-through backward from a mask saved by the forward: dx = mask != 0 ? dy : dy * 0;
/// bit-identical to lowbit::ref::fake_quantize_backward_masked (errors: sizes differ).
/// dx may alias dy exactly.
template <class Arch = default_arch>
status fake_quantize_backward_masked(span<const std::uint8_t> mask, span<const float> dy, span<float> dx) {
    if constexpr (std::is_same<Arch, scalar_arch>::value) {
        return ref::fake_quantize_backward_masked(mask, dy, dx);
    } else {
        LOWBIT_DETAIL_CHECK(dy.size() == mask.size(), errc::size_mismatch, "dy.size()", dy.size(),
                            "must equal mask.size()");
        LOWBIT_DETAIL_CHECK(dx.size() == mask.size(), errc::size_mismatch, "dx.size()", dx.size(),
                            "must equal mask.size()");
        detail::fake_quantize_backward_masked_loop<Arch>(mask.data(), dy.data(), dx.data(), mask.size());
        return {};
    }
}

}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_FAKE_QUANTIZE_HPP

/// Explicit instantiations (X empty) or declarations (X = extern) of this header's loops for
/// architecture A; used by LOWBIT_KERNELS_INSTANTIATE / LOWBIT_KERNELS_EXTERN (dispatch.hpp).
#define LOWBIT_DETAIL_FAKE_QUANTIZE_LOOPS(X, A)                                                                   \
    X template void detail::fake_quantize_loop<A, false>(const detail::quant_consts&, const float*, float*,        \
                                                         std::uint8_t*, std::size_t) noexcept;                     \
    X template void detail::fake_quantize_loop<A, true>(const detail::quant_consts&, const float*, float*,         \
                                                        std::uint8_t*, std::size_t) noexcept;                      \
    X template void detail::fake_quantize_backward_loop<A>(const detail::quant_consts&, const float*, const float*, \
                                                           float*, std::size_t) noexcept;                          \
    X template void detail::fake_quantize_backward_masked_loop<A>(const std::uint8_t*, const float*, float*,       \
                                                                  std::size_t) noexcept;
