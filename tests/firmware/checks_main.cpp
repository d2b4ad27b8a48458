// checks_main.cpp (tests/firmware): runs the library checks and prints
// "lowbit firmware checks: N passed, M failed" (semihosting on Cortex-M, stdout on the host);
// main returns the number of failures.
#include "checks.hpp"
#include "report_text.hpp"

#if defined(__arm__) && LOWBIT_FW_SEMIHOSTING
#include "semihosting.hpp"
static void print(const char* s) { fw::semihosting::write0(s); }
#elif defined(__arm__)
static void print(const char*) {}
#else
#include <cstdio>
static void print(const char* s) { std::fputs(s, stdout); }
#endif

int main() {
    fwcheck::counter c;
    c.print = print;
    fwcheck::core_checks(c);
    fwcheck::observer_checks(c);
    char buf[96];
    fw::text t(buf, sizeof buf);
    t.str("lowbit firmware checks: ").dec(c.passed).str(" passed, ").dec(c.failed).str(" failed\n");
    print(t.c_str());
    return static_cast<int>(c.failed);
}
