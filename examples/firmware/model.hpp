// model.hpp (examples/firmware): the generated model and test images (mlp_model_data.hpp,
// written by firmware_gen) as fw::model / fw::test_set views. model.cpp is the one translation
// unit that includes the generated arrays; everything stays in flash (const).
#ifndef LOWBIT_EXAMPLES_FIRMWARE_MODEL_HPP
#define LOWBIT_EXAMPLES_FIRMWARE_MODEL_HPP

#include "mlp_inference.hpp"

namespace fw {

/// The embedded W8A8 MLP.
const model& demo_model() noexcept;
/// The embedded test images and the host integer engine's outputs for them.
const test_set& demo_test_set() noexcept;

/// Scratch bytes the embedded model needs (2 x 256).
constexpr std::size_t demo_scratch_bytes = 512;
/// Output codes per image.
constexpr std::size_t demo_classes = 10;

}  // namespace fw

#endif  // LOWBIT_EXAMPLES_FIRMWARE_MODEL_HPP
