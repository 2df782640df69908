// `moe tokenize`: a Hugging Face tokenizer's ids for a text (and back), for checking against
// other frameworks. --model takes a model folder, --tokenizer a folder with only the tokenizer files.
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "moe/error.h"
#include "moe/hf_tokenizer.h"
#include "moe/tokenizer.h"
#include "util/resources.h"

namespace moe::cli {

namespace {

struct TokenizeFlags {
  std::string model, tokenizer, text, text_file, ids, jsonl;
  bool json = false, no_special = false, skip_special = false;
};

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ',' || s[i] == ' ' || s[i] == '[' || s[i] == ']')) ++i;
    if (i == s.size()) break;
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(s.substr(i), &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || v < 0 || v > INT32_MAX) throw InvalidInput("[tokenize] --ids: \"" + s.substr(i, 12) + "\" is not a token id");
    ids.push_back(static_cast<int32_t>(v));
    i += used;
  }
  return ids;
}

}  // namespace

Run add_tokenize(CLI::App& app) {
  auto f = std::make_shared<TokenizeFlags>();
  CLI::App* c = app.add_subcommand("tokenize", "A Hugging Face tokenizer's ids for a text, or the text of ids");
  c->add_option("--model", f->model, "A Hugging Face model folder (its tokenizer.json, tokenizer_config.json)");
  c->add_option("--tokenizer", f->tokenizer, "A folder with just the tokenizer files");
  c->add_option("--text", f->text, "Text to encode");
  c->add_option("--text_file", f->text_file, "A file whose text to encode");
  c->add_option("--jsonl", f->jsonl, "A file of JSON strings, one per line: prints a JSON line of ids, tokens and the decoded text for each");
  c->add_option("--ids", f->ids, "Ids to decode instead (\"1, 22557, 1526\")");
  c->add_flag("--no_special", f->no_special, "Do not add BOS/EOS (add_special_tokens=False)");
  c->add_flag("--skip_special", f->skip_special, "When decoding, leave special tokens out");
  c->add_flag("--json", f->json, "Print {\"ids\": [...], \"tokens\": [...]} (or {\"text\": ...})");
  return [f, c]() -> int {
    if (!c->parsed()) return 0;
    if (f->model.empty() == f->tokenizer.empty()) throw InvalidInput("[tokenize] give one of --model DIR or --tokenizer DIR");
    const int inputs = !f->text.empty() + !f->text_file.empty() + !f->ids.empty() + !f->jsonl.empty();
    if (inputs != 1) throw InvalidInput("[tokenize] give one of --text, --text_file, --jsonl or --ids");
    const HfTokenizer tok = HfTokenizer::from_folder(f->model.empty() ? f->tokenizer : f->model);
    if (!f->jsonl.empty()) {
      const std::string all = util::read_regular_file(f->jsonl, "[tokenize]", int64_t(1) << 30);
      size_t line_no = 0;
      for (size_t at = 0; at < all.size();) {
        size_t end = all.find('\n', at);
        if (end == std::string::npos) end = all.size();
        const std::string line = all.substr(at, end - at);
        at = end + 1;
        ++line_no;
        if (line.empty()) continue;
        const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_string()) throw InvalidInput("[tokenize] " + f->jsonl + ": line " + std::to_string(line_no) + " is not a JSON string");
        const std::vector<int32_t> ids = tok.encode(j.get<std::string>(), !f->no_special);
        nlohmann::json tokens = nlohmann::json::array();
        for (int32_t id : ids) tokens.push_back(tok.token(id));
        const nlohmann::json out = {{"ids", ids}, {"tokens", tokens}, {"decoded", tok.decode(ids, f->skip_special)}};
        std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      }
      return 0;
    }
    if (!f->ids.empty()) {
      const std::vector<int32_t> ids = parse_ids(f->ids);
      const std::string text = tok.decode(ids, f->skip_special);
      if (f->json) std::printf("%s\n", nlohmann::json({{"text", text}}).dump().c_str());
      else std::printf("%s\n", printable_utf8(text, true).c_str());
      return 0;
    }
    const std::string text = f->text_file.empty() ? f->text : util::read_regular_file(f->text_file, "[tokenize]", int64_t(1) << 30);
    const std::vector<int32_t> ids = tok.encode(text, !f->no_special);
    if (f->json) {
      nlohmann::json tokens = nlohmann::json::array();
      for (int32_t id : ids) tokens.push_back(tok.token(id));
      std::printf("%s\n", nlohmann::json({{"ids", ids}, {"tokens", tokens}}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      return 0;
    }
    for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
    std::printf("\n");
    return 0;
  };
}

}  // namespace moe::cli
