// tests/xtensor/test_xtensor.cpp: the xtensor adapter (lowbit/xtensor.hpp) against the span
// API it wraps.
//
// The independent check: test data is made as a std::vector in row-major order, adapted into
// xtensor, and every adapter call is compared with lowbit::ref / lowbit::choose_qparams called
// directly on the vector (integers exactly, floats bit for bit). Per-channel / per-group
// min / max tables are computed here with explicit loops from layout.hpp's formula, and
// 4-bit values are decoded here from int4.hpp's documented layout. Non-contiguous inputs
// (transposes, strided and reversed views, column-major containers, lazy expressions) must
// give exactly the results of their contiguous copies. .npy files are written to a fresh
// temporary directory that is removed afterwards.
#include <lowbit/xtensor.hpp>

#include "lowbit_catch.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xio.hpp>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xnpy.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

namespace lx = lowbit::xtensor;
using dims_t = std::vector<std::size_t>;

namespace {

// ---- helpers ------------------------------------------------------------------------------

std::uint32_t bits(float f) {
    std::uint32_t u = 0;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

// Deterministic data: uniform floats in [lo, hi), with every 7th value an exact multiple of
// 1/8 so that round-half cases occur for power-of-two-ish scales.
std::vector<float> make_data(std::size_t n, std::uint32_t seed, float lo = -3.0f, float hi = 2.0f) {
    std::vector<float> v(n);
    std::uint32_t state = seed * 2654435761u + 12345u;
    for (std::size_t k = 0; k < n; ++k) {
        state = state * 1664525u + 1013904223u;
        const float u = static_cast<float>(state >> 8) / 16777216.0f;
        float x = lo + (hi - lo) * u;
        if (k % 7 == 3) x = std::round(x * 8.0f) / 8.0f;
        v[k] = x;
    }
    return v;
}

std::size_t numel(const dims_t& d) {
    std::size_t n = 1;
    for (std::size_t x : d) n *= x;
    return n;
}

xt::xarray<float> to_xarray(const std::vector<float>& v, const dims_t& d) {
    xt::xarray<float> out = xt::xarray<float>::from_shape(d);
    std::copy(v.begin(), v.end(), out.begin());  // xarray<float> iterates row-major
    return out;
}

template <class S>
dims_t dims_of(const S& shape) {
    return dims_t(shape.begin(), shape.end());
}

// Element k of a buffer of Format's storage, decoded from int4.hpp's documented layout.
template <class Format>
std::int32_t stored(const std::vector<typename Format::storage_type>& buf, std::size_t k) {
    if constexpr (Format::is_packed) {
        const int nibble = (buf[k / 2] >> (4 * (k % 2))) & 0x0F;
        return Format::is_signed && nibble >= 8 ? nibble - 16 : nibble;
    } else {
        return static_cast<std::int32_t>(buf[k]);
    }
}

template <class T>
void require_values(const lx::array<T>& got, const dims_t& d, const std::vector<T>& want) {
    REQUIRE(dims_of(got.shape()) == d);
    REQUIRE(got.size() == want.size());
    for (std::size_t k = 0; k < want.size(); ++k) {
        INFO("flat index " << k);
        if constexpr (std::is_same<T, float>::value)
            REQUIRE(bits(got.data()[k]) == bits(want[k]));
        else
            REQUIRE(got.data()[k] == want[k]);
    }
}

// Same shape and the same bytes.
template <class A, class B>
void require_identical(const A& a, const B& b) {
    REQUIRE(dims_of(a.shape()) == dims_of(b.shape()));
    REQUIRE(a.size() == b.size());
    using T = typename A::value_type;
    static_assert(std::is_same<T, typename B::value_type>::value, "same element type");
    if (a.size() != 0) REQUIRE(std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// Reference parameter table, computed with explicit loops from layout.hpp's description:
// element (o, c, i) uses c per channel, (o * (C / g) + c / g) * inner + i per group.
struct ref_table {
    std::vector<float> scales;
    std::vector<std::int32_t> zero_points;
    dims_t dims;
};

template <class Scheme>
ref_table reference_table(const Scheme& s, const std::vector<float>& v, const dims_t& d) {
    const std::size_t axis = s.axis();
    std::size_t outer = 1, inner = 1;
    for (std::size_t i = 0; i < axis; ++i) outer *= d[i];
    for (std::size_t i = axis + 1; i < d.size(); ++i) inner *= d[i];
    const std::size_t C = d[axis];
    const bool group = s.granularity() == lowbit::granularity::per_group;
    const std::size_t g = group ? s.group_size() : 1;
    ref_table t;
    t.dims = group ? d : dims_t{C};
    if (group) t.dims[axis] = C / g;
    const std::size_t count = numel(t.dims);
    std::vector<float> mins(count, std::numeric_limits<float>::infinity());
    std::vector<float> maxs(count, -std::numeric_limits<float>::infinity());
    for (std::size_t o = 0; o < outer; ++o)
        for (std::size_t c = 0; c < C; ++c)
            for (std::size_t i = 0; i < inner; ++i) {
                const float x = v[(o * C + c) * inner + i];
                const std::size_t p = group ? (o * (C / g) + c / g) * inner + i : c;
                mins[p] = std::min(mins[p], x);
                maxs[p] = std::max(maxs[p], x);
            }
    t.scales.resize(count);
    t.zero_points.resize(count);
    REQUIRE(lowbit::choose_qparams(s, lowbit::span<const float>(mins), lowbit::span<const float>(maxs),
                                   lowbit::span<float>(t.scales), lowbit::span<std::int32_t>(t.zero_points))
                .ok());
    return t;
}

lowbit::shape lowbit_shape(const dims_t& d) { return lowbit::shape(d.data(), d.size()); }

// ---- the per-tensor comparison ------------------------------------------------------------

template <class Scheme>
void check_per_tensor(const Scheme& s, const dims_t& d, std::uint32_t seed) {
    using F = typename Scheme::format;
    using V = typename Scheme::value_type;
    using St = typename Scheme::storage_type;
    const std::size_t n = numel(d);
    const std::vector<float> v = make_data(n, seed);
    const std::vector<float> dy = make_data(n, seed + 1000, -1.0f, 1.0f);
    const xt::xarray<float> x = to_xarray(v, d);
    const xt::xarray<float> dyx = to_xarray(dy, d);

    float mn = std::numeric_limits<float>::infinity(), mx = -std::numeric_limits<float>::infinity();
    for (float f : v) {
        mn = std::min(mn, f);
        mx = std::max(mx, f);
    }
    const lowbit::qparams want = lowbit::choose_qparams(s, mn, mx).value();
    const lowbit::qparams got = lx::choose_qparams(s, x);
    REQUIRE(bits(got.scale) == bits(want.scale));
    REQUIRE(got.zero_point == want.zero_point);

    // The chosen qparams, and a scale 3x smaller so that quantize saturates.
    for (const lowbit::qparams qp : {want, lowbit::qparams{want.scale / 3.0f, want.zero_point}}) {
        INFO("scale " << qp.scale << " zero_point " << qp.zero_point);
        std::vector<St> qs(F::storage_size(n));
        REQUIRE(lowbit::ref::quantize(s, qp, lowbit::span<const float>(v), lowbit::span<St>(qs)).ok());
        std::vector<V> qv(n);
        for (std::size_t k = 0; k < n; ++k) qv[k] = static_cast<V>(stored<F>(qs, k));
        const lx::array<V> q = lx::quantize(s, qp, x);
        require_values(q, d, qv);

        if constexpr (F::is_packed) {
            const xt::xtensor<std::uint8_t, 1> packed = lx::pack_int4(s, q);
            REQUIRE(packed.size() == qs.size());
            for (std::size_t i = 0; i < qs.size(); ++i) REQUIRE(packed(i) == qs[i]);
            require_values(lx::unpack_int4(s, packed, d), d, qv);
        }

        std::vector<float> xd(n);
        REQUIRE(lowbit::ref::dequantize(s, qp, lowbit::span<const St>(qs), lowbit::span<float>(xd)).ok());
        require_values(lx::dequantize(s, qp, q), d, xd);

        std::vector<float> y(n);
        REQUIRE(lowbit::ref::fake_quantize(s, qp, lowbit::span<const float>(v), lowbit::span<float>(y)).ok());
        require_values(lx::fake_quantize(s, qp, x), d, y);

        std::vector<float> dx(n);
        REQUIRE(lowbit::ref::fake_quantize_backward(s, qp, lowbit::span<const float>(v), lowbit::span<const float>(dy),
                                                    lowbit::span<float>(dx))
                    .ok());
        require_values(lx::fake_quantize_backward(s, qp, x, dyx), d, dx);
    }
}

// ---- the per-channel / per-group comparison -----------------------------------------------

template <class Scheme>
void check_table(const Scheme& s, const dims_t& d, std::uint32_t seed) {
    using F = typename Scheme::format;
    using V = typename Scheme::value_type;
    using St = typename Scheme::storage_type;
    const std::size_t n = numel(d);
    const std::vector<float> v = make_data(n, seed);
    const std::vector<float> dy = make_data(n, seed + 1000, -1.0f, 1.0f);
    const xt::xarray<float> x = to_xarray(v, d);
    const xt::xarray<float> dyx = to_xarray(dy, d);

    const ref_table want = reference_table(s, v, d);
    const lx::channel_qparams got = lx::choose_channel_qparams(s, x);
    require_values(got.scales, want.dims, want.scales);
    require_values(got.zero_points, want.dims, want.zero_points);

    // The chosen table, then one with every scale 3x smaller (saturation), then (symmetric
    // schemes) one with empty zero_points, which means "the scheme's zero-point".
    std::vector<ref_table> tables{want, want};
    for (float& sc : tables[1].scales) sc /= 3.0f;
    if (Scheme::sym != lowbit::symmetry::affine) {
        tables.push_back(want);
        tables.back().zero_points.clear();
    }
    for (const ref_table& t : tables) {
        lx::channel_qparams qp;
        qp.scales = to_xarray(t.scales, t.dims);
        qp.zero_points = t.zero_points.empty() ? lx::array<std::int32_t>::from_shape({0})
                                               : lx::array<std::int32_t>(xt::adapt(t.zero_points, t.dims));
        const lowbit::qparams_view view{lowbit::span<const float>(t.scales),
                                        lowbit::span<const std::int32_t>(t.zero_points)};
        const lowbit::shape shp = lowbit_shape(d);
        INFO("zero_points " << (t.zero_points.empty() ? "empty" : "given") << ", first scale " << t.scales[0]);

        std::vector<St> qs(F::storage_size(n));
        REQUIRE(lowbit::ref::quantize(s, shp, view, lowbit::span<const float>(v), lowbit::span<St>(qs)).ok());
        std::vector<V> qv(n);
        for (std::size_t k = 0; k < n; ++k) qv[k] = static_cast<V>(stored<F>(qs, k));
        const lx::array<V> q = lx::quantize(s, qp, x);
        require_values(q, d, qv);

        std::vector<float> xd(n);
        REQUIRE(lowbit::ref::dequantize(s, shp, view, lowbit::span<const St>(qs), lowbit::span<float>(xd)).ok());
        require_values(lx::dequantize(s, qp, q), d, xd);

        std::vector<float> y(n);
        REQUIRE(lowbit::ref::fake_quantize(s, shp, view, lowbit::span<const float>(v), lowbit::span<float>(y)).ok());
        require_values(lx::fake_quantize(s, qp, x), d, y);

        std::vector<float> dx(n);
        REQUIRE(lowbit::ref::fake_quantize_backward(s, shp, view, lowbit::span<const float>(v),
                                                    lowbit::span<const float>(dy), lowbit::span<float>(dx))
                    .ok());
        require_values(lx::fake_quantize_backward(s, qp, x, dyx), d, dx);
    }
}

// ---- non-contiguous inputs ----------------------------------------------------------------

// Every adapter function on `make(x3)` equals the same function on its contiguous copy.
template <class Scheme, class Make>
void check_noncontiguous(const Scheme& s, Make make) {
    using V = typename Scheme::value_type;
    const dims_t d{4, 6, 5};
    const xt::xarray<float> x3 = to_xarray(make_data(numel(d), 7), d);
    const xt::xarray<float> dy3 = to_xarray(make_data(numel(d), 8, -1.0f, 1.0f), d);
    const auto x = make(x3);
    const auto dy = make(dy3);
    const lx::array<float> xc = x;  // the contiguous row-major copies
    const lx::array<float> dyc = dy;
    REQUIRE(dims_of(xc.shape()) == dims_of(x.shape()));

    const lowbit::qparams qp = lx::choose_qparams(s, x);
    REQUIRE(qp == lx::choose_qparams(s, xc));
    const lx::array<V> q = lx::quantize(s, qp, x);
    require_identical(q, lx::quantize(s, qp, xc));
    require_identical(lx::dequantize(s, qp, q), lx::dequantize(s, qp, lx::quantize(s, qp, xc)));
    require_identical(lx::fake_quantize(s, qp, x), lx::fake_quantize(s, qp, xc));
    require_identical(lx::fake_quantize_backward(s, qp, x, dy), lx::fake_quantize_backward(s, qp, xc, dyc));

    // Stochastic rounding hashes the row-major index, so it too must agree.
    const Scheme st = s.with_rounding(lowbit::rounding::stochastic, 99);
    require_identical(lx::quantize(st, qp, x), lx::quantize(st, qp, xc));

    // dims[1] is 6 for every input used: per channel on axis 1, per group of 3 along it.
    for (const Scheme sc : {s.per_channel(1), s.per_group(1, 3), s.per_channel(0)}) {
        INFO("granularity " << lowbit::to_string(sc.granularity()) << " axis " << sc.axis());
        const lx::channel_qparams t = lx::choose_channel_qparams(sc, x);
        const lx::channel_qparams tc = lx::choose_channel_qparams(sc, xc);
        require_identical(t.scales, tc.scales);
        require_identical(t.zero_points, tc.zero_points);
        const lx::array<V> qt = lx::quantize(sc, t, x);
        require_identical(qt, lx::quantize(sc, t, xc));
        require_identical(lx::dequantize(sc, t, qt), lx::dequantize(sc, t, lx::quantize(sc, t, xc)));
        require_identical(lx::fake_quantize(sc, t, x), lx::fake_quantize(sc, t, xc));
        require_identical(lx::fake_quantize_backward(sc, t, x, dy), lx::fake_quantize_backward(sc, t, xc, dyc));
    }
}

// A fresh temporary directory, removed with everything in it at the end of the test.
struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        static int counter = 0;
        path = std::filesystem::temp_directory_path() /
               ("lowbit_xtensor_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

// Writes a format-1.0 .npy file by hand: magic, version, header length, header, data.
void write_raw_npy(const std::string& path, std::string header, const std::string& data = {}) {
    header += '\n';
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << "\x93NUMPY" << '\x01' << '\x00' << static_cast<char>(header.size() & 0xFF)
        << static_cast<char>(header.size() >> 8) << header << data;
}

// Runs f, which must throw lowbit::error; returns it for inspection.
template <class Fn>
lowbit::status status_of(Fn f) {
    try {
        f();
    } catch (const lowbit::error& e) {
        return e.status();
    }
    FAIL("expected lowbit::error");
    return {};
}

template <class Fn>
std::string message_of(Fn f) {
    try {
        f();
    } catch (const lowbit::error& e) {
        CHECK(std::string(e.status().argument) == "path");
        return e.what();
    }
    FAIL("expected lowbit::error");
    return {};
}

using S8 = lowbit::scheme<lowbit::s8>;
using U8 = lowbit::scheme<lowbit::u8>;
using S4 = lowbit::scheme<lowbit::s4>;
using U4 = lowbit::scheme<lowbit::u4>;
using S8Sym = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>;
using U8Sym = lowbit::scheme<lowbit::u8, lowbit::symmetry::symmetric>;
using S4Sym = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>;
using S8Narrow = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric_narrow>;

}  // namespace

// ---- tests --------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("per-tensor adapter calls equal the span API", "[xtensor][per_tensor]", S8, U8, S4, U4, S8Sym, U8Sym,
                   S4Sym, S8Narrow) {
    const TestType base{};
    const TestType variants[] = {base, base.with_rounding(lowbit::rounding::stochastic, 5),
                                 base.with_profile(lowbit::profile::tflite),
                                 base.with_profile(lowbit::profile::torch_fused)};
    for (const TestType& s : variants) {
        INFO("profile " << lowbit::to_string(s.profile()) << ", rounding " << lowbit::to_string(s.rounding()));
        SECTION("3-D") { check_per_tensor(s, {3, 5, 7}, 1); }
        SECTION("odd 1-D (4-bit padding nibble)") { check_per_tensor(s, {9}, 2); }
        SECTION("0-d") { check_per_tensor(s, {}, 3); }
        SECTION("empty") { check_per_tensor(s, {0, 4}, 4); }
    }
}

TEMPLATE_TEST_CASE("per-channel and per-group adapter calls equal the span API", "[xtensor][per_channel]", S8, U8, S4,
                   U4, S8Sym, S4Sym, U8Sym) {
    const TestType s{};
    SECTION("per channel, axis 0 of 2-D") { check_table(s.per_channel(0), {6, 7}, 11); }
    SECTION("per channel, axis 0 of 3-D") { check_table(s.per_channel(0), {4, 3, 5}, 12); }
    SECTION("per channel, middle axis of 3-D") { check_table(s.per_channel(1), {4, 3, 5}, 13); }
    SECTION("per channel, last axis of 3-D") { check_table(s.per_channel(2), {4, 3, 5}, 14); }
    SECTION("per group, last axis of 2-D (weights [N, K / g])") { check_table(s.per_group(1, 4), {3, 16}, 15); }
    SECTION("per group, middle axis of 3-D") { check_table(s.per_group(1, 2), {3, 6, 5}, 16); }
    SECTION("per group, axis 0 of 3-D") { check_table(s.per_group(0, 3), {6, 2, 3}, 17); }
    SECTION("per channel, stochastic rounding") {
        check_table(s.per_channel(1).with_rounding(lowbit::rounding::stochastic, 3), {4, 3, 5}, 18);
    }
    SECTION("per channel, tflite profile") {
        check_table(s.per_channel(1).with_profile(lowbit::profile::tflite), {4, 3, 5}, 19);
    }
}

TEMPLATE_TEST_CASE("non-contiguous inputs give the results of their contiguous copies", "[xtensor][layout]", S8, U8, S4,
                   U4) {
    const TestType s{};
    SECTION("transpose") {
        check_noncontiguous(s, [](const auto& t) { return xt::transpose(t, {2, 1, 0}); });
    }
    SECTION("strided view") {
        check_noncontiguous(
            s, [](const auto& t) { return xt::view(t, xt::range(0, 4, 2), xt::all(), xt::range(1, 5, 2)); });
    }
    SECTION("contiguous view with an offset (borrowed, not copied)") {
        check_noncontiguous(s, [](const auto& t) { return xt::view(t, xt::range(1, 3), xt::all(), xt::all()); });
    }
    SECTION("reversed axis (negative stride)") {
        check_noncontiguous(s, [](const auto& t) { return xt::flip(t, 2); });
    }
    SECTION("column-major xtensor") {
        check_noncontiguous(s, [](const auto& t) { return xt::xtensor<float, 3, xt::layout_type::column_major>(t); });
    }
    SECTION("lazy expression") {
        check_noncontiguous(s, [](const auto& t) { return t * 2.0f - 0.5f; });
    }
    SECTION("double input") {
        check_noncontiguous(s, [](const auto& t) { return xt::xarray<double>(xt::cast<double>(t)); });
    }
}

TEST_CASE("integer inputs: any integer type, any layout, range-checked", "[xtensor][integers]") {
    const S8 s{};
    const dims_t d{3, 4};
    const xt::xarray<float> x = to_xarray(make_data(12, 21), d);
    const lowbit::qparams qp = lx::choose_qparams(s, x);
    const lx::array<std::int8_t> q = lx::quantize(s, qp, x);
    const lx::array<float> want = lx::dequantize(s, qp, q);

    const xt::xarray<std::int32_t> q32 = xt::cast<std::int32_t>(q);
    require_identical(lx::dequantize(s, qp, q32), want);
    const lx::array<std::int8_t> qt = xt::transpose(q);
    require_identical(lx::dequantize(s, qp, xt::transpose(q)), lx::dequantize(s, qp, qt));

    xt::xarray<std::int32_t> bad = q32;
    bad(1, 2) = 200;
    const lowbit::status st = status_of([&] { lx::dequantize(s, qp, bad); });
    CHECK(std::string(st.argument) == "q");
    CHECK(st.value == 200.0);

    const S4 s4{};
    const xt::xarray<int> v4 = {{-8, 7, 0}, {1, -1, 3}};
    const xt::xtensor<std::uint8_t, 1> packed =
        lx::pack_int4(s4, xt::transpose(v4));  // packs row-major of the transpose
    const lx::array<std::int8_t> back = lx::unpack_int4(s4, packed, dims_t{3, 2});
    const lx::array<std::int8_t> want4 = xt::cast<std::int8_t>(xt::transpose(v4));
    require_identical(back, want4);
    REQUIRE(packed.size() == 3);
    CHECK(packed(0) == 0x18);  // elements -8 (0x8) then 1 (0x1): low nibble first
    CHECK(packed(1) == 0xF7);  // 7 (0x7) then -1 (0xF)
    CHECK(packed(2) == 0x30);  // 0 then 3
}

TEST_CASE("edge inputs: empty tensors and channels, 0-d, symmetric tables without zero-points", "[xtensor][edges]") {
    const S8 s{};
    SECTION("an empty tensor gives torch's empty-observer qparams and empty outputs") {
        const xt::xarray<float> e = xt::xarray<float>::from_shape({0, 3});
        const lowbit::qparams qp = lx::choose_qparams(s, e);
        CHECK(qp.scale == 1.0f);
        CHECK(qp.zero_point == 0);
        const lx::array<std::int8_t> q = lx::quantize(s, qp, e);
        CHECK(dims_of(q.shape()) == dims_t{0, 3});
        CHECK(dims_of(lx::dequantize(s, qp, q).shape()) == dims_t{0, 3});
    }
    SECTION("empty channels get {1, 0}") {
        const xt::xarray<float> e = xt::xarray<float>::from_shape({3, 0});
        const lx::channel_qparams t = lx::choose_channel_qparams(s.per_channel(0), e);
        REQUIRE(dims_of(t.scales.shape()) == dims_t{3});
        for (std::size_t c = 0; c < 3; ++c) {
            CHECK(t.scales(c) == 1.0f);
            CHECK(t.zero_points(c) == 0);
        }
        const lx::channel_qparams none = lx::choose_channel_qparams(s.per_channel(1), e);
        CHECK(dims_of(none.scales.shape()) == dims_t{0});
        CHECK(dims_of(lx::quantize(s.per_channel(1), none, e).shape()) == dims_t{3, 0});
    }
    SECTION("per_tensor schemes accept a one-element table") {
        const xt::xarray<float> x = to_xarray(make_data(10, 31), {2, 5});
        const lx::channel_qparams t = lx::choose_channel_qparams(s, x);
        CHECK(t.scales.dimension() == 0);
        const lowbit::qparams qp = lx::choose_qparams(s, x);
        CHECK(bits(t.scales()) == bits(qp.scale));
        CHECK(t.zero_points() == qp.zero_point);
        require_identical(lx::quantize(s, t, x), lx::quantize(s, qp, x));
    }
}

TEST_CASE("errors throw lowbit::error naming the argument", "[xtensor][errors]") {
    const S8 s{};
    const dims_t d{4, 6, 5};
    const xt::xarray<float> x = to_xarray(make_data(numel(d), 41), d);
    const lx::channel_qparams t0 = lx::choose_channel_qparams(s.per_channel(0), x);

    SECTION("axis out of range") {
        const lowbit::status st = status_of([&] { lx::choose_channel_qparams(s.per_channel(3), x); });
        CHECK(std::string(st.argument) == "axis");
        CHECK(st.code == lowbit::errc::out_of_range);
        CHECK(std::string(status_of([&] { lx::quantize(s.per_channel(3), t0, x); }).argument) == "axis");
        CHECK(std::string(status_of([&] { lx::fake_quantize(s.per_group(5, 1), t0, x); }).argument) == "axis");
    }
    SECTION("group size not dividing the axis") {
        const lowbit::status st = status_of([&] { lx::choose_channel_qparams(s.per_group(1, 4), x); });
        CHECK(std::string(st.argument) == "group_size");
        CHECK(st.value == 4.0);
        CHECK(std::string(status_of([&] { lx::quantize(s.per_group(2, 2), t0, x); }).argument) == "group_size");
    }
    SECTION("NaN and Inf in x") {
        xt::xarray<float> bad = x;
        bad(1, 2, 3) = std::numeric_limits<float>::quiet_NaN();
        lowbit::status st = status_of([&] { lx::choose_qparams(s, bad); });
        CHECK(std::string(st.argument) == "x");
        CHECK(st.value == double((1 * 6 + 2) * 5 + 3));  // flat index of the NaN
        CHECK(std::string(status_of([&] { lx::choose_channel_qparams(s.per_channel(1), bad); }).argument) == "x");
        bad(1, 2, 3) = std::numeric_limits<float>::infinity();
        CHECK(std::string(status_of([&] { lx::choose_qparams(s, bad); }).argument) == "x");
    }
    SECTION("a per-tensor call with a per-channel scheme") {
        const lowbit::qparams qp{0.1f, 0};
        CHECK(std::string(status_of([&] { lx::choose_qparams(s.per_channel(0), x); }).argument) == "s.granularity()");
        CHECK(std::string(status_of([&] { lx::quantize(s.per_channel(0), qp, x); }).argument) == "s.granularity()");
        CHECK(std::string(status_of([&] { lx::fake_quantize(s.per_group(1, 2), qp, x); }).argument) ==
              "s.granularity()");
    }
    SECTION("a table shaped for another tensor") {
        const xt::xarray<float> other = xt::transpose(x);  // shape {5, 6, 4}: axis 0 has 5 channels, not 4
        const lowbit::status st = status_of([&] { lx::quantize(s.per_channel(0), t0, other); });
        CHECK(std::string(st.argument) == "qp.scales");
        CHECK(st.code == lowbit::errc::size_mismatch);
        lx::channel_qparams t = t0;
        t.zero_points = lx::array<std::int32_t>::from_shape({2, 2});
        CHECK(std::string(status_of([&] { lx::quantize(s.per_channel(0), t, x); }).argument) == "qp.zero_points");
        t.zero_points = lx::array<std::int32_t>::from_shape({0});  // empty: only for symmetric schemes
        CHECK(std::string(status_of([&] { lx::quantize(s.per_channel(0), t, x); }).argument) == "zero_points.size()");
    }
    SECTION("invalid qparams are refused by the core") {
        CHECK(std::string(status_of([&] { lx::quantize(s, lowbit::qparams{0.0f, 0}, x); }).argument) == "scale");
        CHECK(std::string(status_of([&] {
                              lx::fake_quantize(s, lowbit::qparams{0.1f, 300}, x);
                          }).argument) == "zero_point");
        lx::channel_qparams t = t0;
        t.scales(2) = -1.0f;
        CHECK(std::string(status_of([&] {
                              lx::dequantize(s.per_channel(0), t, lx::quantize(s, {0.1f, 0}, x));
                          }).argument) == "scale");
    }
    SECTION("dy with another shape") {
        const xt::xarray<float> dy = xt::transpose(x);
        CHECK(std::string(status_of([&] { lx::fake_quantize_backward(s, {0.1f, 0}, x, dy); }).argument) == "dy");
        CHECK(std::string(status_of([&] { lx::fake_quantize_backward(s.per_channel(0), t0, x, dy); }).argument) ==
              "dy");
    }
    SECTION("int4 values and byte counts") {
        const S4 s4{};
        const U4 u4{};
        CHECK(std::string(status_of([&] { lx::pack_int4(s4, xt::xarray<int>{1, 8}); }).argument) == "q");
        CHECK(std::string(status_of([&] { lx::pack_int4(s4, xt::xarray<int>{-9}); }).argument) == "q");
        CHECK(std::string(status_of([&] { lx::pack_int4(u4, xt::xarray<int>{16}); }).argument) == "q");
        CHECK(std::string(status_of([&] { lx::pack_int4(u4, xt::xarray<int>{-1}); }).argument) == "q");
        CHECK(status_of([&] { lx::pack_int4(u4, xt::xarray<int>{-1}); }).value == -1.0);
        const xt::xtensor<std::uint8_t, 1> packed = lx::pack_int4(s4, xt::xarray<int>{1, 2, 3});
        CHECK(std::string(status_of([&] { lx::unpack_int4(s4, packed, {5}); }).argument) == "packed.size()");
        CHECK(std::string(status_of([&] { lx::unpack_int4(s4, xt::xarray<int>{256, 0}, {4}); }).argument) == "packed");
        CHECK(std::string(status_of([&] { lx::dequantize(s4, {0.1f, 0}, xt::xarray<int>{8}); }).argument) == "q");
    }
    SECTION("rank above 8") {
        const xt::xarray<float> r9 = xt::xarray<float>::from_shape({1, 1, 1, 1, 1, 1, 1, 1, 2});
        CHECK(std::string(status_of([&] { lx::choose_channel_qparams(s.per_channel(0), r9); }).argument) ==
              "shape.rank()");
    }
    SECTION("the scheme itself") {
        CHECK(std::string(status_of([&] { lx::choose_qparams(s.with_range(-10, 300), x); }).argument) == "quant_max");
    }
}

TEST_CASE(".npy round trips", "[xtensor][npy]") {
    const temp_dir dir;
    SECTION("float32, with -0, +-Inf, NaN and a denormal") {
        xt::xarray<float> x = to_xarray(make_data(24, 51), {2, 3, 4});
        x(0, 0, 0) = -0.0f;
        x(0, 0, 1) = std::numeric_limits<float>::infinity();
        x(0, 0, 2) = -std::numeric_limits<float>::infinity();
        x(0, 0, 3) = std::numeric_limits<float>::quiet_NaN();
        x(1, 2, 3) = std::numeric_limits<float>::denorm_min();
        const std::string f = dir.file("f32.npy");
        lx::save_npy(f, x);
        require_identical(lx::load_npy<float>(f), x);
        // Interoperates with xtensor's own reader.
        const xt::xarray<float> viaxt = xt::load_npy<float>(f);
        require_identical(viaxt, x);
    }
    SECTION("int8 and uint8") {
        const xt::xarray<std::int8_t> a = {{-128, -1, 0}, {1, 100, 127}};
        const xt::xarray<std::uint8_t> b = {0, 1, 128, 254, 255};
        lx::save_npy(dir.file("s8.npy"), a);
        lx::save_npy(dir.file("u8.npy"), b);
        require_identical(lx::load_npy<std::int8_t>(dir.file("s8.npy")), a);
        require_identical(lx::load_npy<std::uint8_t>(dir.file("u8.npy")), b);
    }
    SECTION("quantized values, 0-d and empty arrays") {
        const S4 s{};
        const xt::xarray<float> x = to_xarray(make_data(15, 52), {3, 5});
        const lx::array<std::int8_t> q = lx::quantize(s, lx::choose_qparams(s, x), x);
        lx::save_npy(dir.file("q.npy"), q);
        require_identical(lx::load_npy<std::int8_t>(dir.file("q.npy")), q);
        const xt::xarray<float> scalar = 2.5f;
        lx::save_npy(dir.file("scalar.npy"), scalar);
        require_identical(lx::load_npy<float>(dir.file("scalar.npy")), scalar);
        const xt::xarray<float> empty = xt::xarray<float>::from_shape({0, 4});
        lx::save_npy(dir.file("empty.npy"), empty);
        require_identical(lx::load_npy<float>(dir.file("empty.npy")), empty);
    }
    SECTION("a non-contiguous expression is saved in C order") {
        const xt::xarray<float> x = to_xarray(make_data(12, 53), {3, 4});
        lx::save_npy(dir.file("t.npy"), xt::transpose(x));
        const lx::array<float> want = xt::transpose(x);
        require_identical(lx::load_npy<float>(dir.file("t.npy")), want);
    }
    SECTION("a Fortran-order file loads with the right values") {
        const xt::xarray<float> x = to_xarray(make_data(24, 54), {2, 3, 4});
        const xt::xtensor<float, 3, xt::layout_type::column_major> cm = x;
        xt::dump_npy(dir.file("fortran.npy"), cm);  // xtensor writes fortran_order: True for this
        const std::string f = dir.file("fortran.npy");
        std::ifstream in(f, std::ios::binary);
        const std::string head((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        REQUIRE(head.find("'fortran_order': True") != std::string::npos);
        require_identical(lx::load_npy<float>(f), x);
    }
    SECTION("a header longer than 127 bytes (xtensor 0.24's own reader fails on it)") {
        // The 0 comes last: xtensor's strides are products of trailing dimensions.
        const dims_t d{100000000000, 100000000000, 100000000000, 100000000000, 100000000000, 0};
        const xt::xarray<float> e = xt::xarray<float>::from_shape(d);
        lx::save_npy(dir.file("long.npy"), e);
        CHECK(dims_of(lx::load_npy<float>(dir.file("long.npy")).shape()) == d);
    }
}

TEST_CASE(".npy errors name the file and the problem", "[xtensor][npy][errors]") {
    const temp_dir dir;
    const xt::xarray<float> x = to_xarray(make_data(10, 61), {2, 5});

    SECTION("missing file") {
        const std::string f = dir.file("does_not_exist.npy");
        const std::string m = message_of([&] { lx::load_npy<float>(f); });
        CHECK_THAT(m, Catch::Contains(f));
        CHECK_THAT(m, Catch::Contains("no such file"));
        CHECK_THROWS_AS(lx::load_npy<float>(f), lx::npy_error);
        CHECK_THROWS_AS(lx::load_npy<float>(f), std::invalid_argument);
    }
    SECTION("wrong dtype") {
        const std::string f = dir.file("int8.npy");
        lx::save_npy(f, xt::xarray<std::int8_t>{1, 2, 3});
        const std::string m = message_of([&] { lx::load_npy<float>(f); });
        CHECK_THAT(m, Catch::Contains(f));
        CHECK_THAT(m, Catch::Contains("dtype"));
        CHECK_THAT(m, Catch::Contains("'|i1'"));
        CHECK_THAT(m, Catch::Contains("'<f4'"));
        CHECK_THAT(message_of([&] { lx::load_npy<std::uint8_t>(f); }), Catch::Contains("dtype"));
        const std::string g = dir.file("f32.npy");
        lx::save_npy(g, x);
        CHECK_THAT(message_of([&] { lx::load_npy<double>(g); }), Catch::Contains("dtype"));
    }
    SECTION("truncated data") {
        const std::string f = dir.file("short.npy");
        lx::save_npy(f, x);
        std::filesystem::resize_file(f, std::filesystem::file_size(f) - 3);
        const std::string m = message_of([&] { lx::load_npy<float>(f); });
        CHECK_THAT(m, Catch::Contains(f));
        CHECK_THAT(m, Catch::Contains("truncated"));
        CHECK_THAT(m, Catch::Contains("needs 40 data bytes, the file has 37"));
    }
    SECTION("truncated header") {
        const std::string f = dir.file("header.npy");
        lx::save_npy(f, x);
        std::filesystem::resize_file(f, 20);
        const std::string m = message_of([&] { lx::load_npy<float>(f); });
        CHECK_THAT(m, Catch::Contains(f));
        CHECK_THAT(m, Catch::Contains("truncated"));
    }
    SECTION("not a .npy file") {
        const std::string f = dir.file("text.npy");
        std::ofstream(f) << "hello, this is not numpy\n";
        const std::string m = message_of([&] { lx::load_npy<float>(f); });
        CHECK_THAT(m, Catch::Contains(f));
        CHECK_THAT(m, Catch::Contains("not a .npy file"));
    }
    SECTION("malformed header") {
        const std::string f = dir.file("bad_header.npy");
        write_raw_npy(f, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }");
        const std::string m = message_of([&] { lx::load_npy<float>(f); });
        CHECK_THAT(m, Catch::Contains(f));
        CHECK_THAT(m, Catch::Contains("malformed header"));
        write_raw_npy(f, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }");
        CHECK_THAT(message_of([&] { lx::load_npy<float>(f); }), Catch::Contains("structured dtypes"));
        write_raw_npy(f, "{'descr': '<f4', 'shape': (2,), }");
        CHECK_THAT(message_of([&] { lx::load_npy<float>(f); }), Catch::Contains("no 'fortran_order'"));
    }
    SECTION("keys in any order, as the format allows") {
        const std::string f = dir.file("order.npy");
        write_raw_npy(f, "{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}", std::string(8, '\0'));
        const lx::array<float> z = lx::load_npy<float>(f);
        CHECK(dims_of(z.shape()) == dims_t{2});
        CHECK(z(0) == 0.0f);
    }
    SECTION("a shape too large for xtensor's strides, even with no elements") {
        const std::string f = dir.file("huge.npy");
        write_raw_npy(f, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 100000000000, 100000000000), }");
        const std::string m = message_of([&] { lx::load_npy<float>(f); });
        CHECK_THAT(m, Catch::Contains(f));
        CHECK_THAT(m, Catch::Contains("too large"));
    }
    SECTION("a directory") {
        CHECK_THAT(message_of([&] { lx::load_npy<float>(dir.path.string()); }), Catch::Contains("directory"));
    }
    SECTION("unwritable path") {
        const std::string f = dir.file("no/such/dir/out.npy");
        const std::string m = message_of([&] { lx::save_npy(f, x); });
        CHECK_THAT(m, Catch::Contains(f));
        CHECK_THAT(m, Catch::Contains("cannot open it for writing"));
    }
}
