// libFuzzer target: training checkpoints as `moe train --resume`, `moe generate`, `moe eval` and
// `moe analyze` read them. Two kinds of input:
//   raw bytes          -> a file -> load_checkpoint (safetensors, format, checksum, metadata)
//   'M' config \0 state -> a valid checkpoint written with that metadata (so the checksum holds
//                         and the fuzzer reaches what reads the metadata: the model config, the
//                         train state, the batcher and rng states)
// Every path ends in a result or InvalidInput; models the memory limit refuses are refused.
#include <cstring>

#include "fuzz_common.h"
#include "moe/checkpoint.h"
#include "moe/dataset.h"
#include "moe/trainer.h"

namespace {

void read_everything(const std::string& path) {
  moe::Checkpoint ck = moe::load_checkpoint(path);
  try {
    const moe::ResumeState rs = moe::resume_state_from_json(ck.train_state, ck.path);
    const std::vector<int32_t> tokens(64, 1);
    moe::BatchOptions b;
    b.batch = 2;
    b.seq_len = 8;
    moe::Batcher batcher(tokens, b, 1);
    batcher.restore(rs.batcher);
  } catch (const moe::InvalidInput&) {
  }
  try {
    moe::check_config_matches(ck.config, nlohmann::json{{"model", nullptr}, {"seed", 1}}, ck.path);
  } catch (const moe::InvalidInput&) {
  }
  (void)moe::load_gpt_checkpoint(path);  // the model config, then weights under the memory limit
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::limit_memory();
  moe::set_warning_handler([](const std::string&) {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path;
  if (size > 0 && data[0] == 'M') {
    const uint8_t* split = static_cast<const uint8_t*>(std::memchr(data + 1, 0, size - 1));
    if (!split) return 0;
    const std::optional<nlohmann::json> config = fuzz::json_of(data + 1, static_cast<size_t>(split - data - 1));
    const std::optional<nlohmann::json> state = fuzz::json_of(split + 1, static_cast<size_t>(data + size - split - 1));
    if (!config || !state) return 0;
    float w[4] = {1, 2, 3, 4};
    const moe::NamedTensors tensors = {{"wte", moe::TensorView(w, moe::DType::f32, {2, 2})}};
    path = fuzz::scratch_path();
    try {
      moe::save_checkpoint(path, *config, tensors, *state);
    } catch (const moe::InvalidInput&) {
      return 0;
    }
  } else {
    path = fuzz::write_scratch(data, size);
  }
  try {
    read_everything(path);
  } catch (const moe::InvalidInput&) {
  }
  return 0;
}
