#!/usr/bin/env python3
"""BPF side of meshd under churn: run time per program run, map memory, ring high-water mark.

Each variant is a meshd binary with its own flags, run in turn (round-robin,
order rotated each round) under the same loopback churn, with the store on.
BPF run-time statistics are on only while the churn runs, through the
BPF_ENABLE_STATS syscall: scoped to the file descriptor this script holds,
so kernel.bpf_stats_enabled is never changed. Needs root and bpftool (its pids column is not needed: meshd's
objects are found through /proc/PID/fdinfo).

  bench/bpf_cost.py --churn build/bench/churn --meshctl build/cli/meshctl \\
      --variant 'prealloc=/tmp/meshd-old' --variant 'now=build/node/daemon/meshd' \\
      --variant 'ring1M=build/node/daemon/meshd --ring-buffer-size 1M'
"""
import argparse
import ctypes
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tracer_bench import RunError, cleanup_children, spawn, stop, tail  # noqa: E402

SYS_BPF = 321  # x86_64
BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0


def enable_run_time_stats():
    """Returns an fd; run_time_ns is kept while it is open (and by no other switch of ours)."""
    libc = ctypes.CDLL(None, use_errno=True)
    attr = (ctypes.c_uint32 * 4)(BPF_STATS_RUN_TIME, 0, 0, 0)
    fd = libc.syscall(SYS_BPF, BPF_ENABLE_STATS, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        raise RunError(f"BPF_ENABLE_STATS failed: {os.strerror(ctypes.get_errno())}")
    return fd


def bpftool(*args):
    r = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def fdinfo_ids(pid, key):
    """The kernel ids (prog_id, map_id) of the BPF objects pid holds, from its fdinfo."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


def meshd_prog(pid):
    progs = [bpftool("prog", "show", "id", str(i)) for i in fdinfo_ids(pid, "prog_id")]
    progs = [p for p in progs if p.get("name", "").startswith("set_state")]
    if len(progs) != 1:
        raise RunError(f"expected one set_state program of meshd {pid}, found {len(progs)}")
    return progs[0]


def meshd_maps(pid):
    """{map name: bytes_memlock} of every map meshd holds, as the kernel reports it."""
    maps = [bpftool("map", "show", "id", str(i)) for i in fdinfo_ids(pid, "map_id")]
    return {m.get("name", str(m["id"])): m.get("bytes_memlock", 0) for m in maps}


def status(meshctl, sock):
    r = subprocess.run([meshctl, "--socket", sock, "status", "--json"], capture_output=True,
                       text=True, timeout=5)
    return json.loads(r.stdout) if r.returncode == 0 else None


def run_variant(args, label, argv, tmp, tag):
    sock, data = os.path.join(tmp, tag + ".sock"), os.path.join(tmp, tag + ".data")
    log = open(os.path.join(tmp, tag + ".log"), "w")
    meshd = spawn(argv + ["--probe-mode", "streaming", "--control-socket", sock,
                          "--ports", str(args.port), "--data-dir", data, "--log-level", "warn"],
                  stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 15
    while status(args.meshctl, sock) is None:
        if meshd.poll() is not None or time.monotonic() > deadline:
            raise RunError(f"{label}: meshd did not start:\n{tail(log.name)}")
        time.sleep(0.05)
    idle_maps = meshd_maps(meshd.pid)
    churn_argv = [args.churn, "--duration", str(args.duration), "--port", str(args.port),
                  "--threads", "2", "--concurrency", "16", "--addrs", "4", "--bytes", "1"]
    stats_fd = enable_run_time_stats()
    try:
        p0 = meshd_prog(meshd.pid)
        churn = subprocess.Popen(churn_argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        peak = dict(idle_maps)
        while churn.poll() is None:  # the maps at their fullest (NO_PREALLOC grows)
            for name, b in meshd_maps(meshd.pid).items():
                peak[name] = max(peak.get(name, 0), b)
            time.sleep(0.25)
        p1 = meshd_prog(meshd.pid)
    finally:
        os.close(stats_fd)
    churn_res = json.loads(churn.stdout.read())
    time.sleep(1.5)  # let meshd drain the ring
    st = status(args.meshctl, sock) or {}
    stop(meshd)
    runs = p1.get("run_cnt", 0) - p0.get("run_cnt", 0)
    ns = p1.get("run_time_ns", 0) - p0.get("run_time_ns", 0)
    detail = st.get("detail", {})
    return {"label": label, "prog": p1.get("name"), "runs": runs,
            "ns_per_run": ns / runs if runs else float("nan"),
            "conn_s": churn_res.get("connections", 0) / args.duration,
            "idle_maps": idle_maps, "peak_maps": peak, "lost": st.get("lost"),
            "lost_sockmap": detail.get("lost_sockmap"),
            "ring_hwm": detail.get("ring_high_water_bytes"),
            "loadavg": open("/proc/loadavg").read().split()[0]}


def mb(b):
    return f"{b / 1048576:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--churn", required=True)
    ap.add_argument("--meshctl", required=True)
    ap.add_argument("--variant", action="append", required=True,
                    help="LABEL=MESHD [FLAGS...]; repeat for each")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--port", type=int, default=18473)
    ap.add_argument("--json-out")
    args = ap.parse_args()
    variants = []
    for v in args.variant:
        label, _, cmd = v.partition("=")
        variants.append((label, shlex.split(cmd)))
    print(f"load average before: {open('/proc/loadavg').read().strip()}")
    results = []
    tmp = tempfile.mkdtemp(prefix="bpf_cost.")
    try:
        for rnd in range(args.rounds):
            order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
            for label, argv in order:
                r = run_variant(args, label, argv, tmp, f"{label}-{rnd}")
                r["round"] = rnd
                results.append(r)
                print(f"round {rnd} {label:12s} {r['prog']} {r['ns_per_run']:.0f} ns/run "
                      f"({r['runs']} runs) {r['conn_s']:,.0f} conn/s lost {r['lost']} "
                      f"sockmap-lost {r['lost_sockmap']} ring-hwm {r['ring_hwm']} "
                      f"maps idle {mb(sum(r['idle_maps'].values()))} MB "
                      f"peak {mb(sum(r['peak_maps'].values()))} MB load {r['loadavg']}",
                      flush=True)
    finally:
        cleanup_children()
    print(f"\n{'variant':12s} {'ns/run':>8s} {'conn/s':>8s} {'ring hwm':>10s}  maps idle / peak MB")
    for label, _ in variants:
        rs = [r for r in results if r["label"] == label]
        hwm = [r["ring_hwm"] for r in rs if r["ring_hwm"] is not None]
        last = rs[-1]
        maps = ", ".join(f"{k} {mb(v)}/{mb(last['peak_maps'].get(k, 0))}"
                         for k, v in last["idle_maps"].items())
        print(f"{label:12s} {statistics.median(r['ns_per_run'] for r in rs):8.0f} "
              f"{statistics.median(r['conn_s'] for r in rs):8,.0f} "
              f"{(str(max(hwm)) if hwm else '-'):>10s}  {maps}")
    print(f"load average after: {open('/proc/loadavg').read().strip()}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    try:
        main()
    except RunError as e:
        print(f"bpf_cost: {e}", file=sys.stderr)
        sys.exit(1)
