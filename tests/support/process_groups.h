// Tests that make process groups on the CPU skip, saying why, in a build without Gloo (a PyTorch
// wheel's LibTorch ships no Gloo headers; docs/gpu.md).
#pragma once

#include <gtest/gtest.h>

#include "dist/process_group.h"

// gtest's own form for a statement macro: safe inside an unbraced if/else.
#define REQUIRE_CPU_PROCESS_GROUPS()           \
  switch (0)                                   \
  case 0:                                      \
  default:                                     \
    if (::ttt::cpu_process_groups_available()) \
      ;                                        \
    else                                       \
      GTEST_SKIP() << "this build has no Gloo: distributed runs on the CPU are refused"
