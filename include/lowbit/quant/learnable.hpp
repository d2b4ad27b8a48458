// lowbit/quant/learnable.hpp: learnable fake-quantize for QAT: LSQ (learned step size,
// Esser et al. 2020) and LSQ+ (learned step size and offset, Bhalgat et al. 2020), with the
// forward and the gradients of torch 1.13's CPU ops, bit for bit per element:
//
//   torch._fake_quantize_learnable_per_tensor_affine(x, scale, zero_point, qmin, qmax, grad_factor)
//   torch._fake_quantize_learnable_per_channel_affine(x, scale, zero_point, axis, qmin, qmax, grad_factor)
//
// LSQ and LSQ+ are the same op: LSQ learns the scale only (its zero-point gradient is
// dropped), LSQ+ also learns the zero point as a float "offset". lsq_quantizer below holds
// the parameters and their gradient accumulators; the free functions take them explicitly.
//
// Forward (same as torch.fake_quantize_per_tensor_affine / _per_channel_affine, see
// core/fake_quantize.hpp), with the zero point rounded as torch's op does:
//     zf = clamp(rint(z), qmin, qmax)                        (rint: ties to even)
//     y  = (clamp(zf + rint(x * inv), qmin, qmax) - zf) * s,  inv = 1.0f / s
// Backward, per element, in float, exactly torch's CPU kernel (AVX2 build, where GCC
// contracts two expressions into fused multiply-adds; lowbit calls std::fma there and rounds
// every other operation separately, so no compiler flag changes the result):
//     zb = per tensor:  trunc(clamp(z + 0.5f, qmin, qmax))  (NOT zf: -1.7 -> -1, 2.5 -> 3,
//                                                             0.49999997 -> 1, as torch)
//          per channel: clamp(rint(z), qmin, qmax)           (same as the forward)
//     r  = rint(fma(x, inv, zb))                             (zb added before rounding)
//     r < qmin:  dx = dy * 0,  ds = (dy * (qmin - zb)) * g,  dz = ((-dy) * s) * g
//     r > qmax:  dx = dy * 0,  ds = (dy * (qmax - zb)) * g,  dz = ((-dy) * s) * g
//     else:      dx = dy,      ds = ((dy * fma(r - zb, s, -x)) * inv) * g,  dz = +0
// g is the grad factor: 1, or with LSQ's gradient scaling 1 / sqrt(numel * qmax) in double,
// rounded to float (lsq_grad_factor; numel is the whole tensor's, also per channel, as
// torch.ao.quantization._LearnableFakeQuantize). These are the derivatives of the
// straight-through surrogate y~ = s * (clamp(x / s + z + d, qmin, qmax) - z), where
// d = r - (x / s + z) is held constant (rounding treated as identity, stop-gradient):
// inside the range dy~/ds = r - z - x / s = (xfq - x) / s, dy~/dz = 0, dy~/dx = 1; clipped,
// dy~/ds = qmin|qmax - z, dy~/dz = -s, dy~/dx = 0. The mask of dx is the backward's (it uses
// zb, so it can differ from the forward's where zb != zf, as in torch).
//
// dscale = sum(ds), dzero_point = sum(dz): per tensor over all elements, per channel over all
// axes but the channel axis. torch sums its per-element float vectors with Tensor.sum(), a
// float32 cascade whose order is an implementation detail; lowbit accumulates the float terms
// in double in a fixed lane-blocked order and rounds once to float: term k of a channel (k
// counting its elements in memory order from 0) is added to double partial sum k mod 16
// (partials start at +0), then the 16 partials are added in order 0, 1, ..., 15 (double) and
// the total rounded to float (lsq_sum_lanes; the SIMD path reproduces this order exactly, so
// every ISA gives the same bits). The two agree within the float32 summation error bound
// (n - 1) * 2^-24 * sum|terms| (+ 1 ulp), which the golden test checks; the per-element terms
// are checked bit for bit. A NaN sum is the default quiet NaN (0x7fc00000), whatever NaN
// the terms held, so the bits are the same in every build.
//
// Speed: the backward runs a SIMD loop (xsimd, kernels::default_arch of the including
// translation unit) when that arch has a real fused multiply-add (AVX2 + FMA3, AVX-512), bit
// for bit the scalar spec lsq_element::grad per element and the sums above; elsewhere (SSE2,
// SSE4, no xsimd) the scalar loop. The forward is kernels::fake_quantize (bit-identical to
// the scalar quantizer) per run of one channel.
//
// Scale positivity. A learned scale can cross zero. Two ways are offered:
//   - clamp to eps (torch's _LearnableFakeQuantize: scale.clamp_(min=eps) before each forward,
//     eps = the scheme's eps, default 2^-23): lsq_clamp_scale, scale_parameterization::clamp_eps;
//   - a log parameterisation: the parameter is log_scale, scale = exp(log_scale) (float expf),
//     dlog_scale = dscale * scale: lsq_scale_from_log / lsq_log_scale_grad,
//     scale_parameterization::log.
// Every function here refuses a scale that is not finite and > 0 with a finite reciprocal.
//
// Non-finite input (torch 1.13 converts them to int64 with undefined behaviour): +Inf and -Inf
// are clipped above / below (the formulas above with r = +-Inf); NaN gives y = 0 (as
// core/quantize.hpp), dx = dy * 0, and NaN scale and zero-point contributions, so a NaN in the
// batch shows in the parameter gradients instead of vanishing.
//
// Only per-tensor and per-channel granularity (torch has no learnable per-group op); the
// scheme must use torch numerics (rounding half_even, profile torch or torch_fused). The
// scheme gives qmin / qmax (custom range and reduce_range included); the zero point is a
// float of any finite value (clamped as above). No heap anywhere; <cmath> for fma, sqrt, exp.
#ifndef LOWBIT_QUANT_LEARNABLE_HPP
#define LOWBIT_QUANT_LEARNABLE_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "../core/layout.hpp"
#include "../core/quantize.hpp"
#include "../core/rounding.hpp"
#include "../core/scheme.hpp"
#include "../core/span.hpp"
#include "../core/status.hpp"
#include "../kernels/arch.hpp"
#include "../kernels/fake_quantize.hpp"
#include "lane_sums.hpp"

namespace lowbit {

/// Gradient of one element of the learnable fake-quantize: input, scale and zero point.
struct lsq_grad {
    float dx = 0.0f;
    float dscale = 0.0f;
    float dzero_point = 0.0f;
};

/// Reduced parameter gradients of a per-tensor backward.
struct lsq_param_grads {
    float dscale = 0.0f;
    float dzero_point = 0.0f;
};

/// How a learnable scale is kept positive (see the file comment).
enum class scale_parameterization : std::uint8_t {
    clamp_eps,  ///< the parameter is the scale, clamped to eps before each forward (torch)
    log,        ///< the parameter is log(scale); scale = exp(log_scale)
};

/// torch's forward zero point: clamp(rint(z), qmin, qmax) (z finite).
constexpr float lsq_forward_zero_point(float z, std::int32_t qmin, std::int32_t qmax) noexcept {
    const float r = round_half_even(z);
    const float lo = static_cast<float>(qmin), hi = static_cast<float>(qmax);
    return r < lo ? lo : r > hi ? hi : r;
}

/// torch's per-tensor backward zero point: trunc(clamp(z + 0.5f, qmin, qmax)) (z finite).
constexpr float lsq_backward_zero_point(float z, std::int32_t qmin, std::int32_t qmax) noexcept {
    const float v = z + 0.5f;  // float addition, rounded, as torch
    const float lo = static_cast<float>(qmin), hi = static_cast<float>(qmax);
    const float c = v < lo ? lo : v > hi ? hi : v;
    return static_cast<float>(static_cast<std::int32_t>(c));  // |c| <= 2^31: exact truncation
}

/// LSQ's gradient scale 1 / sqrt(numel * quant_max), computed in double and rounded to float,
/// as _LearnableFakeQuantize(use_grad_scaling=True) passes it to torch's kernel.
/// Errors: numel == 0; quant_max <= 0 (torch divides by zero).
inline result<float> lsq_grad_factor(std::size_t numel, std::int32_t quant_max) {
    LOWBIT_DETAIL_CHECK(numel > 0, errc::invalid_argument, "numel", numel, "must be > 0");
    LOWBIT_DETAIL_CHECK(quant_max > 0, errc::invalid_argument, "quant_max", quant_max,
                        "must be > 0 for gradient scaling");
    return static_cast<float>(1.0 / std::sqrt(static_cast<double>(numel) * static_cast<double>(quant_max)));
}

/// max(scale, eps), torch's `scale.data.clamp_(min=eps)`. NaN stays NaN (and is then refused).
constexpr float lsq_clamp_scale(float scale, float eps) noexcept { return scale < eps ? eps : scale; }

/// scale = exp(log_scale) for the log parameterisation (float expf).
inline float lsq_scale_from_log(float log_scale) noexcept { return std::exp(log_scale); }

/// dL/dlog_scale = dL/dscale * scale (chain rule of scale = exp(log_scale)), one float product.
constexpr float lsq_log_scale_grad(float dscale, float scale) noexcept { return dscale * scale; }

/// One (scale, zero point) of the learnable backward, precomputed: the per-element spec of
/// torch's _fake_quantize_learnable_*_backward kernels (see the file comment).
struct lsq_element {
    float scale = 1.0f;
    float inv_scale = 1.0f;   ///< 1.0f / scale
    float zero_point = 0.0f;  ///< the backward's rounded zero point zb
    float qmin = 0.0f, qmax = 0.0f;
    float grad_factor = 1.0f;

    /// Per tensor: zb = lsq_backward_zero_point(z); per channel pass per_channel = true.
    static lsq_element make(float scale, float z, std::int32_t qmin, std::int32_t qmax, float grad_factor,
                            bool per_channel) noexcept {
        lsq_element e;
        e.scale = scale;
        e.inv_scale = 1.0f / scale;
        e.zero_point = per_channel ? lsq_forward_zero_point(z, qmin, qmax) : lsq_backward_zero_point(z, qmin, qmax);
        e.qmin = static_cast<float>(qmin);
        e.qmax = static_cast<float>(qmax);
        e.grad_factor = grad_factor;
        return e;
    }

    /// Gradients of one element for an upstream gradient dy.
    lsq_grad grad(float x, float dy) const noexcept {
        lsq_grad g;
        if (detail::is_nan(x)) {
            g.dx = dy * 0.0f;
            g.dscale = g.dzero_point = x;  // NaN
            return g;
        }
        const float r = round_half_even(std::fma(x, inv_scale, zero_point));
        if (r < qmin || r > qmax) {
            const float bound = r < qmin ? qmin : qmax;
            g.dx = dy * 0.0f;
            g.dzero_point = ((-dy) * scale) * grad_factor;
            g.dscale = (dy * (bound - zero_point)) * grad_factor;
        } else {
            g.dx = dy;  // not dy * 1.0f: a select keeps a signalling NaN's bits at every -O (core pass_gradient)
            g.dzero_point = 0.0f;
            const float diff = std::fma(r - zero_point, scale, -x);
            g.dscale = ((dy * diff) * inv_scale) * grad_factor;  // products only: nothing to contract
        }
        return g;
    }
};

namespace detail {
namespace lsq {

template <class Scheme>
status check_scheme(const Scheme& s) {
    LOWBIT_DETAIL_TRY(s.validate());
    LOWBIT_DETAIL_CHECK(s.profile() != profile::tflite, errc::invalid_argument, "profile",
                        static_cast<int>(s.profile()), "the learnable ops follow torch numerics, not tflite");
    LOWBIT_DETAIL_CHECK(s.rounding() == rounding::half_even, errc::invalid_argument, "rounding",
                        static_cast<int>(s.rounding()), "the learnable ops round half to even (torch)");
    LOWBIT_DETAIL_CHECK(s.granularity() != granularity::per_group, errc::invalid_argument, "granularity",
                        static_cast<int>(s.granularity()), "per_group has no learnable op (per_tensor or per_channel)");
    return {};
}

inline status check_scale(float scale) {
    LOWBIT_DETAIL_CHECK(scale > 0.0f && is_finite(scale) && is_finite(1.0f / scale), errc::invalid_argument, "scale",
                        scale, "must be finite and > 0 with a finite reciprocal (clamp it to eps, or use log_scale)");
    return {};
}

inline status check_zero_point(float z) {
    LOWBIT_DETAIL_CHECK(is_finite(z), errc::invalid_argument, "zero_point", z, "must be finite");
    return {};
}

inline status check_sizes(span<const float> x, span<const float> dy, span<float> dx) {
    LOWBIT_DETAIL_CHECK(dy.size() == x.size(), errc::size_mismatch, "dy.size()", dy.size(), "must equal x.size()");
    LOWBIT_DETAIL_CHECK(dx.size() == x.size(), errc::size_mismatch, "dx.size()", dx.size(), "must equal x.size()");
    return {};
}

// Channel parameters and a layout for the per-channel (or per-tensor, one entry) overloads.
template <class Scheme>
result<quant_layout> prepare(const Scheme& s, const shape& shp, span<const float> scales,
                             span<const float> zero_points, std::size_t x_size) {
    LOWBIT_DETAIL_TRY(check_scheme(s));
    const result<quant_layout> l = make_layout(s, shp);
    LOWBIT_DETAIL_TRY(l.status());
    LOWBIT_DETAIL_CHECK(x_size == l->numel, errc::size_mismatch, "x.size()", x_size, "must equal shape's numel");
    LOWBIT_DETAIL_CHECK(scales.size() == l->param_count, errc::size_mismatch, "scales.size()", scales.size(),
                        "must equal shape[axis] (1 for per_tensor)");
    LOWBIT_DETAIL_CHECK(zero_points.size() == l->param_count, errc::size_mismatch, "zero_points.size()",
                        zero_points.size(), "must equal scales.size()");
    for (std::size_t c = 0; c < scales.size(); ++c) {
        LOWBIT_DETAIL_TRY(check_scale(scales[c]));
        LOWBIT_DETAIL_TRY(check_zero_point(zero_points[c]));
    }
    return l;
}

// The dscale / dzero_point reduction order (file comment; quant/lane_sums.hpp).
using detail::sum_lanes;
struct partial_sums {
    lane_partials ds, dz;
    double total_ds() const noexcept { return ds.total(); }
    double total_dz() const noexcept { return dz.total(); }
};

// The spec: elements [0, n) of a run whose first term is term number `lane` (mod 16) of its
// channel. Returns the lane of the term after the run.
inline std::size_t backward_run_scalar(const lsq_element& e, const float* x, const float* dy, float* dx,
                                       std::size_t n, partial_sums& p, std::size_t lane) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        const lsq_grad g = e.grad(x[i], dy[i]);  // read before dx is written
        dx[i] = g.dx;
        p.ds.add(lane, g.dscale);
        p.dz.add(lane, g.dzero_point);
        lane = (lane + 1) % sum_lanes;
    }
    return lane;
}

#if LOWBIT_HAS_XSIMD
// Archs with a fused multiply-add instruction (fused_fma below). SSE2 / SSE4 / plain AVX2
// have none: the scalar spec runs there.
template <class A>
constexpr bool has_fused_fma() noexcept {
    return std::is_base_of<xsimd::avx512f, A>::value || std::is_base_of<xsimd::fma3<xsimd::avx2>, A>::value;
}

// a * b + c rounded once. Not xsimd::fma alone: xsimd 8.1 has no AVX-512 overload, so on
// avx512* it falls back to the generic a * b + c, which is fused only when the compiler
// contracts it (GCC -O2 with -ffp-contract=fast) and rounded twice at -O0 or with
// -ffp-contract=off. The intrinsic is one vfmadd in every build.
template <class A>
LOWBIT_FORCE_INLINE xsimd::batch<float, A> fused_fma(const xsimd::batch<float, A>& a, const xsimd::batch<float, A>& b,
                                                     const xsimd::batch<float, A>& c) noexcept {
#if defined(__AVX512F__)
    if constexpr (std::is_base_of<xsimd::avx512f, A>::value) {
        return _mm512_fmadd_ps(a, b, c);
    } else
#endif
    {
        static_assert(std::is_base_of<xsimd::fma3<xsimd::avx2>, A>::value, "fused_fma: no fused instruction");
        return xsimd::fma(a, b, c);  // xsimd's fma3 overload: _mm256_fmadd_ps
    }
}

// The per-element spec on one register: writes dx, returns the float ds / dz terms.
template <class A>
struct backward_consts {
    using B = xsimd::batch<float, A>;
    B inv, zb, sc, lo, hi, g, below_span, above_span;
    explicit backward_consts(const lsq_element& e) noexcept
        : inv(e.inv_scale), zb(e.zero_point), sc(e.scale), lo(e.qmin), hi(e.qmax), g(e.grad_factor),
          below_span(e.qmin - e.zero_point), above_span(e.qmax - e.zero_point) {}  // float subtractions, as the spec

    LOWBIT_FORCE_INLINE void run(const float* x, const float* dy, float* dx, B& dsv, B& dzv) const noexcept {
        const B zero(0.0f);
        const B xv = B::load_unaligned(x), dyv = B::load_unaligned(dy);
        const B r = xsimd::nearbyint(fused_fma<A>(xv, inv, zb));  // ties to even, as round_half_even
        const auto below = r < lo, above = r > hi;
        const auto clip = below | above;
        const auto nan = xsimd::isnan(xv);  // unordered compare (xsimd's != is ordered on AVX-512)
        const B dxv = xsimd::select(clip | nan, dyv * zero, dyv);
        const B dz_clip = xsimd::select(clip, ((-dyv) * sc) * g, zero);
        // in range ((dy * diff) * inv) * g, clipped (dy * span) * g: one product dy * (diff or
        // span), the * inv only where in range, one * g (a select commutes with them)
        const B diff = fused_fma<A>(r - zb, sc, -xv);
        const B t = dyv * xsimd::select(clip, xsimd::select(below, below_span, above_span), diff);
        dsv = xsimd::select(nan, xv, xsimd::select(clip, t, t * inv) * g);
        dzv = xsimd::select(nan, xv, dz_clip);
        dxv.store_unaligned(dx);
    }
};

// A run starting at lane 0, SIMD; returns the lane after it. Same bits as backward_run_scalar.
template <class A>
std::size_t backward_run_simd(const lsq_element& e, const float* x, const float* dy, float* dx, std::size_t n,
                              partial_sums& p) noexcept {
    using B = xsimd::batch<float, A>;
    constexpr std::size_t L = B::size;
    static_assert(sum_lanes % L == 0, "a block of 16 lanes is whole registers");
    const backward_consts<A> k(e);
    std::size_t i = 0;
    if (n >= sum_lanes) {
        lane_registers<A> ds(p.ds), dz(p.dz);
        for (; i + sum_lanes <= n; i += sum_lanes)
            for (std::size_t r = 0; r < sum_lanes / L; ++r) {
                B dsv, dzv;
                k.run(x + i + r * L, dy + i + r * L, dx + i + r * L, dsv, dzv);
                ds.add(r, dsv);
                dz.add(r, dzv);
            }
        ds.store(p.ds);
        dz.store(p.dz);
    }
    const std::size_t rem = n - i;
    if (rem != 0) {  // through buffers: the spec's additions for lanes 0 .. rem - 1 only
        alignas(64) float xt[sum_lanes] = {}, dyt[sum_lanes] = {}, dxt[sum_lanes], ds[sum_lanes], dz[sum_lanes];
        for (std::size_t j = 0; j < rem; ++j) {
            xt[j] = x[i + j];
            dyt[j] = dy[i + j];
        }
        for (std::size_t r = 0; r < sum_lanes / L; ++r) {
            B dsv, dzv;
            k.run(xt + r * L, dyt + r * L, dxt + r * L, dsv, dzv);
            dsv.store_aligned(ds + r * L);
            dzv.store_aligned(dz + r * L);
        }
        for (std::size_t j = 0; j < rem; ++j) {
            dx[i + j] = dxt[j];
            p.ds.add(j, ds[j]);
            p.dz.add(j, dz[j]);
        }
    }
    return rem;
}
#endif

// One run of a channel: the SIMD loop where Arch has a fused multiply-add and the run starts
// at lane 0, else the spec. Same bits either way, in every build (tests/quant/simd_learnable.cpp
// at -O0 and -O2 with -ffp-contract=off, and the kernel determinism probes).
template <class Arch>
std::size_t backward_run(const lsq_element& e, const float* x, const float* dy, float* dx, std::size_t n,
                         partial_sums& p, std::size_t lane) noexcept {
#if LOWBIT_HAS_XSIMD
    if constexpr (!std::is_same<Arch, kernels::scalar_arch>::value) {
        if constexpr (has_fused_fma<Arch>()) {
            if (lane == 0) return backward_run_simd<Arch>(e, x, dy, dx, n, p);
        }
    }
#endif
    return backward_run_scalar(e, x, dy, dx, n, p, lane);
}

// The backward over a layout, channel by channel (no buffer): writes dx and calls
// done(c, sum of ds, sum of dz) per channel, summed in double in the lane-blocked order.
template <class Arch = kernels::default_arch, class Done>
void backward_channels(const quant_layout& lay, span<const float> scales, span<const float> zero_points,
                       std::int32_t qmin, std::int32_t qmax, float grad_factor, span<const float> x,
                       span<const float> dy, span<float> dx, Done done) noexcept {
    const bool per_channel = lay.granularity == granularity::per_channel;
    const std::size_t outer = per_channel ? lay.outer : 1, channels = per_channel ? lay.channels : 1;
    const std::size_t inner = per_channel ? lay.inner : lay.numel;
    for (std::size_t c = 0; c < channels; ++c) {
        const lsq_element e = lsq_element::make(scales[c], zero_points[c], qmin, qmax, grad_factor, per_channel);
        partial_sums p;
        std::size_t lane = 0;
        for (std::size_t o = 0; o < outer; ++o) {
            const std::size_t base = (o * channels + c) * inner;
            lane = backward_run<Arch>(e, x.data() + base, dy.data() + base, dx.data() + base, inner, p, lane);
        }
        done(c, p.total_ds(), p.total_dz());
    }
}

// The forward's element quantizer for scale s and float zero point z.
template <class Scheme>
element_quantizer forward_element(const Scheme& s, float scale, float z) noexcept {
    const auto zf = static_cast<std::int32_t>(lsq_forward_zero_point(z, s.qmin(), s.qmax()));
    element_quantizer e = element_quantizer::make(s, qparams{scale, zf});
    e.divide = false;  // torch numerics even for torch_fused (same formula)
    return e;
}

// The forward of one run with one (scale, zero point), per-tensor scheme: the SIMD
// fake-quantize (bit-identical to forward_element's dequantize(quantize(x)): both multiply by
// 1.0f / scale and round half to even).
template <class Scheme>
status forward_run(const Scheme& s, float scale, float z, span<const float> x, span<float> y) {
    const auto zf = static_cast<std::int32_t>(lsq_forward_zero_point(z, s.qmin(), s.qmax()));
    return kernels::fake_quantize(s, qparams{scale, zf}, x, y);
}

}  // namespace lsq
}  // namespace detail

// ---------------------------------------------------------------------------------------
// per tensor

/// LSQ / LSQ+ forward, same as torch._fake_quantize_learnable_per_tensor_affine: y =
/// fake_quantize(x) with scale and zero point clamp(rint(zero_point)). y may alias x exactly.
/// Errors: invalid scheme (or per_channel / per_group, or non-torch numerics); scale not
/// finite and > 0; zero_point not finite; y.size() != x.size().
template <class Scheme>
status lsq_forward(const Scheme& s, float scale, float zero_point, span<const float> x, span<float> y) {
    LOWBIT_DETAIL_TRY(detail::lsq::check_scheme(s));
    LOWBIT_DETAIL_TRY(detail::check_per_tensor(s));
    LOWBIT_DETAIL_TRY(detail::lsq::check_scale(scale));
    LOWBIT_DETAIL_TRY(detail::lsq::check_zero_point(zero_point));
    LOWBIT_DETAIL_CHECK(y.size() == x.size(), errc::size_mismatch, "y.size()", y.size(), "must equal x.size()");
    return detail::lsq::forward_run(s, scale, zero_point, x, y);
}

/// LSQ / LSQ+ backward, same as torch's _fake_quantize_learnable_per_tensor_affine_backward:
/// writes dx and returns {dscale, dzero_point} (sums of the per-element terms, see the file
/// comment). grad_factor: 1, or lsq_grad_factor(x.size(), s.qmax()); any finite value.
/// dx may alias dy or x exactly. An empty x gives {0, 0}. Errors: as lsq_forward, plus
/// grad_factor not finite, dy / dx sizes.
template <class Scheme>
result<lsq_param_grads> lsq_backward(const Scheme& s, float scale, float zero_point, float grad_factor,
                                     span<const float> x, span<const float> dy, span<float> dx) {
    LOWBIT_DETAIL_TRY(detail::lsq::check_scheme(s));
    LOWBIT_DETAIL_TRY(detail::check_per_tensor(s));
    LOWBIT_DETAIL_TRY(detail::lsq::check_scale(scale));
    LOWBIT_DETAIL_TRY(detail::lsq::check_zero_point(zero_point));
    LOWBIT_DETAIL_CHECK(detail::is_finite(grad_factor), errc::invalid_argument, "grad_factor", grad_factor,
                        "must be finite");
    LOWBIT_DETAIL_TRY(detail::lsq::check_sizes(x, dy, dx));
    const lsq_element e = lsq_element::make(scale, zero_point, s.qmin(), s.qmax(), grad_factor, false);
    detail::lsq::partial_sums p;
    (void)detail::lsq::backward_run<kernels::default_arch>(e, x.data(), dy.data(), dx.data(), x.size(), p, 0);
    return lsq_param_grads{static_cast<float>(p.total_ds()), static_cast<float>(p.total_dz())};
}

// ---------------------------------------------------------------------------------------
// per channel

/// Per-channel LSQ forward, same as torch._fake_quantize_learnable_per_channel_affine over a
/// tensor of `shp` (layout.hpp) with the scheme's axis: channel c uses scales[c] and
/// clamp(rint(zero_points[c])). A per_tensor scheme takes one-entry spans. y may alias x.
/// Errors: as lsq_forward, for every channel; layout errors; span sizes.
template <class Scheme>
status lsq_forward(const Scheme& s, const shape& shp, span<const float> scales, span<const float> zero_points,
                   span<const float> x, span<float> y) {
    const result<quant_layout> l = detail::lsq::prepare(s, shp, scales, zero_points, x.size());
    LOWBIT_DETAIL_TRY(l.status());
    LOWBIT_DETAIL_CHECK(y.size() == x.size(), errc::size_mismatch, "y.size()", y.size(), "must equal x.size()");
    const quant_layout lay = *l;
    const bool per_channel = lay.granularity == granularity::per_channel;
    const std::size_t outer = per_channel ? lay.outer : 1, channels = per_channel ? lay.channels : 1;
    const std::size_t inner = per_channel ? lay.inner : lay.numel;
    for (std::size_t o = 0; o < outer; ++o)
        for (std::size_t c = 0; c < channels; ++c) {
            const std::size_t base = (o * channels + c) * inner;
            LOWBIT_DETAIL_TRY(detail::lsq::forward_run(s.per_tensor(), scales[c], zero_points[c],
                                                       x.subspan(base, inner), y.subspan(base, inner)));
        }
    return {};
}

/// Per-channel LSQ backward, same as torch's _fake_quantize_learnable_per_channel_affine_backward:
/// writes dx, and dscales[c] / dzero_points[c] = the sums of channel c's per-element terms
/// (overwritten, not accumulated; each summed in double, rounded once). grad_factor as above
/// with numel = the whole tensor's. dx may alias dy or x exactly. Errors: as lsq_forward
/// (per channel), grad_factor not finite, sizes of dy, dx, dscales, dzero_points.
template <class Scheme>
status lsq_backward(const Scheme& s, const shape& shp, span<const float> scales, span<const float> zero_points,
                    float grad_factor, span<const float> x, span<const float> dy, span<float> dx,
                    span<float> dscales, span<float> dzero_points) {
    const result<quant_layout> l = detail::lsq::prepare(s, shp, scales, zero_points, x.size());
    LOWBIT_DETAIL_TRY(l.status());
    LOWBIT_DETAIL_CHECK(detail::is_finite(grad_factor), errc::invalid_argument, "grad_factor", grad_factor,
                        "must be finite");
    LOWBIT_DETAIL_TRY(detail::lsq::check_sizes(x, dy, dx));
    LOWBIT_DETAIL_CHECK(dscales.size() == scales.size(), errc::size_mismatch, "dscales.size()", dscales.size(),
                        "must equal scales.size()");
    LOWBIT_DETAIL_CHECK(dzero_points.size() == scales.size(), errc::size_mismatch, "dzero_points.size()",
                        dzero_points.size(), "must equal scales.size()");
    detail::lsq::backward_channels(*l, scales, zero_points, s.qmin(), s.qmax(), grad_factor, x, dy, dx,
                                   [&](std::size_t c, double ds, double dz) {
                                       dscales[c] = static_cast<float>(ds);
                                       dzero_points[c] = static_cast<float>(dz);
                                   });
    return {};
}

/// scales[c] = exp(log_scales[c]) for the log parameterisation. Errors: sizes differ.
inline status lsq_scales_from_log(span<const float> log_scales, span<float> scales) {
    LOWBIT_DETAIL_CHECK(scales.size() == log_scales.size(), errc::size_mismatch, "scales.size()", scales.size(),
                        "must equal log_scales.size()");
    for (std::size_t c = 0; c < scales.size(); ++c) scales[c] = lsq_scale_from_log(log_scales[c]);
    return {};
}

/// dlog_scales[c] = dscales[c] * scales[c]. Errors: sizes differ.
inline status lsq_log_scale_grads(span<const float> dscales, span<const float> scales, span<float> dlog_scales) {
    LOWBIT_DETAIL_CHECK(scales.size() == dscales.size(), errc::size_mismatch, "scales.size()", scales.size(),
                        "must equal dscales.size()");
    LOWBIT_DETAIL_CHECK(dlog_scales.size() == dscales.size(), errc::size_mismatch, "dlog_scales.size()",
                        dlog_scales.size(), "must equal dscales.size()");
    for (std::size_t c = 0; c < dscales.size(); ++c) dlog_scales[c] = lsq_log_scale_grad(dscales[c], scales[c]);
    return {};
}

// ---------------------------------------------------------------------------------------
// stateful quantizers

/// A per-tensor learnable quantizer: the parameters, their gradient accumulators and the
/// training switches, as torch's _LearnableFakeQuantize (per tensor, learning enabled).
///
///   lowbit::lsq_quantizer<lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>> q(s, 0.05f);
///   q.forward(x, y);  ...  q.backward(x, dy, dx);  // dscale accumulates
///   q.scale -= lr * q.dscale;  q.zero_grad();
///
/// LSQ (learn_zero_point = false): zero_point is fixed (for a symmetric scheme the scheme's
/// symmetric_zero_point(): 0 for signed formats, as torch's module; for unsigned formats torch's
/// module forces 0 while lowbit keeps the mid-range point, set zero_point = 0 to match torch).
/// LSQ+ (learn_zero_point = true): zero_point is a learned float, dzero_point accumulates.
/// grad_scaling: g = lsq_grad_factor(x.size(), qmax) (LSQ's 1 / sqrt(numel * qmax)), else 1.
/// parameterization clamp_eps: forward() first clamps `scale` to eps (torch); log: the learned
/// parameter is `log_scale`, forward() sets scale = exp(log_scale), backward() accumulates
/// dlog_scale = dscale_of_this_call * scale as well as dscale. Accumulation is a float
/// addition per call (as torch's .grad +=).
template <class Scheme>
struct lsq_quantizer {
    Scheme scheme{};
    float scale = 1.0f;
    float zero_point = 0.0f;
    float log_scale = 0.0f;
    float dscale = 0.0f;
    float dzero_point = 0.0f;
    float dlog_scale = 0.0f;
    bool learn_zero_point = false;
    bool grad_scaling = true;
    scale_parameterization parameterization = scale_parameterization::clamp_eps;

    lsq_quantizer() = default;
    explicit lsq_quantizer(const Scheme& s, float initial_scale = 1.0f, bool learn_offset = false,
                           scale_parameterization p = scale_parameterization::clamp_eps)
        : scheme(s),
          scale(initial_scale),
          zero_point(Scheme::sym == symmetry::affine ? 0.0f : static_cast<float>(s.symmetric_zero_point())),
          log_scale(p == scale_parameterization::log ? std::log(initial_scale) : 0.0f),
          learn_zero_point(learn_offset),
          parameterization(p) {}

    void zero_grad() noexcept { dscale = dzero_point = dlog_scale = 0.0f; }

    /// The scale the next forward uses (after clamping or exp), without changing anything.
    float effective_scale() const noexcept {
        return parameterization == scale_parameterization::log ? lsq_scale_from_log(log_scale)
                                                               : lsq_clamp_scale(scale, scheme.eps());
    }

    /// Forward: updates `scale` (clamp or exp), then lsq_forward. Errors as lsq_forward.
    status forward(span<const float> x, span<float> y) {
        scale = effective_scale();
        return lsq_forward(scheme, scale, zero_point, x, y);
    }

    /// Backward with the current scale (call forward first): writes dx, accumulates the
    /// gradients. Errors as lsq_backward (nothing accumulated then).
    status backward(span<const float> x, span<const float> dy, span<float> dx) {
        float g = 1.0f;
        if (grad_scaling) {
            const result<float> gf = lsq_grad_factor(x.size(), scheme.qmax());
            LOWBIT_DETAIL_TRY(gf.status());
            g = *gf;
        }
        const result<lsq_param_grads> r = lsq_backward(scheme, scale, zero_point, g, x, dy, dx);
        LOWBIT_DETAIL_TRY(r.status());
        dscale += r->dscale;
        if (parameterization == scale_parameterization::log) dlog_scale += lsq_log_scale_grad(r->dscale, scale);
        if (learn_zero_point) dzero_point += r->dzero_point;
        return {};
    }

    /// The (scale, zero-point) to export after training, as _LearnableFakeQuantize's
    /// calculate_qparams: effective scale, clamp(rint(zero_point)). Errors: invalid scale /
    /// zero_point.
    result<qparams> export_qparams() const {
        const float sc = effective_scale();
        LOWBIT_DETAIL_TRY(detail::lsq::check_scale(sc));
        LOWBIT_DETAIL_TRY(detail::lsq::check_zero_point(zero_point));
        return qparams{sc, static_cast<std::int32_t>(lsq_forward_zero_point(zero_point, scheme.qmin(), scheme.qmax()))};
    }
};

/// A per-channel learnable quantizer over caller-owned parameter and gradient spans (one
/// entry per channel of the scheme's axis; no heap). forward() clamps scales to eps in place
/// (torch); backward() adds this call's per-channel sums to dscales / dzero_points (the latter
/// only when learn_zero_point). For a log parameterisation keep log_scales yourself and use
/// lsq_scales_from_log / lsq_log_scale_grads around the calls.
template <class Scheme>
struct lsq_channel_quantizer {
    Scheme scheme{};
    span<float> scales;
    span<float> zero_points;
    span<float> dscales;
    span<float> dzero_points;
    bool learn_zero_point = false;
    bool grad_scaling = true;

    void zero_grad() noexcept {
        for (float& v : dscales) v = 0.0f;
        for (float& v : dzero_points) v = 0.0f;
    }

    /// Clamps every scale to eps, then the per-channel lsq_forward over `shp`.
    status forward(const shape& shp, span<const float> x, span<float> y) {
        for (float& v : scales) v = lsq_clamp_scale(v, scheme.eps());
        return lsq_forward(scheme, shp, scales, zero_points, x, y);
    }

    /// Per-channel backward; accumulates. Errors as lsq_backward (nothing accumulated then).
    status backward(const shape& shp, span<const float> x, span<const float> dy, span<float> dx) {
        LOWBIT_DETAIL_CHECK(dscales.size() == scales.size(), errc::size_mismatch, "dscales.size()", dscales.size(),
                            "must equal scales.size()");
        LOWBIT_DETAIL_CHECK(dzero_points.size() == scales.size(), errc::size_mismatch, "dzero_points.size()",
                            dzero_points.size(), "must equal scales.size()");
        float g = 1.0f;
        if (grad_scaling) {
            const result<float> gf = lsq_grad_factor(x.size(), scheme.qmax());
            LOWBIT_DETAIL_TRY(gf.status());
            g = *gf;
        }
        const result<quant_layout> l = detail::lsq::prepare(scheme, shp, scales, zero_points, x.size());
        LOWBIT_DETAIL_TRY(l.status());
        LOWBIT_DETAIL_TRY(detail::lsq::check_sizes(x, dy, dx));
        detail::lsq::backward_channels(*l, scales, zero_points, scheme.qmin(), scheme.qmax(), g, x, dy, dx,
                                       [&](std::size_t c, double ds, double dz) {
                                           dscales[c] += static_cast<float>(ds);
                                           if (learn_zero_point) dzero_points[c] += static_cast<float>(dz);
                                       });
        return {};
    }
};

}  // namespace lowbit

#endif  // LOWBIT_QUANT_LEARNABLE_HPP
