// The README's "Integer GEMM and int4 GEMV" examples, with the variables they assume
// declared, so the documented code keeps compiling and gives what its comments say (the
// kernels equal the reference).
#include "lowbit_catch.hpp"

#include <cstdint>
#include <cstring>
#include <vector>

#include <lowbit/kernels/gemm.hpp>
#include <lowbit/kernels/gemm_int4.hpp>
#include <lowbit/lowbit.hpp>

TEST_CASE("README int8 GEMM example", "[readme][gemm]") {
    const std::size_t M = 5, N = 19, K = 70;
    std::vector<std::int8_t> w(N * K);
    std::vector<std::uint8_t> x(M * K);
    std::vector<std::int32_t> bias(N);
    std::vector<float> s_w(N);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<std::int8_t>(static_cast<int>((i * 37) % 255) - 127);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<std::uint8_t>((i * 11) % 256);
    for (std::size_t n = 0; n < N; ++n) {
        bias[n] = static_cast<std::int32_t>(n * 100) - 900;
        s_w[n] = 0.001f * static_cast<float>(n + 1);
    }
    const float s_x = 0.02f, s_y = 0.5f;
    const std::int32_t zp_y = -3;

    // ---- as in the README ----
    lowbit::gemm_b b{w, K, lowbit::weight_layout::n_by_k, {}};  // no zero points
    std::vector<std::uint8_t> buf(lowbit::kernels::packed_size(N, K));
    lowbit::kernels::packed_weights pw = *lowbit::kernels::pack_weights(b, N, K, buf);  // once

    std::vector<lowbit::quantized_multiplier> mult(N);
    for (std::size_t n = 0; n < N; ++n) mult[n] = *lowbit::quantize_multiplier(s_x * s_w[n] / s_y);
    lowbit::requantize_params p;  // TFLite double rounding by default
    p.multipliers = mult;
    p.bias = bias;
    p.zero_point = zp_y;

    lowbit::gemm_a<std::uint8_t> a{x, K, 128};
    std::vector<std::int8_t> y(M * N);  // row stride N
    lowbit::kernels::gemm(lowbit::gemm_dims{M, N, K}, a, pw, lowbit::scheme<lowbit::s8>{}, p, y, N);
    // ---- end ----

    std::vector<std::int8_t> want(M * N);
    REQUIRE(lowbit::ref::gemm(lowbit::gemm_dims{M, N, K}, a, b, lowbit::scheme<lowbit::s8>{}, p,
                              lowbit::span<std::int8_t>(want), N)
                .ok());
    CHECK(y == want);
    bool varied = false;  // the example is not trivially saturated
    for (std::int8_t v : y) varied = varied || (v != y[0]);
    CHECK(varied);
}

TEST_CASE("README int4 GEMV example", "[readme][int4]") {
    const std::size_t M = 2, N = 3, K = 64;
    std::vector<std::uint8_t> packed(N * K / 2);
    for (std::size_t i = 0; i < packed.size(); ++i) packed[i] = static_cast<std::uint8_t>((i * 29 + 7) % 256);
    std::vector<float> scales(N * K / 32);
    for (std::size_t i = 0; i < scales.size(); ++i) scales[i] = 0.01f * static_cast<float>(i + 1);
    std::vector<float> xf(M * K), yf(M * N);
    for (std::size_t i = 0; i < xf.size(); ++i) xf[i] = 0.03f * static_cast<float>(static_cast<int>(i % 17) - 8);

    // ---- as in the README ----
    lowbit::int4_weights wq{lowbit::format_id::s4, N, K, 32, packed, scales, {}, {}};
    std::vector<std::uint8_t> p4(lowbit::kernels::packed_int4_size(wq));
    lowbit::kernels::pack_int4(wq, p4);  // once
    std::vector<std::int8_t> q(M * K);   // q8 blocks of x
    std::vector<float> d(M * K / 32);
    std::vector<std::int32_t> sums(M * K / 32);
    lowbit::q8_activations_buffer xq{M, K, q, d, sums};
    lowbit::kernels::quantize_q8(xf, M, K, K, xq);             // xf: M x K floats
    lowbit::kernels::gemm_int4_q8(p4, xq.view(), {}, yf, N);  // yf: M x N floats
    // ---- end ----

    std::vector<float> want(M * N);
    REQUIRE(lowbit::ref::gemm_int4_q8(wq, xq.view(), {}, lowbit::span<float>(want), N).ok());
    CHECK(std::memcmp(yf.data(), want.data(), want.size() * sizeof(float)) == 0);
}
