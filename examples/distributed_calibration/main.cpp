// distributed_calibration: calibrates the activations of the Fashion-MNIST demo MLP
// (784-256-128-10) with the calibration set split unevenly over MPI ranks, and checks that every
// rank ends with exactly the qparams one process gets from the whole set.
//
//   mpirun -n 4 ./distributed_calibration [--data DIR] [--weights DIR] [--save-weights DIR]
//                                         [--train-images N] [--calib N]
//
// 1. Rank 0 trains the model for one epoch (or loads DIR/fc<l>_weight.npy, fc<l>_bias.npy with
//    --weights) and broadcasts the weights (MPI_Bcast).
// 2. Rank 0 scatters the calibration set (the first --calib training images, default 2000)
//    unevenly: rank r gets a share proportional to r + 1 (MPI_Scatterv).
// 3. Every rank runs its shard through the model and observes each layer's output with five
//    observers: MinMax (u8), per-feature MinMax (s8 symmetric), percentile 99.99 and MSE (u8,
//    lowbit's exact-merge histogram) and torch's HistogramObserver (u8).
// 4. lowbit::mpi::allreduce makes each observer the combination of all shards on every rank.
// 5. Rank 0 calibrates the whole set in one process (the same batches) and compares. MinMax, per-feature MinMax,
//    percentile and MSE must equal it bit for bit (state bytes and qparams), and every rank must
//    hold the same states; otherwise the program exits 1. torch's HistogramObserver re-bins in
//    batch order, so its merge is the same on every rank but in general not one process's; its
//    comparison is printed, not required.
#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <lowbit/mpi.hpp>
#include <lowbit/observers/histogram.hpp>
#include <lowbit/observers/minmax.hpp>
#include <lowbit/observers/mse.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>
#include <lowbit/observers/percentile.hpp>

#include "fashion_mnist.hpp"
#include "mlp.hpp"

#if LOWBIT_EXAMPLE_NPY
#include <lowbit/xtensor.hpp>
#endif

namespace {

using U8 = lowbit::scheme<lowbit::u8>;
using S8s = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>;

struct options {
    std::string data = demo::default_fashion_mnist_dir();
    std::string weights, save_weights;
    std::size_t train_images = 60000;
    std::size_t calib = 2000;
};

[[noreturn]] void usage(int rank, const char* why) {
    if (rank == 0)
        std::fprintf(stderr,
                     "distributed_calibration: %s\n"
                     "usage: mpirun -n N distributed_calibration [--data DIR] [--weights DIR] [--save-weights DIR]\n"
                     "                                           [--train-images N] [--calib N]\n",
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
        if (a == "--data") o.data = v;
        else if (a == "--weights") o.weights = v;
        else if (a == "--save-weights") o.save_weights = v;
        else if (a == "--train-images" || a == "--calib") {
            char* end = nullptr;
            const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
            if (end == v.c_str() || *end != '\0' || n == 0) usage(rank, (a + " needs a positive integer").c_str());
            (a == "--calib" ? o.calib : o.train_images) = static_cast<std::size_t>(n);
        } else {
            usage(rank, ("unknown option " + a).c_str());
        }
    }
    return o;
}

/// Every rank leaves with the same exit code: rank 0's decision (after its own checks).
int agree(int code) {
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return code;
}

// ---- the model's weights: rank 0 trains or loads them, then every rank gets them -------------

void load_or_train(demo::mlp& m, const options& o, const demo::dataset& train) {
    if (!o.weights.empty()) {
#if LOWBIT_EXAMPLE_NPY
        for (std::size_t l = 0; l < m.layers.size(); ++l) {
            demo::linear_layer& L = m.layers[l];
            const std::string p = o.weights + "/fc" + std::to_string(l);
            const auto w = lowbit::xtensor::load_npy<float>(p + "_weight.npy");
            const auto b = lowbit::xtensor::load_npy<float>(p + "_bias.npy");
            if (w.dimension() != 2 || w.shape()[0] != L.out || w.shape()[1] != L.in || b.size() != L.out)
                throw std::runtime_error(p + "_weight.npy / _bias.npy: expected shapes [" + std::to_string(L.out) +
                                         ", " + std::to_string(L.in) + "] and [" + std::to_string(L.out) + "]");
            L.w.assign(w.begin(), w.end());
            L.b.assign(b.begin(), b.end());
        }
        std::printf("f32 model: loaded from %s/fc*_{weight,bias}.npy\n", o.weights.c_str());
        return;
#else
        throw std::runtime_error("--weights needs lowbit::xtensor (libxtensor-dev) for reading .npy files");
#endif
    }
    demo::train_options t;
    t.epochs = 1;
    demo::f32_hooks hooks;
    const demo::dataset d = train.slice(0, o.train_images < train.count ? o.train_images : train.count);
    demo::train(m, hooks, d, t);
    std::printf("f32 model: trained 1 epoch on %zu images (rank 0)\n", d.count);
#if LOWBIT_EXAMPLE_NPY
    if (!o.save_weights.empty()) {
        std::filesystem::create_directories(o.save_weights);
        for (std::size_t l = 0; l < m.layers.size(); ++l) {
            const demo::linear_layer& L = m.layers[l];
            const std::string p = o.save_weights + "/fc" + std::to_string(l);
            lowbit::xtensor::save_npy(p + "_weight.npy", xt::adapt(L.w, std::vector<std::size_t>{L.out, L.in}));
            lowbit::xtensor::save_npy(p + "_bias.npy", xt::adapt(L.b, std::vector<std::size_t>{L.out}));
        }
        std::printf("f32 model: saved to %s/fc*_{weight,bias}.npy\n", o.save_weights.c_str());
    }
#endif
}

void broadcast(demo::mlp& m) {
    for (demo::linear_layer& L : m.layers) {
        MPI_Bcast(L.w.data(), static_cast<int>(L.w.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
        MPI_Bcast(L.b.data(), static_cast<int>(L.b.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
    }
}

// ---- calibration ----------------------------------------------------------------------------

constexpr int observer_count = 5;
const char* const observer_name[observer_count] = {"minmax", "per-feature", "percentile", "mse", "histogram"};
constexpr bool exact[observer_count] = {true, true, true, true, false};

/// The observers of one layer's output (rows x features, features along axis 1).
struct layer_observers {
    std::size_t features;
    std::vector<float> pc_state;
    lowbit::minmax_observer<U8> minmax;
    lowbit::per_channel_minmax_observer<S8s> per_feature;
    lowbit::percentile_observer<U8> percentile{U8{}, {99.99}};
    lowbit::mse_observer<U8> mse;
    lowbit::histogram_observer<U8> histogram;

    explicit layer_observers(std::size_t f)
        : features(f), pc_state(2 * f), per_feature(S8s{}.per_channel(1), f, pc_state) {}

    void observe(const std::vector<float>& y, std::size_t rows) {
        minmax.observe(y);
        per_feature.observe(lowbit::shape{rows, features}, y);
        percentile.observe(y);
        mse.observe(y);
        histogram.observe(y);
    }

    /// Observer k's qparams; per-feature: the largest scale over the features (zero point 0).
    lowbit::qparams qparams(int k) const {
        switch (k) {
            case 0: return *minmax.qparams();
            case 1: {
                std::vector<float> s(features);
                std::vector<std::int32_t> z(features);
                per_feature.qparams(s, z);
                float top = 0.0f;
                for (float v : s) top = v > top ? v : top;
                return {top, 0};
            }
            case 2: return *percentile.qparams();
            case 3: return *mse.qparams();
            default: return *histogram.qparams();
        }
    }

    template <class O>
    static std::vector<std::uint8_t> bytes_of(const O& o) {
        std::vector<std::uint8_t> v(o.state_size());
        o.save(v);
        return v;
    }
    std::vector<std::uint8_t> state(int k) const {
        switch (k) {
            case 0: return bytes_of(minmax);
            case 1: return bytes_of(per_feature);
            case 2: return bytes_of(percentile);
            case 3: return bytes_of(mse);
            default: return bytes_of(histogram);
        }
    }

    lowbit::mpi::exchange_report allreduce(int k) {
        switch (k) {
            case 0: return *lowbit::mpi::allreduce(MPI_COMM_WORLD, minmax);
            case 1: return *lowbit::mpi::allreduce(MPI_COMM_WORLD, per_feature);
            case 2: return *lowbit::mpi::allreduce(MPI_COMM_WORLD, percentile);
            case 3: return *lowbit::mpi::allreduce(MPI_COMM_WORLD, mse);
            default: return *lowbit::mpi::allreduce(MPI_COMM_WORLD, histogram);
        }
    }
};

using observers = std::vector<std::unique_ptr<layer_observers>>;  // (they hold spans of their own state)

observers make_observers(const demo::mlp& m) {
    observers obs;
    for (const demo::linear_layer& L : m.layers) obs.push_back(std::make_unique<layer_observers>(L.out));
    return obs;
}

/// Runs n images (n x 784 floats) through the model in batches of 100, observing every layer.
void calibrate(const demo::mlp& m, const float* x, std::size_t n, observers& obs) {
    demo::f32_hooks hooks;
    demo::forward_state st;
    bool prepared = false;
    for (std::size_t first = 0; first < n; first += 100) {
        const std::size_t rows = n - first < 100 ? n - first : 100;
        demo::forward(m, hooks, x + first * demo::dataset::pixels, rows, st, prepared);
        prepared = true;
        for (std::size_t l = 0; l < obs.size(); ++l) obs[l]->observe(st.outs[l], rows);
    }
}

int run(int rank, int ranks, const options& o) {
    // 1. the model, on rank 0; a failure there is everyone's exit code
    demo::mlp m = demo::make_mlp({784, 256, 128, 10}, 1);
    demo::dataset train;
    int ok = 1;
    if (rank == 0) {
        try {
            train = demo::load_fashion_mnist(o.data, true);
            load_or_train(m, o, train);
            if (o.calib > train.count) throw std::runtime_error("--calib larger than the training set");
        } catch (const std::exception& e) {
            std::fprintf(stderr, "distributed_calibration: rank 0: %s\n", e.what());
            ok = 0;
        }
    }
    if (agree(ok) == 0) return 1;
    broadcast(m);

    // 2. the calibration set, split unevenly: rank r gets a share proportional to r + 1
    const std::size_t P = static_cast<std::size_t>(ranks), px = demo::dataset::pixels;
    std::vector<int> counts(P), displs(P);
    std::vector<std::size_t> shard(P);
    std::size_t given = 0;
    for (std::size_t r = 0; r < P; ++r) {
        shard[r] = r + 1 == P ? o.calib - given : o.calib * 2 * (r + 1) / (P * (P + 1));
        counts[r] = static_cast<int>(shard[r] * px);
        displs[r] = static_cast<int>(given * px);
        given += shard[r];
    }
    std::vector<float> all;  // rank 0: the whole calibration set
    if (rank == 0) all = train.batch(0, o.calib);
    const std::size_t mine = shard[static_cast<std::size_t>(rank)];
    std::vector<float> x(mine * px + 1);
    MPI_Scatterv(all.data(), counts.data(), displs.data(), MPI_FLOAT, x.data(), static_cast<int>(mine * px), MPI_FLOAT,
                 0, MPI_COMM_WORLD);

    // 3. this rank's shard
    observers obs = make_observers(m);
    calibrate(m, x.data(), mine, obs);
    const std::size_t L = obs.size();
    std::vector<float> local;  // (scale, zero point) per layer and observer, before the allreduce
    for (std::size_t l = 0; l < L; ++l)
        for (int k = 0; k < observer_count; ++k) {
            const lowbit::qparams q = obs[l]->qparams(k);
            local.push_back(q.scale);
            local.push_back(static_cast<float>(q.zero_point));
        }
    std::vector<float> per_rank(rank == 0 ? local.size() * P : 1);
    MPI_Gather(local.data(), static_cast<int>(local.size()), MPI_FLOAT, per_rank.data(), static_cast<int>(local.size()),
               MPI_FLOAT, 0, MPI_COMM_WORLD);

    // 4. every observer of every layer: the combination of all shards, on every rank
    std::vector<lowbit::mpi::exchange_report> reports(observer_count);  // fc0's (256 features)
    for (std::size_t l = 0; l < L; ++l)
        for (int k = 0; k < observer_count; ++k) {
            const lowbit::mpi::exchange_report r = obs[l]->allreduce(k);
            if (l == 0) reports[static_cast<std::size_t>(k)] = r;
        }

    // 5a. every rank holds the same states as rank 0
    std::vector<std::uint8_t> blob;
    for (std::size_t l = 0; l < L; ++l)
        for (int k = 0; k < observer_count; ++k) {
            const std::vector<std::uint8_t> s = obs[l]->state(k);
            blob.insert(blob.end(), s.begin(), s.end());
        }
    std::vector<std::uint8_t> root = blob;
    MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_BYTE, 0, MPI_COMM_WORLD);
    int same = root == blob ? 1 : 0, all_same = 0;
    MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);

    // 5b. rank 0: one process over the whole set, and the report
    int code = 0;
    if (rank == 0) {
        observers ref = make_observers(m);  // the same batches, in one process
        for (std::size_t r = 0, first = 0; r < P; first += shard[r], ++r)
            calibrate(m, all.data() + first * px, shard[r], ref);
        std::printf("\ncalibration set: %zu images over %d ranks:", o.calib, ranks);
        for (std::size_t r = 0; r < P; ++r) std::printf(" %zu", shard[r]);
        std::printf("\nqparams (scale / zero point; per-feature: the largest of the features' scales):\n");
        std::printf("%-5s %-12s", "layer", "observer");
        for (std::size_t r = 0; r < P; ++r) std::printf("   rank %-2zu (local)   ", r);
        std::printf("   merged (every rank)    one process      states and qparams\n");
        int mismatches = 0;
        for (std::size_t l = 0; l < L; ++l)
            for (int k = 0; k < observer_count; ++k) {
                std::printf("fc%-3zu %-12s", l, observer_name[k]);
                for (std::size_t r = 0; r < P; ++r) {
                    const float* q =
                        per_rank.data() + r * local.size() + 2 * (l * observer_count + static_cast<std::size_t>(k));
                    std::printf("  %12.7g / %-4.0f", static_cast<double>(q[0]), static_cast<double>(q[1]));
                }
                const lowbit::qparams a = obs[l]->qparams(k), b = ref[l]->qparams(k);
                const bool equal = obs[l]->state(k) == ref[l]->state(k) && std::memcmp(&a.scale, &b.scale, 4) == 0 &&
                                   a.zero_point == b.zero_point;
                std::printf("  %12.7g / %-4d  %12.7g / %-4d  %s\n", static_cast<double>(a.scale), a.zero_point,
                            static_cast<double>(b.scale), b.zero_point,
                            equal ? "equal" : exact[k] ? "DIFFER" : "differ (expected)");
                if (exact[k] && !equal) ++mismatches;
            }
        std::printf("\nbytes rank 0 exchanged per allreduce of an fc0 observer (256 features), sent / received:\n");
        for (int k = 0; k < observer_count; ++k)
            std::printf("  %-12s %6zu / %-7zu  %s\n", observer_name[k], reports[static_cast<std::size_t>(k)].bytes_sent,
                        reports[static_cast<std::size_t>(k)].bytes_received,
                        reports[static_cast<std::size_t>(k)].method);
        std::printf("\nevery rank holds rank 0's states: %s\n", all_same ? "yes" : "NO");
        std::printf("minmax, per-feature, percentile, mse equal one process bit for bit: %s\n",
                    mismatches == 0 ? "yes" : "NO");
        code = (all_same && mismatches == 0) ? 0 : 1;
    }
    return agree(code);
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
        std::fprintf(stderr, "distributed_calibration: rank %d: %s\n", rank, e.what());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Finalize();
    return code;
}
