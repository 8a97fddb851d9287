// Container and pod names from runtime files; JSON exceptions end here.
#include "node/proc/runtime_metadata.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <vector>

namespace flowmesh {
namespace {

using nlohmann::json;

constexpr std::string_view kContainerdTasks = "/run/containerd/io.containerd.runtime.v2.task";
constexpr std::string_view kContainersStorage = "/var/lib/containers/storage/overlay-containers";
constexpr size_t kMaxNamespaces = 64;  // containerd namespaces looked through for one id

std::string Under(const RuntimeRoots& roots, std::string_view path) {
  std::string root = roots.root;
  while (!root.empty() && root.back() == '/') root.pop_back();
  return root + std::string(path);
}

// A path component taken from a workload: never "..", never a '/'.
bool SafeComponent(std::string_view s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string_view::npos &&
         s.find('\0') == std::string_view::npos;
}

// The file's bytes; nullopt when it is not there (the usual case: a runtime
// this host does not run). Anything else wrong with it is malformed. Opened
// non-blocking and read only when it is a regular file: a FIFO planted at
// the path must not hang the reader.
std::optional<std::string> ReadBounded(const std::string& path, size_t max_bytes,
                                       MetadataOutcome* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno != ENOENT && errno != ENOTDIR) {
      out->malformed++;
      out->error = "cannot open " + path + ": " + std::string(strerror(errno));
    }
    return std::nullopt;
  }
  struct stat st {};
  std::string text;
  std::string why;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    why = "not a regular file";
  } else if (static_cast<size_t>(st.st_size) > max_bytes) {
    why =
        std::to_string(st.st_size) + " bytes, more than the " + std::to_string(max_bytes) + " read";
  } else {
    text.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < text.size()) {
      ssize_t n = read(fd, text.data() + got, text.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    text.resize(got);
  }
  close(fd);
  if (!why.empty()) {
    out->malformed++;
    out->error = path + ": " + why;
    return std::nullopt;
  }
  return text;
}

std::optional<json> ReadJson(const std::string& path, size_t max_bytes, MetadataOutcome* out) {
  std::optional<std::string> text = ReadBounded(path, max_bytes, out);
  if (!text) return std::nullopt;
  try {
    return json::parse(*text);
  } catch (const json::exception& e) {
    out->malformed++;
    out->error = path + ": " + e.what();
    return std::nullopt;
  }
}

// j[key] when it is a string, else "". Never throws.
std::string Str(const json& j, std::string_view key) {
  if (!j.is_object()) return "";
  auto it = j.find(std::string(key));
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

const json& Obj(const json& j, std::string_view key) {
  static const json kEmpty = json::object();
  if (!j.is_object()) return kEmpty;
  auto it = j.find(std::string(key));
  return it != j.end() && it->is_object() ? *it : kEmpty;
}

// What runtimes allow in a name. The files are not theirs alone: docker's
// Name and labels come from whoever ran the container or built its image,
// etc-hosts from the pod itself. A name that breaks these rules would not
// have been accepted by the runtime, and one of 1 MiB would be refused by
// every peer it is gossiped to, so it is dropped (the id stays) and counted.
enum class NameRule {
  kContainer,     // docker, podman, nerdctl: [A-Za-z0-9][A-Za-z0-9_.-]*
  kDnsLabel,      // a pod's container, a namespace, a hostname: RFC 1123 label
  kDnsSubdomain,  // a pod's name: RFC 1123 subdomain
};

bool ValidName(std::string_view s, NameRule rule) {
  size_t max = rule == NameRule::kDnsLabel ? 63 : 253;
  if (s.empty() || s.size() > max) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  if (rule == NameRule::kContainer) {
    if (!alnum(s[0]) && !upper(s[0])) return false;
    for (char c : s)
      if (!alnum(c) && !upper(c) && c != '_' && c != '.' && c != '-') return false;
    return true;
  }
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s)
    if (!alnum(c) && c != '-' && !(c == '.' && rule == NameRule::kDnsSubdomain)) return false;
  return true;
}

// `name` when it keeps `rule`; else "" and the file counted as malformed.
std::string Checked(std::string name, NameRule rule, const std::string& path, const char* what,
                    MetadataOutcome* out) {
  if (name.empty() || ValidName(name, rule)) return name;
  out->malformed++;
  out->error = path + ": " + what + " of " + std::to_string(name.size()) +
               " bytes is not a name the runtime allows";
  return "";
}

void SetPod(Workload* w, const std::string& name, const std::string& ns, const std::string& path,
            MetadataOutcome* out) {
  if (name.empty() || !w->pod) return;
  std::string pod = Checked(name, NameRule::kDnsSubdomain, path, "pod name", out);
  if (pod.empty()) return;
  w->pod->name = pod;
  std::string space = Checked(ns, NameRule::kDnsLabel, path, "pod namespace", out);
  if (!space.empty()) w->pod->ns = space;
}

// A file parsed but holding none of what it should is malformed, too.
bool Shaped(const std::optional<json>& j, const std::string& path, MetadataOutcome* out) {
  if (!j) return false;
  if (j->is_object()) return true;
  out->malformed++;
  out->error = path + ": not a JSON object";
  return false;
}

// <data-root>/containers/<id>/config.v2.json: "Name" is "/web". Under the
// dockershim the kubelet's labels name the pod's container instead. Image
// LABELs land in Config.Labels too, so any image could name itself a pod's
// container: the labels are believed only for a container the cgroup path
// put in a pod, and only with the io.kubernetes.docker.type label the
// dockershim sets on every container it creates.
bool Docker(const RuntimeRoots& roots, Workload* w, MetadataOutcome* out) {
  std::string path = Under(roots, roots.docker_data + "/containers/" + w->id + "/config.v2.json");
  std::optional<json> j = ReadJson(path, roots.max_file_bytes, out);
  if (!Shaped(j, path, out)) return false;
  std::string name = Str(*j, "Name");
  if (!name.empty() && name[0] == '/') name.erase(0, 1);
  const json& labels = Obj(Obj(*j, "Config"), "Labels");
  std::string k8s_name = Str(labels, "io.kubernetes.container.name");
  bool kubelets = w->pod && !k8s_name.empty() && !Str(labels, "io.kubernetes.docker.type").empty();
  if (!kubelets) {
    w->name = Checked(name, NameRule::kContainer, path, "Name", out);
    return true;
  }
  w->name = Checked(k8s_name, NameRule::kDnsLabel, path, "container name label", out);
  SetPod(w, Str(labels, "io.kubernetes.pod.name"), Str(labels, "io.kubernetes.pod.namespace"), path,
         out);
  return true;
}

void FromCriAnnotations(const json& annotations, Workload* w, const std::string& path,
                        MetadataOutcome* out) {
  std::string name = Str(annotations, "io.kubernetes.cri.container-name");
  if (!name.empty()) {
    w->name = Checked(name, NameRule::kDnsLabel, path, "container name", out);
  } else {  // plain containerd, by nerdctl
    w->name = Checked(Str(annotations, "nerdctl/name"), NameRule::kContainer, path, "name", out);
  }
  SetPod(w, Str(annotations, "io.kubernetes.cri.sandbox-name"),
         Str(annotations, "io.kubernetes.cri.sandbox-namespace"), path, out);
}

// <state>/io.containerd.runtime.v2.task/<namespace>/<id>/config.json, the
// OCI spec the CRI plugin annotates. Kubernetes uses namespace k8s.io;
// plain containerd any other, so each is tried (k8s.io first).
bool Containerd(const RuntimeRoots& roots, Workload* w, MetadataOutcome* out) {
  std::string tasks = Under(roots, kContainerdTasks);
  std::vector<std::string> namespaces = {"k8s.io"};
  if (DIR* d = opendir(tasks.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string ns = e->d_name;
      if (ns == "k8s.io" || !SafeComponent(ns) || ns[0] == '.') continue;
      if (namespaces.size() >= kMaxNamespaces) break;
      namespaces.push_back(ns);
    }
    closedir(d);
  }
  for (const std::string& ns : namespaces) {
    std::string path = tasks + "/" + ns + "/" + w->id + "/config.json";
    std::optional<json> j = ReadJson(path, roots.max_file_bytes, out);
    if (!Shaped(j, path, out)) continue;
    FromCriAnnotations(Obj(*j, "annotations"), w, path, out);
    return true;
  }
  return false;
}

// containers/storage keeps cri-o's and podman's containers alike:
// overlay-containers/<id>/userdata/config.json is the OCI spec (cri-o
// annotates it with the pod's names); overlay-containers/containers.json
// lists every container with its names (podman's "web").
bool ContainersStorage(const RuntimeRoots& roots, Workload* w, MetadataOutcome* out) {
  std::string dir = Under(roots, kContainersStorage);
  std::string path = dir + "/" + w->id + "/userdata/config.json";
  std::optional<json> spec = ReadJson(path, roots.max_file_bytes, out);
  if (Shaped(spec, path, out)) {
    const json& a = Obj(*spec, "annotations");
    std::string name = Str(a, "io.kubernetes.container.name");
    if (!name.empty()) {
      if (w->runtime.empty()) w->runtime = "cri-o";
      w->name = Checked(name, NameRule::kDnsLabel, path, "container name", out);
      SetPod(w, Str(a, "io.kubernetes.pod.name"), Str(a, "io.kubernetes.pod.namespace"), path, out);
      return true;
    }
  }
  std::string index = dir + "/containers.json";
  std::optional<json> list = ReadJson(index, roots.max_index_bytes, out);
  if (!list) return spec.has_value();
  if (!list->is_array()) {
    out->malformed++;
    out->error = index + ": not a JSON array";
    return spec.has_value();
  }
  for (const json& c : *list) {
    if (Str(c, "id") != w->id) continue;
    auto names = c.is_object() ? c.find("names") : c.end();
    if (names != c.end() && names->is_array() && !names->empty() && names->front().is_string())
      w->name =
          Checked(names->front().get<std::string>(), NameRule::kContainer, index, "name", out);
    if (w->runtime.empty()) w->runtime = "podman";
    return true;
  }
  return spec.has_value();
}

// <kubelet>/pods/<uid>/etc-hosts, the hosts file the kubelet writes for the
// pod: after the boilerplate, "<pod ip>\t<hostname>", and the hostname is
// the pod's name unless its spec sets another. The namespace is not there.
bool KubeletPodName(const RuntimeRoots& roots, Workload* w, MetadataOutcome* out) {
  if (!w->pod || !w->pod->name.empty() || !SafeComponent(w->pod->uid)) return false;
  std::string path = Under(roots, "/var/lib/kubelet/pods/" + w->pod->uid + "/etc-hosts");
  std::optional<std::string> text = ReadBounded(path, 64 << 10, out);
  if (!text) return false;
  std::string_view rest = *text;
  if (rest.substr(0, 1) != "#") {
    out->malformed++;
    out->error = path + ": not a hosts file the kubelet wrote";
    return false;
  }
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (line.empty()) continue;
    if (line[0] == '#') {
      if (line.find("HostAliases") != std::string_view::npos) break;  // the user's, not the pod's
      continue;
    }
    std::vector<std::string_view> fields;
    for (size_t i = 0; i < line.size();) {
      size_t j = line.find_first_of(" \t", i);
      if (j == std::string_view::npos) j = line.size();
      if (j > i) fields.push_back(line.substr(i, j - i));
      i = j + 1;
    }
    if (fields.size() < 2) continue;
    std::string_view ip = fields[0];
    if (ip == "127.0.0.1" || ip == "::1" || ip.substr(0, 4) == "fe00" || ip.substr(0, 4) == "ff02")
      continue;
    // "10.1.2.3\tname.sub.ns.svc.cluster.local\tname": the short name is
    // last. The pod can write this file, so it is believed only as a label.
    std::string name =
        Checked(std::string(fields.back()), NameRule::kDnsLabel, path, "hostname", out);
    if (name.empty()) return false;
    w->pod->name = name;
    return true;
  }
  return false;
}

// The namespace, from the service account volume every pod gets unless it
// opts out: pods/<uid>/volumes/kubernetes.io~projected/kube-api-access-<x>/
// namespace (a downward API item). Only that file is read, never the token
// beside it.
bool KubeletPodNamespace(const RuntimeRoots& roots, Workload* w, MetadataOutcome* out) {
  if (!w->pod || !w->pod->ns.empty() || !SafeComponent(w->pod->uid)) return false;
  std::string dir =
      Under(roots, "/var/lib/kubelet/pods/" + w->pod->uid + "/volumes/kubernetes.io~projected");
  DIR* d = opendir(dir.c_str());
  if (!d) return false;
  std::string volume;
  for (int n = 0; n < 64; n++) {
    dirent* e = readdir(d);
    if (!e) break;
    std::string_view name = e->d_name;
    if (name.substr(0, 16) == "kube-api-access-" && SafeComponent(name)) {
      volume = std::string(name);
      break;
    }
  }
  closedir(d);
  if (volume.empty()) return false;
  std::string path = dir + "/" + volume + "/namespace";
  std::optional<std::string> text = ReadBounded(path, 256, out);
  if (!text) return false;
  std::string ns = *text;
  while (!ns.empty() && (ns.back() == '\n' || ns.back() == ' ')) ns.pop_back();
  // A namespace is a DNS label: anything else is not what the kubelet wrote.
  if (!ValidName(ns, NameRule::kDnsLabel)) {
    out->malformed++;
    out->error = path + ": not a namespace name";
    return false;
  }
  w->pod->ns = ns;
  return true;
}

}  // namespace

MetadataOutcome AddRuntimeMetadata(const RuntimeRoots& roots, Workload* w) {
  MetadataOutcome out;
  if (w->kind != WorkloadKind::kContainer) return out;
  // Below a user's manager the id is whatever the user named a directory:
  // the system runtimes' files of that id are another container's.
  if (w->user_unit) return out;
  if (SafeComponent(w->id)) {
    const std::string& rt = w->runtime;
    if (rt == "docker") {
      out.found = Docker(roots, w, &out);
    } else if (rt == "containerd") {
      out.found = Containerd(roots, w, &out);
    } else if (rt == "cri-o" || rt == "podman") {
      out.found = ContainersStorage(roots, w, &out);
    } else if (rt.empty()) {
      // A bare id below a pod: whichever runtime has its files.
      if (Containerd(roots, w, &out)) {
        w->runtime = "containerd";
        out.found = true;
      } else if (ContainersStorage(roots, w, &out)) {
        out.found = true;
      } else if (Docker(roots, w, &out)) {
        w->runtime = "docker";
        out.found = true;
      }
    }
  }
  if (KubeletPodName(roots, w, &out)) out.found = true;
  if (KubeletPodNamespace(roots, w, &out)) out.found = true;
  return out;
}

}  // namespace flowmesh
