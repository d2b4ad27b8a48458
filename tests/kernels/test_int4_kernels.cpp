// SIMD int4 pack / unpack against lowbit::ref (core/int4.hpp): every ISA the CPU runs, every
// tail size, unaligned buffers, canaries, random padding nibbles, and the range errors
// (first offending value named, nothing written) wherever the bad value sits in the blocks.
#include "lowbit_catch.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <lowbit/kernels/int4.hpp>

#include "inputs.hpp"
#include "isa.hpp"

namespace {

constexpr std::uint8_t canary = 0xA5;

template <class V>
std::vector<V> random_values(std::size_t n, bool is_signed, std::uint32_t seed) {
    std::mt19937 gen(seed);
    std::vector<V> v(n);
    for (V& e : v) e = static_cast<V>(is_signed ? static_cast<int>(gen() % 16) - 8 : static_cast<int>(gen() % 16));
    return v;
}

template <class A, class V, class RefPack, class KerPack, class RefUnpack, class KerUnpack>
void check_int4(bool is_signed, RefPack ref_pack, KerPack ker_pack, RefUnpack ref_unpack, KerUnpack ker_unpack) {
    using lowbit::span;
    for (std::size_t n : tail_sizes()) {
        for (std::size_t offset : {std::size_t(0), std::size_t(1), std::size_t(3)}) {
            const auto seed = static_cast<std::uint32_t>(n * 5 + offset);
            const std::size_t m = (n + 1) / 2;
            // pack
            const std::vector<V> src = random_values<V>(n + offset, is_signed, seed);
            const span<const V> values(src.data() + offset, n);
            std::vector<std::uint8_t> want(m + offset + 4, canary), got(m + offset + 4, canary);
            REQUIRE(ref_pack(values, span<std::uint8_t>(want.data() + offset, m)).ok());
            REQUIRE(ker_pack(values, span<std::uint8_t>(got.data() + offset, m)).ok());
            {
                const long d = lowbit_test::first_difference(want.data(), got.data(), want.size());
                INFO("pack: arch " << A::name() << " n " << n << " offset " << offset << " first difference at " << d);
                REQUIRE(d == -1);
            }
            // unpack random bytes (the padding nibble of an odd count is random too)
            std::mt19937 gen(seed + 1);
            std::vector<std::uint8_t> packed_src(m + offset);
            for (auto& b : packed_src) b = static_cast<std::uint8_t>(gen() & 0xFF);
            const span<const std::uint8_t> packed(packed_src.data() + offset, m);
            std::vector<V> uwant(n + offset + 4, static_cast<V>(canary)), ugot(n + offset + 4, static_cast<V>(canary));
            REQUIRE(ref_unpack(packed, span<V>(uwant.data() + offset, n)).ok());
            REQUIRE(ker_unpack(packed, span<V>(ugot.data() + offset, n)).ok());
            {
                const long d = lowbit_test::first_difference(uwant.data(), ugot.data(), uwant.size());
                INFO("unpack: arch " << A::name() << " n " << n << " offset " << offset << " first difference at "
                                     << d);
                REQUIRE(d == -1);
            }
        }
    }
}

}  // namespace

TEMPLATE_TEST_CASE("kernels int4 pack / unpack equal ref", "[kernels][int4]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    using lowbit::span;
    check_int4<TestType, std::int8_t>(
        true, [](span<const std::int8_t> v, span<std::uint8_t> p) { return lowbit::ref::pack_s4(v, p); },
        [](span<const std::int8_t> v, span<std::uint8_t> p) { return lowbit::kernels::pack_s4<TestType>(v, p); },
        [](span<const std::uint8_t> p, span<std::int8_t> v) { return lowbit::ref::unpack_s4(p, v); },
        [](span<const std::uint8_t> p, span<std::int8_t> v) { return lowbit::kernels::unpack_s4<TestType>(p, v); });
    check_int4<TestType, std::uint8_t>(
        false, [](span<const std::uint8_t> v, span<std::uint8_t> p) { return lowbit::ref::pack_u4(v, p); },
        [](span<const std::uint8_t> v, span<std::uint8_t> p) { return lowbit::kernels::pack_u4<TestType>(v, p); },
        [](span<const std::uint8_t> p, span<std::uint8_t> v) { return lowbit::ref::unpack_u4(p, v); },
        [](span<const std::uint8_t> p, span<std::uint8_t> v) { return lowbit::kernels::unpack_u4<TestType>(p, v); });
}

TEMPLATE_TEST_CASE("kernels int4: every byte value packs / unpacks as ref", "[kernels][int4]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    std::vector<std::uint8_t> all(256 * 3);  // every byte, in several block positions
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint8_t>(i * 7);
    std::vector<std::int8_t> s_want(all.size() * 2), s_got(all.size() * 2);
    std::vector<std::uint8_t> u_want(all.size() * 2), u_got(all.size() * 2);
    REQUIRE(lowbit::ref::unpack_s4(all, s_want).ok());
    REQUIRE(lowbit::kernels::unpack_s4<TestType>(all, s_got).ok());
    CHECK(s_want == s_got);
    REQUIRE(lowbit::ref::unpack_u4(all, u_want).ok());
    REQUIRE(lowbit::kernels::unpack_u4<TestType>(all, u_got).ok());
    CHECK(u_want == u_got);
    std::vector<std::uint8_t> p_want(all.size()), p_got(all.size());  // and back
    REQUIRE(lowbit::ref::pack_s4(s_want, p_want).ok());
    REQUIRE(lowbit::kernels::pack_s4<TestType>(s_want, p_got).ok());
    CHECK(p_want == all);
    CHECK(p_got == all);
    std::fill(p_got.begin(), p_got.end(), std::uint8_t(0));
    REQUIRE(lowbit::kernels::pack_u4<TestType>(u_want, p_got).ok());
    CHECK(p_got == all);
}

TEMPLATE_TEST_CASE("kernels int4 checks like ref", "[kernels][int4][errors]", LOWBIT_TEST_ARCHS) {
    LOWBIT_REQUIRE_ARCH(TestType);
    namespace k = lowbit::kernels;
    std::vector<std::uint8_t> packed(20, canary), packed21(21, canary);
    const std::vector<std::int8_t> s40(40, 1);
    const std::vector<std::uint8_t> u40(40, 1);
    std::vector<std::int8_t> s_out(40, 3);
    std::vector<std::uint8_t> u_out(40, 3);
    CHECK_THROWS_WITH((k::pack_s4<TestType>(s40, packed21)), Catch::Contains("'packed.size()' = 21"));
    CHECK_THROWS_WITH((k::pack_u4<TestType>(u40, packed21)), Catch::Contains("'packed.size()' = 21"));
    CHECK_THROWS_WITH((k::unpack_s4<TestType>(packed21, s_out)), Catch::Contains("'packed.size()' = 21"));
    CHECK_THROWS_WITH((k::unpack_u4<TestType>(packed21, u_out)), Catch::Contains("'packed.size()' = 21"));
    CHECK(s_out == std::vector<std::int8_t>(40, 3));
    CHECK(u_out == std::vector<std::uint8_t>(40, 3));

    // An out-of-range value anywhere (first block, later blocks, the tail): ref's message,
    // naming the first offending value, and nothing written.
    for (std::size_t n : {std::size_t(1), std::size_t(31), std::size_t(64), std::size_t(300), std::size_t(1023)}) {
        for (std::size_t pos : {std::size_t(0), n / 3, n / 2 + 1, n - 1}) {
            if (pos >= n) continue;
            std::vector<std::uint8_t> out((n + 1) / 2, canary);
            for (int bad : {8, -9, 127, -128, 16}) {
                std::vector<std::int8_t> s(n, -8);
                s[pos] = static_cast<std::int8_t>(bad);
                if (pos + 1 < n) s[n - 1] = 100;  // a later bad value is not the one reported
                INFO("s4 n " << n << " pos " << pos << " value " << bad);
                CHECK_THROWS_WITH((k::pack_s4<TestType>(s, out)),
                                  Catch::Contains("'values[i]' = " + std::to_string(bad)) &&
                                      Catch::Contains("s4 values must be in [-8, 7]"));
            }
            for (int bad : {16, 17, 128, 255}) {
                std::vector<std::uint8_t> u(n, 15);
                u[pos] = static_cast<std::uint8_t>(bad);
                if (pos + 1 < n) u[n - 1] = 200;
                INFO("u4 n " << n << " pos " << pos << " value " << bad);
                CHECK_THROWS_WITH((k::pack_u4<TestType>(u, out)),
                                  Catch::Contains("'values[i]' = " + std::to_string(bad)) &&
                                      Catch::Contains("u4 values must be in [0, 15]"));
            }
            CHECK(out == std::vector<std::uint8_t>((n + 1) / 2, canary));
        }
    }
}
