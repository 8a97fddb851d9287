#!/usr/bin/env python3
"""Tracer overhead benchmark: loopback churn under no tracer, meshd and tcplife.

Runs the arms interleaved (round-robin, order rotated each round) in one run on
one machine, prints per-round figures, a summary table and the issue's targets
with PASS/MISS. See docs/bench.md. Exit code: 0 unless something failed to run.

As in production: the churn and meshd run in a network namespace of their own
(meshd --netns self, no --ports filter), meshd has its store on and has joined
a mesh (a second meshd in a neighbour namespace), and --idle-conns holds that
many idle pooled connections open through every arm. Arms: none (untraced),
meshd, meshd-flows (meshd --records off) and tcplife.
"""
import argparse
import ctypes
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import bench_env

CLK_TCK = os.sysconf("SC_CLK_TCK")
TRACEFS = "/sys/kernel/tracing"
ARMS = ("none", "meshd", "meshd-flows", "tcplife", "meshd-ring2m", "meshd-base")
DEFAULT_ARMS = ("none", "meshd", "meshd-flows", "tcplife")
MESHD_ARMS = ("meshd", "meshd-flows", "meshd-ring2m", "meshd-base")
MESH_SLACK = 50  # closes a round may hold beyond the churn's: meshd's own mesh syncs


class RunError(Exception):
    """Something the benchmark needs did not run; reported, and exit code 1."""


# ------------------------------------------------------------ processes ----

_libc = ctypes.CDLL(None, use_errno=True)
_children = []  # every Popen we started and have not reaped yet


def _die_with_parent():
    _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: no orphans if we are killed


def spawn(argv, new_session=True, **kw):
    # Own session: a terminal Ctrl-C reaches only us, and we stop children in order.
    # (Not for a child that makes its own process group, as pool.py does.)
    p = subprocess.Popen(argv, start_new_session=new_session, preexec_fn=_die_with_parent, **kw)
    _children.append(p)
    return p


def reap(p, rusage=False):
    """Waits for p; returns its rusage if asked (for the churn's own CPU)."""
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p in _children:
        _children.remove(p)
    return ru if rusage else None


def stop(p, sig=signal.SIGINT, grace=10.0):
    """Stops p with sig, then SIGKILL after grace; returns (cpu_s at exit, killed)."""
    if p.poll() is not None:
        if p in _children:
            _children.remove(p)
        return None, False
    p.send_signal(sig)
    killed = False
    deadline = time.monotonic() + grace
    while True:
        # WNOWAIT leaves a zombie whose /proc stat still holds the final CPU times.
        info = os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is not None:
            break
        if time.monotonic() > deadline and not killed:
            p.kill()
            killed = True
        time.sleep(0.01)
    cpu = proc_cpu(p.pid)
    reap(p)
    return cpu, killed


def cleanup_children():
    for p in list(_children):
        try:
            stop(p, signal.SIGTERM, grace=3.0)
        except (ProcessLookupError, ChildProcessError):
            pass
    _children.clear()


def proc_cpu(pid):
    """utime+stime of every thread of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def cpu_stat():
    """Machine-wide CPU seconds by kind, from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) / CLK_TCK for x in f.readline().split()[1:9]]
    return dict(zip(("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"),
                    vals))


def proc_hwm_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return None


def tail(path, n=8):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


# ---------------------------------------------------------------- churn ----

class Churn:
    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp

    def argv(self, duration, rate=0, port=None):
        a = self.args
        return [a.churn, "--duration", str(duration), "--rate", str(rate),
                "--port", str(port or a.port), "--connect-port", str(a.connect_port),
                "--threads", str(a.threads),
                "--server-threads", str(a.server_threads), "--concurrency", str(a.concurrency),
                "--addrs", str(a.addrs), "--bytes", str(a.bytes)]

    def start(self, duration, rate=0, tag="churn"):
        err = open(os.path.join(self.tmp, tag + ".err"), "w")
        p = spawn(wrap(self.args, self.argv(duration, rate)), stdout=subprocess.PIPE, stderr=err)
        p.err_path = err.name
        err.close()
        return p

    def finish(self, p):
        out = p.stdout.read()
        p.stdout.close()
        ru = reap(p, rusage=True)
        if p.returncode != 0:
            raise RunError(f"churn exited {p.returncode}: {tail(p.err_path)}")
        res = json.loads(out)
        res["churn_cpu_s"] = ru.ru_utime + ru.ru_stime
        return res

    def run(self, duration, tracer_pid=None):
        """Runs one churn; also accounts where the machine's CPU went meanwhile."""
        stat0 = cpu_stat()
        tracer0 = proc_cpu(tracer_pid) if tracer_pid else 0.0
        res = self.finish(self.start(duration))
        tracer1 = proc_cpu(tracer_pid) if tracer_pid else 0.0
        stat1 = cpu_stat()
        d = {k: stat1[k] - stat0[k] for k in stat0}
        # Loopback packets are processed in softirq, whose time (with IRQ time
        # accounting) is charged to no task: it holds the passive side's
        # tracepoint hits, so it belongs to the load.
        res["softirq_s"] = d["softirq"]
        res["other_cpu_s"] = max(0.0, d["user"] + d["nice"] + d["system"] + d["steal"]
                                 - res["churn_cpu_s"] - (tracer1 - tracer0))
        return res


# -------------------------------------------------------------- tracers ----

class Meshd:
    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp

    def start(self, tag, extra=(), binary=None):
        self.sock = os.path.join(self.tmp, tag + ".sock")
        self.log = os.path.join(self.tmp, tag + ".log")
        a = self.args
        with open(self.log, "w") as log:
            self.t_exec = time.monotonic()
            # The store is on, as in production: every close becomes a record.
            self.data = os.path.join(self.tmp, tag + ".data")
            argv = [binary or a.meshd, "--probe-mode", "streaming", "--control-socket", self.sock,
                    "--netns", a.meshd_netns, "--data-dir", self.data, "--log-level", "warn",
                    "--node-name", "bench", *extra]
            if a.meshd_ports:
                argv += ["--ports", self.ports()]
            if a.mesh_peer:
                argv += ["--cluster-key-file", a.mesh_peer.key, "--bind", a.mesh_peer.bind,
                         "--advertise", a.mesh_peer.bind.split(":")[0],
                         "--join", a.mesh_peer.peer_bind]
            self.p = spawn(wrap(a, argv), stdout=log, stderr=subprocess.STDOUT)

    def ports(self):
        # Through a NAT the client's socket has the port it dialled.
        a = self.args
        return str(a.port) + (f",{a.connect_port}" if a.connect_port else "")

    def wait_joined(self, timeout=15.0):
        """With the mesh on: until the peer is alive in meshd's view."""
        if not self.args.mesh_peer:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.status()
            if s and ((s.get("mesh") or {}).get("alive") or 0) >= 1:
                return
            time.sleep(0.1)
        raise RunError(f"meshd did not see its mesh peer alive within {timeout:.0f}s:\n"
                       + tail(self.log))

    def status(self, timeout=2.0):
        try:
            r = subprocess.run([self.args.meshctl, "--socket", self.sock, "status", "--json"],
                               capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def wait_ready(self, timeout=15.0, poll=0.05):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise RunError(f"meshd exited {self.p.returncode} before answering:\n"
                               + tail(self.log))
            s = self.status()
            if s is not None:
                return s
            time.sleep(poll)
        raise RunError(f"meshd did not answer status within {timeout:.0f}s:\n" + tail(self.log))

    def stop(self):
        cpu, killed = stop(self.p)
        if killed:
            raise RunError("meshd ignored SIGINT for 10 s and was killed:\n" + tail(self.log))
        if self.p.returncode != 0:
            print(f"  note: meshd exited {self.p.returncode}: {tail(self.log, 3).strip()}")
        return cpu


class MeshPeer:
    """The meshd the measured one joins: in the neighbour namespace, polling
    its own (empty) namespace, so it adds nothing to the churn's path."""

    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp
        ns = args.netns
        self.key = os.path.join(tmp, "cluster.key")
        self.bind, self.peer_bind = f"{ns.addr}:7946", f"{ns.peer_addr}:7946"
        self.sock = os.path.join(tmp, "peer.sock")
        self.log = os.path.join(tmp, "peer.log")

    def start(self):
        bench_env.write_key(self.key)
        with open(self.log, "w") as log:
            self.p = spawn(self.args.netns.wrap(
                [self.args.meshd, "--probe-mode", "polling", "--probe-interval", "10s",
                 "--netns", "self", "--control-socket", self.sock,
                 "--data-dir", os.path.join(self.tmp, "peer.data"), "--cluster-key-file", self.key,
                 "--bind", self.peer_bind, "--node-name", "bench-peer", "--log-level", "warn"],
                peer=True), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not os.path.exists(self.sock):
            if self.p.poll() is not None or time.monotonic() > deadline:
                raise RunError("the mesh peer meshd did not start:\n" + tail(self.log))
            time.sleep(0.05)


def online_cpus():
    """Number of online CPUs, from /sys/devices/system/cpu/online ("0-1,4")."""
    n = 0
    with open("/sys/devices/system/cpu/online") as f:
        for part in f.read().strip().split(","):
            lo, _, hi = part.partition("-")
            n += int(hi or lo) - int(lo) + 1
    return n


def tcplife_ready(pid, ncpu):
    """tcplife is attached once it holds its bpf_link and one perf buffer per CPU."""
    links = perf = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            links += target == "anon_inode:bpf_link"
            perf += target == "anon_inode:[perf_event]"
    except OSError:
        return False
    return links >= 1 and perf >= ncpu + 1


def count_tcplife(out_path, err_path, port):
    records = 0
    with open(out_path, errors="replace") as f:
        for line in f:
            cols = line.split()
            # ... LADDR LPORT RADDR RPORT TX_KB RX_KB MS: count from the right, COMM may hold spaces
            if len(cols) >= 8 and port in (cols[-6], cols[-4]):
                records += 1
    lost = 0
    with open(err_path, errors="replace") as f:
        for line in f:
            if line.startswith("lost ") and "events on CPU" in line:
                lost += int(line.split()[1])
    return records, lost


# ----------------------------------------------------------------- arms ----

def drain_meshd(m, base_closes, expected, min_wait=1.0, max_wait=10.0):
    """Waits until meshd's close count reaches expected or stops moving."""
    t0 = time.monotonic()
    last, last_change = None, t0
    while True:
        time.sleep(0.1)
        s = m.status()
        now = time.monotonic()
        if s is not None:
            closes = s.get("closes", 0)
            if closes != last:
                last, last_change = closes, now
            if now - t0 >= min_wait and (closes - base_closes >= expected or now - last_change > 1.0):
                return s
        if now - t0 > max_wait:
            return s if s is not None else m.status()


def drain_store(m, s, max_wait=30.0):
    """Waits until the store's record count stops moving (flushes every second)."""
    deadline = time.monotonic() + max_wait
    last = None
    while time.monotonic() < deadline:
        time.sleep(1.2)
        cur = m.status()
        if cur is None:
            return s
        s = cur
        records = (s.get("store") or {}).get("records")
        pending = (s.get("store") or {}).get("pending_records", 0)
        if records == last and not pending:
            return s
        last = records
    return s


def arm_none(churn, meshd, args, tmp, tag):
    return churn.run(args.duration)


def arm_meshd(churn, meshd, args, tmp, tag, extra=(), binary=None):
    meshd.start(tag, extra, binary)
    meshd.wait_ready()
    meshd.wait_joined()
    time.sleep(1.0)  # settled: the seed written, the first gossip rounds done
    s0 = meshd.status()
    if s0 is None:
        raise RunError("meshd stopped answering status before the churn:\n" + tail(meshd.log))
    res = {"idle_rss_mb": bench_env.rss_mb(meshd.p.pid),
           "idle_maps": bench_env.bpf_maps(meshd.p.pid)}
    cpu0 = proc_cpu(meshd.p.pid)
    threads0 = bench_env.thread_cpu(meshd.p.pid)
    with bench_env.Sampler(meshd.p.pid) as sampler:
        res.update(churn.run(args.duration, meshd.p.pid))
        expected = 2 * res["connections"]
        s1 = drain_meshd(meshd, s0.get("closes", 0), expected)
        s1 = drain_store(meshd, s1)
    res["rss_mb"] = proc_hwm_mb(meshd.p.pid)
    threads1 = bench_env.thread_cpu(meshd.p.pid)
    res["threads_cpu_s"] = {k: v - threads0.get(k, 0.0) for k, v in threads1.items()}
    res["maps_peak"] = sampler.map_peak
    res["maps_at_peak"] = sampler.maps_at_peak
    res["rss_growth_after_60s"] = sampler.growth_after(60.0) if args.duration >= 120 else None
    res["rss_series"] = sampler.series[::20]  # every 5 s, for --json-out
    cpu1 = meshd.stop()
    if s1 is None:
        raise RunError("meshd stopped answering status after the churn:\n" + tail(meshd.log))
    res["tracer_cpu_s"] = cpu1 - cpu0
    # The bench's namespace holds the churn, the idle pool (open before meshd
    # started, so no close) and meshd's own mesh syncs: see MESH_SLACK.
    res["records"] = s1.get("closes", 0) - s0.get("closes", 0)
    res["opens"] = s1.get("opens", 0) - s0.get("opens", 0)
    res["lost"] = s1.get("lost", 0)
    store = s1.get("store") or {}
    res["stored"] = store.get("records", 0) - ((s0.get("store") or {}).get("records", 0))
    res["store_bytes"] = store.get("disk_bytes", 0)
    res["store_dropped"] = store.get("dropped_records", 0) + store.get("write_errors", 0)
    res["store_pending"] = store.get("pending_records", 0)
    res["write_stalls"] = store.get("write_stalls", 0)
    # Anything meshd counts as degraded (DESIGN.md: logged and counted) is shown.
    odd = {k: s1.get(k) for k in ("malformed", "close_without_open", "close_unattributed",
                                  "reconstructed_closes", "late_closes_dropped")}
    odd.update(s1.get("detail") or {})
    odd["store_duplicates_ignored"] = (s1.get("store") or {}).get("duplicates_ignored")
    res["meshd_anomalies"] = {k: v for k, v in odd.items()
                              if isinstance(v, (int, float)) and v and k != "kernel_events"
                              and not k.startswith("control_")}
    return res


def arm_tcplife(churn, meshd, args, tmp, tag):
    out, err = os.path.join(tmp, tag + ".out"), os.path.join(tmp, tag + ".err")
    with open(out, "w") as fo, open(err, "w") as fe:
        p = spawn([args.tcplife], stdout=fo, stderr=fe)
    deadline = time.monotonic() + 15
    while not tcplife_ready(p.pid, online_cpus()):
        if p.poll() is not None:
            raise RunError(f"tcplife exited {p.returncode}:\n" + tail(err))
        if time.monotonic() > deadline:
            raise RunError("tcplife did not attach within 15 s:\n" + tail(err))
        time.sleep(0.02)
    time.sleep(0.1)  # header printed and polling
    cpu0 = proc_cpu(p.pid)
    res = churn.run(args.duration, p.pid)
    time.sleep(1.0)  # the same minimum drain as meshd; tcplife polls every 100 ms
    res["rss_mb"] = proc_hwm_mb(p.pid)
    cpu1, killed = stop(p)
    if killed:
        raise RunError("tcplife ignored SIGINT and was killed")
    res["tracer_cpu_s"] = cpu1 - cpu0
    res["records"], res["lost"] = count_tcplife(out, err, str(args.port))
    return res


def arm_meshd_flows(churn, meshd, args, tmp, tag):
    return arm_meshd(churn, meshd, args, tmp, tag, extra=("--records", "off"))


def arm_meshd_ring2m(churn, meshd, args, tmp, tag):
    # The ring buffer is mapped twice into meshd (16 MB of RSS at the default
    # 8M): what a 2M ring saves, and whether it loses events at this churn.
    return arm_meshd(churn, meshd, args, tmp, tag, extra=("--ring-buffer-size", "2M"))


def arm_meshd_base(churn, meshd, args, tmp, tag):
    # Another build of meshd (--meshd-base), defaults and all: a change
    # measured against the build before it in one run, on the same churn.
    return arm_meshd(churn, meshd, args, tmp, tag, binary=args.meshd_base)


ARM_FUNCS = {"none": arm_none, "meshd": arm_meshd, "meshd-flows": arm_meshd_flows,
             "tcplife": arm_tcplife, "meshd-ring2m": arm_meshd_ring2m,
             "meshd-base": arm_meshd_base}


def wrap(args, argv):
    """argv run in the bench's namespace (or as it is with --netns-name '')."""
    return args.netns.wrap(argv) if args.netns else argv


def measure_startup(churn, meshd, args, tmp, trial):
    """meshd exec -> first recorded event, while a slow churn is already running."""
    bg = churn.start(duration=20, rate=args.startup_rate, tag=f"startup-churn-{trial}")
    try:
        time.sleep(0.5)
        meshd.start(f"startup-{trial}")
        t_answer = t_event = None
        first = None
        deadline = meshd.t_exec + 10
        while time.monotonic() < deadline and t_event is None:
            if meshd.p.poll() is not None:
                raise RunError(f"meshd exited {meshd.p.returncode}:\n" + tail(meshd.log))
            s = meshd.status(timeout=1.0)
            now = time.monotonic()
            if s is not None:
                t_answer = t_answer or now
                # Not opens: meshd counts connections seeded from its start-up
                # sock_diag snapshot as opens; a close always comes from an event.
                if s.get("closes", 0) > 0:
                    t_event, first = now, s
                    break
            time.sleep(0.01)
        if first is None:
            raise RunError("meshd recorded no event within 10 s of start:\n" + tail(meshd.log))
        # meshd may fill first_event_after_ms only once the event is processed
        internal = first.get("first_event_after_ms")
        if internal is None:
            s = meshd.status()
            internal = s.get("first_event_after_ms") if s else None
        meshd.stop()
    finally:
        stop(bg)
        bg.stdout.close()
    return {"internal_ms": internal,
            "answer_ms": (t_answer - meshd.t_exec) * 1000,
            "external_ms": (t_event - meshd.t_exec) * 1000}


# -------------------------------------------------------------- reports ----

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def per_100k(cpu, conns):
    return None if cpu is None or not conns else cpu / conns * 100000


def summarize(results, startup, args):
    none_cps = median(r["conn_per_s"] for r in results.get("none", []))
    rows, summary = [], {}
    for arm in args.arms:
        rs = results.get(arm, [])
        if not rs:
            continue
        cps = median(r["conn_per_s"] for r in rs)
        conns = sum(r["connections"] for r in rs)
        s = {
            "cps": cps,
            "ratio": cps / none_cps if none_cps else None,
            "tracer_cpu": per_100k(sum(r["tracer_cpu_s"] for r in rs), conns)
            if arm != "none" else None,
            "churn_cpu": per_100k(sum(r["churn_cpu_s"] + r["softirq_s"] for r in rs), conns),
            "other_cpu": median(r["other_cpu_s"] for r in rs),
            "records": sum(r.get("records", 0) for r in rs) if arm != "none" else None,
            "expected": 2 * conns,
            "lost": sum(r.get("lost", 0) for r in rs) if arm != "none" else None,
            "rss": max((r.get("rss_mb") or 0) for r in rs) if arm != "none" else None,
            "idle_rss": max((r.get("idle_rss_mb") or 0) for r in rs) if arm in MESHD_ARMS
            else None,
            "maps_mb": max(r.get("maps_peak", 0) for r in rs) / 2**20 if arm in MESHD_ARMS
            else None,
            "maps_idle_mb": max(sum(r.get("idle_maps", {}).values()) for r in rs) / 2**20
            if arm in MESHD_ARMS else None,
            "maps_at_peak": max(rs, key=lambda r: r.get("maps_peak", 0)).get("maps_at_peak")
            if arm in MESHD_ARMS else None,
            "rss_growth": max((r.get("rss_growth_after_60s") for r in rs
                               if r.get("rss_growth_after_60s") is not None), default=None),
            "errors": sum(r["errors"] for r in rs),
            # meshd records every connection in its namespace: the churn's, and
            # a few of its own (the mesh's push-pull syncs over TCP).
            "all_complete": all(2 * r["connections"] <= r.get("records", 0)
                                <= 2 * r["connections"] + MESH_SLACK for r in rs),
            "stored": sum(r.get("stored", 0) for r in rs) if arm == "meshd" else None,
            "store_bytes": max((r.get("store_bytes") or 0) for r in rs) if arm == "meshd" else None,
            "store_dropped": sum(r.get("store_dropped", 0) for r in rs) if arm == "meshd" else None,
        }
        summary[arm] = s
        rec = "-" if s["records"] is None else (
            f"{s['records']}/{s['expected']} ({100.0 * s['records'] / max(s['expected'], 1):.2f}%)")
        rows.append((arm, fmt(cps, ",.0f"), fmt(s["ratio"], ".3f"), fmt(s["tracer_cpu"], ".3f"),
                     fmt(s["churn_cpu"], ".3f"), rec, fmt(s["lost"], "d"), fmt(s["rss"], ".1f"),
                     fmt(s["idle_rss"], ".1f"), fmt(s["maps_mb"], ".1f"), str(s["errors"]),
                     fmt(s["other_cpu"], ".2f")))
    head = ("arm", "conn/s", "vs none", "tracer CPU", "load CPU", "records/expected", "lost",
            "peak RSS MB", "idle RSS MB", "BPF maps MB", "errors", "other CPU")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print("\n== summary ({} round(s) x {:g} s, port {}, {} client thread(s), {} addr(s), "
          "{} byte(s) each way, {} idle connection(s), {}, {}) ==".format(
              args.rounds, args.duration, args.port, args.threads, args.addrs, args.bytes,
              args.idle_conns, f"netns {args.netns.name}" if args.netns else "this netns",
              "mesh joined" if args.mesh_peer else "mesh off"))
    for r in (head, *rows):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    print("conn/s: median over rounds. tracer CPU: the tracer's utime+stime per 100k connections "
          "(s).\nload CPU: churn's own CPU plus softirq per 100k connections (s), where the "
          "tracepoint programs run.\nidle RSS: meshd's RSS settled before the churn. BPF maps: "
          "peak memlock of meshd's maps (kernel memory, not in RSS).\nerrors: churn errors. "
          "other CPU: median CPU s per round used by anything else on the machine.")
    for arm in MESHD_ARMS:
        s = summary.get(arm)
        if s and s["maps_at_peak"]:
            parts = ", ".join(f"{k} {v / 2**20:.2f}" for k, v in sorted(s["maps_at_peak"].items()))
            print(f"{arm} BPF maps at peak (MB): {parts}; idle {s['maps_idle_mb']:.2f} MB total")
        rs = results.get(arm, [])
        if rs:
            total = {}
            for r in rs:
                for k, v in (r.get("threads_cpu_s") or {}).items():
                    total[k] = total.get(k, 0.0) + v
            conns = sum(r["connections"] for r in rs)
            busy = sorted(((v, k) for k, v in total.items() if v > 0), reverse=True)
            print(f"{arm} CPU by thread (s per 100k connections): " + ", ".join(
                f"{k} {per_100k(v, conns):.3f}" for v, k in busy))
        if s and s["rss_growth"] is not None:
            print(f"{arm} RSS growth after the first minute: {s['rss_growth']:+.1f} MB")
    noisy = max((s["other_cpu"] or 0) for s in summary.values()) if summary else 0
    if noisy > 0.05 * args.duration * online_cpus():
        print(f"note: other work on the machine used up to {noisy:.1f} CPU s per {args.duration:g} s"
              " round; the figures are noisier than usual")
    if startup:
        print("meshd start-up (median of {}): first event {} ms after start by meshd's clock "
              "(first_event_after_ms); externally, exec -> status answers {:.0f} ms, "
              "exec -> first close visible {:.0f} ms".format(
                  len(startup), fmt(median(s["internal_ms"] for s in startup), ".0f"),
                  median(s["answer_ms"] for s in startup),
                  median(s["external_ms"] for s in startup)))
    return summary


def targets(summary, startup):
    m, t, n = (summary.get(a) for a in ("meshd", "tcplife", "none"))
    out = []

    def check(name, ok, detail):
        out.append(("n/a " if ok is None else "PASS" if ok else "MISS", name, detail))

    for arm, s in ((a, summary.get(a)) for a in MESHD_ARMS):
        if not s:
            continue
        check(f"{arm} records 100%, zero lost", s["all_complete"] and s["lost"] == 0,
              f"{s['records']}/{s['expected']} closes, {s['lost']} lost")
        check(f"{arm} conn/s >= 95% of untraced", s["ratio"] >= 0.95 if n else None,
              f"{s['ratio']:.1%}" if n else "no untraced arm")
        check(f"{arm} CPU <= 0.25 s per 100k connections", s["tracer_cpu"] <= 0.25,
              f"{s['tracer_cpu']:.3f} s/100k" + (f" (tcplife {t['tracer_cpu']:.3f})" if t else ""))
        check(f"{arm} peak RSS < 40 MB", s["rss"] < 40, f"{s['rss']:.1f} MB")
        check(f"{arm} idle RSS < 25 MB", s["idle_rss"] < 25, f"{s['idle_rss']:.1f} MB")
        check(f"{arm} BPF map memory < 16 MB", s["maps_mb"] < 16, f"{s['maps_mb']:.1f} MB peak")
        if s["rss_growth"] is not None:
            check(f"{arm} no RSS growth after the first minute", s["rss_growth"] <= 1.0,
                  f"{s['rss_growth']:+.1f} MB")
    if m:
        check("store on: every record stored, no write errors",
              m["expected"] <= m["stored"] <= m["records"] and m["store_dropped"] == 0,
              f"{m['stored']}/{m['records']} records in RocksDB, "
              f"{m['store_bytes'] / max(m['stored'], 1):.1f} bytes/record on disk before "
              f"compaction, {m['store_dropped']} dropped or failed")
    if startup:
        internal = median(s["internal_ms"] for s in startup)
        external = median(s["external_ms"] for s in startup)
        ok = internal is not None and internal < 300 and external < 300
        check("start-up to first event < 0.3 s", ok,
              f"{fmt(internal, '.0f')} ms (meshd), {external:.0f} ms (external)")
    print("\n== targets (issue 17) ==")
    if not out:
        print("n/a   no meshd arm in this run")
    for verdict, name, detail in out:
        print(f"{verdict}  {name}: {detail}")


def print_round(arm, r):
    extra = ""
    if arm != "none":
        extra = (f", tracer CPU {r['tracer_cpu_s']:.2f} s, records {r['records']}/"
                 f"{2 * r['connections']}, lost {r['lost']}, RSS {fmt(r.get('rss_mb'), '.1f')} MB")
        if "maps_peak" in r:
            extra += (f" (idle {fmt(r.get('idle_rss_mb'), '.1f')}), BPF maps "
                      f"{r['maps_peak'] / 2**20:.1f} MB")
        if "stored" in r:
            extra += f", stored {r['stored']} ({r['store_bytes'] / 1e6:.1f} MB)"
            if r.get("store_pending") or r.get("write_stalls"):
                extra += (f" ({r['store_pending']} still pending, {r['write_stalls']} RocksDB "
                          "write stalls)")
    if r.get("meshd_anomalies"):
        extra += f", meshd counted {r['meshd_anomalies']}"
    errs = f", errors {r['errors']} {r['error_kinds']}" if r["errors"] else ""
    print(f"  {arm:8} {r['connections']:>9} conns {r['conn_per_s']:>10,.0f}/s"
          f"  churn CPU {r['churn_cpu_s']:.2f} s + softirq {r['softirq_s']:.2f} s{extra}{errs}"
          f", other CPU {r['other_cpu_s']:.2f} s", flush=True)


# ----------------------------------------------------------------- main ----

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--churn", required=True, help="path to the churn binary")
    ap.add_argument("--meshd", help="path to meshd")
    ap.add_argument("--meshctl", help="path to meshctl")
    ap.add_argument("--tcplife", default="/usr/sbin/tcplife")
    ap.add_argument("--arms", default=",".join(DEFAULT_ARMS),
                    help="comma list of " + ",".join(ARMS) + " (meshd-flows: --records off; "
                         "meshd-ring2m: --ring-buffer-size 2M; meshd-base: the --meshd-base "
                         "binary)")
    ap.add_argument("--meshd-base",
                    help="another meshd (e.g. the previous commit's build) for the meshd-base arm")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of churn per arm")
    ap.add_argument("--port", type=int, default=18473)
    ap.add_argument("--meshd-netns", default="self",
                    help="meshd's --netns: self (only the one it runs in, as in production) or "
                         "all (every namespace: use with --meshd-ports)")
    ap.add_argument("--meshd-ports", action="store_true",
                    help="give meshd --ports (the churn's): the filtered setting of earlier "
                         "issues; by default meshd records every connection, unfiltered")
    ap.add_argument("--netns-name", default="fm-tracer-bench",
                    help="network namespace every arm runs in (created, then removed; a second "
                         "NAME-peer holds the mesh peer); '' = this one")
    ap.add_argument("--no-mesh", action="store_true",
                    help="meshd without the mesh (by default it joins a second meshd, as in "
                         "production)")
    ap.add_argument("--idle-conns", type=int, default=0,
                    help="idle pooled connections held open through every arm (e.g. 10000, "
                         "50000): the cost of tracking and accounting them")
    ap.add_argument("--connect-port", type=int, default=0,
                    help="clients connect here (a NAT rule sends it to --port); 0 = --port")
    ap.add_argument("--threads", type=int, default=2, help="churn client threads")
    ap.add_argument("--server-threads", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=16, help="in flight per client thread")
    ap.add_argument("--addrs", type=int, default=4, help="destinations 127.0.0.1..N")
    ap.add_argument("--bytes", type=int, default=1, help="bytes each way per connection")
    ap.add_argument("--startup-trials", type=int, default=3)
    ap.add_argument("--startup-rate", type=int, default=200)
    ap.add_argument("--meshd-subnet", default="10.254.0",
                    help="first three octets of the bench's veth pair (/24) for the mesh")
    ap.add_argument("--json-out", help="also write every measurement to this file")
    ap.add_argument("--keep-logs", action="store_true", help="keep the temp dir with logs")
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 round of 3 s")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.duration, args.startup_trials = 1, 3.0, 1
    args.arms = [a for a in args.arms.split(",") if a]
    bad = [a for a in args.arms if a not in ARMS]
    if bad or not (1 <= args.rounds <= 20) or not (0.5 <= args.duration <= 600):
        ap.error(f"bad --arms {bad}, --rounds 1..20 or --duration 0.5..600")
    if not 0 <= args.idle_conns <= 100000:
        ap.error("--idle-conns must be 0..100000")
    if args.idle_conns and not args.netns_name:
        ap.error("--idle-conns needs the bench's namespace: leave --netns-name at its default")
    if args.netns_name == "" and not args.no_mesh:
        ap.error("the mesh peer needs the bench's namespaces: give --no-mesh with --netns-name ''")
    if args.meshd_netns == "all" and not args.meshd_ports:
        ap.error("--meshd-netns all records the whole machine: add --meshd-ports to filter")
    args.netns = bench_env.Netns(args.netns_name, args.meshd_subnet) if args.netns_name else None
    args.mesh_peer = None
    need = [("--churn", args.churn)]
    if any(a in MESHD_ARMS for a in args.arms):
        need += [("--meshd", args.meshd), ("--meshctl", args.meshctl)]
    if "tcplife" in args.arms:
        need.append(("--tcplife", args.tcplife))
    if "meshd-base" in args.arms:
        need.append(("--meshd-base", args.meshd_base))
    for flag, path in need:
        if not path or not os.access(path, os.X_OK):
            ap.error(f"{flag} {path!r} is not an executable; build it or leave its arm out "
                     f"with --arms")
    return args


def warn_about_noise(args):
    others = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in ("meshd", "tcplife", "churn"):
            others.append(f"{comm}[{pid}]")
    if others:
        print(f"warning: already running, will skew every arm: {', '.join(others)}")
    before = cpu_stat()
    time.sleep(1.0)
    after = cpu_stat()
    busy = sum(after[k] - before[k] for k in after if k not in ("idle", "iowait"))
    if busy > 0.05 * online_cpus():
        print(f"warning: other work used {busy:.2f} CPU s in the idle second before the run; "
              "it skews the figures (see the 'other CPU' column)")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main():
    args = parse_args()
    if os.geteuid() != 0:
        print("tracer_bench: tracers need root (CAP_BPF, CAP_PERFMON); run as root",
              file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="flowmesh-bench-")
    mounted_tracefs = False
    failed = []
    # Explicit, so cleanup also runs when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if "tcplife" in args.arms and not os.path.ismount(TRACEFS):
            subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], check=True)
            mounted_tracefs = True
        warn_about_noise(args)
        if args.netns:
            args.netns.create()
        if not args.no_mesh and any(a in MESHD_ARMS for a in args.arms):
            args.mesh_peer = MeshPeer(args, tmp)
            args.mesh_peer.start()
        pool = bench_env.IdlePool(args.netns, args.idle_conns, spawn, stop)
        if args.idle_conns:
            print(f"opening {args.idle_conns} idle connections ...", flush=True)
            t0 = time.monotonic()
            try:
                pool.start()
            except RuntimeError as e:
                raise RunError(f"idle connections: {e}") from e
            print(f"  open after {time.monotonic() - t0:.1f} s", flush=True)
        churn, meshd = Churn(args, tmp), Meshd(args, tmp)
        print(f"churn: {' '.join(churn.argv(args.duration))}")
        churn.run(1.0)  # warm-up, not measured
        results = {a: [] for a in args.arms}
        for rnd in range(args.rounds):
            k = rnd % len(args.arms)
            order = args.arms[k:] + args.arms[:k]
            print(f"round {rnd + 1}/{args.rounds}: {' -> '.join(order)}", flush=True)
            for arm in order:
                try:
                    r = ARM_FUNCS[arm](churn, meshd, args, tmp, f"{arm}-{rnd}")
                except RunError as e:
                    print(f"  {arm:8} FAILED: {e}", flush=True)
                    failed.append(arm)
                    cleanup_children()
                    continue
                results[arm].append(r)
                print_round(arm, r)
        startup = []
        if any(a in MESHD_ARMS for a in args.arms):
            for trial in range(args.startup_trials):
                try:
                    startup.append(measure_startup(churn, meshd, args, tmp, trial))
                    s = startup[-1]
                    print(f"  start-up trial {trial + 1}: meshd says {fmt(s['internal_ms'], '.0f')}"
                          f" ms; external: answers at {s['answer_ms']:.0f} ms, first close at "
                          f"{s['external_ms']:.0f} ms", flush=True)
                except RunError as e:
                    print(f"  start-up trial {trial + 1} FAILED: {e}", flush=True)
                    failed.append("startup")
                    cleanup_children()
        summary = summarize(results, startup, args)
        targets(summary, startup)
        if args.json_out:
            with open(args.json_out, "w") as f:
                json.dump({"args": vars(args), "rounds": results, "startup": startup}, f, indent=1,
                          default=str)
        if failed:
            print(f"\nfailed to run: {', '.join(sorted(set(failed)))}")
        return 1 if failed else 0
    except RunError as e:
        print(f"tracer_bench: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip cleanup
        cleanup_children()
        if args.netns and args.netns.up:
            args.netns.destroy()
        if mounted_tracefs:
            if subprocess.run(["umount", TRACEFS]).returncode != 0:
                print(f"note: could not unmount {TRACEFS}; it was mounted by this run",
                      file=sys.stderr)
        if args.keep_logs:
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
