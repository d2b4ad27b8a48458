// lowbit/kernels/requantize.hpp: SIMD requantization (int32 accumulators -> s8 / u8), the
// GEMM / conv epilogue, bit-identical to lowbit::ref::requantize in both variants (integer
// multiplier with double or single rounding; float multiplier), same signatures, checks and
// errors, plus an architecture template parameter. Bias, zero-point and the clamp
// (ReLU / ReLU6 / custom) are fused. s4 / u4 / s32 outputs and per-group schemes take the
// reference path (same results, scalar speed).
//
// Per element, with q the Q0.31 multiplier, L = max(shift, 0), e = max(-shift, 0), and
// b = clamp(sat32(acc + bias), lo_lim, hi_lim), lo_lim / hi_lim = INT32_MIN / INT32_MAX >> L,
// computed without overflow as clamp(acc, lo_lim - bias, hi_lim - bias) + bias:
//   h = floor(((b << L) * q + 2^30) / 2^31)       gemmlowp SRDHM (x86/requantize.hpp mulhi31)
//   shift >= 0, both roundings:  h
//   shift < 0, double rounding:  RDBPOT(h, e) = sign(h) * ((|h| + 2^(e-1)) >> e)
//   shift < 0, single rounding:  v = floor(b * q / 2^31) >> (e - 1), then (v + 1) >> 1,
//     which is floor((b * q + 2^(30 + e)) / 2^(31 + e)), TFLite's single rounding, split so
//     every intermediate fits int32 (v <= 2^31 - 2, so v + 1 cannot overflow).
//   Worked number: q = 2^30, shift = -1 (M = 0.25), acc = -2998: h = -1499; double:
//   -((1499 + 1) >> 1) = -750; single: v = floor(-2998 * 2^30 / 2^31) = -1499, (v + 1) >> 1 = -749.
// then out = clamp(r + zero_point, lo, hi) through int16 (x86/requantize.hpp narrow4_clamp).
// Clamping b to [lo_lim, hi_lim] replaces core's saturation of b << L to INT32_MAX by
// hi_lim << L = 2^31 - 2^L; for q >= 2^30 both give h >= 2^29, far beyond any 8-bit output
// range (q = 0 gives 0 either way), so the outputs are the same. Single rounding's
// saturation of huge products is covered the same way.
//
// Layouts: per-tensor and runs of >= 2 blocks with one channel (axis not innermost) use
// broadcast constants and uniform shifts; otherwise (channel axis innermost, the GEMM output
// case, or short runs) the constants of each element come from small per-element tables
// built on the stack: a periodic table when a row of the layout (channels * inner elements)
// fits it, else tables for column segments of 256 elements, reused for 128 rows at a time.
#ifndef LOWBIT_KERNELS_REQUANTIZE_HPP
#define LOWBIT_KERNELS_REQUANTIZE_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../core/requantize.hpp"
#include "arch.hpp"
#include "simd.hpp"
#include "arm/requantize.hpp"
#include "x86/narrow.hpp"
#include "x86/requantize.hpp"

namespace lowbit {
namespace kernels {
namespace detail {

/// One requantize call as the loops see it: the [outer, channels, inner] layout (per tensor:
/// 1, 1, numel), one multiplier (and bias) per channel, the output zero-point and bounds
/// (lo / hi already clamped to the format's range).
struct requant_args {
    const quantized_multiplier* multipliers = nullptr;
    const std::int32_t* bias = nullptr;  ///< null: no bias
    std::int32_t zero_point = 0, lo = 0, hi = 0;
    bool single_rounding = false;
    std::size_t outer = 1, channels = 1, inner = 0;
};

/// The same for the float-multiplier variant.
struct requant_float_args {
    const float* multipliers = nullptr;
    const std::int32_t* bias = nullptr;
    std::int32_t zero_point = 0, lo = 0, hi = 0;
    std::size_t outer = 1, channels = 1, inner = 0;
};

#if LOWBIT_HAS_XSIMD

constexpr std::size_t requant_table_cap = 256;   // elements per table (a multiple of every block)
constexpr std::size_t requant_row_block = 128;   // rows sharing one segment table

// The constants of one channel. lsh / rsh are shift counts on AVX2 / AVX-512 (vpsllvd /
// vpsrlvd) and NEON (arm/requantize.hpp) and the powers of two x86/requantize.hpp's SSE shifts multiply by; half is
// 2^(e-1) (0 when e = 0).
struct requant_entry {
    std::int32_t qm, alo, ahi, bias, lsh, rsh, half;
    int left, right, kind;  // uniform counts; kind 0: shift >= 0, 1: double and e >= 1, 2: single and e >= 1
};

template <class A>
LOWBIT_FORCE_INLINE requant_entry make_requant_entry(quantized_multiplier m, std::int32_t bias, bool single) noexcept {
    constexpr bool var_shift = std::is_base_of<xsimd::avx2, A>::value || std::is_base_of<xsimd::avx512f, A>::value ||
                               std::is_base_of<xsimd::neon64, A>::value;
    const int left = m.shift > 0 ? m.shift : 0;
    const int e = m.shift < 0 ? -m.shift : 0;
    const int count = single ? (e > 0 ? e - 1 : 0) : e;
    const std::int64_t lim = std::int64_t(1) << (31 - left);  // lo_lim = -lim, hi_lim = lim - 1
    const std::int64_t alo = -lim - bias, ahi = lim - 1 - bias;
    requant_entry r{};
    r.qm = m.multiplier;
    r.alo = alo < std::numeric_limits<std::int32_t>::min() ? std::numeric_limits<std::int32_t>::min()
                                                           : static_cast<std::int32_t>(alo);
    r.ahi = ahi > std::numeric_limits<std::int32_t>::max() ? std::numeric_limits<std::int32_t>::max()
                                                           : static_cast<std::int32_t>(ahi);
    r.bias = bias;
    r.lsh = var_shift ? left : std::int32_t(1) << left;
    r.rsh = var_shift ? count : static_cast<std::int32_t>(std::uint32_t(1) << (31 - count));
    r.half = e > 0 ? std::int32_t(1) << (e - 1) : 0;
    r.left = left;
    r.right = count;
    r.kind = m.shift >= 0 ? 0 : single ? 2 : 1;
    return r;
}

template <class A>
using requant_batch = xsimd::batch<std::int32_t, A>;

// How b = clamp(acc, alo, ahi) + bias simplifies for one channel: 0 nothing to do, 1 only the
// upper clamp, 2 only the lower one, 3 both.
template <class A>
LOWBIT_FORCE_INLINE int requant_bias_mode(std::int32_t alo, std::int32_t ahi, std::int32_t bias) noexcept {
    const bool low = alo != std::numeric_limits<std::int32_t>::min();
    const bool high = ahi != std::numeric_limits<std::int32_t>::max();
    return !low && !high && bias == 0 ? 0 : low && high ? 3 : low ? 2 : high ? 1 : 3;
}

template <class A, int BiasMode>
LOWBIT_FORCE_INLINE requant_batch<A> requant_bias(requant_batch<A> acc, std::int32_t alo, std::int32_t ahi,
                                                  std::int32_t bias) noexcept {
    using I = requant_batch<A>;
    if constexpr (BiasMode == 0) return acc;
    if constexpr (BiasMode == 1) return xsimd::min(acc, I(ahi)) + I(bias);
    if constexpr (BiasMode == 2) return xsimd::max(acc, I(alo)) + I(bias);
    if constexpr (BiasMode == 3) return xsimd::min(xsimd::max(acc, I(alo)), I(ahi)) + I(bias);
}

// Kind 0 / 1 / 2 of the file comment with one channel's constants (count = left or right).
template <class A, int Kind, int BiasMode, class Count>
LOWBIT_FORCE_INLINE requant_batch<A> requant_uniform(requant_batch<A> acc, const requant_entry& c,
                                                     Count count) noexcept {
    using I = requant_batch<A>;
    const I b = requant_bias<A, BiasMode>(acc, c.alo, c.ahi, c.bias);
    if constexpr (Kind == 0) {
        return I(mulhi31<A>(sll_uniform<A>(b, count, A{}), I(c.qm), I(1 << 30), A{}));
    } else if constexpr (Kind == 1) {  // RDBPOT(h, e) = sign(h) * ((|h| + 2^(e-1)) >> e)
        const I h(mulhi31<A>(b, I(c.qm), I(1 << 30), A{}));
        return I(apply_sign<A>(srl_uniform<A>(I(abs_s32<A>(h, A{})) + I(c.half), count, A{}), h, A{}));
    } else {  // v = floor(b * M / 2^31) >> (e - 1); (v + 1) >> 1 (v + 1 cannot overflow: v <= 2^31 - 2)
        const I v(sra_uniform<A>(I(mulhi31<A>(b, I(c.qm), I(0), A{})), count, A{}));
        return (v + I(1)) >> 1;
    }
}

template <class A, std::size_t N>
struct requant_table {
    alignas(64) std::int32_t qm[N];
    alignas(64) std::int32_t alo[N];
    alignas(64) std::int32_t ahi[N];
    alignas(64) std::int32_t bias[N];
    alignas(64) std::int32_t lsh[N];
    alignas(64) std::int32_t rsh[N];
    alignas(64) std::int32_t half[N];
    alignas(64) std::int32_t sel[N];  ///< -1 where e >= 1 (single rounding only)
};

// Any mix of channels, constants per lane from the table at t.
template <class A, bool Single, std::size_t N>
LOWBIT_FORCE_INLINE requant_batch<A> requant_lanes(requant_batch<A> acc, const requant_table<A, N>& tb,
                                                   std::size_t t) noexcept {
    using I = requant_batch<A>;
    const I half = I::load_unaligned(tb.half + t);
    const I sh_l = I::load_unaligned(tb.lsh + t), sh_r = I::load_unaligned(tb.rsh + t);
    const I b = xsimd::min(xsimd::max(acc, I::load_unaligned(tb.alo + t)), I::load_unaligned(tb.ahi + t)) +
                I::load_unaligned(tb.bias + t);
    const I s(sll_lanes<A>(b, sh_l, sh_l, A{}));
    const I qm = I::load_unaligned(tb.qm + t);
    if constexpr (!Single) {  // e = 0 lanes: half = 0, shift 0, so sign(h) * |h| = h
        const I h(mulhi31<A>(s, qm, I(1 << 30), A{}));
        return I(apply_sign<A>(srl_lanes<A>(I(abs_s32<A>(h, A{})) + half, sh_r, sh_r, A{}), h, A{}));
    } else {
        // e >= 1 lanes (sel = -1): v = floor(b * M / 2^31) >> (e - 1), (v + 1) >> 1;
        // shift >= 0 lanes (sel = 0): the SRDHM value itself (rounding term 2^30, count 0).
        // Bitwise selects: xsimd 8.1's AVX-512 select on int32 does not compile at -O0.
        const I sel = I::load_unaligned(tb.sel + t);
        // (xsimd 8.1's bitwise_andnot(x, y) is ~x & y, unlike later versions: written out here.)
        const I v(sra_lanes<A>(I(mulhi31<A>(s, qm, I(1 << 30) & ~sel, A{})), sh_r, sh_r, A{}));
        return (((v + I(1)) >> 1) & sel) | (v & ~sel);
    }
}

// The fixed-point policy of the layout driver below.
template <class A, bool Signed>
struct requant_policy {
    static constexpr std::size_t lanes = requant_batch<A>::size;
    static constexpr std::size_t block = 4 * lanes;
    using table = requant_table<A, requant_table_cap + block>;
    const requant_args& a;

    LOWBIT_FORCE_INLINE requant_entry entry(std::size_t c) const noexcept {
        return make_requant_entry<A>(a.multipliers[c], a.bias ? a.bias[c] : 0, a.single_rounding);
    }
    LOWBIT_FORCE_INLINE void fill(table& tb, std::size_t t, std::size_t c) const noexcept {
        const requant_entry e = entry(c);
        tb.qm[t] = e.qm;
        tb.alo[t] = e.alo;
        tb.ahi[t] = e.ahi;
        tb.bias[t] = e.bias;
        tb.lsh[t] = e.lsh;
        tb.rsh[t] = e.rsh;
        tb.half[t] = e.half;
        tb.sel[t] = e.half != 0 ? -1 : 0;
    }
    template <bool Single>
    LOWBIT_FORCE_INLINE void block_lanes(const table& tb, std::size_t t, const std::int32_t* acc, std::uint8_t* out,
                                         std::int16_t zp, std::int16_t lo, std::int16_t hi) const noexcept {
        using I = requant_batch<A>;
        narrow4_clamp<Signed, A>(requant_lanes<A, Single>(I::load_unaligned(acc), tb, t),
                                 requant_lanes<A, Single>(I::load_unaligned(acc + lanes), tb, t + lanes),
                                 requant_lanes<A, Single>(I::load_unaligned(acc + 2 * lanes), tb, t + 2 * lanes),
                                 requant_lanes<A, Single>(I::load_unaligned(acc + 3 * lanes), tb, t + 3 * lanes), zp,
                                 lo, hi, out, A{});
    }
    LOWBIT_FORCE_INLINE void block_table(const table& tb, std::size_t t, const std::int32_t* acc,
                                         std::uint8_t* out) const noexcept {
        const auto zp = static_cast<std::int16_t>(a.zero_point), lo = static_cast<std::int16_t>(a.lo),
                   hi = static_cast<std::int16_t>(a.hi);
        if (a.single_rounding)
            block_lanes<true>(tb, t, acc, out, zp, lo, hi);
        else
            block_lanes<false>(tb, t, acc, out, zp, lo, hi);
    }
    template <int Kind, int BiasMode>
    LOWBIT_FORCE_INLINE void run_kind(const requant_entry& e, const std::int32_t* acc, std::uint8_t* out,
                                      std::size_t n) const noexcept {
        using I = requant_batch<A>;
        const auto count = uniform_count<A>(Kind == 0 ? e.left : e.right, A{});
        const auto zp = static_cast<std::int16_t>(a.zero_point), lo = static_cast<std::int16_t>(a.lo),
                   hi = static_cast<std::int16_t>(a.hi);
        const requant_entry c = e;  // a local copy: stores to out (bytes) cannot alias it
        std::size_t i = 0;
        for (; i + block <= n; i += block) {
            narrow4_clamp<Signed, A>(requant_uniform<A, Kind, BiasMode>(I::load_unaligned(acc + i), c, count),
                                     requant_uniform<A, Kind, BiasMode>(I::load_unaligned(acc + i + lanes), c, count),
                                     requant_uniform<A, Kind, BiasMode>(I::load_unaligned(acc + i + 2 * lanes), c, count),
                                     requant_uniform<A, Kind, BiasMode>(I::load_unaligned(acc + i + 3 * lanes), c, count),
                                     zp, lo, hi, out + i, A{});
        }
        if (i < n) {
            alignas(64) std::int32_t at[block] = {};
            alignas(64) std::uint8_t ot[block];
            std::memcpy(at, acc + i, (n - i) * sizeof(std::int32_t));
            narrow4_clamp<Signed, A>(requant_uniform<A, Kind, BiasMode>(I::load_aligned(at), c, count),
                                     requant_uniform<A, Kind, BiasMode>(I::load_aligned(at + lanes), c, count),
                                     requant_uniform<A, Kind, BiasMode>(I::load_aligned(at + 2 * lanes), c, count),
                                     requant_uniform<A, Kind, BiasMode>(I::load_aligned(at + 3 * lanes), c, count),
                                     zp, lo, hi, ot, A{});
            std::memcpy(out + i, ot, n - i);
        }
    }
    template <int Kind>
    LOWBIT_FORCE_INLINE void run_bias(const requant_entry& e, const std::int32_t* acc, std::uint8_t* out,
                                      std::size_t n) const noexcept {
        switch (requant_bias_mode<A>(e.alo, e.ahi, e.bias)) {
            case 0: run_kind<Kind, 0>(e, acc, out, n); break;
            case 1: run_kind<Kind, 1>(e, acc, out, n); break;
            case 2: run_kind<Kind, 2>(e, acc, out, n); break;
            default: run_kind<Kind, 3>(e, acc, out, n); break;
        }
    }
    // n elements of channel c.
    LOWBIT_FORCE_INLINE void run(std::size_t c, const std::int32_t* acc, std::uint8_t* out, std::size_t n) const noexcept {
        const requant_entry e = entry(c);
        if (e.kind == 0)
            run_bias<0>(e, acc, out, n);
        else if (e.kind == 1)
            run_bias<1>(e, acc, out, n);
        else
            run_bias<2>(e, acc, out, n);
    }
};

// The float-multiplier policy.
template <class A, std::size_t N>
struct requant_float_table {
    alignas(64) float m[N];
    alignas(64) std::int32_t alo[N];
    alignas(64) std::int32_t ahi[N];
    alignas(64) std::int32_t bias[N];
};

template <class A, bool Signed>
struct requant_float_policy {
    static constexpr std::size_t lanes = requant_batch<A>::size;
    static constexpr std::size_t block = 4 * lanes;
    using table = requant_float_table<A, requant_table_cap + block>;
    const requant_float_args& a;

    // saturate(acc + bias) == clamp(acc, alo, ahi) + bias
    LOWBIT_FORCE_INLINE void bias_bounds(std::int32_t bias, std::int32_t& alo, std::int32_t& ahi) const noexcept {
        alo = bias < 0 ? static_cast<std::int32_t>(std::numeric_limits<std::int32_t>::min() - std::int64_t(bias))
                       : std::numeric_limits<std::int32_t>::min();
        ahi = bias > 0 ? static_cast<std::int32_t>(std::numeric_limits<std::int32_t>::max() - std::int64_t(bias))
                       : std::numeric_limits<std::int32_t>::max();
    }
    LOWBIT_FORCE_INLINE void fill(table& tb, std::size_t t, std::size_t c) const noexcept {
        const std::int32_t bias = a.bias ? a.bias[c] : 0;
        tb.m[t] = a.multipliers[c];
        tb.bias[t] = bias;
        bias_bounds(bias, tb.alo[t], tb.ahi[t]);
    }
    // round_half_even(float(b) * m) as int32 for narrow4_clamp, which adds the zero-point and
    // clamps in int16. Values above 2^16 (and +Inf) are cut to 2^16 first, as cvttps2dq would
    // turn them into INT32_MIN; below -2^31 (and -Inf) it gives INT32_MIN, on the right side.
    static LOWBIT_FORCE_INLINE requant_batch<A> rescale(requant_batch<A> b, fbatch<A> m) noexcept {
        const fbatch<A> r = round_even<A>(xsimd::batch_cast<float>(b) * m);
        return xsimd::batch_cast<std::int32_t>(xsimd::min(r, fbatch<A>(65536.0f)));
    }
    static LOWBIT_FORCE_INLINE requant_batch<A> lanes_value(const std::int32_t* acc, const table& tb,
                                                            std::size_t t) noexcept {
        using I = requant_batch<A>;
        const I b = xsimd::min(xsimd::max(I::load_unaligned(acc), I::load_unaligned(tb.alo + t)),
                               I::load_unaligned(tb.ahi + t)) +
                    I::load_unaligned(tb.bias + t);
        return rescale(b, fbatch<A>::load_unaligned(tb.m + t));
    }
    LOWBIT_FORCE_INLINE void block_table(const table& tb, std::size_t t, const std::int32_t* acc,
                                         std::uint8_t* out) const noexcept {
        narrow4_clamp<Signed, A>(lanes_value(acc, tb, t), lanes_value(acc + lanes, tb, t + lanes),
                                 lanes_value(acc + 2 * lanes, tb, t + 2 * lanes),
                                 lanes_value(acc + 3 * lanes, tb, t + 3 * lanes), static_cast<std::int16_t>(a.zero_point),
                                 static_cast<std::int16_t>(a.lo), static_cast<std::int16_t>(a.hi), out, A{});
    }
    template <int BiasMode>
    LOWBIT_FORCE_INLINE void run_bias(std::int32_t alo, std::int32_t ahi, std::int32_t bias, float m,
                                      const std::int32_t* acc, std::uint8_t* out, std::size_t n) const noexcept {
        using I = requant_batch<A>;
        const auto zp = static_cast<std::int16_t>(a.zero_point), lo = static_cast<std::int16_t>(a.lo),
                   hi = static_cast<std::int16_t>(a.hi);
        const fbatch<A> vm(m);
        const auto value = [&](const std::int32_t* p) {
            return rescale(requant_bias<A, BiasMode>(I::load_unaligned(p), alo, ahi, bias), vm);
        };
        std::size_t i = 0;
        for (; i + block <= n; i += block)
            narrow4_clamp<Signed, A>(value(acc + i), value(acc + i + lanes), value(acc + i + 2 * lanes),
                                     value(acc + i + 3 * lanes), zp, lo, hi, out + i, A{});
        if (i < n) {
            alignas(64) std::int32_t at[block] = {};
            alignas(64) std::uint8_t ot[block];
            std::memcpy(at, acc + i, (n - i) * sizeof(std::int32_t));
            narrow4_clamp<Signed, A>(value(at), value(at + lanes), value(at + 2 * lanes), value(at + 3 * lanes), zp,
                                     lo, hi, ot, A{});
            std::memcpy(out + i, ot, n - i);
        }
    }
    LOWBIT_FORCE_INLINE void run(std::size_t c, const std::int32_t* acc, std::uint8_t* out, std::size_t n) const noexcept {
        const std::int32_t bias = a.bias ? a.bias[c] : 0;
        const float m = a.multipliers[c];
        std::int32_t alo = 0, ahi = 0;
        bias_bounds(bias, alo, ahi);
        switch (requant_bias_mode<A>(alo, ahi, bias)) {
            case 0: run_bias<0>(alo, ahi, bias, m, acc, out, n); break;
            case 1: run_bias<1>(alo, ahi, bias, m, acc, out, n); break;
            case 2: run_bias<2>(alo, ahi, bias, m, acc, out, n); break;
            default: run_bias<3>(alo, ahi, bias, m, acc, out, n); break;
        }
    }
};

// Walks an [outer, channels, inner] tensor (see the file comment for the three cases).
template <class A, class Policy>
LOWBIT_FORCE_INLINE void requant_layout(const Policy& p, std::size_t outer, std::size_t channels, std::size_t inner,
                                        const std::int32_t* acc, std::uint8_t* out) noexcept {
    constexpr std::size_t B = Policy::block;
    constexpr std::size_t cap = requant_table_cap;
    const std::size_t w = channels * inner;  // one row of the layout
    const std::size_t n = outer * w;
    if (n == 0) return;
    if (channels == 1) {
        p.run(0, acc, out, n);
        return;
    }
    if (inner >= 2 * B) {
        for (std::size_t o = 0; o < outer; ++o)
            for (std::size_t c = 0; c < channels; ++c) {
                const std::size_t k = (o * channels + c) * inner;
                p.run(c, acc + k, out + k, inner);
            }
        return;
    }
    typename Policy::table tb;
    alignas(64) std::int32_t at[B] = {};
    alignas(64) std::uint8_t ot[B];
    if (w <= cap) {  // periodic: entry t describes row position t % w
        for (std::size_t t = 0, c = 0, i = 0; t < w + B; ++t) {
            p.fill(tb, t, c);
            if (++i == inner) {
                i = 0;
                if (++c == channels) c = 0;
            }
        }
        const std::size_t step = B % w;
        std::size_t off = 0, k = 0;
        for (; k + B <= n; k += B) {
            p.block_table(tb, off, acc + k, out + k);
            off += step;
            if (off >= w) off -= w;
        }
        if (k < n) {
            std::memcpy(at, acc + k, (n - k) * sizeof(std::int32_t));
            p.block_table(tb, off, at, ot);
            std::memcpy(out + k, ot, n - k);
        }
        return;
    }
    for (std::size_t o0 = 0; o0 < outer; o0 += requant_row_block) {  // column segments of cap elements
        const std::size_t o1 = outer - o0 < requant_row_block ? outer : o0 + requant_row_block;
        for (std::size_t j0 = 0; j0 < w; j0 += cap) {
            const std::size_t len = w - j0 < cap ? w - j0 : cap;
            const std::size_t padded = (len + B - 1) / B * B;
            std::size_t c = j0 / inner, i = j0 % inner;
            for (std::size_t t = 0; t < padded; ++t) {  // entries past len repeat the last channel
                p.fill(tb, t, c);
                if (t + 1 < len && ++i == inner) {
                    i = 0;
                    ++c;
                }
            }
            for (std::size_t o = o0; o < o1; ++o) {
                const std::size_t base = o * w + j0;
                std::size_t t = 0;
                for (; t + B <= len; t += B) p.block_table(tb, t, acc + base + t, out + base + t);
                if (t < len) {
                    std::memcpy(at, acc + base + t, (len - t) * sizeof(std::int32_t));
                    p.block_table(tb, t, at, ot);
                    std::memcpy(out + base + t, ot, len - t);
                }
            }
        }
    }
}

#endif  // LOWBIT_HAS_XSIMD

/// Fixed-point requantize loop, s8 (Signed) or u8 output, any [outer, channels, inner]
/// layout. Instantiated per ISA (dispatch.hpp); no checks here.
template <class A, bool Signed>
void requantize_loop(const requant_args& a, const std::int32_t* acc, std::uint8_t* out) noexcept {
#if LOWBIT_HAS_XSIMD
    requant_layout<A>(requant_policy<A, Signed>{a}, a.outer, a.channels, a.inner, acc, out);
#else
    (void)a, (void)acc, (void)out;
#endif
}

/// Float-multiplier requantize loop, s8 / u8, any layout. No checks here.
template <class A, bool Signed>
void requantize_float_loop(const requant_float_args& a, const std::int32_t* acc, std::uint8_t* out) noexcept {
#if LOWBIT_HAS_XSIMD
    requant_layout<A>(requant_float_policy<A, Signed>{a}, a.outer, a.channels, a.inner, acc, out);
#else
    (void)a, (void)acc, (void)out;
#endif
}

// The [outer, channels, inner] of a validated layout (per tensor: 1, 1, numel).
inline void requant_shape(const quant_layout& l, std::size_t& outer, std::size_t& channels, std::size_t& inner) noexcept {
    if (l.granularity == granularity::per_tensor) {
        outer = 1, channels = 1, inner = l.numel;
    } else {
        outer = l.outer, channels = l.channels, inner = l.inner;
    }
}

template <class Scheme>
constexpr bool requant_simd_format() noexcept {
    return std::is_same<typename Scheme::format, s8>::value || std::is_same<typename Scheme::format, u8>::value;
}

}  // namespace detail

/// Fixed-point requantize (TFLite MultiplyByQuantizedMultiplier, double or single rounding,
/// bias and clamp fused), bit-identical to lowbit::ref::requantize with requantize_params
/// (same contract and errors). SIMD for s8 / u8 per-tensor and per-channel (any axis); s4,
/// u4, s32 and per-group schemes take the reference path.
template <class Arch = default_arch, class Scheme>
status requantize(const Scheme& s, const shape& shp, const requantize_params& p, span<const std::int32_t> acc,
                  span<typename Scheme::storage_type> out) {
    using F = typename Scheme::format;
    if constexpr (std::is_same<Arch, scalar_arch>::value || !detail::requant_simd_format<Scheme>()) {
        return ref::requantize(s, shp, p, acc, out);
    } else {
        if (s.granularity() == granularity::per_group) return ref::requantize(s, shp, p, acc, out);
        const result<quant_layout> l = lowbit::detail::prepare_requantize(s, shp, p, acc.size(), out.size());
        LOWBIT_DETAIL_TRY(l.status());
        LOWBIT_DETAIL_TRY(lowbit::detail::check_quantized_multipliers(p.multipliers));
        LOWBIT_DETAIL_TRY(lowbit::detail::check_requantize_output(s, p));
        detail::requant_args a;
        a.multipliers = p.multipliers.data();
        a.bias = p.bias.empty() ? nullptr : p.bias.data();
        a.zero_point = p.zero_point;
        a.lo = lowbit::detail::clamp_bound(s, p.clamp_min);
        a.hi = lowbit::detail::clamp_bound(s, p.clamp_max);
        a.single_rounding = p.rounding == requant_rounding::single_rounding;
        detail::requant_shape(*l, a.outer, a.channels, a.inner);
        detail::requantize_loop<Arch, F::is_signed>(a, acc.data(), reinterpret_cast<std::uint8_t*>(out.data()));
        return {};
    }
}

/// Float-multiplier requantize, bit-identical to lowbit::ref::requantize with
/// requantize_float_params (same contract and errors). SIMD for s8 / u8 per-tensor and
/// per-channel; s4, u4, s32 and per-group schemes take the reference path.
template <class Arch = default_arch, class Scheme>
status requantize(const Scheme& s, const shape& shp, const requantize_float_params& p, span<const std::int32_t> acc,
                  span<typename Scheme::storage_type> out) {
    using F = typename Scheme::format;
    if constexpr (std::is_same<Arch, scalar_arch>::value || !detail::requant_simd_format<Scheme>()) {
        return ref::requantize(s, shp, p, acc, out);
    } else {
        if (s.granularity() == granularity::per_group) return ref::requantize(s, shp, p, acc, out);
        const result<quant_layout> l = lowbit::detail::prepare_requantize(s, shp, p, acc.size(), out.size());
        LOWBIT_DETAIL_TRY(l.status());
        LOWBIT_DETAIL_TRY(lowbit::detail::check_float_multipliers(p.multipliers));
        LOWBIT_DETAIL_TRY(lowbit::detail::check_requantize_output(s, p));
        detail::requant_float_args a;
        a.multipliers = p.multipliers.data();
        a.bias = p.bias.empty() ? nullptr : p.bias.data();
        a.zero_point = p.zero_point;
        a.lo = lowbit::detail::clamp_bound(s, p.clamp_min);
        a.hi = lowbit::detail::clamp_bound(s, p.clamp_max);
        detail::requant_shape(*l, a.outer, a.channels, a.inner);
        detail::requantize_float_loop<Arch, F::is_signed>(a, acc.data(), reinterpret_cast<std::uint8_t*>(out.data()));
        return {};
    }
}

}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_REQUANTIZE_HPP

/// Explicit instantiations (X empty) or declarations (X = extern) of this header's loops for
/// architecture A; used by LOWBIT_KERNELS_INSTANTIATE / LOWBIT_KERNELS_EXTERN (dispatch.hpp).
#define LOWBIT_DETAIL_REQUANTIZE_LOOPS(X, A)                                                                   \
    X template void detail::requantize_loop<A, true>(const detail::requant_args&, const std::int32_t*,         \
                                                     std::uint8_t*) noexcept;                                  \
    X template void detail::requantize_loop<A, false>(const detail::requant_args&, const std::int32_t*,        \
                                                      std::uint8_t*) noexcept;                                 \
    X template void detail::requantize_float_loop<A, true>(const detail::requant_float_args&,                  \
                                                           const std::int32_t*, std::uint8_t*) noexcept;       \
    X template void detail::requantize_float_loop<A, false>(const detail::requant_float_args&,                 \
                                                            const std::int32_t*, std::uint8_t*) noexcept;
