// lowbit/mpi.hpp built with -fno-exceptions -fno-rtti (LOWBIT_NO_EXCEPTIONS): errors come back
// as a status, the same on every rank - a mismatched configuration on the last rank, a rank that
// cannot take part - and a matching call afterwards works. Run under mpirun -n 1, 2 and 4.
#include "mpi_test.hpp"

#include <cstring>
#include <vector>

#include <lowbit/mpi.hpp>
#include <lowbit/observers/minmax.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>

static_assert(LOWBIT_NO_EXCEPTIONS, "built with -fno-exceptions");

int main(int argc, char** argv) {
    using U8 = lowbit::scheme<lowbit::u8>;
    using S8s = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>;
    mpitest::init(argc, argv);
    const int p = mpitest::ctx().size, me = mpitest::ctx().rank;
    const float x[3] = {-1.0f, 0.0f, static_cast<float>(me)};

    mpitest::section("mismatch", [&] {
        if (p < 2) return;
        lowbit::minmax_observer<U8> o(me == p - 1 ? U8{}.with_range(0, 15) : U8{});
        (void)o.observe(lowbit::span<const float>(x));
        const lowbit::result<lowbit::mpi::exchange_report> r = lowbit::mpi::allreduce(MPI_COMM_WORLD, o);
        MT_CHECK(!r.ok());
        MT_CHECK(r.status().code == lowbit::errc::invalid_argument);
        MT_CHECK(std::strcmp(r.status().argument, "observer.config()") == 0);
        MT_CHECK(r.status().value == static_cast<double>(p - 1));  // the first differing rank
        MT_CHECK(o.stats().max == static_cast<float>(me));         // unchanged
    });
    mpitest::section("local failure", [&] {
        std::vector<float> st(me == 0 ? 3 : 4);
        lowbit::per_channel_minmax_observer<S8s> o(S8s{}.per_channel(0), 2, st);
        const lowbit::result<lowbit::mpi::exchange_report> r = lowbit::mpi::allreduce(MPI_COMM_WORLD, o);
        MT_CHECK(!r.ok());
        MT_CHECK(r.status().code == lowbit::errc::size_mismatch);
        MT_CHECK(r.status().value == 0.0);  // rank 0 failed
    });
    mpitest::section("match", [&] {
        lowbit::minmax_observer<U8> o;
        (void)o.observe(lowbit::span<const float>(x));
        const lowbit::result<lowbit::mpi::exchange_report> r = lowbit::mpi::allreduce(MPI_COMM_WORLD, o);
        MT_CHECK(r.ok());
        MT_CHECK(o.stats().min == -1.0f);
        MT_CHECK(o.stats().max == static_cast<float>(p - 1));
        MT_CHECK(o.stats().count == 3u * static_cast<unsigned>(p));
    });
    return mpitest::finish("mpi_no_exceptions");
}
