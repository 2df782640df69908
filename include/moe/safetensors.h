// Safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, optional
// "__metadata__": {string: string}}, then the data buffer that the offsets index.
//
// Reading validates the whole header up front and rejects anything the reference would reject
// (and duplicate JSON keys, unknown entry fields), always with moe::InvalidInput
// "[safetensors] <path>: ...": a file may be arbitrary garbage, and must never crash us.
//
// Alignment: the reference pads the header so the data buffer starts 8-byte aligned, but a
// tensor's offset inside the buffer need not be a multiple of its element size (e.g. an F32
// after a 3-byte U8 tensor). view() is zero-copy and therefore throws for such a tensor;
// load() always returns an aligned owning copy. Kernels may rely on views being aligned.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "moe/tensor.h"

namespace moe {

// One header entry, validated: `end - begin == numel(shape) * dtype_size(dtype)`.
struct SafetensorsEntry {
  DType dtype = DType::f32;
  Shape shape;
  uint64_t begin = 0;  // byte range in the data buffer (not the file)
  uint64_t end = 0;
};

// A parsed and validated header.
struct SafetensorsHeader {
  std::map<std::string, SafetensorsEntry> tensors;
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // file offset of the data buffer: 8 + N
};

// Validates a whole file held in memory (header and buffer) and returns its header; the fuzzer
// and the mmap reader share it. `origin` names the file in error messages.
SafetensorsHeader parse_safetensors(std::span<const uint8_t> file, const std::string& origin);

// A read-only, memory-mapped safetensors file. Move-only; moving keeps views valid (the mapping
// itself does not move). Views are read-only memory: writing through them faults. The file must
// not be truncated while open (as with any mmap reader).
class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  bool contains(const std::string& name) const { return header_.tensors.count(name) != 0; }
  std::vector<std::string> names() const;  // sorted
  size_t size() const { return header_.tensors.size(); }
  // Tensor names in data-buffer order, for copies that keep the layout.
  std::vector<std::string> names_in_file_order() const;
  const SafetensorsEntry& entry(const std::string& name) const;  // throws like view()
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }

  // Zero-copy view into the mapping. Throws if `name` is missing (listing a few names) or if its
  // data is not aligned to its element size (use load()). Valid while this object lives.
  TensorView view(const std::string& name) const;
  // An aligned owning copy, whatever the alignment in the file.
  Tensor load(const std::string& name) const;

 private:
  struct Mapping;
  SafetensorsFile(std::string path, std::unique_ptr<Mapping> mapping, SafetensorsHeader header);
  const uint8_t* data_of(const SafetensorsEntry& e) const;

  std::string path_;
  std::unique_ptr<Mapping> mapping_;
  SafetensorsHeader header_;
};

using NamedTensors = std::vector<std::pair<std::string, TensorView>>;

// The bytes of a safetensors file: compact JSON header (metadata first, then tensors in the given
// order, keys dtype/shape/data_offsets as the reference writes them) padded with spaces to a
// multiple of 8 bytes, then the tensors' data back to back in the given order. Put tensors with
// the largest element size first to keep every tensor aligned. Throws InvalidInput on duplicate,
// reserved or non-UTF-8 names, non-UTF-8 metadata, or a view without data.
std::string serialize_safetensors(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata = {});

// serialize_safetensors() written with write_file_atomic(): the old file survives any failure.
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The dtype spelled `name` in safetensors ("F32", "BF16", ...), or nullopt.
std::optional<DType> safetensors_dtype(const std::string& name);

}  // namespace moe
