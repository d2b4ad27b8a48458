// calibrate_npy: calibrate your own model's activations. Save them from PyTorch or NumPy as
// .npy files (float32, any shape; e.g. np.save("fc1.out.npy", t.detach().numpy())), one file
// per tensor, and this tool runs a lowbit observer over each and writes the quantization
// parameters as JSON, keyed by the file's stem:
//
//   calibrate_npy --method histogram --scheme u8 --out qparams.json acts/*.npy
//
// One entry per tensor; the demo's ramp.npy (0, 0.01, ..., 2.55 in a 16 x 16 array) with the
// defaults (--method minmax --scheme u8) gives
//   "ramp": {"method": "minmax", "scheme": "u8 affine", "scale": 0.00999999978, "zero_point": 0,
//            "quant_min": 0, "quant_max": 255, "range": [0, 2.54999995], "observed": [0, 2.54999995],
//            "count": 256, "shape": [16, 16], "file": "demo/ramp.npy"}
//
// "range" is the clipping range the method chose (the qparams are choose_qparams(scheme,
// range)), "observed" the data's min and max, "count" the number of values. Methods: minmax (torch
// MinMaxObserver), histogram (torch HistogramObserver's L2 search), percentile (ONNX
// Runtime, 99.999%), mse (least expected squared error), entropy (TensorRT's KL divergence).
// Schemes: u8 (affine, torch's quint8) or s8 (symmetric, qint8). Arguments are files or
// directories (their *.npy files, sorted). --demo DIR first writes deterministic demo files
// into DIR and calibrates them, and writes files this tool must refuse into DIR/corrupt.
//
// Files are read with lowbit::xtensor::load_npy, which checks the header against the bytes:
// a missing file, something that is not .npy, another dtype (convert with .astype(np.float32)),
// a truncated file or a header whose length field lies are refused with a message naming the
// file, as are non-finite and empty tensors; the tool then writes nothing and exits with 1.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <lowbit/observers/all.hpp>
#include <lowbit/xtensor.hpp>

namespace fs = std::filesystem;

namespace {

// ---- what one tensor gave ----
struct tensor_result {
    std::string name, file;
    std::vector<std::size_t> shape;
    lowbit::qparams qp;
    float range_min = 0, range_max = 0;  // the clipping range the method chose
    lowbit::observer_stats stats;        // observed min / max, count
};

// The clipping range behind an observer's qparams.
template <class S>
std::pair<float, float> chosen_range(const lowbit::minmax_observer<S>& o) {
    return {o.stats().min, o.stats().max};
}
template <class S, std::size_t B>
std::pair<float, float> chosen_range(const lowbit::histogram_observer<S, B>& o) {
    const lowbit::histogram_range r = *o.search_range();
    return {r.min, r.max};
}
template <class O>
auto chosen_range(const O& o) -> decltype(o.range(), std::pair<float, float>()) {  // percentile, mse, entropy
    const lowbit::clip_range r = *o.range();
    return {r.min, r.max};
}

// Loads one file and runs a fresh copy of `proto` over it (the whole tensor as one batch).
template <class Observer>
tensor_result calibrate_file(const Observer& proto, const fs::path& file) {
    tensor_result r;
    r.name = file.stem().string();
    r.file = file.string();
    const auto x = lowbit::xtensor::load_npy<float>(r.file);  // throws, naming the file
    r.shape.assign(x.shape().begin(), x.shape().end());
    if (x.size() == 0) throw std::runtime_error("'" + r.file + "': the tensor has no elements, nothing to calibrate");
    Observer obs = proto;
    try {
        obs.observe(lowbit::span<const float>(x.data(), x.size()));
    } catch (const lowbit::error& e) {  // a NaN / Inf: the message names its flat index
        throw std::runtime_error("'" + r.file + "': " + e.what());
    }
    r.qp = *obs.qparams();
    std::tie(r.range_min, r.range_max) = chosen_range(obs);
    r.stats = obs.stats();
    return r;
}

// ---- JSON output ----
std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
            out += buf;
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

std::string json_number(double v) {  // %.9g: a float round-trips; inputs are finite
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

std::string to_json(const std::vector<tensor_result>& results, const std::string& method, const std::string& scheme,
                    std::int32_t qmin, std::int32_t qmax) {
    std::string j = "{\n  \"tensors\": {";
    for (std::size_t i = 0; i < results.size(); ++i) {
        const tensor_result& r = results[i];
        std::string shape;
        for (std::size_t d = 0; d < r.shape.size(); ++d) shape += (d ? ", " : "") + std::to_string(r.shape[d]);
        j += std::string(i ? "," : "") + "\n    " + json_string(r.name) + ": {";
        j += "\"method\": " + json_string(method) + ", \"scheme\": " + json_string(scheme);
        j += ", \"scale\": " + json_number(double(r.qp.scale)) + ", \"zero_point\": " + std::to_string(r.qp.zero_point);
        j += ", \"quant_min\": " + std::to_string(qmin) + ", \"quant_max\": " + std::to_string(qmax);
        j += ", \"range\": [" + json_number(double(r.range_min)) + ", " + json_number(double(r.range_max)) + "]";
        j += ", \"observed\": [" + json_number(double(r.stats.min)) + ", " + json_number(double(r.stats.max)) + "]";
        j += ", \"count\": " + std::to_string(r.stats.count) + ", \"shape\": [" + shape + "]";
        j += ", \"file\": " + json_string(r.file) + "}";
    }
    return j + "\n  }\n}\n";
}

// ---- the demo files ----

// Standard normal values from std::mt19937 (fully specified by the standard, unlike
// std::normal_distribution), by Box-Muller.
float gauss(std::mt19937& gen) {
    const double u1 = (double(gen()) + 0.5) / 4294967296.0, u2 = (double(gen()) + 0.5) / 4294967296.0;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

template <class T>
void save(const fs::path& file, const std::vector<std::size_t>& shape, const std::vector<T>& v) {
    lowbit::xtensor::save_npy(file.string(), xt::adapt(v, shape));
}

// Demo tensors with known answers, one like a real activation, and files to be refused.
void write_demo(const fs::path& dir) {
    fs::create_directories(dir / "corrupt");
    // ramp: 0, 0.01, ..., 2.55 (i / 100 in float). minmax u8: scale = f32(2.55f / 255) = 0.01f,
    // zero point 0; minmax s8 symmetric: scale = f32(2.55f / 127.5) = 0.02f.
    std::vector<float> ramp(256);
    for (std::size_t i = 0; i < ramp.size(); ++i) ramp[i] = float(i) / 100.0f;
    save(dir / "ramp.npy", {16, 16}, ramp);
    // centered: -1.28, ..., 1.27. minmax u8: scale = f32(f32(1.27f + 1.28f) / 255) = 0.01f,
    // zero point 0 - rint(-1.28f / 0.01f) = 128.
    std::vector<float> centered(256);
    for (std::size_t i = 0; i < centered.size(); ++i) centered[i] = (float(i) - 128.0f) / 100.0f;
    save(dir / "centered.npy", {2, 128}, centered);
    // relu_act: post-ReLU values max(0, N(0.5, 1)) [8, 4, 64] with 5 outliers 8x larger:
    // minmax spends its 256 levels on them, entropy clips them (to about 4.7 with u8).
    std::mt19937 gen(2024);
    std::vector<float> act(8 * 4 * 64);
    for (std::size_t i = 0; i < act.size(); ++i) {
        const float v = std::max(0.0f, 0.5f + gauss(gen));
        act[i] = i % 500 == 7 ? 8.0f * v + 4.0f : v;
    }
    save(dir / "relu_act.npy", {8, 4, 64}, act);

    // Files calibrate_npy refuses (try: calibrate_npy DIR/corrupt/truncated.npy).
    const fs::path bad = dir / "corrupt";
    save(bad / "truncated.npy", {100}, std::vector<float>(100, 1.0f));
    fs::resize_file(bad / "truncated.npy", fs::file_size(bad / "truncated.npy") - 200);  // half the data missing
    save(bad / "header_length.npy", {4}, std::vector<float>(4, 1.0f));
    {  // the 2-byte header-length field (bytes 8, 9) claims 65535 bytes
        std::fstream f(bad / "header_length.npy", std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(8);
        f.write("\xff\xff", 2);
    }
    save(bad / "float64.npy", {4}, std::vector<double>(4, 1.0));
    std::ofstream(bad / "not_npy.npy") << "this is text, not a .npy file\n";
    save(bad / "nan.npy", {3}, std::vector<float>{1.0f, std::numeric_limits<float>::quiet_NaN(), 2.0f});
    save(bad / "empty.npy", {0, 16}, std::vector<float>{});
}

// ---- command line ----
constexpr const char* usage =
    "usage: calibrate_npy [--method minmax|histogram|percentile|mse|entropy] [--scheme u8|s8]\n"
    "                     [--out FILE] [--demo DIR] FILE.npy|DIR ...\n";

[[noreturn]] void usage_error(const std::string& msg) {
    std::fprintf(stderr, "calibrate_npy: %s\n%s", msg.c_str(), usage);
    std::exit(2);
}

std::vector<fs::path> expand(const std::vector<std::string>& args) {
    std::vector<fs::path> files;
    for (const std::string& a : args) {
        std::error_code ec;
        if (!fs::is_directory(a, ec)) {
            files.emplace_back(a);  // a missing file is reported by load_npy
            continue;
        }
        std::vector<fs::path> in_dir;
        for (const fs::directory_entry& e : fs::directory_iterator(a))
            if (e.is_regular_file() && e.path().extension() == ".npy") in_dir.push_back(e.path());
        std::sort(in_dir.begin(), in_dir.end());
        if (in_dir.empty()) throw std::runtime_error("directory '" + a + "' holds no .npy file");
        files.insert(files.end(), in_dir.begin(), in_dir.end());
    }
    return files;
}

template <class Scheme>
std::vector<tensor_result> calibrate_all(const Scheme& s, const std::string& method,
                                         const std::vector<fs::path>& files) {
    std::vector<tensor_result> out;
    const auto each = [&](const auto& proto) {
        for (const fs::path& f : files) out.push_back(calibrate_file(proto, f));
    };
    if (method == "minmax") each(lowbit::minmax_observer<Scheme>(s));
    else if (method == "histogram") each(lowbit::histogram_observer<Scheme>(s));
    else if (method == "percentile") each(lowbit::percentile_observer<Scheme>(s));
    else if (method == "mse") each(lowbit::mse_observer<Scheme>(s));
    else each(lowbit::entropy_observer<Scheme>(s));
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::string method = "minmax", scheme = "u8", out_path, demo_dir;
    std::vector<std::string> inputs;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage_error("option " + a + " needs a value");
            return argv[++i];
        };
        if (a == "--method") method = value();
        else if (a == "--scheme") scheme = value();
        else if (a == "--out") out_path = value();
        else if (a == "--demo") demo_dir = value();
        else if (a == "--help" || a == "-h") return std::fputs(usage, stdout) < 0;
        else if (a.size() > 1 && a[0] == '-') usage_error("unknown option '" + a + "'");
        else inputs.push_back(a);
    }
    const char* methods[] = {"minmax", "histogram", "percentile", "mse", "entropy"};
    if (std::find(std::begin(methods), std::end(methods), method) == std::end(methods))
        usage_error("--method '" + method + "': must be minmax, histogram, percentile, mse or entropy");
    if (scheme != "u8" && scheme != "s8") usage_error("--scheme '" + scheme + "': must be u8 or s8");

    try {
        if (!demo_dir.empty()) {
            write_demo(demo_dir);
            inputs.push_back(demo_dir);
        }
        if (inputs.empty()) usage_error("no input files (or --demo DIR)");
        const std::vector<fs::path> files = expand(inputs);

        std::vector<tensor_result> results;
        std::string json;
        if (scheme == "u8") {
            constexpr auto s = lowbit::scheme<lowbit::u8>{};
            results = calibrate_all(s, method, files);
            json = to_json(results, method, "u8 affine", s.qmin(), s.qmax());
        } else {
            constexpr auto s = lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>{};
            results = calibrate_all(s, method, files);
            json = to_json(results, method, "s8 symmetric", s.qmin(), s.qmax());
        }
        std::map<std::string, std::string> seen;  // two files with one stem would share a key
        for (const tensor_result& r : results)
            if (!seen.emplace(r.name, r.file).second)
                throw std::runtime_error("'" + r.file + "' and '" + seen[r.name] + "' both give the tensor name '" +
                                         r.name + "'");

        if (out_path.empty()) {
            std::fputs(json.c_str(), stdout);
        } else {
            std::ofstream f(out_path, std::ios::binary | std::ios::trunc);
            f << json;
            f.close();
            if (!f) throw std::runtime_error("cannot write '" + out_path + "'");
            std::fprintf(stderr, "calibrate_npy: %zu tensors (%s, %s) -> %s\n", results.size(), method.c_str(),
                         scheme.c_str(), out_path.c_str());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "calibrate_npy: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
