// lowbit/kernels/x86/gemm_amx.hpp: the AMX-INT8 micro-kernel of the int8 GEMM.
//
// Why a file of its own: AMX computes on eight 1 KB tile registers (16 rows x 64 bytes) that
// must be configured (ldtilecfg) before use and that the Linux kernel hands out only after
// the process asks for them (arch_prctl ARCH_REQ_XCOMP_PERM). This file holds that
// machinery and one block kernel; kernels/gemm.hpp (the driver) packs B, picks the kernel
// and applies the epilogue.
//
// What it computes (core/gemm.hpp's sum_k A*B, the raw dot without zero points):
//   acc[i * ld_acc + j] = sum_{kk < k} A[i][kk] * B[kk][16 * p0 + j]   (mod 2^32)
// for i < m_count (<= 32) and j < 16 * p_count, with A[i][kk] = a[i * lda + kk] (u8 or s8)
// and B (s8) read from packed panels p0, p0 + 1, ...
//
// Packed B (the driver writes it): kp = K rounded up to a multiple of 64, rows k >= K are
// zero. Columns come in panels of 16; panel p is kp * 16 bytes and starts at
// panel0 + p * kp * 16 (64-byte aligned when panel0 is: that is the driver's choice, the
// kernel does not need it). Inside a panel, k-quad q (k = 4q .. 4q + 3) is 64 bytes at
// offset 64 q, byte 4 c + j = B[4q + j][16 p + c]. So 16 consecutive k-quads are exactly one
// AMX B tile (16 rows x 64 bytes, stride 64): tile row r, dword c holds column c's four k.
//
// The instructions (Intel SDM, TDPBUSD / TDPBSSD): for each row m of C and k-quad r,
//   C[m].dword[c] += sum_{j<4} A[m].byte[4r + j] * B[r].byte[4c + j]
// with A's bytes zero-extended (tdpbusd, u8 A) or sign-extended (tdpbssd, s8 A) and B's
// sign-extended; the four products are summed exactly (|sum| <= 4 * 255 * 128 = 130560) and
// added to the dword with wrap-around, no saturation. So the result is the formula modulo
// 2^32 whatever the order, hence exact whenever the true sum fits int32 (core/gemm.hpp:
// K * 255 * 128 <= 2^31 - 1 for u8 x s8, i.e. K <= 65793; K * 128 * 128, K <= 131071, for
// s8 x s8). Worked number: A = 255 and B = -128 everywhere, K = 4096: each product is
// -32640 and acc = -133693440; with B = 127 and K = 70000, the true sum 2266950000 > 2^31 - 1
// comes out as 2266950000 - 2^32 = -2028017296 (tests/gemm/test_kernels_amx.cpp).
//
// The kernel, for a 32 x 32 block: C is four tiles (2 x 2) that stay in tmm0..tmm3 over the
// whole K loop; each 64-wide step of K loads two A tiles (tmm4, tmm5: rows 0..15, 16..31,
// straight from A with stride lda) and two B tiles (tmm6, tmm7: panels p0, p0 + 1, stride 64)
// and issues four tdpbusd / tdpbssd. Smaller blocks use the same code with 1 x 1, 1 x 2 or
// 2 x 1 C tiles. A is never read at or past A[i][k]: when K is not a multiple of 64, the
// last step copies the K tail of each row into a zero-padded 32 x 64 stack buffer; a row
// tile with fewer than 16 rows of A (m_count not 16 or 32) is copied step by step into the
// same buffer; a C tile with fewer than 16 rows is stored into a 16 x 16 stack buffer and
// only its m_count rows are copied out. Nothing is written to acc outside the m_count x
// 16 p_count block. The tile configuration is one for every call: palette 1, all eight
// tiles 16 rows x 64 bytes.
//
// Tile configuration and release, the choice: every call configures the tiles on entry
// (ldtilecfg) and releases them on exit (tilerelease). No per-thread state: another AMX user
// in the same thread (oneDNN, a second lowbit kernel) may reconfigure the tiles between two
// calls without breaking us, and a thread that stops calling does not keep 8 KB of tile data
// in every context switch's XSAVE area. The cost is one ldtilecfg + tilerelease per call,
// which amx_dot_panels amortizes over a whole row of panels (the driver's natural loop).
//
// Inline assembly instead of GCC 12's intrinsics: GCC 12's _tile_loadd is an asm with no
// memory operand and no "memory" clobber, and _tile_loadconfig declares 8 of its 64 bytes,
// so the compiler may drop or sink the stores into the staging buffer or the configuration
// that the tile instructions then read. The wrappers below are the same instructions with
// the memory they touch declared ("memory" clobbers); the tile register is an immediate.
//
// The AMX instructions are inline assembly, which the assembler accepts whatever -m flags
// the translation unit has: the kernels exist in every x86-64 Linux build with GCC or Clang
// (no -mamx-tile needed), and run where amx_available() says the CPU and OS allow. So every
// translation unit sees the same definitions (no ODR difference between files built with
// and without AMX flags). Elsewhere amx_available() is false and the block functions compute
// the same result with a portable loop (correct, slow: a driver picks another kernel).
#ifndef LOWBIT_KERNELS_X86_GEMM_AMX_HPP
#define LOWBIT_KERNELS_X86_GEMM_AMX_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../../config.hpp"
#include "../../core/status.hpp"

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define LOWBIT_DETAIL_AMX 1
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#define LOWBIT_DETAIL_AMX 0
#endif

namespace lowbit {
namespace kernels {
namespace detail {

/// The 64-byte operand of ldtilecfg (Intel SDM, palette 1): palette, start row, reserved,
/// bytes per row of tiles 0..15, rows of tiles 0..15.
struct alignas(64) amx_tile_config {
    std::uint8_t palette_id = 0;
    std::uint8_t start_row = 0;
    std::uint8_t reserved[14] = {};
    std::uint16_t colsb[16] = {};
    std::uint8_t rows[16] = {};
};
static_assert(sizeof(amx_tile_config) == 64, "ldtilecfg reads 64 bytes");

/// This file's one configuration: palette 1, tiles 0..7 of 16 rows x 64 bytes.
inline amx_tile_config amx_gemm_tile_config() noexcept {
    amx_tile_config c;
    c.palette_id = 1;
    for (int t = 0; t < 8; ++t) {
        c.colsb[t] = 64;
        c.rows[t] = 16;
    }
    return c;
}

constexpr std::size_t amx_max_rows = 32;  // A rows per call (two row tiles)
constexpr std::size_t amx_k_step = 64;    // K per tile step: one A tile row, 16 B tile rows
constexpr std::size_t amx_panel = 16;     // columns per panel (one C tile)

/// Whether the block arguments satisfy the kernels' preconditions (amx_check_block says
/// which one fails). max_panels: 2 for amx_dot_block, unlimited for amx_dot_panels.
template <class TA>
inline bool amx_block_args_ok(const TA* a, std::size_t lda, std::size_t k, std::size_t m_count,
                              const std::int8_t* panel0, std::size_t kp, std::size_t p_count, const std::int32_t* acc,
                              std::size_t ld_acc, std::size_t max_panels) noexcept {
    if (m_count < 1 || m_count > amx_max_rows || p_count < 1 || p_count > max_panels) return false;
    if (acc == nullptr || ld_acc < amx_panel * p_count) return false;
    if (k == 0) return true;
    return a != nullptr && panel0 != nullptr && lda >= k && kp % amx_k_step == 0 && kp >= k;
}

// The stack buffers of one call: the staged A rows (K tail, short row tiles) and one C tile.
struct alignas(64) amx_scratch {
    unsigned char a[amx_max_rows][amx_k_step];
    std::int32_t c[16][amx_panel];
};

// One block of MT x NT C tiles (MT row tiles of 16 rows, NT panels; Signed: s8 A), tiles numbered
// C(i, j) = 2 i + j, A(i) = 4 + i, B(j) = 6 + j. Tiles: the instruction backend (amx_hw_tiles
// below, or a test's emulator) with configure / release / zero<T> / load<T> / store<T> /
// dot<Signed, C, A, B>.
template <bool Signed, int MT, int NT, class Tiles>
inline void amx_block(Tiles& t, const unsigned char* a, std::size_t lda, std::size_t k, std::size_t m_count,
                      const std::int8_t* b0, const std::int8_t* b1, std::int32_t* acc,
                      std::size_t ld_acc, amx_scratch& s) noexcept {
    static_assert((MT == 1 || MT == 2) && (NT == 1 || NT == 2), "1 or 2 row tiles and panels");
    constexpr std::size_t tile_bytes = 16 * amx_k_step;  // one B tile: 16 k-quads
    const std::size_t steps = k / amx_k_step, tail = k % amx_k_step;
    const std::size_t last_rows = m_count - 16 * (MT - 1);  // rows of the last row tile, 1..16
    const bool last_short = last_rows < 16;

    t.template zero<0>();
    if constexpr (NT == 2) t.template zero<1>();
    if constexpr (MT == 2) t.template zero<2>();
    if constexpr (MT == 2 && NT == 2) t.template zero<3>();

    // One 64-wide step of K: A tiles from a0 / a1 (row strides sa0 / sa1), B tiles at offset
    // `off` of each panel.
    const auto step = [&](const unsigned char* a0, std::size_t sa0, const unsigned char* a1, std::size_t sa1,
                          std::size_t off) {
        t.template load<4>(a0, sa0);
        t.template load<6>(b0 + off, amx_k_step);
        t.template dot<Signed, 0, 4, 6>();
        if constexpr (NT == 2) {
            t.template load<7>(b1 + off, amx_k_step);
            t.template dot<Signed, 1, 4, 7>();
        }
        if constexpr (MT == 2) {
            t.template load<5>(a1, sa1);
            t.template dot<Signed, 2, 5, 6>();
            if constexpr (NT == 2) t.template dot<Signed, 3, 5, 7>();
        }
    };

    // Full steps. Rows of a short last row tile go through the buffer (rows 16 (MT - 1) ..);
    // its rows past m_count stay zero.
    unsigned char* short_rows = s.a[16 * (MT - 1)];
    if (last_short && steps != 0) std::memset(short_rows, 0, 16 * amx_k_step);
    for (std::size_t q = 0; q < steps; ++q) {
        const std::size_t kk = q * amx_k_step;
        const unsigned char* a0 = a + kk;
        const unsigned char* a1 = MT == 2 ? a + 16 * lda + kk : a0;  // row 16 exists when MT == 2
        std::size_t sa0 = lda, sa1 = lda;
        if (last_short) {
            const unsigned char* src = a + 16 * (MT - 1) * lda + kk;
            for (std::size_t r = 0; r < last_rows; ++r)
                std::memcpy(short_rows + r * amx_k_step, src + r * lda, amx_k_step);
            if constexpr (MT == 1) {
                a0 = short_rows;
                sa0 = amx_k_step;
            } else {
                a1 = short_rows;
                sa1 = amx_k_step;
            }
        }
        step(a0, sa0, a1, sa1, q * tile_bytes);
    }
    // The K tail: every row's last `tail` elements, zero-padded to 64.
    if (tail != 0) {
        std::memset(s.a, 0, sizeof s.a);
        for (std::size_t r = 0; r < m_count; ++r) std::memcpy(s.a[r], a + r * lda + steps * amx_k_step, tail);
        step(s.a[0], amx_k_step, s.a[16], amx_k_step, steps * tile_bytes);
    }

    // C out: full row tiles straight into acc, a short one through the buffer.
    const std::size_t ldc_bytes = ld_acc * sizeof(std::int32_t);
    const auto store_short = [&](std::size_t col) {
        std::int32_t* dst = acc + 16 * (MT - 1) * ld_acc + col;
        for (std::size_t r = 0; r < last_rows; ++r) std::memcpy(dst + r * ld_acc, s.c[r], sizeof s.c[r]);
    };
    if (MT == 2 || !last_short) {
        t.template store<0>(acc, ldc_bytes);
        if constexpr (NT == 2) t.template store<1>(acc + amx_panel, ldc_bytes);
    } else {
        t.template store<0>(s.c, sizeof s.c[0]);
        store_short(0);
        if constexpr (NT == 2) {
            t.template store<1>(s.c, sizeof s.c[0]);
            store_short(amx_panel);
        }
    }
    if constexpr (MT == 2) {
        std::int32_t* c1 = acc + 16 * ld_acc;
        if (!last_short) {
            t.template store<2>(c1, ldc_bytes);
            if constexpr (NT == 2) t.template store<3>(c1 + amx_panel, ldc_bytes);
        } else {
            t.template store<2>(s.c, sizeof s.c[0]);
            store_short(0);
            if constexpr (NT == 2) {
                t.template store<3>(s.c, sizeof s.c[0]);
                store_short(amx_panel);
            }
        }
    }
}

// The whole call on a tile backend: configure, panels two at a time (one left over when
// p_count is odd), release. Preconditions: amx_block_args_ok.
template <class Tiles, class TA>
inline void amx_dot_panels_with(Tiles& t, const TA* a, std::size_t lda, std::size_t k, std::size_t m_count,
                                const std::int8_t* panel0, std::size_t kp, std::size_t p_count, std::int32_t* acc,
                                std::size_t ld_acc) noexcept {
    static_assert(std::is_same<TA, std::uint8_t>::value || std::is_same<TA, std::int8_t>::value, "A is u8 or s8");
    constexpr bool a_signed = std::is_signed<TA>::value;
    const unsigned char* ab = reinterpret_cast<const unsigned char*>(a);
    const amx_tile_config cfg = amx_gemm_tile_config();
    amx_scratch s;
    t.configure(cfg);
    const std::size_t panel_bytes = kp * amx_panel;
    std::size_t p = 0;
    for (; p + 2 <= p_count; p += 2) {
        const std::int8_t* b0 = panel0 + p * panel_bytes;
        std::int32_t* c = acc + p * amx_panel;
        if (m_count > 16)
            amx_block<a_signed, 2, 2>(t, ab, lda, k, m_count, b0, b0 + panel_bytes, c, ld_acc, s);
        else
            amx_block<a_signed, 1, 2>(t, ab, lda, k, m_count, b0, b0 + panel_bytes, c, ld_acc, s);
    }
    if (p < p_count) {
        const std::int8_t* b0 = panel0 + p * panel_bytes;
        std::int32_t* c = acc + p * amx_panel;
        if (m_count > 16)
            amx_block<a_signed, 2, 1>(t, ab, lda, k, m_count, b0, b0, c, ld_acc, s);
        else
            amx_block<a_signed, 1, 1>(t, ab, lda, k, m_count, b0, b0, c, ld_acc, s);
    }
    t.release();
}

// The portable result of the same call (no AMX compiled in, or refused by the OS).
template <class TA>
inline void amx_dot_panels_portable(const TA* a, std::size_t lda, std::size_t k, std::size_t m_count,
                                    const std::int8_t* panel0, std::size_t kp, std::size_t p_count,
                                    std::int32_t* acc, std::size_t ld_acc) noexcept {
    for (std::size_t i = 0; i < m_count; ++i)
        for (std::size_t p = 0; p < p_count; ++p)
            for (std::size_t c = 0; c < amx_panel; ++c) {
                const std::int8_t* panel = panel0 + p * kp * amx_panel;
                std::uint32_t sum = 0;
                for (std::size_t kk = 0; kk < k; ++kk) {
                    const std::int32_t prod = std::int32_t(a[i * lda + kk]) *
                                              std::int32_t(panel[(kk / 4) * amx_k_step + c * 4 + kk % 4]);
                    sum += static_cast<std::uint32_t>(prod);
                }
                acc[i * ld_acc + p * amx_panel + c] = static_cast<std::int32_t>(sum);
            }
}

#if LOWBIT_DETAIL_AMX
// The instructions, one wrapper each (the tile register is the immediate T; AT&T | Intel
// syntax). Loads and stores clobber "memory": their strided extent cannot be an operand.
struct amx_hw_tiles {
    LOWBIT_FORCE_INLINE void configure(const amx_tile_config& c) noexcept {
        __asm__ volatile("ldtilecfg %0" ::"m"(c) : "memory");
    }
    LOWBIT_FORCE_INLINE void release() noexcept { __asm__ volatile("tilerelease" ::: "memory"); }
    template <int T>
    LOWBIT_FORCE_INLINE void zero() noexcept {
        __asm__ volatile("{tilezero\t%%tmm%c0|tilezero\ttmm%c0}" ::"i"(T));
    }
    template <int T>
    LOWBIT_FORCE_INLINE void load(const void* base, std::size_t stride) noexcept {
        __asm__ volatile("{tileloadd\t(%0,%1,1), %%tmm%c2|tileloadd\ttmm%c2, [%0+%1*1]}" ::"r"(base),
                         "r"(static_cast<long>(stride)), "i"(T)
                         : "memory");
    }
    template <int T>
    LOWBIT_FORCE_INLINE void store(void* base, std::size_t stride) noexcept {
        __asm__ volatile("{tilestored\t%%tmm%c2, (%0,%1,1)|tilestored\t[%0+%1*1], tmm%c2}" ::"r"(base),
                         "r"(static_cast<long>(stride)), "i"(T)
                         : "memory");
    }
    template <bool Signed, int C, int A, int B>
    LOWBIT_FORCE_INLINE void dot() noexcept {
        if constexpr (Signed)
            __asm__ volatile("{tdpbssd\t%%tmm%c2, %%tmm%c1, %%tmm%c0|tdpbssd\ttmm%c0, tmm%c1, tmm%c2}" ::"i"(C), "i"(A),
                             "i"(B));
        else
            __asm__ volatile("{tdpbusd\t%%tmm%c2, %%tmm%c1, %%tmm%c0|tdpbusd\ttmm%c0, tmm%c1, tmm%c2}" ::"i"(C), "i"(A),
                             "i"(B));
    }
};

// CPU (CPUID.(7,0):EDX bit 24 AMX-TILE, bit 25 AMX-INT8), OS (XCR0 bits 17, 18: XTILECFG,
// XTILEDATA enabled), then the per-process permission for XTILEDATA (Linux >= 5.16).
inline bool amx_request() noexcept {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid_max(0, nullptr) < 7) return false;
    __cpuid_count(1, 0, a, b, c, d);
    if (!((c >> 27) & 1u)) return false;  // OSXSAVE: xgetbv usable
    __cpuid_count(7, 0, a, b, c, d);
    if (!((d >> 24) & 1u) || !((d >> 25) & 1u)) return false;
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0x60000u) != 0x60000u) return false;
    constexpr long arch_get_xcomp_perm = 0x1022, arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
    if (syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) != 0) return false;
    unsigned long long granted = 0;
    if (syscall(SYS_arch_prctl, arch_get_xcomp_perm, &granted) != 0) return false;
    return ((granted >> xfeature_xtiledata) & 1u) != 0;
}
#endif

}  // namespace detail

namespace x86 {

/// Whether this process can run the AMX kernels: x86-64 Linux (GCC / Clang), the CPU reports AMX-TILE and AMX-INT8 (CPUID.(7,0):EDX bits
/// 24, 25), the OS enables tile state (XCR0) and grants this process XTILEDATA
/// (arch_prctl(ARCH_REQ_XCOMP_PERM, 18), asked once per process on the first call; the
/// grant holds for every thread). Thread-safe; false on any refusal; never faults.
inline bool amx_available() noexcept {
#if LOWBIT_DETAIL_AMX
    static const bool available = detail::amx_request();
    return available;
#else
    return false;
#endif
}

/// Validates the arguments of amx_dot_block (max_panels = 2) or amx_dot_panels
/// (max_panels = 0: no limit), naming the first bad one: m_count in [1, 32], p_count in
/// [1, max_panels], acc non-null, ld_acc >= 16 * p_count; when k > 0 also a and panel0
/// non-null, lda >= k, kp a multiple of 64 and >= k. Throws lowbit::error (or, without
/// exceptions, returns the status). The kernels themselves do not report: given arguments
/// that fail this check they return without writing anything.
template <class TA>
inline status amx_check_block(const TA* a, std::size_t lda, std::size_t k, std::size_t m_count,
                              const std::int8_t* panel0, std::size_t kp, std::size_t p_count, const std::int32_t* acc,
                              std::size_t ld_acc, std::size_t max_panels = 2) {
    const std::size_t pmax = max_panels == 0 ? static_cast<std::size_t>(-1) / detail::amx_panel : max_panels;
    LOWBIT_DETAIL_CHECK(m_count >= 1 && m_count <= detail::amx_max_rows, errc::invalid_argument, "m_count", m_count,
                        "must be in [1, 32]");
    LOWBIT_DETAIL_CHECK(p_count >= 1 && p_count <= pmax, errc::invalid_argument, "p_count", p_count,
                        max_panels == 2 ? "must be 1 or 2 (amx_dot_block)" : "must be in [1, max_panels]");
    LOWBIT_DETAIL_CHECK(acc != nullptr, errc::invalid_argument, "acc", 0, "must not be null");
    LOWBIT_DETAIL_CHECK(ld_acc >= detail::amx_panel * p_count, errc::invalid_argument, "ld_acc", ld_acc,
                        "must be >= 16 * p_count");
    if (k == 0) return {};
    LOWBIT_DETAIL_CHECK(a != nullptr, errc::invalid_argument, "a", 0, "must not be null when k > 0");
    LOWBIT_DETAIL_CHECK(panel0 != nullptr, errc::invalid_argument, "panel0", 0, "must not be null when k > 0");
    LOWBIT_DETAIL_CHECK(lda >= k, errc::invalid_argument, "lda", lda, "must be >= k");
    LOWBIT_DETAIL_CHECK(kp % detail::amx_k_step == 0, errc::invalid_argument, "kp", kp, "must be a multiple of 64");
    LOWBIT_DETAIL_CHECK(kp >= k, errc::invalid_argument, "kp", kp, "must be >= k (k rounded up to 64)");
    return {};
}

/// One block of the raw int8 GEMM on AMX tiles (file comment):
///   acc[i * ld_acc + j] = sum_{kk < k} a[i * lda + kk] * B[kk][16 p0 + j]   (mod 2^32)
/// for i < m_count, j < 16 * p_count, B read from the packed panels at panel0 (panel p0) and
/// panel0 + 16 kp (p0 + 1). TA: std::uint8_t (tdpbusd) or std::int8_t (tdpbssd).
/// Ranges: m_count 1..32, p_count 1..2, lda >= k, kp a multiple of 64 with kp >= k (B rows
/// k..kp-1 zero), ld_acc >= 16 p_count; k may be 0 (acc = 0). Exact when the true sums fit
/// int32 (k <= 65793 for u8, 131071 for s8), else wraps modulo 2^32. Reads A only at
/// i < m_count, kk < k, B only within the p_count panels; writes only the block of acc.
/// Configures the tiles on entry and releases them on return (file comment). Without AMX
/// (!amx_available()) it computes the same values with a portable loop. Arguments that
/// amx_check_block rejects: returns without writing.
template <class TA>
inline void amx_dot_block(const TA* a, std::size_t lda, std::size_t k, std::size_t m_count, const std::int8_t* panel0,
                          std::size_t kp, std::size_t p_count, std::int32_t* acc, std::size_t ld_acc) noexcept {
    if (!detail::amx_block_args_ok(a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc, 2)) return;
#if LOWBIT_DETAIL_AMX
    if (amx_available()) {
        detail::amx_hw_tiles t;
        detail::amx_dot_panels_with(t, a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc);
        return;
    }
#endif
    detail::amx_dot_panels_portable(a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc);
}

/// The same over any number of panels (the larger-block entry): m_count <= 32 rows of A
/// against panels p0 .. p0 + p_count - 1, C tiles 32 x 32 at a time (a last odd panel
/// alone), one tile configuration for the whole call. acc gets 16 p_count columns,
/// ld_acc >= 16 p_count. Other ranges, guarantees and fallback as amx_dot_block.
template <class TA>
inline void amx_dot_panels(const TA* a, std::size_t lda, std::size_t k, std::size_t m_count,
                           const std::int8_t* panel0, std::size_t kp, std::size_t p_count, std::int32_t* acc,
                           std::size_t ld_acc) noexcept {
    if (!detail::amx_block_args_ok(a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc,
                                   static_cast<std::size_t>(-1) / detail::amx_panel))
        return;
#if LOWBIT_DETAIL_AMX
    if (amx_available()) {
        detail::amx_hw_tiles t;
        detail::amx_dot_panels_with(t, a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc);
        return;
    }
#endif
    detail::amx_dot_panels_portable(a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc);
}

}  // namespace x86
}  // namespace kernels
}  // namespace lowbit

#undef LOWBIT_DETAIL_AMX
#endif  // LOWBIT_KERNELS_X86_GEMM_AMX_HPP
