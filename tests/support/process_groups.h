// Tests that make process groups on the CPU skip, saying why, in a build without Gloo (a PyTorch
// wheel's LibTorch ships no Gloo headers; docs/gpu.md).
#pragma once

#include <gtest/gtest.h>

#include "dist/process_group.h"

#define REQUIRE_CPU_PROCESS_GROUPS()          \
  if (!::ttt::cpu_process_groups_available()) \
  GTEST_SKIP() << "this build has no Gloo: distributed runs on the CPU are refused"
