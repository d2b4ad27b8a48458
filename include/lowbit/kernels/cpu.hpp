// lowbit/kernels/cpu.hpp: what this CPU and OS can run, detected once.
//
// xsimd 8.1's own detection reads CPUID only; an instruction set is usable only when the OS
// also saves its registers (XCR0: SSE/AVX state for AVX, opmask + ZMM state for AVX-512, tile
// state for AMX). This checks both, once, and is what runtime dispatch and the tests use.
// On AArch64: Advanced SIMD (NEON) is part of the base architecture; the ARMv8.2 dot-product
// instructions (SDOT / UDOT) are read from the kernel's hardware capabilities on Linux
// (getauxval(AT_HWCAP) & HWCAP_ASIMDDP), elsewhere from the compiler's target
// (__ARM_FEATURE_DOTPROD).
#ifndef LOWBIT_KERNELS_CPU_HPP
#define LOWBIT_KERNELS_CPU_HPP

#include <cstdint>

#include "../config.hpp"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define LOWBIT_DETAIL_X86_CPUID 1
#else
#define LOWBIT_DETAIL_X86_CPUID 0
#endif

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace lowbit {
namespace kernels {

/// Instruction sets usable by this process (CPU support and OS register state).
struct cpu_features {
    bool sse2 = false, sse4_1 = false, sse4_2 = false;
    bool avx = false, avx2 = false, fma = false;
    bool avx512f = false, avx512bw = false, avx512dq = false, avx512cd = false, avx512vl = false;
    bool avx512vnni = false, avx_vnni = false, amx_int8 = false;
    bool neon = false;     ///< AArch64 Advanced SIMD (always there on AArch64)
    bool dotprod = false;  ///< AArch64 ARMv8.2 SDOT / UDOT (FEAT_DotProd)
};

namespace detail {
inline cpu_features detect_cpu_features() noexcept {
    cpu_features f;
#if LOWBIT_DETAIL_X86_CPUID
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid_max(0, nullptr) < 1) return f;
    __cpuid_count(1, 0, a, b, c, d);
    f.sse2 = (d >> 26) & 1u;
    f.sse4_1 = (c >> 19) & 1u;
    f.sse4_2 = (c >> 20) & 1u;
    const bool osxsave = (c >> 27) & 1u;
    const bool cpu_avx = (c >> 28) & 1u;
    const bool cpu_fma = (c >> 12) & 1u;
    std::uint64_t xcr0 = 0;
    if (osxsave) {
        unsigned lo = 0, hi = 0;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = (std::uint64_t(hi) << 32) | lo;
    }
    const bool os_avx = (xcr0 & 0x6) == 0x6;        // XMM and YMM state
    const bool os_avx512 = (xcr0 & 0xE6) == 0xE6;   // + opmask, ZMM_Hi256, Hi16_ZMM
    const bool os_amx = (xcr0 & 0x60000) == 0x60000;  // XTILECFG, XTILEDATA
    f.avx = cpu_avx && os_avx;
    f.fma = cpu_fma && os_avx;
    if (__get_cpuid_max(0, nullptr) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        f.avx2 = f.avx && ((b >> 5) & 1u);
        f.avx512f = os_avx512 && ((b >> 16) & 1u);
        f.avx512dq = f.avx512f && ((b >> 17) & 1u);
        f.avx512cd = f.avx512f && ((b >> 28) & 1u);
        f.avx512bw = f.avx512f && ((b >> 30) & 1u);
        f.avx512vl = f.avx512f && ((b >> 31) & 1u);
        f.avx512vnni = f.avx512f && ((c >> 11) & 1u);
        f.amx_int8 = os_amx && ((d >> 25) & 1u);
        __cpuid_count(7, 1, a, b, c, d);
        f.avx_vnni = f.avx2 && ((a >> 4) & 1u);
    }
#endif
#if defined(__aarch64__)
    f.neon = true;
#if defined(__linux__)
#if defined(HWCAP_ASIMDDP)
    constexpr unsigned long hwcap_asimddp = HWCAP_ASIMDDP;
#else
    constexpr unsigned long hwcap_asimddp = 1ul << 20;  // HWCAP_ASIMDDP of <asm/hwcap.h>
#endif
    f.dotprod = (getauxval(AT_HWCAP) & hwcap_asimddp) != 0;
#elif defined(__ARM_FEATURE_DOTPROD)
    f.dotprod = true;
#endif
#endif
    return f;
}
}  // namespace detail

/// This process's features, detected on first call (thread-safe static initialisation).
inline const cpu_features& cpu() noexcept {
    static const cpu_features features = detail::detect_cpu_features();
    return features;
}

}  // namespace kernels
}  // namespace lowbit

#undef LOWBIT_DETAIL_X86_CPUID
#endif  // LOWBIT_KERNELS_CPU_HPP
