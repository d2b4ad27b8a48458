// lowbit/observers/diagnostics.hpp: what a choice of qparams costs on a batch: the share of
// values it clips and the signal-to-quantization-noise ratio. Freestanding (its own log10).
#ifndef LOWBIT_OBSERVERS_DIAGNOSTICS_HPP
#define LOWBIT_OBSERVERS_DIAGNOSTICS_HPP

#include <cstddef>
#include <cstdint>
#include <limits>

#include "../core/quantize.hpp"
#include "../core/span.hpp"
#include "../core/strided.hpp"

namespace lowbit {

/// Quantization error of one batch under fixed qparams.
struct quant_error {
    std::size_t count = 0;       ///< finite elements measured
    std::size_t clipped = 0;     ///< of those, outside the representable range (STE mask 0)
    double signal = 0.0;         ///< sum of x^2
    double noise = 0.0;          ///< sum of (x - fake_quantize(x))^2
    double max_abs_error = 0.0;  ///< largest |x - fake_quantize(x)|

    double clipped_fraction() const noexcept { return count == 0 ? 0.0 : static_cast<double>(clipped) / static_cast<double>(count); }
    /// 10 log10(signal / noise): +Inf when the error is 0 (exact, or all-zero data), NaN for
    /// an empty batch.
    double sqnr_db() const noexcept;
};

namespace detail {
/// Natural log for finite x > 0, to ~1 ulp in double: x = m 2^e with m in [sqrt(1/2), sqrt(2)),
/// ln m = 2 atanh((m - 1) / (m + 1)) by its series.
inline double ln(double x) noexcept {
    if (!(x > 0.0)) return x == 0.0 ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
    if (x == std::numeric_limits<double>::infinity()) return x;
    int e = 0;
    while (x >= 1.4142135623730951) { x *= 0.5; ++e; }
    while (x < 0.7071067811865476) { x *= 2.0; --e; }
    const double t = (x - 1.0) / (x + 1.0), t2 = t * t;
    double term = t, sum = 0.0;
    for (int k = 1; k < 60; k += 2) {
        sum += term / k;
        term *= t2;
    }
    return 2.0 * sum + e * 0.69314718055994530942;
}
}  // namespace detail

inline double quant_error::sqnr_db() const noexcept {
    if (count == 0) return std::numeric_limits<double>::quiet_NaN();
    if (noise == 0.0) return std::numeric_limits<double>::infinity();
    return 10.0 * detail::ln(signal / noise) / 2.30258509299404568402;
}

/// Fake-quantizes each finite element of x (a strided view, core/strided.hpp; element k is
/// the k-th in element order) with (s, qp) (per-tensor) and measures the error. Non-finite
/// elements are skipped. The sums run in element order, so a view and a contiguous copy of
/// it give the same bits. Errors: those of lowbit::check_qparams / the scheme.
template <class Scheme>
status measure_error(const Scheme& s, qparams qp, strided_view<const float> x, quant_error& out) {
    LOWBIT_DETAIL_TRY(s.validate());
    LOWBIT_DETAIL_TRY(check_qparams(s, qp));
    const element_quantizer e = element_quantizer::make(s, qp);
    quant_error r;
    std::size_t k = 0;
    x.for_each_chunk([&](const float* p, std::size_t n) {
        for (std::size_t j = 0; j < n; ++j, ++k) {
            const float v = p[j];
            if (!(v - v == 0.0f)) continue;
            const double d = static_cast<double>(v) - e.dequantize(e.quantize(v, k));
            r.count += 1;
            r.clipped += e.in_range(v, k) ? 0u : 1u;
            r.signal += static_cast<double>(v) * v;
            r.noise += d * d;
            const double ad = d < 0 ? -d : d;
            r.max_abs_error = ad > r.max_abs_error ? ad : r.max_abs_error;
        }
    });
    out = r;
    return {};
}

/// measure_error() of a contiguous batch.
template <class Scheme>
status measure_error(const Scheme& s, qparams qp, span<const float> x, quant_error& out) {
    return measure_error(s, qp, strided_view<const float>(x), out);
}

}  // namespace lowbit

#endif  // LOWBIT_OBSERVERS_DIAGNOSTICS_HPP
