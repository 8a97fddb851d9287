#!/usr/bin/python3
"""The map page in a real browser (headless Debian chromium + chromedriver via
Selenium): every workload and edge of /api/map drawn with its labels, a click on
nginx shows its look tree, a window in the past empties the edges; saves a
screenshot. Exits non-zero with the reason on any failure.

  ui_browser_test.py BASE_URL --screenshot FILE.png [--token-file F | --token T]
                     [--expect-label TEXT ...]   (each must be in a drawn node's label)
  ui_browser_test.py BASE_URL --expect-login     (no token: the login form, API 401)
"""
import argparse
import json
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

PAST_SINCE = '2020-01-01T00:00:00Z'
PAST_UNTIL = '2020-01-01T01:00:00Z'


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def browser(user_data_dir):
    o = webdriver.ChromeOptions()
    o.binary_location = '/usr/bin/chromium'
    for arg in ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                '--no-first-run', '--disable-background-networking',
                '--disable-component-update', '--disable-sync', '--window-size=1600,1000',
                f'--user-data-dir={user_data_dir}'):
        o.add_argument(arg)
    o.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    return webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=o)


def wait_for(driver, what, fn, timeout):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # the page may be between loads
            last = e
        time.sleep(0.1)
    raise Failure(f'timed out after {timeout}s waiting for {what} (last: {last!r}); '
                  f'page error box: {error_box(driver)!r}')


def error_box(driver):
    try:
        return driver.find_element(By.ID, 'error').text
    except Exception:
        return None


def fetch(driver, path):
    """GET path in the page's own session (its cookie): status and body."""
    return driver.execute_async_script(
        'const done = arguments[1];'
        'fetch(arguments[0], {credentials: "same-origin", cache: "no-store", '
        'headers: {"X-Flowmesh-Api": "1"}})'
        '.then(async (r) => done([r.status, await r.text()]), (e) => done([0, String(e)]));',
        path)


def format_bytes(n):
    if n < 1024:
        return f'{n} B'
    v, units, u = n / 1024, ['KB', 'MB', 'GB', 'TB', 'PB'], 0
    while v >= 1024 and u + 1 < len(units):
        v, u = v / 1024, u + 1
    return f'{v:.1f} {units[u]}'


def drawn(driver):
    return driver.execute_script("""
      const cy = window.flowmesh.cy;
      return {
        draws: window.flowmesh.draws,
        nodes: cy.nodes().map((n) => ({id: n.id(), label: n.data('label'),
            display: n.data('display'), parent: n.data('parent') || null,
            visible: n.visible(), box: n.renderedBoundingBox({includeLabels: false}),
            child: n.isChildless()})),
        edges: cy.edges().map((e) => ({id: e.id(), key: e.data('key'), source: e.source().id(),
            target: e.target().id(), label: e.data('label'), visible: e.visible()})),
        width: cy.width(), height: cy.height(), map: window.flowmesh.state.map};""")


def login(driver, base, token):
    driver.get(base + '/')
    if driver.find_elements(By.ID, 'token'):
        check(token, 'the page asks for a token (login form): pass --token-file')
        driver.find_element(By.ID, 'token').send_keys(token)
        driver.find_element(By.ID, 'login').click()
    wait_for(driver, 'the map page after login', lambda: driver.find_elements(By.ID, 'graph'), 10)
    # The 401s before the login are expected; only what follows counts.
    driver.get_log('browser')


def check_map(driver, api):
    # Labels against the JSON the page drew from, read in the same instant:
    # in a live lab the counts move between two fetches. The API's own answer
    # must have the same nodes and edges.
    state = drawn(driver)
    expected = state['map']
    keys = lambda m: ({n['id'] for n in m['nodes']},
                      {f'{e["from"]}|{e["to"]}|{e["endpoint"]}' for e in m['edges']})
    check(keys(expected) == keys(api), f'the page drew another map than /api/map answers: '
          f'page {keys(expected)}, API {keys(api)}')
    nodes = {n['id']: n for n in state['nodes']}
    for n in expected['nodes']:
        d = nodes.get(n['id'])
        check(d, f'node {n["id"]} ({n["label"]!r}) of /api/map is not drawn')
        check(d['label'] == n['label'], f'node {n["id"]}: drawn label {d["label"]!r}, '
                                        f'the API says {n["label"]!r}')
        check(n['label'] in d['display'], f'node {n["id"]}: the text drawn is {d["display"]!r}')
        check(d['visible'] and d['box']['w'] > 4, f'node {n["id"]} is not visible: {d}')
    edges = {e['key']: e for e in state['edges'] if e['key']}
    check(len(edges) == len(expected['edges']),
          f'{len(edges)} edges drawn, /api/map has {len(expected["edges"])}')
    for e in expected['edges']:
        key = f'{e["from"]}|{e["to"]}|{e["endpoint"]}'
        d = edges.get(key)
        check(d, f'edge {key} of /api/map is not drawn')
        check(d['source'] == e['from'] and d['target'] == e['to'], f'edge {key} drawn as {d}')
        c = e['stats']['connections']
        want = [f'{c} conn', format_bytes(e['stats']['bytes_tx'] + e['stats']['bytes_rx'])]
        if e['via']:
            want.append('via ' + e['via'])
        for w in want:
            check(w in d['label'], f'edge {key}: label {d["label"]!r} lacks {w!r}')
    # At the lab's size nothing may cover anything else.
    leaves = [n for n in state['nodes'] if n['child']]
    for i, a in enumerate(leaves):
        for b in leaves[i + 1:]:
            x, y = a['box'], b['box']
            overlap = x['x1'] < y['x2'] and y['x1'] < x['x2'] and x['y1'] < y['y2'] and y['y1'] < x['y2']
            check(not overlap, f'nodes {a["label"]!r} and {b["label"]!r} overlap')
    return state


def check_labels(state, wanted):
    """Each of `wanted` (the lab's workloads) is in some drawn node's label: the
    checks above compare the page with the API, so an empty map passes them."""
    # Leaves only: a host's box is drawn around its workloads whether or not
    # any of them is there.
    drawn_labels = [str(n['label']) for n in state['nodes'] if n['visible'] and n['child']]
    for w in wanted:
        check(any(w in label for label in drawn_labels),
              f'no drawn node has {w!r} in its label; drawn: {sorted(drawn_labels)}')


def click_node(driver, label_part):
    pos = driver.execute_script("""
      const n = window.flowmesh.cy.nodes().filter((n) => n.isChildless() &&
          String(n.data('label')).includes(arguments[0]))[0];
      if (!n) return null;
      const p = n.renderedPosition();
      return {id: n.id(), x: p.x, y: p.y};""", label_part)
    check(pos, f'no drawn node has {label_part!r} in its label')
    graph = driver.find_element(By.ID, 'graph')
    size = graph.size
    # Selenium's offsets are from the element's centre.
    ActionChains(driver).move_to_element_with_offset(
        graph, int(pos['x'] - size['width'] / 2), int(pos['y'] - size['height'] / 2)).click().perform()
    return pos['id']


def run(a, token):
    with tempfile.TemporaryDirectory(prefix='fm-chromium-') as profile:
        driver = browser(profile)
        try:
            if a.expect_login:
                return expect_login(driver, a.base_url)
            login(driver, a.base_url, token)
            t0 = time.monotonic()
            wait_for(driver, 'the map drawn (body[data-drawn])',
                     lambda: driver.execute_script('return document.body.dataset.drawn'), a.timeout)
            print(f'ui_browser_test: map drawn {time.monotonic() - t0:.2f}s after login')
            status, body = fetch(driver, '/api/map?since=1h')
            check(status == 200, f'/api/map answered {status}: {body[:200]}')
            expected = json.loads(body)
            check(expected['nodes'], '/api/map has no nodes: nothing to check')
            check(expected['edges'], '/api/map has no edges: is there traffic in the last hour?')
            state = check_map(driver, expected)
            check_labels(state, a.expect_label)
            print(f'ui_browser_test: {len(expected["nodes"])} nodes and '
                  f'{len(expected["edges"])} edges drawn with their labels'
                  + (f', {len(a.expect_label)} expected labels among them' if a.expect_label
                     else ''))

            picked = click_node(driver, a.click)
            wait_for(driver, f'the look tree of {picked}', lambda: driver.execute_script(
                "const t = document.getElementById('look-tree');"
                "return t && t.dataset.state === 'done' && t.textContent"), a.timeout)
            tree = driver.find_element(By.ID, 'look-tree').text
            node = next(n for n in expected['nodes'] if n['id'] == picked)
            check(any(ep in tree for ep in node['endpoints']),
                  f'look tree of {picked} does not name its endpoint: {tree!r}')
            check('└' in tree, f'look tree of {picked} has no clients or dependencies: {tree!r}')
            print(f'ui_browser_test: clicked {node["label"]!r}; its look tree has '
                  f'{tree.count(chr(10)) + 1} lines')
            driver.save_screenshot(a.screenshot)
            print(f'ui_browser_test: screenshot {a.screenshot}')

            draws = state['draws']
            Select(driver.find_element(By.ID, 'window')).select_by_value('custom')
            driver.find_element(By.ID, 'since').send_keys(PAST_SINCE)
            driver.find_element(By.ID, 'until').send_keys(PAST_UNTIL)
            driver.find_element(By.ID, 'apply-window').click()
            wait_for(driver, 'the map of a window in the past', lambda: (driver.execute_script(
                'const w = window.flowmesh.state.map.window;'
                'return w.until && w.until.startsWith("2020") ? window.flowmesh.draws : 0;')
                or 0) > draws, a.timeout)
            after = drawn(driver)
            check(not after['edges'], f'a window in 2020 still draws {len(after["edges"])} edges')
            print('ui_browser_test: window 2020-01-01 00:00-01:00 draws 0 edges')
            severe = [x for x in driver.get_log('browser') if x['level'] == 'SEVERE']
            check(not severe, f'the browser logged errors: {severe}')
            print('ui_browser_test: PASS')
            return 0
        finally:
            driver.quit()


def expect_login(driver, base):
    driver.get(base + '/')
    check(driver.find_elements(By.ID, 'token'),
          f'without a token, {base}/ did not answer with the login form: {driver.title!r}')
    status, body = fetch(driver, '/api/map')
    check(status == 401, f'without a token /api/map answered {status}, not 401: {body[:200]}')
    check('error' in json.loads(body), f'the 401 of /api/map is not a JSON error: {body[:200]}')
    print('ui_browser_test: without a token: the login form, and /api/map is 401: PASS')
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('base_url')
    p.add_argument('--screenshot', default='ui_map.png')
    p.add_argument('--token-file')
    p.add_argument('--token')
    p.add_argument('--expect-login', action='store_true')
    p.add_argument('--click', default='nginx', help='click the node whose label has this')
    p.add_argument('--expect-label', action='append', default=[], metavar='TEXT',
                   help='fail unless a drawn node has TEXT in its label (repeatable)')
    p.add_argument('--timeout', type=float, default=20)
    a = p.parse_args()
    a.base_url = a.base_url.rstrip('/')
    token = a.token
    if a.token_file:
        with open(a.token_file) as f:
            token = f.readline().strip()
    try:
        return run(a, token)
    except Failure as e:
        print(f'ui_browser_test: FAIL: {e}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
