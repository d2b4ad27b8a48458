// tests/mpi/mpi_test.hpp: a minimal check harness for tests that mpirun starts on several ranks.
// Catch2's REQUIRE would end a test case on one rank only and leave the others waiting in the
// next collective, so checks here never abort: they count failures, print them with the rank,
// and finish() adds the counts over all ranks (every rank returns non-zero if any rank failed).
// The shared data helpers build the same deterministic data set on every rank, so each rank can
// compute the single-process reference itself.
#ifndef LOWBIT_TESTS_MPI_TEST_HPP
#define LOWBIT_TESTS_MPI_TEST_HPP

#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include <lowbit/core/qparams.hpp>

namespace mpitest {

struct context {
    int rank = 0;
    int size = 1;
    long checks = 0;
    long failures = 0;
    std::string section;
};

inline context& ctx() {
    static context c;
    return c;
}

inline void init(int& argc, char**& argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &ctx().rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ctx().size);
    // lowbit sees failed MPI calls only with errors returned instead of aborting
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

inline bool check(bool ok, const char* expr, const char* file, int line) {
    ++ctx().checks;
    if (!ok) {
        ++ctx().failures;
        std::fprintf(stderr, "[rank %d/%d] %s:%d: check failed in section '%s': %s\n", ctx().rank, ctx().size, file,
                     line, ctx().section.c_str(), expr);
    }
    return ok;
}

#define MT_CHECK(cond) ::mpitest::check(static_cast<bool>(cond), #cond, __FILE__, __LINE__)

/// Runs one section on every rank; an unexpected exception is a failure (if it happened on some
/// ranks only, the next collective may block: the ctest TIMEOUT ends that).
template <class F>
void section(const char* name, F&& f) {
    ctx().section = name;
#if defined(__cpp_exceptions)
    try {
        f();
    } catch (const std::exception& e) {
        ++ctx().failures;
        std::fprintf(stderr, "[rank %d/%d] section '%s': unexpected exception: %s\n", ctx().rank, ctx().size, name,
                     e.what());
    }
#else
    f();
#endif
    ctx().section.clear();
}

/// Adds the failures of all ranks; rank 0 prints the summary. Returns the exit code.
inline int finish(const char* name) {
    long local[2] = {ctx().checks, ctx().failures}, total[2] = {0, 0};
    MPI_Allreduce(local, total, 2, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (ctx().rank == 0)
        std::printf("%s: %d rank(s), %ld checks, %ld failed\n", name, ctx().size, total[0], total[1]);
    MPI_Finalize();
    return total[1] == 0 ? 0 : 1;
}

inline std::uint32_t bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

inline bool same(const lowbit::qparams& a, const lowbit::qparams& b) {
    return bits(a.scale) == bits(b.scale) && a.zero_point == b.zero_point;
}

inline bool same(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (bits(a[i]) != bits(b[i])) return false;
    return true;
}

/// Every rank holds the same bytes (gathered and compared on every rank).
inline bool same_on_all_ranks(const std::vector<std::uint8_t>& mine) {
    const int n = static_cast<int>(mine.size());
    int lo = n, hi = n;
    MPI_Allreduce(&n, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&n, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (lo != hi) return false;
    std::vector<std::uint8_t> all(mine.size() * static_cast<std::size_t>(ctx().size));
    MPI_Allgather(mine.data(), n, MPI_BYTE, all.data(), n, MPI_BYTE, MPI_COMM_WORLD);
    for (int r = 0; r < ctx().size; ++r)
        if (std::memcmp(all.data() + static_cast<std::size_t>(r) * mine.size(), mine.data(), mine.size()) != 0)
            return false;
    return true;
}

/// A deterministic data set: `batches` batches of varying sizes (some empty, some of one
/// element), values from mt19937(seed), each batch with its own magnitude so that histogram
/// ranges differ between batches (and between shards).
inline std::vector<std::vector<float>> make_batches(std::size_t batches, std::uint32_t seed, std::size_t multiple = 1) {
    std::mt19937 gen(seed);
    std::vector<std::vector<float>> out(batches);
    for (std::size_t b = 0; b < batches; ++b) {
        std::size_t n = (b % 5 == 3) ? 0 : (b % 7 == 1) ? 1 : 40 + (gen() % 300);
        n = n / multiple * multiple;
        const float scale = static_cast<float>(1u << (b % 6)) * 0.25f;
        const float shift = static_cast<float>(static_cast<int>(gen() % 9) - 3) * 0.125f;
        std::normal_distribution<float> normal(shift, scale);
        out[b].resize(n);
        for (float& v : out[b]) v = normal(gen);
    }
    return out;
}

/// Which rank observes batch b. `empty_rank`: rank 1 gets nothing (when there are >= 2 ranks);
/// otherwise every rank gets an uneven share (rank 0 the most).
inline int owner(std::size_t b, int ranks, bool empty_rank) {
    if (ranks == 1) return 0;
    const int r =
        static_cast<int>((7 * b + b / 3 + b * b) % static_cast<std::size_t>(ranks + 1));  // rank 0 twice as often
    const int o = r >= ranks ? 0 : r;
    return empty_rank && o == 1 ? 0 : o;
}

}  // namespace mpitest

#endif  // LOWBIT_TESTS_MPI_TEST_HPP
