// Files are written atomically: a temp file in the same folder, flushed and fsynced, then renamed
// over the target. A crash or a full disk never leaves a half-written file under the real name.
#pragma once

#include <string>
#include <string_view>

namespace moe {

// Writes `data` to `path` atomically. Throws std::runtime_error("[atomic_file] <path>: ...")
// on any failure, after removing the temp file.
void write_file_atomic(const std::string& path, std::string_view data);

}  // namespace moe
