// Strided views (lowbit/core/strided.hpp) and observers fed with them: the view's checks and
// element order, its chunked visit (direct lines or gathered copies), and for every observer
// the property that observing a transposed / sliced / negatively strided / stride-2 view
// gives the same save() bytes and qparams as observing a contiguous copy of it.
#include "lowbit_catch.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <lowbit/calibrate.hpp>
#include <lowbit/core/strided.hpp>
#include <lowbit/observers/all.hpp>

namespace {

using view = lowbit::strided_view<const float>;

std::uint32_t bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

// The elements of v in element order, by index arithmetic (the reference for the visitors).
std::vector<float> naive(const view& v) {
    std::vector<float> out;
    if (v.empty()) return out;
    std::vector<std::size_t> idx(v.rank(), 0);
    for (std::size_t n = 0; n < v.size(); ++n) {
        std::ptrdiff_t off = 0;
        for (std::size_t d = 0; d < v.rank(); ++d) off += static_cast<std::ptrdiff_t>(idx[d]) * v.stride(d);
        out.push_back(v.data()[off]);
        for (std::size_t d = v.rank(); d-- > 0;) {
            if (++idx[d] < v.dim(d)) break;
            idx[d] = 0;
        }
    }
    return out;
}

template <std::size_t Buf = lowbit::strided_gather_size>
std::vector<float> chunked(const view& v, std::size_t* calls = nullptr) {
    std::vector<float> out;
    std::size_t c = 0;
    v.for_each_chunk<Buf>([&](const float* p, std::size_t n) {
        REQUIRE(n >= 1);
        REQUIRE(n <= (v.is_contiguous() ? v.size() : std::max<std::size_t>(Buf, v.size())));
        out.insert(out.end(), p, p + n);
        ++c;
    });
    if (calls) *calls = c;
    return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (bits(a[i]) != bits(b[i])) return false;
    return true;
}

template <class F>
lowbit::status error_of(F&& f) {
    try {
        f();
    } catch (const lowbit::error& e) {
        return e.status();
    }
    return {};
}

// Data with exact zeros of both signs (the sign of a zero min / max must not depend on the
// layout), ties and a spread of magnitudes.
std::vector<float> make_data(std::size_t n, unsigned seed, float scale, float shift = 0.0f) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i) {
        const float v = d(g) * scale + shift;
        x[i] = i % 17 == 3 ? -0.0f : i % 19 == 5 ? 0.0f : i % 23 == 7 ? 1.0f : v;
    }
    return x;
}

// Views of a [6, 40, 70] tensor, each with a name; each keeps dimension 0 (6) or 1 (40)
// where the per-channel tests expect it (see channel_axis).
struct view_case {
    const char* name;
    view v;
    std::size_t six_axis;  // the dimension of size 6 (channels for the per-channel tests)
};

std::vector<view_case> views_of(const std::vector<float>& x) {
    const view full = *view::make(lowbit::shape{6, 40, 70}, x);
    std::vector<view_case> out;
    out.push_back({"contiguous", full, 0});
    out.push_back({"transposed", *full.permute({2, 1, 0}), 2});
    out.push_back({"channels last", *full.permute({1, 2, 0}), 2});
    out.push_back({"sliced (long lines)", *(*full.slice(1, 5, 30)).slice(2, 0, 66), 0});
    out.push_back({"sliced (short lines)", *full.slice(2, 10, 7), 0});
    out.push_back({"negative stride", *full.slice(2, 69, 70, -1), 0});
    out.push_back({"negative outer stride", *(*full.slice(0, 5, 6, -1)).slice(1, 39, 20, -2), 0});
    out.push_back({"innermost stride 2", *full.slice(2, 1, 35, 2), 0});
    out.push_back({"innermost stride 2, transposed", *(*full.slice(2, 0, 35, 2)).permute({1, 0, 2}), 1});
    out.push_back({"one element per channel row", *(*full.slice(2, 3, 1)).slice(1, 0, 1), 0});
    return out;
}

std::vector<float> copy_of(const view& v) { return naive(v); }

template <class Obs>
std::vector<std::uint8_t> saved(const Obs& o) {
    std::vector<std::uint8_t> b(o.state_size());
    REQUIRE(o.save(b).ok());
    return b;
}

}  // namespace

// ------------------------------------------------------------------------------------------
// strided_view
// ------------------------------------------------------------------------------------------

TEST_CASE("strided_view: construction, dimensions, strides, element order", "[strided]") {
    std::vector<float> x(24);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);

    const view flat(x);
    CHECK(flat.rank() == 1);
    CHECK(flat.size() == 24);
    CHECK(flat.is_contiguous());
    CHECK(flat.contiguous_span().data() == x.data());

    const view empty;
    CHECK(empty.empty());
    CHECK(empty.rank() == 1);
    CHECK(naive(empty).empty());
    CHECK(chunked(empty).empty());

    const view t = *view::make(lowbit::shape{2, 3, 4}, x);
    CHECK(t.rank() == 3);
    CHECK(t.stride(0) == 12);
    CHECK(t.stride(1) == 4);
    CHECK(t.stride(2) == 1);
    CHECK(t.dims()[1] == 3);
    CHECK(t.is_contiguous());
    CHECK(same_bits(naive(t), x));

    const view tt = *t.permute({2, 0, 1});  // [4, 2, 3]
    CHECK(tt.dim(0) == 4);
    CHECK(tt.stride(0) == 1);
    CHECK(!tt.is_contiguous());
    CHECK(tt.contiguous_span().empty());
    CHECK(tt[0] == 0.0f);
    CHECK(tt[1] == 4.0f);   // (0, 0, 1)
    CHECK(tt[3] == 12.0f);  // (0, 1, 0)
    CHECK(tt[6] == 1.0f);   // (1, 0, 0)
    for (std::size_t n = 0; n < tt.size(); ++n) CHECK(tt[n] == naive(tt)[n]);

    const view rev = *t.slice(2, 3, 4, -1);
    CHECK(rev[0] == 3.0f);
    CHECK(rev[3] == 0.0f);
    CHECK(rev[4] == 7.0f);
    CHECK(rev.stride(2) == -1);

    const view every2 = *t.slice(2, 1, 2, 2);  // columns 1, 3
    CHECK(same_bits(naive(every2), {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23}));

    const view row = *t.select(1, 2);  // [2, 4], t[:, 2, :]
    CHECK(row.rank() == 2);
    CHECK(same_bits(naive(row), {8, 9, 10, 11, 20, 21, 22, 23}));

    const view scalar = *view::make(lowbit::shape{}, lowbit::span<const float>(x.data() + 5, 1));
    CHECK(scalar.rank() == 0);
    CHECK(scalar.size() == 1);
    CHECK(scalar.is_contiguous());
    CHECK(same_bits(chunked(scalar), {5}));

    // pointer + strides (a column-major 4 x 6 matrix read as row-major) and broadcast (stride 0)
    const view cm = *view::make(x.data(), lowbit::shape{4, 6}, {1, 4});
    CHECK(cm[1] == 4.0f);
    CHECK(cm[6] == 1.0f);
    const view bc = *view::make(x.data() + 2, lowbit::shape{3, 5}, {1, 0});
    CHECK(same_bits(naive(bc), {2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4}));
    CHECK(same_bits(chunked(bc), naive(bc)));
    const view bc_all = *view::make(x.data() + 7, lowbit::shape{2, 3}, {0, 0});
    CHECK(bc_all.is_contiguous() == false);
    CHECK(same_bits(chunked(bc_all), {7, 7, 7, 7, 7, 7}));

    // a non-const view converts to a const one
    lowbit::strided_view<float> mv = *lowbit::strided_view<float>::make(lowbit::shape{4, 6}, x);
    (*mv.slice(0, 1, 1))[2] = 100.0f;
    CHECK(x[8] == 100.0f);
    const view cv = mv;
    CHECK(cv[8] == 100.0f);

    // size-1 and zero dimensions
    const view ones = *view::make(lowbit::shape{1, 24, 1}, x);
    CHECK(ones.is_contiguous());
    const view zero = *view::make(lowbit::shape{3, 0, 8}, lowbit::span<const float>());
    CHECK(zero.empty());
    CHECK(chunked(zero).empty());
    const view zero_slice = *t.slice(1, 0, 0);
    CHECK(zero_slice.empty());
    CHECK(zero_slice.size() == 0);
}

TEST_CASE("strided_view: checks name the argument and its value", "[strided]") {
    std::vector<float> x(24);
    const auto arg = [](const lowbit::status& s) { return std::string(s.argument); };

    lowbit::status s = error_of([&] { (void)view::make(lowbit::shape{1, 1, 1, 1, 1, 1, 1, 1, 1}, x); });
    CHECK(s.code == lowbit::errc::out_of_range);
    CHECK(arg(s) == "shape.rank()");
    CHECK(s.value == 9.0);

    s = error_of([&] { (void)view::make(lowbit::shape{5, 5}, x); });
    CHECK(s.code == lowbit::errc::size_mismatch);
    CHECK(arg(s) == "x.size()");
    CHECK(s.value == 24.0);

    const std::size_t big = std::size_t(1) << 40;
    s = error_of([&] { (void)view::make(x.data(), lowbit::shape{big, big}, {1, 1}); });
    CHECK(s.code == lowbit::errc::overflow);
    CHECK(arg(s) == "shape");

    s = error_of([&] { (void)view::make(x.data(), lowbit::shape{4, 6}, {6}); });
    CHECK(arg(s) == "strides.size()");
    CHECK(s.value == 1.0);

    s = error_of([&] { (void)view::make(x.data(), lowbit::shape{2, 2}, {std::numeric_limits<std::ptrdiff_t>::min(), 1}); });
    CHECK(s.code == lowbit::errc::overflow);
    CHECK(arg(s) == "strides");

    const std::ptrdiff_t huge = std::numeric_limits<std::ptrdiff_t>::max() / 2;
    s = error_of([&] { (void)view::make(x.data(), lowbit::shape{4, 2}, {huge, 1}); });
    CHECK(s.code == lowbit::errc::overflow);
    CHECK(arg(s) == "strides");
    CHECK(s.value == static_cast<double>(huge));
    s = error_of([&] { (void)view::make(x.data(), lowbit::shape{2, 2, 2}, {huge, huge, 2}); });  // sum of extents
    CHECK(s.code == lowbit::errc::overflow);
    CHECK(view::make(x.data(), lowbit::shape{2, 2, 2}, {huge, huge, 1}).ok());  // exactly PTRDIFF_MAX
    // negative extents are summed separately: this one fits
    CHECK(view::make(x.data() + 23, lowbit::shape{2, 2}, {-huge, huge}).ok());

    s = error_of([&] { (void)view::make(static_cast<const float*>(nullptr), lowbit::shape{2}, {1}); });
    CHECK(s.code == lowbit::errc::invalid_argument);
    CHECK(arg(s) == "data");
    CHECK(view::make(static_cast<const float*>(nullptr), lowbit::shape{0, 2}, {1, 1}).ok());

    // with a buffer: every element inside it
    const lowbit::span<const float> buf(x);
    CHECK(view::make(buf, 0, lowbit::shape{4, 6}, {1, 4}).ok());
    CHECK(view::make(buf, 23, lowbit::shape{4, 6}, {-1, -4}).ok());
    s = error_of([&] { (void)view::make(buf, 1, lowbit::shape{4, 6}, {1, 4}); });
    CHECK(arg(s) == "buffer.size()");
    CHECK(s.value == 24.0);
    s = error_of([&] { (void)view::make(buf, 22, lowbit::shape{4, 6}, {-1, -4}); });
    CHECK(arg(s) == "offset");
    CHECK(s.value == 22.0);
    s = error_of([&] { (void)view::make(buf, 25, lowbit::shape{1}, {1}); });
    CHECK(arg(s) == "offset");

    const view t = *view::make(lowbit::shape{2, 3, 4}, x);
    s = error_of([&] { (void)t.permute({0, 1}); });
    CHECK(arg(s) == "axes.size()");
    s = error_of([&] { (void)t.permute({0, 1, 1}); });
    CHECK(arg(s) == "axes");
    CHECK(s.value == 1.0);
    s = error_of([&] { (void)t.permute({0, 1, 3}); });
    CHECK(arg(s) == "axes");
    CHECK(s.value == 3.0);
    s = error_of([&] { (void)t.slice(3, 0, 1); });
    CHECK(arg(s) == "axis");
    s = error_of([&] { (void)t.slice(2, 0, 1, 0); });
    CHECK(arg(s) == "step");
    s = error_of([&] { (void)t.slice(2, 4, 1); });
    CHECK(arg(s) == "start");
    CHECK(s.value == 4.0);
    s = error_of([&] { (void)t.slice(2, 1, 3, 2); });  // 1, 3, 5
    CHECK(arg(s) == "count");
    CHECK(s.value == 3.0);
    s = error_of([&] { (void)t.slice(2, 2, 4, -1); });  // 2, 1, 0, -1
    CHECK(arg(s) == "count");
    CHECK(t.slice(2, 3, 4, -1).ok());
    s = error_of([&] { (void)t.select(1, 3); });
    CHECK(arg(s) == "index");
    s = error_of([&] { (void)t.select(3, 0); });
    CHECK(arg(s) == "axis");
}

TEST_CASE("strided_view: for_each_chunk visits every element once, in element order", "[strided]") {
    const std::vector<float> x = make_data(6 * 40 * 70, 7, 3.0f);
    for (const view_case& c : views_of(x)) {
        INFO(c.name);
        const std::vector<float> ref = naive(c.v);
        std::size_t calls = 0;
        CHECK(same_bits(chunked(c.v, &calls), ref));
        if (c.v.is_contiguous()) CHECK(calls == 1);
        CHECK(same_bits(chunked<7>(c.v), ref));  // tiny buffer: many gather boundaries
        CHECK(same_bits(chunked<1>(c.v), ref));
        for (std::size_t n = 0; n < ref.size(); n += 97) CHECK(bits(c.v[n]) == bits(ref[n]));
        // lines: the same elements again
        std::vector<float> lines;
        c.v.for_each_line([&](const float* p, std::size_t n, std::ptrdiff_t step) {
            for (std::size_t i = 0; i < n; ++i) lines.push_back(p[static_cast<std::ptrdiff_t>(i) * step]);
        });
        CHECK(same_bits(lines, ref));
    }
    // contiguous neighbours merge: a row-major view built from strides is one line
    const view rm = *view::make(x.data(), lowbit::shape{6, 40, 70}, {2800, 70, 1});
    std::size_t lines = 0;
    rm.for_each_line([&](const float*, std::size_t n, std::ptrdiff_t step) {
        CHECK(n == x.size());
        CHECK(step == 1);
        ++lines;
    });
    CHECK(lines == 1);
    CHECK(rm.is_contiguous());
    // long contiguous lines are handed over directly, short ones gathered into full chunks
    const view long_lines = *rm.slice(2, 0, 69);
    long_lines.for_each_chunk([&](const float* p, std::size_t n) {
        CHECK(n == 69);
        CHECK(p >= x.data());
        CHECK(p < x.data() + x.size());
    });
    const view short_lines = *rm.slice(2, 0, 9);
    std::vector<std::size_t> sizes;
    short_lines.for_each_chunk([&](const float*, std::size_t n) { sizes.push_back(n); });
    REQUIRE(sizes.size() == (6 * 40 * 9 + lowbit::strided_gather_size - 1) / lowbit::strided_gather_size);
    for (std::size_t i = 0; i + 1 < sizes.size(); ++i) CHECK(sizes[i] == lowbit::strided_gather_size);
}

// ------------------------------------------------------------------------------------------
// observers: a view observes like its contiguous copy
// ------------------------------------------------------------------------------------------

namespace {

// Three batches of the same layout: the second widens the range (histogram combine), the
// third lies inside it.
std::vector<std::vector<float>> batch_data() {
    const std::size_t n = 6 * 40 * 70;
    return {make_data(n, 1, 1.0f), make_data(n, 2, 4.0f, 1.5f), make_data(n, 3, 0.5f)};
}

template <class Make>
void check_per_tensor(const char* what, Make make) {
    const auto data = batch_data();
    const std::size_t nviews = views_of(data[0]).size();
    for (std::size_t k = 0; k < nviews; ++k) {
        auto by_view = make();
        auto by_copy = make();
        std::string name;
        for (const auto& batch : data) {
            const view_case c = views_of(batch)[k];
            name = c.name;
            const std::vector<float> copy = copy_of(c.v);
            REQUIRE(by_view->observe(c.v).ok());
            REQUIRE(by_copy->observe(lowbit::span<const float>(copy)).ok());
        }
        INFO(what << ", view: " << name);
        CHECK(saved(*by_view) == saved(*by_copy));
        const lowbit::qparams a = *by_view->qparams(), b = *by_copy->qparams();
        CHECK(bits(a.scale) == bits(b.scale));
        CHECK(a.zero_point == b.zero_point);
        CHECK(by_view->stats().count == by_copy->stats().count);
    }
}

using u8a = lowbit::scheme<lowbit::u8>;
using s8s = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>;

}  // namespace

TEST_CASE("observers: a strided view gives the state and qparams of its contiguous copy", "[strided][observers]") {
    check_per_tensor("minmax", [] { return std::make_unique<lowbit::minmax_observer<u8a>>(); });
    check_per_tensor("minmax s8", [] { return std::make_unique<lowbit::minmax_observer<s8s>>(); });
    check_per_tensor("moving average", [] { return std::make_unique<lowbit::moving_average_minmax_observer<u8a>>(u8a{}, 0.25f); });
    check_per_tensor("histogram", [] { return std::make_unique<lowbit::histogram_observer<u8a>>(); });
    check_per_tensor("histogram torch_1_13", [] {
        return std::make_unique<lowbit::histogram_observer<u8a>>(u8a{}, lowbit::histogram_mode::torch_1_13);
    });
    check_per_tensor("histogram 64 bins", [] { return std::make_unique<lowbit::histogram_observer<s8s, 64>>(); });
    check_per_tensor("percentile", [] { return std::make_unique<lowbit::percentile_observer<s8s>>(s8s{}, lowbit::percentile_options{99.9}); });
    check_per_tensor("percentile affine", [] { return std::make_unique<lowbit::percentile_observer<u8a>>(); });
    check_per_tensor("mse", [] { return std::make_unique<lowbit::mse_observer<s8s>>(); });
    check_per_tensor("entropy", [] { return std::make_unique<lowbit::entropy_observer<s8s>>(); });
    check_per_tensor("fixed qparams", [] {
        return std::make_unique<lowbit::fixed_qparams_observer<u8a>>(u8a{}, lowbit::qparams{1.0f / 256.0f, 0});
    });
}

TEST_CASE("observers: a zero min / max is +0.0 whatever the layout", "[strided][observers]") {
    // -0.0 first in one order, +0.0 first in the other
    const float x[4] = {-0.0f, 1.0f, 0.0f, 2.0f};
    const view fwd(x);
    const view back = *fwd.slice(0, 3, 4, -1);
    lowbit::minmax_observer<u8a> a, b;
    REQUIRE(a.observe(fwd).ok());
    REQUIRE(b.observe(back).ok());
    CHECK(bits(a.stats().min) == 0u);
    CHECK(bits(b.stats().min) == 0u);
    CHECK(saved(a) == saved(b));
}

TEST_CASE("per-channel observers: a strided view gives the state of its contiguous copy", "[strided][observers]") {
    const auto data = batch_data();
    const std::size_t nviews = views_of(data[0]).size();
    for (int moving = 0; moving < 2; ++moving) {
        for (std::size_t k = 0; k < nviews; ++k) {
            const std::size_t axis = views_of(data[0])[k].six_axis;
            const auto s = s8s{}.per_channel(axis);
            std::vector<float> st_view(12), st_copy(12);
            lowbit::per_channel_minmax_observer<s8s> mv(s, 6, st_view), mc(s, 6, st_copy);
            lowbit::per_channel_moving_average_minmax_observer<s8s> av(s, 6, st_view, 0.5f), ac(s, 6, st_copy, 0.5f);
            std::string name;
            for (const auto& batch : data) {
                const view_case c = views_of(batch)[k];
                name = c.name;
                const std::vector<float> copy = copy_of(c.v);
                if (moving) {
                    REQUIRE(av.observe(c.v).ok());
                    REQUIRE(ac.observe(c.v.dims(), copy).ok());
                } else {
                    REQUIRE(mv.observe(c.v).ok());
                    REQUIRE(mc.observe(c.v.dims(), copy).ok());
                }
            }
            INFO("view: " << name << ", moving " << moving);
            CHECK((moving ? saved(av) == saved(ac) : saved(mv) == saved(mc)));
            float sv[6], sc[6];
            std::int32_t zv[6], zc[6];
            REQUIRE((moving ? av.qparams(sv, zv) : mv.qparams(sv, zv)).ok());
            REQUIRE((moving ? ac.qparams(sc, zc) : mc.qparams(sc, zc)).ok());
            for (int c = 0; c < 6; ++c) {
                CHECK(bits(sv[c]) == bits(sc[c]));
                CHECK(zv[c] == zc[c]);
            }
        }
    }
    // many channels (no stack buffer for the per-channel kernel): the 70-element axis of a
    // transposed view, against its copy, and against the per-channel reference
    const view t = *(*view::make(lowbit::shape{6, 40, 70}, data[1])).permute({2, 0, 1});
    const std::vector<float> copy = copy_of(t);
    for (std::size_t channels : {70u}) {
        const auto s = u8a{}.per_channel(0);
        std::vector<float> a(2 * channels), b(2 * channels), mins(channels), maxs(channels);
        lowbit::per_channel_minmax_observer<u8a> ov(s, channels, a), oc(s, channels, b);
        REQUIRE(ov.observe(t).ok());
        REQUIRE(oc.observe(t.dims(), copy).ok());
        CHECK(saved(ov) == saved(oc));
        REQUIRE(lowbit::ref::min_max(t.dims(), 0, copy, mins, maxs).ok());
        for (std::size_t c = 0; c < channels; ++c) {
            CHECK(bits(ov.mins()[c]) == bits(mins[c]));
            CHECK(bits(ov.maxs()[c]) == bits(maxs[c]));
        }
    }
    const std::vector<float> wide = make_data(3 * 300 * 5, 11, 2.0f);
    const view w = *(*view::make(lowbit::shape{3, 300, 5}, wide)).slice(2, 4, 5, -1);
    const std::vector<float> wcopy = copy_of(w);
    std::vector<float> a(600), b(600);
    lowbit::per_channel_minmax_observer<u8a> ov(u8a{}.per_channel(1), 300, a), oc(u8a{}.per_channel(1), 300, b);
    REQUIRE(ov.observe(w).ok());
    REQUIRE(oc.observe(w.dims(), wcopy).ok());
    CHECK(saved(ov) == saved(oc));
}

TEST_CASE("observers: a non-finite value in a view is named by its index in element order", "[strided][observers]") {
    std::vector<float> x = make_data(6 * 40 * 70, 5, 1.0f);
    const view full = *view::make(lowbit::shape{6, 40, 70}, x);
    const view t = *full.permute({2, 1, 0});  // element (i, j, k) is x[k][j][i]
    x[(2 * 40 + 3) * 70 + 9] = std::numeric_limits<float>::quiet_NaN();  // t(9, 3, 2)
    const double at = (9.0 * 40 + 3) * 6 + 2;
    x[(5 * 40 + 39) * 70 + 69] = std::numeric_limits<float>::infinity();  // t(69, 39, 5): later
    lowbit::minmax_observer<u8a> mm;
    lowbit::status s = error_of([&] { (void)mm.observe(t); });
    CHECK(std::string(s.argument) == "x[i] (index)");
    CHECK(s.value == at);
    CHECK(mm.stats().batches == 0);
    auto h = std::make_unique<lowbit::histogram_observer<u8a>>();
    s = error_of([&] { (void)h->observe(t); });
    CHECK(s.value == at);
    lowbit::entropy_observer<s8s> e;
    s = error_of([&] { (void)e.observe(t); });
    CHECK(s.value == at);
    std::vector<float> st(12);
    lowbit::per_channel_minmax_observer<u8a> pc(u8a{}.per_channel(2), 6, st);
    s = error_of([&] { (void)pc.observe(t); });
    CHECK(s.value == at);
    CHECK(pc.stats().batches == 0);
    CHECK(std::isinf(pc.mins()[0]));
    // the per-channel axis must exist and index the channels
    lowbit::per_channel_minmax_observer<u8a> pc3(u8a{}.per_channel(3), 6, st);
    s = error_of([&] { (void)pc3.observe(t); });
    CHECK(std::string(s.argument) == "axis");
    lowbit::per_channel_minmax_observer<u8a> pc0(u8a{}.per_channel(0), 6, st);
    s = error_of([&] { (void)pc0.observe(t); });
    CHECK(std::string(s.argument) == "shape[axis]");
    CHECK(s.value == 70.0);
}

TEST_CASE("measure_error and the calibrator take strided views", "[strided][observers]") {
    const std::vector<float> x = make_data(6 * 40 * 70, 9, 2.0f);
    const view v = *(*view::make(lowbit::shape{6, 40, 70}, x)).slice(2, 68, 30, -2);
    const std::vector<float> copy = copy_of(v);
    const lowbit::qparams qp{0.02f, 128};
    lowbit::quant_error a, b;
    REQUIRE(lowbit::measure_error(u8a{}, qp, v, a).ok());
    REQUIRE(lowbit::measure_error(u8a{}, qp, lowbit::span<const float>(copy), b).ok());
    CHECK(a.count == b.count);
    CHECK(a.clipped == b.clipped);
    CHECK(a.signal == b.signal);
    CHECK(a.noise == b.noise);
    CHECK(a.max_abs_error == b.max_abs_error);

    lowbit::minmax_observer<u8a> o1, o2;
    std::vector<float> s1(12), s2(12);
    lowbit::per_channel_minmax_observer<u8a> p1(u8a{}.per_channel(0), 6, s1), p2(u8a{}.per_channel(0), 6, s2);
    lowbit::calibrator c1, c2;
    c1.add("act", o1);
    c1.add_per_channel("w", p1);
    c2.add("act", o2);
    c2.add_per_channel("w", p2);
    c1.run(1, [&](std::size_t, lowbit::calibrator::sink& s) {
        s.observe("act", v);
        s.observe("w", v);
    });
    c2.run(1, [&](std::size_t, lowbit::calibrator::sink& s) {
        s.observe("act", copy);
        s.observe("w", v.dims(), copy);
    });
    CHECK(c1.result("act").scales == c2.result("act").scales);
    CHECK(c1.result("act").last_batch.noise == c2.result("act").last_batch.noise);
    CHECK(c1.result("w").scales == c2.result("w").scales);
    CHECK(c1.result("w").zero_points == c2.result("w").zero_points);
}
