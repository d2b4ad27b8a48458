// Range observers: golden batch sequences from PyTorch's own observers (exact bits), the
// sharding property (any split, any order -> the same qparams), save / load round trips and
// refused bad states.
#include "lowbit_catch.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <lowbit/observers/minmax.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>

namespace {

std::uint32_t bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

struct golden_case {
    std::string observer, dtype, sym;
    bool reduce = false;
    float c = 0;
    std::size_t axis = 0;
    std::vector<std::size_t> shape;
    std::vector<std::vector<float>> batches;
    std::vector<float> mins, maxs, scales;
    std::vector<std::int32_t> zps;
    int line = 0;
};

float hexf(const std::string& s) { return std::strtof(s.c_str(), nullptr); }

std::vector<golden_case> load_cases() {
    std::ifstream in(std::string(LOWBIT_TEST_DATA_DIR) + "/observer_minmax_sequences.txt");
    std::vector<golden_case> cases;
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (line.empty() || line[0] == '#') continue;
        std::istringstream f(line);
        golden_case g;
        g.line = n;
        std::string tok;
        f >> g.observer >> g.dtype >> g.sym >> tok;
        g.reduce = tok == "1";
        f >> tok;
        g.c = hexf(tok);
        std::size_t rank = 0, nb = 0, count = 0;
        f >> g.axis >> rank;
        g.shape.resize(rank);
        for (auto& d : g.shape) f >> d;
        f >> nb;
        for (std::size_t b = 0; b < nb; ++b) {
            f >> count;
            std::vector<float> v(count);
            for (auto& x : v) f >> tok, x = hexf(tok);
            g.batches.push_back(v);
        }
        f >> count;
        g.mins.resize(count);
        g.maxs.resize(count);
        g.scales.resize(count);
        g.zps.resize(count);
        for (auto& x : g.mins) f >> tok, x = hexf(tok);
        for (auto& x : g.maxs) f >> tok, x = hexf(tok);
        for (auto& x : g.scales) f >> tok, x = hexf(tok);
        for (auto& x : g.zps) f >> x;
        cases.push_back(g);
    }
    return cases;
}

template <class Format, lowbit::symmetry Sym>
void run_case(const golden_case& g) {
    INFO("observer_minmax_sequences.txt:" << g.line << " " << g.observer << " " << g.dtype << " " << g.sym
                                          << " reduce " << g.reduce);
    auto s = lowbit::scheme<Format, Sym>{}.with_reduce_range(g.reduce);
    const lowbit::shape shp(g.shape.data(), g.shape.size());
    std::vector<float> mins, maxs, scales(g.mins.size());
    std::vector<std::int32_t> zps(g.mins.size());
    if (g.observer == "minmax" || g.observer == "moving") {
        lowbit::minmax_observer<decltype(s)> a(s);
        lowbit::moving_average_minmax_observer<decltype(s)> m(s, g.c);
        for (const auto& b : g.batches) REQUIRE((g.observer == "minmax" ? a.observe(b) : m.observe(b)).ok());
        const lowbit::observer_stats st = g.observer == "minmax" ? a.stats() : m.stats();
        const lowbit::qparams qp = g.observer == "minmax" ? *a.qparams() : *m.qparams();
        mins = {st.min};
        maxs = {st.max};
        scales[0] = qp.scale;
        zps[0] = qp.zero_point;
    } else {
        const auto pc = s.per_channel(g.axis);
        const std::size_t channels = g.shape[g.axis];
        std::vector<float> state(2 * channels);
        lowbit::per_channel_minmax_observer<decltype(pc)> a(pc, channels, state);
        lowbit::per_channel_moving_average_minmax_observer<decltype(pc)> m(pc, channels, state, g.c);
        const bool moving = g.observer == "moving_perchannel";
        for (const auto& b : g.batches) REQUIRE((moving ? m.observe(shp, b) : a.observe(shp, b)).ok());
        const auto mn = moving ? m.mins() : a.mins();
        const auto mx = moving ? m.maxs() : a.maxs();
        mins.assign(mn.begin(), mn.end());
        maxs.assign(mx.begin(), mx.end());
        REQUIRE((moving ? m.qparams(scales, zps) : a.qparams(scales, zps)).ok());
    }
    REQUIRE(mins.size() == g.mins.size());
    for (std::size_t c = 0; c < mins.size(); ++c) {
        INFO("channel " << c);
        CHECK(bits(mins[c]) == bits(g.mins[c]));
        CHECK(bits(maxs[c]) == bits(g.maxs[c]));
        CHECK(bits(scales[c]) == bits(g.scales[c]));
        CHECK(zps[c] == g.zps[c]);
    }
}

}  // namespace

TEST_CASE("range observers equal torch's on batch sequences", "[observers][golden][minmax]") {
    const std::vector<golden_case> cases = load_cases();
    REQUIRE(cases.size() >= 140);
    using lowbit::symmetry;
    for (const golden_case& g : cases) {
        const bool s8 = g.dtype == "qint8", sym = g.sym == "symmetric";
        if (s8 && sym) run_case<lowbit::s8, symmetry::symmetric>(g);
        if (s8 && !sym) run_case<lowbit::s8, symmetry::affine>(g);
        if (!s8 && sym) run_case<lowbit::u8, symmetry::symmetric>(g);
        if (!s8 && !sym) run_case<lowbit::u8, symmetry::affine>(g);
    }
}

TEST_CASE("moving average by hand", "[observers][minmax]") {
    lowbit::moving_average_minmax_observer<lowbit::scheme<lowbit::s8>> m({}, 0.5f);
    const std::vector<float> a = {-2.0f, 4.0f}, b = {0.0f, 2.0f}, c = {-6.0f, 0.0f};
    REQUIRE(m.observe(a).ok());  // first batch sets [-2, 4]
    REQUIRE(m.observe(b).ok());  // -2 + 0.5 * (0 + 2) = -1 ; 4 + 0.5 * (2 - 4) = 3
    CHECK(m.stats().min == -1.0f);
    CHECK(m.stats().max == 3.0f);
    REQUIRE(m.observe(c).ok());  // -1 + 0.5 * (-6 + 1) = -3.5 ; 3 + 0.5 * (0 - 3) = 1.5
    CHECK(m.stats().min == -3.5f);
    CHECK(m.stats().max == 1.5f);
    CHECK(m.stats().batches == 3);
    CHECK(m.stats().count == 6);
}

TEST_CASE("sharded min/max calibration equals one observer, any split and order", "[observers][merge][minmax]") {
    std::mt19937 gen(11);
    std::normal_distribution<float> d(0.3f, 2.0f);
    std::vector<float> data(5003);
    for (float& v : data) v = d(gen);
    using S = lowbit::scheme<lowbit::u8>;
    lowbit::minmax_observer<S> whole;
    REQUIRE(whole.observe(data).ok());
    for (int trial = 0; trial < 20; ++trial) {
        // random shard boundaries, shards observed by separate observers, merged in random order
        std::vector<std::size_t> cuts = {0, data.size()};
        for (int k = 0; k < trial % 7; ++k) cuts.push_back(gen() % data.size());
        std::sort(cuts.begin(), cuts.end());
        std::vector<lowbit::minmax_observer<S>> shards;
        for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
            shards.emplace_back();
            REQUIRE(shards.back().observe(lowbit::span<const float>(data.data() + cuts[i], cuts[i + 1] - cuts[i])).ok());
        }
        std::shuffle(shards.begin(), shards.end(), gen);
        lowbit::minmax_observer<S> merged;
        for (const auto& sh : shards) REQUIRE(merged.merge(sh).ok());
        CHECK(*merged.qparams() == *whole.qparams());
        CHECK(merged.stats().count == whole.stats().count);
    }
}

TEST_CASE("sharded per-channel calibration equals one observer", "[observers][merge][minmax]") {
    std::mt19937 gen(5);
    std::normal_distribution<float> d(0.0f, 1.0f);
    const auto s = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>{}.per_channel(1);
    const std::size_t C = 7;
    std::vector<float> whole_state(2 * C), a_state(2 * C), b_state(2 * C);
    lowbit::per_channel_minmax_observer<decltype(s)> whole(s, C, whole_state), a(s, C, a_state), b(s, C, b_state);
    for (int batch = 0; batch < 6; ++batch) {
        std::vector<float> x(3 * C * 2);
        for (float& v : x) v = d(gen) * static_cast<float>(batch + 1);
        REQUIRE(whole.observe(lowbit::shape{3, C, 2}, x).ok());
        REQUIRE((batch % 2 ? a : b).observe(lowbit::shape{3, C, 2}, x).ok());
    }
    REQUIRE(b.merge(a).ok());
    std::vector<float> s1(C), s2(C);
    std::vector<std::int32_t> z1(C), z2(C);
    REQUIRE(whole.qparams(s1, z1).ok());
    REQUIRE(b.qparams(s2, z2).ok());
    CHECK(s1 == s2);
    CHECK(z1 == z2);
}

TEST_CASE("save / load round trip and refused bad states", "[observers][state][minmax]") {
    using S = lowbit::scheme<lowbit::s8>;
    lowbit::minmax_observer<S> o;
    const std::vector<float> x = {-1.5f, 2.25f, 0.0f};
    REQUIRE(o.observe(x).ok());
    std::vector<std::uint8_t> buf(o.state_size());
    REQUIRE(o.save(buf).ok());

    lowbit::minmax_observer<S> p;
    REQUIRE(p.load(buf).ok());
    CHECK(*p.qparams() == *o.qparams());
    CHECK(p.stats().count == 3);

    lowbit::minmax_observer<S> q;
    const std::vector<float> y = {7.0f};
    REQUIRE(q.observe(y).ok());
    const lowbit::qparams before = *q.qparams();
    auto unchanged = [&] { CHECK(*q.qparams() == before); };

    std::vector<std::uint8_t> truncated(buf.begin(), buf.end() - 1);
    CHECK_THROWS_WITH(q.load(truncated), Catch::Contains("payload size"));
    unchanged();
    std::vector<std::uint8_t> short_header(buf.begin(), buf.begin() + 10);
    CHECK_THROWS_WITH(q.load(short_header), Catch::Contains("truncated"));
    unchanged();
    for (std::size_t i = 20; i < buf.size(); ++i) {  // every payload bit flip is caught
        std::vector<std::uint8_t> bad = buf;
        bad[i] ^= 0x10;
        CHECK_THROWS_WITH(q.load(bad), Catch::Contains("checksum"));
    }
    unchanged();
    std::vector<std::uint8_t> bad_magic = buf;
    bad_magic[0] ^= 1;
    CHECK_THROWS_WITH(q.load(bad_magic), Catch::Contains("magic"));
    std::vector<std::uint8_t> bad_version = buf;
    bad_version[4] = 9;
    CHECK_THROWS_WITH(q.load(bad_version), Catch::Contains("version"));
    lowbit::minmax_observer<lowbit::scheme<lowbit::u8>> other_config;
    CHECK_THROWS_WITH(other_config.load(buf), Catch::Contains("configuration"));
    lowbit::moving_average_minmax_observer<S> other_kind;
    CHECK_THROWS_WITH(other_kind.load(buf), Catch::Contains("kind"));
    std::vector<std::uint8_t> small(buf.size() - 1);
    CHECK_THROWS_WITH(o.save(small), Catch::Contains("out.size()"));
    unchanged();
}

TEST_CASE("per-channel save / load and bad states", "[observers][state][minmax]") {
    const auto s = lowbit::scheme<lowbit::u8>{}.per_channel(0);
    std::vector<float> st1(6), st2(6);
    lowbit::per_channel_minmax_observer<decltype(s)> a(s, 3, st1), b(s, 3, st2);
    const std::vector<float> x = {1, 2, -3, 4, 5, 6};
    REQUIRE(a.observe(lowbit::shape{3, 2}, x).ok());
    std::vector<std::uint8_t> buf(a.state_size());
    REQUIRE(a.save(buf).ok());
    REQUIRE(b.load(buf).ok());
    CHECK(std::vector<float>(b.mins().begin(), b.mins().end()) == std::vector<float>{1, -3, 5});
    CHECK(std::vector<float>(b.maxs().begin(), b.maxs().end()) == std::vector<float>{2, 4, 6});
    std::vector<float> st3(8);
    lowbit::per_channel_minmax_observer<decltype(s)> four(s, 4, st3);
    CHECK_THROWS_WITH(four.load(buf), Catch::Contains("configuration"));
    CHECK_THROWS_WITH(four.merge(a), Catch::Contains("other.config()"));
}

TEST_CASE("observers refuse bad input and keep their state", "[observers][errors][minmax]") {
    lowbit::minmax_observer<lowbit::scheme<lowbit::s8>> o;
    const std::vector<float> good = {1.0f, -1.0f};
    REQUIRE(o.observe(good).ok());
    const std::vector<float> bad = {0.0f, 2.0f, std::numeric_limits<float>::quiet_NaN()};
    CHECK_THROWS_WITH(o.observe(bad), Catch::Contains("'x[i] (index)' = 2"));
    CHECK(o.stats().max == 1.0f);
    CHECK(o.stats().batches == 1);
    lowbit::minmax_observer<lowbit::scheme<lowbit::s8>> pc(lowbit::scheme<lowbit::s8>{}.per_channel(0));
    CHECK_THROWS_WITH(pc.observe(good), Catch::Contains("'granularity'"));
    lowbit::moving_average_minmax_observer<lowbit::scheme<lowbit::s8>> m({}, 0.0f);
    CHECK_THROWS_WITH(m.observe(good), Catch::Contains("'averaging_constant' = 0"));
    const auto s = lowbit::scheme<lowbit::s8>{}.per_channel(1);
    std::vector<float> small_state(3);
    lowbit::per_channel_minmax_observer<decltype(s)> p(s, 2, small_state);
    CHECK_THROWS_WITH(p.observe(lowbit::shape{1, 2}, good), Catch::Contains("'state.size()' = 3"));
    std::vector<float> state(4);
    lowbit::per_channel_minmax_observer<decltype(s)> q(s, 2, state);
    CHECK_THROWS_WITH(q.observe(lowbit::shape{2, 1}, good), Catch::Contains("'shape[axis]' = 1"));
    // empty observers give torch's {1, 0}
    lowbit::minmax_observer<lowbit::scheme<lowbit::u8>> e;
    CHECK(*e.qparams() == lowbit::qparams{1.0f, 0});
}
