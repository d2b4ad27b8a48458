// tests/quant/qat_golden.hpp: reading tests/golden/data/qat_*.txt (written by
// tests/golden/generate_qat.py) for the QAT tests: tests/golden_reader.hpp's reader and
// report, and the data files' generator.
#ifndef LOWBIT_TESTS_QUANT_QAT_GOLDEN_HPP
#define LOWBIT_TESTS_QUANT_QAT_GOLDEN_HPP

#include "golden_reader.hpp"
#include "lowbit_catch.hpp"

#include <string>
#include <vector>

namespace qat_golden {

using golden::bits;
using golden::report;
using golden::row;
using golden::show;

/// The data rows of a file written by tests/golden/generate_qat.py.
inline std::vector<row> load(const std::string& name) { return golden::load(name, "generate_qat.py"); }

}  // namespace qat_golden

#endif  // LOWBIT_TESTS_QUANT_QAT_GOLDEN_HPP
