// lowbit/ptq/sensitivity.hpp: per-layer sensitivity analysis for mixed precision: which
// layers to keep at 8 bits when the rest go to 4.
//
// Why: at 4 bits a few layers usually cause most of the error (a small output layer whose
// input activations have a wide range is the classic one). Quantizing one layer at a time
// and measuring the model's output error finds them without a search over all
// combinations; this is the "per-layer sensitivity" phase of AIMET's automatic mixed
// precision and of HAWQ-style analyses (with the measured error in place of a Hessian
// trace). lowbit owns no model graph, so the model is a callback:
//
//   std::vector<float> run(lowbit::span<const int> bits)
//
// runs the model on the caller's calibration data with layer i quantized at bits[i]
// (weights and / or activations, as the caller's model does it; bits[i] == 0 means layer i
// stays in f32) and returns the model's output (any fixed size). A metric callback
//   double metric(lowbit::span<const float> out, lowbit::span<const float> reference)
// scores an output against the all-f32 output (larger is worse; default: MSE, ptq::mse).
//
// analyze_sensitivity runs: the f32 reference (all bits 0); layer i alone at low_bits (the
// others in f32, or at high_bits with others_at_high_bits, AIMET's choice), for every i;
// then ranks layers by that error, most sensitive first; then recommends, greedily in rank
// order, which layers to keep at high_bits under a weight-size budget (a layer of c weights
// takes ceil(c * bits / 8) bytes; layers are promoted while the total stays within budget, a
// layer that does not fit is skipped and smaller ones below it may still fit); and finally
// runs all-low and the recommendation to report their errors. L + 3 model runs.
#ifndef LOWBIT_PTQ_SENSITIVITY_HPP
#define LOWBIT_PTQ_SENSITIVITY_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../core/span.hpp"
#include "../core/status.hpp"
#include "linalg.hpp"

namespace lowbit {
namespace ptq {

/// Bit widths of the analysis.
struct sensitivity_options {
    int low_bits = 4;                  ///< the width a layer is tried at, in [1, 31]
    int high_bits = 8;                 ///< the width a sensitive layer is kept at, in (low_bits, 32]
    bool others_at_high_bits = false;  ///< other layers at high_bits (AIMET) instead of f32 (0)
};

/// The analysis' outcome. Layer indices are those of the bits vector passed to `run`.
struct sensitivity_report {
    std::vector<double> error;          ///< error[i]: metric with layer i alone at low_bits
    std::vector<std::size_t> ranking;   ///< layer indices by decreasing error (ties: lower index first)
    std::vector<int> bits;              ///< recommendation: high_bits or low_bits per layer
    std::size_t bytes = 0;              ///< weight bytes of the recommendation
    std::size_t all_low_bytes = 0;      ///< weight bytes with every layer at low_bits
    double all_low_error = 0.0;         ///< metric with every layer at low_bits
    double recommended_error = 0.0;     ///< metric of the recommendation
};

/// Bytes of c weights at `bits` bits: ceil(c * bits / 8) (int4 packs two per byte).
/// Saturates at SIZE_MAX instead of overflowing.
inline std::size_t weight_bytes(std::size_t count, int bits) noexcept {
    const std::size_t b = bits > 0 ? static_cast<std::size_t>(bits) : 0;
    const std::size_t max = static_cast<std::size_t>(-1);
    if (b != 0 && count > (max - 7) / b) return max;
    return (count * b + 7) / 8;
}

namespace detail {

inline std::size_t sens_add(std::size_t a, std::size_t b) noexcept {
    const std::size_t max = static_cast<std::size_t>(-1);
    return a > max - b ? max : a + b;
}

// One scored run; errors name the configuration ("run(...) output" + which).
template <class Run, class Metric>
status sens_score(Run& run, Metric& metric, const std::vector<int>& bits, const std::vector<float>& reference,
                  std::size_t which, double& out) {
    const std::vector<float> y = run(span<const int>(bits.data(), bits.size()));
    LOWBIT_DETAIL_CHECK(y.size() == reference.size(), errc::size_mismatch, "run output size (layer index)", which,
                        "every run must return as many values as the f32 run");
    const double e = metric(span<const float>(y.data(), y.size()), span<const float>(reference.data(), reference.size()));
    LOWBIT_DETAIL_CHECK(std::isfinite(e), errc::invalid_argument, "metric (layer index)", which,
                        "must be finite: the quantized output or the metric is NaN / Inf");
    out = e;
    return {};
}

}  // namespace detail

/// The sensitivity analysis (file comment). `weight_counts[i]`: layer i's weight count (for
/// the byte sizes; layers.size() == weight_counts.size() is the layer count L). budget_bytes:
/// the weight-size budget of the recommendation. `run` and `metric`: the callbacks of the file
/// comment (exceptions they throw propagate). Errors: L == 0; bit widths outside
/// 1 <= low_bits < high_bits <= 32; budget_bytes below the all-low size (checked before any
/// run); an f32 run returning no values; a run whose output size differs from the f32 run's;
/// a non-finite metric (named with the layer index; L for the all-low run, L + 1 for the
/// recommendation, L + 2 for the f32 run). Nothing is returned on error.
template <class Run, class Metric,
          class = std::enable_if_t<!std::is_same<std::decay_t<Metric>, sensitivity_options>::value>>
result<sensitivity_report> analyze_sensitivity(span<const std::size_t> weight_counts, std::size_t budget_bytes,
                                               Run&& run, Metric&& metric, const sensitivity_options& options = {}) {
    const std::size_t L = weight_counts.size();
    LOWBIT_DETAIL_CHECK(L > 0, errc::size_mismatch, "weight_counts.size()", L, "must be > 0 (one entry per layer)");
    LOWBIT_DETAIL_CHECK(options.low_bits >= 1 && options.low_bits <= 31, errc::invalid_argument, "options.low_bits",
                        options.low_bits, "must be in [1, 31]");
    LOWBIT_DETAIL_CHECK(options.high_bits > options.low_bits && options.high_bits <= 32, errc::invalid_argument,
                        "options.high_bits", options.high_bits, "must be in (low_bits, 32]");
    sensitivity_report rep;
    for (std::size_t i = 0; i < L; ++i)
        rep.all_low_bytes = detail::sens_add(rep.all_low_bytes, weight_bytes(weight_counts[i], options.low_bits));
    LOWBIT_DETAIL_CHECK(budget_bytes >= rep.all_low_bytes, errc::invalid_argument, "budget_bytes", budget_bytes,
                        "must be at least the size with every layer at low_bits (sensitivity_report::all_low_bytes)");

    std::vector<int> bits(L, 0);
    const std::vector<float> reference = run(span<const int>(bits.data(), bits.size()));
    LOWBIT_DETAIL_CHECK(!reference.empty(), errc::size_mismatch, "run output size (layer index)", L + 2,
                        "the f32 run returned no values");
    const int other = options.others_at_high_bits ? options.high_bits : 0;
    rep.error.resize(L);
    for (std::size_t i = 0; i < L; ++i) {
        bits.assign(L, other);
        bits[i] = options.low_bits;
        LOWBIT_DETAIL_TRY(detail::sens_score(run, metric, bits, reference, i, rep.error[i]));
    }
    rep.ranking.resize(L);
    for (std::size_t i = 0; i < L; ++i) rep.ranking[i] = i;
    std::stable_sort(rep.ranking.begin(), rep.ranking.end(),
                     [&](std::size_t a, std::size_t b) { return rep.error[a] > rep.error[b]; });

    rep.bits.assign(L, options.low_bits);
    rep.bytes = rep.all_low_bytes;
    for (std::size_t i : rep.ranking) {
        if (!(rep.error[i] > 0.0)) continue;  // nothing to gain
        const std::size_t extra = weight_bytes(weight_counts[i], options.high_bits) -
                                  weight_bytes(weight_counts[i], options.low_bits);
        if (extra <= budget_bytes - rep.bytes) {
            rep.bits[i] = options.high_bits;
            rep.bytes += extra;
        }
    }
    bits.assign(L, options.low_bits);
    LOWBIT_DETAIL_TRY(detail::sens_score(run, metric, bits, reference, L, rep.all_low_error));
    LOWBIT_DETAIL_TRY(detail::sens_score(run, metric, rep.bits, reference, L + 1, rep.recommended_error));
    return rep;
}

/// analyze_sensitivity with the MSE against the f32 output as the metric (ptq::mse).
template <class Run>
result<sensitivity_report> analyze_sensitivity(span<const std::size_t> weight_counts, std::size_t budget_bytes,
                                               Run&& run, const sensitivity_options& options = {}) {
    return analyze_sensitivity(
        weight_counts, budget_bytes, run,
        [](span<const float> y, span<const float> ref) { return mse(y, ref).value(); }, options);
}

}  // namespace ptq
}  // namespace lowbit

#endif  // LOWBIT_PTQ_SENSITIVITY_HPP
