// Built with -fno-exceptions -fno-rtti and only lowbit::core: the same checks that throw
// elsewhere must come back as a status, naming the argument, with nothing written.
// (No Catch2 here: it needs exceptions.)
#include <cstdint>
#include <cstdio>
#include <cstring>

#include <lowbit/lowbit.hpp>

#if !LOWBIT_NO_EXCEPTIONS
#error "this test must be compiled with -fno-exceptions"
#endif

static int failures = 0;
#define EXPECT(cond)                                                  \
    do {                                                              \
        if (!(cond)) {                                                \
            std::printf("%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
            ++failures;                                               \
        }                                                             \
    } while (0)

int main() {
    const auto s = lowbit::scheme<lowbit::s8>{};
    float x[3] = {1, 2, 3};
    std::int8_t q[3] = {9, 9, 9};

    lowbit::status st = lowbit::ref::quantize(s, lowbit::qparams{-1.0f, 0}, x, q);
    EXPECT(!st.ok());
    EXPECT(st.code == lowbit::errc::invalid_argument);
    EXPECT(std::strcmp(st.argument, "scale") == 0);
    EXPECT(st.value == -1.0);
    EXPECT(q[0] == 9 && q[1] == 9 && q[2] == 9);

    st = lowbit::ref::quantize(s, lowbit::qparams{1.0f, 200}, x, q);
    EXPECT(std::strcmp(st.argument, "zero_point") == 0 && st.value == 200.0);

    std::int8_t small[2] = {9, 9};
    st = lowbit::ref::quantize(s, lowbit::qparams{}, x, small);
    EXPECT(st.code == lowbit::errc::size_mismatch && std::strcmp(st.argument, "q.size()") == 0);

    const lowbit::result<lowbit::qparams> r = lowbit::choose_qparams(s, 2.0f, 1.0f);
    EXPECT(!r.ok());
    EXPECT(std::strcmp(r.status().argument, "min") == 0);
    EXPECT(r.value() == lowbit::qparams{});  // documented fallback {1, 0}

    const auto good = lowbit::choose_qparams(s, -1.0f, 1.0f);
    EXPECT(good.ok());
    EXPECT(lowbit::ref::quantize(s, *good, x, q).ok());
    // float(2/255) = 0.0078431377 is a hair above 2/255, so -1/scale = -127.49999 -> zp = -128 + 127
    // = -1, and 1 * (1/scale) = 127.49999 -> 127 - 1 = 126; 2 and 3 saturate.
    EXPECT(good->zero_point == -1);
    EXPECT(q[0] == 126 && q[1] == 127 && q[2] == 127);

    const auto pc = lowbit::scheme<lowbit::s4>{}.per_group(1, 5);
    float scales[2] = {1, 1};
    std::uint8_t packed[2] = {0, 0};
    st = lowbit::ref::quantize(pc, lowbit::shape{1, 4}, lowbit::qparams_view{scales, {}}, x, packed);
    EXPECT(st.code == lowbit::errc::invalid_argument && std::strcmp(st.argument, "group_size") == 0);

    EXPECT(!lowbit::quantize_multiplier(-1.0).ok());
    EXPECT(lowbit::quantize_multiplier(0.1)->multiplier == 1717986918);

    if (failures == 0) std::printf("no-exceptions build: all checks passed\n");
    return failures == 0 ? 0 : 1;
}
