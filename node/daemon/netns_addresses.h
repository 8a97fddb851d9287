// What a node gossips as its addresses when meshd records several network
// namespaces (a docker host and its containers), and which of them a
// wildcard listener serves.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "node/common/net.h"
#include "node/probe/probe.h"

namespace flowmesh {

using AddressesByNetns = std::map<uint32_t, std::vector<IpAddr>>;

class NetnsAddressBook {
 public:
  NetnsAddressBook(std::vector<NetnsRef> recorded, std::string proc_root);

  // Each recorded namespace's addresses, read now; nullopt when meshd records
  // all namespaces or only its own (its own addresses are the node's then).
  // A namespace that cannot be read is missing from the map, logged once and
  // counted in skipped().
  std::optional<AddressesByNetns> Read();
  uint64_t skipped() const;

 private:
  std::vector<NetnsRef> recorded_;
  std::string proc_root_;
  mutable std::mutex mu_;
  std::set<std::string> warned_;  // guarded by mu_: reasons logged already
  uint64_t skipped_ = 0;       // guarded by mu_
};

// Every gossipable address of every namespace, sorted, each once.
std::vector<IpAddr> AllAddresses(const AddressesByNetns& by_netns);

// The addresses a listener on `listener` in namespace `netns` takes
// connections to: itself when it is an address, else (0.0.0.0, ::) the
// gossipable addresses of its own namespace only; the wildcard itself when
// that namespace's addresses are unknown.
std::vector<IpAddr> ServedAddresses(const IpAddr& listener, uint32_t netns,
                                    const AddressesByNetns& by_netns);

}  // namespace flowmesh
