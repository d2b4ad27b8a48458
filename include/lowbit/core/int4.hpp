// lowbit/core/int4.hpp: the one int4 layout lowbit uses everywhere.
//
// Element 2i lives in the low nibble of byte i, element 2i+1 in the high nibble. An odd
// count is padded: the last byte's high nibble is 0. Signed nibbles are two's complement
// (-8..7: 0x8..0xF are -8..-1). n elements take (n + 1) / 2 bytes. This is the layout of
// ONNX INT4/UINT4 and of torch.quint4x2; ggml's Q4_0 differs (see the GEMM issue).
#ifndef LOWBIT_CORE_INT4_HPP
#define LOWBIT_CORE_INT4_HPP

#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "format.hpp"
#include "span.hpp"
#include "status.hpp"

namespace lowbit {

/// Nibble i of a packed buffer, as an unsigned 0..15.
constexpr std::uint8_t get_nibble(const std::uint8_t* packed, std::size_t i) noexcept {
    return static_cast<std::uint8_t>((packed[i / 2] >> ((i % 2) * 4)) & 0x0F);
}
/// Sign-extend a nibble: 0..7 -> 0..7, 8..15 -> -8..-1.
constexpr std::int8_t sign_extend_s4(std::uint8_t nibble) noexcept {
    return static_cast<std::int8_t>(static_cast<std::int8_t>(nibble << 4) >> 4);
}
/// One byte from two 4-bit values (low = element 2i, high = element 2i+1); only the low
/// four bits of each are used, so a signed value's two's complement is kept.
constexpr std::uint8_t pack_nibbles(int low, int high) noexcept {
    return static_cast<std::uint8_t>((low & 0x0F) | ((high & 0x0F) << 4));
}

namespace ref {

/// Packs s4 values (each in [-8, 7]) into ceil(n/2) bytes. Errors: packed.size() !=
/// ceil(values.size()/2); a value out of [-8, 7] (named by index). Nothing written on error.
inline status pack_s4(span<const std::int8_t> values, span<std::uint8_t> packed) {
    LOWBIT_DETAIL_CHECK(packed.size() == s4::storage_size(values.size()), errc::size_mismatch, "packed.size()",
                        packed.size(), "must be (values.size() + 1) / 2");
    for (std::size_t i = 0; i < values.size(); ++i)
        LOWBIT_DETAIL_CHECK(values[i] >= -8 && values[i] <= 7, errc::invalid_argument, "values[i]", values[i],
                            "s4 values must be in [-8, 7]");
    for (std::size_t i = 0; i < packed.size(); ++i) {
        const int hi = 2 * i + 1 < values.size() ? values[2 * i + 1] : 0;
        packed[i] = pack_nibbles(values[2 * i], hi);
    }
    return {};
}

/// Packs u4 values (each in [0, 15]). Same contract as pack_s4.
inline status pack_u4(span<const std::uint8_t> values, span<std::uint8_t> packed) {
    LOWBIT_DETAIL_CHECK(packed.size() == u4::storage_size(values.size()), errc::size_mismatch, "packed.size()",
                        packed.size(), "must be (values.size() + 1) / 2");
    for (std::size_t i = 0; i < values.size(); ++i)
        LOWBIT_DETAIL_CHECK(values[i] <= 15, errc::invalid_argument, "values[i]", values[i],
                            "u4 values must be in [0, 15]");
    for (std::size_t i = 0; i < packed.size(); ++i) {
        const int hi = 2 * i + 1 < values.size() ? values[2 * i + 1] : 0;
        packed[i] = pack_nibbles(values[2 * i], hi);
    }
    return {};
}

/// Unpacks values.size() s4 elements from `packed` (which must hold ceil(n/2) bytes). The
/// padding nibble of an odd count is ignored.
inline status unpack_s4(span<const std::uint8_t> packed, span<std::int8_t> values) {
    LOWBIT_DETAIL_CHECK(packed.size() == s4::storage_size(values.size()), errc::size_mismatch, "packed.size()",
                        packed.size(), "must be (values.size() + 1) / 2");
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = sign_extend_s4(get_nibble(packed.data(), i));
    return {};
}

/// Unpacks values.size() u4 elements. Same contract as unpack_s4.
inline status unpack_u4(span<const std::uint8_t> packed, span<std::uint8_t> values) {
    LOWBIT_DETAIL_CHECK(packed.size() == u4::storage_size(values.size()), errc::size_mismatch, "packed.size()",
                        packed.size(), "must be (values.size() + 1) / 2");
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = get_nibble(packed.data(), i);
    return {};
}

}  // namespace ref
}  // namespace lowbit

#endif  // LOWBIT_CORE_INT4_HPP
