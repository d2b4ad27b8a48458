// CPU feature detection against the kernel's own report (/proc/cpuinfo, an independent
// source), and runtime dispatch picking the first usable ISA of a list.
#include "lowbit_catch.hpp"

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <lowbit/kernels/cpu.hpp>
#include <lowbit/kernels/quantize.hpp>

#include "isa.hpp"

#if !LOWBIT_KERNELS_NEON64
namespace {
std::set<std::string> proc_cpuinfo_flags() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("flags", 0) == 0) {
            std::istringstream words(line.substr(line.find(':') + 1));
            std::set<std::string> flags;
            for (std::string w; words >> w;) flags.insert(w);
            return flags;
        }
    }
    return {};
}
}  // namespace
#endif

#if LOWBIT_KERNELS_NEON64
TEST_CASE("dispatch on AArch64 picks neon64, the baseline", "[dispatch]") {
    CHECK(lowbit::kernels::available<xsimd::neon64>());
    CHECK(std::is_same<lowbit::kernels::default_arch, xsimd::neon64>::value);
    std::string picked = lowbit::kernels::dispatch<xsimd::neon64>([](auto arch) { return std::string(decltype(arch)::name()); });
    CHECK(picked == xsimd::neon64::name());
    CHECK(std::string(lowbit::kernels::dispatch<>([](auto arch) { return decltype(arch)::name(); })) == "scalar");

    const auto s = lowbit::scheme<lowbit::s8>{};
    std::vector<float> x = {-1.0f, 0.26f, 0.5f, 100.0f};
    std::vector<std::int8_t> a(4), b(4);
    REQUIRE(lowbit::ref::quantize(s, {0.5f, 1}, x, a).ok());
    const lowbit::status st = lowbit::kernels::dispatch<xsimd::neon64>(
        [&](auto arch) { return lowbit::kernels::quantize<decltype(arch)>(s, {0.5f, 1}, x, b); });
    CHECK(st.ok());
    CHECK(a == b);
}
#else
TEST_CASE("cpu features agree with /proc/cpuinfo", "[dispatch]") {
    const std::set<std::string> flags = proc_cpuinfo_flags();
    if (flags.empty()) {
        WARN("no /proc/cpuinfo flags line; skipped");
        return;
    }
    const lowbit::kernels::cpu_features& f = lowbit::kernels::cpu();
    // The kernel lists a flag only when the OS supports its state, like lowbit's check.
    CHECK(f.sse4_1 == (flags.count("sse4_1") == 1));
    CHECK(f.avx2 == (flags.count("avx2") == 1));
    CHECK(f.fma == (flags.count("fma") == 1));
    CHECK(f.avx512f == (flags.count("avx512f") == 1));
    CHECK(f.avx512bw == (flags.count("avx512bw") == 1));
    CHECK(f.avx512vl == (flags.count("avx512vl") == 1));
    CHECK(f.avx512vnni == (flags.count("avx512_vnni") == 1));
    CHECK(f.avx_vnni == (flags.count("avx_vnni") == 1));
    CHECK(f.amx_int8 == (flags.count("amx_int8") == 1));
}

TEST_CASE("dispatch picks the first ISA the CPU can run", "[dispatch]") {
    std::string picked = lowbit::kernels::dispatch<xsimd::avx512bw, xsimd::fma3<xsimd::avx2>, xsimd::sse4_1, xsimd::sse2>(
        [](auto arch) { return std::string(decltype(arch)::name()); });
    const auto& f = lowbit::kernels::cpu();
    const std::string expected = f.avx512bw && f.avx512dq && f.avx512cd && f.avx512vl ? "avx512bw"
                                 : f.avx2 && f.fma                                      ? "fma3+avx2"
                                 : f.sse4_1                                             ? "sse4.1"
                                                                                        : "sse2";
    CHECK(picked == expected);
    // an empty list, or none available, falls back to scalar
    CHECK(std::string(lowbit::kernels::dispatch<>([](auto arch) { return decltype(arch)::name(); })) == "scalar");

    // and the dispatched kernel computes what ref computes
    const auto s = lowbit::scheme<lowbit::s8>{};
    std::vector<float> x = {-1.0f, 0.26f, 0.5f, 100.0f};
    std::vector<std::int8_t> a(4), b(4);
    REQUIRE(lowbit::ref::quantize(s, {0.5f, 1}, x, a).ok());
    const lowbit::status st = lowbit::kernels::dispatch<LOWBIT_RUNTIME_ARCHS>(  // the ISAs this binary compiled
        [&](auto arch) { return lowbit::kernels::quantize<decltype(arch)>(s, {0.5f, 1}, x, b); });
    CHECK(st.ok());
    CHECK(a == b);
}
#endif  // LOWBIT_KERNELS_NEON64
