// tests/contract/test_contract_quant.cpp: the rows of docs/contract.md for the QAT pieces
// (LSQ / LSQ+, PACT) that tests/quant does not already cover: zero points out of range
// (clamped, not refused), denormal and huge parameters, empty input, in-place calls.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include <lowbit/quant/learnable.hpp>
#include <lowbit/quant/pact.hpp>

#include "contract/contract_util.hpp"

using namespace contract;
using lowbit::errc;
using lowbit::span;

namespace {
constexpr auto s8a = lowbit::scheme<lowbit::s8>{};
}  // namespace

TEST_CASE("contract: lsq: a zero point outside the range is clamped, a non-finite one is an error",
          "[contract][lsq]") {
    // z = 1000 -> clamp(rint(z), -128, 127) = 127; scale 1: x = -1 -> 127 - 1 = 126 -> -1;
    // x = 1 -> 128 -> 127 -> 0; x = 0 -> 0
    const std::vector<float> x{-1.0f, 1.0f, 0.0f};
    std::vector<float> y(3);
    REQUIRE(lowbit::lsq_forward(s8a, 1.0f, 1000.0f, cs(x), ms(y)).ok());
    REQUIRE(y == std::vector<float>{-1.0f, 0.0f, 0.0f});
    // z = -1e30 -> -128: x = 1 -> -127 -> 1
    REQUIRE(lowbit::lsq_forward(s8a, 1.0f, -1e30f, cs(x), ms(y)).ok());
    REQUIRE(y[1] == 1.0f);
    for (const float bad : {nan_f, inf_f, -inf_f})
        require_error([&] { return lowbit::lsq_forward(s8a, 1.0f, bad, cs(x), ms(y)); }, errc::invalid_argument,
                      "zero_point");
}

TEST_CASE("contract: lsq: denormal scales up to 2^-128 are refused, empty input gives zero gradients",
          "[contract][lsq]") {
    const std::vector<float> x{1.0f};
    std::vector<float> y(1, 7.0f);
    for (const float bad : {std::numeric_limits<float>::min() / 4, std::numeric_limits<float>::denorm_min()})
        require_error([&] { return lowbit::lsq_forward(s8a, bad, 0.0f, cs(x), ms(y)); }, errc::invalid_argument, "scale");
    REQUIRE(y[0] == 7.0f);
    const lowbit::lsq_param_grads g =
        *lowbit::lsq_backward(s8a, 0.5f, 0.0f, 1.0f, span<const float>{}, span<const float>{}, span<float>{});
    REQUIRE(bits(g.dscale) == 0u);
    REQUIRE(bits(g.dzero_point) == 0u);
}

TEST_CASE("contract: lsq: dx may alias dy or x, y may alias x", "[contract][lsq]") {
    std::vector<float> x(37), dy(37);
    for (std::size_t k = 0; k < x.size(); ++k) {
        x[k] = static_cast<float>(k) * 3.1f - 50.0f;
        dy[k] = static_cast<float>(k) * 0.5f - 3.0f;
    }
    std::vector<float> y(37), dx(37);
    REQUIRE(lowbit::lsq_forward(s8a, 0.25f, 3.0f, cs(x), ms(y)).ok());
    const lowbit::lsq_param_grads g = *lowbit::lsq_backward(s8a, 0.25f, 3.0f, 1.0f, cs(x), cs(dy), ms(dx));
    std::vector<float> xi = x;
    REQUIRE(lowbit::lsq_forward(s8a, 0.25f, 3.0f, cs(xi), ms(xi)).ok());
    for (std::size_t k = 0; k < 37; ++k) REQUIRE(bits(xi[k]) == bits(y[k]));
    std::vector<float> g1 = dy;
    const lowbit::lsq_param_grads a = *lowbit::lsq_backward(s8a, 0.25f, 3.0f, 1.0f, cs(x), cs(g1), ms(g1));
    for (std::size_t k = 0; k < 37; ++k) REQUIRE(bits(g1[k]) == bits(dx[k]));
    REQUIRE(bits(a.dscale) == bits(g.dscale));
    REQUIRE(bits(a.dzero_point) == bits(g.dzero_point));
    std::vector<float> x2 = x;
    const lowbit::lsq_param_grads b = *lowbit::lsq_backward(s8a, 0.25f, 3.0f, 1.0f, cs(x2), cs(dy), ms(x2));
    for (std::size_t k = 0; k < 37; ++k) REQUIRE(bits(x2[k]) == bits(dx[k]));
    REQUIRE(bits(b.dscale) == bits(g.dscale));
}

TEST_CASE("contract: pact: alpha zero, negative, NaN, Inf or too small is an error naming alpha, nothing written",
          "[contract][pact]") {
    const auto u8a = lowbit::scheme<lowbit::u8>{};
    const std::vector<float> x{1.0f, 2.0f};
    std::vector<float> y(2, 7.0f);
    // alpha / 255 must have a finite reciprocal: 2^-120 / 255 < 2^-128
    for (const float bad : {0.0f, -1.0f, nan_f, inf_f, std::numeric_limits<float>::denorm_min(), 0x1p-121f})
        require_error([&] { return lowbit::pact_forward(u8a, bad, cs(x), ms(y)); }, errc::invalid_argument, "alpha");
    REQUIRE(y == std::vector<float>(2, 7.0f));
    // FLT_MAX is accepted: scale FLT_MAX / 255; 1 and 2 quantize to 0
    REQUIRE(lowbit::pact_forward(u8a, std::numeric_limits<float>::max(), cs(x), ms(y)).ok());
    REQUIRE(bits(y[0]) == 0u);
    REQUIRE(bits(y[1]) == 0u);
    // empty input: nothing written, dalpha 0
    REQUIRE(lowbit::pact_forward(u8a, 4.0f, span<const float>{}, span<float>{}).ok());
    REQUIRE(*lowbit::pact_backward(u8a, 4.0f, span<const float>{}, span<const float>{}, span<float>{}) == 0.0f);
}

TEST_CASE("contract: lsq: a per-channel shape whose element count overflows size_t is an error before any access",
          "[contract][lsq]") {
    const std::size_t big = std::size_t(1) << (sizeof(std::size_t) * 4);
    const std::vector<float> one{1.0f}, zero{0.0f};
    require_error([&] { return lowbit::lsq_forward(s8a.per_channel(0), lowbit::shape{1, big, big}, cs(one), cs(zero),
                                                   span<const float>{}, span<float>{}); },
                  errc::overflow, "shape");
}
