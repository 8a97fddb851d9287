#!/usr/bin/python3
"""A stand-in for meshd's UI listener, for testing the page without a lab: it
serves ui/ as ui/assets.txt maps it (with meshd's Content-Security-Policy) and
canned API answers from tests/ui/fixtures/ (the 6-host lab's shape), with
docs/api.md's token rules. Prints "listening on URL" once ready.

  fixture_server.py [--port N] [--token-file FILE] [--map FILE]
"""
import argparse
import datetime
import hashlib
import hmac
import http.server
import json
import os
import re
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def meshd_csp():
    """meshd's Content-Security-Policy, read from where meshd has it, so the
    page is tested under the very policy it is served with."""
    with open(os.path.join(ROOT, 'node', 'ui', 'ui_server.h')) as f:
        m = re.search(r'kContentSecurityPolicy\s*=\s*((?:"[^"]*"\s*)+);', f.read())
    if not m:
        sys.exit('fixture_server: no kContentSecurityPolicy = "..."; in node/ui/ui_server.h')
    # Adjacent C++ literals, as clang-format splits them, are one string.
    return ''.join(re.findall(r'"([^"]*)"', m.group(1)))


CSP = meshd_csp()
# As meshd: what an API call must carry (or a Bearer token), and the files the
# login page needs before anyone is logged in.
API_HEADER = 'X-Flowmesh-Api'
PUBLIC = ('/login', '/style.css', '/favicon.svg')


def load(name):
    with open(os.path.join(HERE, 'fixtures', name)) as f:
        return json.load(f)


def read_assets(ui):
    assets = {}
    with open(os.path.join(ui, 'assets.txt')) as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.startswith('#'):
                continue
            parts = line.rstrip('\n').split(' ', 2)
            if len(parts) != 3:
                sys.exit(f'fixture_server: ui/assets.txt:{n}: want "URL FILE TYPE", got {line!r}')
            path = os.path.join(ui, parts[1])
            if not os.path.isfile(path):
                sys.exit(f'fixture_server: ui/assets.txt:{n}: {path} is missing '
                         '(run scripts/setup.sh for ui/node_modules)')
            assets[parts[0]] = (path, parts[2])
    return assets


def parse_time(flag, text):
    """A duration back from now, or RFC 3339; as ParseMapQueryText, roughly."""
    m = re.fullmatch(r'(\d+)(ms|s|m|h|d)', text)
    if m:
        unit = {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600, 'd': 86400}[m.group(2)]
        return datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(
            seconds=int(m.group(1)) * unit)
    if text == 'now':
        return datetime.datetime.now(datetime.timezone.utc)
    try:
        return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
    except ValueError:
        raise ValueError(f'--{flag}: "{text}" is neither a duration (30m, 2h) nor RFC 3339 '
                         '(2026-12-07T03:00:00Z)')


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = 'fixture-meshd'

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write('fixture_server: ' + fmt % args + '\n')

    def send(self, code, ctype, body, extra=()):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        self.send_header('Content-Security-Policy', CSP)
        self.send_header('Cache-Control', 'no-store')
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)

    def json(self, code, obj):
        self.send(code, 'application/json', json.dumps(obj))

    def authorised(self):
        want = self.server.token
        if want is None:
            return True
        got = None
        auth = self.headers.get('Authorization', '')
        if auth.startswith('Bearer '):
            got = auth[7:]
        for part in self.headers.get('Cookie', '').split(';'):
            k, _, v = part.strip().partition('=')
            if k == self.server.cookie_name and got is None:
                got = urllib.parse.unquote(v)
        # Digests of both, compared in constant time: as meshd does.
        return got is not None and hmac.compare_digest(
            hashlib.sha256(got.encode()).digest(), hashlib.sha256(want.encode()).digest())

    def from_the_page(self):
        site = self.headers.get('Sec-Fetch-Site')
        if site is not None and site not in ('same-origin', 'none'):
            return False
        return (self.headers.get(API_HEADER) == '1' or
                self.headers.get('Authorization', '').lower().startswith('bearer '))

    def login_page(self, code):
        path, ctype = self.server.assets['/login']
        with open(path, 'rb') as f:
            self.send(code, ctype, f.read())

    def do_POST(self):
        if self.path != '/login':
            return self.json(404, {'error': f'no such route: POST {self.path}'})
        length = min(int(self.headers.get('Content-Length') or 0), 4096)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode(errors='replace'))
        token = (form.get('token') or [''])[0]
        if self.server.token is not None and hmac.compare_digest(
                hashlib.sha256(token.encode()).digest(),
                hashlib.sha256(self.server.token.encode()).digest()):
            # meshd's is signed and dated; a stand-in need only be a cookie.
            cookie = (f'{self.server.cookie_name}={urllib.parse.quote(token)}; Path=/; '
                      'Max-Age=43200; HttpOnly; SameSite=Strict')
            return self.send(303, 'text/plain', 'logged in\n',
                             [('Location', '/'), ('Set-Cookie', cookie)])
        self.login_page(401)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        is_api = url.path.startswith('/api/')
        if url.path in PUBLIC:
            path, ctype = self.server.assets[url.path]
            with open(path, 'rb') as f:
                return self.send(200, ctype, f.read())
        if not self.authorised():
            if is_api:
                return self.json(401, {'error': 'a token is needed: Authorization: Bearer '
                                                'TOKEN, or log in at /'})
            return self.login_page(401)
        # After the token, as meshd: a missing token is a 401 first.
        if is_api and not self.from_the_page():
            return self.json(403, {'error': f"an API call needs the header '{API_HEADER}: 1' or "
                                            "'Authorization: Bearer TOKEN'"})
        if url.path in self.server.assets:
            path, ctype = self.server.assets[url.path]
            with open(path, 'rb') as f:
                return self.send(200, ctype, f.read())
        try:
            if url.path == '/api/map':
                return self.json(200, self.map(q))
            if url.path == '/api/map.dot':
                return self.send(200, 'text/vnd.graphviz', self.dot(self.map(q)))
        except ValueError as e:
            return self.json(400, {'error': str(e)})
        if url.path == '/api/look':
            if 'target' not in q:
                return self.json(400, {'error': '--target: missing; give target=IP:PORT'})
            return self.json(200, self.look(q['target']))
        if url.path == '/api/peers':
            return self.json(200, load('peers.json'))
        if url.path == '/api/endpoints':
            return self.json(200, load('endpoints.json'))
        if is_api:
            return self.json(404, {'error': f'no such route: {url.path}'})
        self.send(404, 'text/plain', 'not found\n')

    do_HEAD = do_GET

    def map(self, q):
        m = json.loads(self.server.map_text)
        since = parse_time('since', q.get('since', '1h'))
        until = parse_time('until', q['until']) if q.get('until') else None
        win = {'since': since.strftime('%Y-%m-%dT%H:%M:%SZ'),
               'until': until.strftime('%Y-%m-%dT%H:%M:%SZ') if until else None}
        m['window'] = m['query']['window'] = win
        # The canned traffic is from the hour before now: a window that ends
        # before that has none of it.
        hour_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
        if until is not None and until < hour_ago:
            m['edges'] = []
        if q.get('host'):
            keep = {n['id'] for n in m['nodes'] if n['host'] == q['host']}
            m['edges'] = [e for e in m['edges'] if e['from'] in keep or e['to'] in keep]
            ends = keep | {e['from'] for e in m['edges']} | {e['to'] for e in m['edges']}
            m['nodes'] = [n for n in m['nodes'] if n['id'] in ends]
        if q.get('compare_to'):
            parse_time('compare_to', q['compare_to'])
            m['query']['baseline'] = win
            m['changes'] = load('changes_lab.json') if m['edges'] else []
        m['summary']['edges'] = len(m['edges'])
        return m

    def dot(self, m):
        out = ['digraph map {', '  rankdir=LR;', '  node [shape=box];']
        for n in m['nodes']:
            out.append(f'  {json.dumps(n["id"])} [label={json.dumps(n["label"])}];')
        for e in m['edges']:
            out.append(f'  {json.dumps(e["from"])} -> {json.dumps(e["to"])} '
                       f'[label="{e["stats"]["connections"]} conns"];')
        return '\n'.join(out + ['}', ''])

    def look(self, target):
        answer = load('look_nginx.json')
        if target != answer['query']['target']:
            addr, _, port = target.rpartition(':')
            answer['query']['target'] = target
            answer['root'] = {'host': None, 'addr': addr, 'port': int(port or 0),
                              'process': None, 'balancer': False, 'via': None, 'aliases': [],
                              'status': 'ok', 'status_detail': None, 'clients': [],
                              'dependencies': []}
        return answer


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--token-file', help='require this token, as meshd off loopback')
    p.add_argument('--map', help='serve this map JSON instead of fixtures/map_lab.json')
    p.add_argument('--ui', default=os.path.join(ROOT, 'ui'))
    p.add_argument('--verbose', action='store_true')
    a = p.parse_args()
    server = http.server.ThreadingHTTPServer(('127.0.0.1', a.port), Handler)
    server.daemon_threads = True
    server.assets = read_assets(a.ui)
    server.verbose = a.verbose
    server.token = None
    server.cookie_name = f'flowmesh_ui_{server.server_address[1]}'
    if a.token_file:
        with open(a.token_file) as f:
            server.token = f.readline().strip()
    map_path = a.map or os.path.join(HERE, 'fixtures', 'map_lab.json')
    with open(map_path) as f:
        server.map_text = f.read()
    print(f'listening on http://127.0.0.1:{server.server_address[1]}', flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
