#include "util/process_tag.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>

namespace ttt {
namespace {

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

// The inode of this process's PID namespace ("pid:[4026531836]" -> "4026531836"), or "0".
std::string pid_namespace() {
  std::error_code error;
  const std::string link = std::filesystem::read_symlink("/proc/self/ns/pid", error).string();
  const auto open = link.find('['), close = link.find(']');
  if (error || open == std::string::npos || close == std::string::npos || close <= open + 1) return "0";
  return link.substr(open + 1, close - open - 1);
}

bool is_number(const std::string& text, size_t max_digits) {
  return !text.empty() && text.size() <= max_digits &&
         std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

bool process_is_gone(const std::string& pid) {
  return kill(static_cast<pid_t>(std::stol(pid)), 0) != 0 && errno == ESRCH;
}

}  // namespace

std::vector<std::string> abandoned_siblings(const std::string& path, const std::string& marker) {
  namespace fs = std::filesystem;
  const fs::path target = fs::absolute(path).lexically_normal();
  const std::string prefix = target.filename().string() + marker;
  std::vector<std::string> found;
  std::error_code error;
  for (fs::directory_iterator it(target.parent_path(), error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) == 0 && is_abandoned_process_tag(name.substr(prefix.size())))
      found.push_back(it->path().string());
  }
  return found;
}

std::string process_tag_of(long pid) { return host_name() + "-" + pid_namespace() + "-" + std::to_string(pid); }

std::string process_tag() { return process_tag_of(getpid()); }

bool is_abandoned_process_tag(const std::string& tag) {
  if (is_number(tag, 9)) return process_is_gone(tag);  // an earlier version's "<pid>"
  const auto pid_dash = tag.rfind('-');
  if (pid_dash == std::string::npos || pid_dash == 0) return false;
  const auto ns_dash = tag.rfind('-', pid_dash - 1);
  if (ns_dash == std::string::npos) return false;
  const std::string host = tag.substr(0, ns_dash), ns = tag.substr(ns_dash + 1, pid_dash - ns_dash - 1),
                    pid = tag.substr(pid_dash + 1);
  if (host != host_name() || ns != pid_namespace() || !is_number(pid, 9)) return false;
  return process_is_gone(pid);
}

}  // namespace ttt
