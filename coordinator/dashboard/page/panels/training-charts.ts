import uPlot from 'uplot';
import { classifyStall } from '../../../../shared/data/stall-verdict.js';
import type { StepPoint } from '../../model/view-types.js';
import { h } from '../dom.js';
import { count, milliseconds } from '../format.js';
import { COLORS } from '../theme.js';

const HEIGHT = 210;

interface ChartSpec {
  id: string;
  title: string;
  /** Built from the points: [steps, ...series]. */
  data(points: readonly StepPoint[]): uPlot.AlignedData;
  options(): Omit<uPlot.Options, 'width' | 'height'>;
  /** What to show instead of an empty chart (null: the chart). */
  emptyNote?(points: readonly StepPoint[]): string | null;
}

/**
 * The training charts (uPlot): loss and accuracy, samples per second, where each step's time went
 * (stacked: data wait, compute, communication), and the all-reduce bus bandwidth, all by step.
 * Each chart's container carries `data-points`, the number of steps it plots.
 */
export class TrainingCharts {
  private readonly charts: { spec: ChartSpec; plot: uPlot; box: HTMLElement; note: HTMLElement }[] = [];

  constructor(parent: HTMLElement) {
    for (const spec of SPECS) {
      const box = h('div', { class: 'chart', id: spec.id, 'data-points': 0 });
      const note = h('span', { class: 'chart-note', hidden: true });
      parent.append(h('section', { class: 'chart-card' }, h('h3', {}, spec.title, note), box));
      const plot = new uPlot({ ...spec.options(), width: Math.max(200, box.clientWidth), height: HEIGHT }, spec.data([]), box);
      this.charts.push({ spec, plot, box, note });
    }
    const resize = new ResizeObserver(() => {
      for (const { plot, box } of this.charts) if (box.clientWidth > 0 && Math.abs(plot.width - box.clientWidth) > 1) plot.setSize({ width: box.clientWidth, height: HEIGHT });
    });
    for (const { box } of this.charts) resize.observe(box);
  }

  render(points: readonly StepPoint[]): void {
    for (const { spec, plot, box, note } of this.charts) {
      const data = spec.data(points);
      plot.setData(data);
      box.dataset.points = String(data[0].length);
      const empty = points.length === 0 ? 'waiting for the first step' : (spec.emptyNote?.(points) ?? null);
      note.hidden = empty === null;
      note.textContent = empty ?? '';
    }
  }
}

const axisStyle = { stroke: COLORS.muted, grid: { stroke: COLORS.grid, width: 1 }, ticks: { stroke: COLORS.grid, width: 1 } };
// Steps are whole numbers: no 2.5 on the axis however few there are.
const STEP_INCREMENTS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000];
const stepAxis: uPlot.Axis = { ...axisStyle, label: 'step', labelSize: 18, labelFont: '11px system-ui', font: '11px system-ui', incrs: STEP_INCREMENTS };
const valueAxis = (label: string, extra: Partial<uPlot.Axis> = {}): uPlot.Axis => ({ ...axisStyle, label, labelSize: 18, labelFont: '11px system-ui', font: '11px system-ui', size: 52, ...extra });
const base = (): Pick<uPlot.Options, 'scales' | 'legend' | 'cursor'> => ({
  scales: { x: { time: false } },
  legend: { live: true },
  cursor: { drag: { x: true, y: false } },
});
const steps = (points: readonly StepPoint[]): number[] => points.map((p) => p.step);
const orNull = (value: number | null): number | null => (value === null || !Number.isFinite(value) ? null : value);
/** Per-step figures jump with every scheduling hiccup of a busy machine; the mean of the last few reads better. */
const WINDOW = 10;

function rollingMean(values: readonly (number | null)[], window = WINDOW): (number | null)[] {
  const out: (number | null)[] = [];
  let sum = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v !== null && v !== undefined) {
      sum += v;
      count++;
    }
    const old = i >= window ? values[i - window] : null;
    if (old !== null && old !== undefined) {
      sum -= old;
      count--;
    }
    out.push(v === null || v === undefined || count === 0 ? null : sum / count);
  }
  return out;
}

const SPECS: ChartSpec[] = [
  {
    id: 'chart-loss',
    title: 'Loss and accuracy (training batch)',
    data: (points) => [steps(points), points.map((p) => p.loss), points.map((p) => (p.accuracy === null ? null : p.accuracy * 100))],
    options: () => ({
      ...base(),
      scales: { x: { time: false }, loss: { auto: true }, acc: { range: [0, 100] } },
      series: [
        { label: 'step' },
        { label: 'loss', scale: 'loss', stroke: COLORS.blue, width: 1.5, value: (_u, v) => (v === null ? '–' : v.toFixed(4)) },
        { label: 'accuracy %', scale: 'acc', stroke: COLORS.green, width: 1.5, value: (_u, v) => (v === null ? '–' : `${v.toFixed(1)}%`) },
      ],
      axes: [stepAxis, valueAxis('loss', { scale: 'loss' }), valueAxis('accuracy %', { scale: 'acc', side: 1, grid: { show: false } })],
    }),
  },
  {
    id: 'chart-throughput',
    title: 'Samples per second',
    data: (points) => {
      const raw = points.map((p) => orNull(p.samplesPerSecond));
      return [steps(points), raw, rollingMean(raw)];
    },
    options: () => ({
      ...base(),
      series: [
        { label: 'step' },
        { label: 'samples/s', stroke: COLORS.orangeFaint, width: 1, value: (_u, v) => count(v) },
        { label: `mean of ${WINDOW}`, stroke: COLORS.orange, fill: COLORS.orangeFill, width: 2, value: (_u, v) => count(v) },
      ],
      axes: [stepAxis, valueAxis('samples/s')],
    }),
  },
  {
    id: 'chart-step-time',
    title: `Time per step: data wait · compute · communication (mean of ${WINDOW})`,
    // Stacked: each series is the sum of itself and those below it; the legend shows its own part.
    data: (points) => {
      const data = rollingMean(points.map((p) => orNull(p.dataWaitMs)));
      const computeOnly = rollingMean(points.map((p) => orNull(p.computeMs)));
      const commOnly = rollingMean(points.map((p) => orNull(p.communicationMs)));
      const compute = data.map((d, i) => sum(d, computeOnly[i] ?? null));
      const comm = compute.map((c, i) => sum(c, commOnly[i] ?? null));
      return [steps(points), data, compute, comm];
    },
    options: () => {
      const own = (u: uPlot, v: number | null, si: number, idx: number | null): string => {
        if (v === null || idx === null) return '–';
        const below = si > 1 ? (u.data[si - 1]?.[idx] ?? 0) : 0;
        return milliseconds(v - (below ?? 0));
      };
      // The data wait also as a share of the whole (stacked) step, with TensorFlow's input-bound verdict.
      const stallOf = (u: uPlot, v: number | null, si: number, idx: number | null): string => {
        const total = idx === null ? null : (u.data[3]?.[idx] ?? null);
        if (v === null || idx === null || total === null || !(total > 0)) return own(u, v, si, idx);
        const percent = (100 * v) / total;
        return `${milliseconds(v)} · ${percent.toFixed(1)}% (${classifyStall(percent)})`;
      };
      return {
        ...base(),
        series: [
          { label: 'step' },
          { label: 'data wait', stroke: COLORS.purple, fill: COLORS.purpleFill, width: 1, value: stallOf },
          { label: 'compute', stroke: COLORS.blue, fill: COLORS.blueFill, width: 1, value: own },
          { label: 'communication', stroke: COLORS.orange, fill: COLORS.orangeFill, width: 1, value: own },
        ],
        bands: [
          { series: [3, 2], fill: COLORS.orangeFill },
          { series: [2, 1], fill: COLORS.blueFill },
        ],
        axes: [stepAxis, valueAxis('ms')],
      };
    },
  },
  {
    id: 'chart-busbw',
    title: 'All-reduce bus bandwidth',
    data: (points) => {
      const raw = points.map((p) => (p.busbwBytesPerSecond === null ? null : p.busbwBytesPerSecond / 1e9));
      return [steps(points), raw, rollingMean(raw)];
    },
    options: () => ({
      ...base(),
      series: [
        { label: 'step' },
        { label: 'busbw GB/s', stroke: COLORS.greenFaint, width: 1, value: (_u, v) => (v === null ? '–' : v.toFixed(3)) },
        { label: `mean of ${WINDOW}`, stroke: COLORS.green, fill: COLORS.greenFill, width: 2, value: (_u, v) => (v === null ? '–' : v.toFixed(3)) },
      ],
      axes: [stepAxis, valueAxis('GB/s')],
    }),
    emptyNote: (points) => {
      const last = points.at(-1);
      if (!last) return null;
      return last.worldSize < 2 ? 'now one peer: no all-reduce' : last.busbwBytesPerSecond === null ? 'the peers do not report all-reduce times' : null;
    },
  },
];

function sum(a: number | null, b: number | null): number | null {
  return a === null || b === null ? null : a + b;
}
