#!/usr/bin/env python3
"""The measuring half of bench/lab_scale.sh: N meshd started, converged, idle, killed, back.

Starts the meshd lab_scale.sh prepared, then times convergence, the idle cost,
looks, a kill -9 and a rejoin, and counts false positives.

lab_scale.sh makes the lab, writes WORK/hI/start.sh for each host (starts that
host's meshd in its namespace, its pid in WORK/hI/meshd.pid) and cleans up; this
only runs start.sh, meshctl, and reads /proc. Every figure is per node.
"""
import argparse
import concurrent.futures
import json
import os
import re
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
# meshctl calls at once while polling: enough to keep a round short, few
# enough not to crowd the meshd being measured on a 2-core machine.
POLL_WORKERS = 4


class BenchError(Exception):
    """A step did not happen in time or a tool failed; lab_scale.sh reports it."""


def say(msg):
    print(f"lab_scale: {msg}", flush=True)


def q(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))] if v else float("nan")


def med_max(values, fmt="{:.3g}"):
    if not values:
        return "n/a"
    return f"median {fmt.format(statistics.median(values))}, max {fmt.format(max(values))}"


class Lab:
    def __init__(self, args):
        self.work, self.n, self.prefix = args.work, args.hosts, args.prefix
        self.meshctl = args.meshctl
        self.pool = concurrent.futures.ThreadPoolExecutor(POLL_WORKERS)

    def name(self, i):
        return f"h{i}"

    def sock(self, i):
        return f"{self.work}/h{i}/meshd.sock"

    def pid(self, i):
        with open(f"{self.work}/h{i}/meshd.pid") as f:
            return int(f.read())

    def start(self, i):
        subprocess.run(["bash", f"{self.work}/h{i}/start.sh"], check=True)

    def ctl(self, i, *args, timeout=15):
        return subprocess.run([self.meshctl, "--socket", self.sock(i), *args],
                              capture_output=True, text=True, timeout=timeout)

    def status(self, i):
        try:
            r = self.ctl(i, "--json", "status", timeout=10)
            return json.loads(r.stdout) if r.returncode == 0 else None
        except (subprocess.TimeoutExpired, json.JSONDecodeError):
            return None

    def statuses(self, hosts):
        return dict(zip(hosts, self.pool.map(self.status, hosts)))

    def state_of(self, i, name):
        """NAME's state as host I sees it (alive, suspect, dead, left; gone when not listed),
        or None if I does not answer."""
        try:
            r = self.ctl(i, "--json", "peers", timeout=10)
            peers = json.loads(r.stdout) if r.returncode == 0 else []
        except (subprocess.TimeoutExpired, json.JSONDecodeError):
            return None
        return next((m["state"] for m in peers if m["name"] == name), "gone")

    def wait(self, hosts, pred, since, limit, what, required=True):
        """Polls HOSTS until pred(host) holds on each: {host: seconds after since}, and the
        hosts where it never did (a BenchError instead if required)."""
        left, done = set(hosts), {}
        deadline = time.monotonic() + limit
        while left and time.monotonic() <= deadline:
            for i, ok in zip(sorted(left), self.pool.map(pred, sorted(left))):
                if ok:
                    done[i] = time.monotonic() - since
                    left.discard(i)
            if left:
                time.sleep(0.2)
        if left:
            msg = f"{what}: not on {len(left)} of {len(hosts)} nodes after {limit:.0f} s"
            if required:
                raise BenchError(msg)
            say(f"{msg}; {self.describe(sorted(left)[:8])}")
        return done, sorted(left)

    def describe(self, hosts):
        def one(i):
            st = self.status(i)
            if st is None:
                return f"h{i} does not answer"
            m = st["mesh"]
            return f"h{i} sees alive {m['alive']}, suspect {m['suspect']}, dead {m['dead']}"
        return "; ".join(map(one, hosts))


def proc_sample(pid):
    """CPU ticks, RSS and PSS (KiB) and BPF map memlock (bytes) of one process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    # fdinfo, not `meshctl status`: it reads the same before and after meshd
    # reports its maps itself, and counts each map once however many fds hold it.
    maps = {}
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(f"{fd_dir}/{fd}") != "anon_inode:bpf-map":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f if ":" in line)
            maps[info["map_id"].strip()] = int(info["memlock"])
        except (OSError, KeyError, ValueError):
            continue
    return {"ticks": ticks, "rss": rss, "pss": pss, "memlock": sum(maps.values()),
            "maps": len(maps)}


def neigh_table():
    """The kernel's (all namespaces') ARP table counters, as `ip -s ntable` prints them."""
    out = subprocess.run(["ip", "-s", "ntable", "show", "name", "arp_cache"],
                         capture_output=True, text=True).stdout.split("\n\n")[0]
    get = lambda key: int(m.group(1)) if (m := re.search(rf"\b{key} (\d+)", out)) else -1
    return {k: get(k) for k in ("thresh3", "entries", "forced_gc_runs", "table_fulls")}


def dynamic_neigh(lab):
    """Neighbour entries in the lab's hosts that are not permanent (ARP-learned)."""
    total = 0
    for i in range(1, lab.n + 1):
        out = subprocess.run(["ip", "-n", f"{lab.prefix}-{i}", "-4", "neigh", "show"],
                             capture_output=True, text=True).stdout
        total += sum(1 for line in out.splitlines() if line and "PERMANENT" not in line)
    return total


def snapshot(lab, hosts):
    snap = {"t": time.monotonic(), "status": lab.statuses(hosts), "proc": {}}
    for i in hosts:
        snap["proc"][i] = proc_sample(lab.pid(i))
    return snap


def flap_counts(st):
    f = st["mesh"]["flapping"]
    return {k: f[k] for k in ("suspicions_raised", "refutations", "false_deaths", "flaps")}


def false_positives(snaps, hosts, label):
    """Suspicions and deaths of members that were not killed, between two snapshots."""
    a, b = snaps
    tot = {"suspicions_raised": 0, "refutations": 0, "false_deaths": 0, "flaps": 0}
    names, mute = set(), 0
    for i in hosts:
        sa, sb = (a["status"][i] if a else None), b["status"][i]
        if sb is None or (a and sa is None):
            mute += 1
            continue
        ca = flap_counts(sa) if sa else dict.fromkeys(tot, 0)
        for k, v in flap_counts(sb).items():
            tot[k] += v - ca[k]
        names.update(m["name"] for m in sb["mesh"]["flapping"]["members"])
    say(f"false positives, {label}: {tot['flaps']} alive->suspect->alive flaps and "
        f"{tot['false_deaths']} false deaths seen, {tot['refutations']} refutations "
        f"(members told they were suspected), {tot['suspicions_raised']} suspicions raised"
        + (f"; members that flapped: {', '.join(sorted(names)[:10])}" if names else "")
        + (f"; {mute} nodes did not answer status" if mute else ""))


def convergence(lab):
    n, hosts = lab.n, list(range(1, lab.n + 1))
    t0 = time.monotonic()
    lab.start(1)  # the seed first, so the others join at their first try
    lab.wait([1], lambda i: lab.status(i) is not None, t0, 30, "the seed's control socket")
    for i in hosts[1:]:
        lab.start(i)
    last = time.monotonic()
    say(f"started {n} meshd in {last - t0:.1f} s (the seed, then the others without waiting)")
    # Cheap checks while they start (a socket file, then the seed alone), so
    # that polling all N does not take the CPU their start-up needs.
    ready, _ = lab.wait(hosts, lambda i: os.path.exists(lab.sock(i)), last, 60 + n,
                        "control sockets")
    say(f"all control sockets there {max(ready.values()):.1f} s after the last start")
    sees_all = lambda i: (st := lab.status(i)) is not None and st["mesh"]["alive"] == n
    limit = 60 + n / 2
    lab.wait([1], sees_all, last, limit, f"convergence on the seed ({n} alive)", required=False)
    seen, left = lab.wait(hosts, sees_all, last, max(5, limit - (time.monotonic() - last)),
                          f"convergence ({n} alive)", required=False)
    if left:
        return False
    say(f"convergence: every member sees {n} alive {max(seen.values()):.1f} s after the last "
        f"start (median node {statistics.median(seen.values()):.1f} s)")
    return True


def idle(lab, minutes):
    hosts = list(range(1, lab.n + 1))
    nb0 = neigh_table()
    a = snapshot(lab, hosts)
    say(f"idle: measuring {minutes} min (no polling meanwhile)")
    time.sleep(60 * minutes)
    b = snapshot(lab, hosts)
    secs = b["t"] - a["t"]
    cpu, out, inn = [], [], []
    for i in hosts:
        cpu.append((b["proc"][i]["ticks"] - a["proc"][i]["ticks"]) / CLK_TCK / (secs / 60))
        if a["status"][i] and b["status"][i]:
            ma, mb = a["status"][i]["mesh"], b["status"][i]["mesh"]
            out.append((mb["bytes_out"] - ma["bytes_out"]) / secs)
            inn.append((mb["bytes_in"] - ma["bytes_in"]) / secs)
    p = b["proc"]
    say(f"idle CPU per node: {med_max(cpu, '{:.3f}')} s per minute "
        f"(all {lab.n}: {sum(cpu) / 60:.2f} CPUs)")
    say(f"RSS per node: {med_max([p[i]['rss'] / 1024 for i in hosts], '{:.1f}')} MiB; "
        f"PSS {med_max([p[i]['pss'] / 1024 for i in hosts], '{:.1f}')} MiB "
        f"(all {lab.n}: {sum(p[i]['pss'] for i in hosts) / 1024**2:.2f} GiB)")
    mem = [p[i]["memlock"] / 1024**2 for i in hosts]
    say(f"BPF map memory per node (fdinfo memlock, {p[1]['maps']} maps): "
        f"{med_max(mem, '{:.1f}')} MiB (all {lab.n}: {sum(mem) / 1024:.2f} GiB)")
    say(f"gossip per node: sent {med_max(out, '{:.0f}')} B/s, received "
        f"{med_max(inn, '{:.0f}')} B/s" + ("" if len(out) == len(hosts) else
                                           f" ({len(hosts) - len(out)} did not answer status)"))
    nb1 = neigh_table()
    say(f"neighbour table (all namespaces, gc_thresh3 {nb1['thresh3']}): {nb1['entries']} entries,"
        f" {dynamic_neigh(lab)} of the lab's not permanent; over the idle window "
        f"{nb1['forced_gc_runs'] - nb0['forced_gc_runs']} forced GC runs, "
        f"{nb1['table_fulls'] - nb0['table_fulls']} table-full refusals")


def looks(lab, rounds):
    """meshctl look of a small tree (curl clients -> an http.server) from three nodes."""
    server, clients = 2, [i for i in range(3, min(lab.n, 7) + 1)]
    log = open(f"{lab.work}/http.log", "w")
    subprocess.Popen(["ip", "netns", "exec", f"{lab.prefix}-{server}", "setsid", "python3", "-m",
                      "http.server", "8000", "--bind", f"10.213.0.{server}", "--directory",
                      "/var/empty"], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    target = f"10.213.0.{server}:8000"
    for _ in range(50):
        ok = all(subprocess.run(["ip", "netns", "exec", f"{lab.prefix}-{c}", "curl", "-s", "-o",
                                 "/dev/null", "--max-time", "2", f"http://{target}/"]).returncode == 0
                 for c in clients[:1])
        if ok:
            break
        time.sleep(0.2)
    else:
        raise BenchError(f"http.server on h{server} does not answer at {target} ({lab.work}/http.log)")
    for c in clients:
        subprocess.run(["ip", "netns", "exec", f"{lab.prefix}-{c}", "curl", "-s", "-o", "/dev/null",
                        "--max-time", "2", f"http://{target}/"])
    time.sleep(2)  # a flush interval and the endpoint gossip
    askers = sorted({1, lab.n // 2 or 1, lab.n})
    ms, bad = [], []
    for _ in range(rounds):
        for i in askers:
            t = time.monotonic()
            r = lab.ctl(i, "look", target)
            ms.append((time.monotonic() - t) * 1000)
            # Every client host in the tree, or the answer is incomplete.
            if r.returncode != 0 or any(f"10.213.0.{c} " not in r.stdout for c in clients):
                bad.append(f"h{i}: {(r.stdout + r.stderr)[-300:]}")
    say(f"look {target} ({len(clients)} client hosts), {rounds} rounds from "
        f"{', '.join(f'h{i}' for i in askers)}: median {q(ms, .5):.1f} ms, p99 {q(ms, .99):.1f} ms "
        f"(meshctl's start-up included); {len(bad)} of {len(ms)} failed or incomplete"
        + (f", e.g. {bad[0]!r}" if bad else ""))
    return not bad


def kill_and_rejoin(lab):
    n = lab.n
    # The last host the seed holds alive: in a mesh that never converged,
    # killing a member nobody sees would time nothing.
    victim = next((i for i in range(n, 1, -1) if lab.state_of(1, lab.name(i)) == "alive"), n)
    name = lab.name(victim)
    others = [i for i in range(1, n + 1) if i != victim]
    watchers = [i for i, st in zip(others, lab.pool.map(lambda i: lab.state_of(i, name), others))
                if st == "alive"]
    pid = lab.pid(victim)
    t = time.monotonic()
    os.kill(pid, 9)
    dead, left = lab.wait(watchers, lambda i: lab.state_of(i, name) in ("dead", "gone"), t, 120,
                          f"detection of {name}'s death", required=False)
    if dead:
        say(f"detection: kill -9 of {name}, dead on {len(dead)} of the {len(watchers)} others "
            f"that held it alive (of {n - 1}) after {max(dead.values()):.1f} s (median node "
            f"{statistics.median(dead.values()):.1f} s)")
    for _ in range(100):  # its maps and sockets go when the process is reaped
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.1)
    t = time.monotonic()
    lab.start(victim)
    back, left = lab.wait(others, lambda i: lab.state_of(i, name) == "alive", t, 120,
                          f"rejoin of {name}", required=False)
    if back:
        say(f"rejoin: {name} restarted, alive on {len(back)} of {n - 1} others after "
            f"{max(back.values()):.1f} s (median node {statistics.median(back.values()):.1f} s)")
    return victim, not left and len(dead) == n - 1


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", required=True)
    ap.add_argument("--hosts", type=int, required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--meshctl", required=True)
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--rounds", type=int, required=True)
    args = ap.parse_args()
    lab = Lab(args)
    hosts = list(range(1, lab.n + 1))
    try:
        converged = convergence(lab)
        start = snapshot(lab, hosts)
        false_positives((None, start), hosts, "start-up (start to convergence)")
        idle(lab, args.minutes)
        looked = looks(lab, args.rounds)
        before = snapshot(lab, hosts)
        victim, seen = kill_and_rejoin(lab)
        # The victim's counters restarted with it; the others' cover the whole run.
        survivors = [i for i in hosts if i != victim]
        end = snapshot(lab, survivors)
        false_positives((start, end), survivors, "after convergence (idle, looks, kill, rejoin)")
        say(f"... of which during the kill and rejoin: " + ", ".join(
            f"{k} {sum(flap_counts(end['status'][i])[k] - flap_counts(before['status'][i])[k] for i in survivors)}"
            for k in ("flaps", "false_deaths", "refutations")))
    except BenchError as e:
        say(f"FAILED: {e}")
        return 1
    if not converged or not seen or not looked:
        say("FAILED: the mesh did not converge, a death or a rejoin was not seen by all, "
            "or a look failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
