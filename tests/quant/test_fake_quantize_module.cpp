// lowbit/quant/fake_quantize.hpp: the FakeQuantize module and the fused op against torch 1.13
// (tests/golden/data/qat_fake_quantize.txt, qat_fused.txt from generate_qat.py), bit for bit,
// and against lowbit itself (fused == observer then fake-quant; QAT export == PTQ).
#include "qat_golden.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <lowbit/quant/fake_quantize.hpp>

namespace {

using lowbit::symmetry;
using qat_golden::report;
using qat_golden::row;

template <class Fn>
void with_format(const std::string& fmt, const std::string& sym, Fn&& fn) {
    const auto go = [&](auto f) {
        using F = decltype(f);
        if (sym == "affine")
            fn(lowbit::scheme<F, symmetry::affine>{});
        else if (sym == "symmetric")
            fn(lowbit::scheme<F, symmetry::symmetric>{});
        else
            FAIL("unknown symmetry " << sym);
    };
    if (fmt == "s8") go(lowbit::s8{});
    else if (fmt == "u8") go(lowbit::u8{});
    else if (fmt == "s4") go(lowbit::s4{});
    else if (fmt == "u4") go(lowbit::u4{});
    else FAIL("unknown format " << fmt);
}

std::vector<float> dy_times_mask(const std::vector<float>& dy, const std::vector<std::uint8_t>& mask) {
    std::vector<float> out(dy.size());
    for (std::size_t k = 0; k < dy.size(); ++k) out[k] = dy[k] * (mask[k] ? 1.0f : 0.0f);
    return out;
}

// One FakeQuantize sequence: module `fq`, the row's remaining tokens hold the steps.
template <class Module>
void run_fake_quantize_steps(report& rep, row& r, Module& fq, const lowbit::shape& shp, std::size_t numel,
                             std::size_t channels) {
    const std::size_t steps = r.count();
    for (std::size_t st = 0; st < steps; ++st) {
        const bool obs_on = r.integer() != 0, fq_on = r.integer() != 0;
        const std::vector<float> x = r.reals(numel), dy = r.reals(numel), y = r.reals(numel), dx = r.reals(numel);
        const std::size_t nq = r.count();
        const std::vector<float> scales = r.reals(nq);
        const std::vector<std::int32_t> zps = r.i32s(nq);
        const std::string ctx = r.where() + " step " + std::to_string(st) + " observer " + std::to_string(obs_on) +
                                " fake_quant " + std::to_string(fq_on);
        fq.enable_observer(obs_on);
        fq.enable_fake_quant(fq_on);
        std::vector<float> got(numel), g1(numel), g2(numel);
        std::vector<std::uint8_t> mask(numel, 7);
        REQUIRE(fq.forward(shp, x, got, mask).ok());
        rep.floats(ctx, "y", y, got);
        REQUIRE(fq.backward(shp, x, dy, g1).ok());          // mask recomputed from x
        rep.floats(ctx, "dx (recomputed mask)", dx, g1);
        REQUIRE(fq.backward_masked(mask, dy, g2).ok());     // mask kept by the forward
        rep.floats(ctx, "dx (kept mask)", dx, g2);
        rep.floats(ctx, "dy * mask", dx, dy_times_mask(dy, mask));
        // qparams after the step (torch's per-channel module holds a 1-entry scale until it observes)
        const auto qp = fq.qparams();
        if constexpr (std::is_same<decltype(qp), const lowbit::qparams>::value) {
            REQUIRE(nq == 1);
            rep.same_float(ctx, "scale", scales[0], qp.scale);
            rep.same_int(ctx, "zero_point", zps[0], qp.zero_point);
        } else {
            REQUIRE(qp.scales.size() == channels);
            REQUIRE((nq == channels || nq == 1));
            for (std::size_t c = 0; c < channels; ++c) {
                rep.same_float(ctx + " channel " + std::to_string(c), "scale", scales[nq == 1 ? 0 : c],
                               qp.scales[c]);
                rep.same_int(ctx + " channel " + std::to_string(c), "zero_point", zps[nq == 1 ? 0 : c], qp.zero_points[c]);
            }
        }
    }
}

}  // namespace

TEST_CASE("golden: FakeQuantize module sequences (observer / fake-quant switches, per tensor and channel)",
          "[quant][fake_quantize][golden]") {
    std::vector<row> rows = qat_golden::load("qat_fake_quantize.txt");
    REQUIRE(rows.size() >= 100);
    report rep;
    std::size_t per_kind[4] = {};
    for (row& r : rows) {
        const std::string obs = r.word(), fmt = r.word(), sym = r.word();
        const bool custom = r.integer() != 0;
        const auto qmin = static_cast<std::int32_t>(r.integer()), qmax = static_cast<std::int32_t>(r.integer());
        const float c = r.real();
        const std::size_t axis = r.count();
        std::size_t numel = 0;
        const lowbit::shape shp = r.dims(numel);
        with_format(fmt, sym, [&](auto s0) {
            using S = decltype(s0);
            // torch's FakeQuantize hands quant_min / quant_max to its observer, which then counts
            // as a custom range (u8 symmetric: zero-point 127, not 128), whatever `custom` says
            (void)custom;
            const S s = s0.with_range(qmin, qmax);
            REQUIRE(s.qmin() == qmin);
            REQUIRE(s.qmax() == qmax);
            if (obs == "minmax" || obs == "moving") {
                if (obs == "minmax") {
                    lowbit::fake_quantize<S, lowbit::minmax_observer<S>> fq{lowbit::minmax_observer<S>(s)};
                    run_fake_quantize_steps(rep, r, fq, shp, numel, 1);
                    ++per_kind[0];
                } else {
                    lowbit::fake_quantize<S> fq{lowbit::moving_average_minmax_observer<S>(s, c)};
                    run_fake_quantize_steps(rep, r, fq, shp, numel, 1);
                    ++per_kind[1];
                }
            } else {
                const S sc = s.per_channel(axis);
                const std::size_t C = shp[axis];
                std::vector<float> state(2 * C), scales(C);
                std::vector<std::int32_t> zps(C);
                if (obs == "perchannel") {
                    using O = lowbit::per_channel_minmax_observer<S>;
                    lowbit::fake_quantize<S, O> fq(O(sc, C, state), scales, zps);
                    run_fake_quantize_steps(rep, r, fq, shp, numel, C);
                    ++per_kind[2];
                } else {
                    using O = lowbit::per_channel_moving_average_minmax_observer<S>;
                    lowbit::fake_quantize<S, O> fq(O(sc, C, state, c), scales, zps);
                    run_fake_quantize_steps(rep, r, fq, shp, numel, C);
                    ++per_kind[3];
                }
            }
        });
        REQUIRE(r.done());
    }
    for (std::size_t k : per_kind) CHECK(k >= 10);
    rep.finish(50000);
}

TEST_CASE("golden: fused_moving_avg_obs_fake_quant sequences (per tensor and per row, switches, c != 1)",
          "[quant][fused][golden]") {
    std::vector<row> rows = qat_golden::load("qat_fused.txt");
    REQUIRE(rows.size() >= 60);
    report rep;
    for (row& r : rows) {
        const std::string fmt = r.word(), sym = r.word();
        const bool custom = r.integer() != 0;
        const auto qmin = static_cast<std::int32_t>(r.integer()), qmax = static_cast<std::int32_t>(r.integer());
        const bool per_row = r.integer() != 0;
        const float c = r.real();
        std::size_t numel = 0;
        const lowbit::shape shp = r.dims(numel);
        const std::size_t steps = r.count();
        with_format(fmt, sym, [&](auto s0) {
            auto s = s0.with_profile(lowbit::profile::torch_fused);
            if (custom) s = s.with_range(qmin, qmax);
            const std::size_t C = per_row ? shp[0] : 1;
            lowbit::fused_fake_quantize_state st;
            std::vector<float> rmin(C), rmax(C), sc(C);
            std::vector<std::int32_t> zp(C);
            const lowbit::fused_fake_quantize_channels ch{rmin, rmax, sc, zp};
            ch.reset();
            for (std::size_t k = 0; k < steps; ++k) {
                lowbit::fused_options opt;
                opt.averaging_constant = c;
                opt.observer_on = r.integer() != 0;
                opt.fake_quant_on = r.integer() != 0;
                const std::vector<float> x = r.reals(numel), dy = r.reals(numel), y = r.reals(numel),
                                         dx = r.reals(numel);
                REQUIRE(r.count() == C);
                const std::vector<float> e_rmin = r.reals(C), e_rmax = r.reals(C), e_sc = r.reals(C);
                const std::vector<std::int32_t> e_zp = r.i32s(C);
                const std::string ctx = r.where() + " step " + std::to_string(k) + " observer_on " +
                                        std::to_string(opt.observer_on) + " fake_quant_on " +
                                        std::to_string(opt.fake_quant_on);
                std::vector<float> got(numel);
                std::vector<std::uint8_t> mask(numel, 7);
                if (per_row) {
                    REQUIRE(lowbit::fused_moving_avg_obs_fake_quant(s.per_channel(0), shp, x, got, mask, ch, opt).ok());
                    rep.floats(ctx, "running_min", e_rmin, rmin);
                    rep.floats(ctx, "running_max", e_rmax, rmax);
                    rep.floats(ctx, "scale", e_sc, sc);
                    for (std::size_t i = 0; i < C; ++i) rep.same_int(ctx, "zero_point", e_zp[i], zp[i]);
                } else {
                    REQUIRE(lowbit::fused_moving_avg_obs_fake_quant(s, x, got, mask, st, opt).ok());
                    rep.same_float(ctx, "running_min", e_rmin[0], st.running_min);
                    rep.same_float(ctx, "running_max", e_rmax[0], st.running_max);
                    rep.same_float(ctx, "scale", e_sc[0], st.qp.scale);
                    rep.same_int(ctx, "zero_point", e_zp[0], st.qp.zero_point);
                }
                rep.floats(ctx, "y", y, got);
                rep.floats(ctx, "dx = dy * mask", dx, dy_times_mask(dy, mask));
            }
        });
        REQUIRE(r.done());
    }
    rep.finish(15000);
}

namespace {

std::vector<float> random_batch(std::mt19937& g, std::size_t n, float scale, float shift) {
    std::normal_distribution<float> d(shift, scale);
    std::vector<float> x(n);
    for (float& v : x) v = d(g);
    return x;
}

}  // namespace

TEST_CASE("fused op == moving-average observer then fake-quant, bit for bit", "[quant][fused]") {
    std::mt19937 g(42);
    const float cs[] = {0.01f, 0.3f, 1.0f};
    for (float c : cs) {
        // per tensor, affine u8 and symmetric s8, profile torch_fused
        const auto s = lowbit::scheme<lowbit::u8>{}.with_profile(lowbit::profile::torch_fused);
        const auto s2 = lowbit::scheme<lowbit::s8, symmetry::symmetric>{}.with_profile(lowbit::profile::torch_fused);
        lowbit::fused_fake_quantize_state st, st2;
        lowbit::moving_average_minmax_observer<decltype(s)> obs(s, c);
        lowbit::moving_average_minmax_observer<decltype(s2)> obs2(s2, c);
        for (int step = 0; step < 6; ++step) {
            const std::size_t n = 1 + static_cast<std::size_t>(step) * 37;
            const std::vector<float> x = random_batch(g, n, 0.5f + static_cast<float>(step), 0.3f * static_cast<float>(step));
            std::vector<float> y(n), y_ref(n), y2(n), y2_ref(n);
            std::vector<std::uint8_t> m(n), m_ref(n);
            lowbit::fused_options opt;
            opt.averaging_constant = c;
            REQUIRE(lowbit::fused_moving_avg_obs_fake_quant(s, x, y, m, st, opt).ok());
            REQUIRE(obs.observe(x).ok());
            const lowbit::qparams qp = *obs.qparams();
            REQUIRE(lowbit::kernels::fake_quantize(s, qp, x, y_ref, m_ref).ok());
            CHECK(qat_golden::bits(st.running_min) == qat_golden::bits(obs.stats().min));
            CHECK(qat_golden::bits(st.running_max) == qat_golden::bits(obs.stats().max));
            CHECK(st.qp == qp);
            for (std::size_t k = 0; k < n; ++k) {
                CHECK(qat_golden::bits(y[k]) == qat_golden::bits(y_ref[k]));
                CHECK(m[k] == m_ref[k]);
            }
            REQUIRE(lowbit::fused_moving_avg_obs_fake_quant(s2, x, y2, {}, st2, opt).ok());
            REQUIRE(obs2.observe(x).ok());
            REQUIRE(lowbit::kernels::fake_quantize(s2, *obs2.qparams(), x, y2_ref).ok());
            CHECK(st2.qp == *obs2.qparams());
            for (std::size_t k = 0; k < n; ++k) CHECK(qat_golden::bits(y2[k]) == qat_golden::bits(y2_ref[k]));
        }
        // per channel along axis 1 of [3, 5, 4] (torch supports axis 0 only; lowbit any axis)
        const auto pc = lowbit::scheme<lowbit::s4, symmetry::affine>{}.with_profile(lowbit::profile::torch_fused).per_channel(1);
        const lowbit::shape shp{3, 5, 4};
        std::vector<float> rmin(5), rmax(5), sc(5), state(10), sc_ref(5);
        std::vector<std::int32_t> zp(5), zp_ref(5);
        const lowbit::fused_fake_quantize_channels ch{rmin, rmax, sc, zp};
        ch.reset();
        lowbit::per_channel_moving_average_minmax_observer<decltype(pc)> pobs(pc, 5, state, c);
        for (int step = 0; step < 4; ++step) {
            const std::vector<float> x = random_batch(g, 60, 1.0f + static_cast<float>(step), -0.2f);
            std::vector<float> y(60), y_ref(60);
            lowbit::fused_options opt;
            opt.averaging_constant = c;
            REQUIRE(lowbit::fused_moving_avg_obs_fake_quant(pc, shp, x, y, {}, ch, opt).ok());
            REQUIRE(pobs.observe(shp, x).ok());
            REQUIRE(pobs.qparams(sc_ref, zp_ref).ok());
            REQUIRE(lowbit::kernels::fake_quantize(pc, shp, {sc_ref, zp_ref}, x, y_ref).ok());
            for (std::size_t i = 0; i < 5; ++i) {
                CHECK(qat_golden::bits(rmin[i]) == qat_golden::bits(pobs.mins()[i]));
                CHECK(qat_golden::bits(rmax[i]) == qat_golden::bits(pobs.maxs()[i]));
                CHECK(qat_golden::bits(sc[i]) == qat_golden::bits(sc_ref[i]));
                CHECK(zp[i] == zp_ref[i]);
            }
            for (std::size_t k = 0; k < 60; ++k) CHECK(qat_golden::bits(y[k]) == qat_golden::bits(y_ref[k]));
        }
    }
}

TEST_CASE("QAT export after freezing == PTQ with the saved observer state", "[quant][fake_quantize]") {
    std::mt19937 g(7);
    SECTION("per tensor, moving average") {
        using S = lowbit::scheme<lowbit::u8>;
        lowbit::fake_quantize<S> fq{lowbit::moving_average_minmax_observer<S>(S{}, 0.1f)};
        for (int step = 0; step < 5; ++step) {
            const std::vector<float> x = random_batch(g, 50, 1.0f + 0.1f * static_cast<float>(step), 0.4f);
            std::vector<float> y(50);
            REQUIRE(fq.forward(x, y).ok());
        }
        fq.freeze();
        const lowbit::qparams frozen = fq.qparams();
        // more training steps with the observer frozen: the qparams stay
        for (int step = 0; step < 3; ++step) {
            const std::vector<float> x = random_batch(g, 50, 10.0f, -3.0f);
            std::vector<float> y(50);
            REQUIRE(fq.forward(x, y).ok());
        }
        CHECK(fq.qparams() == frozen);
        std::vector<std::uint8_t> saved(fq.observer().state_size());
        REQUIRE(fq.observer().save(saved).ok());
        lowbit::moving_average_minmax_observer<S> ptq(S{}, 0.1f);
        REQUIRE(ptq.load(saved).ok());
        const lowbit::qparams exported = *ptq.qparams();
        CHECK(qat_golden::bits(exported.scale) == qat_golden::bits(frozen.scale));
        CHECK(exported.zero_point == frozen.zero_point);
        // a different observer state would not have matched: the test can fail
        lowbit::moving_average_minmax_observer<S> other(S{}, 0.1f);
        const std::vector<float> z = random_batch(g, 50, 3.0f, 0.0f);
        REQUIRE(other.observe(z).ok());
        CHECK(*other.qparams() != frozen);
        // update_qparams from a loaded state gives the same numbers too
        lowbit::fake_quantize<S> fresh{lowbit::moving_average_minmax_observer<S>(S{}, 0.1f)};
        REQUIRE(fresh.observer().load(saved).ok());
        REQUIRE(fresh.update_qparams().ok());
        CHECK(fresh.qparams() == frozen);
    }
    SECTION("per channel weights, s8 symmetric") {
        using S = lowbit::scheme<lowbit::s8, symmetry::symmetric>;
        using O = lowbit::per_channel_minmax_observer<S>;
        const S s = S{}.per_channel(0);
        const lowbit::shape shp{4, 16};
        std::vector<float> state(8), sc(4), ptq_state(8), ptq_sc(4);
        std::vector<std::int32_t> zp(4), ptq_zp(4);
        lowbit::fake_quantize<S, O> fq(O(s, 4, state), sc, zp);
        std::vector<float> w = random_batch(g, 64, 0.2f, 0.0f);
        for (int step = 0; step < 4; ++step) {
            std::vector<float> y(64);
            REQUIRE(fq.forward(shp, w, y).ok());
            for (float& v : w) v *= 0.97f;  // "training" moves the weights
        }
        fq.freeze();
        std::vector<float> y(64);
        REQUIRE(fq.forward(shp, w, y).ok());
        std::vector<std::uint8_t> saved(fq.observer().state_size());
        REQUIRE(fq.observer().save(saved).ok());
        O ptq(s, 4, ptq_state);
        REQUIRE(ptq.load(saved).ok());
        REQUIRE(ptq.qparams(ptq_sc, ptq_zp).ok());
        for (std::size_t c = 0; c < 4; ++c) {
            CHECK(qat_golden::bits(ptq_sc[c]) == qat_golden::bits(fq.qparams().scales[c]));
            CHECK(ptq_zp[c] == fq.qparams().zero_points[c]);
        }
        // and the frozen module's output is the PTQ fake-quant of the final weights
        std::vector<float> y_ptq(64);
        REQUIRE(lowbit::ref::fake_quantize(s, shp, {ptq_sc, ptq_zp}, w, y_ptq).ok());
        for (std::size_t k = 0; k < 64; ++k) CHECK(qat_golden::bits(y[k]) == qat_golden::bits(y_ptq[k]));
    }
}

TEST_CASE("fake_quantize module: switches, in place, set_qparams, errors", "[quant][fake_quantize]") {
    using S = lowbit::scheme<lowbit::u4>;
    lowbit::fake_quantize<S, lowbit::minmax_observer<S>> fq;
    CHECK(fq.observer_enabled());
    CHECK(fq.fake_quant_enabled());
    CHECK(fq.qparams() == lowbit::qparams{});
    std::vector<float> x{-1.0f, 0.0f, 0.26f, 3.0f}, y(4), dx(4);
    const std::vector<float> dy{1.0f, -2.0f, 3.0f, -4.0f};
    std::vector<std::uint8_t> mask(4);
    SECTION("fake-quant disabled: identity forward, all-ones mask, identity backward") {
        fq.disable_fake_quant();
        REQUIRE(fq.forward(x, y, mask).ok());
        CHECK(y == x);
        CHECK(mask == std::vector<std::uint8_t>(4, 1));
        CHECK(fq.qparams().scale == 4.0f / 15.0f);  // the observer still ran
        REQUIRE(fq.backward(x, dy, dx).ok());
        CHECK(dx == dy);
        fq.enable_fake_quant();
        REQUIRE(fq.forward(x, y, mask).ok());
        CHECK(fq.last_forward_fake_quantized());
    }
    SECTION("in place: y aliases x") {
        std::vector<float> expect(4);
        lowbit::fake_quantize<S, lowbit::minmax_observer<S>> twin = fq;
        REQUIRE(twin.forward(x, expect).ok());
        REQUIRE(fq.forward(x, x).ok());
        CHECK(x == expect);
    }
    SECTION("non-finite data while observing is refused and changes nothing") {
        REQUIRE(fq.forward(x, y).ok());
        const lowbit::qparams before = fq.qparams();
        std::vector<float> bad{1.0f, std::numeric_limits<float>::quiet_NaN()};
        std::vector<float> yb(2, 5.0f);
        REQUIRE_THROWS_WITH(fq.forward(bad, yb), Catch::Contains("x[i] (index)") && Catch::Contains("= 1"));
        CHECK(fq.qparams() == before);
        CHECK(yb[0] == 5.0f);
        CHECK(fq.observer().stats().batches == 1);
        fq.disable_observer();  // frozen: fake-quant defines NaN itself
        REQUIRE(fq.forward(bad, yb, lowbit::span<std::uint8_t>(mask.data(), 2)).ok());
    }
    SECTION("size errors name the argument") {
        std::vector<float> y3(3);
        REQUIRE_THROWS_WITH(fq.forward(x, y3), Catch::Contains("y.size()"));
        std::vector<std::uint8_t> m3(3);
        REQUIRE_THROWS_WITH(fq.forward(x, y, m3), Catch::Contains("mask.size()"));
        REQUIRE_THROWS_WITH(fq.backward(x, dy, y3), Catch::Contains("dx.size()"));
        CHECK(fq.observer().stats().batches == 0);
    }
    SECTION("set_qparams is checked, then used") {
        REQUIRE_THROWS_WITH(fq.set_qparams({0.5f, 16}), Catch::Contains("zero_point"));
        REQUIRE_THROWS_WITH(fq.set_qparams({-1.0f, 0}), Catch::Contains("scale"));
        REQUIRE(fq.set_qparams({0.5f, 2}).ok());
        fq.freeze();
        REQUIRE(fq.forward(x, y, mask).ok());
        CHECK(y == std::vector<float>{-1.0f, 0.0f, 0.5f, 3.0f});
        CHECK(mask == std::vector<std::uint8_t>{1, 1, 1, 1});
        CHECK(fq.qparams() == lowbit::qparams{0.5f, 2});
    }
}

TEST_CASE("fused op: switches and errors", "[quant][fused]") {
    const auto s = lowbit::scheme<lowbit::u8>{}.with_profile(lowbit::profile::torch_fused);
    lowbit::fused_fake_quantize_state st;
    std::vector<float> x{-1.0f, 2.0f, 0.5f}, y(3);
    std::vector<std::uint8_t> m(3);
    lowbit::fused_options opt;
    opt.averaging_constant = 0.3f;
    opt.fake_quant_on = false;  // observer only: the range moves, the qparams do not (torch)
    REQUIRE(lowbit::fused_moving_avg_obs_fake_quant(s, x, y, m, st, opt).ok());
    CHECK(st.running_min == -1.0f);
    CHECK(st.running_max == 2.0f);
    CHECK(st.qp == lowbit::qparams{});
    CHECK(y == x);
    CHECK(m == std::vector<std::uint8_t>(3, 1));
    opt.observer_on = false;
    opt.fake_quant_on = true;  // qparams from the running range, without observing
    std::vector<float> x3{-3.0f, 6.0f, 1.5f};
    REQUIRE(lowbit::fused_moving_avg_obs_fake_quant(s, x3, y, m, st, opt).ok());
    CHECK(st.running_min == -1.0f);
    CHECK(st.qp == *lowbit::choose_qparams(s, -1.0f, 2.0f));
    CHECK(m == std::vector<std::uint8_t>{0, 0, 1});
    // errors: nothing changes
    const lowbit::fused_fake_quantize_state before = st;
    opt.observer_on = true;
    std::vector<float> bad{0.0f, std::numeric_limits<float>::infinity()};
    std::vector<float> yb(2);
    REQUIRE_THROWS_WITH(lowbit::fused_moving_avg_obs_fake_quant(s, bad, yb, {}, st, opt), Catch::Contains("x[i] (index)"));
    CHECK(st.running_max == before.running_max);
    opt.averaging_constant = 0.0f;
    REQUIRE_THROWS_WITH(lowbit::fused_moving_avg_obs_fake_quant(s, x, y, m, st, opt), Catch::Contains("averaging_constant"));
    opt.averaging_constant = 0.5f;
    lowbit::fused_fake_quantize_state half;
    half.running_max = 5.0f;  // half-set range
    REQUIRE_THROWS_WITH(lowbit::fused_moving_avg_obs_fake_quant(s, x, y, m, half, opt), Catch::Contains("running_min"));
    REQUIRE_THROWS_WITH(lowbit::fused_moving_avg_obs_fake_quant(s.per_channel(0), x, y, m, st, opt),
                        Catch::Contains("granularity"));
    std::vector<float> a(2), b(2), c(2);
    std::vector<std::int32_t> d(2);
    const lowbit::fused_fake_quantize_channels ch{a, b, c, d};
    ch.reset();
    REQUIRE_THROWS_WITH(lowbit::fused_moving_avg_obs_fake_quant(s.per_channel(0), lowbit::shape{3, 1}, x, y, m, ch, opt),
                        Catch::Contains("running_min.size()"));
}
