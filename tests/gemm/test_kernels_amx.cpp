// The AMX-INT8 GEMM micro-kernel (kernels/x86/gemm_amx.hpp) against the GEMM spec.
//
// Two ways of running the kernel:
//   - on the CPU's tiles (amx_dot_block / amx_dot_panels), when amx_available(): this build
//     has AMX compiled in (-march=native on an AMX CPU) and the OS grants tile data. Elsewhere
//     those tests WARN and skip, and the portable fallback of the same entries is checked;
//   - on an emulator of the tile instructions written here from the Intel SDM's pseudocode
//     (ldtilecfg, tilezero, tileloadd, tilestored, tdpbusd, tdpbssd, tilerelease) that also
//     enforces the instructions' fault conditions (configuration rules, tile shapes that
//     must agree) and watches every address a tile load or store touches: A may be read only
//     at A[i][kk] with i < m_count, kk < k, B only inside its panels, acc written only inside
//     the block. It runs the very kernel body (detail::amx_dot_panels_with) that the
//     hardware entries run, so the data movement (K tail, short row tiles, strides, panel
//     offsets, C stores) is tested on every machine.
// Golden values: lowbit::ref::gemm (the spec, za = 0, no B zero points, B unpacked k_by_n),
// a uint32 formula written here for K beyond the spec's bound, and hand-computed numbers.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <lowbit/core/gemm.hpp>
#include <lowbit/kernels/cpu.hpp>
#include <lowbit/kernels/x86/gemm_amx.hpp>

#include "lowbit_catch.hpp"

namespace lowbit_test_amx {

namespace kx = lowbit::kernels::x86;
namespace kd = lowbit::kernels::detail;

inline std::uintptr_t addr(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

// ------------------------------------------------------------------ tile emulator

// The AMX tile instructions as the Intel SDM describes them (palette 1: 8 tiles of at most
// 16 rows x 64 bytes), with their fault conditions recorded in `faults` instead of raising
// #GP / #UD, and address checks on every tile row a load or store touches.
struct emu_tiles {
    bool configured = false;
    kd::amx_tile_config cfg{};
    unsigned char t[8][16][64] = {};
    std::vector<std::string> faults;
    int configures = 0, releases = 0;
    long loads = 0, stores = 0, dots = 0;

    // Where A, B and acc live (whole allocations) and which parts may be touched.
    std::uintptr_t a_lo = 0, a_hi = 0, b_lo = 0, b_hi = 0, c_lo = 0, c_hi = 0;
    std::size_t lda = 0, k = 0, m = 0, ld_acc = 0, cols = 0;

    void fault(const std::string& what) {
        if (faults.size() < 8) faults.push_back(what);
    }

    void configure(const kd::amx_tile_config& c) {
        ++configures;
        if (c.palette_id != 1) fault("ldtilecfg: palette is not 1");
        if (c.start_row != 0) fault("ldtilecfg: start_row not 0");
        for (unsigned char r : c.reserved)
            if (r != 0) fault("ldtilecfg: reserved byte not 0");
        for (int i = 0; i < 16; ++i) {
            const bool used = c.rows[i] != 0 || c.colsb[i] != 0;
            if (!used) continue;
            if (i >= 8) fault("ldtilecfg: tile >= 8 configured under palette 1");
            if (c.rows[i] == 0 || c.rows[i] > 16 || c.colsb[i] == 0 || c.colsb[i] > 64)
                fault("ldtilecfg: tile " + std::to_string(i) + " rows / colsb out of range");
        }
        cfg = c;
        configured = true;
        std::memset(t, 0, sizeof t);  // ldtilecfg zeroes the tile data
    }
    void release() {
        ++releases;
        if (!configured) fault("tilerelease without configuration");
        configured = false;
        std::memset(t, 0, sizeof t);
    }
    void need(int tile, const char* op) {
        if (!configured) fault(std::string(op) + ": tiles not configured");
        if (cfg.rows[tile] == 0) fault(std::string(op) + ": tile " + std::to_string(tile) + " not configured");
    }

    // A row of `n` bytes at p is read: inside the B panels, anything; else within A's reach
    // (32 rows of lda from A's start, the most a kernel could address) only as A[i][kk],
    // i < m_count, kk < k; elsewhere (the kernel's stack buffers) anything. False (and a
    // fault): the emulator then does not touch the memory.
    bool check_read(const unsigned char* p, std::size_t n) {
        const std::uintptr_t lo = addr(p), hi = lo + n;
        if (lo >= b_lo && hi <= b_hi) return true;
        if (hi > a_lo && lo < a_lo + 32 * lda + 64) {
            const std::size_t off = lo - a_lo, i = off / lda, kk = off % lda;
            if (lo < a_lo || hi > a_hi || i >= m || kk + n > k) {
                fault("tileloadd reads A outside A[i][kk], i < m_count, kk < k (row " + std::to_string(i) +
                      ", col " + std::to_string(kk) + ")");
                return false;
            }
        }
        if (hi > b_lo && lo < b_hi && (lo < b_lo || hi > b_hi)) {
            fault("tileloadd reads outside the B panels");
            return false;
        }
        return true;
    }
    // Written rows within acc's reach (32 rows of ld_acc) must lie inside the block.
    bool check_write(const unsigned char* p, std::size_t n) {
        const std::uintptr_t lo = addr(p), hi = lo + n;
        if (hi > c_lo && lo < c_lo + (32 * ld_acc + 64) * sizeof(std::int32_t)) {
            const std::size_t off = (lo - c_lo) / sizeof(std::int32_t), i = off / ld_acc, j = off % ld_acc;
            if (lo < c_lo || (lo - c_lo) % sizeof(std::int32_t) != 0 || i >= m ||
                j + n / sizeof(std::int32_t) > cols) {
                fault("tilestored writes acc outside the block (row " + std::to_string(i) + ", col " +
                      std::to_string(j) + ")");
                return false;
            }
        }
        return true;
    }

    template <int T>
    void zero() {
        need(T, "tilezero");
        std::memset(t[T], 0, sizeof t[T]);
    }
    template <int T>
    void load(const void* base, std::size_t stride) {
        need(T, "tileloadd");
        ++loads;
        const std::size_t rows = cfg.rows[T], colsb = cfg.colsb[T];
        std::memset(t[T], 0, sizeof t[T]);  // bytes past colsb and rows past `rows` are zeroed
        for (std::size_t r = 0; r < rows; ++r) {
            const unsigned char* p = static_cast<const unsigned char*>(base) + r * stride;
            if (check_read(p, colsb)) std::memcpy(t[T][r], p, colsb);
        }
    }
    template <int T>
    void store(void* base, std::size_t stride) {
        need(T, "tilestored");
        ++stores;
        const std::size_t rows = cfg.rows[T], colsb = cfg.colsb[T];
        for (std::size_t r = 0; r < rows; ++r) {
            unsigned char* p = static_cast<unsigned char*>(base) + r * stride;
            if (check_write(p, colsb)) std::memcpy(p, t[T][r], colsb);
        }
    }
    // TDPBSSD (Signed) / TDPBUSD: for m < rows(C), kq < colsb(A) / 4, n < colsb(C) / 4:
    //   C[m].dword[n] += sum_j ext(A[m].byte[4 kq + j]) * sext(B[kq].byte[4 n + j]),
    // with #UD unless rows(C) = rows(A), colsb(C) = colsb(B), colsb(A) = 4 rows(B) and the
    // three tiles are distinct.
    template <bool Signed, int C, int A, int B>
    void dot() {
        need(C, "tdp");
        need(A, "tdp");
        need(B, "tdp");
        ++dots;
        if (C == A || C == B || A == B) fault("tdp: tiles not distinct");
        if (cfg.rows[C] != cfg.rows[A] || cfg.colsb[C] != cfg.colsb[B] || cfg.colsb[A] != 4 * cfg.rows[B] ||
            cfg.colsb[C] % 4 != 0 || cfg.colsb[A] % 4 != 0)
            fault("tdp: tile shapes do not agree");
        const int rows = cfg.rows[C], quads = cfg.colsb[A] / 4, lanes = cfg.colsb[C] / 4;
        for (int mm = 0; mm < rows; ++mm)
            for (int n = 0; n < lanes; ++n) {
                std::uint32_t acc = 0;
                std::memcpy(&acc, &t[C][mm][4 * n], 4);
                for (int q = 0; q < quads; ++q) {
                    std::int32_t sum = 0;
                    for (int j = 0; j < 4; ++j) {
                        const unsigned char ab = t[A][mm][4 * q + j];
                        const std::int32_t av = Signed ? std::int32_t(static_cast<signed char>(ab)) : std::int32_t(ab);
                        const std::int32_t bv = static_cast<signed char>(t[B][q][4 * n + j]);
                        sum += av * bv;
                    }
                    acc += static_cast<std::uint32_t>(sum);
                }
                std::memcpy(&t[C][mm][4 * n], &acc, 4);
            }
    }
};

// ------------------------------------------------------------------ operands

struct aligned_delete {
    void operator()(std::int8_t* p) const { ::operator delete[](p, std::align_val_t(64)); }
};
using panels_ptr = std::unique_ptr<std::int8_t[], aligned_delete>;

// B (K x N row-major, N = 16 * p_count) in the packed layout: kp = K rounded up to 64,
// panel p at p * kp * 16 (64-byte aligned), byte q * 64 + 4 c + j = B[4q + j][16p + c], zero
// for 4q + j >= K. Exactly p_count * kp * 16 bytes are allocated (ASan sees any overrun).
inline panels_ptr pack_b(const std::vector<std::int8_t>& b, std::size_t k, std::size_t p_count, std::size_t& kp) {
    kp = (k + 63) / 64 * 64;
    const std::size_t n = 16 * p_count, bytes = p_count * kp * 16;
    panels_ptr out(static_cast<std::int8_t*>(::operator new[](bytes == 0 ? 64 : bytes, std::align_val_t(64))));
    std::memset(out.get(), 0, bytes == 0 ? 64 : bytes);
    for (std::size_t p = 0; p < p_count; ++p)
        for (std::size_t q = 0; q < kp / 4; ++q)
            for (std::size_t c = 0; c < 16; ++c)
                for (std::size_t j = 0; j < 4; ++j) {
                    const std::size_t kk = 4 * q + j;
                    out[p * kp * 16 + q * 64 + 4 * c + j] = kk < k ? b[kk * n + 16 * p + c] : std::int8_t(0);
                }
    return out;
}

template <class TA>
inline TA random_a(std::mt19937& rng) {
    std::uniform_int_distribution<int> d(std::is_signed<TA>::value ? -128 : 0, std::is_signed<TA>::value ? 127 : 255);
    return static_cast<TA>(d(rng));
}
inline std::int8_t random_b(std::mt19937& rng) {
    std::uniform_int_distribution<int> d(-128, 127);
    return static_cast<std::int8_t>(d(rng));
}

// One problem: A (m x k, leading dimension lda, exactly (m - 1) * lda + k elements), B
// (k x 16 p), acc with ld_acc = 16 p + 5 pre-filled with a sentinel.
template <class TA>
struct problem {
    std::size_t m = 0, p = 0, k = 0, lda = 0, kp = 0, ld_acc = 0;
    std::vector<TA> a;
    std::vector<std::int8_t> b;
    panels_ptr panels;
    std::vector<std::int32_t> acc;
    static constexpr std::int32_t sentinel = 0x5A5A5A5A;

    std::size_t n() const { return 16 * p; }
    std::size_t panel_bytes() const { return p * kp * 16; }
    void finish() {
        panels = pack_b(b, k, p, kp);
        ld_acc = n() + 5;
        acc.assign((m - 1) * ld_acc + n(), sentinel);
    }
};

template <class TA>
inline problem<TA> random_problem(std::size_t m, std::size_t p, std::size_t k, std::size_t lda, std::uint32_t seed) {
    std::mt19937 rng(seed);
    problem<TA> pr;
    pr.m = m;
    pr.p = p;
    pr.k = k;
    pr.lda = lda;
    pr.a.resize((m - 1) * lda + k);
    for (auto& v : pr.a) v = random_a<TA>(rng);
    pr.b.resize(k * 16 * p);
    for (auto& v : pr.b) v = random_b(rng);
    pr.finish();
    return pr;
}

template <class TA>
inline problem<TA> constant_problem(std::size_t m, std::size_t p, std::size_t k, std::size_t lda, TA av,
                                    std::int8_t bv) {
    problem<TA> pr;
    pr.m = m;
    pr.p = p;
    pr.k = k;
    pr.lda = lda;
    pr.a.assign((m - 1) * lda + k, av);
    pr.b.assign(k * 16 * p, bv);
    pr.finish();
    return pr;
}

// The spec: ref::gemm with za = 0, no B zero points, B unpacked (k_by_n).
template <class TA>
inline std::vector<std::int32_t> spec(const problem<TA>& pr) {
    const lowbit::gemm_dims d{pr.m, pr.n(), pr.k};
    const lowbit::gemm_a<TA> ga{lowbit::span<const TA>(pr.a.data(), pr.a.size()), pr.lda, 0};
    const lowbit::gemm_b gb{lowbit::span<const std::int8_t>(pr.b.data(), pr.b.size()), pr.n(),
                            lowbit::weight_layout::k_by_n, {}};
    std::vector<std::int32_t> c(pr.m * pr.n());
    const lowbit::status st = lowbit::ref::gemm(d, ga, gb, lowbit::span<std::int32_t>(c.data(), c.size()), pr.n());
    REQUIRE(st.ok());
    return c;
}

// The formula in uint32 arithmetic (any K: wraps modulo 2^32 like the instructions).
template <class TA>
inline std::vector<std::int32_t> formula(const problem<TA>& pr) {
    std::vector<std::int32_t> c(pr.m * pr.n());
    for (std::size_t i = 0; i < pr.m; ++i)
        for (std::size_t j = 0; j < pr.n(); ++j) {
            std::uint32_t s = 0;
            for (std::size_t kk = 0; kk < pr.k; ++kk)
                s += static_cast<std::uint32_t>(std::int32_t(pr.a[i * pr.lda + kk]) *
                                                std::int32_t(pr.b[kk * pr.n() + j]));
            c[i * pr.n() + j] = static_cast<std::int32_t>(s);
        }
    return c;
}

// acc holds `want` (m x n, dense) in its block and the sentinel everywhere else.
template <class TA>
inline void check_acc(const problem<TA>& pr, const std::vector<std::int32_t>& want) {
    std::size_t wrong = 0, first_i = 0, first_j = 0, clobbered = 0;
    for (std::size_t idx = 0; idx < pr.acc.size(); ++idx) {
        const std::size_t i = idx / pr.ld_acc, j = idx % pr.ld_acc;
        if (j < pr.n()) {
            if (pr.acc[idx] != want[i * pr.n() + j] && wrong++ == 0) {
                first_i = i;
                first_j = j;
            }
        } else if (pr.acc[idx] != problem<TA>::sentinel) {
            ++clobbered;
        }
    }
    INFO("m_count " << pr.m << ", p_count " << pr.p << ", k " << pr.k << ", lda " << pr.lda);
    INFO("first wrong element (" << first_i << ", " << first_j << ")");
    CHECK(wrong == 0);
    CHECK(clobbered == 0);
}

// Runs the kernel body on the emulator; checks no fault, one configure and one release.
template <class TA>
inline void run_emulated(problem<TA>& pr) {
    emu_tiles t;
    t.a_lo = addr(pr.a.data());
    t.a_hi = t.a_lo + pr.a.size();
    t.b_lo = addr(pr.panels.get());
    t.b_hi = t.b_lo + pr.panel_bytes();
    t.c_lo = addr(pr.acc.data());
    t.c_hi = t.c_lo + pr.acc.size() * sizeof(std::int32_t);
    t.lda = pr.lda == 0 ? 1 : pr.lda;
    t.k = pr.k;
    t.m = pr.m;
    t.ld_acc = pr.ld_acc;
    t.cols = pr.n();
    REQUIRE(kd::amx_block_args_ok(pr.a.data(), pr.lda, pr.k, pr.m, pr.panels.get(), pr.kp, pr.p, pr.acc.data(),
                                  pr.ld_acc, std::size_t(1) << 20));
    kd::amx_dot_panels_with(t, pr.a.data(), pr.lda, pr.k, pr.m, pr.panels.get(), pr.kp, pr.p, pr.acc.data(),
                            pr.ld_acc);
    INFO("m_count " << pr.m << ", p_count " << pr.p << ", k " << pr.k << ", lda " << pr.lda);
    for (const auto& f : t.faults) FAIL_CHECK(f);
    CHECK(t.configures == 1);
    CHECK(t.releases == 1);
    CHECK(!t.configured);
    // 2 x 2 blocks: per 64-step 2 A + 2 B loads and 4 dots (fewer for edge blocks).
    const long steps = static_cast<long>((pr.k + 63) / 64);
    const long pairs = static_cast<long>(pr.p / 2), single = static_cast<long>(pr.p % 2);
    const long mt = pr.m > 16 ? 2 : 1;
    CHECK(t.dots == steps * (pairs * 2 * mt + single * mt));
    CHECK(t.loads == steps * (pairs * (2 + mt) + single * (1 + mt)));
}

// The public entries (the CPU's tiles when amx_available(), else the portable loop).
template <class TA>
inline void run_public(problem<TA>& pr) {
    if (pr.p <= 2)
        kx::amx_dot_block(pr.a.data(), pr.lda, pr.k, pr.m, pr.panels.get(), pr.kp, pr.p, pr.acc.data(), pr.ld_acc);
    else
        kx::amx_dot_panels(pr.a.data(), pr.lda, pr.k, pr.m, pr.panels.get(), pr.kp, pr.p, pr.acc.data(), pr.ld_acc);
}

const std::size_t sweep_m[] = {1, 2, 15, 16, 17, 31, 32};
const std::size_t sweep_k[] = {0, 1, 3, 4, 63, 64, 65, 127, 128, 129, 1000};

// Every m_count, p_count in {1, 2}, k and lda in {k, k + 13} against the spec.
template <class TA, class Run>
inline void sweep(Run run) {
    std::uint32_t seed = 1;
    for (std::size_t m : sweep_m)
        for (std::size_t p = 1; p <= 2; ++p)
            for (std::size_t k : sweep_k)
                for (std::size_t pad : {std::size_t(0), std::size_t(13)}) {
                    auto pr = random_problem<TA>(m, p, k, k + pad, seed++);
                    run(pr);
                    check_acc(pr, spec(pr));
                }
}

// Panels beyond two (amx_dot_panels): odd and even counts, short and full row tiles.
template <class TA, class Run>
inline void sweep_panels(Run run) {
    std::uint32_t seed = 1000;
    for (std::size_t m : {std::size_t(1), std::size_t(17), std::size_t(32)})
        for (std::size_t p = 1; p <= 5; ++p)
            for (std::size_t k : {std::size_t(65), std::size_t(200)}) {
                auto pr = random_problem<TA>(m, p, k, k + 3, seed++);
                run(pr);
                check_acc(pr, spec(pr));
            }
}

// Constant A and B over k = 4096: every element is k * a * b, exactly (hand-computed below).
template <class TA, class Run>
inline void extremes(Run run) {
    struct row {
        int a, b;
        std::int32_t want;
    };
    // u8: 255 * -128 * 4096 = -133693440, 255 * 127 * 4096 = 132648960;
    // s8: -128 * -128 * 4096 = 67108864, -128 * 127 * 4096 = -66584576, 127 * 127 * 4096 = 66064384
    const std::vector<row> rows =
        std::is_signed<TA>::value
            ? std::vector<row>{{-128, -128, 67108864}, {-128, 127, -66584576}, {127, 127, 66064384}}
            : std::vector<row>{{255, -128, -133693440}, {255, 127, 132648960}};
    for (const row& r : rows) {
        auto pr = constant_problem<TA>(32, 2, 4096, 4096 + 7, static_cast<TA>(r.a), static_cast<std::int8_t>(r.b));
        run(pr);
        INFO("a " << r.a << ", b " << r.b);
        check_acc(pr, std::vector<std::int32_t>(pr.m * pr.n(), r.want));
        check_acc(pr, spec(pr));
    }
}

// True sums beyond int32: the result is the sum modulo 2^32 (the formula in uint32).
// u8: 255 * 127 * 70000 = 2266950000 -> 2266950000 - 2^32 = -2028017296.
// s8: -128 * -128 * 131073 = 2147500032 -> -2147467264.
template <class TA, class Run>
inline void wrapping(Run run) {
    const bool s = std::is_signed<TA>::value;
    const std::size_t k = s ? 131073 : 70000;
    const std::int32_t want = s ? -2147467264 : -2028017296;
    auto pr = constant_problem<TA>(s ? 1 : 17, s ? 1 : 2, k, k + 1, static_cast<TA>(s ? -128 : 255),
                                   static_cast<std::int8_t>(s ? -128 : 127));
    run(pr);
    check_acc(pr, std::vector<std::int32_t>(pr.m * pr.n(), want));
    check_acc(pr, formula(pr));
    // and random data past the bound, against the uint32 formula
    auto rp = random_problem<TA>(3, 1, 140000, 140000, 77);
    run(rp);
    check_acc(rp, formula(rp));
}

}  // namespace lowbit_test_amx

using namespace lowbit_test_amx;

TEST_CASE("amx: the tile emulator follows the SDM on a hand-computed dot", "[gemm][amx]") {
    // One A row [255, 1, 2, 3] against one B column [-128, 1, -1, 2]:
    // tdpbusd: 255 * -128 + 1 - 2 + 6 = -32635; tdpbssd (255 is -1): 128 + 1 - 2 + 6 = 133.
    emu_tiles t;
    t.configure(kd::amx_gemm_tile_config());
    alignas(64) unsigned char a[16][64] = {};
    alignas(64) std::int8_t b[16][64] = {};
    a[0][0] = 255;
    a[0][1] = 1;
    a[0][2] = 2;
    a[0][3] = 3;
    const std::int8_t col[4] = {-128, 1, -1, 2};
    std::memcpy(&b[0][4 * 5], col, 4);  // column 5
    alignas(64) std::int32_t c[16][16] = {};
    t.load<4>(a, 64);
    t.load<6>(b, 64);
    t.zero<0>();
    t.dot<false, 0, 4, 6>();
    t.dot<false, 0, 4, 6>();  // accumulates: twice
    t.store<0>(c, 64);
    CHECK(c[0][5] == -65270);
    CHECK(c[0][4] == 0);
    CHECK(c[1][5] == 0);
    t.zero<1>();
    t.dot<true, 1, 4, 6>();
    t.store<1>(c, 64);
    CHECK(c[0][5] == 133);
    t.release();
    CHECK(t.faults.empty());
    // its fault checks fire: a shape mismatch, use after release
    kd::amx_tile_config bad = kd::amx_gemm_tile_config();
    bad.rows[6] = 8;
    t.configure(bad);
    t.dot<false, 0, 4, 6>();
    t.release();
    t.zero<0>();
    CHECK(t.faults.size() == 2);
}

TEMPLATE_TEST_CASE("amx: kernel on emulated tiles equals ref::gemm", "[gemm][amx]", std::uint8_t, std::int8_t) {
    SECTION("m_count x p_count x k x lda sweep") { sweep<TestType>([](problem<TestType>& pr) { run_emulated(pr); }); }
    SECTION("more panels (amx_dot_panels)") {
        sweep_panels<TestType>([](problem<TestType>& pr) { run_emulated(pr); });
    }
    SECTION("extreme values, k = 4096") { extremes<TestType>([](problem<TestType>& pr) { run_emulated(pr); }); }
    SECTION("sums beyond int32 wrap modulo 2^32") {
        wrapping<TestType>([](problem<TestType>& pr) { run_emulated(pr); });
    }
}

TEMPLATE_TEST_CASE("amx: amx_dot_block on this CPU's tiles equals ref::gemm", "[gemm][amx]", std::uint8_t,
                   std::int8_t) {
    if (!kx::amx_available()) {
        WARN("skipped: AMX-INT8 not usable here (CPU without AMX, or "
             "XTILEDATA refused); the kernel body is tested on emulated tiles");
        return;
    }
    SECTION("m_count x p_count x k x lda sweep") { sweep<TestType>([](problem<TestType>& pr) { run_public(pr); }); }
    SECTION("more panels (amx_dot_panels)") {
        sweep_panels<TestType>([](problem<TestType>& pr) { run_public(pr); });
    }
    SECTION("extreme values, k = 4096") { extremes<TestType>([](problem<TestType>& pr) { run_public(pr); }); }
    SECTION("sums beyond int32 wrap modulo 2^32") {
        wrapping<TestType>([](problem<TestType>& pr) { run_public(pr); });
    }
}

TEMPLATE_TEST_CASE("amx: without AMX the entries compute the same values portably", "[gemm][amx]", std::uint8_t,
                   std::int8_t) {
    if (kx::amx_available()) return;  // the entries run the tiles: tested above
    sweep<TestType>([](problem<TestType>& pr) { run_public(pr); });
    sweep_panels<TestType>([](problem<TestType>& pr) { run_public(pr); });
    extremes<TestType>([](problem<TestType>& pr) { run_public(pr); });
}

TEST_CASE("amx: amx_available is stable and implies the CPU's AMX-INT8", "[gemm][amx]") {
    const bool first = kx::amx_available();
    CHECK(kx::amx_available() == first);
    if (first) CHECK(lowbit::kernels::cpu().amx_int8);
#if !(defined(__x86_64__) && defined(__linux__))
    CHECK(!first);  // not compiled in: the stub
#endif
}

TEST_CASE("amx: bad arguments are named, and the kernels then write nothing", "[gemm][amx]") {
    std::vector<std::uint8_t> a(64 * 32, 1);
    auto pr = random_problem<std::uint8_t>(32, 2, 64, 64, 5);
    const std::int8_t* b = pr.panels.get();
    std::int32_t* c = pr.acc.data();
    const std::size_t ldc = pr.ld_acc;
    const std::uint8_t* ap = a.data();
    CHECK(kx::amx_check_block(ap, 64, 64, 32, b, 64, 2, c, ldc).ok());
    CHECK(kx::amx_check_block(ap, 64, 64, 32, b, 64, 7, c, 200, 0).ok());
    CHECK_THROWS_WITH(kx::amx_check_block(ap, 64, 64, 0, b, 64, 2, c, ldc), Catch::Contains("'m_count' = 0"));
    CHECK_THROWS_WITH(kx::amx_check_block(ap, 64, 64, 33, b, 64, 2, c, ldc), Catch::Contains("'m_count' = 33"));
    CHECK_THROWS_WITH(kx::amx_check_block(ap, 64, 64, 32, b, 64, 0, c, ldc), Catch::Contains("'p_count' = 0"));
    CHECK_THROWS_WITH(kx::amx_check_block(ap, 64, 64, 32, b, 64, 3, c, 100), Catch::Contains("'p_count' = 3"));
    CHECK_THROWS_WITH(kx::amx_check_block(ap, 64, 64, 32, b, 64, 2, nullptr, ldc), Catch::Contains("'acc'"));
    CHECK_THROWS_WITH(kx::amx_check_block(ap, 64, 64, 32, b, 64, 2, c, 31), Catch::Contains("'ld_acc' = 31"));
    CHECK_THROWS_WITH(kx::amx_check_block<std::uint8_t>(nullptr, 64, 64, 32, b, 64, 2, c, ldc), Catch::Contains("'a'"));
    CHECK_THROWS_WITH(kx::amx_check_block(ap, 64, 64, 32, nullptr, 64, 2, c, ldc), Catch::Contains("'panel0'"));
    CHECK_THROWS_WITH(kx::amx_check_block(ap, 63, 64, 32, b, 64, 2, c, ldc), Catch::Contains("'lda' = 63"));
    CHECK_THROWS_WITH(kx::amx_check_block(ap, 64, 64, 32, b, 96, 2, c, ldc), Catch::Contains("'kp' = 96"));
    CHECK_THROWS_WITH(kx::amx_check_block(ap, 65, 65, 32, b, 64, 2, c, ldc), Catch::Contains("'kp' = 64"));
    CHECK(kx::amx_check_block<std::uint8_t>(nullptr, 0, 0, 1, nullptr, 0, 1, c, 16).ok());  // k = 0: A, B unused

    // The kernels given such arguments: nothing written.
    const auto untouched = [&] {
        for (std::int32_t v : pr.acc)
            if (v != problem<std::uint8_t>::sentinel) return false;
        return true;
    };
    kx::amx_dot_block(ap, 64, 64, 33, b, 64, 2, c, ldc);
    kx::amx_dot_block(ap, 64, 64, 32, b, 64, 3, c, ldc);
    kx::amx_dot_block(ap, 64, 64, 32, b, 64, 2, c, 31);
    kx::amx_dot_block(ap, 63, 64, 32, b, 64, 2, c, ldc);
    kx::amx_dot_block(ap, 64, 64, 32, b, 32, 2, c, ldc);
    kx::amx_dot_panels(ap, 64, 64, 0, b, 64, 2, c, ldc);
    kx::amx_dot_panels(ap, 64, 64, 32, b, 64, 3, c, ldc);
    CHECK(untouched());
}
