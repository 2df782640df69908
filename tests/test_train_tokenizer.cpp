// Byte tokenizer: exact round trips of any bytes, and safe printing of invalid UTF-8 (the
// replacement rules of Python's bytes.decode("utf-8", "replace")), also when streamed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "moe/error.h"
#include "moe/rng.h"
#include "moe/tokenizer.h"

using moe::ByteTokenizer;

namespace {

std::string random_bytes(moe::Rng& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng.next() & 0xFF);
  return s;
}

void expect_round_trip(const std::string& text) {
  const std::vector<int32_t> ids = ByteTokenizer::encode(text);
  ASSERT_EQ(ids.size(), text.size());
  for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < ByteTokenizer::kVocabSize);
  EXPECT_EQ(ByteTokenizer::decode(ids), text);
}

}  // namespace

TEST(ByteTokenizer, RoundTripsAnyBytes) {
  moe::Rng rng(7);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  expect_round_trip(all);
  for (size_t n : {0, 1, 2, 17, 1000}) expect_round_trip(random_bytes(rng, n));
  expect_round_trip("Grüße, 世界! Привет, мир. 🚀 مرحبا");
  expect_round_trip("int main() {\n\treturn a[i] << 2 & 0xff; // \"q\" \\ \x7f\n}\r\n");
  expect_round_trip(std::string("nul\0inside", 10));
}

TEST(ByteTokenizer, EncodesBytesAsUnsigned) {
  EXPECT_EQ(ByteTokenizer::encode("\xff" "A"), (std::vector<int32_t>{255, 65}));
}

TEST(ByteTokenizer, RejectsIdsOutsideTheVocabulary) {
  const std::vector<int32_t> ids = {65, 66, 256};
  try {
    ByteTokenizer::decode(ids);
    FAIL() << "accepted id 256";
  } catch (const moe::InvalidInput& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("[tokenizer] ", 0), 0u) << what;
    EXPECT_NE(what.find("256 at index 2"), std::string::npos) << what;
  }
  EXPECT_THROW(ByteTokenizer::decode(std::vector<int32_t>{-1}), moe::InvalidInput);
}

// Expected outputs from CPython: bytes.decode("utf-8", "replace").encode("utf-8").
TEST(PrintableUtf8, MatchesPythonReplacement) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\x61\x62\x63", "\x61\x62\x63"},
      {"\xc3\xa9", "\xc3\xa9"},
      {"\xc3", "\xef\xbf\xbd"},
      {"\xc3\x41", "\xef\xbf\xbd\x41"},
      {"\xe2\x82\xac", "\xe2\x82\xac"},
      {"\xe2\x82", "\xef\xbf\xbd"},
      {"\xe2\x82\x41", "\xef\xbf\xbd\x41"},
      {"\xe0\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
      {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
      {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
      {"\xf0\x9f\x98", "\xef\xbf\xbd"},
      {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
      {"\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd"},
      {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},
      {"\x80\x80\x78", "\xef\xbf\xbd\xef\xbf\xbd\x78"},
      {"\xf0\x80", "\xef\xbf\xbd\xef\xbf\xbd"},
      {"\x61\xf1\x80\x80\xe1\x80\xc2\x62", "\x61\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\x62"},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(moe::printable_utf8(in), want) << "input size " << in.size();
}

TEST(PrintableUtf8, KeepsValidTextAndAlwaysGivesValidUtf8) {
  const std::string text = "Grüße 世界 🚀 \t\n";
  EXPECT_EQ(moe::printable_utf8(text), text);
  moe::Rng rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    const std::string out = moe::printable_utf8(random_bytes(rng, 1 + rng.next() % 64));
    EXPECT_EQ(moe::printable_utf8(out), out);  // valid UTF-8 is a fixed point
  }
}

TEST(PrintableUtf8, EscapesControlsOnRequest) {
  EXPECT_EQ(moe::printable_utf8("\x1b[31mred\a\x7f\tok\n", true), "\xe2\x90\x9b[31mred\xe2\x90\x87\xe2\x90\xa1\tok\n");
  EXPECT_EQ(moe::printable_utf8("\x1b[31m", false), "\x1b[31m");
}

TEST(Utf8Stream, AnySplitGivesTheWholeText) {
  moe::Rng rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    // Mostly valid multi-byte text with some random bytes mixed in.
    std::string bytes = trial % 2 ? "é€🚀a" : "";
    bytes += random_bytes(rng, rng.next() % 24);
    bytes += "世界";
    const bool escape = trial % 3 == 0;
    moe::Utf8Stream stream(escape);
    std::string out;
    size_t pos = 0;
    while (pos < bytes.size()) {
      const size_t n = std::min<size_t>(bytes.size() - pos, rng.next() % 4);
      out += stream.push(std::string_view(bytes).substr(pos, n));
      pos += n;
    }
    out += stream.flush();
    EXPECT_EQ(out, moe::printable_utf8(bytes, escape)) << "trial " << trial;
  }
}

TEST(Utf8Stream, HoldsBackAnIncompleteCharacter) {
  moe::Utf8Stream stream;
  EXPECT_EQ(stream.push("a\xe2\x82"), "a");
  EXPECT_EQ(stream.push("\xac"), "\xe2\x82\xac");
  EXPECT_EQ(stream.push("\xf0\x9f"), "");
  EXPECT_EQ(stream.flush(), "\xef\xbf\xbd");
}
