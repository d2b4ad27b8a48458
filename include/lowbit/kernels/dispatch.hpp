// lowbit/kernels/dispatch.hpp: one binary for many x86 CPUs (opt-in runtime dispatch).
// (On AArch64 there is one ISA, neon64, the baseline: available<xsimd::neon64>() is true.)
//
// By default every kernel is compiled for the including file's ISA (kernels::default_arch).
// To ship one binary that uses AVX-512 where it exists and SSE elsewhere:
//
//   1. one source file per extra ISA, compiled with that ISA's flags, holding only
//        #include <lowbit/kernels/dispatch.hpp>
//        LOWBIT_KERNELS_INSTANTIATE(xsimd::fma3<xsimd::avx2>)      // -mavx2 -mfma
//      (xsimd::avx512bw: -mavx512f -mavx512cd -mavx512dq -mavx512bw -mavx512vl;
//       xsimd::sse4_1: -msse4.1). The CMake function lowbit_add_runtime_dispatch does this.
//   2. in the baseline code that calls the kernels, once per ISA:
//        LOWBIT_KERNELS_EXTERN(xsimd::fma3<xsimd::avx2>)
//      and call through dispatch, which checks the CPU and the OS state once (cpu.hpp):
//        lowbit::kernels::dispatch<xsimd::avx512bw, xsimd::fma3<xsimd::avx2>, xsimd::sse2>(
//            [&](auto arch) { return lowbit::kernels::quantize<decltype(arch)>(s, qp, x, q); });
//
// Only the inner loops (templates on the ISA, calling nothing but ISA-templated code) live in
// the ISA files; argument checks run in the caller's baseline code. So no inline function
// is ever compiled with two different instruction sets (which would let the linker pick the
// AVX-512 copy for an SSE caller).
#ifndef LOWBIT_KERNELS_DISPATCH_HPP
#define LOWBIT_KERNELS_DISPATCH_HPP

#include <type_traits>
#include <utility>

#include "arch.hpp"
#include "cpu.hpp"
#include "fake_quantize.hpp"
#include "int4.hpp"
#include "per_channel.hpp"
#include "quantize.hpp"
#include "reduce.hpp"
#include "requantize.hpp"

namespace lowbit {
namespace kernels {

/// True if this process can run kernels compiled for architecture A.
template <class A>
inline bool available() noexcept {
    if constexpr (std::is_same<A, scalar_arch>::value) {
        return true;
    } else {
#if LOWBIT_KERNELS_NEON64
        // Advanced SIMD is mandatory in ARMv8-A: every AArch64 process runs neon64.
        if constexpr (std::is_base_of<xsimd::neon64, A>::value) return true;
#endif
#if LOWBIT_KERNELS_X86
        const cpu_features& f = cpu();
        if constexpr (std::is_base_of<xsimd::avx512bw, A>::value)
            return f.avx512f && f.avx512cd && f.avx512dq && f.avx512bw && f.avx512vl;
        else if constexpr (std::is_base_of<xsimd::avx512f, A>::value)
            return f.avx512f;
        else if constexpr (std::is_same<A, xsimd::fma3<xsimd::avx2>>::value)
            return f.avx2 && f.fma;
        else if constexpr (std::is_base_of<xsimd::avx2, A>::value)
            return f.avx2;
        else if constexpr (std::is_base_of<xsimd::avx, A>::value)
            return f.avx;
        else if constexpr (std::is_base_of<xsimd::sse4_2, A>::value)
            return f.sse4_2;
        else if constexpr (std::is_base_of<xsimd::sse4_1, A>::value)
            return f.sse4_1;
        else if constexpr (std::is_base_of<xsimd::sse2, A>::value)
            return f.sse2;
#endif
        return false;
    }
}

namespace detail {
template <class F>
decltype(auto) dispatch_in(F& f) {
    return f(scalar_arch{});
}
template <class A, class... Rest, class F>
decltype(auto) dispatch_in(F& f) {
    return available<A>() ? f(A{}) : dispatch_in<Rest...>(f);
}
}  // namespace detail

/// Calls f(Arch{}) for the first architecture of the list this process can run, else
/// f(scalar_arch{}). List the ISAs you built ISA files for, best first. f must return the
/// same type for every architecture.
template <class... Archs, class F>
decltype(auto) dispatch(F&& f) {
    return detail::dispatch_in<Archs...>(f);
}

}  // namespace kernels
}  // namespace lowbit

/// In an ISA file: compiles every kernel loop for architecture A (see the file comment).
#define LOWBIT_KERNELS_INSTANTIATE(A)       \
    namespace lowbit {                      \
    namespace kernels {                     \
    LOWBIT_DETAIL_QUANTIZE_LOOPS(, A)       \
    LOWBIT_DETAIL_FAKE_QUANTIZE_LOOPS(, A)  \
    LOWBIT_DETAIL_INT4_LOOPS(, A)           \
    LOWBIT_DETAIL_PER_CHANNEL_LOOPS(, A)    \
    LOWBIT_DETAIL_REQUANTIZE_LOOPS(, A)     \
    LOWBIT_DETAIL_REDUCE_LOOPS(, A)         \
    }                                       \
    }
/// In the calling code: declares that the loops for A are compiled in an ISA file.
#define LOWBIT_KERNELS_EXTERN(A)                 \
    namespace lowbit {                           \
    namespace kernels {                          \
    LOWBIT_DETAIL_QUANTIZE_LOOPS(extern, A)      \
    LOWBIT_DETAIL_FAKE_QUANTIZE_LOOPS(extern, A) \
    LOWBIT_DETAIL_INT4_LOOPS(extern, A)          \
    LOWBIT_DETAIL_PER_CHANNEL_LOOPS(extern, A)   \
    LOWBIT_DETAIL_REQUANTIZE_LOOPS(extern, A)    \
    LOWBIT_DETAIL_REDUCE_LOOPS(extern, A)        \
    }                                            \
    }

#endif  // LOWBIT_KERNELS_DISPATCH_HPP
