// tests/contract/contract_util.hpp: helpers of the contract tests (docs/contract.md).
// status_of runs a call and returns its lowbit::status whether the build throws
// (lowbit::error) or returns the status; require_error checks code and argument name.
#ifndef LOWBIT_TESTS_CONTRACT_UTIL_HPP
#define LOWBIT_TESTS_CONTRACT_UTIL_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <lowbit/core/span.hpp>
#include <lowbit/core/status.hpp>

#include "lowbit_catch.hpp"

namespace contract {

/// A vector as a read-only / writable lowbit::span.
template <class T>
lowbit::span<const T> cs(const std::vector<T>& v) { return lowbit::span<const T>(v.data(), v.size()); }
template <class T>
lowbit::span<T> ms(std::vector<T>& v) { return lowbit::span<T>(v.data(), v.size()); }

template <class T>
lowbit::status to_status(const T& r) {
    if constexpr (std::is_same<T, lowbit::status>::value) {
        return r;
    } else {
        return r.status();
    }
}

/// The status of f(), also when it is reported by a thrown lowbit::error.
template <class F>
lowbit::status status_of(F&& f) {
#if !LOWBIT_NO_EXCEPTIONS
    try {
        return to_status(f());
    } catch (const lowbit::error& e) {
        return e.status();
    }
#else
    return to_status(f());
#endif
}

inline void require_status(const lowbit::status& s, lowbit::errc code, const std::string& argument) {
    INFO("argument '" << s.argument << "' = " << s.value << ": " << s.expected);
    REQUIRE(s.code == code);
    REQUIRE(std::string(s.argument) == argument);
}

template <class F>
void require_error(F&& f, lowbit::errc code, const std::string& argument) {
    require_status(status_of(f), code, argument);
}

inline std::uint32_t bits(float f) {
    std::uint32_t u = 0;
    std::memcpy(&u, &f, 4);
    return u;
}
inline float from_bits(std::uint32_t u) {
    float f = 0;
    std::memcpy(&f, &u, 4);
    return f;
}

constexpr float nan_f = std::numeric_limits<float>::quiet_NaN();
constexpr float inf_f = std::numeric_limits<float>::infinity();
constexpr float eps_f = 1.1920928955078125e-07f;  // 2^-23

/// A 64-byte aligned byte arena; at(offset) gives a T* `offset` bytes past the boundary.
/// Every offset used by the tests is a multiple of alignof(T): misaligned for SIMD
/// (16 / 32 / 64 bytes), never for the C++ object type.
struct arena {
    std::vector<unsigned char> storage;
    unsigned char* base = nullptr;
    explicit arena(std::size_t bytes) : storage(bytes + 128, 0xA5) {
        const auto p = reinterpret_cast<std::uintptr_t>(storage.data());
        base = storage.data() + ((64 - p % 64) % 64);
    }
    template <class T>
    T* at(std::size_t offset) {
        return reinterpret_cast<T*>(base + offset);
    }
};

}  // namespace contract

#endif  // LOWBIT_TESTS_CONTRACT_UTIL_HPP
