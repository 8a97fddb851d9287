#!/usr/bin/python3
"""The map page's behaviour in headless Chromium against tests/ui/fixture_server.py:
what the lab browser test does not reach (escaping of hostile names, the
changes view, search, collapsing, live refresh without re-layout, pause, the
500-workload overview, the SVG export). Prints "N passed, M failed".
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.dom.minidom

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))
sys.path.insert(0, HERE)
import mapgen  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402
from ui_browser_test import Failure, browser, check, click_node, wait_for  # noqa: E402


class Server:
    def __init__(self, map_obj=None, tmp=None):
        cmd = [sys.executable, os.path.join(HERE, 'fixture_server.py')]
        if map_obj is not None:
            path = os.path.join(tmp, f'map{id(map_obj)}.json')
            with open(path, 'w') as f:
                json.dump(map_obj, f)
            cmd += ['--map', path]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith('listening on '):
            raise Failure(f'fixture server did not start: {line!r}')
        self.url = line.split()[-1]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def open_page(d, url):
    d.get(url + '/')
    wait_for(d, 'the map drawn', lambda: d.execute_script('return document.body.dataset.drawn'), 20)


def js(d, script, *args):
    return d.execute_script(script, *args)


def test_hostile_names_stay_text(d, tmp):
    s = Server(mapgen.hostile_map(), tmp)
    try:
        open_page(d, s.url)
        click_node(d, 'nginx')
        wait_for(d, 'the panel', lambda: d.find_elements(By.CSS_SELECTOR, '#details h2'), 5)
        time.sleep(0.5)
        check(not js(d, 'return window.pwned'), 'markup in a label ran as script')
        check(not d.find_elements(By.CSS_SELECTOR, 'img, b'), 'markup in a label became elements')
        h2 = d.find_element(By.CSS_SELECTOR, '#details h2').text
        check(h2.startswith('<img src=x'), f'the panel title is not the label as text: {h2!r}')
    finally:
        s.stop()


def test_changes_view(d, tmp):
    s = Server(None, tmp)
    try:
        open_page(d, s.url)
        draws = js(d, 'return window.flowmesh.draws')
        Select(d.find_element(By.ID, 'compare')).select_by_value('24h')
        wait_for(d, 'the compared map', lambda: js(d, 'return window.flowmesh.draws') > draws and
                 js(d, 'return Array.isArray(window.flowmesh.state.map.changes)'), 20)
        got = js(d, """const cy = window.flowmesh.cy; return {
          appeared: cy.edges('.appeared').length, gone: cy.edges('.disappeared').length,
          changed: cy.edges('.changed').map((e) => e.data('label')),
          gone_node: cy.getElementById('ext:203.0.113.9:443').nonempty()};""")
        check(got['appeared'] == 1 and got['gone'] == 1 and len(got['changed']) == 1, f'{got}')
        check('×4.00' in got['changed'][0], f'the changed edge lacks its factor: {got["changed"]}')
        check(got['gone_node'], 'the disappeared edge\'s server is not drawn')
        items = d.find_elements(By.CSS_SELECTOR, '#changes li')
        check(len(items) == 3, f'the changes list has {len(items)} items, not 3')
    finally:
        s.stop()


def test_search_highlights(d, tmp):
    s = Server(None, tmp)
    try:
        open_page(d, s.url)
        d.find_element(By.ID, 'search').send_keys('10.213.0.5:6379')
        wait_for(d, 'a match', lambda: js(d, "return window.flowmesh.cy.nodes('.match').length"), 5)
        ids = js(d, "return window.flowmesh.cy.nodes('.match').map((n) => n.id())")
        check(ids == ['cache-1/wunit:redis-server.service'], f'search ip:port matched {ids}')
        d.find_element(By.ID, 'search').clear()
        d.find_element(By.ID, 'search').send_keys('app-')
        time.sleep(0.3)
        n = js(d, "return window.flowmesh.cy.nodes('.match').length")
        check(n == 2, f'search for host "app-" matched {n} nodes, not 2')
    finally:
        s.stop()


def test_refresh_keeps_layout_and_pause(d, tmp):
    s = Server(None, tmp)
    try:
        open_page(d, s.url)
        before = js(d, 'const f = window.flowmesh; return {layouts: f.layouts, draws: f.draws,'
                       ' pos: f.cy.nodes().map((n) => [n.id(), n.position()])};')
        wait_for(d, 'a live refresh', lambda: js(d, 'return window.flowmesh.draws') > before['draws'],
                 15)
        after = js(d, 'const f = window.flowmesh; return {layouts: f.layouts,'
                      ' pos: f.cy.nodes().map((n) => [n.id(), n.position()])};')
        check(after['layouts'] == before['layouts'], 'an unchanged map was laid out again')
        check(after['pos'] == before['pos'], 'nodes moved on a refresh of an unchanged map')
        d.find_element(By.ID, 'pause').click()
        draws = js(d, 'return window.flowmesh.draws')
        time.sleep(11)
        check(js(d, 'return window.flowmesh.draws') == draws, 'the map refreshed while paused')
    finally:
        s.stop()


def test_collapse_host(d, tmp):
    s = Server(None, tmp)
    try:
        open_page(d, s.url)
        js(d, "window.flowmesh.cy.getElementById('grp:app-1').emit('dbltap')")
        wait_for(d, 'app-1 collapsed', lambda: js(
            d, "return window.flowmesh.cy.getElementById('grp:app-1').hasClass('collapsed')"), 10)
        got = js(d, """const cy = window.flowmesh.cy; return {
          member: cy.getElementById('app-1/wunit:flowmesh-lab-app.service').nonempty(),
          agg: cy.edges('.aggregate').map((e) => [e.source().id(), e.target().id(), e.data('label')])};""")
        check(not got['member'], 'a collapsed host still draws its workloads')
        check(len(got['agg']) == 3, f'want 3 aggregated edges of app-1, got {got["agg"]}')
    finally:
        s.stop()


def test_500_overview(d, tmp):
    s = Server(mapgen.big_map(500), tmp)
    try:
        open_page(d, s.url)
        got = js(d, """const cy = window.flowmesh.cy; return {nodes: cy.nodes().length,
          collapsed: cy.nodes('.collapsed').length, layout: window.flowmesh.timing.layoutName};""")
        check(got['nodes'] == 50 and got['collapsed'] == 50, f'500 workloads drawn as {got}')
        js(d, "window.flowmesh.cy.getElementById('grp:host-007').emit('dbltap')")
        wait_for(d, 'host-007 expanded', lambda: js(
            d, "return window.flowmesh.cy.getElementById('grp:host-007').isParent()"), 20)
        n = js(d, "return window.flowmesh.cy.getElementById('grp:host-007').children().length")
        check(n == 10, f'expanded host-007 shows {n} workloads, not 10')
    finally:
        s.stop()


def test_group_by_workload_and_long_names(d, tmp):
    m = mapgen.lab_map()
    m['nodes'][2]['label'] = 'x' * 5000
    s = Server(m, tmp)
    try:
        open_page(d, s.url)
        w = js(d, "return window.flowmesh.cy.getElementById(arguments[0]).width()", m['nodes'][2]['id'])
        check(w < 600, f'a 5000-character name drew a node {w}px wide')
        draws = js(d, 'return window.flowmesh.draws')
        Select(d.find_element(By.ID, 'group-by')).select_by_value('workload')
        wait_for(d, 'the map by workload', lambda: js(d, 'return window.flowmesh.draws') > draws, 20)
        got = js(d, "const cy = window.flowmesh.cy; return [cy.nodes(':parent').length,"
                    " cy.nodes(':childless').length, cy.edges().length];")
        # No two lab workloads share a name: no boxes, every node and edge.
        check(got == [0, 7, 8], f'by workload: [boxes, nodes, edges] = {got}')
    finally:
        s.stop()


def test_svg_export(d, tmp):
    s = Server(None, tmp)
    try:
        open_page(d, s.url)
        svg = js(d, 'return window.flowmesh.svg()')
        doc = xml.dom.minidom.parseString(svg)
        texts = ' '.join(t.firstChild.data for t in doc.getElementsByTagName('text') if t.firstChild)
        for want in ('nginx.service', 'redis-server.service', '20 conns'):
            check(want in texts, f'the SVG lacks {want!r}')
        check(len(doc.getElementsByTagName('line')) == 8, 'the SVG does not have the 8 edges')
    finally:
        s.stop()


def main():
    tests = [v for k, v in sorted(globals().items()) if k.startswith('test_')]
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix='fm-uipage-') as tmp:
        d = browser(os.path.join(tmp, 'profile'))
        try:
            for t in tests:
                try:
                    t(d, tmp)
                    passed += 1
                    print(f'PASS {t.__name__}')
                except Exception as e:  # a failure names its test and goes on
                    failed += 1
                    print(f'FAIL {t.__name__}: {e}')
        finally:
            d.quit()
    print(f'{passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
