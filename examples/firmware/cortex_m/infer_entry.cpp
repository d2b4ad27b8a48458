// infer_entry.cpp (examples/firmware/cortex_m): fw::infer as one out-of-line function, for
// tests/firmware/run.sh's float probe: compiled for a Cortex-M without FPU
// (-mfloat-abi=soft), every floating-point operation becomes a call to a libgcc helper
// (__aeabi_fmul, __aeabi_dadd, ...), so the object's undefined symbols list exactly which
// floating-point operations the inference code contains.
#include "mlp_inference.hpp"

lowbit::status fw_infer_entry(const fw::model& m, lowbit::span<const std::uint8_t> input,
                              lowbit::span<std::uint8_t> output, lowbit::span<std::uint8_t> scratch);

lowbit::status fw_infer_entry(const fw::model& m, lowbit::span<const std::uint8_t> input,
                              lowbit::span<std::uint8_t> output, lowbit::span<std::uint8_t> scratch) {
    return fw::infer(m, input, output, scratch);
}
