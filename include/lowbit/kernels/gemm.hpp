// lowbit/kernels/gemm.hpp: the int8 GEMM kernels, bit-identical to lowbit::ref::gemm
// (core/gemm.hpp, the spec): u8 or s8 activations A times s8 weights B, zero points for both,
// and the four outputs of the reference (int32; TFLite fixed-point requantize, either rounding;
// float-multiplier requantize; dequantize to f32), per tensor or per output channel.
//
// Use: pack the weights once into a buffer you own, then call gemm as often as you like.
//
//   std::vector<std::uint8_t> buf(kernels::packed_size(N, K));
//   kernels::packed_weights w = *kernels::pack_weights(b, N, K, buf);   // b: a lowbit::gemm_b
//   kernels::gemm(gemm_dims{M, N, K}, a, w, s8_scheme, params, c, ldc);  // same as ref::gemm
//
// Packed weights (one contiguous byte buffer; the data starts at its first 64-byte aligned
// address, packed_size includes the 63 bytes of slack):
//   header, 64 bytes: u32 magic "LBGW", u32 version 1, u64 N, K, kp, np, u32 zero-point kind
//   (0: none, 1: one per tensor, 2: one per column), u32 flags (bit 0: some zero point is
//   nonzero), 16 reserved bytes (0);
//   panels: np / 16 panels of kp * 16 bytes, kp = K rounded up to 64, np = N rounded up to 16;
//     panel p holds columns 16p .. 16p + 15; its k-quad q (k = 4q .. 4q + 3) is the 64 bytes
//     at offset 64 q, byte 4c + j = B[4q + j][16p + c]; padding (k >= K or n >= N) is 0.
//     This is the operand layout of vpdpbusd on a zmm over 16 columns and of an AMX B tile
//     (16 k-quad rows x 64 bytes);
//   int32 colsum[np]: colsum[n] = sum_k B[k][n] (mod 2^32; 0 in the padding), for the
//     zero-point compensation;
//   int32 zero_points[np]: B's zero point of each column (0 in the padding).
// Integers are in the machine's byte order: a packed buffer moves between machines of the same
// kind only. view_packed_weights re-attaches a buffer filled earlier (it finds its aligned
// start the same way, so keep the bytes at the same offset from a 64-byte boundary).
//
// How a call runs: columns go in blocks of gemm_block_cols (a multiple of 16) and rows in
// blocks of gemm_block_rows; for each block one micro-kernel (x86/gemm_vnni.hpp,
// x86/gemm_avx2.hpp, the AMX one, arm/gemm_neon.hpp's NEON and SDOT ones, or the portable
// scalar one below) writes the raw dot products
// sum_k A[m][k] * B[k][n] (mod 2^32) into a stack buffer; then the block's epilogue adds the
// zero-point compensation of core/gemm.hpp in wrapping 32-bit arithmetic,
//   acc = dot - za * colsum[n] - zb[n] * rowsum_A[m] + K * za * zb[n]        (mod 2^32),
// which is the exact int32 accumulator whenever K <= gemm_max_k (the true value fits int32,
// and every term is right mod 2^32), and writes the output: int32 as is; requantize through
// kernels/requantize.hpp's per-lane tables (the same code as kernels::requantize, so the same
// bits as ref::requantize); dequantize with one fused multiply-add instruction (_mm512_fmadd_ps
// / _mm256_fmadd_ps; the correctly rounded scalar fmaf elsewhere) or one multiply without bias.
// Worked number: K = 2, A row = [3, 250], za = 128, B column = [-5, 7], zb = 2:
// dot = -15 + 1750 = 1735, colsum = 2, rowsum = 253; 1735 - 256 - 506 + 512 = 1485
// = (3 - 128)(-5 - 2) + (250 - 128)(7 - 2) = 875 + 610.
//
// Instruction sets (gemm_isa): the micro-kernel is chosen per call, at run time, from what this
// CPU and OS can run (kernels::cpu()); the AVX2, AVX-512BW and VNNI kernels carry GCC / Clang
// target attributes, so they exist in every translation unit whatever its -m flags (the AMX
// kernel, x86/gemm_amx.hpp, is inline assembly: likewise). On AArch64 the NEON kernel is
// baseline code and the SDOT one carries a target attribute (ARMv8.2 + dotprod), chosen where
// cpu().dotprod: one ARMv8.0 build runs both. They are templates on Arch, so
// copies built under different flags never merge. The epilogue is compiled for the including
// file's architecture (Arch = kernels::default_arch, as every kernels:: function).
//
// Threads: every call takes a row range and a column range (gemm_options::range) and writes
// only that part of C, so callers split one GEMM across their own threads;
// kernels/gemm_parallel.hpp does it with std::thread.
//
// Memory: no heap. A call uses about 60 KiB of stack (the block's int32 accumulators, a copy
// of the A rows, the epilogue's per-column tables).
#ifndef LOWBIT_KERNELS_GEMM_HPP
#define LOWBIT_KERNELS_GEMM_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>

#include "../core/gemm.hpp"
#include "arch.hpp"
#include "cpu.hpp"
#include "requantize.hpp"
#include "arm/gemm_neon.hpp"
#include "x86/gemm_amx.hpp"
#include "x86/gemm_avx2.hpp"
#include "x86/gemm_common.hpp"
#include "x86/gemm_vnni.hpp"

namespace lowbit {
namespace kernels {

/// The micro-kernel of a GEMM call. `best` picks the fastest this machine runs, in the order
/// amx, avx512_vnni, avx_vnni, avx512bw, avx2, scalar on x86; neon_dotprod, neon, scalar on
/// AArch64.
enum class gemm_isa : std::uint8_t {
    best,
    scalar,       ///< portable C++ (any CPU)
    avx2,         ///< vpmaddwd on ymm (x86/gemm_avx2.hpp)
    avx512bw,     ///< vpmaddwd on zmm
    avx512_vnni,  ///< vpdpbusd on zmm (x86/gemm_vnni.hpp)
    avx_vnni,     ///< vpdpbusd on ymm, VEX encoding
    amx,          ///< AMX-INT8 tiles (x86/gemm_amx.hpp)
    neon,         ///< AArch64 ARMv8.0 NEON, smull + sadalp (arm/gemm_neon.hpp)
    neon_dotprod, ///< AArch64 ARMv8.2 SDOT (arm/gemm_neon.hpp)
};

/// Name of an ISA, for messages and test names.
constexpr const char* to_string(gemm_isa isa) noexcept {
    switch (isa) {
        case gemm_isa::best: return "best";
        case gemm_isa::scalar: return "scalar";
        case gemm_isa::avx2: return "avx2";
        case gemm_isa::avx512bw: return "avx512bw";
        case gemm_isa::avx512_vnni: return "avx512_vnni";
        case gemm_isa::avx_vnni: return "avx_vnni";
        case gemm_isa::amx: return "amx";
        case gemm_isa::neon: return "neon";
        case gemm_isa::neon_dotprod: return "neon_dotprod";
    }
    return "unknown";
}

namespace detail {
// Test hook: the AVX-VNNI code in the EVEX encoding (needs AVX-512 VNNI + VL), so machines
// without AVX-VNNI run its logic. Not a public value of gemm_isa.
constexpr gemm_isa gemm_isa_vnni256_evex = static_cast<gemm_isa>(0x80);
}  // namespace detail

/// True if this process can run micro-kernel `isa` (best and scalar: always).
inline bool gemm_isa_available(gemm_isa isa) noexcept {
    if (isa == gemm_isa::best || isa == gemm_isa::scalar) return true;
#if LOWBIT_KERNELS_GEMM_X86
    const cpu_features& f = cpu();
    const bool bw = f.avx512f && f.avx512bw && f.avx512vl;
    switch (isa) {
        case gemm_isa::avx2: return f.avx2;
        case gemm_isa::avx512bw: return bw;
        case gemm_isa::avx512_vnni: return bw && f.avx512vnni;
        case gemm_isa::avx_vnni: return f.avx2 && f.avx_vnni;
        case gemm_isa::amx: return x86::amx_available();  // compiled for AMX, CPU, OS grant
        default: return isa == detail::gemm_isa_vnni256_evex && bw && f.avx512vnni;
    }
#elif LOWBIT_KERNELS_GEMM_ARM
    const cpu_features& f = cpu();
    switch (isa) {
        case gemm_isa::neon: return f.neon;
        case gemm_isa::neon_dotprod: return f.neon && f.dotprod;
        default: return false;
    }
#else
    return false;
#endif
}

/// The ISA `best` stands for on this machine.
inline gemm_isa gemm_best_isa() noexcept {
    const gemm_isa order[] = {gemm_isa::amx,  gemm_isa::avx512_vnni,  gemm_isa::avx_vnni, gemm_isa::avx512bw,
                              gemm_isa::avx2, gemm_isa::neon_dotprod, gemm_isa::neon};
    for (gemm_isa isa : order)
        if (gemm_isa_available(isa)) return isa;
    return gemm_isa::scalar;
}

/// A part of C: rows [m0, m1) and columns [n0, n1); `all` as an end means M (or N).
struct gemm_range {
    static constexpr std::size_t all = static_cast<std::size_t>(-1);
    std::size_t m0 = 0, m1 = all, n0 = 0, n1 = all;
};

/// Per-call options: the micro-kernel (best by default) and the part of C to compute.
struct gemm_options {
    gemm_isa isa = gemm_isa::best;
    gemm_range range{};
};

// ------------------------------------------------------------------------------------------
// Packed weights

namespace detail {
constexpr std::uint32_t packed_magic = 0x5747424Cu;  // "LBGW" in little-endian bytes
constexpr std::uint32_t packed_version = 1;
constexpr std::size_t packed_header_bytes = 64;
constexpr std::size_t packed_align = 64;

struct packed_header {
    std::uint32_t magic, version;
    std::uint64_t n, k, kp, np;
    std::uint32_t zp_kind, flags;
    std::uint8_t reserved[16];
};
static_assert(sizeof(packed_header) == packed_header_bytes, "packed header is 64 bytes");

// kp, np and the byte count after the aligned start (header + panels + colsum + zero points);
// false if a size overflows size_t.
constexpr bool packed_layout(std::size_t n, std::size_t k, std::size_t& kp, std::size_t& np, std::size_t& bytes) noexcept {
    constexpr std::size_t max = static_cast<std::size_t>(-1);
    if (k > max - (x86::gemm_k_align - 1) || n > max - (x86::gemm_panel_cols - 1)) return false;
    kp = (k + x86::gemm_k_align - 1) / x86::gemm_k_align * x86::gemm_k_align;
    np = (n + x86::gemm_panel_cols - 1) / x86::gemm_panel_cols * x86::gemm_panel_cols;
    if (kp != 0 && np > max / kp) return false;
    const std::size_t panels = np * kp;
    if (np > (max - panels - packed_header_bytes - (packed_align - 1)) / 8) return false;
    bytes = packed_header_bytes + panels + 8 * np;
    return true;
}

constexpr bool fits_size(std::uint64_t v) noexcept {
    if constexpr (sizeof(std::size_t) >= sizeof(std::uint64_t)) {
        return true;
    } else {
        return v <= static_cast<std::uint64_t>(static_cast<std::size_t>(-1));
    }
}

struct packed_access;

inline std::size_t align_offset(const void* p) noexcept {
    const auto addr = reinterpret_cast<std::uintptr_t>(p);
    return static_cast<std::size_t>((packed_align - addr % packed_align) % packed_align);
}
}  // namespace detail

/// Bytes of the buffer pack_weights needs for N x K weights (63 bytes of alignment slack
/// included); SIZE_MAX if that does not fit size_t (pack_weights then fails naming "n").
constexpr std::size_t packed_size(std::size_t n, std::size_t k) noexcept {
    std::size_t kp = 0, np = 0, bytes = 0;
    return detail::packed_layout(n, k, kp, np, bytes) ? bytes + (detail::packed_align - 1) : static_cast<std::size_t>(-1);
}

/// A view of packed weights inside a caller's buffer (which must outlive it). Default: empty,
/// accepted by no gemm call.
class packed_weights {
public:
    constexpr packed_weights() noexcept = default;

    bool valid() const noexcept { return m_data != nullptr; }
    std::size_t n() const noexcept { return m_n; }
    std::size_t k() const noexcept { return m_k; }
    std::size_t kp() const noexcept { return m_kp; }  ///< K rounded up to 64
    std::size_t np() const noexcept { return m_np; }  ///< N rounded up to 16
    /// The np / 16 panels (see the file comment), 64-byte aligned.
    const std::int8_t* panels() const noexcept {
        return reinterpret_cast<const std::int8_t*>(m_data + detail::packed_header_bytes);
    }
    /// Panel p (columns 16p .. 16p + 15), kp * 16 bytes.
    const std::int8_t* panel(std::size_t p) const noexcept { return panels() + p * m_kp * x86::gemm_panel_cols; }
    /// colsum[n] = sum_k B[k][n] (mod 2^32), np entries (0 in the padding).
    span<const std::int32_t> column_sums() const noexcept { return {m_colsum, m_np}; }
    /// B's zero point per column, np entries (0 in the padding).
    span<const std::int32_t> column_zero_points() const noexcept { return {m_zb, m_np}; }
    /// The zero points as given to pack_weights: 0, 1 or N entries (a gemm_b's zero_points);
    /// none when N = 0.
    span<const std::int32_t> zero_points() const noexcept { return {m_zb, m_zp_count}; }
    /// True if some zero point is nonzero.
    bool has_zero_points() const noexcept { return m_any_zp; }
    /// The packed bytes from the aligned start (header included).
    span<const std::uint8_t> bytes() const noexcept { return {m_data, m_bytes}; }

private:
    friend struct detail::packed_access;
    const std::uint8_t* m_data = nullptr;
    const std::int32_t* m_colsum = nullptr;
    const std::int32_t* m_zb = nullptr;
    std::size_t m_n = 0, m_k = 0, m_kp = 0, m_np = 0, m_zp_count = 0, m_bytes = 0;
    bool m_any_zp = false;
};

namespace detail {
struct packed_access {
    static packed_weights make(const std::uint8_t* data, std::size_t n, std::size_t k, std::size_t kp, std::size_t np,
                               std::size_t zp_count, bool any_zp, std::size_t bytes) noexcept {
        packed_weights w;
        w.m_data = data;
        // N = 0 stores no zero point (np = 0): a per-tensor one given to pack_weights (or a
        // header's zp_kind 1) must not make zero_points() reach past the packed bytes
        w.m_n = n, w.m_k = k, w.m_kp = kp, w.m_np = np, w.m_zp_count = n == 0 ? 0 : zp_count, w.m_bytes = bytes;
        w.m_any_zp = any_zp;
        w.m_colsum = reinterpret_cast<const std::int32_t*>(data + detail::packed_header_bytes + np * kp);
        w.m_zb = w.m_colsum + np;
        return w;
    }
};
}  // namespace detail

/// Packs the N x K weights `b` (either layout, its zero points: none, one or N) into `buffer`
/// (>= packed_size(n, k) bytes, any alignment) and returns the view of it. The zero points are
/// stored with the weights. Errors (nothing written): zero points not 0 / 1 / N of them or
/// outside [-128, 127]; b.ld too small; b.data too small for (rows - 1) * ld + cols; sizes
/// overflowing size_t ("n"); buffer too small ("buffer.size()"). N = 0 or K = 0 is valid.
inline result<packed_weights> pack_weights(const gemm_b& b, std::size_t n, std::size_t k, span<std::uint8_t> buffer) {
    LOWBIT_DETAIL_CHECK(b.zero_points.size() <= 1 || b.zero_points.size() == n, errc::size_mismatch,
                        "b.zero_points.size()", b.zero_points.size(), "must be 0, 1 or N");
    for (std::size_t i = 0; i < b.zero_points.size(); ++i)
        LOWBIT_DETAIL_CHECK(b.zero_points[i] >= -128 && b.zero_points[i] <= 127, errc::invalid_argument,
                            "b.zero_points[i]", b.zero_points[i], "must be in [-128, 127]");
    std::size_t kp = 0, np = 0, bytes = 0;
    LOWBIT_DETAIL_CHECK(detail::packed_layout(n, k, kp, np, bytes), errc::overflow, "n", n,
                        "the packed size of N x K weights must fit size_t");
    const bool kn = b.layout == weight_layout::k_by_n;
    if (n != 0 && k != 0) {
        const std::size_t rows = kn ? k : n, cols = kn ? n : k;
        LOWBIT_DETAIL_CHECK(b.ld >= cols, errc::invalid_argument, "b.ld", b.ld,
                            kn ? "must be >= N (k_by_n)" : "must be >= K (n_by_k)");
        LOWBIT_DETAIL_CHECK(rows - 1 <= (static_cast<std::size_t>(-1) - cols) / b.ld, errc::overflow, "b.ld", b.ld,
                            "(rows - 1) * ldb + cols must fit size_t");
        LOWBIT_DETAIL_CHECK(b.data.size() >= (rows - 1) * b.ld + cols, errc::size_mismatch, "b.data.size()",
                            b.data.size(), "must be >= (rows - 1) * ldb + cols");
    }
    const std::size_t off = detail::align_offset(buffer.data());
    LOWBIT_DETAIL_CHECK(buffer.size() >= off + bytes && buffer.size() >= packed_size(n, k), errc::size_mismatch,
                        "buffer.size()", buffer.size(), "must be >= packed_size(n, k)");
    std::uint8_t* base = buffer.data() + off;
    bool any_zp = false;
    for (std::size_t i = 0; i < b.zero_points.size(); ++i) any_zp = any_zp || b.zero_points[i] != 0;

    detail::packed_header h{};
    h.magic = detail::packed_magic;
    h.version = detail::packed_version;
    h.n = n, h.k = k, h.kp = kp, h.np = np;
    h.zp_kind = b.zero_points.empty() ? 0u : b.zero_points.size() == 1 ? 1u : 2u;
    h.flags = any_zp ? 1u : 0u;
    std::memcpy(base, &h, sizeof h);

    // panels and column sums: B[kk][col] = data[kk * sk + col * sn]
    std::uint8_t* panels = base + detail::packed_header_bytes;
    std::uint8_t* sums = panels + np * kp;  // int32 objects created below (64-byte aligned)
    std::uint8_t* zps = sums + 4 * np;
    const std::size_t sk = kn ? b.ld : 1, sn = kn ? 1 : b.ld;
    const std::size_t pstride = kp * x86::gemm_panel_cols;
    for (std::size_t p = 0; p < np / x86::gemm_panel_cols; ++p) {
        std::uint8_t* dst = panels + p * pstride;
        std::memset(dst, 0, pstride);
        for (std::size_t c = 0; c < x86::gemm_panel_cols; ++c) {
            const std::size_t col = p * x86::gemm_panel_cols + c;
            std::uint32_t sum = 0;
            std::int32_t zp = 0;
            if (col < n) zp = b.zero_point(col);
            if (col < n && k != 0) {  // (K = 0: b.data may be empty, not even a pointer to offset)
                const std::int8_t* src = b.data.data() + col * sn;
                for (std::size_t kk = 0; kk < k; ++kk) {
                    const std::int8_t v = src[kk * sk];
                    dst[kk / 4 * x86::gemm_quad_bytes + c * 4 + kk % 4] = static_cast<std::uint8_t>(v);
                    sum += static_cast<std::uint32_t>(std::int32_t(v));
                }
            }
            ::new (static_cast<void*>(sums + 4 * col)) std::int32_t(static_cast<std::int32_t>(sum));
            ::new (static_cast<void*>(zps + 4 * col)) std::int32_t(zp);
        }
    }
    return detail::packed_access::make(base, n, k, kp, np, b.zero_points.size(), any_zp, bytes);
}

/// Re-attaches weights packed earlier into `buffer` (by pack_weights, on a machine of the same
/// byte order, at the same offset from a 64-byte boundary). Errors: the buffer is too small,
/// or its header is not a lowbit packed-weights header of this version ("buffer").
inline result<packed_weights> view_packed_weights(span<const std::uint8_t> buffer) {
    const std::size_t off = detail::align_offset(buffer.data());
    LOWBIT_DETAIL_CHECK(buffer.size() >= off + detail::packed_header_bytes, errc::size_mismatch, "buffer.size()",
                        buffer.size(), "too small for a packed-weights header");
    detail::packed_header h{};
    std::memcpy(&h, buffer.data() + off, sizeof h);
    LOWBIT_DETAIL_CHECK(h.magic == detail::packed_magic && h.version == detail::packed_version, errc::invalid_argument,
                        "buffer", h.magic, "must hold weights packed by pack_weights (magic / version mismatch)");
    LOWBIT_DETAIL_CHECK(detail::fits_size(h.n) && detail::fits_size(h.k), errc::overflow, "buffer", static_cast<double>(h.n), "N, K must fit size_t");
    const auto n = static_cast<std::size_t>(h.n), k = static_cast<std::size_t>(h.k);
    std::size_t kp = 0, np = 0, bytes = 0;
    LOWBIT_DETAIL_CHECK(detail::packed_layout(n, k, kp, np, bytes) && kp == h.kp && np == h.np && h.zp_kind <= 2,
                        errc::invalid_argument, "buffer", static_cast<double>(h.n), "inconsistent packed-weights header");
    LOWBIT_DETAIL_CHECK(buffer.size() - off >= bytes, errc::size_mismatch, "buffer.size()", buffer.size(),
                        "too small for the packed weights its header describes");
    const std::size_t zp_count = h.zp_kind == 2 ? n : h.zp_kind;
    return detail::packed_access::make(buffer.data() + off, n, k, kp, np, zp_count, (h.flags & 1u) != 0, bytes);
}

// ------------------------------------------------------------------------------------------
// Micro-kernel dispatch and the driver

namespace detail {

constexpr std::size_t gemm_block_rows = 48;   ///< rows per micro-kernel call (multiple of 6 and 4)
constexpr std::size_t gemm_block_rows_amx = 64;  ///< the same for AMX (multiple of its 32)
constexpr std::size_t gemm_block_cols = 128;  ///< columns per micro-kernel call (multiple of 32)

/// Portable raw dot block (x86/gemm_common.hpp contract), reading the packed panels.
template <class Tag, class TA>
inline void scalar_dot_block(const TA* a, std::size_t lda, std::size_t k, std::size_t m_count,
                             const std::int8_t* panel0, std::size_t kp, std::size_t p_count, std::int32_t* acc,
                             std::size_t ld_acc) noexcept {
    constexpr std::size_t pc = x86::gemm_panel_cols;
    for (std::size_t i = 0; i < m_count; ++i)
        for (std::size_t p = 0; p < p_count; ++p) {
            const std::int8_t* pan = panel0 + p * kp * pc;
            std::uint32_t s[pc] = {};
            for (std::size_t kk = 0; kk < k; ++kk) {
                const auto av = static_cast<std::uint32_t>(std::int32_t(a[i * lda + kk]));
                const std::int8_t* row = pan + kk / 4 * x86::gemm_quad_bytes + kk % 4;
                for (std::size_t c = 0; c < pc; ++c) s[c] += av * static_cast<std::uint32_t>(std::int32_t(row[c * 4]));
            }
            for (std::size_t c = 0; c < pc; ++c) acc[i * ld_acc + p * pc + c] = static_cast<std::int32_t>(s[c]);
        }
}

// The raw dots of an m_count x (16 p_count) block with micro-kernel `isa` (available, not best).
template <class Tag, class TA>
inline void gemm_dot_block(gemm_isa isa, const TA* a, std::size_t lda, std::size_t k, std::size_t m_count,
                           const std::int8_t* panel0, std::size_t kp, std::size_t p_count, std::int32_t* acc,
                           std::size_t ld_acc, const std::int32_t* colsum0) noexcept {
#if LOWBIT_KERNELS_GEMM_X86
    switch (isa) {
        case gemm_isa::avx512_vnni:
            x86::vnni512_dot_block<Tag>(a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc, colsum0);
            return;
        case gemm_isa::avx_vnni:
            x86::vnni256_dot_block<Tag, TA, false>(a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc, colsum0);
            return;
        case gemm_isa::avx512bw: x86::avx512bw_dot_block<Tag>(a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc); return;
        case gemm_isa::avx2: x86::avx2_dot_block<Tag>(a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc); return;
        case gemm_isa::amx:  // x86/gemm_amx.hpp: at most 32 rows per call, any panel count
            for (std::size_t i = 0; i < m_count; i += 32)
                x86::amx_dot_panels(a + i * lda, lda, k, m_count - i < 32 ? m_count - i : 32, panel0, kp, p_count,
                                    acc + i * ld_acc, ld_acc);
            return;
        default:
            if (isa == gemm_isa_vnni256_evex) {
                x86::vnni256_dot_block<Tag, TA, true>(a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc, colsum0);
                return;
            }
            break;
    }
#elif LOWBIT_KERNELS_GEMM_ARM
    switch (isa) {
        case gemm_isa::neon_dotprod:
            arm::dotprod_dot_block<Tag>(a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc, colsum0);
            return;
        case gemm_isa::neon: arm::neon_dot_block<Tag>(a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc, colsum0); return;
        default: break;
    }
#else
    (void)isa, (void)colsum0;
#endif
    scalar_dot_block<Tag>(a, lda, k, m_count, panel0, kp, p_count, acc, ld_acc);
}

// acc[j] += cterm[j] - zb[j] * rowsum, mod 2^32 (zb null: acc[j] += cterm[j]).
template <class Arch>
inline void gemm_compensate(std::int32_t* acc, const std::int32_t* cterm, const std::int32_t* zb, std::int32_t rowsum,
                            std::size_t len) noexcept {
    std::size_t j = 0;
#if LOWBIT_HAS_XSIMD
    if constexpr (!std::is_same<Arch, scalar_arch>::value) {
        using I = xsimd::batch<std::int32_t, Arch>;
        constexpr std::size_t L = I::size;
        if (zb) {
            const I rs(rowsum);
            for (; j + L <= len; j += L)
                (I::load_unaligned(acc + j) + I::load_unaligned(cterm + j) - I::load_unaligned(zb + j) * rs)
                    .store_unaligned(acc + j);
        } else {
            for (; j + L <= len; j += L) (I::load_unaligned(acc + j) + I::load_unaligned(cterm + j)).store_unaligned(acc + j);
        }
    }
#endif
    const auto rs = static_cast<std::uint32_t>(rowsum);
    for (; j < len; ++j) {
        std::uint32_t v = static_cast<std::uint32_t>(acc[j]) + static_cast<std::uint32_t>(cterm[j]);
        if (zb) v -= static_cast<std::uint32_t>(zb[j]) * rs;
        acc[j] = static_cast<std::int32_t>(v);
    }
}

// A validated call.
struct gemm_plan {
    const std::int8_t* panels = nullptr;
    const std::int32_t* colsum = nullptr;
    const std::int32_t* zb = nullptr;  ///< per column (np), or null when every zero point is 0
    std::size_t k = 0, kp = 0;
    std::size_t m0 = 0, m1 = 0, n0 = 0, n1 = 0;
    std::int32_t za = 0;
    gemm_isa isa = gemm_isa::scalar;
};

// Runs the blocks of the plan; Epi: columns(n, len) once per column block, then
// row(m, n, values, len) for each row of it (values: the final int32 accumulators).
template <class Arch, class TA, class Epi>
inline void gemm_run(const gemm_plan& pl, const TA* a, std::size_t lda, Epi& epi) noexcept {
    constexpr std::size_t pcols = x86::gemm_panel_cols;
    constexpr std::size_t bn = gemm_block_cols;
    constexpr std::size_t bm_max = gemm_block_rows > gemm_block_rows_amx ? gemm_block_rows : gemm_block_rows_amx;
    const std::size_t bm = pl.isa == gemm_isa::amx ? gemm_block_rows_amx : gemm_block_rows;
    alignas(64) std::int32_t acc[bm_max * bn];
    alignas(64) std::int32_t cterm[bn];
    alignas(64) std::int32_t rowsum[bm_max];
    const std::uint32_t za = static_cast<std::uint32_t>(pl.za), kz = static_cast<std::uint32_t>(pl.k) * za;
    const std::size_t p_end = (pl.n1 + pcols - 1) / pcols;
    for (std::size_t pb = pl.n0 / pcols; pb < p_end; pb += bn / pcols) {
        const std::size_t pc = p_end - pb < bn / pcols ? p_end - pb : bn / pcols;
        const std::size_t j0 = pb * pcols;
        const std::size_t jl = (pl.n0 > j0 ? pl.n0 : j0) - j0;
        const std::size_t jh = (pl.n1 < j0 + pc * pcols ? pl.n1 : j0 + pc * pcols) - j0;
        // cterm = K * za * zb - za * colsum (mod 2^32)
        for (std::size_t j = 0; j < pc * pcols; ++j) {
            const std::uint32_t zbj = pl.zb ? static_cast<std::uint32_t>(pl.zb[j0 + j]) : 0u;
            cterm[j] = static_cast<std::int32_t>(kz * zbj - za * static_cast<std::uint32_t>(pl.colsum[j0 + j]));
        }
        epi.columns(j0 + jl, jh - jl);
        for (std::size_t mb = pl.m0; mb < pl.m1; mb += bm) {
            const std::size_t mc = pl.m1 - mb < bm ? pl.m1 - mb : bm;
            const TA* ab = a + mb * lda;
            if (pl.zb)
                for (std::size_t i = 0; i < mc; ++i) {
                    std::uint32_t s = 0;
                    for (std::size_t kk = 0; kk < pl.k; ++kk) s += static_cast<std::uint32_t>(std::int32_t(ab[i * lda + kk]));
                    rowsum[i] = static_cast<std::int32_t>(s);
                }
            gemm_dot_block<Arch>(pl.isa, ab, lda, pl.k, mc, pl.panels + pb * pl.kp * pcols, pl.kp, pc, acc, bn,
                                 pl.colsum + j0);
            for (std::size_t i = 0; i < mc; ++i) {
                std::int32_t* row = acc + i * bn + jl;
                gemm_compensate<Arch>(row, cterm + jl, pl.zb ? pl.zb + j0 + jl : nullptr, pl.zb ? rowsum[i] : 0, jh - jl);
                epi.row(mb + i, j0 + jl, row, jh - jl);
            }
        }
    }
}

// Validates what every kernel gemm checks (ref's checks first, in ref's order) and fills the plan.
template <class TA>
inline status gemm_prepare(const gemm_dims& d, const gemm_a<TA>& a, const packed_weights& b, std::size_t ldc,
                           std::size_t c_size, gemm_plan& pl) {
    LOWBIT_DETAIL_CHECK(b.valid(), errc::invalid_argument, "b", 0, "must be packed weights (pack_weights)");
    LOWBIT_DETAIL_CHECK(d.n == b.n(), errc::size_mismatch, "d.n", d.n, "must equal the packed weights' N");
    LOWBIT_DETAIL_CHECK(d.k == b.k(), errc::size_mismatch, "d.k", d.k, "must equal the packed weights' K");
    // ref's checks, with B described as its packed bytes (N x K, n_by_k sizes)
    gemm_b bv;
    bv.data = span<const std::int8_t>(b.panels(), b.np() * b.kp());
    bv.ld = d.k;
    bv.layout = weight_layout::n_by_k;
    bv.zero_points = b.zero_points();
    LOWBIT_DETAIL_TRY(lowbit::detail::check_gemm(d, a, bv, ldc, c_size));
    pl.panels = b.panels();
    pl.colsum = b.column_sums().data();
    pl.zb = b.has_zero_points() ? b.column_zero_points().data() : nullptr;
    pl.k = d.k;
    pl.kp = b.kp();
    pl.za = a.zero_point;
    return {};
}

// The range and ISA checks (after the output's own checks, as ref has no such arguments).
inline status gemm_prepare_options(const gemm_dims& d, const gemm_options& opt, gemm_plan& pl) {
    const std::size_t m1 = opt.range.m1 == gemm_range::all ? d.m : opt.range.m1;
    const std::size_t n1 = opt.range.n1 == gemm_range::all ? d.n : opt.range.n1;
    LOWBIT_DETAIL_CHECK(m1 <= d.m, errc::out_of_range, "opt.range.m1", opt.range.m1, "must be <= M (or gemm_range::all)");
    LOWBIT_DETAIL_CHECK(opt.range.m0 <= m1, errc::out_of_range, "opt.range.m0", opt.range.m0, "must be <= m1");
    LOWBIT_DETAIL_CHECK(n1 <= d.n, errc::out_of_range, "opt.range.n1", opt.range.n1, "must be <= N (or gemm_range::all)");
    LOWBIT_DETAIL_CHECK(opt.range.n0 <= n1, errc::out_of_range, "opt.range.n0", opt.range.n0, "must be <= n1");
    LOWBIT_DETAIL_CHECK(static_cast<std::uint8_t>(opt.isa) <= static_cast<std::uint8_t>(gemm_isa::neon_dotprod) ||
                            opt.isa == gemm_isa_vnni256_evex,
                        errc::invalid_argument, "opt.isa", static_cast<int>(opt.isa), "must be a gemm_isa value");
    LOWBIT_DETAIL_CHECK(gemm_isa_available(opt.isa), errc::invalid_argument, "opt.isa", static_cast<int>(opt.isa),
                        "this CPU / OS cannot run that instruction set (gemm_isa_available)");
    pl.m0 = opt.range.m0, pl.m1 = m1, pl.n0 = opt.range.n0, pl.n1 = n1;
    pl.isa = opt.isa == gemm_isa::best ? gemm_best_isa() : opt.isa;
    return {};
}

// ---- epilogues

struct gemm_epi_s32 {
    std::int32_t* c;
    std::size_t ldc;
    void columns(std::size_t, std::size_t) noexcept {}
    void row(std::size_t m, std::size_t n, const std::int32_t* v, std::size_t len) noexcept {
        std::memcpy(c + m * ldc + n, v, len * sizeof(std::int32_t));
    }
};

template <class Arch>
struct gemm_epi_f32 {
    float* c;
    std::size_t ldc;
    const gemm_dequantize_params& p;
    void columns(std::size_t, std::size_t) noexcept {}
    void row(std::size_t m, std::size_t n, const std::int32_t* v, std::size_t len) noexcept {
        float* out = c + m * ldc + n;
        const bool sc_n = p.scales.size() != 1, bias_n = p.bias.size() > 1;
        const float* sc = p.scales.data() + (sc_n ? n : 0);
        const float* bi = p.bias.empty() ? nullptr : p.bias.data() + (bias_n ? n : 0);
        std::size_t j = 0;
#if LOWBIT_HAS_XSIMD && defined(__AVX512F__)
        if constexpr (std::is_base_of<xsimd::avx512f, Arch>::value) {
            const __m512 s1 = _mm512_set1_ps(sc[0]), b1 = _mm512_set1_ps(bi ? bi[0] : 0.0f);
            for (; j + 16 <= len; j += 16) {
                const __m512 x = _mm512_cvtepi32_ps(_mm512_loadu_si512(v + j));
                const __m512 s = sc_n ? _mm512_loadu_ps(sc + j) : s1;
                const __m512 y = bi ? _mm512_fmadd_ps(x, s, bias_n ? _mm512_loadu_ps(bi + j) : b1) : _mm512_mul_ps(x, s);
                _mm512_storeu_ps(out + j, y);
            }
        }
#endif
#if LOWBIT_HAS_XSIMD && defined(__FMA__) && defined(__AVX2__)
        if constexpr (std::is_same<Arch, xsimd::fma3<xsimd::avx2>>::value) {
            const __m256 s1 = _mm256_set1_ps(sc[0]), b1 = _mm256_set1_ps(bi ? bi[0] : 0.0f);
            for (; j + 8 <= len; j += 8) {
                const __m256 x = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + j)));
                const __m256 s = sc_n ? _mm256_loadu_ps(sc + j) : s1;
                const __m256 y = bi ? _mm256_fmadd_ps(x, s, bias_n ? _mm256_loadu_ps(bi + j) : b1) : _mm256_mul_ps(x, s);
                _mm256_storeu_ps(out + j, y);
            }
        }
#endif
        for (; j < len; ++j) {
            const float x = static_cast<float>(v[j]);
            const float s = sc[sc_n ? j : 0];
            out[j] = bi ? LOWBIT_FMAF(x, s, bi[bias_n ? j : 0]) : x * s;
        }
    }
};

// The SIMD requantize tables exist for every xsimd architecture lowbit supports.
template <class Arch>
constexpr bool gemm_requant_simd() noexcept {
    return LOWBIT_HAS_XSIMD && !std::is_same<Arch, scalar_arch>::value;
}

// Requantizing epilogues: fixed-point (Params = requantize_params) or float multipliers; the
// scalar one (ref's per-element formulas) without SIMD, the two below with it.
template <class Arch, class Scheme, class Params>
struct gemm_epi_requant_scalar {
    using storage = typename Scheme::storage_type;
    storage* c;
    std::size_t ldc;
    const Params& p;
    std::int64_t lo, hi;  // (double for float params: converted at use)
    void columns(std::size_t, std::size_t) noexcept {}
    void row(std::size_t m, std::size_t n, const std::int32_t* v, std::size_t len) noexcept {
        storage* out = c + m * ldc + n;
        for (std::size_t j = 0; j < len; ++j) {
            const std::int32_t bias = p.bias.empty() ? 0 : lowbit::detail::channel(p.bias, n + j);
            std::int32_t r;
            if constexpr (std::is_same<Params, requantize_params>::value)
                r = lowbit::detail::requantize_value(v[j], bias, lowbit::detail::channel(p.multipliers, n + j), p, lo, hi);
            else
                r = lowbit::detail::requantize_value(v[j], bias, lowbit::detail::channel(p.multipliers, n + j), p,
                                                     static_cast<double>(lo), static_cast<double>(hi));
            out[j] = static_cast<storage>(r);
        }
    }
};

#if LOWBIT_HAS_XSIMD
// One output row of len values through a requantize policy's block_table: whole blocks in
// place, the tail through zero-padded stack copies (nothing read or written past len).
template <class Policy>
LOWBIT_FORCE_INLINE void gemm_requant_table_row(const Policy& pol, const typename Policy::table& tb,
                                                const std::int32_t* v, std::uint8_t* out, std::size_t len) noexcept {
    constexpr std::size_t B = Policy::block;
    std::size_t t = 0;
    for (; t + B <= len; t += B) pol.block_table(tb, t, v + t, out + t);
    if (t < len) {
        alignas(64) std::int32_t at[B] = {};
        alignas(64) std::uint8_t ot[B];
        std::memcpy(at, v + t, (len - t) * sizeof(std::int32_t));
        pol.block_table(tb, t, at, ot);
        std::memcpy(out + t, ot, len - t);
    }
}

// Per-lane constants of the block's columns in kernels/requantize.hpp's tables, filled once
// per column block; each row then runs that header's block_table (same code, same bits).
template <class Arch, class Scheme>
struct gemm_epi_requant_fixed_simd {
    using storage = typename Scheme::storage_type;
    using policy = requant_policy<Arch, Scheme::format::is_signed>;
    static constexpr std::size_t B = policy::block;
    storage* c;
    std::size_t ldc;
    const requantize_params& p;
    requant_args args;
    typename policy::table tb;

    void columns(std::size_t n, std::size_t len) noexcept {
        const bool single = p.rounding == requant_rounding::single_rounding;
        for (std::size_t t = 0; t < len + B; ++t) {
            const std::size_t col = n + (t < len ? t : len - 1);
            const requant_entry e = make_requant_entry<Arch>(lowbit::detail::channel(p.multipliers, col),
                                                             p.bias.empty() ? 0 : lowbit::detail::channel(p.bias, col), single);
            tb.qm[t] = e.qm;
            tb.alo[t] = e.alo;
            tb.ahi[t] = e.ahi;
            tb.bias[t] = e.bias;
            tb.lsh[t] = e.lsh;
            tb.rsh[t] = e.rsh;
            tb.half[t] = e.half;
            tb.sel[t] = e.half != 0 ? -1 : 0;
        }
    }
    void row(std::size_t m, std::size_t n, const std::int32_t* v, std::size_t len) noexcept {
        gemm_requant_table_row(policy{args}, tb, v, reinterpret_cast<std::uint8_t*>(c + m * ldc + n), len);
    }
};

template <class Arch, class Scheme>
struct gemm_epi_requant_float_simd {
    using storage = typename Scheme::storage_type;
    using policy = requant_float_policy<Arch, Scheme::format::is_signed>;
    static constexpr std::size_t B = policy::block;
    storage* c;
    std::size_t ldc;
    const requantize_float_params& p;
    requant_float_args args;
    typename policy::table tb;

    void columns(std::size_t n, std::size_t len) noexcept {
        const policy pol{args};
        for (std::size_t t = 0; t < len + B; ++t) {
            const std::size_t col = n + (t < len ? t : len - 1);
            const std::int32_t bias = p.bias.empty() ? 0 : lowbit::detail::channel(p.bias, col);
            tb.m[t] = lowbit::detail::channel(p.multipliers, col);
            tb.bias[t] = bias;
            pol.bias_bounds(bias, tb.alo[t], tb.ahi[t]);
        }
    }
    void row(std::size_t m, std::size_t n, const std::int32_t* v, std::size_t len) noexcept {
        gemm_requant_table_row(policy{args}, tb, v, reinterpret_cast<std::uint8_t*>(c + m * ldc + n), len);
    }
};

// The SIMD epilogue of each parameter kind, and its per-call arguments.
template <class Arch, class Scheme, class Params>
using gemm_epi_requant_simd =
    typename std::conditional<std::is_same<Params, requantize_params>::value, gemm_epi_requant_fixed_simd<Arch, Scheme>,
                              gemm_epi_requant_float_simd<Arch, Scheme>>::type;

inline void gemm_requant_set_args(requant_args& a, const requantize_params& p, std::int32_t lo, std::int32_t hi) noexcept {
    a.zero_point = p.zero_point;
    a.lo = lo;
    a.hi = hi;
    a.single_rounding = p.rounding == requant_rounding::single_rounding;
}
inline void gemm_requant_set_args(requant_float_args& a, const requantize_float_params& p, std::int32_t lo,
                                  std::int32_t hi) noexcept {
    a.zero_point = p.zero_point;
    a.lo = lo;
    a.hi = hi;
}
#endif

template <class Arch, class TA, class Epi>
inline void gemm_execute(const gemm_plan& pl, const gemm_a<TA>& a, Epi& epi) noexcept {
    if (pl.m0 >= pl.m1 || pl.n0 >= pl.n1) return;
    gemm_run<Arch>(pl, a.data.data(), a.ld, epi);
}

// The multiplier check of each parameter kind (ref::gemm's, after check_gemm_requantize).
inline status gemm_check_multipliers(const requantize_params& p) {
    return lowbit::detail::check_quantized_multipliers(p.multipliers);
}
inline status gemm_check_multipliers(const requantize_float_params& p) {
    return lowbit::detail::check_float_multipliers(p.multipliers);
}

// Both requantizing gemm calls (Params = requantize_params or requantize_float_params):
// ref::gemm's checks in its order, then the SIMD table epilogue, or ref's per-element
// formulas without SIMD.
template <class Arch, class TA, class Scheme, class Params>
status gemm_requantize(const gemm_dims& d, const gemm_a<TA>& a, const packed_weights& b, const Scheme& s,
                       const Params& p, span<typename Scheme::storage_type> c, std::size_t ldc,
                       const gemm_options& opt) {
    gemm_plan pl;
    LOWBIT_DETAIL_TRY(gemm_prepare(d, a, b, ldc, c.size(), pl));
    LOWBIT_DETAIL_TRY(lowbit::detail::check_gemm_requantize(s, p, d.n));
    LOWBIT_DETAIL_TRY(gemm_check_multipliers(p));
    LOWBIT_DETAIL_TRY(gemm_prepare_options(d, opt, pl));
    const std::int32_t lo = lowbit::detail::clamp_bound(s, p.clamp_min), hi = lowbit::detail::clamp_bound(s, p.clamp_max);
    if constexpr (gemm_requant_simd<Arch>()) {
#if LOWBIT_HAS_XSIMD
        gemm_epi_requant_simd<Arch, Scheme, Params> epi{c.data(), ldc, p, {}, {}};
        gemm_requant_set_args(epi.args, p, lo, hi);
        gemm_execute<Arch>(pl, a, epi);
#endif
    } else {
        gemm_epi_requant_scalar<Arch, Scheme, Params> epi{c.data(), ldc, p, lo, hi};
        gemm_execute<Arch>(pl, a, epi);
    }
    return {};
}

}  // namespace detail

// ------------------------------------------------------------------------------------------
// The GEMM calls: ref::gemm's four outputs, with packed weights and options.

/// C = acc (int32), bit-identical to ref::gemm with the weights b was packed from. d.n, d.k
/// must be the packed N, K. Only rows / columns of opt.range are written (C is still the
/// whole M x N matrix, row stride ldc). Errors (nothing written): b empty; d.n or d.k not the
/// packed sizes; ref::gemm's (A's zero point, leading dimensions, buffer sizes, K >
/// gemm_max_k: errc::overflow naming "k"); a range outside M x N or with m0 > m1 / n0 > n1
/// ("opt.range.*"); an ISA this machine cannot run ("opt.isa").
template <class Arch = default_arch, class TA>
status gemm(const gemm_dims& d, const gemm_a<TA>& a, const packed_weights& b, span<std::int32_t> c, std::size_t ldc,
            const gemm_options& opt = {}) {
    detail::gemm_plan pl;
    LOWBIT_DETAIL_TRY(detail::gemm_prepare(d, a, b, ldc, c.size(), pl));
    LOWBIT_DETAIL_TRY(detail::gemm_prepare_options(d, opt, pl));
    detail::gemm_epi_s32 epi{c.data(), ldc};
    detail::gemm_execute<Arch>(pl, a, epi);
    return {};
}

/// C = requantize(acc) into the 8-bit scheme s (TFLite fixed point, double or single rounding,
/// multipliers / bias per tensor or per output channel, fused clamp), bit-identical to the
/// same ref::gemm. Errors: those of the int32 gemm, then ref's requantize checks.
template <class Arch = default_arch, class TA, class Scheme>
status gemm(const gemm_dims& d, const gemm_a<TA>& a, const packed_weights& b, const Scheme& s,
            const requantize_params& p, span<typename Scheme::storage_type> c, std::size_t ldc,
            const gemm_options& opt = {}) {
    return detail::gemm_requantize<Arch>(d, a, b, s, p, c, ldc, opt);
}

/// C = float-multiplier requantize(acc) (requantize_float_params, XNNPACK / ONNX Runtime fp32
/// requantization), bit-identical to the same ref::gemm. Errors: as the int32 gemm, then ref's.
template <class Arch = default_arch, class TA, class Scheme>
status gemm(const gemm_dims& d, const gemm_a<TA>& a, const packed_weights& b, const Scheme& s,
            const requantize_float_params& p, span<typename Scheme::storage_type> c, std::size_t ldc,
            const gemm_options& opt = {}) {
    return detail::gemm_requantize<Arch>(d, a, b, s, p, c, ldc, opt);
}

/// C = dequantize(acc) in f32: fma(f32(acc), scales[n], bias[n]) rounded once (f32(acc) *
/// scales[n] without bias), bit-identical to the same ref::gemm. Errors: as the int32 gemm;
/// scales not 1 or N entries or not finite; bias not 0, 1 or N entries or not finite.
template <class Arch = default_arch, class TA>
status gemm(const gemm_dims& d, const gemm_a<TA>& a, const packed_weights& b, const gemm_dequantize_params& p,
            span<float> c, std::size_t ldc, const gemm_options& opt = {}) {
    detail::gemm_plan pl;
    LOWBIT_DETAIL_TRY(detail::gemm_prepare(d, a, b, ldc, c.size(), pl));
    LOWBIT_DETAIL_TRY(lowbit::detail::check_channel_count("scales.size()", p.scales.size(), d.n, false));
    LOWBIT_DETAIL_TRY(lowbit::detail::check_channel_count("bias.size()", p.bias.size(), d.n, true));
    for (std::size_t i = 0; i < p.scales.size(); ++i)
        LOWBIT_DETAIL_CHECK(lowbit::detail::is_finite(p.scales[i]), errc::invalid_argument, "scales[i]", p.scales[i],
                            "must be finite");
    for (std::size_t i = 0; i < p.bias.size(); ++i)
        LOWBIT_DETAIL_CHECK(lowbit::detail::is_finite(p.bias[i]), errc::invalid_argument, "bias[i]", p.bias[i],
                            "must be finite");
    LOWBIT_DETAIL_TRY(detail::gemm_prepare_options(d, opt, pl));
    detail::gemm_epi_f32<Arch> epi{c.data(), ldc, p};
    detail::gemm_execute<Arch>(pl, a, epi);
    return {};
}

}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_GEMM_HPP
