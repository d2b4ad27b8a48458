// lowbit/ptq/linalg.hpp: the few dense linear-algebra steps the PTQ algorithms need, on plain
// row-major arrays, single thread, in a fixed order (the same bits on every machine and at
// every -O: explicit fma only, no reassociation).
//
//   linear_forward   Y[M][N] = X[M][K] * W[N][K]^T (+ bias[N])   (torch.nn.Linear; f32 in and
//                    out, each dot product accumulated in double in increasing k, rounded once)
//   gram             H[K][K] = X^T X (double, symmetric), accumulated over calls: the Hessian
//                    of a layer's output error with respect to its weights is 2 H / rows
//   cholesky         lower-triangular L with H = L L^T (double), in place
//   cholesky_inverse H^-1 from L (double), in place
//   mse              mean of (a - b)^2 over two f32 arrays (double), the layer error measure
//
// Matrices are spans of the whole row-major matrix with their sizes; the PTQ layer is hosted
// (heap allowed in callers), but these functions allocate nothing.
#ifndef LOWBIT_PTQ_LINALG_HPP
#define LOWBIT_PTQ_LINALG_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "../core/span.hpp"
#include "../core/status.hpp"

namespace lowbit {
namespace ptq {

/// Y = X W^T (+ bias): X is M x K, W is N x K (one row per output), Y is M x N, bias empty or
/// N. Each output is sum_k x * w in double (increasing k, exact products, fma-free double
/// adds) plus bias, rounded once to float. Errors: sizes.
inline status linear_forward(std::size_t m, std::size_t n, std::size_t k, span<const float> x, span<const float> w,
                             span<const float> bias, span<float> y) {
    LOWBIT_DETAIL_CHECK(x.size() == m * k, errc::size_mismatch, "x.size()", x.size(), "must be M * K");
    LOWBIT_DETAIL_CHECK(w.size() == n * k, errc::size_mismatch, "w.size()", w.size(), "must be N * K");
    LOWBIT_DETAIL_CHECK(bias.empty() || bias.size() == n, errc::size_mismatch, "bias.size()", bias.size(),
                        "must be 0 or N");
    LOWBIT_DETAIL_CHECK(y.size() == m * n, errc::size_mismatch, "y.size()", y.size(), "must be M * N");
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            double s = bias.empty() ? 0.0 : static_cast<double>(bias[j]);
            const float* xr = x.data() + i * k;
            const float* wr = w.data() + j * k;
            for (std::size_t t = 0; t < k; ++t) s += static_cast<double>(xr[t]) * static_cast<double>(wr[t]);
            y[i * n + j] = static_cast<float>(s);
        }
    return {};
}

/// H += X^T X for X of `rows` x K (f32), H K x K double (both triangles written). Call once
/// per calibration batch; start from zeros. Errors: sizes.
inline status gram(std::size_t rows, std::size_t k, span<const float> x, span<double> h) {
    LOWBIT_DETAIL_CHECK(x.size() == rows * k, errc::size_mismatch, "x.size()", x.size(), "must be rows * K");
    LOWBIT_DETAIL_CHECK(h.size() == k * k, errc::size_mismatch, "h.size()", h.size(), "must be K * K");
    for (std::size_t r = 0; r < rows; ++r) {
        const float* xr = x.data() + r * k;
        for (std::size_t i = 0; i < k; ++i) {
            const double xi = xr[i];
            if (xi == 0.0) continue;
            double* hr = h.data() + i * k;
            for (std::size_t j = 0; j <= i; ++j) hr[j] += xi * static_cast<double>(xr[j]);
        }
    }
    for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = i + 1; j < k; ++j) h[i * k + j] = h[j * k + i];
    return {};
}

/// In place: H (n x n, symmetric positive definite, double) becomes L, lower triangular with
/// H = L L^T (the strict upper triangle is set to 0). Errors: size; H not positive definite
/// (errc::invalid_argument naming "h" with the failing pivot index as value; H is then
/// partly overwritten: keep a copy if you retry with more dampening).
inline status cholesky(std::size_t n, span<double> h) {
    LOWBIT_DETAIL_CHECK(h.size() == n * n, errc::size_mismatch, "h.size()", h.size(), "must be n * n");
    for (std::size_t j = 0; j < n; ++j) {
        double d = h[j * n + j];
        for (std::size_t t = 0; t < j; ++t) d -= h[j * n + t] * h[j * n + t];
        LOWBIT_DETAIL_CHECK(d > 0.0 && std::isfinite(d), errc::invalid_argument, "h", j,
                            "must be positive definite (pivot j failed): add dampening");
        const double l = std::sqrt(d);
        h[j * n + j] = l;
        for (std::size_t i = j + 1; i < n; ++i) {
            double s = h[i * n + j];
            for (std::size_t t = 0; t < j; ++t) s -= h[i * n + t] * h[j * n + t];
            h[i * n + j] = s / l;
        }
        for (std::size_t i = 0; i < j; ++i) h[i * n + j] = 0.0;
    }
    return {};
}

/// In place: L (n x n lower triangular from cholesky) becomes H^-1 = (L L^T)^-1 (symmetric,
/// both triangles). Errors: size; a zero diagonal ("l").
inline status cholesky_inverse(std::size_t n, span<double> l) {
    LOWBIT_DETAIL_CHECK(l.size() == n * n, errc::size_mismatch, "l.size()", l.size(), "must be n * n");
    for (std::size_t i = 0; i < n; ++i)
        LOWBIT_DETAIL_CHECK(l[i * n + i] != 0.0, errc::invalid_argument, "l", i, "diagonal entry must be non-zero");
    // L^-1 in place (lower), column by column: forward substitution
    for (std::size_t j = 0; j < n; ++j) {
        l[j * n + j] = 1.0 / l[j * n + j];
        for (std::size_t i = j + 1; i < n; ++i) {
            double s = 0.0;
            for (std::size_t t = j; t < i; ++t) s -= l[i * n + t] * l[t * n + j];
            l[i * n + j] = s / l[i * n + i];
        }
    }
    // H^-1 = L^-T L^-1: entry (i, j), i >= j, = sum_{t >= i} Linv[t][i] * Linv[t][j]
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j <= i; ++j) {
            double s = 0.0;
            for (std::size_t t = i; t < n; ++t) s += l[t * n + i] * l[t * n + j];
            l[j * n + i] = s;  // upper triangle first (row j >= ... read only from the lower part above)
        }
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < i; ++j) l[i * n + j] = l[j * n + i];
    return {};
}

/// Mean of (a - b)^2 in double. Errors: sizes differ; empty.
inline result<double> mse(span<const float> a, span<const float> b) {
    LOWBIT_DETAIL_CHECK(a.size() == b.size(), errc::size_mismatch, "b.size()", b.size(), "must equal a.size()");
    LOWBIT_DETAIL_CHECK(!a.empty(), errc::size_mismatch, "a.size()", 0, "must be > 0");
    double s = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
        s += d * d;
    }
    return s / static_cast<double>(a.size());
}

}  // namespace ptq
}  // namespace lowbit

#endif  // LOWBIT_PTQ_LINALG_HPP
