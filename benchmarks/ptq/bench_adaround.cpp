// AdaRound (ptq/adaround.hpp) on the layer: 4096 x 4096 weights (s4 per channel),
// 512 calibration rows, single thread. A full 1000-step run takes minutes, so each benchmark
// run does `steps` Adam steps and reports the time scaled to 1000 steps (counter
// cpu_s_per_1000_steps, process CPU time); the per-call setup (qparams, V init, the two calibration-error passes
// over all 512 rows) is measured separately with iterations = 0 and subtracted.
// Arguments: {steps, batch_rows}.
#include <benchmark/benchmark.h>

#include <cmath>
#include <ctime>
#include <cstdint>
#include <random>
#include <vector>

#include <lowbit/ptq/adaround.hpp>

namespace {

struct bench_adaround_layer {
    std::size_t n = 4096, k = 4096, rows = 512;
    std::vector<float> w, x;
    bench_adaround_layer() {
        std::mt19937 eng(1);
        const auto normal = [&eng] {
            const double u1 = (eng() + 0.5) / 4294967296.0, u2 = (eng() + 0.5) / 4294967296.0;
            return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
        };
        w.resize(n * k);
        for (float& v : w) v = 0.02f * normal();
        x.resize(rows * k);
        for (float& v : x) v = normal();
    }
};

const bench_adaround_layer& bench_adaround_data() {
    static const bench_adaround_layer l;
    return l;
}

double bench_adaround_run(std::size_t steps, std::size_t batch) {
    const bench_adaround_layer& l = bench_adaround_data();
    using scheme = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>;
    const scheme s = scheme{}.per_channel(0);
    std::vector<float> scales(l.n);
    std::vector<std::int32_t> zps(l.n);
    std::vector<std::uint8_t> q(l.n * l.k / 2);
    lowbit::ptq::adaround_options o;
    o.iterations = steps;
    o.batch_rows = batch;
    const auto rep = lowbit::ptq::adaround(s, l.n, l.k, l.w, l.rows, l.x, scales, zps, q, {}, o);
    return rep->mse;
}

void bench_adaround_4096(benchmark::State& state) {
    const std::size_t steps = static_cast<std::size_t>(state.range(0));
    const std::size_t batch = static_cast<std::size_t>(state.range(1));
    (void)bench_adaround_data();
    // setup cost (no optimisation steps), timed once outside the loop; process CPU time (one
    // thread), so a loaded shared machine does not inflate the numbers
    const auto cpu = [] { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; };
    const double t0 = cpu();
    benchmark::DoNotOptimize(bench_adaround_run(0, batch));
    const double setup = cpu() - t0;
    double total = 0.0;
    std::size_t runs = 0;
    for (auto _ : state) {
        const double t1 = cpu();
        benchmark::DoNotOptimize(bench_adaround_run(steps, batch));
        total += cpu() - t1;
        ++runs;
    }
    const double per_step = (total / static_cast<double>(runs) - setup) / static_cast<double>(steps);
    state.counters["setup_cpu_s"] = setup;
    state.counters["cpu_s_per_1000_steps"] = per_step * 1000.0;
}

}  // namespace

BENCHMARK(bench_adaround_4096)->Args({20, 32})->Unit(benchmark::kSecond)->Iterations(1);
