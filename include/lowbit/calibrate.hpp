// lowbit/calibrate.hpp: a small driver for PTQ calibration: named observers, your batches,
// one call. It never owns the model: a callback runs your model on batch b and hands each
// tensor's activations to the sink by name.
//
//   lowbit::minmax_observer<lowbit::scheme<lowbit::u8>> fc1_out;
//   lowbit::histogram_observer<...> fc2_out;   // any observer with observe / qparams
//   lowbit::calibrator cal;
//   cal.add("fc1.out", fc1_out);
//   cal.add("fc2.out", fc2_out);
//   cal.run(num_batches, [&](std::size_t b, lowbit::calibrator::sink& sink) {
//       auto [h1, h2] = my_model_forward(batch(b));
//       sink.observe("fc1.out", h1);
//       sink.observe("fc2.out", h2);       // a span, shape + span, or lowbit::strided_view
//   }, [](std::size_t done, std::size_t total) { std::printf("%zu/%zu\r", done, total); });
//   lowbit::qparams qp = cal.result("fc1.out").per_tensor();
//
// Hosted (std::string, std::function, std::map); exceptions required.
#ifndef LOWBIT_CALIBRATE_HPP
#define LOWBIT_CALIBRATE_HPP

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/qparams.hpp"
#include "core/span.hpp"
#include "core/strided.hpp"
#include "observers/diagnostics.hpp"
#include "observers/observer.hpp"

#if LOWBIT_NO_EXCEPTIONS
#error "lowbit/calibrate.hpp reports errors by throwing; it needs exceptions"
#endif

namespace lowbit {

/// What calibration found for one tensor.
struct calibration_result {
    std::vector<float> scales;               ///< one per tensor, or one per channel
    std::vector<std::int32_t> zero_points;   ///< same count as scales
    observer_stats stats;                    ///< what the observer saw
    quant_error last_batch;                  ///< error of the final qparams on the last batch (per-tensor)

    /// The single (scale, zero-point) of a per-tensor result. Throws for a per-channel one.
    qparams per_tensor() const {
        if (scales.size() != 1) throw std::logic_error("lowbit::calibration_result: not a per-tensor result");
        return {scales[0], zero_points[0]};
    }
};

class calibrator {
public:
    /// Routes a batch's activations to the observers by name.
    class sink {
    public:
        /// Per-tensor observers: the whole activation tensor, flat.
        void observe(const std::string& name, span<const float> x) { m_owner->entry(name).observe_flat(x); }
        /// Per-channel observers: the activation tensor with its shape (the observer's axis).
        void observe(const std::string& name, const shape& shp, span<const float> x) {
            m_owner->entry(name).observe_shaped(shp, x);
        }
        /// Any observer: a strided view of the activations (core/strided.hpp). Per-channel
        /// observers take the channel axis of their scheme. (A template, so that
        /// observe(name, {}) still means an empty span.)
        template <class T, class = std::enable_if_t<std::is_same<std::remove_const_t<T>, float>::value>>
        void observe(const std::string& name, strided_view<T> x) {
            m_owner->entry(name).observe_view(strided_view<const float>(x));
        }

    private:
        friend class calibrator;
        explicit sink(calibrator* owner) : m_owner(owner) {}
        calibrator* m_owner;
    };

    /// Registers a per-tensor observer (minmax, moving average, histogram, percentile, ...)
    /// under `name`. The observer is used by reference and must outlive the calibrator.
    template <class Observer>
    void add(const std::string& name, Observer& obs) {
        entry_type e;
        e.observe_flat = [&obs](span<const float> x) {
            obs.observe(x);
        };
        e.observe_shaped = [name](const shape&, span<const float>) {
            throw std::invalid_argument("lowbit::calibrator: '" + name + "' is a per-tensor observer; pass no shape");
        };
        e.observe_view = [&obs](strided_view<const float> x) { obs.observe(x); };
        e.per_tensor = true;
        e.finish = [&obs](calibration_result& r, span<const float> last) {
            const qparams qp = *obs.qparams();
            r.scales = {qp.scale};
            r.zero_points = {qp.zero_point};
            r.stats = obs.stats();
            if (!last.empty()) measure_error(obs.scheme(), qp, last, r.last_batch);
        };
        insert(name, std::move(e));
    }

    /// Registers a per-channel observer (observe(shape, x), qparams(scales, zero_points),
    /// channels()).
    template <class Observer>
    void add_per_channel(const std::string& name, Observer& obs) {
        entry_type e;
        e.observe_flat = [name](span<const float>) {
            throw std::invalid_argument("lowbit::calibrator: '" + name + "' is per-channel; pass the tensor's shape");
        };
        e.observe_shaped = [&obs](const shape& shp, span<const float> x) { obs.observe(shp, x); };
        e.observe_view = [&obs](strided_view<const float> x) { obs.observe(x); };
        e.finish = [&obs](calibration_result& r, span<const float>) {
            r.scales.assign(obs.channels(), 0.0f);
            r.zero_points.assign(obs.channels(), 0);
            obs.qparams(r.scales, r.zero_points);
            r.stats = obs.stats();
        };
        insert(name, std::move(e));
    }

    /// Calls feed(b, sink) for b in [0, batches), then progress(b + 1, batches) if given,
    /// and computes every tensor's result. Errors (thrown): an unknown name, a bad batch
    /// (the observer's error), feed's own exceptions.
    void run(std::size_t batches, const std::function<void(std::size_t, sink&)>& feed,
             const std::function<void(std::size_t, std::size_t)>& progress = {}) {
        sink s(this);
        for (std::size_t b = 0; b < batches; ++b) {
            for (auto& kv : m_entries) kv.second.last.clear();
            feed(b, s);
            if (progress) progress(b + 1, batches);
        }
        for (auto& kv : m_entries) kv.second.finish(m_results[kv.first], kv.second.last);
    }

    /// The result for `name` after run(). Throws if there is none.
    const calibration_result& result(const std::string& name) const {
        const auto it = m_results.find(name);
        if (it == m_results.end()) throw std::invalid_argument("lowbit::calibrator: no result for '" + name + "'");
        return it->second;
    }
    /// Every result, by tensor name.
    const std::map<std::string, calibration_result>& results() const noexcept { return m_results; }

private:
    struct entry_type {
        std::function<void(span<const float>)> observe_flat;
        std::function<void(const shape&, span<const float>)> observe_shaped;
        std::function<void(strided_view<const float>)> observe_view;
        bool per_tensor = false;
        std::function<void(calibration_result&, span<const float>)> finish;
        std::vector<float> last;  // the last batch, kept for the per-tensor diagnostics
    };
    void insert(const std::string& name, entry_type e) {
        if (!m_entries.emplace(name, std::move(e)).second)
            throw std::invalid_argument("lowbit::calibrator: an observer named '" + name + "' already exists");
    }
    struct entry_ref {
        entry_type* e;
        void observe_flat(span<const float> x) const {
            e->observe_flat(x);
            e->last.assign(x.begin(), x.end());
        }
        void observe_shaped(const shape& shp, span<const float> x) const { e->observe_shaped(shp, x); }
        void observe_view(strided_view<const float> x) const {
            e->observe_view(x);
            if (!e->per_tensor) return;
            e->last.clear();  // the batch in element order, for the diagnostics
            e->last.reserve(x.size());
            x.for_each_chunk([this](const float* p, std::size_t n) { e->last.insert(e->last.end(), p, p + n); });
        }
    };
    entry_ref entry(const std::string& name) {
        const auto it = m_entries.find(name);
        if (it == m_entries.end()) throw std::invalid_argument("lowbit::calibrator: no observer named '" + name + "'");
        return {&it->second};
    }

    std::map<std::string, entry_type> m_entries;
    std::map<std::string, calibration_result> m_results;
};

}  // namespace lowbit

#endif  // LOWBIT_CALIBRATE_HPP
