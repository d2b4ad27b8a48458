// report.hpp (ptq_vs_qat): the comparison table (printed), its CSV, and the SVG chart.
#ifndef LOWBIT_EXAMPLES_REPORT_HPP
#define LOWBIT_EXAMPLES_REPORT_HPP

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace demo {

/// One column of the table.
struct variant {
    std::string name;     ///< column header (short)
    std::string section;  ///< table section it is printed in
    std::string family;   ///< FP32, PTQ or QAT
    std::string config;   ///< W8A8, W4A8, W4A4, W4 (weight only), mixed, f32
    double accuracy = 0;  ///< test accuracy of the deployed (integer) model
    double sim_accuracy = std::numeric_limits<double>::quiet_NaN();  ///< of the fake-quant simulation
    double drop_control = std::numeric_limits<double>::quiet_NaN();  ///< QAT: vs the f32 fine-tuned control
    double seconds = 0;   ///< time to produce (calibration or fine-tuning; training for FP32)
    std::size_t samples = 0;
    std::size_t bytes = 0;
    double ms_per_1000 = 0;  ///< inference time per 1000 test images, single thread
    std::string stored;      ///< what the size counts
};

inline std::string fmt(const char* f, double v) {
    if (std::isnan(v)) return "-";
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

/// Prints the table: one column per variant, in sections; rows as the issue lists them.
inline void print_table(const std::vector<variant>& vs, double fp32_accuracy, double fp32_ms) {
    std::vector<std::string> sections;
    for (const variant& v : vs)
        if (std::find(sections.begin(), sections.end(), v.section) == sections.end()) sections.push_back(v.section);
    for (const std::string& sec : sections) {
        std::vector<const variant*> cols;
        for (const variant& v : vs)
            if (v.section == sec) cols.push_back(&v);
        std::printf("\n%s\n", sec.c_str());
        auto row = [&](const char* label, auto cell) {
            std::printf("%-26s", label);
            for (const variant* v : cols) std::printf(" %13s", cell(*v).c_str());
            std::printf("\n");
        };
        row("", [](const variant& v) { return v.name; });
        row("test accuracy %", [](const variant& v) { return fmt("%.2f", 100 * v.accuracy); });
        row("  fake-quant simulation %", [](const variant& v) { return fmt("%.2f", 100 * v.sim_accuracy); });
        row("drop vs FP32 (points)", [&](const variant& v) { return fmt("%+.2f", 100 * (fp32_accuracy - v.accuracy)); });
        row("drop vs FP32 control", [](const variant& v) { return fmt("%+.2f", 100 * v.drop_control); });
        row("time to produce (s)", [](const variant& v) { return fmt("%.2f", v.seconds); });
        row("samples used", [](const variant& v) { return std::to_string(v.samples); });
        row("model size (bytes)", [](const variant& v) { return std::to_string(v.bytes); });
        row("size reduction (x)", [&](const variant& v) { return fmt("%.2f", double(vs.front().bytes) / double(v.bytes)); });
        row("inference ms / 1000 img", [](const variant& v) { return fmt("%.3f", v.ms_per_1000); });
        row("speedup vs f32 path (x)", [&](const variant& v) { return fmt("%.2f", fp32_ms / v.ms_per_1000); });
    }
}

inline void write_csv(const std::string& path, const std::vector<variant>& vs, double fp32_accuracy, double fp32_ms) {
    std::ofstream f(path);
    if (!f) throw std::runtime_error("cannot write '" + path + "'");
    f << "variant,family,config,test_accuracy,sim_accuracy,drop_vs_fp32_points,drop_vs_control_points,seconds,"
         "samples,bytes,size_reduction,ms_per_1000_images,speedup_vs_f32,stored\n";
    for (const variant& v : vs)
        f << v.name << ',' << v.family << ',' << v.config << ',' << fmt("%.4f", v.accuracy) << ','
          << fmt("%.4f", v.sim_accuracy) << ',' << fmt("%.2f", 100 * (fp32_accuracy - v.accuracy)) << ','
          << fmt("%.2f", 100 * v.drop_control) << ',' << fmt("%.3f", v.seconds) << ',' << v.samples << ','
          << v.bytes << ',' << fmt("%.3f", double(vs.front().bytes) / double(v.bytes)) << ','
          << fmt("%.4f", v.ms_per_1000) << ',' << fmt("%.3f", fp32_ms / v.ms_per_1000) << ",\"" << v.stored
          << "\"\n";
}

/// A line of the drop chart: its name, colour and the drop (points) at W8A8, W4A8, W4A4.
struct chart_line {
    std::string name, colour;
    double drop[3];
};

/// A calibrator's clipping range on the histogram panel.
struct clip_marker {
    std::string name, colour;
    double lo, hi;
};

/// Two panels: accuracy drop vs bits (PTQ and QAT lines), and the histogram of one
/// activation (log counts) with the clipping range each calibrator chose.
inline void write_svg(const std::string& path, const std::vector<chart_line>& lines, const std::string& hist_title,
                      const std::vector<float>& values, const std::vector<clip_marker>& clips) {
    std::ofstream f(path);
    if (!f) throw std::runtime_error("cannot write '" + path + "'");
    const double W = 980, H = 420;
    f << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H
      << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
    // panel 1: drop vs bits
    const double x0 = 60, y0 = 40, pw = 360, ph = 300;
    double ymax = 1.0;
    for (const chart_line& l : lines)
        for (double d : l.drop)
            if (std::isfinite(d)) ymax = std::max(ymax, d);
    ymax = std::ceil(ymax);
    auto px = [&](int i) { return x0 + pw * (0.1 + 0.4 * i); };
    auto py = [&](double d) { return y0 + ph - ph * std::max(0.0, d) / ymax; };
    f << "<text x='" << x0 << "' y='20' font-size='14'>Test accuracy drop vs FP32 (points)</text>\n";
    f << "<rect x='" << x0 << "' y='" << y0 << "' width='" << pw << "' height='" << ph
      << "' fill='none' stroke='#444'/>\n";
    for (int t = 0; t <= 4; ++t) {
        const double d = ymax * t / 4;
        f << "<text x='" << x0 - 8 << "' y='" << py(d) + 4 << "' text-anchor='end'>" << fmt("%.1f", d) << "</text>\n";
        f << "<line x1='" << x0 << "' x2='" << x0 + pw << "' y1='" << py(d) << "' y2='" << py(d)
          << "' stroke='#ddd'/>\n";
    }
    const char* cfg[3] = {"W8A8", "W4A8", "W4A4"};
    for (int i = 0; i < 3; ++i)
        f << "<text x='" << px(i) << "' y='" << y0 + ph + 18 << "' text-anchor='middle'>" << cfg[i] << "</text>\n";
    double ly = y0 + 14;
    for (const chart_line& l : lines) {
        std::string pts;
        for (int i = 0; i < 3; ++i)
            if (std::isfinite(l.drop[i])) pts += fmt("%.1f", px(i)) + "," + fmt("%.1f", py(l.drop[i])) + " ";
        f << "<polyline fill='none' stroke='" << l.colour << "' stroke-width='2' points='" << pts << "'/>\n";
        for (int i = 0; i < 3; ++i)
            if (std::isfinite(l.drop[i]))
                f << "<circle cx='" << px(i) << "' cy='" << py(l.drop[i]) << "' r='3' fill='" << l.colour << "'/>\n";
        f << "<text x='" << x0 + 10 << "' y='" << ly << "' fill='" << l.colour << "'>" << l.name << "</text>\n";
        ly += 15;
    }
    // panel 2: histogram
    const double h0 = 540, hw = 400;
    float vmax = 0;
    for (float v : values) vmax = std::max(vmax, v);
    double xmax = vmax;
    for (const clip_marker& c : clips) xmax = std::max(xmax, c.hi);
    xmax *= 1.02;
    const int bins = 100;
    std::vector<double> counts(bins, 0.0);
    for (float v : values) counts[std::min<std::size_t>(bins - 1, std::size_t(double(v) / xmax * bins))] += 1;
    const double cmax = std::log10(1 + *std::max_element(counts.begin(), counts.end()));
    f << "<text x='" << h0 << "' y='20' font-size='14'>" << hist_title << "</text>\n";
    f << "<rect x='" << h0 << "' y='" << y0 << "' width='" << hw << "' height='" << ph
      << "' fill='none' stroke='#444'/>\n";
    for (int b = 0; b < bins; ++b) {
        const double hgt = ph * std::log10(1 + counts[std::size_t(b)]) / cmax;
        f << "<rect x='" << h0 + hw * b / bins << "' y='" << y0 + ph - hgt << "' width='" << hw / bins
          << "' height='" << hgt << "' fill='#9ab'/>\n";
    }
    for (int t = 0; t <= 4; ++t)
        f << "<text x='" << h0 + hw * t / 4 << "' y='" << y0 + ph + 18 << "' text-anchor='middle'>"
          << fmt("%.2f", xmax * t / 4) << "</text>\n";
    ly = y0 + 14;
    for (const clip_marker& c : clips) {
        const double x = h0 + hw * c.hi / xmax;
        f << "<line x1='" << x << "' x2='" << x << "' y1='" << y0 << "' y2='" << y0 + ph << "' stroke='" << c.colour
          << "' stroke-width='2' stroke-dasharray='5,3'/>\n";
        f << "<text x='" << h0 + hw - 8 << "' y='" << ly << "' text-anchor='end' fill='" << c.colour << "'>" << c.name
          << " clips at " << fmt("%.2f", c.hi) << "</text>\n";
        ly += 15;
    }
    f << "<text x='" << h0 << "' y='" << y0 + ph + 36 << "'>log(1 + count) per bin; dashed: upper end of each "
         "calibrator's range</text>\n";
    f << "</svg>\n";
}

}  // namespace demo

#endif  // LOWBIT_EXAMPLES_REPORT_HPP
