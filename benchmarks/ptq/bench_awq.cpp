// AWQ on the layer: 4096 x 4096 weights, 512 calibration rows, int4 (u4 affine, group
// 128), single thread. The scale search (20 grid points, each an RTN of W * s and the layer
// error over all 512 rows) and the clip search (10 ratios per group, output objective on at
// most 512 rows: AWQ's n_sample_token, so with 512 rows none are dropped) are timed together
// and apart. No main: linked with benchmark_main.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include <lowbit/ptq/awq.hpp>
#include <lowbit/ptq/clip_search.hpp>

namespace {

struct bench_awq_layer {
    std::size_t n = 4096, k = 4096, rows = 512;
    std::vector<float> w, x;
    bench_awq_layer() {
        std::mt19937 eng(42);
        const auto uni = [&] { return (static_cast<double>(eng()) + 0.5) / 4294967296.0 - 0.5; };
        std::vector<double> mag(k);
        for (std::size_t j = 0; j < k; ++j) mag[j] = (j % 97 == 0 ? 20.0 : 1.0) * (0.5 + uni());
        w.resize(n * k);
        for (float& v : w) v = static_cast<float>(0.1 * uni());
        x.resize(rows * k);
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t j = 0; j < k; ++j) x[r * k + j] = static_cast<float>(mag[j] * uni());
    }
};

const bench_awq_layer& bench_awq_data() {
    static const bench_awq_layer l;
    return l;
}

void bench_awq_search(benchmark::State& state, bool clip) {
    const bench_awq_layer& l = bench_awq_data();
    const auto s = lowbit::scheme<lowbit::u4>{}.per_group(1, 128);
    const std::size_t groups = l.n * l.k / 128;
    std::vector<float> in_s(l.k), ratios(groups), scales(groups);
    std::vector<std::int32_t> zps(groups);
    lowbit::ptq::awq_options opt;
    opt.clip = clip;
    lowbit::ptq::awq_report rep;
    for (auto _ : state) {
        rep = *lowbit::ptq::awq_search(s, l.n, l.k, l.rows, l.w, l.x, in_s, ratios, scales, zps, opt);
        benchmark::DoNotOptimize(scales.data());
    }
    state.counters["rtn_mse"] = rep.error_rtn;
    state.counters["final_mse"] = rep.error_final;
    state.counters["ratio"] = rep.ratio;
}

void bench_awq_scales_and_clip(benchmark::State& state) { bench_awq_search(state, true); }
void bench_awq_scales_only(benchmark::State& state) { bench_awq_search(state, false); }

void bench_awq_clip_only(benchmark::State& state) {
    const bench_awq_layer& l = bench_awq_data();
    const auto s = lowbit::scheme<lowbit::u4>{}.per_group(1, 128);
    const std::size_t groups = l.n * l.k / 128;
    std::vector<float> ratios(groups), scales(groups);
    std::vector<std::int32_t> zps(groups);
    lowbit::ptq::clip_search_options o;
    o.objective = state.range(0) == 0 ? lowbit::ptq::clip_objective::output : lowbit::ptq::clip_objective::weights;
    for (auto _ : state) {
        const auto rep = *lowbit::ptq::clip_search(s, l.n, l.k, l.rows, l.w, l.x, ratios, scales, zps, o);
        benchmark::DoNotOptimize(rep);
    }
}

}  // namespace

BENCHMARK(bench_awq_scales_and_clip)->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(bench_awq_scales_only)->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(bench_awq_clip_only)->Arg(0)->Arg(1)->Unit(benchmark::kSecond)->Iterations(1);
