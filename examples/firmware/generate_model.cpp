// generate_model.cpp (examples/firmware): writes the C++ header of const arrays that the
// firmware example compiles in: the demo's W8A8 MLP (784-256-128-10) quantized exactly as
// examples/ptq_vs_qat builds "PTQ W8A8 min/max" (build_ptq with rounding_algo::rtn), plus N test
// images and the output codes the host's integer engine (demo::integer_mlp, i.e.
// lowbit::kernels::gemm with the requantizing epilogue) gives for them.
//
//   firmware_gen --out mlp_model_data.hpp [--data DIR] [--weights DIR [--tag TAG]]
//                [--epochs E] [--train-images N] [--images N]
//
// The f32 model is trained here (demo::make_mlp({784, 256, 128, 10}, 2026), demo::train, 1
// epoch by default), or loaded from the .npy files ptq_vs_qat caches (--weights
// ptq_vs_qat_cache: TAG_fc<l>_weight.npy / _bias.npy, TAG = full by default). Activations:
// u8 affine per tensor from min/max observers over 500 training images (fixed random choice,
// batches of 100, as ptq_vs_qat); weights: s8 symmetric per output channel, round to nearest
// (demo::quantize_weights_rtn). The integer bias and fixed-point multipliers are computed with
// integer_mlp's formulas; the host test (example.firmware) checks that the firmware code with
// them reproduces integer_mlp's codes bit for bit. Exit codes: 0 written, 1 error, 2 bad flags.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <lowbit/observers/minmax.hpp>
#include <lowbit/xtensor.hpp>

#include "fashion_mnist.hpp"
#include "mlp.hpp"
#include "quantized_mlp.hpp"

namespace {

struct options {
    std::string out;
    std::string data = demo::default_fashion_mnist_dir();
    std::string weights;  // "" : train
    std::string tag = "full";
    std::size_t epochs = 1;
    std::size_t train_images = 55000;
    std::size_t images = 32;
};

[[noreturn]] void usage_error(const std::string& msg) {
    std::fprintf(stderr, "firmware_gen: %s\nusage: firmware_gen --out FILE [--data DIR] [--weights DIR [--tag TAG]] "
                         "[--epochs E] [--train-images N] [--images N]\n", msg.c_str());
    std::exit(2);
}

std::size_t parse_count(const std::string& flag, const std::string& v, std::size_t lo, std::size_t hi) {
    char* end = nullptr;
    const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || v[0] == '-' || x < lo || x > hi)
        usage_error("option " + flag + " = '" + v + "': must be an integer in [" + std::to_string(lo) + ", " +
                    std::to_string(hi) + "]");
    return static_cast<std::size_t>(x);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage_error("option " + a + " needs a value");
            return argv[++i];
        };
        if (a == "--out") o.out = value();
        else if (a == "--data") o.data = value();
        else if (a == "--weights") o.weights = value();
        else if (a == "--tag") o.tag = value();
        else if (a == "--epochs") o.epochs = parse_count(a, value(), 1, 100);
        else if (a == "--train-images") o.train_images = parse_count(a, value(), 1000, 55000);
        else if (a == "--images") o.images = parse_count(a, value(), 1, 10000);
        else usage_error("unknown option '" + a + "'");
    }
    if (o.out.empty()) usage_error("--out FILE is required");
    return o;
}

bool load_weights(demo::mlp& m, const std::string& dir, const std::string& tag) {
    for (std::size_t l = 0; l < m.layers.size(); ++l) {
        const std::string p = dir + "/" + tag + "_fc" + std::to_string(l);
        const auto w = lowbit::xtensor::load_npy<float>(p + "_weight.npy");  // throws naming the file
        const auto b = lowbit::xtensor::load_npy<float>(p + "_bias.npy");
        demo::linear_layer& L = m.layers[l];
        if (w.dimension() != 2 || w.shape()[0] != L.out || w.shape()[1] != L.in || b.size() != L.out)
            throw std::runtime_error("'" + p + "_weight.npy' / '_bias.npy': shape is not [" + std::to_string(L.out) +
                                     ", " + std::to_string(L.in) + "] / [" + std::to_string(L.out) + "]");
        L.w.assign(w.begin(), w.end());
        L.b.assign(b.begin(), b.end());
    }
    return true;
}

/// The firmware's per-layer integers, with integer_mlp's formulas (quantized_mlp.hpp).
struct fw_layer {
    std::size_t n = 0, k = 0;
    std::vector<std::int8_t> w;
    std::vector<std::int32_t> bias;
    std::vector<lowbit::quantized_multiplier> mult;
    std::int32_t z_in = 0, z_out = 0;
    float s_out = 0;
};

std::vector<fw_layer> firmware_layers(const demo::quantized_mlp& q) {
    std::vector<fw_layer> out;
    float s_in = demo::integer_mlp::input_scale;
    std::int32_t z_in = 0;
    for (std::size_t l = 0; l < q.layers.size(); ++l) {
        const demo::linear_layer& L = q.base->layers[l];
        const demo::quantized_layer& ql = q.layers[l];
        fw_layer f;
        f.n = L.out;
        f.k = L.in;
        f.w = ql.codes;
        f.z_in = z_in;
        f.z_out = ql.out.zero_point;
        f.s_out = ql.out.scale;
        for (std::size_t n = 0; n < L.out; ++n) {
            const double s_acc = double(s_in) * double(ql.scales[n]);
            const double bq = std::nearbyint(double(L.b[n]) / s_acc);
            f.bias.push_back(static_cast<std::int32_t>(std::clamp(bq, -2147483648.0, 2147483647.0)));
            const lowbit::result<lowbit::quantized_multiplier> m = lowbit::quantize_multiplier(s_acc / double(ql.out.scale));
            demo::check(m.status(), "requantize multiplier");
            f.mult.push_back(*m);
        }
        s_in = ql.out.scale;
        z_in = ql.out.zero_point;
        out.push_back(std::move(f));
    }
    return out;
}

/// Writes `name` as a const array of T, 24 values a line.
template <class T>
void write_array(std::FILE* f, const char* type, const std::string& name, const T* v, std::size_t n) {
    std::fprintf(f, "alignas(4) const %s %s[%zu] = {\n", type, name.c_str(), n);
    for (std::size_t i = 0; i < n; ++i)
        std::fprintf(f, "%s%lld,%s", i % 24 == 0 ? "    " : "", static_cast<long long>(v[i]),
                     (i % 24 == 23 || i + 1 == n) ? "\n" : " ");
    std::fprintf(f, "};\n");
}

}  // namespace

int main(int argc, char** argv) try {
    const options opt = parse(argc, argv);
    const demo::dataset train_all = demo::load_fashion_mnist(opt.data, true);
    const demo::dataset test = demo::load_fashion_mnist(opt.data, false);
    const demo::dataset train = train_all.slice(0, opt.train_images);
    if (opt.images > test.count) usage_error("--images " + std::to_string(opt.images) + " > test images");

    demo::mlp m = demo::make_mlp({784, 256, 128, 10}, 2026);
    std::string origin;
    if (!opt.weights.empty()) {
        load_weights(m, opt.weights, opt.tag);
        origin = "f32 weights loaded from " + opt.weights + "/" + opt.tag + "_fc*.npy";
    } else {
        demo::train_options to;
        to.epochs = opt.epochs;
        demo::f32_hooks h;
        demo::train(m, h, train, to);
        origin = "f32 model trained here: demo::make_mlp(seed 2026), demo::train " + std::to_string(opt.epochs) +
                 " epoch(s) on " + std::to_string(train.count) + " training images";
    }

    // calibration: min/max of every layer's f32 output over 500 training images, batches of 100
    const std::size_t samples = std::min<std::size_t>(500, train.count);
    demo::dataset calib;
    {
        std::vector<std::size_t> idx(train.count);
        for (std::size_t i = 0; i < train.count; ++i) idx[i] = i;
        std::mt19937 gen(11);
        std::shuffle(idx.begin(), idx.end(), gen);
        calib.count = samples;
        for (std::size_t i = 0; i < samples; ++i) {
            calib.images.insert(calib.images.end(), train.images.begin() + std::ptrdiff_t(idx[i] * 784),
                                train.images.begin() + std::ptrdiff_t((idx[i] + 1) * 784));
            calib.labels.push_back(train.labels[idx[i]]);
        }
    }
    demo::f32_hooks f32h;
    demo::forward_state st;
    const std::vector<float> x = calib.batch(0, calib.count);
    demo::forward(m, f32h, x.data(), calib.count, st);
    demo::quantized_mlp q(m);
    for (std::size_t l = 0; l < m.layers.size(); ++l) {
        lowbit::minmax_observer<demo::act_scheme> obs(demo::activation_scheme(8));
        const std::size_t cols = m.layers[l].out;
        for (std::size_t r0 = 0; r0 < samples; r0 += 100) {
            const std::size_t n = std::min<std::size_t>(100, samples - r0) * cols;
            demo::check(obs.observe(lowbit::span<const float>(st.outs[l].data() + r0 * cols, n)), "observe");
        }
        const lowbit::result<lowbit::qparams> qp = obs.qparams();
        demo::check(qp.status(), "calibrated qparams");
        q.layers[l].abits = 8;
        q.layers[l].out = *qp;
        demo::quantize_weights_rtn(q, l, 8);
    }

    // the host integer engine: expected codes for the embedded images, accuracy on all of them
    demo::integer_mlp eng(q);
    std::vector<std::uint8_t> codes;
    eng.run(test.images.data(), opt.images, codes);
    std::vector<std::uint8_t> classes(opt.images);
    for (std::size_t i = 0; i < opt.images; ++i)
        classes[i] = static_cast<std::uint8_t>(std::max_element(codes.begin() + std::ptrdiff_t(i * 10),
                                                                codes.begin() + std::ptrdiff_t(i * 10 + 10)) -
                                               (codes.begin() + std::ptrdiff_t(i * 10)));
    const double acc = demo::accuracy(eng.predict(test), test);
    const std::vector<fw_layer> fl = firmware_layers(q);

    const std::string tmp = opt.out + ".tmp";  // renamed when complete: no half-written header
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) throw std::runtime_error("cannot write '" + tmp + "'");
    std::fprintf(f,
                 "// mlp_model_data.hpp: GENERATED by firmware_gen (examples/firmware/generate_model.cpp); do not edit.\n"
                 "// The demo MLP 784-256-128-10 as W8A8 integers (examples/firmware/mlp_inference.hpp says how\n"
                 "// they are used). %s.\n"
                 "// Activations u8 affine (min/max over %zu training images), weights s8 symmetric per output\n"
                 "// channel (round to nearest), int32 bias, fixed-point multipliers (multiplier, shift).\n"
                 "// Host integer engine (lowbit::kernels::gemm) test accuracy: %.2f %% on %zu images.\n"
                 "// test_images are the first %zu Fashion-MNIST test images; expected_codes / expected_classes\n"
                 "// are the host integer engine's output codes and argmax for them.\n"
                 "#ifndef LOWBIT_EXAMPLES_FIRMWARE_MLP_MODEL_DATA_HPP\n#define LOWBIT_EXAMPLES_FIRMWARE_MLP_MODEL_DATA_HPP\n\n"
                 "#include <cstddef>\n#include <cstdint>\n\n#include <lowbit/core/fixed_point.hpp>\n\nnamespace fw_data {\n\n"
                 "constexpr std::size_t layer_count = %zu;\n",
                 origin.c_str(), samples, 100.0 * acc, test.count, opt.images, fl.size());
    for (std::size_t l = 0; l < fl.size(); ++l) {
        const fw_layer& L = fl[l];
        const std::string p = "fc" + std::to_string(l);
        std::fprintf(f, "\n// layer %zu: %zu -> %zu; input zero point %d, output scale %.9g zero point %d\n", l, L.k, L.n,
                     L.z_in, double(L.s_out), L.z_out);
        std::fprintf(f, "constexpr std::size_t %s_in = %zu, %s_out = %zu;\n", p.c_str(), L.k, p.c_str(), L.n);
        std::fprintf(f, "constexpr std::int32_t %s_input_zero_point = %d, %s_output_zero_point = %d;\n", p.c_str(), L.z_in,
                     p.c_str(), L.z_out);
        write_array(f, "std::int8_t", p + "_weight", L.w.data(), L.w.size());
        write_array(f, "std::int32_t", p + "_bias", L.bias.data(), L.bias.size());
        std::fprintf(f, "alignas(4) const lowbit::quantized_multiplier %s_multiplier[%zu] = {\n", p.c_str(), L.n);
        for (std::size_t n = 0; n < L.n; ++n)
            std::fprintf(f, "%s{%d, %d},%s", n % 8 == 0 ? "    " : "", L.mult[n].multiplier, L.mult[n].shift,
                         (n % 8 == 7 || n + 1 == L.n) ? "\n" : " ");
        std::fprintf(f, "};\n");
    }
    std::fprintf(f, "\nconstexpr std::size_t test_count = %zu, pixels = 784, classes = 10;\n", opt.images);
    write_array(f, "std::uint8_t", "test_images", test.images.data(), opt.images * 784);
    write_array(f, "std::uint8_t", "test_labels", test.labels.data(), opt.images);
    write_array(f, "std::uint8_t", "expected_codes", codes.data(), codes.size());
    write_array(f, "std::uint8_t", "expected_classes", classes.data(), classes.size());
    std::fprintf(f, "\n}  // namespace fw_data\n\n#endif  // LOWBIT_EXAMPLES_FIRMWARE_MLP_MODEL_DATA_HPP\n");
    const bool ok = std::ferror(f) == 0;
    if (std::fclose(f) != 0 || !ok) {
        std::remove(tmp.c_str());
        throw std::runtime_error("writing '" + tmp + "' failed");
    }
    if (std::rename(tmp.c_str(), opt.out.c_str()) != 0) throw std::runtime_error("cannot rename '" + tmp + "' to '" + opt.out + "'");
    std::printf("firmware_gen: wrote %s (%s; host integer accuracy %.2f %% on %zu test images; %zu embedded)\n",
                opt.out.c_str(), origin.c_str(), 100.0 * acc, test.count, opt.images);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "firmware_gen: %s\n", e.what());
    return 1;
}
