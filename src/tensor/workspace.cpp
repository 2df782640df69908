#include "moe/workspace.h"

#include <cstdio>
#include <cstdlib>

#include "moe/tensor.h"

namespace moe {

void scratch_overflow(size_t need, size_t have) {
  std::fprintf(stderr, "[scratch] a kernel needs %zu bytes of scratch, its caller lent %zu\n", need, have);
  std::abort();
}

void Workspace::Free::operator()(uint8_t* p) const { std::free(p); }

Scratch Workspace::get(size_t bytes) {
  bytes = align64(bytes);
  if (bytes > capacity_) {
    data_.reset();  // release first: the old block is never needed again
    data_.reset(static_cast<uint8_t*>(allocate_uninit(bytes)));
    capacity_ = bytes;
  }
  return {data_.get(), capacity_};
}

}  // namespace moe
