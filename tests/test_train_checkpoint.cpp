// Checkpoints: bit-exact round trips, clear errors for missing, truncated and corrupted files,
// shape/name mismatches and config differences, and atomic saves that never damage the last
// good checkpoint.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "moe/checkpoint.h"
#include "moe/dataset.h"
#include "moe/error.h"
#include "moe/optimizer.h"
#include "moe/rng.h"

namespace fs = std::filesystem;
using moe::DType;
using moe::NamedTensors;
using moe::Tensor;
using nlohmann::json;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("moe_ckpt_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

int count_entries(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += (void(e), 1);
  return n;
}

// A model-like set of tensors with an optimizer state, filled with random values.
struct State {
  std::vector<std::string> names = {"embed", "blocks.0.attn.wq", "blocks.0.norm.weight", "head"};
  std::vector<moe::Shape> shapes = {{13, 8}, {8, 8}, {8}, {8, 13}};
  std::vector<Tensor> params, grads;
  std::unique_ptr<moe::AdamW> adamw;

  explicit State(uint64_t seed) {
    moe::Rng rng(seed);
    NamedTensors p, g;
    for (size_t i = 0; i < names.size(); ++i) {
      params.emplace_back(DType::f32, shapes[i]);
      grads.emplace_back(DType::f32, shapes[i]);
      for (int64_t j = 0; j < params[i].numel(); ++j) {
        params[i].as<float>()[j] = float(rng.normal());
        grads[i].as<float>()[j] = float(rng.normal());
      }
      p.emplace_back(names[i], params[i].view());
      g.emplace_back(names[i], grads[i].view());
    }
    adamw = std::make_unique<moe::AdamW>(moe::pair_params(p, g), moe::AdamWOptions{});
    adamw->step(1e-3);
  }
  NamedTensors all() const {
    NamedTensors out;
    for (size_t i = 0; i < names.size(); ++i) out.emplace_back(names[i], params[i].view());
    for (const auto& t : adamw->state_tensors()) out.push_back(t);
    return out;
  }
};

const json kConfig = {{"model", {{"n_layers", 1}, {"d_model", 8}, {"vocab", 13}, {"ffn", "moe"}}},
                      {"train", {{"batch", 4}, {"lr", 1e-3}}}};

json train_state(const moe::Rng& rng) {
  return {{"step", 1}, {"rng", moe::rng_state_to_json(rng.state())}, {"lr", 1e-3}, {"note", "ünïcode ok"}};
}

template <class F> std::string invalid_message(F f) {
  try {
    f();
  } catch (const moe::InvalidInput& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InvalidInput";
  return "";
}

}  // namespace

TEST(Checkpoint, RoundTripIsBitExact) {
  const fs::path dir = fresh_dir("roundtrip");
  const State s(1);
  moe::Rng rng(99);
  rng.normal();
  const std::string path = (dir / "ck.safetensors").string();
  moe::save_checkpoint(path, kConfig, s.all(), train_state(rng));
  EXPECT_EQ(count_entries(dir), 1);

  const moe::Checkpoint ck = moe::load_checkpoint(path);
  EXPECT_EQ(ck.config, kConfig);
  EXPECT_EQ(ck.train_state, train_state(rng));
  ASSERT_EQ(ck.tensors.size(), s.all().size());
  for (const auto& [name, t] : s.all()) {
    const Tensor& got = ck.tensors.at(name);
    EXPECT_EQ(got.dtype(), t.dtype()) << name;
    EXPECT_EQ(got.shape(), t.shape()) << name;
    EXPECT_EQ(std::memcmp(got.data(), t.data(), t.nbytes()), 0) << name;
  }
  // Restoring into a fresh model + optimizer reproduces every byte, and the rng continues.
  State fresh(2);
  moe::restore_into(fresh.all(), ck.tensors, path);
  for (const auto& [name, t] : fresh.all()) {
    EXPECT_EQ(std::memcmp(ck.tensors.at(name).data(), t.data(), t.nbytes()), 0) << name;
  }
  EXPECT_EQ(fresh.adamw->step_count(), 1);
  moe::Rng resumed(0);
  resumed.set_state(moe::rng_state_from_json(ck.train_state.at("rng"), "[test]"));
  EXPECT_EQ(resumed.normal(), rng.normal());
  fs::remove_all(dir);
}

TEST(Checkpoint, ADirectoryHoldsCheckpointSafetensors) {
  const fs::path dir = fresh_dir("dir");
  const State s(1);
  moe::save_checkpoint(dir.string(), kConfig, s.all(), json::object());
  EXPECT_TRUE(fs::exists(dir / "checkpoint.safetensors"));
  EXPECT_EQ(moe::load_checkpoint(dir.string()).path, (dir / "checkpoint.safetensors").string());
  fs::remove_all(dir);
}

TEST(Checkpoint, MissingFileAndForeignFiles) {
  const fs::path dir = fresh_dir("missing");
  std::string what = invalid_message([&] { moe::load_checkpoint((dir / "nope.safetensors").string()); });
  EXPECT_EQ(what.rfind("[checkpoint] ", 0), 0u) << what;
  EXPECT_NE(what.find("no such file"), std::string::npos) << what;
  // A plain safetensors file that is not one of ours.
  Tensor t = Tensor::from<float>({2}, {1, 2});
  moe::write_safetensors((dir / "plain.safetensors").string(), {{"x", t.view()}});
  what = invalid_message([&] { moe::load_checkpoint((dir / "plain.safetensors").string()); });
  EXPECT_NE(what.find("not a moe.cpp checkpoint"), std::string::npos) << what;
  spit(dir / "text.safetensors", "hello, I am not a checkpoint");
  what = invalid_message([&] { moe::load_checkpoint((dir / "text.safetensors").string()); });
  EXPECT_NE(what.find("not a readable checkpoint"), std::string::npos) << what;
  fs::remove_all(dir);
}

TEST(Checkpoint, TruncatedFilesAreInvalidInputAtEveryCut) {
  const fs::path dir = fresh_dir("truncated");
  const State s(3);
  const fs::path good = dir / "good.safetensors";
  moe::save_checkpoint(good.string(), kConfig, s.all(), train_state(moe::Rng(1)));
  const std::string bytes = slurp(good);
  const fs::path cut = dir / "cut.safetensors";
  std::vector<size_t> offsets = {0, 1, 7, 8, 9, 100, bytes.size() / 2, bytes.size() - 4, bytes.size() - 1};
  for (size_t at = 16; at < bytes.size(); at += bytes.size() / 37) offsets.push_back(at);
  for (size_t at : offsets) {
    spit(cut, bytes.substr(0, at));
    const std::string what = invalid_message([&] { moe::load_checkpoint(cut.string()); });
    EXPECT_EQ(what.rfind("[checkpoint] ", 0), 0u) << "cut at " << at << ": " << what;
  }
  fs::remove_all(dir);
}

TEST(Checkpoint, CorruptedDataFailsTheChecksum) {
  const fs::path dir = fresh_dir("corrupt");
  const State s(4);
  const fs::path good = dir / "good.safetensors";
  moe::save_checkpoint(good.string(), kConfig, s.all(), json::object());
  const std::string bytes = slurp(good);
  const fs::path bad = dir / "bad.safetensors";
  // Flip one bit in the data buffer (the last bytes belong to a tensor): only the checksum sees it.
  for (size_t back : {1, 5, 300}) {
    std::string flipped = bytes;
    flipped[bytes.size() - back] ^= 0x10;
    spit(bad, flipped);
    const std::string what = invalid_message([&] { moe::load_checkpoint(bad.string()); });
    EXPECT_NE(what.find("checksum mismatch"), std::string::npos) << what;
  }
  fs::remove_all(dir);
}

// The checksum covers the metadata as well: an edited train state or config (same length, so
// the file still parses) is refused. A format-1 file (tensors-only checksum) still loads.
TEST(Checkpoint, EditedMetadataFailsTheChecksum) {
  const fs::path dir = fresh_dir("edited");
  const State s(4);
  const fs::path good = dir / "good.safetensors";
  moe::save_checkpoint(good.string(), kConfig, s.all(), json{{"step", 50}});
  const std::string bytes = slurp(good);
  const fs::path bad = dir / "bad.safetensors";
  // Step 50 -> 58 in the train state, 8 -> 9 in the model config: same length, still parses.
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"\\\"step\\\":50", "\\\"step\\\":58"},
                                 {"\\\"d_model\\\":8", "\\\"d_model\\\":9"}}) {
    const size_t at = bytes.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    std::string edited = bytes;
    edited.replace(at, from.size(), to);
    spit(bad, edited);
    const std::string what = invalid_message([&] { moe::load_checkpoint(bad.string()); });
    EXPECT_NE(what.find("checksum mismatch"), std::string::npos) << from << ": " << what;
  }
  fs::remove_all(dir);
  // A format-1 checkpoint (written before the metadata was covered) loads and verifies.
  const moe::Checkpoint v1 = moe::load_checkpoint(std::string(MOE_SOURCE_DIR) + "/tests/data/checkpoint_v1.safetensors");
  EXPECT_EQ(v1.train_state.at("step"), 2);
  EXPECT_FALSE(v1.tensors.empty());
}

TEST(Checkpoint, RestoreNamesTheFirstMismatchAndWritesNothing) {
  const fs::path dir = fresh_dir("restore");
  const State s(5);
  const std::string path = (dir / "ck.safetensors").string();
  moe::save_checkpoint(path, kConfig, s.all(), json::object());
  const moe::Checkpoint ck = moe::load_checkpoint(path);

  // A model whose attention matrix has another shape.
  State other(6);
  Tensor wq(DType::f32, {8, 4});
  NamedTensors dst = other.all();
  for (auto& [name, t] : dst) {
    if (name == "blocks.0.attn.wq") t = wq.view();
  }
  const std::vector<float> embed_before(other.params[0].as<float>(), other.params[0].as<float>() + other.params[0].numel());
  std::string what = invalid_message([&] { moe::restore_into(dst, ck.tensors, path); });
  EXPECT_NE(what.find("tensor 'blocks.0.attn.wq' has shape [8, 8] in the checkpoint, expected [8, 4]"), std::string::npos)
      << what;
  // Nothing was copied, not even the tensors before the mismatch.
  EXPECT_EQ(std::memcmp(embed_before.data(), other.params[0].data(), other.params[0].nbytes()), 0);

  // A model with a tensor the checkpoint lacks, and a run that ignores some of the checkpoint.
  Tensor extra(DType::f32, {3});
  dst = other.all();
  dst.emplace_back("blocks.1.attn.wq", extra.view());
  what = invalid_message([&] { moe::restore_into(dst, ck.tensors, path); });
  EXPECT_NE(what.find("no tensor 'blocks.1.attn.wq' in the checkpoint"), std::string::npos) << what;
  dst = other.all();
  dst.pop_back();  // the last adam.v tensor is not restored
  what = invalid_message([&] { moe::restore_into(dst, ck.tensors, path); });
  EXPECT_NE(what.find("has a tensor 'adam.v.head' that this run does not use"), std::string::npos) << what;
  moe::restore_into(dst, ck.tensors, path, /*allow_unused=*/true);  // e.g. weights only, for generation
  // Another dtype.
  Tensor as_f64(DType::f64, {13, 8});
  dst = {{"embed", as_f64.view()}};
  what = invalid_message([&] { moe::restore_into(dst, ck.tensors, path, true); });
  EXPECT_NE(what.find("tensor 'embed' is F32 in the checkpoint, expected F64"), std::string::npos) << what;
  fs::remove_all(dir);
}

TEST(Checkpoint, ConfigDifferenceNamesTheKey) {
  EXPECT_EQ(moe::first_config_difference(kConfig, kConfig), std::nullopt);
  json run = kConfig;
  run["model"]["n_layers"] = 2;
  auto d = moe::first_config_difference(kConfig, run);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->key, "model.n_layers");
  EXPECT_EQ(d->a, "1");
  EXPECT_EQ(d->b, "2");
  std::string what = invalid_message([&] { moe::check_config_matches(kConfig, run, "ck.safetensors"); });
  EXPECT_EQ(what, "[checkpoint] ck.safetensors: the checkpoint's config differs from this run's at model.n_layers: "
                  "checkpoint has 1, this run has 2");
  // Ignored keys, missing keys, arrays, type changes.
  EXPECT_EQ(moe::first_config_difference(kConfig, run, {"model.n_layers"}), std::nullopt);
  run = kConfig;
  run["model"].erase("ffn");
  d = moe::first_config_difference(kConfig, run);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->key, "model.ffn");
  EXPECT_EQ(d->b, "(missing)");
  d = moe::first_config_difference(json{{"layers", {1, 2, 3}}}, json{{"layers", {1, 5, 3}}});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->key, "layers[1]");
  d = moe::first_config_difference(json{{"k", 1}}, json{{"k", "1"}});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->b, "\"1\"");
  run = kConfig;
  run["train"]["lr"] = 3e-4;  // a run may change what does not shape the model
  EXPECT_EQ(moe::first_config_difference(kConfig, run, {"train"}), std::nullopt);
}

TEST(Checkpoint, FailedSaveKeepsTheLastGoodCheckpoint) {
  const fs::path dir = fresh_dir("atomic");
  const State s(7);
  const fs::path path = dir / "ck.safetensors";
  moe::save_checkpoint(path.string(), kConfig, s.all(), json{{"step", 1}});
  const std::string good = slurp(path);

  // 1. Bad input (a tensor without data, a duplicate name): rejected before anything is written.
  NamedTensors broken = s.all();
  broken.emplace_back("ghost", moe::TensorView(nullptr, DType::f32, {4}));
  std::string what = invalid_message([&] { moe::save_checkpoint(path.string(), kConfig, broken, json::object()); });
  EXPECT_NE(what.find("tensor 'ghost' has no data"), std::string::npos) << what;
  broken = s.all();
  broken.push_back(broken.front());
  what = invalid_message([&] { moe::save_checkpoint(path.string(), kConfig, broken, json::object()); });
  EXPECT_NE(what.find("tensor 'embed' is given twice"), std::string::npos) << what;
  EXPECT_EQ(slurp(path), good);

  // 2. The write itself fails half way (file size limit: EFBIG), as on a full disk.
  State big(8);
  Tensor huge(DType::f32, {1 << 16});
  NamedTensors more = big.all();
  more.emplace_back("huge", huge.view());
  struct rlimit saved {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = good.size() + 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  bool threw = false;
  try {
    moe::save_checkpoint(path.string(), kConfig, more, json{{"step", 2}});
  } catch (const std::runtime_error& e) {
    threw = true;
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(threw);
  EXPECT_EQ(slurp(path), good);
  EXPECT_EQ(count_entries(dir), 1);  // no temp file left behind
  EXPECT_EQ(moe::load_checkpoint(path.string()).train_state, (json{{"step", 1}}));

  // 3. A folder that cannot be made (a file stands where it would be): refused, the file kept.
  EXPECT_THROW(moe::save_checkpoint((path / "sub" / "x.safetensors").string(), kConfig, s.all(), json{}),
               moe::InvalidInput);
  EXPECT_EQ(slurp(path), good);
  fs::remove_all(dir);
}
