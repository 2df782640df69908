#include <algorithm>
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "moe/bench.h"
#include "moe/error.h"
#include "moe/hf_tokenizer.h"
#include "util/resources.h"

namespace moe::bench {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Median seconds of one call of f, over repeats filling at least min_seconds (at least 3).
template <class F>
double median_seconds(F&& f, double min_seconds) {
  std::vector<double> t;
  const auto start = std::chrono::steady_clock::now();
  while (t.size() < 3 || seconds_since(start) < min_seconds) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(seconds_since(t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

nlohmann::json run_tokenizer_bench(const TokenizerBenchConfig& c) {
  if (c.tokenizer.empty() || c.text.empty()) throw InvalidInput("[bench] tokenizer: give --tokenizer DIR and --text FILE");
  const std::string text = util::read_regular_file(c.text, "[bench]", int64_t(1) << 30);
  if (text.empty()) throw InvalidInput("[bench] " + c.text + ": the text is empty");
  const double load = median_seconds([&] { HfTokenizer::from_folder(c.tokenizer); }, std::min(c.min_seconds, 3.0));
  const HfTokenizer tok = HfTokenizer::from_folder(c.tokenizer);
  tok.encode(text, false);  // warm the word cache, as a long-running process has it
  std::vector<int32_t> ids;
  const double enc = median_seconds([&] { ids = tok.encode(text, false); }, c.min_seconds);
  std::string back;
  const double dec = median_seconds([&] { back = tok.decode(ids); }, c.min_seconds);
  const size_t stream_n = std::min<size_t>(ids.size(), 20000);  // streaming decodes token by token
  const double stream = median_seconds(
      [&] {
        HfTokenizer::Stream s(tok);
        for (size_t i = 0; i < stream_n; ++i) s.push(ids[i]);
        s.flush();
      },
      c.min_seconds);
  const double mb = static_cast<double>(text.size()) / 1e6;
  return {{"tokenizer", c.tokenizer},
          {"text", c.text},
          {"bytes", text.size()},
          {"tokens", ids.size()},
          {"bytes_per_token", static_cast<double>(text.size()) / static_cast<double>(std::max<size_t>(ids.size(), 1))},
          {"load_seconds", load},
          {"encode_mb_per_s", mb / enc},
          {"encode_tokens_per_s", static_cast<double>(ids.size()) / enc},
          {"decode_mb_per_s", mb / dec},
          {"stream_tokens_per_s", static_cast<double>(stream_n) / stream},
          {"round_trip", back == text}};
}

std::string format_tokenizer_bench(const nlohmann::json& r) {
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "tokenizer %s on %s: %zu bytes -> %zu tokens (%.2f bytes/token)\n"
                "  load              %8.3f s\n"
                "  encode            %8.2f MB/s  (%.0f tokens/s)\n"
                "  decode            %8.2f MB/s\n"
                "  streaming decode  %8.0f tokens/s\n"
                "  decode(encode(text)) == text: %s\n",
                r["tokenizer"].get<std::string>().c_str(), r["text"].get<std::string>().c_str(), r["bytes"].get<size_t>(),
                r["tokens"].get<size_t>(), r["bytes_per_token"].get<double>(), r["load_seconds"].get<double>(),
                r["encode_mb_per_s"].get<double>(), r["encode_tokens_per_s"].get<double>(), r["decode_mb_per_s"].get<double>(),
                r["stream_tokens_per_s"].get<double>(), r["round_trip"].get<bool>() ? "yes" : "no (the normalizer changed it)");
  return buf;
}

}  // namespace moe::bench
