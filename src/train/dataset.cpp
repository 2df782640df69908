#include "moe/dataset.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include "moe/error.h"
#include "moe/tokenizer.h"
#include "util/resources.h"

namespace moe {

namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& what) { throw InvalidInput("[dataset] " + what); }

// Uniform integer in [0, n) without modulo bias.
uint64_t below(Rng& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t r = rng.next();
  while (r >= limit) r = rng.next();
  return r % n;
}

const char* objective_name(Objective o) { return o == Objective::masked ? "masked" : "next_token"; }

void check_options(const BatchOptions& opt) {
  if (opt.batch < 1) fail("batch=" + std::to_string(opt.batch) + " must be >= 1");
  if (opt.seq_len < 1) fail("seq_len=" + std::to_string(opt.seq_len) + " must be >= 1");
  if (opt.objective == Objective::masked && !(opt.mask_fraction > 0 && opt.mask_fraction <= 1)) {
    fail("mask_fraction=" + std::to_string(opt.mask_fraction) + " must be in (0, 1]");
  }
}

void ensure_shape(Batch& out, int64_t rows, int64_t cols) {
  const Shape want = {rows, cols};
  if (out.inputs.empty() || out.inputs.shape() != want) out.inputs = Tensor(DType::i32, want);
  if (out.targets.empty() || out.targets.shape() != want) out.targets = Tensor(DType::i32, want);
}

// Row r of `out` from the window starting at tokens[start].
void fill_row(Batch& out, int64_t r, std::span<const int32_t> tokens, int64_t start, const BatchOptions& opt) {
  const int64_t S = opt.seq_len;
  int32_t* in = out.inputs.as<int32_t>() + r * S;
  int32_t* tg = out.targets.as<int32_t>() + r * S;
  std::copy_n(tokens.data() + start, S, in);
  if (opt.objective == Objective::next_token) std::copy_n(tokens.data() + start + 1, S, tg);
}

}  // namespace

std::vector<int32_t> load_byte_corpus(const std::string& path) {
  // Bytes, then one int32 token per byte: 5 bytes of memory per byte of corpus.
  const int64_t size = util::regular_file_size(path, "[dataset]", INT64_MAX / 8);
  util::check_memory(5 * size, "the corpus " + path + " (" + util::human_bytes(static_cast<double>(size)) + ")",
                     "[dataset]");
  const std::string bytes = util::read_regular_file(path, "[dataset]", size);
  if (bytes.empty()) fail(path + ": the corpus is empty");
  return ByteTokenizer::encode(bytes);
}

TokenSplit split_tokens(std::span<const int32_t> tokens, double val_fraction, int64_t window) {
  if (!(val_fraction >= 0 && val_fraction < 1)) {
    fail("val_fraction=" + std::to_string(val_fraction) + " must be in [0, 1)");
  }
  if (window < 1) fail("window=" + std::to_string(window) + " must be >= 1");
  const int64_t n = static_cast<int64_t>(tokens.size());
  int64_t n_val = 0;
  if (val_fraction > 0) n_val = std::max<int64_t>(window, static_cast<int64_t>(std::floor(n * val_fraction)));
  const int64_t need = window + (val_fraction > 0 ? window : 0);
  if (n < need || n - n_val < window) {
    fail(std::string(n == 0 ? "the corpus is empty" : "the corpus has " + std::to_string(n) + " tokens") +
         "; need at least " + std::to_string(need) + " (" + std::to_string(window) + " per window for training" +
         (val_fraction > 0 ? " and " + std::to_string(window) + " for validation" : std::string()) + ")");
  }
  TokenSplit split;
  split.train.assign(tokens.begin(), tokens.end() - n_val);
  split.val.assign(tokens.end() - n_val, tokens.end());
  return split;
}

int64_t window_tokens(const BatchOptions& opt) {
  return opt.objective == Objective::next_token ? opt.seq_len + 1 : opt.seq_len;
}

void apply_mask(Batch& batch, Rng& rng, int32_t mask_id, double fraction) {
  const int64_t B = batch.inputs.dim(0), S = batch.inputs.dim(1);
  const int64_t k = std::clamp<int64_t>(std::llround(fraction * static_cast<double>(S)), 1, S);
  std::vector<int64_t> perm(static_cast<size_t>(S));
  for (int64_t r = 0; r < B; ++r) {
    int32_t* in = batch.inputs.as<int32_t>() + r * S;
    int32_t* tg = batch.targets.as<int32_t>() + r * S;
    std::fill_n(tg, S, -1);
    std::iota(perm.begin(), perm.end(), 0);
    for (int64_t j = 0; j < k; ++j) {  // partial Fisher-Yates: k distinct positions
      const int64_t pick = j + static_cast<int64_t>(below(rng, static_cast<uint64_t>(S - j)));
      std::swap(perm[j], perm[pick]);
      tg[perm[j]] = in[perm[j]];
      in[perm[j]] = mask_id;
    }
  }
}

// ---- Batcher ----------------------------------------------------------------------------------

Batcher::Batcher(std::span<const int32_t> tokens, const BatchOptions& opt, uint64_t seed)
    : tokens_(tokens), opt_(opt), rng_(seed) {
  check_options(opt_);
  const int64_t need = window_tokens(opt_);
  if (static_cast<int64_t>(tokens_.size()) < need) {
    fail("the training split has " + std::to_string(tokens_.size()) + " tokens; need at least " +
         std::to_string(need) + " (one window of seq_len " + std::to_string(opt_.seq_len) +
         (opt_.objective == Objective::next_token ? " + 1)" : ")"));
  }
}

void Batcher::next(Batch& out) {
  const int64_t window = window_tokens(opt_);
  const auto starts = static_cast<uint64_t>(static_cast<int64_t>(tokens_.size()) - window + 1);
  ensure_shape(out, opt_.batch, opt_.seq_len);
  for (int64_t r = 0; r < opt_.batch; ++r) {
    fill_row(out, r, tokens_, static_cast<int64_t>(below(rng_, starts)), opt_);
  }
  if (opt_.objective == Objective::masked) apply_mask(out, rng_, opt_.mask_id, opt_.mask_fraction);
  ++batches_drawn_;
}

Batch Batcher::next() {
  Batch b;
  next(b);
  return b;
}

json Batcher::state() const {
  return json{{"rng", rng_state_to_json(rng_.state())},
              {"batches_drawn", batches_drawn_},
              {"batch", opt_.batch},
              {"seq_len", opt_.seq_len},
              {"objective", objective_name(opt_.objective)},
              {"tokens", tokens_.size()}};
}

void Batcher::restore(const json& state) {
  const std::string origin = "[dataset] batcher state";
  const auto expect = [&](const char* key, const json& want) {
    if (!state.is_object() || !state.contains(key)) fail("batcher state has no \"" + std::string(key) + "\"");
    if (state.at(key) != want) {
      fail("batcher state has " + std::string(key) + "=" + state.at(key).dump() + ", this run has " + want.dump());
    }
  };
  expect("batch", opt_.batch);
  expect("seq_len", opt_.seq_len);
  expect("objective", objective_name(opt_.objective));
  expect("tokens", tokens_.size());
  const json& drawn = state.contains("batches_drawn") ? state.at("batches_drawn") : json();
  if (!drawn.is_number_integer() || drawn.get<int64_t>() < 0) fail("batcher state: bad batches_drawn " + drawn.dump());
  const RngState rng = rng_state_from_json(state.at("rng"), origin);
  rng_.set_state(rng);
  batches_drawn_ = drawn.get<int64_t>();
}

// ---- ValBatches ----------------------------------------------------------------------------------

ValBatches::ValBatches(std::span<const int32_t> tokens, const BatchOptions& opt, uint64_t mask_seed)
    : tokens_(tokens), opt_(opt), mask_seed_(mask_seed), rng_(mask_seed) {
  check_options(opt_);
  const int64_t window = window_tokens(opt_);
  const auto n = static_cast<int64_t>(tokens_.size());
  if (n < window) {
    fail("the validation split has " + std::to_string(n) + " tokens; need at least " + std::to_string(window));
  }
  windows_ = (n - window) / opt_.seq_len + 1;
}

void ValBatches::reset() {
  next_window_ = 0;
  rng_ = Rng(mask_seed_);
}

bool ValBatches::next(Batch& out) {
  if (next_window_ >= windows_) return false;
  const int64_t rows = std::min(opt_.batch, windows_ - next_window_);
  ensure_shape(out, rows, opt_.seq_len);
  for (int64_t r = 0; r < rows; ++r) fill_row(out, r, tokens_, (next_window_ + r) * opt_.seq_len, opt_);
  if (opt_.objective == Objective::masked) apply_mask(out, rng_, opt_.mask_id, opt_.mask_fraction);
  next_window_ += rows;
  return true;
}

// ---- RngState as JSON -------------------------------------------------------------------------

json rng_state_to_json(const RngState& st) {
  return json{{"s", {st.s[0], st.s[1], st.s[2], st.s[3]}},
              {"spare_bits", std::bit_cast<uint64_t>(st.spare)},
              {"has_spare", st.has_spare}};
}

RngState rng_state_from_json(const json& j, const std::string& origin) {
  const auto bad = [&](const std::string& why) -> RngState { throw InvalidInput(origin + ": rng state " + why); };
  if (!j.is_object()) return bad("is not an object: " + j.dump());
  for (const char* key : {"s", "spare_bits", "has_spare"}) {
    if (!j.contains(key)) return bad("has no \"" + std::string(key) + "\"");
  }
  const json& s = j.at("s");
  if (!s.is_array() || s.size() != 4) return bad("\"s\" must be 4 unsigned integers, got " + s.dump());
  RngState st;
  for (size_t i = 0; i < 4; ++i) {
    if (!s[i].is_number_unsigned()) return bad("\"s\" must be 4 unsigned integers, got " + s.dump());
    st.s[i] = s[i].get<uint64_t>();
  }
  if (st.s[0] == 0 && st.s[1] == 0 && st.s[2] == 0 && st.s[3] == 0) return bad("is all zeros (xoshiro's fixed point)");
  if (!j.at("spare_bits").is_number_unsigned() || !j.at("has_spare").is_boolean()) {
    return bad("has a bad spare_bits/has_spare: " + j.dump());
  }
  st.spare = std::bit_cast<double>(j.at("spare_bits").get<uint64_t>());
  st.has_spare = j.at("has_spare").get<bool>();
  return st;
}

}  // namespace moe
