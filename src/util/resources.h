// Limits on what one request may take: memory (estimated before allocating, checked against what
// the machine has available) and input files (regular files only, with a size limit), so a tiny
// input can never make the program run out of memory or read forever.
#pragma once

#include <cstdint>
#include <string>

namespace moe::util {

// Bytes of memory the system can give this process now (MemAvailable of /proc/meminfo; the
// physical memory where that is unknown). MOE_MEMORY_LIMIT (bytes, or with a K/M/G suffix)
// lowers it, for tests and for sharing a machine.
int64_t available_memory();

// Throws InvalidInput "<origin> <what> needs 2.40 TB of memory; 21.3 GB are available" when
// `bytes` (an estimate made before allocating) exceeds the available memory.
void check_memory(int64_t bytes, const std::string& what, const std::string& origin);

// A size in human units: "512 B", "3.40 MB", "2.40 TB".
std::string human_bytes(double bytes);

// The whole of a regular file (not a device, FIFO or directory) of at most max_bytes. Throws
// InvalidInput naming the origin, the path and the problem.
std::string read_regular_file(const std::string& path, const std::string& origin, int64_t max_bytes);
// The same checks without reading (for readers that map the file): returns its size.
int64_t regular_file_size(const std::string& path, const std::string& origin, int64_t max_bytes);

constexpr int64_t kConfigFileLimit = int64_t(64) << 20;  // JSON configs, metadata

}  // namespace moe::util
