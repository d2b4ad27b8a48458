// lowbit/core/f16.hpp: exact IEEE 754 binary16 <-> binary32 conversion, on bit patterns.
//
// lowbit stores half-precision values (int4 group scales, ggml's Q4_0 / Q8_0 block scales,
// ONNX float16 scales) as std::uint16_t bit patterns; C++17 has no half type. These two
// functions are constexpr, use integer arithmetic only (no FPU mode, no <cmath>) and give the
// same bits as the x86 F16C instructions (vcvtph2ps; vcvtps2ph with round-to-nearest-even)
// for every input, NaN included:
//   f16 -> f32: exact for every half (each is a float); subnormal halves become normal floats;
//               NaN keeps its sign and payload and is made quiet (bit 22 set), as vcvtph2ps.
//   f32 -> f16: round to nearest, ties to even; results above the largest half (65504) round to
//               +-Inf from 65520 on (65520 is the tie between 65504 and 2^16, and 65504's
//               significand is odd); results below half the smallest subnormal (2^-25) become
//               +-0, 2^-25 itself ties to +-0 (even); NaN keeps its sign and the top 10 payload
//               bits and is made quiet (bit 9 set), as vcvtps2ph.
// numpy's float16 conversions agree except for NaN: numpy keeps a signalling NaN signalling
// (it copies the payload without setting the quiet bit). Worked numbers: 1 + 2^-11 (0x3F801000,
// the tie between 1 and 1 + 2^-10) -> 0x3C00 = 1.0 (even); 1 + 3 * 2^-11 -> 0x3C02.
#ifndef LOWBIT_CORE_F16_HPP
#define LOWBIT_CORE_F16_HPP

#include <cstdint>

#include "../config.hpp"

namespace lowbit {
namespace detail {
constexpr std::uint32_t float_bits(float f) noexcept { return __builtin_bit_cast(std::uint32_t, f); }
constexpr float bits_float(std::uint32_t u) noexcept { return __builtin_bit_cast(float, u); }
}  // namespace detail

/// The float equal to the binary16 value with bit pattern h (exact; NaN made quiet, payload
/// and sign kept). Same bits as F16C's vcvtph2ps.
constexpr float f16_to_f32(std::uint16_t h) noexcept {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
    const std::uint32_t e = (h >> 10) & 0x1Fu;
    std::uint32_t m = h & 0x3FFu;
    if (e == 0x1F) return detail::bits_float(sign | 0x7F800000u | (m != 0 ? 0x400000u | (m << 13) : 0u));
    if (e != 0) return detail::bits_float(sign | ((e + 112u) << 23) | (m << 13));  // 112 = 127 - 15
    if (m == 0) return detail::bits_float(sign);
    // subnormal: m * 2^-24 = 1.f * 2^(exponent): shift the leading one up to bit 10
    std::uint32_t exponent = 113;  // the biased f32 exponent of 2^-14, lowered per shift
    while ((m & 0x400u) == 0) {
        m <<= 1;
        --exponent;
    }
    return detail::bits_float(sign | (exponent << 23) | ((m & 0x3FFu) << 13));
}

/// The binary16 bit pattern nearest to f (ties to even; overflow to +-Inf; NaN made quiet
/// with its sign and top payload bits). Same bits as F16C's vcvtps2ph in round-to-nearest.
constexpr std::uint16_t f32_to_f16(float f) noexcept {
    const std::uint32_t u = detail::float_bits(f);
    const std::uint32_t sign = (u >> 16) & 0x8000u;
    const std::uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x3FFu));  // NaN
    if (a >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65520 (and Inf) -> Inf
    if (a >= 0x38800000u) {  // >= 2^-14: a normal half
        std::uint32_t h = (a >> 13) - (112u << 10);
        const std::uint32_t rem = a & 0x1FFFu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0)) ++h;  // a carry moves into the exponent
        return static_cast<std::uint16_t>(sign | h);
    }
    // a half subnormal (or zero): the result is round(|f| / 2^-24) units of 2^-24
    const std::uint32_t e = a >> 23;
    if (e < 102) return static_cast<std::uint16_t>(sign);  // |f| < 2^-25 (f32 subnormals too): +-0
    const std::uint32_t mant = (a & 0x7FFFFFu) | 0x800000u;  // |f| = mant * 2^(e - 150)
    const std::uint32_t shift = 126u - e;                    // |f| / 2^-24 = mant / 2^shift, 14 <= shift <= 24
    std::uint32_t m = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (m & 1u) != 0)) ++m;  // m == 0x400 is the smallest normal: right bits
    return static_cast<std::uint16_t>(sign | m);
}

}  // namespace lowbit

#endif  // LOWBIT_CORE_F16_HPP
