// SIGUSR1 asks a training run to stop cleanly: finish the current step, save a checkpoint and exit
// (Slurm sends it signal_delay_s before a job's time limit; see dist/slurm_job.h). The handler only
// sets a flag; the trainer reads it between steps and the ranks agree on it with one reduction.
#pragma once

namespace ttt {

// Installs the SIGUSR1 handler (idempotent) and clears an earlier request.
void install_stop_request_handler();

// True once SIGUSR1 has arrived since install_stop_request_handler().
bool stop_requested();

}  // namespace ttt
