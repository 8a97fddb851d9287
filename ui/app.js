// The map page: fetches /api/map (docs/api.md) with the toolbar's query,
// draws it with cytoscape + ELK, refreshes it live, and wires the panel.
import {buildElements, kDenseEdges, layoutOptions, structureKey} from './js/graph.js';
import {mapStyle} from './js/graph_style.js';
import {download, graphSvg} from './js/export.js';
import {renderChanges, renderPeers, showEdge, showGroup, showNode} from './js/panel.js';
import {el, clear, edgeKey, formatTime} from './js/util.js';

const kRefreshMs = 5000;
// Above this many nodes, hosts start collapsed: 500 workloads drawn one by
// one are a hairball, and a layered layout of them takes seconds.
const kAutoCollapse = 60;

const $ = (id) => document.getElementById(id);

const state = {
  params: {since: '1h', until: '', compare_to: '', host: ''},
  groupBy: 'host',
  toggled: new Map(),  // group key -> collapsed, as the operator chose it
  paused: false,
  selected: null,  // {type: 'node'|'edge'|'group', id}
  map: null, mapText: '', peers: [], structure: '', groups: new Map(),
  nodeById: new Map(), inFlight: false, timer: null,
};

// What tests and the benchmark read: the graph, and when it was last drawn
// (performance.now(): ms since navigation) with where the time went.
const fm = window.flowmesh = {state, cy: null, drawnAt: null, draws: 0, layouts: 0, errors: 0,
                              timing: {}, svg: () => graphSvg(fm.cy)};

class HttpError extends Error {}

async function getJson(url) {
  // X-Flowmesh-Api: meshd answers /api/ only with it (or a Bearer token), which
  // another site's <img> or form cannot send (docs/api.md "Access").
  const r = await fetch(url, {credentials: 'same-origin', cache: 'no-store',
                              headers: {'X-Flowmesh-Api': '1'}});
  const text = await r.text();
  if (r.status === 401) {
    $('login-banner').hidden = false;
    throw new HttpError('not logged in (401): open the page again to log in');
  }
  let body = null;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new HttpError(`${url}: HTTP ${r.status}, not JSON: ${text.slice(0, 120)}`);
  }
  if (!r.ok) throw new HttpError(body && body.error ? body.error : `${url}: HTTP ${r.status}`);
  return {body, text};
}

function queryString() {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(state.params)) if (v) q.set(k, v);
  return q.toString();
}

function showError(message) {
  const box = $('error');
  box.textContent = message || '';
  box.hidden = !message;
}

function collapsedSet(map) {
  const workloads = (map.nodes || []).filter((n) => n.kind !== 'external').length;
  const auto = state.groupBy === 'host' && workloads > kAutoCollapse;
  const out = new Set();
  const keys = new Set((map.nodes || []).map((n) => (state.groupBy === 'host' ? n.host : n.label)));
  for (const k of keys) {
    if (!k) continue;
    const chosen = state.toggled.get(k);
    if (chosen === true || (chosen === undefined && auto)) out.add(k);
  }
  return out;
}

function markDrawn() {
  fm.drawnAt = performance.now();
  fm.draws++;
  document.body.dataset.drawn = String(fm.draws);
}

function draw(relayout) {
  const started = performance.now();
  const map = state.map;
  const {elements, groups} = buildElements(map, {groupBy: state.groupBy,
                                                 collapsed: collapsedSet(map),
                                                 changes: Array.isArray(map.changes)});
  state.groups = groups;
  const key = structureKey(elements);
  const cy = fm.cy;
  const same = key === state.structure && !relayout;
  cy.batch(() => {
    const want = new Set(elements.map((x) => x.data.id));
    cy.elements().filter((x) => !want.has(x.id())).remove();
    for (const x of elements) {
      const have = cy.getElementById(x.data.id);
      if (have.nonempty() && (have.isNode() ? (have.data('parent') || undefined) === x.data.parent :
                                              true)) {
        have.data(x.data);
        have.classes(x.classes || '');
      } else {
        have.remove();
        cy.add(x);
      }
    }
  });
  state.structure = key;
  const dense = cy.edges().length > kDenseEdges && cy.nodes(':parent').empty();
  cy.edges().toggleClass('dense', dense);
  markNear();
  renderSummary();
  if (same) {
    markDrawn();
    return;
  }
  fm.layouts++;
  fm.timing.build = performance.now() - started;
  const compound = cy.nodes(':parent').nonempty();
  (compound ? loadElk() : Promise.resolve()).then(() => {
    const t1 = performance.now();
    const options = layoutOptions(false, compound, cy.elements().length, cy.edges().length);
    const layout = cy.layout(options);
    layout.one('layoutstop', () => {
      fm.timing.layout = performance.now() - t1;
      fm.timing.layoutName = options.name;
      restoreSelection();
      markDrawn();
    });
    layout.run();
  }, (e) => showError(e.message));
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = el('script', {src});
    s.addEventListener('load', resolve);
    s.addEventListener('error', () => reject(new Error(`cannot load ${src} from meshd`)));
    document.head.append(s);
  });
}

let elk = null;
function loadElk() {
  const t0 = performance.now();
  // In order: the plug-in takes the ELK global that elk.bundled.js defines.
  elk = elk || loadScript('/lib/elk.bundled.js').then(() => loadScript('/lib/cytoscape-elk.js'))
                   .then(() => {
                     if (!window.cytoscape('layout', 'elk')) window.cytoscape.use(window.cytoscapeElk);
                     fm.timing.elkLoad = performance.now() - t0;
                   });
  return elk;
}

function renderSummary() {
  const m = state.map;
  const s = m.summary;
  const w = m.window;
  $('summary').textContent =
      `${formatTime(w.since)} – ${w.until ? formatTime(w.until) : 'now'} · ` +
      `${s.answered}/${s.members} members answered · ${s.workloads} workloads · ` +
      `${s.balancers} balancers · ${s.external} external · ${s.edges} edges` +
      (s.unreachable_nodes ? ` · ${s.unreachable_nodes} unreachable` : '') +
      ` · updated ${new Date().toLocaleTimeString()}`;
  const down = (m.members || []).filter((x) => !x.answered);
  $('members-note').textContent = down.length ?
      `Did not answer: ${down.map((x) => `${x.name} (${x.error || 'no reason given'})`).join('; ')}` :
      '';
  renderPeers($('peers'), state.peers, m.members);
  renderChanges($('changes'), m.changes, state.nodeById, (c) => selectChange(c));
  $('changes-tab').textContent = Array.isArray(m.changes) ? `Changes (${m.changes.length})` :
                                                            'Changes';
  refreshHostFilter();
}

function refreshHostFilter() {
  const sel = $('host-filter');
  const hosts = new Set(state.peers.map((p) => p.name));
  for (const n of state.map.nodes || []) if (n.host) hosts.add(n.host);
  const want = ['', ...[...hosts].sort()];
  const have = [...sel.options].map((o) => o.value);
  if (want.join('\n') === have.join('\n')) return;
  clear(sel);
  for (const h of want) sel.append(el('option', {value: h, text: h || 'all hosts'}));
  sel.value = state.params.host;
}

function panelContext() {
  return {
    panel: $('details'), nodeById: state.nodeById, edges: state.map.edges || [],
    peers: state.peers,
    fetchLook: async (target) => (await getJson(
        '/api/look?' + new URLSearchParams({target, since: state.params.since,
                                            ...(state.params.until ? {until: state.params.until}
                                                                    : {})}))).body,
    selectEdge: (e) => selectEdgeByKey(edgeKey(e)),
  };
}

function showTab(name) {
  for (const t of ['details', 'peers', 'changes']) {
    $(t).hidden = t !== name;
    $(`${t}-tab`).classList.toggle('active', t === name);
  }
}

function selectNode(id) {
  state.selected = {type: 'node', id};
  const n = state.nodeById.get(id);
  if (n) showNode(panelContext(), n);
  showTab('details');
}

function selectEdgeByKey(key) {
  state.selected = {type: 'edge', id: key};
  const e = (state.map.edges || []).find((x) => edgeKey(x) === key) ||
      (state.map.changes || []).find((x) => edgeKey(x) === key);
  if (!e) return;
  const change = (state.map.changes || []).find((x) => edgeKey(x) === key);
  showEdge(panelContext(), e, change);
  fm.cy.elements().unselect();
  fm.cy.edges().filter((x) => x.data('key') === key).select();
  showTab('details');
}

function selectChange(c) {
  selectEdgeByKey(edgeKey(c));
}

function selectGroup(key) {
  state.selected = {type: 'group', id: key};
  const members = state.groups.get(key) || [];
  const collapsed = collapsedSet(state.map).has(key);
  showGroup(panelContext(), key, members, () => toggleGroup(key));
  const button = $('expand-group');
  if (button) button.textContent = collapsed ? 'Expand' : 'Collapse';
  showTab('details');
}

function toggleGroup(key) {
  state.toggled.set(key, !collapsedSet(state.map).has(key));
  draw(false);
  selectGroup(key);
}

// The picked node's edges: labelled even in a dense overview.
function markNear() {
  const cy = fm.cy;
  cy.edges('.near').removeClass('near');
  const s = state.selected;
  if (!s || s.type === 'edge') return;
  const id = s.type === 'group' ? 'grp:' + s.id : s.id;
  cy.getElementById(id).connectedEdges().addClass('near');
}

function restoreSelection() {
  const s = state.selected;
  if (!s) return;
  const id = s.type === 'node' ? s.id : s.type === 'group' ? 'grp:' + s.id : null;
  if (id) fm.cy.getElementById(id).select();
}

function search(text) {
  const cy = fm.cy;
  cy.elements().removeClass('match');
  const q = text.trim().toLowerCase();
  if (!q) {
    $('search-count').textContent = '';
    return;
  }
  const hits = new Set();
  for (const n of state.map.nodes || []) {
    const p = n.process;
    const w = p && p.workload;
    const fields = [n.id, n.label, n.host, ...(n.endpoints || []), p && p.comm,
                    w && w.name, w && w.unit, w && w.id, w && w.pod && w.pod.name];
    if (fields.some((f) => f && String(f).toLowerCase().includes(q))) hits.add(n.id);
  }
  let found = cy.collection();
  for (const id of hits) {
    let x = cy.getElementById(id);
    if (x.empty()) {
      const n = state.nodeById.get(id);
      const key = state.groupBy === 'host' ? n.host : n.label;
      x = cy.getElementById('grp:' + key);
    }
    found = found.union(x);
  }
  found.addClass('match');
  $('search-count').textContent = `${hits.size} ${hits.size === 1 ? 'match' : 'matches'}`;
  if (found.nonempty()) cy.animate({fit: {eles: found, padding: 120}, duration: 300});
}

async function refresh(relayout) {
  if (state.inFlight) return;
  state.inFlight = true;
  try {
    const qs = queryString();
    const t0 = performance.now();
    const [map, peers] = await Promise.all([getJson('/api/map?' + qs),
                                            getJson('/api/peers').catch(() => null)]);
    fm.timing.fetch = performance.now() - t0;
    fm.timing.fetchStart = t0;
    state.map = map.body;
    state.mapText = map.text;
    state.mapQuery = qs;
    if (peers) state.peers = peers.body;
    state.nodeById = new Map((state.map.nodes || []).map((n) => [n.id, n]));
    showError('');
    draw(relayout);
  } catch (e) {
    fm.errors++;
    showError(e.message);
  } finally {
    state.inFlight = false;
  }
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(async () => {
    if (!state.paused && !document.hidden) await refresh(false);
    schedule();
  }, kRefreshMs);
}

function applyWindow() {
  const choice = $('window').value;
  $('custom').hidden = choice !== 'custom';
  if (choice === 'custom') {
    state.params.since = $('since').value.trim();
    state.params.until = $('until').value.trim();
  } else {
    state.params.since = choice;
    state.params.until = '';
  }
  state.params.compare_to = $('compare').value;
  if (state.params.compare_to) showTab('changes');
  refresh(false);
}

function wire() {
  $('window').addEventListener('change', () => {
    $('custom').hidden = $('window').value !== 'custom';
    if ($('window').value !== 'custom') applyWindow();
  });
  $('custom').addEventListener('submit', (ev) => {
    ev.preventDefault();
    applyWindow();
  });
  $('compare').addEventListener('change', applyWindow);
  $('group-by').addEventListener('change', () => {
    state.groupBy = $('group-by').value;
    state.toggled.clear();
    draw(true);
  });
  $('host-filter').addEventListener('change', () => {
    state.params.host = $('host-filter').value;
    refresh(false);
  });
  $('pause').addEventListener('click', () => {
    state.paused = !state.paused;
    $('pause').textContent = state.paused ? 'Resume' : 'Pause';
    $('pause').setAttribute('aria-pressed', String(state.paused));
  });
  $('fit').addEventListener('click', () => fm.cy.fit(undefined, 24));
  const setAll = (collapsed) => {
    for (const k of state.groups.keys()) state.toggled.set(k, collapsed);
    draw(false);
  };
  $('collapse-all').addEventListener('click', () => setAll(true));
  $('expand-all').addEventListener('click', () => setAll(false));
  $('search').addEventListener('input', () => search($('search').value));
  $('export-svg').addEventListener('click', () =>
    download('flowmesh-map.svg', 'image/svg+xml', graphSvg(fm.cy)));
  $('export-json').addEventListener('click', () =>
    download('flowmesh-map.json', 'application/json', state.mapText));
  $('export-dot').addEventListener('click', (ev) => {
    ev.currentTarget.href = '/api/map.dot?' + queryString();
  });
  for (const t of ['details', 'peers', 'changes']) {
    $(`${t}-tab`).addEventListener('click', () => showTab(t));
  }
  const cy = fm.cy;
  cy.on('tap', 'node', (ev) => {
    const n = ev.target;
    if (n.data('groupKey') !== undefined) selectGroup(n.data('groupKey'));
    else selectNode(n.id());
    markNear();
  });
  cy.on('dbltap', 'node', (ev) => {
    const key = ev.target.data('groupKey');
    if (key !== undefined) toggleGroup(key);
  });
  cy.on('tap', 'edge', (ev) => {
    const key = ev.target.data('key');
    if (key) selectEdgeByKey(key);
    else $('details').textContent = `${ev.target.data('aggregate')} edges between collapsed ` +
                                    `groups: ${ev.target.data('label').replace(/\n/g, ', ')}`;
  });
}

function start() {
  window.cytoscape.use(window.cytoscapeDagre);
  fm.cy = window.cytoscape({container: $('graph'), style: mapStyle(), wheelSensitivity: 0.3,
                            minZoom: 0.05, maxZoom: 3, boxSelectionEnabled: false});
  wire();
  refresh(true).then(schedule);
}

start();
