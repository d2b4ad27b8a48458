// quantized_mlp.hpp (ptq_vs_qat): a quantized version of demo::mlp and the two ways the
// example runs it.
//
// What is quantized. Layer l has weight bits wbits (0: f32, else symmetric per output
// channel, range [-2^(b-1), 2^(b-1) - 1], stored as int8 values) and output bits abits (0:
// f32, else unsigned affine [0, 2^b - 1], per tensor) for its output: the ReLU output of a
// hidden layer, the logits of the last one. The input image stays 8-bit: its pixels are bytes
// already (scale 1/255, zero point 0 represents them exactly).
//
// The simulation (sim_hooks, for demo::forward / demo::logits) computes in f32 with the
// dequantized weights and fake-quantizes each output: what PTQ calibration and QAT see.
// The integer engine (integer_mlp) is the deployed model: u8 activations, the int8 GEMM
// (lowbit::kernels::gemm) with its requantizing epilogue (int32 bias, per-channel fixed-point
// multipliers s_in * s_w[n] / s_out, output zero point; the clamp to [0, 2^b - 1] with zero
// point 0 is the hidden layers' ReLU), argmax over the logits' integer codes. A 4-bit weight
// or activation is an int8 holding a 4-bit value. For weight-only int4 models (every abits 0)
// int4_mlp runs the int4 GEMM (lowbit::kernels::gemm_int4_f32) on packed 4-bit weights.
#ifndef LOWBIT_EXAMPLES_QUANTIZED_MLP_HPP
#define LOWBIT_EXAMPLES_QUANTIZED_MLP_HPP

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <lowbit/kernels.hpp>
#include <lowbit/lowbit.hpp>
#include <lowbit/ptq/clip_search.hpp>

#include "mlp.hpp"

namespace demo {

using act_scheme = lowbit::scheme<lowbit::u8>;
using weight_scheme = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>;

/// Unsigned affine activations of `bits` bits: [0, 2^bits - 1] (torch quint8 with quant_min /
/// quant_max).
inline act_scheme activation_scheme(int bits) {
    return bits == 8 ? act_scheme{} : act_scheme{}.with_range(0, (1 << bits) - 1);
}
/// Symmetric per-output-channel weights of `bits` bits in an int8: [-2^(b-1), 2^(b-1) - 1].
inline weight_scheme weight_scheme_bits(int bits) {
    const weight_scheme s = weight_scheme{}.per_channel(0);
    return bits == 8 ? s : s.with_range(-(1 << (bits - 1)), (1 << (bits - 1)) - 1);
}

/// Throws with the lowbit error text when a lowbit call fails (the example's error policy).
inline void check(const lowbit::status& st, const char* what) {
    if (!st.ok()) throw std::runtime_error(std::string(what) + ": " + lowbit::error::message(st));
}

struct quantized_layer {
    int wbits = 0;                    ///< 0: f32 weights
    int abits = 0;                    ///< 0: f32 output
    std::vector<float> w;             ///< the weights the layer computes with (dequantized codes, or f32)
    std::vector<std::int8_t> codes;   ///< out * in integer weights (wbits > 0)
    std::vector<float> scales;        ///< out weight scales (wbits > 0)
    lowbit::qparams out{1.0f, 0};     ///< output qparams (abits > 0)
};

/// A quantized demo::mlp; `base` supplies shapes and biases and must outlive it.
struct quantized_mlp {
    const mlp* base = nullptr;
    std::vector<quantized_layer> layers;

    explicit quantized_mlp(const mlp& m) : base(&m), layers(m.layers.size()) {
        for (std::size_t l = 0; l < layers.size(); ++l) layers[l].w = m.layers[l].w;
    }
    /// Stored bytes: weights at wbits (4-bit packed two per byte; f32 4 bytes), a f32 scale per
    /// output channel of a quantized layer, and the bias (int32 when the layer's input and
    /// weights are quantized, else f32: 4 bytes either way).
    std::size_t bytes() const {
        std::size_t b = 0;
        for (std::size_t l = 0; l < layers.size(); ++l) {
            const linear_layer& L = base->layers[l];
            b += layers[l].wbits == 0 ? 4 * L.w.size() : (L.w.size() * std::size_t(layers[l].wbits) + 7) / 8 + 4 * L.out;
            b += 4 * L.out;
        }
        return b;
    }
};

/// Sets layer l's weights from integer codes and per-channel scales (w = code * scale).
inline void set_weight_codes(quantized_mlp& q, std::size_t l, int bits, std::vector<std::int8_t> codes,
                             std::vector<float> scales) {
    const linear_layer& L = q.base->layers[l];
    quantized_layer& ql = q.layers[l];
    ql.wbits = bits;
    ql.codes = std::move(codes);
    ql.scales = std::move(scales);
    ql.w.resize(L.w.size());
    const std::vector<std::int32_t> zps(L.out, 0);
    check(lowbit::ref::dequantize(weight_scheme_bits(bits), lowbit::shape{L.out, L.in}, {ql.scales, zps}, ql.codes,
                                  ql.w),
          "dequantize weights");
}

/// Round-to-nearest weights of `bits` bits from per-channel min / max (torch's per-channel
/// symmetric observer), optionally from other f32 weights w (default: the base model's).
inline void quantize_weights_rtn(quantized_mlp& q, std::size_t l, int bits, const std::vector<float>* w = nullptr) {
    const linear_layer& L = q.base->layers[l];
    const std::vector<float>& src = w != nullptr ? *w : L.w;
    const weight_scheme s = weight_scheme_bits(bits);
    std::vector<float> scales(L.out);
    std::vector<std::int32_t> zps(L.out);
    check(lowbit::ptq::weight_minmax_qparams(s, L.out, L.in, src, scales, zps), "weight qparams");
    std::vector<std::int8_t> codes(L.w.size());
    check(lowbit::ref::quantize(s, lowbit::shape{L.out, L.in}, {scales, zps}, src, codes), "quantize weights");
    set_weight_codes(q, l, bits, std::move(codes), std::move(scales));
}

/// The simulation hooks (file comment) for demo::forward / demo::logits.
struct sim_hooks {
    const quantized_mlp* q;
    void weights(std::size_t l, const linear_layer&, std::vector<float>& w) { w = q->layers[l].w; }
    void weights_backward(std::size_t, const linear_layer&, float*) {}
    void act(std::size_t l, float* y, std::size_t rows, std::size_t cols) {
        const quantized_layer& ql = q->layers[l];
        if (ql.abits == 0) return;
        const lowbit::span<float> v(y, rows * cols);
        check(lowbit::kernels::fake_quantize(activation_scheme(ql.abits), ql.out, v, v), "fake-quantize activations");
    }
    void act_backward(std::size_t, float*, std::size_t, std::size_t) {}
    void step(float) {}
};

/// Simulated accuracy of q on d.
inline double sim_accuracy(const quantized_mlp& q, const dataset& d) {
    sim_hooks h{&q};
    return accuracy(logits(*q.base, h, d), d);
}

/// The deployed integer model (file comment): every layer has wbits > 0 and abits > 0.
class integer_mlp {
public:
    static constexpr float input_scale = 1.0f / 255.0f;

    explicit integer_mlp(const quantized_mlp& q) {
        float s_in = input_scale;
        std::int32_t z_in = 0;
        for (std::size_t l = 0; l < q.layers.size(); ++l) {
            const linear_layer& L = q.base->layers[l];
            const quantized_layer& ql = q.layers[l];
            if (ql.wbits == 0 || ql.abits == 0)
                throw std::runtime_error("integer_mlp: layer " + std::to_string(l) + " is not quantized");
            layer e;
            e.n = L.out;
            e.k = L.in;
            e.z_in = z_in;
            e.out_scheme = activation_scheme(ql.abits);
            e.out = ql.out;
            e.buffer.resize(lowbit::kernels::packed_size(L.out, L.in));
            const lowbit::gemm_b b{ql.codes, L.in, lowbit::weight_layout::n_by_k, {}};
            const lowbit::result<lowbit::kernels::packed_weights> p = lowbit::kernels::pack_weights(b, L.out, L.in, e.buffer);
            check(p.status(), "pack weights");
            e.packed = *p;
            for (std::size_t n = 0; n < L.out; ++n) {
                const double s_acc = double(s_in) * double(ql.scales[n]);
                const double bq = std::nearbyint(double(L.b[n]) / s_acc);
                e.bias.push_back(static_cast<std::int32_t>(std::clamp(bq, -2147483648.0, 2147483647.0)));
                const lowbit::result<lowbit::quantized_multiplier> m =
                    lowbit::quantize_multiplier(s_acc / double(ql.out.scale));
                check(m.status(), "requantize multiplier");
                e.mult.push_back(*m);
            }
            s_in = ql.out.scale;
            z_in = ql.out.zero_point;
            layers_.push_back(std::move(e));
        }
    }

    /// Integer logits (codes) of `rows` images given as pixel bytes (rows x 784).
    void run(const std::uint8_t* pixels, std::size_t rows, std::vector<std::uint8_t>& out) {
        const std::uint8_t* in = pixels;
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            layer& e = layers_[l];
            e.act.resize(rows * e.n);
            const lowbit::gemm_a<std::uint8_t> a{lowbit::span<const std::uint8_t>(in, rows * e.k), e.k, e.z_in};
            lowbit::requantize_params p;
            p.multipliers = e.mult;
            p.bias = e.bias;
            p.zero_point = e.out.zero_point;
            check(lowbit::kernels::gemm(lowbit::gemm_dims{rows, e.n, e.k}, a, e.packed, e.out_scheme, p, e.act, e.n),
                  "int8 gemm");
            in = e.act.data();
        }
        out = layers_.back().act;
    }

    /// Predicted class of every image of d (argmax of the integer logits, first on ties).
    std::vector<std::uint8_t> predict(const dataset& d) {
        std::vector<std::uint8_t> pred(d.count), out;
        const std::size_t classes = layers_.back().n;
        for (std::size_t first = 0; first < d.count; first += 1000) {
            const std::size_t n = std::min<std::size_t>(1000, d.count - first);
            run(d.images.data() + first * dataset::pixels, n, out);
            for (std::size_t i = 0; i < n; ++i) {
                const std::uint8_t* z = out.data() + i * classes;
                pred[first + i] = static_cast<std::uint8_t>(std::max_element(z, z + classes) - z);
            }
        }
        return pred;
    }

private:
    struct layer {
        std::size_t n = 0, k = 0;
        std::int32_t z_in = 0;
        act_scheme out_scheme{};
        lowbit::qparams out{};
        std::vector<std::uint8_t> buffer;
        lowbit::kernels::packed_weights packed{};
        std::vector<lowbit::quantized_multiplier> mult;
        std::vector<std::int32_t> bias;
        std::vector<std::uint8_t> act;
    };
    std::vector<layer> layers_;
};

/// A weight-only int4 model (every wbits 4, every abits 0): f32 activations, the int4 GEMM on
/// 4-bit weights packed two per byte with one f32 scale per output channel (group = K, K padded
/// with zero weights to a multiple of 32).
class int4_mlp {
public:
    explicit int4_mlp(const quantized_mlp& q) {
        for (std::size_t l = 0; l < q.layers.size(); ++l) {
            const linear_layer& L = q.base->layers[l];
            const quantized_layer& ql = q.layers[l];
            if (ql.wbits != 4 || ql.abits != 0)
                throw std::runtime_error("int4_mlp: layer " + std::to_string(l) + " is not W4 with f32 activations");
            layer e;
            e.n = L.out;
            e.k = L.in;
            e.kp = (L.in + 31) / 32 * 32;
            std::vector<std::int8_t> padded(e.n * e.kp, 0);
            for (std::size_t r = 0; r < e.n; ++r)
                std::copy(ql.codes.begin() + std::ptrdiff_t(r * e.k), ql.codes.begin() + std::ptrdiff_t((r + 1) * e.k),
                          padded.begin() + std::ptrdiff_t(r * e.kp));
            std::vector<std::uint8_t> nibbles(lowbit::s4::storage_size(padded.size()));
            check(lowbit::ref::pack_s4(padded, nibbles), "pack s4");
            lowbit::int4_weights w;
            w.format = lowbit::format_id::s4;
            w.n = e.n;
            w.k = e.kp;
            w.group_size = e.kp;
            w.data = nibbles;
            w.scales = ql.scales;
            e.packed.resize(lowbit::kernels::packed_int4_size(w));
            check(lowbit::kernels::pack_int4(w, e.packed), "pack int4");
            e.bias = L.b;
            layers_.push_back(std::move(e));
        }
    }

    /// f32 logits of `rows` images given as floats (rows x 784).
    void run(const float* x, std::size_t rows, std::vector<float>& out) {
        const float* in = x;
        std::size_t ld = layers_.front().k;
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            layer& e = layers_[l];
            if (e.kp != ld) {  // pad the input rows with zeros to K
                e.padded.assign(rows * e.kp, 0.0f);
                for (std::size_t r = 0; r < rows; ++r) std::copy(in + r * ld, in + r * ld + e.k, e.padded.data() + r * e.kp);
                in = e.padded.data();
            }
            e.act.resize(rows * e.n);
            check(lowbit::kernels::gemm_int4_f32(e.packed, lowbit::span<const float>(in, rows * e.kp), rows, e.kp, e.bias,
                                                 e.act, e.n),
                  "int4 gemm");
            if (l + 1 < layers_.size()) relu(e.act.data(), e.act.size());
            in = e.act.data();
            ld = e.n;
        }
        out = layers_.back().act;
    }

    std::vector<std::uint8_t> predict(const dataset& d) {
        std::vector<std::uint8_t> pred(d.count);
        std::vector<float> out;
        const std::size_t classes = layers_.back().n;
        for (std::size_t first = 0; first < d.count; first += 1000) {
            const std::size_t n = std::min<std::size_t>(1000, d.count - first);
            const std::vector<float> x = d.batch(first, n);
            run(x.data(), n, out);
            for (std::size_t i = 0; i < n; ++i) pred[first + i] = static_cast<std::uint8_t>(argmax(out.data() + i * classes, classes));
        }
        return pred;
    }

private:
    struct layer {
        std::size_t n = 0, k = 0, kp = 0;
        std::vector<std::uint8_t> packed;
        std::vector<float> bias, padded, act;
    };
    std::vector<layer> layers_;
};

/// Fraction of predictions equal to the labels.
inline double accuracy(const std::vector<std::uint8_t>& pred, const dataset& d) {
    std::size_t right = 0;
    for (std::size_t i = 0; i < d.count; ++i) right += pred[i] == d.labels[i];
    return double(right) / double(d.count);
}

}  // namespace demo

#endif  // LOWBIT_EXAMPLES_QUANTIZED_MLP_HPP
