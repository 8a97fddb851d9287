// Capabilities from /proc/self/status (no libcap needed for reading a mask).
#include "node/common/capabilities.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace flowmesh {

std::string CapName(Cap cap) {
  switch (cap) {
    case Cap::kDacReadSearch: return "CAP_DAC_READ_SEARCH";
    case Cap::kNetAdmin: return "CAP_NET_ADMIN";
    case Cap::kSysPtrace: return "CAP_SYS_PTRACE";
    case Cap::kSysAdmin: return "CAP_SYS_ADMIN";
    case Cap::kPerfmon: return "CAP_PERFMON";
    case Cap::kBpf: return "CAP_BPF";
  }
  return "CAP_" + std::to_string(static_cast<int>(cap));
}

uint64_t ParseEffectiveCaps(const std::string& status_text) {
  std::istringstream in(status_text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    const char* hex = line.c_str() + 7;
    char* end = nullptr;
    uint64_t caps = std::strtoull(hex, &end, 16);
    if (end != hex) return caps;
  }
  return ~uint64_t{0};
}

uint64_t EffectiveCaps() {
  std::ifstream f("/proc/self/status");
  std::stringstream text;
  text << f.rdbuf();
  return ParseEffectiveCaps(text.str());
}

std::vector<std::string> MissingCaps(uint64_t effective, const std::vector<Cap>& wanted) {
  std::vector<std::string> out;
  for (Cap c : wanted)
    if ((effective & (uint64_t{1} << static_cast<int>(c))) == 0) out.push_back(CapName(c));
  return out;
}

std::string JoinCapNames(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " and " : ", ";
    out += names[i];
  }
  return out;
}

}  // namespace flowmesh
