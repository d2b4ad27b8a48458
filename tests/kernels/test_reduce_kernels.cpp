// SIMD reductions against lowbit::ref::min_max / histogram: every ISA the CPU runs, every tail
// size, unaligned inputs, hard values (NaN of both signs, +-Inf, +-0, denormals, huge), every
// per-channel layout case (long runs, periodic positions, column segments), canaries around
// per-channel outputs and histogram counts.
#include "lowbit_catch.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <lowbit/kernels/reduce.hpp>

#include "inputs.hpp"
#include "isa.hpp"

namespace {

constexpr float inf = std::numeric_limits<float>::infinity();

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Inputs for min / max: hard_inputs with the NaNs either kept, removed or moved to the end
// (so that the finite extremes, zeros and infinities decide).
std::vector<float> minmax_inputs(std::size_t n, std::uint32_t seed, int nan_mode) {
    std::vector<float> x = lowbit_test::hard_inputs(n, 0.05f, seed);
    std::mt19937 gen(seed);
    for (float& v : x) {
        if (std::isnan(v) && nan_mode != 0) v = gen() % 2 ? -0.0f : 0.0f;
        if (gen() % 17 == 0) v = -v;  // negative NaNs, -Inf, -0.0 too
    }
    if (nan_mode == 2 && n > 0) x[n - 1] = -std::numeric_limits<float>::quiet_NaN();
    return x;
}

template <class A>
void check_min_max(const std::vector<float>& src, std::size_t offset) {
    const lowbit::span<const float> x(src.data() + offset, src.size() - offset);
    const lowbit::min_max_range want = *lowbit::ref::min_max(x);
    const lowbit::result<lowbit::min_max_range> got = lowbit::kernels::min_max<A>(x);
    REQUIRE(got.ok());
    INFO("arch " << A::name() << " n " << x.size() << " offset " << offset << " want " << want.min << ".." << want.max
                 << " got " << got->min << ".." << got->max);
    REQUIRE(same_bits(want.min, got->min));
    REQUIRE(same_bits(want.max, got->max));
}

template <class A>
void check_channels(const lowbit::shape& shp, std::size_t axis, std::uint32_t seed) {
    std::size_t numel = 1;
    for (std::size_t d = 0; d < shp.rank(); ++d) numel *= shp[d];
    const std::size_t channels = shp[axis];
    for (int nan_mode : {0, 1}) {
        for (std::size_t offset : {std::size_t(0), std::size_t(1), std::size_t(3)}) {
            std::vector<float> src = minmax_inputs(numel + offset, seed++, nan_mode);
            if (nan_mode == 1 && numel > 0) src[offset + (seed % numel)] = std::numeric_limits<float>::quiet_NaN();
            const lowbit::span<const float> x(src.data() + offset, numel);
            std::vector<float> wmin(channels + 2, 7.0f), wmax(channels + 2, 7.0f), gmin(channels + 2, 7.0f),
                gmax(channels + 2, 7.0f);  // one canary each side
            REQUIRE(lowbit::ref::min_max(shp, axis, x, lowbit::span<float>(wmin.data() + 1, channels),
                                         lowbit::span<float>(wmax.data() + 1, channels))
                        .ok());
            REQUIRE(lowbit::kernels::min_max<A>(shp, axis, x, lowbit::span<float>(gmin.data() + 1, channels),
                                                lowbit::span<float>(gmax.data() + 1, channels))
                        .ok());
            INFO("arch " << A::name() << " axis " << axis << " channels " << channels << " numel " << numel
                         << " offset " << offset << " min diff at " << lowbit_test::first_difference(wmin.data(), gmin.data(), wmin.size())
                         << " max diff at " << lowbit_test::first_difference(wmax.data(), gmax.data(), wmax.size()));
            REQUIRE(lowbit_test::first_difference(wmin.data(), gmin.data(), wmin.size()) == -1);
            REQUIRE(lowbit_test::first_difference(wmax.data(), gmax.data(), wmax.size()) == -1);
        }
    }
}

template <class A>
void check_histogram(const std::vector<float>& src, std::size_t offset, float lo, float hi, std::size_t bins) {
    const lowbit::span<const float> x(src.data() + offset, src.size() - offset);
    std::vector<std::uint64_t> want(bins + 2, 3), got(bins + 2, 3);  // start at 3: counts accumulate; canaries
    REQUIRE(lowbit::ref::histogram(x, lo, hi, lowbit::span<std::uint64_t>(want.data() + 1, bins)).ok());
    REQUIRE(lowbit::kernels::histogram<A>(x, lo, hi, lowbit::span<std::uint64_t>(got.data() + 1, bins)).ok());
    INFO("arch " << A::name() << " n " << x.size() << " range " << lo << ".." << hi << " bins " << bins
                 << " first difference at " << lowbit_test::first_difference(want.data(), got.data(), want.size()));
    REQUIRE(lowbit_test::first_difference(want.data(), got.data(), want.size()) == -1);
}

}  // namespace

TEMPLATE_TEST_CASE("kernels::min_max equals ref::min_max", "[kernels][reduce]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    std::uint32_t seed = 1;
    for (std::size_t n : tail_sizes())
        for (int nan_mode : {0, 1, 2})
            for (std::size_t offset : {std::size_t(0), std::size_t(1), std::size_t(3)})
                check_min_max<TestType>(minmax_inputs(n + offset, seed++, nan_mode), offset);
    // zeros of both signs at the extremes, in every lane position
    for (std::size_t n : {std::size_t(1), std::size_t(5), std::size_t(64), std::size_t(200)}) {
        for (std::size_t pos = 0; pos < n; pos += 3) {
            std::vector<float> pos_zeros(n, 1.0f), neg_zeros(n, -1.0f);
            for (std::size_t i = 0; i < n; i += 2) {
                pos_zeros[i] = (i / 2) % 2 ? -0.0f : 0.0f;
                neg_zeros[i] = (i / 2) % 2 ? 0.0f : -0.0f;
            }
            pos_zeros[pos] = -0.0f;
            check_min_max<TestType>(pos_zeros, 0);
            check_min_max<TestType>(neg_zeros, 0);
        }
    }
    const std::vector<float> infs = {inf, -inf, inf};
    check_min_max<TestType>(infs, 0);
    const std::vector<float> denorms = {1e-45f, -1e-45f, 1e-40f, -1e-38f};
    check_min_max<TestType>(denorms, 0);
}

TEMPLATE_TEST_CASE("kernels::min_max per channel equals ref", "[kernels][reduce]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    std::uint32_t seed = 500;
    check_channels<TestType>(lowbit::shape{5, 3}, 1, seed += 10);         // periodic positions, w = 3
    check_channels<TestType>(lowbit::shape{300, 7}, 1, seed += 10);       // many super-rows
    check_channels<TestType>(lowbit::shape{9, 512}, 1, seed += 10);       // w = cap
    check_channels<TestType>(lowbit::shape{4, 513}, 1, seed += 10);       // segments
    check_channels<TestType>(lowbit::shape{3, 1500}, 1, seed += 10);      // segments, partial last
    check_channels<TestType>(lowbit::shape{4, 9, 5}, 1, seed += 10);      // short runs
    check_channels<TestType>(lowbit::shape{2, 300, 3}, 1, seed += 10);    // short runs, segments, split channels
    check_channels<TestType>(lowbit::shape{3, 4, 33}, 1, seed += 10);     // runs just over a block
    check_channels<TestType>(lowbit::shape{3, 4, 131}, 1, seed += 10);    // long runs
    check_channels<TestType>(lowbit::shape{7, 263}, 0, seed += 10);       // axis 0, long runs
    check_channels<TestType>(lowbit::shape{7, 20}, 0, seed += 10);        // axis 0, short rows
    check_channels<TestType>(lowbit::shape{1, 1027}, 0, seed += 10);      // one channel
    check_channels<TestType>(lowbit::shape{2, 3, 2, 3}, 2, seed += 10);   // rank 4
    check_channels<TestType>(lowbit::shape{0, 4}, 1, seed += 10);         // empty channels
    check_channels<TestType>(lowbit::shape{3, 0}, 0, seed += 10);         // empty channels (inner 0)
    check_channels<TestType>(lowbit::shape{6, 0}, 1, seed += 10);         // no channels
}

TEMPLATE_TEST_CASE("kernels::histogram equals ref::histogram", "[kernels][reduce]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    std::uint32_t seed = 900;
    struct range {
        float lo, hi;
        std::size_t bins;
    };
    const range ranges[] = {{-3.0f, 3.0f, 2048}, {0.0f, 1.0f, 4}, {-1.0f, 2.0f, 3}, {-0.1f, 0.3f, 7},
                            {-1e-3f, 1e-3f, 256}, {0.0f, 3e36f, 100}, {-5.0f, 7.0f, 1}};
    for (const range& r : ranges) {
        for (std::size_t n : tail_sizes()) {
            const std::size_t offset = seed % 3 == 0 ? 0 : seed % 3 == 1 ? 1 : 3;
            std::vector<float> src = lowbit_test::hard_inputs(n + offset, (r.hi - r.lo) / 64.0f, seed++);
            std::mt19937 gen(seed);
            for (std::size_t i = 0; i < src.size(); i += 3) {  // bin edges, the ends and their neighbours
                const float edge = r.lo + (r.hi - r.lo) * static_cast<float>(gen() % (r.bins + 1)) / static_cast<float>(r.bins);
                const float picks[] = {edge, std::nextafter(edge, -inf), std::nextafter(edge, inf), r.lo, r.hi,
                                       std::nextafter(r.hi, inf), std::nextafter(r.lo, -inf)};
                src[i] = picks[gen() % 7];
            }
            check_histogram<TestType>(src, offset, r.lo, r.hi, r.bins);
        }
    }
}

// The local-table path (bins <= 2048, n >= 4 bins) and its pipelined blocks: sizes around
// the threshold and the block, data piling into one bin, every bin, NaN / Inf mixtures.
TEMPLATE_TEST_CASE("kernels::histogram equals ref on repetitive and large inputs", "[kernels][reduce]",
                   LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    constexpr float nan = std::numeric_limits<float>::quiet_NaN();
    const std::size_t bin_counts[] = {1, 2, 5, 64, 2047, 2048, 2049, 4096};
    std::uint32_t seed = 1300;
    for (const std::size_t bins : bin_counts) {
        const float lo = -2.5f, hi = 3.5f;
        // around 4 * bins (the local table's threshold) and block multiples (64 and more)
        std::vector<std::size_t> sizes = {4 * bins - 1, 4 * bins, 4 * bins + 1, 4 * bins + 63, 4 * bins + 64,
                                          4 * bins + 65, 8 * bins + 127, 128, 192 + 3, 1000};
        if (bins <= 64) sizes.push_back(70001);
        for (const std::size_t n : sizes) {
            const std::size_t offset = seed % 3;
            // all in one bin (one value, each end, the last bin through hi), and one dropped value
            for (const float v : {0.25f, lo, hi, std::nextafter(hi, -inf), 7.0f}) {
                std::vector<float> src(n + offset, v);
                check_histogram<TestType>(src, offset, lo, hi, bins);
            }
            // two alternating bins, and runs of equal values
            std::vector<float> alt(n + offset);
            for (std::size_t i = 0; i < alt.size(); ++i) alt[i] = (i / (1 + seed % 5)) % 2 ? lo : 1.0f;
            check_histogram<TestType>(alt, offset, lo, hi, bins);
            // every bin's centre, in order and repeated, with NaN / +-Inf / out-of-range mixed in
            std::vector<float> all(n + offset);
            std::mt19937 gen(seed++);
            for (std::size_t i = 0; i < all.size(); ++i) {
                const std::size_t b = i % bins;
                all[i] = lo + (hi - lo) * (static_cast<float>(b) + 0.5f) / static_cast<float>(bins);
                const auto r = static_cast<std::uint32_t>(gen() % 23);
                if (r == 0) all[i] = nan;
                if (r == 1) all[i] = -nan;
                if (r == 2) all[i] = inf;
                if (r == 3) all[i] = -inf;
                if (r == 4) all[i] = std::nextafter(lo, -inf);
                if (r == 5) all[i] = std::nextafter(hi, inf);
            }
            check_histogram<TestType>(all, offset, lo, hi, bins);
            // random values with hard inputs, including huge ones
            check_histogram<TestType>(lowbit_test::hard_inputs(n + offset, 1.0f, seed++), offset, lo, hi, bins);
        }
    }
}

TEMPLATE_TEST_CASE("kernels reductions check like ref", "[kernels][reduce][errors]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    const std::vector<float> x(6, 1.0f);
    std::vector<float> a(2, 5.0f), b(2, 5.0f);
    CHECK_THROWS_WITH((lowbit::kernels::min_max<TestType>(lowbit::shape{2, 3}, 2, x, a, b)),
                      Catch::Contains("'axis' = 2"));
    CHECK_THROWS_WITH((lowbit::kernels::min_max<TestType>(lowbit::shape{2, 3}, 1, x, a, b)),
                      Catch::Contains("'mins.size()' = 2"));
    std::vector<float> a3(3, 5.0f);
    CHECK_THROWS_WITH((lowbit::kernels::min_max<TestType>(lowbit::shape{2, 3}, 1, x, a3, b)),
                      Catch::Contains("'maxs.size()' = 2"));
    CHECK_THROWS_WITH((lowbit::kernels::min_max<TestType>(lowbit::shape{2, 4}, 1, x, a, b)),
                      Catch::Contains("'x.size()' = 6"));
    CHECK(a == std::vector<float>(2, 5.0f));
    CHECK(a3 == std::vector<float>(3, 5.0f));
    std::vector<std::uint64_t> c(4, 7);
    CHECK_THROWS_WITH((lowbit::kernels::histogram<TestType>(x, 2.0f, 1.0f, c)), Catch::Contains("'hi' = 1"));
    CHECK_THROWS_WITH((lowbit::kernels::histogram<TestType>(x, -inf, 1.0f, c)), Catch::Contains("'lo' = -inf"));
    CHECK_THROWS_WITH((lowbit::kernels::histogram<TestType>(x, -3e38f, 3e38f, c)), Catch::Contains("'hi'"));
    CHECK_THROWS_WITH((lowbit::kernels::histogram<TestType>(x, 0.0f, 1.0f, lowbit::span<std::uint64_t>{})),
                      Catch::Contains("'counts.size()' = 0"));
    CHECK(c == std::vector<std::uint64_t>(4, 7));
}
