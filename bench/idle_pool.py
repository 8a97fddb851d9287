#!/usr/bin/env python3
"""The cost of accounting open connections: meshd with N idle pooled
connections, in its own network namespace (--netns self, as in production).

For each (connections, source addresses, --account-interval) case it starts a
fresh meshd beside an echo server and a client that holds N idle connections
(tests/tools/pool.py), lets it seed and settle, then measures over --minutes:
meshd CPU seconds per minute, flow deltas written per hour (rows the store
gets), store growth per hour (du of the data directory, WAL included) and RSS.
The reference is the same meshd with --account-interval 0s (no counter
readings: only the hourly checkpoint carry of each open connection).

Open connections are carried into the store once an hour (a checkpoint), so
a measurement shorter than an hour may hold no checkpoint at all: measure
with --minutes 60 (it then holds exactly one) for the rows and bytes an hour.

    python3 bench/idle_pool.py --meshd build/node/daemon/meshd \
        --meshctl build/cli/meshctl --cases 10000:16,50000:16,50000:50000

A case N:K opens N connections from K source addresses (127.1.0.1 up): K
distinct client addresses are K distinct flows on the server side, the worst
case for the store when K = N. Needs root (network namespace).
"""
import argparse
import ipaddress
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

NETNS = "fm-idle-bench"  # --netns-name changes it, to run two at once
POOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "tools", "pool.py")


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def in_ns(*args):
    return ["ip", "netns", "exec", NETNS, *args]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def status(meshctl, sock):
    r = sh(meshctl, "--socket", sock, "status", "--json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else None


def detail(st, key):
    return (st.get("detail") or {}).get(key, 0)


def wait_line(proc, prefix, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line
    raise SystemExit(f"pool.py did not print {prefix!r} within {timeout}s")


def run_case(args, n, sources, account):
    work = tempfile.mkdtemp(prefix="fm-idle-")
    procs = []
    try:
        # A process may hold at most RLIMIT_NOFILE files: split both ends
        # over as many processes as that takes (servers share the port).
        per = max(1000, (args.files_per_process - 100) * 3 // 4)
        parts = (n + per - 1) // per
        for _ in range(parts):
            server = subprocess.Popen(in_ns("python3", POOL, "serve", "--listen", "127.0.0.1:5432",
                                            "--name", "fm-idle-db"),
                                      stdout=subprocess.PIPE, text=True)
            procs.append(server)
            wait_line(server, "listening", 10)
        for i in range(parts):
            count = n // parts + (1 if i < n % parts else 0)
            # Each process takes its own share of the source addresses.
            first = ipaddress.ip_address("127.1.0.1") + i * sources // parts
            clients = subprocess.Popen(
                in_ns("python3", POOL, "clients", "--connect", "127.0.0.1:5432", "--count",
                      str(count), "--source-base", str(first),
                      "--sources", str(max(1, sources // parts)), "--quiet", "--name", "fm-idle-app"),
                stdout=subprocess.PIPE, text=True)
            procs.append(clients)
            wait_line(clients, "ready", 300)
        sock = os.path.join(work, "meshd.sock")
        meshd = subprocess.Popen(in_ns(args.meshd, "--netns", "self", "--node-name", "idle",
                                       "--data-dir", os.path.join(work, "data"),
                                       "--control-socket", sock, "--bind", "127.0.0.1:7946",
                                       "--account-interval", account, "--log-level", "warn"),
                                 stderr=open(os.path.join(work, "meshd.log"), "w"))
        procs.append(meshd)
        deadline = time.time() + 60
        while status(args.meshctl, sock) is None:
            if time.time() > deadline or meshd.poll() is not None:
                raise SystemExit("meshd did not start: " + open(os.path.join(work, "meshd.log")).read())
            time.sleep(0.2)
        time.sleep(args.settle)
        s0, c0, d0, t0 = status(args.meshctl, sock), cpu_seconds(meshd.pid), du(work), time.time()
        time.sleep(args.minutes * 60)
        s1, c1, d1, t1 = status(args.meshctl, sock), cpu_seconds(meshd.pid), du(work), time.time()
        minutes = (t1 - t0) / 60
        rss = rss_mb(meshd.pid)
        return {
            "connections": n, "sources": sources, "account_interval": account,
            "open_in_table": s1.get("open_connections"),
            "carried_per_hour": round((detail(s1, "carried_into_checkpoints") -
                                       detail(s0, "carried_into_checkpoints")) / minutes * 60),
            "checkpoints": detail(s1, "checkpoints") - detail(s0, "checkpoints"),
            "cpu_s_per_min": round((c1 - c0) / minutes, 3),
            "flow_deltas_per_hour": round((s1["store"]["flow_deltas"] - s0["store"]["flow_deltas"]) / minutes * 60),
            "store_growth_mb_per_hour": round((d1 - d0) / minutes * 60 / 1e6, 2),
            "rss_mb": round(rss.get("VmRSS", 0), 1), "peak_rss_mb": round(rss.get("VmHWM", 0), 1),
            "minutes": round(minutes, 2),
        }
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


def main():
    global NETNS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--meshctl", required=True)
    ap.add_argument("--cases", default="10000:16,50000:16,50000:50000",
                    help="N:K[,N:K...]: N connections from K source addresses")
    ap.add_argument("--intervals", default="10s,0s", help="--account-interval values to compare")
    ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--settle", type=float, default=20, help="seconds after start-up before measuring")
    ap.add_argument("--netns-name", default=NETNS, help="the network namespace to run in")
    args = ap.parse_args()
    NETNS = args.netns_name
    if os.geteuid() != 0:
        raise SystemExit("idle_pool.py needs root (a network namespace)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    args.files_per_process = hard
    sh("ip", "netns", "del", NETNS, check=False)
    sh("ip", "netns", "add", NETNS)
    try:
        sh(*in_ns("ip", "link", "set", "lo", "up"))
        for case in args.cases.split(","):
            n, k = (int(x) for x in case.split(":"))
            for interval in args.intervals.split(","):
                r = run_case(args, n, k, interval)
                print(json.dumps(r), flush=True)
    finally:
        sh("ip", "netns", "del", NETNS, check=False)


if __name__ == "__main__":
    main()
