#include "moe/workspace.h"

#include <cstdlib>

#include "moe/tensor.h"

namespace moe {

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
