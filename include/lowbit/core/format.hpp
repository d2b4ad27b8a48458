// lowbit/core/format.hpp: the integer formats lowbit quantizes to, as tag types with traits.
//
// A format is a template parameter (it changes the code): s8, u8, s4, u4, and s32 for
// biases and accumulators. Each tag says its storage type, bit width and natural range.
// 4-bit formats are stored packed, two per byte (see int4.hpp for the layout); their
// `value_type` is the type of one unpacked element.
#ifndef LOWBIT_CORE_FORMAT_HPP
#define LOWBIT_CORE_FORMAT_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../config.hpp"

namespace lowbit {

/// Runtime name of a format, for messages, serialization and formatting.
enum class format_id : std::uint8_t { s8, u8, s4, u4, s32 };

namespace detail {
template <format_id Id, class Value, class Storage, int Bits, bool Signed, bool Packed>
struct format_base {
    static constexpr format_id id = Id;
    using value_type = Value;      ///< one element, unpacked
    using storage_type = Storage;  ///< what a buffer of this format holds
    static constexpr int bits = Bits;
    static constexpr bool is_signed = Signed;
    static constexpr bool is_packed = Packed;
    /// Natural range: [-2^(bits-1), 2^(bits-1)-1] or [0, 2^bits-1].
    static constexpr std::int32_t qmin = Signed ? static_cast<std::int32_t>(-(std::int64_t(1) << (Bits - 1))) : 0;
    static constexpr std::int32_t qmax =
        Signed ? std::int32_t((std::int64_t(1) << (Bits - 1)) - 1) : std::int32_t((std::int64_t(1) << Bits) - 1);
    /// Bytes needed for n elements (4-bit: ceil(n / 2)).
    static constexpr std::size_t storage_size(std::size_t n) noexcept { return Packed ? n / 2 + n % 2 : n; }
};
}  // namespace detail

struct s8 : detail::format_base<format_id::s8, std::int8_t, std::int8_t, 8, true, false> {};
struct u8 : detail::format_base<format_id::u8, std::uint8_t, std::uint8_t, 8, false, false> {};
/// Signed 4-bit, two's-complement nibbles, packed two per byte.
struct s4 : detail::format_base<format_id::s4, std::int8_t, std::uint8_t, 4, true, true> {};
/// Unsigned 4-bit, packed two per byte.
struct u4 : detail::format_base<format_id::u4, std::uint8_t, std::uint8_t, 4, false, true> {};
/// 32-bit accumulators and biases.
struct s32 : detail::format_base<format_id::s32, std::int32_t, std::int32_t, 32, true, false> {};

template <class T>
struct is_format
    : std::bool_constant<std::is_same<T, s8>::value || std::is_same<T, u8>::value || std::is_same<T, s4>::value ||
                         std::is_same<T, u4>::value || std::is_same<T, s32>::value> {};

/// Short lowercase name: "s8", "u8", "s4", "u4", "s32".
constexpr const char* to_string(format_id f) noexcept {
    switch (f) {
        case format_id::s8: return "s8";
        case format_id::u8: return "u8";
        case format_id::s4: return "s4";
        case format_id::u4: return "u4";
        case format_id::s32: return "s32";
    }
    return "?";
}

}  // namespace lowbit

#endif  // LOWBIT_CORE_FORMAT_HPP
