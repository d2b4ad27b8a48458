// lowbit/observers/minmax.hpp: range observers, exactly as torch.ao.quantization's
// MinMaxObserver, MovingAverageMinMaxObserver, PerChannelMinMaxObserver and
// MovingAveragePerChannelMinMaxObserver (same running min/max, same float32 moving average,
// same calculate_qparams through lowbit::choose_qparams).
//
//   lowbit::minmax_observer<lowbit::scheme<lowbit::u8>> obs;
//   for (auto& batch : batches) obs.observe(batch);
//   lowbit::qparams qp = *obs.qparams();
//
// Batches are strided views (observer.hpp) or spans. They must be finite: a NaN or Inf is
// refused (error naming its index) and the batch is not counted. A batch's min / max is
// kernels::min_max's (a zero result is +0.0; torch keeps whichever zero comes first, which
// gives the same qparams). An observer that saw nothing gives torch's {1.0, 0}.
// merge(): min/max observers merge exactly (the range of the union), so sharded calibration
// in any split and order equals one observer. Moving averages depend on batch order, so their
// merge is defined as the batch-weighted mean of the two running ranges (what data-parallel
// QAT does when ranks average their ranges); it equals a single observer only in special cases.
#ifndef LOWBIT_OBSERVERS_MINMAX_HPP
#define LOWBIT_OBSERVERS_MINMAX_HPP

#include <cstddef>
#include <cstdint>
#include <limits>

#include "observer.hpp"

namespace lowbit {

namespace detail {

// The per-tensor range observers, with or without moving average.
template <class Scheme, bool Moving>
class range_observer {
public:
    using scheme_type = Scheme;
    static constexpr observer_kind kind = Moving ? observer_kind::moving_average_minmax : observer_kind::minmax;

    constexpr explicit range_observer(const Scheme& s = Scheme{}, float averaging_constant = 0.01f) noexcept
        : m_scheme(s), m_c(averaging_constant) {}

    /// Updates the range with batch x, a strided view (core/strided.hpp; a span converts to
    /// one); empty x: no change. Errors: invalid or non-per-tensor scheme; averaging constant
    /// outside (0, 1]; a non-finite value in x (named by its index in element order). On error
    /// nothing changes.
    status observe(strided_view<const float> x) {
        LOWBIT_DETAIL_TRY(check_config());
        if (x.empty()) return {};
        float mn = 0.0f, mx = 0.0f;
        LOWBIT_DETAIL_TRY(batch_min_max(x, mn, mx));
        if (!Moving || m_stats.batches == 0) {
            m_stats.min = mn < m_stats.min ? mn : m_stats.min;
            m_stats.max = mx > m_stats.max ? mx : m_stats.max;
            if (Moving) m_stats.min = mn, m_stats.max = mx;
        } else {
            m_stats.min = moving_average(m_stats.min, mn, m_c);
            m_stats.max = moving_average(m_stats.max, mx, m_c);
        }
        m_stats.count += x.size();
        m_stats.batches += 1;
        return {};
    }
    /// observe() of a contiguous batch.
    status observe(span<const float> x) { return observe(strided_view<const float>(x)); }

    /// choose_qparams(scheme, min, max): torch's calculate_qparams.
    result<lowbit::qparams> qparams() const {
        LOWBIT_DETAIL_TRY(check_config());
        return choose_qparams(m_scheme, m_stats.min, m_stats.max);
    }

    void reset() noexcept { m_stats = observer_stats{}; }
    const observer_stats& stats() const noexcept { return m_stats; }
    const Scheme& scheme() const noexcept { return m_scheme; }
    float averaging_constant() const noexcept { return m_c; }

    /// Tag of the configuration; merge / load require equal tags.
    std::uint32_t config() const noexcept {
        config_hash h = scheme_config(m_scheme);
        if (Moving) h.add_float(m_c);
        return h.value();
    }

    /// Adds another observer's state (see the file comment). Errors: configurations differ.
    status merge(const range_observer& other) {
        LOWBIT_DETAIL_CHECK(other.config() == config(), errc::invalid_argument, "other.config()", other.config(),
                            "observers must have the same scheme (and averaging constant) to merge");
        if (other.m_stats.batches == 0) return {};
        if (m_stats.batches == 0 || !Moving) {
            m_stats.min = other.m_stats.min < m_stats.min ? other.m_stats.min : m_stats.min;
            m_stats.max = other.m_stats.max > m_stats.max ? other.m_stats.max : m_stats.max;
        } else {
            const double wa = static_cast<double>(m_stats.batches), wb = static_cast<double>(other.m_stats.batches);
            m_stats.min = static_cast<float>((m_stats.min * wa + other.m_stats.min * wb) / (wa + wb));
            m_stats.max = static_cast<float>((m_stats.max * wa + other.m_stats.max * wb) / (wa + wb));
        }
        m_stats.count += other.m_stats.count;
        m_stats.batches += other.m_stats.batches;
        return {};
    }

    /// Bytes save() writes.
    std::size_t state_size() const noexcept { return state_header_size + 4 + 4 + 8 + 8; }
    /// Writes the state (state.hpp layout). Errors: out too small.
    status save(span<std::uint8_t> out) const {
        return save_state(static_cast<std::uint16_t>(kind), config(), out, [this](state_writer& w) {
            w.f32(m_stats.min);
            w.f32(m_stats.max);
            w.u64(m_stats.count);
            w.u64(m_stats.batches);
        });
    }
    /// Replaces the state with a saved one. Errors (state unchanged): truncated, corrupted,
    /// other version, other observer type or configuration, or an inconsistent payload.
    status load(span<const std::uint8_t> in) {
        span<const std::uint8_t> payload;
        LOWBIT_DETAIL_TRY(check_state(in, static_cast<std::uint16_t>(kind), config(), payload));
        LOWBIT_DETAIL_CHECK(payload.size() == 24, errc::size_mismatch, "state payload size", payload.size(),
                            "must be 24 bytes for this observer");
        state_reader r{payload};
        observer_stats s;
        s.min = r.f32();
        s.max = r.f32();
        s.count = r.u64();
        s.batches = r.u64();
        const bool empty = s.batches == 0 && s.count == 0 && s.min == std::numeric_limits<float>::infinity() &&
                           s.max == -std::numeric_limits<float>::infinity();
        const bool valid = s.batches > 0 && s.min - s.min == 0.0f && s.max - s.max == 0.0f && s.min <= s.max;
        LOWBIT_DETAIL_CHECK(empty || valid, errc::invalid_argument, "state min", s.min,
                            "inconsistent saved range (min > max, non-finite, or counts without data)");
        m_stats = s;
        return {};
    }

private:
    status check_config() const {
        LOWBIT_DETAIL_TRY(m_scheme.validate());
        LOWBIT_DETAIL_TRY(lowbit::detail::check_per_tensor(m_scheme));
        LOWBIT_DETAIL_CHECK(!Moving || (m_c > 0.0f && m_c <= 1.0f), errc::invalid_argument, "averaging_constant", m_c,
                            "must be in (0, 1]");
        return {};
    }

    Scheme m_scheme;
    float m_c;
    observer_stats m_stats;
};

}  // namespace detail

/// torch MinMaxObserver: the running [min, max] of everything observed.
template <class Scheme>
using minmax_observer = detail::range_observer<Scheme, false>;

/// torch MovingAverageMinMaxObserver: the first batch sets [min, max]; later batches move it
/// by m = f32(m + f32(c * f32(batch - m))), c = averaging_constant (default 0.01).
template <class Scheme>
using moving_average_minmax_observer = detail::range_observer<Scheme, true>;

}  // namespace lowbit

#endif  // LOWBIT_OBSERVERS_MINMAX_HPP
