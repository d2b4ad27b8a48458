// Forward + backward throughput of lowbit's QAT layer (quant/fake_quantize.hpp,
// quant/learnable.hpp, quant/pact.hpp), single thread, each row also reported as a fraction
// of a memory stream with the same traffic, measured in the same run on the same buffers:
//
//   frac_of_stream = time of the stream loops / time of the forward + backward
//
// The stream of a forward + backward row is the forward's stream shape followed by the
// backward's (stream.hpp's loops: r<a>w<b> reads a and writes b bytes per element), run
// back to back in one loop body, so both see the same cache state as the op:
//
//   fwd_bwd_mask       forward writing y and the mask (r4w5), backward from the mask (r5w4): 18 B
//   fwd_bwd_recompute  forward writing y (r4w4), backward recomputing the mask from x (r8w4): 20 B
//   lsq, pact          forward (r4w4), backward x, dy -> dx (+ parameter sums) (r8w4):       20 B
//   observing rows     a min / max read of x (r4w0) first:                          + 4 B
//   fused fwd_mask     min / max (r4w0), then y and the mask (r4w5):                          13 B
//   lsq/bwd            the backward alone (r8w4):                                             12 B
//
// As in bench_kernels (the code is stream.hpp's), each stream has variants with 0, 2, 4, 8
// steps of a cheap integer mix per element, the fastest (picked once per process and shape) is
// the stream figure, and it is timed a quarter as many iterations just before and just after
// the op's timed loop.
//
//   taskset -c 1 ./bench_quant --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//       --benchmark_format=json --benchmark_out=quant.json
//
// Rows (N(0, 1) float32 x and dy, 64-byte aligned, 64Ki / 1Mi / 16Mi elements):
//   fake_quantize_module/fwd_bwd_mask          fake_quantize<u8> (qparams {0.03, 131} set,
//                                              observer disabled): forward(x, y, mask),
//                                              backward_masked(mask, dy, dx)
//   fake_quantize_module/fwd_bwd_recompute     the same, forward(x, y), backward(x, dy, dx)
//   fake_quantize_module_observing/fwd_bwd_mask  observer on (moving average min / max)
//   fake_quantize_module_per_channel/fwd_bwd_mask, /fwd_bwd_recompute
//                                              fake_quantize<s8 per channel> over [256, n / 256],
//                                              axis 0, bench_kernels' channel parameters,
//                                              observer disabled
//   lsq/fwd_bwd                                lsq_forward + lsq_backward, u8, scale 0.03,
//                                              zero point 131, grad factor 1 / sqrt(n * 255)
//                                              (dx, dscale, dzero_point)
//   lsq/bwd                                    lsq_backward alone (r8w4)
//   lsq_per_channel/fwd_bwd                    per-channel lsq_forward + lsq_backward, s8,
//                                              [256, n / 256], axis 0 (dx, dscales, dzero_points)
//   fused_moving_avg_obs_fake_quant/fwd_mask   the per-tensor fused op, u8 torch_fused, with mask
//   pact/fwd_bwd                               pact_forward + pact_backward, u8, alpha 3
//   stream/<shape>/<n>                         the streams above on their own (counter `work`)
// Counters: items_per_second (elements / s), bytes_per_second (the stream's bytes),
// frac_of_stream. Times and rates are CPU time (the thread's CPU clock).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <lowbit/lowbit.hpp>
#include <lowbit/observers/minmax.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>
#include <lowbit/quant/fake_quantize.hpp>
#include <lowbit/quant/learnable.hpp>
#include <lowbit/quant/pact.hpp>

#include "stream.hpp"

namespace {

using lowbit::span;

using namespace lowbit_bench;  // stream.hpp

constexpr std::size_t channels = 256;  // per-channel rows: [256, n / 256], axis 0

// ---------------------------------------------------------------------------------------
// Buffers: 64-byte aligned.

template <class T>
struct aligned_buffer {
    T* p = nullptr;
    std::size_t n = 0;
    explicit aligned_buffer(std::size_t count) : n(count) {
        p = static_cast<T*>(std::aligned_alloc(64, (count * sizeof(T) + 63) / 64 * 64));
        if (p == nullptr) throw std::bad_alloc();
        std::fill(p, p + n, T{});
    }
    aligned_buffer(const aligned_buffer&) = delete;
    aligned_buffer& operator=(const aligned_buffer&) = delete;
    ~aligned_buffer() { std::free(p); }
    T* data() const { return p; }
    span<T> s() const { return span<T>(p, n); }
    span<const T> cs() const { return span<const T>(p, n); }
};

// N(0, 1), generated once per (size, seed).
const aligned_buffer<float>& normal_f32(std::size_t n, unsigned seed = 1) {
    static std::map<std::pair<std::size_t, unsigned>, aligned_buffer<float>> cache;
    const auto key = std::make_pair(n, seed);
    auto it = cache.find(key);
    if (it == cache.end()) {
        it = cache.emplace(std::piecewise_construct, std::forward_as_tuple(key), std::forward_as_tuple(n)).first;
        std::mt19937 gen(seed);
        std::normal_distribution<float> d(0.0f, 1.0f);
        for (std::size_t i = 0; i < n; ++i) it->second.p[i] = d(gen);
    }
    return it->second;
}

// ---------------------------------------------------------------------------------------
// Stream loops: stream.hpp's shapes, run back to back.

// The forward + backward streams (file comment). Pointers: x, dy inputs; y, dx outputs; m mask.
struct io {
    const float* x;
    const float* dy;
    float* y;
    float* dx;
    std::uint8_t* m;
    std::size_t n;
};

enum class shape_kind { mask, recompute, observe_mask, fused_mask, bwd_only };

const char* shape_name(shape_kind k) {
    switch (k) {
        case shape_kind::mask: return "fwd_r4w5+bwd_r5w4";
        case shape_kind::recompute: return "fwd_r4w4+bwd_r8w4";
        case shape_kind::observe_mask: return "r4w0+fwd_r4w5+bwd_r5w4";
        case shape_kind::fused_mask: return "r4w0+fwd_r4w5";
        case shape_kind::bwd_only: return "bwd_r8w4";
    }
    return "?";
}

double shape_bytes(shape_kind k) {
    switch (k) {
        case shape_kind::mask: return 18.0;
        case shape_kind::recompute: return 20.0;
        case shape_kind::observe_mask: return 22.0;
        case shape_kind::fused_mask: return 13.0;
        case shape_kind::bwd_only: return 12.0;
    }
    return 0.0;
}

template <int Work>
void run_shape(shape_kind k, const io& b) {
    const auto* x = reinterpret_cast<const u32a*>(b.x);
    const auto* dy = reinterpret_cast<const u32a*>(b.dy);
    auto* y = reinterpret_cast<u32a*>(b.y);
    auto* dx = reinterpret_cast<u32a*>(b.dx);
    auto* m = reinterpret_cast<u8a*>(b.m);
    const std::size_t blocks = b.n / stream_block;
    switch (k) {
        case shape_kind::mask:
            stream_r4w5<Work>(x, y, m, blocks);
            stream_r5w4<Work>(m, dy, dx, blocks);
            break;
        case shape_kind::recompute:
            stream_r4w4<Work>(x, y, blocks);
            stream_r8w4<Work>(x, dy, dx, blocks);
            break;
        case shape_kind::observe_mask:
            benchmark::DoNotOptimize(stream_r4w0<Work>(x, blocks));
            stream_r4w5<Work>(x, y, m, blocks);
            stream_r5w4<Work>(m, dy, dx, blocks);
            break;
        case shape_kind::fused_mask:
            benchmark::DoNotOptimize(stream_r4w0<Work>(x, blocks));
            stream_r4w5<Work>(x, y, m, blocks);
            break;
        case shape_kind::bwd_only:
            stream_r8w4<Work>(x, dy, dx, blocks);
            break;
    }
}

stream_loop bind(shape_kind k, const io& b) {
    return bind_stream(shape_name(k), b.n, [=](auto w) { run_shape<decltype(w)::value>(k, b); });
}

// Per-row buffers: x, dy shared N(0, 1) inputs; y, dx, mask owned by the row.
struct buffers {
    std::size_t n;
    const aligned_buffer<float>& x;
    const aligned_buffer<float>& dy;
    aligned_buffer<float> y, dx;
    aligned_buffer<std::uint8_t> mask;
    explicit buffers(std::size_t count)
        : n(count), x(normal_f32(count, 1)), dy(normal_f32(count, 7)), y(count), dx(count), mask(count) {}
    io streams() const { return io{x.data(), dy.data(), y.data(), dx.data(), mask.data(), n}; }
};

void stream_benchmark(benchmark::State& state, shape_kind k) {
    const buffers b(arg_n(state));
    run_stream_row(state, bind(k, b.streams()), shape_bytes(k));
}

template <class R>
void require_ok(const R& r) {
    if (!r.ok()) throw std::runtime_error("lowbit call failed");
}

// `call` runs forward + backward once: once untimed (errors skip the row), then stream,
// timed loop, stream.
template <class Call>
void run_op(benchmark::State& state, const buffers& b, shape_kind k, Call call) {
    run_against_stream(state, bind(k, b.streams()), shape_bytes(k), call);
}

// ---------------------------------------------------------------------------------------
// Rows.

using u8_affine = lowbit::scheme<lowbit::u8>;
using s8_affine = lowbit::scheme<lowbit::s8>;
constexpr lowbit::qparams qp_u8{0.03f, 131};  // as bench_kernels

lowbit::shape channel_shape(std::size_t n) { return lowbit::shape{channels, n / channels}; }

// bench_kernels' channel_params: scales 0.02 + 0.0001 * (c % 97), zero points c % 11 - 5.
struct channel_params {
    std::vector<float> scales, zero_points_f;
    std::vector<std::int32_t> zero_points;
    channel_params() : scales(channels), zero_points_f(channels), zero_points(channels) {
        for (std::size_t c = 0; c < channels; ++c) {
            scales[c] = 0.02f + 0.0001f * static_cast<float>(c % 97);
            zero_points[c] = static_cast<std::int32_t>(c % 11) - 5;
            zero_points_f[c] = static_cast<float>(zero_points[c]);
        }
    }
};

void fq_module(benchmark::State& state, bool keep_mask, bool observing) {
    const std::size_t n = arg_n(state);
    buffers b(n);
    lowbit::fake_quantize<u8_affine> fq;
    if (observing) {
        require_ok(fq.forward(b.x.cs(), b.y.s()));  // first batch sets the range
    } else {
        require_ok(fq.set_qparams(qp_u8));
        fq.disable_observer();
    }
    const shape_kind k = observing ? shape_kind::observe_mask : keep_mask ? shape_kind::mask : shape_kind::recompute;
    if (keep_mask) {
        run_op(state, b, k, [&] {
            require_ok(fq.forward(b.x.cs(), b.y.s(), b.mask.s()));
            require_ok(fq.backward_masked(b.mask.cs(), b.dy.cs(), b.dx.s()));
        });
    } else {
        run_op(state, b, k, [&] {
            require_ok(fq.forward(b.x.cs(), b.y.s()));
            require_ok(fq.backward(b.x.cs(), b.dy.cs(), b.dx.s()));
        });
    }
}

void fq_module_per_channel(benchmark::State& state, bool keep_mask) {
    using O = lowbit::per_channel_minmax_observer<s8_affine>;
    const std::size_t n = arg_n(state);
    buffers b(n);
    const lowbit::shape shp = channel_shape(n);
    std::vector<float> obs_state(2 * channels), scales(channels);
    std::vector<std::int32_t> zps(channels);
    const channel_params p;
    lowbit::fake_quantize<s8_affine, O> fq(O(s8_affine{}.per_channel(0), channels, span<float>(obs_state)),
                                           span<float>(scales), span<std::int32_t>(zps));
    require_ok(fq.set_qparams(lowbit::qparams_view{span<const float>(p.scales), span<const std::int32_t>(p.zero_points)}));
    fq.disable_observer();
    if (keep_mask) {
        run_op(state, b, shape_kind::mask, [&] {
            require_ok(fq.forward(shp, b.x.cs(), b.y.s(), b.mask.s()));
            require_ok(fq.backward_masked(b.mask.cs(), b.dy.cs(), b.dx.s()));
        });
    } else {
        run_op(state, b, shape_kind::recompute, [&] {
            require_ok(fq.forward(shp, b.x.cs(), b.y.s()));
            require_ok(fq.backward(shp, b.x.cs(), b.dy.cs(), b.dx.s()));
        });
    }
}

void lsq_per_tensor(benchmark::State& state, bool forward) {
    const std::size_t n = arg_n(state);
    buffers b(n);
    const u8_affine s{};
    const float scale = 0.03f, zp = 131.0f;
    const float g = *lowbit::lsq_grad_factor(n, s.qmax());
    float sink = 0.0f;
    run_op(state, b, forward ? shape_kind::recompute : shape_kind::bwd_only, [&] {
        if (forward) require_ok(lowbit::lsq_forward(s, scale, zp, b.x.cs(), b.y.s()));
        const auto r = lowbit::lsq_backward(s, scale, zp, g, b.x.cs(), b.dy.cs(), b.dx.s());
        require_ok(r);
        sink += r->dscale + r->dzero_point;
    });
    benchmark::DoNotOptimize(sink);
}

void lsq_per_channel(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    buffers b(n);
    const s8_affine s = s8_affine{}.per_channel(0);
    const lowbit::shape shp = channel_shape(n);
    const channel_params p;
    std::vector<float> ds(channels), dz(channels);
    const float g = *lowbit::lsq_grad_factor(n, s.qmax());
    run_op(state, b, shape_kind::recompute, [&] {
        require_ok(lowbit::lsq_forward(s, shp, span<const float>(p.scales), span<const float>(p.zero_points_f),
                                       b.x.cs(), b.y.s()));
        require_ok(lowbit::lsq_backward(s, shp, span<const float>(p.scales), span<const float>(p.zero_points_f), g,
                                        b.x.cs(), b.dy.cs(), b.dx.s(), span<float>(ds), span<float>(dz)));
    });
}

void fused_op(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    buffers b(n);
    const u8_affine s = u8_affine{}.with_profile(lowbit::profile::torch_fused);
    lowbit::fused_fake_quantize_state st;
    run_op(state, b, shape_kind::fused_mask, [&] {
        require_ok(lowbit::fused_moving_avg_obs_fake_quant(s, b.x.cs(), b.y.s(), b.mask.s(), st));
    });
}

void pact_op(benchmark::State& state) {
    const std::size_t n = arg_n(state);
    buffers b(n);
    const u8_affine s{};
    const float alpha = 3.0f;
    float sink = 0.0f;
    run_op(state, b, shape_kind::recompute, [&] {
        require_ok(lowbit::pact_forward(s, alpha, b.x.cs(), b.y.s()));
        const auto r = lowbit::pact_backward(s, alpha, b.x.cs(), b.dy.cs(), b.dx.s());
        require_ok(r);
        sink += *r;
    });
    benchmark::DoNotOptimize(sink);
}

std::vector<entry> benchmark_list() {
    using S = benchmark::State;
    std::vector<entry> list;
    for (shape_kind k : {shape_kind::mask, shape_kind::recompute, shape_kind::observe_mask, shape_kind::fused_mask})
        list.push_back({std::string("stream/") + shape_name(k), [k](S& st) { stream_benchmark(st, k); }});
    list.push_back({"fake_quantize_module/fwd_bwd_mask", [](S& st) { fq_module(st, true, false); }});
    list.push_back({"fake_quantize_module/fwd_bwd_recompute", [](S& st) { fq_module(st, false, false); }});
    list.push_back({"fake_quantize_module_observing/fwd_bwd_mask", [](S& st) { fq_module(st, true, true); }});
    list.push_back({"fake_quantize_module_per_channel/fwd_bwd_mask", [](S& st) { fq_module_per_channel(st, true); }});
    list.push_back(
        {"fake_quantize_module_per_channel/fwd_bwd_recompute", [](S& st) { fq_module_per_channel(st, false); }});
    list.push_back({"lsq/fwd_bwd", [](S& st) { lsq_per_tensor(st, true); }});
    list.push_back({"lsq/bwd", [](S& st) { lsq_per_tensor(st, false); }});
    list.push_back({"lsq_per_channel/fwd_bwd", lsq_per_channel});
    list.push_back({"fused_moving_avg_obs_fake_quant/fwd_mask", fused_op});
    list.push_back({"pact/fwd_bwd", pact_op});
    return list;
}

}  // namespace

int main(int argc, char** argv) { return lowbit_bench::benchmark_main(argc, argv, benchmark_list); }
