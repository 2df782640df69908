// Chat templates: the Jinja2 `chat_template` of a tokenizer_config.json, rendered as
// transformers' apply_chat_template renders it (Jinja2 with trim_blocks, lstrip_blocks and loop
// controls; tojson with ensure_ascii=False; raise_exception and strftime_now). A subset of Jinja2
// that covers the real templates of the supported families (docs/chat-templates.md); a construct
// outside it is an InvalidInput naming the line, never a silently different prompt.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace moe {

class ChatTemplate {
 public:
  // Parses the template; InvalidInput("[template] <name> line N: ...") for a syntax error or an
  // unsupported statement.
  static ChatTemplate parse(const std::string& source, const std::string& name = "chat_template");

  // Renders with `context` as the template's variables (messages, add_generation_prompt,
  // bos_token, tools, ...). InvalidInput naming the line for a runtime error, including the
  // template's own raise_exception.
  std::string render(const nlohmann::ordered_json& context) const;

  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ~ChatTemplate();

 private:
  struct Impl;
  explicit ChatTemplate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moe
