// ptq/linalg.hpp against hand-computed values.
#include "lowbit_catch.hpp"

#include <vector>

#include <lowbit/ptq/linalg.hpp>

TEST_CASE("linear_forward: Y = X W^T + b, hand-computed", "[ptq][linalg]") {
    // X = [[1, 2], [3, -1]], W = [[1, 0], [2, 1], [-1, 4]], b = [0.5, 0, -1]
    const std::vector<float> x = {1, 2, 3, -1}, w = {1, 0, 2, 1, -1, 4}, b = {0.5f, 0, -1};
    std::vector<float> y(6);
    REQUIRE(lowbit::ptq::linear_forward(2, 3, 2, x, w, b, y).ok());
    const std::vector<float> want = {1.5f, 4, 6, 3.5f, 5, -8};
    CHECK(y == want);
    CHECK_THROWS_WITH(lowbit::ptq::linear_forward(2, 3, 3, x, w, b, y), Catch::Contains("'x.size()'"));
}

TEST_CASE("gram, cholesky, cholesky_inverse: hand-computed 2x2 and 3x3", "[ptq][linalg]") {
    // X rows [1, 2], [0, 1] -> H = [[1, 2], [2, 5]] = L L^T with L = [[1, 0], [2, 1]];
    // H^-1 = [[5, -2], [-2, 1]]
    const std::vector<float> x = {1, 2, 0, 1};
    std::vector<double> h(4, 0.0);
    REQUIRE(lowbit::ptq::gram(2, 2, x, h).ok());
    CHECK(h == std::vector<double>{1, 2, 2, 5});
    REQUIRE(lowbit::ptq::cholesky(2, h).ok());
    CHECK(h == std::vector<double>{1, 0, 2, 1});
    REQUIRE(lowbit::ptq::cholesky_inverse(2, h).ok());
    CHECK(h == std::vector<double>{5, -2, -2, 1});
    // H = [[4, 2, 2], [2, 5, 3], [2, 3, 6]]: L = [[2, 0, 0], [1, 2, 0], [1, 1, 2]];
    // det 64... H^-1 = adj / det: det = 4*(30-9) - 2*(12-6) + 2*(6-10) = 84 - 12 - 8 = 64
    // cofactors: [[21, -6, -4], [-6, 20, -8], [-4, -8, 16]] / 64
    std::vector<double> g = {4, 2, 2, 2, 5, 3, 2, 3, 6};
    REQUIRE(lowbit::ptq::cholesky(3, g).ok());
    CHECK(g == std::vector<double>{2, 0, 0, 1, 2, 0, 1, 1, 2});
    REQUIRE(lowbit::ptq::cholesky_inverse(3, g).ok());
    const double want[] = {21, -6, -4, -6, 20, -8, -4, -8, 16};
    for (int i = 0; i < 9; ++i) CHECK(g[static_cast<std::size_t>(i)] == Approx(want[i] / 64.0).epsilon(1e-15));
    // not positive definite: the failing pivot is named
    std::vector<double> bad = {1, 2, 2, 1};
    CHECK_THROWS_WITH(lowbit::ptq::cholesky(2, bad), Catch::Contains("'h' = 1"));
}

TEST_CASE("mse", "[ptq][linalg]") {
    const std::vector<float> a = {1, 2, 3}, b = {1, 0, 4};
    CHECK(*lowbit::ptq::mse(a, b) == Approx(5.0 / 3.0).epsilon(1e-15));
    const std::vector<float> one = {1};
    CHECK_THROWS_WITH(lowbit::ptq::mse(a, one), Catch::Contains("'b.size()'"));
}
