// lowbit::mpi::allreduce under mpirun -n 1..4: sharded calibration (uneven shards, an empty
// shard, empty and one-element batches, shards with different ranges) gives every rank the
// state and qparams of one process that observed all the data - bit for bit, save() bytes
// included - for the exact observers (min/max, per-channel min/max, percentile / mse / entropy,
// fixed qparams, and torch's histogram when all shards share one range). For the order-dependent
// ones (moving averages, torch's histogram in general) every rank gets the library's merge() of
// the ranks' observers in rank order. Each rank computes every reference itself from the same
// deterministic data set. Also: allreduce_floats against a rank-order sum, and the bytes each
// call reports against the formulas documented in lowbit/mpi.hpp.
#include "mpi_test.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include <lowbit/mpi.hpp>
#include <lowbit/observers/entropy.hpp>
#include <lowbit/observers/fixed_qparams.hpp>
#include <lowbit/observers/histogram.hpp>
#include <lowbit/observers/minmax.hpp>
#include <lowbit/observers/mse.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>
#include <lowbit/observers/percentile.hpp>

namespace {

using mpitest::ctx;
using mpitest::owner;
using mpitest::same;
using batches_t = std::vector<std::vector<float>>;

using U8 = lowbit::scheme<lowbit::u8>;
using S8s = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>;
using U4 = lowbit::scheme<lowbit::u4>;

constexpr std::size_t record = 176;  // bytes of the record every call starts with (lowbit/mpi.hpp)

template <class Obs>
std::vector<std::uint8_t> saved(const Obs& o) {
    std::vector<std::uint8_t> v(o.state_size());
    (void)o.save(v);
    return v;
}

template <class Obs>
void observe_shard(Obs& o, const batches_t& data, int rank, bool empty_rank) {
    for (std::size_t b = 0; b < data.size(); ++b)
        if (rank < 0 || owner(b, ctx().size, empty_rank) == rank) (void)o.observe(lowbit::span<const float>(data[b]));
}

std::size_t shard_elements(const batches_t& data, int rank, bool empty_rank) {
    std::size_t n = 0;
    for (std::size_t b = 0; b < data.size(); ++b)
        if (owner(b, ctx().size, empty_rank) == rank) n += data[b].size();
    return n;
}

std::size_t nonempty_shards(const batches_t& data, bool empty_rank) {
    std::size_t n = 0;
    for (int r = 0; r < ctx().size; ++r) n += shard_elements(data, r, empty_rank) > 0 ? 1u : 0u;
    return n;
}

void print_bytes(const char* what, const lowbit::mpi::exchange_report& rep) {
    static bool header = false;
    if (ctx().rank != 0) return;
    if (!header) std::printf("%-44s %8s %10s  %s\n", "observer", "sent", "received", "method"), header = true;
    std::printf("%-44s %8zu %10zu  %s\n", what, rep.bytes_sent, rep.bytes_received, rep.method);
}

/// A per-tensor observer that is exact: sharded == one process, for both shardings.
/// `flagged`: the report knows it is exact (false for torch's histogram, which can be exact
/// without the report knowing it).
template <class Make>
void exact_per_tensor(const char* name, Make make, const batches_t& data, std::size_t sent, std::size_t received,
                      bool flagged = true) {
    for (const bool empty_rank : {false, true}) {
        auto ref = make();
        observe_shard(ref, data, -1, empty_rank);
        auto obs = make();
        observe_shard(obs, data, ctx().rank, empty_rank);
        const lowbit::mpi::exchange_report rep = *lowbit::mpi::allreduce(MPI_COMM_WORLD, obs);
        MT_CHECK(saved(obs) == saved(ref));
        MT_CHECK(same(*obs.qparams(), *ref.qparams()));
        MT_CHECK(obs.stats().count == ref.stats().count);
        MT_CHECK(rep.exact == (flagged || nonempty_shards(data, empty_rank) <= 1));
        MT_CHECK(rep.ranks == static_cast<std::size_t>(ctx().size));
        MT_CHECK(rep.bytes_sent == sent);
        MT_CHECK(rep.bytes_received == received);
        MT_CHECK(mpitest::same_on_all_ranks(saved(obs)));
        if (!empty_rank) print_bytes(name, rep);
    }
}

/// A per-tensor observer whose merge is order-dependent: every rank gets the library's merge()
/// of the ranks' observers in rank order (computed here from every rank's shard).
template <class Make>
void merged_per_tensor(const char* name, Make make, const batches_t& data, std::size_t sent, std::size_t received) {
    for (const bool empty_rank : {false, true}) {
        auto ref = make();
        for (int r = 0; r < ctx().size; ++r) {
            auto part = make();
            observe_shard(part, data, r, empty_rank);
            (void)ref.merge(part);
        }
        auto obs = make();
        observe_shard(obs, data, ctx().rank, empty_rank);
        const lowbit::mpi::exchange_report rep = *lowbit::mpi::allreduce(MPI_COMM_WORLD, obs);
        MT_CHECK(saved(obs) == saved(ref));
        MT_CHECK(same(*obs.qparams(), *ref.qparams()));
        MT_CHECK(rep.exact == (nonempty_shards(data, empty_rank) <= 1));
        MT_CHECK(rep.bytes_sent == sent);
        MT_CHECK(rep.bytes_received == received);
        MT_CHECK(mpitest::same_on_all_ranks(saved(obs)));
        if (!empty_rank) print_bytes(name, rep);
    }
}

/// [rows, C] batches (C channels along axis 1), channel c shifted by c / 2.
batches_t channel_batches(std::size_t C) {
    batches_t data = mpitest::make_batches(36, 11, C);
    for (auto& b : data)
        for (std::size_t i = 0; i < b.size(); ++i) b[i] += 0.5f * static_cast<float>(i % C);
    return data;
}

template <class Obs>
void observe_channels(Obs& o, const batches_t& data, std::size_t C, int rank, bool empty_rank) {
    for (std::size_t b = 0; b < data.size(); ++b)
        if (rank < 0 || owner(b, ctx().size, empty_rank) == rank)
            (void)o.observe(lowbit::shape{data[b].size() / C, C}, lowbit::span<const float>(data[b]));
}

template <class Obs>
std::vector<float> channel_qparams(const Obs& o, std::vector<std::int32_t>& zps) {
    std::vector<float> scales(o.channels());
    zps.assign(o.channels(), 0);
    (void)o.qparams(scales, zps);
    return scales;
}

void test_per_channel() {
    constexpr std::size_t C = 5;
    const batches_t data = channel_batches(C);
    const auto s = S8s{}.per_channel(1);
    const std::size_t p = static_cast<std::size_t>(ctx().size);
    for (const bool empty_rank : {false, true}) {
        // per-channel MinMax: exact
        std::vector<float> b_ref(2 * C), b_obs(2 * C);
        lowbit::per_channel_minmax_observer<decltype(s)> ref(s, C, b_ref), obs(s, C, b_obs);
        observe_channels(ref, data, C, -1, empty_rank);
        observe_channels(obs, data, C, ctx().rank, empty_rank);
        const auto rep = *lowbit::mpi::allreduce(MPI_COMM_WORLD, obs);
        MT_CHECK(saved(obs) == saved(ref));
        std::vector<std::int32_t> z_ref, z_obs;
        MT_CHECK(same(channel_qparams(obs, z_obs), channel_qparams(ref, z_ref)));
        MT_CHECK(z_obs == z_ref);
        MT_CHECK(rep.exact);
        MT_CHECK(rep.bytes_sent == record + 8 * C);
        MT_CHECK(rep.bytes_received == record * p + 8 * C);
        if (!empty_rank) print_bytes("per_channel_minmax (5 channels)", rep);

        // per-channel moving average: merge() in rank order, with the library's own merge
        std::vector<float> m_ref(2 * C), m_obs(2 * C), m_part(2 * C);
        lowbit::per_channel_moving_average_minmax_observer<decltype(s)> mref(s, C, m_ref, 0.25f),
            mobs(s, C, m_obs, 0.25f);
        for (int r = 0; r < ctx().size; ++r) {
            lowbit::per_channel_moving_average_minmax_observer<decltype(s)> part(s, C, m_part, 0.25f);
            observe_channels(part, data, C, r, empty_rank);
            (void)mref.merge(part);
        }
        observe_channels(mobs, data, C, ctx().rank, empty_rank);
        const auto mrep = *lowbit::mpi::allreduce(MPI_COMM_WORLD, mobs);
        MT_CHECK(saved(mobs) == saved(mref));
        MT_CHECK(same(channel_qparams(mobs, z_obs), channel_qparams(mref, z_ref)));
        MT_CHECK(z_obs == z_ref);
        MT_CHECK(mrep.exact == (nonempty_shards(data, empty_rank) <= 1));
        MT_CHECK(mrep.bytes_sent == record + 8 * C);
        MT_CHECK(mrep.bytes_received == (record + 8 * C) * p);
        MT_CHECK(mpitest::same_on_all_ranks(saved(mobs)));
        if (!empty_rank) print_bytes("per_channel_moving_average (5 channels)", mrep);
    }
}

/// Every batch holds the global min and max (so no shard's histogram range ever grows after its
/// first batch, and all shards share it): torch's histogram merges exactly.
batches_t common_range(batches_t data) {
    float lo = 0.0f, hi = 0.0f;
    for (const auto& b : data)
        for (float v : b) lo = std::min(lo, v), hi = std::max(hi, v);
    for (auto& b : data) {
        if (b.empty()) continue;
        if (b.size() < 2) b.resize(2);
        b[0] = lo;
        b[1] = hi;
    }
    return data;
}

void test_floats() {
    const std::size_t p = static_cast<std::size_t>(ctx().size);
    for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{1001}}) {
        for (const auto op : {lowbit::mpi::gradient_reduction::mean, lowbit::mpi::gradient_reduction::sum}) {
            std::vector<std::vector<float>> v(p, std::vector<float>(n));
            for (std::size_t r = 0; r < p; ++r) {
                std::mt19937 gen(static_cast<std::uint32_t>(100 + r));
                std::normal_distribution<float> d(0.0f, 1.0f);
                for (float& x : v[r]) x = d(gen);
            }
            std::vector<float> ref(n), mine = v[static_cast<std::size_t>(ctx().rank)];
            for (std::size_t i = 0; i < n; ++i) {
                double s = static_cast<double>(v[0][i]);
                for (std::size_t r = 1; r < p; ++r) s += static_cast<double>(v[r][i]);
                ref[i] =
                    static_cast<float>(op == lowbit::mpi::gradient_reduction::mean ? s / static_cast<double>(p) : s);
            }
            const auto rep = *lowbit::mpi::allreduce_floats(MPI_COMM_WORLD, mine, op);
            MT_CHECK(same(mine, ref));
            const std::size_t slice = n / p + (static_cast<std::size_t>(ctx().rank) < n % p ? 1 : 0);
            const std::size_t data_sent = n == 0 ? 0 : 4 * (n + slice);
            const std::size_t data_received = n == 0 ? 0 : 4 * (p * slice + n);
            MT_CHECK(rep.bytes_sent == record + data_sent);
            MT_CHECK(rep.bytes_received == record * p + data_received);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    mpitest::init(argc, argv);
    const std::size_t p = static_cast<std::size_t>(ctx().size);
    const batches_t data = mpitest::make_batches(48, 5);

    mpitest::section("shards", [&] {
        // the sharding the tests rely on: uneven, and with rank 1 empty in the second one
        for (const bool empty_rank : {false, true}) {
            std::size_t total = 0, all = 0;
            for (int r = 0; r < ctx().size; ++r) total += shard_elements(data, r, empty_rank);
            for (const auto& b : data) all += b.size();
            MT_CHECK(total == all);
            if (p >= 2) MT_CHECK((shard_elements(data, 1, empty_rank) == 0) == empty_rank);
            if (p >= 2 && !empty_rank)
                for (int r = 0; r < ctx().size; ++r) MT_CHECK(shard_elements(data, r, false) > 0);
        }
        if (p >= 3) MT_CHECK(shard_elements(data, 0, false) != shard_elements(data, 2, false));
    });

    mpitest::section("minmax", [&] {
        exact_per_tensor("minmax u8 affine", [] { return lowbit::minmax_observer<U8>{}; }, data, record, record * p);
        exact_per_tensor(
            "minmax s8 symmetric", [] { return lowbit::minmax_observer<S8s>{}; }, data, record, record * p);
        exact_per_tensor("minmax u4 affine", [] { return lowbit::minmax_observer<U4>{}; }, data, record, record * p);
    });

    mpitest::section("moving average", [&] {
        merged_per_tensor(
            "moving_average_minmax u8 (c = 0.1)", [] { return lowbit::moving_average_minmax_observer<U8>(U8{}, 0.1f); },
            data, record, record * p);
    });

    mpitest::section("per channel", [&] { test_per_channel(); });

    mpitest::section("exact histograms", [&] {
        const std::size_t b2048 = record + 8 * 2048, r2048 = record * p + 8 * 2048;
        exact_per_tensor("percentile s8 symmetric (2048 bins)",
                         [] { return lowbit::percentile_observer<S8s>(S8s{}, {99.9}); }, data, b2048, r2048);
        exact_per_tensor("percentile u8 affine (2048 bins)",
                         [] { return lowbit::percentile_observer<U8>(U8{}, {99.0}); }, data, b2048, r2048);
        exact_per_tensor("mse u8 affine (512 bins)", [] { return lowbit::mse_observer<U8, 512>{}; }, data,
                         record + 8 * 512, record * p + 8 * 512);
        exact_per_tensor(
            "entropy s8 symmetric (2048 bins)", [] { return lowbit::entropy_observer<S8s>{}; }, data, b2048, r2048);
        // nobody observed anything: still every rank's (empty) state, one record exchanged
        exact_per_tensor("percentile, no data", [] { return lowbit::percentile_observer<S8s>{}; }, batches_t(3), record,
                         record * p);
    });

    mpitest::section("fixed qparams", [&] {
        exact_per_tensor("fixed_qparams u8",
                         [] { return lowbit::fixed_qparams_observer<U8>(U8{}, lowbit::qparams{1.0f / 256.0f, 0}); },
                         data, record, record * p);
    });

    mpitest::section("torch histogram", [&] {
        const std::size_t S = 20 + 24 + 4 * 2048;
        // all shards share the global range from their first batch: exact
        exact_per_tensor("histogram u8 (2048 bins), common range", [] { return lowbit::histogram_observer<U8>{}; },
                         common_range(data), record + S, (record + S) * p, false);
        // in general: merge() in rank order on every rank
        merged_per_tensor("histogram u8 (2048 bins)", [] { return lowbit::histogram_observer<U8>{}; }, data, record + S,
                          (record + S) * p);
        merged_per_tensor("histogram u4 torch_1_13 (256 bins)",
                          [] { return lowbit::histogram_observer<U4, 256>(U4{}, lowbit::histogram_mode::torch_1_13); },
                          data, record + 20 + 24 + 4 * 256, (record + 20 + 24 + 4 * 256) * p);
    });

    mpitest::section("allreduce_floats", [&] { test_floats(); });

    return mpitest::finish("mpi_observer_tests");
}
