#include "text/pipeline.h"

// GCC 12 reports a false -Wrestrict in std::string inserts (GCC bug 105329).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <algorithm>
#include <memory>

#include "moe/error.h"
#include "moe/tokenizer.h"
#include "text/unicode.h"

namespace moe::text {

using json = nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw InvalidInput("[tokenizer] " + where + ": " + what);
}

std::string type_of(const json& j, const std::string& where, const char* stage) {
  if (!j.is_object() || !j.contains("type") || !j.at("type").is_string()) fail(where, std::string(stage) + " without a \"type\"");
  return j.at("type").get<std::string>();
}

template <class T>
T get_or(const json& j, const char* key, T fallback) {
  return j.contains(key) && !j.at(key).is_null() ? j.at(key).get<T>() : fallback;
}

// {"String": s} or {"Regex": r} as a compiled pattern.
std::shared_ptr<Regex> pattern_of(const json& j, const std::string& where) {
  if (j.is_object() && j.contains("String") && j.at("String").is_string())
    return std::make_shared<Regex>(regex_escape(j.at("String").get<std::string>()));
  if (j.is_object() && j.contains("Regex") && j.at("Regex").is_string())
    return std::make_shared<Regex>(j.at("Regex").get<std::string>());
  fail(where, "a pattern must be {\"String\": ...} or {\"Regex\": ...}, not " + j.dump());
}

std::string replace_all(const Regex& re, const std::string& s, const std::string& content) {
  std::string out;
  size_t last = 0;
  for (const auto& [b, e] : re.find_all(s)) {
    out.append(s, last, b - last);
    out += content;
    last = e;
  }
  out.append(s, last, std::string::npos);
  return out;
}

std::string strip_whitespace(const std::string& s, bool left, bool right) {
  size_t b = 0, e = s.size();
  while (left && b < e) {
    size_t len = 0;
    if (!is_whitespace(code_point_at(s, b, len))) break;
    b += len;
  }
  while (right && e > b) {
    size_t k = e - 1;
    while (k > b && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
    size_t len = 0;
    if (!is_whitespace(code_point_at(s, k, len))) break;
    e = k;
  }
  return s.substr(b, e - b);
}

}  // namespace

Normalizer make_normalizer(const json& j, const std::string& where) {
  if (j.is_null()) return [](std::string s) { return s; };
  const std::string type = type_of(j, where, "a normalizer");
  if (type == "NFC") return [](std::string s) { return normalize(s, NormalForm::nfc); };
  if (type == "NFD") return [](std::string s) { return normalize(s, NormalForm::nfd); };
  if (type == "NFKC") return [](std::string s) { return normalize(s, NormalForm::nfkc); };
  if (type == "NFKD") return [](std::string s) { return normalize(s, NormalForm::nfkd); };
  if (type == "Lowercase") return [](std::string s) { return lowercase(s); };
  if (type == "StripAccents") return [](std::string s) { return strip_accents(s); };
  if (type == "Strip") {
    const bool left = get_or(j, "strip_left", true), right = get_or(j, "strip_right", true);
    return [left, right](std::string s) { return strip_whitespace(s, left, right); };
  }
  if (type == "Replace") {
    std::shared_ptr<Regex> re = pattern_of(j.value("pattern", json()), where);
    const std::string content = get_or<std::string>(j, "content", "");
    return [re, content](std::string s) { return replace_all(*re, s, content); };
  }
  if (type == "Prepend") {
    const std::string prepend = get_or<std::string>(j, "prepend", "");
    return [prepend](std::string s) { return s.empty() ? s : prepend + s; };
  }
  if (type == "Sequence") {
    std::vector<Normalizer> parts;
    for (const json& p : j.value("normalizers", json::array())) parts.push_back(make_normalizer(p, where));
    return [parts](std::string s) {
      for (const Normalizer& n : parts) s = n(std::move(s));
      return s;
    };
  }
  fail(where, "normalizer type \"" + type + "\" is not supported (NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Strip, Replace, "
              "Prepend, Sequence are)");
}

namespace {

enum class Behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

Behavior behavior_of(const json& j, const std::string& where) {
  const std::string b = get_or<std::string>(j, "behavior", "Isolated");
  if (b == "Removed") return Behavior::removed;
  if (b == "Isolated") return Behavior::isolated;
  if (b == "MergedWithPrevious") return Behavior::merged_with_previous;
  if (b == "MergedWithNext") return Behavior::merged_with_next;
  if (b == "Contiguous") return Behavior::contiguous;
  fail(where, "split behavior \"" + b + "\" is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
}

struct Span {
  size_t begin, end;
  bool is_match;
};

// Splits every piece at `matches(text)` as the Rust crate's NormalizedString::split does.
template <class Matcher>
void split_pieces(std::vector<Piece>& pieces, Behavior behavior, bool invert, Matcher&& matches) {
  std::vector<Piece> out;
  for (Piece& p : pieces) {
    std::vector<Span> spans;
    size_t last = 0;
    for (const auto& [b, e] : matches(p.text)) {
      if (b > last) spans.push_back({last, b, invert});
      spans.push_back({b, e, !invert});
      last = e;
    }
    if (last < p.text.size()) spans.push_back({last, p.text.size(), invert});
    std::vector<std::pair<size_t, size_t>> kept;
    bool previous_match = false;
    switch (behavior) {
      case Behavior::isolated:
        for (const Span& s : spans) kept.emplace_back(s.begin, s.end);
        break;
      case Behavior::removed:
        for (const Span& s : spans)
          if (!s.is_match) kept.emplace_back(s.begin, s.end);
        break;
      case Behavior::merged_with_previous:
        for (const Span& s : spans) {
          if (s.is_match && !previous_match && !kept.empty()) kept.back().second = s.end;
          else kept.emplace_back(s.begin, s.end);
          previous_match = s.is_match;
        }
        break;
      case Behavior::merged_with_next:
        for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
          if (it->is_match && !previous_match && !kept.empty()) kept.back().first = it->begin;
          else kept.emplace_back(it->begin, it->end);
          previous_match = it->is_match;
        }
        std::reverse(kept.begin(), kept.end());
        break;
      case Behavior::contiguous:
        for (size_t i = 0; i < spans.size(); ++i) {
          if (i > 0 && spans[i].is_match == previous_match) kept.back().second = spans[i].end;
          else kept.emplace_back(spans[i].begin, spans[i].end);
          previous_match = spans[i].is_match;
        }
        break;
    }
    for (const auto& [b, e] : kept)
      if (e > b) out.push_back({p.text.substr(b, e - b), p.at_start && b == 0});
  }
  pieces = std::move(out);
}

std::vector<std::pair<size_t, size_t>> each_char_where(const std::string& s, bool (*pred)(char32_t)) {
  std::vector<std::pair<size_t, size_t>> m;
  for (size_t i = 0, len = 0; i < s.size(); i += len)
    if (pred(code_point_at(s, i, len))) m.emplace_back(i, i + len);
  return m;
}

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }

constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace

PreTokenizer make_pre_tokenizer(const json& j, const std::string& where) {
  if (j.is_null()) return [](std::vector<Piece>&) {};
  const std::string type = type_of(j, where, "a pre-tokenizer");
  if (type == "ByteLevel") {
    const bool prefix = get_or(j, "add_prefix_space", true), use_regex = get_or(j, "use_regex", true);
    std::shared_ptr<Regex> re = use_regex ? std::make_shared<Regex>(kGpt2Pattern) : nullptr;
    return [prefix, re](std::vector<Piece>& pieces) {
      for (Piece& p : pieces)
        if (prefix && (p.text.empty() || p.text[0] != ' ')) p.text.insert(0, 1, ' ');
      if (re) split_pieces(pieces, Behavior::isolated, false, [&](const std::string& s) { return re->find_all(s); });
      for (Piece& p : pieces) {
        std::string mapped;
        mapped.reserve(p.text.size() * 2);
        for (char c : p.text) mapped += byte_to_unicode(static_cast<uint8_t>(c));
        p.text = std::move(mapped);
      }
    };
  }
  if (type == "Split") {
    std::shared_ptr<Regex> re = pattern_of(j.value("pattern", json()), where);
    const Behavior behavior = behavior_of(j, where);
    const bool invert = get_or(j, "invert", false);
    return [re, behavior, invert](std::vector<Piece>& pieces) {
      split_pieces(pieces, behavior, invert, [&](const std::string& s) { return re->find_all(s); });
    };
  }
  if (type == "Metaspace") {
    const std::string replacement = get_or<std::string>(j, "replacement", "\xE2\x96\x81");
    std::string scheme = get_or<std::string>(j, "prepend_scheme", "");
    if (scheme.empty()) scheme = get_or(j, "add_prefix_space", true) ? "always" : "never";  // files before prepend_scheme
    if (scheme != "always" && scheme != "never" && scheme != "first")
      fail(where, "Metaspace prepend_scheme \"" + scheme + "\" is not always, never or first");
    const bool split = get_or(j, "split", true);
    auto space = std::make_shared<Regex>(" ");
    auto rep = std::make_shared<Regex>(regex_escape(replacement));
    return [replacement, scheme, split, space, rep](std::vector<Piece>& pieces) {
      for (Piece& p : pieces) {
        p.text = replace_all(*space, p.text, replacement);
        const bool prepend = scheme == "always" || (scheme == "first" && p.at_start);
        if (prepend && p.text.compare(0, replacement.size(), replacement) != 0) p.text.insert(0, replacement);
      }
      if (split) split_pieces(pieces, Behavior::merged_with_next, false, [&](const std::string& s) { return rep->find_all(s); });
    };
  }
  if (type == "Digits") {
    const bool individual = get_or(j, "individual_digits", false);
    auto runs = std::make_shared<Regex>("[0-9]+");
    return [individual, runs](std::vector<Piece>& pieces) {
      if (individual) split_pieces(pieces, Behavior::isolated, false, [](const std::string& s) { return each_char_where(s, is_ascii_digit); });
      else split_pieces(pieces, Behavior::isolated, false, [&](const std::string& s) { return runs->find_all(s); });
    };
  }
  if (type == "Whitespace") {
    auto words = std::make_shared<Regex>(R"(\w+|[^\w\s]+)");
    return [words](std::vector<Piece>& pieces) {
      split_pieces(pieces, Behavior::removed, true, [&](const std::string& s) { return words->find_all(s); });
    };
  }
  if (type == "WhitespaceSplit" || type == "BertPreTokenizer") {
    const bool bert = type == "BertPreTokenizer";
    return [bert](std::vector<Piece>& pieces) {
      split_pieces(pieces, Behavior::removed, false, [](const std::string& s) { return each_char_where(s, is_whitespace); });
      if (bert) split_pieces(pieces, Behavior::isolated, false, [](const std::string& s) { return each_char_where(s, is_punctuation); });
    };
  }
  if (type == "Punctuation") {
    const Behavior behavior = behavior_of(j, where);
    return [behavior](std::vector<Piece>& pieces) {
      split_pieces(pieces, behavior, false, [](const std::string& s) { return each_char_where(s, is_punctuation); });
    };
  }
  if (type == "Sequence") {
    std::vector<PreTokenizer> parts;
    for (const json& p : j.value("pretokenizers", json::array())) parts.push_back(make_pre_tokenizer(p, where));
    return [parts](std::vector<Piece>& pieces) {
      for (const PreTokenizer& t : parts) t(pieces);
    };
  }
  fail(where, "pre-tokenizer type \"" + type + "\" is not supported (ByteLevel, Split, Metaspace, Digits, Whitespace, "
              "WhitespaceSplit, BertPreTokenizer, Punctuation, Sequence are)");
}

// "<0x4A>" -> 0x4A; -1 for anything else.
int byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  int v = 0;
  for (int k = 3; k < 5; ++k) {
    const char c = t[static_cast<size_t>(k)];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

bool decoder_streams_by_window(const json& j) {
  if (!j.is_object()) return true;
  const std::string type = j.value("type", "");
  if (type == "Strip") return get_or<int64_t>(j, "start", 0) <= 1 && get_or<int64_t>(j, "stop", 0) == 0;
  if (type == "Sequence") {
    for (const json& d : j.value("decoders", json::array()))
      if (!decoder_streams_by_window(d)) return false;
  }
  return true;
}

bool decoder_has_byte_fallback(const json& j) {
  if (!j.is_object()) return false;
  if (j.value("type", "") == "ByteFallback") return true;
  for (const json& d : j.value("decoders", json::array()))
    if (decoder_has_byte_fallback(d)) return true;
  return false;
}

Decoder make_decoder(const json& j, const std::string& where) {
  if (j.is_null()) return [](std::vector<std::string>&) {};
  const std::string type = type_of(j, where, "a decoder");
  if (type == "ByteLevel") {
    return [](std::vector<std::string>& tokens) {
      std::string bytes;
      for (const std::string& t : tokens) {
        std::string mapped;
        bool all = true;
        for (size_t i = 0, len = 0; i < t.size() && all; i += len) {
          const int b = unicode_to_byte(code_point_at(t, i, len));
          if (b < 0) all = false;
          else mapped.push_back(static_cast<char>(b));
        }
        bytes += all ? mapped : t;  // a token outside the byte map (an added token) stands as its own text
      }
      tokens = {printable_utf8(bytes)};
    };
  }
  if (type == "Metaspace") {
    const std::string replacement = get_or<std::string>(j, "replacement", "\xE2\x96\x81");
    std::string scheme = get_or<std::string>(j, "prepend_scheme", "");
    if (scheme.empty()) scheme = get_or(j, "add_prefix_space", true) ? "always" : "never";
    auto rep = std::make_shared<Regex>(regex_escape(replacement));
    return [scheme, rep](std::vector<std::string>& tokens) {
      for (size_t i = 0; i < tokens.size(); ++i) {
        tokens[i] = replace_all(*rep, tokens[i], " ");
        if (i == 0 && scheme != "never" && !tokens[i].empty() && tokens[i][0] == ' ') tokens[i].erase(0, 1);
      }
    };
  }
  if (type == "Replace") {
    std::shared_ptr<Regex> re = pattern_of(j.value("pattern", json()), where);
    const std::string content = get_or<std::string>(j, "content", "");
    return [re, content](std::vector<std::string>& tokens) {
      for (std::string& t : tokens) t = replace_all(*re, t, content);
    };
  }
  if (type == "ByteFallback") {
    return [](std::vector<std::string>& tokens) {
      std::vector<std::string> out;
      std::string bytes;
      const auto flush = [&] {
        if (bytes.empty()) return;
        if (first_invalid_utf8(bytes) == std::string::npos) out.push_back(bytes);
        else out.insert(out.end(), bytes.size(), "\xEF\xBF\xBD");  // one U+FFFD per byte, as the Rust decoder
        bytes.clear();
      };
      for (std::string& t : tokens) {
        const int b = byte_token(t);
        if (b >= 0) {
          bytes.push_back(static_cast<char>(b));
        } else {
          flush();
          out.push_back(std::move(t));
        }
      }
      flush();
      tokens = std::move(out);
    };
  }
  if (type == "Fuse") {
    return [](std::vector<std::string>& tokens) {
      std::string all;
      for (const std::string& t : tokens) all += t;
      tokens = {all};
    };
  }
  if (type == "Strip") {
    const std::string content = get_or<std::string>(j, "content", " ");
    const size_t start = get_or<size_t>(j, "start", 0), stop = get_or<size_t>(j, "stop", 0);
    return [content, start, stop](std::vector<std::string>& tokens) {
      for (std::string& t : tokens) {
        for (size_t k = 0; k < start && t.compare(0, content.size(), content) == 0; ++k) t.erase(0, content.size());
        for (size_t k = 0; k < stop && t.size() >= content.size() && t.compare(t.size() - content.size(), content.size(), content) == 0; ++k)
          t.erase(t.size() - content.size());
      }
    };
  }
  if (type == "BPEDecoder") {
    const std::string suffix = get_or<std::string>(j, "suffix", "</w>");
    auto re = std::make_shared<Regex>(regex_escape(suffix));
    return [re](std::vector<std::string>& tokens) {
      for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = replace_all(*re, tokens[i], i + 1 == tokens.size() ? "" : " ");
    };
  }
  if (type == "Sequence") {
    std::vector<Decoder> parts;
    for (const json& p : j.value("decoders", json::array())) parts.push_back(make_decoder(p, where));
    return [parts](std::vector<std::string>& tokens) {
      for (const Decoder& d : parts) d(tokens);
    };
  }
  fail(where, "decoder type \"" + type + "\" is not supported (ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, "
              "BPEDecoder, Sequence are)");
}

}  // namespace moe::text
