// tests/fuzz/fuzz_observer_state.cpp: observer load() on hostile bytes, for every observer type
// that saves its state: minmax, moving-average minmax, per-channel minmax (plain and moving
// average), histogram (corrected and torch_1_13 modes), percentile, MSE, entropy, fixed qparams.
//
// The first byte picks the observer and how the input becomes a state:
//   raw       the bytes as they are (almost always refused by the header checks);
//   framed    the bytes are the payload, behind a valid header (magic, version, the observer's
//             kind and configuration tag, size and CRC-32 computed here), so the payload checks
//             themselves are fuzzed;
//   sized     as framed, with the payload cut or zero-padded to the size the observer expects;
//   mutated   a valid saved state (of an observer that saw fuzzer-chosen batches) with a few
//             bytes overwritten, then re-framed or not.
// Required: load() refuses (a lowbit::error naming what is wrong) and leaves the observer's
// saved bytes unchanged, or accepts, and then save() writes exactly the bytes loaded. A loaded
// state must then survive qparams(), merge (with itself, a fresh observer and one that saw
// data) and further observe() calls without crashing, reading out of bounds or UB; the
// sanitizers watch.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <lowbit/observers/all.hpp>

#include "fuzz_common.hpp"

namespace {

using lowbit::span;

std::vector<std::uint8_t> frame(std::uint16_t kind, std::uint32_t config, span<const std::uint8_t> payload) {
    std::vector<std::uint8_t> out(lowbit::state_header_size + payload.size());
    lowbit::state_writer w{span<std::uint8_t>(out)};
    w.u32(lowbit::state_magic);
    w.u16(lowbit::state_version);
    w.u16(kind);
    w.u32(config);
    w.u32(static_cast<std::uint32_t>(payload.size()));
    w.u32(lowbit::crc32(payload));
    for (std::uint8_t b : payload) w.u8(b);
    return out;
}

template <class Obs>
std::vector<std::uint8_t> saved(const Obs& o) {
    std::vector<std::uint8_t> out(o.state_size());
    const lowbit::status s = fuzz::run([&] { return o.save(span<std::uint8_t>(out)); });
    FUZZ_REQUIRE(s.ok(), "save() of a valid observer failed: %s", s.argument);
    return out;
}

// A small batch of finite values (observers refuse non-finite ones: tried too).
std::vector<float> batch(FuzzedDataProvider& p, std::size_t max) {
    std::vector<float> x(p.ConsumeIntegralInRange<std::size_t>(0, max));
    for (auto& v : x) {
        v = fuzz::pick_float(p, 0.25f);
        if (p.ConsumeIntegral<std::uint8_t>() != 0 && !(v - v == 0.0f)) v = 1.0f;
    }
    return x;
}

template <class Obs>
void observe(Obs& o, const std::vector<float>& x) {
    (void)fuzz::run([&] { return o.observe(span<const float>(x)); });
}

// qparams / range queries of any observer (their results are not checked: only that they
// return, in bounds and without UB).
template <class Obs>
void query(const Obs& o) {
    (void)fuzz::run([&]() -> lowbit::status { return o.qparams().status(); });
}
template <class S, std::size_t B>
void query(const lowbit::histogram_observer<S, B>& o) {
    (void)fuzz::run([&]() -> lowbit::status { return o.qparams().status(); });
    (void)fuzz::run([&]() -> lowbit::status { return o.search_range().status(); });
}

// The contract of load() on `state` for an observer `o` (already holding some state).
template <class Obs, class Make>
void check_load(FuzzedDataProvider& p, Obs& o, const std::vector<std::uint8_t>& state, Make make) {
    const std::vector<std::uint8_t> before = saved(o);
    const lowbit::status s = fuzz::run([&] { return o.load(span<const std::uint8_t>(state)); });
    const std::vector<std::uint8_t> after = saved(o);
    if (!s.ok()) {
        FUZZ_REQUIRE(s.argument != nullptr && s.argument[0] != '\0', "an error without an argument name");
        FUZZ_REQUIRE(after == before, "a refused load() changed the observer ('%s')", s.argument);
        return;
    }
    FUZZ_REQUIRE(after == state, "load() accepted %zu bytes but save() writes other bytes (%zu)", state.size(),
                 after.size());
    // the loaded state in use
    query(o);
    Obs copy = o;
    (void)fuzz::run([&] { return copy.merge(o); });
    query(copy);
    Obs fresh = make();
    (void)fuzz::run([&] { return fresh.merge(o); });
    query(fresh);
    Obs other = make();
    observe(other, batch(p, 40));
    (void)fuzz::run([&] { return other.merge(o); });
    (void)fuzz::run([&] { return o.merge(other); });
    query(other);
    observe(o, batch(p, 40));
    query(o);
    (void)saved(o);
}

// How the fuzz input becomes a state for observer kind/config/expected payload size.
std::vector<std::uint8_t> make_state(FuzzedDataProvider& p, int how, std::uint16_t kind, std::uint32_t config,
                                     std::size_t payload_size, const std::vector<std::uint8_t>& valid) {
    switch (how) {
        case 0: return p.ConsumeRemainingBytes<std::uint8_t>();
        case 1: {
            const std::vector<std::uint8_t> payload = p.ConsumeRemainingBytes<std::uint8_t>();
            return frame(kind, config, payload);
        }
        case 2: {
            std::vector<std::uint8_t> payload = p.ConsumeRemainingBytes<std::uint8_t>();
            payload.resize(payload_size, 0);
            return frame(kind, config, payload);
        }
        default: {
            std::vector<std::uint8_t> s = valid;
            const std::size_t edits = p.ConsumeIntegralInRange<std::size_t>(1, 8);
            for (std::size_t i = 0; i < edits && !s.empty(); ++i) {
                const std::size_t at = p.ConsumeIntegralInRange<std::size_t>(0, s.size() - 1);
                s[at] = p.ConsumeIntegral<std::uint8_t>();
            }
            if (how == 3 && s.size() >= lowbit::state_header_size) {
                const span<const std::uint8_t> payload(s.data() + lowbit::state_header_size,
                                                       s.size() - lowbit::state_header_size);
                return frame(kind, config, payload);
            }
            if (p.ConsumeBool() && !s.empty()) s.resize(p.ConsumeIntegralInRange<std::size_t>(0, s.size() - 1));
            return s;
        }
    }
}

template <class Make>
void fuzz_observer(FuzzedDataProvider& p, Make make) {
    auto o = make();
    const int how = p.ConsumeIntegralInRange<int>(0, 4);
    // a state the observer really had, for the mutations and as the observer's current state
    auto src = make();
    const int batches = p.ConsumeIntegralInRange<int>(0, 3);
    for (int i = 0; i < batches; ++i) observe(src, batch(p, 24));
    const std::vector<std::uint8_t> valid = saved(src);
    if (p.ConsumeBool()) observe(o, batch(p, 8));
    const std::vector<std::uint8_t> state =
        make_state(p, how, static_cast<std::uint16_t>(decltype(o)::kind), o.config(),
                   valid.size() - lowbit::state_header_size, valid);
    check_load(p, o, state, make);
}

// Per-channel observers keep their state in a caller buffer.
template <class Scheme, bool Moving>
struct per_channel_holder {
    using observer = std::conditional_t<Moving, lowbit::per_channel_moving_average_minmax_observer<Scheme>,
                                        lowbit::per_channel_minmax_observer<Scheme>>;
    static constexpr lowbit::observer_kind kind = observer::kind;
    std::vector<float> buf;
    observer o;
    per_channel_holder(const Scheme& s, std::size_t channels)
        : buf(2 * channels), o(s, channels, span<float>(buf), 0.25f) {}
    per_channel_holder(const per_channel_holder& other) : buf(other.buf), o(other.o.scheme(), other.o.channels(), span<float>(buf), 0.25f) {
        const std::vector<std::uint8_t> state = saved(other.o);
        (void)fuzz::run([&] { return o.load(span<const std::uint8_t>(state)); });
    }
    per_channel_holder& operator=(const per_channel_holder&) = delete;

    std::uint32_t config() const { return o.config(); }
    std::size_t state_size() const { return o.state_size(); }
    lowbit::status save(span<std::uint8_t> out) const { return o.save(out); }
    lowbit::status load(span<const std::uint8_t> in) { return o.load(in); }
    lowbit::status merge(const per_channel_holder& other) { return o.merge(other.o); }
    lowbit::result<lowbit::qparams> qparams() const {
        std::vector<float> scales(o.channels());
        std::vector<std::int32_t> zps(o.channels());
        const lowbit::status s = o.qparams(span<float>(scales), span<std::int32_t>(zps));
        if (!s.ok()) return s;
        return lowbit::qparams{};
    }
    // batches of shape [rows, channels] (axis 1) or [channels, rows] (axis 0)
    lowbit::status observe(span<const float> x) {
        const std::size_t c = o.channels();
        if (c == 0) return {};
        const std::size_t rows = x.size() / c;
        const lowbit::shape shp = o.scheme().axis() == 0 ? lowbit::shape{c, rows} : lowbit::shape{rows, c};
        return o.observe(shp, span<const float>(x.data(), rows * c));
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider p(data, size);
    using lowbit::symmetry;
    const auto u8 = lowbit::scheme<lowbit::u8>{};
    const auto s8s = lowbit::scheme<lowbit::s8, symmetry::symmetric>{};
    const auto s4 = lowbit::scheme<lowbit::s4>{};
    switch (p.ConsumeIntegralInRange<int>(0, 15)) {
        case 0: fuzz_observer(p, [&] { return lowbit::minmax_observer<decltype(u8)>(u8); }); break;
        case 1: fuzz_observer(p, [&] { return lowbit::minmax_observer<decltype(s8s)>(s8s); }); break;
        case 2: fuzz_observer(p, [&] { return lowbit::moving_average_minmax_observer<decltype(u8)>(u8, 0.5f); }); break;
        case 3: {
            const std::size_t c = p.ConsumeIntegralInRange<std::size_t>(0, 5);
            const auto s = s8s.per_channel(p.ConsumeBool() ? 1 : 0);
            fuzz_observer(p, [&] { return per_channel_holder<decltype(s), false>(s, c); });
            break;
        }
        case 4: {
            const std::size_t c = p.ConsumeIntegralInRange<std::size_t>(0, 5);
            const auto s = u8.per_channel(1);
            fuzz_observer(p, [&] { return per_channel_holder<decltype(s), true>(s, c); });
            break;
        }
        case 5: fuzz_observer(p, [&] { return lowbit::histogram_observer<decltype(u8), 16>(u8); }); break;
        case 6:
            fuzz_observer(p, [&] {
                return lowbit::histogram_observer<decltype(u8), 16>(u8, lowbit::histogram_mode::torch_1_13);
            });
            break;
        case 7: fuzz_observer(p, [&] { return lowbit::histogram_observer<decltype(s4), 64>(s4); }); break;
        case 8: fuzz_observer(p, [&] { return lowbit::histogram_observer<decltype(u8)>(u8); }); break;  // 2048 bins
        case 9: fuzz_observer(p, [&] { return lowbit::percentile_observer<decltype(s8s), 16>(s8s, {99.0}); }); break;
        case 10: fuzz_observer(p, [&] { return lowbit::percentile_observer<decltype(u8), 32>(u8, {90.0}); }); break;
        case 11: fuzz_observer(p, [&] { return lowbit::mse_observer<decltype(u8), 16>(u8); }); break;
        case 12: fuzz_observer(p, [&] { return lowbit::mse_observer<decltype(s4), 64>(s4); }); break;
        case 13: fuzz_observer(p, [&] { return lowbit::entropy_observer<decltype(s8s), 32>(s8s); }); break;
        case 14: fuzz_observer(p, [&] { return lowbit::entropy_observer<decltype(u8), 16>(u8); }); break;
        default:
            fuzz_observer(p, [&] { return lowbit::fixed_qparams_observer<decltype(u8)>(u8, lowbit::qparams{0.5f, 3}); });
            break;
    }
    return 0;
}
