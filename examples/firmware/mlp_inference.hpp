// mlp_inference.hpp (examples/firmware): integer-only inference of the demo's quantized MLP
// (784-256-128-10, W8A8) for microcontrollers, and the check that runs it on the test images
// the generated model header embeds. Freestanding: only lowbit/core/ (ref::gemm with its
// requantizing epilogue), no heap, no exceptions needed, no float on the inference path.
//
// The scheme is the one of examples/ptq_vs_qat/quantized_mlp.hpp's integer_mlp, bit for bit:
// every layer computes, for output channel n of one image,
//   acc[n] = sum_k (x[k] - input_zero_point) * w[n][k]              (exact int32)
//   y[n]   = clamp(output_zero_point + MultiplyByQuantizedMultiplier(acc[n] + bias[n], M[n]),
//                  0, 255)                                           (u8, TFLite double rounding)
// with s8 symmetric per-channel weights (w = [out][in], torch.nn.Linear's layout), int32 bias
// (bias / (s_in * s_w[n]), rounded) and M[n] = s_in * s_w[n] / s_out as a fixed-point
// multiplier and shift (lowbit::quantize_multiplier). Hidden layers' outputs have zero point 0
// (their min / max range starts at the ReLU's 0), so the clamp at 0 is the ReLU. The logits
// are u8 codes; the class is the first index of the largest code.
#ifndef LOWBIT_EXAMPLES_FIRMWARE_MLP_INFERENCE_HPP
#define LOWBIT_EXAMPLES_FIRMWARE_MLP_INFERENCE_HPP

#include <cstddef>
#include <cstdint>

#include <lowbit/core/fixed_point.hpp>
#include <lowbit/core/gemm.hpp>
#include <lowbit/core/scheme.hpp>
#include <lowbit/core/span.hpp>
#include <lowbit/core/status.hpp>

namespace fw {

/// One quantized linear layer, all arrays in flash (const).
struct layer {
    std::size_t n = 0;                                        ///< outputs
    std::size_t k = 0;                                        ///< inputs
    const std::int8_t* weights = nullptr;                     ///< n x k, row-major ([out][in])
    const std::int32_t* bias = nullptr;                       ///< n
    const lowbit::quantized_multiplier* multipliers = nullptr;  ///< n (multiplier, shift)
    std::int32_t input_zero_point = 0;                        ///< u8 input codes' zero point
    std::int32_t output_zero_point = 0;                       ///< u8 output codes' zero point
};

/// The layers, in order; layer l's k equals layer l-1's n.
struct model {
    const layer* layers = nullptr;
    std::size_t count = 0;
};

/// Bytes of scratch infer() needs: two buffers of the widest hidden layer (ping-pong), 0 for a
/// one-layer model.
constexpr std::size_t scratch_size(const model& m) noexcept {
    std::size_t w = 0;
    for (std::size_t l = 0; l + 1 < m.count; ++l) w = m.layers[l].n > w ? m.layers[l].n : w;
    return m.count > 2 ? 2 * w : w;
}

namespace detail {
inline lowbit::status fail(lowbit::errc code, const char* argument, std::size_t value, const char* expected) {
    return lowbit::status{code, argument, static_cast<double>(value), expected};
}
}  // namespace detail

/// out (rows x L.n) = requantize(in (rows x L.k) * L.weights^T): lowbit::ref::gemm with the
/// fixed-point requantizing epilogue into u8 [0, 255].
inline lowbit::status layer_gemm(const layer& L, const std::uint8_t* in, std::size_t rows, std::uint8_t* out) {
    const lowbit::gemm_a<std::uint8_t> a{{in, rows * L.k}, L.k, L.input_zero_point};
    const lowbit::gemm_b b{{L.weights, L.n * L.k}, L.k, lowbit::weight_layout::n_by_k, {}};
    lowbit::requantize_params p;
    p.multipliers = {L.multipliers, L.n};
    p.bias = {L.bias, L.n};
    p.zero_point = L.output_zero_point;
    return lowbit::ref::gemm(lowbit::gemm_dims{rows, L.n, L.k}, a, b, lowbit::scheme<lowbit::u8>{}, p,
                             lowbit::span<std::uint8_t>(out, rows * L.n), L.n);
}

/// Output codes (u8, layers[count-1].n of them) of one input image (u8 codes, layers[0].k).
/// Errors, each naming the argument and its value, with nothing written to `output`:
/// an empty model or a null array ("m.count", "m.layers[l]" = l); a layer whose k differs from
/// the previous n ("m.layers[l].k"); input / output sizes that differ from the model's
/// ("input.size()", "output.size()"); scratch smaller than scratch_size(m) ("scratch.size()");
/// then the checks of lowbit::ref::gemm (zero points outside [0, 255], a multiplier not 0 or in
/// [2^30, 2^31), a shift outside [-31, 30], K above gemm_max_k), which are made for every layer
/// before the last one writes `output`. With exceptions enabled, lowbit's own checks throw
/// lowbit::error (core/status.hpp); this function's checks always return the status.
inline lowbit::status infer(const model& m, lowbit::span<const std::uint8_t> input, lowbit::span<std::uint8_t> output,
                            lowbit::span<std::uint8_t> scratch) {
    using lowbit::errc;
    if (m.count == 0 || m.layers == nullptr) return detail::fail(errc::invalid_argument, "m.count", m.count, "must be >= 1");
    for (std::size_t l = 0; l < m.count; ++l) {
        const layer& L = m.layers[l];
        if (L.weights == nullptr || L.bias == nullptr || L.multipliers == nullptr || L.n == 0 || L.k == 0)
            return detail::fail(errc::invalid_argument, "m.layers[l] (index)", l, "needs n, k > 0 and non-null arrays");
        if (L.k > static_cast<std::size_t>(-1) / L.n)
            return detail::fail(errc::overflow, "m.layers[l].k", L.k, "n * k must fit size_t");
        if (l > 0 && L.k != m.layers[l - 1].n)
            return detail::fail(errc::size_mismatch, "m.layers[l].k", L.k, "must equal the previous layer's n");
        // lowbit's checks of every layer before anything is written: ref::gemm with M = 0
        // checks zero points, multipliers, shifts and the output scheme, and writes nothing
        if (const lowbit::status s = layer_gemm(L, nullptr, 0, nullptr); !s.ok()) return s;
    }
    if (input.size() != m.layers[0].k)
        return detail::fail(errc::size_mismatch, "input.size()", input.size(), "must equal layers[0].k");
    if (output.size() != m.layers[m.count - 1].n)
        return detail::fail(errc::size_mismatch, "output.size()", output.size(), "must equal the last layer's n");
    if (scratch.size() < scratch_size(m))
        return detail::fail(errc::size_mismatch, "scratch.size()", scratch.size(), "must be >= fw::scratch_size(m)");

    const std::size_t half = m.count > 2 ? scratch.size() / 2 : scratch.size();
    const std::uint8_t* in = input.data();
    for (std::size_t l = 0; l < m.count; ++l) {
        const layer& L = m.layers[l];
        const bool last = l + 1 == m.count;
        std::uint8_t* out = last ? output.data() : scratch.data() + (l % 2) * half;
        if (const lowbit::status s = layer_gemm(L, in, 1, out); !s.ok()) return s;
        in = out;
    }
    return {};
}

/// Index of the largest code (the first one on ties), as integer_mlp::predict. n >= 1.
constexpr std::size_t argmax(const std::uint8_t* codes, std::size_t n) noexcept {
    std::size_t best = 0;
    for (std::size_t i = 1; i < n; ++i)
        if (codes[i] > codes[best]) best = i;
    return best;
}

/// FNV-1a (32 bit) over bytes, continuing from h: the checksum the host and the firmware print.
constexpr std::uint32_t fnv1a(const std::uint8_t* p, std::size_t n, std::uint32_t h = 2166136261u) noexcept {
    for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 16777619u;
    return h;
}

/// The embedded test images and what the host's integer engine (lowbit::kernels::gemm through
/// demo::integer_mlp) produced for them.
struct test_set {
    std::size_t count = 0;                      ///< images
    std::size_t pixels = 0;                     ///< per image
    std::size_t classes = 0;                    ///< output codes per image
    const std::uint8_t* images = nullptr;       ///< count x pixels
    const std::uint8_t* labels = nullptr;       ///< count (true classes)
    const std::uint8_t* expected_codes = nullptr;    ///< count x classes
    const std::uint8_t* expected_classes = nullptr;  ///< count
};

/// What run_test_set found.
struct report {
    std::size_t images = 0;
    std::size_t code_mismatches = 0;   ///< images whose codes differ from the host's in any byte
    std::size_t class_mismatches = 0;  ///< images whose predicted class differs from the host's
    std::size_t correct = 0;           ///< predictions equal to the label
    std::uint32_t checksum = 2166136261u;  ///< fnv1a over every image's output codes, in order
    lowbit::status status{};           ///< the first failed infer(), if any (then the rest is partial)
};

/// Runs infer() on every image of t, compares with the host's codes and classes bit for bit;
/// `each(i, codes, predicted_class)` is called per image (printing, on host and firmware).
/// `codes` must hold t.classes bytes, `scratch` scratch_size(m).
template <class Each>
report run_test_set(const model& m, const test_set& t, lowbit::span<std::uint8_t> codes,
                    lowbit::span<std::uint8_t> scratch, Each&& each) {
    report r;
    for (std::size_t i = 0; i < t.count; ++i) {
        r.status = infer(m, {t.images + i * t.pixels, t.pixels}, codes, scratch);
        if (!r.status.ok()) return r;
        const std::size_t cls = argmax(codes.data(), codes.size());
        bool same = codes.size() == t.classes;
        for (std::size_t j = 0; same && j < t.classes; ++j) same = codes[j] == t.expected_codes[i * t.classes + j];
        r.code_mismatches += same ? 0 : 1;
        r.class_mismatches += cls == t.expected_classes[i] ? 0 : 1;
        r.correct += cls == t.labels[i] ? 1 : 0;
        r.checksum = fnv1a(codes.data(), codes.size(), r.checksum);
        ++r.images;
        each(i, codes, cls);
    }
    return r;
}

}  // namespace fw

#endif  // LOWBIT_EXAMPLES_FIRMWARE_MLP_INFERENCE_HPP
