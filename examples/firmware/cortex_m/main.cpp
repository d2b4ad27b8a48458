// main.cpp (examples/firmware/cortex_m): the bare-metal firmware image. Runs the integer MLP
// (mlp_inference.hpp, lowbit::ref::gemm) on the test images compiled into flash, compares each
// image's codes and class with the host integer engine's, and returns the checksum of all
// output codes (fnv1a). With LOWBIT_FW_SEMIHOSTING it prints the same lines as the host test
// (firmware_host), which tests/firmware/run.sh compares with the host's.
#include <cstdint>

#include "model.hpp"
#include "report_text.hpp"
#if LOWBIT_FW_SEMIHOSTING
#include "semihosting.hpp"
#endif

namespace {
void print(const char* s) {
#if LOWBIT_FW_SEMIHOSTING
    fw::semihosting::write0(s);
#else
    (void)s;
#endif
}
}  // namespace

extern "C" {
volatile std::uint32_t lowbit_fw_mismatches = 0xFFFFFFFFu;  ///< images whose codes differ from the host's
}

int main() {
    const fw::test_set& t = fw::demo_test_set();
    std::uint8_t codes[fw::demo_classes], scratch[fw::demo_scratch_bytes];
    char buf[128];
    const fw::report r = fw::run_test_set(fw::demo_model(), t, codes, scratch,
                                          [&](std::size_t i, lowbit::span<std::uint8_t> c, std::size_t cls) {
                                              fw::text line(buf, sizeof buf);
                                              print(fw::image_line(line, i, t.labels[i], cls, c.data(), c.size()));
                                          });
    if (!r.status.ok()) {
        fw::text line(buf, sizeof buf);
        print(line.str("infer failed: argument '").str(r.status.argument).str("'\n").c_str());
    }
    fw::text sum(buf, sizeof buf);
    print(fw::summary_line(sum, r.images, r.code_mismatches, r.class_mismatches, r.correct, r.checksum));
    lowbit_fw_mismatches = static_cast<std::uint32_t>(r.status.ok() ? r.code_mismatches + r.class_mismatches : t.count);
    return static_cast<int>(r.checksum);
}
