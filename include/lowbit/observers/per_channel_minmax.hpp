// lowbit/observers/per_channel_minmax.hpp: per-channel range observers, exactly as torch's
// PerChannelMinMaxObserver and MovingAveragePerChannelMinMaxObserver: one [min, max] per
// index along the scheme's axis (scheme.per_channel(axis)), reduced over every other axis.
//
// The state lives in a caller buffer of 2 * channels floats (no heap), given at construction:
//   std::vector<float> state(2 * 64);
//   lowbit::per_channel_minmax_observer<decltype(w8)> obs(w8, 64, state);
//   obs.observe(lowbit::shape{64, 256}, weights);     // or any strided view with dim(axis) == 64
//   obs.qparams(scales, zero_points);
// merge / save / load as in minmax.hpp (exact for min/max; batch-weighted mean for moving
// averages). A channel that saw nothing gives {1.0, 0}.
#ifndef LOWBIT_OBSERVERS_PER_CHANNEL_MINMAX_HPP
#define LOWBIT_OBSERVERS_PER_CHANNEL_MINMAX_HPP

#include <cstddef>
#include <cstdint>
#include <limits>

#include "observer.hpp"

namespace lowbit {
namespace detail {

template <class Scheme, bool Moving>
class per_channel_range_observer {
public:
    using scheme_type = Scheme;
    static constexpr observer_kind kind =
        Moving ? observer_kind::per_channel_moving_average_minmax : observer_kind::per_channel_minmax;

    /// `state` must hold 2 * channels floats and outlive the observer; it is reset here.
    per_channel_range_observer(const Scheme& s, std::size_t channels, span<float> state,
                               float averaging_constant = 0.01f) noexcept
        : m_scheme(s), m_channels(channels), m_state(state), m_c(averaging_constant) {
        reset();
    }

    /// Updates every channel's range with batch x, a strided view (core/strided.hpp) whose
    /// dimension scheme.axis() indexes the channels (x.dim(axis) must equal channels); each
    /// channel's batch range is kernels::min_max's over the elements with that index.
    /// Errors: invalid scheme or not per_channel; state buffer too small; axis >= x.rank();
    /// x.dim(axis) != channels; a non-finite value (named by its index in element order).
    /// On error nothing changes.
    status observe(strided_view<const float> x) {
        LOWBIT_DETAIL_TRY(check_config());
        const std::size_t axis = m_scheme.axis();
        LOWBIT_DETAIL_CHECK(axis < x.rank(), errc::out_of_range, "axis", axis, "must be < x.rank()");
        LOWBIT_DETAIL_CHECK(x.dim(axis) == m_channels, errc::size_mismatch, "shape[axis]", x.dim(axis),
                            "must equal the observer's channel count");
        if (x.empty()) return {};
        constexpr std::size_t stack_channels = 256;
        const bool one_pass = x.is_contiguous() && m_channels <= stack_channels;
        float ch_lo[stack_channels], ch_hi[stack_channels];
        float batch_min = std::numeric_limits<float>::infinity(), batch_max = -batch_min;
        if (one_pass) {
            // the per-channel kernel on the contiguous tensor (same ranges as channel by channel);
            // a NaN or Inf shows in some channel's range, and the batch range is the channels'
            (void)kernels::min_max(x.dims(), axis, span<const float>(x.data(), x.size()), span<float>(ch_lo, m_channels),
                                   span<float>(ch_hi, m_channels));
            bool finite = true;
            for (std::size_t c = 0; c < m_channels; ++c) {
                finite = finite && is_finite(ch_lo[c]) && is_finite(ch_hi[c]);
                batch_min = ch_lo[c] < batch_min ? ch_lo[c] : batch_min;
                batch_max = ch_hi[c] > batch_max ? ch_hi[c] : batch_max;
            }
            if (!finite) LOWBIT_DETAIL_TRY(batch_min_max(x, batch_min, batch_max));  // names the index
        } else {
            LOWBIT_DETAIL_TRY(batch_min_max(x, batch_min, batch_max));  // finiteness, before any change
        }
        const bool first = !Moving || m_stats.batches == 0;
        float* mins = m_state.data();
        float* maxs = m_state.data() + m_channels;
        const auto update = [&](std::size_t c, float lo, float hi) {
            if (first) {
                mins[c] = Moving ? lo : (lo < mins[c] ? lo : mins[c]);
                maxs[c] = Moving ? hi : (hi > maxs[c] ? hi : maxs[c]);
            } else {
                mins[c] = moving_average(mins[c], lo, m_c);
                maxs[c] = moving_average(maxs[c], hi, m_c);
            }
        };
        if (one_pass) {
            for (std::size_t c = 0; c < m_channels; ++c) update(c, ch_lo[c], ch_hi[c]);
        } else {
            for (std::size_t c = 0; c < m_channels; ++c) {
                float lo = std::numeric_limits<float>::infinity(), hi = -lo;
                x.select(axis, c)->for_each_chunk([&](const float* p, std::size_t n) {
                    const min_max_range r = *kernels::min_max(span<const float>(p, n));
                    lo = r.min < lo ? r.min : lo;
                    hi = r.max > hi ? r.max : hi;
                });
                update(c, lo, hi);
            }
        }
        m_stats.min = batch_min < m_stats.min ? batch_min : m_stats.min;
        m_stats.max = batch_max > m_stats.max ? batch_max : m_stats.max;
        m_stats.count += x.size();
        m_stats.batches += 1;
        return {};
    }

    /// observe() of the contiguous row-major tensor of shape `shp` in x. Errors: those of the
    /// view overload, and rank > 8; axis >= shape.rank(); x.size() != the shape's numel.
    status observe(const shape& shp, span<const float> x) {
        LOWBIT_DETAIL_TRY(check_config());
        const result<quant_layout> l = make_layout(m_scheme, shp);
        LOWBIT_DETAIL_TRY(l.status());
        LOWBIT_DETAIL_CHECK(l->channels == m_channels, errc::size_mismatch, "shape[axis]", l->channels,
                            "must equal the observer's channel count");
        LOWBIT_DETAIL_CHECK(x.size() == l->numel, errc::size_mismatch, "x.size()", x.size(), "must equal shape's numel");
        const result<strided_view<const float>> v = strided_view<const float>::make(shp, x);
        LOWBIT_DETAIL_TRY(v.status());
        return observe(*v);
    }

    /// Per-channel choose_qparams into scales / zero_points (channels entries each).
    status qparams(span<float> scales, span<std::int32_t> zero_points) const {
        LOWBIT_DETAIL_TRY(check_config());
        return choose_qparams(m_scheme, span<const float>(m_state.data(), m_channels),
                              span<const float>(m_state.data() + m_channels, m_channels), scales, zero_points);
    }

    /// Running minima / maxima, one per channel.
    span<const float> mins() const noexcept { return {m_state.data(), m_channels}; }
    span<const float> maxs() const noexcept { return {m_state.data() + m_channels, m_channels}; }
    std::size_t channels() const noexcept { return m_channels; }
    const observer_stats& stats() const noexcept { return m_stats; }
    const Scheme& scheme() const noexcept { return m_scheme; }

    void reset() noexcept {
        m_stats = observer_stats{};
        if (m_state.size() < 2 * m_channels) return;
        for (std::size_t c = 0; c < m_channels; ++c) {
            m_state[c] = std::numeric_limits<float>::infinity();
            m_state[m_channels + c] = -std::numeric_limits<float>::infinity();
        }
    }

    std::uint32_t config() const noexcept {
        config_hash h = scheme_config(m_scheme);
        h.add(m_channels);
        if (Moving) h.add_float(m_c);
        return h.value();
    }

    /// Adds another observer's state. Errors: configurations (scheme, channels, constant) differ.
    status merge(const per_channel_range_observer& other) {
        LOWBIT_DETAIL_TRY(check_config());
        LOWBIT_DETAIL_CHECK(other.config() == config(), errc::invalid_argument, "other.config()", other.config(),
                            "observers must have the same scheme, channel count (and averaging constant)");
        if (other.m_stats.batches == 0) return {};
        const bool mean = Moving && m_stats.batches != 0;
        const double wa = static_cast<double>(m_stats.batches), wb = static_cast<double>(other.m_stats.batches);
        for (std::size_t i = 0; i < 2 * m_channels; ++i) {
            const float a = m_state[i], b = other.m_state[i];
            if (mean)
                m_state[i] = static_cast<float>((a * wa + b * wb) / (wa + wb));
            else
                m_state[i] = i < m_channels ? (b < a ? b : a) : (b > a ? b : a);
        }
        m_stats.min = other.m_stats.min < m_stats.min ? other.m_stats.min : m_stats.min;
        m_stats.max = other.m_stats.max > m_stats.max ? other.m_stats.max : m_stats.max;
        m_stats.count += other.m_stats.count;
        m_stats.batches += other.m_stats.batches;
        return {};
    }

    std::size_t state_size() const noexcept { return state_header_size + 8 + 4 + 4 + 8 + 8 + 8 * m_channels; }
    status save(span<std::uint8_t> out) const {
        LOWBIT_DETAIL_TRY(check_config());
        return save_state(static_cast<std::uint16_t>(kind), config(), out, [this](state_writer& w) {
            w.u64(m_channels);
            w.f32(m_stats.min);
            w.f32(m_stats.max);
            w.u64(m_stats.count);
            w.u64(m_stats.batches);
            for (std::size_t i = 0; i < 2 * m_channels; ++i) w.f32(m_state[i]);
        });
    }
    /// Replaces the state with a saved one; on any error the observer is unchanged.
    status load(span<const std::uint8_t> in) {
        LOWBIT_DETAIL_TRY(check_config());
        span<const std::uint8_t> payload;
        LOWBIT_DETAIL_TRY(check_state(in, static_cast<std::uint16_t>(kind), config(), payload));
        LOWBIT_DETAIL_CHECK(payload.size() == state_size() - state_header_size, errc::size_mismatch,
                            "state payload size", payload.size(), "does not match the channel count");
        state_reader r{payload};
        LOWBIT_DETAIL_CHECK(r.u64() == m_channels, errc::invalid_argument, "state channels", m_channels,
                            "saved with a different channel count");
        observer_stats s;
        s.min = r.f32();
        s.max = r.f32();
        s.count = r.u64();
        s.batches = r.u64();
        state_reader check = r;  // validate every channel before writing any
        state_reader check_hi = r;
        for (std::size_t c = 0; c < m_channels; ++c) (void)check_hi.f32();
        for (std::size_t c = 0; c < m_channels; ++c) {
            const float lo = check.f32(), hi = check_hi.f32();
            const bool empty = lo == std::numeric_limits<float>::infinity() && hi == -lo;
            LOWBIT_DETAIL_CHECK(empty || (lo - lo == 0.0f && hi - hi == 0.0f && lo <= hi), errc::invalid_argument,
                                "state channel", c, "inconsistent saved range (min > max or non-finite)");
        }
        m_stats = s;
        for (std::size_t i = 0; i < 2 * m_channels; ++i) m_state[i] = r.f32();
        return {};
    }

private:
    status check_config() const {
        LOWBIT_DETAIL_TRY(m_scheme.validate());
        LOWBIT_DETAIL_CHECK(m_scheme.granularity() == granularity::per_channel, errc::invalid_argument, "granularity",
                            static_cast<int>(m_scheme.granularity()), "per-channel observers need scheme.per_channel(axis)");
        LOWBIT_DETAIL_CHECK(m_state.size() >= 2 * m_channels, errc::size_mismatch, "state.size()", m_state.size(),
                            "must be at least 2 * channels");
        LOWBIT_DETAIL_CHECK(!Moving || (m_c > 0.0f && m_c <= 1.0f), errc::invalid_argument, "averaging_constant", m_c,
                            "must be in (0, 1]");
        return {};
    }

    Scheme m_scheme;
    std::size_t m_channels;
    span<float> m_state;
    float m_c;
    observer_stats m_stats;
};

}  // namespace detail

/// torch PerChannelMinMaxObserver.
template <class Scheme>
using per_channel_minmax_observer = detail::per_channel_range_observer<Scheme, false>;
/// torch MovingAveragePerChannelMinMaxObserver (first batch sets, then the moving average).
template <class Scheme>
using per_channel_moving_average_minmax_observer = detail::per_channel_range_observer<Scheme, true>;

}  // namespace lowbit

#endif  // LOWBIT_OBSERVERS_PER_CHANNEL_MINMAX_HPP
