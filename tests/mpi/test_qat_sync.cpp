// lowbit::mpi::qat_sync under mpirun -n 1..4.
// Ranges: fake_quantize modules (moving average per tensor, MinMax per tensor, moving average
// per channel) each observe one micro-batch per rank per step (uneven sizes, empty ones, a step
// where every rank is empty); after step() every rank's observer state (save() bytes) and qparams
// equal one process that observed the concatenated global batch of each step - bit for bit,
// which lowbit/mpi.hpp argues from the monotonicity of the moving-average update.
// Gradients: LSQ per tensor (LSQ+, learned zero point), LSQ per channel, PACT, and a plain
// buffer. With dyadic data (every per-element term and every partial sum exact) the reduced
// gradient equals the single process's gradient of the concatenated batch bit for bit: the
// sum G itself, the mean f32(G / p). With random data: the same bits on every rank, and within
// the float rounding of the ranks' partial sums of f32(G / p).
#include "mpi_test.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include <lowbit/mpi.hpp>
#include <lowbit/observers/minmax.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>
#include <lowbit/quant/fake_quantize.hpp>
#include <lowbit/quant/learnable.hpp>
#include <lowbit/quant/pact.hpp>

namespace {

using mpitest::ctx;
using mpitest::same;
using lowbit::span;

using U8 = lowbit::scheme<lowbit::u8>;
using S8s = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>;
using MA = lowbit::moving_average_minmax_observer<U8>;
using MM = lowbit::minmax_observer<S8s>;
using PCMA = lowbit::per_channel_moving_average_minmax_observer<S8s>;

constexpr std::size_t record = 176;
constexpr std::size_t C = 4;  // channels of the per-channel modules

template <class Obs>
std::vector<std::uint8_t> saved(const Obs& o) {
    std::vector<std::uint8_t> v(o.state_size());
    (void)o.save(v);
    return v;
}

std::size_t pint(int v) { return static_cast<std::size_t>(v); }

/// Rows of rank r's micro-batch at step t (0 for some; every rank 0 at step 4).
std::size_t rows(std::size_t t, std::size_t r) {
    if (t == 4 || (t + 2 * r) % 4 == 0) return 0;
    return 3 + (t * 3 + r * 5) % 11;
}

/// Rank r's micro-batch at step t: rows(t, r) x C floats, normal with a scale that varies by step.
std::vector<float> micro_batch(std::size_t t, std::size_t r) {
    std::mt19937 gen(static_cast<std::uint32_t>(1000 + 17 * t + r));
    std::normal_distribution<float> d(0.25f * static_cast<float>(t % 3), 0.5f + static_cast<float>(t % 4));
    std::vector<float> x(rows(t, r) * C);
    for (float& v : x) v = d(gen);
    return x;
}

struct modules {
    std::vector<float> pc_state = std::vector<float>(2 * C), pc_scales = std::vector<float>(C);
    std::vector<std::int32_t> pc_zps = std::vector<std::int32_t>(C);
    lowbit::fake_quantize<U8, MA> ma{MA(U8{}, 0.25f)};
    lowbit::fake_quantize<S8s, MM> mm{MM{}};
    lowbit::fake_quantize<S8s, PCMA> pc{PCMA(S8s{}.per_channel(1), C, pc_state, 0.25f), pc_scales, pc_zps};

    void forward(const std::vector<float>& x) {
        std::vector<float> y(x.size());
        (void)ma.forward(x, y);
        (void)mm.forward(x, y);
        (void)pc.forward(lowbit::shape{x.size() / C, C}, x, y);
    }
};

void test_ranges() {
    const std::size_t p = pint(ctx().size), me = pint(ctx().rank);
    modules ref, mine;  // ref: one process, the concatenated batch of each step
    lowbit::mpi::qat_sync sync(MPI_COMM_WORLD);
    sync.add(mine.ma).add(mine.mm).add(mine.pc);
    MT_CHECK(sync.range_modules() == 3);
    for (std::size_t t = 0; t < 7; ++t) {
        std::vector<float> global;
        for (std::size_t r = 0; r < p; ++r) {
            const std::vector<float> x = micro_batch(t, r);
            global.insert(global.end(), x.begin(), x.end());
        }
        ref.forward(global);
        mine.forward(micro_batch(t, me));
        const lowbit::mpi::step_report rep = *sync.step();
        MT_CHECK(rep.ranges_exact);
        MT_CHECK(rep.ranges_updated == (global.empty() ? 0u : 3u));
        MT_CHECK(saved(mine.ma.observer()) == saved(ref.ma.observer()));
        MT_CHECK(saved(mine.mm.observer()) == saved(ref.mm.observer()));
        MT_CHECK(saved(mine.pc.observer()) == saved(ref.pc.observer()));
        MT_CHECK(same(mine.ma.qparams(), ref.ma.qparams()));
        MT_CHECK(same(mine.mm.qparams(), ref.mm.qparams()));
        MT_CHECK(same(std::vector<float>(mine.pc_scales), std::vector<float>(ref.pc_scales)));
        MT_CHECK(mine.pc_zps == ref.pc_zps);
        // documented cost: the record, then one allgather of 40 + 8 C bytes per module
        const std::size_t range_bytes = (40 + 8) + (40 + 8) + (40 + 8 * C);
        MT_CHECK(rep.bytes_sent == record + range_bytes);
        MT_CHECK(rep.bytes_received == (record + range_bytes) * p);
        MT_CHECK(rep.gradient_values == 0);
    }
    MT_CHECK(ref.ma.observer().stats().batches > 3);  // the steps did observe

    // two batches on rank 0 in one step: a moving average is no longer one process's, but every
    // rank still gets the same bits (and the report says so); MinMax stays exact
    modules two;
    lowbit::mpi::qat_sync sync2(MPI_COMM_WORLD);
    sync2.add(two.ma).add(two.mm);
    modules ref2;
    std::vector<float> all0;
    for (std::size_t r = 0; r < p; ++r) {
        const std::vector<float> x = micro_batch(1, r);
        all0.insert(all0.end(), x.begin(), x.end());
    }
    ref2.forward(all0);
    two.forward(micro_batch(1, me));
    if (me == 0) two.forward(micro_batch(2, 0));
    const lowbit::mpi::step_report rep2 = *sync2.step();
    MT_CHECK(!rep2.ranges_exact);
    MT_CHECK(mpitest::same_on_all_ranks(saved(two.ma.observer())));
    MT_CHECK(mpitest::same_on_all_ranks(saved(two.mm.observer())));
    MT_CHECK(two.ma.observer().stats().batches == 2);  // the most one rank observed

    // MinMax alone: still exact (min / max are associative) - equal to one process that observed
    // the concatenated first batches, then rank 0's second one
    modules three;
    lowbit::mpi::qat_sync sync3(MPI_COMM_WORLD);
    sync3.add(three.mm);
    three.forward(micro_batch(1, me));
    if (me == 0) three.forward(micro_batch(2, 0));
    const lowbit::mpi::step_report rep3 = *sync3.step();
    ref2.forward(micro_batch(2, 0));
    MT_CHECK(rep3.ranges_exact);
    MT_CHECK(saved(three.mm.observer()) == saved(ref2.mm.observer()));
    MT_CHECK(same(three.mm.qparams(), ref2.mm.qparams()));
}

/// k / 2^e for an integer k in [lo, hi].
float dyadic(std::mt19937& gen, int lo, int hi, int e) {
    const int k = lo + static_cast<int>(gen() % static_cast<std::uint32_t>(hi - lo + 1));
    return std::ldexp(static_cast<float>(k), -e);
}

struct quantizers {
    std::vector<float> scales{0.125f, 0.25f, 0.0625f, 0.5f},
        zps = std::vector<float>(C), dscales = std::vector<float>(C), dzps = std::vector<float>(C);
    std::vector<float> buffer = std::vector<float>(7);
    lowbit::lsq_quantizer<U8> lsq{U8{}, 0.125f, true};
    lowbit::lsq_channel_quantizer<S8s> lsq_c;
    lowbit::pact_quantizer<U8> pact{U8{}, 2.0f};

    quantizers() {
        lsq.grad_scaling = false;
        lsq.zero_point = 3.0f;
        lsq_c.scheme = S8s{}.per_channel(1);
        lsq_c.scales = scales;
        lsq_c.zero_points = zps;
        lsq_c.dscales = dscales;
        lsq_c.dzero_points = dzps;
        lsq_c.grad_scaling = false;
        lsq_c.learn_zero_point = true;
    }
    void register_with(lowbit::mpi::qat_sync& s) { s.add(lsq).add(lsq_c).add(pact).add_gradient(buffer); }

    // forward + backward of x (rows x C) with upstream gradient dy
    void run(const std::vector<float>& x, const std::vector<float>& dy) {
        std::vector<float> y(x.size()), dx(x.size());
        const lowbit::shape shp{x.size() / C, C};
        (void)lsq.forward(x, y);
        (void)lsq.backward(x, dy, dx);
        (void)lsq_c.forward(shp, x, y);
        (void)lsq_c.backward(shp, x, dy, dx);
        (void)pact.forward(x, y);
        (void)pact.backward(x, dy, dx);
    }
    std::vector<float> grads() const {
        std::vector<float> g{lsq.dscale, lsq.dzero_point, lsq.dlog_scale, pact.dalpha};
        g.insert(g.end(), dscales.begin(), dscales.end());
        g.insert(g.end(), dzps.begin(), dzps.end());
        return g;
    }
};

/// Rank r's shard for the gradient tests: uneven rows, rank 1 empty when there are >= 2 ranks.
std::size_t grad_rows(std::size_t r, std::size_t p) { return (p >= 2 && r == 1) ? 0 : 20 + 13 * r; }

void shard(std::size_t r, bool dyadic_data, std::vector<float>& x, std::vector<float>& dy) {
    std::mt19937 gen(static_cast<std::uint32_t>(77 + r));
    std::normal_distribution<float> nx(10.0f, 12.0f), ndy(0.0f, 1.0f);
    x.resize(grad_rows(r, pint(ctx().size)) * C);
    dy.resize(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        x[i] = dyadic_data ? dyadic(gen, -128, 2560, 6) : nx(gen);  // [-2, 40]: clipped at both ends
        dy[i] = dyadic_data ? dyadic(gen, -32, 32, 4) : ndy(gen);
    }
}

std::vector<float> buffer_of(std::size_t r) {
    std::mt19937 gen(static_cast<std::uint32_t>(500 + r));
    std::normal_distribution<float> d(0.0f, 3.0f);
    std::vector<float> b(7);
    for (float& v : b) v = d(gen);
    return b;
}

void test_gradients(bool dyadic_data, lowbit::mpi::gradient_reduction op) {
    const std::size_t p = pint(ctx().size), me = pint(ctx().rank);
    const bool mean = op == lowbit::mpi::gradient_reduction::mean;
    // one process: the concatenated batch
    quantizers ref;
    std::vector<float> x_all, dy_all;
    std::vector<std::vector<float>> part_grads;  // each rank's own gradients (for the bound)
    for (std::size_t r = 0; r < p; ++r) {
        std::vector<float> x, dy;
        shard(r, dyadic_data, x, dy);
        x_all.insert(x_all.end(), x.begin(), x.end());
        dy_all.insert(dy_all.end(), dy.begin(), dy.end());
        quantizers part;
        part.run(x, dy);
        part_grads.push_back(part.grads());
    }
    ref.run(x_all, dy_all);
    std::vector<float> expect = ref.grads();
    for (float& g : expect) g = mean ? static_cast<float>(static_cast<double>(g) / static_cast<double>(p)) : g;
    std::vector<float> expect_buffer(7);
    for (std::size_t i = 0; i < 7; ++i) {
        double s = static_cast<double>(buffer_of(0)[i]);
        for (std::size_t r = 1; r < p; ++r) s += static_cast<double>(buffer_of(r)[i]);
        expect_buffer[i] = static_cast<float>(mean ? s / static_cast<double>(p) : s);
    }

    quantizers q;
    lowbit::mpi::qat_sync sync(MPI_COMM_WORLD, op);
    q.register_with(sync);
    std::vector<float> x, dy;
    shard(me, dyadic_data, x, dy);
    q.run(x, dy);
    const std::vector<float> mine_buffer = buffer_of(me);
    std::copy(mine_buffer.begin(), mine_buffer.end(), q.buffer.begin());  // in place: sync holds a span of it
    const lowbit::mpi::step_report rep = *sync.step();
    const std::vector<float> got = q.grads();

    MT_CHECK(same(q.buffer, expect_buffer));  // any data: the rank-order sum, exactly
    std::vector<std::uint8_t> bytes(got.size() * 4);
    std::memcpy(bytes.data(), got.data(), bytes.size());
    MT_CHECK(mpitest::same_on_all_ranks(bytes));
    if (dyadic_data) {
        MT_CHECK(same(got, expect));
        MT_CHECK(got[0] != 0.0f && got[1] != 0.0f && got[3] != 0.0f);  // the gradients are not trivial
    } else {
        for (std::size_t i = 0; i < got.size(); ++i) {
            double spread = std::fabs(static_cast<double>(expect[i]) * static_cast<double>(mean ? p : 1));
            for (const auto& g : part_grads) spread += std::fabs(static_cast<double>(g[i]));
            const double bound = std::ldexp(spread, -22) / static_cast<double>(mean ? p : 1) + 1e-30;
            MT_CHECK(std::fabs(static_cast<double>(got[i]) - static_cast<double>(expect[i])) <= bound);
        }
    }
    // documented cost: the record, then a reduce-scatter + allgather of n floats
    const std::size_t n = 3 + 2 * C + 1 + 7;
    const std::size_t slice = n / p + (me < n % p ? 1 : 0);
    MT_CHECK(rep.gradient_values == n);
    MT_CHECK(rep.bytes_sent == record + 4 * (n + slice));
    MT_CHECK(rep.bytes_received == record * p + 4 * (p * slice + n));
}

}  // namespace

int main(int argc, char** argv) {
    mpitest::init(argc, argv);
    mpitest::section("ranges", [] { test_ranges(); });
    mpitest::section("gradients, dyadic, mean", [] { test_gradients(true, lowbit::mpi::gradient_reduction::mean); });
    mpitest::section("gradients, dyadic, sum", [] { test_gradients(true, lowbit::mpi::gradient_reduction::sum); });
    mpitest::section("gradients, random, mean", [] { test_gradients(false, lowbit::mpi::gradient_reduction::mean); });
    mpitest::section("gradients, random, sum", [] { test_gradients(false, lowbit::mpi::gradient_reduction::sum); });
    return mpitest::finish("mpi_qat_tests");
}
