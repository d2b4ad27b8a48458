// lowbit/kernels/x86/gemm_common.hpp: what the x86 GEMM micro-kernels (gemm_vnni.hpp,
// gemm_avx2.hpp, gemm_amx.hpp) share: the packed-weights layout constants, whether this
// compiler can build them, and the small scalar copies of A they make.
//
// The kernels are compiled with GCC / Clang `target` attributes, not with the translation
// unit's -m flags, so every translation unit has every x86 path and kernels::gemm picks one at
// run time from the CPU (cpu.hpp). Each kernel is a template on the caller's architecture tag
// (`Tag`, kernels::default_arch of the including file): copies compiled in translation units
// with different flags are different functions, so the linker never hands a baseline caller
// a copy built with wider instructions (see dispatch.hpp).
//
// The raw-dot contract every micro-kernel implements (kernels/gemm.hpp applies the zero-point
// compensation and the output on top):
//   <isa>_dot_block(a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc, ...):
//   acc[i * ld_acc + j] = sum_{kk < k} A[i][kk] * B[kk][16 * p0 + j]  modulo 2^32 (wrapping),
//   for i < m_count, j < 16 * p_count, A[i][kk] = a[i * lda + kk] (u8 or s8), B read from the
//   packed panels p0 .. p0 + p_count - 1 starting at panel0 (layout below; the K padding of B
//   is zero). Nothing outside those acc entries is written; A is read only at
//   a[i * lda + kk], i < m_count, kk < k.
//
// Packed panel layout (kernels/gemm.hpp, pack_weights): panel p holds columns 16p .. 16p + 15
// as kp * 16 bytes (kp = K rounded up to 64), 64-byte aligned; its k-quad q (k = 4q .. 4q + 3)
// is 64 bytes at offset 64 q, byte 4c + j = B[4q + j][16p + c]: the operand of vpdpbusd on a
// zmm over 16 columns and of an AMX B tile row.
#ifndef LOWBIT_KERNELS_X86_GEMM_COMMON_HPP
#define LOWBIT_KERNELS_X86_GEMM_COMMON_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../../config.hpp"

/// 1 when this compiler builds lowbit's x86 GEMM kernels (GCC / Clang on x86-64).
#ifndef LOWBIT_KERNELS_GEMM_X86
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define LOWBIT_KERNELS_GEMM_X86 1
#else
#define LOWBIT_KERNELS_GEMM_X86 0
#endif
#endif

#if LOWBIT_KERNELS_GEMM_X86
#include <immintrin.h>
#endif

namespace lowbit {
namespace kernels {
namespace x86 {

constexpr std::size_t gemm_panel_cols = 16;  ///< columns of one packed panel
constexpr std::size_t gemm_k_align = 64;     ///< kp = K rounded up to this
constexpr std::size_t gemm_quad_bytes = 64;  ///< one k-quad of a panel: 4 k x 16 columns

/// Copies rows x kn bytes of A (row stride lda) into dst (row stride ld_dst) as u8: s8 values
/// are shifted by +128 (top bit flipped, the u8 x s8 trick of core/gemm.hpp); columns kn ..
/// width - 1 are zero. No intrinsics: callable from any target.
template <class Tag, class TA>
inline void gemm_copy_a_u8(const TA* a, std::size_t lda, std::size_t rows, std::size_t kn, std::size_t width,
                           std::uint8_t* dst, std::size_t ld_dst) noexcept {
    constexpr std::uint8_t flip = std::is_signed<TA>::value ? 0x80 : 0x00;
    constexpr std::uint64_t flip8 = std::is_signed<TA>::value ? 0x8080808080808080u : 0u;
    for (std::size_t r = 0; r < rows; ++r) {
        const TA* s = a + r * lda;
        std::uint8_t* d = dst + r * ld_dst;
        std::size_t j = 0;
        for (; j + 8 <= kn; j += 8) {  // 8 bytes at a time (memcpy: no aliasing or alignment assumption)
            std::uint64_t v;
            std::memcpy(&v, s + j, 8);
            v ^= flip8;
            std::memcpy(d + j, &v, 8);
        }
        for (; j < kn; ++j) d[j] = static_cast<std::uint8_t>(static_cast<std::uint8_t>(s[j]) ^ flip);
        for (; j < width; ++j) d[j] = 0;
    }
}

/// Copies rows x kn values of A into dst as int16 (u8 zero-extended, s8 sign-extended);
/// columns kn .. width - 1 are zero.
template <class Tag, class TA>
inline void gemm_copy_a_s16(const TA* a, std::size_t lda, std::size_t rows, std::size_t kn, std::size_t width,
                            std::int16_t* dst, std::size_t ld_dst) noexcept {
    for (std::size_t r = 0; r < rows; ++r) {
        const TA* s = a + r * lda;
        std::int16_t* d = dst + r * ld_dst;
        for (std::size_t j = 0; j < kn; ++j) d[j] = static_cast<std::int16_t>(s[j]);
        for (std::size_t j = kn; j < width; ++j) d[j] = 0;
    }
}

/// Sets rows x cols int32 of acc (row stride ld_acc) to zero (the K = 0 result).
template <class Tag>
inline void gemm_zero_acc(std::int32_t* acc, std::size_t ld_acc, std::size_t rows, std::size_t cols) noexcept {
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < cols; ++j) acc[r * ld_acc + j] = 0;
}

}  // namespace x86
}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_X86_GEMM_COMMON_HPP
