// lowbit/quant/pact.hpp: PACT, parameterized clipping activation (Choi et al. 2018,
// "PACT: Parameterized Clipping Activation for Quantized Neural Networks"): an activation
// quantizer whose clipping level alpha is learned.
//
// Forward, on an unsigned scheme with quant_min 0 (u8, u4, or a custom [0, n] range), n = qmax:
//     s = f32(alpha / n)                           (float division)
//     y = clamp(rint(clamp(x, 0, alpha) * inv), 0, n) * s,   inv = 1.0f / s
// which equals lowbit's torch fake-quantize (core/fake_quantize.hpp) with qparams {s, 0}:
// the quantizer's own clamp to [0, n] does the clipping, because rint(alpha * inv) = n
// (alpha * inv is within a few ulps of n). So y is exactly
// ref::fake_quantize(scheme, {alpha / n, 0}, x) and lies on the grid {0, s, ..., n * s}.
//
// Backward, the paper's straight-through estimator (its eqs. 2-3: the rounding is treated as
// identity, dy_q/dy = 1, so the gradients are those of the clip y = clamp(x, 0, alpha)):
//     dx     = dy * (0 <= x < alpha ? 1 : 0)
//     dalpha = sum of dy over x >= alpha
// Each element's dy goes to exactly one of x or alpha. At x == alpha it goes to alpha (the
// paper's "x in [alpha, +inf)"); torch's autograd of torch.clamp(x, 0, alpha_tensor) would
// send it to x instead. At x == 0 it goes to x (the clip's [0, alpha] range is closed at 0, as
// torch.clamp's gradient). The quantization-error term (the derivative of the rounding grid's
// spacing alpha / n with respect to alpha, which LSQ's scale gradient keeps) is NOT included,
// as in the paper; use lsq_quantizer (quant/learnable.hpp) with a u8/u4 scheme for that.
// dalpha is accumulated in double in the fixed lane order of quant/lane_sums.hpp (term k ->
// partial k mod 16) and rounded once to float, so the SIMD loop (AVX2 and wider, kernels::
// default_arch of the including translation unit) and the scalar loop give the same bits.
//
// Non-finite x: +Inf counts as x >= alpha (dalpha += dy, y = alpha's grid top); -Inf as
// below 0 (y = 0, no gradient); NaN gives y = 0, dx = dy * 0, and dalpha becomes NaN.
// alpha must be finite and > 0 with alpha / n > 0 and finite reciprocal; keep it positive in
// training with pact_clamp_alpha (clamp to eps), as torch's LSQ does with its scale.
#ifndef LOWBIT_QUANT_PACT_HPP
#define LOWBIT_QUANT_PACT_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../core/fake_quantize.hpp"
#include "../core/quantize.hpp"
#include "../core/scheme.hpp"
#include "../core/span.hpp"
#include "../core/status.hpp"
#include "../kernels/fake_quantize.hpp"
#include "lane_sums.hpp"

namespace lowbit {

namespace detail {
namespace pact {

template <class Scheme>
status check(const Scheme& s, float alpha) {
    static_assert(!Scheme::format::is_signed, "lowbit::pact: PACT quantizes on [0, alpha]: use an unsigned format");
    LOWBIT_DETAIL_TRY(s.validate());
    LOWBIT_DETAIL_TRY(check_per_tensor(s));
    LOWBIT_DETAIL_CHECK(s.qmin() == 0, errc::invalid_argument, "quant_min", s.qmin(), "must be 0 for PACT");
    LOWBIT_DETAIL_CHECK(alpha > 0.0f && is_finite(alpha), errc::invalid_argument, "alpha", alpha,
                        "must be finite and > 0 (clamp it with pact_clamp_alpha)");
    const float sc = alpha / static_cast<float>(s.qmax());
    LOWBIT_DETAIL_CHECK(sc > 0.0f && is_finite(1.0f / sc), errc::invalid_argument, "alpha", alpha,
                        "alpha / quant_max must be > 0 with a finite reciprocal (not denormal)");
    return {};
}

// The spec on elements [0, n) whose first term is term `lane` of the sum: dx, and the dalpha
// term of each element (NaN x: x; x >= alpha: dy; else nothing, i.e. +0). Returns the next lane.
inline std::size_t backward_scalar(float alpha, const float* x, const float* dy, float* dx, std::size_t n,
                                   lane_partials& p, std::size_t lane) noexcept {
    for (std::size_t k = 0; k < n; ++k) {
        const float xk = x[k], g = dy[k];  // read before dx is written (dx may alias)
        const bool inside = xk >= 0.0f && xk < alpha;
        if (is_nan(xk)) p.add(lane, xk);
        else if (xk >= alpha) p.add(lane, g);
        dx[k] = inside ? g : g * 0.0f;  // a select: the same bits at every -O (core pass_gradient)
        lane = (lane + 1) % sum_lanes;
    }
    return lane;
}

#if LOWBIT_HAS_XSIMD
// Whole blocks of 16 from lane 0 in SIMD, the tail by the spec: the same bits.
template <class A>
void backward_simd(float alpha, const float* x, const float* dy, float* dx, std::size_t n, lane_partials& p) noexcept {
    using B = xsimd::batch<float, A>;
    constexpr std::size_t L = B::size;
    const B a(alpha), zero(0.0f);
    std::size_t i = 0;
    if (n >= sum_lanes) {
        lane_registers<A> acc(p);
        for (; i + sum_lanes <= n; i += sum_lanes)
            for (std::size_t r = 0; r < sum_lanes / L; ++r) {
                const B xv = B::load_unaligned(x + i + r * L), dyv = B::load_unaligned(dy + i + r * L);
                const auto inside = (xv >= zero) & (xv < a);
                const B term = xsimd::select(xsimd::isnan(xv), xv, xsimd::select(xv >= a, dyv, zero));
                xsimd::select(inside, dyv, dyv * zero).store_unaligned(dx + i + r * L);
                acc.add(r, term);
            }
        acc.store(p);
    }
    (void)backward_scalar(alpha, x + i, dy + i, dx + i, n - i, p, 0);
}
#endif

// The SIMD loop where Arch has lane registers (AVX2 and wider), else the spec.
template <class Arch>
void backward(float alpha, const float* x, const float* dy, float* dx, std::size_t n, lane_partials& p) noexcept {
#if LOWBIT_HAS_XSIMD
    if constexpr (!std::is_same<Arch, kernels::scalar_arch>::value) {
        if constexpr (has_lane_registers<Arch>()) {
            backward_simd<Arch>(alpha, x, dy, dx, n, p);
            return;
        }
    }
#endif
    (void)backward_scalar(alpha, x, dy, dx, n, p, 0);
}

}  // namespace pact
}  // namespace detail

/// The quantization step of PACT: f32(alpha / quant_max).
template <class Scheme>
constexpr float pact_scale(const Scheme& s, float alpha) noexcept {
    return alpha / static_cast<float>(s.qmax());
}

/// max(alpha, eps): keeps a learned alpha positive (eps e.g. the scheme's eps()).
constexpr float pact_clamp_alpha(float alpha, float eps) noexcept { return alpha < eps ? eps : alpha; }

/// PACT forward (see the file comment): y = fake_quantize(clamp(x, 0, alpha)) on the grid of
/// step alpha / qmax. If `mask` is non-empty (x.size() bytes) it receives the dx mask
/// (1 where 0 <= x < alpha) for pact_backward_masked. y may alias x exactly.
/// Errors: scheme invalid, per-channel, or quant_min != 0; alpha not finite and > 0 (or a
/// denormal step); y / mask sizes.
template <class Scheme>
status pact_forward(const Scheme& s, float alpha, span<const float> x, span<float> y, span<std::uint8_t> mask = {}) {
    LOWBIT_DETAIL_TRY(detail::pact::check(s, alpha));
    LOWBIT_DETAIL_CHECK(y.size() == x.size(), errc::size_mismatch, "y.size()", y.size(), "must equal x.size()");
    LOWBIT_DETAIL_CHECK(mask.empty() || mask.size() == x.size(), errc::size_mismatch, "mask.size()", mask.size(),
                        "must be 0 (no mask) or x.size()");
    // the mask first: y may be x
    for (std::size_t k = 0; k < mask.size(); ++k) mask[k] = (x[k] >= 0.0f && x[k] < alpha) ? 1 : 0;
    return kernels::fake_quantize(s, qparams{pact_scale(s, alpha), 0}, x, y);  // exactly ref's (file comment)
}

/// PACT backward: dx = dy * (0 <= x < alpha), returns dalpha = sum of dy where x >= alpha
/// (NaN if any x is NaN; summed as the file comment says). dx may alias dy or x exactly.
/// An empty x gives 0.
/// Errors: as pact_forward; dy / dx sizes.
template <class Scheme>
result<float> pact_backward(const Scheme& s, float alpha, span<const float> x, span<const float> dy, span<float> dx) {
    LOWBIT_DETAIL_TRY(detail::pact::check(s, alpha));
    LOWBIT_DETAIL_CHECK(dy.size() == x.size(), errc::size_mismatch, "dy.size()", dy.size(), "must equal x.size()");
    LOWBIT_DETAIL_CHECK(dx.size() == x.size(), errc::size_mismatch, "dx.size()", dx.size(), "must equal x.size()");
    detail::lane_partials p;
    detail::pact::backward<kernels::default_arch>(alpha, x.data(), dy.data(), dx.data(), x.size(), p);
    return static_cast<float>(p.total());
}

/// A PACT activation quantizer: alpha, its gradient accumulator, and eps for positivity.
///
///   lowbit::pact_quantizer<lowbit::scheme<lowbit::u4>> act(lowbit::scheme<lowbit::u4>{}, 6.0f);
///   act.forward(x, y);  ...  act.backward(x, dy, dx);  act.alpha -= lr * act.dalpha;  act.zero_grad();
template <class Scheme>
struct pact_quantizer {
    Scheme scheme{};
    float alpha = 10.0f;  ///< the paper's initial value
    float dalpha = 0.0f;

    pact_quantizer() = default;
    explicit pact_quantizer(const Scheme& s, float initial_alpha = 10.0f) : scheme(s), alpha(initial_alpha) {}

    void zero_grad() noexcept { dalpha = 0.0f; }

    /// Clamps alpha to the scheme's eps, then pact_forward.
    status forward(span<const float> x, span<float> y, span<std::uint8_t> mask = {}) {
        alpha = pact_clamp_alpha(alpha, scheme.eps());
        return pact_forward(scheme, alpha, x, y, mask);
    }

    /// pact_backward, adding its dalpha to the accumulator (a float addition).
    status backward(span<const float> x, span<const float> dy, span<float> dx) {
        const result<float> r = pact_backward(scheme, alpha, x, dy, dx);
        LOWBIT_DETAIL_TRY(r.status());
        dalpha += *r;
        return {};
    }

    /// The qparams to export after training: {alpha / qmax, 0}.
    qparams export_qparams() const noexcept { return {pact_scale(scheme, alpha), 0}; }
};

}  // namespace lowbit

#endif  // LOWBIT_QUANT_PACT_HPP
