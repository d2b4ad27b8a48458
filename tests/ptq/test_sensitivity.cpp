// ptq/sensitivity.hpp: per-layer sensitivity for mixed precision. The evidence: a 3-layer MLP
// whose small output layer reads hidden activations with a huge range (one unit ~100x the
// others): at 4 bits (weights per channel and input activations per tensor, lowbit's own
// schemes) that layer alone costs far more than the others, the analysis ranks it first, and
// under a budget of "all at 4 bits + that layer at 8" the recommendation keeps exactly it at
// 8 bits. Also the budget logic on a fake model, a user metric, and errors.
#include "lowbit_catch.hpp"

#include <cmath>
#include <cstdio>
#include <vector>

#include <lowbit/ptq/sensitivity.hpp>

#include "dfq_test_util.hpp"

namespace {

struct sens_mlp {
    std::size_t rows = 256;
    std::size_t dims[4] = {32, 64, 64, 8};
    std::vector<float> w[3], b[3], x;
};

sens_mlp sens_make_mlp(unsigned seed) {
    sens_mlp m;
    std::mt19937 g(seed);
    for (std::size_t l = 0; l < 3; ++l) {
        const std::size_t in = m.dims[l], out = m.dims[l + 1];
        m.w[l].resize(out * in);
        m.b[l].resize(out);
        const double sd = 1.0 / std::sqrt(static_cast<double>(in));
        for (float& v : m.w[l]) v = static_cast<float>(sd * dfq_test::gauss(g));
        for (float& v : m.b[l]) v = static_cast<float>(0.1 * dfq_test::gauss(g));
    }
    // hidden unit 0 of layer 2 always fires at ~100 (the output layer's wide activation range);
    // its column of W3 is small, so it matters to the output no more than the other units
    m.b[1][0] = 100.0f;
    for (std::size_t j = 0; j < m.dims[3]; ++j) m.w[2][j * m.dims[2] + 0] *= 0.01f;
    m.x.resize(m.rows * m.dims[0]);
    for (float& v : m.x) v = static_cast<float>(dfq_test::gauss(g));
    return m;
}

// The model callback: layer l at bits[l] (0: f32) quantizes its weights per output channel
// and its input activations per tensor.
std::vector<float> sens_run(const sens_mlp& m, lowbit::span<const int> bits) {
    std::vector<float> h = m.x;
    for (std::size_t l = 0; l < 3; ++l) {
        const std::size_t in = m.dims[l], out = m.dims[l + 1];
        std::vector<float> wl = m.w[l];
        if (bits[l] > 0) {
            h = dfq_test::rtn_activations(bits[l], h);
            wl = dfq_test::rtn_weights(bits[l], true, out, in, m.w[l]);
        }
        h = dfq_test::linear(m.rows, out, in, h, wl, m.b[l]);
        if (l < 2) h = dfq_test::relu(h);
    }
    return h;
}

}  // namespace

TEST_CASE("sensitivity: the wide-range output layer of a 3-layer MLP ranks first and alone stays at 8 bits",
          "[ptq][sensitivity]") {
    const sens_mlp m = sens_make_mlp(1);
    const std::vector<std::size_t> counts = {32 * 64, 64 * 64, 64 * 8};
    // all 4-bit: (2048 + 4096 + 512) / 2 = 3328 bytes; the output layer at 8 bits adds 256,
    // the first layer would add 1024, the second 2048
    const std::size_t budget = 3328 + 256 + 100;
    int runs = 0;
    const auto run = [&](lowbit::span<const int> bits) {
        ++runs;
        return sens_run(m, bits);
    };
    const auto rep = lowbit::ptq::analyze_sensitivity(counts, budget, run);
    INFO("errors " << rep->error[0] << " " << rep->error[1] << " " << rep->error[2] << "; all-low "
                   << rep->all_low_error << " recommended " << rep->recommended_error);
    CHECK(runs == 3 + 3);
    CHECK(rep->all_low_bytes == 3328);
    CHECK(rep->ranking == std::vector<std::size_t>{2, 0, 1});
    // seeds 1..20 ("[.sensitivity-seeds]"): the output layer's error is 22..68x the next one's,
    // the recommendation's error 0.05..0.15x all-4-bit's, and it is {4, 4, 8} for every seed
    CHECK(rep->error[2] > 10.0 * rep->error[0]);
    CHECK(rep->error[2] > 10.0 * rep->error[1]);
    CHECK(rep->bits == std::vector<int>{4, 4, 8});
    CHECK(rep->bytes == 3584);
    CHECK(rep->recommended_error < 0.2 * rep->all_low_error);
    // AIMET's variant (other layers at 8 bits) ranks it first as well
    lowbit::ptq::sensitivity_options aimet;
    aimet.others_at_high_bits = true;
    const auto rep8 = lowbit::ptq::analyze_sensitivity(counts, budget, run, aimet);
    CHECK(rep8->ranking[0] == 2);
    CHECK(rep8->bits == std::vector<int>{4, 4, 8});
    // a user metric (largest absolute error) finds it too
    const auto max_abs = [](lowbit::span<const float> y, lowbit::span<const float> ref) {
        double e = 0.0;
        for (std::size_t i = 0; i < y.size(); ++i) e = std::fmax(e, std::fabs(static_cast<double>(y[i]) - ref[i]));
        return e;
    };
    const auto repm = lowbit::ptq::analyze_sensitivity(counts, budget, run, max_abs);
    CHECK(repm->ranking[0] == 2);
    CHECK(repm->bits == std::vector<int>{4, 4, 8});
}

TEST_CASE("sensitivity: budget logic on a model with known errors", "[ptq][sensitivity]") {
    // output: one value = sum of per-layer errors of the layers at 4 bits (err = 3, 1, 2, 0)
    const std::vector<double> err = {3, 1, 2, 0};
    const auto run = [&](lowbit::span<const int> bits) {
        float s = 0.0f;
        for (std::size_t i = 0; i < bits.size(); ++i)
            if (bits[i] == 4) s += static_cast<float>(err[i]);
        return std::vector<float>{s};
    };
    const std::vector<std::size_t> counts = {100, 10, 20, 30};  // 4-bit bytes 50, 5, 10, 15 = 80
    using lowbit::ptq::analyze_sensitivity;
    // MSE of one value: err^2
    auto r = analyze_sensitivity(counts, 80, run);
    CHECK(r->error == std::vector<double>{9, 1, 4, 0});
    CHECK(r->ranking == std::vector<std::size_t>{0, 2, 1, 3});
    CHECK(r->bits == std::vector<int>{4, 4, 4, 4});  // budget = all-low: nothing promoted
    CHECK(r->all_low_error == 36.0);
    CHECK(r->recommended_error == 36.0);
    // +15 bytes: layer 0 (+50) does not fit, layer 2 (+10) does, then layer 1 (+5) does
    r = analyze_sensitivity(counts, 95, run);
    CHECK(r->bits == std::vector<int>{4, 8, 8, 4});
    CHECK(r->bytes == 95);
    CHECK(r->recommended_error == 9.0);
    // a large budget: every layer with a non-zero error goes to 8 bits (layer 3 gains nothing)
    r = analyze_sensitivity(counts, 1000, run);
    CHECK(r->bits == std::vector<int>{8, 8, 8, 4});
    CHECK(r->recommended_error == 0.0);
    // weight_bytes rounds up and saturates
    CHECK(lowbit::ptq::weight_bytes(3, 4) == 2);
    CHECK(lowbit::ptq::weight_bytes(3, 8) == 3);
    CHECK(lowbit::ptq::weight_bytes(static_cast<std::size_t>(-1) / 2, 8) == static_cast<std::size_t>(-1));
}

TEST_CASE("sensitivity: errors", "[ptq][sensitivity]") {
    using lowbit::ptq::analyze_sensitivity;
    int runs = 0;
    const auto run = [&](lowbit::span<const int> bits) {
        ++runs;
        return std::vector<float>(bits.size(), static_cast<float>(bits[0]));
    };
    const std::vector<std::size_t> counts = {10, 10}, none;
    CHECK_THROWS_WITH(analyze_sensitivity(none, 100, run), Catch::Contains("'weight_counts.size()' = 0"));
    lowbit::ptq::sensitivity_options o;
    o.low_bits = 0;
    CHECK_THROWS_WITH(analyze_sensitivity(counts, 100, run, o), Catch::Contains("'options.low_bits' = 0"));
    o.low_bits = 8;
    o.high_bits = 8;
    CHECK_THROWS_WITH(analyze_sensitivity(counts, 100, run, o), Catch::Contains("'options.high_bits' = 8"));
    CHECK_THROWS_WITH(analyze_sensitivity(counts, 9, run), Catch::Contains("'budget_bytes' = 9"));
    CHECK(runs == 0);  // refused before running the model
    // outputs of different sizes; an empty f32 output; a NaN output
    const auto ragged = [](lowbit::span<const int> bits) { return std::vector<float>(bits[1] == 4 ? 3 : 2, 1.0f); };
    CHECK_THROWS_WITH(analyze_sensitivity(counts, 100, ragged), Catch::Contains("'run output size (layer index)' = 1"));
    const auto empty = [](lowbit::span<const int>) { return std::vector<float>(); };
    CHECK_THROWS_WITH(analyze_sensitivity(counts, 100, empty), Catch::Contains("'run output size (layer index)' = 4"));
    const auto nan = [](lowbit::span<const int> bits) {
        return std::vector<float>{bits[0] == 4 ? std::nanf("") : 1.0f};
    };
    CHECK_THROWS_WITH(analyze_sensitivity(counts, 100, nan), Catch::Contains("'metric (layer index)' = 0"));
}

TEST_CASE("sensitivity seeds (prints the error ratios)", "[.sensitivity-seeds]") {
    const std::vector<std::size_t> counts = {32 * 64, 64 * 64, 64 * 8};
    for (unsigned seed = 1; seed <= 20; ++seed) {
        const sens_mlp m = sens_make_mlp(seed);
        const auto rep = lowbit::ptq::analyze_sensitivity(
            counts, 3584, [&](lowbit::span<const int> bits) { return sens_run(m, bits); });
        std::printf("seed %2u  errors %.4g %.4g %.4g  ratio to next %.1f  bits %d %d %d  recommended / all-low %.3f\n",
                    seed, rep->error[0], rep->error[1], rep->error[2],
                    rep->error[2] / std::fmax(rep->error[0], rep->error[1]), rep->bits[0], rep->bits[1], rep->bits[2],
                    rep->recommended_error / rep->all_low_error);
    }
}
