#include "train/stop_request.h"

#include <csignal>

namespace ttt {
namespace {

volatile std::sig_atomic_t g_stop_requested = 0;

void on_stop_signal(int) { g_stop_requested = 1; }

}  // namespace

void install_stop_request_handler() {
  g_stop_requested = 0;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // a read or write in progress resumes instead of failing with EINTR
  sigaction(SIGUSR1, &action, nullptr);
}

bool stop_requested() { return g_stop_requested != 0; }

}  // namespace ttt
