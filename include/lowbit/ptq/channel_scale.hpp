// lowbit/ptq/channel_scale.hpp: per-input-channel statistics and rescaling, the common ground
// of SmoothQuant (smoothquant.hpp) and AWQ (awq.hpp). Both move a positive factor s_j between
// a layer's input channel j and its weight column j, which leaves the layer's output
// unchanged in exact arithmetic:
//
//   X W^T = (X / s) (W * s)^T        (X: rows x K activations, W: N x K weights, per column j)
//
// The caller folds 1 / s into whatever produces X (the previous layer norm's gamma / beta or
// the previous linear layer's output rows) and W * s into the layer; the helpers here apply
// the factors to plain arrays for evaluation and for layers without such a predecessor.
//
// All arrays are row-major f32; columns are the input channels (K). Functions check their
// arguments (lowbit status errors naming the argument and value) and write nothing on error.
#ifndef LOWBIT_PTQ_CHANNEL_SCALE_HPP
#define LOWBIT_PTQ_CHANNEL_SCALE_HPP

#include <cmath>
#include <cstddef>

#include "../core/span.hpp"
#include "../core/status.hpp"

namespace lowbit {
namespace ptq {

namespace detail_channel_scale {
inline status check_matrix(std::size_t rows, std::size_t cols, std::size_t size, const char* name) {
    LOWBIT_DETAIL_CHECK(cols == 0 || rows <= static_cast<std::size_t>(-1) / cols, errc::overflow, name, size,
                        "rows * cols overflows size_t");
    LOWBIT_DETAIL_CHECK(size == rows * cols, errc::size_mismatch, name, size, "must be rows * cols");
    return {};
}
inline status check_finite(span<const float> a, const char* name) {
    for (std::size_t i = 0; i < a.size(); ++i)
        LOWBIT_DETAIL_CHECK(std::isfinite(a[i]), errc::invalid_argument, name, i,
                            "must be finite (value is the index of the first non-finite element)");
    return {};
}
inline status check_scales(span<const float> s, std::size_t k) {
    LOWBIT_DETAIL_CHECK(s.size() == k, errc::size_mismatch, "s.size()", s.size(), "must equal the column count K");
    for (std::size_t j = 0; j < k; ++j)
        LOWBIT_DETAIL_CHECK(std::isfinite(s[j]) && s[j] > 0.0f, errc::invalid_argument, "s", j,
                            "every factor must be finite and > 0 (value is the index of the first bad one)");
    return {};
}
}  // namespace detail_channel_scale

/// Running per-column maximum of |a| for a (rows x cols): absmax[j] = max(absmax[j],
/// max_r |a[r][j]|). Start absmax at zeros and call once per calibration batch (SmoothQuant's
/// act_scales: torch's x.abs().amax(dim=0) merged with max). rows = 0 leaves absmax as is.
/// Errors: a.size() != rows * cols; absmax.size() != cols; a non-finite element of a (its
/// index is the value; nothing is written).
inline status column_absmax(std::size_t rows, std::size_t cols, span<const float> a, span<float> absmax) {
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_matrix(rows, cols, a.size(), "a.size()"));
    LOWBIT_DETAIL_CHECK(absmax.size() == cols, errc::size_mismatch, "absmax.size()", absmax.size(), "must equal cols");
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_finite(a, "a"));
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < cols; ++j) {
            const float v = std::fabs(a[r * cols + j]);
            absmax[j] = v > absmax[j] ? v : absmax[j];
        }
    return {};
}

/// Per-column mean of |a| over the rows, in double (increasing r), rounded once:
/// absmean[j] = sum_r |a[r][j]| / rows (AWQ's get_act_scale: x.abs().view(-1, K).mean(0)).
/// Errors: rows == 0 ("rows"); sizes; a non-finite element of a.
inline status column_absmean(std::size_t rows, std::size_t cols, span<const float> a, span<float> absmean) {
    LOWBIT_DETAIL_CHECK(rows > 0, errc::invalid_argument, "rows", rows, "must be > 0");
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_matrix(rows, cols, a.size(), "a.size()"));
    LOWBIT_DETAIL_CHECK(absmean.size() == cols, errc::size_mismatch, "absmean.size()", absmean.size(),
                        "must equal cols");
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_finite(a, "a"));
    for (std::size_t j = 0; j < cols; ++j) {
        double s = 0.0;
        for (std::size_t r = 0; r < rows; ++r) s += std::fabs(static_cast<double>(a[r * cols + j]));
        absmean[j] = static_cast<float>(s / static_cast<double>(rows));
    }
    return {};
}

/// Weights side of the migration: out[o][j] = w[o][j] * s[j] (one float multiply), for w of
/// N x K (torch.nn.Linear's weight). out may alias w exactly. Errors: sizes; a factor that is
/// not finite and > 0 (value = its index).
inline status scale_weight_columns(std::size_t n, std::size_t k, span<const float> w, span<const float> s,
                                   span<float> out) {
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_matrix(n, k, w.size(), "w.size()"));
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_scales(s, k));
    LOWBIT_DETAIL_CHECK(out.size() == w.size(), errc::size_mismatch, "out.size()", out.size(), "must equal w.size()");
    for (std::size_t o = 0; o < n; ++o)
        for (std::size_t j = 0; j < k; ++j) out[o * k + j] = w[o * k + j] * s[j];
    return {};
}

/// Activation side: out[r][j] = x[r][j] / s[j] (one float division), for x of rows x K. out
/// may alias x exactly. Errors: as scale_weight_columns.
inline status unscale_activation_columns(std::size_t rows, std::size_t k, span<const float> x, span<const float> s,
                                         span<float> out) {
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_matrix(rows, k, x.size(), "x.size()"));
    LOWBIT_DETAIL_TRY(detail_channel_scale::check_scales(s, k));
    LOWBIT_DETAIL_CHECK(out.size() == x.size(), errc::size_mismatch, "out.size()", out.size(), "must equal x.size()");
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < k; ++j) out[r * k + j] = x[r * k + j] / s[j];
    return {};
}

}  // namespace ptq
}  // namespace lowbit

#endif  // LOWBIT_PTQ_CHANNEL_SCALE_HPP
