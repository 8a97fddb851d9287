#!/usr/bin/env python3
"""A lab server that calls a peer back: the cycle of the look lab test.

Serves HTTP on ADDR:PORT. GET /?n=K with K > 0 first fetches PEER/?n=K-1 (a
new connection each time), then answers 200. Two of these pointed at each
other make A calls B calls A, which `meshctl look` must end in a cycle leaf.

    ping_pong.py --listen 10.213.0.3:9001 --peer 10.213.0.4:9002

Python 3 standard library only.
"""
import argparse
import http.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def hostport(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected IP:PORT, got {text!r}")
    return host, int(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", type=hostport, required=True)
    ap.add_argument("--peer", type=hostport, required=True)
    args = ap.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            n = int(parse_qs(urlparse(self.path).query).get("n", ["0"])[0])
            code = 200
            if n > 0:
                try:
                    c = http.client.HTTPConnection(*args.peer, timeout=2)
                    c.request("GET", f"/?n={min(n - 1, 10)}")
                    code = c.getresponse().status
                    c.close()
                except OSError:
                    code = 502
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, fmt, *a):
            pass

    ThreadingHTTPServer(args.listen, Handler).serve_forever()


if __name__ == "__main__":
    main()
