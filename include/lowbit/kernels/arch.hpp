// lowbit/kernels/arch.hpp: which instruction set a kernel is compiled for.
//
// Kernels are templates on an architecture tag. With xsimd (8.1) available, the tags are
// xsimd's (xsimd::sse2, sse4_1, avx2, avx512bw, ...) and `default_arch` is the best one the
// including translation unit is compiled for (-mavx2, -march=native, ...). Without xsimd, or
// with LOWBIT_NO_XSIMD, the only tag is `scalar_arch`, whose kernels are the lowbit::ref loops.
//
// lowbit's SIMD code covers three x86 families: SSE2..SSE4.2 (128-bit), AVX2 (256-bit) and
// AVX-512BW (512-bit), and AArch64's NEON (xsimd::neon64, 128-bit; Advanced SIMD is part of
// every ARMv8-A CPU, so it is the AArch64 baseline). `supported_arch<A>` maps any xsimd tag
// onto the nearest of them (AVX without AVX2 -> SSE4.2, AVX-512F without BW -> AVX2,
// neon64 -> itself) or onto scalar_arch (32-bit ARM's xsimd::neon among others).
//
// LOWBIT_KERNELS_X86 / LOWBIT_KERNELS_NEON64 (0 or 1) say which ISA-specific helpers
// (kernels/x86/, kernels/arm/) this translation unit compiles.
#ifndef LOWBIT_KERNELS_ARCH_HPP
#define LOWBIT_KERNELS_ARCH_HPP

#include <type_traits>

#include "../config.hpp"

#ifndef LOWBIT_HAS_XSIMD
#if defined(LOWBIT_NO_XSIMD)
#define LOWBIT_HAS_XSIMD 0
#elif defined(__has_include)
#if __has_include(<xsimd/xsimd.hpp>) && \
    (defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(__aarch64__))
#define LOWBIT_HAS_XSIMD 1
#else
#define LOWBIT_HAS_XSIMD 0
#endif
#else
#define LOWBIT_HAS_XSIMD 0
#endif
#endif

#if LOWBIT_HAS_XSIMD
#include <xsimd/xsimd.hpp>
#endif

#if LOWBIT_HAS_XSIMD && (defined(__x86_64__) || defined(__i386__) || defined(_M_X64))
#define LOWBIT_KERNELS_X86 1
#else
#define LOWBIT_KERNELS_X86 0
#endif
#if LOWBIT_HAS_XSIMD && defined(__aarch64__)
#define LOWBIT_KERNELS_NEON64 1
#else
#define LOWBIT_KERNELS_NEON64 0
#endif

namespace lowbit {
namespace kernels {

/// The portable path: element-by-element lowbit::ref code.
struct scalar_arch {
    static constexpr const char* name() noexcept { return "scalar"; }
};

namespace detail {
template <class A, class = void>
struct supported_arch_impl {
    using type = scalar_arch;
};
#if LOWBIT_KERNELS_X86
template <class A>
struct supported_arch_impl<A, std::enable_if_t<std::is_base_of<xsimd::sse2, A>::value>> {
    using type = A;
};
template <class A>
struct supported_arch_impl<A, std::enable_if_t<std::is_base_of<xsimd::avx, A>::value>> {
    using type = std::conditional_t<std::is_base_of<xsimd::avx2, A>::value, A, xsimd::sse4_2>;
};
template <class A>
struct supported_arch_impl<A, std::enable_if_t<std::is_base_of<xsimd::avx512f, A>::value>> {
    using type = std::conditional_t<std::is_base_of<xsimd::avx512bw, A>::value, A, xsimd::fma3<xsimd::avx2>>;
};
#endif
#if LOWBIT_KERNELS_NEON64
template <class A>
struct supported_arch_impl<A, std::enable_if_t<std::is_base_of<xsimd::neon64, A>::value>> {
    using type = xsimd::neon64;
};
#endif
}  // namespace detail

/// The architecture lowbit's kernels use for tag A (see the file comment).
template <class A>
using supported_arch = typename detail::supported_arch_impl<A>::type;

#if LOWBIT_HAS_XSIMD
/// Best architecture of the including translation unit (compile-time dispatch).
using default_arch = supported_arch<xsimd::default_arch>;
#else
using default_arch = scalar_arch;
#endif

/// Lanes of float32 in one register of arch A (1 for scalar_arch).
template <class A>
constexpr std::size_t float_lanes() noexcept {
#if LOWBIT_HAS_XSIMD
    if constexpr (!std::is_same<A, scalar_arch>::value) return xsimd::batch<float, A>::size;
#endif
    return 1;
}

}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_ARCH_HPP
