// qat.hpp (ptq_vs_qat): the two quantization-aware-training hooks for demo::train and how each
// exports its result as a quantized_mlp.
//
// ste_hooks: torch.ao.quantization's QAT recipe. Weights go through a per-channel
//   FakeQuantize with a moving-average per-channel min/max observer, each layer's output
//   through a per-tensor FakeQuantize with a moving-average min/max observer (lowbit::
//   fake_quantize); the backward is the straight-through estimator with the masks the forward
//   kept. Ranges follow the data; nothing about them is learned.
// lsq_hooks: LSQ (Esser et al. 2020): the weight scales (one per output channel) and the
//   output scales are parameters, learned by SGD with the gradient LSQ defines
//   (lowbit::lsq_channel_quantizer / lsq_quantizer, torch's _LearnableFakeQuantize numerics,
//   gradient scale 1 / sqrt(numel * qmax)); the logits' zero point is learned too (LSQ+),
//   the hidden outputs keep zero point 0 (they follow a ReLU). Scales start from min/max
//   calibration of the f32 model.
#ifndef LOWBIT_EXAMPLES_QAT_HPP
#define LOWBIT_EXAMPLES_QAT_HPP

#include <memory>
#include <vector>

#include <lowbit/observers/all.hpp>
#include <lowbit/quant/fake_quantize.hpp>
#include <lowbit/quant/learnable.hpp>

#include "quantized_mlp.hpp"

namespace demo {

class ste_hooks {
public:
    ste_hooks(const mlp& m, int wbits, int abits) : wbits_(wbits), abits_(abits), layers_(m.layers.size()) {
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            per_layer& p = layers_[l];
            const std::size_t out = m.layers[l].out;
            p.obs_state.resize(2 * out);
            p.scales.resize(out);
            p.zero_points.resize(out);
            const weight_obs obs(weight_scheme_bits(wbits), out, p.obs_state);
            p.wfq = std::make_unique<weight_fq>(obs, lowbit::span<float>(p.scales), lowbit::span<std::int32_t>(p.zero_points));
            p.afq = act_fq(act_obs(activation_scheme(abits)));
        }
    }
    void weights(std::size_t l, const linear_layer& L, std::vector<float>& w) {
        per_layer& p = layers_[l];
        w.resize(L.w.size());
        p.wmask.resize(L.w.size());
        check(p.wfq->forward(lowbit::shape{L.out, L.in}, L.w, w, p.wmask), "weight fake-quantize");
    }
    void weights_backward(std::size_t l, const linear_layer&, float* dw) {
        per_layer& p = layers_[l];
        const lowbit::span<float> g(dw, p.wmask.size());
        check(p.wfq->backward_masked(p.wmask, g, g), "weight fake-quantize backward");
    }
    void act(std::size_t l, float* y, std::size_t rows, std::size_t cols) {
        per_layer& p = layers_[l];
        const lowbit::span<float> v(y, rows * cols);
        p.amask.resize(v.size());
        check(p.afq.forward(v, v, p.amask), "activation fake-quantize");
    }
    void act_backward(std::size_t l, float* dy, std::size_t rows, std::size_t cols) {
        per_layer& p = layers_[l];
        const lowbit::span<float> g(dy, rows * cols);
        check(p.afq.backward_masked(p.amask, g, g), "activation fake-quantize backward");
    }
    void step(float) {}

    /// The trained model m (the one these hooks trained) as a quantized_mlp: weights quantized
    /// with the fake-quant modules' last qparams, outputs with theirs.
    quantized_mlp export_model(const mlp& m) const {
        quantized_mlp q(m);
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const linear_layer& L = m.layers[l];
            const per_layer& p = layers_[l];
            std::vector<std::int8_t> codes(L.w.size());
            check(lowbit::ref::quantize(weight_scheme_bits(wbits_), lowbit::shape{L.out, L.in}, {p.scales, p.zero_points},
                                        L.w, codes),
                  "quantize QAT weights");
            set_weight_codes(q, l, wbits_, std::move(codes), p.scales);
            q.layers[l].abits = abits_;
            q.layers[l].out = p.afq.qparams();
        }
        return q;
    }

private:
    using weight_obs = lowbit::per_channel_moving_average_minmax_observer<weight_scheme>;
    using weight_fq = lowbit::fake_quantize<weight_scheme, weight_obs>;
    using act_obs = lowbit::moving_average_minmax_observer<act_scheme>;
    using act_fq = lowbit::fake_quantize<act_scheme, act_obs>;
    struct per_layer {
        std::vector<float> obs_state, scales;
        std::vector<std::int32_t> zero_points;
        std::unique_ptr<weight_fq> wfq;  // holds spans of the vectors above: not movable
        act_fq afq;
        std::vector<std::uint8_t> wmask, amask;
    };
    int wbits_, abits_;
    std::vector<per_layer> layers_;
};

class lsq_hooks {
public:
    /// act_qparams: each layer's output qparams from calibrating the f32 model (the start).
    lsq_hooks(const mlp& m, int wbits, int abits, const std::vector<lowbit::qparams>& act_qparams)
        : wbits_(wbits), abits_(abits), layers_(m.layers.size()) {
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const linear_layer& L = m.layers[l];
            per_layer& p = layers_[l];
            p.scales.resize(L.out);
            std::vector<std::int32_t> zps(L.out);
            check(lowbit::ptq::weight_minmax_qparams(weight_scheme_bits(wbits), L.out, L.in, L.w, p.scales, zps),
                  "LSQ initial weight scales");
            p.zeros.assign(L.out, 0.0f);
            p.dscales.assign(L.out, 0.0f);
            p.dzeros.assign(L.out, 0.0f);
            p.adam_w.assign(2 * L.out, 0.0f);
            const bool logits = l + 1 == layers_.size();
            p.aq = lowbit::lsq_quantizer<act_scheme>(activation_scheme(abits), act_qparams[l].scale, logits);
            p.aq.zero_point = static_cast<float>(act_qparams[l].zero_point);
        }
    }
    void weights(std::size_t l, const linear_layer& L, std::vector<float>& w) {
        w.resize(L.w.size());
        check(wq(l).forward(lowbit::shape{L.out, L.in}, L.w, w), "LSQ weight forward");
    }
    void weights_backward(std::size_t l, const linear_layer& L, float* dw) {
        per_layer& p = layers_[l];
        p.tmp.resize(L.w.size());
        const lowbit::span<const float> dy(dw, L.w.size());
        check(wq(l).backward(lowbit::shape{L.out, L.in}, L.w, dy, p.tmp), "LSQ weight backward");
        std::copy(p.tmp.begin(), p.tmp.end(), dw);
    }
    void act(std::size_t l, float* y, std::size_t rows, std::size_t cols) {
        per_layer& p = layers_[l];
        p.x.assign(y, y + rows * cols);
        check(p.aq.forward(p.x, lowbit::span<float>(y, rows * cols)), "LSQ activation forward");
    }
    void act_backward(std::size_t l, float* dy, std::size_t rows, std::size_t cols) {
        per_layer& p = layers_[l];
        p.tmp.resize(rows * cols);
        check(p.aq.backward(p.x, lowbit::span<const float>(dy, rows * cols), p.tmp), "LSQ activation backward");
        std::copy(p.tmp.begin(), p.tmp.end(), dy);
    }
    /// Adam on the log of every scale (and on the logits' zero point), at a learning rate
    /// that follows the weights' schedule: LSQ's scale gradients are tiny next to the scales
    /// (they are scaled by 1 / sqrt(numel * qmax)), so plain SGD at the weights' rate leaves the
    /// scales where calibration put them in a short fine-tuning; Adam's normalised step moves
    /// each by up to about lr_scale of itself per step.
    void step(float lr) {
        if (lr0_ == 0.0f) lr0_ = lr;
        const float rate = lr_scale * lr / lr0_;
        ++t_;
        for (per_layer& p : layers_) {
            for (std::size_t c = 0; c < p.scales.size(); ++c)
                adam_log(p.scales[c], p.dscales[c], p.adam_w[2 * c], p.adam_w[2 * c + 1], rate);
            adam_log(p.aq.scale, p.aq.dscale, p.adam_a[0], p.adam_a[1], rate);
            if (p.aq.learn_zero_point) adam(p.aq.zero_point, p.aq.dzero_point, p.adam_a[2], p.adam_a[3], 10 * rate);
            std::fill(p.dscales.begin(), p.dscales.end(), 0.0f);
            p.aq.zero_grad();
        }
    }
    float lr_scale = 1e-2f;  ///< Adam learning rate of the log scales at the schedule's peak

    /// The trained model as a quantized_mlp: weights rounded with the learned scales, outputs
    /// with the learned (scale, rounded zero point) (_LearnableFakeQuantize's export).
    quantized_mlp export_model(const mlp& m) {
        quantized_mlp q(m);
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const linear_layer& L = m.layers[l];
            per_layer& p = layers_[l];
            for (float& s : p.scales) s = lowbit::lsq_clamp_scale(s, weight_scheme_bits(wbits_).eps());
            const std::vector<std::int32_t> zps(L.out, 0);
            std::vector<std::int8_t> codes(L.w.size());
            check(lowbit::ref::quantize(weight_scheme_bits(wbits_), lowbit::shape{L.out, L.in}, {p.scales, zps}, L.w, codes),
                  "quantize LSQ weights");
            set_weight_codes(q, l, wbits_, std::move(codes), p.scales);
            q.layers[l].abits = abits_;
            const lowbit::result<lowbit::qparams> qp = p.aq.export_qparams();
            check(qp.status(), "LSQ activation qparams");
            q.layers[l].out = *qp;
        }
        return q;
    }

private:
    struct per_layer {
        std::vector<float> scales, zeros, dscales, dzeros, x, tmp;
        std::vector<float> adam_w;     // (m, v) per weight scale
        float adam_a[4] = {0, 0, 0, 0};  // (m, v) of the output scale, then of its zero point
        lowbit::lsq_quantizer<act_scheme> aq;
    };
    // One Adam step (betas 0.9, 0.999, eps 1e-8) on p with gradient g.
    void adam(float& p, float g, float& m, float& v, float rate) const {
        m = 0.9f * m + 0.1f * g;
        v = 0.999f * v + 0.001f * g * g;
        const float mh = m / (1.0f - std::pow(0.9f, float(t_))), vh = v / (1.0f - std::pow(0.999f, float(t_)));
        p -= rate * mh / (std::sqrt(vh) + 1e-8f);
    }
    // The same on log(s): d/dlog s = ds * s.
    void adam_log(float& s, float ds, float& m, float& v, float rate) const {
        float ls = std::log(s);
        adam(ls, ds * s, m, v, rate);
        s = std::exp(ls);
    }
    float lr0_ = 0.0f;
    std::size_t t_ = 0;
    lowbit::lsq_channel_quantizer<weight_scheme> wq(std::size_t l) {
        per_layer& p = layers_[l];
        lowbit::lsq_channel_quantizer<weight_scheme> q;
        q.scheme = weight_scheme_bits(wbits_);
        q.scales = p.scales;
        q.zero_points = p.zeros;
        q.dscales = p.dscales;
        q.dzero_points = p.dzeros;
        return q;
    }
    int wbits_, abits_;
    std::vector<per_layer> layers_;
};

}  // namespace demo

#endif  // LOWBIT_EXAMPLES_QAT_HPP
