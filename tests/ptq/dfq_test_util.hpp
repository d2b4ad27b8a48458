// tests/ptq/dfq_test_util.hpp: helpers shared by the tests of fold / equalize /
// bias_correction / sensitivity (the data-free-quantization part of issue 7): a seeded
// gaussian from std::mt19937's bits (no <random> distributions, so the same numbers with every
// standard library), round-to-nearest weight quantization through lowbit's own schemes and
// observers, and small network pieces. Namespace dfq_test: other ptq tests link into the
// same binary.
#ifndef LOWBIT_TESTS_PTQ_DFQ_TEST_UTIL_HPP
#define LOWBIT_TESTS_PTQ_DFQ_TEST_UTIL_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include <lowbit/core/fake_quantize.hpp>
#include <lowbit/observers/minmax.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>
#include <lowbit/ptq/linalg.hpp>

namespace dfq_test {

/// Uniform in (0, 1) from 32 engine bits.
inline double uniform01(std::mt19937& g) { return (static_cast<double>(g()) + 0.5) / 4294967296.0; }

/// Standard normal by Box-Muller (one value per call, two uniforms).
inline double gauss(std::mt19937& g) {
    const double u1 = uniform01(g), u2 = uniform01(g);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

inline void expect_ok(const lowbit::status& s) {
    if (!s.ok()) throw std::runtime_error("dfq_test: unexpected lowbit status");
}

/// Round-to-nearest of w [n][k] at `bits` (2..8) symmetric signed, min/max qparams (torch
/// numerics): per output channel (per_channel_minmax_observer, axis 0) or per tensor
/// (minmax_observer). Custom range [-2^(b-1), 2^(b-1) - 1] of lowbit::s8.
inline std::vector<float> rtn_weights(int bits, bool per_channel, std::size_t n, std::size_t k,
                                      const std::vector<float>& w) {
    const std::int32_t hi = (1 << (bits - 1)) - 1, lo = -(1 << (bits - 1));
    const auto base = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>{}.with_range(lo, hi);
    std::vector<float> out(w.size());
    if (per_channel) {
        const auto s = base.per_channel(0);
        std::vector<float> state(2 * n), scales(n);
        std::vector<std::int32_t> zps(n);
        lowbit::per_channel_minmax_observer<decltype(s)> obs(s, n, state);
        expect_ok(obs.observe(lowbit::shape{n, k}, w));
        expect_ok(obs.qparams(scales, zps));
        expect_ok(lowbit::ref::fake_quantize(s, lowbit::shape{n, k}, lowbit::qparams_view{scales, zps}, w, out));
    } else {
        lowbit::minmax_observer<decltype(base)> obs(base);
        expect_ok(obs.observe(lowbit::span<const float>(w)));
        expect_ok(lowbit::ref::fake_quantize(base, *obs.qparams(), w, out));
    }
    return out;
}

/// Round-to-nearest of activations at `bits` (2..8): unsigned affine per tensor, min/max over x.
inline std::vector<float> rtn_activations(int bits, const std::vector<float>& x) {
    const auto s = lowbit::scheme<lowbit::u8>{}.with_range(0, (1 << bits) - 1);
    lowbit::minmax_observer<decltype(s)> obs(s);
    expect_ok(obs.observe(lowbit::span<const float>(x)));
    std::vector<float> out(x.size());
    expect_ok(lowbit::ref::fake_quantize(s, *obs.qparams(), x, out));
    return out;
}

/// y [rows][n] = x [rows][k] w^T + b (lowbit::ptq::linear_forward).
inline std::vector<float> linear(std::size_t rows, std::size_t n, std::size_t k, const std::vector<float>& x,
                                 const std::vector<float>& w, const std::vector<float>& b) {
    std::vector<float> y(rows * n);
    expect_ok(lowbit::ptq::linear_forward(rows, n, k, x, w, b, y));
    return y;
}

inline std::vector<float> relu(std::vector<float> v) {
    for (float& e : v) e = e > 0.0f ? e : 0.0f;
    return v;
}

inline double mse(const std::vector<float>& a, const std::vector<float>& b) { return *lowbit::ptq::mse(a, b); }

/// Max over rows of the row's range along axis 0 (rows) or 1 (columns) of m [r][c]: used to
/// read per-channel ranges.
inline std::vector<float> row_absmax(std::size_t r, std::size_t c, const std::vector<float>& m) {
    std::vector<float> out(r, 0.0f);
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < c; ++j) out[i] = std::fmax(out[i], std::fabs(m[i * c + j]));
    return out;
}
inline std::vector<float> col_absmax(std::size_t r, std::size_t c, const std::vector<float>& m) {
    std::vector<float> out(c, 0.0f);
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < c; ++j) out[j] = std::fmax(out[j], std::fabs(m[i * c + j]));
    return out;
}

}  // namespace dfq_test

#endif  // LOWBIT_TESTS_PTQ_DFQ_TEST_UTIL_HPP
