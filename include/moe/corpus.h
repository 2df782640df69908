// The demo corpus: documents labelled by domain, from text that Debian packages install —
// English, German, Spanish and Italian fortunes (one document per fortune) and C headers (one
// document per file) — split deterministically into train and validation.
//
// Files written by write_corpus (DIR/):
//   train.txt, val.txt          the documents, shuffled, each followed by "\n\n"
//   train.domain, val.domain    one byte per text byte: the domain id of that byte
//   corpus.json                 domains (id, name, package), bytes and documents per split
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moe {

struct CorpusDomain {
  std::string name;                  // "en", "de", "es", "it", "c"
  std::string description;           // "English fortunes"
  std::vector<std::string> packages; // Debian packages the text comes from
};

// The five domains, in id order.
const std::vector<CorpusDomain>& corpus_domains();

struct CorpusOptions {
  std::string out_dir;
  int64_t max_bytes_per_domain = 600000;  // cap per domain so domains weigh alike (0 = no cap)
  double val_fraction = 0.1;              // of each domain's documents
  uint64_t seed = 1;
  std::string dpkg_info = "/var/lib/dpkg/info";  // where <package>.list files live
  std::string root;                              // prefix for the listed paths (tests)
};

struct CorpusSplitStats {
  int64_t bytes = 0, documents = 0;
  std::vector<int64_t> bytes_per_domain, documents_per_domain;
};
struct CorpusStats {
  CorpusSplitStats train, val;
  std::vector<int64_t> files_per_domain;
};

// Builds the corpus. Throws InvalidInput("[data] ...") naming the Debian package to install when
// a domain's package is missing, or when it yields no text.
CorpusStats write_corpus(const CorpusOptions& options);

// Reads DIR/<split>.txt and DIR/<split>.domain back (sizes checked).
struct LabelledText {
  std::string text;
  std::vector<uint8_t> domain;  // [text.size()]
};
LabelledText read_labelled_split(const std::string& dir, const std::string& split);

}  // namespace moe
