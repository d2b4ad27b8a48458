// lowbit/kernels/reduce.hpp: SIMD reductions for observers (per-tensor and per-channel
// min / max, fixed-range histogram), bit-identical to lowbit::ref::min_max / histogram
// (lowbit/core/reduce.hpp defines NaN, empty and signed-zero results), same signatures,
// checks and errors, plus an architecture template parameter.
//
// min / max per tensor: minps / maxps with the data as first operand return the accumulator
// when the element is NaN, so NaN never enters the accumulators; an unordered compare
// records it separately (NEON's FMIN / FMAX do let NaN in, but the recorded flag decides the
// result then, so the accumulators' values no longer matter). Zeros of either sign compare equal, which makes the sign of a zero
// result depend on the visiting order; the result's zeros are made +0.0, as the reference
// defines. The tail is padded with copies of the first element, which change nothing.
// Per channel: runs of >= 2 blocks with one channel use the per-tensor code; otherwise
// (channel axis innermost, short runs) rows are grouped so that each block of row positions
// always holds the same channels, and its registers accumulate over all rows before folding
// into the channels (min_max_positions).
// histogram: the bin index of a block of 64 elements (or 4 * lanes, if more) is computed in
// SIMD exactly as the reference (sub, mul, div in float32, truncation, clamp to the last bin;
// a spare slot or -1 for dropped elements), then counted by scalar increments, pipelined with
// the next block's bins (histogram_loop).
#ifndef LOWBIT_KERNELS_REDUCE_HPP
#define LOWBIT_KERNELS_REDUCE_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../core/reduce.hpp"
#include "arch.hpp"
#include "simd.hpp"

namespace lowbit {
namespace kernels {
namespace detail {

/// A per-tensor min / max before finish_min_max (NaN and zero handling).
struct min_max_raw {
    float min = std::numeric_limits<float>::infinity();
    float max = -std::numeric_limits<float>::infinity();
    bool nan = false;
};

#if LOWBIT_HAS_XSIMD

// Four registers of minima, maxima and NaN flags (explicit members: GCC keeps them in
// registers, it would not for arrays).
template <class A>
struct min_max_acc {
    fbatch<A> mn0, mn1, mn2, mn3, mx0, mx1, mx2, mx3;
    xsimd::batch_bool<float, A> nan0, nan1, nan2, nan3;
};

template <class A>
LOWBIT_FORCE_INLINE void min_max_init(min_max_acc<A>& a) noexcept {
    a.mn0 = a.mn1 = a.mn2 = a.mn3 = fbatch<A>(std::numeric_limits<float>::infinity());
    a.mx0 = a.mx1 = a.mx2 = a.mx3 = fbatch<A>(-std::numeric_limits<float>::infinity());
    a.nan0 = a.nan1 = a.nan2 = a.nan3 = fbatch<A>(0.0f) != fbatch<A>(0.0f);
}

// minps(v, acc) returns acc when v is NaN: NaN never enters mn / mx.
template <class A>
LOWBIT_FORCE_INLINE void min_max_one(fbatch<A>& mn, fbatch<A>& mx, xsimd::batch_bool<float, A>& nan,
                                     fbatch<A> v) noexcept {
    mn = xsimd::min(v, mn);
    mx = xsimd::max(v, mx);
    nan = nan || xsimd::isnan(v);
}

template <class A>
LOWBIT_FORCE_INLINE void min_max_block(min_max_acc<A>& a, const float* x) noexcept {
    constexpr std::size_t L = fbatch<A>::size;
    min_max_one<A>(a.mn0, a.mx0, a.nan0, fbatch<A>::load_unaligned(x));
    min_max_one<A>(a.mn1, a.mx1, a.nan1, fbatch<A>::load_unaligned(x + L));
    min_max_one<A>(a.mn2, a.mx2, a.nan2, fbatch<A>::load_unaligned(x + 2 * L));
    min_max_one<A>(a.mn3, a.mx3, a.nan3, fbatch<A>::load_unaligned(x + 3 * L));
}

// Adds n >= 1 contiguous elements to the accumulators.
template <class A>
LOWBIT_FORCE_INLINE void min_max_span(min_max_acc<A>& acc, const float* x, std::size_t n) noexcept {
    constexpr std::size_t B = 4 * fbatch<A>::size;
    min_max_acc<A> a = acc;  // a local copy the compiler can keep in registers
    std::size_t i = 0;
    for (; i + B <= n; i += B) min_max_block<A>(a, x + i);
    if (i < n) {
        alignas(64) float t[B];
        for (std::size_t j = 0; j < B; ++j) t[j] = x[0];  // copies of an element change nothing
        std::memcpy(t, x + i, (n - i) * sizeof(float));
        min_max_block<A>(a, t);
    }
    acc = a;
}

template <class A>
LOWBIT_FORCE_INLINE min_max_raw min_max_reduce(const min_max_acc<A>& a) noexcept {
    constexpr std::size_t L = fbatch<A>::size;
    const fbatch<A> mn = xsimd::min(xsimd::min(a.mn0, a.mn1), xsimd::min(a.mn2, a.mn3));
    const fbatch<A> mx = xsimd::max(xsimd::max(a.mx0, a.mx1), xsimd::max(a.mx2, a.mx3));
    alignas(64) float lmn[L], lmx[L];
    mn.store_aligned(lmn);
    mx.store_aligned(lmx);
    min_max_raw r;
    r.min = lmn[0];
    r.max = lmx[0];
    for (std::size_t j = 1; j < L; ++j) {
        r.min = lmn[j] < r.min ? lmn[j] : r.min;
        r.max = lmx[j] > r.max ? lmx[j] : r.max;
    }
    r.nan = xsimd::any((a.nan0 || a.nan1) || (a.nan2 || a.nan3));
    return r;
}

// The reference's finish_min_max, for the loops: NaN -> {NaN, NaN}; zero -> +0.0.
template <class A>
LOWBIT_FORCE_INLINE void min_max_store(const min_max_raw& r, float* mn, float* mx) noexcept {
    constexpr float qnan = std::numeric_limits<float>::quiet_NaN();
    *mn = r.nan ? qnan : r.min == 0.0f ? 0.0f : r.min;
    *mx = r.nan ? qnan : r.max == 0.0f ? 0.0f : r.max;
}

// min_max_block on the first n < 4 * lanes elements of x: the minimum sees the rest as +Inf,
// the maximum as -Inf (neutral for every position of a position-wise accumulator).
template <class A>
LOWBIT_FORCE_INLINE void min_max_partial(min_max_acc<A>& a, const float* x, std::size_t n) noexcept {
    constexpr std::size_t L = fbatch<A>::size;
    alignas(64) float lo[4 * L], hi[4 * L];
    for (std::size_t j = 0; j < 4 * L; ++j) {
        lo[j] = std::numeric_limits<float>::infinity();
        hi[j] = -std::numeric_limits<float>::infinity();
    }
    std::memcpy(lo, x, n * sizeof(float));
    std::memcpy(hi, x, n * sizeof(float));
    const auto one = [](fbatch<A>& mn, fbatch<A>& mx, xsimd::batch_bool<float, A>& nan, const float* l, const float* h) {
        const fbatch<A> vl = fbatch<A>::load_aligned(l);
        mn = xsimd::min(vl, mn);
        mx = xsimd::max(fbatch<A>::load_aligned(h), mx);
        nan = nan || xsimd::isnan(vl);
    };
    one(a.mn0, a.mx0, a.nan0, lo, hi);
    one(a.mn1, a.mx1, a.nan1, lo + L, hi + L);
    one(a.mn2, a.mx2, a.nan2, lo + 2 * L, hi + 2 * L);
    one(a.mn3, a.mx3, a.nan3, lo + 3 * L, hi + 3 * L);
}

// Per-channel min / max with short runs (inner < 2 blocks): rows are grouped into super-rows
// of g rows whose length g * w is a multiple of the block, so position q of every super-row
// belongs to the same channel ((q mod w) / inner). Each block of positions keeps its
// accumulators in registers over all super-rows, then folds into its channels.
template <class A>
LOWBIT_FORCE_INLINE void min_max_positions(const float* x, std::size_t outer, std::size_t channels,
                                           std::size_t inner, float* mins, float* maxs) noexcept {
    constexpr std::size_t L = fbatch<A>::size;
    constexpr std::size_t B = 4 * L;
    constexpr float qnan = std::numeric_limits<float>::quiet_NaN();
    const std::size_t w = channels * inner;
    std::size_t a = w, b = B;  // g = B / gcd(w, B)
    while (b != 0) {
        const std::size_t t = a % b;
        a = b;
        b = t;
    }
    const std::size_t g = B / a < outer ? B / a : outer;
    const std::size_t sr = g * w;                   // a multiple of B unless g == outer
    const std::size_t full = outer / g;             // complete super-rows
    const std::size_t rest = (outer - full * g) * w;  // positions of the last, partial one
    for (std::size_t c = 0; c < channels; ++c) {
        mins[c] = std::numeric_limits<float>::infinity();
        maxs[c] = -std::numeric_limits<float>::infinity();
    }
    for (std::size_t j = 0; j < sr; j += B) {
        const std::size_t len = sr - j < B ? sr - j : B;
        min_max_acc<A> acc;
        min_max_init<A>(acc);
        min_max_acc<A> r = acc;  // a local the compiler keeps in registers
        for (std::size_t k = 0; k < full; ++k) {
            if (len == B)
                min_max_block<A>(r, x + k * sr + j);
            else
                min_max_partial<A>(r, x + k * sr + j, len);
        }
        if (rest > j) min_max_partial<A>(r, x + full * sr + j, rest - j < len ? rest - j : len);
        if (inner == 1 && len == B && j % w + B <= w) {  // B whole channels: merge in registers
            const fbatch<A> nanv(qnan);
            const auto merge = [&](fbatch<A> mn, fbatch<A> mx, xsimd::batch_bool<float, A> nan, std::size_t c) {
                const fbatch<A> cmn = fbatch<A>::load_unaligned(mins + c), cmx = fbatch<A>::load_unaligned(maxs + c);
                const auto bad = nan || xsimd::isnan(cmn);
                xsimd::select(bad, nanv, xsimd::min(mn, cmn)).store_unaligned(mins + c);
                xsimd::select(bad, nanv, xsimd::max(mx, cmx)).store_unaligned(maxs + c);
            };
            const std::size_t c0 = j % w;
            merge(r.mn0, r.mx0, r.nan0, c0);
            merge(r.mn1, r.mx1, r.nan1, c0 + L);
            merge(r.mn2, r.mx2, r.nan2, c0 + 2 * L);
            merge(r.mn3, r.mx3, r.nan3, c0 + 3 * L);
            continue;
        }
        alignas(64) float lmn[B], lmx[B], lnan[B];
        const fbatch<A> one(1.0f), zero(0.0f);
        r.mn0.store_aligned(lmn), r.mn1.store_aligned(lmn + L), r.mn2.store_aligned(lmn + 2 * L),
            r.mn3.store_aligned(lmn + 3 * L);
        r.mx0.store_aligned(lmx), r.mx1.store_aligned(lmx + L), r.mx2.store_aligned(lmx + 2 * L),
            r.mx3.store_aligned(lmx + 3 * L);
        xsimd::select(r.nan0, one, zero).store_aligned(lnan);
        xsimd::select(r.nan1, one, zero).store_aligned(lnan + L);
        xsimd::select(r.nan2, one, zero).store_aligned(lnan + 2 * L);
        xsimd::select(r.nan3, one, zero).store_aligned(lnan + 3 * L);
        std::size_t c = (j % w) / inner, i = (j % w) % inner;  // channel and inner index of position j
        for (std::size_t q = 0; q < len; ++q) {
            if (lnan[q] != 0.0f || mins[c] != mins[c]) {
                mins[c] = qnan;
                maxs[c] = qnan;
            } else {
                mins[c] = lmn[q] < mins[c] ? lmn[q] : mins[c];
                maxs[c] = lmx[q] > maxs[c] ? lmx[q] : maxs[c];
            }
            if (++i == inner) {
                i = 0;
                if (++c == channels) c = 0;
            }
        }
    }
    for (std::size_t c = 0; c < channels; ++c) {  // NaN is already the canonical one
        mins[c] = mins[c] == 0.0f ? 0.0f : mins[c];
        maxs[c] = maxs[c] == 0.0f ? 0.0f : maxs[c];
    }
}

#endif  // LOWBIT_HAS_XSIMD

/// Per-tensor min / max loop over n elements (the result before finish_min_max).
/// Instantiated per ISA (dispatch.hpp); no checks here.
template <class A>
void min_max_loop(const float* x, std::size_t n, min_max_raw* out) noexcept {
#if LOWBIT_HAS_XSIMD
    if (n == 0) {
        *out = min_max_raw{};
        return;
    }
    min_max_acc<A> a;
    min_max_init<A>(a);
    min_max_span<A>(a, x, n);
    *out = min_max_reduce<A>(a);
#else
    (void)x, (void)n, (void)out;
#endif
}

/// Per-channel min / max loop: x is [outer, channels, inner]; writes the finished ranges
/// (NaN, empty and zero handling of the reference) to mins / maxs[channels]. No checks here.
template <class A>
void min_max_channels_loop(const float* x, std::size_t outer, std::size_t channels, std::size_t inner, float* mins,
                           float* maxs) noexcept {
#if LOWBIT_HAS_XSIMD
    constexpr std::size_t B = 4 * fbatch<A>::size;
    if (channels == 0) return;
    if (outer == 0 || inner == 0 || channels == 1 || inner >= 2 * B) {
        for (std::size_t c = 0; c < channels; ++c) {
            min_max_raw r;
            if (outer != 0 && inner != 0) {
                min_max_acc<A> a;
                min_max_init<A>(a);
                if (channels == 1)
                    min_max_span<A>(a, x, outer * inner);
                else
                    for (std::size_t o = 0; o < outer; ++o) min_max_span<A>(a, x + (o * channels + c) * inner, inner);
                r = min_max_reduce<A>(a);
            }
            min_max_store<A>(r, mins + c, maxs + c);
        }
        return;
    }
    min_max_positions<A>(x, outer, channels, inner, mins, maxs);
#else
    (void)x, (void)outer, (void)channels, (void)inner, (void)mins, (void)maxs;
#endif
}

#if LOWBIT_HAS_XSIMD
// Bin indices of the histogram loop: those of B elements are computed in SIMD exactly as the
// reference (sub, mul, div in float32; min in float before truncating == min after) into
// idx, with `dropped` for elements outside [lo, hi] and NaN.
template <class A>
struct histogram_binner {
    using F = fbatch<A>;
    static constexpr std::size_t L = F::size;
    static constexpr std::size_t B = 64 > 4 * L ? 64 : 4 * L;  // elements per block (a multiple of L)
    F vlo, vhi, w, fb, last, dropped;
    histogram_binner(float lo, float hi, std::uint32_t bins, float drop) noexcept
        : vlo(lo), vhi(hi), w(hi - lo), fb(static_cast<float>(bins)), last(static_cast<float>(bins - 1)),
          dropped(drop) {}
    LOWBIT_FORCE_INLINE void block(const float* p, std::int32_t* idx) const noexcept {
        for (std::size_t j = 0; j < B; j += L) {
            const F v = F::load_unaligned(p + j);
            const F q = fdiv<A>((v - vlo) * fb, w);  // each operation rounded, as the reference
            const F qs = xsimd::select((v >= vlo) && (v <= vhi), xsimd::min(q, last), dropped);
            xsimd::batch_cast<std::int32_t>(qs).store_aligned(idx + j);
        }
    }
};

// ++local[idx[j]] for the B indices of a block (all valid slots), read two at a time as one
// 64-bit word: half the loads of reading them one by one; the order of the halves does not
// matter, so neither does the byte order.
template <std::size_t B>
LOWBIT_FORCE_INLINE void histogram_count(const std::int32_t* idx, std::uint32_t* local) noexcept {
    static_assert(B % 4 == 0, "histogram_count: blocks of 4k indices");
    for (std::size_t j = 0; j < B; j += 4) {
        std::uint64_t a, b;
        std::memcpy(&a, idx + j, sizeof a);
        std::memcpy(&b, idx + j + 2, sizeof b);
        ++local[static_cast<std::uint32_t>(a)];
        ++local[a >> 32];
        ++local[static_cast<std::uint32_t>(b)];
        ++local[b >> 32];
    }
}
#endif  // LOWBIT_HAS_XSIMD

/// Histogram loop: counts[bin(x)] += 1 for x in [lo, hi] (bins = counts' size). With up to
/// 2048 bins and enough data, counts go to a local uint32 histogram first (one slot more for
/// dropped elements, so the counting loop has no branch), added to `counts` every 2^30
/// elements. The loop is software-pipelined: the bins of block k + 1 are computed (SIMD,
/// bound by the division) while block k is counted (scalar increments, bound by the one
/// store per element), so the two overlap instead of alternating; indices are read in pairs.
/// A single table: on the machines measured (Zen 4) more interleaved tables did not help,
/// even for constant data, and cost L1 space. No checks here.
template <class A>
void histogram_loop(const float* x, std::size_t n, float lo, float hi, std::uint32_t bins,
                    std::uint64_t* counts) noexcept {
#if LOWBIT_HAS_XSIMD
    using H = histogram_binner<A>;
    constexpr std::size_t B = H::B;
    constexpr std::size_t local_cap = 2048;
    alignas(64) std::int32_t idx[2][B];
    alignas(64) float t[B];
    for (std::size_t j = 0; j < B; ++j) t[j] = lo;
    if (bins <= local_cap && n >= 4 * std::size_t(bins)) {
        alignas(64) std::uint32_t local[local_cap + 1];
        const H h(lo, hi, bins, static_cast<float>(bins));
        constexpr std::size_t chunk = std::size_t(1) << 30;  // a multiple of B
        for (std::size_t c0 = 0; c0 < n; c0 += chunk) {
            const std::size_t c1 = n - c0 < chunk ? n : c0 + chunk;
            const std::size_t end = c0 + (c1 - c0) / B * B;
            for (std::size_t b = 0; b <= bins; ++b) local[b] = 0;
            std::size_t i = c0;
            if (i < end) {
                h.block(x + i, idx[0]);
                std::size_t cur = 0;
                for (i += B; i < end; i += B) {
                    h.block(x + i, idx[cur ^ 1]);
                    histogram_count<B>(idx[cur], local);
                    cur ^= 1;
                }
                histogram_count<B>(idx[cur], local);
            }
            if (i < c1) {
                std::memcpy(t, x + i, (c1 - i) * sizeof(float));
                h.block(t, idx[0]);
                for (std::size_t j = 0; j < c1 - i; ++j) ++local[idx[0][j]];
            }
            for (std::size_t b = 0; b < bins; ++b) counts[b] += local[b];
        }
        return;
    }
    const H h(lo, hi, bins, -1.0f);
    const std::size_t full = n / B * B;
    for (std::size_t i = 0; i < full; i += B) {
        h.block(x + i, idx[0]);
        for (std::size_t j = 0; j < B; ++j)
            if (idx[0][j] >= 0) ++counts[idx[0][j]];
    }
    if (full < n) {
        std::memcpy(t, x + full, (n - full) * sizeof(float));
        h.block(t, idx[0]);
        for (std::size_t j = 0; j < n - full; ++j)
            if (idx[0][j] >= 0) ++counts[idx[0][j]];
    }
#else
    (void)x, (void)n, (void)lo, (void)hi, (void)bins, (void)counts;
#endif
}

}  // namespace detail

/// Per-tensor min / max, bit-identical to lowbit::ref::min_max (empty -> {+Inf, -Inf}, any
/// NaN -> {NaN, NaN}, a zero result is +0.0). Never fails.
template <class Arch = default_arch>
result<min_max_range> min_max(span<const float> x) {
    if constexpr (std::is_same<Arch, scalar_arch>::value) {
        return ref::min_max(x);
    } else {
        detail::min_max_raw r;
        detail::min_max_loop<Arch>(x.data(), x.size(), &r);
        return lowbit::detail::finish_min_max(r.min, r.max, r.nan);
    }
}

/// Per-channel min / max along `axis`, bit-identical to lowbit::ref::min_max with a shape
/// (same contract and errors; nothing is written on error).
template <class Arch = default_arch>
status min_max(const shape& shp, std::size_t axis, span<const float> x, span<float> mins, span<float> maxs) {
    if constexpr (std::is_same<Arch, scalar_arch>::value) {
        return ref::min_max(shp, axis, x, mins, maxs);
    } else {
        const result<quant_layout> l = make_layout(lowbit::detail::axis_view{axis}, shp);
        LOWBIT_DETAIL_TRY(l.status());
        LOWBIT_DETAIL_CHECK(x.size() == l->numel, errc::size_mismatch, "x.size()", x.size(),
                            "must equal shape's numel");
        LOWBIT_DETAIL_CHECK(mins.size() == l->channels, errc::size_mismatch, "mins.size()", mins.size(),
                            "must equal shape[axis]");
        LOWBIT_DETAIL_CHECK(maxs.size() == l->channels, errc::size_mismatch, "maxs.size()", maxs.size(),
                            "must equal shape[axis]");
        detail::min_max_channels_loop<Arch>(x.data(), l->outer, l->channels, l->inner, mins.data(), maxs.data());
        return {};
    }
}

/// Fixed-range histogram, bit-identical to lowbit::ref::histogram (torch.histc's bins; counts
/// accumulate; same errors, nothing written on error).
template <class Arch = default_arch>
status histogram(span<const float> x, float lo, float hi, span<std::uint64_t> counts) {
    if constexpr (std::is_same<Arch, scalar_arch>::value) {
        return ref::histogram(x, lo, hi, counts);
    } else {
        LOWBIT_DETAIL_TRY(lowbit::detail::check_histogram(lo, hi, counts.size()));
        detail::histogram_loop<Arch>(x.data(), x.size(), lo, hi, static_cast<std::uint32_t>(counts.size()),
                                     counts.data());
        return {};
    }
}

}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_REDUCE_HPP

/// Explicit instantiations (X empty) or declarations (X = extern) of this header's loops for
/// architecture A; used by LOWBIT_KERNELS_INSTANTIATE / LOWBIT_KERNELS_EXTERN (dispatch.hpp).
#define LOWBIT_DETAIL_REDUCE_LOOPS(X, A)                                                                       \
    X template void detail::min_max_loop<A>(const float*, std::size_t, detail::min_max_raw*) noexcept;        \
    X template void detail::min_max_channels_loop<A>(const float*, std::size_t, std::size_t, std::size_t,     \
                                                     float*, float*) noexcept;                                \
    X template void detail::histogram_loop<A>(const float*, std::size_t, float, float, std::uint32_t,         \
                                              std::uint64_t*) noexcept;
