// lowbit::mpi errors under mpirun -n 1..4: a rank with a mismatched observer (scheme, type, bins,
// channels, method options), a rank that cannot take part (bad state buffer), ranks calling
// different lowbit::mpi functions, different value counts, different qat_sync registrations or
// out-of-sync modules: EVERY rank gets a lowbit::error naming the argument, the rank and the
// values - and nobody hangs (the ctest has a TIMEOUT). After each error the communicator is still
// in step: a matching allreduce right after succeeds on every rank. The observer is unchanged.
#include "mpi_test.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <lowbit/mpi.hpp>
#include <lowbit/observers/histogram.hpp>
#include <lowbit/observers/minmax.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>
#include <lowbit/observers/percentile.hpp>
#include <lowbit/quant/fake_quantize.hpp>
#include <lowbit/quant/pact.hpp>

namespace {

using mpitest::ctx;
using U8 = lowbit::scheme<lowbit::u8>;
using S8s = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>;

/// After an error: every rank can still run a matching collective (nobody is stuck in one).
void still_in_step() {
    lowbit::minmax_observer<U8> o;
    const float v = static_cast<float>(ctx().rank);
    (void)o.observe(lowbit::span<const float>(&v, 1));
    (void)lowbit::mpi::allreduce(MPI_COMM_WORLD, o);
    MT_CHECK(o.stats().min == 0.0f);
    MT_CHECK(o.stats().max == static_cast<float>(ctx().size - 1));
}

/// f() must throw a lowbit::error on this rank whose message holds every needle.
template <class F>
void expect_error(const char* name, const std::vector<std::string>& needles, F&& f) {
    bool threw = false;
    std::string msg;
    try {
        f();
    } catch (const lowbit::error& e) {
        threw = true;
        msg = e.what();
    }
    MT_CHECK(threw);
    for (const std::string& n : needles)
        if (!MT_CHECK(msg.find(n) != std::string::npos))
            std::fprintf(stderr, "[rank %d] %s: '%s' not in: %s\n", ctx().rank, name, n.c_str(), msg.c_str());
    if (ctx().rank == 0) std::printf("%s:\n  %s\n", name, msg.c_str());
    still_in_step();
}

std::vector<std::uint8_t> saved(const lowbit::minmax_observer<U8>& o) {
    std::vector<std::uint8_t> v(o.state_size());
    (void)o.save(v);
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    mpitest::init(argc, argv);
    const int p = ctx().size, last = p - 1;
    const bool many = p >= 2;
    const std::string last_rank = "on rank " + std::to_string(last) + " of " + std::to_string(p);
    const float data[4] = {-1.0f, 0.5f, 2.0f, static_cast<float>(ctx().rank)};

    if (many) {
        mpitest::section("scheme mismatch", [&] {
            const U8 s = ctx().rank == last ? U8{}.with_range(0, 127) : U8{};
            lowbit::minmax_observer<U8> o(s);
            (void)o.observe(lowbit::span<const float>(data));
            const std::vector<std::uint8_t> before = saved(o);
            expect_error("scheme mismatch", {"'observer.config()'", last_rank, "rank 0's", "same configuration"},
                         [&] { (void)lowbit::mpi::allreduce(MPI_COMM_WORLD, o); });
            MT_CHECK(saved(o) == before);  // unchanged on error
        });
        mpitest::section("observer type mismatch", [&] {
            lowbit::minmax_observer<U8> mm;
            lowbit::moving_average_minmax_observer<U8> ma;
            expect_error("observer type mismatch", {"'observer kind'", "moving_average_minmax", last_rank}, [&] {
                if (ctx().rank == last) (void)lowbit::mpi::allreduce(MPI_COMM_WORLD, ma);
                else (void)lowbit::mpi::allreduce(MPI_COMM_WORLD, mm);
            });
        });
        mpitest::section("bins mismatch", [&] {
            lowbit::histogram_observer<U8, 2048> h2048;
            lowbit::histogram_observer<U8, 1024> h1024;
            expect_error("bins mismatch", {"'observer.config()'", last_rank}, [&] {
                if (ctx().rank == last) (void)lowbit::mpi::allreduce(MPI_COMM_WORLD, h1024);
                else (void)lowbit::mpi::allreduce(MPI_COMM_WORLD, h2048);
            });
        });
        mpitest::section("channels mismatch", [&] {
            const std::size_t C = ctx().rank == last ? 6 : 5;
            std::vector<float> st(2 * C);
            lowbit::per_channel_minmax_observer<S8s> o(S8s{}.per_channel(0), C, st);
            expect_error("channels mismatch", {"'observer.config()'", last_rank},
                         [&] { (void)lowbit::mpi::allreduce(MPI_COMM_WORLD, o); });
        });
        mpitest::section("options mismatch", [&] {
            lowbit::percentile_observer<S8s> o(S8s{}, {ctx().rank == last ? 99.99 : 99.9});
            expect_error("options mismatch", {"'observer.config()'", last_rank},
                         [&] { (void)lowbit::mpi::allreduce(MPI_COMM_WORLD, o); });
        });
        mpitest::section("different functions", [&] {
            lowbit::minmax_observer<U8> o;
            std::vector<float> v(3);
            expect_error("different functions",
                         {"rank " + std::to_string(last), "lowbit::mpi::allreduce_floats",
                          "rank 0 called lowbit::mpi::allreduce"},
                         [&] {
                             if (ctx().rank == last)
                                 (void)lowbit::mpi::allreduce_floats(MPI_COMM_WORLD, v);
                             else
                                 (void)lowbit::mpi::allreduce(MPI_COMM_WORLD, o);
                         });
        });
        mpitest::section("value count mismatch", [&] {
            std::vector<float> v(ctx().rank == last ? 4 : 3, 1.0f);
            const std::vector<float> before = v;
            expect_error("value count mismatch", {"'values.size()' = 4", last_rank, "rank 0's 3"},
                         [&] { (void)lowbit::mpi::allreduce_floats(MPI_COMM_WORLD, v); });
            MT_CHECK(mpitest::same(v, before));
        });
        mpitest::section("qat registration mismatch", [&] {
            lowbit::fake_quantize<U8> fq;
            lowbit::pact_quantizer<U8> a(U8{}, 4.0f), b(U8{}, 4.0f);
            lowbit::mpi::qat_sync sync(MPI_COMM_WORLD);
            sync.add(fq).add(a);
            if (ctx().rank == last) sync.add(b);  // one module more
            a.dalpha = 1.0f;
            expect_error("qat registration mismatch", {"'registered modules (hash)'", last_rank},
                         [&] { (void)sync.step(); });
            MT_CHECK(a.dalpha == 1.0f);  // nothing reduced
        });
        mpitest::section("qat modules out of sync", [&] {
            lowbit::fake_quantize<U8> fq;
            std::vector<float> y(4);
            if (ctx().rank == 0) (void)fq.forward(data, y);  // observed before registration, on rank 0 only
            lowbit::mpi::qat_sync sync(MPI_COMM_WORLD);
            sync.add(fq);
            expect_error("qat modules out of sync", {"fake_quantize module 0", "batches on rank"},
                         [&] { (void)sync.step(); });
        });
    }

    mpitest::section("a rank cannot take part", [&] {
        // rank 0's per-channel observer has a state buffer too small for its channels: save()
        // refuses it on rank 0, and every rank hears about it
        const std::size_t C = 4;
        std::vector<float> st(ctx().rank == 0 ? 2 * C - 1 : 2 * C);
        lowbit::per_channel_minmax_observer<S8s> o(S8s{}.per_channel(0), C, st);
        std::vector<std::string> needles{"rank 0 of " + std::to_string(p) + " could not take part",
                                         "'state.size()' = 7"};
        if (ctx().rank == 0) needles.push_back("must be at least 2 * channels");  // its own full error
        expect_error("a rank cannot take part", needles, [&] { (void)lowbit::mpi::allreduce(MPI_COMM_WORLD, o); });
    });
    mpitest::section("null communicator", [&] {
        lowbit::minmax_observer<U8> o;
        expect_error("null communicator", {"MPI_COMM_NULL"}, [&] { (void)lowbit::mpi::allreduce(MPI_COMM_NULL, o); });
    });
    mpitest::section("MPI call errors name the call", [&] {
        expect_error("MPI call errors name the call", {"MPI_Allgather", "returned", "MPI_ERR_TRUNCATE"},
                     [&] { (void)lowbit::mpi::detail::call_failed("MPI_Allgather", MPI_ERR_TRUNCATE); });
    });
    return mpitest::finish("mpi_error_tests");
}
