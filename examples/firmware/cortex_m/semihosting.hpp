// semihosting.hpp (examples/firmware/cortex_m): the two Arm semihosting calls the firmware
// images use to talk to a debugger or an emulator (QEMU's -semihosting): SYS_WRITE0 (print a
// NUL-terminated string) and SYS_EXIT_EXTENDED (stop with an exit status). A semihosting call
// is `bkpt 0xAB` with the operation in r0 and its argument in r1 (Arm's "Semihosting for
// AArch32 and AArch64", M-profile). Without a debugger attached the bkpt faults: build board
// images without LOWBIT_FW_SEMIHOSTING.
#ifndef LOWBIT_EXAMPLES_FIRMWARE_SEMIHOSTING_HPP
#define LOWBIT_EXAMPLES_FIRMWARE_SEMIHOSTING_HPP

#include <cstdint>

namespace fw {
namespace semihosting {

constexpr std::uint32_t sys_write0 = 0x04;
constexpr std::uint32_t sys_exit_extended = 0x20;
constexpr std::uint32_t adp_stopped_application_exit = 0x20026;

inline std::uint32_t call(std::uint32_t op, const void* arg) noexcept {
    register std::uint32_t r0 __asm__("r0") = op;
    register const void* r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

inline void write0(const char* s) noexcept { (void)call(sys_write0, s); }

[[noreturn]] inline void exit(std::uint32_t status) noexcept {
    const std::uint32_t block[2] = {adp_stopped_application_exit, status};
    (void)call(sys_exit_extended, block);
    for (;;) {
    }
}

}  // namespace semihosting
}  // namespace fw

#endif  // LOWBIT_EXAMPLES_FIRMWARE_SEMIHOSTING_HPP
