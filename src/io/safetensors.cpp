#include "moe/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "moe/atomic_file.h"
#include "moe/error.h"

namespace moe {

namespace {

using json = nlohmann::json;

// The reference's limit: a header this large is a corrupt length, not a real model.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Real headers nest 3 levels; the limit keeps garbage from building deep DOM trees.
constexpr size_t kMaxJsonDepth = 64;
constexpr const char* kMetadataKey = "__metadata__";

constexpr std::array kAllDTypes = {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32,
                                   DType::i64, DType::u8,  DType::i8,   DType::boolean, DType::i16,
                                   DType::u16, DType::u32, DType::u64,  DType::f8_e4m3, DType::f8_e5m2};

[[noreturn]] void fail(const std::string& origin, const std::string& what) {
  throw InvalidInput("[safetensors] " + origin + ": " + what);
}

// Cuts long text (JSON dumps, parser messages quoting the input) at a UTF-8 character boundary.
std::string clip(const std::string& s, size_t limit = 120) {
  if (s.size() <= limit) return s;
  size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "...";
}

std::string in_quotes(const std::string& name) {
  std::string out(1, '\'');  // built by appends: GCC 12 warns (-Wrestrict) on "'" + std::string
  out.append(clip(name, 80));
  out.push_back('\'');
  return out;
}

// `replace` cannot be needed (the header was checked to be UTF-8) but keeps dump() from throwing.
std::string show(const json& v) { return clip(v.dump(-1, ' ', false, json::error_handler_t::replace)); }

// Offset of the first byte that is not well-formed UTF-8 (no overlongs, surrogates or code
// points above U+10FFFF), or npos.
size_t invalid_utf8_at(std::span<const uint8_t> s) {
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t c = s[i];
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07u;
    } else {
      return i;
    }
    if (s.size() - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3Fu);
    }
    const uint32_t min_cp = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string::npos;
}

bool is_utf8(const std::string& s) {
  return invalid_utf8_at({reinterpret_cast<const uint8_t*>(s.data()), s.size()}) == std::string::npos;
}

// SAX pass before building the DOM: nlohmann's DOM keeps the last of duplicate keys silently,
// and a depth limit keeps hostile nesting cheap. Records the first problem and stops.
class HeaderChecker {
 public:
  std::string error;

  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const json::string_t&) { return true; }
  bool string(json::string_t&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool start_object(size_t) { return push(true); }
  bool start_array(size_t) { return push(false); }
  bool end_object() { return pop(); }
  bool end_array() { return pop(); }
  bool key(json::string_t& k) {
    if (!stack_.back().keys.insert(k).second) {
      error = stack_.size() == 1 ? "duplicate tensor name " + in_quotes(k) : "duplicate key " + in_quotes(k);
      return false;
    }
    return true;
  }
  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception& ex) {
    error = "header is not valid JSON: " + clip(ex.what(), 200);
    return false;
  }

 private:
  struct Level {
    bool is_object;
    std::set<std::string> keys;
  };
  bool push(bool is_object) {
    if (stack_.size() >= kMaxJsonDepth) {
      error = "header nests deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    stack_.push_back({is_object, {}});
    return true;
  }
  bool pop() {
    stack_.pop_back();
    return true;
  }
  std::vector<Level> stack_;
};

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A JSON value that is a non-negative integer fitting int64 (shape dims and offsets).
std::optional<uint64_t> as_count(const json& v) {
  if (!v.is_number_unsigned()) return std::nullopt;
  const uint64_t u = v.get<uint64_t>();
  if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return u;
}

SafetensorsEntry parse_entry(const std::string& origin, const std::string& name, const json& v,
                             uint64_t buffer_bytes) {
  const std::string who = "tensor " + in_quotes(name);
  if (!v.is_object()) fail(origin, who + ": entry must be an object, got " + std::string(v.type_name()) + " " + show(v));
  for (const auto& [key, _] : v.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      fail(origin, who + ": unknown field " + in_quotes(key) + " (expected dtype, shape, data_offsets)");
    }
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!v.contains(key)) fail(origin, who + ": missing field '" + key + "'");
  }
  SafetensorsEntry e;
  const json& dtype = v["dtype"];
  const auto dt = dtype.is_string() ? safetensors_dtype(dtype.get<std::string>()) : std::nullopt;
  if (!dt) {
    std::string known;
    for (DType d : kAllDTypes) known += std::string(known.empty() ? "" : ", ") + dtype_name(d);
    fail(origin, who + ": unknown dtype " + show(dtype) + " (known: " + known + ")");
  }
  e.dtype = *dt;

  const json& shape = v["shape"];
  if (!shape.is_array()) fail(origin, who + ": shape must be a list of non-negative integers, got " + show(shape));
  // The running product must fit int64 at every step, as in the reference, so later
  // shape_numel() calls cannot overflow either.
  int64_t numel = 1;
  for (const json& d : shape) {
    const auto dim = as_count(d);
    if (!dim) fail(origin, who + ": shape must be a list of non-negative integers, got " + show(shape));
    e.shape.push_back(static_cast<int64_t>(*dim));
    if (__builtin_mul_overflow(numel, static_cast<int64_t>(*dim), &numel)) {
      fail(origin, who + ": shape " + show(shape) + " has more elements than fit in 64 bits");
    }
  }
  int64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<int64_t>(dtype_size(e.dtype)), &nbytes)) {
    fail(origin, who + ": shape " + show(shape) + " of " + dtype_name(e.dtype) + " has more bytes than fit in 64 bits");
  }

  const json& offsets = v["data_offsets"];
  const auto begin = offsets.is_array() && offsets.size() == 2 ? as_count(offsets[0]) : std::nullopt;
  const auto end = offsets.is_array() && offsets.size() == 2 ? as_count(offsets[1]) : std::nullopt;
  if (!begin || !end || *begin > *end) {
    fail(origin, who + ": data_offsets must be two non-negative integers [begin, end] with begin <= end, got " +
                     show(offsets));
  }
  e.begin = *begin;
  e.end = *end;
  if (e.end - e.begin != static_cast<uint64_t>(nbytes)) {
    fail(origin, who + ": data_offsets " + show(offsets) + " span " + std::to_string(e.end - e.begin) +
                     " bytes but " + dtype_name(e.dtype) + " " + shape_str(e.shape) + " needs " +
                     std::to_string(nbytes));
  }
  if (e.end > buffer_bytes) {
    fail(origin, who + ": data_offsets " + show(offsets) + " end past the data buffer of " +
                     std::to_string(buffer_bytes) + " bytes");
  }
  return e;
}

std::map<std::string, std::string> parse_metadata(const std::string& origin, const json& v) {
  if (!v.is_object()) fail(origin, "__metadata__ must be an object of strings, got " + show(v));
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : v.items()) {
    if (!value.is_string()) {
      fail(origin, "__metadata__ " + in_quotes(key) + " must be a string, got " + show(value));
    }
    out[key] = value.get<std::string>();
  }
  return out;
}

std::vector<std::pair<std::string, const SafetensorsEntry*>> in_file_order(const SafetensorsHeader& h) {
  std::vector<std::pair<std::string, const SafetensorsEntry*>> order;
  for (const auto& [name, e] : h.tensors) order.emplace_back(name, &e);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second->begin, a.second->end, a.first) < std::tie(b.second->begin, b.second->end, b.first);
  });
  return order;
}

// Tensors must tile the buffer exactly: no overlap, and no byte outside every tensor (the
// reference's MetadataIncompleteBuffer, which catches truncated downloads).
void check_tiling(const std::string& origin, const SafetensorsHeader& h, uint64_t buffer_bytes) {
  uint64_t covered = 0;
  std::string previous;
  for (const auto& [name, e] : in_file_order(h)) {
    if (e->begin < covered) {
      fail(origin, "tensors " + in_quotes(previous) + " and " + in_quotes(name) + " overlap (" + in_quotes(name) +
                       " starts at " + std::to_string(e->begin) + ", before byte " + std::to_string(covered) + ")");
    }
    if (e->begin > covered) {
      fail(origin, "data buffer bytes [" + std::to_string(covered) + ", " + std::to_string(e->begin) +
                       ") belong to no tensor");
    }
    covered = e->end;
    previous = name;
  }
  if (covered != buffer_bytes) {
    fail(origin, "data buffer bytes [" + std::to_string(covered) + ", " + std::to_string(buffer_bytes) +
                     ") belong to no tensor (truncated header or trailing garbage)");
  }
}

}  // namespace

std::optional<DType> safetensors_dtype(const std::string& name) {
  for (DType d : kAllDTypes) {
    if (name == dtype_name(d)) return d;
  }
  return std::nullopt;
}

SafetensorsHeader parse_safetensors(std::span<const uint8_t> file, const std::string& origin) {
  if (file.size() < 8) {
    fail(origin, "file is " + std::to_string(file.size()) + " bytes, shorter than the 8-byte header length");
  }
  const uint64_t n = read_u64_le(file.data());
  if (n > kMaxHeaderBytes) {
    fail(origin, "header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(kMaxHeaderBytes) +
                     " bytes (not a safetensors file?)");
  }
  if (n > file.size() - 8) {
    fail(origin, "header length " + std::to_string(n) + " exceeds the " + std::to_string(file.size() - 8) +
                     " bytes after the length field (truncated file?)");
  }
  const std::span<const uint8_t> text = file.subspan(8, n);
  if (n == 0 || text[0] != '{') fail(origin, "header does not start with '{'");
  if (const size_t bad = invalid_utf8_at(text); bad != std::string::npos) {
    fail(origin, "header is not valid UTF-8 (byte " + std::to_string(bad) + " of the header)");
  }
  // nlohmann's lexer takes a NUL byte as the end of input and would ignore what follows; valid
  // JSON never contains a raw NUL (inside strings it must be escaped).
  if (const void* nul = std::memchr(text.data(), 0, text.size())) {
    fail(origin, "header is not valid JSON: NUL byte at byte " +
                     std::to_string(static_cast<const uint8_t*>(nul) - text.data()) + " of the header");
  }
  HeaderChecker checker;
  if (!json::sax_parse(text.begin(), text.end(), &checker)) fail(origin, checker.error);
  const json root = json::parse(text.begin(), text.end());  // cannot fail: the SAX pass accepted it
  if (!root.is_object()) fail(origin, "header is not a JSON object");

  SafetensorsHeader h;
  h.data_start = 8 + n;
  const uint64_t buffer_bytes = file.size() - h.data_start;
  for (const auto& [name, value] : root.items()) {
    if (name == kMetadataKey) {
      h.metadata = parse_metadata(origin, value);
    } else {
      h.tensors.emplace(name, parse_entry(origin, name, value, buffer_bytes));
    }
  }
  check_tiling(origin, h, buffer_bytes);
  return h;
}

// ---- reading ---------------------------------------------------------------------------------

struct SafetensorsFile::Mapping {
  void* base = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (base) ::munmap(base, size);
  }
};

SafetensorsFile::SafetensorsFile(std::string path, std::unique_ptr<Mapping> mapping, SafetensorsHeader header)
    : path_(std::move(path)), mapping_(std::move(mapping)), header_(std::move(header)) {}
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  auto mapping = std::make_unique<Mapping>();
  mapping->size = static_cast<size_t>(st.st_size);
  if (mapping->size > 0) {  // mmap of 0 bytes fails; parse reports the short file instead
    void* p = ::mmap(nullptr, mapping->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      fail(path, std::string("cannot mmap: ") + std::strerror(err));
    }
    mapping->base = p;
  }
  ::close(fd);  // the mapping keeps the file alive
  const std::span<const uint8_t> bytes(static_cast<const uint8_t*>(mapping->base), mapping->size);
  SafetensorsHeader header = parse_safetensors(bytes, path);
  return SafetensorsFile(path, std::move(mapping), std::move(header));
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : header_.tensors) out.push_back(name);
  return out;
}

std::vector<std::string> SafetensorsFile::names_in_file_order() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : in_file_order(header_)) out.push_back(name);
  return out;
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  const auto it = header_.tensors.find(name);
  if (it == header_.tensors.end()) {
    std::string some;
    size_t shown = 0;
    for (const auto& [n, _] : header_.tensors) {
      if (shown++ == 5) {
        some += ", ...";
        break;
      }
      some += (some.empty() ? "" : ", ") + in_quotes(n);
    }
    fail(path_, "no tensor " + in_quotes(name) + " (the file has " + std::to_string(header_.tensors.size()) +
                    " tensors" + (some.empty() ? "" : ": " + some) + ")");
  }
  return it->second;
}

const uint8_t* SafetensorsFile::data_of(const SafetensorsEntry& e) const {
  return static_cast<const uint8_t*>(mapping_->base) + header_.data_start + e.begin;
}

TensorView SafetensorsFile::view(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  const uint8_t* p = data_of(e);
  const size_t align = dtype_size(e.dtype);
  if (e.end > e.begin && reinterpret_cast<uintptr_t>(p) % align != 0) {
    fail(path_, "tensor " + in_quotes(name) + " (" + dtype_name(e.dtype) + ") starts at file offset " +
                    std::to_string(header_.data_start + e.begin) + ", not a multiple of " + std::to_string(align) +
                    "; use load() for an aligned copy");
  }
  // TensorView has no const flavour; the mapping is PROT_READ, so writes fault loudly.
  return TensorView(const_cast<uint8_t*>(p), e.dtype, e.shape);
}

Tensor SafetensorsFile::load(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  Tensor t(e.dtype, e.shape);
  if (e.end > e.begin) std::memcpy(t.data(), data_of(e), e.end - e.begin);
  return t;
}

// ---- writing ---------------------------------------------------------------------------------

namespace {

std::string serialize(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata,
                      const std::string& origin) {
  // ordered_json keeps insertion order: metadata first, then tensors as given, as the reference.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    for (const auto& [key, value] : metadata) {
      if (!is_utf8(key) || !is_utf8(value)) fail(origin, "__metadata__ " + in_quotes(key) + " is not valid UTF-8");
    }
    header[kMetadataKey] = metadata;
  }
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, view] : tensors) {
    const std::string who = "tensor " + in_quotes(name);
    if (name == kMetadataKey) fail(origin, who + ": the name is reserved for metadata");
    if (!is_utf8(name)) fail(origin, who + ": the name is not valid UTF-8");
    if (!seen.insert(name).second) fail(origin, who + ": duplicate name");
    int64_t numel = 1, nbytes_signed = 0;  // checked here: TensorView::nbytes() does not check
    for (int64_t d : view.shape()) {
      if (d < 0) fail(origin, who + ": negative dimension in shape " + shape_str(view.shape()));
      if (__builtin_mul_overflow(numel, d, &numel)) fail(origin, who + ": shape " + shape_str(view.shape()) + " overflows");
    }
    if (__builtin_mul_overflow(numel, static_cast<int64_t>(dtype_size(view.dtype())), &nbytes_signed)) {
      fail(origin, who + ": shape " + shape_str(view.shape()) + " overflows");
    }
    const uint64_t nbytes = static_cast<uint64_t>(nbytes_signed);
    if (nbytes > 0 && view.data() == nullptr) fail(origin, who + ": view has no data");
    uint64_t end = 0;
    if (__builtin_add_overflow(offset, nbytes, &end)) fail(origin, who + ": total size overflows 64 bits");
    nlohmann::ordered_json entry;
    entry["dtype"] = dtype_name(view.dtype());
    entry["shape"] = view.shape();
    entry["data_offsets"] = {offset, end};
    header[name] = std::move(entry);
    offset = end;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // so the data buffer starts 8-byte aligned

  std::string out;
  out.reserve(8 + text.size() + offset);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((static_cast<uint64_t>(text.size()) >> (8 * i)) & 0xFF));
  out += text;
  for (const auto& [name, view] : tensors) {
    if (view.nbytes() > 0) out.append(static_cast<const char*>(view.data()), view.nbytes());
  }
  return out;
}

}  // namespace

std::string serialize_safetensors(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  return serialize(tensors, metadata, "<memory>");
}

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, serialize(tensors, metadata, path));
}

}  // namespace moe
