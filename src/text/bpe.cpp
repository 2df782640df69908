#include "text/bpe.h"

#include <cstdio>
#include <queue>

#include "moe/error.h"
#include "text/unicode.h"

namespace moe::text {

using json = nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw InvalidInput("[tokenizer] " + where + ": " + what);
}

std::string optional_string(const json& m, const char* key) {
  return m.contains(key) && m.at(key).is_string() ? m.at(key).get<std::string>() : std::string();
}

constexpr size_t kCacheWords = 1 << 16;  // cleared when full: words repeat, the long tail does not
constexpr size_t kCacheWordBytes = 64;   // longer words are not cached

}  // namespace

Bpe::Bpe(const json& m, const std::string& where) {
  if (!m.contains("vocab") || !m.at("vocab").is_object()) fail(where, "the BPE model has no \"vocab\" object");
  if (!m.contains("merges") || !m.at("merges").is_array()) fail(where, "the BPE model has no \"merges\" array");
  if (m.contains("dropout") && !m.at("dropout").is_null() && m.at("dropout").get<double>() != 0.0)
    fail(where, "BPE dropout " + m.at("dropout").dump() + " is a training-time randomisation; inference needs dropout null");
  vocab_.reserve(m.at("vocab").size());
  for (const auto& [token, id] : m.at("vocab").items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      fail(where, "vocab entry \"" + token + "\" has id " + id.dump() + ", not a non-negative 32-bit integer");
    vocab_.emplace(token, id.get<int32_t>());
  }
  const json& merges = m.at("merges");
  merges_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const json& e = merges[r];
    std::string a, b;
    if (e.is_string()) {  // "a b" (older files)
      const std::string s = e.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        fail(where, "merge " + std::to_string(r) + " \"" + s + "\" is not two tokens separated by one space");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {  // ["a", "b"]
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      fail(where, "merge " + std::to_string(r) + " is " + e.dump() + ", not \"a b\" or [\"a\", \"b\"]");
    }
    const auto ia = vocab_.find(a), ib = vocab_.find(b), iab = vocab_.find(a + b);
    if (ia == vocab_.end() || ib == vocab_.end() || iab == vocab_.end())
      fail(where, "merge " + std::to_string(r) + " (\"" + a + "\", \"" + b + "\") names a token that is not in the vocab");
    merges_.emplace(key(ia->second, ib->second), Merge{static_cast<int32_t>(r), iab->second});  // first rank wins
  }
  const std::string unk = optional_string(m, "unk_token");
  if (!unk.empty()) {
    const auto it = vocab_.find(unk);
    if (it == vocab_.end()) fail(where, "unk_token \"" + unk + "\" is not in the vocab");
    unk_id_ = it->second;
  }
  byte_fallback_ = m.value("byte_fallback", false);
  fuse_unk_ = m.value("fuse_unk", false);
  ignore_merges_ = m.value("ignore_merges", false);
  prefix_ = optional_string(m, "continuing_subword_prefix");
  suffix_ = optional_string(m, "end_of_word_suffix");
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    const auto it = vocab_.find(name);
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
}

void Bpe::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    const auto it = vocab_.find(std::string(word));
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() <= kCacheWordBytes;
  std::string w;
  if (cacheable) {
    w.assign(word);
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(w);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kCacheWords) cache_.clear();
    cache_.emplace(std::move(w), std::move(ids));
  }
}

void Bpe::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int prev, next;
    bool alive;
  };
  std::vector<Symbol> sym;
  bool last_unk = false;
  const auto push = [&](int32_t id, bool unk) {
    if (unk && fuse_unk_ && last_unk) return;  // consecutive unknowns are one
    const int i = static_cast<int>(sym.size());
    sym.push_back({id, i - 1, -1, true});
    last_unk = unk;
  };
  for (size_t i = 0, len = 0; i < word.size(); i += len) {
    code_point_at(word, i, len);
    std::string c(word.substr(i, len));
    if (i > 0 && !prefix_.empty()) c = prefix_ + c;
    if (i + len == word.size() && !suffix_.empty()) c += suffix_;
    const auto it = vocab_.find(c);
    if (it != vocab_.end()) {
      push(it->second, false);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (size_t k = 0; k < len; ++k) all = all && byte_ids_[static_cast<uint8_t>(word[i + k])] >= 0;
      if (all) {
        for (size_t k = 0; k < len; ++k) push(byte_ids_[static_cast<uint8_t>(word[i + k])], false);
        continue;
      }
    }
    if (unk_id_ >= 0) push(unk_id_, true);  // without an unknown token the character is dropped, as in the Rust crate
  }
  for (size_t i = 0; i + 1 < sym.size(); ++i) sym[i].next = static_cast<int>(i + 1);

  struct Candidate {
    int32_t rank;
    int pos;
    int32_t id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  const auto consider = [&](int left) {
    if (left < 0 || sym[static_cast<size_t>(left)].next < 0) return;
    const auto it = merges_.find(key(sym[static_cast<size_t>(left)].id, sym[static_cast<size_t>(sym[static_cast<size_t>(left)].next)].id));
    if (it != merges_.end()) queue.push({it->second.rank, left, it->second.id});
  };
  for (size_t i = 0; i + 1 < sym.size(); ++i) consider(static_cast<int>(i));
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = sym[static_cast<size_t>(c.pos)];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = sym[static_cast<size_t>(left.next)];
    const auto it = merges_.find(key(left.id, right.id));
    if (it == merges_.end() || it->second.id != c.id) continue;  // stale: a neighbour merged since
    left.id = c.id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) sym[static_cast<size_t>(right.next)].prev = c.pos;
    consider(left.prev);
    consider(c.pos);
  }
  for (const Symbol& s : sym)
    if (s.alive) out.push_back(s.id);
}

}  // namespace moe::text
