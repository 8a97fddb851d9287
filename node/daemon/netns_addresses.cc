// The addresses of the recorded network namespaces, for the gossiped table.
#include "node/daemon/netns_addresses.h"

#include <algorithm>

#include "node/common/log.h"
#include "node/daemon/mesh_service.h"
#include "node/probe/netns.h"

namespace flowmesh {

NetnsAddressBook::NetnsAddressBook(std::vector<NetnsRef> recorded, std::string proc_root)
    : recorded_(std::move(recorded)), proc_root_(std::move(proc_root)) {}

std::optional<AddressesByNetns> NetnsAddressBook::Read() {
  Result<uint32_t> self = SelfNetnsInode();
  if (recorded_.empty() || !self.ok() ||
      (recorded_.size() == 1 && recorded_.front().inode == *self))
    return std::nullopt;
  std::vector<Status> skipped;
  Result<AddressesByNetns> by_netns = NamespaceAddresses(recorded_, proc_root_, &skipped);
  std::lock_guard lock(mu_);
  if (!by_netns.ok()) skipped = {by_netns.status()};
  skipped_ += skipped.size();
  for (const Status& s : skipped)
    if (warned_.insert(s.message()).second)
      FM_LOG(Warn, "mesh") << "gossiping without a namespace's addresses (its wildcard listeners "
                              "stay wildcards): "
                           << s.message();
  if (!by_netns.ok()) return std::nullopt;
  return std::move(by_netns).value();
}

uint64_t NetnsAddressBook::skipped() const {
  std::lock_guard lock(mu_);
  return skipped_;
}

std::vector<IpAddr> AllAddresses(const AddressesByNetns& by_netns) {
  std::vector<IpAddr> out;
  for (const auto& [inode, addrs] : by_netns)
    for (const IpAddr& a : addrs)
      if (Gossipable(a)) out.push_back(a);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<IpAddr> ServedAddresses(const IpAddr& listener, uint32_t netns,
                                    const AddressesByNetns& by_netns) {
  if (!listener.is_unspecified()) return {listener};
  auto it = by_netns.find(netns);
  if (it == by_netns.end()) return {listener};
  std::vector<IpAddr> out;
  for (const IpAddr& a : it->second)
    if (Gossipable(a) && ListenerServes(listener, a)) out.push_back(a);
  return out;
}

}  // namespace flowmesh
