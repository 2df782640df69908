// Scratch memory for kernels. Kernels never allocate: each says how many bytes it needs
// (a `*_scratch_bytes` function next to it), the caller lends them a Scratch, and a Workspace
// owned by the caller (a layer state, the model's activations, an inference session) keeps the
// memory from call to call, so steps of equal shape allocate nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace moe {

// Rounds a byte count up to the 64-byte alignment every carved block keeps.
constexpr size_t align64(size_t bytes) { return (bytes + 63) / 64 * 64; }

// A kernel asked for more scratch than its caller lent: a bug in a *_scratch_bytes function.
// Checked in every build (one compare per carve), because the alternative is silent corruption.
[[noreturn]] void scratch_overflow(size_t need, size_t have);

// A borrowed, 64-byte-aligned block of bytes. take<T>(n) carves n elements from the front.
struct Scratch {
  uint8_t* data = nullptr;
  size_t bytes = 0;

  template <class T>
  T* take(size_t n) {
    const size_t need = align64(n * sizeof(T));
    if (need > bytes) scratch_overflow(need, bytes);
    T* p = reinterpret_cast<T*>(data);
    data += need;
    bytes -= need;
    return p;
  }
  // The i-th slice of `each` bytes (per-thread scratch inside a parallel region).
  Scratch slice(size_t i, size_t each) const {
    if ((i + 1) * each > bytes) scratch_overflow((i + 1) * each, bytes);
    return {data + i * each, each};
  }
};

// Owner of scratch memory: grows to the largest size asked for, never shrinks.
class Workspace {
 public:
  // At least `bytes` bytes, valid until the next get() with a larger size.
  Scratch get(size_t bytes);
  size_t capacity() const { return capacity_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t capacity_ = 0;
};

}  // namespace moe
