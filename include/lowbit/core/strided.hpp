// lowbit/core/strided.hpp: a strided view of a tensor (pointer, up to 8 dimensions and signed
// element strides), the batch type observers take. No allocation, no exceptions required,
// only <cstddef>-level headers.
//
//   std::vector<float> x(64 * 3 * 32 * 32);               // NCHW, contiguous
//   auto v = *lowbit::strided_view<const float>::make(lowbit::shape{64, 3, 32, 32}, x);
//   auto nhwc = *v.permute({0, 2, 3, 1});                 // same memory, another order
//   auto every_other = *v.slice(3, 0, 16, 2);             // columns 0, 2, ..., 30
//   auto flipped = *v.slice(2, 31, 32, -1);               // rows in reverse (negative stride)
//   auto raw = *lowbit::strided_view<const float>::make(p, lowbit::shape{4, 5}, {1, 4});  // strides in elements
//
// Element order is the row-major order of the view's own dimensions (the logical order):
// element (i0, ..., ik) is data()[i0 * stride(0) + ... + ik * stride(k)], and "the n-th
// element" means the n-th tuple in row-major order of dims(). Strides may be negative or 0
// (a broadcast dimension). A rank-0 view (shape{}) is one element.
//
// Validation (make, permute, slice, select): rank <= 8; one stride per dimension; the element
// count fits size_t and ptrdiff_t; every element's offset, and the sums of positive and of
// negative extents, fit ptrdiff_t (so walking the view never overflows); a non-empty view has
// a non-null pointer; with a base buffer, every element lies inside it. A failed check names
// the argument and its value (lowbit::error with exceptions, else a status; see status.hpp).
// The pointer-and-strides form cannot know the allocation: the caller guarantees every element
// is readable (use the buffer form to have it checked).
//
// Visiting: for_each_line(f) calls f(first, n, step) for every innermost line (after merging
// dimensions that are contiguous with each other, so a contiguous view is a single line).
// for_each_chunk(f) calls f(const value_type* p, n) with contiguous chunks in element order:
// the lines themselves when the innermost stride is 1 and lines are long enough
// (>= strided_min_run elements), otherwise elements gathered into a local buffer of
// strided_gather_size elements (LOWBIT_STRIDED_GATHER_SIZE, default 1024; on the stack), so
// SIMD code always gets contiguous data. Chunk boundaries are not part of the contract; only
// the element order is.
#ifndef LOWBIT_CORE_STRIDED_HPP
#define LOWBIT_CORE_STRIDED_HPP

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <type_traits>

#include "../config.hpp"
#include "span.hpp"
#include "status.hpp"

#ifndef LOWBIT_STRIDED_GATHER_SIZE
#define LOWBIT_STRIDED_GATHER_SIZE 1024
#endif

namespace lowbit {

/// Elements for_each_chunk gathers into its stack buffer at a time (float: 4 KiB by default).
constexpr std::size_t strided_gather_size = LOWBIT_STRIDED_GATHER_SIZE;
static_assert(strided_gather_size >= 1, "LOWBIT_STRIDED_GATHER_SIZE must be >= 1");
/// Shortest contiguous line for_each_chunk hands over directly instead of gathering.
constexpr std::size_t strided_min_run = strided_gather_size / 16 > 1 ? strided_gather_size / 16 : 1;

namespace detail {
constexpr std::size_t ptrdiff_max_u = static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());

// |s| as size_t (s != PTRDIFF_MIN).
constexpr std::size_t abs_stride(std::ptrdiff_t s) noexcept {
    return s < 0 ? static_cast<std::size_t>(-s) : static_cast<std::size_t>(s);
}
}  // namespace detail

/// A read (or read-write) view of a strided tensor. See the file comment.
template <class T>
class strided_view {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;
    static constexpr std::size_t max_rank = shape::max_rank;

    /// An empty 1-D view (0 elements).
    constexpr strided_view() noexcept = default;

    /// A contiguous 1-D view of x (never fails). Implicit, so a span, or anything that
    /// converts to one in the caller, can be passed where a view is taken.
    constexpr strided_view(span<T> x) noexcept  // NOLINT: implicit by design
        : m_data(x.data()), m_size(x.size()) {
        m_dims[0] = x.size();
        m_strides[0] = 1;
    }

    /// strided_view<float> -> strided_view<const float>.
    template <class U, class = std::enable_if_t<!std::is_same<U, T>::value && std::is_convertible<U (*)[], T (*)[]>::value>>
    constexpr strided_view(const strided_view<U>& o) noexcept  // NOLINT: implicit by design
        : m_data(o.data()), m_rank(o.rank()), m_size(o.size()) {
        for (std::size_t d = 0; d < o.rank(); ++d) m_dims[d] = o.dim(d), m_strides[d] = o.stride(d);
    }

    /// The contiguous row-major tensor of shape `shp` in x. Errors: rank > 8 ("shape.rank()");
    /// element count overflowing ("shape"); x.size() != the shape's element count ("x.size()").
    static constexpr result<strided_view> make(const shape& shp, span<T> x) {
        LOWBIT_DETAIL_CHECK(shp.valid_rank(), errc::out_of_range, "shape.rank()", shp.rank(), "must be <= 8");
        std::size_t n = 0;
        LOWBIT_DETAIL_CHECK(shp.product(0, shp.rank(), n) && n <= detail::ptrdiff_max_u, errc::overflow, "shape",
                            shp.rank(), "the element count overflows size_t / ptrdiff_t");
        LOWBIT_DETAIL_CHECK(x.size() == n, errc::size_mismatch, "x.size()", x.size(), "must equal shape's numel");
        strided_view v;
        v.m_data = x.data();
        v.m_rank = shp.rank();
        v.m_size = n;
        std::ptrdiff_t s = 1;  // products of trailing dimensions: <= n (strides stay 0 for an empty view)
        for (std::size_t d = shp.rank(); d-- > 0;) {
            v.m_dims[d] = shp[d];
            if (n == 0) continue;
            v.m_strides[d] = s;
            s *= static_cast<std::ptrdiff_t>(shp[d]);
        }
        return v;
    }

    /// The tensor of shape `shp` whose element (i0, ..., ik) is data[i0 strides[0] + ...]
    /// (strides in elements, signed). Errors: rank > 8; strides.size() != rank; element count
    /// or an offset overflowing; stride PTRDIFF_MIN; data null for a non-empty view. The
    /// caller guarantees the memory (see the buffer overload for a checked one).
    static constexpr result<strided_view> make(T* data, const shape& shp, span<const std::ptrdiff_t> strides) {
        std::ptrdiff_t lo = 0, hi = 0;
        return make_checked(data, shp, strides, lo, hi);
    }
    static constexpr result<strided_view> make(T* data, const shape& shp, std::initializer_list<std::ptrdiff_t> strides) {
        return make(data, shp, span<const std::ptrdiff_t>(strides.begin(), strides.size()));
    }

    /// As above, with the elements at buffer.data() + offset + (strides...): every element
    /// must lie inside `buffer`. Errors: those above; offset + the most negative extent < 0
    /// ("offset"); an element at or past buffer.size() ("buffer.size()").
    static constexpr result<strided_view> make(span<T> buffer, std::size_t offset, const shape& shp,
                                               span<const std::ptrdiff_t> strides) {
        std::ptrdiff_t lo = 0, hi = 0;
        LOWBIT_DETAIL_CHECK(offset <= buffer.size(), errc::out_of_range, "offset", offset, "must be <= buffer.size()");
        const result<strided_view> r = make_checked(buffer.data() + offset, shp, strides, lo, hi);
        LOWBIT_DETAIL_TRY(r.status());
        if (r->empty()) return r;
        LOWBIT_DETAIL_CHECK(static_cast<std::size_t>(-lo) <= offset, errc::out_of_range, "offset", offset,
                            "too small: a negative stride reaches before the buffer");
        LOWBIT_DETAIL_CHECK(static_cast<std::size_t>(hi) < buffer.size() - offset, errc::out_of_range, "buffer.size()",
                            buffer.size(), "too small: the view reaches past the end of the buffer");
        return r;
    }
    static constexpr result<strided_view> make(span<T> buffer, std::size_t offset, const shape& shp,
                                               std::initializer_list<std::ptrdiff_t> strides) {
        return make(buffer, offset, shp, span<const std::ptrdiff_t>(strides.begin(), strides.size()));
    }

    constexpr T* data() const noexcept { return m_data; }
    constexpr std::size_t rank() const noexcept { return m_rank; }
    constexpr std::size_t dim(std::size_t d) const noexcept { return m_dims[d]; }
    constexpr std::ptrdiff_t stride(std::size_t d) const noexcept { return m_strides[d]; }
    /// The dimensions as a shape.
    constexpr lowbit::shape dims() const noexcept { return lowbit::shape(m_dims, m_rank); }
    /// Number of elements (product of the dimensions; 1 for rank 0).
    constexpr std::size_t size() const noexcept { return m_size; }
    constexpr bool empty() const noexcept { return m_size == 0; }

    /// True if the elements are contiguous in memory in element order (data()[0, size())).
    constexpr bool is_contiguous() const noexcept {
        const lines l = coalesced();
        return l.rank <= 1 && (l.rank == 0 || l.strides[0] == 1);
    }
    /// The elements as a span, if contiguous (else an empty span).
    constexpr span<T> contiguous_span() const noexcept { return is_contiguous() ? span<T>(m_data, m_size) : span<T>(); }

    /// Offset (in elements, from data()) of the n-th element in element order (n < size()).
    constexpr std::ptrdiff_t offset_of(std::size_t n) const noexcept {
        std::ptrdiff_t off = 0;
        for (std::size_t d = m_rank; d-- > 0;) {
            const std::size_t i = n % m_dims[d];
            n /= m_dims[d];
            off += static_cast<std::ptrdiff_t>(i) * m_strides[d];
        }
        return off;
    }
    /// The n-th element in element order (n < size(); not checked).
    constexpr T& operator[](std::size_t n) const noexcept { return m_data[offset_of(n)]; }

    /// The view with its dimensions reordered: new dimension i is old dimension axes[i].
    /// Errors: axes.size() != rank; axes not a permutation of 0..rank-1 ("axes").
    constexpr result<strided_view> permute(span<const std::size_t> axes) const {
        LOWBIT_DETAIL_CHECK(axes.size() == m_rank, errc::size_mismatch, "axes.size()", axes.size(), "must equal rank()");
        strided_view v = *this;
        bool seen[max_rank] = {};
        for (std::size_t i = 0; i < m_rank; ++i) {
            LOWBIT_DETAIL_CHECK(axes[i] < m_rank && !seen[axes[i]], errc::invalid_argument, "axes", axes[i],
                                "must be a permutation of 0..rank()-1");
            seen[axes[i]] = true;
            v.m_dims[i] = m_dims[axes[i]];
            v.m_strides[i] = m_strides[axes[i]];
        }
        return v;
    }
    constexpr result<strided_view> permute(std::initializer_list<std::size_t> axes) const {
        return permute(span<const std::size_t>(axes.begin(), axes.size()));
    }

    /// Elements start, start + step, ..., (count of them) along `axis`; step may be negative.
    /// Errors: axis >= rank; step == 0; an index outside [0, dim(axis)) ("start" / "count").
    constexpr result<strided_view> slice(std::size_t axis, std::size_t start, std::size_t count,
                                         std::ptrdiff_t step = 1) const {
        LOWBIT_DETAIL_CHECK(axis < m_rank, errc::out_of_range, "axis", axis, "must be < rank()");
        LOWBIT_DETAIL_CHECK(step != 0, errc::invalid_argument, "step", step, "must not be 0");
        const std::size_t n = m_dims[axis];
        strided_view v = *this;
        if (count == 0) {
            v.m_dims[axis] = 0;
            v.m_size = 0;
            return v;
        }
        LOWBIT_DETAIL_CHECK(start < n, errc::out_of_range, "start", start, "must be < dim(axis)");
        const std::size_t a = detail::abs_stride(step);
        const std::size_t room = step > 0 ? n - 1 - start : start;  // steps available in that direction
        LOWBIT_DETAIL_CHECK(count - 1 <= room / a, errc::out_of_range, "count", count,
                            "start + (count - 1) * step must stay in [0, dim(axis))");
        v.m_data = m_data + static_cast<std::ptrdiff_t>(start) * m_strides[axis];
        v.m_dims[axis] = count;
        // |stride * step| * (count - 1) <= |stride| * (dim - 1): no overflow when count > 1
        v.m_strides[axis] = count > 1 ? m_strides[axis] * step : m_strides[axis];
        v.m_size = m_size / n * count;
        return v;
    }

    /// The rank - 1 view of the elements whose index along `axis` is `index`.
    /// Errors: axis >= rank; index >= dim(axis).
    constexpr result<strided_view> select(std::size_t axis, std::size_t index) const {
        LOWBIT_DETAIL_CHECK(axis < m_rank, errc::out_of_range, "axis", axis, "must be < rank()");
        LOWBIT_DETAIL_CHECK(index < m_dims[axis], errc::out_of_range, "index", index, "must be < dim(axis)");
        strided_view v;
        v.m_data = m_data + static_cast<std::ptrdiff_t>(index) * m_strides[axis];
        v.m_rank = m_rank - 1;
        v.m_size = m_size / m_dims[axis];
        for (std::size_t d = 0, k = 0; d < m_rank; ++d) {
            if (d == axis) continue;
            v.m_dims[k] = m_dims[d];
            v.m_strides[k] = m_strides[d];
            ++k;
        }
        return v;
    }

    /// Calls f(T* first, std::size_t n, std::ptrdiff_t step) for every innermost line, in
    /// element order: elements first[0], first[step], ..., first[(n - 1) * step]. Dimensions
    /// of size 1 are dropped and neighbours that are contiguous with each other merged first,
    /// so a contiguous view is one call. Nothing is called for an empty view.
    template <class F>
    constexpr void for_each_line(F&& f) const {
        const lines l = coalesced();
        if (m_size == 0) return;
        if (l.rank == 0) {
            f(m_data, std::size_t{1}, std::ptrdiff_t{1});
            return;
        }
        const std::size_t k = l.rank, n = l.dims[k - 1];
        const std::ptrdiff_t step = l.strides[k - 1];
        std::size_t idx[max_rank] = {};
        T* p = m_data;
        for (;;) {
            f(p, n, step);
            std::size_t d = k - 1;
            for (;;) {  // odometer over the outer dimensions; p always points at an element
                if (d == 0) return;
                --d;
                if (++idx[d] < l.dims[d]) {
                    p += l.strides[d];
                    break;
                }
                p -= l.strides[d] * static_cast<std::ptrdiff_t>(l.dims[d] - 1);
                idx[d] = 0;
            }
        }
    }

    /// Calls f(const value_type* p, std::size_t n) with contiguous chunks of the elements, in
    /// element order (file comment): the lines themselves if their stride is 1 and they hold
    /// >= strided_min_run elements (or the view is one line), else copies of up to Buf elements
    /// gathered into a stack buffer. Nothing is called for an empty view.
    template <std::size_t Buf = strided_gather_size, class F>
    void for_each_chunk(F&& f) const {
        static_assert(Buf >= 1, "lowbit::strided_view::for_each_chunk: Buf must be >= 1");
        if (m_size == 0) return;
        const lines l = coalesced();
        const bool direct = l.rank == 0 || (l.strides[l.rank - 1] == 1 && (l.rank == 1 || l.dims[l.rank - 1] >= strided_min_run));
        if (direct) {
            for_each_line([&](T* p, std::size_t n, std::ptrdiff_t) { f(static_cast<const value_type*>(p), n); });
            return;
        }
        alignas(64) value_type buf[Buf];
        std::size_t fill = 0;
        for_each_line([&](T* p, std::size_t n, std::ptrdiff_t step) {
            std::size_t done = 0;
            while (done < n) {
                const std::size_t take = n - done < Buf - fill ? n - done : Buf - fill;
                const T* q = p + static_cast<std::ptrdiff_t>(done) * step;
                for (std::size_t i = 0; i < take; ++i) buf[fill + i] = q[static_cast<std::ptrdiff_t>(i) * step];
                fill += take;
                done += take;
                if (fill == Buf) {
                    f(static_cast<const value_type*>(buf), Buf);
                    fill = 0;
                }
            }
        });
        if (fill != 0) f(static_cast<const value_type*>(buf), fill);
    }

private:
    template <class U>
    friend class strided_view;

    // The view's dimensions with size-1 dimensions dropped and contiguous neighbours merged
    // (same element order). rank 0: one element (or an empty view).
    struct lines {
        std::size_t rank = 0;
        std::size_t dims[max_rank] = {};
        std::ptrdiff_t strides[max_rank] = {};
    };
    constexpr lines coalesced() const noexcept {
        lines l;
        for (std::size_t d = 0; d < m_rank; ++d) {
            if (m_dims[d] == 1) continue;
            if (l.rank > 0 && l.strides[l.rank - 1] == m_strides[d] * static_cast<std::ptrdiff_t>(m_dims[d])) {
                l.dims[l.rank - 1] *= m_dims[d];
                l.strides[l.rank - 1] = m_strides[d];
                continue;
            }
            l.dims[l.rank] = m_dims[d];
            l.strides[l.rank] = m_strides[d];
            ++l.rank;
        }
        return l;
    }

    // make(data, shape, strides), reporting the most negative / positive element offsets.
    static constexpr result<strided_view> make_checked(T* data, const shape& shp, span<const std::ptrdiff_t> strides,
                                                       std::ptrdiff_t& lo, std::ptrdiff_t& hi) {
        LOWBIT_DETAIL_CHECK(shp.valid_rank(), errc::out_of_range, "shape.rank()", shp.rank(), "must be <= 8");
        LOWBIT_DETAIL_CHECK(strides.size() == shp.rank(), errc::size_mismatch, "strides.size()", strides.size(),
                            "must equal shape.rank()");
        std::size_t n = 0;
        LOWBIT_DETAIL_CHECK(shp.product(0, shp.rank(), n) && n <= detail::ptrdiff_max_u, errc::overflow, "shape",
                            shp.rank(), "the element count overflows size_t / ptrdiff_t");
        strided_view v;
        v.m_data = data;
        v.m_rank = shp.rank();
        v.m_size = n;
        std::size_t neg = 0, pos = 0;  // sums of the negative / positive extents
        for (std::size_t d = 0; d < shp.rank(); ++d) {
            const std::ptrdiff_t s = strides[d];
            v.m_dims[d] = shp[d];
            v.m_strides[d] = s;
            if (n == 0) continue;
            LOWBIT_DETAIL_CHECK(s != std::numeric_limits<std::ptrdiff_t>::min(),
                                errc::overflow, "strides", static_cast<double>(s), "must be > PTRDIFF_MIN");
            const std::size_t a = detail::abs_stride(s), m = shp[d] - 1;
            LOWBIT_DETAIL_CHECK(a == 0 || m <= detail::ptrdiff_max_u / a, errc::overflow, "strides",
                                static_cast<double>(s), "(shape[d] - 1) * strides[d] overflows ptrdiff_t");
            const std::size_t e = a * m;
            std::size_t& side = s < 0 ? neg : pos;
            LOWBIT_DETAIL_CHECK(e <= detail::ptrdiff_max_u - side, errc::overflow, "strides", static_cast<double>(s),
                                "the sum of the extents overflows ptrdiff_t");
            side += e;
        }
        if (n != 0) LOWBIT_DETAIL_CHECK(data != nullptr, errc::invalid_argument, "data", 0, "must not be null for a non-empty view");
        lo = -static_cast<std::ptrdiff_t>(neg);
        hi = static_cast<std::ptrdiff_t>(pos);
        return v;
    }

    T* m_data = nullptr;
    std::size_t m_rank = 1;
    std::size_t m_size = 0;
    std::size_t m_dims[max_rank] = {};
    std::ptrdiff_t m_strides[max_rank] = {};
};

}  // namespace lowbit

#endif  // LOWBIT_CORE_STRIDED_HPP
