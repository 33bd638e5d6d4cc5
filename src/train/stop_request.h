// SIGUSR1 asks a training run to stop cleanly: finish the current step, save a checkpoint and exit
// (Slurm sends it signal_delay_s before a job's time limit; see dist/slurm_job.h). The handler only
// sets a flag; the trainer reads it at the end of each step, where the ranks agree on it in the
// reduction of the step's time.
#pragma once

namespace ttt {

// Installs the SIGUSR1 handler (idempotent) and clears an earlier request.
void install_stop_request_handler();

// True once SIGUSR1 has arrived since install_stop_request_handler().
bool stop_requested();

}  // namespace ttt
