// The README's "tour in 20 lines", with the variables it assumes declared, so the
// documented code keeps compiling and doing what the comments say.
#include "lowbit_catch.hpp"

#include <cstdint>
#include <vector>

#include <lowbit/lowbit.hpp>

TEST_CASE("README tour", "[readme]") {
    const float x_min = -0.5f, x_max = 3.0f;
    std::vector<float> x = {-0.5f, 0.0f, 1.0f, 3.0f}, y(4), dy(4, 1.0f), dx(4);
    std::vector<std::uint8_t> q(4), mask(4);
    const std::size_t N = 2, K = 64;
    std::vector<float> w(N * K, 0.01f), scales(N * K / 32, 0.01f / 7);
    std::vector<std::uint8_t> packed((N * K + 1) / 2);
    const double s_in = 0.02, s_w = 0.005, s_out = 0.001;  // M = 0.1
    const std::int32_t acc = 1000, zp_out = 3;

    // ---- as in the README ----
    constexpr auto act = lowbit::scheme<lowbit::u8>{};
    constexpr auto w4 = lowbit::scheme<lowbit::s4, lowbit::symmetry::symmetric>{}.per_group(1, 32);
    lowbit::qparams qp = *lowbit::choose_qparams(act, x_min, x_max);
    lowbit::ref::quantize(act, qp, x, q);
    lowbit::ref::fake_quantize(act, qp, x, y, mask);
    lowbit::ref::fake_quantize_backward_masked(mask, dy, dx);
    lowbit::ref::quantize(w4, lowbit::shape{N, K}, {scales, {}}, w, packed);
    auto m = *lowbit::quantize_multiplier(s_in * s_w / s_out);
    std::int32_t out = lowbit::multiply_by_quantized_multiplier(acc, m) + zp_out;
    // ---- end ----

    CHECK(qp.zero_point == 36);  // -0.5 / (3.5/255) = -36.43 -> -36 -> zp 36
    CHECK(q[1] == 36);
    CHECK(dx == std::vector<float>{1, 1, 1, 1});
    CHECK(packed[0] == 0x77);  // 0.01 / (0.01/7) = 7 in both nibbles
    CHECK(m.multiplier == 1717986918);
    CHECK(m.shift == -3);
    CHECK(out == 103);
}
