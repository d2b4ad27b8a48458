// tests/kernels/isa.hpp: the instruction sets the kernel tests cover, chosen at run time.
// AArch64: scalar and NEON (xsimd::neon64) only. x86-64:
// SSE2 is the x86-64 baseline this file is compiled for; SSE4.1, AVX2 (+FMA) and AVX-512BW
// are compiled by lowbit_add_runtime_dispatch (the CMake function users call) with their flags
// and declared by its generated header, so one test binary exercises every ISA the machine
// can run. A test for an ISA the CPU
// lacks reports itself skipped.
#ifndef LOWBIT_TESTS_KERNELS_ISA_HPP
#define LOWBIT_TESTS_KERNELS_ISA_HPP

#include <cstddef>
#include <vector>

#include <lowbit/kernels/dispatch.hpp>

#if LOWBIT_KERNELS_NEON64
// AArch64: NEON is the baseline this file is compiled for; no ISA files.
#define LOWBIT_TEST_ARCHS lowbit::kernels::scalar_arch, xsimd::neon64
#else
#include "lowbit_runtime_isas.hpp"  // generated: LOWBIT_KERNELS_EXTERN for each ISA

// For TEMPLATE_TEST_CASE: every ISA under test, and the scalar path.
// LOWBIT_TEST_FEW_ISAS (CMake LOWBIT_TEST_ALL_ISAS=OFF, the sanitizer build): SSE2 only.
#if defined(LOWBIT_TEST_FEW_ISAS)
#define LOWBIT_TEST_ARCHS lowbit::kernels::scalar_arch, xsimd::sse2
#else
#define LOWBIT_TEST_ARCHS \
    lowbit::kernels::scalar_arch, xsimd::sse2, xsimd::sse4_1, xsimd::fma3<xsimd::avx2>, xsimd::avx512bw
#endif
#endif

// True under AddressSanitizer (the asan preset): the slowest exhaustive loops test fewer
// values there (memory errors do not depend on them; exactness is the normal build's job).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized_build = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool sanitized_build = true;
#else
constexpr bool sanitized_build = false;
#endif
#else
constexpr bool sanitized_build = false;
#endif

// Returns from the test (with a warning) when the CPU cannot run TestType.
#define LOWBIT_REQUIRE_ARCH(A)                                                       \
    do {                                                                             \
        if (!lowbit::kernels::available<A>()) {                                      \
            WARN("skipped: this CPU cannot run " << A::name());                     \
            return;                                                                  \
        }                                                                            \
    } while (0)

/// Sizes that hit every tail of every ISA: 0, 1, lanes - 1, lanes, lanes + 1,
/// 2 * lanes + 3 for lanes 4..64 (blocks are 4 registers), odd sizes, 1023, 4096 + 7.
inline const std::vector<std::size_t>& tail_sizes() {
    static const std::vector<std::size_t> sizes = {0,  1,  2,  3,  4,  5,  7,   8,   9,   11,  15,  16,   17,  19,
                                                   31, 32, 33, 35, 63, 64, 65,  67,  127, 128, 129, 131,  255, 256,
                                                   257, 259, 1023, 4103};
    return sizes;
}

#endif  // LOWBIT_TESTS_KERNELS_ISA_HPP
