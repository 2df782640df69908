#include "moe/hf_tokenizer.h"

#include <filesystem>

#include "moe/error.h"
#include "moe/tokenizer.h"
#include "text/added_tokens.h"
#include "text/bpe.h"
#include "text/pipeline.h"
#include "util/json_file.h"
#include "util/resources.h"

namespace moe {

using json = nlohmann::json;
using namespace text;

namespace {

constexpr int32_t kMaxVocab = 1 << 24;  // real vocabularies have up to ~260k tokens
constexpr int64_t kTokenizerFileLimit = int64_t(512) << 20;  // the largest real tokenizer.json is ~28 MB

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw InvalidInput("[tokenizer] " + where + ": " + what);
}

json read_json(const std::string& path) {
  return util::parse_json_strict(util::read_regular_file(path, "[tokenizer]", kTokenizerFileLimit), "[tokenizer] " + path + ":", "the file");
}

// An id in [0, 2^31): InvalidInput for anything else (nlohmann's get<int32_t> would wrap).
int32_t id_value(const json& v, const std::string& where, const std::string& what) {
  if (!v.is_number_integer() || (v.is_number_unsigned() ? v.get<uint64_t>() > INT32_MAX : (v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)))
    fail(where, what + " is " + v.dump() + ", not a token id");
  return static_cast<int32_t>(v.get<int64_t>());
}

// "<s>", {"content": "<s>", ...} or null -> the token's text ("" for none).
std::string token_text(const json& j, const std::string& where, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return "";
  const json& v = j.at(key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v.at("content").is_string()) return v.at("content").get<std::string>();
  fail(where, std::string("\"") + key + "\" is " + v.dump() + ", not a token");
}

// What the post-processor puts around the text: ids before, ids after.
struct Template {
  std::vector<int32_t> before, after;
};

Template template_of(const json& p, const std::string& where) {
  if (p.is_null()) return {};
  if (!p.is_object() || !p.contains("type")) fail(where, "a post_processor without a \"type\"");
  const std::string type = p.at("type").get<std::string>();
  if (type == "ByteLevel") return {};
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    const auto id_of = [&](const char* key) {
      if (!p.contains(key) || !p.at(key).is_array() || p.at(key).size() != 2)
        fail(where, type + " needs \"" + key + "\": [token, id]");
      return id_value(p.at(key)[1], where, type + " " + key);
    };
    return {{id_of("cls")}, {id_of("sep")}};
  }
  if (type == "TemplateProcessing") {
    Template t;
    bool seen_a = false;
    for (const json& item : p.value("single", json::array())) {
      if (item.contains("Sequence")) {
        if (item.at("Sequence").value("id", "A") != "A") fail(where, "the single template may only hold sequence A");
        seen_a = true;
      } else if (item.contains("SpecialToken")) {
        const std::string name = item.at("SpecialToken").value("id", "");
        const json& specials = p.value("special_tokens", json::object());
        if (!specials.contains(name) || !specials.at(name).contains("ids") || !specials.at(name).at("ids").is_array())
          fail(where, "the template names special token \"" + name + "\" that special_tokens does not define");
        for (const json& id : specials.at(name).at("ids")) (seen_a ? t.after : t.before).push_back(id_value(id, where, "special token " + name));
      } else {
        fail(where, "a template item must be a Sequence or a SpecialToken, not " + item.dump());
      }
    }
    if (!seen_a) fail(where, "the single template has no sequence A");
    return t;
  }
  if (type == "Sequence") {
    Template t;
    for (const json& q : p.value("processors", json::array())) {
      Template inner = template_of(q, where);
      t.before.insert(t.before.begin(), inner.before.begin(), inner.before.end());
      t.after.insert(t.after.end(), inner.after.begin(), inner.after.end());
    }
    return t;
  }
  fail(where, "post_processor type \"" + type + "\" is not supported (TemplateProcessing, ByteLevel, RobertaProcessing, "
              "BertProcessing, Sequence are)");
}

// transformers' classes that rebuild the post-processor from add_bos_token / add_eos_token, and
// their defaults (LlamaTokenizerFast.update_post_processor and its relatives).
bool rebuilds_post_processor(const std::string& cls, bool& bos_default) {
  for (const char* c : {"LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast", "GemmaTokenizer",
                        "GemmaTokenizerFast"})
    if (cls == c) return bos_default = true;
  if (cls == "GPTNeoXTokenizer" || cls == "GPTNeoXTokenizerFast") return !(bos_default = false);
  return false;
}

// transformers' clean_up_tokenization: spaces before punctuation and English contractions.
std::string clean_up_spaces(std::string s) {
  for (const char* pair : {" .", " ?", " !", " ,", " ' ", " n't", " 'm", " 's", " 've", " 're"}) {
    const std::string from = pair, to = from == " ' " ? "'" : from.substr(1);
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  }
  return s;
}

}  // namespace

struct HfTokenizer::Impl {
  std::string where;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  Decoder decoder;
  std::unique_ptr<Bpe> bpe;
  AddedTokenMatcher raw_tokens, normalized_tokens;
  std::vector<std::string> id_to_token;
  std::vector<uint8_t> special;  // per id
  std::unordered_map<std::string, int32_t> added_ids;
  Template post;
  std::string bos, eos, pad, chat_template;
  int64_t max_length = 0;
  bool clean_up = false;
  bool stream_by_window = true;  // decoder_streams_by_window; else Stream decodes from the first id
  std::vector<uint8_t> held;     // per id: a <0xNN> token of a ByteFallback decoder (its run decodes as one)

  std::optional<int32_t> id_of(std::string_view t) const {
    const std::string s(t);
    if (const auto it = added_ids.find(s); it != added_ids.end()) return it->second;
    if (const auto it = bpe->vocab().find(s); it != bpe->vocab().end()) return it->second;
    return std::nullopt;
  }
};

HfTokenizer::HfTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HfTokenizer::HfTokenizer(HfTokenizer&&) noexcept = default;
HfTokenizer& HfTokenizer::operator=(HfTokenizer&&) noexcept = default;
HfTokenizer::~HfTokenizer() = default;

HfTokenizer HfTokenizer::from_folder(const std::string& dir) {
  const std::filesystem::path d(dir);
  const std::filesystem::path tj = d / "tokenizer.json", tc = d / "tokenizer_config.json";
  if (!std::filesystem::exists(tj))
    throw InvalidInput("[tokenizer] " + dir + ": no tokenizer.json (this engine reads Hugging Face's fast-tokenizer file)");
  return load(tj.string(), std::filesystem::exists(tc) ? tc.string() : "");
}

HfTokenizer HfTokenizer::load(const std::string& tokenizer_json, const std::string& tokenizer_config) {
  try {
    return load_checked(tokenizer_json, tokenizer_config);
  } catch (const json::exception& e) {  // a value of the wrong type where the code reads one directly
    throw InvalidInput("[tokenizer] " + tokenizer_json + (tokenizer_config.empty() ? "" : " / " + tokenizer_config) +
                       ": a value of the wrong type (" + e.what() + ")");
  }
}

HfTokenizer HfTokenizer::load_checked(const std::string& tokenizer_json, const std::string& tokenizer_config) {
  auto impl = std::make_unique<Impl>();
  Impl& t = *impl;
  t.where = tokenizer_json;
  const json j = read_json(tokenizer_json);
  if (!j.is_object()) fail(t.where, "not a JSON object");
  const json model = j.value("model", json());
  if (!model.is_object()) fail(t.where, "no \"model\" object");
  const std::string type = model.value("type", model.contains("merges") ? "BPE" : "");
  if (type != "BPE") fail(t.where, "model type \"" + type + "\" is not supported (BPE is; Unigram, WordPiece and WordLevel are not)");
  t.bpe = std::make_unique<Bpe>(model, t.where);
  t.normalizer = make_normalizer(j.value("normalizer", json()), t.where);
  t.pre_tokenizer = make_pre_tokenizer(j.value("pre_tokenizer", json()), t.where);
  t.decoder = make_decoder(j.value("decoder", json()), t.where);
  t.stream_by_window = decoder_streams_by_window(j.value("decoder", json()));
  const bool byte_fallback = decoder_has_byte_fallback(j.value("decoder", json()));
  t.post = template_of(j.value("post_processor", json()), t.where);

  int64_t n = 0;  // the largest id + 1
  for (const auto& [tok, id] : t.bpe->vocab()) n = std::max<int64_t>(n, int64_t(id) + 1);
  std::vector<AddedToken> raw, normalized;
  for (const json& a : j.value("added_tokens", json::array())) {
    AddedToken at;
    if (!a.is_object() || !a.contains("id") || !a.at("id").is_number_integer() || !a.contains("content") || !a.at("content").is_string())
      fail(t.where, "an added token needs an integer \"id\" and a string \"content\": " + a.dump());
    at.id = id_value(a.at("id"), t.where, "the id of added token \"" + a.at("content").get<std::string>() + "\"");
    at.content = a.at("content").get<std::string>();
    at.special = a.value("special", false);
    at.normalized = a.value("normalized", !at.special);
    at.lstrip = a.value("lstrip", false);
    at.rstrip = a.value("rstrip", false);
    at.single_word = a.value("single_word", false);
    if (first_invalid_utf8(at.content) != std::string::npos) fail(t.where, "added token " + std::to_string(at.id) + " is not UTF-8");
    t.added_ids[at.content] = at.id;
    n = std::max<int64_t>(n, int64_t(at.id) + 1);
    (at.normalized ? normalized : raw).push_back(at);
  }
  if (n > kMaxVocab)
    fail(t.where, "ids go up to " + std::to_string(n - 1) + "; vocabularies of more than " + std::to_string(kMaxVocab) + " tokens are refused");
  t.id_to_token.assign(static_cast<size_t>(n), "");
  t.special.assign(static_cast<size_t>(n), 0);
  for (const auto& [tok, id] : t.bpe->vocab()) t.id_to_token[static_cast<size_t>(id)] = tok;
  std::vector<std::string> raw_patterns, normalized_patterns;
  for (const AddedToken& a : raw) raw_patterns.push_back(a.content);
  for (const AddedToken& a : normalized) normalized_patterns.push_back(t.normalizer(a.content));
  for (const auto* list : {&raw, &normalized})
    for (const AddedToken& a : *list) {
      t.id_to_token[static_cast<size_t>(a.id)] = a.content;
      t.special[static_cast<size_t>(a.id)] = a.special;
    }
  t.held.assign(static_cast<size_t>(n), 0);
  for (size_t id = 0; byte_fallback && id < t.id_to_token.size(); ++id) {
    t.held[id] = byte_token(t.id_to_token[id]) >= 0;
  }
  t.raw_tokens = AddedTokenMatcher(std::move(raw), std::move(raw_patterns));
  t.normalized_tokens = AddedTokenMatcher(std::move(normalized), std::move(normalized_patterns));

  if (!tokenizer_config.empty()) {
    const json c = read_json(tokenizer_config);
    if (!c.is_object()) fail(tokenizer_config, "not a JSON object");
    t.bos = token_text(c, tokenizer_config, "bos_token");
    t.eos = token_text(c, tokenizer_config, "eos_token");
    t.pad = token_text(c, tokenizer_config, "pad_token");
    t.clean_up = c.value("clean_up_tokenization_spaces", false);
    if (c.contains("model_max_length") && c.at("model_max_length").is_number_integer()) t.max_length = c.at("model_max_length").get<int64_t>();
    else if (c.contains("model_max_length") && c.at("model_max_length").is_number()) t.max_length = INT64_MAX;  // 1e30: "no limit"
    if (c.contains("chat_template")) {
      const json& ct = c.at("chat_template");
      if (ct.is_string()) {
        t.chat_template = ct.get<std::string>();
      } else if (ct.is_array()) {  // [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
        for (const json& e : ct)
          if (e.is_object() && e.value("name", "") == "default" && e.contains("template")) t.chat_template = e.at("template").get<std::string>();
      } else if (!ct.is_null()) {
        fail(tokenizer_config, "chat_template is neither a string nor a list of named templates");
      }
    }
    bool bos_default = false;
    if (rebuilds_post_processor(c.value("tokenizer_class", ""), bos_default)) {
      const auto special_id = [&](const std::string& tok, const char* what) {
        const auto id = t.id_of(tok);
        if (!id) fail(tokenizer_config, std::string("add_") + what + "_token is set but " + what + "_token \"" + tok + "\" is not a token");
        return *id;
      };
      t.post = {};
      if (c.contains("add_bos_token") ? c.at("add_bos_token").get<bool>() : bos_default) t.post.before.push_back(special_id(t.bos, "bos"));
      if (c.value("add_eos_token", false)) t.post.after.push_back(special_id(t.eos, "eos"));
    }
  }
  for (const auto* ids : {&t.post.before, &t.post.after})
    for (int32_t id : *ids)
      if (id < 0 || id >= n) fail(t.where, "the post-processor adds id " + std::to_string(id) + ", outside the vocabulary");
  return HfTokenizer(std::move(impl));
}

std::vector<int32_t> HfTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const Impl& t = *impl_;
  if (const size_t bad = first_invalid_utf8(text); bad != std::string_view::npos)
    throw InvalidInput("[tokenizer] the text is not valid UTF-8 (byte " + std::to_string(bad) + ")");
  std::vector<int32_t> ids;
  if (add_special_tokens) ids = t.post.before;
  std::vector<Piece> pieces;
  for (const Segment& seg : t.raw_tokens.split(text, 0)) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    for (const Segment& sub : t.normalized_tokens.split(t.normalizer(seg.text), seg.begin)) {
      if (sub.id >= 0) {
        ids.push_back(sub.id);
        continue;
      }
      pieces.assign(1, Piece{sub.text, sub.begin == 0});
      t.pre_tokenizer(pieces);
      for (const Piece& p : pieces) t.bpe->encode_word(p.text, ids);
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), t.post.after.begin(), t.post.after.end());
  return ids;
}

std::string HfTokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& t = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= vocab_size() || t.id_to_token[static_cast<size_t>(id)].empty())
      throw InvalidInput("[tokenizer] token id " + std::to_string(id) + " at index " + std::to_string(i) + " is not in the vocabulary of " +
                         t.where);
    if (skip_special_tokens && t.special[static_cast<size_t>(id)]) continue;
    tokens.push_back(t.id_to_token[static_cast<size_t>(id)]);
  }
  t.decoder(tokens);
  std::string out;
  for (const std::string& s : tokens) out += s;
  return t.clean_up ? clean_up_spaces(std::move(out)) : out;
}

int32_t HfTokenizer::vocab_size() const { return static_cast<int32_t>(impl_->id_to_token.size()); }
std::optional<int32_t> HfTokenizer::token_id(std::string_view token) const { return impl_->id_of(token); }
const std::string& HfTokenizer::token(int32_t id) const {
  static const std::string none;
  return id >= 0 && id < vocab_size() ? impl_->id_to_token[static_cast<size_t>(id)] : none;
}
bool HfTokenizer::is_special(int32_t id) const { return id >= 0 && id < vocab_size() && impl_->special[static_cast<size_t>(id)]; }
std::optional<int32_t> HfTokenizer::bos_id() const { return impl_->bos.empty() ? std::nullopt : impl_->id_of(impl_->bos); }
std::optional<int32_t> HfTokenizer::eos_id() const { return impl_->eos.empty() ? std::nullopt : impl_->id_of(impl_->eos); }
std::optional<int32_t> HfTokenizer::pad_id() const { return impl_->pad.empty() ? std::nullopt : impl_->id_of(impl_->pad); }
const std::string& HfTokenizer::bos_token() const { return impl_->bos; }
const std::string& HfTokenizer::eos_token() const { return impl_->eos; }
const std::string& HfTokenizer::chat_template() const { return impl_->chat_template; }
int64_t HfTokenizer::model_max_length() const { return impl_->max_length; }

// The window [prefix_, end) is decoded twice, with and without the newest ids, and the difference
// is emitted once it no longer ends in a replacement character (a UTF-8 character still cut off).
// Decoding a window rather than one token keeps decoders that look at neighbours (Strip of the
// first space, byte fallback) right; decoders whose output depends on where the window starts or
// ends (a Strip of several leading or any trailing characters) decode from the first id instead.
std::string HfTokenizer::Stream::push(int32_t id) {
  ids_.push_back(id);
  // ByteFallback decodes a whole run of byte tokens at once (one U+FFFD per byte if the run is
  // not UTF-8, even for bytes that were valid so far): wait for the run to end.
  if (id >= 0 && id < tok_->vocab_size() && tok_->impl_->held[static_cast<size_t>(id)]) return "";
  const std::span<const int32_t> all(ids_);
  const std::string before = tok_->decode(all.subspan(prefix_, read_ - prefix_), skip_);
  const std::string now = tok_->decode(all.subspan(prefix_), skip_);
  constexpr std::string_view kFffd = "\xEF\xBF\xBD";
  if (now.size() <= before.size() || now.compare(0, before.size(), before) != 0) return "";
  if (now.size() >= 3 && std::string_view(now).substr(now.size() - 3) == kFffd) return "";
  if (tok_->impl_->stream_by_window) prefix_ = read_;  // otherwise every decode starts at the first id
  read_ = ids_.size();
  return now.substr(before.size());
}

std::string HfTokenizer::Stream::flush() {
  const std::span<const int32_t> all(ids_);
  const std::string before = tok_->decode(all.subspan(prefix_, read_ - prefix_), skip_);
  const std::string now = tok_->decode(all.subspan(prefix_), skip_);
  prefix_ = read_ = ids_.size();
  return now.size() > before.size() && now.compare(0, before.size(), before) == 0 ? now.substr(before.size()) : "";
}

}  // namespace moe
