// GPTQ on the benchmark layer: W 4096 x 4096, 512 calibration rows, s4 symmetric per
// output channel, block 128, single thread. Three timings: the Hessian X^T X alone, GPTQ from
// a ready Hessian (damped Cholesky, inverse factor, column loop with lazy block updates), and
// the whole call from activations. Iterations(1): one run is several seconds.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include <lowbit/ptq/gptq.hpp>

namespace {

constexpr std::size_t bench_gptq_n = 4096, bench_gptq_k = 4096, bench_gptq_rows = 512;

struct bench_gptq_data {
    std::vector<float> w, x;
    std::vector<double> h;
    bench_gptq_data() : w(bench_gptq_n * bench_gptq_k), x(bench_gptq_rows * bench_gptq_k) {
        std::mt19937 e(42);
        const auto uniform = [&] { return static_cast<float>(e() >> 8) * (1.0f / 16777216.0f) - 0.5f; };
        for (float& v : w) v = 0.1f * uniform();
        // a shared component makes the inputs correlated, as real activations are
        std::vector<float> common(bench_gptq_rows);
        for (float& v : common) v = uniform();
        for (std::size_t r = 0; r < bench_gptq_rows; ++r)
            for (std::size_t c = 0; c < bench_gptq_k; ++c) x[r * bench_gptq_k + c] = common[r] + uniform();
        h.assign(bench_gptq_k * bench_gptq_k, 0.0);
        (void)lowbit::ptq::gptq_accumulate_hessian(bench_gptq_rows, bench_gptq_k, x, h);
    }
};

const bench_gptq_data& bench_gptq_inputs() {
    static const bench_gptq_data d;
    return d;
}

using bench_gptq_scheme = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>;

void BM_gptq_hessian_4096x512(benchmark::State& state) {
    const bench_gptq_data& d = bench_gptq_inputs();
    std::vector<double> h(bench_gptq_k * bench_gptq_k);
    for (auto _ : state) {
        std::fill(h.begin(), h.end(), 0.0);
        (void)lowbit::ptq::gptq_accumulate_hessian(bench_gptq_rows, bench_gptq_k, d.x, h);
        benchmark::DoNotOptimize(h.data());
    }
    // K^2 / 2 * rows multiply-adds, 2 flops each
    state.counters["GFLOP/s"] = benchmark::Counter(double(bench_gptq_k) * double(bench_gptq_k) * double(bench_gptq_rows) / 1e9,
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

void BM_gptq_from_hessian_4096_s4_channel(benchmark::State& state) {
    const bench_gptq_data& d = bench_gptq_inputs();
    const auto s = bench_gptq_scheme{}.per_channel(0);
    lowbit::ptq::gptq_result<bench_gptq_scheme> r;
    for (auto _ : state) {
        (void)lowbit::ptq::gptq_from_hessian(s, bench_gptq_n, bench_gptq_k, d.w, d.h, r);
        benchmark::DoNotOptimize(r.weights.data());
    }
    state.counters["fell_back"] = r.report.fell_back_to_rtn ? 1 : 0;
    state.counters["attempts"] = r.report.attempts;
}

void BM_gptq_4096_s4_channel(benchmark::State& state) {
    const bench_gptq_data& d = bench_gptq_inputs();
    const auto s = bench_gptq_scheme{}.per_channel(0);
    lowbit::ptq::gptq_result<bench_gptq_scheme> r;
    for (auto _ : state) {
        (void)lowbit::ptq::gptq(s, bench_gptq_n, bench_gptq_k, d.w, bench_gptq_rows, d.x, r);
        benchmark::DoNotOptimize(r.weights.data());
    }
}

}  // namespace

BENCHMARK(BM_gptq_hessian_4096x512)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_gptq_from_hessian_4096_s4_channel)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_gptq_4096_s4_channel)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
