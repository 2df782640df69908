// Training data: a token stream split into train/val, random training windows drawn by a seeded
// Batcher whose whole state can be saved and restored (bit-exact resume), and fixed sequential
// validation windows. Two objectives:
//   next_token  inputs = w[0..S), targets = w[1..S]           (windows of S+1 tokens; decoder)
//   masked      inputs = w[0..S) with a fraction of positions replaced by mask_id, targets = the
//               original token at masked positions and -1 elsewhere (windows of S; encoder)
// Legend: B batch rows, S sequence length.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/rng.h"
#include "moe/tensor.h"

namespace moe {

// The bytes of a file as tokens (byte tokenizer). Throws InvalidInput("[dataset] <path>: ...") if
// the file cannot be read or is empty.
std::vector<int32_t> load_byte_corpus(const std::string& path);

struct TokenSplit {
  std::vector<int32_t> train;
  std::vector<int32_t> val;
};

// The last `val_fraction` of the stream (at least one window) is validation, the rest training:
// deterministic, no shuffling, no overlap. `window` is the tokens one sample needs (S+1 for
// next_token, S for masked); too few tokens -> InvalidInput saying how many are needed.
TokenSplit split_tokens(std::span<const int32_t> tokens, double val_fraction, int64_t window);

enum class Objective { next_token, masked };

struct BatchOptions {
  int64_t batch = 8;     // B
  int64_t seq_len = 64;  // S
  Objective objective = Objective::next_token;
  int32_t mask_id = 256;        // masked: the id written at masked positions (vocabulary + 1)
  double mask_fraction = 0.15;  // masked: round(fraction * S) positions per row, at least 1
};

// Tokens one sample spans: S+1 (next_token) or S (masked).
int64_t window_tokens(const BatchOptions& opt);

struct Batch {
  Tensor inputs;   // [B, S] i32
  Tensor targets;  // [B, S] i32; -1 = no loss at this position
  int64_t rows() const { return inputs.empty() ? 0 : inputs.dim(0); }
};

// Masks `fraction` of each row of inputs [B, S] (positions drawn by rng without replacement):
// targets = original id at masked positions, -1 elsewhere; inputs there = mask_id.
void apply_mask(Batch& batch, Rng& rng, int32_t mask_id, double fraction);

// Random training windows. The tokens are borrowed: they must outlive the Batcher.
class Batcher {
 public:
  Batcher(std::span<const int32_t> tokens, const BatchOptions& opt, uint64_t seed);

  // Fills `out` ([B, S] each, reallocated only if the shape differs) with the next batch.
  void next(Batch& out);
  Batch next();

  int64_t batches_drawn() const { return batches_drawn_; }
  const BatchOptions& options() const { return opt_; }

  // Everything needed to continue the exact same sequence of batches: rng state, counters, and
  // the shapes and corpus size, which restore() checks ("[dataset] ..." InvalidInput on mismatch).
  nlohmann::json state() const;
  void restore(const nlohmann::json& state);

 private:
  std::span<const int32_t> tokens_;
  BatchOptions opt_;
  Rng rng_;
  int64_t batches_drawn_ = 0;
};

// Sequential validation windows: window i starts at i * S, so all windows together cover the
// split once; batches have B rows except possibly the last. Masked positions come from a fixed
// seed reset by reset(), so every pass sees the same batches.
class ValBatches {
 public:
  ValBatches(std::span<const int32_t> tokens, const BatchOptions& opt, uint64_t mask_seed = 0);

  int64_t windows() const { return windows_; }
  int64_t batches() const { return (windows_ + opt_.batch - 1) / opt_.batch; }
  void reset();
  bool next(Batch& out);  // false when the pass is over (then reset() for another)

 private:
  std::span<const int32_t> tokens_;
  BatchOptions opt_;
  uint64_t mask_seed_;
  Rng rng_;
  int64_t windows_ = 0;
  int64_t next_window_ = 0;
};

// RngState <-> JSON (words as unsigned integers, the cached normal as its bit pattern): exact.
nlohmann::json rng_state_to_json(const RngState& state);
RngState rng_state_from_json(const nlohmann::json& j, const std::string& origin);

}  // namespace moe
