// meshd's control socket: a Unix stream socket (mode 0600) where meshctl asks
// for status and connections or watches events live. Runs on an Asio
// io_context and never blocks it: backend calls run on a worker thread.
#pragma once

#include <sys/types.h>

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/thread_pool.hpp>
#include <memory>
#include <string>

#include "node/common/status.h"
#include "node/control/backend.h"

namespace flowmesh {

namespace control_internal {
struct ServerState;
}

class ControlServer {
 public:
  ControlServer(asio::io_context& io, ControlBackend& backend);
  // Stops; must run while no thread is inside io.run() (as meshd does, after
  // run() returned), because it closes objects that belong to the io_context.
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Creates the parent directory (0755) if missing, replaces a stale socket
  // file (one nothing answers on), refuses a live one, binds with mode 0600
  // and starts accepting. Errors name the path and what to do.
  Status Listen(const std::string& path);
  // Stops accepting, closes every connection and watcher and removes the
  // socket file (if it is still ours). Safe from any thread; idempotent.
  void Stop();

  const std::string& path() const { return path_; }
  // Frames that were oversized or did not decode; each closed its connection.
  uint64_t malformed_frames() const;
  // Connections accepted since Listen.
  uint64_t accepted() const;

 private:
  asio::io_context& io_;
  // Backend calls run here, never on the io thread. A look may wait seconds
  // on a node that does not answer: more than one thread, so status and
  // other requests are answered meanwhile (the backend is thread-safe).
  asio::thread_pool worker_{4};
  std::shared_ptr<control_internal::ServerState> state_;
  std::shared_ptr<asio::local::stream_protocol::acceptor> acceptor_;
  std::string path_;
  ino_t inode_ = 0;  // of the socket file we bound, so Stop never removes another's
  bool listening_ = false;
};

}  // namespace flowmesh
