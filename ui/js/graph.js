// The map JSON (docs/api.md) as cytoscape elements: grouping by host or
// workload, collapsed groups with aggregated edges, and the changes view.
import {connCount, edgeKey, formatBytes, totalBytes} from './util.js';

const kGroupPrefix = 'grp:';

// The compound parent a node belongs to, or null. By workload, only names
// shared by two or more nodes get a box: a box around one node is noise.
function groupKeyOf(node, groupBy, sharedLabels) {
  if (groupBy === 'host') return node.host || null;
  if (node.kind === 'external') return null;
  return sharedLabels.has(node.label) ? node.label : null;
}

// The text drawn in a node: what operators know it by, where it listens,
// and any status that is not ok.
// A name is at most kMaxLabel characters in the graph (the panel has it
// whole): a process may call itself anything, at any length.
const kMaxLabel = 60;
function short(text) {
  return text.length > kMaxLabel ? text.slice(0, kMaxLabel - 1) + '…' : text;
}

export function nodeDisplay(node) {
  const lines = [short(node.label)];
  // A balancer's label is "balancer FRONT" already (meshd's MapLabel).
  const ep = node.kind === 'balancer' ? []
      : (node.endpoints || []).filter((e) => e !== node.label);
  if (ep.length) lines.push(ep.length > 2 ? `${ep[0]} (+${ep.length - 1})` : ep.join(', '));
  if (node.status && node.status !== 'ok') lines.push(`[${node.status}]`);
  return lines.join('\n');
}

export function edgeLabel(stats, via, extra) {
  let s = `${connCount(stats)} · ${formatBytes(totalBytes(stats))}`;
  if (via) s += `\nvia ${via}`;
  if (extra) s += `\n${extra}`;
  return s;
}

function edgeWidth(conns) {
  return 1.5 + Math.min(7, Math.log2(1 + conns));
}

// A measuring context, so a node's box fits its longest line.
let measure = null;
function textWidth(text) {
  if (!measure) {
    measure = document.createElement('canvas').getContext('2d');
    measure.font = '12px system-ui, sans-serif';
  }
  let w = 0;
  for (const line of text.split('\n')) w = Math.max(w, measure.measureText(line).width);
  return w;
}

function nodeElement(n, parent) {
  const display = nodeDisplay(n);
  const lines = display.split('\n').length;
  const classes = [n.kind, `st-${n.status || 'ok'}`];
  return {
    group: 'nodes',
    data: {
      id: n.id, label: n.label, display, kind: n.kind, status: n.status || 'ok',
      host: n.host, parent: parent || undefined,
      w: Math.ceil(textWidth(display)) + (n.kind === 'balancer' ? 48 : 22),
      h: lines * 15 + (n.kind === 'balancer' ? 26 : 12),
    },
    classes: classes.join(' '),
  };
}

function groupElement(key, groupBy, members, collapsed) {
  const id = kGroupPrefix + key;
  const title = groupBy === 'host' ? key : key;
  if (!collapsed) {
    return {group: 'nodes', data: {id, label: title, display: title, kind: 'group', groupKey: key},
            classes: 'group'};
  }
  const n = members.length;
  const display = `${title}\n${n} ${n === 1 ? 'node' : 'nodes'} (collapsed)`;
  const down = members.some((m) => m.status === 'unreachable');
  return {
    group: 'nodes',
    data: {id, label: title, display, kind: 'collapsed', groupKey: key, members: n,
           w: Math.ceil(textWidth(display)) + 26, h: 2 * 15 + 14},
    classes: 'collapsed' + (down ? ' st-unreachable' : ''),
  };
}

// opts: {groupBy: 'host'|'workload', collapsed: Set of group keys,
// changes: bool (draw the compare)}. Returns {elements, groups, visibleOf}.
export function buildElements(map, opts) {
  const nodes = map.nodes || [];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const labelCount = new Map();
  for (const n of nodes) {
    if (n.kind !== 'external') labelCount.set(n.label, (labelCount.get(n.label) || 0) + 1);
  }
  const shared = new Set([...labelCount].filter(([, c]) => c > 1).map(([l]) => l));

  const groups = new Map();  // key -> member nodes
  const groupOf = new Map();  // node id -> key
  for (const n of nodes) {
    const key = groupKeyOf(n, opts.groupBy, shared);
    if (key === null) continue;
    groupOf.set(n.id, key);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(n);
  }
  const isCollapsed = (key) => key !== undefined && opts.collapsed.has(key);
  const visibleOf = (id) => {
    const key = groupOf.get(id);
    return isCollapsed(key) ? kGroupPrefix + key : id;
  };

  const elements = [];
  for (const [key, members] of groups) {
    elements.push(groupElement(key, opts.groupBy, members, isCollapsed(key)));
  }
  for (const n of nodes) {
    const key = groupOf.get(n.id);
    if (isCollapsed(key)) continue;
    elements.push(nodeElement(n, key === undefined ? null : kGroupPrefix + key));
  }

  // The compare: how each edge of this window changed, by key.
  const changeOf = new Map();
  const gone = [];
  if (opts.changes && Array.isArray(map.changes)) {
    for (const c of map.changes) {
      if (c.change === 'disappeared') gone.push(c);
      else changeOf.set(edgeKey(c), c);
    }
  }

  const aggregated = new Map();
  const addAggregate = (src, dst, e, cls) => {
    const id = `agg:${src}|${dst}|${cls}`;
    let a = aggregated.get(id);
    if (!a) {
      a = {id, source: src, target: dst, edges: 0, connections: 0, opened: 0,
           bytes_tx: 0, bytes_rx: 0, cls};
      aggregated.set(id, a);
    }
    a.edges++;
    a.connections += e.stats.connections;
    a.opened += e.stats.opened;
    a.bytes_tx += e.stats.bytes_tx;
    a.bytes_rx += e.stats.bytes_rx;
  };

  for (const e of map.edges || []) {
    const src = visibleOf(e.from);
    const dst = visibleOf(e.to);
    const c = changeOf.get(edgeKey(e));
    const cls = c ? c.change : '';
    if (src !== e.from || dst !== e.to) {
      if (src !== dst) addAggregate(src, dst, e, cls);
      continue;
    }
    const extra = c && c.change === 'changed' && c.factor !== null ?
        `×${Number(c.factor).toFixed(2)} vs before` : (c ? c.change : '');
    elements.push({
      group: 'edges',
      data: {id: 'e:' + edgeKey(e), source: src, target: dst, key: edgeKey(e),
             label: edgeLabel(e.stats, e.via, extra), conns: e.stats.connections,
             width: edgeWidth(e.stats.connections)},
      classes: cls,
    });
  }
  for (const c of gone) {
    // A disappeared edge's ends may be gone from this window too: draw them
    // from the id alone, so the red edge has somewhere to go.
    for (const id of [c.from, c.to]) {
      if (byId.has(id) || elements.some((x) => x.data.id === id)) continue;
      const label = id.replace(/^ext:/, '');
      elements.push({group: 'nodes', data: {id, label, display: `${short(label)}\n[gone]`,
                                            kind: 'gone', status: 'gone', h: 42,
                                            w: Math.ceil(textWidth(short(label))) + 22},
                     classes: 'gone'});
    }
    const src = visibleOf(c.from);
    const dst = visibleOf(c.to);
    if (src === dst) continue;
    elements.push({
      group: 'edges',
      data: {id: 'gone:' + edgeKey(c), source: src, target: dst, key: edgeKey(c),
             label: edgeLabel(c.stats, c.via, 'disappeared'), conns: 0, width: 1.5},
      classes: 'disappeared',
    });
  }
  for (const a of aggregated.values()) {
    const label = edgeLabel(a, null, `${a.edges} ${a.edges === 1 ? 'edge' : 'edges'}`);
    elements.push({
      group: 'edges',
      data: {id: a.id, source: a.source, target: a.target, label, conns: a.connections,
             width: edgeWidth(a.connections), aggregate: a.edges},
      classes: 'aggregate ' + a.cls,
    });
  }
  return {elements, groups};
}

// What decides whether to lay out again: which elements exist and where they
// sit, not their numbers (those update in place).
export function structureKey(elements) {
  return elements.map((x) => x.data.id + '>' + (x.data.parent || '') + (x.data.source || '') +
                             '>' + (x.data.target || '')).sort().join('\n');
}

// Boxes (compound nodes) need ELK, which lays out a hierarchy as layers;
// a flat graph, as collapsed hosts are, gets dagre: layered too, and on this
// machine 50 hosts with 400 edges take 0.2 s in it against 2-3 s in ELK.
// Past ~200 edges (50 collapsed hosts calling each other) dagre takes 1.5 s
// too, measured in headless Chromium here, and no layering untangles that
// many: the overview is then cytoscape's grid by name (30 ms), its edges
// unlabelled until a node is picked (graph_style.js "dense"), and the
// operator expands or filters a host from there.
export const kDenseEdges = 200;
export function layoutOptions(animate, compound, size, edges) {
  const common = {fit: true, padding: 24, animate, animationDuration: 250};
  if (!compound && edges > kDenseEdges) {
    return {...common, name: 'grid', avoidOverlap: true, avoidOverlapPadding: 40,
            condense: true, sort: (a, b) => String(a.data('label')).localeCompare(String(b.data('label')))};
  }
  if (!compound) {
    return {...common, name: 'dagre', rankDir: 'LR', nodeSep: 28, rankSep: 150,
            edgeSep: 12, ranker: size > 300 ? 'longest-path' : 'network-simplex'};
  }
  return {
    ...common,
    name: 'elk',
    nodeDimensionsIncludeLabels: false,
    elk: {
      'algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.layered.spacing.nodeNodeBetweenLayers': 150,
      'elk.spacing.nodeNode': 28,
      'elk.padding': '[top=30,left=14,bottom=14,right=14]',
      'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF',
      // ELK's default thoroughness costs seconds past a few hundred elements.
      'elk.layered.thoroughness': size > 150 ? 1 : 7,
    },
  };
}
