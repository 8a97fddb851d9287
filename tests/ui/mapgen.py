#!/usr/bin/python3
"""Map JSON to docs/api.md's schema: the 6-host lab's shape (the fixtures the
browser test runs against) and an N-workload mesh for bench/ui_bench.py.

  mapgen.py --write DIR      (re)write DIR/*.json, the lab fixtures
  mapgen.py --workloads N    print an N-workload map on stdout
"""
import argparse
import datetime
import json
import os
import sys

NOW = datetime.datetime(2026, 12, 7, 4, 0, 0, tzinfo=datetime.timezone.utc)


def rfc3339(t):
    return t.strftime('%Y-%m-%dT%H:%M:%S.000000000Z')


def window(since, until=None):
    return {'since': rfc3339(since), 'until': rfc3339(until) if until else None}


def stats(conns, bytes_tx, bytes_rx, rtt_us=180, minutes_ago=50):
    return {'connections': conns, 'opened': conns, 'bytes_tx': bytes_tx, 'bytes_rx': bytes_rx,
            'segs_out': conns * 6, 'segs_in': conns * 5, 'retrans': 0, 'rtt_us': rtt_us,
            'first_seen': rfc3339(NOW - datetime.timedelta(minutes=minutes_ago)),
            'last_seen': rfc3339(NOW - datetime.timedelta(seconds=20))}


def unit(name):
    return {'kind': 'unit', 'runtime': '', 'id': name, 'name': '', 'unit': name,
            'user_unit': False, 'pod': None, 'cgroup': 'system.slice/' + name}


def process(comm, pid, workload=None, exe=None):
    return {'comm': comm, 'pid': pid, 'pgid': pid, 'exe': exe or '/usr/bin/' + comm,
            'workload': workload}


def node(id_, kind, host, label, proc, endpoints, status='ok', detail=None):
    return {'id': id_, 'kind': kind, 'host': host, 'label': label, 'process': proc,
            'endpoints': endpoints, 'status': status, 'status_detail': detail}


def edge(frm, to, endpoint, st, via=None):
    return {'from': frm, 'to': to, 'endpoint': endpoint, 'via': via, 'client_seen': True,
            'server_seen': not to.startswith('ext:'), 'stats': st}


POD = {'kind': 'container', 'runtime': 'containerd', 'id': 'c0ffee' * 10 + 'c0ff',
       'name': 'api', 'unit': 'cri-containerd-c0ffee.scope', 'user_unit': False,
       'pod': {'uid': '5b1f2c3d-0000-4000-8000-000000000001', 'name': 'api-7d9c5b-x2k4q',
               'namespace': 'shop', 'qos': 'burstable'},
       'cgroup': 'kubepods.slice/kubepods-burstable.slice/cri-containerd-c0ffee.scope'}

HOSTS = ['client-1', 'web-1', 'app-1', 'app-2', 'cache-1', 'kv-1']


def lab_nodes():
    return [
        node('client-1/g5982', 'workload', 'client-1', "'curl' pgid 5982",
             process('curl', 5982), []),
        node('web-1/wunit:nginx.service', 'workload', 'web-1', 'nginx.service',
             process('nginx', 4656, unit('nginx.service'), '/usr/sbin/nginx'), ['10.213.0.2:80']),
        node('app-1/wunit:flowmesh-lab-app.service', 'workload', 'app-1',
             'flowmesh-lab-app.service', process('python3', 6111, unit('flowmesh-lab-app.service')),
             ['10.213.0.3:8000']),
        node('app-2/wcontainer:' + POD['id'], 'workload', 'app-2', 'pod shop/api-7d9c5b-x2k4q/api',
             process('python3', 6240, POD), ['10.213.0.4:8000']),
        node('cache-1/wunit:redis-server.service', 'workload', 'cache-1', 'redis-server.service',
             process('redis-server', 2127, unit('redis-server.service')), ['10.213.0.5:6379']),
        node('kv-1/wunit:memcached.service', 'workload', 'kv-1', 'memcached.service',
             process('memcached', 2210, unit('memcached.service')), ['10.213.0.6:11211']),
        node('ext:198.51.100.7', 'external', None, '198.51.100.7', None, ['198.51.100.7'],
             'no-agent', 'no member claims 198.51.100.7'),
    ]


def lab_edges():
    n = {x['host'] or x['id']: x['id'] for x in lab_nodes()}
    return [
        edge(n['client-1'], n['web-1'], '10.213.0.2:80', stats(20, 1580, 17240)),
        edge(n['web-1'], n['app-1'], '10.213.0.3:8000', stats(10, 2040, 9320)),
        edge(n['web-1'], n['app-2'], '10.213.0.4:8000', stats(10, 2040, 9320)),
        edge(n['app-1'], n['cache-1'], '10.213.0.5:6379', stats(10, 410, 820, 90)),
        edge(n['app-2'], n['cache-1'], '10.213.0.5:6379', stats(10, 410, 820, 90)),
        edge(n['app-1'], n['kv-1'], '10.213.0.6:11211', stats(10, 380, 760, 85)),
        edge(n['app-2'], n['kv-1'], '10.213.0.6:11211', stats(10, 380, 760, 85)),
        edge(n['ext:198.51.100.7'], n['web-1'], '10.213.0.2:80', stats(3, 240, 2600)),
    ]


def members(hosts, down=()):
    out = []
    for i, h in enumerate(hosts):
        ok = h not in down
        out.append({'name': h, 'address': f'10.213.{i // 250}.{i % 250 + 1}:7946',
                    'state': 'alive' if ok else 'suspect', 'answered': ok,
                    'error': None if ok else 'no answer in 2s', 'answer_bytes': 900 if ok else 0,
                    'latency_ms': 3.214 if ok else 2000.0, 'truncated': False})
    return out


def summarise(m):
    ns = m['nodes']
    m['summary'] = {
        'members': len(m['members']), 'answered': sum(x['answered'] for x in m['members']),
        'workloads': sum(x['kind'] == 'workload' for x in ns),
        'balancers': sum(x['kind'] == 'balancer' for x in ns),
        'external': sum(x['kind'] == 'external' for x in ns),
        'unreachable_nodes': sum(x['status'] == 'unreachable' for x in ns),
        'edges': len(m['edges'])}
    return m


def map_json(nodes, edges, mem, win, baseline=None, changes=None):
    m = {'query': {'window': win, 'group_by': 'workload', 'host': None, 'workload': None,
                   'depth': 1, 'baseline': baseline, 'change_factor': 2.0},
         'window': win, 'summary': None, 'nodes': nodes, 'edges': edges, 'members': mem,
         'changes': changes}
    # The summary goes third, as FormatMapJson prints it.
    return summarise(m)


def lab_map():
    return map_json(lab_nodes(), lab_edges(), members(HOSTS),
                    window(NOW - datetime.timedelta(hours=1)))


def lab_changes():
    e = lab_edges()
    changed = dict(e[0], change='changed', before=stats(5, 400, 4300), factor=4.0)
    appeared = dict(e[7], change='appeared', before=None, factor=None)
    gone = dict(edge('app-1/wunit:flowmesh-lab-app.service', 'ext:203.0.113.9:443',
                     '203.0.113.9:443', stats(4, 900, 5200, 12000)),
                change='disappeared', before=stats(4, 900, 5200, 12000), factor=None)
    return [appeared, gone, changed]


def look_leaf(host, addr, port, proc, st=None, status='ok', **kw):
    n = {'host': host, 'addr': addr, 'port': port, 'process': proc, 'balancer': False,
         'via': None, 'aliases': [], 'status': status, 'status_detail': kw.get('detail')}
    if st:
        n['stats'] = st
    n['clients'] = kw.get('clients', [])
    n['dependencies'] = kw.get('deps', [])
    return n


def look_nginx():
    ns = {x['host']: x for x in lab_nodes() if x['host']}
    s = stats(10, 410, 820, 90)
    app = lambda h, a: look_leaf(h, a, 8000, ns[h]['process'], stats(10, 2040, 9320), deps=[
        look_leaf('cache-1', '10.213.0.5', 6379, ns['cache-1']['process'], s, 'depth-limit'),
        look_leaf('kv-1', '10.213.0.6', 11211, ns['kv-1']['process'], s, 'depth-limit')])
    root = look_leaf('web-1', '10.213.0.2', 80, ns['web-1']['process'], clients=[
        look_leaf('client-1', '10.213.0.1', None, ns['client-1']['process'],
                  stats(20, 1580, 17240)),
        look_leaf(None, '198.51.100.7', None, None, stats(3, 240, 2600), 'no-agent',
                  detail='no member claims 198.51.100.7')],
        deps=[app('app-1', '10.213.0.3'), app('app-2', '10.213.0.4')])
    return {'query': {'target': '10.213.0.2:80', 'direction': 'both', 'depth': 2,
                      'group_by': 'workload'}, 'root': root}


def peers(hosts):
    return [{'name': h, 'addr': f'10.213.{i // 250}.{i % 250 + 1}:7946', 'state': 'alive',
             'incarnation': 1, 'endpoints': 3, 'generation': 7,
             'last_change': rfc3339(NOW - datetime.timedelta(minutes=70))}
            for i, h in enumerate(hosts)]


def big_map(workloads, per_host=10):
    """N workloads, per_host on each host; each calls two on other hosts."""
    hosts = [f'host-{i:03d}' for i in range((workloads + per_host - 1) // per_host)]
    nodes, edges = [], []
    for i in range(workloads):
        h = hosts[i // per_host]
        name = f'svc-{i:03d}.service'
        nodes.append(node(f'{h}/wunit:{name}', 'workload', h, name,
                          process('svc', 1000 + i, unit(name)),
                          [f'10.{i // 250}.{i % 250}.1:{8000 + i % 7}']))
    for i in range(workloads):
        for k in (1, 2):
            j = (i * 7 + k * per_host + 3) % workloads
            if j // per_host == i // per_host:
                continue
            edges.append(edge(nodes[i]['id'], nodes[j]['id'], nodes[j]['endpoints'][0],
                              stats(1 + (i + j) % 9, 800 * k, 4000 + i)))
    return map_json(nodes, edges, members(hosts), window(NOW - datetime.timedelta(hours=1)))


def hostile_map():
    """The lab's map with names an attacker controls (a process's comm, a
    container's name) made of markup: the page must show them as text."""
    m = lab_map()
    web = m['nodes'][1]
    web['label'] = '<img src=x onerror="window.pwned=1">nginx.service'
    web['process']['comm'] = '<script>window.pwned=2</script>'
    web['status_detail'] = '<b>bold</b>'
    return m


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--write', metavar='DIR')
    p.add_argument('--workloads', type=int)
    a = p.parse_args()
    if a.workloads:
        json.dump(big_map(a.workloads), sys.stdout)
        return
    if not a.write:
        p.error('give --write DIR or --workloads N')
    os.makedirs(a.write, exist_ok=True)
    files = {'map_lab.json': lab_map(), 'changes_lab.json': lab_changes(),
             'look_nginx.json': look_nginx(), 'peers.json': peers(HOSTS),
             'endpoints.json': [{'node': x['host'], 'family': 'ipv4',
                                 'addr': x['endpoints'][0].split(':')[0],
                                 'port': int(x['endpoints'][0].split(':')[1]), 'kind': 'listen'}
                                for x in lab_nodes() if x['host'] and x['endpoints']]}
    for name, body in files.items():
        with open(os.path.join(a.write, name), 'w') as f:
            json.dump(body, f, indent=1)
            f.write('\n')


if __name__ == '__main__':
    main()
