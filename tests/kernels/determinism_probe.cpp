// Prints one line per (kernel, case): the element count and a 64-bit FNV-1a hash of the
// outputs of every SIMD kernel family, run with this translation unit's compile-time
// kernels::default_arch and with kernels::scalar_arch (the lowbit::ref loops), on fixed,
// adversarial inputs. tests/kernels/CMakeLists.txt builds it with several flag sets (-O0 /
// -O3, -ffp-contract=off / fast, SSE2 / SSE4.2 / AVX2 + FMA / -march=native) and checks that
// every build prints the same text: lowbit's rounding does not depend on optimisation,
// contraction or instruction set. Within one build, default_arch must also give the scalar
// hashes; a difference is reported on stderr and the probe exits with 1.
//
// The inputs are made with integer arithmetic and single float operations only (no a * b + c
// the compiler could contract, no <random> distributions, no libm beyond the exact nextafter
// and frexp), so they are the same bits in every build; an "inputs" line hashes them to
// prove it.
//
// Gradients dy hold quiet NaNs only, except in the cases labelled "sNaN dy", which feed
// signalling NaNs to the straight-through backward (dx = dy * mask).
//
// On a failure, run two of the probes and diff their outputs; `determinism_probe -v` adds
// one line per size under each case. `--canonical-nan` hashes every float NaN output as one
// NaN: for comparing x86 with AArch64, whose default NaNs differ in sign (line::mix_output).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <lowbit/kernels/fake_quantize.hpp>
#include <lowbit/kernels/int4.hpp>
#include <lowbit/kernels/per_channel.hpp>
#include <lowbit/kernels/quantize.hpp>
#include <lowbit/kernels/reduce.hpp>
#include <lowbit/kernels/requantize.hpp>
#include <lowbit/lowbit.hpp>
#include <lowbit/quant/learnable.hpp>

namespace {

using lowbit::symmetry;
using qm_t = lowbit::quantized_multiplier;
using lowbit::kernels::default_arch;
using lowbit::kernels::scalar_arch;

constexpr std::int32_t i32_min = std::numeric_limits<std::int32_t>::min();
constexpr std::int32_t i32_max = std::numeric_limits<std::int32_t>::max();

// Sizes of the per-tensor cases: a single element, one short of / one past a 16-lane block,
// odd tails of every register width, and a long odd run.
const std::size_t sizes[] = {1, 2, 15, 17, 67, 1023, 4103};

// ---- hashing ----

struct fnv {
    std::uint64_t h = 1469598103934665603ull;
    void mix(const void* p, std::size_t bytes) {
        const auto* b = static_cast<const unsigned char*>(p);
        for (std::size_t i = 0; i < bytes; ++i) h = (h ^ b[i]) * 1099511628211ull;
    }
};

fnv input_hash;  // every input generated, in order (same sequence for both archs)
bool canonical_nan = false;  // --canonical-nan (see line::mix_output)

struct sub_result {
    std::size_t size, count;
    std::uint64_t hash;
};

struct line {
    std::string label;
    std::size_t count = 0;
    fnv all;
    std::vector<sub_result> subs;
    std::vector<unsigned char> bytes;  // all outputs, to show where two runs differ

    explicit line(std::string l) : label(std::move(l)) {}
    // One sub-run (one size or shape): `count` elements, the given output buffers.
    template <class... V>
    void add(std::size_t size, std::size_t n, const V&... bufs) {
        fnv one;
        (mix_output(one, bufs), ...);
        (mix_output(all, bufs), ...);
        (append(bufs.data(), bufs.size() * sizeof(bufs[0])), ...);
        count += n;
        subs.push_back({size, n, one.h});
    }
    // --canonical-nan: float outputs hash every NaN as 0x7FC00000. A NaN that arithmetic
    // creates (Inf * 0 in a masked-out gradient) takes the hardware's default NaN, whose sign
    // IEEE 754 leaves to the platform: 0xFFC00000 on x86, 0x7FC00000 on AArch64. Across
    // architectures only the NaN-ness of such a value is specified; every other bit must match.
    template <class V>
    static void mix_output(fnv& f, const V& buf) {
        using T = std::remove_cv_t<std::remove_reference_t<decltype(buf[0])>>;
        if constexpr (std::is_same<T, float>::value) {
            if (canonical_nan) {
                for (float v : buf) {
                    std::uint32_t bits = 0x7FC00000u;
                    if (!std::isnan(v)) std::memcpy(&bits, &v, 4);
                    f.mix(&bits, 4);
                }
                return;
            }
        }
        f.mix(buf.data(), buf.size() * sizeof(buf[0]));
    }
    void append(const void* p, std::size_t n) {
        const auto* b = static_cast<const unsigned char*>(p);
        bytes.insert(bytes.end(), b, b + n);
    }
};

std::vector<line>* sink = nullptr;

void finish(line&& l) { sink->push_back(std::move(l)); }

void check(lowbit::status st, const std::string& what) {
    if (!st.ok()) {
        std::fprintf(stderr, "determinism_probe: %s failed: %s\n", what.c_str(), lowbit::to_string(st.code));
        std::exit(2);
    }
}

// ---- deterministic inputs (integer arithmetic, single float operations) ----

struct rng {
    std::uint64_t s;
    explicit rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
    std::uint64_t next() {  // splitmix64
        std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    std::uint32_t below(std::uint32_t n) { return static_cast<std::uint32_t>(next() % n); }
    std::int32_t between(std::int32_t lo, std::int32_t hi) {  // [lo, hi]
        return static_cast<std::int32_t>(static_cast<std::int64_t>(lo) +
                                         static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(
                                                                               static_cast<std::int64_t>(hi) - lo + 1)));
    }
};

std::uint64_t seed_counter = 0;  // reset before each arch's run: both see the same inputs

float from_bits(std::uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}

float step_ulps(float x, int k) {
    const float to = k > 0 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
    for (int i = 0; i < (k > 0 ? k : -k); ++i) x = std::nextafter(x, to);
    return x;
}

// One adversarial value for a quantizer with `scale` and integer span `span` (qmax - qmin):
// exact rounding midpoints (k + 1/2) * scale and their neighbours 1..3 ulps away (where
// x * (1 / scale) and x / scale round differently), exact multiples, values beyond the
// range, NaN (with payloads), +-Inf, +-0, denormals, huge values, and noise (Irwin-Hall).
float adversarial(rng& r, float scale, std::int32_t span) {
    static const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                                     -std::numeric_limits<float>::quiet_NaN(),
                                     from_bits(0x7FC00123u),  // NaN with a payload
                                     from_bits(0xFFA00001u),  // signalling NaN, negative
                                     std::numeric_limits<float>::infinity(),
                                     -std::numeric_limits<float>::infinity(),
                                     0.0f,
                                     -0.0f,
                                     std::numeric_limits<float>::denorm_min(),
                                     -std::numeric_limits<float>::denorm_min(),
                                     std::numeric_limits<float>::min(),
                                     -1e-40f,
                                     1e30f,
                                     -1e30f,
                                     3e38f,
                                     std::numeric_limits<float>::max(),
                                     -std::numeric_limits<float>::max(),
                                     16777216.0f,
                                     -8388609.0f};
    const std::int32_t reach = span + 4;
    switch (r.below(13)) {
        case 0: return specials[r.below(sizeof specials / sizeof specials[0])];
        case 1: return from_bits((static_cast<std::uint32_t>(r.next()) & 0x807FFFFFu) | 1u);  // denormal
        case 2:
        case 3: return (static_cast<float>(r.between(-reach, reach)) + 0.5f) * scale;  // midpoint
        case 4:
        case 5: {  // 1..3 ulps either side of a midpoint
            const float mid = (static_cast<float>(r.between(-reach, reach)) + 0.5f) * scale;
            const int k = static_cast<int>(r.below(3)) + 1;
            return step_ulps(mid, r.below(2) ? k : -k);
        }
        case 6: return static_cast<float>(r.between(-reach, reach)) * scale;  // exact multiples
        case 7: return static_cast<float>(r.between(-40 * reach, 40 * reach)) * scale;  // saturation
        case 8: {  // huge: exponent 2^40 .. 2^127
            const std::uint32_t e = 167u + r.below(87u);
            return from_bits((static_cast<std::uint32_t>(r.next()) & 0x807FFFFFu) | (e << 23));
        }
        default: {  // noise, standard deviation ~ (span / 4) * scale
            std::int32_t s = -131072;
            for (int i = 0; i < 4; ++i) s += static_cast<std::int32_t>(r.below(65536));
            const float c = scale * (static_cast<float>(span) * 6.6e-6f);
            return static_cast<float>(s) * c;
        }
    }
}

std::vector<float> float_inputs(std::size_t n, float scale, std::int32_t span) {
    rng r(++seed_counter);
    std::vector<float> x(n);
    for (float& v : x) v = adversarial(r, scale, span);
    input_hash.mix(x.data(), n * 4);
    return x;
}

bool is_signalling_nan(float v) {
    std::uint32_t b;
    std::memcpy(&b, &v, 4);
    return (b & 0x7F800000u) == 0x7F800000u && (b & 0x003FFFFFu) != 0 && (b & 0x00400000u) == 0;
}

// Gradients dy: adversarial values whose NaNs are all quiet (a signalling NaN gets its quiet
// bit). Signalling-NaN gradients have cases of their own ("sNaN dy"): dx = dy * 1 may or may
// not quiet them depending on how the compiler treats x * 1.0f (GCC folds it to x unless
// -fsignaling-nans), so they are kept apart to show exactly that.
std::vector<float> gradients(std::size_t n, bool signalling_nans = false) {
    std::vector<float> g = float_inputs(n, 1.0f, 255);
    static const std::uint32_t snans[] = {0x7FA00001u, 0xFFA00001u, 0x7F800001u, 0xFF812345u};
    for (std::size_t k = 0; k < n; ++k) {
        if (signalling_nans && k % 3 == 0) {
            g[k] = from_bits(snans[(k / 3) % 4]);
        } else if (is_signalling_nan(g[k])) {
            std::uint32_t b;
            std::memcpy(&b, &g[k], 4);
            g[k] = from_bits(b | 0x00400000u);
        }
    }
    return g;
}

template <class T>
std::vector<T> random_bytes(std::size_t n) {
    rng r(++seed_counter);
    std::vector<T> v(n);
    for (T& b : v) b = static_cast<T>(r.next() & 0xFF);
    input_hash.mix(v.data(), n * sizeof(T));
    return v;
}

// Accumulators for multiplier m: extremes, full-range noise, rounding ties of both modes for
// m's shift and their neighbours, the left shift's saturation threshold, values near 2^24
// (where int -> float rounds), small values.
std::vector<std::int32_t> acc_inputs(std::size_t n, qm_t m) {
    rng r(++seed_counter);
    static const std::int32_t specials[] = {i32_min, i32_min + 1, i32_max, i32_max - 1, 0, -1, 1, 2, -2,
                                            1 << 30, -(1 << 30)};
    const int e = m.shift < 0 ? -m.shift : 0;
    const int left = m.shift > 0 ? m.shift : 0;
    std::vector<std::int32_t> acc(n);
    for (std::int32_t& a : acc) {
        std::int64_t v = 0;
        switch (r.below(8)) {
            case 0: v = specials[r.below(sizeof specials / sizeof specials[0])]; break;
            case 1: v = static_cast<std::int32_t>(static_cast<std::uint32_t>(r.next())); break;
            case 2: v = r.between(-70000, 70000); break;
            case 3:
            case 4: {
                const int j = static_cast<int>(r.below(static_cast<std::uint32_t>(e + 2)));
                v = (2 * std::int64_t(r.between(-300, 300)) + 1) * (std::int64_t(1) << (j < 31 ? j : 30)) +
                    r.between(-1, 1);
                break;
            }
            case 5: {
                const std::int64_t lim = std::int64_t(1) << (31 - left);
                v = (r.below(2) ? lim : -lim) + r.between(-2, 2);
                break;
            }
            case 6: v = (r.below(2) ? 1 : -1) * ((std::int64_t(1) << 24) + r.between(-2048, 2047)); break;
            default: v = std::int64_t(r.between(-70000, 70000)) * 37; break;
        }
        a = static_cast<std::int32_t>(v < i32_min ? i32_min : v > i32_max ? i32_max : v);
    }
    input_hash.mix(acc.data(), n * 4);
    return acc;
}

template <class Scheme>
std::int32_t span_of(const Scheme& s) {
    return s.qmax() - s.qmin();
}

std::string numel_label(const lowbit::shape& shp, std::size_t axis) {
    std::string l = "[";
    for (std::size_t d = 0; d < shp.rank(); ++d) l += (d ? "," : "") + std::to_string(shp[d]);
    return l + "] axis " + std::to_string(axis);
}

template <class Scheme>
std::string scheme_label(const Scheme& s) {
    using F = typename Scheme::format;
    std::string l = F::id == lowbit::format_id::s8   ? "s8"
                    : F::id == lowbit::format_id::u8 ? "u8"
                    : F::id == lowbit::format_id::s4 ? "s4"
                    : F::id == lowbit::format_id::u4 ? "u4"
                                                      : "s32";
    l += std::string(" ") + lowbit::to_string(Scheme::sym);
    if (s.reduce_range()) l += " reduce_range";
    l += std::string(" ") + lowbit::to_string(s.profile()) + " " + lowbit::to_string(s.rounding());
    return l;
}

std::string qp_label(lowbit::qparams qp) {
    char b[64];
    std::snprintf(b, sizeof b, " scale %.9g zp %d", static_cast<double>(qp.scale), static_cast<int>(qp.zero_point));
    return b;
}

// ---- per-tensor quantize / dequantize / fake-quantize ----

template <class A, class Scheme>
void quantize_case(const Scheme& s, lowbit::qparams qp) {
    using T = typename Scheme::storage_type;
    line l("quantize " + scheme_label(s) + qp_label(qp));
    for (std::size_t n : sizes) {
        const std::vector<float> x = float_inputs(n, qp.scale, span_of(s));
        std::vector<T> q(Scheme::format::storage_size(n));
        check(lowbit::kernels::quantize<A>(s, qp, lowbit::span<const float>(x), lowbit::span<T>(q)), l.label);
        l.add(n, n, q);
    }
    finish(std::move(l));
}

template <class A, class Scheme>
void dequantize_case(const Scheme& s, lowbit::qparams qp) {
    using T = typename Scheme::storage_type;
    line l("dequantize " + scheme_label(s) + qp_label(qp));
    for (std::size_t n : sizes) {
        const std::vector<T> q = random_bytes<T>(Scheme::format::storage_size(n));
        std::vector<float> x(n);
        check(lowbit::kernels::dequantize<A>(s, qp, lowbit::span<const T>(q), lowbit::span<float>(x)), l.label);
        l.add(n, n, x);
    }
    finish(std::move(l));
}

template <class A, class Scheme>
void fake_quantize_case(const Scheme& s, lowbit::qparams qp, bool with_mask) {
    line l(std::string(with_mask ? "fake_quantize+mask " : "fake_quantize ") + scheme_label(s) + qp_label(qp));
    for (std::size_t n : sizes) {
        const std::vector<float> x = float_inputs(n, qp.scale, span_of(s));
        std::vector<float> y(n);
        std::vector<std::uint8_t> mask(with_mask ? n : 0);
        check(lowbit::kernels::fake_quantize<A>(s, qp, lowbit::span<const float>(x), lowbit::span<float>(y),
                                                lowbit::span<std::uint8_t>(mask)),
              l.label);
        l.add(n, n, y, mask);
    }
    finish(std::move(l));
}

template <class A, class Scheme>
void fake_quantize_backward_case(const Scheme& s, lowbit::qparams qp, bool snan_dy = false) {
    line l(std::string(snan_dy ? "fake_quantize_backward sNaN dy " : "fake_quantize_backward ") + scheme_label(s) +
           qp_label(qp));
    for (std::size_t n : sizes) {
        const std::vector<float> x = float_inputs(n, qp.scale, span_of(s));
        const std::vector<float> dy = gradients(n, snan_dy);
        std::vector<float> dx(n);
        check(lowbit::kernels::fake_quantize_backward<A>(s, qp, lowbit::span<const float>(x),
                                                         lowbit::span<const float>(dy), lowbit::span<float>(dx)),
              l.label);
        l.add(n, n, dx);
    }
    finish(std::move(l));
}

template <class A>
void fake_quantize_backward_masked_case(bool snan_dy = false) {
    line l(snan_dy ? "fake_quantize_backward_masked sNaN dy" : "fake_quantize_backward_masked");
    for (std::size_t n : sizes) {
        std::vector<std::uint8_t> mask = random_bytes<std::uint8_t>(n);
        for (std::uint8_t& m : mask) m = m < 100 ? 0 : m < 200 ? 1 : m;  // 0, 1 and other non-zero bytes
        const std::vector<float> dy = gradients(n, snan_dy);
        std::vector<float> dx(n);
        check(lowbit::kernels::fake_quantize_backward_masked<A>(lowbit::span<const std::uint8_t>(mask),
                                                                lowbit::span<const float>(dy), lowbit::span<float>(dx)),
              l.label);
        l.add(n, n, dx);
    }
    finish(std::move(l));
}

// Every per-tensor scheme with its qparams, under every profile / rounding combination.
template <class A, class F>
void for_each_numerics(F&& f) {
    using lowbit::profile;
    using lowbit::rounding;
    auto run = [&](auto base) {
        f(base);                                                                      // torch, half_even
        f(base.with_rounding(rounding::half_away));                                   // torch, half_away
        f(base.with_profile(profile::tflite));                                        // tflite, half_away
        f(base.with_profile(profile::tflite).with_rounding(rounding::half_even));     // tflite, half_even
    };
    run(lowbit::scheme<lowbit::s8>{});
    run(lowbit::scheme<lowbit::u8>{});
    run(lowbit::scheme<lowbit::s4, symmetry::symmetric>{});
    run(lowbit::scheme<lowbit::u4>{});
    run(lowbit::scheme<lowbit::s8, symmetry::symmetric_narrow>{});
    run(lowbit::scheme<lowbit::u8>{}.with_reduce_range());
}

template <class Scheme>
lowbit::qparams qparams_for(const Scheme&) {
    using F = typename Scheme::format;
    if (Scheme::sym == symmetry::symmetric_narrow) return {0.02f, 0};
    if (F::id == lowbit::format_id::s8) return {0.1f, 3};  // x * (1 / 0.1) and x / 0.1 differ often
    if (F::id == lowbit::format_id::u8) return {0.1f, 128};
    if (F::id == lowbit::format_id::s4) return {0.5f, 0};
    return {1.0f / 3.0f, 8};
}

template <class A>
void per_tensor_cases() {
    for_each_numerics<A>([](auto s) {
        lowbit::qparams qp = qparams_for(s);
        if (s.reduce_range()) qp = {0.25f, 7};
        quantize_case<A>(s, qp);
    });
    quantize_case<A>(lowbit::scheme<lowbit::s8>{}, {1e-30f, -128});  // huge products
    quantize_case<A>(lowbit::scheme<lowbit::u8>{}, {3e-5f, 0});
    quantize_case<A>(lowbit::scheme<lowbit::s4>{}.with_rounding(lowbit::rounding::stochastic, 9), {0.5f, 0});

    for_each_numerics<A>([](auto s) {
        if (s.rounding() != lowbit::rounding::half_even || s.profile() != lowbit::profile::torch) return;
        lowbit::qparams qp = qparams_for(s);
        if (s.reduce_range()) qp = {0.25f, 7};
        dequantize_case<A>(s, qp);
    });
    dequantize_case<A>(lowbit::scheme<lowbit::s8>{}, {1.1754944e-38f, -128});  // smallest normal scale
    dequantize_case<A>(lowbit::scheme<lowbit::u8>{}, {3e38f, 255});            // products overflow
    dequantize_case<A>(lowbit::scheme<lowbit::s4>{}, {3e38f, 7});
    dequantize_case<A>(lowbit::scheme<lowbit::u4>{}.with_range(0, 9), {0.7f, 9});

    for_each_numerics<A>([](auto s) {
        lowbit::qparams qp = qparams_for(s);
        if (s.reduce_range()) qp = {0.25f, 7};
        fake_quantize_case<A>(s, qp, true);
        if (lowbit::scheme<lowbit::s8>::format::id == decltype(s)::format::id) fake_quantize_case<A>(s, qp, false);
        fake_quantize_backward_case<A>(s, qp);
    });
    fake_quantize_case<A>(lowbit::scheme<lowbit::u4>{}, {1e-30f, 0}, true);
    fake_quantize_case<A>(lowbit::scheme<lowbit::s8>{}.with_rounding(lowbit::rounding::stochastic, 3), {0.1f, 0}, true);
    fake_quantize_backward_masked_case<A>();
    fake_quantize_backward_case<A>(lowbit::scheme<lowbit::s8>{}, {0.1f, 3}, true);
    fake_quantize_backward_case<A>(lowbit::scheme<lowbit::u4>{}.with_profile(lowbit::profile::tflite), {1.0f / 3.0f, 8},
                                   true);
    fake_quantize_backward_masked_case<A>(true);
}

// ---- per-channel / per-group ----

struct pc_shape {
    lowbit::shape shp;
    std::size_t axis;
    std::size_t group;  // 0: per-channel
};

// Channel axis innermost (contiguous parameter runs), middle and outermost (broadcast runs),
// groups of 2, 3, 4, 8, 16, 32, 128 along the innermost axis and along an outer one.
const pc_shape pc_shapes[] = {
    {{37, 17}, 1, 0},  {{5, 3}, 1, 0},     {{3, 300}, 1, 0},   {{1, 4103}, 1, 0}, {{17, 67}, 0, 0},
    {{4, 9, 5}, 1, 0}, {{2, 3, 131}, 1, 0}, {{4, 2, 2, 65}, 2, 0}, {{1023}, 0, 0},
    {{7, 96}, 1, 32},  {{5, 40}, 1, 4},    {{3, 30}, 1, 2},    {{6, 24}, 1, 8},   {{9, 99}, 1, 3},
    {{64, 9}, 0, 16},  {{3, 1024}, 1, 128}, {{3, 48, 5}, 1, 16},
};

template <class A, class Scheme>
void per_channel_case(const Scheme& base, const pc_shape& ps, std::size_t salt, bool snan_dy = false) {
    using T = typename Scheme::storage_type;
    const Scheme s = ps.group ? base.per_group(ps.axis, ps.group) : base.per_channel(ps.axis);
    const lowbit::quant_layout lay = *lowbit::make_layout(s, ps.shp);
    const std::size_t n = lay.numel, np = lay.param_count;
    static const float base_scales[] = {0.1f, 0.05f, 1.0f / 3.0f, 0.0123f, 1e-3f, 0.7f, 2.5f, 0.2f};
    std::vector<float> scales(np);
    std::vector<std::int32_t> zps(Scheme::sym == symmetry::affine ? np : 0);
    for (std::size_t p = 0; p < np; ++p) scales[p] = base_scales[(p * 7 + salt) % 8];
    for (std::size_t p = 0; p < zps.size(); ++p)
        zps[p] = s.qmin() + static_cast<std::int32_t>((p * 5 + salt) % static_cast<std::size_t>(span_of(s) + 1));
    const lowbit::qparams_view qp{lowbit::span<const float>(scales), lowbit::span<const std::int32_t>(zps)};
    const std::string what = std::string(snan_dy ? "sNaN dy " : "") +
                             (ps.group ? "per_group " + std::to_string(ps.group) + " " : std::string("per_channel ")) +
                             numel_label(ps.shp, ps.axis) + " " + scheme_label(s);

    rng r(++seed_counter);
    std::vector<float> x(n);
    for (std::size_t k = 0; k < n; ++k) x[k] = adversarial(r, scales[lay.param_index(k)], span_of(s));
    input_hash.mix(x.data(), n * 4);
    const std::vector<float> dy = gradients(n, snan_dy);
    const std::vector<T> qin = random_bytes<T>(Scheme::format::storage_size(n));
    const lowbit::span<const float> xs(x);

    if (!snan_dy) {
        std::vector<T> q(Scheme::format::storage_size(n));
        std::vector<float> y(n), deq(n);
        std::vector<std::uint8_t> mask(n);

        line lq("quantize " + what);
        check(lowbit::kernels::quantize<A>(s, ps.shp, qp, xs, lowbit::span<T>(q)), lq.label);
        lq.add(n, n, q);
        finish(std::move(lq));

        line ld("dequantize " + what);
        check(lowbit::kernels::dequantize<A>(s, ps.shp, qp, lowbit::span<const T>(qin), lowbit::span<float>(deq)),
              ld.label);
        ld.add(n, n, deq);
        finish(std::move(ld));

        line lf("fake_quantize+mask " + what);
        check(lowbit::kernels::fake_quantize<A>(s, ps.shp, qp, xs, lowbit::span<float>(y),
                                                lowbit::span<std::uint8_t>(mask)),
              lf.label);
        lf.add(n, n, y, mask);
        if (salt % 2 == 0) {  // the no-mask loop too
            std::vector<float> y2(n);
            check(lowbit::kernels::fake_quantize<A>(s, ps.shp, qp, xs, lowbit::span<float>(y2)), lf.label);
            lf.add(n, n, y2);
        }
        finish(std::move(lf));
    }

    std::vector<float> dx(n);
    line lb("fake_quantize_backward " + what);
    check(lowbit::kernels::fake_quantize_backward<A>(s, ps.shp, qp, xs, lowbit::span<const float>(dy),
                                                     lowbit::span<float>(dx)),
          lb.label);
    lb.add(n, n, dx);
    finish(std::move(lb));
}

template <class A>
void per_channel_cases() {
    using lowbit::profile;
    using lowbit::rounding;
    std::size_t i = 0;
    for (const pc_shape& ps : pc_shapes) {
        if (i % 2 == 0) {
            per_channel_case<A>(lowbit::scheme<lowbit::s8, symmetry::symmetric>{}, ps, i);
            per_channel_case<A>(lowbit::scheme<lowbit::u4>{}.with_profile(profile::tflite), ps, i + 1);
        } else {
            per_channel_case<A>(lowbit::scheme<lowbit::u8>{}.with_rounding(rounding::half_away), ps, i);
            per_channel_case<A>(lowbit::scheme<lowbit::s4, symmetry::symmetric>{}.with_profile(profile::tflite).with_rounding(
                                    rounding::half_even),
                                ps, i + 1);
        }
        ++i;
    }
    per_channel_case<A>(lowbit::scheme<lowbit::s8, symmetry::symmetric>{}, pc_shapes[0], 0, true);
    per_channel_case<A>(lowbit::scheme<lowbit::u8>{}, pc_shapes[4], 1, true);
}

// ---- requantize ----

struct clamp_case {
    std::int32_t zp, lo, hi, bias;
    bool has_bias;
};

std::vector<clamp_case> clamp_cases(std::int32_t qmin, std::int32_t qmax) {
    const std::int32_t mid = (qmin + qmax) / 2;
    return {{0 > qmin ? 0 : qmin, i32_min, i32_max, 0, false},
            {mid, mid, i32_max, 7, true},                    // ReLU
            {qmin + 3, qmin + 3, qmin + 9, i32_max, true},   // ReLU6-like, saturating bias
            {qmax, qmin + (qmax - qmin) / 8, qmax - (qmax - qmin) / 8, i32_min, true},
            {qmin, qmax + 50, qmax + 60, -1000, true}};      // clamp outside the format
}

template <class A, class Scheme>
void requantize_fixed_case(const Scheme& s, qm_t m, lowbit::requant_rounding mode) {
    using T = typename Scheme::storage_type;
    line l("requantize " + scheme_label(s) + " multiplier " + std::to_string(m.multiplier) + " shift " +
           std::to_string(m.shift) + " " + lowbit::to_string(mode));
    const auto clamps = clamp_cases(s.qmin(), s.qmax());
    std::size_t ci = 0;
    for (std::size_t n : sizes) {
        const clamp_case cc = clamps[ci++ % clamps.size()];
        lowbit::requantize_params p;
        p.multipliers = lowbit::span<const qm_t>(&m, 1);
        if (cc.has_bias) p.bias = lowbit::span<const std::int32_t>(&cc.bias, 1);
        p.zero_point = cc.zp;
        p.clamp_min = cc.lo;
        p.clamp_max = cc.hi;
        p.rounding = mode;
        const std::vector<std::int32_t> acc = acc_inputs(n, m);
        std::vector<T> out(Scheme::format::storage_size(n));
        check(lowbit::kernels::requantize<A>(s, lowbit::shape{n}, p, lowbit::span<const std::int32_t>(acc),
                                             lowbit::span<T>(out)),
              l.label);
        l.add(n, n, out);
    }
    finish(std::move(l));
}

template <class A, class Scheme>
void requantize_float_case(const Scheme& s, float m) {
    using T = typename Scheme::storage_type;
    char b[32];
    std::snprintf(b, sizeof b, "%.9g", static_cast<double>(m));
    line l("requantize_float " + scheme_label(s) + " multiplier " + b);
    const auto clamps = clamp_cases(s.qmin(), s.qmax());
    std::size_t ci = 1;
    int shift = 0;
    if (m > 0.0f) (void)std::frexp(m, &shift);
    const qm_t like{1 << 30, shift < -31 ? -31 : shift > 30 ? 30 : shift};
    for (std::size_t n : sizes) {
        const clamp_case cc = clamps[ci++ % clamps.size()];
        lowbit::requantize_float_params p;
        p.multipliers = lowbit::span<const float>(&m, 1);
        if (cc.has_bias) p.bias = lowbit::span<const std::int32_t>(&cc.bias, 1);
        p.zero_point = cc.zp;
        p.clamp_min = cc.lo;
        p.clamp_max = cc.hi;
        const std::vector<std::int32_t> acc = acc_inputs(n, like);
        std::vector<T> out(Scheme::format::storage_size(n));
        check(lowbit::kernels::requantize<A>(s, lowbit::shape{n}, p, lowbit::span<const std::int32_t>(acc),
                                             lowbit::span<T>(out)),
              l.label);
        l.add(n, n, out);
    }
    finish(std::move(l));
}

const qm_t fixed_multipliers[] = {{1 << 30, -1},     {1717986918, -3}, {i32_max, -31}, {1 << 30, 30},
                                  {1610612736, 1},   {0, 0},           {1395864371, -9}, {1 << 30, -12},
                                  {1999999999, -15}, {i32_max, -8}};
const float float_multipliers[] = {0.1f, 0.25f, 3.0f, 1e-6f, 0.0f, 0.0123f, 7.62939453125e-06f /* 2^-17 */};

template <class A, class Scheme>
void requantize_per_channel_case(const Scheme& base, const lowbit::shape& shp, std::size_t axis, int variant) {
    using T = typename Scheme::storage_type;
    const Scheme s = base.per_channel(axis);
    const lowbit::quant_layout lay = *lowbit::make_layout(s, shp);
    const std::size_t n = lay.numel, c = lay.param_count;
    std::vector<qm_t> m(c);
    std::vector<float> fm(c);
    std::vector<std::int32_t> bias(c);
    rng r(++seed_counter);
    static const std::int32_t biases[] = {0, 5, -77777, i32_max, i32_min, 123456};
    for (std::size_t i = 0; i < c; ++i) {
        m[i] = fixed_multipliers[r.below(sizeof fixed_multipliers / sizeof fixed_multipliers[0])];
        if (r.below(2)) m[i] = {r.between(1 << 30, i32_max), r.between(-31, 30)};
        fm[i] = float_multipliers[r.below(sizeof float_multipliers / sizeof float_multipliers[0])];
        bias[i] = biases[r.below(6)];
    }
    input_hash.mix(m.data(), c * sizeof(qm_t));
    // accumulators made for the multipliers of three channels, interleaved
    std::vector<std::int32_t> acc(n);
    const auto a0 = acc_inputs(n, m[0]), a1 = acc_inputs(n, m[c - 1]), a2 = acc_inputs(n, m[c / 2]);
    for (std::size_t k = 0; k < n; ++k) acc[k] = k % 3 == 0 ? a0[k] : k % 3 == 1 ? a1[k] : a2[k];
    const auto cc = clamp_cases(s.qmin(), s.qmax())[static_cast<std::size_t>(variant) + 1];
    std::vector<T> out(Scheme::format::storage_size(n));
    const std::string what = numel_label(shp, axis) + " " + scheme_label(s);
    if (variant < 2) {
        const auto mode = variant == 0 ? lowbit::requant_rounding::double_rounding : lowbit::requant_rounding::single_rounding;
        line l("requantize per_channel " + what + " " + lowbit::to_string(mode));
        lowbit::requantize_params p;
        p.multipliers = m;
        if (variant == 0) p.bias = bias;
        p.zero_point = cc.zp;
        p.clamp_min = cc.lo;
        p.clamp_max = cc.hi;
        p.rounding = mode;
        check(lowbit::kernels::requantize<A>(s, shp, p, lowbit::span<const std::int32_t>(acc), lowbit::span<T>(out)),
              l.label);
        l.add(n, n, out);
        finish(std::move(l));
    } else {
        line l("requantize_float per_channel " + what);
        lowbit::requantize_float_params p;
        p.multipliers = fm;
        p.bias = bias;
        p.zero_point = cc.zp;
        p.clamp_min = cc.lo;
        p.clamp_max = cc.hi;
        check(lowbit::kernels::requantize<A>(s, shp, p, lowbit::span<const std::int32_t>(acc), lowbit::span<T>(out)),
              l.label);
        l.add(n, n, out);
        finish(std::move(l));
    }
}

template <class A>
void requantize_cases() {
    for (const qm_t& m : fixed_multipliers)
        for (auto mode : {lowbit::requant_rounding::double_rounding, lowbit::requant_rounding::single_rounding}) {
            requantize_fixed_case<A>(lowbit::scheme<lowbit::s8>{}, m, mode);
            requantize_fixed_case<A>(lowbit::scheme<lowbit::u8>{}, m, mode);
        }
    for (float m : float_multipliers) {
        requantize_float_case<A>(lowbit::scheme<lowbit::s8>{}, m);
        requantize_float_case<A>(lowbit::scheme<lowbit::u8>{}, m);
    }
    // reference paths of the kernels: 4-bit outputs
    requantize_fixed_case<A>(lowbit::scheme<lowbit::s4>{}, {1717986918, -3}, lowbit::requant_rounding::double_rounding);
    requantize_float_case<A>(lowbit::scheme<lowbit::u4>{}, 0.0123f);

    struct rq_shape {
        lowbit::shape shp;
        std::size_t axis;
    };
    const rq_shape shapes[] = {{{5, 3}, 1},      {{37, 17}, 1},    {{3, 300}, 1},       {{130, 300}, 1},
                               {{4, 100, 3}, 1}, {{3, 5, 131}, 1}, {{6, 300}, 0},       {{4, 2, 2, 65}, 2},
                               {{1, 513}, 1},    {{2, 3, 33}, 1}};
    for (const rq_shape& rs : shapes)
        for (int variant = 0; variant < 3; ++variant) {
            if (variant == 1)
                requantize_per_channel_case<A>(lowbit::scheme<lowbit::u8>{}, rs.shp, rs.axis, variant);
            else
                requantize_per_channel_case<A>(lowbit::scheme<lowbit::s8>{}, rs.shp, rs.axis, variant);
        }
}

// ---- int4 ----

template <class A>
void int4_cases() {
    line ps("pack_s4"), pu("pack_u4"), us("unpack_s4"), uu("unpack_u4");
    for (std::size_t n : sizes) {
        std::vector<std::int8_t> sv = random_bytes<std::int8_t>(n);
        for (std::int8_t& v : sv) v = static_cast<std::int8_t>((v & 15) - 8);
        std::vector<std::uint8_t> uv = random_bytes<std::uint8_t>(n);
        for (std::uint8_t& v : uv) v = static_cast<std::uint8_t>(v & 15);
        const std::vector<std::uint8_t> packed = random_bytes<std::uint8_t>((n + 1) / 2);
        std::vector<std::uint8_t> p1((n + 1) / 2), p2((n + 1) / 2), v2(n);
        std::vector<std::int8_t> v1(n);
        check(lowbit::kernels::pack_s4<A>(lowbit::span<const std::int8_t>(sv), lowbit::span<std::uint8_t>(p1)), "pack_s4");
        check(lowbit::kernels::pack_u4<A>(lowbit::span<const std::uint8_t>(uv), lowbit::span<std::uint8_t>(p2)), "pack_u4");
        check(lowbit::kernels::unpack_s4<A>(lowbit::span<const std::uint8_t>(packed), lowbit::span<std::int8_t>(v1)),
              "unpack_s4");
        check(lowbit::kernels::unpack_u4<A>(lowbit::span<const std::uint8_t>(packed), lowbit::span<std::uint8_t>(v2)),
              "unpack_u4");
        ps.add(n, n, p1);
        pu.add(n, n, p2);
        us.add(n, n, v1);
        uu.add(n, n, v2);
    }
    finish(std::move(ps));
    finish(std::move(pu));
    finish(std::move(us));
    finish(std::move(uu));
}

// ---- reductions ----

// kind 0: adversarial (NaN included); 1: NaN replaced by finite values; 2: finite only;
// 3: zeros of both signs and denormals; 4: all -0.0.
std::vector<float> reduce_inputs(std::size_t n, int kind) {
    std::vector<float> x = float_inputs(n, 0.1f, 255);
    rng r(++seed_counter);
    for (float& v : x) {
        if (kind >= 1 && v != v) v = static_cast<float>(r.between(-1000, 1000)) * 0.01f;
        if (kind >= 2 && (v - v) != 0.0f) v = -0.0f;
        if (kind == 3) v = r.below(3) == 0 ? from_bits((static_cast<std::uint32_t>(r.next()) & 0x807FFFFFu)) : r.below(2) ? 0.0f : -0.0f;
        if (kind == 4) v = -0.0f;
    }
    input_hash.mix(x.data(), n * 4);
    return x;
}

template <class A>
void reduce_cases() {
    for (int kind = 0; kind < 5; ++kind) {
        line l("min_max kind " + std::to_string(kind));
        for (std::size_t n : sizes) {
            const std::vector<float> x = reduce_inputs(n, kind);
            const lowbit::result<lowbit::min_max_range> r = lowbit::kernels::min_max<A>(lowbit::span<const float>(x));
            check(r.status(), l.label);
            const float mm[2] = {r->min, r->max};
            const std::vector<float> v(mm, mm + 2);
            l.add(n, n, v);
        }
        finish(std::move(l));
    }
    struct mm_shape {
        lowbit::shape shp;
        std::size_t axis;
    };
    const mm_shape shapes[] = {{{5, 3}, 1},   {{300, 7}, 1},  {{9, 512}, 1},   {{4, 513}, 1},
                               {{3, 1500}, 1}, {{4, 9, 5}, 1}, {{17, 67}, 0},   {{2, 3, 131}, 1}, {{1023}, 0}};
    for (const mm_shape& ms : shapes)
        for (int kind : {0, 2}) {
            std::size_t n = 1;
            for (std::size_t d = 0; d < ms.shp.rank(); ++d) n *= ms.shp[d];
            std::vector<float> x = reduce_inputs(n, 2);
            if (kind == 0)  // NaN in a few channels only
                for (std::size_t k = 5; k < n; k += 97) x[k] = std::numeric_limits<float>::quiet_NaN();
            const std::size_t c = ms.shp[ms.axis];
            std::vector<float> mins(c), maxs(c);
            line l("min_max per_channel " + numel_label(ms.shp, ms.axis) + (kind == 0 ? " some NaN" : " finite"));
            check(lowbit::kernels::min_max<A>(ms.shp, ms.axis, lowbit::span<const float>(x), lowbit::span<float>(mins),
                                              lowbit::span<float>(maxs)),
                  l.label);
            l.add(n, n, mins, maxs);
            finish(std::move(l));
        }
    struct hist_case {
        float lo, hi, scale;
        std::size_t bins;
    };
    const hist_case hists[] = {{-1.0f, 1.0f, 1.0f / 1024.0f, 2048},  // bin edges and bin midpoints
                               {-3.5f, 10.0f, 0.135f, 100},
                               {0.0f, 1e-3f, 1e-4f, 7},
                               {-1e30f, 1e30f, 1e28f, 256},
                               {-8.0f, 7.0f, 1.0f, 15}};
    for (const hist_case& hc : hists) {
        char b[96];
        std::snprintf(b, sizeof b, "histogram [%.9g, %.9g] bins %zu", static_cast<double>(hc.lo),
                      static_cast<double>(hc.hi), hc.bins);
        line l(b);
        for (std::size_t n : sizes) {
            const std::vector<float> x = float_inputs(n, hc.scale, 255);
            std::vector<std::uint64_t> counts(hc.bins);
            check(lowbit::kernels::histogram<A>(lowbit::span<const float>(x), hc.lo, hc.hi,
                                                lowbit::span<std::uint64_t>(counts)),
                  l.label);
            l.add(n, n, counts);
        }
        finish(std::move(l));
    }
}

// ---- LSQ backward (quant/learnable.hpp): its SIMD loop uses fused multiply-adds ----

template <class A>
void lsq_cases() {
    struct lsq_case {
        lowbit::qparams qp;  // scale; zero_point as the float offset below
        float zero_point;
        float grad_factor;
    };
    const lsq_case cases[] = {{{0.1f, 0}, 3.0f, 1.0f}, {{0.03f, 0}, 131.3f, 0.01f}, {{1.0f / 3.0f, 0}, -1.7f, 0.5f}};
    for (const lsq_case& c : cases) {
        for (int fmt = 0; fmt < 2; ++fmt) {
            const lowbit::scheme<lowbit::u8> u8s{};
            const lowbit::scheme<lowbit::s4> s4s{};
            const std::int32_t qmin = fmt == 0 ? u8s.qmin() : s4s.qmin(), qmax = fmt == 0 ? u8s.qmax() : s4s.qmax();
            char b[96];
            std::snprintf(b, sizeof b, "lsq_backward %s scale %.9g zp %.9g g %.9g", fmt == 0 ? "u8" : "s4",
                          static_cast<double>(c.qp.scale), static_cast<double>(c.zero_point),
                          static_cast<double>(c.grad_factor));
            line l(b);
            for (std::size_t n : sizes) {
                const std::vector<float> x = float_inputs(n, c.qp.scale, qmax - qmin);
                const std::vector<float> dy = gradients(n);
                std::vector<float> dx(n);
                const lowbit::lsq_element e =
                    lowbit::lsq_element::make(c.qp.scale, c.zero_point, qmin, qmax, c.grad_factor, false);
                lowbit::detail::lsq::partial_sums p;
                (void)lowbit::detail::lsq::backward_run<A>(e, x.data(), dy.data(), dx.data(), n, p, 0);
                const std::vector<float> sums = {static_cast<float>(p.total_ds()), static_cast<float>(p.total_dz())};
                l.add(n, n, dx, sums);
            }
            finish(std::move(l));
        }
    }
}

template <class A>
std::vector<line> run_all() {
    std::vector<line> out;
    sink = &out;
    seed_counter = 0;
    input_hash = fnv{};
    per_tensor_cases<A>();
    per_channel_cases<A>();
    requantize_cases<A>();
    int4_cases<A>();
    reduce_cases<A>();
    lsq_cases<A>();
    line in("inputs");
    const std::vector<std::uint64_t> h(1, input_hash.h);
    in.add(0, 0, h);
    out.push_back(std::move(in));
    sink = nullptr;
    return out;
}

}  // namespace

int main(int argc, char** argv) try {
    bool verbose = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "-v") == 0) {
            verbose = true;
        } else if (std::strcmp(argv[i], "--canonical-nan") == 0) {
            canonical_nan = true;
        } else {
            std::fprintf(stderr, "usage: %s [-v] [--canonical-nan]\n", argv[0]);
            return 2;
        }
    }
    std::fprintf(stderr, "determinism_probe: default_arch = %s\n", default_arch::name());
    const std::vector<line> simd = run_all<default_arch>();
    const std::vector<line> scalar = run_all<scalar_arch>();
    if (simd.size() != scalar.size()) {
        std::fprintf(stderr, "determinism_probe: %zu SIMD cases but %zu scalar cases\n", simd.size(), scalar.size());
        return 1;
    }
    int mismatches = 0;
    for (std::size_t i = 0; i < simd.size(); ++i) {
        const line& a = simd[i];
        const line& b = scalar[i];
        std::printf("%s: n=%zu default=%016llx scalar=%016llx\n", a.label.c_str(), a.count,
                    static_cast<unsigned long long>(a.all.h), static_cast<unsigned long long>(b.all.h));
        if (verbose)
            for (std::size_t j = 0; j < a.subs.size(); ++j)
                std::printf("    size %zu: n=%zu default=%016llx scalar=%016llx\n", a.subs[j].size, a.subs[j].count,
                            static_cast<unsigned long long>(a.subs[j].hash),
                            static_cast<unsigned long long>(b.subs[j].hash));
        if (a.label != b.label || a.all.h != b.all.h) {
            ++mismatches;
            std::fprintf(stderr, "determinism_probe: %s differs from the scalar path (%s)\n", a.label.c_str(),
                         default_arch::name());
            for (std::size_t j = 0; j < a.subs.size() && j < b.subs.size(); ++j)
                if (a.subs[j].hash != b.subs[j].hash)
                    std::fprintf(stderr, "    size %zu: %016llx vs scalar %016llx\n", a.subs[j].size,
                                 static_cast<unsigned long long>(a.subs[j].hash),
                                 static_cast<unsigned long long>(b.subs[j].hash));
            std::size_t shown = 0;  // the first few differing 4-byte words of the concatenated outputs
            for (std::size_t o = 0; o + 4 <= a.bytes.size() && o + 4 <= b.bytes.size() && shown < 4; o += 4) {
                std::uint32_t wa, wb;
                std::memcpy(&wa, a.bytes.data() + o, 4);
                std::memcpy(&wb, b.bytes.data() + o, 4);
                if (wa != wb) {
                    std::fprintf(stderr, "    output byte %zu: %08x vs scalar %08x\n", o, static_cast<unsigned>(wa),
                                 static_cast<unsigned>(wb));
                    ++shown;
                }
            }
        }
    }
    std::fflush(stdout);
    return mismatches ? 1 : 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "determinism_probe: %s\n", e.what());
    return 2;
}
