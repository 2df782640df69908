// libFuzzer target: chat templates (`moe template`, and the chat of every model later). Bytes ->
// a Jinja template -> parsed and rendered with a conversation, tools and the usual variables.
// Every path ends in a prompt or InvalidInput; runaway templates are stopped by the
// interpreter's bounds (recursion, output size, range and repetition sizes).
#include "fuzz_common.h"
#include "moe/chat_template.h"

namespace {

const nlohmann::ordered_json& context() {
  static const nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi ünï 你好"},
                 {"role": "assistant", "content": "<think>\nx\n</think>\n\nHello", "tool_calls": [
                   {"type": "function", "function": {"name": "f", "arguments": {"a": 1, "b": [true, null, 2.5]}}}]},
                 {"role": "tool", "content": "{\"r\": 1}"}, {"role": "user", "content": ""}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>", "enable_thinking": false})");
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string source(reinterpret_cast<const char*>(data), size);
  try {
    const moe::ChatTemplate t = moe::ChatTemplate::parse(source, "fuzz");
    t.render(context());
  } catch (const moe::InvalidInput&) {
  }
  return 0;
}
