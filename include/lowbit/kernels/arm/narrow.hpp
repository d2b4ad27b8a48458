// lowbit/kernels/arm/narrow.hpp: int32 -> 8-bit narrowing, nibble packing, compare-mask
// narrowing and the nibble range test on AArch64 NEON (xsimd::neon64): the neon64 overloads
// of x86/narrow.hpp's helpers, with the same contracts.
//
// narrow4<Signed>: four int32x4 registers -> 16 bytes in order, saturating like x86's packs:
//   SQXTN to int16, then SQXTN (signed, to [-128, 127]) or SQXTUN (unsigned, to [0, 255]).
// pack_nibbles_block: 32 bytes -> 16 packed bytes, element 2i in the low nibble: LD2
//   de-interleaves the even and odd elements, SLI #4 puts the odd one's low nibble above the
//   even one's (whose low nibble it keeps): (odd << 4) | (even & 0xF), as x86's masks give.
// narrow_mask4: four float compare results (all-ones / all-zero lanes) -> 16 bytes 1 / 0.
// nibble_range_violation<Signed>: any of 32 bytes outside [-8, 7] (signed, tested as
//   (v + 8) mod 256 > 15) or [0, 15] (unsigned): a bit of 0xF0 set, found by UMAXV.
#ifndef LOWBIT_KERNELS_ARM_NARROW_HPP
#define LOWBIT_KERNELS_ARM_NARROW_HPP

#include <cstdint>

#include "../arch.hpp"

#if LOWBIT_KERNELS_NEON64  // AArch64 only: compiles away elsewhere
#include <arm_neon.h>

namespace lowbit {
namespace kernels {
namespace detail {

// 4 x 4 int32 -> 16 bytes (saturating).
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void narrow4(xsimd::batch<std::int32_t, A> a, xsimd::batch<std::int32_t, A> b,
                                 xsimd::batch<std::int32_t, A> c, xsimd::batch<std::int32_t, A> d, std::uint8_t* out,
                                 xsimd::neon64) noexcept {
    const int16x8_t ab = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
    const int16x8_t cd = vcombine_s16(vqmovn_s32(c), vqmovn_s32(d));
    if constexpr (Signed)
        vst1q_u8(out, vreinterpretq_u8_s8(vcombine_s8(vqmovn_s16(ab), vqmovn_s16(cd))));
    else
        vst1q_u8(out, vcombine_u8(vqmovun_s16(ab), vqmovun_s16(cd)));
}

// 32 bytes (16 pairs) -> 16 packed bytes.
template <class A>
LOWBIT_FORCE_INLINE void pack_nibbles_block(const std::uint8_t* in, std::uint8_t* out, xsimd::neon64) noexcept {
    const uint8x16x2_t v = vld2q_u8(in);  // val[0]: elements 2i, val[1]: elements 2i + 1
    vst1q_u8(out, vsliq_n_u8(v.val[0], v.val[1], 4));
}

// 4 x 4 compare results -> 16 bytes of 1 / 0 (all-ones lanes narrow to 0xFF bytes, then & 1).
template <class A>
LOWBIT_FORCE_INLINE void narrow_mask4(xsimd::batch_bool<float, A> a, xsimd::batch_bool<float, A> b,
                                      xsimd::batch_bool<float, A> c, xsimd::batch_bool<float, A> d,
                                      std::uint8_t* out, xsimd::neon64) noexcept {
    const uint16x8_t ab = vcombine_u16(vmovn_u32(a), vmovn_u32(b));
    const uint16x8_t cd = vcombine_u16(vmovn_u32(c), vmovn_u32(d));
    vst1q_u8(out, vandq_u8(vcombine_u8(vmovn_u16(ab), vmovn_u16(cd)), vdupq_n_u8(1)));
}

// Any of 32 bytes outside the nibble range?
template <bool Signed, class A>
LOWBIT_FORCE_INLINE bool nibble_range_violation(const std::uint8_t* in, xsimd::neon64) noexcept {
    uint8x16_t v0 = vld1q_u8(in);
    uint8x16_t v1 = vld1q_u8(in + 16);
    if constexpr (Signed) {
        v0 = vaddq_u8(v0, vdupq_n_u8(8));
        v1 = vaddq_u8(v1, vdupq_n_u8(8));
    }
    return vmaxvq_u8(vandq_u8(vorrq_u8(v0, v1), vdupq_n_u8(0xF0))) != 0;
}

}  // namespace detail
}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_NEON64
#endif  // LOWBIT_KERNELS_ARM_NARROW_HPP
