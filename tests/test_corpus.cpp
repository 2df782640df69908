// moe data's corpus builder on a fake dpkg database: documents, labels, split, and the error for
// a missing package.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "moe/corpus.h"
#include "moe/error.h"

namespace moe {
namespace {

namespace fs = std::filesystem;

struct FakeSystem {
  fs::path root = fs::temp_directory_path() / ("moe_corpus_" + std::to_string(::getpid()));
  fs::path info = root / "var/lib/dpkg/info";
  FakeSystem() {
    fs::remove_all(root);
    fs::create_directories(info);
  }
  ~FakeSystem() { fs::remove_all(root); }
  void file(const std::string& path, const std::string& text) {
    fs::create_directories((root / path.substr(1)).parent_path());
    std::ofstream(root / path.substr(1), std::ios::binary) << text;
  }
  void package(const std::string& name, const std::vector<std::string>& paths) {
    std::ofstream list(info / (name + ".list"));
    for (const auto& p : paths) list << p << "\n";
  }
  CorpusOptions options() const {
    CorpusOptions o;
    o.out_dir = (root / "out").string();
    o.dpkg_info = info.string();
    o.root = root.string();
    o.val_fraction = 0.25;
    return o;
  }
};

std::string fortunes(const std::string& tag, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += tag + " fortune " + std::to_string(i) + "\n  -- someone\n%\n";
  return s;
}

void install_all(FakeSystem& f) {
  f.file("/usr/share/games/fortunes/en1", fortunes("english", 8));
  f.file("/usr/share/games/fortunes/en1.dat", "binary index");
  f.package("fortunes", {"/usr/share/games/fortunes", "/usr/share/games/fortunes/en1", "/usr/share/games/fortunes/en1.dat"});
  f.package("fortunes-min", {});
  f.file("/usr/share/games/fortunes/de/a", fortunes("deutsch \xfc", 8));  // Latin-1 ü: converted to UTF-8
  f.package("fortunes-de", {"/usr/share/games/fortunes/de/a"});
  f.file("/usr/share/games/fortunes/es/a", fortunes("español", 8));
  f.file("/usr/share/games/fortunes/off/es", fortunes("offensive", 8));
  f.package("fortunes-es", {"/usr/share/games/fortunes/es/a", "/usr/share/games/fortunes/off/es"});
  f.file("/usr/share/games/fortunes/it/a", fortunes("italiano", 8));
  f.package("fortunes-it", {"/usr/share/games/fortunes/it/a"});
  for (int i = 0; i < 4; ++i) f.file("/usr/include/h" + std::to_string(i) + ".h", "int f" + std::to_string(i) + "(void);\n");
  f.package("libc6-dev:amd64", {"/usr/include/h0.h", "/usr/include/h1.h", "/usr/include/h2.h", "/usr/include/h3.h"});
}

TEST(Corpus, DocumentsLabelsAndSplit) {
  FakeSystem f;
  install_all(f);
  const CorpusStats s = write_corpus(f.options());
  EXPECT_EQ(s.files_per_domain, (std::vector<int64_t>{1, 1, 1, 1, 4}));  // .dat and off/ skipped
  EXPECT_EQ(s.train.documents + s.val.documents, 8 * 4 + 4);
  for (size_t d = 0; d < 5; ++d) EXPECT_GE(s.val.documents_per_domain[d], 1) << d;
  for (const char* split : {"train", "val"}) {
    const LabelledText t = read_labelled_split(f.options().out_dir, split);
    ASSERT_EQ(t.text.size(), t.domain.size());
    // Every document's bytes carry its domain: spot-check by content.
    for (const auto& [word, dom] : std::vector<std::pair<std::string, uint8_t>>{
             {"english", 0}, {"deutsch", 1}, {"español", 2}, {"italiano", 3}, {"int f", 4}}) {
      size_t at = t.text.find(word);
      while (at != std::string::npos) {
        EXPECT_EQ(t.domain[at], dom) << word;
        at = t.text.find(word, at + 1);
      }
    }
    EXPECT_EQ(t.text.find("offensive"), std::string::npos);
  }
  const LabelledText tr = read_labelled_split(f.options().out_dir, "train");
  const LabelledText va = read_labelled_split(f.options().out_dir, "val");
  EXPECT_NE((tr.text + va.text).find("deutsch \xc3\xbc"), std::string::npos);  // Latin-1 converted
  // Deterministic for a seed.
  const std::string again = (f.root / "again").string();
  CorpusOptions o = f.options();
  o.out_dir = again;
  write_corpus(o);
  EXPECT_EQ(read_labelled_split(again, "train").text, tr.text);
}

TEST(Corpus, MissingPackageNamesIt) {
  FakeSystem f;
  install_all(f);
  fs::remove(f.info / "fortunes-it.list");
  try {
    write_corpus(f.options());
    FAIL() << "no error";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("apt-get install fortunes-it"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_labelled_split((f.root / "nowhere").string(), "val"), InvalidInput);
}

}  // namespace
}  // namespace moe
