// The cgroup path parser: one table of component rules, read root to leaf.
#include "node/proc/cgroup_path.h"

#include <array>
#include <optional>
#include <string>

namespace flowmesh {
namespace {

// What lies between a rule's prefix and suffix.
enum class Middle : uint8_t {
  kNothing,   // the component is exactly prefix + suffix
  kAnything,  // at least one character
  kHex64,     // a full container id: 64 lowercase hex digits
  kPodUid,    // a pod uid: 8-4-4-4-12 hex with '-' or '_' (systemd escapes '-'), or 32 hex
  kQos,       // "burstable" or "besteffort" (guaranteed pods sit directly in kubepods)
};

// What a matching component does to the parse.
enum class Does : uint8_t {
  kUnit,           // a systemd service or scope: the innermost one is the unit
  kUserManager,    // user@<uid>.service: a unit, and every unit below is a user's
  kSlice,          // a slice groups units and is none itself
  kContainer,      // a container scope or directory of runtime `value`
  kConmon,         // a runtime's monitor (conmon) beside a container: not the container
  kKubeRoot,       // kubepods(.slice): pods below, guaranteed unless a qos level says
  kQos,            // a qos level below kubepods
  kPodSlice,       // kubepods[-<qos>]-pod<uid>.slice (systemd driver), qos `value`
  kPodDir,         // pod<uid> (cgroupfs driver), below kubepods
  kRuntimeParent,  // the cgroupfs driver's parent directory of runtime `value`
  kBareId,         // a bare container id, below a pod or a runtime parent
};

// Where a rule applies.
enum class Needs : uint8_t { kAnywhere, kKube, kPod, kParent };

struct Rule {
  std::string_view prefix;
  std::string_view suffix;
  Middle middle;
  Does does;
  std::string_view value = {};  // the runtime (kContainer, kRuntimeParent) or qos (kPodSlice)
  Needs needs = Needs::kAnywhere;
};

// First match wins, so the specific forms come before the generic suffixes:
// "crio-conmon-<id>.scope" is conmon before it could be read as a unit, and
// "kubepods-burstable.slice" is a qos level before it is a slice.
constexpr std::array kRules = {
    // Monitors: conmon runs beside the container in a scope of its own.
    Rule{"crio-conmon-", ".scope", Middle::kHex64, Does::kConmon},
    Rule{"libpod-conmon-", ".scope", Middle::kHex64, Does::kConmon},
    Rule{"libpod-conmon-", "", Middle::kHex64, Does::kConmon},
    // Containers under the systemd driver: a transient scope per container.
    Rule{"docker-", ".scope", Middle::kHex64, Does::kContainer, "docker"},
    Rule{"cri-containerd-", ".scope", Middle::kHex64, Does::kContainer, "containerd"},
    Rule{"crio-", ".scope", Middle::kHex64, Does::kContainer, "cri-o"},
    Rule{"libpod-", ".scope", Middle::kHex64, Does::kContainer, "podman"},
    Rule{"nerdctl-", ".scope", Middle::kHex64, Does::kContainer, "containerd"},  // plain containerd
    // cri-o and podman name their cgroupfs directories the same way, unscoped.
    Rule{"crio-", "", Middle::kHex64, Does::kContainer, "cri-o"},
    Rule{"libpod-", "", Middle::kHex64, Does::kContainer, "podman"},
    // Kubernetes, systemd driver.
    Rule{"kubepods", ".slice", Middle::kNothing, Does::kKubeRoot},
    Rule{"kubepods-pod", ".slice", Middle::kPodUid, Does::kPodSlice, "guaranteed"},
    Rule{"kubepods-burstable-pod", ".slice", Middle::kPodUid, Does::kPodSlice, "burstable"},
    Rule{"kubepods-besteffort-pod", ".slice", Middle::kPodUid, Does::kPodSlice, "besteffort"},
    Rule{"kubepods-", ".slice", Middle::kQos, Does::kQos},
    // Kubernetes, cgroupfs driver.
    Rule{"kubepods", "", Middle::kNothing, Does::kKubeRoot},
    Rule{"", "", Middle::kQos, Does::kQos, {}, Needs::kKube},
    Rule{"pod", "", Middle::kPodUid, Does::kPodDir, {}, Needs::kKube},
    Rule{"", "", Middle::kHex64, Does::kBareId, {}, Needs::kPod},
    // Runtimes' cgroupfs parents: /docker/<id>, /libpod_parent/libpod-conmon-<id>/<id>.
    Rule{"docker", "", Middle::kNothing, Does::kRuntimeParent, "docker"},
    Rule{"libpod_parent", "", Middle::kNothing, Does::kRuntimeParent, "podman"},
    Rule{"", "", Middle::kHex64, Does::kBareId, {}, Needs::kParent},
    // systemd units (names left escaped, as systemctl prints them).
    Rule{"user@", ".service", Middle::kAnything, Does::kUserManager},
    Rule{"", ".slice", Middle::kAnything, Does::kSlice},
    Rule{"", ".service", Middle::kAnything, Does::kUnit},
    Rule{"", ".scope", Middle::kAnything, Does::kUnit},
    Rule{"", ".socket", Middle::kAnything, Does::kUnit},
    Rule{"", ".mount", Middle::kAnything, Does::kUnit},
    Rule{"", ".swap", Middle::kAnything, Does::kUnit},
};

bool IsHex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool IsPodUid(std::string_view s) {
  if (s.size() == 32) return IsHex(s);  // a static pod's uid: the hash of its manifest
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? (s[i] != '-' && s[i] != '_') : !IsHex(s.substr(i, 1))) return false;
  }
  return true;
}

bool MiddleFits(Middle m, std::string_view s) {
  switch (m) {
    case Middle::kNothing: return s.empty();
    case Middle::kAnything: return !s.empty();
    case Middle::kHex64: return s.size() == 64 && IsHex(s);
    case Middle::kPodUid: return IsPodUid(s);
    case Middle::kQos: return s == "burstable" || s == "besteffort";
  }
  return false;
}

struct State {
  bool in_kube = false;
  std::string qos;                  // of the kubepods level we are in
  std::string_view parent_runtime;  // set below a runtime's cgroupfs parent
  bool in_parent = false;
  bool in_user_manager = false;
  std::optional<Pod> pod;            // innermost pod so far
  std::optional<Pod> container_pod;  // the pod around the innermost container
  bool have_container = false;
  std::string_view runtime, id, unit;
  bool user_unit = false;
};

const Rule* Match(std::string_view c, const State& st) {
  for (const Rule& r : kRules) {
    if (r.needs == Needs::kKube && !st.in_kube) continue;
    if (r.needs == Needs::kPod && !(st.in_kube && st.pod)) continue;
    if (r.needs == Needs::kParent && !st.in_parent) continue;
    if (c.size() < r.prefix.size() + r.suffix.size()) continue;
    if (c.substr(0, r.prefix.size()) != r.prefix) continue;
    if (c.substr(c.size() - r.suffix.size()) != r.suffix) continue;
    std::string_view middle =
        c.substr(r.prefix.size(), c.size() - r.prefix.size() - r.suffix.size());
    if (MiddleFits(r.middle, middle)) return &r;
  }
  return nullptr;
}

std::string_view MiddleOf(const Rule& r, std::string_view c) {
  return c.substr(r.prefix.size(), c.size() - r.prefix.size() - r.suffix.size());
}

void SetUnit(State& st, std::string_view c) {
  st.unit = c;
  st.user_unit = st.in_user_manager;
}

void Apply(const Rule& r, std::string_view c, State& st) {
  switch (r.does) {
    case Does::kUnit:
    case Does::kConmon:
      if (r.suffix == ".scope" || r.does == Does::kUnit) SetUnit(st, c);
      return;
    case Does::kUserManager:
      SetUnit(st, c);
      st.in_user_manager = true;
      return;
    case Does::kSlice: return;
    case Does::kContainer:
    case Does::kBareId:
      st.have_container = true;
      // A bare id right below a pod says nothing of its runtime (the files will).
      st.runtime = r.does == Does::kContainer ? r.value
                   : st.in_parent             ? st.parent_runtime
                                              : std::string_view();
      st.id = r.does == Does::kContainer ? MiddleOf(r, c) : c;
      st.container_pod = st.pod;
      if (!r.suffix.empty()) SetUnit(st, c);
      return;
    case Does::kKubeRoot:
      st.in_kube = true;
      st.qos = "guaranteed";
      return;
    case Does::kQos: st.qos = std::string(r.prefix.empty() ? c : MiddleOf(r, c)); return;
    case Does::kPodSlice:
    case Does::kPodDir: {
      Pod pod;
      pod.uid = std::string(MiddleOf(r, c));
      for (char& ch : pod.uid)
        if (ch == '_') ch = '-';
      pod.qos = r.does == Does::kPodSlice ? std::string(r.value) : st.qos;
      st.pod = std::move(pod);
      // The pod is inside whatever container came before (a kind node): it
      // is the innermost workload until a container of its own shows up.
      st.have_container = false;
      st.runtime = st.id = {};
      st.container_pod.reset();
      st.in_parent = false;
      return;
    }
    case Does::kRuntimeParent:
      st.in_parent = true;
      st.parent_runtime = r.value;
      return;
  }
}

bool SaneComponent(std::string_view c) {
  if (c.empty() || c == "." || c == "..") return false;
  for (char ch : c)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) return false;
  return true;
}

}  // namespace

Workload ParseCgroupPath(std::string_view path) {
  Workload w;
  if (path.size() > kMaxCgroupPathBytes) return w;
  w.cgroup = std::string(path);
  if (path.empty() || path.front() != '/') return w;
  State st;
  for (std::string_view rest = path.substr(1); path.size() > 1;) {
    size_t slash = rest.find('/');
    std::string_view c = rest.substr(0, slash);
    if (!SaneComponent(c)) return w;  // "//", "/./", "/../", a trailing '/'
    if (const Rule* r = Match(c, st)) Apply(*r, c, st);
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  w.unit = std::string(st.unit);
  w.user_unit = st.user_unit;
  if (st.have_container || st.pod) {
    w.kind = WorkloadKind::kContainer;
    w.runtime = std::string(st.runtime);
    w.id = std::string(st.id);
    w.pod = st.have_container ? st.container_pod : st.pod;
    // A user owns its manager's subtree and may mkdir "docker-<a real
    // id>.scope" there: whatever is below is the user's, never the system's.
    if (st.in_user_manager) w.user_unit = true;
  } else if (!st.unit.empty()) {
    w.kind = WorkloadKind::kUnit;
    w.id = w.unit;
  } else {
    w.user_unit = false;
  }
  return w;
}

}  // namespace flowmesh
