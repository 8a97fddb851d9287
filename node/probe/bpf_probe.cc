// BpfProbe: skeleton lifecycle, ring buffer consumption and kernel counters.
#include "node/probe/bpf_probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "node/common/capabilities.h"
#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/common/sched.h"
#include "tcptrace.skel.h"

namespace flowmesh {
namespace {

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  log::Level ours = level == LIBBPF_WARN   ? log::Level::Warn
                    : level == LIBBPF_INFO ? log::Level::Info
                                           : log::Level::Debug;
  // libbpf is chatty at INFO about things that are fine (e.g. memlock);
  // its INFO goes to our DEBUG.
  if (ours == log::Level::Info) ours = log::Level::Debug;
  if (!log::Enabled(ours)) return 0;
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf, fmt, args);
  log::Write(ours, "libbpf", buf);
  return n;
}

}  // namespace

Status BpfError(int err, const std::string& what) {
  err = err < 0 ? -err : err;
  Status s = Status::FromErrno(err, what);
  if (err != EPERM && err != EACCES) return s;
  // Name what is missing: CAP_SYS_ADMIN alone also allows BPF, on every kernel.
  uint64_t caps = EffectiveCaps();
  std::vector<std::string> missing = MissingCaps(caps, {Cap::kBpf, Cap::kPerfmon});
  std::string which;
  if (!missing.empty() && !MissingCaps(caps, {Cap::kSysAdmin}).empty())
    which = "; missing " + JoinCapNames(missing);
  return PermissionDenied(s.message() + which +
                          "; run as root or grant CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN on "
                          "kernels older than 5.8), or use --probe-mode polling");
}

BpfProbe::BpfProbe(BpfProbeOptions options) : options_(std::move(options)) {}

BpfProbe::~BpfProbe() { Destroy(); }

void BpfProbe::Destroy() {
  StopHolding();
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  epoll_fd_ = wake_fd_ = -1;
  ring_.reset();
  socket_iter_.reset();
  if (skel_) tcptrace_bpf::destroy(skel_);
  skel_ = nullptr;
  prog_ = nullptr;
}

// Whether the running kernel is at least major.minor (uname's release).
static bool KernelAtLeast(int major, int minor) {
  utsname u{};
  int have_major = 0, have_minor = 0;
  if (uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &have_major, &have_minor) != 2)
    return true;  // unknown: assume a current kernel
  return have_major > major || (have_major == major && have_minor >= minor);
}

Status BpfProbe::Load(bool btf, bool with_iter) {
  skel_ = tcptrace_bpf::open();
  if (!skel_) return BpfError(errno, "cannot open BPF object tcptrace");

  const ProbeFilter& f = options_.filter;
  if (f.ports.size() > FM_MAX_PORT_FILTER)
    return InvalidArgument("at most " + std::to_string(FM_MAX_PORT_FILTER) +
                           " ports can be filtered in the kernel");
  if (f.netns.size() > FM_MAX_NETNS_FILTER)
    return InvalidArgument("at most " + std::to_string(FM_MAX_NETNS_FILTER) +
                           " network namespaces can be filtered in the kernel");
  skel_->rodata->filter_nnetns = static_cast<uint32_t>(f.netns.size());
  for (size_t i = 0; i < f.netns.size(); i++) skel_->rodata->filter_netns[i] = f.netns[i].inode;
  skel_->rodata->filter_family = f.family;
  skel_->rodata->filter_nports = static_cast<uint16_t>(f.ports.size());
  for (size_t i = 0; i < f.ports.size(); i++) skel_->rodata->filter_ports[i] = f.ports[i];
  const uint32_t ring = options_.ring_bytes;
  if (ring < 4096 || (ring & (ring - 1)) != 0)
    return InvalidArgument("ring buffer size " + std::to_string(ring) +
                           " is not a power of two of at least 4096 bytes");
  if (int err = bpf_map__set_max_entries(skel_->maps.events, ring); err)
    return BpfError(err, "cannot size the ring buffer to " + std::to_string(ring) + " bytes");
  if (options_.max_connections == 0 || options_.max_listeners == 0)
    return InvalidArgument("the socket and listener tables need room for at least one entry");
  if (int err = bpf_map__set_max_entries(skel_->maps.socks, options_.max_connections); err)
    return BpfError(err, "cannot size the socket table to " +
                             std::to_string(options_.max_connections) + " entries");
  if (int err = bpf_map__set_max_entries(skel_->maps.listeners, options_.max_listeners); err)
    return BpfError(err, "cannot size the listener table to " +
                             std::to_string(options_.max_listeners) + " entries");
  // Before 6.1 the verifier wants raw_tp (a tracing program) to use
  // preallocated hash maps: it refuses the others on PREEMPT_RT kernels and
  // warns (taints) on the rest. tp_btf never minded.
  if (!btf && !KernelAtLeast(6, 1)) {
    for (bpf_map* m : {skel_->maps.socks, skel_->maps.listeners})
      if (int err = bpf_map__set_map_flags(m, bpf_map__map_flags(m) & ~BPF_F_NO_PREALLOC); err)
        return BpfError(err, "cannot preallocate the socket and listener tables for raw_tp");
    FM_LOG(Info, "probe") << "raw_tp on a kernel before 6.1: the socket and listener tables are "
                             "preallocated (--max-connections and --max-listeners entries)";
  }
  // A wake-up threshold the ring cannot reach would leave only the poll
  // timer: wake at a quarter full at the latest.
  skel_->rodata->wakeup_bytes = std::min(options_.wakeup_bytes, ring / 4);

  bpf_program__set_autoload(skel_->progs.set_state_btf, btf);
  bpf_program__set_autoload(skel_->progs.set_state_raw, !btf);
  bpf_program__set_autoload(skel_->progs.socket_owners, with_iter);

  if (int err = tcptrace_bpf::load(skel_); err)
    return BpfError(err, std::string("cannot load BPF programs (") + (btf ? "tp_btf" : "raw_tp") +
                             " inet_sock_set_state)");
  if (int err = tcptrace_bpf::attach(skel_); err)
    return BpfError(err, std::string("cannot attach BPF program to ") +
                             (btf ? "tp_btf" : "raw_tp") + "/inet_sock_set_state");
  attach_kind_ = btf ? "tp_btf" : "raw_tp";
  prog_ = btf ? skel_->progs.set_state_btf : skel_->progs.set_state_raw;
  if (with_iter && skel_->links.socket_owners)
    socket_iter_ = std::make_unique<SocketIter>(bpf_link__fd(skel_->links.socket_owners));
  return Status::Ok();
}

Status BpfProbe::LoadWithIterIfAny(bool btf) {
  Status s = Load(btf, /*with_iter=*/true);
  if (s.ok() || s.code() == Status::Code::kPermissionDenied) return s;
  Destroy();
  Status without = Load(btf, /*with_iter=*/false);
  if (!without.ok()) return s;
  FM_LOG(Info, "probe") << "the socket-owner iterator (iter/task_file) did not load (" << s.message()
                        << "); socket owners are read from /proc/<pid>/fd";
  return without;
}

Status BpfProbe::Init() {
  libbpf_set_print(LibbpfPrint);
  Status s;
  if (options_.attach != BpfAttach::kRaw) {
    s = LoadWithIterIfAny(/*btf=*/true);
    if (!s.ok() && options_.attach == BpfAttach::kAuto &&
        s.code() != Status::Code::kPermissionDenied) {
      FM_LOG(Info, "probe") << "tp_btf unavailable (" << s.message() << "); using raw_tp";
      Destroy();
      s = LoadWithIterIfAny(/*btf=*/false);
    }
  } else {
    s = LoadWithIterIfAny(/*btf=*/false);
  }
  if (!s.ok()) {
    Destroy();
    return s;
  }
  Result<std::unique_ptr<RingReader>> ring =
      RingReader::Open(bpf_map__fd(skel_->maps.events), bpf_map__max_entries(skel_->maps.events));
  if (!ring.ok()) {
    Status err = ring.status().WithContext("cannot read the ring buffer");
    Destroy();
    return err;
  }
  ring_ = std::move(*ring);
  if (Status w = InitWake(); !w.ok()) {
    Destroy();
    return w;
  }
  FM_LOG(Info, "probe") << "streaming probe attached (" << attach_kind_ << "/inet_sock_set_state)";
  return Status::Ok();
}

Status BpfProbe::InitWake() {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return Status::FromErrno(errno, "cannot create the probe's wake-up eventfd");
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return Status::FromErrno(errno, "cannot create the probe's epoll set");
  for (int fd : {ring_->fd(), wake_fd_}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0)
      return Status::FromErrno(errno, "cannot add to the probe's epoll set");
  }
  return Status::Ok();
}

uint64_t BpfProbe::Wake() {
  // The ticket first, then the signal: a collection that counts this ticket
  // (TransferData reads the counter after clearing the eventfd) begins
  // after it, and one that cleared the eventfd earlier leaves the signal
  // for the next TransferData.
  const uint64_t ticket = wakes_.fetch_add(1, std::memory_order_acq_rel) + 1;
  const uint64_t one = 1;
  if (wake_fd_ >= 0 && write(wake_fd_, &one, sizeof one) < 0 && errno != EAGAIN)
    FM_LOG(Debug, "probe") << "cannot signal the probe's eventfd: " << std::strerror(errno);
  return ticket;
}

int BpfProbe::OnSample(void* ctx, void* data, size_t size) {
  static_cast<BpfProbe*>(ctx)->Decode(data, size);
  return 0;
}

void BpfProbe::Decode(const void* data, size_t size) {
  Status s = DecodeEventInto(data, size, &batch_[batch_size_], clock_offset_ns_);
  if (!s.ok()) {
    // Counted and dropped; one bad record must not stop the stream.
    if (malformed_.fetch_add(1, std::memory_order_relaxed) == 0)
      FM_LOG(Warn, "probe") << "dropping malformed ring buffer record: " << s.message();
    return;
  }
  if (++batch_size_ == kMaxBatch) DeliverBatch();
}

Status BpfProbe::HoldEvents(size_t max_bytes, HoldFor why) {
  if (!ring_) return Unavailable("streaming probe is not initialised");
  if (holder_.joinable()) return Internal("the probe already holds its events");
  backlog_max_ = max_bytes;
  holding_for_ = why;
  stop_holding_.store(false, std::memory_order_relaxed);
  try {
    holder_ = std::thread([this] { HoldLoop(); });
  } catch (const std::system_error& e) {
    return Status::FromErrno(e.code().value(), "cannot start the ring buffer's holding thread");
  }
  return Status::Ok();
}

void BpfProbe::HoldLoop() {
  SetThreadName("ring-hold");
  // Started by the probe thread (SCHED_BATCH) before its dumps: a batch
  // thread's wake-up waits for the running one's slice, and the ring fills.
  SetThreadNormalPolicy("ring-hold");
  pollfd p{ring_->fd(), POLLIN, 0};
  while (!stop_holding_.load(std::memory_order_acquire)) {
    if (backlog_.bytes() >= backlog_max_) {
      // Full: the ring is left to fill, and stays readable; a poll would
      // return at once, again and again.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    // The kernel wakes the ring's poller every wakeup_bytes of records; the
    // timeout picks up the rest.
    if (poll(&p, 1, 10) < 0 && errno != EINTR) break;
    HoldRing();
  }
}

void BpfProbe::StopHolding() {
  if (!holder_.joinable()) return;
  stop_holding_.store(true, std::memory_order_release);
  holder_.join();
}

void BpfProbe::HoldRing() {
  if (backlog_.bytes() >= backlog_max_) return;  // the ring fills from here
  const int64_t n = ring_->Consume(&BpfProbe::OnHoldSample, this);
  if (n > 0)
    (holding_for_ == HoldFor::kStart ? held_ : held_in_dumps_)
        .fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  if (backlog_.bytes() > backlog_peak_bytes_.load(std::memory_order_relaxed))
    backlog_peak_bytes_.store(backlog_.bytes(), std::memory_order_relaxed);
}

int BpfProbe::OnHoldSample(void* ctx, void* data, size_t size) {
  static_cast<BpfProbe*>(ctx)->backlog_.Append(data, size);
  return 0;
}

int64_t BpfProbe::DeliverHeld() {
  // Newer records go behind the held ones, then the oldest go on: about
  // 20 ms of work a call, so a stop or a wake-up waits no longer.
  constexpr size_t kSlice = 8192;
  HoldRing();
  const size_t n =
      backlog_.Drain(kSlice, [this](const void* data, size_t size) { Decode(data, size); });
  if (backlog_.empty() && holding_for_ == HoldFor::kStart)
    FM_LOG(Info, "probe") << "caught up with the " << held_.load(std::memory_order_relaxed)
                          << " events held while meshd started (at most "
                          << (backlog_peak_bytes_.load(std::memory_order_relaxed) >> 10)
                          << " KiB at once)";
  return static_cast<int64_t>(n);
}

void BpfProbe::DeliverBatch() {
  if (batch_size_ == 0) return;
  delivered_.fetch_add(batch_size_, std::memory_order_relaxed);
  sink_->OnEvents(std::span<ConnEvent>(batch_.data(), batch_size_));
  batch_size_ = 0;
}

Result<int> BpfProbe::TransferData(EventSink& sink, int timeout_ms) {
  if (!ring_) return Unavailable("streaming probe is not initialised");
  if (holder_.joinable()) {
    StopHolding();  // the backlog is this thread's from here
    if (!backlog_.empty() && holding_for_ == HoldFor::kStart)
      FM_LOG(Info, "probe") << "held " << backlog_.records() << " events ("
                            << (backlog_.bytes() >> 10) << " KiB) while meshd started; "
                            << "delivering them first";
  }
  sink_ = &sink;
  if (batch_.size() < kMaxBatch) batch_.resize(kMaxBatch);
  const bool behind = !backlog_.empty();
  // Returns when the kernel wakes the ring buffer's consumer (wakeup_bytes
  // queued), on Wake(), or at the timeout; which one does not matter, as
  // events submitted without a wake-up are only found by consuming anyway.
  // Behind, there is work now.
  epoll_event ready[2];
  if (epoll_wait(epoll_fd_, ready, 2, behind ? 0 : std::min(timeout_ms, options_.max_latency_ms)) <
          0 &&
      errno != EINTR) {
    sink_ = nullptr;
    return BpfError(errno, "ring buffer poll failed");
  }
  uint64_t signalled;
  if (read(wake_fd_, &signalled, sizeof signalled) < 0 && errno != EAGAIN)
    FM_LOG(Debug, "probe") << "cannot clear the probe's eventfd: " << std::strerror(errno);
  // Every ticket handed out by now is served by the consume below.
  const uint64_t serving = wakes_.load(std::memory_order_acquire);
  clock_offset_ns_ = MonotonicToRealtimeOffsetNs();  // one clock read per consume, not per event
  const int64_t n = behind ? DeliverHeld() : ring_->Consume(&BpfProbe::OnSample, this);
  DeliverBatch();
  sink_ = nullptr;
  TellRingLosses();
  if (n < 0) return BpfError(static_cast<int>(n), "ring buffer consume failed");
  // A ticket is served once what was submitted before it is delivered: not
  // while held records remain.
  if (backlog_.empty()) wakes_served_ = serving;
  return static_cast<int>(n);
}

void BpfProbe::TellRingLosses() {
  const uint64_t lost = skel_->bss->counters.lost_ringbuf;
  if (lost == ring_lost_told_) return;
  const int64_t now = MonotonicNs();
  if (ring_lost_told_ns_ != 0 && now - ring_lost_told_ns_ < 60'000'000'000) return;
  FM_LOG(Warn, "probe") << lost - ring_lost_told_ << " events lost (" << lost
                        << " since start): the ring buffer (" << (options_.ring_bytes >> 10)
                        << " KiB) was full, meshd fell behind the kernel; raise "
                        << "--ring-buffer-size (the most it held: "
                        << (skel_->bss->counters.ring_high_water >> 10) << " KiB)";
  ring_lost_told_ = lost;
  ring_lost_told_ns_ = now;
}

void BpfProbe::Stop() {
  if (skel_) tcptrace_bpf::detach(skel_);
}

ProbeStats BpfProbe::Stats() const {
  ProbeStats s;
  s.events = delivered_.load(std::memory_order_relaxed);
  s.malformed = malformed_.load(std::memory_order_relaxed);
  if (!skel_) return s;
  // The kernel's counters live in the mmapped .bss; plain reads are fine for
  // monotonically growing statistics.
  const volatile fm_counters& c = skel_->bss->counters;
  const uint64_t recursion = RecursionMisses();
  s.lost = c.lost_ringbuf + recursion;
  s.lost_causes = {{"ring_buffer_full", c.lost_ringbuf}, {"recursion", recursion}};
  // lost_sockmap and lost_listenmap lose a process attribution, not an
  // event: they are not in `lost`.
  s.detail = {{"kernel_events", c.events},
              {"lost_ringbuf", c.lost_ringbuf},
              {"lost_recursion", recursion},
              {"lost_sockmap", c.lost_sockmap},
              {"lost_listenmap", c.lost_listenmap},
              {"passive_no_owner", c.passive_no_owner},
              {"ring_high_water_bytes", c.ring_high_water},
              {"held_at_start", held_.load(std::memory_order_relaxed)},
              {"held_in_dumps", held_in_dumps_.load(std::memory_order_relaxed)},
              {"held_peak_bytes", backlog_peak_bytes_.load(std::memory_order_relaxed)}};
  s.bpf_maps = MapUsage();
  return s;
}

std::vector<BpfMapUsage> BpfProbe::MapUsage() const {
  std::vector<BpfMapUsage> out;
  const bpf_map* map;
  bpf_object__for_each_map(map, skel_->obj) {
    const int fd = bpf_map__fd(map);
    if (fd < 0) continue;
    BpfMapUsage u;
    u.name = bpf_map__name(map);
    // Internal maps are named after the object ("tcptrace.bss", cut to 15 bytes).
    if (size_t dot = u.name.rfind('.'); dot != std::string::npos) u.name.erase(0, dot + 1);
    u.max_entries = bpf_map__max_entries(map);
    // The kernel's figure, as bpftool shows it: for a map that is not
    // preallocated, what its entries take now (linux/kernel/bpf/syscall.c).
    std::FILE* f = std::fopen(("/proc/self/fdinfo/" + std::to_string(fd)).c_str(), "r");
    if (!f) continue;
    char line[128];
    unsigned long long bytes = 0;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "memlock: %llu", &bytes) == 1) break;
    std::fclose(f);
    u.memlock_bytes = bytes;
    out.push_back(std::move(u));
  }
  return out;
}

uint64_t BpfProbe::RecursionMisses() const {
  // Kept by the kernel in the program's run statistics (always, unlike run
  // time, which needs kernel.bpf_stats_enabled), not by the program itself:
  // a skipped program cannot count its own skip.
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  if (!prog_ || bpf_obj_get_info_by_fd(bpf_program__fd(prog_), &info, &len) != 0) return 0;
  return info.recursion_misses;
}

uint32_t BpfProbe::ProgramId() const {
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  if (!prog_ || bpf_obj_get_info_by_fd(bpf_program__fd(prog_), &info, &len) != 0) return 0;
  return info.id;
}

Status BpfProbe::SeedListener(const ConnKey& key, const ProcessRef& owner) {
  if (!skel_) return Unavailable("streaming probe is not initialised");
  fm_listen_key k{};
  k.netns = key.netns;
  k.family = key.laddr.family;
  k.port = key.lport;
  std::memcpy(k.addr, key.laddr.bytes.data(), key.laddr.is_v4() ? 4 : 16);
  fm_listen_owner v{};
  v.pid = owner.pid;
  v.pgid = owner.pgid;
  v.cgroup_id = owner.cgroup_id;  // accepted connections take it, as they take the pid
  // start_ticks back to ns so the kernel side hands out the same identity.
  v.proc_start_ns =
      owner.start_ticks * (1'000'000'000ULL / static_cast<uint64_t>(sysconf(_SC_CLK_TCK)));
  std::memcpy(v.comm, owner.comm, sizeof v.comm);
  if (bpf_map__update_elem(skel_->maps.listeners, &k, sizeof k, &v, sizeof v, BPF_ANY) != 0) {
    if (errno == E2BIG) {
      // Counted where the kernel side counts its own: the `map full` row.
      __atomic_fetch_add(&skel_->bss->counters.lost_listenmap, 1, __ATOMIC_RELAXED);
      return Status(Status::Code::kResourceExhausted,
                    "the listener table is full (--max-listeners " +
                        std::to_string(options_.max_listeners) + ")");
    }
    return BpfError(errno, "cannot seed listener " + Endpoint{key.laddr, key.lport}.ToString());
  }
  return Status::Ok();
}

}  // namespace flowmesh
