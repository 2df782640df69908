// Safetensors I/O: round trips of every dtype, the writer's exact layout, atomic writes, one test
// per malformed header (each must be a clear InvalidInput, never a crash), truncations and bit
// flips of a valid file, a file written by Python, and the fuzzer's corpus.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "moe/error.h"
#include "moe/safetensors.h"

namespace fs = std::filesystem;
using moe::DType;

namespace {

const std::vector<DType> kAll = {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32,
                                 DType::i64, DType::u8,  DType::i8,   DType::boolean, DType::i16,
                                 DType::u16, DType::u32, DType::u64,  DType::f8_e4m3, DType::f8_e5m2};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out << bytes;
}

fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("moe_st_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

int count_entries(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += (void(e), 1);
  return n;
}

// A file from a header text and a data buffer, built by hand.
std::string file_of(const std::string& header, const std::string& buffer = "", uint64_t n = UINT64_MAX) {
  if (n == UINT64_MAX) n = header.size();
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  return out + header + buffer;
}

moe::SafetensorsHeader parse(const std::string& bytes) {
  return moe::parse_safetensors({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, "t.st");
}

// Expects InvalidInput "[safetensors] t.st: ..." containing `fragment`.
void expect_invalid(const std::string& bytes, const std::string& fragment) {
  try {
    parse(bytes);
    ADD_FAILURE() << "accepted; expected an error containing: " << fragment;
  } catch (const moe::InvalidInput& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("[safetensors] t.st: ", 0), 0u) << what;
    EXPECT_NE(what.find(fragment), std::string::npos) << "message: " << what << "\nwanted: " << fragment;
  }
}

// One header entry as JSON text.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

moe::Tensor patterned(DType dtype, moe::Shape shape, int seed) {
  moe::Tensor t(dtype, std::move(shape));
  auto* p = static_cast<uint8_t*>(t.data());
  for (size_t i = 0; i < t.nbytes(); ++i) {
    p[i] = dtype == DType::boolean ? (i + seed) % 2 : static_cast<uint8_t>(i * 37 + seed * 11 + 5);
  }
  return t;
}

bool same_bytes(const moe::TensorView& a, const moe::TensorView& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.nbytes() == b.nbytes() &&
         (a.nbytes() == 0 || std::memcmp(a.data(), b.data(), a.nbytes()) == 0);
}

// Runs in a death-test child: exits 0 iff the write failed with an error naming the path.
[[noreturn]] void write_under_size_limit(const fs::path& path, const moe::Tensor& big) {
  const struct rlimit lim = {4096, 4096};
  ::setrlimit(RLIMIT_FSIZE, &lim);
  std::signal(SIGXFSZ, SIG_IGN);  // so write() returns EFBIG instead of killing the process
  try {
    moe::write_safetensors(path.string(), {{"big", big.view()}});
  } catch (const std::runtime_error& e) {
    std::_Exit(std::string(e.what()).find(path.string()) != std::string::npos ? 0 : 2);
  }
  std::_Exit(1);
}

}  // namespace

// ---- round trips and the writer's layout -------------------------------------------------------

TEST(Safetensors, RoundTripsEveryDtypeScalarAndEmptyInOrder) {
  const fs::path dir = fresh_dir("roundtrip");
  std::vector<moe::Tensor> owned;
  std::vector<std::string> order;
  int seed = 0;
  for (DType d : kAll) {
    const std::string n = moe::dtype_name(d);
    for (auto [prefix, shape] : {std::pair<std::string, moe::Shape>{"m_", {2, 3}}, {"s_", {}}, {"e_", {0, 4}}}) {
      owned.push_back(patterned(d, shape, ++seed));
      order.push_back(prefix + n);
    }
  }
  // Reverse name order so "sorted" and "as written" differ.
  std::reverse(order.begin(), order.end());
  std::reverse(owned.begin(), owned.end());
  moe::NamedTensors tensors;
  for (size_t i = 0; i < owned.size(); ++i) tensors.emplace_back(order[i], owned[i].view());
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "üñí ✓"}};
  const fs::path path = dir / "all.safetensors";
  moe::write_safetensors(path.string(), tensors, meta);

  const auto f = moe::SafetensorsFile::open(path.string());
  EXPECT_EQ(f.metadata(), meta);
  EXPECT_EQ(f.names_in_file_order(), order);
  std::vector<std::string> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(f.names(), sorted);
  for (size_t i = 0; i < owned.size(); ++i) {
    SCOPED_TRACE(order[i]);
    ASSERT_TRUE(f.contains(order[i]));
    const moe::Tensor t = f.load(order[i]);
    EXPECT_TRUE(same_bytes(t.view(), owned[i].view()));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
    // view() is zero-copy where aligned and refuses otherwise.
    const auto& e = f.entry(order[i]);  // the writer starts the buffer 8-aligned, the mapping is page-aligned
    const bool aligned = e.begin == e.end || e.begin % moe::dtype_size(e.dtype) == 0;
    if (aligned) {
      EXPECT_TRUE(same_bytes(f.view(order[i]), owned[i].view()));
    } else {
      EXPECT_THROW(f.view(order[i]), moe::InvalidInput);
    }
  }
  EXPECT_EQ(count_entries(dir), 1);  // no temp file left
  fs::remove_all(dir);
}

TEST(Safetensors, WriterLayoutMatchesTheReference) {
  const moe::Tensor a = moe::Tensor::from<float>({2}, {1.0f, -2.0f});
  const std::string bytes = moe::serialize_safetensors({{"a", a.view()}}, {{"k", "v"}});
  const std::string header = R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  EXPECT_EQ(bytes, file_of(padded, std::string(static_cast<const char*>(a.data()), 8)));
  EXPECT_EQ((bytes.size() - 8) % 8, 0u);
  // No metadata: no "__metadata__" key at all.
  EXPECT_EQ(moe::serialize_safetensors({}), file_of("{}      "));
}

TEST(Safetensors, MisalignedTensorLoadsButDoesNotView) {
  const fs::path dir = fresh_dir("align");
  const moe::Tensor u = moe::Tensor::from<uint8_t>({3}, {1, 2, 3});
  const moe::Tensor f = moe::Tensor::from<float>({2}, {0.5f, 4.0f});
  const fs::path path = dir / "m.safetensors";
  moe::write_safetensors(path.string(), {{"u", u.view()}, {"f", f.view()}});
  const auto file = moe::SafetensorsFile::open(path.string());
  EXPECT_EQ(file.view("u").as<uint8_t>()[2], 3);
  try {
    file.view("f");
    FAIL() << "expected a misalignment error";
  } catch (const moe::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("not a multiple of 4; use load()"), std::string::npos) << e.what();
  }
  const moe::Tensor g = file.load("f");
  EXPECT_EQ(g.as<float>()[0], 0.5f);
  EXPECT_EQ(g.as<float>()[1], 4.0f);
  fs::remove_all(dir);
}

TEST(Safetensors, MissingTensorNamesItAndSomeAvailable) {
  const fs::path dir = fresh_dir("missing");
  const moe::Tensor a = moe::Tensor::from<float>({1}, {1.0f});
  const fs::path path = dir / "x.safetensors";
  moe::write_safetensors(path.string(), {{"alpha", a.view()}, {"beta", a.view()}});
  const auto f = moe::SafetensorsFile::open(path.string());
  try {
    f.view("gamma");
    FAIL();
  } catch (const moe::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find(path.string() + ": no tensor 'gamma' (the file has 2 tensors: 'alpha', 'beta')"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(moe::SafetensorsFile::open((dir / "nope").string()), moe::InvalidInput);
  EXPECT_THROW(moe::SafetensorsFile::open(dir.string()), moe::InvalidInput);  // a directory
  fs::remove_all(dir);
}

// ---- atomic writes -------------------------------------------------------------------------------

TEST(Safetensors, RejectedWriteKeepsTheOldFile) {
  const fs::path dir = fresh_dir("atomic");
  const fs::path path = dir / "w.safetensors";
  const moe::Tensor a = moe::Tensor::from<float>({2}, {1.0f, 2.0f});
  moe::write_safetensors(path.string(), {{"a", a.view()}});
  const std::string before = slurp(path);
  for (const moe::NamedTensors& bad : std::vector<moe::NamedTensors>{{{"a", a.view()}, {"a", a.view()}},
                                                                      {{"__metadata__", a.view()}},
                                                                      {{"b", moe::TensorView(nullptr, DType::f32, {2})}},
                                                                      {{"bad\xff", a.view()}},
                                                                      {{"huge", moe::TensorView(a.data(), DType::f32, {1LL << 62, 4})}}}) {
    try {
      moe::write_safetensors(path.string(), bad);
      ADD_FAILURE() << "accepted";
    } catch (const moe::InvalidInput& e) {
      EXPECT_EQ(std::string(e.what()).rfind("[safetensors] " + path.string() + ": tensor '", 0), 0u) << e.what();
    }
  }
  EXPECT_EQ(slurp(path), before);
  EXPECT_EQ(count_entries(dir), 1);
  fs::remove_all(dir);
}

TEST(Safetensors, FailedWriteKeepsTheOldFileAndLeavesNoTemp) {
  const fs::path dir = fresh_dir("efbig");
  const fs::path path = dir / "w.safetensors";
  const moe::Tensor small = moe::Tensor::from<float>({2}, {1.0f, 2.0f});
  moe::write_safetensors(path.string(), {{"a", small.view()}});
  const std::string before = slurp(path);
  const moe::Tensor big(DType::f32, {1 << 16});
  // In a child process: a file-size limit makes write() fail with EFBIG half way through.
  EXPECT_EXIT(write_under_size_limit(path, big), ::testing::ExitedWithCode(0), "");
  EXPECT_EQ(slurp(path), before);
  EXPECT_EQ(count_entries(dir), 1);
  fs::remove_all(dir);
}

// ---- malformed files, one case each ---------------------------------------------------------------

TEST(SafetensorsMalformed, ShorterThanTheLengthField) { expect_invalid("abc", "file is 3 bytes, shorter than the 8-byte"); }

TEST(SafetensorsMalformed, HeaderLengthPastTheEnd) {
  expect_invalid(file_of("{}", "", 100), "header length 100 exceeds the 2 bytes after the length field");
}

TEST(SafetensorsMalformed, HeaderLengthAbsurd) {
  expect_invalid(file_of("{}", "", uint64_t{1} << 63), "header length 9223372036854775808 exceeds the limit");
  expect_invalid(file_of("{}", "", 100'000'001), "exceeds the limit of 100000000 bytes");
}

TEST(SafetensorsMalformed, HeaderNotStartingWithBrace) {
  expect_invalid(file_of(" {}"), "header does not start with '{'");
  expect_invalid(file_of(""), "header does not start with '{'");
  expect_invalid(file_of("[1]"), "header does not start with '{'");
}

TEST(SafetensorsMalformed, HeaderNotUtf8) {
  expect_invalid(file_of("{\"a\xff\":1}"), "header is not valid UTF-8 (byte 3");
  expect_invalid(file_of("{\"\xc0\xaf\":1}"), "not valid UTF-8");      // overlong '/'
  expect_invalid(file_of("{\"\xed\xa0\x80\":1}"), "not valid UTF-8");  // a surrogate
}

TEST(SafetensorsMalformed, HeaderNotJson) {
  expect_invalid(file_of("{\"a\":"), "header is not valid JSON");
  expect_invalid(file_of("{} x"), "header is not valid JSON");
  // nlohmann stops at a NUL as at the end of input: the bytes after it must not be ignored.
  expect_invalid(file_of(std::string("{}\0\0", 4)), "header is not valid JSON: NUL byte at byte 2");
  expect_invalid(file_of(std::string("{}\0 garbage", 11)), "NUL byte");
}

TEST(SafetensorsMalformed, NestingTooDeep) {
  expect_invalid(file_of("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}"), "nests deeper than 64");
}

TEST(SafetensorsMalformed, EntryNotAnObject) { expect_invalid(file_of("{\"a\":5}"), "tensor 'a': entry must be an object"); }

TEST(SafetensorsMalformed, EntryFieldsMissingOrUnknown) {
  expect_invalid(file_of(R"({"a":{"dtype":"F32","shape":[]}})"), "tensor 'a': missing field 'data_offsets'");
  expect_invalid(file_of(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,4],"x":1}})", "abcd"),
                 "tensor 'a': unknown field 'x'");
}

TEST(SafetensorsMalformed, UnknownDtype) {
  expect_invalid(file_of("{" + entry("a", "F128", "[1]", "[0,16]") + "}", std::string(16, 'x')),
                 "tensor 'a': unknown dtype \"F128\" (known: F32, F64");
  expect_invalid(file_of(R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", "abcd"), "unknown dtype 4");
}

TEST(SafetensorsMalformed, ShapeNotAListOfNonNegativeIntegers) {
  for (const std::string shape : {"3", "[-1]", "[1.5]", "[\"2\"]", "[[2]]", "[1e3]", "null"}) {
    SCOPED_TRACE(shape);
    expect_invalid(file_of("{" + entry("a", "U8", shape, "[0,4]") + "}", "abcd"),
                   "tensor 'a': shape must be a list of non-negative integers, got");
  }
}

TEST(SafetensorsMalformed, ShapeOverflow) {
  expect_invalid(file_of("{" + entry("a", "U8", "[4294967296,4294967296]", "[0,0]") + "}"),
                 "shape [4294967296,4294967296] has more elements than fit in 64 bits");
  expect_invalid(file_of("{" + entry("a", "F64", "[4611686018427387904]", "[0,0]") + "}"),
                 "of F64 has more bytes than fit in 64 bits");
  expect_invalid(file_of("{" + entry("a", "U8", "[18446744073709551615]", "[0,0]") + "}"),
                 "shape must be a list of non-negative integers");  // above int64
}

TEST(SafetensorsMalformed, DataOffsetsNotTwoOrderedIntegers) {
  for (const std::string off : {"[0]", "[4,0]", "[-1,3]", "\"0,4\"", "[0,4,4]", "[0.0,4]", "{}"}) {
    SCOPED_TRACE(off);
    expect_invalid(file_of("{" + entry("a", "U8", "[4]", off) + "}", "abcd"),
                   "tensor 'a': data_offsets must be two non-negative integers [begin, end] with begin <= end");
  }
}

TEST(SafetensorsMalformed, ByteCountDisagreesWithShape) {
  expect_invalid(file_of("{" + entry("a", "F32", "[2]", "[0,4]") + "}", "abcd"),
                 "tensor 'a': data_offsets [0,4] span 4 bytes but F32 [2] needs 8");
}

TEST(SafetensorsMalformed, RangeOutsideTheBuffer) {
  expect_invalid(file_of("{" + entry("a", "F32", "[2]", "[0,8]") + "}", "abcd"),
                 "tensor 'a': data_offsets [0,8] end past the data buffer of 4 bytes");
}

TEST(SafetensorsMalformed, OverlappingRanges) {
  expect_invalid(file_of("{" + entry("a", "U8", "[8]", "[0,8]") + "," + entry("b", "U8", "[8]", "[4,12]") + "}",
                         std::string(12, 'x')),
                 "tensors 'a' and 'b' overlap ('b' starts at 4, before byte 8)");
  // An empty tensor inside another one counts as overlapping, as in the reference.
  expect_invalid(file_of("{" + entry("a", "U8", "[8]", "[0,8]") + "," + entry("e", "U8", "[0]", "[4,4]") + "}",
                         std::string(8, 'x')),
                 "overlap");
}

TEST(SafetensorsMalformed, BytesCoveredByNoTensor) {
  expect_invalid(file_of("{" + entry("a", "U8", "[4]", "[0,4]") + "," + entry("b", "U8", "[4]", "[8,12]") + "}",
                         std::string(12, 'x')),
                 "data buffer bytes [4, 8) belong to no tensor");
  expect_invalid(file_of("{" + entry("a", "U8", "[4]", "[0,4]") + "}", std::string(6, 'x')),
                 "data buffer bytes [4, 6) belong to no tensor (truncated header or trailing garbage)");
  expect_invalid(file_of("{" + entry("a", "U8", "[4]", "[2,6]") + "}", std::string(6, 'x')),
                 "data buffer bytes [0, 2) belong to no tensor");
}

TEST(SafetensorsMalformed, DuplicateNamesAndKeys) {
  const std::string a = entry("a", "U8", "[4]", "[0,4]");
  expect_invalid(file_of("{" + a + "," + a + "}", "abcd"), "duplicate tensor name 'a'");
  expect_invalid(file_of(R"({"a":{"dtype":"U8","dtype":"U8","shape":[4],"data_offsets":[0,4]}})", "abcd"),
                 "duplicate key 'dtype'");
  expect_invalid(file_of(R"({"__metadata__":{"k":"1","k":"2"}})"), "duplicate key 'k'");
}

TEST(SafetensorsMalformed, MetadataNotAStringMap) {
  expect_invalid(file_of(R"({"__metadata__":[1]})"), "__metadata__ must be an object of strings, got [1]");
  expect_invalid(file_of(R"({"__metadata__":{"k":1}})"), "__metadata__ 'k' must be a string, got 1");
}

TEST(SafetensorsMalformed, ValidEdgeCasesAreAccepted) {
  // No tensors; trailing space padding; an empty tensor at the end of the buffer; 0-d scalar.
  EXPECT_TRUE(parse(file_of("{}")).tensors.empty());
  const std::string header =
      "{" + entry("s", "I32", "[]", "[0,4]") + "," + entry("e", "F32", "[0,3]", "[4,4]") + ",\"__metadata__\":{}}   ";
  const auto h = parse(file_of(header, "abcd"));
  EXPECT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors.at("s").shape, moe::Shape{});
  EXPECT_EQ(h.tensors.at("e").begin, 4u);
  EXPECT_EQ(h.data_start, 8 + header.size());
}

// ---- truncations and corruptions of a valid file ------------------------------------------------

TEST(Safetensors, EveryTruncationIsRejected) {
  const moe::Tensor a = moe::Tensor::from<float>({2, 2}, {1, 2, 3, 4});
  const moe::Tensor b = moe::Tensor::from<int64_t>({}, {7});
  const std::string bytes = moe::serialize_safetensors({{"a", a.view()}, {"b", b.view()}}, {{"k", "v"}});
  const fs::path dir = fresh_dir("trunc");
  const fs::path path = dir / "t.safetensors";
  for (size_t len = 0; len < bytes.size(); ++len) {
    SCOPED_TRACE(len);
    EXPECT_THROW(parse(bytes.substr(0, len)), moe::InvalidInput);
    spit(path, bytes.substr(0, len));
    EXPECT_THROW(moe::SafetensorsFile::open(path.string()), moe::InvalidInput);
  }
  spit(path, bytes);
  EXPECT_EQ(moe::SafetensorsFile::open(path.string()).size(), 2u);
  fs::remove_all(dir);
}

TEST(Safetensors, EveryByteFlipIsAcceptedOrCleanlyRejected) {
  const moe::Tensor a = moe::Tensor::from<float>({3}, {1, 2, 3});
  const std::string bytes = moe::serialize_safetensors({{"a", a.view()}}, {{"k", "v"}});
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (uint8_t mask : {0x01, 0x20, 0x80, 0xFF}) {
      std::string b = bytes;
      b[i] = static_cast<char>(b[i] ^ mask);
      try {
        parse(b);
      } catch (const moe::InvalidInput&) {
      }
    }
  }
}

// ---- files from elsewhere -------------------------------------------------------------------------

// Written by tests/oracle/safetensors_interop.py --fixture: json.dumps header (", " separators),
// no padding, a U8 [3] first so everything after it is misaligned.
TEST(Safetensors, ReadsAFileWrittenByPython) {
  const auto f = moe::SafetensorsFile::open(MOE_SOURCE_DIR "/tests/fuzz/corpus/safetensors/python_mixed.safetensors");
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"writer", "python"}}));
  EXPECT_EQ(f.names_in_file_order(), (std::vector<std::string>{"u8", "f32", "bf16", "scalar", "flag", "empty"}));
  const moe::Tensor u8 = f.load("u8");
  EXPECT_EQ(u8.shape(), moe::Shape{3});
  EXPECT_EQ(u8.as<uint8_t>()[2], 250);
  const moe::Tensor f32 = f.load("f32");
  EXPECT_EQ(f32.shape(), (moe::Shape{2, 2}));
  EXPECT_EQ(f32.as<float>()[0], 1.5f);
  EXPECT_EQ(f32.as<float>()[3], -0.25f);
  const moe::Tensor bf = f.load("bf16");
  EXPECT_EQ(moe::load_as_double(bf.view(), 0), 1.0);
  EXPECT_EQ(moe::load_as_double(bf.view(), 1), -3.5);
  const moe::Tensor s = f.load("scalar");
  EXPECT_EQ(s.shape(), moe::Shape{});
  EXPECT_EQ(s.as<int64_t>()[0], -7);
  const moe::Tensor flag = f.load("flag");
  EXPECT_EQ(flag.dtype(), DType::boolean);
  EXPECT_EQ(static_cast<const uint8_t*>(flag.data())[0], 1);
  EXPECT_EQ(static_cast<const uint8_t*>(flag.data())[1], 0);
  EXPECT_EQ(f.load("empty").shape(), (moe::Shape{0, 3}));
  EXPECT_EQ(f.entry("empty").dtype, DType::f64);
}
