// lowbit/kernels/arm/requantize.hpp: the integer steps of requantization on AArch64 NEON
// (xsimd::neon64): the neon64 overloads of x86/requantize.hpp's helpers, same contracts.
//
// mulhi31(s, q, r): floor((s * q + r) / 2^31) per lane, int32 s, q in [0, 2^31), r in
//   [0, 2^30]: exact 64-bit products (SMLAL / SMLAL2 onto r widened), then SHRN #31 keeps
//   bits 31..62, the floor (the result fits int32). With r = 2^30 this is gemmlowp's
//   SaturatingRoundingDoublingHighMul for q >= 0 (x86/requantize.hpp). SQRDMULH would give
//   the same for r = 2^30 (floor((2sq + 2^31) / 2^32), saturating only for INT32_MIN^2,
//   impossible with q >= 0), but the per-lane table path mixes r = 2^30 and r = 0 lanes, so
//   one exact formula serves both.
// sll_lanes / sra_lanes / srl_lanes(x, count, unused): per-lane shifts by count in [0, 31];
//   SSHL / USHL shift right for negative counts, truncating (not SRSHL / URSHL, which would
//   round: the rounding terms are added explicitly by the caller).
// uniform_count(n): n in every lane; sll_uniform / sra_uniform / srl_uniform shift by it.
// abs_s32(x) (ABS, INT32_MIN stays INT32_MIN as x86's pabsd), apply_sign(u, h) = h < 0 ? -u : u.
// narrow4_clamp<Signed>(a, b, c, d, zp, lo, hi, out): out = clamp(r + zp, lo, hi) as bytes via
//   int16 exactly as x86: SQXTN saturates r to int16, SQADD adds zp saturating, SMAX / SMIN
//   clamp, SQXTN / SQXTUN narrow (exact for lo, hi, zp in [-128, 255]).
#ifndef LOWBIT_KERNELS_ARM_REQUANTIZE_HPP
#define LOWBIT_KERNELS_ARM_REQUANTIZE_HPP

#include <cstdint>

#include "../arch.hpp"

#if LOWBIT_KERNELS_NEON64  // AArch64 only: compiles away elsewhere
#include <arm_neon.h>

namespace lowbit {
namespace kernels {
namespace detail {

template <class A>
LOWBIT_FORCE_INLINE int32x4_t mulhi31(int32x4_t s, int32x4_t q, int32x4_t r, xsimd::neon64) noexcept {
    const int64x2_t lo = vmlal_s32(vmovl_s32(vget_low_s32(r)), vget_low_s32(s), vget_low_s32(q));
    const int64x2_t hi = vmlal_high_s32(vmovl_high_s32(r), s, q);
    return vcombine_s32(vshrn_n_s64(lo, 31), vshrn_n_s64(hi, 31));
}

template <class A>
LOWBIT_FORCE_INLINE int32x4_t sll_lanes(int32x4_t x, int32x4_t n, int32x4_t, xsimd::neon64) noexcept {
    return vshlq_s32(x, n);
}
template <class A>
LOWBIT_FORCE_INLINE int32x4_t sra_lanes(int32x4_t x, int32x4_t n, int32x4_t, xsimd::neon64) noexcept {
    return vshlq_s32(x, vnegq_s32(n));
}
template <class A>
LOWBIT_FORCE_INLINE int32x4_t srl_lanes(int32x4_t x, int32x4_t n, int32x4_t, xsimd::neon64) noexcept {
    return vreinterpretq_s32_u32(vshlq_u32(vreinterpretq_u32_s32(x), vnegq_s32(n)));
}

template <class A>
LOWBIT_FORCE_INLINE int32x4_t uniform_count(int n, xsimd::neon64) noexcept {
    return vdupq_n_s32(n);
}
template <class A>
LOWBIT_FORCE_INLINE int32x4_t sll_uniform(int32x4_t x, int32x4_t n, xsimd::neon64) noexcept {
    return vshlq_s32(x, n);
}
template <class A>
LOWBIT_FORCE_INLINE int32x4_t sra_uniform(int32x4_t x, int32x4_t n, xsimd::neon64) noexcept {
    return vshlq_s32(x, vnegq_s32(n));
}
template <class A>
LOWBIT_FORCE_INLINE int32x4_t srl_uniform(int32x4_t x, int32x4_t n, xsimd::neon64) noexcept {
    return vreinterpretq_s32_u32(vshlq_u32(vreinterpretq_u32_s32(x), vnegq_s32(n)));
}

template <class A>
LOWBIT_FORCE_INLINE int32x4_t abs_s32(int32x4_t x, xsimd::neon64) noexcept {
    return vabsq_s32(x);
}
template <class A>
LOWBIT_FORCE_INLINE int32x4_t apply_sign(int32x4_t u, int32x4_t h, xsimd::neon64) noexcept {
    const int32x4_t s = vshrq_n_s32(h, 31);
    return vsubq_s32(veorq_s32(u, s), s);
}

template <bool Signed, class A>
LOWBIT_FORCE_INLINE void narrow4_clamp(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d, std::int16_t zp,
                                       std::int16_t lo, std::int16_t hi, std::uint8_t* out, xsimd::neon64) noexcept {
    const int16x8_t vzp = vdupq_n_s16(zp), vlo = vdupq_n_s16(lo), vhi = vdupq_n_s16(hi);
    const int16x8_t ab =
        vminq_s16(vmaxq_s16(vqaddq_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b)), vzp), vlo), vhi);
    const int16x8_t cd =
        vminq_s16(vmaxq_s16(vqaddq_s16(vcombine_s16(vqmovn_s32(c), vqmovn_s32(d)), vzp), vlo), vhi);
    if constexpr (Signed)
        vst1q_u8(out, vreinterpretq_u8_s8(vcombine_s8(vqmovn_s16(ab), vqmovn_s16(cd))));
    else
        vst1q_u8(out, vcombine_u8(vqmovun_s16(ab), vqmovun_s16(cd)));
}

}  // namespace detail
}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_NEON64
#endif  // LOWBIT_KERNELS_ARM_REQUANTIZE_HPP
