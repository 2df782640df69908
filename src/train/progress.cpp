#include "moe/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace moe {

namespace {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Columns of the terminal behind `stream`, or 0 if unknown.
size_t terminal_width(std::FILE* stream) {
  winsize ws{};
  if (::ioctl(::fileno(stream), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 0;
}

std::string two_digits(int64_t x) {
  std::string s = std::to_string(x);
  if (s.size() < 2) s.insert(s.begin(), '0');
  return s;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds < 10) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1fs", seconds);
    return buf;
  }
  const auto s = static_cast<int64_t>(std::llround(seconds));
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + two_digits(s % 60) + "s";
  if (s < 86400) return std::to_string(s / 3600) + "h" + two_digits(s % 3600 / 60) + "m";
  return std::to_string(s / 86400) + "d" + two_digits(s % 86400 / 3600) + "h";
}

std::string format_progress_line(const std::string& label, int64_t step, int64_t total, const ProgressFields& fields,
                                 double eta_seconds, int bar_width) {
  const double frac = total > 0 ? std::clamp(static_cast<double>(step) / static_cast<double>(total), 0.0, 1.0) : 0.0;
  std::string line = label;
  if (bar_width > 0) {
    const auto filled = static_cast<int>(std::floor(frac * bar_width));
    line += " [" + std::string(filled, '#') + std::string(bar_width - filled, '.') + "]";
  }
  // Appends rather than `" " + std::string`: GCC 12 warns falsely on the latter (bug 105329).
  line.append(" ").append(std::to_string(step)).append("/").append(std::to_string(total));
  line.append(" ").append(std::to_string(static_cast<int>(std::floor(frac * 100)))).append("%");
  for (const auto& [key, value] : fields) line.append(" ").append(key).append(" ").append(value);
  if (eta_seconds >= 0) line.append(" ETA ").append(format_duration(eta_seconds));
  return line;
}

Progress::Progress(int64_t total, std::string label, std::FILE* stream, ProgressOptions opt)
    : total_(total), label_(std::move(label)), stream_(stream), opt_(std::move(opt)) {
  if (!opt_.clock) opt_.clock = steady_seconds;
  tty_ = opt_.tty ? *opt_.tty : (stream_ != nullptr && ::isatty(::fileno(stream_)) == 1);
  start_ = opt_.clock();
  last_step_ = opt_.first_step;
}

Progress::~Progress() {
  if (!tty_ && !finished_ && pending_last_ && stream_ != nullptr) {
    draw(format_progress_line(label_, last_step_, total_, last_fields_, -1, opt_.bar_width), true);
  }
  if (tty_ && !finished_ && drawn_width_ > 0) {
    std::fputc('\n', stream_);
    std::fflush(stream_);
  }
}

double Progress::elapsed() const { return opt_.clock() - start_; }

void Progress::update(int64_t step, const ProgressFields& fields) {
  if (finished_ || stream_ == nullptr) return;
  last_step_ = step;
  last_fields_ = fields;
  const double now = opt_.clock();
  const double elapsed = now - start_;
  const int64_t done = step - opt_.first_step;
  const double eta = done > 0 && elapsed > 0 ? static_cast<double>(total_ - step) * elapsed / static_cast<double>(done) : -1;
  const bool last = step >= total_;
  if (tty_) {
    if (!last && now - last_draw_ < opt_.tty_interval) return;
  } else {
    // A log gets one final line: finish()'s (or, if it is never called, the destructor's).
    if (last) {
      pending_last_ = true;
      return;
    }
    const double percent = total_ > 0 ? 100.0 * static_cast<double>(step) / static_cast<double>(total_) : 0;
    const bool new_bucket = opt_.every_percent > 0 &&
                            std::floor(percent / opt_.every_percent) > std::floor(last_percent_ / opt_.every_percent);
    if (!new_bucket && now - last_draw_ < opt_.every_seconds) return;
    last_percent_ = percent;
  }
  last_draw_ = now;
  draw(format_progress_line(label_, step, total_, fields, eta, opt_.bar_width), false);
}

void Progress::finish(const ProgressFields& fields) {
  if (finished_ || stream_ == nullptr) return;
  const ProgressFields& f = fields.empty() ? last_fields_ : fields;
  draw(format_progress_line(label_, last_step_, total_, f, -1, opt_.bar_width) + " elapsed " + format_duration(elapsed()),
       true);
  finished_ = true;
}

void Progress::draw(const std::string& line, bool final_line) {
  std::string out;
  if (tty_) {
    std::string shown = line;
    const size_t width = terminal_width(stream_);
    if (width > 1 && shown.size() > width - 1) shown.resize(width - 1);  // a wrapped line cannot be redrawn
    out = "\r" + shown + "\x1b[K";  // clear what a longer previous line left
    if (final_line) out += "\n";
    drawn_width_ = final_line ? 0 : shown.size();
  } else {
    out = line + "\n";
  }
  std::fputs(out.c_str(), stream_);
  std::fflush(stream_);
}

}  // namespace moe
