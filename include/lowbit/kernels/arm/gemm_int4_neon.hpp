// lowbit/kernels/arm/gemm_int4_neon.hpp: AArch64 micro-kernels of the int4 weight-only GEMV /
// small-M GEMM (kernels/gemm_int4.hpp), bit-identical to ref::gemm_int4_f32 / gemm_int4_q8,
// over the packed layout of that header (the same bytes as on x86): per tile of 16 output
// rows, K / 8 chunks of 64 bytes whose dword j holds row j's 8 weights k = 8c .. 8c + 7 as
// stored nibbles u (s4: q + 8, u4: q), byte i = u[8c + i] | u[8c + 4 + i] << 4. A chunk is 4 q
// registers; register v holds rows 4v .. 4v + 3, one per 32-bit lane.
//
// q8 activations (int4_q8_neon): x & 0x0F holds u[8c .. 8c+3] in each lane's 4 bytes and
// x >> 4 (per byte) holds u[8c+4 .. 8c+7]: 4 consecutive k per lane, 0..15 (a valid s8).
//   int4_q8_dotprod (ARMv8.2 SDOT, vdotq_laneq_s32; target attribute, run where cpu().dotprod):
//     lane += the 4 products with the activation bytes q[k .. k+3] (a lane of 16 loaded bytes);
//   int4_q8_neon (ARMv8.0): smull of 8 weight bytes (2 rows x 4 k) by the 4 activation bytes
//     broadcast twice, smlal of the high nibbles likewise (each s16 sums two products,
//     |.| <= 2 * 15 * 128 = 3840), sadalp adds pairs into s32 lanes (half a row each) and one
//     addp per 4 rows at the block's end gives the row sums.
// As on x86 the accumulator holds sum u * a = dot + z * asum (z = 8 for s4, zp[n][g] for u4,
// asum = the block's sum of q from quantize_q8), so -z * asum is added per block (mls);
// everything is exact int32 (|u * a| <= 15 * 128, 32 products, |z * asum| <= 15 * 32 * 128),
// the order of the products does not matter. Per block: y = fma(f32(dot), f32(d_a * s), y)
// (vcvtq_f32_s32 rounds to nearest as static_cast<float>; vfmaq_f32 is one rounding as fmaf).
//
// f32 activations (int4_f32_neon, ARMv8.0 for both int4 ISAs): weight k + i of every lane is the
// nibble at bit 8i (i < 4) or 8(i - 4) + 4 of its lane: shift, mask, minus the zero point (s4: 8)
// in int32, convert (exact), then t = fma(a[k], w, t) per lane, k increasing, and y = fma(t, s, y)
// per group: the spec's operations lane by lane.
#ifndef LOWBIT_KERNELS_ARM_GEMM_INT4_NEON_HPP
#define LOWBIT_KERNELS_ARM_GEMM_INT4_NEON_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../../config.hpp"
#include "../x86/gemm_int4_avx512.hpp"  // int4_tile_geometry (portable)
#include "gemm_neon.hpp"

#if LOWBIT_KERNELS_GEMM_ARM
#define LOWBIT_INT4_NEON 1
#else
#define LOWBIT_INT4_NEON 0
#endif

#if LOWBIT_INT4_NEON

// Register-array indices are small non-negative ints mixed with size_t offsets (as in
// x86/gemm_int4_avx512.hpp): those warnings are silenced for the kernels only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wconversion"

namespace lowbit {
namespace kernels {
namespace arm {

using x86::int4_tile_geometry;

namespace int4_detail {

/// The 16 scales of a group (f32 or binary16, converted exactly) as 4 registers.
LOWBIT_FORCE_INLINE void load_scales(const std::uint8_t* p, bool f16, float32x4_t (&s)[4]) noexcept {
    for (int v = 0; v < 4; ++v) {
        if (f16)
            s[v] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const std::uint16_t*>(p) + 4 * v)));
        else
            s[v] = vld1q_f32(reinterpret_cast<const float*>(p) + 4 * v);
    }
}

/// The 16 u4 zero points of a group as int32, 4 registers.
LOWBIT_FORCE_INLINE void load_zp(const std::uint8_t* p, int32x4_t (&z)[4]) noexcept {
    const uint8x16_t b = vld1q_u8(p);
    const uint16x8_t lo = vmovl_u8(vget_low_u8(b)), hi = vmovl_high_u8(b);
    z[0] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(lo)));
    z[1] = vreinterpretq_s32_u32(vmovl_high_u16(lo));
    z[2] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(hi)));
    z[3] = vreinterpretq_s32_u32(vmovl_high_u16(hi));
}

template <int Shift>
LOWBIT_FORCE_INLINE uint32x4_t shift_right(uint32x4_t x) noexcept {
    if constexpr (Shift == 0)
        return x;
    else
        return vshrq_n_u32(x, Shift);
}

// One k of the f32 path: the nibble at bit Shift of every lane of x[r], times a[m][k].
template <int R, int MB, int Shift>
LOWBIT_FORCE_INLINE void f32_step(const uint32x4_t (&x)[R][4], const int32x4_t (&z)[R][4], const float* ak,
                                  std::size_t lda, float32x4_t (&t)[MB][R][4]) noexcept {
    const uint32x4_t low4 = vdupq_n_u32(0x0F);
    LOWBIT_ARM_UNROLL
    for (int r = 0; r < R; ++r)
        LOWBIT_ARM_UNROLL
        for (int v = 0; v < 4; ++v) {
            const int32x4_t u = vreinterpretq_s32_u32(vandq_u32(shift_right<Shift>(x[r][v]), low4));
            const float32x4_t w = vcvtq_f32_s32(vsubq_s32(u, z[r][v]));
            LOWBIT_ARM_UNROLL
            for (int m = 0; m < MB; ++m)
                t[m][r][v] = vfmaq_f32(t[m][r][v], vdupq_n_f32(ak[static_cast<std::size_t>(m) * lda]), w);
        }
}

// Chunk C (8 k) of a q8 block with SDOT: lo[r][v] x q lanes, hi[r][v] x the next lane.
template <int R, int MB, int C>
LOWBIT_DETAIL_TARGET_DOTPROD LOWBIT_FORCE_INLINE void q8_chunk_dot(const std::uint8_t* wp, std::size_t tile_bytes,
                                                                   const int8x16_t (&aq)[MB][2],
                                                                   int32x4_t (&acc)[MB][R][4]) noexcept {
    const uint8x16_t low4 = vdupq_n_u8(0x0F);
    LOWBIT_ARM_UNROLL
    for (int r = 0; r < R; ++r)
        LOWBIT_ARM_UNROLL
        for (int v = 0; v < 4; ++v) {
            const uint8x16_t x = vld1q_u8(wp + static_cast<std::size_t>(r) * tile_bytes + C * 64 + 16 * v);
            const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(x, low4)), hi = vreinterpretq_s8_u8(vshrq_n_u8(x, 4));
            LOWBIT_ARM_UNROLL
            for (int m = 0; m < MB; ++m) {
                acc[m][r][v] = sdot_lane<(C % 2) * 2>(acc[m][r][v], lo, aq[m][C / 2]);
                acc[m][r][v] = sdot_lane<(C % 2) * 2 + 1>(acc[m][r][v], hi, aq[m][C / 2]);
            }
        }
}

// The same with smull / smlal / sadalp: pairs[m][r][2v + h] (half h of register v).
template <int R, int MB, int C>
LOWBIT_FORCE_INLINE void q8_chunk_neon(const std::uint8_t* wp, std::size_t tile_bytes, const int8x16_t (&aq)[MB][2],
                                       int32x4_t (&pairs)[MB][R][8]) noexcept {
    const uint8x16_t low4 = vdupq_n_u8(0x0F);
    int8x16_t alo[MB], ahi[MB];
    LOWBIT_ARM_UNROLL
    for (int m = 0; m < MB; ++m) {
        alo[m] = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(aq[m][C / 2]), (C % 2) * 2));
        ahi[m] = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(aq[m][C / 2]), (C % 2) * 2 + 1));
    }
    LOWBIT_ARM_UNROLL
    for (int r = 0; r < R; ++r)
        LOWBIT_ARM_UNROLL
        for (int v = 0; v < 4; ++v) {
            const uint8x16_t x = vld1q_u8(wp + static_cast<std::size_t>(r) * tile_bytes + C * 64 + 16 * v);
            const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(x, low4)), hi = vreinterpretq_s8_u8(vshrq_n_u8(x, 4));
            LOWBIT_ARM_UNROLL
            for (int m = 0; m < MB; ++m) {
                const int16x8_t p0 = vmlal_s8(vmull_s8(vget_low_s8(lo), vget_low_s8(alo[m])), vget_low_s8(hi),
                                              vget_low_s8(ahi[m]));
                const int16x8_t p1 = vmlal_high_s8(vmull_high_s8(lo, alo[m]), hi, ahi[m]);
                pairs[m][r][2 * v] = vpadalq_s16(pairs[m][r][2 * v], p0);
                pairs[m][r][2 * v + 1] = vpadalq_s16(pairs[m][r][2 * v + 1], p1);
            }
        }
}

// The q8 kernels' shared steps (no target attribute: they inline into both kernels).
template <int R, int MB>
struct q8_state {
    float32x4_t y[MB][R][4];
    float32x4_t s[R][4];
    int32x4_t zi[R][4];
    int8x16_t aq[MB][2];
};

template <int R, int MB>
LOWBIT_FORCE_INLINE void q8_start(q8_state<R, MB>& st, const float* init) noexcept {
    LOWBIT_ARM_UNROLL
    for (int m = 0; m < MB; ++m)
        LOWBIT_ARM_UNROLL
        for (int r = 0; r < R; ++r)
            LOWBIT_ARM_UNROLL
            for (int v = 0; v < 4; ++v) st.y[m][r][v] = vld1q_f32(init + 16 * r + 4 * v);
    LOWBIT_ARM_UNROLL
    for (int r = 0; r < R; ++r)
        LOWBIT_ARM_UNROLL
        for (int v = 0; v < 4; ++v) {
            st.s[r][v] = vdupq_n_f32(0.0f);
            st.zi[r][v] = vdupq_n_s32(8);  // s4; u4 loads its zero points per group
        }
}

// Block b's scales / zero points (at a group start) and activations.
template <int R, int MB, bool U4>
LOWBIT_FORCE_INLINE void q8_block_start(q8_state<R, MB>& st, const std::uint8_t* tile0, const int4_tile_geometry& geo,
                                        const std::int8_t* q, std::size_t b) noexcept {
    const std::size_t per_group = geo.group_size / 32;
    if (b % per_group == 0) {
        const std::size_t g = b / per_group;
        LOWBIT_ARM_UNROLL
        for (int r = 0; r < R; ++r) {
            const std::uint8_t* tile = tile0 + static_cast<std::size_t>(r) * geo.tile_bytes;
            load_scales(tile + geo.scale_offset + g * (geo.f16 ? 32 : 64), geo.f16, st.s[r]);
            if constexpr (U4) load_zp(tile + geo.zp_offset + g * 16, st.zi[r]);
        }
    }
    LOWBIT_ARM_UNROLL
    for (int m = 0; m < MB; ++m) {
        const std::int8_t* ap = q + static_cast<std::size_t>(m) * geo.k + b * 32;
        st.aq[m][0] = vld1q_s8(ap);
        st.aq[m][1] = vld1q_s8(ap + 16);
    }
}

// y = fma(f32(raw - z * asum), s * d_a, y) for block b.
template <int R, int MB>
LOWBIT_FORCE_INLINE void q8_block_end(q8_state<R, MB>& st, const int32x4_t (&raw)[MB][R][4], const float* d,
                                      const std::int32_t* sums, std::size_t blocks, std::size_t b) noexcept {
    LOWBIT_ARM_UNROLL
    for (int m = 0; m < MB; ++m) {
        const std::int32_t sm = sums[static_cast<std::size_t>(m) * blocks + b];
        const float32x4_t da = vdupq_n_f32(d[static_cast<std::size_t>(m) * blocks + b]);
        LOWBIT_ARM_UNROLL
        for (int r = 0; r < R; ++r)
            LOWBIT_ARM_UNROLL
            for (int v = 0; v < 4; ++v) {
                const int32x4_t dot = vmlsq_n_s32(raw[m][r][v], st.zi[r][v], sm);  // - z * asum (exact)
                st.y[m][r][v] = vfmaq_f32(st.y[m][r][v], vcvtq_f32_s32(dot), vmulq_f32(st.s[r][v], da));
            }
    }
}

template <int R, int MB>
LOWBIT_FORCE_INLINE void q8_store(const q8_state<R, MB>& st, float* res) noexcept {
    LOWBIT_ARM_UNROLL
    for (int m = 0; m < MB; ++m)
        LOWBIT_ARM_UNROLL
        for (int r = 0; r < R; ++r)
            LOWBIT_ARM_UNROLL
            for (int v = 0; v < 4; ++v) vst1q_f32(res + m * 16 * R + 16 * r + 4 * v, st.y[m][r][v]);
}

}  // namespace int4_detail

/// f32 activations: res[m * 16R + 16r + j] = output row 16r + j (of the R tiles at tile0) for
/// activation row m < MB (a + m * lda), starting from init[16r + j]. ARMv8.0 NEON. See the file
/// comment.
template <int R, int MB, bool U4>
void int4_f32_neon(const std::uint8_t* tile0, const int4_tile_geometry& geo, const float* a, std::size_t lda,
                   const float* init, float* res) noexcept {
    float32x4_t y[MB][R][4];
    LOWBIT_ARM_UNROLL
    for (int m = 0; m < MB; ++m)
        LOWBIT_ARM_UNROLL
        for (int r = 0; r < R; ++r)
            LOWBIT_ARM_UNROLL
            for (int v = 0; v < 4; ++v) y[m][r][v] = vld1q_f32(init + 16 * r + 4 * v);
    const std::size_t groups = geo.k / geo.group_size, chunks = geo.group_size / 8;
    const std::size_t sstride = geo.f16 ? 32 : 64;
    for (std::size_t g = 0; g < groups; ++g) {
        float32x4_t s[R][4];
        int32x4_t z[R][4];
        LOWBIT_ARM_UNROLL
        for (int r = 0; r < R; ++r) {
            const std::uint8_t* tile = tile0 + static_cast<std::size_t>(r) * geo.tile_bytes;
            int4_detail::load_scales(tile + geo.scale_offset + g * sstride, geo.f16, s[r]);
            if constexpr (U4)
                int4_detail::load_zp(tile + geo.zp_offset + g * 16, z[r]);
            else
                for (int v = 0; v < 4; ++v) z[r][v] = vdupq_n_s32(8);
        }
        float32x4_t t[MB][R][4];
        LOWBIT_ARM_UNROLL
        for (int m = 0; m < MB; ++m)
            LOWBIT_ARM_UNROLL
            for (int r = 0; r < R; ++r)
                LOWBIT_ARM_UNROLL
                for (int v = 0; v < 4; ++v) t[m][r][v] = vdupq_n_f32(0.0f);
        const std::uint8_t* wp = tile0 + g * chunks * 64;
        const float* ag = a + g * geo.group_size;
        for (std::size_t c = 0; c < chunks; ++c) {
            uint32x4_t x[R][4];
            LOWBIT_ARM_UNROLL
            for (int r = 0; r < R; ++r)
                LOWBIT_ARM_UNROLL
                for (int v = 0; v < 4; ++v)
                    x[r][v] = vld1q_u32(reinterpret_cast<const std::uint32_t*>(
                        wp + static_cast<std::size_t>(r) * geo.tile_bytes + c * 64 + 16 * v));
            const float* ak = ag + c * 8;
            int4_detail::f32_step<R, MB, 0>(x, z, ak + 0, lda, t);
            int4_detail::f32_step<R, MB, 8>(x, z, ak + 1, lda, t);
            int4_detail::f32_step<R, MB, 16>(x, z, ak + 2, lda, t);
            int4_detail::f32_step<R, MB, 24>(x, z, ak + 3, lda, t);
            int4_detail::f32_step<R, MB, 4>(x, z, ak + 4, lda, t);
            int4_detail::f32_step<R, MB, 12>(x, z, ak + 5, lda, t);
            int4_detail::f32_step<R, MB, 20>(x, z, ak + 6, lda, t);
            int4_detail::f32_step<R, MB, 28>(x, z, ak + 7, lda, t);
        }
        LOWBIT_ARM_UNROLL
        for (int m = 0; m < MB; ++m)
            LOWBIT_ARM_UNROLL
            for (int r = 0; r < R; ++r)
                LOWBIT_ARM_UNROLL
                for (int v = 0; v < 4; ++v) y[m][r][v] = vfmaq_f32(y[m][r][v], t[m][r][v], s[r][v]);
    }
    LOWBIT_ARM_UNROLL
    for (int m = 0; m < MB; ++m)
        LOWBIT_ARM_UNROLL
        for (int r = 0; r < R; ++r)
            LOWBIT_ARM_UNROLL
            for (int v = 0; v < 4; ++v) vst1q_f32(res + m * 16 * R + 16 * r + 4 * v, y[m][r][v]);
}

/// q8 activations, ARMv8.0 NEON: as int4_f32_neon, with MB rows of q8 blocks (q + m * K,
/// d + m * K/32, sums + m * K/32).
template <int R, int MB, bool U4>
void int4_q8_neon(const std::uint8_t* tile0, const int4_tile_geometry& geo, const std::int8_t* q, const float* d,
                  const std::int32_t* sums, const float* init, float* res) noexcept {
    int4_detail::q8_state<R, MB> st;
    int4_detail::q8_start(st, init);
    const std::size_t blocks = geo.k / 32;
    for (std::size_t b = 0; b < blocks; ++b) {
        int4_detail::q8_block_start<R, MB, U4>(st, tile0, geo, q, b);
        int32x4_t pairs[MB][R][8];
        LOWBIT_ARM_UNROLL
        for (int m = 0; m < MB; ++m)
            LOWBIT_ARM_UNROLL
            for (int r = 0; r < R; ++r)
                LOWBIT_ARM_UNROLL
                for (int v = 0; v < 8; ++v) pairs[m][r][v] = vdupq_n_s32(0);
        const std::uint8_t* wp = tile0 + b * 4 * 64;
        int4_detail::q8_chunk_neon<R, MB, 0>(wp, geo.tile_bytes, st.aq, pairs);
        int4_detail::q8_chunk_neon<R, MB, 1>(wp, geo.tile_bytes, st.aq, pairs);
        int4_detail::q8_chunk_neon<R, MB, 2>(wp, geo.tile_bytes, st.aq, pairs);
        int4_detail::q8_chunk_neon<R, MB, 3>(wp, geo.tile_bytes, st.aq, pairs);
        int32x4_t raw[MB][R][4];
        LOWBIT_ARM_UNROLL
        for (int m = 0; m < MB; ++m)
            LOWBIT_ARM_UNROLL
            for (int r = 0; r < R; ++r)
                LOWBIT_ARM_UNROLL
                for (int v = 0; v < 4; ++v) raw[m][r][v] = vpaddq_s32(pairs[m][r][2 * v], pairs[m][r][2 * v + 1]);
        int4_detail::q8_block_end(st, raw, d, sums, blocks, b);
    }
    int4_detail::q8_store(st, res);
}

/// The same with the ARMv8.2 dot-product instructions: only where cpu().dotprod.
template <int R, int MB, bool U4>
LOWBIT_DETAIL_TARGET_DOTPROD void int4_q8_dotprod(const std::uint8_t* tile0, const int4_tile_geometry& geo,
                                                  const std::int8_t* q, const float* d, const std::int32_t* sums,
                                                  const float* init, float* res) noexcept {
    int4_detail::q8_state<R, MB> st;
    int4_detail::q8_start(st, init);
    const std::size_t blocks = geo.k / 32;
    for (std::size_t b = 0; b < blocks; ++b) {
        int4_detail::q8_block_start<R, MB, U4>(st, tile0, geo, q, b);
        int32x4_t acc[MB][R][4];
        LOWBIT_ARM_UNROLL
        for (int m = 0; m < MB; ++m)
            LOWBIT_ARM_UNROLL
            for (int r = 0; r < R; ++r)
                LOWBIT_ARM_UNROLL
                for (int v = 0; v < 4; ++v) acc[m][r][v] = vdupq_n_s32(0);
        const std::uint8_t* wp = tile0 + b * 4 * 64;
        int4_detail::q8_chunk_dot<R, MB, 0>(wp, geo.tile_bytes, st.aq, acc);
        int4_detail::q8_chunk_dot<R, MB, 1>(wp, geo.tile_bytes, st.aq, acc);
        int4_detail::q8_chunk_dot<R, MB, 2>(wp, geo.tile_bytes, st.aq, acc);
        int4_detail::q8_chunk_dot<R, MB, 3>(wp, geo.tile_bytes, st.aq, acc);
        int4_detail::q8_block_end(st, acc, d, sums, blocks, b);
    }
    int4_detail::q8_store(st, res);
}

}  // namespace arm
}  // namespace kernels
}  // namespace lowbit

#pragma GCC diagnostic pop

#endif  // LOWBIT_INT4_NEON
#endif  // LOWBIT_KERNELS_ARM_GEMM_INT4_NEON_HPP
