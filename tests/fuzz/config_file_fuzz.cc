// meshd's config file end to end: ParseConfigText (node/daemon/config_file.cc)
// on the text, then, when it parses, ParseDaemonArgs(--config FILE) over the
// same bytes in a memfd, so each entry also goes through ConfigLayers::ApplyFile
// and the value checks of meshd's real options (durations, sizes, addresses,
// port lists).
//
//   input = the file's bytes
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>

#include "node/common/log.h"
#include "node/daemon/config.h"
#include "node/daemon/config_file.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  flowmesh::log::SetLevel(flowmesh::log::Level::Error);
  // Usage errors go to std::cerr; sanitizer reports do not use it.
  std::cerr.rdbuf(nullptr);
  std::cout.rdbuf(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowmesh;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Result<std::vector<ConfigEntry>> entries = ParseConfigText(text, "fuzz.toml");
  if (!entries.ok()) return 0;
  for (const ConfigEntry& e : *entries) (void)TomlQuote(e.key);

  static int fd = memfd_create("meshd.toml", MFD_CLOEXEC);
  if (fd < 0) __builtin_trap();
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size))
    __builtin_trap();
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  std::string args[] = {"meshd", "--config", path};
  char* argv[] = {args[0].data(), args[1].data(), args[2].data(), nullptr};
  int exit_code = 0;
  (void)ParseDaemonArgs(3, argv, &exit_code);
  return 0;
}
