// startup.cpp (examples/firmware/cortex_m): the smallest start-up a Cortex-M4 / M55 image
// needs, written for lowbit's firmware images: the vector table (initial stack pointer, reset
// and fault handlers), and a reset handler that turns the FPU on, copies .data from flash,
// zeroes .bss, paints the stack (to measure its high-water mark), runs static constructors and
// calls main(). main's return value is kept in lowbit_fw_exit_code (for a debugger); with
// LOWBIT_FW_SEMIHOSTING the measured stack use and main's result are printed and the emulator
// stopped, otherwise the core sleeps. Symbols come from cortex_m.ld.
#include <cstddef>
#include <cstdint>

#include "report_text.hpp"
#if LOWBIT_FW_SEMIHOSTING
#include "semihosting.hpp"
#endif

extern "C" {
extern std::uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern std::uint32_t __stack_limit[], __stack_top[];
extern void (*__init_array_start[])();
extern void (*__init_array_end[])();
int main();
[[noreturn]] void lowbit_fw_reset();
[[noreturn]] void lowbit_fw_fault();

volatile std::uint32_t lowbit_fw_exit_code = 0;   ///< main's return value
volatile std::uint32_t lowbit_fw_stack_used = 0;  ///< bytes of stack main touched (high-water mark)
}

namespace {

constexpr std::uint32_t stack_paint = 0x5A5AA5A5u;

using handler = void (*)();
// The Cortex-M vector table: initial SP, reset, then the system exceptions (NMI, HardFault,
// MemManage, BusFault, UsageFault, SecureFault (v8-M), 3 reserved, SVCall, DebugMonitor,
// reserved, PendSV, SysTick). No peripheral interrupt is enabled by these images.
__attribute__((section(".vectors"), used)) const handler vectors[16] = {
    reinterpret_cast<handler>(__stack_top), lowbit_fw_reset, lowbit_fw_fault, lowbit_fw_fault, lowbit_fw_fault,
    lowbit_fw_fault, lowbit_fw_fault, lowbit_fw_fault, nullptr, nullptr, nullptr, lowbit_fw_fault, lowbit_fw_fault,
    nullptr, lowbit_fw_fault, lowbit_fw_fault,
};

[[noreturn]] void finish(std::uint32_t code, bool fault) {
    lowbit_fw_exit_code = code;
    std::uint32_t* p = __stack_limit;
    while (p < __stack_top && *p == stack_paint) ++p;
    lowbit_fw_stack_used = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(__stack_top) -
                                                      reinterpret_cast<std::uintptr_t>(p));
#if LOWBIT_FW_SEMIHOSTING
    char buf[96];
    fw::text t(buf, sizeof buf);
    if (fault) t.str("fault: the core took an exception\n");
    t.str("stack-used ").dec(lowbit_fw_stack_used).str(" of ");
    t.dec(static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(__stack_top) -
                                     reinterpret_cast<std::uintptr_t>(__stack_limit)));
    t.str(" bytes; main returned 0x").hex(code, 8).str("\n");
    fw::semihosting::write0(t.c_str());
    fw::semihosting::exit(fault ? 3u : 0u);
#else
    (void)fault;
    for (;;) __asm__ volatile("wfi");
#endif
}

}  // namespace

extern "C" [[noreturn]] void lowbit_fw_fault() { finish(0xFFFFFFFFu, true); }

extern "C" [[noreturn]] void lowbit_fw_reset() {
    // CPACR: full access to CP10 / CP11 (the FPU; also MVE on the M55) before any FP instruction
    volatile std::uint32_t& cpacr = *reinterpret_cast<volatile std::uint32_t*>(0xE000ED88u);
    cpacr = cpacr | (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    for (std::uint32_t *src = __data_load, *dst = __data_start; dst < __data_end;) *dst++ = *src++;
    for (std::uint32_t* p = __bss_start; p < __bss_end; ++p) *p = 0;
    // paint the stack below this frame (with a margin) to find main's high-water mark later
    std::uint32_t* sp = nullptr;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (volatile std::uint32_t* p = __stack_limit; p < sp - 16; ++p) *p = stack_paint;
    for (void (**f)() = __init_array_start; f < __init_array_end; ++f) (*f)();
    finish(static_cast<std::uint32_t>(main()), false);
}
