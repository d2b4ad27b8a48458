// fashion_mnist.hpp (examples): reads Fashion-MNIST from Debian's dataset-fashion-mnist
// package: four gzip-compressed IDX files under /usr/share/datasets/fashion-mnist (or a
// directory given by the caller). Every header field is checked against the bytes that are
// actually there; nothing is trusted. Errors throw std::runtime_error naming the file.
#ifndef LOWBIT_EXAMPLES_FASHION_MNIST_HPP
#define LOWBIT_EXAMPLES_FASHION_MNIST_HPP

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace demo {

/// Where Debian's dataset-fashion-mnist package puts the files.
inline const char* default_fashion_mnist_dir() { return "/usr/share/datasets/fashion-mnist"; }

/// One split: count images of 28 x 28 = 784 pixels, row-major, as bytes (0..255) and the
/// labels 0..9.
struct dataset {
    static constexpr std::size_t pixels = 784;
    static constexpr std::size_t classes = 10;
    std::size_t count = 0;
    std::vector<std::uint8_t> images;  ///< count * 784
    std::vector<std::uint8_t> labels;  ///< count

    /// Image i as floats in [0, 1] (pixel / 255, the usual ToTensor scaling) into out[0..784).
    void image(std::size_t i, float* out) const {
        const std::uint8_t* p = images.data() + i * pixels;
        for (std::size_t j = 0; j < pixels; ++j) out[j] = static_cast<float>(p[j]) / 255.0f;
    }
    /// Images [first, first + n) as a row-major n x 784 float matrix.
    std::vector<float> batch(std::size_t first, std::size_t n) const {
        std::vector<float> x(n * pixels);
        for (std::size_t i = 0; i < n; ++i) image(first + i, x.data() + i * pixels);
        return x;
    }
    /// The examples [first, first + n) as a new dataset.
    dataset slice(std::size_t first, std::size_t n) const {
        if (first > count || n > count - first)
            throw std::runtime_error("fashion-mnist: slice [" + std::to_string(first) + ", +" + std::to_string(n) +
                                     ") outside " + std::to_string(count) + " examples");
        dataset d;
        d.count = n;
        d.images.assign(images.begin() + static_cast<std::ptrdiff_t>(first * pixels),
                        images.begin() + static_cast<std::ptrdiff_t>((first + n) * pixels));
        d.labels.assign(labels.begin() + static_cast<std::ptrdiff_t>(first),
                        labels.begin() + static_cast<std::ptrdiff_t>(first + n));
        return d;
    }
};

namespace detail {

// The whole decompressed content of a gzip file (or a plain file: zlib reads those as is).
inline std::vector<std::uint8_t> read_gz(const std::string& path) {
    gzFile f = gzopen(path.c_str(), "rb");
    if (f == nullptr)
        throw std::runtime_error("fashion-mnist: cannot open '" + path +
                                 "' (install Debian's dataset-fashion-mnist package: apt-get install -y "
                                 "dataset-fashion-mnist, or pass the directory holding the IDX files)");
    std::vector<std::uint8_t> out;
    std::uint8_t buf[1 << 16];
    for (;;) {
        const int got = gzread(f, buf, sizeof buf);
        if (got < 0) {
            int code = 0;
            const std::string msg = gzerror(f, &code);
            gzclose(f);
            throw std::runtime_error("fashion-mnist: '" + path + "' is corrupt: " + msg);
        }
        if (got == 0) break;
        out.insert(out.end(), buf, buf + got);
    }
    gzclose(f);
    return out;
}

inline std::uint32_t be32(const std::vector<std::uint8_t>& b, std::size_t at) {
    return std::uint32_t(b[at]) << 24 | std::uint32_t(b[at + 1]) << 16 | std::uint32_t(b[at + 2]) << 8 |
           std::uint32_t(b[at + 3]);
}

// IDX: magic 0x0000 08 <rank>, then rank big-endian u32 dims, then the u8 data.
inline std::vector<std::uint8_t> read_idx(const std::string& path, std::uint32_t rank,
                                          std::vector<std::uint32_t>& dims) {
    std::vector<std::uint8_t> b = read_gz(path);
    const std::size_t header = 4 + 4 * std::size_t(rank);
    if (b.size() < header)
        throw std::runtime_error("fashion-mnist: '" + path + "' is truncated (" + std::to_string(b.size()) +
                                 " bytes, header needs " + std::to_string(header) + ")");
    const std::uint32_t magic = be32(b, 0);
    if (magic != (0x0800u | rank))
        throw std::runtime_error("fashion-mnist: '" + path + "' has IDX magic " + std::to_string(magic) +
                                 ", expected " + std::to_string(0x0800u | rank) + " (u8 data of rank " +
                                 std::to_string(rank) + ")");
    dims.resize(rank);
    std::uint64_t total = 1;
    for (std::uint32_t r = 0; r < rank; ++r) {
        dims[r] = be32(b, 4 + 4 * std::size_t(r));
        total *= dims[r];
        if (total > (std::uint64_t(1) << 32))
            throw std::runtime_error("fashion-mnist: '" + path + "' declares an absurd size");
    }
    if (b.size() - header != total)
        throw std::runtime_error("fashion-mnist: '" + path + "' holds " + std::to_string(b.size() - header) +
                                 " data bytes, its header declares " + std::to_string(total));
    b.erase(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(header));
    return b;
}

}  // namespace detail

/// Loads the training split (train = true, 60000 examples) or the test split (10000) from
/// `dir`. Errors (std::runtime_error naming the file): missing file (the message names the
/// Debian package), corrupt gzip, wrong magic, sizes that disagree with the header or with the
/// other file, labels outside 0..9.
inline dataset load_fashion_mnist(const std::string& dir, bool train) {
    const std::string prefix = dir + (train ? "/train-" : "/t10k-");
    std::vector<std::uint32_t> idims, ldims;
    dataset d;
    d.images = detail::read_idx(prefix + "images-idx3-ubyte.gz", 3, idims);
    d.labels = detail::read_idx(prefix + "labels-idx1-ubyte.gz", 1, ldims);
    if (idims[1] != 28 || idims[2] != 28)
        throw std::runtime_error("fashion-mnist: '" + prefix + "images-idx3-ubyte.gz' has " +
                                 std::to_string(idims[1]) + " x " + std::to_string(idims[2]) +
                                 " images, expected 28 x 28");
    if (idims[0] != ldims[0])
        throw std::runtime_error("fashion-mnist: " + std::to_string(idims[0]) + " images but " +
                                 std::to_string(ldims[0]) + " labels under '" + dir + "'");
    d.count = idims[0];
    for (std::size_t i = 0; i < d.count; ++i)
        if (d.labels[i] >= dataset::classes)
            throw std::runtime_error("fashion-mnist: label " + std::to_string(d.labels[i]) + " at index " +
                                     std::to_string(i) + " is outside 0..9");
    return d;
}

}  // namespace demo

#endif  // LOWBIT_EXAMPLES_FASHION_MNIST_HPP
