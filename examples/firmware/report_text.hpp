// report_text.hpp (examples/firmware): the text the host test and the firmware print for each
// image and at the end, formatted without printf (newlib's printf allocates), so that
// tests/firmware/run.sh can compare the emulated Cortex-M's transcript with the host's line by
// line. Freestanding.
#ifndef LOWBIT_EXAMPLES_FIRMWARE_REPORT_TEXT_HPP
#define LOWBIT_EXAMPLES_FIRMWARE_REPORT_TEXT_HPP

#include <cstddef>
#include <cstdint>

namespace fw {

/// Appends text to a fixed buffer, always NUL-terminated, silently truncating.
class text {
public:
    text(char* buf, std::size_t cap) noexcept : m_buf(buf), m_cap(cap) {
        if (m_cap > 0) m_buf[0] = '\0';
    }
    text& str(const char* s) noexcept {
        while (*s != '\0') put(*s++);
        return *this;
    }
    text& dec(std::uint32_t v) noexcept {
        char d[10];
        std::size_t n = 0;
        do {
            d[n++] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v != 0);
        while (n > 0) put(d[--n]);
        return *this;
    }
    text& hex(std::uint32_t v, int digits) noexcept {
        for (int i = digits - 1; i >= 0; --i) put("0123456789abcdef"[(v >> (4 * i)) & 0xFu]);
        return *this;
    }
    const char* c_str() const noexcept { return m_buf; }

private:
    void put(char c) noexcept {
        if (m_len + 1 < m_cap) {
            m_buf[m_len++] = c;
            m_buf[m_len] = '\0';
        }
    }
    char* m_buf;
    std::size_t m_cap;
    std::size_t m_len = 0;
};

/// "image 3 label 1 class 1 codes 00 1a ...\n"
inline const char* image_line(text& t, std::size_t i, std::uint8_t label, std::size_t cls, const std::uint8_t* codes,
                              std::size_t n) noexcept {
    t.str("image ").dec(static_cast<std::uint32_t>(i)).str(" label ").dec(label).str(" class ");
    t.dec(static_cast<std::uint32_t>(cls)).str(" codes");
    for (std::size_t j = 0; j < n; ++j) t.str(" ").hex(codes[j], 2);
    return t.str("\n").c_str();
}

/// "images 32 code-mismatches 0 class-mismatches 0 correct 29 checksum 0x1234abcd\n"
inline const char* summary_line(text& t, std::size_t images, std::size_t code_mismatches,
                                std::size_t class_mismatches, std::size_t correct, std::uint32_t checksum) noexcept {
    t.str("images ").dec(static_cast<std::uint32_t>(images)).str(" code-mismatches ");
    t.dec(static_cast<std::uint32_t>(code_mismatches)).str(" class-mismatches ");
    t.dec(static_cast<std::uint32_t>(class_mismatches)).str(" correct ").dec(static_cast<std::uint32_t>(correct));
    return t.str(" checksum 0x").hex(checksum, 8).str("\n").c_str();
}

}  // namespace fw

#endif  // LOWBIT_EXAMPLES_FIRMWARE_REPORT_TEXT_HPP
