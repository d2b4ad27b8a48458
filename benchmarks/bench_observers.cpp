// Throughput of lowbit's observers (observe() per batch, single thread) and the time of
// their qparams() searches, with the same memory-stream baseline as bench_kernels: every
// observe row is also reported as a fraction of a read-only stream over the same batch,
//
//   frac_of_stream = time of the r4w0 stream loop / time of observe()   (same buffer)
//
// measured right around the observer's timed loop (a quarter as many stream iterations just
// before and just after it), so both see the same cache state and the same moment's memory
// bandwidth. 1.0 = the observer is as fast as reading the batch once can be.
//
//   ./bench_observers --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//       --benchmark_format=json --benchmark_out=observers.json
//
// Rows (N(0, 1) float32 batches, 64-byte aligned, 64Ki / 1Mi / 16Mi elements):
//   <observer>/observe/<n>: the observer observes the same batch over and over (the steady
//       state: after the first batch the range no longer changes). Counters: items_per_second
//       (elements / s), frac_of_stream.
//       minmax                     minmax_observer<u8>                   (MinMaxObserver)
//       moving_average_minmax      moving_average_minmax_observer<u8>    (MovingAverageMinMaxObserver)
//       per_channel_minmax         per_channel_minmax_observer, [256, n / 256], axis 0
//                                  (PerChannelMinMaxObserver(ch_axis=0))
//       histogram                  histogram_observer<u8>, 2048 bins, corrected mode (default)
//       histogram_torch_1_13       the same in torch_1_13 mode (HistogramObserver's numerics)
//       exact_histogram            percentile_observer<s8 symmetric> (the exact-merge histogram
//                                  behind percentile / entropy / mse observers)
//   <observer>/qparams: qparams() of an observer that observed one 1Mi N(0, 1) batch
//       (histogram: the L2 search over 2048 bins, torch's calculate_qparams; percentile /
//       entropy / mse: their searches over a 2048-bin exact histogram). Time per call.
//
// Times and rates are CPU time (the thread's CPU clock, Google Benchmark's default).
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
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <time.h>  // clock_gettime(CLOCK_THREAD_CPUTIME_ID), POSIX

#include <lowbit/lowbit.hpp>
#include <lowbit/observers/entropy.hpp>
#include <lowbit/observers/histogram.hpp>
#include <lowbit/observers/minmax.hpp>
#include <lowbit/observers/mse.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>
#include <lowbit/observers/percentile.hpp>

namespace {

using lowbit::span;

constexpr std::int64_t sizes[] = {std::int64_t(1) << 16, std::int64_t(1) << 20, std::int64_t(1) << 24};
constexpr std::size_t channels = 256;            // per-channel rows: [256, n / 256], axis 0
constexpr std::size_t qparams_batch = 1u << 20;  // qparams rows: one batch of this size observed

// ---------------------------------------------------------------------------------------
// Buffers: 64-byte aligned N(0, 1) floats, generated once per size.

struct aligned_floats {
    float* p = nullptr;
    std::size_t n = 0;
    explicit aligned_floats(std::size_t count) : n(count) {
        p = static_cast<float*>(std::aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64));
        if (p == nullptr) throw std::bad_alloc();
    }
    aligned_floats(const aligned_floats&) = delete;
    aligned_floats& operator=(const aligned_floats&) = delete;
    ~aligned_floats() { std::free(p); }
};

const aligned_floats& normal_f32(std::size_t n) {
    static std::map<std::size_t, aligned_floats> cache;
    auto it = cache.find(n);
    if (it == cache.end()) {
        it = cache.emplace(std::piecewise_construct, std::forward_as_tuple(n), std::forward_as_tuple(n)).first;
        std::mt19937 gen(1);
        std::normal_distribution<float> d(0.0f, 1.0f);
        for (std::size_t i = 0; i < n; ++i) it->second.p[i] = d(gen);
    }
    return it->second;
}

// ---------------------------------------------------------------------------------------
// The read-only stream (bench_kernels' r4w0 shape): OR of every 32-bit word after Work steps
// of a cheap integer mix, in blocks of 64 so -O2's vectoriser takes the loop whole. As in
// bench_kernels, Work = 0, 2, 4, 8 are all built and the fastest for a size (picked once per
// process) is the stream figure: from L3 / DRAM a loop doing a little work per element gets
// more bandwidth than the bare one.

using u32a = std::uint32_t __attribute__((may_alias));
constexpr std::size_t stream_block = 64;
constexpr int stream_work[] = {0, 2, 4, 8};
constexpr std::size_t stream_variants = sizeof(stream_work) / sizeof(stream_work[0]);

template <int Work>
inline std::uint32_t mix(std::uint32_t v) {
    if constexpr (Work == 0) {
        return v;
    } else {
        return mix<Work - 1>((v ^ (v >> 5)) + 0x9E3779B9u);
    }
}

template <int Work>
__attribute__((noinline)) std::uint32_t stream_r4w0(const u32a* __restrict in, std::size_t blocks) {
    std::uint32_t acc = 0;
    for (std::size_t i = 0; i < blocks * stream_block; ++i) acc |= mix<Work>(in[i]);
    return acc;
}

struct stream_loop {
    std::size_t n = 0;
    std::function<void()> run[stream_variants];
};

stream_loop r4w0(const float* x, std::size_t n) {  // n: a multiple of 64
    stream_loop s;
    s.n = n;
    const auto* in = reinterpret_cast<const u32a*>(x);
    const std::size_t blocks = n / stream_block;
    s.run[0] = [=] { benchmark::DoNotOptimize(stream_r4w0<stream_work[0]>(in, blocks)); };
    s.run[1] = [=] { benchmark::DoNotOptimize(stream_r4w0<stream_work[1]>(in, blocks)); };
    s.run[2] = [=] { benchmark::DoNotOptimize(stream_r4w0<stream_work[2]>(in, blocks)); };
    s.run[3] = [=] { benchmark::DoNotOptimize(stream_r4w0<stream_work[3]>(in, blocks)); };
    return s;
}
static_assert(stream_variants == 4, "r4w0 binds four variants");

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

// The fastest variant for a size, chosen once per process: 3 interleaved rounds of ~10 ms
// per variant, the best time of each.
std::size_t best_variant(const stream_loop& s) {
    static std::map<std::size_t, std::size_t> chosen;
    const auto it = chosen.find(s.n);
    if (it != chosen.end()) return it->second;
    s.run[0]();
    const double once = std::max(seconds_of(s.run[0], 1), 1e-7);
    const auto reps = static_cast<std::int64_t>(std::max(1.0, 0.01 / once));
    double best[stream_variants];
    std::fill(best, best + stream_variants, 1e30);
    for (int round = 0; round < 3; ++round)
        for (std::size_t v = 0; v < stream_variants; ++v) best[v] = std::min(best[v], seconds_of(s.run[v], reps));
    const auto v = static_cast<std::size_t>(std::min_element(best, best + stream_variants) - best);
    chosen[s.n] = v;
    return v;
}

// stream/r4w0/<n>: the stream's absolute rate (counter `work`: the variant).
void stream_benchmark(benchmark::State& state) {
    const std::size_t n = static_cast<std::size_t>(state.range(0));
    const stream_loop s = r4w0(normal_f32(n).p, n);
    const std::size_t v = best_variant(s);
    for (auto _ : state) {
        s.run[v]();
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
    state.SetBytesProcessed(state.iterations() * state.range(0) * 4);
    state.counters["work"] = stream_work[v];
}

// A failed check throws lowbit::error (a std::invalid_argument); without exceptions the
// status comes back instead and is turned into one here.
template <class R>
void require_ok(const R& r) {
    if (!r.ok()) throw std::runtime_error("lowbit call failed");
}

// observe rows: `call` observes the batch once; stream, timed loop, stream (file comment).
template <class Call>
void run_observe(benchmark::State& state, const float* x, std::size_t n, Call call) {
    try {
        call();  // the first batch (sets the range), untimed
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
        return;
    }
    const stream_loop stream = r4w0(x, n);
    const std::function<void()>& run_stream = stream.run[best_variant(stream)];
    const std::int64_t reps = std::max<std::int64_t>(1, static_cast<std::int64_t>(state.max_iterations) / 4);
    run_stream();
    const double before = seconds_of(run_stream, reps);
    call();
    const double t0 = thread_seconds();
    for (auto _ : state) {
        call();
        benchmark::ClobberMemory();
    }
    const double timed = thread_seconds() - t0;
    const double after = seconds_of(run_stream, reps);
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n) * 4);
    const double stream_per_iter = (before + after) / (2.0 * static_cast<double>(reps));
    state.counters["frac_of_stream"] = stream_per_iter / (timed / static_cast<double>(state.iterations()));
}

using u8_affine = lowbit::scheme<lowbit::u8>;                                  // torch's observers' default
using s8_symmetric = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>;  // percentile / entropy / mse

template <class Observer>
void observe_per_tensor(benchmark::State& state, Observer obs) {
    const std::size_t n = static_cast<std::size_t>(state.range(0));
    const float* x = normal_f32(n).p;
    const span<const float> batch(x, n);
    run_observe(state, x, n, [&] { require_ok(obs.observe(batch)); });
}

void observe_per_channel(benchmark::State& state) {
    const std::size_t n = static_cast<std::size_t>(state.range(0));
    const float* x = normal_f32(n).p;
    const lowbit::shape shp{channels, n / channels};
    std::vector<float> buf(2 * channels);
    lowbit::per_channel_minmax_observer<u8_affine> obs(u8_affine{}.per_channel(0), channels,
                                                       span<float>(buf.data(), buf.size()));
    const span<const float> batch(x, n);
    run_observe(state, x, n, [&] { require_ok(obs.observe(shp, batch)); });
}

// qparams rows: the observer has seen one qparams_batch batch; qparams() is timed.
template <class Observer>
void qparams_time(benchmark::State& state, Observer obs) {
    try {
        require_ok(obs.observe(span<const float>(normal_f32(qparams_batch).p, qparams_batch)));
        require_ok(obs.qparams());
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
        return;
    }
    for (auto _ : state) benchmark::DoNotOptimize(obs.qparams());
}

struct entry {
    std::string name;
    std::function<void(benchmark::State&)> fn;
    bool sized;
};

std::vector<entry> benchmark_list() {
    using S = benchmark::State;
    using hist = lowbit::histogram_observer<u8_affine>;
    const auto torch_mode = lowbit::histogram_mode::torch_1_13;
    return {
        {"stream/r4w0", stream_benchmark, true},
        {"minmax/observe", [](S& st) { observe_per_tensor(st, lowbit::minmax_observer<u8_affine>{}); }, true},
        {"moving_average_minmax/observe",
         [](S& st) { observe_per_tensor(st, lowbit::moving_average_minmax_observer<u8_affine>{}); }, true},
        {"per_channel_minmax/observe", observe_per_channel, true},
        {"histogram/observe", [](S& st) { observe_per_tensor(st, hist{}); }, true},
        {"histogram_torch_1_13/observe", [=](S& st) { observe_per_tensor(st, hist(u8_affine{}, torch_mode)); }, true},
        {"exact_histogram/observe", [](S& st) { observe_per_tensor(st, lowbit::percentile_observer<s8_symmetric>{}); },
         true},
        {"histogram/qparams", [](S& st) { qparams_time(st, hist{}); }, false},
        {"histogram_torch_1_13/qparams", [=](S& st) { qparams_time(st, hist(u8_affine{}, torch_mode)); }, false},
        {"percentile/qparams", [](S& st) { qparams_time(st, lowbit::percentile_observer<s8_symmetric>{}); }, false},
        {"entropy/qparams", [](S& st) { qparams_time(st, lowbit::entropy_observer<s8_symmetric>{}); }, false},
        {"mse/qparams", [](S& st) { qparams_time(st, lowbit::mse_observer<s8_symmetric>{}); }, false},
    };
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    for (const entry& e : benchmark_list()) {
        benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(e.name.c_str(), e.fn);
        if (e.sized)
            for (const std::int64_t n : sizes) b->Arg(n);
        b->Unit(benchmark::kMicrosecond);
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
