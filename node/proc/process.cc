// Process details from /proc: stat parsing, exe and cmdline, network namespace.
#include "node/proc/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <memory>

namespace flowmesh {
namespace {

template <typename T>
bool ParseUnsigned(std::string_view s, T* out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
}

// Splits on single spaces, as the kernel writes stat.
std::vector<std::string_view> SplitSpaces(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    size_t sp = s.find(' ');
    if (sp != 0) out.push_back(s.substr(0, sp));
    if (sp == std::string_view::npos) break;
    s.remove_prefix(sp + 1);
  }
  return out;
}

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

}  // namespace

Result<ProcStat> ParseProcStat(std::string_view text) {
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return InvalidArgument("no '(comm)' in stat line");
  ProcStat st;
  std::string_view pid_text = text.substr(0, open);
  while (!pid_text.empty() && pid_text.back() == ' ') pid_text.remove_suffix(1);
  if (!ParseUnsigned(pid_text, &st.pid))
    return InvalidArgument("bad pid '" + std::string(pid_text) + "' in stat line");
  st.comm = std::string(text.substr(open + 1, close - open - 1));

  std::string_view rest = text.substr(close + 1);
  while (!rest.empty() && (rest.back() == '\n' || rest.back() == ' ')) rest.remove_suffix(1);
  std::vector<std::string_view> f = SplitSpaces(rest);
  // f[0] is field 3 (state), so field N is f[N - 3].
  constexpr size_t kStartTime = 22 - 3;
  if (f.size() <= kStartTime)
    return InvalidArgument("stat line has " + std::to_string(f.size() + 2) +
                           " fields, expected at least 22");
  if (f[0].size() != 1) return InvalidArgument("bad state '" + std::string(f[0]) + "'");
  st.state = f[0][0];
  if (!ParseUnsigned(f[4 - 3], &st.ppid) || !ParseUnsigned(f[5 - 3], &st.pgid) ||
      !ParseUnsigned(f[kStartTime], &st.start_ticks))
    return InvalidArgument("non-numeric ppid, pgrp or starttime in stat line");
  return st;
}

std::optional<uint32_t> ParseInodeLink(std::string_view link, std::string_view kind) {
  if (link.size() < kind.size() + 3 || link.substr(0, kind.size()) != kind) return std::nullopt;
  link.remove_prefix(kind.size());
  if (link.substr(0, 2) != ":[" || link.back() != ']') return std::nullopt;
  uint32_t inode = 0;
  if (!ParseUnsigned(link.substr(2, link.size() - 3), &inode)) return std::nullopt;
  return inode;
}

Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "cannot open " + path);
  std::string out;
  char buf[4096];
  while (out.size() < max_bytes) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return Status::FromErrno(err, "cannot read " + path);
    }
    if (n == 0) break;
    out.append(buf, std::min(static_cast<size_t>(n), max_bytes - out.size()));
  }
  close(fd);
  return out;
}

Result<std::string> ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf);
  if (n < 0) return Status::FromErrno(errno, "cannot read link " + path);
  return std::string(buf, static_cast<size_t>(n));
}

ProcReader::ProcReader(std::string proc_root) : root_(std::move(proc_root)) {}

std::string ProcReader::PidPath(uint32_t pid, std::string_view name) const {
  std::string p = root_ + "/" + std::to_string(pid);
  if (!name.empty()) (p += "/") += name;
  return p;
}

Result<ProcStat> ProcReader::ReadStat(uint32_t pid) const {
  std::string path = PidPath(pid, "stat");
  FM_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, 4096));
  Result<ProcStat> st = ParseProcStat(text);
  if (!st.ok()) return st.status().WithContext("cannot parse " + path);
  if (st->pid != pid)
    return InvalidArgument("cannot parse " + path + ": it names pid " + std::to_string(st->pid));
  return st;
}

Result<ProcessInfo> ProcReader::Read(uint32_t pid) const {
  FM_ASSIGN_OR_RETURN(ProcStat st, ReadStat(pid));
  ProcessInfo info;
  info.pid = st.pid;
  info.ppid = st.ppid;
  info.pgid = st.pgid;
  info.start_ticks = st.start_ticks;
  info.comm = std::move(st.comm);
  // exe and cmdline are for display: a process we may not inspect still has
  // an identity, so their absence is not an error.
  if (Result<std::string> exe = ReadLink(PidPath(pid, "exe")); exe.ok()) info.exe = *exe;
  if (Result<std::string> cmd = ReadSmallFile(PidPath(pid, "cmdline"), 64 * 1024); cmd.ok()) {
    std::string& c = *cmd;
    while (!c.empty() && c.back() == '\0') c.pop_back();
    std::replace(c.begin(), c.end(), '\0', ' ');
    info.cmdline = std::move(c);
  }
  return info;
}

Result<uint32_t> ProcReader::NetnsInode(uint32_t pid) const {
  std::string path = PidPath(pid, "ns/net");
  FM_ASSIGN_OR_RETURN(std::string link, ReadLink(path));
  std::optional<uint32_t> inode = ParseInodeLink(link, "net");
  if (!inode) return InvalidArgument(path + " points to '" + link + "', expected 'net:[<inode>]'");
  return *inode;
}

Result<std::vector<uint32_t>> ProcReader::Pids() const {
  std::unique_ptr<DIR, DirCloser> dir(opendir(root_.c_str()));
  if (!dir) return Status::FromErrno(errno, "cannot list " + root_ + " (is procfs mounted there?)");
  std::vector<uint32_t> pids;
  while (dirent* e = readdir(dir.get())) {
    uint32_t pid = 0;
    if (ParseUnsigned(std::string_view(e->d_name), &pid) && pid != 0) pids.push_back(pid);
  }
  std::sort(pids.begin(), pids.end());
  return pids;
}

}  // namespace flowmesh
