// `moe data`: builds the labelled demo corpus (src/train/corpus.cpp) and prints what it holds.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "moe/corpus.h"

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
    std::printf("%-4s %-28s %6s %10s %8s %9s %7s\n", "id", "domain", "files", "train B", "docs", "val B", "docs");
    const auto& d = corpus_domains();
    for (size_t i = 0; i < d.size(); ++i)
      std::printf("%-4s %-28s %6lld %10lld %8lld %9lld %7lld\n", d[i].name.c_str(), d[i].description.c_str(),
                  static_cast<long long>(s.files_per_domain[i]), static_cast<long long>(s.train.bytes_per_domain[i]),
                  static_cast<long long>(s.train.documents_per_domain[i]), static_cast<long long>(s.val.bytes_per_domain[i]),
                  static_cast<long long>(s.val.documents_per_domain[i]));
    std::printf("total: train %lld bytes (%lld documents), val %lld bytes (%lld documents) -> %s\n",
                static_cast<long long>(s.train.bytes), static_cast<long long>(s.train.documents),
                static_cast<long long>(s.val.bytes), static_cast<long long>(s.val.documents), o->out_dir.c_str());
    return 0;
  };
}

}  // namespace moe::cli
