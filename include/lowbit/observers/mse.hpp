// lowbit/observers/mse.hpp: MSE calibration: the clipping range whose qparams minimise the
// expected squared quantization error of the observed distribution, for the scheme's real
// levels (calibration::mse), on an exact-merge histogram so sharded calibration equals one
// process.
//
//   lowbit::mse_observer<lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>> obs;
//   for (auto& batch : batches) obs.observe(batch);
//   lowbit::qparams qp = *obs.qparams();
//
// The error of a candidate range is computed for exactly the qparams choose_qparams gives
// for it (divisor, zero-point rounding and clamping of the scheme's profile), with each bin's
// mass spread uniformly over the bin (cut to the observed min / max at the ends). Candidate
// ranges end at bin edges or at the observed min / max; see calibration::mse for the grid.
// Unlike pytorch-quantization's _compute_amax_mse (bin centres, a fixed 2^(bits-1) - 1
// divisor, candidates from bin 128) this uses the scheme's own quantizer.
// qparams() needs 3 * (Bins + 1) doubles of stack (49 KB for 2048 bins).
#ifndef LOWBIT_OBSERVERS_MSE_HPP
#define LOWBIT_OBSERVERS_MSE_HPP

#include <cstddef>
#include <cstdint>

#include "calibration_methods.hpp"

namespace lowbit {

namespace detail {
struct mse_method {
    using options = calibration::mse_options;
    static constexpr observer_kind kind = observer_kind::mse;

    template <class Scheme>
    static status check(const Scheme& s, const options&) {
        LOWBIT_DETAIL_CHECK(static_cast<std::int64_t>(s.qmax()) - s.qmin() < 65536, errc::invalid_argument,
                            "quant_max", s.qmax(), "the MSE search supports at most 65536 levels");
        return {};
    }
    static void hash(config_hash& h, const options& o) noexcept { h.add(o.affine_grid); }

    template <class Scheme, std::size_t Bins>
    static result<clip_range> compute(const Scheme& s, const exact_histogram<Bins>& hist, const options& o) {
        double work[calibration::mse_workspace_size(Bins)];
        return calibration::mse(s, hist.view(), span<double>(work, calibration::mse_workspace_size(Bins)), o);
    }
};
}  // namespace detail

/// MSE calibration, see the file comment. Bins: power of two, default 2048.
template <class Scheme, std::size_t Bins = 2048>
using mse_observer = detail::histogram_calibration_observer<Scheme, Bins, detail::mse_method>;

}  // namespace lowbit

#endif  // LOWBIT_OBSERVERS_MSE_HPP
