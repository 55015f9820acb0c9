import type { TopologyMemberView, TopologyView } from '../../model/view-types.js';
import { byId, fill, s } from '../dom.js';

const WIDTH = 380;
const HEIGHT = 290;
const NODE_RADIUS = 22;
const MAX_LABEL = 18;

/**
 * The membership epoch as a picture: the ring in rank order, each arrow the link a rank sends its
 * partial sums over; or the pipeline's stages left to right, activations forward and gradients
 * back. A member whose link closed is drawn dead until the next epoch leaves it out.
 */
export function renderTopology(topology: TopologyView): void {
  const svg = s('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', class: 'topology', 'data-kind': topology.kind, 'data-epoch': topology.epoch, 'data-members': topology.members.length });
  svg.append(arrowMarker('arrow', 'arrow-head'), arrowMarker('arrow-back', 'arrow-head back'));
  const members = topology.members;
  if (members.length === 0) {
    svg.append(caption(HEIGHT / 2, 'no membership epoch yet'));
  } else if (topology.kind === 'pipeline') {
    drawPipeline(svg, members);
  } else {
    drawRing(svg, members);
  }
  const lost = members.filter((member) => member.state === 'dead').length;
  byId('topology-summary').textContent =
    members.length === 0 ? '' : `epoch ${topology.epoch} · ${topology.kind === 'ring' ? `ring of ${members.length}` : pipelineShape(members)}${lost > 0 ? ` · ${lost} lost` : ''}`;
  fill(byId('topology'), svg);
}

function pipelineShape(members: TopologyMemberView[]): string {
  const replicas = new Set(members.map((member) => member.replica ?? 0)).size;
  return replicas > 1 ? `${replicas} replicas × ${members.length / replicas} stages` : `${members.length} stages`;
}

function drawRing(svg: SVGSVGElement, members: TopologyMemberView[]): void {
  const n = members.length;
  const cx = WIDTH / 2;
  const cy = HEIGHT / 2 - 8;
  if (n === 1) {
    svg.append(node(members[0]!, cx, cy, cy + NODE_RADIUS + 16), caption(HEIGHT - 14, 'a ring of one: trains alone, no exchange'));
    return;
  }
  const radius = 88;
  const angle = (i: number): number => -Math.PI / 2 + (2 * Math.PI * i) / n;
  const at = (a: number, r = radius): [number, number] => [cx + r * Math.cos(a), cy + r * Math.sin(a)];
  // Arcs between neighbours, trimmed so they start and end at the node circles.
  const trim = (NODE_RADIUS + 4) / radius;
  for (let i = 0; i < n; i++) {
    const [x1, y1] = at(angle(i) + trim);
    const [x2, y2] = at(angle(i + 1) - trim);
    const large = (2 * Math.PI) / n - 2 * trim > Math.PI ? 1 : 0;
    const ends = [members[i]!.state, members[(i + 1) % n]!.state];
    const linkClass = ends.includes('dead') ? 'link broken' : ends.includes('left') ? 'link closed' : 'link';
    svg.append(s('path', { d: `M ${x1.toFixed(1)} ${y1.toFixed(1)} A ${radius} ${radius} 0 ${large} 1 ${x2.toFixed(1)} ${y2.toFixed(1)}`, class: linkClass, 'marker-end': 'url(#arrow)' }));
  }
  members.forEach((member, i) => {
    const [x, y] = at(angle(i));
    const [lx, ly] = at(angle(i), radius + NODE_RADIUS + 18);
    svg.append(node(member, x, y, ly + 4, lx));
  });
  svg.append(caption(HEIGHT - 8, `ring order: ${members.map((m) => m.rank).join(' → ')} → ${members[0]!.rank}`));
}

function drawPipeline(svg: SVGSVGElement, members: TopologyMemberView[]): void {
  const replicas = new Set(members.map((member) => member.replica ?? 0)).size;
  if (replicas > 1) {
    drawReplicas(svg, members, replicas);
    return;
  }
  const stages = [...members].sort((a, b) => (a.stage ?? 0) - (b.stage ?? 0) || a.rank - b.rank);
  const gap = WIDTH / stages.length;
  const y = HEIGHT / 2 - 10;
  stages.forEach((member, i) => {
    const x = gap * (i + 0.5);
    if (i + 1 < stages.length) {
      const next = gap * (i + 1.5);
      svg.append(
        s('line', { x1: x + NODE_RADIUS + 4, y1: y - 8, x2: next - NODE_RADIUS - 6, y2: y - 8, class: 'link', 'marker-end': 'url(#arrow)' }),
        s('line', { x1: next - NODE_RADIUS - 4, y1: y + 8, x2: x + NODE_RADIUS + 6, y2: y + 8, class: 'link back', 'marker-end': 'url(#arrow-back)' }),
      );
    }
    svg.append(node(member, x, y, y + NODE_RADIUS + 18, x, `S${member.stage ?? '?'}`));
  });
  svg.append(caption(HEIGHT - 8, 'activations → forward · gradients ← backward'));
}

/** Pipeline + data parallel: one row of stages per replica; each column is a stage's replica ring. */
function drawReplicas(svg: SVGSVGElement, members: TopologyMemberView[], replicas: number): void {
  const stages = Math.max(...members.map((member) => member.stage ?? 0)) + 1;
  const gapX = WIDTH / stages;
  const gapY = (HEIGHT - 30) / replicas;
  const at = (member: TopologyMemberView): [number, number] => [gapX * ((member.stage ?? 0) + 0.5), gapY * ((member.replica ?? 0) + 0.5)];
  for (const member of members) {
    const [x, y] = at(member);
    const next = members.find((other) => other.replica === member.replica && other.stage === (member.stage ?? 0) + 1);
    if (next) svg.append(s('line', { x1: x + NODE_RADIUS + 4, y1: y, x2: at(next)[0] - NODE_RADIUS - 6, y2: y, class: 'link', 'marker-end': 'url(#arrow)' }));
    const below = members.find((other) => other.stage === member.stage && other.replica === (member.replica ?? 0) + 1);
    // Below the name label: the stage's replica ring (drawn as the link to the next replica).
    if (below) svg.append(s('line', { x1: x, y1: y + NODE_RADIUS + 20, x2: x, y2: at(below)[1] - NODE_RADIUS - 4, class: 'link closed' }));
    svg.append(node(member, x, y, y + NODE_RADIUS + 14, x, `S${member.stage ?? '?'}·R${member.replica ?? 0}`));
  }
  svg.append(caption(HEIGHT - 8, `→ activations · | each stage's replica ring (gradients)`));
}

function node(member: TopologyMemberView, x: number, y: number, labelY: number, labelX = x, inner = `r${member.rank}`): SVGGElement {
  const label = member.nodeId.length > MAX_LABEL ? `${member.nodeId.slice(0, MAX_LABEL - 1)}…` : member.nodeId;
  const group = s(
    'g',
    { class: `node ${member.state}`, 'data-node-id': member.nodeId, 'data-status': member.state },
    s('title', {}, `${member.nodeId} — rank ${member.rank}${member.stage !== null ? `, stage ${member.stage}` : ''}${member.state === 'alive' ? '' : member.state === 'dead' ? ' (lost)' : ' (left: the job is over)'}`),
    s('circle', { cx: x, cy: y, r: NODE_RADIUS }),
    s('text', { x, y: y + 5, class: 'node-rank', 'text-anchor': 'middle' }, inner),
    s('text', { x: labelX, y: labelY, class: 'node-label', 'text-anchor': 'middle' }, label),
  );
  if (member.state === 'dead') {
    const d = NODE_RADIUS * 0.55;
    group.append(s('path', { d: `M ${x - d} ${y - d} L ${x + d} ${y + d} M ${x + d} ${y - d} L ${x - d} ${y + d}`, class: 'cross' }));
  }
  return group;
}

function caption(y: number, text: string): SVGTextElement {
  return s('text', { x: WIDTH / 2, y, class: 'caption', 'text-anchor': 'middle' }, text);
}

function arrowMarker(id: string, className: string): SVGDefsElement {
  return s(
    'defs',
    {},
    s('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: className })),
  );
}
