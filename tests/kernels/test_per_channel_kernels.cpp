// SIMD per-channel / per-group kernels (kernels/per_channel.hpp) against lowbit::ref's shape
// overloads: every ISA the CPU runs; 2-D and 3-D shapes with the channel axis first, middle
// and last; channel and inner sizes on every register / block tail; groups along the last
// and a middle axis; per-tensor schemes through the same overload; every format (odd 4-bit
// counts), affine and symmetric (empty zero-points), both profiles; hard inputs at each
// element's own scale; unaligned buffers, canaries around every output, in place; and the
// reference's errors, with nothing written.
#include "lowbit_catch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <lowbit/kernels/per_channel.hpp>

#include "inputs.hpp"
#include "isa.hpp"

namespace {

using lowbit::shape;
using lowbit::span;

constexpr float canary = -1234.5f;
constexpr std::uint8_t canary_byte = 0x5A;

struct params {
    std::vector<float> scales;
    std::vector<std::int32_t> zero_points;  // empty for the symmetric schemes
    lowbit::qparams_view view() const { return {scales, zero_points}; }
};

// Scales of every kind (round, thirds, tiny, log-uniform, one huge-product 1e-30); zero-points
// anywhere in [qmin, qmax].
template <class Scheme>
params make_params(const Scheme& s, std::size_t count, std::uint32_t seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> lg(-3.0f, 1.0f);
    std::uniform_int_distribution<std::int32_t> zp(s.qmin(), s.qmax());
    const float fixed[] = {0.1f, 1.0f / 3.0f, 0.05f, 0.02f, 0.5f, 1.0f, 1e-30f};
    params p;
    for (std::size_t i = 0; i < count; ++i) {
        const auto r = static_cast<std::size_t>(gen() % 10);
        p.scales.push_back(r < 7 ? fixed[r] : std::pow(10.0f, lg(gen)));
        if (Scheme::sym == lowbit::symmetry::affine) p.zero_points.push_back(zp(gen));
    }
    return p;
}

// hard_inputs (inputs.hpp), each element at its own parameter's scale: midpoints and their
// neighbours, far values, denormals, +-0, NaN, +-Inf, noise.
std::vector<float> inputs_for(const lowbit::quant_layout& l, const params& p, std::size_t offset, std::uint32_t seed) {
    std::vector<float> x(l.numel + offset, 7.0f);
    std::vector<float> unit = lowbit_test::hard_inputs(l.numel, 1.0f, seed);
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int> k(-140, 140);
    const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), 0.0f, -0.0f,
                              std::numeric_limits<float>::denorm_min(), -1e-40f, 1e30f, -1e30f, 3e38f};
    for (std::size_t i = 0; i < l.numel; ++i) {
        const float s = p.scales[l.param_index(i)];
        float v;
        switch (gen() % 8) {
            case 0: v = specials[gen() % 10]; break;
            case 1:
            case 2: v = (static_cast<float>(k(gen)) + 0.5f) * s; break;
            case 3: v = std::nextafter((static_cast<float>(k(gen)) + 0.5f) * s, 1e9f); break;
            case 4: v = std::nextafter((static_cast<float>(k(gen)) + 0.5f) * s, -1e9f); break;
            default: v = std::isfinite(unit[i]) ? unit[i] * 60.0f * s : unit[i]; break;
        }
        x[offset + i] = v;
    }
    return x;
}

std::vector<float> gradients(std::size_t n, std::uint32_t seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> g(0.0f, 2.0f);
    const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), 0.0f, -0.0f, -1e-40f, 3e38f};
    std::vector<float> dy(n);
    for (float& v : dy) v = gen() % 6 == 0 ? specials[gen() % 7] : g(gen);
    return dy;
}

template <class T>
void require_same(const std::vector<T>& want, const std::vector<T>& got, const char* what) {
    const long d = lowbit_test::first_difference(want.data(), got.data(), want.size());
    INFO(what << ": first difference at " << d << " of " << want.size());
    REQUIRE(d == -1);
}

std::string describe(const shape& shp) {
    std::string r = "[";
    for (std::size_t i = 0; i < shp.rank(); ++i) r += (i ? "," : "") + std::to_string(shp[i]);
    return r + "]";
}

// All four kernels against ref for one scheme and shape, buffers misaligned by 0, 1, 3 elements.
template <class A, class Scheme>
void check(const Scheme& s, const shape& shp) {
    using T = typename Scheme::storage_type;
    using F = typename Scheme::format;
    const lowbit::result<lowbit::quant_layout> lr = lowbit::make_layout(s, shp);
    REQUIRE(lr.ok());
    const lowbit::quant_layout l = *lr;
    const std::size_t n = l.numel;
    const std::size_t m = F::storage_size(n);
    INFO("arch " << A::name() << " format " << lowbit::to_string(F::id) << " " << lowbit::to_string(Scheme::sym)
                 << " profile " << lowbit::to_string(s.profile()) << " rounding " << lowbit::to_string(s.rounding())
                 << " " << lowbit::to_string(s.granularity()) << " axis " << s.axis() << " group "
                 << s.group_size() << " shape " << describe(shp));
    for (std::size_t offset : {std::size_t(0), std::size_t(1), std::size_t(3)}) {
        INFO("offset " << offset);
        const auto seed = static_cast<std::uint32_t>(n * 7 + offset + l.param_count * 131);
        const params p = make_params(s, l.param_count, seed);
        const std::vector<float> src = inputs_for(l, p, offset, seed);
        const span<const float> x(src.data() + offset, n);
        const std::size_t size = n + offset + 4;

        // quantize
        std::vector<T> q_want(m + offset + 4, T(canary_byte)), q_got(m + offset + 4, T(canary_byte));
        REQUIRE(lowbit::ref::quantize(s, shp, p.view(), x, span<T>(q_want.data() + offset, m)).ok());
        REQUIRE(lowbit::kernels::quantize<A>(s, shp, p.view(), x, span<T>(q_got.data() + offset, m)).ok());
        require_same(q_want, q_got, "quantize");

        // dequantize: every byte pattern (4-bit: both nibbles, including an odd count's padding)
        std::mt19937 gen(seed);
        std::vector<T> qin(m + offset);
        for (T& b : qin) b = static_cast<T>(gen());
        const span<const T> qs(qin.data() + offset, m);
        std::vector<float> d_want(size, canary), d_got(size, canary);
        REQUIRE(lowbit::ref::dequantize(s, shp, p.view(), qs, span<float>(d_want.data() + offset, n)).ok());
        REQUIRE(lowbit::kernels::dequantize<A>(s, shp, p.view(), qs, span<float>(d_got.data() + offset, n)).ok());
        require_same(d_want, d_got, "dequantize");

        // fake-quantize, without and with mask
        std::vector<float> y_want(size, canary), y_got(size, canary);
        REQUIRE(lowbit::ref::fake_quantize(s, shp, p.view(), x, span<float>(y_want.data() + offset, n)).ok());
        REQUIRE(lowbit::kernels::fake_quantize<A>(s, shp, p.view(), x, span<float>(y_got.data() + offset, n)).ok());
        require_same(y_want, y_got, "fake_quantize y");
        std::vector<std::uint8_t> mk_want(size, canary_byte), mk_got(size, canary_byte);
        std::fill(y_got.begin(), y_got.end(), canary);
        REQUIRE(lowbit::kernels::fake_quantize<A>(s, shp, p.view(), x, span<float>(y_got.data() + offset, n),
                                                  span<std::uint8_t>(mk_got.data() + offset, n))
                    .ok());
        REQUIRE(lowbit::ref::fake_quantize(s, shp, p.view(), x, span<float>(y_want.data() + offset, n),
                                           span<std::uint8_t>(mk_want.data() + offset, n))
                    .ok());
        require_same(y_want, y_got, "fake_quantize y (with mask)");
        require_same(mk_want, mk_got, "fake_quantize mask");

        // in place (y = x)
        std::vector<float> inplace = src;
        inplace.resize(size, canary);
        REQUIRE(lowbit::kernels::fake_quantize<A>(s, shp, p.view(), span<const float>(inplace.data() + offset, n),
                                                  span<float>(inplace.data() + offset, n))
                    .ok());
        std::vector<float> inplace_want = src;
        inplace_want.resize(size, canary);
        std::copy(y_want.begin() + static_cast<long>(offset), y_want.begin() + static_cast<long>(offset + n),
                  inplace_want.begin() + static_cast<long>(offset));
        require_same(inplace_want, inplace, "fake_quantize in place");

        // backward, and in place (dx = dy)
        std::vector<float> dy = gradients(n + offset, seed);
        const span<const float> dys(dy.data() + offset, n);
        std::vector<float> g_want(size, canary), g_got(size, canary);
        REQUIRE(lowbit::ref::fake_quantize_backward(s, shp, p.view(), x, dys, span<float>(g_want.data() + offset, n))
                    .ok());
        REQUIRE(lowbit::kernels::fake_quantize_backward<A>(s, shp, p.view(), x, dys,
                                                           span<float>(g_got.data() + offset, n))
                    .ok());
        require_same(g_want, g_got, "fake_quantize_backward");
        dy.resize(size, canary);
        std::vector<float> dy_want = dy;
        std::copy(g_want.begin() + static_cast<long>(offset), g_want.begin() + static_cast<long>(offset + n),
                  dy_want.begin() + static_cast<long>(offset));
        REQUIRE(lowbit::kernels::fake_quantize_backward<A>(s, shp, p.view(), x, span<const float>(dy.data() + offset, n),
                                                           span<float>(dy.data() + offset, n))
                    .ok());
        require_same(dy_want, dy, "fake_quantize_backward in place");
    }
}

// Every format, affine and symmetric, both profiles (plus half_away under torch and
// stochastic, which takes the reference path), for one granularity setter.
template <class A, class Gran>
void check_schemes(const shape& shp, Gran gran) {
    using lowbit::profile;
    using lowbit::symmetry;
    for (profile pr : {profile::torch, profile::tflite}) {
        check<A>(gran(lowbit::scheme<lowbit::s8>{}.with_profile(pr)), shp);
        check<A>(gran(lowbit::scheme<lowbit::u8>{}.with_profile(pr)), shp);
        check<A>(gran(lowbit::scheme<lowbit::s4>{}.with_profile(pr)), shp);
        check<A>(gran(lowbit::scheme<lowbit::u4>{}.with_profile(pr)), shp);
        check<A>(gran(lowbit::scheme<lowbit::s8, symmetry::symmetric>{}.with_profile(pr)), shp);
        check<A>(gran(lowbit::scheme<lowbit::u8, symmetry::symmetric>{}.with_profile(pr)), shp);  // zp 128
        check<A>(gran(lowbit::scheme<lowbit::s4, symmetry::symmetric_narrow>{}.with_profile(pr)), shp);
        check<A>(gran(lowbit::scheme<lowbit::u4, symmetry::symmetric>{}.with_profile(pr)), shp);  // zp 7
    }
    check<A>(gran(lowbit::scheme<lowbit::u8>{}.with_reduce_range()), shp);
    check<A>(gran(lowbit::scheme<lowbit::s8>{}.with_rounding(lowbit::rounding::half_away)), shp);
    check<A>(gran(lowbit::scheme<lowbit::s4>{}.with_rounding(lowbit::rounding::stochastic, 5)), shp);
}

template <class A>
void check_per_channel(const shape& shp, std::size_t axis) {
    check_schemes<A>(shp, [axis](auto s) { return s.per_channel(axis); });
}
template <class A>
void check_per_group(const shape& shp, std::size_t axis, std::size_t g) {
    check_schemes<A>(shp, [axis, g](auto s) { return s.per_group(axis, g); });
}

// Register / block tails for 4, 8 and 16 lanes (lanes - 1, lanes, lanes + 1, 2 lanes + 3,
// blocks of 4 registers +- 1) and the short / long segment switch.
const std::vector<std::size_t> dims = {1, 3, 4, 5, 7, 8, 9, 11, 15, 16, 17, 19, 31, 32, 33, 35, 63, 64, 65, 67, 129};

}  // namespace

TEMPLATE_TEST_CASE("kernels per-channel: channel axis last (inner 1)", "[kernels][per_channel]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    for (std::size_t c : dims)
        for (std::size_t rows : {std::size_t(1), std::size_t(3)}) check_per_channel<TestType>(shape{rows, c}, 1);
    check_per_channel<TestType>(shape{2, 3, 17}, 2);
    check_per_channel<TestType>(shape{67}, 0);
    check_per_channel<TestType>(shape{3, 1100}, 1);  // longer than the parameter table: refilled per row
    check_per_channel<TestType>(shape{2, 2100}, 1);
    check_per_channel<TestType>(shape{3, 1031}, 1);  // odd rows: 4-bit in flat order
    check_per_channel<TestType>(shape{4103}, 0);     // several 4-bit chunks
    check_per_channel<TestType>(shape{300, 3}, 1);   // short periodic rows
    check_per_channel<TestType>(shape{41, 35}, 1);
}

TEMPLATE_TEST_CASE("kernels per-channel: channel axis first (inner > 1)", "[kernels][per_channel]",
                   LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    for (std::size_t k : dims)
        for (std::size_t c : {std::size_t(2), std::size_t(3), std::size_t(5)}) check_per_channel<TestType>(shape{c, k}, 0);
    for (std::size_t c : {std::size_t(1), std::size_t(4), std::size_t(9), std::size_t(17)})
        check_per_channel<TestType>(shape{c, 3, 5}, 0);
    check_per_channel<TestType>(shape{3, 4103}, 0);  // long runs across 4-bit chunks
    check_per_channel<TestType>(shape{70, 33}, 0);   // not periodic within the window
}

TEMPLATE_TEST_CASE("kernels per-channel: channel axis in the middle", "[kernels][per_channel]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    for (std::size_t c : {std::size_t(1), std::size_t(3), std::size_t(5), std::size_t(16), std::size_t(17)})
        for (std::size_t in : {std::size_t(2), std::size_t(3), std::size_t(4), std::size_t(7), std::size_t(8),
                               std::size_t(9), std::size_t(15), std::size_t(16), std::size_t(17), std::size_t(32),
                               std::size_t(35), std::size_t(64), std::size_t(67)})
            check_per_channel<TestType>(shape{2, c, in}, 1);
    check_per_channel<TestType>(shape{3, 64, 49}, 1);  // NCHW-like 7x7 maps
    check_per_channel<TestType>(shape{3, 200, 3}, 1);  // short runs, pattern longer than a window
    check_per_channel<TestType>(shape{2, 2, 3, 5}, 2);
}

TEMPLATE_TEST_CASE("kernels per-group: groups along the last axis", "[kernels][per_channel]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    for (std::size_t g : {std::size_t(2), std::size_t(4), std::size_t(32), std::size_t(64)})
        for (std::size_t mult : {std::size_t(1), std::size_t(2), std::size_t(3), std::size_t(5)})
            for (std::size_t rows : {std::size_t(1), std::size_t(3)}) check_per_group<TestType>(shape{rows, g * mult}, 1, g);
    check_per_group<TestType>(shape{3, 9}, 1, 3);     // odd groups, odd 4-bit count
    check_per_group<TestType>(shape{5, 35}, 1, 5);
    check_per_group<TestType>(shape{2, 3, 16}, 2, 8);
    check_per_group<TestType>(shape{7, 17}, 1, 1);    // groups of one: a parameter per element
    check_per_group<TestType>(shape{4, 1024}, 1, 128);
    check_per_group<TestType>(shape{3, 4096}, 1, 4096);  // one group per row
    check_per_group<TestType>(shape{64}, 0, 64);         // a single group
    check_per_group<TestType>(shape{2, 1100}, 1, 2);     // more groups than the parameter table holds
    check_per_group<TestType>(shape{3, 1100}, 1, 4);
    check_per_group<TestType>(shape{3, 8192}, 1, 16);
}

TEMPLATE_TEST_CASE("kernels per-group: groups along a middle or the first axis", "[kernels][per_channel]",
                   LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    for (std::size_t g : {std::size_t(2), std::size_t(4), std::size_t(32), std::size_t(64)})
        for (std::size_t in : {std::size_t(3), std::size_t(8), std::size_t(17), std::size_t(35)})
            check_per_group<TestType>(shape{2, g * 2, in}, 1, g);
    for (std::size_t g : {std::size_t(2), std::size_t(4)})
        for (std::size_t in : {std::size_t(1), std::size_t(5), std::size_t(16), std::size_t(67)})
            check_per_group<TestType>(shape{g * 3, in}, 0, g);
    check_per_group<TestType>(shape{4, 1030}, 0, 2);  // rows longer than the parameter table
    check_per_group<TestType>(shape{4, 1031}, 0, 2);  // odd: 4-bit in flat order
    check_per_group<TestType>(shape{6, 3, 7}, 1, 1);
}

TEMPLATE_TEST_CASE("kernels per-tensor schemes through the shape overload", "[kernels][per_channel]",
                   LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    for (std::size_t n : tail_sizes()) {
        if (n == 0) continue;
        check_schemes<TestType>(shape{n}, [](auto s) { return s; });
    }
    check_schemes<TestType>(shape{3, 5, 7}, [](auto s) { return s; });
}

TEMPLATE_TEST_CASE("kernels per-channel: empty tensors", "[kernels][per_channel]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    const auto s = lowbit::scheme<lowbit::s4>{}.per_channel(1);
    const std::vector<float> scales(5, 0.5f);
    const std::vector<std::int32_t> zps(5, 0);
    std::vector<float> x, y;
    std::vector<std::uint8_t> q;
    CHECK(lowbit::kernels::quantize<TestType>(s, shape{0, 5}, {scales, zps}, x, q).ok());
    CHECK(lowbit::kernels::dequantize<TestType>(s, shape{0, 5}, {scales, zps}, q, y).ok());
    CHECK(lowbit::kernels::fake_quantize<TestType>(s, shape{0, 5}, {scales, zps}, x, y).ok());
    CHECK(lowbit::kernels::fake_quantize_backward<TestType>(s, shape{0, 5}, {scales, zps}, x, x, y).ok());
}

namespace {

// Runs a ref call and the kernel call; both must throw the same message, and the kernel must
// leave its output untouched.
template <class Ref, class Kernel>
void same_error(Ref ref_call, Kernel kernel_call, const char* expect) {
    std::string want, got;
    try {
        ref_call();
    } catch (const lowbit::error& e) {
        want = e.what();
    }
    try {
        kernel_call();
    } catch (const lowbit::error& e) {
        got = e.what();
    }
    INFO("ref: " << want << "\nkernel: " << got);
    CHECK(!want.empty());
    CHECK(want == got);
    CHECK(got.find(expect) != std::string::npos);
}

}  // namespace

TEMPLATE_TEST_CASE("kernels per-channel check like ref", "[kernels][per_channel][errors]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    using A = TestType;
    namespace k = lowbit::kernels;
    namespace r = lowbit::ref;
    const auto s = lowbit::scheme<lowbit::s8>{}.per_channel(1);
    const auto g = lowbit::scheme<lowbit::u4>{}.per_group(1, 4);
    const auto sym = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>{}.per_channel(0);
    const shape shp{3, 8};
    const std::vector<float> x(24, 1.0f), dy(24, 1.0f), x_short(23, 1.0f);
    std::vector<float> scales(8, 0.5f), bad_scales(8, 0.5f), short_scales(7, 0.5f);
    bad_scales[5] = 0.0f;
    std::vector<std::int32_t> zps(8, 1), bad_zps(8, 1), short_zps(7, 1);
    bad_zps[2] = 200;
    const std::vector<float> gscales(6, 0.5f);
    const std::vector<std::int32_t> gzps(6, 3);
    std::vector<std::int8_t> q(24, 9), q_short(23, 9);
    std::vector<std::uint8_t> q4(12, 9), mask(24, 9), mask_short(23, 9);
    std::vector<float> y(24, canary), y_short(23, canary);
    const std::vector<std::int8_t> q_const(24, 1);
    const lowbit::qparams_view good{scales, zps};

    // counts
    same_error([&] { r::quantize(s, shp, good, x_short, q); }, [&] { k::quantize<A>(s, shp, good, x_short, q); },
               "'x.size()' = 23");
    same_error([&] { r::quantize(s, shp, good, x, q_short); }, [&] { k::quantize<A>(s, shp, good, x, q_short); },
               "'q.size()' = 23");
    same_error([&] { r::quantize(s, shp, {short_scales, zps}, x, q); },
               [&] { k::quantize<A>(s, shp, {short_scales, zps}, x, q); }, "'scales.size()' = 7");
    same_error([&] { r::quantize(s, shp, {scales, short_zps}, x, q); },
               [&] { k::quantize<A>(s, shp, {scales, short_zps}, x, q); }, "'zero_points.size()' = 7");
    same_error([&] { r::quantize(s, shp, {scales, {}}, x, q); }, [&] { k::quantize<A>(s, shp, {scales, {}}, x, q); },
               "'zero_points.size()' = 0");  // affine needs zero-points
    same_error([&] { r::dequantize(s, shp, good, q_const, y_short); },
               [&] { k::dequantize<A>(s, shp, good, q_const, y_short); }, "'x.size()' = 23");
    same_error([&] { r::fake_quantize(s, shp, good, x, y_short); },
               [&] { k::fake_quantize<A>(s, shp, good, x, y_short); }, "'y.size()' = 23");
    same_error([&] { r::fake_quantize(s, shp, good, x_short, y); },
               [&] { k::fake_quantize<A>(s, shp, good, x_short, y); }, "'x.size()' = 23");
    same_error([&] { r::fake_quantize(s, shp, good, x, y, mask_short); },
               [&] { k::fake_quantize<A>(s, shp, good, x, y, mask_short); }, "'mask.size()' = 23");
    same_error([&] { r::fake_quantize_backward(s, shp, good, x, x_short, y); },
               [&] { k::fake_quantize_backward<A>(s, shp, good, x, x_short, y); }, "'dy.size()' = 23");
    same_error([&] { r::fake_quantize_backward(s, shp, good, x, dy, y_short); },
               [&] { k::fake_quantize_backward<A>(s, shp, good, x, dy, y_short); }, "'dx.size()' = 23");
    // a bad channel's parameters
    same_error([&] { r::quantize(s, shp, {bad_scales, zps}, x, q); },
               [&] { k::quantize<A>(s, shp, {bad_scales, zps}, x, q); }, "'scale' = 0");
    same_error([&] { r::fake_quantize(s, shp, {scales, bad_zps}, x, y); },
               [&] { k::fake_quantize<A>(s, shp, {scales, bad_zps}, x, y); }, "'zero_point' = 200");
    same_error([&] { r::dequantize(s, shp, {bad_scales, zps}, q_const, y); },
               [&] { k::dequantize<A>(s, shp, {bad_scales, zps}, q_const, y); }, "'scale' = 0");
    // shape / axis / groups
    same_error([&] { r::quantize(s.per_channel(2), shp, good, x, q); },
               [&] { k::quantize<A>(s.per_channel(2), shp, good, x, q); }, "'axis' = 2");
    same_error([&] { r::quantize(s, shape{4, 6}, good, x, q); }, [&] { k::quantize<A>(s, shape{4, 6}, good, x, q); },
               "'scales.size()' = 8");  // 6 channels
    same_error([&] { r::quantize(g, shape{3, 6}, {gscales, gzps}, span<const float>(x.data(), 18), q4); },
               [&] { k::quantize<A>(g, shape{3, 6}, {gscales, gzps}, span<const float>(x.data(), 18), q4); },
               "'group_size' = 4");
    same_error([&] { r::fake_quantize_backward(g.per_group(1, 0), shp, {gscales, gzps}, x, dy, y); },
               [&] { k::fake_quantize_backward<A>(g.per_group(1, 0), shp, {gscales, gzps}, x, dy, y); },
               "'group_size' = 0");
    same_error([&] { r::quantize(sym, shp, {scales, {}}, x, q); }, [&] { k::quantize<A>(sym, shp, {scales, {}}, x, q); },
               "'scales.size()' = 8");  // symmetric: 3 channels along axis 0
    // nothing was written
    CHECK(q == std::vector<std::int8_t>(24, 9));
    CHECK(q_short == std::vector<std::int8_t>(23, 9));
    CHECK(q4 == std::vector<std::uint8_t>(12, 9));
    CHECK(mask_short == std::vector<std::uint8_t>(23, 9));
    CHECK(y == std::vector<float>(24, canary));
    CHECK(y_short == std::vector<float>(23, canary));
}
