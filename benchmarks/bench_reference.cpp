// Throughput of the scalar reference kernels, next to the memory-stream loop of the same
// shape (read 4 bytes, write 1 byte per element) measured in the same run. The reference
// is the spec, not the fast path (the SIMD kernels are); this records where it stands.
// Run: ./bench_reference --benchmark_format=json   (items_per_second = elements / s)
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include <lowbit/lowbit.hpp>

namespace {

std::vector<float> make_input(std::size_t n) {
    std::mt19937 gen(1);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> x(n);
    for (float& v : x) v = d(gen);
    return x;
}

// Baseline: the cheapest loop with quantize's memory traffic (f32 in, one byte out).
void stream_f32_to_u8(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const std::vector<float> x = make_input(n);
    std::vector<std::int8_t> out(n);
    for (auto _ : state) {
        for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::int8_t>(x[i]);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void ref_quantize_f32_s8(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const std::vector<float> x = make_input(n);
    std::vector<std::int8_t> q(n);
    const auto s = lowbit::scheme<lowbit::s8>{};
    const lowbit::qparams qp{0.03f, 3};
    for (auto _ : state) {
        benchmark::DoNotOptimize(lowbit::ref::quantize(s, qp, x, q));
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void ref_fake_quantize_f32(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const std::vector<float> x = make_input(n);
    std::vector<float> y(n);
    const auto s = lowbit::scheme<lowbit::s8>{};
    const lowbit::qparams qp{0.03f, 3};
    for (auto _ : state) {
        benchmark::DoNotOptimize(lowbit::ref::fake_quantize(s, qp, x, y));
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

}  // namespace

BENCHMARK(stream_f32_to_u8)->Arg(4096)->Arg(1 << 20);
BENCHMARK(ref_quantize_f32_s8)->Arg(4096)->Arg(1 << 20);
BENCHMARK(ref_fake_quantize_f32)->Arg(4096)->Arg(1 << 20);
BENCHMARK_MAIN();
