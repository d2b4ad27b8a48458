// mlp.hpp (examples): a small f32 multilayer perceptron, y = relu(x W1^T + b1) ... W_L^T + b_L,
// with a plain hand-written training loop (mini-batch SGD with momentum, softmax cross
// entropy). The matrix products go through CBLAS (OpenBLAS); everything else is a loop.
//
// The training loop takes a `Hooks` object so that QAT can be written around it without
// touching it: before a batch, hooks.weights(l, layer, w_used) chooses the weights layer l
// computes with (f32: a copy; QAT: fake-quantized); after layer l (after its ReLU, or the
// logits for the last layer) hooks.act(l, y, rows, cols) may change the output in place
// (QAT: fake-quantize it). Backward calls the adjoints in reverse: act_backward(l, dy, ...)
// on the gradient of that output, and weights_backward(l, layer, dw) turns the gradient with
// respect to w_used into the one with respect to the layer's f32 weights (STE: mask it).
// After the update, hooks.step(lr) updates the hooks' own parameters (LSQ scales).
#ifndef LOWBIT_EXAMPLES_MLP_HPP
#define LOWBIT_EXAMPLES_MLP_HPP

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "fashion_mnist.hpp"

namespace demo {

/// y = x W^T + b: W is [out, in] row-major (torch.nn.Linear's layout).
struct linear_layer {
    std::size_t in = 0, out = 0;
    std::vector<float> w;  ///< out * in
    std::vector<float> b;  ///< out
};

/// Linear layers with ReLU between them (none after the last).
struct mlp {
    std::vector<linear_layer> layers;
    std::size_t inputs() const { return layers.front().in; }
    std::size_t outputs() const { return layers.back().out; }
    std::size_t weight_count() const {
        std::size_t c = 0;
        for (const linear_layer& l : layers) c += l.w.size();
        return c;
    }
    std::size_t param_count() const {
        std::size_t c = 0;
        for (const linear_layer& l : layers) c += l.w.size() + l.b.size();
        return c;
    }
};

/// An MLP of the given widths (e.g. {784, 256, 128, 10}), initialised as torch.nn.Linear:
/// W and b uniform in [-1/sqrt(in), 1/sqrt(in)], from mt19937(seed).
inline mlp make_mlp(const std::vector<std::size_t>& widths, std::uint32_t seed) {
    if (widths.size() < 2) throw std::runtime_error("make_mlp: widths needs >= 2 entries");
    std::mt19937 gen(seed);
    mlp m;
    for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
        linear_layer L;
        L.in = widths[l];
        L.out = widths[l + 1];
        const float bound = 1.0f / std::sqrt(static_cast<float>(L.in));
        std::uniform_real_distribution<float> u(-bound, bound);
        L.w.resize(L.out * L.in);
        L.b.resize(L.out);
        for (float& v : L.w) v = u(gen);
        for (float& v : L.b) v = u(gen);
        m.layers.push_back(std::move(L));
    }
    return m;
}

// ---- the pieces of forward and backward ---------------------------------------------------

/// y[rows x out] = x[rows x in] w^T + b, w: [out x in].
inline void linear_forward(std::size_t in, std::size_t out, const float* w, const float* b, const float* x,
                           std::size_t rows, float* y) {
    for (std::size_t r = 0; r < rows; ++r) std::copy(b, b + out, y + r * out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(out),
                static_cast<int>(in), 1.0f, x, static_cast<int>(in), w, static_cast<int>(in), 1.0f, y,
                static_cast<int>(out));
}

/// Gradients of y = x w^T + b: dw = dy^T x, db = column sums of dy, and dx = dy w (skipped when
/// dx is null).
inline void linear_backward(std::size_t in, std::size_t out, const float* w, const float* x, const float* dy,
                            std::size_t rows, float* dx, float* dw, float* db) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(out), static_cast<int>(in),
                static_cast<int>(rows), 1.0f, dy, static_cast<int>(out), x, static_cast<int>(in), 0.0f, dw,
                static_cast<int>(in));
    std::fill(db, db + out, 0.0f);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t o = 0; o < out; ++o) db[o] += dy[r * out + o];
    if (dx != nullptr)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(in),
                    static_cast<int>(out), 1.0f, dy, static_cast<int>(out), w, static_cast<int>(in), 0.0f, dx,
                    static_cast<int>(in));
}

inline void relu(float* y, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

/// dy *= (y > 0), y the ReLU's output.
inline void relu_backward(const float* y, float* dy, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        if (!(y[i] > 0.0f)) dy[i] = 0.0f;
}

/// Index of the largest value, the first one on ties (as torch.argmax).
inline std::size_t argmax(const float* v, std::size_t n) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < n; ++i)
        if (v[i] > v[best]) best = i;
    return best;
}

/// Mean softmax cross entropy of rows x classes logits; dlogits = (softmax - onehot) / rows.
inline double softmax_cross_entropy(const float* logits, const std::uint8_t* labels, std::size_t rows,
                                    std::size_t classes, float* dlogits) {
    double loss = 0.0;
    for (std::size_t r = 0; r < rows; ++r) {
        const float* z = logits + r * classes;
        const float zmax = *std::max_element(z, z + classes);
        double sum = 0.0;
        for (std::size_t c = 0; c < classes; ++c) sum += std::exp(double(z[c]) - zmax);
        loss += std::log(sum) - (double(z[labels[r]]) - zmax);
        for (std::size_t c = 0; c < classes; ++c) {
            const double p = std::exp(double(z[c]) - zmax) / sum;
            dlogits[r * classes + c] = static_cast<float>((p - (c == labels[r] ? 1.0 : 0.0)) / double(rows));
        }
    }
    return loss / double(rows);
}

// ---- hooks, forward, evaluation ----------------------------------------------------------

/// The f32 hooks: weights as they are, activations untouched.
struct f32_hooks {
    void weights(std::size_t, const linear_layer& L, std::vector<float>& w) { w = L.w; }
    void weights_backward(std::size_t, const linear_layer&, float*) {}
    void act(std::size_t, float*, std::size_t, std::size_t) {}
    void act_backward(std::size_t, float*, std::size_t, std::size_t) {}
    void step(float) {}
};

/// Activations of one forward pass: outs[l] is layer l's output (after ReLU; logits last).
struct forward_state {
    std::vector<std::vector<float>> w;     ///< the weights each layer used
    std::vector<std::vector<float>> outs;  ///< rows x out per layer, after the hooks
    std::vector<std::vector<float>> pre;   ///< the same before hooks.act (ReLU's output)
};

/// Forward of `rows` inputs x (rows x inputs) with hooks; fills st (weights prepared by
/// hooks.weights unless prepared == true, i.e. st.w already holds them).
template <class Hooks>
void forward(const mlp& m, Hooks& hooks, const float* x, std::size_t rows, forward_state& st, bool prepared = false) {
    const std::size_t L = m.layers.size();
    st.w.resize(L);
    st.outs.resize(L);
    st.pre.resize(L);
    const float* in = x;
    for (std::size_t l = 0; l < L; ++l) {
        const linear_layer& layer = m.layers[l];
        if (!prepared) hooks.weights(l, layer, st.w[l]);
        st.outs[l].resize(rows * layer.out);
        linear_forward(layer.in, layer.out, st.w[l].data(), layer.b.data(), in, rows, st.outs[l].data());
        if (l + 1 < L) relu(st.outs[l].data(), st.outs[l].size());
        st.pre[l] = st.outs[l];
        hooks.act(l, st.outs[l].data(), rows, layer.out);
        in = st.outs[l].data();
    }
}

/// Logits of every example of `d` (count x classes), in batches of 1000.
template <class Hooks>
std::vector<float> logits(const mlp& m, Hooks& hooks, const dataset& d) {
    std::vector<float> out(d.count * m.outputs());
    forward_state st;
    bool prepared = false;
    for (std::size_t first = 0; first < d.count; first += 1000) {
        const std::size_t n = std::min<std::size_t>(1000, d.count - first);
        const std::vector<float> x = d.batch(first, n);
        forward(m, hooks, x.data(), n, st, prepared);
        prepared = true;
        std::copy(st.outs.back().begin(), st.outs.back().end(), out.begin() + std::ptrdiff_t(first * m.outputs()));
    }
    return out;
}

/// Fraction of rows of `logits` (count x classes) whose argmax is the label.
inline double accuracy(const std::vector<float>& logits, const dataset& d) {
    const std::size_t classes = logits.size() / d.count;
    std::size_t right = 0;
    for (std::size_t i = 0; i < d.count; ++i) right += argmax(logits.data() + i * classes, classes) == d.labels[i];
    return double(right) / double(d.count);
}

// ---- training ------------------------------------------------------------------------------

struct train_options {
    std::size_t epochs = 5;
    std::size_t batch = 128;
    float lr = 0.05f;           ///< peak learning rate
    float momentum = 0.9f;
    float weight_decay = 1e-4f;
    bool cosine = true;         ///< cosine decay of lr to 0 over all steps
    std::uint32_t seed = 7;     ///< shuffling
};

/// Trains m in place on d with SGD + momentum (weight decay on weights only), calling
/// progress(epoch, step, steps, running_loss) every 50 steps and at each epoch's end.
template <class Hooks>
void train(mlp& m, Hooks& hooks, const dataset& d, const train_options& o,
           const std::function<void(std::size_t, std::size_t, std::size_t, double)>& progress = {}) {
    const std::size_t L = m.layers.size();
    std::vector<std::vector<float>> vw(L), vb(L), gw(L), gb(L), din(L);
    for (std::size_t l = 0; l < L; ++l) {
        vw[l].assign(m.layers[l].w.size(), 0.0f);
        vb[l].assign(m.layers[l].b.size(), 0.0f);
        gw[l].resize(m.layers[l].w.size());
        gb[l].resize(m.layers[l].b.size());
    }
    std::vector<std::size_t> order(d.count);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::mt19937 gen(o.seed);
    const std::size_t steps_per_epoch = d.count / o.batch;  // the last partial batch is dropped
    const std::size_t total = steps_per_epoch * o.epochs;
    std::vector<float> x(o.batch * m.inputs()), dlogits;
    std::vector<std::uint8_t> y(o.batch);
    forward_state st;
    std::size_t step = 0;
    for (std::size_t e = 0; e < o.epochs; ++e) {
        std::shuffle(order.begin(), order.end(), gen);
        double running = 0.0;
        for (std::size_t s = 0; s < steps_per_epoch; ++s, ++step) {
            for (std::size_t i = 0; i < o.batch; ++i) {
                const std::size_t idx = order[s * o.batch + i];
                d.image(idx, x.data() + i * m.inputs());
                y[i] = d.labels[idx];
            }
            forward(m, hooks, x.data(), o.batch, st);
            dlogits.resize(o.batch * m.outputs());
            const double loss = softmax_cross_entropy(st.outs.back().data(), y.data(), o.batch, m.outputs(), dlogits.data());
            running = s == 0 ? loss : 0.98 * running + 0.02 * loss;
            // backward, last layer first; dcur is the gradient of layer l's output
            std::vector<float>* dcur = &dlogits;
            for (std::size_t l = L; l-- > 0;) {
                const linear_layer& layer = m.layers[l];
                hooks.act_backward(l, dcur->data(), o.batch, layer.out);
                if (l + 1 < L) relu_backward(st.pre[l].data(), dcur->data(), dcur->size());
                const float* in = l == 0 ? x.data() : st.outs[l - 1].data();
                float* dx = nullptr;
                if (l > 0) {
                    din[l].resize(o.batch * layer.in);
                    dx = din[l].data();
                }
                linear_backward(layer.in, layer.out, st.w[l].data(), in, dcur->data(), o.batch, dx, gw[l].data(),
                                gb[l].data());
                hooks.weights_backward(l, layer, gw[l].data());
                if (l > 0) dcur = &din[l];
            }
            const float lr = o.cosine ? 0.5f * o.lr * (1.0f + std::cos(3.14159265f * float(step) / float(total))) : o.lr;
            for (std::size_t l = 0; l < L; ++l) {
                linear_layer& layer = m.layers[l];
                for (std::size_t i = 0; i < layer.w.size(); ++i) {
                    vw[l][i] = o.momentum * vw[l][i] + gw[l][i] + o.weight_decay * layer.w[i];
                    layer.w[i] -= lr * vw[l][i];
                }
                for (std::size_t i = 0; i < layer.b.size(); ++i) {
                    vb[l][i] = o.momentum * vb[l][i] + gb[l][i];
                    layer.b[i] -= lr * vb[l][i];
                }
            }
            hooks.step(lr);
            if (progress && ((s + 1) % 50 == 0 || s + 1 == steps_per_epoch)) progress(e, s + 1, steps_per_epoch, running);
        }
    }
}

}  // namespace demo

#endif  // LOWBIT_EXAMPLES_MLP_HPP
