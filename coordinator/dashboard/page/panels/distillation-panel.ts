import { DISTILL_DEFAULTS } from '../../../distillation/round-defaults.js';
import type { DistillationRoundView, DistillationView, DistillRequest } from '../../model/view-types.js';
import { byId, fill, h } from '../dom.js';
import { bytes, clock, count, percent } from '../format.js';

/**
 * Distillation rounds: the one in progress (stage, step), the last failure, and each finished
 * round's report — teacher, distilled student and student alone, measured alike — newest first.
 * The start form (opened by the header's button) proposes the last round's student or this run's
 * newest checkpoint as the teacher.
 */
export class DistillationPanel {
  private readonly form: HTMLFormElement;
  private readonly teacher: HTMLInputElement;
  private readonly student: HTMLInputElement;
  private readonly maxSteps: HTMLInputElement;
  private teacherTouched = false;

  constructor(onStart: (request: DistillRequest) => void) {
    this.teacher = h('input', { name: 'teacher', required: true, placeholder: 'model.json, checkpoint folder or "previous"', autocomplete: 'off' });
    this.student = h('input', { name: 'student', required: true, placeholder: 'zoo model (mlp-small) or model.json', value: 'mlp-small', autocomplete: 'off' });
    // Empty: the rounds' default budget (the benchmark's), not "all".
    this.maxSteps = h('input', { name: 'max-steps', type: 'number', min: 0, placeholder: `${DISTILL_DEFAULTS.steps} (default)`, autocomplete: 'off' });
    this.teacher.addEventListener('input', () => (this.teacherTouched = true));
    this.form = h(
      'form',
      { id: 'distill-form', class: 'distill-form', hidden: true },
      h('label', {}, 'teacher', this.teacher),
      h('label', {}, 'student', this.student),
      h('label', {}, 'max steps', this.maxSteps),
      h('button', { type: 'submit' }, 'Start round'),
    );
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const steps = Number(this.maxSteps.value);
      onStart({ teacher: this.teacher.value.trim(), student: this.student.value.trim(), ...(this.maxSteps.value !== '' && Number.isFinite(steps) ? { maxSteps: steps } : {}) });
      this.form.hidden = true;
    });
    byId('distillation-panel').insertBefore(this.form, byId('distillation'));
  }

  openForm(suggestedTeacher: string | null): void {
    if (!this.teacherTouched && suggestedTeacher) this.teacher.value = suggestedTeacher;
    this.form.hidden = false;
    this.teacher.focus();
  }

  render(distillation: DistillationView): void {
    const parts: (HTMLElement | null)[] = [];
    if (!distillation.available) parts.push(h('p', { class: 'empty' }, 'This coordinator does not run distillation rounds.'));
    const running = distillation.running;
    if (running) {
      const progress = running.step !== null && running.totalSteps ? ` · step ${count(running.step)} / ${count(running.totalSteps)}` : '';
      parts.push(
        h(
          'div',
          { class: 'round-running', 'data-round': running.round, 'data-stage': running.stage },
          h('span', { class: 'badge phase-training' }, `round ${running.round}: ${running.stage}`),
          ` ${shortPath(running.teacher)} → ${shortPath(running.student)}${progress}`,
          h('div', { class: 'muted small' }, running.detail),
        ),
      );
    }
    if (distillation.lastFailure) parts.push(h('p', { class: 'failure' }, `round ${distillation.lastFailure.round} failed: ${distillation.lastFailure.message}`));
    if (distillation.available && !running && distillation.rounds.length === 0) parts.push(h('p', { class: 'empty' }, 'No distillation round in this run folder yet.'));
    fill(byId('distillation'), ...parts, ...distillation.rounds.map(roundReport));
  }
}

/** The end of a long path is what tells models apart; the whole path is in the tooltip. */
function shortPath(location: string): string {
  const parts = location.split('/').filter(Boolean);
  return parts.length > 3 ? `…/${parts.slice(-3).join('/')}` : location;
}

function roundReport(round: DistillationRoundView): HTMLElement {
  return h(
    'div',
    { class: 'round-report', 'data-round': round.round },
    h('div', { class: 'round-title', title: `${round.teacher} → ${round.student}` }, `round ${round.round}: ${shortPath(round.teacher)} → ${shortPath(round.student)}`, h('span', { class: 'muted small' }, ` finished ${clock(round.finishedAt)}`)),
    h('div', { class: 'muted small' }, round.settings),
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, ...['model', 'parameters', 'size', 'ms/sample', 'test accuracy', 'train s'].map((c) => h('th', {}, c)))),
      h(
        'tbody',
        {},
        ...round.models.map((m) =>
          h(
            'tr',
            { title: m.path },
            h('td', {}, m.label),
            h('td', { class: 'num' }, count(m.parameters)),
            h('td', { class: 'num' }, bytes(m.bytesOnDisk)),
            h('td', { class: 'num' }, m.msPerSample.toFixed(4)),
            h('td', { class: 'num' }, percent(m.accuracy, 2)),
            h('td', { class: 'num' }, m.trainSeconds === null ? '–' : m.trainSeconds.toFixed(1)),
          ),
        ),
      ),
    ),
    h('div', { class: 'small' }, round.gapClosed === null ? 'gap closed: n/a' : `gap closed: ${percent(round.gapClosed)} of the accuracy gap between the student alone and the teacher`),
    ...round.notes.map((note) => h('div', { class: 'muted small' }, `note: ${note}`)),
  );
}
