// The side panel: a node's details, look tree and edges; an edge's stats; a
// collapsed group; the peers and members lists; the list of changes.
import {clear, connCount, el, formatBytes, formatTime, totalBytes, workloadLabel} from './util.js';

function address(n) {
  const ip = n.addr.includes(':') ? `[${n.addr}]` : n.addr;
  return n.port ? `${ip}:${n.port}` : n.addr;
}

// One look node's line, as meshctl's FormatLookTree prints it.
function lookLabel(n) {
  let s = address(n);
  if (n.balancer) {
    s += ' balancer';
  } else if (n.process) {
    const p = n.process;
    const w = workloadLabel(p.workload);
    if (w) s += ' ' + w;
    s += ` ('${p.comm}', ` + (p.pgid ? `pgid=${p.pgid}` : `pid=${p.pid}`) + ')';
  }
  if (n.host) s += ' on ' + n.host;
  if (n.via) s += ' via ' + n.via;
  const others = (n.aliases || []).filter((a) => a !== n.via);
  if (others.length) s += ` (also ${others.join(', ')})`;
  return s;
}

export function lookTreeText(root) {
  const out = [];
  const walk = (n, level, client) => {
    let line = level > 0 ? ' '.repeat(5 * (level - 1)) + (client ? '└<-- ' : '└--> ') : '';
    line += lookLabel(n);
    if (n.status !== 'ok') line += ` [${n.status}]`;
    if (level === 0 && n.status === 'ok' && !n.process && !(n.clients || []).length &&
        !(n.dependencies || []).length) {
      line += n.port ? '  (nothing listens here, and no flows to it in the window)' :
                       '  (no process here connected anywhere in the window)';
    }
    if (n.stats) line += `  ${connCount(n.stats)} ${formatBytes(totalBytes(n.stats))}`;
    if (n.status_detail) line += `  (${n.status_detail})`;
    out.push(line);
    for (const k of n.clients || []) walk(k, level + 1, true);
    for (const k of n.dependencies || []) walk(k, level + 1, false);
  };
  walk(root, 0, false);
  return out.join('\n');
}

function table(rows) {
  return el('table', {class: 'kv'},
            rows.filter(([, v]) => v !== undefined && v !== null && v !== '')
                .map(([k, v]) => el('tr', {}, el('th', {text: k}),
                                    el('td', {}, v instanceof Node ? v : String(v)))));
}

export function statsRows(s) {
  return [
    ['connections', s.connections + (s.opened !== s.connections ? ` (${s.opened} opened)` : '')],
    ['bytes', `${formatBytes(s.bytes_tx)} sent, ${formatBytes(s.bytes_rx)} received`],
    ['segments', `${s.segs_out} out, ${s.segs_in} in, ${s.retrans} retransmitted`],
    ['rtt', s.rtt_us ? `${(s.rtt_us / 1000).toFixed(2)} ms` : '-'],
    ['first seen', formatTime(s.first_seen)],
    ['last seen', formatTime(s.last_seen)],
  ];
}

function edgeLine(ctx, e, other, arrow) {
  const peer = ctx.nodeById.get(other);
  return el('li', {},
            el('a', {href: '#', class: 'edge-link', onclick: (ev) => {
              ev.preventDefault();
              ctx.selectEdge(e);
            }}, `${arrow} ${peer ? peer.label : other}`),
            ` ${e.endpoint}${e.via ? ' via ' + e.via : ''}: ${connCount(e.stats)}, ` +
            formatBytes(totalBytes(e.stats)));
}

// ctx: {panel, nodeById, edges, peers, fetchLook(target) -> Promise, selectEdge}
export function showNode(ctx, n) {
  const p = n.process;
  const peer = n.host ? ctx.peers.find((x) => x.name === n.host) : null;
  const body = clear(ctx.panel);
  body.append(el('h2', {text: n.label}),
              el('p', {class: `badge kind-${n.kind} st-${n.status}`},
                 `${n.kind}${n.status !== 'ok' ? ' · ' + n.status : ''}`));
  body.append(table([
    ['id', n.id], ['host', n.host || '(no member claims it)'],
    ['peer state', peer ? `${peer.state} (${peer.addr}, last change ${formatTime(peer.last_change)})` :
                          (n.host ? 'not in the peers list' : null)],
    ['status', n.status_detail ? `${n.status}: ${n.status_detail}` : n.status],
    ['workload', p && p.workload ? workloadLabel(p.workload) : null],
    ['process', p ? `'${p.comm}' pid ${p.pid}` + (p.pgid ? ` pgid ${p.pgid}` : '') : null],
    ['exe', p ? p.exe : null],
    ['endpoints', (n.endpoints || []).join(', ') || '-'],
  ]));
  const ins = ctx.edges.filter((e) => e.to === n.id);
  const outs = ctx.edges.filter((e) => e.from === n.id);
  body.append(el('h3', {text: `Clients (${ins.length})`}),
              el('ul', {class: 'edges'}, ins.map((e) => edgeLine(ctx, e, e.from, '←'))),
              el('h3', {text: `Dependencies (${outs.length})`}),
              el('ul', {class: 'edges'}, outs.map((e) => edgeLine(ctx, e, e.to, '→'))));
  const look = el('pre', {class: 'look-tree', id: 'look-tree'});
  body.append(el('h3', {text: 'Look tree'}), look);
  // A client address has no port: there is nothing listening to look at.
  const target = (n.endpoints || []).find((e) => /:\d+$/.test(e));
  if (!target) {
    look.textContent = 'no endpoint to look at (a client: it listens nowhere)';
    look.dataset.state = 'none';
    return;
  }
  look.textContent = `looking at ${target} ...`;
  look.dataset.state = 'loading';
  ctx.fetchLook(target).then((answer) => {
    if (look.isConnected) {
      look.textContent = lookTreeText(answer.root);
      look.dataset.state = 'done';
    }
  }, (err) => {
    look.textContent = `look ${target} failed: ${err.message}`;
    look.dataset.state = 'error';
  });
}

export function showEdge(ctx, e, change) {
  const from = ctx.nodeById.get(e.from);
  const to = ctx.nodeById.get(e.to);
  const body = clear(ctx.panel);
  body.append(el('h2', {text: `${from ? from.label : e.from} → ${to ? to.label : e.to}`}));
  body.append(table([
    ['from', e.from], ['to', e.to], ['endpoint', e.endpoint], ['via', e.via],
    ['seen by', [e.client_seen && 'client', e.server_seen && 'server'].filter(Boolean).join(' and ')],
    ...statsRows(e.stats),
  ]));
  if (change) {
    body.append(el('h3', {text: `Change: ${change.change}` +
                                (change.factor !== null ? ` ×${change.factor}` : '')}));
    if (change.before) body.append(el('p', {text: 'Before:'}), table(statsRows(change.before)));
  }
}

export function showGroup(ctx, key, members, expand) {
  const body = clear(ctx.panel);
  body.append(el('h2', {text: key}),
              el('p', {text: `${members.length} nodes, collapsed into one; ` +
                             'its edges are the sums of its members\' edges.'}),
              el('button', {type: 'button', id: 'expand-group', onclick: expand}, 'Expand'),
              el('ul', {}, members.map((m) => el('li', {text: `${m.label} (${m.status})`}))));
}

// The members list: state from gossip, and why a member did not answer.
export function renderPeers(box, peers, members) {
  clear(box);
  const answered = new Map((members || []).map((m) => [m.name, m]));
  const rows = peers.map((p) => {
    const m = answered.get(p.name);
    const note = !m ? '' : m.answered ? `${m.latency_ms} ms` : `no answer: ${m.error || '?'}`;
    return el('tr', {class: m && !m.answered ? 'down' : ''},
              el('td', {text: p.name}), el('td', {class: `state state-${p.state}`, text: p.state}),
              el('td', {text: p.addr}), el('td', {text: note}));
  });
  for (const m of members || []) {
    if (!peers.some((p) => p.name === m.name)) {
      rows.push(el('tr', {class: m.answered ? '' : 'down'}, el('td', {text: m.name}),
                   el('td', {text: m.state || '?'}), el('td', {text: m.address || ''}),
                   el('td', {text: m.answered ? `${m.latency_ms} ms` : `no answer: ${m.error}`})));
    }
  }
  box.append(el('table', {class: 'peers'},
                el('tr', {}, ['name', 'state', 'address', 'map answer'].map(
                                 (h) => el('th', {text: h}))), rows));
}

export function renderChanges(box, changes, nodeById, pick) {
  clear(box);
  if (!Array.isArray(changes)) {
    box.append(el('p', {class: 'muted', text: 'Pick "compare to" to list what changed.'}));
    return;
  }
  if (!changes.length) box.append(el('p', {text: 'No edge appeared, disappeared or changed.'}));
  const name = (id) => (nodeById.get(id) || {label: id}).label;
  box.append(el('ul', {class: 'changes'}, changes.map((c) => el('li', {class: `chg-${c.change}`},
      el('a', {href: '#', onclick: (ev) => {
        ev.preventDefault();
        pick(c);
      }}, `${c.change}${c.factor !== null ? ' ×' + c.factor : ''}: `),
      `${name(c.from)} → ${name(c.to)} (${c.endpoint})`))));
}
