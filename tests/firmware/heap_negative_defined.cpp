// heap_negative_defined.cpp (tests/firmware): the second negative test of the no-heap check.
// This image brings its own malloc (a bump allocator in the same object file as its caller),
// which --wrap cannot see (a reference inside the defining object is not wrapped); the
// post-link symbol check (cortex_m/check_no_heap.cmake) must reject the image.
#include <cstddef>
#include <cstdint>

namespace {
alignas(8) unsigned char arena[256];
std::size_t used = 0;
}  // namespace

extern "C" void* malloc(std::size_t n) {
    if (n > sizeof arena - used) return nullptr;
    void* p = arena + used;
    used += (n + 7) / 8 * 8;
    return p;
}

volatile std::uint32_t heap_negative_size = 16;
void* volatile heap_negative_block = nullptr;

int main() {
    heap_negative_block = malloc(heap_negative_size);
    return heap_negative_block != nullptr ? 0 : 1;
}
