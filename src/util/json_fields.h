// Typed reads of one JSON object's keys, with errors that name the origin and the key:
// "[config] mixtral: missing key 'hidden_size'", "[gpt config] key 'd_model' must be an integer,
// got \"32\"". A null value counts as absent (`is_null` tells the two apart where a config class
// gives null its own meaning). Field<S> rows describe a struct's keys once, so the reader, the
// writer and the known-key check of a format all come from one table.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe::util {

// One spelling of an enum value in a JSON format.
template <class Enum>
struct Spelling {
  const char* name;
  Enum value;
};

class JsonFields {
 public:
  // `prefix` starts every error message: "[layer config] mixtral: ", "[gpt config] dense: ".
  JsonFields(const nlohmann::json& object, std::string prefix);

  const nlohmann::json& raw() const { return j_; }
  const std::string& prefix() const { return prefix_; }
  bool has(std::string_view key) const;      // present and not null
  bool is_null(std::string_view key) const;  // present as null

  [[noreturn]] void fail(const std::string& what) const;

  // Integral floats (4096.0, as hand-edited configs have them) count as integers.
  int64_t integer(std::string_view key) const;  // required
  int64_t integer_or(std::string_view key, int64_t fallback) const;
  int64_t positive(std::string_view key) const;  // required, >= 1
  int64_t positive_or(std::string_view key, int64_t fallback) const;
  int64_t non_negative_or(std::string_view key, int64_t fallback) const;
  double number_or(std::string_view key, double fallback) const;
  bool flag_or(std::string_view key, bool fallback) const;
  std::string text(std::string_view key) const;  // required
  std::string text_or(std::string_view key, const std::string& fallback) const;
  std::vector<int64_t> integers_or_empty(std::string_view key) const;
  std::vector<std::string> texts_or_empty(std::string_view key) const;

  // The value spelled at `key` ("key 'score' = 'x' is not one of: softmax, sigmoid").
  template <class Enum, class Spellings = std::initializer_list<Spelling<Enum>>>
  Enum choice_or(std::string_view key, Enum fallback, const Spellings& spellings) const {
    if (!has(key)) return fallback;
    const std::string v = text(key);
    std::string all;
    for (const Spelling<Enum>& s : spellings) {
      if (v == s.name) return s.value;
      all += (all.empty() ? "" : ", ") + std::string(s.name);
    }
    fail("key '" + std::string(key) + "' = '" + v + "' is not one of: " + all);
  }

  // A nested object, read with the prefix `sub_prefix` ("'router' must be an object" if not one).
  JsonFields object(std::string_view key, std::string sub_prefix, const char* what = "an object") const;
  // Every key must be one of `known` ("unknown key 'x'"; `noun` "field" for RouterConfig).
  void only(const std::vector<std::string>& known, const char* noun = "key") const;
  // Formats with keys of their own (Hugging Face configs carry many a reader has no use for): a
  // key never looked at whose name is within two edits of one that was is most likely a typo;
  // each is reported through moe::warn ("key 'num_experts_per_tokn' is not read; did you mean
  // 'num_experts_per_tok'?").
  void warn_likely_typos() const;

 private:
  const nlohmann::json& at(std::string_view key) const;
  int64_t integral(std::string_view key, int64_t min, const char* kind) const;
  template <class T>
  std::vector<T> list_or_empty(std::string_view key, bool (nlohmann::json::*is)() const noexcept, const char* kind) const;

  const nlohmann::json& j_;
  std::string prefix_;
  mutable std::vector<std::string> asked_;  // every key a reader looked up
};

template <class Enum, class Spellings = std::initializer_list<Spelling<Enum>>>
const char* spelling_of(Enum value, const Spellings& spellings) {
  for (const Spelling<Enum>& s : spellings) {
    if (s.value == value) return s.name;
  }
  return "?";
}

// One key of a struct S: how to read it (only when present: absent keys keep S's value) and how
// to write it (empty for a read-only alias). Tables of these are the single description of a
// JSON format's keys.
template <class S>
struct Field {
  std::string name;
  std::function<void(const JsonFields&, S&)> read;
  std::function<void(const S&, nlohmann::json&)> write;
};

// A number, integer or flag reached through `get` (a generic lambda `[](auto& s) -> auto& {...}`
// returning the member, so one accessor serves the reader and the writer).
template <class S, class Get>
Field<S> field(std::string name, Get get) {
  using V = std::remove_cvref_t<decltype(get(std::declval<S&>()))>;
  static_assert(std::is_same_v<V, int64_t> || std::is_same_v<V, double> || std::is_same_v<V, bool>);
  return {name,
          [name, get](const JsonFields& f, S& s) {
            if (!f.has(name)) return;
            if constexpr (std::is_same_v<V, int64_t>) get(s) = f.integer(name);
            if constexpr (std::is_same_v<V, double>) get(s) = f.number_or(name, 0.0);
            if constexpr (std::is_same_v<V, bool>) get(s) = f.flag_or(name, false);
          },
          [name, get](const S& s, nlohmann::json& j) { j[name] = get(s); }};
}

// A member of S itself.
template <class S, class V>
Field<S> field(std::string name, V S::*member) {
  return field<S>(std::move(name), [member](auto& s) -> auto& { return s.*member; });
}

// An enum spelled by name.
template <class S, class Get, class Enum = std::remove_cvref_t<decltype(std::declval<Get>()(std::declval<S&>()))>>
Field<S> choice_field(std::string name, Get get, std::initializer_list<Spelling<Enum>> spellings) {
  std::vector<Spelling<Enum>> names(spellings);
  return {name,
          [name, get, names](const JsonFields& f, S& s) { get(s) = f.choice_or(name, get(s), names); },
          [name, get, names](const S& s, nlohmann::json& j) { j[name] = spelling_of(get(s), names); }};
}

template <class S, class Enum>
Field<S> choice_field(std::string name, Enum S::*member, std::initializer_list<Spelling<Enum>> spellings) {
  return choice_field<S>(std::move(name), [member](auto& s) -> auto& { return s.*member; }, spellings);
}

template <class S>
void read_fields(const std::vector<Field<S>>& fields, const JsonFields& f, S& s);
template <class S>
void write_fields(const std::vector<Field<S>>& fields, const S& s, nlohmann::json& j);
template <class S>
std::vector<std::string> field_names(const std::vector<Field<S>>& fields);

// A nested object holding the keys `fields` of the member `get` returns; its unknown keys are
// errors ("unknown <noun> 'x'"), and messages start with `sub_prefix`.
template <class S, class Get, class Sub = std::remove_cvref_t<decltype(std::declval<Get>()(std::declval<S&>()))>>
Field<S> object_field(std::string name, Get get, const std::vector<Field<Sub>>& fields, std::string sub_prefix,
                      const char* noun = "key") {
  return {name,
          [name, get, &fields, sub_prefix, noun](const JsonFields& f, S& s) {
            if (!f.has(name)) return;
            const JsonFields sub = f.object(name, sub_prefix);
            sub.only(field_names(fields), noun);
            read_fields(fields, sub, get(s));
          },
          [name, get, &fields](const S& s, nlohmann::json& j) {
            nlohmann::json sub = nlohmann::json::object();
            write_fields(fields, get(s), sub);
            j[name] = sub;
          }};
}

template <class S>
void read_fields(const std::vector<Field<S>>& fields, const JsonFields& f, S& s) {
  for (const Field<S>& x : fields) x.read(f, s);
}

template <class S>
void write_fields(const std::vector<Field<S>>& fields, const S& s, nlohmann::json& j) {
  for (const Field<S>& x : fields) {
    if (x.write) x.write(s, j);
  }
}

template <class S>
std::vector<std::string> field_names(const std::vector<Field<S>>& fields) {
  std::vector<std::string> names;
  for (const Field<S>& x : fields) names.push_back(x.name);
  return names;
}

}  // namespace moe::util
