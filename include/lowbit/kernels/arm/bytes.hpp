// lowbit/kernels/arm/bytes.hpp: one register's worth of 8-bit values in and out, and nibble
// unpacking, on AArch64 NEON (xsimd::neon64): the neon64 overloads of x86/bytes.hpp's
// helpers (used by per_channel.hpp), with the same contracts.
//
// narrow_one<Signed>: one int32x4 register (values already clamped to [-128, 127] or
//   [0, 255]; saturated like x86's packs otherwise) -> its 4 bytes, in order.
// widen_one<Signed>:  4 bytes -> one int32x4 register, sign- or zero-extended.
// unpack_nibbles<Signed>: 16 packed bytes -> 32 bytes, element 2i = low nibble of byte i,
//   sign-extended from 4 bits when Signed (arm/widen.hpp's unpack_nibbles_block).
#ifndef LOWBIT_KERNELS_ARM_BYTES_HPP
#define LOWBIT_KERNELS_ARM_BYTES_HPP

#include <cstdint>
#include <cstring>

#include "../arch.hpp"
#include "widen.hpp"

#if LOWBIT_KERNELS_NEON64  // AArch64 only: compiles away elsewhere
#include <arm_neon.h>

namespace lowbit {
namespace kernels {
namespace detail {

template <bool Signed, class A>
LOWBIT_FORCE_INLINE void narrow_one(xsimd::batch<std::int32_t, A> a, std::uint8_t* out, xsimd::neon64) noexcept {
    const int16x4_t h = vqmovn_s32(a);
    const int16x8_t hh = vcombine_s16(h, h);
    std::uint8_t t[8];
    if constexpr (Signed)
        vst1_u8(t, vreinterpret_u8_s8(vqmovn_s16(hh)));
    else
        vst1_u8(t, vqmovun_s16(hh));
    std::memcpy(out, t, 4);
}

template <bool Signed, class A>
LOWBIT_FORCE_INLINE xsimd::batch<std::int32_t, A> widen_one(const std::uint8_t* in, xsimd::neon64) noexcept {
    std::uint8_t t[8] = {};
    std::memcpy(t, in, 4);
    const uint8x8_t b = vld1_u8(t);
    if constexpr (Signed)
        return vmovl_s16(vget_low_s16(vmovl_s8(vreinterpret_s8_u8(b))));
    else
        return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(b))));
}

// 16 packed bytes -> 32 bytes.
template <bool Signed, class A>
LOWBIT_FORCE_INLINE void unpack_nibbles(const std::uint8_t* in, std::uint8_t* out, xsimd::neon64) noexcept {
    unpack_nibbles_block<Signed, A>(in, out, A{});
}

}  // namespace detail
}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_NEON64
#endif  // LOWBIT_KERNELS_ARM_BYTES_HPP
