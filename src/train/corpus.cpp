#include "moe/corpus.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "moe/atomic_file.h"
#include "moe/error.h"
#include "moe/rng.h"

namespace moe {

namespace {

namespace fs = std::filesystem;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : -1;
    if (n < 0 || i + n >= s.size() + (n == 0 ? 1 : 0)) return false;
    for (int k = 1; k <= n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n + 1;
  }
  return true;
}

std::string latin1_to_utf8(const std::string& s) {
  std::string out;
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out += ch;
    } else {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

// dpkg's file list of a package: <pkg>.list, or <pkg>:<arch>.list for multi-arch packages.
std::string package_list(const CorpusOptions& o, const std::string& pkg) {
  if (fs::exists(o.dpkg_info + "/" + pkg + ".list")) return o.dpkg_info + "/" + pkg + ".list";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(o.dpkg_info, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(pkg + ":", 0) == 0 && n.ends_with(".list")) return e.path().string();
  }
  return "";
}

// Text files a package installed under `under` (regular files; no .dat indexes, no .u8 links,
// no offensive "off/" sets), from dpkg's file list.
std::vector<std::string> package_files(const CorpusOptions& o, const std::string& pkg, const std::string& under,
                                       const std::string& suffix) {
  const std::string list = package_list(o, pkg);
  std::ifstream in(list);
  if (list.empty() || !in) return {};
  std::vector<std::string> files;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(under, 0) != 0) continue;
    if (line.find("/off/") != std::string::npos) continue;
    if (line.size() >= 4 && (line.ends_with(".dat") || line.ends_with(".u8"))) continue;
    if (!suffix.empty() && !line.ends_with(suffix)) continue;
    const std::string path = o.root + line;
    struct stat st{};
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    files.push_back(line);
  }
  std::sort(files.begin(), files.end());
  return files;
}

// A fortune file: entries separated by lines holding only "%".
std::vector<std::string> split_fortunes(const std::string& text) {
  std::vector<std::string> docs;
  std::string cur, line;
  std::istringstream in(text);
  auto flush = [&] {
    while (!cur.empty() && (cur.back() == '\n' || cur.back() == ' ')) cur.pop_back();
    if (!cur.empty()) docs.push_back(cur);
    cur.clear();
  };
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line == "%") {
      flush();
    } else {
      cur += line;
      cur += '\n';
    }
  }
  flush();
  return docs;
}

void shuffle(std::vector<std::string>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.next() % i]);
}

}  // namespace

const std::vector<CorpusDomain>& corpus_domains() {
  static const std::vector<CorpusDomain> d = {
      {"en", "English fortunes", {"fortunes", "fortunes-min"}},
      {"de", "German fortunes", {"fortunes-de"}},
      {"es", "Spanish fortunes", {"fortunes-es"}},
      {"it", "Italian fortunes", {"fortunes-it"}},
      {"c", "C headers (/usr/include)", {"libc6-dev"}},
  };
  return d;
}

CorpusStats write_corpus(const CorpusOptions& o) {
  if (o.out_dir.empty()) throw InvalidInput("[data] no output directory given (--out)");
  if (!(o.val_fraction > 0 && o.val_fraction < 1)) throw InvalidInput("[data] --val_fraction must be in (0, 1)");
  if (o.max_bytes_per_domain < 0) throw InvalidInput("[data] --max_bytes_per_domain must be >= 0");
  const auto& domains = corpus_domains();
  CorpusStats stats;
  const size_t D = domains.size();
  stats.files_per_domain.assign(D, 0);
  for (CorpusSplitStats* s : {&stats.train, &stats.val}) {
    s->bytes_per_domain.assign(D, 0);
    s->documents_per_domain.assign(D, 0);
  }
  // (document, domain) per split
  std::vector<std::pair<std::string, uint8_t>> train, val;
  Rng rng(o.seed);
  for (size_t d = 0; d < D; ++d) {
    const CorpusDomain& dom = domains[d];
    std::vector<std::string> docs;
    bool installed = false;
    for (const std::string& pkg : dom.packages) {
      const bool c = dom.name == "c";
      const std::vector<std::string> files =
          package_files(o, pkg, c ? "/usr/include/" : "/usr/share/games/fortunes", c ? ".h" : "");
      if (!package_list(o, pkg).empty()) installed = true;
      for (const std::string& f : files) {
        std::string text = read_all(o.root + f);
        if (text.empty()) continue;
        if (!valid_utf8(text)) text = latin1_to_utf8(text);
        ++stats.files_per_domain[d];
        if (c) {
          docs.push_back(text);
        } else {
          for (std::string& e : split_fortunes(text)) docs.push_back(std::move(e));
        }
      }
    }
    if (!installed)
      throw InvalidInput("[data] the " + dom.description + " come from the Debian package " + dom.packages[0] +
                         ", which is not installed: apt-get install " + dom.packages[0] +
                         " (or run scripts/setup.sh)");
    if (docs.empty()) throw InvalidInput("[data] package " + dom.packages[0] + " gave no " + dom.description);
    shuffle(docs, rng);
    int64_t bytes = 0;
    size_t keep = 0;
    while (keep < docs.size() && (o.max_bytes_per_domain == 0 || bytes < o.max_bytes_per_domain)) {
      bytes += static_cast<int64_t>(docs[keep].size()) + 2;
      ++keep;
    }
    docs.resize(keep);
    const size_t n_val = std::max<size_t>(1, static_cast<size_t>(o.val_fraction * static_cast<double>(keep) + 0.5));
    if (keep < 2) throw InvalidInput("[data] " + dom.description + ": too few documents to split");
    for (size_t i = 0; i < keep; ++i) (i < n_val ? val : train).emplace_back(std::move(docs[i]), static_cast<uint8_t>(d));
  }
  fs::create_directories(o.out_dir);
  auto write_split = [&](std::vector<std::pair<std::string, uint8_t>>& docs, const std::string& name, CorpusSplitStats& s) {
    std::vector<std::string> order;  // shuffle documents across domains, keeping labels
    std::vector<size_t> idx(docs.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng.next() % i]);
    std::string text, labels;
    for (const size_t i : idx) {
      const auto& [doc, d] = docs[i];
      text += doc;
      text += "\n\n";
      labels.append(doc.size() + 2, static_cast<char>(d));
      s.bytes_per_domain[d] += static_cast<int64_t>(doc.size()) + 2;
      ++s.documents_per_domain[d];
      ++s.documents;
    }
    s.bytes = static_cast<int64_t>(text.size());
    write_file_atomic(o.out_dir + "/" + name + ".txt", text);
    write_file_atomic(o.out_dir + "/" + name + ".domain", labels);
  };
  write_split(train, "train", stats.train);
  write_split(val, "val", stats.val);
  nlohmann::json j;
  j["domains"] = nlohmann::json::array();
  for (size_t d = 0; d < D; ++d)
    j["domains"].push_back({{"id", d},
                            {"name", domains[d].name},
                            {"description", domains[d].description},
                            {"packages", domains[d].packages},
                            {"files", stats.files_per_domain[d]},
                            {"train_bytes", stats.train.bytes_per_domain[d]},
                            {"train_documents", stats.train.documents_per_domain[d]},
                            {"val_bytes", stats.val.bytes_per_domain[d]},
                            {"val_documents", stats.val.documents_per_domain[d]}});
  j["train"] = {{"bytes", stats.train.bytes}, {"documents", stats.train.documents}};
  j["val"] = {{"bytes", stats.val.bytes}, {"documents", stats.val.documents}};
  j["seed"] = o.seed;
  j["max_bytes_per_domain"] = o.max_bytes_per_domain;
  j["val_fraction"] = o.val_fraction;
  write_file_atomic(o.out_dir + "/corpus.json", j.dump(2) + "\n");
  return stats;
}

LabelledText read_labelled_split(const std::string& dir, const std::string& split) {
  const std::string tp = dir + "/" + split + ".txt", dp = dir + "/" + split + ".domain";
  if (!fs::exists(tp) || !fs::exists(dp))
    throw InvalidInput("[data] " + dir + ": no " + split + ".txt / " + split + ".domain (run `moe data --out " + dir + "`)");
  LabelledText t;
  t.text = read_all(tp);
  const std::string d = read_all(dp);
  if (d.size() != t.text.size())
    throw InvalidInput("[data] " + dp + " has " + std::to_string(d.size()) + " labels for " + std::to_string(t.text.size()) +
                       " bytes of text");
  const size_t D = corpus_domains().size();
  t.domain.resize(d.size());
  for (size_t i = 0; i < d.size(); ++i) {
    t.domain[i] = static_cast<uint8_t>(d[i]);
    if (t.domain[i] >= D) throw InvalidInput("[data] " + dp + ": domain id " + std::to_string(t.domain[i]) + " at byte " + std::to_string(i));
  }
  return t;
}

}  // namespace moe
