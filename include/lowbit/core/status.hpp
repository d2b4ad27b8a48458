// lowbit/core/status.hpp: how lowbit reports invalid arguments.
//
// Every check names the argument and the value it got. With exceptions enabled a failed
// check throws lowbit::error (a std::invalid_argument) whose what() reads, for example,
//   lowbit: invalid argument: argument 'scale' = -0.5: must be finite and > 0 ...
// With LOWBIT_NO_EXCEPTIONS the check makes the function return a non-ok `status` (or a
// `result<T>` holding one) and writes nothing to its outputs. The same code therefore
// compiles on a host with exceptions and in firmware without them.
#ifndef LOWBIT_CORE_STATUS_HPP
#define LOWBIT_CORE_STATUS_HPP

#include "../config.hpp"

#if !LOWBIT_NO_EXCEPTIONS
#include <cstdio>
#include <stdexcept>
#include <string>
#endif

namespace lowbit {

/// Why a call failed. `ok` is the only success value.
enum class errc : int {
    ok = 0,
    invalid_argument,  ///< a scalar argument is outside its documented range
    size_mismatch,     ///< buffer sizes do not agree with each other or with the shape
    out_of_range,      ///< an index-like argument (axis, channel count) is too large
    overflow,          ///< a size computation would overflow size_t / int32
};

/// The outcome of a checked call: `ok()`, or which argument was wrong, its value, and what
/// was expected of it. Trivially copyable; the strings are static.
struct status {
    errc code = errc::ok;
    const char* argument = "";  ///< name of the offending argument, as in the signature
    double value = 0.0;         ///< the value it had (sizes converted to double)
    const char* expected = "";  ///< what a valid value looks like

    constexpr bool ok() const noexcept { return code == errc::ok; }
    constexpr explicit operator bool() const noexcept { return ok(); }
};

/// A value, or the status explaining why there is none. With exceptions enabled a failed
/// computation throws instead, so a `result` you hold is always ok. Without exceptions,
/// `value()` of a failed result is a documented safe fallback (see each function).
template <class T>
class result {
public:
    constexpr result(const T& v) noexcept : m_value(v) {}  // NOLINT: implicit by design
    /// A failure; value() is `T{}` (each T documents its default as the safe fallback).
    constexpr result(const lowbit::status& s) noexcept : m_value(), m_status(s) {}
    constexpr result(const lowbit::status& s, const T& fallback) noexcept : m_value(fallback), m_status(s) {}

    constexpr bool ok() const noexcept { return m_status.ok(); }
    constexpr explicit operator bool() const noexcept { return ok(); }
    constexpr const lowbit::status& status() const noexcept { return m_status; }
    constexpr const T& value() const noexcept { return m_value; }
    constexpr const T& operator*() const noexcept { return m_value; }
    constexpr const T* operator->() const noexcept { return &m_value; }

private:
    T m_value;
    lowbit::status m_status{};
};

/// Name of an error code, for messages.
constexpr const char* to_string(errc e) noexcept {
    switch (e) {
        case errc::ok: return "ok";
        case errc::invalid_argument: return "invalid argument";
        case errc::size_mismatch: return "size mismatch";
        case errc::out_of_range: return "out of range";
        case errc::overflow: return "overflow";
    }
    return "unknown";
}

#if !LOWBIT_NO_EXCEPTIONS
/// Thrown for invalid arguments when exceptions are enabled. `status()` gives the details.
class error : public std::invalid_argument {
public:
    explicit error(const lowbit::status& s) : std::invalid_argument(message(s)), m_status(s) {}
    const lowbit::status& status() const noexcept { return m_status; }

    /// "lowbit: argument 'axis' = 3: must be < rank (3)" style message.
    static std::string message(const lowbit::status& s) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "%.9g", s.value);
        return std::string("lowbit: ") + to_string(s.code) + ": argument '" + s.argument + "' = " + buf +
               ": " + s.expected;
    }

private:
    lowbit::status m_status;
};
#endif

namespace detail {
/// Report a failed check: throw with exceptions, else hand the status back to the caller.
inline status fail(errc code, const char* argument, double value, const char* expected) {
    status s{code, argument, value, expected};
#if !LOWBIT_NO_EXCEPTIONS
    throw error(s);
#else
    return s;
#endif
}
}  // namespace detail

}  // namespace lowbit

/// Inside a function returning `status` or `result<T>` (convertible from status via the
/// second macro): check `cond`, else fail naming `arg` with `value`.
#define LOWBIT_DETAIL_CHECK(cond, code, arg, value, expected)                                    \
    do {                                                                                         \
        if (!(cond)) return ::lowbit::detail::fail((code), (arg), static_cast<double>(value), (expected)); \
    } while (0)

#define LOWBIT_DETAIL_TRY(expr)              \
    do {                                     \
        ::lowbit::status lowbit_detail_s_ = (expr); \
        if (!lowbit_detail_s_.ok()) return lowbit_detail_s_; \
    } while (0)

#endif  // LOWBIT_CORE_STATUS_HPP
