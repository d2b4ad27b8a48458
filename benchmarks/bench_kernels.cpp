// Throughput of lowbit's SIMD kernels (lowbit::kernels, compiled for this machine's best ISA)
// and how close each one gets to the memory system. Every kernel is reported as a fraction
// of a "stream" loop with the same memory traffic (bytes read and written per element):
//
//   frac_of_stream = time of the stream loop / time of the kernel   (same bytes, same buffers)
//
// 1.0 means the kernel is as fast as a simple loop moving its bytes can be. The stream loops,
// and how frac_of_stream is measured (right around each kernel's timed loop, on the kernel's
// own buffers), are in stream.hpp, shared with bench_observers and bench_quant.
//
//   ./bench_kernels --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//       --benchmark_format=json --benchmark_out=kernels.json
//
// Sizes: 64Ki elements (256 KiB of f32: L2), 1Mi (4 MiB: L3), 16Mi (64 MiB: DRAM).
// Counters: items_per_second = elements / s; bytes_per_second = the bytes the operation
// moves (inputs read + outputs written; per-channel parameters excluded, per-group scales
// included) / s; frac_of_stream as above. Single thread, 64-byte aligned buffers (as
// torch's), N(0, 1) data. Rates use CPU time (Google Benchmark's default, the thread's CPU
// clock), which leaves out the time the process spends descheduled on a busy machine; the
// real_time column is there too.
//
// The stream/<shape>/<n> benchmarks report the stream loops' absolute rates on their own.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <new>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <lowbit/kernels.hpp>
#include <lowbit/lowbit.hpp>

#include "stream.hpp"

namespace {

using lowbit::span;

using namespace lowbit_bench;  // stream.hpp


// ---------------------------------------------------------------------------------------
// Buffers: 64-byte aligned; inputs generated once per (kind, size) and shared.

template <class T>
struct aligned_allocator {
    using value_type = T;
    aligned_allocator() = default;
    template <class U>
    aligned_allocator(const aligned_allocator<U>&) noexcept {}  // NOLINT
    T* allocate(std::size_t n) {
        void* p = std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64);
        if (p == nullptr) throw std::bad_alloc();
        return static_cast<T*>(p);
    }
    void deallocate(T* p, std::size_t) noexcept { std::free(p); }
    template <class U>
    bool operator==(const aligned_allocator<U>&) const noexcept { return true; }
    template <class U>
    bool operator!=(const aligned_allocator<U>&) const noexcept { return false; }
};
template <class T>
using buffer = std::vector<T, aligned_allocator<T>>;  // value-initialised, so every page is touched

// N(0, 1) floats: with scale 0.03 and s8, about 0.01% of them saturate.
const buffer<float>& normal_f32(std::size_t n, unsigned seed = 1) {
    static std::map<std::pair<std::size_t, unsigned>, buffer<float>> cache;
    buffer<float>& b = cache[{n, seed}];
    if (b.size() != n) {
        b.resize(n);
        std::mt19937 gen(seed);
        std::normal_distribution<float> d(0.0f, 1.0f);
        for (float& v : b) v = d(gen);
    }
    return b;
}

template <class T>
const buffer<T>& uniform_int(std::size_t n, std::int64_t lo, std::int64_t hi) {
    static std::map<std::pair<std::size_t, std::pair<std::int64_t, std::int64_t>>, buffer<T>> cache;
    buffer<T>& b = cache[{n, {lo, hi}}];
    if (b.size() != n) {
        b.resize(n);
        std::mt19937 gen(2);
        std::uniform_int_distribution<std::int64_t> d(lo, hi);
        for (T& v : b) v = static_cast<T>(d(gen));
    }
    return b;
}

// The stream benchmarks on their own: absolute limits per shape and size (the fastest
// variant; counter `work` says which).
void stream_benchmark(benchmark::State& state, const std::string& shape) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    const auto& dy = normal_f32(n, 7);
    const auto& m = uniform_int<std::uint8_t>(n, 0, 1);
    buffer<float> y(n);
    buffer<std::uint8_t> q(n);
    const std::map<std::string, std::pair<stream_loop, double>> loops = {
        {"r4w1", {r4w1(x.data(), q.data(), n), 5.0}},
        {"r4w0_5", {r4w0_5(x.data(), q.data(), n), 4.5}},
        {"r1w4", {r1w4(m.data(), y.data(), n), 5.0}},
        {"r4w4", {r4w4(x.data(), y.data(), n), 8.0}},
        {"r4w5", {r4w5(x.data(), y.data(), q.data(), n), 9.0}},
        {"r8w4", {r8w4(x.data(), dy.data(), y.data(), n), 12.0}},
        {"r5w4", {r5w4(m.data(), dy.data(), y.data(), n), 9.0}},
        {"r4w0", {r4w0(x.data(), n), 4.0}},
    };
    const auto& loop = loops.at(shape);
    run_stream_row(state, loop.first, loop.second);
}

// ---------------------------------------------------------------------------------------
// Kernel benchmarks: run_against_stream (stream.hpp) times `call` between two stream runs.

namespace lk = lowbit::kernels;

constexpr lowbit::qparams qp_s8{0.03f, 3};
constexpr lowbit::qparams qp_u8{0.03f, 131};
constexpr lowbit::qparams qp_s4{0.5f, 1};
constexpr std::size_t channels = 256;  // per-channel benchmarks: C
constexpr std::size_t group_k = 1024;  // per-group benchmark: weights [n / K, K], groups of 32 along K
constexpr std::size_t group_size = 32;

// Per-channel shape: axis 0 of [C, n / C] (weights, channel outermost) or axis 1 of
// [n / C, C] (channels-last activations: the parameter changes every element).
lowbit::shape channel_shape(std::size_t n, std::size_t axis) {
    return axis == 0 ? lowbit::shape{channels, n / channels} : lowbit::shape{n / channels, channels};
}

// One scale and zero-point per channel, in a plausible spread.
struct channel_params {
    std::vector<float> scales;
    std::vector<std::int32_t> zero_points;
    explicit channel_params(std::size_t count) : scales(count), zero_points(count) {
        for (std::size_t c = 0; c < count; ++c) {
            scales[c] = 0.02f + 0.0001f * static_cast<float>(c % 97);
            zero_points[c] = static_cast<std::int32_t>(c % 11) - 5;
        }
    }
    lowbit::qparams_view view() const { return {scales, zero_points}; }
};

// Per-tensor quantize f32 -> Format (s8, u8: one byte each; s4: packed two per byte).
template <class Format>
void quantize_per_tensor(benchmark::State& state, lowbit::qparams qp) {
    using storage = typename Format::storage_type;
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    const auto s = lowbit::scheme<Format>{};
    buffer<storage> q(Format::storage_size(n));
    const stream_loop stream = Format::is_packed ? r4w0_5(x.data(), q.data(), n) : r4w1(x.data(), q.data(), n);
    run_against_stream(state, stream, Format::is_packed ? 4.5 : 5.0, [&] {
        benchmark::DoNotOptimize(lk::quantize(s, qp, span<const float>(x), span<storage>(q)));
    });
}

void dequantize_s8(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    const auto& q = uniform_int<std::int8_t>(n, -128, 127);
    buffer<float> x(n);
    const auto s = lowbit::scheme<lowbit::s8>{};
    run_against_stream(state, r1w4(q.data(), x.data(), n), 5.0, [&] {
        benchmark::DoNotOptimize(lk::dequantize(s, qp_s8, span<const std::int8_t>(q), span<float>(x)));
    });
}

void fake_quantize_forward(benchmark::State& state, bool with_mask) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    buffer<float> y(n);
    buffer<std::uint8_t> mask(with_mask ? n : 0);
    const auto s = lowbit::scheme<lowbit::s8>{};
    const stream_loop stream = with_mask ? r4w5(x.data(), y.data(), mask.data(), n) : r4w4(x.data(), y.data(), n);
    run_against_stream(state, stream, with_mask ? 9.0 : 8.0, [&] {
        benchmark::DoNotOptimize(
            lk::fake_quantize(s, qp_s8, span<const float>(x), span<float>(y), span<std::uint8_t>(mask)));
    });
}

void fake_quantize_backward(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    const auto& dy = normal_f32(n, 7);
    buffer<float> dx(n);
    const auto s = lowbit::scheme<lowbit::s8>{};
    run_against_stream(state, r8w4(x.data(), dy.data(), dx.data(), n), 12.0, [&] {
        benchmark::DoNotOptimize(
            lk::fake_quantize_backward(s, qp_s8, span<const float>(x), span<const float>(dy), span<float>(dx)));
    });
}

void fake_quantize_backward_masked(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    const auto& mask = uniform_int<std::uint8_t>(n, 0, 1);
    const auto& dy = normal_f32(n, 7);
    buffer<float> dx(n);
    run_against_stream(state, r5w4(mask.data(), dy.data(), dx.data(), n), 9.0, [&] {
        benchmark::DoNotOptimize(
            lk::fake_quantize_backward_masked(span<const std::uint8_t>(mask), span<const float>(dy), span<float>(dx)));
    });
}

void quantize_per_channel(benchmark::State& state, std::size_t axis) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    const lowbit::shape shp = channel_shape(n, axis);
    const auto s = lowbit::scheme<lowbit::s8>{}.per_channel(axis);
    const channel_params p(channels);
    buffer<std::int8_t> q(n);
    run_against_stream(state, r4w1(x.data(), q.data(), n), 5.0, [&] {
        benchmark::DoNotOptimize(lk::quantize(s, shp, p.view(), span<const float>(x), span<std::int8_t>(q)));
    });
}

void fake_quantize_per_channel(benchmark::State& state, std::size_t axis, bool with_mask) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    const lowbit::shape shp = channel_shape(n, axis);
    const auto s = lowbit::scheme<lowbit::s8>{}.per_channel(axis);
    const channel_params p(channels);
    buffer<float> y(n);
    buffer<std::uint8_t> mask(with_mask ? n : 0);
    const stream_loop stream = with_mask ? r4w5(x.data(), y.data(), mask.data(), n) : r4w4(x.data(), y.data(), n);
    run_against_stream(state, stream, with_mask ? 9.0 : 8.0, [&] {
        benchmark::DoNotOptimize(
            lk::fake_quantize(s, shp, p.view(), span<const float>(x), span<float>(y), span<std::uint8_t>(mask)));
    });
}

void fake_quantize_backward_per_channel(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    const auto& dy = normal_f32(n, 7);
    const lowbit::shape shp = channel_shape(n, 0);
    const auto s = lowbit::scheme<lowbit::s8>{}.per_channel(0);
    const channel_params p(channels);
    buffer<float> dx(n);
    run_against_stream(state, r8w4(x.data(), dy.data(), dx.data(), n), 12.0, [&] {
        benchmark::DoNotOptimize(lk::fake_quantize_backward(s, shp, p.view(), span<const float>(x),
                                                            span<const float>(dy), span<float>(dx)));
    });
}

// Per-group symmetric s4: weights [n / K, K], one scale per 32 along K (the n / 32 scales
// are read too: 4 + 0.5 + 0.125 bytes per element; the stream moves 4 + 0.5).
void quantize_per_group_s4(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    const lowbit::shape shp{n / group_k, group_k};
    const auto s = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>{}.per_group(1, group_size);
    std::vector<float> scales(n / group_size);
    for (std::size_t g = 0; g < scales.size(); ++g) scales[g] = 0.3f + 0.01f * static_cast<float>(g % 13);
    const lowbit::qparams_view qp{scales, {}};
    buffer<std::uint8_t> q(lowbit::s4::storage_size(n));
    run_against_stream(state, r4w0_5(x.data(), q.data(), n), 4.625, [&] {
        benchmark::DoNotOptimize(lk::quantize(s, shp, qp, span<const float>(x), span<std::uint8_t>(q)));
    });
}

// Requantize int32 accumulators (|acc| <= 2^17, what a K ~ 1000 int8 GEMM gives) to s8, with
// a bias. per_channel = false: one multiplier for the tensor; true: [n / C, C] with one
// multiplier and bias per output channel (the GEMM epilogue layout).
void requantize_s32_s8(benchmark::State& state, lowbit::requant_rounding rounding, bool per_channel) {
    const std::size_t n = arg_n(state);
    const auto& acc = uniform_int<std::int32_t>(n, -(1 << 17), 1 << 17);
    const std::size_t count = per_channel ? channels : 1;
    std::vector<lowbit::quantized_multiplier> mult(count);
    std::vector<std::int32_t> bias(count);
    for (std::size_t c = 0; c < count; ++c) {
        mult[c] = lowbit::quantize_multiplier(0.0007 + 0.00001 * static_cast<double>(c)).value();
        bias[c] = static_cast<std::int32_t>(c * 37 % 1001) - 500;
    }
    const auto s = per_channel ? lowbit::scheme<lowbit::s8>{}.per_channel(1) : lowbit::scheme<lowbit::s8>{};
    const lowbit::shape shp = per_channel ? channel_shape(n, 1) : lowbit::shape{n};
    lowbit::requantize_params p;
    p.multipliers = mult;
    p.bias = bias;
    p.zero_point = -3;
    p.rounding = rounding;
    buffer<std::int8_t> out(n);
    run_against_stream(state, r4w1(acc.data(), out.data(), n), 5.0, [&] {
        benchmark::DoNotOptimize(lk::requantize(s, shp, p, span<const std::int32_t>(acc), span<std::int8_t>(out)));
    });
}

// Requantize with a float multiplier per tensor (XNNPACK / ONNX Runtime "fp32" style).
void requantize_s32_s8_float(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    const auto& acc = uniform_int<std::int32_t>(n, -(1 << 17), 1 << 17);
    const std::vector<float> mult = {0.0007f};
    const std::vector<std::int32_t> bias = {-123};
    const auto s = lowbit::scheme<lowbit::s8>{};
    lowbit::requantize_float_params p;
    p.multipliers = mult;
    p.bias = bias;
    p.zero_point = -3;
    buffer<std::int8_t> out(n);
    run_against_stream(state, r4w1(acc.data(), out.data(), n), 5.0, [&] {
        benchmark::DoNotOptimize(
            lk::requantize(s, lowbit::shape{n}, p, span<const std::int32_t>(acc), span<std::int8_t>(out)));
    });
}

void min_max_f32(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    run_against_stream(state, r4w0(x.data(), n), 4.0,
                       [&] { benchmark::DoNotOptimize(lk::min_max(span<const float>(x))); });
}

// Per-channel min / max (PerChannelMinMaxObserver): axis 0 of [C, n / C] or axis 1 of [n / C, C].
void min_max_f32_per_channel(benchmark::State& state, std::size_t axis) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    const lowbit::shape shp = channel_shape(n, axis);
    std::vector<float> mins(channels), maxs(channels);
    run_against_stream(state, r4w0(x.data(), n), 4.0, [&] {
        benchmark::DoNotOptimize(lk::min_max(shp, axis, span<const float>(x), span<float>(mins), span<float>(maxs)));
    });
}

// torch.HistogramObserver's default: 2048 bins.
void histogram_f32(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    std::vector<std::uint64_t> bins(2048);
    run_against_stream(state, r4w0(x.data(), n), 4.0, [&] {
        benchmark::DoNotOptimize(lk::histogram(span<const float>(x), -5.0f, 5.0f, span<std::uint64_t>(bins)));
    });
}

// The scalar reference (the spec), for comparison.
void ref_quantize_s8(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    const auto s = lowbit::scheme<lowbit::s8>{};
    buffer<std::int8_t> q(n);
    run_against_stream(state, r4w1(x.data(), q.data(), n), 5.0, [&] {
        benchmark::DoNotOptimize(lowbit::ref::quantize(s, qp_s8, span<const float>(x), span<std::int8_t>(q)));
    });
}

void ref_fake_quantize(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    const auto s = lowbit::scheme<lowbit::s8>{};
    buffer<float> y(n);
    run_against_stream(state, r4w4(x.data(), y.data(), n), 8.0, [&] {
        benchmark::DoNotOptimize(lowbit::ref::fake_quantize(s, qp_s8, span<const float>(x), span<float>(y)));
    });
}

// ---------------------------------------------------------------------------------------

std::vector<entry> benchmark_list() {
    using lowbit::requant_rounding;
    using S = benchmark::State;
    std::vector<entry> list;
    for (const char* shape : {"r4w1", "r4w0_5", "r1w4", "r4w4", "r4w5", "r8w4", "r5w4", "r4w0"}) {
        const std::string sh = shape;
        list.push_back({"stream/" + sh, [sh](S& st) { stream_benchmark(st, sh); }});
    }
    const std::vector<entry> kernels = {
        {"quantize_f32_s8", [](S& st) { quantize_per_tensor<lowbit::s8>(st, qp_s8); }},
        {"quantize_f32_u8", [](S& st) { quantize_per_tensor<lowbit::u8>(st, qp_u8); }},
        {"quantize_f32_s4", [](S& st) { quantize_per_tensor<lowbit::s4>(st, qp_s4); }},
        {"dequantize_s8_f32", dequantize_s8},
        {"fake_quantize_f32", [](S& st) { fake_quantize_forward(st, false); }},
        {"fake_quantize_f32_mask", [](S& st) { fake_quantize_forward(st, true); }},
        {"fake_quantize_backward_f32", fake_quantize_backward},
        {"fake_quantize_backward_masked_f32", fake_quantize_backward_masked},
        {"quantize_f32_s8_per_channel_outer", [](S& st) { quantize_per_channel(st, 0); }},
        {"quantize_f32_s8_per_channel_inner", [](S& st) { quantize_per_channel(st, 1); }},
        {"fake_quantize_f32_per_channel_outer", [](S& st) { fake_quantize_per_channel(st, 0, false); }},
        {"fake_quantize_f32_per_channel_inner", [](S& st) { fake_quantize_per_channel(st, 1, false); }},
        {"fake_quantize_f32_per_channel_outer_mask", [](S& st) { fake_quantize_per_channel(st, 0, true); }},
        {"fake_quantize_backward_f32_per_channel_outer", fake_quantize_backward_per_channel},
        {"quantize_f32_s4_per_group32", quantize_per_group_s4},
        {"requantize_s32_s8_double_rounding",
         [](S& st) { requantize_s32_s8(st, requant_rounding::double_rounding, false); }},
        {"requantize_s32_s8_single_rounding",
         [](S& st) { requantize_s32_s8(st, requant_rounding::single_rounding, false); }},
        {"requantize_s32_s8_per_channel_inner_double_rounding",
         [](S& st) { requantize_s32_s8(st, requant_rounding::double_rounding, true); }},
        {"requantize_s32_s8_float", requantize_s32_s8_float},
        {"min_max_f32", min_max_f32},
        {"min_max_f32_per_channel_outer", [](S& st) { min_max_f32_per_channel(st, 0); }},
        {"min_max_f32_per_channel_inner", [](S& st) { min_max_f32_per_channel(st, 1); }},
        {"histogram_f32_2048", histogram_f32},
        {"ref/quantize_f32_s8", ref_quantize_s8},
        {"ref/fake_quantize_f32", ref_fake_quantize},
        // tflite profile (x / scale, half away from zero), per tensor, s8
        {"quantize_f32_s8_tflite",
         [](S& st) {
             const std::size_t n = arg_n(st);
             const auto& x = normal_f32(n);
             const auto s = lowbit::scheme<lowbit::s8>{}.with_profile(lowbit::profile::tflite);
             buffer<std::int8_t> q(n);
             run_against_stream(st, r4w1(x.data(), q.data(), n), 5.0, [&] {
                 benchmark::DoNotOptimize(lk::quantize(s, qp_s8, span<const float>(x), span<std::int8_t>(q)));
             });
         }},
        {"fake_quantize_f32_tflite",
         [](S& st) {
             const std::size_t n = arg_n(st);
             const auto& x = normal_f32(n);
             const auto s = lowbit::scheme<lowbit::s8>{}.with_profile(lowbit::profile::tflite);
             buffer<float> y(n);
             run_against_stream(st, r4w4(x.data(), y.data(), n), 8.0, [&] {
                 benchmark::DoNotOptimize(lk::fake_quantize(s, qp_s8, span<const float>(x), span<float>(y)));
             });
         }},
        {"fake_quantize_backward_f32_tflite",
         [](S& st) {
             const std::size_t n = arg_n(st);
             const auto& x = normal_f32(n);
             const auto& dy = normal_f32(n, 7);
             const auto s = lowbit::scheme<lowbit::s8>{}.with_profile(lowbit::profile::tflite);
             buffer<float> dx(n);
             run_against_stream(st, r8w4(x.data(), dy.data(), dx.data(), n), 12.0, [&] {
                 benchmark::DoNotOptimize(lk::fake_quantize_backward(s, qp_s8, span<const float>(x),
                                                                     span<const float>(dy), span<float>(dx)));
             });
         }},
    };
    list.insert(list.end(), kernels.begin(), kernels.end());
    return list;
}

}  // namespace

int main(int argc, char** argv) { return lowbit_bench::benchmark_main(argc, argv, benchmark_list); }
