// meshd/meshctl process helpers for the kernel tests.
#include "tests/kernel/meshd_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tests/test_paths.h"

namespace flowmesh::testing {
namespace {

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> v;
  for (auto& a : args) v.push_back(a.data());
  v.push_back(nullptr);
  return v;
}

std::string ReadAll(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  return s;
}

}  // namespace

std::vector<JsonLine> ParseFlatJsonArray(const std::string& text) {
  std::vector<JsonLine> out;
  size_t pos = 0;
  while ((pos = text.find('{', pos)) != std::string::npos) {
    size_t end = text.find('}', pos);
    if (end == std::string::npos) break;
    JsonLine l;
    if (ParseFlatJson(text.substr(pos, end - pos + 1), &l)) out.push_back(std::move(l));
    pos = end + 1;
  }
  return out;
}

bool ParseFlatJson(const std::string& line, JsonLine* out) {
  out->clear();
  size_t i = 0;
  auto skip = [&] {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) i++;
  };
  auto str = [&](std::string* s) {
    if (i >= line.size() || line[i] != '"') return false;
    for (i++; i < line.size() && line[i] != '"'; i++) {
      if (line[i] == '\\' && i + 1 < line.size()) i++;
      s->push_back(line[i]);
    }
    return i++ < line.size();
  };
  skip();
  if (i >= line.size() || line[i++] != '{') return false;
  for (;;) {
    skip();
    if (i < line.size() && line[i] == '}') return true;
    std::string key, value;
    if (!str(&key)) return false;
    skip();
    if (i >= line.size() || line[i++] != ':') return false;
    skip();
    if (i < line.size() && line[i] == '"') {
      if (!str(&value)) return false;
    } else if (i < line.size() && (line[i] == '{' || line[i] == '[')) {
      // Nested values are kept as their raw text.
      int depth = 0;
      bool in_str = false;
      for (; i < line.size(); i++) {
        char ch = line[i];
        value.push_back(ch);
        if (in_str) {
          if (ch == '\\' && i + 1 < line.size()) value.push_back(line[++i]);
          else if (ch == '"') in_str = false;
        } else if (ch == '"') {
          in_str = true;
        } else if (ch == '{' || ch == '[') {
          depth++;
        } else if ((ch == '}' || ch == ']') && --depth == 0) {
          i++;
          break;
        }
      }
    } else {
      while (i < line.size() && line[i] != ',' && line[i] != '}') value.push_back(line[i++]);
      while (!value.empty() && value.back() == ' ') value.pop_back();
    }
    (*out)[key] = value;
    skip();
    if (i < line.size() && line[i] == ',') {
      i++;
      continue;
    }
    return i < line.size() && line[i] == '}';
  }
}

CommandResult RunCommand(const std::vector<std::string>& argv_in, std::chrono::milliseconds timeout,
                         uid_t as_uid) {
  std::vector<std::string> args = argv_in;
  char out_path[] = "/tmp/fm-cmd-out-XXXXXX";
  char err_path[] = "/tmp/fm-cmd-err-XXXXXX";
  int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    if (as_uid != 0 && (setgid(as_uid) != 0 || setuid(as_uid) != 0)) _exit(126);
    auto v = Argv(args);
    execv(v[0], v.data());
    _exit(127);
  }
  CommandResult r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      r.err = "timed out; ";
      break;
    }
    usleep(10'000);
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  lseek(out_fd, 0, SEEK_SET);
  lseek(err_fd, 0, SEEK_SET);
  r.out = ReadAll(out_fd);
  r.err += ReadAll(err_fd);
  close(out_fd);
  close(err_fd);
  unlink(out_path);
  unlink(err_path);
  return r;
}

CommandResult WriteClusterKey(const std::string& path) {
  return RunCommand(
      {"/bin/sh", "-c", "head -c32 /dev/urandom | base64 > " + path + " && chmod 600 " + path});
}

MeshdProcess::MeshdProcess() {
  char tmpl[] = "/tmp/fm-meshd-XXXXXX";
  dir_ = mkdtemp(tmpl);
  socket_ = dir_ + "/meshd.sock";
}

MeshdProcess::~MeshdProcess() {
  Stop();
  std::string cmd = "rm -rf " + dir_;
  if (system(cmd.c_str()) != 0) {
  }
}

bool MeshdProcess::Start(const std::vector<std::string>& flags, std::string* error) {
  std::vector<std::string> args = {MESHD_BIN, "--control-socket", socket_, "--log-level", "debug"};
  // Each meshd keeps its history in the test's own directory, kept across
  // restarts of the same MeshdProcess.
  if (std::find(flags.begin(), flags.end(), "--data-dir") == flags.end()) {
    args.push_back("--data-dir");
    args.push_back(data_dir());
  }
  args.insert(args.end(), flags.begin(), flags.end());
  // capsh execs meshd after dropping the capabilities from its bounding set.
  if (!drop_caps_.empty()) {
    args[0] = "--";
    args.insert(args.begin(),
                {"capsh", "--drop=" + drop_caps_, std::string("--shell=") + MESHD_BIN});
  }
  // ip netns exec execs meshd: the pid stays meshd's.
  if (!netns_.empty()) args.insert(args.begin(), {"ip", "netns", "exec", netns_});
  std::string log = dir_ + "/meshd.log";
  pid_ = fork();
  if (pid_ == 0) {
    // Appended: a restarted meshd's log follows the one before it.
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 2);
    dup2(fd, 1);
    auto v = Argv(args);
    execvp(v[0], v.data());
    _exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      *error = "meshd exited during start-up:\n" + Log();
      return false;
    }
    if (access(socket_.c_str(), F_OK) == 0 && Meshctl({"status"}).exit_code == 0) return true;
    usleep(20'000);
  }
  *error = "meshd did not answer on " + socket_ + " within 10s:\n" + Log();
  return false;
}

void MeshdProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

int MeshdProcess::Stop(int sig) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  int status = 0;
  for (int i = 0; i < 500 && waitpid(pid_, &status, WNOHANG) == 0; i++) usleep(10'000);
  if (waitpid(pid_, &status, WNOHANG) == 0 && !WIFEXITED(status)) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string MeshdProcess::Log() const {
  std::ifstream f(dir_ + "/meshd.log");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

CommandResult MeshdProcess::Meshctl(std::vector<std::string> args) const {
  args.insert(args.begin(), {MESHCTL_BIN, "--socket", socket_});
  return RunCommand(args);
}

Watcher::Watcher(const MeshdProcess& meshd, std::vector<std::string> extra) {
  std::vector<std::string> args = {MESHCTL_BIN, "--socket", meshd.socket(), "watch", "--json",
                                   "--timeout", "60s"};
  args.insert(args.end(), extra.begin(), extra.end());
  int p[2];
  if (pipe(p) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(p[1], 1);
    close(p[0]);
    auto v = Argv(args);
    execv(v[0], v.data());
    _exit(127);
  }
  close(p[1]);
  fd_ = p[0];
  reader_ = std::thread([this] {
    std::string buf;
    char chunk[4096];
    ssize_t n;
    while ((n = read(fd_, chunk, sizeof chunk)) > 0) {
      buf.append(chunk, static_cast<size_t>(n));
      size_t nl;
      while ((nl = buf.find('\n')) != std::string::npos) {
        JsonLine line;
        if (ParseFlatJson(buf.substr(0, nl), &line)) {
          std::lock_guard lock(mu_);
          lines_.push_back(std::move(line));
        }
        buf.erase(0, nl + 1);
      }
    }
  });
  // Wait until meshd counts this watcher, so no event is missed after return.
  for (int i = 0; i < 300; i++) {
    CommandResult r = meshd.Meshctl({"status", "--json"});
    JsonLine s;
    if (r.exit_code == 0 && ParseFlatJson(r.out, &s) && s["watchers"] != "0" &&
        !s["watchers"].empty())
      break;
    usleep(10'000);
  }
}

Watcher::~Watcher() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  if (reader_.joinable()) reader_.join();
  if (fd_ >= 0) close(fd_);
}

bool Watcher::WaitFor(const std::function<bool(const JsonLine&)>& pred, JsonLine* found,
                      std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    {
      std::lock_guard lock(mu_);
      for (const JsonLine& l : lines_)
        if (pred(l)) {
          if (found) *found = l;
          return true;
        }
    }
    usleep(10'000);
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

std::vector<JsonLine> Watcher::Lines() {
  std::lock_guard lock(mu_);
  return lines_;
}

}  // namespace flowmesh::testing
