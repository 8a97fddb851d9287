"""What tracer_bench.py runs its arms in: a network namespace of their own
(meshd with --netns self, as in production), a second meshd for it to join (the
mesh on, as in production), optional idle pooled connections, and samplers of
a process's RSS and kernel BPF map memory.
"""
import os
import subprocess
import threading
import time

POOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "tools", "pool.py")


def sh(*args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip() or r.returncode}")
    return r.stdout


class Netns:
    """The bench's namespace and the peer's, joined by a veth pair.

    nsenter --net (not `ip netns exec`, which remounts /sys without the cgroup
    hierarchy) so meshd still names workloads as it does on a host."""

    def __init__(self, name, subnet="10.254.0"):
        self.name, self.peer = name, name + "-peer"
        self.addr, self.peer_addr = f"{subnet}.1", f"{subnet}.2"
        self.up = False

    def create(self):
        self.destroy(quiet=True)  # a run killed with -9 may have left them
        sh("ip", "netns", "add", self.name)
        sh("ip", "netns", "add", self.peer)
        self.up = True
        sh("ip", "-n", self.name, "link", "set", "lo", "up")
        sh("ip", "-n", self.peer, "link", "set", "lo", "up")
        sh("ip", "-n", self.name, "link", "add", "fmb0", "type", "veth", "peer", "name", "fmb1",
           "netns", self.peer)
        sh("ip", "-n", self.name, "addr", "add", self.addr + "/24", "dev", "fmb0")
        sh("ip", "-n", self.peer, "addr", "add", self.peer_addr + "/24", "dev", "fmb1")
        sh("ip", "-n", self.name, "link", "set", "fmb0", "up")
        sh("ip", "-n", self.peer, "link", "set", "fmb1", "up")

    def destroy(self, quiet=False):
        for ns in (self.name, self.peer):
            r = subprocess.run(["ip", "netns", "del", ns], capture_output=True, text=True)
            if r.returncode != 0 and not quiet and "No such file" not in r.stderr:
                print(f"note: could not remove netns {ns}: {r.stderr.strip()}")
        self.up = False

    def wrap(self, argv, peer=False):
        return ["nsenter", f"--net=/run/netns/{self.peer if peer else self.name}", *argv]


def write_key(path):
    import base64
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(base64.b64encode(os.urandom(32)).decode() + "\n")


def wait_line(p, prefix, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if line.startswith(prefix):
            return line
        if not line and p.poll() is not None:
            break
    raise RuntimeError(f"pool.py did not print {prefix!r} within {timeout}s")


class IdlePool:
    """N idle pooled connections inside the bench's namespace (both ends local,
    so 2N sockets), split over processes to stay under RLIMIT_NOFILE."""

    def __init__(self, netns, n, spawn, stop):
        self.netns, self.n, self.spawn, self.stop_fn = netns, n, spawn, stop
        self.procs = []

    def start(self):
        if self.n <= 0:
            return
        import resource
        files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        per = max(1000, (files - 100) * 3 // 4)
        parts = (self.n + per - 1) // per
        for _ in range(parts):
            s = self.spawn(self.netns.wrap(["python3", POOL, "serve", "--listen", "127.0.0.1:5432",
                                            "--name", "fm-bench-db"]),
                           new_session=False, stdout=subprocess.PIPE, text=True)
            self.procs.append(s)
            wait_line(s, "listening", 10)
        for i in range(parts):
            count = self.n // parts + (1 if i < self.n % parts else 0)
            c = self.spawn(self.netns.wrap(["python3", POOL, "clients", "--connect",
                                            "127.0.0.1:5432", "--count", str(count),
                                            "--source-base", f"127.1.{i}.1", "--sources", "16",
                                            "--quiet", "--name", "fm-bench-app"]),
                           new_session=False, stdout=subprocess.PIPE, text=True)
            self.procs.append(c)
            wait_line(c, "ready", 120)

    def stop(self):
        for p in reversed(self.procs):
            self.stop_fn(p, grace=5.0)
            if p.stdout:
                p.stdout.close()
        self.procs = []


def bpf_maps(pid):
    """{map name: memlock bytes} of every BPF map pid holds, as the kernel
    reports it in fdinfo (a map without preallocation reports what it uses)."""
    out = {}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-map":
                continue
            info = {}
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    info[k.strip()] = v.strip()
        except OSError:
            continue
        map_id = info.get("map_id", fd)
        name = map_name(map_id) or f"map{map_id}"
        out[name] = out.get(name, 0) + int(info.get("memlock", "0"))
    return out


_names = {}


def map_name(map_id):
    """A map's name from bpftool (fdinfo has none); cached by id."""
    if map_id in _names:
        return _names[map_id]
    name = None
    try:
        import json
        r = subprocess.run(["bpftool", "-j", "map", "show", "id", str(map_id)],
                           capture_output=True, text=True, timeout=5)
        if r.returncode == 0:
            name = json.loads(r.stdout).get("name")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass
    _names[map_id] = name
    return name


def thread_cpu(pid):
    """{thread name: CPU seconds} summed over pid's threads of each name."""
    out = {}
    tck = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tck
    return out


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


class Sampler:
    """Samples a process's RSS and BPF map memory every `every` seconds in a
    thread: the peak of each and the RSS series (t, MB) for a long run."""

    def __init__(self, pid, every=0.25):
        self.pid, self.every = pid, every
        self.series, self.map_peak, self.maps_at_peak = [], 0, {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self.t0 = time.monotonic()

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    def _run(self):
        n = 0
        while not self._stop.is_set():
            r = rss_mb(self.pid)
            if r is not None:
                self.series.append((time.monotonic() - self.t0, r))
            if n % 4 == 0:  # fdinfo reads are dearer: once a second
                maps = bpf_maps(self.pid)
                total = sum(maps.values())
                if total > self.map_peak:
                    self.map_peak, self.maps_at_peak = total, maps
            n += 1
            self._stop.wait(self.every)

    def growth_after(self, t):
        """Largest RSS after t seconds minus the largest before it (MB)."""
        before = [r for s, r in self.series if s <= t]
        after = [r for s, r in self.series if s > t]
        if not before or not after:
            return None
        return max(after) - max(before)
