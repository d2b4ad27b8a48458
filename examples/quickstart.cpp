// quickstart: the first thing to run. Calibrates an activation range over a few batches
// (the way torch's MinMaxObserver does), chooses quantization parameters, quantizes
// activations to u8 and weights to s8 per-channel and s4 per-group, and prints what it did
// and what it cost in accuracy (clipping, SQNR) as a lowbit::report table.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include <lowbit/format.hpp>
#include <lowbit/lowbit.hpp>

namespace {

// Per-channel (or per-group) min / max along the scheme's layout.
template <class Scheme>
void minmax_per_param(const Scheme& s, const lowbit::shape& shp, const std::vector<float>& w, std::vector<float>& mins,
                      std::vector<float>& maxs) {
    const lowbit::quant_layout l = *lowbit::make_layout(s, shp);
    mins.assign(l.param_count, std::numeric_limits<float>::infinity());
    maxs.assign(l.param_count, -std::numeric_limits<float>::infinity());
    for (std::size_t k = 0; k < w.size(); ++k) {
        const std::size_t p = l.param_index(k);
        mins[p] = std::fmin(mins[p], w[k]);
        maxs[p] = std::fmax(maxs[p], w[k]);
    }
}

}  // namespace

int main() {
    std::mt19937 gen(2026);
    std::normal_distribution<float> normal(0.5f, 1.0f);

    // 1. Calibrate an activation range over 8 batches: running min / max.
    const auto act = lowbit::scheme<lowbit::u8>{};  // affine u8, torch numerics
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    std::vector<float> batch(4096);
    for (int b = 0; b < 8; ++b) {
        for (float& v : batch) v = std::fmax(normal(gen), 0.0f);  // post-ReLU activations
        for (float v : batch) {
            lo = std::fmin(lo, v);
            hi = std::fmax(hi, v);
        }
    }
    const lowbit::qparams aq = *lowbit::choose_qparams(act, lo, hi);
    std::printf("calibrated activations over 8 batches: range [%g, %g]\n", lo, hi);
    std::printf("  u8 affine (torch MinMaxObserver numerics): scale=%.9g zero_point=%d\n", aq.scale, aq.zero_point);

    // 2. Quantize the last batch with those parameters; the report fake-quantizes it and
    //    measures the error.
    std::vector<std::uint8_t> q(batch.size());
    lowbit::ref::quantize(act, aq, batch, q);
    std::printf("  quantized %zu values, first five: %u %u %u %u %u\n", batch.size(), q[0], q[1], q[2], q[3], q[4]);
    lowbit::report report;
    report.add("activations", act, aq, batch);

    // 3. Weights [64 out, 256 in]: s8 symmetric per output channel, and s4 per group of 32.
    const lowbit::shape wshape{64, 256};
    std::vector<float> w(64 * 256);
    std::normal_distribution<float> wdist(0.0f, 0.05f);
    for (float& v : w) v = wdist(gen);

    const auto w8 = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>{}.per_channel(0);
    const auto w4 = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>{}.per_group(1, 32);
    {
        std::vector<float> mins, maxs;
        minmax_per_param(w8, wshape, w, mins, maxs);
        std::vector<float> scales(mins.size());
        std::vector<std::int32_t> zps(mins.size());
        lowbit::choose_qparams(w8, mins, maxs, scales, zps);
        std::vector<std::int8_t> q8(w.size());
        lowbit::ref::quantize(w8, wshape, {scales, zps}, w, q8);
        std::printf("weights [64, 256] -> s8 per channel: %s, %zu bytes\n",
                    fmt::format("{}", lowbit::fmt_view({scales, zps})).c_str(), q8.size());
        report.add("weights s8/channel", w8, wshape, {scales, zps}, w);
    }
    {
        std::vector<float> mins, maxs;
        minmax_per_param(w4, wshape, w, mins, maxs);
        std::vector<float> scales(mins.size());
        std::vector<std::int32_t> zps(mins.size());
        lowbit::choose_qparams(w4, mins, maxs, scales, zps);
        std::vector<std::uint8_t> q4(lowbit::s4::storage_size(w.size()));
        lowbit::ref::quantize(w4, wshape, {scales, zps}, w, q4);
        std::printf("weights [64, 256] -> s4 per group of 32: %zu scales, %zu bytes packed\n", scales.size(), q4.size());
        report.add("weights s4/group32", w4, wshape, {scales, zps}, w);
    }

    std::printf("\n%s\n", report.str().c_str());

    // 4. Integer-only rescaling of an int32 accumulator (TFLite / gemmlowp fixed point).
    const double real_multiplier = 0.0123;
    const lowbit::quantized_multiplier m = *lowbit::quantize_multiplier(real_multiplier);
    std::printf("requantize: M=%g -> multiplier=%d shift=%d; acc 10000 -> %d (double rounding), %d (single)\n",
                real_multiplier, m.multiplier, m.shift, lowbit::multiply_by_quantized_multiplier(10000, m),
                lowbit::multiply_by_quantized_multiplier(10000, m, lowbit::requant_rounding::single_rounding));

    // 5. Bad input is refused with a message naming the argument.
    try {
        lowbit::ref::quantize(act, lowbit::qparams{-0.5f, 0}, batch, q);
    } catch (const lowbit::error& e) {
        std::printf("bad input is refused: %s\n", e.what());
    }
    return 0;
}
