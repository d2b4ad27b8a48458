// lowbit/core/reduce.hpp: the reductions observers are built from (per-tensor and
// per-channel min / max, fixed-range histograms), as lowbit::ref kernels: the spec the SIMD
// reductions in lowbit/kernels/reduce.hpp reproduce bit for bit.
//
// min / max, lowbit's definition (order-independent, so any SIMD width or thread split gives
// the same bits):
//   - no elements: {+Inf, -Inf}, torch's uninitialised observer (choose_qparams maps it to
//     scale 1, zero-point 0);
//   - any NaN element: {NaN, NaN} (the quiet NaN 0x7FC00000). torch.aminmax propagates NaN too;
//     choose_qparams refuses a NaN range, so bad calibration data is reported, not hidden;
//   - -0.0 and +0.0 compare equal, and a zero result is always +0.0 (torch's answer would
//     depend on which zero comes first; min(min, 0) in choose_qparams makes them equivalent);
//   - otherwise the smallest and largest element, +-Inf included.
//
// histogram: torch.histc's bin formula (CPU, LINEAR_INTERPOLATION), in float32:
//     bin(x) = min(trunc(f32(f32(f32(x - lo) * f32(bins)) / f32(hi - lo))), bins - 1)
// for lo <= x <= hi (hi itself lands in the last bin); values outside [lo, hi] and NaN are
// dropped, as histc drops them. Counts are exact integers (histc accumulates in float and
// stops counting at 2^24 per bin) and are added to `counts`, so batches accumulate.
#ifndef LOWBIT_CORE_REDUCE_HPP
#define LOWBIT_CORE_REDUCE_HPP

#include <cstddef>
#include <cstdint>
#include <limits>

#include "../config.hpp"
#include "layout.hpp"
#include "rounding.hpp"
#include "span.hpp"
#include "status.hpp"

namespace lowbit {

/// The range of a tensor (or of one channel). The default, {+Inf, -Inf}, is the range of no
/// elements; {NaN, NaN} says the data held a NaN.
struct min_max_range {
    float min = std::numeric_limits<float>::infinity();
    float max = -std::numeric_limits<float>::infinity();
};

namespace detail {
// The per-channel [outer, C, inner] view of a shape around `axis` (layout.hpp's errors).
struct axis_view {
    std::size_t m_axis;
    constexpr lowbit::granularity granularity() const noexcept { return lowbit::granularity::per_channel; }
    constexpr std::size_t axis() const noexcept { return m_axis; }
    constexpr std::size_t group_size() const noexcept { return 0; }
};

// Finishes a reduction: NaN seen -> {NaN, NaN}; a zero extreme becomes +0.0.
constexpr min_max_range finish_min_max(float mn, float mx, bool nan) noexcept {
    if (nan) return {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::quiet_NaN()};
    return {mn == 0.0f ? 0.0f : mn, mx == 0.0f ? 0.0f : mx};
}

// Checks of histogram's range and bin count.
constexpr status check_histogram(float lo, float hi, std::size_t bins) {
    LOWBIT_DETAIL_CHECK(is_finite(lo), errc::invalid_argument, "lo", lo, "must be finite");
    LOWBIT_DETAIL_CHECK(is_finite(hi) && hi > lo, errc::invalid_argument, "hi", hi, "must be finite and > lo");
    LOWBIT_DETAIL_CHECK(bins >= 1 && bins <= (std::size_t(1) << 24), errc::invalid_argument, "counts.size()", bins,
                        "the bin count must be in [1, 2^24]");
    LOWBIT_DETAIL_CHECK(is_finite((hi - lo) * static_cast<float>(bins)), errc::invalid_argument, "hi", hi,
                        "(hi - lo) * bins must be finite in float32");
    return {};
}

// torch.histc's bin of x in [lo, hi] (see the file comment); w = f32(hi - lo).
constexpr std::size_t histogram_bin(float x, float lo, float w, float fbins, std::size_t bins) noexcept {
    const float q = (x - lo) * fbins / w;  // (x - lo) * fbins first, then / w, each rounded
    const auto b = static_cast<std::size_t>(q);  // q in [0, bins] (truncation)
    return b < bins ? b : bins - 1;
}
}  // namespace detail

namespace ref {

/// Minimum and maximum of x (see the file comment: empty -> {+Inf, -Inf}, any NaN ->
/// {NaN, NaN}, a zero result is +0.0). Never fails.
constexpr result<min_max_range> min_max(span<const float> x) {
    float mn = std::numeric_limits<float>::infinity(), mx = -mn;
    bool nan = false;
    for (std::size_t k = 0; k < x.size(); ++k) {
        const float v = x[k];
        if (detail::is_nan(v)) {
            nan = true;
        } else {
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
    }
    return detail::finish_min_max(mn, mx, nan);
}

/// Per-channel minimum and maximum of a tensor of `shp` along `axis`: mins[c] / maxs[c] are
/// the min / max (as the per-tensor overload defines them) of every element whose index along
/// `axis` is c. A channel with no elements (another dimension is 0) gets {+Inf, -Inf}.
/// Errors: rank > 8; axis >= rank; numel overflowing size_t; x.size() != numel;
/// mins.size() or maxs.size() != shp[axis]. Nothing is written on error.
constexpr status min_max(const shape& shp, std::size_t axis, span<const float> x, span<float> mins,
                         span<float> maxs) {
    const result<quant_layout> l = make_layout(detail::axis_view{axis}, shp);
    LOWBIT_DETAIL_TRY(l.status());
    LOWBIT_DETAIL_CHECK(x.size() == l->numel, errc::size_mismatch, "x.size()", x.size(), "must equal shape's numel");
    LOWBIT_DETAIL_CHECK(mins.size() == l->channels, errc::size_mismatch, "mins.size()", mins.size(),
                        "must equal shape[axis]");
    LOWBIT_DETAIL_CHECK(maxs.size() == l->channels, errc::size_mismatch, "maxs.size()", maxs.size(),
                        "must equal shape[axis]");
    for (std::size_t c = 0; c < l->channels; ++c) {
        float mn = std::numeric_limits<float>::infinity(), mx = -mn;
        bool nan = false;
        for (std::size_t o = 0; o < l->outer; ++o) {
            for (std::size_t i = 0; i < l->inner; ++i) {
                const float v = x[(o * l->channels + c) * l->inner + i];
                if (detail::is_nan(v)) {
                    nan = true;
                } else {
                    mn = v < mn ? v : mn;
                    mx = v > mx ? v : mx;
                }
            }
        }
        const min_max_range r = detail::finish_min_max(mn, mx, nan);
        mins[c] = r.min;
        maxs[c] = r.max;
    }
    return {};
}

/// Adds to counts[b] the number of elements of x in bin b of [lo, hi] split into
/// bins = counts.size() equal bins, binned as torch.histc (file comment); elements outside
/// [lo, hi] and NaN are not counted. Errors: lo or hi not finite; hi <= lo; bins outside
/// [1, 2^24]; (hi - lo) * bins overflowing float32. Nothing is written on error.
constexpr status histogram(span<const float> x, float lo, float hi, span<std::uint64_t> counts) {
    LOWBIT_DETAIL_TRY(detail::check_histogram(lo, hi, counts.size()));
    const float w = hi - lo;
    const auto fbins = static_cast<float>(counts.size());
    for (std::size_t k = 0; k < x.size(); ++k) {
        const float v = x[k];
        if (v >= lo && v <= hi) ++counts[detail::histogram_bin(v, lo, w, fbins, counts.size())];
    }
    return {};
}

}  // namespace ref
}  // namespace lowbit

#endif  // LOWBIT_CORE_REDUCE_HPP
