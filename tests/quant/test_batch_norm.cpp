// lowbit/quant/batch_norm.hpp against torch 1.13 (tests/golden/data/qat_bn_fold.txt,
// qat_bn_train.txt from generate_qat.py), bit for bit.
#include "qat_golden.hpp"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <lowbit/quant/batch_norm.hpp>

using qat_golden::report;
using qat_golden::row;

TEST_CASE("golden: BN folding (fuse_conv_bn_weights, transposed, fuse_linear_bn_weights)", "[quant][batch_norm][golden]") {
    std::vector<row> rows = qat_golden::load("qat_bn_fold.txt");
    REQUIRE(rows.size() >= 40);
    report rep;
    std::size_t kinds[3] = {};
    for (row& r : rows) {
        const std::string kind = r.word();
        const float eps = r.real();
        std::size_t numel = 0;
        const lowbit::shape shp = r.dims(numel);
        const std::size_t C = kind == "conv_transpose" ? shp[1] : shp[0];
        const std::vector<float> w = r.reals(numel), b = r.optional_reals(C), rm = r.reals(C), rv = r.reals(C),
                                 gamma = r.optional_reals(C), beta = r.optional_reals(C), ew = r.reals(numel),
                                 eb = r.reals(C);
        REQUIRE(r.done());
        lowbit::batch_norm_params bn;
        bn.running_mean = rm;
        bn.running_var = rv;
        bn.weight = gamma;
        bn.bias = beta;
        bn.eps = eps;
        std::vector<float> gw(numel), gb(C);
        if (kind == "linear") {
            REQUIRE(lowbit::fold_batch_norm_linear(bn, shp, w, b, gw, gb).ok());
            ++kinds[2];
        } else {
            REQUIRE(lowbit::fold_batch_norm_conv(bn, shp, w, b, gw, gb, kind == "conv_transpose").ok());
            ++kinds[kind == "conv" ? 0 : 1];
        }
        rep.floats(r.where() + " " + kind, "folded w", ew, gw);
        rep.floats(r.where() + " " + kind, "folded b", eb, gb);
        // in place gives the same
        std::vector<float> w2 = w, b2 = b.empty() ? std::vector<float>(C) : b;
        if (kind == "linear")
            REQUIRE(lowbit::fold_batch_norm_linear(bn, shp, w2, b.empty() ? lowbit::span<const float>() : lowbit::span<const float>(b2), w2, b2).ok());
        else
            REQUIRE(lowbit::fold_batch_norm_conv(bn, shp, w2, b.empty() ? lowbit::span<const float>() : lowbit::span<const float>(b2), w2, b2, kind == "conv_transpose").ok());
        rep.floats(r.where() + " in place", "folded w", ew, w2);
        rep.floats(r.where() + " in place", "folded b", eb, b2);
    }
    CHECK(kinds[0] >= 16);
    CHECK(kinds[1] >= 12);
    CHECK(kinds[2] >= 12);
    rep.finish(4000);
}

TEST_CASE("golden: simulated folding pieces and BN running statistics", "[quant][batch_norm][golden]") {
    std::vector<row> rows = qat_golden::load("qat_bn_train.txt");
    REQUIRE(rows.size() >= 36);
    report rep;
    std::size_t approx = 0, stats = 0;
    for (row& r : rows) {
        const std::string kind = r.word();
        if (kind == "approx") {
            const float eps = r.real();
            std::size_t numel = 0, conv_numel = 0;
            const lowbit::shape shp = r.dims(numel);
            const std::vector<float> w = r.reals(numel);
            const std::size_t C = r.count();
            const std::vector<float> gamma = r.reals(C), rv = r.reals(C);
            const lowbit::shape cshp = r.dims(conv_numel);
            const std::vector<float> conv = r.reals(conv_numel), b = r.optional_reals(C), esf = r.reals(C),
                                     ew = r.reals(numel), eorig = r.reals(conv_numel);
            REQUIRE(r.done());
            std::vector<float> sf(C), ws(numel), orig(conv_numel);
            REQUIRE(lowbit::batch_norm_scale_factor(gamma, rv, eps, sf).ok());
            REQUIRE(lowbit::scale_weight(sf, shp, w, ws).ok());
            REQUIRE(lowbit::rescale_conv_output(sf, b, cshp, conv, orig).ok());
            rep.floats(r.where(), "scale_factor", esf, sf);
            rep.floats(r.where(), "scaled weight", ew, ws);
            rep.floats(r.where(), "conv / scale_factor + bias", eorig, orig);
            ++approx;
        } else {
            REQUIRE(kind == "stats");
            const float momentum = r.real();
            std::size_t numel = 0;
            const lowbit::shape shp = r.dims(numel);
            const std::size_t C = shp[1];
            const std::vector<float> x = r.reals(numel), rm0 = r.reals(C), rv0 = r.reals(C), erm = r.reals(C),
                                     erv = r.reals(C);
            REQUIRE(r.done());
            std::vector<float> rm = rm0, rv = rv0;
            REQUIRE(lowbit::update_batch_norm_stats(shp, x, momentum, rm, rv).ok());
            rep.floats(r.where(), "running_mean", erm, rm);
            rep.floats(r.where(), "running_var", erv, rv);
            // the two-step form gives the same; frozen changes nothing
            std::vector<float> mean(C), var_sum(C), rm2 = rm0, rv2 = rv0;
            REQUIRE(lowbit::batch_norm_batch_stats(shp, x, mean, var_sum).ok());
            REQUIRE(lowbit::batch_norm_update_running_stats(numel / C, momentum, mean, var_sum, rm2, rv2).ok());
            rep.floats(r.where() + " two-step", "running_mean", erm, rm2);
            rep.floats(r.where() + " two-step", "running_var", erv, rv2);
            std::vector<float> rm3 = rm0, rv3 = rv0;
            REQUIRE(lowbit::update_batch_norm_stats(shp, x, momentum, rm3, rv3, true).ok());
            rep.floats(r.where() + " frozen", "running_mean", rm0, rm3);
            rep.floats(r.where() + " frozen", "running_var", rv0, rv3);
            ++stats;
        }
    }
    CHECK(approx >= 12);
    CHECK(stats >= 24);
    rep.finish(1000);
}

TEST_CASE("batch_norm: edges and errors", "[quant][batch_norm]") {
    const std::vector<float> rm{1.0f, -2.0f}, rv{0.0f, 4.0f}, w{1.0f, 2.0f, 3.0f, 4.0f};
    lowbit::batch_norm_params bn;
    bn.running_mean = rm;
    bn.running_var = rv;
    bn.eps = 0.0f;
    std::vector<float> wo(4), bo(2);
    // var + eps == 0: Inf as torch (1 / sqrt(0)), without gamma / beta
    REQUIRE(lowbit::fold_batch_norm_conv(bn, lowbit::shape{2, 2}, w, {}, wo, bo).ok());
    CHECK(std::isinf(wo[0]));
    CHECK(wo[2] == 1.5f);
    CHECK(bo[1] == 1.0f);  // (0 - (-2)) * 0.5
    bn.eps = -1.0f;
    REQUIRE_THROWS_WITH(lowbit::fold_batch_norm_conv(bn, lowbit::shape{2, 2}, w, {}, wo, bo), Catch::Contains("eps"));
    bn.eps = 1e-5f;
    std::vector<float> b3(3);
    REQUIRE_THROWS_WITH(lowbit::fold_batch_norm_conv(bn, lowbit::shape{2, 2}, w, {}, wo, b3), Catch::Contains("b_out.size()"));
    REQUIRE_THROWS_WITH(lowbit::fold_batch_norm_conv(bn, lowbit::shape{4}, w, {}, wo, bo, true), Catch::Contains("shape.rank()"));
    REQUIRE_THROWS_WITH(lowbit::fold_batch_norm_linear(bn, lowbit::shape{2, 3}, w, {}, wo, bo), Catch::Contains("w.size()"));
    std::vector<float> m(2), v(2);
    REQUIRE_THROWS_WITH(lowbit::update_batch_norm_stats(lowbit::shape{2, 2}, w, 1.5f, m, v), Catch::Contains("momentum"));
    REQUIRE_THROWS_WITH(lowbit::update_batch_norm_stats(lowbit::shape{0, 2}, {}, 0.1f, m, v), Catch::Contains("x_shape"));
    // more than 256 channels go through the stack blocks
    const std::size_t C = 300;
    std::vector<float> x(3 * C), rmean(C, 0.5f), rvar(C, 1.0f), mean(C), vs(C), rmean2 = rmean, rvar2 = rvar;
    for (std::size_t k = 0; k < x.size(); ++k) x[k] = static_cast<float>(k % 17) * 0.25f - 1.0f;
    REQUIRE(lowbit::update_batch_norm_stats(lowbit::shape{3, C}, x, 0.1f, rmean, rvar).ok());
    REQUIRE(lowbit::batch_norm_batch_stats(lowbit::shape{3, C}, x, mean, vs).ok());
    REQUIRE(lowbit::batch_norm_update_running_stats(3, 0.1f, mean, vs, rmean2, rvar2).ok());
    for (std::size_t c = 0; c < C; ++c) {
        CHECK(qat_golden::bits(rmean[c]) == qat_golden::bits(rmean2[c]));
        CHECK(qat_golden::bits(rvar[c]) == qat_golden::bits(rvar2[c]));
    }
}
