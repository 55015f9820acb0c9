import type { GanttSpan, PipelineView } from '../../model/view-types.js';
import { byId, fill, h, s } from '../dom.js';
import { milliseconds, percent } from '../format.js';

const ROW_HEIGHT = 26;
const LABEL_WIDTH = 110;
const MIN_WIDTH = 480;
const AXIS_HEIGHT = 22;
const KINDS: GanttSpan['kind'][] = ['forward', 'backward', 'idle', 'update', 'all-reduce', 'data'];

/**
 * A Gantt chart of the newest pipeline mini-batch: one row per stage, forward and backward passes
 * per micro-batch, idle waits, the update; with the measured bubble beside GPipe's figure. The
 * panel stays hidden until a pipeline reports its timelines.
 */
export function renderPipeline(pipeline: PipelineView | null): void {
  const panel = byId('pipeline-panel');
  panel.hidden = pipeline === null;
  if (!pipeline) return;
  byId('pipeline-summary').textContent =
    `step ${pipeline.step} · ${pipeline.stages} stages × ${pipeline.microBatches} micro-batches · ${pipeline.schedule} · ` +
    `bubble ${percent(pipeline.measuredBubble)} measured, ${percent(pipeline.theoreticalBubble)} in theory`;
  const height = AXIS_HEIGHT + pipeline.rows.length * ROW_HEIGHT + 6;
  // Drawn at the panel's own width, so text keeps its size whatever the window.
  const width = Math.max(MIN_WIDTH, byId('pipeline').clientWidth);
  const scale = (width - LABEL_WIDTH - 16) / Math.max(pipeline.durationMs, 1e-3);
  const svg = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'gantt', role: 'img', 'data-rows': pipeline.rows.length });
  svg.append(s('text', { x: LABEL_WIDTH - 8, y: 12, class: 'tick-label', 'text-anchor': 'end' }, 'idle'));
  for (const tick of ticks(pipeline.durationMs)) {
    const x = LABEL_WIDTH + tick * scale;
    svg.append(s('line', { x1: x, y1: AXIS_HEIGHT - 4, x2: x, y2: height, class: 'tick' }), s('text', { x, y: 12, class: 'tick-label', 'text-anchor': tick === 0 ? 'start' : 'middle' }, tick === 0 ? '0' : milliseconds(tick)));
  }
  pipeline.rows.forEach((row, i) => {
    const y = AXIS_HEIGHT + i * ROW_HEIGHT;
    const label = `stage ${row.stage}${pipeline.rows.some((r) => r.replica > 0) ? ` · r${row.replica}` : ''}`;
    svg.append(
      s('text', { x: 4, y: y + 17, class: 'row-label' }, label),
      s('text', { x: LABEL_WIDTH - 8, y: y + 17, class: 'row-bubble', 'text-anchor': 'end' }, percent(row.bubble, 0)),
    );
    for (const span of row.spans) {
      const width = Math.max(0.5, span.durationMs * scale);
      svg.append(
        s(
          'rect',
          { x: LABEL_WIDTH + span.startMs * scale, y: y + 4, width, height: ROW_HEIGHT - 8, class: `span ${span.kind}`, rx: 2 },
          s('title', {}, `${span.kind}${span.micro === null ? '' : ` micro-batch ${span.micro}`}: ${milliseconds(span.durationMs)} from ${milliseconds(span.startMs)}`),
        ),
      );
      if (span.micro !== null && width > 16) svg.append(s('text', { x: LABEL_WIDTH + span.startMs * scale + width / 2, y: y + 17, class: 'span-label', 'text-anchor': 'middle' }, span.micro));
    }
  });
  fill(
    byId('pipeline'),
    svg,
    h('div', { class: 'legend' }, ...KINDS.map((kind) => h('span', { class: 'legend-item' }, h('span', { class: `swatch ${kind}` }), kind))),
  );
}

function ticks(durationMs: number): number[] {
  const raw = durationMs / 6;
  const magnitude = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-3)));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= raw) ?? raw;
  const result: number[] = [];
  for (let t = 0; t <= durationMs + 1e-9; t += step) result.push(t);
  return result;
}
