// lowbit/core/layout.hpp: which (scale, zero-point) each element of a tensor uses.
//
// A row-major tensor of `shape` is viewed as [outer, C, inner] around the scheme's axis
// (C = shape[axis]). per_tensor: one parameter. per_channel: C parameters, element
// (o, c, i) uses c. per_group with group size g (g divides C): parameters form the tensor's
// shape with dimension `axis` divided by g (ONNX blocked-quantization layout), element
// (o, c, i) uses (o * (C / g) + c / g) * inner + i. For weights [N, K] grouped along K
// (axis 1, g = 32) that is the familiar [N, K / 32] table.
#ifndef LOWBIT_CORE_LAYOUT_HPP
#define LOWBIT_CORE_LAYOUT_HPP

#include <cstddef>

#include "../config.hpp"
#include "scheme.hpp"
#include "span.hpp"
#include "status.hpp"

namespace lowbit {

/// The [outer, C, inner] decomposition of a shape for one scheme.
struct quant_layout {
    lowbit::granularity granularity = lowbit::granularity::per_tensor;
    std::size_t numel = 0;
    std::size_t outer = 1, channels = 1, inner = 1;
    std::size_t group_size = 1;  ///< 1 for per-channel
    std::size_t param_count = 1;

    /// Index of the parameter used by the element at flat (row-major) index k.
    constexpr std::size_t param_index(std::size_t k) const noexcept {
        if (granularity == lowbit::granularity::per_tensor) return 0;
        const std::size_t c = (k / inner) % channels;
        if (granularity == lowbit::granularity::per_channel) return c;
        const std::size_t o = k / (inner * channels);
        return (o * (channels / group_size) + c / group_size) * inner + k % inner;
    }
};

/// Builds the layout of `shp` under scheme `s`. Errors: rank > 8; axis >= rank (for
/// per-channel / per-group); numel overflowing size_t; group_size not dividing shape[axis].
template <class Scheme>
constexpr result<quant_layout> make_layout(const Scheme& s, const shape& shp) {
    LOWBIT_DETAIL_CHECK(shp.valid_rank(), errc::out_of_range, "shape.rank()", shp.rank(), "must be <= 8");
    quant_layout l;
    l.granularity = s.granularity();
    LOWBIT_DETAIL_CHECK(shp.product(0, shp.rank(), l.numel), errc::overflow, "shape", shp.rank(),
                        "the element count overflows size_t");
    if (l.granularity == lowbit::granularity::per_tensor) return l;
    LOWBIT_DETAIL_CHECK(s.axis() < shp.rank(), errc::out_of_range, "axis", s.axis(), "must be < shape.rank()");
    shp.product(0, s.axis(), l.outer);
    shp.product(s.axis() + 1, shp.rank(), l.inner);
    l.channels = shp[s.axis()];
    if (l.granularity == lowbit::granularity::per_channel) {
        l.param_count = l.channels;
        return l;
    }
    LOWBIT_DETAIL_CHECK(s.group_size() > 0 && l.channels % s.group_size() == 0, errc::invalid_argument, "group_size",
                        s.group_size(), "must be > 0 and divide shape[axis]");
    l.group_size = s.group_size();
    l.param_count = l.numel / s.group_size();
    return l;
}

}  // namespace lowbit

#endif  // LOWBIT_CORE_LAYOUT_HPP
