// The int8 GEMM kernels (kernels/gemm.hpp) against the spec, lowbit::ref::gemm (core/gemm.hpp,
// itself tested against numpy golden data in test_ref_gemm.cpp), exactly: integers equal,
// floats bit for bit. Every micro-kernel this machine runs is picked explicitly (gemm_isa); one
// it lacks is skipped with a WARN naming it. The AVX-VNNI code also runs in its EVEX encoding
// (detail::gemm_isa_vnni256_evex) where AVX-512 VNNI exists, so its logic is tested on
// machines without AVX-VNNI. On AArch64 the NEON (ARMv8.0) and SDOT (ARMv8.2 dotprod) kernels
// run where the CPU has them (qemu-aarch64: QEMU_CPU=cortex-a53 has no dotprod, max has it).
//   - the packed layout, by hand: header, panel bytes B[4q + j][16p + c], zero padding, column
//     sums, zero points, both B layouts, unaligned buffers, view_packed_weights;
//   - each raw dot block against the portable one, with canaries around the block;
//   - int32 output: u8 / s8 A, both B layouts, za, zb none / per tensor / per channel, shapes at
//     every tile edge of every kernel (M, N, K in 1, 2, 3, tile - 1, tile, tile + 1, odd large),
//     K not a multiple of 4 / 64, ld > minimum, several row / column blocks and K chunks;
//   - all outputs (requantize fixed point both roundings, float multipliers, dequantize), per
//     tensor and per channel, bias, clamp, s8 / u8 outputs, with the epilogue compiled for
//     scalar, SSE2, AVX2+FMA and AVX-512BW;
//   - row / column ranges (only the range written) and gemm_parallel with 1, 2, 3 threads;
//   - K = gemm_max_k with extreme values (the s8 +128 path and the compensation overflow int32
//     on the way and must still land exactly), K = gemm_max_k + 1 refused;
//   - every packing and gemm error, naming the argument, nothing written.
// C buffers hold exactly (M - 1) * ldc + N elements, pre-filled with a sentinel that the gaps
// between rows (ldc > N) must keep; ASan sees any write past them.
#include "lowbit_catch.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <lowbit/kernels.hpp>
#include <lowbit/kernels/gemm.hpp>
#include <lowbit/kernels/gemm_parallel.hpp>

namespace {

namespace kn = lowbit::kernels;
using kn::gemm_isa;
using lowbit::gemm_a;
using lowbit::gemm_b;
using lowbit::gemm_dims;
using lowbit::span;
using lowbit::weight_layout;

constexpr std::int32_t i32_min = std::numeric_limits<std::int32_t>::min();
constexpr std::int32_t i32_max = std::numeric_limits<std::int32_t>::max();

struct isa_case {
    gemm_isa isa;
    const char* name;
};

// Every micro-kernel, the EVEX test hook included.
const std::vector<isa_case>& isa_cases() {
    static const std::vector<isa_case> v = {{gemm_isa::scalar, "scalar"},
                                            {gemm_isa::avx2, "avx2"},
                                            {gemm_isa::avx512bw, "avx512bw"},
                                            {gemm_isa::avx512_vnni, "avx512_vnni"},
                                            {gemm_isa::avx_vnni, "avx_vnni"},
                                            {kn::detail::gemm_isa_vnni256_evex, "avx_vnni code, evex encoding"},
                                            {gemm_isa::amx, "amx"},
                                            {gemm_isa::neon, "neon"},
                                            {gemm_isa::neon_dotprod, "neon_dotprod"},
                                            {gemm_isa::best, "best"}};
    return v;
}

// The ISAs this machine runs; WARNs once per test case about the others.
std::vector<isa_case> runnable_isas() {
    std::vector<isa_case> r;
    for (const isa_case& c : isa_cases()) {
        if (kn::gemm_isa_available(c.isa))
            r.push_back(c);
        else
            WARN("skipped: this CPU / build cannot run the " << c.name << " GEMM kernel");
    }
    return r;
}

template <class T>
std::vector<T> random_vector(std::size_t n, std::mt19937& rng, int lo, int hi) {
    std::uniform_int_distribution<int> d(lo, hi);
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(d(rng));
    return v;
}

// A packing buffer whose data sits `offset` bytes past a 64-byte boundary.
struct pack_buffer {
    std::vector<std::uint8_t> storage;
    span<std::uint8_t> bytes;
    pack_buffer(const pack_buffer&) = delete;
    pack_buffer& operator=(const pack_buffer&) = delete;
    pack_buffer(pack_buffer&&) = default;  // the vector's heap block (and so the span) stays
    pack_buffer& operator=(pack_buffer&&) = default;
    pack_buffer(std::size_t size, std::size_t offset) : storage(size + 128) {
        const auto addr = reinterpret_cast<std::uintptr_t>(storage.data());
        const std::size_t to64 = static_cast<std::size_t>((64 - addr % 64) % 64);
        bytes = span<std::uint8_t>(storage.data() + to64 + offset, size);
    }
};

enum class zp_kind { none, tensor, channel };

// One GEMM instance: A (M x K, lda), B (N x K as given by layout / ldb), zero points.
template <class TA>
struct problem {
    std::size_t m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
    weight_layout layout = weight_layout::n_by_k;
    std::int32_t za = 0;
    std::vector<TA> a;
    std::vector<std::int8_t> b;
    std::vector<std::int32_t> zb;
    pack_buffer buf{0, 0};
    kn::packed_weights w;

    gemm_dims dims() const { return {m, n, k}; }
    gemm_a<TA> ga() const { return {a, lda, za}; }
    gemm_b gb() const { return {b, ldb, layout, zb}; }
};

template <class TA>
problem<TA> make_problem(std::size_t m, std::size_t n, std::size_t k, std::mt19937& rng, zp_kind zk,
                         weight_layout layout = weight_layout::n_by_k, std::size_t pad = 0) {
    problem<TA> p;
    p.m = m, p.n = n, p.k = k, p.layout = layout;
    p.lda = k + pad;
    p.ldc = n + pad;
    p.ldb = (layout == weight_layout::n_by_k ? k : n) + pad;
    constexpr int lo = std::is_signed<TA>::value ? -128 : 0, hi = std::is_signed<TA>::value ? 127 : 255;
    p.a = random_vector<TA>(m == 0 ? 0 : (m - 1) * p.lda + k, rng, lo, hi);
    const std::size_t rows = layout == weight_layout::n_by_k ? n : k, cols = layout == weight_layout::n_by_k ? k : n;
    p.b = random_vector<std::int8_t>(rows == 0 ? 0 : (rows - 1) * p.ldb + cols, rng, -128, 127);
    p.za = std::uniform_int_distribution<int>(lo, hi)(rng);
    if (zk == zp_kind::tensor) p.zb = random_vector<std::int32_t>(1, rng, -128, 127);
    if (zk == zp_kind::channel) p.zb = random_vector<std::int32_t>(n, rng, -128, 127);
    p.buf = pack_buffer(kn::packed_size(n, k), std::uniform_int_distribution<std::size_t>(0, 63)(rng));
    p.w = *kn::pack_weights(p.gb(), n, k, p.buf.bytes);
    return p;
}

template <class T>
std::vector<T> c_buffer(std::size_t m, std::size_t n, std::size_t ldc, T sentinel) {
    return std::vector<T>(m == 0 ? 0 : (m - 1) * ldc + n, sentinel);
}

// Index of the first element whose bits differ, or size() if none.
template <class T>
std::size_t first_difference(const std::vector<T>& x, const std::vector<T>& y) {
    if (x.size() != y.size()) return 0;
    for (std::size_t i = 0; i < x.size(); ++i)
        if (std::memcmp(&x[i], &y[i], sizeof(T)) != 0) return i;
    return x.size();
}

template <class T>
void require_same(const std::vector<T>& got, const std::vector<T>& want) {
    const std::size_t i = first_difference(got, want);
    INFO("first difference at element " << i << " of " << want.size());
    if (i < want.size() && i < got.size()) {
        INFO("got " << +got[i] << ", ref " << +want[i]);
        REQUIRE(i == want.size());
    }
    REQUIRE(got.size() == want.size());
    REQUIRE(i == want.size());
}

template <class TA>
std::string describe(const problem<TA>& p, const char* isa) {
    std::string s = std::string(isa) + (std::is_signed<TA>::value ? " s8" : " u8") + " M=" + std::to_string(p.m) +
                    " N=" + std::to_string(p.n) + " K=" + std::to_string(p.k) + " lda=" + std::to_string(p.lda) +
                    " ldc=" + std::to_string(p.ldc) + " za=" + std::to_string(p.za) + " zb=" + std::to_string(p.zb.size()) +
                    (p.layout == weight_layout::k_by_n ? " k_by_n" : " n_by_k");
    return s;
}

// int32 output of every runnable ISA == ref::gemm.
template <class TA>
void check_s32(const problem<TA>& p, const std::vector<isa_case>& isas) {
    std::vector<std::int32_t> want = c_buffer<std::int32_t>(p.m, p.n, p.ldc, 0x5A5A5A5A);
    REQUIRE(lowbit::ref::gemm(p.dims(), p.ga(), p.gb(), span<std::int32_t>(want), p.ldc).ok());
    for (const isa_case& ic : isas) {
        INFO(describe(p, ic.name));
        std::vector<std::int32_t> got = c_buffer<std::int32_t>(p.m, p.n, p.ldc, 0x5A5A5A5A);
        kn::gemm_options opt;
        opt.isa = ic.isa;
        REQUIRE(kn::gemm(p.dims(), p.ga(), p.w, span<std::int32_t>(got), p.ldc, opt).ok());
        require_same(got, want);
    }
}

// M, N, K values at the tile edges of every kernel: VNNI 6 rows x 64 columns, AVX-512BW 6 x 32,
// AVX2 4 x 8, AMX 32 x 32, NEON SDOT 4 x 16 (1 x 64, 2 x 32 for leftover rows), NEON 2 x 16,
// K in chunks of 16 on ARM, copy blocks of 24 / 48 rows, the driver's 48 / 64 x 128 blocks;
// K chunks of 256, kp multiples of 64, k-quads.
const std::vector<std::size_t> m_edges = {1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 23, 24, 25, 31, 32, 33, 47, 48, 49, 63, 64, 65, 97};
const std::vector<std::size_t> n_edges = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 127, 128, 129, 131, 257};
const std::vector<std::size_t> k_edges = {0, 1, 2, 3, 4, 5, 7, 8, 63, 64, 65, 67, 127, 128, 129, 255, 256, 257, 259, 513};

}  // namespace

TEST_CASE("kernels::gemm ISA names and availability", "[gemm][kernels]") {
    CHECK(std::string(kn::to_string(gemm_isa::avx512_vnni)) == "avx512_vnni");
    CHECK(std::string(kn::to_string(gemm_isa::avx_vnni)) == "avx_vnni");
    CHECK(kn::gemm_isa_available(gemm_isa::scalar));
    CHECK(kn::gemm_isa_available(gemm_isa::best));
    const gemm_isa best = kn::gemm_best_isa();
    CHECK(best != gemm_isa::best);
    CHECK(kn::gemm_isa_available(best));
    const kn::cpu_features& f = kn::cpu();
    CHECK(kn::gemm_isa_available(gemm_isa::avx2) == f.avx2);
    CHECK(kn::gemm_isa_available(gemm_isa::avx512_vnni) == (f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni));
    CHECK(kn::gemm_isa_available(gemm_isa::avx_vnni) == (f.avx2 && f.avx_vnni));
    if (!kn::gemm_isa_available(gemm_isa::amx)) CHECK(best != gemm_isa::amx);
    if (f.avx512vnni && f.avx512bw && f.avx512vl && !kn::gemm_isa_available(gemm_isa::amx))
        CHECK(best == gemm_isa::avx512_vnni);
    CHECK_FALSE(kn::gemm_isa_available(static_cast<gemm_isa>(77)));
    CHECK(std::string(kn::to_string(gemm_isa::neon)) == "neon");
    CHECK(std::string(kn::to_string(gemm_isa::neon_dotprod)) == "neon_dotprod");
#if defined(__aarch64__)
    CHECK(f.neon);
    CHECK(kn::gemm_isa_available(gemm_isa::neon));
    CHECK(kn::gemm_isa_available(gemm_isa::neon_dotprod) == f.dotprod);
    CHECK(best == (f.dotprod ? gemm_isa::neon_dotprod : gemm_isa::neon));
#else
    CHECK_FALSE(f.neon);
    CHECK_FALSE(f.dotprod);
    CHECK_FALSE(kn::gemm_isa_available(gemm_isa::neon));
    CHECK_FALSE(kn::gemm_isa_available(gemm_isa::neon_dotprod));
#endif
}

// Prints the micro-kernel `best` stands for (qemu-aarch64: neon_dotprod under -cpu max, neon
// under -cpu cortex-a53), so test logs show which path ran.
TEST_CASE("kernels::gemm best ISA on this machine", "[gemm][kernels]") {
    const kn::cpu_features& f = kn::cpu();
    WARN("gemm_best_isa() = " << kn::to_string(kn::gemm_best_isa()) << ", int4_best_isa() = "
                              << kn::to_string(kn::int4_best_isa()) << " (neon " << f.neon << ", dotprod "
                              << f.dotprod << ")");
    CHECK(kn::gemm_isa_available(kn::gemm_best_isa()));
}

TEST_CASE("kernels::gemm worked numbers, by hand", "[gemm][kernels]") {
    // kernels/gemm.hpp's comment: K = 2, A row = [3, 250], za = 128, B column = [-5, 7], zb = 2:
    // dot 1735, colsum 2, rowsum 253: 1735 - 256 - 506 + 512 = 1485 = (-125)(-7) + 122 * 5.
    // Second column [1, -1], zb = 2: (-125)(-1) + 122 * (-3) = 125 - 366 = -241.
    const std::uint8_t a[2] = {3, 250};
    const std::int8_t b[4] = {-5, 7, 1, -1};  // n_by_k
    const std::int32_t zb[1] = {2};
    pack_buffer buf(kn::packed_size(2, 2), 3);
    const kn::packed_weights w = *kn::pack_weights(gemm_b{b, 2, weight_layout::n_by_k, zb}, 2, 2, buf.bytes);
    CHECK(w.column_sums()[0] == 2);
    CHECK(w.column_sums()[1] == 0);
    // x86/gemm_vnni.hpp's comment: s8 A = [-3, 5], B = [7, -2], za = zb = 0: -31.
    const std::int8_t as[2] = {-3, 5};
    const std::int8_t b2[2] = {7, -2};
    pack_buffer buf2(kn::packed_size(1, 2), 0);
    const kn::packed_weights w2 = *kn::pack_weights(gemm_b{b2, 2, weight_layout::n_by_k, {}}, 1, 2, buf2.bytes);
    for (const isa_case& ic : runnable_isas()) {
        INFO(ic.name);
        std::int32_t c[2] = {0, 0};
        REQUIRE(kn::gemm(gemm_dims{1, 2, 2}, gemm_a<std::uint8_t>{a, 2, 128}, w, span<std::int32_t>(c), 2,
                         kn::gemm_options{ic.isa, {}})
                    .ok());
        CHECK(c[0] == 1485);
        CHECK(c[1] == -241);
        std::int32_t c2 = 0;
        REQUIRE(kn::gemm(gemm_dims{1, 1, 2}, gemm_a<std::int8_t>{as, 2, 0}, w2, span<std::int32_t>(&c2, 1), 1,
                         kn::gemm_options{ic.isa, {}})
                    .ok());
        CHECK(c2 == -31);
    }
}

TEST_CASE("kernels::pack_weights layout, by hand", "[gemm][kernels]") {
    std::mt19937 rng(11);
    const std::size_t n = 21, k = 70;  // 2 panels (np = 32), kp = 128
    const std::vector<std::int8_t> bnk = random_vector<std::int8_t>(n * k, rng, -128, 127);
    std::vector<std::int8_t> bkn(k * (n + 3), 99);  // k_by_n with ldb = n + 3
    for (std::size_t kk = 0; kk < k; ++kk)
        for (std::size_t c = 0; c < n; ++c) bkn[kk * (n + 3) + c] = bnk[c * k + kk];
    const std::vector<std::int32_t> zb = random_vector<std::int32_t>(n, rng, -128, 127);

    REQUIRE(kn::packed_size(n, k) == 64 + 32 * 128 + 8 * 32 + 63);
    REQUIRE(kn::packed_size(0, 0) == 64 + 63);
    for (std::size_t offset : std::vector<std::size_t>{0, 1, 37, 63}) {
        INFO("buffer offset " << offset);
        pack_buffer p1(kn::packed_size(n, k), offset), p2(kn::packed_size(n, k), offset);
        const kn::packed_weights w1 = *kn::pack_weights(gemm_b{bnk, k, weight_layout::n_by_k, zb}, n, k, p1.bytes);
        const kn::packed_weights w2 = *kn::pack_weights(gemm_b{bkn, n + 3, weight_layout::k_by_n, zb}, n, k, p2.bytes);
        REQUIRE(w1.valid());
        CHECK(w1.n() == n);
        CHECK(w1.k() == k);
        CHECK(w1.kp() == 128);
        CHECK(w1.np() == 32);
        CHECK(reinterpret_cast<std::uintptr_t>(w1.panels()) % 64 == 0);
        CHECK(reinterpret_cast<std::uintptr_t>(w1.panel(1)) % 64 == 0);
        // both layouts give the same bytes
        REQUIRE(w1.bytes().size() == w2.bytes().size());
        CHECK(std::memcmp(w1.bytes().data(), w2.bytes().data(), w1.bytes().size()) == 0);
        // header
        std::uint32_t magic = 0, version = 0;
        std::memcpy(&magic, w1.bytes().data(), 4);
        std::memcpy(&version, w1.bytes().data() + 4, 4);
        CHECK(magic == 0x5747424Cu);
        CHECK(std::memcmp(w1.bytes().data(), "LBGW", 4) == 0);  // little-endian x86
        CHECK(version == 1);
        // panels: byte 64 q + 4 c + j of panel p = B[4q + j][16p + c], zero padding
        for (std::size_t p = 0; p < 2; ++p)
            for (std::size_t q = 0; q < 32; ++q)
                for (std::size_t c = 0; c < 16; ++c)
                    for (std::size_t j = 0; j < 4; ++j) {
                        const std::size_t kk = 4 * q + j, col = 16 * p + c;
                        const std::int8_t want = kk < k && col < n ? bnk[col * k + kk] : 0;
                        const std::int8_t got = w1.panel(p)[64 * q + 4 * c + j];
                        if (got != want) {
                            INFO("panel " << p << " quad " << q << " column " << c << " byte " << j);
                            REQUIRE(int(got) == int(want));
                        }
                    }
        // column sums, zero points
        for (std::size_t col = 0; col < 32; ++col) {
            std::int32_t s = 0;
            for (std::size_t kk = 0; col < n && kk < k; ++kk) s += bnk[col * k + kk];
            CHECK(w1.column_sums()[col] == s);
            CHECK(w1.column_zero_points()[col] == (col < n ? zb[col] : 0));
        }
        CHECK(w1.zero_points().size() == n);
        CHECK(w1.has_zero_points());
        // re-attach
        const kn::packed_weights v = *kn::view_packed_weights(span<const std::uint8_t>(p1.bytes.data(), p1.bytes.size()));
        CHECK(v.n() == n);
        CHECK(v.k() == k);
        CHECK(v.panels() == w1.panels());
        CHECK(v.zero_points().size() == n);
        CHECK(v.has_zero_points());
    }
    // zero-point kinds
    pack_buffer p3(kn::packed_size(n, k), 5);
    const std::int32_t zero = 0, seven = -7;
    kn::packed_weights w = *kn::pack_weights(gemm_b{bnk, k, weight_layout::n_by_k, {&zero, 1}}, n, k, p3.bytes);
    CHECK(w.zero_points().size() == 1);
    CHECK_FALSE(w.has_zero_points());
    w = *kn::pack_weights(gemm_b{bnk, k, weight_layout::n_by_k, {&seven, 1}}, n, k, p3.bytes);
    CHECK(w.zero_points().size() == 1);
    CHECK(w.zero_points()[0] == -7);
    CHECK(w.column_zero_points()[20] == -7);
    CHECK(w.column_zero_points()[21] == 0);
    CHECK(w.has_zero_points());
    w = *kn::pack_weights(gemm_b{bnk, k, weight_layout::n_by_k, {}}, n, k, p3.bytes);
    CHECK(w.zero_points().empty());
    CHECK((*kn::view_packed_weights(span<const std::uint8_t>(p3.bytes.data(), p3.bytes.size()))).zero_points().empty());
    // empty weights
    pack_buffer p4(kn::packed_size(0, 5), 0);
    w = *kn::pack_weights(gemm_b{}, 0, 5, p4.bytes);
    CHECK(w.valid());
    CHECK(w.np() == 0);
    const std::int32_t zb3[3] = {4, -5, 6};
    pack_buffer p5(kn::packed_size(3, 0), 1);
    w = *kn::pack_weights(gemm_b{{}, 0, weight_layout::n_by_k, zb3}, 3, 0, p5.bytes);  // K = 0, no data
    CHECK(w.kp() == 0);
    CHECK(w.np() == 16);
    CHECK(w.column_sums()[2] == 0);
    CHECK(w.column_zero_points()[1] == -5);
    CHECK(w.column_zero_points()[3] == 0);
}

TEST_CASE("kernels::gemm raw dot blocks against the portable block", "[gemm][kernels]") {
    using Tag = kn::default_arch;
    std::mt19937 rng(12);
    const std::vector<isa_case> isas = runnable_isas();
    // (ARM: K in chunks of 16 with a zero-padded tail, SDOT tiles of 4 rows with 3 x 1, 2 x 2,
    // 1 x 4 panel tiles for the leftover rows, NEON tiles of 2 rows and 1 x 2 leftovers)
    for (std::size_t k : std::vector<std::size_t>{0, 1, 3, 4, 5, 15, 16, 17, 33, 64, 67, 256, 257, 300, 600}) {
        for (std::size_t m : std::vector<std::size_t>{1, 2, 3, 4, 5, 6, 7, 13, 31, 48, 50}) {
            for (std::size_t pc : std::vector<std::size_t>{1, 2, 3, 4, 5, 9}) {
                const std::size_t n = 16 * pc, kp = (k + 63) / 64 * 64, lda = k + 5, ld_acc = n + 3;
                const std::vector<std::uint8_t> a8 = random_vector<std::uint8_t>(m * lda, rng, 0, 255);
                std::vector<std::int8_t> s8(a8.size());
                std::memcpy(s8.data(), a8.data(), a8.size());
                const std::vector<std::int8_t> b = random_vector<std::int8_t>(n * k, rng, -128, 127);
                pack_buffer buf(kn::packed_size(n, k), 0);
                const kn::packed_weights w = *kn::pack_weights(gemm_b{b, k, weight_layout::n_by_k, {}}, n, k, buf.bytes);
                std::vector<std::int32_t> want_u(m * ld_acc, -7), want_s(m * ld_acc, -7);
                kn::detail::scalar_dot_block<Tag>(a8.data(), lda, k, m, w.panels(), kp, pc, want_u.data(), ld_acc);
                kn::detail::scalar_dot_block<Tag>(s8.data(), lda, k, m, w.panels(), kp, pc, want_s.data(), ld_acc);
                // the portable block itself, against a direct sum
                for (std::size_t i = 0; i < m; ++i)
                    for (std::size_t j = 0; j < n; j += 7) {
                        std::int64_t su = 0, ss = 0;
                        for (std::size_t kk = 0; kk < k; ++kk) {
                            su += std::int64_t(a8[i * lda + kk]) * b[j * k + kk];
                            ss += std::int64_t(s8[i * lda + kk]) * b[j * k + kk];
                        }
                        REQUIRE(want_u[i * ld_acc + j] == su);
                        REQUIRE(want_s[i * ld_acc + j] == ss);
                    }
                for (const isa_case& ic : isas) {
                    if (ic.isa == gemm_isa::best) continue;
                    INFO(ic.name << " m=" << m << " p_count=" << pc << " k=" << k);
                    std::vector<std::int32_t> got(m * ld_acc, -7);
                    kn::detail::gemm_dot_block<Tag>(ic.isa, a8.data(), lda, k, m, w.panels(), kp, pc, got.data(), ld_acc,
                                                    w.column_sums().data());
                    require_same(got, want_u);
                    std::fill(got.begin(), got.end(), -7);
                    kn::detail::gemm_dot_block<Tag>(ic.isa, s8.data(), lda, k, m, w.panels(), kp, pc, got.data(), ld_acc,
                                                    w.column_sums().data());
                    require_same(got, want_s);
                }
            }
        }
    }
}

TEST_CASE("kernels::gemm int32 output at every tile edge", "[gemm][kernels]") {
    std::mt19937 rng(13);
    const std::vector<isa_case> isas = runnable_isas();
    const zp_kind kinds[] = {zp_kind::none, zp_kind::tensor, zp_kind::channel};
    std::size_t round = 0;
    const auto both = [&](std::size_t m, std::size_t n, std::size_t k) {
        const zp_kind zk = kinds[round % 3];
        const weight_layout layout = round % 2 ? weight_layout::k_by_n : weight_layout::n_by_k;
        const std::size_t pad = round % 4 == 3 ? 3 : 0;
        ++round;
        check_s32(make_problem<std::uint8_t>(m, n, k, rng, zk, layout, pad), isas);
        check_s32(make_problem<std::int8_t>(m, n, k, rng, zk, layout, pad), isas);
    };
    SECTION("M sweep") {
        for (std::size_t m : m_edges) both(m, 33, 67);
        for (std::size_t m : m_edges) both(m, 70, 4);
    }
    SECTION("N sweep") {
        for (std::size_t n : n_edges) both(7, n, 67);
        for (std::size_t n : n_edges) both(1, n, 130);
    }
    SECTION("K sweep") {
        for (std::size_t k : k_edges) both(7, 33, k);
        for (std::size_t k : k_edges) both(13, 65, k);
        for (std::size_t k : k_edges) both(1, 17, k);
    }
    SECTION("several blocks and K chunks") {
        both(97, 257, 300);   // 3 row blocks, 3 column blocks, 2 K chunks, every tail
        both(50, 131, 513);
        both(3, 40, 2100);    // s8 GEMV-like rows: one K chunk of up to 2048, then another
        both(1, 16, 6200);    // widening kernels: one row takes K in chunks of 6144
        both(1, 16, 12300);   // VNNI s8, one row: chunks of 12288
        both(5, 20, 1300);    // widening kernels, 5 rows: chunks of 1216
    }
    SECTION("random shapes") {
        std::uniform_int_distribution<std::size_t> dm(1, 70), dn(1, 140), dk(0, 300);
        for (int i = 0; i < 40; ++i) both(dm(rng), dn(rng), dk(rng));
    }
    SECTION("empty") {
        for (const isa_case& ic : isas) {
            problem<std::uint8_t> p = make_problem<std::uint8_t>(0, 5, 7, rng, zp_kind::channel);
            kn::gemm_options opt;
            opt.isa = ic.isa;
            CHECK(kn::gemm(p.dims(), p.ga(), p.w, span<std::int32_t>(), 5, opt).ok());
            p = make_problem<std::uint8_t>(3, 0, 7, rng, zp_kind::none);
            CHECK(kn::gemm(p.dims(), p.ga(), p.w, span<std::int32_t>(), 0, opt).ok());
        }
    }
}

namespace {

// Random requantize / dequantize parameters for N channels (1 or N entries).
struct out_params {
    std::vector<lowbit::quantized_multiplier> qm;
    std::vector<float> fm;
    std::vector<std::int32_t> bias;
    std::vector<float> scales, fbias;
};

out_params make_out_params(std::size_t n, bool per_channel, int bias_kind, std::mt19937& rng) {
    out_params o;
    const std::size_t c = per_channel ? n : 1;
    std::uniform_real_distribution<double> lg(-17.0, -3.0);
    for (std::size_t i = 0; i < c; ++i) {
        double real = std::exp2(lg(rng));
        if (i % 11 == 5) real = 1.5;  // positive shift
        if (i % 13 == 7) real = 0.0;  // multiplier 0
        o.qm.push_back(*lowbit::quantize_multiplier(real));
        o.fm.push_back(i % 17 == 3 ? 3e38f : static_cast<float>(real));
        o.scales.push_back(static_cast<float>(std::exp2(lg(rng))) * (i % 2 ? -1.0f : 1.0f));
    }
    const std::size_t bc = bias_kind == 0 ? 0 : bias_kind == 1 ? 1 : n;
    std::uniform_int_distribution<std::int32_t> bd(-200000, 200000);
    std::uniform_real_distribution<float> fd(-50.0f, 50.0f);
    for (std::size_t i = 0; i < bc; ++i) {
        o.bias.push_back(i % 19 == 4 ? i32_max : i % 19 == 9 ? i32_min : bd(rng));
        o.fbias.push_back(fd(rng));
    }
    return o;
}

// Every output of ref::gemm vs kernels::gemm<Arch> for one problem, on every ISA given.
template <class Arch, class TA, class Scheme>
void check_outputs(const problem<TA>& p, const std::vector<isa_case>& isas, const Scheme& s, const out_params& o,
                   std::int32_t zero_point, std::int32_t cmin, std::int32_t cmax) {
    using storage = typename Scheme::storage_type;
    INFO(describe(p, "") << " arch=" << Arch::name() << " multipliers=" << o.qm.size() << " bias=" << o.bias.size()
                         << " zp=" << zero_point << " clamp=[" << cmin << ", " << cmax << "]");
    for (auto rounding : {lowbit::requant_rounding::double_rounding, lowbit::requant_rounding::single_rounding}) {
        lowbit::requantize_params rp;
        rp.multipliers = o.qm;
        rp.bias = o.bias;
        rp.zero_point = zero_point;
        rp.clamp_min = cmin;
        rp.clamp_max = cmax;
        rp.rounding = rounding;
        INFO("fixed point, " << lowbit::to_string(rounding));
        std::vector<storage> want = c_buffer<storage>(p.m, p.n, p.ldc, storage(0x55));
        REQUIRE(lowbit::ref::gemm(p.dims(), p.ga(), p.gb(), s, rp, span<storage>(want), p.ldc).ok());
        for (const isa_case& ic : isas) {
            INFO(ic.name);
            std::vector<storage> got = c_buffer<storage>(p.m, p.n, p.ldc, storage(0x55));
            REQUIRE(kn::gemm<Arch>(p.dims(), p.ga(), p.w, s, rp, span<storage>(got), p.ldc, kn::gemm_options{ic.isa, {}}).ok());
            require_same(got, want);
        }
    }
    {
        lowbit::requantize_float_params fp;
        fp.multipliers = o.fm;
        fp.bias = o.bias;
        fp.zero_point = zero_point;
        fp.clamp_min = cmin;
        fp.clamp_max = cmax;
        INFO("float multipliers");
        std::vector<storage> want = c_buffer<storage>(p.m, p.n, p.ldc, storage(0x55));
        REQUIRE(lowbit::ref::gemm(p.dims(), p.ga(), p.gb(), s, fp, span<storage>(want), p.ldc).ok());
        for (const isa_case& ic : isas) {
            INFO(ic.name);
            std::vector<storage> got = c_buffer<storage>(p.m, p.n, p.ldc, storage(0x55));
            REQUIRE(kn::gemm<Arch>(p.dims(), p.ga(), p.w, s, fp, span<storage>(got), p.ldc, kn::gemm_options{ic.isa, {}}).ok());
            require_same(got, want);
        }
    }
    for (int with_bias = 0; with_bias < 2; ++with_bias) {
        lowbit::gemm_dequantize_params dp;
        dp.scales = o.scales;
        if (with_bias) dp.bias = o.fbias;
        INFO("dequantize, bias " << dp.bias.size());
        std::vector<float> want = c_buffer<float>(p.m, p.n, p.ldc, 1234.5f);
        REQUIRE(lowbit::ref::gemm(p.dims(), p.ga(), p.gb(), dp, span<float>(want), p.ldc).ok());
        for (const isa_case& ic : isas) {
            INFO(ic.name);
            std::vector<float> got = c_buffer<float>(p.m, p.n, p.ldc, 1234.5f);
            REQUIRE(kn::gemm<Arch>(p.dims(), p.ga(), p.w, dp, span<float>(got), p.ldc, kn::gemm_options{ic.isa, {}}).ok());
            require_same(got, want);
        }
    }
}

template <class Arch>
void outputs_for_arch(std::uint32_t seed) {
    std::mt19937 rng(seed);
    const std::vector<isa_case> isas = runnable_isas();
    const auto s8 = lowbit::scheme<lowbit::s8>{};
    const auto u8 = lowbit::scheme<lowbit::u8>{};
    const auto s8_narrow = lowbit::scheme<lowbit::s8>{}.with_range(-127, 127);
    struct shape {
        std::size_t m, n, k;
    };
    const shape shapes[] = {{1, 1, 1}, {3, 17, 67}, {7, 65, 5}, {2, 129, 64}, {50, 131, 70}, {6, 200, 33}, {1, 300, 257}};
    int round = 0;
    for (const shape& sh : shapes) {
        for (int rep = 0; rep < 2; ++rep) {
            ++round;
            const zp_kind zk = round % 3 == 0 ? zp_kind::none : round % 3 == 1 ? zp_kind::tensor : zp_kind::channel;
            const std::size_t pad = round % 2 ? 2 : 0;
            const out_params o = make_out_params(sh.n, round % 2 == 0, round % 3, rng);
            const problem<std::uint8_t> pu = make_problem<std::uint8_t>(sh.m, sh.n, sh.k, rng, zk, weight_layout::n_by_k, pad);
            const problem<std::int8_t> ps = make_problem<std::int8_t>(sh.m, sh.n, sh.k, rng, zk, weight_layout::k_by_n, pad);
            check_outputs<Arch>(pu, isas, s8, o, -3, i32_min, i32_max);
            check_outputs<Arch>(ps, isas, u8, o, 128, 140, 250);       // clamp inside the range
            check_outputs<Arch>(ps, isas, s8_narrow, o, 0, 0, i32_max);  // ReLU, narrow range
            check_outputs<Arch>(pu, isas, u8, o, 7, -1000, 1000);     // clamp beyond the range
        }
    }
}

}  // namespace

TEST_CASE("kernels::gemm every output against ref::gemm, each epilogue architecture", "[gemm][kernels]") {
    SECTION("default arch") { outputs_for_arch<kn::default_arch>(21); }
    SECTION("scalar") { outputs_for_arch<kn::scalar_arch>(22); }
#if LOWBIT_HAS_XSIMD
#if defined(__SSE2__)
    SECTION("sse2") { outputs_for_arch<xsimd::sse2>(23); }
#endif
#if defined(__AVX2__) && defined(__FMA__)
    SECTION("avx2 + fma") { outputs_for_arch<xsimd::fma3<xsimd::avx2>>(24); }
#endif
#if defined(__AVX512BW__)
    SECTION("avx512bw") { outputs_for_arch<xsimd::avx512bw>(25); }
#endif
#endif
}

TEST_CASE("kernels::gemm row and column ranges", "[gemm][kernels]") {
    std::mt19937 rng(31);
    const std::vector<isa_case> isas = runnable_isas();
    const problem<std::int8_t> p = make_problem<std::int8_t>(61, 150, 70, rng, zp_kind::channel, weight_layout::n_by_k, 1);
    std::vector<std::int32_t> full = c_buffer<std::int32_t>(p.m, p.n, p.ldc, 0);
    REQUIRE(lowbit::ref::gemm(p.dims(), p.ga(), p.gb(), span<std::int32_t>(full), p.ldc).ok());
    const auto s8 = lowbit::scheme<lowbit::s8>{};
    const lowbit::quantized_multiplier qm = *lowbit::quantize_multiplier(0.0007);
    lowbit::requantize_params rp;
    rp.multipliers = {&qm, 1};
    std::vector<std::int8_t> full_q = c_buffer<std::int8_t>(p.m, p.n, p.ldc, 0);
    REQUIRE(lowbit::ref::gemm(p.dims(), p.ga(), p.gb(), s8, rp, span<std::int8_t>(full_q), p.ldc).ok());
    std::uniform_int_distribution<std::size_t> dm(0, p.m), dn(0, p.n);
    for (const isa_case& ic : isas) {
        for (int t = 0; t < 12; ++t) {
            kn::gemm_options opt;
            opt.isa = ic.isa;
            std::size_t m0 = dm(rng), m1 = dm(rng), n0 = dn(rng), n1 = dn(rng);
            if (m0 > m1) std::swap(m0, m1);
            if (n0 > n1) std::swap(n0, n1);
            if (t == 0) m0 = 0, m1 = p.m, n0 = 16, n1 = 32;  // one panel
            if (t == 1) m0 = 5, m1 = 6, n0 = 0, n1 = p.n;   // one row
            if (t == 2) m0 = 3, m1 = 3;                     // empty
            opt.range = {m0, t == 3 ? kn::gemm_range::all : m1, n0, t == 3 ? kn::gemm_range::all : n1};
            if (t == 3) m1 = p.m, n1 = p.n;
            INFO(ic.name << " rows [" << m0 << ", " << m1 << ") columns [" << n0 << ", " << n1 << ")");
            std::vector<std::int32_t> got = c_buffer<std::int32_t>(p.m, p.n, p.ldc, 0x77777777);
            std::vector<std::int8_t> got_q = c_buffer<std::int8_t>(p.m, p.n, p.ldc, 0x77);
            REQUIRE(kn::gemm(p.dims(), p.ga(), p.w, span<std::int32_t>(got), p.ldc, opt).ok());
            REQUIRE(kn::gemm(p.dims(), p.ga(), p.w, s8, rp, span<std::int8_t>(got_q), p.ldc, opt).ok());
            std::vector<std::int32_t> want = c_buffer<std::int32_t>(p.m, p.n, p.ldc, 0x77777777);
            std::vector<std::int8_t> want_q = c_buffer<std::int8_t>(p.m, p.n, p.ldc, 0x77);
            for (std::size_t i = m0; i < m1; ++i)
                for (std::size_t j = n0; j < n1; ++j) {
                    want[i * p.ldc + j] = full[i * p.ldc + j];
                    want_q[i * p.ldc + j] = full_q[i * p.ldc + j];
                }
            require_same(got, want);
            require_same(got_q, want_q);
        }
    }
}

TEST_CASE("kernels::gemm_parallel with 1, 2, 3 threads", "[gemm][kernels]") {
    std::mt19937 rng(32);
    const std::vector<isa_case> isas = runnable_isas();
    struct shape {
        std::size_t m, n, k;
    };
    for (const shape sh : {shape{1, 200, 300}, shape{70, 20, 50}, shape{5, 40, 9}, shape{2, 1, 5}, shape{100, 100, 100}}) {
        const problem<std::uint8_t> p = make_problem<std::uint8_t>(sh.m, sh.n, sh.k, rng, zp_kind::channel);
        std::vector<std::int32_t> want = c_buffer<std::int32_t>(p.m, p.n, p.ldc, -1);
        REQUIRE(lowbit::ref::gemm(p.dims(), p.ga(), p.gb(), span<std::int32_t>(want), p.ldc).ok());
        for (std::size_t threads : std::vector<std::size_t>{1, 2, 3}) {
            // the split covers C exactly once
            std::vector<int> cover(p.m * p.n, 0);
            for (std::size_t t = 0; t < threads; ++t) {
                const kn::gemm_range r = kn::gemm_split(p.m, p.n, threads, t);
                for (std::size_t i = r.m0; i < r.m1; ++i)
                    for (std::size_t j = r.n0; j < r.n1; ++j) ++cover[i * p.n + j];
                if (r.n1 < p.n && r.n0 < r.n1) CHECK(r.n1 % 16 == 0);
            }
            CHECK(std::count(cover.begin(), cover.end(), 1) == static_cast<std::ptrdiff_t>(p.m * p.n));
            for (const isa_case& ic : isas) {
                INFO(ic.name << " threads=" << threads << " M=" << p.m << " N=" << p.n);
                std::vector<std::int32_t> got = c_buffer<std::int32_t>(p.m, p.n, p.ldc, -1);
                const lowbit::status st = kn::gemm_parallel(threads, p.m, p.n, [&](const kn::gemm_range& r) {
                    return kn::gemm(p.dims(), p.ga(), p.w, span<std::int32_t>(got), p.ldc, kn::gemm_options{ic.isa, r});
                });
                REQUIRE(st.ok());
                require_same(got, want);
            }
        }
    }
    // errors inside a part come back to the caller
    const problem<std::uint8_t> p = make_problem<std::uint8_t>(4, 64, 8, rng, zp_kind::none);
    std::vector<std::int32_t> c(4 * 64);
    CHECK_THROWS_WITH(kn::gemm_parallel(3, 4, 64,
                                        [&](const kn::gemm_range& r) {
                                            return kn::gemm(gemm_dims{4, 64, 8}, p.ga(), p.w, span<std::int32_t>(c), 63,
                                                            kn::gemm_options{gemm_isa::best, r});
                                        }),
                      Catch::Contains("'ldc' = 63"));
    CHECK(kn::gemm_parallel(0, 4, 64, [&](const kn::gemm_range& r) {
              return kn::gemm(gemm_dims{4, 64, 8}, p.ga(), p.w, span<std::int32_t>(c), 64, kn::gemm_options{gemm_isa::best, r});
          }).ok());
}

TEST_CASE("kernels::gemm at K = gemm_max_k with extreme values", "[gemm][kernels]") {
    const std::vector<isa_case> isas = runnable_isas();
    const std::size_t m = 3, n = 17;
    const auto run = [&](auto a_value, std::int32_t za, std::int8_t b_value, std::int32_t zb, std::size_t k,
                         std::int64_t expect) {
        using TA = decltype(a_value);
        std::vector<TA> a(m * k, a_value);
        std::vector<std::int8_t> b(n * k, b_value);
        const std::vector<std::int32_t> zbs = zb == 0 ? std::vector<std::int32_t>{} : std::vector<std::int32_t>(n, zb);
        const gemm_b gb{b, k, weight_layout::n_by_k, zbs};
        const gemm_a<TA> ga{a, k, za};
        REQUIRE(lowbit::gemm_max_k<TA>(za, gb.zero_points) == k);
        REQUIRE(expect >= i32_min);
        REQUIRE(expect <= i32_max);
        pack_buffer buf(kn::packed_size(n, k), 9);
        const kn::packed_weights w = *kn::pack_weights(gb, n, k, buf.bytes);
        std::vector<std::int32_t> want(m * n);
        REQUIRE(lowbit::ref::gemm(gemm_dims{m, n, k}, ga, gb, span<std::int32_t>(want), n).ok());
        REQUIRE(want[0] == expect);
        for (const isa_case& ic : isas) {
            INFO(ic.name << " K=" << k << " A=" << +a_value << " za=" << za << " B=" << +b_value << " zb=" << zb);
            std::vector<std::int32_t> got(m * n, 0);
            REQUIRE(kn::gemm(gemm_dims{m, n, k}, ga, w, span<std::int32_t>(got), n, kn::gemm_options{ic.isa, {}}).ok());
            require_same(got, want);
            // and the dequantized output (exactness of the accumulator reaches the float)
            const float one = 1.0f;
            std::vector<float> f(m * n);
            REQUIRE(kn::gemm(gemm_dims{m, n, k}, ga, w, lowbit::gemm_dequantize_params{{&one, 1}, {}}, span<float>(f), n,
                             kn::gemm_options{ic.isa, {}})
                        .ok());
            CHECK(f[0] == static_cast<float>(expect));
        }
        // one more k is refused
        std::vector<TA> a2(m * (k + 1), a_value);
        std::vector<std::int8_t> b2(n * (k + 1), b_value);
        const gemm_b gb2{b2, k + 1, weight_layout::n_by_k, zbs};
        pack_buffer buf2(kn::packed_size(n, k + 1), 0);
        const kn::packed_weights w2 = *kn::pack_weights(gb2, n, k + 1, buf2.bytes);
        std::vector<std::int32_t> c(m * n, 5);
        CHECK_THROWS_WITH(kn::gemm(gemm_dims{m, n, k + 1}, gemm_a<TA>{a2, k + 1, za}, w2, span<std::int32_t>(c), n),
                          Catch::Contains("'k' = " + std::to_string(k + 1)));
        CHECK(c == std::vector<std::int32_t>(m * n, 5));
    };
    // u8 x s8, za = 0, zb = 0: P = 255 * 128, K = 65793
    run(std::uint8_t(255), 0, std::int8_t(-128), 0, 65793, -255LL * 128 * 65793);
    run(std::uint8_t(255), 0, std::int8_t(127), 0, 65793, 255LL * 127 * 65793);
    // s8 x s8, za = 0: P = 128 * 128, K = 131071; the +128 path sums 255 * 127 * K > 2^32
    run(std::int8_t(-128), 0, std::int8_t(-128), 0, 131071, 128LL * 128 * 131071);
    run(std::int8_t(127), 0, std::int8_t(127), 0, 131071, 127LL * 127 * 131071);
    run(std::int8_t(-128), 0, std::int8_t(127), 0, 131071, -128LL * 127 * 131071);
    // worst zero points, u8: (0 - 255) * (127 - (-128)) per term, K = 33025; the compensation
    // terms (za * colsum, K * za * zb) overflow int32 and wrap back
    run(std::uint8_t(0), 255, std::int8_t(127), -128, 33025, -255LL * 255 * 33025);
    run(std::uint8_t(255), 0, std::int8_t(-128), 127, 33025, 255LL * -255 * 33025);
    // s8 with zero points: (127 - (-128)) * (-128 - 127), K = 33025
    run(std::int8_t(127), -128, std::int8_t(-128), 127, 33025, 255LL * -255 * 33025);
}

TEST_CASE("kernels::pack_weights errors", "[gemm][kernels]") {
    const std::vector<std::int8_t> b(6 * 5, 1);
    pack_buffer buf(kn::packed_size(6, 5), 0);
    std::vector<std::uint8_t> before(buf.storage);
    const std::int32_t zps[3] = {0, 200, 1};
    const std::int32_t bad[1] = {-129};
    CHECK_THROWS_WITH(kn::pack_weights(gemm_b{b, 5, weight_layout::n_by_k, {zps, 3}}, 6, 5, buf.bytes),
                      Catch::Contains("'b.zero_points.size()' = 3"));
    CHECK_THROWS_WITH(kn::pack_weights(gemm_b{b, 5, weight_layout::n_by_k, {bad, 1}}, 6, 5, buf.bytes),
                      Catch::Contains("'b.zero_points[i]' = -129"));
    CHECK_THROWS_WITH(kn::pack_weights(gemm_b{b, 4, weight_layout::n_by_k, {}}, 6, 5, buf.bytes),
                      Catch::Contains("'b.ld' = 4"));
    CHECK_THROWS_WITH(kn::pack_weights(gemm_b{b, 5, weight_layout::k_by_n, {}}, 6, 5, buf.bytes),
                      Catch::Contains("'b.ld' = 5"));
    CHECK_THROWS_WITH(kn::pack_weights(gemm_b{b, 6, weight_layout::n_by_k, {}}, 6, 5, buf.bytes),
                      Catch::Contains("'b.data.size()' = 30"));
    CHECK_THROWS_WITH(kn::pack_weights(gemm_b{b, 5, weight_layout::n_by_k, {}}, 6, 5,
                                       buf.bytes.subspan(0, kn::packed_size(6, 5) - 1)),
                      Catch::Contains("'buffer.size()'"));
    const std::size_t huge = std::numeric_limits<std::size_t>::max() / 4;
    CHECK(kn::packed_size(huge, huge) == std::numeric_limits<std::size_t>::max());
    CHECK_THROWS_WITH(kn::pack_weights(gemm_b{b, 5, weight_layout::n_by_k, {}}, huge, huge, buf.bytes),
                      Catch::Contains("'n'"));
    CHECK(buf.storage == before);  // nothing written
    // view_packed_weights of something else
    std::vector<std::uint8_t> junk(512, 0);
    CHECK_THROWS_WITH(kn::view_packed_weights(span<const std::uint8_t>(junk.data(), junk.size())),
                      Catch::Contains("'buffer'"));
    CHECK_THROWS_WITH(kn::view_packed_weights(span<const std::uint8_t>(junk.data(), 10)),
                      Catch::Contains("'buffer.size()'"));
    const kn::packed_weights w = *kn::pack_weights(gemm_b{b, 5, weight_layout::n_by_k, {}}, 6, 5, buf.bytes);
    CHECK_THROWS_WITH(kn::view_packed_weights(span<const std::uint8_t>(buf.bytes.data(), w.bytes().size() - 1)),
                      Catch::Contains("'buffer.size()'"));
    CHECK(kn::view_packed_weights(span<const std::uint8_t>(buf.bytes.data(), w.bytes().size())).ok());
}

TEST_CASE("kernels::gemm errors name the argument and write nothing", "[gemm][kernels]") {
    std::mt19937 rng(41);
    const problem<std::uint8_t> p = make_problem<std::uint8_t>(4, 20, 9, rng, zp_kind::channel);
    const gemm_dims d = p.dims();
    std::vector<std::int32_t> c(4 * 20, 3);
    std::vector<std::int8_t> q(4 * 20, 3);
    std::vector<float> f(4 * 20, 3.0f);
    const auto unchanged = [&] {
        CHECK(c == std::vector<std::int32_t>(4 * 20, 3));
        CHECK(q == std::vector<std::int8_t>(4 * 20, 3));
        CHECK(f == std::vector<float>(4 * 20, 3.0f));
    };
    const span<std::int32_t> cs(c);
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), kn::packed_weights{}, cs, 20), Catch::Contains("'b'"));
    CHECK_THROWS_WITH(kn::gemm(gemm_dims{4, 21, 9}, p.ga(), p.w, cs, 20), Catch::Contains("'d.n' = 21"));
    CHECK_THROWS_WITH(kn::gemm(gemm_dims{4, 20, 8}, p.ga(), p.w, cs, 20), Catch::Contains("'d.k' = 8"));
    CHECK_THROWS_WITH(kn::gemm(d, gemm_a<std::uint8_t>{p.a, 9, 256}, p.w, cs, 20), Catch::Contains("'a.zero_point' = 256"));
    CHECK_THROWS_WITH(kn::gemm(d, gemm_a<std::uint8_t>{p.a, 8, 0}, p.w, cs, 20), Catch::Contains("'a.ld' = 8"));
    CHECK_THROWS_WITH(kn::gemm(d, gemm_a<std::uint8_t>{{p.a.data(), 35}, 9, 0}, p.w, cs, 20),
                      Catch::Contains("'a.data.size()' = 35"));
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, cs, 19), Catch::Contains("'ldc' = 19"));
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, cs.subspan(0, 79), 20), Catch::Contains("'c.size()' = 79"));
    kn::gemm_options o;
    o.range.m1 = 5;
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, cs, 20, o), Catch::Contains("'opt.range.m1' = 5"));
    o = {};
    o.range.m0 = 3, o.range.m1 = 2;
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, cs, 20, o), Catch::Contains("'opt.range.m0' = 3"));
    o = {};
    o.range.n1 = 21;
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, cs, 20, o), Catch::Contains("'opt.range.n1' = 21"));
    o = {};
    o.range.n0 = 7, o.range.n1 = 6;
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, cs, 20, o), Catch::Contains("'opt.range.n0' = 7"));
    o = {};
    o.isa = static_cast<gemm_isa>(42);
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, cs, 20, o), Catch::Contains("'opt.isa' = 42"));
    for (const isa_case& ic : isa_cases())
        if (!kn::gemm_isa_available(ic.isa)) {
            o.isa = ic.isa;
            CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, cs, 20, o), Catch::Contains("'opt.isa'"));
        }
    // requantize / dequantize parameter checks (ref's)
    const auto s8 = lowbit::scheme<lowbit::s8>{};
    const lowbit::quantized_multiplier qm2[2] = {{1 << 30, -3}, {1 << 30, -3}};
    const lowbit::quantized_multiplier badm = {5, 0};
    lowbit::requantize_params rp;
    rp.multipliers = {qm2, 2};
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, s8, rp, span<std::int8_t>(q), 20), Catch::Contains("'multipliers.size()' = 2"));
    rp.multipliers = {&badm, 1};
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, s8, rp, span<std::int8_t>(q), 20),
                      Catch::Contains("'multipliers[i].multiplier' = 5"));
    rp.multipliers = {qm2, 1};
    rp.zero_point = 128;
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, s8, rp, span<std::int8_t>(q), 20), Catch::Contains("'zero_point' = 128"));
    rp.zero_point = 0;
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, s8, rp, span<std::int8_t>(q), 19), Catch::Contains("'ldc' = 19"));
    const float fm_bad = -1.0f;
    lowbit::requantize_float_params fp;
    fp.multipliers = {&fm_bad, 1};
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, s8, fp, span<std::int8_t>(q), 20), Catch::Contains("'multipliers[i]' = -1"));
    const float nan = std::numeric_limits<float>::quiet_NaN(), one = 1.0f, two[2] = {1.0f, 2.0f};
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, lowbit::gemm_dequantize_params{{&nan, 1}, {}}, span<float>(f), 20),
                      Catch::Contains("'scales[i]'"));
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, lowbit::gemm_dequantize_params{{two, 2}, {}}, span<float>(f), 20),
                      Catch::Contains("'scales.size()' = 2"));
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, lowbit::gemm_dequantize_params{{&one, 1}, {&nan, 1}}, span<float>(f), 20),
                      Catch::Contains("'bias[i]'"));
    // a range error after valid parameters writes nothing either
    o = {};
    o.range.n1 = 99;
    rp.multipliers = {qm2, 1};
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, s8, rp, span<std::int8_t>(q), 20, o), Catch::Contains("'opt.range.n1'"));
    CHECK_THROWS_WITH(kn::gemm(d, p.ga(), p.w, lowbit::gemm_dequantize_params{{&one, 1}, {}}, span<float>(f), 20, o),
                      Catch::Contains("'opt.range.n1'"));
    unchanged();
}

// Regression (found by tests/fuzz/fuzz_gemm): with N = 0 and one per-tensor zero point,
// pack_weights stores no zero point (np = 0) but the view said it held 1, so every gemm call's
// check read 4 bytes past the packed weights (a heap overflow when the buffer ends there, as
// for view_packed_weights of exactly the packed bytes).
TEST_CASE("kernels::pack_weights with N = 0 and a per-tensor zero point", "[gemm][kernels]") {
    const std::int32_t zb[1] = {3};
    pack_buffer buf(kn::packed_size(0, 5), 0);
    const kn::packed_weights w = *kn::pack_weights(gemm_b{{}, 5, weight_layout::n_by_k, {zb, 1}}, 0, 5, buf.bytes);
    CHECK(w.np() == 0);
    CHECK(w.zero_points().empty());
    // the packed bytes alone, in a heap block of exactly their size (ASan sees a read past it)
    const std::size_t size = w.bytes().size();
    auto* exact = static_cast<std::uint8_t*>(std::aligned_alloc(64, size));
    REQUIRE(exact != nullptr);
    std::memcpy(exact, w.bytes().data(), size);
    const kn::packed_weights v = *kn::view_packed_weights(span<const std::uint8_t>(exact, size));
    CHECK(v.zero_points().empty());
    const std::vector<std::uint8_t> a(2 * 5, 7);
    std::vector<std::int32_t> c;
    for (const isa_case& ic : isa_cases()) {
        if (!kn::gemm_isa_available(ic.isa)) continue;
        INFO(ic.name);
        CHECK(kn::gemm(gemm_dims{2, 0, 5}, gemm_a<std::uint8_t>{a, 5, 0}, v, c, 0, kn::gemm_options{ic.isa, {}}).ok());
    }
    std::free(exact);
}
