// One binary, kernels for several ISAs: the best one this CPU runs is used, and it must give
// the reference's answer.
#include <cstdint>
#include <cstdio>
#include <vector>

#include <lowbit/lowbit.hpp>
#include <lowbit/kernels/quantize.hpp>

#include "lowbit_runtime_isas.hpp"

int main() {
    const auto s = lowbit::scheme<lowbit::u8>{};
    const lowbit::qparams qp{2.0f / 255.0f, 127};
    std::vector<float> x(1000);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) / 500.0f - 1.0f;
    std::vector<std::uint8_t> want(x.size()), got(x.size());
    if (!lowbit::ref::quantize(s, qp, x, want).ok()) return 1;
    const char* used = lowbit::kernels::dispatch<LOWBIT_RUNTIME_ARCHS>([&](auto arch) {
        (void)lowbit::kernels::quantize<decltype(arch)>(s, qp, x, got);
        return decltype(arch)::name();
    });
    std::printf("dispatched to %s\n", used);
    return want == got ? 0 : 1;
}
