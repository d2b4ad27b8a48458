// tests/threads: lowbit's kernels used from several std::threads at once, and the GEMM's
// determinism across thread counts (issue 11).
//
// What may be shared across threads (see README.md here):
//   - kernels (lowbit::ref, lowbit::kernels: quantize, dequantize, fake_quantize, requantize,
//     gemm, gemm_int4, quantize_q8, pack_*) are stateless functions: call them from any number
//     of threads on shared read-only inputs (x, qparams, multipliers, packed weights) as long as
//     each thread writes its own outputs. The only process-wide state is the CPU feature
//     detection (kernels::cpu(), a function-local static: initialised once, thread-safe).
//   - packed weights (kernels::packed_weights, pack_int4 buffers) are read-only views: share them.
//   - observers are not synchronised: one observer per thread, then merge() them (or save()
//     and load() across processes). min/max and the exact-histogram observers (percentile,
//     MSE, entropy) merge to exactly the single-observer state, in any order.
// Every check here compares bits with a single-threaded run of the same call; the threads
// only write their own buffers, and results are compared after join(). The same file is built
// with -fsanitize=thread by tests/fuzz/run.sh (target threads_tsan), where any data race fails.
#include "lowbit_catch.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include <lowbit/core/gemm.hpp>
#include <lowbit/kernels/fake_quantize.hpp>
#include <lowbit/kernels/gemm.hpp>
#include <lowbit/kernels/gemm_int4.hpp>
#include <lowbit/kernels/gemm_parallel.hpp>
#include <lowbit/kernels/quantize.hpp>
#include <lowbit/kernels/requantize.hpp>
#include <lowbit/observers/minmax.hpp>
#include <lowbit/observers/percentile.hpp>

namespace {

constexpr std::size_t thread_count = 4;
constexpr int rounds = 3;  // each thread repeats its calls, interleaving with the others

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// Values with rounding ties, specials and noise (deterministic).
std::vector<float> inputs(std::size_t n, float scale, std::uint32_t seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> noise(0.0f, 50.0f * scale);
    const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), -0.0f, 1e-40f, 3e38f};
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned r = gen() % 16;
        x[i] = r == 0 ? specials[gen() % 6] : r < 4 ? (static_cast<float>(gen() % 300) - 150.5f) * scale : noise(gen);
    }
    return x;
}

// Runs body(t) on thread_count threads (t = 0 .. thread_count - 1) at once.
template <class Body>
void on_threads(Body body) {
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < thread_count; ++t) pool.emplace_back([&body, t] { body(t); });
    for (auto& th : pool) th.join();
}

// Per-thread results of `call(out)` equal the single-threaded one.
template <class T, class Call>
void concurrent_equals_single(std::size_t out_size, Call call) {
    std::vector<T> single(out_size);
    REQUIRE(call(single).ok());
    std::vector<std::vector<T>> outs(thread_count, std::vector<T>(out_size));
    std::vector<int> ok(thread_count, 1);
    on_threads([&](std::size_t t) {
        for (int r = 0; r < rounds; ++r) {
            std::vector<T>& o = outs[t];
            ok[t] = ok[t] && call(o).ok();
        }
    });
    for (std::size_t t = 0; t < thread_count; ++t) {
        INFO("thread " << t);
        CHECK(ok[t] == 1);
        CHECK(same_bits(outs[t], single));
    }
}

// A GEMM problem: u8 A (M x K, zero point 128 - 7), s8 B [N, K] with per-channel zero points.
struct gemm_problem {
    std::size_t m, n, k;
    std::vector<std::uint8_t> a;
    std::vector<std::int8_t> b;
    std::vector<std::int32_t> zb, bias;
    std::vector<lowbit::quantized_multiplier> mult;
    std::vector<float> fmult, scales, fbias;
    std::vector<std::uint8_t> packed_buf;
    lowbit::kernels::packed_weights w;

    gemm_problem(std::size_t m_, std::size_t n_, std::size_t k_, std::uint32_t seed) : m(m_), n(n_), k(k_) {
        std::mt19937 gen(seed);
        a.resize(m * k);
        b.resize(n * k);
        for (auto& v : a) v = static_cast<std::uint8_t>(gen());
        for (auto& v : b) v = static_cast<std::int8_t>(static_cast<std::uint8_t>(gen()));
        for (std::size_t i = 0; i < n; ++i) {
            zb.push_back(static_cast<std::int32_t>(gen() % 9) - 4);
            bias.push_back(static_cast<std::int32_t>(gen() % 20001) - 10000);
            mult.push_back({static_cast<std::int32_t>((1u << 30) + gen() % (1u << 30)), -static_cast<int>(8 + gen() % 6)});
            fmult.push_back(1.0f / static_cast<float>(2000 + gen() % 9000));
            scales.push_back(1.0f / static_cast<float>(1 + gen() % 5000));
            fbias.push_back(static_cast<float>(static_cast<int>(gen() % 2001) - 1000) / 64.0f);
        }
        packed_buf.resize(lowbit::kernels::packed_size(n, k));
        w = *lowbit::kernels::pack_weights(bview(), n, k, packed_buf);
    }
    lowbit::gemm_a<std::uint8_t> aview() const { return {a, k, 121}; }
    lowbit::gemm_b bview() const { return {b, k, lowbit::weight_layout::n_by_k, zb}; }
    lowbit::gemm_dims dims() const { return {m, n, k}; }
    lowbit::requantize_params rq() const {
        lowbit::requantize_params p;
        p.multipliers = mult;
        p.bias = bias;
        p.zero_point = -3;
        p.clamp_min = -100;
        return p;
    }
    lowbit::requantize_float_params rqf() const {
        lowbit::requantize_float_params p;
        p.multipliers = fmult;
        p.bias = bias;
        p.zero_point = 5;
        return p;
    }
};

}  // namespace

TEST_CASE("elementwise kernels on shared inputs from several threads equal one thread", "[threads]") {
    const std::size_t n = 10007;
    const float scale = 0.037f;
    const std::vector<float> x = inputs(n, scale, 1);
    const std::vector<float> dy = inputs(n, 1.0f, 2);
    const auto u8 = lowbit::scheme<lowbit::u8>{};
    const auto s4 = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>{};
    const lowbit::qparams qp{scale, 131};
    const lowbit::qparams qp4{scale * 9.0f, 0};
    SECTION("quantize u8 and s4") {
        concurrent_equals_single<std::uint8_t>(n, [&](std::vector<std::uint8_t>& q) {
            return lowbit::kernels::quantize(u8, qp, x, q);
        });
        concurrent_equals_single<std::uint8_t>((n + 1) / 2, [&](std::vector<std::uint8_t>& q) {
            return lowbit::kernels::quantize(s4, qp4, x, q);
        });
    }
    SECTION("fake_quantize with mask and its backward") {
        concurrent_equals_single<float>(2 * n, [&](std::vector<float>& out) {
            std::vector<std::uint8_t> mask(n);
            const lowbit::status s = lowbit::kernels::fake_quantize(u8, qp, x, lowbit::span<float>(out.data(), n), mask);
            if (!s.ok()) return s;
            return lowbit::kernels::fake_quantize_backward_masked(mask, dy, lowbit::span<float>(out.data() + n, n));
        });
    }
    SECTION("requantize per channel") {
        std::vector<std::int32_t> acc(n);
        std::mt19937 gen(3);
        for (auto& v : acc) v = static_cast<std::int32_t>(gen());
        const std::vector<lowbit::quantized_multiplier> m = {{1 << 30, -20}, {1717986918, -9}, {2000000000, -25}};
        const std::vector<std::int32_t> bias = {5, -7000, 123456};
        lowbit::requantize_params p;
        p.multipliers = m;
        p.bias = bias;
        p.zero_point = 3;
        const auto s8 = lowbit::scheme<lowbit::s8>{}.per_channel(1);
        const lowbit::shape shp{n / 3, 3};
        concurrent_equals_single<std::int8_t>(n / 3 * 3, [&](std::vector<std::int8_t>& out) {
            return lowbit::kernels::requantize(s8, shp, p, lowbit::span<const std::int32_t>(acc.data(), n / 3 * 3), out);
        });
    }
}

TEST_CASE("gemm on shared packed weights from several threads equals one thread", "[threads]") {
    const gemm_problem g(37, 70, 300, 4);
    SECTION("int32") {
        concurrent_equals_single<std::int32_t>(g.m * g.n, [&](std::vector<std::int32_t>& c) {
            return lowbit::kernels::gemm(g.dims(), g.aview(), g.w, c, g.n);
        });
    }
    SECTION("requantized s8, fixed point and float multipliers") {
        const auto s8 = lowbit::scheme<lowbit::s8>{};
        concurrent_equals_single<std::int8_t>(g.m * g.n, [&](std::vector<std::int8_t>& c) {
            return lowbit::kernels::gemm(g.dims(), g.aview(), g.w, s8, g.rq(), c, g.n);
        });
        concurrent_equals_single<std::int8_t>(g.m * g.n, [&](std::vector<std::int8_t>& c) {
            return lowbit::kernels::gemm(g.dims(), g.aview(), g.w, s8, g.rqf(), c, g.n);
        });
    }
    SECTION("dequantized f32") {
        const lowbit::gemm_dequantize_params dp{g.scales, g.fbias};
        concurrent_equals_single<float>(g.m * g.n, [&](std::vector<float>& c) {
            return lowbit::kernels::gemm(g.dims(), g.aview(), g.w, dp, c, g.n);
        });
    }
}

TEST_CASE("gemm_int4 on shared packed weights from several threads equals one thread", "[threads]") {
    const std::size_t m = 3, n = 48, k = 256, group = 64;
    std::mt19937 gen(5);
    std::vector<std::uint8_t> data(n * k / 2);
    for (auto& v : data) v = static_cast<std::uint8_t>(gen());
    std::vector<float> wscales(n * (k / group));
    for (auto& s : wscales) s = static_cast<float>(1 + gen() % 100) / 512.0f;
    lowbit::int4_weights w{lowbit::format_id::s4, n, k, group, data, wscales, {}, {}};
    std::vector<std::uint8_t> packed(lowbit::kernels::packed_int4_size(w));
    REQUIRE(lowbit::kernels::pack_int4(w, packed).ok());
    std::vector<float> a = inputs(m * k, 0.01f, 6);
    for (auto& v : a)
        if (!(v - v == 0.0f) || v > 1e6f || v < -1e6f) v = 0.5f;  // finite activations
    std::vector<float> bias(n, 0.25f);
    SECTION("f32 activations") {
        concurrent_equals_single<float>(m * n, [&](std::vector<float>& y) {
            return lowbit::kernels::gemm_int4_f32(packed, a, m, k, bias, y, n);
        });
    }
    SECTION("q8 activations, quantized in each thread") {
        concurrent_equals_single<float>(m * n, [&](std::vector<float>& y) {
            std::vector<std::int8_t> q(m * k);
            std::vector<float> d(m * k / 32);
            std::vector<std::int32_t> sums(m * k / 32);
            const lowbit::q8_activations_buffer xq{m, k, q, d, sums};
            const lowbit::status s = lowbit::kernels::quantize_q8(a, m, k, k, xq);
            if (!s.ok()) return s;
            return lowbit::kernels::gemm_int4_q8(packed, xq.view(), bias, y, n);
        });
    }
}

TEST_CASE("observers, one per thread, merged equal one observer over all batches", "[threads]") {
    const std::size_t per = 5000;
    const std::vector<float> x = [&] {
        std::vector<float> v = inputs(thread_count * per, 0.01f, 7);
        for (auto& f : v)
            if (!(f - f == 0.0f) || f > 1e6f || f < -1e6f) f = -0.25f;  // observers refuse non-finite data
        return v;
    }();
    const auto s8 = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>{};
    lowbit::minmax_observer<decltype(s8)> one_mm(s8);
    lowbit::percentile_observer<decltype(s8), 256> one_pc(s8, {99.9});
    for (std::size_t t = 0; t < thread_count; ++t) {
        const lowbit::span<const float> part(x.data() + t * per, per);
        REQUIRE(one_mm.observe(part).ok());
        REQUIRE(one_pc.observe(part).ok());
    }
    std::vector<lowbit::minmax_observer<decltype(s8)>> mm(thread_count, lowbit::minmax_observer<decltype(s8)>(s8));
    std::vector<lowbit::percentile_observer<decltype(s8), 256>> pc(
        thread_count, lowbit::percentile_observer<decltype(s8), 256>(s8, {99.9}));
    std::vector<int> ok(thread_count, 1);
    on_threads([&](std::size_t t) {
        const lowbit::span<const float> part(x.data() + t * per, per);
        ok[t] = mm[t].observe(part).ok() && pc[t].observe(part).ok();
    });
    for (std::size_t t = 1; t < thread_count; ++t) {
        CHECK(ok[t] == 1);
        REQUIRE(mm[0].merge(mm[t]).ok());
        REQUIRE(pc[0].merge(pc[t]).ok());
    }
    std::vector<std::uint8_t> a(one_mm.state_size()), b(one_mm.state_size());
    REQUIRE(one_mm.save(a).ok());
    REQUIRE(mm[0].save(b).ok());
    CHECK(a == b);
    std::vector<std::uint8_t> c(one_pc.state_size()), d(one_pc.state_size());
    REQUIRE(one_pc.save(c).ok());
    REQUIRE(pc[0].save(d).ok());
    CHECK(c == d);
    CHECK(*one_pc.qparams() == *pc[0].qparams());
}

// Determinism across thread counts: gemm_parallel splits along N (M = 1, many panels) or
// along M (few panels); every split must give the bits of ref::gemm.
TEST_CASE("gemm_parallel gives identical bits for 1 to 4 threads", "[threads][determinism]") {
    const std::size_t shapes[][3] = {{1, 200, 300}, {37, 20, 129}, {64, 96, 64}, {5, 3, 1000}};
    for (const auto& sh : shapes) {
        const gemm_problem g(sh[0], sh[1], sh[2], static_cast<std::uint32_t>(sh[0] * 7 + sh[1]));
        INFO("M N K = " << g.m << " " << g.n << " " << g.k);
        const auto s8 = lowbit::scheme<lowbit::s8>{};
        const lowbit::gemm_dequantize_params dp{g.scales, g.fbias};
        std::vector<std::int32_t> ref32(g.m * g.n);
        std::vector<std::int8_t> ref8(g.m * g.n), ref8f(g.m * g.n);
        std::vector<float> reff(g.m * g.n);
        REQUIRE(lowbit::ref::gemm(g.dims(), g.aview(), g.bview(), ref32, g.n).ok());
        REQUIRE(lowbit::ref::gemm(g.dims(), g.aview(), g.bview(), s8, g.rq(), ref8, g.n).ok());
        REQUIRE(lowbit::ref::gemm(g.dims(), g.aview(), g.bview(), s8, g.rqf(), ref8f, g.n).ok());
        REQUIRE(lowbit::ref::gemm(g.dims(), g.aview(), g.bview(), dp, reff, g.n).ok());
        for (std::size_t threads = 1; threads <= 4; ++threads) {
            INFO("threads " << threads);
            std::vector<std::int32_t> c32(g.m * g.n);
            std::vector<std::int8_t> c8(g.m * g.n), c8f(g.m * g.n);
            std::vector<float> cf(g.m * g.n);
            const auto opt = [](const lowbit::kernels::gemm_range& r) { return lowbit::kernels::gemm_options{lowbit::kernels::gemm_isa::best, r}; };
            REQUIRE(lowbit::kernels::gemm_parallel(threads, g.m, g.n, [&](const lowbit::kernels::gemm_range& r) {
                        return lowbit::kernels::gemm(g.dims(), g.aview(), g.w, c32, g.n, opt(r));
                    }).ok());
            REQUIRE(lowbit::kernels::gemm_parallel(threads, g.m, g.n, [&](const lowbit::kernels::gemm_range& r) {
                        return lowbit::kernels::gemm(g.dims(), g.aview(), g.w, s8, g.rq(), c8, g.n, opt(r));
                    }).ok());
            REQUIRE(lowbit::kernels::gemm_parallel(threads, g.m, g.n, [&](const lowbit::kernels::gemm_range& r) {
                        return lowbit::kernels::gemm(g.dims(), g.aview(), g.w, s8, g.rqf(), c8f, g.n, opt(r));
                    }).ok());
            REQUIRE(lowbit::kernels::gemm_parallel(threads, g.m, g.n, [&](const lowbit::kernels::gemm_range& r) {
                        return lowbit::kernels::gemm(g.dims(), g.aview(), g.w, dp, cf, g.n, opt(r));
                    }).ok());
            CHECK(c32 == ref32);
            CHECK(c8 == ref8);
            CHECK(c8f == ref8f);
            CHECK(same_bits(cf, reff));
        }
    }
}
