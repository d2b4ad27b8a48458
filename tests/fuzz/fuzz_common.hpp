// tests/fuzz/fuzz_common.hpp: what every lowbit fuzz target shares: running a lowbit call and
// getting its status whether it throws (exceptions on) or returns; comparing two statuses and
// two buffers bit for bit; owning buffers whose last element ends exactly at the end of a heap
// block (so ASan sees a read or write one past the span); reading floats the fuzzer chose,
// NaN / Inf / denormals / rounding ties included.
//
// A finding is reported by FUZZ_REQUIRE, which prints what differed and calls abort():
// libFuzzer then saves the input as crash-<sha1> and the run fails.
#ifndef LOWBIT_TESTS_FUZZ_COMMON_HPP
#define LOWBIT_TESTS_FUZZ_COMMON_HPP

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>

#include <fuzzer/FuzzedDataProvider.h>  // clang's header (system include), not a copy

#include <lowbit/core/status.hpp>

#define FUZZ_REQUIRE(cond, ...)                                                      \
    do {                                                                             \
        if (!(cond)) {                                                               \
            std::fprintf(stderr, "lowbit fuzz finding at %s:%d: %s\n  ", __FILE__,   \
                         __LINE__, #cond);                                           \
            std::fprintf(stderr, __VA_ARGS__);                                       \
            std::fprintf(stderr, "\n");                                              \
            std::abort();                                                            \
        }                                                                            \
    } while (0)

namespace fuzz {

/// The status of a lowbit call, thrown (lowbit::error) or returned.
template <class F>
lowbit::status run(F&& f) {
#if !LOWBIT_NO_EXCEPTIONS
    try {
        return f();
    } catch (const lowbit::error& e) {
        lowbit::status s = e.status();
        FUZZ_REQUIRE(!s.ok(), "a lowbit::error carried an ok status");
        return s;
    }
#else
    return f();
#endif
}

/// Same code, argument, expectation and value (bitwise; two NaNs compare equal).
inline bool same_status(const lowbit::status& a, const lowbit::status& b) {
    if (a.code != b.code) return false;
    if (a.ok()) return true;
    const bool values = std::memcmp(&a.value, &b.value, sizeof(double)) == 0 || (a.value != a.value && b.value != b.value);
    return values && std::strcmp(a.argument, b.argument) == 0 && std::strcmp(a.expected, b.expected) == 0;
}

inline void require_same_status(const lowbit::status& ref, const lowbit::status& got, const char* what) {
    FUZZ_REQUIRE(same_status(ref, got), "%s: reference status %s '%s' = %g (%s), kernel status %s '%s' = %g (%s)",
                 what, lowbit::to_string(ref.code), ref.argument, ref.value, ref.expected, lowbit::to_string(got.code),
                 got.argument, got.value, got.expected);
}

/// Index of the first byte where two buffers differ, or -1.
inline long first_byte_difference(const void* a, const void* b, std::size_t bytes) {
    const auto* x = static_cast<const unsigned char*>(a);
    const auto* y = static_cast<const unsigned char*>(b);
    for (std::size_t i = 0; i < bytes; ++i)
        if (x[i] != y[i]) return static_cast<long>(i);
    return -1;
}

/// n elements of T on the heap, preceded by `offset` elements: data() is misaligned by
/// offset * sizeof(T) bytes and the last element is the last of the heap block.
template <class T>
class buffer {
public:
    buffer(std::size_t n, std::size_t offset, unsigned char fill) : m_mem(new T[n + offset]), m_n(n), m_off(offset) {
        std::memset(static_cast<void*>(m_mem.get()), fill, (n + offset) * sizeof(T));
    }
    T* data() const noexcept { return m_mem.get() + m_off; }
    std::size_t size() const noexcept { return m_n; }
    T& operator[](std::size_t i) const noexcept { return data()[i]; }

private:
    std::unique_ptr<T[]> m_mem;
    std::size_t m_n, m_off;
};

template <class T>
bool same_bytes(const buffer<T>& a, const buffer<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

inline float float_from_bits(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline std::uint32_t bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

/// A float the fuzzer picks: raw bits (any NaN payload, Inf, denormal), a special value, or
/// k / 2 * scale and its float neighbours (rounding ties of quantize at scale), or noise
/// of a few steps.
inline float pick_float(FuzzedDataProvider& p, float scale) {
    static const float specials[] = {0.0f,
                                     -0.0f,
                                     std::numeric_limits<float>::infinity(),
                                     -std::numeric_limits<float>::infinity(),
                                     std::numeric_limits<float>::quiet_NaN(),
                                     -std::numeric_limits<float>::quiet_NaN(),
                                     std::numeric_limits<float>::signaling_NaN(),
                                     std::numeric_limits<float>::denorm_min(),
                                     -std::numeric_limits<float>::denorm_min(),
                                     std::numeric_limits<float>::min(),
                                     std::numeric_limits<float>::max(),
                                     -std::numeric_limits<float>::max(),
                                     2147483648.0f,
                                     -2147483648.0f,
                                     8388608.5f,
                                     1e-40f};
    const std::uint8_t sel = p.ConsumeIntegral<std::uint8_t>();
    switch (sel % 8) {
        case 0:
        case 1: return float_from_bits(p.ConsumeIntegral<std::uint32_t>());
        case 2: return specials[p.ConsumeIntegral<std::uint8_t>() % (sizeof specials / sizeof specials[0])];
        case 3:
        case 4: {  // a tie of round(x / scale), or a float next to it
            const float half = static_cast<float>(p.ConsumeIntegral<std::int16_t>()) * 0.5f;
            std::uint32_t u = bits(half * scale);
            const int nudge = static_cast<int>(sel >> 3) % 3 - 1;  // -1, 0, +1 ulp (magnitude)
            if (u != 0 && (u & 0x7FFFFFFFu) < 0x7F800000u) u = static_cast<std::uint32_t>(static_cast<std::int64_t>(u) + nudge);
            return float_from_bits(u);
        }
        default: {
            const float k = static_cast<float>(p.ConsumeIntegral<std::int16_t>()) / 64.0f;
            return k * scale;
        }
    }
}

/// A scale: usually a valid one from a small table or of random bits, sometimes anything
/// (0, negative, NaN, Inf, denormal) to exercise the error paths.
inline float pick_scale(FuzzedDataProvider& p) {
    static const float nice[] = {0.1f, 1.0f, 0.5f, 0.25f, 1.0f / 3.0f, 0.0078125f, 1e-3f, 3.7e-5f, 2.5f, 100.0f,
                                 1e-20f, 1e20f, 1.1754944e-38f, 3e38f, 0.0f, -0.5f};
    const std::uint8_t sel = p.ConsumeIntegral<std::uint8_t>();
    if (sel < 160) return nice[sel % (sizeof nice / sizeof nice[0])];
    if (sel < 240) {  // a positive normal float of random mantissa, exponent near 1
        const std::uint32_t m = p.ConsumeIntegral<std::uint32_t>();
        const std::uint32_t e = 127u - 20u + (m >> 27);  // 2^-20 .. 2^11
        return float_from_bits((e << 23) | (m & 0x7FFFFFu));
    }
    return float_from_bits(p.ConsumeIntegral<std::uint32_t>());
}

/// Aborts with what, where and the first differing byte unless got's bytes equal ref's.
template <class T>
void require_same(const char* what, const char* arch, const buffer<T>& ref, const buffer<T>& got) {
    const long at = first_byte_difference(ref.data(), got.data(), ref.size() * sizeof(T));
    FUZZ_REQUIRE(at < 0, "%s on %s: output byte %ld differs from the reference (%zu elements)", what, arch, at,
                 ref.size());
}

}  // namespace fuzz

#endif  // LOWBIT_TESTS_FUZZ_COMMON_HPP
