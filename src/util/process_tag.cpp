#include "util/process_tag.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

namespace ttt {
namespace {

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

}  // namespace

std::string process_tag() { return host_name() + "-" + std::to_string(getpid()); }

bool is_abandoned_process_tag(const std::string& tag) {
  const auto dash = tag.rfind('-');
  if (dash == std::string::npos || tag.substr(0, dash) != host_name()) return false;
  const std::string pid = tag.substr(dash + 1);
  if (pid.empty() || pid.size() > 9 || !std::all_of(pid.begin(), pid.end(), [](char c) { return std::isdigit(c); }))
    return false;
  return kill(static_cast<pid_t>(std::stol(pid)), 0) != 0 && errno == ESRCH;
}

}  // namespace ttt
