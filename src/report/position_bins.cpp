#include "report/position_bins.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace ttt::report {

int64_t log_bin_index(int64_t position, int bins_per_octave) {
  // The largest i with 2^(i / k) <= p. log2 rounds, so the candidate is corrected by exact
  // comparisons in integers for the bin edges that are powers of two (i a multiple of k) and in
  // doubles for the others (whose edges are irrational, never an integer position).
  const double k = bins_per_octave;
  auto i = static_cast<int64_t>(std::floor(k * std::log2(static_cast<double>(position))));
  const auto below = [&](int64_t bin) {
    return std::exp2(static_cast<double>(bin) / k) <= static_cast<double>(position);
  };
  while (i > 0 && !below(i)) --i;
  while (below(i + 1)) ++i;
  return i;
}

std::vector<PositionBin> log_position_bins(const std::vector<double>& values, int bins_per_octave) {
  if (bins_per_octave < 1)
    throw std::invalid_argument("bins per octave must be >= 1, not " + std::to_string(bins_per_octave));
  std::vector<PositionBin> bins;
  int64_t current = -1;
  PositionBin bin;
  double sum = 0;
  const auto close = [&] {
    if (current >= 0 && bin.count > 0) {
      bin.mean = sum / static_cast<double>(bin.count);
      bins.push_back(bin);
    }
  };
  for (size_t i = 0; i < values.size(); ++i) {
    const auto position = static_cast<int64_t>(i) + 1;
    const int64_t index = log_bin_index(position, bins_per_octave);
    if (index != current) {
      close();
      current = index;
      bin = PositionBin{position, position, 0, 0};
      sum = 0;
    }
    bin.last = position;
    if (std::isfinite(values[i])) {
      sum += values[i];
      ++bin.count;
    }
  }
  close();
  return bins;
}

}  // namespace ttt::report
