// benchmarks/stream.hpp: the memory-stream baseline of bench_kernels, bench_observers and
// bench_quant, in one place. Each of their rows is also reported as a fraction of a "stream"
// loop with the same memory traffic (bytes read and written per element):
//
//   frac_of_stream = time of the stream loop / time of the operation   (same bytes, same buffers)
//
// 1.0 means the operation is as fast as a simple loop moving its bytes can be; ~0.5 means it
// spends as long computing as the memory system needs to feed it. It can exceed 1 a little
// (the stream loop is a compiler-vectorised loop, not a hand-tuned copy).
//
// How frac_of_stream is measured: the machines are shared, and the memory bandwidth a
// core gets drifts by tens of percent within minutes, so the stream loop is not timed once
// at start-up but right around each operation's measurement, on the operation's own buffers:
// a quarter as many stream iterations just before and just after Google Benchmark's timed
// loop, bracketing it, all on the thread's CPU clock (run_against_stream). Which variant of
// the stream loop is used (see "Stream loops" below) is decided once per shape and size
// (best_variant). The stream/<shape>/<n> rows report the same loops' absolute rates on their
// own (run_stream_row).
//
// Also the programs' common frame: the sizes, a row's entry, and main (benchmark_main).
// Everything here is for one benchmark program per translation unit: functions are inline,
// best_variant's choices are one table per process.
#ifndef LOWBIT_BENCHMARKS_STREAM_HPP
#define LOWBIT_BENCHMARKS_STREAM_HPP

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include <time.h>  // clock_gettime(CLOCK_THREAD_CPUTIME_ID), POSIX

namespace lowbit_bench {

// Sizes of the sized rows (elements, multiples of 64): 64Ki (256 KiB of f32: L2), 1Mi
// (4 MiB: L3), 16Mi (64 MiB: DRAM).
inline constexpr std::int64_t sizes[] = {std::int64_t(1) << 16, std::int64_t(1) << 20, std::int64_t(1) << 24};

// The benchmark's size argument (elements).
inline std::size_t arg_n(const benchmark::State& state) { return static_cast<std::size_t>(state.range(0)); }

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

inline constexpr std::size_t stream_block = 64;
inline constexpr int stream_work[] = {0, 2, 4, 8};
inline constexpr std::size_t stream_variants = sizeof(stream_work) / sizeof(stream_work[0]);

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
// reductions (min/max, histogram, observers): 4 in, nothing out.
LOWBIT_BENCH_STREAM std::uint32_t stream_r4w0(const u32a* __restrict in, std::size_t blocks) {
    std::uint32_t acc = 0;
    for (std::size_t i = 0; i < blocks * stream_block; ++i) acc |= mix<Work>(in[i]);
    return acc;
}

#undef LOWBIT_BENCH_STREAM

// One stream shape bound to a benchmark's buffers (viewed as bytes; n a multiple of 64),
// with its variants run[v] (Work = stream_work[v]).
struct stream_loop {
    std::string key;  // "<shape>/<n>": best_variant's choice is kept per key
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

// The single-loop shapes on a benchmark's buffers, n elements (a multiple of 64).
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

// ---------------------------------------------------------------------------------------
// Timing.

// The calling thread's CPU time, the clock Google Benchmark's cpu_time uses.
inline double thread_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Thread CPU seconds of `reps` calls of run.
inline double seconds_of(const std::function<void()>& run, std::int64_t reps) {
    const double t0 = thread_seconds();
    for (std::int64_t i = 0; i < reps; ++i) {
        run();
        benchmark::ClobberMemory();
    }
    return thread_seconds() - t0;
}

// The fastest variant of a (shape, size), chosen once per process: 3 interleaved rounds of
// ~10 ms per variant, the best time of each.
inline std::size_t best_variant(const stream_loop& s) {
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

// Counters items_per_second (state.range(0) elements per iteration) and bytes_per_second
// (bytes_per_element of them).
inline void set_rates(benchmark::State& state, double bytes_per_element) {
    const double elements = static_cast<double>(state.iterations()) * static_cast<double>(state.range(0));
    state.SetItemsProcessed(static_cast<std::int64_t>(elements));
    state.SetBytesProcessed(static_cast<std::int64_t>(elements * bytes_per_element));
}

// A stream row on its own: the absolute limit of a shape and size (the fastest variant;
// counter `work` says which), moving bytes_per_element bytes per element.
inline void run_stream_row(benchmark::State& state, const stream_loop& loop, double bytes_per_element) {
    const std::size_t v = best_variant(loop);
    const std::function<void()>& run = loop.run[v];
    for (auto _ : state) {
        run();
        benchmark::ClobberMemory();
    }
    set_rates(state, bytes_per_element);
    state.counters["work"] = stream_work[v];
}

// An operation's row. `call` runs the operation once; it is called once untimed first (an
// exception, e.g. a lowbit::error, becomes a skipped benchmark carrying its message). Then:
// stream loop, timed loop of `call`, stream loop (see the file comment); counters as
// set_rates with bytes_per_element, and frac_of_stream.
template <class Call>
void run_against_stream(benchmark::State& state, const stream_loop& stream, double bytes_per_element, Call call) {
    try {
        call();
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
        return;
    }
    const std::function<void()>& run_stream = stream.run[best_variant(stream)];
    const std::int64_t reps = std::max<std::int64_t>(1, static_cast<std::int64_t>(state.max_iterations) / 4);
    run_stream();  // warm: the operation's last pass may have left other lines in cache
    const double before = seconds_of(run_stream, reps);
    call();
    const double t0 = thread_seconds();
    for (auto _ : state) {
        call();
        benchmark::ClobberMemory();
    }
    const double timed = thread_seconds() - t0;
    const double after = seconds_of(run_stream, reps);
    set_rates(state, bytes_per_element);
    const double stream_per_iter = (before + after) / (2.0 * static_cast<double>(reps));
    const double op_per_iter = timed / static_cast<double>(state.iterations());
    state.counters["frac_of_stream"] = stream_per_iter / op_per_iter;
}

// ---------------------------------------------------------------------------------------
// The programs' main.

// One benchmark row: registered as name/<n> for every n in sizes, or as name alone.
struct entry {
    std::string name;
    std::function<void(benchmark::State&)> fn;
    bool sized = true;
};

// Google Benchmark's main over list()'s rows (times in microseconds); 1 on an unknown flag.
inline int benchmark_main(int argc, char** argv, std::vector<entry> (*list)()) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    for (const entry& e : list()) {
        benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(e.name.c_str(), e.fn);
        if (e.sized)
            for (const std::int64_t n : sizes) b->Arg(n);
        b->Unit(benchmark::kMicrosecond);
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

}  // namespace lowbit_bench

#endif  // LOWBIT_BENCHMARKS_STREAM_HPP
