// Names for work in progress: a temporary file or directory carries a tag of the process writing
// it ("<host>-<pid namespace>-<pid>"), so a later process can tell an abandoned one (its writer
// was killed) from another live process's, and cleans up only the former.
#pragma once

#include <string>
#include <vector>

namespace ttt {

// "<host>-<pid namespace>-<pid>" of this process, or of process `pid` of this host and namespace.
std::string process_tag();
std::string process_tag_of(long pid);

// Whether `tag` names a process that no longer runs, as far as this process can tell: one of this
// host and PID namespace (containers sharing a host name and a volume do not see each other's
// processes) whose pid is gone. A bare "<pid>" (the tag of earlier versions) is taken as this
// host's. Anything else, or a tag that does not parse, is never abandoned.
bool is_abandoned_process_tag(const std::string& tag);

// The entries beside `path` named "<its file name><marker><tag>" whose tag is abandoned: the
// temporary files or folders of writers of `path` that were killed.
std::vector<std::string> abandoned_siblings(const std::string& path, const std::string& marker);

}  // namespace ttt
