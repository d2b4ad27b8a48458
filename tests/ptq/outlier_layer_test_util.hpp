// tests/ptq/outlier_layer_test_util.hpp: the synthetic linear layer with outlier input
// channels that the AWQ and SmoothQuant tests calibrate (one fixture, two outlier factors: AWQ's
// "salient" channels 15x, SmoothQuant's LLM.int8-style channels 100x). Deviates come from
// dfq_test::gauss (std::mt19937's raw bits through Box-Muller in double, the same numbers with
// every standard library). Namespace ptq_test: the ptq tests link into one binary.
#ifndef LOWBIT_TESTS_PTQ_OUTLIER_LAYER_TEST_UTIL_HPP
#define LOWBIT_TESTS_PTQ_OUTLIER_LAYER_TEST_UTIL_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "dfq_test_util.hpp"

namespace ptq_test {

/// A linear layer n x k (w row-major, output channel first) with calibration and held-out
/// activations rows x k each (xcal, xtest).
struct outlier_layer {
    std::size_t n = 0, k = 0, rows = 0;
    std::vector<float> w, xcal, xtest;
};

/// outlier_layer from `seed`: input-channel magnitudes log-normal (exp(0.5 z)), 4 channels
/// (drawn with repetition) multiplied by `outlier`, a shared per-row factor correlating the
/// channels (loading 0.7 z_j); gaussian weights (std 0.05) with 2 outlier rows and 2 outlier
/// columns (x4). The draw order is fixed: magnitudes and loadings, outlier channels, weights,
/// outlier rows / columns, calibration rows, held-out rows.
inline outlier_layer make_outlier_layer(std::uint32_t seed, double outlier, std::size_t n, std::size_t k,
                                        std::size_t rows) {
    std::mt19937 g(seed);
    outlier_layer l;
    l.n = n, l.k = k, l.rows = rows;
    std::vector<double> mag(k), load(k);
    for (std::size_t j = 0; j < k; ++j) {
        mag[j] = std::exp(0.5 * dfq_test::gauss(g));
        load[j] = dfq_test::gauss(g);
    }
    for (int t = 0; t < 4; ++t) mag[g() % k] *= outlier;
    l.w.resize(n * k);
    for (float& v : l.w) v = static_cast<float>(0.05 * dfq_test::gauss(g));
    for (int t = 0; t < 2; ++t) {
        const std::size_t o = g() % n, j = g() % k;
        for (std::size_t i = 0; i < k; ++i) l.w[o * k + i] *= 4.0f;
        for (std::size_t i = 0; i < n; ++i) l.w[i * k + j] *= 4.0f;
    }
    const auto fill = [&](std::vector<float>& x) {
        x.resize(rows * k);
        for (std::size_t r = 0; r < rows; ++r) {
            const double f = dfq_test::gauss(g);
            for (std::size_t j = 0; j < k; ++j)
                x[r * k + j] = static_cast<float>(mag[j] * (dfq_test::gauss(g) + 0.7 * f * load[j]));
        }
    };
    fill(l.xcal);
    fill(l.xtest);
    return l;
}

}  // namespace ptq_test

#endif  // LOWBIT_TESTS_PTQ_OUTLIER_LAYER_TEST_UTIL_HPP
