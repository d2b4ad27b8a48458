// Throughput of lowbit's SIMD kernels (lowbit::kernels, compiled for this machine's best ISA)
// and how close each one gets to the memory system. Every kernel is reported as a fraction
// of a "stream" loop with the same memory traffic (bytes read and written per element):
//
//   frac_of_stream = time of the stream loop / time of the kernel   (same bytes, same buffers)
//
// 1.0 means the kernel is as fast as a simple loop moving its bytes can be; ~0.5 means it
// spends as long computing as the memory system needs to feed it. It can exceed 1 a little
// (the stream loop is a compiler-vectorised loop, not a hand-tuned copy).
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
// How frac_of_stream is measured: the machines are shared, and the memory bandwidth a
// core gets drifts by tens of percent within minutes, so the stream loop is not timed once
// at start-up but right around each kernel measurement, on the kernel's own buffers: a
// quarter as many stream iterations just before and just after Google Benchmark's timed
// loop, bracketing it, all on the thread's CPU clock. Which variant of the stream loop is
// used (see "Stream loops" below) is decided once per shape and size. The
// stream/<shape>/<n> benchmarks report the same loops' absolute rates on their own.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <new>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <time.h>  // clock_gettime(CLOCK_THREAD_CPUTIME_ID), POSIX

#include <lowbit/kernels.hpp>
#include <lowbit/lowbit.hpp>

namespace {

using lowbit::span;

constexpr std::int64_t sizes[] = {std::int64_t(1) << 16, std::int64_t(1) << 20, std::int64_t(1) << 24};

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

std::size_t arg_n(const benchmark::State& state) { return static_cast<std::size_t>(state.range(0)); }

// ---------------------------------------------------------------------------------------
// Stream loops: the plainest loop with an operation's memory traffic, named by shape
// "r<bytes read>w<bytes written>" per element. They move the bytes as integers through
// may_alias pointers (so they can run on a kernel's float / int8 buffers), use __restrict so
// no run-time alias check is needed, and loop to a count the compiler can see is a
// multiple of 64 (every size here is), so GCC's -O2 "very cheap" vectoriser takes each loop
// whole, without a scalar epilogue. Checked with -fopt-info-vec-optimized (every one "loop
// vectorized using 64 byte vectors", the nibble one 32) and objdump: r4w1 with Work = 0 is
// 4 zmm loads + vpsrld + 3 vpermt2w/b + one 64-byte store per 64 elements.
//
// Work = 0 is the pure copy-like loop. It is the fastest in L2, but not from L3 or DRAM: on
// the Zen 4 machines this was written on, a loop that issues loads and stores flat out got
// 15 - 35% less bandwidth there than the same loop with a few ALU operations per element
// (r4w1 at 16Mi: 3.15 Gelem/s plain, 3.97 with Work = 2; r4w4 at 1Mi: 8.6 vs 11.5), and
// real kernels, which compute between their loads, beat the plain loop by as much. So every
// shape comes with Work = 0, 2, 4, 8 steps of a cheap integer mix per element, and the
// fastest variant for each (shape, size), picked once per process by a short timing, is
// the stream figure.

using u32a = std::uint32_t __attribute__((may_alias));
using u8a = std::uint8_t __attribute__((may_alias));

constexpr std::size_t stream_block = 64;
constexpr int stream_work[] = {0, 2, 4, 8};
constexpr std::size_t stream_variants = sizeof(stream_work) / sizeof(stream_work[0]);

// Work steps of 2 dependent vector operations each (shift-xor, add). Recursion, not a loop:
// an inner loop left in a loop body (two of them in r4w0_5) stops -O2's vectoriser.
template <int Work>
inline std::uint32_t mix(std::uint32_t v) {
    if constexpr (Work == 0) {
        return v;
    } else {
        return mix<Work - 1>((v ^ (v >> 5)) + 0x9E3779B9u);
    }
}

#define LOWBIT_BENCH_STREAM template <int Work> __attribute__((noinline))

// quantize, per-channel quantize, requantize s32 -> s8: 4 bytes in, 1 byte out.
LOWBIT_BENCH_STREAM void stream_r4w1(const u32a* __restrict in, u8a* __restrict out, std::size_t blocks) {
    for (std::size_t i = 0; i < blocks * stream_block; ++i) out[i] = static_cast<std::uint8_t>(mix<Work>(in[i]) >> 24);
}
// 4-bit quantize: 4 bytes in, half a byte out (elements j and j + 32 of a block of 64 share
// a byte; a kernel pairs neighbours instead, which moves the same bytes).
LOWBIT_BENCH_STREAM void stream_r4w0_5(const u32a* __restrict in, u8a* __restrict out, std::size_t blocks) {
    for (std::size_t b = 0; b < blocks; ++b) {
        const u32a* x = in + b * stream_block;
        u8a* o = out + b * (stream_block / 2);
        for (std::size_t j = 0; j < stream_block / 2; ++j)
            o[j] = static_cast<std::uint8_t>((mix<Work>(x[j]) >> 28) | ((mix<Work>(x[j + stream_block / 2]) >> 24) & 0xF0u));
    }
}
// dequantize: 1 byte in, 4 bytes out.
LOWBIT_BENCH_STREAM void stream_r1w4(const u8a* __restrict in, u32a* __restrict out, std::size_t blocks) {
    for (std::size_t i = 0; i < blocks * stream_block; ++i) out[i] = mix<Work>(static_cast<std::uint32_t>(in[i]) << 23);
}
// fake-quantize forward: 4 in, 4 out.
LOWBIT_BENCH_STREAM void stream_r4w4(const u32a* __restrict in, u32a* __restrict out, std::size_t blocks) {
    for (std::size_t i = 0; i < blocks * stream_block; ++i) out[i] = mix<Work>(in[i]) ^ 0x80000000u;
}
// fake-quantize forward that also writes the mask: 4 in, 4 + 1 out.
LOWBIT_BENCH_STREAM void stream_r4w5(const u32a* __restrict in, u32a* __restrict out, u8a* __restrict mask,
                                     std::size_t blocks) {
    for (std::size_t i = 0; i < blocks * stream_block; ++i) {
        const std::uint32_t v = mix<Work>(in[i]);
        out[i] = v ^ 0x80000000u;
        mask[i] = static_cast<std::uint8_t>(v >> 31);
    }
}
// fake-quantize backward (x, dy -> dx): 4 + 4 in, 4 out.
LOWBIT_BENCH_STREAM void stream_r8w4(const u32a* __restrict a, const u32a* __restrict b, u32a* __restrict out,
                                     std::size_t blocks) {
    for (std::size_t i = 0; i < blocks * stream_block; ++i) out[i] = mix<Work>(a[i]) & b[i];
}
// backward from a saved mask (mask, dy -> dx): 1 + 4 in, 4 out.
LOWBIT_BENCH_STREAM void stream_r5w4(const u8a* __restrict m, const u32a* __restrict b, u32a* __restrict out,
                                     std::size_t blocks) {
    for (std::size_t i = 0; i < blocks * stream_block; ++i)
        out[i] = mix<Work>(b[i]) & (0u - static_cast<std::uint32_t>(m[i]));
}
// reductions (min/max, histogram): 4 in, nothing out.
LOWBIT_BENCH_STREAM std::uint32_t stream_r4w0(const u32a* __restrict in, std::size_t blocks) {
    std::uint32_t acc = 0;
    for (std::size_t i = 0; i < blocks * stream_block; ++i) acc |= mix<Work>(in[i]);
    return acc;
}

#undef LOWBIT_BENCH_STREAM

// One stream shape bound to a benchmark's buffers (viewed as bytes; n a multiple of 64),
// with its variants run[v] (Work = stream_work[v]).
struct stream_loop {
    std::string key;  // "<shape>/<n>"
    std::function<void()> run[stream_variants];
};

// f(std::integral_constant<int, Work>) runs the loop once.
template <class F>
stream_loop bind_stream(const char* shape, std::size_t n, F f) {
    stream_loop s;
    s.key = std::string(shape) + "/" + std::to_string(n);
    s.run[0] = [f] { f(std::integral_constant<int, stream_work[0]>{}); };
    s.run[1] = [f] { f(std::integral_constant<int, stream_work[1]>{}); };
    s.run[2] = [f] { f(std::integral_constant<int, stream_work[2]>{}); };
    s.run[3] = [f] { f(std::integral_constant<int, stream_work[3]>{}); };
    return s;
}
static_assert(stream_variants == 4, "bind_stream binds four variants");

template <class In, class Out>
stream_loop r4w1(const In* in, Out* out, std::size_t n) {
    return bind_stream("r4w1", n, [=](auto w) {
        stream_r4w1<decltype(w)::value>(reinterpret_cast<const u32a*>(in), reinterpret_cast<u8a*>(out), n / stream_block);
    });
}
template <class In, class Out>
stream_loop r4w0_5(const In* in, Out* out, std::size_t n) {
    return bind_stream("r4w0_5", n, [=](auto w) {
        stream_r4w0_5<decltype(w)::value>(reinterpret_cast<const u32a*>(in), reinterpret_cast<u8a*>(out),
                                          n / stream_block);
    });
}
template <class In, class Out>
stream_loop r1w4(const In* in, Out* out, std::size_t n) {
    return bind_stream("r1w4", n, [=](auto w) {
        stream_r1w4<decltype(w)::value>(reinterpret_cast<const u8a*>(in), reinterpret_cast<u32a*>(out), n / stream_block);
    });
}
template <class In, class Out>
stream_loop r4w4(const In* in, Out* out, std::size_t n) {
    return bind_stream("r4w4", n, [=](auto w) {
        stream_r4w4<decltype(w)::value>(reinterpret_cast<const u32a*>(in), reinterpret_cast<u32a*>(out), n / stream_block);
    });
}
template <class In, class Out, class Mask>
stream_loop r4w5(const In* in, Out* out, Mask* mask, std::size_t n) {
    return bind_stream("r4w5", n, [=](auto w) {
        stream_r4w5<decltype(w)::value>(reinterpret_cast<const u32a*>(in), reinterpret_cast<u32a*>(out),
                                        reinterpret_cast<u8a*>(mask), n / stream_block);
    });
}
template <class A, class B, class Out>
stream_loop r8w4(const A* a, const B* b, Out* out, std::size_t n) {
    return bind_stream("r8w4", n, [=](auto w) {
        stream_r8w4<decltype(w)::value>(reinterpret_cast<const u32a*>(a), reinterpret_cast<const u32a*>(b),
                                        reinterpret_cast<u32a*>(out), n / stream_block);
    });
}
template <class M, class B, class Out>
stream_loop r5w4(const M* m, const B* b, Out* out, std::size_t n) {
    return bind_stream("r5w4", n, [=](auto w) {
        stream_r5w4<decltype(w)::value>(reinterpret_cast<const u8a*>(m), reinterpret_cast<const u32a*>(b),
                                        reinterpret_cast<u32a*>(out), n / stream_block);
    });
}
template <class In>
stream_loop r4w0(const In* in, std::size_t n) {
    return bind_stream("r4w0", n, [=](auto w) {
        benchmark::DoNotOptimize(stream_r4w0<decltype(w)::value>(reinterpret_cast<const u32a*>(in), n / stream_block));
    });
}

// The calling thread's CPU time, the clock Google Benchmark's cpu_time uses.
double thread_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double seconds_of(const std::function<void()>& run, std::int64_t reps) {
    const double t0 = thread_seconds();
    for (std::int64_t i = 0; i < reps; ++i) {
        run();
        benchmark::ClobberMemory();
    }
    return thread_seconds() - t0;
}

// The fastest variant of a (shape, size), chosen once per process: 3 interleaved rounds of
// ~10 ms per variant, the best time of each.
std::size_t best_variant(const stream_loop& s) {
    static std::map<std::string, std::size_t> chosen;
    const auto it = chosen.find(s.key);
    if (it != chosen.end()) return it->second;
    s.run[0]();  // warm
    const double once = std::max(seconds_of(s.run[0], 1), 1e-7);
    const auto reps = static_cast<std::int64_t>(std::max(1.0, 0.01 / once));
    double best[stream_variants];
    std::fill(best, best + stream_variants, 1e30);
    for (int round = 0; round < 3; ++round)
        for (std::size_t v = 0; v < stream_variants; ++v) best[v] = std::min(best[v], seconds_of(s.run[v], reps));
    const std::size_t v = static_cast<std::size_t>(std::min_element(best, best + stream_variants) - best);
    chosen[s.key] = v;
    return v;
}

void set_rates(benchmark::State& state, double bytes_per_element) {
    const double elements = static_cast<double>(state.iterations()) * static_cast<double>(state.range(0));
    state.SetItemsProcessed(static_cast<std::int64_t>(elements));
    state.SetBytesProcessed(static_cast<std::int64_t>(elements * bytes_per_element));
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
    const std::size_t v = best_variant(loop.first);
    const std::function<void()>& run = loop.first.run[v];
    for (auto _ : state) {
        run();
        benchmark::ClobberMemory();
    }
    set_rates(state, loop.second);
    state.counters["work"] = stream_work[v];
}

// ---------------------------------------------------------------------------------------
// Kernel benchmarks. `call` runs the operation once; it is called once untimed first (a
// lowbit::error becomes a skipped benchmark carrying its message). Then: stream loop,
// timed kernel loop, stream loop (see the file comment).

template <class Call>
void run_kernel(benchmark::State& state, const stream_loop& stream, double bytes_per_element, Call call) {
    try {
        call();
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
        return;
    }
    const std::function<void()>& run_stream = stream.run[best_variant(stream)];
    const std::int64_t reps = std::max<std::int64_t>(1, static_cast<std::int64_t>(state.max_iterations) / 4);
    run_stream();  // warm: the kernel's last pass may have left other lines in cache
    const double before = seconds_of(run_stream, reps);
    call();
    const double t0 = thread_seconds();
    for (auto _ : state) {
        call();
        benchmark::ClobberMemory();
    }
    const double kernel = thread_seconds() - t0;
    const double after = seconds_of(run_stream, reps);
    set_rates(state, bytes_per_element);
    const double stream_per_iter = (before + after) / (2.0 * static_cast<double>(reps));
    const double kernel_per_iter = kernel / static_cast<double>(state.iterations());
    state.counters["frac_of_stream"] = stream_per_iter / kernel_per_iter;
}

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
    run_kernel(state, stream, Format::is_packed ? 4.5 : 5.0, [&] {
        benchmark::DoNotOptimize(lk::quantize(s, qp, span<const float>(x), span<storage>(q)));
    });
}

void dequantize_s8(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    const auto& q = uniform_int<std::int8_t>(n, -128, 127);
    buffer<float> x(n);
    const auto s = lowbit::scheme<lowbit::s8>{};
    run_kernel(state, r1w4(q.data(), x.data(), n), 5.0, [&] {
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
    run_kernel(state, stream, with_mask ? 9.0 : 8.0, [&] {
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
    run_kernel(state, r8w4(x.data(), dy.data(), dx.data(), n), 12.0, [&] {
        benchmark::DoNotOptimize(
            lk::fake_quantize_backward(s, qp_s8, span<const float>(x), span<const float>(dy), span<float>(dx)));
    });
}

void fake_quantize_backward_masked(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    const auto& mask = uniform_int<std::uint8_t>(n, 0, 1);
    const auto& dy = normal_f32(n, 7);
    buffer<float> dx(n);
    run_kernel(state, r5w4(mask.data(), dy.data(), dx.data(), n), 9.0, [&] {
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
    run_kernel(state, r4w1(x.data(), q.data(), n), 5.0, [&] {
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
    run_kernel(state, stream, with_mask ? 9.0 : 8.0, [&] {
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
    run_kernel(state, r8w4(x.data(), dy.data(), dx.data(), n), 12.0, [&] {
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
    run_kernel(state, r4w0_5(x.data(), q.data(), n), 4.625, [&] {
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
    run_kernel(state, r4w1(acc.data(), out.data(), n), 5.0, [&] {
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
    run_kernel(state, r4w1(acc.data(), out.data(), n), 5.0, [&] {
        benchmark::DoNotOptimize(
            lk::requantize(s, lowbit::shape{n}, p, span<const std::int32_t>(acc), span<std::int8_t>(out)));
    });
}

void min_max_f32(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    run_kernel(state, r4w0(x.data(), n), 4.0, [&] { benchmark::DoNotOptimize(lk::min_max(span<const float>(x))); });
}

// Per-channel min / max (PerChannelMinMaxObserver): axis 0 of [C, n / C] or axis 1 of [n / C, C].
void min_max_f32_per_channel(benchmark::State& state, std::size_t axis) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    const lowbit::shape shp = channel_shape(n, axis);
    std::vector<float> mins(channels), maxs(channels);
    run_kernel(state, r4w0(x.data(), n), 4.0, [&] {
        benchmark::DoNotOptimize(lk::min_max(shp, axis, span<const float>(x), span<float>(mins), span<float>(maxs)));
    });
}

// torch.HistogramObserver's default: 2048 bins.
void histogram_f32(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    std::vector<std::uint64_t> bins(2048);
    run_kernel(state, r4w0(x.data(), n), 4.0, [&] {
        benchmark::DoNotOptimize(lk::histogram(span<const float>(x), -5.0f, 5.0f, span<std::uint64_t>(bins)));
    });
}

// The scalar reference (the spec), for comparison.
void ref_quantize_s8(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    const auto s = lowbit::scheme<lowbit::s8>{};
    buffer<std::int8_t> q(n);
    run_kernel(state, r4w1(x.data(), q.data(), n), 5.0, [&] {
        benchmark::DoNotOptimize(lowbit::ref::quantize(s, qp_s8, span<const float>(x), span<std::int8_t>(q)));
    });
}

void ref_fake_quantize(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    const auto& x = normal_f32(n);
    const auto s = lowbit::scheme<lowbit::s8>{};
    buffer<float> y(n);
    run_kernel(state, r4w4(x.data(), y.data(), n), 8.0, [&] {
        benchmark::DoNotOptimize(lowbit::ref::fake_quantize(s, qp_s8, span<const float>(x), span<float>(y)));
    });
}

// ---------------------------------------------------------------------------------------

struct entry {
    std::string name;
    std::function<void(benchmark::State&)> fn;
};

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
             run_kernel(st, r4w1(x.data(), q.data(), n), 5.0, [&] {
                 benchmark::DoNotOptimize(lk::quantize(s, qp_s8, span<const float>(x), span<std::int8_t>(q)));
             });
         }},
        {"fake_quantize_f32_tflite",
         [](S& st) {
             const std::size_t n = arg_n(st);
             const auto& x = normal_f32(n);
             const auto s = lowbit::scheme<lowbit::s8>{}.with_profile(lowbit::profile::tflite);
             buffer<float> y(n);
             run_kernel(st, r4w4(x.data(), y.data(), n), 8.0, [&] {
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
             run_kernel(st, r8w4(x.data(), dy.data(), dx.data(), n), 12.0, [&] {
                 benchmark::DoNotOptimize(lk::fake_quantize_backward(s, qp_s8, span<const float>(x),
                                                                     span<const float>(dy), span<float>(dx)));
             });
         }},
    };
    list.insert(list.end(), kernels.begin(), kernels.end());
    return list;
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    for (const entry& e : benchmark_list()) {
        benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(e.name.c_str(), e.fn);
        for (const std::int64_t n : sizes) b->Arg(n);
        b->Unit(benchmark::kMicrosecond);
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
