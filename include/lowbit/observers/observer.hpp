// lowbit/observers/observer.hpp: what every observer shares: its kind and configuration tag
// (for merge and save/load), the statistics it reports, and the batch scan they all start
// with.
//
// An observer watches batches of a tensor (observe), keeps a small state, and turns it into
// quantization parameters for its scheme (qparams). Observers are plain values: copy them,
// give one to each thread or process, then merge() or save()/load() to combine - the merged
// result is the one a single observer would have reached (see each observer for what that
// means exactly). No heap: per-channel observers keep their state in a caller buffer.
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

/// Min and max of a batch; refuses non-finite values (a NaN or Inf in calibration data
/// would poison the range) naming the first one's index.
inline status batch_min_max(span<const float> x, float& mn, float& mx) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    bool finite = true;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const float v = x[i];
        finite = finite && (v - v == 0.0f);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    if (!finite) {
        std::size_t i = 0;
        while (x[i] - x[i] == 0.0f) ++i;
        LOWBIT_DETAIL_CHECK(false, errc::invalid_argument, "x[i] (index)", i, "calibration data must be finite");
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
