// AddRuntimeMetadata against the fixture host root in testdata/runtime/host:
// names from each runtime's files, pods from the kubelet, and broken files
// counted while the workload keeps its id.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "node/proc/cgroup_path.h"
#include "node/proc/runtime_metadata.h"
#include "tests/test_paths.h"

namespace flowmesh {
namespace {

using ::testing::HasSubstr;

RuntimeRoots Host() {
  RuntimeRoots r;
  r.root = std::string(FLOWMESH_TESTDATA) + "/runtime/host";
  return r;
}

Workload Named(const std::string& path, MetadataOutcome* out = nullptr) {
  Workload w = ParseCgroupPath(path);
  MetadataOutcome o = AddRuntimeMetadata(Host(), &w);
  if (out) *out = o;
  return w;
}

// config.v2.json naming a container `name` (JSON-escaped enough for the tests).
std::string NameConfig(const std::string& name) {
  std::string q;
  for (char c : name) q += c == '\n' ? std::string("\\n") : std::string(1, c);
  return "{\"Name\":\"/" + q + "\"}";
}

constexpr char kWeb[] = "3f2a1c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

TEST(RuntimeMetadata, DockerNameFromConfigV2) {
  MetadataOutcome out;
  Workload w = Named(std::string("/system.slice/docker-") + kWeb + ".scope", &out);
  EXPECT_TRUE(out.found);
  EXPECT_EQ(out.malformed, 0);
  EXPECT_EQ(w.name, "web");
  EXPECT_EQ(WorkloadLabel(w), "container web (docker 3f2a1c4d5e6f)");
}

TEST(RuntimeMetadata, DockershimLabelsNameThePodsContainer) {
  Workload w = Named(
      "/kubepods.slice/kubepods-pod10231429_28f6_11e8_8903_74dbd1a06fe0.slice/"
      "docker-32cc26191dad2120ae02fbe32e3cb962c291591439f28765da6c2b8dd28d7e48.scope");
  EXPECT_EQ(w.name, "api");
  ASSERT_TRUE(w.pod);
  EXPECT_EQ(w.pod->name, "pay-7d9c");
  EXPECT_EQ(w.pod->ns, "shop");
}

TEST(RuntimeMetadata, ContainerdCriAnnotations) {
  Workload w = Named(
      "/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod55c6c714_b240_4dec_9a45_57b61696ab6e.slice/"
      "cri-containerd-2032491dcae31e6746f47daa0ac74564f2843a1bd847c5e6c4eb501ca132ac36.scope");
  EXPECT_EQ(w.name, "api");
  ASSERT_TRUE(w.pod);
  EXPECT_EQ(w.pod->name, "pay-7d9c");  // the runtime's word, not etc-hosts' "web-0"
  EXPECT_EQ(w.pod->ns, "shop");
  EXPECT_EQ(w.pod->qos, "burstable");
  EXPECT_EQ(WorkloadLabel(w), "pod shop/pay-7d9c/api (containerd 2032491dcae3)");
}

TEST(RuntimeMetadata, PlainContainerdNamespaceAndNerdctlName) {
  Workload w = Named(
      "/system.slice/nerdctl-7dea796eb5d6826a85978fa316612874aa3d576ac576495bed83d77fbc9dc744"
      ".scope");
  EXPECT_EQ(w.runtime, "containerd");
  EXPECT_EQ(w.name, "cache");
}

TEST(RuntimeMetadata, CriOAnnotations) {
  Workload w = Named(
      "/kubepods.slice/kubepods-besteffort.slice/"
      "kubepods-besteffort-pod2ca4a155_3599_498d_bb9d_4446693fa3ea.slice/"
      "crio-358607a37e7ada357032e7f5729c9ae6a3efdb7962acbcbe47ff6a3c5506cb1c.scope");
  EXPECT_EQ(w.name, "kube-proxy");
  ASSERT_TRUE(w.pod);
  EXPECT_EQ(w.pod->name, "kube-proxy-x7k2p");
  EXPECT_EQ(w.pod->ns, "kube-system");
}

TEST(RuntimeMetadata, PodmanNameFromContainersJson) {
  Workload w = Named(
      "/machine.slice/libpod-0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a"
      ".scope");
  EXPECT_EQ(w.name, "redis");
  EXPECT_EQ(w.runtime, "podman");
}

TEST(RuntimeMetadata, BareIdBelowAPodFindsItsRuntime) {
  MetadataOutcome out;
  Workload w = Named(
      "/kubepods/burstable/pod55c6c714-b240-4dec-9a45-57b61696ab6e/"
      "2032491dcae31e6746f47daa0ac74564f2843a1bd847c5e6c4eb501ca132ac36",
      &out);
  EXPECT_EQ(w.runtime, "containerd");
  EXPECT_EQ(w.name, "api");
  EXPECT_EQ(w.pod->name, "pay-7d9c");
}

TEST(RuntimeMetadata, KubeletEtcHostsNamesAPodTheRuntimeDoesNot) {
  // The pod's own cgroup: no container, so only the kubelet's file helps.
  Workload w = Named("/kubepods/besteffort/pod18d34ce4-50c7-452c-9df8-53c4a3fdf363");
  ASSERT_TRUE(w.pod);
  EXPECT_EQ(w.pod->name, "pay-7d9c");  // not foo.local: HostAliases are the user's
  EXPECT_EQ(w.pod->ns, "shop");        // the service account volume's namespace file
  EXPECT_EQ(WorkloadLabel(w), "pod shop/pay-7d9c");
  Workload sub = Named("/kubepods/burstable/pod55c6c714-b240-4dec-9a45-57b61696ab6e");
  EXPECT_EQ(sub.pod->name, "web-0");  // "<ip> <fqdn> <short>": the short one
  EXPECT_EQ(sub.pod->ns, "");         // no service account volume
}

TEST(RuntimeMetadata, ANamespaceFileThatIsNoNamespaceIsMalformed) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("fm-ns-" + std::to_string(getpid()));
  fs::path vol = root / "var/lib/kubelet/pods/18d34ce4-50c7-452c-9df8-53c4a3fdf363/volumes" /
                 "kubernetes.io~projected/kube-api-access-x1y2z";
  fs::create_directories(vol);
  std::ofstream(vol / "namespace") << "../../etc";
  RuntimeRoots roots;
  roots.root = root;
  Workload w = ParseCgroupPath("/kubepods/besteffort/pod18d34ce4-50c7-452c-9df8-53c4a3fdf363");
  MetadataOutcome out = AddRuntimeMetadata(roots, &w);
  EXPECT_EQ(out.malformed, 1);
  EXPECT_EQ(w.pod->ns, "");
  fs::remove_all(root);
}

TEST(RuntimeMetadata, MalformedFilesAreCountedAndTheIdKept) {
  MetadataOutcome out;
  Workload half =
      Named("/docker/5dace3de0735f73d2b5048f12d41a71741a02e49668de921fdae62f7e65dc498", &out);
  EXPECT_FALSE(out.found);
  EXPECT_EQ(out.malformed, 1);
  EXPECT_THAT(out.error, HasSubstr("config.v2.json"));
  EXPECT_EQ(half.name, "");
  EXPECT_EQ(half.id, "5dace3de0735f73d2b5048f12d41a71741a02e49668de921fdae62f7e65dc498");

  Named("/docker/2403ccfe427f1dc7b6120dccb9ac58c2f8456950380d587a9f33ea7f00dd303d", &out);
  EXPECT_EQ(out.malformed, 1);
  EXPECT_THAT(out.error, HasSubstr("not a JSON object"));

  Workload cut;
  cut.kind = WorkloadKind::kContainer;
  cut.runtime = "containerd";
  cut.id = "a684bbdd0c4b6937b5ece9713bed661305ab0de570eb12b7c28a032aaf602937";
  out = AddRuntimeMetadata(Host(), &cut);
  EXPECT_FALSE(out.found);
  EXPECT_EQ(out.malformed, 1);
  EXPECT_EQ(cut.name, "");
}

TEST(RuntimeMetadata, AbsentRuntimeIsNotAnError) {
  RuntimeRoots empty;
  empty.root = "/nonexistent-flowmesh-root";
  Workload w = ParseCgroupPath(std::string("/system.slice/docker-") + kWeb + ".scope");
  MetadataOutcome out = AddRuntimeMetadata(empty, &w);
  EXPECT_FALSE(out.found);
  EXPECT_EQ(out.malformed, 0);
  EXPECT_EQ(w.name, "");
}

TEST(RuntimeMetadata, FifoAndOversizedFilesAreRefusedNotRead) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("fm-runtime-" + std::to_string(getpid()));
  fs::path dir = root / "var/lib/docker/containers" / kWeb;
  fs::create_directories(dir);
  ASSERT_EQ(mkfifo((dir / "config.v2.json").c_str(), 0600), 0);
  RuntimeRoots roots;
  roots.root = root;
  Workload w = ParseCgroupPath(std::string("/system.slice/docker-") + kWeb + ".scope");
  MetadataOutcome out = AddRuntimeMetadata(roots, &w);  // would hang if it read the FIFO
  EXPECT_EQ(out.malformed, 1);
  EXPECT_THAT(out.error, HasSubstr("not a regular file"));

  fs::remove(dir / "config.v2.json");
  std::ofstream(dir / "config.v2.json") << "{\"Name\": \"/" << std::string(200, 'x') << "\"}";
  roots.max_file_bytes = 100;
  out = AddRuntimeMetadata(roots, &w);
  EXPECT_EQ(out.malformed, 1);
  EXPECT_THAT(out.error, HasSubstr("more than the 100"));
  EXPECT_EQ(w.name, "");
  fs::remove_all(root);
}

// A host root in /tmp holding one file, removed with the test.
struct TempRoot {
  std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("fm-names-" + std::to_string(getpid()));
  TempRoot() { std::filesystem::remove_all(root); }
  ~TempRoot() { std::filesystem::remove_all(root); }
  void Write(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text;
  }
  RuntimeRoots Roots() const {
    RuntimeRoots r;
    r.root = root;
    return r;
  }
};

const std::string kWebConfig = std::string("var/lib/docker/containers/") + kWeb + "/config.v2.json";
const std::string kSystemWeb = std::string("/system.slice/docker-") + kWeb + ".scope";
const std::string kPodWeb =
    std::string("/kubepods.slice/kubepods-pod10231429_28f6_11e8_8903_74dbd1a06fe0.slice/docker-") +
    kWeb + ".scope";

TEST(RuntimeMetadata, NamesNoRuntimeAllowsAreDroppedAndCounted) {
  TempRoot t;
  for (const std::string& bad : {std::string(300, 'x'), std::string("-rf"), std::string("a b"),
                                 std::string("web\nx"), std::string("caf\xc3\xa9")}) {
    t.Write(kWebConfig, NameConfig(bad));
    Workload w = ParseCgroupPath(kSystemWeb);
    MetadataOutcome out = AddRuntimeMetadata(t.Roots(), &w);
    EXPECT_EQ(w.name, "") << bad;
    EXPECT_EQ(w.id, kWeb);
    EXPECT_EQ(out.malformed, 1) << bad;
    EXPECT_THAT(out.error, HasSubstr("not a name the runtime allows"));
  }
  t.Write(kWebConfig, NameConfig(std::string(253, 'w')));
  Workload w = ParseCgroupPath(kSystemWeb);
  EXPECT_EQ(AddRuntimeMetadata(t.Roots(), &w).malformed, 0);
  EXPECT_EQ(w.name.size(), 253u);
}

// An image's LABEL lands in Config.Labels: only a container in a pod, with
// the label the dockershim sets, is named by them.
TEST(RuntimeMetadata, ImageLabelsDoNotNameAContainer) {
  TempRoot t;
  const std::string labels =
      "\"io.kubernetes.container.name\":\"api\",\"io.kubernetes.pod.name\":\"pay-7d9c\","
      "\"io.kubernetes.pod.namespace\":\"shop\"";
  t.Write(kWebConfig, "{\"Name\":\"/web\",\"Config\":{\"Labels\":{" + labels +
                          ",\"io.kubernetes.docker.type\":\"container\"}}}");
  Workload system = ParseCgroupPath(kSystemWeb);
  AddRuntimeMetadata(t.Roots(), &system);
  EXPECT_EQ(system.name, "web") << "not in a pod";

  t.Write(kWebConfig, "{\"Name\":\"/web\",\"Config\":{\"Labels\":{" + labels + "}}}");
  Workload pod = ParseCgroupPath(kPodWeb);
  AddRuntimeMetadata(t.Roots(), &pod);
  EXPECT_EQ(pod.name, "web") << "no io.kubernetes.docker.type";
  ASSERT_TRUE(pod.pod);
  EXPECT_EQ(pod.pod->name, "");
}

// The pod writes its own etc-hosts: a hostname that is no DNS label names nothing.
TEST(RuntimeMetadata, AnEtcHostsNameThatIsNoLabelIsDropped) {
  TempRoot t;
  t.Write("var/lib/kubelet/pods/18d34ce4-50c7-452c-9df8-53c4a3fdf363/etc-hosts",
          "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n10.1.2.3\t" +
              std::string(300, 'p') + "\n");
  Workload w = ParseCgroupPath("/kubepods/besteffort/pod18d34ce4-50c7-452c-9df8-53c4a3fdf363");
  MetadataOutcome out = AddRuntimeMetadata(t.Roots(), &w);
  EXPECT_EQ(out.malformed, 1);
  EXPECT_EQ(w.pod->name, "");
}

// A user owns user@<uid>.service's subtree and can mkdir a scope named
// after the system's container: no system file names it, and it never
// groups with that container.
TEST(RuntimeMetadata, AUsersContainerIsNotNamedByTheSystemsFiles) {
  Workload system = Named(std::string("/system.slice/docker-") + kWeb + ".scope");
  MetadataOutcome out;
  Workload user =
      Named(std::string("/user.slice/user-1000.slice/user@1000.service/app.slice/docker-") + kWeb +
                ".scope",
            &out);
  EXPECT_EQ(system.name, "web");
  EXPECT_TRUE(user.user_unit);
  EXPECT_FALSE(out.found);
  EXPECT_EQ(user.name, "");
  EXPECT_EQ(user.id, kWeb);
  user.name = system.name;  // even named alike
  EXPECT_NE(WorkloadGroupKey(user), WorkloadGroupKey(system));
  EXPECT_EQ(WorkloadGroupKey(user), "uc:" + WorkloadGroupKey(system));
}

TEST(RuntimeMetadata, UnitsAreLeftAlone) {
  Workload w = ParseCgroupPath("/system.slice/nginx.service");
  EXPECT_FALSE(AddRuntimeMetadata(Host(), &w).found);
  EXPECT_EQ(w, ParseCgroupPath("/system.slice/nginx.service"));
}

}  // namespace
}  // namespace flowmesh
