// lowbit/quant/fake_quantize.hpp: the QAT fake-quantize module and the fused observe +
// fake-quantize step, the two things a hand-written QAT loop puts in front of a layer.
//
// 1. lowbit::fake_quantize<Scheme, Observer>: torch.ao.quantization.FakeQuantize (1.13),
//    per tensor or per channel (a per-channel observer makes it per channel):
//
//      lowbit::fake_quantize<lowbit::scheme<lowbit::u8>> fq;      // MovingAverageMinMaxObserver, c = 0.01
//      fq.forward(x, y, mask);                 // observe (while enabled), qparams, fake-quant
//      fq.backward_masked(mask, dy, dx);       // STE with the kept mask ...
//      fq.backward(x, dy, dx);                 // ... or recomputed from x (no mask memory)
//      fq.disable_observer();                  // freeze the qparams (QAT schedule switches)
//      lowbit::qparams qp = fq.qparams();      // export: what PTQ with the frozen observer gives
//
//    forward(x), as FakeQuantize.forward:
//      if observer enabled:   observer.observe(x); (scale, zero_point) = observer's qparams
//      if fake-quant enabled: y = fake_quantize_per_{tensor,channel}_affine(x, scale, zero_point)
//      else                   y = x (the mask, if asked for, is all ones)
//    backward, torch's autograd of that: dx = mask ? dy : dy * 0 with the clip mask of the qparams used
//    by the forward (closed range, core/fake_quantize.hpp); dx = dy (a copy) when fake-quant
//    was disabled in the forward. The mask is either kept by the forward (x.size() bytes in a
//    caller buffer, then backward_masked: one read of 1 byte + 4 bytes per element) or
//    recomputed by backward from x (no memory, one more multiply-round-compare per element):
//    the user chooses memory or time. Recomputing needs the qparams of that forward: call
//    backward before the next forward (or set_qparams) changes them.
//    Freezing: disable_observer() (torch's) keeps the current qparams; freeze() is the same
//    under its QAT name. update_qparams() recomputes them from the observer's state (after
//    observer().load() / merge(), e.g. ranks averaging their ranges); set_qparams() loads
//    explicit ones (a checkpoint). The per-element path never allocates: per-channel qparams
//    live in caller buffers given at construction, as the per-channel observers' state does.
//
// 2. lowbit::fused_moving_avg_obs_fake_quant: torch.fused_moving_avg_obs_fake_quant (the
//    FusedMovingAvgObsFakeQuantize module's op), bit for bit with a scheme of
//    profile::torch_fused (FBGEMM's ChooseQuantizationParams; with profile::torch it is
//    MovingAverageMinMaxObserver's calculate_qparams instead). In one call:
//      if observer_on:   batch min / max (kernels::min_max), then per value
//                        running = isinf(running) ? batch : f32(running + f32(c * f32(batch - running)))
//      if fake_quant_on: (scale, zero_point) = choose_qparams(running_min, running_max);
//                        y = fake-quant(x), mask = the STE mask
//      else:             y = x, mask = all ones; scale / zero_point are NOT recomputed (torch
//                        recomputes them only when fake-quant is on, unlike FakeQuantize)
//    It is bit-identical to moving_average_minmax_observer (or its per-channel twin) with the
//    same scheme followed by kernels::fake_quantize (tests/quant/test_fake_quantize_module.cpp).
//
//    Passes over the data. Two reads of x (and one write of y and of the mask): the min / max
//    pass, then the fake-quant pass. One pass is impossible in general: every output element
//    depends, through the qparams, on the whole batch's min and max. torch's fused op makes the
//    same two passes (aminmax, then the cachemask fake-quant); "fused" means one call and no
//    intermediate tensors, not one pass. For a batch larger than the cache, the second read
//    comes from memory; a blocked variant could overlap block k's fake-quant with block k+1's
//    min / max only by speculating on the qparams (recomputing blocks whose qparams changed),
//    which this version does not do.
//
// Matching a torch FakeQuantize: torch hands quant_min / quant_max to the observer, which then
// has a custom range, so build the scheme with .with_range(quant_min, quant_max) even for the
// natural range (it matters for symmetric u8: torch's FakeQuantize uses zero-point 127 where
// a bare MinMaxObserver(quint8, symmetric) uses 128).
//
// Data must be finite while observed (as every lowbit observer: a NaN / Inf batch is refused
// with its index named, and nothing changes; torch would propagate it into the range). What
// fake-quant does with non-finite x when not observing is core/fake_quantize.hpp's.
#ifndef LOWBIT_QUANT_FAKE_QUANTIZE_HPP
#define LOWBIT_QUANT_FAKE_QUANTIZE_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "../core/fake_quantize.hpp"
#include "../core/layout.hpp"
#include "../core/qparams.hpp"
#include "../core/span.hpp"
#include "../core/status.hpp"
#include "../core/strided.hpp"
#include "../kernels/fake_quantize.hpp"
#include "../kernels/per_channel.hpp"
#include "../kernels/reduce.hpp"
#include "../observers/minmax.hpp"
#include "../observers/per_channel_minmax.hpp"

namespace lowbit {
namespace detail {

/// True for observers with one range per channel (they have channels()).
template <class O, class = void>
struct is_per_channel_observer : std::false_type {};
template <class O>
struct is_per_channel_observer<O, decltype(void(std::declval<const O&>().channels()))> : std::true_type {};

/// y = x (skipped when y is x), mask = 1.
inline void fq_identity(span<const float> x, span<float> y, span<std::uint8_t> mask) noexcept {
    if (y.data() != x.data() && !x.empty()) std::memmove(y.data(), x.data(), x.size() * sizeof(float));
    if (!mask.empty()) std::memset(mask.data(), 1, mask.size());
}

inline status fq_check_sizes(span<const float> x, span<float> y, span<std::uint8_t> mask) {
    LOWBIT_DETAIL_CHECK(y.size() == x.size(), errc::size_mismatch, "y.size()", y.size(), "must equal x.size()");
    LOWBIT_DETAIL_CHECK(mask.empty() || mask.size() == x.size(), errc::size_mismatch, "mask.size()", mask.size(),
                        "must be 0 (no mask) or x.size()");
    return {};
}

inline status fq_check_grad_sizes(std::size_t n, span<const float> dy, span<float> dx) {
    LOWBIT_DETAIL_CHECK(dy.size() == n, errc::size_mismatch, "dy.size()", dy.size(), "must equal x.size()");
    LOWBIT_DETAIL_CHECK(dx.size() == n, errc::size_mismatch, "dx.size()", dx.size(), "must equal x.size()");
    return {};
}

/// The fused op's observer step for one value: torch's `isinf(running) ? batch : moving average`.
inline float fused_running(float running, float batch, float c) noexcept {
    return is_finite(running) ? moving_average(running, batch, c) : batch;
}

/// Min / max of channel c (index along axis) of the contiguous tensor x of shape shp, as
/// kernels::min_max (a zero result is +0.0). Not finite -> reported by the caller.
inline min_max_range channel_min_max(const strided_view<const float>& v, std::size_t axis, std::size_t c) {
    min_max_range out;
    v.select(axis, c)->for_each_chunk([&](const float* p, std::size_t n) {
        const min_max_range r = *kernels::min_max(span<const float>(p, n));
        out.min = r.min < out.min || r.min != r.min ? r.min : out.min;
        out.max = r.max > out.max || r.max != r.max ? r.max : out.max;
    });
    return out;
}

/// A running range is either unset (+Inf, -Inf) or finite with min <= max.
inline status check_running_range(float lo, float hi) {
    const bool unset = lo == inf_f && hi == -inf_f;
    LOWBIT_DETAIL_CHECK(unset || (is_finite(lo) && is_finite(hi) && lo <= hi), errc::invalid_argument, "running_min",
                        lo, "a running range must be unset (+Inf, -Inf) or finite with running_min <= running_max");
    return {};
}

inline status first_non_finite(span<const float> x) {
    for (std::size_t k = 0; k < x.size(); ++k)
        LOWBIT_DETAIL_CHECK(is_finite(x[k]), errc::invalid_argument, "x[i] (index)", k, "observed data must be finite");
    return {};
}

}  // namespace detail

/// torch.ao.quantization.FakeQuantize with a lowbit observer (file comment). Observer is any
/// per-tensor observer (observe(span), qparams()) or per-channel one (observe(shape, span),
/// qparams(scales, zero_points), channels()); the scheme fake-quant uses is the observer's.
/// A plain value: copy it, keep one per quantized tensor. Initial qparams: torch's {1.0, 0}
/// (per channel: every channel). Switches start enabled.
template <class Scheme, class Observer = moving_average_minmax_observer<Scheme>>
class fake_quantize {
    static_assert(std::is_same<typename Observer::scheme_type, Scheme>::value,
                  "lowbit::fake_quantize: Observer must observe with the same Scheme type");

public:
    using scheme_type = Scheme;
    using observer_type = Observer;
    /// True if per channel (the observer has one range per channel).
    static constexpr bool per_channel = detail::is_per_channel_observer<Observer>::value;

    /// Per tensor: the observer (default: the observer type's default, e.g. a moving average
    /// with c = 0.01 and the default scheme, as torch's default FakeQuantize).
    explicit fake_quantize(const Observer& observer = Observer{}) noexcept : m_obs(observer) {
        static_assert(!per_channel, "lowbit::fake_quantize: a per-channel observer needs scales / zero_points buffers");
    }
    /// Per channel: scales and zero_points (observer.channels() entries each, caller-owned,
    /// outliving the module) hold the qparams; they are set to {1.0, 0} here. A buffer that
    /// is too small is reported by every call that needs it.
    fake_quantize(const Observer& observer, span<float> scales, span<std::int32_t> zero_points) noexcept
        : m_obs(observer), m_scales(scales), m_zero_points(zero_points) {
        static_assert(per_channel, "lowbit::fake_quantize: scales / zero_points buffers are for per-channel observers");
        for (float& s : m_scales) s = 1.0f;
        for (std::int32_t& z : m_zero_points) z = 0;
    }

    // ---- forward ----

    /// Per-tensor forward (file comment) of a contiguous x: y[k] = fake-quant(x[k]) and, if
    /// `mask` is non-empty (x.size() bytes), the STE mask; y may alias x exactly. Empty x:
    /// nothing observed, nothing written. Errors (nothing changes): y / mask sizes; an invalid
    /// observer configuration; a non-finite x while the observer is enabled (index named).
    status forward(span<const float> x, span<float> y, span<std::uint8_t> mask = {}) {
        static_assert(!per_channel, "lowbit::fake_quantize: per-channel forward needs the tensor's shape");
        LOWBIT_DETAIL_TRY(detail::fq_check_sizes(x, y, mask));
        if (m_observer_on) {
            LOWBIT_DETAIL_TRY(m_obs.observe(x));
            const result<lowbit::qparams> qp = m_obs.qparams();
            LOWBIT_DETAIL_TRY(qp.status());
            m_qp = *qp;
        }
        m_last_fake_quant = m_fake_quant_on;
        if (!m_fake_quant_on) {
            detail::fq_identity(x, y, mask);
            return {};
        }
        return kernels::fake_quantize(m_obs.scheme(), m_qp, x, y, mask);
    }

    /// Forward of a contiguous tensor of shape `shp` (row-major); per channel the channel axis
    /// is the scheme's (scheme.per_channel(axis)). Errors: those above, plus rank > 8,
    /// x.size() != the shape's numel, shape[axis] != channels, buffers too small.
    status forward(const shape& shp, span<const float> x, span<float> y, span<std::uint8_t> mask = {}) {
        if constexpr (!per_channel) {
            std::size_t n = 0;
            LOWBIT_DETAIL_CHECK(shp.valid_rank(), errc::out_of_range, "shape.rank()", shp.rank(), "must be <= 8");
            LOWBIT_DETAIL_CHECK(shp.product(0, shp.rank(), n) && n == x.size(), errc::size_mismatch, "x.size()",
                                x.size(), "must equal shape's numel");
            return forward(x, y, mask);
        } else {
            LOWBIT_DETAIL_TRY(check_channels(shp, x.size()));
            LOWBIT_DETAIL_TRY(detail::fq_check_sizes(x, y, mask));
            if (m_observer_on) {
                LOWBIT_DETAIL_TRY(m_obs.observe(shp, x));
                LOWBIT_DETAIL_TRY(m_obs.qparams(scales(), zero_points()));
            }
            m_last_fake_quant = m_fake_quant_on;
            if (!m_fake_quant_on) {
                detail::fq_identity(x, y, mask);
                return {};
            }
            return kernels::fake_quantize(m_obs.scheme(), shp, qparams(), x, y, mask);
        }
    }

    // ---- backward ----

    /// Straight-through backward recomputing the mask from x with the current qparams:
    /// dx = mask(x) ? dy : dy * 0 (a NaN dy stays NaN), or dx = dy if the last forward had fake-quant
    /// disabled. dx may alias dy exactly. Errors: sizes.
    status backward(span<const float> x, span<const float> dy, span<float> dx) const {
        static_assert(!per_channel, "lowbit::fake_quantize: per-channel backward needs the tensor's shape");
        LOWBIT_DETAIL_TRY(detail::fq_check_grad_sizes(x.size(), dy, dx));
        if (!m_last_fake_quant) {
            detail::fq_identity(dy, dx, {});
            return {};
        }
        return kernels::fake_quantize_backward(m_obs.scheme(), m_qp, x, dy, dx);
    }

    /// As above for a tensor of shape `shp` (required per channel).
    status backward(const shape& shp, span<const float> x, span<const float> dy, span<float> dx) const {
        if constexpr (!per_channel) {
            std::size_t n = 0;
            LOWBIT_DETAIL_CHECK(shp.valid_rank(), errc::out_of_range, "shape.rank()", shp.rank(), "must be <= 8");
            LOWBIT_DETAIL_CHECK(shp.product(0, shp.rank(), n) && n == x.size(), errc::size_mismatch, "x.size()",
                                x.size(), "must equal shape's numel");
            return backward(x, dy, dx);
        } else {
            LOWBIT_DETAIL_TRY(check_channels(shp, x.size()));
            LOWBIT_DETAIL_TRY(detail::fq_check_grad_sizes(x.size(), dy, dx));
            if (!m_last_fake_quant) {
                detail::fq_identity(dy, dx, {});
                return {};
            }
            return kernels::fake_quantize_backward(m_obs.scheme(), shp, qparams(), x, dy, dx);
        }
    }

    /// Straight-through backward from the mask the forward kept: dx = mask ? dy : dy * 0
    /// (a forward with fake-quant disabled kept all ones). dx may alias dy. Errors: sizes.
    status backward_masked(span<const std::uint8_t> mask, span<const float> dy, span<float> dx) const {
        return kernels::fake_quantize_backward_masked(mask, dy, dx);
    }

    // ---- QAT switches (torch's FakeQuantizeBase methods) ----

    void enable_observer(bool on = true) noexcept { m_observer_on = on; }
    void disable_observer() noexcept { m_observer_on = false; }
    void enable_fake_quant(bool on = true) noexcept { m_fake_quant_on = on; }
    void disable_fake_quant() noexcept { m_fake_quant_on = false; }
    bool observer_enabled() const noexcept { return m_observer_on; }
    bool fake_quant_enabled() const noexcept { return m_fake_quant_on; }

    /// Freezes the qparams: the observer stops, the current qparams stay (= disable_observer()).
    void freeze() noexcept { m_observer_on = false; }
    bool frozen() const noexcept { return !m_observer_on; }

    /// Recomputes the qparams from the observer's current state, without observing (after
    /// observer().load() / merge()). Errors: the observer's (invalid configuration); per
    /// channel, buffers too small. Nothing changes on error.
    status update_qparams() {
        if constexpr (!per_channel) {
            const result<lowbit::qparams> qp = m_obs.qparams();
            LOWBIT_DETAIL_TRY(qp.status());
            m_qp = *qp;
            return {};
        } else {
            LOWBIT_DETAIL_TRY(check_buffers());
            return m_obs.qparams(scales(), zero_points());
        }
    }

    /// Loads explicit qparams (does not touch the observer or the switches; freeze() to keep
    /// them). Errors: check_qparams fails (nothing changes).
    status set_qparams(lowbit::qparams qp) {
        static_assert(!per_channel, "lowbit::fake_quantize: per-channel modules take a qparams_view");
        LOWBIT_DETAIL_TRY(check_qparams(m_obs.scheme(), qp));
        m_qp = qp;
        return {};
    }
    /// Per channel: scales / zero_points of channels() entries each (zero_points may be empty
    /// for a symmetric scheme: the scheme's zero-point). Errors: sizes, check_qparams of any
    /// channel (nothing changes).
    status set_qparams(qparams_view qp) {
        static_assert(per_channel, "lowbit::fake_quantize: per-tensor modules take one qparams");
        LOWBIT_DETAIL_TRY(check_buffers());
        const std::size_t c = m_obs.channels();
        LOWBIT_DETAIL_CHECK(qp.scales.size() == c, errc::size_mismatch, "qp.scales.size()", qp.scales.size(),
                            "must equal channels()");
        LOWBIT_DETAIL_CHECK(qp.zero_points.size() == c || (qp.zero_points.empty() && Scheme::sym != symmetry::affine),
                            errc::size_mismatch, "qp.zero_points.size()", qp.zero_points.size(),
                            "must equal channels() (or be empty for a symmetric scheme)");
        for (std::size_t i = 0; i < c; ++i) {
            const std::int32_t z = qp.zero_points.empty() ? m_obs.scheme().symmetric_zero_point() : qp.zero_points[i];
            LOWBIT_DETAIL_TRY(check_qparams(m_obs.scheme(), lowbit::qparams{qp.scales[i], z}));
        }
        for (std::size_t i = 0; i < c; ++i) {
            m_scales[i] = qp.scales[i];
            m_zero_points[i] = qp.zero_points.empty() ? m_obs.scheme().symmetric_zero_point() : qp.zero_points[i];
        }
        return {};
    }

    // ---- state ----

    /// The current qparams: per tensor a lowbit::qparams; per channel a qparams_view of the
    /// caller buffers (channels() entries; empty if the buffers are too small).
    auto qparams() const noexcept {
        if constexpr (!per_channel) {
            return m_qp;
        } else {
            return qparams_view{span<const float>(m_scales.data(), channels_in_buffers()),
                                span<const std::int32_t>(m_zero_points.data(), channels_in_buffers())};
        }
    }

    Observer& observer() noexcept { return m_obs; }
    const Observer& observer() const noexcept { return m_obs; }
    const Scheme& scheme() const noexcept { return m_obs.scheme(); }
    /// Whether the last forward fake-quantized (what backward() does).
    bool last_forward_fake_quantized() const noexcept { return m_last_fake_quant; }

private:
    std::size_t channels_in_buffers() const noexcept {
        if constexpr (per_channel) {
            const std::size_t c = m_obs.channels();
            return m_scales.size() >= c && m_zero_points.size() >= c ? c : 0;
        } else {
            return 0;
        }
    }
    span<float> scales() const noexcept { return {m_scales.data(), channels_in_buffers()}; }
    span<std::int32_t> zero_points() const noexcept { return {m_zero_points.data(), channels_in_buffers()}; }

    status check_buffers() const {
        if constexpr (per_channel) {
            LOWBIT_DETAIL_CHECK(m_scales.size() >= m_obs.channels(), errc::size_mismatch, "scales.size()",
                                m_scales.size(), "must be >= the observer's channel count");
            LOWBIT_DETAIL_CHECK(m_zero_points.size() >= m_obs.channels(), errc::size_mismatch, "zero_points.size()",
                                m_zero_points.size(), "must be >= the observer's channel count");
        }
        return {};
    }
    status check_channels(const shape& shp, std::size_t x_size) const {
        LOWBIT_DETAIL_TRY(check_buffers());
        const result<quant_layout> l = make_layout(m_obs.scheme(), shp);
        LOWBIT_DETAIL_TRY(l.status());
        LOWBIT_DETAIL_CHECK(l->numel == x_size, errc::size_mismatch, "x.size()", x_size, "must equal shape's numel");
        if constexpr (per_channel)
            LOWBIT_DETAIL_CHECK(l->channels == m_obs.channels(), errc::size_mismatch, "shape[axis]", l->channels,
                                "must equal the observer's channel count");
        return {};
    }

    Observer m_obs;
    lowbit::qparams m_qp{};
    span<float> m_scales;
    span<std::int32_t> m_zero_points;
    bool m_observer_on = true;
    bool m_fake_quant_on = true;
    bool m_last_fake_quant = true;
};

// =======================================================================================
// the fused op

/// Per-tensor state of torch.fused_moving_avg_obs_fake_quant: its running_min / running_max,
/// scale and zero_point buffers. Initial values are torch's (FusedMovingAvgObsFakeQuantize).
struct fused_fake_quantize_state {
    float running_min = std::numeric_limits<float>::infinity();
    float running_max = -std::numeric_limits<float>::infinity();
    lowbit::qparams qp{};
};

/// Per-channel state: caller buffers of `channels` entries each; reset() gives torch's start
/// (running_min +Inf, running_max -Inf, scales 1, zero_points 0).
struct fused_fake_quantize_channels {
    span<float> running_min;
    span<float> running_max;
    span<float> scales;
    span<std::int32_t> zero_points;

    /// torch's initial state.
    void reset() const noexcept {
        for (float& v : running_min) v = std::numeric_limits<float>::infinity();
        for (float& v : running_max) v = -std::numeric_limits<float>::infinity();
        for (float& v : scales) v = 1.0f;
        for (std::int32_t& v : zero_points) v = 0;
    }
};

/// The switches and averaging constant of one call (torch's observer_on, fake_quant_on,
/// averaging_const).
struct fused_options {
    float averaging_constant = 0.01f;  ///< in (0, 1]
    bool observer_on = true;
    bool fake_quant_on = true;
};

/// Per-tensor fused observe + fake-quant, same as torch.fused_moving_avg_obs_fake_quant(x,
/// observer_on, fake_quant_on, running_min, running_max, scale, zero_point, averaging_const,
/// quant_min, quant_max, ch_axis, per_row_fake_quant = False, symmetric_quant) with a scheme
/// of profile::torch_fused (file comment for the algorithm and its two passes). `st` is
/// updated in place; y may alias x exactly; mask optional (x.size() bytes). Empty x: nothing
/// observed. With nothing ever observed, fake-quant uses choose_qparams's {1.0, 0} (torch
/// raises). Errors (nothing changes): invalid or non-per-tensor scheme; averaging constant
/// outside (0, 1]; sizes; a non-finite x while observing (index named); a running range that
/// is neither unset (+Inf, -Inf) nor finite with min <= max (torch would start a half-set
/// range over per value; lowbit refuses such a state).
template <class Scheme>
status fused_moving_avg_obs_fake_quant(const Scheme& s, span<const float> x, span<float> y, span<std::uint8_t> mask,
                                       fused_fake_quantize_state& st, fused_options opt = {}) {
    LOWBIT_DETAIL_TRY(s.validate());
    LOWBIT_DETAIL_TRY(detail::check_per_tensor(s));
    LOWBIT_DETAIL_CHECK(opt.averaging_constant > 0.0f && opt.averaging_constant <= 1.0f, errc::invalid_argument,
                        "averaging_constant", opt.averaging_constant, "must be in (0, 1]");
    LOWBIT_DETAIL_TRY(detail::fq_check_sizes(x, y, mask));
    LOWBIT_DETAIL_TRY(detail::check_running_range(st.running_min, st.running_max));
    float rmin = st.running_min, rmax = st.running_max;
    if (opt.observer_on && !x.empty()) {  // pass 1: the batch range
        const min_max_range r = *kernels::min_max(x);  // NaN -> {NaN, NaN}
        if (!detail::is_finite(r.min) || !detail::is_finite(r.max)) LOWBIT_DETAIL_TRY(detail::first_non_finite(x));
        rmin = detail::fused_running(rmin, r.min, opt.averaging_constant);
        rmax = detail::fused_running(rmax, r.max, opt.averaging_constant);
    }
    lowbit::qparams qp = st.qp;
    if (opt.fake_quant_on) {
        const result<lowbit::qparams> q = choose_qparams(s, rmin, rmax);
        LOWBIT_DETAIL_TRY(q.status());
        qp = *q;
    }
    st.running_min = rmin;
    st.running_max = rmax;
    st.qp = qp;
    if (!opt.fake_quant_on) {
        detail::fq_identity(x, y, mask);
        return {};
    }
    return kernels::fake_quantize(s, qp, x, y, mask);  // pass 2
}

/// Per-channel fused observe + fake-quant (torch's per_row_fake_quant = True, ch_axis = the
/// scheme's axis; torch itself supports only axis 0) over a contiguous tensor of shape `shp`.
/// `st`'s four buffers hold shape[axis] entries each. Errors: those of the per-tensor
/// overload (scheme must be per_channel), layout errors, buffer sizes.
template <class Scheme>
status fused_moving_avg_obs_fake_quant(const Scheme& s, const shape& shp, span<const float> x, span<float> y,
                                       span<std::uint8_t> mask, const fused_fake_quantize_channels& st,
                                       fused_options opt = {}) {
    LOWBIT_DETAIL_TRY(s.validate());
    LOWBIT_DETAIL_CHECK(s.granularity() == granularity::per_channel, errc::invalid_argument, "granularity",
                        static_cast<int>(s.granularity()), "the per-channel fused op needs scheme.per_channel(axis)");
    LOWBIT_DETAIL_CHECK(opt.averaging_constant > 0.0f && opt.averaging_constant <= 1.0f, errc::invalid_argument,
                        "averaging_constant", opt.averaging_constant, "must be in (0, 1]");
    const result<quant_layout> l = make_layout(s, shp);
    LOWBIT_DETAIL_TRY(l.status());
    LOWBIT_DETAIL_CHECK(x.size() == l->numel, errc::size_mismatch, "x.size()", x.size(), "must equal shape's numel");
    LOWBIT_DETAIL_TRY(detail::fq_check_sizes(x, y, mask));
    const std::size_t C = l->channels;
    LOWBIT_DETAIL_CHECK(st.running_min.size() == C, errc::size_mismatch, "running_min.size()", st.running_min.size(),
                        "must equal shape[axis]");
    LOWBIT_DETAIL_CHECK(st.running_max.size() == C, errc::size_mismatch, "running_max.size()", st.running_max.size(),
                        "must equal shape[axis]");
    LOWBIT_DETAIL_CHECK(st.scales.size() == C, errc::size_mismatch, "scales.size()", st.scales.size(),
                        "must equal shape[axis]");
    LOWBIT_DETAIL_CHECK(st.zero_points.size() == C, errc::size_mismatch, "zero_points.size()", st.zero_points.size(),
                        "must equal shape[axis]");
    for (std::size_t c = 0; c < C; ++c)  // checked before anything is written
        LOWBIT_DETAIL_TRY(detail::check_running_range(st.running_min[c], st.running_max[c]));
    const bool observe = opt.observer_on && !x.empty();
    if (observe) {  // finiteness first, so a refusal changes nothing
        const min_max_range r = *kernels::min_max(x);
        if (!detail::is_finite(r.min) || !detail::is_finite(r.max)) LOWBIT_DETAIL_TRY(detail::first_non_finite(x));
    }
    if (observe) {
        const strided_view<const float> v = *strided_view<const float>::make(shp, x);
        constexpr std::size_t stack_channels = 256;
        float lo[stack_channels], hi[stack_channels];
        const bool whole = C <= stack_channels;
        if (whole)
            (void)kernels::min_max(shp, s.axis(), x, span<float>(lo, C), span<float>(hi, C));
        for (std::size_t c = 0; c < C; ++c) {
            min_max_range r;
            if (whole) {
                r.min = lo[c];
                r.max = hi[c];
            } else {
                r = detail::channel_min_max(v, s.axis(), c);
            }
            if (r.min > r.max) continue;  // a channel without elements (shape with a 0 elsewhere)
            st.running_min[c] = detail::fused_running(st.running_min[c], r.min, opt.averaging_constant);
            st.running_max[c] = detail::fused_running(st.running_max[c], r.max, opt.averaging_constant);
        }
    }
    if (!opt.fake_quant_on) {
        detail::fq_identity(x, y, mask);
        return {};
    }
    LOWBIT_DETAIL_TRY(choose_qparams(s, span<const float>(st.running_min), span<const float>(st.running_max),
                                     st.scales, st.zero_points));
    return kernels::fake_quantize(s, shp, qparams_view{st.scales, st.zero_points}, x, y, mask);  // pass 2
}

}  // namespace lowbit

#endif  // LOWBIT_QUANT_FAKE_QUANTIZE_HPP
