// heap_negative.cpp (tests/firmware): the no-heap check's negative test. This image allocates
// (operator new[], malloc), so linking it MUST fail: the --wrap flags of every firmware image
// turn the references into undefined __wrap__Znaj / __wrap_malloc. tests/firmware/run.sh builds
// it and fails if the link succeeds or fails for another reason.
#include <cstdint>
#include <cstdlib>

volatile std::uint32_t heap_negative_size = 16;
int* volatile heap_negative_array = nullptr;  // kept: the compiler may not elide the allocation
void* volatile heap_negative_block = nullptr;

int main() {
    heap_negative_array = new int[heap_negative_size];
    heap_negative_block = std::malloc(heap_negative_size);
    return heap_negative_array != nullptr && heap_negative_block != nullptr ? 0 : 1;
}
