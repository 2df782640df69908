// Scratch memory for kernels. Kernels never allocate: each says how many bytes it needs
// (a `*_scratch_bytes` function next to it), the caller lends them a Scratch, and a Workspace
// owned by the caller (a layer state, the model's activations, an inference session) keeps the
// memory from call to call, so steps of equal shape allocate nothing.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace moe {

// Rounds a byte count up to the 64-byte alignment every carved block keeps.
constexpr size_t align64(size_t bytes) { return (bytes + 63) / 64 * 64; }

// A borrowed, 64-byte-aligned block of bytes. take<T>(n) carves n elements from the front.
struct Scratch {
  uint8_t* data = nullptr;
  size_t bytes = 0;

  template <class T>
  T* take(size_t n) {
    const size_t need = align64(n * sizeof(T));
    assert(need <= bytes && "scratch smaller than the kernel's *_scratch_bytes");
    T* p = reinterpret_cast<T*>(data);
    data += need;
    bytes -= need;
    return p;
  }
  // The i-th of `parts` equal slices of `each` bytes (per-thread scratch inside a parallel region).
  Scratch slice(size_t i, size_t each) const {
    assert((i + 1) * each <= bytes);
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
