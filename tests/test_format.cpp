// Number formatting against values Python prints (f"{n:,}", f"{x:,.2f}").
#include <gtest/gtest.h>

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
