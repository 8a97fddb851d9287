#!/usr/bin/env python3
"""What connection tracking costs meshd at the churn benchmark's rate (issue 14).

In a network namespace of its own, alternating round by round:
  plain  the churn to 127.0.0.1..N:PORT, no netfilter rule (the kernel tracks
         nothing, meshd reads no conntrack event);
  dnat   the churn to :CPORT, an nftables output DNAT rule sending it to :PORT,
         so the kernel tracks and translates every connection, and meshd reads
         a NEW and a DESTROY per connection and keeps the translation in both
         ends' flows.
Each configuration runs untraced ("none") and with meshd in the same round,
so each has its own baseline; the DNAT's own cost shows as dnat/none against
plain/none. Prints conn/s, the ratio to untraced, meshd's CPU per 100k
connections, its peak RSS, and meshd's NAT counters.

  sudo python3 bench/nat_churn.py --churn build-bench/bench/churn \\
      --meshd .../meshd --meshctl .../meshctl [--rounds 3] [--duration 10]
(bench/run.sh builds them; BUILD_DIR=build works too.)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def sh(*argv, check=True):
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def one_round(args, ns, config, tmp, index):
    out = os.path.join(tmp, f"{config}-{index}.json")
    cmd = ["ip", "netns", "exec", ns, sys.executable, os.path.join(HERE, "tracer_bench.py"),
           "--churn", args.churn, "--meshd", args.meshd, "--meshctl", args.meshctl,
           "--arms", "none,meshd", "--rounds", "1", "--duration", str(args.duration),
           "--port", str(args.port), "--startup-trials", "0", "--json-out", out,
           "--addrs", str(args.addrs),
           # Only this namespace: another benchmark's churn elsewhere on the same port is not ours.
           "--meshd-netns", "self"]
    if config == "dnat":
        cmd += ["--connect-port", str(args.connect_port)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode not in (0, 1):  # 1: a target missed, still measured
        sys.exit(f"nat_churn: tracer_bench failed ({config}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    with open(out) as f:
        return json.load(f)["rounds"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--churn", required=True)
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--meshctl", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--port", type=int, default=18473)
    ap.add_argument("--connect-port", type=int, default=18474)
    # One destination address: with several, their connections all map to
    # one reply tuple space (127.0.0.1:PORT) and conntrack must rewrite
    # clashing source ports, which costs the kernel more than the rule.
    ap.add_argument("--addrs", type=int, default=1)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("nat_churn: needs root (a network namespace, nftables, BPF)")
    ns = f"fmb-nat-{os.getpid()}"
    sh("ip", "netns", "add", ns)
    results = {"plain": {"none": [], "meshd": []}, "dnat": {"none": [], "meshd": []}}
    try:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        # The churn reuses each 4-tuple within seconds; conntrack keeps a
        # closed one 120 s (TIME_WAIT), and a SYN on a tuple it still holds
        # with a translation waits for retransmits: the DNAT churn then
        # measures the kernel's table, not meshd. 1 s here, in this
        # namespace only (the host's own setting is untouched).
        sh("ip", "netns", "exec", ns, "sysctl", "-qw",
           "net.netfilter.nf_conntrack_tcp_timeout_time_wait=1")
        rule = (f"add table ip fmbench; add chain ip fmbench out {{ type nat hook output priority -100; }}; "
                f"add rule ip fmbench out tcp dport {args.connect_port} dnat to 127.0.0.1:{args.port}")
        with tempfile.TemporaryDirectory(prefix="nat_churn.") as tmp:
            for i in range(args.rounds):
                order = ["plain", "dnat"] if i % 2 == 0 else ["dnat", "plain"]
                for config in order:
                    if config == "dnat":
                        sh("ip", "netns", "exec", ns, "nft", rule)
                    try:
                        rounds = one_round(args, ns, config, tmp, i)
                    finally:
                        if config == "dnat":
                            sh("ip", "netns", "exec", ns, "nft", "delete table ip fmbench", check=False)
                    for arm in ("none", "meshd"):
                        results[config][arm] += rounds.get(arm, [])
                    m = rounds.get("meshd", [{}])[0]
                    print(f"round {i + 1} {config}: none {rounds['none'][0]['conn_per_s']:,.0f}/s, "
                          f"meshd {m.get('conn_per_s', 0):,.0f}/s, meshd CPU {m.get('tracer_cpu_s', 0):.2f} s, "
                          f"records {m.get('records')}/{2 * m.get('connections', 0)}, lost {m.get('lost')}, "
                          f"RSS {m.get('rss_mb', 0):.1f} MB", flush=True)
    finally:
        sh("ip", "netns", "del", ns, check=False)

    print("\n== summary: meshd with conntrack, no rule vs a DNAT rule on every connection ==")
    print(f"{'config':<7} {'untraced/s':>11} {'meshd/s':>9} {'ratio':>6} {'CPU s/100k':>10} "
          f"{'records':>8} {'lost':>5} {'RSS MB':>7}  NAT counters (last round)")
    base = None
    for config in ("plain", "dnat"):
        none, meshd = results[config]["none"], results[config]["meshd"]
        cps0 = statistics.median(r["conn_per_s"] for r in none)
        cps1 = statistics.median(r["conn_per_s"] for r in meshd)
        conns = sum(r["connections"] for r in meshd)
        cpu = sum(r["tracer_cpu_s"] for r in meshd) / conns * 1e5
        recs = sum(r["records"] for r in meshd)
        complete = f"{100.0 * recs / max(2 * conns, 1):.2f}%"
        lost = sum(r["lost"] for r in meshd)
        rss = max(r["rss_mb"] for r in meshd)
        nat = {k: v for k, v in (meshd[-1].get("meshd_anomalies") or {}).items()
               if k.startswith(("nat_", "conntrack_"))}
        base = base or cps0
        print(f"{config:<7} {cps0:>11,.0f} {cps1:>9,.0f} {cps1 / cps0:>6.3f} {cpu:>10.3f} "
              f"{complete:>8} {lost:>5} {rss:>7.1f}  {nat}")
    dnat0 = statistics.median(r["conn_per_s"] for r in results["dnat"]["none"])
    print(f"the DNAT rule itself (untraced): {dnat0 / base:.3f} of the plain churn's rate")


if __name__ == "__main__":
    main()
