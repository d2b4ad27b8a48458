// Time of the data-free PTQ steps (ptq/equalize.hpp, ptq/bias_correction.hpp) on issue 7's
// benchmark shape: a 4096 x 4096 linear layer (followed by another 4096 x 4096 one for CLE)
// with 512 calibration rows, single thread. All of them are one or two passes over the
// weights, so they are memory-bound and cost next to nothing next to GPTQ or AdaRound:
//
//   cle_equalize_pair/4096        equalize_pair on W1, W2 (fresh copies each iteration, copy
//                                 not timed): two range passes and one scaling pass
//   biascorr_empirical/4096/512   correct_bias_empirical: column means of x [512][4096], then
//                                 (W - W~) E[x] in double
//   biascorr_analytic/4096        correct_bias_analytic with ReLU'd-gaussian input statistics
//   preactivation_stats/4096/512  the empirical statistics for high-bias absorption: the
//                                 layer's full forward (512 x 4096 x 4096 in double, scalar)
//
// No main: the benchmarks/ptq target links benchmark_main. Weights N(0, 0.02), inputs
// ReLU(N(0.5, 1)), from std::mt19937 seed 1.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include <lowbit/ptq/bias_correction.hpp>
#include <lowbit/ptq/equalize.hpp>

namespace {

std::vector<float> bench_cle_fill(std::size_t count, double mean, double sd, bool relu, unsigned seed) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(static_cast<float>(mean), static_cast<float>(sd));
    std::vector<float> v(count);
    for (float& e : v) {
        const float x = d(g);
        e = relu && x < 0.0f ? 0.0f : x;
    }
    return v;
}

void BM_cle_equalize_pair(benchmark::State& state) {
    const std::size_t n = static_cast<std::size_t>(state.range(0));
    const std::vector<float> w1 = bench_cle_fill(n * n, 0.0, 0.02, false, 1), w2 = bench_cle_fill(n * n, 0.0, 0.02, false, 2);
    const std::vector<float> b1 = bench_cle_fill(n, 0.0, 0.1, false, 3);
    std::vector<float> a1, a2, c1, c2(n, 0.0f);
    for (auto _ : state) {
        state.PauseTiming();
        a1 = w1;
        a2 = w2;
        c1 = b1;
        state.ResumeTiming();
        lowbit::ptq::cle_layer l1, l2;
        l1.out = n;
        l1.in = n;
        l1.weight = a1;
        l1.bias = c1;
        l2.out = n;
        l2.in = n;
        l2.weight = a2;
        l2.bias = c2;
        benchmark::DoNotOptimize(lowbit::ptq::equalize_pair(l1, l2));
        benchmark::ClobberMemory();
    }
}
BENCHMARK(BM_cle_equalize_pair)->Name("cle_equalize_pair")->Arg(4096)->Unit(benchmark::kMillisecond);

void BM_biascorr_empirical(benchmark::State& state) {
    const std::size_t n = static_cast<std::size_t>(state.range(0)), rows = static_cast<std::size_t>(state.range(1));
    const std::vector<float> w = bench_cle_fill(n * n, 0.0, 0.02, false, 1);
    std::vector<float> wq = w;
    for (float& e : wq) e = std::nearbyint(e / 0.005f) * 0.005f;
    const std::vector<float> x = bench_cle_fill(rows * n, 0.5, 1.0, true, 4);
    std::vector<float> b(n, 0.0f);
    for (auto _ : state) {
        benchmark::DoNotOptimize(lowbit::ptq::correct_bias_empirical(n, n, rows, w, wq, x, b));
        benchmark::ClobberMemory();
    }
}
BENCHMARK(BM_biascorr_empirical)->Name("biascorr_empirical")->Args({4096, 512})->Unit(benchmark::kMillisecond);

void BM_biascorr_analytic(benchmark::State& state) {
    const std::size_t n = static_cast<std::size_t>(state.range(0));
    const std::vector<float> w = bench_cle_fill(n * n, 0.0, 0.02, false, 1);
    std::vector<float> wq = w;
    for (float& e : wq) e = std::nearbyint(e / 0.005f) * 0.005f;
    const std::vector<float> mean = bench_cle_fill(n, 0.5, 0.2, false, 5), sd = bench_cle_fill(n, 1.0, 0.1, false, 6);
    std::vector<float> b(n, 0.0f);
    for (auto _ : state) {
        benchmark::DoNotOptimize(lowbit::ptq::correct_bias_analytic(n, n, 1, w, wq, mean, sd,
                                                                    lowbit::ptq::input_activation::relu, b));
        benchmark::ClobberMemory();
    }
}
BENCHMARK(BM_biascorr_analytic)->Name("biascorr_analytic")->Arg(4096)->Unit(benchmark::kMillisecond);

void BM_cle_preactivation_stats(benchmark::State& state) {
    const std::size_t n = static_cast<std::size_t>(state.range(0)), rows = static_cast<std::size_t>(state.range(1));
    const std::vector<float> w = bench_cle_fill(n * n, 0.0, 0.02, false, 1), b = bench_cle_fill(n, 0.0, 0.1, false, 3);
    const std::vector<float> x = bench_cle_fill(rows * n, 0.5, 1.0, true, 4);
    std::vector<float> mean(n), sd(n);
    for (auto _ : state) {
        benchmark::DoNotOptimize(lowbit::ptq::preactivation_stats(rows, n, n, x, w, b, mean, sd));
        benchmark::ClobberMemory();
    }
}
BENCHMARK(BM_cle_preactivation_stats)
    ->Name("preactivation_stats")
    ->Args({4096, 512})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

}  // namespace
