import type { ControlAction, ControlsView, DashboardView } from '../../model/view-types.js';
import { byId, fill, h } from '../dom.js';
import { count, percent } from '../format.js';

const BUTTONS: { action: ControlAction; label: string }[] = [
  { action: 'pause', label: 'Pause' },
  { action: 'resume', label: 'Resume' },
  { action: 'checkpoint', label: 'Checkpoint now' },
  { action: 'distill', label: 'Distillation round' },
];

/** The top bar: which job, where it is, how fast, and the controls. */
export class JobHeader {
  private readonly buttons = new Map<ControlAction, HTMLButtonElement>();

  constructor(onControl: (action: ControlAction) => void) {
    const controls = byId('controls');
    for (const { action, label } of BUTTONS) {
      const button = h('button', { type: 'button', 'data-action': action, disabled: true }, label);
      button.addEventListener('click', () => onControl(action));
      this.buttons.set(action, button);
      controls.append(button);
    }
  }

  render(view: DashboardView, hasToken: boolean): void {
    const { job } = view;
    fill(byId('job-title'), h('span', { class: 'job-name' }, job.jobName), h('span', { class: 'muted' }, ` · ${job.model} · ${job.mode} · batch ${count(job.batchSize)}`));
    const phase = byId('phase');
    phase.textContent = job.phase;
    phase.className = `badge phase-${job.phase}`;
    phase.title = job.detail;
    byId('phase-detail').textContent = job.detail;
    const progress = job.totalSteps > 0 ? job.step / job.totalSteps : 0;
    byId('step-figure').textContent = job.totalSteps > 0 ? `step ${count(job.step)} / ${count(job.totalSteps)}` : 'no steps yet';
    byId<HTMLDivElement>('progress-fill').style.width = `${(progress * 100).toFixed(2)}%`;
    byId('figures').replaceChildren(
      figure('samples/s', count(job.samplesPerSecond)),
      figure('loss', job.lastLoss === null ? '–' : job.lastLoss.toFixed(4)),
      figure('membership epoch', count(job.epoch)),
      ...(job.testAccuracy !== null ? [figure('test accuracy', percent(job.testAccuracy, 2))] : []),
    );
    this.renderControls(view.controls, hasToken);
  }

  private renderControls(controls: ControlsView, hasToken: boolean): void {
    for (const [action, button] of this.buttons) {
      const state = controls[action];
      button.disabled = !state.enabled;
      button.title = state.enabled ? (hasToken ? '' : 'needs the dashboard token') : (state.reason ?? '');
      button.classList.toggle('locked', state.enabled && !hasToken);
    }
  }
}

function figure(label: string, value: string): HTMLElement {
  return h('div', { class: 'figure' }, h('div', { class: 'figure-value' }, value), h('div', { class: 'figure-label' }, label));
}
