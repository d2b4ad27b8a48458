// embed_inference: where lowbit plugs into an inference engine you already have.
//
// The first part is a plain f32 engine, standing for someone else's code: a model is a list
// of fully connected layers (weights [out, in] as torch's Linear.weight, a bias), run by a
// loop with ReLU between layers. The second part converts that engine to int8 with lowbit:
//   1. calibrate: the f32 engine gets one hook that hands each layer's input activations to
//      a lowbit observer, and runs over a few calibration batches;
//   2. convert (once, offline): weights -> s8 symmetric per output channel, packed for the
//      int8 GEMM; activations -> u8 affine with the calibrated qparams; bias -> int32; the
//      rescale of each layer's int32 accumulators into the next layer's u8 input -> TFLite
//      fixed-point multipliers, one per output channel;
//   3. run: the same loop over layers, with lowbit::kernels::gemm instead of the f32 loop. The
//      requantizing epilogue writes u8 activations straight into the next layer (ReLU is the
//      output clamp at the zero point), and the last layer dequantizes its logits to f32.
// The lines that differ from the f32 engine are marked "lowbit:". The model and data are
// synthetic and deterministic (std::mt19937, fixed seeds). The example prints how close the
// two engines are and how long each takes, and exits with status 1 if the int8 engine's
// argmax agrees with the f32 engine's on fewer than 95% of the 500 test samples, or if the
// relative RMS error of its logits exceeds 5% (over eight seeds: 97.4-99.4% agreement, 1.4-2.4%
// error; a missing bias gives 7.8%, a 10% error in the requantize multipliers 21%).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include <lowbit/kernels/gemm.hpp>
#include <lowbit/kernels/quantize.hpp>
#include <lowbit/lowbit.hpp>
#include <lowbit/observers/minmax.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>

namespace {

// =========================================================================================
// The existing f32 engine.

struct layer {
    std::size_t in = 0, out = 0;
    std::vector<float> w;  // [out, in], row-major
    std::vector<float> b;  // [out]
};

// Called with (layer index, that layer's input activations [batch, in]) before each layer.
using activation_hook = std::function<void(std::size_t, const std::vector<float>&)>;

// y = x W^T + b for every layer, ReLU after all but the last; x: [batch, model[0].in].
std::vector<float> forward_f32(const std::vector<layer>& model, std::vector<float> x, std::size_t batch,
                               const activation_hook& hook = {}) {
    for (std::size_t l = 0; l < model.size(); ++l) {
        const layer& L = model[l];
        if (hook) hook(l, x);  // lowbit: the one line calibration adds to the f32 engine
        std::vector<float> y(batch * L.out);
        for (std::size_t m = 0; m < batch; ++m)
            for (std::size_t n = 0; n < L.out; ++n) {
                float acc = L.b[n];
                for (std::size_t k = 0; k < L.in; ++k) acc += x[m * L.in + k] * L.w[n * L.in + k];
                y[m * L.out + n] = l + 1 < model.size() ? std::max(acc, 0.0f) : acc;
            }
        x = std::move(y);
    }
    return x;
}

// =========================================================================================
// The int8 engine: the same loop, lowbit's kernels inside.

constexpr auto act_scheme = lowbit::scheme<lowbit::u8>{};  // activations: u8 affine (torch numerics)
constexpr auto weight_scheme = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>{}.per_channel(0);

struct int8_layer {
    std::size_t in = 0, out = 0;
    std::vector<std::uint8_t> packed_bytes;  // owns the packed s8 weights ...
    lowbit::kernels::packed_weights w;       // ... and this views them (a moved vector keeps its buffer)
    lowbit::qparams in_qp;                   // u8 qparams of this layer's input
    // hidden layers: requantize the int32 accumulators to the next layer's u8 input
    std::vector<lowbit::quantized_multiplier> multipliers;  // s_in * s_w[n] / s_out, fixed point
    std::vector<std::int32_t> bias_s32;                     // round(b[n] / (s_in * s_w[n]))
    lowbit::qparams out_qp;
    // last layer: logits in f32, y = acc * (s_in * s_w[n]) + b[n]
    std::vector<float> dequant_scales, bias_f32;
};

// The f32 engine's loop with lowbit inside; x: [batch, model[0].in] f32 -> logits f32.
std::vector<float> forward_int8(const std::vector<int8_layer>& model, const std::vector<float>& x, std::size_t batch) {
    std::vector<std::uint8_t> a(x.size());
    lowbit::kernels::quantize(act_scheme, model[0].in_qp, x, a);  // lowbit: f32 input -> u8, once
    for (std::size_t l = 0; l < model.size(); ++l) {
        const int8_layer& L = model[l];
        const lowbit::gemm_dims dims{batch, L.out, L.in};                            // lowbit
        const lowbit::gemm_a<std::uint8_t> in{a, L.in, L.in_qp.zero_point};          // lowbit
        if (l + 1 < model.size()) {
            std::vector<std::uint8_t> y(batch * L.out);
            lowbit::requantize_params p;                                             // lowbit
            p.multipliers = L.multipliers;                                           // lowbit
            p.bias = L.bias_s32;                                                     // lowbit
            p.zero_point = L.out_qp.zero_point;                                      // lowbit
            p.clamp_min = L.out_qp.zero_point;  // lowbit: ReLU = clamp at the real value 0
                                                // (the u8 range already does when zp = 0)
            lowbit::kernels::gemm(dims, in, L.w, act_scheme, p, y, L.out);           // lowbit
            a = std::move(y);
        } else {
            std::vector<float> y(batch * L.out);
            const lowbit::gemm_dequantize_params p{L.dequant_scales, L.bias_f32};  // lowbit: y = acc * scale + b
            lowbit::kernels::gemm(dims, in, L.w, p, y, L.out);                       // lowbit
            return y;
        }
    }
    return {};
}

// Offline conversion of one f32 layer, given the calibrated qparams of its input and (for a
// hidden layer) of its output, which is the next layer's input.
int8_layer convert_layer(const layer& L, lowbit::qparams in_qp, const lowbit::qparams* out_qp) {
    int8_layer q;
    q.in = L.in;
    q.out = L.out;
    q.in_qp = in_qp;

    // Weights: s8 symmetric, one scale per output channel (row of W), from their min / max.
    std::vector<float> state(2 * L.out), w_scales(L.out);
    std::vector<std::int32_t> w_zero_points(L.out);  // all 0 (symmetric s8)
    lowbit::per_channel_minmax_observer<decltype(weight_scheme)> w_obs(weight_scheme, L.out, state);
    w_obs.observe(lowbit::shape{L.out, L.in}, L.w);
    w_obs.qparams(w_scales, w_zero_points);
    std::vector<std::int8_t> w_s8(L.w.size());
    lowbit::ref::quantize(weight_scheme, lowbit::shape{L.out, L.in}, {w_scales, w_zero_points}, L.w, w_s8);

    // Pack them once for the GEMM (torch's [out, in] layout, no weight zero points).
    const lowbit::gemm_b b{w_s8, L.in, lowbit::weight_layout::n_by_k, {}};
    q.packed_bytes.resize(lowbit::kernels::packed_size(L.out, L.in));
    q.w = *lowbit::kernels::pack_weights(b, L.out, L.in, q.packed_bytes);

    for (std::size_t n = 0; n < L.out; ++n) {
        const double acc_scale = double(in_qp.scale) * double(w_scales[n]);  // real value of one accumulator step
        if (out_qp) {
            q.multipliers.push_back(*lowbit::quantize_multiplier(acc_scale / double(out_qp->scale)));
            const double bq = std::nearbyint(double(L.b[n]) / acc_scale);
            const double lim = double(std::numeric_limits<std::int32_t>::max());
            q.bias_s32.push_back(static_cast<std::int32_t>(std::clamp(bq, -lim, lim)));
        } else {
            q.dequant_scales.push_back(static_cast<float>(acc_scale));
            q.bias_f32.push_back(L.b[n]);
        }
    }
    if (out_qp) q.out_qp = *out_qp;
    return q;
}

// =========================================================================================
// A synthetic model and data set, and the comparison.

// He-initialised layers of the given widths (deterministic).
std::vector<layer> make_model(const std::vector<std::size_t>& widths, std::mt19937& gen) {
    std::vector<layer> model;
    for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
        layer L;
        L.in = widths[i];
        L.out = widths[i + 1];
        std::normal_distribution<float> w(0.0f, std::sqrt(2.0f / float(L.in)));
        std::normal_distribution<float> b(0.0f, 0.1f);
        L.w.resize(L.out * L.in);
        L.b.resize(L.out);
        for (float& v : L.w) v = w(gen);
        for (float& v : L.b) v = b(gen);
        model.push_back(std::move(L));
    }
    return model;
}

// Samples from `classes` Gaussian clusters in `dim` dimensions, row-major [count, dim].
std::vector<float> make_data(std::size_t count, std::size_t dim, std::size_t classes, std::mt19937& gen) {
    std::normal_distribution<float> unit(0.0f, 1.0f);
    std::vector<float> centers(classes * dim);
    for (float& v : centers) v = unit(gen);
    std::uniform_int_distribution<std::size_t> pick(0, classes - 1);
    std::vector<float> x(count * dim);
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t c = pick(gen);
        for (std::size_t k = 0; k < dim; ++k) x[i * dim + k] = centers[c * dim + k] + 0.5f * unit(gen);
    }
    return x;
}

std::size_t argmax(const float* v, std::size_t n) { return static_cast<std::size_t>(std::max_element(v, v + n) - v); }

// Best of `reps` runs of f(), in milliseconds.
template <class F>
double best_ms(int reps, F&& f) {
    double best = std::numeric_limits<double>::infinity();
    for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        const auto t1 = std::chrono::steady_clock::now();
        best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    return best;
}

}  // namespace

int main() {
    constexpr std::size_t classes = 10, calib_batches = 4, calib_batch = 64, test_count = 500;
    constexpr double min_agreement = 0.95, max_rel_error = 0.05;
    const std::vector<std::size_t> widths{64, 128, 128, classes};
    std::mt19937 gen(2024);
    const std::vector<layer> model = make_model(widths, gen);
    const std::vector<float> calib = make_data(calib_batches * calib_batch, widths[0], classes, gen);
    const std::vector<float> test = make_data(test_count, widths[0], classes, gen);

    // 1. Calibrate: one observer per layer input (the data, then each hidden ReLU output),
    //    fed by the hook over a few batches.
    std::vector<lowbit::minmax_observer<decltype(act_scheme)>> observers(model.size());   // lowbit
    for (std::size_t b = 0; b < calib_batches; ++b) {
        const std::vector<float> batch(calib.begin() + std::ptrdiff_t(b * calib_batch * widths[0]),
                                       calib.begin() + std::ptrdiff_t((b + 1) * calib_batch * widths[0]));
        forward_f32(model, batch, calib_batch,
                    [&](std::size_t l, const std::vector<float>& x) { observers[l].observe(x); });  // lowbit
    }

    // 2. Convert, once.
    std::vector<int8_layer> qmodel;
    for (std::size_t l = 0; l < model.size(); ++l) {
        const lowbit::qparams in_qp = *observers[l].qparams();                                 // lowbit
        const bool last = l + 1 == model.size();
        const lowbit::qparams out_qp = last ? lowbit::qparams{} : *observers[l + 1].qparams();  // lowbit
        qmodel.push_back(convert_layer(model[l], in_qp, last ? nullptr : &out_qp));            // lowbit
        std::printf("layer %zu: %3zu -> %3zu, input u8 scale %.6g zero point %3d, observed [%g, %g]\n", l,
                    model[l].in, model[l].out, double(in_qp.scale), in_qp.zero_point,
                    double(observers[l].stats().min), double(observers[l].stats().max));
    }

    // 3. Run both engines on the test set and compare.
    std::vector<float> y32, y8;
    const double ms32 = best_ms(3, [&] { y32 = forward_f32(model, test, test_count); });
    const double ms8 = best_ms(3, [&] { y8 = forward_int8(qmodel, test, test_count); });

    std::size_t agree = 0;
    double max_diff = 0.0, max_logit = 0.0, err2 = 0.0, ref2 = 0.0;
    for (std::size_t i = 0; i < test_count; ++i) {
        agree += argmax(&y32[i * classes], classes) == argmax(&y8[i * classes], classes);
        for (std::size_t c = 0; c < classes; ++c) {
            const double d = double(y32[i * classes + c]) - double(y8[i * classes + c]);
            max_diff = std::max(max_diff, std::fabs(d));
            max_logit = std::max(max_logit, std::fabs(double(y32[i * classes + c])));
            err2 += d * d;
            ref2 += double(y32[i * classes + c]) * double(y32[i * classes + c]);
        }
    }
    const double agreement = double(agree) / double(test_count), rel_error = std::sqrt(err2 / ref2);
    std::printf("\n%zu test samples, model 64-128-128-10 (ReLU), int8 GEMM kernel: %s\n", test_count,
                lowbit::kernels::to_string(lowbit::kernels::gemm_best_isa()));
    std::printf("argmax agreement f32 vs int8: %.2f%% (%zu / %zu), required >= %.0f%%\n", 100.0 * agreement, agree,
                test_count, 100.0 * min_agreement);
    std::printf("logit error: relative RMS %.2f%% (required <= %.0f%%), max |f32 - int8| %.4g (largest |logit| %.4g)\n",
                100.0 * rel_error, 100.0 * max_rel_error, max_diff, max_logit);
    std::printf("time for the test set (best of 3): f32 plain loop %.2f ms, int8 lowbit %.2f ms (%.1fx)\n", ms32, ms8,
                ms32 / ms8);
    if (agreement < min_agreement || !(rel_error <= max_rel_error)) {
        std::fprintf(stderr, "embed_inference: FAILED: argmax agreement %.2f%% (>= %.0f%% required), relative logit "
                     "error %.2f%% (<= %.0f%% required)\n", 100.0 * agreement, 100.0 * min_agreement,
                     100.0 * rel_error, 100.0 * max_rel_error);
        return 1;
    }
    return 0;
}
