// Ctrl-C / SIGTERM / SIGHUP during a long job: the first signal only sets a flag that the job polls
// (interrupted()) to save a checkpoint and exit cleanly; a second one (either kind) restores the
// default action for it and re-raises it, so a user can always force-quit at once.
#pragma once

#include <memory>

namespace moe {

// While alive, SIGINT, SIGTERM and SIGHUP set the flag; the destructor restores the previous handlers.
// Constructing one clears the flag. Guards must be destroyed in reverse order of construction.
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  struct Saved;
  std::unique_ptr<Saved> saved_;
};

bool interrupted();
int interrupt_signal();  // the signal that set the flag (SIGINT, SIGTERM or SIGHUP), 0 if none
void clear_interrupt();

}  // namespace moe
