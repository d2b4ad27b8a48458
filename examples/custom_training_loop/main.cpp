// custom_training_loop: the smallest complete quantization-aware-training (QAT) loop with
// lowbit, in a training loop written by hand (no framework), step by step.
//
// A 2-layer MLP (2 -> 32 -> 3, ReLU) learns a toy data set: points on three concentric rings,
// one class per ring (deterministic, std::mt19937). QAT puts lowbit::fake_quantize modules
// (torch.ao.quantization.FakeQuantize, quant/fake_quantize.hpp) where the integer model will
// round: on the input and the hidden activations (u8 affine, moving-average min/max observer)
// and on both weight matrices (s8 symmetric per output channel). Forward uses the
// fake-quantized values; backward passes gradients straight through each module where its
// value was not clipped (the STE mask). After training the observers are frozen, the qparams
// exported, and the test set is run a second time through the real integer path: u8 inputs,
// s8 weights, int32 bias, lowbit::ref::gemm with the fixed-point requantize epilogue into u8
// hidden activations (ReLU is its clamp), and a dequantizing gemm for the f32 logits.
//
// Exits with status 1 if the fake-quant model's test accuracy is below 90% (98.5-100% over
// eight seeds; chance is 33%), or if the integer path does not reproduce the fake-quant model:
// a hidden u8 code differs by more than one step, or more than 1% of the predictions differ.
// The two compute the same rounded values except where the float rescaling (fake-quant) and
// the fixed-point one (integer path, with its int32-rounded bias) fall on different sides of
// a rounding boundary: one code apart, rarely (here 40 of 19200 codes, and no prediction; a
// 1% error in the requantize multipliers puts 517 codes further apart).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include <lowbit/lowbit.hpp>
#include <lowbit/quant/fake_quantize.hpp>

namespace {

constexpr std::size_t in_dim = 2, hidden = 32, classes = 3;

// ---- the data: three rings, radius 0..1, 1.4..2.1, 2.5..3.2, one class each ----
struct data_set {
    std::vector<float> x;          // [n, in_dim]
    std::vector<std::size_t> y;    // [n]
    std::size_t size() const { return y.size(); }
};

data_set make_rings(std::size_t n, std::mt19937& gen) {
    const float r_lo[classes] = {0.0f, 1.4f, 2.5f}, r_hi[classes] = {1.0f, 2.1f, 3.2f};
    std::uniform_real_distribution<float> u01(0.0f, 1.0f);
    data_set d;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t c = i % classes;
        const float r = r_lo[c] + (r_hi[c] - r_lo[c]) * u01(gen), t = 6.2831853f * u01(gen);
        d.x.push_back(r * std::cos(t));
        d.x.push_back(r * std::sin(t));
        d.y.push_back(c);
    }
    return d;
}

// y[m][n] = sum_k a[m][k] * w[n][k] + b[n]: a [rows, k], w [n, k] (torch's Linear.weight).
void linear(const std::vector<float>& a, const std::vector<float>& w, const std::vector<float>& b, std::size_t rows,
            std::size_t k_dim, std::size_t n_dim, std::vector<float>& y) {
    y.assign(rows * n_dim, 0.0f);
    for (std::size_t m = 0; m < rows; ++m)
        for (std::size_t n = 0; n < n_dim; ++n) {
            float acc = b[n];
            for (std::size_t k = 0; k < k_dim; ++k) acc += a[m * k_dim + k] * w[n * k_dim + k];
            y[m * n_dim + n] = acc;
        }
}

std::size_t argmax(const float* v) { return static_cast<std::size_t>(std::max_element(v, v + classes) - v); }

// ---- the model: f32 parameters, and one fake-quantize module per quantized tensor ----
constexpr auto act_scheme = lowbit::scheme<lowbit::u8>{};  // u8 affine
constexpr auto w_scheme = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>{}.per_channel(0);
using act_fq = lowbit::fake_quantize<decltype(act_scheme)>;  // moving-average min/max, c = 0.01
using w_observer = lowbit::per_channel_moving_average_minmax_observer<decltype(w_scheme)>;
using w_fq = lowbit::fake_quantize<decltype(w_scheme), w_observer>;

struct mlp {
    std::vector<float> w1, b1, w2, b2;  // w1 [hidden, in_dim], w2 [classes, hidden]
    // per-channel modules keep their observer state and qparams in caller buffers
    std::vector<float> w1_state = std::vector<float>(2 * hidden), w2_state = std::vector<float>(2 * classes);
    std::vector<float> w1_scales = std::vector<float>(hidden), w2_scales = std::vector<float>(classes);
    std::vector<std::int32_t> w1_zps = std::vector<std::int32_t>(hidden), w2_zps = std::vector<std::int32_t>(classes);
    act_fq fq_x, fq_h;  // input, hidden (after ReLU)
    w_fq fq_w1{w_observer(w_scheme, hidden, w1_state), w1_scales, w1_zps};
    w_fq fq_w2{w_observer(w_scheme, classes, w2_state), w2_scales, w2_zps};

    explicit mlp(std::mt19937& gen) {
        std::normal_distribution<float> g1(0.0f, std::sqrt(2.0f / in_dim)), g2(0.0f, std::sqrt(2.0f / hidden));
        for (std::size_t i = 0; i < hidden * in_dim; ++i) w1.push_back(g1(gen));
        for (std::size_t i = 0; i < classes * hidden; ++i) w2.push_back(g2(gen));
        b1.assign(hidden, 0.0f);
        b2.assign(classes, 0.0f);
    }
    mlp(const mlp&) = delete;  // the modules point into this object's buffers
    mlp& operator=(const mlp&) = delete;
};

// What the forward keeps for the backward.
struct activations {
    std::vector<float> xq, w1q, z1, hq, w2q, logits;
    std::vector<std::uint8_t> mask_w1, mask_h, mask_w2;  // STE masks: 1 where not clipped
};

// Forward of a batch of `rows` points through the fake-quantized model.
void forward(mlp& m, const float* x, std::size_t rows, activations& a) {
    const std::vector<float> x_batch(x, x + rows * in_dim);
    a.xq.resize(x_batch.size());
    a.w1q.resize(m.w1.size());
    a.w2q.resize(m.w2.size());
    a.mask_w1.resize(m.w1.size());
    a.mask_w2.resize(m.w2.size());
    // Step 1: fake-quantize the input and the weights. While a module's observer is enabled,
    // forward() first updates its range with this tensor, then rounds with the new qparams.
    m.fq_x.forward(x_batch, a.xq);  // the input's gradient is not needed: no mask kept
    m.fq_w1.forward(lowbit::shape{hidden, in_dim}, m.w1, a.w1q, a.mask_w1);
    m.fq_w2.forward(lowbit::shape{classes, hidden}, m.w2, a.w2q, a.mask_w2);
    // Step 2: layer 1 and ReLU in f32, on the fake-quantized values.
    linear(a.xq, a.w1q, m.b1, rows, in_dim, hidden, a.z1);
    std::vector<float> h(a.z1.size());
    for (std::size_t i = 0; i < h.size(); ++i) h[i] = std::max(a.z1[i], 0.0f);
    // Step 3: fake-quantize the hidden activations (after the ReLU: that is the tensor the
    // integer model stores as u8), keeping the STE mask, then layer 2.
    a.hq.resize(h.size());
    a.mask_h.resize(h.size());
    m.fq_h.forward(h, a.hq, a.mask_h);
    linear(a.hq, a.w2q, m.b2, rows, hidden, classes, a.logits);
}

// Backward of the mean softmax cross-entropy over the batch, then one SGD step.
void backward_sgd(mlp& m, const activations& a, const std::size_t* y, std::size_t rows, float lr) {
    // Step 4: d loss / d logits = softmax - one_hot, over the batch size.
    std::vector<float> dlogits(rows * classes);
    for (std::size_t r = 0; r < rows; ++r) {
        const float* z = &a.logits[r * classes];
        const float zmax = *std::max_element(z, z + classes);
        float sum = 0.0f;
        for (std::size_t c = 0; c < classes; ++c) sum += std::exp(z[c] - zmax);
        for (std::size_t c = 0; c < classes; ++c)
            dlogits[r * classes + c] = (std::exp(z[c] - zmax) / sum - (c == y[r] ? 1.0f : 0.0f)) / float(rows);
    }
    // Step 5: layer 2's gradients, taken at the fake-quantized operands hq and w2q.
    std::vector<float> dw2q(classes * hidden, 0.0f), db2(classes, 0.0f), dhq(rows * hidden, 0.0f);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < classes; ++c) {
            const float g = dlogits[r * classes + c];
            db2[c] += g;
            for (std::size_t j = 0; j < hidden; ++j) {
                dw2q[c * hidden + j] += g * a.hq[r * hidden + j];
                dhq[r * hidden + j] += g * a.w2q[c * hidden + j];
            }
        }
    // Step 6: straight through the hidden fake-quant (dh = dhq where h was not clipped),
    // then through the ReLU.
    std::vector<float> dz1(dhq.size());
    m.fq_h.backward_masked(a.mask_h, dhq, dz1);
    for (std::size_t i = 0; i < dz1.size(); ++i)
        if (a.z1[i] <= 0.0f) dz1[i] = 0.0f;
    // Step 7: layer 1's gradients.
    std::vector<float> dw1q(hidden * in_dim, 0.0f), db1(hidden, 0.0f);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < hidden; ++j) {
            db1[j] += dz1[r * hidden + j];
            for (std::size_t k = 0; k < in_dim; ++k) dw1q[j * in_dim + k] += dz1[r * hidden + j] * a.xq[r * in_dim + k];
        }
    // Step 8: straight through the weight fake-quants to the f32 weights, and SGD. The f32
    // weights ("shadow weights") are what training updates; the model uses their rounding.
    std::vector<float> dw1(dw1q.size()), dw2(dw2q.size());
    m.fq_w1.backward_masked(a.mask_w1, dw1q, dw1);
    m.fq_w2.backward_masked(a.mask_w2, dw2q, dw2);
    for (std::size_t i = 0; i < dw1.size(); ++i) m.w1[i] -= lr * dw1[i];
    for (std::size_t i = 0; i < dw2.size(); ++i) m.w2[i] -= lr * dw2[i];
    for (std::size_t i = 0; i < hidden; ++i) m.b1[i] -= lr * db1[i];
    for (std::size_t i = 0; i < classes; ++i) m.b2[i] -= lr * db2[i];
}

// ---- the integer model, built from the frozen qparams ----
struct int8_mlp {
    lowbit::qparams x_qp, h_qp;
    std::vector<std::int8_t> w1, w2;                      // s8 weights, [out, in]
    std::vector<lowbit::quantized_multiplier> m1;         // s_x * s_w1[n] / s_h, fixed point
    std::vector<std::int32_t> b1;                         // round(b1[n] / (s_x * s_w1[n]))
    std::vector<float> logit_scales, b2;                  // s_h * s_w2[n]; b2 stays f32
};

int8_mlp export_int8(const mlp& m) {
    int8_mlp q;
    q.x_qp = m.fq_x.qparams();  // the frozen qparams: exactly what the fake-quant forward used
    q.h_qp = m.fq_h.qparams();
    const lowbit::qparams_view w1_qp = m.fq_w1.qparams(), w2_qp = m.fq_w2.qparams();
    q.w1.resize(m.w1.size());
    q.w2.resize(m.w2.size());
    lowbit::ref::quantize(w_scheme, lowbit::shape{hidden, in_dim}, w1_qp, m.w1, q.w1);
    lowbit::ref::quantize(w_scheme, lowbit::shape{classes, hidden}, w2_qp, m.w2, q.w2);
    for (std::size_t n = 0; n < hidden; ++n) {
        const double acc_scale = double(q.x_qp.scale) * double(w1_qp.scales[n]);
        q.m1.push_back(*lowbit::quantize_multiplier(acc_scale / double(q.h_qp.scale)));
        q.b1.push_back(static_cast<std::int32_t>(std::nearbyint(double(m.b1[n]) / acc_scale)));  // small here
    }
    for (std::size_t n = 0; n < classes; ++n) q.logit_scales.push_back(q.h_qp.scale * w2_qp.scales[n]);
    q.b2 = m.b2;
    return q;
}

// Logits of `rows` points through integer arithmetic only (plus the final dequantize); h
// receives the u8 hidden activations.
std::vector<float> forward_int8(const int8_mlp& q, const std::vector<float>& x, std::size_t rows,
                                std::vector<std::uint8_t>& h) {
    std::vector<std::uint8_t> xq(x.size());
    h.resize(rows * hidden);
    lowbit::ref::quantize(act_scheme, q.x_qp, x, xq);
    lowbit::requantize_params p;
    p.multipliers = q.m1;
    p.bias = q.b1;
    p.zero_point = q.h_qp.zero_point;
    p.clamp_min = q.h_qp.zero_point;  // ReLU: nothing below the code of 0.0
    const lowbit::gemm_a<std::uint8_t> a1{xq, in_dim, q.x_qp.zero_point};     // [rows, in_dim], its zero point
    const lowbit::gemm_b w1{q.w1, in_dim, lowbit::weight_layout::n_by_k, {}};  // [hidden, in_dim], no zero points
    lowbit::ref::gemm(lowbit::gemm_dims{rows, hidden, in_dim}, a1, w1, act_scheme, p, h, hidden);
    std::vector<float> logits(rows * classes);
    const lowbit::gemm_a<std::uint8_t> a2{h, hidden, q.h_qp.zero_point};
    const lowbit::gemm_b w2{q.w2, hidden, lowbit::weight_layout::n_by_k, {}};
    const lowbit::gemm_dequantize_params out{q.logit_scales, q.b2};  // logits = acc * (s_h * s_w2[n]) + b2[n]
    lowbit::ref::gemm(lowbit::gemm_dims{rows, classes, hidden}, a2, w2, out, logits, classes);
    return logits;
}

}  // namespace

int main() {
    constexpr std::size_t epochs = 12, batch = 32;
    constexpr float lr = 0.1f;
    constexpr double min_accuracy = 0.90, max_disagreement = 0.01;
    std::mt19937 gen(7);
    const data_set train = make_rings(1500, gen), test = make_rings(600, gen);
    mlp model(gen);

    // Training: every step runs the fake-quantized forward (the observers follow the ranges),
    // the straight-through backward and SGD.
    std::vector<std::size_t> order(train.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    activations a;
    for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
        std::shuffle(order.begin(), order.end(), gen);
        double loss = 0.0;
        std::size_t correct = 0;
        for (std::size_t s = 0; s + batch <= order.size(); s += batch) {
            std::vector<float> xb;
            std::vector<std::size_t> yb;
            for (std::size_t i = s; i < s + batch; ++i) {
                xb.insert(xb.end(), &train.x[order[i] * in_dim], &train.x[order[i] * in_dim] + in_dim);
                yb.push_back(train.y[order[i]]);
            }
            forward(model, xb.data(), batch, a);
            for (std::size_t r = 0; r < batch; ++r) {
                const float* z = &a.logits[r * classes];
                const float zmax = *std::max_element(z, z + classes);
                double sum = 0.0;
                for (std::size_t c = 0; c < classes; ++c) sum += std::exp(double(z[c] - zmax));
                loss += std::log(sum) - double(z[yb[r]] - zmax);
                correct += argmax(z) == yb[r];
            }
            backward_sgd(model, a, yb.data(), batch, lr);
        }
        const double seen = double(order.size() / batch * batch);
        std::printf("epoch %2zu: loss %.4f, train accuracy %.1f%%\n", epoch + 1, loss / seen,
                    100.0 * double(correct) / seen);
    }

    // Freeze: the observers stop, the qparams stay; fake-quant stays on for evaluation.
    model.fq_x.freeze();
    model.fq_h.freeze();
    model.fq_w1.freeze();
    model.fq_w2.freeze();
    std::printf("frozen qparams: input u8 scale %.6g zero point %d, hidden u8 scale %.6g zero point %d\n",
                double(model.fq_x.qparams().scale), model.fq_x.qparams().zero_point, double(model.fq_h.qparams().scale),
                model.fq_h.qparams().zero_point);

    // Evaluate the test set twice: the fake-quant model (f32 arithmetic on rounded values)
    // and the integer model built from the exported qparams.
    forward(model, test.x.data(), test.size(), a);
    const int8_mlp q = export_int8(model);
    std::vector<std::uint8_t> h8;
    const std::vector<float> logits8 = forward_int8(q, test.x, test.size(), h8);
    // The hidden codes of both paths: the fake-quant model's are hq / scale + zero point.
    std::size_t codes_off_by_one = 0, codes_off_more = 0;
    for (std::size_t i = 0; i < h8.size(); ++i) {
        const long fq_code = std::lround(a.hq[i] / q.h_qp.scale) + q.h_qp.zero_point;
        const long d = std::labs(fq_code - long(h8[i]));
        codes_off_by_one += d == 1;
        codes_off_more += d > 1;
    }
    std::size_t correct_fq = 0, correct_int8 = 0, disagree = 0;
    double max_diff = 0.0;
    for (std::size_t i = 0; i < test.size(); ++i) {
        const std::size_t p_fq = argmax(&a.logits[i * classes]), p8 = argmax(&logits8[i * classes]);
        correct_fq += p_fq == test.y[i];
        correct_int8 += p8 == test.y[i];
        disagree += p_fq != p8;
        for (std::size_t c = 0; c < classes; ++c)
            max_diff = std::max(max_diff, double(std::fabs(a.logits[i * classes + c] - logits8[i * classes + c])));
    }
    const double acc_fq = double(correct_fq) / double(test.size()), acc8 = double(correct_int8) / double(test.size());
    const double dis = double(disagree) / double(test.size());
    std::printf("test accuracy: fake-quant %.2f%% (required >= %.0f%%), integer path %.2f%%\n", 100.0 * acc_fq,
                100.0 * min_accuracy, 100.0 * acc8);
    std::printf("hidden u8 codes, integer path vs fake-quant: %zu of %zu differ by one, %zu by more (required: 0)\n",
                codes_off_by_one, h8.size(), codes_off_more);
    std::printf("predictions that differ: %zu of %zu (required <= %.0f%%); max |logit difference| %.4g\n", disagree,
                test.size(), 100.0 * max_disagreement, max_diff);
    if (acc_fq < min_accuracy) {
        std::fprintf(stderr, "custom_training_loop: FAILED: training did not reach the accuracy\n");
        return 1;
    }
    if (dis > max_disagreement || codes_off_more != 0) {
        std::fprintf(stderr, "custom_training_loop: FAILED: the integer path does not match the fake-quant model\n");
        return 1;
    }
    return 0;
}
