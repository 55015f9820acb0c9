import type { DistillationView } from '../../model/view-types.js';
import { byId, fill, h } from '../dom.js';

/** Distillation rounds and their report, drawn from whatever columns the rounds report. */
export function renderDistillation(distillation: DistillationView): void {
  const panel = byId('distillation');
  if (!distillation.available && distillation.rounds.length === 0) {
    fill(panel, h('p', { class: 'empty' }, distillation.reason ?? 'No distillation round yet.'));
    return;
  }
  if (distillation.rounds.length === 0) {
    fill(panel, h('p', { class: 'empty' }, 'No distillation round yet.'));
    return;
  }
  fill(
    panel,
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, h('th', {}, 'round'), h('th', {}, 'started'), h('th', {}, 'status'), ...distillation.columns.map((c) => h('th', {}, c)))),
      h(
        'tbody',
        {},
        ...distillation.rounds.map((round) =>
          h('tr', {}, h('td', {}, round.round), h('td', {}, round.startedAt), h('td', {}, round.status), ...distillation.columns.map((c) => h('td', {}, String(round.report[c] ?? '–')))),
        ),
      ),
    ),
  );
}
