// lowbit/core/span.hpp: the views lowbit takes instead of containers (C++17 has no
// std::span): a contiguous span and a small fixed-capacity shape. No allocation.
#ifndef LOWBIT_CORE_SPAN_HPP
#define LOWBIT_CORE_SPAN_HPP

#include <cstddef>
#include <initializer_list>
#include <type_traits>

#include "../config.hpp"

namespace lowbit {

/// A pointer and an element count. Converts from a C array, from any contiguous
/// container with data() and size() (std::vector, std::array, xt::xtensor...), and from
/// span<T> to span<const T>.
template <class T>
class span {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;

    constexpr span() noexcept = default;
    constexpr span(T* data, std::size_t size) noexcept : m_data(data), m_size(size) {}
    template <std::size_t N>
    constexpr span(T (&array)[N]) noexcept : m_data(array), m_size(N) {}  // NOLINT
    template <class C, class = std::enable_if_t<std::is_convertible<decltype(std::declval<C&>().data()), T*>::value>,
              class = decltype(std::declval<C&>().size())>
    constexpr span(C& c) noexcept : m_data(c.data()), m_size(static_cast<std::size_t>(c.size())) {}  // NOLINT

    constexpr T* data() const noexcept { return m_data; }
    constexpr std::size_t size() const noexcept { return m_size; }
    constexpr bool empty() const noexcept { return m_size == 0; }
    constexpr T& operator[](std::size_t i) const noexcept { return m_data[i]; }
    constexpr T* begin() const noexcept { return m_data; }
    constexpr T* end() const noexcept { return m_data + m_size; }
    constexpr span subspan(std::size_t offset, std::size_t count) const noexcept { return {m_data + offset, count}; }

private:
    T* m_data = nullptr;
    std::size_t m_size = 0;
};

/// Row-major tensor dimensions, at most `max_rank` of them. `numel()` of a shape whose
/// product overflows size_t is reported by the functions that take it (errc::overflow).
class shape {
public:
    static constexpr std::size_t max_rank = 8;

    constexpr shape() noexcept = default;
    /// shape{N, C, H, W}. More than max_rank dimensions: rank() becomes max_rank + 1 and
    /// every function taking the shape rejects it.
    constexpr shape(std::initializer_list<std::size_t> dims) noexcept {
        for (std::size_t d : dims) push(d);
    }
    constexpr shape(const std::size_t* dims, std::size_t rank) noexcept {
        for (std::size_t i = 0; i < rank; ++i) push(dims[i]);
    }

    constexpr std::size_t rank() const noexcept { return m_rank; }
    constexpr std::size_t operator[](std::size_t i) const noexcept { return m_dims[i]; }
    constexpr const std::size_t* data() const noexcept { return m_dims; }
    constexpr bool valid_rank() const noexcept { return m_rank <= max_rank; }

    /// Product of dims[first, last); false if it overflows size_t.
    constexpr bool product(std::size_t first, std::size_t last, std::size_t& out) const noexcept {
        std::size_t p = 1;
        for (std::size_t i = first; i < last && i < max_rank; ++i) {
            if (m_dims[i] != 0 && p > static_cast<std::size_t>(-1) / m_dims[i]) return false;
            p *= m_dims[i];
        }
        out = p;
        return true;
    }

private:
    constexpr void push(std::size_t d) noexcept {
        if (m_rank < max_rank) m_dims[m_rank] = d;
        if (m_rank <= max_rank) ++m_rank;
    }
    std::size_t m_dims[max_rank] = {};
    std::size_t m_rank = 0;
};

}  // namespace lowbit

#endif  // LOWBIT_CORE_SPAN_HPP
