// lowbit/quant/lane_sums.hpp: a fixed-order double sum of float terms, the same bits from the
// scalar loop and from every SIMD width. Used for the parameter gradients of the learnable
// quantizers (quant/learnable.hpp: LSQ's dscale / dzero_point; quant/pact.hpp: dalpha).
//
// Order: term k of a sum (k counting from 0) is added to double partial k mod 16 (partials
// start at +0, each float term converted exactly to double), then the 16 partials are added
// in order 0, 1, ..., 15 starting from +0. A NaN total becomes the default quiet NaN: which
// NaN's payload and sign an addition keeps depends on operand order, which compilers treat
// as free for commutative adds. An added +0 term never changes a partial (a partial can never
// be -0: it starts at +0, and +0 + -0 = +0), so a SIMD loop may add +0 for lanes that
// contribute nothing.
//
// lane_registers<A> keeps the 16 partials in registers during a SIMD loop over whole blocks of
// 16 terms (AVX2 + FMA3: four ymm of 4 doubles; AVX-512: two zmm of 8): add(r, v) widens the
// 16 / L float lanes of register r of a block to double and adds them lane for lane, the same
// additions as `partials.v[8r + j] += double(v[j])`.
#ifndef LOWBIT_QUANT_LANE_SUMS_HPP
#define LOWBIT_QUANT_LANE_SUMS_HPP

#include <cstddef>
#include <limits>
#include <type_traits>

#include "../config.hpp"
#include "../kernels/arch.hpp"

namespace lowbit {
namespace detail {

constexpr std::size_t sum_lanes = 16;

/// The 16 double partials of one sum.
struct lane_partials {
    double v[sum_lanes] = {};
    /// Term k of the sum, lane = k mod 16.
    void add(std::size_t lane, float term) noexcept { v[lane] += static_cast<double>(term); }
    double total() const noexcept {
        double t = 0.0;
        for (std::size_t j = 0; j < sum_lanes; ++j) t += v[j];
        return t != t ? std::numeric_limits<double>::quiet_NaN() : t;
    }
};

#if LOWBIT_HAS_XSIMD
template <class A, class = void>
struct lane_registers;

#if defined(__AVX512F__)
template <class A>
struct lane_registers<A, std::enable_if_t<std::is_base_of<xsimd::avx512f, A>::value>> {
    __m512d lo, hi;  // lanes 0-7, 8-15
    explicit lane_registers(const lane_partials& p) noexcept : lo(_mm512_loadu_pd(p.v)), hi(_mm512_loadu_pd(p.v + 8)) {}
    // register r (always 0: one register is the 16 lanes)
    LOWBIT_FORCE_INLINE void add(std::size_t, __m512 t) noexcept {
        lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(t)));
        hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(t), 1))));
    }
    void store(lane_partials& p) const noexcept {
        _mm512_storeu_pd(p.v, lo);
        _mm512_storeu_pd(p.v + 8, hi);
    }
};
#endif

#if defined(__AVX2__)
template <class A>
struct lane_registers<A, std::enable_if_t<!std::is_base_of<xsimd::avx512f, A>::value &&
                                          std::is_base_of<xsimd::avx2, A>::value>> {
    __m256d q[4];  // lanes 0-3, 4-7, 8-11, 12-15
    explicit lane_registers(const lane_partials& p) noexcept {
        for (std::size_t k = 0; k < 4; ++k) q[k] = _mm256_loadu_pd(p.v + 4 * k);
    }
    // register r holds lanes 8r .. 8r + 7
    LOWBIT_FORCE_INLINE void add(std::size_t r, __m256 t) noexcept {
        q[2 * r] = _mm256_add_pd(q[2 * r], _mm256_cvtps_pd(_mm256_castps256_ps128(t)));
        q[2 * r + 1] = _mm256_add_pd(q[2 * r + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(t, 1)));
    }
    void store(lane_partials& p) const noexcept {
        for (std::size_t k = 0; k < 4; ++k) _mm256_storeu_pd(p.v + 4 * k, q[k]);
    }
};
#endif

/// Archs with lane_registers (AVX2 and wider).
template <class A>
constexpr bool has_lane_registers() noexcept {
    return std::is_base_of<xsimd::avx2, A>::value || std::is_base_of<xsimd::avx512f, A>::value;
}
#endif

}  // namespace detail
}  // namespace lowbit

#endif  // LOWBIT_QUANT_LANE_SUMS_HPP
