// Names for work in progress: a temporary file or directory carries "<host>-<pid>" of the process
// writing it, so a later process can tell an abandoned one (its writer was killed) from another
// live process's, and cleans up only the former.
#pragma once

#include <string>

namespace ttt {

// "<host>-<pid>" of this process.
std::string process_tag();

// Whether `tag` ("<host>-<pid>", the host may hold '-') names a process of this host that no
// longer runs. A tag of another host, or one that does not parse, is never abandoned.
bool is_abandoned_process_tag(const std::string& tag);

}  // namespace ttt
