// checks.hpp (tests/firmware): a tiny check counter for the freestanding library checks that
// run on an emulated Cortex-M (lowbit_checks image, QEMU + semihosting) and on the host
// (firmware_checks, ctest example.firmware.checks). No heap, no exceptions, no printf.
#ifndef LOWBIT_TESTS_FIRMWARE_CHECKS_HPP
#define LOWBIT_TESTS_FIRMWARE_CHECKS_HPP

#include <cstddef>
#include <cstdint>

namespace fwcheck {

struct counter {
    std::uint32_t passed = 0;
    std::uint32_t failed = 0;
    void (*print)(const char*) = nullptr;  ///< prints the name of each failed check
};

inline void expect(counter& c, bool ok, const char* name) {
    if (ok) {
        ++c.passed;
        return;
    }
    ++c.failed;
    if (c.print != nullptr) {
        c.print("FAILED: ");
        c.print(name);
        c.print("\n");
    }
}

template <class T, class U>
bool equal(const T* a, const U* b, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        if (!(a[i] == static_cast<T>(b[i]))) return false;
    return true;
}

/// quantize, dequantize, fake-quantize, requantize (fixed-point and float), fixed point,
/// int4 packing, ref::gemm (int32, requantize, float requantize, dequantize), the int4 GEMM
/// references, choose_qparams, min_max and histogram: known answers.
void core_checks(counter& c);
/// Every observer: observe, qparams, save / load (and merge where cheap): known answers or
/// self-consistency.
void observer_checks(counter& c);

}  // namespace fwcheck

#endif  // LOWBIT_TESTS_FIRMWARE_CHECKS_HPP
