// tests/fuzz/fuzz_npy.cpp: lowbit::xtensor::load_npy on arbitrary files. The input's first byte
// picks the element type asked for (float, int8, uint8, int32) and whether the rest is taken
// as is or behind a well-formed .npy preamble (magic, version 1.0 / 2.0 / 3.0, the header
// length field set to the header text's real length or to the fuzzer's value), so the
// dictionary parser and the size checks are reached. The bytes are written to a file in
// $TMPDIR (one per process) and loaded. Required: a lowbit::xtensor::npy_error (a
// lowbit::error naming "path") or an array whose size is the product of its shape; never a
// crash, an out-of-bounds access, UB, or an allocation the file's size does not justify
// (libFuzzer's -rss_limit_mb / -malloc_limit_mb catch those).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <unistd.h>

#include <lowbit/xtensor.hpp>

#include "fuzz_common.hpp"

namespace {

const std::string& temp_path() {
    static const std::string path = [] {
        const char* dir = std::getenv("TMPDIR");
        return std::string(dir && *dir ? dir : "/tmp") + "/lowbit_fuzz_npy_" + std::to_string(::getpid()) + ".npy";
    }();
    // removed at exit (libFuzzer ends with exit()); registered after `path` exists, so it runs
    // before `path` is destroyed
    static const int cleanup = std::atexit([] { std::remove(temp_path().c_str()); });
    (void)cleanup;
    return path;
}

template <class T>
void load(const std::string& path) {
    try {
        const lowbit::xtensor::array<T> a = lowbit::xtensor::load_npy<T>(path);
        std::size_t n = 1;
        for (std::size_t d : a.shape()) n *= d;
        FUZZ_REQUIRE(n == a.size(), "loaded array of %zu elements, shape product %zu", a.size(), n);
        volatile T sink{};
        for (std::size_t i = 0; i < a.size(); ++i) sink = a.data()[i];  // every element readable
        (void)sink;
    } catch (const lowbit::xtensor::npy_error& e) {
        FUZZ_REQUIRE(std::string(e.status().argument) == "path", "npy_error names '%s'", e.status().argument);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider p(data, size);
    const std::uint8_t mode = p.ConsumeIntegral<std::uint8_t>();
    std::string bytes;
    if ((mode & 3) == 0) {
        bytes = p.ConsumeRemainingBytesAsString();
    } else {
        const unsigned major = 1 + (mode >> 2) % 3;
        const std::string header = p.ConsumeRandomLengthString(200);
        const std::size_t len = (mode & 3) == 1 ? header.size() : p.ConsumeIntegral<std::uint32_t>();
        bytes = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
        for (unsigned i = 0; i < (major == 1 ? 2u : 4u); ++i) bytes += static_cast<char>((len >> (8 * i)) & 0xFF);
        bytes += header + p.ConsumeRemainingBytesAsString();
    }
    {
        std::ofstream out(temp_path(), std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    switch ((mode >> 4) % 4) {
        case 0: load<float>(temp_path()); break;
        case 1: load<std::int8_t>(temp_path()); break;
        case 2: load<std::uint8_t>(temp_path()); break;
        default: load<std::int32_t>(temp_path()); break;
    }
    return 0;
}
