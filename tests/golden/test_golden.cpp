// Golden vectors: lowbit's core against PyTorch 1.13, bit for bit.
//
// The data files in tests/golden/data were written by tests/golden/generate.py (see the
// README there); every float is float.hex() of a float32 and is read back exactly with
// std::strtof. Integers must be equal and floats bitwise equal (so -0.0 and +0.0 differ,
// as they do in torch's outputs). Any single mismatch fails the test case and prints the
// data file and line, the inputs, the expected and the obtained value.
#include "golden_reader.hpp"
#include "lowbit_catch.hpp"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <lowbit/lowbit.hpp>

namespace {

using lowbit::symmetry;

// ---------------------------------------------------------------------------------------
// reading the data files and comparing (tests/golden_reader.hpp)

using golden::report;
using golden::row;
using golden::show;

/// The data rows of a file written by tests/golden/generate.py.
std::vector<row> load(const std::string& name) { return golden::load(name, "generate.py"); }

/// Runs `fn`, turning a lowbit::error into a reported mismatch.
template <class Fn>
bool attempt(report& rep, const std::string& ctx, Fn&& fn) {
    try {
        fn();
        return true;
    } catch (const lowbit::error& e) {
        rep.error(ctx, e.what());
        return false;
    }
}

/// "x[k]=..." for element messages.
std::string element(const char* name, std::size_t k, float v) {
    return std::string(name) + "[" + std::to_string(k) + "]=" + show(v);
}

// ---------------------------------------------------------------------------------------
// schemes from the data's format and symmetry words

template <class F, class Fn>
void with_symmetry(const std::string& sym, Fn&& fn) {
    if (sym == "affine") {
        fn(lowbit::scheme<F, symmetry::affine>{});
    } else if (sym == "symmetric") {
        fn(lowbit::scheme<F, symmetry::symmetric>{});
    } else if (sym == "symmetric_narrow") {
        if constexpr (F::is_signed) {
            fn(lowbit::scheme<F, symmetry::symmetric_narrow>{});
        } else {
            throw std::runtime_error("symmetric_narrow needs a signed format");
        }
    } else {
        throw std::runtime_error("unknown symmetry '" + sym + "'");
    }
}

/// Calls fn(scheme<Format, Sym>{}) for the format and symmetry named in the data.
template <class Fn>
void with_scheme(const std::string& fmt, const std::string& sym, Fn&& fn) {
    if (fmt == "s8") {
        with_symmetry<lowbit::s8>(sym, fn);
    } else if (fmt == "u8") {
        with_symmetry<lowbit::u8>(sym, fn);
    } else if (fmt == "s4") {
        with_symmetry<lowbit::s4>(sym, fn);
    } else if (fmt == "u4") {
        with_symmetry<lowbit::u4>(sym, fn);
    } else {
        throw std::runtime_error("unknown format '" + fmt + "'");
    }
}

// ---------------------------------------------------------------------------------------
// storage helpers (4-bit formats are packed, see int4.hpp)

template <class F>
std::int32_t load_element(const std::vector<typename F::storage_type>& buf, std::size_t k) {
    if constexpr (F::is_packed) {
        const std::uint8_t n = lowbit::get_nibble(buf.data(), k);
        return F::is_signed ? static_cast<std::int32_t>(lowbit::sign_extend_s4(n)) : static_cast<std::int32_t>(n);
    } else {
        return static_cast<std::int32_t>(buf[k]);
    }
}

template <class F>
std::vector<typename F::storage_type> store_all(const std::vector<std::int32_t>& q) {
    std::vector<typename F::storage_type> buf(F::storage_size(q.size()));
    for (std::size_t k = 0; k < q.size(); ++k) {
        if constexpr (F::is_packed) {
            const int hi = k + 1 < q.size() ? q[k + 1] : 0;
            if (k % 2 == 0) buf[k / 2] = lowbit::pack_nibbles(q[k], hi);
        } else {
            buf[k] = static_cast<typename F::storage_type>(q[k]);
        }
    }
    return buf;
}

// Shape and parameters of a per-channel / per-group row:
//   gran axis g rank dims[rank] P scale[P] zero_point[P]
struct channel_layout {
    std::string gran;
    std::size_t axis = 0, group = 0;
    std::vector<std::size_t> dims;
    std::vector<float> scales;
    std::vector<std::int32_t> zero_points;

    static channel_layout read(row& r) {
        channel_layout l;
        l.gran = r.word();
        l.axis = r.count();
        l.group = r.count();
        const std::size_t rank = r.count();
        for (std::size_t i = 0; i < rank; ++i) l.dims.push_back(r.count());
        const std::size_t P = r.count();
        l.scales = r.reals(P);
        l.zero_points = r.i32s(P);
        return l;
    }
    lowbit::shape shape() const { return lowbit::shape(dims.data(), dims.size()); }
    lowbit::qparams_view view() const {
        return {lowbit::span<const float>(scales.data(), scales.size()),
                lowbit::span<const std::int32_t>(zero_points.data(), zero_points.size())};
    }
    template <class Scheme>
    Scheme apply(Scheme s) const {
        if (gran == "channel") return s.per_channel(axis);
        if (gran == "group") return s.per_group(axis, group);
        throw std::runtime_error("unknown granularity '" + gran + "'");
    }
    std::string describe() const {
        std::string d = gran + " axis=" + std::to_string(axis) + " g=" + std::to_string(group) + " shape=[";
        for (std::size_t i = 0; i < dims.size(); ++i) d += (i ? "," : "") + std::to_string(dims[i]);
        return d + "]";
    }
    // lowbit's layout, for naming the parameter of an element in messages.
    std::string param_of(const lowbit::quant_layout& lay, std::size_t k) const {
        const std::size_t p = lay.param_index(k);
        return " param " + std::to_string(p) + " (scale " + show(scales[p]) + ", zp " + std::to_string(zero_points[p]) +
               ")";
    }
};

}  // namespace

// =======================================================================================
// choose_qparams, profile torch: MinMaxObserver / PerChannelMinMaxObserver

TEST_CASE("golden: observer qparams per tensor (MinMaxObserver)", "[golden][qparams]") {
    const std::vector<row> rows = load("observer_per_tensor.txt");
    REQUIRE(rows.size() > 2000);
    report rep;
    std::size_t default_eps_rows = 0, uninitialised_rows = 0;
    for (row r : rows) {
        const std::string fmt = r.word(), sym = r.word();
        const bool custom = r.flag(), reduce = r.flag();
        const std::int32_t quant_min = r.i32(), quant_max = r.i32();
        const float eps = r.real(), mn = r.real(), mx = r.real();
        const std::int32_t eff_qmin = r.i32(), eff_qmax = r.i32();
        const float scale = r.real();
        const std::int32_t zp = r.i32();
        r.finish();
        if (eps == lowbit::default_eps) ++default_eps_rows;
        if (mn > mx) ++uninitialised_rows;
        const std::string ctx = r.where() + ": " + fmt + " " + sym + (custom ? " custom range " : " range ") +
                                std::to_string(quant_min) + ".." + std::to_string(quant_max) +
                                (reduce ? " reduce_range" : "") + " eps=" + show(eps) + " min=" + show(mn) +
                                " max=" + show(mx);
        with_scheme(fmt, sym, [&](auto s0) {
            auto s = s0;
            if (custom) s = s.with_range(quant_min, quant_max);
            s = s.with_reduce_range(reduce).with_eps(eps);
            rep.same_int(ctx, "effective quant_min", eff_qmin, s.qmin());
            rep.same_int(ctx, "effective quant_max", eff_qmax, s.qmax());
            attempt(rep, ctx, [&] {
                const lowbit::qparams qp = lowbit::choose_qparams(s, mn, mx).value();
                rep.same_float(ctx, "scale", scale, qp.scale);
                rep.same_int(ctx, "zero_point", zp, qp.zero_point);
            });
        });
    }
    CHECK(default_eps_rows > 1000);
    CHECK(uninitialised_rows > 40);
    rep.finish(3 * 2000);
}

TEST_CASE("golden: observer qparams per channel (PerChannelMinMaxObserver)", "[golden][qparams]") {
    const std::vector<row> rows = load("observer_per_channel.txt");
    REQUIRE(rows.size() > 80);
    report rep;
    for (row r : rows) {
        const std::string fmt = r.word(), sym = r.word();
        const bool custom = r.flag(), reduce = r.flag();
        const std::int32_t quant_min = r.i32(), quant_max = r.i32();
        const float eps = r.real();
        const std::size_t C = r.count();
        const std::vector<float> mins = r.reals(C), maxs = r.reals(C);
        const std::int32_t eff_qmin = r.i32(), eff_qmax = r.i32();
        const std::vector<float> scales = r.reals(C);
        const std::vector<std::int32_t> zps = r.i32s(C);
        r.finish();
        const std::string ctx = r.where() + ": " + fmt + " " + sym + (custom ? " custom range " : " range ") +
                                std::to_string(quant_min) + ".." + std::to_string(quant_max) +
                                (reduce ? " reduce_range" : "") + " eps=" + show(eps);
        with_scheme(fmt, sym, [&](auto s0) {
            auto s = s0;
            if (custom) s = s.with_range(quant_min, quant_max);
            s = s.with_reduce_range(reduce).with_eps(eps);
            rep.same_int(ctx, "effective quant_min", eff_qmin, s.qmin());
            rep.same_int(ctx, "effective quant_max", eff_qmax, s.qmax());
            std::vector<float> got_scales(C);
            std::vector<std::int32_t> got_zps(C);
            attempt(rep, ctx, [&] {
                lowbit::choose_qparams(s, lowbit::span<const float>(mins.data(), C),
                                       lowbit::span<const float>(maxs.data(), C), lowbit::span<float>(got_scales),
                                       lowbit::span<std::int32_t>(got_zps));
                for (std::size_t c = 0; c < C; ++c) {
                    const std::string e = ctx + " channel " + std::to_string(c) + " min=" + show(mins[c]) +
                                          " max=" + show(maxs[c]);
                    rep.same_float(e, "scale", scales[c], got_scales[c]);
                    rep.same_int(e, "zero_point", zps[c], got_zps[c]);
                }
            });
        });
    }
    rep.finish(80 * 8 * 2);
}

// =======================================================================================
// profile torch_fused: torch.fused_moving_avg_obs_fake_quant on a first batch

TEST_CASE("golden: fused_moving_avg_obs_fake_quant (profile torch_fused)", "[golden][qparams][fused]") {
    const std::vector<row> rows = load("fused_obs_fake_quant.txt");
    REQUIRE(rows.size() > 300);
    report rep;
    for (row r : rows) {
        const std::string fmt = r.word(), sym = r.word();
        const bool custom = r.flag();
        const std::int32_t quant_min = r.i32(), quant_max = r.i32();
        const std::size_t n = r.count();
        const std::vector<float> x = r.reals(n);
        const float rmin = r.real(), rmax = r.real(), scale = r.real();
        const std::int32_t zp = r.i32();
        const std::vector<float> y = r.reals(n);
        r.finish();
        REQUIRE(n > 0);
        float mn = x[0], mx = x[0];
        for (float v : x) {
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
        const std::string ctx = r.where() + ": " + fmt + " " + sym + " quant range " + std::to_string(quant_min) +
                                ".." + std::to_string(quant_max) + " batch min=" + show(rmin) + " max=" + show(rmax);
        // The batch min / max is not lowbit's computation; which zero torch's aminmax returns
        // for a batch holding both 0.0 and -0.0 depends on its reduction order, so compare
        // values here and give lowbit torch's exact running_min / running_max below.
        rep.same_int(ctx, "running_min == batch min", 1, rmin == mn ? 1 : 0);
        rep.same_int(ctx, "running_max == batch max", 1, rmax == mx ? 1 : 0);
        with_scheme(fmt, sym, [&](auto s0) {
            auto s = s0.with_profile(lowbit::profile::torch_fused);
            if (custom) s = s.with_range(quant_min, quant_max);
            rep.same_int(ctx, "quant_min", quant_min, s.qmin());
            rep.same_int(ctx, "quant_max", quant_max, s.qmax());
            attempt(rep, ctx, [&] {
                const lowbit::qparams qp = lowbit::choose_qparams(s, rmin, rmax).value();
                rep.same_float(ctx, "scale", scale, qp.scale);
                rep.same_int(ctx, "zero_point", zp, qp.zero_point);
            });
            // fake-quant output with torch's qparams
            std::vector<float> got(n);
            attempt(rep, ctx, [&] {
                lowbit::ref::fake_quantize(s, lowbit::qparams{scale, zp}, x, got);
                for (std::size_t k = 0; k < n; ++k)
                    rep.same_float(ctx + " " + element("x", k, x[k]), "y", y[k], got[k]);
            });
        });
    }
    rep.finish(300 * 10);
}

// =======================================================================================
// quantize / dequantize, profile torch

TEST_CASE("golden: quantize / dequantize per tensor (torch.quantize_per_tensor)", "[golden][quantize]") {
    const std::vector<row> rows = load("quantize_per_tensor.txt");
    REQUIRE(rows.size() > 60);
    report rep;
    std::size_t packed_rows = 0;
    for (row r : rows) {
        const std::string fmt = r.word();
        const float scale = r.real();
        const std::int32_t zp = r.i32();
        const std::size_t n = r.count();
        const std::vector<float> x = r.reals(n);
        const std::vector<std::int32_t> q = r.i32s(n);
        const std::vector<float> dq = r.reals(n);
        const std::size_t nbytes = r.count();
        const std::vector<std::int32_t> packed = r.i32s(nbytes);
        r.finish();
        const std::string ctx = r.where() + ": " + fmt + " scale=" + show(scale) + " zp=" + std::to_string(zp);
        with_scheme(fmt, "affine", [&](auto s) {
            using S = decltype(s);
            using F = typename S::format;
            std::vector<typename S::storage_type> got(F::storage_size(n));
            attempt(rep, ctx, [&] {
                lowbit::ref::quantize(s, lowbit::qparams{scale, zp}, x, got);
                for (std::size_t k = 0; k < n; ++k)
                    rep.same_int(ctx + " " + element("x", k, x[k]), "q", q[k], load_element<F>(got, k));
                if (nbytes > 0) {  // torch.quint4x2's packed bytes
                    ++packed_rows;
                    rep.same_int(ctx, "packed byte count", static_cast<long long>(nbytes),
                                 static_cast<long long>(got.size()));
                    for (std::size_t b = 0; b < nbytes && b < got.size(); ++b)
                        rep.same_int(ctx + " byte " + std::to_string(b), "packed quint4x2 byte", packed[b], got[b]);
                }
            });
            const std::vector<typename S::storage_type> tq = store_all<F>(q);
            std::vector<float> got_dq(n);
            attempt(rep, ctx, [&] {
                lowbit::ref::dequantize(s, lowbit::qparams{scale, zp}, tq, got_dq);
                for (std::size_t k = 0; k < n; ++k)
                    rep.same_float(ctx + " q[" + std::to_string(k) + "]=" + std::to_string(q[k]), "dequantized", dq[k],
                                   got_dq[k]);
            });
        });
    }
    CHECK(packed_rows > 10);
    rep.finish(60 * 2 * 60);
}

TEST_CASE("golden: quantize / dequantize per channel and per group (torch.quantize_per_channel)",
          "[golden][quantize][per_channel]") {
    const std::vector<row> rows = load("quantize_per_channel.txt");
    REQUIRE(rows.size() > 50);
    report rep;
    std::size_t group_rows = 0;
    for (row r : rows) {
        const std::string fmt = r.word();
        const channel_layout l = channel_layout::read(r);
        const std::size_t n = r.count();
        const std::vector<float> x = r.reals(n);
        const std::vector<std::int32_t> q = r.i32s(n);
        const std::vector<float> dq = r.reals(n);
        r.finish();
        if (l.gran == "group") ++group_rows;
        const std::string ctx = r.where() + ": " + fmt + " " + l.describe();
        with_scheme(fmt, "affine", [&](auto s0) {
            using S = decltype(s0);
            using F = typename S::format;
            const S s = l.apply(s0);
            const lowbit::quant_layout lay = lowbit::make_layout(s, l.shape()).value();
            std::vector<typename S::storage_type> got(F::storage_size(n));
            attempt(rep, ctx, [&] {
                lowbit::ref::quantize(s, l.shape(), l.view(), x, got);
                for (std::size_t k = 0; k < n; ++k)
                    rep.same_int(ctx + " " + element("x", k, x[k]) + l.param_of(lay, k), "q", q[k],
                                 load_element<F>(got, k));
            });
            const std::vector<typename S::storage_type> tq = store_all<F>(q);
            std::vector<float> got_dq(n);
            attempt(rep, ctx, [&] {
                lowbit::ref::dequantize(s, l.shape(), l.view(), tq, got_dq);
                for (std::size_t k = 0; k < n; ++k)
                    rep.same_float(ctx + " q[" + std::to_string(k) + "]=" + std::to_string(q[k]) + l.param_of(lay, k),
                                   "dequantized", dq[k], got_dq[k]);
            });
        });
    }
    CHECK(group_rows > 20);
    rep.finish(50 * 2 * 20);
}

// =======================================================================================
// fake-quantize forward and straight-through backward, profile torch

TEST_CASE("golden: fake_quantize per tensor, forward and backward", "[golden][fake_quantize]") {
    const std::vector<row> rows = load("fake_quant_per_tensor.txt");
    REQUIRE(rows.size() > 35);
    report rep;
    std::size_t masked_out = 0;
    for (row r : rows) {
        const std::string fmt = r.word();
        const bool custom = r.flag();
        const std::int32_t quant_min = r.i32(), quant_max = r.i32();
        const float scale = r.real();
        const std::int32_t zp = r.i32();
        const std::size_t n = r.count();
        const std::vector<float> x = r.reals(n), y = r.reals(n), dy = r.reals(n), dx = r.reals(n);
        const std::vector<std::int32_t> mask = r.i32s(n);
        r.finish();
        for (std::int32_t m : mask) masked_out += m == 0 ? 1u : 0u;
        const std::string ctx = r.where() + ": " + fmt + " quant range " + std::to_string(quant_min) + ".." +
                                std::to_string(quant_max) + " scale=" + show(scale) + " zp=" + std::to_string(zp);
        with_scheme(fmt, "affine", [&](auto s0) {
            auto s = s0;
            if (custom) s = s.with_range(quant_min, quant_max);
            rep.same_int(ctx, "quant_min", quant_min, s.qmin());
            rep.same_int(ctx, "quant_max", quant_max, s.qmax());
            const lowbit::qparams qp{scale, zp};
            std::vector<float> got_y(n), got_dx(n);
            std::vector<std::uint8_t> got_mask(n);
            attempt(rep, ctx, [&] {
                lowbit::ref::fake_quantize(s, qp, x, got_y, got_mask);
                lowbit::ref::fake_quantize_backward(s, qp, x, dy, got_dx);
                for (std::size_t k = 0; k < n; ++k) {
                    const std::string e = ctx + " " + element("x", k, x[k]) + " " + element("dy", k, dy[k]);
                    rep.same_float(e, "y", y[k], got_y[k]);
                    rep.same_int(e, "mask", mask[k], got_mask[k]);
                    rep.same_float(e, "dx", dx[k], got_dx[k]);
                }
            });
        });
    }
    CHECK(masked_out > 500);
    rep.finish(35 * 3 * 60);
}

TEST_CASE("golden: fake_quantize per channel and per group, forward and backward",
          "[golden][fake_quantize][per_channel]") {
    const std::vector<row> rows = load("fake_quant_per_channel.txt");
    REQUIRE(rows.size() > 40);
    report rep;
    for (row r : rows) {
        const std::string fmt = r.word();
        const bool custom = r.flag();
        const std::int32_t quant_min = r.i32(), quant_max = r.i32();
        const channel_layout l = channel_layout::read(r);
        const std::size_t n = r.count();
        const std::vector<float> x = r.reals(n), y = r.reals(n), dy = r.reals(n), dx = r.reals(n);
        const std::vector<std::int32_t> mask = r.i32s(n);
        r.finish();
        const std::string ctx = r.where() + ": " + fmt + " quant range " + std::to_string(quant_min) + ".." +
                                std::to_string(quant_max) + " " + l.describe();
        with_scheme(fmt, "affine", [&](auto s0) {
            auto s = s0;
            if (custom) s = s.with_range(quant_min, quant_max);
            s = l.apply(s);
            const lowbit::quant_layout lay = lowbit::make_layout(s, l.shape()).value();
            std::vector<float> got_y(n), got_dx(n);
            std::vector<std::uint8_t> got_mask(n);
            attempt(rep, ctx, [&] {
                lowbit::ref::fake_quantize(s, l.shape(), l.view(), x, got_y, got_mask);
                lowbit::ref::fake_quantize_backward(s, l.shape(), l.view(), x, dy, got_dx);
                for (std::size_t k = 0; k < n; ++k) {
                    const std::string e =
                        ctx + " " + element("x", k, x[k]) + " " + element("dy", k, dy[k]) + l.param_of(lay, k);
                    rep.same_float(e, "y", y[k], got_y[k]);
                    rep.same_int(e, "mask", mask[k], got_mask[k]);
                    rep.same_float(e, "dx", dx[k], got_dx[k]);
                }
            });
        });
    }
    rep.finish(40 * 3 * 20);
}

// =======================================================================================
// profile tflite: an independent formula (not torch), see the data file's header

TEST_CASE("golden: tflite profile quantize (reference formula)", "[golden][quantize][tflite]") {
    const std::vector<row> rows = load("tflite_quantize.txt");
    REQUIRE(rows.size() > 20);
    report rep;
    for (row r : rows) {
        const std::string fmt = r.word(), sym = r.word();
        const bool custom = r.flag();
        const std::int32_t qmin = r.i32(), qmax = r.i32();
        const float scale = r.real();
        const std::int32_t zp = r.i32();
        const std::size_t n = r.count();
        const std::vector<float> x = r.reals(n);
        const std::vector<std::int32_t> q = r.i32s(n);
        r.finish();
        const std::string ctx = r.where() + ": " + fmt + " " + sym + " range " + std::to_string(qmin) + ".." +
                                std::to_string(qmax) + " scale=" + show(scale) + " zp=" + std::to_string(zp);
        with_scheme(fmt, sym, [&](auto s0) {
            using S = decltype(s0);
            using F = typename S::format;
            auto s = s0.with_profile(lowbit::profile::tflite);
            if (custom) s = s.with_range(qmin, qmax);
            rep.same_int(ctx, "qmin", qmin, s.qmin());
            rep.same_int(ctx, "qmax", qmax, s.qmax());
            std::vector<typename S::storage_type> got(F::storage_size(n));
            attempt(rep, ctx, [&] {
                lowbit::ref::quantize(s, lowbit::qparams{scale, zp}, x, got);
                for (std::size_t k = 0; k < n; ++k)
                    rep.same_int(ctx + " " + element("x", k, x[k]), "q", q[k], load_element<F>(got, k));
            });
        });
    }
    rep.finish(20 * 60);
}
