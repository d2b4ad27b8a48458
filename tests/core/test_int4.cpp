// The int4 layout, written out by hand: element 2i in the low nibble of byte i.
#include "lowbit_catch.hpp"

#include <array>
#include <cstdint>
#include <vector>

#include <lowbit/core/int4.hpp>

TEST_CASE("pack_s4: hand-written bytes", "[int4]") {
    const std::array<std::int8_t, 5> v = {1, -1, -8, 7, -3};
    std::array<std::uint8_t, 3> p{};
    REQUIRE(lowbit::ref::pack_s4(v, p).ok());
    CHECK(p[0] == 0xF1);  // low 1, high -1 = 0xF
    CHECK(p[1] == 0x78);  // low -8 = 0x8, high 7
    CHECK(p[2] == 0x0D);  // low -3 = 0xD, padding 0
    std::array<std::int8_t, 5> back{};
    REQUIRE(lowbit::ref::unpack_s4(p, back).ok());
    CHECK(back == v);
}

TEST_CASE("pack_u4: hand-written bytes and round trip over every pair", "[int4]") {
    const std::array<std::uint8_t, 4> v = {0, 15, 10, 5};
    std::array<std::uint8_t, 2> p{};
    REQUIRE(lowbit::ref::pack_u4(v, p).ok());
    CHECK(p[0] == 0xF0);
    CHECK(p[1] == 0x5A);
    std::vector<std::uint8_t> all;
    for (int a = 0; a < 16; ++a)
        for (int b = 0; b < 16; ++b) {
            all.push_back(static_cast<std::uint8_t>(a));
            all.push_back(static_cast<std::uint8_t>(b));
        }
    std::vector<std::uint8_t> packed(all.size() / 2), back(all.size());
    REQUIRE(lowbit::ref::pack_u4(all, packed).ok());
    for (std::size_t i = 0; i < packed.size(); ++i) CHECK(packed[i] == (((i % 16) << 4) | (i / 16)));  // i = 16a + b -> (b << 4) | a
    REQUIRE(lowbit::ref::unpack_u4(packed, back).ok());
    CHECK(back == all);
}

TEST_CASE("unpack ignores the padding nibble of an odd count", "[int4]") {
    const std::array<std::uint8_t, 2> p = {0x21, 0xF3};
    std::array<std::int8_t, 3> v{};
    REQUIRE(lowbit::ref::unpack_s4(p, v).ok());
    CHECK(v == std::array<std::int8_t, 3>{1, 2, 3});
}

TEST_CASE("int4 packing errors name the argument and write nothing", "[int4][errors]") {
    std::array<std::int8_t, 3> v = {1, 8, 0};  // 8 is not an s4 value
    std::array<std::uint8_t, 2> p = {0xAA, 0xAA};
    CHECK_THROWS_WITH((lowbit::ref::pack_s4(v, p)), Catch::Contains("'values[i]' = 8"));
    CHECK(p == std::array<std::uint8_t, 2>{0xAA, 0xAA});
    std::array<std::uint8_t, 1> small{};
    CHECK_THROWS_WITH((lowbit::ref::pack_s4(v, small)), Catch::Contains("'packed.size()' = 1"));
    std::array<std::uint8_t, 1> u = {16};
    CHECK_THROWS_WITH((lowbit::ref::pack_u4(u, small)), Catch::Contains("'values[i]' = 16"));
    std::array<std::int8_t, 5> out{};
    CHECK_THROWS_AS(lowbit::ref::unpack_s4(p, out), lowbit::error);
}

TEST_CASE("nibble helpers", "[int4][constexpr]") {
    static_assert(lowbit::sign_extend_s4(0x8) == -8, "");
    static_assert(lowbit::sign_extend_s4(0xF) == -1, "");
    static_assert(lowbit::sign_extend_s4(0x7) == 7, "");
    static_assert(lowbit::pack_nibbles(-1, 3) == 0x3F, "");
    SUCCEED();
}
