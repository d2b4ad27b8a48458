// lowbit/observers/calibration_methods.hpp: the histogram calibration methods that ONNX Runtime
// and TensorRT users expect - percentile, MSE and entropy (KL divergence) - as pure functions
// on a histogram, and the exact-merge histogram that percentile_observer, mse_observer and
// entropy_observer keep.
//
// Why a histogram of our own: torch's HistogramObserver and ONNX Runtime's collectors re-bin
// with float arithmetic when a wider batch arrives, so the counts depend on batch order and
// sharded calibration cannot reproduce a single process. exact_histogram's bins are fixed in
// place: bin width 2^e, bins [k * 2^e, (k + 1) * 2^e) for k in [-Bins/2, Bins/2). A wider
// batch only raises e, and raising e by d merges 2^d neighbouring bins by integer addition.
// Every value ends in bin floor(x / 2^e_final) whatever the order of batches and merges, so
// shards merged in any split and order give bit-identical counts (and so qparams).
//
// The pure functions take a histogram_view (uint64 counts over equal-width bins spanning
// [lo, hi], bin edges as numpy.linspace(lo, hi, bins + 1)) and return a clipping range; turn
// it into qparams with lowbit::choose_qparams:
//   percentile_symmetric / percentile_asymmetric  ONNX Runtime's HistogramCollector.compute_percentile
//   entropy                                       TensorRT / pytorch-quantization _compute_amax_entropy
//   mse                                           expected quantization error of the scheme's
//                                                 own qparams, minimised over a grid of ranges
// Each documents exactly which bin edge it returns. Freestanding: no heap, no <cmath>; the
// logarithm the entropy method needs is calibration::detail::log (accurate to < 1 ulp).
#ifndef LOWBIT_OBSERVERS_CALIBRATION_METHODS_HPP
#define LOWBIT_OBSERVERS_CALIBRATION_METHODS_HPP

#include <cstddef>
#include <cstdint>
#include <limits>

#include "observer.hpp"

namespace lowbit {

/// A histogram handed to the calibration methods: counts[j] values fell in bin j, the bins
/// are equal-width and span [lo, hi]; bin edges are numpy.linspace(lo, hi, bins + 1), i.e.
/// edge(j) = lo + j * ((hi - lo) / bins) in double and edge(bins) = hi.
/// `min` / `max` optionally give the exact range of the data (inside [lo, hi]); the default
/// -inf / +inf means unknown. Methods never return a range beyond a known min / max.
struct histogram_view {
    span<const std::uint64_t> counts;
    double lo = 0.0;
    double hi = 0.0;
    float min = -std::numeric_limits<float>::infinity();
    float max = std::numeric_limits<float>::infinity();
};

/// A clipping range [min, max] chosen by a calibration method. choose_qparams(scheme, min, max)
/// gives the qparams. {+inf, -inf} means "nothing observed" (choose_qparams gives {1.0, 0}).
struct clip_range {
    float min = 0.0f;
    float max = 0.0f;

    friend constexpr bool operator==(const clip_range& a, const clip_range& b) noexcept {
        return a.min == b.min && a.max == b.max;
    }
    friend constexpr bool operator!=(const clip_range& a, const clip_range& b) noexcept { return !(a == b); }
};

namespace calibration {
namespace detail {

constexpr double inf_d = std::numeric_limits<double>::infinity();
constexpr float inf_f = std::numeric_limits<float>::infinity();
constexpr float max_f = std::numeric_limits<float>::max();

/// 2^e exactly, e in [-1022, 1023] (double) or [-126, 127] (float).
constexpr double pow2(int e) noexcept {
    return __builtin_bit_cast(double, static_cast<std::uint64_t>(e + 1023) << 52);
}
constexpr float pow2f(int e) noexcept {
    return __builtin_bit_cast(float, static_cast<std::uint32_t>(e + 127) << 23);
}

/// floor / ceil of a double with |x| < 2^62.
constexpr std::int64_t floor_i64(double x) noexcept {
    const auto t = static_cast<std::int64_t>(x);
    return static_cast<double>(t) > x ? t - 1 : t;
}
constexpr std::int64_t ceil_i64(double x) noexcept {
    const auto t = static_cast<std::int64_t>(x);
    return static_cast<double>(t) < x ? t + 1 : t;
}

/// floor(r / 2^d) for d >= 0 (arithmetic shift without implementation-defined behaviour).
constexpr std::int64_t floor_shift(std::int64_t r, int d) noexcept {
    if (d >= 62) return r < 0 ? -1 : 0;
    return r >= 0 ? (r >> d) : -(((-r) - 1) >> d) - 1;
}

/// Rounds to float, saturating at +-FLT_MAX instead of overflowing to infinity.
constexpr float to_float_sat(double v) noexcept {
    return v > static_cast<double>(max_f) ? max_f : v < -static_cast<double>(max_f) ? -max_f : static_cast<float>(v);
}

/// Natural logarithm, accurate to < 1 ulp (fdlibm's argument reduction and evaluation order
/// with the atanh Taylor series, to z^12, instead of a minimax polynomial):
/// x = 2^k * m with m in (sqrt(2)/2, sqrt(2)], f = m - 1 (exact), s = f / (2 + f),
/// log(1 + f) = 2 atanh(s) = f - (f^2/2 - s (f^2/2 + R)), R = sum_{i=1..12} 2 s^(2i) / (2i + 1),
/// log(x) = k ln2_hi + (log(1 + f) + k ln2_lo). Edges: log(+0) = -inf, log(x < 0) = NaN,
/// log(+inf) = +inf, NaN -> NaN; subnormals are scaled by 2^54 first.
constexpr double log(double x) noexcept {
    constexpr double ln2_hi = 6.93147180369123816490e-01;  // 0x3FE62E42FEE00000: k * ln2_hi is exact
    constexpr double ln2_lo = 1.90821492927058770002e-10;  // ln 2 - ln2_hi
    constexpr double c[12] = {2.0 / 3.0,  2.0 / 5.0,  2.0 / 7.0,  2.0 / 9.0,  2.0 / 11.0, 2.0 / 13.0,
                              2.0 / 15.0, 2.0 / 17.0, 2.0 / 19.0, 2.0 / 21.0, 2.0 / 23.0, 2.0 / 25.0};
    if (x != x) return x;
    if (x < 0.0) return std::numeric_limits<double>::quiet_NaN();
    if (x == 0.0) return -inf_d;
    if (x == inf_d) return x;
    int k = 0;
    std::uint64_t b = __builtin_bit_cast(std::uint64_t, x);
    if (b < (std::uint64_t{1} << 52)) {  // subnormal
        x *= 18014398509481984.0;       // 2^54
        b = __builtin_bit_cast(std::uint64_t, x);
        k = -54;
    }
    k += static_cast<int>(b >> 52) - 1023;
    double m = __builtin_bit_cast(double, (b & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);
    if (m > 1.4142135623730951) {
        m *= 0.5;
        ++k;
    }
    const double f = m - 1.0;  // exact (Sterbenz)
    const double s = f / (2.0 + f);
    const double z = s * s;
    // R = z (c0 + c1 z + ... + c11 z^11), by Estrin's scheme (short dependency chains)
    const double z2 = z * z, z4 = z2 * z2, z8 = z4 * z4;
    const double b0 = (c[0] + c[1] * z) + (c[2] + c[3] * z) * z2;
    const double b1 = (c[4] + c[5] * z) + (c[6] + c[7] * z) * z2;
    const double b2 = (c[8] + c[9] * z) + (c[10] + c[11] * z) * z2;
    const double r = z * ((b0 + b1 * z4) + b2 * z8);
    const double hfsq = 0.5 * f * f;
    const double dk = static_cast<double>(k);
    return dk * ln2_hi - ((hfsq - (s * (hfsq + r) + dk * ln2_lo)) - f);
}

/// numpy's pairwise summation (np.sum / np.add.reduce of a contiguous float64 array,
/// numpy/core/src/umath/loops_utils.h.src, PW_BLOCKSIZE 128), over a stream: `next()` is
/// called n times and returns the elements in index order. np.sum(a) == 0.0 + this.
template <class Next>
double pairwise_sum(Next& next, std::size_t n) {
    if (n < 8) {
        double res = 0.0;
        for (std::size_t i = 0; i < n; ++i) res += next();
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (double& v : r) v = next();
        std::size_t i = 8;
        for (; i < n - n % 8; i += 8)
            for (double& v : r) v += next();
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) res += next();
        return res;
    }
    std::size_t n2 = n / 2;
    n2 -= n2 % 8;
    const double left = pairwise_sum(next, n2);  // sequenced: the stream is read in order
    const double right = pairwise_sum(next, n - n2);
    return left + right;
}

/// numpy.linspace(lo, hi, n + 1)[j].
constexpr double edge(double lo, double hi, std::size_t n, std::size_t j) noexcept {
    return j == n ? hi : lo + static_cast<double>(j) * ((hi - lo) / static_cast<double>(n));
}

/// Checks a histogram view; `total` = sum of counts. Errors: no bins; lo / hi not finite or
/// lo >= hi; min / max NaN, min > max, or a known bound outside [lo, hi]; the counts sum to
/// 0 or overflow uint64.
inline status check_view(const histogram_view& h, std::uint64_t& total) {
    LOWBIT_DETAIL_CHECK(!h.counts.empty(), errc::size_mismatch, "counts.size()", 0, "a histogram needs >= 1 bin");
    LOWBIT_DETAIL_CHECK(::lowbit::detail::is_finite(h.lo) && ::lowbit::detail::is_finite(h.hi) && h.lo < h.hi,
                        errc::invalid_argument, "hi", h.hi, "lo and hi must be finite with lo < hi");
    LOWBIT_DETAIL_CHECK(h.min == h.min && h.max == h.max && h.min <= h.max, errc::invalid_argument, "min", h.min,
                        "data min / max must not be NaN and min <= max (-inf / +inf = unknown)");
    LOWBIT_DETAIL_CHECK(h.min == -inf_f || (static_cast<double>(h.min) >= h.lo && static_cast<double>(h.min) <= h.hi),
                        errc::invalid_argument, "min", h.min, "a known data min must lie in [lo, hi]");
    LOWBIT_DETAIL_CHECK(h.max == inf_f || (static_cast<double>(h.max) >= h.lo && static_cast<double>(h.max) <= h.hi),
                        errc::invalid_argument, "max", h.max, "a known data max must lie in [lo, hi]");
    std::uint64_t t = 0;
    for (const std::uint64_t c : h.counts) {
        LOWBIT_DETAIL_CHECK(t <= std::numeric_limits<std::uint64_t>::max() - c, errc::overflow, "counts", c,
                            "the total count overflows uint64");
        t += c;
    }
    LOWBIT_DETAIL_CHECK(t > 0, errc::invalid_argument, "counts", 0, "the histogram is empty (all counts 0)");
    total = t;
    return {};
}

constexpr float min_f(float a, float b) noexcept { return b < a ? b : a; }
constexpr float max_f2(float a, float b) noexcept { return b > a ? b : a; }

}  // namespace detail

/// [max(r.min, lo), min(r.max, hi)]: a threshold pair clamped to the observed data range, as
/// ONNX Runtime's compute_percentile / get_entropy_threshold clamp to (min_value, max_value).
/// If that crosses (all data inside one bin), the result is [min(cmin, 0), max(cmax, 0)]:
/// the range ONNX Runtime's quantizer then uses after extending to 0, which choose_qparams
/// extends to the same.
constexpr clip_range clamp_to_data(clip_range r, float lo, float hi) noexcept {
    const float a = r.min < lo ? lo : r.min;
    const float b = r.max > hi ? hi : r.max;
    if (a <= b) return {a, b};
    return {a < 0.0f ? a : 0.0f, b > 0.0f ? b : 0.0f};
}

// ------------------------------------------------------------------------------------------
// Percentile (ONNX Runtime HistogramCollector.compute_percentile, pytorch-quantization
// _compute_amax_percentile)
// ------------------------------------------------------------------------------------------

/// Index of the bin edge a percentile selects: with cdf = numpy.cumsum(counts / total) (each
/// count / total in double, summed in order), the first j with cdf[j] >= fraction
/// (numpy.searchsorted(cdf, fraction), side 'left'), or counts.size() if none. The edge
/// returned by the methods is edge(j): the LEFT edge of the bin where the cumulative
/// fraction reaches `fraction` (so the bin holding the percentile is clipped away), or hi.
/// Errors: fraction NaN or outside [0, 1]; counts empty or all zero; total overflow.
inline result<std::size_t> percentile_index(span<const std::uint64_t> counts, double fraction) {
    LOWBIT_DETAIL_CHECK(fraction >= 0.0 && fraction <= 1.0, errc::invalid_argument, "fraction", fraction,
                        "must be in [0, 1]");
    std::uint64_t total = 0;
    LOWBIT_DETAIL_TRY(detail::check_view(histogram_view{counts, 0.0, 1.0}, total));
    const double t = static_cast<double>(total);
    double cdf = 0.0;
    for (std::size_t j = 0; j < counts.size(); ++j) {
        cdf += static_cast<double>(counts[j]) / t;
        if (cdf >= fraction) return j;
    }
    return counts.size();
}

/// Symmetric percentile on a histogram of |x| (ONNX Runtime with symmetric=True, and
/// pytorch-quantization): t = edge(percentile_index(counts, percentile / 100)), clamped to a
/// known max; returns [-t, t]. `percentile` in [0, 100] (ORT's default 99.999).
/// Errors: those of percentile_index and of the view (see histogram_view); lo < 0.
inline result<clip_range> percentile_symmetric(const histogram_view& abs_hist, double percentile) {
    LOWBIT_DETAIL_CHECK(percentile >= 0.0 && percentile <= 100.0, errc::invalid_argument, "percentile", percentile,
                        "must be in [0, 100]");
    std::uint64_t total = 0;
    LOWBIT_DETAIL_TRY(detail::check_view(abs_hist, total));
    LOWBIT_DETAIL_CHECK(abs_hist.lo >= 0.0, errc::invalid_argument, "lo", abs_hist.lo,
                        "a histogram of |x| starts at lo >= 0");
    const result<std::size_t> idx = percentile_index(abs_hist.counts, percentile / 100.0);
    LOWBIT_DETAIL_TRY(idx.status());
    float t = detail::to_float_sat(detail::edge(abs_hist.lo, abs_hist.hi, abs_hist.counts.size(), *idx));
    t = t > abs_hist.max ? abs_hist.max : t;
    return clip_range{-t, t};
}

/// Asymmetric percentile on a histogram of x (ONNX Runtime with symmetric=False): with
/// cut = (100 - percentile) / 200, [edge(percentile_index(cut)), edge(percentile_index(1 - cut))],
/// clamped to a known [min, max] by clamp_to_data. Errors: as percentile_symmetric.
inline result<clip_range> percentile_asymmetric(const histogram_view& hist, double percentile) {
    LOWBIT_DETAIL_CHECK(percentile >= 0.0 && percentile <= 100.0, errc::invalid_argument, "percentile", percentile,
                        "must be in [0, 100]");
    std::uint64_t total = 0;
    LOWBIT_DETAIL_TRY(detail::check_view(hist, total));
    const double cut = (100.0 - percentile) / 200.0;
    const result<std::size_t> left = percentile_index(hist.counts, cut);
    const result<std::size_t> right = percentile_index(hist.counts, 1.0 - cut);
    LOWBIT_DETAIL_TRY(left.status());
    LOWBIT_DETAIL_TRY(right.status());
    const std::size_t n = hist.counts.size();
    const clip_range r{detail::to_float_sat(detail::edge(hist.lo, hist.hi, n, *left)),
                       detail::to_float_sat(detail::edge(hist.lo, hist.hi, n, *right))};
    return clamp_to_data(r, hist.min, hist.max);
}

// ------------------------------------------------------------------------------------------
// Entropy / KL divergence (TensorRT, "8-bit Inference with TensorRT", GTC 2017), exactly as
// NVIDIA's pytorch-quantization calib/histogram.py _compute_amax_entropy computes it
// ------------------------------------------------------------------------------------------

/// Options of the entropy method (defaults: pytorch-quantization's).
struct entropy_options {
    /// Bins the reference distribution is quantized into. 0 = automatic: 128 in the pure
    /// function (TensorRT's 8-bit value); the observers derive it from the scheme.
    std::size_t num_quantized_bins = 0;
    /// First candidate threshold bin; 0 = num_quantized_bins (pytorch-quantization: 128).
    /// Clamped to the histogram's size.
    std::size_t start_bin = 0;
    std::size_t stride = 1;  ///< candidate step, >= 1
    /// pytorch-quantization replaces bin 0 by bin 1 before searching (`bins[0] = bins[1]`, so
    /// the zeros of a ReLU do not dominate); false keeps bin 0 as is.
    bool first_bin_as_second = true;
};

/// The chosen candidate: threshold = edge(index), and its KL divergence.
struct entropy_result {
    std::size_t index = 0;
    double divergence = 0.0;
};

namespace detail {

// One candidate i of _compute_amax_entropy. bins' = counts with bins'[0] = counts[1] if asked.
// The reference quantizes bins'[:i] into nb bins with numpy.digitize(range(i),
// numpy.linspace(0, i, nb + 1)) - 1: group k = { j : space[k] <= j < space[k+1] } with
// space[k] = k * (i / nb) in double and space[nb] = i, i.e. j in [ceil(space[k]),
// ceil(space[k+1])). Empty bins stay empty; each non-empty bin of group k gets
// (sum of the group) / (non-empty bins in the group). P = bins'[:i], P[i-1] += sum(bins'[i:]).
// KL = scipy.stats.entropy(P, Q): pk = P / sum(P), qk = Q / sum(Q) (sums with numpy's pairwise
// summation), sum of rel_entr(pk, qk) = pk log(pk / qk) (0 if pk == 0, +inf if qk == 0 < pk).
class entropy_candidate {
public:
    entropy_candidate(span<const std::uint64_t> counts, bool first_as_second, std::size_t nb, std::uint64_t total)
        : m_counts(counts), m_first(first_as_second && counts.size() >= 2), m_nb(nb), m_total(total) {}

    std::uint64_t bin(std::size_t j) const noexcept { return (j == 0 && m_first) ? m_counts[1] : m_counts[j]; }

    double divergence(std::size_t i) const {
        const double step = static_cast<double>(i) / static_cast<double>(m_nb);
        q_stream q{this, i, step};
        const double sum_q = 0.0 + pairwise_sum(q, i);
        if (!(sum_q > 0.0)) return inf_d;  // bins'[:i] all empty: the reference's 0/0 = NaN; see entropy_threshold
        const std::uint64_t outliers = m_total - q.prefix;
        kl_stream kl{this, i, step, outliers, static_cast<double>(m_total), sum_q};
        return 0.0 + pairwise_sum(kl, i);
    }

private:
    // Q[j] / norm for j = 0, 1, ... (in order), computing each group when entered (the
    // division is done once per group: the same operands give the same double).
    struct q_stream {
        const entropy_candidate* self;
        std::size_t i;
        double step;
        double norm = 1.0;  // 1 for the first pass (sum of Q), sum(Q) for the second (qk)
        std::size_t j = 0, end = 0;
        double q = 0.0;
        std::uint64_t prefix = 0;  // sum of bins'[:end] seen so far (all of bins'[:i] at the end)

        double space(std::size_t k) const noexcept {
            return k >= self->m_nb ? static_cast<double>(i) : static_cast<double>(k) * step;
        }
        // largest k < nb with space[k] <= jj (numpy.digitize - 1).
        std::size_t digit(std::size_t jj) const noexcept {
            const double guess = static_cast<double>(jj) / step;  // then corrected exactly below
            std::size_t k = guess >= static_cast<double>(self->m_nb) ? self->m_nb - 1 : static_cast<std::size_t>(guess);
            while (k + 1 < self->m_nb && space(k + 1) <= static_cast<double>(jj)) ++k;
            while (k > 0 && space(k) > static_cast<double>(jj)) --k;
            return k;
        }
        void enter_group() {
            const std::size_t k = digit(j);
            if (k + 1 >= self->m_nb) {
                end = i;
            } else {
                const std::int64_t e = ceil_i64(space(k + 1));
                end = e < 0 ? 0 : static_cast<std::size_t>(e);
                if (end > i) end = i;
                if (end <= j) end = j + 1;  // cannot happen (space[k+1] > j); keeps progress
            }
            std::uint64_t sum = 0, nz = 0;
            for (std::size_t t = j; t < end; ++t) {
                const std::uint64_t c = self->bin(t);
                sum += c;
                nz += c != 0 ? 1u : 0u;
            }
            prefix += sum;
            q = nz != 0 ? static_cast<double>(sum) / static_cast<double>(nz) : 0.0;
            if (norm != 1.0) q = q / norm;
        }
        double operator()() {
            if (j == end) enter_group();
            const double v = self->bin(j) != 0 ? q : 0.0;
            ++j;
            return v;
        }
    };
    // rel_entr(pk[j], qk[j]) for j = 0, 1, ...; a repeated (count, qk) pair reuses the last term.
    struct kl_stream {
        const entropy_candidate* self;
        std::size_t i;
        double step;
        std::uint64_t outliers;
        double total, sum_q;
        q_stream q{self, i, step, sum_q};
        std::size_t j = 0;
        std::uint64_t last_p = 0;
        double last_q = -1.0, last_term = 0.0;

        double operator()() {
            const double qj = q();
            std::uint64_t p = self->bin(j);
            if (j + 1 == i) p += outliers;
            ++j;
            if (p == last_p && qj == last_q) return last_term;
            last_p = p;
            last_q = qj;
            const double pj = static_cast<double>(p) / total;
            if (pj > 0.0 && qj > 0.0)
                last_term = pj * log(pj / qj);
            else
                last_term = (pj == 0.0 && qj >= 0.0) ? 0.0 : inf_d;
            return last_term;
        }
    };

    span<const std::uint64_t> m_counts;
    bool m_first;
    std::size_t m_nb;
    std::uint64_t m_total;
};

}  // namespace detail

/// TensorRT's entropy calibration on a histogram of |x| (counts only; bin i's threshold is
/// edge(i)), exactly as pytorch-quantization's _compute_amax_entropy: for candidates
/// i = start_bin, start_bin + stride, ... <= counts.size(), the KL divergence between the
/// reference P (bins[:i], outliers bins[i:] added to its last bin) and its quantization Q
/// into num_quantized_bins bins (see detail::entropy_candidate), and the LAST i with the
/// smallest divergence (pytorch-quantization's reversed argmin). Threshold = edge(i), the
/// right edge of the last bin kept. Bitwise what the reference computes given a log that
/// rounds like libm's (this one is within 1 ulp; the golden test measures the difference).
/// Deviations, where the reference fails: start_bin > counts.size() is clamped to it (the
/// reference raises on an empty candidate list); a candidate whose bins[:i] are all empty
/// gets +inf (the reference's 0/0 gives NaN, which numpy's argmin would pick).
/// Exact for totals < 2^53 (the reference accumulates counts in float64).
/// Errors: counts empty or all zero (after the bin-0 replacement); stride 0; total overflow.
inline result<entropy_result> entropy_threshold(span<const std::uint64_t> counts, const entropy_options& o = {}) {
    LOWBIT_DETAIL_CHECK(o.stride >= 1, errc::invalid_argument, "stride", o.stride, "must be >= 1");
    LOWBIT_DETAIL_CHECK(!counts.empty(), errc::size_mismatch, "counts.size()", 0, "a histogram needs >= 1 bin");
    const std::size_t n = counts.size();
    const std::size_t nb = o.num_quantized_bins != 0 ? o.num_quantized_bins : 128;
    const bool first = o.first_bin_as_second && n >= 2;
    std::uint64_t total = 0;
    for (std::size_t j = 0; j < n; ++j) {
        const std::uint64_t c = (j == 0 && first) ? counts[1] : counts[j];
        LOWBIT_DETAIL_CHECK(total <= std::numeric_limits<std::uint64_t>::max() - c, errc::overflow, "counts", c,
                            "the total count overflows uint64");
        total += c;
    }
    LOWBIT_DETAIL_CHECK(total > 0, errc::invalid_argument, "counts", 0, "the histogram is empty (all counts 0)");
    std::size_t start = o.start_bin != 0 ? o.start_bin : nb;
    if (start > n) start = n;
    const detail::entropy_candidate cand(counts, o.first_bin_as_second, nb, total);
    entropy_result best{n, detail::inf_d};
    for (std::size_t i = start;; i += o.stride) {
        const double d = cand.divergence(i);
        if (d <= best.divergence) best = {i, d};  // <=: the last argmin
        if (n - i < o.stride) break;
    }
    return best;
}

/// entropy_threshold on a histogram of |x| over [lo, hi] (lo is normally 0): t = edge(index),
/// clamped to a known max; returns [-t, t]. Errors: those of the view and of entropy_threshold;
/// lo < 0.
inline result<clip_range> entropy(const histogram_view& abs_hist, const entropy_options& o = {}) {
    std::uint64_t total = 0;
    LOWBIT_DETAIL_TRY(detail::check_view(abs_hist, total));
    LOWBIT_DETAIL_CHECK(abs_hist.lo >= 0.0, errc::invalid_argument, "lo", abs_hist.lo,
                        "a histogram of |x| starts at lo >= 0");
    const result<entropy_result> r = entropy_threshold(abs_hist.counts, o);
    LOWBIT_DETAIL_TRY(r.status());
    float t = detail::to_float_sat(detail::edge(abs_hist.lo, abs_hist.hi, abs_hist.counts.size(), r->index));
    t = t > abs_hist.max ? abs_hist.max : t;
    return clip_range{-t, t};
}

// ------------------------------------------------------------------------------------------
// MSE: the range whose qparams minimise the expected squared quantization error
// ------------------------------------------------------------------------------------------

/// Options of the MSE method.
struct mse_options {
    /// Affine schemes search (min, max) pairs: exhaustively when each side has at most
    /// affine_grid + 1 candidates, else on a coarse grid of about affine_grid steps per side
    /// followed by an exhaustive search of the +-(step - 1) window around the best pair.
    /// 0 = always exhaustive (O(bins^2) candidates: slow for 2048 bins).
    std::size_t affine_grid = 64;
};

/// Doubles of workspace mse() needs for a histogram of `bins` bins.
constexpr std::size_t mse_workspace_size(std::size_t bins) noexcept { return 3 * (bins + 1); }

namespace detail {

struct moments {
    double m0 = 0.0, m1 = 0.0, m2 = 0.0;
};

// The histogram as a density: bin j's mass spread uniformly over its support
// [clamp(dlo, a_j, b_j), clamp(dhi, a_j, b_j)] (its edges cut to the data range; a point
// mass if that is a single point), with prefix sums of the moments of mass, x and x^2.
class mse_model {
public:
    mse_model(const histogram_view& h, double dlo, double dhi, span<double> ws) noexcept
        : m_h(h), m_n(h.counts.size()), m_w((h.hi - h.lo) / static_cast<double>(h.counts.size())), m_dlo(dlo),
          m_dhi(dhi), m_p0(ws.data()), m_p1(ws.data() + (m_n + 1)), m_p2(ws.data() + 2 * (m_n + 1)) {
        m_p0[0] = m_p1[0] = m_p2[0] = 0.0;
        for (std::size_t j = 0; j < m_n; ++j) {
            double u = 0.0, v = 0.0;
            support(j, u, v);
            const double m = static_cast<double>(h.counts[j]);
            m_p0[j + 1] = m_p0[j] + m;
            m_p1[j + 1] = m_p1[j] + m * (u + v) * 0.5;
            m_p2[j + 1] = m_p2[j] + m * (u * u + u * v + v * v) / 3.0;
        }
    }

    moments total() const noexcept { return {m_p0[m_n], m_p1[m_n], m_p2[m_n]}; }

    // Moments of the mass strictly below x.
    moments below(double x) const noexcept {
        std::int64_t jj = floor_i64(((x < m_h.lo ? m_h.lo : x > m_h.hi ? m_h.hi : x) - m_h.lo) / m_w);
        const std::size_t j = jj < 0 ? 0 : static_cast<std::size_t>(jj) >= m_n ? m_n - 1 : static_cast<std::size_t>(jj);
        moments r{m_p0[j], m_p1[j], m_p2[j]};
        const double m = static_cast<double>(m_h.counts[j]);
        if (m == 0.0) return r;
        double u = 0.0, v = 0.0;
        support(j, u, v);
        if (v > u) {
            const double t = x < u ? u : x > v ? v : x;
            const double d = m / (v - u), dt = t - u;
            r.m0 += d * dt;
            r.m1 += d * dt * (t + u) * 0.5;
            r.m2 += d * dt * (t * t + t * u + u * u) / 3.0;
        } else if (x > u) {
            r.m0 += m;
            r.m1 += m * u;
            r.m2 += m * u * u;
        }
        return r;
    }

    // Expected squared error sum over the data of x - dequantize(quantize(x)) with qp:
    // level k in [qmin, qmax] reconstructs (k - zp) * scale and takes x in
    // [(k - 0.5 - zp) scale, (k + 0.5 - zp) scale) (the ends extend to -inf / +inf: clamping).
    // Stops early, returning a partial sum > bound, once the sum exceeds `bound` (the terms
    // are >= 0 up to rounding, so such a candidate cannot win).
    template <class Scheme>
    double error(const Scheme& s, qparams qp, double bound = inf_d) const noexcept {
        const double sc = static_cast<double>(qp.scale), z = static_cast<double>(qp.zero_point);
        const std::int64_t qmin = s.qmin(), qmax = s.qmax();
        double first = m_dlo / sc + z - 0.5;  // a level at or below the one of the data's lower end
        first = first < static_cast<double>(qmin) ? static_cast<double>(qmin)
                : first > static_cast<double>(qmax) ? static_cast<double>(qmax) : first;
        std::int64_t k = floor_i64(first);
        moments prev = k == qmin ? moments{} : below((static_cast<double>(k) - 0.5 - z) * sc);
        const moments all = total();
        double e = 0.0;
        for (; k <= qmax; ++k) {
            const double upper = (static_cast<double>(k) + 0.5 - z) * sc;
            const moments cur = k == qmax ? all : below(upper);
            const double r = (static_cast<double>(k) - z) * sc;
            const double d0 = cur.m0 - prev.m0, d1 = cur.m1 - prev.m1, d2 = cur.m2 - prev.m2;
            e += d2 - r * (2.0 * d1 - r * d0);
            prev = cur;
            if (upper > m_dhi || e > bound) break;  // all mass counted, or already worse
        }
        return e;
    }

private:
    void support(std::size_t j, double& u, double& v) const noexcept {
        const double a = edge(m_h.lo, m_h.hi, m_n, j), b = edge(m_h.lo, m_h.hi, m_n, j + 1);
        u = m_dlo < a ? a : m_dlo > b ? b : m_dlo;
        v = m_dhi < a ? a : m_dhi > b ? b : m_dhi;
    }

    const histogram_view& m_h;
    std::size_t m_n;
    double m_w, m_dlo, m_dhi;
    double* m_p0;
    double* m_p1;
    double* m_p2;
};

// Affine candidate ends: index 0 is 0; then the bin edges strictly between 0 and the data
// end, moving away from 0; then the data end itself (if != 0).
struct end_candidates {
    double lo, hi;
    std::size_t n;
    std::size_t first;  // bin-edge index of candidate 1
    std::size_t count_edges;
    bool negative;
    double data_end;
    std::size_t size() const noexcept { return 1 + count_edges + (data_end != 0.0 ? 1 : 0); }
    double operator[](std::size_t i) const noexcept {
        if (i == 0) return 0.0;
        if (i <= count_edges) return edge(lo, hi, n, negative ? first - (i - 1) : first + (i - 1));
        return data_end;
    }
};

inline end_candidates make_end_candidates(const histogram_view& h, double data_end, bool negative) {
    const std::size_t n = h.counts.size();
    end_candidates c{h.lo, h.hi, n, 0, 0, negative, data_end};
    if (negative) {
        if (!(data_end < 0.0)) return c;
        // edges e with data_end < e < 0, from the one nearest 0 downwards
        std::size_t j = n + 1;
        for (std::size_t t = n + 1; t-- > 0;) {
            const double e = edge(h.lo, h.hi, n, t);
            if (e < 0.0 && e > data_end) {
                if (j == n + 1) j = t;
                ++c.count_edges;
            } else if (e <= data_end) {
                break;
            }
        }
        c.first = j == n + 1 ? 0 : j;
    } else {
        if (!(data_end > 0.0)) return c;
        std::size_t j = n + 1;
        for (std::size_t t = 0; t <= n; ++t) {
            const double e = edge(h.lo, h.hi, n, t);
            if (e > 0.0 && e < data_end) {
                if (j == n + 1) j = t;
                ++c.count_edges;
            } else if (e >= data_end) {
                break;
            }
        }
        c.first = j == n + 1 ? 0 : j;
    }
    return c;
}

}  // namespace detail

/// The clipping range minimising the expected squared quantization error for scheme `s`,
/// from a histogram of x. Error model: each bin's mass is spread uniformly over the bin (cut
/// to a known data min / max at the end bins; a point mass where that leaves one point), and
/// the error of a candidate is computed exactly (piecewise-quadratic integrals) for the
/// qparams choose_qparams(s, cmin, cmax) gives - the scheme's real levels, divisor,
/// zero-point rounding and clamping (with x / scale in double, not torch's float reciprocal).
/// Data bounds [dlo, dhi]: the non-empty bins' span, cut to a known min / max.
/// Candidates (first minimum wins, in the order listed):
///   symmetric schemes: [-t, t] for t in the absolute values of the bin edges strictly
///     inside (dlo, dhi), ascending without duplicates, then t = max(|dlo|, |dhi|);
///   affine schemes: [a, b], a in {0, bin edges in (dlo, 0) descending, dlo if < 0} and b in
///     {0, bin edges in (0, dhi) ascending, dhi if > 0}, except [0, 0]; searched as
///     mse_options::affine_grid says (a outer, b inner).
/// Data only at 0 gives [0, 0]. `workspace` holds >= mse_workspace_size(bins) doubles.
/// Errors: invalid or non-per-tensor scheme; more than 65536 levels (s32); an invalid view
/// (see histogram_view); workspace too small.
template <class Scheme>
result<clip_range> mse(const Scheme& s, const histogram_view& h, span<double> workspace, const mse_options& o = {}) {
    LOWBIT_DETAIL_TRY(s.validate());
    LOWBIT_DETAIL_TRY(::lowbit::detail::check_per_tensor(s));
    LOWBIT_DETAIL_CHECK(static_cast<std::int64_t>(s.qmax()) - s.qmin() < 65536, errc::invalid_argument, "quant_max",
                        s.qmax(), "the MSE search supports at most 65536 levels");
    std::uint64_t total = 0;
    LOWBIT_DETAIL_TRY(detail::check_view(h, total));
    const std::size_t n = h.counts.size();
    LOWBIT_DETAIL_CHECK(workspace.size() >= mse_workspace_size(n), errc::size_mismatch, "workspace.size()",
                        workspace.size(), "must be >= mse_workspace_size(bins)");
    std::size_t f = 0, l = n - 1;
    while (h.counts[f] == 0) ++f;
    while (h.counts[l] == 0) --l;
    double dlo = detail::edge(h.lo, h.hi, n, f), dhi = detail::edge(h.lo, h.hi, n, l + 1);
    if (static_cast<double>(h.min) > dlo) dlo = static_cast<double>(h.min);
    if (static_cast<double>(h.max) < dhi) dhi = static_cast<double>(h.max);
    if (dhi < dlo) dhi = dlo;  // a known min / max outside the non-empty bins: keep a valid range
    const double lo0 = dlo < 0.0 ? dlo : 0.0, hi0 = dhi > 0.0 ? dhi : 0.0;
    if (lo0 == 0.0 && hi0 == 0.0) return clip_range{0.0f, 0.0f};

    const detail::mse_model model(h, dlo, dhi, workspace);
    double best = detail::inf_d;
    clip_range best_range{detail::to_float_sat(lo0), detail::to_float_sat(hi0)};
    const auto consider = [&](double a, double b) {
        const float fa = detail::to_float_sat(a), fb = detail::to_float_sat(b);
        const qparams qp = choose_qparams(s, fa, fb).value();
        const double e = model.error(s, qp, best);
        if (e < best) {
            best = e;
            best_range = {fa, fb};
        }
    };

    if (Scheme::sym != symmetry::affine) {
        const double top = -lo0 > hi0 ? -lo0 : hi0;
        // merge |negative edges| (walking down from 0) and positive edges (walking up)
        const detail::end_candidates neg = detail::make_end_candidates(h, lo0, true);
        const detail::end_candidates pos = detail::make_end_candidates(h, hi0, false);
        std::size_t a = 1, b = 1;
        double last = 0.0;
        while (a <= neg.count_edges || b <= pos.count_edges) {
            const double va = a <= neg.count_edges ? -neg[a] : detail::inf_d;
            const double vb = b <= pos.count_edges ? pos[b] : detail::inf_d;
            const double t = va < vb ? va : vb;
            if (va <= vb) ++a;
            if (vb <= va) ++b;
            if (t > last && t < top) consider(-t, t);
            last = t > last ? t : last;
        }
        consider(-top, top);
        return best_range;
    }

    const detail::end_candidates ca = detail::make_end_candidates(h, lo0, true);
    const detail::end_candidates cb = detail::make_end_candidates(h, hi0, false);
    const std::size_t na = ca.size(), nb = cb.size();
    const auto pair = [&](std::size_t i, std::size_t j) {
        if (i == 0 && j == 0) return;
        consider(ca[i], cb[j]);
    };
    const std::size_t grid = o.affine_grid;
    if (grid == 0 || (na <= grid + 1 && nb <= grid + 1)) {
        for (std::size_t i = 0; i < na; ++i)
            for (std::size_t j = 0; j < nb; ++j) pair(i, j);
        return best_range;
    }
    const std::size_t ga = grid == 0 || na <= 1 ? 1 : (na - 1 + grid - 1) / grid;
    const std::size_t gb = grid == 0 || nb <= 1 ? 1 : (nb - 1 + grid - 1) / grid;
    std::size_t bi = 0, bj = 0;
    for (std::size_t i = 0;; i = i + ga < na - 1 ? i + ga : na - 1) {
        for (std::size_t j = 0;; j = j + gb < nb - 1 ? j + gb : nb - 1) {
            const double before = best;
            pair(i, j);
            if (best < before) bi = i, bj = j;
            if (j == nb - 1) break;
        }
        if (i == na - 1) break;
    }
    const std::size_t i0 = bi >= ga - 1 ? bi - (ga - 1) : 0, i1 = bi + ga - 1 < na - 1 ? bi + ga - 1 : na - 1;
    const std::size_t j0 = bj >= gb - 1 ? bj - (gb - 1) : 0, j1 = bj + gb - 1 < nb - 1 ? bj + gb - 1 : nb - 1;
    for (std::size_t i = i0; i <= i1; ++i)
        for (std::size_t j = j0; j <= j1; ++j) pair(i, j);
    return best_range;
}

}  // namespace calibration

// ------------------------------------------------------------------------------------------
// exact_histogram
// ------------------------------------------------------------------------------------------

/// A histogram that merges exactly. Bins = 2^b (2 <= Bins <= 2^20). State: an exponent e and
/// Bins counts; bin j holds the values x with floor(x / 2^e) == j - Bins/2, i.e. the bins
/// tile [-R, R) with R = (Bins/2) 2^e. e is the smallest exponent with every observed value
/// in [-R, R) (a value equal to -R fits; one equal to R does not); a batch that needs a
/// larger e merges neighbouring bins in groups of 2^(e_new - e) by integer addition.
/// Consequently e is a function of the overall [min, max] alone, every value's bin is
/// floor(x / 2^e_final), and observing, merging and loading in any split and order give
/// bit-identical counts. Zeros (+0 and -0) go to bin Bins/2. A histogram that saw only
/// zeros has e = min_exponent.
/// Non-finite values are refused (error, nothing changes); so is a count overflowing uint64.
template <std::size_t Bins>
class exact_histogram {
    static_assert(Bins >= 2 && Bins <= (std::size_t{1} << 20) && (Bins & (Bins - 1)) == 0,
                  "lowbit::exact_histogram: Bins must be a power of two in [2, 2^20]");

    static constexpr int log2_bins() noexcept {
        int k = 0;
        while ((std::size_t{1} << k) < Bins) ++k;
        return k;
    }

public:
    static constexpr std::size_t bins = Bins;
    static constexpr std::size_t half = Bins / 2;
    static constexpr int b = log2_bins();
    /// Exponent of a histogram with no nonzero value (below any exponent data needs).
    static constexpr int min_exponent = -149 - b;
    /// Largest exponent data can need (|x| <= FLT_MAX < 2^128).
    static constexpr int max_exponent = 129 - b;
    /// Bytes write() produces.
    static constexpr std::size_t payload_size = 4 + 4 + 4 + 8 + 8 + 8 * Bins;

    constexpr exact_histogram() noexcept = default;

    /// Adds a batch, a strided view (core/strided.hpp) or a span; the counts do not depend on
    /// the view's layout. Empty x: no change (not counted as a batch). Errors (nothing changes):
    /// a NaN or +-Inf in x (naming its index in element order); the total count would overflow
    /// uint64.
    status add(strided_view<const float> x) {
        if (x.empty()) return {};
        float mn = 0.0f, mx = 0.0f;
        LOWBIT_DETAIL_TRY(::lowbit::detail::batch_min_max(x, mn, mx));
        LOWBIT_DETAIL_CHECK(m_stats.count <= std::numeric_limits<std::uint64_t>::max() - x.size(), errc::overflow,
                            "x.size()", x.size(), "the histogram's total count would overflow uint64");
        const int need = required_exponent(mn, mx);
        if (need > m_exp) rebin(need);
        x.for_each_chunk([this](const float* p, std::size_t n) { count(span<const float>(p, n)); });
        m_stats.min = mn < m_stats.min ? mn : m_stats.min;
        m_stats.max = mx > m_stats.max ? mx : m_stats.max;
        m_stats.count += x.size();
        m_stats.batches += 1;
        return {};
    }
    /// add() of a contiguous batch.
    status add(span<const float> x) { return add(strided_view<const float>(x)); }

    /// Adds another histogram's counts and statistics (exact). Errors (nothing changes): the
    /// total count or batch count would overflow uint64.
    status merge(const exact_histogram& o) {
        LOWBIT_DETAIL_CHECK(m_stats.count <= std::numeric_limits<std::uint64_t>::max() - o.m_stats.count &&
                                m_stats.batches <= std::numeric_limits<std::uint64_t>::max() - o.m_stats.batches,
                            errc::overflow, "other.count", o.m_stats.count, "the merged count would overflow uint64");
        if (o.m_stats.count == 0) return {};
        if (&o == this) {
            for (std::uint64_t& c : m_counts) c *= 2;
            m_stats.count *= 2;
            m_stats.batches *= 2;
            return {};
        }
        if (o.m_exp > m_exp) rebin(o.m_exp);
        const int d = m_exp - o.m_exp;
        for (std::size_t j = 0; j < Bins; ++j) {
            if (o.m_counts[j] == 0) continue;
            const std::int64_t r = static_cast<std::int64_t>(j) - static_cast<std::int64_t>(half);
            m_counts[static_cast<std::size_t>(calibration::detail::floor_shift(r, d) + static_cast<std::int64_t>(half))] +=
                o.m_counts[j];
        }
        m_stats.min = o.m_stats.min < m_stats.min ? o.m_stats.min : m_stats.min;
        m_stats.max = o.m_stats.max > m_stats.max ? o.m_stats.max : m_stats.max;
        m_stats.count += o.m_stats.count;
        m_stats.batches += o.m_stats.batches;
        return {};
    }

    void reset() noexcept { *this = exact_histogram{}; }

    bool empty() const noexcept { return m_stats.count == 0; }
    const observer_stats& stats() const noexcept { return m_stats; }
    /// Bin width 2^exponent().
    int exponent() const noexcept { return m_exp; }
    double bin_width() const noexcept { return calibration::detail::pow2(m_exp); }
    /// R = (Bins/2) * 2^e: the bins tile [-R, R).
    double range() const noexcept { return calibration::detail::pow2(m_exp + b - 1); }
    span<const std::uint64_t> counts() const noexcept { return {m_counts, Bins}; }

    /// The histogram of x: Bins bins over [-R, R], with the observed min / max.
    histogram_view view() const noexcept { return {counts(), -range(), range(), m_stats.min, m_stats.max}; }

    /// The histogram of |x|: Bins/2 bins over [0, R] written to `out` (which must hold
    /// Bins/2 counts); abs bin k = bin (Bins/2 + k) + bin (Bins/2 - 1 - k), i.e. values in
    /// [k w, (k+1) w) and in (-(k+1) w, -k w] (exactly -(k+1) w counts in bin k).
    /// With `trim`, the bins after the last non-empty one are dropped (hi becomes that bin's
    /// right edge). max = max(|min|, |max|); min unknown (-inf).
    histogram_view abs_view(span<std::uint64_t> out, bool trim = false) const noexcept {
        std::size_t last = 0;
        for (std::size_t k = 0; k < half && k < out.size(); ++k) {
            out[k] = m_counts[half + k] + m_counts[half - 1 - k];
            if (out[k] != 0) last = k;
        }
        std::size_t n = trim ? last + 1 : half;
        n = n < out.size() ? n : out.size();
        const double w = bin_width();
        const float amax = -m_stats.min > m_stats.max ? -m_stats.min : m_stats.max;
        return {span<const std::uint64_t>(out.data(), n), 0.0, trim ? static_cast<double>(n) * w : range(),
                -std::numeric_limits<float>::infinity(), empty() ? std::numeric_limits<float>::infinity() : amax};
    }

    /// Serialised state: i32 exponent, f32 min, f32 max, u64 count, u64 batches, u64 counts[Bins].
    void write(state_writer& w) const {
        w.i32(m_exp);
        w.f32(m_stats.min);
        w.f32(m_stats.max);
        w.u64(m_stats.count);
        w.u64(m_stats.batches);
        for (const std::uint64_t c : m_counts) w.u64(c);
    }

    /// Replaces the state with a serialised one after checking it is one this class can be in:
    /// exact size; empty (all zero, +inf / -inf, min_exponent) or finite min <= max with
    /// exponent == the one [min, max] needs, 1 <= batches <= count, counts summing to count,
    /// and the first / last non-empty bins being those of min / max. Errors leave it unchanged.
    status read(span<const std::uint8_t> payload) {
        LOWBIT_DETAIL_CHECK(payload.size() == payload_size, errc::size_mismatch, "state payload size", payload.size(),
                            "does not match the histogram's bin count");
        state_reader r{payload};
        const int e = r.i32();
        observer_stats s;
        s.min = r.f32();
        s.max = r.f32();
        s.count = r.u64();
        s.batches = r.u64();
        state_reader cr = r;
        std::uint64_t sum = 0;
        std::size_t first = Bins, last = 0;
        for (std::size_t j = 0; j < Bins; ++j) {
            const std::uint64_t c = cr.u64();
            LOWBIT_DETAIL_CHECK(sum <= std::numeric_limits<std::uint64_t>::max() - c, errc::invalid_argument,
                                "state counts", j, "sum overflows uint64");
            sum += c;
            if (c != 0) {
                if (first == Bins) first = j;
                last = j;
            }
        }
        LOWBIT_DETAIL_CHECK(sum == s.count, errc::invalid_argument, "state count", s.count,
                            "does not equal the sum of the bin counts");
        if (s.count == 0) {
            LOWBIT_DETAIL_CHECK(s.batches == 0 && s.min == calibration::detail::inf_f &&
                                    s.max == -calibration::detail::inf_f && e == min_exponent,
                                errc::invalid_argument, "state batches", s.batches,
                                "an empty histogram has no batches, min +inf, max -inf and the minimum exponent");
        } else {
            LOWBIT_DETAIL_CHECK(::lowbit::detail::is_finite(s.min) && ::lowbit::detail::is_finite(s.max) && s.min <= s.max,
                                errc::invalid_argument, "state min", s.min, "must be finite and <= max");
            LOWBIT_DETAIL_CHECK(s.batches >= 1 && s.batches <= s.count, errc::invalid_argument, "state batches",
                                s.batches, "must be in [1, count]");
            LOWBIT_DETAIL_CHECK(e == required_exponent(s.min, s.max), errc::invalid_argument, "state exponent", e,
                                "is not the exponent the saved [min, max] needs");
            LOWBIT_DETAIL_CHECK(first == bin_of(s.min, e) && last == bin_of(s.max, e), errc::invalid_argument,
                                "state counts", first, "the first / last non-empty bins are not those of min / max");
        }
        m_exp = e;
        m_stats = s;
        for (std::uint64_t& c : m_counts) c = r.u64();
        return {};
    }

    /// The exponent a batch with this min and max needs on its own (min_exponent if both 0).
    static int required_exponent(float mn, float mx) noexcept {
        int e = min_exponent;
        bool p2 = false;
        if (mx > 0.0f) {
            const int k = float_exponent(mx, p2);
            e = k + 2 - b > e ? k + 2 - b : e;
        }
        if (mn < 0.0f) {
            const int k = float_exponent(mn, p2);
            const int need = p2 ? k + 1 - b : k + 2 - b;
            e = need > e ? need : e;
        }
        return e;
    }

    /// Bin of a finite x at exponent e (x must fit: -R <= x < R).
    static std::size_t bin_of(float x, int e) noexcept {
        const double p = static_cast<double>(x) * calibration::detail::pow2(-e);
        return static_cast<std::size_t>(calibration::detail::floor_i64(p) + static_cast<std::int64_t>(half));
    }

private:
    // floor(log2 |x|) of a finite nonzero float, and whether |x| is a power of two.
    static int float_exponent(float x, bool& pow2) noexcept {
        const std::uint32_t bits = __builtin_bit_cast(std::uint32_t, x) & 0x7FFFFFFFu;
        const int be = static_cast<int>(bits >> 23);
        const std::uint32_t m = bits & 0x7FFFFFu;
        if (be == 0) {  // subnormal: m * 2^-149
            int hb = 22;
            while ((m >> hb) == 0) --hb;
            pow2 = (m & (m - 1)) == 0;
            return hb - 149;
        }
        pow2 = m == 0;
        return be - 127;
    }

    // Raises the exponent to e, merging bins: new bin of relative index r is floor(r / 2^d).
    // In place: targets move toward the centre, so walking outward from it reads each source
    // before it can be written.
    void rebin(int e) noexcept {
        const int d = e - m_exp;
        m_exp = e;
        const auto h = static_cast<std::int64_t>(half);
        for (std::int64_t r = 0; r < h; ++r) {
            const std::uint64_t c = m_counts[static_cast<std::size_t>(r + h)];
            if (c == 0) continue;
            const std::int64_t t = calibration::detail::floor_shift(r, d);
            if (t == r) continue;
            m_counts[static_cast<std::size_t>(r + h)] = 0;
            m_counts[static_cast<std::size_t>(t + h)] += c;
        }
        for (std::int64_t r = -1; r >= -h; --r) {
            const std::uint64_t c = m_counts[static_cast<std::size_t>(r + h)];
            if (c == 0) continue;
            const std::int64_t t = calibration::detail::floor_shift(r, d);
            if (t == r) continue;
            m_counts[static_cast<std::size_t>(r + h)] = 0;
            m_counts[static_cast<std::size_t>(t + h)] += c;
        }
    }

    // Counts a finite batch that fits [-R, R) at m_exp. With 2^-e a normal float, x * 2^-e is
    // exact in float unless it underflows; only a negative x whose product rounds to -0 then
    // lands on the wrong side of 0, and is moved to bin -1. Otherwise the product is formed in
    // double, where it is always exact.
    void count(span<const float> x) noexcept {
        std::uint64_t* c = m_counts + half;
        const std::size_t n = x.size();
        const float* p = x.data();
        if (m_exp >= -127 && m_exp <= 126) {
            const float sc = calibration::detail::pow2f(-m_exp);
            constexpr std::size_t chunk = 256;  // a fixed trip count lets -O2 vectorize the index loop
            std::int32_t idx[chunk];
            const std::size_t full = n / chunk * chunk;
            for (std::size_t i0 = 0; i0 < full; i0 += chunk) {
                for (std::size_t i = 0; i < chunk; ++i) idx[i] = float_bin(p[i0 + i], sc);
                for (std::size_t i = 0; i < chunk; ++i) ++c[idx[i]];
            }
            for (std::size_t i = full; i < n; ++i) ++c[float_bin(p[i], sc)];
        } else {
            const double sc = calibration::detail::pow2(-m_exp);
            for (std::size_t i = 0; i < n; ++i) {
                const std::int64_t t = calibration::detail::floor_i64(static_cast<double>(p[i]) * sc);
                ++c[t];
            }
        }
    }

    // floor(v * sc) for v * sc in [-Bins/2, Bins/2), sc = 2^-e a normal float (see count()).
    static std::int32_t float_bin(float v, float sc) noexcept {
        const float q = v * sc;
        std::int32_t t = static_cast<std::int32_t>(q);
        t -= q < static_cast<float>(t) ? 1 : 0;
        t -= (v < 0.0f && t == 0) ? 1 : 0;
        return t;
    }

    int m_exp = min_exponent;
    observer_stats m_stats;
    std::uint64_t m_counts[Bins] = {};
};

// ------------------------------------------------------------------------------------------
// The observers around exact_histogram (percentile.hpp, mse.hpp, entropy.hpp)
// ------------------------------------------------------------------------------------------

namespace detail {

/// An observer keeping an exact_histogram<Bins> and turning it into a clipping range with
/// `Method` (percentile_method, mse_method, entropy_method), then into qparams with
/// choose_qparams. API as minmax_observer's; merge is exact (see exact_histogram).
template <class Scheme, std::size_t Bins, class Method>
class histogram_calibration_observer {
public:
    using scheme_type = Scheme;
    using options_type = typename Method::options;
    using histogram_type = exact_histogram<Bins>;
    static constexpr observer_kind kind = Method::kind;
    static constexpr std::size_t bins = Bins;

    /// The scheme and options are checked by every call (not here), as minmax_observer does.
    explicit histogram_calibration_observer(const Scheme& s = Scheme{}, const options_type& o = options_type{}) noexcept
        : m_scheme(s), m_options(o) {}

    /// Adds a batch (a strided view, core/strided.hpp; empty x: no change) to the histogram.
    /// Errors (nothing changes): invalid or non-per-tensor scheme, invalid options, a
    /// non-finite value in x, count overflow.
    status observe(strided_view<const float> x) {
        LOWBIT_DETAIL_TRY(check_config());
        return m_hist.add(x);
    }
    /// observe() of a contiguous batch.
    status observe(span<const float> x) { return observe(strided_view<const float>(x)); }

    /// The method's clipping range; {+inf, -inf} if nothing was observed.
    result<clip_range> range() const {
        LOWBIT_DETAIL_TRY(check_config());
        if (m_hist.empty()) return clip_range{calibration::detail::inf_f, -calibration::detail::inf_f};
        return Method::compute(m_scheme, m_hist, m_options);
    }

    /// choose_qparams(scheme, range()): {1.0, 0} if nothing was observed.
    result<lowbit::qparams> qparams() const {
        const result<clip_range> r = range();
        LOWBIT_DETAIL_TRY(r.status());
        return choose_qparams(m_scheme, r->min, r->max);
    }

    void reset() noexcept { m_hist.reset(); }
    const observer_stats& stats() const noexcept { return m_hist.stats(); }
    const Scheme& scheme() const noexcept { return m_scheme; }
    const options_type& options() const noexcept { return m_options; }
    const histogram_type& histogram() const noexcept { return m_hist; }

    /// Tag of the configuration (scheme, Bins, method options); merge / load need equal tags.
    std::uint32_t config() const noexcept {
        config_hash h = scheme_config(m_scheme);
        h.add(Bins);
        Method::hash(h, m_options);
        return h.value();
    }

    /// Adds another observer's histogram (exact). Errors (nothing changes): invalid
    /// configuration, configurations differ, count overflow.
    status merge(const histogram_calibration_observer& other) {
        LOWBIT_DETAIL_TRY(check_config());
        LOWBIT_DETAIL_CHECK(other.config() == config(), errc::invalid_argument, "other.config()", other.config(),
                            "observers must have the same scheme, bins and options to merge");
        return m_hist.merge(other.m_hist);
    }

    /// Bytes save() writes.
    std::size_t state_size() const noexcept { return state_header_size + histogram_type::payload_size; }
    /// Writes the state (state.hpp layout; payload: exact_histogram::write). Errors: invalid
    /// configuration; out too small.
    status save(span<std::uint8_t> out) const {
        LOWBIT_DETAIL_TRY(check_config());
        return save_state(static_cast<std::uint16_t>(kind), config(), out, [this](state_writer& w) { m_hist.write(w); });
    }
    /// Replaces the state with a saved one. Errors (observer unchanged): truncated, corrupted,
    /// other version / observer type / configuration, or a payload exact_histogram::read refuses.
    status load(span<const std::uint8_t> in) {
        LOWBIT_DETAIL_TRY(check_config());
        span<const std::uint8_t> payload;
        LOWBIT_DETAIL_TRY(check_state(in, static_cast<std::uint16_t>(kind), config(), payload));
        return m_hist.read(payload);
    }

private:
    status check_config() const {
        LOWBIT_DETAIL_TRY(m_scheme.validate());
        LOWBIT_DETAIL_TRY(::lowbit::detail::check_per_tensor(m_scheme));
        return Method::check(m_scheme, m_options);
    }

    Scheme m_scheme;
    options_type m_options;
    histogram_type m_hist;
};

}  // namespace detail
}  // namespace lowbit

#endif  // LOWBIT_OBSERVERS_CALIBRATION_METHODS_HPP
