// The programs run on the malloc the build linked for them (CMake TTT_TCMALLOC, util/allocator.h):
// were glibc's malloc to win the symbol lookup, the memory tcmalloc saves would be lost silently.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "util/allocator.h"

TEST(Allocator, ProgramsRunOnTheMallocTheBuildLinked) {
  const std::string expected = TTT_EXPECTED_MALLOC;
  if (expected == "sanitizer") GTEST_SKIP() << "the sanitizer runtime serves malloc in this build";
  if (std::getenv("LD_PRELOAD") != nullptr) GTEST_SKIP() << "LD_PRELOAD may bring another malloc";
  EXPECT_EQ(ttt::malloc_in_use(), expected);
}
