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
#ifndef LOWBIT_KERNELS_QUANTIZE_HPP
#define LOWBIT_KERNELS_QUANTIZE_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../core/quantize.hpp"
#include "arch.hpp"
#include "simd.hpp"
#include "x86/narrow.hpp"

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

/// Per-tensor quantize loop: n elements of x -> n bytes (Packed = false) or ceil(n/2)
/// packed bytes (Packed = true, high nibble of an odd count's last byte 0).
/// Instantiated per ISA (dispatch.hpp); no checks here.
template <class A, bool Signed, bool Packed>
void quantize_loop(const quant_consts& c, const float* x, std::uint8_t* q, std::size_t n) noexcept {
#if LOWBIT_HAS_XSIMD
    constexpr std::size_t B = 4 * fbatch<A>::size;  // elements per block
    if constexpr (!Packed) {
        std::size_t i = 0;
        for (; i + B <= n; i += B) quantize_block<A, Signed>(c, x + i, q + i);
        if (i < n) {
            alignas(64) float xt[B] = {};
            alignas(64) std::uint8_t qt[B];
            std::memcpy(xt, x + i, (n - i) * sizeof(float));
            quantize_block<A, Signed>(c, xt, qt);
            std::memcpy(q + i, qt, n - i);
        }
    } else {
        alignas(64) std::uint8_t bytes[2 * B];
        std::size_t i = 0;
        for (; i + 2 * B <= n; i += 2 * B) {
            quantize_block<A, Signed>(c, x + i, bytes);
            quantize_block<A, Signed>(c, x + i + B, bytes + B);
            pack_nibbles_block<A>(bytes, q + i / 2, A{});
        }
        if (i < n) {
            alignas(64) float xt[2 * B] = {};
            alignas(64) std::uint8_t qt[B];
            std::memcpy(xt, x + i, (n - i) * sizeof(float));
            quantize_block<A, Signed>(c, xt, bytes);
            quantize_block<A, Signed>(c, xt + B, bytes + B);
            pack_nibbles_block<A>(bytes, qt, A{});
            const std::size_t tail = n - i;
            std::memcpy(q + i / 2, qt, (tail + 1) / 2);
            if (tail % 2 != 0) q[i / 2 + tail / 2] &= 0x0F;  // padding nibble
        }
    }
#else
    (void)c, (void)x, (void)q, (void)n;
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
                                                          std::uint8_t*, std::size_t) noexcept;
