// Files are written atomically: a temp file in the same folder, flushed and fsynced, then renamed
// over the target. A crash or a full disk never leaves a half-written file under the real name.
#pragma once

#include <string>
#include <string_view>

namespace moe {

// Writes `data` to `path` atomically, creating missing parent folders. Throws InvalidInput when
// the path cannot hold a file (a folder that cannot be made, no permission) and
// std::runtime_error("[atomic_file] <path>: ...") when writing fails (a full disk), after
// removing the temp file.
void write_file_atomic(const std::string& path, std::string_view data);

}  // namespace moe
