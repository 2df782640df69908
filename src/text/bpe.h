// The BPE model of a tokenizer.json ("model": {"type": "BPE", ...}): a word (one pre-tokenized
// piece) starts as its characters and the adjacent pair of lowest merge rank is merged until no
// pair has a rank (leftmost first among equal ranks), as the Rust crate does. Characters missing
// from the vocabulary become <0xNN> byte tokens (byte_fallback) or the unknown token (fused when
// fuse_unk); with ignore_merges a word that is itself in the vocabulary is one token.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe::text {

class Bpe {
 public:
  Bpe(const nlohmann::json& model, const std::string& where);

  void encode_word(std::string_view word, std::vector<int32_t>& out) const;  // appends the word's ids

  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }
  size_t n_merges() const { return merges_.size(); }

 private:
  struct Merge {
    int32_t rank, id;
  };
  static uint64_t key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<uint64_t, Merge> merges_;  // (left id, right id) -> rank and merged id
  int32_t unk_id_ = -1;
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  std::string prefix_, suffix_;  // continuing_subword_prefix, end_of_word_suffix
  int32_t byte_ids_[256];        // <0xNN> ids (-1 where absent)

  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;  // word -> ids (bounded)
};

}  // namespace moe::text
