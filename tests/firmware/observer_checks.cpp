// observer_checks.cpp (tests/firmware): every observer of include/lowbit/observers/ compiled
// for firmware (no heap, no exceptions, no xsimd: the kernels fall back to lowbit::ref) and
// exercised: observe, qparams, save / load (the loaded state saves to the same bytes and gives
// the same qparams), merge where two instances are cheap. The histogram-based observers keep
// 2048 bins in the object (8 KB float histogram; 16 KB of uint64 counts for percentile / MSE /
// entropy), so they are static here, not on the stack.
#include <lowbit/observers/all.hpp>

#include "checks.hpp"

namespace fwcheck {
namespace {

using u8s = lowbit::scheme<lowbit::u8>;
using s8sym = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>;

template <class T>
T opaque(T v) {
    __asm__ volatile("" : "+m"(v));
    return v;
}

// big enough for every observer's state (header + 2048 * 8 bytes of counts + a few fields)
std::uint8_t state_a[20 + 8 * 2048 + 64];
std::uint8_t state_b[sizeof state_a];

// 0.00, 0.01, ..., 0.99 and a few negative values: a batch every observer accepts
float batch[104];

void fill_batch() {
    for (int i = 0; i < 100; ++i) batch[i] = opaque(static_cast<float>(i) / 100.0f);
    batch[100] = -0.25f;
    batch[101] = -0.5f;
    batch[102] = 0.125f;
    batch[103] = 0.75f;
}

// save -> load into the same observer -> save again: same bytes, same qparams.
template <class Obs>
bool roundtrip(Obs& o) {
    const std::size_t n = o.state_size();
    if (n > sizeof state_a) return false;
    const auto before = o.qparams();
    if (!before.ok() || !o.save({state_a, n}).ok() || !o.load({state_a, n}).ok() || !o.save({state_b, n}).ok()) return false;
    const auto after = o.qparams();
    return after.ok() && *after == *before && equal(state_a, state_b, n);
}

void minmax_checks(counter& c) {
    lowbit::minmax_observer<u8s> a, b;
    const float x1[2] = {opaque(-1.0f), 2.0f}, x2[2] = {0.5f, 3.0f};
    // range [-1, 3]: scale = 4 / 255, zp = -rint(-1 / scale) = rint(63.75) = 64
    const bool ok = a.observe(x1).ok() && b.observe(x2).ok() && a.merge(b).ok();
    const auto qp = a.qparams();
    expect(c, ok && qp.ok() && qp->scale == 4.0f / 255.0f && qp->zero_point == 64, "minmax_observer observe / merge / qparams");
    expect(c, roundtrip(a), "minmax_observer save / load");
    // torch's moving average: min = 0 + 0.01 * (2 - 0), max = 1 + 0.01 * (3 - 1), float each step
    lowbit::moving_average_minmax_observer<u8s> m;
    const float y1[2] = {opaque(0.0f), 1.0f}, y2[2] = {2.0f, 3.0f};
    const bool mok = m.observe(y1).ok() && m.observe(y2).ok();
    const float cst = opaque(0.01f);
    const float want_min = 0.0f + cst * 2.0f, want_max = 1.0f + cst * 2.0f;
    expect(c, mok && m.stats().min == want_min && m.stats().max == want_max, "moving_average_minmax_observer");
    expect(c, roundtrip(m), "moving_average_minmax_observer save / load");
    // fixed qparams
    lowbit::fixed_qparams_observer<u8s> f(u8s{}, lowbit::qparams{1.0f / 256.0f, 0});
    const auto fq = f.observe(y2).ok() ? f.qparams() : lowbit::result<lowbit::qparams>(lowbit::status{lowbit::errc::invalid_argument});
    expect(c, fq.ok() && fq->scale == 1.0f / 256.0f && fq->zero_point == 0, "fixed_qparams_observer");
    expect(c, roundtrip(f), "fixed_qparams_observer save / load");
    // a NaN in the batch is refused, the state unchanged
    const float bad[2] = {1.0f, opaque(__builtin_nanf(""))};
    const lowbit::status st = a.observe(bad);
    expect(c, !st.ok() && a.stats().min == -1.0f && a.stats().max == 3.0f, "minmax_observer refuses NaN");
}

void per_channel_checks(counter& c) {
    // s8 symmetric per channel (axis 0) over rows [1 -2 3] and [0.5 0.25 -0.5]:
    // scale = max(|min|, max) / 127.5 per row, zp 0
    float st1[4], st2[4];
    lowbit::per_channel_minmax_observer<s8sym> a(s8sym{}.per_channel(0), 2, st1), b(s8sym{}.per_channel(0), 2, st2);
    const float x[6] = {opaque(1.0f), -2.0f, 3.0f, 0.5f, 0.25f, -0.5f};
    const float x2[6] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    const bool ok = a.observe(lowbit::shape{2, 3}, x).ok() && b.observe(lowbit::shape{2, 3}, x2).ok() && a.merge(b).ok();
    float scales[2] = {};
    std::int32_t zps[2] = {1, 1};
    const bool qok = ok && a.qparams(scales, zps).ok();
    expect(c, qok && scales[0] == 3.0f / 127.5f && scales[1] == 0.5f / 127.5f && zps[0] == 0 && zps[1] == 0,
           "per_channel_minmax_observer");
    const std::size_t n = a.state_size();
    const bool rt = n <= sizeof state_a && a.save({state_a, n}).ok() && a.load({state_a, n}).ok() && a.save({state_b, n}).ok() &&
                    equal(state_a, state_b, n);
    expect(c, rt, "per_channel_minmax_observer save / load");
    float st3[4];
    lowbit::per_channel_moving_average_minmax_observer<s8sym> m(s8sym{}.per_channel(0), 2, st3);
    expect(c, m.observe(lowbit::shape{2, 3}, x).ok() && m.mins()[0] == -2.0f && m.maxs()[1] == 0.5f,
           "per_channel_moving_average_minmax_observer");
}

// The histogram-based observers: qparams inside the observed range's, save / load.
template <class Obs>
void histogram_like(counter& c, Obs& o, const char* name_observe, const char* name_roundtrip) {
    const bool ok = o.observe(lowbit::span<const float>(batch, 104)).ok() &&
                    o.observe(lowbit::span<const float>(batch, 100)).ok();
    const auto qp = o.qparams();
    // range within [-0.5, 0.99]: scale <= 1.49 / 255 (+ rounding), zp in [0, 255]
    expect(c, ok && qp.ok() && qp->scale > 0.0f && qp->scale <= 1.5f / 255.0f && qp->zero_point >= 0 && qp->zero_point <= 255,
           name_observe);
    expect(c, roundtrip(o), name_roundtrip);
}

// measure_error (diagnostics.hpp) with qp (0.5, 10): 0.25 -> 0 (error 0.25), 1000 -> 122.5
// (clipped, error 877.5), NaN skipped: noise = 0.0625 + 770006.25, sqnr = 10 log10(1e6.0625 / that)
void diagnostics_checks(counter& c) {
    const float x[4] = {opaque(0.0f), 0.25f, 1000.0f, __builtin_nanf("")};
    lowbit::quant_error e;
    const bool ok = lowbit::measure_error(u8s{}, lowbit::qparams{0.5f, 10}, lowbit::span<const float>(x, 4), e).ok();
    const double db = e.sqnr_db();
    expect(c, ok && e.count == 3 && e.clipped == 1 && e.signal == 1000000.0625 && e.noise == 770006.3125 &&
                  e.max_abs_error == 877.5 && db > 1.13 && db < 1.14,
           "measure_error");
}

lowbit::histogram_observer<u8s> hist;
lowbit::percentile_observer<u8s> pct;
lowbit::mse_observer<u8s> mse;
lowbit::entropy_observer<u8s> ent;

}  // namespace

void observer_checks(counter& c) {
    fill_batch();
    minmax_checks(c);
    per_channel_checks(c);
    diagnostics_checks(c);
    histogram_like(c, hist, "histogram_observer", "histogram_observer save / load");
    histogram_like(c, pct, "percentile_observer", "percentile_observer save / load");
    histogram_like(c, mse, "mse_observer", "mse_observer save / load");
    histogram_like(c, ent, "entropy_observer", "entropy_observer save / load");
    // the minmax observer's qparams over the same batches (range [-0.5, 0.99]) bound the rest
    lowbit::minmax_observer<u8s> mm;
    const bool ok = mm.observe(lowbit::span<const float>(batch, 104)).ok();
    const auto q = mm.qparams();
    const auto qh = hist.qparams();
    expect(c, ok && q.ok() && qh.ok() && qh->scale <= q->scale * 1.001f, "histogram range within min / max range");
}

}  // namespace fwcheck
