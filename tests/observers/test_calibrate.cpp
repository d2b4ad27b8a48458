// The calibration driver and the error diagnostics.
#include "lowbit_catch.hpp"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <lowbit/calibrate.hpp>
#include <lowbit/observers/minmax.hpp>
#include <lowbit/observers/per_channel_minmax.hpp>

TEST_CASE("calibrator drives named observers over batches", "[observers][calibrate]") {
    using S = lowbit::scheme<lowbit::u8>;
    const auto pc = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>{}.per_channel(1);
    lowbit::minmax_observer<S> act;
    std::vector<float> state(2 * 4);
    lowbit::per_channel_minmax_observer<decltype(pc)> w(pc, 4, state);
    lowbit::calibrator cal;
    cal.add("act", act);
    cal.add_per_channel("w", w);

    std::mt19937 gen(3);
    std::normal_distribution<float> d(0.5f, 1.0f);
    std::vector<std::vector<float>> acts(5, std::vector<float>(64)), ws(5, std::vector<float>(8));
    for (auto& b : acts) for (float& v : b) v = d(gen);
    for (auto& b : ws) for (float& v : b) v = d(gen);

    std::vector<std::size_t> progress;
    cal.run(
        5,
        [&](std::size_t b, lowbit::calibrator::sink& sink) {
            sink.observe("act", acts[b]);
            sink.observe("w", lowbit::shape{2, 4}, ws[b]);
        },
        [&](std::size_t done, std::size_t total) {
            CHECK(total == 5);
            progress.push_back(done);
        });
    CHECK(progress == std::vector<std::size_t>{1, 2, 3, 4, 5});

    // the same as driving the observers by hand
    lowbit::minmax_observer<S> ref_act;
    std::vector<float> ref_state(8);
    lowbit::per_channel_minmax_observer<decltype(pc)> ref_w(pc, 4, ref_state);
    for (std::size_t b = 0; b < 5; ++b) {
        REQUIRE(ref_act.observe(acts[b]).ok());
        REQUIRE(ref_w.observe(lowbit::shape{2, 4}, ws[b]).ok());
    }
    CHECK(cal.result("act").per_tensor() == *ref_act.qparams());
    CHECK(cal.result("act").stats.count == 5 * 64);
    std::vector<float> scales(4);
    std::vector<std::int32_t> zps(4);
    REQUIRE(ref_w.qparams(scales, zps).ok());
    CHECK(cal.result("w").scales == scales);
    CHECK(cal.result("w").zero_points == zps);
    CHECK_THROWS(cal.result("w").per_tensor());

    // diagnostics of the last batch equal measure_error on it
    lowbit::quant_error e;
    REQUIRE(lowbit::measure_error(S{}, *ref_act.qparams(), acts[4], e).ok());
    CHECK(cal.result("act").last_batch.noise == e.noise);
    CHECK(cal.result("act").last_batch.count == 64);

    CHECK_THROWS_WITH(cal.run(1, [](std::size_t, lowbit::calibrator::sink& s) { s.observe("nope", {}); }),
                      Catch::Contains("no observer named 'nope'"));
    CHECK_THROWS_WITH(cal.add("act", act), Catch::Contains("already exists"));
    CHECK_THROWS_WITH(cal.run(1, [&](std::size_t, lowbit::calibrator::sink& s) { s.observe("w", acts[0]); }),
                      Catch::Contains("pass the tensor's shape"));
}

TEST_CASE("measure_error: clipped fraction and SQNR by hand", "[observers][diagnostics]") {
    // s8 scale 1 zp 0: 0.5 -> 0 (error 0.5), 1 -> 1, 200 -> 127 (clipped, error 73), -2 -> -2
    const std::vector<float> x = {0.5f, 1.0f, 200.0f, -2.0f, std::nanf("")};
    lowbit::quant_error e;
    REQUIRE(lowbit::measure_error(lowbit::scheme<lowbit::s8>{}, {1.0f, 0}, x, e).ok());
    CHECK(e.count == 4);
    CHECK(e.clipped == 1);
    CHECK(e.clipped_fraction() == 0.25);
    CHECK(e.signal == 0.25 + 1 + 40000 + 4);
    CHECK(e.noise == 0.25 + 73.0 * 73.0);
    CHECK(e.max_abs_error == 73.0);
    CHECK(e.sqnr_db() == Approx(10 * std::log10(40005.25 / 5329.25)).epsilon(1e-13));
    lowbit::quant_error zero;
    const std::vector<float> zeros = {0, 0};
    REQUIRE(lowbit::measure_error(lowbit::scheme<lowbit::s8>{}, {1.0f, 0}, zeros, zero).ok());
    CHECK(std::isinf(zero.sqnr_db()));
    CHECK(std::isnan(lowbit::quant_error{}.sqnr_db()));
}

TEST_CASE("freestanding ln equals std::log", "[observers][diagnostics]") {
    std::mt19937_64 gen(1);
    std::uniform_real_distribution<double> exp(-300, 300), mant(1, 2);
    for (int i = 0; i < 20000; ++i) {
        const double x = mant(gen) * std::pow(2.0, std::floor(exp(gen)));
        CHECK(lowbit::detail::ln(x) == Approx(std::log(x)).epsilon(4e-16).margin(1e-300));
    }
    CHECK(lowbit::detail::ln(1.0) == 0.0);
}
