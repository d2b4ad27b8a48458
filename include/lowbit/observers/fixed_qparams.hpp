// lowbit/observers/fixed_qparams.hpp: an observer whose qparams are fixed in advance, as
// torch.ao.quantization.FixedQParamsObserver (used for ops with a known output range:
// sigmoid -> scale 1/256, zero-point 0 on quint8; tanh -> 2/256, 128). observe() only counts;
// qparams() returns the given pair. merge / save / load exist so it composes with the other
// observers in sharded calibration; they check the configuration (scheme and qparams).
//
//   lowbit::fixed_qparams_observer<lowbit::scheme<lowbit::u8>> sigmoid_out({}, {1.0f / 256.0f, 0});
#ifndef LOWBIT_OBSERVERS_FIXED_QPARAMS_HPP
#define LOWBIT_OBSERVERS_FIXED_QPARAMS_HPP

#include <cstddef>
#include <cstdint>

#include "observer.hpp"

namespace lowbit {

/// torch FixedQParamsObserver. The scheme (valid, per-tensor) and the qparams
/// (check_qparams: finite scale > 0 with a finite reciprocal, zero-point in [qmin, qmax])
/// are validated on construction when exceptions are enabled (lowbit::error is thrown), and
/// by every call in any case (without exceptions, an invalid observer's calls return the error).
template <class Scheme>
class fixed_qparams_observer {
public:
    using scheme_type = Scheme;
    static constexpr observer_kind kind = observer_kind::fixed_qparams;

    fixed_qparams_observer(const Scheme& s, lowbit::qparams qp) : m_scheme(s), m_qp(qp) {
        const status st = validate();  // throws with exceptions enabled
        (void)st;
    }

    /// The configuration's checks (see the class comment).
    status validate() const {
        LOWBIT_DETAIL_TRY(m_scheme.validate());
        LOWBIT_DETAIL_TRY(lowbit::detail::check_per_tensor(m_scheme));
        return check_qparams(m_scheme, m_qp);
    }

    /// Counts the batch (elements and, if non-empty, one batch); the values are not read, so
    /// NaN / Inf are accepted as torch does. Errors: invalid configuration; count overflow.
    status observe(strided_view<const float> x) {
        LOWBIT_DETAIL_TRY(validate());
        if (x.empty()) return {};
        LOWBIT_DETAIL_CHECK(m_stats.count <= ~std::uint64_t{0} - x.size(), errc::overflow, "x.size()", x.size(),
                            "the total count would overflow uint64");
        m_stats.count += x.size();
        m_stats.batches += 1;
        return {};
    }
    /// observe() of a contiguous batch.
    status observe(span<const float> x) { return observe(strided_view<const float>(x)); }

    /// The fixed qparams. Errors: invalid configuration.
    result<lowbit::qparams> qparams() const {
        LOWBIT_DETAIL_TRY(validate());
        return m_qp;
    }

    void reset() noexcept { m_stats = observer_stats{}; }
    /// count and batches; min / max stay +inf / -inf (values are not read).
    const observer_stats& stats() const noexcept { return m_stats; }
    const Scheme& scheme() const noexcept { return m_scheme; }

    /// Tag of the configuration: the scheme and the qparams.
    std::uint32_t config() const noexcept {
        config_hash h = detail::scheme_config(m_scheme);
        h.add_float(m_qp.scale).add(static_cast<std::uint32_t>(m_qp.zero_point));
        return h.value();
    }

    /// Adds the other's counts. Errors: invalid configuration; configurations differ; overflow.
    status merge(const fixed_qparams_observer& other) {
        LOWBIT_DETAIL_TRY(validate());
        LOWBIT_DETAIL_CHECK(other.config() == config(), errc::invalid_argument, "other.config()", other.config(),
                            "observers must have the same scheme and qparams to merge");
        LOWBIT_DETAIL_CHECK(m_stats.count <= ~std::uint64_t{0} - other.m_stats.count &&
                                m_stats.batches <= ~std::uint64_t{0} - other.m_stats.batches,
                            errc::overflow, "other.count", other.m_stats.count, "the merged count would overflow uint64");
        m_stats.count += other.m_stats.count;
        m_stats.batches += other.m_stats.batches;
        return {};
    }

    /// Bytes save() writes: header + f32 scale, i32 zero-point, u64 count, u64 batches.
    std::size_t state_size() const noexcept { return state_header_size + 4 + 4 + 8 + 8; }
    /// Errors: invalid configuration; out too small.
    status save(span<std::uint8_t> out) const {
        LOWBIT_DETAIL_TRY(validate());
        return save_state(static_cast<std::uint16_t>(kind), config(), out, [this](state_writer& w) {
            w.f32(m_qp.scale);
            w.i32(m_qp.zero_point);
            w.u64(m_stats.count);
            w.u64(m_stats.batches);
        });
    }
    /// Errors (observer unchanged): invalid configuration; truncated, corrupted, other
    /// version / type / configuration; saved qparams differing from this observer's;
    /// batches > count or count > 0 without batches.
    status load(span<const std::uint8_t> in) {
        LOWBIT_DETAIL_TRY(validate());
        span<const std::uint8_t> payload;
        LOWBIT_DETAIL_TRY(check_state(in, static_cast<std::uint16_t>(kind), config(), payload));
        LOWBIT_DETAIL_CHECK(payload.size() == 24, errc::size_mismatch, "state payload size", payload.size(),
                            "must be 24 bytes for this observer");
        state_reader r{payload};
        const float scale = r.f32();
        const std::int32_t zp = r.i32();
        observer_stats s;
        s.count = r.u64();
        s.batches = r.u64();
        LOWBIT_DETAIL_CHECK(config_hash::float_bits(scale) == config_hash::float_bits(m_qp.scale) && zp == m_qp.zero_point,
                            errc::invalid_argument, "state scale", scale, "saved with other qparams");
        LOWBIT_DETAIL_CHECK(s.batches <= s.count && (s.count == 0) == (s.batches == 0), errc::invalid_argument,
                            "state batches", s.batches, "must be in [1, count] (0 when count is 0)");
        m_stats = s;
        return {};
    }

private:
    Scheme m_scheme;
    lowbit::qparams m_qp;
    observer_stats m_stats;
};

}  // namespace lowbit

#endif  // LOWBIT_OBSERVERS_FIXED_QPARAMS_HPP
