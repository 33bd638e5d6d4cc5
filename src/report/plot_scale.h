// The numeric side of the SVG plots: which points are drawn (invalid ones dropped, long curves
// averaged into bins) and where the axis ticks go ("nice" 1-2-5 steps, powers for log axes).
// Kept apart from the SVG writer so that these choices can be tested directly.
#pragma once

#include <string>
#include <vector>

namespace ttt::report {

struct Point {
  double x = 0;
  double y = 0;
};

struct Tick {
  double value = 0;
  std::string label;
};

// The points of (x, y) that can be drawn: both finite, and x > 0 when the x axis is logarithmic.
std::vector<Point> drawable_points(const std::vector<double>& x, const std::vector<double>& y, bool log_x);

// Averages the points into at most max_points equal-width bins along x (along log x when log_x):
// each non-empty bin becomes one point at the mean x (geometric mean when log_x) and mean y, in
// increasing x. Input of at most max_points points, or max_points <= 0, is returned unchanged.
std::vector<Point> bin_points(const std::vector<Point>& points, int max_points, bool log_x);

// Ticks at multiples of a 1, 2 or 5 x 10^k step inside [lo, hi]: the smallest such step that
// gives at most max_ticks of them.
std::vector<Tick> linear_ticks(double lo, double hi, int max_ticks);

// Ticks at powers inside [lo, hi] (0 < lo < hi): powers of 2 (labelled 1K, 128K, 1M) when the
// range spans at most 2^24, as token positions do, else powers of 10; every power when they fit
// in max_ticks, else every second, third, ... exponent.
std::vector<Tick> log_ticks(double lo, double hi, int max_ticks);

}  // namespace ttt::report
