#include "util/allocator.h"

#include <dlfcn.h>
#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace ttt {

std::string malloc_in_use() {
  Dl_info info{};
  void* symbol = dlsym(RTLD_DEFAULT, "malloc");
  if (symbol == nullptr || dladdr(symbol, &info) == 0 || info.dli_fname == nullptr) return "unknown";
  std::string file = info.dli_fname;
  file = file.substr(file.find_last_of('/') + 1);
  if (file.rfind("libtcmalloc", 0) == 0) return "tcmalloc";
  if (file.rfind("libjemalloc", 0) == 0) return "jemalloc";
  if (file.rfind("libc.so", 0) == 0) return "glibc";
  return file;
}

void tune_allocator_for_tensors() {
  const char* keep = std::getenv("TTT_DEFAULT_MALLOC");
  if (keep != nullptr && std::strcmp(keep, "1") == 0) return;
  if (malloc_in_use() != "glibc") return;
  mallopt(M_MMAP_MAX, 0);              // no mmap-backed chunks: large blocks come from the heap
  mallopt(M_TRIM_THRESHOLD, 1 << 30);  // ... and freed heap memory stays for the next step
  mallopt(M_TOP_PAD, 64 << 20);        // grow the heap in large steps
}

}  // namespace ttt
