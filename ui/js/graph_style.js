// How the map looks in cytoscape: one look per node kind and status, the
// legend (index.html) names the same ones, and the SVG export reads them back.
export const kColors = {
  workload: {fill: '#eef4fb', line: '#2b6cb0'},
  balancer: {fill: '#fdf2e0', line: '#b7791f'},
  external: {fill: '#f4f4f4', line: '#718096'},
  unreachable: {fill: '#e2e2e2', line: '#8a8a8a', text: '#6b6b6b'},
  unconfirmed: {fill: '#fff8e6', line: '#c05621'},
  unsynced: {fill: '#f3effc', line: '#6b46c1'},
  group: {fill: '#fafafa', line: '#c4c9d0'},
  collapsed: {fill: '#edf2f7', line: '#4a5568'},
  gone: {fill: '#fff5f5', line: '#c53030'},
  edge: '#718096', appeared: '#2f855a', disappeared: '#c53030', changed: '#dd6b20',
  selected: '#d53f8c', match: '#d69e2e', text: '#1a202c',
};

export function mapStyle() {
  const c = kColors;
  return [
    {selector: 'node', style: {
      'label': 'data(display)', 'text-wrap': 'wrap', 'text-valign': 'center',
      'text-halign': 'center', 'font-size': 12, 'font-family': 'system-ui, sans-serif',
      'color': c.text, 'width': 'data(w)', 'height': 'data(h)', 'shape': 'round-rectangle',
      'background-color': c.workload.fill, 'border-width': 1.5, 'border-color': c.workload.line,
    }},
    {selector: 'node.balancer', style: {
      'shape': 'diamond', 'background-color': c.balancer.fill, 'border-color': c.balancer.line,
    }},
    {selector: 'node.external', style: {
      'shape': 'ellipse', 'background-color': c.external.fill, 'border-color': c.external.line,
      'border-style': 'dotted',
    }},
    {selector: 'node.st-unreachable', style: {
      'background-color': c.unreachable.fill, 'border-color': c.unreachable.line,
      'border-style': 'dashed', 'color': c.unreachable.text, 'border-width': 2,
    }},
    {selector: 'node.st-unconfirmed', style: {
      'background-color': c.unconfirmed.fill, 'border-color': c.unconfirmed.line,
      'border-style': 'dotted', 'border-width': 2.5,
    }},
    {selector: 'node.st-unsynced', style: {
      'background-color': c.unsynced.fill, 'border-color': c.unsynced.line,
      'border-style': 'double', 'border-width': 4,
    }},
    {selector: 'node.gone', style: {
      'background-color': c.gone.fill, 'border-color': c.gone.line, 'border-style': 'dashed',
    }},
    {selector: ':parent', style: {
      'label': 'data(display)', 'text-valign': 'top', 'text-halign': 'center',
      'text-margin-y': -2, 'font-weight': 'bold', 'font-size': 12, 'color': '#4a5568',
      'shape': 'round-rectangle', 'background-color': c.group.fill,
      'border-color': c.group.line, 'border-width': 1, 'padding': 10,
    }},
    {selector: 'node.collapsed', style: {
      'background-color': c.collapsed.fill, 'border-color': c.collapsed.line,
      'border-width': 3, 'font-weight': 'bold',
    }},
    {selector: 'node.match', style: {
      'border-color': c.match, 'border-width': 4, 'background-color': '#fefcbf',
    }},
    {selector: 'node:selected', style: {'border-color': c.selected, 'border-width': 4}},
    {selector: 'edge', style: {
      'width': 'data(width)', 'line-color': c.edge, 'target-arrow-color': c.edge,
      'target-arrow-shape': 'triangle', 'arrow-scale': 0.9, 'curve-style': 'bezier',
      'label': 'data(label)', 'font-size': 10, 'font-family': 'system-ui, sans-serif',
      'text-wrap': 'wrap', 'color': '#2d3748', 'text-background-color': '#ffffff',
      'text-background-opacity': 0.9, 'text-background-padding': 2,
      'text-background-shape': 'round-rectangle',
    }},
    {selector: 'edge.appeared', style: {'line-color': c.appeared, 'target-arrow-color': c.appeared,
                                        'color': c.appeared}},
    {selector: 'edge.changed', style: {'line-color': c.changed, 'target-arrow-color': c.changed,
                                       'color': '#9c4221'}},
    {selector: 'edge.disappeared', style: {
      'line-color': c.disappeared, 'target-arrow-color': c.disappeared, 'line-style': 'dashed',
      'color': c.disappeared,
    }},
    {selector: 'edge.aggregate', style: {'line-style': 'solid', 'opacity': 0.85}},
    // A dense overview: edges thin and unlabelled, but those of the picked
    // node in full.
    {selector: 'edge.dense', style: {'label': '', 'opacity': 0.35, 'width': 1.2,
                                     'arrow-scale': 0.6}},
    {selector: 'edge.dense.near', style: {'label': 'data(label)', 'opacity': 1,
                                          'width': 'data(width)'}},
    {selector: 'edge:selected', style: {'line-color': c.selected, 'target-arrow-color': c.selected}},
  ];
}
