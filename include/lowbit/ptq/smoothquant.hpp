// lowbit/ptq/smoothquant.hpp: SmoothQuant (Xiao et al., "SmoothQuant: Accurate and Efficient
// Post-Training Quantization for Large Language Models", ICML 2023), for W8A8.
//
// Activations of large models have a few input channels with values 10-100x the others;
// per-tensor (or per-token) 8-bit activation quantization then spends its whole range on
// them. SmoothQuant divides each input channel j by a factor s_j and multiplies the weight
// column j by it (channel_scale.hpp: the output is unchanged in exact arithmetic), with
//
//   s_j = max|X_j|^alpha / max|W_:,j|^(1 - alpha)        (the paper's eq. 4)
//
// so that alpha = 0.5 splits the difficulty evenly between activations and weights; alpha = 1
// gives every smoothed activation channel max|X'_j| = 1 (all difficulty to the weights),
// alpha = 0 gives every weight column max|W'_:,j| = 1. The reference implementation
// (github.com/mit-han-lab/smoothquant, smooth.py smooth_ln_fcs) clamps max|W_:,j| and s_j to
// at least 1e-5; lowbit does the same, except for channels where either maximum is exactly 0
// (a channel never active in calibration, or a zero weight column): there s_j = 1 (nothing
// to migrate; the reference's 1e-5 would amplify such a channel 1e5x in X / s if it ever
// fires at inference). Those channels are counted in the report.
//
// Use: collect act_absmax over the calibration batches (column_absmax), take weight_absmax of
// the layer's weight (or the element-wise max over every layer fed by X, e.g. q/k/v), call
// smoothquant_scales, fold 1 / s into the producer of X (layer norm gamma and beta) and
// W * s into the weights (scale_weight_columns), then quantize as usual: activations 8-bit
// per tensor or per token, weights 8-bit per output channel.
#ifndef LOWBIT_PTQ_SMOOTHQUANT_HPP
#define LOWBIT_PTQ_SMOOTHQUANT_HPP

#include <cmath>
#include <cstddef>
#include <vector>

#include "../core/span.hpp"
#include "../core/status.hpp"
#include "channel_scale.hpp"

namespace lowbit {
namespace ptq {

/// What smoothquant_scales did.
struct smoothquant_report {
    std::size_t neutral_channels = 0;  ///< channels given s = 1 (activation or weight maximum was 0)
    std::size_t clamped_channels = 0;  ///< channels whose s was raised to the 1e-5 floor
};

/// Per-input-channel smoothing factors from the observed maxima, s_j = a_j^alpha / w_j^(1-alpha)
/// with a_j = act_absmax[j] and w_j = max(weight_absmax[j], 1e-5), computed in double with
/// std::pow (pow(v, 1) = v and pow(v, 0) = 1 exactly), raised to at least 1e-5 and rounded
/// once to float (finite: at most max(a_j, 1e5)). a_j == 0 or weight_absmax[j] == 0: s_j = 1.
/// alpha: migration strength in [0, 1], the paper's default 0.5 (0.75-0.85 for some models).
/// Errors (nothing written): sizes differ ("weight_absmax.size()", "s.size()"); alpha not in
/// [0, 1]; a maximum negative or non-finite (value = its index).
inline result<smoothquant_report> smoothquant_scales(span<const float> act_absmax, span<const float> weight_absmax,
                                                     span<float> s, float alpha = 0.5f) {
    const std::size_t k = act_absmax.size();
    LOWBIT_DETAIL_CHECK(weight_absmax.size() == k, errc::size_mismatch, "weight_absmax.size()", weight_absmax.size(),
                        "must equal act_absmax.size()");
    LOWBIT_DETAIL_CHECK(s.size() == k, errc::size_mismatch, "s.size()", s.size(), "must equal act_absmax.size()");
    LOWBIT_DETAIL_CHECK(alpha >= 0.0f && alpha <= 1.0f, errc::invalid_argument, "alpha", alpha, "must be in [0, 1]");
    for (std::size_t j = 0; j < k; ++j) {
        LOWBIT_DETAIL_CHECK(std::isfinite(act_absmax[j]) && act_absmax[j] >= 0.0f, errc::invalid_argument,
                            "act_absmax", j, "must be finite and >= 0 (value is the index of the first bad entry)");
        LOWBIT_DETAIL_CHECK(std::isfinite(weight_absmax[j]) && weight_absmax[j] >= 0.0f, errc::invalid_argument,
                            "weight_absmax", j, "must be finite and >= 0 (value is the index of the first bad entry)");
    }
    constexpr double floor_value = 1e-5;  // smooth.py: weight_scales.clamp(min=1e-5), scales.clamp(min=1e-5)
    smoothquant_report rep;
    const double a = static_cast<double>(alpha);
    for (std::size_t j = 0; j < k; ++j) {
        if (act_absmax[j] == 0.0f || weight_absmax[j] == 0.0f) {
            s[j] = 1.0f;
            ++rep.neutral_channels;
            continue;
        }
        const double wm = weight_absmax[j] > floor_value ? static_cast<double>(weight_absmax[j]) : floor_value;
        double v = std::pow(static_cast<double>(act_absmax[j]), a) / std::pow(wm, 1.0 - a);
        if (v < floor_value) {
            v = floor_value;
            ++rep.clamped_channels;
        }
        s[j] = static_cast<float>(v);
    }
    return rep;
}

/// The same from the calibration activations x (rows x K, all rows of all batches) and the
/// weights w (N x K) directly: act_absmax = column_absmax(x), weight_absmax =
/// column_absmax(w). Errors: rows == 0 ("rows": no calibration data), those of column_absmax
/// (sizes, non-finite values) and of the overload above. Allocates 2 K floats.
inline result<smoothquant_report> smoothquant_scales(std::size_t rows, std::size_t n, std::size_t k,
                                                     span<const float> x, span<const float> w, span<float> s,
                                                     float alpha = 0.5f) {
    LOWBIT_DETAIL_CHECK(rows > 0, errc::invalid_argument, "rows", rows, "must be > 0 (no calibration data)");
    LOWBIT_DETAIL_CHECK(s.size() == k, errc::size_mismatch, "s.size()", s.size(), "must equal K");
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_matrix(rows, k, x.size(), "x.size()"));
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_matrix(n, k, w.size(), "w.size()"));
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_finite(x, "x"));
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_finite(w, "w"));
    std::vector<float> am(k, 0.0f), wm(k, 0.0f);
    LOWBIT_DETAIL_TRY(column_absmax(rows, k, x, am));
    LOWBIT_DETAIL_TRY(column_absmax(n, k, w, wm));
    return smoothquant_scales(am, wm, s, alpha);
}

}  // namespace ptq
}  // namespace lowbit

#endif  // LOWBIT_PTQ_SMOOTHQUANT_HPP
