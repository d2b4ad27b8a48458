// histogram_observer: torch_1_13 mode against PyTorch 1.13's HistogramObserver on batch
// sequences (final qparams, search range, min/max after each batch and, for some sequences,
// the whole histogram; all exact bits), the corrected mode on cases whose answer is known,
// merge / save / load properties and refused input.
#include "lowbit_catch.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <lowbit/observers/histogram.hpp>
#include <lowbit/observers/minmax.hpp>

namespace {

using lowbit::histogram_mode;

std::uint32_t bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

float hexf(const std::string& s) { return std::strtof(s.c_str(), nullptr); }

// ---- the generator's batch recipes (tests/golden/generate_observers_histogram.py) ----------
float uniform(std::uint64_t seed, std::uint64_t i) {
    std::uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<float>(z >> 40) * 5.9604644775390625e-08f;  // 2^-24
}

struct batch_spec {
    std::string kind;
    std::size_t n = 0;
    std::uint64_t seed = 0;
    float c = 0, s = 1;
    std::size_t period = 0;
    float spike = 0;
    std::vector<float> values;  // explicit
};

std::vector<float> make_batch(const batch_spec& b) {
    if (b.kind == "explicit") return b.values;
    std::vector<float> x(b.n);
    for (std::size_t i = 0; i < b.n; ++i) {
        if (b.kind == "uniform") {
            volatile float d = uniform(b.seed, i) - b.c;  // one rounding per operation, as numpy
            x[i] = d * b.s;
        } else if (b.kind == "gauss" || b.kind == "relu") {
            volatile float t = uniform(b.seed, 4 * i) + uniform(b.seed, 4 * i + 1);
            t = t + uniform(b.seed, 4 * i + 2);
            t = t + uniform(b.seed, 4 * i + 3);
            volatile float d = t - b.c;
            float v = d * b.s;
            if (b.kind == "relu") v = v > 0.0f ? v : 0.0f;
            x[i] = v;
        } else if (b.kind == "const") {
            x[i] = b.c;
        } else {
            FAIL("unknown batch kind " << b.kind);
        }
    }
    if (b.period > 0)
        for (std::size_t i = 0; i < b.n; i += b.period) x[i] = b.spike;
    return x;
}

struct golden_case {
    std::string name, fmt, sym, file;
    bool reduce = false, custom = false;
    int qmin = 0, qmax = 0;
    std::size_t bins = 0;
    std::vector<batch_spec> batches;
    std::vector<float> state_min, state_max;
    float search_min = 0, search_max = 0, scale = 0;
    std::int32_t zp = 0;
    std::vector<float> hist;
    bool has_init = false;  // a state set directly (init line) instead of batches
    float init_min = 0, init_max = 0;
    std::uint64_t init_seed = 0;
    float init_scale = 0;
    std::size_t init_zero_mod = 0;
    bool init_explicit = false;
    struct qerr_row {
        std::int64_t s, e, dst;
        float value;
    };
    std::vector<qerr_row> qerr;
    int line = 0;
};

struct sum_case {
    std::size_t n = 0;
    std::uint64_t seed = 0;
    float scale = 0, value = 0;
    int line = 0;
};

// prod3 of the generator: v = ((u0 * u1) * u2) * scale, three draws per value.
std::vector<float> prod3(std::size_t n, std::uint64_t seed, float scale) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        volatile float p = uniform(seed, 3 * i) * uniform(seed, 3 * i + 1);
        p = p * uniform(seed, 3 * i + 2);
        v[i] = p * scale;
    }
    return v;
}

std::vector<sum_case> g_sums;  // filled by load_cases for the primitives file

std::vector<golden_case> load_cases(const std::string& file) {
    std::ifstream in(std::string(LOWBIT_TEST_DATA_DIR) + "/" + file);
    REQUIRE(in.good());
    std::vector<golden_case> cases;
    golden_case g;
    std::string line, tok;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (line.empty() || line[0] == '#') continue;
        std::istringstream f(line);
        f >> tok;
        if (tok == "case") {
            g = golden_case{};
            g.file = file;
            g.line = n;
            int r = 0, c = 0;
            f >> g.name >> g.fmt >> g.sym >> r >> g.qmin >> g.qmax >> c >> g.bins;
            g.reduce = r != 0;
            g.custom = c != 0;
        } else if (tok == "batch") {
            batch_spec b;
            f >> b.kind;
            if (b.kind == "explicit") {
                f >> b.n;
                b.values.resize(b.n);
                for (auto& v : b.values) f >> tok, v = hexf(tok);
            } else {
                f >> b.n >> b.seed >> tok;
                b.c = hexf(tok);
                f >> tok;
                b.s = hexf(tok);
                f >> b.period >> tok;
                b.spike = hexf(tok);
            }
            g.batches.push_back(b);
        } else if (tok == "init") {
            std::string a, b, how;
            f >> a >> b >> how;
            g.has_init = true;
            g.init_min = hexf(a);
            g.init_max = hexf(b);
            g.init_explicit = how == "explicit";
            if (!g.init_explicit) {
                f >> g.init_seed >> tok >> g.init_zero_mod;
                g.init_scale = hexf(tok);
            }
        } else if (tok == "qerr") {
            golden_case::qerr_row q{};
            f >> q.s >> q.e >> q.dst >> tok;
            q.value = hexf(tok);
            g.qerr.push_back(q);
        } else if (tok == "sum") {
            sum_case c;
            c.line = n;
            f >> c.n >> c.seed >> tok;
            c.scale = hexf(tok);
            f >> tok;
            c.value = hexf(tok);
            g_sums.push_back(c);
        } else if (tok == "state") {
            std::string a, b;
            f >> a >> b;
            g.state_min.push_back(hexf(a));
            g.state_max.push_back(hexf(b));
        } else if (tok == "search") {
            std::string a, b;
            f >> a >> b;
            g.search_min = hexf(a);
            g.search_max = hexf(b);
        } else if (tok == "qparams") {
            f >> tok >> g.zp;
            g.scale = hexf(tok);
        } else if (tok == "hist") {
            std::size_t nb = 0;
            f >> nb;
            while (f >> tok) {
                if (tok.rfind("0*", 0) == 0)
                    g.hist.insert(g.hist.end(), std::stoul(tok.substr(2)), 0.0f);
                else
                    g.hist.push_back(hexf(tok));
            }
            REQUIRE(g.hist.size() == nb);
        } else if (tok == "end") {
            cases.push_back(g);
        }
    }
    return cases;
}

template <class Scheme>
Scheme configure(const golden_case& g) {
    Scheme s{};
    if (g.custom) s = s.with_range(g.qmin, g.qmax);
    if (g.reduce) s = s.with_reduce_range(true);
    return s;
}

std::string where(const golden_case& g) {
    return g.file + ":" + std::to_string(g.line) + " " + g.name + " " + g.fmt + " " + g.sym +
           (g.reduce ? " reduce_range" : "") + " [" + std::to_string(g.qmin) + "," + std::to_string(g.qmax) + "] bins " +
           std::to_string(g.bins);
}

// The state of an init line, through save_state + load().
template <class Obs>
void inject(Obs& obs, const golden_case& g) {
    std::vector<float> h = g.hist;
    if (!g.init_explicit) {
        h = prod3(Obs::bins, g.init_seed, g.init_scale);
        if (g.init_zero_mod > 0)
            for (std::size_t i = 0; i < h.size(); i += g.init_zero_mod) h[i] = 0.0f;
    }
    REQUIRE(h.size() == Obs::bins);
    std::vector<std::uint8_t> buf(obs.state_size());
    REQUIRE(lowbit::save_state(static_cast<std::uint16_t>(Obs::kind), obs.config(), buf, [&](lowbit::state_writer& w) {
                w.f32(g.init_min);
                w.f32(g.init_max);
                w.u64(1);
                w.u64(1);
                for (float v : h) w.f32(v);
            }).ok());
    REQUIRE(obs.load(buf).ok());
}

template <class Scheme, std::size_t Bins>
void run_golden(const golden_case& g, histogram_mode mode) {
    INFO(where(g) << " mode " << lowbit::to_string(mode));
    using obs_t = lowbit::histogram_observer<Scheme, Bins>;
    auto obs = std::make_unique<obs_t>(configure<Scheme>(g), mode);
    if (g.has_init) inject(*obs, g);
    for (std::size_t b = 0; b < g.batches.size(); ++b) {
        const std::vector<float> x = make_batch(g.batches[b]);
        REQUIRE(obs->observe(x).ok());
        INFO("after batch " << b);
        CHECK(bits(obs->stats().min) == bits(g.state_min[b]));
        CHECK(bits(obs->stats().max) == bits(g.state_max[b]));
    }
    if (!g.hist.empty()) {
        const auto h = obs->histogram();
        REQUIRE(h.size() == g.hist.size());
        std::size_t diff = 0, first = 0;
        for (std::size_t i = 0; i < h.size(); ++i)
            if (bits(h[i]) != bits(g.hist[i]) && diff++ == 0) first = i;
        INFO("first differing bin " << first << ": torch " << g.hist[first] << " lowbit " << h[first]);
        CHECK(diff == 0);
    }
    std::vector<float> scratch(Bins);
    for (const auto& q : g.qerr) {
        const double v = lowbit::detail::hist::quantization_error(obs->histogram().data(), Bins, obs->stats().min,
                                                                   obs->stats().max, q.s, q.e, q.dst, scratch.data());
        INFO("_compute_quantization_error(" << q.s << ", " << q.e << ") dst " << q.dst << ": torch " << q.value
                                             << " lowbit " << v);
        CHECK(bits(static_cast<float>(v)) == bits(q.value));
    }
    const lowbit::histogram_range r = *obs->search_range();
    INFO("search torch [" << g.search_min << ", " << g.search_max << "] lowbit [" << r.min << ", " << r.max << "]");
    CHECK(bits(r.min) == bits(g.search_min));
    CHECK(bits(r.max) == bits(g.search_max));
    const lowbit::qparams qp = *obs->qparams();
    INFO("scale torch " << g.scale << " lowbit " << qp.scale);
    CHECK(bits(qp.scale) == bits(g.scale));
    CHECK(qp.zero_point == g.zp);
}

template <class Scheme>
void run_bins(const golden_case& g, histogram_mode mode) {
    switch (g.bins) {
        case 2048: return run_golden<Scheme, 2048>(g, mode);
        case 255: return run_golden<Scheme, 255>(g, mode);
        case 100: return run_golden<Scheme, 100>(g, mode);
        default: FAIL("no instantiation for " << g.bins << " bins");
    }
}

void run_any(const golden_case& g, histogram_mode mode = histogram_mode::torch_1_13) {
    using namespace lowbit;
    if (g.fmt == "u8" && g.sym == "affine") return run_bins<scheme<u8, symmetry::affine>>(g, mode);
    if (g.fmt == "s8" && g.sym == "symmetric") return run_bins<scheme<s8, symmetry::symmetric>>(g, mode);
    REQUIRE(g.bins == 2048);
    if (g.fmt == "s8" && g.sym == "affine") return run_golden<scheme<s8, symmetry::affine>, 2048>(g, mode);
    if (g.fmt == "u8" && g.sym == "symmetric") return run_golden<scheme<u8, symmetry::symmetric>, 2048>(g, mode);
    FAIL("unknown configuration " << where(g));
}

}  // namespace

TEST_CASE("histogram observer (torch_1_13) equals torch 1.13 on batch sequences", "[observers][golden][histogram]") {
    const auto cases = load_cases("observer_histogram.txt");
    REQUIRE(cases.size() > 300);
    for (const auto& g : cases) run_any(g);
}

TEST_CASE("histogram observer (torch_1_13) histograms equal torch's bin for bin", "[observers][golden][histogram]") {
    const auto cases = load_cases("observer_histogram_hist.txt");
    REQUIRE(cases.size() >= 8);
    for (const auto& g : cases) {
        REQUIRE(g.hist.size() == g.bins);
        run_any(g);
    }
}

TEST_CASE("histogram observer primitives equal torch: torch.sum, quantization error, search on set states",
          "[observers][golden][histogram]") {
    g_sums.clear();
    const auto cases = load_cases("observer_histogram_primitives.txt");
    REQUIRE(g_sums.size() >= 20);
    for (const auto& c : g_sums) {
        const std::vector<float> v = prod3(c.n, c.seed, c.scale);
        const float got = lowbit::detail::hist::torch_sum(v.data(), v.size());
        INFO("line " << c.line << ": torch.sum of " << c.n << " values: torch " << c.value << " lowbit " << got);
        CHECK(bits(got) == bits(c.value));
    }
    REQUIRE(cases.size() >= 8);
    for (const auto& g : cases) {
        REQUIRE(g.has_init);
        run_any(g);
    }
}

TEST_CASE("histogram observer (corrected) equals torch's code with the three fixes", "[observers][golden][histogram]") {
    const auto cases = load_cases("observer_histogram_corrected.txt");
    REQUIRE(cases.size() > 150);
    for (const auto& g : cases) run_any(g, histogram_mode::corrected);
}

// ---------------------------------------------------------------------------------------------
// Corrected mode: cases with a known answer, and properties
// ---------------------------------------------------------------------------------------------
namespace {

using u8_affine = lowbit::scheme<lowbit::u8>;
using obs2048 = lowbit::histogram_observer<u8_affine>;

std::vector<float> gaussian(std::size_t n, std::uint32_t seed, float sigma = 1.0f, float mean = 0.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(mean, sigma);
    std::vector<float> x(n);
    for (auto& v : x) v = d(rng);
    return x;
}

std::vector<float> uniform_data(std::size_t n, std::uint32_t seed, float lo, float hi) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> x(n);
    for (auto& v : x) v = d(rng);
    x[0] = lo;
    x[1] = hi;
    return x;
}

template <class T>
lowbit::span<const T> sp(const std::vector<T>& v) {  // also for temporaries (alive to the end of the full expression)
    return {v.data(), v.size()};
}

template <class T>
lowbit::span<T> sp_mut(std::vector<T>& v) {
    return {v.data(), v.size()};
}

double mass(const lowbit::span<const float>& h) {
    double m = 0;
    for (float v : h) m += v;
    return m;
}

template <class Obs>
std::vector<std::uint8_t> saved(const Obs& o) {
    std::vector<std::uint8_t> buf(o.state_size());
    REQUIRE(o.save(buf).ok());
    return buf;
}

}  // namespace

TEST_CASE("corrected: a uniform distribution keeps (nearly) its whole range", "[observers][histogram]") {
    auto obs = std::make_unique<obs2048>();
    const auto x = uniform_data(1 << 16, 1, -2.0f, 6.0f);
    REQUIRE(obs->observe(x).ok());
    const auto r = *obs->search_range();
    CHECK(r.min >= -2.0f);
    CHECK(r.max <= 6.0f);
    CHECK(r.min < -2.0f + 0.01f * 8.0f);  // clips at most ~1% of the range at either end
    CHECK(r.max > 6.0f - 0.01f * 8.0f);
}

TEST_CASE("corrected: a few far outliers are clipped", "[observers][histogram]") {
    // (With few samples the L2 criterion keeps a lone far outlier: clipping it costs its squared
    // distance, more than the finer steps save. With 2^20 samples both go.)
    auto obs = std::make_unique<obs2048>();
    auto x = gaussian(1 << 20, 2);
    x[10] = 60.0f;
    x[20] = -45.0f;
    REQUIRE(obs->observe(x).ok());
    CHECK(obs->stats().min == -45.0f);
    const auto r = *obs->search_range();
    CHECK(r.max < 10.0f);  // the outliers are not worth the resolution they would cost
    CHECK(r.min > -10.0f);
    CHECK(r.max > 3.0f);
    CHECK(r.min < -3.0f);
}

TEST_CASE("corrected: a 4-bit search clips more than an 8-bit one on Gaussian data", "[observers][histogram]") {
    using s8 = lowbit::scheme<lowbit::s8, lowbit::symmetry::affine>;
    using s4 = lowbit::scheme<lowbit::s4, lowbit::symmetry::affine>;
    const auto x = gaussian(1 << 16, 3);
    auto o8 = std::make_unique<lowbit::histogram_observer<s8>>();
    auto o4 = std::make_unique<lowbit::histogram_observer<s4>>();
    REQUIRE(o8->observe(x).ok());
    REQUIRE(o4->observe(x).ok());
    CHECK(o8->search_levels() == 256);
    CHECK(o4->search_levels() == 16);
    const auto r8 = *o8->search_range(), r4 = *o4->search_range();
    CHECK(r4.max - r4.min < 0.9f * (r8.max - r8.min));
    // torch 1.13 searches a 4-bit range as if it had 256 levels: the 8-bit answer
    auto t4 = std::make_unique<lowbit::histogram_observer<s4>>(s4{}, histogram_mode::torch_1_13);
    auto t8 = std::make_unique<lowbit::histogram_observer<s8>>(s8{}, histogram_mode::torch_1_13);
    REQUIRE(t4->observe(x).ok());
    REQUIRE(t8->observe(x).ok());
    CHECK(t4->search_levels() == 256);
    CHECK(bits(t4->search_range()->min) == bits(t8->search_range()->min));
    CHECK(bits(t4->search_range()->max) == bits(t8->search_range()->max));
}

TEST_CASE("torch_1_13: 4-bit formats equal torch's 8-bit dtypes with a 4-bit quant range", "[observers][histogram]") {
    using namespace lowbit;
    const auto x = gaussian(5000, 4, 2.0f, 0.5f);
    auto a = std::make_unique<histogram_observer<scheme<s4, symmetry::symmetric>>>(scheme<s4, symmetry::symmetric>{},
                                                                                  histogram_mode::torch_1_13);
    auto b = std::make_unique<histogram_observer<scheme<s8, symmetry::symmetric>>>(
        scheme<s8, symmetry::symmetric>{}.with_range(-8, 7), histogram_mode::torch_1_13);
    auto c = std::make_unique<histogram_observer<scheme<u4>>>(scheme<u4>{}, histogram_mode::torch_1_13);
    auto d = std::make_unique<histogram_observer<scheme<u8>>>(scheme<u8>{}.with_range(0, 15), histogram_mode::torch_1_13);
    REQUIRE(a->observe(x).ok());
    REQUIRE(b->observe(x).ok());
    REQUIRE(c->observe(x).ok());
    REQUIRE(d->observe(x).ok());
    CHECK(*a->qparams() == *b->qparams());
    CHECK(*c->qparams() == *d->qparams());
}

TEST_CASE("corrected bins every value, torch_1_13 drops what int(min)..int(max) excludes", "[observers][histogram]") {
    const auto x = uniform_data(10000, 5, -0.5f, 3.7f);  // torch's histc range: [0, 3]
    auto c = std::make_unique<obs2048>();
    auto t = std::make_unique<obs2048>(u8_affine{}, histogram_mode::torch_1_13);
    REQUIRE(c->observe(x).ok());
    REQUIRE(t->observe(x).ok());
    CHECK(mass(c->histogram()) == 10000.0);
    std::size_t inside = 0;
    for (float v : x) inside += v >= 0.0f && v <= 3.0f;
    CHECK(mass(t->histogram()) == static_cast<double>(inside));
    CHECK(inside < 10000);
}

TEST_CASE("a constant first batch: corrected keeps it, torch_1_13 discards it", "[observers][histogram]") {
    const std::vector<float> k(1000, 2.5f);
    const auto x = gaussian(3000, 6);
    auto c = std::make_unique<obs2048>();
    auto t = std::make_unique<obs2048>(u8_affine{}, histogram_mode::torch_1_13);
    REQUIRE(c->observe(k).ok());
    REQUIRE(t->observe(k).ok());
    CHECK(c->histogram()[0] == 1000.0f);  // a point state: all its mass in bin 0
    CHECK(mass(c->histogram()) == 1000.0);
    auto r = *c->search_range();
    CHECK(r.min == 2.5f);
    CHECK(r.max == 2.5f);
    REQUIRE(c->observe(x).ok());
    REQUIRE(t->observe(x).ok());
    CHECK(mass(c->histogram()) == 4000.0);
    CHECK(mass(t->histogram()) < 3001.0);  // the constant batch is gone
    CHECK(c->stats().max >= 2.5f);
    // and a second constant batch of the same value adds up
    auto c2 = std::make_unique<obs2048>();
    REQUIRE(c2->observe(k).ok());
    REQUIRE(c2->observe(k).ok());
    CHECK(c2->histogram()[0] == 2000.0f);
    CHECK(*c2->qparams() == *lowbit::choose_qparams(u8_affine{}, 2.5f, 2.5f));
}

TEST_CASE("histogram observer: mass is kept through range growth (corrected)", "[observers][histogram]") {
    auto obs = std::make_unique<obs2048>();
    double n = 0;
    for (int b = 0; b < 6; ++b) {
        const auto x = gaussian(20000, 10 + static_cast<std::uint32_t>(b), 0.5f + static_cast<float>(b), 0.3f * static_cast<float>(b));
        REQUIRE(obs->observe(x).ok());
        n += static_cast<double>(x.size());
        INFO("batch " << b);
        // torch's combine takes differences of cumulative sums (of 128 copies per bin) rounded
        // to float32: up to half an ulp of 128 n per bin and combine, here < 1e-4 n.
        CHECK(std::fabs(mass(obs->histogram()) - n) <= 1e-4 * n);
        for (float v : x) CHECK_FALSE((v < obs->stats().min || v > obs->stats().max));
    }
    CHECK(obs->stats().count == static_cast<std::uint64_t>(n));
    CHECK(obs->stats().batches == 6);
}

TEST_CASE("histogram observer: once the range is set, splitting batches changes nothing", "[observers][histogram]") {
    for (auto mode : {histogram_mode::corrected, histogram_mode::torch_1_13}) {
        auto x = gaussian(50000, 7, 3.0f);
        std::swap(x[0], *std::min_element(x.begin(), x.end()));
        std::swap(x[1], *std::max_element(x.begin(), x.end()));
        auto one = std::make_unique<obs2048>(u8_affine{}, mode);
        REQUIRE(one->observe(x).ok());
        auto split = std::make_unique<obs2048>(u8_affine{}, mode);
        std::size_t at = 0;
        for (std::size_t len : {std::size_t(2), std::size_t(1), std::size_t(777), std::size_t(20000), std::size_t(29220)}) {
            REQUIRE(split->observe(lowbit::span<const float>(x.data() + at, len)).ok());
            at += len;
        }
        REQUIRE(at == x.size());
        CHECK(saved(*split) != saved(*one));  // counts and batches differ...
        for (std::size_t i = 0; i < obs2048::bins; ++i) REQUIRE(bits(split->histogram()[i]) == bits(one->histogram()[i]));
        CHECK(*split->qparams() == *one->qparams());  // ...the histogram and qparams do not
    }
}

TEST_CASE("histogram observer: the vector paths equal the scalar reference", "[observers][histogram]") {
    namespace h = lowbit::detail::hist;
    std::mt19937 rng(8);
    // quantization error: vectorised bins vs bin_norm one by one
    for (int t = 0; t < 200; ++t) {
        std::vector<float> hist(2048);
        for (auto& v : hist) v = static_cast<float>(rng() % 1000) * (rng() % 3 == 0 ? 0.0f : 0.37f);
        const float mn = -static_cast<float>(rng() % 1000) / 97.0f, mx = mn + 0.01f + static_cast<float>(rng() % 1000) / 13.0f;
        const std::int64_t s = static_cast<std::int64_t>(rng() % 2048);
        const std::int64_t e = s + static_cast<std::int64_t>(rng() % (2048 - static_cast<std::uint32_t>(s)));
        const std::int64_t dst = std::vector<std::int64_t>{16, 256, 255, 4096, 65536}[rng() % 5];
        std::vector<float> norm(2048);
        const double got = h::quantization_error(hist.data(), 2048, mn, mx, s, e, dst, norm.data());
        const double bw = (double(mx) - double(mn)) / 2048.0, dw = bw * double(e - s + 1) / double(dst);
        h::qerr_consts c{};
        c.bw = static_cast<float>(bw);
        c.dbw = static_cast<float>(dw);
        c.half = static_cast<float>(dw / 2.0);
        c.half_cube = (c.half * c.half) * c.half;
        c.full_bin = (c.half_cube + c.half_cube) / 3.0f;
        c.dbw_d = static_cast<double>(c.dbw);
        c.top = static_cast<std::int32_t>(dst - 1);
        c.dst_top = static_cast<float>(dst);
        std::vector<float> ref(2048);
        for (std::size_t i = 0; i < 2048; ++i) ref[i] = h::bin_norm(hist[i], static_cast<std::int64_t>(i), s, c);
        for (std::size_t i = 0; i < 2048; ++i) REQUIRE(bits(norm[i]) == bits(ref[i]));
        CHECK(bits(static_cast<float>(got)) == bits(h::torch_sum(ref.data(), ref.size())));
    }
    // the batch counts come from kernels::histogram: the same bins as histc_bin, including
    // values on and next to bin edges
    for (int t = 0; t < 50; ++t) {
        const float left = -static_cast<float>(rng() % 100) / 7.0f, right = left + 0.5f + static_cast<float>(rng() % 100);
        const float w = right - left;
        std::vector<float> x;
        for (int k = 0; k <= 2048; k += 1 + static_cast<int>(rng() % 5)) {
            const float e = left + static_cast<float>(k) * (w / 2048.0f);
            x.push_back(e);
            x.push_back(std::nextafter(e, -1e30f));
            x.push_back(std::nextafter(e, 1e30f));
        }
        x.push_back(left - 1.0f);
        x.push_back(right + 1.0f);
        std::vector<std::uint64_t> counts(2048), ref(2049);
        REQUIRE(lowbit::kernels::histogram(x, left, right, counts).ok());
        for (float v : x) ++ref[v >= left && v <= right ? h::histc_bin(v, left, w, 2048.0f, 2047) : 2048];
        for (std::size_t b = 0; b < 2048; ++b) REQUIRE(counts[b] == ref[b]);
    }
}

// ---------------------------------------------------------------------------------------------
// merge, save / load, errors
// ---------------------------------------------------------------------------------------------
TEST_CASE("histogram merge: copy into empty, sums on equal ranges, union range otherwise", "[observers][histogram][merge]") {
    for (auto mode : {histogram_mode::corrected, histogram_mode::torch_1_13}) {
        INFO(lowbit::to_string(mode));
        auto x = uniform_data(30000, 9, -3.0f, 5.0f);
        auto y = uniform_data(20000, 10, -3.0f, 5.0f);
        auto a = std::make_unique<obs2048>(u8_affine{}, mode), b = std::make_unique<obs2048>(u8_affine{}, mode);
        REQUIRE(a->observe(x).ok());
        REQUIRE(b->observe(y).ok());
        // into an empty observer: an exact copy
        auto e = std::make_unique<obs2048>(u8_affine{}, mode);
        REQUIRE(e->merge(*a).ok());
        CHECK(saved(*e) == saved(*a));
        // an empty other: nothing changes
        REQUIRE(a->merge(obs2048(u8_affine{}, mode)).ok());
        CHECK(saved(*e) == saved(*a));
        // equal ranges: the bin-wise float sum, either way round
        auto ab = std::make_unique<obs2048>(*a), ba = std::make_unique<obs2048>(*b);
        REQUIRE(ab->merge(*b).ok());
        REQUIRE(ba->merge(*a).ok());
        for (std::size_t i = 0; i < obs2048::bins; ++i) {
            REQUIRE(bits(ab->histogram()[i]) == bits(a->histogram()[i] + b->histogram()[i]));
            REQUIRE(bits(ba->histogram()[i]) == bits(ab->histogram()[i]));
        }
        CHECK(ab->stats().count == 50000);
        CHECK(ab->stats().batches == 2);
        // different ranges: the union range, mass kept, but order matters
        auto z = gaussian(40000, 11, 4.0f, 3.0f);
        auto c = std::make_unique<obs2048>(u8_affine{}, mode);
        REQUIRE(c->observe(z).ok());
        auto ac = std::make_unique<obs2048>(*a), ca = std::make_unique<obs2048>(*c);
        REQUIRE(ac->merge(*c).ok());
        REQUIRE(ca->merge(*a).ok());
        CHECK(ac->stats().min == std::min(a->stats().min, c->stats().min));
        CHECK(ca->stats().min == ac->stats().min);
        CHECK(ac->stats().max >= std::max(a->stats().max, c->stats().max));
        if (mode == histogram_mode::corrected) {
            CHECK(std::fabs(mass(ac->histogram()) - 70000.0) < 0.1);
            CHECK(std::fabs(mass(ca->histogram()) - 70000.0) < 0.1);
        }
        CHECK(saved(*ac) != saved(*ca));  // documented: merge is not order-independent
        // merging with itself doubles
        auto d = std::make_unique<obs2048>(*a);
        REQUIRE(d->merge(*d).ok());
        for (std::size_t i = 0; i < obs2048::bins; ++i) REQUIRE(d->histogram()[i] == 2.0f * a->histogram()[i]);
    }
}

TEST_CASE("histogram merge refuses other configurations", "[observers][histogram][merge][errors]") {
    auto a = std::make_unique<obs2048>();
    auto t = std::make_unique<obs2048>(u8_affine{}, histogram_mode::torch_1_13);
    auto r = std::make_unique<obs2048>(u8_affine{}.with_reduce_range(true));
    const auto x = gaussian(100, 12);
    REQUIRE(a->observe(x).ok());
    REQUIRE(t->observe(x).ok());
    const auto before = saved(*a);
    CHECK_THROWS_AS(a->merge(*t), lowbit::error);
    CHECK_THROWS_AS(a->merge(*r), lowbit::error);
    CHECK(saved(*a) == before);
    CHECK(a->config() != t->config());
    CHECK(a->config() != lowbit::histogram_observer<u8_affine, 1024>().config());
}

TEST_CASE("histogram save / load round trip and refused states", "[observers][histogram][state]") {
    for (auto mode : {histogram_mode::corrected, histogram_mode::torch_1_13}) {
        auto a = std::make_unique<obs2048>(u8_affine{}, mode);
        REQUIRE(a->observe(sp(gaussian(5000, 13))).ok());
        REQUIRE(a->observe(sp(gaussian(5000, 14, 3.0f))).ok());
        const auto buf = saved(*a);
        CHECK(buf.size() == a->state_size());
        CHECK(buf.size() == lowbit::state_header_size + 24 + 4 * 2048);
        auto b = std::make_unique<obs2048>(u8_affine{}, mode);
        REQUIRE(b->load(buf).ok());
        CHECK(saved(*b) == buf);
        CHECK(*b->qparams() == *a->qparams());
        CHECK(b->stats().count == 10000);
        // then both go on identically
        const auto x = gaussian(3000, 15, 5.0f);
        REQUIRE(a->observe(x).ok());
        REQUIRE(b->observe(x).ok());
        CHECK(saved(*b) == saved(*a));
        // an empty state round-trips too
        auto e = std::make_unique<obs2048>(u8_affine{}, mode);
        REQUIRE(b->load(sp(saved(*e))).ok());
        CHECK(*b->qparams() == lowbit::qparams{});
        // refused: nothing changes
        REQUIRE(b->load(buf).ok());
        const auto keep = saved(*b);
        auto truncated = buf;
        truncated.pop_back();
        CHECK_THROWS_AS(b->load(truncated), lowbit::error);
        auto corrupt = buf;
        corrupt[100] ^= 1;
        CHECK_THROWS_AS(b->load(corrupt), lowbit::error);
        auto other_mode = std::make_unique<obs2048>(u8_affine{}, mode == histogram_mode::corrected ? histogram_mode::torch_1_13
                                                                                                   : histogram_mode::corrected);
        CHECK_THROWS_AS(other_mode->load(buf), lowbit::error);
        lowbit::minmax_observer<u8_affine> mm;
        CHECK_THROWS_AS(b->load(sp(saved(mm))), lowbit::error);
        // a well-formed header around an inconsistent payload
        const auto forge = [&](float mn, float mx, std::uint64_t batches, float value, int at = 0) {
            std::vector<std::uint8_t> f(b->state_size());
            REQUIRE(lowbit::save_state(static_cast<std::uint16_t>(obs2048::kind), b->config(), f, [&](lowbit::state_writer& w) {
                        w.f32(mn);
                        w.f32(mx);
                        w.u64(batches);
                        w.u64(batches);
                        for (int i = 0; i < 2048; ++i) w.f32(i == at ? value : 0.0f);
                    }).ok());
            return f;
        };
        CHECK(b->load(sp(forge(-1.0f, 1.0f, 1, 5.0f))).ok());
        REQUIRE(b->load(buf).ok());
        CHECK_THROWS_AS(b->load(sp(forge(2.0f, 1.0f, 1, 5.0f))), lowbit::error);                                   // min > max
        CHECK_THROWS_AS(b->load(sp(forge(-1.0f, 1.0f, 1, std::numeric_limits<float>::quiet_NaN()))), lowbit::error);  // NaN count
        CHECK_THROWS_AS(b->load(sp(forge(-1.0f, std::numeric_limits<float>::infinity(), 1, 5.0f))), lowbit::error);
        CHECK_THROWS_AS(b->load(sp(forge(-1.0f, 1.0f, 0, 5.0f))), lowbit::error);                                  // no batches
        if (mode == histogram_mode::corrected) {  // a point range keeps its mass in bin 0
            CHECK(b->load(sp(forge(1.0f, 1.0f, 1, 3.0f))).ok());
            REQUIRE(b->load(buf).ok());
            CHECK_THROWS_AS(b->load(sp(forge(1.0f, 1.0f, 1, 3.0f, 7))), lowbit::error);
        }
        const auto no_range = forge(std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(), 0, 5.0f);
        CHECK_THROWS_AS(b->load(no_range), lowbit::error);  // counts without a range
        CHECK(saved(*b) == keep);
    }
}

TEST_CASE("histogram observer refuses bad input and keeps its state", "[observers][histogram][errors]") {
    auto a = std::make_unique<obs2048>();
    REQUIRE(a->observe(sp(gaussian(1000, 16))).ok());
    const auto keep = saved(*a);
    auto x = gaussian(1000, 17, 10.0f);
    x[123] = std::numeric_limits<float>::quiet_NaN();
    try {
        (void)a->observe(x);
        FAIL("NaN accepted");
    } catch (const lowbit::error& e) {
        CHECK(e.status().value == 123.0);
    }
    x[123] = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(a->observe(x), lowbit::error);
    CHECK(saved(*a) == keep);
    REQUIRE(a->observe(lowbit::span<const float>()).ok());  // empty: nothing
    CHECK(saved(*a) == keep);
    // schemes: per-channel and invalid ones are refused
    auto pc = std::make_unique<lowbit::histogram_observer<u8_affine>>(u8_affine{}.per_channel(0));
    CHECK_THROWS_AS(pc->observe(x), lowbit::error);
    CHECK_THROWS_AS(pc->qparams(), lowbit::error);
    auto bad = std::make_unique<lowbit::histogram_observer<u8_affine>>(u8_affine{}.with_range(3, 10));
    CHECK_THROWS_AS(bad->observe(x), lowbit::error);
    // reset forgets everything; an empty observer gives torch's default
    a->reset();
    CHECK(a->stats().batches == 0);
    CHECK(mass(a->histogram()) == 0.0);
    CHECK(*a->qparams() == lowbit::qparams{});
    CHECK(saved(*a) == saved(obs2048()));
}

TEST_CASE("histogram_l2_search on a histogram kept elsewhere equals the observer's search", "[observers][histogram]") {
    for (auto mode : {histogram_mode::corrected, histogram_mode::torch_1_13}) {
        auto obs = std::make_unique<lowbit::histogram_observer<lowbit::scheme<lowbit::s4>>>(lowbit::scheme<lowbit::s4>{}, mode);
        REQUIRE(obs->observe(sp(gaussian(20000, 18, 2.0f))).ok());
        std::vector<float> scratch(2 * 2048);
        const auto r = *lowbit::histogram_l2_search(obs->histogram(), obs->stats().min, obs->stats().max,
                                                    obs->search_levels(), sp_mut(scratch));
        CHECK(bits(r.min) == bits(obs->search_range()->min));
        CHECK(bits(r.max) == bits(obs->search_range()->max));
        const auto p = *lowbit::histogram_l2_search(obs->histogram(), 1.5f, 1.5f, 256, sp_mut(scratch));
        CHECK(p.min == 1.5f);
        CHECK(p.max == 1.5f);
    }
    std::vector<float> h(8), scratch(100);
    CHECK_THROWS_AS(lowbit::histogram_l2_search(sp(h), 0.0f, 1.0f, 256, sp_mut(scratch)), lowbit::error);
    h.resize(64);
    CHECK_THROWS_AS(lowbit::histogram_l2_search(sp(h), 0.0f, 1.0f, 256, sp_mut(scratch)), lowbit::error);
    scratch.resize(128);
    CHECK_THROWS_AS(lowbit::histogram_l2_search(sp(h), 1.0f, 0.0f, 256, sp_mut(scratch)), lowbit::error);
    CHECK_THROWS_AS(lowbit::histogram_l2_search(sp(h), 0.0f, 1.0f, 1, sp_mut(scratch)), lowbit::error);
    CHECK(lowbit::histogram_l2_search(sp(h), 0.0f, 1.0f, 16, sp_mut(scratch)).ok());
}

TEST_CASE("histogram observer: the order of values within a batch does not matter", "[observers][histogram]") {
    // The batch after the first is counted in the same pass as its min / max when it stays
    // inside the current range; a value outside it anywhere must send it to the slow path.
    for (auto mode : {histogram_mode::corrected, histogram_mode::torch_1_13}) {
        for (std::size_t n : {std::size_t(1000), std::size_t(1024), std::size_t(5000), std::size_t(63)}) {
            auto base = uniform_data(4000, 19, -2.0f, 3.0f);
            auto batch = uniform_data(n, 20, -1.0f, 2.0f);
            batch[0] = 7.5f;  // outside the first batch's range
            auto first = std::make_unique<obs2048>(u8_affine{}, mode);
            REQUIRE(first->observe(base).ok());
            REQUIRE(first->observe(batch).ok());
            const auto ref = saved(*first);
            for (std::size_t at : {std::size_t(1), std::size_t(100), std::size_t(511), std::size_t(512), std::size_t(600),
                                   std::size_t(959), std::size_t(960), n - 1}) {
                if (at >= n) continue;
                auto moved = batch;
                std::swap(moved[0], moved[at]);
                auto o = std::make_unique<obs2048>(u8_affine{}, mode);
                REQUIRE(o->observe(base).ok());
                REQUIRE(o->observe(moved).ok());
                INFO(lowbit::to_string(mode) << " n " << n << " outlier at " << at);
                CHECK(saved(*o) == ref);
            }
        }
    }
}
