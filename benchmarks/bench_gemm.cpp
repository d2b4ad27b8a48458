// benchmarks/bench_gemm.cpp: lowbit's integer GEMMs (kernels/gemm.hpp, kernels/gemm_int4.hpp)
// against their peers and against this machine's limits, single thread, so one can read off
// "how far from the hardware, how far from oneDNN, how much faster than f32":
//
//   lowbit_s32/<isa>/<M>x<N>x<K>        kernels::gemm, u8 A (zero point 128) x s8 weights
//                                       (torch's [N, K] layout, zero point 0, pre-packed once by
//                                       pack_weights) -> int32, for every gemm_isa this machine
//                                       runs (gemm_isa_available), via gemm_options::isa
//   lowbit_s8_requant/<isa>/<shape>     the same with the requantize-to-s8 epilogue (TFLite fixed
//                                       point, per-channel multipliers and bias), best ISA only
//   onednn_s32/<max_isa>/<shape>        oneDNN matmul u8 x s8 -> s32, the same A, B, zero point
//                                       (a runtime src zero point), weights reordered once into
//                                       the primitive's preferred format (format_tag::any);
//                                       <max_isa> is "default" or --onednn_max_isa's value; the
//                                       label is the implementation oneDNN chose
//   openblas_sgemm/<shape>              cblas_sgemm, f32, A [M, K] x B^T with B [N, K]
//   openblas_sgemv/<shape>              (M = 1) cblas_sgemv, B [N, K] times a: OpenBLAS 0.3.21's
//                                       sgemm does not switch to its GEMV code for M = 1 (~4x
//                                       slower), so this is the f32 GEMV to compare with
//   int4_f32/g<G>/<shape>               kernels::gemm_int4_f32, s4 weights, f32 scales per group of G
//   int4_q8/g<G>/<shape>                kernels::quantize_q8 of A + kernels::gemm_int4_q8 (both timed)
//   vpdpbusd_peak/zmm, /ymm, /ymm_avx_vnni   12 independent vpdpbusd accumulators in a loop: the
//                                       instruction's throughput (zmm: AVX-512 VNNI; ymm: its
//                                       EVEX-256 form; ymm_avx_vnni: the VEX form, when present)
//
// Every result is checked once, untimed, before its row is timed: lowbit's int32 / requantized
// rows against ref::gemm (first and last row of C), oneDNN's whole C against lowbit's, the int4
// rows bit for bit against ref::gemm_int4_f32 / ref::quantize_q8 + ref::gemm_int4_q8. A
// mismatch skips the row with an error naming the first differing element.
//
// Counters (rates on CPU time, the thread's clock, Google Benchmark's default):
//   GOPS             2 M N K / s (int8 and int4 rows, and the peaks: 128 ops per zmm vpdpbusd)
//   GFLOPS           2 M N K / s (the OpenBLAS rows)
//   rows_per_second  (M = 1 rows) weight rows (outputs) per second, N / time of one GEMV
//   weight_GBps      (M = 1 rows) bytes of the (packed / reordered) weights read per second
//   stream_GBps      (M = 1 rows) a read-only stream over the same weight buffer (stream.hpp's
//                    r4w0 loop, its fastest variant), timed just before and just after the row's
//                    timed loop, a quarter as many passes each side, as bench_kernels does
//   frac_of_stream   stream time / GEMV time: the fraction of the read bandwidth the GEMV gets
//
// Single thread everywhere: oneDNN's CPU runtime is checked at start-up (OpenMP: 1 thread via
// omp_set_num_threads; sequential: nothing to do; anything else: its rows are skipped), and
// OpenBLAS gets openblas_set_num_threads(1). The JSON context records lowbit's best ISAs,
// oneDNN's version, runtime, thread count and effective ISA, and OpenBLAS's configuration.
//
// Flags (besides Google Benchmark's):
//   --onednn_max_isa=<isa>  dnnl::set_max_cpu_isa(<isa>) before any primitive exists (sse41,
//                           avx, avx2, avx2_vnni, avx512_core, avx512_core_vnni,
//                           avx512_core_bf16, avx512_core_amx, all); oneDNN only honours it
//                           before its first primitive, so each limit is a separate process:
//                           run the binary again, e.g. with --benchmark_filter='^onednn'
//   --smoke                 tiny shapes (tails everywhere), for a quick run or a sanitizer build
//
//   taskset -c 1 ./bench_gemm --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//       --benchmark_format=json --benchmark_out=gemm.json
//   gemm_table.py runs it (twice: the second time with --onednn_max_isa=avx512_core_vnni) and
//   prints the tables.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <lowbit/core/gemm.hpp>
#include <lowbit/core/gemm_int4.hpp>
#include <lowbit/core/scheme.hpp>
#include <lowbit/kernels/cpu.hpp>
#include <lowbit/kernels/gemm.hpp>
#include <lowbit/kernels/gemm_int4.hpp>

#include "stream.hpp"

#if LOWBIT_BENCH_HAS_DNNL
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#endif
#if LOWBIT_BENCH_HAS_OPENBLAS
#include <cblas.h>  // OpenBLAS's (openblas_set_num_threads, openblas_get_config)
#endif

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define LOWBIT_BENCH_X86 1
#else
#define LOWBIT_BENCH_X86 0
#endif

namespace {

namespace kn = lowbit::kernels;
using lowbit::span;

using lowbit_bench::best_variant;  // stream.hpp
using lowbit_bench::r4w0;
using lowbit_bench::seconds_of;
using lowbit_bench::stream_block;
using lowbit_bench::stream_loop;
using lowbit_bench::thread_seconds;

// ---------------------------------------------------------------------------------------
// Shapes and options.

struct dims3 {
    std::size_t m, n, k;
    bool operator==(const dims3& o) const { return m == o.m && n == o.n && k == o.k; }
};

std::string shape_name(const dims3& d) {
    return std::to_string(d.m) + "x" + std::to_string(d.n) + "x" + std::to_string(d.k);
}

struct options {
    bool smoke = false;
    std::string onednn_max_isa = "default";
};
options g_opt;

// The int8 rows' shapes (M, N, K); the last one is the larger int4 GEMV shape, so that int4 /
// int8 rows per second can be read at both int4 shapes.
std::vector<dims3> int8_shapes() {
    if (g_opt.smoke) return {{1, 40, 96}, {5, 70, 130}, {50, 130, 64}, {1, 48, 256}, {1, 33, 256}};
    return {{1, 4096, 4096}, {16, 4096, 4096}, {128, 1024, 1024}, {1024, 1024, 1024}, {512, 512, 2048}, {1, 11008, 4096}};
}
std::vector<dims3> int4_shapes() {
    if (g_opt.smoke) return {{1, 48, 256}, {1, 33, 256}};
    return {{1, 4096, 4096}, {1, 11008, 4096}};
}
constexpr std::size_t int4_groups[] = {32, 128};

constexpr std::int32_t a_zero_point = 128;  // u8 activations' zero point (the "s8 as u8" value)

// ---------------------------------------------------------------------------------------
// Buffers: 64-byte aligned, zero-filled.

template <class T>
struct aligned_buffer {
    T* p = nullptr;
    std::size_t n = 0;
    explicit aligned_buffer(std::size_t count) : n(count) {
        const std::size_t bytes = (std::max<std::size_t>(count, 1) * sizeof(T) + 63) / 64 * 64;
        p = static_cast<T*>(std::aligned_alloc(64, bytes));
        if (p == nullptr) throw std::bad_alloc();
        std::memset(static_cast<void*>(p), 0, bytes);
    }
    aligned_buffer(const aligned_buffer&) = delete;
    aligned_buffer& operator=(const aligned_buffer&) = delete;
    ~aligned_buffer() { std::free(p); }
    T* data() const { return p; }
    span<T> s() const { return span<T>(p, n); }
    span<const T> cs() const { return span<const T>(p, n); }
};

template <class T>
void fill_uniform(T* p, std::size_t n, int lo, int hi, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int> d(lo, hi);
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<T>(d(gen));
}

void fill_normal(float* p, std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    for (std::size_t i = 0; i < n; ++i) p[i] = d(gen);
}

// ---------------------------------------------------------------------------------------
// The read stream over the weights: stream.hpp's read-only loop (r4w0: every 32-bit word of
// the buffer OR-ed together, the fastest of its 0 / 2 / 4 / 8 mix-step variants, chosen once per
// size), over the weight bytes rounded down to whole 256-byte blocks.

struct weight_stream {
    std::size_t bytes = 0;
    stream_loop loop;
    weight_stream(const void* p, std::size_t b)
        : bytes(b / (4 * stream_block) * (4 * stream_block)), loop(r4w0(static_cast<const std::uint32_t*>(p), bytes / 4)) {}
};

// The timed loop of a row; with a stream (M = 1 rows), bracketed by the stream over the weights
// and reported as weight_GBps / stream_GBps / frac_of_stream. `weight_bytes` are the bytes the
// call reads from its weights.
template <class Call>
void timed_loop(benchmark::State& state, Call&& call, const weight_stream* stream, double weight_bytes) {
    if (stream == nullptr || stream->bytes == 0) {
        for (auto _ : state) {
            call();
            benchmark::ClobberMemory();
        }
        return;
    }
    const std::function<void()>& run_stream = stream->loop.run[best_variant(stream->loop)];
    const std::int64_t reps = std::max<std::int64_t>(1, static_cast<std::int64_t>(state.max_iterations) / 4);
    run_stream();  // warm
    const double before = seconds_of(run_stream, reps);
    call();
    const double t0 = thread_seconds();
    for (auto _ : state) {
        call();
        benchmark::ClobberMemory();
    }
    const double timed = thread_seconds() - t0;
    const double after = seconds_of(run_stream, reps);
    const double stream_s = (before + after) / (2.0 * static_cast<double>(reps));
    const double op_s = timed / static_cast<double>(std::max<benchmark::IterationCount>(state.iterations(), 1));
    state.counters["weight_GBps"] = benchmark::Counter(weight_bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["stream_GBps"] = static_cast<double>(stream->bytes) * 1e-9 / stream_s;
    // the stream reads stream->bytes, the call weight_bytes: compare per byte
    state.counters["frac_of_stream"] = (stream_s / static_cast<double>(stream->bytes)) / (op_s / weight_bytes);
}

void set_ops(benchmark::State& state, const dims3& d, const char* name = "GOPS") {
    const double ops = 2.0 * static_cast<double>(d.m) * static_cast<double>(d.n) * static_cast<double>(d.k);
    state.counters[name] = benchmark::Counter(ops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    if (d.m == 1)
        state.counters["rows_per_second"] =
            benchmark::Counter(static_cast<double>(d.n), benchmark::Counter::kIsIterationInvariantRate);
}

// Each row's results are checked once per process (repetitions re-enter the row): `check`
// returns "" or what is wrong, remembered for the row's later repetitions.
template <class Check>
const std::string& check_once(const std::string& row, Check&& check) {
    static std::map<std::string, std::string> verdicts;
    auto it = verdicts.find(row);
    if (it == verdicts.end()) it = verdicts.emplace(row, check()).first;
    return it->second;
}

// ---------------------------------------------------------------------------------------
// int8 data: u8 A [M, K], s8 B [N, K] (n_by_k), B packed once. One shape at a time (rows are
// registered shape by shape).

struct int8_data {
    dims3 d;
    aligned_buffer<std::uint8_t> a;
    aligned_buffer<std::int8_t> b;
    aligned_buffer<std::uint8_t> packed;
    kn::packed_weights w;

    explicit int8_data(const dims3& s) : d(s), a(s.m * s.k), b(s.n * s.k), packed(kn::packed_size(s.n, s.k)) {
        fill_uniform(a.data(), a.n, 0, 255, 11);
        fill_uniform(b.data(), b.n, -128, 127, 12);
        w = *kn::pack_weights(gb(), d.n, d.k, packed.s());
    }
    lowbit::gemm_b gb() const { return lowbit::gemm_b{b.cs(), d.k, lowbit::weight_layout::n_by_k, {}}; }
    lowbit::gemm_a<std::uint8_t> ga() const { return lowbit::gemm_a<std::uint8_t>{a.cs(), d.k, a_zero_point}; }
    // Row m of A alone (for ref::gemm on one row).
    lowbit::gemm_a<std::uint8_t> row(std::size_t m) const {
        return lowbit::gemm_a<std::uint8_t>{span<const std::uint8_t>(a.data() + m * d.k, d.k), d.k, a_zero_point};
    }
    lowbit::gemm_dims dims() const { return lowbit::gemm_dims{d.m, d.n, d.k}; }
};

const int8_data& int8_case(const dims3& s) {
    static std::unique_ptr<int8_data> slot;
    if (!slot || !(slot->d == s)) {
        slot.reset();
        slot = std::make_unique<int8_data>(s);
    }
    return *slot;
}

// "" if rows 0 and M - 1 of c equal ref::gemm's, else where they differ. Ref is called row by
// row (it is the scalar spec: a whole 1024^3 GEMM would take seconds).
template <class T, class RefRow>
std::string check_rows(const int8_data& x, const T* c, RefRow&& ref_row) {
    std::vector<T> want(x.d.n);
    for (std::size_t m : {std::size_t(0), x.d.m - 1}) {
        ref_row(m, span<T>(want.data(), want.size()));
        for (std::size_t n = 0; n < x.d.n; ++n)
            if (want[n] != c[m * x.d.n + n])
                return "differs from ref::gemm at (" + std::to_string(m) + ", " + std::to_string(n) +
                       "): " + std::to_string(c[m * x.d.n + n]) + " vs " + std::to_string(want[n]);
    }
    return {};
}

void lowbit_s32_row(benchmark::State& state, const std::string& row, dims3 s, kn::gemm_isa isa) {
    try {
        const int8_data& x = int8_case(s);
        aligned_buffer<std::int32_t> c(s.m * s.n);
        const kn::gemm_options opt{isa, {}};
        auto call = [&] { (void)kn::gemm(x.dims(), x.ga(), x.w, c.s(), s.n, opt); };
        call();
        const std::string& bad = check_once(row, [&] {
            return check_rows(x, c.data(), [&](std::size_t m, span<std::int32_t> out) {
                (void)lowbit::ref::gemm(lowbit::gemm_dims{1, s.n, s.k}, x.row(m), x.gb(), out, s.n);
            });
        });
        if (!bad.empty()) return state.SkipWithError(bad.c_str());
        const weight_stream stream(x.w.bytes().data(), x.w.bytes().size());
        timed_loop(state, call, s.m == 1 ? &stream : nullptr, static_cast<double>(x.w.bytes().size()));
        set_ops(state, s);
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

// Requantize to s8: per-channel multipliers (real values 1.5e-4 .. 3e-4, which put these sums
// mostly inside [-128, 127]) and per-channel bias, double rounding (TFLite's default).
void lowbit_requant_row(benchmark::State& state, const std::string& row, dims3 s, kn::gemm_isa isa) {
    try {
        const int8_data& x = int8_case(s);
        std::vector<lowbit::quantized_multiplier> qm(s.n);
        std::vector<std::int32_t> bias(s.n);
        for (std::size_t n = 0; n < s.n; ++n)
            qm[n] = *lowbit::quantize_multiplier(1.5e-4 * (1.0 + static_cast<double>(n % 97) / 96.0));
        fill_uniform(bias.data(), bias.size(), -2000, 2000, 13);
        lowbit::requantize_params p;
        p.multipliers = span<const lowbit::quantized_multiplier>(qm.data(), qm.size());
        p.bias = span<const std::int32_t>(bias.data(), bias.size());
        p.zero_point = -3;
        const auto s8 = lowbit::scheme<lowbit::s8>{};
        aligned_buffer<std::int8_t> c(s.m * s.n);
        const kn::gemm_options opt{isa, {}};
        auto call = [&] { (void)kn::gemm(x.dims(), x.ga(), x.w, s8, p, c.s(), s.n, opt); };
        call();
        const std::string& bad = check_once(row, [&] {
            return check_rows(x, c.data(), [&](std::size_t m, span<std::int8_t> out) {
                (void)lowbit::ref::gemm(lowbit::gemm_dims{1, s.n, s.k}, x.row(m), x.gb(), s8, p, out, s.n);
            });
        });
        if (!bad.empty()) return state.SkipWithError(bad.c_str());
        const weight_stream stream(x.w.bytes().data(), x.w.bytes().size());
        timed_loop(state, call, s.m == 1 ? &stream : nullptr, static_cast<double>(x.w.bytes().size()));
        set_ops(state, s);
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

// ---------------------------------------------------------------------------------------
// oneDNN

#if LOWBIT_BENCH_HAS_DNNL
const char* const dnnl_isa_names[] = {"all",         "sse41",           "avx",
                                      "avx2",        "avx2_vnni",       "avx512_core",
                                      "avx512_core_vnni", "avx512_core_bf16", "avx512_core_amx"};
const dnnl::cpu_isa dnnl_isa_values[] = {dnnl::cpu_isa::all,         dnnl::cpu_isa::sse41,
                                         dnnl::cpu_isa::avx,         dnnl::cpu_isa::avx2,
                                         dnnl::cpu_isa::avx2_vnni,   dnnl::cpu_isa::avx512_core,
                                         dnnl::cpu_isa::avx512_core_vnni, dnnl::cpu_isa::avx512_core_bf16,
                                         dnnl::cpu_isa::avx512_core_amx};

std::string dnnl_isa_name(dnnl::cpu_isa isa) {
    for (std::size_t i = 0; i < sizeof(dnnl_isa_values) / sizeof(dnnl_isa_values[0]); ++i)
        if (dnnl_isa_values[i] == isa) return dnnl_isa_names[i];
    return "isa_" + std::to_string(static_cast<int>(isa));
}

// "" when oneDNN runs on one thread (set up in main), else why not.
std::string g_dnnl_thread_problem;

void onednn_row(benchmark::State& state, const std::string& row, dims3 s) {
    if (!g_dnnl_thread_problem.empty()) return state.SkipWithError(g_dnnl_thread_problem.c_str());
    try {
        using dnnl::memory;
        using dt = memory::data_type;
        using tag = memory::format_tag;
        const int8_data& x = int8_case(s);
        const auto M = static_cast<memory::dim>(s.m), N = static_cast<memory::dim>(s.n), K = static_cast<memory::dim>(s.k);
        dnnl::engine eng(dnnl::engine::kind::cpu, 0);
        dnnl::stream strm(eng);
        const memory::desc src_md({M, K}, dt::u8, tag::ab), w_any({K, N}, dt::s8, tag::any), dst_md({M, N}, dt::s32, tag::ab);
        dnnl::primitive_attr attr;
        attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
        const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, w_any, dst_md), attr, eng);
        // B [N, K] row-major is the K x N matrix in format "ba"; reordered once, untimed.
        memory w_user({{K, N}, dt::s8, tag::ba}, eng, const_cast<std::int8_t*>(x.b.data()));
        memory w_mem(pd.weights_desc(), eng);
        dnnl::reorder(w_user, w_mem).execute(strm, w_user, w_mem);
        strm.wait();
        aligned_buffer<std::int32_t> c(s.m * s.n);
        std::int32_t za = a_zero_point;
        memory src_m(src_md, eng, const_cast<std::uint8_t*>(x.a.data()));
        memory dst_m(dst_md, eng, c.data());
        memory zp_m({{1}, dt::s32, tag::x}, eng, &za);
        const dnnl::matmul prim(pd);
        const std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src_m},
                                                   {DNNL_ARG_WEIGHTS, w_mem},
                                                   {DNNL_ARG_DST, dst_m},
                                                   {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, zp_m}};
        auto call = [&] {
            prim.execute(strm, args);
            strm.wait();
        };
        call();
        const std::string& bad = check_once(row, [&]() -> std::string {
            // the whole C against lowbit's (itself checked against ref::gemm)
            aligned_buffer<std::int32_t> want(s.m * s.n);
            (void)kn::gemm(x.dims(), x.ga(), x.w, want.s(), s.n);
            for (std::size_t i = 0; i < want.n; ++i)
                if (want.p[i] != c.p[i])
                    return "oneDNN's C differs from lowbit's at (" + std::to_string(i / s.n) + ", " +
                           std::to_string(i % s.n) + "): " + std::to_string(c.p[i]) + " vs " + std::to_string(want.p[i]);
            return {};
        });
        if (!bad.empty()) return state.SkipWithError(bad.c_str());
        state.SetLabel(pd.impl_info_str());
        const std::size_t w_bytes = pd.weights_desc().get_size();
        const weight_stream stream(w_mem.get_data_handle(), w_bytes);
        timed_loop(state, call, s.m == 1 ? &stream : nullptr, static_cast<double>(w_bytes));
        set_ops(state, s);
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

// Applies --onednn_max_isa and makes oneDNN single-threaded; records what it got. False on a
// bad ISA name or a refused limit (the message is printed).
bool setup_onednn() {
    const dnnl_version_t* v = dnnl_version();
    benchmark::AddCustomContext("onednn_version", std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                                                      std::to_string(v->patch));
    if (g_opt.onednn_max_isa != "default") {
        std::size_t i = 0;
        const std::size_t count = sizeof(dnnl_isa_names) / sizeof(dnnl_isa_names[0]);
        while (i < count && g_opt.onednn_max_isa != dnnl_isa_names[i]) ++i;
        if (i == count) {
            std::fprintf(stderr, "bench_gemm: unknown --onednn_max_isa value '%s'\n", g_opt.onednn_max_isa.c_str());
            return false;
        }
        if (dnnl::set_max_cpu_isa(dnnl_isa_values[i]) != dnnl::status::success) {
            std::fprintf(stderr, "bench_gemm: oneDNN refused set_max_cpu_isa(%s)\n", dnnl_isa_names[i]);
            return false;
        }
    }
    std::string runtime;
    switch (v->cpu_runtime) {
        case DNNL_RUNTIME_OMP:
            runtime = "omp";
            omp_set_num_threads(1);
            if (omp_get_max_threads() != 1) g_dnnl_thread_problem = "oneDNN: omp_set_num_threads(1) did not take";
            break;
        case DNNL_RUNTIME_SEQ: runtime = "seq"; break;
        default:
            runtime = std::to_string(v->cpu_runtime);
            g_dnnl_thread_problem = "oneDNN: CPU runtime " + runtime + " cannot be made single-threaded here";
    }
    benchmark::AddCustomContext("onednn_cpu_runtime", runtime);
    benchmark::AddCustomContext("onednn_threads", runtime == "omp" ? std::to_string(omp_get_max_threads()) : runtime);
    benchmark::AddCustomContext("onednn_max_isa", g_opt.onednn_max_isa);
    benchmark::AddCustomContext("onednn_isa", dnnl_isa_name(dnnl::get_effective_cpu_isa()));
    return true;
}
#endif  // LOWBIT_BENCH_HAS_DNNL

// ---------------------------------------------------------------------------------------
// OpenBLAS sgemm: A [M, K] f32 N(0, 1), B [N, K] (so B^T, as torch.nn.Linear), C [M, N].

// With gemv (M = 1 only), cblas_sgemv(B, a) instead: OpenBLAS's sgemm does not take its GEMV
// code for M = 1, so that row is the fair f32 GEMV.
#if LOWBIT_BENCH_HAS_OPENBLAS
void openblas_row(benchmark::State& state, dims3 s, bool gemv) {
    try {
        aligned_buffer<float> a(s.m * s.k), b(s.n * s.k), c(s.m * s.n);
        fill_normal(a.data(), a.n, 21);
        fill_normal(b.data(), b.n, 22);
        const auto M = static_cast<blasint>(s.m), N = static_cast<blasint>(s.n), K = static_cast<blasint>(s.k);
        std::function<void()> call;
        if (gemv)
            call = [&] { cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, b.p, K, a.p, 1, 0.0f, c.p, 1); };
        else
            call = [&] { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a.p, K, b.p, K, 0.0f, c.p, N); };
        call();
        state.SetLabel(openblas_get_corename());
        timed_loop(state, call, nullptr, 0.0);
        set_ops(state, s, "GFLOPS");
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}
#endif

// ---------------------------------------------------------------------------------------
// int4 weight-only: s4 weights (random nibbles), f32 scales in [0.002, 0.02] per group of G,
// f32 activations N(0, 1); packed once per (shape, G).

struct int4_data {
    dims3 d;
    std::size_t g;
    aligned_buffer<std::uint8_t> q;
    aligned_buffer<float> scales, a;
    lowbit::int4_weights w;
    aligned_buffer<std::uint8_t> packed;

    static lowbit::int4_weights view(const dims3& s, std::size_t g, const std::uint8_t* q, const float* scales) {
        lowbit::int4_weights w;
        w.format = lowbit::format_id::s4;
        w.n = s.n, w.k = s.k, w.group_size = g;
        w.data = span<const std::uint8_t>(q, s.n * s.k / 2);
        w.scales = span<const float>(scales, s.n * (s.k / g));
        return w;
    }
    int4_data(const dims3& s, std::size_t group)
        : d(s), g(group), q(s.n * s.k / 2), scales(s.n * (s.k / group)), a(s.m * s.k),
          w(view(s, group, q.data(), scales.data())), packed(kn::packed_int4_size(w)) {
        fill_uniform(q.data(), q.n, 0, 255, 31);
        std::mt19937 gen(32);
        std::uniform_real_distribution<float> u(0.002f, 0.02f);
        for (std::size_t i = 0; i < scales.n; ++i) scales.p[i] = u(gen);
        fill_normal(a.data(), a.n, 33);
        (void)kn::pack_int4(w, packed.s());
    }
    // Bytes the GEMV reads from the packed weights (the tiles: nibbles, scales; header left out).
    std::size_t weight_bytes() const { return packed.n - 64; }
};

const int4_data& int4_case(const dims3& s, std::size_t g) {
    static std::unique_ptr<int4_data> slot;
    if (!slot || !(slot->d == s) || slot->g != g) {
        slot.reset();
        slot = std::make_unique<int4_data>(s, g);
    }
    return *slot;
}

std::string first_bit_difference(const float* got, const float* want, std::size_t count, const char* what) {
    for (std::size_t i = 0; i < count; ++i)
        if (std::memcmp(got + i, want + i, sizeof(float)) != 0) {
            char values[64];
            std::snprintf(values, sizeof values, "%.9g vs %.9g", static_cast<double>(got[i]), static_cast<double>(want[i]));
            return std::string(what) + " differs at output " + std::to_string(i) + ": " + values;
        }
    return {};
}

struct q8_buffers {
    aligned_buffer<std::int8_t> q;
    aligned_buffer<float> d;
    aligned_buffer<std::int32_t> sums;
    std::size_t m, k;
    q8_buffers(std::size_t rows, std::size_t cols)
        : q(rows * cols), d(rows * cols / 32), sums(rows * cols / 32), m(rows), k(cols) {}
    lowbit::q8_activations_buffer buffer() const { return {m, k, q.s(), d.s(), sums.s()}; }
};

void int4_row(benchmark::State& state, const std::string& row, dims3 s, std::size_t g, bool q8) {
    try {
        const int4_data& x = int4_case(s, g);
        aligned_buffer<float> y(s.m * s.n);
        q8_buffers qa(s.m, s.k);
        std::function<void()> call;
        if (q8)
            call = [&] {
                (void)kn::quantize_q8(x.a.cs(), s.m, s.k, s.k, qa.buffer());
                (void)kn::gemm_int4_q8(x.packed.cs(), qa.buffer().view(), {}, y.s(), s.n);
            };
        else
            call = [&] { (void)kn::gemm_int4_f32(x.packed.cs(), x.a.cs(), s.m, s.k, {}, y.s(), s.n); };
        call();
        const std::string& bad = check_once(row, [&] {
            std::vector<float> want(s.m * s.n);
            const span<float> ws(want.data(), want.size());
            if (q8) {
                q8_buffers ra(s.m, s.k);
                (void)lowbit::ref::quantize_q8(x.a.cs(), s.m, s.k, s.k, ra.buffer());
                (void)lowbit::ref::gemm_int4_q8(x.w, ra.buffer().view(), {}, ws, s.n);
                return first_bit_difference(y.data(), want.data(), want.size(), "gemm_int4_q8 vs ref");
            }
            (void)lowbit::ref::gemm_int4_f32(x.w, x.a.cs(), s.m, s.k, {}, ws, s.n);
            return first_bit_difference(y.data(), want.data(), want.size(), "gemm_int4_f32 vs ref");
        });
        if (!bad.empty()) return state.SkipWithError(bad.c_str());
        const weight_stream stream(x.packed.data() + 64, x.weight_bytes());
        timed_loop(state, call, s.m == 1 ? &stream : nullptr, static_cast<double>(x.weight_bytes()));
        set_ops(state, s);
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

// ---------------------------------------------------------------------------------------
// vpdpbusd peak: 12 independent accumulators (enough to cover the instruction's latency at one
// or two per cycle), the same two sources; the sums are returned so nothing is dead code.

#if LOWBIT_BENCH_X86
#define LOWBIT_BENCH_TWELVE(OP) \
    c0 = OP(c0, a, b);          \
    c1 = OP(c1, a, b);          \
    c2 = OP(c2, a, b);          \
    c3 = OP(c3, a, b);          \
    c4 = OP(c4, a, b);          \
    c5 = OP(c5, a, b);          \
    c6 = OP(c6, a, b);          \
    c7 = OP(c7, a, b);          \
    c8 = OP(c8, a, b);          \
    c9 = OP(c9, a, b);          \
    c10 = OP(c10, a, b);        \
    c11 = OP(c11, a, b);

// Twelve equal chains would be merged into one by the compiler (common subexpressions): an
// empty asm makes each starting value opaque, so the chains stay independent.
#define LOWBIT_BENCH_OPAQUE(C) \
    asm volatile("" : C(c0), C(c1), C(c2), C(c3), C(c4), C(c5), C(c6), C(c7), C(c8), C(c9), C(c10), C(c11))

constexpr std::int64_t peak_iters = 1 << 16;  // 12 instructions each

// The wrapping sum of a vector's int32 lanes (through memory: no ISA-specific reduction).
template <class V>
std::int32_t sum_lanes(const V& v) {
    std::int32_t t[sizeof(V) / 4];
    std::memcpy(t, &v, sizeof t);
    std::uint32_t s = 0;
    for (std::int32_t e : t) s += static_cast<std::uint32_t>(e);
    return static_cast<std::int32_t>(s);
}

__attribute__((target("avx512f,avx512vnni"), noinline)) std::int32_t vpdpbusd_zmm(std::int64_t iters) {
    const __m512i a = _mm512_set1_epi32(0x01020304), b = _mm512_set1_epi32(0x05FF0702);
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0,
            c9 = c0, c10 = c0, c11 = c0;
    LOWBIT_BENCH_OPAQUE("+v");
    for (std::int64_t i = 0; i < iters; ++i) {
        LOWBIT_BENCH_TWELVE(_mm512_dpbusd_epi32)
    }
    const __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3)),
                                       _mm512_add_epi32(_mm512_add_epi32(c4, c5), _mm512_add_epi32(c6, c7)));
    return sum_lanes(_mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(c8, c9), _mm512_add_epi32(c10, c11))));
}

__attribute__((target("avx512f,avx512vl,avx512vnni"), noinline)) std::int32_t vpdpbusd_ymm_evex(std::int64_t iters) {
    const __m256i a = _mm256_set1_epi32(0x01020304), b = _mm256_set1_epi32(0x05FF0702);
    __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0,
            c9 = c0, c10 = c0, c11 = c0;
    LOWBIT_BENCH_OPAQUE("+v");
    for (std::int64_t i = 0; i < iters; ++i) {
        LOWBIT_BENCH_TWELVE(_mm256_dpbusd_epi32)
    }
    const __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3)),
                                       _mm256_add_epi32(_mm256_add_epi32(c4, c5), _mm256_add_epi32(c6, c7)));
    return sum_lanes(_mm256_add_epi32(s, _mm256_add_epi32(_mm256_add_epi32(c8, c9), _mm256_add_epi32(c10, c11))));
}

__attribute__((target("avx2,avxvnni"), noinline)) std::int32_t vpdpbusd_ymm_vex(std::int64_t iters) {
    const __m256i a = _mm256_set1_epi32(0x01020304), b = _mm256_set1_epi32(0x05FF0702);
    __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0,
            c9 = c0, c10 = c0, c11 = c0;
    LOWBIT_BENCH_OPAQUE("+x");
    for (std::int64_t i = 0; i < iters; ++i) {
        LOWBIT_BENCH_TWELVE(_mm256_dpbusd_avx_epi32)
    }
    const __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3)),
                                       _mm256_add_epi32(_mm256_add_epi32(c4, c5), _mm256_add_epi32(c6, c7)));
    return sum_lanes(_mm256_add_epi32(s, _mm256_add_epi32(_mm256_add_epi32(c8, c9), _mm256_add_epi32(c10, c11))));
}
#undef LOWBIT_BENCH_TWELVE
#undef LOWBIT_BENCH_OPAQUE

// lanes: 16 (zmm) or 8 (ymm) dwords, each 4 multiply-adds per instruction.
void peak_row(benchmark::State& state, std::int32_t (*loop)(std::int64_t), double lanes) {
    for (auto _ : state) benchmark::DoNotOptimize(loop(peak_iters));
    const double ops = static_cast<double>(peak_iters) * 12.0 * lanes * 4.0 * 2.0;
    state.counters["GOPS"] = benchmark::Counter(ops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
#endif  // LOWBIT_BENCH_X86

// ---------------------------------------------------------------------------------------
// Registration: shape by shape (the shape caches hold one shape at a time).

void add(const std::string& name, std::function<void(benchmark::State&)> fn) {
    benchmark::RegisterBenchmark(name.c_str(), std::move(fn))->Unit(benchmark::kMicrosecond);
}

void register_rows() {
#if LOWBIT_BENCH_X86
    const kn::cpu_features& f = kn::cpu();
    if (f.avx512f && f.avx512vnni)
        add("vpdpbusd_peak/zmm", [](benchmark::State& st) { peak_row(st, vpdpbusd_zmm, 16); });
    if (f.avx512f && f.avx512vl && f.avx512vnni)
        add("vpdpbusd_peak/ymm", [](benchmark::State& st) { peak_row(st, vpdpbusd_ymm_evex, 8); });
    if (f.avx2 && f.avx_vnni)
        add("vpdpbusd_peak/ymm_avx_vnni", [](benchmark::State& st) { peak_row(st, vpdpbusd_ymm_vex, 8); });
#endif
    const kn::gemm_isa isas[] = {kn::gemm_isa::amx,  kn::gemm_isa::avx512_vnni,  kn::gemm_isa::avx_vnni,
                                 kn::gemm_isa::avx512bw, kn::gemm_isa::avx2, kn::gemm_isa::neon_dotprod,
                                 kn::gemm_isa::neon, kn::gemm_isa::scalar};
    const kn::gemm_isa best = kn::gemm_best_isa();
    for (const dims3& s : int8_shapes()) {
        const std::string sh = shape_name(s);
        for (kn::gemm_isa isa : isas) {
            if (!kn::gemm_isa_available(isa)) continue;
            const std::string name = std::string("lowbit_s32/") + kn::to_string(isa) + "/" + sh;
            add(name, [name, s, isa](benchmark::State& st) { lowbit_s32_row(st, name, s, isa); });
        }
        const std::string rq = std::string("lowbit_s8_requant/") + kn::to_string(best) + "/" + sh;
        add(rq, [rq, s, best](benchmark::State& st) { lowbit_requant_row(st, rq, s, best); });
#if LOWBIT_BENCH_HAS_DNNL
        const std::string od = "onednn_s32/" + g_opt.onednn_max_isa + "/" + sh;
        add(od, [od, s](benchmark::State& st) { onednn_row(st, od, s); });
#endif
#if LOWBIT_BENCH_HAS_OPENBLAS
        add("openblas_sgemm/" + sh, [s](benchmark::State& st) { openblas_row(st, s, false); });
        if (s.m == 1) add("openblas_sgemv/" + sh, [s](benchmark::State& st) { openblas_row(st, s, true); });
#endif
    }
    for (const dims3& s : int4_shapes())
        for (std::size_t g : int4_groups)
            for (bool q8 : {false, true}) {
                const std::string name =
                    std::string(q8 ? "int4_q8" : "int4_f32") + "/g" + std::to_string(g) + "/" + shape_name(s);
                add(name, [name, s, g, q8](benchmark::State& st) { int4_row(st, name, s, g, q8); });
            }
}

}  // namespace

int main(int argc, char** argv) {
    // Our flags, taken out before Google Benchmark sees the rest.
    std::vector<char*> rest;
    for (int i = 0; i < argc; ++i) {
        const std::string arg = argv[i];
        if (i > 0 && arg.rfind("--onednn_max_isa=", 0) == 0) {
            g_opt.onednn_max_isa = arg.substr(std::strlen("--onednn_max_isa="));
        } else if (i > 0 && arg == "--smoke") {
            g_opt.smoke = true;
        } else {
            if (arg == "--help")
                std::printf("bench_gemm flags: --onednn_max_isa=<oneDNN cpu_isa name> (a separate process per limit), "
                            "--smoke (tiny shapes)\n");
            rest.push_back(argv[i]);
        }
    }
    int rest_argc = static_cast<int>(rest.size());
    rest.push_back(nullptr);
    benchmark::Initialize(&rest_argc, rest.data());
    if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;

    benchmark::AddCustomContext("lowbit_gemm_best_isa", kn::to_string(kn::gemm_best_isa()));
    benchmark::AddCustomContext("lowbit_int4_best_isa", kn::to_string(kn::int4_best_isa()));
    benchmark::AddCustomContext("bench_gemm_shapes", g_opt.smoke ? "smoke" : "full");
#if LOWBIT_BENCH_HAS_DNNL
    if (!setup_onednn()) return 1;
#else
    if (g_opt.onednn_max_isa != "default") {
        std::fprintf(stderr, "bench_gemm: built without oneDNN, --onednn_max_isa is meaningless\n");
        return 1;
    }
#endif
#if LOWBIT_BENCH_HAS_OPENBLAS
    openblas_set_num_threads(1);
    benchmark::AddCustomContext("openblas_config", openblas_get_config());
    benchmark::AddCustomContext("openblas_threads", std::to_string(openblas_get_num_threads()));
#endif
    register_rows();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
