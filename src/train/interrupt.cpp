#include "moe/interrupt.h"

#include <atomic>
#include <csignal>
#include <cstring>

namespace moe {

namespace {

std::atomic<int> g_signal{0};  // lock-free on every platform we build for: safe in a handler
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_signal(int sig) {
  int expected = 0;
  if (g_signal.compare_exchange_strong(expected, sig)) return;
  // Second signal: default action (terminate), now. signal() and raise() are async-signal-safe.
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

struct InterruptGuard::Saved {
  struct sigaction int_action {};
  struct sigaction term_action {};
  struct sigaction hup_action {};
};

InterruptGuard::InterruptGuard() : saved_(std::make_unique<Saved>()) {
  g_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a read() interrupted by Ctrl-C resumes; the job polls the flag
  sigaction(SIGINT, &sa, &saved_->int_action);
  sigaction(SIGTERM, &sa, &saved_->term_action);
  sigaction(SIGHUP, &sa, &saved_->hup_action);  // a closed terminal: save and stop, like SIGTERM
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &saved_->int_action, nullptr);
  sigaction(SIGTERM, &saved_->term_action, nullptr);
  sigaction(SIGHUP, &saved_->hup_action, nullptr);
}

bool interrupted() { return g_signal.load() != 0; }
int interrupt_signal() { return g_signal.load(); }
void clear_interrupt() { g_signal.store(0); }

}  // namespace moe
