// tests/fuzz/fuzz_gemm.cpp: the int8 GEMM (lowbit::kernels::gemm on packed weights, every
// gemm_isa this machine runs: scalar, AVX2, AVX-512BW, AVX-512 VNNI, AVX-VNNI (and its EVEX
// test encoding), AMX, best) against lowbit::ref::gemm, on small fuzzer-chosen shapes
// (M <= 24, N <= 40, K <= 160), u8 or s8 A with any zero point, B in either layout with no /
// per-tensor / per-channel zero points, padded leading dimensions, and the four epilogues:
// int32, fixed-point requantize (s8 / u8, custom ranges, clamps, both roundings, per-tensor /
// per-channel multipliers and bias), float-multiplier requantize, dequantize to f32. A random
// gemm_options::range restricts the kernel to a block of C: inside it the bits must equal the
// reference, outside it (and in the ldc padding) nothing may be written. Statuses must be
// identical; wrong sizes and invalid parameters are chosen now and then.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <lowbit/core/gemm.hpp>
#include <lowbit/kernels/gemm.hpp>

#include "fuzz_common.hpp"

namespace {

using fuzz::buffer;
using lowbit::span;
namespace kn = lowbit::kernels;

std::size_t maybe_wrong(FuzzedDataProvider& p, std::size_t want) {
    const std::uint8_t b = p.ConsumeIntegral<std::uint8_t>();
    if (b == 255) return want + 1;
    if (b == 254 && want > 0) return want - 1;
    return want;
}

std::int8_t pick_weight(FuzzedDataProvider& p) {
    const std::uint8_t sel = p.ConsumeIntegral<std::uint8_t>();
    if (sel < 32) return sel % 2 ? std::int8_t(127) : std::int8_t(-128);
    return static_cast<std::int8_t>(p.ConsumeIntegral<std::uint8_t>());
}

std::int32_t pick_i32(FuzzedDataProvider& p) {
    const std::uint8_t sel = p.ConsumeIntegral<std::uint8_t>();
    if (sel < 16) return sel % 2 ? INT32_MAX : INT32_MIN;
    if (sel < 96) return p.ConsumeIntegral<std::int32_t>();
    return p.ConsumeIntegralInRange<std::int32_t>(-100000, 100000);
}

// Everything except the epilogue.
template <class TA>
struct problem {
    lowbit::gemm_dims d;
    std::vector<TA> a;
    std::vector<std::int8_t> b;
    std::vector<std::int32_t> zb;
    lowbit::gemm_a<TA> av;
    lowbit::gemm_b bv;
    std::size_t ldc = 0, c_size = 0;
    kn::gemm_range range;
    bool range_ok = true;
};

template <class TA>
problem<TA> make_problem(FuzzedDataProvider& p) {
    problem<TA> pr;
    pr.d.m = p.ConsumeIntegralInRange<std::size_t>(0, 24);
    pr.d.n = p.ConsumeIntegralInRange<std::size_t>(0, 40);
    pr.d.k = p.ConsumeIntegralInRange<std::size_t>(0, 160);
    const std::size_t m = pr.d.m, n = pr.d.n, k = pr.d.k;
    // A
    const std::size_t lda = k + p.ConsumeIntegralInRange<std::size_t>(0, 3);
    const std::size_t a_size = maybe_wrong(p, m == 0 ? 0 : (m - 1) * lda + k);
    pr.a.resize(a_size);
    const bool extreme_a = p.ConsumeIntegral<std::uint8_t>() < 64;
    for (auto& v : pr.a) {
        const std::uint8_t r = p.ConsumeIntegral<std::uint8_t>();
        v = static_cast<TA>(extreme_a ? (r % 2 ? 0xFF : 0x00) ^ (std::is_signed<TA>::value ? 0x80 : 0) : r);
    }
    constexpr std::int32_t a_lo = std::is_signed<TA>::value ? -128 : 0;
    const std::int32_t za = p.ConsumeIntegral<std::uint8_t>() < 8 ? p.ConsumeIntegralInRange<std::int32_t>(-300, 300)
                                                                  : p.ConsumeIntegralInRange<std::int32_t>(a_lo, a_lo + 255);
    pr.av = lowbit::gemm_a<TA>{span<const TA>(pr.a), lda, za};
    // B
    const bool kn_layout = p.ConsumeBool();
    const std::size_t rows = kn_layout ? k : n, cols = kn_layout ? n : k;
    std::size_t ldb = cols + p.ConsumeIntegralInRange<std::size_t>(0, 3);
    if (p.ConsumeIntegral<std::uint8_t>() == 255 && ldb > 0) ldb -= 1;  // sometimes too small
    pr.b.resize(maybe_wrong(p, rows == 0 ? 0 : (rows - 1) * ldb + cols));
    for (auto& v : pr.b) v = pick_weight(p);
    const int zb_kind = p.ConsumeIntegralInRange<int>(0, 2);
    const std::size_t zb_count = zb_kind == 0 ? 0 : zb_kind == 1 ? 1 : maybe_wrong(p, n);
    for (std::size_t i = 0; i < zb_count; ++i)
        pr.zb.push_back(p.ConsumeIntegral<std::uint8_t>() < 4 ? p.ConsumeIntegralInRange<std::int32_t>(-200, 200)
                                                              : p.ConsumeIntegralInRange<std::int32_t>(-128, 127));
    pr.bv.data = span<const std::int8_t>(pr.b);
    pr.bv.ld = ldb;
    pr.bv.layout = kn_layout ? lowbit::weight_layout::k_by_n : lowbit::weight_layout::n_by_k;
    pr.bv.zero_points = span<const std::int32_t>(pr.zb);
    // C
    pr.ldc = n + p.ConsumeIntegralInRange<std::size_t>(0, 3);
    pr.c_size = maybe_wrong(p, m == 0 ? 0 : (m - 1) * pr.ldc + n);
    // the block of C the kernel computes
    if (p.ConsumeBool()) {
        pr.range.m0 = p.ConsumeIntegralInRange<std::size_t>(0, m + 1);
        pr.range.m1 = p.ConsumeBool() ? kn::gemm_range::all : p.ConsumeIntegralInRange<std::size_t>(0, m + 1);
        pr.range.n0 = p.ConsumeIntegralInRange<std::size_t>(0, n + 1);
        pr.range.n1 = p.ConsumeBool() ? kn::gemm_range::all : p.ConsumeIntegralInRange<std::size_t>(0, n + 1);
    }
    const std::size_t m1 = pr.range.m1 == kn::gemm_range::all ? m : pr.range.m1;
    const std::size_t n1 = pr.range.n1 == kn::gemm_range::all ? n : pr.range.n1;
    pr.range_ok = m1 <= m && pr.range.m0 <= m1 && n1 <= n && pr.range.n0 <= n1;
    return pr;
}

// ref::gemm into ref_c, then kernels::gemm with every ISA; call(out, ref, options) -> status.
template <class TA, class Out, class Call>
void compare(const char* what, const problem<TA>& pr, Call call) {
    const std::size_t off = 1;
    buffer<Out> ref(pr.c_size, off, 0xA5);
    const lowbit::status rs = fuzz::run([&] { return call(ref, true, kn::gemm_options{}); });
    // the packed weights (pack_weights checks B as ref::gemm does)
    std::vector<std::uint8_t> packed_buf(kn::packed_size(pr.d.n, pr.d.k) + 1);
    kn::packed_weights w;
    const lowbit::status ps = fuzz::run([&]() -> lowbit::status {
        const lowbit::result<kn::packed_weights> r =
            kn::pack_weights(pr.bv, pr.d.n, pr.d.k, span<std::uint8_t>(packed_buf.data() + 1, packed_buf.size() - 1));
        if (r.ok()) w = *r;
        return r.status();
    });
    if (!ps.ok()) {
        // (ref::gemm looks at B only when M, N > 0; pack_weights always checks it)
        FUZZ_REQUIRE(!rs.ok() || pr.d.m == 0, "%s: pack_weights refused B ('%s') but ref::gemm accepted it", what,
                     ps.argument);
        return;
    }
    const kn::gemm_isa isas[] = {kn::gemm_isa::best,     kn::gemm_isa::scalar,      kn::gemm_isa::avx2,
                                 kn::gemm_isa::avx512bw, kn::gemm_isa::avx512_vnni, kn::gemm_isa::avx_vnni,
                                 kn::gemm_isa::amx,      kn::detail::gemm_isa_vnni256_evex};
    for (const kn::gemm_isa isa : isas) {
        if (!kn::gemm_isa_available(isa)) continue;
        const kn::gemm_options opt{isa, pr.range};
        buffer<Out> got(pr.c_size, off, 0xA5);
        const lowbit::status ks = fuzz::run([&] { return call(got, false, opt, w); });
        const char* name = kn::to_string(isa);
        if (!rs.ok() || pr.range_ok) {
            fuzz::require_same_status(rs, ks, what);
        } else {
            FUZZ_REQUIRE(!ks.ok() && std::strncmp(ks.argument, "opt.range", 9) == 0,
                         "%s on %s: an invalid range gave '%s'", what, name, ks.argument);
        }
        if (!ks.ok()) {
            const buffer<Out> untouched(pr.c_size, off, 0xA5);
            FUZZ_REQUIRE(fuzz::same_bytes(untouched, got), "%s on %s: C written by a failing call", what, name);
            continue;
        }
        const std::size_t m1 = pr.range.m1 == kn::gemm_range::all ? pr.d.m : pr.range.m1;
        const std::size_t n1 = pr.range.n1 == kn::gemm_range::all ? pr.d.n : pr.range.n1;
        const buffer<Out> untouched(1, 0, 0xA5);
        for (std::size_t i = 0; i < pr.c_size; ++i) {
            const std::size_t ld = pr.ldc == 0 ? 1 : pr.ldc;  // (N = 0: ldc may be 0, nothing is inside)
            const std::size_t r = i / ld, c = i % ld;
            const bool inside = r >= pr.range.m0 && r < m1 && c >= pr.range.n0 && c < n1;
            const Out& want = inside ? ref[i] : untouched[0];
            FUZZ_REQUIRE(std::memcmp(&want, &got[i], sizeof(Out)) == 0,
                         "%s on %s: C[%zu][%zu] differs (%s the range; M N K = %zu %zu %zu)", what, name, r, c,
                         inside ? "inside" : "outside", pr.d.m, pr.d.n, pr.d.k);
        }
    }
}

template <class TA>
void gemm_case(FuzzedDataProvider& p) {
    const problem<TA> pr = make_problem<TA>(p);
    const lowbit::gemm_dims d = pr.d;
    const int epilogue = p.ConsumeIntegralInRange<int>(0, 3);
    const std::size_t n = d.n;
    if (epilogue == 0) {
        compare<TA, std::int32_t>("gemm int32", pr, [&](buffer<std::int32_t>& c, bool ref, kn::gemm_options opt,
                                                        const kn::packed_weights& w = {}) {
            const span<std::int32_t> cs(c.data(), c.size());
            return ref ? lowbit::ref::gemm(d, pr.av, pr.bv, cs, pr.ldc) : kn::gemm(d, pr.av, w, cs, pr.ldc, opt);
        });
        return;
    }
    if (epilogue == 3) {
        std::vector<float> scales(maybe_wrong(p, p.ConsumeBool() ? 1 : n)), bias;
        for (auto& s : scales) s = p.ConsumeIntegral<std::uint8_t>() < 8 ? fuzz::pick_float(p, 1.0f) : fuzz::pick_scale(p);
        if (p.ConsumeBool()) bias.resize(maybe_wrong(p, p.ConsumeBool() ? 1 : n));
        for (auto& b : bias) b = p.ConsumeIntegral<std::uint8_t>() < 8 ? fuzz::pick_float(p, 1.0f)
                                                                        : static_cast<float>(p.ConsumeIntegral<std::int16_t>()) / 8.0f;
        const lowbit::gemm_dequantize_params dp{scales, bias};
        compare<TA, float>("gemm dequantize", pr, [&](buffer<float>& c, bool ref, kn::gemm_options opt,
                                                      const kn::packed_weights& w = {}) {
            const span<float> cs(c.data(), c.size());
            return ref ? lowbit::ref::gemm(d, pr.av, pr.bv, dp, cs, pr.ldc) : kn::gemm(d, pr.av, w, dp, cs, pr.ldc, opt);
        });
        return;
    }
    // requantizing epilogues: s8 or u8 output scheme
    const std::size_t count = maybe_wrong(p, p.ConsumeBool() ? 1 : n);
    std::vector<lowbit::quantized_multiplier> qm;
    std::vector<float> fm;
    std::vector<std::int32_t> bias;
    for (std::size_t i = 0; i < count; ++i) {
        if (epilogue == 1) {
            const std::uint8_t sel = p.ConsumeIntegral<std::uint8_t>();
            if (sel < 8)
                qm.push_back({p.ConsumeIntegral<std::int32_t>(), p.ConsumeIntegralInRange<int>(-40, 40)});
            else if (sel < 16)
                qm.push_back({0, 0});
            else
                qm.push_back({p.ConsumeIntegralInRange<std::int32_t>(1 << 30, INT32_MAX), p.ConsumeIntegralInRange<int>(-31, 30)});
        } else {
            const std::uint8_t sel = p.ConsumeIntegral<std::uint8_t>();
            const std::uint32_t r = p.ConsumeIntegral<std::uint32_t>();
            fm.push_back(sel < 8 ? fuzz::float_from_bits(r) : fuzz::float_from_bits(((127u - 30u + r % 36u) << 23) | (r >> 9)));
        }
    }
    if (p.ConsumeBool()) bias.resize(maybe_wrong(p, p.ConsumeBool() ? 1 : n));
    for (auto& b : bias) b = pick_i32(p);
    const std::uint8_t opts = p.ConsumeIntegral<std::uint8_t>();
    const std::int32_t zp = p.ConsumeIntegralInRange<std::int32_t>(-140, 270);
    std::int32_t clamp_min = INT32_MIN, clamp_max = INT32_MAX;
    if (opts & 1) clamp_min = p.ConsumeIntegralInRange<std::int32_t>(-300, 300);
    if (opts & 2) clamp_max = p.ConsumeIntegralInRange<std::int32_t>(-300, 300);
    const auto run_scheme = [&](const auto& s) {
        using S = std::decay_t<decltype(s)>;
        using T = typename S::storage_type;
        if (epilogue == 1) {
            lowbit::requantize_params rp;
            rp.multipliers = qm;
            rp.bias = bias;
            rp.zero_point = zp;
            rp.clamp_min = clamp_min;
            rp.clamp_max = clamp_max;
            rp.rounding = (opts & 4) ? lowbit::requant_rounding::single_rounding : lowbit::requant_rounding::double_rounding;
            compare<TA, T>("gemm requantize", pr, [&](buffer<T>& c, bool ref, kn::gemm_options opt,
                                                      const kn::packed_weights& w = {}) {
                const span<T> cs(c.data(), c.size());
                return ref ? lowbit::ref::gemm(d, pr.av, pr.bv, s, rp, cs, pr.ldc)
                           : kn::gemm(d, pr.av, w, s, rp, cs, pr.ldc, opt);
            });
        } else {
            lowbit::requantize_float_params rp;
            rp.multipliers = fm;
            rp.bias = bias;
            rp.zero_point = zp;
            rp.clamp_min = clamp_min;
            rp.clamp_max = clamp_max;
            compare<TA, T>("gemm requantize (float)", pr, [&](buffer<T>& c, bool ref, kn::gemm_options opt,
                                                              const kn::packed_weights& w = {}) {
                const span<T> cs(c.data(), c.size());
                return ref ? lowbit::ref::gemm(d, pr.av, pr.bv, s, rp, cs, pr.ldc)
                           : kn::gemm(d, pr.av, w, s, rp, cs, pr.ldc, opt);
            });
        }
    };
    const bool custom = opts & 16;
    const std::int32_t lo = p.ConsumeIntegralInRange<std::int32_t>(-128, 0), hi = p.ConsumeIntegralInRange<std::int32_t>(0, 127);
    if (opts & 8) {
        const auto s = lowbit::scheme<lowbit::u8>{};
        run_scheme(custom ? s.with_range(0, hi + 128) : s);
    } else {
        const auto s = lowbit::scheme<lowbit::s8>{};
        run_scheme(custom ? s.with_range(lo, hi) : s);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider p(data, size);
    if (p.ConsumeBool())
        gemm_case<std::uint8_t>(p);
    else
        gemm_case<std::int8_t>(p);
    return 0;
}
