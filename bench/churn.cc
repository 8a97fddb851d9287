// Loopback TCP connection-churn generator for the tracer benchmark: an
// in-process server and N client threads, bounded in time, one JSON line out.
//
// Each connection: the client connects to 127.0.0.<i>:port, sends K bytes, the
// server reads them, sends K bytes back and closes first; the client reads K
// bytes and EOF, then closes. The server closing first puts TIME_WAIT on the
// server's side of the 4-tuple, so the client's ephemeral port is free again at
// once and a long run at full rate does not run out of ports (EADDRNOTAVAIL);
// a new SYN that lands on a server TIME_WAIT entry is accepted by the kernel
// (RFC 6191, timestamps are on for loopback).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  double duration_s = 10;
  int threads = 1;
  int server_threads = 1;
  int concurrency = 16;
  int port = 18473;
  // Where clients connect; 0 = `port`. Another port measures a NAT on the
  // path (bench/nat_churn.sh: a DNAT rule from this port to `port`).
  int connect_port = 0;
  size_t bytes = 1;
  double rate = 0;
  int addrs = 1;
  double timeout_s = 5;
};

// Set by SIGINT/SIGTERM: clients stop starting connections, finish, and the
// JSON line is still printed.
std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted.store(true, std::memory_order_relaxed); }

// Error counters by kind ("connect:EADDRNOTAVAIL", "timeout", ...). Errors are
// rare, so a map per thread costs nothing on the hot path.
using ErrorKinds = std::map<std::string, uint64_t>;

void CountError(ErrorKinds& kinds, const char* what, int err) {
  std::string key = what;
  if (err != 0) key += std::string(":") + strerrorname_np(err);
  ++kinds[key];
}

sockaddr_in LoopbackAddr(int index, int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(0x7f000000u | static_cast<uint32_t>(index + 1));  // 127.0.0.<i+1>
  return sa;
}

// ---------------------------------------------------------------- server ----

struct ServerConn {
  int fd = -1;
  bool listener = false;
  size_t got = 0;
  size_t sent = 0;
};

struct ServerStats {
  uint64_t served = 0;
  ErrorKinds errors;
};

class Server {
 public:
  Server(const Options& opt, int id) : opt_(opt), scratch_(std::max<size_t>(opt.bytes, 1) + 1) {}

  // Binds one listener per loopback address; SO_REUSEPORT lets every server
  // thread own its own set so the kernel spreads accepts between them.
  bool Listen(std::string* error) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < opt_.addrs; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
      sockaddr_in sa = LoopbackAddr(i, opt_.port);
      if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 4096) != 0) {
        char addr[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof addr);
        *error = std::string("cannot listen on ") + addr + ":" + std::to_string(opt_.port) + ": " +
                 strerror(errno) + "; choose another --port";
        close(fd);
        return false;
      }
      auto* l = new ServerConn{fd, true};
      listeners_.push_back(l);
      Watch(l, EPOLLIN, EPOLL_CTL_ADD);
    }
    return true;
  }

  void Run(const std::atomic<bool>& stop) {
    epoll_event events[256];
    while (!stop.load(std::memory_order_relaxed)) {
      int n = epoll_wait(epfd_, events, 256, 50);
      for (int i = 0; i < n; ++i) {
        auto* c = static_cast<ServerConn*>(events[i].data.ptr);
        if (c->listener) {
          AcceptAll(c->fd);
        } else {
          Step(c, /*registered=*/true);
        }
      }
    }
    for (ServerConn* l : listeners_) {
      close(l->fd);
      delete l;
    }
    // Connections still open at stop are ones whose client gave up (timeout).
    close(epfd_);
  }

  ServerStats& stats() { return stats_; }

 private:
  void Watch(ServerConn* c, uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = c;
    epoll_ctl(epfd_, op, c->fd, &ev);
  }

  void AcceptAll(int lfd) {
    for (;;) {
      int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR) CountError(stats_.errors, "accept", errno);
        return;
      }
      // On loopback the client's bytes usually arrived before accept: try at
      // once and only register with epoll if we would block.
      Step(new ServerConn{fd, false}, /*registered=*/false);
    }
  }

  void Finish(ServerConn* c, bool ok, const char* what, int err) {
    if (ok) {
      ++stats_.served;
    } else {
      CountError(stats_.errors, what, err);
    }
    close(c->fd);  // also removes it from epoll
    delete c;
  }

  void Step(ServerConn* c, bool registered) {
    while (c->got < opt_.bytes) {
      ssize_t r = read(c->fd, scratch_.data(), scratch_.size());
      if (r > 0) {
        c->got += static_cast<size_t>(r);
        if (c->got > opt_.bytes) return Finish(c, false, "server:extra-bytes", 0);
        continue;
      }
      if (r == 0) return Finish(c, false, "server:early-eof", 0);
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return Finish(c, false, "server:read", errno);
      if (!registered) Watch(c, EPOLLIN, EPOLL_CTL_ADD);
      return;
    }
    while (c->sent < opt_.bytes) {
      size_t want = std::min(opt_.bytes - c->sent, scratch_.size());
      ssize_t w = write(c->fd, scratch_.data(), want);
      if (w > 0) {
        c->sent += static_cast<size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno != EAGAIN) return Finish(c, false, "server:write", errno);
      Watch(c, EPOLLOUT, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD);
      return;
    }
    Finish(c, true, nullptr, 0);  // the server closes first (see top of file)
  }

  const Options& opt_;
  std::vector<char> scratch_;
  int epfd_ = -1;
  std::vector<ServerConn*> listeners_;
  ServerStats stats_;
};

// ---------------------------------------------------------------- client ----

struct ClientConn {
  int fd = -1;
  bool registered = false;
  size_t sent = 0;
  size_t got = 0;
  Clock::time_point deadline;
};

struct ClientStats {
  uint64_t completed = 0;
  ErrorKinds errors;
};

class Client {
 public:
  Client(const Options& opt, int id, Clock::time_point end)
      : opt_(opt), id_(id), end_(end), buf_(std::max<size_t>(opt.bytes, 1) + 1, 'x') {}

  void Run() {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    const double per_thread = opt_.rate / opt_.threads;
    const auto interval = per_thread > 0
                              ? std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(1.0 / per_thread))
                              : Clock::duration::zero();
    const auto give_up = end_ + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(opt_.timeout_s));
    auto next_start = Clock::now();
    uint64_t seq = static_cast<uint64_t>(id_);
    epoll_event events[256];
    for (;;) {
      auto now = Clock::now();
      bool starting = now < end_ && !g_interrupted.load(std::memory_order_relaxed);
      if (!starting && inflight_.empty()) break;
      if (now >= give_up) break;
      while (starting && static_cast<int>(inflight_.size()) < opt_.concurrency &&
             (per_thread <= 0 || now >= next_start)) {
        Start(static_cast<int>(seq++ % static_cast<uint64_t>(opt_.addrs)), now);
        next_start += interval;
      }
      // Wait for I/O, or until the next paced start is due (ns resolution).
      timespec ts{0, 20'000'000};
      if (starting && per_thread > 0 && static_cast<int>(inflight_.size()) < opt_.concurrency) {
        auto wait = std::max(next_start - Clock::now(), Clock::duration::zero());
        auto ns = std::min<int64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count(), 20'000'000);
        ts = {0, static_cast<long>(ns)};
      }
      int n = epoll_pwait2(epfd_, events, 256, &ts, nullptr);
      for (int i = 0; i < n; ++i) Step(static_cast<ClientConn*>(events[i].data.ptr));
      ExpireTimedOut(Clock::now());
    }
    // Whatever is left after the give-up time never completed.
    for (ClientConn* c : inflight_) {
      CountError(stats_.errors, "timeout", 0);
      close(c->fd);
      delete c;
    }
    inflight_.clear();
    close(epfd_);
  }

  ClientStats& stats() { return stats_; }

 private:
  void Start(int addr_index, Clock::time_point now) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      CountError(stats_.errors, "socket", errno);
      return;
    }
    sockaddr_in sa = LoopbackAddr(addr_index, opt_.connect_port ? opt_.connect_port : opt_.port);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 && errno != EINPROGRESS) {
      CountError(stats_.errors, "connect", errno);
      close(fd);
      return;
    }
    auto* c = new ClientConn{fd, false, 0, 0,
                             now + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(opt_.timeout_s))};
    inflight_.push_back(c);
    Step(c);  // on loopback the handshake has usually finished already
  }

  void Finish(ClientConn* c, bool ok, const char* what, int err) {
    if (ok) {
      ++stats_.completed;
    } else {
      CountError(stats_.errors, what, err);
    }
    close(c->fd);
    auto it = std::find(inflight_.begin(), inflight_.end(), c);
    *it = inflight_.back();
    inflight_.pop_back();
    delete c;
  }

  void Wait(ClientConn* c, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = c;
    epoll_ctl(epfd_, c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
    c->registered = true;
  }

  void Step(ClientConn* c) {
    while (c->sent < opt_.bytes) {
      size_t want = std::min(opt_.bytes - c->sent, buf_.size());
      ssize_t w = write(c->fd, buf_.data(), want);
      if (w > 0) {
        c->sent += static_cast<size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno != EAGAIN) return Finish(c, false, "client:write", errno);
      return Wait(c, EPOLLOUT);  // still connecting, or the send buffer is full
    }
    for (;;) {
      ssize_t r = read(c->fd, buf_.data(), buf_.size());
      if (r > 0) {
        c->got += static_cast<size_t>(r);
        if (c->got > opt_.bytes) return Finish(c, false, "client:extra-bytes", 0);
        continue;
      }
      if (r == 0) {
        if (c->got == opt_.bytes) return Finish(c, true, nullptr, 0);
        return Finish(c, false, "client:short-read", 0);
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return Finish(c, false, "client:read", errno);
      return Wait(c, EPOLLIN);
    }
  }

  void ExpireTimedOut(Clock::time_point now) {
    for (size_t i = 0; i < inflight_.size();) {
      ClientConn* c = inflight_[i];
      if (now < c->deadline) {
        ++i;
        continue;
      }
      Finish(c, false, "timeout", 0);  // swaps the last one into slot i
    }
  }

  const Options& opt_;
  int id_;
  Clock::time_point end_;
  std::vector<char> buf_;
  int epfd_ = -1;
  std::vector<ClientConn*> inflight_;
  ClientStats stats_;
};

std::string JsonErrorKinds(const ErrorKinds& kinds) {
  std::string out = "{";
  for (const auto& [k, v] : kinds) {
    if (out.size() > 1) out += ", ";
    out += "\"" + k + "\": " + std::to_string(v);
  }
  return out + "}";
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"Loopback TCP connection churn, bounded in time; prints one JSON line."};
  app.add_option("--duration", opt.duration_s, "seconds to start new connections")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--threads", opt.threads, "client threads")->check(CLI::Range(1, 64));
  app.add_option("--server-threads", opt.server_threads, "server threads (SO_REUSEPORT)")
      ->check(CLI::Range(1, 64));
  app.add_option("--concurrency", opt.concurrency, "connections in flight per client thread")
      ->check(CLI::Range(1, 4096));
  app.add_option("--port", opt.port, "server port on 127.0.0.1..N")->check(CLI::Range(1, 65535));
  app.add_option("--connect-port", opt.connect_port,
                 "port clients connect to (default: --port); a NAT rule on the path sends it "
                 "to --port")
      ->check(CLI::Range(0, 65535));
  app.add_option("--bytes", opt.bytes, "bytes each way per connection")
      ->check(CLI::Range(size_t{0}, size_t{64} << 20));
  app.add_option("--rate", opt.rate, "target connections/s in total, 0 = as fast as possible")
      ->check(CLI::Range(0.0, 1e7));
  app.add_option("--addrs", opt.addrs, "spread connections over 127.0.0.1..127.0.0.N")
      ->check(CLI::Range(1, 254));
  app.add_option("--timeout", opt.timeout_s, "seconds before an unfinished connection is an error")
      ->check(CLI::Range(0.1, 60.0));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa{};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::vector<std::unique_ptr<Server>> servers;
  for (int i = 0; i < opt.server_threads; ++i) {
    servers.push_back(std::make_unique<Server>(opt, i));
    std::string error;
    if (!servers.back()->Listen(&error)) {
      fprintf(stderr, "churn: %s\n", error.c_str());
      return 1;
    }
  }
  std::atomic<bool> stop_servers{false};
  std::vector<std::thread> server_threads;
  for (auto& s : servers) server_threads.emplace_back([&s, &stop_servers] { s->Run(stop_servers); });

  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(opt.duration_s));
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::thread> client_threads;
  for (int i = 0; i < opt.threads; ++i) {
    clients.push_back(std::make_unique<Client>(opt, i, end));
    client_threads.emplace_back([c = clients.back().get()] { c->Run(); });
  }
  for (auto& t : client_threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  stop_servers.store(true);
  for (auto& t : server_threads) t.join();

  uint64_t completed = 0, served = 0;
  ErrorKinds kinds;
  for (auto& c : clients) {
    completed += c->stats().completed;
    for (const auto& [k, v] : c->stats().errors) kinds[k] += v;
  }
  for (auto& s : servers) {
    served += s->stats().served;
    for (const auto& [k, v] : s->stats().errors) kinds[k] += v;
  }
  uint64_t errors = 0;
  for (const auto& [k, v] : kinds) errors += v;
  printf(
      "{\"connections\": %llu, \"errors\": %llu, \"seconds\": %.3f, \"conn_per_s\": %.1f, "
      "\"bytes_each_way\": %zu, \"served\": %llu, \"threads\": %d, \"server_threads\": %d, "
      "\"concurrency\": %d, \"addrs\": %d, \"rate_target\": %.0f, \"interrupted\": %s, "
      "\"error_kinds\": %s}\n",
      static_cast<unsigned long long>(completed), static_cast<unsigned long long>(errors), seconds,
      seconds > 0 ? static_cast<double>(completed) / seconds : 0.0, opt.bytes,
      static_cast<unsigned long long>(served), opt.threads, opt.server_threads, opt.concurrency,
      opt.addrs, opt.rate, g_interrupted.load() ? "true" : "false", JsonErrorKinds(kinds).c_str());
  return 0;
}
