// tests/gemm/int4_test_util.hpp: the int4 weight and q8 activation buffers shared by the spec
// tests (test_ref_int4.cpp, gemm_ref_tests) and the kernel tests (test_kernels_int4.cpp,
// gemm_kernel_tests). Only core/gemm_int4.hpp is needed, so the portable spec binary can include
// it. Random weights draw from std::mt19937 through <random>'s distributions: the numbers may
// differ between standard libraries, which is fine where every result is compared against the
// spec computed from the same numbers.
#ifndef LOWBIT_TESTS_GEMM_INT4_TEST_UTIL_HPP
#define LOWBIT_TESTS_GEMM_INT4_TEST_UTIL_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <lowbit/core/gemm_int4.hpp>

namespace int4_test {

/// The bits of a float (compare results bitwise: -0.0 != +0.0).
inline std::uint32_t bits_of(float f) {
    std::uint32_t u = 0;
    std::memcpy(&u, &f, 4);
    return u;
}

/// Owns the buffers of int4 weights; view() gives the spec's int4_weights, buffer() the
/// writable int4_weights_buffer over the same storage. Scales are f32 (scales) or, with f16,
/// binary16 (scales_f16); zps only for u4.
struct weights_store {
    lowbit::format_id format = lowbit::format_id::s4;
    std::size_t n = 0, k = 0, g = 32;
    bool f16 = false;
    std::vector<std::uint8_t> data;
    std::vector<float> scales;
    std::vector<std::uint16_t> scales_f16;
    std::vector<std::uint8_t> zps;

    lowbit::int4_weights view() const { return describe<lowbit::int4_weights>(*this); }
    lowbit::int4_weights_buffer buffer() { return describe<lowbit::int4_weights_buffer>(*this); }

private:
    template <class W, class Self>
    static W describe(Self& s) {
        W w;
        w.format = s.format;
        w.n = s.n;
        w.k = s.k;
        w.group_size = s.g;
        w.data = s.data;
        if (s.f16)
            w.scales_f16 = s.scales_f16;
        else
            w.scales = s.scales;
        w.zero_points = s.zps;
        return w;
    }
};

/// Sized (zeroed) storage for n x k weights in groups of g (k / g groups a row).
inline weights_store sized(lowbit::format_id fmt, std::size_t n, std::size_t k, std::size_t g, bool f16) {
    weights_store s;
    s.format = fmt;
    s.n = n;
    s.k = k;
    s.g = g;
    s.f16 = f16;
    s.data.assign(n * k / 2, 0);
    const std::size_t p = n * (k / g);
    if (f16)
        s.scales_f16.assign(p, 0);
    else
        s.scales.assign(p, 0.0f);
    if (fmt == lowbit::format_id::u4) s.zps.assign(p, 0);
    return s;
}

/// Random weights: every byte uniform in [0, 255], scales uniform in [-scale_bound,
/// scale_bound) (f16 ones rounded to binary16, so finite halves), zero points uniform nibbles;
/// drawn in that order.
inline weights_store random_weights(std::mt19937& rng, lowbit::format_id fmt, std::size_t n, std::size_t k,
                                    std::size_t g, bool f16, float scale_bound) {
    weights_store s = sized(fmt, n, k, g, f16);
    std::uniform_int_distribution<int> byte(0, 255), nib(0, 15);
    std::uniform_real_distribution<float> sc(-scale_bound, scale_bound);
    for (auto& b : s.data) b = static_cast<std::uint8_t>(byte(rng));
    for (auto& v : s.scales) v = sc(rng);
    for (auto& v : s.scales_f16) v = lowbit::f32_to_f16(sc(rng));
    for (auto& v : s.zps) v = static_cast<std::uint8_t>(nib(rng));
    return s;
}

/// Owns q8 activations of m x k (k a multiple of 32): buffer() for quantize_q8, view() for
/// the GEMMs.
struct q8_store {
    std::size_t m = 0, k = 0;
    std::vector<std::int8_t> q;
    std::vector<float> d;
    std::vector<std::int32_t> sums;
    q8_store(std::size_t m_, std::size_t k_) : m(m_), k(k_), q(m_ * k_), d(m_ * k_ / 32), sums(m_ * k_ / 32) {}
    lowbit::q8_activations_buffer buffer() { return {m, k, q, d, sums}; }
    lowbit::q8_activations view() const { return {m, k, q, d, sums}; }
};

}  // namespace int4_test

#endif  // LOWBIT_TESTS_GEMM_INT4_TEST_UTIL_HPP
