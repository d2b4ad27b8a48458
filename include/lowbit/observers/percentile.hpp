// lowbit/observers/percentile.hpp: percentile calibration as ONNX Runtime's
// CalibrationMethod.Percentile computes it (HistogramCollector.compute_percentile), on an
// exact-merge histogram so sharded calibration equals one process.
//
//   lowbit::percentile_observer<lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>> obs({}, {99.99});
//   for (auto& batch : batches) obs.observe(batch);
//   lowbit::qparams qp = *obs.qparams();
//
// Symmetric schemes use ORT's symmetric mode: the histogram of |x| and the threshold
// t = left edge of the bin where the cumulative fraction reaches percentile / 100; range
// [-t, t]. Affine schemes use ORT's asymmetric mode on the histogram of x, cutting
// (100 - percentile) / 2 % from each side. Both are then clamped to the observed [min, max]
// as ORT does (calibration::clamp_to_data). The histogram is lowbit::exact_histogram<Bins>
// (bin width a power of two, range [-R, R) growing by doubling), not ORT's float-edged one,
// so thresholds agree with ORT given the same histogram, not the same data.
#ifndef LOWBIT_OBSERVERS_PERCENTILE_HPP
#define LOWBIT_OBSERVERS_PERCENTILE_HPP

#include <cstddef>
#include <cstdint>

#include "calibration_methods.hpp"

namespace lowbit {

/// Options of percentile_observer.
struct percentile_options {
    double percentile = 99.999;  ///< in [0, 100]; ONNX Runtime's default
};

namespace detail {
struct percentile_method {
    using options = percentile_options;
    static constexpr observer_kind kind = observer_kind::percentile;

    template <class Scheme>
    static status check(const Scheme&, const options& o) {
        LOWBIT_DETAIL_CHECK(o.percentile >= 0.0 && o.percentile <= 100.0, errc::invalid_argument, "percentile",
                            o.percentile, "must be in [0, 100]");
        return {};
    }
    static void hash(config_hash& h, const options& o) noexcept { h.add(__builtin_bit_cast(std::uint64_t, o.percentile)); }

    template <class Scheme, std::size_t Bins>
    static result<clip_range> compute(const Scheme&, const exact_histogram<Bins>& hist, const options& o) {
        const observer_stats& st = hist.stats();
        if (Scheme::sym == symmetry::affine) return calibration::percentile_asymmetric(hist.view(), o.percentile);
        std::uint64_t abs_counts[Bins / 2];
        const result<clip_range> r = calibration::percentile_symmetric(hist.abs_view(abs_counts), o.percentile);
        LOWBIT_DETAIL_TRY(r.status());
        return calibration::clamp_to_data(*r, st.min, st.max);
    }
};
}  // namespace detail

/// Percentile calibration (ONNX Runtime), see the file comment. Bins: power of two, default
/// 2048 (ORT's default bin count; the data occupy between a quarter and a half of them per
/// side, see exact_histogram).
template <class Scheme, std::size_t Bins = 2048>
using percentile_observer = detail::histogram_calibration_observer<Scheme, Bins, detail::percentile_method>;

}  // namespace lowbit

#endif  // LOWBIT_OBSERVERS_PERCENTILE_HPP
