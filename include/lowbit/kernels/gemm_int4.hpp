// lowbit/kernels/gemm_int4.hpp: int4 weight-only GEMV / small-M GEMM (the llama.cpp Q4_0 style),
// bit-identical to ref::gemm_int4_f32 / ref::gemm_int4_q8 (core/gemm_int4.hpp, the spec).
//
// Pack the weights once (pack_int4, into a caller buffer of packed_int4_size bytes), then run
// gemm_int4_f32 (f32 activations) or quantize_q8 + gemm_int4_q8 (8-bit activation blocks, VNNI)
// as often as needed. A GEMV streams the packed weights exactly once; with M > 1 rows each
// group of tiles is reused for every row while it is in cache (M up to ~16 is the target).
// Each call takes an output-row range [n0, n1) so callers can split N over their own threads
// (ranges that are multiples of 16 share no work); no heap, no threads inside. For example,
// two threads over N = 11008: one calls gemm_int4_q8(packed, a, {}, y, N, 0, 5504), the other
// (..., 5504, 11008); 5504 = 344 * 16.
//
//   std::vector<std::uint8_t> packed(kernels::packed_int4_size(w));   // once
//   kernels::pack_int4(w, packed);
//   kernels::quantize_q8(x, M, K, K, q8_buffer);                        // per activation batch
//   kernels::gemm_int4_q8(packed, q8_buffer.view(), bias, y, N);        // or gemm_int4_f32(packed, x, ...)
//
// PACKED LAYOUT (version 1). Offsets are from the start of the buffer; 64-byte alignment of
// the buffer is recommended (then every 64-byte chunk is one cache line), not required.
//   header, 64 bytes: u32 magic 0x5734424C ("LB4W"), u32 version 1, u8 format (format_id),
//     u8 f16 scales (0/1), 6 bytes 0, then u64 n, k, group_size, tiles, tile_bytes.
//   tiles = ceil(N / 16) tiles of tile_bytes (a multiple of 64) each; tile t holds rows
//   16t .. 16t + 15 (rows past N: weights 0, scales 0, zero points 0; never written out):
//     weights, K / 8 chunks of 64 bytes: chunk c, dword j (bytes 4j .. 4j+3) holds the 8
//       weights k = 8c .. 8c + 7 of row 16t + j, byte i = u[8c + i] | u[8c + i + 4] << 4,
//       where u is the unsigned nibble: q + 8 for s4 (so u - 8 = q), q for u4;
//     scales, K / G groups of 16 (f32: 64 bytes, binary16: 32 bytes), row order;
//     zero points (u4 only), K / G groups of 16 bytes;
//     zero padding to a multiple of 64.
// Why: one 64-byte load gives 16 rows x 8 k. For f32 activations each lane is one output and
// its 8 nibbles are picked by shifts (the spec's per-lane k order); for q8 activations
// `& 0x0F` and `>> 4 & 0x0F` give each lane 4 consecutive k as bytes, the operand layout of
// vpdpbusd against 4 broadcast activation bytes (x86/gemm_int4_avx512.hpp has the details).
//
// ISA paths: avx512_vnni (vpdpbusd; f32 path as avx512bw), avx512bw (vpermps lookup, vpmaddubsw),
// avx2 (+FMA, F16C; compiled with -mavx2 -mfma -mf16c, and run where the CPU has AVX2 and FMA:
// every such x86 CPU also has F16C), on AArch64 neon_dotprod (SDOT for q8; chosen at run time,
// target attribute, arm/gemm_int4_neon.hpp) and neon (ARMv8.0 smull / sadalp for q8; both use
// the same ARMv8.0 fma loop for f32), scalar (portable loops over the packed layout, the spec's
// operations). quantize_q8 runs the reference loop on ARM. No AVX-VNNI (ymm vpdpbusd) path yet: AVX2 machines use vpmaddubsw.
// int4_isa::best picks the best one compiled into the including file (its -m flags) and
// supported by this CPU; asking for one that is not available is an error (errc::invalid_argument,
// "isa"). As with the other kernels, the SIMD code is chosen at compile time by the including
// file's flags: do not include this header with different -m flags in one program.
#ifndef LOWBIT_KERNELS_GEMM_INT4_HPP
#define LOWBIT_KERNELS_GEMM_INT4_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../core/gemm_int4.hpp"
#include "arm/gemm_int4_neon.hpp"
#include "cpu.hpp"
#include "x86/gemm_int4_avx2.hpp"
#include "x86/gemm_int4_avx512.hpp"

namespace lowbit {
namespace kernels {

/// Which instruction set a gemm_int4 call uses.
enum class int4_isa : std::uint8_t { best, scalar, avx2, avx512bw, avx512_vnni, neon, neon_dotprod };

constexpr const char* to_string(int4_isa i) noexcept {
    switch (i) {
        case int4_isa::best: return "best";
        case int4_isa::scalar: return "scalar";
        case int4_isa::avx2: return "avx2";
        case int4_isa::avx512bw: return "avx512bw";
        case int4_isa::avx512_vnni: return "avx512_vnni";
        case int4_isa::neon: return "neon";
        case int4_isa::neon_dotprod: return "neon_dotprod";
    }
    return "?";
}

/// True if `isa` is compiled into this file and this CPU / OS can run it (best and scalar:
/// always).
inline bool int4_isa_available(int4_isa isa) noexcept {
    const cpu_features& f = cpu();
    switch (isa) {
        case int4_isa::best:
        case int4_isa::scalar: return true;
        case int4_isa::avx2: return LOWBIT_INT4_AVX2 && f.avx2 && f.fma;
        case int4_isa::avx512bw: return LOWBIT_INT4_AVX512 && f.avx512f && f.avx512bw;
        case int4_isa::avx512_vnni: return LOWBIT_INT4_AVX512_VNNI && f.avx512f && f.avx512bw && f.avx512vnni;
        case int4_isa::neon: return LOWBIT_INT4_NEON && f.neon;
        case int4_isa::neon_dotprod: return LOWBIT_INT4_NEON && f.neon && f.dotprod;
    }
    return false;
}

/// The isa `best` stands for here.
inline int4_isa int4_best_isa() noexcept {
    for (int4_isa i : {int4_isa::avx512_vnni, int4_isa::avx512bw, int4_isa::avx2, int4_isa::neon_dotprod, int4_isa::neon})
        if (int4_isa_available(i)) return i;
    return int4_isa::scalar;
}

namespace detail {

constexpr std::uint32_t int4_packed_magic = 0x5734424Cu;  // "LB4W" little-endian
constexpr std::size_t int4_header_bytes = 64;

/// The parsed header of a packed buffer.
struct int4_packed_info {
    format_id format = format_id::s4;
    bool f16 = false;
    std::size_t n = 0, k = 0, group_size = 32, tiles = 0;
    x86::int4_tile_geometry geo;
    const std::uint8_t* base = nullptr;  ///< tile 0
};

constexpr std::size_t round_up64(std::size_t v) noexcept { return (v + 63) / 64 * 64; }

/// Tile geometry for these sizes (no checks: callers validated them).
inline x86::int4_tile_geometry int4_geometry(format_id fmt, bool f16, std::size_t k, std::size_t g) noexcept {
    x86::int4_tile_geometry geo;
    const std::size_t groups = k / g;
    geo.k = k;
    geo.group_size = g;
    geo.f16 = f16;
    geo.scale_offset = k * 8;  // K / 8 chunks of 64 bytes
    geo.zp_offset = geo.scale_offset + groups * 16 * (f16 ? 2 : 4);
    geo.tile_bytes = round_up64(geo.zp_offset + (fmt == format_id::u4 ? groups * 16 : 0));
    return geo;
}

inline std::uint64_t load_u64(const std::uint8_t* p) noexcept {
    std::uint64_t v = 0;
    std::memcpy(&v, p, 8);
    return v;
}

/// Validates the header of a packed buffer against its size.
inline status parse_int4_packed(span<const std::uint8_t> packed, int4_packed_info& info) {
    LOWBIT_DETAIL_CHECK(packed.size() >= int4_header_bytes, errc::size_mismatch, "packed.size()", packed.size(),
                        "must hold at least the 64-byte header (a buffer written by pack_int4)");
    const std::uint8_t* p = packed.data();
    std::uint32_t magic = 0, version = 0;
    std::memcpy(&magic, p, 4);
    std::memcpy(&version, p + 4, 4);
    LOWBIT_DETAIL_CHECK(magic == int4_packed_magic && version == 1, errc::invalid_argument, "packed", magic,
                        "is not a version-1 buffer written by pack_int4 (magic / version)");
    const auto fmt = static_cast<format_id>(p[8]);
    LOWBIT_DETAIL_CHECK((fmt == format_id::s4 || fmt == format_id::u4) && p[9] <= 1, errc::invalid_argument,
                        "packed", p[8], "has a bad format byte");
    info.format = fmt;
    info.f16 = p[9] == 1;
    info.n = static_cast<std::size_t>(load_u64(p + 16));
    info.k = static_cast<std::size_t>(load_u64(p + 24));
    info.group_size = static_cast<std::size_t>(load_u64(p + 32));
    info.tiles = static_cast<std::size_t>(load_u64(p + 40));
    const auto tile_bytes = static_cast<std::size_t>(load_u64(p + 48));
    LOWBIT_DETAIL_CHECK(info.group_size > 0 && info.group_size % 32 == 0 && info.k % info.group_size == 0 &&
                            info.k <= (static_cast<std::size_t>(-1) >> 8),
                        errc::invalid_argument, "packed", static_cast<double>(info.group_size),
                        "has a bad K / group size");
    LOWBIT_DETAIL_CHECK(info.tiles == info.n / 16 + (info.n % 16 != 0), errc::invalid_argument, "packed",
                        static_cast<double>(info.tiles), "has a tile count that does not match N");
    info.geo = int4_geometry(fmt, info.f16, info.k, info.group_size);
    LOWBIT_DETAIL_CHECK(tile_bytes == info.geo.tile_bytes, errc::invalid_argument, "packed",
                        static_cast<double>(tile_bytes), "has a tile size that does not match K / G");
    LOWBIT_DETAIL_CHECK(tile_bytes == 0 || info.tiles <= (packed.size() - int4_header_bytes) / tile_bytes,  // K = 0: empty tiles
                        errc::size_mismatch, "packed.size()", packed.size(), "is smaller than the header's tiles");
    info.base = p + int4_header_bytes;
    return {};
}

// One output of the scalar path, from the packed layout, in the spec's order.
inline std::uint8_t packed_nibble(const std::uint8_t* tile, std::size_t j, std::size_t kk) noexcept {
    const std::uint8_t byte = tile[(kk / 8) * 64 + 4 * j + (kk % 4)];
    return static_cast<std::uint8_t>((kk % 8) < 4 ? byte & 0x0F : byte >> 4);
}
inline float packed_scale(const std::uint8_t* tile, const x86::int4_tile_geometry& geo, std::size_t j,
                          std::size_t g) noexcept {
    if (geo.f16) {
        std::uint16_t h = 0;
        std::memcpy(&h, tile + geo.scale_offset + g * 32 + 2 * j, 2);
        return f16_to_f32(h);
    }
    float s = 0;
    std::memcpy(&s, tile + geo.scale_offset + g * 64 + 4 * j, 4);
    return s;
}
inline std::int32_t packed_zero(const int4_packed_info& info, const std::uint8_t* tile, std::size_t j,
                                std::size_t g) noexcept {
    return info.format == format_id::u4 ? tile[info.geo.zp_offset + g * 16 + j] : 8;
}

inline void int4_f32_scalar(const int4_packed_info& info, std::size_t t, std::size_t tiles, const float* a,
                            std::size_t lda, std::size_t rows, const float* init, float* res) noexcept {
    const std::size_t groups = info.k / info.group_size, width = 16 * tiles;
    for (std::size_t m = 0; m < rows; ++m)
        for (std::size_t col = 0; col < width; ++col) {
            const std::uint8_t* tile = info.base + (t + col / 16) * info.geo.tile_bytes;
            const std::size_t j = col % 16;
            float y = init[col];
            for (std::size_t g = 0; g < groups; ++g) {
                const std::int32_t z = packed_zero(info, tile, j, g);
                float acc = 0.0f;
                for (std::size_t kk = g * info.group_size; kk < (g + 1) * info.group_size; ++kk)
                    acc = LOWBIT_FMAF(a[m * lda + kk], static_cast<float>(packed_nibble(tile, j, kk) - z), acc);
                y = LOWBIT_FMAF(acc, packed_scale(tile, info.geo, j, g), y);
            }
            res[m * width + col] = y;
        }
}

inline void int4_q8_scalar(const int4_packed_info& info, std::size_t t, std::size_t tiles, const std::int8_t* q,
                           const float* d, std::size_t rows, const float* init, float* res) noexcept {
    const std::size_t blocks = info.k / 32, width = 16 * tiles;
    for (std::size_t m = 0; m < rows; ++m)
        for (std::size_t col = 0; col < width; ++col) {
            const std::uint8_t* tile = info.base + (t + col / 16) * info.geo.tile_bytes;
            const std::size_t j = col % 16;
            float y = init[col];
            for (std::size_t b = 0; b < blocks; ++b) {
                const std::size_t g = b * 32 / info.group_size;
                const std::int32_t z = packed_zero(info, tile, j, g);
                std::int32_t dot = 0;
                for (std::size_t kk = b * 32; kk < b * 32 + 32; ++kk)
                    dot += std::int32_t(q[m * info.k + kk]) * (packed_nibble(tile, j, kk) - z);
                y = LOWBIT_FMAF(static_cast<float>(dot), d[m * blocks + b] * packed_scale(tile, info.geo, j, g), y);
            }
            res[m * width + col] = y;
        }
}

// Calls F(integral_constant R, integral_constant MB) with R = tiles and MB = rows, each 1, 2
// or 4 and R * MB <= 8 (the register budget of the micro-kernels).
template <class F>
void int4_with_block(std::size_t tiles, std::size_t rows, F&& f) {
    auto with_rows = [&](auto r) {
        constexpr int R = decltype(r)::value;
        if constexpr (R * 4 <= 8)
            if (rows == 4) return f(r, std::integral_constant<int, 4>{});
        if constexpr (R * 2 <= 8)
            if (rows == 2) return f(r, std::integral_constant<int, 2>{});
        return f(r, std::integral_constant<int, 1>{});
    };
    if (tiles == 4) return with_rows(std::integral_constant<int, 4>{});
    if (tiles == 2) return with_rows(std::integral_constant<int, 2>{});
    return with_rows(std::integral_constant<int, 1>{});
}

inline status check_int4_call(span<const std::uint8_t> packed, std::size_t n0, std::size_t n1, int4_isa isa,
                              int4_packed_info& info, int4_isa& use) {
    LOWBIT_DETAIL_TRY(parse_int4_packed(packed, info));
    if (n1 == static_cast<std::size_t>(-1)) n1 = info.n;
    LOWBIT_DETAIL_CHECK(n1 <= info.n, errc::out_of_range, "n1", n1, "must be <= N");
    LOWBIT_DETAIL_CHECK(n0 <= n1, errc::out_of_range, "n0", n0, "must be <= n1");
    LOWBIT_DETAIL_CHECK(int4_isa_available(isa), errc::invalid_argument, "isa", static_cast<int>(isa),
                        "is not compiled in or not supported by this CPU (int4_isa_available)");
    use = isa == int4_isa::best ? int4_best_isa() : isa;
    return {};
}

// The driver: tile groups covering [n0, n1), and for each group the rows of A in blocks; the
// kernel writes 16 * R results per row into a stack buffer, copied out for rows in range.
// Block shapes (R tiles x MB rows, int4_blocks): a GEMV runs 4 tiles per call (4 independent
// fma chains); with M >= 2 the rows share each converted weight, 2 tiles x 4 rows per call, and
// the tile group (2 * 18 KiB at K = 4096) stays in L1 / L2 for every row block, so the
// weights come from memory once.
// AVX2 has 16 registers instead of 32: half the tiles. NEON registers hold 4 lanes, a tile
// 4 of them: SDOT 2 tiles for a GEMV, 1 tile x 2 rows; ARMv8.0 (8 pair accumulators per
// tile and row) 1 tile x 1 or 2 rows.
struct int4_blocking {
    std::size_t gemv_tiles, gemm_tiles, gemm_rows;
};
constexpr int4_blocking int4_blocks(int4_isa isa) noexcept {
    return isa == int4_isa::avx2           ? int4_blocking{2, 1, 2}
           : isa == int4_isa::neon_dotprod ? int4_blocking{2, 1, 2}
           : isa == int4_isa::neon         ? int4_blocking{1, 1, 2}
                                           : int4_blocking{4, 2, 4};
}
constexpr std::size_t pow2_floor4(std::size_t v) noexcept { return v >= 4 ? 4 : v >= 2 ? 2 : 1; }

template <class Kernel>
void int4_drive(const int4_packed_info& info, int4_isa isa, std::size_t m_count, span<const float> bias, float* y,
                std::size_t ldy, std::size_t n0, std::size_t n1, Kernel&& kernel) {
    if (m_count == 0 || n0 >= n1) return;
    const int4_blocking bl = int4_blocks(isa);
    const std::size_t tile_cap = m_count == 1 ? bl.gemv_tiles : bl.gemm_tiles;
    const std::size_t row_cap = m_count == 1 ? 1 : bl.gemm_rows;
    const std::size_t t_end = (n1 + 15) / 16;
    std::size_t t = n0 / 16;
    while (t < t_end) {
        const std::size_t tiles = pow2_floor4(t_end - t < tile_cap ? t_end - t : tile_cap);
        alignas(64) float init[16 * 4];
        alignas(64) float res[16 * 8];  // R * MB <= 8
        for (std::size_t i = 0; i < 16 * tiles; ++i) {
            const std::size_t n = 16 * t + i;
            init[i] = bias.empty() || n >= info.n ? 0.0f : bias[n];
        }
        const std::size_t lo = n0 > 16 * t ? n0 : 16 * t, hi = n1 < 16 * (t + tiles) ? n1 : 16 * (t + tiles);
        for (std::size_t m = 0; m < m_count;) {
            const std::size_t rows = pow2_floor4(m_count - m < row_cap ? m_count - m : row_cap);
            kernel(t, tiles, m, rows, init, res);
            for (std::size_t r = 0; r < rows; ++r)
                for (std::size_t n = lo; n < hi; ++n) y[(m + r) * ldy + n] = res[r * 16 * tiles + (n - 16 * t)];
            m += rows;
        }
        t += tiles;
    }
}

}  // namespace detail

/// Bytes pack_int4 needs for these weights (0 if the sizes overflow size_t; pack_int4 then
/// reports the error).
inline std::size_t packed_int4_size(const int4_weights& w) noexcept {
    if (w.group_size == 0 || w.group_size % 32 != 0 || w.k % w.group_size != 0 || w.k > (static_cast<std::size_t>(-1) >> 8))
        return 0;
    const x86::int4_tile_geometry geo = detail::int4_geometry(w.format, !w.scales_f16.empty(), w.k, w.group_size);
    const std::size_t tiles = w.n / 16 + (w.n % 16 != 0);
    std::size_t body = 0;
    if (!lowbit::detail::mul_fits(tiles, geo.tile_bytes, body) || body > static_cast<std::size_t>(-1) - detail::int4_header_bytes)
        return 0;
    return detail::int4_header_bytes + body;
}

/// Packs int4 weights (checked as ref::gemm_int4_* check them: shape, finite scales, zero
/// points <= 15) into `packed` (exactly packed_int4_size(w) bytes; 64-byte alignment is
/// recommended) in the layout of the file comment. Errors: the weights' checks; packed.size()
/// != packed_int4_size(w). Nothing is written on error.
inline status pack_int4(const int4_weights& w, span<std::uint8_t> packed) {
    LOWBIT_DETAIL_TRY(lowbit::detail::check_int4_weights(w));
    LOWBIT_DETAIL_CHECK(w.k <= (static_cast<std::size_t>(-1) >> 8), errc::overflow, "w.k", w.k, "is too large");
    const std::size_t need = packed_int4_size(w);
    LOWBIT_DETAIL_CHECK(need != 0 && packed.size() == need, errc::size_mismatch, "packed.size()", packed.size(),
                        "must be packed_int4_size(w)");
    const bool f16 = !w.scales_f16.empty();
    const x86::int4_tile_geometry geo = detail::int4_geometry(w.format, f16, w.k, w.group_size);
    const std::size_t tiles = w.n / 16 + (w.n % 16 != 0), groups = w.groups();
    std::uint8_t* p = packed.data();
    std::memset(p, 0, packed.size());
    const std::uint32_t magic = detail::int4_packed_magic, version = 1;
    std::memcpy(p, &magic, 4);
    std::memcpy(p + 4, &version, 4);
    p[8] = static_cast<std::uint8_t>(w.format);
    p[9] = f16 ? 1 : 0;
    const std::uint64_t fields[5] = {w.n, w.k, w.group_size, tiles, geo.tile_bytes};
    std::memcpy(p + 16, fields, sizeof fields);
    const bool s4 = w.format == format_id::s4;
    for (std::size_t t = 0; t < tiles; ++t) {
        std::uint8_t* tile = p + detail::int4_header_bytes + t * geo.tile_bytes;
        for (std::size_t j = 0; j < 16; ++j) {
            const std::size_t row = 16 * t + j;
            if (row >= w.n) break;
            const std::uint8_t* src = w.data.data() + row * w.k / 2;  // K is even: rows start on a byte
            for (std::size_t c = 0; c < w.k / 8; ++c) {
                std::uint8_t* dst = tile + c * 64 + 4 * j;
                for (std::size_t i = 0; i < 4; ++i) {
                    const std::size_t k0 = 8 * c + i, k1 = k0 + 4;
                    int u0 = (src[k0 / 2] >> ((k0 % 2) * 4)) & 0x0F, u1 = (src[k1 / 2] >> ((k1 % 2) * 4)) & 0x0F;
                    if (s4) u0 ^= 8, u1 ^= 8;  // two's complement nibble -> q + 8
                    dst[i] = pack_nibbles(u0, u1);
                }
            }
            for (std::size_t g = 0; g < groups; ++g) {
                if (f16)
                    std::memcpy(tile + geo.scale_offset + g * 32 + 2 * j, &w.scales_f16[row * groups + g], 2);
                else
                    std::memcpy(tile + geo.scale_offset + g * 64 + 4 * j, &w.scales[row * groups + g], 4);
                if (!s4) tile[geo.zp_offset + g * 16 + j] = w.zero_points[row * groups + g];
            }
        }
        if (s4)  // padding rows: stored nibble 8 is the weight 0 (cosmetic: never written out)
            for (std::size_t j = w.n - 16 * t < 16 ? w.n - 16 * t : 16; j < 16; ++j)
                for (std::size_t c = 0; c < w.k / 8; ++c) std::memset(tile + c * 64 + 4 * j, 0x88, 4);
    }
    return {};
}

/// Y = A W^T with f32 activations, bit-identical to ref::gemm_int4_f32 on the weights that were
/// packed, for output rows n in [n0, n1) only (n1 = size_t(-1): N): writes y[m * ldy + n].
/// Errors: a buffer not written by pack_int4 (or too small); n0 > n1 or n1 > N; isa not
/// available; and those of ref::gemm_int4_f32 for a, lda, bias, y, ldy. Nothing written on error.
inline status gemm_int4_f32(span<const std::uint8_t> packed, span<const float> a, std::size_t m, std::size_t lda,
                            span<const float> bias, span<float> y, std::size_t ldy, std::size_t n0 = 0,
                            std::size_t n1 = static_cast<std::size_t>(-1), int4_isa isa = int4_isa::best) {
    detail::int4_packed_info info;
    int4_isa use = isa;
    LOWBIT_DETAIL_TRY(detail::check_int4_call(packed, n0, n1, isa, info, use));
    if (n1 == static_cast<std::size_t>(-1)) n1 = info.n;
    LOWBIT_DETAIL_TRY(lowbit::detail::check_int4_f32_activations(m, info.k, a.size(), lda));
    LOWBIT_DETAIL_TRY(lowbit::detail::check_int4_output(m, info.n, bias, y.size(), ldy));
    const bool u4 = info.format == format_id::u4;
    detail::int4_drive(info, use, m, bias, y.data(), ldy, n0, n1,
                       [&](std::size_t t, std::size_t tiles, std::size_t m0, std::size_t rows, const float* init,
                           float* res) {
                           const float* am = a.data() + m0 * lda;
                           const std::uint8_t* tile0 = info.base + t * info.geo.tile_bytes;
                           (void)tile0, (void)am, (void)u4;
                           switch (use) {
#if LOWBIT_INT4_AVX512
                               case int4_isa::avx512_vnni:
                               case int4_isa::avx512bw:
                                   detail::int4_with_block(tiles, rows, [&](auto R, auto MB) {
                                       if (u4)
                                           x86::int4_f32_avx512<decltype(R)::value, decltype(MB)::value, true>(tile0, info.geo, am, lda, init, res);
                                       else
                                           x86::int4_f32_avx512<decltype(R)::value, decltype(MB)::value, false>(tile0, info.geo, am, lda, init, res);
                                   });
                                   return;
#endif
#if LOWBIT_INT4_NEON
                               case int4_isa::neon:
                               case int4_isa::neon_dotprod:
                                   detail::int4_with_block(tiles, rows, [&](auto R, auto MB) {
                                       if (u4)
                                           arm::int4_f32_neon<decltype(R)::value, decltype(MB)::value, true>(tile0, info.geo, am, lda, init, res);
                                       else
                                           arm::int4_f32_neon<decltype(R)::value, decltype(MB)::value, false>(tile0, info.geo, am, lda, init, res);
                                   });
                                   return;
#endif
#if LOWBIT_INT4_AVX2
                               case int4_isa::avx2:
                                   detail::int4_with_block(tiles, rows, [&](auto R, auto MB) {
                                       if (u4)
                                           x86::int4_f32_avx2<decltype(R)::value, decltype(MB)::value, true>(tile0, info.geo, am, lda, init, res);
                                       else
                                           x86::int4_f32_avx2<decltype(R)::value, decltype(MB)::value, false>(tile0, info.geo, am, lda, init, res);
                                   });
                                   return;
#endif
                               default:
                                   detail::int4_f32_scalar(info, t, tiles, am, lda, rows, init, res);
                           }
                       });
    return {};
}

/// Y = A W^T with q8 activations (ref::quantize_q8 or kernels::quantize_q8 of A), bit-identical
/// to ref::gemm_int4_q8, for output rows [n0, n1) as gemm_int4_f32. Errors: as gemm_int4_f32
/// for packed / n0 / n1 / isa; those of ref::gemm_int4_q8 for a (sizes, finite scales, block
/// sums equal to the sums of q), bias, y, ldy. Nothing written on error.
inline status gemm_int4_q8(span<const std::uint8_t> packed, const q8_activations& a, span<const float> bias,
                           span<float> y, std::size_t ldy, std::size_t n0 = 0,
                           std::size_t n1 = static_cast<std::size_t>(-1), int4_isa isa = int4_isa::best) {
    detail::int4_packed_info info;
    int4_isa use = isa;
    LOWBIT_DETAIL_TRY(detail::check_int4_call(packed, n0, n1, isa, info, use));
    if (n1 == static_cast<std::size_t>(-1)) n1 = info.n;
    LOWBIT_DETAIL_TRY(lowbit::detail::check_q8_activations(a, info.k));
    LOWBIT_DETAIL_TRY(lowbit::detail::check_int4_output(a.m, info.n, bias, y.size(), ldy));
    const bool u4 = info.format == format_id::u4;
    const std::size_t blocks = info.k / 32;
    detail::int4_drive(info, use, a.m, bias, y.data(), ldy, n0, n1,
                       [&](std::size_t t, std::size_t tiles, std::size_t m0, std::size_t rows, const float* init,
                           float* res) {
                           const std::int8_t* q = a.q.data() + m0 * info.k;
                           const float* d = a.scales.data() + m0 * blocks;
                           const std::int32_t* sums = a.sums.data() + m0 * blocks;
                           const std::uint8_t* tile0 = info.base + t * info.geo.tile_bytes;
                           (void)tile0, (void)sums, (void)u4;
                           switch (use) {
#if LOWBIT_INT4_AVX512_VNNI
                               case int4_isa::avx512_vnni:
                                   detail::int4_with_block(tiles, rows, [&](auto R, auto MB) {
                                       if (u4)
                                           x86::int4_q8_avx512<decltype(R)::value, decltype(MB)::value, true, true>(tile0, info.geo, q, d, sums, init, res);
                                       else
                                           x86::int4_q8_avx512<decltype(R)::value, decltype(MB)::value, false, true>(tile0, info.geo, q, d, sums, init, res);
                                   });
                                   return;
#endif
#if LOWBIT_INT4_AVX512
                               case int4_isa::avx512bw:
                                   detail::int4_with_block(tiles, rows, [&](auto R, auto MB) {
                                       if (u4)
                                           x86::int4_q8_avx512<decltype(R)::value, decltype(MB)::value, true, false>(tile0, info.geo, q, d, sums, init, res);
                                       else
                                           x86::int4_q8_avx512<decltype(R)::value, decltype(MB)::value, false, false>(tile0, info.geo, q, d, sums, init, res);
                                   });
                                   return;
#endif
#if LOWBIT_INT4_NEON
                               case int4_isa::neon:
                                   detail::int4_with_block(tiles, rows, [&](auto R, auto MB) {
                                       if (u4)
                                           arm::int4_q8_neon<decltype(R)::value, decltype(MB)::value, true>(tile0, info.geo, q, d, sums, init, res);
                                       else
                                           arm::int4_q8_neon<decltype(R)::value, decltype(MB)::value, false>(tile0, info.geo, q, d, sums, init, res);
                                   });
                                   return;
                               case int4_isa::neon_dotprod:
                                   detail::int4_with_block(tiles, rows, [&](auto R, auto MB) {
                                       if (u4)
                                           arm::int4_q8_dotprod<decltype(R)::value, decltype(MB)::value, true>(tile0, info.geo, q, d, sums, init, res);
                                       else
                                           arm::int4_q8_dotprod<decltype(R)::value, decltype(MB)::value, false>(tile0, info.geo, q, d, sums, init, res);
                                   });
                                   return;
#endif
#if LOWBIT_INT4_AVX2
                               case int4_isa::avx2:
                                   detail::int4_with_block(tiles, rows, [&](auto R, auto MB) {
                                       if (u4)
                                           x86::int4_q8_avx2<decltype(R)::value, decltype(MB)::value, true>(tile0, info.geo, q, d, sums, init, res);
                                       else
                                           x86::int4_q8_avx2<decltype(R)::value, decltype(MB)::value, false>(tile0, info.geo, q, d, sums, init, res);
                                   });
                                   return;
#endif
                               default:
                                   detail::int4_q8_scalar(info, t, tiles, q, d, rows, init, res);
                           }
                       });
    return {};
}

/// Quantizes activations into q8 blocks: the same contract, checks and bits as
/// ref::quantize_q8 (an AVX-512 loop when isa allows it, else the reference loop).
inline status quantize_q8(span<const float> x, std::size_t m, std::size_t k, std::size_t ldx,
                          const q8_activations_buffer& out, int4_isa isa = int4_isa::best) {
    LOWBIT_DETAIL_CHECK(int4_isa_available(isa), errc::invalid_argument, "isa", static_cast<int>(isa),
                        "is not compiled in or not supported by this CPU (int4_isa_available)");
    const int4_isa use = isa == int4_isa::best ? int4_best_isa() : isa;
#if LOWBIT_INT4_AVX512
    if (use == int4_isa::avx512bw || use == int4_isa::avx512_vnni) {
        // the sizes are checked by the reference's checks; on any error (or a non-finite x) it
        // reports and writes nothing
        std::size_t numel = 0;
        const bool shapes_ok = k % int4_block == 0 && out.m == m && out.k == k &&
                               lowbit::detail::mul_fits(m, k, numel) && out.q.size() == numel &&
                               out.scales.size() == numel / int4_block && out.sums.size() == numel / int4_block &&
                               (m == 0 || (ldx >= k && m - 1 <= (static_cast<std::size_t>(-1) - k) / (ldx == 0 ? 1 : ldx) &&
                                           x.size() >= (m - 1) * ldx + k));
        if (shapes_ok && x86::int4_all_finite_avx512(x.data(), m, k, ldx)) {
            x86::int4_quantize_q8_avx512(x.data(), m, k, ldx, out.q.data(), out.scales.data(), out.sums.data());
            return {};
        }
    }
#endif
    (void)use;
    return ref::quantize_q8(x, m, k, ldx, out);
}

}  // namespace kernels
}  // namespace lowbit

#endif  // LOWBIT_KERNELS_GEMM_INT4_HPP
