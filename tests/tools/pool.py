#!/usr/bin/env python3
"""Long-lived pooled TCP connections, as a database pool holds them.

    pool.py serve   --listen IP:PORT [--name NAME]
    pool.py clients --connect IP:PORT --count N [--name NAME]
                    [--source-base IP --sources K] [--ping-every SECONDS] [--quiet]

serve echoes every byte it receives, on any number of connections; several
serve processes may listen on one port (SO_REUSEPORT).
clients opens N connections (from K source addresses counting up from
--source-base, when given), prints "ready N" once all are open, and holds
them. Every --ping-every seconds it sends 16 bytes on each connection and
reads the echo. SIGUSR1 turns pinging on or off (--quiet starts it off) and
prints "sent B" with the payload bytes sent so far; SIGTERM closes everything.

Each runs in its own process group under NAME (its comm), as a service would.
Python 3 standard library only.
"""
import argparse
import ipaddress
import os
import selectors
import signal
import socket
import sys
import time


def hostport(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected IP:PORT, got {text!r}")
    return host, int(port)


def become(name):
    os.setpgrp()
    with open("/proc/self/comm", "w") as f:
        f.write(name[:15])


def serve(args):
    sel = selectors.DefaultSelector()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Several servers may share the port (a prefork server, or more
    # connections than one process may hold files).
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    ls.bind(args.listen)
    ls.listen(4096)
    ls.setblocking(False)
    sel.register(ls, selectors.EVENT_READ)
    print("listening", flush=True)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is ls:
                try:
                    c, _ = ls.accept()
                except BlockingIOError:
                    continue
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ)
                continue
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
                continue
            s.sendall(data)


def clients(args):
    conns = []
    base = ipaddress.ip_address(args.source_base) if args.source_base else None
    for i in range(args.count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if base is not None:
            s.bind((str(base + i % args.sources), 0))
        s.connect(args.connect)
        conns.append(s)
    print(f"ready {len(conns)}", flush=True)
    state = {"on": not args.quiet, "sent": 0}

    def toggle(*_):
        state["on"] = not state["on"]
        print(f"sent {state['sent']}", flush=True)

    signal.signal(signal.SIGUSR1, toggle)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ping = b"p" * 16
    while True:
        time.sleep(args.ping_every)
        if not state["on"]:
            continue
        for s in conns:
            s.sendall(ping)
            state["sent"] += len(ping)
            got = 0
            while got < len(ping):
                got += len(s.recv(len(ping) - got))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--listen", type=hostport, required=True)
    s.add_argument("--name", default="fm-pool-server")
    c = sub.add_parser("clients")
    c.add_argument("--connect", type=hostport, required=True)
    c.add_argument("--count", type=int, default=1)
    c.add_argument("--name", default="fm-pool-client")
    c.add_argument("--source-base", default="")
    c.add_argument("--sources", type=int, default=1)
    c.add_argument("--ping-every", type=float, default=0.5)
    c.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    become(args.name)
    serve(args) if args.cmd == "serve" else clients(args)


if __name__ == "__main__":
    main()
