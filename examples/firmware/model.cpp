// model.cpp (examples/firmware): fw::model / fw::test_set over the generated arrays.
#include "model.hpp"

#include "mlp_model_data.hpp"

namespace fw {
namespace {

constexpr layer layers[fw_data::layer_count] = {
    {fw_data::fc0_out, fw_data::fc0_in, fw_data::fc0_weight, fw_data::fc0_bias, fw_data::fc0_multiplier,
     fw_data::fc0_input_zero_point, fw_data::fc0_output_zero_point},
    {fw_data::fc1_out, fw_data::fc1_in, fw_data::fc1_weight, fw_data::fc1_bias, fw_data::fc1_multiplier,
     fw_data::fc1_input_zero_point, fw_data::fc1_output_zero_point},
    {fw_data::fc2_out, fw_data::fc2_in, fw_data::fc2_weight, fw_data::fc2_bias, fw_data::fc2_multiplier,
     fw_data::fc2_input_zero_point, fw_data::fc2_output_zero_point},
};
constexpr model the_model{layers, fw_data::layer_count};
constexpr test_set the_test_set{fw_data::test_count,     fw_data::pixels,         fw_data::classes,
                                fw_data::test_images,    fw_data::test_labels,    fw_data::expected_codes,
                                fw_data::expected_classes};
static_assert(scratch_size(the_model) <= demo_scratch_bytes, "demo_scratch_bytes is too small for the model");
static_assert(fw_data::classes == demo_classes, "the model has 10 outputs");

}  // namespace

const model& demo_model() noexcept { return the_model; }
const test_set& demo_test_set() noexcept { return the_test_set; }

}  // namespace fw
