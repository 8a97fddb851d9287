// Reads tests/unit/testdata/conntrack_messages.txt (messages captured from a
// real kernel by tests/tools/conntrack_capture.sh): name -> message bytes.
// Shared by the unit tests and the fuzz seeds (tests/fuzz/make_seeds.cc).
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace flowmesh::testing {

// Empty when the file cannot be read.
inline std::map<std::string, std::vector<uint8_t>> ReadConntrackMessages(const std::string& path) {
  std::map<std::string, std::vector<uint8_t>> out;
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    std::string name, hex;
    in >> name >> hex;
    std::vector<uint8_t> bytes;
    for (size_t i = 0; i + 1 < hex.size(); i += 2)
      bytes.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    out[name] = bytes;
  }
  return out;
}

}  // namespace flowmesh::testing
