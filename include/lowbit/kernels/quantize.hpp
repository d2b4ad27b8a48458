// lowbit/kernels/quantize.hpp: SIMD quantize (f32 -> s8 / u8 / s4 / u4) and dequantize,
// bit-identical to lowbit::ref::quantize / dequantize (the spec), same signatures, same
// checks and errors, plus an architecture template parameter:
//
//   lowbit::kernels::quantize(s, qp, x, q);               // best ISA of this translation unit
//   lowbit::kernels::quantize<xsimd::avx2>(s, qp, x, q);  // a given ISA (see dispatch.hpp)
//
// Stochastic rounding and the s32 format take the reference path (same results, scalar speed).
// Loops process blocks of 4 registers; the tail goes through the same SIMD code on a
// zero-padded copy, so every element sees exactly the same instructions.
//
// dequantize: bytes (or nibbles) widened to int32, converted to float, then
// (float(q) - float(zp)) * scale. Both conversions and the subtraction are exact (|q|, |zp|
// <= 255), so the one rounding is the multiply's, as in ref's float(q - zp) * scale. 4-bit on
// AVX-512: the same formula fills a 16-entry table once, then each nibble is looked up.
#ifndef LOWBIT_KERNELS_QUANTIZE_HPP
#define LOWBIT_KERNELS_QUANTIZE_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../core/quantize.hpp"
#include "arch.hpp"
#include "simd.hpp"
#include "arm/narrow.hpp"
#include "arm/widen.hpp"
#include "x86/narrow.hpp"
#include "x86/quantize512.hpp"
#include "x86/widen.hpp"

namespace lowbit {
namespace kernels {
namespace detail {

#if LOWBIT_HAS_XSIMD
// 4 registers of x -> 4 * lanes 8-bit values (signed values stored as their bytes).
template <class A, bool Signed>
LOWBIT_FORCE_INLINE void quantize_block(const quant_consts& c, const float* x, std::uint8_t* out) noexcept {
    constexpr std::size_t L = fbatch<A>::size;
    const auto q0 = xsimd::batch_cast<std::int32_t>(quantize<A>(fbatch<A>::load_unaligned(x), c));
    const auto q1 = xsimd::batch_cast<std::int32_t>(quantize<A>(fbatch<A>::load_unaligned(x + L), c));
    const auto q2 = xsimd::batch_cast<std::int32_t>(quantize<A>(fbatch<A>::load_unaligned(x + 2 * L), c));
    const auto q3 = xsimd::batch_cast<std::int32_t>(quantize<A>(fbatch<A>::load_unaligned(x + 3 * L), c));
    narrow4<Signed, A>(q0, q1, q2, q3, out, A{});
}
#endif

#if LOWBIT_KERNELS_X86
// AVX-512 fast block (x86/quantize512.hpp): clamp, round with the conversion's embedded
// rounding, NaN lanes zeroed by its mask, zero-point added in 16 bits while narrowing. The
// divide (tflite) profile multiplies by 1/scale and redoes the block with the exact division
// when a lane is too close to a rounding boundary to be sure.
template <class A, bool Signed, bool Divide, bool HalfAway>
LOWBIT_FORCE_INLINE void quantize_block512(const quant_consts& c, const q512<A>& k, const float* x,
                                           std::uint8_t* out) noexcept {
    const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
    const __m512 x2 = _mm512_loadu_ps(x + 32), x3 = _mm512_loadu_ps(x + 48);
    __mmask16 unsafe = any_nan512<A>(x0, x1, x2, x3);  // NaN (-> zp) is left to the exact block
    __m512i r0, r1, r2, r3;
    if constexpr (Divide) {
        r0 = quantize512_div<A>(k, x0, unsafe);
        r1 = quantize512_div<A>(k, x1, unsafe);
        r2 = quantize512_div<A>(k, x2, unsafe);
        r3 = quantize512_div<A>(k, x3, unsafe);
    } else {
        r0 = quantize512_mul<A, HalfAway>(k, x0);
        r1 = quantize512_mul<A, HalfAway>(k, x1);
        r2 = quantize512_mul<A, HalfAway>(k, x2);
        r3 = quantize512_mul<A, HalfAway>(k, x3);
    }
    if (__builtin_expect(unsafe != 0, 0)) {
        quantize_block<A, Signed>(c, x, out);
        return;
    }
    narrow4_add_zp<Signed, A>(r0, r1, r2, r3, k.zp16, out, A{});
}

// The two block kinds as function objects (always inlined, unlike a lambda).
template <class A, bool Signed, bool Divide, bool HalfAway>
struct quantize_block512_fn {
    const quant_consts& c;
    const q512<A>& k;
    LOWBIT_FORCE_INLINE void operator()(const float* x, std::uint8_t* out) const noexcept {
        quantize_block512<A, Signed, Divide, HalfAway>(c, k, x, out);
    }
};
#endif

#if LOWBIT_HAS_XSIMD
template <class A, bool Signed>
struct quantize_block_fn {
    const quant_consts& c;
    LOWBIT_FORCE_INLINE void operator()(const float* x, std::uint8_t* out) const noexcept {
        quantize_block<A, Signed>(c, x, out);
    }
};

// The block walk shared by both block kinds: whole blocks in place, the tail through the same
// block on a zero-padded copy; 4-bit formats quantize two blocks to bytes, then pack them.
template <class A, bool Signed, bool Packed, class Block>
LOWBIT_FORCE_INLINE void quantize_blocks(const float* x, std::uint8_t* q, std::size_t n, Block block) noexcept {
    constexpr std::size_t B = 4 * fbatch<A>::size;  // elements per block
    if constexpr (!Packed) {
        std::size_t i = 0;
        for (; i + B <= n; i += B) block(x + i, q + i);
        if (i < n) {
            alignas(64) float xt[B] = {};
            alignas(64) std::uint8_t qt[B];
            std::memcpy(xt, x + i, (n - i) * sizeof(float));
            block(xt, qt);
            std::memcpy(q + i, qt, n - i);
        }
    } else {
        alignas(64) std::uint8_t bytes[2 * B];
        std::size_t i = 0;
        for (; i + 2 * B <= n; i += 2 * B) {
            block(x + i, bytes);
            block(x + i + B, bytes + B);
            pack_nibbles_block<A>(bytes, q + i / 2, A{});
        }
        if (i < n) {
            alignas(64) float xt[2 * B] = {};
            alignas(64) std::uint8_t qt[B];
            std::memcpy(xt, x + i, (n - i) * sizeof(float));
            block(xt, bytes);
            block(xt + B, bytes + B);
            pack_nibbles_block<A>(bytes, qt, A{});
            const std::size_t tail = n - i;
            std::memcpy(q + i / 2, qt, (tail + 1) / 2);
            if (tail % 2 != 0) q[i / 2 + tail / 2] &= 0x0F;  // padding nibble
        }
    }
}

// The quantize loop with the profile's choices as constants: c is a local copy whose flags are
// set from the template arguments, so simd.hpp's run-time tests fold away, and the byte stores
// to q cannot alias it (a uint8_t store may alias anything: the compiler would otherwise reload
// c and retest its flags after every store).
template <class A, bool Signed, bool Packed, bool Divide, bool HalfAway>
LOWBIT_FORCE_INLINE void quantize_run(quant_consts c, const float* x, std::uint8_t* q, std::size_t n) noexcept {
    c.divide = Divide;
    c.half_away = HalfAway;
#if LOWBIT_KERNELS_X86
    if constexpr (std::is_base_of<xsimd::avx512bw, A>::value) {
        if (fast512_usable<A>(c)) {
            const q512<A> k(c, Divide, HalfAway);
            quantize_blocks<A, Signed, Packed>(x, q, n, quantize_block512_fn<A, Signed, Divide, HalfAway>{c, k});
            return;
        }
    }
#endif
    quantize_blocks<A, Signed, Packed>(x, q, n, quantize_block_fn<A, Signed>{c});
}
#endif

/// Per-tensor quantize loop: n elements of x -> n bytes (Packed = false) or ceil(n/2)
/// packed bytes (Packed = true, high nibble of an odd count's last byte 0).
/// Instantiated per ISA (dispatch.hpp); no checks here.
template <class A, bool Signed, bool Packed>
void quantize_loop(const quant_consts& c, const float* x, std::uint8_t* q, std::size_t n) noexcept {
#if LOWBIT_HAS_XSIMD
    if (c.divide)
        c.half_away ? quantize_run<A, Signed, Packed, true, true>(c, x, q, n)
                    : quantize_run<A, Signed, Packed, true, false>(c, x, q, n);
    else
        c.half_away ? quantize_run<A, Signed, Packed, false, true>(c, x, q, n)
                    : quantize_run<A, Signed, Packed, false, false>(c, x, q, n);
#else
    (void)c, (void)x, (void)q, (void)n;
#endif
}

#if LOWBIT_HAS_XSIMD
// 4 int32 registers of q -> 4 registers of (float(q) - zp) * scale stored at x.
template <class A>
LOWBIT_FORCE_INLINE void dequantize_store4(fbatch<A> zp, fbatch<A> scale, ibatch<A> q0, ibatch<A> q1, ibatch<A> q2,
                                           ibatch<A> q3, float* x) noexcept {
    constexpr std::size_t L = fbatch<A>::size;
    ((xsimd::batch_cast<float>(q0) - zp) * scale).store_unaligned(x);
    ((xsimd::batch_cast<float>(q1) - zp) * scale).store_unaligned(x + L);
    ((xsimd::batch_cast<float>(q2) - zp) * scale).store_unaligned(x + 2 * L);
    ((xsimd::batch_cast<float>(q3) - zp) * scale).store_unaligned(x + 3 * L);
}

// One block: 4 * lanes elements from 4 * lanes bytes (or 2 * lanes packed bytes).
template <class A, bool Signed, bool Packed>
LOWBIT_FORCE_INLINE void dequantize_block(fbatch<A> zp, fbatch<A> scale, const std::uint8_t* q, float* x) noexcept {
    ibatch<A> q0, q1, q2, q3;
    if constexpr (Packed)
        widen4_nibbles<Signed, A>(q, q0, q1, q2, q3, A{});
    else
        widen4<Signed, A>(q, q0, q1, q2, q3, A{});
    dequantize_store4<A>(zp, scale, q0, q1, q2, q3, x);
}
#endif

/// Per-tensor dequantize loop: n elements from n bytes (Packed = false) or ceil(n/2) packed
/// bytes (Packed = true; the padding nibble is ignored). No checks here.
template <class A, bool Signed, bool Packed>
void dequantize_loop(const quant_consts& c, const std::uint8_t* q, float* x, std::size_t n) noexcept {
#if LOWBIT_HAS_XSIMD
#if LOWBIT_KERNELS_X86
    constexpr bool nibble_table_path = Packed && std::is_base_of<xsimd::avx512bw, A>::value;
#else
    constexpr bool nibble_table_path = false;
#endif
    if constexpr (nibble_table_path) {
#if LOWBIT_KERNELS_X86
        // AVX-512: the 16 possible results in one register, looked up (x86/widen.hpp)
        constexpr std::size_t B = 64;
        const __m512 table = nibble_table<Signed, A>(c.zero_point, c.scale, A{});
        std::size_t i = 0;
        for (; i + B <= n; i += B) dequantize_nibbles_table<A>(q + i / 2, table, x + i, A{});
        if (i < n) {
            alignas(64) std::uint8_t qt[B / 2] = {};
            alignas(64) float xt[B];
            std::memcpy(qt, q + i / 2, (n - i + 1) / 2);
            dequantize_nibbles_table<A>(qt, table, xt, A{});
            std::memcpy(x + i, xt, (n - i) * sizeof(float));
        }
#endif
    } else {
        constexpr std::size_t B = 4 * fbatch<A>::size;   // elements per block
        constexpr std::size_t QB = Packed ? B / 2 : B;  // bytes per block
        const fbatch<A> zp(c.zero_point), scale(c.scale);  // in registers: stores to x cannot alias them
        std::size_t i = 0;
        for (; i + B <= n; i += B) dequantize_block<A, Signed, Packed>(zp, scale, q + (Packed ? i / 2 : i), x + i);
        if (i < n) {
            alignas(64) std::uint8_t qt[QB] = {};
            alignas(64) float xt[B];
            const std::size_t tail = n - i;
            std::memcpy(qt, q + (Packed ? i / 2 : i), Packed ? (tail + 1) / 2 : tail);
            dequantize_block<A, Signed, Packed>(zp, scale, qt, xt);
            std::memcpy(x + i, xt, tail * sizeof(float));
        }
    }
#else
    (void)c, (void)q, (void)x, (void)n;
#endif
}

}  // namespace detail

/// Per-tensor quantize, bit-identical to lowbit::ref::quantize (same contract and errors).
template <class Arch = default_arch, class Scheme>
status quantize(const Scheme& s, qparams qp, span<const float> x, span<typename Scheme::storage_type> q) {
    using F = typename Scheme::format;
    if constexpr (std::is_same<Arch, scalar_arch>::value || std::is_same<F, s32>::value) {
        return ref::quantize(s, qp, x, q);
    } else {
        if (s.rounding() == rounding::stochastic) return ref::quantize(s, qp, x, q);
        LOWBIT_DETAIL_TRY(s.validate());
        LOWBIT_DETAIL_TRY(lowbit::detail::check_per_tensor(s));
        LOWBIT_DETAIL_TRY(check_qparams(s, qp));
        LOWBIT_DETAIL_CHECK(q.size() == F::storage_size(x.size()), errc::size_mismatch, "q.size()", q.size(),
                            "must be Format::storage_size(x.size())");
        detail::quantize_loop<Arch, F::is_signed, F::is_packed>(detail::quant_consts::make(s, qp), x.data(),
                                                                 reinterpret_cast<std::uint8_t*>(q.data()), x.size());
        return {};
    }
}

/// Per-tensor dequantize (s8 / u8 / s4 / u4; 4-bit read packed, the padding nibble ignored):
/// x[k] = float(q[k] - zero_point) * scale, bit-identical to lowbit::ref::dequantize (same
/// contract and errors). Any stored value is accepted, also one outside [qmin, qmax].
template <class Arch = default_arch, class Scheme>
status dequantize(const Scheme& s, qparams qp, span<const typename Scheme::storage_type> q, span<float> x) {
    using F = typename Scheme::format;
    if constexpr (std::is_same<Arch, scalar_arch>::value || std::is_same<F, s32>::value) {
        return ref::dequantize(s, qp, q, x);
    } else {
        LOWBIT_DETAIL_TRY(s.validate());
        LOWBIT_DETAIL_TRY(lowbit::detail::check_per_tensor(s));
        LOWBIT_DETAIL_TRY(check_qparams(s, qp));
        LOWBIT_DETAIL_CHECK(q.size() == F::storage_size(x.size()), errc::size_mismatch, "q.size()", q.size(),
                            "must be Format::storage_size(x.size())");
        detail::dequantize_loop<Arch, F::is_signed, F::is_packed>(
            detail::quant_consts::make(s, qp), reinterpret_cast<const std::uint8_t*>(q.data()), x.data(), x.size());
        return {};
    }
}

}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_QUANTIZE_HPP

/// Explicit instantiations (X empty) or declarations (X = extern) of this header's loops for
/// architecture A; used by LOWBIT_KERNELS_INSTANTIATE / LOWBIT_KERNELS_EXTERN (dispatch.hpp).
#define LOWBIT_DETAIL_QUANTIZE_LOOPS(X, A)                                                               \
    X template void detail::quantize_loop<A, true, false>(const detail::quant_consts&, const float*,      \
                                                          std::uint8_t*, std::size_t) noexcept;           \
    X template void detail::quantize_loop<A, false, false>(const detail::quant_consts&, const float*,     \
                                                           std::uint8_t*, std::size_t) noexcept;          \
    X template void detail::quantize_loop<A, true, true>(const detail::quant_consts&, const float*,       \
                                                         std::uint8_t*, std::size_t) noexcept;            \
    X template void detail::quantize_loop<A, false, true>(const detail::quant_consts&, const float*,      \
                                                          std::uint8_t*, std::size_t) noexcept;           \
    X template void detail::dequantize_loop<A, true, false>(const detail::quant_consts&, const std::uint8_t*, \
                                                            float*, std::size_t) noexcept;                \
    X template void detail::dequantize_loop<A, false, false>(const detail::quant_consts&, const std::uint8_t*, \
                                                             float*, std::size_t) noexcept;               \
    X template void detail::dequantize_loop<A, true, true>(const detail::quant_consts&, const std::uint8_t*, \
                                                           float*, std::size_t) noexcept;                 \
    X template void detail::dequantize_loop<A, false, true>(const detail::quant_consts&, const std::uint8_t*, \
                                                            float*, std::size_t) noexcept;
