#include "util/resources.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "moe/error.h"

namespace moe::util {

namespace {

// "8G", "512M", "1000000" -> bytes; -1 when absent or malformed (then ignored).
int64_t parse_limit(const char* s) {
  if (!s || !*s) return -1;
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (end == s || !(v > 0)) return -1;
  double scale = 1;
  if (*end == 'K' || *end == 'k') scale = 1024.0;
  if (*end == 'M' || *end == 'm') scale = 1024.0 * 1024;
  if (*end == 'G' || *end == 'g') scale = 1024.0 * 1024 * 1024;
  return static_cast<int64_t>(v * scale);
}

int64_t meminfo_available() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return -1;
  char line[256];
  int64_t kb = -1;
  while (std::fgets(line, sizeof line, f)) {
    long long v = 0;
    if (std::sscanf(line, "MemAvailable: %lld kB", &v) == 1) {
      kb = v;
      break;
    }
  }
  std::fclose(f);
  return kb < 0 ? -1 : kb * 1024;
}

}  // namespace

int64_t available_memory() {
  int64_t avail = meminfo_available();
  if (avail < 0) avail = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<int64_t>(sysconf(_SC_PAGE_SIZE));
  const int64_t limit = parse_limit(std::getenv("MOE_MEMORY_LIMIT"));
  return limit > 0 && limit < avail ? limit : avail;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB", "PB", "EB"};
  int u = 0;
  while (b >= 1000 && u < 6) b /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return buf;
}

void check_memory(int64_t bytes, const std::string& what, const std::string& origin) {
  const int64_t avail = available_memory();
  if (bytes > avail) {
    throw InvalidInput(origin + " " + what + " needs " + human_bytes(static_cast<double>(bytes)) + " of memory; " +
                       human_bytes(static_cast<double>(avail)) + " are available");
  }
}

int64_t regular_file_size(const std::string& path, const std::string& origin, int64_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw InvalidInput(origin + " " + path + ": cannot open the file (" + std::strerror(errno) + ")");
  }
  if (S_ISDIR(st.st_mode)) throw InvalidInput(origin + " " + path + ": is a directory, not a file");
  if (!S_ISREG(st.st_mode)) throw InvalidInput(origin + " " + path + ": not a regular file (a device or a pipe?)");
  if (st.st_size > max_bytes) {
    throw InvalidInput(origin + " " + path + ": " + human_bytes(static_cast<double>(st.st_size)) +
                       " is larger than the limit of " + human_bytes(static_cast<double>(max_bytes)));
  }
  return static_cast<int64_t>(st.st_size);
}

std::string read_regular_file(const std::string& path, const std::string& origin, int64_t max_bytes) {
  const int64_t size = regular_file_size(path, origin, max_bytes);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InvalidInput(origin + " " + path + ": cannot open the file");
  std::string bytes(static_cast<size_t>(size), '\0');
  in.read(bytes.data(), size);
  if (in.gcount() != size) throw InvalidInput(origin + " " + path + ": read error (the file changed while read?)");
  return bytes;
}

}  // namespace moe::util
