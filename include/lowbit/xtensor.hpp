// lowbit/xtensor.hpp: the xtensor adapter — any xexpression in, xtensor containers out.
//
// Why it exists: lowbit's core takes spans and caller-owned buffers so that it runs without
// a heap, but code that keeps its tensors in xtensor wants to hand over whatever it has (a
// container, a transpose, a strided view, a column-major array, a lazy `a * b`) and get a
// container back. Every function here evaluates its input into a row-major contiguous
// buffer (no copy when the input already is one), calls the lowbit::ref kernel on it, and
// returns an xt::xarray. Results are therefore bit-identical to the span API applied to the
// row-major copy of the input; "flat index k" below always means row-major order (it is
// also the element index stochastic rounding hashes).
//
// It also reads and writes NumPy .npy files. Writing uses xtensor's xt::dump_npy. Reading
// parses the header itself, because xtensor 0.24's xt::load_npy misreads header lengths
// whose low byte is >= 0x80 (it cannot read back its own files for long shapes) and does
// not notice a truncated file (it returns uninitialised memory).
//
// The adapter reports every error by throwing lowbit::error (npy_error for files), so it
// needs exceptions. Other lowbit headers remain usable without them.
#ifndef LOWBIT_XTENSOR_HPP
#define LOWBIT_XTENSOR_HPP

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "config.hpp"
#include "core/fake_quantize.hpp"
#include "core/format.hpp"
#include "core/int4.hpp"
#include "core/layout.hpp"
#include "core/qparams.hpp"
#include "core/quantize.hpp"
#include "core/scheme.hpp"
#include "core/span.hpp"
#include "core/status.hpp"

#if LOWBIT_NO_EXCEPTIONS
#error "lowbit/xtensor.hpp reports errors by throwing lowbit::error: it needs exceptions enabled"
#endif

// xtensor 0.24's headers trip -Wconversion / -Wsign-conversion / -Wshadow. They are quiet
// when found in a system directory (/usr/include), not when installed elsewhere (-I).
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wshadow"
#endif
#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xexpression.hpp>
#include <xtensor/xnpy.hpp>
#include <xtensor/xtensor.hpp>
#include <xtl/xplatform.hpp>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace lowbit {
namespace xtensor {

/// The containers this adapter returns: xt::xarray with row-major layout (the same type as
/// xt::xarray<T> unless XTENSOR_DEFAULT_LAYOUT was changed).
template <class T>
using array = xt::xarray<T, xt::layout_type::row_major>;

/// Per-channel / per-group parameters, shaped as layout.hpp describes: per_channel {C}
/// (C = x.shape()[axis]); per_group x's shape with dimension `axis` divided by group_size;
/// per_tensor a 0-d array (one element). zero_points has the shape of scales, or size 0
/// (e.g. shape {0}) for a symmetric scheme, whose own zero-point is then used.
struct channel_qparams {
    array<float> scales;
    array<std::int32_t> zero_points;
};

/// Thrown by load_npy / save_npy. A lowbit::error whose status() names the argument "path"
/// and whose what() names the file and what was wrong with it (missing, not a .npy file,
/// wrong dtype, truncated, unwritable).
class npy_error : public lowbit::error {
public:
    npy_error(const lowbit::status& st, const std::string& file, const std::string& message)
        : lowbit::error(st), m_message(message), m_path(file) {}
    const char* what() const noexcept override { return m_message.what(); }
    /// The file the operation was about.
    const char* path() const noexcept { return m_path.what(); }

private:
    std::runtime_error m_message;  // runtime_error: a string with a copy that cannot throw
    std::runtime_error m_path;
};

namespace detail {

// The channel_qparams overloads take the table as a deduced parameter constrained to
// channel_qparams, so that a braced `{scale, zero_point}` argument selects the qparams
// overload instead of being ambiguous (xt::xarray converts from a scalar).
template <class P>
using if_table = std::enable_if_t<std::is_same<P, channel_qparams>::value, int>;

[[noreturn]] inline void raise(errc code, const char* argument, double value, const char* expected) {
    throw lowbit::error(lowbit::status{code, argument, value, expected});
}

// Core functions throw by themselves when exceptions are on; this catches any status that
// would still come back (it cannot with exceptions enabled, but costs nothing).
inline void check(const lowbit::status& st) {
    if (!st.ok()) throw lowbit::error(st);
}

template <class E, class = void>
struct has_strided_data : std::false_type {};
template <class E>
struct has_strided_data<
    E, std::void_t<decltype(std::declval<const E&>().data()), decltype(std::declval<const E&>().strides()),
                   decltype(std::declval<const E&>().data_offset())>> : std::true_type {};

// True if the strided expression `e` lays its elements out row-major and contiguously from
// data() + data_offset() (dimensions of extent 1 may have any stride, xtensor uses 0).
template <class E>
bool is_row_major_contiguous(const E& e) {
    const auto& dims = e.shape();
    const auto& strides = e.strides();
    std::size_t expected = 1;
    for (std::size_t i = dims.size(); i-- > 0;) {
        const std::size_t n = static_cast<std::size_t>(dims[i]);
        if (n == 0) return true;
        if (n != 1 && static_cast<std::ptrdiff_t>(strides[i]) != static_cast<std::ptrdiff_t>(expected)) return false;
        expected *= n;
    }
    return true;
}

// The elements of an expression as a row-major contiguous span of T: borrowed when the
// expression already is one with value type T, else evaluated (static_cast to T) into an
// owned copy. Not copyable or movable: the span may point into the object.
template <class T>
class row_major_buffer {
public:
    template <class E>
    explicit row_major_buffer(const E& e) {
        m_dims.assign(e.shape().begin(), e.shape().end());
        if constexpr (has_strided_data<E>::value) {
            using pointee = std::remove_cv_t<std::remove_pointer_t<decltype(e.data())>>;
            if constexpr (std::is_same<pointee, T>::value) {
                if (is_row_major_contiguous(e)) {
                    m_data = e.data() + e.data_offset();
                    m_size = static_cast<std::size_t>(e.size());
                    return;
                }
            }
        }
        if constexpr (std::is_same<std::decay_t<typename E::value_type>, T>::value)
            m_owned = e;
        else
            m_owned = xt::cast<T>(e);
        m_data = m_owned.data();
        m_size = m_owned.size();
    }
    row_major_buffer(const row_major_buffer&) = delete;
    row_major_buffer& operator=(const row_major_buffer&) = delete;

    span<const T> view() const noexcept { return {m_size == 0 ? nullptr : m_data, m_size}; }
    std::size_t size() const noexcept { return m_size; }
    const std::vector<std::size_t>& dims() const noexcept { return m_dims; }
    /// lowbit's shape (rank > 8 becomes an invalid shape that the core rejects).
    lowbit::shape shape() const noexcept { return lowbit::shape(m_dims.data(), m_dims.size()); }

private:
    std::vector<std::size_t> m_dims;
    array<T> m_owned;
    const T* m_data = nullptr;
    std::size_t m_size = 0;
};

// "must hold values in [lo, hi] (format)", for messages about integer inputs.
template <class Format>
constexpr const char* range_text() noexcept {
    switch (Format::id) {
        case format_id::s8: return "must hold s8 values, in [-128, 127]";
        case format_id::u8: return "must hold u8 values, in [0, 255]";
        case format_id::s4: return "must hold s4 values, in [-8, 7]";
        case format_id::u4: return "must hold u4 values, in [0, 15]";
        case format_id::s32: return "must hold s32 values";
    }
    return "must hold values of the scheme's format";
}

template <class U>
constexpr bool in_range(U v, long long lo, long long hi) noexcept {
    if constexpr (std::is_signed<U>::value) {
        return static_cast<long long>(v) >= lo && static_cast<long long>(v) <= hi;
    } else {
        return (lo <= 0 || static_cast<unsigned long long>(v) >= static_cast<unsigned long long>(lo)) &&
               (hi >= 0 && static_cast<unsigned long long>(v) <= static_cast<unsigned long long>(hi));
    }
}

// Integer elements of an expression, checked to lie in [lo, hi], as a row-major span of V.
template <class V, class E>
class checked_integers {
    using source_type = std::decay_t<typename E::value_type>;
    static_assert(std::is_integral<source_type>::value,
                  "lowbit::xtensor: this argument must hold integers (e.g. the result of quantize)");

public:
    checked_integers(const E& e, long long lo, long long hi, const char* name, const char* expected) : m_source(e) {
        const span<const source_type> src = m_source.view();
        for (std::size_t k = 0; k < src.size(); ++k)
            if (!in_range(src[k], lo, hi)) raise(errc::invalid_argument, name, static_cast<double>(src[k]), expected);
        if constexpr (!std::is_same<source_type, V>::value) {
            m_converted.resize(src.size());
            for (std::size_t k = 0; k < src.size(); ++k) m_converted[k] = static_cast<V>(src[k]);
        }
    }

    span<const V> view() const noexcept {
        if constexpr (std::is_same<source_type, V>::value)
            return m_source.view();
        else
            return {m_converted.data(), m_converted.size()};
    }
    const row_major_buffer<source_type>& source() const noexcept { return m_source; }

private:
    row_major_buffer<source_type> m_source;
    std::vector<V> m_converted;
};

template <class Scheme>
void require_per_tensor(const Scheme& s) {
    if (s.granularity() != granularity::per_tensor)
        raise(errc::invalid_argument, "s.granularity()", static_cast<double>(s.granularity()),
              "must be per_tensor with a single lowbit::qparams; use channel_qparams (choose_channel_qparams) "
              "for per_channel / per_group");
}

// Dimensions of the parameter table of a tensor of `dims` under scheme `s`.
template <class Scheme>
std::vector<std::size_t> table_dims(const Scheme& s, const quant_layout& l, const std::vector<std::size_t>& dims) {
    switch (l.granularity) {
        case granularity::per_tensor: return {};
        case granularity::per_channel: return {l.channels};
        case granularity::per_group: {
            std::vector<std::size_t> t = dims;
            t[s.axis()] /= l.group_size;
            return t;
        }
    }
    return {};
}

template <class S>
bool same_dims(const S& a, const std::vector<std::size_t>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < b.size(); ++i)
        if (static_cast<std::size_t>(a[i]) != b[i]) return false;
    return true;
}

// Layout of the input (throws on rank > 8, axis out of range, group not dividing).
template <class Scheme>
quant_layout layout_of(const Scheme& s, const lowbit::shape& shp) {
    check(s.validate());
    const result<quant_layout> l = make_layout(s, shp);
    check(l.status());
    return *l;
}

// Checks that a channel_qparams table fits the input, and views it for the core.
template <class Scheme>
qparams_view table_view(const Scheme& s, const channel_qparams& qp, const std::vector<std::size_t>& dims) {
    const quant_layout l = layout_of(s, lowbit::shape(dims.data(), dims.size()));
    const bool fits = l.granularity == granularity::per_tensor ? qp.scales.size() == 1
                                                               : same_dims(qp.scales.shape(), table_dims(s, l, dims));
    if (!fits)
        raise(errc::size_mismatch, "qp.scales", static_cast<double>(qp.scales.size()),
              "must have the parameter-table shape of the input: {shape[axis]} per channel; the input's shape with "
              "shape[axis] / group_size per group; one element per tensor");
    if (qp.zero_points.size() != 0) {
        const auto& zd = qp.zero_points.shape();
        const auto& sd = qp.scales.shape();
        bool same = zd.size() == sd.size();
        for (std::size_t i = 0; same && i < sd.size(); ++i) same = zd[i] == sd[i];
        if (!same)
            raise(errc::size_mismatch, "qp.zero_points", static_cast<double>(qp.zero_points.size()),
                  "must have the shape of qp.scales, or size 0 for a symmetric scheme");
    }
    qparams_view v;
    v.scales = span<const float>(qp.scales.data(), qp.scales.size());
    if (qp.zero_points.size() != 0)
        v.zero_points = span<const std::int32_t>(qp.zero_points.data(), qp.zero_points.size());
    return v;
}

// Unpacks a 4-bit buffer into one value per element.
template <class Format>
void unpack_into(span<const std::uint8_t> packed, span<typename Format::value_type> values) {
    if constexpr (Format::is_signed)
        check(ref::unpack_s4(packed, values));
    else
        check(ref::unpack_u4(packed, values));
}

// Packs 4-bit values (already range-checked).
template <class Format>
void pack_into(span<const typename Format::value_type> values, span<std::uint8_t> packed) {
    if constexpr (Format::is_signed)
        check(ref::pack_s4(values, packed));
    else
        check(ref::pack_u4(values, packed));
}

// Runs a quantizing kernel `k(span<storage_type>)` and returns one value per element.
template <class Scheme, class Kernel>
array<typename Scheme::value_type> quantized(const std::vector<std::size_t>& dims, std::size_t n, Kernel&& k) {
    using F = typename Scheme::format;
    using V = typename Scheme::value_type;
    array<V> q = array<V>::from_shape(dims);
    if constexpr (F::is_packed) {
        std::vector<std::uint8_t> packed(F::storage_size(n));
        check(k(span<std::uint8_t>(packed.data(), packed.size())));
        unpack_into<F>(span<const std::uint8_t>(packed.data(), packed.size()), span<V>(q.data(), n));
    } else {
        check(k(span<V>(q.data(), n)));
    }
    return q;
}

// Quantized values of an expression as the core's storage (packed for 4-bit), range-checked.
template <class Format>
class storage_of {
public:
    using storage_type = typename Format::storage_type;
    using value_type = typename Format::value_type;

    template <class E>
    explicit storage_of(const E& q) {
        const checked_integers<value_type, E> values(q, Format::qmin, Format::qmax, "q", range_text<Format>());
        m_dims = values.source().dims();
        m_count = values.view().size();
        if constexpr (Format::is_packed) {
            m_packed.resize(Format::storage_size(m_count));
            pack_into<Format>(values.view(), span<std::uint8_t>(m_packed.data(), m_packed.size()));
        } else {
            m_packed.assign(values.view().begin(), values.view().end());
        }
    }
    span<const storage_type> view() const noexcept { return {m_packed.data(), m_packed.size()}; }
    std::size_t count() const noexcept { return m_count; }
    const std::vector<std::size_t>& dims() const noexcept { return m_dims; }

private:
    std::vector<storage_type> m_packed;
    std::vector<std::size_t> m_dims;
    std::size_t m_count = 0;
};

template <class S>
std::vector<std::size_t> to_dims(const S& dims) {
    std::vector<std::size_t> out;
    for (const auto& d : dims) {
        if constexpr (std::is_signed<std::decay_t<decltype(d)>>::value)
            if (d < 0) raise(errc::invalid_argument, "dims", static_cast<double>(d), "must be >= 0");
        out.push_back(static_cast<std::size_t>(d));
    }
    return out;
}

inline std::size_t element_count(const std::vector<std::size_t>& dims) {
    std::size_t n = 1;
    for (std::size_t d : dims) {
        if (d != 0 && n > std::numeric_limits<std::size_t>::max() / d)
            raise(errc::overflow, "dims", static_cast<double>(dims.size()), "the element count overflows size_t");
        n *= d;
    }
    return n;
}

template <class Ex, class Ed>
void require_same_shape(const Ex& x, const Ed& dy) {
    const auto& a = x.shape();
    const auto& b = dy.shape();
    bool same = a.size() == b.size();
    for (std::size_t i = 0; same && i < a.size(); ++i)
        same = static_cast<std::size_t>(a[i]) == static_cast<std::size_t>(b[i]);
    if (!same) raise(errc::size_mismatch, "dy", static_cast<double>(dy.size()), "must have x's shape");
}

}  // namespace detail

// ---------------------------------------------------------------------------------------
// Quantization parameters
// ---------------------------------------------------------------------------------------

/// Per-tensor qparams from the min / max of all of x (as torch's MinMaxObserver), by
/// lowbit::choose_qparams. Empty x gives {1.0, 0}. Errors: s not per_tensor; invalid s;
/// x holding NaN or +-Inf (argument "x", value = flat index of the first one).
template <class Scheme, class E>
qparams choose_qparams(const Scheme& s, const xt::xexpression<E>& x) {
    detail::require_per_tensor(s);
    detail::check(s.validate());
    const detail::row_major_buffer<float> in(x.derived_cast());
    const span<const float> v = in.view();
    float mn = lowbit::detail::inf_f, mx = -lowbit::detail::inf_f;
    for (std::size_t k = 0; k < v.size(); ++k) {
        if (!lowbit::detail::is_finite(v[k]))
            detail::raise(errc::invalid_argument, "x", static_cast<double>(k),
                          "must not hold NaN or +-Inf (value: flat index of the first one)");
        if (v[k] < mn) mn = v[k];
        if (v[k] > mx) mx = v[k];
    }
    const result<qparams> qp = lowbit::choose_qparams(s, mn, mx);
    detail::check(qp.status());
    return *qp;
}

/// Per-channel / per-group qparams (per_tensor also works: a 0-d table) from the min / max
/// of each channel or group of x (torch's PerChannelMinMaxObserver for per_channel).
/// The table is shaped as channel_qparams says; an empty channel or group gets {1.0, 0}.
/// Errors: invalid s; rank > 8; axis >= rank; group_size not dividing shape[axis]; x
/// holding NaN or +-Inf (argument "x", value = flat index of the first one).
template <class Scheme, class E>
channel_qparams choose_channel_qparams(const Scheme& s, const xt::xexpression<E>& x) {
    const detail::row_major_buffer<float> in(x.derived_cast());
    const quant_layout l = detail::layout_of(s, in.shape());
    std::vector<float> mins(l.param_count, lowbit::detail::inf_f), maxs(l.param_count, -lowbit::detail::inf_f);
    const span<const float> v = in.view();
    for (std::size_t k = 0; k < v.size(); ++k) {
        if (!lowbit::detail::is_finite(v[k]))
            detail::raise(errc::invalid_argument, "x", static_cast<double>(k),
                          "must not hold NaN or +-Inf (value: flat index of the first one)");
        const std::size_t p = l.param_index(k);
        if (v[k] < mins[p]) mins[p] = v[k];
        if (v[k] > maxs[p]) maxs[p] = v[k];
    }
    const std::vector<std::size_t> dims = detail::table_dims(s, l, in.dims());
    channel_qparams out;
    out.scales = array<float>::from_shape(dims);
    out.zero_points = array<std::int32_t>::from_shape(dims);
    detail::check(lowbit::choose_qparams(s, span<const float>(mins.data(), mins.size()),
                                         span<const float>(maxs.data(), maxs.size()),
                                         span<float>(out.scales.data(), out.scales.size()),
                                         span<std::int32_t>(out.zero_points.data(), out.zero_points.size())));
    return out;
}

// ---------------------------------------------------------------------------------------
// Quantize / dequantize
// ---------------------------------------------------------------------------------------

/// Per-tensor quantize (lowbit::ref::quantize): one value per element of x, with x's
/// shape; 4-bit values come unpacked (int8 -8..7 for s4, uint8 0..15 for u4). x of any
/// arithmetic type is converted to float first; NaN gives the zero-point, +-Inf saturate
/// (quantize.hpp). Errors: s not per_tensor; invalid s or qp.
template <class Scheme, class E>
array<typename Scheme::value_type> quantize(const Scheme& s, const qparams& qp, const xt::xexpression<E>& x) {
    detail::require_per_tensor(s);
    const detail::row_major_buffer<float> in(x.derived_cast());
    return detail::quantized<Scheme>(in.dims(), in.size(), [&](span<typename Scheme::storage_type> q) {
        return ref::quantize(s, qp, in.view(), q);
    });
}

/// Per-channel / per-group quantize with a parameter table shaped for x (channel_qparams).
/// Errors: invalid s; layout errors (axis, group_size, rank); a table of the wrong shape;
/// an invalid scale or zero-point in it.
template <class Scheme, class P, class E, detail::if_table<P> = 0>
array<typename Scheme::value_type> quantize(const Scheme& s, const P& qp, const xt::xexpression<E>& x) {
    const detail::row_major_buffer<float> in(x.derived_cast());
    const qparams_view v = detail::table_view(s, qp, in.dims());
    return detail::quantized<Scheme>(in.dims(), in.size(), [&](span<typename Scheme::storage_type> q) {
        return ref::quantize(s, in.shape(), v, in.view(), q);
    });
}

/// Per-tensor dequantize (lowbit::ref::dequantize): float(q - zero_point) * scale, with q's
/// shape. q holds integers, one per element (4-bit unpacked). Errors: s not per_tensor;
/// invalid s or qp; a q value outside the format's range (argument "q").
template <class Scheme, class E>
array<float> dequantize(const Scheme& s, const qparams& qp, const xt::xexpression<E>& q) {
    detail::require_per_tensor(s);
    const detail::storage_of<typename Scheme::format> in(q.derived_cast());
    array<float> x = array<float>::from_shape(in.dims());
    detail::check(ref::dequantize(s, qp, in.view(), span<float>(x.data(), in.count())));
    return x;
}

/// Per-channel / per-group dequantize; same contract as the per-tensor one, with a table
/// shaped for q (as for quantize).
template <class Scheme, class P, class E, detail::if_table<P> = 0>
array<float> dequantize(const Scheme& s, const P& qp, const xt::xexpression<E>& q) {
    const detail::storage_of<typename Scheme::format> in(q.derived_cast());
    const qparams_view v = detail::table_view(s, qp, in.dims());
    array<float> x = array<float>::from_shape(in.dims());
    detail::check(ref::dequantize(s, lowbit::shape(in.dims().data(), in.dims().size()), v, in.view(),
                                  span<float>(x.data(), in.count())));
    return x;
}

// ---------------------------------------------------------------------------------------
// Fake-quantize (QAT)
// ---------------------------------------------------------------------------------------

/// Per-tensor fake-quantize forward (lowbit::ref::fake_quantize, same as
/// torch.fake_quantize_per_tensor_affine), with x's shape. Errors: s not per_tensor;
/// invalid s or qp.
template <class Scheme, class E>
array<float> fake_quantize(const Scheme& s, const qparams& qp, const xt::xexpression<E>& x) {
    detail::require_per_tensor(s);
    const detail::row_major_buffer<float> in(x.derived_cast());
    array<float> y = array<float>::from_shape(in.dims());
    detail::check(ref::fake_quantize(s, qp, in.view(), span<float>(y.data(), in.size())));
    return y;
}

/// Per-channel / per-group fake-quantize forward (torch.fake_quantize_per_channel_affine for
/// per_channel). Errors: as quantize with a table.
template <class Scheme, class P, class E, detail::if_table<P> = 0>
array<float> fake_quantize(const Scheme& s, const P& qp, const xt::xexpression<E>& x) {
    const detail::row_major_buffer<float> in(x.derived_cast());
    const qparams_view v = detail::table_view(s, qp, in.dims());
    array<float> y = array<float>::from_shape(in.dims());
    detail::check(ref::fake_quantize(s, in.shape(), v, in.view(), span<float>(y.data(), in.size())));
    return y;
}

/// Per-tensor straight-through backward (lowbit::ref::fake_quantize_backward): dx = dy where
/// qmin <= zero_point + round(x / scale) <= qmax, else 0; x's shape. Errors: s not
/// per_tensor; invalid s or qp; dy's shape differing from x's (argument "dy").
template <class Scheme, class Ex, class Ed>
array<float> fake_quantize_backward(const Scheme& s, const qparams& qp, const xt::xexpression<Ex>& x,
                                    const xt::xexpression<Ed>& dy) {
    detail::require_per_tensor(s);
    detail::require_same_shape(x.derived_cast(), dy.derived_cast());
    const detail::row_major_buffer<float> in(x.derived_cast());
    const detail::row_major_buffer<float> grad(dy.derived_cast());
    array<float> dx = array<float>::from_shape(in.dims());
    detail::check(ref::fake_quantize_backward(s, qp, in.view(), grad.view(), span<float>(dx.data(), in.size())));
    return dx;
}

/// Per-channel / per-group straight-through backward. Errors: as fake_quantize with a
/// table, plus dy's shape differing from x's.
template <class Scheme, class P, class Ex, class Ed, detail::if_table<P> = 0>
array<float> fake_quantize_backward(const Scheme& s, const P& qp, const xt::xexpression<Ex>& x,
                                    const xt::xexpression<Ed>& dy) {
    detail::require_same_shape(x.derived_cast(), dy.derived_cast());
    const detail::row_major_buffer<float> in(x.derived_cast());
    const detail::row_major_buffer<float> grad(dy.derived_cast());
    const qparams_view v = detail::table_view(s, qp, in.dims());
    array<float> dx = array<float>::from_shape(in.dims());
    detail::check(
        ref::fake_quantize_backward(s, in.shape(), v, in.view(), grad.view(), span<float>(dx.data(), in.size())));
    return dx;
}

// ---------------------------------------------------------------------------------------
// Int4 packing
// ---------------------------------------------------------------------------------------

/// Packs 4-bit values (q in row-major order; any integer type) into (q.size() + 1) / 2
/// bytes with lowbit's int4 layout (int4.hpp). Only the scheme's format matters.
/// Errors: a value outside [-8, 7] (s4) or [0, 15] (u4) (argument "q").
template <class Scheme, class E>
xt::xtensor<std::uint8_t, 1> pack_int4(const Scheme& s, const xt::xexpression<E>& q) {
    using F = typename Scheme::format;
    static_assert(F::is_packed, "lowbit::xtensor::pack_int4 needs a 4-bit (s4 or u4) scheme");
    (void)s;
    const detail::checked_integers<typename F::value_type, E> values(q.derived_cast(), F::qmin, F::qmax, "q",
                                                                     detail::range_text<F>());
    const std::size_t bytes = F::storage_size(values.view().size());
    xt::xtensor<std::uint8_t, 1> packed = xt::xtensor<std::uint8_t, 1>::from_shape({bytes});
    detail::pack_into<F>(values.view(), span<std::uint8_t>(packed.data(), bytes));
    return packed;
}

/// Unpacks 4-bit values into an array of shape `dims` (the inverse of pack_int4). packed
/// holds bytes (any integer type, values 0..255), read in row-major order. Errors: packed
/// not holding exactly (numel(dims) + 1) / 2 bytes ("packed.size()"); a negative or
/// overflowing dims; a packed value outside [0, 255].
template <class Scheme, class E, class S>
array<typename Scheme::value_type> unpack_int4(const Scheme& s, const xt::xexpression<E>& packed, const S& dims) {
    using F = typename Scheme::format;
    using V = typename Scheme::value_type;
    static_assert(F::is_packed, "lowbit::xtensor::unpack_int4 needs a 4-bit (s4 or u4) scheme");
    (void)s;
    const std::vector<std::size_t> d = detail::to_dims(dims);
    const std::size_t n = detail::element_count(d);
    const detail::checked_integers<std::uint8_t, E> bytes(packed.derived_cast(), 0, 255, "packed",
                                                          "must hold bytes, in [0, 255]");
    array<V> q = array<V>::from_shape(d);
    detail::unpack_into<F>(bytes.view(), span<V>(q.data(), n));
    return q;
}

/// unpack_int4 with a braced shape: unpack_int4(s, packed, {3, 5}).
template <class Scheme, class E>
array<typename Scheme::value_type> unpack_int4(const Scheme& s, const xt::xexpression<E>& packed,
                                               std::initializer_list<std::size_t> dims) {
    return unpack_int4(s, packed, std::vector<std::size_t>(dims));
}

// ---------------------------------------------------------------------------------------
// .npy files
// ---------------------------------------------------------------------------------------

namespace detail {

[[noreturn]] inline void npy_fail(errc code, double value, const char* expected, const std::string& verb,
                                  const std::string& file, const std::string& why) {
    throw npy_error(lowbit::status{code, "path", value, expected}, file,
                    "lowbit: cannot " + verb + " '" + file + "': " + why);
}

constexpr const char* npy_expected_file = "must name an existing, readable .npy file";
constexpr const char* npy_expected_format = "must be a .npy file (format 1.0, 2.0 or 3.0) with a valid header";

// numpy's dtype string for T on this machine, e.g. "<f4", "|i1".
template <class T>
std::string npy_descr() {
    static_assert(std::is_arithmetic<T>::value, "lowbit::xtensor .npy I/O handles arithmetic element types only");
    const char order = sizeof(T) == 1 ? '|' : xtl::endianness() == xtl::endian::big_endian ? '>' : '<';
    const char kind = std::is_same<T, bool>::value       ? 'b'
                      : std::is_floating_point<T>::value ? 'f'
                      : std::is_signed<T>::value         ? 'i'
                                                         : 'u';
    return std::string(1, order) + kind + std::to_string(sizeof(T));
}

inline std::string npy_shape_text(const std::vector<std::size_t>& dims) {
    std::string t = "(";
    for (std::size_t i = 0; i < dims.size(); ++i) t += (i ? ", " : "") + std::to_string(dims[i]);
    return t + (dims.size() == 1 ? ",)" : ")");
}

// What load_npy needs from a .npy header dictionary.
struct npy_header {
    std::string descr;
    bool fortran_order = false;
    std::vector<std::size_t> dims;
};

// Parses numpy's header dictionary, e.g. "{'descr': '<f4', 'fortran_order': False,
// 'shape': (2, 3), }". Keys in any order. Returns an empty string on success, else what
// is wrong.
inline std::string parse_npy_header(const std::string& h, npy_header& out) {
    std::size_t pos = 0;
    const auto skip = [&] {
        while (pos < h.size() && (h[pos] == ' ' || h[pos] == '\t' || h[pos] == '\n' || h[pos] == '\r')) ++pos;
    };
    const auto string_literal = [&](std::string& s) {
        if (pos >= h.size() || (h[pos] != '\'' && h[pos] != '"')) return false;
        const char quote = h[pos++];
        const std::size_t end = h.find(quote, pos);
        if (end == std::string::npos) return false;
        s = h.substr(pos, end - pos);
        pos = end + 1;
        return true;
    };
    bool have_descr = false, have_order = false, have_shape = false;
    skip();
    if (pos >= h.size() || h[pos] != '{') return "the header is not a dictionary";
    ++pos;
    for (;;) {
        skip();
        if (pos < h.size() && h[pos] == '}') break;
        std::string key;
        if (!string_literal(key)) return "the header dictionary has a malformed key";
        skip();
        if (pos >= h.size() || h[pos] != ':') return "the header dictionary has no ':' after '" + key + "'";
        ++pos;
        skip();
        if (key == "descr") {
            if (!string_literal(out.descr))
                return "'descr' is not a plain dtype string (structured dtypes are not supported)";
            have_descr = true;
        } else if (key == "fortran_order") {
            if (h.compare(pos, 4, "True") == 0) {
                out.fortran_order = true;
                pos += 4;
            } else if (h.compare(pos, 5, "False") == 0) {
                out.fortran_order = false;
                pos += 5;
            } else {
                return "'fortran_order' is neither True nor False";
            }
            have_order = true;
        } else if (key == "shape") {
            if (pos >= h.size() || h[pos] != '(') return "'shape' is not a tuple";
            ++pos;
            out.dims.clear();
            for (;;) {
                skip();
                if (pos < h.size() && h[pos] == ')') {
                    ++pos;
                    break;
                }
                if (pos >= h.size() || h[pos] < '0' || h[pos] > '9')
                    return "'shape' holds something other than integers >= 0";
                std::size_t d = 0;
                while (pos < h.size() && h[pos] >= '0' && h[pos] <= '9') {
                    const std::size_t digit = static_cast<std::size_t>(h[pos] - '0');
                    if (d > (std::numeric_limits<std::size_t>::max() - digit) / 10)
                        return "a 'shape' entry overflows size_t";
                    d = d * 10 + digit;
                    ++pos;
                }
                if (pos < h.size() && h[pos] == 'L') ++pos;  // Python 2 long literal
                out.dims.push_back(d);
                skip();
                if (pos < h.size() && h[pos] == ',') {
                    ++pos;
                } else if (pos >= h.size() || h[pos] != ')') {
                    return "'shape' is not a tuple of integers";
                }
            }
            have_shape = true;
        } else {
            return "the header has an unexpected key '" + key + "'";
        }
        skip();
        if (pos < h.size() && h[pos] == ',') {
            ++pos;
        } else if (pos >= h.size() || h[pos] != '}') {
            return "the header dictionary is malformed after '" + key + "'";
        }
    }
    if (!have_descr) return "the header has no 'descr'";
    if (!have_order) return "the header has no 'fortran_order'";
    if (!have_shape) return "the header has no 'shape'";
    return {};
}

}  // namespace detail

/// Reads a NumPy .npy file (format 1.0, 2.0 or 3.0, C or Fortran order) whose dtype is
/// exactly T on this machine (e.g. '<f4' for float, '|i1' for int8_t); returns it row-major.
/// Bytes after the data are ignored, as numpy.load does. Throws npy_error (a lowbit::error,
/// argument "path") naming the file when it is missing or unreadable, not a .npy file, of
/// another dtype, truncated, or of a shape too large for xtensor's signed strides (all
/// checked before any allocation of the data).
template <class T>
array<T> load_npy(const std::string& path) {
    const std::string verb = "load";
    const std::string expect_descr = detail::npy_descr<T>();
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        detail::npy_fail(errc::invalid_argument, 0, detail::npy_expected_file, verb, path, "it is a directory");
    errno = 0;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const int err = errno;
        const bool exists = std::filesystem::exists(path, ec);
        detail::npy_fail(
            errc::invalid_argument, 0, detail::npy_expected_file, verb, path,
            !exists ? std::string("no such file")
                    : std::string("cannot open it for reading") + (err ? std::string(": ") + std::strerror(err) : ""));
    }
    in.seekg(0, std::ios::end);
    const std::streamoff file_size = in.tellg();
    in.seekg(0, std::ios::beg);
    if (file_size < 0)
        detail::npy_fail(errc::invalid_argument, 0, detail::npy_expected_file, verb, path, "cannot determine its size");

    const auto read = [&](char* dst, std::size_t n) {
        in.read(dst, static_cast<std::streamsize>(n));
        return static_cast<std::size_t>(in.gcount()) == n;
    };
    char prefix[8];
    if (!read(prefix, 8) || std::memcmp(prefix, "\x93NUMPY", 6) != 0)
        detail::npy_fail(errc::invalid_argument, 0, detail::npy_expected_format, verb, path,
                         "not a .npy file (no \\x93NUMPY magic string)");
    const unsigned major = static_cast<unsigned char>(prefix[6]), minor = static_cast<unsigned char>(prefix[7]);
    if (!((major == 1 || major == 2 || major == 3) && minor == 0))
        detail::npy_fail(errc::invalid_argument, 0, detail::npy_expected_format, verb, path,
                         "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                             " (1.0, 2.0 and 3.0 are read)");
    const std::size_t len_bytes = major == 1 ? 2 : 4;
    unsigned char len_le[4] = {0, 0, 0, 0};
    if (!read(reinterpret_cast<char*>(len_le), len_bytes))
        detail::npy_fail(errc::size_mismatch, static_cast<double>(file_size), detail::npy_expected_format, verb, path,
                         "truncated: the file ends inside the header");
    std::size_t header_len = 0;
    for (std::size_t i = len_bytes; i-- > 0;) header_len = header_len << 8 | len_le[i];
    const std::size_t data_start = 8 + len_bytes + header_len;
    if (static_cast<std::uint64_t>(file_size) < data_start)
        detail::npy_fail(
            errc::size_mismatch, static_cast<double>(file_size), detail::npy_expected_format, verb, path,
            "truncated: the file ends inside the header (" + std::to_string(header_len) + " header bytes declared)");
    std::string header(header_len, '\0');
    if (!read(&header[0], header_len))
        detail::npy_fail(errc::size_mismatch, static_cast<double>(file_size), detail::npy_expected_format, verb, path,
                         "truncated: the file ends inside the header");
    detail::npy_header h;
    const std::string why = detail::parse_npy_header(header, h);
    if (!why.empty())
        detail::npy_fail(errc::invalid_argument, 0, detail::npy_expected_format, verb, path,
                         "malformed header: " + why);
    if (h.descr != expect_descr)
        detail::npy_fail(errc::invalid_argument, 0, "the file's dtype must match the requested element type", verb,
                         path,
                         "wrong dtype: the file holds '" + h.descr + "', the caller asked for '" + expect_descr + "'");

    // Products of trailing dimensions are xtensor's (signed) strides: they must fit in
    // ptrdiff_t even when a leading dimension is 0; the last one is the element count.
    std::size_t count = 1;
    const std::size_t max_count = static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()) / sizeof(T);
    for (std::size_t i = h.dims.size(); i-- > 0;) {
        const std::size_t d = h.dims[i];
        if (d != 0 && count > max_count / d)
            detail::npy_fail(errc::overflow, 0, "the shape's element and byte counts must fit in ptrdiff_t", verb, path,
                             "its shape " + detail::npy_shape_text(h.dims) + " is too large");
        count *= d;
    }
    const std::size_t bytes = count * sizeof(T);
    const std::uint64_t available = static_cast<std::uint64_t>(file_size) - data_start;
    const auto truncated = [&](std::uint64_t have) {
        detail::npy_fail(errc::size_mismatch, static_cast<double>(have),
                         "the data must hold as many bytes as the header's shape and dtype need", verb, path,
                         "truncated: shape " + detail::npy_shape_text(h.dims) + " of '" + h.descr + "' needs " +
                             std::to_string(bytes) + " data bytes, the file has " + std::to_string(have));
    };
    if (available < bytes) truncated(available);

    array<T> out = array<T>::from_shape(h.dims);
    if (!h.fortran_order || h.dims.size() < 2) {
        if (bytes != 0 && !read(reinterpret_cast<char*>(out.data()), bytes))
            truncated(static_cast<std::uint64_t>(in.gcount()));
    } else {
        using column_major = xt::xarray<T, xt::layout_type::column_major>;
        column_major f = column_major::from_shape(h.dims);
        if (bytes != 0 && !read(reinterpret_cast<char*>(f.data()), bytes))
            truncated(static_cast<std::uint64_t>(in.gcount()));
        out = f;
    }
    return out;
}

/// Writes x (any xexpression of an arithmetic type) to a .npy file in C order with
/// xt::dump_npy, replacing the file. Throws npy_error (argument "path") naming the file when
/// it cannot be opened or fully written.
template <class E>
void save_npy(const std::string& path, const xt::xexpression<E>& x) {
    using T = std::decay_t<typename E::value_type>;
    static_assert(std::is_arithmetic<T>::value, "lowbit::xtensor::save_npy handles arithmetic element types only");
    const detail::row_major_buffer<T> in(x.derived_cast());
    const std::string bytes = xt::dump_npy(xt::adapt(in.view().data(), in.size(), xt::no_ownership(), in.dims()));
    errno = 0;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) {
        const int err = errno;
        detail::npy_fail(
            errc::invalid_argument, 0, "must name a writable file", "save", path,
            std::string("cannot open it for writing") + (err ? std::string(": ") + std::strerror(err) : ""));
    }
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out)
        detail::npy_fail(errc::invalid_argument, 0, "must name a writable file", "save", path,
                         "writing " + std::to_string(bytes.size()) + " bytes failed (disk full?)");
}

}  // namespace xtensor
}  // namespace lowbit

#endif  // LOWBIT_XTENSOR_HPP
