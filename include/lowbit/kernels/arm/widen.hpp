// lowbit/kernels/arm/widen.hpp: 8-bit -> int32 widening and nibble unpacking on AArch64
// NEON (xsimd::neon64), the inverse steps of arm/narrow.hpp; the neon64 overloads of
// x86/widen.hpp's helpers, with the same contracts.
//
// widen4:         16 bytes (s8 sign-extended, u8 zero-extended) -> four int32x4 registers in
//                 element order (SXTL / UXTL twice).
// widen4_nibbles: 8 packed bytes (16 nibbles, element 2i in the low nibble) -> four int32x4
//                 registers; signed nibbles sign-extended (0x8..0xF -> -8..-1).
// unpack_nibbles_block: 16 packed bytes -> 32 bytes, one nibble per byte (signed ones
//                 sign-extended to the byte), re-interleaved by ST2.
// A signed nibble is sign-extended by shifts: the low one by (b << 4) >> 4, the high one by
// b >> 4, both arithmetic on int8.
#ifndef LOWBIT_KERNELS_ARM_WIDEN_HPP
#define LOWBIT_KERNELS_ARM_WIDEN_HPP

#include <cstdint>

#include "../arch.hpp"

#if LOWBIT_KERNELS_NEON64  // AArch64 only: compiles away elsewhere
#include <arm_neon.h>

namespace lowbit {
namespace kernels {
namespace detail {

// 16 bytes in a register -> 4 x 4 int32.
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void widen4_reg(uint8x16_t v, xsimd::batch<std::int32_t, A>& a, xsimd::batch<std::int32_t, A>& b,
                                    xsimd::batch<std::int32_t, A>& c, xsimd::batch<std::int32_t, A>& d,
                                    xsimd::neon64) noexcept {
    if constexpr (Signed) {
        const int8x16_t s = vreinterpretq_s8_u8(v);
        const int16x8_t lo = vmovl_s8(vget_low_s8(s)), hi = vmovl_high_s8(s);
        a = vmovl_s16(vget_low_s16(lo));
        b = vmovl_high_s16(lo);
        c = vmovl_s16(vget_low_s16(hi));
        d = vmovl_high_s16(hi);
    } else {
        const uint16x8_t lo = vmovl_u8(vget_low_u8(v)), hi = vmovl_high_u8(v);
        a = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(lo)));
        b = vreinterpretq_s32_u32(vmovl_high_u16(lo));
        c = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(hi)));
        d = vreinterpretq_s32_u32(vmovl_high_u16(hi));
    }
}

// 16 bytes -> 4 x 4 int32.
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void widen4(const std::uint8_t* p, xsimd::batch<std::int32_t, A>& a,
                                xsimd::batch<std::int32_t, A>& b, xsimd::batch<std::int32_t, A>& c,
                                xsimd::batch<std::int32_t, A>& d, xsimd::neon64) noexcept {
    widen4_reg<Signed, A>(vld1q_u8(p), a, b, c, d, A{});
}

// The low and high nibbles of 16 bytes, one per byte (sign-extended when Signed).
template <bool Signed>
LOWBIT_FORCE_INLINE uint8x16x2_t split_nibbles_neon(uint8x16_t v) noexcept {
    uint8x16x2_t r;
    if constexpr (Signed) {
        const int8x16_t s = vreinterpretq_s8_u8(v);
        r.val[0] = vreinterpretq_u8_s8(vshrq_n_s8(vshlq_n_s8(s, 4), 4));
        r.val[1] = vreinterpretq_u8_s8(vshrq_n_s8(s, 4));
    } else {
        r.val[0] = vandq_u8(v, vdupq_n_u8(0x0F));
        r.val[1] = vshrq_n_u8(v, 4);
    }
    return r;
}

// 8 packed bytes (16 nibbles) -> 4 x 4 int32.
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void widen4_nibbles(const std::uint8_t* p, xsimd::batch<std::int32_t, A>& a,
                                        xsimd::batch<std::int32_t, A>& b, xsimd::batch<std::int32_t, A>& c,
                                        xsimd::batch<std::int32_t, A>& d, xsimd::neon64) noexcept {
    const uint8x8_t v = vld1_u8(p);
    const uint8x16x2_t n = split_nibbles_neon<Signed>(vcombine_u8(v, v));
    // elements 0..15: low / high nibbles of bytes 0..7, interleaved
    widen4_reg<Signed, A>(vzip1q_u8(n.val[0], n.val[1]), a, b, c, d, A{});
}

// 16 packed bytes -> 32 bytes.
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void unpack_nibbles_block(const std::uint8_t* in, std::uint8_t* out, xsimd::neon64) noexcept {
    vst2q_u8(out, split_nibbles_neon<Signed>(vld1q_u8(in)));
}

}  // namespace detail
}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_NEON64
#endif  // LOWBIT_KERNELS_ARM_WIDEN_HPP
