// The progress line: pure formatting, and the drawing policy on a terminal (redrawn in place,
// throttled) and in a log (a plain line every N percent or every N seconds), with a fake clock.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "moe/progress.h"

namespace {

// A FILE* that writes into memory.
struct MemFile {
  char* buf = nullptr;
  size_t size = 0;
  std::FILE* f = open_memstream(&buf, &size);
  ~MemFile() {
    std::fclose(f);
    std::free(buf);
  }
  std::string text() {
    std::fflush(f);
    return std::string(buf, size);
  }
};

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST(Progress, FormatsTheLine) {
  EXPECT_EQ(moe::format_progress_line("train", 120, 1000, {{"loss", "2.31"}, {"tok/s", "1234"}, {"load max/mean", "1.3"}},
                                      83, 10),
            "train [#.........] 120/1000 12% loss 2.31 tok/s 1234 load max/mean 1.3 ETA 1m23s");
  EXPECT_EQ(moe::format_progress_line("val", 0, 8, {}, -1, 4), "val [....] 0/8 0%");
  EXPECT_EQ(moe::format_progress_line("val", 8, 8, {}, 0, 4), "val [####] 8/8 100% ETA 0.0s");
  EXPECT_EQ(moe::format_progress_line("x", 999, 1000, {}, -1, 20), "x [###################.] 999/1000 99%");
  EXPECT_EQ(moe::format_progress_line("x", 5, 10, {}, -1, 0), "x 5/10 50%");
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(moe::format_duration(0.44), "0.4s");
  EXPECT_EQ(moe::format_duration(9.96), "10.0s");
  EXPECT_EQ(moe::format_duration(59.4), "59s");
  EXPECT_EQ(moe::format_duration(83), "1m23s");
  EXPECT_EQ(moe::format_duration(605), "10m05s");
  EXPECT_EQ(moe::format_duration(7500), "2h05m");
  EXPECT_EQ(moe::format_duration(3 * 86400 + 4 * 3600 + 100), "3d04h");
  EXPECT_EQ(moe::format_duration(-1), "?");
}

TEST(Progress, TerminalRedrawsInPlaceAtMostTenTimesASecond) {
  MemFile out;
  double now = 100;
  moe::ProgressOptions opt;
  opt.tty = true;
  opt.bar_width = 10;
  opt.clock = [&] { return now; };
  {
    moe::Progress p(100, "train", out.f, opt);
    for (int step = 1; step <= 100; ++step) {
      now += 0.01;  // 100 updates a second
      p.update(step, {{"loss", std::to_string(step)}});
    }
    p.finish();
  }
  const std::string text = out.text();
  // Drawn at the first update and then every 0.1 s (each 10th step), plus the final step.
  const size_t draws = count(text, "\r");
  EXPECT_GE(draws, 10u);
  EXPECT_LE(draws, 12u);
  EXPECT_EQ(count(text, "\x1b[K"), draws);
  EXPECT_EQ(count(text, "\n"), 1u);  // only finish() ends the line
  EXPECT_NE(text.find("train [##########] 100/100 100% loss 100 elapsed 1.0s\x1b[K\n"), std::string::npos) << text;
  EXPECT_NE(text.find("train [#.........] 11/100 11% loss 11 ETA 0.9s"), std::string::npos) << text;
}

TEST(Progress, LogGetsAPlainLineEveryTenPercentOrTenSeconds) {
  MemFile out;
  double now = 0;
  moe::ProgressOptions opt;
  opt.tty = false;
  opt.clock = [&] { return now; };
  moe::Progress p(1000, "train", out.f, opt);
  for (int step = 1; step <= 1000; ++step) {
    now += step <= 50 ? 1.0 : 0.001;  // slow at first: the 10 s rule prints, then the 10 % rule
    p.update(step);
  }
  p.finish({{"loss", "1.5"}});
  const std::string text = out.text();
  EXPECT_EQ(count(text, "\r"), 0u);
  EXPECT_EQ(count(text, "\x1b"), 0u);
  // Steps 1, 11, 21, 31, 41 (every 10 s), then 100, 200, ..., 900 (every 10 %), then finish's
  // line for 1000: one line for the last step, not two.
  EXPECT_EQ(count(text, "\n"), 5u + 9u + 1u) << text;
  EXPECT_EQ(count(text, "1000/1000"), 1u) << text;
  EXPECT_NE(text.find("train [....................] 11/1000 1% ETA 16m29s\n"), std::string::npos) << text;
  EXPECT_NE(text.find(" 300/1000 30% ETA"), std::string::npos) << text;
  EXPECT_NE(text.find("1000/1000 100% loss 1.5 elapsed 51s\n"), std::string::npos) << text;
}

TEST(Progress, LogWithoutFinishStillShowsTheLastStep) {
  MemFile out;
  {
    moe::ProgressOptions opt;
    opt.tty = false;
    moe::Progress p(4, "eval", out.f, opt);
    for (int step = 1; step <= 4; ++step) p.update(step);
  }
  EXPECT_EQ(count(out.text(), "4/4 100%"), 1u) << out.text();
}

TEST(Progress, EtaUsesTheRateSinceTheFirstStepOfAResumedRun) {
  MemFile out;
  double now = 0;
  moe::ProgressOptions opt;
  opt.tty = false;
  opt.first_step = 500;
  opt.clock = [&] { return now; };
  moe::Progress p(1000, "train", out.f, opt);
  now = 10;
  p.update(600);  // 100 steps in 10 s, 400 to go: 40 s
  EXPECT_NE(out.text().find("600/1000 60% ETA 40s"), std::string::npos) << out.text();
}
