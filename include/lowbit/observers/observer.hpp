// lowbit/observers/observer.hpp: what every observer shares: its kind and configuration tag
// (for merge and save/load), the statistics it reports, and the batch scan they all start
// with.
//
// An observer watches batches of a tensor (observe), keeps a small state, and turns it into
// quantization parameters for its scheme (qparams). Observers are plain values: copy them,
// give one to each thread or process, then merge() or save()/load() to combine - the merged
// result is the one a single observer would have reached (see each observer for what that
// means exactly). No heap: per-channel observers keep their state in a caller buffer.
//
// Batches are strided views (lowbit::strided_view<const float>, core/strided.hpp): a span, a
// shape + span (contiguous row-major), or any permuted / sliced / negatively strided view;
// per-channel observers take the channel axis from their scheme (scheme.per_channel(axis)),
// fixed at construction. Observing a view gives bit for bit the state (and save() bytes and
// qparams) of observing a contiguous copy of it: every reduction an observer applies to a
// batch is order-independent (min / max with +0.0 for a zero result, integer counts).
//
// Layering: core <- kernels <- observers. Observers reduce batches with the SIMD kernels of
// lowbit/kernels/reduce.hpp (kernels::min_max, kernels::histogram) at the including file's
// compile-time architecture (kernels::default_arch); without xsimd (or with LOWBIT_NO_XSIMD)
// those are the lowbit::ref loops, so a firmware build stays freestanding (no heap, no
// exceptions required, no xsimd). Results are the same bits for every architecture. As with
// any inline code, compile the observers of one program with one set of ISA flags (-mavx2 ...):
// their member functions are not templates on the architecture, so the linker keeps one copy.
#ifndef LOWBIT_OBSERVERS_OBSERVER_HPP
#define LOWBIT_OBSERVERS_OBSERVER_HPP

#include <cstddef>
#include <cstdint>
#include <limits>

#include "../core/layout.hpp"
#include "../core/qparams.hpp"
#include "../core/scheme.hpp"
#include "../core/span.hpp"
#include "../core/status.hpp"
#include "../core/strided.hpp"
#include "../kernels/reduce.hpp"
#include "state.hpp"

namespace lowbit {

/// Which observer wrote a saved state.
enum class observer_kind : std::uint16_t {
    minmax = 1,
    moving_average_minmax = 2,
    per_channel_minmax = 3,
    per_channel_moving_average_minmax = 4,
    histogram = 5,
    percentile = 6,
    mse = 7,
    entropy = 8,
    fixed_qparams = 9,
};

/// What an observer has seen.
struct observer_stats {
    float min = std::numeric_limits<float>::infinity();    ///< smallest value observed (all channels)
    float max = -std::numeric_limits<float>::infinity();   ///< largest value observed
    std::uint64_t count = 0;                                ///< elements observed
    std::uint64_t batches = 0;                              ///< observe() calls that succeeded
};

namespace detail {

/// Hash of everything in a scheme that changes qparams.
template <class Scheme>
constexpr config_hash scheme_config(const Scheme& s) noexcept {
    config_hash h;
    h.add(static_cast<std::uint64_t>(Scheme::format::id))
        .add(static_cast<std::uint64_t>(Scheme::sym))
        .add(static_cast<std::uint64_t>(static_cast<std::uint32_t>(s.qmin())))
        .add(static_cast<std::uint64_t>(static_cast<std::uint32_t>(s.qmax())))
        .add(s.custom_range() ? 1u : 0u)
        .add_float(s.eps())
        .add(static_cast<std::uint64_t>(s.profile()))
        .add(static_cast<std::uint64_t>(s.granularity()))
        .add(s.axis())
        .add(s.group_size());
    return h;
}

/// Min and max of a batch, as kernels::min_max defines them (order-independent: a zero
/// result is +0.0, so any split of the batch into chunks gives the same bits); refuses
/// non-finite values (a NaN or Inf in calibration data would poison the range) naming the
/// first one's index in element order. x must not be empty.
inline status batch_min_max(strided_view<const float> x, float& mn, float& mx) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    bool finite = true;
    x.for_each_chunk([&](const float* p, std::size_t n) {
        const min_max_range r = *kernels::min_max(span<const float>(p, n));  // NaN -> {NaN, NaN}; never fails
        finite = finite && is_finite(r.min) && is_finite(r.max);
        lo = r.min < lo ? r.min : lo;
        hi = r.max > hi ? r.max : hi;
    });
    if (!finite) {
        std::size_t at = 0, bad = x.size();
        x.for_each_chunk([&](const float* p, std::size_t n) {
            for (std::size_t k = 0; k < n && bad == x.size(); ++k)
                if (!is_finite(p[k])) bad = at + k;
            at += n;
        });
        LOWBIT_DETAIL_CHECK(false, errc::invalid_argument, "x[i] (index)", bad, "calibration data must be finite");
    }
    mn = lo;
    mx = hi;
    return {};
}

/// m + c * (v - m) rounded to float after each operation, as torch computes a moving
/// average (no fused multiply-add, whatever the compiler flags).
inline float moving_average(float m, float v, float c) noexcept {
    float t = c * (v - m);
#if defined(__GNUC__) || defined(__clang__)
    __asm__("" : "+m"(t));  // opaque: the product cannot be fused into the addition
#else
    volatile float vt = t;
    t = vt;
#endif
    return m + t;
}

}  // namespace detail
}  // namespace lowbit

#endif  // LOWBIT_OBSERVERS_OBSERVER_HPP
