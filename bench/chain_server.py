#!/usr/bin/env python3
"""The chain of services for bench/look_chain.sh: each link calls the next.

    chain_server.py serve --name hop-2 --listen 10.213.0.2:8000 --next 10.213.0.3:8000
    chain_server.py serve --name hop-6 --listen 10.213.0.6:8000      # the end
    chain_server.py client --target 10.213.0.2:8000 --count 50

serve: HTTP on IP:PORT (one process, a thread per request). Every GET first
does one GET to --next over a new TCP connection, then answers 200 with its
name followed by the next link's answer; the end of the chain (no --next)
answers with its name alone. A next link that fails makes the answer 502.

client: COUNT GETs to --target, one new connection each, one after the other;
prints one JSON line {"ok", "failed", "seconds", "sample"} and exits 1 unless
every request answered 200.

Python 3 standard library only.
"""
import argparse
import http.client
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TIMEOUT = 3.0  # seconds per connection to the next link


def hostport(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected IP:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def get(addr, timeout):
    """One GET / on a new connection; returns (status, body)."""
    conn = http.client.HTTPConnection(addr[0], addr[1], timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read(65536)
    finally:
        conn.close()


def make_handler(args):
    class Handler(BaseHTTPRequestHandler):
        server_version = "chain_server"

        def do_GET(self):
            code, body = 200, f"{args.name}".encode()
            if args.next:
                try:
                    status, rest = get(args.next, TIMEOUT)
                    if status != 200:
                        raise OSError(f"answered {status}")
                    body += b" -> " + rest.strip()
                except (OSError, http.client.HTTPException) as e:
                    code = 502
                    body += f": next link {args.next[0]}:{args.next[1]} failed: {e}".encode()
                    print(body.decode(), file=sys.stderr, flush=True)
            body += b"\n"
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *a):
            pass  # one line per request would only fill the log

    return Handler


def serve(args):
    try:
        server = ThreadingHTTPServer(args.listen, make_handler(args))
    except OSError as e:
        sys.exit(f"chain_server {args.name}: cannot listen on {args.listen[0]}:{args.listen[1]}: {e}")
    server.daemon_threads = True
    nxt = f"{args.next[0]}:{args.next[1]}" if args.next else "(end of the chain)"
    print(f"chain_server {args.name}: serving on {args.listen[0]}:{args.listen[1]}, next {nxt}",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def client(args):
    ok, failed, sample, errors = 0, 0, "", {}
    start = time.monotonic()
    for _ in range(args.count):
        try:
            status, body = get(args.target, args.timeout)
            if status == 200:
                ok += 1
                sample = sample or body.decode(errors="replace").strip()
                continue
            err = f"HTTP {status}: {body.decode(errors='replace').strip()[:200]}"
        except (OSError, http.client.HTTPException) as e:
            err = f"{type(e).__name__}: {e}"
        failed += 1
        errors[err] = errors.get(err, 0) + 1
    out = {"ok": ok, "failed": failed, "seconds": round(time.monotonic() - start, 3),
           "sample": sample}
    if errors:
        out["errors"] = errors
    print(json.dumps(out), flush=True)
    return 0 if failed == 0 else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="serve HTTP, calling --next on every GET")
    s.add_argument("--name", required=True, help="this link's name in the answers")
    s.add_argument("--listen", type=hostport, required=True, help="IP:PORT to serve on")
    s.add_argument("--next", type=hostport, help="IP:PORT of the next link (none: the end)")
    c = sub.add_parser("client", help="COUNT sequential GETs, a new connection each")
    c.add_argument("--target", type=hostport, required=True, help="IP:PORT of the first link")
    c.add_argument("--count", type=int, default=50, help="requests (default 50)")
    c.add_argument("--timeout", type=float, default=5.0, help="seconds per request (default 5)")
    args = p.parse_args()
    if args.cmd == "serve":
        serve(args)
        return 0
    if not 1 <= args.count <= 10000:
        p.error("--count must be 1..10000")
    return client(args)


if __name__ == "__main__":
    sys.exit(main())
