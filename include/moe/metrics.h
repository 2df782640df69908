// Metrics as JSON Lines: one JSON object per line, flushed as written, so a crash loses at most
// the line being written and `tail -f` / pandas.read_json(lines=True) follow along.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe {

class MetricsWriter {
 public:
  // append=true when resuming (keeps earlier lines), false to start a new file. Throws
  // InvalidInput("[metrics] <path>: cannot open ...").
  MetricsWriter(const std::string& path, bool append);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Writes `record` (an object) as one line and flushes. NaN/Inf are written as null (JSON has
  // no such numbers). Throws std::runtime_error("[metrics] ...") if the write fails.
  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

// For a bit-exact resume from step `step`: rewrites `path` (atomically) keeping only the lines
// whose "step" is <= step, and dropping a torn last line, so the lines written after the
// checkpoint are not duplicated. Lines without a "step" are kept. A missing file is fine.
// Returns the number of lines dropped.
int64_t trim_metrics_after(const std::string& path, int64_t step);

// Every record of a metrics file (a torn or malformed line is skipped); empty if the file is missing.
std::vector<nlohmann::json> read_metrics(const std::string& path);

}  // namespace moe
