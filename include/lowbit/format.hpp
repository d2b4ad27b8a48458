// lowbit/format.hpp: lowbit's values as text, through fmt, and a quantization report.
//
// The core stays freestanding (no <string>, no I/O), so it only has constexpr to_string()
// for its enums. Printing a scheme, its qparams or a status in a log, a test failure or a
// notebook-style summary should not mean hand-writing the same snprintf everywhere: this
// header gives fmt::formatter specializations for the core's types, and lowbit::report,
// which fake-quantizes tensors and tabulates what that costs (clipping, SQNR).
//
// Needs fmt (>= 9); link lowbit::fmt, which uses fmt::fmt-header-only. Every formatter
// accepts the standard string specs (fill, align, width), e.g. "{:>12}" on a qparams pads
// the whole "scale=... zero_point=..." text.
#ifndef LOWBIT_FORMAT_HPP
#define LOWBIT_FORMAT_HPP

#include <fmt/format.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "config.hpp"
#include "core/fake_quantize.hpp"
#include "core/fixed_point.hpp"
#include "core/format.hpp"
#include "core/layout.hpp"
#include "core/qparams.hpp"
#include "core/rounding.hpp"
#include "core/scheme.hpp"
#include "core/span.hpp"
#include "core/status.hpp"

namespace lowbit {

/// Per-channel / per-group parameters prepared for printing; make one with fmt_view().
/// Holds the view (not a copy): the arrays must outlive the formatting call.
struct channel_qparams_ref {
    qparams_view view;
    const char* noun = "channel";  ///< singular; an "s" is appended unless there is exactly one
};

/// Wraps `view` so that fmt::format("{}", fmt_view(view)) prints
///   "64 channels: scale=[0.0123, 0.0456, 0.0789, ... 0.0111] zero_point=[0, 0, 0, ... 0]"
/// Scales use fmt's shortest round-trip float form. More than 5 entries: the first 3,
/// "...", and the last. The count is scales.size(); each array is listed at its own size.
/// An empty zero_points (allowed for symmetric schemes) prints "zero_point=implicit".
/// `noun` (singular, static string, non-null) replaces "channel", e.g. "group".
constexpr channel_qparams_ref fmt_view(qparams_view view, const char* noun = "channel") noexcept {
    return {view, noun};
}

/// One line of a report: the numbers behind it, not only their text.
struct report_row {
    std::string name;
    std::string scheme;                 ///< the scheme as its fmt formatter prints it
    std::size_t param_count = 1;        ///< (scale, zero-point) pairs used: 1 per tensor
    float scale_min = 1.0f;             ///< equal to scale_max for a per-tensor row
    float scale_max = 1.0f;
    std::int32_t zero_point_min = 0;    ///< equal to zero_point_max for a per-tensor row
    std::int32_t zero_point_max = 0;
    float x_min = 0.0f;                 ///< observed range, NaN elements skipped;
    float x_max = 0.0f;                 ///< both NaN when there is no non-NaN element
    std::size_t size = 0;               ///< number of elements
    std::size_t clipped = 0;            ///< elements whose straight-through mask is 0
    double clipped_fraction = 0.0;      ///< clipped / size; 0 when size == 0
    double sqnr_db = 0.0;               ///< see report::add
};

/// A quantization report: one row per (tensor, scheme, qparams) added, each measured by
/// fake-quantizing the tensor with lowbit::ref::fake_quantize; str() / print() / fmt
/// format it as an aligned table:
///
///   name  scheme                                        scale  zero_point  range    clipped  SQNR dB
///   w     s4 affine per_tensor [-8, 7] torch half_even    0.5           0  [-6, 5]   37.50%    11.64
class report {
public:
    /// Adds the row of tensor `x` fake-quantized per tensor with (`s`, `qp`):
    ///   clipped  = elements whose straight-through mask is 0 (zero_point + round(x / scale)
    ///              outside [qmin, qmax] before clamping, or x non-finite), as a count and
    ///              a fraction of x.size();
    ///   sqnr_db  = 10 * log10(sum x^2 / sum (x - fq(x))^2), sums in double.
    /// Edges: the error sum is 0 (exact reproduction, which includes all-zero x, as 0 is
    /// always representable, and empty x): sqnr_db = +inf. A NaN or Inf in x makes sqnr_db
    /// NaN (it is still counted as clipped, and skipped by the observed range).
    /// Errors (status, or lowbit::error with exceptions; no row is added): invalid scheme
    /// or qparams as for ref::fake_quantize; a scheme that is not per_tensor (use the
    /// overload with a shape).
    template <class Scheme>
    status add(std::string name, const Scheme& s, qparams qp, span<const float> x) {
        LOWBIT_DETAIL_CHECK(s.granularity() == granularity::per_tensor, errc::invalid_argument,
                            "scheme.granularity()", static_cast<int>(s.granularity()),
                            "must be per_tensor with one qparams (pass a shape and a qparams_view otherwise)");
        std::vector<float> y(x.size());
        std::vector<std::uint8_t> mask(x.size());
        LOWBIT_DETAIL_TRY(ref::fake_quantize(s, qp, x, span<float>(y), span<std::uint8_t>(mask)));
        report_row row = measure(std::move(name), ::fmt::format("{}", s), x, y, mask);
        row.scale_min = row.scale_max = qp.scale;
        row.zero_point_min = row.zero_point_max = qp.zero_point;
        m_rows.push_back(std::move(row));
        return {};
    }

    /// Adds the row of tensor `x` (of shape `shp`) fake-quantized per channel or per group
    /// (or per tensor, with one-entry views) with (`s`, `qp`). Same measures and edges as
    /// above; scale_min/max and zero_point_min/max span all channels / groups (a symmetric
    /// scheme's empty zero_points count as its implicit zero-point). Errors: as
    /// ref::fake_quantize with a shape (scheme, layout, parameter counts, x.size()).
    template <class Scheme>
    status add(std::string name, const Scheme& s, const shape& shp, qparams_view qp, span<const float> x) {
        std::vector<float> y(x.size());
        std::vector<std::uint8_t> mask(x.size());
        LOWBIT_DETAIL_TRY(ref::fake_quantize(s, shp, qp, x, span<float>(y), span<std::uint8_t>(mask)));
        report_row row = measure(std::move(name), ::fmt::format("{}", s), x, y, mask);
        row.param_count = qp.scales.size();
        for (std::size_t i = 0; i < qp.scales.size(); ++i) {  // fake_quantize checked: >= 1 entry
            const qparams p = detail::param(s, qp, i);
            row.scale_min = i == 0 || p.scale < row.scale_min ? p.scale : row.scale_min;
            row.scale_max = i == 0 || p.scale > row.scale_max ? p.scale : row.scale_max;
            row.zero_point_min = i == 0 || p.zero_point < row.zero_point_min ? p.zero_point : row.zero_point_min;
            row.zero_point_max = i == 0 || p.zero_point > row.zero_point_max ? p.zero_point : row.zero_point_max;
        }
        m_rows.push_back(std::move(row));
        return {};
    }

    /// The rows, in the order they were added.
    const std::vector<report_row>& rows() const noexcept { return m_rows; }
    /// Removes every row.
    void clear() noexcept { m_rows.clear(); }

    /// The table: a header line, then one line per row, each ending in '\n'; columns
    /// separated by two spaces and padded to their widest cell. Numbers are shortened for
    /// reading (6 significant digits, clipped as a percentage, SQNR with 2 decimals, "inf"
    /// for exact reproduction); rows() has them at full precision. No rows: header only.
    std::string str() const {
        constexpr std::size_t ncol = 7;
        const char* const header[ncol] = {"name", "scheme", "scale", "zero_point", "range", "clipped", "SQNR dB"};
        const bool right[ncol] = {false, false, true, true, false, true, true};
        std::vector<std::vector<std::string>> cells;
        cells.reserve(m_rows.size());
        for (const report_row& r : m_rows) {
            cells.push_back({
                r.name,
                r.scheme,
                r.scale_min == r.scale_max ? ::fmt::format("{:.6g}", r.scale_min)
                                           : ::fmt::format("{:.6g}..{:.6g}", r.scale_min, r.scale_max),
                r.zero_point_min == r.zero_point_max ? ::fmt::format("{}", r.zero_point_min)
                                                     : ::fmt::format("{}..{}", r.zero_point_min, r.zero_point_max),
                ::fmt::format("[{:.6g}, {:.6g}]", r.x_min, r.x_max),
                ::fmt::format("{:.2f}%", 100.0 * r.clipped_fraction),
                ::fmt::format("{:.2f}", r.sqnr_db),
            });
        }
        std::size_t width[ncol];
        for (std::size_t c = 0; c < ncol; ++c) {
            width[c] = ::fmt::string_view(header[c]).size();
            for (const auto& line : cells) width[c] = line[c].size() > width[c] ? line[c].size() : width[c];
        }
        std::string out;
        auto emit = [&](auto cell_of) {
            std::string line;
            for (std::size_t c = 0; c < ncol; ++c) {
                const ::fmt::string_view cell = cell_of(c);
                if (c > 0) line += "  ";
                const std::string pad(width[c] - cell.size(), ' ');
                if (right[c]) line += pad;
                line.append(cell.data(), cell.size());
                if (!right[c] && c + 1 < ncol) line += pad;
            }
            while (!line.empty() && line.back() == ' ') line.pop_back();
            out += line;
            out += '\n';
        };
        emit([&](std::size_t c) { return ::fmt::string_view(header[c]); });
        for (const auto& line : cells) emit([&](std::size_t c) { return ::fmt::string_view(line[c]); });
        return out;
    }

    /// Writes str() to `f` (non-null, open for writing).
    void print(std::FILE* f = stdout) const { ::fmt::print(f, "{}", str()); }

private:
    static report_row measure(std::string name, std::string scheme_text, span<const float> x,
                              const std::vector<float>& y, const std::vector<std::uint8_t>& mask) {
        report_row row;
        row.name = std::move(name);
        row.scheme = std::move(scheme_text);
        row.size = x.size();
        const float nan = std::numeric_limits<float>::quiet_NaN();
        float lo = nan, hi = nan;
        double signal = 0.0, noise = 0.0;
        for (std::size_t k = 0; k < x.size(); ++k) {
            const float v = x[k];
            if (!detail::is_nan(v)) {
                lo = detail::is_nan(lo) || v < lo ? v : lo;
                hi = detail::is_nan(hi) || v > hi ? v : hi;
            }
            const double xv = static_cast<double>(v);
            const double e = xv - static_cast<double>(y[k]);
            signal += xv * xv;
            noise += e * e;
            row.clipped += mask[k] == 0 ? 1u : 0u;
        }
        row.x_min = lo;
        row.x_max = hi;
        row.clipped_fraction = x.empty() ? 0.0 : static_cast<double>(row.clipped) / static_cast<double>(x.size());
        row.sqnr_db = noise == 0.0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(signal / noise);
        return row;
    }

    std::vector<report_row> m_rows;
};

namespace detail {
// Base of lowbit's formatters: the standard string specs (fill, align, width, precision as
// truncation) applied to the text of the value.
using fmt_text_formatter = ::fmt::formatter<::fmt::string_view>;

template <class FormatContext>
auto fmt_text(const fmt_text_formatter& f, ::fmt::string_view text, FormatContext& ctx) -> decltype(ctx.out()) {
    return f.format(text, ctx);
}

// "[a, b, c, ... z]": all entries up to 5, else the first 3, "...", and the last.
template <class T>
void fmt_list(::fmt::memory_buffer& out, span<const T> v) {
    auto it = std::back_inserter(out);
    ::fmt::format_to(it, "[");
    const std::size_t n = v.size();
    const bool elide = n > 5;
    for (std::size_t i = 0; i < n; ++i) {
        if (elide && i == 3) {
            ::fmt::format_to(it, ", ... ");
            i = n - 1;
        } else if (i > 0) {
            ::fmt::format_to(it, ", ");
        }
        ::fmt::format_to(it, "{}", v[i]);
    }
    ::fmt::format_to(it, "]");
}
}  // namespace detail

}  // namespace lowbit

namespace fmt {

/// "s8", "u8", "s4", "u4", "s32".
template <>
struct formatter<lowbit::format_id> : lowbit::detail::fmt_text_formatter {
    template <class FormatContext>
    auto format(lowbit::format_id v, FormatContext& ctx) const -> decltype(ctx.out()) {
        return lowbit::detail::fmt_text(*this, lowbit::to_string(v), ctx);
    }
};

/// "affine", "symmetric", "symmetric_narrow".
template <>
struct formatter<lowbit::symmetry> : lowbit::detail::fmt_text_formatter {
    template <class FormatContext>
    auto format(lowbit::symmetry v, FormatContext& ctx) const -> decltype(ctx.out()) {
        return lowbit::detail::fmt_text(*this, lowbit::to_string(v), ctx);
    }
};

/// "per_tensor", "per_channel", "per_group".
template <>
struct formatter<lowbit::granularity> : lowbit::detail::fmt_text_formatter {
    template <class FormatContext>
    auto format(lowbit::granularity v, FormatContext& ctx) const -> decltype(ctx.out()) {
        return lowbit::detail::fmt_text(*this, lowbit::to_string(v), ctx);
    }
};

/// "torch", "torch_fused", "tflite".
template <>
struct formatter<lowbit::profile> : lowbit::detail::fmt_text_formatter {
    template <class FormatContext>
    auto format(lowbit::profile v, FormatContext& ctx) const -> decltype(ctx.out()) {
        return lowbit::detail::fmt_text(*this, lowbit::to_string(v), ctx);
    }
};

/// "half_even", "half_away", "stochastic".
template <>
struct formatter<lowbit::rounding> : lowbit::detail::fmt_text_formatter {
    template <class FormatContext>
    auto format(lowbit::rounding v, FormatContext& ctx) const -> decltype(ctx.out()) {
        return lowbit::detail::fmt_text(*this, lowbit::to_string(v), ctx);
    }
};

/// "double_rounding", "single_rounding".
template <>
struct formatter<lowbit::requant_rounding> : lowbit::detail::fmt_text_formatter {
    template <class FormatContext>
    auto format(lowbit::requant_rounding v, FormatContext& ctx) const -> decltype(ctx.out()) {
        return lowbit::detail::fmt_text(*this, lowbit::to_string(v), ctx);
    }
};

/// "ok", "invalid argument", "size mismatch", "out of range", "overflow"; "unknown" for a
/// value outside the enum.
template <>
struct formatter<lowbit::errc> : lowbit::detail::fmt_text_formatter {
    template <class FormatContext>
    auto format(lowbit::errc v, FormatContext& ctx) const -> decltype(ctx.out()) {
        return lowbit::detail::fmt_text(*this, lowbit::to_string(v), ctx);
    }
};

/// "ok", or "<code>: '<argument>' = <value>: <expected>", e.g.
/// "invalid argument: 'scale' = -1: must be finite and > 0 ...". The value is printed
/// with %.9g, like lowbit::error::message (which adds "lowbit: " and "argument ").
template <>
struct formatter<lowbit::status> : lowbit::detail::fmt_text_formatter {
    template <class FormatContext>
    auto format(const lowbit::status& s, FormatContext& ctx) const -> decltype(ctx.out()) {
        if (s.ok()) return lowbit::detail::fmt_text(*this, "ok", ctx);
        const std::string text = ::fmt::format("{}: '{}' = {:.9g}: {}", lowbit::to_string(s.code),
                                               s.argument ? s.argument : "", s.value, s.expected ? s.expected : "");
        return lowbit::detail::fmt_text(*this, text, ctx);
    }
};

/// "scale=0.0117647061 zero_point=-43": the scale with 9 significant digits (%.9g), enough
/// to read the same float back.
template <>
struct formatter<lowbit::qparams> : lowbit::detail::fmt_text_formatter {
    template <class FormatContext>
    auto format(const lowbit::qparams& qp, FormatContext& ctx) const -> decltype(ctx.out()) {
        const std::string text = ::fmt::format("scale={:.9g} zero_point={}", qp.scale, qp.zero_point);
        return lowbit::detail::fmt_text(*this, text, ctx);
    }
};

/// "multiplier=1717986918 shift=-3 (~0.1)": the integer pair and, after "~", the real
/// value multiplier * 2^(shift - 31) to 6 significant digits.
template <>
struct formatter<lowbit::quantized_multiplier> : lowbit::detail::fmt_text_formatter {
    template <class FormatContext>
    auto format(const lowbit::quantized_multiplier& m, FormatContext& ctx) const -> decltype(ctx.out()) {
        const double real = std::ldexp(static_cast<double>(m.multiplier), m.shift - 31);
        const std::string text = ::fmt::format("multiplier={} shift={} (~{:.6g})", m.multiplier, m.shift, real);
        return lowbit::detail::fmt_text(*this, text, ctx);
    }
};

/// "<format> <symmetry> <granularity> [qmin, qmax][ reduce_range] <profile> <rounding>[ eps=<eps>]"
/// e.g. "s8 affine per_tensor [-128, 127] torch half_even",
///      "s4 symmetric per_group(axis=1, group=32) [-8, 7] torch half_even",
///      "u8 affine per_channel(axis=0) [0, 127] reduce_range torch_fused half_even eps=0.001".
/// The range is the effective one (after reduce_range). Stochastic rounding shows its
/// seed, "stochastic(seed=7)"; eps appears only when it is not default_eps. The scheme is
/// printed as configured, valid or not (no validate()).
template <class Format, lowbit::symmetry Sym>
struct formatter<lowbit::scheme<Format, Sym>> : lowbit::detail::fmt_text_formatter {
    template <class FormatContext>
    auto format(const lowbit::scheme<Format, Sym>& s, FormatContext& ctx) const -> decltype(ctx.out()) {
        ::fmt::memory_buffer buf;
        auto it = std::back_inserter(buf);
        ::fmt::format_to(it, "{} {} ", lowbit::to_string(Format::id), lowbit::to_string(Sym));
        switch (s.granularity()) {
            case lowbit::granularity::per_tensor: ::fmt::format_to(it, "per_tensor"); break;
            case lowbit::granularity::per_channel: ::fmt::format_to(it, "per_channel(axis={})", s.axis()); break;
            case lowbit::granularity::per_group:
                ::fmt::format_to(it, "per_group(axis={}, group={})", s.axis(), s.group_size());
                break;
        }
        ::fmt::format_to(it, " [{}, {}]", s.qmin(), s.qmax());
        if (s.reduce_range()) ::fmt::format_to(it, " reduce_range");
        ::fmt::format_to(it, " {} {}", lowbit::to_string(s.profile()), lowbit::to_string(s.rounding()));
        if (s.rounding() == lowbit::rounding::stochastic) ::fmt::format_to(it, "(seed={})", s.seed());
        if (s.eps() != lowbit::default_eps) ::fmt::format_to(it, " eps={}", s.eps());
        return lowbit::detail::fmt_text(*this, ::fmt::string_view(buf.data(), buf.size()), ctx);
    }
};

/// See lowbit::fmt_view.
template <>
struct formatter<lowbit::channel_qparams_ref> : lowbit::detail::fmt_text_formatter {
    template <class FormatContext>
    auto format(const lowbit::channel_qparams_ref& r, FormatContext& ctx) const -> decltype(ctx.out()) {
        ::fmt::memory_buffer buf;
        auto it = std::back_inserter(buf);
        const std::size_t n = r.view.scales.size();
        ::fmt::format_to(it, "{} {}{}: scale=", n, r.noun, n == 1 ? "" : "s");
        lowbit::detail::fmt_list(buf, r.view.scales);
        ::fmt::format_to(it, " zero_point=");
        if (r.view.zero_points.empty())
            ::fmt::format_to(it, "implicit");
        else
            lowbit::detail::fmt_list(buf, r.view.zero_points);
        return lowbit::detail::fmt_text(*this, ::fmt::string_view(buf.data(), buf.size()), ctx);
    }
};

/// The table of lowbit::report::str().
template <>
struct formatter<lowbit::report> : lowbit::detail::fmt_text_formatter {
    template <class FormatContext>
    auto format(const lowbit::report& r, FormatContext& ctx) const -> decltype(ctx.out()) {
        return lowbit::detail::fmt_text(*this, r.str(), ctx);
    }
};

}  // namespace fmt

#endif  // LOWBIT_FORMAT_HPP
