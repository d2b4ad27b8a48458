// lowbit/observers/state.hpp: how observers save and load their state as bytes, so that
// calibration can be sharded over threads, processes or machines and merged.
//
// Layout (little-endian, independent of the host):
//   offset  0  u32  magic "LBOS" (0x534F424C)
//           4  u16  layout version (state_version)
//           6  u16  observer kind (what class wrote it)
//           8  u32  configuration tag: a hash of everything that must match to merge or load
//                   (format, symmetry, range, eps, granularity, axis, channels, bins, mode...)
//          12  u32  payload size in bytes
//          16  u32  CRC-32 (IEEE 802.3) of the payload
//          20  ...  payload, written by the observer with state_writer
// load() checks every field before it changes anything: a truncated, corrupted,
// wrong-version, wrong-kind or wrong-configuration buffer is refused with an error naming
// what is wrong, and the observer is left as it was. Freestanding: no heap, no exceptions
// required.
#ifndef LOWBIT_OBSERVERS_STATE_HPP
#define LOWBIT_OBSERVERS_STATE_HPP

#include <cstddef>
#include <cstdint>

#include "../core/span.hpp"
#include "../core/status.hpp"

namespace lowbit {

constexpr std::uint32_t state_magic = 0x534F424Cu;  // "LBOS" in little-endian bytes
constexpr std::uint16_t state_version = 1;
constexpr std::size_t state_header_size = 20;

/// CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320), as zlib's crc32(). crc32("123456789")
/// = 0xCBF43926.
constexpr std::uint32_t crc32(span<const std::uint8_t> bytes, std::uint32_t crc = 0) noexcept {
    crc = ~crc;
    for (std::uint8_t b : bytes) {
        crc ^= b;
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/// FNV-1a accumulator for configuration tags.
class config_hash {
public:
    constexpr config_hash& add(std::uint64_t v) noexcept {
        for (int i = 0; i < 8; ++i) {
            m_h = (m_h ^ static_cast<std::uint32_t>((v >> (8 * i)) & 0xFFu)) * 16777619u;
        }
        return *this;
    }
    constexpr config_hash& add_float(float f) noexcept { return add(float_bits(f)); }
    constexpr std::uint32_t value() const noexcept { return m_h; }

    /// The IEEE binary32 bit pattern of f (constexpr through the compiler's bit cast).
    static constexpr std::uint32_t float_bits(float f) noexcept {
        static_assert(sizeof(float) == 4, "lowbit needs IEEE binary32 floats");
        return __builtin_bit_cast(std::uint32_t, f);
    }

private:
    std::uint32_t m_h = 2166136261u;
};

/// Appends little-endian values to a caller buffer; remembers overflow instead of writing
/// out of bounds (check ok() at the end).
class state_writer {
public:
    constexpr explicit state_writer(span<std::uint8_t> out) noexcept : m_out(out) {}
    constexpr void u8(std::uint8_t v) noexcept {
        if (m_pos < m_out.size()) m_out[m_pos] = v;
        else m_overflow = true;
        ++m_pos;
    }
    constexpr void u16(std::uint16_t v) noexcept { bytes(v, 2); }
    constexpr void u32(std::uint32_t v) noexcept { bytes(v, 4); }
    constexpr void u64(std::uint64_t v) noexcept { bytes(v, 8); }
    constexpr void i32(std::int32_t v) noexcept { u32(static_cast<std::uint32_t>(v)); }
    constexpr void f32(float v) noexcept { u32(config_hash::float_bits(v)); }
    constexpr std::size_t size() const noexcept { return m_pos; }
    constexpr bool ok() const noexcept { return !m_overflow; }

private:
    constexpr void bytes(std::uint64_t v, int n) noexcept {
        for (int i = 0; i < n; ++i) u8(static_cast<std::uint8_t>(v >> (8 * i)));
    }
    span<std::uint8_t> m_out;
    std::size_t m_pos = 0;
    bool m_overflow = false;
};

/// Reads little-endian values; reading past the end sets a flag and yields zeros.
class state_reader {
public:
    constexpr explicit state_reader(span<const std::uint8_t> in) noexcept : m_in(in) {}
    constexpr std::uint8_t u8() noexcept {
        if (m_pos >= m_in.size()) {
            m_overflow = true;
            return 0;
        }
        return m_in[m_pos++];
    }
    constexpr std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(bytes(2)); }
    constexpr std::uint32_t u32() noexcept { return static_cast<std::uint32_t>(bytes(4)); }
    constexpr std::uint64_t u64() noexcept { return bytes(8); }
    constexpr std::int32_t i32() noexcept { return static_cast<std::int32_t>(u32()); }
    constexpr float f32() noexcept { return __builtin_bit_cast(float, u32()); }
    constexpr std::size_t remaining() const noexcept { return m_pos <= m_in.size() ? m_in.size() - m_pos : 0; }
    constexpr bool ok() const noexcept { return !m_overflow; }

private:
    constexpr std::uint64_t bytes(int n) noexcept {
        std::uint64_t v = 0;
        for (int i = 0; i < n; ++i) v |= std::uint64_t(u8()) << (8 * i);
        return v;
    }
    span<const std::uint8_t> m_in;
    std::size_t m_pos = 0;
    bool m_overflow = false;
};

/// The fixed 20-byte header in front of every saved state.
struct state_header {
    std::uint16_t kind = 0;
    std::uint32_t config = 0;
    std::uint32_t payload_size = 0;
    std::uint32_t checksum = 0;
};

/// Writes header + payload: `write_payload(state_writer&)` is called twice (once to size,
/// once to write). Errors: `out` too small (nothing meaningful written; size reported).
template <class WritePayload>
status save_state(std::uint16_t kind, std::uint32_t config, span<std::uint8_t> out, WritePayload write_payload) {
    state_writer sizer{span<std::uint8_t>{}};
    write_payload(sizer);
    const std::size_t need = state_header_size + sizer.size();
    LOWBIT_DETAIL_CHECK(out.size() >= need, errc::size_mismatch, "out.size()", out.size(),
                        "too small for the observer's state (see state_size())");
    state_writer body{out.subspan(state_header_size, sizer.size())};
    write_payload(body);
    const std::uint32_t crc = crc32(span<const std::uint8_t>(out.data() + state_header_size, sizer.size()));
    state_writer head{out.subspan(0, state_header_size)};
    head.u32(state_magic);
    head.u16(state_version);
    head.u16(kind);
    head.u32(config);
    head.u32(static_cast<std::uint32_t>(sizer.size()));
    head.u32(crc);
    return {};
}

/// Checks the header of `in` against the expected kind and configuration and the payload's
/// size and checksum; on success `payload` is the payload bytes.
inline status check_state(span<const std::uint8_t> in, std::uint16_t kind, std::uint32_t config,
                          span<const std::uint8_t>& payload) {
    LOWBIT_DETAIL_CHECK(in.size() >= state_header_size, errc::size_mismatch, "state.size()", in.size(),
                        "truncated: shorter than the 20-byte header");
    state_reader r{in};
    const std::uint32_t magic = r.u32();
    LOWBIT_DETAIL_CHECK(magic == state_magic, errc::invalid_argument, "state magic", magic,
                        "not a lowbit observer state");
    const std::uint16_t version = r.u16();
    LOWBIT_DETAIL_CHECK(version == state_version, errc::invalid_argument, "state version", version,
                        "unsupported state layout version");
    const std::uint16_t k = r.u16();
    LOWBIT_DETAIL_CHECK(k == kind, errc::invalid_argument, "state kind", k, "saved by a different observer type");
    const std::uint32_t c = r.u32();
    LOWBIT_DETAIL_CHECK(c == config, errc::invalid_argument, "state configuration", c,
                        "saved by an observer with a different configuration");
    const std::uint32_t size = r.u32();
    const std::uint32_t crc = r.u32();
    LOWBIT_DETAIL_CHECK(size == in.size() - state_header_size, errc::size_mismatch, "state payload size", size,
                        "does not match the buffer (truncated or trailing bytes)");
    payload = in.subspan(state_header_size, size);
    LOWBIT_DETAIL_CHECK(crc32(payload) == crc, errc::invalid_argument, "state checksum", crc,
                        "does not match the payload (corrupted)");
    return {};
}

}  // namespace lowbit

#endif  // LOWBIT_OBSERVERS_STATE_HPP
