// tests/lowbit_catch.hpp: the one Catch2 include of lowbit's tests. Debian 12 ships
// Catch2 2.13 (<catch2/catch.hpp>); Ubuntu 24.04 ships Catch2 3 (<catch2/catch_all.hpp>),
// where the string matcher Catch::Contains became Catch::Matchers::ContainsSubstring.
#ifndef LOWBIT_TESTS_LOWBIT_CATCH_HPP
#define LOWBIT_TESTS_LOWBIT_CATCH_HPP

#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#include <string>
namespace Catch {
inline Matchers::StringContainsMatcher Contains(const std::string& s) { return Matchers::ContainsSubstring(s); }
}  // namespace Catch
#else
#include <catch2/catch.hpp>
#endif

#endif  // LOWBIT_TESTS_LOWBIT_CATCH_HPP
