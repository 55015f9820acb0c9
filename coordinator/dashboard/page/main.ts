/**
 * The dashboard page: connects to the coordinator's live feed and redraws the panels on every
 * update (at most four a second). Built by esbuild on the coordinator; no network but the page's
 * own server.
 */
import type { ControlAction, DashboardView, DistillRequest, StepPoint } from '../model/view-types.js';
import { currentToken, setToken, takeTokenFromAddress } from './access-token.js';
import { sendControl } from './controls-client.js';
import { byId } from './dom.js';
import { FeedClient, type FeedStatus } from './feed-client.js';
import { renderCheckpoints } from './panels/checkpoints-table.js';
import { DistillationPanel } from './panels/distillation-panel.js';
import { JobHeader } from './panels/job-header.js';
import { renderPeers } from './panels/peers-table.js';
import { renderPipeline } from './panels/pipeline-gantt.js';
import { PlanPanel } from './panels/plan-panel.js';
import { renderTopology } from './panels/topology-picture.js';
import { TrainingCharts } from './panels/training-charts.js';

takeTokenFromAddress();

let view: DashboardView | undefined;
let points: StepPoint[] = [];
let lastSeq = 0;

const header = new JobHeader((action) => void control(action));
const charts = new TrainingCharts(byId('charts'));
const distillation = new DistillationPanel((request) => void control('distill', request));
const feed = new FeedClient({ data: onData, status: onStatus });
new PlanPanel();

function onData(next: DashboardView, incoming: StepPoint[], replace: boolean): void {
  if (replace) {
    points = [];
    lastSeq = 0;
  }
  for (const point of incoming) {
    if (point.seq <= lastSeq) continue;
    lastSeq = point.seq;
    // Steps redone after a recovery replace the old ones from that step on.
    const last = points.at(-1);
    if (last && point.step <= last.step) points = points.filter((p) => p.step < point.step);
    points.push(point);
  }
  view = next;
  render();
}

function render(): void {
  if (!view) return;
  header.render(view, currentToken() !== undefined);
  document.title = `${view.job.jobName} · ${view.job.phase} · ringpipe`;
  renderPeers(view);
  renderTopology(view.topology);
  charts.render(points);
  renderPipeline(view.pipeline);
  renderCheckpoints(view.checkpoints);
  distillation.render(view.distillation);
}

function onStatus(status: FeedStatus, detail: string): void {
  const indicator = byId('connection');
  indicator.className = `connection ${status}`;
  indicator.textContent = status === 'live' ? 'live' : detail;
  byId('token-form').hidden = status !== 'needs-token' && currentToken() !== undefined;
  if (status === 'needs-token') byId('token-hint').textContent = detail;
}

async function control(action: ControlAction, request?: DistillRequest): Promise<void> {
  if (!currentToken()) {
    byId('token-form').hidden = false;
    byId('token-hint').textContent = `${action} needs the dashboard token (in the address the coordinator printed):`;
    byId<HTMLInputElement>('token-input').focus();
    return;
  }
  // A round needs its teacher and student first: the button opens the form, the form sends.
  if (action === 'distill' && !request) {
    distillation.openForm(view?.distillation.suggestedTeacher ?? null);
    return;
  }
  const result = await sendControl(action, request);
  const message = byId('control-message');
  message.textContent = result.message;
  message.className = result.ok ? 'ok' : 'error';
}

byId<HTMLFormElement>('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = byId<HTMLInputElement>('token-input');
  if (input.value.trim() === '') return;
  setToken(input.value);
  input.value = '';
  byId('token-form').hidden = true;
  void feed.start();
});

// "3 s ago" keeps counting between updates (a finished job sends none).
setInterval(() => {
  if (view) {
    view = { ...view, serverTime: view.serverTime + 1000 };
    renderPeers(view);
  }
}, 1000);

void feed.start();
