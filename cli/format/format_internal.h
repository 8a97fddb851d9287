// Pieces shared by format.cc (live views) and format_history.cc (store
// views). Internal to cli/format.
#pragma once

#include <cstdint>
#include <string>

#include "cli/format/json.h"
#include "node/probe/event.h"
#include "node/probe/probe_stats.h"

namespace flowmesh::format_internal {

std::string Printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Pid(const ProcessRef& p);  // "-" when unknown
std::string RemoteAddr(const ConnKey& k);
std::string HumanBytes(uint64_t bytes);  // "512 B", "3.4 KB", "12.0 MB"
void AddProcess(JsonObject& o, const ProcessRef& p);
void AddKey(JsonObject& o, const ConnKey& k);
void AddCounters(JsonObject& o, const TcpCounters& c);
// meshctl status's BPF map rows (memory, full tables with the flag to raise),
// "" in polling mode; and its bpf_maps JSON value, null in polling mode.
std::string BpfMapsText(const ProbeStats& p);
std::string BpfMapsJson(const ProbeStats& p);

}  // namespace flowmesh::format_internal
