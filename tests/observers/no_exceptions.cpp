// Built with -fno-exceptions -fno-rtti: every observer header compiles, and bad input (a
// non-finite value in a strided view, a bad view, a wrong channel axis) comes back as a status
// naming the argument and value, with the observer unchanged. (No Catch2: it needs exceptions.)
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>

#include <lowbit/lowbit.hpp>
#include <lowbit/observers/all.hpp>

#if !LOWBIT_NO_EXCEPTIONS
#error "this test must be compiled with -fno-exceptions"
#endif

static int failures = 0;
#define EXPECT(cond)                                                       \
    do {                                                                   \
        if (!(cond)) {                                                     \
            std::printf("%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
            ++failures;                                                    \
        }                                                                  \
    } while (0)

using u8a = lowbit::scheme<lowbit::u8>;
using view = lowbit::strided_view<const float>;

static lowbit::histogram_observer<u8a> hist_a, hist_b;  // 8 KiB each: not on the stack

template <class Obs>
static bool same_state(const Obs& a, const Obs& b) {
    static std::uint8_t sa[1 << 15], sb[1 << 15];
    if (a.state_size() > sizeof sa || a.state_size() != b.state_size()) return false;
    if (!a.save(lowbit::span<std::uint8_t>(sa, a.state_size())).ok()) return false;
    if (!b.save(lowbit::span<std::uint8_t>(sb, b.state_size())).ok()) return false;
    return std::memcmp(sa, sb, a.state_size()) == 0;
}

int main() {
    float x[4 * 5];
    for (int i = 0; i < 20; ++i) x[i] = static_cast<float>((i * 7) % 11) - 4.5f;
    const view v = *view::make(lowbit::shape{4, 5}, x);
    const view t = *v.permute({1, 0});  // [5, 4]
    float copy[20];
    for (std::size_t n = 0; n < 20; ++n) copy[n] = t[n];

    // bad views come back as a status naming the argument
    const lowbit::result<view> bad = view::make(lowbit::shape{4, 4}, lowbit::span<const float>(x));
    EXPECT(!bad.ok());
    EXPECT(std::strcmp(bad.status().argument, "x.size()") == 0 && bad.status().value == 20.0);
    const lowbit::result<view> bad_slice = v.slice(1, 2, 3, 2);
    EXPECT(!bad_slice.ok() && std::strcmp(bad_slice.status().argument, "count") == 0);
    const lowbit::result<view> bad_buf = view::make(lowbit::span<const float>(x), 1, lowbit::shape{4, 5}, {5, 1});
    EXPECT(!bad_buf.ok() && std::strcmp(bad_buf.status().argument, "buffer.size()") == 0);

    // a view observes like its contiguous copy
    lowbit::minmax_observer<u8a> a, b;
    EXPECT(a.observe(t).ok());
    EXPECT(b.observe(lowbit::span<const float>(copy)).ok());
    EXPECT(same_state(a, b));
    EXPECT(hist_a.observe(t).ok());
    EXPECT(hist_b.observe(lowbit::span<const float>(copy)).ok());
    EXPECT(same_state(hist_a, hist_b));
    EXPECT(hist_a.qparams()->scale == hist_b.qparams()->scale);
    float st_a[10], st_b[10];
    lowbit::per_channel_minmax_observer<u8a> pa(u8a{}.per_channel(0), 5, st_a), pb(u8a{}.per_channel(0), 5, st_b);
    EXPECT(pa.observe(t).ok());
    EXPECT(pb.observe(lowbit::shape{5, 4}, copy).ok());
    EXPECT(same_state(pa, pb));

    // a NaN is named by its index in element order; nothing changes
    x[2 * 5 + 3] = std::numeric_limits<float>::quiet_NaN();  // t(3, 2): index 3 * 4 + 2
    lowbit::status s = a.observe(t);
    EXPECT(s.code == lowbit::errc::invalid_argument);
    EXPECT(std::strcmp(s.argument, "x[i] (index)") == 0 && s.value == 14.0);
    EXPECT(a.stats().batches == 1);
    s = hist_a.observe(t);
    EXPECT(s.value == 14.0 && hist_a.stats().batches == 1);
    s = pa.observe(t);
    EXPECT(s.value == 14.0 && pa.stats().batches == 1);
    lowbit::percentile_observer<u8a, 256> pct;
    s = pct.observe(t);
    EXPECT(s.value == 14.0 && pct.stats().batches == 0);

    // the channel axis is the scheme's
    lowbit::per_channel_minmax_observer<u8a> p1(u8a{}.per_channel(1), 5, st_a);
    s = p1.observe(t);
    EXPECT(s.code == lowbit::errc::size_mismatch && std::strcmp(s.argument, "shape[axis]") == 0 && s.value == 4.0);
    lowbit::per_channel_minmax_observer<u8a> p2(u8a{}.per_channel(2), 5, st_a);
    s = p2.observe(t);
    EXPECT(s.code == lowbit::errc::out_of_range && std::strcmp(s.argument, "axis") == 0);

    if (failures == 0) std::printf("observers, no-exceptions build: all checks passed\n");
    return failures == 0 ? 0 : 1;
}
