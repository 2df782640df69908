// A progress line for long jobs:
//   train [####................] 120/1000 12% loss 2.31 tok/s 1234 ETA 1m23s
// On a terminal the line is redrawn in place (\r, at most ~10 times a second, cut to the
// terminal's width); otherwise (a log file, a pipe) a plain line is printed every `every_percent`
// percent or every `every_seconds`, whichever comes first. Formatting is pure and separate from
// the I/O so it can be tested.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace moe {

using ProgressFields = std::vector<std::pair<std::string, std::string>>;

// "0.4s", "59s", "1m23s", "2h05m", "3d04h"; "?" for a negative or non-finite duration.
std::string format_duration(double seconds);

// The line without any terminal control: label, bar of `bar_width` cells, step/total, percent
// (floor), the fields as "key value", then "ETA <duration>" if eta_seconds >= 0.
std::string format_progress_line(const std::string& label, int64_t step, int64_t total, const ProgressFields& fields,
                                 double eta_seconds, int bar_width = 20);

struct ProgressOptions {
  std::optional<bool> tty;        // default: isatty(fileno(stream))
  int bar_width = 20;
  double tty_interval = 0.1;      // seconds between redraws on a terminal
  double every_percent = 10;      // plain output: a line each time this much more is done
  double every_seconds = 10;      // ... or this long after the last line
  int64_t first_step = 0;         // the step the job starts at (resume): ETA uses the rate since
  std::function<double()> clock;  // seconds, monotonic; default steady_clock (tests inject one)
};

class Progress {
 public:
  Progress(int64_t total, std::string label, std::FILE* stream = stderr, ProgressOptions opt = {});
  ~Progress();  // ends a half-drawn terminal line; in a log, prints the last step if finish() was not called
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Step `step` of `total` is done; draws if due (the last step always draws).
  void update(int64_t step, const ProgressFields& fields = {});
  // Final line with the elapsed time instead of the ETA, ending the terminal line. Idempotent.
  void finish(const ProgressFields& fields = {});

  bool is_tty() const { return tty_; }
  double elapsed() const;

 private:
  void draw(const std::string& line, bool final_line);
  bool pending_last_ = false;  // plain output: the last step reached, its line left to finish()

  int64_t total_;
  std::string label_;
  std::FILE* stream_;
  ProgressOptions opt_;
  bool tty_ = false;
  bool finished_ = false;
  double start_ = 0;
  double last_draw_ = -1e300;
  double last_percent_ = -1e300;
  int64_t last_step_ = 0;
  ProgressFields last_fields_;
  size_t drawn_width_ = 0;
};

}  // namespace moe
