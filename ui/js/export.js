// Export of what the page shows: the drawn graph as SVG (written from
// cytoscape's positions and styles), the map as JSON (the bytes fetched) and
// as dot (the server's /api/map.dot for the same query).
// No SVG plug-in: the one for cytoscape (cytoscape-svg) is GPL-3.0, and
// this serialiser of boxes, lines and text is short.

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;');
}

function shapePath(shape, x, y, w, h) {
  if (shape === 'diamond') {
    return `<polygon points="${x},${y - h / 2} ${x + w / 2},${y} ${x},${y + h / 2} ${x - w / 2},${y}"`;
  }
  if (shape === 'ellipse') return `<ellipse cx="${x}" cy="${y}" rx="${w / 2}" ry="${h / 2}"`;
  return `<rect x="${x - w / 2}" y="${y - h / 2}" width="${w}" height="${h}" rx="6"`;
}

function dash(style) {
  if (style === 'dashed') return ' stroke-dasharray="6 4"';
  if (style === 'dotted') return ' stroke-dasharray="2 3"';
  return '';
}

function textLines(lines, x, y, attrs) {
  const lh = 14;
  const top = y - ((lines.length - 1) * lh) / 2;
  return lines.map((l, i) => `<text x="${x}" y="${top + i * lh}" ${attrs}>${esc(l)}</text>`)
      .join('');
}

// The SVG of the graph as drawn now: parents first (behind), then edges,
// then nodes and labels.
export function graphSvg(cy) {
  const bb = cy.elements().boundingBox({includeLabels: true});
  const pad = 20;
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="${bb.x1 - pad} ${bb.y1 - pad} ` +
               `${bb.w + 2 * pad} ${bb.h + 2 * pad}" width="${Math.ceil(bb.w + 2 * pad)}" ` +
               `height="${Math.ceil(bb.h + 2 * pad)}" font-family="system-ui, sans-serif">`,
               '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" ' +
               'markerWidth="7" markerHeight="7" orient="auto-start-reverse">' +
               '<path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>',
               `<rect x="${bb.x1 - pad}" y="${bb.y1 - pad}" width="${bb.w + 2 * pad}" ` +
               `height="${bb.h + 2 * pad}" fill="#ffffff"/>`];
  const nodeSvg = (n) => {
    const p = n.position();
    const w = n.outerWidth() - n.numericStyle('border-width');
    const h = n.outerHeight() - n.numericStyle('border-width');
    const fill = n.style('background-color');
    const line = n.style('border-color');
    out.push(`${shapePath(n.isParent() ? 'rectangle' : n.style('shape'), p.x, p.y, w, h)} ` +
             `fill="${fill}" stroke="${line}" stroke-width="${n.numericStyle('border-width')}"` +
             `${dash(n.style('border-style'))}/>`);
    const lines = String(n.data('display') || '').split('\n');
    const y = n.isParent() ? p.y - h / 2 + 14 : p.y + 4;
    out.push(textLines(lines, p.x, y, `text-anchor="middle" font-size="12" ` +
                                      `fill="${n.style('color')}"`));
  };
  cy.nodes(':parent').forEach(nodeSvg);
  cy.edges(':visible').forEach((e) => {
    const s = e.sourceEndpoint();
    const t = e.targetEndpoint();
    const color = e.style('line-color');
    out.push(`<line x1="${s.x}" y1="${s.y}" x2="${t.x}" y2="${t.y}" stroke="${color}" ` +
             `stroke-width="${e.numericStyle('width')}"${dash(e.style('line-style'))} ` +
             'marker-end="url(#arrow)"/>');
    const m = e.midpoint();
    const lines = String(e.data('label') || '').split('\n');
    out.push(textLines(lines, m.x, m.y + 3, `text-anchor="middle" font-size="10" ` +
                                            `fill="${e.style('color')}" paint-order="stroke" ` +
                                            'stroke="#ffffff" stroke-width="3"'));
  });
  cy.nodes(':childless').forEach(nodeSvg);
  out.push('</svg>');
  return out.join('\n');
}

export function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], {type}));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
