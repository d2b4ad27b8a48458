// tests/fuzz/fuzz_isas.cpp: the library the fuzz targets share; its real content is the ISA
// files lowbit_add_runtime_dispatch generates (the kernel loops for AVX-512BW; AVX2 and SSE4.1
// too with LOWBIT_FUZZ_ALL_ISAS=ON).
#include "lowbit_runtime_isas.hpp"
