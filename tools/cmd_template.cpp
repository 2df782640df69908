// `moe template`: a model's chat template rendered for a conversation, as transformers'
// apply_chat_template(messages, tokenize=False, add_generation_prompt=...) renders it.
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "moe/chat_template.h"
#include "moe/error.h"
#include "moe/hf_tokenizer.h"
#include "util/json_file.h"
#include "util/resources.h"

namespace moe::cli {

namespace {

struct TemplateFlags {
  std::string model, tokenizer, template_file, messages;
  std::vector<std::string> vars;
  bool generation_prompt = false, tokens = false;
};

}  // namespace

Run add_template(CLI::App& app) {
  auto f = std::make_shared<TemplateFlags>();
  CLI::App* c = app.add_subcommand("template", "A model's chat template rendered for a conversation (the prompt text)");
  c->add_option("--model", f->model, "A Hugging Face model folder (tokenizer_config.json's chat_template)");
  c->add_option("--tokenizer", f->tokenizer, "A folder with just the tokenizer files");
  c->add_option("--template", f->template_file, "A .jinja file to use instead of the folder's template");
  c->add_option("--messages", f->messages,
                "A JSON file: a list of messages, or an object with \"messages\" and other variables (\"tools\", ...)")
      ->required();
  c->add_flag("--add_generation_prompt", f->generation_prompt, "End with the start of the assistant's turn");
  c->add_option("--var", f->vars, "More template variables as key=JSON (e.g. enable_thinking=false); repeatable");
  c->add_flag("--tokens", f->tokens, "Print the prompt's token ids instead of its text");
  return [f, c]() -> int {
    if (!c->parsed()) return 0;
    if (!f->model.empty() && !f->tokenizer.empty()) throw InvalidInput("[template] give --model or --tokenizer, not both");
    const std::string dir = f->model.empty() ? f->tokenizer : f->model;
    if (dir.empty() && f->template_file.empty()) throw InvalidInput("[template] give --model DIR, --tokenizer DIR or --template FILE");
    std::unique_ptr<HfTokenizer> tok;
    if (!dir.empty()) tok = std::make_unique<HfTokenizer>(HfTokenizer::from_folder(dir));
    if (f->tokens && !tok) throw InvalidInput("[template] --tokens needs the tokenizer (--model or --tokenizer)");
    std::string source, name = "chat_template";
    if (!f->template_file.empty()) {
      source = util::read_regular_file(f->template_file, "[template]", util::kConfigFileLimit);
      name = f->template_file;
    } else {
      source = tok->chat_template();
      if (source.empty()) throw InvalidInput("[template] " + dir + ": tokenizer_config.json has no chat_template (a base model?)");
    }
    const ChatTemplate tmpl = ChatTemplate::parse(source, name);

    const nlohmann::ordered_json given =
        nlohmann::ordered_json::parse(util::read_regular_file(f->messages, "[template]", util::kConfigFileLimit), nullptr, false);
    if (given.is_discarded()) throw InvalidInput("[template] " + f->messages + ": not valid JSON");
    nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
    if (given.is_array()) ctx["messages"] = given;
    else if (given.is_object() && given.contains("messages")) ctx = given;
    else throw InvalidInput("[template] " + f->messages + ": expected a list of messages or an object with \"messages\"");
    if (!ctx["messages"].is_array()) throw InvalidInput("[template] " + f->messages + ": \"messages\" must be a list");
    ctx["add_generation_prompt"] = f->generation_prompt;
    if (tok) {  // transformers passes the special tokens it has by name
      if (!tok->bos_token().empty()) ctx["bos_token"] = tok->bos_token();
      if (!tok->eos_token().empty()) ctx["eos_token"] = tok->eos_token();
    }
    for (const std::string& kv : f->vars) {
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) throw InvalidInput("[template] --var " + kv + ": expected key=JSON");
      const auto v = nlohmann::ordered_json::parse(kv.substr(eq + 1), nullptr, false);
      ctx[kv.substr(0, eq)] = v.is_discarded() ? nlohmann::ordered_json(kv.substr(eq + 1)) : v;  // bare text is a string
    }
    const std::string prompt = tmpl.render(ctx);
    if (f->tokens) {
      const std::vector<int32_t> ids = tok->encode(prompt, false);  // the template writes BOS itself
      for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
      std::printf("\n");
    } else {
      std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    }
    return 0;
  };
}

}  // namespace moe::cli
