#!/usr/bin/env python3
"""The lab's application server (tests/integration/topology.sh, vagrant/).

Serves HTTP on ADDR:PORT. Every GET does one redis command (INCR) and one
memcached command (incr, or add when the key is new), each over a new TCP
connection, so every request leaves one connection per backend for meshd to
see; then it answers 200 with a line naming the app and the counters. A backend
that is down or answers badly makes the request fail with 502 and a message
naming the backend.

    lab_app.py --name app-1 --listen 10.213.0.3:8000 \
        --redis 10.213.0.5:6379 --memcached 10.213.0.6:11211

Python 3 standard library only.
"""
import argparse
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TIMEOUT = 2.0  # seconds, per backend connection


class BackendError(Exception):
    pass


def hostport(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected IP:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def exchange(name, addr, request, done):
    """Opens a connection to addr, sends request, reads until done(data)."""
    try:
        with socket.create_connection(addr, timeout=TIMEOUT) as s:
            s.sendall(request)
            data = b""
            while not done(data):
                chunk = s.recv(4096)
                if not chunk:
                    raise BackendError(f"{name} {addr[0]}:{addr[1]} closed the connection "
                                       f"after {len(data)} bytes")
                data += chunk
                if len(data) > 65536:
                    raise BackendError(f"{name} {addr[0]}:{addr[1]}: reply too long")
            return data
    except OSError as e:
        raise BackendError(f"{name} {addr[0]}:{addr[1]}: {e.strerror or e}") from None


def redis_incr(addr, key):
    """INCR key in RESP; returns the new value."""
    k = key.encode()
    req = b"*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n" % (len(k), k)
    reply = exchange("redis", addr, req, lambda d: d.endswith(b"\r\n"))
    if not reply.startswith(b":"):
        raise BackendError(f"redis {addr[0]}:{addr[1]}: unexpected reply "
                           f"{reply.strip()[:80]!r}")
    return int(reply[1:].strip())


def memcached_incr(addr, key):
    """incr key; when the key does not exist yet, add it with 1."""
    k = key.encode()
    line_done = lambda d: d.endswith(b"\r\n")
    # One connection: incr, and add on NOT_FOUND (a second line on the same
    # connection keeps it to one connection per request).
    try:
        with socket.create_connection(addr, timeout=TIMEOUT) as s:
            def ask(req):
                s.sendall(req)
                data = b""
                while not line_done(data):
                    chunk = s.recv(4096)
                    if not chunk:
                        raise BackendError(f"memcached {addr[0]}:{addr[1]} closed the "
                                           f"connection")
                    data += chunk
                return data.strip()

            reply = ask(b"incr %s 1\r\n" % k)
            if reply == b"NOT_FOUND":
                reply = ask(b"add %s 0 0 1\r\n1\r\n" % k)
                if reply == b"STORED":
                    return 1
                if reply == b"NOT_STORED":  # another request added it first
                    reply = ask(b"incr %s 1\r\n" % k)
            if not reply.isdigit():
                raise BackendError(f"memcached {addr[0]}:{addr[1]}: unexpected reply "
                                   f"{reply[:80]!r}")
            return int(reply)
    except OSError as e:
        raise BackendError(f"memcached {addr[0]}:{addr[1]}: {e.strerror or e}") from None


def make_handler(args):
    class Handler(BaseHTTPRequestHandler):
        server_version = "lab_app"
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            try:
                hits = redis_incr(args.redis, "hits")
                mc = memcached_incr(args.memcached, "hits")
                code, body = 200, f"hello from {args.name}: redis hits={hits} memcached hits={mc}\n"
            except BackendError as e:
                code, body = 502, f"{args.name}: backend failed: {e}\n"
                print(f"lab_app {args.name}: {e}", file=sys.stderr, flush=True)
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt, *a):
            if args.verbose:
                super().log_message(fmt, *a)

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True, help="name in the answers, e.g. app-1")
    p.add_argument("--listen", type=hostport, required=True, help="IP:PORT to serve HTTP on")
    p.add_argument("--redis", type=hostport, required=True, help="redis IP:PORT")
    p.add_argument("--memcached", type=hostport, required=True, help="memcached IP:PORT")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = p.parse_args()
    try:
        server = ThreadingHTTPServer(args.listen, make_handler(args))
    except OSError as e:
        sys.exit(f"lab_app {args.name}: cannot listen on {args.listen[0]}:{args.listen[1]}: {e}")
    server.daemon_threads = True
    print(f"lab_app {args.name}: serving on {args.listen[0]}:{args.listen[1]}", file=sys.stderr,
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
