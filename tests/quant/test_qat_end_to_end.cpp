// End to end (issue 5): a linear model y = W x trained with QAT (lowbit::fake_quantize on
// the weights, s4 symmetric per channel, straight-through backward) reaches a lower 4-bit
// test loss than the same model quantized post-training (min / max observer, round to
// nearest), and the frozen module's export is the integer path PTQ deploys.
//
// The task. x = A z + 0.2 e: K = 32 inputs driven by r = 4 shared factors z (A is K x r,
// entries N(0, 1/r)) plus small independent noise e, so the input covariance has 4 large
// eigenvalues (about 8) and 28 small ones (0.04). Targets y = W* x + 0.05 n, N = 8 outputs;
// each row of W* has small weights N(0, 0.05^2) and two outliers of magnitude 0.8 .. 1.0,
// which set the row's s4 scale (max |w| / 7.5, about 0.12) far above the small weights.
// The quantized model's excess loss is (Wq - W*) S (Wq - W*)^T: round-to-nearest picks each
// weight's nearest grid point independently, and its errors land in the 4 high-variance
// directions as much as in the others; QAT sees the loss through the STE gradient and moves
// the latent weights so that the 4-bit weights' error avoids those directions. Here QAT's
// loss is about 5x lower than PTQ's (the WARN message prints the numbers; the assertions keep
// wide margins, see the seed sweep quoted below). The same 400 steps with fake-quant
// disabled (f32 training continued, then PTQ) leave the loss at PTQ's and fail the test.
//
// Determinism: std::mt19937's output sequence is fixed by the standard; the normals are drawn
// by this file's Box-Muller (std::normal_distribution is implementation-defined). Mini-batch
// SGD in a fixed order; everything is f32 except the loss sums (double).
#include "lowbit_catch.hpp"

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <vector>

#include <lowbit/kernels/per_channel.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>
#include <lowbit/quant/fake_quantize.hpp>

namespace {

constexpr std::size_t K = 32;         // inputs
constexpr std::size_t N = 8;          // outputs (= weight rows = quantization channels)
constexpr std::size_t R = 4;          // input factors
constexpr std::size_t n_train = 256;  // training samples
constexpr std::size_t n_test = 2048;  // test samples
constexpr std::size_t batch = 32;

/// N(0, 1) from a mt19937 by Box-Muller (both outputs used), independent of the standard
/// library's distributions.
class normal_gen {
public:
    explicit normal_gen(std::uint32_t seed) : m_g(seed) {}
    float operator()() {
        if (m_have) {
            m_have = false;
            return m_next;
        }
        const double two_pi = 6.283185307179586476925;
        const double u1 = (static_cast<double>(m_g()) + 1.0) / 4294967296.0;  // (0, 1]
        const double u2 = static_cast<double>(m_g()) / 4294967296.0;          // [0, 1)
        const double rad = std::sqrt(-2.0 * std::log(u1));
        m_next = static_cast<float>(rad * std::sin(two_pi * u2));
        m_have = true;
        return static_cast<float>(rad * std::cos(two_pi * u2));
    }
    /// Uniform in [0, 1).
    float uniform() { return static_cast<float>(static_cast<double>(m_g()) / 4294967296.0); }

private:
    std::mt19937 m_g;
    float m_next = 0.0f;
    bool m_have = false;
};

struct dataset {
    std::size_t n = 0;
    std::vector<float> x;  // n x K
    std::vector<float> y;  // n x N
};

struct task {
    std::vector<float> a;       // K x R mixing
    std::vector<float> w_true;  // N x K
};

task make_task(normal_gen& g) {
    task t;
    t.a.resize(K * R);
    for (float& v : t.a) v = g() * 0.5f;  // N(0, 1/R), R = 4
    t.w_true.resize(N * K);
    for (float& v : t.w_true) v = 0.05f * g();
    for (std::size_t i = 0; i < N; ++i) {
        for (std::size_t o = 0; o < 2; ++o) {
            const std::size_t j = (i * 7 + o * 13 + 3) % K;  // two distinct columns per row
            const float mag = 0.8f + 0.2f * g.uniform();
            t.w_true[i * K + j] = (g.uniform() < 0.5f ? -mag : mag);
        }
    }
    return t;
}

dataset make_data(const task& t, normal_gen& g, std::size_t n) {
    dataset d;
    d.n = n;
    d.x.resize(n * K);
    d.y.resize(n * N);
    float z[R];
    for (std::size_t s = 0; s < n; ++s) {
        for (float& v : z) v = g();
        float* x = &d.x[s * K];
        for (std::size_t j = 0; j < K; ++j) {
            float v = 0.2f * g();
            for (std::size_t f = 0; f < R; ++f) v += t.a[j * R + f] * z[f];
            x[j] = v;
        }
        for (std::size_t i = 0; i < N; ++i) {
            float v = 0.05f * g();
            for (std::size_t j = 0; j < K; ++j) v += t.w_true[i * K + j] * x[j];
            d.y[s * N + i] = v;
        }
    }
    return d;
}

/// Mean over samples and outputs of (W x - y)^2.
double loss(const std::vector<float>& w, const dataset& d) {
    double sum = 0.0;
    for (std::size_t s = 0; s < d.n; ++s) {
        const float* x = &d.x[s * K];
        for (std::size_t i = 0; i < N; ++i) {
            float p = 0.0f;
            for (std::size_t j = 0; j < K; ++j) p += w[i * K + j] * x[j];
            const double e = static_cast<double>(p) - static_cast<double>(d.y[s * N + i]);
            sum += e * e;
        }
    }
    return sum / static_cast<double>(d.n * N);
}

/// Gradient of the batch's mean squared error (samples first .. first + batch, wrapping)
/// with respect to the weights w used in the forward.
void gradient(const std::vector<float>& w, const dataset& d, std::size_t first, std::vector<float>& grad) {
    for (float& v : grad) v = 0.0f;
    const float scale = 2.0f / static_cast<float>(batch * N);
    for (std::size_t b = 0; b < batch; ++b) {
        const std::size_t s = (first + b) % d.n;
        const float* x = &d.x[s * K];
        for (std::size_t i = 0; i < N; ++i) {
            float p = 0.0f;
            for (std::size_t j = 0; j < K; ++j) p += w[i * K + j] * x[j];
            const float dp = scale * (p - d.y[s * N + i]);
            for (std::size_t j = 0; j < K; ++j) grad[i * K + j] += dp * x[j];
        }
    }
}

std::uint32_t bits(float v) {
    std::uint32_t u = 0;
    std::memcpy(&u, &v, sizeof u);
    return u;
}

using S4 = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>;

}  // namespace

TEST_CASE("QAT end to end: a linear model trained with 4-bit fake-quant beats PTQ", "[quant][end_to_end]") {
    const auto t0 = std::chrono::steady_clock::now();
    normal_gen g(20240605u);
    const task tk = make_task(g);
    const dataset train = make_data(tk, g, n_train);
    const dataset test = make_data(tk, g, n_test);
    const lowbit::shape wshape{N, K};
    const S4 scheme = S4{}.per_channel(0);

    // ---- f32 training: plain mini-batch SGD from zero ----
    std::vector<float> w(N * K, 0.0f), grad(N * K);
    // lr 0.1 for the first half, then linearly down to 0 (the small input directions, eigenvalue
    // 0.04, need the steps; the decay removes most of the mini-batch noise)
    const std::size_t steps_f32 = 4000;
    for (std::size_t step = 0; step < steps_f32; ++step) {
        gradient(w, train, step * batch, grad);
        const float lr =
            step < steps_f32 / 2 ? 0.1f : 0.2f * static_cast<float>(steps_f32 - step) / static_cast<float>(steps_f32);
        for (std::size_t k = 0; k < w.size(); ++k) w[k] -= lr * grad[k];
    }
    const double loss_f32 = loss(w, test);

    // ---- (a) PTQ: min / max per row, round to nearest, deployed through the integer path ----
    std::vector<float> ptq_state(2 * N), ptq_scales(N), w_ptq(N * K);
    std::vector<std::int32_t> ptq_zps(N);
    std::vector<S4::storage_type> q(S4::format::storage_size(N * K));  // packed, two per byte
    {
        lowbit::per_channel_minmax_observer<S4> obs(scheme, N, ptq_state);
        REQUIRE(obs.observe(wshape, w).ok());
        REQUIRE(obs.qparams(ptq_scales, ptq_zps).ok());
        const lowbit::qparams_view qp{ptq_scales, ptq_zps};
        REQUIRE(lowbit::kernels::quantize(scheme, wshape, qp, w, q).ok());
        REQUIRE(lowbit::kernels::dequantize(scheme, wshape, qp, q, w_ptq).ok());
        std::vector<float> w_fq(N * K);  // the same as fake-quant
        REQUIRE(lowbit::kernels::fake_quantize(scheme, wshape, qp, w, w_fq).ok());
        std::size_t differ = 0;
        for (std::size_t k = 0; k < N * K; ++k) differ += bits(w_fq[k]) == bits(w_ptq[k]) ? 0u : 1u;
        CHECK(differ == 0);
    }
    const double loss_ptq = loss(w_ptq, test);

    // ---- (b) QAT from the f32 weights: fake-quant on the weights, STE, linear lr decay ----
    using O = lowbit::per_channel_moving_average_minmax_observer<S4>;  // torch's per-channel weight default
    std::vector<float> qat_state(2 * N), qat_scales(N);
    std::vector<std::int32_t> qat_zps(N);
    lowbit::fake_quantize<S4, O> fq(O(scheme, N, qat_state), qat_scales, qat_zps);
    std::vector<float> latent = w, wq(N * K);
    std::vector<std::uint8_t> mask(N * K);
    const float lr_qat = 0.02f;
    const std::size_t steps_qat = 400;
    std::size_t clipped = 0;
    for (std::size_t step = 0; step < steps_qat; ++step) {
        REQUIRE(fq.forward(wshape, latent, wq, mask).ok());
        gradient(wq, train, step * batch, grad);             // dL/dWq
        REQUIRE(fq.backward_masked(mask, grad, grad).ok());  // STE: dL/dW = dL/dWq * mask
        const float lr = lr_qat * (1.0f - static_cast<float>(step) / static_cast<float>(steps_qat));
        for (std::size_t k = 0; k < latent.size(); ++k) latent[k] -= lr * grad[k];
        for (std::uint8_t m : mask) clipped += m ? 0u : 1u;
    }
    fq.freeze();
    const std::vector<float> scales_at_freeze = qat_scales;
    REQUIRE(fq.forward(wshape, latent, wq, mask).ok());  // frozen qparams, the final latent weights
    CHECK(qat_scales == scales_at_freeze);               // the frozen forward did not observe
    const double loss_qat = loss(wq, test);

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::ostringstream msg;
    msg << "test MSE: f32 " << loss_f32 << ", PTQ s4 " << loss_ptq << ", QAT s4 " << loss_qat
        << " (QAT / PTQ " << loss_qat / loss_ptq << ", QAT / f32 " << loss_qat / loss_f32 << ", PTQ / f32 "
        << loss_ptq / loss_f32 << "); STE-clipped weight entries over the QAT steps " << clipped << "; " << seconds
        << " s";
    INFO(msg.str());
    WARN(msg.str());
    // Margins: over 41 seeds of this task (same configuration), QAT / PTQ ranged 0.18 .. 0.54
    // (median 0.29), QAT / f32 2.5 .. 5.4 (median 3.6), PTQ / f32 8.0 .. 21.8 (median 12.1).
    CHECK(loss_ptq > 4.0 * loss_f32);  // the task is one where 4-bit PTQ visibly hurts
    CHECK(loss_qat < 0.7 * loss_ptq);  // QAT at least 30% lower than PTQ
    CHECK(loss_qat < 8.0 * loss_f32);  // and QAT's 4-bit model is within a factor of f32

    // ---- the frozen module's export is PTQ's integer path: quantize + dequantize == wq ----
    const lowbit::qparams_view exported = fq.qparams();
    REQUIRE(exported.scales.size() == N);
    std::vector<float> w_deq(N * K);
    REQUIRE(lowbit::kernels::quantize(scheme, wshape, exported, latent, q).ok());
    REQUIRE(lowbit::kernels::dequantize(scheme, wshape, exported, q, w_deq).ok());
    std::size_t differ = 0;  // bit for bit (also the sign of zeros)
    for (std::size_t k = 0; k < N * K; ++k) differ += bits(w_deq[k]) == bits(wq[k]) ? 0u : 1u;
    CHECK(differ == 0);
}
