// ptq/fold.hpp: the ptq:: BN-folding wrappers on one small hand-computed case each (their
// bit-exactness against torch is tested in tests/quant/test_batch_norm.cpp).
#include "lowbit_catch.hpp"

#include <vector>

#include <lowbit/ptq/fold.hpp>

TEST_CASE("ptq::fold_batch_norm_linear: hand-computed", "[ptq][fold]") {
    // BN: mean [1, -2], var [3, 0] with eps 1 -> rsqrt [1/2, 1]; gamma [4, 0.5], beta [1, 0]
    // s = gamma * rsqrt = [2, 0.5]; w' = w * s (rows); b' = (b - mean) * s + beta
    const std::vector<float> mean = {1, -2}, var = {3, 0}, gamma = {4, 0.5f}, beta = {1, 0};
    lowbit::ptq::batch_norm_params bn{mean, var, gamma, beta, 1.0f};
    const std::vector<float> w = {1, -1, 0.5f, 2, 4, -8}, b = {3, 2};  // [2][3]
    std::vector<float> wo(6), bo(2);
    REQUIRE(lowbit::ptq::fold_batch_norm_linear(bn, 2, 3, w, b, wo, bo).ok());
    CHECK(wo == std::vector<float>{2, -2, 1, 1, 2, -4});
    CHECK(bo == std::vector<float>{(3 - 1) * 2 + 1.0f, (2 + 2) * 0.5f + 0});
    // no bias: b = 0; in place
    std::vector<float> wi = w, bi(2);
    REQUIRE(lowbit::ptq::fold_batch_norm_linear(bn, 2, 3, wi, {}, wi, bi).ok());
    CHECK(wi == wo);
    CHECK(bi == std::vector<float>{(0 - 1) * 2 + 1.0f, (0 + 2) * 0.5f});
    CHECK_THROWS_WITH(lowbit::ptq::fold_batch_norm_linear(bn, 3, 2, w, b, wo, bo),
                      Catch::Contains("'running_mean.size()' = 2"));
    CHECK_THROWS_WITH(lowbit::ptq::fold_batch_norm_linear(bn, 2, 2, w, b, wo, bo), Catch::Contains("'w.size()' = 6"));
}

TEST_CASE("ptq::fold_batch_norm_conv: hand-computed", "[ptq][fold]") {
    // 2 output channels, 1 input channel, kernel 2 (e.g. 1x2): w [2][1][2]
    const std::vector<float> mean = {1, -2}, var = {3, 0}, gamma = {4, 0.5f}, beta = {1, 0};
    lowbit::ptq::batch_norm_params bn{mean, var, gamma, beta, 1.0f};
    const std::vector<float> w = {1, -1, 2, 4}, b = {3, 2};
    std::vector<float> wo(4), bo(2);
    REQUIRE(lowbit::ptq::fold_batch_norm_conv(bn, 2, 1, 2, w, b, wo, bo).ok());
    CHECK(wo == std::vector<float>{2, -2, 1, 2});
    CHECK(bo == std::vector<float>{(3 - 1) * 0.5f * 4 + 1, (2 + 2) * 1.0f * 0.5f});  // ((b - mean) * rsqrt) * gamma + beta
    CHECK_THROWS_WITH(lowbit::ptq::fold_batch_norm_conv(bn, 2, 1, 3, w, b, wo, bo), Catch::Contains("'w.size()' = 4"));
}
