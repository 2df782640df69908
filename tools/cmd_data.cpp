// `moe data`: builds the labelled demo corpus (src/train/corpus.cpp) and prints what it holds.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "moe/corpus.h"
#include "util/format.h"

namespace moe::cli {

Run add_data(CLI::App& app) {
  auto o = std::make_shared<CorpusOptions>();
  o->out_dir = "out/data";
  CLI::App* c = app.add_subcommand("data", "Build the demo corpus: en/de/es/it fortunes and C headers, labelled by domain");
  c->add_option("--out", o->out_dir, "Output directory (train.txt, val.txt, *.domain, corpus.json)")->capture_default_str();
  c->add_option("--max_bytes_per_domain", o->max_bytes_per_domain, "Cap per domain (0 = everything)")->capture_default_str();
  c->add_option("--val_fraction", o->val_fraction, "Documents of each domain held out")->capture_default_str();
  c->add_option("--seed", o->seed, "Shuffle seed")->capture_default_str();
  return [o, c]() -> int {
    if (!c->parsed()) return 0;
    const CorpusStats s = write_corpus(*o);
    std::vector<std::vector<std::string>> rows = {{"id", "domain", "files", "train B", "docs", "val B", "docs"}};
    const auto& d = corpus_domains();
    for (size_t i = 0; i < d.size(); ++i)
      rows.push_back({d[i].name, d[i].description, util::group_thousands(s.files_per_domain[i]),
                      util::group_thousands(s.train.bytes_per_domain[i]), util::group_thousands(s.train.documents_per_domain[i]),
                      util::group_thousands(s.val.bytes_per_domain[i]), util::group_thousands(s.val.documents_per_domain[i])});
    std::fputs(util::text_table(rows, 2).c_str(), stdout);
    std::printf("total: train %s bytes (%s documents), val %s bytes (%s documents) -> %s\n",
                util::group_thousands(s.train.bytes).c_str(), util::group_thousands(s.train.documents).c_str(),
                util::group_thousands(s.val.bytes).c_str(), util::group_thousands(s.val.documents).c_str(), o->out_dir.c_str());
    return 0;
  };
}

}  // namespace moe::cli
