// lowbit/observers/entropy.hpp: entropy (KL divergence) calibration, TensorRT's "Entropy
// calibration" (S. Migacz, "8-bit Inference with TensorRT", GTC 2017) exactly as NVIDIA's
// pytorch-quantization implements it (_compute_amax_entropy; see calibration::entropy), on
// an exact-merge histogram so sharded calibration equals one process.
//
//   lowbit::entropy_observer<lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>> obs;
//   for (auto& batch : batches) obs.observe(batch);
//   lowbit::qparams qp = *obs.qparams();
//
// The search runs on the histogram of |x| (exact_histogram's bins folded around 0, trimmed
// after the last non-empty bin as pytorch-quantization's histogram ends at the max), and
// gives a threshold t = the right edge of the last bin kept. The range is [-t, t] clamped to
// the observed [min, max] (as ONNX Runtime clamps; t <= max |x|).
// Resolution: the bins tile [-R, R) with max|x| < R <= 2 max|x|, so the |x| histogram has
// between Bins/4 and Bins/2 bins up to max|x| (512..1024 for the default 2048, where
// pytorch-quantization has 2048 over [0, max|x|]); take Bins = 4096 for a comparable grid.
// num_quantized_bins (entropy_options, 0 = automatic) follows the scheme: its number of
// levels L = qmax - qmin + 1 for an affine scheme whose data are all >= 0
// (pytorch-quantization's unsigned case: 256 for 8 bits), else ceil(L / 2) (128 for s8 and
// for [-127, 127], 8 for s4).
#ifndef LOWBIT_OBSERVERS_ENTROPY_HPP
#define LOWBIT_OBSERVERS_ENTROPY_HPP

#include <cstddef>
#include <cstdint>

#include "calibration_methods.hpp"

namespace lowbit {

namespace calibration {
/// The automatic num_quantized_bins of entropy_observer (see entropy.hpp), for a scheme and
/// whether all observed data are >= 0.
template <class Scheme>
constexpr std::size_t entropy_quantized_bins(const Scheme& s, bool nonnegative) noexcept {
    const auto levels = static_cast<std::size_t>(static_cast<std::int64_t>(s.qmax()) - s.qmin() + 1);
    return (Scheme::sym == symmetry::affine && nonnegative) ? levels : (levels + 1) / 2;
}
}  // namespace calibration

namespace detail {
struct entropy_method {
    using options = calibration::entropy_options;
    static constexpr observer_kind kind = observer_kind::entropy;

    template <class Scheme>
    static status check(const Scheme& s, const options& o) {
        LOWBIT_DETAIL_CHECK(o.stride >= 1, errc::invalid_argument, "stride", o.stride, "must be >= 1");
        LOWBIT_DETAIL_CHECK(o.num_quantized_bins != 0 || static_cast<std::int64_t>(s.qmax()) - s.qmin() < 65536,
                            errc::invalid_argument, "quant_max", s.qmax(),
                            "automatic num_quantized_bins supports at most 65536 levels");
        return {};
    }
    static void hash(config_hash& h, const options& o) noexcept {
        h.add(o.num_quantized_bins).add(o.start_bin).add(o.stride).add(o.first_bin_as_second ? 1u : 0u);
    }

    template <class Scheme, std::size_t Bins>
    static result<clip_range> compute(const Scheme& s, const exact_histogram<Bins>& hist, const options& o) {
        const observer_stats& st = hist.stats();
        options eo = o;
        if (eo.num_quantized_bins == 0) eo.num_quantized_bins = calibration::entropy_quantized_bins(s, st.min >= 0.0f);
        std::uint64_t abs_counts[Bins / 2];
        const result<clip_range> r = calibration::entropy(hist.abs_view(abs_counts, true), eo);
        LOWBIT_DETAIL_TRY(r.status());
        return calibration::clamp_to_data(*r, st.min, st.max);
    }
};
}  // namespace detail

/// Entropy (KL) calibration, see the file comment. Bins: power of two, default 2048
/// (pytorch-quantization's default).
template <class Scheme, std::size_t Bins = 2048>
using entropy_observer = detail::histogram_calibration_observer<Scheme, Bins, detail::entropy_method>;

}  // namespace lowbit

#endif  // LOWBIT_OBSERVERS_ENTROPY_HPP
