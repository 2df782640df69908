// Data: the train/val split, the Batcher's determinism and exact save/restore, validation
// windows, the masked objective, and clear errors for a corpus too small to train on.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <numeric>

#include "moe/dataset.h"
#include "moe/error.h"

namespace fs = std::filesystem;
using moe::Batch;
using moe::BatchOptions;
using moe::Batcher;
using moe::Objective;

namespace {

std::vector<int32_t> ramp(int64_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>((i * 7 + i / 13) % 256);
  return t;
}

std::vector<int32_t> as_vector(const moe::Tensor& t) {
  return std::vector<int32_t>(t.as<int32_t>(), t.as<int32_t>() + t.numel());
}

bool same(const Batch& a, const Batch& b) {
  return a.inputs.shape() == b.inputs.shape() && as_vector(a.inputs) == as_vector(b.inputs) &&
         as_vector(a.targets) == as_vector(b.targets);
}

void expect_invalid(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "accepted; expected an error containing: " << fragment;
  } catch (const moe::InvalidInput& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("[dataset] ", 0), 0u) << what;
    EXPECT_NE(what.find(fragment), std::string::npos) << what;
  }
}

}  // namespace

TEST(Dataset, SplitIsTheTailAndDeterministic) {
  const auto tokens = ramp(1000);
  const moe::TokenSplit s = moe::split_tokens(tokens, 0.1, 17);
  ASSERT_EQ(s.train.size(), 900u);
  ASSERT_EQ(s.val.size(), 100u);
  EXPECT_TRUE(std::equal(s.train.begin(), s.train.end(), tokens.begin()));
  EXPECT_TRUE(std::equal(s.val.begin(), s.val.end(), tokens.begin() + 900));
  // A tiny fraction still leaves one whole validation window.
  EXPECT_EQ(moe::split_tokens(tokens, 0.001, 17).val.size(), 17u);
  EXPECT_EQ(moe::split_tokens(tokens, 0.0, 17).val.size(), 0u);
}

TEST(Dataset, TooShortCorpusSaysHowManyTokensAreNeeded) {
  expect_invalid([] { moe::split_tokens({}, 0.1, 65); }, "the corpus is empty; need at least 130");
  const auto few = ramp(100);
  expect_invalid([&] { moe::split_tokens(few, 0.1, 65); }, "the corpus has 100 tokens; need at least 130");
  expect_invalid([&] { moe::split_tokens(few, 0.0, 129); }, "need at least 129");
  BatchOptions opt;
  opt.seq_len = 128;
  expect_invalid([&] { Batcher(few, opt, 1); }, "has 100 tokens; need at least 129");
  expect_invalid([&] { moe::ValBatches(few, opt); }, "need at least 129");
}

TEST(Dataset, LoadByteCorpus) {
  const fs::path p = fs::temp_directory_path() / ("moe_corpus_" + std::to_string(::getpid()) + ".txt");
  { std::ofstream(p, std::ios::binary) << "h\xc3\xa9"; }
  EXPECT_EQ(moe::load_byte_corpus(p.string()), (std::vector<int32_t>{'h', 0xc3, 0xa9}));
  { std::ofstream(p, std::ios::binary).flush(); }
  expect_invalid([&] { moe::load_byte_corpus(p.string()); }, "the corpus is empty");
  fs::remove(p);
  expect_invalid([&] { moe::load_byte_corpus(p.string()); }, "cannot open");
}

TEST(Batcher, WindowsAreShiftedByOne) {
  const auto tokens = ramp(500);
  BatchOptions opt;
  opt.batch = 4;
  opt.seq_len = 16;
  Batcher b(tokens, opt, 42);
  const Batch batch = b.next();
  ASSERT_EQ(batch.inputs.shape(), (moe::Shape{4, 16}));
  ASSERT_EQ(batch.targets.shape(), (moe::Shape{4, 16}));
  const int32_t* in = batch.inputs.as<int32_t>();
  const int32_t* tg = batch.targets.as<int32_t>();
  for (int r = 0; r < 4; ++r) {
    // Find the window's start in the corpus, then check both rows against it.
    bool found = false;
    for (size_t s = 0; s + 17 <= tokens.size() && !found; ++s) {
      found = std::equal(in + r * 16, in + r * 16 + 16, tokens.begin() + s) &&
              std::equal(tg + r * 16, tg + r * 16 + 16, tokens.begin() + s + 1);
    }
    EXPECT_TRUE(found) << "row " << r;
  }
}

TEST(Batcher, SameSeedSameBatchesDifferentSeedDifferent) {
  const auto tokens = ramp(5000);
  BatchOptions opt;
  opt.batch = 3;
  opt.seq_len = 32;
  Batcher a(tokens, opt, 1), b(tokens, opt, 1), c(tokens, opt, 2);
  bool any_diff = false;
  for (int i = 0; i < 5; ++i) {
    const Batch ba = a.next(), bb = b.next(), bc = c.next();
    EXPECT_TRUE(same(ba, bb)) << "batch " << i;
    any_diff |= !same(ba, bc);
  }
  EXPECT_TRUE(any_diff);
  EXPECT_EQ(a.batches_drawn(), 5);
}

TEST(Batcher, RestoredStateGivesIdenticalNextBatches) {
  const auto tokens = ramp(3000);
  for (Objective objective : {Objective::next_token, Objective::masked}) {
    BatchOptions opt;
    opt.batch = 4;
    opt.seq_len = 20;
    opt.objective = objective;
    Batcher a(tokens, opt, 9);
    for (int i = 0; i < 7; ++i) a.next();
    // Through text, as a checkpoint stores it.
    const std::string saved = a.state().dump();
    std::vector<Batch> expected;
    for (int i = 0; i < 5; ++i) expected.push_back(a.next());
    Batcher b(tokens, opt, 12345);  // a different seed: restore must override everything
    b.restore(nlohmann::json::parse(saved));
    EXPECT_EQ(b.batches_drawn(), 7);
    Batch got;
    for (int i = 0; i < 5; ++i) {
      b.next(got);
      EXPECT_TRUE(same(got, expected[i])) << "batch " << i;
    }
  }
}

TEST(Batcher, RestoreChecksTheShapesAndTheState) {
  const auto tokens = ramp(3000);
  BatchOptions opt;
  opt.batch = 4;
  opt.seq_len = 20;
  Batcher a(tokens, opt, 9);
  const nlohmann::json state = a.state();
  BatchOptions other = opt;
  other.seq_len = 21;
  Batcher b(tokens, other, 9);
  expect_invalid([&] { b.restore(state); }, "seq_len=20, this run has 21");
  Batcher c(std::span<const int32_t>(tokens).first(2000), opt, 9);
  expect_invalid([&] { c.restore(state); }, "tokens=3000, this run has 2000");
  nlohmann::json broken = state;
  broken["rng"]["s"] = {1, 2, 3};
  expect_invalid([&] { a.restore(broken); }, "\"s\" must be 4 unsigned integers");
  broken = state;
  broken.erase("batches_drawn");
  expect_invalid([&] { a.restore(broken); }, "batches_drawn");
}

TEST(RngStateJson, RoundTripsExactlyIncludingTheCachedNormal) {
  moe::Rng rng(77);
  rng.normal();  // leaves a cached spare
  const nlohmann::json j = nlohmann::json::parse(moe::rng_state_to_json(rng.state()).dump());
  moe::Rng copy(1);
  copy.set_state(moe::rng_state_from_json(j, "[test]"));
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(copy.normal(), rng.normal());
    EXPECT_EQ(copy.next(), rng.next());
  }
}

TEST(ValBatches, CoverTheSplitInFixedWindows) {
  const auto tokens = ramp(103);
  BatchOptions opt;
  opt.batch = 4;
  opt.seq_len = 10;
  moe::ValBatches val(tokens, opt);
  EXPECT_EQ(val.windows(), 10);  // starts 0, 10, ..., 90; the window at 90 ends at token 100
  EXPECT_EQ(val.batches(), 3);
  for (int pass = 0; pass < 2; ++pass) {
    Batch b;
    int64_t window = 0;
    std::vector<int64_t> rows;
    while (val.next(b)) {
      rows.push_back(b.rows());
      for (int64_t r = 0; r < b.rows(); ++r, ++window) {
        for (int64_t j = 0; j < 10; ++j) {
          ASSERT_EQ(b.inputs.as<int32_t>()[r * 10 + j], tokens[window * 10 + j]);
          ASSERT_EQ(b.targets.as<int32_t>()[r * 10 + j], tokens[window * 10 + j + 1]);
        }
      }
    }
    EXPECT_EQ(rows, (std::vector<int64_t>{4, 4, 2}));
    EXPECT_EQ(window, 10);
    val.reset();
  }
}

TEST(MaskedObjective, MasksTheFractionAndTargetsTheOriginals) {
  const auto tokens = ramp(4000);
  BatchOptions opt;
  opt.batch = 8;
  opt.seq_len = 40;
  opt.objective = Objective::masked;
  opt.mask_id = 256;
  opt.mask_fraction = 0.15;
  Batcher b(tokens, opt, 5);
  int64_t total_masked = 0;
  for (int i = 0; i < 10; ++i) {
    const Batch batch = b.next();
    for (int64_t r = 0; r < 8; ++r) {
      const int32_t* in = batch.inputs.as<int32_t>() + r * 40;
      const int32_t* tg = batch.targets.as<int32_t>() + r * 40;
      int masked = 0;
      for (int j = 0; j < 40; ++j) {
        if (in[j] == 256) {
          ++masked;
          EXPECT_TRUE(tg[j] >= 0 && tg[j] < 256);
        } else {
          EXPECT_EQ(tg[j], -1) << "unmasked position " << j << " has a target";
        }
      }
      EXPECT_EQ(masked, 6);  // round(0.15 * 40)
      total_masked += masked;
      // Restoring the masked positions gives a contiguous window of the corpus.
      std::vector<int32_t> original(in, in + 40);
      for (int j = 0; j < 40; ++j) {
        if (in[j] == 256) original[j] = tg[j];
      }
      EXPECT_NE(std::search(tokens.begin(), tokens.end(), original.begin(), original.end()), tokens.end());
    }
  }
  EXPECT_EQ(total_masked, 10 * 8 * 6);
}

TEST(MaskedObjective, PositionsAreSpreadAndAtLeastOne) {
  // Over many rows every position gets masked about equally often.
  const int S = 20;
  moe::Batch batch;
  batch.inputs = moe::Tensor(moe::DType::i32, {2000, S});
  batch.targets = moe::Tensor(moe::DType::i32, {2000, S});
  moe::Rng rng(3);
  moe::apply_mask(batch, rng, -7, 0.25);
  std::vector<int> count(S, 0);
  for (int64_t i = 0; i < batch.inputs.numel(); ++i) count[i % S] += batch.inputs.as<int32_t>()[i] == -7;
  for (int j = 0; j < S; ++j) EXPECT_NEAR(count[j], 2000 * 0.25, 80) << "position " << j;
  moe::Batch one;
  one.inputs = moe::Tensor(moe::DType::i32, {1, 3});
  one.targets = moe::Tensor(moe::DType::i32, {1, 3});
  moe::apply_mask(one, rng, 99, 0.01);
  EXPECT_EQ(std::count(one.inputs.as<int32_t>(), one.inputs.as<int32_t>() + 3, 99), 1);
}

TEST(MaskedObjective, ValidationMaskIsTheSameEveryPass) {
  const auto tokens = ramp(500);
  BatchOptions opt;
  opt.batch = 4;
  opt.seq_len = 16;
  opt.objective = Objective::masked;
  moe::ValBatches val(tokens, opt, 3);
  EXPECT_EQ(val.windows(), 31);  // masked windows are S tokens: starts 0..480
  Batch first, again;
  ASSERT_TRUE(val.next(first));
  val.reset();
  ASSERT_TRUE(val.next(again));
  EXPECT_TRUE(same(first, again));
}
