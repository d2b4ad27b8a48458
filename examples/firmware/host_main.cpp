// host_main.cpp (examples/firmware): the firmware's inference, built for the host with the
// firmware's flags (-fno-exceptions -fno-rtti, so lowbit reports errors as status codes), run
// on the embedded test images (ctest example.firmware). Checks, failing with exit code 1:
//  - every image's 10 output codes equal the host integer engine's (demo::integer_mlp over
//    lowbit::kernels::gemm, recorded by firmware_gen) bit for bit, and so do the classes;
//  - bad input is refused with a status naming the argument and its value, output untouched;
//  - a model with one logit's multiplier doubled gives different codes (the comparison can
//    fail).
// Prints one line per image and a summary with the checksum, the same text the Cortex-M image
// prints through semihosting (tests/firmware/run.sh compares the two).
#include <cstdio>
#include <cstring>

#include "model.hpp"
#include "report_text.hpp"

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
    if (!ok) {
        ++failures;
        std::printf("FAILED: %s\n", what);
    }
}

// infer() must refuse with `code` naming `argument` = value, and leave `out` as it was.
void expect_refused(const fw::model& m, lowbit::span<const std::uint8_t> in, std::size_t out_size,
                    std::size_t scratch_bytes, lowbit::errc code, const char* argument, double value, const char* what) {
    std::uint8_t out[16], scratch[fw::demo_scratch_bytes + 1];
    std::memset(out, 0xA5, sizeof out);
    const lowbit::status st = fw::infer(m, in, {out, out_size}, {scratch, scratch_bytes});
    bool untouched = true;
    for (std::uint8_t b : out) untouched = untouched && b == 0xA5;
    const bool ok = !st.ok() && st.code == code && std::strcmp(st.argument, argument) == 0 && st.value == value && untouched;
    if (!ok)
        std::printf("  got: ok %d code %s argument '%s' value %.9g expected '%s'; output untouched %d\n", int(st.ok()),
                    lowbit::to_string(st.code), st.argument, st.value, st.expected, int(untouched));
    expect(ok, what);
}

}  // namespace

int main() {
    const fw::model& m = fw::demo_model();
    const fw::test_set& t = fw::demo_test_set();
    std::uint8_t codes[fw::demo_classes], scratch[fw::demo_scratch_bytes];

    // 1. the embedded images, bit for bit against the host integer engine
    const fw::report r = fw::run_test_set(m, t, codes, scratch, [&](std::size_t i, lowbit::span<std::uint8_t> c, std::size_t cls) {
        char buf[128];
        fw::text line(buf, sizeof buf);
        std::fputs(fw::image_line(line, i, t.labels[i], cls, c.data(), c.size()), stdout);
    });
    if (!r.status.ok())
        std::printf("infer failed: %s: argument '%s' = %.9g: %s\n", lowbit::to_string(r.status.code), r.status.argument,
                    r.status.value, r.status.expected);
    char buf[128];
    fw::text sum(buf, sizeof buf);
    std::fputs(fw::summary_line(sum, r.images, r.code_mismatches, r.class_mismatches, r.correct, r.checksum), stdout);
    expect(r.status.ok() && r.images == t.count && t.count > 0, "every embedded image ran");
    expect(r.code_mismatches == 0, "output codes equal the host integer engine's");
    expect(r.class_mismatches == 0, "predicted classes equal the host integer engine's");
    std::uint32_t want = 2166136261u;
    for (std::size_t i = 0; i < t.count; ++i) want = fw::fnv1a(t.expected_codes + i * t.classes, t.classes, want);
    expect(r.checksum == want, "checksum equals the one of the host engine's codes");

    // 2. bad input: named argument and value, output untouched
    const lowbit::span<const std::uint8_t> img(t.images, t.pixels);
    expect_refused(m, {t.images, t.pixels - 1}, 10, sizeof scratch, lowbit::errc::size_mismatch, "input.size()", 783,
                   "short input refused");
    expect_refused(m, img, 9, sizeof scratch, lowbit::errc::size_mismatch, "output.size()", 9, "short output refused");
    expect_refused(m, img, 10, 511, lowbit::errc::size_mismatch, "scratch.size()", 511, "short scratch refused");
    expect_refused(fw::model{m.layers, 0}, img, 10, sizeof scratch, lowbit::errc::invalid_argument, "m.count", 0,
                   "empty model refused");
    fw::layer bad[3] = {m.layers[0], m.layers[1], m.layers[2]};
    bad[1].k = 255;
    expect_refused(fw::model{bad, 3}, img, 10, sizeof scratch, lowbit::errc::size_mismatch, "m.layers[l].k", 255,
                   "layer size mismatch refused");
    bad[1] = m.layers[1];
    bad[2].output_zero_point = 256;
    expect_refused(fw::model{bad, 3}, img, 10, sizeof scratch, lowbit::errc::invalid_argument, "zero_point", 256,
                   "output zero point outside u8 refused (lowbit's check)");
    bad[2] = m.layers[2];
    lowbit::quantized_multiplier mult[10];
    std::memcpy(mult, m.layers[2].multipliers, sizeof mult);
    mult[3].shift = 31;
    bad[2].multipliers = mult;
    expect_refused(fw::model{bad, 3}, img, 10, sizeof scratch, lowbit::errc::invalid_argument, "multipliers[i].shift", 31,
                   "shift outside [-31, 30] refused (lowbit's check)");

    // 3. the comparison can fail: the first image's class logit rescaled by 2 (shift + 1)
    std::memcpy(mult, m.layers[2].multipliers, sizeof mult);
    const std::size_t c0 = t.expected_classes[0];
    mult[c0].shift = mult[c0].shift < 30 ? mult[c0].shift + 1 : mult[c0].shift - 1;
    const fw::report mutated = fw::run_test_set(fw::model{bad, 3}, t, codes, scratch, [](std::size_t, lowbit::span<std::uint8_t>, std::size_t) {});
    expect(mutated.status.ok() && mutated.code_mismatches > 0, "a changed multiplier is detected");

    std::printf("example.firmware: %s\n", failures == 0 ? "all checks passed" : "FAILED");
    return failures == 0 ? 0 : 1;
}
