// distributed_qat: a short data-parallel quantization-aware training run of the Fashion-MNIST
// demo MLP (784-256-128-10) over MPI ranks, with lowbit::mpi::qat_sync keeping every rank's
// model and quantizers identical, and a check that they end identical.
//
//   mpirun -n 2 ./distributed_qat [--data DIR] [--train-images N] [--epochs E] [--test-images N]
//
// W4A8: weights fake-quantized per output channel to s4 with learned LSQ step sizes
// (lowbit::lsq_channel_quantizer, gradients through the straight-through estimator), hidden
// activations fake-quantized to u8 by torch-style FakeQuantize modules (moving-average observers,
// STE masks). Every rank trains on its own equal shard of the training images (the same number of
// steps on every rank: each step is a collective) with demo::train's SGD + momentum loop, and the
// hooks call qat_sync::step() once per step, which
//   - averages the LSQ scale gradients over the ranks before the hooks update the scales,
//   - synchronises the activation modules' running ranges (min / max over the ranks: what one
//     process observing the concatenated global batch would hold, bit for bit), and
//   - averages the weights and biases after the optimizer step: demo::train owns its gradient
//     buffers, and for SGD with momentum and weight decay averaging the parameters after each step
//     equals averaging the gradients before it (the update is linear, and every rank starts each
//     step with the same parameters), up to float rounding.
// At the end every rank's weights, LSQ scales and activation qparams must be identical (checked
// bit for bit against rank 0's; exit 1 otherwise). Rank 0 reports the fake-quantized test accuracy.
#include <mpi.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <lowbit/mpi.hpp>
#include <lowbit/quant/fake_quantize.hpp>
#include <lowbit/quant/learnable.hpp>

#include "fashion_mnist.hpp"
#include "mlp.hpp"

namespace {

using U8 = lowbit::scheme<lowbit::u8>;
using S4s = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>;

struct options {
    std::string data = demo::default_fashion_mnist_dir();
    std::size_t train_images = 12000;
    std::size_t epochs = 1;
    std::size_t test_images = 10000;
};

[[noreturn]] void usage(int rank, const char* why) {
    if (rank == 0)
        std::fprintf(stderr,
                     "distributed_qat: %s\n"
                     "usage: mpirun -n N distributed_qat [--data DIR] [--train-images N] [--epochs E] "
                     "[--test-images N]\n",
                     why);
    MPI_Finalize();
    std::exit(2);
}

options parse(int argc, char** argv, int rank) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) usage(rank, ("missing value after " + a).c_str());
        const std::string v = argv[++i];
        if (a == "--data") {
            o.data = v;
        } else if (a == "--train-images" || a == "--epochs" || a == "--test-images") {
            char* end = nullptr;
            const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
            if (end == v.c_str() || *end != '\0' || n == 0) usage(rank, (a + " needs a positive integer").c_str());
            std::size_t& target = a == "--epochs" ? o.epochs : a == "--test-images" ? o.test_images : o.train_images;
            target = static_cast<std::size_t>(n);
        } else {
            usage(rank, ("unknown option " + a).c_str());
        }
    }
    return o;
}

/// demo::train's hooks for data-parallel W4A8 QAT (see the file comment).
class qat_hooks {
public:
    explicit qat_hooks(demo::mlp& m) : m_model(m), m_sync(MPI_COMM_WORLD) {
        const std::size_t L = m.layers.size();
        m_layers.resize(L);
        for (std::size_t l = 0; l < L; ++l) {
            const demo::linear_layer& layer = m.layers[l];
            weight_quantizer& q = m_layers[l];
            q.scales.assign(layer.out, 0.0f);
            q.zero_points.assign(layer.out, 0.0f);
            q.dscales.assign(layer.out, 0.0f);
            q.dzero_points.assign(layer.out, 0.0f);
            for (std::size_t o = 0; o < layer.out; ++o) {  // LSQ starts at each row's max |w| / 7
                float top = 0.0f;
                for (std::size_t i = 0; i < layer.in; ++i) top = std::fmax(top, std::fabs(layer.w[o * layer.in + i]));
                q.scales[o] = top / 7.0f;
            }
            q.lsq.scheme = S4s{}.per_channel(0);
            q.lsq.scales = q.scales;
            q.lsq.zero_points = q.zero_points;
            q.lsq.dscales = q.dscales;
            q.lsq.dzero_points = q.dzero_points;
            m_sync.add(q.lsq);
            if (l + 1 < L) {  // the hidden activations (after ReLU); the logits stay f32
                q.act = std::make_unique<lowbit::fake_quantize<U8>>();
                m_sync.add(*q.act);
            }
            m_sync.add_gradient(m.layers[l].w).add_gradient(m.layers[l].b);  // averaged after the update
        }
    }

    // ---- demo::train's hooks ----
    void weights(std::size_t l, const demo::linear_layer& layer, std::vector<float>& w) {
        w.resize(layer.w.size());
        m_layers[l].lsq.forward(lowbit::shape{layer.out, layer.in}, layer.w, w);
    }
    void weights_backward(std::size_t l, const demo::linear_layer& layer, float* dw) {
        const lowbit::span<float> g(dw, layer.w.size());
        m_layers[l].lsq.backward(lowbit::shape{layer.out, layer.in}, layer.w, g, g);  // STE; accumulates dscales
    }
    void act(std::size_t l, float* y, std::size_t rows, std::size_t cols) {
        if (!m_layers[l].act) return;
        std::vector<std::uint8_t>& mask = m_layers[l].mask;
        mask.resize(rows * cols);
        const lowbit::span<float> v(y, rows * cols);
        m_layers[l].act->forward(v, v, mask);
    }
    void act_backward(std::size_t l, float* dy, std::size_t rows, std::size_t cols) {
        if (!m_layers[l].act) return;
        const lowbit::span<float> g(dy, rows * cols);
        m_layers[l].act->backward_masked(m_layers[l].mask, g, g);
    }
    /// After demo::train's update: one qat_sync::step (LSQ gradients, activation ranges, weights),
    /// then the LSQ scales' own SGD step.
    void step(float lr) {
        const lowbit::mpi::step_report r = *m_sync.step();
        if (m_steps == 0) m_first = r;
        m_all_exact = m_all_exact && r.ranges_exact;
        ++m_steps;
        for (weight_quantizer& q : m_layers) {
            for (std::size_t c = 0; c < q.scales.size(); ++c) q.scales[c] -= lr * q.dscales[c];
            q.lsq.zero_grad();
        }
    }

    void freeze() {
        for (weight_quantizer& q : m_layers)
            if (q.act) q.act->freeze();
    }
    /// Everything that must be identical on every rank: weights, biases, LSQ scales, activation qparams.
    std::vector<std::uint8_t> fingerprint() const {
        std::vector<float> v;
        for (std::size_t l = 0; l < m_layers.size(); ++l) {
            const weight_quantizer& q = m_layers[l];
            v.insert(v.end(), m_model.layers[l].w.begin(), m_model.layers[l].w.end());
            v.insert(v.end(), m_model.layers[l].b.begin(), m_model.layers[l].b.end());
            v.insert(v.end(), q.scales.begin(), q.scales.end());
            if (q.act) {
                v.push_back(q.act->qparams().scale);
                v.push_back(static_cast<float>(q.act->qparams().zero_point));
            }
        }
        std::vector<std::uint8_t> b(v.size() * sizeof(float));
        std::memcpy(b.data(), v.data(), b.size());
        return b;
    }
    void print_qparams(int rank) const {
        std::printf("rank %d:", rank);
        for (std::size_t l = 0; l < m_layers.size(); ++l) {
            const weight_quantizer& q = m_layers[l];
            float lo = q.scales[0], hi = q.scales[0];
            for (float s : q.scales) lo = std::fmin(lo, s), hi = std::fmax(hi, s);
            std::printf("  fc%zu w s4 scales [%.7g, %.7g]", l, static_cast<double>(lo), static_cast<double>(hi));
            if (q.act)
                std::printf(", act u8 %.7g / %d", static_cast<double>(q.act->qparams().scale),
                            q.act->qparams().zero_point);
        }
        std::printf("\n");
    }

    std::size_t steps() const { return m_steps; }
    bool ranges_exact() const { return m_all_exact; }
    const lowbit::mpi::step_report& first_report() const { return m_first; }

private:
    struct weight_quantizer {
        std::vector<float> scales, zero_points, dscales, dzero_points;  // the LSQ quantizer's spans
        lowbit::lsq_channel_quantizer<S4s> lsq;
        std::unique_ptr<lowbit::fake_quantize<U8>> act;
        std::vector<std::uint8_t> mask;
    };
    demo::mlp& m_model;
    std::vector<weight_quantizer> m_layers;  // sized once: the spans stay valid
    lowbit::mpi::qat_sync m_sync;
    lowbit::mpi::step_report m_first;
    std::size_t m_steps = 0;
    bool m_all_exact = true;
};

int run(int rank, int ranks, const options& o) {
    const std::size_t P = static_cast<std::size_t>(ranks);
    demo::dataset train, test;
    int ok = 1;
    try {  // every rank reads its own shard (a shared file system, as usual for MPI jobs)
        train = demo::load_fashion_mnist(o.data, true);
        if (o.train_images > train.count) throw std::runtime_error("--train-images larger than the training set");
        if (rank == 0) {
            test = demo::load_fashion_mnist(o.data, false);
            if (o.test_images > test.count) throw std::runtime_error("--test-images larger than the test set");
            test = test.slice(0, o.test_images);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "distributed_qat: rank %d: %s\n", rank, e.what());
        ok = 0;
    }
    int all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all_ok) return 1;

    // equal shards: every rank takes the same number of steps
    const std::size_t per_rank = o.train_images / P;
    const demo::dataset shard = train.slice(static_cast<std::size_t>(rank) * per_rank, per_rank);
    demo::mlp m = demo::make_mlp({784, 256, 128, 10}, 1);  // the same initial weights on every rank
    qat_hooks hooks(m);
    demo::train_options t;
    t.epochs = o.epochs;
    t.batch = 64;
    if (rank == 0)
        std::printf("data-parallel QAT (W4A8): %d ranks x %zu images, %zu epoch(s), batch %zu per rank\n", ranks,
                    per_rank, o.epochs, t.batch);
    demo::train(m, hooks, shard, t, [&](std::size_t e, std::size_t s, std::size_t steps, double loss) {
        if (rank == 0 && s == steps) std::printf("  epoch %zu: running loss (rank 0) %.4f\n", e + 1, loss);
    });
    hooks.freeze();

    // every rank must hold rank 0's model and qparams, bit for bit
    const std::vector<std::uint8_t> mine = hooks.fingerprint();
    std::vector<std::uint8_t> root = mine;
    MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_BYTE, 0, MPI_COMM_WORLD);
    int same = root == mine ? 1 : 0, all_same = 0;
    MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    for (int r = 0; r < ranks; ++r) {  // one rank at a time (stdout of several processes interleaves)
        if (r == rank) {
            hooks.print_qparams(rank);
            std::fflush(stdout);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
    if (rank == 0) {
        const lowbit::mpi::step_report& r = hooks.first_report();
        std::printf("qat_sync::step per training step (%zu steps): %zu floats reduced, %zu / %zu bytes sent / received "
                    "per rank; activation ranges equal one process's every step: %s\n",
                    hooks.steps(), r.gradient_values, r.bytes_sent, r.bytes_received,
                    hooks.ranges_exact() ? "yes" : "no");
        const double acc = demo::accuracy(demo::logits(m, hooks, test), test);
        std::printf("fake-quantized (W4A8) accuracy on %zu test images: %.2f %%\n", test.count, 100.0 * acc);
        std::printf("weights, LSQ scales and activation qparams identical on every rank: %s\n",
                    all_same ? "yes" : "NO");
    }
    return all_same && hooks.ranges_exact() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);  // lowbit::mpi reports failed calls
    const options o = parse(argc, argv, rank);
    int code = 1;
    try {
        code = run(rank, ranks, o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "distributed_qat: rank %d: %s\n", rank, e.what());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Finalize();
    return code;
}
