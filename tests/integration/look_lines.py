#!/usr/bin/env python3
"""One line per node of a `meshctl look --format json` tree, for lab tests.

Each line: `<path> host=H ep=ADDR[:PORT] comm=C status=S conns=N via=V
balancer=0|1 aliases=A,B workload=W`, W being `unit:NAME`, `container:RUNTIME:NAME`
or `pod:NAMESPACE/POD/CONTAINER` (name, else id), where <path> is the node's way from the root, each
step `<` (a client) or `>` (a dependency) followed by the endpoint and
[process] of the node above it, e.g. `root`, `> 10.213.0.9:8000[-]`. Fields a node lacks are `-`.
Reads stdin; exit 1 if it is not a look answer.
"""
import json
import sys


def endpoint(n):
    return n["addr"] if n.get("port") in (None, 0) else f"{n['addr']}:{n['port']}"


def workload(proc):
    w = proc.get("workload")
    if not w:
        return "-"
    if w.get("kind") == "unit":
        return f"unit:{w.get('id')}"
    name = w.get("name") or w.get("id")
    pod = w.get("pod")
    if pod:
        return f"pod:{pod.get('namespace') or '-'}/{pod.get('name') or pod.get('uid')}/{name}"
    return f"container:{w.get('runtime') or '-'}:{name}"


def walk(n, steps, out):
    path = " ".join(steps) or "root"
    proc = n.get("process") or {}
    stats = n.get("stats") or {}
    out.append(" ".join([
        path,
        f"host={n.get('host') or '-'}",
        f"ep={endpoint(n)}",
        f"comm={proc.get('comm', '-')}",
        f"status={n.get('status') or '-'}",
        f"conns={stats.get('connections', '-')}",
        f"via={n.get('via') or '-'}",
        f"balancer={1 if n.get('balancer') else 0}",
        f"aliases={','.join(n.get('aliases') or []) or '-'}",
        f"workload={workload(proc)}",
    ]))
    for kind, step in (("clients", "<"), ("dependencies", ">")):
        for kid in n.get(kind) or []:
            walk(kid, steps + [f"{step} {endpoint(n)}[{proc.get('comm', '-')}]"], out)


def main():
    try:
        answer = json.load(sys.stdin)
        root = answer["root"]
    except (ValueError, KeyError, TypeError) as e:
        print(f"look_lines: not a look answer: {e}", file=sys.stderr)
        return 1
    out = []
    walk(root, [], out)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
