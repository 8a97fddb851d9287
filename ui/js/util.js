// Small helpers the page's modules share: DOM building that never parses
// data as HTML, and the byte/connection formats meshctl prints.

// Labels come from other machines' process and container names: they only
// ever reach the DOM as text nodes, never through innerHTML.
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// "512 B", "3.4 KB", "1.2 MB": units of 1024, as FormatLookBytes.
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB', 'PB'];
  let v = bytes / 1024;
  let u = 0;
  while (v >= 1024 && u + 1 < units.length) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

// "1 conn", "3 conns (1 new)": opened < connections means some were open
// before the window began (a pool, a keep-alive).
export function connCount(stats) {
  const c = stats.connections;
  let s = `${c} ${c === 1 ? 'conn' : 'conns'}`;
  if (stats.opened !== undefined && stats.opened !== c) s += ` (${stats.opened} new)`;
  return s;
}

export function totalBytes(stats) {
  return (stats.bytes_tx || 0) + (stats.bytes_rx || 0);
}

// WorkloadLabel (node/proc/workload.cc): the name operators know it by.
export function workloadLabel(w) {
  if (!w) return '';
  if (w.kind === 'unit') return (w.user_unit ? 'user unit ' : '') + w.id;
  if (w.kind !== 'container') return w.id || '';
  const id = (w.id || '').slice(0, 12);
  const how = w.runtime ? w.runtime + (id ? ' ' + id : '') : id;
  if (w.pod) {
    const p = w.pod;
    const pod = p.name ? (p.namespace ? p.namespace + '/' : '') + p.name : p.uid;
    const s = 'pod ' + pod + (w.name ? '/' + w.name : '');
    return how ? `${s} (${how})` : s;
  }
  let s = 'container ' + (w.name || id);
  if (w.name && how) s += ` (${how})`;
  else if (!w.name && w.runtime) s += ` (${w.runtime})`;
  return s;
}

export function formatTime(rfc3339) {
  if (!rfc3339) return '-';
  const d = new Date(rfc3339);
  return isNaN(d) ? rfc3339 : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

// A stable key for an edge: (from, to, endpoint) as the map keys them.
export function edgeKey(e) {
  return `${e.from}|${e.to}|${e.endpoint}`;
}
