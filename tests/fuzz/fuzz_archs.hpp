// fuzz_archs.hpp: fuzz::each_arch(f) calls f(Arch{}) for every kernel ISA compiled into this
// fuzz target (LOWBIT_RUNTIME_ARCHS, from the generated lowbit_runtime_isas.hpp, which must be
// included first) that the CPU runs, and for the scalar path.
#ifndef LOWBIT_FUZZ_ARCHS_HPP
#define LOWBIT_FUZZ_ARCHS_HPP

#include <initializer_list>

#include <lowbit/kernels/arch.hpp>
#include <lowbit/kernels/dispatch.hpp>

namespace fuzz {

template <class... Archs, class F>
void each_arch_in(F&& f) {
    (void)std::initializer_list<int>{(lowbit::kernels::available<Archs>() ? (f(Archs{}), 0) : 0)...};
}
template <class F>
void each_arch(F&& f) {
    each_arch_in<LOWBIT_RUNTIME_ARCHS, lowbit::kernels::scalar_arch>(f);
}

}  // namespace fuzz

#endif  // LOWBIT_FUZZ_ARCHS_HPP
