// Process-wide allocator setup for tensor workloads, called once at the start of a program.
#pragma once

#include <string>

namespace ttt {

// Which malloc this process runs on: "tcmalloc", "jemalloc" or "glibc" (named after the library
// that defines the malloc symbol calls resolve to, so LD_PRELOAD counts), else that library's
// file name. The programs link tcmalloc_minimal where the build found it (CMake TTT_TCMALLOC):
// it reuses freed blocks by size class, which glibc's heap cannot, so the 125M E2E step at 8K
// peaks 24% lower and runs no slower (docs/performance.md, "Allocator").
std::string malloc_in_use();

// On glibc's malloc: every allocation above 32 MiB would be a fresh mmap, unmapped on free, so
// each training step page-faulted its large activations in again (12.0 s -> 3.5 s per 8K-token
// step of the tiny model once tuned). Serving everything from the heap and never trimming it
// keeps those pages; the price is that peak memory is held until the process exits. Set
// TTT_DEFAULT_MALLOC=1 to keep glibc's defaults. Other allocators are left as they are.
void tune_allocator_for_tensors();

}  // namespace ttt
