// The control socket as a file: where it is created, with which mode, and
// how a stale, live or foreign file at its path is handled.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "node/control/control_client.h"
#include "tests/unit/control_fixture.h"

namespace flowmesh::testing {
namespace {

mode_t CurrentUmask() {
  mode_t m = umask(0);
  umask(m);
  return m;
}

TEST_F(ControlTest, SocketIsMode0600InACreatedDirectory) {
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir_ + "/run").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0755u & ~CurrentUmask());
}

TEST_F(ControlTest, ASecondServerOnALivePathFailsClearly) {
  asio::io_context other_io;
  ControlServer second(other_io, backend_);
  Status s = second.Listen(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("another meshd is serving " + path_), std::string::npos)
      << s.message();
  // ...and the first one is untouched.
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE(client->Status().ok());
}

TEST_F(ControlTest, AStaleSocketFileIsReplaced) {
  std::string stale = dir_ + "/stale.sock";
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, stale.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  close(fd);  // the file stays, nobody listens: what a killed meshd leaves
  asio::io_context other_io;
  ControlServer server(other_io, backend_);
  Status s = server.Listen(stale);
  ASSERT_TRUE(s.ok()) << s.message();
  struct stat st {};
  ASSERT_EQ(stat(stale.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ControlTest, AFileThatIsNotASocketIsLeftAlone) {
  std::string file = dir_ + "/notes.txt";
  std::ofstream(file) << "keep me";
  asio::io_context other_io;
  ControlServer server(other_io, backend_);
  Status s = server.Listen(file);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("exists and is not a socket"), std::string::npos) << s.message();
  EXPECT_TRUE(std::ifstream(file).good());
}

TEST_F(ControlTest, APathTooLongForAUnixSocketIsRefused) {
  asio::io_context other_io;
  ControlServer server(other_io, backend_);
  Status s = server.Listen(dir_ + "/" + std::string(120, 'x'));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("at most 107"), std::string::npos) << s.message();
}

TEST_F(ControlTest, StopRemovesTheSocketFile) {
  StopServer();
  struct stat st {};
  EXPECT_NE(stat(path_.c_str(), &st), 0);
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().message(),
            "cannot connect to meshd at " + path_ +
                ": No such file or directory; is meshd running? (use --socket PATH to point "
                "elsewhere)");
}

TEST_F(ControlTest, PermissionDeniedSaysWhoMayConnect) {
  if (geteuid() != 0) {
    // Not root: the owner itself is locked out by mode 0.
    ASSERT_EQ(chmod(path_.c_str(), 0), 0);
    Result<ControlClient> c = ControlClient::Connect(path_);
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.status().message().find("Permission denied"), std::string::npos);
    EXPECT_NE(c.status().message().find("run meshctl as"), std::string::npos);
    return;
  }
  // Root: try as nobody from a child process.
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  pid_t pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    Result<ControlClient> c = ControlClient::Connect(path_);
    if (c.ok()) _exit(4);
    const std::string& m = c.status().message();
    bool good = m.find("Permission denied") != std::string::npos &&
                m.find("run meshctl as root") != std::string::npos;
    _exit(good ? 0 : 5);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: setuid failed, 4: connected, 5: wrong message";
}

// meshd refuses the 65th connection by writing why and closing; a client whose request went
// out after that close used to report "Broken pipe" instead of meshd's reason.
TEST_F(ControlTest, ARefusedClientReadsMeshdsReason) {
  std::vector<int> held;
  for (int i = 0; i < 64; i++) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    held.push_back(fd);
  }
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok()) << client.status().message();
  // Let meshd refuse and close before the request goes out.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Status s = client->Watch({}, nullptr, nullptr, std::chrono::milliseconds(2000));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("meshd: meshd is serving too many control connections; try again"),
            std::string::npos)
      << s.message();
  for (int fd : held) close(fd);
}

}  // namespace
}  // namespace flowmesh::testing
