// Throughput of lowbit's observers (observe() per batch, single thread) and the time of
// their qparams() searches, with the same memory-stream baseline as bench_kernels: every
// observe row is also reported as a fraction of a read-only stream over the same batch,
//
//   frac_of_stream = time of the r4w0 stream loop / time of observe()   (same buffer)
//
// measured right around the observer's timed loop (a quarter as many stream iterations just
// before and just after it), so both see the same cache state and the same moment's memory
// bandwidth. 1.0 = the observer is as fast as reading the batch once can be. The stream loop
// and the measurement are stream.hpp's, shared with bench_kernels and bench_quant.
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

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <map>
#include <new>
#include <random>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <vector>

#include <lowbit/lowbit.hpp>
#include <lowbit/observers/entropy.hpp>
#include <lowbit/observers/histogram.hpp>
#include <lowbit/observers/minmax.hpp>
#include <lowbit/observers/mse.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>
#include <lowbit/observers/percentile.hpp>

#include "stream.hpp"

namespace {

using lowbit::span;

using namespace lowbit_bench;  // stream.hpp

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

// stream/r4w0/<n>: the stream's absolute rate (counter `work`: the variant).
void stream_benchmark(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    run_stream_row(state, r4w0(normal_f32(n).p, n), 4.0);
}

// A failed check throws lowbit::error (a std::invalid_argument); without exceptions the
// status comes back instead and is turned into one here.
template <class R>
void require_ok(const R& r) {
    if (!r.ok()) throw std::runtime_error("lowbit call failed");
}

// observe rows: `call` observes the batch once (the first, untimed call sets the range); stream,
// timed loop, stream (file comment).
template <class Call>
void run_observe(benchmark::State& state, const float* x, std::size_t n, Call call) {
    run_against_stream(state, r4w0(x, n), 4.0, call);
}

using u8_affine = lowbit::scheme<lowbit::u8>;                                  // torch's observers' default
using s8_symmetric = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>;  // percentile / entropy / mse

template <class Observer>
void observe_per_tensor(benchmark::State& state, Observer obs) {
    const std::size_t n = arg_n(state);
    const float* x = normal_f32(n).p;
    const span<const float> batch(x, n);
    run_observe(state, x, n, [&] { require_ok(obs.observe(batch)); });
}

void observe_per_channel(benchmark::State& state) {
    const std::size_t n = arg_n(state);
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

int main(int argc, char** argv) { return lowbit_bench::benchmark_main(argc, argv, benchmark_list); }
