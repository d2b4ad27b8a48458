// tests/kernels/inputs.hpp: inputs that stress a quantizer with scale s: exact rounding
// midpoints (k + 1/2) * s and their float neighbours, values far outside the range,
// denormals, +-0, NaN, +-Inf, and ordinary noise. Deterministic for a given seed.
#ifndef LOWBIT_TESTS_KERNELS_INPUTS_HPP
#define LOWBIT_TESTS_KERNELS_INPUTS_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace lowbit_test {

inline std::vector<float> hard_inputs(std::size_t n, float scale, std::uint32_t seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> noise(0.0f, 60.0f * scale);
    std::uniform_int_distribution<int> k(-140, 140);
    const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), 0.0f, -0.0f,
                              std::numeric_limits<float>::denorm_min(), -1e-40f, 1e30f, -1e30f, 3e38f};
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i) {
        switch (gen() % 8) {
            case 0: x[i] = specials[gen() % (sizeof specials / sizeof specials[0])]; break;
            case 1:
            case 2: x[i] = (static_cast<float>(k(gen)) + 0.5f) * scale; break;  // midpoints
            case 3: x[i] = std::nextafter((static_cast<float>(k(gen)) + 0.5f) * scale, 1e9f); break;
            case 4: x[i] = std::nextafter((static_cast<float>(k(gen)) + 0.5f) * scale, -1e9f); break;
            default: x[i] = noise(gen); break;
        }
    }
    return x;
}

/// Bitwise equality of two buffers, reporting the first differing index (or -1).
template <class T>
long first_difference(const T* a, const T* b, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        if (std::memcmp(a + i, b + i, sizeof(T)) != 0) return static_cast<long>(i);
    return -1;
}

}  // namespace lowbit_test

#endif  // LOWBIT_TESTS_KERNELS_INPUTS_HPP
