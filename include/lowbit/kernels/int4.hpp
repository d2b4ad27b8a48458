// lowbit/kernels/int4.hpp: SIMD pack / unpack of 4-bit values (core/int4.hpp's layout:
// element 2i in the low nibble of byte i, an odd count's padding nibble 0), bit-identical to
// lowbit::ref::pack_s4 / unpack_s4 / pack_u4 / unpack_u4, same signatures, checks and errors,
// plus an architecture template parameter (see quantize.hpp and dispatch.hpp).
//
// pack validates every value before writing anything, as ref does: a SIMD pass finds the
// first value outside [-8, 7] / [0, 15] (blocks OR-ed together, the offending block then
// scanned), then a second pass packs (x86/ or arm/narrow.hpp's pack_nibbles_block). unpack splits
// each byte into its two nibbles, sign-extending for s4 (x86/ or arm/widen.hpp).
#ifndef LOWBIT_KERNELS_INT4_HPP
#define LOWBIT_KERNELS_INT4_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../core/int4.hpp"
#include "arch.hpp"
#include "simd.hpp"
#include "arm/narrow.hpp"
#include "arm/widen.hpp"
#include "x86/narrow.hpp"
#include "x86/widen.hpp"

namespace lowbit {
namespace kernels {
namespace detail {

/// Index of the first of n values (bytes; s4 ones as two's complement) outside the s4 range
/// [-8, 7] (Signed) or the u4 range [0, 15], or n if all are inside. No checks here.
template <class A, bool Signed>
std::size_t int4_range_loop(const std::uint8_t* v, std::size_t n) noexcept {
#if LOWBIT_HAS_XSIMD
    constexpr std::size_t B = 8 * fbatch<A>::size;  // bytes pack_nibbles_block reads
    constexpr std::uint8_t bias = Signed ? 8 : 0;
    alignas(64) std::uint8_t t[B] = {};  // zero is inside both ranges
    std::size_t i = 0;
    for (; i + 2 * B <= n; i += 2 * B) {
        if (nibble_range_violation<Signed, A>(v + i, A{}) || nibble_range_violation<Signed, A>(v + i + B, A{})) break;
    }
    for (; i < n; i += B) {  // the block with the offending value, or the tail
        const std::uint8_t* p = v + i;
        if (n - i < B) {
            std::memcpy(t, v + i, n - i);
            p = t;
        }
        if (nibble_range_violation<Signed, A>(p, A{})) {
            std::size_t k = 0;  // the block holds a bad value (the tail's zero padding is in range)
            while (static_cast<std::uint8_t>(p[k] + bias) <= 15) ++k;
            return i + k;
        }
    }
    return n;
#else
    (void)v;
    return n;
#endif
}

/// Packs n 4-bit values (already range-checked; bytes, low 4 bits used) into ceil(n/2)
/// bytes, element 2i in the low nibble, an odd count's padding nibble 0.
template <class A>
void pack_int4_loop(const std::uint8_t* v, std::uint8_t* packed, std::size_t n) noexcept {
#if LOWBIT_HAS_XSIMD
    constexpr std::size_t B = 8 * fbatch<A>::size;  // values per block
    std::size_t i = 0;
    for (; i + B <= n; i += B) pack_nibbles_block<A>(v + i, packed + i / 2, A{});
    if (i < n) {
        alignas(64) std::uint8_t vt[B] = {};  // the padding nibble packs a 0
        alignas(64) std::uint8_t pt[B / 2];
        std::memcpy(vt, v + i, n - i);
        pack_nibbles_block<A>(vt, pt, A{});
        std::memcpy(packed + i / 2, pt, (n - i + 1) / 2);
    }
#else
    (void)v, (void)packed, (void)n;
#endif
}

/// Unpacks n 4-bit values from ceil(n/2) bytes into n bytes (Signed: sign-extended s4).
template <class A, bool Signed>
void unpack_int4_loop(const std::uint8_t* packed, std::uint8_t* v, std::size_t n) noexcept {
#if LOWBIT_HAS_XSIMD
    constexpr std::size_t B = 8 * fbatch<A>::size;  // values per block
    std::size_t i = 0;
    for (; i + B <= n; i += B) unpack_nibbles_block<Signed, A>(packed + i / 2, v + i, A{});
    if (i < n) {
        alignas(64) std::uint8_t pt[B / 2] = {};
        alignas(64) std::uint8_t vt[B];
        std::memcpy(pt, packed + i / 2, (n - i + 1) / 2);
        unpack_nibbles_block<Signed, A>(pt, vt, A{});
        std::memcpy(v + i, vt, n - i);
    }
#else
    (void)packed, (void)v, (void)n;
#endif
}

}  // namespace detail

/// Packs s4 values (each in [-8, 7]) into ceil(n/2) bytes; bit-identical to
/// lowbit::ref::pack_s4 (errors: packed.size() != ceil(n/2); the first value out of range,
/// reported as values[i]). Nothing is written on error.
template <class Arch = default_arch>
status pack_s4(span<const std::int8_t> values, span<std::uint8_t> packed) {
    if constexpr (std::is_same<Arch, scalar_arch>::value) {
        return ref::pack_s4(values, packed);
    } else {
        LOWBIT_DETAIL_CHECK(packed.size() == s4::storage_size(values.size()), errc::size_mismatch, "packed.size()",
                            packed.size(), "must be (values.size() + 1) / 2");
        const auto* v = reinterpret_cast<const std::uint8_t*>(values.data());
        const std::size_t bad = detail::int4_range_loop<Arch, true>(v, values.size());
        LOWBIT_DETAIL_CHECK(bad == values.size(), errc::invalid_argument, "values[i]", values[bad],
                            "s4 values must be in [-8, 7]");
        detail::pack_int4_loop<Arch>(v, packed.data(), values.size());
        return {};
    }
}

/// Packs u4 values (each in [0, 15]); same contract as pack_s4, bit-identical to
/// lowbit::ref::pack_u4.
template <class Arch = default_arch>
status pack_u4(span<const std::uint8_t> values, span<std::uint8_t> packed) {
    if constexpr (std::is_same<Arch, scalar_arch>::value) {
        return ref::pack_u4(values, packed);
    } else {
        LOWBIT_DETAIL_CHECK(packed.size() == u4::storage_size(values.size()), errc::size_mismatch, "packed.size()",
                            packed.size(), "must be (values.size() + 1) / 2");
        const std::size_t bad = detail::int4_range_loop<Arch, false>(values.data(), values.size());
        LOWBIT_DETAIL_CHECK(bad == values.size(), errc::invalid_argument, "values[i]", values[bad],
                            "u4 values must be in [0, 15]");
        detail::pack_int4_loop<Arch>(values.data(), packed.data(), values.size());
        return {};
    }
}

/// Unpacks values.size() s4 elements (sign-extended) from ceil(n/2) bytes; the padding
/// nibble of an odd count is ignored. Bit-identical to lowbit::ref::unpack_s4 (error:
/// packed.size() != ceil(n/2)).
template <class Arch = default_arch>
status unpack_s4(span<const std::uint8_t> packed, span<std::int8_t> values) {
    if constexpr (std::is_same<Arch, scalar_arch>::value) {
        return ref::unpack_s4(packed, values);
    } else {
        LOWBIT_DETAIL_CHECK(packed.size() == s4::storage_size(values.size()), errc::size_mismatch, "packed.size()",
                            packed.size(), "must be (values.size() + 1) / 2");
        detail::unpack_int4_loop<Arch, true>(packed.data(), reinterpret_cast<std::uint8_t*>(values.data()),
                                             values.size());
        return {};
    }
}

/// Unpacks values.size() u4 elements (0..15); same contract as unpack_s4, bit-identical to
/// lowbit::ref::unpack_u4.
template <class Arch = default_arch>
status unpack_u4(span<const std::uint8_t> packed, span<std::uint8_t> values) {
    if constexpr (std::is_same<Arch, scalar_arch>::value) {
        return ref::unpack_u4(packed, values);
    } else {
        LOWBIT_DETAIL_CHECK(packed.size() == u4::storage_size(values.size()), errc::size_mismatch, "packed.size()",
                            packed.size(), "must be (values.size() + 1) / 2");
        detail::unpack_int4_loop<Arch, false>(packed.data(), values.data(), values.size());
        return {};
    }
}

}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_INT4_HPP

/// Explicit instantiations (X empty) or declarations (X = extern) of this header's loops for
/// architecture A; used by LOWBIT_KERNELS_INSTANTIATE / LOWBIT_KERNELS_EXTERN (dispatch.hpp).
#define LOWBIT_DETAIL_INT4_LOOPS(X, A)                                                                             \
    X template std::size_t detail::int4_range_loop<A, true>(const std::uint8_t*, std::size_t) noexcept;            \
    X template std::size_t detail::int4_range_loop<A, false>(const std::uint8_t*, std::size_t) noexcept;           \
    X template void detail::pack_int4_loop<A>(const std::uint8_t*, std::uint8_t*, std::size_t) noexcept;           \
    X template void detail::unpack_int4_loop<A, true>(const std::uint8_t*, std::uint8_t*, std::size_t) noexcept;   \
    X template void detail::unpack_int4_loop<A, false>(const std::uint8_t*, std::uint8_t*, std::size_t) noexcept;
