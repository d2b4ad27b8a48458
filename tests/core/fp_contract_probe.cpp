// Prints one hash of many lowbit results. Built twice, with -ffp-contract=off and with
// -ffp-contract=fast -mfma -O3; a test checks both print the same hash, i.e. that lowbit's
// results do not depend on FMA contraction or optimisation flags.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include <lowbit/lowbit.hpp>

namespace {
std::uint64_t hash = 1469598103934665603ull;
void mix(const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) hash = (hash ^ b[i]) * 1099511628211ull;
}
float next_float(std::uint64_t& state) {  // deterministic values over a wide range
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const auto u = static_cast<std::uint32_t>(state >> 33);
    return (static_cast<float>(u % 2000001u) - 1000000.0f) * 1e-4f;
}
template <class Scheme>
void probe(const Scheme& s, const std::vector<float>& x) {
    float mn = x[0], mx = x[0];
    for (float v : x) {
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    const lowbit::qparams qp = *lowbit::choose_qparams(s, mn * 0.7f, mx * 0.9f);
    mix(&qp, sizeof qp);
    std::vector<typename Scheme::storage_type> q(Scheme::format::storage_size(x.size()));
    std::vector<float> y(x.size()), dx(x.size());
    (void)lowbit::ref::quantize(s, qp, x, q);
    (void)lowbit::ref::fake_quantize(s, qp, x, y);
    (void)lowbit::ref::fake_quantize_backward(s, qp, x, y, dx);
    mix(q.data(), q.size() * sizeof q[0]);
    mix(y.data(), y.size() * 4);
    mix(dx.data(), dx.size() * 4);
}
}  // namespace

int main() {
    std::uint64_t state = 12345;
    std::vector<float> x(20000);
    for (float& v : x) v = next_float(state);
    using lowbit::symmetry;
    for (auto p : {lowbit::profile::torch, lowbit::profile::torch_fused, lowbit::profile::tflite}) {
        probe(lowbit::scheme<lowbit::s8>{}.with_profile(p), x);
        probe(lowbit::scheme<lowbit::u8>{}.with_profile(p), x);
        probe(lowbit::scheme<lowbit::s4, symmetry::symmetric>{}.with_profile(p), x);
        probe(lowbit::scheme<lowbit::u4>{}.with_profile(p), x);
        probe(lowbit::scheme<lowbit::s8, symmetry::symmetric_narrow>{}.with_profile(p), x);
    }
    for (std::int32_t acc = -100000; acc < 100000; acc += 7) {
        for (double m : {0.1, 0.0123, 0.75, 3.5}) {
            const auto qm = *lowbit::quantize_multiplier(m);
            const std::int32_t a = lowbit::multiply_by_quantized_multiplier(acc, qm);
            const std::int32_t b =
                lowbit::multiply_by_quantized_multiplier(acc, qm, lowbit::requant_rounding::single_rounding);
            mix(&a, 4);
            mix(&b, 4);
        }
    }
    std::printf("%016llx\n", static_cast<unsigned long long>(hash));
    return 0;
}
