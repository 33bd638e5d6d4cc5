// Log-spaced bins of token positions: the loss-by-position curve of a long context averaged over
// positions that are close on a log axis, as the paper's figures read. Position 1 stays a bin of
// its own; at 128K positions, 8 bins per octave give 136 bins instead of 131072 noisy points.
#pragma once

#include <cstdint>
#include <vector>

namespace ttt::report {

struct PositionBin {
  int64_t first = 0;  // first token position of the bin (1-based, inclusive)
  int64_t last = 0;   // last one (inclusive)
  double mean = 0;    // mean of the finite values at these positions
  int64_t count = 0;  // how many of them were finite (a bin with none is left out)
};

// Position p (1-based) falls in bin floor(bins_per_octave * log2(p)); the positions of one bin
// are consecutive, and every non-empty bin is returned in increasing position. values[i] is the
// value at position i + 1; values that are not finite are not averaged. Throws
// std::invalid_argument unless bins_per_octave >= 1.
std::vector<PositionBin> log_position_bins(const std::vector<double>& values, int bins_per_octave);

// The bin index of position p >= 1 (exact at powers of two).
int64_t log_bin_index(int64_t position, int bins_per_octave);

}  // namespace ttt::report
