// lowbit/kernels/per_channel.hpp: SIMD quantize, dequantize, fake-quantize and its backward
// for tensors with one (scale, zero-point) per channel or per group (and per-tensor schemes
// given a shape), bit-identical to lowbit::ref's shape overloads (core/quantize.hpp,
// core/fake_quantize.hpp), same signatures, checks and errors, plus an architecture
// template parameter:
//
//   lowbit::kernels::quantize(w_scheme, lowbit::shape{N, K}, {scales, zero_points}, w, q);
//
// How it works. The [outer, C, inner] view of layout.hpp cuts the flat element order into
// segments that either share one parameter (broadcast: per-channel with inner > 1, e.g. a
// [C, K] weight or NCHW maps; per-group along the innermost axis, e.g. [N, K] in groups of 32
// along K) or use a contiguous run of parameters (per-channel along the innermost axis, e.g.
// [N, C] activations; per-group with inner > 1). Every register gets its constants (scale,
// 1 / scale, zero-point) lane by lane, chosen by setup() for the segment length S and L lanes:
// broadcast in registers for long segments; switched or blended per register for segments of
// a few registers; spread over the lanes by a swizzle for groups of 2, 4 or 8 < L; loaded from
// a stack table for contiguous runs (long rows are walked a 512-parameter stretch at a time
// across all rows, so each 1 / scale is computed once) and for short repeating patterns.
// Per-parameter constants come from a stack table refilled 512 parameters at a time. A
// segment's last partial register is recomputed overlapping the one before, its input read
// before anything is stored (so y may alias x); only spans shorter than a register go through
// a zero-padded copy. Parameter checks are vectorized too; on any failure the reference's
// checks run and report it exactly as lowbit::ref does.
//
// Each lane computes element_quantizer's arithmetic exactly: inv = 1.0f / scale (an IEEE
// division, scalar or SIMD: the same bits as the reference), x * inv (torch) or x / scale
// (tflite), round, + zero-point, clamp; dequantize float(q - zero_point) * scale. 4-bit
// formats go through a stack buffer of bytes, a chunk of flat indices starting at an even
// index at a time, packed after (unpacked before). Stochastic rounding and s32 take the
// reference path.
#ifndef LOWBIT_KERNELS_PER_CHANNEL_HPP
#define LOWBIT_KERNELS_PER_CHANNEL_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "../core/fake_quantize.hpp"
#include "../core/layout.hpp"
#include "../core/quantize.hpp"
#include "arch.hpp"
#include "simd.hpp"
#include "arm/bytes.hpp"
#include "arm/narrow.hpp"
#include "x86/bytes.hpp"
#include "x86/narrow.hpp"

#if defined(__GNUC__) || defined(__clang__)
#define LOWBIT_DETAIL_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define LOWBIT_DETAIL_NOINLINE __declspec(noinline)
#else
#define LOWBIT_DETAIL_NOINLINE
#endif

namespace lowbit {
namespace kernels {
namespace detail {

/// How parameters are laid along the flat index, as segments of `seg` elements.
enum class param_walk : std::uint8_t {
    single,        ///< one parameter for every element (per_tensor, or a single channel / group)
    channel_runs,  ///< per_channel, inner > 1: segment i uses parameter i % C (broadcast)
    group_runs,    ///< per_group along the innermost axis: segment i uses parameter i (broadcast)
    channel_rows,  ///< per_channel, inner == 1 (or groups of 1): a segment uses parameters 0..seg-1
    group_rows,    ///< per_group, inner > 1: segment i = (o, c) uses (o * (C / g) + c / g) * inner + 0..seg-1
};

/// Everything the per-channel loops need, computed once per call by the public functions.
struct channel_consts {
    const float* scales = nullptr;
    const std::int32_t* zero_points = nullptr;  ///< nullptr: every parameter uses `zero_point`
    std::int32_t zero_point = 0;                ///< the symmetric scheme's implicit zero-point
    float qmin = 0.0f, qmax = 0.0f;
    bool divide = false;     ///< tflite profile: x / scale
    bool half_away = false;  ///< rounding::half_away (else half_even)
    param_walk walk = param_walk::single;
    std::size_t numel = 0;
    std::size_t params = 1;    ///< number of (scale, zero-point) pairs
    std::size_t seg = 1;       ///< segment length
    std::size_t channels = 1;  ///< C (channel_runs, group_rows)
    std::size_t group = 1;     ///< g (group_rows)
    std::size_t inner = 1;     ///< (group_rows)

    template <class Scheme>
    static channel_consts make(const Scheme& s, const quant_layout& l, const qparams_view& qp) noexcept {
        channel_consts c;
        c.scales = qp.scales.data();
        c.zero_points = qp.zero_points.empty() ? nullptr : qp.zero_points.data();
        c.zero_point = s.symmetric_zero_point();
        c.qmin = static_cast<float>(s.qmin());
        c.qmax = static_cast<float>(s.qmax());
        c.divide = s.profile() == profile::tflite;
        c.half_away = s.rounding() == rounding::half_away;
        c.numel = l.numel;
        c.params = l.param_count;
        c.channels = l.channels;
        c.group = l.group_size;
        c.inner = l.inner;
        if (l.param_count == 1) {
            c.walk = param_walk::single;
            c.seg = l.numel;
        } else if (l.granularity == granularity::per_channel) {
            c.walk = l.inner > 1 ? param_walk::channel_runs : param_walk::channel_rows;
            c.seg = l.inner > 1 ? l.inner : l.channels;
        } else if (l.group_size == 1) {  // element k uses parameter k
            c.walk = param_walk::channel_rows;
            c.seg = l.numel;
        } else {
            c.walk = l.inner > 1 ? param_walk::group_rows : param_walk::group_runs;
            c.seg = l.inner > 1 ? l.inner : l.group_size;
        }
        return c;
    }
};

#if LOWBIT_HAS_XSIMD
namespace pc {

/// The profile's choices as constants, so no run-time test is left in the inner loops.
template <bool Divide, bool HalfAway>
struct numerics {
    static constexpr bool divide = Divide;
    static constexpr bool half_away = HalfAway;
};

/// One register's constants, lane by lane.
template <class A>
struct lane_consts {
    fbatch<A> scale, inv, zp;
};

/// element_quantizer (core/quantize.hpp) with per-lane constants: simd.hpp's operations.
template <class A, class N>
struct quantizer {
    fbatch<A> qmin, qmax;

    /// round(x * inv) or round(x / scale) (NaN stays NaN).
    LOWBIT_FORCE_INLINE fbatch<A> rounded(fbatch<A> x, const lane_consts<A>& c) const noexcept {
        const fbatch<A> v = N::divide ? fdiv<A>(x, c.scale) : x * c.inv;
        return N::half_away ? round_half_away<A>(v) : round_even<A>(v);
    }
    /// zero_point + rounded (the value the straight-through mask tests).
    LOWBIT_FORCE_INLINE fbatch<A> unclamped(fbatch<A> x, const lane_consts<A>& c) const noexcept {
        return rounded(x, c) + c.zp;
    }
    /// The quantized value in [qmin, qmax] as a float; NaN -> zero-point (its rounded value is
    /// replaced by 0 before the zero-point is added, so zp is read once).
    LOWBIT_FORCE_INLINE fbatch<A> quantized(fbatch<A> x, const lane_consts<A>& c) const noexcept {
        const fbatch<A> u = xsimd::select(xsimd::isnan(x), fbatch<A>(0.0f), rounded(x, c)) + c.zp;
        return xsimd::min(xsimd::max(u, qmin), qmax);
    }
    /// The same from an unclamped value u of x (when the mask is wanted too).
    LOWBIT_FORCE_INLINE fbatch<A> quantized(fbatch<A> x, fbatch<A> u, const lane_consts<A>& c) const noexcept {
        return xsimd::select(xsimd::isnan(x), c.zp, xsimd::min(xsimd::max(u, qmin), qmax));
    }
    /// Straight-through mask from an unclamped value: qmin <= u <= qmax (false for NaN, +-Inf).
    LOWBIT_FORCE_INLINE xsimd::batch_bool<float, A> in_range(fbatch<A> u) const noexcept {
        return (u >= qmin) && (u <= qmax);
    }
};

template <class A>
LOWBIT_FORCE_INLINE ibatch<A> mask_01(xsimd::batch_bool<float, A> m) noexcept {
    return xsimd::batch_cast<std::int32_t>(xsimd::select(m, fbatch<A>(1.0f), fbatch<A>(0.0f)));
}

/// How a call walks its parameters (setup() chooses; see drive()).
enum class mode : std::uint8_t {
    aligned,   ///< broadcast segments of 1 to 15 whole registers: constants chosen per register
    straddle,  ///< broadcast segments of L < S < 8L: a register spanning two blends their constants
    expand,    ///< groups of S | L along the innermost axis: L / S parameters spread over a register
    segments,  ///< segment by segment, the last partial register overlapping
    periodic,  ///< a repeating pattern held once in the lane tables
    windows,   ///< lane tables refilled for every window of W elements
};

/// Stack tables. Lane tables: per-lane constants of a window of flat elements, of one period
/// of a repeating pattern, or of a stretch of a contiguous segment's parameters. Parameter
/// table: constants of consecutive parameters, for the broadcast walks.
template <class A>
struct tables {
    static constexpr std::size_t L = fbatch<A>::size;
    static constexpr std::size_t B = 4 * L;  // elements per block
    static constexpr std::size_t W = 512;    // window / stretch / chunk, a multiple of 2 * B
    static constexpr std::size_t lanes = W + 3 * B;
    alignas(64) float scale[lanes];
    alignas(64) float inv[lanes];
    alignas(64) float zp[lanes];
    alignas(64) float pscale[W + L];
    alignas(64) float pinv[W + L];
    alignas(64) float pzp[W + L];
    bool need_inv = true;
    pc::mode mode = pc::mode::segments;
    std::size_t period = 0;                                // mode::periodic
    std::size_t key_first = ~std::size_t(0), key_len = 0;  // parameters in the lane tables (segments)
    std::size_t p_first = 0, p_len = 0;                    // parameters in the parameter table

    LOWBIT_FORCE_INLINE lane_consts<A> at(std::size_t j) const noexcept {
        return {fbatch<A>::load_unaligned(scale + j), fbatch<A>::load_unaligned(inv + j),
                fbatch<A>::load_unaligned(zp + j)};
    }
};

// s / inv / z [0, len) <- parameters [first, first + len), with SIMD division (exact).
template <class A>
LOWBIT_FORCE_INLINE void load_params(const channel_consts& cc, bool need_inv, std::size_t first, std::size_t len,
                                     float* s, float* inv, float* z) noexcept {
    constexpr std::size_t L = tables<A>::L;
    const float* src = cc.scales + first;
    std::size_t j = 0;
    for (; j + L <= len; j += L) {
        const fbatch<A> sv = fbatch<A>::load_unaligned(src + j);
        sv.store_unaligned(s + j);
        (need_inv ? fdiv<A>(fbatch<A>(1.0f), sv) : fbatch<A>(1.0f)).store_unaligned(inv + j);
        const fbatch<A> zv = cc.zero_points != nullptr
                                 ? xsimd::batch_cast<float>(ibatch<A>::load_unaligned(cc.zero_points + first + j))
                                 : fbatch<A>(static_cast<float>(cc.zero_point));
        zv.store_unaligned(z + j);
    }
    for (; j < len; ++j) {
        s[j] = src[j];
        inv[j] = need_inv ? 1.0f / src[j] : 1.0f;  // exactly element_quantizer's inv_scale
        z[j] = static_cast<float>(cc.zero_points != nullptr ? cc.zero_points[first + j] : cc.zero_point);
    }
}

// Lane tables [d, d + len) <- parameters [first, first + len); the B lanes after <- benign
// constants (scale 1, zero-point 0) for the unused lanes of a partial register.
template <class A>
LOWBIT_FORCE_INLINE void fill_lanes(tables<A>& t, const channel_consts& cc, std::size_t d, std::size_t first,
                                    std::size_t len) noexcept {
    load_params<A>(cc, t.need_inv, first, len, t.scale + d, t.inv + d, t.zp + d);
    for (std::size_t e = d + len; e < d + len + tables<A>::B; e += tables<A>::L) {
        fbatch<A>(1.0f).store_unaligned(t.scale + e);
        fbatch<A>(1.0f).store_unaligned(t.inv + e);
        fbatch<A>(0.0f).store_unaligned(t.zp + e);
    }
}

// Parameter table <- parameters [p, p + W) (fewer at the end), then L benign entries. Kept
// out of line: it is rare, and inlined it would crowd the registers of the loops around it.
template <class A>
LOWBIT_DETAIL_NOINLINE void refill_params(tables<A>& t, const channel_consts& cc, std::size_t p) noexcept {
    t.p_first = p;
    t.p_len = cc.params - p < tables<A>::W ? cc.params - p : tables<A>::W;
    load_params<A>(cc, t.need_inv, p, t.p_len, t.pscale, t.pinv, t.pzp);
    for (std::size_t j = t.p_len; j < t.p_len + tables<A>::L; ++j) t.pscale[j] = t.pinv[j] = 1.0f, t.pzp[j] = 0.0f;
}

// Makes the parameter table hold parameters [p, p + count) (count <= L); returns p's index in
// it. L entries from there are always initialized.
template <class A>
LOWBIT_FORCE_INLINE std::size_t param_index(tables<A>& t, const channel_consts& cc, std::size_t p,
                                            std::size_t count) noexcept {
    if (p - t.p_first >= t.p_len || p - t.p_first + count > t.p_len) refill_params<A>(t, cc, p);
    return p - t.p_first;
}

// The constants of parameter p, broadcast, from the parameter table.
template <class A>
LOWBIT_FORCE_INLINE lane_consts<A> param_consts(tables<A>& t, const channel_consts& cc, std::size_t p) noexcept {
    const std::size_t j = param_index<A>(t, cc, p, 1);
    return {fbatch<A>(t.pscale[j]), fbatch<A>(t.pinv[j]), fbatch<A>(t.pzp[j])};
}

/// Where the flat walk is: segment index i and, for the walks that need them, its channel
/// c = i % C, c / g, c % g and o = i / C.
template <class A>
struct cursor {
    std::size_t i = 0, c = 0, cg = 0, cr = 0, o = 0;

    LOWBIT_FORCE_INLINE void start(const channel_consts& cc, std::size_t seg_index) noexcept {
        i = seg_index;
        if (cc.walk == param_walk::channel_runs || cc.walk == param_walk::group_rows) {
            c = i % cc.channels;
            o = i / cc.channels;
            cg = c / cc.group;
            cr = c % cc.group;
        }
    }
    LOWBIT_FORCE_INLINE void next(const channel_consts& cc) noexcept {
        ++i;
        if (cc.walk == param_walk::channel_runs || cc.walk == param_walk::group_rows) {
            if (++cr == cc.group) cr = 0, ++cg;
            if (++c == cc.channels) c = 0, cg = 0, cr = 0, ++o;
        }
    }
    LOWBIT_FORCE_INLINE bool broadcast(const channel_consts& cc) const noexcept {
        return cc.walk == param_walk::single || cc.walk == param_walk::channel_runs ||
               cc.walk == param_walk::group_runs;
    }
    // The parameter of a broadcast segment.
    LOWBIT_FORCE_INLINE std::size_t param(const channel_consts& cc) const noexcept {
        return cc.walk == param_walk::single ? 0 : cc.walk == param_walk::channel_runs ? c : i;
    }
    // The first parameter of a contiguous segment.
    LOWBIT_FORCE_INLINE std::size_t base(const channel_consts& cc) const noexcept {
        return cc.walk == param_walk::channel_rows ? 0 : (o * (cc.channels / cc.group) + cg) * cc.inner;
    }
};

// Lane tables <- parameters [first, first + len) (a stretch of a contiguous segment).
template <class A>
LOWBIT_DETAIL_NOINLINE void refill_lanes(tables<A>& t, const channel_consts& cc, std::size_t first,
                                         std::size_t len) noexcept {
    fill_lanes<A>(t, cc, 0, first, len);
    t.key_first = first;
    t.key_len = len;
}

// Lane tables [0, f1 - f0) <- the constants of flat elements [f0, f1), plus B benign lanes.
// Needs f1 - f0 <= W + B; broadcast stores may run up to L - 1 lanes past a segment.
template <class A>
LOWBIT_DETAIL_NOINLINE void fill_window(tables<A>& t, const channel_consts& cc, std::size_t f0, std::size_t f1) noexcept {
    constexpr std::size_t L = tables<A>::L;
    cursor<A> cur;
    cur.start(cc, f0 / cc.seg);
    std::size_t a = f0;
    while (a < f1) {
        const std::size_t seg_start = cur.i * cc.seg;
        const std::size_t e = seg_start + cc.seg < f1 ? seg_start + cc.seg : f1;
        const std::size_t d = a - f0;
        if (cur.broadcast(cc)) {
            const lane_consts<A> c = param_consts<A>(t, cc, cur.param(cc));
            for (std::size_t j = 0; j < e - a; j += L) {
                c.scale.store_unaligned(t.scale + d + j);
                c.inv.store_unaligned(t.inv + d + j);
                c.zp.store_unaligned(t.zp + d + j);
            }
        } else {
            load_params<A>(cc, t.need_inv, cur.base(cc) + (a - seg_start), e - a, t.scale + d, t.inv + d, t.zp + d);
        }
        a = e;
        cur.next(cc);
    }
    fill_lanes<A>(t, cc, f1 - f0, 0, 0);  // benign lanes after the window
}

// Sources of per-register constants, asked for registers at increasing flat indices k.
template <class A>
struct uniform_src {
    lane_consts<A> c;
    LOWBIT_FORCE_INLINE const lane_consts<A>& at(std::size_t) const noexcept { return c; }
};
template <class A>
struct table_src {  // lane tables indexed from flat element `origin`
    const tables<A>& t;
    std::size_t origin;
    LOWBIT_FORCE_INLINE lane_consts<A> at(std::size_t k) const noexcept { return t.at(k - origin); }
};
template <class A>
struct periodic_src {  // lane tables hold one period p (>= B) plus B lanes; w = k's period start
    const tables<A>& t;
    std::size_t p, w;
    LOWBIT_FORCE_INLINE lane_consts<A> at(std::size_t k) noexcept {
        std::size_t off = k - w;
        if (off >= p) {
            const std::size_t whole = off < 2 * p ? p : off - off % p;
            w += whole;
            off -= whole;
        }
        return t.at(off);
    }
};

template <class A>
struct aligned_src {  // broadcast segments of a multiple of L elements; registers start at multiples of L
    tables<A>& t;
    const channel_consts& cc;
    std::size_t wrap, p, seg_end;  // parameters run p, p + 1, ... and wrap to 0 at `wrap`
    lane_consts<A> c;

    LOWBIT_FORCE_INLINE aligned_src(tables<A>& tt, const channel_consts& ccc, std::size_t k0) noexcept
        : t(tt), cc(ccc) {
        const std::size_t i = k0 / cc.seg;
        const bool runs = cc.walk == param_walk::channel_runs;
        wrap = runs ? cc.channels : cc.params;
        p = cc.walk == param_walk::single ? 0 : runs ? i % cc.channels : i;
        seg_end = (i + 1) * cc.seg;
        c = param_consts<A>(t, cc, p);
    }
    LOWBIT_FORCE_INLINE const lane_consts<A>& at(std::size_t k) noexcept {
        if (k >= seg_end) {  // registers never straddle segments
            seg_end += cc.seg;
            p = p + 1 == wrap ? 0 : p + 1;
            c = param_consts<A>(t, cc, p);
        }
        return c;
    }
};

template <class A>
struct straddle_src {  // broadcast segments of L < S < 8L elements; a register may span two of them
    static constexpr std::size_t L = tables<A>::L;
    tables<A>& t;
    const channel_consts& cc;
    std::size_t wrap, p, seg_end;
    lane_consts<A> c, cn;  // this segment's constants and the next one's
    fbatch<A> iota;

    LOWBIT_FORCE_INLINE straddle_src(tables<A>& tt, const channel_consts& ccc, std::size_t k0) noexcept
        : t(tt), cc(ccc) {
        const std::size_t i = k0 / cc.seg;
        const bool runs = cc.walk == param_walk::channel_runs;
        wrap = runs ? cc.channels : cc.params;
        p = cc.walk == param_walk::single ? 0 : runs ? i % cc.channels : i;
        seg_end = (i + 1) * cc.seg;
        c = param_consts<A>(t, cc, p);
        cn = param_consts<A>(t, cc, next(p));
        alignas(64) float lanes[L];
        for (std::size_t j = 0; j < L; ++j) lanes[j] = static_cast<float>(j);
        iota = fbatch<A>::load_aligned(lanes);
    }
    LOWBIT_FORCE_INLINE std::size_t next(std::size_t q) const noexcept {
        return q + 1 == wrap || q + 1 == cc.params ? 0 : q + 1;  // the last segment's "next" is unused
    }
    LOWBIT_FORCE_INLINE lane_consts<A> at(std::size_t k) noexcept {
        if (k >= seg_end) {  // S >= L: at most one segment boundary per register
            seg_end += cc.seg;
            p = next(p);
            c = cn;
            cn = param_consts<A>(t, cc, next(p));
        }
        if (k + L <= seg_end) return c;
        const auto first = iota < fbatch<A>(static_cast<float>(seg_end - k));  // lanes still in this segment
        return {xsimd::select(first, c.scale, cn.scale), xsimd::select(first, c.inv, cn.inv),
                xsimd::select(first, c.zp, cn.zp)};
    }
};

// Lane j of a register holding parameters p.. -> parameter p + j / S (a compile-time swizzle).
template <class A, std::size_t S, std::size_t... J>
LOWBIT_FORCE_INLINE fbatch<A> spread(fbatch<A> v, std::index_sequence<J...>) noexcept {
    return xsimd::swizzle(v, xsimd::batch_constant<xsimd::batch<std::uint32_t, A>, static_cast<std::uint32_t>(J / S)...>{});
}

template <class A, std::size_t S>
struct expand_src {  // groups of S (S < L, S divides L) along the innermost axis: element k uses parameter k / S
    static constexpr std::size_t L = tables<A>::L;
    tables<A>& t;
    const channel_consts& cc;
    LOWBIT_FORCE_INLINE lane_consts<A> at(std::size_t k) noexcept {  // k is a multiple of S
        const std::size_t j = param_index<A>(t, cc, k / S, L / S);
        using seq = std::make_index_sequence<L>;
        return {spread<A, S>(fbatch<A>::load_unaligned(t.pscale + j), seq{}),
                spread<A, S>(fbatch<A>::load_unaligned(t.pinv + j), seq{}),
                spread<A, S>(fbatch<A>::load_unaligned(t.pzp + j), seq{})};
    }
};

// Flat elements [a, e) of one operation: blocks of 4 registers, single registers, and a last
// partial register recomputed overlapping the previous one (its input read first, so an
// output may alias the input); fewer than L elements go through a zero-padded copy.
template <class A, class Op, class Src>
LOWBIT_FORCE_INLINE void run_range(const Op& op, Src& src, std::size_t a, std::size_t e) noexcept {
    constexpr std::size_t L = tables<A>::L, B = tables<A>::B;
    if (e - a < L) {
        if (a < e) op.store_partial(a, e - a, op.load_partial(a, e - a), src.at(a));
        return;
    }
    const auto last = op.load(e - L);
    for (; a + B <= e; a += B) op.block4(a, src);
    for (; a + L <= e; a += L) op.store(a, op.load(a), src.at(a));
    if (a < e) op.store(e - L, last, src.at(e - L));
}

/// Flat elements [a, e). For a stretch of a contiguous segment walked across segments
/// (intervals::blocked), also its segment's first element and first parameter.
struct interval {
    std::size_t a = 0, e = 0;
    std::size_t seg_start = ~std::size_t(0), base = 0;
};

// Chooses how to walk this call's parameters; fills the lane tables once for a repeating
// pattern.
template <class A>
LOWBIT_FORCE_INLINE void setup(tables<A>& t, const channel_consts& cc, bool need_inv) noexcept {
    constexpr std::size_t L = tables<A>::L, B = tables<A>::B;
    t.need_inv = need_inv;
    std::size_t p = 0;  // period of the pattern along the flat index (per-channel walks)
    if (cc.walk == param_walk::channel_rows) p = cc.seg;
    if (cc.walk == param_walk::channel_runs) p = cc.seg * cc.channels;  // <= numel
    if (p != 0 && p < B) p *= (B + p - 1) / p;  // at least a block: one subtraction wraps an offset
    const bool broadcast = cc.walk == param_walk::single || cc.walk == param_walk::channel_runs ||
                           cc.walk == param_walk::group_runs;
    if (broadcast && cc.seg % L == 0 && cc.seg < 4 * B) {
        t.mode = mode::aligned;
    } else if (broadcast && cc.seg % L != 0 && cc.seg > L && cc.seg < 8 * L && cc.walk != param_walk::single) {
        t.mode = mode::straddle;
    } else if (cc.walk == param_walk::group_runs && cc.seg < L && L % cc.seg == 0) {
        t.mode = mode::expand;
    } else if (cc.walk == param_walk::single || cc.seg % L == 0) {
        t.mode = mode::segments;
    } else if (p != 0 && p <= tables<A>::W) {
        t.mode = mode::periodic;
        t.period = p;
        fill_window<A>(t, cc, 0, p + B);
    } else {
        t.mode = cc.seg >= L ? mode::segments : mode::windows;
    }
}

// The elements of one interval, in order.
template <class A, class Op>
LOWBIT_FORCE_INLINE void drive(const channel_consts& cc, tables<A>& t, const Op& op, const interval& in) noexcept {
    constexpr std::size_t W = tables<A>::W, L = tables<A>::L;
    const std::size_t k0 = in.a, k1 = in.e;
    if (in.seg_start != ~std::size_t(0)) {  // one stretch of a contiguous segment
        const std::size_t off0 = k0 - in.seg_start;
        if (t.key_first != in.base + off0 || t.key_len != k1 - k0) refill_lanes<A>(t, cc, in.base + off0, k1 - k0);
        table_src<A> src{t, k0};
        run_range<A>(op, src, k0, k1);
    } else if (t.mode == mode::aligned) {
        aligned_src<A> src(t, cc, k0);
        run_range<A>(op, src, k0, k1);
    } else if (t.mode == mode::straddle) {
        straddle_src<A> src(t, cc, k0);
        run_range<A>(op, src, k0, k1);
    } else if (t.mode == mode::expand) {
        // intervals start at multiples of W and end at multiples of S, so do registers
        if constexpr (L > 2) {
            if (cc.seg == 2) {
                expand_src<A, 2> src{t, cc};
                run_range<A>(op, src, k0, k1);
            }
        }
        if constexpr (L > 4) {
            if (cc.seg == 4) {
                expand_src<A, 4> src{t, cc};
                run_range<A>(op, src, k0, k1);
            }
        }
        if constexpr (L > 8) {
            if (cc.seg == 8) {
                expand_src<A, 8> src{t, cc};
                run_range<A>(op, src, k0, k1);
            }
        }
    } else if (t.mode == mode::segments) {
        cursor<A> cur;
        cur.start(cc, k0 / cc.seg);
        std::size_t a = k0;
        while (a < k1) {
            const std::size_t seg_start = cur.i * cc.seg;
            const std::size_t e = seg_start + cc.seg < k1 ? seg_start + cc.seg : k1;
            if (cur.broadcast(cc)) {
                uniform_src<A> src{param_consts<A>(t, cc, cur.param(cc))};
                run_range<A>(op, src, a, e);
                a = e;
            } else {
                const std::size_t base = cur.base(cc);
                while (a < e) {  // stretches of at most W parameters, at multiples of W in the segment
                    const std::size_t off0 = (a - seg_start) - (a - seg_start) % W;
                    const std::size_t len = cc.seg - off0 < W ? cc.seg - off0 : W;
                    const std::size_t end = seg_start + off0 + len < e ? seg_start + off0 + len : e;
                    if (t.key_first != base + off0 || t.key_len != len) refill_lanes<A>(t, cc, base + off0, len);
                    table_src<A> src{t, seg_start + off0};
                    run_range<A>(op, src, a, end);
                    a = end;
                }
            }
            cur.next(cc);
        }
    } else if (t.mode == mode::periodic) {
        periodic_src<A> src{t, t.period, k0 - k0 % t.period};
        run_range<A>(op, src, k0, k1);
    } else {
        for (std::size_t w = k0; w < k1; w += W) {
            const std::size_t we = w + W < k1 ? w + W : k1;
            fill_window<A>(t, cc, w, we);
            table_src<A> src{t, w};
            run_range<A>(op, src, w, we);
        }
    }
}

// Flat intervals covering [0, numel) once, for the loop bodies: in order, in chunks of W when
// Chunked (4-bit staging; every chunk but the last has even length); but contiguous segments
// longer than W are walked a W-parameter stretch at a time across all the segments using
// those parameters, so each stretch's 1 / scale is computed once (Chunked: only for even
// segments, as every interval must start at an even index).
template <class A, bool Chunked>
struct intervals {
    static constexpr std::size_t W = tables<A>::W;
    std::size_t numel, seg = 0, segs = 0, run = 0, channels = 1, group = 1;
    bool blocked = false, rows = false;
    std::size_t k0 = 0, r0 = 0, off0 = 0, i = 0, base = 0;  // next interval

    LOWBIT_FORCE_INLINE intervals(const channel_consts& cc, const tables<A>& t) noexcept : numel(cc.numel) {
        rows = cc.walk == param_walk::channel_rows;
        const bool contiguous = rows || cc.walk == param_walk::group_rows;
        blocked = t.mode == mode::segments && contiguous && cc.seg > W && (!Chunked || cc.seg % 2 == 0);
        if (blocked) {
            seg = cc.seg;
            segs = cc.numel / cc.seg;
            run = rows ? segs : cc.group;  // consecutive segments sharing parameters
            channels = cc.channels;
            group = cc.group;
        }
    }
    LOWBIT_FORCE_INLINE bool next(interval& in) noexcept {
        if (blocked) {
            if (r0 >= segs) return false;
            if (i == r0 && off0 == 0)  // a new run: group_rows' segment r0 = (o, c), c % g == 0
                base = rows ? 0 : ((r0 / channels) * (channels / group) + (r0 % channels) / group) * seg;
            in.seg_start = i * seg;
            in.base = base;
            in.a = in.seg_start + off0;
            in.e = in.a + (seg - off0 < W ? seg - off0 : W);
            if (++i == r0 + run) {  // next stretch, then next run of segments
                i = r0;
                off0 += W;
                if (off0 >= seg) off0 = 0, r0 += run, i = r0;
            }
            return true;
        }
        if (k0 >= numel) return false;
        in.a = k0;
        in.e = Chunked && numel - k0 > W ? k0 + W : numel;
        k0 = in.e;
        return true;
    }
};

// ---- the four operations: load a register's input, compute and store its outputs ----

// x -> 8-bit values at out[k - base].
template <class A, class N, bool Signed>
struct quantize_op {
    static constexpr std::size_t L = fbatch<A>::size;
    quantizer<A, N> qz;
    const float* x;
    std::uint8_t* out;
    std::size_t base;

    LOWBIT_FORCE_INLINE fbatch<A> load(std::size_t k) const noexcept { return fbatch<A>::load_unaligned(x + k); }
    LOWBIT_FORCE_INLINE fbatch<A> load_partial(std::size_t k, std::size_t r) const noexcept {
        alignas(64) float t[L] = {};
        std::memcpy(t, x + k, r * sizeof(float));
        return fbatch<A>::load_aligned(t);
    }
    LOWBIT_FORCE_INLINE ibatch<A> q(fbatch<A> xv, const lane_consts<A>& c) const noexcept {
        return xsimd::batch_cast<std::int32_t>(qz.quantized(xv, c));
    }
    LOWBIT_FORCE_INLINE void store(std::size_t k, fbatch<A> xv, const lane_consts<A>& c) const noexcept {
        narrow_one<Signed, A>(q(xv, c), out + (k - base), A{});
    }
    LOWBIT_FORCE_INLINE void store_partial(std::size_t k, std::size_t r, fbatch<A> xv,
                                           const lane_consts<A>& c) const noexcept {
        alignas(64) std::uint8_t t[L];
        narrow_one<Signed, A>(q(xv, c), t, A{});
        std::memcpy(out + (k - base), t, r);
    }
    template <class Src>  // registers in order, asking src for each one's constants
    LOWBIT_FORCE_INLINE void block4(std::size_t k, Src& src) const noexcept {
        const ibatch<A> q0 = q(load(k), src.at(k));
        const ibatch<A> q1 = q(load(k + L), src.at(k + L));
        const ibatch<A> q2 = q(load(k + 2 * L), src.at(k + 2 * L));
        const ibatch<A> q3 = q(load(k + 3 * L), src.at(k + 3 * L));
        narrow4<Signed, A>(q0, q1, q2, q3, out + (k - base), A{});
    }
};

// 8-bit values at in[k - base] -> x.
template <class A, bool Signed>
struct dequantize_op {
    static constexpr std::size_t L = fbatch<A>::size;
    const std::uint8_t* in;
    std::size_t base;
    float* x;

    LOWBIT_FORCE_INLINE ibatch<A> load(std::size_t k) const noexcept { return widen_one<Signed, A>(in + (k - base), A{}); }
    LOWBIT_FORCE_INLINE ibatch<A> load_partial(std::size_t k, std::size_t r) const noexcept {
        alignas(64) std::uint8_t t[L] = {};
        std::memcpy(t, in + (k - base), r);
        return widen_one<Signed, A>(t, A{});
    }
    LOWBIT_FORCE_INLINE fbatch<A> dq(ibatch<A> q, const lane_consts<A>& c) const noexcept {
        return (xsimd::batch_cast<float>(q) - c.zp) * c.scale;  // q - zp exact: float(q - zp) * scale
    }
    LOWBIT_FORCE_INLINE void store(std::size_t k, ibatch<A> q, const lane_consts<A>& c) const noexcept {
        dq(q, c).store_unaligned(x + k);
    }
    LOWBIT_FORCE_INLINE void store_partial(std::size_t k, std::size_t r, ibatch<A> q,
                                           const lane_consts<A>& c) const noexcept {
        alignas(64) float t[L];
        dq(q, c).store_aligned(t);
        std::memcpy(x + k, t, r * sizeof(float));
    }
    template <class Src>
    LOWBIT_FORCE_INLINE void block4(std::size_t k, Src& src) const noexcept {
        for (std::size_t r = 0; r < 4; ++r) store(k + r * L, load(k + r * L), src.at(k + r * L));
    }
};

// x -> y = dequantize(quantize(x)) and, if Mask, mask bytes 1 / 0. y may alias x.
template <class A, class N, bool Mask>
struct fake_quantize_op {
    static constexpr std::size_t L = fbatch<A>::size;
    quantizer<A, N> qz;
    const float* x;
    float* y;
    std::uint8_t* mask;

    LOWBIT_FORCE_INLINE fbatch<A> load(std::size_t k) const noexcept { return fbatch<A>::load_unaligned(x + k); }
    LOWBIT_FORCE_INLINE fbatch<A> load_partial(std::size_t k, std::size_t r) const noexcept {
        alignas(64) float t[L] = {};
        std::memcpy(t, x + k, r * sizeof(float));
        return fbatch<A>::load_aligned(t);
    }
    // y, and the mask as int32 0 / 1 in m if Mask.
    LOWBIT_FORCE_INLINE fbatch<A> fq(fbatch<A> xv, const lane_consts<A>& c, ibatch<A>& m) const noexcept {
        if (Mask) {
            const fbatch<A> u = qz.unclamped(xv, c);
            m = mask_01<A>(qz.in_range(u));
            return (qz.quantized(xv, u, c) - c.zp) * c.scale;
        }
        return (qz.quantized(xv, c) - c.zp) * c.scale;
    }
    LOWBIT_FORCE_INLINE void store(std::size_t k, fbatch<A> xv, const lane_consts<A>& c) const noexcept {
        ibatch<A> m;
        fq(xv, c, m).store_unaligned(y + k);
        if (Mask) narrow_one<false, A>(m, mask + k, A{});
    }
    LOWBIT_FORCE_INLINE void store_partial(std::size_t k, std::size_t r, fbatch<A> xv,
                                           const lane_consts<A>& c) const noexcept {
        alignas(64) float yt[L];
        alignas(64) std::uint8_t mt[L];
        ibatch<A> m;
        fq(xv, c, m).store_aligned(yt);
        std::memcpy(y + k, yt, r * sizeof(float));
        if (Mask) {
            narrow_one<false, A>(m, mt, A{});
            std::memcpy(mask + k, mt, r);
        }
    }
    template <class Src>
    LOWBIT_FORCE_INLINE void block4(std::size_t k, Src& src) const noexcept {
        const fbatch<A> x0 = load(k), x1 = load(k + L), x2 = load(k + 2 * L), x3 = load(k + 3 * L);
        ibatch<A> m0, m1, m2, m3;
        fq(x0, src.at(k), m0).store_unaligned(y + k);  // y may alias x: all four are loaded
        fq(x1, src.at(k + L), m1).store_unaligned(y + k + L);
        fq(x2, src.at(k + 2 * L), m2).store_unaligned(y + k + 2 * L);
        fq(x3, src.at(k + 3 * L), m3).store_unaligned(y + k + 3 * L);
        if (Mask) narrow4<false, A>(m0, m1, m2, m3, mask + k, A{});
    }
};

// dx = mask(x) ? dy : dy * 0 (ref's pass_gradient). dx may alias dy.
template <class A, class N>
struct backward_op {
    static constexpr std::size_t L = fbatch<A>::size;
    struct input {
        fbatch<A> x, dy;
    };
    quantizer<A, N> qz;
    const float* x;
    const float* dy;
    float* dx;

    LOWBIT_FORCE_INLINE input load(std::size_t k) const noexcept {
        return {fbatch<A>::load_unaligned(x + k), fbatch<A>::load_unaligned(dy + k)};
    }
    LOWBIT_FORCE_INLINE input load_partial(std::size_t k, std::size_t r) const noexcept {
        alignas(64) float xt[L] = {};
        alignas(64) float dyt[L] = {};
        std::memcpy(xt, x + k, r * sizeof(float));
        std::memcpy(dyt, dy + k, r * sizeof(float));
        return {fbatch<A>::load_aligned(xt), fbatch<A>::load_aligned(dyt)};
    }
    LOWBIT_FORCE_INLINE fbatch<A> grad(const input& in, const lane_consts<A>& c) const noexcept {
        return xsimd::select(qz.in_range(qz.unclamped(in.x, c)), in.dy, in.dy * fbatch<A>(0.0f));  // ref's pass_gradient
    }
    LOWBIT_FORCE_INLINE void store(std::size_t k, const input& in, const lane_consts<A>& c) const noexcept {
        grad(in, c).store_unaligned(dx + k);
    }
    LOWBIT_FORCE_INLINE void store_partial(std::size_t k, std::size_t r, const input& in,
                                           const lane_consts<A>& c) const noexcept {
        alignas(64) float t[L];
        grad(in, c).store_aligned(t);
        std::memcpy(dx + k, t, r * sizeof(float));
    }
    template <class Src>
    LOWBIT_FORCE_INLINE void block4(std::size_t k, Src& src) const noexcept {
        for (std::size_t r = 0; r < 4; ++r) store(k + r * L, load(k + r * L), src.at(k + r * L));
    }
};

// ---- loop bodies; cc is the loop's local copy, so no output store can alias it ----

template <class A, class N, bool Signed, bool Packed>
LOWBIT_FORCE_INLINE void quantize_body(const channel_consts& cc, const float* x, std::uint8_t* q) noexcept {
    constexpr std::size_t B = tables<A>::B;
    tables<A> t;
    setup<A>(t, cc, !N::divide);
    const quantizer<A, N> qz{fbatch<A>(cc.qmin), fbatch<A>(cc.qmax)};
    if constexpr (!Packed) {
        const quantize_op<A, N, Signed> op{qz, x, q, 0};
        intervals<A, false> iv(cc, t);
        for (interval in; iv.next(in);) drive<A>(cc, t, op, in);
    } else {
        alignas(64) std::uint8_t stage[tables<A>::W + 2 * B];  // pack blocks: 2B bytes -> B
        intervals<A, true> iv(cc, t);
        for (interval in; iv.next(in);) {
            const quantize_op<A, N, Signed> op{qz, x, stage, in.a};
            drive<A>(cc, t, op, in);
            const std::size_t m = in.e - in.a;
            std::uint8_t* out = q + in.a / 2;
            std::size_t j = 0;
            for (; j + 2 * B <= m; j += 2 * B) pack_nibbles_block<A>(stage + j, out + j / 2, A{});
            if (j < m) {
                alignas(64) std::uint8_t packed[B];
                std::memset(stage + m, 0, j + 2 * B - m);  // also the padding nibble of an odd count
                pack_nibbles_block<A>(stage + j, packed, A{});
                std::memcpy(out + j / 2, packed, (m - j + 1) / 2);
            }
        }
    }
}

template <class A, bool Signed, bool Packed>
LOWBIT_FORCE_INLINE void dequantize_body(const channel_consts& cc, const std::uint8_t* q, float* x) noexcept {
    constexpr std::size_t B = tables<A>::B;
    tables<A> t;
    setup<A>(t, cc, false);
    if constexpr (!Packed) {
        const dequantize_op<A, Signed> op{q, 0, x};
        intervals<A, false> iv(cc, t);
        for (interval in; iv.next(in);) drive<A>(cc, t, op, in);
    } else {
        alignas(64) std::uint8_t stage[tables<A>::W + 2 * B];  // unpack blocks: B bytes -> 2B
        intervals<A, true> iv(cc, t);
        for (interval in; iv.next(in);) {
            const std::size_t bytes = (in.e - in.a + 1) / 2;
            const std::uint8_t* packed_in = q + in.a / 2;
            std::size_t j = 0;
            for (; j + B <= bytes; j += B) unpack_nibbles<Signed, A>(packed_in + j, stage + 2 * j, A{});
            if (j < bytes) {
                alignas(64) std::uint8_t packed[B] = {};
                std::memcpy(packed, packed_in + j, bytes - j);
                unpack_nibbles<Signed, A>(packed, stage + 2 * j, A{});
            }
            const dequantize_op<A, Signed> op{stage, in.a, x};
            drive<A>(cc, t, op, in);
        }
    }
}

template <class A, class N, bool Mask>
LOWBIT_FORCE_INLINE void fake_quantize_body(const channel_consts& cc, const float* x, float* y,
                                            std::uint8_t* mask) noexcept {
    tables<A> t;
    setup<A>(t, cc, !N::divide);
    const fake_quantize_op<A, N, Mask> op{{fbatch<A>(cc.qmin), fbatch<A>(cc.qmax)}, x, y, mask};
    intervals<A, false> iv(cc, t);
    for (interval in; iv.next(in);) drive<A>(cc, t, op, in);
}

template <class A, class N>
LOWBIT_FORCE_INLINE void backward_body(const channel_consts& cc, const float* x, const float* dy, float* dx) noexcept {
    tables<A> t;
    setup<A>(t, cc, !N::divide);
    const backward_op<A, N> op{{fbatch<A>(cc.qmin), fbatch<A>(cc.qmax)}, x, dy, dx};
    intervals<A, false> iv(cc, t);
    for (interval in; iv.next(in);) drive<A>(cc, t, op, in);
}

// Calls f(numerics<divide, half_away>{}) with the call's profile choices as constants.
template <class A, class F>
LOWBIT_FORCE_INLINE void with_numerics(const channel_consts& cc, F&& f) noexcept {
    if (cc.divide)
        cc.half_away ? f(numerics<true, true>{}) : f(numerics<true, false>{});
    else
        cc.half_away ? f(numerics<false, true>{}) : f(numerics<false, false>{});
}

}  // namespace pc
#endif  // LOWBIT_HAS_XSIMD

/// Per-channel / per-group quantize loop: cc.numel elements of x -> bytes (Packed = false)
/// or packed nibbles (Packed = true; the padding nibble of an odd count is 0). No checks.
template <class A, bool Signed, bool Packed>
void per_channel_quantize_loop(const channel_consts& consts, const float* x, std::uint8_t* q) noexcept {
#if LOWBIT_HAS_XSIMD
    const channel_consts cc = consts;
    pc::with_numerics<A>(cc, [&](auto n) { pc::quantize_body<A, decltype(n), Signed, Packed>(cc, x, q); });
#else
    (void)consts, (void)x, (void)q;
#endif
}

/// Per-channel / per-group dequantize loop: bytes or packed nibbles -> cc.numel floats.
template <class A, bool Signed, bool Packed>
void per_channel_dequantize_loop(const channel_consts& consts, const std::uint8_t* q, float* x) noexcept {
#if LOWBIT_HAS_XSIMD
    const channel_consts cc = consts;
    pc::dequantize_body<A, Signed, Packed>(cc, q, x);
#else
    (void)consts, (void)q, (void)x;
#endif
}

/// Per-channel / per-group fake-quantize forward loop (mask written if Mask). y may alias x.
template <class A, bool Mask>
void per_channel_fake_quantize_loop(const channel_consts& consts, const float* x, float* y,
                                    std::uint8_t* mask) noexcept {
#if LOWBIT_HAS_XSIMD
    const channel_consts cc = consts;
    pc::with_numerics<A>(cc, [&](auto n) { pc::fake_quantize_body<A, decltype(n), Mask>(cc, x, y, mask); });
#else
    (void)consts, (void)x, (void)y, (void)mask;
#endif
}

/// Per-channel / per-group straight-through backward loop: dx = mask(x) ? dy : dy * 0. dx may alias dy.
template <class A>
void per_channel_fake_quantize_backward_loop(const channel_consts& consts, const float* x, const float* dy,
                                             float* dx) noexcept {
#if LOWBIT_HAS_XSIMD
    const channel_consts cc = consts;
    pc::with_numerics<A>(cc, [&](auto n) { pc::backward_body<A, decltype(n)>(cc, x, dy, dx); });
#else
    (void)consts, (void)x, (void)dy, (void)dx;
#endif
}

/// True if every (scale, zero-point) passes check_qparams: scale > 0 and finite with a finite
/// 1 / scale (the same IEEE division), zero-point in [qmin, qmax] (zero_points may be null).
template <class A>
bool per_channel_params_ok(const float* scales, const std::int32_t* zero_points, std::size_t n, std::int32_t qmin,
                           std::int32_t qmax) noexcept {
#if LOWBIT_HAS_XSIMD
    constexpr std::size_t L = fbatch<A>::size;
    const fbatch<A> inf(lowbit::detail::inf_f), one(1.0f);
    xsimd::batch_bool<float, A> s_ok(true);
    xsimd::batch_bool<std::int32_t, A> z_ok(true);
    const auto check = [&](fbatch<A> s, ibatch<A> z) {
        s_ok = s_ok && (s > fbatch<A>(0.0f)) && (s < inf) && (fdiv<A>(one, s) < inf);
        z_ok = z_ok && (z >= ibatch<A>(qmin)) && (z <= ibatch<A>(qmax));
    };
    std::size_t i = 0;
    for (; i + L <= n; i += L)
        check(fbatch<A>::load_unaligned(scales + i),
              zero_points != nullptr ? ibatch<A>::load_unaligned(zero_points + i) : ibatch<A>(qmin));
    if (i < n) {
        alignas(64) float st[L];
        alignas(64) std::int32_t zt[L];
        for (std::size_t j = 0; j < L; ++j) {
            st[j] = i + j < n ? scales[i + j] : 1.0f;
            zt[j] = i + j < n && zero_points != nullptr ? zero_points[i + j] : qmin;
        }
        check(fbatch<A>::load_aligned(st), ibatch<A>::load_aligned(zt));
    }
    return xsimd::all(s_ok) && xsimd::all(z_ok);
#else
    (void)scales, (void)zero_points, (void)n, (void)qmin, (void)qmax;
    return false;
#endif
}

template <class Arch, class Scheme>
constexpr bool reference_only() noexcept {
    return std::is_same<Arch, scalar_arch>::value || std::is_same<typename Scheme::format, s32>::value;
}

// lowbit::detail::prepare(s, shp, qp) with the per-parameter checks vectorized; whenever a
// check fails, the reference's prepare runs and reports the first failure as it would.
template <class Arch, class Scheme>
result<quant_layout> prepare(const Scheme& s, const shape& shp, const qparams_view& qp) {
    LOWBIT_DETAIL_TRY(s.validate());
    const result<quant_layout> l = make_layout(s, shp);
    LOWBIT_DETAIL_TRY(l.status());
    const std::size_t n = l->param_count;
    const bool implicit = qp.zero_points.empty();
    const std::int32_t z0 = s.symmetric_zero_point();
    const bool zp_ok = implicit ? Scheme::sym != symmetry::affine && z0 >= s.qmin() && z0 <= s.qmax()
                                : qp.zero_points.size() == n;
    if (qp.scales.size() == n && zp_ok &&
        per_channel_params_ok<Arch>(qp.scales.data(), implicit ? nullptr : qp.zero_points.data(), n, s.qmin(),
                                    s.qmax()))
        return l;
    return lowbit::detail::prepare(s, shp, qp);
}

// The same with the buffer checks of lowbit::detail::prepare(s, shp, qp, x_size, q_size).
template <class Arch, class Scheme>
result<quant_layout> prepare(const Scheme& s, const shape& shp, const qparams_view& qp, std::size_t x_size,
                             std::size_t q_size) {
    const result<quant_layout> l = prepare<Arch>(s, shp, qp);
    LOWBIT_DETAIL_TRY(l.status());
    LOWBIT_DETAIL_CHECK(x_size == l->numel, errc::size_mismatch, "x.size()", x_size, "must equal shape's numel");
    LOWBIT_DETAIL_CHECK(q_size == Scheme::format::storage_size(x_size), errc::size_mismatch, "q.size()", q_size,
                        "must be Format::storage_size(x.size())");
    return l;
}

}  // namespace detail

/// Quantize a tensor of `shp` with per-channel / per-group (or, with one-entry views,
/// per-tensor) parameters; bit-identical to lowbit::ref::quantize(s, shp, qp, x, q), same
/// contract and errors (4-bit outputs packed in flat order, padding nibble 0).
template <class Arch = default_arch, class Scheme>
status quantize(const Scheme& s, const shape& shp, qparams_view qp, span<const float> x,
                span<typename Scheme::storage_type> q) {
    using F = typename Scheme::format;
    if constexpr (detail::reference_only<Arch, Scheme>()) {
        return ref::quantize(s, shp, qp, x, q);
    } else {
        if (s.rounding() == rounding::stochastic) return ref::quantize(s, shp, qp, x, q);
        const result<quant_layout> l = detail::prepare<Arch>(s, shp, qp, x.size(), q.size());
        LOWBIT_DETAIL_TRY(l.status());
        if (l->numel == 0) return {};
        detail::per_channel_quantize_loop<Arch, F::is_signed, F::is_packed>(
            detail::channel_consts::make(s, *l, qp), x.data(), reinterpret_cast<std::uint8_t*>(q.data()));
        return {};
    }
}

/// Dequantize a tensor of `shp`: x[k] = float(q[k] - zero_point) * scale with the element's
/// parameters; bit-identical to lowbit::ref::dequantize(s, shp, qp, q, x), same errors.
template <class Arch = default_arch, class Scheme>
status dequantize(const Scheme& s, const shape& shp, qparams_view qp, span<const typename Scheme::storage_type> q,
                  span<float> x) {
    using F = typename Scheme::format;
    if constexpr (detail::reference_only<Arch, Scheme>()) {
        return ref::dequantize(s, shp, qp, q, x);
    } else {
        const result<quant_layout> l = detail::prepare<Arch>(s, shp, qp, x.size(), q.size());
        LOWBIT_DETAIL_TRY(l.status());
        if (l->numel == 0) return {};
        detail::per_channel_dequantize_loop<Arch, F::is_signed, F::is_packed>(
            detail::channel_consts::make(s, *l, qp), reinterpret_cast<const std::uint8_t*>(q.data()), x.data());
        return {};
    }
}

/// Per-channel / per-group fake-quantize forward over a tensor of `shp`, with the optional
/// straight-through mask (x.size() bytes of 1 / 0); y may alias x exactly. Bit-identical to
/// lowbit::ref::fake_quantize(s, shp, qp, x, y, mask) (torch.fake_quantize_per_channel_affine).
template <class Arch = default_arch, class Scheme>
status fake_quantize(const Scheme& s, const shape& shp, qparams_view qp, span<const float> x, span<float> y,
                     span<std::uint8_t> mask = {}) {
    if constexpr (detail::reference_only<Arch, Scheme>()) {
        return ref::fake_quantize(s, shp, qp, x, y, mask);
    } else {
        if (s.rounding() == rounding::stochastic) return ref::fake_quantize(s, shp, qp, x, y, mask);
        const result<quant_layout> l = detail::prepare<Arch>(s, shp, qp);
        LOWBIT_DETAIL_TRY(l.status());
        LOWBIT_DETAIL_CHECK(x.size() == l->numel, errc::size_mismatch, "x.size()", x.size(),
                            "must equal shape's numel");
        LOWBIT_DETAIL_TRY(ref::detail_fq::check_sizes<Scheme>(x, y, mask));
        if (l->numel == 0) return {};
        const detail::channel_consts cc = detail::channel_consts::make(s, *l, qp);
        if (mask.empty())
            detail::per_channel_fake_quantize_loop<Arch, false>(cc, x.data(), y.data(), nullptr);
        else
            detail::per_channel_fake_quantize_loop<Arch, true>(cc, x.data(), y.data(), mask.data());
        return {};
    }
}

/// Per-channel / per-group straight-through backward: dx = mask(x) ? dy : dy * 0 (NaN dy stays NaN);
/// dx may alias dy exactly. Bit-identical to lowbit::ref::fake_quantize_backward(s, shp, qp, x, dy, dx).
template <class Arch = default_arch, class Scheme>
status fake_quantize_backward(const Scheme& s, const shape& shp, qparams_view qp, span<const float> x,
                              span<const float> dy, span<float> dx) {
    if constexpr (detail::reference_only<Arch, Scheme>()) {
        return ref::fake_quantize_backward(s, shp, qp, x, dy, dx);
    } else {
        if (s.rounding() == rounding::stochastic) return ref::fake_quantize_backward(s, shp, qp, x, dy, dx);
        const result<quant_layout> l = detail::prepare<Arch>(s, shp, qp);
        LOWBIT_DETAIL_TRY(l.status());
        LOWBIT_DETAIL_CHECK(x.size() == l->numel, errc::size_mismatch, "x.size()", x.size(),
                            "must equal shape's numel");
        LOWBIT_DETAIL_TRY(ref::detail_fq::check_grad_sizes<Scheme>(x, dy, dx));
        if (l->numel == 0) return {};
        detail::per_channel_fake_quantize_backward_loop<Arch>(detail::channel_consts::make(s, *l, qp), x.data(),
                                                              dy.data(), dx.data());
        return {};
    }
}

}  // namespace kernels
}  // namespace lowbit

#undef LOWBIT_DETAIL_NOINLINE

#endif  // LOWBIT_KERNELS_PER_CHANNEL_HPP

/// Explicit instantiations (X empty) or declarations (X = extern) of this header's loops for
/// architecture A; used by LOWBIT_KERNELS_INSTANTIATE / LOWBIT_KERNELS_EXTERN (dispatch.hpp).
#define LOWBIT_DETAIL_PER_CHANNEL_LOOPS(X, A)                                                                     \
    X template void detail::per_channel_quantize_loop<A, true, false>(const detail::channel_consts&, const float*, \
                                                                      std::uint8_t*) noexcept;                     \
    X template void detail::per_channel_quantize_loop<A, false, false>(const detail::channel_consts&,              \
                                                                       const float*, std::uint8_t*) noexcept;      \
    X template void detail::per_channel_quantize_loop<A, true, true>(const detail::channel_consts&, const float*,  \
                                                                     std::uint8_t*) noexcept;                      \
    X template void detail::per_channel_quantize_loop<A, false, true>(const detail::channel_consts&, const float*, \
                                                                      std::uint8_t*) noexcept;                     \
    X template void detail::per_channel_dequantize_loop<A, true, false>(const detail::channel_consts&,             \
                                                                        const std::uint8_t*, float*) noexcept;     \
    X template void detail::per_channel_dequantize_loop<A, false, false>(const detail::channel_consts&,            \
                                                                         const std::uint8_t*, float*) noexcept;    \
    X template void detail::per_channel_dequantize_loop<A, true, true>(const detail::channel_consts&,              \
                                                                       const std::uint8_t*, float*) noexcept;      \
    X template void detail::per_channel_dequantize_loop<A, false, true>(const detail::channel_consts&,             \
                                                                        const std::uint8_t*, float*) noexcept;     \
    X template void detail::per_channel_fake_quantize_loop<A, false>(const detail::channel_consts&, const float*,  \
                                                                     float*, std::uint8_t*) noexcept;              \
    X template void detail::per_channel_fake_quantize_loop<A, true>(const detail::channel_consts&, const float*,   \
                                                                    float*, std::uint8_t*) noexcept;               \
    X template void detail::per_channel_fake_quantize_backward_loop<A>(const detail::channel_consts&, const float*, \
                                                                       const float*, float*) noexcept;             \
    X template bool detail::per_channel_params_ok<A>(const float*, const std::int32_t*, std::size_t, std::int32_t, \
                                                     std::int32_t) noexcept;
