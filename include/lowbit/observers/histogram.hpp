// lowbit/observers/histogram.hpp: torch.ao.quantization's HistogramObserver - a running
// histogram of a tensor's values and an L2 search over it for the (min, max) that minimises
// the quantization error - in two modes:
//
//   histogram_mode::corrected (default)  torch's algorithm with three bugs of torch 1.13 fixed:
//       every value is binned on the real [min, max] (torch bins on int(min)..int(max): it
//       drops values outside that integer range, and when int(min) == int(max), e.g. for data
//       within (-1, 1), it bins a later batch on that batch's own range, not the histogram's);
//       a constant first batch is kept (torch discards it at the next call); and the search
//       uses the scheme's real number of levels, qmax - qmin + 1 (torch always assumes 256,
//       even for a 4-bit range). Everything else - the 128x upsample / combine when the range
//       grows, the float32 L2 error, the search steps - is torch's, operation for operation
//       (golden data: torch's own code with the three fixes, observer_histogram_corrected.txt).
//   histogram_mode::torch_1_13  torch 1.13's forward() and calculate_qparams() bit for bit on
//       the same batch sequence, bugs included (golden data: observer_histogram*.txt).
//
//   lowbit::histogram_observer<lowbit::scheme<lowbit::u8>> obs;   // 2048 bins, corrected
//   for (auto& batch : batches) obs.observe(batch);
//   lowbit::qparams qp = *obs.qparams();
//
// How torch computes, and so how this file computes (every intermediate in torch's dtype):
//   forward: batch min/max; first batch: histc over the batch range. Later batches: the
//     combined range is widened at the max end to a whole number of the old histogram's
//     bins / 128 (float32), the batch is binned on it with histc, and the old histogram is
//     upsampled 128x (counts copied), placed at round((old_min - new_min) / fine_width) and
//     summed back down with a float64 cumulative sum whose previous entry is rounded to
//     float32 before the difference is taken (torch stores it in a float32 tensor), / 128.
//   histc (torch's LINEAR_INTERPOLATION kernel): bin = trunc(f32(f32(f32(x - left) * bins) /
//     f32(right - left))), the right edge in the last bin, values outside [left, right] dropped.
//   search: torch.sum (ATen's cascade order, AVX2 lanes) of the histogram, a cumulative sum
//     (float64 accumulator, float32 entries), 1e-5 quantile steps in float64 compared in
//     float32, and for each candidate the L2 norm of torch's _compute_quantization_error in
//     float32 tensors, summed in ATen's order.
// Not how torch computes it: torch materialises bins * 128 and bins * downsample_rate arrays
// (gigabytes when the range grows 10^4-fold at once); here the combine is O(bins), a batch is
// read twice (its min / max with kernels::min_max, then its counts on the chosen grid with
// kernels::histogram, which bins with histc's formula), and the search's per-bin floor
// divisions are exact float comparisons, vectorised (GCC / clang vector extensions, 4 lanes
// with SSE2, 8 with AVX; LOWBIT_NO_VECTOR_EXTENSIONS selects the scalar code, same results).
// Batches are strided views (observer.hpp); a view gives the state of its contiguous copy.
//
// Not exactly mergeable. The histogram's bin edges depend on the order batches arrived in (each
// range growth re-bins the past approximately), so no merge of two observers can equal one
// observer in general. merge(other) therefore has defined, documented semantics: other's
// histogram is observed as if it were one more batch (its mass spread uniformly over each of
// its bins, as torch's own upsampling assumes), through the same combine path. It is not
// order-independent: merge(a, b) and merge(b, a) differ when the ranges differ. When both
// have the same range (e.g. every shard was first fed a batch holding the global min and
// max), merge is the bin-wise float sum, independent of order while counts stay below 2^24.
// For exactly shardable calibration keep a histogram with fixed bin edges (exact_histogram,
// calibration_methods.hpp) and run the same L2 search on it with histogram_l2_search().
//
// Freestanding: no heap, no <cmath>, no exceptions required. An observer holds Bins floats
// (8 KiB for 2048 bins); on the stack observe() uses about 12 x Bins bytes (24 KiB for 2048
// bins) plus 4 KiB for a non-contiguous view (core/strided.hpp), qparams() and merge() 8 x Bins
// bytes. Results do not depend on
// -ffp-contract or the instruction set: products that torch rounds before an addition are
// kept apart by register barriers (GCC, clang), and GCC compiles the vectorised float code with
// contraction off.
#ifndef LOWBIT_OBSERVERS_HISTOGRAM_HPP
#define LOWBIT_OBSERVERS_HISTOGRAM_HPP

#include <cstddef>
#include <cstdint>
#include <limits>

#include "observer.hpp"

// GCC fuses a * b + c across statements under -ffp-contract=fast (its default in GNU
// modes); every function below that does float arithmetic torch does unfused is compiled with
// contraction off. Clang ignores contraction pragmas under -ffp-contract=fast, so there
// detail::hist::fence() hides each product from the adder (and clang keeps the L2 norm loop
// scalar).
#if defined(__GNUC__) && !defined(__clang__)
#define LOWBIT_DETAIL_NO_FP_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define LOWBIT_DETAIL_NO_FP_CONTRACT
#endif

namespace lowbit {

/// Which numerics a histogram_observer follows (see the file comment).
enum class histogram_mode : std::uint8_t {
    corrected = 0,   ///< torch's algorithm, its 1.13 binning / constant-batch / 256-level bugs fixed
    torch_1_13 = 1,  ///< torch 1.13's HistogramObserver bit for bit, bugs included
};

constexpr const char* to_string(histogram_mode m) noexcept {
    return m == histogram_mode::corrected ? "corrected" : "torch_1_13";
}

/// A real range, as the L2 search returns it.
struct histogram_range {
    float min = 0.0f;
    float max = 0.0f;
};

namespace detail {
namespace hist {

constexpr std::uint64_t upsample = 128;  // torch's upsample_rate

/// Returns x unchanged but opaque to the optimiser, so a product cannot be fused into the
/// addition that consumes it, wherever the function using it is inlined (GCC / clang; the
/// functions below are also compiled with contraction off under GCC).
LOWBIT_FORCE_INLINE float fence(float x) noexcept {
#if defined(__GNUC__)
#if defined(__x86_64__) && defined(__SSE2__)
    __asm__("" : "+x"(x));
#elif defined(__aarch64__)
    __asm__("" : "+w"(x));
#else
    __asm__("" : "+m"(x));
#endif
#endif
    return x;
}

LOWBIT_FORCE_INLINE double fence(double x) noexcept {
#if defined(__GNUC__)
#if defined(__x86_64__) && defined(__SSE2__)
    __asm__("" : "+x"(x));
#elif defined(__aarch64__)
    __asm__("" : "+w"(x));
#else
    __asm__("" : "+m"(x));
#endif
#endif
    return x;
}

// Native-width vector code for the hot loops (4 float lanes with SSE2 / NEON, 8 with AVX),
// written with GCC / clang vector extensions: no intrinsics header, and the same IEEE
// operations as the scalar code, so the same bits. The norm loop uses it only under GCC,
// where contraction is off per function; the batch scan has no product feeding an addition,
// so clang uses it too. Vectors go by reference (by value they change the ABI without AVX).
#if defined(__GNUC__) && (defined(__SSE2__) || defined(__ARM_NEON)) && !defined(LOWBIT_NO_VECTOR_EXTENSIONS)
#define LOWBIT_DETAIL_HIST_VEC 1
#if !defined(__clang__)
#define LOWBIT_DETAIL_HIST_NORM_VEC 1
#endif
#if defined(__AVX__)
constexpr std::size_t vec_lanes = 8;
#else
constexpr std::size_t vec_lanes = 4;
#endif
typedef float vf __attribute__((vector_size(4 * vec_lanes)));
typedef std::int32_t vi __attribute__((vector_size(4 * vec_lanes)));
typedef float vf_unaligned __attribute__((vector_size(4 * vec_lanes), aligned(4), may_alias));
typedef std::int32_t vi_unaligned __attribute__((vector_size(4 * vec_lanes), aligned(4), may_alias));
LOWBIT_FORCE_INLINE void load(const float* p, vf& out) noexcept { out = *reinterpret_cast<const vf_unaligned*>(p); }
LOWBIT_FORCE_INLINE void store(float* p, const vf& v) noexcept { *reinterpret_cast<vf_unaligned*>(p) = v; }
LOWBIT_FORCE_INLINE void store(std::int32_t* p, const vi& v) noexcept { *reinterpret_cast<vi_unaligned*>(p) = v; }
#endif

constexpr std::uint64_t bits_of(double d) noexcept { return __builtin_bit_cast(std::uint64_t, d); }
constexpr double double_of(std::uint64_t u) noexcept { return __builtin_bit_cast(double, u); }

constexpr int count_trailing_zeros(std::uint64_t v) noexcept {  // v != 0
    int n = 0;
    while ((v & 1u) == 0) v >>= 1, ++n;
    return n;
}

/// Exponent of the lowest set bit of a finite nonzero double (x = odd * 2^result).
constexpr int lowest_bit_exponent(double x) noexcept {
    const std::uint64_t b = bits_of(x);
    const int e = static_cast<int>((b >> 52) & 0x7FFu);
    std::uint64_t m = b & ((std::uint64_t(1) << 52) - 1);
    if (e == 0) return -1074 + count_trailing_zeros(m);
    m |= std::uint64_t(1) << 52;
    return e - 1075 + count_trailing_zeros(m);
}

/// s + v + v + ... (n additions of v, each rounded to double, as a cumulative sum does). When
/// every partial sum is representable (s and v multiples of 2^g, |s| and n|v| below 2^(52+g))
/// the sum is exact and computed in one step; otherwise added one by one.
LOWBIT_DETAIL_NO_FP_CONTRACT
inline double add_repeated(double s, double v, std::uint64_t n) noexcept {
    if (v == 0.0 || n == 0) return s;  // s is never -0 here (a cumulative sum from +0)
    int g = lowest_bit_exponent(v);
    if (s != 0.0) {
        const int gs = lowest_bit_exponent(s);
        g = gs < g ? gs : g;
    }
    const double nv = static_cast<double>(n) * v;  // exact: 24-bit v times n <= 128
    if (52 + g <= 1023) {
        const double limit = double_of(static_cast<std::uint64_t>(52 + g + 1023) << 52);  // 2^(52+g)
        if (detail::abs(s) < limit && detail::abs(nv) < limit) return s + nv;
    }
    for (std::uint64_t k = 0; k < n; ++k) s += v;
    return s;
}

/// Python's int(x) of a float32 as a double (truncation toward zero, -0.5 -> +0).
constexpr double trunc_to_int(float x) noexcept {
    if (!(detail::abs(x) < 4611686018427387904.0f)) return static_cast<double>(x);  // 2^62: integral
    return static_cast<double>(static_cast<std::int64_t>(x));
}

/// torch.ceil of a finite float32 >= 0.
constexpr float ceil_nonneg(float x) noexcept {
    if (!(x < 8388608.0f)) return x;  // 2^23: integral (or Inf / NaN)
    const auto t = static_cast<std::int32_t>(x);
    const float ft = static_cast<float>(t);
    return ft < x ? ft + 1.0f : ft;
}

/// torch.sum of a contiguous float32 tensor of n >= 8 elements on a CPU with AVX2: ATen's
/// cascade_sum (vectorized_inner_sum: 8-lane vectors, rows of 4 vectors summed in levels
/// of 16 rows, 4 levels; leftover vectors, then leftover scalars and the 8 lanes in order).
inline float torch_sum(const float* v, std::size_t n) noexcept {
    constexpr std::size_t lanes = 8, ilp = 4, levels = 4;
    const std::size_t vec_size = n / lanes, size_ilp = vec_size / ilp;
    std::size_t ceil_log2 = 1;
    if (size_ilp > 2) {
        ceil_log2 = 0;
        for (std::size_t x = size_ilp - 1; x != 0; x >>= 1) ++ceil_log2;
    }
    const std::size_t level_power = ceil_log2 / levels > 4 ? ceil_log2 / levels : 4;
    const std::size_t level_step = std::size_t(1) << level_power, level_mask = level_step - 1;
    float acc[levels][ilp][lanes] = {};
    std::size_t i = 0;
    for (; i + level_step <= size_ilp;) {
        for (std::size_t j = 0; j < level_step; ++j, ++i) {
            const float* row = v + i * ilp * lanes;
            for (std::size_t k = 0; k < ilp; ++k)
                for (std::size_t l = 0; l < lanes; ++l) acc[0][k][l] += row[k * lanes + l];
        }
        for (std::size_t j = 1; j < levels; ++j) {
            for (std::size_t k = 0; k < ilp; ++k)
                for (std::size_t l = 0; l < lanes; ++l) {
                    acc[j][k][l] += acc[j - 1][k][l];
                    acc[j - 1][k][l] = 0.0f;
                }
            if ((i & (level_mask << (j * level_power))) != 0) break;
        }
    }
    for (; i < size_ilp; ++i) {
        const float* row = v + i * ilp * lanes;
        for (std::size_t k = 0; k < ilp; ++k)
            for (std::size_t l = 0; l < lanes; ++l) acc[0][k][l] += row[k * lanes + l];
    }
    for (std::size_t j = 1; j < levels; ++j)
        for (std::size_t k = 0; k < ilp; ++k)
            for (std::size_t l = 0; l < lanes; ++l) acc[0][k][l] += acc[j][k][l];
    float p[lanes];
    for (std::size_t l = 0; l < lanes; ++l) p[l] = acc[0][0][l];
    for (std::size_t r = size_ilp * ilp; r < vec_size; ++r)
        for (std::size_t l = 0; l < lanes; ++l) p[l] += v[r * lanes + l];
    for (std::size_t k = 1; k < ilp; ++k)
        for (std::size_t l = 0; l < lanes; ++l) p[l] += acc[0][k][l];
    float total = 0.0f;
    for (std::size_t r = vec_size * lanes; r < n; ++r) total += v[r];
    for (std::size_t l = 0; l < lanes; ++l) total += p[l];
    return 0.0f + total;  // the output starts at 0 and the row sum is added to it
}

/// The edges torch.histc bins between: values in [left, right] are counted.
struct grid {
    float left = 0.0f;
    float right = 0.0f;
};

/// torch.histc(x, bins, min=lo, max=hi)'s edges: lo == hi means "the batch's own range",
/// still equal widens by 1 on each side (in double), then both become float32 edges of
/// torch.linspace(lo, hi, bins + 1). With `linspace_tail`, the last edge is the one
/// linspace's AVX2 path computes when bins + 1 is a multiple of 16 (last of an 8-lane
/// vector: base = f32(hi - 7 step) with the product fused, then base + f32(7 step)).
LOWBIT_DETAIL_NO_FP_CONTRACT
inline grid histc_grid(double lo, double hi, float batch_min, float batch_max, std::size_t bins,
                       bool linspace_tail) noexcept {
    if (lo == hi) lo = batch_min, hi = batch_max;
    if (lo == hi) lo -= 1.0, hi += 1.0;
    grid g{static_cast<float>(lo), static_cast<float>(hi)};
    if (linspace_tail && (bins + 1) % 16 == 0) {
        const float step = (g.right - g.left) / static_cast<float>(bins);
        // 7 * step is exact in double; the fused subtraction rounds once (via double: exact
        // unless the operands' exponents are more than 29 apart).
        const float base = static_cast<float>(static_cast<double>(g.right) - 7.0 * static_cast<double>(step));
        g.right = base + static_cast<float>(7.0 * static_cast<double>(step));
    }
    return g;
}

/// Bin of a value v in [left, right] on a grid of `bins` bins (torch's histc formula).
/// fbins = float(bins), width = right - left > 0.
LOWBIT_FORCE_INLINE std::uint32_t histc_bin(float v, float left, float width, float fbins,
                                            std::uint32_t last) noexcept {
    float q = ((v - left) * fbins) / width;
    q = q > 0.0f ? q : 0.0f;  // also NaN (a width overflowing to Inf) -> 0
    return q < fbins ? static_cast<std::uint32_t>(static_cast<std::int32_t>(q)) : last;
}

/// The per-bin float32 arithmetic of torch's _compute_quantization_error (see below).
struct qerr_consts {
    float bw, dbw, half, half_cube, full_bin, dst_top;
    double dbw_d;
    std::int32_t top;  // dst - 1
};

/// clamp(floor(v / dbw), 0, dst - 1) as torch.div(..., rounding_mode='floor') + clamp give it:
/// the exact floor of the real quotient for these magnitudes. q = f32(v / dbw) rounds up onto
/// an integer only when the real quotient lies just below it, which the exact double check
/// k * dbw > v (k * dbw has <= 48 bits; both sides within a factor 2) catches.
LOWBIT_FORCE_INLINE float floor_bin(float v, const qerr_consts& c) noexcept {
    float q = v / c.dbw;
    q = q > 0.0f ? q : 0.0f;
    q = q < c.dst_top ? q : c.dst_top;
    std::int32_t k = static_cast<std::int32_t>(q);
    k -= static_cast<double>(k) * c.dbw_d > static_cast<double>(v) ? 1 : 0;
    k = k < 0 ? 0 : k;
    k = k > c.top ? c.top : k;
    return static_cast<float>(k);
}

/// torch's float32 norm of source bin i (density h / bw) for destination start s.
LOWBIT_FORCE_INLINE float bin_norm(float h, std::int64_t i, std::int64_t s, const qerr_consts& c) noexcept {
    const float sb = fence(static_cast<float>(static_cast<std::int32_t>(i - s)) * c.bw);  // src_bin_begin
    const float se = sb + c.bw;                                                            // src_bin_end
    const float db = floor_bin(sb, c), de = floor_bin(se, c);
    const float density = h / c.bw;
    const float begin_center = fence((db + 0.5f) * c.dbw);
    const float delta_begin = sb - begin_center;
    const float cube_begin = fence(fence(delta_begin * delta_begin) * delta_begin);
    const float n1 = fence(density * ((c.half_cube - cube_begin) / 3.0f));
    const float n2 = fence(((de - db) - 1.0f) * fence(density * c.full_bin));
    const float end_center = fence(de * c.dbw) + c.half;
    const float delta_end = se - end_center;
    const float cube_end = fence(fence(delta_end * delta_end) * delta_end);
    const float n3 = fence(density * ((cube_end + c.half_cube) / 3.0f));
    return ((0.0f + n1) + n2) + n3;
}

#if defined(LOWBIT_DETAIL_HIST_NORM_VEC)
/// floor_bin on a vector, without doubles: q = f32(v / dbw) clamped to [0, dst], k = trunc(q),
/// then k - 1 where v < k * dbw exactly. The product is split error-free (Dekker, with dbw
/// split in 12-bit halves dh + dl and k <= 4096 a 12-bit integer): k * dbw = p + err exactly,
/// and v - p is exact (Sterbenz: p within a factor 2 of v when k >= 1), so (v - p) < err
/// decides exactly. Used only when dst <= 4096 and dbw is far from overflow / underflow.
LOWBIT_FORCE_INLINE void floor_bin_vec(const vf& v, const qerr_consts& c, float dh, float dl, vf& out) noexcept {
    const vf zero = vf{} + 0.0f, top = vf{} + c.dst_top;
    vf q = v / c.dbw;
    q = q > zero ? q : zero;
    q = q < top ? q : top;
    vf k = __builtin_convertvector(__builtin_convertvector(q, vi), vf);  // trunc
    const vf p = k * c.dbw;
    const vf err = (k * dh - p) + k * dl;
    k = (v - p) < err ? k - 1.0f : k;
    k = k < zero ? zero : k;
    out = k < top ? k : top - 1.0f;
}

/// bin_norm for source bins i0 .. i0 + vec_lanes - 1 (offset = i0 - s).
LOWBIT_FORCE_INLINE void bin_norm_vec(const vf& h, std::int64_t offset, const qerr_consts& c, float dh, float dl,
                                      vf& out) noexcept {
    vf idx;
    for (std::size_t j = 0; j < vec_lanes; ++j) idx[j] = static_cast<float>(static_cast<std::int32_t>(offset) + static_cast<std::int32_t>(j));
    const vf sb = idx * c.bw;  // src_bin_begin: exact integer times bin width, one rounding
    const vf se = sb + c.bw;
    vf db, de;
    floor_bin_vec(sb, c, dh, dl, db);
    floor_bin_vec(se, c, dh, dl, de);
    const vf density = h / c.bw;
    const vf delta_begin = sb - (db + 0.5f) * c.dbw;
    const vf cube_begin = (delta_begin * delta_begin) * delta_begin;
    const vf n1 = density * ((c.half_cube - cube_begin) / 3.0f);
    const vf n2 = ((de - db) - 1.0f) * (density * c.full_bin);
    const vf delta_end = se - (de * c.dbw + c.half);
    const vf cube_end = (delta_end * delta_end) * delta_end;
    const vf n3 = density * ((cube_end + c.half_cube) / 3.0f);
    out = ((0.0f + n1) + n2) + n3;
}
#endif

/// torch's _compute_quantization_error(s, e) for histogram h over [min, max]: the float32
/// tensor arithmetic of torch 1.13, element by element, then torch.sum. dst = the number of
/// destination levels (<= 2^16); norm: scratch of `bins` floats.
LOWBIT_DETAIL_NO_FP_CONTRACT
inline double quantization_error(const float* h, std::size_t bins, float min, float max, std::int64_t s,
                                 std::int64_t e, std::int64_t dst, float* norm) noexcept {
    const double bin_width = (static_cast<double>(max) - static_cast<double>(min)) / static_cast<double>(bins);
    const double dst_width = bin_width * static_cast<double>(e - s + 1) / static_cast<double>(dst);
    if (dst_width == 0.0) return 0.0;
    qerr_consts c{};
    c.bw = static_cast<float>(bin_width);
    c.dbw = static_cast<float>(dst_width);
    c.half = static_cast<float>(dst_width / 2.0);
    c.half_cube = fence(fence(c.half * c.half) * c.half);
    c.full_bin = (c.half_cube + c.half_cube) / 3.0f;  // _get_norm(-dbw/2, dbw/2): (c - (-c)) / 3
    c.dbw_d = static_cast<double>(c.dbw);
    c.top = static_cast<std::int32_t>(dst - 1);
    c.dst_top = static_cast<float>(dst);
    std::size_t i = 0;
#if defined(LOWBIT_DETAIL_HIST_NORM_VEC)
    if (dst <= 4096 && c.dbw > 1e-30f && c.dbw < 1e30f) {
        const float split = 4097.0f * c.dbw;  // Veltkamp: dbw = dh + dl, 12 bits each
        const float dh = split - (split - c.dbw), dl = c.dbw - dh;
        for (; i + vec_lanes <= bins; i += vec_lanes) {
            vf in, out;
            load(h + i, in);
            bin_norm_vec(in, static_cast<std::int64_t>(i) - s, c, dh, dl, out);
            store(norm + i, out);
        }
    }
#endif
    for (; i < bins; ++i) norm[i] = bin_norm(h[i], static_cast<std::int64_t>(i), s, c);
    return static_cast<double>(torch_sum(norm, bins));
}

/// torch's _non_linear_param_search over histogram h on [min, max] with dst levels.
/// scratch: 2 x bins floats.
LOWBIT_DETAIL_NO_FP_CONTRACT
inline histogram_range search(const float* h, std::size_t bins, float min, float max, std::int64_t dst,
                              float* scratch) noexcept {
    const float bin_width = (max - min) / static_cast<float>(bins);
    std::int64_t start = 0, end = static_cast<std::int64_t>(bins) - 1;
    if (bin_width != 0.0f) {  // else every candidate gives min (min + 0 * bin)
        float* csum = scratch;
        float* norm = scratch + bins;
        const double total = static_cast<double>(torch_sum(h, bins));
        double run = 0.0;
        for (std::size_t i = 0; i < bins; ++i) run += static_cast<double>(h[i]), csum[i] = static_cast<float>(run);
        const double step = 1e-5;
        double alpha = 0.0, beta = 1.0, norm_min = std::numeric_limits<double>::infinity();
        while (alpha < beta) {
            const double next_alpha = alpha + step, next_beta = beta - step;
            const float lo_mass = static_cast<float>(next_alpha * total);  // torch compares in float32
            const float hi_mass = static_cast<float>(next_beta * total);
            std::int64_t l = start, r = end;
            while (l < end && csum[l] < lo_mass) ++l;
            while (r > start && csum[r] > hi_mass) --r;
            std::int64_t next_start = start, next_end = end;
            if (l - start > end - r) {
                next_start = l;
                alpha = next_alpha;
            } else {
                next_end = r;
                beta = next_beta;
            }
            if (next_start == start && next_end == end) continue;
            const double norm_value = quantization_error(h, bins, min, max, next_start, next_end, dst, norm);
            if (norm_value > norm_min) break;
            norm_min = norm_value;
            start = next_start;
            end = next_end;
        }
    }
    histogram_range out;
    out.min = min + fence(bin_width * static_cast<float>(start));
    out.max = min + fence(bin_width * static_cast<float>(end + 1));
    return out;
}

/// torch's _adjust_min_max + the placement of the old histogram: widens [cmin, cmax] at the
/// max end to a whole number of the old bins / 128. Returns false when torch could not
/// have done it (the old grid's fine width is 0 or the range grows more than 2^40-fold; torch
/// 1.13 needs bins * rate floats of memory and fails long before).
LOWBIT_DETAIL_NO_FP_CONTRACT
inline bool adjust_range(float old_min, float old_max, float cmin, float& cmax, std::size_t bins,
                         std::uint64_t& rate, std::uint64_t& start) noexcept {
    const float fine = (old_max - old_min) / static_cast<float>(bins * upsample);
    const float old_width = static_cast<float>(bins) * fine;
    const float range = cmax - cmin;
    const float ratio = ceil_nonneg(range / old_width);
    if (!(old_width > 0.0f) || !(ratio <= 1099511627776.0f)) return false;  // 2^40 (also NaN / Inf)
    const float place = round_half_even((old_min - cmin) / fine);
    if (!(place >= 0.0f && place <= 1099511627776.0f * static_cast<float>(bins))) return false;
    rate = static_cast<std::uint64_t>(ratio);
    const float e = fence(static_cast<float>(rate) * old_width) - range;
    cmax = cmax + e;
    start = static_cast<std::uint64_t>(place);
    return true;
}

/// torch's _combine_histograms: out[k] += f32((C_k - f32(C_{k-1})) / 128), C the float64
/// cumulative sum of the old histogram upsampled 128x (counts copied) and placed at fine
/// index `start` of a grid of bins * rate fine bins, C_k its value at the end of out bin k.
/// Fine entries beyond the grid are dropped (torch raises a shape error there).
LOWBIT_DETAIL_NO_FP_CONTRACT
inline void combine(const float* old, float* out, std::size_t bins, std::uint64_t rate, std::uint64_t start) noexcept {
    double c = 0.0;
    float prev = 0.0f;
    std::size_t b = 0;    // next old bin
    std::uint64_t t = 0;  // copies of it already added
    for (std::size_t k = 0; k < bins; ++k) {
        const std::uint64_t target = (static_cast<std::uint64_t>(k) + 1) * rate;
        while (b < bins) {
            const std::uint64_t pos = start + static_cast<std::uint64_t>(b) * upsample + t;
            if (pos >= target) break;
            const std::uint64_t room = target - pos, left = upsample - t;
            const std::uint64_t n = room < left ? room : left;
            c = add_repeated(c, static_cast<double>(old[b]), n);
            t += n;
            if (t == upsample) t = 0, ++b;
        }
        out[k] = out[k] + static_cast<float>((c - static_cast<double>(prev)) / 128.0);
        prev = static_cast<float>(c);
    }
}

}  // namespace hist
}  // namespace detail

/// torch's _non_linear_param_search - the L2 search behind HistogramObserver.calculate_qparams
/// - on any float32 histogram: hist[i] counts the values in bin i of hist.size() equal-width
/// bins spanning [min, max]; `levels` is the quantizer's number of levels (torch 1.13 always
/// uses 256). For histograms kept elsewhere, e.g. an exactly mergeable one (fixed bin edges)
/// converted to float32: the same search, so the same range for the same histogram.
/// scratch: at least 2 * hist.size() floats. min == max gives (min, min).
/// Errors: hist.size() outside [16, 65536]; scratch too small; min or max not finite, or
/// min > max; levels outside [2, 65536].
inline result<histogram_range> histogram_l2_search(span<const float> hist, float min, float max, std::int64_t levels,
                                                   span<float> scratch) {
    LOWBIT_DETAIL_CHECK(hist.size() >= 16 && hist.size() <= 65536, errc::size_mismatch, "hist.size()", hist.size(),
                        "must be in [16, 65536]");
    LOWBIT_DETAIL_CHECK(scratch.size() >= 2 * hist.size(), errc::size_mismatch, "scratch.size()", scratch.size(),
                        "must be >= 2 * hist.size()");
    LOWBIT_DETAIL_CHECK(detail::is_finite(min) && detail::is_finite(max) && min <= max, errc::invalid_argument, "min", min,
                        "min and max must be finite with min <= max");
    LOWBIT_DETAIL_CHECK(levels >= 2 && levels <= 65536, errc::invalid_argument, "levels", levels, "must be in [2, 65536]");
    return detail::hist::search(hist.data(), hist.size(), min, max, levels, scratch.data());
}

/// torch.ao.quantization.HistogramObserver for a per-tensor scheme: `Bins` bins (torch's
/// default 2048; 16 <= Bins <= 65536), float32 counts, and the L2 search for qparams.
/// See the file comment for the two modes and for what merge() means.
template <class Scheme, std::size_t Bins = 2048>
class histogram_observer {
    static_assert(Bins >= 16 && Bins <= 65536, "lowbit::histogram_observer: 16 <= Bins <= 65536");
    static_assert(Scheme::format::bits <= 16, "lowbit::histogram_observer: 4-, 8- or 16-bit formats only");

public:
    using scheme_type = Scheme;
    static constexpr observer_kind kind = observer_kind::histogram;
    static constexpr std::size_t bins = Bins;
    static constexpr std::uint32_t upsample_rate = 128;  ///< torch's default upsample_rate

    /// An empty observer for scheme `s` (checked by observe / qparams, not here).
    constexpr explicit histogram_observer(const Scheme& s = Scheme{},
                                          histogram_mode mode = histogram_mode::corrected) noexcept
        : m_scheme(s), m_mode(mode) {}

    /// Adds batch x to the histogram (torch's forward): a strided view, in element order
    /// (core/strided.hpp); the result is the one for a contiguous copy of it. Empty x: no
    /// change (as torch). Errors, with nothing changed: invalid or non-per-tensor scheme; a NaN
    /// or Inf in x (named by its index in element order); x.size() >= 2^32; a range (this
    /// batch's combined with the state's) whose width max - min overflows float32
    /// (errc::overflow naming "x", e.g. -FLT_MAX and FLT_MAX). torch_1_13 mode
    /// drops what torch drops (values outside int(min)..int(max)) and, after a constant batch,
    /// starts over as torch does. Counts per bin and batch are exact below 2^24; torch_1_13
    /// saturates a bin at 2^24 per batch, as torch's float32 += 1 does with one intra-op thread.
    status observe(strided_view<const float> x) {
        LOWBIT_DETAIL_TRY(check_config());
        if (x.empty()) return {};
        LOWBIT_DETAIL_CHECK(x.size() < (std::uint64_t(1) << 32), errc::overflow, "x.size()", x.size(),
                            "must be < 2^32 per batch (split the batch)");
        // Two passes: the batch's min / max (kernels::min_max) decide the grid, then the batch
        // is counted on it (kernels::histogram).
        float mn = 0.0f, mx = 0.0f;
        LOWBIT_DETAIL_TRY(detail::batch_min_max(x, mn, mx));  // names the first bad index
        LOWBIT_DETAIL_TRY(check_range_width(mn, mx, "x"));
        const bool torch = m_mode == histogram_mode::torch_1_13;
        update(mn, mx, [&](detail::hist::grid g, float* out) { count_batch(x, g, torch, out); });
        m_stats.count += x.size();
        m_stats.batches += 1;
        return {};
    }
    /// observe() of a contiguous batch.
    status observe(span<const float> x) { return observe(strided_view<const float>(x)); }

    /// The scheme's qparams for the range the L2 search picks (torch's calculate_qparams):
    /// choose_qparams(scheme, search_range()). An observer that saw nothing gives {1.0, 0}.
    /// Errors: invalid or non-per-tensor scheme.
    result<lowbit::qparams> qparams() const {
        LOWBIT_DETAIL_TRY(check_config());
        if (empty()) return choose_qparams(m_scheme, m_stats.min, m_stats.max);
        const histogram_range r = search_range_unchecked();
        return choose_qparams(m_scheme, r.min, r.max);
    }

    /// The range torch's _non_linear_param_search picks: [min + w * start, min + w * (end + 1)]
    /// with w = (max - min) / Bins (float32). Empty observer: (+Inf, -Inf). A constant state
    /// gives (min, min). Errors: invalid or non-per-tensor scheme.
    result<histogram_range> search_range() const {
        LOWBIT_DETAIL_TRY(check_config());
        if (empty()) return histogram_range{m_stats.min, m_stats.max};
        return search_range_unchecked();
    }

    /// Number of destination levels the search assumes: 256 in torch_1_13 mode (torch 1.13's
    /// 2 ** dtype bits, for any quant range), qmax - qmin + 1 in corrected mode.
    std::int64_t search_levels() const noexcept {
        if (m_mode == histogram_mode::torch_1_13) return 256;
        return std::int64_t(m_scheme.qmax()) - std::int64_t(m_scheme.qmin()) + 1;
    }

    /// Forgets everything observed (same mode and scheme).
    void reset() noexcept {
        m_stats = observer_stats{};
        for (auto& v : m_hist) v = 0.0f;
    }

    /// min / max are the histogram's range (torch's min_val / max_val buffers: after a batch
    /// that widened the range, max is relaxed up to a whole number of old bins / 128).
    const observer_stats& stats() const noexcept { return m_stats; }
    const Scheme& scheme() const noexcept { return m_scheme; }
    histogram_mode mode() const noexcept { return m_mode; }
    /// The float32 histogram: bin i covers [min + i w, min + (i + 1) w), w = (max - min) / Bins
    /// (in corrected mode a constant state holds all its mass in bin 0).
    span<const float> histogram() const noexcept { return span<const float>(m_hist, Bins); }

    /// Tag of the configuration (scheme, Bins, upsample rate, mode); merge / load need equal tags.
    std::uint32_t config() const noexcept {
        config_hash h = detail::scheme_config(m_scheme);
        h.add(Bins).add(upsample_rate).add(static_cast<std::uint64_t>(m_mode));
        return h.value();
    }

    /// Adds another observer's histogram as if it were one more batch (file comment): its
    /// range is the batch range, and each of its bins is split into 128 equal sub-bins whose
    /// centres carry 1/128 of the bin's mass, binned by this observer's rules (so torch_1_13
    /// mode drops what torch's histc would drop), summed in double and rounded to float32
    /// once per bin. Not order-independent. Merging into an empty observer copies `other`.
    /// Errors (nothing changes): configurations differ; the combined range's width overflows
    /// float32 (errc::overflow naming "other").
    status merge(const histogram_observer& other) {
        LOWBIT_DETAIL_CHECK(other.config() == config(), errc::invalid_argument, "other.config()", other.config(),
                            "observers must have the same scheme, bins and mode to merge");
        if (other.empty()) return {};
        if (empty()) {
            for (std::size_t b = 0; b < Bins; ++b) m_hist[b] = other.m_hist[b];
            m_stats = other.m_stats;
            return {};
        }
        const histogram_observer& o = other;  // (other may be *this: read it before writing)
        float copy[Bins];
        for (std::size_t b = 0; b < Bins; ++b) copy[b] = o.m_hist[b];
        const float omin = o.m_stats.min, omax = o.m_stats.max;
        const observer_stats ostats = o.m_stats;
        LOWBIT_DETAIL_TRY(check_range_width(omin, omax, "other"));
        update(omin, omax, [&](detail::hist::grid g, float* out) { fill_from_histogram(copy, omin, omax, g, out); });
        m_stats.count += ostats.count;
        m_stats.batches += ostats.batches;
        return {};
    }

    /// Bytes save() writes.
    std::size_t state_size() const noexcept { return state_header_size + payload_size; }
    /// Writes the state (state.hpp layout; payload: min, max (f32), count, batches (u64),
    /// Bins f32 counts). Errors: out too small.
    status save(span<std::uint8_t> out) const {
        return save_state(static_cast<std::uint16_t>(kind), config(), out, [this](state_writer& w) {
            w.f32(m_stats.min);
            w.f32(m_stats.max);
            w.u64(m_stats.count);
            w.u64(m_stats.batches);
            for (float v : m_hist) w.f32(v);
        });
    }
    /// Replaces the state with a saved one. Errors (state unchanged): truncated, corrupted,
    /// other version, other observer type or configuration, or an inconsistent payload
    /// (non-finite counts, min > max, a range without batches, counts without a range, or in
    /// corrected mode a constant range with mass outside bin 0).
    status load(span<const std::uint8_t> in) {
        span<const std::uint8_t> payload;
        LOWBIT_DETAIL_TRY(check_state(in, static_cast<std::uint16_t>(kind), config(), payload));
        LOWBIT_DETAIL_CHECK(payload.size() == payload_size, errc::size_mismatch, "state payload size", payload.size(),
                            "does not match this observer's bins");
        state_reader r{payload};
        observer_stats s;
        s.min = r.f32();
        s.max = r.f32();
        s.count = r.u64();
        s.batches = r.u64();
        bool finite = true, zero = true, rest_zero = true;  // rest: bins 1..Bins-1
        {
            state_reader probe = r;
            for (std::size_t b = 0; b < Bins; ++b) {
                const float v = probe.f32();
                finite = finite && v - v == 0.0f;
                zero = zero && v == 0.0f;
                rest_zero = rest_zero && (b == 0 || v == 0.0f);
            }
        }
        const float inf = std::numeric_limits<float>::infinity();
        const bool empty_state = s.batches == 0 && s.count == 0 && s.min == inf && s.max == -inf && zero;
        // (a constant state of the corrected mode keeps all its mass in bin 0)
        const bool point_ok = m_mode != histogram_mode::corrected || s.min != s.max || rest_zero;
        const bool valid = s.batches > 0 && s.min - s.min == 0.0f && s.max - s.max == 0.0f && s.min <= s.max && finite &&
                           point_ok;
        LOWBIT_DETAIL_CHECK(empty_state || valid, errc::invalid_argument, "state min", s.min,
                            "inconsistent saved histogram (min > max, non-finite, or counts without data)");
        for (auto& v : m_hist) v = r.f32();
        m_stats = s;
        return {};
    }

private:
    static constexpr std::size_t payload_size = 4 + 4 + 8 + 8 + 4 * Bins;

    bool empty() const noexcept {
        return m_stats.min == std::numeric_limits<float>::infinity() && m_stats.max == -m_stats.min;
    }

    status check_config() const {
        LOWBIT_DETAIL_TRY(m_scheme.validate());
        LOWBIT_DETAIL_TRY(lowbit::detail::check_per_tensor(m_scheme));
        return {};
    }

    // The histogram of batch x on grid g (torch's histc formula, hist::histc_bin) into
    // out[Bins]: kernels::histogram counts when its checks hold for the grid (it bins with the
    // same formula, in SIMD), else (a point grid in corrected mode's constant state, or a width
    // times Bins overflowing float32) the scalar formula. Counts are exact integers, so the
    // result does not depend on how x is split into chunks.
    static void count_batch(strided_view<const float> x, detail::hist::grid g, bool torch, float* out) {
        namespace h = detail::hist;
        std::uint64_t counts[Bins] = {};
        const float left = g.left, right = g.right, width = right - left, fbins = static_cast<float>(Bins);
        if (right > left && lowbit::detail::is_finite(left) && lowbit::detail::is_finite(right) &&
            lowbit::detail::is_finite(width * fbins)) {
            x.for_each_chunk([&](const float* p, std::size_t n) {
                (void)kernels::histogram(span<const float>(p, n), left, right, span<std::uint64_t>(counts, Bins));
            });
        } else {
            const bool point = width == 0.0f;
            x.for_each_chunk([&](const float* p, std::size_t n) {
                for (std::size_t i = 0; i < n; ++i) {
                    const float v = p[i];
                    if (v >= left && v <= right) ++counts[point ? 0u : h::histc_bin(v, left, width, fbins, Bins - 1)];
                }
            });
        }
        for (std::size_t b = 0; b < Bins; ++b)
            out[b] = torch && counts[b] > (1u << 24) ? 16777216.0f : static_cast<float>(counts[b]);
    }

    histogram_range search_range_unchecked() const {
        float scratch[2 * Bins];
        return detail::hist::search(m_hist, Bins, m_stats.min, m_stats.max, search_levels(), scratch);
    }

    // The range update(bmin, bmax, ...) would end with must have a finite width: a wider one
    // (e.g. -FLT_MAX and FLT_MAX seen) makes the bin width +Inf and every later count and
    // search NaN. Checked before anything changes; the same steps as update() take, without
    // writing (the relaxation of adjust_range can push max up by at most the old width).
    status check_range_width(float bmin, float bmax, const char* argument) const {
        namespace h = detail::hist;
        float lo = bmin, hi = bmax;
        const float smin = m_stats.min, smax = m_stats.max;
        if (!(empty() || (m_mode == histogram_mode::torch_1_13 && smin == smax))) {
            lo = bmin < smin ? bmin : smin;
            hi = bmax > smax ? bmax : smax;
            if (smin != smax) {
                std::uint64_t rate = 0, start = 0;
                float relaxed = hi;
                if (h::adjust_range(smin, smax, lo, relaxed, Bins, rate, start)) hi = relaxed;
            }
        }
        LOWBIT_DETAIL_CHECK(detail::is_finite(hi - lo), errc::overflow, argument, static_cast<double>(hi) - lo,
                            "the histogram's range (max - min, value given in double) overflows float32");
        return {};
    }

    // torch's forward after the batch min / max: `fill(grid, out)` writes the batch's histogram
    // on a grid (histc). Handles the first batch, the constant state and range growth.
    template <class Fill>
    void update(float bmin, float bmax, Fill&& fill) {
        namespace h = detail::hist;
        const bool torch = m_mode == histogram_mode::torch_1_13;
        float& smin = m_stats.min;
        float& smax = m_stats.max;
        if (empty() || (torch && smin == smax)) {
            // First batch (and in torch 1.13 also the batch after a constant one, whose
            // histogram is discarded): histc over int(min)..int(max), or the real range.
            const h::grid g = torch ? h::histc_grid(h::trunc_to_int(bmin), h::trunc_to_int(bmax), bmin, bmax, Bins, true)
                                    : h::grid{bmin, bmax};
            fill(g, m_hist);
            smin = bmin;
            smax = bmax;
            return;
        }
        const float cmin = bmin < smin ? bmin : smin;
        float cmax = bmax > smax ? bmax : smax;
        float fresh[Bins];
        if (smin == smax) {
            // corrected mode, constant state (mass in bin 0): bin the batch on the combined
            // range and add the old mass at the old value's bin.
            const h::grid g{cmin, cmax};
            fill(g, fresh);
            const float width = cmax - cmin;
            const std::uint32_t at =
                width == 0.0f ? 0u : h::histc_bin(smin, cmin, width, static_cast<float>(Bins), Bins - 1);
            fresh[at] = fresh[at] + m_hist[0];
            for (std::size_t b = 0; b < Bins; ++b) m_hist[b] = fresh[b];
            smin = cmin;
            smax = cmax;
            return;
        }
        std::uint64_t rate = 0, start = 0;
        const bool placed = h::adjust_range(smin, smax, cmin, cmax, Bins, rate, start);
        const h::grid g = torch ? h::histc_grid(h::trunc_to_int(cmin), h::trunc_to_int(cmax), bmin, bmax, Bins, true)
                                : h::grid{cmin, cmax};
        fill(g, fresh);
        if (cmin == smin && cmax == smax) {
            for (std::size_t b = 0; b < Bins; ++b) m_hist[b] = fresh[b] + m_hist[b];
        } else if (placed) {
            h::combine(m_hist, fresh, Bins, rate, start);
            for (std::size_t b = 0; b < Bins; ++b) m_hist[b] = fresh[b];
        } else {
            // Beyond what torch can compute (see adjust_range): the old mass, summed in
            // double, goes to the bin of the old minimum.
            double mass = 0.0;
            for (float v : m_hist) mass += static_cast<double>(v);
            const std::uint32_t at = h::histc_bin(smin, cmin, cmax - cmin, static_cast<float>(Bins), Bins - 1);
            fresh[at] = fresh[at] + static_cast<float>(mass);
            for (std::size_t b = 0; b < Bins; ++b) m_hist[b] = fresh[b];
        }
        smin = cmin;
        smax = cmax;
    }

    // The batch histogram of another observer's histogram `src` over [smin, smax] on grid g:
    // 128 sub-bins per source bin, each at its centre with 1/128 of the mass; double sums.
    static void fill_from_histogram(const float* src, float smin, float smax, detail::hist::grid g, float* out) {
        namespace h = detail::hist;
        for (std::size_t b = 0; b < Bins; ++b) out[b] = 0.0f;
        const float width = g.right - g.left, fbins = static_cast<float>(Bins);
        const auto bin_of = [&](float v) -> std::int64_t {
            if (!(v >= g.left && v <= g.right)) return -1;
            return width == 0.0f ? 0 : h::histc_bin(v, g.left, width, fbins, Bins - 1);
        };
        if (smin == smax) {  // a constant state: all its mass at smin
            double mass = 0.0;
            for (std::size_t b = 0; b < Bins; ++b) mass += static_cast<double>(src[b]);
            const std::int64_t at = bin_of(smin);
            if (at >= 0) out[at] = static_cast<float>(mass);
            return;
        }
        const double sub = (static_cast<double>(smax) - static_cast<double>(smin)) / static_cast<double>(Bins * h::upsample);
        std::int64_t cur = -1;
        double acc = 0.0;
        for (std::size_t b = 0; b < Bins; ++b) {
            if (src[b] == 0.0f) continue;
            const double mass = static_cast<double>(src[b]) / 128.0;
            for (std::uint64_t t = 0; t < h::upsample; ++t) {
                const double centre =
                    static_cast<double>(smin) + h::fence((static_cast<double>(b * h::upsample + t) + 0.5) * sub);
                const std::int64_t at = bin_of(static_cast<float>(centre));
                if (at != cur) {
                    if (cur >= 0) out[cur] = out[cur] + static_cast<float>(acc);
                    cur = at;
                    acc = 0.0;
                }
                acc += mass;
            }
        }
        if (cur >= 0) out[cur] = out[cur] + static_cast<float>(acc);
    }

    Scheme m_scheme;
    histogram_mode m_mode;
    observer_stats m_stats;
    float m_hist[Bins] = {};
};

}  // namespace lowbit

#undef LOWBIT_DETAIL_NO_FP_CONTRACT
#undef LOWBIT_DETAIL_HIST_VEC
#undef LOWBIT_DETAIL_HIST_NORM_VEC

#endif  // LOWBIT_OBSERVERS_HISTOGRAM_HPP
