// Number formatting against values Python prints (f"{n:,}", f"{x:,.2f}").
#include <gtest/gtest.h>

#include <cmath>

#include "util/format.h"

using namespace moe::util;

TEST(Format, GroupsThousandsLikePython) {
  EXPECT_EQ(group_thousands(0), "0");
  EXPECT_EQ(group_thousands(999), "999");
  EXPECT_EQ(group_thousands(1000), "1,000");
  EXPECT_EQ(group_thousands(308281344), "308,281,344");
  EXPECT_EQ(group_thousands(-1234567), "-1,234,567");
  EXPECT_EQ(group_thousands(9223372036854775807LL), "9,223,372,036,854,775,807");
}

TEST(Format, GigabytesRoundLikePython) {
  // Values printed by Python: f"{n / (1000 ** 3):,.2f} GB"
  EXPECT_EQ(gigabytes(616562688), "0.62 GB");
  EXPECT_EQ(gigabytes(114688), "0.00 GB");
  EXPECT_EQ(gigabytes(5000000), "0.01 GB");    // 0.005 is stored above .005: rounds up
  EXPECT_EQ(gigabytes(15000000), "0.01 GB");   // 0.015 is stored below .015: rounds down
  EXPECT_EQ(gigabytes(4932616192), "4.93 GB");
  EXPECT_EQ(gigabytes(1342054051840), "1,342.05 GB");
}

TEST(Format, LabelsArePaddedTo23) {
  EXPECT_EQ(label_line("emb_dim", "7168"), "emb_dim                : 7168\n");
  EXPECT_EQ(label_line("a label longer than 23 chars", "x"), "a label longer than 23 chars: x\n");
}

TEST(Format, ShortAndBinaryUnits) {
  EXPECT_EQ(short_count(46702792704), "46.70B");
  EXPECT_EQ(short_count(131072000), "131.07M");
  EXPECT_EQ(short_count(999), "999");
  EXPECT_EQ(binary_bytes(131072), "128.00 KiB");
  EXPECT_EQ(binary_bytes(12), "12 B");
}

TEST(Format, PaddingCountsCodePointsNotBytes) {
  EXPECT_EQ(display_width("8×256, α=0.01, γ=1e-3"), 21u);
  EXPECT_EQ(display_width("\u2423 \u23CE"), 3u);
  EXPECT_EQ(pad_right("α=0.01", 8), "α=0.01  ");
  EXPECT_EQ(pad_left("8×256", 7), "  8×256");
  EXPECT_EQ(pad_left("too long", 3), "too long");
  // As Python's f"{label:23}": a label with "×" lines its value up with the ASCII labels.
  EXPECT_EQ(label_line("experts 8×256", "x"), "experts 8×256          : x\n");
  EXPECT_EQ(display_width(label_line("experts 8×256", "x")), display_width(label_line("emb_dim", "x")));
}

TEST(Format, TextTableAlignsByDisplayWidth) {
  const std::string t = text_table({{"run", "parameters", "drop %"},
                                    {"aux loss (α=0.01)", "3,445,888", "0.0"},
                                    {"aux-loss-free bias (γ=1e-3)", "12", "n/a"},
                                    {"MoE 8×256", "1", "1.5"}});
  size_t lines = 0, width = 0;
  for (size_t a = 0, b; (b = t.find('\n', a)) != std::string::npos; a = b + 1, ++lines) {
    const size_t w = display_width(t.substr(a, b - a));
    if (lines == 0) width = w;
    EXPECT_EQ(w, width) << "line " << lines << ": " << t.substr(a, b - a);
  }
  EXPECT_EQ(lines, 4u);
  EXPECT_NE(t.find("aux loss (α=0.01)             3,445,888     0.0\n"), std::string::npos) << t;
  // Two left-aligned columns, then right-aligned ones; trailing spaces trimmed.
  EXPECT_EQ(text_table({{"a", "bb", "1"}, {"ccc", "d", "22"}}, 2), "a    bb   1\nccc  d   22\n");
  EXPECT_EQ(text_table({{"long name", ""}, {"x", ""}}), "long name\nx\n");
}

TEST(Format, NoValueIsNa) {
  EXPECT_EQ(fixed_or_na(3.08291, 4), "3.0829");
  EXPECT_EQ(fixed_or_na(0.0, 2), "0.00");  // zero is a value
  EXPECT_EQ(fixed_or_na(NAN, 4), "n/a");
  EXPECT_EQ(fixed_or_na(INFINITY, 1), "n/a");
}

TEST(Format, ShellWordsAndTimestamps) {
  const std::pair<const char*, const char*> words[] = {
      {"out/experiments", "out/experiments"}, {"--only=a,b", "--only=a,b"}, {"My report", "'My report'"},
      {"it's <b>", "'it'\\''s <b>'"}, {"", "''"}};
  for (const auto& [word, quoted] : words) EXPECT_EQ(shell_quote(word), quoted);
  EXPECT_EQ(utc_timestamp(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(utc_timestamp(1717245296), "2024-06-01T12:34:56Z");
  EXPECT_EQ(readable_timestamp("2024-06-01T12:34:56Z"), "2024-06-01 12:34 UTC");
  EXPECT_EQ(readable_timestamp("yesterday"), "yesterday");
}

TEST(Format, WordPrefixCutsBetweenWords) {
  EXPECT_EQ(word_prefix("Optimism is the content of small men", 24), "Optimism is the content ");
  EXPECT_EQ(word_prefix("Optimism is the content of small men", 23), "Optimism is the ");
  EXPECT_EQ(word_prefix("Optimism is", 8), "Optimism");
  EXPECT_EQ(word_prefix("Letzte Worte eines Architekten", 24), "Letzte Worte eines ");
  EXPECT_EQ(word_prefix("short", 24), "short");
  EXPECT_EQ(word_prefix("line one\nline two", 12), "line one\n");
  // One long word: cut on a character boundary, never inside "ü" (2 bytes).
  EXPECT_EQ(word_prefix("Donaudampfschifffahrtsgesellschaftsbüro", 36), "Donaudampfschifffahrtsgesellschaftsb");
  EXPECT_EQ(word_prefix("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaü", 35), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
}
