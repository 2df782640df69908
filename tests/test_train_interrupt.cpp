// Ctrl-C handling: the first signal sets a flag, a second one kills at once, and the guard puts
// the previous handlers back.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>

#include "moe/interrupt.h"

namespace {

volatile sig_atomic_t g_custom_hits = 0;
extern "C" void custom_handler(int) { g_custom_hits = g_custom_hits + 1; }

}  // namespace

TEST(Interrupt, FirstSignalSetsTheFlag) {
  for (int sig : {SIGINT, SIGTERM}) {
    moe::InterruptGuard guard;
    EXPECT_FALSE(moe::interrupted());
    std::raise(sig);
    EXPECT_TRUE(moe::interrupted());
    EXPECT_EQ(moe::interrupt_signal(), sig);
    moe::clear_interrupt();
    EXPECT_FALSE(moe::interrupted());
  }
}

TEST(Interrupt, GuardRestoresThePreviousHandler) {
  struct sigaction custom {}, before {}, after {};
  custom.sa_handler = custom_handler;
  sigemptyset(&custom.sa_mask);
  ASSERT_EQ(sigaction(SIGINT, &custom, &before), 0);
  {
    moe::InterruptGuard guard;
    std::raise(SIGINT);
    EXPECT_EQ(g_custom_hits, 0);  // the guard's handler ran, not ours
    EXPECT_TRUE(moe::interrupted());
  }
  std::raise(SIGINT);
  EXPECT_EQ(g_custom_hits, 1);
  ASSERT_EQ(sigaction(SIGINT, &before, &after), 0);
  EXPECT_EQ(after.sa_handler, custom_handler);
}

TEST(InterruptDeathTest, SecondSignalForceQuits) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        moe::InterruptGuard guard;
        std::raise(SIGINT);
        if (!moe::interrupted()) std::exit(3);
        std::raise(SIGINT);  // must not return
        std::exit(4);
      },
      ::testing::KilledBySignal(SIGINT), "");
  EXPECT_EXIT(
      {
        moe::InterruptGuard guard;
        std::raise(SIGTERM);
        std::raise(SIGTERM);
        std::exit(4);
      },
      ::testing::KilledBySignal(SIGTERM), "");
}
