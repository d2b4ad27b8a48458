// The exact-merge histogram and the observers around it (percentile, MSE, entropy), and
// fixed_qparams_observer: bins against a brute-force floor(x / 2^e), the sharding property
// (any split, any order, any merge tree -> bit-identical counts and qparams), known answers,
// save / load round trips and refused bad states (truncated, corrupted, wrong configuration,
// inconsistent payloads) that leave the observer unchanged.
#include "lowbit_catch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include <lowbit/observers/entropy.hpp>
#include <lowbit/observers/fixed_qparams.hpp>
#include <lowbit/observers/minmax.hpp>
#include <lowbit/observers/mse.hpp>
#include <lowbit/observers/percentile.hpp>

namespace {

using lowbit::clip_range;
using lowbit::span;
using S8 = lowbit::scheme<lowbit::s8>;
using S8s = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>;
using U8 = lowbit::scheme<lowbit::u8>;
using S4s = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>;
using U4 = lowbit::scheme<lowbit::u4>;

std::uint32_t fbits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

bool same(const lowbit::qparams& a, const lowbit::qparams& b) {
    return fbits(a.scale) == fbits(b.scale) && a.zero_point == b.zero_point;
}

bool same_stats(const lowbit::observer_stats& a, const lowbit::observer_stats& b) {
    return fbits(a.min) == fbits(b.min) && fbits(a.max) == fbits(b.max) && a.count == b.count && a.batches == b.batches;
}

template <std::size_t B>
bool same_hist(const lowbit::exact_histogram<B>& a, const lowbit::exact_histogram<B>& b) {
    return a.exponent() == b.exponent() && same_stats(a.stats(), b.stats()) &&
           std::equal(a.counts().begin(), a.counts().end(), b.counts().begin());
}

// Data sets exercising the histogram: ordinary, wide dynamic range, one-signed, tiny, zeros.
std::vector<std::vector<float>> data_sets() {
    std::mt19937 rng(2024);
    std::vector<std::vector<float>> out;
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> a(20000);
    for (auto& v : a) v = g(rng);
    out.push_back(a);
    std::vector<float> b(20000);  // heavy tails over many binades
    for (auto& v : b) v = g(rng) * std::exp(3.0f * g(rng));
    out.push_back(b);
    std::vector<float> c(10000);  // ReLU output with many exact zeros
    for (auto& v : c) v = std::max(0.0f, g(rng) * 4.0f);
    out.push_back(c);
    std::vector<float> d(8000);  // negative only, with -2^k values (fit at -R exactly)
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = i % 97 == 0 ? -8.0f : -std::fabs(g(rng));
    out.push_back(d);
    std::vector<float> e(6000);  // subnormals and tiny normals
    for (auto& v : e) v = g(rng) * 1e-38f;
    out.push_back(e);
    return out;
}

// Splits x into batches at random cut points.
std::vector<std::vector<float>> random_batches(const std::vector<float>& x, std::mt19937& rng, std::size_t max_batches) {
    std::vector<std::size_t> cuts{0, x.size()};
    const std::size_t k = 1 + rng() % max_batches;
    for (std::size_t i = 1; i < k; ++i) cuts.push_back(rng() % (x.size() + 1));
    std::sort(cuts.begin(), cuts.end());
    std::vector<std::vector<float>> out;
    for (std::size_t i = 0; i + 1 < cuts.size(); ++i)
        out.emplace_back(x.begin() + static_cast<std::ptrdiff_t>(cuts[i]), x.begin() + static_cast<std::ptrdiff_t>(cuts[i + 1]));
    return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// exact_histogram
// ---------------------------------------------------------------------------------------

TEST_CASE("exact_histogram: bins are floor(x / 2^e) with the smallest e that fits", "[histogram][exact]") {
    std::mt19937 rng(1);
    for (const auto& x : data_sets()) {
        lowbit::exact_histogram<2048> h;
        REQUIRE(h.add(x).ok());
        const int e = h.exponent();
        const double R = std::ldexp(1.0, e + 10);
        std::vector<std::uint64_t> want(2048, 0);
        bool fits_smaller = true;
        for (float v : x) {
            const double r = std::floor(std::ldexp(static_cast<double>(v), -e));
            REQUIRE(r >= -1024.0);
            REQUIRE(r < 1024.0);
            ++want[static_cast<std::size_t>(r + 1024.0)];
            fits_smaller = fits_smaller && static_cast<double>(v) >= -R / 2 && static_cast<double>(v) < R / 2;
        }
        CHECK(std::equal(want.begin(), want.end(), h.counts().begin()));
        CHECK(!fits_smaller);  // e is minimal
        CHECK(h.range() == R);
        CHECK(h.bin_width() == std::ldexp(1.0, e));
    }
    // edges: -R fits, R does not; zeros of both signs in the middle bin
    lowbit::exact_histogram<16> h;
    const float edge[] = {-8.0f, 0.0f, -0.0f, 7.9999995f};
    REQUIRE(h.add(edge).ok());
    CHECK(h.exponent() == 0);  // bins of width 1 over [-8, 8)
    CHECK(h.counts()[0] == 1);
    CHECK(h.counts()[8] == 2);
    CHECK(h.counts()[15] == 1);
    const float eight[] = {8.0f};
    REQUIRE(h.add(eight).ok());
    CHECK(h.exponent() == 1);  // [-16, 16): old bins merged in pairs
    CHECK(h.counts()[4] == 1);
    CHECK(h.counts()[8] == 2);
    CHECK(h.counts()[11] == 1);
    CHECK(h.counts()[12] == 1);
    // extremes of float
    lowbit::exact_histogram<2048> big;
    const float ext[] = {std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                         std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::denorm_min()};
    REQUIRE(big.add(ext).ok());
    CHECK(big.exponent() == big.max_exponent);
    CHECK(big.counts()[0] == 1);
    CHECK(big.counts()[1023] == 1);  // -denorm_min: just below 0
    CHECK(big.counts()[1024] == 1);
    CHECK(big.counts()[2047] == 1);
    lowbit::exact_histogram<2048> tiny;
    REQUIRE(tiny.add(span<const float>(ext + 2, 2)).ok());
    CHECK(tiny.exponent() == -149 + 2 - 11);  // R = 2^-148; the double path (2^-e not a normal float)
    CHECK(tiny.counts()[512] == 1);
    CHECK(tiny.counts()[1536] == 1);
}

TEST_CASE("exact_histogram: any split, order and merge tree gives bit-identical counts", "[histogram][exact][merge]") {
    std::mt19937 rng(99);
    const auto sets = data_sets();
    std::vector<float> all;
    for (const auto& s : sets) all.insert(all.end(), s.begin(), s.end());
    auto datasets = sets;
    datasets.push_back(all);
    std::vector<float> zeros(100, 0.0f);
    for (auto x : datasets) {
        // one observer, one batch per call as it comes
        lowbit::exact_histogram<1024> single;
        for (const auto& b : random_batches(x, rng, 6)) REQUIRE(single.add(b).ok());
        for (int trial = 0; trial < 12; ++trial) {
            std::vector<float> y = x;
            if (trial % 3 == 1) std::shuffle(y.begin(), y.end(), rng);
            if (trial % 3 == 2) std::sort(y.begin(), y.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); });
            const auto shards = random_batches(y, rng, 7);
            std::vector<lowbit::exact_histogram<1024>> hs(shards.size() + 1);
            for (std::size_t i = 0; i < shards.size(); ++i)
                for (const auto& b : random_batches(shards[i], rng, 4)) REQUIRE(hs[i].add(b).ok());
            REQUIRE(hs.back().add(zeros).ok());  // a shard of zeros only (min exponent)
            // merge in a random tree
            while (hs.size() > 1) {
                const std::size_t i = rng() % hs.size();
                std::size_t j = rng() % hs.size();
                if (i == j) continue;
                REQUIRE(hs[i].merge(hs[j]).ok());
                hs.erase(hs.begin() + static_cast<std::ptrdiff_t>(j));
            }
            lowbit::exact_histogram<1024> ref = single;
            REQUIRE(ref.add(zeros).ok());
            CHECK(hs[0].exponent() == ref.exponent());
            CHECK(fbits(hs[0].stats().min) == fbits(ref.stats().min));
            CHECK(fbits(hs[0].stats().max) == fbits(ref.stats().max));
            CHECK(hs[0].stats().count == ref.stats().count);
            CHECK(std::equal(ref.counts().begin(), ref.counts().end(), hs[0].counts().begin()));
        }
    }
    // merging with itself doubles
    lowbit::exact_histogram<64> h;
    REQUIRE(h.add(sets[0]).ok());
    lowbit::exact_histogram<64> twice = h;
    REQUIRE(twice.add(sets[0]).ok());
    REQUIRE(h.merge(h).ok());
    CHECK(std::equal(h.counts().begin(), h.counts().end(), twice.counts().begin()));
    CHECK(h.stats().count == twice.stats().count);
}

TEST_CASE("exact_histogram: refused batches change nothing", "[histogram][exact]") {
    lowbit::exact_histogram<256> h;
    const float ok[] = {1.0f, -2.0f};
    REQUIRE(h.add(ok).ok());
    const lowbit::exact_histogram<256> before = h;
    const float nan[] = {3.0f, std::numeric_limits<float>::quiet_NaN()};
    const float inf[] = {1e30f, std::numeric_limits<float>::infinity()};
    CHECK_THROWS_AS(h.add(nan), lowbit::error);
    CHECK_THROWS_AS(h.add(inf), lowbit::error);
    CHECK(same_hist(h, before));
    REQUIRE(h.add(span<const float>()).ok());
    CHECK(same_hist(h, before));  // empty batch: not a batch
}

// ---------------------------------------------------------------------------------------
// observers: sharding gives identical qparams
// ---------------------------------------------------------------------------------------

namespace {

template <class Obs>
void check_sharding(const typename Obs::scheme_type& s, const typename Obs::options_type& o) {
    std::mt19937 rng(7);
    for (const auto& x : data_sets()) {
        Obs single(s, o);
        for (const auto& b : random_batches(x, rng, 5)) REQUIRE(single.observe(b).ok());
        const lowbit::qparams want = *single.qparams();
        const clip_range want_range = *single.range();
        for (int trial = 0; trial < 3; ++trial) {
            std::vector<float> y = x;
            std::shuffle(y.begin(), y.end(), rng);
            const auto shards = random_batches(y, rng, 5);
            std::vector<Obs> obs(shards.size(), Obs(s, o));
            for (std::size_t i = 0; i < shards.size(); ++i)
                for (const auto& b : random_batches(shards[i], rng, 3)) REQUIRE(obs[i].observe(b).ok());
            // shard 0 goes through save / load, as across processes
            std::vector<std::uint8_t> bytes(obs[0].state_size());
            REQUIRE(obs[0].save(bytes).ok());
            Obs loaded(s, o);
            REQUIRE(loaded.load(bytes).ok());
            Obs merged = loaded;
            for (std::size_t i = obs.size(); i-- > 1;) REQUIRE(merged.merge(obs[i]).ok());
            CHECK(same(*merged.qparams(), want));
            CHECK(*merged.range() == want_range);
            CHECK(std::equal(merged.histogram().counts().begin(), merged.histogram().counts().end(),
                             single.histogram().counts().begin()));
        }
    }
}

}  // namespace

TEST_CASE("observers: sharded calibration equals one observer bit for bit", "[observer][percentile][mse][entropy][merge]") {
    check_sharding<lowbit::percentile_observer<S8s>>(S8s{}, {99.99});
    check_sharding<lowbit::percentile_observer<U8, 512>>(U8{}, {99.9});
    check_sharding<lowbit::mse_observer<S8s, 512>>(S8s{}, {});
    check_sharding<lowbit::mse_observer<U4, 256>>(U4{}, {});
    check_sharding<lowbit::entropy_observer<S8s>>(S8s{}, {});
    check_sharding<lowbit::entropy_observer<U8, 1024>>(U8{}, {});
}

// ---------------------------------------------------------------------------------------
// observers: known answers and API
// ---------------------------------------------------------------------------------------

TEST_CASE("percentile_observer: known answers", "[observer][percentile]") {
    // 0, 1, ..., 1023 once each: max 1023 needs e = 0, so bins of width 1 hold one value
    // each; cdf[j] = (j + 1) / 1024 exactly. p = 99.90234375 (1023/1024): index 1022, the
    // left edge 1022; ORT clamps to [min, max] = [0, 1023] -> [0, 1022].
    std::vector<float> x(1024);
    std::iota(x.begin(), x.end(), 0.0f);
    lowbit::percentile_observer<S8s> obs(S8s{}, {99.90234375});
    REQUIRE(obs.observe(x).ok());
    CHECK(obs.histogram().exponent() == 0);
    CHECK(*obs.range() == clip_range{0.0f, 1022.0f});
    CHECK(same(*obs.qparams(), *lowbit::choose_qparams(S8s{}, -1022.0f, 1022.0f)));
    // affine: cut (100 - p) / 200 from each side on the signed histogram
    lowbit::percentile_observer<U8> aff(U8{}, {100.0 - 200.0 / 1024.0});  // cut 1/1024 per side
    REQUIRE(aff.observe(x).ok());
    CHECK(*aff.range() == clip_range{0.0f, 1022.0f});
    // percentile 100 keeps the max bin's left edge (ORT), clamped to the data
    lowbit::percentile_observer<S8s> full(S8s{}, {100.0});
    REQUIRE(full.observe(x).ok());
    CHECK(*full.range() == clip_range{0.0f, 1023.0f});
    // nothing observed: torch's {1.0, 0}; all zeros: eps scale
    lowbit::percentile_observer<S8s> none;
    CHECK(same(*none.qparams(), lowbit::qparams{}));
    const std::vector<float> z(50, 0.0f);
    REQUIRE(none.observe(z).ok());
    CHECK(*none.range() == clip_range{0.0f, 0.0f});
    CHECK(same(*none.qparams(), *lowbit::choose_qparams(S8s{}, 0.0f, 0.0f)));
}

TEST_CASE("mse_observer: two-point data and a clipped outlier", "[observer][mse]") {
    // {0, 1}: min/max calibration is MSE-optimal (see the pure-function test)
    std::vector<float> x(1000, 0.0f);
    for (std::size_t i = 0; i < x.size(); i += 2) x[i] = 1.0f;
    lowbit::mse_observer<U8> obs;
    REQUIRE(obs.observe(x).ok());
    lowbit::minmax_observer<U8> mm;
    REQUIRE(mm.observe(x).ok());
    CHECK(same(*obs.qparams(), *mm.qparams()));
    // a Gaussian bulk with one far outlier: 4-bit MSE clips it
    std::mt19937 rng(3);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> y(50000);
    for (auto& v : y) v = g(rng);
    y[0] = 40.0f;
    lowbit::mse_observer<S4s> m4;
    REQUIRE(m4.observe(y).ok());
    CHECK(m4.range()->max < 6.0f);
    CHECK(m4.range()->min == -m4.range()->max);
}

TEST_CASE("entropy_observer: automatic quantized bins follow the scheme", "[observer][entropy]") {
    std::mt19937 rng(11);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> pos(30000), both(30000);
    for (auto& v : pos) v = std::fabs(g(rng));
    for (auto& v : both) v = g(rng);
    CHECK(lowbit::calibration::entropy_quantized_bins(S8s{}, false) == 128);
    CHECK(lowbit::calibration::entropy_quantized_bins(U8{}, true) == 256);
    CHECK(lowbit::calibration::entropy_quantized_bins(U8{}, false) == 128);
    CHECK(lowbit::calibration::entropy_quantized_bins(S4s{}, false) == 8);
    CHECK(lowbit::calibration::entropy_quantized_bins(lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric_narrow>{}, false) ==
          128);
    const auto expect = [](const auto& obs, std::size_t nb) {
        std::uint64_t buf[1024];
        const lowbit::histogram_view v = obs.histogram().abs_view(buf, true);
        lowbit::calibration::entropy_options o;
        o.num_quantized_bins = nb;
        const clip_range r = *lowbit::calibration::entropy(v, o);
        return lowbit::calibration::clamp_to_data(r, obs.stats().min, obs.stats().max);
    };
    lowbit::entropy_observer<U8> u(U8{}, {});
    REQUIRE(u.observe(pos).ok());
    CHECK(*u.range() == expect(u, 256));
    CHECK(u.range()->min == u.stats().min);  // nonnegative data: [min, t] -> affine [0, t]
    lowbit::entropy_observer<S8s> s(S8s{}, {});
    REQUIRE(s.observe(both).ok());
    CHECK(*s.range() == expect(s, 128));
    lowbit::entropy_observer<S4s> s4(S4s{}, {});
    REQUIRE(s4.observe(both).ok());
    CHECK(*s4.range() == expect(s4, 8));
    const auto amax = [](const clip_range& r) { return std::max(-r.min, r.max); };
    CHECK(amax(*s4.range()) < amax(*s.range()));  // 4 bits clip harder
    // explicit options are honoured and are part of the configuration
    lowbit::calibration::entropy_options o;
    o.num_quantized_bins = 64;
    lowbit::entropy_observer<S8s> e64(S8s{}, o);
    CHECK(e64.config() != s.config());
    REQUIRE(e64.observe(both).ok());
    CHECK(*e64.range() == expect(e64, 64));
}

// ---------------------------------------------------------------------------------------
// observers: merge / save / load and bad states
// ---------------------------------------------------------------------------------------

namespace {

template <class Obs>
bool unchanged(const Obs& a, const Obs& b) {
    return same_hist(a.histogram(), b.histogram());
}

// A state with a valid header and CRC around an arbitrary payload.
template <class Obs>
std::vector<std::uint8_t> craft(const Obs& o, int e, float mn, float mx, std::uint64_t count, std::uint64_t batches,
                                const std::vector<std::uint64_t>& counts) {
    std::vector<std::uint8_t> out(lowbit::state_header_size + Obs::histogram_type::payload_size);
    const auto st = lowbit::save_state(static_cast<std::uint16_t>(Obs::kind), o.config(), out, [&](lowbit::state_writer& w) {
        w.i32(e);
        w.f32(mn);
        w.f32(mx);
        w.u64(count);
        w.u64(batches);
        for (auto c : counts) w.u64(c);
    });
    REQUIRE(st.ok());
    return out;
}

template <class Obs>
void check_state_handling(const typename Obs::scheme_type& s, const typename Obs::options_type& o,
                          const typename Obs::options_type& other_options) {
    std::mt19937 rng(5);
    std::normal_distribution<float> g(0.0f, 2.0f);
    std::vector<float> x(5000);
    for (auto& v : x) v = g(rng);
    Obs a(s, o);
    REQUIRE(a.observe(x).ok());
    std::vector<std::uint8_t> bytes(a.state_size());
    REQUIRE(a.save(bytes).ok());
    CHECK_THROWS_AS(a.save(span<std::uint8_t>(bytes.data(), bytes.size() - 1)), lowbit::error);

    // round trip
    Obs b(s, o);
    REQUIRE(b.load(bytes).ok());
    CHECK(unchanged(a, b));
    CHECK(same(*a.qparams(), *b.qparams()));
    CHECK(same_stats(a.stats(), b.stats()));

    // a victim with other contents, checked unchanged after each refused load
    Obs v(s, o);
    const float few[] = {0.5f, -0.25f, 3.0f};
    REQUIRE(v.observe(few).ok());
    const Obs keep = v;
    const auto refused = [&](const std::vector<std::uint8_t>& in) {
        CHECK_THROWS_AS(v.load(in), lowbit::error);
        CHECK(unchanged(v, keep));
    };
    // truncated, trailing bytes
    for (std::size_t n : {std::size_t{0}, std::size_t{19}, std::size_t{20}, std::size_t{21}, bytes.size() - 8,
                          bytes.size() - 1})
        refused(std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)));
    auto longer = bytes;
    longer.push_back(0);
    refused(longer);
    // corrupted: every header byte, and payload bytes (the CRC catches them)
    for (std::size_t i = 0; i < bytes.size(); i += (i < 64 ? 1 : 997)) {
        auto bad = bytes;
        bad[i] ^= 0x40;
        refused(bad);
    }
    // wrong configuration: other options, other scheme, other observer type
    Obs w(s, other_options);
    REQUIRE(w.observe(few).ok());
    std::vector<std::uint8_t> wb(w.state_size());
    REQUIRE(w.save(wb).ok());
    refused(wb);
    CHECK_THROWS_AS(v.merge(w), lowbit::error);
    CHECK(unchanged(v, keep));
    lowbit::mse_observer<S4s, Obs::bins> other_kind;
    REQUIRE(other_kind.observe(few).ok());
    std::vector<std::uint8_t> kb(other_kind.state_size());
    REQUIRE(other_kind.save(kb).ok());
    if (Obs::kind != lowbit::observer_kind::mse) refused(kb);

    // inconsistent payloads with a valid checksum
    const auto& h = a.histogram();
    std::vector<std::uint64_t> c(h.counts().begin(), h.counts().end());
    const auto st = h.stats();
    refused(craft(a, h.exponent(), st.min, st.max, st.count + 1, st.batches, c));  // count != sum
    refused(craft(a, h.exponent(), st.min, st.max, st.count, 0, c));              // no batches
    refused(craft(a, h.exponent(), st.min, st.max, st.count, st.count + 1, c));   // batches > count
    refused(craft(a, h.exponent() + 1, st.min, st.max, st.count, st.batches, c));  // exponent
    refused(craft(a, h.exponent(), st.max, st.min, st.count, st.batches, c));      // min > max
    refused(craft(a, h.exponent(), std::numeric_limits<float>::quiet_NaN(), st.max, st.count, st.batches, c));
    refused(craft(a, h.exponent(), st.min * 0.5f, st.max, st.count, st.batches, c));  // min's bin not the first
    auto moved = c;
    std::size_t last = moved.size() - 1;
    while (moved[last] == 0) --last;
    moved[last] -= 1;
    moved[last - 1] += 1;
    if (moved[last] == 0) refused(craft(a, h.exponent(), st.min, st.max, st.count, st.batches, moved));
    std::vector<std::uint64_t> zeros(c.size(), 0);
    refused(craft(a, a.histogram().min_exponent, std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(), 0, 1, zeros));  // empty with a batch
    // a valid empty state loads (and resets)
    Obs e(s, o);
    std::vector<std::uint8_t> eb(e.state_size());
    REQUIRE(e.save(eb).ok());
    Obs f = a;
    REQUIRE(f.load(eb).ok());
    CHECK(f.stats().count == 0);
    CHECK(same(*f.qparams(), lowbit::qparams{}));

    // reset, stats, config
    Obs r = a;
    r.reset();
    CHECK(r.stats().count == 0);
    CHECK(r.config() == a.config());
    CHECK(a.stats().count == x.size());
    CHECK(a.stats().batches == 1);
    // non-finite batches and bad schemes are refused without change
    const float nan[] = {1.0f, std::numeric_limits<float>::quiet_NaN()};
    Obs n = a;
    CHECK_THROWS_AS(n.observe(nan), lowbit::error);
    CHECK(unchanged(n, a));
    Obs pc(typename Obs::scheme_type{}.per_channel(0), o);
    CHECK_THROWS_AS(pc.observe(few), lowbit::error);
    CHECK_THROWS_AS(pc.qparams(), lowbit::error);
    CHECK_THROWS_AS(pc.load(bytes), lowbit::error);
}

}  // namespace

TEST_CASE("observers: save / load round trips, bad states are refused, nothing changes", "[observer][state]") {
    check_state_handling<lowbit::percentile_observer<S8s>>(S8s{}, {99.99}, {99.9});
    check_state_handling<lowbit::percentile_observer<U8, 256>>(U8{}, {99.99}, {90.0});
    check_state_handling<lowbit::mse_observer<S8s, 512>>(S8s{}, {}, {16});
    check_state_handling<lowbit::entropy_observer<S8s>>(S8s{}, {}, {64, 0, 1, true});
    check_state_handling<lowbit::entropy_observer<U8, 1024>>(U8{}, {}, {0, 0, 2, true});
    // invalid options are refused by every call
    lowbit::percentile_observer<S8s> bad(S8s{}, {101.0});
    const float one[] = {1.0f};
    CHECK_THROWS_AS(bad.observe(one), lowbit::error);
    lowbit::entropy_observer<S8s> zero_stride(S8s{}, {0, 0, 0, true});
    CHECK_THROWS_AS(zero_stride.observe(one), lowbit::error);
    lowbit::mse_observer<lowbit::scheme<lowbit::s32>> wide;
    CHECK_THROWS_AS(wide.observe(one), lowbit::error);
    // different bin counts never merge or load (the state size differs too)
    lowbit::percentile_observer<S8s, 1024> p1024;
    lowbit::percentile_observer<S8s, 2048> p2048;
    REQUIRE(p1024.observe(one).ok());
    std::vector<std::uint8_t> bytes(p1024.state_size());
    REQUIRE(p1024.save(bytes).ok());
    CHECK_THROWS_AS(p2048.load(bytes), lowbit::error);
}

// ---------------------------------------------------------------------------------------
// fixed_qparams_observer
// ---------------------------------------------------------------------------------------

TEST_CASE("fixed_qparams_observer: torch FixedQParamsObserver", "[observer][fixed_qparams]") {
    const lowbit::qparams sig{1.0f / 256.0f, 0};
    lowbit::fixed_qparams_observer<U8> obs(U8{}, sig);
    CHECK(same(*obs.qparams(), sig));
    const float x[] = {0.25f, std::numeric_limits<float>::quiet_NaN(), 1e30f};
    REQUIRE(obs.observe(x).ok());  // values are not read
    REQUIRE(obs.observe(span<const float>()).ok());
    CHECK(obs.stats().count == 3);
    CHECK(obs.stats().batches == 1);
    CHECK(same(*obs.qparams(), sig));
    // validated at construction (exceptions enabled here)
    CHECK_THROWS_AS(lowbit::fixed_qparams_observer<U8>(U8{}, {0.0f, 0}), lowbit::error);
    CHECK_THROWS_AS(lowbit::fixed_qparams_observer<U8>(U8{}, {-1.0f, 0}), lowbit::error);
    CHECK_THROWS_AS(lowbit::fixed_qparams_observer<U8>(U8{}, {std::numeric_limits<float>::infinity(), 0}),
                    lowbit::error);
    CHECK_THROWS_AS(lowbit::fixed_qparams_observer<U8>(U8{}, {1e-40f, 0}), lowbit::error);  // denormal
    CHECK_THROWS_AS(lowbit::fixed_qparams_observer<U8>(U8{}, {0.1f, 256}), lowbit::error);
    CHECK_THROWS_AS(lowbit::fixed_qparams_observer<S8>(S8{}, {0.1f, -129}), lowbit::error);
    CHECK_THROWS_AS(lowbit::fixed_qparams_observer<U8>(U8{}.per_channel(0), sig), lowbit::error);
    CHECK_THROWS_AS(lowbit::fixed_qparams_observer<U8>(U8{}.with_reduce_range(), {0.1f, 200}), lowbit::error);

    // merge: counts add; other qparams refused
    lowbit::fixed_qparams_observer<U8> other(U8{}, sig);
    REQUIRE(other.observe(x).ok());
    REQUIRE(obs.merge(other).ok());
    CHECK(obs.stats().count == 6);
    CHECK(obs.stats().batches == 2);
    lowbit::fixed_qparams_observer<U8> tanh(U8{}, {2.0f / 256.0f, 128});
    CHECK(tanh.config() != obs.config());
    CHECK_THROWS_AS(obs.merge(tanh), lowbit::error);
    CHECK(obs.stats().count == 6);

    // save / load
    std::vector<std::uint8_t> bytes(obs.state_size());
    REQUIRE(obs.save(bytes).ok());
    lowbit::fixed_qparams_observer<U8> back(U8{}, sig);
    REQUIRE(back.load(bytes).ok());
    CHECK(same_stats(back.stats(), obs.stats()));
    const auto keep = back.stats();
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        auto bad = bytes;
        bad[i] ^= 0x01;
        CHECK_THROWS_AS(back.load(bad), lowbit::error);
        CHECK(same_stats(back.stats(), keep));
    }
    CHECK_THROWS_AS(back.load(span<const std::uint8_t>(bytes.data(), bytes.size() - 1)), lowbit::error);
    CHECK_THROWS_AS(tanh.load(bytes), lowbit::error);  // other configuration
    // an inconsistent payload with a valid checksum
    std::vector<std::uint8_t> crafted(back.state_size());
    REQUIRE(lowbit::save_state(static_cast<std::uint16_t>(lowbit::observer_kind::fixed_qparams), back.config(), crafted,
                               [&](lowbit::state_writer& w) {
                                   w.f32(sig.scale);
                                   w.i32(sig.zero_point);
                                   w.u64(1);
                                   w.u64(2);  // batches > count
                               })
                .ok());
    CHECK_THROWS_AS(back.load(crafted), lowbit::error);
    CHECK(same_stats(back.stats(), keep));
    back.reset();
    CHECK(back.stats().count == 0);
}
