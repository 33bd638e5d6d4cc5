#include "report/plot_scale.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ttt::report {
namespace {

// Tolerance when deciding whether a tick multiple lies inside the range, so that 1 / 0.2 landing
// at 4.9999999 still yields the tick at 1.
constexpr double kTickSlack = 1e-9;

// k * mantissa * 10^exponent, computed so that e.g. 0.6 comes out as the double nearest 0.6
// (3 * 0.2 would give 0.6000000000000001 and a label of "0.6000000000000001" further down).
double scaled(long long multiple, double exponent) {
  const double m = static_cast<double>(multiple);
  return exponent < 0 ? m / std::pow(10.0, -exponent) : m * std::pow(10.0, exponent);
}

std::string format_linear(double value, double step) {
  char text[64];
  if (std::fabs(value) >= 1e6) {
    std::snprintf(text, sizeof(text), "%.4g", value);
  } else {
    const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + kTickSlack)));
    std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  }
  return text;
}

std::string format_power_of_two(double value) {
  char text[64];
  const double kilo = 1024.0, mega = 1024.0 * 1024.0;
  if (value >= mega && std::fmod(value, mega) == 0) {
    std::snprintf(text, sizeof(text), "%.0fM", value / mega);
  } else if (value >= kilo && std::fmod(value, kilo) == 0) {
    std::snprintf(text, sizeof(text), "%.0fK", value / kilo);
  } else {
    std::snprintf(text, sizeof(text), "%g", value);
  }
  return text;
}

std::string format_power_of_ten(double value) {
  char text[64];
  std::snprintf(text, sizeof(text), "%g", value);
  return text;
}

}  // namespace

std::vector<Point> drawable_points(const std::vector<double>& x, const std::vector<double>& y, bool log_x) {
  std::vector<Point> points;
  const std::size_t n = std::min(x.size(), y.size());
  points.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) continue;
    if (log_x && x[i] <= 0) continue;
    points.push_back({x[i], y[i]});
  }
  return points;
}

std::vector<Point> bin_points(const std::vector<Point>& points, int max_points, bool log_x) {
  if (max_points <= 0 || points.size() <= static_cast<std::size_t>(max_points)) return points;
  // Bin in the coordinate the axis draws, so that on a log axis the early positions (few tokens
  // per pixel) stay exact and the long tail is averaged.
  auto axis_x = [log_x](double x) { return log_x ? std::log(x) : x; };
  double lo = axis_x(points.front().x), hi = lo;
  for (const auto& p : points) {
    lo = std::min(lo, axis_x(p.x));
    hi = std::max(hi, axis_x(p.x));
  }
  struct Bin {
    double sum_x = 0, sum_y = 0;
    long long count = 0;
  };
  std::vector<Bin> bins(static_cast<std::size_t>(max_points));
  const double width = (hi - lo) / max_points;
  for (const auto& p : points) {
    const double ax = axis_x(p.x);
    long long index = width > 0 ? static_cast<long long>(std::floor((ax - lo) / width)) : 0;
    index = std::clamp<long long>(index, 0, max_points - 1);
    Bin& bin = bins[static_cast<std::size_t>(index)];
    bin.sum_x += ax;
    bin.sum_y += p.y;
    bin.count += 1;
  }
  std::vector<Point> binned;
  for (const auto& bin : bins) {
    if (bin.count == 0) continue;
    const double mean_x = bin.sum_x / bin.count;
    binned.push_back({log_x ? std::exp(mean_x) : mean_x, bin.sum_y / bin.count});
  }
  return binned;
}

std::vector<Tick> linear_ticks(double lo, double hi, int max_ticks) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (!(hi > lo)) return {{lo, format_linear(lo, std::max(std::fabs(lo), 1.0))}};
  max_ticks = std::max(max_ticks, 2);
  const double raw_step = (hi - lo) / (max_ticks - 1);
  double exponent = std::floor(std::log10(raw_step));
  // The first of 1, 2, 5, 10 x 10^exponent that fits; 10 always does since it is >= raw_step.
  for (int mantissa : {1, 2, 5, 10}) {
    const double step = mantissa * std::pow(10.0, exponent);
    const auto first = static_cast<long long>(std::ceil(lo / step - kTickSlack));
    const auto last = static_cast<long long>(std::floor(hi / step + kTickSlack));
    if (last - first + 1 > max_ticks && mantissa != 10) continue;
    std::vector<Tick> ticks;
    for (long long k = first; k <= last; ++k) {
      double value = scaled(k * mantissa, exponent);
      if (std::fabs(value) < step * kTickSlack) value = 0;  // no "-0"
      ticks.push_back({value, format_linear(value, step)});
    }
    return ticks;
  }
  return {};
}

std::vector<Tick> log_ticks(double lo, double hi, int max_ticks) {
  if (!(lo > 0) || !std::isfinite(hi) || !(hi >= lo)) return {};
  max_ticks = std::max(max_ticks, 1);
  const bool base_two = hi / lo <= std::pow(2.0, 24);
  const double base = base_two ? 2.0 : 10.0;
  const double log_base = std::log(base);
  const auto first = static_cast<long long>(std::ceil(std::log(lo) / log_base - kTickSlack));
  const auto last = static_cast<long long>(std::floor(std::log(hi) / log_base + kTickSlack));
  if (last < first) return {};
  long long stride = 1;
  while ((last - first) / stride + 1 > max_ticks) ++stride;
  // Exponents that are multiples of the stride, so that 1 (exponent 0) stays a tick.
  std::vector<Tick> ticks;
  for (long long e = first; e <= last; ++e) {
    if (e % stride != 0) continue;
    const double value = std::pow(base, static_cast<double>(e));
    ticks.push_back({value, base_two ? format_power_of_two(value) : format_power_of_ten(value)});
  }
  return ticks;
}

}  // namespace ttt::report
