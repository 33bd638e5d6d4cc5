// Process-wide allocator tuning for tensor workloads, called once at the start of a program.
#pragma once

namespace ttt {

// glibc serves every allocation above 32 MiB with a fresh mmap and unmaps it on free, so each
// training step page-faults its large activations in again (measured on the 2-core CPU machine:
// 12.0 s -> 3.5 s per 8K-token step of the tiny model, most of it system time). Serving everything
// from the heap and never trimming it keeps those pages; the price is that peak memory is held
// until the process exits. Set TTT_DEFAULT_MALLOC=1 to keep glibc's defaults.
void tune_allocator_for_tensors();

}  // namespace ttt
