// lowbit::kernels without xsimd (LOWBIT_NO_XSIMD, only lowbit::core linked): default_arch is
// the scalar path and every kernel still works, giving the reference's answers.
#include <cstdint>
#include <cstdio>
#include <type_traits>
#include <vector>

#include <lowbit/kernels.hpp>

#if LOWBIT_HAS_XSIMD
#error "this test must be built with LOWBIT_NO_XSIMD"
#endif

static_assert(std::is_same<lowbit::kernels::default_arch, lowbit::kernels::scalar_arch>::value,
              "without xsimd the kernels must use the scalar path");

int main() {
    const auto s = lowbit::scheme<lowbit::s4>{};
    std::vector<float> x = {-3.0f, -0.25f, 0.25f, 0.75f, 9.0f};
    std::vector<std::uint8_t> want(3), got(3);
    if (!lowbit::ref::quantize(s, {0.5f, 1}, x, want).ok()) return 1;
    if (!lowbit::kernels::quantize(s, {0.5f, 1}, x, got).ok()) return 1;
    if (want != got) {
        std::printf("kernels::quantize differs from ref without xsimd\n");
        return 1;
    }
    std::printf("scalar kernels without xsimd: ok\n");
    return 0;
}
