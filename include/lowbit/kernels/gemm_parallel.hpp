// lowbit/kernels/gemm_parallel.hpp: one GEMM over several std::threads.
//
// kernels::gemm writes only the rows and columns of its gemm_options::range, so a GEMM splits
// into independent calls on disjoint parts of C. gemm_parallel makes the parts and runs them:
//
//   kernels::gemm_parallel(3, M, N, [&](const kernels::gemm_range& r) {
//       return kernels::gemm(gemm_dims{M, N, K}, a, w, c, ldc, kernels::gemm_options{isa, r});
//   });
//
// Splitting: along N, in whole 16-column panels, when there are at least as many panels as
// threads (each thread then reads all of A and its own share of the packed weights: the
// GEMV case, M = 1, splits the weight stream); otherwise along M. Parts differ by at most one
// panel (one row). The results do not depend on the split (every output is computed the same
// way whichever call computes it). A separate header because it needs <thread>; the GEMM
// headers stay thread-free.
#ifndef LOWBIT_KERNELS_GEMM_PARALLEL_HPP
#define LOWBIT_KERNELS_GEMM_PARALLEL_HPP

#include <cstddef>
#include <thread>
#include <utility>

#include "gemm.hpp"

#if !LOWBIT_NO_EXCEPTIONS
#include <exception>
#include <system_error>
#endif

namespace lowbit {
namespace kernels {

/// Part `t` of `parts` of an m x n GEMM (the split of the file comment); parts >= 1.
inline gemm_range gemm_split(std::size_t m, std::size_t n, std::size_t parts, std::size_t t) noexcept {
    gemm_range r;
    const std::size_t panels = (n + x86::gemm_panel_cols - 1) / x86::gemm_panel_cols;
    if (panels >= parts) {
        const std::size_t p0 = panels / parts * t + (t < panels % parts ? t : panels % parts);
        const std::size_t p1 = p0 + panels / parts + (t < panels % parts ? 1 : 0);
        r.m0 = 0, r.m1 = m;
        r.n0 = p0 * x86::gemm_panel_cols;
        r.n1 = p1 * x86::gemm_panel_cols < n ? p1 * x86::gemm_panel_cols : n;
    } else {
        const std::size_t r0 = m / parts * t + (t < m % parts ? t : m % parts);
        r.m0 = r0, r.m1 = r0 + m / parts + (t < m % parts ? 1 : 0);
        r.n0 = 0, r.n1 = n;
    }
    return r;
}

/// Runs f(range) -> status on `threads` threads (0: std::thread::hardware_concurrency()), the
/// calling thread taking the first part, and returns the first non-ok status in part order
/// (ok if all are). Parts that would be empty are not run, so fewer threads may start (at
/// most max(ceil(n / 16), m) parts). With exceptions, an exception thrown by f (a lowbit::error
/// from a failed check) is rethrown here after every thread has finished, the first in part
/// order; a thread that cannot be started runs its part on the calling thread instead.
template <class F>
status gemm_parallel(std::size_t threads, std::size_t m, std::size_t n, F&& f) {
    if (threads == 0) threads = std::thread::hardware_concurrency();
    if (threads == 0) threads = 1;
    const std::size_t panels = (n + x86::gemm_panel_cols - 1) / x86::gemm_panel_cols;
    const std::size_t most = panels > m ? panels : m;
    std::size_t parts = threads < most ? threads : most;
    if (parts == 0) parts = 1;
    constexpr std::size_t max_parts = 256;
    if (parts > max_parts) parts = max_parts;
    status results[max_parts];
#if !LOWBIT_NO_EXCEPTIONS
    std::exception_ptr errors[max_parts];
#endif
    const auto run = [&](std::size_t t) {
#if !LOWBIT_NO_EXCEPTIONS
        try {
            results[t] = f(gemm_split(m, n, parts, t));
        } catch (...) {
            errors[t] = std::current_exception();
        }
#else
        results[t] = f(gemm_split(m, n, parts, t));
#endif
    };
    std::thread pool[max_parts];
    for (std::size_t t = 1; t < parts; ++t) {
#if !LOWBIT_NO_EXCEPTIONS
        try {
            pool[t] = std::thread(run, t);
        } catch (const std::system_error&) {
            run(t);  // could not start a thread: do the part here
        }
#else
        pool[t] = std::thread(run, t);
#endif
    }
    run(0);
    for (std::size_t t = 1; t < parts; ++t)
        if (pool[t].joinable()) pool[t].join();
#if !LOWBIT_NO_EXCEPTIONS
    for (std::size_t t = 0; t < parts; ++t)
        if (errors[t]) std::rethrow_exception(errors[t]);
#endif
    for (std::size_t t = 0; t < parts; ++t)
        if (!results[t].ok()) return results[t];
    return {};
}

}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_GEMM_PARALLEL_HPP
