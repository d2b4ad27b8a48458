// lowbit/config.hpp: version, feature detection and the error policy switch.
// Everything in lowbit includes this first; it includes nothing.
#ifndef LOWBIT_CONFIG_HPP
#define LOWBIT_CONFIG_HPP

#define LOWBIT_VERSION_MAJOR 0
#define LOWBIT_VERSION_MINOR 1
#define LOWBIT_VERSION_PATCH 0
#define LOWBIT_VERSION (LOWBIT_VERSION_MAJOR * 10000 + LOWBIT_VERSION_MINOR * 100 + LOWBIT_VERSION_PATCH)

// Error policy. With exceptions, invalid arguments throw lowbit::error. With
// LOWBIT_NO_EXCEPTIONS (defined automatically when the compiler has exceptions off,
// e.g. -fno-exceptions), the same checks make the function return a non-ok status.
#ifndef LOWBIT_NO_EXCEPTIONS
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define LOWBIT_NO_EXCEPTIONS 0
#else
#define LOWBIT_NO_EXCEPTIONS 1
#endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#define LOWBIT_FORCE_INLINE inline __attribute__((always_inline))
#else
#define LOWBIT_FORCE_INLINE inline
#endif

// a * b + c for float, rounded once, without <cmath> (the core is freestanding): GCC and
// Clang's builtin is one fused instruction where the target has one (x86 FMA3, Cortex-M4F
// VFMA, AArch64) and a correctly rounded libgcc / libm call elsewhere.
#if defined(__GNUC__) || defined(__clang__)
#define LOWBIT_FMAF(a, b, c) __builtin_fmaf((a), (b), (c))
#else
#define LOWBIT_FMAF(a, b, c) ::fmaf((a), (b), (c))  // needs <math.h> before lowbit
#endif

#endif  // LOWBIT_CONFIG_HPP
