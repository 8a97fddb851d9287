// The streaming probe: loads bpf/tcptrace.bpf.c through its libbpf skeleton,
// attaches it to inet_sock_set_state (tp_btf, or raw_tp where BTF trampolines
// are missing) and consumes its ring buffer.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "node/probe/probe.h"
#include "node/probe/ring_backlog.h"
#include "node/probe/ring_reader.h"
#include "node/probe/socket_iter.h"

struct tcptrace_bpf;
struct bpf_program;

namespace flowmesh {

enum class BpfAttach { kAuto, kBtf, kRaw };

struct BpfProbeOptions {
  ProbeFilter filter;
  BpfAttach attach = BpfAttach::kAuto;
  // The kernel wakes the consumer when this much is queued; below that the
  // consumer's own poll timer collects it. Batching wake-ups is what keeps
  // the cost per connection low under churn.
  uint32_t wakeup_bytes = 256 * 1024;
  // Longest an event waits in the ring buffer when traffic is light.
  int max_latency_ms = 50;
  // Size of the ring buffer: a power of two, at least a page. What it holds
  // is how long meshd may stall (or fall behind under churn) before events
  // are lost; each event takes 152 bytes (fm_event and the record header).
  uint32_t ring_bytes = 4 << 20;
  // Capacity of the kernel's tables: sockets from connect()/accept to close
  // (both ends of a loopback connection count), and listening sockets. Past
  // them a connection is still recorded, without its process (counted in
  // lost_sockmap / lost_listenmap). Neither is preallocated.
  uint32_t max_connections = 131072;
  uint32_t max_listeners = 16384;
};

class BpfProbe final : public Probe {
 public:
  explicit BpfProbe(BpfProbeOptions options);
  ~BpfProbe() override;
  BpfProbe(const BpfProbe&) = delete;
  BpfProbe& operator=(const BpfProbe&) = delete;

  std::string_view Mode() const override { return "streaming"; }
  Status Init() override;
  Result<int> TransferData(EventSink& sink, int timeout_ms) override;
  uint64_t Wake() override;
  uint64_t WakesServed() const override { return wakes_served_; }
  void Stop() override;
  ProbeStats Stats() const override;

  // Which program is attached: "tp_btf" or "raw_tp".
  std::string_view AttachKind() const { return attach_kind_; }
  // The attached program's kernel id (bpftool prog show id N); 0 before Init.
  uint32_t ProgramId() const;
  // Tells the kernel side who owns a listener that existed before the probe
  // started, so connections it accepts are attributed (from the start-up
  // sock_diag snapshot).
  Status SeedListener(const ConnKey& key, const ProcessRef& owner);

  // Until the first TransferData, a thread copies the ring's records into
  // memory as they come, so a ring nobody reads yet does not fill: meshd's
  // start-up snapshot takes a third of a second on a host with 50k open
  // connections, and churn fills a 4 MB ring in less than that. TransferData then
  // hands over what was held first, in order, a slice at a time, moving the
  // ring's newer records behind it until it has caught up. At most
  // max_bytes are held: past that the ring is left to fill, and what it
  // drops is counted lost as ever. Call after Init; again (HoldFor::kDump)
  // before anything else keeps the probe's thread from TransferData for long,
  // such as a sock_diag dump of 100k sockets (a third of a second, the time
  // churn takes to fill a 4 MB ring).
  enum class HoldFor { kStart, kDump };
  Status HoldEvents(size_t max_bytes, HoldFor why = HoldFor::kStart);

  // The socket-owner iterator, loaded and attached with the tracing
  // programs; null on a kernel where it does not load (Init says why, and
  // owners then come from /proc). Lives as long as the probe.
  const SocketIter* socket_iter() const { return socket_iter_.get(); }

 private:
  Status Load(bool btf, bool with_iter);
  // Load, and again without the socket-owner iterator if that is what failed.
  Status LoadWithIterIfAny(bool btf);
  void Destroy();
  Status InitWake();
  static int OnSample(void* ctx, void* data, size_t size);
  std::vector<BpfMapUsage> MapUsage() const;
  void DeliverBatch();
  // Times the kernel skipped the attached program because it was already
  // running on that CPU (an inet_sock_set_state in a softirq that interrupted
  // it): each skip is a transition, and so possibly an event, never seen.
  uint64_t RecursionMisses() const;
  // Says in the log, at most once a minute, that the ring buffer was full.
  void TellRingLosses();
  void Decode(const void* data, size_t size);
  // HoldEvents' thread, and joining it.
  void HoldLoop();
  void StopHolding();
  // The ring's records to the backlog, unless it holds backlog_max_ already.
  void HoldRing();
  static int OnHoldSample(void* ctx, void* data, size_t size);
  // What TransferData does while behind: held records first.
  int64_t DeliverHeld();

  BpfProbeOptions options_;
  tcptrace_bpf* skel_ = nullptr;
  bpf_program* prog_ = nullptr;  // the attached one of the skeleton's two
  std::unique_ptr<RingReader> ring_;
  std::unique_ptr<SocketIter> socket_iter_;
  // TransferData waits on its own epoll set: the ring buffer's map fd and
  // wake_fd_, an eventfd Wake() writes.
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<uint64_t> wakes_{0};  // tickets handed out
  uint64_t wakes_served_ = 0;       // probe thread only
  std::string attach_kind_;
  EventSink* sink_ = nullptr;  // valid during TransferData only
  // Events decoded during one TransferData, handed to the sink together (at
  // most kMaxBatch at a time) so it locks once per batch, not per event.
  // Storage is reused: a decoded event allocates nothing.
  static constexpr size_t kMaxBatch = 1024;
  std::vector<ConnEvent> batch_;
  size_t batch_size_ = 0;
  int64_t clock_offset_ns_ = 0;  // MonotonicToRealtimeOffsetNs() for the consume under way
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> malformed_{0};
  uint64_t ring_lost_told_ = 0;  // probe thread only
  int64_t ring_lost_told_ns_ = 0;
  // Records held out of the ring: by holder_ until the first TransferData
  // joins it, then by the probe thread; never both at once.
  RingBacklog backlog_;
  size_t backlog_max_ = 0;
  std::thread holder_;
  std::atomic<bool> stop_holding_{false};
  HoldFor holding_for_ = HoldFor::kStart;  // set before holder_ starts
  std::atomic<uint64_t> held_{0};           // records held while meshd started
  std::atomic<uint64_t> held_in_dumps_{0};  // records held while dumps ran
  std::atomic<uint64_t> backlog_peak_bytes_{0};
};

// Formats a libbpf error (negative errno) with what to do about it.
Status BpfError(int err, const std::string& what);

}  // namespace flowmesh
