#include "util/allocator.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace ttt {

void tune_allocator_for_tensors() {
  const char* keep = std::getenv("TTT_DEFAULT_MALLOC");
  if (keep != nullptr && std::strcmp(keep, "1") == 0) return;
  mallopt(M_MMAP_MAX, 0);              // no mmap-backed chunks: large blocks come from the heap
  mallopt(M_TRIM_THRESHOLD, 1 << 30);  // ... and freed heap memory stays for the next step
  mallopt(M_TOP_PAD, 64 << 20);        // grow the heap in large steps
}

}  // namespace ttt
